//! Schemas for self-describing events: registries and their resolution
//! ([`registry`]), JSON Schema ([`json`]) and Avro ([`avro`]) validators
//! compiled once and cached ([`Schemas`]), the per-event check that turns a
//! line into "valid" or a list of failure messages ([`Checker`]), and the
//! registry linter ([`lint`]).

pub mod avro;
pub mod json;
pub mod lint;
pub mod registry;
pub mod tape;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::event::{kind as event_kind, FailureMessage, IgluUri};
use registry::Resolver;

/// Error kinds `validate` adds to those of [`crate::event::kind`].
pub mod kind {
    /// No registry has the schema the event names.
    pub const SCHEMA_NOT_FOUND: &str = "schema_not_found";
    /// The schema was found but cannot be used (does not compile, its
    /// `self` does not match its place, or its format is unknown).
    pub const BAD_SCHEMA: &str = "bad_schema";
    /// The event's data does not satisfy its schema.
    pub const INVALID: &str = "invalid";
}

/// Why a schema cannot be used.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaError(pub String);

impl SchemaError {
    /// A schema error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        SchemaError(message.into())
    }
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SchemaError {}

/// One way data fails its schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationFailure {
    /// JSON Pointer to the failing value in the data (empty for the data itself).
    pub instance_path: String,
    /// JSON Pointer to the failing keyword in the schema (JSON Schema only).
    pub schema_path: String,
    /// The keyword (or Avro attribute) that failed.
    pub keyword: String,
    /// What went wrong, for people.
    pub message: String,
}

/// Checks a schema's `self` block against the place it was found: an
/// object with `vendor`, `name`, `format` and `version` equal to `key`'s.
pub fn check_self(schema: &Value, key: &IgluUri) -> Result<(), SchemaError> {
    let Some(block) = schema.get("self") else {
        return Err(SchemaError::new(format!(
            "has no \"self\" block; an Iglu schema says what it is: \"self\":{{\"vendor\":\"{}\",\"name\":\"{}\",\"format\":\"{}\",\"version\":\"{}\"}}",
            key.vendor, key.name, key.format, key.version
        )));
    };
    let Some(block) = block.as_object() else {
        return Err(SchemaError::new("its \"self\" must be an object"));
    };
    let version = key.version.to_string();
    let mut wrong = Vec::new();
    for (field, expected) in [
        ("vendor", key.vendor.as_str()),
        ("name", key.name.as_str()),
        ("format", key.format.as_str()),
        ("version", version.as_str()),
    ] {
        match block.get(field) {
            Some(Value::String(s)) if s == expected => {}
            Some(other) => wrong.push(format!(
                "self.{field} is {other} but its place in the registry says {expected:?}"
            )),
            None => wrong.push(format!(
                "self.{field} is missing (its place in the registry says {expected:?})"
            )),
        }
    }
    if let Some(extra) = block
        .keys()
        .find(|k| !["vendor", "name", "format", "version"].contains(&k.as_str()))
    {
        wrong.push(format!("self has an unknown member {extra:?}"));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(SchemaError::new(format!(
            "does not match its place: {}",
            wrong.join("; ")
        )))
    }
}

/// `8-4-4-4-12` hexadecimal digits, as RFC 4122 writes a UUID.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A schema ready to validate data.
pub enum Compiled {
    /// A JSON Schema.
    Json(json::JsonValidator),
    /// An Avro schema, checking the JSON encoding.
    Avro(avro::AvroValidator),
}

impl Compiled {
    /// Compiles the schema text found for `key`, by `key`'s format.
    pub fn compile(
        text: &str,
        key: &IgluUri,
        resolver: Arc<Resolver>,
    ) -> Result<Self, SchemaError> {
        match key.format.as_str() {
            "jsonschema" => {
                let value: Value = serde_json::from_str(text)
                    .map_err(|e| SchemaError::new(format!("is not JSON: {e}")))?;
                json::JsonValidator::compile(&value, key, resolver).map(Compiled::Json)
            }
            "avro" => avro::AvroValidator::compile(text, key).map(Compiled::Avro),
            other => Err(SchemaError::new(format!(
                "has format {other:?}; validate knows jsonschema and avro"
            ))),
        }
    }

    /// True when `data` is valid.
    #[inline]
    pub fn is_valid(&self, data: tape::Node<'_>) -> bool {
        match self {
            Compiled::Json(v) => v.is_valid(data),
            Compiled::Avro(v) => v.is_valid(data),
        }
    }

    /// Every error in `data`.
    pub fn errors(&self, data: tape::Node<'_>) -> Vec<ValidationFailure> {
        match self {
            Compiled::Json(v) => v.errors(data),
            Compiled::Avro(v) => v.errors(data),
        }
    }
}

/// What looking a schema up gave: a compiled schema, or the failure
/// messages every event naming it gets.
type Lookup = Result<Arc<Compiled>, Arc<Vec<FailureMessage>>>;

struct Cached {
    lookup: Lookup,
    loaded: Instant,
    /// Kept only briefly: a repository could not answer (a network error),
    /// which may pass.
    transient: bool,
    used: u64,
}

/// How long a lookup that met a repository error is kept before trying again.
pub const RETRY_AFTER: Duration = Duration::from_secs(10);

/// Compiled schemas by the URI text events name them with: each schema is
/// fetched and compiled once, kept up to the resolver's cache size (least
/// recently used goes first) and for its TTL. Misses are cached too, so a
/// stream of events naming an absent schema does not hit the registry for
/// each one.
pub struct Schemas {
    resolver: Arc<Resolver>,
    cache: HashMap<Box<str>, Cached>,
    tick: u64,
}

impl Schemas {
    /// An empty cache over `resolver`.
    pub fn new(resolver: Resolver) -> Self {
        Schemas {
            resolver: Arc::new(resolver),
            cache: HashMap::new(),
            tick: 0,
        }
    }

    /// The resolver in use.
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// The compiled schema that `uri_text` names, or why there is none.
    pub fn get(&mut self, uri_text: &str) -> Lookup {
        self.tick += 1;
        let ttl = self.resolver.cache_ttl;
        if let Some(hit) = self.cache.get_mut(uri_text) {
            let ttl = if hit.transient {
                Some(ttl.map_or(RETRY_AFTER, |t| t.min(RETRY_AFTER)))
            } else {
                ttl
            };
            if ttl.is_none_or(|ttl| hit.loaded.elapsed() < ttl) {
                hit.used = self.tick;
                return hit.lookup.clone();
            }
        }
        let (lookup, transient) = self.load(uri_text);
        if self.cache.len() >= self.resolver.cache_size && !self.cache.contains_key(uri_text) {
            if let Some(oldest) = self
                .cache
                .iter()
                .min_by_key(|(_, c)| c.used)
                .map(|(k, _)| k.clone())
            {
                self.cache.remove(&oldest);
            }
        }
        self.cache.insert(
            uri_text.into(),
            Cached {
                lookup: lookup.clone(),
                loaded: Instant::now(),
                transient,
                used: self.tick,
            },
        );
        lookup
    }

    /// How many lookups the cache holds.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    fn load(&self, uri_text: &str) -> (Lookup, bool) {
        let key = match IgluUri::parse(uri_text) {
            Ok(key) => key,
            Err(e) => {
                return (
                    Err(Arc::new(vec![FailureMessage::new(
                        event_kind::NOT_SELF_DESCRIBING,
                        e.to_string(),
                    )
                    .with("schema", uri_text)])),
                    false,
                )
            }
        };
        let found = match self.resolver.resolve(&key) {
            Ok(found) => found,
            Err(nf) => {
                let mut message = format!(
                    "schema {key} not found; looked in {}",
                    nf.looked_in.join(", ")
                );
                if !nf.errors.is_empty() {
                    message.push_str(&format!("; errors: {}", nf.errors.join("; ")));
                }
                let transient = !nf.errors.is_empty();
                return (
                    Err(Arc::new(vec![FailureMessage::new(
                        kind::SCHEMA_NOT_FOUND,
                        message,
                    )
                    .with("schema", uri_text)
                    .with("looked_in", nf.looked_in)])),
                    transient,
                );
            }
        };
        let compiled = match Compiled::compile(&found.text, &key, self.resolver.clone()) {
            Ok(c) => Ok(Arc::new(c)),
            Err(e) => Err(Arc::new(vec![FailureMessage::new(
                kind::BAD_SCHEMA,
                format!("schema {key} at {} {e}", found.location),
            )
            .with("schema", uri_text)
            .with("location", found.location)])),
        };
        (compiled, false)
    }
}

/// Checks events line by line, reusing its parse buffer.
pub struct Checker {
    schemas: Schemas,
    doc: tape::Doc,
}

impl Checker {
    /// A checker resolving schemas through `resolver`.
    pub fn new(resolver: Resolver) -> Self {
        Checker {
            schemas: Schemas::new(resolver),
            doc: tape::Doc::default(),
        }
    }

    /// The schema cache.
    pub fn schemas(&self) -> &Schemas {
        &self.schemas
    }

    /// `Ok` when `line` is a self-describing event valid against its
    /// schema; otherwise every failure message found.
    pub fn check(&mut self, line: &[u8]) -> Result<(), Vec<FailureMessage>> {
        if line.trim_ascii().is_empty() {
            return Err(vec![FailureMessage::new(
                event_kind::EMPTY_LINE,
                "an empty line where an event was expected",
            )]);
        }
        let view = match self.doc.parse(line) {
            Ok(view) => view,
            Err(e) if e.utf8 => {
                return Err(vec![FailureMessage::new(
                    event_kind::INVALID_UTF8,
                    "the line is not valid UTF-8",
                )
                .with("byte", e.offset as u64)]);
            }
            Err(e) => {
                return Err(vec![FailureMessage::new(
                    event_kind::NOT_JSON,
                    format!("not JSON: {e}"),
                )
                .with("line", 1u64)
                .with("column", e.offset as u64 + 1)]);
            }
        };
        let root = view.root();
        let (schema, data) = envelope(root)?;
        let compiled = self
            .schemas
            .get(schema)
            .map_err(|messages| (*messages).clone())?;
        if compiled.is_valid(data) {
            return Ok(());
        }
        let mut errors: Vec<FailureMessage> = compiled
            .errors(data)
            .into_iter()
            .map(|f| {
                let mut m = FailureMessage::new(kind::INVALID, f.message)
                    .with("schema", schema)
                    .with("instance_path", f.instance_path)
                    .with("keyword", f.keyword);
                if !f.schema_path.is_empty() {
                    m = m.with("schema_path", f.schema_path);
                }
                m
            })
            .collect();
        if errors.is_empty() {
            // A validator that says "invalid" must say why; never pass it on.
            errors.push(
                FailureMessage::new(kind::INVALID, "the data does not satisfy its schema")
                    .with("schema", schema),
            );
        }
        Err(errors)
    }
}

/// The `schema` text and the `data` of a self-describing event.
fn envelope<'a>(root: tape::Node<'a>) -> Result<(&'a str, tape::Node<'a>), Vec<FailureMessage>> {
    use jsonschema::json::Node as _;
    let not_sd = |m: &str| {
        Err(vec![FailureMessage::new(
            event_kind::NOT_SELF_DESCRIBING,
            m,
        )])
    };
    if root.as_object().is_none() {
        return not_sd("the event is not a JSON object; self-describing events look like {\"schema\":\"iglu:…\",\"data\":{…}}");
    }
    let schema = match root.member("schema") {
        Some(s) => match s.str() {
            Some(s) => s,
            None => return not_sd("the \"schema\" member must be a string like iglu:com.nile/order/jsonschema/1-0-0"),
        },
        None => return not_sd("the event has no \"schema\" member; self-describing events look like {\"schema\":\"iglu:…\",\"data\":{…}}"),
    };
    match root.member("data") {
        Some(data) => Ok((schema, data)),
        None => Err(vec![FailureMessage::new(
            event_kind::NOT_SELF_DESCRIBING,
            "the event has no \"data\" member",
        )
        .with("schema", schema)]),
    }
}

#[cfg(test)]
mod tests;
