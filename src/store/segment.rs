//! Segment files of one partition, named by their 20-digit base offset, and
//! the sparse indexes beside each: `.index` maps offsets to byte positions,
//! `.timeindex` maps append times to offsets. Indexes are hints: a reader
//! checks what an entry points at, and both can be rebuilt from the segment.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::file::{self, Mode};

/// Extension of segment files.
pub const LOG_EXT: &str = "log";
/// Extension of offset index files.
pub const INDEX_EXT: &str = "index";
/// Extension of time index files.
pub const TIME_INDEX_EXT: &str = "timeindex";

/// Bytes in one offset index entry: relative offset and position, u32 LE.
pub const INDEX_ENTRY: usize = 8;
/// Bytes in one time index entry: time (i64 LE) and relative offset (u32 LE).
pub const TIME_INDEX_ENTRY: usize = 12;

/// A segment's file with the given extension.
pub fn path(partition_dir: &Path, base: u64, ext: &str) -> PathBuf {
    partition_dir.join(format!("{base:020}.{ext}"))
}

/// The base offsets of a partition's segments, oldest first.
pub fn list(partition_dir: &Path) -> Result<Vec<u64>> {
    let mut bases = Vec::new();
    file::check_dir(partition_dir)
        .with_context(|| format!("cannot list partition {}", partition_dir.display()))?;
    let entries = fs::read_dir(partition_dir)
        .with_context(|| format!("cannot list partition {}", partition_dir.display()))?;
    for entry in entries {
        let entry =
            entry.with_context(|| format!("cannot list partition {}", partition_dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".log") {
            if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(base) = stem.parse() {
                    bases.push(base);
                }
            }
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// One offset index entry, made absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// A record's offset.
    pub offset: u64,
    /// Where that record starts in the segment.
    pub position: u64,
}

/// One time index entry, made absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    /// A record's append time.
    pub time_ms: i64,
    /// That record's offset.
    pub offset: u64,
}

/// Reads an index file: empty when missing; an error when it is a link or
/// not a regular file (a damaged log).
fn read_index_file(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    match file::open(path, Mode::Read) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes)
                .with_context(|| format!("cannot read index {}", path.display()))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot open index {}", path.display())),
    }
    Ok(bytes)
}

/// Reads a segment's offset index. A missing or inconsistent index gives
/// the entries up to the inconsistency (possibly none); readers then scan.
/// An index that is a link or not a regular file is an error.
pub fn read_index(partition_dir: &Path, base: u64, segment_len: u64) -> Result<Vec<IndexEntry>> {
    let bytes = read_index_file(&path(partition_dir, base, INDEX_EXT))?;
    let mut out: Vec<IndexEntry> = Vec::with_capacity(bytes.len() / INDEX_ENTRY);
    for chunk in bytes.chunks_exact(INDEX_ENTRY) {
        let rel = u32::from_le_bytes(chunk[0..4].try_into().expect("4 bytes"));
        let pos = u32::from_le_bytes(chunk[4..8].try_into().expect("4 bytes"));
        let entry = IndexEntry {
            offset: base + u64::from(rel),
            position: u64::from(pos),
        };
        let increasing = out
            .last()
            .is_none_or(|last| entry.offset > last.offset && entry.position > last.position);
        if !increasing || entry.position >= segment_len {
            break;
        }
        out.push(entry);
    }
    Ok(out)
}

/// Reads a segment's time index, up to any inconsistency.
pub fn read_time_index(partition_dir: &Path, base: u64) -> Result<Vec<TimeEntry>> {
    let bytes = read_index_file(&path(partition_dir, base, TIME_INDEX_EXT))?;
    let mut out: Vec<TimeEntry> = Vec::with_capacity(bytes.len() / TIME_INDEX_ENTRY);
    for chunk in bytes.chunks_exact(TIME_INDEX_ENTRY) {
        let time_ms = i64::from_le_bytes(chunk[0..8].try_into().expect("8 bytes"));
        let rel = u32::from_le_bytes(chunk[8..12].try_into().expect("4 bytes"));
        let entry = TimeEntry {
            time_ms,
            offset: base + u64::from(rel),
        };
        if out
            .last()
            .is_some_and(|last| entry.offset <= last.offset || entry.time_ms < last.time_ms)
        {
            break;
        }
        out.push(entry);
    }
    Ok(out)
}

/// The last entry at or before `offset`.
pub fn lookup_offset(index: &[IndexEntry], offset: u64) -> Option<IndexEntry> {
    let n = index.partition_point(|e| e.offset <= offset);
    n.checked_sub(1).map(|i| index[i])
}

/// The last entry strictly before `time_ms`: scanning from its offset finds
/// the first record at or after that time.
pub fn lookup_time(index: &[TimeEntry], time_ms: i64) -> Option<TimeEntry> {
    let n = index.partition_point(|e| e.time_ms < time_ms);
    n.checked_sub(1).map(|i| index[i])
}

/// Append handles on a segment's two index files.
pub struct IndexWriter {
    index: File,
    time_index: File,
    base: u64,
    pending_index: Vec<u8>,
    pending_time: Vec<u8>,
}

impl IndexWriter {
    /// Opens (creating) the index files of a segment for appending.
    pub fn open(partition_dir: &Path, base: u64) -> Result<Self> {
        let open = |ext| {
            let p = path(partition_dir, base, ext);
            file::open(&p, Mode::AppendCreate)
                .with_context(|| format!("cannot open index {}", p.display()))
        };
        Ok(IndexWriter {
            index: open(INDEX_EXT)?,
            time_index: open(TIME_INDEX_EXT)?,
            base,
            pending_index: Vec::new(),
            pending_time: Vec::new(),
        })
    }

    /// Queues an entry for the record at `offset`, `position`, `time_ms`.
    pub fn add(&mut self, offset: u64, position: u64, time_ms: i64) {
        let rel = (offset - self.base) as u32;
        self.pending_index.extend_from_slice(&rel.to_le_bytes());
        self.pending_index
            .extend_from_slice(&(position as u32).to_le_bytes());
        self.pending_time.extend_from_slice(&time_ms.to_le_bytes());
        self.pending_time.extend_from_slice(&rel.to_le_bytes());
    }

    /// Writes the queued entries. Indexes are not fsynced: they are hints
    /// that a reader checks and recovery rebuilds.
    pub fn write(&mut self) -> io::Result<()> {
        if !self.pending_index.is_empty() {
            self.index.write_all(&self.pending_index)?;
            self.time_index.write_all(&self.pending_time)?;
            self.pending_index.clear();
            self.pending_time.clear();
        }
        Ok(())
    }
}

/// Rewrites a segment's indexes from scratch for the records it holds, as
/// `(offset, position, time)` triples.
pub fn rebuild_indexes(
    partition_dir: &Path,
    base: u64,
    records: impl Iterator<Item = (u64, u64, i64)>,
) -> Result<()> {
    for ext in [INDEX_EXT, TIME_INDEX_EXT] {
        let p = path(partition_dir, base, ext);
        file::open(&p, Mode::Truncate)
            .with_context(|| format!("cannot rebuild index {}", p.display()))?;
    }
    let mut writer = IndexWriter::open(partition_dir, base)?;
    for (offset, position, time) in records {
        writer.add(offset, position, time);
    }
    writer.write().context("cannot write rebuilt index")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_segments_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for base in [200u64, 0, 35] {
            File::create(path(dir.path(), base, LOG_EXT)).unwrap();
            File::create(path(dir.path(), base, INDEX_EXT)).unwrap();
        }
        File::create(dir.path().join("junk.log")).unwrap();
        assert_eq!(list(dir.path()).unwrap(), vec![0, 35, 200]);
    }

    #[test]
    fn index_round_trip_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = IndexWriter::open(dir.path(), 100).unwrap();
        w.add(110, 4000, 1000);
        w.add(120, 8100, 1005);
        w.add(130, 12200, 1005);
        w.write().unwrap();
        let idx = read_index(dir.path(), 100, 10_000).unwrap();
        assert_eq!(idx.len(), 2, "entries past the segment's end are dropped");
        assert_eq!(lookup_offset(&idx, 115).unwrap().position, 4000);
        assert_eq!(lookup_offset(&idx, 105), None);
        let t = read_time_index(dir.path(), 100).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(lookup_time(&t, 1005).unwrap().offset, 110);
        assert_eq!(lookup_time(&t, 1000), None);
    }
}
