//! A producer's bookkeeping in a log, for exactly-once appends of events
//! that carry their source position (after Kafka's idempotent producer,
//! whose broker keeps per-producer state and rebuilds it from the log).
//!
//! A positioned event is stored with its `unilog` member kept and the
//! producer's name added as `"by":NAME`. `LOG/producers/NAME.json` holds,
//! per source partition, the highest position the producer has appended
//! or finished with ([`Held`]), and per partition of this log how far its
//! records are reflected there. The file is replaced after each fsync
//! without an fsync of its own: it may lag the records, so opening scans
//! the records past that point for the producer's own and raises its
//! marks. The records are the truth; the file only saves reading them all.
//!
//! Marks are kept per producer because several processes may write one
//! log (every filter's `--bad` into one failure log): one producer's
//! append must never make another's late event look like a duplicate.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::file::{self, Mode};
use super::{append, open_lock, Log, PartitionReader, StartAt};
use crate::position::{self, Held, PositionRef, Source};

/// The directory in a log that holds the producers' files.
pub const DIR: &str = "producers";
const FORMAT: &str = "unilog-producer";
const VERSION: u32 = 1;
/// The file is replaced at most this often while appending (and always
/// at the end): a crash costs at most this much of a rescan.
const SAVE_EVERY: Duration = Duration::from_millis(200);
/// Records read from a partition per call while rescanning.
const SCAN_TURN: usize = 4096;

#[derive(Serialize, Deserialize)]
struct Saved {
    format: String,
    version: u32,
    producer: String,
    held: Held,
    /// Per partition of this log: every record of the producer's before
    /// this offset is reflected in `held`.
    scanned: BTreeMap<u32, u64>,
}

/// Checks a producer name: it names a file, so it is kept to letters,
/// digits, `.`, `_` and `-`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        bail!("{name:?} is not a producer name: use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'");
    }
    Ok(())
}

/// One producer's marks in one log, locked for this process.
pub struct Producer {
    name: String,
    path: PathBuf,
    held: Held,
    scanned: BTreeMap<u32, u64>,
    /// Where this process's own records end, per partition.
    wrote_to: BTreeMap<u32, u64>,
    changed: bool,
    saved_at: Option<Instant>,
    _lock: File,
}

impl Producer {
    /// Opens producer `name`'s marks in `log`: locks them for this process,
    /// reads its file and raises its marks from its records past it.
    pub fn open(log: &Log, name: &str) -> Result<Producer> {
        check_name(name)?;
        let dir = log.dir().join(DIR);
        match fs::create_dir(&dir) {
            Ok(()) => super::sync_dir(log.dir())?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => file::check_dir(&dir)
                .with_context(|| format!("damaged log: {} is not a directory", dir.display()))?,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
        let lock_path = dir.join(format!("{name}.lock"));
        let lock = open_lock(&lock_path)?;
        if lock.try_lock().is_err() {
            bail!(
                "another process is appending positioned events to {} as producer {name:?} (lock {}); give each process of a pipeline that writes this log its own name with --producer NAME",
                log.dir().display(),
                lock_path.display()
            );
        }
        let path = dir.join(format!("{name}.json"));
        let saved = load(&path)?;
        let (held, scanned) = match saved {
            Some(s) => (s.held, s.scanned),
            None => (Held::new(), BTreeMap::new()),
        };
        let mut producer = Producer {
            name: name.to_string(),
            path,
            held,
            scanned,
            wrote_to: BTreeMap::new(),
            changed: false,
            saved_at: None,
            _lock: lock,
        };
        producer.rescan(log)?;
        Ok(producer)
    }

    /// The producer's name, as stored in its events' `by`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the producer holds.
    pub fn held(&self) -> &Held {
        &self.held
    }

    /// Reads the records past the saved point for the producer's own.
    fn rescan(&mut self, log: &Log) -> Result<()> {
        for p in 0..log.partitions() {
            let (start, end) = log.bounds(p)?;
            let from = self.scanned.get(&p).copied().unwrap_or(0).max(start);
            if from >= end {
                continue;
            }
            let mut reader = PartitionReader::open(log, p, StartAt::Offset(from))?;
            let name = self.name.as_bytes();
            loop {
                let held = &mut self.held;
                let progress = reader.read(SCAN_TURN, &mut |rec| {
                    if let Ok(Some(found)) = position::locate(rec.event) {
                        if found.by.as_deref().map(str::as_bytes) == Some(name) {
                            held.record(&found.position);
                        }
                    }
                    Ok(())
                })?;
                if progress.at_end && progress.missed.is_none() {
                    break;
                }
            }
            self.scanned.insert(p, reader.position());
            self.changed = true;
        }
        Ok(())
    }

    /// True when the producer already holds `position`: a duplicate.
    pub fn holds(&self, position: PositionRef<'_>) -> bool {
        self.held.holds_ref(position)
    }

    /// Records that the event at `position` is being appended.
    pub fn record(&mut self, position: PositionRef<'_>) {
        self.held.record_ref(position);
        self.changed = true;
    }

    /// Records that every event this producer derives from the inputs of
    /// `source` up to `offset` is appended (a failure sink's promise for
    /// the inputs that gave no failure).
    pub fn finished(&mut self, source: &Source, offset: u64) {
        self.held.record_complete(source, offset);
        self.changed = true;
    }

    /// Notes where this process's own records went, so the saved point
    /// never passes a record that is not reflected.
    pub fn wrote(&mut self, positions: &[append::Position]) {
        for pos in positions {
            let end = self.wrote_to.entry(pos.partition).or_insert(0);
            *end = (*end).max(pos.offset + 1);
        }
    }

    /// Saves the marks once what they reflect is durable (call after the
    /// fsync); `now` forces it, otherwise it happens at most every
    /// [`SAVE_EVERY`].
    pub fn save(&mut self, now: bool) -> Result<()> {
        if !self.changed {
            return Ok(());
        }
        if !now && self.saved_at.is_some_and(|t| t.elapsed() < SAVE_EVERY) {
            return Ok(());
        }
        for (&p, &end) in &self.wrote_to {
            let at = self.scanned.entry(p).or_insert(0);
            *at = (*at).max(end);
        }
        let saved = Saved {
            format: FORMAT.into(),
            version: VERSION,
            producer: self.name.clone(),
            held: self.held.clone(),
            scanned: self.scanned.clone(),
        };
        replace(&self.path, &serde_json::to_vec(&saved)?)?;
        self.changed = false;
        self.saved_at = Some(Instant::now());
        Ok(())
    }
}

/// Reads a producer file; a missing, empty or unreadable one (a crash may
/// leave it so, as it is not fsynced) is as good as none: the records are
/// scanned instead.
fn load(path: &Path) -> Result<Option<Saved>> {
    let bytes = match file::open(path, Mode::Read) {
        Ok(mut f) => {
            let mut bytes = Vec::new();
            io::Read::read_to_end(&mut f, &mut bytes)
                .with_context(|| format!("cannot read {}", path.display()))?;
            bytes
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    Ok(serde_json::from_slice::<Saved>(&bytes)
        .ok()
        .filter(|s| s.format == FORMAT && s.version == VERSION))
}

/// Replaces `path` by a rename, without fsync (see the module's comment).
fn replace(path: &Path, body: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let written = file::open(&tmp, Mode::CreateNew).and_then(|mut f| f.write_all(body));
    if let Err(e) = written.and_then(|_| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// Every producer's saved marks in `log`, by name, read without locking
/// (for `log-tail --resume-from`): they may lag the records, which only
/// makes a reader start earlier, and the producers drop what they hold.
pub fn all_held(log: &Log) -> Result<Vec<(String, Held)>> {
    let dir = log.dir().join(DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        if check_name(name).is_err() {
            continue;
        }
        if let Some(saved) = load(&entry.path())? {
            found.push((name.to_string(), saved.held));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::Position;
    use crate::store::{AppendOptions, Appender};

    fn pos(offset: u64) -> Position {
        Position {
            log: "src".into(),
            partition: 0,
            offset,
            sub: 0,
            time_ms: None,
        }
    }

    fn stored(p: &Position, by: &str) -> Vec<u8> {
        let mut line = Vec::new();
        position::write_before(&mut line, p, Some(by), br#""a":1}"#);
        line
    }

    #[test]
    fn marks_are_rebuilt_from_the_producers_own_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        let mut appender = Appender::open(&path, &AppendOptions::default()).unwrap();
        appender.append(&stored(&pos(4), "mine"), None).unwrap();
        appender.append(&stored(&pos(9), "theirs"), None).unwrap();
        appender.append(br#"{"plain":true}"#, None).unwrap();
        appender.commit().unwrap();
        // No file was saved (as after a crash before the save): the scan
        // finds the producer's own record and no one else's.
        let mine = Producer::open(appender.log(), "mine").unwrap();
        assert!(mine.holds(pos(4).as_ref()) && !mine.holds(pos(5).as_ref()));
        let err = Producer::open(appender.log(), "mine")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--producer"), "{err}");
        drop(mine);
        let theirs = Producer::open(appender.log(), "theirs").unwrap();
        assert!(theirs.holds(pos(9).as_ref()));
    }

    #[test]
    fn saved_marks_and_finished_inputs_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.log");
        let appender = Appender::open(&path, &AppendOptions::default()).unwrap();
        let mut p = Producer::open(appender.log(), "validate").unwrap();
        p.finished(&pos(0).source(), 41);
        p.save(true).unwrap();
        drop(p);
        let p = Producer::open(appender.log(), "validate").unwrap();
        assert!(p.holds(pos(41).as_ref()));
        assert_eq!(p.held().resume_at(&pos(0).source()), Some(42));
        let all = all_held(appender.log()).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].0, "validate");
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("log-append").is_ok());
        assert!(check_name("../x").is_err());
        assert!(check_name("").is_err());
        assert!(check_name(".hidden").is_err());
    }
}
