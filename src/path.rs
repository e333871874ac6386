//! Field paths in jq syntax (`.data.shopper.id`, `.items[0].sku`,
//! `.["odd key"]`), evaluated on parsed values; [`crate::json`] evaluates
//! them straight on raw JSON bytes.

use std::fmt;

use anyhow::{bail, Result};
use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// `.name` or `.["name"]`: a member of an object.
    Field(String),
    /// `[n]`: an element of an array, from the front.
    Index(usize),
}

/// A parsed jq-style path. `.` alone is the whole value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    segments: Vec<Segment>,
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for FieldPath {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        FieldPath::parse(s)
    }
}

impl FieldPath {
    /// Parses `.a.b[0]."c d".["e"]`; says where a path goes wrong.
    pub fn parse(text: &str) -> Result<Self> {
        let bytes = text.as_bytes();
        if bytes.first() != Some(&b'.') {
            bail!("path {text:?} must start with '.', as in .data.shopper.id");
        }
        let mut segments = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'.' => {
                    i += 1;
                    if i == bytes.len() {
                        if segments.is_empty() {
                            break;
                        }
                        bail!("path {text:?} ends with '.'; name a field after it");
                    }
                    match bytes[i] {
                        b'[' => {}
                        b'"' => {
                            let (name, next) = parse_quoted(text, i)?;
                            segments.push(Segment::Field(name));
                            i = next;
                        }
                        _ => {
                            let start = i;
                            while i < bytes.len()
                                && (bytes[i].is_ascii_alphanumeric()
                                    || bytes[i] == b'_'
                                    || bytes[i] >= 0x80)
                            {
                                i += 1;
                            }
                            if start == i {
                                bail!(
                                    "path {text:?}: unexpected {:?} at column {}",
                                    bytes[i] as char,
                                    i + 1
                                );
                            }
                            segments.push(Segment::Field(text[start..i].to_string()));
                        }
                    }
                }
                b'[' => {
                    i += 1;
                    if bytes.get(i) == Some(&b'"') {
                        let (name, next) = parse_quoted(text, i)?;
                        segments.push(Segment::Field(name));
                        i = next;
                    } else {
                        let start = i;
                        while i < bytes.len() && bytes[i].is_ascii_digit() {
                            i += 1;
                        }
                        let index = text[start..i].parse::<usize>().map_err(|_| {
                            anyhow::anyhow!(
                                "path {text:?}: expected an index (0, 1, …) or a quoted name at column {}",
                                start + 1
                            )
                        })?;
                        segments.push(Segment::Index(index));
                    }
                    if bytes.get(i) != Some(&b']') {
                        bail!("path {text:?}: expected ']' at column {}", i + 1);
                    }
                    i += 1;
                }
                other => bail!(
                    "path {text:?}: unexpected {:?} at column {}; separate fields with '.'",
                    other as char,
                    i + 1
                ),
            }
        }
        Ok(FieldPath {
            text: text.to_string(),
            segments,
        })
    }

    /// The path's steps.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The value at this path, if every step exists.
    pub fn get<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        self.segments.iter().try_fold(value, |v, seg| match seg {
            Segment::Field(name) => v.as_object()?.get(name),
            Segment::Index(i) => v.as_array()?.get(*i),
        })
    }

    /// A mutable place at this path, creating objects on the way (as jq's
    /// assignment does). `None` when a step meets a value of another kind.
    pub fn get_or_insert<'v>(&self, value: &'v mut Value) -> Option<&'v mut Value> {
        let mut v = value;
        for seg in &self.segments {
            v = match seg {
                Segment::Field(name) => {
                    if v.is_null() {
                        *v = Value::Object(Default::default());
                    }
                    v.as_object_mut()?
                        .entry(name.clone())
                        .or_insert(Value::Null)
                }
                Segment::Index(i) => v.as_array_mut()?.get_mut(*i)?,
            };
        }
        Some(v)
    }
}

fn parse_quoted(text: &str, quote_at: usize) -> Result<(String, usize)> {
    let mut de = serde_json::Deserializer::from_str(&text[quote_at..]).into_iter::<String>();
    match de.next() {
        Some(Ok(name)) => Ok((name, quote_at + de.byte_offset())),
        _ => bail!(
            "path {text:?}: unterminated quoted name at column {}",
            quote_at + 1
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> FieldPath {
        FieldPath::parse(s).unwrap()
    }

    #[test]
    fn parses_jq_paths() {
        assert_eq!(p(".").segments(), &[]);
        assert_eq!(
            p(".data.shopper.id").segments(),
            &[
                Segment::Field("data".into()),
                Segment::Field("shopper".into()),
                Segment::Field("id".into())
            ]
        );
        assert_eq!(
            p(".items[2].\"odd key\".[\"x\"]").segments(),
            &[
                Segment::Field("items".into()),
                Segment::Index(2),
                Segment::Field("odd key".into()),
                Segment::Field("x".into())
            ]
        );
        for bad in ["data", ".a..b", ".a[", ".a[x]", ".a.", ".a b", ".\"open"] {
            assert!(FieldPath::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn evaluates_on_values() {
        let v = json!({"data": {"items": [{"sku": "a"}, {"sku": "b"}]}});
        assert_eq!(p(".data.items[1].sku").get(&v), Some(&json!("b")));
        assert_eq!(p(".data.missing").get(&v), None);
        let mut v = json!({"data": {}});
        *p(".data.geo.country").get_or_insert(&mut v).unwrap() = json!("NZ");
        assert_eq!(v, json!({"data": {"geo": {"country": "NZ"}}}));
    }
}
