//! Finishing files so that no reader ever sees half of one, and several
//! files at once so that a crash leaves all or none of a segment.
//!
//! A file is written under a hidden temporary name beside its final place
//! and fsynced, with its directory. A segment (every file cut from one
//! source range at once) is committed by its manifest,
//! `_unilog/segments/LOG+P/FIRST-LAST.json` (or `…/nopos/RUN-SEQ.json`),
//! written atomically; then each temporary file is renamed to its final
//! name and the directories fsynced. After a crash, [`recover`] renames
//! the files of every committed manifest that are still temporary (they
//! are whole and durable) and deletes every other temporary file: work of a
//! run that never committed, which the rerun writes again.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::layout::{self, META_DIR, SEGMENTS_DIR};
use crate::store::{sync_dir, write_atomically};

/// A file being written under its temporary name (its final name, which
/// holds the segment's last offset, is known only when it is finished).
pub struct TempFile {
    dir: PathBuf,
    temp_name: String,
    file: File,
}

impl TempFile {
    /// Creates `dir/.STEM.tmp` (replacing a leftover one), creating `dir`
    /// and fsyncing every parent that gains an entry.
    pub fn create(root: &Path, rel_dir: &Path, stem: &str) -> Result<TempFile> {
        ensure_dir(root, rel_dir)?;
        let dir = root.join(rel_dir);
        let temp_name = layout::temp_name(stem);
        let path = dir.join(&temp_name);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(TempFile {
            dir,
            temp_name,
            file,
        })
    }

    /// Appends bytes (all of them, or an error naming the file).
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .with_context(|| format!("cannot write {}", self.path().display()))
    }

    /// Its temporary path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.temp_name)
    }

    /// A second handle on the file that appends where this one does (they
    /// share the offset), for the thread that writes its blocks.
    pub fn handle(&self) -> Result<File> {
        self.file
            .try_clone()
            .with_context(|| format!("cannot write {}", self.path().display()))
    }

    /// Fsyncs the file, ready to be committed as `final_name`. Every
    /// handle's writes must be done.
    pub fn finish(self, final_name: &str) -> Result<Finished> {
        let tmp = self.path();
        let synced = self.file.sync_all().and_then(|()| self.file.metadata());
        let bytes = synced
            .with_context(|| format!("cannot write {}", tmp.display()))?
            .len();
        Ok(Finished {
            tmp,
            path: self.dir.join(final_name),
            bytes,
        })
    }

    /// Removes the temporary file (after an error).
    pub fn discard(self) {
        let _ = fs::remove_file(self.dir.join(&self.temp_name));
    }
}

/// A whole, fsynced temporary file and the name it is to take.
pub struct Finished {
    /// Its temporary path.
    pub tmp: PathBuf,
    /// Its final path.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
}

/// Creates `root/rel` one component at a time, fsyncing each parent that
/// gains a directory, so the path survives a crash.
pub fn ensure_dir(root: &Path, rel: &Path) -> Result<()> {
    let full = root.join(rel);
    if full.is_dir() {
        return Ok(());
    }
    let mut at = root.to_path_buf();
    for part in rel.components() {
        let next = at.join(part);
        match fs::create_dir(&next) {
            Ok(()) => sync_dir(&at)?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", next.display())),
        }
        at = next;
    }
    Ok(())
}

/// One file of a committed segment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestFile {
    /// Its path relative to the archive.
    pub path: String,
    /// Its temporary name, in the same directory, until it is renamed.
    pub tmp: String,
    /// How many events it holds.
    pub events: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The commit record of one segment: which source range, which files.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// The source log id (absent for events without positions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// The source partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    /// The first offset of the range the segment covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<u64>,
    /// The last offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<u64>,
    /// For events without positions: the run and the segment's number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The segment's number in its run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Events read for the range, archived or routed as failures.
    pub inputs: u64,
    /// The files, in the order they were opened.
    pub files: Vec<ManifestFile>,
}

impl Manifest {
    /// Where this manifest lives, relative to the archive.
    pub fn rel_path(&self) -> Result<PathBuf> {
        let mut p = PathBuf::from(META_DIR).join(SEGMENTS_DIR);
        match (&self.log, self.partition, self.first, self.last) {
            (Some(log), Some(partition), Some(first), Some(last)) => {
                p.push(format!("{}+{partition}", layout::escape_log(log)?));
                p.push(format!("{first:020}-{last:020}.json"));
            }
            _ => {
                p.push("nopos");
                p.push(format!(
                    "{}-{:06}.json",
                    self.run.as_deref().unwrap_or("run"),
                    self.seq.unwrap_or(0)
                ));
            }
        }
        Ok(p)
    }
}

/// Commits a segment: the manifest first (the commit point), then every
/// file under its final name, then the directories.
pub fn commit(root: &Path, manifest: &Manifest, files: &[Finished]) -> Result<()> {
    let mut dirs = BTreeSet::new();
    for f in files {
        if let Some(d) = f.tmp.parent() {
            dirs.insert(d.to_path_buf());
        }
    }
    // The temporary files' own entries must be durable before the manifest
    // promises them.
    for d in &dirs {
        sync_dir(d)?;
    }
    let rel = manifest.rel_path()?;
    let parent = rel.parent().expect("a manifest path has a parent");
    ensure_dir(root, parent)?;
    let mut body = serde_json::to_vec(manifest).expect("manifests serialize");
    body.push(b'\n');
    write_atomically(&root.join(&rel), &body)?;
    for f in files {
        fs::rename(&f.tmp, &f.path).with_context(|| {
            format!("cannot rename {} to {}", f.tmp.display(), f.path.display())
        })?;
    }
    for d in &dirs {
        sync_dir(d)?;
    }
    Ok(())
}

/// Every manifest in the archive, with its path.
pub fn manifests(root: &Path) -> Result<Vec<(PathBuf, Manifest)>> {
    let base = root.join(META_DIR).join(SEGMENTS_DIR);
    let mut out = Vec::new();
    let Ok(groups) = fs::read_dir(&base) else {
        return Ok(out);
    };
    for group in groups {
        let group = group?.path();
        if !group.is_dir() {
            continue;
        }
        for entry in
            fs::read_dir(&group).with_context(|| format!("cannot list {}", group.display()))?
        {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.ends_with(".json") || name.starts_with('.') {
                continue;
            }
            let text =
                fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let m: Manifest = serde_json::from_slice(&text)
                .with_context(|| format!("{} is not a segment manifest", path.display()))?;
            out.push((path, m));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// What [`recover`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Files of committed segments renamed into place.
    pub rolled_forward: u64,
    /// Temporary files of segments that never committed, deleted.
    pub discarded: u64,
}

/// Finishes what a killed run committed and deletes what it did not.
pub fn recover(root: &Path, temps: &[PathBuf]) -> Result<Recovery> {
    let mut done = Recovery::default();
    let mut dirs = BTreeSet::new();
    for (_, m) in manifests(root)? {
        for f in &m.files {
            let path = root.join(&f.path);
            if path.exists() {
                continue;
            }
            let tmp = path.with_file_name(&f.tmp);
            if !f.tmp.starts_with('.') || f.tmp.contains('/') {
                continue;
            }
            if tmp.exists() {
                fs::rename(&tmp, &path).with_context(|| {
                    format!("cannot finish {} (from {})", path.display(), tmp.display())
                })?;
                done.rolled_forward += 1;
                if let Some(d) = path.parent() {
                    dirs.insert(d.to_path_buf());
                }
            }
        }
    }
    for tmp in temps {
        if tmp.exists() {
            fs::remove_file(tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
            done.discarded += 1;
            if let Some(d) = tmp.parent() {
                dirs.insert(d.to_path_buf());
            }
        }
    }
    for d in &dirs {
        sync_dir(d)?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(files: Vec<ManifestFile>) -> Manifest {
        Manifest {
            log: Some("L".into()),
            partition: Some(0),
            first: Some(0),
            last: Some(9),
            run: None,
            seq: None,
            inputs: 10,
            files,
        }
    }

    #[test]
    fn a_committed_segment_is_rolled_forward_and_the_rest_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut a = TempFile::create(root, Path::new("v/n/f-1/dt=2026-01-01/hr=00"), "a").unwrap();
        a.write_all(b"aaaa").unwrap();
        let a = a.finish("a.avro").unwrap();
        let mut b = TempFile::create(root, Path::new("v/m/f-1/dt=2026-01-01/hr=00"), "b").unwrap();
        b.write_all(b"bb").unwrap();
        let b = b.finish("b.avro").unwrap();
        let stray = TempFile::create(root, Path::new("v/n/f-1/dt=2026-01-01/hr=00"), "c").unwrap();
        drop(stray);
        // A crash after the manifest, before the renames.
        let m = manifest(vec![
            ManifestFile {
                path: "v/n/f-1/dt=2026-01-01/hr=00/a.avro".into(),
                tmp: ".a.tmp".into(),
                events: 1,
                bytes: 4,
            },
            ManifestFile {
                path: "v/m/f-1/dt=2026-01-01/hr=00/b.avro".into(),
                tmp: ".b.tmp".into(),
                events: 1,
                bytes: 2,
            },
        ]);
        let rel = m.rel_path().unwrap();
        ensure_dir(root, rel.parent().unwrap()).unwrap();
        write_atomically(&root.join(&rel), &serde_json::to_vec(&m).unwrap()).unwrap();
        fs::rename(&a.tmp, &a.path).unwrap();
        let stray_tmp = root.join("v/n/f-1/dt=2026-01-01/hr=00/.c.tmp");
        let done = recover(root, &[stray_tmp.clone()]).unwrap();
        assert_eq!(
            done,
            Recovery {
                rolled_forward: 1,
                discarded: 1
            }
        );
        assert_eq!(fs::read(&b.path).unwrap(), b"bb");
        assert!(!b.tmp.exists() && !stray_tmp.exists());
        assert_eq!(manifests(root).unwrap().len(), 1);
    }

    #[test]
    fn commit_publishes_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut a = TempFile::create(root, Path::new("x"), "a").unwrap();
        a.write_all(b"1").unwrap();
        let a = a.finish("a.avro").unwrap();
        let m = manifest(vec![ManifestFile {
            path: "x/a.avro".into(),
            tmp: ".a.tmp".into(),
            events: 1,
            bytes: 1,
        }]);
        commit(root, &m, &[a]).unwrap();
        assert!(root.join("x/a.avro").exists());
        assert!(!root.join("x/.a.tmp").exists());
        assert_eq!(manifests(root).unwrap()[0].1, m);
    }
}
