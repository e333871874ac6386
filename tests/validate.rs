//! `validate` through the real binary: registries of several vendors and
//! versions, both formats, the exact failure events, resolver order, an HTTP
//! registry served by a real HTTP server, lint, and hostile input.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{cmd, lines, nile_events, shell, Served};
use serde_json::{json, Value};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/schemas");
const IGLU_META: &str =
    "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#";

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// An Iglu JSON Schema for `vendor/name/version` with `body` merged in.
fn iglu(vendor: &str, name: &str, version: &str, body: Value) -> String {
    let mut schema = json!({
        "$schema": IGLU_META,
        "self": {"vendor": vendor, "name": name, "format": "jsonschema", "version": version},
    });
    schema
        .as_object_mut()
        .unwrap()
        .extend(body.as_object().unwrap().clone());
    serde_json::to_string_pretty(&schema).unwrap()
}

/// A registry of two vendors, several names and versions, both formats.
fn registry() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let order = json!({"type": "object", "properties": {
        "id": {"type": "string", "format": "uuid"},
        "total": {"type": "number", "minimum": 0}},
        "required": ["id", "total"], "additionalProperties": false});
    write(
        r,
        "com.acme/order/jsonschema/1-0-0",
        &iglu("com.acme", "order", "1-0-0", order.clone()),
    );
    let mut order2 = order.clone();
    order2["properties"]["coupon"] = json!({"type": "string", "maxLength": 8});
    write(
        r,
        "com.acme/order/jsonschema/1-0-1",
        &iglu("com.acme", "order", "1-0-1", order2),
    );
    write(
        r,
        "com.acme/order/jsonschema/2-0-0",
        &iglu(
            "com.acme",
            "order",
            "2-0-0",
            json!({"type": "object", "properties": {"lines": {"type": "array", "minItems": 1}}, "required": ["lines"]}),
        ),
    );
    write(
        r,
        "org.other/ping/jsonschema/1-0-0",
        &serde_json::to_string(&json!({"$schema": "https://json-schema.org/draft/2020-12/schema",
            "self": {"vendor": "org.other", "name": "ping", "format": "jsonschema", "version": "1-0-0"},
            "type": "object", "properties": {"host": {"type": "string", "format": "ipv6"}, "at": {"type": "string", "format": "date-time"}},
            "required": ["host"]}))
        .unwrap(),
    );
    write(
        r,
        "org.other/ping/avro/1-0-0",
        r#"{"type":"record","name":"Ping","namespace":"org.other","fields":[
            {"name":"host","type":"string"},
            {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["ICMP","TCP"]}},
            {"name":"rtt","type":["null","double"],"default":null}]}"#,
    );
    dir
}

/// Runs validate on `input`, returning stdout, the failure events (from
/// --bad) and the exit code.
fn validate(args: &[&str], input: &[u8]) -> (Vec<u8>, Vec<Value>, i32) {
    let bad = tempfile::NamedTempFile::new().unwrap();
    let out = cmd("validate")
        .args(args)
        .arg("--bad")
        .arg(bad.path())
        .write_stdin(input)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let failures = std::fs::read(bad.path()).unwrap();
    let failures = lines(&failures)
        .into_iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    (out.stdout, failures, out.status.code().unwrap_or(-1))
}

/// A failure event with its time checked and then fixed, for exact comparison.
fn pinned(mut failure: Value) -> Value {
    let at = failure["data"]["failed_at"]
        .as_str()
        .expect("failed_at")
        .to_string();
    let ms = unilog::time::parse_rfc3339_ms(&at).expect("failed_at is RFC 3339");
    assert!(
        (unilog::time::now_ms() - ms).abs() < 120_000,
        "failed_at {at} is now"
    );
    failure["data"]["failed_at"] = json!("T");
    failure
}

/// Each error of a failure event as `INSTANCE_PATH KEYWORD`.
fn error_paths(failure: &Value) -> Vec<String> {
    failure["data"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["instance_path"].as_str().unwrap(),
                e["keyword"].as_str().unwrap()
            )
        })
        .collect()
}

fn failure(line: u64, errors: Value, original: Value) -> Value {
    json!({"schema": "iglu:io.unilog/failure/jsonschema/1-0-0", "data": {
        "processor": {"name": "validate", "version": env!("CARGO_PKG_VERSION")},
        "failed_at": "T",
        "input": {"name": "stdin", "line": line},
        "errors": errors,
        "original": original}})
}

#[test]
fn generated_nile_events_pass_byte_for_byte() {
    let events = nile_events(3000, 7);
    let (out, failures, code) = validate(&["--registry", EXAMPLES], &events);
    assert_eq!(failures, Vec::<Value>::new());
    assert_eq!(code, 0);
    assert!(out == events, "valid events pass through unchanged");
}

/// Every thread count passes the same events in the same order and routes
/// the same failures in the same order.
#[test]
fn threads_keep_input_order_and_every_failure() {
    let mut input = Vec::new();
    for (i, line) in lines(&nile_events(30_000, 11)).into_iter().enumerate() {
        if i % 499 == 3 {
            // Valid JSON, wrong data: a price that is a string.
            let bad =
                String::from_utf8_lossy(line).replace("\"price\":", "\"price\":\"x\",\"was\":");
            input.extend_from_slice(bad.as_bytes());
        } else {
            input.extend_from_slice(line);
        }
        input.push(b'\n');
        if i % 997 == 5 {
            input.extend_from_slice(b"not json\n");
        }
    }
    let (one_out, one_failed, code) = validate(&["-j", "1", "--registry", EXAMPLES], &input);
    assert_eq!(code, 1);
    assert!(one_failed.len() > 60, "{} failed", one_failed.len());
    let failed_lines = |f: &[Value]| -> Vec<u64> {
        f.iter()
            .map(|f| f["data"]["input"]["line"].as_u64().unwrap())
            .collect()
    };
    assert!(failed_lines(&one_failed).windows(2).all(|w| w[0] < w[1]));
    let pinned_one: Vec<Value> = one_failed.into_iter().map(pinned).collect();
    for threads in ["2", "3"] {
        let (out, failed, code) = validate(&["-j", threads, "--registry", EXAMPLES], &input);
        assert_eq!(code, 1);
        assert!(out == one_out, "output with -j {threads} differs from -j 1");
        let failed: Vec<Value> = failed.into_iter().map(pinned).collect();
        assert_eq!(failed, pinned_one, "failures with -j {threads}");
    }
}

#[test]
fn exact_failure_events_for_each_kind() {
    let reg = registry();
    let r = reg.path().to_str().unwrap();
    let good_v1 = r#"{"schema":"iglu:com.acme/order/jsonschema/1-0-0","data":{"id":"5b0b4f0e-8d0a-4a8e-9d6e-2f7f1e7b8c11","total":9.5}}"#;
    let good_v2 = r#"{"schema":"iglu:com.acme/order/jsonschema/1-0-1",  "data" : {"id":"5B0B4F0E-8D0A-4A8E-9D6E-2F7F1E7B8C11","total":0,"coupon":"X"} }"#;
    let good_v3 = r#"{"schema":"iglu:com.acme/order/jsonschema/2-0-0","data":{"lines":[1]}}"#;
    let good_other = r#"{"schema":"iglu:org.other/ping/jsonschema/1-0-0","data":{"host":"fe80::1","at":"2026-01-02T03:04:05.678+01:00"}}"#;
    let bad_v1 = r#"{"schema":"iglu:com.acme/order/jsonschema/1-0-0","data":{"id":"x","total":-1,"coupon":"X"}}"#;
    let bad_v2 = r#"{"schema":"iglu:com.acme/order/jsonschema/1-0-1","data":{"id":"5b0b4f0e-8d0a-4a8e-9d6e-2f7f1e7b8c11","total":1,"coupon":"TOO-LONG-1"}}"#;
    let bad_other = r#"{"schema":"iglu:org.other/ping/jsonschema/1-0-0","data":{"at":"noon"}}"#;
    let input = [
        good_v1,
        "{not json",
        bad_v1,
        good_v2,
        r#"["schema"]"#,
        r#"{"schema":"iglu:com.acme/order/jsonschema/1-0","data":{}}"#,
        r#"{"schema":"iglu:com.acme/order/jsonschema/1-0-0"}"#,
        r#"{"schema":"iglu:com.acme/nothing/jsonschema/1-0-0","data":{}}"#,
        bad_v2,
        good_v3,
        good_other,
        bad_other,
        "   ",
        "",
    ]
    .join("\n");
    let (out, failures, code) = validate(&["--registry", r], input.as_bytes());
    assert_eq!(code, 1);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        [good_v1, good_v2, good_v3, good_other, ""].join("\n")
    );
    let failures: Vec<Value> = failures.into_iter().map(pinned).collect();
    let v1 = "iglu:com.acme/order/jsonschema/1-0-0";
    let expected = vec![
        failure(
            2,
            json!([{"kind": "not_json", "message": "not JSON: key must be a string at line 1 column 2", "line": 1, "column": 2}]),
            json!("{not json"),
        ),
        failure(
            3,
            json!([
                {"kind": "invalid", "message": "\"x\" is not a \"uuid\"", "schema": v1, "instance_path": "/id", "keyword": "format", "schema_path": "/properties/id/format"},
                {"kind": "invalid", "message": "-1 is less than the minimum of 0", "schema": v1, "instance_path": "/total", "keyword": "minimum", "schema_path": "/properties/total/minimum"},
                {"kind": "invalid", "message": "Additional properties are not allowed ('coupon' was unexpected)", "schema": v1, "instance_path": "", "keyword": "additionalProperties", "schema_path": "/additionalProperties"}
            ]),
            serde_json::from_str(bad_v1).unwrap(),
        ),
        failure(
            5,
            json!([{"kind": "not_self_describing", "message": "the event is not a JSON object; self-describing events look like {\"schema\":\"iglu:…\",\"data\":{…}}"}]),
            json!(["schema"]),
        ),
        failure(
            6,
            json!([{"kind": "not_self_describing", "message": "SchemaVer \"1-0\" must be MODEL-REVISION-ADDITION, like 1-0-0", "schema": "iglu:com.acme/order/jsonschema/1-0"}]),
            json!({"schema": "iglu:com.acme/order/jsonschema/1-0", "data": {}}),
        ),
        failure(
            7,
            json!([{"kind": "not_self_describing", "message": "the event has no \"data\" member", "schema": v1}]),
            json!({"schema": v1}),
        ),
        failure(
            8,
            json!([{"kind": "schema_not_found",
                "message": format!("schema iglu:com.acme/nothing/jsonschema/1-0-0 not found; looked in {r}/com.acme/nothing/jsonschema/1-0-0, built-in iglu:com.acme/nothing/jsonschema/1-0-0"),
                "schema": "iglu:com.acme/nothing/jsonschema/1-0-0",
                "looked_in": [format!("{r}/com.acme/nothing/jsonschema/1-0-0"), "built-in iglu:com.acme/nothing/jsonschema/1-0-0"]}]),
            json!({"schema": "iglu:com.acme/nothing/jsonschema/1-0-0", "data": {}}),
        ),
        failure(
            9,
            json!([{"kind": "invalid", "message": "\"TOO-LONG-1\" is longer than 8 characters", "schema": "iglu:com.acme/order/jsonschema/1-0-1",
                "instance_path": "/coupon", "keyword": "maxLength", "schema_path": "/properties/coupon/maxLength"}]),
            serde_json::from_str(bad_v2).unwrap(),
        ),
        failure(
            12,
            json!([
                {"kind": "invalid", "message": "\"host\" is a required property", "schema": "iglu:org.other/ping/jsonschema/1-0-0", "instance_path": "", "keyword": "required", "schema_path": "/required"},
                {"kind": "invalid", "message": "\"noon\" is not a \"date-time\"", "schema": "iglu:org.other/ping/jsonschema/1-0-0", "instance_path": "/at", "keyword": "format", "schema_path": "/properties/at/format"}
            ]),
            serde_json::from_str(bad_other).unwrap(),
        ),
        failure(
            13,
            json!([{"kind": "empty_line", "message": "empty line where an event was expected"}]),
            json!("   "),
        ),
    ];
    assert_eq!(failures.len(), expected.len(), "{failures:#?}");
    for (got, want) in failures.iter().zip(&expected) {
        assert_eq!(got, want);
    }
}

#[test]
fn failure_events_keep_the_original_bytes_and_validate_against_the_builtin_schema() {
    let input = b"{\"schema\":\"iglu:com.acme/order/jsonschema/1-0-0\", \"data\":{\"id\":1,\"total\":2.50}}\n";
    let reg = registry();
    let (_, failures, _) = validate(&["--registry", reg.path().to_str().unwrap()], input);
    assert_eq!(failures.len(), 1);
    // Failure events are themselves self-describing events that validate
    // with no flags at all (the io.unilog schemas are built in).
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("in.ndjson"), input).unwrap();
    let script = format!(
        "validate --registry {} --bad failures.ndjson < in.ndjson; validate < failures.ndjson > checked.ndjson; echo $?",
        reg.path().display()
    );
    let out = shell(&script, bad.path());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let failures = std::fs::read(bad.path().join("failures.ndjson")).unwrap();
    assert_eq!(
        std::fs::read(bad.path().join("checked.ndjson")).unwrap(),
        failures
    );
    // The original is spliced in verbatim: its bytes appear in the failure line.
    let text = String::from_utf8(failures).unwrap();
    assert!(text.contains(r#""original":{"schema":"iglu:com.acme/order/jsonschema/1-0-0", "data":{"id":1,"total":2.50}}"#), "{text}");
}

#[test]
fn avro_schemas_check_the_json_encoding() {
    let reg = registry();
    let r = reg.path().to_str().unwrap();
    let good = r#"{"schema":"iglu:org.other/ping/avro/1-0-0","data":{"host":"db1","kind":"TCP","rtt":{"double":0.25}}}"#;
    let good_null = r#"{"schema":"iglu:org.other/ping/avro/1-0-0","data":{"host":"db1","kind":"ICMP","rtt":null}}"#;
    let bad =
        r#"{"schema":"iglu:org.other/ping/avro/1-0-0","data":{"kind":"UDP","rtt":0.25,"extra":1}}"#;
    let input = format!("{good}\n{good_null}\n{bad}\n");
    let (out, failures, code) = validate(&["--registry", r], input.as_bytes());
    assert_eq!(code, 1);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("{good}\n{good_null}\n")
    );
    let s = "iglu:org.other/ping/avro/1-0-0";
    assert_eq!(
        pinned(failures[0].clone())["data"]["errors"],
        json!([
            {"kind": "invalid", "message": "field \"host\" of record org.other.Ping is missing", "schema": s, "instance_path": "", "keyword": "required"},
            {"kind": "invalid", "message": "\"UDP\" is not a symbol of enum org.other.Kind (ICMP, TCP)", "schema": s, "instance_path": "/kind", "keyword": "symbols"},
            {"kind": "invalid", "message": "a union value is null or an object with one member naming its branch, one of [null, double], as in {\"double\": …}", "schema": s, "instance_path": "/rtt", "keyword": "union"},
            {"kind": "invalid", "message": "\"extra\" is not a field of record org.other.Ping", "schema": s, "instance_path": "", "keyword": "fields"}
        ])
    );
}

#[test]
fn plum_health_checks_in_both_formats() {
    let json_ok = r#"{"schema":"iglu:com.plum/health_check/jsonschema/1-0-1","data":{"machine":{"id":"5b0b4f0e-8d0a-4a8e-9d6e-2f7f1e7b8c11","factory":"Lyon","ipAddress":"10.1.2.3"},"status":"DEGRADED","temperatureC":71.5,"checkedAt":"2026-11-27T09:00:00Z","uptimeSeconds":86400}}"#;
    let avro_ok = r#"{"schema":"iglu:com.plum/health_check/avro/1-0-0","data":{"machine":{"id":"5b0b4f0e-8d0a-4a8e-9d6e-2f7f1e7b8c11","factory":"Lyon","ipAddress":{"string":"10.1.2.3"}},"status":"DEGRADED","temperatureC":{"double":71.5},"checkedAt":1795770000000,"readings":{"fan_rpm":1200},"alarms":["hot"]}}"#;
    let json_bad = r#"{"schema":"iglu:com.plum/health_check/jsonschema/1-0-0","data":{"machine":{"id":"m1","factory":""},"status":"FINE","checkedAt":"2026-11-27T09:00:00Z","uptimeSeconds":1}}"#;
    let avro_bad = r#"{"schema":"iglu:com.plum/health_check/avro/1-0-0","data":{"machine":{"id":"5b0b4f0e-8d0a-4a8e-9d6e-2f7f1e7b8c11","factory":"Lyon","ipAddress":null},"status":"OK","temperatureC":null,"checkedAt":"2026-11-27T09:00:00Z","readings":{},"alarms":[]}}"#;
    let input = format!("{json_ok}\n{avro_ok}\n{json_bad}\n{avro_bad}\n");
    let (out, failures, code) = validate(&["--registry", EXAMPLES], input.as_bytes());
    assert_eq!(code, 1);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("{json_ok}\n{avro_ok}\n")
    );
    let paths = error_paths;
    assert_eq!(
        paths(&failures[0]),
        [
            "/machine/id format",
            "/machine/factory minLength",
            "/status enum",
            " additionalProperties"
        ]
    );
    assert_eq!(paths(&failures[1]), ["/checkedAt type"]);
}

#[test]
fn default_registry_is_dot_schemas_then_builtins() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "schemas/com.acme/e/jsonschema/1-0-0",
        &iglu(
            "com.acme",
            "e",
            "1-0-0",
            json!({"type": "object", "required": ["x"]}),
        ),
    );
    let input = "{\"schema\":\"iglu:com.acme/e/jsonschema/1-0-0\",\"data\":{\"x\":1}}\n{\"schema\":\"iglu:com.acme/e/jsonschema/1-0-0\",\"data\":{}}\n";
    std::fs::write(dir.path().join("in.ndjson"), input).unwrap();
    let out = cmd("validate")
        .current_dir(dir.path())
        .arg("in.ndjson")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        lines(&out.stdout),
        [input.lines().next().unwrap().as_bytes()]
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("validate: in.ndjson:2: \"x\" is a required property"),
        "{stderr}"
    );
    assert!(
        stderr.contains("validate: 2 read, 1 valid, 1 failed"),
        "{stderr}"
    );
    // the failure event went to stderr (the default --bad)
    assert!(
        stderr.contains(r#""input":{"name":"in.ndjson","line":2}"#),
        "{stderr}"
    );
}

/// Writes a resolver configuration; `repos` are (name, priority, prefixes, connection).
fn resolver_config(path: &Path, repos: Value, ttl: Value) {
    std::fs::write(
        path,
        serde_json::to_string(&json!({
            "schema": "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-3",
            "data": {"cacheSize": 100, "cacheTtl": ttl, "repositories": repos}}))
        .unwrap(),
    )
    .unwrap();
}

#[test]
fn resolver_orders_by_vendor_prefix_then_priority() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The same two schemas in two registries, with opposite rules: "ints"
    // wants x to be an integer, "strings" wants a string.
    for (reg, ty) in [("ints", "integer"), ("strings", "string")] {
        for (vendor, name) in [("com.acme", "thing"), ("org.other", "thing")] {
            write(
                d,
                &format!("{reg}/{vendor}/{name}/jsonschema/1-0-0"),
                &iglu(
                    vendor,
                    name,
                    "1-0-0",
                    json!({"type": "object", "properties": {"x": {"type": ty}}}),
                ),
            );
        }
    }
    resolver_config(
        &d.join("resolver.json"),
        json!([
            {"name": "ints", "priority": 0, "vendorPrefixes": [], "connection": {"embedded": {"path": "ints"}}},
            {"name": "strings", "priority": 9, "vendorPrefixes": ["com.acme"], "connection": {"embedded": {"path": "strings"}}}
        ]),
        Value::Null,
    );
    let input = [
        r#"{"schema":"iglu:com.acme/thing/jsonschema/1-0-0","data":{"x":"s"}}"#,
        r#"{"schema":"iglu:com.acme/thing/jsonschema/1-0-0","data":{"x":1}}"#,
        r#"{"schema":"iglu:org.other/thing/jsonschema/1-0-0","data":{"x":"s"}}"#,
        r#"{"schema":"iglu:org.other/thing/jsonschema/1-0-0","data":{"x":1}}"#,
    ];
    let config = d.join("resolver.json");
    let (out, failures, code) = validate(
        &["--resolver", config.to_str().unwrap()],
        (input.join("\n") + "\n").as_bytes(),
    );
    assert_eq!(code, 1);
    // com.acme: the vendor-prefixed "strings" wins despite its priority;
    // org.other: no prefix matches, so priority 0 ("ints") wins.
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("{}\n{}\n", input[0], input[3])
    );
    let lines: Vec<u64> = failures
        .iter()
        .map(|f| f["data"]["input"]["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 3]);

    // Without the prefix, priority alone decides: "ints" for both vendors.
    resolver_config(
        &config,
        json!([
            {"name": "strings", "priority": 9, "vendorPrefixes": [], "connection": {"embedded": {"path": "strings"}}},
            {"name": "ints", "priority": 0, "vendorPrefixes": [], "connection": {"embedded": {"path": "ints"}}}
        ]),
        json!(600),
    );
    let (out, _, _) = validate(
        &["--resolver", config.to_str().unwrap()],
        (input.join("\n") + "\n").as_bytes(),
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("{}\n{}\n", input[1], input[3])
    );
}

/// A real HTTP server (Python's) serving a directory on an ephemeral
/// loopback port, stopped when dropped.
struct HttpServer {
    _process: Served,
    port: u16,
}

impl HttpServer {
    fn serve(dir: &Path) -> HttpServer {
        let process = Served::start(
            Command::new(common::python())
                .args([
                    "-u",
                    "-m",
                    "http.server",
                    "0",
                    "--bind",
                    "127.0.0.1",
                    "--directory",
                ])
                .arg(dir)
                .stderr(Stdio::null()),
        )
        .expect("python3 serves HTTP for the test");
        let first = &process.first_line;
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let port = first
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {first:?}"));
        HttpServer {
            _process: process,
            port,
        }
    }
}

#[test]
fn http_registry_from_a_real_server() {
    let served = tempfile::tempdir().unwrap();
    let reg = registry();
    // An Iglu static registry over HTTP serves BASE/schemas/VENDOR/NAME/FORMAT/VERSION.
    let copy = Command::new("cp")
        .arg("-r")
        .arg(reg.path())
        .arg(served.path().join("schemas"))
        .status()
        .unwrap();
    assert!(copy.success());
    let server = HttpServer::serve(served.path());
    let base = format!("http://127.0.0.1:{}", server.port);
    let conf_dir = tempfile::tempdir().unwrap();
    let config = conf_dir.path().join("resolver.json");
    resolver_config(
        &config,
        json!([{"name": "http", "priority": 0, "vendorPrefixes": [], "connection": {"http": {"uri": base}}}]),
        json!(60),
    );
    let good = r#"{"schema":"iglu:com.acme/order/jsonschema/1-0-1","data":{"id":"5b0b4f0e-8d0a-4a8e-9d6e-2f7f1e7b8c11","total":3}}"#;
    let bad = r#"{"schema":"iglu:com.acme/order/jsonschema/1-0-1","data":{"id":"5b0b4f0e-8d0a-4a8e-9d6e-2f7f1e7b8c11"}}"#;
    let avro = r#"{"schema":"iglu:org.other/ping/avro/1-0-0","data":{"host":"db1","kind":"TCP","rtt":null}}"#;
    let missing = r#"{"schema":"iglu:com.acme/gone/jsonschema/1-0-0","data":{}}"#;
    let mut input = String::new();
    for _ in 0..50 {
        input.push_str(&format!("{good}\n{bad}\n{avro}\n{missing}\n"));
    }
    let (out, failures, code) =
        validate(&["--resolver", config.to_str().unwrap()], input.as_bytes());
    assert_eq!(code, 1);
    assert_eq!(lines(&out).len(), 100);
    assert_eq!(failures.len(), 100);
    assert_eq!(failures[0]["data"]["errors"][0]["keyword"], "required");
    let nf = &failures[1]["data"]["errors"][0];
    assert_eq!(nf["kind"], "schema_not_found");
    assert_eq!(
        nf["looked_in"][0],
        format!("{base}/schemas/com.acme/gone/jsonschema/1-0-0")
    );
    drop(server);
    // With the server gone, a lookup error says which repository failed.
    let (_, failures, _) = validate(
        &["--resolver", config.to_str().unwrap()],
        format!("{good}\n").as_bytes(),
    );
    let message = failures[0]["data"]["errors"][0]["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("repository \"http\""), "{message}");
}

#[test]
fn lint_passes_clean_registries_and_catches_broken_additions() {
    cmd("validate")
        .args(["--lint", EXAMPLES])
        .assert()
        .code(0)
        .stdout("");
    let reg = registry();
    cmd("validate")
        .arg("--lint")
        .arg(reg.path())
        .assert()
        .code(0);
    let r = reg.path();
    // 1-0-2 claims to be an ADDITION to 1-0-1 but adds a required property,
    // drops one and narrows another.
    write(
        r,
        "com.acme/order/jsonschema/1-0-2",
        &iglu(
            "com.acme",
            "order",
            "1-0-2",
            json!({"type": "object", "properties": {
            "id": {"type": "string", "format": "uuid"},
            "total": {"type": "number", "minimum": 0},
            "region": {"type": "string"}},
            "required": ["id", "total", "region"], "additionalProperties": false}),
        ),
    );
    // a self block that lies about its place, and a gap in versions
    write(
        r,
        "org.other/ping/jsonschema/1-0-1",
        &iglu("org.other", "pong", "1-0-1", json!({"type": "object"})),
    );
    write(
        r,
        "org.other/ping/jsonschema/1-0-3",
        &iglu("org.other", "ping", "1-0-3", json!({"type": "object"})),
    );
    let out = cmd("validate").arg("--lint").arg(r).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let problems: Vec<&str> = stdout.lines().collect();
    let p = |rel: &str| r.join(rel).display().to_string();
    assert_eq!(
        problems,
        [
            format!("{}: 1-0-2 is an ADDITION to 1-0-1 but it removes the property \".coupon\"; an ADDITION must accept every datum 1-0-1 accepts (make it 1-1-0 or 2-0-0)", p("com.acme/order/jsonschema/1-0-2")),
            format!("{}: 1-0-2 is an ADDITION to 1-0-1 but it adds the required property \".region\"; an ADDITION must accept every datum 1-0-1 accepts (make it 1-1-0 or 2-0-0)", p("com.acme/order/jsonschema/1-0-2")),
            format!("{}: iglu:org.other/ping/jsonschema/1-0-1 does not match its place: self.name is \"pong\" but its place in the registry says \"ping\"", p("org.other/ping/jsonschema/1-0-1")),
            format!("{}: version 1-0-3 does not follow 1-0-1: the next is 1-0-2, 1-1-0 or 2-0-0", p("org.other/ping/jsonschema/1-0-3")),
        ]
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("4 problems"));
    // The same change as a REVISION keeps SchemaVer's promise.
    std::fs::remove_file(r.join("com.acme/order/jsonschema/1-0-2")).unwrap();
    std::fs::remove_file(r.join("org.other/ping/jsonschema/1-0-1")).unwrap();
    std::fs::remove_file(r.join("org.other/ping/jsonschema/1-0-3")).unwrap();
    write(
        r,
        "com.acme/order/jsonschema/1-1-0",
        &iglu(
            "com.acme",
            "order",
            "1-1-0",
            json!({"type": "object", "properties": {"region": {"type": "string"}}, "required": ["region"]}),
        ),
    );
    let out = cmd("validate").arg("--lint").arg(r).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn uris_that_try_to_leave_the_registry_are_refused() {
    let outer = tempfile::tempdir().unwrap();
    // A schema outside the registry that would accept anything.
    write(
        outer.path(),
        "secret/x/jsonschema/1-0-0",
        &iglu("secret", "x", "1-0-0", json!({})),
    );
    let reg = outer.path().join("registry");
    std::fs::create_dir_all(&reg).unwrap();
    let uris = [
        "iglu:../../etc/passwd",
        "iglu:../secret/x/jsonschema/1-0-0",
        "iglu:..",
        "iglu:com.acme/../../secret/x/jsonschema/1-0-0",
        "iglu:com.acme/x/../../../secret/jsonschema/1-0-0",
        "iglu:/etc/passwd/jsonschema/1-0-0",
        "iglu:%2e%2e/secret/jsonschema/1-0-0",
        "iglu:com.acme/..%2fsecret/jsonschema/1-0-0",
        "iglu:com.acme/x/jsonschema/1-0-0/../../../../secret/x/jsonschema/1-0-0",
        "iglu:com.acme/x\\..\\..\\secret/jsonschema/1-0-0",
        "iglu:com.acme/x/jsonschema/1-0-0\u{0}",
        "file:///etc/passwd",
    ];
    let input: String = uris
        .iter()
        .map(|u| format!("{}\n", json!({"schema": u, "data": {}})))
        .collect();
    let (out, failures, code) = validate(&["--registry", reg.to_str().unwrap()], input.as_bytes());
    assert_eq!(code, 1);
    assert_eq!(out, b"");
    assert_eq!(failures.len(), uris.len());
    for f in &failures {
        assert_eq!(f["data"]["errors"][0]["kind"], "not_self_describing", "{f}");
    }
}

#[test]
fn hostile_input_ends_as_failure_events() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(
        r,
        "com.evil/regex/jsonschema/1-0-0",
        &iglu(
            "com.evil",
            "regex",
            "1-0-0",
            json!({"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}, "t": {"type": "string", "pattern": "^(a|a)*$"}}}),
        ),
    );
    write(
        r,
        "com.evil/long/jsonschema/1-0-0",
        &iglu(
            "com.evil",
            "long",
            "1-0-0",
            json!({"type": "object", "properties": {"s": {"type": "string", "maxLength": 100, "pattern": "^([a-z]+)*$"}}}),
        ),
    );
    write(
        r,
        "com.evil/huge/jsonschema/1-0-0",
        &iglu(
            "com.evil",
            "huge",
            "1-0-0",
            json!({"type": "string", "pattern": "(((a{100}){100}){100}){100}"}),
        ),
    );
    write(
        r,
        "com.evil/deep/jsonschema/1-0-0",
        &iglu("com.evil", "deep", "1-0-0", json!({})),
    );
    let evil = "a".repeat(100_000) + "!";
    let deep = format!(
        r#"{{"schema":"iglu:com.evil/deep/jsonschema/1-0-0","data":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let deep_objects = format!("{}{}", r#"{"a":"#.repeat(100_000), "}".repeat(100_000));
    let ten_mb = format!(
        r#"{{"schema":"iglu:com.evil/long/jsonschema/1-0-0","data":{{"s":"{}!"}}}}"#,
        "a".repeat(10 << 20)
    );
    let input = [
        json!({"schema": "iglu:com.evil/regex/jsonschema/1-0-0", "data": {"s": evil, "t": evil}})
            .to_string(),
        deep,
        deep_objects,
        ten_mb.clone(),
        json!({"schema": "iglu:com.evil/huge/jsonschema/1-0-0", "data": "a"}).to_string(),
        r#"{"schema":"iglu:com.evil/deep/jsonschema/1-0-0","data":1}"#.to_string(),
    ]
    .join("\n");
    let start = std::time::Instant::now();
    let (out, failures, code) = validate(&["--registry", r.to_str().unwrap()], input.as_bytes());
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(code, 1);
    assert_eq!(
        lines(&out),
        [&br#"{"schema":"iglu:com.evil/deep/jsonschema/1-0-0","data":1}"#[..]]
    );
    let kinds: Vec<Vec<String>> = failures
        .iter()
        .map(|f| {
            f["data"]["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    format!(
                        "{} {}",
                        e["kind"].as_str().unwrap(),
                        e["keyword"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            vec!["invalid pattern", "invalid pattern"],
            vec!["not_json "],
            vec!["not_json "],
            vec!["too_large "],
            vec!["bad_schema "],
        ]
    );
    assert!(failures[1]["data"]["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("recursion limit"));
    // The oversize line keeps only its start.
    assert_eq!(failures[3]["data"]["original_truncated"], true);
    assert!(failures[3]["data"]["original_bytes"].as_u64().unwrap() > 10 << 20);

    // With the size cap raised, the 10 MB string is validated (in linear time)
    // and fails on its own merits.
    let start = std::time::Instant::now();
    let (_, failures, code) = validate(
        &[
            "--registry",
            r.to_str().unwrap(),
            "--max-event-bytes",
            "16MiB",
        ],
        ten_mb.as_bytes(),
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(code, 1);
    let errors = failures[0]["data"]["errors"].as_array().unwrap();
    let keywords: Vec<&str> = errors
        .iter()
        .map(|e| e["keyword"].as_str().unwrap())
        .collect();
    assert_eq!(keywords, ["maxLength", "pattern"]);
    assert!(errors
        .iter()
        .all(|e| e["message"].as_str().unwrap().len() < 2000));
}

#[test]
fn head_closes_quietly_and_bad_usage_is_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.ndjson"), nile_events(20_000, 3)).unwrap();
    let out = shell(
        &format!("validate --registry {EXAMPLES} in.ndjson | head -1; echo ${{PIPESTATUS[0]}}"),
        dir.path(),
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().nth(1), Some("0"), "{stdout}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cmd("validate")
        .args(["--registry", "/nonexistent"])
        .write_stdin("")
        .assert()
        .code(2);
    cmd("validate")
        .args(["--resolver", "/nonexistent.json"])
        .write_stdin("")
        .assert()
        .code(2);
}

#[test]
fn alerts_plum_health_checks_are_valid_events() {
    let events = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/alert/plum/health-checks.ndjson"
    ))
    .unwrap();
    let (out, failures, code) = validate(&["--registry", EXAMPLES], &events);
    assert_eq!(failures, Vec::<Value>::new());
    assert_eq!(code, 0);
    assert!(out == events);
}

/// The JSON-Schema-Test-Suite's cases for `format` (a copied subset, see
/// tests/fixtures/json-schema-test-suite/README.md), run through `validate`
/// under draft 2020-12, draft 7 and an Iglu (draft 4) schema: exactly the
/// valid data passes.
#[test]
fn idn_formats_follow_the_json_schema_test_suite() {
    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/json-schema-test-suite"
    );
    for format in ["idn-hostname", "idn-email"] {
        let text = std::fs::read_to_string(format!("{fixtures}/{format}.json")).unwrap();
        let groups: Vec<Value> = serde_json::from_str(&text).unwrap();
        let cases: Vec<(&Value, bool, &str)> = groups
            .iter()
            .flat_map(|g| g["tests"].as_array().unwrap())
            .map(|t| {
                (
                    &t["data"],
                    t["valid"].as_bool().unwrap(),
                    t["description"].as_str().unwrap(),
                )
            })
            .collect();
        assert!(cases.iter().any(|c| !c.1), "{format} has invalid cases");
        let reg = tempfile::tempdir().unwrap();
        let name = format.replace('-', "_");
        let body = json!({"format": format});
        write(
            reg.path(),
            &format!("org.suite/{name}/jsonschema/1-0-0"),
            &iglu("org.suite", &name, "1-0-0", body.clone()),
        );
        for (version, draft) in [
            ("2-0-0", "https://json-schema.org/draft/2020-12/schema"),
            ("3-0-0", "http://json-schema.org/draft-07/schema#"),
        ] {
            let mut schema = body.clone();
            schema["$schema"] = json!(draft);
            write(
                reg.path(),
                &format!("org.suite/{name}/jsonschema/{version}"),
                &schema.to_string(),
            );
        }
        for version in ["1-0-0", "2-0-0", "3-0-0"] {
            let uri = format!("iglu:org.suite/{name}/jsonschema/{version}");
            let events: Vec<String> = cases
                .iter()
                .map(|(data, _, _)| json!({"schema": uri, "data": data}).to_string())
                .collect();
            let input: String = events.iter().map(|e| format!("{e}\n")).collect();
            let (out, failures, _) = validate(
                &["--registry", reg.path().to_str().unwrap()],
                input.as_bytes(),
            );
            let passed: Vec<&str> = std::str::from_utf8(&out).unwrap().lines().collect();
            for ((_, valid, description), event) in cases.iter().zip(&events) {
                assert_eq!(
                    passed.contains(&event.as_str()),
                    *valid,
                    "{format} {version}: {description}: {event}"
                );
            }
            let invalid = cases.iter().filter(|c| !c.1).count();
            assert_eq!(failures.len(), invalid, "{format} {version}: {failures:?}");
            for f in &failures {
                assert_eq!(f["data"]["errors"][0]["keyword"], "format", "{f}");
            }
        }
    }
}

/// A registry serves only regular files inside it: a schema file or a
/// vendor directory that is a symbolic link to something outside is
/// refused by name, its target never read (so nothing of it reaches a
/// message), both by `validate` and by `--lint`.
#[test]
fn symbolic_links_out_of_the_registry_are_refused() {
    let outer = tempfile::tempdir().unwrap();
    let secret = outer.path().join("secret.txt");
    std::fs::write(&secret, "root:SECRET-PASSWORD-LINE\n").unwrap();
    // Outside: a schema that accepts anything, reached through a vendor link.
    write(
        outer.path(),
        "elsewhere/com.evil/open/jsonschema/1-0-0",
        &iglu("com.evil", "open", "1-0-0", json!({})),
    );
    let reg = outer.path().join("registry");
    write(
        &reg,
        "com.acme/order/jsonschema/1-0-0",
        &iglu("com.acme", "order", "1-0-0", json!({"type": "object"})),
    );
    std::os::unix::fs::symlink(&secret, reg.join("com.acme/order/jsonschema/1-0-1")).unwrap();
    std::os::unix::fs::symlink(
        outer.path().join("elsewhere/com.evil"),
        reg.join("com.evil"),
    )
    .unwrap();
    let leak = r#"{"schema":"iglu:com.acme/order/jsonschema/1-0-1","data":{}}"#;
    let through = r#"{"schema":"iglu:com.evil/open/jsonschema/1-0-0","data":{"anything":1}}"#;
    let good = r#"{"schema":"iglu:com.acme/order/jsonschema/1-0-0","data":{}}"#;
    let input = format!("{leak}\n{through}\n{good}\n");
    let (out, failures, code) = validate(&["--registry", reg.to_str().unwrap()], input.as_bytes());
    assert_eq!(code, 1);
    assert_eq!(String::from_utf8(out).unwrap(), format!("{good}\n"));
    assert_eq!(failures.len(), 2, "{failures:?}");
    for (f, link) in failures.iter().zip([
        reg.join("com.acme/order/jsonschema/1-0-1"),
        reg.join("com.evil"),
    ]) {
        let text = f.to_string();
        assert!(!text.contains("SECRET"), "{text}");
        let error = &f["data"]["errors"][0];
        assert_eq!(error["kind"], "schema_not_found", "{f}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{} is a symbolic link", link.display())),
            "{message}"
        );
    }
    let out = cmd("validate").arg("--lint").arg(&reg).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains("SECRET"), "{stdout}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            format!("{}: is a symbolic link; a registry serves only regular files inside it and never follows links", reg.join("com.acme/order/jsonschema/1-0-1").display()),
            format!("{}: is a symbolic link; a registry serves only regular files inside it and never follows links", reg.join("com.evil").display()),
        ]
    );
}

/// Avro's JSON encoding as the specification and Java's JsonDecoder read
/// it: every field is present (a default is for schema resolution), a whole
/// number written as `1.0` or `1e3` is an int or long, and floats and
/// doubles take "NaN", "Infinity" and "-Infinity" (and Java's "INF",
/// "-INF") as strings.
#[test]
fn avro_json_encoding_follows_the_java_decoder() {
    let reg = tempfile::tempdir().unwrap();
    write(
        reg.path(),
        "org.num/m/avro/1-0-0",
        r#"{"type":"record","name":"M","fields":[
            {"name":"n","type":"int"},
            {"name":"l","type":"long"},
            {"name":"f","type":"float"},
            {"name":"d","type":"double"},
            {"name":"note","type":["null","string"],"default":null}]}"#,
    );
    let event = |data: &str| format!(r#"{{"schema":"iglu:org.num/m/avro/1-0-0","data":{data}}}"#);
    let good = [
        r#"{"n":1,"l":2,"f":0.5,"d":-1.25e300,"note":null}"#,
        r#"{"n":1.0,"l":1e3,"f":"NaN","d":"-Infinity","note":{"string":"x"}}"#,
        r#"{"n":-2147483648,"l":9223372036854775807,"f":"Infinity","d":"INF","note":null}"#,
    ];
    let bad = [
        (r#"{"n":1.5,"l":2,"f":0,"d":0,"note":null}"#, "/n type"),
        (
            r#"{"n":2147483648.0,"l":2,"f":0,"d":0,"note":null}"#,
            "/n type",
        ),
        (r#"{"n":1,"l":9.3e18,"f":0,"d":0,"note":null}"#, "/l type"),
        (
            r#"{"n":1,"l":2,"f":"nan","d":"1.5","note":null}"#,
            "/f type,/d type",
        ),
        (r#"{"n":1,"l":2,"f":0,"d":0}"#, " required"),
    ];
    let input: String = good
        .iter()
        .chain(bad.iter().map(|(d, _)| d))
        .map(|d| event(d) + "\n")
        .collect();
    let (out, failures, code) = validate(
        &["--registry", reg.path().to_str().unwrap()],
        input.as_bytes(),
    );
    assert_eq!(code, 1);
    let expected: String = good.iter().map(|d| event(d) + "\n").collect();
    assert_eq!(String::from_utf8(out).unwrap(), expected);
    assert_eq!(failures.len(), bad.len(), "{failures:?}");
    for (f, (_, want)) in failures.iter().zip(bad) {
        assert_eq!(error_paths(f).join(","), want, "{f}");
    }
    let missing = failures[4]["data"]["errors"][0]["message"]
        .as_str()
        .unwrap();
    assert_eq!(missing, "field \"note\" of record M is missing; Avro's JSON encoding has every field (its default is for schema resolution, not for data)");
}

/// `--lint` on cases reduced from Iglu Central (see
/// tests/fixtures/lint-iglu/README.md): what the old version accepted
/// decides. A type added to an enum of that type's values, a maxLength an
/// enum or anchored pattern already kept to, anyOf/oneOf branches that only
/// gained an optional property in closed objects, and properties added
/// where the old version allowed none are no problems; a removed enum value
/// and a new bound are, printed with numbers as written; a oneOf branch
/// that may overlap is "cannot tell", which fails the run only with
/// --strict; an http://iglucentral.com/schemas/… $ref resolves through the
/// registry.
#[test]
fn lint_judges_by_what_the_old_version_accepted() {
    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/lint-iglu/schemas"
    );
    let out = cmd("validate").args(["--lint", fixtures]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let p = |rel: &str| format!("{fixtures}/com.example/{rel}/jsonschema/1-0-1");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            format!("{}: 1-0-1 is an ADDITION to 1-0-0 but \".timeout\" adds maximum 9223372036854775807; an ADDITION must accept every datum 1-0-0 accepts (make it 1-1-0 or 2-0-0)", p("big_number")),
            format!("{}: 1-0-1 is an ADDITION to 1-0-0 but \".method\" no longer accepts the value \"post\"; an ADDITION must accept every datum 1-0-0 accepts (make it 1-1-0 or 2-0-0)", p("enum_removed")),
            format!("{}: cannot tell: 1-0-1 is an ADDITION to 1-0-0 and \".auth\" widens or adds branches that may now overlap in oneOf; lint cannot tell whether every datum 1-0-0 accepts is still accepted (check it; if not, make it 1-1-0 or 2-0-0)", p("oneof_overlap")),
        ],
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("16 schemas, 2 problems, 1 cannot tell"));
    // "cannot tell" alone passes, and fails with --strict.
    let reg = tempfile::tempdir().unwrap();
    for v in ["1-0-0", "1-0-1"] {
        let rel = format!("com.example/oneof_overlap/jsonschema/{v}");
        write(
            reg.path(),
            &rel,
            &std::fs::read_to_string(format!("{fixtures}/{rel}")).unwrap(),
        );
    }
    cmd("validate")
        .arg("--lint")
        .arg(reg.path())
        .assert()
        .code(0);
    cmd("validate")
        .args(["--strict", "--lint"])
        .arg(reg.path())
        .assert()
        .code(1);
    // The Iglu Central $ref is served by the registry.
    let events = concat!(
        r#"{"schema":"iglu:com.example/uses_central_ref/jsonschema/1-0-0","data":{"item":{"id":"toolong"}}}"#,
        "\n",
        r#"{"schema":"iglu:com.example/uses_central_ref/jsonschema/1-0-0","data":{"item":{"id":"ok"}}}"#,
        "\n"
    );
    let (out, failures, code) = validate(&["--registry", fixtures], events.as_bytes());
    assert_eq!(code, 1);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        events.lines().nth(1).unwrap().to_string() + "\n"
    );
    assert_eq!(
        failures[0]["data"]["errors"][0]["keyword"], "maxLength",
        "{failures:?}"
    );
}
