//! A flat, borrowed JSON document for validation: one pass of serde_json's
//! parser writes every value into a reusable vector of entries whose
//! strings point into the input line, so validating an event allocates
//! nothing once the buffers have grown. The `jsonschema` crate validates it
//! through its `Json` representation traits.

use std::borrow::Cow;
use std::fmt;

use jsonschema::json::{Array, Json, Node as NodeTrait, NodeIdentity, Object};
use jsonschema::JsonType;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

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
    Arr { len: u32, end: u32 },
    Obj { len: u32, end: u32 },
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

impl Doc {
    /// Parses one JSON text (serde_json's grammar, UTF-8 and nesting limit
    /// of 128). The buffers keep their capacity for the next line.
    pub fn parse<'a>(&'a mut self, line: &'a [u8]) -> Result<View<'a>, serde_json::Error> {
        self.entries.clear();
        self.scratch.clear();
        let mut de = serde_json::Deserializer::from_slice(line);
        let mut builder = Builder {
            base: line.as_ptr() as usize,
            line_len: line.len(),
            entries: &mut self.entries,
            scratch: &mut self.scratch,
        };
        (&mut builder).deserialize(&mut de)?;
        de.end()?;
        // serde_json checked every string is UTF-8; the line outside strings
        // is JSON punctuation, so the whole line is UTF-8 too.
        let line = std::str::from_utf8(line).map_err(de::Error::custom)?;
        Ok(View {
            entries: &self.entries,
            line,
            scratch: &self.scratch,
        })
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

struct Builder<'b> {
    base: usize,
    line_len: usize,
    entries: &'b mut Vec<Entry>,
    scratch: &'b mut String,
}

impl Builder<'_> {
    fn string(&mut self, s: &str, borrowed: bool) -> (In, u32, u32) {
        let addr = s.as_ptr() as usize;
        if borrowed && addr >= self.base && addr + s.len() <= self.base + self.line_len {
            (In::Line, (addr - self.base) as u32, s.len() as u32)
        } else {
            let start = self.scratch.len() as u32;
            self.scratch.push_str(s);
            (In::Scratch, start, s.len() as u32)
        }
    }
}

impl<'de> DeserializeSeed<'de> for &mut Builder<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &mut Builder<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.entries.push(Entry::Null);
        Ok(())
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.entries.push(Entry::Bool(v));
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.entries.push(Entry::Num(v.into()));
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.entries.push(Entry::Num(v.into()));
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        let n = Number::from_f64(v).ok_or_else(|| E::custom("number out of range"))?;
        self.entries.push(Entry::Num(n));
        Ok(())
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        let (src, start, len) = self.string(v, true);
        self.entries.push(Entry::Str(src, start, len));
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        let (src, start, len) = self.string(v, false);
        self.entries.push(Entry::Str(src, start, len));
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let at = self.entries.len();
        self.entries.push(Entry::Arr { len: 0, end: 0 });
        let mut len = 0u32;
        while seq.next_element_seed(&mut *self)?.is_some() {
            len += 1;
        }
        let end = self.entries.len() as u32;
        self.entries[at] = Entry::Arr { len, end };
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let at = self.entries.len();
        self.entries.push(Entry::Obj { len: 0, end: 0 });
        let mut len = 0u32;
        while map.next_key_seed(KeySeed(&mut *self))?.is_some() {
            map.next_value_seed(&mut *self)?;
            len += 1;
        }
        let end = self.entries.len() as u32;
        self.entries[at] = Entry::Obj { len, end };
        Ok(())
    }
}

struct KeySeed<'x, 'b>(&'x mut Builder<'b>);

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        let (src, start, len) = self.0.string(v, true);
        self.0.entries.push(Entry::Key(src, start, len));
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        let (src, start, len) = self.0.string(v, false);
        self.0.entries.push(Entry::Key(src, start, len));
        Ok(())
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
                Entry::Str(src, s, l) | Entry::Key(src, s, l) => Value::String(view.text(*src, *s, *l).to_string()),
                Entry::Arr { .. } => Value::Array(
                    ArrayNode { view, at: i }.elements().map(|n| n.to_json()).collect(),
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
        Members { view: self.view, next: self.at + 1, end }
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
        Elements { view: self.view, next: self.at + 1, end }
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
        assert_eq!(view.root().member("bA").unwrap().member("c").unwrap().str(), Some("é"));
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
        let v = jsonschema::options_for::<Tape>().should_validate_formats(true).build(&schema).unwrap();
        let serde_v = jsonschema::options().should_validate_formats(true).build(&schema).unwrap();
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
            let ours: Vec<String> = v.iter_errors(view.root()).map(|e| format!("{} {}", e.instance_path().as_str(), e)).collect();
            let theirs: Vec<String> = serde_v.iter_errors(&value).map(|e| format!("{} {}", e.instance_path().as_str(), e)).collect();
            assert_eq!(ours, theirs, "{text}");
        }
    }
}
