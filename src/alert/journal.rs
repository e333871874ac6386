//! The executor's journal: a durable record of the commands it started and
//! finished, so that a command read twice (redelivered by the log, or re-read
//! after a crash) is carried out once.
//!
//! `DIR/journal` is a text file of records `S|D|F|U ID TIME_MS\n`: `S` before
//! a command is sent, `D` once it was sent, `F` when it failed for good (it
//! was not delivered, so a later delivery may try it again), `U` when it was
//! not sent at all because the channel could not work as set up (the
//! command is forgotten). Each record is
//! appended and `fsync`ed before the executor goes on. On open, a torn last
//! record (a crash mid-write) is cut off, and a journal with many superseded
//! records is rewritten compactly (write, fsync, rename).
//!
//! The window between `S` and `D` is the one place a crash leaves the outcome
//! unknown: the command may or may not have reached its channel. The
//! executor treats such a command as *interrupted* (see `send`): by default
//! it is not sent again (at most once) and is reported as a failure, and
//! `--retry-interrupted` sends it again (at least once).
//!
//! `DIR/lock` is held (an advisory lock) while an executor runs, so two
//! executors never share a journal.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::command::is_valid_id;

/// What the journal knows of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Sending began and never finished: the process died in between.
    Started,
    /// Sent.
    Done,
    /// Failed for good; not delivered.
    Failed,
}

impl State {
    fn tag(self) -> u8 {
        match self {
            State::Started => b'S',
            State::Done => b'D',
            State::Failed => b'F',
        }
    }
}

/// An open journal (or, without a directory, one kept in memory).
pub struct Journal {
    file: Option<(File, PathBuf)>,
    _lock: Option<File>,
    states: HashMap<String, State>,
}

impl Journal {
    /// A journal in memory only: duplicates within one run are still caught.
    pub fn in_memory() -> Self {
        Journal {
            file: None,
            _lock: None,
            states: HashMap::new(),
        }
    }

    /// Opens (creating) the journal in `dir`, locking it.
    pub fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create state directory {}", dir.display()))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => bail!(
                "state directory {} is in use by another executor",
                dir.display()
            ),
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", lock_path.display()))
            }
        }
        let path = dir.join("journal");
        let mut text = Vec::new();
        if path.exists() {
            File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut text))
                .with_context(|| format!("cannot read journal {}", path.display()))?;
        }
        let (states, good_len, records) =
            replay(&text).with_context(|| format!("journal {} is damaged", path.display()))?;
        if good_len < text.len() || records > 2 * states.len() + 1024 {
            // Cut a torn tail, or drop superseded records: rewrite atomically.
            let tmp = dir.join("journal.tmp");
            let mut out = Vec::with_capacity(states.len() * 48);
            for (id, state) in &states {
                out.push(state.tag());
                out.push(b' ');
                out.extend_from_slice(id.as_bytes());
                out.extend_from_slice(b" 0\n");
            }
            let mut f =
                File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
            f.write_all(&out)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
                .with_context(|| format!("cannot replace journal {}", path.display()))?;
            File::open(dir)?.sync_all()?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open journal {}", path.display()))?;
        file.sync_all()?;
        File::open(dir)?.sync_all()?;
        Ok(Journal {
            file: Some((file, path)),
            _lock: Some(lock),
            states,
        })
    }

    /// What the journal knows of `id`.
    pub fn state(&self, id: &str) -> Option<State> {
        self.states.get(id).copied()
    }

    /// Forgets `id` durably: it was never sent (a setup error stopped the
    /// executor before it went), so a later run treats it as new.
    pub fn forget(&mut self, id: &str, now_ms: i64) -> Result<()> {
        self.append(b'U', id, now_ms)?;
        self.states.remove(id);
        Ok(())
    }

    /// Records a state durably (appended and fsynced) before returning.
    pub fn record(&mut self, id: &str, state: State, now_ms: i64) -> Result<()> {
        debug_assert!(is_valid_id(id));
        self.append(state.tag(), id, now_ms)?;
        self.states.insert(id.to_string(), state);
        Ok(())
    }

    /// Appends one record `TAG ID TIME` and fsyncs it (nothing when the
    /// journal is in memory only).
    fn append(&mut self, tag: u8, id: &str, now_ms: i64) -> Result<()> {
        if let Some((file, path)) = &mut self.file {
            let line = format!("{} {id} {now_ms}\n", tag as char);
            file.write_all(line.as_bytes())
                .and_then(|_| file.sync_data())
                .with_context(|| format!("cannot write journal {}", path.display()))?;
        }
        Ok(())
    }

    /// Number of commands known.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// True when no command is known.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
}

/// Replays records: the states, the length of the whole records read, and
/// how many records there were. A last record without its `\n` is torn and
/// left out; a malformed record before it is an error.
fn replay(text: &[u8]) -> Result<(HashMap<String, State>, usize, usize)> {
    let mut states = HashMap::new();
    let mut pos = 0;
    let mut records = 0;
    while pos < text.len() {
        let Some(nl) = memchr::memchr(b'\n', &text[pos..]) else {
            break; // torn tail
        };
        let line = &text[pos..pos + nl];
        let rec = std::str::from_utf8(line).ok().and_then(|l| {
            let mut parts = l.split(' ');
            let state = match parts.next()? {
                "S" => Some(State::Started),
                "D" => Some(State::Done),
                "F" => Some(State::Failed),
                "U" => None,
                _ => return None,
            };
            let id = parts.next().filter(|id| is_valid_id(id))?;
            parts.next()?.parse::<i64>().ok()?;
            parts.next().is_none().then(|| (id.to_string(), state))
        });
        let Some((id, state)) = rec else {
            bail!(
                "record {} at byte {pos} is not \"S|D|F|U ID TIME\": {:?}",
                records + 1,
                String::from_utf8_lossy(line)
            );
        };
        match state {
            Some(state) => states.insert(id, state),
            None => states.remove(&id),
        };
        records += 1;
        pos += nl + 1;
    }
    Ok((states, pos, records))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn states_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut j = Journal::open(dir.path()).unwrap();
            j.record(A, State::Started, 1).unwrap();
            j.record(A, State::Done, 2).unwrap();
            j.record(B, State::Started, 3).unwrap();
        }
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.state(A), Some(State::Done));
        assert_eq!(j.state(B), Some(State::Started));
        assert_eq!(j.state("00000000000000000000000000000000"), None);
    }

    #[test]
    fn a_torn_tail_is_cut_and_garbage_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        fs::write(&path, format!("S {A} 1\nD {A} 2\nS {B}")).unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.state(A), Some(State::Done));
        assert_eq!(j.state(B), None);
        j.record(B, State::Done, 5).unwrap();
        drop(j);
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.state(B), Some(State::Done));
        drop(j);
        fs::write(&path, format!("S {A} 1\nX junk\nD {A} 2\n")).unwrap();
        let err = Journal::open(dir.path()).err().unwrap();
        assert!(format!("{err:#}").contains("damaged"), "{err:#}");
    }

    #[test]
    fn one_executor_per_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _j = Journal::open(dir.path()).unwrap();
        let err = Journal::open(dir.path()).err().unwrap();
        assert!(err.to_string().contains("in use"), "{err}");
    }

    #[test]
    fn superseded_records_are_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for i in 0..3000 {
            text.push_str(&format!("{} {A} {i}\n", if i % 2 == 0 { "S" } else { "D" }));
        }
        fs::write(dir.path().join("journal"), text).unwrap();
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.state(A), Some(State::Done));
        let text = fs::read_to_string(dir.path().join("journal")).unwrap();
        assert_eq!(text.lines().count(), 1);
    }
}
