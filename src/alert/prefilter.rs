//! A fast first look at each event, so that rule evaluation keeps up with a
//! log: the common conditions (paths compared with constants, joined by
//! `and`, `or` and `not`) are answered straight from the line's bytes in one
//! pass, without building the event as a jq value.
//!
//! The prefilter is conservative: it answers "certainly false" only when jq
//! itself would give exactly `false` or `null` without an error (a missing
//! key is `null`; indexing a string is an error, so "unknown"). Anything it
//! cannot judge, it leaves to jq. An event some rule may match is evaluated
//! by jaq as before, so results never depend on the prefilter; a unit test
//! checks the two against each other.

use std::cmp::Ordering;

use jaq_core::load::lex::StrPart;
use jaq_core::load::parse::{BinaryOp, Term};
use jaq_core::ops::Cmp;
use jaq_core::path::{Opt, Part};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::json::{self, nest, Checked};

/// Three-valued truth: jq would give a truthy value, a falsy value, or the
/// prefilter cannot tell (including "jq would raise an error").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    /// Certainly truthy.
    True,
    /// Certainly `false` or `null`, with no error.
    False,
    /// Not judged here.
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
enum Leaf {
    Null,
    Bool(bool),
    Num(f64),
    /// An integer too large to compare exactly as a float.
    BigNum,
    Str(String),
    Arr,
    Obj,
}

impl Leaf {
    fn rank(&self) -> u8 {
        match self {
            Leaf::Null => 0,
            Leaf::Bool(false) => 1,
            Leaf::Bool(true) => 2,
            Leaf::Num(_) | Leaf::BigNum => 3,
            Leaf::Str(_) => 4,
            Leaf::Arr => 5,
            Leaf::Obj => 6,
        }
    }
}

/// jq's order, when it can be told without looking inside arrays, objects
/// or huge numbers.
fn compare(a: &Leaf, b: &Leaf) -> Option<Ordering> {
    let (ra, rb) = (a.rank(), b.rank());
    if ra != rb {
        return Some(ra.cmp(&rb));
    }
    match (a, b) {
        (Leaf::Num(x), Leaf::Num(y)) => x.partial_cmp(y),
        (Leaf::Str(x), Leaf::Str(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Leaf::Null, _) | (Leaf::Bool(_), _) => Some(Ordering::Equal),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Field(String),
    Index(usize),
}

#[derive(Debug, Clone)]
enum Operand {
    Path(usize),
    Lit(Leaf),
}

#[derive(Debug, Clone)]
enum Cond {
    Cmp(Operand, Cmp, Operand),
    Truthy(Operand),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    Unknown,
}

/// The paths the conditions use, as a trie that one pass over a line fills.
#[derive(Debug, Default)]
struct Trie {
    /// Per node: its children by field name and by index.
    fields: Vec<Vec<(String, usize)>>,
    indices: Vec<Vec<(usize, usize)>>,
    /// Per path: its segments' nodes, root excluded.
    paths: Vec<Vec<(Seg, usize)>>,
}

impl Trie {
    fn new() -> Self {
        Trie {
            fields: vec![Vec::new()],
            indices: vec![Vec::new()],
            paths: Vec::new(),
        }
    }

    fn add_path(&mut self, segs: Vec<Seg>) -> usize {
        let mut node = 0;
        let mut steps = Vec::with_capacity(segs.len());
        for seg in segs {
            let existing = match &seg {
                Seg::Field(f) => self.fields[node]
                    .iter()
                    .find(|(k, _)| k == f)
                    .map(|&(_, n)| n),
                Seg::Index(i) => self.indices[node]
                    .iter()
                    .find(|(k, _)| k == i)
                    .map(|&(_, n)| n),
            };
            let child = existing.unwrap_or_else(|| {
                let n = self.fields.len();
                self.fields.push(Vec::new());
                self.indices.push(Vec::new());
                match &seg {
                    Seg::Field(f) => self.fields[node].push((f.clone(), n)),
                    Seg::Index(i) => self.indices[node].push((*i, n)),
                }
                n
            });
            steps.push((seg, child));
            node = child;
        }
        self.paths.push(steps);
        self.paths.len() - 1
    }

    fn len(&self) -> usize {
        self.fields.len()
    }

    fn subtree(&self, node: usize, out: &mut Vec<usize>) {
        for &(_, c) in &self.fields[node] {
            out.push(c);
            self.subtree(c, out);
        }
        for &(_, c) in &self.indices[node] {
            out.push(c);
            self.subtree(c, out);
        }
    }
}

/// Conditions of several rules, judged together from one pass over a line.
#[derive(Debug)]
pub struct Prefilter {
    trie: Trie,
    conds: Vec<Cond>,
    /// What the last scan found at each trie node (`None`: not present).
    found: Vec<Option<Leaf>>,
    /// True when some condition can be judged at all.
    useful: bool,
}

impl Prefilter {
    /// Builds the prefilter for jq conditions (one per rule, in order).
    pub fn new<'a>(conditions: impl IntoIterator<Item = &'a str>) -> Self {
        let mut trie = Trie::new();
        let conds: Vec<Cond> = conditions
            .into_iter()
            .map(|text| {
                jaq_core::load::parse(text, |p| p.term())
                    .map(|t| cond(&t, &mut trie))
                    .unwrap_or(Cond::Unknown)
            })
            .collect();
        let useful = conds.iter().any(|c| !matches!(c, Cond::Unknown));
        Prefilter {
            found: vec![None; trie.len()],
            trie,
            conds,
            useful,
        }
    }

    /// True when the prefilter can judge some condition; otherwise calling
    /// [`Prefilter::judge`] only costs time.
    pub fn is_useful(&self) -> bool {
        self.useful
    }

    /// Judges every condition on a line, into `out` (one per condition).
    /// Returns `false`, leaving `out` all unknown, when the line is not one
    /// JSON object (jq will say why).
    pub fn judge(&mut self, line: &[u8], out: &mut Vec<Tri>) -> bool {
        out.clear();
        self.found.iter_mut().for_each(|f| *f = None);
        // serde_json skips the strings it ignores without checking their
        // UTF-8, so the line is checked first (quick on ASCII): a line that
        // is not text must reach the full parse, which fails it.
        let Ok(text) = json::utf8(line) else {
            out.resize(self.conds.len(), Tri::Unknown);
            return false;
        };
        let mut de = serde_json::Deserializer::from_str(text);
        let seed = NodeSeed {
            trie: &self.trie,
            node: 0,
            depth: 0,
            found: &mut self.found,
        };
        // The one pass also applies the rule every tool shares (see
        // crate::json): a line it refuses is left to the full parse, which
        // fails it, so no line is ever judged "false" and dropped unseen.
        let ok = seed.deserialize(&mut de).and_then(|_| de.end()).is_ok()
            && matches!(self.found[0], Some(Leaf::Obj));
        if !ok {
            out.resize(self.conds.len(), Tri::Unknown);
            return false;
        }
        for c in &self.conds {
            out.push(eval(c, &self.trie, &self.found));
        }
        true
    }
}

fn cond(t: &Term<&str>, trie: &mut Trie) -> Cond {
    match t {
        Term::BinOp(l, BinaryOp::And, r) => {
            Cond::And(Box::new(cond(l, trie)), Box::new(cond(r, trie)))
        }
        Term::BinOp(l, BinaryOp::Or, r) => {
            Cond::Or(Box::new(cond(l, trie)), Box::new(cond(r, trie)))
        }
        Term::BinOp(l, BinaryOp::Cmp(op), r) => match (operand(l, trie), operand(r, trie)) {
            (Some(a), Some(b)) => Cond::Cmp(a, *op, b),
            _ => Cond::Unknown,
        },
        Term::BinOp(l, BinaryOp::Pipe(None), r) if matches!(&**r, Term::Call("not", args) if args.is_empty()) => {
            Cond::Not(Box::new(cond(l, trie)))
        }
        Term::Path(inner, path) if path.0.is_empty() => cond(inner, trie),
        other => match operand(other, trie) {
            Some(o) => Cond::Truthy(o),
            None => Cond::Unknown,
        },
    }
}

fn operand(t: &Term<&str>, trie: &mut Trie) -> Option<Operand> {
    match t {
        Term::Num(s) => number(s).map(Operand::Lit),
        Term::Neg(inner) => match &**inner {
            Term::Num(s) => match number(s)? {
                Leaf::Num(x) => Some(Operand::Lit(Leaf::Num(-x))),
                _ => None,
            },
            _ => None,
        },
        Term::Str(None, parts) => string(parts).map(|s| Operand::Lit(Leaf::Str(s))),
        Term::Call("true", a) if a.is_empty() => Some(Operand::Lit(Leaf::Bool(true))),
        Term::Call("false", a) if a.is_empty() => Some(Operand::Lit(Leaf::Bool(false))),
        Term::Call("null", a) if a.is_empty() => Some(Operand::Lit(Leaf::Null)),
        Term::Path(inner, path) if path.0.is_empty() => operand(inner, trie),
        Term::Path(inner, path) if matches!(**inner, Term::Id) => {
            let mut segs = Vec::new();
            for (part, opt) in &path.0 {
                if !matches!(opt, Opt::Essential) {
                    return None;
                }
                match part {
                    Part::Index(Term::Str(None, parts)) => segs.push(Seg::Field(string(parts)?)),
                    Part::Index(Term::Num(s)) => {
                        let i: usize = s.parse().ok()?;
                        segs.push(Seg::Index(i));
                    }
                    _ => return None,
                }
            }
            Some(Operand::Path(trie.add_path(segs)))
        }
        _ => None,
    }
}

fn number(s: &str) -> Option<Leaf> {
    let x: f64 = s.parse().ok()?;
    // Exact as a float: jq compares numbers as floats too, but a literal
    // with more digits than a float holds is left to jq.
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    (x.is_finite() && digits <= 15).then_some(Leaf::Num(x))
}

fn string(parts: &[StrPart<&str, Term<&str>>]) -> Option<String> {
    let mut s = String::new();
    for p in parts {
        match p {
            StrPart::Str(t) => s.push_str(t),
            StrPart::Char(c) => s.push(*c),
            StrPart::Term(_) => return None,
        }
    }
    Some(s)
}

/// The value at a path, as jq would give it; `None` when jq would raise an
/// error (indexing a string, a number, or an array by name…).
fn resolve(path: &[(Seg, usize)], found: &[Option<Leaf>]) -> Option<Leaf> {
    let mut cur = found[0].clone().unwrap_or(Leaf::Null);
    for (seg, node) in path {
        cur = match (&cur, seg) {
            (Leaf::Null, _) => return Some(Leaf::Null),
            (Leaf::Obj, Seg::Field(_)) | (Leaf::Arr, Seg::Index(_)) => {
                found[*node].clone().unwrap_or(Leaf::Null)
            }
            _ => return None,
        };
    }
    Some(cur)
}

fn value(o: &Operand, trie: &Trie, found: &[Option<Leaf>]) -> Option<Leaf> {
    match o {
        Operand::Lit(l) => Some(l.clone()),
        Operand::Path(p) => resolve(&trie.paths[*p], found),
    }
}

fn tri(b: bool) -> Tri {
    if b {
        Tri::True
    } else {
        Tri::False
    }
}

fn eval(c: &Cond, trie: &Trie, found: &[Option<Leaf>]) -> Tri {
    match c {
        Cond::Unknown => Tri::Unknown,
        Cond::Truthy(o) => match value(o, trie, found) {
            Some(Leaf::Null | Leaf::Bool(false)) => Tri::False,
            Some(_) => Tri::True,
            None => Tri::Unknown,
        },
        Cond::Cmp(a, op, b) => {
            let (Some(a), Some(b)) = (value(a, trie, found), value(b, trie, found)) else {
                return Tri::Unknown;
            };
            let Some(ord) = compare(&a, &b) else {
                return Tri::Unknown;
            };
            tri(match op {
                Cmp::Lt => ord == Ordering::Less,
                Cmp::Le => ord != Ordering::Greater,
                Cmp::Gt => ord == Ordering::Greater,
                Cmp::Ge => ord != Ordering::Less,
                Cmp::Eq => ord == Ordering::Equal,
                Cmp::Ne => ord != Ordering::Equal,
            })
        }
        Cond::And(a, b) => match eval(a, trie, found) {
            Tri::False => Tri::False,
            Tri::True => eval(b, trie, found),
            Tri::Unknown => Tri::Unknown,
        },
        Cond::Or(a, b) => match eval(a, trie, found) {
            Tri::True => Tri::True,
            Tri::False => eval(b, trie, found),
            Tri::Unknown => Tri::Unknown,
        },
        Cond::Not(a) => match eval(a, trie, found) {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Unknown => Tri::Unknown,
        },
    }
}

/// Deserializes the value at one trie node, recording what it is and
/// descending into the children the trie names; everything else is skipped
/// (and still validated).
struct NodeSeed<'a> {
    trie: &'a Trie,
    node: usize,
    /// How many arrays and objects enclose this value.
    depth: usize,
    found: &'a mut [Option<Leaf>],
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        // A key seen twice: the last value wins, as in jq; forget the first.
        if self.found[self.node].is_some() {
            let mut sub = Vec::new();
            self.trie.subtree(self.node, &mut sub);
            for n in sub {
                self.found[n] = None;
            }
        }
        d.deserialize_any(self)
    }
}

impl NodeSeed<'_> {
    fn set<E>(self, leaf: Leaf) -> Result<(), E> {
        self.found[self.node] = Some(leaf);
        Ok(())
    }
}

const EXACT_INT: u64 = 1 << 53;

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = nest::<A::Error>(self.depth)?;
        self.found[self.node] = Some(Leaf::Obj);
        let children = &self.trie.fields[self.node];
        while let Some(child) = map.next_key_seed(KeyLookup(children))? {
            match child {
                Some(node) => map.next_value_seed(NodeSeed {
                    trie: self.trie,
                    node,
                    depth,
                    found: &mut *self.found,
                })?,
                None => map.next_value_seed(Checked { depth })?,
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = nest::<A::Error>(self.depth)?;
        self.found[self.node] = Some(Leaf::Arr);
        let children = &self.trie.indices[self.node];
        let mut i = 0usize;
        loop {
            let child = children.iter().find(|(k, _)| *k == i).map(|&(_, n)| n);
            let more = match child {
                Some(node) => seq
                    .next_element_seed(NodeSeed {
                        trie: self.trie,
                        node,
                        depth,
                        found: &mut *self.found,
                    })?
                    .is_some(),
                None => seq.next_element_seed(Checked { depth })?.is_some(),
            };
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.set(Leaf::Str(v.to_string()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.set(Leaf::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.set(if v.unsigned_abs() <= EXACT_INT {
            Leaf::Num(v as f64)
        } else {
            Leaf::BigNum
        })
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.set(if v <= EXACT_INT {
            Leaf::Num(v as f64)
        } else {
            Leaf::BigNum
        })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        // serde_json reads floats correctly rounded; very long decimals
        // may be kept exactly by jaq, so huge magnitudes are left to it.
        self.set(if v.is_finite() && v.abs() < 1e15 {
            Leaf::Num(v)
        } else {
            Leaf::BigNum
        })
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.set(Leaf::Null)
    }
}

/// Finds an object key among a node's field children without allocating.
struct KeyLookup<'a>(&'a [(String, usize)]);

impl<'de> DeserializeSeed<'de> for KeyLookup<'_> {
    type Value = Option<usize>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyLookup<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().find(|(k, _)| k == key).map(|&(_, n)| n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::expr::Jq;
    use crate::jq::parse_json;

    const CONDITIONS: &[&str] = &[
        ".data.free < 10",
        ".data.free <= 10 and .data.host == \"a\"",
        ".data.host != \"a\" or .data.free > 50",
        "(.data.free >= 10 | not)",
        ".data.flag",
        ".data.flag | not",
        ".data.list[1] == 2",
        ".data.list[0].k == \"v\"",
        ".data.host.x == 1",
        ".data.free.x",
        ".data[0]",
        ".data.missing.deeper == null",
        ".data.missing < 0",
        "-5 < .data.free",
        ".data.free == 1.5 or .data.free == 1e300",
        ".data.big > 9007199254740992",
        ".data.o == .data.o2",
        ".data.list > 3",
        "\"\\u00e9t\\u00e9\" == .data.host",
        ".schema == \"iglu:com.acme/x/jsonschema/1-0-0\" and .data.free < 10",
        ".[\"data\"].free > 5",
        "true and .data.flag",
        "false or null",
        ".data.free + 1 > 10",
        "(.data.free > 10) and (.data.host | length > 0)",
    ];

    const EVENTS: &[&str] = &[
        r#"{"schema":"iglu:com.acme/x/jsonschema/1-0-0","data":{"free":5,"host":"a","flag":true,"list":[1,2,3]}}"#,
        r#"{"data":{"free":55,"host":"b","flag":false,"list":[{"k":"v"}]}}"#,
        r#"{"data":{"free":10.0,"host":"été","flag":null,"o":{"a":1},"o2":{"a":1}}}"#,
        r#"{"data":{"free":"5","host":7,"list":"abc"}}"#,
        r#"{"data":{"free":1.5,"big":9007199254740993,"host":{"x":1}}}"#,
        r#"{"data":[1,2]}"#,
        r#"{"data":null}"#,
        r#"{"other":1}"#,
        r#"{"data":{"free":5},"data":{"free":50,"host":"a"}}"#,
        r#"{"data":{"free":-7,"host":"a","flag":0,"list":null}}"#,
        r#"{"data":{"free":1e300,"host":"a\"b"}}"#,
    ];

    /// The prefilter never says "false" where jq says anything else.
    #[test]
    fn agrees_with_jq() {
        let mut pf = Prefilter::new(CONDITIONS.iter().copied());
        assert!(pf.is_useful());
        let jqs: Vec<Jq> = CONDITIONS.iter().map(|c| Jq::compile(c).unwrap()).collect();
        let mut judged = Vec::new();
        let mut decided = 0;
        for ev in EVENTS {
            assert!(pf.judge(ev.as_bytes(), &mut judged), "{ev}");
            let val = parse_json(ev.as_bytes()).unwrap();
            for ((c, jq), t) in CONDITIONS.iter().zip(&jqs).zip(&judged) {
                let real = jq.matches(&val);
                match t {
                    Tri::False => assert_eq!(real, Ok(false), "{c} on {ev}"),
                    Tri::True => assert_eq!(real, Ok(true), "{c} on {ev}"),
                    Tri::Unknown => continue,
                }
                decided += 1;
            }
        }
        // And it does judge most of these.
        assert!(
            decided > CONDITIONS.len() * EVENTS.len() / 2,
            "only {decided} judged"
        );
    }

    #[test]
    fn leaves_the_hard_cases_to_jq() {
        let mut pf = Prefilter::new([
            ".data.free + 1 > 10",
            ".data.host | test(\"a\")",
            ".data.x.y == 1",
        ]);
        let mut out = Vec::new();
        assert!(pf.judge(br#"{"data":{"free":1,"host":"a","x":"s"}}"#, &mut out));
        assert_eq!(out, [Tri::Unknown, Tri::Unknown, Tri::Unknown]);
        assert!(!pf.judge(b"{oops", &mut out));
        assert!(!pf.judge(b"[1]", &mut out));
        assert!(!Prefilter::new(["map(.)"]).is_useful());
    }

    /// A line the shared JSON rule refuses is never judged, wherever the
    /// fault is: in a value the rules look at or in one they skip.
    #[test]
    fn refuses_what_the_json_rule_refuses() {
        let mut pf = Prefilter::new([".data.free < 10"]);
        let mut out = Vec::new();
        let deep = format!(
            r#"{{"data":{{"free":50}},"x":{}1{}}}"#,
            "[".repeat(json::MAX_DEPTH),
            "]".repeat(json::MAX_DEPTH)
        );
        let bad: [&[u8]; 6] = [
            b"{\"data\":{\"free\":50,\"host\":\"a\xff\"}}",
            b"{\"data\":{\"free\":50},\"x\xfe\":1}",
            br#"{"data":{"free":50,"host":"\ud800"}}"#,
            br#"{"data":{"free":50,"n":1e400}}"#,
            br#"{"data":{"free":50},"n":[-1e999]}"#,
            deep.as_bytes(),
        ];
        for line in bad {
            assert!(
                !pf.judge(line, &mut out),
                "{}",
                String::from_utf8_lossy(line)
            );
            assert_eq!(out, [Tri::Unknown]);
            assert!(json::check_value(line).is_err());
        }
        // Just inside the rule: judged.
        let ok = format!(
            r#"{{"data":{{"free":50,"host":"\ud83d\ude00","n":1e308}},"x":{}1{}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(pf.judge(ok.as_bytes(), &mut out));
        assert_eq!(out, [Tri::False]);
    }

    #[test]
    fn judges_the_common_forms() {
        let mut pf = Prefilter::new([
            ".data.free < 10",
            "(.data.free >= 10 | not)",
            ".data.flag | not",
            ".data.host == \"a\" and .data.free > 1",
            ".data.missing.deeper",
            ".data.host.x == 1",
        ]);
        let mut out = Vec::new();
        assert!(pf.judge(br#"{"data":{"free":50,"host":"a","flag":true}}"#, &mut out));
        use Tri::*;
        assert_eq!(out, [False, False, False, True, False, Unknown]);
    }
}
