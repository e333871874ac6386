//! What a LOG argument names: a file log's directory, or a Kafka topic
//! (`kafka://HOST:PORT[,HOST:PORT...]/TOPIC`). A `SCHEME://` argument of a
//! backend this build does not have (`s3://...`) is refused rather than
//! taken for a local directory called `s3:`. A plain file, or a directory that is no log, is said to be so
//! plainly, before any tool tries to read `FILE/log.json`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};

use crate::store::kafka::KafkaUrl;
use crate::store::Log;

/// The URL schemes this build reads and writes logs at.
pub const SUPPORTED_SCHEMES: &[&str] = &["kafka"];

/// A log, as a LOG argument names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file log: its directory.
    Dir(PathBuf),
    /// A Kafka topic.
    Kafka(KafkaUrl),
}

impl Location {
    /// Reads a LOG argument: a directory, or a URL of a scheme this build
    /// supports.
    pub fn parse(arg: &Path) -> Result<Location> {
        check_not_url(arg)?;
        let text = arg.to_string_lossy();
        if text.starts_with("kafka://") {
            return Ok(Location::Kafka(KafkaUrl::parse(&text)?));
        }
        Ok(Location::Dir(arg.to_path_buf()))
    }

    /// The file log's directory; `None` for other backends.
    pub fn as_dir(&self) -> Option<&Path> {
        match self {
            Location::Dir(dir) => Some(dir),
            Location::Kafka(_) => None,
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Dir(dir) => write!(f, "{}", dir.display()),
            Location::Kafka(url) => f.write_str(&url.text),
        }
    }
}

/// Refuses a LOG argument that looks like a URL of a scheme this build does
/// not support (`kafka://…`, `s3://…`).
pub fn check_not_url(path: &Path) -> Result<()> {
    let text = path.to_string_lossy();
    if let Some((scheme, _)) = text.split_once("://") {
        let is_scheme = !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if is_scheme && !SUPPORTED_SCHEMES.contains(&scheme) {
            bail!(
                "{text}: this build has no {scheme}:// backend; a LOG is a log directory here (write ./{text} if you mean a directory of that name)"
            );
        }
    }
    Ok(())
}

/// Checks a LOG argument to be read: not a URL this build lacks, and, when
/// it exists, a directory holding a log. A missing path is left to
/// [`Log::open`], which says how to create it.
pub fn check_readable(path: &Path) -> Result<()> {
    check_not_url(path)?;
    match std::fs::metadata(path) {
        Ok(m) if !m.is_dir() => bail!(
            "{} is not a log: it is a file, and a log is a directory (made by log-append); to read a file of events, use cat or give it to the filter directly",
            path.display()
        ),
        _ => Ok(()),
    }
}

/// Waits until a log exists at `path` (as `tail -F` waits for a file),
/// saying once on stderr what it waits for. False when SIGINT or SIGTERM
/// ended the wait first.
pub fn wait_for(path: &Path) -> Result<bool> {
    check_not_url(path)?;
    crate::cli::stop_on_signals();
    let mut said = false;
    while !Log::exists(path) {
        check_readable(path)?;
        if !said {
            crate::cli::warn(format_args!(
                "{} does not exist yet; waiting for it (--wait)",
                path.display()
            ));
            said = true;
        }
        if crate::cli::stop_requested() {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_unknown_schemes_are_refused() {
        let err = check_not_url(Path::new("s3://bucket/raw")).unwrap_err();
        assert!(err.to_string().contains("no s3:// backend"), "{err}");
        assert!(check_not_url(Path::new("kafka://localhost:9092/raw")).is_ok());
        assert!(check_not_url(Path::new("raw.log")).is_ok());
        assert!(check_not_url(Path::new("./kafka:/x")).is_ok());
        assert!(check_not_url(Path::new("dir/a://b")).is_ok());
    }

    #[test]
    fn kafka_addresses_are_topics() {
        let at = Location::parse(Path::new("kafka://127.0.0.1:9092/raw")).unwrap();
        assert!(matches!(&at, Location::Kafka(u) if u.topic == "raw"));
        assert_eq!(at.to_string(), "kafka://127.0.0.1:9092/raw");
        assert!(Location::parse(Path::new("kafka://127.0.0.1/raw")).is_err());
        assert!(matches!(
            Location::parse(Path::new("raw.log")).unwrap(),
            Location::Dir(_)
        ));
    }

    #[test]
    fn a_file_is_not_a_log() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("events.ndjson");
        std::fs::write(&file, "{}\n").unwrap();
        let err = check_readable(&file).unwrap_err().to_string();
        assert!(err.contains("is not a log: it is a file"), "{err}");
        assert!(check_readable(&dir.path().join("missing")).is_ok());
    }
}
