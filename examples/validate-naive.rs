//! The plain way to validate self-describing events in Rust, as a peer for
//! `bench/validate.sh`: parse each line into a `serde_json::Value`, look the
//! schema up in a map, and validate `data` with the `jsonschema` crate's
//! default representation. Same job and registry as `validate`.
//!
//! Usage: validate-naive REGISTRY < events > good

use std::collections::HashMap;
use std::io::{BufRead, BufWriter, Write};

fn main() {
    let registry = std::env::args()
        .nth(1)
        .expect("usage: validate-naive REGISTRY");
    let mut validators: HashMap<String, jsonschema::Validator> = HashMap::new();
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::with_capacity(256 << 10, std::io::stdout().lock());
    let mut bad = 0u64;
    for line in stdin.split(b'\n') {
        let line = line.expect("read");
        let Ok(event) = serde_json::from_slice::<serde_json::Value>(&line) else {
            bad += 1;
            continue;
        };
        let (Some(uri), Some(data)) = (event["schema"].as_str(), event.get("data")) else {
            bad += 1;
            continue;
        };
        if !validators.contains_key(uri) {
            let rel = uri.trim_start_matches("iglu:");
            let text = std::fs::read_to_string(format!("{registry}/{rel}")).expect("schema");
            let mut schema: serde_json::Value = serde_json::from_str(&text).expect("schema JSON");
            let obj = schema.as_object_mut().unwrap();
            obj.remove("self");
            obj.insert(
                "$schema".into(),
                "http://json-schema.org/draft-04/schema#".into(),
            );
            let v = jsonschema::options()
                .should_validate_formats(true)
                .build(&schema)
                .expect("compiles");
            validators.insert(uri.to_string(), v);
        }
        if validators[uri].is_valid(data) {
            out.write_all(&line).unwrap();
            out.write_all(b"\n").unwrap();
        } else {
            bad += 1;
        }
    }
    out.flush().unwrap();
    eprintln!("validate-naive: {bad} failed");
}
