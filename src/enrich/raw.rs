//! Raw JSON editing: the enrichment steps read and change an event without
//! building a tree. One validating pass over the line records where each
//! top-level member is; paths are then found by a fast skipper that relies on
//! that validation, and changes are spliced into the bytes, so every field a
//! step does not touch passes through byte for byte.

use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::path::Segment;

/// Why a line is not an event the steps can work on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not valid JSON: serde_json's message with line and column.
    NotJson(String),
    /// Valid JSON but not an object.
    NotObject(&'static str),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NotJson(m) => write!(f, "not valid JSON: {m}"),
            ParseError::NotObject(k) => {
                write!(
                    f,
                    "a JSON {k}, not an object: each event must be a JSON object"
                )
            }
        }
    }
}

/// A top-level member: its key (as a range of the line when it has no
/// escapes, else decoded) and the range of its value.
#[derive(Debug, Clone)]
pub struct Member {
    key: Key,
    /// Where the member's value is in the line.
    pub value: Range<usize>,
}

#[derive(Debug, Clone)]
enum Key {
    Span(Range<usize>),
    Owned(Box<str>),
}

/// The top level of an event: the range of the whole object and of each of
/// its members' values.
#[derive(Debug, Default, Clone)]
pub struct TopLevel {
    /// The object, from `{` to `}` inclusive.
    pub object: Range<usize>,
    members: Vec<Member>,
}

impl TopLevel {
    /// Validates `line` as one JSON object and records its members.
    pub fn scan(&mut self, line: &[u8]) -> Result<(), ParseError> {
        self.members.clear();
        let mut not_object = None;
        let mut de = serde_json::Deserializer::from_slice(line);
        let seed = TopSeed {
            base: line.as_ptr() as usize,
            members: &mut self.members,
            not_object: &mut not_object,
        };
        let result = seed.deserialize(&mut de).and_then(|_| de.end());
        match (result, not_object) {
            (Ok(()), _) => {}
            (Err(_), Some(kind)) => return Err(ParseError::NotObject(kind)),
            (Err(e), None) => return Err(ParseError::NotJson(e.to_string())),
        }
        let start = skip_ws(line, 0);
        let mut end = line.len();
        while end > start && line[end - 1].is_ascii_whitespace() {
            end -= 1;
        }
        self.object = start..end;
        Ok(())
    }

    /// Records the members of `line`, which must already be known to be one
    /// valid JSON object (bytes this module wrote itself): no validation, so
    /// it is several times faster than [`TopLevel::scan`].
    pub fn scan_trusted(&mut self, line: &[u8]) {
        self.members.clear();
        let start = skip_ws(line, 0);
        let end = skip_value(line, start);
        self.object = start..end;
        let mut i = skip_ws(line, start + 1);
        while i < end && line[i] == b'"' {
            let key_end = skip_string(line, i);
            let raw = &line[i + 1..key_end - 1];
            let key = if memchr::memchr(b'\\', raw).is_none() {
                Key::Span(i + 1..key_end - 1)
            } else {
                Key::Owned(
                    serde_json::from_slice::<String>(&line[i..key_end])
                        .unwrap_or_default()
                        .into(),
                )
            };
            i = skip_ws(line, key_end);
            i = skip_ws(line, i + 1);
            let value_end = skip_value(line, i);
            self.members.push(Member {
                key,
                value: i..value_end,
            });
            i = skip_ws(line, value_end);
            if i < end && line[i] == b',' {
                i = skip_ws(line, i + 1);
            }
        }
    }

    /// The value range of the member named `name`; the last one when a key
    /// repeats, as most JSON readers do.
    pub fn get(&self, line: &[u8], name: &str) -> Option<Range<usize>> {
        self.members
            .iter()
            .rev()
            .find(|m| match &m.key {
                Key::Span(r) => &line[r.clone()] == name.as_bytes(),
                Key::Owned(k) => &**k == name,
            })
            .map(|m| m.value.clone())
    }
}

struct TopSeed<'a> {
    base: usize,
    members: &'a mut Vec<Member>,
    not_object: &'a mut Option<&'static str>,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl TopSeed<'_> {
    fn not_object<E: de::Error>(self, kind: &'static str) -> Result<(), E> {
        *self.not_object = Some(kind);
        Err(E::custom("not an object"))
    }
}

impl<'de> Visitor<'de> for TopSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed { base: self.base })? {
            let raw: &'de RawValue = map.next_value()?;
            let start = raw.get().as_ptr() as usize - self.base;
            self.members.push(Member {
                key,
                value: start..start + raw.get().len(),
            });
        }
        Ok(())
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
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

struct KeySeed {
    base: usize,
}

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key, E> {
        let start = key.as_ptr() as usize - self.base;
        Ok(Key::Span(start..start + key.len()))
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(Key::Owned(key.into()))
    }
}

/// Checks that `bytes` is exactly one JSON value (used for values a step
/// is about to splice in from outside, such as table rows).
pub fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<IgnoredAny>(bytes).is_ok()
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// The end of the string whose opening quote is at `i` (one past the
/// closing quote). The JSON must already be valid.
#[inline]
fn skip_string(b: &[u8], mut i: usize) -> usize {
    // Event strings are short: a plain loop beats a vectorized search here.
    i += 1;
    while i < b.len() {
        match b[i] {
            b'"' => return i + 1,
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    b.len()
}

/// The end of the value that starts at `i`, in valid JSON.
fn skip_value(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b'"') => skip_string(b, i),
        Some(b'{') | Some(b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            b.len()
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                j += 1;
            }
            j
        }
    }
}

/// True when the raw key (between its quotes) names `name`.
#[inline]
fn key_is(raw: &[u8], name: &str) -> bool {
    if memchr::memchr(b'\\', raw).is_none() {
        return raw == name.as_bytes();
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted).is_ok_and(|k| k == name)
}

/// The range of the member value named `name` in the object at `obj` (the
/// last one when a key repeats).
pub fn object_member(b: &[u8], obj: Range<usize>, name: &str) -> Option<Range<usize>> {
    debug_assert_eq!(b[obj.start], b'{');
    let mut i = skip_ws(b, obj.start + 1);
    let mut found = None;
    while i < obj.end && b[i] == b'"' {
        let key_end = skip_string(b, i);
        let matches = key_is(&b[i + 1..key_end - 1], name);
        i = skip_ws(b, key_end);
        i = skip_ws(b, i + 1); // the ':'
        let end = skip_value(b, i);
        if matches {
            found = Some(i..end);
        }
        i = skip_ws(b, end);
        if i < obj.end && b[i] == b',' {
            i = skip_ws(b, i + 1);
        }
    }
    found
}

/// The range of element `index` of the array at `arr`.
pub fn array_element(b: &[u8], arr: Range<usize>, index: usize) -> Option<Range<usize>> {
    let mut i = skip_ws(b, arr.start + 1);
    let mut n = 0;
    while i < arr.end && b[i] != b']' {
        let end = skip_value(b, i);
        if n == index {
            return Some(i..end);
        }
        n += 1;
        i = skip_ws(b, end);
        if i < arr.end && b[i] == b',' {
            i = skip_ws(b, i + 1);
        }
    }
    None
}

/// What is at a value's start: enough to tell its JSON type.
pub fn kind_of(b: &[u8], v: &Range<usize>) -> &'static str {
    match b.get(v.start) {
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b't') | Some(b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    }
}

/// Finds the value at `segments` below the value at `from`.
pub fn find(b: &[u8], from: Range<usize>, segments: &[Segment]) -> Option<Range<usize>> {
    let mut cur = from;
    for seg in segments {
        cur = match (seg, b.get(cur.start)) {
            (Segment::Field(name), Some(b'{')) => object_member(b, cur, name)?,
            (Segment::Index(i), Some(b'[')) => array_element(b, cur, *i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// A JSON value read from an event as a string the steps can use: a
/// string's contents (borrowed when it has no escapes), or the text of a
/// number or boolean.
pub enum Scalar<'a> {
    /// A string, number or boolean, as text.
    Text(std::borrow::Cow<'a, str>),
    /// `null`, or no value at all.
    Missing,
    /// An object or array (named by its kind).
    Compound(&'static str),
}

/// Reads the value at `v` as a [`Scalar`].
pub fn scalar(b: &[u8], v: Option<Range<usize>>) -> Scalar<'_> {
    let Some(v) = v else { return Scalar::Missing };
    let raw = &b[v.clone()];
    match raw.first() {
        Some(b'"') => {
            let inner = &raw[1..raw.len() - 1];
            if memchr::memchr(b'\\', inner).is_none() {
                // Validated as JSON already, so this is UTF-8.
                match std::str::from_utf8(inner) {
                    Ok(s) => Scalar::Text(s.into()),
                    Err(_) => Scalar::Missing,
                }
            } else {
                match serde_json::from_slice::<String>(raw) {
                    Ok(s) => Scalar::Text(s.into()),
                    Err(_) => Scalar::Missing,
                }
            }
        }
        Some(b'n') => Scalar::Missing,
        Some(b'{') => Scalar::Compound("object"),
        Some(b'[') => Scalar::Compound("array"),
        _ => Scalar::Text(String::from_utf8_lossy(raw)),
    }
}

/// Where a value can be written at a path: replace an existing value, or
/// insert a member (with the remaining path wrapped around the value) into
/// the deepest object that exists.
#[derive(Debug, PartialEq, Eq)]
pub enum SetPoint<'p> {
    /// Replace the bytes in the range with the value wrapped in `wrap`.
    Replace {
        /// The value to replace.
        at: Range<usize>,
        /// Names to wrap the value in (outermost first): `{"a":{"b":V}}`.
        wrap: &'p [Segment],
    },
    /// Insert `"name":` + wrapped value into the object at `object`.
    Insert {
        /// The object to insert into.
        object: Range<usize>,
        /// The member name.
        name: &'p str,
        /// Names to wrap the value in below `name`.
        wrap: &'p [Segment],
    },
}

/// Finds where to write `segments` below the value at `from`, creating
/// objects on the way as jq's assignment does (null becomes an object).
pub fn set_point<'p>(
    b: &[u8],
    from: Range<usize>,
    segments: &'p [Segment],
) -> Result<SetPoint<'p>, String> {
    let mut cur = from;
    for (i, seg) in segments.iter().enumerate() {
        let next = match (seg, b.get(cur.start)) {
            (Segment::Field(name), Some(b'{')) => match object_member(b, cur.clone(), name) {
                Some(v) => v,
                None => {
                    check_wrappable(&segments[i + 1..])?;
                    return Ok(SetPoint::Insert {
                        object: cur,
                        name,
                        wrap: &segments[i + 1..],
                    });
                }
            },
            (Segment::Field(_), Some(b'n')) => {
                check_wrappable(&segments[i..])?;
                return Ok(SetPoint::Replace {
                    at: cur,
                    wrap: &segments[i..],
                });
            }
            (Segment::Index(n), Some(b'[')) => {
                array_element(b, cur, *n).ok_or_else(|| format!("the array has no element {n}"))?
            }
            (Segment::Field(name), _) => {
                return Err(format!("cannot add {name:?} to a {}", kind_of(b, &cur)))
            }
            (Segment::Index(n), _) => {
                return Err(format!("cannot index a {} with [{n}]", kind_of(b, &cur)))
            }
        };
        cur = next;
    }
    Ok(SetPoint::Replace { at: cur, wrap: &[] })
}

fn check_wrappable(rest: &[Segment]) -> Result<(), String> {
    match rest.iter().find(|s| matches!(s, Segment::Index(_))) {
        Some(Segment::Index(n)) => Err(format!("cannot create array element [{n}]")),
        _ => Ok(()),
    }
}

/// Appends a JSON string.
#[inline]
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// Writes `value` wrapped in objects named by `wrap` into `out`.
pub fn push_wrapped(out: &mut Vec<u8>, wrap: &[Segment], value: &[u8]) {
    for seg in wrap {
        if let Segment::Field(name) = seg {
            out.push(b'{');
            push_str(out, name);
            out.push(b':');
        }
    }
    out.extend_from_slice(value);
    for _ in wrap {
        out.push(b'}');
    }
}

/// Applies a [`SetPoint`] to `src`, writing the edited event to `dst`.
pub fn apply_set(src: &[u8], point: &SetPoint<'_>, value: &[u8], dst: &mut Vec<u8>) {
    dst.clear();
    match point {
        SetPoint::Replace { at, wrap } => {
            dst.extend_from_slice(&src[..at.start]);
            push_wrapped(dst, wrap, value);
            dst.extend_from_slice(&src[at.end..]);
        }
        SetPoint::Insert { object, name, wrap } => {
            let close = object.end - 1;
            let empty = src[object.start + 1..close]
                .iter()
                .all(u8::is_ascii_whitespace);
            dst.extend_from_slice(&src[..close]);
            if !empty {
                dst.push(b',');
            }
            push_str(dst, name);
            dst.push(b':');
            push_wrapped(dst, wrap, value);
            dst.extend_from_slice(&src[close..]);
        }
    }
}

/// Appends `items` (already comma-separated JSON values) to the array at
/// `arr` in `src`, writing the result to `dst`.
pub fn append_to_array(src: &[u8], arr: Range<usize>, items: &[u8], dst: &mut Vec<u8>) {
    let close = arr.end - 1;
    let empty = src[arr.start + 1..close]
        .iter()
        .all(u8::is_ascii_whitespace);
    dst.extend_from_slice(&src[..close]);
    if !empty {
        dst.push(b',');
    }
    dst.extend_from_slice(items);
    dst.extend_from_slice(&src[close..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::FieldPath;

    fn segs(p: &str) -> Vec<Segment> {
        FieldPath::parse(p).unwrap().segments().to_vec()
    }

    fn get<'a>(line: &'a [u8], path: &str) -> Option<&'a str> {
        let mut top = TopLevel::default();
        top.scan(line).unwrap();
        find(line, top.object.clone(), &segs(path)).map(|r| std::str::from_utf8(&line[r]).unwrap())
    }

    #[test]
    fn scans_top_level_members() {
        let line = br#" {"schema":"s", "d\u0061ta" : {"a":[1,{"b":"x\"}"}]}, "n":-1.5e3 } "#;
        let mut top = TopLevel::default();
        top.scan(line).unwrap();
        assert_eq!(&line[top.get(line, "schema").unwrap()], br#""s""#);
        assert_eq!(
            &line[top.get(line, "data").unwrap()],
            br#"{"a":[1,{"b":"x\"}"}]}"#
        );
        assert_eq!(&line[top.get(line, "n").unwrap()], b"-1.5e3");
        assert_eq!(line[top.object.start], b'{');
        assert_eq!(line[top.object.end - 1], b'}');
        assert!(top.get(line, "nope").is_none());
    }

    #[test]
    fn trusted_scan_agrees_with_validating_scan() {
        let line = br#"{"schema":"s", "d\u0061ta" : {"a":[1,{"b":"x\"}"}]}, "n":-1.5e3,"e":{} }"#;
        let (mut a, mut b) = (TopLevel::default(), TopLevel::default());
        a.scan(line).unwrap();
        b.scan_trusted(line);
        assert_eq!(a.object, b.object);
        for k in ["schema", "data", "n", "e", "zz"] {
            assert_eq!(a.get(line, k), b.get(line, k), "{k}");
        }
    }

    #[test]
    fn refuses_bad_lines() {
        let mut top = TopLevel::default();
        assert_eq!(top.scan(b"[1]"), Err(ParseError::NotObject("array")));
        assert_eq!(top.scan(b"3"), Err(ParseError::NotObject("number")));
        assert!(matches!(top.scan(b"{\"a\":}"), Err(ParseError::NotJson(_))));
        assert!(matches!(top.scan(b"{} {}"), Err(ParseError::NotJson(_))));
        assert!(matches!(top.scan(b""), Err(ParseError::NotJson(_))));
    }

    #[test]
    fn finds_paths_in_raw_json() {
        let line = br#"{"data":{"s":{"ip":"1.2.3.4","k\"q":7},"list":[{"x":1},{"x":"two"}],"e":{}},"data2":null}"#;
        assert_eq!(get(line, ".data.s.ip"), Some(r#""1.2.3.4""#));
        assert_eq!(get(line, ".data.s[\"k\\\"q\"]"), Some("7"));
        assert_eq!(get(line, ".data.list[1].x"), Some(r#""two""#));
        assert_eq!(get(line, ".data.list[2]"), None);
        assert_eq!(get(line, ".data.e.x"), None);
        assert_eq!(get(line, ".data.s.ip.x"), None);
        assert_eq!(get(line, ".data2.x"), None);
        assert_eq!(get(line, "."), Some(std::str::from_utf8(line).unwrap()));
    }

    #[test]
    fn later_duplicate_keys_win() {
        let line = br#"{"data":{"a":1,"a":2}}"#;
        assert_eq!(get(line, ".data.a"), Some("2"));
    }

    fn set(line: &str, path: &str, value: &str) -> Result<String, String> {
        let b = line.as_bytes();
        let mut top = TopLevel::default();
        top.scan(b).unwrap();
        let s = segs(path);
        let point = set_point(b, top.object.clone(), &s)?;
        let mut out = Vec::new();
        apply_set(b, &point, value.as_bytes(), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(is_json(text.as_bytes()), "{text}");
        Ok(text)
    }

    #[test]
    fn sets_paths_in_raw_json() {
        assert_eq!(
            set(r#"{"data":{"a":1}}"#, ".data.a", "2").unwrap(),
            r#"{"data":{"a":2}}"#
        );
        assert_eq!(
            set(r#"{"data":{"a":1}}"#, ".data.b", "2").unwrap(),
            r#"{"data":{"a":1,"b":2}}"#
        );
        assert_eq!(
            set(r#"{"data":{ }}"#, ".data.b.c", "2").unwrap(),
            r#"{"data":{ "b":{"c":2}}}"#
        );
        assert_eq!(
            set(r#"{"data":null}"#, ".data.b.c", "2").unwrap(),
            r#"{"data":{"b":{"c":2}}}"#
        );
        assert_eq!(
            set(r#"{"x":[0,{"y":1}]}"#, ".x[1].z", "true").unwrap(),
            r#"{"x":[0,{"y":1,"z":true}]}"#
        );
        assert_eq!(set(r#"{}"#, ".geo", "{}").unwrap(), r#"{"geo":{}}"#);
        assert!(set(r#"{"data":"text"}"#, ".data.b", "1").is_err());
        assert!(set(r#"{"data":[]}"#, ".data[3]", "1").is_err());
        assert!(set(r#"{"data":{}}"#, ".data.a[0]", "1").is_err());
    }

    #[test]
    fn appends_to_arrays() {
        let src = br#"{"c":[ ],"d":[1]}"#;
        let mut top = TopLevel::default();
        top.scan(src).unwrap();
        let mut out = Vec::new();
        append_to_array(src, top.get(src, "c").unwrap(), b"9", &mut out);
        assert_eq!(out, br#"{"c":[ 9],"d":[1]}"#);
        out.clear();
        append_to_array(src, top.get(src, "d").unwrap(), b"8,9", &mut out);
        assert_eq!(out, br#"{"c":[ ],"d":[1,8,9]}"#);
    }

    #[test]
    fn reads_scalars() {
        let line = br#"{"a":"x\ty","b":12,"c":null,"d":{"e":1},"f":"plain"}"#;
        let mut top = TopLevel::default();
        top.scan(line).unwrap();
        let text = |k| match scalar(line, top.get(line, k)) {
            Scalar::Text(t) => format!("text:{t}"),
            Scalar::Missing => "missing".into(),
            Scalar::Compound(k) => format!("compound:{k}"),
        };
        assert_eq!(text("a"), "text:x\ty");
        assert_eq!(text("b"), "text:12");
        assert_eq!(text("c"), "missing");
        assert_eq!(text("d"), "compound:object");
        assert_eq!(text("f"), "text:plain");
        assert_eq!(text("zz"), "missing");
    }
}
