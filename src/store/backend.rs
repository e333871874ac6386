//! The seam between the tools and a log: what `log-append`, `log-tail` and
//! the `--bad` sink need of a log, whichever backend holds it (after
//! raft-engine's `PipeLog` trait and its file implementation). A producer
//! appends with a [`Route`] and flushes, which returns the positions now
//! durable; a consumer polls records with their partition, offset and
//! append time, knows each partition's bounds, resolves a start (an offset,
//! the last N, a time) and keeps a consumer group's committed positions.
//!
//! File-only operations (verify, segment and retention settings, inspect)
//! are not here: they stay on [`super::Log`].

use std::collections::BTreeMap;

use anyhow::Result;

pub use super::append::Position;
use super::read::Missed;
pub use super::read::StartAt;
use super::record::Record;
use crate::position::{Held, PositionRef, Source};

/// Where an appended event goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// Any partition (round robin).
    Any,
    /// This partition.
    Partition(u32),
    /// The partition Kafka's murmur2 picks for this key (see
    /// [`super::partitioner`]), the same on every backend.
    Key(&'a [u8]),
}

/// Appends events to a log. An event counts as appended only once a
/// [`LogProducer::flush`] that covers it has returned.
pub trait LogProducer: Send {
    /// The log, as the user named it (for messages).
    fn location(&self) -> &str;

    /// The number of partitions.
    fn partitions(&self) -> u32;

    /// Checks that `p` is one of the log's partitions.
    fn check_partition(&self, p: u32) -> Result<()>;

    /// Hands one event on; it is durable only after the next flush.
    fn append(&mut self, route: Route<'_>, event: &[u8]) -> Result<()>;

    /// Bytes appended since the last flush (the caller flushes when it is
    /// large, so each flush covers a large batch).
    fn unflushed_bytes(&self) -> u64;

    /// Asks for each event's position from [`LogProducer::flush`] (which
    /// otherwise may only count them); opening marks asks for them too.
    fn want_positions(&mut self);

    /// Makes every event appended so far durable and says how many there
    /// were and, when wanted, their positions in the order appended.
    fn flush(&mut self) -> Result<Flushed>;

    /// Producer `name`'s held source positions in this log, for appending
    /// positioned events exactly once (see [`super::producer`]).
    fn marks(&mut self, name: &str) -> Result<Box<dyn ProducerMarks>>;
}

/// What one [`LogProducer::flush`] made durable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flushed {
    /// How many events.
    pub events: u64,
    /// Their positions, in the order appended (when wanted).
    pub positions: Vec<Position>,
}

/// One producer's held source positions in one log: what it has appended
/// (or finished with) per source partition. Kept in the same `unilog`
/// member on every backend.
pub trait ProducerMarks: Send {
    /// True when the producer already holds `position`: a duplicate.
    fn holds(&self, position: PositionRef<'_>) -> bool;

    /// Records that the event at `position` is being appended.
    fn record(&mut self, position: PositionRef<'_>);

    /// Records that everything derived from `source` up to `offset` is
    /// appended.
    fn finished(&mut self, source: &Source, offset: u64);

    /// Notes where this process's own records went (from a flush).
    fn wrote(&mut self, positions: &[Position]);

    /// Saves the marks, once what they reflect is durable; `now` forces
    /// it, otherwise a backend may save less often.
    fn save(&mut self, now: bool) -> Result<()>;

    /// What the producer holds.
    fn held(&self) -> &Held;
}

/// What one [`LogConsumer::poll`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Polled {
    /// Records delivered.
    pub records: u64,
    /// True when every partition read has nothing more for now (without
    /// following: has reached the end it had when reading started).
    pub at_end: bool,
    /// Records of this partition were deleted by retention before they
    /// were read: the poll stopped there, and the next one goes on from
    /// the oldest record left.
    pub missed: Option<(u32, Missed)>,
}

/// Reads a log's partitions, and keeps its consumer groups' positions.
pub trait LogConsumer {
    /// The log, as the user named it (for messages and commands to run).
    fn location(&self) -> &str;

    /// The number of partitions.
    fn partitions(&self) -> u32;

    /// Checks that `p` is one of the log's partitions.
    fn check_partition(&self, p: u32) -> Result<()>;

    /// The log's stable id, carried in every position `--with-position`
    /// writes.
    fn id(&mut self) -> Result<String>;

    /// The first offset still held and the next offset to be written.
    fn bounds(&mut self, p: u32) -> Result<(u64, u64)>;

    /// The offset a reader starting at `start` would deliver first (for
    /// a time: the first record appended at or after it, or the end).
    fn resolve(&mut self, p: u32, start: StartAt) -> Result<u64>;

    /// Starts reading these partitions from these places. Without
    /// `follow`, reading ends at each partition's end as it is now.
    fn assign(&mut self, starts: &[(u32, StartAt)], follow: bool) -> Result<()>;

    /// Delivers up to `max` records of the assigned partitions, taking
    /// turns between them.
    fn poll(
        &mut self,
        max: u64,
        deliver: &mut dyn FnMut(u32, Record<'_>) -> Result<()>,
    ) -> Result<Polled>;

    /// Per assigned partition, the offset of the next record to deliver.
    fn positions(&self) -> Vec<(u32, u64)>;

    /// A group's committed positions, without joining it (for reports).
    fn committed(&mut self, group: &str) -> Result<BTreeMap<u32, u64>>;

    /// Joins `group` to read as it (one reader per group at a time) and
    /// returns its committed positions.
    fn join(&mut self, group: &str) -> Result<BTreeMap<u32, u64>>;

    /// Commits the joined group's positions; call only once the events
    /// before them have left this process.
    fn commit(&mut self, positions: &[(u32, u64)]) -> Result<()>;
}

/// Every producer's held positions in a log, read from its records (the
/// `unilog` member with `"by":NAME`), per name; only `only`'s when given.
/// Reads the whole log: for a backend that keeps no marks beside its
/// records.
pub fn scan_held(
    consumer: &mut dyn LogConsumer,
    only: Option<&str>,
) -> Result<BTreeMap<String, Held>> {
    let starts: Vec<(u32, StartAt)> = (0..consumer.partitions())
        .map(|p| (p, StartAt::Beginning))
        .collect();
    consumer.assign(&starts, false)?;
    let mut held = BTreeMap::<String, Held>::new();
    loop {
        let polled = consumer.poll(1 << 16, &mut |_, rec| {
            if let Ok(Some(found)) = crate::position::locate(rec.event) {
                if let Some(by) = found.by {
                    if only.is_none_or(|o| o == by) {
                        held.entry(by).or_default().record(&found.position);
                    }
                }
            }
            Ok(())
        })?;
        if polled.at_end && polled.missed.is_none() {
            return Ok(held);
        }
    }
}
