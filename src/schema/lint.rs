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
            let mut breaks = Vec::new();
            match (old, new) {
                (Some(Parsed::Json(a)), Some(Parsed::Json(b))) => {
                    json_narrowings(a, b, "", &mut breaks)
                }
                (Some(Parsed::Avro(a)), Some(Parsed::Avro(b))) => {
                    avro_narrowings(a, b, "", &mut breaks)
                }
                _ => {}
            }
            for b in breaks {
                report.problems.push(Problem {
                    path: new_path.clone(),
                    message: format!("{new_v} is an ADDITION to {old_v} but {b}; an ADDITION must accept every datum {old_v} accepts (make it {}-{}-0 or {}-0-0)",
                        old_v.model, old_v.revision + 1, old_v.model + 1),
                });
            }
        }
    }
    report.problems.sort_by(|a, b| a.path.cmp(&b.path));
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

/// Every way `new` accepts less than `old`, as readable phrases.
fn json_narrowings(old: &Value, new: &Value, at: &str, out: &mut Vec<String>) {
    let here = if at.is_empty() {
        "the data".to_string()
    } else {
        format!("{at:?}")
    };
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        if old != new
            && new != &Value::Bool(true)
            && !(new.as_object().is_some_and(|n| n.is_empty()))
        {
            out.push(format!("it changes the schema of {here}"));
        }
        return;
    };
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
                out.push(format!("{here} no longer accepts type {t}"));
            }
        }
    }
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
            Some(new_schema) => json_narrowings(old_schema, new_schema, &path, out),
            None => out.push(format!("it removes the property {path:?}")),
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
            out.push(format!(
                "it adds the required property {:?}",
                format!("{at}.{r}")
            ));
        }
    }
    // additionalProperties
    match (o.get("additionalProperties"), n.get("additionalProperties")) {
        (_, None) | (_, Some(Value::Bool(true))) | (Some(Value::Bool(false)), _) => {}
        (None | Some(Value::Bool(true)), Some(_)) => {
            out.push(format!("{here} restricts additional properties"))
        }
        (Some(a), Some(b)) => json_narrowings(a, b, &format!("{at}.*"), out),
    }
    // items
    if let (Some(a), Some(b)) = (o.get("items"), n.get("items")) {
        json_narrowings(a, b, &format!("{at}[]"), out);
    } else if o.get("items").is_none()
        && n.get("items").is_some()
        && n.get("items") != Some(&Value::Bool(true))
    {
        out.push(format!("{here} adds a schema for array items"));
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
        let (a, b) = (
            o.get(kw).and_then(Value::as_f64),
            n.get(kw).and_then(Value::as_f64),
        );
        match (a, b) {
            (None, Some(b)) => out.push(format!("{here} adds {kw} {b}")),
            (Some(a), Some(b)) if (lower && b > a) || (!lower && b < a) => {
                out.push(format!("{here} narrows {kw} from {a} to {b}"))
            }
            _ => {}
        }
    }
    // enum: every old value is kept
    match (
        o.get("enum").and_then(Value::as_array),
        n.get("enum").and_then(Value::as_array),
    ) {
        (None, Some(_)) => out.push(format!("{here} adds an enum")),
        (Some(a), Some(b)) => {
            for v in a {
                if !b.contains(v) {
                    out.push(format!("{here} removes the enum value {v}"));
                }
            }
        }
        _ => {}
    }
    // keywords that narrow whenever they appear or change
    let handled = [
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
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
    ];
    for (kw, b) in n {
        if handled.contains(&kw.as_str()) || ANNOTATIONS.contains(&kw.as_str()) {
            continue;
        }
        match o.get(kw) {
            None if kw == "uniqueItems" && b == &Value::Bool(false) => {}
            None => out.push(format!("{here} adds {kw}")),
            Some(a) if a != b => out.push(format!("{here} changes {kw}")),
            _ => {}
        }
    }
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
        let mut out = Vec::new();
        json_narrowings(&old, &new, "", &mut out);
        out
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
                "\".c\" removes the enum value \"y\"",
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
