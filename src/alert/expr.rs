//! Conditions and templates in jq syntax, evaluated by the jaq crates.
//!
//! A condition (`--when`, a rule's `when`) is any jq filter: an event matches
//! when one of its outputs is truthy (neither `false` nor `null`), as jq's
//! `select(COND)` would keep it. A template is text with `{{ FILTER }}`
//! holes, such as `Disk {{.data.mount}} on {{.data.host}}`: each hole is a jq
//! filter whose first output fills it (a string as its text, anything else
//! as compact JSON, nothing or `null` as the empty string).
//!
//! The filters run sandboxed from the process: the jq functions that read
//! the environment (`env`, `$ENV`), read further input (`input`, `inputs`),
//! stop the process (`halt`, `halt_error`) or write to stderr (`debug`,
//! `stderr`) are not defined, so a rule cannot leak a credential from the
//! environment into an alert, nor end or disturb the tool.

use std::fmt;
use std::sync::LazyLock;

use anyhow::{anyhow, bail, Result};
use jaq_json::Val;

use crate::jq::{CompileError, Program, Sandbox};

/// Rules see only the event (see [`Sandbox::event_only`]).
static SANDBOX: LazyLock<Sandbox> = LazyLock::new(|| Sandbox::event_only("alert rules"));

/// A compiled jq filter with the source text it came from.
pub struct Jq {
    text: String,
    program: Program,
}

impl fmt::Debug for Jq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Jq({:?})", self.text)
    }
}

/// Why a filter failed on one event.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalError(pub String);

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Jq {
    /// Compiles `text`; the error names the column where it goes wrong.
    pub fn compile(text: &str) -> Result<Self> {
        let program = Program::compile(text, Some(&*SANDBOX)).map_err(|e| match e {
            CompileError::Syntax(_) => anyhow!("jq filter {text:?} does not parse: {e}"),
            CompileError::Undefined(names) => {
                let messages: Vec<String> = names
                    .iter()
                    .map(|u| {
                        let hint = if SANDBOX.denied.contains(&u.name.as_str()) || u.name == "$ENV"
                        {
                            " (not available in alert rules)"
                        } else {
                            ""
                        };
                        format!("undefined {} {} at {}{hint}", u.kind, u.name, u.at)
                    })
                    .collect();
                anyhow!(
                    "jq filter {text:?} does not compile: {}",
                    messages.join("; ")
                )
            }
        })?;
        Ok(Jq {
            text: text.to_string(),
            program,
        })
    }

    /// The filter's source text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Runs the filter on `input`, calling `each` with every output until it
    /// returns `false`.
    fn run(&self, input: Val, mut each: impl FnMut(Val) -> bool) -> Result<(), EvalError> {
        let mut error = None;
        self.program.run(input, |result| match result {
            Ok(v) => each(v),
            Err(e) => {
                error = Some(EvalError(format!("jq filter {:?}: {e}", self.text)));
                false
            }
        });
        error.map_or(Ok(()), Err)
    }

    /// True when some output of the filter on `input` is truthy.
    pub fn matches(&self, input: &Val) -> Result<bool, EvalError> {
        let mut hit = false;
        self.run(input.clone(), |v| {
            hit = !matches!(v, Val::Null | Val::Bool(false));
            !hit
        })?;
        Ok(hit)
    }

    /// The first output of the filter on `input`, if any.
    pub fn first(&self, input: &Val) -> Result<Option<Val>, EvalError> {
        let mut first = None;
        self.run(input.clone(), |v| {
            first = Some(v);
            false
        })?;
        Ok(first)
    }
}

/// The text a value puts in a template: a string's contents, `""` for
/// `null`, compact JSON for anything else.
pub fn value_text(v: &Val) -> String {
    match v {
        Val::Null => String::new(),
        Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(b).into_owned(),
        other => other.to_string(),
    }
}

/// One piece of a template.
#[derive(Debug)]
enum Piece {
    Text(String),
    Hole(Jq),
}

/// Text with `{{ FILTER }}` holes filled from an event.
#[derive(Debug)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses a template. `{{` opens a hole that the next `}}` closes; a
    /// literal `{{` is written `{{"{{"}}`.
    pub fn parse(source: &str) -> Result<Self> {
        let mut pieces = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let Some(close) = find_close(after) else {
                bail!("template {source:?}: \"{{{{\" without a closing \"}}}}\"");
            };
            let code = after[..close].trim();
            if code.is_empty() {
                bail!("template {source:?}: empty \"{{{{ }}}}\"; put a jq filter such as .data.host inside");
            }
            let jq = Jq::compile(code).map_err(|e| anyhow!("template {source:?}: {e}"))?;
            pieces.push(Piece::Hole(jq));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template {
            source: source.to_string(),
            pieces,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the template has no holes.
    pub fn is_constant(&self) -> bool {
        self.pieces.iter().all(|p| matches!(p, Piece::Text(_)))
    }

    /// Fills the holes from `event`.
    pub fn render(&self, event: &Val) -> Result<String, EvalError> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Hole(jq) => {
                    if let Some(v) = jq.first(event)? {
                        out.push_str(&value_text(&v));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The `}}` that closes a hole, skipping any inside a jq string literal.
fn find_close(code: &str) -> Option<usize> {
    let bytes = code.as_bytes();
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'}' if !in_string && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jq::parse_json;

    fn ev(s: &str) -> Val {
        parse_json(s.as_bytes()).unwrap()
    }

    #[test]
    fn conditions_follow_jq_truthiness() {
        let e = ev(r#"{"data":{"free":5,"host":"a","tags":["x","y"]}}"#);
        assert!(Jq::compile(".data.free < 10").unwrap().matches(&e).unwrap());
        assert!(!Jq::compile(".data.free > 10").unwrap().matches(&e).unwrap());
        assert!(!Jq::compile(".data.missing").unwrap().matches(&e).unwrap());
        assert!(
            Jq::compile(".data.host == \"a\" and (.data.tags | index(\"y\"))")
                .unwrap()
                .matches(&e)
                .unwrap()
        );
        // Any truthy output matches, as select() would.
        assert!(Jq::compile(".data.tags[] == \"y\"")
            .unwrap()
            .matches(&e)
            .unwrap());
        assert!(!Jq::compile("empty").unwrap().matches(&e).unwrap());
    }

    #[test]
    fn runtime_errors_are_reported() {
        let e = ev(r#"{"data":{"host":"a"}}"#);
        let err = Jq::compile(".data.host - 1")
            .unwrap()
            .matches(&e)
            .unwrap_err();
        assert!(err.0.contains(".data.host - 1"), "{err}");
    }

    #[test]
    fn bad_filters_are_refused_with_a_reason() {
        let err = Jq::compile(".data.x <").unwrap_err().to_string();
        assert!(err.contains("does not parse"), "{err}");
        let err = Jq::compile("nosuchfn(1)").unwrap_err().to_string();
        assert!(err.contains("undefined filter nosuchfn"), "{err}");
    }

    #[test]
    fn the_environment_and_process_are_out_of_reach() {
        let e = ev("{}");
        assert!(Jq::compile("$ENV.HOME").is_err());
        for code in [
            "env.HOME",
            "halt",
            "input",
            "\"x\" | halt_error",
            "debug",
            "stderr",
            "halt_error(1)",
        ] {
            let jq = Jq::compile(code).unwrap();
            let err = jq.matches(&e).unwrap_err();
            assert!(err.0.contains("not available"), "{code}: {err}");
        }
    }

    #[test]
    fn templates_fill_holes() {
        let e = ev(r#"{"data":{"host":"db-1","free":4.5,"n":null,"o":{"a":1}}}"#);
        let t =
            Template::parse("Disk on {{.data.host}} at {{ .data.free }}%{{.data.n}}{{.data.o}}")
                .unwrap();
        assert_eq!(t.render(&e).unwrap(), r#"Disk on db-1 at 4.5%{"a":1}"#);
        let t = Template::parse("{{ \"}}\" }} and {{.data.host | ascii_upcase}}").unwrap();
        assert_eq!(t.render(&e).unwrap(), "}} and DB-1");
        assert!(Template::parse("plain").unwrap().is_constant());
        assert!(Template::parse("oops {{ .data.host").is_err());
        assert!(Template::parse("oops {{ }}").is_err());
    }
}
