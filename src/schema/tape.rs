//! A flat, borrowed JSON document for validation: one pass of a strict
//! RFC 8259 parser writes every value into a reusable vector of entries whose
//! strings point into the input line, so validating an event allocates
//! nothing once the buffers have grown. The `jsonschema` crate validates it
//! through its `Json` representation traits.

use std::borrow::Cow;
use std::fmt;

use jsonschema::json::{Array, Json, Node as NodeTrait, NodeIdentity, Object};
use jsonschema::JsonType;
use serde_json::{Map, Number, Value};

use crate::json;

/// The `jsonschema` representation marker for [`Doc`]s.
pub struct Tape;

/// Where a string's bytes are: in the input line or in the scratch buffer
/// (strings with escapes are decoded there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum In {
    Line,
    Scratch,
}

#[derive(Debug, Clone, PartialEq)]
enum Entry {
    Null,
    Bool(bool),
    Num(Number),
    Str(In, u32, u32),
    /// An object member's name; its value follows.
    Key(In, u32, u32),
    /// `len` members or elements; the next sibling is at `end`.
    Arr {
        len: u32,
        end: u32,
    },
    Obj {
        len: u32,
        end: u32,
    },
}

/// A reusable parse buffer. [`Doc::parse`] fills it from one line and hands
/// back a [`View`] to validate.
#[derive(Default)]
pub struct Doc {
    entries: Vec<Entry>,
    scratch: String,
}

/// A parsed line: the entries and the text they point into.
pub struct View<'a> {
    entries: &'a [Entry],
    line: &'a str,
    scratch: &'a str,
}

/// Why a line is not JSON: what was wrong and where (a byte offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What went wrong.
    pub message: &'static str,
    /// Byte offset of the offending byte (the line's length at its end).
    pub offset: usize,
    /// True when the line is not UTF-8 (rather than not JSON).
    pub utf8: bool,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at line 1 column {}", self.message, self.offset + 1)
    }
}

impl std::error::Error for ParseError {}

/// Nesting deeper than this is refused: the one limit every tool applies.
pub use crate::json::MAX_DEPTH;

impl Doc {
    /// Parses one JSON text (RFC 8259, UTF-8, nesting up to [`MAX_DEPTH`]).
    /// The buffers keep their capacity for the next line.
    pub fn parse<'a>(&'a mut self, line: &'a [u8]) -> Result<View<'a>, ParseError> {
        self.entries.clear();
        self.scratch.clear();
        let text = json::utf8(line).map_err(|valid_up_to| ParseError {
            message: "invalid UTF-8",
            offset: valid_up_to,
            utf8: true,
        })?;
        let mut p = Parser {
            s: line,
            text,
            i: 0,
            entries: &mut self.entries,
            scratch: &mut self.scratch,
            depth: 0,
        };
        p.ws();
        p.value()?;
        p.ws();
        if p.i != line.len() {
            return Err(p.err("trailing characters"));
        }
        Ok(View {
            entries: &self.entries,
            line: text,
            scratch: &self.scratch,
        })
    }
}

/// A recursive-descent parser over a line already known to be UTF-8.
struct Parser<'p> {
    s: &'p [u8],
    text: &'p str,
    i: usize,
    entries: &'p mut Vec<Entry>,
    scratch: &'p mut String,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, message: &'static str) -> ParseError {
        ParseError {
            message,
            offset: self.i.min(self.s.len()),
            utf8: false,
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    #[inline]
    fn ws(&mut self) {
        self.i = json::skip_ws(self.s, self.i);
    }

    fn value(&mut self) -> Result<(), ParseError> {
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => {
                let (src, start, len) = self.string()?;
                self.entries.push(Entry::Str(src, start, len));
                Ok(())
            }
            Some(b't') => self.literal(b"true", Entry::Bool(true)),
            Some(b'f') => self.literal(b"false", Entry::Bool(false)),
            Some(b'n') => self.literal(b"null", Entry::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("expected value")),
            None => Err(self.err("EOF while parsing a value")),
        }
    }

    fn literal(&mut self, word: &[u8], entry: Entry) -> Result<(), ParseError> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            self.entries.push(entry);
            Ok(())
        } else {
            Err(self.err("expected ident"))
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("recursion limit exceeded"));
        }
        self.i += 1;
        self.ws();
        Ok(())
    }

    fn object(&mut self) -> Result<(), ParseError> {
        self.container(
            b'}',
            "EOF while parsing an object",
            "expected `,` or `}`",
            |len, end| Entry::Obj { len, end },
            Self::member,
        )
    }

    fn array(&mut self) -> Result<(), ParseError> {
        self.container(
            b']',
            "EOF while parsing a list",
            "expected `,` or `]`",
            |len, end| Entry::Arr { len, end },
            Self::value,
        )
    }

    /// An object or array at its opening bracket: `item` parses each member
    /// or element, `entry` makes the container's entry once its length and
    /// end are known.
    #[inline]
    fn container(
        &mut self,
        close: u8,
        eof: &'static str,
        expected: &'static str,
        entry: impl Fn(u32, u32) -> Entry,
        mut item: impl FnMut(&mut Self) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        let at = self.entries.len();
        self.entries.push(entry(0, 0));
        self.enter()?;
        let mut len = 0u32;
        if self.peek() == Some(close) {
            self.i += 1;
        } else {
            loop {
                item(self)?;
                len += 1;
                self.ws();
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        self.ws();
                        if self.peek() == Some(close) {
                            return Err(self.err("trailing comma"));
                        }
                    }
                    Some(c) if c == close => {
                        self.i += 1;
                        break;
                    }
                    None => return Err(self.err(eof)),
                    Some(_) => return Err(self.err(expected)),
                }
            }
        }
        self.depth -= 1;
        let end = self.entries.len() as u32;
        self.entries[at] = entry(len, end);
        Ok(())
    }

    /// An object member: its name, `:` and its value.
    fn member(&mut self) -> Result<(), ParseError> {
        match self.peek() {
            Some(b'"') => {}
            None => return Err(self.err("EOF while parsing an object")),
            Some(_) => return Err(self.err("key must be a string")),
        }
        let (src, start, len) = self.string()?;
        self.entries.push(Entry::Key(src, start, len));
        self.ws();
        match self.peek() {
            Some(b':') => self.i += 1,
            None => return Err(self.err("EOF while parsing an object")),
            Some(_) => return Err(self.err("expected `:`")),
        }
        self.ws();
        self.value()
    }

    /// A string at `"`: borrowed from the line when it has no escapes,
    /// decoded into the scratch buffer when it has.
    fn string(&mut self) -> Result<(In, u32, u32), ParseError> {
        self.i += 1;
        let start = self.i;
        let rest = &self.s[start..];
        let stop = memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
        if let Some(k) = rest[..stop].iter().position(|&b| b < 0x20) {
            self.i = start + k;
            return Err(
                self.err("control character (\\u0000-\\u001F) found while parsing a string")
            );
        }
        self.i = start + stop;
        match self.peek() {
            Some(b'"') => {
                self.i += 1;
                return Ok((In::Line, start as u32, stop as u32));
            }
            Some(_) => {}
            None => return Err(self.err("EOF while parsing a string")),
        }
        let out = self.scratch.len();
        // The line is UTF-8 and `"`/`\` are ASCII, so these are char boundaries.
        let line = self.text;
        self.scratch.push_str(&line[start..self.i]);
        loop {
            let run = self.i;
            loop {
                match self.peek() {
                    Some(b'"' | b'\\') => break,
                    Some(0..=0x1f) => {
                        return Err(self.err(
                            "control character (\\u0000-\\u001F) found while parsing a string",
                        ))
                    }
                    Some(_) => self.i += 1,
                    None => return Err(self.err("EOF while parsing a string")),
                }
            }
            self.scratch.push_str(&line[run..self.i]);
            if self.peek() == Some(b'"') {
                self.i += 1;
                return Ok((In::Scratch, out as u32, (self.scratch.len() - out) as u32));
            }
            self.i += 1;
            let c = match self.peek() {
                Some(b'"') => '"',
                Some(b'\\') => '\\',
                Some(b'/') => '/',
                Some(b'b') => '\u{8}',
                Some(b'f') => '\u{c}',
                Some(b'n') => '\n',
                Some(b'r') => '\r',
                Some(b't') => '\t',
                Some(b'u') => {
                    let hi = self.hex4()?;
                    let code = match hi {
                        0xD800..=0xDBFF => {
                            if self.s.get(self.i + 1..self.i + 3) != Some(b"\\u") {
                                return Err(self.err("lone leading surrogate in hex escape"));
                            }
                            self.i += 2;
                            let lo = self.hex4()?;
                            if !(0xDC00..=0xDFFF).contains(&lo) {
                                return Err(self.err("lone leading surrogate in hex escape"));
                            }
                            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                        }
                        0xDC00..=0xDFFF => return Err(self.err("unexpected end of hex escape")),
                        code => code,
                    };
                    char::from_u32(code).ok_or_else(|| self.err("invalid unicode code point"))?
                }
                None => return Err(self.err("EOF while parsing a string")),
                Some(_) => return Err(self.err("invalid escape")),
            };
            self.i += 1;
            self.scratch.push(c);
        }
    }

    /// The four hex digits after `\u` (at `u`); leaves `i` on the last digit.
    fn hex4(&mut self) -> Result<u32, ParseError> {
        let mut v = 0u32;
        for _ in 0..4 {
            self.i += 1;
            let d = match self.peek() {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                None => return Err(self.err("EOF while parsing a string")),
                Some(_) => return Err(self.err("invalid escape")),
            };
            v = v * 16 + u32::from(d);
        }
        Ok(v)
    }

    fn number(&mut self) -> Result<(), ParseError> {
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.i += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.err("invalid number"));
                }
            }
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = self.peek() {
                    self.i += 1;
                }
            }
            None => return Err(self.err("EOF while parsing a value")),
            Some(_) => return Err(self.err("invalid number")),
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            float = true;
            self.i += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number"));
            }
            while let Some(b'0'..=b'9') = self.peek() {
                self.i += 1;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            float = true;
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number"));
            }
            while let Some(b'0'..=b'9') = self.peek() {
                self.i += 1;
            }
        }
        // ASCII digits and signs only, so this is a str.
        let text = &self.text[start..self.i];
        let number = if !float && !negative {
            text.parse::<u64>().ok().map(Number::from)
        } else if !float {
            // As serde_json: -0 is a float, and so is a negative below i64.
            text.parse::<i64>()
                .ok()
                .filter(|n| *n != 0)
                .map(Number::from)
        } else {
            None
        };
        let number = match number {
            Some(n) => n,
            None => {
                let f: f64 = text.parse().map_err(|_| self.err("invalid number"))?;
                Number::from_f64(f).ok_or_else(|| self.err("number out of range"))?
            }
        };
        self.entries.push(Entry::Num(number));
        Ok(())
    }
}

impl<'a> View<'a> {
    /// The document's root value.
    pub fn root(&'a self) -> Node<'a> {
        Node::At(self, 0)
    }

    fn text(&self, src: In, start: u32, len: u32) -> &'a str {
        let s = match src {
            In::Line => self.line,
            In::Scratch => self.scratch,
        };
        &s[start as usize..(start + len) as usize]
    }

    fn next_sibling(&self, i: u32) -> u32 {
        match self.entries[i as usize] {
            Entry::Arr { end, .. } | Entry::Obj { end, .. } => end,
            _ => i + 1,
        }
    }
}

/// One value of a [`View`], or a lone string (a member name being checked
/// by `propertyNames`).
#[derive(Clone, Copy)]
pub enum Node<'a> {
    /// The entry at this index.
    At(&'a View<'a>, u32),
    /// A string not in the document.
    Str(&'a str),
}

impl<'a> Node<'a> {
    fn entry(&self) -> Option<(&'a View<'a>, &'a Entry, u32)> {
        match *self {
            Node::At(view, i) => Some((view, &view.entries[i as usize], i)),
            Node::Str(_) => None,
        }
    }

    /// The value as an owned `serde_json::Value` (for error reports).
    pub fn to_json(&self) -> Value {
        match *self {
            Node::Str(s) => Value::String(s.to_string()),
            Node::At(view, i) => match &view.entries[i as usize] {
                Entry::Null => Value::Null,
                Entry::Bool(b) => Value::Bool(*b),
                Entry::Num(n) => Value::Number(n.clone()),
                Entry::Str(src, s, l) | Entry::Key(src, s, l) => {
                    Value::String(view.text(*src, *s, *l).to_string())
                }
                Entry::Arr { .. } => Value::Array(
                    ArrayNode { view, at: i }
                        .elements()
                        .map(|n| n.to_json())
                        .collect(),
                ),
                Entry::Obj { .. } => {
                    let mut map = Map::new();
                    for (k, v) in (ObjectNode { view, at: i }).members() {
                        map.insert(k.to_string(), v.to_json());
                    }
                    Value::Object(map)
                }
            },
        }
    }

    /// The member `name` of an object (the last one, when a name repeats,
    /// as most JSON readers downstream keep the last).
    pub fn member(&self, name: &str) -> Option<Node<'a>> {
        self.as_object().and_then(|o| o.find(name))
    }

    /// The string, if this is one.
    pub fn str(&self) -> Option<&'a str> {
        match *self {
            Node::Str(s) => Some(s),
            Node::At(view, i) => match view.entries[i as usize] {
                Entry::Str(src, s, l) => Some(view.text(src, s, l)),
                _ => None,
            },
        }
    }
}

impl Json for Tape {
    type Node<'a> = Node<'a>;
    type PreparedKey = Box<str>;
    type StringBuffer = ();
    const KEYS_PER_LOOKUP: usize = 4;
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> Box<str> {
        key.into()
    }

    fn with_string_node<T>((): &mut (), string: &str, f: impl FnOnce(Node<'_>) -> T) -> T {
        f(Node::Str(string))
    }
}

impl<'a> NodeTrait<'a, Tape> for Node<'a> {
    type Object = ObjectNode<'a>;
    type Array = ArrayNode<'a>;
    type Number = &'a Number;

    fn as_object(&self) -> Option<ObjectNode<'a>> {
        match self.entry()? {
            (view, Entry::Obj { .. }, at) => Some(ObjectNode { view, at }),
            _ => None,
        }
    }
    fn as_array(&self) -> Option<ArrayNode<'a>> {
        match self.entry()? {
            (view, Entry::Arr { .. }, at) => Some(ArrayNode { view, at }),
            _ => None,
        }
    }
    fn as_string(&self) -> Option<Cow<'a, str>> {
        self.str().map(Cow::Borrowed)
    }
    fn as_number(&self) -> Option<&'a Number> {
        match self.entry()? {
            (_, Entry::Num(n), _) => Some(n),
            _ => None,
        }
    }
    fn as_boolean(&self) -> Option<bool> {
        match self.entry()? {
            (_, Entry::Bool(b), _) => Some(*b),
            _ => None,
        }
    }
    fn is_null(&self) -> bool {
        matches!(self.entry(), Some((_, Entry::Null, _)))
    }
    fn json_type(&self) -> JsonType {
        match self.entry() {
            None => JsonType::String,
            Some((_, e, _)) => match e {
                Entry::Null => JsonType::Null,
                Entry::Bool(_) => JsonType::Boolean,
                Entry::Num(_) => JsonType::Number,
                Entry::Str(..) | Entry::Key(..) => JsonType::String,
                Entry::Arr { .. } => JsonType::Array,
                Entry::Obj { .. } => JsonType::Object,
            },
        }
    }
    fn string_length_within(&self, min: u64, max: u64) -> Option<bool> {
        let s = self.str()?;
        let bytes = s.len() as u64;
        if bytes < min || bytes.div_ceil(4) > max {
            return Some(false);
        }
        if min <= bytes.div_ceil(4) && bytes <= max {
            return Some(true);
        }
        Some((min..=max).contains(&(s.chars().count() as u64)))
    }
    fn equals_value(&self, expected: &Value) -> bool {
        match (self.json_type(), expected) {
            (JsonType::String, Value::String(e)) => self.str() == Some(e.as_str()),
            (JsonType::String, _) => false,
            (JsonType::Null, e) => e.is_null(),
            (JsonType::Boolean, Value::Bool(e)) => self.as_boolean() == Some(*e),
            (JsonType::Boolean, _) => false,
            _ => jsonschema::json::cmp::equal(&self.to_json(), expected),
        }
    }
    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(self.to_json())
    }
    fn identity(&self) -> Option<NodeIdentity> {
        match *self {
            Node::At(view, i) => Some(NodeIdentity::tagged(view.entries.as_ptr() as usize, i)),
            Node::Str(s) => Some(NodeIdentity::tagged(s.as_ptr() as usize, u32::MAX)),
        }
    }
}

/// An object of a [`View`].
#[derive(Clone, Copy)]
pub struct ObjectNode<'a> {
    view: &'a View<'a>,
    at: u32,
}

impl<'a> ObjectNode<'a> {
    fn find(&self, name: &str) -> Option<Node<'a>> {
        let mut found = None;
        for (k, v) in self.members() {
            if k == name {
                found = Some(v);
            }
        }
        found
    }
}

/// The members of an object, in document order.
pub struct Members<'a> {
    view: &'a View<'a>,
    next: u32,
    end: u32,
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, Node<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let Entry::Key(src, s, l) = self.view.entries[self.next as usize] else {
            unreachable!("an object member starts with its name");
        };
        let value = self.next + 1;
        self.next = self.view.next_sibling(value);
        Some((self.view.text(src, s, l), Node::At(self.view, value)))
    }
}

impl<'a> Object<'a, Tape> for ObjectNode<'a> {
    type Node = Node<'a>;
    type MemberName = &'a str;
    type MembersIter = Members<'a>;

    fn len(&self) -> usize {
        match self.view.entries[self.at as usize] {
            Entry::Obj { len, .. } => len as usize,
            _ => 0,
        }
    }
    fn get(&self, key: &Box<str>) -> Option<Node<'a>> {
        self.find(key)
    }
    fn members(&self) -> Members<'a> {
        let end = self.view.next_sibling(self.at);
        Members {
            view: self.view,
            next: self.at + 1,
            end,
        }
    }
}

/// An array of a [`View`].
#[derive(Clone, Copy)]
pub struct ArrayNode<'a> {
    view: &'a View<'a>,
    at: u32,
}

/// The elements of an array, in order.
pub struct Elements<'a> {
    view: &'a View<'a>,
    next: u32,
    end: u32,
}

impl<'a> Iterator for Elements<'a> {
    type Item = Node<'a>;
    fn next(&mut self) -> Option<Node<'a>> {
        if self.next >= self.end {
            return None;
        }
        let at = self.next;
        self.next = self.view.next_sibling(at);
        Some(Node::At(self.view, at))
    }
}

impl<'a> Array<'a, Tape> for ArrayNode<'a> {
    type Node = Node<'a>;
    type ElementsIter = Elements<'a>;

    fn len(&self) -> usize {
        match self.view.entries[self.at as usize] {
            Entry::Arr { len, .. } => len as usize,
            _ => 0,
        }
    }
    fn elements(&self) -> Elements<'a> {
        let end = self.view.next_sibling(self.at);
        Elements {
            view: self.view,
            next: self.at + 1,
            end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_values() {
        let text = r#"{"a":[1,-2,3.5,"x\ny",true,null,{}],"b\u0041":{"c":"é"},"e":[]}"#;
        let mut doc = Doc::default();
        let view = doc.parse(text.as_bytes()).unwrap();
        let expected: Value = serde_json::from_str(text).unwrap();
        assert_eq!(view.root().to_json(), expected);
        assert_eq!(
            view.root().member("bA").unwrap().member("c").unwrap().str(),
            Some("é")
        );
        assert!(view.root().member("missing").is_none());
    }

    #[test]
    fn last_duplicate_member_wins() {
        let mut doc = Doc::default();
        let view = doc.parse(br#"{"a":1,"a":"two"}"#).unwrap();
        assert_eq!(view.root().member("a").unwrap().str(), Some("two"));
    }

    #[test]
    fn refuses_bad_json_and_deep_nesting() {
        let mut doc = Doc::default();
        assert!(doc.parse(b"{\"a\":1} x").is_err());
        assert!(doc.parse(b"{\"a\":\"\xff\"}").is_err());
        assert!(doc.parse(b"").is_err());
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(doc.parse(deep.as_bytes()).is_err());
    }

    /// A small deterministic generator for the differential tests.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn random_text(r: &mut Rng, depth: u32) -> String {
        const ATOMS: &[&str] = &[
            "0",
            "-0",
            "1",
            "-1",
            "42",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "1.5",
            "-0.25e-3",
            "1E10",
            "6.02e23",
            "1e400",
            "true",
            "false",
            "null",
            r#""""#,
            r#""abc""#,
            r#""a\"b""#,
            r#""\u00e9\n\t\/""#,
            r#""\ud83d\ude00""#,
            r#""é中😀""#,
            r#""\\""#,
        ];
        if depth == 0 || r.below(3) == 0 {
            return ATOMS[r.below(ATOMS.len() as u64) as usize].to_string();
        }
        let n = r.below(4);
        let ws = |r: &mut Rng| [" ", "", "\t", "\r\n", ""][r.below(5) as usize];
        if r.below(2) == 0 {
            let items: Vec<String> = (0..n)
                .map(|_| format!("{}{}{}", ws(r), random_text(r, depth - 1), ws(r)))
                .collect();
            format!("[{}]", items.join(","))
        } else {
            let items: Vec<String> = (0..n)
                .map(|i| {
                    format!(
                        "{}\"k{}\"{}:{}{}",
                        ws(r),
                        i % 3,
                        ws(r),
                        ws(r),
                        random_text(r, depth - 1)
                    )
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
    }

    fn close(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                x == y || ((x - y) / y).abs() < 1e-15
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(a, b)| close(a, b))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
            }
            _ => a == b,
        }
    }

    #[test]
    fn agrees_with_serde_json_on_random_and_mutated_text() {
        let mut r = Rng(7);
        let mut doc = Doc::default();
        for round in 0..20_000 {
            let mut text = random_text(&mut r, 4).into_bytes();
            if round % 2 == 1 {
                // Break it: drop, duplicate or replace a byte.
                let at = r.below(text.len() as u64) as usize;
                match r.below(3) {
                    0 => {
                        text.remove(at);
                    }
                    1 => text.insert(at, text[at]),
                    _ => text[at] = b"{}[],:\"\\ 0-e.tnu\x01\xff"[r.below(18) as usize],
                }
            }
            let theirs = serde_json::from_slice::<Value>(&text);
            let ours = doc.parse(&text).map(|v| v.root().to_json());
            match (&ours, &theirs) {
                (Ok(a), Ok(b)) => assert!(
                    close(a, b),
                    "{}: {a} vs {b}",
                    String::from_utf8_lossy(&text)
                ),
                (Err(_), Err(_)) => {}
                _ => panic!(
                    "{:?}: ours {ours:?}, serde_json {theirs:?}",
                    String::from_utf8_lossy(&text)
                ),
            }
        }
    }

    #[test]
    fn error_positions_and_kinds() {
        let mut doc = Doc::default();
        let e = doc.parse(b"{not json").err().unwrap();
        assert_eq!(e.to_string(), "key must be a string at line 1 column 2");
        let e = doc.parse(b"[1,2,]").err().unwrap();
        assert_eq!((e.message, e.offset), ("trailing comma", 5));
        let e = doc.parse(b"\"ok\xff\"").err().unwrap();
        assert!(e.utf8);
        let e = doc.parse(b"[\"a\x01\"]").err().unwrap();
        assert!(e.message.starts_with("control character"));
        let deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        assert_eq!(
            doc.parse(deep.as_bytes()).err().unwrap().message,
            "recursion limit exceeded"
        );
        let ok = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert!(doc.parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn validates_like_serde_values() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "n": {"type": "integer", "minimum": 0},
                "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": true}
            },
            "required": ["id"],
            "additionalProperties": false,
            "propertyNames": {"maxLength": 4}
        });
        let v = jsonschema::options_for::<Tape>()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        let serde_v = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        let mut doc = Doc::default();
        for text in [
            r#"{"id":"5b0b4f0e-8d0a-4a8e-9d6e-2f7f1e7b8c11","n":3,"tags":["a","b"]}"#,
            r#"{"id":"nope","n":-1,"tags":["a","a","c"],"extra":1}"#,
            r#"{"n":1.5}"#,
            r#"[]"#,
        ] {
            let view = doc.parse(text.as_bytes()).unwrap();
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(v.is_valid(view.root()), serde_v.is_valid(&value), "{text}");
            let ours: Vec<String> = v
                .iter_errors(view.root())
                .map(|e| format!("{} {}", e.instance_path().as_str(), e))
                .collect();
            let theirs: Vec<String> = serde_v
                .iter_errors(&value)
                .map(|e| format!("{} {}", e.instance_path().as_str(), e))
                .collect();
            assert_eq!(ours, theirs, "{text}");
        }
    }
}
