//! The aggregates: what each reads from an event (a path straight from the
//! raw JSON, or a jq expression), its optional `where` filter, the running
//! value it keeps per window, how that value is written into a result and
//! into the checkpoint, and how it is read back.
//!
//! An event is applied to every aggregate or to none: everything that can
//! fail (a missing number, a jq error) is read before any window changes.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::LazyLock;

use anyhow::{anyhow, Result};
use jaq_json::Val;
use serde_json::Value;

use super::spec::{Aggregate, Arg, Func};
use crate::event::FailureMessage;
use crate::jq::{self, CompileError, Program, Sandbox};
use crate::json;
use crate::path::Segment;

/// Where an event sits in time, for `first`, `last` and `collect`: its
/// event time, then its offset and sub-index in its source (or its line
/// number), so that ties break the same way on every run.
pub type Order = (i64, u64, u32);

/// The sandbox every jq expression of `window` runs in: the event only
/// (see [`Sandbox::event_only`]).
pub static SANDBOX: LazyLock<Sandbox> = LazyLock::new(|| Sandbox::event_only("window expressions"));

/// Compiles a jq expression for `what` (`--where`, `aggregate x`), with a
/// message that says which one failed.
pub fn compile(code: &str, what: &str) -> Result<Program> {
    Program::compile(code, Some(&*SANDBOX)).map_err(|e| match e {
        CompileError::Syntax(_) => anyhow!("{what}: jq {code:?} does not parse: {e}"),
        CompileError::Undefined(_) => anyhow!("{what}: jq {code:?} does not compile: {e}"),
    })
}

/// The first output of `program` on `input`: `Ok(None)` when it has none.
pub fn first_output(program: &Program, input: Val) -> Result<Option<Val>, String> {
    let mut out = None;
    program.run(input, |r| {
        out = Some(r);
        false
    });
    out.transpose()
}

/// jq's truth: everything but `false` and `null`.
pub fn truthy(v: &Val) -> bool {
    !matches!(v, Val::Null | Val::Bool(false))
}

/// Runs a filter: true when its first output is true.
pub fn passes(program: &Program, event: &Val) -> Result<bool, String> {
    Ok(first_output(program, event.clone())?.is_some_and(|v| truthy(&v)))
}

/// A number as JSON has it: an integer while every term is one and the sum fits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An integer.
    Int(i64),
    /// Anything else.
    Float(f64),
}

impl Number {
    /// Reads a JSON number's text.
    pub fn parse(raw: &[u8]) -> Option<Number> {
        let text = std::str::from_utf8(raw).ok()?;
        if let Ok(i) = text.parse::<i64>() {
            return Some(Number::Int(i));
        }
        let f: f64 = text.parse().ok()?;
        f.is_finite().then_some(Number::Float(f))
    }

    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }

    fn add(self, other: Number) -> Number {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => match a.checked_add(b) {
                Some(s) => Number::Int(s),
                None => Number::Float(a as f64 + b as f64),
            },
            (a, b) => Number::Float(a.as_f64() + b.as_f64()),
        }
    }

    fn write(self, out: &mut Vec<u8>) {
        match self {
            Number::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
            Number::Float(f) if f.is_finite() => {
                let _ = serde_json::to_writer(&mut *out, &f);
            }
            Number::Float(_) => out.extend_from_slice(b"null"),
        }
    }

    fn to_value(self) -> Value {
        let mut v = Vec::new();
        self.write(&mut v);
        serde_json::from_slice(&v).unwrap_or(Value::Null)
    }

    fn from_value(v: &Value) -> Option<Number> {
        Number::parse(v.to_string().as_bytes())
    }
}

/// A value `min` and `max` compare: numbers by value, then strings by
/// text, then anything else by its JSON text.
#[derive(Debug, Clone, PartialEq)]
pub enum Ordered {
    /// A number, with its text as written.
    Num(f64, Box<[u8]>),
    /// A string's contents.
    Str(Box<str>),
    /// An object, array or boolean, as JSON text.
    Other(Box<[u8]>),
}

impl Ordered {
    fn from_raw(raw: &[u8]) -> Ordered {
        match raw.first() {
            Some(b'"') => match serde_json::from_slice::<String>(raw) {
                Ok(s) => Ordered::Str(s.into()),
                Err(_) => Ordered::Other(raw.into()),
            },
            Some(b'-' | b'0'..=b'9') => match Number::parse(raw) {
                Some(n) => Ordered::Num(n.as_f64(), raw.into()),
                None => Ordered::Other(raw.into()),
            },
            _ => Ordered::Other(raw.into()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Ordered::Num(..) => 0,
            Ordered::Str(_) => 1,
            Ordered::Other(_) => 2,
        }
    }

    fn less(&self, other: &Ordered) -> bool {
        match (self, other) {
            (Ordered::Num(a, _), Ordered::Num(b, _)) => a < b,
            (Ordered::Str(a), Ordered::Str(b)) => a < b,
            (Ordered::Other(a), Ordered::Other(b)) => a < b,
            _ => self.rank() < other.rank(),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Ordered::Num(_, raw) | Ordered::Other(raw) => out.extend_from_slice(raw),
            Ordered::Str(s) => json::push_str(out, s),
        }
    }
}

/// What one aggregate took from one event.
#[derive(Debug, Clone)]
pub enum Input {
    /// Nothing: the filter said no, or the value is missing or null.
    Skip,
    /// The event counts.
    Count,
    /// A number, for `sum` and `avg`.
    Num(Number),
    /// A value to compare, for `min` and `max`.
    Ord(Ordered),
    /// A value as compact JSON text, for the others.
    Raw(Box<[u8]>),
    /// The event itself, for `reduce`.
    Event,
}

/// An aggregate ready to run.
pub struct Compiled {
    /// What the user asked for.
    pub spec: Aggregate,
    arg: CompiledArg,
    filter: Option<Program>,
    reduce: Option<(Program, Program)>,
}

enum CompiledArg {
    Event,
    Path(Vec<Segment>),
    Jq(Program),
}

/// The aggregates of a job, compiled.
pub struct Aggregates {
    /// One per `--agg`, in order.
    pub list: Vec<Compiled>,
    /// True when some aggregate needs the event as a jq value.
    pub needs_value: bool,
    /// The bound of each `collect`.
    pub collect_max: usize,
}

impl Aggregates {
    /// Compiles every aggregate's jq parts.
    pub fn compile(specs: &[Aggregate], collect_max: usize) -> Result<Aggregates> {
        let mut list = Vec::new();
        let mut needs_value = false;
        for spec in specs {
            let what = format!("aggregate {}", spec.name);
            let arg = match &spec.arg {
                Arg::Event => CompiledArg::Event,
                Arg::Path(p) => CompiledArg::Path(p.segments().to_vec()),
                Arg::Jq(code) => {
                    needs_value = true;
                    CompiledArg::Jq(compile(code, &what)?)
                }
            };
            let filter = match &spec.filter {
                Some(code) => {
                    needs_value = true;
                    Some(compile(code, &format!("{what}: where"))?)
                }
                None => None,
            };
            let reduce = match &spec.func {
                Func::Reduce { init, update } => {
                    needs_value = true;
                    let init = compile(init, &format!("{what}: reduce INIT"))?;
                    let update = compile(
                        &format!(". as [$acc, $event] | $acc | ({update})"),
                        &format!("{what}: reduce UPDATE"),
                    )?;
                    Some((init, update))
                }
                _ => None,
            };
            list.push(Compiled {
                spec: spec.clone(),
                arg,
                filter,
                reduce,
            });
        }
        Ok(Aggregates {
            list,
            needs_value,
            collect_max,
        })
    }

    /// Reads what each aggregate takes from an event: `line[top]` is the
    /// event object (already validated), `value` the same event as a jq
    /// value when [`Aggregates::needs_value`]; `found`, one per aggregate,
    /// the values of path arguments when the caller looked them up already
    /// (see [`Aggregates::paths`]). The error names the aggregate.
    pub fn extract(
        &self,
        line: &[u8],
        top: Range<usize>,
        value: Option<&Val>,
        found: Option<&[Option<Range<usize>>]>,
        out: &mut Vec<Input>,
    ) -> Result<(), FailureMessage> {
        out.clear();
        for (i, agg) in self.list.iter().enumerate() {
            let fail = |message: String| {
                FailureMessage::new(
                    "aggregate",
                    format!("aggregate {}: {message}", agg.spec.name),
                )
                .with("aggregate", agg.spec.name.as_str())
            };
            if let Some(filter) = &agg.filter {
                let event = value.expect("filters need the event's value");
                if !passes(filter, event).map_err(|e| fail(format!("where: {e}")))? {
                    out.push(Input::Skip);
                    continue;
                }
            }
            if agg.reduce.is_some() {
                out.push(Input::Event);
                continue;
            }
            // The value read, as raw JSON text (borrowed when from the line).
            let owned;
            let raw: Option<&[u8]> = match &agg.arg {
                CompiledArg::Event => Some(&line[top.clone()]),
                CompiledArg::Path(segments) => match found {
                    Some(found) => found[i].clone(),
                    None => json::find(line, top.clone(), segments),
                }
                .map(|r| &line[r]),
                CompiledArg::Jq(program) => {
                    let event = value.expect("jq arguments need the event's value");
                    match first_output(program, event.clone()).map_err(|e| fail(e))? {
                        None => None,
                        Some(v) => {
                            let mut text = Vec::new();
                            jq::write_json(&mut text, &v).map_err(|e| fail(e))?;
                            owned = text;
                            Some(&owned[..])
                        }
                    }
                }
            };
            let raw = match raw {
                None | Some(b"null") => {
                    out.push(Input::Skip);
                    continue;
                }
                Some(raw) => raw,
            };
            let input = match agg.spec.func {
                Func::Count => Input::Count,
                Func::Sum | Func::Avg => match Number::parse(raw) {
                    Some(n) => Input::Num(n),
                    None => {
                        return Err(fail(format!(
                            "{} is {}, not a number",
                            agg.spec.arg,
                            describe(raw)
                        )))
                    }
                },
                Func::Min | Func::Max => Input::Ord(Ordered::from_raw(raw)),
                Func::CountDistinct | Func::First | Func::Last | Func::Collect => {
                    Input::Raw(normalize(raw))
                }
                Func::Reduce { .. } => unreachable!("reduce is handled above"),
            };
            out.push(input);
        }
        Ok(())
    }

    /// The path argument of each aggregate (`None`: not a path), for
    /// callers that look them up with the job's other paths in one walk.
    pub fn paths(specs: &[Aggregate]) -> impl Iterator<Item = Option<&[Segment]>> {
        specs.iter().map(|a| match &a.arg {
            Arg::Path(p) => Some(p.segments()),
            _ => None,
        })
    }

    /// Fresh values for a new window.
    pub fn start(&self) -> Result<Vec<Acc>, String> {
        self.list
            .iter()
            .map(|agg| {
                Ok(match agg.spec.func {
                    Func::Count => Acc::Count(0),
                    Func::Sum => Acc::Sum(Number::Int(0)),
                    Func::Avg => Acc::Avg(Number::Int(0), 0),
                    Func::Min => Acc::Min(None),
                    Func::Max => Acc::Max(None),
                    Func::CountDistinct => Acc::Distinct(HashSet::new()),
                    Func::First => Acc::First(None),
                    Func::Last => Acc::Last(None),
                    Func::Collect => Acc::Collect(Vec::new(), 0),
                    Func::Reduce { .. } => {
                        let (init, _) = agg.reduce.as_ref().expect("compiled");
                        let v = first_output(init, Val::Null)
                            .map_err(|e| format!("aggregate {}: reduce INIT: {e}", agg.spec.name))?
                            .unwrap_or(Val::Null);
                        Acc::Reduce(v)
                    }
                })
            })
            .collect()
    }

    /// The next value of every `reduce` in `accs` for `event`, computed
    /// before anything changes so that an error leaves the window as it was.
    pub fn reduce_step(
        &self,
        accs: &[Acc],
        inputs: &[Input],
        event: Option<&Val>,
    ) -> Result<Vec<Option<Val>>, FailureMessage> {
        let mut next = Vec::with_capacity(self.list.len());
        for ((agg, acc), input) in self.list.iter().zip(accs).zip(inputs) {
            match (&agg.reduce, acc, input) {
                (Some((_, update)), Acc::Reduce(v), Input::Event) => {
                    let pair =
                        Val::from_iter([v.clone(), event.expect("reduce needs the event").clone()]);
                    let out = first_output(update, pair).map_err(|e| {
                        FailureMessage::new(
                            "aggregate",
                            format!("aggregate {}: reduce: {e}", agg.spec.name),
                        )
                        .with("aggregate", agg.spec.name.as_str())
                    })?;
                    next.push(Some(out.unwrap_or(Val::Null)));
                }
                _ => next.push(None),
            }
        }
        Ok(next)
    }

    /// Applies one event's inputs (and `reduce` values from
    /// [`Aggregates::reduce_step`]) to a window's values; returns how many
    /// bytes the values grew by, for `--max-state`.
    pub fn apply(
        &self,
        accs: &mut [Acc],
        inputs: &[Input],
        reduced: Option<Vec<Option<Val>>>,
        order: Order,
    ) -> usize {
        let mut grew = 0;
        let mut reduced = reduced.map(|r| r.into_iter());
        for (acc, input) in accs.iter_mut().zip(inputs) {
            let r = reduced.as_mut().and_then(|r| r.next()).flatten();
            match (acc, input) {
                (_, Input::Skip) => {}
                (Acc::Count(n), _) => *n += 1,
                (Acc::Sum(s), Input::Num(x)) => *s = s.add(*x),
                (Acc::Avg(s, n), Input::Num(x)) => {
                    *s = s.add(*x);
                    *n += 1;
                }
                (Acc::Min(m), Input::Ord(x)) => {
                    if m.as_ref().is_none_or(|m| x.less(m)) {
                        *m = Some(x.clone());
                    }
                }
                (Acc::Max(m), Input::Ord(x)) => {
                    if m.as_ref().is_none_or(|m| m.less(x)) {
                        *m = Some(x.clone());
                    }
                }
                (Acc::Distinct(set), Input::Raw(x)) => {
                    if !set.contains(x) {
                        grew += x.len() + 24;
                        set.insert(x.clone());
                    }
                }
                (Acc::First(f), Input::Raw(x)) => {
                    if f.as_ref().is_none_or(|(o, _)| order < *o) {
                        *f = Some((order, x.clone()));
                    }
                }
                (Acc::Last(l), Input::Raw(x)) => {
                    if l.as_ref().is_none_or(|(o, _)| order >= *o) {
                        *l = Some((order, x.clone()));
                    }
                }
                (Acc::Collect(items, seen), Input::Raw(x)) => {
                    *seen += 1;
                    items.push((order, x.clone()));
                    grew += x.len() + 40;
                    if items.len() > 2 * self.collect_max.max(1) {
                        let before: usize = items.iter().map(|(_, v)| v.len() + 40).sum();
                        trim(items, self.collect_max);
                        let after: usize = items.iter().map(|(_, v)| v.len() + 40).sum();
                        grew = grew.saturating_sub(before - after);
                    }
                }
                (Acc::Reduce(v), Input::Event) => {
                    if let Some(next) = r {
                        *v = next;
                    }
                }
                _ => {}
            }
        }
        grew
    }

    /// Merges window `b` into `a` (sessions bridged by an event).
    pub fn merge(&self, a: &mut [Acc], b: Vec<Acc>) {
        for (x, y) in a.iter_mut().zip(b) {
            match (x, y) {
                (Acc::Count(n), Acc::Count(m)) => *n += m,
                (Acc::Sum(s), Acc::Sum(t)) => *s = s.add(t),
                (Acc::Avg(s, n), Acc::Avg(t, m)) => {
                    *s = s.add(t);
                    *n += m;
                }
                (Acc::Min(m), Acc::Min(o)) => {
                    if let Some(o) = o {
                        if m.as_ref().is_none_or(|m| o.less(m)) {
                            *m = Some(o);
                        }
                    }
                }
                (Acc::Max(m), Acc::Max(o)) => {
                    if let Some(o) = o {
                        if m.as_ref().is_none_or(|m| m.less(&o)) {
                            *m = Some(o);
                        }
                    }
                }
                (Acc::Distinct(s), Acc::Distinct(t)) => s.extend(t),
                (Acc::First(f), Acc::First(g)) => {
                    if let Some(g) = g {
                        if f.as_ref().is_none_or(|(o, _)| g.0 < *o) {
                            *f = Some(g);
                        }
                    }
                }
                (Acc::Last(l), Acc::Last(g)) => {
                    if let Some(g) = g {
                        if l.as_ref().is_none_or(|(o, _)| g.0 >= *o) {
                            *l = Some(g);
                        }
                    }
                }
                (Acc::Collect(items, seen), Acc::Collect(more, n)) => {
                    items.extend(more);
                    *seen += n;
                    if items.len() > 2 * self.collect_max.max(1) {
                        trim(items, self.collect_max);
                    }
                }
                // A fold has no merge: the later session's value is folded
                // over after the earlier one's, which is what arrival order gives.
                (Acc::Reduce(_), Acc::Reduce(_)) => {}
                _ => {}
            }
        }
    }

    /// Writes the `aggregates` object of a result; returns the `collect`
    /// aggregates that hit `--collect-max`, with how many values they saw.
    pub fn write(&self, accs: &mut [Acc], out: &mut Vec<u8>) -> Vec<(String, u64)> {
        let mut truncated = Vec::new();
        out.push(b'{');
        for (i, (agg, acc)) in self.list.iter().zip(accs.iter_mut()).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::push_str(out, &agg.spec.name);
            out.push(b':');
            match acc {
                Acc::Count(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
                Acc::Sum(s) => s.write(out),
                Acc::Avg(_, 0) => out.extend_from_slice(b"null"),
                Acc::Avg(s, n) => Number::Float(s.as_f64() / *n as f64).write(out),
                Acc::Min(m) | Acc::Max(m) => match m {
                    Some(v) => v.write(out),
                    None => out.extend_from_slice(b"null"),
                },
                Acc::Distinct(set) => {
                    out.extend_from_slice(itoa::Buffer::new().format(set.len()).as_bytes())
                }
                Acc::First(v) | Acc::Last(v) => match v {
                    Some((_, raw)) => out.extend_from_slice(raw),
                    None => out.extend_from_slice(b"null"),
                },
                Acc::Collect(items, seen) => {
                    trim(items, self.collect_max);
                    if *seen > items.len() as u64 {
                        truncated.push((agg.spec.name.clone(), *seen));
                    }
                    out.push(b'[');
                    for (j, (_, raw)) in items.iter().enumerate() {
                        if j > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(raw);
                    }
                    out.push(b']');
                }
                Acc::Reduce(v) => {
                    if jq::write_json(out, v).is_err() {
                        out.extend_from_slice(b"null");
                    }
                }
            }
        }
        out.push(b'}');
        truncated
    }
}

/// Keeps the `max` earliest values, earliest first.
fn trim(items: &mut Vec<(Order, Box<[u8]>)>, max: usize) {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    items.truncate(max);
}

/// The kind of a raw value, for messages.
fn describe(raw: &[u8]) -> String {
    match raw.first() {
        Some(b'"') => format!(
            "the string {}",
            String::from_utf8_lossy(&raw[..raw.len().min(40)])
        ),
        Some(b'{') => "an object".into(),
        Some(b'[') => "an array".into(),
        Some(b't' | b'f') => "a boolean".into(),
        _ => String::from_utf8_lossy(raw).into_owned(),
    }
}

/// A value's compact JSON text, the same for equal values written
/// differently (whitespace, string escapes), so `count_distinct` counts
/// values, not spellings.
pub fn normalize(raw: &[u8]) -> Box<[u8]> {
    let mut out = Vec::with_capacity(raw.len());
    normalize_into(raw, &mut out);
    out.into()
}

/// [`normalize`], appended to `out` (no allocation for plain values).
pub fn normalize_into(raw: &[u8], out: &mut Vec<u8>) {
    let simple = match raw.first() {
        Some(b'"') => memchr::memchr(b'\\', raw).is_none(),
        Some(b'{' | b'[') => false,
        _ => true,
    };
    if simple {
        out.extend_from_slice(raw);
        return;
    }
    match serde_json::from_slice::<Value>(raw) {
        Ok(v) => out.extend_from_slice(&serde_json::to_vec(&v).unwrap_or_else(|_| raw.to_vec())),
        Err(_) => out.extend_from_slice(raw),
    }
}

/// The running value of one aggregate in one window.
#[derive(Debug, Clone)]
pub enum Acc {
    /// `count`.
    Count(u64),
    /// `sum`.
    Sum(Number),
    /// `avg`: the sum and the count.
    Avg(Number, u64),
    /// `min`.
    Min(Option<Ordered>),
    /// `max`.
    Max(Option<Ordered>),
    /// `count_distinct`: the values seen.
    Distinct(HashSet<Box<[u8]>>),
    /// `first`.
    First(Option<(Order, Box<[u8]>)>),
    /// `last`.
    Last(Option<(Order, Box<[u8]>)>),
    /// `collect`: the values kept and how many were seen.
    Collect(Vec<(Order, Box<[u8]>)>, u64),
    /// `reduce`.
    Reduce(Val),
}

fn raw_text(raw: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(raw).into_owned())
}

fn order_value(o: Order) -> Value {
    serde_json::json!([o.0, o.1, o.2])
}

fn order_from(v: &Value) -> Option<Order> {
    Some((
        v.get(0)?.as_i64()?,
        v.get(1)?.as_u64()?,
        u32::try_from(v.get(2)?.as_u64()?).ok()?,
    ))
}

fn bytes_of(v: &Value) -> Option<Box<[u8]>> {
    Some(v.as_str()?.as_bytes().into())
}

impl Acc {
    /// The value as the checkpoint keeps it (raw values as their JSON text,
    /// so nothing is reformatted on the way back).
    pub fn to_state(&self) -> Value {
        use serde_json::json;
        match self {
            Acc::Count(n) => json!(n),
            Acc::Sum(s) => s.to_value(),
            Acc::Avg(s, n) => json!([s.to_value(), n]),
            Acc::Min(m) | Acc::Max(m) => match m {
                None => Value::Null,
                Some(o) => {
                    let mut t = Vec::new();
                    o.write(&mut t);
                    raw_text(&t)
                }
            },
            Acc::Distinct(set) => {
                let mut all: Vec<&Box<[u8]>> = set.iter().collect();
                all.sort();
                Value::Array(all.into_iter().map(|r| raw_text(r)).collect())
            }
            Acc::First(v) | Acc::Last(v) => match v {
                None => Value::Null,
                Some((o, raw)) => json!([order_value(*o), raw_text(raw)]),
            },
            Acc::Collect(items, seen) => json!({
                "seen": seen,
                "items": items.iter().map(|(o, r)| json!([order_value(*o), raw_text(r)])).collect::<Vec<_>>(),
            }),
            Acc::Reduce(v) => {
                let mut t = Vec::new();
                let _ = jq::write_json(&mut t, v);
                raw_text(&t)
            }
        }
    }

    /// Reads a value back for aggregate `agg`; `None` when it does not fit.
    pub fn from_state(agg: &Aggregate, v: &Value) -> Option<Acc> {
        Some(match agg.func {
            Func::Count => Acc::Count(v.as_u64()?),
            Func::Sum => Acc::Sum(Number::from_value(v)?),
            Func::Avg => Acc::Avg(Number::from_value(v.get(0)?)?, v.get(1)?.as_u64()?),
            Func::Min | Func::Max => {
                let m = match v {
                    Value::Null => None,
                    other => Some(Ordered::from_raw(other.as_str()?.as_bytes())),
                };
                if agg.func == Func::Min {
                    Acc::Min(m)
                } else {
                    Acc::Max(m)
                }
            }
            Func::CountDistinct => {
                Acc::Distinct(v.as_array()?.iter().map(bytes_of).collect::<Option<_>>()?)
            }
            Func::First | Func::Last => {
                let f = match v {
                    Value::Null => None,
                    other => Some((order_from(other.get(0)?)?, bytes_of(other.get(1)?)?)),
                };
                if agg.func == Func::First {
                    Acc::First(f)
                } else {
                    Acc::Last(f)
                }
            }
            Func::Collect => {
                let items = v
                    .get("items")?
                    .as_array()?
                    .iter()
                    .map(|i| Some((order_from(i.get(0)?)?, bytes_of(i.get(1)?)?)))
                    .collect::<Option<Vec<_>>>()?;
                Acc::Collect(items, v.get("seen")?.as_u64()?)
            }
            Func::Reduce { .. } => Acc::Reduce(jq::parse_json(v.as_str()?.as_bytes()).ok()?),
        })
    }

    /// About how many bytes this value holds beyond its own size.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Acc::Distinct(s) => s.iter().map(|v| v.len() + 24).sum(),
            Acc::Collect(items, _) => items.iter().map(|(_, v)| v.len() + 40).sum(),
            Acc::First(Some((_, v))) | Acc::Last(Some((_, v))) => v.len(),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(specs: &[&str], events: &[&str]) -> String {
        let specs: Vec<Aggregate> = specs.iter().map(|s| Aggregate::parse(s).unwrap()).collect();
        let aggs = Aggregates::compile(&specs, 3).unwrap();
        let mut accs = aggs.start().unwrap();
        let mut inputs = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let line = e.as_bytes();
            let value = aggs.needs_value.then(|| jq::parse_json(line).unwrap());
            aggs.extract(line, 0..line.len(), value.as_ref(), None, &mut inputs)
                .unwrap();
            let reduced = aggs.reduce_step(&accs, &inputs, value.as_ref()).unwrap();
            // Event time is the "t" member; ties in time break by line.
            let t = serde_json::from_str::<Value>(e).unwrap()["t"]
                .as_i64()
                .unwrap_or(0);
            aggs.apply(&mut accs, &inputs, Some(reduced), (t, i as u64, 0));
        }
        let mut out = Vec::new();
        aggs.write(&mut accs, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_aggregate_against_hand_computed_values() {
        let events = [
            r#"{"t":3,"k":"a","v":2,"s":"pear"}"#,
            r#"{"t":1,"k":"b","v":0.5,"s":"apple"}"#,
            r#"{"t":2,"k":"a","v":null}"#,
            r#"{"t":5,"k":"\u0061","v":-4,"s":"fig"}"#,
            r#"{"t":4,"k":"c","v":10}"#,
        ];
        let got = run(
            &[
                "n=count",
                "with_v=count(.v)",
                "total=sum(.v)",
                "lo=min(.v)",
                "hi=max(.v)",
                "mean=avg(.v)",
                "keys=count_distinct(.k)",
                "first_s=first(.s)",
                "last_k=last(.k)",
                "ts=collect(.t)",
                "big=count where .v > 1",
                "kv=reduce(\"\"; . + ($event.k))",
                "len=sum(.s | length)",
                "earliest=min(.s)",
            ],
            &events,
        );
        // v: 2, 0.5, -4, 10 (null skipped): sum 8.5, mean 2.125.
        // k: a, b, a, a (escaped), c: 3 distinct. s by time: apple(1) pear(3) fig(5).
        // collect keeps the 3 earliest times of 5. "big": 2 and 10.
        assert_eq!(
            got,
            r#"{"n":5,"with_v":4,"total":8.5,"lo":-4,"hi":10,"mean":2.125,"keys":3,"first_s":"apple","last_k":"a","ts":[1,2,3],"big":2,"kv":"abaac","len":12,"earliest":"apple"}"#
        );
    }

    #[test]
    fn a_value_that_is_not_a_number_fails_the_event() {
        let specs = [Aggregate::parse("total=sum(.v)").unwrap()];
        let aggs = Aggregates::compile(&specs, 10).unwrap();
        let line = br#"{"v":"12"}"#;
        let e = aggs
            .extract(line, 0..line.len(), None, None, &mut Vec::new())
            .unwrap_err();
        assert!(e.message.contains("not a number"), "{}", e.message);
    }

    #[test]
    fn values_survive_the_checkpoint() {
        let specs: Vec<Aggregate> = [
            "n=count",
            "m=avg(.v)",
            "d=count_distinct(.v)",
            "c=collect(.v)",
            "f=first(.v)",
            "x=max(.v)",
            "r=reduce([]; . + [$event.v])",
        ]
        .iter()
        .map(|s| Aggregate::parse(s).unwrap())
        .collect();
        let aggs = Aggregates::compile(&specs, 10).unwrap();
        let mut accs = aggs.start().unwrap();
        let mut inputs = Vec::new();
        for (i, line) in [&br#"{"v":1.10}"#[..], br#"{"v":2}"#].iter().enumerate() {
            let value = jq::parse_json(line).unwrap();
            aggs.extract(line, 0..line.len(), Some(&value), None, &mut inputs)
                .unwrap();
            let r = aggs.reduce_step(&accs, &inputs, Some(&value)).unwrap();
            aggs.apply(&mut accs, &inputs, Some(r), (i as i64, 0, 0));
        }
        let saved: Vec<Value> = accs.iter().map(Acc::to_state).collect();
        let mut back: Vec<Acc> = specs
            .iter()
            .zip(&saved)
            .map(|(s, v)| Acc::from_state(s, v).unwrap())
            .collect();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        aggs.write(&mut accs, &mut a);
        aggs.write(&mut back, &mut b);
        assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
        assert_eq!(
            String::from_utf8({
                let mut o = Vec::new();
                aggs.write(&mut back, &mut o);
                o
            })
            .unwrap(),
            r#"{"n":2,"m":1.55,"d":2,"c":[1.10,2],"f":1.10,"x":2,"r":[1.10,2]}"#
        );
    }
}
