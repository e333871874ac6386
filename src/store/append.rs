//! Appending to the file log. Events are buffered per partition and written
//! in chunks: under the partition's advisory lock the appender checks the
//! tail (another process may have appended, or a crash may have left a torn
//! record, which is truncated), assigns dense offsets and writes whole
//! records with one `write`. [`Appender::sync`] then fsyncs; only synced
//! events count as appended. Writing often and syncing seldom keeps memory
//! flat while fsync works on large batches.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::file::{self, Mode};
use super::read::{scan_tail, Tail};
use super::record;
use super::recovery::{self, RecoveryFile, RecoveryPoint};
use super::retention;
use super::segment::{self, IndexWriter, LOG_EXT};
use super::{open_lock, partitioner, sync_dir, Log, LogConfig};
use crate::time;

/// How an appender opens its log.
#[derive(Debug, Clone)]
pub struct AppendOptions {
    /// Settings for a log that does not exist yet.
    pub create: LogConfig,
    /// Fsync each batch before reporting it appended (on by default; off
    /// only for throwaway logs).
    pub sync: bool,
    /// Buffered bytes after which [`Appender::should_commit`] says to write.
    pub batch_bytes: usize,
}

impl Default for AppendOptions {
    fn default() -> Self {
        AppendOptions {
            create: LogConfig::default(),
            sync: true,
            batch_bytes: 8 << 20,
        }
    }
}

/// Where an appended event went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The partition.
    pub partition: u32,
    /// The event's offset in it.
    pub offset: u64,
}

/// Writes events into a log, safely beside other appender processes.
pub struct Appender {
    log: Log,
    sync: bool,
    batch_bytes: usize,
    partitions: Vec<PartitionWriter>,
    /// Partition of each buffered event, in the order appended.
    order: Vec<u32>,
    pending_bytes: usize,
    round_robin: u32,
}

impl Appender {
    /// Opens the log at `dir`, creating it when missing, and applies
    /// retention.
    pub fn open(dir: &Path, options: &AppendOptions) -> Result<Self> {
        let log = Log::open_or_create(dir, &options.create)?;
        let partitions = (0..log.partitions())
            .map(|p| PartitionWriter::new(&log, p))
            .collect::<Result<Vec<_>>>()?;
        let mut appender = Appender {
            log,
            sync: options.sync,
            batch_bytes: options.batch_bytes,
            partitions,
            order: Vec::new(),
            pending_bytes: 0,
            round_robin: random_start(),
        };
        for p in &mut appender.partitions {
            p.with_lock(|p| retention::apply(&appender.log, p.partition))?;
        }
        Ok(appender)
    }

    /// The log being appended to.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Mutable access to the log (to update its settings).
    pub fn log_mut(&mut self) -> &mut Log {
        &mut self.log
    }

    /// The partition an event with this key goes to: Kafka's murmur2 for a
    /// key, round robin without one.
    pub fn partition_for(&mut self, key: Option<&[u8]>) -> u32 {
        let n = self.log.partitions();
        match key {
            Some(k) => partitioner::partition_for_key(k, n),
            None => {
                let p = self.round_robin % n;
                self.round_robin = self.round_robin.wrapping_add(1);
                p
            }
        }
    }

    /// Buffers one event for the partition its key picks. It is durable only
    /// after the next [`Appender::commit`].
    pub fn append(&mut self, event: &[u8], key: Option<&[u8]>) -> Result<()> {
        let p = self.partition_for(key);
        self.append_to(p, event)
    }

    /// Buffers one event for partition `p`.
    pub fn append_to(&mut self, p: u32, event: &[u8]) -> Result<()> {
        self.log.check_partition(p)?;
        self.partitions[p as usize].pending.push(event);
        self.order.push(p);
        self.pending_bytes += event.len() + record::MAX_OVERHEAD;
        Ok(())
    }

    /// Bytes buffered and not yet written.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// True when enough is buffered that it should be written now.
    pub fn should_commit(&self) -> bool {
        self.pending_bytes >= self.batch_bytes
    }

    /// Writes and fsyncs everything buffered. Returns each event's position,
    /// in the order the events were appended.
    pub fn commit(&mut self) -> Result<Vec<Position>> {
        let positions = self.write()?;
        self.sync()?;
        Ok(positions)
    }

    /// Bytes written since the last [`Appender::sync`].
    pub fn unsynced_bytes(&self) -> u64 {
        self.partitions.iter().map(|p| p.unsynced).sum()
    }

    /// Fsyncs every partition written since the last sync: from here on,
    /// the events written are durable.
    pub fn sync(&mut self) -> Result<()> {
        for pw in &mut self.partitions {
            pw.sync(self.sync, false)?;
        }
        Ok(())
    }

    /// Writes everything buffered (visible to readers, not yet durable: see
    /// [`Appender::sync`]). Returns each event's position, in the order the
    /// events were appended.
    pub fn write(&mut self) -> Result<Vec<Position>> {
        if self.order.is_empty() {
            return Ok(Vec::new());
        }
        let mut firsts = vec![0u64; self.partitions.len()];
        for (i, pw) in self.partitions.iter_mut().enumerate() {
            if !pw.pending.is_empty() {
                firsts[i] = pw.flush(&self.log, self.sync)?;
            }
        }
        let positions = self
            .order
            .iter()
            .map(|&p| {
                let slot = &mut firsts[p as usize];
                let pos = Position {
                    partition: p,
                    offset: *slot,
                };
                *slot += 1;
                pos
            })
            .collect();
        self.order.clear();
        self.pending_bytes = 0;
        Ok(positions)
    }
}

/// Events buffered for one partition, kept in one contiguous arena.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Pending {
    fn push(&mut self, event: &[u8]) {
        self.bytes.extend_from_slice(event);
        self.ends.push(self.bytes.len());
    }
    fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let e = &self.bytes[start..end];
            start = end;
            e
        })
    }
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }
}

/// What this process knows of a partition's active segment; valid only while
/// the segment file is the last one and its length is `len`.
struct Active {
    base: u64,
    file: File,
    index: IndexWriter,
    len: u64,
    next_offset: u64,
    first_time_ms: Option<i64>,
    last_time_ms: i64,
    bytes_since_index: u64,
}

struct PartitionWriter {
    partition: u32,
    /// Bytes written to the active segment and not yet fsynced.
    unsynced: u64,
    dir: PathBuf,
    lock: File,
    active: Option<Active>,
    pending: Pending,
    out: Vec<u8>,
    /// Where this process's last write ended: the recovery point once it
    /// is fsynced.
    written: Option<RecoveryPoint>,
    /// The partition's recovery-point file, opened on first use.
    recovery: Option<RecoveryFile>,
    /// True once the segment being appended to was checked in full.
    checked: bool,
}

impl PartitionWriter {
    fn new(log: &Log, p: u32) -> Result<Self> {
        // Log::open has checked that the partition directory is there and
        // real; a missing one is damage, never recreated here.
        let dir = log.partition_dir(p);
        Ok(PartitionWriter {
            partition: p,
            unsynced: 0,
            lock: open_lock(&dir.join(".lock"))?,
            dir,
            active: None,
            pending: Pending::default(),
            out: Vec::new(),
            written: None,
            recovery: None,
            checked: false,
        })
    }

    fn with_lock<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.lock
            .lock()
            .with_context(|| format!("cannot lock partition {}", self.dir.display()))?;
        let result = f(self);
        let _ = self.lock.unlock();
        result
    }

    /// Fsyncs what this process wrote, then advances the recovery point to
    /// it. `locked` says whether the caller already holds the partition's
    /// lock (the recovery point is moved only under it).
    fn sync(&mut self, sync: bool, locked: bool) -> Result<()> {
        if self.unsynced == 0 {
            return Ok(());
        }
        self.sync_active(sync)?;
        self.unsynced = 0;
        if sync {
            if let Some(point) = self.written.take() {
                if locked {
                    self.record_durable(point)?;
                } else {
                    self.with_lock(|pw| pw.record_durable(point))?;
                }
            }
        }
        Ok(())
    }

    fn sync_active(&self, sync: bool) -> Result<()> {
        if let (Some(active), true) = (&self.active, sync) {
            active.file.sync_data().with_context(|| {
                format!(
                    "cannot sync segment {}",
                    segment::path(&self.dir, active.base, LOG_EXT).display()
                )
            })?;
        }
        Ok(())
    }

    fn recovery_file(&mut self) -> Result<&mut RecoveryFile> {
        if self.recovery.is_none() {
            self.recovery = Some(RecoveryFile::open(&self.dir)?);
        }
        Ok(self.recovery.as_mut().expect("opened above"))
    }

    /// Records `point` as durable; the caller holds the lock.
    fn record_durable(&mut self, point: RecoveryPoint) -> Result<()> {
        self.recovery_file()?.advance(point)
    }

    /// Writes the pending events; returns the offset of the first.
    fn flush(&mut self, log: &Log, sync: bool) -> Result<u64> {
        self.with_lock(|pw| pw.flush_locked(log, sync))
    }

    fn flush_locked(&mut self, log: &Log, sync: bool) -> Result<u64> {
        let config = log.config();
        self.refresh()?;
        let now = time::now_ms();
        let mut rolled = false;
        let pending = std::mem::take(&mut self.pending);
        let mut first_offset = None;
        for event in pending.iter() {
            let active = self.active.as_mut().expect("refreshed");
            // Append times never go backwards in a partition, whatever the
            // clocks of the processes appending, so time lookups can bisect.
            let time_ms = now.max(active.last_time_ms);
            let size = active.len + self.out.len() as u64;
            let too_big = size + (event.len() + record::MAX_OVERHEAD) as u64 > config.segment_bytes;
            let too_old = active
                .first_time_ms
                .is_some_and(|first| time_ms - first >= config.segment_ms);
            if size > 0 && (too_big || too_old) {
                // The closed segment is synced now, whoever wrote it (another
                // appender may not have synced yet, and the recovery point
                // may pass it); its successor later.
                self.write_out(sync)?;
                self.unsynced = self.unsynced.max(1);
                self.sync(sync, true)?;
                self.roll()?;
                rolled = true;
            }
            let active = self.active.as_mut().expect("refreshed");
            let position = active.len + self.out.len() as u64;
            if active.bytes_since_index >= config.index_interval_bytes || position == 0 {
                if position > 0 {
                    active.index.add(active.next_offset, position, time_ms);
                }
                active.bytes_since_index = 0;
            }
            let before = self.out.len();
            record::encode(&mut self.out, active.next_offset, time_ms, event);
            active.bytes_since_index += (self.out.len() - before) as u64;
            first_offset.get_or_insert(active.next_offset);
            active.next_offset += 1;
            active.last_time_ms = time_ms;
            active.first_time_ms.get_or_insert(time_ms);
        }
        self.write_out(sync)?;
        self.pending = pending;
        self.pending.clear();
        if rolled {
            retention::apply(log, self.partition)?;
        }
        Ok(first_offset.expect("flush is called with pending events"))
    }

    fn write_out(&mut self, sync: bool) -> Result<()> {
        let active = self.active.as_mut().expect("refreshed");
        if self.out.is_empty() {
            return Ok(());
        }
        let path = segment::path(&self.dir, active.base, LOG_EXT);
        active
            .file
            .write_all(&self.out)
            .with_context(|| format!("cannot write segment {}", path.display()))?;
        // The disk write starts now, so the batch's fsync finds most of it
        // done (after RocksDB's bytes_per_sync): log-append from a file ran
        // 0.35 s with the fsync waiting for all of it, 0.29 s with this.
        if sync {
            start_writeback(&active.file, active.len, self.out.len() as u64);
        }
        self.unsynced += self.out.len() as u64;
        active
            .index
            .write()
            .with_context(|| format!("cannot write index of {}", path.display()))?;
        active.len += self.out.len() as u64;
        self.out.clear();
        self.written = Some(RecoveryPoint {
            next_offset: active.next_offset,
            segment: active.base,
            position: active.len,
        });
        Ok(())
    }

    /// Starts a new segment at the next offset.
    fn roll(&mut self) -> Result<()> {
        let next = self.active.as_ref().expect("refreshed").next_offset;
        let last_time = self.active.as_ref().expect("refreshed").last_time_ms;
        self.active = Some(self.create_segment(next, last_time)?);
        Ok(())
    }

    fn create_segment(&self, base: u64, last_time_ms: i64) -> Result<Active> {
        let path = segment::path(&self.dir, base, LOG_EXT);
        let file = file::open(&path, Mode::AppendCreate)
            .with_context(|| format!("cannot create segment {}", path.display()))?;
        let index = IndexWriter::open(&self.dir, base)?;
        sync_dir(&self.dir)?;
        Ok(Active {
            base,
            file,
            index,
            len: 0,
            next_offset: base,
            first_time_ms: None,
            last_time_ms,
            bytes_since_index: 0,
        })
    }

    /// Brings what this process knows of the tail up to date: another
    /// appender may have written or rolled since, or a crash may have left a
    /// torn record, which is cut off here (we hold the lock, so no live
    /// appender is writing it).
    fn refresh(&mut self) -> Result<()> {
        let last = segment::list(&self.dir)?.last().copied();
        let Some(base) = last else {
            if let Some(rp) = self.recovery_file()?.current()? {
                if rp.next_offset > 0 {
                    anyhow::bail!(
                        "damaged log: partition {} has no segment left, though its records up to offset {} were acknowledged as durable ({}); restore its segments from a backup (nothing was changed)",
                        self.partition,
                        rp.next_offset - 1,
                        self.dir.join(recovery::FILE_NAME).display()
                    );
                }
            }
            self.active = Some(self.create_segment(0, 0)?);
            self.checked = true;
            return Ok(());
        };
        let path = segment::path(&self.dir, base, LOG_EXT);
        if let Some(active) = &self.active {
            if active.base == base {
                let len = active
                    .file
                    .metadata()
                    .with_context(|| format!("cannot read segment {}", path.display()))?
                    .len();
                if len == active.len {
                    return Ok(());
                }
            }
        }
        // The first look at a segment checks it in full, so that damage in
        // the middle of the segment being appended to stops the append.
        let known = match &self.active {
            Some(a) if a.base == base && self.checked => Some((a.len, a.next_offset)),
            _ if !self.checked => Some((0, base)),
            _ => None,
        };
        let tail = scan_tail(&self.dir, base, known)?;
        self.checked = true;
        if tail.corrupt {
            anyhow::bail!(
                "damaged log: partition {} is corrupt in {} (a bad record at byte {}, offset {}, has valid records after it); nothing is appended to a damaged partition. Run `log-tail --verify` on the log",
                self.partition,
                path.display(),
                tail.valid_len,
                tail.next_offset
            );
        }
        if let Some(rp) = self.recovery_file()?.current()? {
            if tail.next_offset < rp.next_offset {
                anyhow::bail!(
                    "damaged log: partition {} lost acknowledged records: they were durable up to offset {} (its recovery point), but the valid records of {} end at offset {} (byte {}){}; the damage is not truncated. Run `log-tail --verify` and restore the segment from a backup",
                    self.partition,
                    rp.next_offset - 1,
                    path.display(),
                    tail.next_offset,
                    tail.valid_len,
                    if tail.torn_bytes > 0 {
                        format!(", followed by {} damaged bytes", tail.torn_bytes)
                    } else {
                        String::new()
                    }
                );
            }
        }
        let file = file::open(&path, Mode::Append)
            .with_context(|| format!("cannot open segment {}", path.display()))?;
        if tail.torn_bytes > 0 {
            file.set_len(tail.valid_len)
                .and_then(|_| file.sync_all())
                .with_context(|| format!("cannot truncate the torn tail of {}", path.display()))?;
            crate::cli::warn(format_args!(
                "{}: removed a torn record of {} bytes after offset {} (left by an interrupted append)",
                path.display(),
                tail.torn_bytes,
                tail.next_offset.saturating_sub(1)
            ));
            rebuild_index_after_truncation(&self.dir, base, tail.valid_len)?;
        }
        let first_time_ms = first_time(&file, tail.valid_len);
        self.active = Some(Active {
            base,
            file,
            index: IndexWriter::open(&self.dir, base)?,
            len: tail.valid_len,
            next_offset: tail.next_offset,
            first_time_ms,
            last_time_ms: tail.last_time_ms,
            bytes_since_index: 0,
        });
        Ok(())
    }
}

/// Where round robin starts: random per process, so many short-lived
/// appenders (one event each, from cron or a script) spread over the
/// partitions instead of all landing on partition 0.
pub(crate) fn random_start() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the operating system's randomness.
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish() as u32
}

fn first_time(file: &File, len: u64) -> Option<i64> {
    use std::os::unix::fs::FileExt;
    if len == 0 {
        return None;
    }
    let mut buf = [0u8; 64];
    let n = file.read_at(&mut buf, 0).ok()?;
    record::peek_offset_time(&buf[..n]).map(|(_, t)| t)
}

/// Drops index entries that point into a truncated tail.
fn rebuild_index_after_truncation(dir: &Path, base: u64, valid_len: u64) -> Result<()> {
    let index = segment::read_index(dir, base, valid_len)?;
    let times = segment::read_time_index(dir, base)?;
    // Both indexes get an entry for the same records, so they pair up.
    let entries = index
        .iter()
        .zip(times.iter())
        .take_while(|(e, t)| e.offset == t.offset)
        .map(|(e, t)| (e.offset, e.position, t.time_ms));
    segment::rebuild_indexes(dir, base, entries)
}

/// What a tail scan says, for tools that report on a log without writing.
pub fn inspect_tail(log: &Log, p: u32) -> Result<Option<Tail>> {
    let dir = log.partition_dir(p);
    match segment::list(&dir)?.last() {
        Some(&base) => Ok(Some(scan_tail(&dir, base, None)?)),
        None => Ok(None),
    }
}

/// Starts the disk write of bytes just written, without waiting for it (a
/// hint: an error changes nothing, the fsync still decides durability).
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor; the call only reads its arguments.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
}
