//! jq programs, run by the jaq crates (jaq-core, jaq-std, jaq-json), for
//! enrich's `--jq` steps and alert's conditions and templates: compiling
//! with messages that say where a program goes wrong, running a program on
//! one value, and reading and writing jaq values as JSON.

use std::fmt;

use jaq_core::data::JustLut;
use jaq_core::load::{self, Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars};
use jaq_json::{Num, Val};

type Data = JustLut<Val>;

/// What a program may not reach: jq natives left out (renamed out of
/// reach), and jq definitions that stand in for them, so that the standard
/// definitions built on them still compile and fail only when used.
#[derive(Debug, Clone, Copy)]
pub struct Sandbox {
    /// Names of the natives left out.
    pub denied: &'static [&'static str],
    /// jq definitions (`def env: error("…");`) loaded before the standard ones.
    pub stand_ins: &'static str,
}

/// Why a program does not compile. Every problem found is listed, each
/// saying where it is in the program (`column 7`, or `line 2, column 3`
/// when the program has several lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompileError {
    /// The program does not parse.
    Syntax(Vec<String>),
    /// The program uses names nothing defines.
    Undefined(Vec<Undefined>),
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompileError::Syntax(messages) => f.write_str(&messages.join("; ")),
            CompileError::Undefined(names) => {
                for (i, name) in names.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{name}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for CompileError {}

/// A name a program uses that nothing defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undefined {
    /// `filter`, `variable`, `module` or `label`.
    pub kind: &'static str,
    /// The name as written (`$x` for a variable).
    pub name: String,
    /// Where it is in the program.
    pub at: String,
}

impl fmt::Display for Undefined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "undefined {} {:?} at {}", self.kind, self.name, self.at)
    }
}

/// A compiled jq program.
pub struct Program {
    filter: jaq_core::Filter<Data>,
}

impl Program {
    /// Compiles `code` with jq's standard library, less what `sandbox`
    /// leaves out.
    pub fn compile(code: &str, sandbox: Option<&Sandbox>) -> Result<Self, CompileError> {
        let stand_ins =
            sandbox.map(|s| load::parse(s.stand_ins, |p| p.defs()).expect("the stand-ins parse"));
        let defs = jaq_core::defs()
            .chain(stand_ins.into_iter().flatten())
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let denied = sandbox.map_or(&[][..], |s| s.denied);
        let funs = jaq_core::funs::<Data>()
            .chain(jaq_std::funs::<Data>())
            .chain(jaq_json::funs::<Data>())
            .map(|(name, args, f)| {
                let name = if denied.contains(&name) {
                    "__unilog_denied"
                } else {
                    name
                };
                (name, args, f)
            });
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let at = |part: &str| {
            let (line, col) = line_col(code, offset_in(code, part));
            if code.contains('\n') {
                format!("line {line}, column {col}")
            } else {
                format!("column {col}")
            }
        };
        let modules = loader
            .load(&arena, File { code, path: () })
            .map_err(|errors| {
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
                CompileError::Syntax(messages)
            })?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errors| {
                CompileError::Undefined(
                    errors
                        .into_iter()
                        .flat_map(|(_file, list)| list)
                        .map(|(name, undefined)| Undefined {
                            kind: undefined.as_str(),
                            name: name.to_string(),
                            at: at(name),
                        })
                        .collect(),
                )
            })?;
        Ok(Program { filter })
    }

    /// Runs the program on `input`, calling `each` with every output until
    /// it returns `false`. An error ends the run, as in jq: `each` gets its
    /// message last.
    pub fn run(&self, input: Val, mut each: impl FnMut(Result<Val, String>) -> bool) {
        let ctx = Ctx::<Data>::new(&self.filter.lut, Vars::new([]));
        for result in self.filter.id.run((ctx, input)) {
            let result = result.map_err(|exn| match exn.get_err() {
                Ok(e) => e.to_string(),
                Err(other) => match other.get_halt() {
                    Ok(code) => format!("the program halted with code {code}"),
                    Err(_) => "the program stopped unexpectedly".to_string(),
                },
            });
            let failed = result.is_err();
            if !each(result) || failed {
                break;
            }
        }
    }
}

/// Line and column (1-based, in characters) of byte `offset` in `code`.
fn line_col(code: &str, offset: usize) -> (usize, usize) {
    let before = &code[..offset.min(code.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

/// Where `part`, a slice of `code`, starts in it.
fn offset_in(code: &str, part: &str) -> usize {
    (part.as_ptr() as usize)
        .saturating_sub(code.as_ptr() as usize)
        .min(code.len())
}

/// Parses one JSON text into a jaq value.
pub fn parse_json(bytes: &[u8]) -> Result<Val, String> {
    jaq_json::read::parse_single(bytes).map_err(|e| e.to_string())
}

/// The JSON type of a value, for messages.
pub fn kind_of(v: &Val) -> &'static str {
    match v {
        Val::Null => "null",
        Val::Bool(_) => "boolean",
        Val::Num(_) => "number",
        Val::TStr(_) | Val::BStr(_) => "string",
        Val::Arr(_) => "array",
        Val::Obj(_) => "object",
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
            Num::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
            other => {
                use std::io::Write;
                let _ = write!(out, "{other}");
            }
        },
        // from_utf8 has an ASCII fast path that the lossy conversion lacks.
        Val::TStr(s) => match std::str::from_utf8(s) {
            Ok(text) => crate::json::push_str(out, text),
            Err(_) => crate::json::push_str(out, &String::from_utf8_lossy(s)),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs(code: &str, input: &str) -> Vec<Result<String, String>> {
        let program = Program::compile(code, None).unwrap();
        let mut out = Vec::new();
        program.run(parse_json(input.as_bytes()).unwrap(), |r| {
            out.push(r.map(|v| {
                let mut text = Vec::new();
                write_json(&mut text, &v).unwrap();
                String::from_utf8(text).unwrap()
            }));
            true
        });
        out
    }

    #[test]
    fn runs_programs_and_writes_json() {
        assert_eq!(
            outputs(r#".a[] | {k: ., s: "é\n"}"#, r#"{"a":[1,2.5,null]}"#),
            vec![
                Ok(r#"{"k":1,"s":"é\n"}"#.to_string()),
                Ok(r#"{"k":2.5,"s":"é\n"}"#.to_string()),
                Ok(r#"{"k":null,"s":"é\n"}"#.to_string()),
            ]
        );
        assert_eq!(
            outputs(r#"{"big":123456789012345678901234567890,"d":1.10}"#, "null"),
            vec![Ok(
                r#"{"big":123456789012345678901234567890,"d":1.10}"#.to_string()
            )]
        );
    }

    #[test]
    fn an_error_ends_the_run() {
        let out = outputs(
            r#".[] | if . > 1 then error("bad \(.)") else . end"#,
            "[1,2,3]",
        );
        assert_eq!(out, vec![Ok("1".into()), Err("\"bad 2\"".into())]);
        assert_eq!(
            outputs("halt", "1"),
            vec![Err("the program halted with code 0".into())]
        );
    }

    #[test]
    fn some_values_are_not_json() {
        let program = Program::compile("nan, ({} | .[\"x\"] = tobytes?)", None).unwrap();
        program.run(Val::Null, |v| {
            assert!(write_json(&mut Vec::new(), &v.unwrap()).is_err());
            true
        });
        assert_eq!(kind_of(&parse_json(b"[1]").unwrap()), "array");
    }

    #[test]
    fn compile_errors_say_where() {
        let Err(CompileError::Syntax(m)) = Program::compile(".a | map(", None) else {
            panic!("should not parse")
        };
        assert_eq!(m, ["expected closing parenthesis at column 10"]);
        let Err(e) = Program::compile("[1 2]", None) else {
            panic!("should not parse")
        };
        assert_eq!(e.to_string(), "expected ] at column 4, found \"2\"");
        let Err(e) = Program::compile("if 1 then 2", None) else {
            panic!("should not parse")
        };
        assert!(
            e.to_string().ends_with("found the end of the program"),
            "{e}"
        );
        let Err(e) = Program::compile(".a |\n  nosuchfn(1) | $x", None) else {
            panic!("should not compile")
        };
        assert_eq!(
            e.to_string(),
            "undefined filter \"nosuchfn\" at line 2, column 3; undefined variable \"$x\" at line 2, column 17"
        );
    }

    #[test]
    fn a_sandbox_leaves_natives_out() {
        const SANDBOX: Sandbox = Sandbox {
            denied: &["env"],
            stand_ins: r#"def env: error("no env here");"#,
        };
        let program = Program::compile("env.HOME", Some(&SANDBOX)).unwrap();
        let mut seen = Vec::new();
        program.run(Val::Null, |r| {
            seen.push(r.map(|_| ()));
            true
        });
        assert_eq!(seen, vec![Err("\"no env here\"".to_string())]);
        assert!(Program::compile("env.HOME", None).is_ok());
    }
}
