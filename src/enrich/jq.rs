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

use anyhow::{bail, Result};
use jaq_core::data::JustLut;
use jaq_core::load::{self, Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars};
use jaq_json::{Num, Val};

use super::{error_kind, raw, Event, Flow, Step};
use crate::event::FailureMessage;

type Data = JustLut<Val>;

/// A compiled jq step.
pub struct Jq {
    filter: jaq_core::Filter<Data>,
    /// The program and where it was given, to compile it again for
    /// another worker thread.
    program: (String, String),
    out: Vec<u8>,
}

/// Line and column (1-based, in characters) of byte `offset` in `code`.
fn line_col(code: &str, offset: usize) -> (usize, usize) {
    let before = &code[..offset.min(code.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

fn offset_in(code: &str, part: &str) -> usize {
    (part.as_ptr() as usize)
        .saturating_sub(code.as_ptr() as usize)
        .min(code.len())
}

impl Jq {
    /// Compiles `expr`; `origin` says where it was given, for messages
    /// (`--jq #2`, or `enrich.json line 7`).
    pub fn compile(expr: &str, origin: &str) -> Result<Self> {
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let at = |part: &str| {
            let (line, col) = line_col(expr, offset_in(expr, part));
            if expr.contains('\n') {
                format!("line {line}, column {col}")
            } else {
                format!("column {col}")
            }
        };
        let modules = match loader.load(
            &arena,
            File {
                code: expr,
                path: (),
            },
        ) {
            Ok(m) => m,
            Err(errors) => {
                let mut messages = Vec::new();
                for (_file, e) in errors {
                    match e {
                        load::Error::Io(list) => {
                            for (path, msg) in list {
                                messages.push(format!("cannot load module {path:?}: {msg}"));
                            }
                        }
                        load::Error::Lex(list) => {
                            for (expect, part) in list {
                                messages.push(format!(
                                    "expected {} at {}",
                                    expect.as_str(),
                                    at(part)
                                ));
                            }
                        }
                        load::Error::Parse(list) => {
                            for (expect, part) in list {
                                let found = if part.is_empty() {
                                    "the end of the program".to_string()
                                } else {
                                    format!("{:?}", part.chars().take(20).collect::<String>())
                                };
                                messages.push(format!(
                                    "expected {} at {}, found {found}",
                                    expect.as_str(),
                                    at(part)
                                ));
                            }
                        }
                    }
                }
                bail!("{origin}: jq syntax error: {}", messages.join("; "));
            }
        };
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errors| {
                let messages: Vec<String> = errors
                    .into_iter()
                    .flat_map(|(_file, list)| list)
                    .map(|(name, undefined)| {
                        format!("undefined {} {name:?} at {}", undefined.as_str(), at(name))
                    })
                    .collect();
                anyhow::anyhow!("{origin}: jq error: {}", messages.join("; "))
            })?;
        Ok(Jq {
            filter,
            program: (expr.to_string(), origin.to_string()),
            out: Vec::with_capacity(4096),
        })
    }

    /// Runs the program on one JSON object: the values it yields, or the
    /// error that stopped it (as in jq, an uncaught error ends the run).
    pub fn run(&self, input: Val) -> (Vec<Val>, Vec<String>) {
        let ctx = Ctx::<Data>::new(&self.filter.lut, Vars::new([]));
        let mut values = Vec::with_capacity(1);
        let mut errors = Vec::new();
        for result in self.filter.id.run((ctx, input)) {
            match result {
                Ok(v) => values.push(v),
                Err(exn) => errors.push(match exn.get_err() {
                    Ok(e) => e.to_string(),
                    Err(other) => match other.get_halt() {
                        Ok(code) => format!("the program halted with code {code}"),
                        Err(_) => "the program stopped unexpectedly".to_string(),
                    },
                }),
            }
            if values.len() > 1 || !errors.is_empty() {
                break;
            }
        }
        (values, errors)
    }
}

/// Writes `v` as compact JSON; values JSON cannot hold (byte strings, NaN,
/// infinities, keys that are not strings) are an error.
pub fn write_json(out: &mut Vec<u8>, v: &Val) -> Result<(), String> {
    match v {
        Val::Null => out.extend_from_slice(b"null"),
        Val::Bool(true) => out.extend_from_slice(b"true"),
        Val::Bool(false) => out.extend_from_slice(b"false"),
        Val::Num(n) => match n {
            Num::Float(f) if !f.is_finite() => return Err(format!("{f} is not a JSON number")),
            Num::Float(f) => {
                serde_json::to_writer(&mut *out, f).map_err(|e| e.to_string())?;
            }
            Num::Int(i) => {
                let mut b = itoa_buf(*i as i64);
                out.append(&mut b);
            }
            other => {
                use std::io::Write;
                let _ = write!(out, "{other}");
            }
        },
        Val::TStr(s) => match std::str::from_utf8(s) {
            Ok(s) => raw::push_str(out, s),
            Err(_) => raw::push_str(out, &String::from_utf8_lossy(s)),
        },
        Val::BStr(_) => return Err("a byte string is not JSON; convert it with tostring".into()),
        Val::Arr(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, item)?;
            }
            out.push(b']');
        }
        Val::Obj(map) => {
            out.push(b'{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match k {
                    Val::TStr(_) => write_json(out, k)?,
                    _ => return Err("an object key that is not a string is not JSON".into()),
                }
                out.push(b':');
                write_json(out, item)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn itoa_buf(i: i64) -> Vec<u8> {
    i.to_string().into_bytes()
}

fn kind_of(v: &Val) -> &'static str {
    match v {
        Val::Null => "null",
        Val::Bool(_) => "boolean",
        Val::Num(_) => "number",
        Val::TStr(_) | Val::BStr(_) => "string",
        Val::Arr(_) => "array",
        Val::Obj(_) => "object",
    }
}

impl Step for Jq {
    fn name(&self) -> &'static str {
        "jq"
    }

    /// A compiled program is not shared between threads (jaq values are
    /// reference-counted without atomics), so each copy compiles its own.
    fn fork(&self) -> Result<Box<dyn Step>> {
        Ok(Box::new(Jq::compile(&self.program.0, &self.program.1)?))
    }

    fn apply(&mut self, ev: &mut Event, _original: &[u8]) -> Result<Flow, Vec<FailureMessage>> {
        let bytes = ev.for_jq().map_err(|e| vec![e])?;
        let input = jaq_json::read::parse_single(bytes).map_err(|e| {
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
            json!({"schema": "s", "data": {"price": 2.5, "qty": 4, "total": 10.0, "tag": "x"}})
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
