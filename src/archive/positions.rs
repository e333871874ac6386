//! What an archive holds, per source partition, from its file names alone:
//! the offset ranges of its finished segments, what a reader must start
//! at, and which incoming positions it already has.

use std::collections::BTreeMap;

use crate::position::{Held, Position, Source};

use super::layout::FileKey;
use super::scan::Scan;

/// The finished segment ranges of one source, `first..=last`, sorted and
/// merged where they touch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ranges(Vec<(u64, u64)>);

impl Ranges {
    /// Adds `first..=last`.
    pub fn insert(&mut self, first: u64, last: u64) {
        self.0.push((first, last));
        self.0.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.0.len());
        for &(a, b) in &self.0 {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        self.0 = merged;
    }

    /// True when `offset` is inside a range.
    pub fn contains(&self, offset: u64) -> bool {
        let i = self.0.partition_point(|&(a, _)| a <= offset);
        i > 0 && self.0[i - 1].1 >= offset
    }

    /// The first range that starts after `offset`, if any: a segment
    /// growing from `offset` must end before it.
    pub fn next_start_after(&self, offset: u64) -> Option<u64> {
        let i = self.0.partition_point(|&(a, _)| a <= offset);
        self.0.get(i).map(|&(a, _)| a)
    }

    /// The end of the run of ranges that starts with the lowest one.
    pub fn contiguous_end(&self) -> Option<u64> {
        self.0.first().map(|&(_, b)| b)
    }

    /// The merged ranges.
    pub fn iter(&self) -> impl Iterator<Item = &(u64, u64)> {
        self.0.iter()
    }
}

/// The finished ranges of every source an archive holds.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    by_source: BTreeMap<Source, Ranges>,
}

impl Coverage {
    /// Coverage from the names of a scan's finished files.
    pub fn from_scan(scan: &Scan) -> Coverage {
        let mut c = Coverage::default();
        for f in &scan.files {
            if let FileKey::Positioned {
                log,
                partition,
                first,
                last,
            } = &f.name.key
            {
                c.add(
                    Source {
                        log: log.as_str().into(),
                        partition: *partition,
                    },
                    *first,
                    *last,
                );
            }
        }
        c
    }

    /// Records a finished segment.
    pub fn add(&mut self, source: Source, first: u64, last: u64) {
        self.by_source
            .entry(source)
            .or_default()
            .insert(first, last);
    }

    /// The ranges of one source.
    pub fn ranges(&self, log: &str, partition: u32) -> Option<&Ranges> {
        // Sources are few; no allocation on the per-event path.
        self.by_source
            .iter()
            .find(|(s, _)| s.partition == partition && *s.log == *log)
            .map(|(_, r)| r)
    }

    /// True when the archive already has the event at `position`.
    pub fn holds(&self, position: &Position) -> bool {
        self.ranges(&position.log, position.partition)
            .is_some_and(|r| r.contains(position.offset))
    }

    /// Per source, complete up to the end of the contiguous run of ranges
    /// from the lowest: a reader starting one past it misses nothing, and
    /// the archive drops what it has beyond a gap.
    pub fn held(&self) -> Held {
        let mut held = Held::new();
        for (source, ranges) in &self.by_source {
            if let Some(end) = ranges.contiguous_end() {
                held.record_complete(source, end);
            }
        }
        held
    }

    /// Every source and its ranges.
    pub fn iter(&self) -> impl Iterator<Item = (&Source, &Ranges)> {
        self.by_source.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_answer() {
        let mut r = Ranges::default();
        r.insert(100, 199);
        r.insert(0, 99);
        r.insert(300, 399);
        assert_eq!(
            r.iter().copied().collect::<Vec<_>>(),
            vec![(0, 199), (300, 399)]
        );
        assert!(r.contains(0) && r.contains(199) && r.contains(350));
        assert!(!r.contains(200) && !r.contains(400));
        assert_eq!(r.next_start_after(200), Some(300));
        assert_eq!(r.next_start_after(350), None);
        assert_eq!(r.contiguous_end(), Some(199));
    }

    #[test]
    fn held_is_complete_to_the_first_gap() {
        let mut c = Coverage::default();
        let s = Source {
            log: "L".into(),
            partition: 1,
        };
        c.add(s.clone(), 0, 9);
        c.add(s.clone(), 10, 19);
        c.add(s.clone(), 30, 39);
        let held = c.held();
        assert_eq!(held.resume_at(&s), Some(20));
        let p = |offset| Position {
            log: "L".into(),
            partition: 1,
            offset,
            sub: 0,
            time_ms: None,
        };
        assert!(c.holds(&p(35)) && !c.holds(&p(25)));
    }
}
