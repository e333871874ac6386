//! Enrichment: steps that add to each event — geo-location of an IP
//! address, rows of reference tables, jq transforms, user-agent facts, event
//! ids, anonymized addresses and the time of enrichment — applied in order.
//!
//! Each step reads the event as it stands after the steps before it. Its
//! result goes, by default, into a *derived context* beside `data`: a
//! self-describing `{"schema":"iglu:io.unilog/…","data":{…}}` appended to
//! the event's `derived_contexts` array (created when missing). With an
//! `into` path the result is written into the event instead, under
//! `PATH.<field>` (`geo`, `user_agent`, the table's name, `event_id`,
//! `enriched_at`).
//!
//! Events are not parsed into trees: one validating pass records where the
//! top-level members are, paths are found by a skipper over the validated
//! bytes and results are spliced in, so untouched bytes pass through as they
//! came. Only a jq step parses the event (once, into jaq's own values).

pub mod anonymize;
pub mod config;
pub mod enriched_at;
pub mod event_id;
pub mod geoip;
pub mod jq;
pub mod lookup;
pub mod raw;
pub mod useragent;

use std::ops::Range;
use std::path::PathBuf;

use anyhow::Result;

use crate::event::{kind, FailureMessage};
use crate::io;
use crate::json::ScanError;
use crate::path::{FieldPath, Segment};
use crate::position;

/// The top-level member derived contexts are appended to.
pub const CONTEXTS_MEMBER: &str = "derived_contexts";

/// Error kinds the steps put in failure events.
pub mod error_kind {
    /// An address that is not an IP address.
    pub const INVALID_IP: &str = "invalid_ip";
    /// The MaxMind DB could not decode the record it found.
    pub const GEOIP_LOOKUP: &str = "geoip_lookup";
    /// A lookup key that is in no row of the table (with `--required`).
    pub const LOOKUP_MISSING: &str = "lookup_missing";
    /// A lookup key, user agent or address of the wrong JSON type.
    pub const WRONG_TYPE: &str = "wrong_type";
    /// A jq expression failed on the event.
    pub const JQ_ERROR: &str = "jq_error";
    /// A jq expression gave something other than one event.
    pub const JQ_OUTPUT: &str = "jq_output";
    /// A result could not be written at the `--into` path.
    pub const INTO_PATH: &str = "into_path";
    /// The event's `derived_contexts` member is not an array.
    pub const CONTEXTS_NOT_ARRAY: &str = "derived_contexts_not_array";
}

/// The schemas of the derived contexts, under `schemas/` in the repository.
pub mod schema {
    /// Geo-location of an IP address.
    pub const GEO_LOCATION: &str = "iglu:io.unilog/geo_location/jsonschema/1-0-1";
    /// A row of a reference table.
    pub const LOOKUP: &str = "iglu:io.unilog/lookup/jsonschema/1-0-0";
    /// Browser, operating system and device from a user-agent string.
    pub const USER_AGENT: &str = "iglu:io.unilog/user_agent/jsonschema/2-0-0";
    /// An id given to the event.
    pub const EVENT_ID: &str = "iglu:io.unilog/event_id/jsonschema/1-0-0";
    /// When the event was enriched.
    pub const ENRICHED_AT: &str = "iglu:io.unilog/enriched_at/jsonschema/1-0-0";
}

/// One step's result, as a derived context (`schema`, `data`) or, with an
/// `into` path, as `value` under `PATH.field`.
pub struct Derived<'a> {
    /// The field name under the `into` path.
    pub field: &'a str,
    /// The derived context's schema URI.
    pub schema: &'a str,
    /// The derived context's data (one JSON value).
    pub data: &'a [u8],
    /// The value written under the `into` path (one JSON value).
    pub value: &'a [u8],
}

/// An event as the steps see it: its current bytes, where its top-level
/// members are, and the derived contexts added but not yet spliced in.
pub struct Event {
    buf: Vec<u8>,
    spare: Vec<u8>,
    top: raw::TopLevel,
    top_fresh: bool,
    contexts: Vec<u8>,
    into: Option<Vec<Segment>>,
}

impl Event {
    fn new(into: Option<&FieldPath>) -> Self {
        Event {
            buf: Vec::with_capacity(4096),
            spare: Vec::with_capacity(4096),
            top: raw::TopLevel::default(),
            top_fresh: false,
            contexts: Vec::with_capacity(1024),
            into: into.map(|p| p.segments().to_vec()),
        }
    }

    /// A new, empty event writing results where this one does.
    fn fresh(&self) -> Self {
        let mut event = Event::new(None);
        event.into.clone_from(&self.into);
        event
    }

    /// Takes a new input line: validates it and records its members.
    pub fn load(&mut self, line: &[u8]) -> Result<(), ScanError> {
        self.buf.clear();
        self.buf.extend_from_slice(line);
        self.contexts.clear();
        self.top.scan(&self.buf)?;
        self.top_fresh = true;
        Ok(())
    }

    /// Builds an event from bytes known to be one JSON object (for tests
    /// and for steps that rewrite the event).
    pub fn set_trusted(&mut self, bytes: &[u8]) {
        self.buf.clear();
        self.buf.extend_from_slice(bytes);
        self.top_fresh = false;
    }

    /// The event's current bytes, without contexts not yet spliced in.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    fn top(&mut self) -> &raw::TopLevel {
        self.refresh();
        &self.top
    }

    fn refresh(&mut self) {
        if !self.top_fresh {
            self.top.scan_trusted(&self.buf);
            self.top_fresh = true;
        }
    }

    /// The range of the value at `path`, if there is one. A path into
    /// `derived_contexts` sees the contexts earlier steps added.
    pub fn find(&mut self, path: &FieldPath) -> Option<Range<usize>> {
        let segs = path.segments();
        if let Some(Segment::Field(first)) = segs.first() {
            if first == CONTEXTS_MEMBER && !self.contexts.is_empty() {
                // Errors here surface again, and are reported, at the end.
                let _ = self.splice_contexts();
            }
            self.refresh();
            let start = self.top.get(&self.buf, first)?;
            return raw::find(&self.buf, start, &segs[1..]);
        }
        let object = self.top().object.clone();
        raw::find(&self.buf, object, segs)
    }

    /// The value at `path` as text (see [`raw::scalar`]).
    pub fn scalar(&mut self, path: &FieldPath) -> raw::Scalar<'_> {
        let at = self.find(path);
        raw::scalar(&self.buf, at)
    }

    /// Replaces the bytes at `at` (from [`Event::find`]) with `value`.
    pub fn replace(&mut self, at: Range<usize>, value: &[u8]) {
        self.buf.splice(at, value.iter().copied());
        self.top_fresh = false;
    }

    /// Writes `value` at `segments`, creating objects on the way.
    pub fn set(&mut self, segments: &[Segment], value: &[u8]) -> Result<(), String> {
        let object = self.top().object.clone();
        let point = raw::set_point(&self.buf, object, segments)?;
        raw::apply_set(&self.buf, &point, value, &mut self.spare);
        std::mem::swap(&mut self.buf, &mut self.spare);
        self.top_fresh = false;
        Ok(())
    }

    /// Adds a step's result (see [`Derived`]).
    pub fn derive(&mut self, d: Derived<'_>) -> Result<(), FailureMessage> {
        match self.into.take() {
            None => {
                if !self.contexts.is_empty() {
                    self.contexts.push(b',');
                }
                self.contexts.extend_from_slice(br#"{"schema":""#);
                self.contexts.extend_from_slice(d.schema.as_bytes());
                self.contexts.extend_from_slice(br#"","data":"#);
                self.contexts.extend_from_slice(d.data);
                self.contexts.push(b'}');
                Ok(())
            }
            Some(mut into) => {
                into.push(Segment::Field(d.field.to_string()));
                let result = self.set(&into, d.value);
                into.pop();
                self.into = Some(into);
                result.map_err(|e| into_error(&into_path_text(self.into.as_deref(), d.field), e))
            }
        }
    }

    /// Records that a step found nothing: `null` under the `into` path; no
    /// derived context.
    pub fn derive_nothing(&mut self, field: &str) -> Result<(), FailureMessage> {
        if self.into.is_none() {
            return Ok(());
        }
        self.derive(Derived {
            field,
            schema: "",
            data: b"null",
            value: b"null",
        })
    }

    /// Splices the pending derived contexts into the event.
    fn splice_contexts(&mut self) -> Result<(), FailureMessage> {
        if self.contexts.is_empty() {
            return Ok(());
        }
        self.spare.clear();
        self.refresh();
        let existing = self.top.get(&self.buf, CONTEXTS_MEMBER);
        match existing {
            Some(arr) if self.buf[arr.start] == b'[' => {
                raw::append_to_array(&self.buf, arr, &self.contexts, &mut self.spare);
            }
            Some(v) if self.buf[v.start] == b'n' => {
                self.spare.extend_from_slice(&self.buf[..v.start]);
                self.spare.push(b'[');
                self.spare.extend_from_slice(&self.contexts);
                self.spare.push(b']');
                self.spare.extend_from_slice(&self.buf[v.end..]);
            }
            Some(v) => {
                return Err(FailureMessage::new(
                    error_kind::CONTEXTS_NOT_ARRAY,
                    format!(
                        "the event's {CONTEXTS_MEMBER:?} member is a {}, not an array; derived contexts cannot be added (use --into)",
                        raw::kind_of(&self.buf, &v)
                    ),
                ))
            }
            None => {
                let object = self.top().object.clone();
                let close = object.end - 1;
                let empty = self.buf[object.start + 1..close].iter().all(u8::is_ascii_whitespace);
                self.spare.extend_from_slice(&self.buf[..close]);
                if !empty {
                    self.spare.push(b',');
                }
                self.spare.extend_from_slice(br#"""#);
                self.spare.extend_from_slice(CONTEXTS_MEMBER.as_bytes());
                self.spare.extend_from_slice(br#"":["#);
                self.spare.extend_from_slice(&self.contexts);
                self.spare.push(b']');
                self.spare.extend_from_slice(&self.buf[close..]);
            }
        }
        std::mem::swap(&mut self.buf, &mut self.spare);
        self.contexts.clear();
        self.top_fresh = false;
        Ok(())
    }

    /// The finished event: every derived context spliced in.
    pub fn finish(&mut self) -> Result<&[u8], FailureMessage> {
        self.splice_contexts()?;
        Ok(&self.buf)
    }

    /// The finished event for a jq step to read.
    fn for_jq(&mut self) -> Result<&[u8], FailureMessage> {
        self.finish()
    }
}

fn into_path_text(into: Option<&[Segment]>, field: &str) -> String {
    let mut text = String::new();
    for seg in into.unwrap_or(&[]) {
        match seg {
            Segment::Field(f) => {
                text.push('.');
                text.push_str(f);
            }
            Segment::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    text.push('.');
    text.push_str(field);
    text
}

fn into_error(path: &str, e: String) -> FailureMessage {
    FailureMessage::new(
        error_kind::INTO_PATH,
        format!("cannot write the result at {path}: {e}"),
    )
    .with("path", path)
}

/// What a step decided about the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the next step.
    Continue,
    /// Leave the event out (a jq expression that yields nothing).
    Drop,
}

/// One enrichment step, set up once and applied to every event.
pub trait Step: Send {
    /// The step's name in failure events (`geoip`, `lookup`, `jq`, …).
    fn name(&self) -> &'static str;
    /// Applies the step. `original` is the input line as read. Every error
    /// found is returned, not just the first.
    fn apply(&mut self, ev: &mut Event, original: &[u8]) -> Result<Flow, Vec<FailureMessage>>;
    /// The same step for another worker thread: what is large and
    /// read-only (databases, tables) is shared, scratch state is its own.
    fn fork(&self) -> Result<Box<dyn Step>>;
}

/// A step as described on the command line or in a config file, before its
/// files are loaded.
#[derive(Debug, Clone, PartialEq)]
pub enum StepSpec {
    /// `--geoip MMDB --ip PATH`
    GeoIp {
        /// The MaxMind DB file.
        db: PathBuf,
        /// Where the address is.
        ip: FieldPath,
    },
    /// `--lookup TABLE --on PATH [--key COLUMN] [--required] [--as NAME]`
    Lookup(lookup::LookupSpec),
    /// `--jq EXPR`
    Jq {
        /// The jq program.
        expr: String,
        /// Where it was given, for messages (`--jq #2`, `enrich.json line 7`).
        origin: String,
    },
    /// `--ua PATH`
    UserAgent {
        /// Where the user-agent string is.
        path: FieldPath,
    },
    /// `--event-id [random|content]`
    EventId(event_id::IdMode),
    /// `--anonymize-ip N[/M] --ip PATH`
    AnonymizeIp {
        /// What to zero.
        mask: anonymize::Mask,
        /// Where the address is.
        ip: FieldPath,
    },
    /// `--enriched-at`
    EnrichedAt,
}

/// A whole enrichment: the steps in order and where results go.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spec {
    /// The steps, in the order they apply.
    pub steps: Vec<StepSpec>,
    /// Write results under this path instead of as derived contexts.
    pub into: Option<FieldPath>,
}

/// How one input line came out of the steps.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// The enriched event, ready to write.
    Enriched(&'a [u8]),
    /// A step asked to leave the event out.
    Dropped,
    /// The line failed: every error from the failing step.
    Failed(Vec<FailureMessage>),
}

impl Outcome<'_> {
    /// The outcome without a borrowed event (only for those that have none).
    fn into_owned(self) -> Outcome<'static> {
        match self {
            Outcome::Enriched(_) => unreachable!("an enriched event is borrowed"),
            Outcome::Dropped => Outcome::Dropped,
            Outcome::Failed(errors) => Outcome::Failed(errors),
        }
    }
}

/// The loaded steps, applied to each event in order.
pub struct Pipeline {
    steps: Vec<Box<dyn Step>>,
    event: Event,
    /// The input without its position member, and the output with it put
    /// back first: steps never see or move the member.
    unpositioned: Vec<u8>,
    positioned: Vec<u8>,
}

impl Pipeline {
    /// Loads every file the steps need (databases, tables) and compiles
    /// every jq program, so that bad setup is found before any event is
    /// read. Errors name the file and line.
    pub fn build(spec: &Spec) -> Result<Self> {
        let mut steps: Vec<Box<dyn Step>> = Vec::with_capacity(spec.steps.len());
        for step in &spec.steps {
            steps.push(match step {
                StepSpec::GeoIp { db, ip } => Box::new(geoip::GeoIp::open(db, ip.clone())?),
                StepSpec::Lookup(l) => Box::new(lookup::Lookup::load(l)?),
                StepSpec::Jq { expr, origin } => Box::new(jq::Jq::compile(expr, origin)?),
                StepSpec::UserAgent { path } => Box::new(useragent::UserAgent::new(path.clone())),
                StepSpec::EventId(mode) => Box::new(event_id::EventId::new(*mode)),
                StepSpec::AnonymizeIp { mask, ip } => {
                    Box::new(anonymize::Anonymize::new(*mask, ip.clone()))
                }
                StepSpec::EnrichedAt => Box::new(enriched_at::EnrichedAt::new()),
            });
        }
        Ok(Pipeline::from_steps(steps, spec.into.as_ref()))
    }

    /// The same pipeline for another worker thread (see [`Step::fork`]).
    pub fn fork(&self) -> Result<Self> {
        Ok(Pipeline {
            steps: self.steps.iter().map(|s| s.fork()).collect::<Result<_>>()?,
            event: self.event.fresh(),
            unpositioned: Vec::new(),
            positioned: Vec::new(),
        })
    }

    /// Builds a pipeline from steps already made (for tests and embedding).
    pub fn from_steps(steps: Vec<Box<dyn Step>>, into: Option<&FieldPath>) -> Self {
        Pipeline {
            steps,
            event: Event::new(into),
            unpositioned: Vec::new(),
            positioned: Vec::new(),
        }
    }

    /// Applies every step to one input line. A position member
    /// (`log-tail --with-position`) is set aside while the steps run and
    /// put back first on the result, so no step (a jq program that builds
    /// a new object, say) can drop or change it.
    pub fn process(&mut self, line: &[u8]) -> Outcome<'_> {
        let found = match position::locate(line) {
            Ok(found) => found,
            Err(message) => {
                return Outcome::Failed(vec![FailureMessage::new(kind::BAD_POSITION, message)])
            }
        };
        let Some(found) = found else {
            return self.process_unpositioned(line);
        };
        let mut body = std::mem::take(&mut self.unpositioned);
        body.clear();
        body.push(b'{');
        body.extend_from_slice(found.rest(line));
        let mut out = std::mem::take(&mut self.positioned);
        let outcome = match self.process_unpositioned(&body) {
            Outcome::Enriched(bytes) => {
                out.clear();
                position::write_before(&mut out, &found.position, None, &bytes[1..]);
                None
            }
            other => Some(other.into_owned()),
        };
        self.unpositioned = body;
        self.positioned = out;
        match outcome {
            None => Outcome::Enriched(&self.positioned),
            Some(other) => other,
        }
    }

    fn process_unpositioned(&mut self, line: &[u8]) -> Outcome<'_> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Outcome::Failed(vec![FailureMessage::new(
                kind::EMPTY_LINE,
                "an empty line where an event was expected",
            )]);
        }
        if let Err(e) = self.event.load(line) {
            return Outcome::Failed(vec![io::json_failure(&e)]);
        }
        for (i, step) in self.steps.iter_mut().enumerate() {
            match step.apply(&mut self.event, line) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Drop) => return Outcome::Dropped,
                Err(errors) => {
                    let name = step.name();
                    return Outcome::Failed(
                        errors
                            .into_iter()
                            .map(|e| e.with("step", name).with("step_number", i as u64 + 1))
                            .collect(),
                    );
                }
            }
        }
        match self.event.finish() {
            Ok(bytes) => Outcome::Enriched(bytes),
            Err(e) => Outcome::Failed(vec![e]),
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the steps' unit tests.
    use super::*;

    /// Runs one step on `line` with results as contexts or `into` a path.
    pub fn run(
        step: Box<dyn Step>,
        into: Option<&str>,
        line: &str,
    ) -> Result<Option<serde_json::Value>, Vec<FailureMessage>> {
        let into = into.map(|p| FieldPath::parse(p).unwrap());
        let mut p = Pipeline::from_steps(vec![step], into.as_ref());
        match p.process(line.as_bytes()) {
            Outcome::Enriched(b) => Ok(Some(serde_json::from_slice(b).expect("output is JSON"))),
            Outcome::Dropped => Ok(None),
            Outcome::Failed(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fixed(&'static str, &'static [u8]);
    impl Step for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }
        fn apply(&mut self, ev: &mut Event, _: &[u8]) -> Result<Flow, Vec<FailureMessage>> {
            ev.derive(Derived {
                field: self.0,
                schema: schema::EVENT_ID,
                data: self.1,
                value: self.1,
            })
            .map_err(|e| vec![e])?;
            Ok(Flow::Continue)
        }
        fn fork(&self) -> Result<Box<dyn Step>> {
            Ok(Box::new(Fixed(self.0, self.1)))
        }
    }

    fn run(into: Option<&str>, line: &str) -> Result<String, Vec<FailureMessage>> {
        let into = into.map(|p| FieldPath::parse(p).unwrap());
        let steps: Vec<Box<dyn Step>> = vec![
            Box::new(Fixed("a", b"{\"x\":1}")),
            Box::new(Fixed("b", b"2")),
        ];
        let mut p = Pipeline::from_steps(steps, into.as_ref());
        match p.process(line.as_bytes()) {
            Outcome::Enriched(b) => Ok(String::from_utf8(b.to_vec()).unwrap()),
            Outcome::Dropped => panic!("dropped"),
            Outcome::Failed(e) => Err(e),
        }
    }

    #[test]
    fn contexts_go_beside_data_byte_faithfully() {
        let out = run(None, r#"{"schema":"s", "data":{"n":1.50}}"#).unwrap();
        let u = schema::EVENT_ID;
        assert_eq!(
            out,
            format!(
                r#"{{"schema":"s", "data":{{"n":1.50}},"derived_contexts":[{{"schema":"{u}","data":{{"x":1}}}},{{"schema":"{u}","data":2}}]}}"#
            )
        );
        let out = run(
            None,
            r#"{"data":{},"derived_contexts":[{"schema":"old","data":0}]}"#,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["derived_contexts"].as_array().unwrap().len(), 3);
        assert_eq!(v["derived_contexts"][0]["schema"], "old");
        let out = run(None, r#"{"data":{},"derived_contexts":null}"#).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["derived_contexts"].as_array().unwrap().len(), 2);
        let err = run(None, r#"{"data":{},"derived_contexts":"x"}"#).unwrap_err();
        assert_eq!(err[0].kind, error_kind::CONTEXTS_NOT_ARRAY);
    }

    #[test]
    fn into_writes_fields_at_the_path() {
        let out = run(Some(".data.enriched"), r#"{"schema":"s","data":{"n":1}}"#).unwrap();
        assert_eq!(
            out,
            r#"{"schema":"s","data":{"n":1,"enriched":{"a":{"x":1},"b":2}}}"#
        );
        let out = run(Some(".data"), r#"{"data":{"a":"old"}}"#).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&out).unwrap(),
            json!({"data": {"a": {"x": 1}, "b": 2}})
        );
        let err = run(Some(".data.n"), r#"{"data":{"n":1}}"#).unwrap_err();
        assert_eq!(err[0].kind, error_kind::INTO_PATH);
        assert_eq!(err[0].detail["step"], "fixed");
        assert_eq!(err[0].detail["step_number"], 1);
        assert_eq!(err[0].detail["path"], ".data.n.a");
    }

    #[test]
    fn bad_lines_fail_with_their_kind() {
        for (line, k) in [
            ("", kind::EMPTY_LINE),
            ("{oops", kind::NOT_JSON),
            ("[1]", kind::NOT_OBJECT),
            ("\"\u{e9}", kind::NOT_JSON),
        ] {
            let err = run(None, line).unwrap_err();
            assert_eq!(err[0].kind, k, "{line}");
        }
        let mut p = Pipeline::from_steps(vec![], None);
        match p.process(b"{\"a\":\"\xff\"}") {
            Outcome::Failed(e) => assert_eq!(e[0].kind, kind::INVALID_UTF8),
            other => panic!("{other:?}"),
        }
    }
}
