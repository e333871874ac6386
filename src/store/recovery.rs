//! A partition's recovery point (after Kafka's recovery-point checkpoint):
//! the offset below which every record was fsynced and acknowledged, kept
//! in `partition-N/recovery-point` and advanced after each fsync batch.
//! Recovery may truncate only what lies past it, as a torn tail; a record
//! below it that is missing or fails its check is damage, reported and
//! never cut off.
//!
//! The file holds two slots of [`SLOT`] bytes, at bytes 0 and [`SLOT`], in
//! separate disk sectors. Each is one text line
//! `rp1 TAB SEQ TAB NEXT_OFFSET TAB SEGMENT TAB POSITION TAB CRC32C` padded
//! with NUL bytes; an update writes the slot not holding the newest
//! sequence number, so a torn write leaves the other slot, and readers take
//! the valid slot with the highest sequence number.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::file::{self, Mode};

/// The file's name in a partition directory.
pub const FILE_NAME: &str = "recovery-point";
/// Bytes per slot; the file is two slots long.
pub const SLOT: usize = 512;
/// The recovery point's own fsync happens at most this often (and when the
/// appender ends): it may lag the data after a power failure, which only
/// makes the most recent records count as a tail again, never the reverse.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// Where a partition's durable records end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryPoint {
    /// Every record before this offset is durable.
    pub next_offset: u64,
    /// The segment that ends there (its base offset).
    pub segment: u64,
    /// The byte in that segment where the next record starts.
    pub position: u64,
}

/// Reads a partition's recovery point: `None` when the partition has none
/// yet (a log written before recovery points, or never fsynced). A file
/// with no valid slot is damage.
pub fn load(partition_dir: &Path) -> Result<Option<RecoveryPoint>> {
    let path = partition_dir.join(FILE_NAME);
    match file::open(&path, Mode::Read) {
        Ok(f) => Ok(read_slots(&f, &path)?.map(|(_, rp)| rp)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The newest valid slot: its sequence number and point.
fn read_slots(f: &File, path: &Path) -> Result<Option<(u64, RecoveryPoint)>> {
    let mut buf = vec![0u8; 2 * SLOT];
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    if n == 0 {
        return Ok(None);
    }
    let best = buf[..n]
        .chunks(SLOT)
        .filter_map(decode)
        .max_by_key(|(seq, _)| *seq);
    match best {
        Some(best) => Ok(Some(best)),
        None => bail!(
            "damaged log: {} holds no valid recovery point (both slots fail their check); the partition's durable end is unknown. Run `log-tail --verify`, and remove the file only if the partition reads as it should",
            path.display()
        ),
    }
}

fn encode(seq: u64, rp: &RecoveryPoint) -> Vec<u8> {
    let body = format!(
        "rp1\t{seq}\t{}\t{}\t{}\t",
        rp.next_offset, rp.segment, rp.position
    );
    let crc = crc32c::crc32c(body.as_bytes());
    let mut out = format!("{body}{crc:08x}\n").into_bytes();
    out.resize(SLOT, 0);
    out
}

fn decode(slot: &[u8]) -> Option<(u64, RecoveryPoint)> {
    let end = memchr::memchr(b'\n', slot)?;
    let line = std::str::from_utf8(&slot[..end]).ok()?;
    let (body, crc) = line.rsplit_once('\t')?;
    let body_with_tab = &line[..body.len() + 1];
    if crc.len() != 8
        || u32::from_str_radix(crc, 16).ok()? != crc32c::crc32c(body_with_tab.as_bytes())
    {
        return None;
    }
    let mut fields = body.split('\t');
    if fields.next()? != "rp1" {
        return None;
    }
    let mut num = || fields.next()?.parse::<u64>().ok();
    let seq = num()?;
    let rp = RecoveryPoint {
        next_offset: num()?,
        segment: num()?,
        position: num()?,
    };
    Some((seq, rp))
}

/// A partition's recovery-point file, open for advancing it. The caller
/// holds the partition's lock while it calls [`RecoveryFile::advance`].
pub struct RecoveryFile {
    file: File,
    path: PathBuf,
    dirty: bool,
    last_sync: Option<Instant>,
}

impl RecoveryFile {
    /// Opens (creating) the recovery-point file of a partition.
    pub fn open(partition_dir: &Path) -> Result<Self> {
        let path = partition_dir.join(FILE_NAME);
        let file = file::open(&path, Mode::ReadWrite)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(RecoveryFile {
            file,
            path,
            dirty: false,
            last_sync: None,
        })
    }

    /// The point as the file holds it now (another appender may have moved
    /// it).
    pub fn current(&self) -> Result<Option<RecoveryPoint>> {
        Ok(read_slots(&self.file, &self.path)?.map(|(_, rp)| rp))
    }

    /// Moves the point up to `rp` (never down: another appender may have
    /// recorded a later one). Called after the records before `rp` were
    /// fsynced.
    pub fn advance(&mut self, rp: RecoveryPoint) -> Result<()> {
        let current = read_slots(&self.file, &self.path)?;
        let (seq, slot) = match current {
            Some((_, old)) if old.next_offset >= rp.next_offset => return Ok(()),
            Some((seq, _)) => (seq + 1, ((seq + 1) % 2) as u64),
            None => (0, 0),
        };
        let fresh = current.is_none();
        self.file
            .write_all_at(&encode(seq, &rp), slot * SLOT as u64)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.dirty = true;
        if fresh || self.last_sync.is_none_or(|t| t.elapsed() >= SYNC_EVERY) {
            self.sync()?;
            if fresh {
                // The file's own directory entry must be durable too.
                super::sync_dir(self.path.parent().unwrap_or(Path::new(".")))?;
            }
        }
        Ok(())
    }

    /// Fsyncs the point written last.
    pub fn sync(&mut self) -> Result<()> {
        if self.dirty {
            self.file
                .sync_data()
                .with_context(|| format!("cannot sync {}", self.path.display()))?;
            self.dirty = false;
        }
        self.last_sync = Some(Instant::now());
        Ok(())
    }
}

impl Drop for RecoveryFile {
    fn drop(&mut self) {
        // Best effort: an appender that ends leaves its point durable.
        let _ = self.sync();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(o: u64) -> RecoveryPoint {
        RecoveryPoint {
            next_offset: o,
            segment: 0,
            position: o * 10,
        }
    }

    #[test]
    fn advances_never_back_and_survives_a_torn_slot() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let mut f = RecoveryFile::open(dir.path()).unwrap();
        assert_eq!(f.current().unwrap(), None);
        f.advance(rp(5)).unwrap();
        f.advance(rp(9)).unwrap();
        f.advance(rp(7)).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(rp(9)));
        f.advance(rp(12)).unwrap();
        // Tear the newest slot: the older one is still read.
        let path = dir.path().join(FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        let newest = if decode(&bytes[..SLOT]).unwrap().1 == rp(12) {
            0
        } else {
            SLOT
        };
        bytes[newest + 6] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(rp(9)));
        // Both torn: damage.
        let other = SLOT - newest;
        bytes[other + 6] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(err.contains("no valid recovery point"), "{err}");
    }
}
