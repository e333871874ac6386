//! jq programs, run by the jaq crates (jaq-core, jaq-std, jaq-json), for
//! enrich's `--jq` steps and alert's conditions and templates: compiling
//! with messages that say where a program goes wrong, running a program on
//! one value, and reading and writing jaq values as JSON.
//!
//! Where jaq differs from jq in ways users meet, this module brings it back
//! to jq (the README's jq section lists what stays different): `@csv`,
//! `@tsv`, `@base32`, `@base32d`, `tostream`, `fromstream`,
//! `truncate_stream` and `$__loc__` are added; `join`, `del`, `delpaths`
//! and `implode` behave as jq's; regular expressions match Unicode classes
//! (`\w` matches `É`), as jq's Oniguruma does; computed numbers print as jq
//! prints them (`25`, not `25.0`), and `-0` stays `-0`. Input is read by the
//! rule every tool applies ([`crate::json`]): nothing deeper than
//! [`crate::json::MAX_DEPTH`] reaches jaq, whose reader and values recurse.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use jaq_core::data::JustLut;
use jaq_core::load::{self, Arena, File, Loader};
use jaq_core::native::{bome, run, v, Fun};
use jaq_core::{Bind, Compiler, Ctx, Cv, Error, ValR, Vars};
use jaq_json::{Map, Num, Rc, Val};
use jaq_std::ValT as _;

type Data = JustLut<Val>;

/// jaq natives this module replaces, and the names they keep for its own
/// definitions.
const RENAMED: &[(&str, &str)] = &[
    ("implode", "__jaq_implode"),
    ("matches", "__jaq_matches"),
    ("split_matches", "__jaq_split_matches"),
    ("split_", "__jaq_split_"),
];

/// Definitions that make jaq behave as jq where users compare the two;
/// loaded after jaq's own, so they take their place.
const JQ_DEFS: &str = r#"
def join($x): reduce .[] as $i (null;
  (if . == null then "" else . + $x end)
  + ($i | if . == null then "" elif isnumber then __unilog_number else if isboolean then tojson else . end end)) // "";
def __unilog_cell($what): if . == null then ""
  elif isnumber then __unilog_number
  elif isboolean then tojson
  elif isstring then .
  else error("\(type) (\(tojson)) is not valid in a \($what) row") end;
def @csv: if isarray | not then error("\(type) (\(tojson)) cannot be csv-formatted, only an array can be") end
  | map(if isstring then "\"" + (split("\"") | join("\"\"")) + "\"" else __unilog_cell("csv") end) | join(",");
def @tsv: if isarray | not then error("\(type) (\(tojson)) cannot be tsv-formatted, only an array can be") end
  | map(__unilog_cell("tsv") | if isstring then split("\\") | join("\\\\") | split("\t") | join("\\t") | split("\n") | join("\\n") | split("\r") | join("\\r") end) | join("\t");
def @base32: tostring | __unilog_base32;
def @base32d: tostring | __unilog_base32d;
def tostream: path(def r: (.[]? | r), .; r) as $p | getpath($p) | reduce path(.[]?) as $q ([$p, .]; [$p + $q]);
def __unilog_setpath($p; $v):
  if ($p | length) == 0 then $v
  else $p[0] as $k
    | (if . == null then (if ($k | isnumber) then [] else {} end) else . end)
    | if ($k | isnumber) and $k >= length
      then . + [range(length; $k) | null] + [null | __unilog_setpath($p[1:]; $v)]
      else .[$k] |= __unilog_setpath($p[1:]; $v) end
  end;
def fromstream(f): {x: null, e: false} as $init
  | foreach f as $i ($init;
      if .e then $init else . end
      | if $i | length == 2
        then setpath(["e"]; $i[0] | length == 0) | .x |= __unilog_setpath($i[0]; $i[1])
        else setpath(["e"]; $i[0] | length == 1) end;
      if .e then .x else empty end);
def truncate_stream(stream): . as $n | null | stream | . as $input
  | if (.[0] | length) > $n then setpath([0]; .[0][$n:]) else empty end;
def __unilog_has_path($p): reduce $p[] as $k ([true, .];
  if .[0] and (
    (.[1] | isobject) and ($k | isstring) and (.[1] | has($k))
    or (.[1] | isarray) and ($k | isnumber) and $k < (.[1] | length) and $k >= -(.[1] | length)
    or (.[1] | isarray) and ($k | isobject))
  then [true, .[1][$k]] else [false, null] end) | .[0];
def delpaths($ps): reduce ($ps | unique | reverse)[] as $p (.;
  if ($p | length) == 0 then null
  elif __unilog_has_path($p) then getpath($p) |= empty
  else . end);
def del(f): delpaths([path(f)]);
def implode: if isarray | not then error("implode input must be an array") end
  | map(if isnumber | not then error("implode input must be an array of code points")
        elif . < 0 or . > 1114111 or (. >= 55296 and . <= 57343) then 65533 else . end)
  | __jaq_implode;
"#;

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

/// The natives that reach outside the event: the environment (`env`), more
/// input (`input`, `inputs`, `input_filename`), the process's end (`halt`,
/// `halt_error`) and stderr (`debug`, `stderr`).
const OUTSIDE_THE_EVENT: &[&str] = &[
    "env",
    "halt",
    "halt_error",
    "input",
    "inputs",
    "debug",
    "stderr",
    "debug_empty",
    "stderr_empty",
    "input_filename",
];

/// The stand-ins [`Sandbox::event_only`] defines, as (jq definition head,
/// the name its error gives): the standard `stderr`, `debug`, `halt` and
/// `halt_error` are built on these, so they compile and fail when used.
const OUTSIDE_THE_EVENT_STAND_INS: &[(&str, &str)] = &[
    ("env", "env"),
    ("halt($c)", "halt"),
    ("stderr_empty", "stderr"),
    ("debug_empty", "debug"),
    ("input", "input"),
    ("inputs", "inputs"),
];

impl Sandbox {
    /// A sandbox in which a program sees only the event: nothing of the
    /// environment, no further input, no stderr, no ending the process, so
    /// that a rule or an aggregate can neither leak a credential nor disturb
    /// the tool. `context` ends the errors the stand-ins give ("env is not
    /// available in alert rules").
    ///
    /// The definitions live as long as the compiled standard library they
    /// join (`'static`): a tool makes its sandbox once, in a static, so the
    /// text leaked here is one small string per tool.
    pub fn event_only(context: &str) -> Sandbox {
        let stand_ins: String = OUTSIDE_THE_EVENT_STAND_INS
            .iter()
            .map(|(head, name)| {
                format!("def {head}: error(\"{name} is not available in {context}\");\n")
            })
            .collect();
        Sandbox {
            denied: OUTSIDE_THE_EVENT,
            stand_ins: Box::leak(stand_ins.into_boxed_str()),
        }
    }
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
        let jq_defs = load::parse(JQ_DEFS, |p| p.defs()).expect("the jq definitions parse");
        let defs = jaq_core::defs()
            .chain(stand_ins.into_iter().flatten())
            .chain(jaq_std::defs())
            .chain(jaq_json::defs())
            .chain(jq_defs);
        let denied = sandbox.map_or(&[][..], |s| s.denied);
        let funs = jaq_core::funs::<Data>()
            .chain(jaq_std::funs::<Data>())
            .chain(jaq_json::funs::<Data>())
            .map(|(name, args, f)| {
                let name = if denied.contains(&name) {
                    "__unilog_denied"
                } else {
                    RENAMED
                        .iter()
                        .find(|(old, _)| *old == name)
                        .map_or(name, |(_, new)| new)
                };
                (name, args, f)
            })
            .chain(natives());
        let code = &*with_locations(code);
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

/// Parses one JSON text into a jaq value, after checking it against the
/// rule every tool applies ([`crate::json::check_value`]). `-0` stays a
/// negative zero and other non-integers keep their text, as jq 1.7 keeps
/// number literals.
pub fn parse_json(bytes: &[u8]) -> Result<Val, String> {
    crate::json::check_value(bytes).map_err(|e| e.to_string())?;
    let mut i = 0;
    Ok(build(bytes, &mut i))
}

/// Builds the value at `*i` of checked JSON, leaving `*i` past it. The
/// recursion is bounded by the rule's depth limit.
fn build(b: &[u8], i: &mut usize) -> Val {
    use crate::json::skip_ws;
    *i = skip_ws(b, *i);
    match b[*i] {
        b'{' => {
            *i += 1;
            let mut map = Map::default();
            loop {
                *i = skip_ws(b, *i);
                match b[*i] {
                    b'}' => break,
                    b',' => *i += 1,
                    _ => {
                        let key = build(b, i);
                        *i = skip_ws(b, *i) + 1;
                        let value = build(b, i);
                        map.insert(key, value);
                    }
                }
            }
            *i += 1;
            Val::obj(map)
        }
        b'[' => {
            *i += 1;
            let mut items = Vec::new();
            loop {
                *i = skip_ws(b, *i);
                match b[*i] {
                    b']' => break,
                    b',' => *i += 1,
                    _ => items.push(build(b, i)),
                }
            }
            *i += 1;
            Val::Arr(Rc::new(items))
        }
        b'"' => {
            let start = *i;
            *i = crate::json::skip_string(b, start);
            let raw = &b[start + 1..*i - 1];
            if memchr::memchr(b'\\', raw).is_none() {
                Val::utf8_str(raw.to_vec())
            } else {
                Val::utf8_str(
                    serde_json::from_slice::<String>(&b[start..*i])
                        .unwrap_or_default()
                        .into_bytes(),
                )
            }
        }
        b't' => {
            *i += 4;
            Val::Bool(true)
        }
        b'f' => {
            *i += 5;
            Val::Bool(false)
        }
        b'n' => {
            *i += 4;
            Val::Null
        }
        _ => {
            let start = *i;
            let mut integer = true;
            while *i < b.len() && matches!(b[*i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                integer &= !matches!(b[*i], b'.' | b'e' | b'E');
                *i += 1;
            }
            // ASCII digits and signs only.
            let text = std::str::from_utf8(&b[start..*i]).unwrap_or("0");
            Val::Num(match text {
                "-0" => Num::Float(-0.0),
                _ if integer => Num::from_str_radix(text, 10).unwrap_or(Num::Float(f64::NAN)),
                _ => Num::Dec(Rc::new(text.to_string())),
            })
        }
    }
}

/// Writes a computed number as jq does: the shortest digits that read
/// back the same, as an integer when it is one (`25`, not `25.0`), in
/// exponent form (`1e+17`, `1e-05`) when the point is more than 15 places
/// past the digits or 4 before them; `-0` keeps its sign.
pub fn push_float(out: &mut Vec<u8>, f: f64) {
    if f.is_sign_negative() {
        out.push(b'-');
    }
    let f = f.abs();
    if f == 0.0 {
        out.push(b'0');
        return;
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} writes an integer exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let n = digits.len() as i32;
    let point = exp + 1;
    let text = if point <= -4 || point > n + 15 {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{first}{dot}{rest}e{sign}{:02}", exp.abs())
    } else if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point >= n {
        format!("{digits}{}", "0".repeat((point - n) as usize))
    } else {
        let (whole, frac) = digits.split_at(point as usize);
        format!("{whole}.{frac}")
    };
    out.extend_from_slice(text.as_bytes());
}

/// The text of a number as jq writes it.
fn number_text(n: &Num) -> String {
    let mut out = Vec::new();
    match n {
        Num::Float(f) if f.is_finite() => push_float(&mut out, *f),
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
    String::from_utf8(out).expect("numbers are ASCII")
}

/// This module's natives: jq's number text, base32, and regular
/// expressions with Unicode classes.
fn natives() -> impl Iterator<Item = Fun<Data>> {
    let vv = || [Bind::Var(()), Bind::Var(())].into();
    let list: [jaq_core::native::Filter<jaq_core::RunPtr<Data>>; 6] = [
        ("__unilog_number", v(0), |cv| {
            bome(match &cv.1 {
                Val::Num(n) => Ok(Val::utf8_str(number_text(n).into_bytes())),
                other => Err(Error::str(format!("{} is not a number", kind_of(other)))),
            })
        }),
        ("__unilog_base32", v(0), |cv| {
            bome(
                cv.1.try_as_bytes()
                    .map(|b| Val::utf8_str(base32_encode(b).into_bytes())),
            )
        }),
        ("__unilog_base32d", v(0), |cv| {
            bome(cv.1.try_as_bytes().and_then(|b| {
                base32_decode(b).map(Val::utf8_str).ok_or_else(|| {
                    Error::str(format!(
                        "{} is not valid base32 data",
                        String::from_utf8_lossy(b)
                    ))
                })
            }))
        }),
        ("matches", vv(), |cv| bome(regex(false, true, cv))),
        ("split_matches", vv(), |cv| bome(regex(true, true, cv))),
        ("split_", vv(), |cv| bome(regex(true, false, cv))),
    ];
    #[allow(clippy::redundant_closure)] // a fn item is not general enough here
    list.into_iter().map(|f| run::<Data>(f))
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32, padded, as jq's `@base32`.
fn base32_encode(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len().div_ceil(5) * 8);
    for chunk in b.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let bits = buf.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64);
        let chars = (chunk.len() * 8).div_ceil(5);
        for k in 0..8 {
            if k < chars {
                out.push(BASE32[((bits >> (35 - 5 * k)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes RFC 4648 base32, padded or not.
fn base32_decode(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len() * 5 / 8);
    let (mut bits, mut n) = (0u64, 0u32);
    for &c in b.iter().take_while(|&&c| c != b'=') {
        let value = BASE32.iter().position(|&x| x == c.to_ascii_uppercase())? as u64;
        bits = (bits << 5) | value;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    Some(out)
}

thread_local! {
    /// Compiled regular expressions by pattern and flags: a program applies
    /// the same few to every event.
    static REGEXES: RefCell<HashMap<(String, String), regex::bytes::Regex>> = RefCell::new(HashMap::new());
}

/// jq's `matches`, `split_matches` and `split_` (under jaq's definitions
/// of `test`, `match`, `capture`, `sub`, `gsub`, `split`, `scan`), by the
/// `regex` crate with Unicode classes, where jaq's own are ASCII-only.
/// `split` gives the text between matches, `matched` the matches.
fn regex(split: bool, matched: bool, mut cv: Cv<'_, Data>) -> ValR<Val> {
    let flags = cv.0.pop_var();
    let re = cv.0.pop_var();
    let text = |v: &Val| {
        v.try_as_utf8_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let flags = text(&flags)?;
    let pattern = text(&re)?;
    let (mut global, mut ignore_empty) = (false, false);
    let mut builder = regex::bytes::RegexBuilder::new(&pattern);
    for flag in flags.chars() {
        match flag {
            'g' => global = true,
            'n' => ignore_empty = true,
            'i' => drop(builder.case_insensitive(true)),
            'm' => drop(builder.multi_line(true)),
            's' => drop(builder.dot_matches_new_line(true)),
            'p' => drop(builder.multi_line(true).dot_matches_new_line(true)),
            'l' => drop(builder.swap_greed(true)),
            'x' => drop(builder.ignore_whitespace(true)),
            c => return Err(Error::str(format!("invalid regex flag: {c}"))),
        }
    }
    let s = cv.1.try_as_utf8_bytes()?;
    let key = (pattern, flags);
    let compiled = REGEXES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(r) = cache.get(&key) {
            return Ok(r.clone());
        }
        let r = builder
            .build()
            .map_err(|e| Error::str(format!("invalid regex: {e}")))?;
        if cache.len() >= 256 {
            cache.clear();
        }
        cache.insert(key, r.clone());
        Ok::<_, Error<Val>>(r)
    })?;
    // Character offsets, as jq gives them: counted as the matches advance.
    let (mut chars, mut at_byte) = (0usize, 0usize);
    let mut char_of = |byte: usize| {
        chars += String::from_utf8_lossy(&s[at_byte..byte]).chars().count();
        at_byte = byte;
        chars
    };
    let sub = |b: &[u8]| cv.1.as_sub_str(b);
    let mut out = Vec::new();
    let mut last = 0;
    for caps in compiled.captures_iter(s) {
        let whole = caps.get(0).expect("group 0 is the match");
        if ignore_empty && whole.is_empty() {
            continue;
        }
        if split {
            out.push(sub(&s[last..whole.start()]));
            last = whole.end();
        }
        if matched {
            let mut groups = Vec::new();
            for (m, name) in caps.iter().zip(compiled.capture_names()) {
                let Some(m) = m else { continue };
                let offset = char_of(m.start());
                let length = String::from_utf8_lossy(m.as_bytes()).chars().count();
                let mut fields = vec![
                    (Val::from("offset".to_string()), Val::from(offset as isize)),
                    (Val::from("length".to_string()), Val::from(length as isize)),
                    (Val::from("string".to_string()), sub(m.as_bytes())),
                ];
                if let Some(n) = name {
                    fields.push((Val::from("name".to_string()), Val::from(n.to_string())));
                }
                groups.push(Val::obj(fields.into_iter().collect()));
            }
            out.push(Val::Arr(Rc::new(groups)));
        }
        if !global {
            break;
        }
    }
    if split {
        out.push(sub(&s[last..]));
    }
    Ok(Val::Arr(Rc::new(out)))
}

/// `code` with each `$__loc__` outside string literals replaced by jq's
/// value for it, `{"file":"<top-level>","line":N}` (jaq has no such
/// variable).
fn with_locations(code: &str) -> std::borrow::Cow<'_, str> {
    const LOC: &str = "$__loc__";
    if !code.contains(LOC) {
        return code.into();
    }
    let b = code.as_bytes();
    let mut out = String::with_capacity(code.len() + 32);
    // Interpolation depths: inside a string, `\(` opens code that its
    // matching `)` closes.
    let mut in_string = false;
    let mut parens: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut line = 1;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if in_string {
            if c == b'\\' && b.get(i + 1) == Some(&b'(') {
                parens.push(depth);
                depth += 1;
                in_string = false;
                out.push_str("\\(");
                i += 2;
                continue;
            }
            if c == b'\\' {
                out.push('\\');
                i += 1;
                if let Some(next) = code[i..].chars().next() {
                    out.push(next);
                    i += next.len_utf8();
                }
                continue;
            }
            if c == b'"' {
                in_string = false;
            }
        } else if c == b'#' {
            let end = code[i..].find('\n').map_or(b.len(), |k| i + k);
            out.push_str(&code[i..end]);
            i = end;
            continue;
        } else if c == b'"' {
            in_string = true;
        } else if c == b'(' {
            depth += 1;
        } else if c == b')' {
            depth = depth.saturating_sub(1);
            if parens.last() == Some(&depth) {
                parens.pop();
                in_string = true;
            }
        } else if code[i..].starts_with(LOC)
            && !code[i + LOC.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
        {
            out.push_str(&format!("({{\"file\":\"<top-level>\",\"line\":{line}}})"));
            i += LOC.len();
            continue;
        }
        if c == b'\n' {
            line += 1;
        }
        let len = code[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&code[i..i + len]);
        i += len;
    }
    out.into()
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
            Num::Float(f) => push_float(out, *f),
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
