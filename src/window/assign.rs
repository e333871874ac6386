//! Which tumbling or hopping windows an event time falls in. Windows align
//! to the epoch plus `--offset`, or to local time in `--tz` (so a day window
//! runs from local midnight to local midnight, 23 or 25 hours across a
//! daylight-saving change). Sessions are not assigned here: they grow from
//! their events (see `store`).

use jiff::tz::TimeZone;

use super::spec::{Alignment, Kind};

/// Assigns event times to fixed windows.
#[derive(Debug, Clone)]
pub struct Assigner {
    size: i64,
    every: i64,
    offset: i64,
    tz: Option<TimeZone>,
}

impl Assigner {
    /// An assigner for a tumbling or hopping kind; `None` for sessions.
    pub fn new(kind: Kind, align: &Alignment) -> Option<Assigner> {
        let (size, every) = match kind {
            Kind::Tumbling { size } => (size, size),
            Kind::Hopping { size, every } => (size, every),
            Kind::Session { .. } => return None,
        };
        Some(Assigner {
            size,
            every,
            offset: align.offset,
            tz: align.tz.as_ref().map(|(_, z)| z.clone()),
        })
    }

    /// Appends the `(start, end)` of every window holding `t`, earliest
    /// start first.
    pub fn windows(&self, t: i64, out: &mut Vec<(i64, i64)>) {
        match &self.tz {
            None => {
                let last = floor_to(t - self.offset, self.every) + self.offset;
                let first_index = out.len();
                let mut start = last;
                while start > t - self.size {
                    out.push((start, start + self.size));
                    start -= self.every;
                }
                out[first_index..].reverse();
            }
            Some(tz) => {
                let local = t + local_offset_ms(tz, t);
                let last = floor_to(local - self.offset, self.every) + self.offset;
                let first_index = out.len();
                // One step further each way catches the hour a DST change moves.
                let mut start = last + self.every;
                while start > local - self.size - self.every {
                    let s = to_utc(tz, start);
                    let e = to_utc(tz, start + self.size);
                    if s <= t && t < e {
                        out.push((s, e));
                    }
                    start -= self.every;
                }
                out[first_index..].reverse();
            }
        }
    }
}

/// `x` rounded down to a multiple of `step`.
fn floor_to(x: i64, step: i64) -> i64 {
    x.div_euclid(step) * step
}

/// The zone's UTC offset at instant `t`, in ms.
fn local_offset_ms(tz: &TimeZone, t: i64) -> i64 {
    match jiff::Timestamp::from_millisecond(t) {
        Ok(ts) => i64::from(tz.to_offset(ts).seconds()) * 1000,
        Err(_) => 0,
    }
}

/// The instant at which local wall-clock time `local` (ms, as if UTC)
/// happens in `tz`; a time skipped by a DST change maps past the gap, a
/// repeated one to its first occurrence.
fn to_utc(tz: &TimeZone, local: i64) -> i64 {
    let Ok(ts) = jiff::Timestamp::from_millisecond(local) else {
        return local;
    };
    let civil = ts.to_zoned(TimeZone::UTC).datetime();
    match tz.to_ambiguous_timestamp(civil).compatible() {
        Ok(ts) => ts.as_millisecond(),
        Err(_) => local,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: &str) -> i64 {
        crate::time::parse_rfc3339_ms(t).unwrap()
    }

    fn at(kind: Kind, align: Alignment, t: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        Assigner::new(kind, &align).unwrap().windows(ms(t), &mut out);
        out.into_iter()
            .map(|(s, e)| (crate::time::format_rfc3339_ms(s), crate::time::format_rfc3339_ms(e)))
            .collect()
    }

    fn w(s: &str, e: &str) -> (String, String) {
        (s.to_string(), e.to_string())
    }

    const NONE: Alignment = Alignment { offset: 0, tz: None };

    #[test]
    fn tumbling_windows_align_to_the_epoch_and_the_offset() {
        let minute = Kind::Tumbling { size: 60_000 };
        assert_eq!(
            at(minute, NONE, "2026-11-27T09:00:59.999Z"),
            [w("2026-11-27T09:00:00.000Z", "2026-11-27T09:01:00.000Z")]
        );
        assert_eq!(
            at(minute, NONE, "2026-11-27T09:01:00Z"),
            [w("2026-11-27T09:01:00.000Z", "2026-11-27T09:02:00.000Z")]
        );
        let day_from_6 = Alignment { offset: 6 * 3_600_000, tz: None };
        assert_eq!(
            at(Kind::Tumbling { size: 86_400_000 }, day_from_6.clone(), "2026-11-27T05:59:00Z"),
            [w("2026-11-26T06:00:00.000Z", "2026-11-27T06:00:00.000Z")]
        );
        // Before the epoch too.
        assert_eq!(
            at(minute, NONE, "1969-12-31T23:59:30Z"),
            [w("1969-12-31T23:59:00.000Z", "1970-01-01T00:00:00.000Z")]
        );
    }

    #[test]
    fn hopping_windows_overlap() {
        let k = Kind::Hopping { size: 10 * 60_000, every: 5 * 60_000 };
        assert_eq!(
            at(k, NONE, "2026-11-27T09:07:00Z"),
            [
                w("2026-11-27T09:00:00.000Z", "2026-11-27T09:10:00.000Z"),
                w("2026-11-27T09:05:00.000Z", "2026-11-27T09:15:00.000Z")
            ]
        );
        let k = Kind::Hopping { size: 3_600_000, every: 20 * 60_000 };
        assert_eq!(at(k, NONE, "2026-11-27T09:00:00Z").len(), 3);
    }

    #[test]
    fn local_days_follow_daylight_saving() {
        let paris = Alignment::new(0, Some("Europe/Paris")).unwrap();
        let day = Kind::Tumbling { size: 86_400_000 };
        // Winter: local midnight is 23:00 UTC.
        assert_eq!(
            at(day, paris.clone(), "2026-11-27T23:30:00Z"),
            [w("2026-11-27T23:00:00.000Z", "2026-11-28T23:00:00.000Z")]
        );
        // The spring change: 2026-03-29 has 23 hours in Paris.
        assert_eq!(
            at(day, paris.clone(), "2026-03-29T12:00:00Z"),
            [w("2026-03-28T23:00:00.000Z", "2026-03-29T22:00:00.000Z")]
        );
        assert_eq!(
            at(day, paris, "2026-03-29T22:30:00Z"),
            [w("2026-03-29T22:00:00.000Z", "2026-03-30T22:00:00.000Z")]
        );
        assert!(Alignment::new(0, Some("Mars/Olympus")).is_err());
    }
}
