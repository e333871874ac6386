//! Alert commands: the self-describing events that `alert --rule` writes and
//! `alert --send` executes, and the outcome events the executor reports.
//!
//! ```json
//! {"schema":"iglu:io.unilog/alert/jsonschema/1-0-0",
//!  "data":{"command_id":"…32 hex…","rule":"disk-low","created_at":"2026-…Z",
//!          "event_time":"2026-…Z",
//!          "notification":{"summary":"…","detail":"…","urgency":"high"},
//!          "recipient":{"name":"Ops","email":"ops@example.com","phone":"+44…"},
//!          "source":{…the event, verbatim…}}}
//! ```

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::event::IgluUri;

/// The schema of alert commands.
pub const ALERT_SCHEMA: &str = "iglu:io.unilog/alert/jsonschema/1-0-0";
/// The schema of the executor's outcome events.
pub const OUTCOME_SCHEMA: &str = "iglu:io.unilog/alert_outcome/jsonschema/1-0-0";

/// Longest summary kept: a subject line, not a document.
pub const MAX_SUMMARY: usize = 200;
/// Longest detail kept.
pub const MAX_DETAIL: usize = 64 * 1024;
/// Longest recipient field (name, email, phone) kept.
pub const MAX_RECIPIENT_FIELD: usize = 320;

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    /// Can wait for working hours.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Someone should look soon.
    High,
    /// Wake someone up.
    Critical,
}

impl FromStr for Urgency {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "low" => Urgency::Low,
            "normal" => Urgency::Normal,
            "high" => Urgency::High,
            "critical" => Urgency::Critical,
            _ => bail!("urgency {s:?} must be low, normal, high or critical"),
        })
    }
}

impl fmt::Display for Urgency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
            Urgency::Critical => "critical",
        })
    }
}

/// What the alert says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// One line: an email's subject, a pager's text.
    pub summary: String,
    /// The body.
    #[serde(default)]
    pub detail: String,
    /// How urgent it is.
    #[serde(default)]
    pub urgency: Urgency,
}

/// Who the alert is for. Each field is optional; the channel uses what it
/// needs (email for SMTP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Recipient {
    /// A person's or a team's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// An email address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    /// A phone number, for channels that page or text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phone: String,
}

/// An alert command as the decider writes it.
#[derive(Debug, Serialize)]
pub struct AlertCommand<'a> {
    /// Deterministic id: [`command_id`] of the rule and the source event.
    pub command_id: String,
    /// The rule that raised it.
    pub rule: &'a str,
    /// When the decider made it (RFC 3339).
    pub created_at: String,
    /// The source event's own time, when it has one (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    /// What to say.
    pub notification: Notification,
    /// To whom.
    pub recipient: Recipient,
    /// The event that raised it, verbatim.
    pub source: &'a RawValue,
}

impl AlertCommand<'_> {
    /// The command as one self-describing JSON line.
    pub fn to_line(&self) -> Vec<u8> {
        let mut out = br#"{"schema":""#.to_vec();
        out.extend_from_slice(ALERT_SCHEMA.as_bytes());
        out.extend_from_slice(br#"","data":"#);
        serde_json::to_writer(&mut out, self).expect("alert commands serialize");
        out.push(b'}');
        out
    }
}

/// The command id of the alert that `rule` raises for the event `source`
/// (its bytes as read): the first 128 bits of SHA-256 over the rule id, a
/// NUL and the event, in hex. The same event read again (redelivered, or
/// re-read after a crash) gives the same id, which is what lets the executor
/// run each command once.
pub fn command_id(rule: &str, source: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(rule.as_bytes());
    h.update([0u8]);
    h.update(source);
    let digest = h.finalize();
    let mut s = String::with_capacity(32);
    for b in &digest[..16] {
        use fmt::Write;
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// True when `id` looks like a command id (hex, 16 to 64 digits), so it is
/// safe in a file name, a header and an environment variable.
pub fn is_valid_id(id: &str) -> bool {
    (16..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Makes a value safe for one line: every control character (CR, LF, TAB,
/// NUL, …) and Unicode line separator becomes a space, runs of spaces fold
/// into one, and the result is cut at `max` bytes on a character boundary
/// (with `…`).
pub fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    let mut space = false;
    for c in text.trim().chars() {
        let c = if c.is_control() || c == '\u{2028}' || c == '\u{2029}' || c == '\u{85}' {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if space {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        out.push(c);
    }
    truncate(out.trim_end().to_string(), max)
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the
/// cut with `…`.
pub fn truncate(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut cut = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push('…');
    text
}

/// Keeps a multi-line text's lines but drops other control characters
/// (a body, not a header), cut at `max` bytes.
pub fn body_text(text: &str, max: usize) -> String {
    let cleaned: String = text
        .replace("\r\n", "\n")
        .chars()
        .map(|c| if c == '\r' { '\n' } else { c })
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .collect();
    truncate(cleaned, max)
}

/// An alert command as the executor reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct ReceivedCommand {
    /// The command's id.
    pub command_id: String,
    /// The rule that raised it.
    #[serde(default)]
    pub rule: String,
    /// What to say.
    pub notification: Notification,
    /// To whom.
    #[serde(default)]
    pub recipient: Recipient,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    schema: &'a str,
    data: ReceivedCommand,
}

impl ReceivedCommand {
    /// Parses one line as an alert command, saying everything wrong with it.
    pub fn parse(line: &[u8]) -> Result<Self, Vec<String>> {
        let env: Envelope = match serde_json::from_slice(line) {
            Ok(env) => env,
            Err(e) => return Err(vec![format!("not an alert command: {e}")]),
        };
        let mut errors = Vec::new();
        match IgluUri::parse(env.schema) {
            Ok(uri)
                if uri.vendor == "io.unilog"
                    && uri.name == "alert"
                    && uri.format == "jsonschema"
                    && uri.version.model == 1 => {}
            Ok(_) => errors.push(format!(
                "schema {:?} is not an alert command ({ALERT_SCHEMA})",
                env.schema
            )),
            Err(e) => errors.push(e.to_string()),
        }
        let cmd = env.data;
        if !is_valid_id(&cmd.command_id) {
            errors.push(format!(
                "command_id {:?} must be 16 to 64 hexadecimal digits",
                cmd.command_id
            ));
        }
        if cmd.notification.summary.trim().is_empty() {
            errors.push("notification.summary is empty".into());
        }
        if errors.is_empty() {
            Ok(cmd)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_depend_on_rule_and_event() {
        let a = command_id("disk", br#"{"a":1}"#);
        assert_eq!(a, command_id("disk", br#"{"a":1}"#));
        assert_eq!(a.len(), 32);
        assert!(is_valid_id(&a));
        assert_ne!(a, command_id("disk", br#"{"a":2}"#));
        assert_ne!(a, command_id("disk2", br#"{"a":1}"#));
        // The separator keeps "ab"+"c" apart from "a"+"bc".
        assert_ne!(command_id("ab", b"c"), command_id("a", b"bc"));
        assert!(!is_valid_id("../../etc/passwd"));
        assert!(!is_valid_id("abc"));
    }

    #[test]
    fn one_line_strips_header_injection() {
        let s = one_line("Disk full\r\nBcc: evil@example.com\n\tX: y\u{2028}z", 200);
        assert_eq!(s, "Disk full Bcc: evil@example.com X: y z");
        assert!(!s.contains('\r') && !s.contains('\n'));
        let long = one_line(&"é".repeat(500), 200);
        assert!(long.len() <= 200 && long.ends_with('…'));
    }

    #[test]
    fn commands_round_trip() {
        let source =
            RawValue::from_string(r#"{"schema":"iglu:x.y/z/jsonschema/1-0-0","data":{}}"#.into())
                .unwrap();
        let cmd = AlertCommand {
            command_id: command_id("r", source.get().as_bytes()),
            rule: "r",
            created_at: "2026-01-01T00:00:00.000Z".into(),
            event_time: None,
            notification: Notification {
                summary: "s".into(),
                detail: "d".into(),
                urgency: Urgency::High,
            },
            recipient: Recipient {
                name: "Ops".into(),
                email: "ops@example.com".into(),
                phone: String::new(),
            },
            source: &source,
        };
        let line = cmd.to_line();
        let back = ReceivedCommand::parse(&line).unwrap();
        assert_eq!(back.command_id, cmd.command_id);
        assert_eq!(back.notification, cmd.notification);
        assert_eq!(back.recipient.email, "ops@example.com");
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["data"]["source"]["schema"], "iglu:x.y/z/jsonschema/1-0-0");
    }

    #[test]
    fn bad_commands_say_everything_wrong() {
        let line = br#"{"schema":"iglu:io.unilog/failure/jsonschema/1-0-0","data":{"command_id":"x","notification":{"summary":" "}}}"#;
        let errs = ReceivedCommand::parse(line).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(ReceivedCommand::parse(b"[1]").is_err());
    }
}
