//! Field paths in jq syntax (`.data.shopper.id`, `.items[0].sku`,
//! `.["odd key"]`), evaluated on parsed values or straight on raw JSON bytes.
//!
//! The raw scanner validates a whole line and pulls one value out of it in a
//! single pass without building a tree, which keeps `log-append --key` fast.

use std::fmt;

use anyhow::{bail, Result};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
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

/// Why a line could not be scanned as a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// Not valid JSON: serde_json's message, with line and column.
    NotJson(String),
    /// Valid JSON, but not an object (an array, a string, …).
    NotObject(&'static str),
    /// Not UTF-8: the bytes before this position are.
    NotUtf8(usize),
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanError::NotJson(m) => write!(f, "not valid JSON: {m}"),
            ScanError::NotObject(kind) => write!(
                f,
                "a JSON {kind}, not an object: each event must be a JSON object"
            ),
            ScanError::NotUtf8(at) => write!(f, "not valid UTF-8 at byte {at}"),
        }
    }
}

/// Checks that `line` is one JSON object and, when `path` is given, returns
/// the value there: a string's contents, or any other value's JSON text.
/// `Ok(None)` when the path is missing or null.
pub fn scan_object(line: &[u8], path: Option<&FieldPath>) -> Result<Option<Vec<u8>>, ScanError> {
    // serde_json skips the strings it ignores without checking their UTF-8,
    // so check the whole line first (std's check is fast on ASCII).
    let text = std::str::from_utf8(line).map_err(|e| ScanError::NotUtf8(e.valid_up_to()))?;
    let mut out = None;
    let mut found_kind = None;
    let mut de = serde_json::Deserializer::from_str(text);
    let seed = RootSeed {
        segments: path.map(|p| p.segments()).unwrap_or(&[]),
        want: path.is_some(),
        out: &mut out,
        not_object: &mut found_kind,
    };
    let result = seed.deserialize(&mut de).and_then(|_| de.end());
    match (result, found_kind) {
        (Ok(()), _) => Ok(out),
        (Err(_), Some(kind)) => Err(ScanError::NotObject(kind)),
        (Err(e), None) => Err(ScanError::NotJson(e.to_string())),
    }
}

struct RootSeed<'a, 'p> {
    segments: &'p [Segment],
    want: bool,
    out: &'a mut Option<Vec<u8>>,
    /// Set to the JSON kind found when the line is not an object.
    not_object: &'a mut Option<&'static str>,
}

impl<'de> DeserializeSeed<'de> for RootSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(RootVisitor(self))
    }
}

struct RootVisitor<'a, 'p>(RootSeed<'a, 'p>);

impl RootVisitor<'_, '_> {
    fn not_object<E: de::Error>(self, kind: &'static str) -> Result<(), E> {
        *self.0.not_object = Some(kind);
        Err(E::custom("not an object"))
    }
}

impl<'de> Visitor<'de> for RootVisitor<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let seed = self.0;
        if !seed.want {
            return IgnoredAny.visit_map(map).map(|_| ());
        }
        PathVisitor {
            segments: seed.segments,
            out: seed.out,
        }
        .visit_map(map)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        self.not_object("array")
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.not_object("string")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.not_object("boolean")
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.not_object("number")
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.not_object("number")
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.not_object("number")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.not_object("null")
    }
}

struct PathSeed<'a, 'p> {
    segments: &'p [Segment],
    out: &'a mut Option<Vec<u8>>,
}

impl<'de> DeserializeSeed<'de> for PathSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.segments.is_empty() {
            let raw: &'de serde_json::value::RawValue = de::Deserialize::deserialize(d)?;
            let text = raw.get();
            *self.out = match text.as_bytes().first() {
                Some(b'"') => serde_json::from_str::<String>(text)
                    .ok()
                    .map(String::into_bytes),
                _ if text == "null" => None,
                _ => Some(text.as_bytes().to_vec()),
            };
            return Ok(());
        }
        d.deserialize_any(PathVisitor {
            segments: self.segments,
            out: self.out,
        })
    }
}

/// Walks one level: descends into the member or element the next segment
/// names and skips everything else, which still validates it.
struct PathVisitor<'a, 'p> {
    segments: &'p [Segment],
    out: &'a mut Option<Vec<u8>>,
}

impl<'de> Visitor<'de> for PathVisitor<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (first, rest) = self.segments.split_first().expect("non-empty path");
        let name = match first {
            Segment::Field(name) => Some(name.as_str()),
            Segment::Index(_) => None,
        };
        while let Some(matches) = map.next_key_seed(KeyIs(name))? {
            if matches {
                map.next_value_seed(PathSeed {
                    segments: rest,
                    out: &mut *self.out,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (first, rest) = self.segments.split_first().expect("non-empty path");
        let wanted = match first {
            Segment::Index(i) => Some(*i),
            Segment::Field(_) => None,
        };
        let mut index = 0usize;
        loop {
            if Some(index) == wanted {
                let seed = PathSeed {
                    segments: rest,
                    out: &mut *self.out,
                };
                if seq.next_element_seed(seed)?.is_none() {
                    break;
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            index += 1;
        }
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Compares an object key with the wanted name without allocating.
struct KeyIs<'n>(Option<&'n str>);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(self.0 == Some(key))
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

    #[test]
    fn scans_raw_lines() {
        let line =
            br#"{"schema":"s","data":{"shopper":{"id":"ab\"c","n":7},"list":[1,{"k":true}]}}"#;
        assert_eq!(scan_object(line, None), Ok(None));
        assert_eq!(
            scan_object(line, Some(&p(".data.shopper.id"))),
            Ok(Some(b"ab\"c".to_vec()))
        );
        assert_eq!(
            scan_object(line, Some(&p(".data.shopper.n"))),
            Ok(Some(b"7".to_vec()))
        );
        assert_eq!(
            scan_object(line, Some(&p(".data.list[1]"))),
            Ok(Some(br#"{"k":true}"#.to_vec()))
        );
        assert_eq!(scan_object(line, Some(&p(".data.nope"))), Ok(None));
        assert_eq!(scan_object(line, Some(&p(".schema.x"))), Ok(None));
    }

    #[test]
    fn rejects_non_objects_and_bad_json() {
        assert_eq!(
            scan_object(b"[1,2]", None),
            Err(ScanError::NotObject("array"))
        );
        assert_eq!(
            scan_object(b"\"s\"", None),
            Err(ScanError::NotObject("string"))
        );
        assert_eq!(
            scan_object(b"null", None),
            Err(ScanError::NotObject("null"))
        );
        assert!(matches!(scan_object(b"", None), Err(ScanError::NotJson(_))));
        assert!(matches!(
            scan_object(b"{\"a\":1} x", None),
            Err(ScanError::NotJson(_))
        ));
        assert_eq!(
            scan_object(b"{\"a\":\"\xff\"}", None),
            Err(ScanError::NotUtf8(6))
        );
        let deep = "[".repeat(100_000);
        let line = format!("{{\"a\":{deep}");
        assert!(matches!(
            scan_object(line.as_bytes(), None),
            Err(ScanError::NotJson(_))
        ));
    }
}
