//! Results as events: the built-in `iglu:io.unilog/window/jsonschema/1-0-0`
//! (key, window bounds, revision, aggregates and a deterministic
//! `result_id`), or the user's schema with data shaped by a jq expression;
//! `--having` drops results; and the order results are written in.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::aggregate::{self, Aggregates};
use super::spec::Spec;
use super::store::Decided;
use crate::jq::{self, Program};
use crate::json;
use crate::time;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The schema of the results `window` writes by default.
pub const SCHEMA: &str = "iglu:io.unilog/window/jsonschema/1-0-0";

/// A result ready to write, with what orders it among the results decided
/// at the same moment.
#[derive(Debug)]
pub struct Rendered {
    /// Window end, window start, key, then the revision: results decided
    /// together are written in this order, whatever `-j` is.
    pub order: (i64, i64, Arc<[u8]>, u32),
    /// The result event (without a position member), or why it could not be made.
    pub line: Result<Vec<u8>, (String, Vec<u8>)>,
}

/// Turns decided windows into result events.
pub struct Renderer {
    config_id: [u8; 32],
    window: String,
    aggs: Arc<Aggregates>,
    having: Option<Program>,
    shape: Option<(String, Program)>,
    /// The window start and end formatted last.
    starts: (i64, String),
    ends: (i64, String),
}

impl Renderer {
    /// A renderer for `spec`; `config_id` is the hash of its canonical form.
    pub fn new(
        spec: &Spec,
        config_id: [u8; 32],
        aggs: Arc<Aggregates>,
    ) -> anyhow::Result<Renderer> {
        let having = spec
            .having
            .as_deref()
            .map(|h| aggregate::compile(h, "--having"))
            .transpose()?;
        let shape = match (&spec.output_schema, &spec.shape) {
            (Some(uri), Some(code)) => Some((uri.clone(), aggregate::compile(code, "--shape")?)),
            (Some(uri), None) => Some((uri.clone(), aggregate::compile(".", "--shape")?)),
            _ => None,
        };
        Ok(Renderer {
            config_id,
            window: spec.kind.to_string(),
            aggs,
            having,
            shape,
            starts: (0, String::new()),
            ends: (0, String::new()),
        })
    }

    /// The result id of one window's revision: the first 128 bits of
    /// SHA-256 over the configuration's hash, the key, the start and the
    /// revision, in hex.
    pub fn result_id(&self, key: &[u8], start: i64, revision: u32) -> String {
        let mut h = Sha256::new();
        h.update(self.config_id);
        h.update([0]);
        h.update(key);
        h.update([0]);
        h.update(start.to_be_bytes());
        h.update(revision.to_be_bytes());
        let digest = h.finalize();
        let mut hex = String::with_capacity(32);
        for b in &digest[..16] {
            hex.push(char::from(HEX[usize::from(b >> 4)]));
            hex.push(char::from(HEX[usize::from(b & 15)]));
        }
        hex
    }

    /// `ms` in RFC 3339, from `cache` when it is the time formatted last:
    /// results decided together mostly share their bounds.
    fn push_time(out: &mut Vec<u8>, cache: &mut (i64, String), ms: i64) {
        if cache.0 != ms || cache.1.is_empty() {
            *cache = (ms, time::format_rfc3339_ms(ms));
        }
        out.extend_from_slice(cache.1.as_bytes());
    }

    /// Renders one decided window; `None` when `--having` drops it.
    pub fn render(&mut self, d: Decided) -> Option<Rendered> {
        let Decided {
            key,
            mut window,
            closed,
        } = d;
        // In update mode the final result is one revision after the last
        // update; in close mode it is revision 1.
        let revision = if closed {
            window.revision + 1
        } else {
            window.revision
        };
        // The envelope's head first, so that the usual result is made in place.
        let plain = self.having.is_none() && self.shape.is_none();
        let mut data = Vec::with_capacity(320);
        if plain {
            envelope_head(&mut data, SCHEMA);
        }
        let data_start = data.len();
        data.extend_from_slice(br#"{"result_id":""#);
        data.extend_from_slice(self.result_id(&key, window.start, revision).as_bytes());
        data.extend_from_slice(br#"","window":"#);
        json::push_str(&mut data, &self.window);
        data.extend_from_slice(br#","key":"#);
        data.extend_from_slice(&key);
        data.extend_from_slice(br#","window_start":""#);
        Self::push_time(&mut data, &mut self.starts, window.start);
        data.extend_from_slice(br#"","window_end":""#);
        Self::push_time(&mut data, &mut self.ends, window.end);
        data.extend_from_slice(br#"","revision":"#);
        data.extend_from_slice(itoa::Buffer::new().format(revision).as_bytes());
        data.extend_from_slice(if closed {
            br#","final":true"#
        } else {
            br#","final":false"#
        });
        data.extend_from_slice(br#","events":"#);
        data.extend_from_slice(itoa::Buffer::new().format(window.events).as_bytes());
        data.extend_from_slice(br#","aggregates":"#);
        let truncated = self.aggs.write(&mut window.accs, &mut data);
        if !truncated.is_empty() {
            data.extend_from_slice(br#","truncated":{"#);
            for (i, (name, seen)) in truncated.iter().enumerate() {
                if i > 0 {
                    data.push(b',');
                }
                json::push_str(&mut data, name);
                data.push(b':');
                data.extend_from_slice(itoa::Buffer::new().format(*seen).as_bytes());
            }
            data.push(b'}');
        }
        data.push(b'}');
        let order = (window.end, window.start, key, revision);
        if plain {
            data.push(b'}');
            return Some(Rendered {
                order,
                line: Ok(data),
            });
        }
        debug_assert_eq!(data_start, 0);
        let value = match jq::parse_json(&data) {
            Ok(v) => v,
            Err(e) => {
                return Some(Rendered {
                    order,
                    line: Err((format!("cannot read the result back: {e}"), data)),
                })
            }
        };
        if let Some(having) = &self.having {
            match aggregate::passes(having, &value) {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    return Some(Rendered {
                        order,
                        line: Err((format!("--having: {e}"), envelope(SCHEMA, &data))),
                    })
                }
            }
        }
        let Some((uri, shape)) = &self.shape else {
            return Some(Rendered {
                order,
                line: Ok(envelope(SCHEMA, &data)),
            });
        };
        let shaped = match aggregate::first_output(shape, value) {
            Ok(Some(v)) => {
                let mut out = Vec::new();
                jq::write_json(&mut out, &v).map(|_| out)
            }
            Ok(None) => Err("--shape gave no output".to_string()),
            Err(e) => Err(format!("--shape: {e}")),
        };
        Some(Rendered {
            order,
            line: match shaped {
                Ok(out) => Ok(envelope(uri, &out)),
                Err(e) => Err((e, envelope(SCHEMA, &data))),
            },
        })
    }
}

fn envelope_head(out: &mut Vec<u8>, schema: &str) {
    out.extend_from_slice(br#"{"schema":""#);
    out.extend_from_slice(schema.as_bytes());
    out.extend_from_slice(br#"","data":"#);
}

fn envelope(schema: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + schema.len() + 24);
    envelope_head(&mut out, schema);
    out.extend_from_slice(data);
    out.push(b'}');
    out
}

/// The hash of a canonical configuration: the id every result id starts from.
pub fn config_id(canonical: &serde_json::Value) -> [u8; 32] {
    let text = serde_json::to_vec(canonical).expect("values serialize");
    Sha256::digest(&text).into()
}
