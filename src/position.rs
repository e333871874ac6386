//! Source positions: where an event came from, carried end to end.
//!
//! `log-tail --with-position` puts a member first in every event:
//! `{"unilog":{"log":ID,"partition":P,"offset":O,"time":MS},…}` (and
//! `"sub":K` when a filter made several events from one input). Stateful
//! tools and destinations record, per source partition, the highest
//! position they hold ([`Held`]); a rerun starts each source where the
//! destinations need it ([`Held::resume_at`]) and each destination drops
//! what it already holds ([`Held::holds`]). Together that is exactly-once
//! through a pipe that has no transactions.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// The member's name, the first member of a positioned event.
pub const MEMBER: &str = "unilog";

/// The most events one filter may derive from one positioned input.
pub const FANOUT: u32 = 1 << 16;

/// Where an event came from: one source partition, an offset in it, and
/// which of the events made from that input it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    /// The stable id of the source log (`log.json`'s `id`, or a Kafka URL),
    /// shared: every event of a source carries the same one, and a clone
    /// per event must not allocate.
    pub log: Arc<str>,
    /// The partition of the source log.
    pub partition: u32,
    /// The record's offset in that partition.
    pub offset: u64,
    /// 0 for the first (usually only) event made from the input, then 1, 2, …
    pub sub: u32,
    /// The source log's append time in ms since the epoch, when known.
    pub time_ms: Option<i64>,
}

impl Position {
    /// The source partition this position is in.
    pub fn source(&self) -> Source {
        Source {
            log: self.log.clone(),
            partition: self.partition,
        }
    }

    /// The position as a (not complete) mark.
    pub fn mark(&self) -> Mark {
        Mark {
            offset: self.offset,
            sub: self.sub,
            complete: false,
        }
    }

    /// The position of the `i`-th of several events a filter derives from
    /// the event at this position (alert commands from one event, say).
    /// Subs stay unique and in emission order through any number of such
    /// filters as long as each derives fewer than [`FANOUT`] events from
    /// one input and the chain stays below `u32::MAX`; `None` past that.
    pub fn derived(&self, i: usize) -> Option<Position> {
        let i = u32::try_from(i).ok().filter(|&i| i < FANOUT)?;
        let sub = self.sub.checked_mul(FANOUT)?.checked_add(i)?;
        Some(Position {
            sub,
            ..self.clone()
        })
    }

    /// The same input's next derived event (`sub` one higher).
    pub fn next_sub(&self) -> Position {
        Position {
            sub: self.sub + 1,
            ..self.clone()
        }
    }
}

/// A position whose log id is borrowed: the per-event form, which neither
/// allocates nor counts references (cloning or dropping an [`Arc`] is an
/// atomic operation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PositionRef<'a> {
    /// The stable id of the source log.
    pub log: &'a str,
    /// The partition of the source log.
    pub partition: u32,
    /// The record's offset in that partition.
    pub offset: u64,
    /// Which of the events made from that input it is.
    pub sub: u32,
}

impl PositionRef<'_> {
    /// The position as a (not complete) mark.
    fn mark(&self) -> Mark {
        Mark {
            offset: self.offset,
            sub: self.sub,
            complete: false,
        }
    }
}

impl Position {
    /// The position with its log id borrowed.
    pub fn as_ref(&self) -> PositionRef<'_> {
        PositionRef {
            log: &self.log,
            partition: self.partition,
            offset: self.offset,
            sub: self.sub,
        }
    }
}

/// A source partition: a log id and a partition number.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source {
    /// The stable id of the log.
    pub log: Arc<str>,
    /// The partition.
    pub partition: u32,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.log, self.partition)
    }
}

impl Source {
    /// Parses the `LOG/PARTITION` form [`Display`](fmt::Display) writes; the
    /// log id may itself contain `/` (a Kafka URL), so the last one splits.
    pub fn parse(text: &str) -> Option<Source> {
        let (log, partition) = text.rsplit_once('/')?;
        if log.is_empty() {
            return None;
        }
        Some(Source {
            log: log.into(),
            partition: partition.parse().ok()?,
        })
    }
}

/// How far a destination holds one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// The highest offset held.
    pub offset: u64,
    /// The highest sub-index held at that offset.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sub: u32,
    /// True when every event derived from inputs up to and including
    /// `offset` is held; false when more subs of `offset` may follow.
    #[serde(default, skip_serializing_if = "is_false")]
    pub complete: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Mark {
    /// True when this mark is at or past `(offset, sub)`.
    pub fn covers(&self, offset: u64, sub: u32) -> bool {
        if self.complete {
            offset <= self.offset
        } else {
            (offset, sub) <= (self.offset, self.sub)
        }
    }

    /// The higher of two marks (a complete mark at an offset is past every
    /// sub of that offset).
    fn max(self, other: Mark) -> Mark {
        let rank = |m: &Mark| (m.offset, m.complete, m.sub);
        if rank(&other) > rank(&self) {
            other
        } else {
            self
        }
    }
}

/// What a destination holds, per source: serialised as a JSON object
/// `{"LOG/PARTITION":{"offset":O,"sub":K,"complete":true},…}`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Held(BTreeMap<Source, Mark>);

impl Held {
    /// Nothing held.
    pub fn new() -> Held {
        Held::default()
    }

    /// True when `position` is at or below what is held for its source: a
    /// duplicate that the destination already has.
    pub fn holds(&self, position: &Position) -> bool {
        self.holds_ref(position.as_ref())
    }

    /// [`Held::holds`] for a borrowed position.
    pub fn holds_ref(&self, position: PositionRef<'_>) -> bool {
        self.get(position.log, position.partition)
            .is_some_and(|m| m.covers(position.offset, position.sub))
    }

    /// The mark for one source, if any.
    pub fn get(&self, log: &str, partition: u32) -> Option<&Mark> {
        // BTreeMap<Source, _> cannot be searched by borrowed parts; sources
        // are few (a log's partitions), so a range scan is cheap enough and
        // avoids allocating on the per-event path.
        self.0
            .iter()
            .find(|(s, _)| s.partition == partition && *s.log == *log)
            .map(|(_, m)| m)
    }

    /// Raises the mark for the position's source (never lowers it).
    pub fn record(&mut self, position: &Position) {
        self.record_ref(position.as_ref())
    }

    /// [`Held::record`] for a borrowed position.
    pub fn record_ref(&mut self, position: PositionRef<'_>) {
        // The per-event path: no allocation when the source is known.
        let mark = position.mark();
        match self
            .0
            .iter_mut()
            .find(|(s, _)| s.partition == position.partition && *s.log == *position.log)
        {
            Some((_, held)) => *held = held.max(mark),
            None => {
                let source = Source {
                    log: position.log.into(),
                    partition: position.partition,
                };
                self.0.insert(source, mark);
            }
        }
    }

    /// Records that every event derived from inputs up to and including
    /// `offset` of `source` is held.
    pub fn record_complete(&mut self, source: &Source, offset: u64) {
        self.raise(
            source.clone(),
            Mark {
                offset,
                sub: 0,
                complete: true,
            },
        );
    }

    fn raise(&mut self, source: Source, mark: Mark) {
        if let Some(held) = self
            .0
            .iter_mut()
            .find(|(s, _)| **s == source)
            .map(|(_, m)| m)
        {
            *held = held.max(mark);
        } else {
            self.0.insert(source, mark);
        }
    }

    /// The offset a reader must start `source` at for this destination:
    /// one past a complete mark, else the mark's own offset (its later subs
    /// may still be missing); `None` when nothing is held for it.
    pub fn resume_at(&self, source: &Source) -> Option<u64> {
        self.get(&source.log, source.partition).map(|m| {
            if m.complete {
                m.offset + 1
            } else {
                m.offset
            }
        })
    }

    /// Every source and its mark, in source order.
    pub fn iter(&self) -> impl Iterator<Item = (&Source, &Mark)> {
        self.0.iter()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Takes the higher mark per source from `other`.
    pub fn merge(&mut self, other: &Held) {
        for (source, mark) in &other.0 {
            self.raise(source.clone(), *mark);
        }
    }
}

impl Serialize for Held {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (source, mark) in &self.0 {
            map.serialize_entry(&source.to_string(), mark)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Held {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Held, D::Error> {
        let raw = BTreeMap::<String, Mark>::deserialize(deserializer)?;
        let mut held = BTreeMap::new();
        for (key, mark) in raw {
            let source = Source::parse(&key).ok_or_else(|| {
                de::Error::custom(format!("{key:?} is not a source (LOG/PARTITION)"))
            })?;
            held.insert(source, mark);
        }
        Ok(Held(held))
    }
}

/// The member as it is written: field order fixed, `sub` only when not 0.
/// `by` names the producer that appended the event to a log (see
/// [`crate::store::producer`]); it is only in stored events.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Member {
    log: String,
    partition: u32,
    offset: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    sub: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<String>,
}

impl Member {
    fn into_position(self) -> Position {
        Position {
            log: self.log.into(),
            partition: self.partition,
            offset: self.offset,
            sub: self.sub,
            time_ms: self.time,
        }
    }
}

/// A position member found at the start of an event line (see [`locate`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    /// The position it holds.
    pub position: Position,
    /// The producer that stored the event, when it was read from a log.
    pub by: Option<String>,
    /// Where the event's other members begin in the line (just past the
    /// member's `,`), or its closing `}` when it has none.
    pub rest: usize,
}

impl Located {
    /// The line's members after the position member, ending with its `}`.
    pub fn rest<'a>(&self, line: &'a [u8]) -> &'a [u8] {
        &line[self.rest..]
    }
}

/// A position member found at the start of an event line, its log id
/// borrowed from the line (see [`locate_ref`]): the per-event path of a
/// destination.
#[derive(Debug, Clone, PartialEq)]
pub struct LocatedRef<'a> {
    /// The source log's id: borrowed, unless the member spelled it with
    /// escapes.
    pub log: Cow<'a, str>,
    /// The partition of the source log.
    pub partition: u32,
    /// The record's offset in that partition.
    pub offset: u64,
    /// Which of the events made from that input it is.
    pub sub: u32,
    /// The source log's append time in ms since the epoch, when given.
    pub time_ms: Option<i64>,
    /// The producer that stored the event, when it was read from a log.
    pub by: Option<String>,
    /// Where the event's other members begin in the line (just past the
    /// member's `,`), or its closing `}` when it has none.
    pub rest: usize,
    /// For a member as [`write_member`] writes it: the end of its
    /// `{"log":…,"offset":O` (and `"sub"`), which a destination copies as
    /// it is instead of writing it anew.
    head_end: Option<usize>,
}

impl LocatedRef<'_> {
    /// The position, borrowed.
    pub fn position(&self) -> PositionRef<'_> {
        PositionRef {
            log: &self.log,
            partition: self.partition,
            offset: self.offset,
            sub: self.sub,
        }
    }

    /// The line's members after the position member, ending with its `}`.
    pub fn rest<'l>(&self, line: &'l [u8]) -> &'l [u8] {
        &line[self.rest..]
    }

    /// The owned form, its log id shared with the last event's when it is
    /// the same (see [`shared_log_id`]).
    pub fn into_located(self) -> Located {
        Located {
            position: Position {
                log: shared_log_id(&self.log),
                partition: self.partition,
                offset: self.offset,
                sub: self.sub,
                time_ms: self.time_ms,
            },
            by: self.by,
            rest: self.rest,
        }
    }

    /// Appends `line` (the line this member was found in) to `out` as a log
    /// stores it: the member first, without the source's append time (the
    /// record has its own) and with the producer `by` that appended it.
    pub fn write_stored(&self, out: &mut Vec<u8>, line: &[u8], by: &StoredBy) {
        let Some(head_end) = self.head_end else {
            let source = Position {
                log: Arc::from(&*self.log),
                partition: self.partition,
                offset: self.offset,
                sub: self.sub,
                time_ms: None,
            };
            return write_before(out, &source, Some(&by.name), self.rest(line));
        };
        let start = crate::json::skip_ws(line, 0);
        out.extend_from_slice(&line[start..head_end]);
        out.extend_from_slice(&by.member_end);
        if line[self.rest - 1] == b',' {
            out.push(b',');
        }
        out.extend_from_slice(self.rest(line));
    }
}

/// A producer's name as [`LocatedRef::write_stored`] writes it, made once:
/// it ends every event the producer stores.
pub struct StoredBy {
    name: String,
    /// `,"by":NAME}`.
    member_end: Vec<u8>,
}

impl StoredBy {
    /// The producer `name`.
    pub fn new(name: &str) -> StoredBy {
        let mut member_end = b",\"by\":".to_vec();
        crate::json::push_str(&mut member_end, name);
        member_end.push(b'}');
        StoredBy {
            name: name.to_string(),
            member_end,
        }
    }
}

/// Finds the position member at the start of an event line without
/// copying the event: `Ok(None)` when it has none, an error when a member
/// is there but is not a position. Only a member written first counts.
pub fn locate(line: &[u8]) -> Result<Option<Located>, String> {
    Ok(locate_ref(line)?.map(LocatedRef::into_located))
}

/// [`locate`] with the log id borrowed from the line.
pub fn locate_ref(line: &[u8]) -> Result<Option<LocatedRef<'_>>, String> {
    let start = crate::json::skip_ws(line, 0);
    if !line[start..].starts_with(PREFIX) {
        return Ok(None);
    }
    let value_at = start + PREFIX.len();
    if let Some(found) = locate_canonical(line, value_at) {
        return Ok(Some(found));
    }
    locate_parsed(line, value_at).map(Some)
}

/// [`locate`] for any member: a full parse of its value at `value_at`.
fn locate_parsed(line: &[u8], value_at: usize) -> Result<LocatedRef<'static>, String> {
    let after = &line[value_at..];
    let mut stream = serde_json::Deserializer::from_slice(after).into_iter::<Member>();
    let member = match stream.next() {
        Some(Ok(member)) => member,
        Some(Err(e)) => {
            return Err(format!(
                "the \"{MEMBER}\" member is not a position ({e}); expected {{\"log\":ID,\"partition\":P,\"offset\":O,\"time\":MS}} as log-tail --with-position writes it"
            ))
        }
        None => return Err(format!("the \"{MEMBER}\" member has no value")),
    };
    let mut i = crate::json::skip_ws(line, value_at + stream.byte_offset());
    match line.get(i) {
        Some(b',') => i += 1,
        Some(b'}') => {}
        _ => {
            return Err(format!(
                "the \"{MEMBER}\" member is not followed by ',' or '}}'"
            ))
        }
    }
    Ok(LocatedRef {
        log: Cow::Owned(member.log),
        partition: member.partition,
        offset: member.offset,
        sub: member.sub,
        time_ms: member.time,
        by: member.by,
        rest: i,
        head_end: None,
    })
}

/// The member exactly as [`write_member_by`] writes it (keys in order, no
/// whitespace, strings without escapes), read byte by byte: the per-event
/// path of every destination. Anything else, including every malformed
/// member, is left to the full parse in [`locate`], which also gives the
/// error.
fn locate_canonical(line: &[u8], value_at: usize) -> Option<LocatedRef<'_>> {
    let mut cur = Cursor {
        b: line,
        i: value_at,
    };
    cur.literal(b"{\"log\":")?;
    let log = log_id_at(&mut cur)?;
    cur.literal(b",\"partition\":")?;
    let partition = u32::try_from(cur.integer()?).ok()?;
    cur.literal(b",\"offset\":")?;
    let offset = cur.integer()?;
    let sub = match cur.optional(b",\"sub\":") {
        true => u32::try_from(cur.integer()?).ok()?,
        false => 0,
    };
    let head_end = cur.i;
    let time_ms = match cur.optional(b",\"time\":") {
        true => Some(i64::try_from(cur.integer()?).ok()?),
        false => None,
    };
    let by = match cur.optional(b",\"by\":") {
        true => Some(cur.plain_string()?.to_string()),
        false => None,
    };
    cur.literal(b"}")?;
    let rest = match line.get(cur.i)? {
        b',' => cur.i + 1,
        b'}' => cur.i,
        _ => return None,
    };
    Some(LocatedRef {
        log: Cow::Borrowed(log),
        partition,
        offset,
        sub,
        time_ms,
        by,
        rest,
        head_end: Some(head_end),
    })
}

thread_local! {
    /// The last log id read on this thread: a thread's events mostly come
    /// from one log, so it is what the next event's id is compared with.
    static LAST_LOG_ID: std::cell::RefCell<Option<Arc<str>>> = const { std::cell::RefCell::new(None) };
}

/// The log id string at the cursor. Compared first with the last id read:
/// equal bytes need neither the search for the closing quote nor the
/// checks of a new id.
fn log_id_at<'a>(cur: &mut Cursor<'a>) -> Option<&'a str> {
    LAST_LOG_ID.with_borrow_mut(|last| {
        if let Some(last) = last {
            let end = cur.i + last.len() + 2;
            let quoted = cur.b.get(cur.i..end);
            let inner = quoted.and_then(|q| q.strip_prefix(b"\"")?.strip_suffix(b"\""));
            if let Some(inner) = inner.filter(|inner| *inner == last.as_bytes()) {
                cur.i = end;
                // SAFETY: the bytes equal those of a `str`, so they are
                // UTF-8.
                return Some(unsafe { std::str::from_utf8_unchecked(inner) });
            }
        }
        let id = cur.plain_string()?;
        *last = Some(Arc::from(id));
        Some(id)
    })
}

/// `id` as an [`Arc`]: the last id read on this thread when the text is
/// the same, so that it is not allocated again for every event.
fn shared_log_id(id: &str) -> Arc<str> {
    LAST_LOG_ID.with_borrow_mut(|last| match last {
        Some(shared) if **shared == *id => shared.clone(),
        _ => last.insert(Arc::from(id)).clone(),
    })
}

/// Reads the canonical member's pieces; every method gives `None` (or
/// `false`) on anything it does not expect.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn literal<const N: usize>(&mut self, text: &[u8; N]) -> Option<()> {
        self.optional(text).then_some(())
    }

    /// The texts are constants of known length, which the compiler can
    /// compare inline.
    fn optional<const N: usize>(&mut self, text: &[u8; N]) -> bool {
        let found = self.b.get(self.i..self.i + N).is_some_and(|r| r == text);
        if found {
            self.i += N;
        }
        found
    }

    /// A string with no escapes and no control characters, as UTF-8.
    fn plain_string(&mut self) -> Option<&'a str> {
        let rest = self.b.get(self.i..)?.strip_prefix(b"\"")?;
        let len = memchr::memchr(b'"', rest)?;
        let body = &rest[..len];
        if body.iter().any(|&c| c == b'\\' || c < 0x20) {
            return None;
        }
        self.i += len + 2;
        std::str::from_utf8(body).ok()
    }

    /// A non-negative integer without leading zeros, sign or fraction.
    fn integer(&mut self) -> Option<u64> {
        let start = self.i;
        let mut value = 0u64;
        while let Some(digit) = self.b.get(self.i).map(|c| c.wrapping_sub(b'0')) {
            if digit > 9 {
                break;
            }
            // 19 digits never overflow a u64; only a 20th needs checks.
            value = if self.i - start < 19 {
                value * 10 + u64::from(digit)
            } else {
                value.checked_mul(10)?.checked_add(u64::from(digit))?
            };
            self.i += 1;
        }
        let digits = self.i - start;
        if digits == 0 || (digits > 1 && self.b[start] == b'0') {
            return None;
        }
        match self.b.get(self.i) {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(value),
        }
    }
}

/// Appends an event with `position` (and the producer `by`, for a stored
/// event) as its first member to `out`; `rest` is the event's other
/// members and closing brace, as [`Located::rest`] gives them, or `}`.
pub fn write_before(out: &mut Vec<u8>, position: &Position, by: Option<&str>, rest: &[u8]) {
    out.extend_from_slice(PREFIX);
    write_member_by(out, position, by);
    push_separator(out, rest);
    out.extend_from_slice(rest);
}

/// The `,` between the member and the event's other members `rest`, unless
/// there are none.
fn push_separator(out: &mut Vec<u8>, rest: &[u8]) {
    if rest.get(crate::json::skip_ws(rest, 0)) != Some(&b'}') {
        out.push(b',');
    }
}

/// Writes events of one source log with their position first, as
/// [`write_before`] does, but with the member's opening and the log id
/// (escaped) made once: `log-tail --with-position` runs it for every event.
pub struct PositionWriter {
    /// `{"unilog":{"log":ID,"partition":`.
    head: Vec<u8>,
}

impl PositionWriter {
    /// A writer for positions in the log `log`.
    pub fn new(log: &str) -> PositionWriter {
        let mut head = PREFIX.to_vec();
        write_member_opening(&mut head, log);
        PositionWriter { head }
    }

    /// Appends to `out` the event whose members after its `{` are `rest`,
    /// with the position `partition`, `offset`, append time `time_ms` first.
    pub fn write_before(
        &self,
        out: &mut Vec<u8>,
        partition: u32,
        offset: u64,
        time_ms: i64,
        rest: &[u8],
    ) {
        self.write_head(out, partition, offset, time_ms, rest);
        out.extend_from_slice(rest);
    }

    /// [`PositionWriter::write_before`] without `rest` itself: what goes
    /// before it, for a caller that writes the two pieces where they go
    /// without copying `rest` first.
    pub fn write_head(
        &self,
        out: &mut Vec<u8>,
        partition: u32,
        offset: u64,
        time_ms: i64,
        rest: &[u8],
    ) {
        out.extend_from_slice(&self.head);
        write_member_after_opening(out, partition, offset, 0, Some(time_ms), None);
        push_separator(out, rest);
    }
}

/// How a positioned event line begins.
pub const PREFIX: &[u8] = b"{\"unilog\":";

/// Splits an event line that begins with the position member: `Ok(None)`
/// when it has none, `Ok(Some((position, rest)))` where `rest` is the event
/// without the member, and `Err(message)` when a member is there but is not
/// a position. Only a member written first counts (as `log-tail` writes
/// it), so events that merely contain `unilog` deeper are left alone.
pub fn split(line: &[u8]) -> Result<Option<(Position, Vec<u8>)>, String> {
    let Some(found) = locate(line)? else {
        return Ok(None);
    };
    let rest = found.rest(line);
    let mut event = Vec::with_capacity(rest.len() + 1);
    event.push(b'{');
    event.extend_from_slice(rest);
    Ok(Some((found.position, event)))
}

/// Appends `{"unilog":{…},` and the members of `event` (an object line) to
/// `out`: the event with its position first, the rest as it was.
pub fn write_with(out: &mut Vec<u8>, position: &Position, event: &[u8]) {
    let open = event.iter().position(|&b| b == b'{').unwrap_or(event.len());
    let rest = event.get(open + 1..).unwrap_or(b"}");
    out.extend_from_slice(PREFIX);
    write_member(out, position);
    push_separator(out, rest);
    out.extend_from_slice(rest);
}

/// Appends the member's value, `{"log":…,"partition":…,…}`, to `out`.
pub fn write_member(out: &mut Vec<u8>, position: &Position) {
    write_member_by(out, position, None);
}

/// [`write_member`] with the producer that stores the event.
fn write_member_by(out: &mut Vec<u8>, position: &Position, by: Option<&str>) {
    write_member_opening(out, &position.log);
    write_member_after_opening(
        out,
        position.partition,
        position.offset,
        position.sub,
        position.time_ms,
        by,
    );
}

/// The member's value up to its partition number: `{"log":ID,"partition":`,
/// the same for every event of a source log.
fn write_member_opening(out: &mut Vec<u8>, log: &str) {
    out.extend_from_slice(b"{\"log\":");
    crate::json::push_str(out, log);
    out.extend_from_slice(b",\"partition\":");
}

/// The rest of the member's value after [`write_member_opening`], from the
/// partition number to the closing `}`.
fn write_member_after_opening(
    out: &mut Vec<u8>,
    partition: u32,
    offset: u64,
    sub: u32,
    time_ms: Option<i64>,
    by: Option<&str>,
) {
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(num.format(partition).as_bytes());
    out.extend_from_slice(b",\"offset\":");
    out.extend_from_slice(num.format(offset).as_bytes());
    if sub != 0 {
        out.extend_from_slice(b",\"sub\":");
        out.extend_from_slice(num.format(sub).as_bytes());
    }
    if let Some(time) = time_ms {
        out.extend_from_slice(b",\"time\":");
        out.extend_from_slice(num.format(time).as_bytes());
    }
    if let Some(by) = by {
        out.extend_from_slice(b",\"by\":");
        crate::json::push_str(out, by);
    }
    out.push(b'}');
}

/// The member's value as JSON, for derived events that cite their input.
pub fn to_value(position: &Position) -> serde_json::Value {
    let mut out = Vec::new();
    write_member(&mut out, position);
    serde_json::from_slice(&out).expect("a position member is valid JSON")
}

/// Reads a position from the member's value (as [`to_value`] gives it).
pub fn from_value(value: &serde_json::Value) -> Result<Position, String> {
    let member = Member::deserialize(value).map_err(|e| e.to_string())?;
    Ok(member.into_position())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_position_writer_writes_what_write_before_writes() {
        let log = "log \"quoted\" \u{e9}";
        let writer = PositionWriter::new(log);
        for rest in [
            &b"}"[..],
            b" }",
            br#""a":1}"#,
            br#" "schema":"x","data":{}}"#,
        ] {
            let position = Position {
                log: log.into(),
                partition: 3,
                offset: 12345678901,
                sub: 0,
                time_ms: Some(1796625661724),
            };
            let mut expected = Vec::new();
            write_before(&mut expected, &position, None, rest);
            let mut got = Vec::new();
            writer.write_before(&mut got, 3, 12345678901, 1796625661724, rest);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected)
            );
            let found = locate(&got).unwrap().unwrap();
            assert_eq!(found.position, position);
        }
    }

    fn pos(offset: u64, sub: u32) -> Position {
        Position {
            log: "L".into(),
            partition: 1,
            offset,
            sub,
            time_ms: Some(5),
        }
    }

    #[test]
    fn write_then_split_round_trips() {
        let event = br#"{"schema":"s","data":{"a":1}}"#;
        for p in [
            pos(7, 0),
            pos(7, 2),
            Position {
                time_ms: None,
                ..pos(0, 0)
            },
        ] {
            let mut line = Vec::new();
            write_with(&mut line, &p, event);
            let (back, rest) = split(&line).unwrap().unwrap();
            assert_eq!(back, p);
            assert_eq!(rest, event);
        }
        let mut line = Vec::new();
        write_with(&mut line, &pos(3, 0), b"{}");
        assert_eq!(
            line,
            br#"{"unilog":{"log":"L","partition":1,"offset":3,"time":5}}"#
        );
        assert_eq!(split(&line).unwrap().unwrap().1, b"{}");
    }

    #[test]
    fn written_member_is_first_and_compact() {
        let mut line = Vec::new();
        write_with(&mut line, &pos(9, 1), br#"{"a":1}"#);
        assert_eq!(
            line,
            br#"{"unilog":{"log":"L","partition":1,"offset":9,"sub":1,"time":5},"a":1}"#
        );
    }

    #[test]
    fn events_without_a_leading_member_are_left_alone() {
        assert_eq!(split(br#"{"a":{"unilog":1}}"#).unwrap(), None);
        assert_eq!(split(br#"{"schema":"x","unilog":{}}"#).unwrap(), None);
    }

    #[test]
    fn a_malformed_member_is_an_error() {
        let err = split(br#"{"unilog":{"partition":1},"a":1}"#).unwrap_err();
        assert!(err.contains("not a position"), "{err}");
        assert!(split(br#"{"unilog":{"log":"L","partition":1,"offset":1} "a":1}"#).is_err());
        assert!(split(br#"{"unilog":{"log":"L","partition":1,"offset":1,"x":2},"a":1}"#).is_err());
    }

    #[test]
    fn the_byte_reader_agrees_with_the_full_parse() {
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for (sub, time, by) in [
            (0, None, None),
            (3, Some(1_796_309_089_246), None),
            (0, Some(0), Some("log-append")),
            (70000, None, Some("p")),
        ] {
            let position = Position {
                sub,
                time_ms: time,
                ..pos(18_446_744_073_709_551_615, 0)
            };
            for rest in [&b"\"data\":1}"[..], b"}"] {
                let mut line = Vec::new();
                write_before(&mut line, &position, by, rest);
                lines.push(line);
            }
        }
        // Not canonical: each must go to the full parse, with the same answer.
        for odd in [
            r#"{"unilog":{"log":"L","offset":1,"partition":0},"a":1}"#,
            r#"{"unilog":{"log":"L\u0041","partition":0,"offset":1}}"#,
            r#"{"unilog":{"log":"L","partition":0,"offset":1,"time":-5}}"#,
            r#"{"unilog":{"log":"L","partition":0,"offset":1.0}}"#,
            r#"{"unilog":{"log":"L","partition":0,"offset":01}}"#,
            r#"{"unilog":{"log":"L","partition":4294967296,"offset":1}}"#,
            r#"{"unilog":{"log":"L","partition":0,"offset":18446744073709551615}}"#,
            r#"{"unilog":{"log":"L","partition":0,"offset":18446744073709551616}}"#,
            r#"{"unilog":{"log":"L","partition":0,"offset":99999999999999999999}}"#,
            r#"{"unilog":{"log":"L","partition":0,"offset":1,"extra":1}}"#,
            r#"{"unilog":{"log":"L","partition":0,"offset":1} ,"a":1}"#,
            r#"{"unilog":{"log":"L","partition":0,"offset":1}x"#,
        ] {
            lines.push(odd.as_bytes().to_vec());
        }
        let mut canonical = 0;
        for line in &lines {
            let at = PREFIX.len();
            let slow = locate_parsed(line, at);
            match locate_canonical(line, at) {
                Some(fast) => {
                    canonical += 1;
                    let slow = slow.unwrap();
                    let what = String::from_utf8_lossy(line);
                    assert_eq!(
                        (fast.position(), fast.time_ms, &fast.by, fast.rest),
                        (slow.position(), slow.time_ms, &slow.by, slow.rest),
                        "{what}"
                    );
                    let (mut copied, mut written) = (Vec::new(), Vec::new());
                    fast.write_stored(&mut copied, line, &StoredBy::new("log-append"));
                    slow.write_stored(&mut written, line, &StoredBy::new("log-append"));
                    assert_eq!(copied, written, "{what}");
                }
                None => assert_eq!(
                    locate(line).map(Option::unwrap),
                    slow.map(LocatedRef::into_located),
                    "{}",
                    String::from_utf8_lossy(line)
                ),
            }
        }
        assert_eq!(canonical, 9, "every written member is read byte by byte");
    }

    #[test]
    fn log_ids_are_read_right_when_they_change_from_line_to_line() {
        // The reader reuses the last id when the bytes match: ids that are
        // prefixes of one another must not be taken for each other.
        for ids in [["abc", "abcd", "abc"], ["abcd", "abc", "ab\\u0063"]] {
            for (i, id) in ids.iter().enumerate() {
                let line =
                    format!(r#"{{"unilog":{{"log":"{id}","partition":1,"offset":{i}}},"a":1}}"#);
                let found = locate(line.as_bytes()).unwrap().unwrap();
                let want = if id.contains('\\') { "abc" } else { id };
                assert_eq!(&*found.position.log, want, "{line}");
                assert_eq!(found.position.offset, i as u64);
                assert_eq!(found.rest(line.as_bytes()), br#""a":1}"#);
            }
        }
    }

    #[test]
    fn held_drops_what_it_holds() {
        let mut held = Held::new();
        assert!(!held.holds(&pos(0, 0)));
        held.record(&pos(5, 1));
        assert!(held.holds(&pos(4, 9)));
        assert!(held.holds(&pos(5, 0)) && held.holds(&pos(5, 1)));
        assert!(!held.holds(&pos(5, 2)) && !held.holds(&pos(6, 0)));
        held.record(&pos(3, 0));
        assert_eq!(held.get("L", 1).unwrap().offset, 5, "marks never go down");
        assert_eq!(held.resume_at(&pos(0, 0).source()), Some(5));
        held.record_complete(&pos(0, 0).source(), 5);
        assert!(held.holds(&pos(5, 7)));
        assert_eq!(held.resume_at(&pos(0, 0).source()), Some(6));
        held.record(&pos(5, 9));
        assert!(
            held.get("L", 1).unwrap().complete,
            "a complete mark outranks its subs"
        );
        let other = Source {
            log: "L".into(),
            partition: 2,
        };
        assert_eq!(held.resume_at(&other), None);
    }

    #[test]
    fn held_serialises_by_source() {
        let mut held = Held::new();
        held.record(&Position {
            log: "kafka://h:9092/t".into(),
            ..pos(5, 1)
        });
        held.record_complete(
            &Source {
                log: "L".into(),
                partition: 0,
            },
            9,
        );
        let text = serde_json::to_string(&held).unwrap();
        assert_eq!(
            text,
            r#"{"L/0":{"offset":9,"complete":true},"kafka://h:9092/t/1":{"offset":5,"sub":1}}"#
        );
        let back: Held = serde_json::from_str(&text).unwrap();
        assert_eq!(back, held);
        assert!(serde_json::from_str::<Held>(r#"{"nopartition":{"offset":1}}"#).is_err());
    }

    #[test]
    fn merge_keeps_the_higher_mark() {
        let mut a = Held::new();
        a.record(&pos(5, 0));
        let mut b = Held::new();
        b.record(&pos(9, 0));
        b.record(&Position {
            partition: 3,
            ..pos(1, 0)
        });
        a.merge(&b);
        assert_eq!(a.get("L", 1).unwrap().offset, 9);
        assert_eq!(a.get("L", 3).unwrap().offset, 1);
    }

    #[test]
    fn located_members_keep_the_rest_in_place() {
        let line = br#"{"unilog":{"log":"L","partition":1,"offset":9,"by":"log-append"},"a":1}"#;
        let found = locate(line).unwrap().unwrap();
        assert_eq!(
            found.position,
            Position {
                time_ms: None,
                ..pos(9, 0)
            }
        );
        assert_eq!(found.by.as_deref(), Some("log-append"));
        assert_eq!(found.rest(line), br#""a":1}"#);
        let mut out = Vec::new();
        write_before(&mut out, &pos(3, 1), Some("x"), found.rest(line));
        assert_eq!(
            out,
            br#"{"unilog":{"log":"L","partition":1,"offset":3,"sub":1,"time":5,"by":"x"},"a":1}"#
        );
        out.clear();
        write_before(&mut out, &pos(3, 0), None, b"}");
        assert_eq!(
            out,
            br#"{"unilog":{"log":"L","partition":1,"offset":3,"time":5}}"#
        );
    }

    #[test]
    fn derived_subs_keep_emission_order() {
        let p = pos(7, 0);
        let subs: Vec<u32> = (0..3).map(|i| p.derived(i).unwrap().sub).collect();
        assert_eq!(subs, [0, 1, 2]);
        let again: Vec<u32> = (0..2)
            .map(|i| p.derived(1).unwrap().derived(i).unwrap().sub)
            .collect();
        assert!(again[0] > subs[0] && again[0] < again[1], "{again:?}");
        assert!(p.derived(FANOUT as usize).is_none());
        assert!(pos(7, u32::MAX / 2).derived(1).is_none());
    }

    #[test]
    fn value_round_trips() {
        let p = pos(4, 2);
        assert_eq!(from_value(&to_value(&p)).unwrap(), p);
    }
}
