//! Reading one partition: from the beginning, the end, an offset, the last N
//! records or a time, through all its segments, checking every record's
//! CRC-32C and the density of offsets. A torn or unfinished record at the very
//! end is not read (it is either being written or will be truncated by the
//! next append); a bad record with good records after it is corruption and
//! stops the reader with the partition, segment, byte and offset.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::record::{self, Record};
use super::segment::{self, LOG_EXT};
use super::Log;

const READ_BUFFER: usize = 1 << 20;

/// Where a reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest record still held.
    Beginning,
    /// After the last record: only new records are read.
    End,
    /// A given offset (clamped to what the partition holds).
    Offset(u64),
    /// The last N records.
    Last(u64),
    /// The first record appended at or after this time (ms since the epoch).
    Time(i64),
}

/// What one call to [`PartitionReader::read`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadProgress {
    /// Records passed to the callback.
    pub records: usize,
    /// True when the partition has no more complete records for now.
    pub at_end: bool,
    /// Set when the reader found that retention had deleted records it had
    /// not read yet: it stopped there and goes on from the oldest record
    /// left at the next call.
    pub missed: Option<Missed>,
}

/// Records deleted by retention before a reader got to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missed {
    /// The first offset missed.
    pub from: u64,
    /// The oldest offset still held, where reading goes on.
    pub to: u64,
}

impl Missed {
    /// How many records were missed.
    pub fn count(&self) -> u64 {
        self.to - self.from
    }
}

/// A cursor over one partition's records.
pub struct PartitionReader {
    dir: PathBuf,
    partition: u32,
    segments: Vec<u64>,
    current: usize,
    file: Option<File>,
    /// Position in the current segment file of `buf[start]`.
    file_pos: u64,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Offset the next record in the file must carry.
    expected: u64,
    /// Records before this offset are read and checked but not delivered.
    deliver_from: u64,
    /// Records before this time are read and checked but not delivered.
    deliver_from_time: Option<i64>,
    /// True right after a seek by index, whose entry is only a hint.
    checking_hint: bool,
    /// The partition's recovery point when the reader opened: records
    /// below it were acknowledged, so the partition may not end before it.
    floor: u64,
    /// A retention gap found and not yet reported by `read`.
    pending_gap: Option<Missed>,
}

impl PartitionReader {
    /// Opens partition `p` of `log` at `start`.
    pub fn open(log: &Log, p: u32, start: StartAt) -> Result<Self> {
        log.check_partition(p)?;
        let dir = log.partition_dir(p);
        let segments = segment::list(&dir)?;
        let mut reader = PartitionReader {
            dir,
            partition: p,
            segments,
            current: 0,
            file: None,
            file_pos: 0,
            buf: vec![0; READ_BUFFER],
            start: 0,
            end: 0,
            expected: 0,
            deliver_from: 0,
            deliver_from_time: None,
            checking_hint: false,
            floor: 0,
            pending_gap: None,
        };
        reader.floor = super::recovery::load(&reader.dir)?
            .map(|rp| rp.next_offset)
            .unwrap_or(0);
        // Retention may delete the segment picked between listing and
        // opening it: list again and retry.
        let mut attempts = 0;
        loop {
            match reader.start_at(log, p, start) {
                Err(e) if attempts < 5 && is_not_found(&e) => {
                    attempts += 1;
                    reader.segments = segment::list(&reader.dir)?;
                }
                other => break other?,
            }
        }
        Ok(reader)
    }

    fn start_at(&mut self, log: &Log, p: u32, start: StartAt) -> Result<()> {
        let reader = self;
        let first = reader.segments.first().copied().unwrap_or(0);
        match start {
            StartAt::Beginning => reader.seek_offset(first)?,
            StartAt::End => {
                let end = end_offset(log, p)?;
                reader.seek_offset(end)?;
            }
            StartAt::Offset(o) => {
                reader.seek_offset(o.max(first))?;
                if o < first {
                    reader.pending_gap = Some(Missed { from: o, to: first });
                }
            }
            StartAt::Last(n) => {
                let end = end_offset(log, p)?;
                reader.seek_offset(end.saturating_sub(n).max(first))?;
            }
            StartAt::Time(t) => reader.seek_time(t)?,
        }
        Ok(())
    }

    /// The partition this reader reads.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// The offset of the next record this reader will deliver.
    pub fn position(&self) -> u64 {
        self.expected.max(self.deliver_from)
    }

    fn seek_offset(&mut self, offset: u64) -> Result<()> {
        self.current = self
            .segments
            .partition_point(|&base| base <= offset)
            .saturating_sub(1);
        self.deliver_from = offset;
        self.deliver_from_time = None;
        let Some(&base) = self.segments.get(self.current) else {
            self.expected = offset;
            return Ok(());
        };
        let len = self.open_current()?;
        let index = segment::read_index(&self.dir, base, len)?;
        match segment::lookup_offset(&index, offset) {
            Some(entry) => self.reset_at(entry.position, entry.offset, true),
            None => self.reset_at(0, base, false),
        }
        Ok(())
    }

    fn seek_time(&mut self, time_ms: i64) -> Result<()> {
        // Append times never decrease within a partition, so the records at
        // or after `time_ms` start in the last segment whose first record is
        // older than it.
        let mut chosen = 0;
        for (i, &base) in self.segments.iter().enumerate() {
            match first_record_time(&segment::path(&self.dir, base, LOG_EXT))? {
                Some(t) if t < time_ms => chosen = i,
                _ => break,
            }
        }
        let first = self.segments.first().copied().unwrap_or(0);
        self.seek_offset(self.segments.get(chosen).copied().unwrap_or(first))?;
        self.deliver_from_time = Some(time_ms);
        if let Some(&base) = self.segments.get(chosen) {
            let times = segment::read_time_index(&self.dir, base)?;
            if let Some(entry) = segment::lookup_time(&times, time_ms) {
                self.seek_offset(entry.offset)?;
                self.deliver_from_time = Some(time_ms);
            }
        }
        Ok(())
    }

    fn open_current(&mut self) -> Result<u64> {
        let base = self.segments[self.current];
        let path = segment::path(&self.dir, base, LOG_EXT);
        let file = open_segment(&path)?;
        let len = file
            .metadata()
            .with_context(|| format!("cannot read segment {}", path.display()))?
            .len();
        self.file = Some(file);
        Ok(len)
    }

    fn reset_at(&mut self, position: u64, expected: u64, hint: bool) {
        self.file_pos = position;
        self.start = 0;
        self.end = 0;
        self.expected = expected;
        self.checking_hint = hint;
    }

    fn segment_path(&self) -> PathBuf {
        segment::path(&self.dir, self.segments[self.current], LOG_EXT)
    }

    /// Reads up to `max` records, passing each to `deliver`, and stops early
    /// when the partition has nothing more for now.
    pub fn read(
        &mut self,
        max: usize,
        deliver: &mut dyn FnMut(Record<'_>) -> Result<()>,
    ) -> Result<ReadProgress> {
        let mut delivered = 0;
        if let Some(gap) = self.pending_gap.take() {
            return Ok(ReadProgress {
                records: 0,
                at_end: false,
                missed: Some(gap),
            });
        }
        while delivered < max {
            let Some(nl) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) else {
                if self.fill()? {
                    continue;
                }
                if self.next_segment()? {
                    if let Some(gap) = self.pending_gap.take() {
                        return Ok(ReadProgress {
                            records: delivered,
                            at_end: false,
                            missed: Some(gap),
                        });
                    }
                    continue;
                }
                // Leave an unfinished record unread and look at it afresh
                // next time: it may be completed, or truncated and rewritten.
                self.rewind_to(self.start);
                self.check_floor()?;
                return Ok(ReadProgress {
                    records: delivered,
                    at_end: true,
                    missed: None,
                });
            };
            let line_start = self.start;
            let line_end = self.start + nl;
            let decoded = record::decode(&self.buf[line_start..line_end]);
            let rec = match decoded {
                Ok(rec) if rec.offset == self.expected => rec,
                Ok(rec) if self.checking_hint => {
                    let _ = rec;
                    self.hint_failed();
                    continue;
                }
                Err(_) if self.checking_hint => {
                    self.hint_failed();
                    continue;
                }
                Ok(rec) => bail!(
                    "partition {} is corrupt: {} byte {} holds offset {} where offset {} was expected; run `log-tail --verify` on the log",
                    self.partition,
                    self.segment_path().display(),
                    self.file_pos + line_start as u64,
                    rec.offset,
                    self.expected
                ),
                Err(e) => {
                    let after = self.file_pos + line_end as u64 + 1;
                    if self.valid_record_follows(after)? {
                        bail!(
                            "partition {} is corrupt: the record at offset {} ({} byte {}) {}; records after it are intact. Run `log-tail --verify` on the log; to read past it, start after it with --from {}",
                            self.partition,
                            self.expected,
                            self.segment_path().display(),
                            self.file_pos + line_start as u64,
                            e,
                            self.expected + 1
                        );
                    }
                    // A torn tail: leave it unread. Next time we look again
                    // from here, since an appender may truncate and rewrite it.
                    self.rewind_to(line_start);
                    self.check_floor()?;
                    return Ok(ReadProgress {
                        records: delivered,
                        at_end: true,
                        missed: None,
                    });
                }
            };
            self.checking_hint = false;
            self.start = line_end + 1;
            self.expected = rec.offset + 1;
            if rec.offset < self.deliver_from {
                continue;
            }
            if let Some(t) = self.deliver_from_time {
                if rec.time_ms < t {
                    continue;
                }
                self.deliver_from_time = None;
            }
            deliver(rec)?;
            delivered += 1;
        }
        Ok(ReadProgress {
            records: delivered,
            at_end: false,
            missed: None,
        })
    }

    /// At the end of what the partition holds: an end below the recovery
    /// point means acknowledged records were lost or damaged.
    fn check_floor(&self) -> Result<()> {
        if self.expected < self.floor {
            let at = if self.segments.is_empty() || self.file.is_none() {
                "it has no segment left".to_string()
            } else {
                format!(
                    "the valid records end at offset {} in {} byte {}",
                    self.expected,
                    self.segment_path().display(),
                    self.file_pos + self.start as u64
                )
            };
            bail!(
                "damaged log: partition {} lost acknowledged records: they were durable up to offset {} (its recovery point), but {at}. Run `log-tail --verify` and restore the partition from a backup",
                self.partition,
                self.floor - 1
            );
        }
        Ok(())
    }

    fn hint_failed(&mut self) {
        let base = self.segments[self.current];
        self.reset_at(0, base, false);
    }

    fn rewind_to(&mut self, buf_pos: usize) {
        self.file_pos += buf_pos as u64;
        self.start = 0;
        self.end = 0;
    }

    /// Reads more of the current segment; false when there is nothing more.
    fn fill(&mut self) -> Result<bool> {
        if self.file.is_none() {
            if self.segments.is_empty() {
                self.segments = segment::list(&self.dir)?;
                if self.segments.is_empty() {
                    return Ok(false);
                }
                self.current = 0;
                let base = self.segments[0];
                self.reset_at(0, base, false);
            }
            self.open_current()?;
        }
        if self.start > 0 {
            self.file_pos += self.start as u64;
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // One record longer than the buffer: grow to hold it.
            let grown = self.buf.len() * 2;
            self.buf.resize(grown, 0);
        }
        let file = self.file.as_ref().expect("segment open");
        let n = loop {
            match file.read_at(&mut self.buf[self.end..], self.file_pos + self.end as u64) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        }
        .with_context(|| format!("cannot read segment {}", self.segment_path().display()))?;
        self.end += n;
        Ok(n > 0)
    }

    /// Moves to the next segment when the current one is finished and a
    /// newer one exists; false at the end of the partition. When retention
    /// has deleted the segments this reader was about to read, it moves to
    /// the oldest one left and notes the gap for `read` to report.
    fn next_segment(&mut self) -> Result<bool> {
        if self.file.is_none() {
            return Ok(false);
        }
        let base = self.segments[self.current];
        let mut attempts = 0;
        loop {
            if self.current + 1 >= self.segments.len() || attempts > 0 {
                self.segments = segment::list(&self.dir)?;
                // Retention may have deleted older segments meanwhile.
                self.current = self.segments.partition_point(|&b| b < base);
                let newer = self.segments.partition_point(|&b| b <= base);
                if newer >= self.segments.len() {
                    // Keep `current` naming our segment, even if deleted.
                    self.segments.insert(self.current, base);
                    self.segments.dedup();
                    self.current = self.segments.partition_point(|&b| b < base);
                    return Ok(false);
                }
                if self.segments.get(self.current) != Some(&base) {
                    self.segments.insert(self.current, base);
                }
            }
            // The segment must end exactly at a record boundary before a newer
            // segment starts, and the newer one must start at the next offset.
            if self.start < self.end {
                let at = self.file_pos + self.start as u64;
                // A leftover without a newline might be a record still being
                // written if this were the last segment; it is not.
                bail!(
                    "partition {} is corrupt: {} ends with an incomplete record at byte {} (offset {}); run `log-tail --verify` on the log",
                    self.partition,
                    self.segment_path().display(),
                    at,
                    self.expected
                );
            }
            let next_base = self.segments[self.current + 1];
            if next_base != self.expected {
                let listed = segment::list(&self.dir)?;
                let oldest = listed.first().copied();
                if next_base > self.expected && oldest.is_some_and(|o| o > base) {
                    // Every segment up to ours is gone: retention deleted
                    // them while we read. Go on from the oldest left.
                    let oldest = oldest.expect("checked");
                    self.segments = listed;
                    self.current = 0;
                    match self.open_current() {
                        Ok(_) => {}
                        Err(e) if is_not_found(&e) && attempts < 5 => {
                            attempts += 1;
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                    self.pending_gap = Some(Missed {
                        from: self.expected,
                        to: oldest,
                    });
                    self.deliver_from = self.deliver_from.max(oldest);
                    self.reset_at(0, oldest, false);
                    return Ok(true);
                }
                bail!(
                    "partition {} is corrupt: segment {} should start at offset {} but starts at {}; run `log-tail --verify` on the log",
                    self.partition,
                    segment::path(&self.dir, next_base, LOG_EXT).display(),
                    self.expected,
                    next_base
                );
            }
            self.current += 1;
            match self.open_current() {
                Ok(_) => {}
                Err(e) if is_not_found(&e) && attempts < 5 => {
                    // Deleted by retention after we listed it.
                    self.current -= 1;
                    attempts += 1;
                    continue;
                }
                Err(e) => return Err(e),
            }
            self.reset_at(0, next_base, false);
            return Ok(true);
        }
    }

    /// True when a valid record lies after byte `from` of the current
    /// segment, or a newer segment exists: then a bad record is corruption,
    /// not a torn tail.
    fn valid_record_follows(&self, from: u64) -> Result<bool> {
        if self.current + 1 < segment::list(&self.dir)?.len() {
            return Ok(true);
        }
        let file = self.file.as_ref().expect("segment open");
        valid_record_in(file, from)
            .with_context(|| format!("cannot read segment {}", self.segment_path().display()))
    }
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    })
}

fn valid_record_in(file: &File, mut pos: u64) -> std::io::Result<bool> {
    let mut buf = vec![0u8; READ_BUFFER];
    let mut carry = 0usize;
    loop {
        let n = file.read_at(&mut buf[carry..], pos)?;
        if n == 0 {
            return Ok(false);
        }
        pos += n as u64;
        let filled = carry + n;
        let mut line_start = 0;
        while let Some(i) = memchr::memchr(b'\n', &buf[line_start..filled]) {
            if record::decode(&buf[line_start..line_start + i]).is_ok() {
                return Ok(true);
            }
            line_start += i + 1;
        }
        carry = filled - line_start;
        if carry == buf.len() {
            carry = 0;
        } else {
            buf.copy_within(line_start..filled, 0);
        }
    }
}

/// Opens a segment for reading: a regular file, never through a link.
pub(crate) fn open_segment(path: &Path) -> Result<File> {
    super::file::open(path, super::file::Mode::Read)
        .with_context(|| format!("cannot open segment {}", path.display()))
}

fn first_record_time(path: &Path) -> Result<Option<i64>> {
    let file = open_segment(path)?;
    let mut buf = [0u8; 64];
    let n = file.read_at(&mut buf, 0)?;
    Ok(record::peek_offset_time(&buf[..n]).map(|(_, t)| t))
}

/// Summary of a partition's last complete record, as recovery finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail {
    /// The next offset to be written.
    pub next_offset: u64,
    /// Append time of the last record (0 when empty).
    pub last_time_ms: i64,
    /// Bytes of the segment that hold complete, valid records.
    pub valid_len: u64,
    /// Bytes after them: a torn or garbage tail.
    pub torn_bytes: u64,
    /// True when a bad record has valid records after it.
    pub corrupt: bool,
}

/// Scans the end of a segment from the last index entry that checks out (or
/// from `known`, a position and offset already known good) to find where its
/// valid records end.
pub fn scan_tail(dir: &Path, base: u64, known: Option<(u64, u64)>) -> Result<Tail> {
    let path = segment::path(dir, base, LOG_EXT);
    let file = open_segment(&path)?;
    let len = file.metadata()?.len();
    let (mut pos, mut expected) = match known {
        Some(k) => k,
        None => {
            let index = segment::read_index(dir, base, len)?;
            index
                .iter()
                .rev()
                .find(|e| record_at(&file, e.position) == Some(e.offset))
                .map(|e| (e.position, e.offset))
                .unwrap_or((0, base))
        }
    };
    let mut last_time = 0;
    let mut buf = vec![0u8; READ_BUFFER];
    let mut carry = 0usize;
    let mut corrupt = false;
    let mut bad_at: Option<u64> = None;
    let mut read_pos = pos;
    'outer: loop {
        // Only the `len` bytes measured above: a reader scans without the
        // partition's lock, and records appended meanwhile are past them.
        let unread = len.saturating_sub(read_pos);
        let room = (buf.len() - carry).min(usize::try_from(unread).unwrap_or(usize::MAX));
        let n = file.read_at(&mut buf[carry..carry + room], read_pos)?;
        if n == 0 {
            break;
        }
        read_pos += n as u64;
        let filled = carry + n;
        let mut line_start = 0;
        while let Some(i) = memchr::memchr(b'\n', &buf[line_start..filled]) {
            let line = &buf[line_start..line_start + i];
            match record::decode(line) {
                Ok(rec) if bad_at.is_none() && rec.offset == expected => {
                    expected += 1;
                    last_time = rec.time_ms;
                    pos += i as u64 + 1;
                }
                Ok(_) if bad_at.is_some() => {
                    corrupt = true;
                    break 'outer;
                }
                _ => {
                    if bad_at.is_none() {
                        bad_at = Some(pos);
                    }
                }
            }
            line_start += i + 1;
        }
        carry = filled - line_start;
        if carry == buf.len() {
            let grown = buf.len() * 2;
            buf.resize(grown, 0);
        } else {
            buf.copy_within(line_start..filled, 0);
        }
    }
    if last_time == 0 && pos > 0 {
        // The scan started past the records it could read the time of.
        last_time = last_time_before(&file, pos)?;
    }
    Ok(Tail {
        next_offset: expected,
        last_time_ms: last_time,
        valid_len: pos,
        torn_bytes: len.saturating_sub(pos),
        corrupt,
    })
}

fn record_at(file: &File, position: u64) -> Option<u64> {
    let mut buf = [0u8; 64];
    let n = file.read_at(&mut buf, position).ok()?;
    record::peek_offset_time(&buf[..n]).map(|(o, _)| o)
}

fn last_time_before(file: &File, end: u64) -> Result<i64> {
    let from = end.saturating_sub(READ_BUFFER as u64);
    let mut buf = vec![0u8; (end - from) as usize];
    file.read_exact_at(&mut buf, from)?;
    let body = &buf[..buf.len().saturating_sub(1)];
    let line_start = memchr::memrchr(b'\n', body).map(|i| i + 1).unwrap_or(0);
    Ok(record::peek_offset_time(&body[line_start..])
        .map(|(_, t)| t)
        .unwrap_or(0))
}

/// The next offset to be written to partition `p`: one past its last valid
/// record.
pub fn end_offset(log: &Log, p: u32) -> Result<u64> {
    let dir = log.partition_dir(p);
    // The recovery point first: what was durable then is in the segment
    // when it is scanned after, however much is appended in between (read
    // the other way round, a sync in between looked like lost records).
    let recovery_point = super::recovery::load(&dir)?;
    let end = match segment::list(&dir)?.last() {
        Some(&base) => scan_tail(&dir, base, None)?.next_offset,
        None => 0,
    };
    if let Some(rp) = recovery_point {
        if end < rp.next_offset {
            bail!(
                "damaged log: partition {p} lost acknowledged records: they were durable up to offset {} (its recovery point), but its valid records end at offset {end}. Run `log-tail --verify` and restore the partition from a backup",
                rp.next_offset - 1
            );
        }
    }
    Ok(end)
}
