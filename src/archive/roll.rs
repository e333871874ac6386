//! When a segment is cut: decided from the events alone (their count,
//! their bytes, their periods, their offsets) and never from the clock, so
//! that the same input cuts the same files on every run.

/// The limits `--roll-events` and `--roll-size` set.
#[derive(Debug, Clone, Copy)]
pub struct RollPolicy {
    /// Events in a segment before it is cut.
    pub max_events: u64,
    /// Event bytes (as they came in, before compression, so the cut does
    /// not depend on the codec) in a segment before it is cut.
    pub max_bytes: u64,
}

/// Files one segment may have open at once (one per schema and period):
/// bounds memory when late events spread over many periods.
pub const MAX_FILES: usize = 64;

/// What the policy looks at in the segment being written.
#[derive(Debug, Clone, Copy)]
pub struct SegmentState {
    /// Events in it.
    pub inputs: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The last source offset in it (none without positions).
    pub last_offset: Option<u64>,
    /// The start of the latest period it has an event of.
    pub max_period_start: i64,
    /// Files open in it.
    pub files: usize,
    /// A finished range starts here.
    pub limit: Option<u64>,
}

impl RollPolicy {
    /// True when the segment must be committed before the next event (at
    /// `offset`, in the period starting at `period_start`) goes in. Events
    /// of one offset (a filter's several outputs of one input) are never
    /// split between segments, so a segment's range always holds whole
    /// inputs. At the end of the input the last offset counts as whole
    /// too: a filter killed between two outputs of one input would leave
    /// the later ones out of the archive.
    pub fn should_roll(
        &self,
        seg: &SegmentState,
        offset: Option<u64>,
        period_start: i64,
        needs_file: bool,
    ) -> bool {
        if seg.inputs == 0 {
            return false;
        }
        if let (Some(o), Some(last)) = (offset, seg.last_offset) {
            if o == last {
                return false;
            }
            if seg.limit.is_some_and(|l| o >= l) {
                return true;
            }
        }
        seg.inputs >= self.max_events
            || seg.bytes >= self.max_bytes
            || period_start > seg.max_period_start
            || (needs_file && seg.files >= MAX_FILES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(inputs: u64, bytes: u64, last: u64, period: i64) -> SegmentState {
        SegmentState {
            inputs,
            bytes,
            last_offset: Some(last),
            max_period_start: period,
            files: 1,
            limit: None,
        }
    }

    #[test]
    fn rolls_by_count_size_period_and_limit() {
        let p = RollPolicy {
            max_events: 10,
            max_bytes: 1000,
        };
        assert!(!p.should_roll(&state(9, 100, 8, 0), Some(9), 0, false));
        assert!(p.should_roll(&state(10, 100, 9, 0), Some(10), 0, false));
        assert!(p.should_roll(&state(5, 1000, 4, 0), Some(5), 0, false));
        assert!(p.should_roll(&state(5, 10, 4, 0), Some(5), 3_600_000, false));
        // A late event (an earlier period) does not cut.
        assert!(!p.should_roll(&state(5, 10, 4, 3_600_000), Some(5), 0, false));
        // Never between the outputs of one input.
        assert!(!p.should_roll(&state(10, 5000, 9, 0), Some(9), 3_600_000, false));
        let mut s = state(1, 1, 4, 0);
        s.limit = Some(5);
        assert!(p.should_roll(&s, Some(7), 0, false));
        s.files = MAX_FILES;
        s.limit = None;
        assert!(p.should_roll(&s, Some(5), 0, true));
        assert!(!p.should_roll(&s, Some(5), 0, false));
    }
}
