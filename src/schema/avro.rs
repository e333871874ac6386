//! Avro: a registry's Avro schema (parsed and name-resolved by apache-avro)
//! checks data in Avro's JSON encoding: records as objects, enums as their
//! symbol, unions as `null` or `{"TYPE": value}`, bytes and fixed as strings
//! of code points 0–255, maps as objects, and the logical types on their
//! underlying types (uuid strings are checked to be UUIDs).

use std::collections::HashMap;

use apache_avro::schema::{Name, Schema, UnionSchema};
use serde_json::Value;

use super::tape::Node;
use super::{check_self, SchemaError, ValidationFailure};
use crate::event::IgluUri;

/// Nesting deeper than this (through recursive named types) is refused
/// rather than followed.
const MAX_DEPTH: usize = 128;

/// A compiled Avro schema.
pub struct AvroValidator {
    root: Schema,
    names: HashMap<Name, Schema>,
}

impl AvroValidator {
    /// Parses `text` (an Avro schema in JSON) found for `key`. A `self`
    /// attribute, when there is one, must match `key`.
    pub fn compile(text: &str, key: &IgluUri) -> Result<Self, SchemaError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| SchemaError::new(format!("is not JSON: {e}")))?;
        if value.get("self").is_some() {
            check_self(&value, key)?;
        }
        let root = Schema::parse(&value)
            .map_err(|e| SchemaError::new(format!("is not a valid Avro schema: {e}")))?;
        let resolved = apache_avro::schema::ResolvedSchema::try_from(&root)
            .map_err(|e| SchemaError::new(format!("has unresolved names: {e}")))?;
        let names = resolved
            .get_names()
            .iter()
            .map(|(n, s)| (n.clone(), (*s).clone()))
            .collect();
        Ok(AvroValidator { root, names })
    }

    /// The parsed schema.
    pub fn schema(&self) -> &Schema {
        &self.root
    }

    /// Every error in `data`; empty when it is valid.
    pub fn errors(&self, data: Node<'_>) -> Vec<ValidationFailure> {
        let mut errors = Vec::new();
        let mut path = String::new();
        self.check(&self.root, data, &mut path, &mut errors, 0);
        errors
    }

    /// True when `data` is valid.
    pub fn is_valid(&self, data: Node<'_>) -> bool {
        self.errors(data).is_empty()
    }

    fn check(
        &self,
        schema: &Schema,
        node: Node<'_>,
        path: &mut String,
        out: &mut Vec<ValidationFailure>,
        depth: usize,
    ) {
        use jsonschema::json::{Array as _, Node as _, Object as _};
        let mut fail = |keyword: &str, message: String| {
            out.push(ValidationFailure {
                instance_path: path.clone(),
                schema_path: String::new(),
                keyword: keyword.to_string(),
                message,
            })
        };
        if depth > MAX_DEPTH {
            fail("depth", format!("nested more than {MAX_DEPTH} deep"));
            return;
        }
        let describe = |n: &Node<'_>| -> String { super::json::cap(&n.to_json().to_string()) };
        // An integer in range; or, as Java's JsonDecoder reads it, a number
        // written with a fraction or an exponent whose value is whole (`1.0`,
        // `1e3`). Unlike Java, a value outside the range is refused, never
        // rounded into it.
        let int_in = |n: &Node<'_>, lo: i64, hi: i64| -> bool {
            n.as_number().is_some_and(|x| match x.as_i64() {
                Some(i) => (lo..=hi).contains(&i),
                None => x
                    .as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f >= lo as f64 && f < hi as f64 + 1.0),
            })
        };
        match schema {
            Schema::Null => {
                if !node.is_null() {
                    fail("type", format!("{} is not null", describe(&node)));
                }
            }
            Schema::Boolean => {
                if node.as_boolean().is_none() {
                    fail("type", format!("{} is not a boolean", describe(&node)));
                }
            }
            Schema::Int | Schema::Date | Schema::TimeMillis => {
                if !int_in(&node, i32::MIN as i64, i32::MAX as i64) {
                    fail(
                        "type",
                        format!(
                            "{} is not an int (32-bit integer){}",
                            describe(&node),
                            logical(schema)
                        ),
                    );
                }
            }
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => {
                if !int_in(&node, i64::MIN, i64::MAX) {
                    fail(
                        "type",
                        format!(
                            "{} is not a long (64-bit integer){}",
                            describe(&node),
                            logical(schema)
                        ),
                    );
                }
            }
            Schema::Float | Schema::Double => {
                // Java's JsonDecoder also reads IEEE 754's special values as
                // the strings Jackson writes for them.
                let special = node.str().is_some_and(|s| NON_FINITE.contains(&s));
                if node.as_number().is_none() && !special {
                    fail(
                        "type",
                        format!(
                            "{} is not a number (or one of the strings {})",
                            describe(&node),
                            NON_FINITE.join(", ")
                        ),
                    );
                }
            }
            Schema::String => {
                if node.str().is_none() {
                    fail("type", format!("{} is not a string", describe(&node)));
                }
            }
            Schema::Uuid(_) => match node.str() {
                Some(s) if super::is_uuid(s) => {}
                Some(_) => fail("logicalType", format!("{} is not a uuid", describe(&node))),
                None => fail("type", format!("{} is not a uuid string", describe(&node))),
            },
            Schema::Bytes | Schema::BigDecimal => {
                if byte_len(&node).is_none() {
                    fail(
                        "type",
                        format!(
                            "{} is not bytes (a string of code points 0-255)",
                            describe(&node)
                        ),
                    );
                }
            }
            Schema::Decimal(d) => {
                let size = match &d.inner {
                    apache_avro::schema::InnerDecimalSchema::Fixed(f) => Some(f.size),
                    _ => None,
                };
                match (byte_len(&node), size) {
                    (None, _) => fail(
                        "type",
                        format!(
                            "{} is not a decimal's bytes (a string of code points 0-255)",
                            describe(&node)
                        ),
                    ),
                    (Some(n), Some(size)) if n != size => fail(
                        "size",
                        format!("a decimal of fixed size {size} has {n} bytes"),
                    ),
                    _ => {}
                }
            }
            Schema::Fixed(f) | Schema::Duration(f) => match byte_len(&node) {
                None => fail(
                    "type",
                    format!(
                        "{} is not fixed {} (a string of code points 0-255)",
                        describe(&node),
                        f.name
                    ),
                ),
                Some(n) if n != f.size => fail(
                    "size",
                    format!("fixed {} needs {} bytes, not {n}", f.name, f.size),
                ),
                _ => {}
            },
            Schema::Enum(e) => match node.str() {
                Some(s) if e.symbols.iter().any(|x| x == s) => {}
                Some(s) => fail(
                    "symbols",
                    format!(
                        "{s:?} is not a symbol of enum {} ({})",
                        e.name,
                        e.symbols.join(", ")
                    ),
                ),
                None => fail(
                    "type",
                    format!("{} is not a symbol of enum {}", describe(&node), e.name),
                ),
            },
            Schema::Array(a) => match node.as_array() {
                Some(items) => {
                    for (i, item) in items.elements().enumerate() {
                        let len = path.len();
                        path.push('/');
                        path.push_str(&i.to_string());
                        self.check(&a.items, item, path, out, depth + 1);
                        path.truncate(len);
                    }
                }
                None => fail("type", format!("{} is not an array", describe(&node))),
            },
            Schema::Map(m) => match node.as_object() {
                Some(members) => {
                    for (k, v) in members.members() {
                        let len = path.len();
                        path.push('/');
                        push_pointer(path, k);
                        self.check(&m.types, v, path, out, depth + 1);
                        path.truncate(len);
                    }
                }
                None => fail(
                    "type",
                    format!("{} is not a map (an object)", describe(&node)),
                ),
            },
            Schema::Record(r) => match node.as_object() {
                Some(members) => {
                    for field in &r.fields {
                        let len = path.len();
                        path.push('/');
                        push_pointer(path, &field.name);
                        // Avro's JSON encoding writes every field: a default
                        // fills a field only when a reader resolves data
                        // written with an older schema, never in decoding
                        // (Java's JsonDecoder: "Expected field name not found").
                        match node.member(&field.name) {
                            Some(v) => self.check(&field.schema, v, path, out, depth + 1),
                            None => out.push(ValidationFailure {
                                instance_path: path[..len].to_string(),
                                schema_path: String::new(),
                                keyword: "required".into(),
                                message: match &field.default {
                                    Some(_) => format!(
                                        "field {:?} of record {} is missing; Avro's JSON encoding has every field (its default is for schema resolution, not for data)",
                                        field.name, r.name
                                    ),
                                    None => format!(
                                        "field {:?} of record {} is missing",
                                        field.name, r.name
                                    ),
                                },
                            }),
                        }
                        path.truncate(len);
                    }
                    for (k, _) in members.members() {
                        if !r.lookup.contains_key(k) {
                            out.push(ValidationFailure {
                                instance_path: path.clone(),
                                schema_path: String::new(),
                                keyword: "fields".into(),
                                message: format!("{k:?} is not a field of record {}", r.name),
                            });
                        }
                    }
                }
                None => fail(
                    "type",
                    format!("{} is not a record {} (an object)", describe(&node), r.name),
                ),
            },
            Schema::Union(u) => self.check_union(u, node, path, out, depth),
            Schema::Ref { name } => match self.names.get(name) {
                Some(s) => self.check(s, node, path, out, depth + 1),
                None => fail("type", format!("unknown named type {name}")),
            },
        }
    }

    fn check_union(
        &self,
        u: &UnionSchema,
        node: Node<'_>,
        path: &mut String,
        out: &mut Vec<ValidationFailure>,
        depth: usize,
    ) {
        use jsonschema::json::{Node as _, Object as _};
        let names: Vec<String> = u.variants().iter().map(branch_name).collect();
        if node.is_null() {
            if !u.variants().iter().any(|s| matches!(s, Schema::Null)) {
                out.push(ValidationFailure {
                    instance_path: path.clone(),
                    schema_path: String::new(),
                    keyword: "union".into(),
                    message: format!("null is not allowed by the union [{}]", names.join(", ")),
                });
            }
            return;
        }
        let single = node.as_object().and_then(|o| {
            let mut members = o.members();
            match (members.next(), members.next()) {
                (Some(m), None) => Some(m),
                _ => None,
            }
        });
        let Some((branch, value)) = single else {
            out.push(ValidationFailure {
                instance_path: path.clone(),
                schema_path: String::new(),
                keyword: "union".into(),
                message: format!(
                    "a union value is null or an object with one member naming its branch, one of [{}], as in {{\"{}\": …}}",
                    names.join(", "),
                    names.iter().find(|n| *n != "null").map(String::as_str).unwrap_or("string")
                ),
            });
            return;
        };
        match names.iter().position(|n| n == branch) {
            Some(i) => {
                let len = path.len();
                path.push('/');
                push_pointer(path, branch);
                self.check(&u.variants()[i], value, path, out, depth + 1);
                path.truncate(len);
            }
            None => out.push(ValidationFailure {
                instance_path: path.clone(),
                schema_path: String::new(),
                keyword: "union".into(),
                message: format!(
                    "{branch:?} is not a branch of the union [{}]",
                    names.join(", ")
                ),
            }),
        }
    }
}

/// The name a union branch goes by in the JSON encoding: the type name,
/// or a named type's full name; logical types go by their underlying type.
pub fn branch_name(schema: &Schema) -> String {
    match schema {
        Schema::Null => "null".into(),
        Schema::Boolean => "boolean".into(),
        Schema::Int | Schema::Date | Schema::TimeMillis => "int".into(),
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => "long".into(),
        Schema::Float => "float".into(),
        Schema::Double => "double".into(),
        Schema::Bytes | Schema::BigDecimal => "bytes".into(),
        Schema::String => "string".into(),
        Schema::Uuid(apache_avro::schema::UuidSchema::String) => "string".into(),
        Schema::Uuid(apache_avro::schema::UuidSchema::Bytes) => "bytes".into(),
        Schema::Uuid(apache_avro::schema::UuidSchema::Fixed(f)) => f.name.fullname(None),
        Schema::Array(_) => "array".into(),
        Schema::Map(_) => "map".into(),
        Schema::Union(_) => "union".into(),
        Schema::Record(r) => r.name.fullname(None),
        Schema::Enum(e) => e.name.fullname(None),
        Schema::Fixed(f) | Schema::Duration(f) => f.name.fullname(None),
        Schema::Decimal(d) => match &d.inner {
            apache_avro::schema::InnerDecimalSchema::Fixed(f) => f.name.fullname(None),
            _ => "bytes".into(),
        },
        Schema::Ref { name } => name.fullname(None),
    }
}

/// The strings that stand for a float or double's non-finite values, as
/// Java's JsonDecoder reads them (Jackson writes the first three).
const NON_FINITE: &[&str] = &["NaN", "Infinity", "-Infinity", "INF", "-INF"];

fn logical(schema: &Schema) -> &'static str {
    match schema {
        Schema::Date => " for a date",
        Schema::TimeMillis => " for a time-millis",
        Schema::TimeMicros => " for a time-micros",
        Schema::TimestampMillis | Schema::LocalTimestampMillis => {
            " for a timestamp in milliseconds"
        }
        Schema::TimestampMicros | Schema::LocalTimestampMicros => {
            " for a timestamp in microseconds"
        }
        Schema::TimestampNanos | Schema::LocalTimestampNanos => " for a timestamp in nanoseconds",
        _ => "",
    }
}

/// Bytes in the JSON encoding: a string whose code points are 0–255, one byte each.
fn byte_len(node: &Node<'_>) -> Option<usize> {
    let s = node.str()?;
    let mut n = 0;
    for c in s.chars() {
        if c as u32 > 255 {
            return None;
        }
        n += 1;
    }
    Some(n)
}

fn push_pointer(path: &mut String, token: &str) {
    for c in token.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::tape::Doc;

    const HEALTH: &str = r#"{
      "type": "record", "name": "HealthCheck", "namespace": "com.plum",
      "fields": [
        {"name": "machine", "type": {"type": "record", "name": "Machine", "fields": [
            {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
            {"name": "tags", "type": {"type": "map", "values": "string"}, "default": {}}]}},
        {"name": "time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["OK", "DEGRADED", "DOWN"]}},
        {"name": "load", "type": {"type": "array", "items": "float"}},
        {"name": "note", "type": ["null", "string"], "default": null},
        {"name": "checksum", "type": {"type": "fixed", "name": "Sum", "size": 4}},
        {"name": "previous", "type": ["null", "Status"], "default": null}
      ]}"#;

    fn errors(text: &str) -> Vec<String> {
        let key = IgluUri::parse("iglu:com.plum/health_check/avro/1-0-0").unwrap();
        let v = AvroValidator::compile(HEALTH, &key).unwrap();
        let mut doc = Doc::default();
        let view = doc.parse(text.as_bytes()).unwrap();
        let errs = v.errors(view.root());
        assert_eq!(v.is_valid(view.root()), errs.is_empty());
        errs.into_iter()
            .map(|e| format!("{} {}", e.instance_path, e.keyword))
            .collect()
    }

    #[test]
    fn accepts_the_json_encoding() {
        let ok = r#"{"machine":{"id":"5b0b4f0e-8d0a-4a8e-9d6e-2f7f1e7b8c11","tags":{}},"time":1700000000000,"status":"OK",
            "load":[0.5,1],"note":{"string":"fine"},"checksum":"\u0000\u00ff\u0001a","previous":{"com.plum.Status":"DOWN"}}"#;
        assert_eq!(errors(ok), Vec::<String>::new());
        let ok_null = r#"{"machine":{"id":"5b0b4f0e-8d0a-4a8e-9d6e-2f7f1e7b8c11","tags":{"a":"b"}},"time":1,"status":"DOWN",
            "load":[1.0,"NaN","-Infinity"],"note":null,"checksum":"abcd","previous":null}"#;
        assert_eq!(errors(ok_null), Vec::<String>::new());
        let whole = r#"{"machine":{"id":"5b0b4f0e-8d0a-4a8e-9d6e-2f7f1e7b8c11","tags":{}},"time":1.7e12,"status":"OK",
            "load":[],"note":null,"checksum":"abcd","previous":null}"#;
        assert_eq!(errors(whole), Vec::<String>::new());
    }

    #[test]
    fn reports_every_error_with_its_path() {
        let bad = r#"{"machine":{"id":"nope","tags":{"a":1}},"time":1.5,"status":"MAYBE",
            "load":["x"],"note":"bare","checksum":"abc","previous":{"Other":"OK"},"extra":true}"#;
        assert_eq!(
            errors(bad),
            [
                "/machine/id logicalType",
                "/machine/tags/a type",
                "/time type",
                "/status symbols",
                "/load/0 type",
                "/note union",
                "/checksum size",
                "/previous union",
                " fields"
            ]
        );
        assert_eq!(
            errors(r#"{"time":1}"#)
                .iter()
                .filter(|e| e.ends_with("required"))
                .count(),
            6
        );
        let time = |t: &str| {
            errors(&format!(
                r#"{{"machine":{{"id":"5b0b4f0e-8d0a-4a8e-9d6e-2f7f1e7b8c11","tags":{{}}}},"time":{t},"status":"OK","load":[],"note":null,"checksum":"abcd","previous":null}}"#
            ))
        };
        assert_eq!(time("1.5"), ["/time type"]);
        assert_eq!(time("9.3e18"), ["/time type"]);
        assert_eq!(time("\"NaN\""), ["/time type"]);
        assert_eq!(time("9223372036854775807"), Vec::<String>::new());
        assert_eq!(errors("[1]"), [" type"]);
    }

    #[test]
    fn bad_avro_schemas_are_refused() {
        let key = IgluUri::parse("iglu:com.plum/x/avro/1-0-0").unwrap();
        assert!(AvroValidator::compile(
            r#"{"type":"record","name":"X","fields":[{"name":"a","type":"Nope"}]}"#,
            &key
        )
        .is_err());
        assert!(AvroValidator::compile("{", &key).is_err());
        let wrong_self = r#"{"type":"record","name":"X","fields":[],"self":{"vendor":"com.plum","name":"y","format":"avro","version":"1-0-0"}}"#;
        assert!(AvroValidator::compile(wrong_self, &key).is_err());
    }
}
