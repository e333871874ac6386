//! The checkpoint file (`--state FILE`): the open windows, each partition's
//! event-time progress, the input positions it reflects (`held`, which
//! `log-tail --resume-from FILE` starts from), the next emission sequence
//! number, and the results decided but not yet known to be written.
//!
//! Layout: one header line, `{"format":"unilog-window-state","version":1,
//! "bytes":N,"crc32c":"…"}`, then the body (one JSON document of N bytes).
//! The file is replaced atomically (write, fsync, rename, fsync the
//! directory), so a crash leaves the old checkpoint or the new one; a
//! truncated or damaged file fails its length or checksum and is refused,
//! never overwritten. A lock file beside it keeps a second `window` off.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::position::Held;

const FORMAT: &str = "unilog-window-state";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    bytes: u64,
    crc32c: String,
}

/// One open window as the checkpoint keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedWindow {
    /// The key's JSON text.
    pub key: String,
    /// Start, ms.
    pub start: i64,
    /// End, ms (exclusive).
    pub end: i64,
    /// Events applied.
    pub events: u64,
    /// Results written for it so far.
    pub revision: u32,
    /// Changed since its last update result.
    #[serde(default)]
    pub dirty: bool,
    /// The aggregates' values (see `aggregate::Acc::to_state`).
    pub values: Vec<Value>,
}

/// A result decided and numbered but not yet known to be written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    /// Its emission sequence number (its offset in source `window:<id>`).
    pub seq: u64,
    /// The result event, without its position member.
    pub event: String,
}

/// Everything a checkpoint holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// This state's id: results carry it as their source, `window:<id>`.
    pub id: String,
    /// The job's canonical configuration; another one is refused.
    pub config: Value,
    /// The next emission sequence number.
    pub next_seq: u64,
    /// The input positions the windows reflect, per source.
    pub held: Held,
    /// Each partition's largest event time (ms).
    pub partitions: Vec<(String, i64)>,
    /// The job's watermark (it never moves back).
    pub watermark: i64,
    /// Results numbered but not yet known to be written, in order.
    pub pending: Vec<Pending>,
    /// The open windows.
    pub windows: Vec<SavedWindow>,
}

/// The checkpoint file, locked for this process.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    _lock: File,
}

impl StateFile {
    /// Locks `path` for this process and reads its checkpoint, if it has one.
    pub fn open(path: &Path) -> Result<(StateFile, Option<Checkpoint>)> {
        let lock_path = lock_path(path);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open the state's lock file {}", lock_path.display()))?;
        if lock.try_lock().is_err() {
            bail!(
                "state {} is in use by another window process (lock {}); stop it first",
                path.display(),
                lock_path.display()
            );
        }
        let checkpoint = match std::fs::read(path) {
            Ok(bytes) => Some(decode(path, &bytes)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read state {}", path.display())),
        };
        Ok((
            StateFile {
                path: path.to_path_buf(),
                _lock: lock,
            },
            checkpoint,
        ))
    }

    /// Replaces the checkpoint atomically.
    pub fn write(&self, checkpoint: &Checkpoint) -> Result<()> {
        let body = serde_json::to_vec(checkpoint).context("cannot encode the window state")?;
        let header = Header {
            format: FORMAT.into(),
            version: VERSION,
            bytes: body.len() as u64,
            crc32c: format!("{:08x}", crc32c::crc32c(&body)),
        };
        let mut file = serde_json::to_vec(&header).expect("a header serializes");
        file.push(b'\n');
        file.extend_from_slice(&body);
        file.push(b'\n');
        crate::store::write_atomically(&self.path, &file)
            .with_context(|| format!("cannot write state {}", self.path.display()))
    }

    /// Where the checkpoint is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    path.with_file_name(name)
}

/// True when `bytes` begin as a window state file does (its header's
/// format), whole or not: for telling a state from other files.
pub fn is_state(bytes: &[u8]) -> bool {
    let header = format!("{{\"format\":\"{FORMAT}\"");
    bytes.starts_with(header.as_bytes())
}

/// Reads a checkpoint file's bytes, refusing anything that is not one whole.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
    let damaged = |why: String| {
        anyhow::anyhow!(
            "state {} is damaged: {why}; it was left as it is. Restore it from a backup, or \
             move it away to start over (and replay the input from the beginning)",
            path.display()
        )
    };
    let Some(nl) = memchr::memchr(b'\n', bytes) else {
        return Err(damaged(if bytes.is_empty() {
            "the file is empty".into()
        } else {
            "it has no header line".into()
        }));
    };
    let header: Header = serde_json::from_slice(&bytes[..nl]).map_err(|_| {
        damaged("its first line is not a window state header (is this a window state file?)".into())
    })?;
    if header.format != FORMAT {
        return Err(damaged(format!("its format is {:?}, not {FORMAT:?}", header.format)));
    }
    if header.version != VERSION {
        bail!(
            "state {} has version {} of the format; this window reads version {VERSION}",
            path.display(),
            header.version
        );
    }
    let body = &bytes[nl + 1..];
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    if body.len() as u64 != header.bytes {
        return Err(damaged(format!(
            "the body is {} bytes, the header says {} (truncated?)",
            body.len(),
            header.bytes
        )));
    }
    let crc = format!("{:08x}", crc32c::crc32c(body));
    if crc != header.crc32c {
        return Err(damaged(format!("its checksum is {crc}, the header says {}", header.crc32c)));
    }
    serde_json::from_slice(body).map_err(|e| damaged(format!("its body does not read: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            id: "abc".into(),
            config: serde_json::json!({"window":"tumbling"}),
            next_seq: 7,
            held: Held::default(),
            partitions: vec![("log/0".into(), 1000)],
            watermark: 900,
            pending: vec![Pending { seq: 6, event: "{}".into() }],
            windows: vec![],
        }
    }

    #[test]
    fn a_checkpoint_reads_back_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let (file, none) = StateFile::open(&path).unwrap();
        assert!(none.is_none());
        file.write(&sample()).unwrap();
        // A second process cannot take it.
        assert!(StateFile::open(&path).unwrap_err().to_string().contains("in use"));
        drop(file);
        let (_file, back) = StateFile::open(&path).unwrap();
        let back = back.unwrap();
        assert_eq!((back.next_seq, back.watermark, back.pending[0].seq), (7, 900, 6));

        let bytes = std::fs::read(&path).unwrap();
        let cut = decode(&path, &bytes[..bytes.len() - 10]).unwrap_err().to_string();
        assert!(cut.contains("truncated"), "{cut}");
        let mut flipped = bytes.clone();
        let at = flipped.len() - 5;
        flipped[at] ^= 1;
        assert!(decode(&path, &flipped).unwrap_err().to_string().contains("checksum"));
        assert!(decode(&path, b"").unwrap_err().to_string().contains("empty"));
        assert!(decode(&path, b"{\"x\":1}\n{}").unwrap_err().to_string().contains("header"));
    }
}
