//! `archive --verify`: reads every file and reports, per source partition,
//! the offset ranges covered and every finding: gaps, duplicates,
//! overlapping ranges, damaged containers (sync markers, block counts,
//! codecs), files a manifest lists that are gone, files no manifest lists.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{json, Value};

use super::commit;
use super::layout::{FileKey, Layout};
use super::read::{Event, FileReader};
use super::scan;

/// One thing wrong with an archive (or, for `kind` "source" and "summary",
/// what it holds).
#[derive(Debug, Clone)]
pub struct Finding {
    /// `gap`, `duplicate`, `overlap`, `damaged`, `missing_file`,
    /// `unlisted_file`, `foreign_file`, `misplaced`.
    pub kind: &'static str,
    /// For people.
    pub message: String,
    /// For machines.
    pub detail: Value,
}

/// What a verification found.
#[derive(Debug, Default)]
pub struct Report {
    /// Per source: `LOG/PARTITION`, merged ranges, segments, events.
    pub sources: Vec<(String, Vec<(u64, u64)>, u64, u64)>,
    /// Everything wrong.
    pub findings: Vec<Finding>,
    /// Finished files read.
    pub files: u64,
    /// Events read.
    pub events: u64,
    /// Events without positions (archived at least once).
    pub unpositioned: u64,
    /// Temporary files of a killed run (the next run removes them).
    pub temps: u64,
}

type SegKey = (String, u32, u64, u64);

/// Verifies the archive at `root`.
pub fn verify(root: &Path) -> Result<Report> {
    let layout = Layout::load(root)?.ok_or_else(|| {
        anyhow::anyhow!(
            "{} is not an archive (no _unilog/archive.json)",
            root.display()
        )
    })?;
    let found = scan::scan(root)?;
    let mut report = Report {
        temps: found.temps.len() as u64,
        ..Report::default()
    };
    for f in &found.foreign {
        report.findings.push(Finding {
            kind: "foreign_file",
            message: format!("{} is not an archive file", f.display()),
            detail: json!({"file": f}),
        });
    }
    // What the manifests promise.
    let mut listed: HashMap<PathBuf, u64> = HashMap::new();
    for (mpath, m) in commit::manifests(root)? {
        for f in &m.files {
            let path = PathBuf::from(&f.path);
            if !root.join(&path).is_file() {
                let range = match (m.first, m.last) {
                    (Some(a), Some(b)) => format!(
                        " (offsets {a}-{b} of {}/{})",
                        m.log.as_deref().unwrap_or("?"),
                        m.partition.unwrap_or(0)
                    ),
                    _ => String::new(),
                };
                report.findings.push(Finding {
                    kind: "missing_file",
                    message: format!(
                        "{} is listed by {} but is gone: its {} events{range} are not in the archive",
                        path.display(),
                        mpath.strip_prefix(root).unwrap_or(&mpath).display(),
                        f.events
                    ),
                    detail: json!({"file": path, "events": f.events, "log": m.log, "partition": m.partition, "first": m.first, "last": m.last}),
                });
            }
            listed.insert(path, f.events);
        }
    }
    // Files by segment.
    let mut segments: BTreeMap<SegKey, Vec<usize>> = BTreeMap::new();
    let mut unpositioned = Vec::new();
    for (i, f) in found.files.iter().enumerate() {
        match &f.name.key {
            FileKey::Positioned {
                log,
                partition,
                first,
                last,
            } => segments
                .entry((log.clone(), *partition, *first, *last))
                .or_default()
                .push(i),
            FileKey::Unpositioned { .. } => unpositioned.push(i),
        }
        if !listed.contains_key(&f.rel) {
            report.findings.push(Finding {
                kind: "unlisted_file",
                message: format!(
                    "{} is in no segment manifest: a copy, or put there by hand",
                    f.rel.display()
                ),
                detail: json!({"file": f.rel}),
            });
        }
    }
    let mut event = Event::default();
    let mut read_file = |i: usize, report: &mut Report, positions: &mut Vec<(u64, u32, usize)>| {
        let f = &found.files[i];
        report.files += 1;
        let mut reader = match FileReader::open(&root.join(&f.rel), f.name.format, &layout) {
            Ok(r) => r,
            Err(e) => {
                report.findings.push(damaged(&f.rel, &e));
                return;
            }
        };
        let mut prev: Option<(u64, u32)> = None;
        loop {
            match reader.next(&mut event) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    report.findings.push(damaged(&f.rel, &e));
                    break;
                }
            }
            report.events += 1;
            match (&f.name.key, &event.position) {
                (
                    FileKey::Positioned {
                        log,
                        partition,
                        first,
                        last,
                    },
                    Some(p),
                ) => {
                    if *p.log != **log
                        || p.partition != *partition
                        || p.offset < *first
                        || p.offset > *last
                    {
                        report.findings.push(Finding {
                            kind: "misplaced",
                            message: format!(
                                "{} holds offset {} of {}/{}, outside what its name says ({log}/{partition} {first}-{last})",
                                f.rel.display(),
                                p.offset,
                                p.log,
                                p.partition
                            ),
                            detail: json!({"file": f.rel, "log": &*p.log, "partition": p.partition, "offset": p.offset}),
                        });
                    }
                    if prev.is_some_and(|q| q >= (p.offset, p.sub)) {
                        report.findings.push(Finding {
                            kind: "damaged",
                            message: format!(
                                "{}: offset {} is out of order",
                                f.rel.display(),
                                p.offset
                            ),
                            detail: json!({"file": f.rel, "offset": p.offset}),
                        });
                    }
                    prev = Some((p.offset, p.sub));
                    positions.push((p.offset, p.sub, i));
                }
                (FileKey::Positioned { .. }, None) => report.findings.push(Finding {
                    kind: "misplaced",
                    message: format!("{} holds an event without a position", f.rel.display()),
                    detail: json!({"file": f.rel}),
                }),
                (FileKey::Unpositioned { .. }, _) => report.unpositioned += 1,
            }
        }
        if let Some(&want) = listed.get(&f.rel) {
            if want != reader.events {
                report.findings.push(Finding {
                    kind: "damaged",
                    message: format!(
                        "{} has {} events; its manifest says {want}",
                        f.rel.display(),
                        reader.events
                    ),
                    detail: json!({"file": f.rel, "events": reader.events, "manifest": want}),
                });
            }
        }
    };
    for &i in &unpositioned {
        read_file(i, &mut report, &mut Vec::new());
    }
    let mut by_source: BTreeMap<(String, u32), Vec<(u64, u64, u64)>> = BTreeMap::new();
    let mut positions = Vec::new();
    for ((log, partition, first, last), files) in &segments {
        positions.clear();
        for &i in files {
            read_file(i, &mut report, &mut positions);
        }
        positions.sort_unstable();
        let mut k = 0;
        while k < positions.len() {
            let mut j = k + 1;
            while j < positions.len()
                && positions[j].0 == positions[k].0
                && positions[j].1 == positions[k].1
            {
                j += 1;
            }
            if j - k > 1 {
                let files: Vec<_> = positions[k..j]
                    .iter()
                    .map(|p| found.files[p.2].rel.clone())
                    .collect();
                report.findings.push(Finding {
                    kind: "duplicate",
                    message: format!(
                        "offset {}{} of {log}/{partition} is archived {} times: {}",
                        positions[k].0,
                        if positions[k].1 > 0 { format!(" (sub {})", positions[k].1) } else { String::new() },
                        j - k,
                        files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
                    ),
                    detail: json!({"log": log, "partition": partition, "offset": positions[k].0, "sub": positions[k].1, "files": files}),
                });
            }
            k = j;
        }
        by_source
            .entry((log.clone(), *partition))
            .or_default()
            .push((*first, *last, positions.len() as u64));
    }
    for ((log, partition), segs) in by_source {
        let mut merged: Vec<(u64, u64)> = Vec::new();
        let mut events = 0;
        let mut prev: Option<(u64, u64)> = None;
        for &(a, b, n) in &segs {
            events += n;
            if let Some((pa, pb)) = prev {
                if a <= pb {
                    report.findings.push(Finding {
                        kind: "overlap",
                        message: format!(
                            "{log}/{partition}: segment {a}-{b} overlaps segment {pa}-{pb}"
                        ),
                        detail: json!({"log": log, "partition": partition, "first": a, "last": b, "other_first": pa, "other_last": pb}),
                    });
                } else if a > pb + 1 {
                    report.findings.push(Finding {
                        kind: "gap",
                        message: format!(
                            "{log}/{partition}: no file holds offsets {}-{}",
                            pb + 1,
                            a - 1
                        ),
                        detail: json!({"log": log, "partition": partition, "first": pb + 1, "last": a - 1}),
                    });
                }
            }
            match merged.last_mut() {
                Some(m) if a <= m.1 + 1 => m.1 = m.1.max(b),
                _ => merged.push((a, b)),
            }
            prev = Some(match prev {
                Some((pa, pb)) if pb > b => (pa, pb),
                _ => (a, b),
            });
        }
        report.sources.push((
            format!("{log}/{partition}"),
            merged,
            segs.len() as u64,
            events,
        ));
    }
    Ok(report)
}

fn damaged(rel: &Path, e: &anyhow::Error) -> Finding {
    Finding {
        kind: "damaged",
        message: format!("{}: {e:#}", rel.display()),
        detail: json!({"file": rel, "error": format!("{e:#}")}),
    }
}

impl Report {
    /// The report for people.
    pub fn human(&self, root: &Path) -> String {
        let mut s = format!(
            "archive {}: {} files, {} events ({} without positions)\n",
            root.display(),
            self.files,
            self.events,
            self.unpositioned
        );
        for (source, ranges, segments, events) in &self.sources {
            let r: Vec<String> = ranges.iter().map(|(a, b)| format!("{a}-{b}")).collect();
            s.push_str(&format!(
                "  {source}: offsets {} in {segments} segments, {events} events\n",
                r.join(", ")
            ));
        }
        if self.temps > 0 {
            s.push_str(&format!(
                "  {} temporary files of an interrupted run (the next archive run removes them)\n",
                self.temps
            ));
        }
        for f in &self.findings {
            s.push_str(&format!("  {}: {}\n", f.kind, f.message));
        }
        s.push_str(&match self.findings.len() {
            0 => "ok: no gaps, duplicates, overlaps or damage\n".to_string(),
            n => format!("{n} findings\n"),
        });
        s
    }

    /// The report as NDJSON lines.
    pub fn json_lines(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for (source, ranges, segments, events) in &self.sources {
            out.push(json!({"kind": "source", "source": source, "ranges": ranges, "segments": segments, "events": events}));
        }
        for f in &self.findings {
            let mut v = json!({"kind": f.kind, "message": f.message});
            if let (Some(o), Some(d)) = (v.as_object_mut(), f.detail.as_object()) {
                for (k, x) in d {
                    o.insert(k.clone(), x.clone());
                }
            }
            out.push(v);
        }
        out.push(json!({"kind": "summary", "files": self.files, "events": self.events, "unpositioned": self.unpositioned, "temporary_files": self.temps, "findings": self.findings.len()}));
        out
    }
}
