//! `--config FILE`: the steps as a JSON file, for pipelines too long for a
//! command line. Relative file names are relative to the config file.
//!
//! ```json
//! {
//!   "into": ".data.enriched",
//!   "steps": [
//!     {"geoip": "GeoLite2-City.mmdb", "ip": ".data.shopper.ipAddress"},
//!     {"lookup": "products.csv", "on": ".data.product.sku", "key": "sku", "required": true, "as": "product"},
//!     {"jq": ".data.price_usd = (.data.price_cents / 100)"},
//!     {"ua": ".data.userAgent"},
//!     {"event_id": "random"},
//!     {"anonymize_ip": 1, "ip": ".data.shopper.ipAddress"},
//!     {"enriched_at": true}
//!   ]
//! }
//! ```
//!
//! `into` is optional (derived contexts by default). Each step is an object
//! with exactly one of `geoip`, `lookup`, `jq`, `ua`, `event_id`,
//! `anonymize_ip`, `enriched_at`, and the options that step takes. Errors
//! name the file and the line of the step.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use serde_json::Value;

use super::lookup::LookupSpec;
use super::{raw, Spec, StepSpec};
use crate::path::FieldPath;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    into: Option<String>,
    steps: Vec<RawStep>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStep {
    geoip: Option<PathBuf>,
    ip: Option<String>,
    lookup: Option<PathBuf>,
    on: Option<String>,
    key: Option<String>,
    required: Option<bool>,
    #[serde(rename = "as")]
    name: Option<String>,
    jq: Option<String>,
    ua: Option<String>,
    event_id: Option<Value>,
    anonymize_ip: Option<Value>,
    enriched_at: Option<bool>,
}

/// Reads a config file into a [`Spec`].
pub fn load(path: &Path) -> Result<Spec> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| anyhow!("cannot read config {file}: {e}"))?;
    parse(&bytes, &file, path.parent().unwrap_or(Path::new("")))
}

fn line_of(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Parses config text; `file` names it in messages and `base` is where
/// relative file names start.
pub fn parse(bytes: &[u8], file: &str, base: &Path) -> Result<Spec> {
    let config: RawConfig = serde_json::from_slice(bytes).map_err(|e| {
        if e.line() > 0 {
            anyhow!(
                "{file} line {}: {}",
                e.line(),
                strip_position(&e.to_string())
            )
        } else {
            anyhow!("{file}: {e}")
        }
    })?;
    // Where each step starts, for messages.
    let mut top = raw::TopLevel::default();
    top.scan(bytes).map_err(|e| anyhow!("{file}: {e}"))?;
    let steps_at = top.get(bytes, "steps");
    let step_line = |i: usize| {
        steps_at
            .clone()
            .and_then(|arr| raw::array_element(bytes, arr, i))
            .map(|r| line_of(bytes, r.start))
            .unwrap_or(1)
    };
    let into = match config.into {
        Some(p) => Some(FieldPath::parse(&p).map_err(|e| anyhow!("{file}: \"into\": {e}"))?),
        None => None,
    };
    let mut steps = Vec::with_capacity(config.steps.len());
    for (i, step) in config.steps.into_iter().enumerate() {
        let line = step_line(i);
        let origin = format!("{file} line {line}");
        steps.push(
            step_spec(step, base, &origin).map_err(|e| anyhow!("{origin}: step {}: {e}", i + 1))?,
        );
    }
    Ok(Spec { steps, into })
}

fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

fn path(name: &str, value: Option<String>) -> Result<FieldPath> {
    let value =
        value.ok_or_else(|| anyhow!("needs {name:?}, a path such as .data.shopper.ipAddress"))?;
    FieldPath::parse(&value).map_err(|e| anyhow!("{name:?}: {e}"))
}

fn step_spec(s: RawStep, base: &Path, origin: &str) -> Result<StepSpec> {
    let kinds = [
        s.geoip.is_some(),
        s.lookup.is_some(),
        s.jq.is_some(),
        s.ua.is_some(),
        s.event_id.is_some(),
        s.anonymize_ip.is_some(),
        s.enriched_at.is_some(),
    ];
    match kinds.iter().filter(|&&k| k).count() {
        1 => {}
        0 => bail!(
            "names no step; give one of geoip, lookup, jq, ua, event_id, anonymize_ip, enriched_at"
        ),
        _ => bail!("names more than one step; give each step its own object"),
    }
    let unused = |names: &[(&str, bool)]| -> Result<()> {
        for (name, present) in names {
            if *present {
                bail!("{name:?} does not apply to this step");
            }
        }
        Ok(())
    };
    let ip_only = [
        ("on", s.on.is_some()),
        ("key", s.key.is_some()),
        ("required", s.required.is_some()),
        ("as", s.name.is_some()),
    ];
    let resolve = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
    if let Some(db) = s.geoip {
        unused(&ip_only)?;
        return Ok(StepSpec::GeoIp {
            db: resolve(db),
            ip: path("ip", s.ip)?,
        });
    }
    if let Some(table) = s.lookup {
        unused(&[("ip", s.ip.is_some())])?;
        return Ok(StepSpec::Lookup(LookupSpec {
            table: resolve(table),
            on: path("on", s.on)?,
            key: s.key,
            required: s.required.unwrap_or(false),
            name: s.name,
        }));
    }
    if let Some(expr) = s.jq {
        unused(&ip_only)?;
        unused(&[("ip", s.ip.is_some())])?;
        return Ok(StepSpec::Jq {
            expr,
            origin: origin.to_string(),
        });
    }
    if let Some(ua) = s.ua {
        unused(&ip_only)?;
        unused(&[("ip", s.ip.is_some())])?;
        return Ok(StepSpec::UserAgent {
            path: path("ua", Some(ua))?,
        });
    }
    if let Some(mode) = s.event_id {
        unused(&ip_only)?;
        unused(&[("ip", s.ip.is_some())])?;
        let mode = match mode {
            Value::Bool(true) => Default::default(),
            Value::String(m) => m.parse().map_err(|e: String| anyhow!(e))?,
            other => bail!("\"event_id\" must be true, \"random\" or \"content\", not {other}"),
        };
        return Ok(StepSpec::EventId(mode));
    }
    if let Some(mask) = s.anonymize_ip {
        unused(&ip_only)?;
        let mask = match mask {
            Value::Number(n) => n.to_string(),
            Value::String(m) => m,
            other => bail!("\"anonymize_ip\" must be N or \"N/M\", not {other}"),
        };
        return Ok(StepSpec::AnonymizeIp {
            mask: mask.parse().map_err(|e: String| anyhow!(e))?,
            ip: path("ip", s.ip)?,
        });
    }
    unused(&ip_only)?;
    unused(&[("ip", s.ip.is_some())])?;
    if s.enriched_at != Some(true) {
        bail!("\"enriched_at\" must be true");
    }
    Ok(StepSpec::EnrichedAt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::event_id::IdMode;

    #[test]
    fn parses_every_step() {
        let text = r#"{
  "into": ".data.e",
  "steps": [
    {"geoip": "City.mmdb", "ip": ".data.ip"},
    {"lookup": "/abs/p.csv", "on": ".data.sku", "key": "sku", "required": true, "as": "product"},
    {"jq": ".x = 1"},
    {"ua": ".data.ua"},
    {"event_id": "content"},
    {"event_id": true},
    {"anonymize_ip": 1, "ip": ".data.ip"},
    {"anonymize_ip": "2/6", "ip": ".data.ip"},
    {"enriched_at": true}
  ]
}"#;
        let spec = parse(text.as_bytes(), "e.json", Path::new("/etc/enrich")).unwrap();
        assert_eq!(spec.into.unwrap().to_string(), ".data.e");
        assert_eq!(spec.steps.len(), 9);
        assert_eq!(
            spec.steps[0],
            StepSpec::GeoIp {
                db: "/etc/enrich/City.mmdb".into(),
                ip: FieldPath::parse(".data.ip").unwrap()
            }
        );
        match &spec.steps[1] {
            StepSpec::Lookup(l) => {
                assert_eq!(l.table, PathBuf::from("/abs/p.csv"));
                assert!(l.required);
                assert_eq!(l.table_name(), "product");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            spec.steps[2],
            StepSpec::Jq {
                expr: ".x = 1".into(),
                origin: "e.json line 6".into()
            }
        );
        assert_eq!(spec.steps[4], StepSpec::EventId(IdMode::Content));
        assert_eq!(spec.steps[5], StepSpec::EventId(IdMode::Random));
        match &spec.steps[7] {
            StepSpec::AnonymizeIp { mask, .. } => {
                assert_eq!((mask.v4_octets, mask.v6_segments), (2, 6))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(spec.steps[8], StepSpec::EnrichedAt);
    }

    fn err(text: &str) -> String {
        format!(
            "{:#}",
            parse(text.as_bytes(), "e.json", Path::new(".")).expect_err("should fail")
        )
    }

    #[test]
    fn errors_name_file_and_line() {
        assert!(
            err("{\"steps\": [\n {\"jq\": \".\"},\n {\"geoip\": \"x\"}\n]}")
                .starts_with("e.json line 3: step 2: needs \"ip\"")
        );
        assert!(err("{\"steps\": [\n {\"jq\": \".\", \"ip\": \".a\"}]}")
            .contains("e.json line 2: step 1: \"ip\" does not apply"));
        assert!(err("{\"steps\": [\n {}]}").contains("names no step"));
        assert!(
            err("{\"steps\": [\n {\"jq\": \".\", \"ua\": \".a\"}]}").contains("more than one step")
        );
        assert!(err("{\"steps\": [\n {\"jq\": \".\",\n \"bogus\": 1}]}")
            .starts_with("e.json line 3: unknown field `bogus`"));
        assert!(err("{\"steps\": [\n {\"jq\": \".\"\n ]}").starts_with("e.json line 3:"));
        assert!(err("{\"steps\": [{\"anonymize_ip\": 7, \"ip\": \".a\"}]}").contains("1 to 4"));
        assert!(err("{\"steps\": [{\"event_id\": \"v9\"}]}").contains("random"));
    }
}
