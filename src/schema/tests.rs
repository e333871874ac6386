use std::path::Path;

use super::*;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn iglu(vendor: &str, name: &str, version: &str, body: &str) -> String {
    format!(
        r#"{{"$schema":"http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#",
            "self":{{"vendor":"{vendor}","name":"{name}","format":"jsonschema","version":"{version}"}},{body}}}"#
    )
}

fn kinds(r: Result<(), Vec<FailureMessage>>) -> Vec<String> {
    match r {
        Ok(()) => vec![],
        Err(m) => m.into_iter().map(|m| m.kind).collect(),
    }
}

fn registry() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "com.x/thing/jsonschema/1-0-0",
        &iglu(
            "com.x",
            "thing",
            "1-0-0",
            r#""type":"object","properties":{"id":{"type":"string","format":"uuid"},"n":{"type":"integer"}},"required":["id"],"additionalProperties":false"#,
        ),
    );
    dir
}

#[test]
fn each_kind_of_failure() {
    let dir = registry();
    let mut c = Checker::new(Resolver::from_dirs(&[dir.path().into()]));
    let ok = br#"{"schema":"iglu:com.x/thing/jsonschema/1-0-0","data":{"id":"5b0b4f0e-8d0a-4a8e-9d6e-2f7f1e7b8c11","n":1}}"#;
    assert_eq!(kinds(c.check(ok)), Vec::<String>::new());
    assert_eq!(kinds(c.check(b"")), ["empty_line"]);
    assert_eq!(kinds(c.check(b"{nope")), ["not_json"]);
    assert_eq!(kinds(c.check(b"\"\xff\"")), ["invalid_utf8"]);
    assert_eq!(kinds(c.check(b"[1]")), ["not_self_describing"]);
    assert_eq!(kinds(c.check(br#"{"data":{}}"#)), ["not_self_describing"]);
    assert_eq!(
        kinds(c.check(br#"{"schema":"iglu:com.x/thing/jsonschema/1-0","data":{}}"#)),
        ["not_self_describing"]
    );
    assert_eq!(
        kinds(c.check(br#"{"schema":"iglu:../../etc/passwd","data":{}}"#)),
        ["not_self_describing"]
    );
    assert_eq!(
        kinds(c.check(br#"{"schema":"iglu:com.x/thing/jsonschema/1-0-0"}"#)),
        ["not_self_describing"]
    );
    assert_eq!(
        kinds(c.check(br#"{"schema":"iglu:com.x/other/jsonschema/1-0-0","data":{}}"#)),
        ["schema_not_found"]
    );
    let bad =
        br#"{"schema":"iglu:com.x/thing/jsonschema/1-0-0","data":{"id":"nope","n":1.5,"x":1}}"#;
    let errors = c.check(bad).unwrap_err();
    let got: Vec<(String, Value)> = errors
        .iter()
        .map(|m| {
            (
                m.kind.clone(),
                serde_json::json!([m.detail["instance_path"], m.detail["keyword"]]),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("invalid".to_string(), serde_json::json!(["/id", "format"])),
            ("invalid".to_string(), serde_json::json!(["/n", "type"])),
            (
                "invalid".to_string(),
                serde_json::json!(["", "additionalProperties"])
            ),
        ]
    );
    assert_eq!(c.schemas().cached(), 4);
}

#[test]
fn self_must_match_the_place() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "com.x/a/jsonschema/1-0-0",
        &iglu("com.x", "b", "1-0-0", r#""type":"object""#),
    );
    write(
        dir.path(),
        "com.x/c/jsonschema/1-0-0",
        r#"{"$schema":"http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#","type":"object"}"#,
    );
    let mut c = Checker::new(Resolver::from_dirs(&[dir.path().into()]));
    let e = c
        .check(br#"{"schema":"iglu:com.x/a/jsonschema/1-0-0","data":{}}"#)
        .unwrap_err();
    assert_eq!(e[0].kind, "bad_schema");
    assert!(
        e[0].message.contains("self.name is \"b\""),
        "{}",
        e[0].message
    );
    let e = c
        .check(br#"{"schema":"iglu:com.x/c/jsonschema/1-0-0","data":{}}"#)
        .unwrap_err();
    assert!(e[0].message.contains("has no \"self\""), "{}", e[0].message);
}

#[test]
fn every_draft_and_the_formats() {
    let dir = tempfile::tempdir().unwrap();
    let drafts = [
        ("d4", "http://json-schema.org/draft-04/schema#"),
        ("d6", "http://json-schema.org/draft-06/schema#"),
        ("d7", "http://json-schema.org/draft-07/schema#"),
        ("d201909", "https://json-schema.org/draft/2019-09/schema"),
        ("d202012", "https://json-schema.org/draft/2020-12/schema"),
    ];
    for (name, meta) in drafts {
        write(
            dir.path(),
            &format!("com.x/{name}/jsonschema/1-0-0"),
            &format!(
                r#"{{"$schema":"{meta}","type":"object","properties":{{
                    "t":{{"type":"string","format":"date-time"}},"v4":{{"type":"string","format":"ipv4"}},
                    "v6":{{"type":"string","format":"ipv6"}},"u":{{"type":"string","format":"uuid"}},
                    "e":{{"type":"string","format":"email"}},"uri":{{"type":"string","format":"uri"}}}}}}"#
            ),
        );
    }
    let mut c = Checker::new(Resolver::from_dirs(&[dir.path().into()]));
    for (name, _) in drafts {
        let good = format!(
            r#"{{"schema":"iglu:com.x/{name}/jsonschema/1-0-0","data":{{"t":"2024-05-01T10:00:00Z","v4":"10.0.0.1","v6":"::1","u":"5b0b4f0e-8d0a-4a8e-9d6e-2f7f1e7b8c11","e":"a@b.com","uri":"https://nile.com/x"}}}}"#
        );
        assert_eq!(
            kinds(c.check(good.as_bytes())),
            Vec::<String>::new(),
            "{name}"
        );
        let bad = format!(
            r#"{{"schema":"iglu:com.x/{name}/jsonschema/1-0-0","data":{{"t":"yesterday","v4":"10.0.0.256","v6":"::g","u":"nope","e":"no at","uri":"not a uri"}}}}"#
        );
        let errors = c.check(bad.as_bytes()).unwrap_err();
        assert_eq!(errors.len(), 6, "{name}: {errors:?}");
        assert!(
            errors.iter().all(|e| e.detail["keyword"] == "format"),
            "{name}"
        );
    }
}

#[test]
fn catastrophic_regex_is_linear() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "com.x/re/jsonschema/1-0-0",
        &iglu(
            "com.x",
            "re",
            "1-0-0",
            r#""type":"string","pattern":"^(a+)+$""#,
        ),
    );
    let mut c = Checker::new(Resolver::from_dirs(&[dir.path().into()]));
    let evil = format!(
        r#"{{"schema":"iglu:com.x/re/jsonschema/1-0-0","data":"{}!"}}"#,
        "a".repeat(50_000)
    );
    let t = std::time::Instant::now();
    let errors = c.check(evil.as_bytes()).unwrap_err();
    assert_eq!(errors[0].detail["keyword"], "pattern");
    assert!(errors[0].message.len() < 1200);
    assert!(t.elapsed().as_secs() < 5, "took {:?}", t.elapsed());
}

#[test]
fn refs_stay_in_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "com.x/base/jsonschema/1-0-0",
        &iglu(
            "com.x",
            "base",
            "1-0-0",
            r#""type":"object","properties":{"id":{"type":"integer"}},"required":["id"]"#,
        ),
    );
    write(
        dir.path(),
        "com.x/uses/jsonschema/1-0-0",
        &iglu(
            "com.x",
            "uses",
            "1-0-0",
            r#""$ref":"iglu:com.x/base/jsonschema/1-0-0""#,
        ),
    );
    write(
        dir.path(),
        "com.x/file/jsonschema/1-0-0",
        &iglu("com.x", "file", "1-0-0", r#""$ref":"file:///etc/passwd""#),
    );
    write(
        dir.path(),
        "com.x/web/jsonschema/1-0-0",
        &iglu(
            "com.x",
            "web",
            "1-0-0",
            r#""$ref":"http://127.0.0.1:9/x.json""#,
        ),
    );
    let mut c = Checker::new(Resolver::from_dirs(&[dir.path().into()]));
    assert_eq!(
        kinds(c.check(br#"{"schema":"iglu:com.x/uses/jsonschema/1-0-0","data":{"id":1}}"#)),
        Vec::<String>::new()
    );
    assert_eq!(
        kinds(c.check(br#"{"schema":"iglu:com.x/uses/jsonschema/1-0-0","data":{"id":"x"}}"#)),
        ["invalid"]
    );
    for name in ["file", "web"] {
        let e = c
            .check(
                format!(r#"{{"schema":"iglu:com.x/{name}/jsonschema/1-0-0","data":{{}}}}"#)
                    .as_bytes(),
            )
            .unwrap_err();
        assert_eq!(e[0].kind, "bad_schema");
        assert!(
            e[0].message.contains("outside the registry"),
            "{}",
            e[0].message
        );
    }
}

#[test]
fn cache_is_bounded_and_expires() {
    let dir = registry();
    let mut r = Resolver::from_dirs(&[dir.path().into()]);
    r.cache_size = 2;
    r.cache_ttl = Some(std::time::Duration::from_millis(50));
    let mut s = Schemas::new(r);
    assert!(s.get("iglu:com.x/thing/jsonschema/1-0-0").is_ok());
    assert!(s.get("iglu:com.x/a/jsonschema/1-0-0").is_err());
    assert!(s.get("iglu:com.x/b/jsonschema/1-0-0").is_err());
    assert_eq!(s.cached(), 2);
    // a schema that appears after a miss is found once the TTL has passed
    write(
        dir.path(),
        "com.x/b/jsonschema/1-0-0",
        &iglu("com.x", "b", "1-0-0", r#""type":"object""#),
    );
    assert!(s.get("iglu:com.x/b/jsonschema/1-0-0").is_err());
    std::thread::sleep(std::time::Duration::from_millis(60));
    assert!(s.get("iglu:com.x/b/jsonschema/1-0-0").is_ok());
}

#[test]
fn builtin_schemas_match_the_files_and_what_tools_emit() {
    // Every file under schemas/ is built in, and nothing else.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let report = lint::lint(&root).unwrap();
    assert_eq!(report.problems, vec![], "schemas/ lints clean");
    assert_eq!(report.schemas, registry::BUILTIN.len());
    for (uri, text) in registry::BUILTIN {
        let key = IgluUri::parse(uri).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join(registry::relative_path(&key))).unwrap(),
            *text
        );
    }
    // A failure event as event.rs writes it is valid against the built-in schema.
    let mut c = Checker::new(Resolver::from_dirs(&[]));
    for original in [
        crate::event::Original::Line(b"{oops"),
        crate::event::Original::Line(b"\xff"),
        crate::event::Original::Truncated {
            prefix: b"{\"a\"",
            len: 9,
        },
    ] {
        let failure = crate::event::Failure {
            processor: "validate",
            position: crate::event::InputPosition {
                name: "stdin".into(),
                line: 7,
            },
            errors: vec![FailureMessage::new("not_json", "bad")
                .with("line", 1)
                .with("looked_in", vec!["a".to_string()])],
            original,
        };
        let line = failure.to_line();
        assert_eq!(c.check(&line), Ok(()), "{}", String::from_utf8_lossy(&line));
    }
}
