//! Consumer groups: each group's committed positions (the next offset to
//! read, per partition) in `LOG/groups/NAME.json`, replaced atomically
//! (write, fsync, rename). A reader of a group holds `NAME.lock` so that two
//! readers of one group never read the same events at once.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::file::{self, Mode};
use super::{open_lock, write_atomically, Log};
use crate::time;
use std::io::Read;

/// A group's committed positions, as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Committed {
    /// Next offset to read, per partition.
    pub positions: BTreeMap<u32, u64>,
    /// When they were last committed (RFC 3339).
    #[serde(default)]
    pub committed_at: Option<String>,
}

/// A consumer group of one log, held for reading.
pub struct Group {
    path: PathBuf,
    name: String,
    _lock: File,
    committed: Committed,
}

pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.');
    if !ok {
        bail!("group name {name:?} may hold only letters, digits, '-', '_' and '.', and not start with '.'");
    }
    Ok(())
}

fn groups_dir(log: &Log) -> PathBuf {
    log.dir().join("groups")
}

/// Reads a group's committed positions without holding it (for reports).
pub fn load(log: &Log, name: &str) -> Result<Committed> {
    check_name(name)?;
    let path = groups_dir(log).join(format!("{name}.json"));
    let read = file::open(&path, Mode::Read).and_then(|mut f| {
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).map(|_| bytes)
    });
    match read {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "damaged log: {} is not a valid group file; reset the group with `log-tail {} --group {name} --reset-to beginning` (or end, or an offset)",
                path.display(),
                log.dir().display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Committed::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The names of the log's groups.
pub fn list(log: &Log) -> Result<Vec<String>> {
    let dir = groups_dir(log);
    let mut names = Vec::new();
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(names);
    };
    for entry in entries {
        let name = entry?.file_name();
        if let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) {
            if check_name(stem).is_ok() {
                names.push(stem.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

impl Group {
    /// Takes the group for this process; fails at once when another process
    /// is reading as the group.
    pub fn open(log: &Log, name: &str) -> Result<Group> {
        check_name(name)?;
        let dir = groups_dir(log);
        match file::check_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            other => other.with_context(|| format!("cannot use {}", dir.display()))?,
        }
        let lock = open_lock(&dir.join(format!("{name}.lock")))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => bail!(
                "group {name:?} of {} is being read by another process; wait for it to end, or use another group name",
                log.dir().display()
            ),
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock group {name:?}"))
            }
        }
        let committed = load(log, name)?;
        Ok(Group {
            path: dir.join(format!("{name}.json")),
            name: name.to_string(),
            _lock: lock,
            committed,
        })
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The committed position of partition `p`, if any.
    pub fn position(&self, p: u32) -> Option<u64> {
        self.committed.positions.get(&p).copied()
    }

    /// Durably records new positions; call only once the events before them
    /// have been flushed downstream (at-least-once).
    pub fn commit(&mut self, positions: impl IntoIterator<Item = (u32, u64)>) -> Result<()> {
        let mut changed = false;
        for (p, offset) in positions {
            if self.committed.positions.insert(p, offset) != Some(offset) {
                changed = true;
            }
        }
        if !changed {
            return Ok(());
        }
        self.committed.committed_at = Some(time::format_rfc3339_ms(time::now_ms()));
        let body = serde_json::to_vec_pretty(&self.committed)?;
        write_atomically(&self.path, &body)
            .with_context(|| format!("cannot commit group {:?}", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LogConfig;

    #[test]
    fn commits_survive_reopen_and_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open_or_create(
            &dir.path().join("l"),
            &LogConfig {
                partitions: 2,
                ..Default::default()
            },
        )
        .unwrap();
        {
            let mut g = Group::open(&log, "enrich").unwrap();
            assert_eq!(g.position(0), None);
            g.commit([(0, 10), (1, 3)]).unwrap();
            let err = Group::open(&log, "enrich").err().unwrap().to_string();
            assert!(err.contains("another process"), "{err}");
        }
        let g = Group::open(&log, "enrich").unwrap();
        assert_eq!(g.position(0), Some(10));
        assert_eq!(g.position(1), Some(3));
        assert_eq!(list(&log).unwrap(), vec!["enrich".to_string()]);
        assert!(Group::open(&log, "../x").is_err());
    }
}
