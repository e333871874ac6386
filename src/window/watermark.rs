//! Watermarks: per input partition, the largest event time seen minus the
//! allowed lateness; the job's watermark is the minimum over partitions, so
//! a slow partition holds windows open instead of having its events called
//! late. A partition idle (by the wall clock) for `--idle-partition` stops
//! holding it back; `--partitions N` names partitions not seen yet, which
//! hold it back from the start.
//!
//! Lateness is decided by the event's own partition's watermark (or the
//! job's, when that is ahead): since a window closes only when every
//! partition's watermark has passed it, an event that reaches a closed
//! window is always late by its own partition, so whether an event is late
//! does not depend on how partitions happen to interleave.

use std::collections::HashMap;
use std::time::Instant;

/// Before any event: nothing closes.
pub const NONE: i64 = i64::MIN;
/// End of input: everything closes.
pub const END: i64 = i64::MAX;

/// One input partition's progress.
#[derive(Debug, Clone)]
pub struct Partition {
    /// `log/partition`, or `input` for events without a position.
    pub name: String,
    /// The largest event time seen, or [`NONE`].
    pub max_time: i64,
    /// When it last sent an event (or, for one not yet seen, when the run began).
    pub last_seen: Instant,
    /// Not seen yet: expected from `--partitions`.
    pub expected: bool,
}

/// The watermarks of every partition.
#[derive(Debug)]
pub struct Watermarks {
    lateness: i64,
    idle_after: Option<std::time::Duration>,
    parts: Vec<Partition>,
    index: HashMap<String, usize>,
    /// Never moves back: once windows closed at a watermark, later events
    /// below it are late whatever partition they come from.
    global: i64,
}

impl Watermarks {
    /// Watermarks lagging `lateness` ms behind event time; partitions idle
    /// for `idle_after` (wall clock) stop holding the minimum back.
    pub fn new(lateness: i64, idle_after: Option<std::time::Duration>) -> Self {
        Watermarks {
            lateness,
            idle_after,
            parts: Vec::new(),
            index: HashMap::new(),
            global: NONE,
        }
    }

    /// The partition named `name`, added (not yet seen) when new.
    pub fn partition(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.parts.len();
        self.parts.push(Partition {
            name: name.to_string(),
            max_time: NONE,
            last_seen: Instant::now(),
            expected: true,
        });
        self.index.insert(name.to_string(), i);
        i
    }

    /// Restores a partition's progress from a checkpoint.
    pub fn restore(&mut self, name: &str, max_time: i64) {
        let i = self.partition(name);
        self.parts[i].max_time = max_time;
        self.parts[i].expected = false;
    }

    /// Restores the job's watermark from a checkpoint.
    pub fn restore_global(&mut self, global: i64) {
        self.global = global;
    }

    /// Notes an event at `time` from partition `i`.
    #[inline]
    pub fn observe(&mut self, i: usize, time: i64, now: Instant) {
        let p = &mut self.parts[i];
        if time > p.max_time {
            p.max_time = time;
        }
        p.last_seen = now;
        p.expected = false;
    }

    /// Notes that partition `i` sent something (an event without a usable
    /// time still shows it is alive).
    pub fn touch(&mut self, i: usize, now: Instant) {
        self.parts[i].last_seen = now;
    }

    /// The watermark events of partition `i` are judged late by.
    #[inline]
    pub fn lateness_mark(&self, i: usize) -> i64 {
        self.own(i).max(self.global)
    }

    fn own(&self, i: usize) -> i64 {
        let t = self.parts[i].max_time;
        if t == NONE {
            NONE
        } else {
            t.saturating_sub(self.lateness)
        }
    }

    fn is_idle(&self, p: &Partition, now: Instant) -> bool {
        self.idle_after
            .is_some_and(|d| now.saturating_duration_since(p.last_seen) >= d)
    }

    /// Recomputes the job's watermark (the minimum over partitions that are
    /// not idle) and returns it; it never moves back.
    pub fn advance(&mut self, now: Instant) -> i64 {
        let mut min: Option<i64> = None;
        let mut max_all = NONE;
        for (i, p) in self.parts.iter().enumerate() {
            let own = self.own(i);
            max_all = max_all.max(own);
            if !self.is_idle(p, now) {
                min = Some(min.map_or(own, |m| m.min(own)));
            }
        }
        // Every partition idle: none holds the others back.
        let candidate = min.unwrap_or(max_all);
        if candidate > self.global {
            self.global = candidate;
        }
        self.global
    }

    /// Moves the job's watermark to `to` (end of input, or the wall clock
    /// with `--idle-close`); it never moves back.
    pub fn force(&mut self, to: i64) {
        self.global = self.global.max(to);
    }

    /// The job's watermark as last computed.
    pub fn global(&self) -> i64 {
        self.global
    }

    /// The largest event time seen on any partition.
    pub fn max_time(&self) -> i64 {
        self.parts.iter().map(|p| p.max_time).max().unwrap_or(NONE)
    }

    /// The partition that holds the watermark back (the lowest one that is
    /// not idle), for `-v`.
    pub fn holder(&self, now: Instant) -> Option<&Partition> {
        self.parts
            .iter()
            .enumerate()
            .filter(|(_, p)| !self.is_idle(p, now))
            .min_by_key(|(i, _)| self.own(*i))
            .map(|(_, p)| p)
    }

    /// Every partition, for the checkpoint.
    pub fn partitions(&self) -> &[Partition] {
        &self.parts
    }

    /// True when an expected partition has not sent anything yet.
    pub fn waiting_for(&self) -> Option<&str> {
        self.parts
            .iter()
            .find(|p| p.expected && p.max_time == NONE)
            .map(|p| p.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_slowest_partition_holds_the_watermark() {
        let now = Instant::now();
        let mut w = Watermarks::new(1000, None);
        let a = w.partition("log/0");
        let b = w.partition("log/1");
        w.observe(a, 10_000, now);
        // b has sent nothing: it holds everything back.
        assert_eq!(w.advance(now), NONE);
        w.observe(b, 5_000, now);
        assert_eq!(w.advance(now), 4_000);
        w.observe(b, 20_000, now);
        assert_eq!(w.advance(now), 9_000);
        assert_eq!(w.holder(now).unwrap().name, "log/0");
        // Lateness is judged by the event's own partition.
        assert_eq!(w.lateness_mark(b), 19_000);
        assert_eq!(w.lateness_mark(a), 9_000);
    }

    #[test]
    fn an_idle_partition_stops_holding_it_back_and_it_never_moves_back() {
        let start = Instant::now();
        let mut w = Watermarks::new(0, Some(Duration::from_millis(100)));
        let a = w.partition("a");
        let b = w.partition("b");
        w.observe(a, 1_000, start);
        w.observe(b, 50_000, start);
        assert_eq!(w.advance(start), 1_000);
        let later = start + Duration::from_millis(150);
        w.observe(b, 60_000, later);
        assert_eq!(w.advance(later), 60_000, "a is idle");
        // a wakes up: the watermark stays, and a's old times are late.
        w.observe(a, 2_000, later);
        assert_eq!(w.advance(later), 60_000);
        assert_eq!(w.lateness_mark(a), 60_000);
        w.force(END);
        assert_eq!(w.global(), END);
    }
}
