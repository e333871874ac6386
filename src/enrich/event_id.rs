//! `--event-id [random|content]`: gives each event an id.
//!
//! `random` (the default) is a UUID version 4, as Snowplow gives every
//! event: unique even for two identical inputs. The 122 random bits come
//! from a xoshiro256++ generator seeded from the operating system once per
//! run, which keeps the step at a few nanoseconds an event where a system
//! call per id would not.
//!
//! `content` is a UUID version 5 (SHA-1) of the input line as read, in a
//! namespace of unilog's own: deterministic, so re-running enrich over the
//! same raw log (reprocessing) gives every event the same id again and
//! later stages can de-duplicate; two byte-identical inputs share an id.

use std::str::FromStr;

use uuid::Uuid;

use super::raw::{push_str, OneMember};
use super::{schema, Event, Flow, Step};
use crate::event::FailureMessage;

/// The namespace of `content` ids: UUID v5 of the URL-namespace name
/// `iglu:io.unilog/event_id/jsonschema/1-0-0`.
pub const NAMESPACE: Uuid = Uuid::from_u128(0x33f34842_51f6_5bea_b01f_0d16fd5e499d);

/// How ids are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdMode {
    /// UUID v4.
    #[default]
    Random,
    /// UUID v5 of the input line.
    Content,
}

impl FromStr for IdMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "random" | "v4" => Ok(IdMode::Random),
            "content" | "v5" => Ok(IdMode::Content),
            _ => Err(format!(
                "event id mode {s:?} must be random (UUID v4) or content (UUID v5 of the input)"
            )),
        }
    }
}

/// xoshiro256++ (Blackman and Vigna): fast, 256 bits of state.
struct Xoshiro([u64; 4]);

impl Xoshiro {
    fn from_os() -> Self {
        let a = Uuid::new_v4().as_u64_pair();
        let b = Uuid::new_v4().as_u64_pair();
        let mut s = [a.0, a.1, b.0, b.1];
        if s.iter().all(|&x| x == 0) {
            s[0] = 1;
        }
        Xoshiro(s)
    }

    fn next(&mut self) -> u64 {
        let s = &mut self.0;
        let result = (s[0].wrapping_add(s[3])).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
}

/// The event-id step.
pub struct EventId {
    mode: IdMode,
    rng: Xoshiro,
    data: OneMember,
}

impl EventId {
    /// A step making ids by `mode`.
    pub fn new(mode: IdMode) -> Self {
        EventId {
            mode,
            rng: Xoshiro::from_os(),
            data: OneMember::new("event_id", schema::EVENT_ID),
        }
    }

    /// The id for an event read as `original`.
    pub fn make(&mut self, original: &[u8]) -> Uuid {
        match self.mode {
            IdMode::Random => {
                let mut bytes = [0u8; 16];
                bytes[..8].copy_from_slice(&self.rng.next().to_le_bytes());
                bytes[8..].copy_from_slice(&self.rng.next().to_le_bytes());
                uuid::Builder::from_random_bytes(bytes).into_uuid()
            }
            IdMode::Content => Uuid::new_v5(&NAMESPACE, original),
        }
    }
}

impl Step for EventId {
    fn name(&self) -> &'static str {
        "event_id"
    }

    /// Each copy draws random ids from its own generator, seeded apart.
    fn fork(&self) -> anyhow::Result<Box<dyn Step>> {
        Ok(Box::new(EventId::new(self.mode)))
    }

    fn apply(&mut self, ev: &mut Event, original: &[u8]) -> Result<Flow, Vec<FailureMessage>> {
        let id = self.make(original);
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let text = id.hyphenated().encode_lower(&mut text);
        self.data.set(|out| push_str(out, text));
        self.data.add_to(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::testing::run;
    use std::collections::HashSet;

    #[test]
    fn random_ids_are_v4_and_distinct() {
        let mut step = EventId::new(IdMode::Random);
        let ids: HashSet<Uuid> = (0..10_000).map(|_| step.make(b"same")).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids
            .iter()
            .all(|id| id.get_version_num() == 4 && id.get_variant() == uuid::Variant::RFC4122));
    }

    #[test]
    fn content_ids_are_stable_v5() {
        let mut a = EventId::new(IdMode::Content);
        let mut b = EventId::new(IdMode::Content);
        assert_eq!(a.make(b"{\"x\":1}"), b.make(b"{\"x\":1}"));
        assert_ne!(a.make(b"{\"x\":1}"), a.make(b"{\"x\":2}"));
        assert_eq!(a.make(b"x").get_version_num(), 5);
        assert_eq!(
            NAMESPACE.to_string(),
            "33f34842-51f6-5bea-b01f-0d16fd5e499d"
        );
    }

    #[test]
    fn ids_as_context_or_field() {
        let out = run(
            Box::new(EventId::new(IdMode::Content)),
            Some(".data"),
            r#"{"data":{}}"#,
        )
        .unwrap()
        .unwrap();
        let id = out["data"]["event_id"].as_str().unwrap();
        assert_eq!(id, Uuid::new_v5(&NAMESPACE, br#"{"data":{}}"#).to_string());
        let out = run(
            Box::new(EventId::new(IdMode::Random)),
            None,
            r#"{"data":{}}"#,
        )
        .unwrap()
        .unwrap();
        let id = out["derived_contexts"][0]["data"]["event_id"]
            .as_str()
            .unwrap();
        assert_eq!(Uuid::parse_str(id).unwrap().get_version_num(), 4);
        assert!("bogus".parse::<IdMode>().is_err());
    }
}
