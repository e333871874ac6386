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
//! - [`file`]: opening the log's files without following links.
//! - [`recovery`]: each partition's recovery point (what is durable).
//! - [`producer`]: each producer's marks, for exactly-once appends.
//! - [`backend`]: the interface every backend implements (producer,
//!   consumer, marks), and [`local`]: the file log behind it.
//!
//! The tools open a log with [`open_producer`] or [`open_consumer`] and see
//! only the interface; file-only operations (verify, segment and retention
//! settings, inspect) use [`Log`].

pub mod append;
pub mod backend;
pub mod file;
pub mod group;
pub mod kafka;
pub mod local;
pub mod partitioner;
pub mod producer;
pub mod read;
pub mod record;
pub mod recovery;
pub mod retention;
pub mod segment;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub use append::{AppendOptions, Appender};
pub use backend::{Flushed, LogConsumer, LogProducer, Polled, Position, ProducerMarks, Route};
pub use read::{PartitionReader, StartAt};

use crate::location::Location;

/// How a producer opens its log.
#[derive(Debug, Clone, Default)]
pub struct ProducerOptions {
    /// Partitions of a log that does not exist yet; given for an existing
    /// log, it must match.
    pub partitions: Option<u32>,
    /// Off only for throwaway logs: appended events are not made durable.
    pub no_sync: bool,
    /// The file log's own settings (refused for other backends).
    pub file: FileSettings,
    /// The file log writes (without syncing) every this many bytes; 0 for
    /// its default.
    pub batch_bytes: usize,
    /// Bounds a Kafka client's operations (see [`kafka::KafkaOptions`]).
    pub timeout: Option<std::time::Duration>,
}

/// Settings only the file log has: segment rolling and retention.
#[derive(Debug, Clone, Default)]
pub struct FileSettings {
    /// A segment rolls when it would grow past this size.
    pub segment_bytes: Option<u64>,
    /// A segment rolls when its first record is this old.
    pub segment_ms: Option<i64>,
    /// Segments whose records are all older than this are deleted.
    pub retention_ms: Option<i64>,
    /// Oldest segments are deleted while a partition is larger than this.
    pub retention_bytes: Option<u64>,
}

impl FileSettings {
    /// True when no setting is given.
    pub fn is_empty(&self) -> bool {
        self.segment_bytes.is_none()
            && self.segment_ms.is_none()
            && self.retention_ms.is_none()
            && self.retention_bytes.is_none()
    }
}

/// Opens the log at `location` for appending, creating it when missing.
pub fn open_producer(
    location: &Location,
    options: &ProducerOptions,
) -> Result<Box<dyn LogProducer>> {
    match location {
        Location::Dir(dir) => open_file_producer(dir, options),
        Location::Kafka(url) => {
            if !options.file.is_empty() {
                bail!(
                    "{}: segment and retention settings are the file log's; set a topic's (segment.bytes, retention.ms, retention.bytes) with the Kafka cluster's tools",
                    url.text
                );
            }
            if options.no_sync {
                bail!(
                    "{}: --no-sync is for the file log; an event counts as appended on Kafka once the broker acknowledges it (acks=all)",
                    url.text
                );
            }
            let kafka_options = kafka::KafkaOptions::new(options.timeout)?;
            Ok(Box::new(kafka::open_producer(
                url,
                &kafka_options,
                options.partitions,
            )?))
        }
    }
}

fn open_file_producer(dir: &Path, options: &ProducerOptions) -> Result<Box<dyn LogProducer>> {
    let defaults = LogConfig::default();
    let settings = &options.file;
    let create = LogConfig {
        partitions: options.partitions.unwrap_or(1),
        segment_bytes: settings.segment_bytes.unwrap_or(defaults.segment_bytes),
        segment_ms: settings.segment_ms.unwrap_or(defaults.segment_ms),
        retention_ms: settings.retention_ms,
        retention_bytes: settings.retention_bytes,
        ..defaults
    };
    let append = AppendOptions {
        create,
        sync: !options.no_sync,
        batch_bytes: match options.batch_bytes {
            0 => AppendOptions::default().batch_bytes,
            n => n,
        },
    };
    let mut producer = local::FileProducer::open(dir, &append)
        .with_context(|| format!("cannot open log {}", dir.display()))?;
    let log = producer.log_mut();
    if let Some(n) = options.partitions {
        let has = log.partitions();
        if n != has {
            bail!(
                "{} already exists with {has} partition{}; the count is fixed when a log is created, so --partitions {n} cannot apply (leave it out, or give --partitions {has})",
                dir.display(),
                if has == 1 { "" } else { "s" }
            );
        }
    }
    if !settings.is_empty() {
        log.update_config(|c| {
            if let Some(v) = settings.segment_bytes {
                c.segment_bytes = v;
            }
            if let Some(v) = settings.segment_ms {
                c.segment_ms = v;
            }
            if settings.retention_ms.is_some() {
                c.retention_ms = settings.retention_ms;
            }
            if settings.retention_bytes.is_some() {
                c.retention_bytes = settings.retention_bytes;
            }
        })?;
    }
    Ok(Box::new(producer))
}

/// Opens the existing log at `location` for reading; `timeout` bounds a
/// Kafka client's operations.
pub fn open_consumer(
    location: &Location,
    timeout: Option<std::time::Duration>,
) -> Result<Box<dyn LogConsumer>> {
    match location {
        Location::Dir(dir) => Ok(Box::new(local::FileConsumer::open(dir)?)),
        Location::Kafka(url) => {
            let options = kafka::KafkaOptions::new(timeout)?;
            Ok(Box::new(kafka::KafkaConsumer::open(url, &options)?))
        }
    }
}

/// True when `location` names a log to append to: a file log that exists,
/// or any Kafka address (opening it says whether the topic exists). A
/// failure sink appends to a log only when it is one.
pub fn exists(location: &Location) -> bool {
    match location {
        Location::Dir(dir) => Log::exists(dir),
        Location::Kafka(_) => true,
    }
}

/// Every producer's held positions in the log at `location`, by name, for
/// `log-tail --resume-from`; `None` when it is no log. A file log keeps
/// them beside its records; a Kafka topic's are read from its records.
pub fn destination_held(
    location: &Location,
) -> Result<Option<Vec<(String, crate::position::Held)>>> {
    match location {
        Location::Dir(dir) if Log::exists(dir) => Ok(Some(producer::all_held(&Log::open(dir)?)?)),
        Location::Dir(_) => Ok(None),
        Location::Kafka(url) => {
            let options = kafka::KafkaOptions::new(None)?;
            // A topic not made yet holds nothing (a first run).
            let Some(mut consumer) = kafka::KafkaConsumer::open_if_exists(url, &options)? else {
                return Ok(Some(Vec::new()));
            };
            Ok(Some(
                backend::scan_held(&mut consumer, None)?
                    .into_iter()
                    .collect(),
            ))
        }
    }
}

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
    /// The log's stable identity, carried in every position `log-tail
    /// --with-position` writes, so a destination can tell its sources
    /// apart wherever the log is moved or copied to. Made at creation;
    /// a log from before ids gets one the first time a position needs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
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
            id: None,
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
        fs::symlink_metadata(dir.join(CONFIG_FILE)).is_ok()
    }

    /// Opens an existing log. A directory that holds partitions but no
    /// `log.json`, or partitions that disagree with it (one missing, or one
    /// past its count), is a damaged log: nothing is recreated or hidden.
    pub fn open(dir: &Path) -> Result<Log> {
        let path = dir.join(CONFIG_FILE);
        let text = match file::open(&path, file::Mode::Read).and_then(|f| read_all(&f)) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let found = partition_entries(dir).unwrap_or_default();
                if !found.is_empty() {
                    bail!(
                        "damaged log: {} holds {} partition director{} but no {CONFIG_FILE}, which says how many partitions the log has; restore {CONFIG_FILE} from a backup (nothing was changed)",
                        dir.display(),
                        found.len(),
                        if found.len() == 1 { "y" } else { "ies" }
                    );
                }
                bail!(
                    "{} is not a unilog log (it has no {CONFIG_FILE}); create it with `log-append {}`",
                    dir.display(),
                    dir.display()
                )
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let config = parse_config(&text, &path)?;
        let log = Log {
            dir: dir.to_path_buf(),
            config,
        };
        log.check_partition_dirs()?;
        Ok(log)
    }

    /// Checks that the partition directories are exactly those `log.json`
    /// names, each a real directory.
    fn check_partition_dirs(&self) -> Result<()> {
        let n = self.partitions();
        for p in partition_entries(&self.dir)
            .with_context(|| format!("cannot list log {}", self.dir.display()))?
        {
            if p >= n {
                bail!(
                    "damaged log: {} holds {} but its {CONFIG_FILE} says it has {n} partition{} (0 to {}); restore the {CONFIG_FILE} that matches the data",
                    self.dir.display(),
                    partition_dir_name(p),
                    if n == 1 { "" } else { "s" },
                    n - 1
                );
            }
        }
        for p in 0..n {
            let pdir = self.partition_dir(p);
            match file::check_dir(&pdir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => bail!(
                    "damaged log: partition {p} is missing ({} does not exist) though {CONFIG_FILE} says the log has {n} partitions; restore it from a backup (it is not recreated empty)",
                    pdir.display()
                ),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Opens the log, creating it with `config` when it does not exist. Safe
    /// when several processes create the same log at once: one wins, the
    /// others open what it made. A new log is built complete in a hidden
    /// directory beside it and renamed into place, so no process ever sees
    /// partitions without their `log.json`.
    pub fn open_or_create(dir: &Path, config: &LogConfig) -> Result<Log> {
        if Log::exists(dir) {
            return Log::open(dir);
        }
        if fs::symlink_metadata(dir).is_ok() && !is_empty_dir(dir)? && !Log::exists(dir) {
            if partition_entries(dir).unwrap_or_default().is_empty() {
                bail!(
                    "{} is not a unilog log (it has no {CONFIG_FILE}) and is not empty; a new log is made only in a new or empty directory",
                    dir.display()
                );
            }
            // Partitions without log.json: Log::open names the damage.
            return Log::open(dir);
        }
        config.check()?;
        let mut config = config.clone();
        if config.id.is_none() {
            config.id = Some(new_log_id());
        }
        let config = &config;
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create directory {}", parent.display()))?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "log".into());
        let staging = parent.join(format!(".{name}.{}.new", std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        let built = build_log(&staging, config);
        let placed = built.and_then(|()| fs::rename(&staging, dir).map_err(anyhow::Error::from));
        match placed {
            Ok(()) => {
                sync_dir(&parent)?;
                return Log::open(dir);
            }
            Err(_) => {
                let _ = fs::remove_dir_all(&staging);
            }
        }
        // Someone else made it first, or the directory exists and cannot be
        // replaced (a mount point): open it, or build the log in place.
        if Log::exists(dir) || !is_empty_dir(dir).unwrap_or(false) {
            return Log::open(dir);
        }
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create log directory {}", dir.display()))?;
        build_log(dir, config)?;
        Log::open(dir)
    }

    /// Rewrites the tunable settings (segment size and age, retention); the
    /// partition count and format stay as they are.
    pub fn update_config(&mut self, update: impl FnOnce(&mut LogConfig)) -> Result<()> {
        self.with_config_lock(|current| {
            let mut config = current.clone();
            update(&mut config);
            config.partitions = current.partitions;
            config.id.clone_from(&current.id);
            Ok(config)
        })
    }

    /// The log's stable id (see [`LogConfig::id`]). A log made before ids
    /// is given one here, once: under the config lock, so that processes
    /// asking at the same time all get the same id.
    pub fn id(&mut self) -> Result<String> {
        if let Some(id) = &self.config.id {
            return Ok(id.clone());
        }
        self.with_config_lock(|current| {
            let mut config = current.clone();
            if config.id.is_none() {
                config.id = Some(new_log_id());
            }
            Ok(config)
        })
        .with_context(|| {
            format!(
                "{} has no id yet and cannot be given one; a writer of the log can give it one (`log-append {} </dev/null`)",
                self.dir.display(),
                self.dir.display()
            )
        })?;
        Ok(self.config.id.clone().expect("set above"))
    }

    /// Rewrites `log.json` from its current contents on disk, under a lock
    /// shared by every process that rewrites it, so that two updates (a
    /// retention change and an id, say) never undo one another.
    fn with_config_lock(
        &mut self,
        update: impl FnOnce(&LogConfig) -> Result<LogConfig>,
    ) -> Result<()> {
        let lock = open_lock(&self.dir.join(".config.lock"))?;
        lock.lock()
            .with_context(|| format!("cannot lock {}", self.dir.display()))?;
        let result = (|| {
            let current = read_config(&self.dir)?;
            let config = update(&current)?;
            config.check()?;
            if config != current {
                write_atomically(
                    &self.dir.join(CONFIG_FILE),
                    &serde_json::to_vec_pretty(&config)?,
                )?;
            }
            self.config = config;
            Ok(())
        })();
        let _ = lock.unlock();
        result
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

/// Parses and checks a `log.json`'s text.
fn parse_config(text: &[u8], path: &Path) -> Result<LogConfig> {
    let config: LogConfig = serde_json::from_slice(text).with_context(|| {
        format!(
            "damaged log: {} is not a valid log configuration",
            path.display()
        )
    })?;
    config
        .check()
        .with_context(|| format!("{} is not a usable log configuration", path.display()))?;
    Ok(config)
}

/// Reads `DIR/log.json` as it is on disk now.
fn read_config(dir: &Path) -> Result<LogConfig> {
    let path = dir.join(CONFIG_FILE);
    let text = file::open(&path, file::Mode::Read)
        .and_then(|f| read_all(&f))
        .with_context(|| format!("cannot read {}", path.display()))?;
    parse_config(&text, &path)
}

/// A new log id: 80 random bits as 16 characters of lowercase base32, so
/// that two logs never share one. Every positioned event carries its
/// source's id through the pipe and into its destination, so it is kept
/// short: a UUID's 36 characters made the member a third longer. (Logs
/// made before keep the UUID they were given.)
fn new_log_id() -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let uuid = uuid::Uuid::new_v4();
    let b = uuid.as_bytes();
    // A v4 UUID's bytes 6 and 8 carry its version and variant bits.
    let random = [
        b[0], b[1], b[2], b[3], b[4], b[5], b[9], b[10], b[11], b[12],
    ];
    let bits = random
        .iter()
        .fold(0u128, |acc, &x| acc << 8 | u128::from(x));
    (0..16)
        .map(|i| char::from(ALPHABET[((bits >> (75 - 5 * i)) & 31) as usize]))
        .collect()
}

fn partition_dir_name(p: u32) -> String {
    format!("partition-{p}")
}

/// The partition numbers of the `partition-N` entries in a log directory.
fn partition_entries(dir: &Path) -> io::Result<Vec<u32>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        if let Some(n) = name.to_str().and_then(|n| n.strip_prefix("partition-")) {
            if let Ok(p) = n.parse::<u32>() {
                if partition_dir_name(p) == format!("partition-{n}") {
                    found.push(p);
                }
            }
        }
    }
    found.sort_unstable();
    Ok(found)
}

fn is_empty_dir(dir: &Path) -> Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e).with_context(|| format!("cannot list {}", dir.display())),
    }
}

/// Writes a new log's partitions and `log.json` into `dir`, which exists
/// or is created. `log.json` goes last, by a hard link that fails when the
/// name exists, so exactly one creator wins even in place.
fn build_log(dir: &Path, config: &LogConfig) -> Result<()> {
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create log directory {}", dir.display()))?;
    for p in 0..config.partitions {
        let pdir = dir.join(partition_dir_name(p));
        fs::create_dir_all(&pdir).with_context(|| format!("cannot create {}", pdir.display()))?;
    }
    let tmp = dir.join(format!(".{CONFIG_FILE}.{}.tmp", std::process::id()));
    let body = serde_json::to_vec_pretty(config)?;
    let _ = fs::remove_file(&tmp);
    write_synced(&tmp, &body)?;
    let linked = fs::hard_link(&tmp, dir.join(CONFIG_FILE));
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => {
            Err(e).with_context(|| format!("cannot create {}", dir.join(CONFIG_FILE).display()))
        }
    }
}

fn read_all(file: &File) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut f = file;
    f.read_to_end(&mut out)?;
    Ok(out)
}

/// Writes a file and fsyncs it.
/// Writes a new file (never through a link: the name must be free) and
/// fsyncs it; on failure the file is removed again, so a full disk leaves
/// no empty or partial file behind.
pub(crate) fn write_synced(path: &Path, body: &[u8]) -> Result<()> {
    let mut f = file::open(path, file::Mode::CreateNew)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let written = f.write_all(body).and_then(|_| f.sync_all());
    if let Err(e) = written {
        drop(f);
        let _ = fs::remove_file(path);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
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
    // A temporary left by an earlier crash of a process with our id.
    let _ = fs::remove_file(&tmp);
    write_synced(&tmp, body)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot replace {}", path.display()));
    }
    sync_dir(dir)
}

/// Fsyncs a directory so that a new or renamed entry in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    // `Path::parent` of a bare file name ("state.json") is "": the current
    // directory.
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync directory {}", dir.display()))
}

/// Opens (creating) a partition's lock file, used with `File::lock`.
pub(crate) fn open_lock(path: &Path) -> Result<File> {
    file::open(path, file::Mode::ReadWriteCreate)
        .with_context(|| format!("cannot open lock file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_of_a_bare_file_name_is_the_current_one() {
        // `window --state state.json` syncs Path::new("state.json").parent().
        let parent = Path::new("state.json").parent().unwrap();
        assert!(sync_dir(parent).is_ok());
    }

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
    fn log_ids_are_short_random_and_distinct() {
        let ids: std::collections::HashSet<String> = (0..2000).map(|_| new_log_id()).collect();
        assert_eq!(ids.len(), 2000);
        for id in &ids {
            assert_eq!(id.len(), 16, "{id}");
            assert!(
                id.bytes().all(|c| matches!(c, b'a'..=b'z' | b'2'..=b'7')),
                "{id}"
            );
        }
        // Every character position takes many values: no bit is fixed.
        for i in 0..16 {
            let seen: std::collections::HashSet<u8> =
                ids.iter().map(|id| id.as_bytes()[i]).collect();
            assert!(seen.len() > 24, "position {i}: {} values", seen.len());
        }
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
