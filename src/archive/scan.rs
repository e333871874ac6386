//! One walk over an archive: its finished files (by name), the temporary
//! files a killed run left, foreign files, and its period directories with
//! or without `_SUCCESS`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::layout::{self, FileName, Label, META_DIR, SUCCESS};

/// A finished archive file.
#[derive(Debug, Clone)]
pub struct Found {
    /// Its path relative to the archive.
    pub rel: PathBuf,
    /// Its parsed name.
    pub name: FileName,
}

/// A period directory of one schema.
#[derive(Debug, Clone)]
pub struct PeriodDir {
    /// `VENDOR/NAME/FORMAT-MODEL/dt=…[/hr=…]`, relative to the archive.
    pub rel: PathBuf,
    /// Its period's label.
    pub label: Label,
    /// True when it holds `_SUCCESS`.
    pub success: bool,
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Finished files, sorted by path.
    pub files: Vec<Found>,
    /// Temporary files (absolute paths).
    pub temps: Vec<PathBuf>,
    /// Files that are neither ours nor markers, relative to the archive.
    pub foreign: Vec<PathBuf>,
    /// Period directories.
    pub periods: Vec<PeriodDir>,
    /// Schema directories, `VENDOR/NAME/FORMAT-MODEL`.
    pub schemas: Vec<PathBuf>,
}

/// Walks the archive at `root`.
pub fn scan(root: &Path) -> Result<Scan> {
    let mut out = Scan::default();
    walk(root, PathBuf::new(), 0, &mut out)?;
    out.files.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.periods.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.schemas.sort();
    Ok(out)
}

fn walk(root: &Path, rel: PathBuf, depth: usize, out: &mut Scan) -> Result<()> {
    let dir = root.join(&rel);
    let entries = fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
    let in_meta = rel.starts_with(META_DIR);
    let mut success = false;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            out.foreign.push(rel.join(entry.file_name()));
            continue;
        };
        let child = rel.join(name);
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot look at {}", root.join(&child).display()))?;
        if kind.is_dir() {
            if depth == 2 && !in_meta {
                out.schemas.push(child.clone());
            }
            walk(root, child, depth + 1, out)?;
            continue;
        }
        if layout::is_temp_name(name) {
            out.temps.push(root.join(&child));
        } else if in_meta {
            // manifests and the configuration
        } else if name == SUCCESS {
            success = true;
        } else if let Some(parsed) = FileName::parse(name) {
            out.files.push(Found {
                rel: child,
                name: parsed,
            });
        } else {
            out.foreign.push(child);
        }
    }
    if !in_meta && depth >= 4 {
        let period_part: PathBuf = rel.iter().skip(3).collect();
        if let Some(label) = Label::parse_dir(&period_part) {
            // A day directory of an hour archive is only a parent.
            let leaf = rel
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("hr=") || label.hour < 0);
            let has_hours = label.hour < 0
                && fs::read_dir(&dir)
                    .map(|d| {
                        d.flatten()
                            .any(|e| e.file_name().to_string_lossy().starts_with("hr="))
                    })
                    .unwrap_or(false);
            if leaf && !has_hours {
                out.periods.push(PeriodDir {
                    rel: rel.clone(),
                    label,
                    success,
                });
            }
        }
    }
    Ok(())
}
