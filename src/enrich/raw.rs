//! Raw JSON editing: the enrichment steps change an event without building
//! a tree. Reading (the validating scan, paths, scalars) is
//! [`crate::json`]'s, re-exported here so the steps see raw JSON through one
//! module; changes are spliced into the bytes, so every field a step does
//! not touch passes through byte for byte.

use std::ops::Range;

use super::{Derived, Event, Flow};
use crate::event::FailureMessage;
use crate::json::object_member;
pub use crate::json::{array_element, find, kind_of, push_str, scalar, Scalar, TopLevel};
use crate::path::Segment;

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

/// The result of a step that adds one value (an id, a time): a derived
/// context whose data has a single member, `{"FIELD":VALUE}`, in a buffer
/// kept from event to event.
#[derive(Debug)]
pub struct OneMember {
    field: &'static str,
    schema: &'static str,
    text: Vec<u8>,
    value: Range<usize>,
}

impl OneMember {
    /// A context of schema `schema` with the member `field`.
    pub fn new(field: &'static str, schema: &'static str) -> Self {
        OneMember {
            field,
            schema,
            text: Vec::with_capacity(64),
            value: 0..0,
        }
    }

    /// Rewrites the member: `value` appends its JSON value.
    pub fn set(&mut self, value: impl FnOnce(&mut Vec<u8>)) {
        self.text.clear();
        self.text.push(b'{');
        push_str(&mut self.text, self.field);
        self.text.push(b':');
        let start = self.text.len();
        value(&mut self.text);
        self.value = start..self.text.len();
        self.text.push(b'}');
    }

    /// The whole object.
    pub fn text(&self) -> &[u8] {
        &self.text
    }

    /// The member's value.
    pub fn value(&self) -> &[u8] {
        &self.text[self.value.clone()]
    }

    /// Adds the context, as it was last set, to `ev` (see [`Event::derive`]).
    pub fn add_to(&self, ev: &mut Event) -> Result<Flow, Vec<FailureMessage>> {
        ev.derive(Derived {
            field: self.field,
            schema: self.schema,
            data: self.text(),
            value: self.value(),
        })
        .map_err(|e| vec![e])?;
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::FieldPath;

    fn segs(p: &str) -> Vec<Segment> {
        FieldPath::parse(p).unwrap().segments().to_vec()
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
        assert!(
            serde_json::from_str::<serde_json::Value>(&text).is_ok(),
            "{text}"
        );
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
    fn writes_one_member_objects() {
        let mut one = OneMember::new("id", "iglu:x/y/jsonschema/1-0-0");
        one.set(|out| push_str(out, "a\"b"));
        assert_eq!(one.text(), br#"{"id":"a\"b"}"#);
        assert_eq!(one.value(), br#""a\"b""#);
        one.set(|out| out.push(b'7'));
        assert_eq!((one.text(), one.value()), (&br#"{"id":7}"#[..], &b"7"[..]));
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
}
