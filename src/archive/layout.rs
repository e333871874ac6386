//! Where an event goes in an archive: its schema's directory, its period's
//! Hive-style directory (`dt=YYYY-MM-DD/hr=HH` in UTC or a named zone) and
//! the file name that says which source range the file holds.
//!
//! ```text
//! DIR/_unilog/archive.json                      marks DIR as an archive; its layout
//! DIR/VENDOR/NAME/FORMAT-MODEL/dt=YYYY-MM-DD/hr=HH/LOG+P-FIRST-LAST[.VERSION].EXT
//! DIR/VENDOR/NAME/FORMAT-MODEL/dt=YYYY-MM-DD/hr=HH/nopos-RUN-SEQ[.VERSION].EXT
//! ```
//!
//! `LOG` is the source log's id with every byte outside `[A-Za-z0-9._-]`
//! written `%XX` (so a Kafka URL cannot add a directory or a `+`), `P` the
//! source partition, `FIRST` and `LAST` the first and last source offsets of
//! the segment the file belongs to, zero-padded to 20 digits so names sort
//! by offset. Two source logs never share a name because the log id is in
//! it; two ranges never share a name because both ends are. `VERSION` (such
//! as `1-0-2`) is there only for Avro files typed by the event's own schema,
//! since one container holds one writer schema.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::event::IgluUri;
use crate::path::FieldPath;

/// The directory inside an archive that holds its own bookkeeping; batch
/// engines skip names that begin with `_`.
pub const META_DIR: &str = "_unilog";
/// The file that marks a directory as an archive and records its layout.
pub const CONFIG_FILE: &str = "archive.json";
/// Where segment manifests (the commit records) live, under [`META_DIR`].
pub const SEGMENTS_DIR: &str = "segments";
/// The marker `--finalize-after` writes in a period directory.
pub const SUCCESS: &str = "_SUCCESS";
/// The longest escaped log id that still leaves room in a 255-byte name.
const MAX_LOG_NAME: usize = 160;

/// How wide offsets are in file names: every u64 fits, and names sort.
const OFFSET_DIGITS: usize = 20;

/// The file formats an archive writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum Format {
    /// Avro object container files.
    #[value(name = "avro")]
    #[serde(rename = "avro")]
    Avro,
    /// Newline-delimited JSON, compressed with zstd.
    #[value(name = "ndjson.zst")]
    #[serde(rename = "ndjson.zst")]
    NdjsonZst,
    /// Newline-delimited JSON, compressed with gzip.
    #[value(name = "ndjson.gz")]
    #[serde(rename = "ndjson.gz")]
    NdjsonGz,
}

impl Format {
    /// The file name extension, without the leading dot.
    pub fn ext(self) -> &'static str {
        match self {
            Format::Avro => "avro",
            Format::NdjsonZst => "ndjson.zst",
            Format::NdjsonGz => "ndjson.gz",
        }
    }

    /// The format a file name's extension names.
    pub fn from_name(name: &str) -> Option<Format> {
        [Format::Avro, Format::NdjsonZst, Format::NdjsonGz]
            .into_iter()
            .find(|f| name.ends_with(&format!(".{}", f.ext())))
    }
}

/// How long a period is: one directory per hour or per day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodLength {
    /// `dt=YYYY-MM-DD/hr=HH`.
    Hour,
    /// `dt=YYYY-MM-DD`.
    Day,
}

/// Which time places an event in a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeSource {
    /// The source log's append time, from the position member.
    Append,
    /// A field of the event (RFC 3339 text, or a number of ms since the epoch).
    Field(FieldPath),
}

/// The part of an archive that must never change once events are in it:
/// the same event must always land in the same directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Which time places events.
    pub time: TimeSource,
    /// The zone periods are local to.
    pub tz: TimeZone,
    /// The zone's name as given (`UTC` by default).
    pub tz_name: String,
    /// Hours or days.
    pub period: PeriodLength,
}

/// `archive.json`: the layout, and which tool version made the archive.
#[derive(Debug, Serialize, Deserialize)]
struct Config {
    unilog_archive: u32,
    time: String,
    tz: String,
    period: PeriodLength,
    created_by: String,
}

impl Layout {
    /// A layout from the command line's values.
    pub fn new(time: Option<&FieldPath>, tz: Option<&str>, period: PeriodLength) -> Result<Self> {
        let tz_name = tz.unwrap_or("UTC").to_string();
        let zone = if tz_name == "UTC" {
            TimeZone::UTC
        } else {
            TimeZone::get(&tz_name).with_context(|| {
                format!("unknown time zone {tz_name:?}; name one like Europe/Berlin (the system's tz database)")
            })?
        };
        Ok(Layout {
            time: time.map_or(TimeSource::Append, |p| TimeSource::Field(p.clone())),
            tz: zone,
            tz_name,
            period,
        })
    }

    fn time_text(&self) -> String {
        match &self.time {
            TimeSource::Append => "append".into(),
            TimeSource::Field(p) => p.to_string(),
        }
    }

    /// Reads the layout an archive was made with.
    pub fn load(root: &Path) -> Result<Option<Layout>> {
        let path = root.join(META_DIR).join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let config: Config = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an archive configuration", path.display()))?;
        if config.unilog_archive != 1 {
            bail!(
                "{} is an archive of version {}; this archive knows version 1",
                path.display(),
                config.unilog_archive
            );
        }
        let time = match config.time.as_str() {
            "append" => None,
            p => Some(FieldPath::parse(p)?),
        };
        Layout::new(time.as_ref(), Some(&config.tz), config.period).map(Some)
    }

    /// Writes `archive.json` (atomically) into a new archive.
    pub fn create(&self, root: &Path) -> Result<()> {
        let meta = root.join(META_DIR);
        std::fs::create_dir_all(&meta)
            .with_context(|| format!("cannot create archive directory {}", meta.display()))?;
        let config = Config {
            unilog_archive: 1,
            time: self.time_text(),
            tz: self.tz_name.clone(),
            period: self.period,
            created_by: format!("unilog archive {}", crate::event::VERSION),
        };
        let mut body = serde_json::to_vec_pretty(&config).expect("config serializes");
        body.push(b'\n');
        crate::store::write_atomically(&meta.join(CONFIG_FILE), &body)?;
        crate::store::sync_dir(root)
    }

    /// An error unless `other` (from the command line) places events as
    /// this layout (from the archive) does.
    pub fn check_same(&self, other: &Layout, root: &Path) -> Result<()> {
        let mine = (self.time_text(), &self.tz_name, self.period);
        let theirs = (other.time_text(), &other.tz_name, other.period);
        if mine != theirs {
            bail!(
                "the archive {} was made with --time {} --tz {} --period {}; this run says --time {} --tz {} --period {}. \
                 The same event must always land in the same place: use the archive's settings, or a new directory",
                root.display(),
                mine.0,
                mine.1,
                period_name(mine.2),
                theirs.0,
                theirs.1,
                period_name(theirs.2)
            );
        }
        Ok(())
    }

    /// The period `ms` falls in.
    pub fn period_of(&self, ms: i64) -> Result<Period> {
        let ts = Timestamp::from_millisecond(ms)
            .map_err(|_| anyhow::anyhow!("{ms} ms is outside the times an archive can place"))?;
        let label_of: fn(&jiff::Zoned) -> Label = match self.period {
            PeriodLength::Hour => Label::hour,
            PeriodLength::Day => Label::day,
        };
        let zoned = ts.to_zoned(self.tz.clone());
        let label = label_of(&zoned);
        let is_label = |t: Timestamp| label_of(&t.to_zoned(self.tz.clone())) == label;
        // Zone offsets change on quarter hours: walk in those steps from the
        // label's civil start, which a clock change may move or remove.
        let step = jiff::SignedDuration::from_mins(15);
        let civil = match self.period {
            PeriodLength::Hour => zoned
                .datetime()
                .with()
                .minute(0)
                .second(0)
                .subsec_nanosecond(0)
                .build()?,
            PeriodLength::Day => zoned.date().to_datetime(jiff::civil::Time::midnight()),
        };
        let mut start = self
            .tz
            .to_ambiguous_zoned(civil)
            .earlier()
            .map(|z| z.timestamp())
            .unwrap_or(ts)
            .min(ts);
        while !is_label(start) && start < ts {
            start = start.checked_add(step)?.min(ts);
        }
        // The end: the first instant whose label differs (two hours for a
        // repeated hour in autumn, 23 or 25 hours for a day across a change).
        let mut end = start.checked_add(step)?;
        while is_label(end) {
            end = end.checked_add(step)?;
        }
        Ok(Period {
            start_ms: start.as_millisecond(),
            end_ms: end.as_millisecond(),
            label,
        })
    }
}

fn period_name(p: PeriodLength) -> &'static str {
    match p {
        PeriodLength::Hour => "hour",
        PeriodLength::Day => "day",
    }
}

/// A period's name in local time: a date and, for hours, an hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    /// Year.
    pub year: i16,
    /// Month, 1–12.
    pub month: i8,
    /// Day of the month.
    pub day: i8,
    /// Hour 0–23, or -1 for day periods.
    pub hour: i8,
}

impl Label {
    fn hour(z: &jiff::Zoned) -> Label {
        Label {
            year: z.year(),
            month: z.month(),
            day: z.day(),
            hour: z.hour(),
        }
    }

    fn day(z: &jiff::Zoned) -> Label {
        Label {
            hour: -1,
            ..Label::hour(z)
        }
    }

    /// `dt=YYYY-MM-DD/hr=HH` or `dt=YYYY-MM-DD`.
    pub fn dir(&self) -> PathBuf {
        let mut s = String::with_capacity(20);
        let _ = write!(s, "dt={:04}-{:02}-{:02}", self.year, self.month, self.day);
        if self.hour >= 0 {
            let _ = write!(s, "/hr={:02}", self.hour);
        }
        PathBuf::from(s)
    }

    /// Reads a label back from a period directory's relative path.
    pub fn parse_dir(rel: &Path) -> Option<Label> {
        let mut parts = rel.iter().map(|p| p.to_str());
        let dt = parts.next()??.strip_prefix("dt=")?;
        let date: jiff::civil::Date = dt.parse().ok()?;
        let hour = match parts.next() {
            None => -1,
            Some(h) => h?.strip_prefix("hr=")?.parse::<i8>().ok()?,
        };
        if parts.next().is_some() || hour > 23 {
            return None;
        }
        Some(Label {
            year: date.year(),
            month: date.month(),
            day: date.day(),
            hour,
        })
    }
}

/// One period: its label and the instants it covers, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// The first instant with this label, ms since the epoch.
    pub start_ms: i64,
    /// The first instant after it with another label.
    pub end_ms: i64,
    /// Its local name.
    pub label: Label,
}

impl Period {
    /// True when `ms` is in this period.
    #[inline]
    pub fn contains(&self, ms: i64) -> bool {
        self.start_ms <= ms && ms < self.end_ms
    }
}

/// `VENDOR/NAME/FORMAT-MODEL`: one table per schema model, since every
/// version within a model reads old data.
pub fn schema_dir(uri: &IgluUri) -> PathBuf {
    // IgluUri's grammar admits only path-safe characters.
    PathBuf::from(format!(
        "{}/{}/{}-{}",
        uri.vendor, uri.name, uri.format, uri.version.model
    ))
}

/// Writes a log id so it is one safe path component with no `+`.
pub fn escape_log(log: &str) -> Result<String> {
    if log.is_empty() {
        bail!("the source log id is empty");
    }
    let mut out = String::with_capacity(log.len());
    for (i, b) in log.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'-' || (i > 0 && (b == b'.' || b == b'_'));
        if plain {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    if out.len() > MAX_LOG_NAME {
        bail!(
            "the source log id {log:?} is too long to name archive files ({} bytes escaped, at most {MAX_LOG_NAME})",
            out.len()
        );
    }
    Ok(out)
}

/// Reverses [`escape_log`].
pub fn unescape_log(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Which source range a file holds, as its name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKey {
    /// Events with positions: a source partition and a segment's range.
    Positioned {
        /// The source log id.
        log: String,
        /// The source partition.
        partition: u32,
        /// The segment's first offset.
        first: u64,
        /// The segment's last offset.
        last: u64,
    },
    /// Events without positions (at-least-once): a run and a sequence number.
    Unpositioned {
        /// The run's id.
        run: String,
        /// The segment's number within the run.
        seq: u64,
    },
}

/// A parsed archive file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    /// Which range.
    pub key: FileKey,
    /// The event schema's full version, for typed Avro files.
    pub version: Option<String>,
    /// The format, from the extension.
    pub format: Format,
}

impl FileName {
    /// The name, as written in the archive.
    pub fn render(&self) -> Result<String> {
        let mut s = match &self.key {
            FileKey::Positioned {
                log,
                partition,
                first,
                last,
            } => format!(
                "{}+{partition}-{first:0w$}-{last:0w$}",
                escape_log(log)?,
                w = OFFSET_DIGITS
            ),
            FileKey::Unpositioned { run, seq } => format!("nopos-{run}-{seq:06}"),
        };
        if let Some(v) = &self.version {
            s.push('.');
            s.push_str(v);
        }
        s.push('.');
        s.push_str(self.format.ext());
        Ok(s)
    }

    /// Parses a name [`FileName::render`] wrote; `None` for anything else
    /// (temporary files, markers, foreign files).
    pub fn parse(name: &str) -> Option<FileName> {
        let format = Format::from_name(name)?;
        let stem = &name[..name.len() - format.ext().len() - 1];
        // An optional `.MODEL-REVISION-ADDITION` before the extension.
        let (stem, version) = match stem.rsplit_once('.') {
            Some((s, v)) if v.parse::<crate::event::SchemaVer>().is_ok() => {
                (s, Some(v.to_string()))
            }
            _ => (stem, None),
        };
        let key = if let Some(rest) = stem.strip_prefix("nopos-") {
            let (run, seq) = rest.rsplit_once('-')?;
            if run.is_empty() || !run.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return None;
            }
            FileKey::Unpositioned {
                run: run.to_string(),
                seq: digits(seq)?,
            }
        } else {
            let (log, range) = stem.rsplit_once('+')?;
            let mut parts = range.split('-');
            let partition = digits(parts.next()?)?;
            let first = digits(parts.next()?)?;
            let last = digits(parts.next()?)?;
            if parts.next().is_some() || first > last {
                return None;
            }
            FileKey::Positioned {
                log: unescape_log(log)?,
                partition: u32::try_from(partition).ok()?,
                first,
                last,
            }
        };
        Some(FileName {
            key,
            version,
            format,
        })
    }
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The temporary name a file is written under before it is finished:
/// hidden (a leading dot) so that no reader lists it.
pub fn temp_name(final_name: &str) -> String {
    format!(".{final_name}.tmp")
}

/// True for a name [`temp_name`] makes.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: &str) -> i64 {
        crate::time::parse_rfc3339_ms(t).unwrap()
    }

    #[test]
    fn utc_hours() {
        let l = Layout::new(None, None, PeriodLength::Hour).unwrap();
        let p = l.period_of(ms("2026-11-27T09:59:59.999Z")).unwrap();
        assert_eq!(p.label.dir(), PathBuf::from("dt=2026-11-27/hr=09"));
        assert_eq!(p.start_ms, ms("2026-11-27T09:00:00Z"));
        assert_eq!(p.end_ms, ms("2026-11-27T10:00:00Z"));
        let d = Layout::new(None, None, PeriodLength::Day).unwrap();
        let p = d.period_of(ms("2026-11-27T23:59:59Z")).unwrap();
        assert_eq!(p.label.dir(), PathBuf::from("dt=2026-11-27"));
        assert_eq!(p.end_ms - p.start_ms, 86_400_000);
    }

    #[test]
    fn local_hours_across_daylight_saving_changes() {
        let l = Layout::new(None, Some("America/New_York"), PeriodLength::Hour).unwrap();
        // Autumn: 01:00-02:00 happens twice (EDT, then EST); one label, two hours.
        let first = l.period_of(ms("2026-11-01T05:30:00Z")).unwrap(); // 01:30 EDT
        let second = l.period_of(ms("2026-11-01T06:30:00Z")).unwrap(); // 01:30 EST
        assert_eq!(first, second);
        assert_eq!(first.label.dir(), PathBuf::from("dt=2026-11-01/hr=01"));
        assert_eq!(first.start_ms, ms("2026-11-01T05:00:00Z"));
        assert_eq!(first.end_ms, ms("2026-11-01T07:00:00Z"));
        // Spring: 02:00 never happens; 01:59 EST is followed by 03:00 EDT.
        let before = l.period_of(ms("2026-03-08T06:59:00Z")).unwrap();
        let after = l.period_of(ms("2026-03-08T07:00:00Z")).unwrap();
        assert_eq!(before.label.dir(), PathBuf::from("dt=2026-03-08/hr=01"));
        assert_eq!(after.label.dir(), PathBuf::from("dt=2026-03-08/hr=03"));
        assert_eq!(before.end_ms, after.start_ms);
        // Days are 25 and 23 hours long on those dates.
        let d = Layout::new(None, Some("America/New_York"), PeriodLength::Day).unwrap();
        let long = d.period_of(ms("2026-11-01T12:00:00Z")).unwrap();
        assert_eq!(long.end_ms - long.start_ms, 25 * 3_600_000);
        let short = d.period_of(ms("2026-03-08T12:00:00Z")).unwrap();
        assert_eq!(short.end_ms - short.start_ms, 23 * 3_600_000);
        assert_eq!(short.label.dir(), PathBuf::from("dt=2026-03-08"));
    }

    #[test]
    fn labels_parse_back() {
        for dir in ["dt=2026-11-27/hr=09", "dt=2026-11-27"] {
            assert_eq!(
                Label::parse_dir(Path::new(dir)).unwrap().dir(),
                PathBuf::from(dir)
            );
        }
        assert!(Label::parse_dir(Path::new("dt=2026-13-01")).is_none());
        assert!(Label::parse_dir(Path::new("dt=2026-11-27/hr=24")).is_none());
    }

    #[test]
    fn names_round_trip_and_keep_logs_apart() {
        let name = FileName {
            key: FileKey::Positioned {
                log: "kafka://h:9092/raw+x".into(),
                partition: 3,
                first: 100,
                last: 199,
            },
            version: None,
            format: Format::NdjsonZst,
        };
        let text = name.render().unwrap();
        assert_eq!(
            text,
            "kafka%3A%2F%2Fh%3A9092%2Fraw%2Bx+3-00000000000000000100-00000000000000000199.ndjson.zst"
        );
        assert_eq!(FileName::parse(&text).unwrap(), name);
        let typed = FileName {
            key: FileKey::Positioned {
                log: "0f8c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b".into(),
                partition: 0,
                first: 0,
                last: 9,
            },
            version: Some("1-0-2".into()),
            format: Format::Avro,
        };
        let text = typed.render().unwrap();
        assert!(text.ends_with("-00000000000000000009.1-0-2.avro"), "{text}");
        assert_eq!(FileName::parse(&text).unwrap(), typed);
        let nopos = FileName {
            key: FileKey::Unpositioned {
                run: "a1b2".into(),
                seq: 7,
            },
            version: None,
            format: Format::NdjsonGz,
        };
        assert_eq!(nopos.render().unwrap(), "nopos-a1b2-000007.ndjson.gz");
        assert_eq!(
            FileName::parse("nopos-a1b2-000007.ndjson.gz").unwrap(),
            nopos
        );
        for foreign in [
            "_SUCCESS",
            ".x+0-1-2.avro.tmp",
            "x+0-5-2.avro",
            "x+0-1.avro",
            "x+0-1-2.parquet",
            "notes.avro",
        ] {
            assert!(FileName::parse(foreign).is_none(), "{foreign}");
        }
        assert!(escape_log("").is_err());
        assert!(escape_log(&"x".repeat(500)).is_err());
        assert_eq!(escape_log(".hidden").unwrap(), "%2Ehidden");
    }
}
