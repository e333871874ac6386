//! The executor's journal: a durable record of the commands it started and
//! finished, so that a command read twice (redelivered by the log, or re-read
//! after a crash) is carried out once.
//!
//! `DIR/journal` is a text file of records `S|D|F|R|U ID TIME_MS\n`: `S`
//! before a command is sent, `D` once it was sent (or a person resolved it),
//! `F` when it failed for good (it was not delivered, so a later delivery
//! may try it again), `R` once an interrupted command (below) was reported,
//! `U` when it was not sent at all because the channel could not work as set
//! up (the command is forgotten). Each record is appended and `fsync`ed
//! before the executor goes on. On open, a torn last record (a crash
//! mid-write) is cut off.
//!
//! The window between `S` and `D` is the one place a crash leaves the outcome
//! unknown: the command may or may not have reached its channel. The
//! executor treats such a command as *interrupted* (see `send`): by default
//! it is not sent again (at most once) and is reported as a failure once
//! (then `R`), and `--retry-interrupted` sends it again (at least once).
//! `--resolve ID` lets a person who checked mark it done.
//!
//! # A bounded journal
//!
//! Commands finished (`D`, `F`) longer ago than the *horizon* (`--horizon`,
//! 30 days by default) are forgotten when the journal is opened, and the
//! file is then rewritten with only what is kept (write, fsync, rename,
//! directory fsync), as it is when superseded records pile up. So the
//! journal holds about one record per command of the horizon, however long
//! the executor runs. The horizon must be longer than any redelivery: a
//! command read again after it is forgotten is sent again. Interrupted
//! commands (`S`, `R`) are kept until resolved.
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
    /// Interrupted, and reported as such once; kept until resolved.
    Reported,
}

impl State {
    fn tag(self) -> u8 {
        match self {
            State::Started => b'S',
            State::Done => b'D',
            State::Failed => b'F',
            State::Reported => b'R',
        }
    }
}

/// An open journal (or, without a directory, one kept in memory).
pub struct Journal {
    file: Option<(File, PathBuf)>,
    _lock: Option<File>,
    /// Each command's state and the time of its last record.
    states: HashMap<Id, (State, i64)>,
}

/// A command id (16 to 64 hex digits) held as its bytes: half the memory of
/// the text, and no allocation beyond the one box.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Id(Box<[u8]>);

impl Id {
    /// Marks an id kept as its text (one with capital letters).
    const TEXT: u8 = 0xff;

    fn parse(text: &str) -> Option<Id> {
        if !is_valid_id(text) {
            return None;
        }
        let digits = text.as_bytes();
        let mut bytes = Vec::with_capacity(digits.len() / 2 + 2);
        if digits.iter().any(u8::is_ascii_uppercase) {
            bytes.push(Self::TEXT);
            bytes.extend_from_slice(digits);
        } else {
            // The length first (16 to 64): an odd count of digits pads.
            bytes.push(digits.len() as u8);
            for pair in digits.chunks(2) {
                let lo = pair.get(1).map_or(0, |&d| hex_val(d));
                bytes.push(hex_val(pair[0]) << 4 | lo);
            }
        }
        Some(Id(bytes.into_boxed_slice()))
    }

    fn text(&self) -> String {
        if self.0[0] == Self::TEXT {
            return String::from_utf8_lossy(&self.0[1..]).into_owned();
        }
        let mut s = String::with_capacity(self.0.len() * 2);
        for b in &self.0[1..] {
            s.push(char::from_digit((b >> 4) as u32, 16).expect("a nibble"));
            s.push(char::from_digit((b & 15) as u32, 16).expect("a nibble"));
        }
        s.truncate(self.0[0] as usize);
        s
    }
}

fn hex_val(d: u8) -> u8 {
    (d as char).to_digit(16).unwrap_or(0) as u8
}

/// How long finished commands are remembered by default (see the module
/// documentation).
pub const DEFAULT_HORIZON_MS: i64 = 30 * 24 * 3600 * 1000;

impl Journal {
    /// A journal in memory only: duplicates within one run are still caught.
    pub fn in_memory() -> Self {
        Journal {
            file: None,
            _lock: None,
            states: HashMap::new(),
        }
    }

    /// Opens (creating) the journal in `dir`, locking it; commands finished
    /// more than `horizon_ms` before `now_ms` are forgotten.
    pub fn open(dir: &Path, horizon_ms: i64, now_ms: i64) -> Result<Self> {
        let lock = lock_dir(dir, "executor")?;
        let path = dir.join("journal");
        let mut text = Vec::new();
        if path.exists() {
            File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut text))
                .with_context(|| format!("cannot read journal {}", path.display()))?;
        }
        let (mut states, good_len, records) =
            replay(&text).with_context(|| format!("journal {} is damaged", path.display()))?;
        let before = states.len();
        let oldest = now_ms.saturating_sub(horizon_ms);
        states.retain(|_, (state, at)| {
            matches!(state, State::Started | State::Reported) || *at >= oldest
        });
        let expired = before - states.len();
        // Cut a torn tail, drop superseded records, or forget what is past
        // the horizon (when that is worth a rewrite): rewrite atomically.
        if good_len < text.len()
            || records > 2 * states.len() + 1024
            || expired > 0 && expired * 4 >= before.max(1024)
        {
            let mut out = Vec::with_capacity(states.len() * 52);
            for (id, (state, at)) in &states {
                out.push(state.tag());
                out.push(b' ');
                out.extend_from_slice(id.text().as_bytes());
                out.push(b' ');
                out.extend_from_slice(itoa::Buffer::new().format(*at).as_bytes());
                out.push(b'\n');
            }
            crate::store::write_atomically(&path, &out)
                .with_context(|| format!("cannot replace journal {}", path.display()))?;
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
        Id::parse(id).and_then(|k| self.states.get(&k)).map(|s| s.0)
    }

    /// Forgets `id` durably: it was never sent (a setup error stopped the
    /// executor before it went), so a later run treats it as new.
    pub fn forget(&mut self, id: &str, now_ms: i64) -> Result<()> {
        self.append(b'U', id, now_ms)?;
        if let Some(k) = Id::parse(id) {
            self.states.remove(&k);
        }
        Ok(())
    }

    /// Records a state durably (appended and fsynced) before returning.
    pub fn record(&mut self, id: &str, state: State, now_ms: i64) -> Result<()> {
        let key = Id::parse(id).with_context(|| format!("{id:?} is not a command id"))?;
        self.append(state.tag(), id, now_ms)?;
        self.states.insert(key, (state, now_ms));
        Ok(())
    }

    /// Marks an interrupted command done, for a person who checked whether
    /// it arrived: it is never sent or reported again.
    pub fn resolve(&mut self, id: &str, now_ms: i64) -> Result<()> {
        match self.state(id) {
            Some(State::Started | State::Reported) => self.record(id, State::Done, now_ms),
            Some(other) => bail!("command {id} is not interrupted (the journal has it {other:?})"),
            None => bail!("command {id} is not in the journal"),
        }
    }

    /// The commands interrupted and not yet resolved.
    pub fn interrupted(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .states
            .iter()
            .filter(|(_, (s, _))| matches!(s, State::Started | State::Reported))
            .map(|(id, _)| id.text())
            .collect();
        ids.sort();
        ids
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

/// Creates `dir` and takes its advisory lock (`DIR/lock`), so that two
/// processes (`who`: executors, deciders) never share one state directory.
pub fn lock_dir(dir: &Path, who: &str) -> Result<File> {
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
        Ok(()) => Ok(lock),
        Err(fs::TryLockError::WouldBlock) => bail!(
            "state directory {} is in use by another {who}",
            dir.display()
        ),
        Err(fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", lock_path.display()))
        }
    }
}

/// Each command's state and time, as replayed.
type States = HashMap<Id, (State, i64)>;

/// Replays records: the states, the length of the whole records read, and
/// how many records there were. A last record without its `\n` is torn and
/// left out; a malformed record before it is an error.
fn replay(text: &[u8]) -> Result<(States, usize, usize)> {
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
                "R" => Some(State::Reported),
                "U" => None,
                _ => return None,
            };
            let id = Id::parse(parts.next()?)?;
            let at = parts.next()?.parse::<i64>().ok()?;
            parts.next().is_none().then_some((id, state, at))
        });
        let Some((id, state, at)) = rec else {
            bail!(
                "record {} at byte {pos} is not \"S|D|F|R|U ID TIME\": {:?}",
                records + 1,
                String::from_utf8_lossy(line)
            );
        };
        match state {
            Some(state) => states.insert(id, (state, at)),
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
            let mut j = Journal::open(dir.path(), DEFAULT_HORIZON_MS, 10).unwrap();
            j.record(A, State::Started, 1).unwrap();
            j.record(A, State::Done, 2).unwrap();
            j.record(B, State::Started, 3).unwrap();
        }
        let j = Journal::open(dir.path(), DEFAULT_HORIZON_MS, 10).unwrap();
        assert_eq!(j.state(A), Some(State::Done));
        assert_eq!(j.state(B), Some(State::Started));
        assert_eq!(j.state("00000000000000000000000000000000"), None);
    }

    #[test]
    fn a_torn_tail_is_cut_and_garbage_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        fs::write(&path, format!("S {A} 1\nD {A} 2\nS {B}")).unwrap();
        let mut j = Journal::open(dir.path(), DEFAULT_HORIZON_MS, 10).unwrap();
        assert_eq!(j.state(A), Some(State::Done));
        assert_eq!(j.state(B), None);
        j.record(B, State::Done, 5).unwrap();
        drop(j);
        let j = Journal::open(dir.path(), DEFAULT_HORIZON_MS, 10).unwrap();
        assert_eq!(j.state(B), Some(State::Done));
        drop(j);
        fs::write(&path, format!("S {A} 1\nX junk\nD {A} 2\n")).unwrap();
        let err = Journal::open(dir.path(), DEFAULT_HORIZON_MS, 10)
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("damaged"), "{err:#}");
    }

    #[test]
    fn one_executor_per_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _j = Journal::open(dir.path(), DEFAULT_HORIZON_MS, 10).unwrap();
        let err = Journal::open(dir.path(), DEFAULT_HORIZON_MS, 10)
            .err()
            .unwrap();
        assert!(err.to_string().contains("in use"), "{err}");
    }

    #[test]
    fn finished_commands_past_the_horizon_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let day = 24 * 3600 * 1000;
        {
            let mut j = Journal::open(dir.path(), 10 * day, 0).unwrap();
            for i in 0..4000u64 {
                let id = format!("{i:032x}");
                j.record(&id, State::Started, i as i64 * day / 100).unwrap();
                j.record(&id, State::Done, i as i64 * day / 100).unwrap();
            }
            j.record(A, State::Started, 0).unwrap();
            j.record(B, State::Failed, 0).unwrap();
        }
        // Day 45: what finished before day 35 goes; the interrupted one stays.
        let j = Journal::open(dir.path(), 10 * day, 45 * day).unwrap();
        assert_eq!(j.state(&format!("{:032x}", 3499)), None);
        assert_eq!(j.state(&format!("{:032x}", 3500)), Some(State::Done));
        assert_eq!(j.state(A), Some(State::Started));
        assert_eq!(j.state(B), None);
        assert_eq!(j.len(), 501);
        drop(j);
        // Rewritten with the times kept: opening again changes nothing.
        let text = fs::read_to_string(dir.path().join("journal")).unwrap();
        assert_eq!(text.lines().count(), 501);
        let j = Journal::open(dir.path(), 10 * day, 45 * day).unwrap();
        assert_eq!(j.len(), 501);
    }

    #[test]
    fn interrupted_commands_are_resolved_by_hand() {
        let dir = tempfile::tempdir().unwrap();
        let upper = "0123456789ABCDEF0123";
        let mut j = Journal::open(dir.path(), DEFAULT_HORIZON_MS, 10).unwrap();
        j.record(A, State::Started, 1).unwrap();
        j.record(upper, State::Reported, 1).unwrap();
        j.record(B, State::Done, 1).unwrap();
        assert_eq!(j.interrupted(), [upper.to_string(), A.to_string()]);
        assert!(j.resolve(B, 2).is_err());
        assert!(j.resolve("00000000000000000", 2).is_err());
        j.resolve(A, 2).unwrap();
        j.resolve(upper, 2).unwrap();
        drop(j);
        let j = Journal::open(dir.path(), DEFAULT_HORIZON_MS, 10).unwrap();
        assert_eq!(j.state(A), Some(State::Done));
        assert_eq!(j.state(upper), Some(State::Done));
        assert_eq!(j.state(&upper.to_lowercase()), None);
        assert!(j.interrupted().is_empty());
    }

    #[test]
    fn superseded_records_are_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for i in 0..3000 {
            text.push_str(&format!("{} {A} {i}\n", if i % 2 == 0 { "S" } else { "D" }));
        }
        fs::write(dir.path().join("journal"), text).unwrap();
        let j = Journal::open(dir.path(), DEFAULT_HORIZON_MS, 10).unwrap();
        assert_eq!(j.state(A), Some(State::Done));
        let text = fs::read_to_string(dir.path().join("journal")).unwrap();
        assert_eq!(text.lines().count(), 1);
    }
}
