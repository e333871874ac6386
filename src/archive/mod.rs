//! Time-partitioned archives of events, after Secor and the Kafka Connect
//! S3 sink: Hive-style directories per schema and period, Avro object
//! container files or compressed NDJSON, exactly-once file naming from
//! source positions, verification and replay.
//!
//! The layout is in [`layout`]; how a segment's files become visible all at
//! once, in [`commit`]; when segments are cut, in [`roll`]; what an archive
//! holds per source, in [`positions`].
//!
//! # Exactly-once
//!
//! Events that carry their source position (`log-tail --with-position`)
//! are cut into segments per source partition; every file of a segment is
//! named `LOG+P-FIRST-LAST` by the segment's first and last offsets. A
//! rerun learns from the file names which ranges are finished, drops every
//! event inside them, and writes the rest: after a SIGKILL the same command
//! line leaves each event in the archive exactly once. Events without a
//! position are archived at least once: a rerun cannot know which of them
//! are in.

pub mod avro;
pub mod blocks;
pub mod commit;
pub mod layout;
pub mod ndjson;
pub mod positions;
pub mod read;
pub mod replay;
pub mod roll;
pub mod scan;
pub mod typed;
pub mod verify;
pub mod writer;

use std::path::Path;

use anyhow::Result;

use crate::position::Held;

/// What the archive at `dir` holds per source partition, from its finished
/// file names: complete up to the end of the contiguous run of segment
/// ranges from the lowest (`log-tail --resume-from DIR` starts one past it).
pub fn held(dir: &Path) -> Result<Held> {
    if !is_archive(dir) {
        anyhow::bail!(
            "{} is not an archive (it has no {}/{})",
            dir.display(),
            layout::META_DIR,
            layout::CONFIG_FILE
        );
    }
    let found = scan::scan(dir)?;
    Ok(positions::Coverage::from_scan(&found).held())
}

/// True when `dir` is an archive: `archive --to` wrote its
/// `_unilog/archive.json` when it made it.
pub fn is_archive(dir: &Path) -> bool {
    dir.join(layout::META_DIR)
        .join(layout::CONFIG_FILE)
        .is_file()
}
