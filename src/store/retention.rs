//! Retention: whole segments are deleted, oldest first, once every record in
//! them is older than the retention age, or while the partition is larger
//! than the retention size. The active (newest) segment is never deleted.

use std::fs;

use anyhow::{Context, Result};

use super::segment::{self, INDEX_EXT, LOG_EXT, TIME_INDEX_EXT};
use super::Log;
use crate::time;

/// Applies the log's retention to partition `p`; the caller holds the
/// partition's lock. Returns how many segments were deleted.
pub fn apply(log: &Log, p: u32) -> Result<usize> {
    apply_at(log, p, time::now_ms())
}

/// [`apply`] as of `now_ms`.
pub fn apply_at(log: &Log, p: u32, now_ms: i64) -> Result<usize> {
    let config = log.config();
    if config.retention_ms.is_none() && config.retention_bytes.is_none() {
        return Ok(0);
    }
    let dir = log.partition_dir(p);
    let bases = segment::list(&dir)?;
    let mut sizes = Vec::with_capacity(bases.len());
    for &base in &bases {
        let path = segment::path(&dir, base, LOG_EXT);
        sizes.push(
            super::file::regular_len(&path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .unwrap_or(0),
        );
    }
    let mut total: u64 = sizes.iter().sum();
    let mut deleted = 0;
    for i in 0..bases.len().saturating_sub(1) {
        // A closed segment's newest record is no newer than the next
        // segment's first, since append times never decrease.
        let expired_by_age = match config.retention_ms {
            Some(max_age) => {
                let next = segment::path(&dir, bases[i + 1], LOG_EXT);
                first_time(&next)?.is_some_and(|t| now_ms - t > max_age)
            }
            None => false,
        };
        let over_size = config
            .retention_bytes
            .is_some_and(|max| total - sizes[i] >= max);
        if !(expired_by_age || over_size) {
            break;
        }
        // The segment goes first, so a reader never sees indexes without it.
        for ext in [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT] {
            let path = segment::path(&dir, bases[i], ext);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot delete {}", path.display()))
                }
            }
        }
        total -= sizes[i];
        deleted += 1;
    }
    Ok(deleted)
}

fn first_time(path: &std::path::Path) -> Result<Option<i64>> {
    use std::os::unix::fs::FileExt;
    let file = super::read::open_segment(path)?;
    let mut buf = [0u8; 64];
    let n = file.read_at(&mut buf, 0)?;
    Ok(super::record::peek_offset_time(&buf[..n]).map(|(_, t)| t))
}
