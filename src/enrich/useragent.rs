//! `--ua PATH`: browser, operating system, device and whether the agent is
//! a bot, from a user-agent string, by uap-core's rules (the rule set
//! Snowplow's UA enrichment and most analytics stacks share, kept current
//! by its community) run by the `ua-parser` crate (uap-core's own Rust
//! implementation). The rules are embedded from `data/uap-core/` (refresh
//! them with `scripts/update-uap-core.sh`).
//!
//! Families are uap-core's answers as they are, `Other` included, so
//! results compare one to one with uap-python, uap-java and Snowplow; a
//! version part uap-core cannot tell is null. `is_bot` is true when
//! uap-core's device rules call the agent a `Spider`, or when it names one
//! of the HTTP client libraries and headless browsers uap-core leaves as
//! `Other` (see [`AUTOMATED`]). No string gives no result.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use super::{error_kind, raw, schema, Derived, Event, Flow, Step};
use crate::event::FailureMessage;
use crate::path::FieldPath;

/// How many distinct agents each worker keeps parsed: real traffic has few
/// distinct agents, and a parse costs tens of microseconds.
const CACHE_LIMIT: usize = 16_384;

/// uap-core's rules, as JSON (converted from its `regexes.yaml`).
const REGEXES: &str = include_str!("../../data/uap-core/regexes.json");

/// Tokens of automated clients that uap-core does not mark as `Spider`:
/// HTTP libraries and headless browsers, matched case-insensitively as
/// the start of a product token (`python-requests/2.31`). Kept short and
/// measured on the committed corpus (tests/data/user-agents).
pub const AUTOMATED: &[&str] = &[
    "python-requests/",
    "python-urllib/",
    "python-httpx/",
    "aiohttp/",
    "okhttp/",
    "axios/",
    "go-http-client/",
    "java/",
    "apache-httpclient/",
    "libwww-perl/",
    "curl/",
    "wget/",
    "node-fetch/",
    "undici",
    "headlesschrome/",
    "phantomjs/",
    "scrapy/",
    "httpclient/",
    "guzzlehttp/",
];

/// The data of a user-agent result (schema `io.unilog/user_agent` 2-0-0).
#[derive(Debug, Serialize, PartialEq, Default)]
pub struct UserAgentFacts<'a> {
    /// Browser or crawler family, such as `Chrome` or `Googlebot`; `Other`
    /// when uap-core does not know it.
    pub browser_family: &'a str,
    /// First part of the browser's version.
    pub browser_major: Option<&'a str>,
    /// Second part of the browser's version.
    pub browser_minor: Option<&'a str>,
    /// Third part of the browser's version.
    pub browser_patch: Option<&'a str>,
    /// Fourth part of the browser's version.
    pub browser_patch_minor: Option<&'a str>,
    /// The known parts of the version joined by dots, such as `120.0.6099`.
    pub browser_version: Option<String>,
    /// Operating system family, such as `Windows` or `iOS`; `Other` when
    /// not known.
    pub os_family: &'a str,
    /// First part of the operating system's version.
    pub os_major: Option<&'a str>,
    /// Second part of the operating system's version.
    pub os_minor: Option<&'a str>,
    /// Third part of the operating system's version.
    pub os_patch: Option<&'a str>,
    /// Fourth part of the operating system's version.
    pub os_patch_minor: Option<&'a str>,
    /// The known parts of the operating system's version joined by dots.
    pub os_version: Option<String>,
    /// Device family, such as `iPhone`, `Mac`, `Samsung SM-T510`, `Spider`;
    /// `Other` when not known (most desktop agents).
    pub device_family: &'a str,
    /// Device brand, such as `Apple`.
    pub device_brand: Option<&'a str>,
    /// Device model, such as `iPad`.
    pub device_model: Option<&'a str>,
    /// True for crawlers, bots and automated clients.
    pub is_bot: bool,
}

/// The known leading parts of a version, joined by dots.
fn joined(parts: [Option<&str>; 4]) -> Option<String> {
    let mut out = String::new();
    for part in parts {
        let Some(p) = part else { break };
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(p);
    }
    (!out.is_empty()).then_some(out)
}

/// True when `agent` names one of the [`AUTOMATED`] clients at the start
/// of a product token.
pub fn automated(agent: &str) -> bool {
    let lower = agent.to_ascii_lowercase();
    AUTOMATED.iter().any(|token| {
        lower
            .match_indices(token)
            .any(|(at, _)| at == 0 || matches!(lower.as_bytes()[at - 1], b' ' | b'(' | b';' | b','))
    })
}

/// uap-core's compiled rules, built once per process (about a second of
/// regex compilation) and shared by every worker.
pub fn extractor() -> &'static ua_parser::Extractor<'static> {
    static EXTRACTOR: OnceLock<ua_parser::Extractor<'static>> = OnceLock::new();
    EXTRACTOR.get_or_init(|| {
        let regexes: ua_parser::Regexes<'static> =
            serde_json::from_str(REGEXES).expect("the embedded uap-core rules parse");
        ua_parser::Extractor::try_from(regexes).expect("the embedded uap-core rules compile")
    })
}

/// Parses a user-agent string into its result's data (JSON).
pub fn facts(extractor: &ua_parser::Extractor<'_>, agent: &str) -> Vec<u8> {
    let ua = extractor.ua.extract(agent);
    let os = extractor.os.extract(agent);
    let dev = extractor.dev.extract(agent);
    let ua_parts = ua
        .as_ref()
        .map(|u| [u.major, u.minor, u.patch, u.patch_minor])
        .unwrap_or_default();
    let os_parts = os
        .as_ref()
        .map(|o| {
            [
                o.major.as_deref(),
                o.minor.as_deref(),
                o.patch.as_deref(),
                o.patch_minor.as_deref(),
            ]
        })
        .unwrap_or_default();
    let device_family = dev.as_ref().map_or("Other", |d| &*d.device);
    let facts = UserAgentFacts {
        browser_family: ua.as_ref().map_or("Other", |u| &*u.family),
        browser_major: ua_parts[0],
        browser_minor: ua_parts[1],
        browser_patch: ua_parts[2],
        browser_patch_minor: ua_parts[3],
        browser_version: joined(ua_parts),
        os_family: os.as_ref().map_or("Other", |o| &*o.os),
        os_major: os_parts[0],
        os_minor: os_parts[1],
        os_patch: os_parts[2],
        os_patch_minor: os_parts[3],
        os_version: joined(os_parts),
        device_family,
        device_brand: dev.as_ref().and_then(|d| d.brand.as_deref()),
        device_model: dev.as_ref().and_then(|d| d.model.as_deref()),
        is_bot: device_family == "Spider" || automated(agent),
    };
    serde_json::to_vec(&facts).expect("plain data serializes")
}

/// The user-agent step.
pub struct UserAgent {
    path: FieldPath,
    extractor: &'static ua_parser::Extractor<'static>,
    /// Results by agent string; each worker keeps its own.
    cache: HashMap<Arc<str>, Box<[u8]>>,
}

impl UserAgent {
    /// A step reading the user agent at `path`.
    pub fn new(path: FieldPath) -> Self {
        UserAgent {
            path,
            extractor: extractor(),
            cache: HashMap::new(),
        }
    }
}

impl Step for UserAgent {
    fn name(&self) -> &'static str {
        "user_agent"
    }

    fn fork(&self) -> anyhow::Result<Box<dyn Step>> {
        Ok(Box::new(UserAgent::new(self.path.clone())))
    }

    fn apply(&mut self, ev: &mut Event, _original: &[u8]) -> Result<Flow, Vec<FailureMessage>> {
        let data: &[u8] = match ev.scalar(&self.path) {
            raw::Scalar::Missing => {
                ev.derive_nothing("user_agent").map_err(|e| vec![e])?;
                return Ok(Flow::Continue);
            }
            raw::Scalar::Compound(kind) => {
                return Err(vec![FailureMessage::new(
                    error_kind::WRONG_TYPE,
                    format!(
                        "the user agent at {} is a JSON {kind}, not a string",
                        self.path
                    ),
                )
                .with("path", self.path.to_string())])
            }
            raw::Scalar::Text(agent) => {
                if !self.cache.contains_key(&*agent) {
                    if self.cache.len() >= CACHE_LIMIT {
                        self.cache.clear();
                    }
                    let data = facts(self.extractor, &agent);
                    self.cache.insert(agent.as_ref().into(), data.into());
                }
                &self.cache[&*agent]
            }
        };
        ev.derive(Derived {
            field: "user_agent",
            schema: schema::USER_AGENT,
            data,
            value: data,
        })
        .map_err(|e| vec![e])?;
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::testing::run;
    use serde_json::json;

    fn step() -> Box<UserAgent> {
        Box::new(UserAgent::new(FieldPath::parse(".data.ua").unwrap()))
    }

    #[test]
    fn parses_browsers_devices_and_bots() {
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36";
        let out = run(
            step(),
            Some(".data"),
            &json!({"data": {"ua": chrome}}).to_string(),
        )
        .unwrap()
        .unwrap();
        let ua = &out["data"]["user_agent"];
        assert_eq!(ua["browser_family"], "Chrome");
        assert_eq!(ua["browser_version"], "120.0.6099.109");
        assert_eq!(ua["os_family"], "Windows");
        assert_eq!(ua["os_version"], "10");
        assert_eq!(ua["is_bot"], false);
        let ipad = "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
        let out = run(step(), None, &json!({"data": {"ua": ipad}}).to_string())
            .unwrap()
            .unwrap();
        let ctx = &out["derived_contexts"][0];
        assert_eq!(ctx["schema"], schema::USER_AGENT);
        assert_eq!(ctx["data"]["browser_family"], "Mobile Safari");
        assert_eq!(ctx["data"]["os_family"], "iOS");
        assert_eq!(ctx["data"]["device_family"], "iPad");
        assert_eq!(ctx["data"]["device_brand"], "Apple");
        let bot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        let out = run(
            step(),
            Some(".x"),
            &json!({"data": {"ua": bot}}).to_string(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(out["x"]["user_agent"]["device_family"], "Spider");
        assert_eq!(out["x"]["user_agent"]["is_bot"], true);
    }

    #[test]
    fn http_libraries_are_bots() {
        for agent in [
            "python-requests/2.31.0",
            "okhttp/4.9.0",
            "Go-http-client/1.1",
        ] {
            assert!(automated(agent), "{agent}");
        }
        for agent in ["Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "MyJava/1"] {
            assert!(!automated(agent), "{agent}");
        }
    }

    #[test]
    fn unknown_and_missing_agents() {
        let out = run(step(), Some(".x"), r#"{"data":{"ua":"zzz-ish"}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(out["x"]["user_agent"]["browser_family"], "Other");
        assert_eq!(
            out["x"]["user_agent"]["browser_version"],
            serde_json::Value::Null
        );
        let out = run(step(), Some(".x"), r#"{"data":{}}"#).unwrap().unwrap();
        assert_eq!(out["x"]["user_agent"], serde_json::Value::Null);
        let err = run(step(), None, r#"{"data":{"ua":[1]}}"#).unwrap_err();
        assert_eq!(err[0].kind, error_kind::WRONG_TYPE);
    }
}
