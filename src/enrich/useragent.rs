//! `--ua PATH`: browser, operating system and device category from a
//! user-agent string, by the `woothee` crate. Woothee was chosen because it
//! carries its pattern set inside the crate (the uap-core based crates need
//! a `regexes.yaml` fetched separately) and builds from pure Rust with only
//! `regex`. A field woothee cannot tell is null; no string gives nothing.

use std::collections::HashMap;

use serde::Serialize;

use super::{error_kind, raw, schema, Derived, Event, Flow, Step};
use crate::event::FailureMessage;
use crate::path::FieldPath;

const CACHE_LIMIT: usize = 16_384;
const UNKNOWN: &str = "UNKNOWN";

/// The data of a user-agent result.
#[derive(Debug, Serialize, PartialEq)]
pub struct UserAgentFacts<'a> {
    /// Browser (or crawler) name, such as `Chrome`.
    pub browser_name: Option<&'a str>,
    /// Browser version, such as `120.0.6099.109`.
    pub browser_version: Option<&'a str>,
    /// Who makes the browser, such as `Google`.
    pub browser_vendor: Option<&'a str>,
    /// `browser`, `crawler`, `appliance` or `misc`.
    pub agent_type: Option<&'a str>,
    /// Operating system, such as `Windows 10` or `iPhone`.
    pub os_name: Option<&'a str>,
    /// Operating system version.
    pub os_version: Option<&'a str>,
    /// `pc`, `smartphone`, `mobilephone`, `appliance` or `crawler`.
    pub device_category: Option<&'a str>,
}

fn known(s: &str) -> Option<&str> {
    (s != UNKNOWN && !s.is_empty()).then_some(s)
}

/// Parses a user-agent string.
pub fn facts(parser: &woothee::parser::Parser, agent: &str) -> Vec<u8> {
    let r = parser.parse(agent).unwrap_or_default();
    let facts = UserAgentFacts {
        browser_name: known(r.name),
        browser_version: known(r.version),
        browser_vendor: known(r.vendor),
        agent_type: known(r.browser_type),
        os_name: known(r.os),
        os_version: known(&r.os_version),
        device_category: known(r.category),
    };
    serde_json::to_vec(&facts).expect("plain data serializes")
}

/// The user-agent step.
pub struct UserAgent {
    path: FieldPath,
    parser: woothee::parser::Parser,
    cache: HashMap<Box<str>, Box<[u8]>>,
}

impl UserAgent {
    /// A step reading the user agent at `path`.
    pub fn new(path: FieldPath) -> Self {
        UserAgent {
            path,
            parser: woothee::parser::Parser::new(),
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
                    let data = facts(&self.parser, &agent);
                    self.cache
                        .insert(agent.clone().into(), data.into_boxed_slice());
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
    fn parses_browsers_and_devices() {
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36";
        let out = run(
            step(),
            Some(".data"),
            &json!({"data": {"ua": chrome}}).to_string(),
        )
        .unwrap()
        .unwrap();
        let ua = &out["data"]["user_agent"];
        assert_eq!(ua["browser_name"], "Chrome");
        assert_eq!(ua["browser_version"], "120.0.6099.109");
        assert_eq!(ua["os_name"], "Windows 10");
        assert_eq!(ua["device_category"], "pc");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
        let out = run(step(), None, &json!({"data": {"ua": iphone}}).to_string())
            .unwrap()
            .unwrap();
        let ctx = &out["derived_contexts"][0];
        assert_eq!(ctx["schema"], schema::USER_AGENT);
        assert_eq!(ctx["data"]["browser_name"], "Safari");
        assert_eq!(ctx["data"]["os_name"], "iPhone");
        assert_eq!(ctx["data"]["device_category"], "smartphone");
        let bot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        let out = run(
            step(),
            Some(".x"),
            &json!({"data": {"ua": bot}}).to_string(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(out["x"]["user_agent"]["device_category"], "crawler");
    }

    #[test]
    fn unknown_and_missing_agents() {
        let out = run(step(), Some(".x"), r#"{"data":{"ua":"curl-ish/0"}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            out["x"]["user_agent"]["browser_name"],
            serde_json::Value::Null
        );
        let out = run(step(), Some(".x"), r#"{"data":{}}"#).unwrap().unwrap();
        assert_eq!(out["x"]["user_agent"], serde_json::Value::Null);
        let err = run(step(), None, r#"{"data":{"ua":[1]}}"#).unwrap_err();
        assert_eq!(err[0].kind, error_kind::WRONG_TYPE);
    }
}
