//! What a window job is: the window kind and its alignment, where event time
//! comes from, the key, and the named aggregates, parsed from the command
//! line and written back in one canonical form (the configuration a state
//! file belongs to, and the input of every `result_id`).

use std::fmt;
use std::ops::ControlFlow;

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use crate::path::FieldPath;
use crate::time;

/// The kind of window and its sizes, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Back-to-back windows of one size.
    Tumbling {
        /// Window length.
        size: i64,
    },
    /// Windows of `size` starting every `every`: an event is in `size / every` of them.
    Hopping {
        /// Window length.
        size: i64,
        /// Distance between window starts.
        every: i64,
    },
    /// Activity separated by at least `gap` of silence.
    Session {
        /// The inactivity that ends a session.
        gap: i64,
    },
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Tumbling { size } => write!(f, "tumbling {}", duration(*size)),
            Kind::Hopping { size, every } => {
                write!(f, "hopping {} every {}", duration(*size), duration(*every))
            }
            Kind::Session { gap } => write!(f, "session {}", duration(*gap)),
        }
    }
}

/// A duration in ms written back the way users type them (`1h30m`, `500ms`).
pub fn duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, len) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
        if rest >= len {
            out.push_str(&format!("{}{unit}", rest / len));
            rest %= len;
        }
    }
    if rest > 0 {
        out.push_str(&format!("{rest}ms"));
    }
    out
}

/// How a numeric or textual time value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TimeFormat {
    /// RFC 3339 strings; numbers below 100,000,000,000 as epoch seconds, larger ones as ms.
    Auto,
    /// RFC 3339 strings only.
    Rfc3339,
    /// Epoch seconds (fractions allowed), as numbers or numeric strings.
    S,
    /// Epoch milliseconds, as numbers or numeric strings.
    Ms,
}

impl TimeFormat {
    fn name(self) -> &'static str {
        match self {
            TimeFormat::Auto => "auto",
            TimeFormat::Rfc3339 => "rfc3339",
            TimeFormat::S => "s",
            TimeFormat::Ms => "ms",
        }
    }
}

/// Where an event's time comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeSource {
    /// A field of the event.
    Field(FieldPath, TimeFormat),
    /// The log's append time, from the position member.
    Append,
}

/// The function of one aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Func {
    /// Events (with an argument: events where it is present and not null).
    Count,
    /// Sum of numbers.
    Sum,
    /// Smallest value (numbers by value, strings by text; numbers before strings).
    Min,
    /// Largest value.
    Max,
    /// Mean of numbers.
    Avg,
    /// Distinct values, counted exactly.
    CountDistinct,
    /// The value of the earliest event (by event time, then position).
    First,
    /// The value of the latest event.
    Last,
    /// Every value, earliest first, at most `--collect-max`.
    Collect,
    /// A jq fold: `reduce(INIT; UPDATE)` with `.` the accumulator and `$event` the event.
    Reduce {
        /// The accumulator's first value (jq, run on null).
        init: String,
        /// The update (jq).
        update: String,
    },
}

impl Func {
    fn name(&self) -> &'static str {
        match self {
            Func::Count => "count",
            Func::Sum => "sum",
            Func::Min => "min",
            Func::Max => "max",
            Func::Avg => "avg",
            Func::CountDistinct => "count_distinct",
            Func::First => "first",
            Func::Last => "last",
            Func::Collect => "collect",
            Func::Reduce { .. } => "reduce",
        }
    }
}

/// What an aggregate reads from each event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// The whole event (without its position member).
    Event,
    /// A field path, read straight from the raw JSON.
    Path(FieldPath),
    /// Any other jq expression: its first output (none: the event is skipped).
    Jq(String),
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Event => f.write_str("."),
            Arg::Path(p) => write!(f, "{p}"),
            Arg::Jq(code) => f.write_str(code),
        }
    }
}

/// One named aggregate: `NAME=FUNC(ARG) where JQ`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    /// The member it fills in the result's `aggregates`.
    pub name: String,
    /// What it computes.
    pub func: Func,
    /// What it reads.
    pub arg: Arg,
    /// A jq filter: only events for which it yields a true value count.
    pub filter: Option<String>,
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.func.name())?;
        match (&self.func, &self.arg) {
            (Func::Reduce { init, update }, _) => write!(f, "({init}; {update})")?,
            (_, Arg::Event) => {}
            (_, arg) => write!(f, "({arg})")?,
        }
        if let Some(w) = &self.filter {
            write!(f, " where {w}")?;
        }
        Ok(())
    }
}

impl Aggregate {
    /// Parses `NAME=FUNC`, `NAME=FUNC(ARG)` or `NAME=reduce(INIT; UPDATE)`,
    /// each optionally followed by `where JQ`.
    pub fn parse(text: &str) -> Result<Aggregate> {
        let hint = "write an aggregate like count=count, total=sum(.data.order.value) or \
                    added=count where .schema | contains(\"added_to_cart\")";
        let (name, rest) = text
            .split_once('=')
            .ok_or_else(|| anyhow!("aggregate {text:?} has no NAME=; {hint}"))?;
        let name = name.trim();
        let valid_name = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            bail!("aggregate {text:?}: the name {name:?} must be letters, digits and '_'");
        }
        let rest = rest.trim_start();
        let func_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let func_name = &rest[..func_len];
        let mut after = &rest[func_len..];
        let mut inner = None;
        if after.starts_with('(') {
            let close = matching_paren(after).ok_or_else(|| {
                anyhow!("aggregate {text:?}: the '(' after {func_name} is never closed")
            })?;
            inner = Some(after[1..close].trim());
            after = &after[close + 1..];
        }
        let after = after.trim();
        let filter = if after.is_empty() {
            None
        } else if let Some(w) = after.strip_prefix("where").filter(|w| {
            w.is_empty() || w.starts_with(|c: char| c.is_whitespace() || c == '(' || c == '.')
        }) {
            let w = w.trim();
            if w.is_empty() {
                bail!("aggregate {text:?}: 'where' needs a jq filter after it");
            }
            Some(w.to_string())
        } else {
            bail!("aggregate {text:?}: unexpected {after:?}; only 'where JQ' may follow the function");
        };
        let arg_of = |inner: Option<&str>| -> Arg {
            match inner {
                None | Some("") | Some(".") => Arg::Event,
                Some(code) => match FieldPath::parse(code) {
                    Ok(path) => Arg::Path(path),
                    Err(_) => Arg::Jq(code.to_string()),
                },
            }
        };
        let needs_arg = |func: Func| -> Result<(Func, Arg)> {
            let arg = arg_of(inner);
            if arg == Arg::Event {
                bail!(
                    "aggregate {text:?}: {} needs what to read, as in {}(.data.order.value)",
                    func.name(),
                    func.name()
                );
            }
            Ok((func, arg))
        };
        let (func, arg) = match func_name {
            "count" => (Func::Count, arg_of(inner)),
            "first" => (Func::First, arg_of(inner)),
            "last" => (Func::Last, arg_of(inner)),
            "collect" => (Func::Collect, arg_of(inner)),
            "count_distinct" => (Func::CountDistinct, arg_of(inner)),
            "sum" => needs_arg(Func::Sum)?,
            "min" => needs_arg(Func::Min)?,
            "max" => needs_arg(Func::Max)?,
            "avg" => needs_arg(Func::Avg)?,
            "reduce" => {
                let body = inner.ok_or_else(|| {
                    anyhow!("aggregate {text:?}: write reduce(INIT; UPDATE), as in reduce(0; . + $event.data.quantity)")
                })?;
                let (init, update) = split_top_level(body, ';').ok_or_else(|| {
                    anyhow!("aggregate {text:?}: reduce takes INIT; UPDATE, separated by ';'")
                })?;
                (
                    Func::Reduce {
                        init: init.trim().to_string(),
                        update: update.trim().to_string(),
                    },
                    Arg::Event,
                )
            }
            "" => bail!("aggregate {text:?} names no function; {hint}"),
            other => bail!(
                "aggregate {text:?}: unknown function {other:?}; use count, sum, min, max, avg, \
                 count_distinct, first, last, collect or reduce"
            ),
        };
        Ok(Aggregate {
            name: name.to_string(),
            func,
            arg,
            filter,
        })
    }
}

/// Where the `)` matching the `(` at the start of `text` is, skipping jq
/// strings and nested brackets.
fn matching_paren(text: &str) -> Option<usize> {
    scan_outside_strings(text, |i, c, depth| match c {
        ')' | ']' | '}' if depth == 0 => ControlFlow::Break((c == ')').then_some(i)),
        _ => ControlFlow::Continue(()),
    })
}

/// Splits `text` at the first `sep` outside strings and brackets.
fn split_top_level(text: &str, sep: char) -> Option<(&str, &str)> {
    let at = scan_outside_strings(text, |i, c, depth| {
        if c == sep && depth == 0 {
            ControlFlow::Break(Some(i))
        } else {
            ControlFlow::Continue(())
        }
    })?;
    Some((&text[..at], &text[at + 1..]))
}

/// Calls `each` with every character of `text` outside jq string literals,
/// its byte index and the bracket depth after it, until `each` breaks with
/// the answer; `None` when it never does.
fn scan_outside_strings(
    text: &str,
    mut each: impl FnMut(usize, char, i32) -> ControlFlow<Option<usize>>,
) -> Option<usize> {
    let mut depth = 0i32;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        if let ControlFlow::Break(answer) = each(i, c, depth) {
            return answer;
        }
    }
    None
}

/// How windows line up with the clock: an offset from the epoch, or local
/// time in a zone (days of 23 or 25 hours across daylight-saving changes).
#[derive(Debug, Clone, PartialEq)]
pub struct Alignment {
    /// Added to every window start, ms.
    pub offset: i64,
    /// The zone whose local time windows follow, with its name.
    pub tz: Option<(String, jiff::tz::TimeZone)>,
}

impl Alignment {
    /// Parses `--offset` and `--tz`.
    pub fn new(offset: i64, tz: Option<&str>) -> Result<Alignment> {
        let tz = match tz {
            None => None,
            Some(name) => {
                let zone = jiff::tz::TimeZone::get(name).map_err(|e| {
                    anyhow!("--tz {name:?} is not a time zone ({e}); use an IANA name like Europe/Paris or UTC")
                })?;
                Some((name.to_string(), zone))
            }
        };
        Ok(Alignment { offset, tz })
    }
}

/// When results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    /// Once per window, when the watermark passes its end.
    Close,
    /// On every change (at most once per window per batch of input), each
    /// with a higher revision, and a final result at close.
    Update,
}

/// Everything that decides what a window job computes.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The window kind.
    pub kind: Kind,
    /// Epoch or local-time alignment (tumbling and hopping).
    pub align: Alignment,
    /// The key: one path, several (a composite key), or none (one window for all).
    pub keys: Vec<FieldPath>,
    /// Where event time comes from.
    pub time: TimeSource,
    /// How far behind the largest event time the watermark stays.
    pub lateness: i64,
    /// The aggregates, in output order.
    pub aggregates: Vec<Aggregate>,
    /// A jq filter on events: those for which it is not true are left out.
    pub filter: Option<String>,
    /// A jq filter on results: those for which it is not true are not written.
    pub having: Option<String>,
    /// When results are written.
    pub emit: Emit,
    /// The bound of every `collect`.
    pub collect_max: usize,
    /// The schema of the results written, when not the built-in one.
    pub output_schema: Option<String>,
    /// A jq expression that shapes each result's data for `output_schema`.
    pub shape: Option<String>,
}

impl Spec {
    /// Checks what clap cannot: sizes, names and combinations.
    pub fn check(&self) -> Result<()> {
        match self.kind {
            Kind::Tumbling { size } if size <= 0 => bail!("--tumbling must be longer than 0"),
            Kind::Hopping { size, every } => {
                if size <= 0 || every <= 0 {
                    bail!("--hopping and --every must be longer than 0");
                }
                if every > size {
                    bail!(
                        "--every {} is longer than the window ({}): events between windows would be lost; use --tumbling for back-to-back windows",
                        duration(every),
                        duration(size)
                    );
                }
                if size / every > 1000 {
                    bail!("--hopping {} --every {} puts each event in over 1000 windows; advance by more", duration(size), duration(every));
                }
            }
            Kind::Session { gap } if gap <= 0 => bail!("--session must be longer than 0"),
            _ => {}
        }
        if matches!(self.kind, Kind::Session { .. })
            && (self.align.offset != 0 || self.align.tz.is_some())
        {
            bail!("--offset and --tz align tumbling and hopping windows; sessions follow their events");
        }
        let mut seen = std::collections::HashSet::new();
        for a in &self.aggregates {
            if !seen.insert(a.name.as_str()) {
                bail!("aggregate name {:?} is used twice", a.name);
            }
        }
        if self.shape.is_some() && self.output_schema.is_none() {
            bail!("--shape makes the data of another schema: give --output-schema URI too");
        }
        if let Some(uri) = &self.output_schema {
            crate::event::IgluUri::parse(uri)?;
        }
        Ok(())
    }

    /// The configuration in one canonical JSON form: a state file belongs to
    /// exactly one, and result ids are computed from it.
    pub fn canonical(&self) -> Value {
        let (kind, sizes) = match self.kind {
            Kind::Tumbling { size } => ("tumbling", json!({ "size_ms": size })),
            Kind::Hopping { size, every } => {
                ("hopping", json!({ "size_ms": size, "every_ms": every }))
            }
            Kind::Session { gap } => ("session", json!({ "gap_ms": gap })),
        };
        let time = match &self.time {
            TimeSource::Field(p, f) => json!({ "path": p.to_string(), "format": f.name() }),
            TimeSource::Append => json!("append"),
        };
        json!({
            "window": kind,
            "sizes": sizes,
            "offset_ms": self.align.offset,
            "tz": self.align.tz.as_ref().map(|(n, _)| n.clone()),
            "key": self.keys.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
            "time": time,
            "lateness_ms": self.lateness,
            "aggregates": self.aggregates.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "where": self.filter,
            "having": self.having,
            "emit": match self.emit { Emit::Close => "close", Emit::Update => "update" },
            "collect_max": self.collect_max,
            "output_schema": self.output_schema,
            "shape": self.shape,
        })
    }

    /// A short description for messages: `tumbling 1m by .data.shopper.id`.
    pub fn describe(&self) -> String {
        let keys: Vec<String> = self.keys.iter().map(|k| k.to_string()).collect();
        if keys.is_empty() {
            self.kind.to_string()
        } else {
            format!("{} by {}", self.kind, keys.join(", "))
        }
    }
}

/// Lists what differs between two canonical configurations, for the message
/// that refuses a state file of another job.
pub fn differences(ours: &Value, theirs: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let a = ours.as_object().unwrap_or(&empty);
    let b = theirs.as_object().unwrap_or(&empty);
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| a.get(*n) != b.get(*n))
        .map(|n| {
            format!(
                "{n}: state has {}, command line has {}",
                b.get(n).unwrap_or(&Value::Null),
                a.get(n).unwrap_or(&Value::Null)
            )
        })
        .collect()
}

/// Parses an `--offset`, which may be negative (`-5h`).
pub fn parse_offset(text: &str) -> Result<i64, String> {
    let (sign, rest) = match text.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    time::parse_duration_ms(rest)
        .map(|ms| sign * ms)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_parse_and_print_back() {
        for (text, shown) in [
            ("n=count", "n=count"),
            ("total = sum(.data.order.value)", "total=sum(.data.order.value)"),
            (
                "added=count where .schema | contains(\"added_to_cart\")",
                "added=count where .schema | contains(\"added_to_cart\")",
            ),
            ("items=collect(.data.item) where .data.item", "items=collect(.data.item) where .data.item"),
            ("skus=count_distinct(.data.product.sku)", "skus=count_distinct(.data.product.sku)"),
            ("lines=sum(.data.order.items | length)", "lines=sum(.data.order.items | length)"),
            ("q=reduce(0; . + $event.data.quantity)", "q=reduce(0; . + $event.data.quantity)"),
            ("e=first", "e=first"),
        ] {
            let a = Aggregate::parse(text).unwrap();
            assert_eq!(a.to_string(), shown);
            assert_eq!(Aggregate::parse(shown).unwrap(), a);
        }
        let a = Aggregate::parse("lines=sum(.data.order.items | length)").unwrap();
        assert_eq!(a.arg, Arg::Jq(".data.order.items | length".into()));
        let a = Aggregate::parse("x=max(.data.price)").unwrap();
        assert!(matches!(a.arg, Arg::Path(_)));
        let a = Aggregate::parse(r#"x=count where .s == ")""#).unwrap();
        assert_eq!(a.filter.as_deref(), Some(r#".s == ")""#));
    }

    #[test]
    fn bad_aggregates_say_why() {
        for (text, says) in [
            ("count", "no NAME="),
            ("1x=count", "must be letters"),
            ("x=total(.a)", "unknown function"),
            ("x=sum", "needs what to read"),
            ("x=sum(.a", "never closed"),
            ("x=count when .a", "unexpected"),
            ("x=count where", "needs a jq filter"),
            ("x=reduce(0)", "INIT; UPDATE"),
        ] {
            let e = Aggregate::parse(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn durations_print_back() {
        assert_eq!(duration(90 * 60_000), "1h30m");
        assert_eq!(duration(86_400_000), "1d");
        assert_eq!(duration(1500), "1s500ms");
        assert_eq!(parse_offset("-5h"), Ok(-5 * 3_600_000));
        assert_eq!(parse_offset("30m"), Ok(1_800_000));
    }
}
