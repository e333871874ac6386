//! Deciding: events in, alert commands out.

use jaq_json::Val;
use serde_json::value::RawValue;

use super::command::{command_id, AlertCommand};
use super::expr::Jq;
use super::prefilter::{Prefilter, Tri};
use super::rule::{event_time_ms, Rule};
use crate::event::{kind, FailureMessage};
use crate::jq::parse_json;
use crate::time;

/// Error kind of a rule that failed on an event (a jq runtime error).
pub const RULE_ERROR: &str = "rule_error";

/// What the decider made of one event.
#[derive(Debug, Default)]
pub struct Decision {
    /// Alert command lines, one per rule that fired.
    pub commands: Vec<Vec<u8>>,
    /// Rules that matched but were held back by their throttle.
    pub throttled: u64,
    /// Everything that went wrong; the event becomes a failure event when
    /// this is not empty (commands from other rules still go out).
    pub errors: Vec<FailureMessage>,
}

/// Applies rules to events.
pub struct Decider {
    rules: Vec<Rule>,
    time_path: Option<Jq>,
    now: fn() -> i64,
    prefilter: Option<Prefilter>,
    judged: Vec<Tri>,
}

impl Decider {
    /// A decider over `rules`, reading each event's time at `time_path`.
    pub fn new(rules: Vec<Rule>, time_path: Option<Jq>) -> Self {
        let prefilter = Prefilter::new(rules.iter().map(|r| r.condition()));
        Decider {
            prefilter: prefilter.is_useful().then_some(prefilter),
            judged: Vec::new(),
            rules,
            time_path,
            now: time::now_ms,
        }
    }

    /// Uses another clock (for tests).
    pub fn with_clock(mut self, now: fn() -> i64) -> Self {
        self.now = now;
        self
    }

    /// The rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rules, to restore their throttles' state.
    pub fn rules_mut(&mut self) -> &mut [Rule] {
        &mut self.rules
    }

    /// Turns the prefilter off, so that jq judges every event (for tests and
    /// benchmarks).
    pub fn without_prefilter(mut self) -> Self {
        self.prefilter = None;
        self
    }

    /// Applies every rule to one input line.
    pub fn decide(&mut self, line: &[u8]) -> Decision {
        let mut d = Decision::default();
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            d.errors
                .push(FailureMessage::new(kind::EMPTY_LINE, "empty line"));
            return d;
        }
        if trimmed[0] != b'{' {
            let message = match serde_json::from_slice::<serde::de::IgnoredAny>(trimmed) {
                Ok(_) => FailureMessage::new(
                    kind::NOT_OBJECT,
                    "a JSON value that is not an object: each event must be a JSON object",
                ),
                Err(e) => FailureMessage::new(kind::NOT_JSON, format!("not valid JSON: {e}")),
            };
            d.errors.push(message);
            return d;
        }
        // The prefilter answers the common conditions from the bytes; when
        // no rule can match, the event is never built as a jq value.
        self.judged.clear();
        if let Some(pf) = &mut self.prefilter {
            if pf.judge(trimmed, &mut self.judged) && self.judged.iter().all(|t| *t == Tri::False) {
                return d;
            }
        }
        let event = match parse_json(trimmed) {
            Ok(v) => v,
            Err(e) => {
                d.errors.push(FailureMessage::new(
                    kind::NOT_JSON,
                    format!("not valid JSON: {e}"),
                ));
                return d;
            }
        };
        let mut when: Option<(i64, Option<String>)> = None;
        let mut source: Option<Box<RawValue>> = None;
        for (i, rule) in self.rules.iter_mut().enumerate() {
            // The prefilter's answers are exact where it gives them (a test
            // holds it to jq's), so jq runs only where it said "unknown".
            let judged = match self.judged.get(i) {
                Some(Tri::False) => continue,
                Some(Tri::True) => Ok(true),
                _ => rule.matches(&event),
            };
            match judged {
                Ok(false) => continue,
                Ok(true) => {}
                Err(e) => {
                    d.errors.push(
                        FailureMessage::new(RULE_ERROR, e.to_string())
                            .with("rule", rule.id.as_str()),
                    );
                    continue;
                }
            }
            // Only matching events pay for the time, the verbatim source
            // and the templates.
            let (at_ms, event_time) = when
                .get_or_insert_with(|| {
                    let found = self
                        .time_path
                        .as_ref()
                        .and_then(|p| p.first(&event).ok().flatten())
                        .and_then(|v| event_time_ms(&v));
                    match found {
                        Some(ms) => (ms, Some(time::format_rfc3339_ms(ms))),
                        None => ((self.now)(), None),
                    }
                })
                .clone();
            let step = rule.admit(&event, at_ms).and_then(|admitted| {
                Ok((
                    admitted,
                    if admitted {
                        Some(rule.render(&event)?)
                    } else {
                        None
                    },
                ))
            });
            let rendered = match step {
                Ok((false, _)) => {
                    d.throttled += 1;
                    continue;
                }
                Ok((true, r)) => r.expect("rendered when admitted"),
                Err(e) => {
                    d.errors.push(
                        FailureMessage::new(RULE_ERROR, e.to_string())
                            .with("rule", rule.id.as_str()),
                    );
                    continue;
                }
            };
            if source.is_none() {
                match std::str::from_utf8(trimmed)
                    .map_err(|e| e.to_string())
                    .and_then(|s| RawValue::from_string(s.to_string()).map_err(|e| e.to_string()))
                {
                    Ok(raw) => source = Some(raw),
                    Err(e) => {
                        d.errors.push(FailureMessage::new(
                            kind::NOT_JSON,
                            format!("not valid JSON: {e}"),
                        ));
                        return d;
                    }
                }
            }
            let source = source.as_deref().expect("set above");
            let cmd = AlertCommand {
                command_id: command_id(&rule.id, trimmed),
                rule: &rule.id,
                created_at: time::format_rfc3339_ms((self.now)()),
                event_time,
                notification: rendered.notification,
                recipient: rendered.recipient,
                source,
            };
            d.commands.push(cmd.to_line());
        }
        d
    }
}

/// Keeps the jaq value type out of callers' signatures.
pub type Event = Val;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::rule::parse_rules;
    use serde_json::Value;

    fn decider(rules: &str) -> Decider {
        Decider::new(
            parse_rules(rules).unwrap(),
            Some(Jq::compile(".data.timestamp").unwrap()),
        )
        .with_clock(|| 42)
    }

    #[test]
    fn matching_events_become_commands() {
        let mut d = decider(
            r#"[{"id":"disk","when":".data.free < 10","summary":"{{.data.host}} at {{.data.free}}%",
                 "urgency":"high","recipient":{"email":"ops@example.com"}}]"#,
        );
        let line = br#"{"schema":"iglu:com.acme/disk/jsonschema/1-0-0","data":{"host":"db1","free":3,"timestamp":"2026-01-01T00:00:00Z"}}"#;
        let out = d.decide(line);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(out.commands.len(), 1);
        let v: Value = serde_json::from_slice(&out.commands[0]).unwrap();
        assert_eq!(v["schema"], "iglu:io.unilog/alert/jsonschema/1-0-0");
        assert_eq!(v["data"]["rule"], "disk");
        assert_eq!(v["data"]["notification"]["summary"], "db1 at 3%");
        assert_eq!(v["data"]["notification"]["urgency"], "high");
        assert_eq!(v["data"]["recipient"]["email"], "ops@example.com");
        assert_eq!(v["data"]["event_time"], "2026-01-01T00:00:00.000Z");
        assert_eq!(v["data"]["created_at"], "1970-01-01T00:00:00.042Z");
        assert_eq!(v["data"]["command_id"], command_id("disk", line));
        // The source is kept byte for byte.
        let text = std::str::from_utf8(&out.commands[0]).unwrap();
        assert!(text.contains(std::str::from_utf8(line).unwrap()));
        // The same event again gives the same command id.
        let again = d.decide(line);
        let v2: Value = serde_json::from_slice(&again.commands[0]).unwrap();
        assert_eq!(v2["data"]["command_id"], v["data"]["command_id"]);
        assert!(d
            .decide(br#"{"data":{"host":"db1","free":30}}"#)
            .commands
            .is_empty());
    }

    #[test]
    fn bad_lines_and_rule_errors_are_failures() {
        let mut d = decider(
            r#"[{"id":"a","when":".data.n + 1 > 2","summary":"a"},{"id":"b","when":"true","summary":"b"}]"#,
        );
        assert_eq!(d.decide(b"").errors[0].kind, kind::EMPTY_LINE);
        assert_eq!(d.decide(b"[1]").errors[0].kind, kind::NOT_OBJECT);
        assert_eq!(d.decide(b"{oops").errors[0].kind, kind::NOT_JSON);
        assert_eq!(d.decide(b"{\"a\":1} # c").errors[0].kind, kind::NOT_JSON);
        let out = d.decide(br#"{"data":{"n":"x"}}"#);
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0].kind, RULE_ERROR);
        assert_eq!(out.commands.len(), 1, "rule b still fires");
    }

    #[test]
    fn throttle_uses_event_time_then_processing_time() {
        let mut d = decider(
            r#"[{"id":"t","when":"true","summary":"x","throttle":"1m","per":".data.host"}]"#,
        );
        let at = |host: &str, t: &str| {
            format!(r#"{{"data":{{"host":"{host}","timestamp":"2026-01-01T00:{t}Z"}}}}"#)
        };
        let mut fired = |line: String| d.decide(line.as_bytes()).commands.len();
        assert_eq!(fired(at("a", "00:00")), 1);
        assert_eq!(fired(at("a", "00:59")), 0);
        assert_eq!(fired(at("b", "00:30")), 1);
        assert_eq!(fired(at("a", "01:00")), 1);
        // No event time: processing time (the test clock, 42 ms) for all.
        assert_eq!(fired(r#"{"data":{"host":"c"}}"#.into()), 1);
        assert_eq!(fired(r#"{"data":{"host":"c"}}"#.into()), 0);
    }

    /// The prefilter changes the speed, never the result.
    #[test]
    fn prefilter_changes_nothing_but_speed() {
        let rules = r#"[
            {"id":"pricey","when":".data.product.price > 800","summary":"{{.data.product.name}}"},
            {"id":"order","when":".schema == \"iglu:com.nile/shopper_placed_order/jsonschema/1-0-0\" and .data.shopper.id < \"1100\"","summary":"o"},
            {"id":"first","when":".data.order.items[0].product.sku == \"aapl-001\" or (.data.shopper.name == \"Li\" | not) and .data.x.y","summary":"f"},
            {"id":"jq","when":".data.shopper.name | test(\"^Z\")","summary":"z","throttle":"10m","per":".data.shopper.id"}
        ]"#;
        let mut fast = decider(rules);
        let mut slow = decider(rules).without_prefilter();
        assert!(fast.prefilter.is_some());
        let mut events = Vec::new();
        crate::gen::generate(
            &crate::gen::GenOptions {
                count: 20_000,
                seed: 11,
                ..Default::default()
            },
            &mut events,
        )
        .unwrap();
        events.extend_from_slice(b"{\"data\":{\"x\":\"s\",\"shopper\":{\"name\":\"Al\"}}}\n");
        let (mut commands, mut errors) = (0, 0);
        for line in events.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let a = fast.decide(line);
            let b = slow.decide(line);
            assert_eq!(a.commands, b.commands);
            assert_eq!(a.throttled, b.throttled);
            assert_eq!(a.errors, b.errors);
            commands += a.commands.len();
            errors += a.errors.len();
        }
        assert!(commands > 100, "{commands} commands");
        assert_eq!(errors, 1, "the last event's .data.x.y is an error for jq");
    }
}
