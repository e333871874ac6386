//! `validate --lint`: checks a static registry. Every file sits at
//! `VENDOR/NAME/FORMAT/VERSION` and compiles; its `self` block matches that
//! place; versions follow one another (no gaps); and each ADDITION keeps
//! SchemaVer's promise to the version before it: it breaks no datum that
//! version accepted — it adds no required property and removes or narrows
//! nothing. A change that does break data must be a REVISION or a MODEL.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use apache_avro::schema::Schema as Avro;
use serde_json::Value;

use super::registry::{Fetched, Resolver, Source};
use super::{check_self, Compiled};
use crate::event::{IgluUri, SchemaVer};

/// One problem found in a registry.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The file (or directory) it is about.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// What linting a registry found.
#[derive(Debug, Default)]
pub struct Report {
    /// Schemas checked.
    pub schemas: usize,
    /// Every problem, in path order.
    pub problems: Vec<Problem>,
    /// Changes in an ADDITION that lint cannot judge (whether some datum
    /// the version before accepted is now rejected), in path order.
    pub cannot_tell: Vec<Problem>,
}

/// A schema family: vendor, name and format.
type Family = (String, String, String);

/// One version of a family: where it is and, when it compiled, the schema.
type Member = (SchemaVer, PathBuf, Option<Parsed>);

/// Lints the registry at `root`.
pub fn lint(root: &Path) -> Result<Report> {
    let resolver = Arc::new(Resolver::from_dirs(&[root.to_path_buf()]));
    let mut report = Report::default();
    let mut families: BTreeMap<Family, Vec<Member>> = BTreeMap::new();
    for (path, parts) in walk(root, &mut report.problems)? {
        let [vendor, name, format, version] = &parts;
        let key = match IgluUri::parse(&format!("iglu:{vendor}/{name}/{format}/{version}")) {
            Ok(k) => k,
            Err(e) => {
                report.problems.push(Problem {
                    path,
                    message: format!("is not at VENDOR/NAME/FORMAT/VERSION: {e}"),
                });
                continue;
            }
        };
        report.schemas += 1;
        let parsed = check_one(root, &path, &key, resolver.clone(), &mut report.problems);
        families
            .entry((key.vendor.clone(), key.name.clone(), key.format.clone()))
            .or_default()
            .push((key.version, path, parsed));
    }
    for versions in families.values_mut() {
        versions.sort_by_key(|(v, _, _)| *v);
        for pair in versions.windows(2) {
            let (old_v, _, old) = &pair[0];
            let (new_v, new_path, new) = &pair[1];
            let step = step(*old_v, *new_v);
            if step == Step::Gap {
                report.problems.push(Problem {
                    path: new_path.clone(),
                    message: format!("version {new_v} does not follow {old_v}: the next is {}-{}-{}, {}-{}-0 or {}-0-0",
                        old_v.model, old_v.revision, old_v.addition + 1, old_v.model, old_v.revision + 1, old_v.model + 1),
                });
            }
            if step != Step::Addition {
                continue;
            }
            let mut found = Found::default();
            match (old, new) {
                (Some(Parsed::Json(a)), Some(Parsed::Json(b))) => {
                    let cx = Cx {
                        draft: super::json::draft_of(b),
                    };
                    json_narrowings(a, b, "", &cx, &mut found)
                }
                (Some(Parsed::Avro(a)), Some(Parsed::Avro(b))) => {
                    avro_narrowings(a, b, "", &mut found.breaks)
                }
                _ => {}
            }
            let next = format!(
                "{}-{}-0 or {}-0-0",
                old_v.model,
                old_v.revision + 1,
                old_v.model + 1
            );
            for b in found.breaks {
                report.problems.push(Problem {
                    path: new_path.clone(),
                    message: format!("{new_v} is an ADDITION to {old_v} but {b}; an ADDITION must accept every datum {old_v} accepts (make it {next})"),
                });
            }
            for u in found.unsure {
                report.cannot_tell.push(Problem {
                    path: new_path.clone(),
                    message: format!("{new_v} is an ADDITION to {old_v} and {u}; lint cannot tell whether every datum {old_v} accepts is still accepted (check it; if not, make it {next})"),
                });
            }
        }
    }
    report.problems.sort_by(|a, b| a.path.cmp(&b.path));
    report.cannot_tell.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(report)
}

enum Parsed {
    Json(Value),
    Avro(Avro),
}

fn check_one(
    root: &Path,
    path: &Path,
    key: &IgluUri,
    resolver: Arc<Resolver>,
    problems: &mut Vec<Problem>,
) -> Option<Parsed> {
    let mut problem = |m: String| {
        problems.push(Problem {
            path: path.to_path_buf(),
            message: m,
        })
    };
    let text = match Source::dir(root).fetch(key) {
        Fetched::Found(t) => t,
        Fetched::Missing => {
            problem("cannot be read: it is gone".into());
            return None;
        }
        Fetched::Error(e) => {
            problem(format!("cannot be read: {e}"));
            return None;
        }
    };
    if key.format == "jsonschema" {
        if let Ok(value) = serde_json::from_str::<Value>(&text) {
            if let Err(e) = check_self(&value, key) {
                problem(format!("{key} {e}"));
            }
        }
    }
    match Compiled::compile(&text, key, resolver) {
        Ok(Compiled::Json(_)) => serde_json::from_str(&text).ok().map(Parsed::Json),
        Ok(Compiled::Avro(a)) => Some(Parsed::Avro(a.schema().clone())),
        Err(e) => {
            // A self mismatch is reported above, once.
            if !(key.format == "jsonschema" && e.0.starts_with("does not match its place")
                || e.0.starts_with("has no \"self\""))
            {
                problem(format!("{key} {e}"));
            }
            None
        }
    }
}

fn walk(root: &Path, problems: &mut Vec<Problem>) -> Result<Vec<(PathBuf, [String; 4])>> {
    let mut out = Vec::new();
    fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read registry directory {}", dir.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        v.sort();
        Ok(v)
    }
    fn name(p: &Path) -> String {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
    // What is at `p`, links not followed: the registry serves none.
    fn kind(p: &Path) -> Option<std::fs::FileType> {
        std::fs::symlink_metadata(p).ok().map(|m| m.file_type())
    }
    let is_dir = |p: &Path| kind(p).is_some_and(|k| k.is_dir());
    let refuse_link = |p: &Path, problems: &mut Vec<Problem>| -> bool {
        let link = kind(p).is_some_and(|k| k.is_symlink());
        if link {
            problems.push(Problem {
                path: p.to_path_buf(),
                message: "is a symbolic link; a registry serves only regular files inside it and never follows links".into(),
            });
        }
        link
    };
    for vendor in entries(root)? {
        if refuse_link(&vendor, problems) {
            continue;
        }
        if !is_dir(&vendor) {
            if !name(&vendor).starts_with('.') {
                problems.push(Problem {
                    path: vendor,
                    message: "is not at VENDOR/NAME/FORMAT/VERSION".into(),
                });
            }
            continue;
        }
        for schema in entries(&vendor)? {
            if refuse_link(&schema, problems) {
                continue;
            }
            for format in if is_dir(&schema) {
                entries(&schema)?
            } else {
                vec![schema.clone()]
            } {
                if refuse_link(&format, problems) {
                    continue;
                }
                for version in if is_dir(&format) {
                    entries(&format)?
                } else {
                    vec![format.clone()]
                } {
                    if refuse_link(&version, problems) {
                        continue;
                    }
                    if kind(&version).is_some_and(|k| k.is_file())
                        && version.parent() == Some(format.as_path())
                        && format.parent() == Some(schema.as_path())
                    {
                        out.push((
                            version.clone(),
                            [name(&vendor), name(&schema), name(&format), name(&version)],
                        ));
                    } else {
                        problems.push(Problem {
                            path: version,
                            message: "is not a schema file at VENDOR/NAME/FORMAT/VERSION".into(),
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

#[derive(Debug, PartialEq, Eq)]
enum Step {
    Addition,
    Revision,
    Model,
    Gap,
}

fn step(a: SchemaVer, b: SchemaVer) -> Step {
    if b.model == a.model && b.revision == a.revision && b.addition == a.addition + 1 {
        Step::Addition
    } else if b.model == a.model && b.revision == a.revision + 1 && b.addition == 0 {
        Step::Revision
    } else if b.model == a.model + 1 && b.revision == 0 && b.addition == 0 {
        Step::Model
    } else {
        Step::Gap
    }
}

/// Keywords that only annotate: changing them changes no verdict.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "self",
    "$id",
    "id",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// What comparing two versions found: changes that reject data the old
/// version accepted, and changes lint cannot judge either way.
#[derive(Debug, Default)]
struct Found {
    breaks: Vec<String>,
    unsure: Vec<String>,
}

/// The draft both versions are read in (for checking values against a piece
/// of the new schema).
struct Cx {
    draft: jsonschema::Draft,
}

/// The JSON types a schema's `type` allows, when it says.
fn types(schema: &Value) -> Option<Vec<String>> {
    match schema.get("type")? {
        Value::String(t) => Some(vec![t.clone()]),
        Value::Array(ts) => Some(
            ts.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect(),
        ),
        _ => None,
    }
}

/// A schema as a place, for messages.
fn place(at: &str) -> String {
    if at.is_empty() {
        "the data".to_string()
    } else {
        format!("{at:?}")
    }
}

/// Every way `new` accepts less than `old`, judged by what `old` accepted:
/// a change is a break only when some datum `old` accepts is rejected;
/// where that cannot be shown either way it is "cannot tell".
fn json_narrowings(old: &Value, new: &Value, at: &str, cx: &Cx, out: &mut Found) {
    let here = place(at);
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        if old != new
            && new != &Value::Bool(true)
            && !(new.as_object().is_some_and(|n| n.is_empty()))
        {
            out.breaks.push(format!("it changes the schema of {here}"));
        }
        return;
    };
    // An enum (or const) before: the old version accepted those values
    // only, so the new one keeps its promise exactly when it accepts each.
    let listed = match (o.get("enum"), o.get("const")) {
        (Some(Value::Array(values)), _) => Some(values.clone()),
        (_, Some(value)) => Some(vec![value.clone()]),
        _ => None,
    };
    if let Some(values) = listed {
        let accepted_before = super::json::fragment_validator(old, cx.draft);
        let values: Vec<&Value> = values
            .iter()
            .filter(|v| accepted_before.as_ref().is_none_or(|a| a.is_valid(v)))
            .collect();
        match super::json::fragment_validator(new, cx.draft) {
            Some(now) => {
                for v in values.into_iter().filter(|v| !now.is_valid(v)) {
                    out.breaks
                        .push(format!("{here} no longer accepts the value {v}"));
                }
            }
            None if old != new => out.unsure.push(format!(
                "{here} was a list of values, and its new schema cannot be checked on its own (it has a $ref)"
            )),
            None => {}
        }
        return;
    }
    // type: every type accepted before is still accepted.
    if let Some(new_types) = types(new) {
        let old_types = types(old).unwrap_or_else(|| {
            ["null", "boolean", "object", "array", "number", "string"]
                .map(String::from)
                .to_vec()
        });
        for t in old_types {
            let kept = new_types.contains(&t)
                || (t == "integer" && new_types.iter().any(|x| x == "number"));
            if !kept {
                out.breaks
                    .push(format!("{here} no longer accepts type {t}"));
            }
        }
    }
    // An object with at most 0 properties before: whatever the new version
    // says about members, `{}` has none.
    let no_members = o.get("maxProperties").and_then(Value::as_u64) == Some(0);
    // properties
    let empty = serde_json::Map::new();
    let op = o
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let np = n
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (name, old_schema) in op {
        let path = format!("{at}.{name}");
        match np.get(name) {
            Some(new_schema) => json_narrowings(old_schema, new_schema, &path, cx, out),
            None => out.breaks.push(format!("it removes the property {path:?}")),
        }
    }
    // required
    let req = |s: &serde_json::Map<String, Value>| -> Vec<String> {
        s.get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let old_req = req(o);
    for r in req(n) {
        if !old_req.contains(&r) {
            out.breaks.push(format!(
                "it adds the required property {:?}",
                format!("{at}.{r}")
            ));
        }
    }
    // additionalProperties
    match (o.get("additionalProperties"), n.get("additionalProperties")) {
        _ if no_members => {}
        (_, None) | (_, Some(Value::Bool(true))) | (Some(Value::Bool(false)), _) => {}
        (None | Some(Value::Bool(true)), Some(_)) => out
            .breaks
            .push(format!("{here} restricts additional properties")),
        (Some(a), Some(b)) => json_narrowings(a, b, &format!("{at}.*"), cx, out),
    }
    // items
    if let (Some(a), Some(b)) = (o.get("items"), n.get("items")) {
        json_narrowings(a, b, &format!("{at}[]"), cx, out);
    } else if o.get("items").is_none()
        && n.get("items").is_some()
        && n.get("items") != Some(&Value::Bool(true))
    {
        out.breaks
            .push(format!("{here} adds a schema for array items"));
    }
    // bounds
    for (kw, lower) in [
        ("minimum", true),
        ("exclusiveMinimum", true),
        ("minLength", true),
        ("minItems", true),
        ("minProperties", true),
        ("maximum", false),
        ("exclusiveMaximum", false),
        ("maxLength", false),
        ("maxItems", false),
        ("maxProperties", false),
    ] {
        let (Some(b), a) = (n.get(kw), o.get(kw)) else {
            continue;
        };
        if kw == "maxLength"
            && b.as_u64()
                .is_some_and(|b| max_length(o).is_some_and(|m| m <= b))
        {
            // The old pattern, format or enum already kept strings this short.
            continue;
        }
        match a {
            None => out.breaks.push(format!("{here} adds {kw} {b}")),
            Some(a) if narrower(a, b, lower) => out
                .breaks
                .push(format!("{here} narrows {kw} from {a} to {b}")),
            _ => {}
        }
    }
    // enum: the old version had none (an old enum is judged above).
    if n.get("enum").is_some() {
        out.breaks.push(format!("{here} adds an enum"));
    }
    // Branches: judged pair by pair when their number is kept.
    for kw in ["anyOf", "oneOf", "allOf"] {
        if let Some(change) = branches(kw, o, n, at, cx, out) {
            out.unsure.push(format!("{here} {change} {kw}"));
        }
    }
    // keywords that narrow whenever they appear or change
    let handled = [
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "minimum",
        "exclusiveMinimum",
        "minLength",
        "minItems",
        "minProperties",
        "maximum",
        "exclusiveMaximum",
        "maxLength",
        "maxItems",
        "maxProperties",
        "anyOf",
        "oneOf",
        "allOf",
    ];
    // Keywords about an object's members, which `{}` satisfies.
    let members = [
        "patternProperties",
        "propertyNames",
        "dependencies",
        "dependentRequired",
        "dependentSchemas",
    ];
    for (kw, b) in n {
        if handled.contains(&kw.as_str())
            || ANNOTATIONS.contains(&kw.as_str())
            || (no_members && members.contains(&kw.as_str()))
        {
            continue;
        }
        match o.get(kw) {
            None if kw == "uniqueItems" && b == &Value::Bool(false) => {}
            None => out.breaks.push(format!("{here} adds {kw}")),
            Some(a) if a != b => out.breaks.push(format!("{here} changes {kw}")),
            _ => {}
        }
    }
}

/// True when bound `b` (new) admits less than `a` (old): a lower bound that
/// rose or an upper bound that fell. Integers compare exactly.
fn narrower(a: &Value, b: &Value, lower: bool) -> bool {
    let ordering = match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
        (Some(x), Some(y), _, _) => x.cmp(&y),
        (_, _, Some(x), Some(y)) => x.cmp(&y),
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
            _ => return false,
        },
    };
    if lower {
        ordering.is_lt()
    } else {
        ordering.is_gt()
    }
}

/// The longest string (in characters) a schema accepts, when its pattern
/// (anchored at both ends), its format, its enum or its own maxLength says.
fn max_length(schema: &serde_json::Map<String, Value>) -> Option<u64> {
    let mut bounds = Vec::new();
    if let Some(m) = schema.get("maxLength").and_then(Value::as_u64) {
        bounds.push(m);
    }
    if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
        bounds.extend(pattern_max_length(p));
    }
    // Formats whose strings have a fixed longest form.
    match schema.get("format").and_then(Value::as_str) {
        Some("uuid") => bounds.push(36),
        Some("ipv4") => bounds.push(15),
        Some("date") => bounds.push(10),
        _ => {}
    }
    bounds.into_iter().min()
}

/// The longest match of `pattern` in characters, when the pattern is
/// anchored at both ends (so it bounds the whole string). The bound is in
/// UTF-8 bytes, never fewer than the characters.
fn pattern_max_length(pattern: &str) -> Option<u64> {
    use regex_syntax::hir::Look;
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(pattern)
        .ok()?;
    let props = hir.properties();
    if !props.look_set_prefix().contains(Look::Start)
        || !props.look_set_suffix().contains(Look::End)
    {
        return None;
    }
    props.maximum_len().map(|m| m as u64)
}

/// Compares `kw`'s branches, old against new. `allOf` pairs are compared
/// in order, and what breaks in one breaks the whole. For `anyOf` and
/// `oneOf` every old branch must be covered by a new one that accepts all
/// it did; a narrowed branch may still be covered by another, so it is
/// "cannot tell". `oneOf` also rejects data two branches accept, so widened
/// or added branches are safe only when the new branches exclude one
/// another. Returns the change lint cannot judge, if any.
fn branches(
    kw: &str,
    o: &serde_json::Map<String, Value>,
    n: &serde_json::Map<String, Value>,
    at: &str,
    cx: &Cx,
    out: &mut Found,
) -> Option<&'static str> {
    let (a, b) = (o.get(kw), n.get(kw));
    if a == b {
        return None;
    }
    let (Some(Value::Array(a)), Some(Value::Array(b))) = (a, b) else {
        return match (a, b) {
            (_, None) => None,
            (None, Some(_)) => Some("adds"),
            _ => Some("changes"),
        };
    };
    if kw == "allOf" {
        if a.len() != b.len() {
            return Some("changes the branches of");
        }
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            json_narrowings(x, y, &format!("{at}({kw} {i})"), cx, out);
        }
        return None;
    }
    // Each old branch needs a new one that accepts all it did: the one at
    // the same place, else any.
    let covers = |x: &Value, y: &Value| {
        let mut f = Found::default();
        json_narrowings(x, y, at, cx, &mut f);
        f.breaks.is_empty() && f.unsure.is_empty()
    };
    let covered = a
        .iter()
        .enumerate()
        .all(|(i, x)| b.get(i).is_some_and(|y| covers(x, y)) || b.iter().any(|y| covers(x, y)));
    if !covered {
        if a.len() == b.len() {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                let mut inner = Found::default();
                json_narrowings(x, y, &format!("{at}({kw} {i})"), cx, &mut inner);
                out.unsure.append(&mut inner.unsure);
                out.unsure.extend(
                    inner
                        .breaks
                        .into_iter()
                        .map(|b| format!("{b} (another branch may still accept what it did)")),
                );
            }
            return None;
        }
        return Some("changes the branches of");
    }
    // oneOf also rejects a datum two branches accept: widened or added
    // branches keep every old datum only when no two new branches overlap.
    let same = a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_modulo_annotations(x, y));
    let object_only = types(&Value::Object(o.clone())).is_some_and(|t| t == ["object"]);
    if kw == "oneOf" && !same && !pairwise_exclusive(b, object_only) {
        return Some("widens or adds branches that may now overlap in");
    }
    None
}

/// Equal apart from keywords that only annotate.
fn same_modulo_annotations(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keep = |m: &serde_json::Map<String, Value>| -> Vec<(String, Value)> {
                m.iter()
                    .filter(|(k, _)| !ANNOTATIONS.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            };
            let (kx, ky) = (keep(x), keep(y));
            kx.len() == ky.len()
                && kx.iter().all(|(k, v)| {
                    ky.iter()
                        .find(|(l, _)| l == k)
                        .is_some_and(|(_, w)| same_modulo_annotations(v, w))
                })
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same_modulo_annotations(v, w))
        }
        _ => a == b,
    }
}

/// True when no datum can satisfy two of `branches`: every pair is told
/// apart by type, or (for objects) by a required property the other
/// branch forbids or gives other values.
fn pairwise_exclusive(branches: &[Value], object_only: bool) -> bool {
    let apart = |x: &Value, y: &Value| -> bool {
        if let (Some(tx), Some(ty)) = (types(x), types(y)) {
            let number = |t: &String| t == "number" || t == "integer";
            if !tx
                .iter()
                .any(|t| ty.contains(t) || (number(t) && ty.iter().any(number)))
            {
                return true;
            }
        }
        let objects = object_only
            || (types(x).is_some_and(|t| t == ["object"])
                && types(y).is_some_and(|t| t == ["object"]));
        objects && (forbids_required(x, y) || forbids_required(y, x))
    };
    branches
        .iter()
        .enumerate()
        .all(|(i, x)| branches[i + 1..].iter().all(|y| apart(x, y)))
}

/// True when `x` requires a property that `y` does not allow: `y` is closed
/// and does not list it, or gives it values `x`'s never take.
fn forbids_required(x: &Value, y: &Value) -> bool {
    let Some(required) = x.get("required").and_then(Value::as_array) else {
        return false;
    };
    let y_props = y.get("properties").and_then(Value::as_object);
    let closed = y.get("additionalProperties") == Some(&Value::Bool(false))
        && y.get("patternProperties").is_none();
    required.iter().filter_map(Value::as_str).any(|r| {
        let listed = y_props.and_then(|p| p.get(r));
        match listed {
            None => closed,
            Some(Value::Bool(false)) => true,
            Some(ys) => {
                let values = |s: Option<&Value>| -> Option<Vec<Value>> {
                    let s = s?;
                    match (s.get("enum"), s.get("const")) {
                        (Some(Value::Array(v)), _) => Some(v.clone()),
                        (_, Some(c)) => Some(vec![c.clone()]),
                        _ => None,
                    }
                };
                let xs = x.get("properties").and_then(|p| p.get(r));
                match (values(xs), values(Some(ys))) {
                    (Some(a), Some(b)) => !a.iter().any(|v| b.contains(v)),
                    _ => false,
                }
            }
        }
    })
}

fn avro_kind(s: &Avro) -> String {
    format!("{:?}", apache_avro::schema::SchemaKind::from(s))
}

/// Every way `new` accepts less than `old`, for Avro data in JSON.
fn avro_narrowings(old: &Avro, new: &Avro, at: &str, out: &mut Vec<String>) {
    let here = if at.is_empty() {
        "the data".to_string()
    } else {
        format!("{at:?}")
    };
    match (old, new) {
        (Avro::Record(a), Avro::Record(b)) => {
            for f in &a.fields {
                let path = format!("{at}.{}", f.name);
                match b.lookup.get(&f.name) {
                    Some(&i) => avro_narrowings(&f.schema, &b.fields[i].schema, &path, out),
                    None => out.push(format!("it removes the field {path:?}")),
                }
            }
            for f in &b.fields {
                if !a.lookup.contains_key(&f.name) && f.default.is_none() {
                    out.push(format!(
                        "it adds the field {:?} without a default (a required property)",
                        format!("{at}.{}", f.name)
                    ));
                }
            }
        }
        (Avro::Enum(a), Avro::Enum(b)) => {
            for s in &a.symbols {
                if !b.symbols.contains(s) {
                    out.push(format!("{here} removes the enum symbol {s:?}"));
                }
            }
        }
        (Avro::Fixed(a), Avro::Fixed(b)) if a.size != b.size => out.push(format!(
            "{here} changes the fixed size from {} to {}",
            a.size, b.size
        )),
        (Avro::Array(a), Avro::Array(b)) => {
            avro_narrowings(&a.items, &b.items, &format!("{at}[]"), out)
        }
        (Avro::Map(a), Avro::Map(b)) => {
            avro_narrowings(&a.types, &b.types, &format!("{at}.*"), out)
        }
        (Avro::Union(a), Avro::Union(b)) => {
            for v in a.variants() {
                match b
                    .variants()
                    .iter()
                    .find(|w| avro_kind(w) == avro_kind(v) && same_name(v, w))
                {
                    Some(w) => avro_narrowings(v, w, at, out),
                    None => out.push(format!(
                        "{here} removes the union branch {}",
                        avro_kind(v).to_lowercase()
                    )),
                }
            }
        }
        (a, Avro::Union(b)) => {
            // Widening a type into a union changes its JSON encoding
            // (`{"type": value}`), so old data no longer reads.
            let _ = b;
            out.push(format!(
                "{here} turns a {} into a union, which changes its JSON encoding",
                avro_kind(a).to_lowercase()
            ));
        }
        (Avro::Ref { name: a }, Avro::Ref { name: b }) if a == b => {}
        (a, b) if avro_kind(a) != avro_kind(b) => out.push(format!(
            "{here} changes type from {} to {}",
            avro_kind(a).to_lowercase(),
            avro_kind(b).to_lowercase()
        )),
        _ => {}
    }
}

fn same_name(a: &Avro, b: &Avro) -> bool {
    match (a.name(), b.name()) {
        (Some(x), Some(y)) => x == y,
        (None, None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn narrowings(old: Value, new: Value) -> Vec<String> {
        found(old, new).breaks
    }

    fn found(old: Value, new: Value) -> Found {
        let mut out = Found::default();
        let cx = Cx {
            draft: jsonschema::Draft::Draft4,
        };
        json_narrowings(&old, &new, "", &cx, &mut out);
        out
    }

    #[test]
    fn judged_by_what_the_old_version_accepted() {
        use serde_json::json;
        // A type added to an enum of that type's values, a maxLength the
        // old enum or anchored pattern already kept to.
        let old = json!({"properties":{
            "e":{"enum":["get","post"]},
            "f":{"type":"string","enum":["Desktop","Phone"]},
            "p":{"type":"string","pattern":"^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$|^[0-9a-f]{16}$"},
            "o":{"type":"object","maxProperties":0}}});
        let new = json!({"properties":{
            "e":{"type":["string","null"],"enum":["get","post",null]},
            "f":{"type":"string","maxLength":128},
            "p":{"type":"string","maxLength":36},
            "o":{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}}});
        let got = found(old, new);
        assert_eq!(got.breaks, Vec::<String>::new());
        assert_eq!(got.unsure, Vec::<String>::new());
        // ... but not where it did not.
        let old = json!({"properties":{"e":{"enum":["get","post"]},"p":{"type":"string","pattern":"^[a-z]+$"},
            "n":{"type":"integer"}}});
        let new = json!({"properties":{"e":{"type":"string","enum":["get"]},"p":{"type":"string","pattern":"^[a-z]+$","maxLength":36},
            "n":{"type":"integer","maximum":9223372036854775807u64}}});
        assert_eq!(
            found(old, new).breaks,
            [
                "\".e\" no longer accepts the value \"post\"",
                "\".p\" adds maxLength 36",
                "\".n\" adds maximum 9223372036854775807",
            ]
        );
    }

    #[test]
    fn branches_are_judged_pair_by_pair() {
        use serde_json::json;
        let closed = |extra: Value| {
            let mut props = json!({"uri":{"type":"string"}});
            props
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            json!({"properties":{"http":{"type":"object","properties":props,"required":["uri"],"additionalProperties":false}},
                "required":["http"],"additionalProperties":false})
        };
        let embedded = json!({"properties":{"embedded":{"type":"object"}},"required":["embedded"],"additionalProperties":false});
        let old = json!({"type":"object","oneOf":[embedded.clone(), closed(json!({}))]});
        let new = json!({"type":"object","oneOf":[embedded.clone(), closed(json!({"apikey":{"type":["string","null"]}}))]});
        let got = found(old.clone(), new.clone());
        assert_eq!((got.breaks.len(), got.unsure.len()), (0, 0), "{got:?}");
        let any = |v: &Value| json!({"anyOf": v["oneOf"]});
        let got = found(any(&old), any(&new));
        assert_eq!((got.breaks.len(), got.unsure.len()), (0, 0), "{got:?}");
        // Branches that may overlap once widened: cannot tell.
        let open = json!({"type":"object","oneOf":[{"properties":{"a":{"type":"string"}}},{"properties":{"b":{"type":"string"}},"additionalProperties":false}]});
        let wider = json!({"type":"object","oneOf":[{"properties":{"a":{"type":"string"}}},{"properties":{"b":{"type":"string"},"c":{}},"additionalProperties":false}]});
        let got = found(open, wider);
        assert_eq!(got.breaks, Vec::<String>::new());
        assert_eq!(
            got.unsure,
            ["the data widens or adds branches that may now overlap in oneOf"]
        );
        // A narrowed branch of anyOf may be covered by another: cannot tell.
        let got = found(
            json!({"anyOf":[{"type":"string"},{"type":"integer"}]}),
            json!({"anyOf":[{"type":"string","maxLength":3},{"type":"integer"}]}),
        );
        assert_eq!(got.breaks, Vec::<String>::new());
        assert_eq!(got.unsure.len(), 1, "{got:?}");
    }

    #[test]
    fn additions_that_keep_the_promise() {
        let old = serde_json::json!({"type":"object","properties":{"a":{"type":"string","maxLength":10}},"required":["a"],"additionalProperties":false});
        let new = serde_json::json!({"type":"object","description":"more","properties":{"a":{"type":["string","null"],"maxLength":20},"b":{"type":"integer"}},"required":["a"],"additionalProperties":false});
        assert_eq!(narrowings(old, new), Vec::<String>::new());
    }

    #[test]
    fn additions_that_break_it() {
        let old = serde_json::json!({"type":"object","properties":{"a":{"type":"string","maxLength":10},"c":{"enum":["x","y"]},"d":{}},"required":["a"]});
        let new = serde_json::json!({"type":"object","properties":{"a":{"type":"string","maxLength":5,"pattern":"^x"},"c":{"enum":["x"]},"b":{"type":"integer"}},"required":["a","b"],"additionalProperties":false});
        let got = narrowings(old, new);
        assert_eq!(
            got,
            [
                "\".a\" narrows maxLength from 10 to 5",
                "\".a\" adds pattern",
                "\".c\" no longer accepts the value \"y\"",
                "it removes the property \".d\"",
                "it adds the required property \".b\"",
                "the data restricts additional properties",
            ]
        );
    }

    #[test]
    fn steps_between_versions() {
        let v = |s: &str| s.parse::<SchemaVer>().unwrap();
        assert_eq!(step(v("1-0-0"), v("1-0-1")), Step::Addition);
        assert_eq!(step(v("1-0-3"), v("1-1-0")), Step::Revision);
        assert_eq!(step(v("1-2-3"), v("2-0-0")), Step::Model);
        assert_eq!(step(v("1-0-0"), v("1-0-2")), Step::Gap);
        assert_eq!(step(v("1-0-0"), v("1-1-1")), Step::Gap);
    }

    #[test]
    fn avro_additions() {
        let old = Avro::parse_str(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}}]}"#).unwrap();
        let good = Avro::parse_str(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}},{"name":"n","type":["null","long"],"default":null}]}"#).unwrap();
        let bad = Avro::parse_str(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"},{"name":"e","type":{"type":"enum","name":"E","symbols":["A"]}},{"name":"n","type":"long"}]}"#).unwrap();
        let mut out = Vec::new();
        avro_narrowings(&old, &good, "", &mut out);
        assert_eq!(out, Vec::<String>::new());
        avro_narrowings(&old, &bad, "", &mut out);
        assert_eq!(
            out,
            [
                "\".a\" changes type from string to long",
                "\".e\" removes the enum symbol \"B\"",
                "it adds the field \".n\" without a default (a required property)",
            ]
        );
    }
}
