//! What a log holds, in one view (as `kcat -L` gives for a Kafka topic):
//! its settings and retention, each partition's offsets, size, segments and
//! append-time range, events by schema (and, when asked, the event-time
//! range), and every consumer group with its lag. Built only on the store's
//! public interface; `log-tail LOG --inspect` prints it for people, or as
//! one JSON object with `--json`, and `--positions --json` prints the
//! positions part alone.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cli::Progress;
use crate::path::FieldPath;
use crate::store::group;
use crate::store::{segment, Log, PartitionReader, StartAt};
use crate::time;

/// Everything `--inspect` reports about one log.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The log's directory, as given.
    pub log: String,
    /// The on-disk format version.
    pub format_version: u32,
    /// How many partitions the log has.
    pub partitions: u32,
    /// Segments roll past this many bytes.
    pub segment_bytes: u64,
    /// Segments roll when their first record is this old (ms).
    pub segment_age_ms: i64,
    /// Retention settings; `null` when not set.
    pub retention: Retention,
    /// Sums over the partitions shown.
    pub total: Totals,
    /// One entry per partition shown.
    pub partition: Vec<PartitionReport>,
    /// Events per schema URI (`null` for events with no `schema` string).
    pub schemas: Vec<SchemaCount>,
    /// Each consumer group's positions and lag.
    pub groups: Vec<GroupReport>,
}

/// A log's retention settings.
#[derive(Debug, Serialize)]
pub struct Retention {
    /// Segments whose records are all older than this are deleted (ms).
    pub age_ms: Option<i64>,
    /// Oldest segments are deleted while a partition is larger than this.
    pub bytes: Option<u64>,
}

/// What some part of a log holds: the whole log (`total`) or a partition.
#[derive(Debug, Default, Serialize)]
pub struct Totals {
    /// Events held.
    pub events: u64,
    /// Bytes of segment files.
    pub bytes: u64,
    /// Segment files.
    pub segments: usize,
    /// Append-time range of the events held.
    pub append_time: Option<TimeRange>,
    /// Event-time range, with `--event-time PATH`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_time: Option<TimeRange>,
}

/// One partition's offsets, size and times.
#[derive(Debug, Serialize)]
pub struct PartitionReport {
    /// The partition number.
    pub partition: u32,
    /// The oldest offset still held.
    pub start: u64,
    /// The next offset to be written.
    pub end: u64,
    /// What it holds (`events` is `end - start`).
    #[serde(flatten)]
    pub holds: Totals,
}

/// The earliest and latest of some times, in RFC 3339 and ms.
#[derive(Debug, Clone, Serialize)]
pub struct TimeRange {
    /// The earliest time.
    pub first: String,
    /// The latest time.
    pub last: String,
    /// The earliest time, ms since the epoch.
    pub first_ms: i64,
    /// The latest time, ms since the epoch.
    pub last_ms: i64,
}

/// How many events name one schema.
#[derive(Debug, Serialize)]
pub struct SchemaCount {
    /// The Iglu URI, or `null` for events without a `schema` string.
    pub schema: Option<String>,
    /// Events naming it.
    pub events: u64,
}

/// A consumer group's committed positions and lag.
#[derive(Debug, Serialize)]
pub struct GroupReport {
    /// The group's name.
    pub group: String,
    /// When it last committed (RFC 3339), if recorded.
    pub committed_at: Option<String>,
    /// Events not yet read, summed over the partitions shown.
    pub lag: u64,
    /// Per partition.
    pub partitions: Vec<GroupPosition>,
}

/// A group's position in one partition.
#[derive(Debug, Serialize)]
pub struct GroupPosition {
    /// The partition number.
    pub partition: u32,
    /// The next offset the group reads; `null` when it never committed.
    pub position: Option<u64>,
    /// The partition's end.
    pub end: u64,
    /// Events between the position (or the start) and the end; `null`
    /// when the position is past the end (the log lost events).
    pub lag: Option<u64>,
}

/// A min/max accumulator for times.
#[derive(Debug, Default, Clone, Copy)]
struct Span(Option<(i64, i64)>);

impl Span {
    fn add(&mut self, t: i64) {
        self.0 = Some(match self.0 {
            None => (t, t),
            Some((lo, hi)) => (lo.min(t), hi.max(t)),
        });
    }
    fn merge(&mut self, other: Span) {
        if let Some((lo, hi)) = other.0 {
            self.add(lo);
            self.add(hi);
        }
    }
    fn range(self) -> Option<TimeRange> {
        self.0.map(|(lo, hi)| TimeRange {
            first: time::format_rfc3339_ms(lo),
            last: time::format_rfc3339_ms(hi),
            first_ms: lo,
            last_ms: hi,
        })
    }
}

/// Only the top-level `schema` member is wanted; serde skips the rest
/// without building it.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    schema: Option<std::borrow::Cow<'a, str>>,
}

/// The time at `path` in an event: RFC 3339 text, or a number of ms (or of
/// seconds, below 10^11, as `window --time-format auto` reads it).
fn event_time(event: &[u8], path: &FieldPath) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_slice(event).ok()?;
    match path.get(&value)? {
        serde_json::Value::String(s) => time::parse_rfc3339_ms(s).ok(),
        serde_json::Value::Number(n) => {
            let v = n.as_f64()?;
            Some(if v.abs() < 1e11 {
                (v * 1000.0) as i64
            } else {
                v as i64
            })
        }
        _ => None,
    }
}

/// Reads every record of `partitions` (checking each, as any reader does)
/// and builds the report. `event_time_path` adds the event-time range.
pub fn inspect(
    log: &Log,
    partitions: &[u32],
    event_time_path: Option<&FieldPath>,
) -> Result<Report> {
    let config = log.config();
    let mut schemas: BTreeMap<Option<String>, u64> = BTreeMap::new();
    let mut total = Totals::default();
    let (mut all_append, mut all_event) = (Span::default(), Span::default());
    let mut reports = Vec::with_capacity(partitions.len());
    let mut progress = Progress::new("records");
    let (mut seen, mut seen_bytes) = (0u64, 0u64);
    for &p in partitions {
        let dir = log.partition_dir(p);
        let bases = segment::list(&dir)?;
        let mut bytes = 0;
        for &base in &bases {
            let path = segment::path(&dir, base, segment::LOG_EXT);
            // A segment deleted by retention since the listing holds nothing.
            bytes += std::fs::symlink_metadata(&path)
                .map(|m| m.len())
                .unwrap_or(0);
        }
        let (start, end) = log.bounds(p)?;
        let mut reader = PartitionReader::open(log, p, StartAt::Beginning)?;
        let (mut append, mut event) = (Span::default(), Span::default());
        loop {
            let step = reader.read(usize::MAX, &mut |rec| {
                append.add(rec.time_ms);
                let schema = serde_json::from_slice::<Envelope>(rec.event)
                    .ok()
                    .and_then(|e| e.schema)
                    .map(|s| s.into_owned());
                *schemas.entry(schema).or_insert(0) += 1;
                if let Some(path) = event_time_path {
                    if let Some(t) = event_time(rec.event, path) {
                        event.add(t);
                    }
                }
                seen += 1;
                seen_bytes += rec.event.len() as u64;
                progress.update(seen, seen_bytes);
                Ok(())
            })?;
            if step.at_end {
                break;
            }
        }
        all_append.merge(append);
        all_event.merge(event);
        total.events += end - start;
        total.bytes += bytes;
        total.segments += bases.len();
        reports.push(PartitionReport {
            partition: p,
            start,
            end,
            holds: Totals {
                events: end - start,
                bytes,
                segments: bases.len(),
                append_time: append.range(),
                event_time: event_time_path.and_then(|_| event.range()),
            },
        });
    }
    progress.finish();
    total.append_time = all_append.range();
    total.event_time = event_time_path.and_then(|_| all_event.range());
    let mut schemas: Vec<SchemaCount> = schemas
        .into_iter()
        .map(|(schema, events)| SchemaCount { schema, events })
        .collect();
    schemas.sort_by(|a, b| {
        b.events
            .cmp(&a.events)
            .then_with(|| a.schema.cmp(&b.schema))
    });
    let mut groups = Vec::new();
    for name in group::list(log)? {
        groups.push(group_report(log, partitions, &name)?);
    }
    Ok(Report {
        log: log.dir().display().to_string(),
        format_version: config.version,
        partitions: log.partitions(),
        segment_bytes: config.segment_bytes,
        segment_age_ms: config.segment_ms,
        retention: Retention {
            age_ms: config.retention_ms,
            bytes: config.retention_bytes,
        },
        total,
        partition: reports,
        schemas,
        groups,
    })
}

/// One group's positions and lag over `partitions`.
pub fn group_report(log: &Log, partitions: &[u32], name: &str) -> Result<GroupReport> {
    let committed = group::load(log, name)?;
    let mut lag = 0;
    let mut positions = Vec::with_capacity(partitions.len());
    for &p in partitions {
        let (start, end) = log.bounds(p)?;
        let position = committed.positions.get(&p).copied();
        let behind = match position {
            Some(o) if o > end => None,
            other => Some(end - other.unwrap_or(start).clamp(start, end)),
        };
        lag += behind.unwrap_or(0);
        positions.push(GroupPosition {
            partition: p,
            position,
            end,
            lag: behind,
        });
    }
    Ok(GroupReport {
        group: name.to_string(),
        committed_at: committed.committed_at,
        lag,
        partitions: positions,
    })
}

/// `--positions --json`: one JSON object with each partition's start and
/// end and, with a group, its positions and lag.
pub fn positions_json(
    log: &Log,
    partitions: &[u32],
    group: Option<&str>,
) -> Result<serde_json::Value> {
    let mut list = Vec::with_capacity(partitions.len());
    for &p in partitions {
        let (start, end) = log.bounds(p)?;
        list.push(
            serde_json::json!({"partition": p, "start": start, "end": end, "events": end - start}),
        );
    }
    let mut value = serde_json::json!({"log": log.dir().display().to_string(), "partitions": list});
    if let Some(name) = group {
        value["group"] = serde_json::to_value(group_report(log, partitions, name)?)?;
    }
    Ok(value)
}

/// `log-tail --inspect` (and `--positions --json`): writes the report to
/// the output, for people or, with `json`, as one JSON object.
pub fn print(
    log: &Log,
    partitions: &[u32],
    event_time_path: Option<&FieldPath>,
    positions_only: bool,
    json: bool,
    group: Option<&str>,
    output: &crate::cli::OutputArgs,
) -> Result<crate::cli::Outcome> {
    let mut out = output.open()?;
    let mut text = Vec::new();
    if positions_only {
        serde_json::to_writer(&mut text, &positions_json(log, partitions, group)?)?;
        text.push(b'\n');
    } else {
        let report = inspect(log, partitions, event_time_path)?;
        if json {
            serde_json::to_writer(&mut text, &report)?;
            text.push(b'\n');
        } else {
            write_human(&report, &mut text)?;
        }
    }
    out.write_lines(&text).context("cannot write output")?;
    out.flush().context("cannot write output")?;
    Ok(crate::cli::Outcome::Ok)
}

/// Writes the report for a person: a summary, then tables.
pub fn write_human(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let t = &report.total;
    writeln!(
        out,
        "log {}: format {}, {} partition{}, {} events, {} in {} segment{}",
        report.log,
        report.format_version,
        report.partitions,
        plural(u64::from(report.partitions)),
        t.events,
        human_bytes(t.bytes),
        t.segments,
        plural(t.segments as u64)
    )?;
    writeln!(
        out,
        "segments roll at {} or after {}; retention: {}, {}",
        human_bytes(report.segment_bytes),
        human_duration(report.segment_age_ms),
        report
            .retention
            .age_ms
            .map_or("no age limit".to_string(), |ms| format!(
                "{} by age",
                human_duration(ms)
            )),
        report
            .retention
            .bytes
            .map_or("no size limit".to_string(), |b| format!(
                "{} per partition",
                human_bytes(b)
            ))
    )?;
    writeln!(out, "appended: {}", range_text(&t.append_time))?;
    if let Some(range) = &t.event_time {
        writeln!(out, "event time: {} to {}", range.first, range.last)?;
    }
    writeln!(out)?;
    let mut rows = vec![vec![
        "partition".to_string(),
        "start".into(),
        "end".into(),
        "events".into(),
        "size".into(),
        "segments".into(),
        "first appended".into(),
        "last appended".into(),
    ]];
    for p in &report.partition {
        let (first, last) = p
            .holds
            .append_time
            .as_ref()
            .map_or(("-".to_string(), "-".to_string()), |r| {
                (r.first.clone(), r.last.clone())
            });
        rows.push(vec![
            p.partition.to_string(),
            p.start.to_string(),
            p.end.to_string(),
            p.holds.events.to_string(),
            human_bytes(p.holds.bytes),
            p.holds.segments.to_string(),
            first,
            last,
        ]);
    }
    write_table(out, &rows)?;
    writeln!(out)?;
    let mut rows = vec![vec!["events".to_string(), "schema".into()]];
    for s in &report.schemas {
        rows.push(vec![
            s.events.to_string(),
            s.schema.clone().unwrap_or_else(|| "(no schema)".into()),
        ]);
    }
    write_table(out, &rows)?;
    writeln!(out)?;
    if report.groups.is_empty() {
        writeln!(out, "no consumer groups")?;
    } else {
        let mut rows = vec![vec![
            "group".to_string(),
            "lag".into(),
            "positions (partition:offset)".into(),
            "committed".into(),
        ]];
        for g in &report.groups {
            let positions: Vec<String> = g
                .partitions
                .iter()
                .map(|p| {
                    let at = p.position.map_or("-".to_string(), |o| o.to_string());
                    let past = if p.lag.is_none() {
                        " (past the end)"
                    } else {
                        ""
                    };
                    format!("{}:{at}{past}", p.partition)
                })
                .collect();
            rows.push(vec![
                g.group.clone(),
                g.lag.to_string(),
                positions.join(" "),
                g.committed_at.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        write_table(out, &rows)?;
    }
    Ok(())
}

fn range_text(range: &Option<TimeRange>) -> String {
    range.as_ref().map_or("nothing yet".to_string(), |r| {
        format!("{} to {}", r.first, r.last)
    })
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Left-aligned columns two spaces apart; the first row is the heading.
fn write_table(out: &mut dyn Write, rows: &[Vec<String>]) -> std::io::Result<()> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[c]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Bytes in binary units, as the size flags take them (`128 MiB`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else if value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A duration as the duration flags take it (`7d`, `1h30m`, `500ms`).
pub fn human_duration(ms: i64) -> String {
    if ms % 1000 != 0 || ms == 0 {
        return format!("{ms}ms");
    }
    let mut s = ms / 1000;
    let mut text = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= size {
            text.push_str(&format!("{}{unit}", s / size));
            s %= size;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AppendOptions, Appender, LogConfig};

    #[test]
    fn units_read_as_flags_take_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(128 << 20), "128 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_duration(7 * 86_400_000), "7d");
        assert_eq!(human_duration(5_400_000), "1h30m");
        assert_eq!(human_duration(250), "250ms");
    }

    #[test]
    fn report_counts_schemas_times_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.log");
        let config = LogConfig {
            partitions: 2,
            ..LogConfig::default()
        };
        Log::open_or_create(&path, &config).unwrap();
        let mut app = Appender::open(&path, &AppendOptions::default()).unwrap();
        for (p, event) in [
            (
                0,
                r#"{"schema":"iglu:a/b/jsonschema/1-0-0","data":{"t":"2026-11-27T09:00:00Z"}}"#,
            ),
            (
                0,
                r#"{"schema":"iglu:a/b/jsonschema/1-0-0","data":{"t":"2026-11-27T10:00:00Z"}}"#,
            ),
            (1, r#"{"data":{"schema":"not top level"}}"#),
        ] {
            app.append_to(p, event.as_bytes()).unwrap();
        }
        app.commit().unwrap();
        let log = Log::open(&path).unwrap();
        group::Group::open(&log, "g")
            .unwrap()
            .commit([(0, 1)])
            .unwrap();
        let t = FieldPath::parse(".data.t").unwrap();
        let r = inspect(&log, &[0, 1], Some(&t)).unwrap();
        assert_eq!(r.total.events, 3);
        assert_eq!(r.partition[0].end, 2);
        assert_eq!(
            r.schemas[0].schema.as_deref(),
            Some("iglu:a/b/jsonschema/1-0-0")
        );
        assert_eq!(r.schemas[0].events, 2);
        assert_eq!(r.schemas[1].schema, None);
        let et = r.total.event_time.as_ref().unwrap();
        assert_eq!(et.first, "2026-11-27T09:00:00.000Z");
        assert_eq!(et.last, "2026-11-27T10:00:00.000Z");
        assert_eq!(r.groups[0].lag, 2);
        assert_eq!(r.groups[0].partitions[1].position, None);
        let mut text = Vec::new();
        write_human(&r, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("2 partitions, 3 events"), "{text}");
        assert!(text.contains("g      2    0:1 1:-"), "{text}");
    }
}
