//! Where a reader resumes a pipeline: `log-tail SRC --resume-from DEST…`.
//!
//! Each destination says, per source partition, the first offset it may
//! still need: a log from its producers' marks (the lowest of them, since
//! every producer writing it must have what it needs, see
//! [`crate::store::producer`]), an archive from its finished files, a
//! window from its checkpoint. A partition starts at the lowest of the
//! destinations' points; a destination that knows nothing of a partition
//! needs it from where `--from` says. Destinations drop what they already
//! hold, so starting early repeats nothing; starting late would lose, so
//! every doubt resolves towards earlier.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::cli;
use crate::position::{Held, Source};

/// What one destination needs of each source partition.
struct Needs {
    /// The destination, for messages.
    dest: PathBuf,
    /// Per partition: the first offset it may need and who says so, or
    /// `None` when it knows nothing of the partition.
    points: BTreeMap<u32, Option<(u64, String)>>,
}

/// The start of each partition of the source log, from its destinations.
#[derive(Debug, Default)]
pub struct Resume {
    starts: BTreeMap<u32, u64>,
    unknown: Vec<u32>,
}

impl Resume {
    /// Reads every destination's marks for the partitions of log `log_id`.
    /// A destination that does not exist yet holds nothing (a first run);
    /// one that exists but is none of the kinds above is an error.
    pub fn from_destinations(
        dests: &[PathBuf],
        log_id: &str,
        partitions: &[u32],
        verbose: bool,
    ) -> Result<Resume> {
        let mut all = Vec::with_capacity(dests.len());
        for dest in dests {
            let held = destination_marks(dest)?;
            // Producers with no mark from this log write something else
            // (another pipeline's events): they need nothing of it.
            let involved: Vec<&(String, Held)> = held
                .iter()
                .filter(|(_, h)| h.iter().any(|(s, _)| *s.log == *log_id))
                .collect();
            let mut points = BTreeMap::new();
            for &p in partitions {
                let source = Source {
                    log: log_id.into(),
                    partition: p,
                };
                let point = involved
                    .iter()
                    .map(|(who, h)| h.resume_at(&source).map(|o| (o, who.clone())))
                    .collect::<Option<Vec<_>>>()
                    .and_then(|v| v.into_iter().min_by_key(|(o, _)| *o));
                points.insert(p, point);
            }
            all.push(Needs {
                dest: dest.clone(),
                points,
            });
        }
        let mut resume = Resume::default();
        for &p in partitions {
            let mut start: Option<(u64, String)> = None;
            let mut unknown_to = None;
            for needs in &all {
                match needs.points.get(&p).cloned().flatten() {
                    Some((offset, who)) => {
                        if start.as_ref().is_none_or(|(o, _)| offset < *o) {
                            start = Some((offset, format!("{} ({who})", needs.dest.display())));
                        }
                    }
                    None => unknown_to = Some(needs.dest.display().to_string()),
                }
            }
            match (start, unknown_to) {
                (_, Some(dest)) => {
                    if verbose {
                        cli::warn(format_args!(
                            "partition {p}: {dest} holds nothing from it yet; starting at --from"
                        ));
                    }
                    resume.unknown.push(p);
                }
                (Some((offset, who)), None) => {
                    if verbose {
                        cli::warn(format_args!(
                            "partition {p}: resuming at offset {offset}, where {who} needs it"
                        ));
                    }
                    resume.starts.insert(p, offset);
                }
                (None, None) => resume.unknown.push(p),
            }
        }
        Ok(resume)
    }

    /// Where partition `p` starts, or `None` when some destination knows
    /// nothing of it (it starts where `--from` says).
    pub fn start(&self, p: u32) -> Option<u64> {
        self.starts.get(&p).copied()
    }
}

/// The marks of one destination, by who keeps them: a log's producers, or
/// the archive or window state itself. Empty when it does not exist yet.
fn destination_marks(dest: &Path) -> Result<Vec<(String, Held)>> {
    let location = crate::location::Location::parse(dest)?;
    if let crate::location::Location::Kafka(_) = location {
        return Ok(crate::store::destination_held(&location)?.unwrap_or_default());
    }
    if std::fs::symlink_metadata(dest).is_err() {
        return Ok(Vec::new());
    }
    if let Some(held) = crate::store::destination_held(&location)? {
        return Ok(held);
    }
    if crate::archive::is_archive(dest) {
        return Ok(vec![("archive".into(), crate::archive::held(dest)?)]);
    }
    if dest.is_file() {
        let bytes =
            std::fs::read(dest).with_context(|| format!("cannot read {}", dest.display()))?;
        if crate::window::state::is_state(&bytes) {
            let checkpoint = crate::window::state::decode(dest, &bytes)?;
            return Ok(vec![("window".into(), checkpoint.held)]);
        }
    }
    bail!(
        "{} is not a destination log-tail can resume from: give a log that log-append writes, an archive directory (archive --to) or a window state file (window --state)",
        dest.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::producer::Producer;
    use crate::store::{AppendOptions, Appender};

    fn producer_at(log: &Path, name: &str, finished: &[(u32, u64)]) {
        let appender = Appender::open(log, &AppendOptions::default()).unwrap();
        let mut p = Producer::open(appender.log(), name).unwrap();
        for &(partition, offset) in finished {
            p.finished(
                &Source {
                    log: "SRC".into(),
                    partition,
                },
                offset,
            );
        }
        p.save(true).unwrap();
    }

    #[test]
    fn the_lowest_need_wins_and_unknown_partitions_start_at_from() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.log");
        let bad = dir.path().join("bad.log");
        producer_at(&out, "log-append", &[(0, 99), (1, 5)]);
        producer_at(&bad, "validate", &[(0, 49), (1, 7)]);
        producer_at(&bad, "enrich", &[(0, 59)]);
        let other = Source {
            log: "OTHER".into(),
            partition: 1,
        };
        let appender = Appender::open(&bad, &AppendOptions::default()).unwrap();
        let mut p = Producer::open(appender.log(), "elsewhere").unwrap();
        p.finished(&other, 3);
        p.save(true).unwrap();
        let r = Resume::from_destinations(&[out.clone(), bad.clone()], "SRC", &[0, 1, 2], false)
            .unwrap();
        assert_eq!(r.start(0), Some(50), "validate needs 50 of partition 0");
        assert_eq!(r.start(1), None, "enrich knows nothing of partition 1");
        assert_eq!(r.start(2), None);
        let r = Resume::from_destinations(&[out], "SRC", &[0, 1], false).unwrap();
        assert_eq!((r.start(0), r.start(1)), (Some(100), Some(6)));
        let r =
            Resume::from_destinations(&[dir.path().join("new.log")], "SRC", &[0], false).unwrap();
        assert_eq!(r.start(0), None, "a destination not made yet holds nothing");
    }

    #[test]
    fn what_is_not_a_destination_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("notes.txt");
        std::fs::write(&file, "hello").unwrap();
        let err = Resume::from_destinations(&[file], "SRC", &[0], false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a destination"), "{err}");
    }
}
