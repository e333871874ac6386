//! `--anonymize-ip N[/M] --ip PATH`: replaces the address at PATH with one
//! whose last N octets (IPv4, 1–4) or last M 16-bit segments (IPv6, 1–8)
//! are zero, so `203.0.113.57` becomes `203.0.113.0` with N = 1. M defaults
//! to N + 4: N = 1 keeps an IPv6 address's /48 (a site, as an IPv4 /24
//! roughly is), and N = 4 clears both completely. Put it after `--geoip`
//! to locate the full address and store only the masked one.
//!
//! No address leaves the event as it is; a value that is not an address
//! fails the event rather than pass on something that may identify a
//! person.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::{error_kind, raw, Event, Flow, Step};
use crate::event::FailureMessage;
use crate::path::FieldPath;

/// How much of an address to zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mask {
    /// IPv4 octets to zero, from the right (1–4).
    pub v4_octets: u8,
    /// IPv6 16-bit segments to zero, from the right (1–8).
    pub v6_segments: u8,
}

impl FromStr for Mask {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (n, m) = match s.split_once('/') {
            Some((n, m)) => (n, Some(m)),
            None => (s, None),
        };
        let n: u8 = n
            .parse()
            .ok()
            .filter(|n| (1..=4).contains(n))
            .ok_or_else(|| format!("{s:?}: N, the IPv4 octets to zero, must be 1 to 4"))?;
        let m: u8 = match m {
            Some(m) => m
                .parse()
                .ok()
                .filter(|m| (1..=8).contains(m))
                .ok_or_else(|| format!("{s:?}: M, the IPv6 segments to zero, must be 1 to 8"))?,
            None => n + 4,
        };
        Ok(Mask {
            v4_octets: n,
            v6_segments: m,
        })
    }
}

impl Mask {
    /// The address with its low part zeroed.
    pub fn apply(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4);
                let keep = 32 - 8 * u32::from(self.v4_octets);
                let masked = if keep == 0 {
                    0
                } else {
                    bits & (u32::MAX << (32 - keep))
                };
                IpAddr::V4(Ipv4Addr::from(masked))
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                let keep = 128 - 16 * u32::from(self.v6_segments);
                let masked = if keep == 0 {
                    0
                } else {
                    bits & (u128::MAX << (128 - keep))
                };
                IpAddr::V6(Ipv6Addr::from(masked))
            }
        }
    }
}

/// The anonymize-ip step.
pub struct Anonymize {
    mask: Mask,
    ip: FieldPath,
    text: Vec<u8>,
}

impl Anonymize {
    /// A step masking the address at `ip`.
    pub fn new(mask: Mask, ip: FieldPath) -> Self {
        Anonymize {
            mask,
            ip,
            text: Vec::with_capacity(64),
        }
    }
}

impl Step for Anonymize {
    fn name(&self) -> &'static str {
        "anonymize_ip"
    }

    fn fork(&self) -> anyhow::Result<Box<dyn Step>> {
        Ok(Box::new(Anonymize::new(self.mask, self.ip.clone())))
    }

    fn apply(&mut self, ev: &mut Event, _original: &[u8]) -> Result<Flow, Vec<FailureMessage>> {
        let Some(at) = ev.find(&self.ip) else {
            return Ok(Flow::Continue);
        };
        let fail = |kind: &str, message: String| {
            Err(vec![
                FailureMessage::new(kind, message).with("path", self.ip.to_string())
            ])
        };
        let ip = match raw::scalar(ev.bytes(), Some(at.clone())) {
            raw::Scalar::Missing => return Ok(Flow::Continue),
            raw::Scalar::Compound(kind) => {
                return fail(
                    error_kind::WRONG_TYPE,
                    format!("{} is a JSON {kind}, not an IP address", self.ip),
                )
            }
            raw::Scalar::Text(t) => match t.parse::<IpAddr>() {
                Ok(ip) if ev.bytes()[at.start] == b'"' => ip,
                _ => {
                    return fail(
                        error_kind::INVALID_IP,
                        format!(
                            "{} is {}, which is not an IP address, so it cannot be anonymized",
                            self.ip,
                            String::from_utf8_lossy(&ev.bytes()[at.clone()])
                        ),
                    )
                }
            },
        };
        self.text.clear();
        raw::push_str(&mut self.text, &self.mask.apply(ip).to_string());
        ev.replace(at, &self.text);
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::testing::run;

    fn mask(s: &str) -> Mask {
        s.parse().unwrap()
    }

    #[test]
    fn masks_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(mask("1").apply(ip("203.0.113.57")), ip("203.0.113.0"));
        assert_eq!(mask("2").apply(ip("203.0.113.57")), ip("203.0.0.0"));
        assert_eq!(mask("4").apply(ip("203.0.113.57")), ip("0.0.0.0"));
        assert_eq!(
            mask("1").apply(ip("2001:db8:85a3:1:2:8a2e:370:7334")),
            ip("2001:db8:85a3::")
        );
        assert_eq!(mask("1/1").apply(ip("2001:db8::7334")), ip("2001:db8::"));
        assert_eq!(mask("4").apply(ip("2001:db8::1")), ip("::"));
        assert_eq!(mask("2/3").v6_segments, 3);
        for bad in ["0", "5", "x", "1/0", "1/9", "1/"] {
            assert!(bad.parse::<Mask>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rewrites_the_field_in_place() {
        let step = || {
            Box::new(Anonymize::new(
                mask("1"),
                FieldPath::parse(".data.ip").unwrap(),
            ))
        };
        let out = run(step(), None, r#"{"data":{"ip":"192.0.2.77","n":1}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            serde_json::json!({"data": {"ip": "192.0.2.0", "n": 1}})
        );
        let out = run(step(), None, r#"{"data":{"n":1}}"#).unwrap().unwrap();
        assert_eq!(out, serde_json::json!({"data": {"n": 1}}));
        let err = run(step(), None, r#"{"data":{"ip":"nope"}}"#).unwrap_err();
        assert_eq!(err[0].kind, error_kind::INVALID_IP);
        let err = run(step(), None, r#"{"data":{"ip":17}}"#).unwrap_err();
        assert_eq!(err[0].kind, error_kind::INVALID_IP);
    }
}
