//! Raw JSON lines, read without building a tree: one validating pass checks
//! that a line is one JSON object (UTF-8, RFC 8259) and records where its
//! top-level members are, or where the value at a path is; a skipper that
//! relies on that validation then finds paths inside values.
//!
//! `log-append --key` (via [`scan_object`]) and the enrichment steps (via
//! [`TopLevel`]) read events through here, `enrich --jq` and `alert` (via
//! [`check_value`], in `jq::parse_json`) too; `validate` builds a full tape
//! instead (`schema::tape`) but shares the byte-level pieces and the rule.
//!
//! # What every tool accepts
//!
//! One rule, decided here, so that a line one tool passes on is never one
//! the next tool fails on or crashes on. An acceptable event is one JSON
//! text (RFC 8259) in UTF-8 that also:
//! - nests arrays and objects at most [`MAX_DEPTH`] deep, the event object
//!   counting as one (no reader downstream can run out of stack);
//! - has no lone surrogate escape (`"\ud800"`): a string must be Unicode
//!   text, as I-JSON (RFC 7493) requires and as UTF-8 can hold;
//! - has no number beyond a double's range (`1e400`): every reader can
//!   hold every number, though big integers keep their digits where a
//!   tool passes the bytes on. A number too small for a double (`1e-400`)
//!   is accepted; it reads as 0.
//!
//! `-0` is accepted and kept: tools that pass bytes on keep it as written,
//! and jq programs see and print `-0`, as jq does.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::path::{FieldPath, Segment};

mod grammar;

/// Why a line could not be scanned as a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// Not valid JSON: serde_json's message, with line and column.
    NotJson(String),
    /// Valid JSON, but not an object (an array, a string, …).
    NotObject(&'static str),
    /// Not UTF-8: the bytes before this position are.
    NotUtf8(usize),
    /// Valid JSON that the rule every tool applies refuses (see the module
    /// documentation): what is wrong and where.
    Refused(String),
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
            ScanError::Refused(m) => write!(f, "not an acceptable event: {m}"),
        }
    }
}

impl std::error::Error for ScanError {}

/// `line` as text, or the offset where its UTF-8 goes wrong: serde_json
/// skips the strings it ignores without checking their UTF-8, so its pass
/// (which says why a line is refused) checks the whole line first. The
/// grammar pass checks UTF-8 itself.
pub fn utf8(line: &[u8]) -> Result<&str, usize> {
    std::str::from_utf8(line).map_err(|e| e.valid_up_to())
}

/// Checks that `line` is one JSON object and, when `path` is given, returns
/// the value there: a string's contents, or any other value's JSON text.
/// `Ok(None)` when the path is missing or null.
pub fn scan_object(line: &[u8], path: Option<&FieldPath>) -> Result<Option<Vec<u8>>, ScanError> {
    let mut found = None;
    let (want, segments) = match path {
        Some(p) => (Want::Path(&mut found), p.segments()),
        None => (Want::Nothing, &[][..]),
    };
    let object = scan_root(line, want, segments)?;
    if path.is_some_and(|p| p.segments().is_empty()) {
        found = Some(object);
    }
    Ok(found.and_then(|at| key_text(&line[at])))
}

/// A key's bytes: a string's contents, or any other value's JSON text;
/// `None` for null. Like [`scalar`], but the line is known to be UTF-8.
fn key_text(raw: &[u8]) -> Option<Vec<u8>> {
    match raw.first() {
        Some(b'"') if memchr::memchr(b'\\', raw).is_none() => Some(raw[1..raw.len() - 1].to_vec()),
        Some(b'"') => serde_json::from_slice::<String>(raw)
            .ok()
            .map(String::into_bytes),
        Some(b'n') => None,
        _ => Some(raw.to_vec()),
    }
}

/// [`scan_object`] for an event that begins with a position member that
/// was already checked and ends before `rest` (as
/// `position::Located::rest` gives it): the other members are checked and
/// searched as the event without the member, in place, not copied.
/// Errors are the whole line's, so their byte offsets are the line's.
pub fn scan_object_after(
    line: &[u8],
    rest: usize,
    path: Option<&FieldPath>,
) -> Result<Option<Vec<u8>>, ScanError> {
    let segments = path.map_or(&[][..], |p| p.segments());
    if path.is_some() && segments.is_empty() {
        // The whole event is the key: the event without its member.
        let mut body = Vec::with_capacity(line.len() - rest + 1);
        body.push(b'{');
        if line[rest - 1] == b',' && line.get(skip_ws(line, rest)) == Some(&b'}') {
            body.push(b',');
        }
        body.extend_from_slice(&line[rest..]);
        return scan_object(&body, path);
    }
    let mut found = None;
    if grammar::path_after(line, rest, segments, &mut found).is_ok() {
        return Ok(found.and_then(|at| key_text(&line[at])));
    }
    scan_object(line, path)?;
    Err(ScanError::NotJson(format!(
        "the members after the position member (from byte {rest}) are not valid JSON"
    )))
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

impl Key {
    fn is(&self, line: &[u8], name: &str) -> bool {
        match self {
            Key::Span(r) => &line[r.clone()] == name.as_bytes(),
            Key::Owned(k) => &**k == name,
        }
    }
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
    pub fn scan(&mut self, line: &[u8]) -> Result<(), ScanError> {
        self.members.clear();
        self.object = scan_root(line, Want::Members(&mut self.members), &[])?;
        Ok(())
    }

    /// Records the members of `line`, which must already be known to be one
    /// valid JSON object (bytes this crate wrote itself): no validation, so
    /// it is several times faster than [`TopLevel::scan`].
    pub fn scan_trusted(&mut self, line: &[u8]) {
        self.members.clear();
        let start = skip_ws(line, 0);
        let end = skip_value(line, start);
        self.object = start..end;
        for_each_member(line, start..end, |key, value| {
            let raw = &line[key.start + 1..key.end - 1];
            let key = if memchr::memchr(b'\\', raw).is_none() {
                Key::Span(key.start + 1..key.end - 1)
            } else {
                Key::Owned(
                    serde_json::from_slice::<String>(&line[key])
                        .unwrap_or_default()
                        .into(),
                )
            };
            self.members.push(Member { key, value });
        });
    }

    /// The value range of the member named `name`; the last one when a key
    /// repeats, as most JSON readers do.
    pub fn get(&self, line: &[u8], name: &str) -> Option<Range<usize>> {
        self.members
            .iter()
            .rev()
            .find(|m| m.key.is(line, name))
            .map(|m| m.value.clone())
    }
}

/// What the validating pass keeps besides checking the line.
enum Want<'a> {
    Nothing,
    /// Every top-level member.
    Members(&'a mut Vec<Member>),
    /// The value at the path given beside it (the last one when a key repeats).
    Path(&'a mut Option<Range<usize>>),
    /// The values of a [`PathSet`]'s nodes.
    Paths(&'a [PathNode], &'a mut [Option<Range<usize>>]),
}

/// Validates `line` as one JSON object, keeping what `want` asks for;
/// returns the object's range (whitespace around it left out).
fn scan_root(line: &[u8], mut want: Want<'_>, path: &[Segment]) -> Result<Range<usize>, ScanError> {
    let fast = match &mut want {
        Want::Nothing => grammar::object(line),
        Want::Members(members) => grammar::members(line, members),
        Want::Path(found) => grammar::path(line, path, found),
        Want::Paths(nodes, at) => grammar::nodes(line, nodes, at),
    };
    fast.map_err(|_| refusal(line))
}

/// Why a line the grammar pass refused is not an acceptable object: in
/// serde_json's words (with line and column), or the rule's.
fn refusal(line: &[u8]) -> ScanError {
    match serde_object(line).and_then(|()| check_rules(line)) {
        Err(e) => e,
        // The grammar pass is tested to refuse nothing that these accept.
        Ok(()) => ScanError::Refused("refused by unilog's JSON check".to_string()),
    }
}

/// serde_json's verdict on `line` as one JSON object, with the depth,
/// surrogate and range checks of its visitors: the messages the grammar
/// pass does not write, and what that pass is tested against.
fn serde_object(line: &[u8]) -> Result<(), ScanError> {
    let text = utf8(line).map_err(ScanError::NotUtf8)?;
    let mut not_object = None;
    let mut de = serde_json::Deserializer::from_str(text);
    // serde_json stops recursive visitors at 127 levels; the rule allows
    // MAX_DEPTH, and the visitors count and stop there themselves (`nest`).
    de.disable_recursion_limit();
    let root = Root {
        not_object: &mut not_object,
    };
    let result = de::Deserializer::deserialize_any(&mut de, root).and_then(|()| de.end());
    match (result, not_object) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(kind)) => Err(ScanError::NotObject(kind)),
        // The checking pass says only that something is wrong; the plain
        // parse and the rule say what, and where.
        (Err(e), None) => {
            check_value_serde(line)?;
            Err(ScanError::NotJson(e.to_string()))
        }
    }
}

/// The most arrays and objects an event may nest, the event object itself
/// counting as one: `[[1]]` is two deep. The same for every tool.
pub const MAX_DEPTH: usize = 128;

/// The largest number of digits an integer may have and still be within a
/// double's range with no need to look closer (10^308 < f64::MAX).
const SAFE_DIGITS: usize = 308;

/// Checks a JSON text of any kind against the rule every tool applies
/// (see the module documentation): valid JSON, then the rule.
pub fn check_value(text: &[u8]) -> Result<(), ScanError> {
    if grammar::accepts_value(text) {
        return Ok(());
    }
    check_value_serde(text)
}

/// [`check_value`] by serde_json and the rule: the same verdict, with
/// serde_json's messages.
fn check_value_serde(text: &[u8]) -> Result<(), ScanError> {
    let text_str = utf8(text).map_err(ScanError::NotUtf8)?;
    let mut de = serde_json::Deserializer::from_str(text_str);
    de::Deserialize::deserialize(&mut de)
        .and_then(|IgnoredAny| de.end())
        .map_err(|e| ScanError::NotJson(e.to_string()))?;
    check_rules(text)
}

/// Applies the rule's depth, surrogate and number checks to text that is
/// already known to be valid JSON, in one pass over its bytes.
pub fn check_rules(b: &[u8]) -> Result<(), ScanError> {
    let mut depth = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = check_string(b, i)?;
                continue;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ScanError::Refused(format!(
                        "arrays and objects nest deeper than {MAX_DEPTH} levels at byte {i}, the limit every unilog tool applies"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                i = check_number(b, i)?;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The end of the valid string at `i`, refusing lone surrogate escapes.
fn check_string(b: &[u8], i: usize) -> Result<usize, ScanError> {
    let mut j = i + 1;
    loop {
        let Some(k) = memchr::memchr2(b'"', b'\\', &b[j..]) else {
            return Ok(b.len());
        };
        let at = j + k;
        if b[at] == b'"' {
            return Ok(at + 1);
        }
        if b.get(at + 1) != Some(&b'u') {
            j = at + 2;
            continue;
        }
        let code = hex4(b, at + 2);
        j = at + 6;
        match code {
            Some(0xD800..=0xDBFF) => {
                let low = (b.get(j..j + 2) == Some(&b"\\u"[..]))
                    .then(|| hex4(b, j + 2))
                    .flatten();
                if !matches!(low, Some(0xDC00..=0xDFFF)) {
                    return Err(lone_surrogate(at));
                }
                j += 6;
            }
            Some(0xDC00..=0xDFFF) => return Err(lone_surrogate(at)),
            _ => {}
        }
    }
}

fn lone_surrogate(at: usize) -> ScanError {
    ScanError::Refused(format!(
        "a lone surrogate escape (\\uD800-\\uDFFF without its pair) at byte {at} is not Unicode text"
    ))
}

/// The four hex digits at `at` as a number.
#[inline]
fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let digits = b.get(at..at + 4)?;
    let mut n = 0;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        n = n * 16 + u32::from(v);
    }
    Some(n)
}

/// The end of the valid number at `i`, refusing one past a double's range.
fn check_number(b: &[u8], i: usize) -> Result<usize, ScanError> {
    let mut j = i;
    let mut plain = true;
    while j < b.len() {
        match b[j] {
            b'0'..=b'9' | b'-' | b'+' => {}
            b'.' | b'e' | b'E' => plain = false,
            _ => break,
        }
        j += 1;
    }
    if plain && j - i <= SAFE_DIGITS {
        return Ok(j);
    }
    // ASCII digits and signs only.
    let text = std::str::from_utf8(&b[i..j]).unwrap_or("");
    match text.parse::<f64>() {
        Ok(f) if f.is_infinite() => {
            Err(ScanError::Refused(format!(
            "the number at byte {i} ({}) is beyond the range of a double (±1.7976931348623157e308)",
            if text.len() > 24 { format!("{}…", &text[..24]) } else { text.to_string() }
        )))
        }
        _ => Ok(j),
    }
}

/// The root of a line, which must be an object.
struct Root<'a> {
    /// Set to the JSON kind found when the line is not an object.
    not_object: &'a mut Option<&'static str>,
}

impl Root<'_> {
    fn not_object<E: de::Error>(self, kind: &'static str) -> Result<(), E> {
        *self.not_object = Some(kind);
        Err(E::custom("not an object"))
    }
}

impl<'de> Visitor<'de> for Root<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        Checked { depth: 0 }.visit_map(map)
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

/// The scalar arms of a visitor that only checks: every scalar is valid
/// JSON as it stands (strings were already checked by serde_json).
macro_rules! accept_scalars {
    () => {
        fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<(), E> {
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
    };
}

/// One level deeper than `depth`, or an error past the shared limit.
pub fn nest<E: de::Error>(depth: usize) -> Result<usize, E> {
    if depth >= MAX_DEPTH {
        return Err(E::custom("nested too deep"));
    }
    Ok(depth + 1)
}

/// Skips a value, checking it against the shared
/// JSON rule on the way: serde_json refuses lone surrogate escapes in the
/// strings it reads (not in those it ignores) and numbers beyond a double's
/// range, and [`nest`] counts the depth.
pub struct Checked {
    /// How deep the value's container is (0 for a whole line).
    pub depth: usize,
}

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = nest::<A::Error>(self.depth)?;
        while map.next_key_seed(Checked { depth })?.is_some() {
            map.next_value_seed(Checked { depth })?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = nest::<A::Error>(self.depth)?;
        while seq.next_element_seed(Checked { depth })?.is_some() {}
        Ok(())
    }
    accept_scalars!();
}

/// JSON's insignificant whitespace (RFC 8259: space, tab, LF, CR).
#[inline]
pub fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The first position at or after `i` that is not whitespace.
#[inline]
pub fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

/// The end of the string whose opening quote is at `i` (one past the
/// closing quote). The JSON must already be valid.
#[inline]
pub fn skip_string(b: &[u8], mut i: usize) -> usize {
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
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']') && !is_ws(b[j]) {
                j += 1;
            }
            j
        }
    }
}

/// Calls `each` with the range of every key (quotes included) and value of
/// the object at `obj`, in valid JSON.
#[inline]
fn for_each_member(b: &[u8], obj: Range<usize>, mut each: impl FnMut(Range<usize>, Range<usize>)) {
    debug_assert_eq!(b[obj.start], b'{');
    let mut i = skip_ws(b, obj.start + 1);
    while i < obj.end && b[i] == b'"' {
        let key_end = skip_string(b, i);
        let colon = skip_ws(b, key_end);
        let value = skip_ws(b, colon + 1);
        let value_end = skip_value(b, value);
        each(i..key_end, value..value_end);
        i = skip_ws(b, value_end);
        if i < obj.end && b[i] == b',' {
            i = skip_ws(b, i + 1);
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
    let mut found = None;
    for_each_member(b, obj, |key, value| {
        if key_is(&b[key.start + 1..key.end - 1], name) {
            found = Some(value);
        }
    });
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

/// Several paths answered in the pass that validates the event: the one
/// validating pass of [`TopLevel::scan`] descends only into the members and
/// elements some path goes through (`.data.shopper.id` and
/// `.data.timestamp` share the walk into `.data`) and skips the rest,
/// checking it against the shared rule on the way. Results are those of
/// [`find`] for each path.
#[derive(Debug, Clone, Default)]
pub struct PathSet {
    /// Node 0 is the root; a child always comes after its parent, so one
    /// pass in order resolves parents first.
    nodes: Vec<PathNode>,
    paths: usize,
    /// Where each node's value is, for the event being read.
    at: Vec<Option<Range<usize>>>,
}

#[derive(Debug, Clone, Default)]
struct PathNode {
    children: Vec<(Segment, usize)>,
    /// The paths that end here.
    ends: Vec<usize>,
    /// Every node below this one.
    below: Vec<usize>,
    /// Its value's range is recorded, not walked: no path goes below it,
    /// or one ends here (its children are then found in the range).
    whole: bool,
    /// Its children are found in its range after the pass (it, or a node
    /// above it, is recorded whole).
    after: bool,
}

impl PathSet {
    /// A set of `paths`, answered in this order.
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a [Segment]>) -> PathSet {
        let mut set = PathSet {
            nodes: vec![PathNode::default()],
            ..PathSet::default()
        };
        let mut parents = vec![None];
        for path in paths {
            let mut node = 0;
            for seg in path {
                node = match set.nodes[node].children.iter().find(|(s, _)| s == seg) {
                    Some(&(_, child)) => child,
                    None => {
                        set.nodes.push(PathNode::default());
                        parents.push(Some(node));
                        let child = set.nodes.len() - 1;
                        set.nodes[node].children.push((seg.clone(), child));
                        child
                    }
                };
            }
            set.nodes[node].ends.push(set.paths);
            set.paths += 1;
        }
        for i in 1..set.nodes.len() {
            let n = &set.nodes[i];
            let whole = n.children.is_empty() || !n.ends.is_empty();
            let above = parents[i].is_some_and(|p| set.nodes[p].after);
            set.nodes[i].whole = whole;
            set.nodes[i].after = above || (whole && !set.nodes[i].children.is_empty());
            let mut up = parents[i];
            while let Some(p) = up {
                set.nodes[p].below.push(i);
                up = parents[p];
            }
        }
        set.at = vec![None; set.nodes.len()];
        set
    }

    /// Validates `line` as one JSON object, as [`TopLevel::scan`] does (the
    /// same errors), and fills `out` with the value of each path (`None`:
    /// missing, or a step into the wrong kind). Returns the object's range.
    pub fn scan(
        &mut self,
        line: &[u8],
        out: &mut Vec<Option<Range<usize>>>,
    ) -> Result<Range<usize>, ScanError> {
        self.at.iter_mut().for_each(|a| *a = None);
        let object = scan_root(line, Want::Paths(&self.nodes, &mut self.at), &[])?;
        self.at[0] = Some(object.clone());
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.after {
                continue;
            }
            let Some(v) = self.at[i].clone() else {
                continue;
            };
            for (seg, child) in &node.children {
                self.at[*child] = find(line, v.clone(), std::slice::from_ref(seg));
            }
        }
        out.clear();
        out.resize(self.paths, None);
        for (node, at) in self.nodes.iter().zip(&self.at) {
            for &p in &node.ends {
                out[p] = at.clone();
            }
        }
        Ok(object)
    }
}

/// A JSON value read from an event as a string the steps can use: a
/// string's contents (borrowed when it has no escapes), or the text of a
/// number or boolean.
pub enum Scalar<'a> {
    /// A string, number or boolean, as text.
    Text(Cow<'a, str>),
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

/// Appends `s` as a JSON string.
#[inline]
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    // Ids and names rarely need escaping: copy those straight.
    if s.bytes().all(|c| c >= 0x20 && c != b'"' && c != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_set_finds_what_find_finds_in_one_walk() {
        let lines: [&[u8]; 5] = [
            br#"{"a":{"b":1,"c":[10,{"d":"x"}],"b":2},"e":"y","a\u0062":3,"f":[1]}"#,
            // A repeated key with a subtree: the last one's, below it too.
            br#"{"a":{"b":1,"c":[10,{"d":"x"}]},"a":{"zz":2},"f":{"x":[]}}"#,
            br#"{"a":{"b":{"q":1}},"a":[1,2],"e":{"x":"\"}"}}"#,
            br#" {"a" : { "c" : [ 0 , { "d" : null } ] } , "f" : [ [ 1 ] ] } "#,
            br#"{}"#,
        ];
        let sets: [&[&str]; 4] = [
            &[
                ".a.b",
                ".a.c[1].d",
                ".e",
                ".",
                ".ab",
                ".a.zz",
                ".e.x",
                ".f.x",
                ".a.c[5]",
                ".f[0]",
            ],
            // A path ending where others go on: found in its value's range.
            &[".a", ".a.c[1].d", ".a.b", ".f[0][0]", ".f"],
            &[".a.c", ".a.c[1]", ".a.c[1].d", ".a[1]", ".e.x"],
            &[".", ".a.b.q", ".a[0]"],
        ];
        for paths in sets {
            let parsed: Vec<FieldPath> = paths.iter().map(|s| p(s)).collect();
            let mut set = PathSet::new(parsed.iter().map(|p| p.segments()));
            let mut out = Vec::new();
            for line in lines {
                let object = set.scan(line, &mut out).unwrap();
                let mut top = TopLevel::default();
                top.scan(line).unwrap();
                assert_eq!(object, top.object);
                for (path, got) in parsed.iter().zip(&out) {
                    assert_eq!(
                        got,
                        &find(line, top.object.clone(), path.segments()),
                        "{path} in {}",
                        String::from_utf8_lossy(line)
                    );
                }
            }
        }
        let line = lines[0];
        let parsed: Vec<FieldPath> = sets[0].iter().map(|s| p(s)).collect();
        let mut set = PathSet::new(parsed.iter().map(|p| p.segments()));
        let mut out = Vec::new();
        set.scan(line, &mut out).unwrap();
        let text = |r: &Option<Range<usize>>| r.clone().map(|r| &line[r]);
        assert_eq!(text(&out[0]), Some(&b"2"[..]));
        assert_eq!(text(&out[1]), Some(&br#""x""#[..]));
        assert_eq!(text(&out[4]), Some(&b"3"[..]));
        assert_eq!(out[5], None);
    }

    #[test]
    fn a_path_set_refuses_what_the_top_level_scan_refuses() {
        let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        let lines = [
            r#"{"a":{"b":"\ud800"}}"#.to_string(),
            r#"{"a":{"b":1e400}}"#.to_string(),
            r#"{"a":{"c":[1e400]}}"#.to_string(),
            r#"{"a":{"z":"\udc00"}}"#.to_string(),
            r#"{"q":{"z":-1.8e308}}"#.to_string(),
            format!(r#"{{"a":{{"b":{}}}}}"#, deep(MAX_DEPTH - 1)),
            format!(r#"{{"a":{{"c":{}}}}}"#, deep(MAX_DEPTH - 1)),
            format!(r#"{{"q":{}}}"#, deep(MAX_DEPTH)),
            r#"{"a":{"b":1,}}"#.to_string(),
            r#"{"a":{"b":tru}}"#.to_string(),
            r#"{"a":1} x"#.to_string(),
            "[1]".to_string(),
            "\"a\"".to_string(),
            r#"{"a\u0062":}"#.to_string(),
        ];
        let parsed = [p(".a.b"), p(".a.c[0]")];
        let mut set = PathSet::new(parsed.iter().map(|p| p.segments()));
        let mut out = Vec::new();
        for line in &lines {
            let mut top = TopLevel::default();
            let want = top.scan(line.as_bytes()).map(|()| top.object.clone());
            assert!(want.is_err(), "{line}");
            assert_eq!(set.scan(line.as_bytes(), &mut out), want, "{line}");
        }
        let bytes = b"{\"a\":{\"b\":\"\xff\"}}";
        assert_eq!(set.scan(bytes, &mut out), Err(ScanError::NotUtf8(11)));
        // As deep as the rule allows, and a lone surrogate's escaped look-alike.
        let fine = format!(r#"{{"a":{{"b":{},"c":["\\ud800"]}}}}"#, deep(MAX_DEPTH - 2));
        assert!(set.scan(fine.as_bytes(), &mut out).is_ok());
        assert_eq!(out[1].clone().map(|r| &fine[r]), Some(r#""\\ud800""#));
    }

    fn p(s: &str) -> FieldPath {
        FieldPath::parse(s).unwrap()
    }

    fn get<'a>(line: &'a [u8], path: &str) -> Option<&'a str> {
        let mut top = TopLevel::default();
        top.scan(line).unwrap();
        find(line, top.object.clone(), p(path).segments())
            .map(|r| std::str::from_utf8(&line[r]).unwrap())
    }

    #[test]
    fn scans_raw_lines_for_a_path() {
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
        assert_eq!(scan_object(line, Some(&p(".[0]"))), Ok(None));
        assert_eq!(scan_object(line, Some(&p("."))), Ok(Some(line.to_vec())));
        let dup = br#" {"k":null,"k":"2"} "#;
        assert_eq!(scan_object(dup, Some(&p(".k"))), Ok(Some(b"2".to_vec())));
    }

    #[test]
    fn a_path_does_not_stop_validation() {
        let after = br#"{"k":"v","x":[1,}"#;
        assert!(matches!(
            scan_object(after, Some(&p(".k"))),
            Err(ScanError::NotJson(_))
        ));
        let inside = br#"{"k":{"a":1,"b":tru}}"#;
        assert!(matches!(
            scan_object(inside, Some(&p(".k.a"))),
            Err(ScanError::NotJson(_))
        ));
    }

    #[test]
    fn rejects_non_objects_and_bad_json() {
        let mut top = TopLevel::default();
        for (line, kind) in [
            (&b"[1,2]"[..], "array"),
            (b"\"s\"", "string"),
            (b"null", "null"),
            (b"3", "number"),
            (b"true", "boolean"),
        ] {
            assert_eq!(scan_object(line, None), Err(ScanError::NotObject(kind)));
            assert_eq!(top.scan(line), Err(ScanError::NotObject(kind)));
        }
        for line in [&b""[..], b"{\"a\":1} x", b"{\"a\":}", b"{} {}"] {
            assert!(matches!(
                scan_object(line, None),
                Err(ScanError::NotJson(_))
            ));
            assert!(matches!(top.scan(line), Err(ScanError::NotJson(_))));
        }
        assert_eq!(
            scan_object(b"{\"a\":\"\xff\"}", None),
            Err(ScanError::NotUtf8(6))
        );
        assert_eq!(top.scan(b"{\"\xff\":1}"), Err(ScanError::NotUtf8(2)));
        let deep = "[".repeat(100_000);
        let line = format!("{{\"a\":{deep}");
        assert!(matches!(
            scan_object(line.as_bytes(), None),
            Err(ScanError::NotJson(_))
        ));
    }

    #[test]
    fn one_rule_for_depth_surrogates_and_numbers() {
        let nest = |n: usize| format!("{{\"a\":{}1{}}}", "[".repeat(n - 1), "]".repeat(n - 1));
        assert!(scan_object(nest(MAX_DEPTH).as_bytes(), None).is_ok());
        let too_deep = nest(MAX_DEPTH + 1);
        assert!(matches!(
            scan_object(too_deep.as_bytes(), None),
            Err(ScanError::Refused(_))
        ));
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            check_value(deep.as_bytes()),
            Err(ScanError::Refused(_))
        ));
        let mut top = TopLevel::default();
        for bad in [
            r#"{"s":"\ud800"}"#,
            r#"{"s":"x\udc00"}"#,
            r#"{"s":"\ud800\u0041"}"#,
            r#"{"n":1e400}"#,
            r#"{"n":-1.8e308}"#,
        ] {
            assert!(
                matches!(top.scan(bad.as_bytes()), Err(ScanError::Refused(_))),
                "{bad}"
            );
            assert!(
                matches!(check_value(bad.as_bytes()), Err(ScanError::Refused(_))),
                "{bad}"
            );
        }
        let long = format!("{{\"n\":{}}}", "9".repeat(400));
        assert!(matches!(
            check_value(long.as_bytes()),
            Err(ScanError::Refused(_))
        ));
        for good in [
            r#"{"s":"\ud83d\ude00","t":"\\ud800"}"#,
            r#"{"n":-0,"m":1e-400,"k":1.7976931348623157e308,"b":123456789012345678901234567890}"#,
            r#"{"k\"[":"]]]{{"}"#,
        ] {
            assert_eq!(check_value(good.as_bytes()), Ok(()), "{good}");
            assert!(top.scan(good.as_bytes()).is_ok(), "{good}");
        }
        assert!(check_value(b"[1,2]").is_ok());
        assert!(matches!(check_value(b"[1,"), Err(ScanError::NotJson(_))));
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

    /// A line's verdict and findings by one pass: the object's range, the
    /// members (key text, value range) and the value of each path.
    type Findings = Option<(
        Range<usize>,
        Vec<(String, Range<usize>)>,
        Vec<Option<Range<usize>>>,
    )>;

    fn member_list(line: &[u8], members: &[Member]) -> Vec<(String, Range<usize>)> {
        members
            .iter()
            .map(|m| {
                let key = match &m.key {
                    Key::Span(r) => String::from_utf8(line[r.clone()].to_vec()).unwrap(),
                    Key::Owned(k) => k.to_string(),
                };
                (key, m.value.clone())
            })
            .collect()
    }

    /// The grammar pass's findings.
    fn by_grammar(line: &[u8], paths: &[FieldPath]) -> Findings {
        let object = grammar::object(line).ok()?;
        let mut members = Vec::new();
        assert_eq!(
            grammar::members(line, &mut members).ok(),
            Some(object.clone())
        );
        let mut found = Vec::new();
        for path in paths {
            let mut at = None;
            assert_eq!(
                grammar::path(line, path.segments(), &mut at).ok(),
                Some(object.clone())
            );
            found.push(at);
        }
        let mut set = PathSet::new(paths.iter().map(|p| p.segments()));
        let mut out = Vec::new();
        assert_eq!(set.scan(line, &mut out).ok(), Some(object.clone()));
        assert_eq!(out, found, "the path set and single paths differ");
        assert!(grammar::accepts_value(line));
        Some((object, member_list(line, &members), found))
    }

    /// serde_json's pass and the rule, then the trusted scanners (the
    /// members of `TopLevel::scan_trusted`, `find`) on what they accept.
    fn by_serde(line: &[u8], paths: &[FieldPath]) -> Findings {
        serde_object(line).and_then(|()| check_rules(line)).ok()?;
        let mut top = TopLevel::default();
        top.scan_trusted(line);
        let object = top.object.clone();
        let found = paths
            .iter()
            .map(|p| find(line, object.clone(), p.segments()))
            .collect();
        Some((object, member_list(line, &top.members), found))
    }

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// A random JSON text: nested values, escapes, numbers of every form,
    /// whitespace here and there.
    fn random_value(rng: &mut Rng, depth: usize, out: &mut Vec<u8>) {
        const STRINGS: [&str; 12] = [
            "a",
            "id",
            "data",
            "shopper",
            "x\\\"y",
            "\\u00e9t\\u00E9",
            "\\ud83d\\ude00",
            "caf\u{e9}",
            "\\n\\t\\/\\b\\f\\r\\\\",
            "",
            // Long enough for the eight-byte steps, with stops at odd places.
            "The quick brown fox jumps over the lazy dog, \\u00e9 twice",
            "0123456789abcdef\\\"0123456789abcde\\\\0123456789abcd",
        ];
        const NUMBERS: [&str; 14] = [
            "0",
            "-0",
            "12",
            "-7",
            "3.25",
            "1e3",
            "2E-3",
            "1e308",
            "-1.5e+10",
            "1e-400",
            "0e99999",
            "123456789012345678901234567890",
            "18446744073709551616",
            "0.000001",
        ];
        if rng.below(6) == 0 {
            out.extend_from_slice(b" ");
        }
        match if depth > 5 {
            3 + rng.below(4)
        } else {
            rng.below(7)
        } {
            0 | 1 => {
                out.push(b'{');
                for i in 0..rng.below(4) {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.push(b'"');
                    out.extend_from_slice(STRINGS[rng.below(STRINGS.len())].as_bytes());
                    out.extend_from_slice(b"\":");
                    random_value(rng, depth + 1, out);
                }
                out.push(b'}');
            }
            2 => {
                out.push(b'[');
                for i in 0..rng.below(4) {
                    if i > 0 {
                        out.push(b',');
                    }
                    random_value(rng, depth + 1, out);
                }
                out.push(b']');
            }
            3 => {
                out.push(b'"');
                out.extend_from_slice(STRINGS[rng.below(STRINGS.len())].as_bytes());
                out.push(b'"');
            }
            4 => out.extend_from_slice(NUMBERS[rng.below(NUMBERS.len())].as_bytes()),
            5 => out.extend_from_slice([&b"true"[..], b"false", b"null"][rng.below(3)]),
            _ => {
                out.extend_from_slice(b"{\"data\":{\"shopper\":{\"id\":");
                random_value(rng, depth + 1, out);
                out.extend_from_slice(
                    b"},\"timestamp\":\"2026-11-27T09:00:00Z\"},\"items\":[{\"sku\":",
                );
                random_value(rng, depth + 1, out);
                out.extend_from_slice(b"}]}");
            }
        }
        if rng.below(6) == 0 {
            out.extend_from_slice(b"\t");
        }
    }

    /// Changes a few bytes: JSON's own characters, control characters,
    /// bytes that are not UTF-8, deletions and repeats.
    fn mutate(rng: &mut Rng, line: &mut Vec<u8>) {
        const ALPHABET: &[u8] = b"{}[]\",:\\0123456789-+.eEtrufalsnu \t\r\nxd8DC";
        for _ in 0..1 + rng.below(3) {
            let at = if line.is_empty() {
                0
            } else {
                rng.below(line.len() + 1)
            };
            let byte = match rng.below(20) {
                0 => rng.below(0x20) as u8,
                1 => 0x80 + rng.below(0x80) as u8,
                _ => ALPHABET[rng.below(ALPHABET.len())],
            };
            match rng.below(4) {
                0 if at < line.len() => line[at] = byte,
                1 => line.insert(at, byte),
                2 if at < line.len() => {
                    line.remove(at);
                }
                _ if !line.is_empty() => {
                    let from = rng.below(line.len());
                    let len = rng.below(8).min(line.len() - from);
                    let piece = line[from..from + len].to_vec();
                    let at = at.min(line.len());
                    line.splice(at..at, piece);
                }
                _ => line.push(byte),
            }
        }
    }

    #[test]
    fn the_grammar_pass_accepts_what_serde_json_and_the_rule_accept() {
        let paths: Vec<FieldPath> = [
            ".data.shopper.id",
            ".data.timestamp",
            ".items[0].sku",
            ".items[1]",
            ".a",
            ".id",
            ".\u{e9}t\u{e9}",
            ".data",
        ]
        .iter()
        .map(|s| p(s))
        .collect();
        let deep = |n: usize| format!("{{\"a\":{}{}}}", "[".repeat(n), "]".repeat(n));
        let mut cases: Vec<Vec<u8>> = [
            r#"{"a":"\ud83d\ude00"}"#,
            r#"{"a":"\ud83d"}"#,
            r#"{"a":"\ude00"}"#,
            r#"{"a":"\ud83dx\ude00"}"#,
            r#"{"\ud800":1}"#,
            r#"{"a":"\u12G4"}"#,
            r#"{"a":"\ud83d\u0041"}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":1e308}"#,
            r#"{"a":1e309}"#,
            r#"{"a":-1e309}"#,
            r#"{"a":1e-400}"#,
            r#"{"a":0e99999}"#,
            r#"{"a":1e99999}"#,
            r#"{"a":1.7976931348623157e308}"#,
            r#"{"a":1.7976931348623159e308}"#,
            r#"{"a":01}"#,
            r#"{"a":-0}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":-.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":1e+}"#,
            r#"{"a":2E-3}"#,
            r#"{"a":-}"#,
            r#"{"a":+1}"#,
            "{\"a\":\"\x01\"}",
            "{\"a\":\"\t\"}",
            "{\"a\":\"\x7f\"}",
            " {} ",
            "{}",
            "{} {}",
            "[]",
            "1",
            "\"s\"",
            "",
            " ",
            "{\"a\":tru}",
            "{\"a\":nulll}",
            "{\"a\":True}",
            "{\"a\":1,}",
            "{\"a\":1 \"b\":2}",
            "{,}",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":[1,]}",
            "{\"a\":[,1]}",
            r#"{"a\u0062":1,"a":2,"a":{"b":3}}"#,
            "{\"a\":1}\r",
            "{\"a\":1}\n",
            "\u{feff}{}",
            r#"{"data":{"shopper":{"id":1},"shopper":{"x":2}}}"#,
            r#"{"items":[{"sku":"a"},{"sku":"b"}],"items":[]}"#,
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        cases.push(deep(127).into_bytes());
        cases.push(deep(128).into_bytes());
        cases.push(format!("{{\"a\":{}0}}", "1".repeat(308)).into_bytes());
        cases.push(format!("{{\"a\":{}}}", "9".repeat(309)).into_bytes());
        cases.push(format!("{{\"a\":-{}.5}}", "9".repeat(307)).into_bytes());
        cases.push(b"{\"a\":\"\xff\"}".to_vec());
        // UTF-8 the grammar pass checks itself: whole characters of every
        // length (also eight bytes in, where the word-wise scan meets them),
        // and what is not UTF-8: a cut character, an overlong form, a
        // surrogate, a stray continuation byte, non-ASCII outside strings.
        for body in [
            &b"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"[..],
            b"12345678\xc3\xa9",
            b"1234567\xc3\xa9x",
            b"\xe2\x82",
            b"12345678\xe2\x82",
            b"\xc0\xaf",
            b"\xed\xa0\x80",
            b"\x80abc",
            b"\xf4\x90\x80\x80",
        ] {
            let mut key = b"{\"".to_vec();
            key.extend_from_slice(body);
            key.extend_from_slice(b"\":1}");
            cases.push(key);
            let mut value = b"{\"a\":[\"".to_vec();
            value.extend_from_slice(body);
            value.extend_from_slice(b"\"]}");
            cases.push(value);
        }
        cases.push(b"{\"a\":1}\xc2\xa0".to_vec());
        cases.push(b"{\"a\":\xc3\xa9}".to_vec());
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut line = Vec::new();
            random_value(&mut rng, 0, &mut line);
            cases.push(line.clone());
            mutate(&mut rng, &mut line);
            cases.push(line);
        }
        for line in &cases {
            let fast = by_grammar(line, &paths);
            let slow = by_serde(line, &paths);
            assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(line));
            // Any JSON value, as check_value takes it.
            let any_fast = grammar::accepts_value(line);
            let any_slow = check_value_serde(line).is_ok();
            assert_eq!(any_fast, any_slow, "{:?}", String::from_utf8_lossy(line));
            accepted += usize::from(fast.is_some());
        }
        // A positioned event is judged and searched as the event without
        // its member.
        let key = p(".data.shopper.id");
        for line in cases.iter().filter(|l| l.first() == Some(&b'{')) {
            let empty = line.get(skip_ws(line, 1)) == Some(&b'}');
            let mut positioned = br#"{"unilog":{"log":"L","partition":0,"offset":1}"#.to_vec();
            if !empty {
                positioned.push(b',');
            }
            positioned.extend_from_slice(&line[1..]);
            let Ok(Some(found)) = crate::position::locate(&positioned) else {
                panic!("no member in {:?}", String::from_utf8_lossy(&positioned));
            };
            assert_eq!(
                scan_object_after(&positioned, found.rest, Some(&key)).ok(),
                scan_object(line, Some(&key)).ok(),
                "{:?}",
                String::from_utf8_lossy(&positioned)
            );
        }
        let trailing = br#"{"unilog":{"log":"L","partition":0,"offset":1},}"#;
        let found = crate::position::locate(trailing).unwrap().unwrap();
        assert!(scan_object_after(trailing, found.rest, None).is_err());
        assert!(scan_object_after(trailing, found.rest, Some(&p("."))).is_err());
        // Both kinds are well represented.
        assert!(
            accepted > 5_000 && accepted < cases.len() - 5_000,
            "{accepted} of {}",
            cases.len()
        );
    }
}
