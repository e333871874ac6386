//! Rules: which events raise an alert, what it says, to whom, and how often.
//!
//! A rules file is JSON, either `{"rules":[RULE,…]}` or `[RULE,…]`:
//!
//! ```json
//! {"rules":[{
//!   "id": "disk-low",
//!   "when": ".data.free_percent < 10",
//!   "summary": "Disk {{.data.mount}} on {{.data.host}} is {{.data.free_percent}}% free",
//!   "detail": "Free space fell to {{.data.free_bytes}} bytes.",
//!   "urgency": "high",
//!   "recipient": {"name": "Ops", "email": "ops@example.com", "phone": "+44 20 7946 0000"},
//!   "throttle": "30m", "per": ".data.host"
//! }]}
//! ```
//!
//! `when` is a jq filter (see [`super::expr`]); `summary`, `detail` and the
//! recipient's fields are templates. `throttle` with `per` lets at most one
//! alert through per rule, per key and per period.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use jaq_json::Val;
use serde::Deserialize;
use serde_json::Value;

use super::command::{self, Urgency};
use super::expr::{EvalError, Jq, Template};
use crate::time;

/// A rule as written in a rules file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Names the rule in commands and outcomes; part of the command id.
    pub id: String,
    /// A jq condition.
    pub when: String,
    /// Template for the one-line summary.
    pub summary: String,
    /// Template for the body.
    #[serde(default)]
    pub detail: String,
    /// How urgent the alert is.
    #[serde(default)]
    pub urgency: Urgency,
    /// Templates for the recipient's name, email and phone.
    #[serde(default)]
    pub recipient: RecipientSpec,
    /// At most one alert per key per this period (`30m`, `1h`).
    #[serde(default)]
    pub throttle: Option<String>,
    /// The jq filter whose value is the throttle key; the whole rule when absent.
    #[serde(default)]
    pub per: Option<String>,
}

/// Recipient templates.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RecipientSpec {
    /// Name template.
    #[serde(default)]
    pub name: String,
    /// Email template.
    #[serde(default)]
    pub email: String,
    /// Phone template.
    #[serde(default)]
    pub phone: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RulesFile {
    Wrapped { rules: Vec<RuleSpec> },
    List(Vec<RuleSpec>),
}

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// The rule's id.
    pub id: String,
    when: Jq,
    summary: Template,
    detail: Template,
    urgency: Urgency,
    name: Template,
    email: Template,
    phone: Template,
    throttle: Option<Throttle>,
}

/// What a rule says about one event.
#[derive(Debug, PartialEq)]
pub struct Rendered {
    /// The notification.
    pub notification: command::Notification,
    /// The recipient.
    pub recipient: command::Recipient,
}

impl Rule {
    /// Compiles a rule, naming the rule and field in any error.
    pub fn compile(spec: RuleSpec) -> Result<Self> {
        let id = spec.id.trim().to_string();
        if id.is_empty() || id.len() > 200 || id.chars().any(|c| c.is_control()) {
            bail!(
                "rule id {:?} must be 1 to 200 printable characters",
                spec.id
            );
        }
        let ctx = |field: &str| format!("rule {id:?}: {field}");
        let throttle = match (&spec.throttle, &spec.per) {
            (Some(period), per) => {
                let period_ms = time::parse_duration_ms(period).with_context(|| ctx("throttle"))?;
                if period_ms == 0 {
                    bail!("{}: throttle must be longer than 0", ctx("throttle"));
                }
                let per = per
                    .as_deref()
                    .map(Jq::compile)
                    .transpose()
                    .with_context(|| ctx("per"))?;
                Some(Throttle::new(period_ms, per))
            }
            (None, Some(_)) => bail!("{}: \"per\" needs \"throttle\" as well", ctx("per")),
            (None, None) => None,
        };
        Ok(Rule {
            when: Jq::compile(&spec.when).with_context(|| ctx("when"))?,
            summary: Template::parse(&spec.summary).with_context(|| ctx("summary"))?,
            detail: Template::parse(&spec.detail).with_context(|| ctx("detail"))?,
            urgency: spec.urgency,
            name: Template::parse(&spec.recipient.name).with_context(|| ctx("recipient.name"))?,
            email: Template::parse(&spec.recipient.email)
                .with_context(|| ctx("recipient.email"))?,
            phone: Template::parse(&spec.recipient.phone)
                .with_context(|| ctx("recipient.phone"))?,
            throttle,
            id,
        })
    }

    /// The rule's condition, as written.
    pub fn condition(&self) -> &str {
        self.when.text()
    }

    /// True when the event matches the rule's condition.
    pub fn matches(&self, event: &Val) -> Result<bool, EvalError> {
        self.when.matches(event)
    }

    /// Fills the rule's templates from the event. Every value is made safe
    /// for its place: the summary and the recipient's fields become one line
    /// (no CR, LF or other control character survives) of bounded length,
    /// the detail keeps its lines but loses other control characters.
    pub fn render(&self, event: &Val) -> Result<Rendered, EvalError> {
        use command::{body_text, one_line, MAX_DETAIL, MAX_RECIPIENT_FIELD, MAX_SUMMARY};
        let mut summary = one_line(&self.summary.render(event)?, MAX_SUMMARY);
        if summary.is_empty() {
            summary = format!("alert {}", self.id);
        }
        Ok(Rendered {
            notification: command::Notification {
                summary,
                detail: body_text(&self.detail.render(event)?, MAX_DETAIL),
                urgency: self.urgency,
            },
            recipient: command::Recipient {
                name: one_line(&self.name.render(event)?, MAX_RECIPIENT_FIELD),
                email: one_line(&self.email.render(event)?, MAX_RECIPIENT_FIELD),
                phone: one_line(&self.phone.render(event)?, MAX_RECIPIENT_FIELD),
            },
        })
    }

    /// The rule's throttle, if it has one.
    pub fn throttle_mut(&mut self) -> Option<&mut Throttle> {
        self.throttle.as_mut()
    }

    /// Asks the rule's throttle (if any) whether an alert for `event` at
    /// `at_ms` may go out, and records it when so.
    pub fn admit(&mut self, event: &Val, at_ms: i64) -> Result<bool, EvalError> {
        match &mut self.throttle {
            None => Ok(true),
            Some(t) => t.admit(event, at_ms),
        }
    }
}

/// Reads the rule specs of a rules file.
pub fn load_specs(path: &Path) -> Result<Vec<RuleSpec>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read rules file {}", path.display()))?;
    parse_specs(&text).with_context(|| format!("rules file {}", path.display()))
}

/// Parses the rule specs in a rules file's text.
pub fn parse_specs(text: &str) -> Result<Vec<RuleSpec>> {
    let file: RulesFile = serde_json::from_str(text).map_err(|e| {
        anyhow!("{e} (a rules file is {{\"rules\":[{{\"id\":…,\"when\":…,\"summary\":…}}]}})")
    })?;
    let specs = match file {
        RulesFile::Wrapped { rules } | RulesFile::List(rules) => rules,
    };
    if specs.is_empty() {
        bail!("no rules");
    }
    Ok(specs)
}

/// Compiles rules, refusing two with one id.
pub fn compile_rules(specs: Vec<RuleSpec>) -> Result<Vec<Rule>> {
    let mut rules: Vec<Rule> = Vec::with_capacity(specs.len());
    for spec in specs {
        let rule = Rule::compile(spec)?;
        if rules.iter().any(|r| r.id == rule.id) {
            bail!("two rules have the id {:?}; ids must be unique", rule.id);
        }
        rules.push(rule);
    }
    Ok(rules)
}

/// Parses and compiles the rules in a rules file's text.
pub fn parse_rules(text: &str) -> Result<Vec<Rule>> {
    compile_rules(parse_specs(text)?)
}

/// At most one alert per key per period.
///
/// Time is the event's own time when it has one, else the time of
/// processing. An alert at time `t` for a key shuts out the key's alerts
/// at times in `[t, t + period)`; an event older than the last alert for its
/// key (out of order) is also held back while within the period.
#[derive(Debug)]
pub struct Throttle {
    period_ms: i64,
    per: Option<Jq>,
    last: HashMap<Vec<u8>, i64>,
    newest: i64,
    sweep_at: usize,
}

impl Throttle {
    /// A throttle of `period_ms` per value of `per` (one key when `None`).
    pub fn new(period_ms: i64, per: Option<Jq>) -> Self {
        Throttle {
            period_ms,
            per,
            last: HashMap::new(),
            newest: i64::MIN,
            sweep_at: 1024,
        }
    }

    /// Whether an alert for this event may go out at `at_ms`; records it if so.
    pub fn admit(&mut self, event: &Val, at_ms: i64) -> Result<bool, EvalError> {
        let key = match &self.per {
            None => Vec::new(),
            Some(jq) => jq
                .first(event)?
                .map(|v| v.to_string().into_bytes())
                .unwrap_or_default(),
        };
        self.newest = self.newest.max(at_ms);
        if let Some(&last) = self.last.get(&key) {
            if at_ms < last.saturating_add(self.period_ms) {
                return Ok(false);
            }
        }
        self.last.insert(key, at_ms);
        if self.last.len() >= self.sweep_at {
            // Keys whose period is over can go: keeps memory bounded by the
            // number of keys alerted within one period.
            let horizon = self.newest.saturating_sub(self.period_ms);
            self.last.retain(|_, &mut t| t > horizon);
            self.sweep_at = (self.last.len() * 2).max(1024);
        }
        Ok(true)
    }

    /// Keys currently remembered.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// What the throttle remembers, as JSON: its period and, per key (the
    /// key's JSON text), the time of its last alert while within a period.
    pub fn save(&self) -> Value {
        let horizon = self.newest.saturating_sub(self.period_ms);
        let keys: serde_json::Map<String, Value> = self
            .last
            .iter()
            .filter(|(_, &t)| t > horizon)
            .map(|(k, &t)| (String::from_utf8_lossy(k).into_owned(), t.into()))
            .collect();
        serde_json::json!({"period_ms": self.period_ms, "newest": self.newest, "keys": keys})
    }

    /// Takes back what [`Throttle::save`] gave (from an earlier run). A
    /// saved state of another period is used too: the times are the facts.
    pub fn restore(&mut self, saved: &Value) -> Result<()> {
        let keys = saved["keys"]
            .as_object()
            .context("\"keys\" is not an object")?;
        for (k, t) in keys {
            let t = t.as_i64().with_context(|| format!("key {k}: not a time"))?;
            let slot = self.last.entry(k.as_bytes().to_vec()).or_insert(t);
            *slot = (*slot).max(t);
        }
        if let Some(n) = saved["newest"].as_i64() {
            self.newest = self.newest.max(n);
        }
        self.sweep_at = (self.last.len() * 2).max(1024);
        Ok(())
    }

    /// True when no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

/// The file in a decider's `--state DIR` that keeps its throttles.
pub const THROTTLE_FILE: &str = "throttles.json";

/// The throttles of `rules` kept in a state directory across runs, so that
/// a decider run from cron every minute throttles as one long run would.
/// The directory is locked while open; [`ThrottleState::save`] replaces the
/// file atomically (write, fsync, rename, directory fsync).
pub struct ThrottleState {
    path: std::path::PathBuf,
    _lock: std::fs::File,
}

impl ThrottleState {
    /// Opens `dir` (creating it) and gives `rules` what an earlier run saved.
    pub fn open(dir: &Path, rules: &mut [Rule]) -> Result<Self> {
        let lock = super::journal::lock_dir(dir, "decider")?;
        let path = dir.join(THROTTLE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let saved: Value = serde_json::from_slice(&bytes)
                    .with_context(|| format!("throttle state {} is damaged", path.display()))?;
                for rule in rules.iter_mut() {
                    let Some(t) = rule.throttle.as_mut() else {
                        continue;
                    };
                    if let Some(s) = saved["rules"].get(&rule.id) {
                        t.restore(s).with_context(|| {
                            format!("throttle state {}: rule {:?}", path.display(), rule.id)
                        })?;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
        Ok(ThrottleState { path, _lock: lock })
    }

    /// Saves the throttles of `rules`; call it after the commands they let
    /// through are flushed, so a crash re-raises an alert (the executor's
    /// journal drops the copy by its id) rather than loses one.
    pub fn save(&self, rules: &[Rule]) -> Result<()> {
        let mut by_rule = serde_json::Map::new();
        for rule in rules {
            if let Some(t) = &rule.throttle {
                by_rule.insert(rule.id.clone(), t.save());
            }
        }
        let body = serde_json::to_vec(&serde_json::json!({"version": 1, "rules": by_rule}))
            .expect("values serialize");
        crate::store::write_atomically(&self.path, &body)
    }
}

/// Reads an event time from a jaq value: an RFC 3339 string, or a number of
/// milliseconds since the epoch.
pub fn event_time_ms(v: &Val) -> Option<i64> {
    match v {
        Val::TStr(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| time::parse_rfc3339_ms(s).ok()),
        Val::Num(_) => {
            let text = v.to_string();
            text.parse::<i64>().ok().or_else(|| {
                text.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(|f| f as i64)
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jq::parse_json;

    fn ev(s: &str) -> Val {
        parse_json(s.as_bytes()).unwrap()
    }

    #[test]
    fn rules_file_forms_and_errors() {
        let r = parse_rules(r#"[{"id":"a","when":".x","summary":"s"}]"#).unwrap();
        assert_eq!(r[0].id, "a");
        let r =
            parse_rules(r#"{"rules":[{"id":"a","when":".x","summary":"s","urgency":"critical"}]}"#)
                .unwrap();
        assert_eq!(r[0].urgency, Urgency::Critical);
        let err = parse_rules(r#"[{"id":"a","when":".x <","summary":"s"}]"#).unwrap_err();
        assert!(format!("{err:#}").contains("rule \"a\": when"), "{err:#}");
        let err = parse_rules(
            r#"[{"id":"a","when":".x","summary":"s"},{"id":"a","when":".y","summary":"t"}]"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unique"));
        assert!(parse_rules(r#"[{"id":"a","when":".x","summary":"s","per":".h"}]"#).is_err());
        assert!(parse_rules(r#"[{"id":"a","when":".x","summary":"s","urgency":"meh"}]"#).is_err());
        assert!(parse_rules(r#"[{"id":"a","when":".x","sumary":"s"}]"#).is_err());
        assert!(parse_rules("[]").is_err());
    }

    #[test]
    fn render_makes_fields_safe() {
        let rules = parse_rules(
            r#"[{"id":"r","when":"true","summary":"Host {{.h}} down","detail":"line1\n{{.d}}",
                "recipient":{"name":"{{.n}}","email":"{{.e}}"}}]"#,
        )
        .unwrap();
        let e = ev(
            r#"{"h":"a\r\nBcc: evil@x.com","d":"x\u0000y\r\nz","n":"Eve\nX: 1","e":"ops@example.com\r\nBcc: evil@x.com"}"#,
        );
        let out = rules[0].render(&e).unwrap();
        assert_eq!(out.notification.summary, "Host a Bcc: evil@x.com down");
        assert_eq!(out.notification.detail, "line1\nxy\nz");
        assert_eq!(out.recipient.name, "Eve X: 1");
        assert_eq!(out.recipient.email, "ops@example.com Bcc: evil@x.com");
        let long = ev(&format!(r#"{{"h":"{}"}}"#, "x".repeat(100_000)));
        let out = rules[0].render(&long).unwrap();
        assert!(out.notification.summary.len() <= command::MAX_SUMMARY);
    }

    #[test]
    fn throttle_per_key_and_period() {
        let mut t = Throttle::new(1000, Some(Jq::compile(".h").unwrap()));
        let a = ev(r#"{"h":"a"}"#);
        let b = ev(r#"{"h":"b"}"#);
        assert!(t.admit(&a, 0).unwrap());
        assert!(!t.admit(&a, 999).unwrap());
        assert!(t.admit(&b, 500).unwrap());
        assert!(t.admit(&a, 1000).unwrap());
        assert!(!t.admit(&a, 1500).unwrap());
        assert!(!t.admit(&a, 10).unwrap(), "out-of-order within the period");
        assert!(!t.admit(&b, 1499).unwrap());
        assert!(t.admit(&b, 1500).unwrap());
    }

    #[test]
    fn throttle_memory_is_bounded() {
        let mut t = Throttle::new(10, Some(Jq::compile(".k").unwrap()));
        for i in 0..100_000i64 {
            let e = ev(&format!(r#"{{"k":{i}}}"#));
            assert!(t.admit(&e, i).unwrap());
        }
        assert!(t.len() < 3000, "{} keys kept", t.len());
    }

    #[test]
    fn event_times() {
        assert_eq!(event_time_ms(&ev(r#""1970-01-01T00:00:01Z""#)), Some(1000));
        assert_eq!(event_time_ms(&ev("1500")), Some(1500));
        assert_eq!(event_time_ms(&ev(r#""soon""#)), None);
        assert_eq!(event_time_ms(&ev("null")), None);
    }
}
