//! The open windows of every key: events applied to them, sessions merged
//! when an event bridges them, windows closed when the watermark passes
//! them (through a queue of close times, so closing costs what closes, not
//! what is open), and the running estimate of memory for `--max-state`.
//! Each worker of `-j N` owns one store and the keys routed to it.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;
use std::sync::Arc;

use jaq_json::Val;

use super::aggregate::{Acc, Aggregates, Input, Order};
use super::spec::Kind;
use crate::event::FailureMessage;

/// FxHash (rustc's): keys are short and trusted, so a fast hash beats SipHash here.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The hash that routes a key to a worker: the same on every run.
pub fn route(key: &[u8], workers: usize) -> usize {
    let mut h = FxHasher::default();
    h.write(key);
    // Mix the high bits down so that a small modulus sees all of them.
    let x = h.finish();
    ((x ^ (x >> 29) ^ (x >> 47)) % workers as u64) as usize
}

type Map<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// One open window of one key.
#[derive(Debug, Clone)]
pub struct Window {
    /// Inclusive start (a session's first event).
    pub start: i64,
    /// Exclusive end; a session's is its last event plus 1 ms.
    pub end: i64,
    /// Events applied.
    pub events: u64,
    /// Results written for it so far (`--emit update` counts each).
    pub revision: u32,
    /// Changed since its last update result.
    pub dirty: bool,
    /// The aggregates' running values.
    pub accs: Vec<Acc>,
}

/// A window the store is done with, or one to report an update of.
#[derive(Debug)]
pub struct Decided {
    /// The key's JSON text.
    pub key: Arc<[u8]>,
    /// The window, its values as they are now.
    pub window: Window,
    /// True when the window closed (its last result).
    pub closed: bool,
}

struct Slot {
    key: Arc<[u8]>,
    generation: u32,
    windows: Vec<Window>,
}

/// Rough bytes one open window costs besides its values.
const WINDOW_BYTES: usize = 120;
/// Rough bytes one key costs besides its text.
const KEY_BYTES: usize = 96;

/// The open windows of the keys one worker owns.
pub struct Store {
    kind: Kind,
    aggs: Arc<Aggregates>,
    update: bool,
    index: Map<Arc<[u8]>, u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Close time -> windows closing then (slot, generation, start). Entries
    /// left behind by merged sessions are skipped when they come up; those
    /// of sessions that grew since are moved on to their new close time.
    timers: BTreeMap<i64, Vec<(u32, u32, i64)>>,
    dirty: Vec<(u32, u32, i64)>,
    windows: usize,
    bytes: usize,
    inputs: Vec<Input>,
    /// Scratch for the sessions an event touches.
    touching: Vec<usize>,
}

impl Store {
    /// An empty store; `update` marks windows dirty for `--emit update`.
    pub fn new(kind: Kind, aggs: Arc<Aggregates>, update: bool) -> Store {
        Store {
            kind,
            aggs,
            update,
            index: Map::default(),
            slots: Vec::new(),
            free: Vec::new(),
            timers: BTreeMap::new(),
            dirty: Vec::new(),
            windows: 0,
            bytes: 0,
            inputs: Vec::new(),
            touching: Vec::new(),
        }
    }

    /// Open windows.
    pub fn windows(&self) -> usize {
        self.windows
    }

    /// Keys with an open window.
    pub fn keys(&self) -> usize {
        self.index.len()
    }

    /// About how many bytes the open windows hold.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn close_time(&self, w: &Window) -> i64 {
        match self.kind {
            Kind::Session { gap } => (w.end - 1).saturating_add(gap),
            _ => w.end,
        }
    }

    fn slot_for(&mut self, key: &[u8]) -> u32 {
        if let Some(&i) = self.index.get(key) {
            return i;
        }
        let key: Arc<[u8]> = key.into();
        self.bytes += key.len() + KEY_BYTES;
        let i = match self.free.pop() {
            Some(i) => {
                let slot = &mut self.slots[i as usize];
                slot.key = key.clone();
                slot.generation = slot.generation.wrapping_add(1);
                i
            }
            None => {
                self.slots.push(Slot {
                    key: key.clone(),
                    generation: 0,
                    windows: Vec::new(),
                });
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(key, i);
        i
    }

    fn release_if_empty(&mut self, i: u32) {
        let slot = &mut self.slots[i as usize];
        if slot.windows.is_empty() {
            self.index.remove(&slot.key);
            self.bytes = self.bytes.saturating_sub(slot.key.len() + KEY_BYTES);
            slot.key = Arc::from(&b""[..]);
            self.free.push(i);
        }
    }

    fn new_window(&mut self, start: i64, end: i64) -> Result<Window, FailureMessage> {
        let accs = self
            .aggs
            .start()
            .map_err(|e| FailureMessage::new("aggregate", e))?;
        self.windows += 1;
        self.bytes += WINDOW_BYTES + accs.len() * 48;
        Ok(Window {
            start,
            end,
            events: 0,
            revision: 0,
            dirty: false,
            accs,
        })
    }

    /// Applies an event of `key` at time `t` to `fixed` windows (tumbling,
    /// hopping: those not missed), or to its session. `line[top]` is the
    /// event; `value` the same as a jq value when the aggregates need it;
    /// `found` the aggregates' path values, when looked up already.
    /// Nothing changes when the event fails.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &mut self,
        key: &[u8],
        t: i64,
        order: Order,
        fixed: &[(i64, i64)],
        line: &[u8],
        top: Range<usize>,
        value: Option<&Val>,
        found: Option<&[Option<Range<usize>>]>,
    ) -> Result<(), FailureMessage> {
        let mut inputs = std::mem::take(&mut self.inputs);
        let result = self.apply_inputs(key, t, order, fixed, line, top, value, found, &mut inputs);
        self.inputs = inputs;
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_inputs(
        &mut self,
        key: &[u8],
        t: i64,
        order: Order,
        fixed: &[(i64, i64)],
        line: &[u8],
        top: Range<usize>,
        value: Option<&Val>,
        found: Option<&[Option<Range<usize>>]>,
        inputs: &mut Vec<Input>,
    ) -> Result<(), FailureMessage> {
        let aggs = self.aggs.clone();
        aggs.extract(line, top, value, found, inputs)?;
        let has_reduce = inputs.iter().any(|i| matches!(i, Input::Event));
        let slot = self.slot_for(key);
        let generation = self.slots[slot as usize].generation;
        let result = match self.kind {
            Kind::Session { .. } => {
                self.apply_session(slot, generation, t, order, inputs, has_reduce, value)
            }
            _ => self.apply_fixed(slot, generation, fixed, order, inputs, has_reduce, value),
        };
        self.release_if_empty(slot);
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_fixed(
        &mut self,
        slot: u32,
        generation: u32,
        fixed: &[(i64, i64)],
        order: Order,
        inputs: &[Input],
        has_reduce: bool,
        value: Option<&Val>,
    ) -> Result<(), FailureMessage> {
        let aggs = self.aggs.clone();
        // Open what is missing first, so that a failing fold changes nothing.
        for &(start, end) in fixed {
            if !self.slots[slot as usize]
                .windows
                .iter()
                .any(|w| w.start == start)
            {
                let w = self.new_window(start, end)?;
                let windows = &mut self.slots[slot as usize].windows;
                let at = windows.partition_point(|x| x.start < start);
                windows.insert(at, w);
                self.timers
                    .entry(end)
                    .or_default()
                    .push((slot, generation, start));
            }
        }
        let mut reduced = Vec::with_capacity(fixed.len());
        if has_reduce {
            for &(start, _) in fixed {
                let w = self.slots[slot as usize]
                    .windows
                    .iter()
                    .find(|w| w.start == start)
                    .expect("opened above");
                reduced.push(Some(aggs.reduce_step(&w.accs, inputs, value)?));
            }
        } else {
            reduced.resize_with(fixed.len(), || None);
        }
        let mut grew = 0;
        for (&(start, _), r) in fixed.iter().zip(reduced) {
            let w = self.slots[slot as usize]
                .windows
                .iter_mut()
                .find(|w| w.start == start)
                .expect("opened above");
            grew += aggs.apply(&mut w.accs, inputs, r, order);
            w.events += 1;
            if self.update && !w.dirty {
                w.dirty = true;
                self.dirty.push((slot, generation, start));
            }
        }
        self.bytes += grew;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_session(
        &mut self,
        slot: u32,
        generation: u32,
        t: i64,
        order: Order,
        inputs: &[Input],
        has_reduce: bool,
        value: Option<&Val>,
    ) -> Result<(), FailureMessage> {
        let Kind::Session { gap } = self.kind else {
            unreachable!()
        };
        // Sessions this event's own [t, t + gap) overlaps: [first, last + gap).
        let mut touching = std::mem::take(&mut self.touching);
        touching.clear();
        touching.extend(
            self.slots[slot as usize]
                .windows
                .iter()
                .enumerate()
                .filter(|(_, w)| {
                    w.start < t.saturating_add(gap) && t < (w.end - 1).saturating_add(gap)
                })
                .map(|(i, _)| i),
        );
        let result = self.apply_touching(
            slot, generation, t, order, inputs, has_reduce, value, &touching,
        );
        self.touching = touching;
        result
    }

    /// [`Store::apply_session`] once the sessions the event touches
    /// (indexes into the key's windows, in order) are known.
    #[allow(clippy::too_many_arguments)]
    fn apply_touching(
        &mut self,
        slot: u32,
        generation: u32,
        t: i64,
        order: Order,
        inputs: &[Input],
        has_reduce: bool,
        value: Option<&Val>,
        touching: &[usize],
    ) -> Result<(), FailureMessage> {
        let aggs = self.aggs.clone();
        // The fold runs on the session the event lands in: the earliest it
        // touches (the others are folded in after it), or a new one.
        let reduced = if has_reduce {
            let fresh;
            let base = match touching.first() {
                Some(&i) => &self.slots[slot as usize].windows[i].accs,
                None => {
                    fresh = self
                        .aggs
                        .start()
                        .map_err(|e| FailureMessage::new("aggregate", e))?;
                    &fresh
                }
            };
            Some(aggs.reduce_step(base, inputs, value)?)
        } else {
            None
        };
        let windows = &mut self.slots[slot as usize].windows;
        let (mut w, timed) = match touching {
            [] => (self.new_window(t, t + 1)?, None),
            &[i] => {
                let w = windows.remove(i);
                let start = w.start;
                (w, Some(start))
            }
            [..] => {
                // Take the touched sessions out, the earliest first, and merge them.
                let mut taken: Vec<Window> =
                    touching.iter().rev().map(|&i| windows.remove(i)).collect();
                taken.reverse();
                let mut first = taken.remove(0);
                let start = first.start;
                for other in taken {
                    self.windows -= 1;
                    self.bytes = self
                        .bytes
                        .saturating_sub(WINDOW_BYTES + other.accs.len() * 48);
                    first.start = first.start.min(other.start);
                    first.end = first.end.max(other.end);
                    first.events += other.events;
                    first.revision = first.revision.max(other.revision);
                    aggs.merge(&mut first.accs, other.accs);
                }
                (first, Some(start))
            }
        };
        self.bytes += aggs.apply(&mut w.accs, inputs, reduced, order);
        w.start = w.start.min(t);
        w.end = w.end.max(t + 1);
        w.events += 1;
        // A session's timer is set when it opens (or starts earlier) and
        // moved on when it comes up early (see `decide`): not once per event.
        if timed != Some(w.start) {
            let close = self.close_time(&w);
            self.timers
                .entry(close)
                .or_default()
                .push((slot, generation, w.start));
        }
        if self.update {
            w.dirty = true;
            self.dirty.push((slot, generation, w.start));
        }
        let windows = &mut self.slots[slot as usize].windows;
        let at = windows.partition_point(|x| x.start < w.start);
        windows.insert(at, w);
        Ok(())
    }

    /// Takes out every window whose close time the watermark has reached,
    /// and (with `--emit update`) the windows changed since the last call.
    pub fn decide(&mut self, watermark: i64, out: &mut Vec<Decided>) {
        while let Some(entry) = self.timers.first_entry() {
            if *entry.key() > watermark {
                break;
            }
            let (time, due) = entry.remove_entry();
            for (slot, generation, start) in due {
                let s = &self.slots[slot as usize];
                if s.generation != generation {
                    continue;
                }
                let Some(i) = s.windows.iter().position(|w| w.start == start) else {
                    continue;
                };
                let close = self.close_time(&s.windows[i]);
                if close > time {
                    // A session that grew since its timer was set: due later.
                    self.timers
                        .entry(close)
                        .or_default()
                        .push((slot, generation, start));
                    continue;
                }
                if close != time {
                    continue;
                }
                let key = s.key.clone();
                let w = self.slots[slot as usize].windows.remove(i);
                self.windows -= 1;
                let held: usize = w.accs.iter().map(Acc::heap_bytes).sum();
                self.bytes = self
                    .bytes
                    .saturating_sub(WINDOW_BYTES + w.accs.len() * 48 + held);
                out.push(Decided {
                    key,
                    window: w,
                    closed: true,
                });
                self.release_if_empty(slot);
            }
        }
        for (slot, generation, start) in std::mem::take(&mut self.dirty) {
            let s = &mut self.slots[slot as usize];
            if s.generation != generation {
                continue;
            }
            if let Some(w) = s.windows.iter_mut().find(|w| w.start == start && w.dirty) {
                w.dirty = false;
                w.revision += 1;
                out.push(Decided {
                    key: s.key.clone(),
                    window: w.clone(),
                    closed: false,
                });
            }
        }
    }

    /// Every open window with its key, for the checkpoint.
    pub fn each_window(&self, mut each: impl FnMut(&[u8], &Window)) {
        for i in self.index.values() {
            let s = &self.slots[*i as usize];
            for w in &s.windows {
                each(&s.key, w);
            }
        }
    }

    /// Puts a window back from a checkpoint.
    pub fn restore(&mut self, key: &[u8], w: Window) {
        let slot = self.slot_for(key);
        let generation = self.slots[slot as usize].generation;
        let close = self.close_time(&w);
        self.timers
            .entry(close)
            .or_default()
            .push((slot, generation, w.start));
        if w.dirty {
            self.dirty.push((slot, generation, w.start));
        }
        self.windows += 1;
        let held: usize = w.accs.iter().map(Acc::heap_bytes).sum();
        self.bytes += WINDOW_BYTES + w.accs.len() * 48 + held;
        let windows = &mut self.slots[slot as usize].windows;
        let at = windows.partition_point(|x| x.start < w.start);
        windows.insert(at, w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::spec::Aggregate;

    fn store(kind: Kind, aggs: &[&str]) -> Store {
        let specs: Vec<Aggregate> = aggs.iter().map(|a| Aggregate::parse(a).unwrap()).collect();
        Store::new(
            kind,
            Arc::new(Aggregates::compile(&specs, 100).unwrap()),
            false,
        )
    }

    fn add(s: &mut Store, key: &str, t: i64) {
        let line = format!(r#"{{"t":{t}}}"#);
        s.apply(
            key.as_bytes(),
            t,
            (t, 0, 0),
            &[],
            line.as_bytes(),
            0..line.len(),
            None,
            None,
        )
        .unwrap();
    }

    fn closed(s: &mut Store, wm: i64) -> Vec<(String, i64, i64, u64)> {
        let mut out = Vec::new();
        s.decide(wm, &mut out);
        out.into_iter()
            .map(|d| {
                (
                    String::from_utf8(d.key.to_vec()).unwrap(),
                    d.window.start,
                    d.window.end,
                    d.window.events,
                )
            })
            .collect()
    }

    #[test]
    fn a_bridging_event_merges_two_sessions_into_one() {
        let mut s = store(Kind::Session { gap: 10 }, &["n=count", "ts=collect(.t)"]);
        add(&mut s, "a", 0);
        add(&mut s, "a", 5);
        add(&mut s, "a", 30);
        add(&mut s, "b", 3);
        assert_eq!(s.windows(), 3);
        // Sessions of a: [0, 5] closes at 15, [30] at 40; b's [3] at 13.
        assert_eq!(closed(&mut s, 12), vec![]);
        // 22 is 17 after 5 and 8 before 30: it joins [30] only. Then 14,
        // within 10 of both 5 and 22, bridges the two.
        add(&mut s, "a", 22);
        assert_eq!(s.windows(), 3);
        add(&mut s, "a", 14);
        assert_eq!(s.windows(), 2, "14 bridges [0,5] and [22,30]");
        assert_eq!(closed(&mut s, 13), vec![("b".into(), 3, 4, 1)]);
        assert_eq!(closed(&mut s, 39), vec![]);
        assert_eq!(closed(&mut s, 40), vec![("a".into(), 0, 31, 5)]);
        assert_eq!((s.windows(), s.keys()), (0, 0));
    }

    #[test]
    fn tumbling_windows_close_in_order_and_memory_returns() {
        let mut s = store(Kind::Tumbling { size: 10 }, &["n=count"]);
        let empty = s.bytes();
        for (k, t) in [("a", 1), ("a", 2), ("b", 5), ("a", 12)] {
            let w = (t / 10 * 10, t / 10 * 10 + 10);
            let line = b"{}";
            s.apply(k.as_bytes(), t, (t, 0, 0), &[w], line, 0..2, None, None)
                .unwrap();
        }
        assert_eq!(closed(&mut s, 9), vec![]);
        let mut got = closed(&mut s, 10);
        got.sort();
        assert_eq!(got, vec![("a".into(), 0, 10, 2), ("b".into(), 0, 10, 1)]);
        assert_eq!(closed(&mut s, i64::MAX), vec![("a".into(), 10, 20, 1)]);
        assert_eq!(s.bytes(), empty);
    }

    #[test]
    fn routing_is_stable_and_spreads() {
        let mut counts = [0; 4];
        for i in 0..4000 {
            counts[route(format!("\"{i}\"").as_bytes(), 4)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
        assert_eq!(route(b"\"42\"", 4), route(b"\"42\"", 4));
    }
}
