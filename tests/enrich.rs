//! Drives the real `enrich` binary: each step, where results go, failures as
//! events, bad setup, and the book's chapter 3 example. MaxMind DB files are
//! built by tests/fixtures/make-mmdb.py (mmdb-writer, from
//! scripts/install-test-deps.sh).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::{assert_success, cmd, lines, shell};

const CITY: &str = "city.mmdb";
const COUNTRY: &str = "country.mmdb";
const DBIP: &str = "dbip-city.mmdb";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The test databases, built once per test run.
fn dbs() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        for (name, layout) in [(CITY, "city"), (COUNTRY, "country"), (DBIP, "dbip-city")] {
            let status = Command::new(common::python())
                .arg(root().join("tests/fixtures/make-mmdb.py"))
                .arg(dir.path().join(name))
                .args(["--layout", layout])
                .status()
                .expect("python3 runs");
            assert!(
                status.success(),
                "make-mmdb.py failed: run scripts/install-test-deps.sh (needs mmdb-writer)"
            );
        }
        dir
    })
    .path()
}

fn db(name: &str) -> String {
    dbs().join(name).display().to_string()
}

struct Run {
    code: i32,
    out: Vec<Value>,
    err: String,
}

fn enrich(args: &[&str], input: &str) -> Run {
    let output = cmd("enrich")
        .args(args)
        .write_stdin(input)
        .output()
        .unwrap();
    let out = lines(&output.stdout)
        .into_iter()
        .map(|l| {
            serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "output line is not JSON ({e}): {}",
                    String::from_utf8_lossy(l)
                )
            })
        })
        .collect();
    Run {
        code: output.status.code().unwrap(),
        out,
        err: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn ev(ip: Value) -> String {
    json!({"schema": "iglu:com.nile/shopper_viewed_product/jsonschema/1-0-0", "data": {"shopper": {"id": "123", "ipAddress": ip}}}).to_string()
}

fn contexts(v: &Value) -> &Vec<Value> {
    v["derived_contexts"].as_array().expect("derived_contexts")
}

/// Checks a derived context's data against its schema in schemas/: the
/// subset of JSON Schema the io.unilog schemas use (type, properties,
/// required, additionalProperties, pattern-free).
fn check_against_schema(context: &Value) {
    let uri = context["schema"].as_str().unwrap();
    let rest = uri.strip_prefix("iglu:").unwrap();
    let schema: Value =
        serde_json::from_slice(&std::fs::read(root().join("schemas").join(rest)).unwrap()).unwrap();
    let data = context["data"]
        .as_object()
        .unwrap_or_else(|| panic!("{uri}: data is not an object"));
    let props = schema["properties"].as_object().unwrap();
    for req in schema["required"].as_array().unwrap() {
        assert!(
            data.contains_key(req.as_str().unwrap()),
            "{uri}: {req} missing in {context}"
        );
    }
    for (k, v) in data {
        let prop = props
            .get(k)
            .unwrap_or_else(|| panic!("{uri}: {k} is not in the schema"));
        let types: Vec<&str> = match &prop["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap()).collect(),
            _ => continue,
        };
        let kind = match v {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        assert!(
            types.contains(&kind),
            "{uri}: {k} is a {kind}, the schema says {types:?}"
        );
    }
}

#[test]
fn geoip_ipv4_ipv6_private_missing_and_invalid() {
    let input = [
        ev(json!("70.46.123.145")),
        ev(json!("2001:db8:1::42")),
        ev(json!("10.0.0.1")),
        json!({"schema": "iglu:a.b/c/jsonschema/1-0-0", "data": {"shopper": {"id": "9"}}})
            .to_string(),
        ev(json!("not-an-ip")),
        ev(json!("::ffff:81.2.69.160")),
    ]
    .join("\n");
    let r = enrich(
        &["--geoip", &db(CITY), "--ip", ".data.shopper.ipAddress"],
        &input,
    );
    assert_eq!(r.code, 1, "{}", r.err);
    assert_eq!(r.out.len(), 5);
    let orlando = &contexts(&r.out[0])[0];
    assert_eq!(
        orlando,
        &json!({"schema": "iglu:io.unilog/geo_location/jsonschema/1-0-1", "data": {
            "country_code": "US", "country_name": "United States", "region_code": "FL", "region_name": "Florida",
            "city": "Orlando", "postal_code": "32801", "latitude": 28.5383, "longitude": -81.3792,
            "time_zone": "America/New_York", "country_source": "country"}})
    );
    check_against_schema(orlando);
    assert_eq!(contexts(&r.out[1])[0]["data"]["city"], "Auckland");
    assert_eq!(
        contexts(&r.out[1])[0]["data"]["time_zone"],
        "Pacific/Auckland"
    );
    // A private address and a missing one: no context, the event unchanged.
    assert_eq!(r.out[2].to_string(), ev(json!("10.0.0.1")));
    assert!(r.out[3].get("derived_contexts").is_none());
    assert_eq!(contexts(&r.out[4])[0]["data"]["city"], "London");
    // The invalid address became a failure event on stderr, with the original.
    assert!(
        r.err.contains(
            "stdin:5: .data.shopper.ipAddress is \"not-an-ip\", which is not an IP address"
        ),
        "{}",
        r.err
    );
    assert!(r.err.contains("6 read, 5 enriched, 1 failed"), "{}", r.err);
}

#[test]
fn geoip_country_and_dbip_layouts() {
    let input = ev(json!("81.2.69.160"));
    let r = enrich(
        &["--geoip", &db(COUNTRY), "--ip", ".data.shopper.ipAddress"],
        &input,
    );
    assert_eq!(r.code, 0, "{}", r.err);
    let data = &contexts(&r.out[0])[0]["data"];
    assert_eq!(
        (data["country_code"].as_str(), data["country_name"].as_str()),
        (Some("GB"), Some("United Kingdom"))
    );
    assert_eq!(data["city"], Value::Null);
    check_against_schema(&contexts(&r.out[0])[0]);
    let r = enrich(
        &["--geoip", &db(DBIP), "--ip", ".data.shopper.ipAddress"],
        &input,
    );
    let data = &contexts(&r.out[0])[0]["data"];
    assert_eq!(data["city"], "London");
    assert_eq!(data["region_name"], "England");
    assert_eq!(data["region_code"], Value::Null);
    assert_eq!(data["time_zone"], Value::Null);
    assert_eq!(data["latitude"], 51.5142);
}

#[test]
fn anonymize_after_geoip_keeps_the_location_not_the_address() {
    let input = [
        ev(json!("70.46.123.145")),
        ev(json!("2001:db8:1:2:3:4:5:6")),
    ]
    .join("\n");
    let r = enrich(
        &[
            "--geoip",
            &db(CITY),
            "--ip",
            ".data.shopper.ipAddress",
            "--anonymize-ip",
            "1",
        ],
        &input,
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.out[0]["data"]["shopper"]["ipAddress"], "70.46.123.0");
    assert_eq!(contexts(&r.out[0])[0]["data"]["city"], "Orlando");
    assert_eq!(r.out[1]["data"]["shopper"]["ipAddress"], "2001:db8:1::");
    // In the other order the location is of the masked address.
    let r = enrich(
        &[
            "--anonymize-ip",
            "4",
            "--ip",
            ".data.shopper.ipAddress",
            "--geoip",
            &db(CITY),
        ],
        &input,
    );
    assert!(r.out[0].get("derived_contexts").is_none(), "{}", r.out[0]);
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn lookup_csv_with_quoted_fields_and_a_missing_key() {
    let dir = tempfile::tempdir().unwrap();
    let table = write(
        dir.path(),
        "products.csv",
        "sku,name,note\naapl-001,\"iPad, 10th gen\",\"says \"\"hi\"\"\nand more\"\nsony-102,PlayStation 5,\n",
    );
    let input = [
        json!({"data": {"product": {"sku": "aapl-001"}}}).to_string(),
        json!({"data": {"product": {"sku": "nope-000"}}}).to_string(),
        json!({"data": {"product": {"sku": "sony-102"}}}).to_string(),
    ]
    .join("\n");
    let r = enrich(
        &[
            "--lookup",
            &table,
            "--on",
            ".data.product.sku",
            "--key",
            "sku",
        ],
        &input,
    );
    assert_eq!(r.code, 0, "{}", r.err);
    let ctx = &contexts(&r.out[0])[0];
    assert_eq!(
        ctx["data"],
        json!({"table": "products", "key": "aapl-001", "row": {"sku": "aapl-001", "name": "iPad, 10th gen", "note": "says \"hi\"\nand more"}})
    );
    check_against_schema(ctx);
    assert!(r.out[1].get("derived_contexts").is_none());
    assert_eq!(contexts(&r.out[2])[0]["data"]["row"]["note"], "");
    // With --into a missing key is null; with --required it fails the event.
    let r = enrich(
        &[
            "--lookup",
            &table,
            "--on",
            ".data.product.sku",
            "--as",
            "p",
            "--into",
            ".data",
        ],
        &input,
    );
    assert_eq!(r.out[1]["data"]["p"], Value::Null);
    assert_eq!(r.out[2]["data"]["p"]["name"], "PlayStation 5");
    let bad = dir.path().join("bad.ndjson");
    let r = enrich(
        &[
            "--lookup",
            &table,
            "--on",
            ".data.product.sku",
            "--required",
            "--bad",
            bad.to_str().unwrap(),
        ],
        &input,
    );
    assert_eq!(r.code, 1);
    assert_eq!(r.out.len(), 2);
    let failures: Vec<Value> = lines(&std::fs::read(&bad).unwrap())
        .iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(failures.len(), 1);
    let f = &failures[0]["data"];
    assert_eq!(
        failures[0]["schema"],
        "iglu:io.unilog/failure/jsonschema/1-0-0"
    );
    assert_eq!(f["processor"]["name"], "enrich");
    assert_eq!(f["input"], json!({"name": "stdin", "line": 2}));
    assert_eq!(f["errors"][0]["kind"], "lookup_missing");
    assert_eq!(f["errors"][0]["step"], "lookup");
    assert_eq!(
        f["original"],
        json!({"data": {"product": {"sku": "nope-000"}}})
    );
}

#[test]
fn lookup_ndjson_table() {
    let dir = tempfile::tempdir().unwrap();
    let table = write(
        dir.path(),
        "shoppers.ndjson",
        "{\"id\":\"123\",\"tier\":\"gold\",\"since\":2019}\n{\"id\":\"9\",\"tier\":null}\n",
    );
    let r = enrich(
        &[
            "--lookup",
            &table,
            "--on",
            ".data.shopper.id",
            "--key",
            "id",
            "--into",
            ".data.shopper",
        ],
        &ev(json!("1.2.3.4")),
    );
    assert_eq!(
        r.out[0]["data"]["shopper"]["shoppers"],
        json!({"id": "123", "tier": "gold", "since": 2019})
    );
}

#[test]
fn jq_failing_on_some_events_fails_only_those() {
    let input = (1..=6)
        .map(|i| {
            let v = if i % 3 == 0 {
                json!("n/a")
            } else {
                json!(i.to_string())
            };
            json!({"data": {"i": i, "v": v}}).to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.ndjson");
    let r = enrich(
        &[
            "--jq",
            ".data.n = (.data.v | tonumber) * 2",
            "--bad",
            bad.to_str().unwrap(),
        ],
        &input,
    );
    assert_eq!(r.code, 1);
    let ns: Vec<i64> = r
        .out
        .iter()
        .map(|e| e["data"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(ns, vec![2, 4, 8, 10]);
    let failures: Vec<Value> = lines(&std::fs::read(&bad).unwrap())
        .iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0]["data"]["input"]["line"], 3);
    assert_eq!(failures[1]["data"]["input"]["line"], 6);
    assert_eq!(failures[0]["data"]["errors"][0]["kind"], "jq_error");
    assert_eq!(
        failures[0]["data"]["original"],
        json!({"data": {"i": 3, "v": "n/a"}})
    );
    // select() leaves events out; the rest pass.
    let r = enrich(&["--jq", "select(.data.i > 4)"], &input);
    assert_eq!(r.code, 0);
    assert_eq!(r.out.len(), 2);
}

#[test]
fn user_agents_ids_and_times() {
    let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
    let input = json!({"data": {"ua": ua}}).to_string();
    let r = enrich(&["--ua", ".data.ua", "--event-id", "--enriched-at"], &input);
    assert_eq!(r.code, 0, "{}", r.err);
    let c = contexts(&r.out[0]);
    assert_eq!(c.len(), 3);
    for ctx in c {
        check_against_schema(ctx);
    }
    assert_eq!(c[0]["data"]["browser_family"], "Mobile Safari");
    assert_eq!(c[0]["data"]["device_family"], "iPhone");
    let id = c[1]["data"]["event_id"].as_str().unwrap();
    assert_eq!(&id[14..15], "4");
    let at = c[2]["data"]["enriched_at"].as_str().unwrap();
    assert!(
        unilog::time::parse_rfc3339_ms(at).is_ok() && at.ends_with('Z'),
        "{at}"
    );
    // Content ids are the same on every run; random ones are not.
    let ids = |mode: &str| {
        let r = enrich(&[mode, "--into", ".meta"], &format!("{input}\n{input}"));
        (
            r.out[0]["meta"]["event_id"].clone(),
            r.out[1]["meta"]["event_id"].clone(),
        )
    };
    let (a, b) = ids("--event-id=content");
    assert_eq!(a, b);
    assert_eq!(ids("--event-id=content"), (a.clone(), a));
    let (a, b) = ids("--event-id=random");
    assert_ne!(a, b);
}

#[test]
fn steps_apply_in_command_line_order() {
    let input = json!({"data": {"x": 1}}).to_string();
    // The jq step sees the context the step before it added, not the one after.
    let r = enrich(
        &[
            "--event-id",
            "--jq",
            ".data.n = (.derived_contexts | length)",
            "--enriched-at",
        ],
        &input,
    );
    assert_eq!(r.out[0]["data"]["n"], 1);
    assert_eq!(contexts(&r.out[0]).len(), 2);
    let r = enrich(
        &[
            "--jq",
            ".data.n = (.derived_contexts | length)",
            "--event-id",
        ],
        &input,
    );
    assert_eq!(r.out[0]["data"]["n"], 0);
}

#[test]
fn config_file_lists_the_steps() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "p.csv", "sku,name\na-1,Thing\n");
    std::fs::copy(db(CITY), dir.path().join("City.mmdb")).unwrap();
    let config = write(
        dir.path(),
        "enrich.json",
        r#"{
  "into": ".data.enriched",
  "steps": [
    {"geoip": "City.mmdb", "ip": ".data.ip"},
    {"lookup": "p.csv", "on": ".data.sku", "required": true},
    {"jq": ".data.seen = true"},
    {"anonymize_ip": 1, "ip": ".data.ip"}
  ]
}"#,
    );
    let input = json!({"data": {"ip": "81.2.69.160", "sku": "a-1"}}).to_string();
    // Run from elsewhere: paths in the file are relative to the file.
    let out = cmd("enrich")
        .args(["--config", &config])
        .current_dir("/")
        .write_stdin(input)
        .output()
        .unwrap();
    assert_success(&out);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["data"]["enriched"]["geo"]["city"], "London");
    assert_eq!(v["data"]["enriched"]["p"]["name"], "Thing");
    assert_eq!(v["data"]["seen"], true);
    assert_eq!(v["data"]["ip"], "81.2.69.0");
}

/// Bad setup exits 2 with the file and line, before reading any event: the
/// test keeps stdin open and never writes to it.
fn setup_error(args: &[&str]) -> String {
    let mut child = Command::new(common::bin("enrich"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            assert_eq!(status.code(), Some(2), "{args:?}");
            assert!(out.stdout.is_empty());
            drop(stdin);
            return String::from_utf8_lossy(&out.stderr).into_owned();
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("{args:?}: enrich waited for input instead of failing its setup");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bad_setup_names_file_and_line_and_exits_2_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let dup = write(dir.path(), "dup.csv", "sku,name\na,1\nb,2\na,3\n");
    let e = setup_error(&["--lookup", &dup, "--on", ".data.sku"]);
    assert!(
        e.contains("dup.csv line 4: duplicate key \"a\"") && e.contains("first on line 2"),
        "{e}"
    );
    let ragged = write(dir.path(), "ragged.csv", "sku,name\na,1\nb,2,oops\n");
    let e = setup_error(&["--lookup", &ragged, "--on", ".data.sku"]);
    assert!(
        e.contains("ragged.csv: line 3: the row has 3 fields but the header has 2"),
        "{e}"
    );
    let rows = write(dir.path(), "rows.ndjson", "{\"id\":1}\n{\"id\":\n");
    let e = setup_error(&["--lookup", &rows, "--on", ".data.sku", "--key", "id"]);
    assert!(e.contains("rows.ndjson line 2: not valid JSON"), "{e}");
    let junk = write(dir.path(), "junk.mmdb", "this is not a database\n");
    let e = setup_error(&["--geoip", &junk, "--ip", ".data.ip"]);
    assert!(
        e.starts_with("enrich: error: ") && e.contains("junk.mmdb: not a readable MaxMind DB file"),
        "{e}"
    );
    let e = setup_error(&["--geoip", "/nonexistent/City.mmdb", "--ip", ".data.ip"]);
    assert!(
        e.contains("cannot read MaxMind DB /nonexistent/City.mmdb"),
        "{e}"
    );
    let e = setup_error(&["--event-id", "--jq", ".data | map(", "--jq", ".a"]);
    assert!(e.contains("--jq #1: jq syntax error"), "{e}");
    let config = write(
        dir.path(),
        "c.json",
        "{\"steps\": [\n  {\"event_id\": true},\n  {\"jq\": \".a |\\n nosuch(1)\"}\n]}",
    );
    let e = setup_error(&["--config", &config]);
    assert!(
        e.contains("c.json line 3: jq error: undefined filter \"nosuch\" at line 2, column 2"),
        "{e}"
    );
    let e = setup_error(&["--lookup", &dup, "--ip", ".x"]);
    assert!(
        e.contains("--ip belongs to --geoip or --anonymize-ip, but follows --lookup"),
        "{e}"
    );
}

#[test]
fn bad_lines_become_failures_and_good_ones_pass() {
    let input = "{\"data\":{}}\nnot json\n\n[1]\n{\"data\":{\"ok\":true}}\n";
    let r = enrich(&["--enriched-at", "--into", ".x"], input);
    assert_eq!(r.code, 1);
    assert_eq!(r.out.len(), 2);
    assert!(r.err.contains("5 read, 2 enriched, 3 failed"), "{}", r.err);
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.ndjson");
    std::fs::write(&events, common::nile_events(50_000, 3)).unwrap();
    let out = shell(
        &format!(
            "set -o pipefail; enrich --event-id {} | head -n 2",
            events.display()
        ),
        dir.path(),
    );
    assert_success(&out);
    assert_eq!(lines(&out.stdout).len(), 2);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn events_pass_through_byte_for_byte() {
    let events = common::nile_events(500, 11);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.ndjson");
    std::fs::write(&input, &events).unwrap();
    let out = cmd("enrich")
        .args([
            "--geoip",
            &db(CITY),
            "--ip",
            ".data.shopper.ipAddress",
            input.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    for (before, after) in lines(&events).iter().zip(lines(&out.stdout)) {
        // The generated addresses are not in the small test database: nothing added.
        assert_eq!(*before, after);
    }
}

#[test]
fn chapter_3_example_runs() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir: PathBuf = common::bin("enrich").parent().unwrap().to_path_buf();
    let out = Command::new("bash")
        .arg(root().join("examples/ch3-geo-enrich.sh"))
        .current_dir(dir.path())
        .env(
            "PATH",
            format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
        )
        .env("UNILOG_BIN", &bin_dir)
        .env("PYTHON", common::python())
        .env("OUT", dir.path().join("out"))
        .env("EVENTS", "3000")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every good event is in the enriched log, located; the two bad ones are failures.
    let enriched = std::fs::read(dir.path().join("out/enriched.ndjson")).unwrap();
    let enriched: Vec<Value> = lines(&enriched)
        .iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(enriched.len(), 3001);
    let located = enriched
        .iter()
        .filter(|e| e["data"]["shopper"]["geo"]["country_name"].is_string())
        .count();
    assert!(located >= 2900, "{located} of {} located", enriched.len());
    let jane = enriched
        .iter()
        .find(|e| e["data"]["shopper"]["name"] == "Jane" && e["data"]["shopper"]["id"] == "123")
        .unwrap();
    assert_eq!(jane["data"]["shopper"]["geo"]["city"], "Orlando");
    let bad = std::fs::read(dir.path().join("out/bad.ndjson")).unwrap();
    assert_eq!(lines(&bad).len(), 2);
    assert!(stdout.contains("Orlando"), "{stdout}");
}

/// Every thread count gives the same output, in input order, and the same
/// failure events in the same order: ordering is not left to chance.
#[test]
fn threads_keep_input_order_and_every_failure() {
    let mut input = Vec::new();
    for (i, line) in common::nile_events(40_000, 9)
        .split(|&b| b == b'\n')
        .enumerate()
    {
        if line.is_empty() {
            continue;
        }
        match i % 997 {
            5 => input.extend_from_slice(b"{not json\n"),
            6 => input.extend_from_slice(b"\n"),
            _ => {}
        }
        input.extend_from_slice(line);
        input.push(b'\n');
    }
    // Fails where the shopper id is a multiple of 13; leaves out carts.
    let program = r#"select(.schema | contains("added_to_cart") | not)
        | .data.n = (.data.shopper.id | tonumber | if . % 13 == 0 then error("unlucky \(.)") else . end)"#;
    let dir = tempfile::tempdir().unwrap();
    let run = |threads: &str| {
        let bad = dir.path().join(format!("bad-{threads}.ndjson"));
        let output = cmd("enrich")
            .args(["-j", threads, "--jq", program, "--bad"])
            .arg(&bad)
            .write_stdin(input.clone())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "-j {threads}");
        let failures: Vec<(u64, String)> = std::fs::read(&bad)
            .unwrap()
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let v: Value = serde_json::from_slice(l).unwrap();
                let d = &v["data"];
                (
                    d["input"]["line"].as_u64().unwrap(),
                    d["errors"][0]["message"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        (output.stdout, failures)
    };
    let (one_out, one_failed) = run("1");
    let events = lines(&one_out).len();
    assert!(events > 20_000, "{events} events enriched");
    assert!(one_failed.len() > 1_000, "{} failed", one_failed.len());
    assert!(
        one_failed.windows(2).all(|w| w[0].0 < w[1].0),
        "failures in line order"
    );
    assert!(one_failed.iter().any(|f| f.1.contains("unlucky")));
    assert!(one_failed.iter().any(|f| f.1.contains("not valid JSON")));
    for threads in ["2", "4"] {
        let (out, failed) = run(threads);
        assert!(out == one_out, "output with -j {threads} differs from -j 1");
        assert_eq!(failed, one_failed, "failures with -j {threads}");
    }
}

/// A producer that pauses gets each event passed on at once, not when a
/// batch fills or the input ends.
#[test]
fn a_paused_producer_sees_each_event_at_once() {
    use std::io::{BufRead, BufReader, Write};
    let mut child = Command::new(common::bin("enrich"))
        .args(["-j", "2", "--event-id"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    for i in 0..3 {
        let start = Instant::now();
        writeln!(stdin, r#"{{"schema":"s","data":{{"i":{i}}}}}"#).unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["data"]["i"], i);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "event {i} held back"
        );
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}
