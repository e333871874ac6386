//! The archiver: places each event, cuts segments by the roll policy,
//! writes their files and commits them, drops what the archive already
//! holds, and finalizes periods.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

use super::avro::{self, BlockCodec};
use super::blocks::{BlockWriter, Framing, Ticket};
use super::commit::{self, Finished, Manifest, ManifestFile, TempFile};
use super::layout::{self, FileKey, FileName, Format, Label, Layout, Period, TimeSource};
use super::ndjson::Compression;
use super::positions::Coverage;
use super::roll::RollPolicy;
use super::scan;
use super::typed::Typed;
use crate::event::{FailureMessage, IgluUri, Original};
use crate::io::Failures;
use crate::json::{self, TopLevel};
use crate::position::{self, Position, Source};
use crate::schema::registry::Resolver;

/// Error kinds `archive` adds to those of [`crate::event::kind`].
pub mod kind {
    /// The position member is there but is not a position.
    pub const BAD_POSITION: &str = "bad_position";
    /// No time to place the event by.
    pub const TIME_MISSING: &str = "time_missing";
    /// The time field is not a time.
    pub const TIME_INVALID: &str = "time_invalid";
    /// The event does not fit its Avro schema.
    pub const AVRO_MISMATCH: &str = "avro_mismatch";
    /// The event's Avro schema cannot be used.
    pub const BAD_SCHEMA: &str = "bad_schema";
    /// The event's period was finalized before it came.
    pub const LATE: &str = "late";
    /// A position before the segment being written (input out of order).
    pub const OUT_OF_ORDER: &str = "out_of_order";
}

/// Uncompressed bytes gathered before a block is compressed and written.
const BLOCK_BYTES: usize = 1 << 20;

/// How a run writes.
#[derive(Debug, Clone)]
pub struct Options {
    /// The archive directory.
    pub root: PathBuf,
    /// Where events go.
    pub layout: Layout,
    /// The file format.
    pub format: Format,
    /// The Avro codec.
    pub codec: BlockCodec,
    /// The NDJSON compression.
    pub compression: Compression,
    /// When segments are cut.
    pub roll: RollPolicy,
    /// Write `_SUCCESS` in a period once the watermark is this far past its end.
    pub finalize_after: Option<i64>,
}

/// What a run did, for the summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Events written into files.
    pub archived: u64,
    /// Events the archive already held, dropped.
    pub already_held: u64,
    /// Segments committed.
    pub segments: u64,
    /// Files committed.
    pub files: u64,
    /// Periods finalized.
    pub finalized: u64,
    /// Files a killed run had committed, finished now.
    pub rolled_forward: u64,
    /// Temporary files of a killed run, deleted.
    pub discarded: u64,
}

enum Body {
    Ndjson,
    Generic,
    Typed(Arc<Typed>),
}

struct OpenFile {
    /// Its directory's id in [`Archiver::dirs`]: compared per event.
    dir: usize,
    rel_dir: PathBuf,
    version: Option<String>,
    temp: TempFile,
    temp_name: String,
    body: Body,
    sync: [u8; 16],
    events: u64,
    block: Vec<u8>,
    block_events: u64,
    /// The last block handed to the writer: written before the file is.
    last_block: Ticket,
}

/// A schema seen in this run.
struct SeenSchema {
    /// Its Iglu URI.
    text: String,
    /// `VENDOR/NAME/FORMAT-MODEL`.
    dir: PathBuf,
    /// True for `iglu:…/avro/…`: typed by its own schema when the registry has it.
    avro: bool,
    /// The period directory its last event went to.
    last_dir: Option<(Label, usize)>,
}

struct Segment {
    source: Option<Source>,
    first: u64,
    last: u64,
    last_sub: u32,
    inputs: u64,
    bytes: u64,
    max_period: i64,
    /// A finished range starts here: the segment must end before it.
    limit: Option<u64>,
    seq: u64,
    files: Vec<OpenFile>,
}

/// The event being placed.
struct Placed<'a> {
    position: Option<&'a Position>,
    uri_text: &'a str,
    time_ms: i64,
    period: Period,
    line: &'a [u8],
    rest: &'a [u8],
}

/// Writes events into an archive.
pub struct Archiver {
    opts: Options,
    coverage: Coverage,
    segments: Vec<Segment>,
    run: String,
    next_seq: u64,
    failures: Failures,
    resolver: Option<Resolver>,
    typed: HashMap<String, Result<Option<Arc<Typed>>, Vec<FailureMessage>>>,
    checker: crate::schema::Checker,
    blocks: BlockWriter,
    top: TopLevel,
    /// Every schema this run has seen, parsed once: events of a few
    /// schemas interleave, so the last one alone would rarely match.
    schemas: Vec<SeenSchema>,
    schema_ids: HashMap<String, usize>,
    period_cache: Option<Period>,
    /// Every period directory this run placed events in, by id, so that
    /// placing an event compares numbers, not paths.
    dirs: Vec<PathBuf>,
    dir_ids: HashMap<PathBuf, usize>,
    /// The event without its position member, reused for every event.
    rest_buf: Vec<u8>,
    out: Vec<u8>,
    watermarks: BTreeMap<Option<Source>, i64>,
    /// Periods with files and no `_SUCCESS` yet: their directories.
    open_periods: BTreeMap<(i64, Label), HashSet<PathBuf>>,
    finalized: HashSet<PathBuf>,
    /// Stats so far.
    pub stats: Stats,
    _lock: std::fs::File,
}

impl Archiver {
    /// Opens (or creates) the archive, finishes or discards what a killed
    /// run left, and learns what it holds.
    pub fn open(opts: Options, failures: Failures, resolver: Resolver) -> Result<Archiver> {
        let root = &opts.root;
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create archive directory {}", root.display()))?;
        match Layout::load(root)? {
            Some(existing) => existing.check_same(&opts.layout, root)?,
            None => {
                // A run killed while making the archive leaves only `_unilog`.
                let nonempty = std::fs::read_dir(root)
                    .with_context(|| format!("cannot list {}", root.display()))?
                    .flatten()
                    .any(|e| e.file_name() != layout::META_DIR);
                if nonempty {
                    anyhow::bail!(
                        "{} is not empty and not an archive; name a new or empty directory",
                        root.display()
                    );
                }
                opts.layout.create(root)?;
            }
        }
        let lock = crate::store::open_lock(&root.join(layout::META_DIR).join("lock"))?;
        lock.try_lock().map_err(|_| {
            anyhow::anyhow!(
                "another archive run is writing {}; wait for it to end",
                root.display()
            )
        })?;
        let found = scan::scan(root)?;
        let recovery = commit::recover(root, &found.temps)?;
        let found = if recovery.rolled_forward > 0 {
            scan::scan(root)?
        } else {
            found
        };
        let coverage = Coverage::from_scan(&found);
        let mut open_periods: BTreeMap<(i64, Label), HashSet<PathBuf>> = BTreeMap::new();
        if opts.finalize_after.is_some() {
            for p in found.periods.iter().filter(|p| !p.success) {
                let start = period_start(&opts.layout, p.label);
                open_periods
                    .entry((start, p.label))
                    .or_default()
                    .insert(p.rel.clone());
            }
        }
        let finalized = found
            .periods
            .iter()
            .filter(|p| p.success)
            .map(|p| p.rel.clone())
            .collect();
        let blocks = BlockWriter::start(opts.codec, opts.compression)?;
        let run = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        Ok(Archiver {
            checker: crate::schema::Checker::new(resolver.clone()),
            resolver: Some(resolver),
            coverage,
            segments: Vec::new(),
            run,
            next_seq: 0,
            failures,
            typed: HashMap::new(),
            blocks,
            top: TopLevel::default(),
            schemas: Vec::new(),
            schema_ids: HashMap::new(),
            period_cache: None,
            dirs: Vec::new(),
            dir_ids: HashMap::new(),
            rest_buf: Vec::new(),
            out: Vec::new(),
            watermarks: BTreeMap::new(),
            open_periods,
            finalized,
            stats: Stats {
                rolled_forward: recovery.rolled_forward,
                discarded: recovery.discarded,
                ..Stats::default()
            },
            opts,
            _lock: lock,
        })
    }

    /// Failures routed so far.
    pub fn failed(&self) -> u64 {
        self.failures.count()
    }

    fn fail(
        &mut self,
        input: &str,
        line_no: u64,
        errors: Vec<FailureMessage>,
        line: &[u8],
    ) -> Result<()> {
        self.failures
            .route(input, line_no, errors, Original::Line(line))
    }

    /// Routes a line that cannot be an event at all.
    pub fn unfit(
        &mut self,
        input: &str,
        line_no: u64,
        message: FailureMessage,
        original: Original<'_>,
    ) -> Result<()> {
        self.failures.route(input, line_no, vec![message], original)
    }

    /// Archives one event line.
    pub fn event(&mut self, input: &str, line_no: u64, line: &[u8]) -> Result<()> {
        let found = match position::locate(line) {
            Ok(Some(found)) => found,
            Ok(None) => return self.archive_event(input, line_no, line, None, line),
            Err(m) => {
                return self.fail(
                    input,
                    line_no,
                    vec![FailureMessage::new(kind::BAD_POSITION, m)],
                    line,
                )
            }
        };
        if self.coverage.holds(&found.position) {
            self.stats.already_held += 1;
            return Ok(());
        }
        // The event without the member, in a buffer every event reuses.
        let mut rest = std::mem::take(&mut self.rest_buf);
        rest.clear();
        rest.push(b'{');
        rest.extend_from_slice(found.rest(line));
        let result = self.archive_event(input, line_no, line, Some(found.position), &rest);
        self.rest_buf = rest;
        result
    }

    /// [`Archiver::event`] once the position member is split off: `rest`
    /// is the event without it (`line` itself when it had none).
    fn archive_event(
        &mut self,
        input: &str,
        line_no: u64,
        line: &[u8],
        position: Option<Position>,
        rest_bytes: &[u8],
    ) -> Result<()> {
        if let Err(e) = self.top.scan(rest_bytes) {
            return self.fail(input, line_no, vec![crate::io::json_failure(&e)], line);
        }
        let schema_text = match self.top.get(rest_bytes, "schema").map(|r| &rest_bytes[r]) {
            Some(raw) if raw.len() >= 2 && raw[0] == b'"' && !raw.contains(&b'\\') => {
                std::str::from_utf8(&raw[1..raw.len() - 1]).unwrap_or("")
            }
            _ => {
                return self.fail(
                    input,
                    line_no,
                    vec![FailureMessage::new(
                        crate::event::kind::NOT_SELF_DESCRIBING,
                        "the event has no \"schema\" string; self-describing events look like {\"schema\":\"iglu:…\",\"data\":{…}}",
                    )],
                    line,
                )
            }
        };
        let schema = match self.schema_id(schema_text) {
            Ok(id) => id,
            Err(m) => return self.fail(input, line_no, vec![m], line),
        };
        let time_ms = match self.time_of(position.as_ref(), rest_bytes) {
            Ok(t) => t,
            Err(m) => return self.fail(input, line_no, vec![m], line),
        };
        let period = match self.period_cache {
            Some(p) if p.contains(time_ms) => p,
            _ => match self.opts.layout.period_of(time_ms) {
                Ok(p) => {
                    self.period_cache = Some(p);
                    p
                }
                Err(e) => {
                    let m = FailureMessage::new(kind::TIME_INVALID, e.to_string());
                    return self.fail(input, line_no, vec![m], line);
                }
            },
        };
        let dir = self.dir_id(schema, period.label);
        if !self.finalized.is_empty() && self.finalized.contains(&self.dirs[dir]) {
            let rel_dir = &self.dirs[dir];
            let m = FailureMessage::new(
                kind::LATE,
                format!(
                    "the event's period {} was finalized (it has _SUCCESS) before the event came",
                    rel_dir.display()
                ),
            )
            .with("time", crate::time::format_rfc3339_ms(time_ms));
            return self.fail(input, line_no, vec![m], line);
        }
        let typed = if self.opts.format == Format::Avro && self.schemas[schema].avro {
            match self.typed_for(schema_text) {
                Ok(t) => t,
                Err(errors) => return self.fail(input, line_no, errors, line),
            }
        } else {
            None
        };
        let placed = Placed {
            position: position.as_ref(),
            uri_text: schema_text,
            time_ms,
            period,
            line,
            rest: rest_bytes,
        };
        // Typed data: checked (with validate's messages) and converted.
        let typed_value = match &typed {
            Some(t) => match self.typed_value(t, schema_text, &placed) {
                Ok(v) => Some(v),
                Err(errors) => return self.fail(input, line_no, errors, line),
            },
            None => None,
        };
        let placed_ok = self.place(&placed, dir, typed, typed_value, input, line_no)?;
        if placed_ok {
            self.advance_watermark(position.as_ref(), time_ms)?;
        }
        Ok(())
    }

    /// The id of the schema `text` names, parsed the first time it comes;
    /// an error when it is not an Iglu URI.
    fn schema_id(&mut self, text: &str) -> Result<usize, FailureMessage> {
        // A handful of schemas is the usual case: comparing bytes beats hashing.
        let found = if self.schemas.len() <= 8 {
            self.schemas.iter().position(|s| s.text == text)
        } else {
            self.schema_ids.get(text).copied()
        };
        if let Some(id) = found {
            return Ok(id);
        }
        let uri = IgluUri::parse(text).map_err(|e| {
            FailureMessage::new(crate::event::kind::NOT_SELF_DESCRIBING, e.to_string())
                .with("schema", text)
        })?;
        self.schemas.push(SeenSchema {
            text: text.to_string(),
            dir: layout::schema_dir(&uri),
            avro: uri.format == "avro",
            last_dir: None,
        });
        self.schema_ids
            .insert(text.to_string(), self.schemas.len() - 1);
        Ok(self.schemas.len() - 1)
    }

    /// The id of the directory of `schema`'s events in the period `label`.
    fn dir_id(&mut self, schema: usize, label: Label) -> usize {
        if let Some((l, dir)) = self.schemas[schema].last_dir {
            if l == label {
                return dir;
            }
        }
        let rel = self.schemas[schema].dir.join(label.dir());
        let dir = match self.dir_ids.get(&rel) {
            Some(&dir) => dir,
            None => {
                self.dirs.push(rel.clone());
                self.dir_ids.insert(rel, self.dirs.len() - 1);
                self.dirs.len() - 1
            }
        };
        self.schemas[schema].last_dir = Some((label, dir));
        dir
    }

    fn time_of(&self, position: Option<&Position>, rest: &[u8]) -> Result<i64, FailureMessage> {
        match &self.opts.layout.time {
            TimeSource::Append => position.and_then(|p| p.time_ms).ok_or_else(|| {
                FailureMessage::new(
                    kind::TIME_MISSING,
                    "no append time to place the event by: read the log with log-tail --with-position, or name the event's time with --time PATH",
                )
            }),
            TimeSource::Field(path) => {
                let at = json::find(rest, self.top.object.clone(), path.segments());
                event_time(rest, at).map_err(|m| m.with("path", path.to_string()))
            }
        }
    }

    fn typed_for(&mut self, uri_text: &str) -> Result<Option<Arc<Typed>>, Vec<FailureMessage>> {
        if let Some(hit) = self.typed.get(uri_text) {
            return hit.clone();
        }
        let resolver = self.resolver.as_ref().expect("a resolver");
        let found = match IgluUri::parse(uri_text) {
            Ok(uri) => match resolver.resolve(&uri) {
                Ok(found) => Ok(Some(found)),
                Err(nf) if nf.errors.is_empty() => Ok(None),
                Err(nf) => Err(vec![FailureMessage::new(
                    crate::schema::kind::SCHEMA_NOT_FOUND,
                    format!(
                        "the registry could not be asked for {uri_text}: {}; the event is not archived untyped, so that its type does not depend on the registry being up",
                        nf.errors.join("; ")
                    ),
                )
                .with("schema", uri_text)]),
            },
            Err(e) => Err(vec![FailureMessage::new(crate::event::kind::NOT_SELF_DESCRIBING, e.to_string())]),
        };
        let result = match found {
            Ok(Some(found)) => match Typed::new(&found.text) {
                Ok(t) => Ok(Some(Arc::new(t))),
                Err(e) => Err(vec![FailureMessage::new(
                    kind::BAD_SCHEMA,
                    format!("schema {uri_text} at {} {e}", found.location),
                )
                .with("schema", uri_text)]),
            },
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        self.typed.insert(uri_text.to_string(), result.clone());
        result
    }

    fn typed_value(
        &mut self,
        typed: &Typed,
        uri_text: &str,
        placed: &Placed<'_>,
    ) -> Result<apache_avro::types::Value, Vec<FailureMessage>> {
        let mismatch = |message: String| {
            vec![FailureMessage::new(kind::AVRO_MISMATCH, message).with("schema", uri_text)]
        };
        // validate's own checker gives the reasons, with instance paths.
        if let Err(errors) = self.checker.check(placed.rest) {
            return Err(errors
                .into_iter()
                .map(|mut m| {
                    m.kind = kind::AVRO_MISMATCH.to_string();
                    m
                })
                .collect());
        }
        let data = self
            .top
            .get(placed.rest, "data")
            .map(|r| &placed.rest[r])
            .unwrap_or(b"null");
        let json: serde_json::Value =
            serde_json::from_slice(data).map_err(|e| mismatch(format!("data: {e}")))?;
        typed
            .convert(&json)
            .map_err(|e| mismatch(format!("the data does not fit its Avro schema: {e}")))
    }

    /// Puts an event into its segment's file; false when it was dropped as
    /// a duplicate of one this run already wrote.
    fn place(
        &mut self,
        e: &Placed<'_>,
        dir: usize,
        typed: Option<Arc<Typed>>,
        typed_value: Option<apache_avro::types::Value>,
        input: &str,
        line_no: u64,
    ) -> Result<bool> {
        // Found without allocating: this runs for every event.
        let index = match self
            .segments
            .iter()
            .position(|s| match (&s.source, e.position) {
                (Some(a), Some(p)) => a.partition == p.partition && a.log == p.log,
                (None, None) => true,
                _ => false,
            }) {
            Some(i) => i,
            None => {
                self.segments
                    .push(Segment::empty(e.position.map(|p| p.source())));
                self.segments.len() - 1
            }
        };
        let version = typed
            .as_ref()
            .map(|_| e.uri_text.rsplit('/').next().unwrap_or_default());
        // Order within a source partition, and the roll.
        let (first, last, last_sub, started) = {
            let seg = &self.segments[index];
            (seg.first, seg.last, seg.last_sub, seg.inputs > 0)
        };
        if let (Some(p), true) = (e.position, started) {
            if (p.offset, p.sub) <= (last, last_sub) {
                if p.offset >= first {
                    self.stats.already_held += 1;
                    return Ok(false);
                }
                let m = FailureMessage::new(
                    kind::OUT_OF_ORDER,
                    format!(
                        "offset {} of {} comes after offset {last}; the input must be in offset order per partition",
                        p.offset,
                        p.source(),
                    ),
                );
                self.fail(input, line_no, vec![m], e.line)?;
                return Ok(false);
            }
        }
        let needs_file = !self.segments[index]
            .files
            .iter()
            .any(|f| f.dir == dir && f.version.as_deref() == version);
        if self.segments[index].inputs > 0
            && self.opts.roll.should_roll(
                &self.segments[index].state(),
                e.position.map(|p| p.offset),
                e.period.start_ms,
                needs_file,
            )
        {
            self.commit_segment(index)?;
        }
        let seg_is_new = self.segments[index].inputs == 0;
        if seg_is_new {
            let seq = self.next_seq;
            self.next_seq += 1;
            let limit = e.position.and_then(|p| {
                self.coverage
                    .ranges(&p.log, p.partition)
                    .and_then(|r| r.next_start_after(p.offset))
            });
            let seg = &mut self.segments[index];
            seg.first = e.position.map_or(0, |p| p.offset);
            seg.seq = seq;
            seg.limit = limit;
            seg.max_period = e.period.start_ms;
        }
        // The file for this directory (and typed version).
        let fi = match self.segments[index]
            .files
            .iter()
            .position(|f| f.dir == dir && f.version.as_deref() == version)
        {
            Some(i) => i,
            None => {
                let version = version.map(str::to_string);
                let file = self.open_file(index, dir, version, typed.clone(), e)?;
                self.segments[index].files.push(file);
                if self.opts.finalize_after.is_some() {
                    self.open_periods
                        .entry((e.period.start_ms, e.period.label))
                        .or_default()
                        .insert(self.dirs[dir].clone());
                }
                self.segments[index].files.len() - 1
            }
        };
        let seg = &mut self.segments[index];
        let file = &mut seg.files[fi];
        match &file.body {
            Body::Ndjson => {
                file.block.extend_from_slice(e.line);
                file.block.push(b'\n');
            }
            Body::Generic => avro::put_generic(
                &mut file.block,
                e.position,
                e.time_ms,
                e.uri_text.as_bytes(),
                e.rest,
            ),
            Body::Typed(t) => {
                let value = typed_value.expect("typed events carry their value");
                avro::put_position(&mut file.block, e.position);
                avro::put_long(&mut file.block, e.time_ms);
                avro::put_bytes(&mut file.block, e.uri_text.as_bytes());
                t.encode(&value, &mut file.block)
                    .map_err(|m| anyhow::anyhow!("cannot encode a typed event: {m}"))?;
                // Stored as typed data alone when writing it back gives
                // the input's bytes.
                self.out.clear();
                self.out.extend_from_slice(b"{\"schema\":");
                json::push_str(&mut self.out, e.uri_text);
                self.out.extend_from_slice(b",\"data\":");
                let canonical = t.render(&value, &mut self.out).is_ok() && {
                    self.out.push(b'}');
                    self.out == e.rest
                };
                if canonical {
                    avro::put_long(&mut file.block, 0);
                } else {
                    avro::put_long(&mut file.block, 1);
                    avro::put_bytes(&mut file.block, e.rest);
                }
            }
        }
        file.events += 1;
        file.block_events += 1;
        seg.inputs += 1;
        seg.bytes += e.line.len() as u64 + 1;
        seg.max_period = seg.max_period.max(e.period.start_ms);
        if let Some(p) = e.position {
            seg.last = p.offset;
            seg.last_sub = p.sub;
        }
        if file.block.len() >= BLOCK_BYTES {
            hand_over_block(file, &mut self.blocks)?;
        }
        self.stats.archived += 1;
        Ok(true)
    }

    fn open_file(
        &mut self,
        index: usize,
        dir: usize,
        version: Option<String>,
        typed: Option<Arc<Typed>>,
        e: &Placed<'_>,
    ) -> Result<OpenFile> {
        let seg = &self.segments[index];
        let n = seg.files.len();
        let stem = match &seg.source {
            Some(s) => format!(
                "{}+{}-{:020}-open-{n}",
                layout::escape_log(&s.log)?,
                s.partition,
                seg.first
            ),
            None => format!("nopos-{}-{:06}-open-{n}", self.run, seg.seq),
        };
        let temp_name = layout::temp_name(&stem);
        let rel_dir = self.dirs[dir].clone();
        let mut temp = TempFile::create(&self.opts.root, &rel_dir, &stem)?;
        let sync = avro::sync_marker(&format!("{}/{stem}", rel_dir.display()));
        let body = match (self.opts.format, typed) {
            (Format::Avro, Some(t)) => {
                let h = avro::header(
                    &t.envelope_text,
                    self.opts.codec,
                    &[
                        (avro::ENVELOPE_KEY, avro::TYPED.as_bytes()),
                        ("unilog.data.schema", t.data_text.as_bytes()),
                        ("unilog.iglu", e.uri_text.as_bytes()),
                    ],
                    &sync,
                );
                temp.write_all(&h)?;
                Body::Typed(t)
            }
            (Format::Avro, None) => {
                let h = avro::header(
                    avro::GENERIC_SCHEMA,
                    self.opts.codec,
                    &[(avro::ENVELOPE_KEY, avro::GENERIC.as_bytes())],
                    &sync,
                );
                temp.write_all(&h)?;
                Body::Generic
            }
            _ => Body::Ndjson,
        };
        Ok(OpenFile {
            dir,
            rel_dir,
            version,
            temp,
            temp_name,
            body,
            sync,
            events: 0,
            block: Vec::with_capacity(BLOCK_BYTES + (64 << 10)),
            block_events: 0,
            last_block: 0,
        })
    }

    /// Finishes every file of a segment and commits them together.
    fn commit_segment(&mut self, index: usize) -> Result<()> {
        let source = self.segments[index].source.clone();
        let mut seg = std::mem::replace(&mut self.segments[index], Segment::empty(source));
        if seg.inputs == 0 {
            return Ok(());
        }
        // Failure events for inputs in this range are durable before the
        // range is claimed.
        self.failures.flush()?;
        let mut finished: Vec<Finished> = Vec::with_capacity(seg.files.len());
        let mut listed = Vec::with_capacity(seg.files.len());
        let format = self.opts.format;
        for mut file in seg.files.drain(..) {
            hand_over_block(&mut file, &mut self.blocks)?;
            self.blocks.wait_for(file.last_block)?;
            let key = match &seg.source {
                Some(s) => FileKey::Positioned {
                    log: s.log.to_string(),
                    partition: s.partition,
                    first: seg.first,
                    last: seg.last,
                },
                None => FileKey::Unpositioned {
                    run: self.run.clone(),
                    seq: seg.seq,
                },
            };
            let name = FileName {
                key,
                version: file.version.clone(),
                format,
            }
            .render()?;
            let done = file.temp.finish(&name)?;
            listed.push(ManifestFile {
                path: file.rel_dir.join(&name).to_string_lossy().into_owned(),
                tmp: file.temp_name.clone(),
                events: file.events,
                bytes: done.bytes,
            });
            finished.push(done);
        }
        let manifest = Manifest {
            log: seg.source.as_ref().map(|s| s.log.to_string()),
            partition: seg.source.as_ref().map(|s| s.partition),
            first: seg.source.as_ref().map(|_| seg.first),
            last: seg.source.as_ref().map(|_| seg.last),
            run: seg.source.is_none().then(|| self.run.clone()),
            seq: seg.source.is_none().then_some(seg.seq),
            inputs: seg.inputs,
            files: listed,
        };
        commit::commit(&self.opts.root, &manifest, &finished)?;
        if let Some(s) = &seg.source {
            self.coverage.add(s.clone(), seg.first, seg.last);
        }
        self.stats.segments += 1;
        self.stats.files += finished.len() as u64;
        Ok(())
    }

    fn advance_watermark(&mut self, position: Option<&Position>, time_ms: i64) -> Result<()> {
        let Some(after) = self.opts.finalize_after else {
            return Ok(());
        };
        let key = position.map(|p| p.source());
        let w = self.watermarks.entry(key).or_insert(i64::MIN);
        if time_ms <= *w {
            return Ok(());
        }
        *w = time_ms;
        let watermark = self.watermarks.values().copied().min().unwrap_or(i64::MIN);
        // Periods whose end plus the allowance the watermark has passed.
        let due: Vec<(i64, Label)> = self
            .open_periods
            .keys()
            .copied()
            .take_while(|&(start, label)| {
                period_end(&self.opts.layout, start, label).saturating_add(after) <= watermark
            })
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        // Their files must be committed before they are marked.
        let due_dirs: HashSet<PathBuf> = due
            .iter()
            .flat_map(|k| self.open_periods[k].iter().cloned())
            .collect();
        for i in 0..self.segments.len() {
            if self.segments[i]
                .files
                .iter()
                .any(|f| due_dirs.contains(&f.rel_dir))
            {
                self.commit_segment(i)?;
            }
        }
        for k in due {
            let dirs = self.open_periods.remove(&k).unwrap_or_default();
            for d in dirs {
                let path = self.opts.root.join(&d).join(layout::SUCCESS);
                crate::store::write_atomically(&path, b"")?;
                self.finalized.insert(d);
                self.stats.finalized += 1;
            }
        }
        Ok(())
    }

    /// Commits every open segment: the end of input, or a pause.
    pub fn finish(&mut self) -> Result<()> {
        for i in 0..self.segments.len() {
            self.commit_segment(i)?;
        }
        self.failures.flush()
    }

    /// After a fatal error: finishes any segment whose manifest made it
    /// (its files are whole) and deletes every other temporary file, so
    /// nothing half-written is left; returns what it could not clean.
    pub fn abandon(&mut self) -> Result<()> {
        for seg in self.segments.drain(..) {
            for f in seg.files {
                f.temp.discard();
            }
        }
        let found = scan::scan(&self.opts.root)?;
        commit::recover(&self.opts.root, &found.temps)?;
        Ok(())
    }
}

/// Hands the file's gathered events, if any, to the block writer.
fn hand_over_block(file: &mut OpenFile, blocks: &mut BlockWriter) -> Result<()> {
    if file.block_events == 0 {
        return Ok(());
    }
    let framing = match &file.body {
        Body::Ndjson => Framing::Ndjson,
        Body::Generic | Body::Typed(_) => Framing::Avro {
            events: file.block_events,
            sync: file.sync,
        },
    };
    file.last_block = blocks.hand_over(&file.temp, &mut file.block, framing)?;
    file.block_events = 0;
    Ok(())
}

impl Segment {
    fn empty(source: Option<Source>) -> Segment {
        Segment {
            source,
            first: 0,
            last: 0,
            last_sub: 0,
            inputs: 0,
            bytes: 0,
            max_period: i64::MIN,
            limit: None,
            seq: 0,
            files: Vec::new(),
        }
    }

    fn state(&self) -> super::roll::SegmentState {
        super::roll::SegmentState {
            inputs: self.inputs,
            bytes: self.bytes,
            last_offset: self.source.as_ref().map(|_| self.last),
            max_period_start: self.max_period,
            files: self.files.len(),
            limit: self.limit,
        }
    }
}

fn period_start(layout: &Layout, label: Label) -> i64 {
    label_start(layout, label)
        .map(|p| p.start_ms)
        .unwrap_or(i64::MIN)
}

fn period_end(layout: &Layout, start: i64, _label: Label) -> i64 {
    layout
        .period_of(start)
        .map(|p| p.end_ms)
        .unwrap_or(i64::MAX)
}

/// The period a directory label names.
fn label_start(layout: &Layout, label: Label) -> Option<Period> {
    let date = jiff::civil::date(label.year, label.month, label.day);
    let time = jiff::civil::time(label.hour.max(0), 0, 0, 0);
    let z = layout
        .tz
        .to_ambiguous_zoned(date.to_datetime(time))
        .later()
        .ok()?;
    layout.period_of(z.timestamp().as_millisecond()).ok()
}

/// An event time from the value at `at`: RFC 3339 text, or a number of ms
/// since the epoch.
pub fn event_time(line: &[u8], at: Option<std::ops::Range<usize>>) -> Result<i64, FailureMessage> {
    let missing = || {
        FailureMessage::new(
            kind::TIME_MISSING,
            "the event has no time at the --time path",
        )
    };
    let Some(at) = at else { return Err(missing()) };
    match json::scalar(line, Some(at.clone())) {
        json::Scalar::Missing => Err(missing()),
        json::Scalar::Compound(k) => Err(FailureMessage::new(
            kind::TIME_INVALID,
            format!("the time is an {k}, not an RFC 3339 time or a number of ms since the epoch"),
        )),
        json::Scalar::Text(t) => {
            if line[at.start] == b'"' {
                crate::time::parse_rfc3339_ms(&t).map_err(|e| {
                    FailureMessage::new(kind::TIME_INVALID, e.to_string()).with("time", t.as_ref())
                })
            } else {
                t.parse::<i64>().map_err(|_| {
                    FailureMessage::new(
                        kind::TIME_INVALID,
                        format!(
                            "{t} is not a time: give RFC 3339 text or whole ms since the epoch"
                        ),
                    )
                })
            }
        }
    }
}
