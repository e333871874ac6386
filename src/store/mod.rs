//! The file log, the embedded default: a directory of partitions, each an
//! append-only sequence of segments of self-checking records with dense
//! offsets. `man/unilog-log.5` documents the format.
//!
//! - [`record`]: one record's bytes and its CRC-32C.
//! - [`segment`]: segment files and their offset and time indexes.
//! - [`append`]: the appender (locking, batching, fsync, tail recovery).
//! - [`read`]: reading a partition from an offset or a time, following it.
//! - [`group`]: consumer groups' committed positions.
//! - [`retention`]: deleting old segments by age and size.
//! - [`partitioner`]: Kafka's murmur2 key partitioner.

pub mod append;
pub mod group;
pub mod partitioner;
pub mod read;
pub mod record;
pub mod retention;
pub mod segment;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub use append::{AppendOptions, Appender};
pub use read::{PartitionReader, StartAt};

/// The name in every log's `log.json`.
pub const FORMAT_NAME: &str = "unilog-log";
/// The format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

const CONFIG_FILE: &str = "log.json";

/// A log's fixed and tunable settings, stored in `LOG/log.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogConfig {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// The format version the log was written with.
    pub version: u32,
    /// Number of partitions, fixed at creation.
    pub partitions: u32,
    /// A segment rolls when it would grow past this size.
    pub segment_bytes: u64,
    /// A segment rolls when its first record is this old.
    pub segment_ms: i64,
    /// Segments whose records are all older than this are deleted.
    pub retention_ms: Option<i64>,
    /// Oldest segments are deleted while a partition is larger than this.
    pub retention_bytes: Option<u64>,
    /// An index entry is written every this many bytes of records.
    pub index_interval_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: FORMAT_NAME.to_string(),
            version: FORMAT_VERSION,
            partitions: 1,
            segment_bytes: 128 << 20,
            segment_ms: 7 * 86_400_000,
            retention_ms: None,
            retention_bytes: None,
            index_interval_bytes: 4096,
        }
    }
}

impl LogConfig {
    fn check(&self) -> Result<()> {
        if self.format != FORMAT_NAME {
            bail!("format is {:?}, not {FORMAT_NAME:?}", self.format);
        }
        if self.version != FORMAT_VERSION {
            bail!(
                "format version {} is not supported by this build (it reads version {FORMAT_VERSION}); use a unilog that does",
                self.version
            );
        }
        if self.partitions == 0 || self.partitions > 10_000 {
            bail!(
                "partitions must be between 1 and 10000, not {}",
                self.partitions
            );
        }
        if self.segment_bytes < 1024 || self.segment_bytes > (1 << 30) {
            bail!(
                "segment size must be between 1 KiB and 1 GiB, not {} bytes",
                self.segment_bytes
            );
        }
        if self.segment_ms <= 0 {
            bail!("segment age must be positive");
        }
        if self.index_interval_bytes == 0 {
            bail!("index interval must be positive");
        }
        Ok(())
    }
}

/// An open log directory and its configuration.
#[derive(Debug, Clone)]
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
}

impl Log {
    /// True when `dir` holds a log (its `log.json` exists).
    pub fn exists(dir: &Path) -> bool {
        dir.join(CONFIG_FILE).is_file()
    }

    /// Opens an existing log.
    pub fn open(dir: &Path) -> Result<Log> {
        let path = dir.join(CONFIG_FILE);
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => bail!(
                "{} is not a unilog log (it has no {CONFIG_FILE}); create it with `log-append {}`",
                dir.display(),
                dir.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let config: LogConfig = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a valid log configuration", path.display()))?;
        config
            .check()
            .with_context(|| format!("{} is not a usable log configuration", path.display()))?;
        Ok(Log {
            dir: dir.to_path_buf(),
            config,
        })
    }

    /// Opens the log, creating it with `config` when it does not exist. Safe
    /// when several processes create the same log at once: one wins, the
    /// others open what it made.
    pub fn open_or_create(dir: &Path, config: &LogConfig) -> Result<Log> {
        if Log::exists(dir) {
            return Log::open(dir);
        }
        config.check()?;
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create log directory {}", dir.display()))?;
        for p in 0..config.partitions {
            let pdir = dir.join(partition_dir_name(p));
            fs::create_dir_all(&pdir)
                .with_context(|| format!("cannot create {}", pdir.display()))?;
        }
        let tmp = dir.join(format!(".{CONFIG_FILE}.{}.tmp", std::process::id()));
        let body = serde_json::to_vec_pretty(config)?;
        write_synced(&tmp, &body)?;
        // A hard link fails when the name exists, so exactly one creator wins.
        let linked = fs::hard_link(&tmp, dir.join(CONFIG_FILE));
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => sync_dir(dir)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot create {}", dir.join(CONFIG_FILE).display()))
            }
        }
        Log::open(dir)
    }

    /// Rewrites the tunable settings (segment size and age, retention); the
    /// partition count and format stay as they are.
    pub fn update_config(&mut self, update: impl FnOnce(&mut LogConfig)) -> Result<()> {
        let mut config = self.config.clone();
        update(&mut config);
        config.partitions = self.config.partitions;
        config.check()?;
        if config != self.config {
            write_atomically(
                &self.dir.join(CONFIG_FILE),
                &serde_json::to_vec_pretty(&config)?,
            )?;
            self.config = config;
        }
        Ok(())
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log's configuration.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// The number of partitions.
    pub fn partitions(&self) -> u32 {
        self.config.partitions
    }

    /// The directory of partition `p`.
    pub fn partition_dir(&self, p: u32) -> PathBuf {
        self.dir.join(partition_dir_name(p))
    }

    /// Checks that `p` is one of the log's partitions.
    pub fn check_partition(&self, p: u32) -> Result<()> {
        if p >= self.partitions() {
            bail!(
                "{} has partitions 0 to {}; there is no partition {p}",
                self.dir.display(),
                self.partitions() - 1
            );
        }
        Ok(())
    }

    /// The first offset still held and the next offset to be written, per
    /// partition.
    pub fn bounds(&self, p: u32) -> Result<(u64, u64)> {
        let reader = PartitionReader::open(self, p, StartAt::Beginning)?;
        let start = reader.position();
        let end = read::end_offset(self, p)?;
        Ok((start, end))
    }
}

fn partition_dir_name(p: u32) -> String {
    format!("partition-{p}")
}

/// Writes a file and fsyncs it.
pub(crate) fn write_synced(path: &Path, body: &[u8]) -> Result<()> {
    let mut f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(body)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Replaces a file atomically: write a temporary beside it, fsync, rename,
/// fsync the directory. A crash leaves the old or the new file, never half.
pub(crate) fn write_atomically(path: &Path, body: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    write_synced(&tmp, body)?;
    fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    sync_dir(dir)
}

/// Fsyncs a directory so that a new or renamed entry in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync directory {}", dir.display()))
}

/// Opens (creating) a partition's lock file, used with `File::lock`.
pub(crate) fn open_lock(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open lock file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.log");
        assert!(!Log::exists(&path));
        let config = LogConfig {
            partitions: 3,
            ..LogConfig::default()
        };
        let log = Log::open_or_create(&path, &config).unwrap();
        assert_eq!(log.partitions(), 3);
        assert!(log.partition_dir(2).is_dir());
        let again = Log::open_or_create(&path, &LogConfig::default()).unwrap();
        assert_eq!(
            again.partitions(),
            3,
            "an existing log keeps its partitions"
        );
        assert!(log.check_partition(3).is_err());
    }

    #[test]
    fn refuses_what_is_not_a_log() {
        let dir = tempfile::tempdir().unwrap();
        let err = Log::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is not a unilog log"), "{err}");
        fs::write(dir.path().join(CONFIG_FILE), br#"{"format":"unilog-log","version":99,"partitions":1,"segment_bytes":4096,"segment_ms":1,"retention_ms":null,"retention_bytes":null,"index_interval_bytes":1}"#).unwrap();
        let err = format!("{:#}", Log::open(dir.path()).unwrap_err());
        assert!(err.contains("version 99"), "{err}");
    }
}

#[cfg(test)]
mod log_tests;
