//! The validating pass of every scanner in [`super`], written by hand: one
//! walk over the bytes that accepts exactly the lines serde_json and the
//! shared rule accept (valid JSON, [`MAX_DEPTH`], no lone surrogate
//! escape, no number beyond a double's range), and on the way finds the
//! members and paths the scanners ask for.
//!
//! Why by hand: serde_json's visitors parse every number and copy every
//! escaped string they are shown, which was most of the time `window`,
//! `log-append` and `enrich` spent per event. This pass only says yes or
//! no; on a no, the scanners run serde_json's pass again to say what is
//! wrong and where, so messages are unchanged. The pass is also the UTF-8
//! check: outside strings only ASCII is valid JSON, and inside them a run
//! of non-ASCII bytes is checked where the scan meets it, so an ASCII line
//! is read once instead of twice.

use std::ops::Range;

use super::{hex4, is_ws, Key, Member, PathNode, MAX_DEPTH, SAFE_DIGITS};
use crate::path::Segment;

/// The line is not acceptable; serde_json's pass says why.
#[derive(Debug)]
pub(super) struct Rejected;

type Step = Result<(), Rejected>;

/// An object key as found: the range between its quotes, and whether it
/// has escapes (then it must be decoded to be compared).
pub(super) struct RawKey {
    inner: Range<usize>,
    escaped: bool,
}

impl RawKey {
    /// True when the key is `name`.
    fn is(&self, line: &[u8], name: &str) -> bool {
        if !self.escaped {
            return &line[self.inner.clone()] == name.as_bytes();
        }
        decode(line, &self.inner).is_some_and(|k| k == name)
    }

    /// The key as the scanners keep it.
    fn into_key(self, line: &[u8]) -> Key {
        if !self.escaped {
            return Key::Span(self.inner);
        }
        Key::Owned(decode(line, &self.inner).unwrap_or_default().into())
    }
}

/// A key with escapes, decoded (its quotes are around `inner`).
fn decode(line: &[u8], inner: &Range<usize>) -> Option<String> {
    serde_json::from_slice::<String>(&line[inner.start - 1..inner.end + 1]).ok()
}

/// Bytes that end a run of plain string bytes: the quote, the backslash,
/// the control characters JSON does not allow unescaped, and non-ASCII
/// bytes (their UTF-8 is checked apart).
static STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = true;
        c += 1;
    }
    let mut c = 0x80;
    while c < 0x100 {
        t[c] = true;
        c += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// A position in a line being validated.
pub(super) struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8]) -> Cursor<'a> {
        Cursor { b, i: 0 }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if !is_ws(c) {
                break;
            }
            self.i += 1;
        }
    }

    /// Whitespace, then one value; `depth` is how deep its container is
    /// (0 for a whole line). Returns where the value is.
    fn value(&mut self, depth: usize) -> Result<Range<usize>, Rejected> {
        self.skip_ws();
        let start = self.i;
        match self.peek() {
            Some(b'{') => self.object(depth, |c, _, d| c.value(d).map(drop))?,
            Some(b'[') => self.array(depth, |c, _, d| c.value(d).map(drop))?,
            Some(b'"') => self.string().map(drop)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(b't') => self.literal(b"true")?,
            Some(b'f') => self.literal(b"false")?,
            Some(b'n') => self.literal(b"null")?,
            _ => return Err(Rejected),
        }
        Ok(start..self.i)
    }

    /// The object at the cursor; `member` must read each member's value
    /// (it is given the key and the depth to pass on).
    fn object(
        &mut self,
        depth: usize,
        member: impl FnMut(&mut Self, RawKey, usize) -> Step,
    ) -> Step {
        match self.open(depth, b'}')? {
            Some(depth) => self.members(depth, member),
            None => Ok(()),
        }
    }

    /// Enters the object or array at the cursor (`depth` is its
    /// container's): its own depth, or `None` when `close` ends it at once.
    fn open(&mut self, depth: usize, close: u8) -> Result<Option<usize>, Rejected> {
        let depth = depth + 1;
        if depth > MAX_DEPTH {
            return Err(Rejected);
        }
        self.i += 1;
        self.skip_ws();
        if self.peek() == Some(close) {
            self.i += 1;
            return Ok(None);
        }
        Ok(Some(depth))
    }

    /// An object's members from the cursor (at the first key) to its
    /// closing brace; `depth` is the object's own.
    fn members(
        &mut self,
        depth: usize,
        mut member: impl FnMut(&mut Self, RawKey, usize) -> Step,
    ) -> Step {
        loop {
            if self.peek() != Some(b'"') {
                return Err(Rejected);
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(Rejected);
            }
            self.i += 1;
            member(self, key, depth)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.skip_ws();
                }
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Rejected),
            }
        }
    }

    /// The array at the cursor; `element` must read each element (it is
    /// given the index and the depth to pass on).
    fn array(
        &mut self,
        depth: usize,
        mut element: impl FnMut(&mut Self, usize, usize) -> Step,
    ) -> Step {
        let Some(depth) = self.open(depth, b']')? else {
            return Ok(());
        };
        let mut index = 0;
        loop {
            element(self, index, depth)?;
            index += 1;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Rejected),
            }
        }
    }

    /// The string at the cursor (its opening quote).
    fn string(&mut self) -> Result<RawKey, Rejected> {
        let b = self.b;
        let start = self.i + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            i = plain_run(b, i);
            match b.get(i) {
                Some(b'"') => {
                    self.i = i + 1;
                    return Ok(RawKey {
                        inner: start..i,
                        escaped,
                    });
                }
                Some(b'\\') => {
                    escaped = true;
                    i = escape(b, i)?;
                }
                Some(&c) if c >= 0x80 => i = utf8_run(b, i)?,
                _ => return Err(Rejected),
            }
        }
    }

    /// The number at the cursor: JSON's grammar, and within a double's
    /// range as both serde_json and the rule judge it.
    fn number(&mut self) -> Step {
        let b = self.b;
        let start = self.i;
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i = digits(b, i + 1),
            _ => return Err(Rejected),
        }
        let int_digits = i - int_start;
        if b.get(i) == Some(&b'.') {
            let frac = i + 1;
            i = digits(b, frac);
            if i == frac {
                return Err(Rejected);
            }
        }
        let mut exponent = false;
        if matches!(b.get(i), Some(b'e' | b'E')) {
            exponent = true;
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let exp = i;
            i = digits(b, exp);
            if i == exp {
                return Err(Rejected);
            }
        }
        self.i = i;
        // Fewer integer digits than SAFE_DIGITS and no exponent: below
        // 10^308, within range whatever the fraction.
        if exponent || int_digits > SAFE_DIGITS {
            let text = std::str::from_utf8(&b[start..i]).map_err(|_| Rejected)?;
            let serde_finite = serde_json::from_str::<f64>(text).is_ok();
            let rule_finite = text.parse::<f64>().is_ok_and(f64::is_finite);
            if !(serde_finite && rule_finite) {
                return Err(Rejected);
            }
        }
        Ok(())
    }

    fn literal(&mut self, text: &[u8]) -> Step {
        if !self.b[self.i..].starts_with(text) {
            return Err(Rejected);
        }
        self.i += text.len();
        Ok(())
    }

    /// Whitespace to the end of the line, and nothing else.
    fn end(&mut self) -> Step {
        self.skip_ws();
        if self.i == self.b.len() {
            Ok(())
        } else {
            Err(Rejected)
        }
    }
}

/// The end of the plain string bytes from `i`: eight at a time while
/// none of them is a quote, a backslash or a control character (the
/// bit trick serde_json uses too), then one at a time.
#[inline]
fn plain_run(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        // A byte's high bit is set where it is zero, below 0x20 or not ASCII;
        // the lowest one found is exact (borrows only run upwards).
        let found = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w)
            | w;
        let found = found & HIGHS;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if STRING_STOP[c as usize] {
            break;
        }
        i += 1;
    }
    i
}

/// The end of the run of non-ASCII bytes at `i`, when they are valid
/// UTF-8: a multi-byte character is non-ASCII bytes only, so a run holds
/// whole characters or is invalid.
fn utf8_run(b: &[u8], i: usize) -> Result<usize, Rejected> {
    let len = b[i..].iter().position(|&c| c < 0x80).unwrap_or(b.len() - i);
    match std::str::from_utf8(&b[i..i + len]) {
        Ok(_) => Ok(i + len),
        Err(_) => Err(Rejected),
    }
}

/// The end of ASCII digits from `i`.
#[inline]
fn digits(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// The escape at `i` (its backslash); returns where the string goes on.
/// A `\u` escape of a surrogate must be a high one followed by a low one.
fn escape(b: &[u8], i: usize) -> Result<usize, Rejected> {
    match b.get(i + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 2),
        Some(b'u') => {
            let code = hex4(b, i + 2).ok_or(Rejected)?;
            match code {
                0xD800..=0xDBFF => {
                    if b.get(i + 6..i + 8) != Some(&b"\\u"[..]) {
                        return Err(Rejected);
                    }
                    match hex4(b, i + 8) {
                        Some(0xDC00..=0xDFFF) => Ok(i + 12),
                        _ => Err(Rejected),
                    }
                }
                0xDC00..=0xDFFF => Err(Rejected),
                _ => Ok(i + 6),
            }
        }
        _ => Err(Rejected),
    }
}

/// Runs `root` on the line's one top-level value, which must be an object;
/// returns the object's range when the whole line is acceptable.
fn object_line(
    line: &[u8],
    root: impl FnOnce(&mut Cursor<'_>) -> Step,
) -> Result<Range<usize>, Rejected> {
    let mut c = Cursor::new(line);
    c.skip_ws();
    if c.peek() != Some(b'{') {
        return Err(Rejected);
    }
    let start = c.i;
    root(&mut c)?;
    let end = c.i;
    c.end()?;
    Ok(start..end)
}

/// True when `text` is one acceptable JSON value of any kind.
pub(super) fn accepts_value(text: &[u8]) -> bool {
    let mut c = Cursor::new(text);
    c.value(0).is_ok() && c.end().is_ok()
}

/// The object's range when `line` is one acceptable JSON object.
pub(super) fn object(line: &[u8]) -> Result<Range<usize>, Rejected> {
    object_line(line, |c| c.value(0).map(drop))
}

/// [`object`], keeping every top-level member.
pub(super) fn members(line: &[u8], members: &mut Vec<Member>) -> Result<Range<usize>, Rejected> {
    object_line(line, |c| {
        c.object(0, |c, key, depth| {
            let value = c.value(depth)?;
            members.push(Member {
                key: key.into_key(line),
                value,
            });
            Ok(())
        })
    })
}

/// [`object`], finding the value at `path` (the last one when a key
/// repeats); `found` is left `None` when it is missing.
pub(super) fn path(
    line: &[u8],
    path: &[Segment],
    found: &mut Option<Range<usize>>,
) -> Result<Range<usize>, Rejected> {
    object_line(line, |c| path_value(c, line, path, found, 0))
}

fn path_value(
    c: &mut Cursor<'_>,
    line: &[u8],
    segments: &[Segment],
    found: &mut Option<Range<usize>>,
    depth: usize,
) -> Step {
    c.skip_ws();
    match (segments.split_first(), c.peek()) {
        (None, _) => {
            *found = Some(c.value(depth)?);
            Ok(())
        }
        (Some((Segment::Field(name), rest)), Some(b'{')) => c.object(depth, |c, key, d| {
            if key.is(line, name) {
                *found = None;
                path_value(c, line, rest, found, d)
            } else {
                c.value(d).map(drop)
            }
        }),
        (Some((&Segment::Index(wanted), rest)), Some(b'[')) => c.array(depth, |c, index, d| {
            if index == wanted {
                path_value(c, line, rest, found, d)
            } else {
                c.value(d).map(drop)
            }
        }),
        _ => c.value(depth).map(drop),
    }
}

/// [`path`] for the rest of an object whose first member (the position
/// member, already checked) ends before `at`: just past the comma after it,
/// or at the closing brace. The rest is judged as the object without that
/// member: `{"unilog":{…},}` is refused as `{"unilog":{…},}` would be.
pub(super) fn path_after(
    line: &[u8],
    at: usize,
    path: &[Segment],
    found: &mut Option<Range<usize>>,
) -> Step {
    let mut c = Cursor { b: line, i: at };
    c.skip_ws();
    if at > 0 && line[at - 1] == b',' {
        match path.split_first() {
            Some((Segment::Field(name), rest)) => c.members(1, |c, key, d| {
                if key.is(line, name) {
                    *found = None;
                    path_value(c, line, rest, found, d)
                } else {
                    c.value(d).map(drop)
                }
            })?,
            _ => c.members(1, |c, _, d| c.value(d).map(drop))?,
        }
    } else {
        if c.peek() != Some(b'}') {
            return Err(Rejected);
        }
        c.i += 1;
    }
    c.end()
}

/// [`object`], answering a path set's nodes (see `PathSet`): each node's
/// value is recorded when it is `whole`, else walked into its children.
pub(super) fn nodes(
    line: &[u8],
    nodes: &[PathNode],
    at: &mut [Option<Range<usize>>],
) -> Result<Range<usize>, Rejected> {
    object_line(line, |c| node_contents(c, line, nodes, at, 0, 0))
}

/// The value of `node` at the cursor: recorded whole, or walked.
fn node_value(
    c: &mut Cursor<'_>,
    line: &[u8],
    nodes: &[PathNode],
    at: &mut [Option<Range<usize>>],
    node: usize,
    depth: usize,
) -> Step {
    // A repeated key: the last one wins, below it too.
    for &n in &nodes[node].below {
        at[n] = None;
    }
    if nodes[node].whole {
        at[node] = Some(c.value(depth)?);
        return Ok(());
    }
    c.skip_ws();
    node_contents(c, line, nodes, at, node, depth)
}

/// The members or elements of the value at the cursor that `node`'s
/// children name are walked as their nodes; the rest is only checked.
fn node_contents(
    c: &mut Cursor<'_>,
    line: &[u8],
    nodes: &[PathNode],
    at: &mut [Option<Range<usize>>],
    node: usize,
    depth: usize,
) -> Step {
    let children = &nodes[node].children;
    match c.peek() {
        Some(b'{') => c.object(depth, |c, key, d| {
            let child = children.iter().find_map(|(seg, child)| match seg {
                Segment::Field(name) if key.is(line, name) => Some(*child),
                _ => None,
            });
            match child {
                Some(child) => node_value(c, line, nodes, at, child, d),
                None => c.value(d).map(drop),
            }
        }),
        Some(b'[') => c.array(depth, |c, index, d| {
            let child = children.iter().find_map(|(seg, child)| match seg {
                Segment::Index(i) if *i == index => Some(*child),
                _ => None,
            });
            match child {
                Some(child) => node_value(c, line, nodes, at, child, d),
                None => c.value(d).map(drop),
            }
        }),
        _ => c.value(depth).map(drop),
    }
}
