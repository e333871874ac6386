//! `--jq EXPR`: a transform in the jq language, run by the jaq crates
//! (jaq-core, jaq-std, jaq-json). The program is compiled once; a syntax
//! error or an undefined name is a setup error that names where the program
//! was given and the line and column in it.
//!
//! The program gets the event (with the derived contexts of the steps before
//! it) and must yield one object, which replaces the event. Yielding nothing
//! leaves the event out (as `select(…)` does), so a jq step can also filter.
//! An error, more than one value, or a value that is not an object fails
//! that event only, with every error the program raised.

use std::sync::Arc;

use anyhow::{anyhow, Result};
use jaq_json::Val;

use super::{error_kind, Event, Flow, Step};
use crate::event::FailureMessage;
use crate::jq::{kind_of, parse_json, write_json, CompileError, Program};

/// A compiled jq step.
pub struct Jq {
    /// Compiled once and shared by every worker thread's copy of the step.
    program: Arc<Program>,
    out: Vec<u8>,
}

impl Jq {
    /// Compiles `expr`; `origin` says where it was given, for messages
    /// (`--jq #2`, or `enrich.json line 7`).
    pub fn compile(expr: &str, origin: &str) -> Result<Self> {
        let program = Program::compile(expr, None).map_err(|e| match e {
            CompileError::Syntax(_) => anyhow!("{origin}: jq syntax error: {e}"),
            CompileError::Undefined(_) => anyhow!("{origin}: jq error: {e}"),
        })?;
        Ok(Jq {
            program: Arc::new(program),
            out: Vec::with_capacity(4096),
        })
    }

    /// Runs the program on one JSON object: the values it yields (up to
    /// two: one too many is enough to refuse), or the error that stopped it.
    pub fn run(&self, input: Val) -> (Vec<Val>, Vec<String>) {
        let mut values = Vec::with_capacity(1);
        let mut errors = Vec::new();
        self.program.run(input, |result| {
            match result {
                Ok(v) => values.push(v),
                Err(e) => errors.push(e),
            }
            values.len() < 2
        });
        (values, errors)
    }
}

impl Step for Jq {
    fn name(&self) -> &'static str {
        "jq"
    }

    fn fork(&self) -> Result<Box<dyn Step>> {
        Ok(Box::new(Jq {
            program: Arc::clone(&self.program),
            out: Vec::with_capacity(4096),
        }))
    }

    fn apply(&mut self, ev: &mut Event, _original: &[u8]) -> Result<Flow, Vec<FailureMessage>> {
        let bytes = ev.for_jq().map_err(|e| vec![e])?;
        let input = parse_json(bytes).map_err(|e| {
            vec![FailureMessage::new(
                error_kind::JQ_ERROR,
                format!("jq cannot read the event: {e}"),
            )]
        })?;
        let (mut values, errors) = self.run(input);
        if !errors.is_empty() {
            return Err(errors
                .into_iter()
                .map(|e| FailureMessage::new(error_kind::JQ_ERROR, e))
                .collect());
        }
        let value = match values.len() {
            0 => return Ok(Flow::Drop),
            1 => values.pop().expect("one value"),
            _ => {
                return Err(vec![FailureMessage::new(
                    error_kind::JQ_OUTPUT,
                    "the jq program yields more than one value; a step must yield one event (or none, to leave it out)",
                )])
            }
        };
        if !matches!(value, Val::Obj(_)) {
            return Err(vec![FailureMessage::new(
                error_kind::JQ_OUTPUT,
                format!("the jq program yields a {}, not an object", kind_of(&value)),
            )]);
        }
        self.out.clear();
        write_json(&mut self.out, &value).map_err(|e| {
            vec![FailureMessage::new(
                error_kind::JQ_OUTPUT,
                format!("the jq program's result is not JSON: {e}"),
            )]
        })?;
        ev.set_trusted(&self.out);
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::testing::run;
    use serde_json::json;

    fn jq(expr: &str) -> Box<Jq> {
        Box::new(Jq::compile(expr, "--jq #1").unwrap())
    }

    #[test]
    fn transforms_events() {
        let out = run(
            jq(r#".data.total = .data.price * .data.qty | .data.tag = "x""#),
            None,
            r#"{"schema":"s","data":{"price":2.5,"qty":4}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            out,
            json!({"schema": "s", "data": {"price": 2.5, "qty": 4, "total": 10, "tag": "x"}})
        );
    }

    #[test]
    fn keeps_big_and_decimal_numbers() {
        let mut p = crate::enrich::Pipeline::from_steps(vec![jq(".data.x = 1")], None);
        match p.process(br#"{"data":{"big":123456789012345678901234567890,"d":1.10,"e":-0.5e-3}}"#)
        {
            crate::enrich::Outcome::Enriched(b) => assert_eq!(
                std::str::from_utf8(b).unwrap(),
                r#"{"data":{"big":123456789012345678901234567890,"d":1.10,"e":-0.5e-3,"x":1}}"#
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn select_drops_and_errors_fail_one_event() {
        let step = || jq(r#"select(.data.keep) | .data.n = (.data.v | tonumber)"#);
        assert_eq!(
            run(step(), None, r#"{"data":{"keep":false}}"#).unwrap(),
            None
        );
        let out = run(step(), None, r#"{"data":{"keep":true,"v":"12"}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(out["data"]["n"], 12);
        let err = run(step(), None, r#"{"data":{"keep":true,"v":"twelve"}}"#).unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].kind, error_kind::JQ_ERROR);
        assert_eq!(err[0].detail["step"], "jq");
    }

    #[test]
    fn the_first_error_ends_the_run_as_in_jq() {
        let err = run(
            jq(r#".data.a[] | if . > 1 then error("bad \(.)") else . end"#),
            None,
            r#"{"data":{"a":[1,2,3]}}"#,
        )
        .unwrap_err();
        let messages: Vec<&str> = err.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(messages[0].contains("bad 2"), "{messages:?}");
    }

    #[test]
    fn output_must_be_one_object() {
        let err = run(jq(".data"), None, r#"{"data":1}"#).unwrap_err();
        assert!(err[0].message.contains("number, not an object"));
        let err = run(jq(".,."), None, r#"{"data":1}"#).unwrap_err();
        assert!(err[0].message.contains("more than one value"));
        let err = run(jq(".x = nan"), None, r#"{"data":1}"#).unwrap_err();
        assert_eq!(err[0].kind, error_kind::JQ_OUTPUT);
        let err = run(jq("halt"), None, r#"{"data":1}"#).unwrap_err();
        assert!(err[0].message.contains("halted"));
    }

    #[test]
    fn sees_contexts_of_earlier_steps() {
        // derived_contexts is spliced in before jq reads the event.
        let out = run(
            jq(".n = (.derived_contexts | length)"),
            None,
            r#"{"derived_contexts":[{"schema":"a","data":1}]}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(out["n"], 1);
    }

    #[test]
    fn syntax_errors_say_where() {
        let e = Jq::compile(".data | map(", "--jq #2")
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("--jq #2: jq syntax error"), "{e}");
        let e = Jq::compile(".a |\n  nosuchfn(1)", "enrich.json line 4")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("undefined filter \"nosuchfn\" at line 2, column 3"),
            "{e}"
        );
        let e = Jq::compile(".a | $x", "--jq #1").err().unwrap().to_string();
        assert!(e.contains("undefined variable"), "{e}");
    }
}
