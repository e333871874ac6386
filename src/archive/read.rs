//! Reading archived events back out of one file, whatever its format: the
//! position, the placing time and the event's bytes as they came in.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{bail, Context, Result};

use super::avro::{self, ContainerReader, Cursor};
use super::layout::{Format, Layout, TimeSource};
use super::typed::Typed;
use crate::io::{Line, LineReader};
use crate::json::TopLevel;
use crate::position::{self, Position};

/// One archived event.
#[derive(Debug, Default, Clone)]
pub struct Event {
    /// Its source position, if it had one.
    pub position: Option<Position>,
    /// The time that placed it (None when it cannot be read back).
    pub time_ms: Option<i64>,
    /// The event as it came in, without the position member.
    pub bytes: Vec<u8>,
}

enum Inner {
    Avro {
        reader: ContainerReader<BufReader<File>>,
        block: Vec<u8>,
        at: usize,
        left: u64,
        typed: Option<Arc<Typed>>,
    },
    Ndjson {
        lines: LineReader<Box<dyn std::io::Read>>,
        top: TopLevel,
    },
}

/// Reads the events of one archive file in the order they were written.
pub struct FileReader {
    inner: Inner,
    time: TimeSource,
    /// Events read so far.
    pub events: u64,
}

/// Schemas of typed files, parsed once per process (they are few).
fn typed_for(text: &str) -> Result<Arc<Typed>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Typed>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock().expect("the schema cache is never poisoned");
    if let Some(t) = map.get(text) {
        return Ok(t.clone());
    }
    let t = Arc::new(Typed::new(text).map_err(|e| anyhow::anyhow!("the typed data schema {e}"))?);
    map.insert(text.to_string(), t.clone());
    Ok(t)
}

impl FileReader {
    /// Opens `path`, of the format its name says.
    pub fn open(path: &Path, format: Format, layout: &Layout) -> Result<FileReader> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let inner = match format {
            Format::Avro => {
                let reader = ContainerReader::open(BufReader::with_capacity(256 << 10, file))?;
                let typed = match reader.header.get(avro::ENVELOPE_KEY) {
                    Some(v) if v == avro::GENERIC.as_bytes() => None,
                    Some(v) if v == avro::TYPED.as_bytes() => {
                        let text = reader
                            .header
                            .get("unilog.data.schema")
                            .context("a typed file without unilog.data.schema")?;
                        Some(typed_for(std::str::from_utf8(text)?)?)
                    }
                    _ => bail!(
                        "not an archive file: no {} in its header",
                        avro::ENVELOPE_KEY
                    ),
                };
                Inner::Avro {
                    reader,
                    block: Vec::new(),
                    at: 0,
                    left: 0,
                    typed,
                }
            }
            f => Inner::Ndjson {
                lines: LineReader::with_max_line(super::ndjson::reader(file, f)?, usize::MAX >> 1),
                top: TopLevel::default(),
            },
        };
        Ok(FileReader {
            inner,
            time: layout.time.clone(),
            events: 0,
        })
    }

    /// Reads the next event into `out`; false at the end of the file.
    pub fn next(&mut self, out: &mut Event) -> Result<bool> {
        let n = self.events + 1;
        let got = match &mut self.inner {
            Inner::Avro {
                reader,
                block,
                at,
                left,
                typed,
            } => {
                while *left == 0 {
                    match reader.next_block(block)? {
                        Some(count) => {
                            *left = count;
                            *at = 0;
                            if count == 0 && !block.is_empty() {
                                bail!("block {} has bytes but no records", reader.blocks);
                            }
                        }
                        None => return Ok(false),
                    }
                }
                let mut c = Cursor::new(&block[*at..]);
                read_avro(&mut c, typed.as_deref(), out)
                    .with_context(|| format!("record {n} (block {})", reader.blocks))?;
                *at = block.len() - c.rest().len();
                *left -= 1;
                if *left == 0 && *at != block.len() {
                    bail!(
                        "block {} has {} bytes after its last record",
                        reader.blocks,
                        block.len() - *at
                    );
                }
                true
            }
            Inner::Ndjson { lines, top } => match lines.next_line()? {
                None => false,
                Some((_, Line::Oversize { .. })) => bail!("line {n} is too long"),
                Some((_, Line::Full(line))) => {
                    out.bytes.clear();
                    match position::split(line).map_err(|m| anyhow::anyhow!("line {n}: {m}"))? {
                        Some((p, rest)) => {
                            out.time_ms = p.time_ms;
                            out.position = Some(p);
                            out.bytes = rest;
                        }
                        None => {
                            out.position = None;
                            out.time_ms = None;
                            out.bytes.extend_from_slice(line);
                        }
                    }
                    if let TimeSource::Field(path) = &self.time {
                        top.scan(&out.bytes)
                            .map_err(|e| anyhow::anyhow!("line {n} is not a JSON object: {e}"))?;
                        let at = crate::json::find(&out.bytes, top.object.clone(), path.segments());
                        out.time_ms = super::writer::event_time(&out.bytes, at).ok();
                    }
                    true
                }
            },
        };
        if got {
            self.events += 1;
        }
        Ok(got)
    }
}

fn read_avro(c: &mut Cursor<'_>, typed: Option<&Typed>, out: &mut Event) -> Result<()> {
    out.bytes.clear();
    match typed {
        None => {
            let r = avro::read_generic(c)?;
            out.position = r.position;
            out.time_ms = Some(r.time_ms);
            out.bytes.extend_from_slice(r.event);
        }
        Some(t) => {
            out.position = c.position()?;
            out.time_ms = Some(c.long()?);
            let schema = c.bytes()?;
            let mut rest = c.rest();
            let before = rest.len();
            let value = t
                .decode(&mut rest)
                .map_err(|e| anyhow::anyhow!("typed data: {e}"))?;
            c.advance(before - rest.len());
            match c.long()? {
                0 => {
                    out.bytes.extend_from_slice(b"{\"schema\":");
                    let uri = std::str::from_utf8(schema).context("a schema that is not UTF-8")?;
                    crate::json::push_str(&mut out.bytes, uri);
                    out.bytes.extend_from_slice(b",\"data\":");
                    t.render(&value, &mut out.bytes)
                        .map_err(|_| anyhow::anyhow!("typed data that cannot be written back"))?;
                    out.bytes.push(b'}');
                }
                1 => out.bytes.extend_from_slice(c.bytes()?),
                n => bail!("union index {n} in the event field"),
            }
        }
    }
    Ok(())
}
