//! `archive --replay`: the archived events back as NDJSON, byte for byte as
//! they went in, in offset order within each source partition; partitions
//! are interleaved by append time, as a reader of the live log sees them,
//! so a stateful tool downstream (`window`) sees the same order it would.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::layout::{FileKey, Label, Layout};
use super::read::{Event, FileReader};
use super::scan::{self, Found};
use crate::io::Output;
use crate::position;

/// Which events to replay.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only events placed at or after this time (ms).
    pub since: Option<i64>,
    /// Only events placed before this time.
    pub until: Option<i64>,
    /// Only schemas this criterion matches.
    pub schema: Option<Criterion>,
}

/// A schema criterion, Iglu style: `iglu:VENDOR/NAME/FORMAT/M-R-A` where
/// any part (or a version number) may be `*` or contain `*`; a shorter
/// `VENDOR/NAME` or `VENDOR/NAME/FORMAT` leaves the rest open.
#[derive(Debug, Clone)]
pub struct Criterion {
    parts: Vec<String>,
}

impl Criterion {
    /// Parses a criterion.
    pub fn parse(text: &str) -> Result<Criterion> {
        let body = text.strip_prefix("iglu:").unwrap_or(text);
        let mut parts: Vec<String> = body.split('/').map(str::to_string).collect();
        if parts.len() < 2 || parts.len() > 4 || parts.iter().any(String::is_empty) {
            bail!("schema criterion {text:?} must look like iglu:com.nile/shopper_*/jsonschema/1-*-* or com.nile/order");
        }
        while parts.len() < 4 {
            parts.push("*".into());
        }
        if parts[3] != "*" {
            let v: Vec<&str> = parts[3].split('-').collect();
            if v.len() != 3 {
                bail!("schema criterion {text:?}: the version is MODEL-REVISION-ADDITION, each a number or *");
            }
        }
        Ok(Criterion { parts })
    }

    /// True when the schema directory `VENDOR/NAME/FORMAT-MODEL` may hold matches.
    pub fn matches_dir(&self, dir: &Path) -> bool {
        let parts: Vec<&str> = dir.iter().filter_map(|p| p.to_str()).collect();
        let [vendor, name, fm] = parts[..] else {
            return false;
        };
        let Some((format, model)) = fm.rsplit_once('-') else {
            return false;
        };
        let want_model = self.parts[3].split('-').next().unwrap_or("*");
        glob(&self.parts[0], vendor)
            && glob(&self.parts[1], name)
            && glob(&self.parts[2], format)
            && glob(want_model, model)
    }

    /// True when `uri` (`iglu:…`) matches.
    pub fn matches(&self, uri: &str) -> bool {
        let Some(body) = uri.strip_prefix("iglu:") else {
            return false;
        };
        let parts: Vec<&str> = body.split('/').collect();
        if parts.len() != 4 {
            return false;
        }
        let version_ok = self.parts[3] == "*" || {
            let want: Vec<&str> = self.parts[3].split('-').collect();
            let have: Vec<&str> = parts[3].split('-').collect();
            want.len() == have.len() && want.iter().zip(&have).all(|(w, h)| glob(w, h))
        };
        (0..3).all(|i| glob(&self.parts[i], parts[i])) && version_ok
    }

    /// True when only whole directories are chosen (no revision or
    /// addition in the criterion), so events need not be looked at.
    fn dir_level(&self) -> bool {
        let v: Vec<&str> = self.parts[3].split('-').collect();
        self.parts[3] == "*" || (v.len() == 3 && v[1] == "*" && v[2] == "*")
    }
}

/// `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// One source's files, segment after segment, merged by offset.
struct Stream {
    segments: std::collections::VecDeque<Vec<Found>>,
    open: Vec<(FileReader, Event)>,
    head: Option<Event>,
}

impl Stream {
    fn advance(&mut self, root: &Path, layout: &Layout) -> Result<()> {
        loop {
            // The lowest position among the open files' heads.
            let best = self
                .open
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, e))| e.position.as_ref().map(|p| (p.offset, p.sub)))
                .map(|(i, _)| i);
            if let Some(i) = best {
                let (reader, head) = &mut self.open[i];
                let mut next = Event::default();
                let more = reader.next(&mut next)?;
                let out = std::mem::replace(head, next);
                if !more {
                    self.open.swap_remove(i);
                }
                self.head = Some(out);
                return Ok(());
            }
            let Some(files) = self.segments.pop_front() else {
                self.head = None;
                return Ok(());
            };
            for f in files {
                let path = root.join(&f.rel);
                let mut reader = FileReader::open(&path, f.name.format, layout)
                    .with_context(|| format!("cannot replay {}", path.display()))?;
                let mut first = Event::default();
                if reader
                    .next(&mut first)
                    .with_context(|| format!("cannot replay {}", path.display()))?
                {
                    self.open.push((reader, first));
                }
            }
        }
    }
}

/// Replays the archive at `root` into `out`; returns the events written.
pub fn replay(root: &Path, filter: &Filter, with_position: bool, out: &mut Output) -> Result<u64> {
    let layout = Layout::load(root)?.ok_or_else(|| {
        anyhow::anyhow!(
            "{} is not an archive (no _unilog/archive.json)",
            root.display()
        )
    })?;
    let found = scan::scan(root)?;
    let mut streams: std::collections::BTreeMap<
        Option<(String, u32)>,
        std::collections::BTreeMap<(u64, u64, String), Vec<Found>>,
    > = Default::default();
    for f in found.files {
        let mut parts = f.rel.iter();
        let schema_dir: std::path::PathBuf = parts.by_ref().take(3).collect();
        if let Some(c) = &filter.schema {
            if !c.matches_dir(&schema_dir) {
                continue;
            }
        }
        let period_dir: std::path::PathBuf = f
            .rel
            .iter()
            .skip(3)
            .take_while(|p| {
                !p.to_string_lossy().contains('+') && !p.to_string_lossy().starts_with("nopos-")
            })
            .collect();
        if let Some(label) = Label::parse_dir(&period_dir) {
            if !period_may_match(&layout, label, filter) {
                continue;
            }
        }
        let (key, seg) = match &f.name.key {
            FileKey::Positioned {
                log,
                partition,
                first,
                last,
            } => (
                Some((log.clone(), *partition)),
                (*first, *last, String::new()),
            ),
            FileKey::Unpositioned { run, seq } => (None, (*seq, 0, run.clone())),
        };
        streams
            .entry(key)
            .or_default()
            .entry(seg)
            .or_default()
            .push(f);
    }
    let mut all: Vec<Stream> = Vec::new();
    for (key, segs) in streams {
        match key {
            Some(_) => all.push(Stream {
                segments: segs.into_values().collect(),
                open: Vec::new(),
                head: None,
            }),
            // Events without positions: one file at a time, in name order.
            None => {
                for (_, files) in segs {
                    for f in files {
                        all.push(Stream {
                            segments: std::iter::once(vec![f]).collect(),
                            open: Vec::new(),
                            head: None,
                        });
                    }
                }
            }
        }
    }
    for s in &mut all {
        s.advance(root, &layout)?;
    }
    let check_events = filter.schema.as_ref().is_some_and(|c| !c.dir_level());
    let mut top = crate::json::TopLevel::default();
    let mut line = Vec::new();
    let mut written = 0u64;
    loop {
        let pick = all
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.head.as_ref().map(|e| (i, e)))
            .min_by_key(|(i, e)| {
                (
                    e.position.as_ref().and_then(|p| p.time_ms).or(e.time_ms),
                    *i,
                )
            })
            .map(|(i, _)| i);
        let Some(i) = pick else { break };
        let event = all[i].head.take().expect("picked a stream with a head");
        all[i].advance(root, &layout)?;
        if let Some(t) = event.time_ms {
            if filter.since.is_some_and(|s| t < s) || filter.until.is_some_and(|u| t >= u) {
                continue;
            }
        }
        if check_events {
            top.scan_trusted(&event.bytes);
            let uri = top
                .get(&event.bytes, "schema")
                .and_then(|r| serde_json::from_slice::<String>(&event.bytes[r]).ok());
            if !uri.is_some_and(|u| filter.schema.as_ref().expect("checked").matches(&u)) {
                continue;
            }
        }
        match (&event.position, with_position) {
            (Some(p), true) => {
                line.clear();
                position::write_with(&mut line, p, &event.bytes);
                out.write_line(&line)?;
            }
            _ => out.write_line(&event.bytes)?,
        }
        written += 1;
    }
    out.flush()?;
    Ok(written)
}

fn period_may_match(layout: &Layout, label: Label, filter: &Filter) -> bool {
    if filter.since.is_none() && filter.until.is_none() {
        return true;
    }
    // A period's instants, from its label (some slack for the zone).
    let date = jiff::civil::date(label.year, label.month, label.day);
    let start = match layout
        .tz
        .to_ambiguous_zoned(date.to_datetime(jiff::civil::time(label.hour.max(0), 0, 0, 0)))
        .earlier()
    {
        Ok(z) => z.timestamp().as_millisecond(),
        Err(_) => return true,
    };
    let Ok(period) = layout.period_of(start) else {
        return true;
    };
    !(filter.since.is_some_and(|s| period.end_ms <= s)
        || filter.until.is_some_and(|u| period.start_ms >= u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria() {
        let c = Criterion::parse("iglu:com.nile/shopper_*/jsonschema/1-*-*").unwrap();
        assert!(c.matches("iglu:com.nile/shopper_viewed_product/jsonschema/1-0-0"));
        assert!(!c.matches("iglu:com.nile/order/jsonschema/1-0-0"));
        assert!(!c.matches("iglu:com.nile/shopper_x/jsonschema/2-0-0"));
        assert!(c.matches_dir(Path::new("com.nile/shopper_x/jsonschema-1")));
        assert!(!c.matches_dir(Path::new("com.nile/shopper_x/jsonschema-2")));
        let short = Criterion::parse("com.plum/health_check").unwrap();
        assert!(short.matches("iglu:com.plum/health_check/avro/1-0-0"));
        assert!(short.dir_level());
        let exact = Criterion::parse("iglu:com.plum/health_check/jsonschema/1-0-1").unwrap();
        assert!(!exact.dir_level());
        assert!(!exact.matches("iglu:com.plum/health_check/jsonschema/1-0-0"));
        assert!(Criterion::parse("nothing").is_err());
        assert!(glob("a*b*c", "axxbyyc") && !glob("a*b", "ac") && glob("*", ""));
    }
}
