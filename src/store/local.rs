//! The file log behind the [`backend`](super::backend) interface: a
//! producer over the [`Appender`] and a consumer over one
//! [`PartitionReader`] per partition, with groups in `LOG/groups`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use super::append::{AppendOptions, Appender};
use super::backend::{
    Flushed, LogConsumer, LogProducer, Polled, Position, ProducerMarks, Route, StartAt,
};
use super::group::{self, Group};
use super::producer::Producer;
use super::read::{end_offset, PartitionReader};
use super::record::Record;
use super::Log;
use crate::position::{Held, PositionRef, Source};

/// Records read from one partition before the next one's turn.
const TURN: u64 = 4096;

/// Appends to a file log.
pub struct FileProducer {
    appender: Appender,
    location: String,
    /// Positions of events written (visible) but not yet synced, when
    /// wanted; otherwise only their count.
    written: Vec<Position>,
    written_count: u64,
    keep_positions: bool,
}

impl FileProducer {
    /// Opens (creating when missing) the log at `dir`.
    pub fn open(dir: &Path, options: &AppendOptions) -> Result<FileProducer> {
        Ok(FileProducer {
            appender: Appender::open(dir, options)?,
            location: dir.display().to_string(),
            written: Vec::new(),
            written_count: 0,
            keep_positions: false,
        })
    }

    /// The log, for its file-only settings.
    pub fn log_mut(&mut self) -> &mut Log {
        self.appender.log_mut()
    }
}

impl LogProducer for FileProducer {
    fn location(&self) -> &str {
        &self.location
    }

    fn partitions(&self) -> u32 {
        self.appender.log().partitions()
    }

    fn check_partition(&self, p: u32) -> Result<()> {
        self.appender.log().check_partition(p)
    }

    fn append(&mut self, route: Route<'_>, event: &[u8]) -> Result<()> {
        match route {
            Route::Any => self.appender.append(event, None)?,
            Route::Key(k) => self.appender.append(event, Some(k))?,
            Route::Partition(p) => self.appender.append_to(p, event)?,
        }
        // Written in large batches, synced at flush: memory stays flat and
        // fsync works on much at once.
        if self.appender.should_commit() {
            let positions = self.appender.write()?;
            self.written_count += positions.len() as u64;
            if self.keep_positions {
                self.written.extend(positions);
            }
        }
        Ok(())
    }

    fn unflushed_bytes(&self) -> u64 {
        self.appender.unsynced_bytes() + self.appender.pending_bytes() as u64
    }

    fn want_positions(&mut self) {
        self.keep_positions = true;
    }

    fn flush(&mut self) -> Result<Flushed> {
        let mut positions = self.appender.write()?;
        self.appender.sync()?;
        let events = std::mem::take(&mut self.written_count) + positions.len() as u64;
        if !self.keep_positions {
            positions.clear();
        } else if !self.written.is_empty() {
            self.written.append(&mut positions);
            positions = std::mem::take(&mut self.written);
        }
        Ok(Flushed { events, positions })
    }

    fn marks(&mut self, name: &str) -> Result<Box<dyn ProducerMarks>> {
        // The marks follow where this producer's records go.
        self.keep_positions = true;
        Ok(Box::new(Producer::open(self.appender.log(), name)?))
    }
}

impl ProducerMarks for Producer {
    fn holds(&self, position: PositionRef<'_>) -> bool {
        Producer::holds(self, position)
    }
    fn record(&mut self, position: PositionRef<'_>) {
        Producer::record(self, position)
    }
    fn finished(&mut self, source: &Source, offset: u64) {
        Producer::finished(self, source, offset)
    }
    fn wrote(&mut self, positions: &[Position]) {
        Producer::wrote(self, positions)
    }
    fn save(&mut self, now: bool) -> Result<()> {
        Producer::save(self, now)
    }
    fn held(&self) -> &Held {
        Producer::held(self)
    }
}

/// Reads a file log.
pub struct FileConsumer {
    log: Log,
    location: String,
    readers: Vec<PartitionReader>,
    /// The reader whose turn is next.
    next: usize,
    group: Option<Group>,
}

impl FileConsumer {
    /// Opens the log at `dir` for reading.
    pub fn open(dir: &Path) -> Result<FileConsumer> {
        Ok(FileConsumer::from_log(Log::open(dir)?))
    }

    /// Reads an already opened log.
    pub fn from_log(log: Log) -> FileConsumer {
        FileConsumer {
            location: log.dir().display().to_string(),
            log,
            readers: Vec::new(),
            next: 0,
            group: None,
        }
    }

    /// The log, for file-only operations.
    pub fn log(&self) -> &Log {
        &self.log
    }
}

impl LogConsumer for FileConsumer {
    fn location(&self) -> &str {
        &self.location
    }

    fn partitions(&self) -> u32 {
        self.log.partitions()
    }

    fn check_partition(&self, p: u32) -> Result<()> {
        self.log.check_partition(p)
    }

    fn id(&mut self) -> Result<String> {
        self.log.id()
    }

    fn bounds(&mut self, p: u32) -> Result<(u64, u64)> {
        self.log.bounds(p)
    }

    fn resolve(&mut self, p: u32, start: StartAt) -> Result<u64> {
        let mut reader = PartitionReader::open(&self.log, p, start)?;
        if !matches!(start, StartAt::Time(_)) {
            return Ok(reader.position());
        }
        // The reader skips records before the time lazily; find the first
        // record it would deliver.
        let mut found = None;
        let progress = reader.read(1, &mut |rec| {
            found = Some(rec.offset);
            Ok(())
        })?;
        Ok(match found {
            Some(o) => o,
            None if progress.at_end => end_offset(&self.log, p)?,
            None => reader.position(),
        })
    }

    fn assign(&mut self, starts: &[(u32, StartAt)], _follow: bool) -> Result<()> {
        self.readers = starts
            .iter()
            .map(|&(p, start)| PartitionReader::open(&self.log, p, start))
            .collect::<Result<_>>()?;
        self.next = 0;
        Ok(())
    }

    fn poll(
        &mut self,
        max: u64,
        deliver: &mut dyn FnMut(u32, Record<'_>) -> Result<()>,
    ) -> Result<Polled> {
        let mut polled = Polled {
            at_end: true,
            ..Polled::default()
        };
        let n = self.readers.len();
        // One round: each reader in turn, from where the last poll stopped.
        for _ in 0..n {
            if polled.records >= max {
                polled.at_end = false;
                break;
            }
            let i = self.next;
            self.next = (self.next + 1) % n;
            let reader = &mut self.readers[i];
            let turn = TURN.min(max - polled.records) as usize;
            let p = reader.partition();
            let progress = reader.read(turn, &mut |rec| deliver(p, rec))?;
            polled.records += progress.records as u64;
            polled.at_end &= progress.at_end;
            if let Some(gap) = progress.missed {
                polled.missed = Some((p, gap));
                polled.at_end = false;
                break;
            }
        }
        Ok(polled)
    }

    fn positions(&self) -> Vec<(u32, u64)> {
        self.readers
            .iter()
            .map(|r| (r.partition(), r.position()))
            .collect()
    }

    fn committed(&mut self, name: &str) -> Result<BTreeMap<u32, u64>> {
        Ok(group::load(&self.log, name)?.positions)
    }

    fn join(&mut self, name: &str) -> Result<BTreeMap<u32, u64>> {
        let group = Group::open(&self.log, name)?;
        let committed = (0..self.log.partitions())
            .filter_map(|p| group.position(p).map(|o| (p, o)))
            .collect();
        self.group = Some(group);
        Ok(committed)
    }

    fn commit(&mut self, positions: &[(u32, u64)]) -> Result<()> {
        match &mut self.group {
            Some(g) => g.commit(positions.iter().copied()),
            None => Ok(()),
        }
    }
}
