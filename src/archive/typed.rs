//! Events typed by their own Avro schema: data in Avro's JSON encoding
//! (as `validate` checks it) converted to Avro values, encoded by
//! apache-avro, and written back to the same JSON encoding on replay.
//!
//! Writing back is canonical: compact, record fields in schema order, map
//! keys sorted, numbers as serde_json writes them. An event whose bytes are
//! exactly `{"schema":URI,"data":CANONICAL}` is stored as its typed data
//! alone; any other keeps its input too, so replay is always byte for byte.

use std::collections::HashMap;

use apache_avro::schema::{Name, Schema};
use apache_avro::types::Value;
use serde_json::Value as Json;

use crate::schema::avro::branch_name;

/// Named types of a schema, for following references.
pub type Names = HashMap<Name, &'static Schema>;

/// One event schema ready for typed files. Schemas are few and live for
/// the run, so they are leaked to give the encoder its `'static` borrow.
pub struct Typed {
    /// The event's own schema.
    pub schema: &'static Schema,
    /// Its named types.
    pub names: Names,
    /// The event schema's JSON text (without Iglu's `self`).
    pub data_text: String,
    /// The typed envelope's schema text for file headers.
    pub envelope_text: String,
    writer: apache_avro::writer::datum::GenericDatumWriter<'static>,
    reader: apache_avro::reader::datum::GenericDatumReader<'static>,
}

impl Typed {
    /// Prepares `text`, an event's Avro schema from the registry.
    pub fn new(text: &str) -> Result<Typed, String> {
        let mut value: Json =
            serde_json::from_str(text).map_err(|e| format!("is not JSON: {e}"))?;
        if let Some(o) = value.as_object_mut() {
            o.remove("self");
        }
        let schema =
            Schema::parse(&value).map_err(|e| format!("is not a valid Avro schema: {e}"))?;
        let schema: &'static Schema = Box::leak(Box::new(schema));
        let names = names_of(schema)?;
        let writer = apache_avro::writer::datum::GenericDatumWriter::builder(schema)
            .validate(false)
            .build()
            .map_err(|e| format!("cannot encode with it: {e}"))?;
        let reader = apache_avro::reader::datum::GenericDatumReader::builder(schema)
            .build()
            .map_err(|e| format!("cannot decode with it: {e}"))?;
        Ok(Typed {
            reader,
            schema,
            names,
            data_text: value.to_string(),
            envelope_text: super::avro::typed_schema(&value),
            writer,
        })
    }

    /// Converts valid data to an Avro value.
    pub fn convert(&self, data: &Json) -> Result<Value, String> {
        convert(data, self.schema, &self.names, 0)
    }

    /// Appends the binary encoding of `value`.
    pub fn encode(&self, value: &Value, out: &mut Vec<u8>) -> Result<(), String> {
        self.writer
            .write_value_ref(out, value)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Decodes one datum from the front of `bytes`, moving past it.
    pub fn decode(&self, bytes: &mut &[u8]) -> Result<Value, String> {
        self.reader.read_value(bytes).map_err(|e| e.to_string())
    }

    /// Writes `value` in the canonical JSON encoding; `Err` for a value it
    /// cannot write back exactly.
    pub fn render(&self, value: &Value, out: &mut Vec<u8>) -> Result<(), ()> {
        render(value, self.schema, &self.names, out, 0)
    }
}

/// The named types of a parsed schema, with `'static` borrows.
pub fn names_of(schema: &'static Schema) -> Result<Names, String> {
    let resolved = apache_avro::schema::ResolvedSchema::try_from(schema)
        .map_err(|e| format!("has unresolved names: {e}"))?;
    Ok(resolved
        .get_names()
        .iter()
        .map(|(n, s)| (n.clone(), *s))
        .collect())
}

const MAX_DEPTH: usize = 128;

fn resolve<'a>(schema: &'a Schema, names: &'a Names) -> Result<&'a Schema, String> {
    match schema {
        Schema::Ref { name } => names
            .get(name)
            .copied()
            .ok_or_else(|| format!("unknown named type {name}")),
        s => Ok(s),
    }
}

fn code_point_bytes(s: &str) -> Result<Vec<u8>, String> {
    s.chars()
        .map(|c| {
            u8::try_from(u32::from(c)).map_err(|_| "a code point over 255 in bytes".to_string())
        })
        .collect()
}

fn convert(j: &Json, schema: &Schema, names: &Names, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("nested too deep".into());
    }
    let schema = resolve(schema, names)?;
    let int = |j: &Json| j.as_i64().ok_or_else(|| format!("{j} is not an integer"));
    Ok(match schema {
        Schema::Null => Value::Null,
        Schema::Boolean => Value::Boolean(j.as_bool().ok_or("not a boolean")?),
        Schema::Int => Value::Int(i32::try_from(int(j)?).map_err(|e| e.to_string())?),
        Schema::Date => Value::Date(i32::try_from(int(j)?).map_err(|e| e.to_string())?),
        Schema::TimeMillis => Value::TimeMillis(i32::try_from(int(j)?).map_err(|e| e.to_string())?),
        Schema::Long => Value::Long(int(j)?),
        Schema::TimeMicros => Value::TimeMicros(int(j)?),
        Schema::TimestampMillis => Value::TimestampMillis(int(j)?),
        Schema::TimestampMicros => Value::TimestampMicros(int(j)?),
        Schema::TimestampNanos => Value::TimestampNanos(int(j)?),
        Schema::LocalTimestampMillis => Value::LocalTimestampMillis(int(j)?),
        Schema::LocalTimestampMicros => Value::LocalTimestampMicros(int(j)?),
        Schema::LocalTimestampNanos => Value::LocalTimestampNanos(int(j)?),
        Schema::Float => Value::Float(j.as_f64().ok_or("not a number")? as f32),
        Schema::Double => Value::Double(j.as_f64().ok_or("not a number")?),
        Schema::String => Value::String(j.as_str().ok_or("not a string")?.to_string()),
        Schema::Uuid(apache_avro::schema::UuidSchema::String) => {
            let s = j.as_str().ok_or("not a string")?;
            Value::Uuid(s.parse().map_err(|e| format!("{s:?} is not a uuid: {e}"))?)
        }
        Schema::Bytes => Value::Bytes(code_point_bytes(j.as_str().ok_or("not a string")?)?),
        Schema::Fixed(f) => {
            Value::Fixed(f.size, code_point_bytes(j.as_str().ok_or("not a string")?)?)
        }
        Schema::Enum(e) => {
            let s = j.as_str().ok_or("not a string")?;
            let i = e
                .symbols
                .iter()
                .position(|x| x == s)
                .ok_or_else(|| format!("{s:?} is not a symbol of {}", e.name))?;
            Value::Enum(i as u32, s.to_string())
        }
        Schema::Array(a) => Value::Array(
            j.as_array()
                .ok_or("not an array")?
                .iter()
                .map(|x| convert(x, &a.items, names, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Schema::Map(m) => Value::Map(
            j.as_object()
                .ok_or("not an object")?
                .iter()
                .map(|(k, v)| Ok((k.clone(), convert(v, &m.types, names, depth + 1)?)))
                .collect::<Result<_, String>>()?,
        ),
        Schema::Record(r) => {
            let o = j.as_object().ok_or("not an object")?;
            let mut fields = Vec::with_capacity(r.fields.len());
            for f in &r.fields {
                let v = match (o.get(&f.name), &f.default) {
                    (Some(v), _) => convert(v, &f.schema, names, depth + 1)?,
                    (None, Some(d)) => convert_default(d, &f.schema, names, depth + 1)?,
                    (None, None) => return Err(format!("field {:?} is missing", f.name)),
                };
                fields.push((f.name.clone(), v));
            }
            Value::Record(fields)
        }
        Schema::Union(u) => {
            if j.is_null() {
                let i = u
                    .variants()
                    .iter()
                    .position(|s| matches!(s, Schema::Null))
                    .ok_or("null is not in the union")?;
                Value::Union(i as u32, Box::new(Value::Null))
            } else {
                let o = j
                    .as_object()
                    .filter(|o| o.len() == 1)
                    .ok_or("not a union value")?;
                let (branch, v) = o.iter().next().expect("one member");
                let i = u
                    .variants()
                    .iter()
                    .position(|s| &branch_name(s) == branch)
                    .ok_or_else(|| format!("{branch:?} is not a branch"))?;
                Value::Union(
                    i as u32,
                    Box::new(convert(v, &u.variants()[i], names, depth + 1)?),
                )
            }
        }
        other => return Err(format!("the type {other:?} is not archived typed")),
    })
}

/// A record field's default is in the plain JSON of the branch it names
/// (the first of a union), not the tagged encoding.
fn convert_default(
    d: &Json,
    schema: &Schema,
    names: &Names,
    depth: usize,
) -> Result<Value, String> {
    match resolve(schema, names)? {
        Schema::Union(u) => {
            let first = u.variants().first().ok_or("an empty union")?;
            Ok(Value::Union(
                0,
                Box::new(convert_default(d, first, names, depth + 1)?),
            ))
        }
        s => convert(d, s, names, depth),
    }
}

fn push_json_str(out: &mut Vec<u8>, s: &str) {
    crate::json::push_str(out, s);
}

fn push_code_points(out: &mut Vec<u8>, b: &[u8]) {
    let s: String = b.iter().map(|&c| char::from(c)).collect();
    push_json_str(out, &s);
}

fn push_float(out: &mut Vec<u8>, f: f64) -> Result<(), ()> {
    if !f.is_finite() {
        return Err(());
    }
    serde_json::to_writer(&mut *out, &f).map_err(|_| ())
}

fn render(
    v: &Value,
    schema: &Schema,
    names: &Names,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), ()> {
    if depth > MAX_DEPTH {
        return Err(());
    }
    let schema = resolve(schema, names).map_err(|_| ())?;
    let mut int = |n: i64| out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    match (v, schema) {
        (Value::Null, _) => out.extend_from_slice(b"null"),
        (Value::Boolean(b), _) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        (Value::Int(n) | Value::Date(n) | Value::TimeMillis(n), _) => int(i64::from(*n)),
        (
            Value::Long(n)
            | Value::TimeMicros(n)
            | Value::TimestampMillis(n)
            | Value::TimestampMicros(n)
            | Value::TimestampNanos(n)
            | Value::LocalTimestampMillis(n)
            | Value::LocalTimestampMicros(n)
            | Value::LocalTimestampNanos(n),
            _,
        ) => int(*n),
        (Value::Float(f), _) => {
            if !f.is_finite() {
                return Err(());
            }
            serde_json::to_writer(&mut *out, f).map_err(|_| ())?
        }
        (Value::Double(f), _) => push_float(out, *f)?,
        (Value::String(s), _) => push_json_str(out, s),
        (Value::Uuid(u), _) => push_json_str(out, &u.hyphenated().to_string()),
        (Value::Bytes(b), _) | (Value::Fixed(_, b), _) => push_code_points(out, b),
        (Value::Enum(_, s), _) => push_json_str(out, s),
        (Value::Array(items), Schema::Array(a)) => {
            out.push(b'[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                render(x, &a.items, names, out, depth + 1)?;
            }
            out.push(b']');
        }
        (Value::Map(m), Schema::Map(ms)) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_json_str(out, k);
                out.push(b':');
                render(&m[k], &ms.types, names, out, depth + 1)?;
            }
            out.push(b'}');
        }
        (Value::Record(fields), Schema::Record(r)) => {
            out.push(b'{');
            for (i, ((name, x), f)) in fields.iter().zip(&r.fields).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_json_str(out, name);
                out.push(b':');
                render(x, &f.schema, names, out, depth + 1)?;
            }
            out.push(b'}');
        }
        (Value::Union(i, x), Schema::Union(u)) => {
            let branch = u.variants().get(*i as usize).ok_or(())?;
            if matches!(**x, Value::Null) {
                out.extend_from_slice(b"null");
            } else {
                out.push(b'{');
                push_json_str(out, &branch_name(branch));
                out.push(b':');
                render(x, branch, names, out, depth + 1)?;
                out.push(b'}');
            }
        }
        _ => return Err(()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEALTH: &str = include_str!("../../examples/schemas/com.plum/health_check/avro/1-0-0");

    fn decode(t: &Typed, bytes: &[u8]) -> Value {
        apache_avro::reader::datum::GenericDatumReader::builder(t.schema)
            .build()
            .unwrap()
            .read_value(&mut &bytes[..])
            .unwrap()
    }

    #[test]
    fn canonical_data_round_trips_through_binary() {
        let t = Typed::new(HEALTH).unwrap();
        for data in [
            r#"{"machine":{"id":"0f8c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b","factory":"Tilburg","ipAddress":{"string":"10.0.0.1"}},"status":"DEGRADED","temperatureC":{"double":71.5},"checkedAt":1764230400000,"readings":{"fan":1.25,"rpm":3000.0},"alarms":["fan","heat"]}"#,
            r#"{"machine":{"id":"0f8c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b","factory":"T","ipAddress":null},"status":"OK","temperatureC":null,"checkedAt":0,"readings":{},"alarms":[]}"#,
        ] {
            let json: Json = serde_json::from_str(data).unwrap();
            let v = t.convert(&json).unwrap();
            let mut rendered = Vec::new();
            t.render(&v, &mut rendered).unwrap();
            assert_eq!(String::from_utf8(rendered.clone()).unwrap(), data);
            let mut bin = Vec::new();
            t.encode(&v, &mut bin).unwrap();
            let mut again = Vec::new();
            t.render(&decode(&t, &bin), &mut again).unwrap();
            assert_eq!(again, rendered);
        }
    }

    #[test]
    fn defaults_fill_missing_fields() {
        let t = Typed::new(HEALTH).unwrap();
        let json: Json = serde_json::from_str(
            r#"{"machine":{"id":"0f8c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b","factory":"T"},"status":"OK","checkedAt":5}"#,
        )
        .unwrap();
        let v = t.convert(&json).unwrap();
        let mut out = Vec::new();
        t.render(&v, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"machine":{"id":"0f8c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b","factory":"T","ipAddress":null},"status":"OK","temperatureC":null,"checkedAt":5,"readings":{},"alarms":[]}"#
        );
    }
}
