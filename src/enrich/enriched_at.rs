//! `--enriched-at`: the time the event went through enrich, RFC 3339 in
//! UTC with milliseconds, derived from the clock when the step runs.

use super::raw::{push_str, OneMember};
use super::{schema, Event, Flow, Step};
use crate::event::FailureMessage;
use crate::time;

/// The enriched-at step.
pub struct EnrichedAt {
    clock: fn() -> i64,
    last_ms: i64,
    data: OneMember,
}

impl Default for EnrichedAt {
    fn default() -> Self {
        Self::new()
    }
}

impl EnrichedAt {
    /// A step reading the system clock.
    pub fn new() -> Self {
        Self::with_clock(time::now_ms)
    }

    /// A step reading the given clock (milliseconds since the epoch).
    pub fn with_clock(clock: fn() -> i64) -> Self {
        EnrichedAt {
            clock,
            last_ms: i64::MIN,
            data: OneMember::new("enriched_at", schema::ENRICHED_AT),
        }
    }
}

impl Step for EnrichedAt {
    fn name(&self) -> &'static str {
        "enriched_at"
    }

    fn fork(&self) -> anyhow::Result<Box<dyn Step>> {
        Ok(Box::new(EnrichedAt::with_clock(self.clock)))
    }

    fn apply(&mut self, ev: &mut Event, _original: &[u8]) -> Result<Flow, Vec<FailureMessage>> {
        let now = (self.clock)();
        if now != self.last_ms {
            // Formatting once per millisecond, not once per event.
            self.last_ms = now;
            self.data
                .set(|out| push_str(out, &time::format_rfc3339_ms(now)));
        }
        self.data.add_to(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::testing::run;

    #[test]
    fn stamps_the_time() {
        let step = EnrichedAt::with_clock(|| 1_764_237_600_250);
        let out = run(Box::new(step), Some(".data"), r#"{"data":{}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(out["data"]["enriched_at"], "2025-11-27T10:00:00.250Z");
        let step = EnrichedAt::with_clock(|| 0);
        let out = run(Box::new(step), None, r#"{"data":{}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            out["derived_contexts"][0]["data"]["enriched_at"],
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(out["derived_contexts"][0]["schema"], schema::ENRICHED_AT);
    }
}
