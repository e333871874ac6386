//! The event model: self-describing envelopes (`{"schema":"iglu:…","data":…}`),
//! Iglu schema URIs with their SchemaVer, and failure events.

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Result};
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::time;

/// The schema of the failure events every tool writes.
pub const FAILURE_SCHEMA: &str = "iglu:io.unilog/failure/jsonschema/1-0-0";

/// This crate's version, carried in failure events as the processor version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A SchemaVer `MODEL-REVISION-ADDITION`: MODEL breaks all old data, REVISION
/// may break some, ADDITION breaks none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SchemaVer {
    /// Breaks every earlier datum; starts at 1.
    pub model: u32,
    /// May break some earlier data.
    pub revision: u32,
    /// Breaks no earlier datum.
    pub addition: u32,
}

impl fmt::Display for SchemaVer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.model, self.revision, self.addition)
    }
}

impl FromStr for SchemaVer {
    type Err = anyhow::Error;
    /// `1-0-0`: MODEL from 1 up, no leading zeros anywhere.
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('-').collect();
        let [model, revision, addition] = parts[..] else {
            bail!("SchemaVer {s:?} must be MODEL-REVISION-ADDITION, like 1-0-0");
        };
        let number = |part: &str, what: &str| -> Result<u32> {
            if part.is_empty()
                || !part.bytes().all(|b| b.is_ascii_digit())
                || (part.len() > 1 && part.starts_with('0'))
            {
                bail!("SchemaVer {s:?}: {what} {part:?} must be a number without leading zeros");
            }
            part.parse()
                .map_err(|_| anyhow::anyhow!("SchemaVer {s:?}: {what} is too large"))
        };
        let ver = SchemaVer {
            model: number(model, "MODEL")?,
            revision: number(revision, "REVISION")?,
            addition: number(addition, "ADDITION")?,
        };
        if ver.model == 0 {
            bail!("SchemaVer {s:?}: MODEL starts at 1");
        }
        Ok(ver)
    }
}

/// A parsed `iglu:VENDOR/NAME/FORMAT/MODEL-REVISION-ADDITION` URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IgluUri {
    /// Reverse domain name of the schema's owner, such as `com.nile`.
    pub vendor: String,
    /// The event or entity name.
    pub name: String,
    /// `jsonschema` or `avro`.
    pub format: String,
    /// The schema's version.
    pub version: SchemaVer,
}

impl fmt::Display for IgluUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iglu:{}/{}/{}/{}",
            self.vendor, self.name, self.format, self.version
        )
    }
}

impl FromStr for IgluUri {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        IgluUri::parse(s)
    }
}

impl IgluUri {
    /// Parses a URI by the Iglu grammar. Only the characters the grammar
    /// allows pass, so a parsed URI is always safe to turn into a path.
    pub fn parse(s: &str) -> Result<Self> {
        let Some(rest) = s.strip_prefix("iglu:") else {
            bail!("schema URI {s:?} must start with \"iglu:\", as in iglu:com.nile/order/jsonschema/1-0-0");
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let [vendor, name, format, version] = parts[..] else {
            bail!("schema URI {s:?} must be iglu:VENDOR/NAME/FORMAT/MODEL-REVISION-ADDITION");
        };
        let check = |part: &str, what: &str, dots: bool| -> Result<String> {
            let ok = !part.is_empty()
                && part.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (dots && b == b'.')
                })
                && part != "."
                && part != "..";
            if !ok {
                bail!(
                    "schema URI {s:?}: {what} {part:?} may hold only letters, digits, '-', '_'{}",
                    if dots { " and '.'" } else { "" }
                );
            }
            Ok(part.to_string())
        };
        Ok(IgluUri {
            vendor: check(vendor, "vendor", true)?,
            name: check(name, "name", false)?,
            format: check(format, "format", false)?,
            version: version.parse()?,
        })
    }
}

/// The kinds of error a failure event can carry, named as they appear in it.
pub mod kind {
    /// An empty line where an event was expected.
    pub const EMPTY_LINE: &str = "empty_line";
    /// The line is not valid JSON.
    pub const NOT_JSON: &str = "not_json";
    /// The line is JSON but not an object.
    pub const NOT_OBJECT: &str = "not_object";
    /// The line is not valid UTF-8.
    pub const INVALID_UTF8: &str = "invalid_utf8";
    /// The line is over the size cap.
    pub const TOO_LARGE: &str = "too_large";
    /// The object is not a `{"schema":…,"data":…}` envelope.
    pub const NOT_SELF_DESCRIBING: &str = "not_self_describing";
    /// The leading `unilog` member is not a position.
    pub const BAD_POSITION: &str = "bad_position";
}

/// One error inside a failure event: a kind, a message for people, and any
/// fields that locate it (instance path, keyword, schema…).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FailureMessage {
    /// Machine-readable error kind, such as `not_json`.
    pub kind: String,
    /// What went wrong, for people.
    pub message: String,
    /// Anything else that locates the error.
    #[serde(flatten)]
    pub detail: Map<String, Value>,
}

impl FailureMessage {
    /// A message with no detail fields.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        FailureMessage {
            kind: kind.into(),
            message: message.into(),
            detail: Map::new(),
        }
    }

    /// Adds a detail field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_string(), value.into());
        self
    }
}

/// Where a failed input came from: the input's name and its line.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InputPosition {
    /// File name, `stdin`, or a log's name.
    pub name: String,
    /// 1-based line number.
    pub line: u64,
}

/// The input a failure event keeps, verbatim.
#[derive(Debug, Clone, Copy)]
pub enum Original<'a> {
    /// The whole line as read.
    Line(&'a [u8]),
    /// The first bytes of a line that was too long, and its whole length.
    Truncated {
        /// The first bytes.
        prefix: &'a [u8],
        /// The line's whole length.
        len: u64,
    },
}

/// A failure event: the processor, the time, every error found, where the
/// input was, and the input itself (as JSON when it was JSON, as a string
/// when it was text, base64 when it was not UTF-8).
pub struct Failure<'a> {
    /// The tool that failed the input.
    pub processor: &'a str,
    /// Where the input was read.
    pub position: InputPosition,
    /// Every error found, not just the first.
    pub errors: Vec<FailureMessage>,
    /// The input.
    pub original: Original<'a>,
}

impl Failure<'_> {
    /// The failure event as one compact JSON line (no `\n`).
    pub fn to_line(&self) -> Vec<u8> {
        self.to_line_at(time::now_ms())
    }

    /// As [`Failure::to_line`], at a given time (for tests).
    pub fn to_line_at(&self, now_ms: i64) -> Vec<u8> {
        let mut data = Map::new();
        data.insert(
            "processor".into(),
            serde_json::json!({"name": self.processor, "version": VERSION}),
        );
        data.insert("failed_at".into(), time::format_rfc3339_ms(now_ms).into());
        data.insert(
            "input".into(),
            serde_json::to_value(&self.position).unwrap_or(Value::Null),
        );
        data.insert(
            "errors".into(),
            serde_json::to_value(&self.errors).unwrap_or(Value::Null),
        );
        // The original goes in last and verbatim: spliced in as raw JSON when
        // it is JSON, so that no byte of a good payload changes.
        let (original, extra) = original_json(self.original);
        for (k, v) in extra {
            data.insert(k.into(), v);
        }
        let mut out = br#"{"schema":""#.to_vec();
        out.extend_from_slice(FAILURE_SCHEMA.as_bytes());
        out.extend_from_slice(br#"","data":"#);
        let body = serde_json::to_vec(&data).expect("a map of values serializes");
        out.extend_from_slice(&body[..body.len() - 1]);
        if data.is_empty() {
            out.extend_from_slice(br#""original":"#);
        } else {
            out.extend_from_slice(br#","original":"#);
        }
        out.extend_from_slice(&original);
        out.extend_from_slice(b"}}");
        out
    }
}

/// The deepest JSON original kept as JSON inside a failure event.
const MAX_ORIGINAL_DEPTH: usize = 100;

/// How deep arrays and objects nest in JSON text (brackets in strings do not count).
fn nesting_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn original_json(original: Original<'_>) -> (Vec<u8>, Vec<(&'static str, Value)>) {
    match original {
        Original::Line(bytes) => {
            let trimmed = bytes.trim_ascii();
            // serde_json does not check the UTF-8 of strings it ignores.
            // Nor does it limit the nesting of what it ignores: a deeper
            // original goes in as text, so the failure event stays readable
            // by JSON parsers with the usual depth limit (128).
            let is_json = std::str::from_utf8(trimmed).is_ok_and(|t| {
                !t.is_empty()
                    && nesting_depth(trimmed) <= MAX_ORIGINAL_DEPTH
                    && serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok()
                    && crate::json::check_rules(trimmed).is_ok()
            });
            if is_json {
                return (trimmed.to_vec(), vec![]);
            }
            text_or_base64(bytes, vec![])
        }
        Original::Truncated { prefix, len } => {
            // Cut at a character boundary so the kept text stays text.
            let keep = match std::str::from_utf8(prefix) {
                Ok(_) => prefix,
                Err(e) if e.error_len().is_none() => &prefix[..e.valid_up_to()],
                Err(_) => prefix,
            };
            text_or_base64(
                keep,
                vec![
                    ("original_truncated", Value::Bool(true)),
                    ("original_bytes", len.into()),
                ],
            )
        }
    }
}

fn text_or_base64(
    bytes: &[u8],
    mut extra: Vec<(&'static str, Value)>,
) -> (Vec<u8>, Vec<(&'static str, Value)>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (serde_json::to_vec(text).expect("strings serialize"), extra),
        Err(_) => {
            extra.push(("original_encoding", Value::from("base64")));
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            (
                serde_json::to_vec(&encoded).expect("strings serialize"),
                extra,
            )
        }
    }
}

/// A self-describing event, parsed: its schema URI text and its data.
#[derive(Debug, Clone, PartialEq)]
pub struct SelfDescribing {
    /// The `schema` member, parsed.
    pub schema: IgluUri,
    /// The `data` member.
    pub data: Value,
}

impl SelfDescribing {
    /// Checks the envelope of a parsed event: an object with a string
    /// `schema` that is a valid Iglu URI, and a `data` member.
    pub fn from_value(value: &Value) -> std::result::Result<Self, FailureMessage> {
        let Some(object) = value.as_object() else {
            return Err(FailureMessage::new(
                kind::NOT_SELF_DESCRIBING,
                "the event is not a JSON object",
            ));
        };
        let schema = match object.get("schema") {
            Some(Value::String(s)) => s,
            Some(_) => {
                return Err(FailureMessage::new(
                    kind::NOT_SELF_DESCRIBING,
                    "the \"schema\" member must be a string like iglu:com.nile/order/jsonschema/1-0-0",
                ))
            }
            None => {
                return Err(FailureMessage::new(
                    kind::NOT_SELF_DESCRIBING,
                    "the event has no \"schema\" member; self-describing events look like {\"schema\":\"iglu:…\",\"data\":{…}}",
                ))
            }
        };
        let schema = IgluUri::parse(schema).map_err(|e| {
            FailureMessage::new(kind::NOT_SELF_DESCRIBING, e.to_string())
                .with("schema", schema.as_str())
        })?;
        let Some(data) = object.get("data") else {
            return Err(FailureMessage::new(
                kind::NOT_SELF_DESCRIBING,
                "the event has no \"data\" member",
            ));
        };
        Ok(SelfDescribing {
            schema,
            data: data.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iglu_uris() {
        let uri = IgluUri::parse("iglu:com.nile/shopper_viewed_product/jsonschema/1-0-2").unwrap();
        assert_eq!(uri.vendor, "com.nile");
        assert_eq!(uri.name, "shopper_viewed_product");
        assert_eq!(uri.format, "jsonschema");
        assert_eq!(
            uri.version,
            SchemaVer {
                model: 1,
                revision: 0,
                addition: 2
            }
        );
        assert_eq!(
            uri.to_string(),
            "iglu:com.nile/shopper_viewed_product/jsonschema/1-0-2"
        );
    }

    #[test]
    fn refuses_bad_uris() {
        for bad in [
            "com.nile/x/jsonschema/1-0-0",
            "iglu:com.nile/x/jsonschema",
            "iglu:com.nile/x/jsonschema/0-0-0",
            "iglu:com.nile/x/jsonschema/1-01-0",
            "iglu:com.nile/x/jsonschema/1-0",
            "iglu:../../etc/passwd",
            "iglu:../x/jsonschema/1-0-0",
            "iglu:com.nile/x.y/jsonschema/1-0-0",
            "iglu:com nile/x/jsonschema/1-0-0",
            "iglu:com.nile/x/jsonschema/1-0-0/extra",
        ] {
            assert!(IgluUri::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn schemaver_orders_by_parts() {
        let a: SchemaVer = "1-0-9".parse().unwrap();
        let b: SchemaVer = "1-1-0".parse().unwrap();
        assert!(a < b);
    }

    #[test]
    fn failure_events_keep_the_original() {
        let failure = Failure {
            processor: "log-append",
            position: InputPosition {
                name: "stdin".into(),
                line: 3,
            },
            errors: vec![FailureMessage::new(kind::NOT_OBJECT, "a JSON array").with("column", 1)],
            original: Original::Line(b"[1, 2]"),
        };
        let line = failure.to_line_at(0);
        let text = std::str::from_utf8(&line).unwrap();
        assert_eq!(
            text,
            r#"{"schema":"iglu:io.unilog/failure/jsonschema/1-0-0","data":{"processor":{"name":"log-append","version":"0.1.0"},"failed_at":"1970-01-01T00:00:00.000Z","input":{"name":"stdin","line":3},"errors":[{"kind":"not_object","message":"a JSON array","column":1}],"original":[1, 2]}}"#
        );
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["data"]["original"], serde_json::json!([1, 2]));
    }

    /// The data of a failure event that keeps `original`.
    fn failure_data(original: Original<'_>) -> Value {
        let f = Failure {
            processor: "t",
            position: InputPosition {
                name: "f".into(),
                line: 1,
            },
            errors: vec![],
            original,
        };
        serde_json::from_slice::<Value>(&f.to_line_at(0)).unwrap()["data"].clone()
    }

    #[test]
    fn failure_originals_as_text_base64_and_truncated() {
        let mk = failure_data;
        assert_eq!(
            mk(Original::Line(b"{oops")).get("original").unwrap(),
            "{oops"
        );
        let bin = mk(Original::Line(b"\xff\xfe"));
        let json_bytes = mk(Original::Line(b"{\"a\":\"\xff\"}"));
        assert_eq!(json_bytes["original_encoding"], "base64");
        assert_eq!(bin["original"], "//4=");
        assert_eq!(bin["original_encoding"], "base64");
        let cut = mk(Original::Truncated {
            prefix: "ab\u{e9}".as_bytes().split_at(3).0,
            len: 99,
        });
        assert_eq!(cut["original"], "ab");
        assert_eq!(cut["original_bytes"], 99);
    }

    #[test]
    fn deep_originals_are_kept_as_text() {
        let mk = |text: &str| failure_data(Original::Line(text.as_bytes()))["original"].clone();
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(mk(&deep), Value::String(deep.clone()));
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(mk(&ok).is_array());
        assert_eq!(nesting_depth(br#"{"a":"[[[{{","b":[{"c":"\"]"}]}"#), 3);
    }

    #[test]
    fn envelope_checks() {
        let ok = serde_json::json!({"schema": "iglu:a.b/c/jsonschema/1-0-0", "data": {}});
        assert!(SelfDescribing::from_value(&ok).is_ok());
        let no_schema = serde_json::json!({"data": {}});
        assert!(SelfDescribing::from_value(&no_schema).is_err());
        let bad_uri = serde_json::json!({"schema": "iglu:a.b/c/jsonschema/1-0", "data": {}});
        assert!(SelfDescribing::from_value(&bad_uri).is_err());
    }
}
