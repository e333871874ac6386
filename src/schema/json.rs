//! JSON Schema: compiling a registry's schema (drafts 4, 6, 7, 2019-09 and
//! 2020-12, or an Iglu self-describing schema) into a validator that asserts
//! formats, matches patterns in linear time and refuses references that
//! leave the registry.

use std::sync::Arc;

use jsonschema::{Draft, PatternOptions, Retrieve, Uri, ValidationOptions};
use serde_json::Value;

use super::registry::Resolver;
use super::{check_self, tape::Tape, SchemaError, ValidationFailure};
use crate::event::IgluUri;

/// The meta-schema of Iglu self-describing JSON Schemas (a draft 4 schema
/// that requires a `self` block).
pub const IGLU_META: &str =
    "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#";

/// Compiled patterns may use at most this much memory each, so a schema
/// cannot make the validator build a huge automaton.
const REGEX_SIZE_LIMIT: usize = 2 << 20;
const REGEX_DFA_LIMIT: usize = 2 << 20;

/// A compiled JSON Schema.
pub struct JsonValidator {
    validator: jsonschema::Validator<Tape>,
}

/// Resolves `$ref`s to `iglu:` URIs through the registry; refuses every
/// other retrieval (files, HTTP), so a schema cannot reach outside it.
struct RegistryRetriever {
    resolver: Arc<Resolver>,
}

impl Retrieve for RegistryRetriever {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let text = uri.as_str();
        let text = text.split('#').next().unwrap_or(text);
        // Iglu Central's address for a schema names its Iglu URI: served
        // by the registry when the registry holds it, never fetched.
        let from_central = iglu_central_uri(text);
        let text = from_central.as_deref().unwrap_or(text);
        if !text.starts_with("iglu:") {
            return Err(format!(
                "reference {text} is outside the registry; only iglu: references are resolved"
            )
            .into());
        }
        let key = IgluUri::parse(text).map_err(|e| e.to_string())?;
        if key.format != "jsonschema" {
            return Err(format!("reference {key} is not a JSON Schema").into());
        }
        match self.resolver.resolve(&key) {
            Ok(found) => {
                let mut value: Value = serde_json::from_str(&found.text)
                    .map_err(|e| format!("{}: not JSON: {e}", found.location))?;
                check_self(&value, &key).map_err(|e| format!("{}: {e}", found.location))?;
                normalize_iglu(&mut value);
                Ok(value)
            }
            Err(nf) => Err(format!(
                "schema {key} not found (looked in {})",
                nf.looked_in.join(", ")
            )
            .into()),
        }
    }
}

/// `iglu:VENDOR/NAME/FORMAT/VERSION` for Iglu Central's
/// `http(s)://iglucentral.com/schemas/VENDOR/NAME/FORMAT/VERSION`.
fn iglu_central_uri(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("http://iglucentral.com/schemas/")
        .or_else(|| url.strip_prefix("https://iglucentral.com/schemas/"))?;
    Some(format!("iglu:{rest}"))
}

/// Rewrites an Iglu self-describing schema into the plain draft 4 schema it
/// is: the `$schema` becomes draft 4's and the `self` block goes.
fn normalize_iglu(schema: &mut Value) -> Option<Draft> {
    let object = schema.as_object_mut()?;
    let is_iglu = object
        .get("$schema")
        .and_then(Value::as_str)
        .is_some_and(|s| s.trim_end_matches('#') == IGLU_META.trim_end_matches('#'));
    object.remove("self");
    if is_iglu {
        object.insert(
            "$schema".into(),
            Value::String("http://json-schema.org/draft-04/schema#".into()),
        );
        return Some(Draft::Draft4);
    }
    None
}

impl JsonValidator {
    /// Compiles `schema`, found for `key`. Its `self` block, when it has
    /// one (an Iglu schema must), has to match `key`.
    pub fn compile(
        schema: &Value,
        key: &IgluUri,
        resolver: Arc<Resolver>,
    ) -> Result<Self, SchemaError> {
        let declared = schema.get("$schema").and_then(Value::as_str);
        let is_iglu =
            declared.is_some_and(|s| s.trim_end_matches('#') == IGLU_META.trim_end_matches('#'));
        if is_iglu || schema.get("self").is_some() {
            check_self(schema, key)?;
        }
        let mut plain = schema.clone();
        normalize_iglu(&mut plain);
        let options = asserting(jsonschema::options_for::<Tape>())
            .with_retriever(RegistryRetriever { resolver })
            .with_base_uri(key.to_string());
        let validator = options
            .build(&plain)
            .map_err(|e| SchemaError::new(format!("does not compile: {}", cap(&e.to_string()))))?;
        Ok(JsonValidator { validator })
    }

    /// True when `data` is valid (the fast path).
    #[inline]
    pub fn is_valid(&self, data: super::tape::Node<'_>) -> bool {
        self.validator.is_valid(data)
    }

    /// Every error in `data`.
    pub fn errors(&self, data: super::tape::Node<'_>) -> Vec<ValidationFailure> {
        self.validator
            .iter_errors(data)
            .map(|e| {
                let full = e.to_string();
                let message = if full.len() > 400 {
                    e.masked_with("the value").to_string()
                } else {
                    full
                };
                ValidationFailure {
                    instance_path: e.instance_path().as_str().to_string(),
                    schema_path: e.schema_path().as_str().to_string(),
                    keyword: e.kind().keyword().to_string(),
                    message: cap(&message),
                }
            })
            .collect()
    }
}

/// What every compile here shares: formats asserted, patterns matched in
/// linear time within bounded memory.
fn asserting<'i, F: jsonschema::json::Json>(
    options: ValidationOptions<'i, Arc<dyn Retrieve>, F>,
) -> ValidationOptions<'i, Arc<dyn Retrieve>, F> {
    options
        .should_validate_formats(true)
        // Draft 4, 6 and 7 do not know "uuid"; Iglu schemas (draft 4)
        // use it, so it is asserted in every draft.
        .with_format("uuid", |s: &str| super::is_uuid(s))
        // Draft 4 and 6 do not know "idn-hostname" either (the crate
        // asserts "idn-email" in every draft already): Iglu schemas get
        // the crate's own UTS-46 check, as a draft 7 schema would.
        .with_format("idn-hostname", is_idn_hostname)
        .with_pattern_options(
            PatternOptions::regex()
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_DFA_LIMIT),
        )
}

/// A validator for a piece of a schema on its own, under `draft`, with the
/// same formats and pattern rules as [`JsonValidator`]; `None` when it
/// does not compile or has a `$ref` (which only the whole schema can resolve).
pub(crate) fn fragment_validator(schema: &Value, draft: Draft) -> Option<jsonschema::Validator> {
    fn has_ref(v: &Value) -> bool {
        match v {
            Value::Object(m) => m.contains_key("$ref") || m.values().any(has_ref),
            Value::Array(a) => a.iter().any(has_ref),
            _ => false,
        }
    }
    if has_ref(schema) {
        return None;
    }
    asserting(jsonschema::options())
        .with_draft(draft)
        .build(schema)
        .ok()
}

/// The draft a registry schema is written in, as [`JsonValidator`] reads
/// it: Iglu's meta-schema is draft 4, no `$schema` is the newest draft.
pub(crate) fn draft_of(schema: &Value) -> Draft {
    let declared = schema.get("$schema").and_then(Value::as_str).unwrap_or("");
    if declared.trim_end_matches('#') == IGLU_META.trim_end_matches('#')
        || declared.contains("draft-04")
    {
        Draft::Draft4
    } else if declared.contains("draft-06") {
        Draft::Draft6
    } else if declared.contains("draft-07") {
        Draft::Draft7
    } else if declared.contains("2019-09") {
        Draft::Draft201909
    } else {
        Draft::Draft202012
    }
}

/// The `idn-hostname` format (RFC 5890-5893 through UTS-46), checked by the
/// jsonschema crate's draft 7 validator so that every draft asserts it the
/// same way.
fn is_idn_hostname(s: &str) -> bool {
    static CHECK: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    CHECK
        .get_or_init(|| {
            jsonschema::draft7::options()
                .should_validate_formats(true)
                .build(&serde_json::json!({"format": "idn-hostname"}))
                .expect("a one-keyword schema compiles")
        })
        .is_valid(&Value::String(s.to_string()))
}

/// Cuts a message to a readable length at a character boundary.
pub(crate) fn cap(message: &str) -> String {
    const MAX: usize = 1000;
    if message.len() <= MAX {
        return message.to_string();
    }
    let mut end = MAX;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &message[..end], message.len())
}
