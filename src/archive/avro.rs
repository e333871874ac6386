//! Avro object container files: the generic envelope schema every event
//! fits, the typed envelope around an event's own Avro schema, and the
//! container framing (header, blocks, sync markers) for writing and for
//! reading with every check `--verify` makes.
//!
//! The framing is written here rather than by `apache_avro::Writer`: that
//! writer hands blocks to `Write::write` and ignores a short count (a full
//! disk would leave a silently truncated block), and it cannot say how
//! many bytes a file has so far. Datum encoding of typed records, schema
//! parsing and the codecs (deflate, snappy, zstandard) are apache-avro's.
//!
//! # The generic envelope (`io.unilog.archive.Event`)
//!
//! ```json
//! {"type":"record","name":"Event","namespace":"io.unilog.archive","fields":[
//!   {"name":"unilog","type":["null",{"type":"record","name":"Position","fields":[
//!     {"name":"log","type":"string"},{"name":"partition","type":"long"},
//!     {"name":"offset","type":"long"},{"name":"sub","type":"long"},
//!     {"name":"time","type":["null",{"type":"long","logicalType":"timestamp-millis"}]}]}]},
//!   {"name":"time","type":{"type":"long","logicalType":"timestamp-millis"}},
//!   {"name":"schema","type":"string"},
//!   {"name":"event","type":"string"}]}
//! ```
//!
//! `unilog` is the source position (null without one), `time` the instant
//! that placed the event in its period, `schema` its Iglu URI and `event`
//! the event exactly as it came in, without the position member.
//!
//! # The typed envelope (`io.unilog.archive.TypedEvent`)
//!
//! The same `unilog`, `time` and `schema`, then `data` of the event's own
//! Avro schema (from the registry), then `event`, `["null","string"]`:
//! null when writing `{"schema":…,"data":…}` back from the typed data gives
//! the input's bytes exactly, else the input, so a replay is byte for byte.

use std::io::{Read, Write};

use anyhow::{bail, Context, Result};
use apache_avro::schema::Schema;
use apache_avro::Codec;

use crate::position::Position;

/// The generic envelope's schema, as written into every file's header.
pub const GENERIC_SCHEMA: &str = r#"{"type":"record","name":"Event","namespace":"io.unilog.archive","doc":"An event archived by unilog (generic envelope 1)","fields":[{"name":"unilog","type":["null",{"type":"record","name":"Position","fields":[{"name":"log","type":"string"},{"name":"partition","type":"long"},{"name":"offset","type":"long"},{"name":"sub","type":"long"},{"name":"time","type":["null",{"type":"long","logicalType":"timestamp-millis"}]}]}],"default":null},{"name":"time","type":{"type":"long","logicalType":"timestamp-millis"}},{"name":"schema","type":"string"},{"name":"event","type":"string"}]}"#;

/// The typed envelope's schema with `DATA` standing for the event's own.
const TYPED_SCHEMA: &str = r#"{"type":"record","name":"TypedEvent","namespace":"io.unilog.archive","doc":"An event archived by unilog, typed by its own Avro schema (typed envelope 1)","fields":[{"name":"unilog","type":["null",{"type":"record","name":"Position","fields":[{"name":"log","type":"string"},{"name":"partition","type":"long"},{"name":"offset","type":"long"},{"name":"sub","type":"long"},{"name":"time","type":["null",{"type":"long","logicalType":"timestamp-millis"}]}]}],"default":null},{"name":"time","type":{"type":"long","logicalType":"timestamp-millis"}},{"name":"schema","type":"string"},{"name":"data","type":DATA},{"name":"event","type":["null","string"],"default":null}]}"#;

/// Header metadata key naming which envelope a file holds.
pub const ENVELOPE_KEY: &str = "unilog.envelope";
/// [`ENVELOPE_KEY`]'s value for the generic envelope.
pub const GENERIC: &str = "generic-1";
/// [`ENVELOPE_KEY`]'s value for the typed envelope.
pub const TYPED: &str = "typed-1";

/// The typed envelope's schema text around the event schema `data` (JSON).
pub fn typed_schema(data: &serde_json::Value) -> String {
    // `self` is Iglu's, not Avro's; readers keep unknown attributes, but it
    // says nothing about the datum.
    let mut data = data.clone();
    if let Some(o) = data.as_object_mut() {
        o.remove("self");
    }
    TYPED_SCHEMA.replace("DATA", &data.to_string())
}

/// The codecs `--codec` offers, with their compression levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockCodec {
    /// No compression.
    Null,
    /// Raw deflate (RFC 1951) at a level 0–9.
    Deflate(u8),
    /// Snappy, each block followed by the CRC-32 of its uncompressed bytes.
    Snappy,
    /// Zstandard at a level 1–22.
    Zstd(i32),
}

impl BlockCodec {
    /// The name the header's `avro.codec` carries.
    pub fn name(self) -> &'static str {
        match self {
            BlockCodec::Null => "null",
            BlockCodec::Deflate(_) => "deflate",
            BlockCodec::Snappy => "snappy",
            BlockCodec::Zstd(_) => "zstandard",
        }
    }

    /// Compresses one block's bytes in place.
    pub fn compress(self, block: &mut Vec<u8>) -> Result<()> {
        let mut out = Vec::new();
        self.compress_into(block, &mut out)?;
        *block = out;
        Ok(())
    }

    /// Compresses `block` into `out` (cleared first). The writer keeps both
    /// buffers for the run, so their capacity, and the peak memory, stays
    /// what one block needs however much is archived.
    pub fn compress_into(self, block: &[u8], out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        match self {
            BlockCodec::Null => out.extend_from_slice(block),
            BlockCodec::Deflate(level) => {
                // flate2 (zlib-rs) is several times faster than apache-avro's
                // miniz_oxide at the same level, and writes the same format.
                let mut enc = flate2::write::DeflateEncoder::new(
                    std::mem::take(out),
                    flate2::Compression::new(u32::from(level.min(9))),
                );
                enc.write_all(block)?;
                *out = enc.finish()?;
            }
            BlockCodec::Zstd(level) => {
                out.reserve(zstd::zstd_safe::compress_bound(block.len()));
                zstd::bulk::Compressor::new(level)?.compress_to_buffer(block, out)?;
            }
            BlockCodec::Snappy => {
                out.extend_from_slice(block);
                Codec::Snappy
                    .compress(out)
                    .map_err(|e| anyhow::anyhow!("snappy: {e}"))?;
            }
        }
        Ok(())
    }
}

/// Appends Avro's zig-zag varint encoding of `n`.
#[inline]
pub fn put_long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Appends a string or bytes: its length, then its bytes.
#[inline]
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_long(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

/// Appends the `unilog` union (position or null).
#[inline]
pub fn put_position(out: &mut Vec<u8>, position: Option<&Position>) {
    match position {
        None => put_long(out, 0),
        Some(p) => {
            put_long(out, 1);
            put_bytes(out, p.log.as_bytes());
            put_long(out, i64::from(p.partition));
            put_long(out, p.offset as i64);
            put_long(out, i64::from(p.sub));
            match p.time_ms {
                None => put_long(out, 0),
                Some(t) => {
                    put_long(out, 1);
                    put_long(out, t);
                }
            }
        }
    }
}

/// Appends one generic envelope record.
#[inline]
pub fn put_generic(
    out: &mut Vec<u8>,
    position: Option<&Position>,
    time_ms: i64,
    schema: &[u8],
    event: &[u8],
) {
    put_position(out, position);
    put_long(out, time_ms);
    put_bytes(out, schema);
    put_bytes(out, event);
}

/// The header of a container file: magic, metadata and sync marker.
pub fn header(schema: &str, codec: BlockCodec, meta: &[(&str, &[u8])], sync: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(schema.len() + 128);
    out.extend_from_slice(b"Obj\x01");
    let entries = 2 + meta.len();
    put_long(&mut out, entries as i64);
    put_bytes(&mut out, b"avro.schema");
    put_bytes(&mut out, schema.as_bytes());
    put_bytes(&mut out, b"avro.codec");
    put_bytes(&mut out, codec.name().as_bytes());
    for (k, v) in meta {
        put_bytes(&mut out, k.as_bytes());
        put_bytes(&mut out, v);
    }
    put_long(&mut out, 0);
    out.extend_from_slice(sync);
    out
}

/// The record count and byte size that begin a block of `size` bytes.
pub fn block_head(count: u64, size: usize) -> Vec<u8> {
    let mut head = Vec::with_capacity(20);
    put_long(&mut head, count as i64);
    put_long(&mut head, size as i64);
    head
}

/// The framing of one block: count and size, then the (compressed) bytes,
/// then the sync marker.
pub fn block_frame(out: &mut Vec<u8>, count: u64, data: &[u8], sync: &[u8; 16]) {
    out.extend_from_slice(&block_head(count, data.len()));
    out.extend_from_slice(data);
    out.extend_from_slice(sync);
}

/// A sync marker derived from the file's name, so that the same input
/// writes the same bytes on every run.
pub fn sync_marker(name: &str) -> [u8; 16] {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    let mut m = [0u8; 16];
    m.copy_from_slice(&digest[..16]);
    m
}

/// Reads a zig-zag varint long from `r`.
pub fn read_long(r: &mut impl Read) -> std::io::Result<i64> {
    let mut z: u64 = 0;
    let mut shift = 0;
    loop {
        let mut b = [0u8; 1];
        r.read_exact(&mut b)?;
        if shift >= 64 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a varint longer than 10 bytes",
            ));
        }
        z |= u64::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
}

/// A cursor over decoded block bytes.
pub struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, at: 0 }
    }

    /// True when every byte is read.
    pub fn is_empty(&self) -> bool {
        self.at >= self.bytes.len()
    }

    /// What is left.
    pub fn rest(&self) -> &'a [u8] {
        &self.bytes[self.at.min(self.bytes.len())..]
    }

    /// Moves past `n` bytes read elsewhere.
    pub fn advance(&mut self, n: usize) {
        self.at += n;
    }

    /// The next long.
    #[inline]
    pub fn long(&mut self) -> Result<i64> {
        let mut z: u64 = 0;
        let mut shift = 0;
        loop {
            let Some(&b) = self.bytes.get(self.at) else {
                bail!("a record is cut short");
            };
            self.at += 1;
            if shift >= 64 {
                bail!("a varint longer than 10 bytes");
            }
            z |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    /// The next string or bytes.
    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.long()?;
        let n = usize::try_from(n).map_err(|_| anyhow::anyhow!("a negative length"))?;
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            bail!("a string runs past its block");
        };
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    /// The next `unilog` position union.
    pub fn position(&mut self) -> Result<Option<Position>> {
        match self.long()? {
            0 => Ok(None),
            1 => {
                let log = std::str::from_utf8(self.bytes()?)
                    .context("a log id that is not UTF-8")?
                    .to_string();
                let partition = u32::try_from(self.long()?).context("a partition out of range")?;
                let offset = u64::try_from(self.long()?).context("a negative offset")?;
                let sub = u32::try_from(self.long()?).context("a sub out of range")?;
                let time_ms = match self.long()? {
                    0 => None,
                    1 => Some(self.long()?),
                    n => bail!("union index {n} in a position's time"),
                };
                Ok(Some(Position {
                    log: log.into(),
                    partition,
                    offset,
                    sub,
                    time_ms,
                }))
            }
            n => bail!("union index {n} in the unilog field"),
        }
    }
}

/// One generic record, as read back.
pub struct GenericRecord<'a> {
    /// The source position, if the event had one.
    pub position: Option<Position>,
    /// The placing time.
    pub time_ms: i64,
    /// The schema URI.
    pub schema: &'a [u8],
    /// The event as it came in (without the member).
    pub event: &'a [u8],
}

/// Reads one generic record.
pub fn read_generic<'a>(c: &mut Cursor<'a>) -> Result<GenericRecord<'a>> {
    Ok(GenericRecord {
        position: c.position()?,
        time_ms: c.long()?,
        schema: c.bytes()?,
        event: c.bytes()?,
    })
}

/// A container file's header, as read.
pub struct Header {
    /// The writer schema's text.
    pub schema_text: String,
    /// The codec's name.
    pub codec: String,
    /// Every metadata entry.
    pub meta: Vec<(String, Vec<u8>)>,
    /// The sync marker.
    pub sync: [u8; 16],
}

impl Header {
    /// A metadata value.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.meta
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }
}

/// Reads a container file block by block, checking its framing.
pub struct ContainerReader<R> {
    inner: R,
    /// The header.
    pub header: Header,
    codec: Codec,
    raw: Vec<u8>,
    /// Blocks read so far.
    pub blocks: u64,
}

/// The largest block a reader accepts, so a damaged size cannot ask for
/// gigabytes.
const MAX_BLOCK: i64 = 1 << 30;

impl<R: Read> ContainerReader<R> {
    /// Reads and checks the header.
    pub fn open(mut inner: R) -> Result<Self> {
        let mut magic = [0u8; 4];
        inner
            .read_exact(&mut magic)
            .context("too short for an Avro header")?;
        if &magic != b"Obj\x01" {
            bail!("not an Avro object container file (no Obj\\x01 magic)");
        }
        let mut meta = Vec::new();
        loop {
            let mut n = read_long(&mut inner).context("a cut header")?;
            if n == 0 {
                break;
            }
            if n < 0 {
                let _ = read_long(&mut inner)?;
                n = -n;
            }
            for _ in 0..n {
                let k = read_blob(&mut inner)?;
                let v = read_blob(&mut inner)?;
                meta.push((String::from_utf8_lossy(&k).into_owned(), v));
            }
        }
        let mut sync = [0u8; 16];
        inner
            .read_exact(&mut sync)
            .context("a header without a sync marker")?;
        let get = |k: &str| meta.iter().find(|(mk, _)| mk == k).map(|(_, v)| v.clone());
        let schema_text =
            String::from_utf8(get("avro.schema").context("no avro.schema in the header")?)
                .context("avro.schema is not UTF-8")?;
        let codec = get("avro.codec")
            .map(|c| String::from_utf8_lossy(&c).into_owned())
            .unwrap_or_else(|| "null".into());
        let avro_codec = match codec.as_str() {
            "null" => Codec::Null,
            "deflate" => Codec::Deflate(Default::default()),
            "snappy" => Codec::Snappy,
            "zstandard" => Codec::Zstandard(Default::default()),
            other => bail!("unknown codec {other:?}"),
        };
        Ok(ContainerReader {
            inner,
            header: Header {
                schema_text,
                codec,
                meta,
                sync,
            },
            codec: avro_codec,
            raw: Vec::new(),
            blocks: 0,
        })
    }

    /// The next block's record count and decompressed bytes in `out`, or
    /// `None` at a clean end of file.
    pub fn next_block(&mut self, out: &mut Vec<u8>) -> Result<Option<u64>> {
        let count = match read_long(&mut self.inner) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e).context("cannot read a block"),
        };
        let block = self.blocks + 1;
        if count < 0 {
            bail!("block {block} has a negative record count");
        }
        let size =
            read_long(&mut self.inner).with_context(|| format!("block {block} is cut short"))?;
        if !(0..=MAX_BLOCK).contains(&size) {
            bail!("block {block} claims {size} bytes");
        }
        self.raw.clear();
        self.raw.resize(size as usize, 0);
        self.inner
            .read_exact(&mut self.raw)
            .with_context(|| format!("block {block} is cut short ({size} bytes claimed)"))?;
        let mut sync = [0u8; 16];
        self.inner
            .read_exact(&mut sync)
            .with_context(|| format!("block {block} has no sync marker"))?;
        if sync != self.header.sync {
            bail!("block {block}'s sync marker does not match the header's");
        }
        out.clear();
        match self.codec {
            Codec::Null => out.extend_from_slice(&self.raw),
            Codec::Deflate(_) => {
                let mut dec = flate2::read::DeflateDecoder::new(&self.raw[..]);
                dec.read_to_end(out)
                    .with_context(|| format!("block {block} does not inflate"))?;
            }
            Codec::Zstandard(_) => {
                let mut dec = zstd::stream::read::Decoder::with_buffer(&self.raw[..])?;
                dec.read_to_end(out)
                    .with_context(|| format!("block {block} is not zstandard"))?;
            }
            codec => {
                let mut v = std::mem::take(&mut self.raw);
                codec
                    .decompress(&mut v)
                    .map_err(|e| anyhow::anyhow!("block {block} does not decompress: {e}"))?;
                out.extend_from_slice(&v);
                self.raw = v;
            }
        }
        self.blocks += 1;
        Ok(Some(count as u64))
    }
}

fn read_blob(r: &mut impl Read) -> Result<Vec<u8>> {
    let n = read_long(r).context("a cut header")?;
    if !(0..=MAX_BLOCK).contains(&n) {
        bail!("a header entry claims {n} bytes");
    }
    let mut v = vec![0; n as usize];
    r.read_exact(&mut v).context("a cut header")?;
    Ok(v)
}

/// Parses a writer schema from a header.
pub fn parse_schema(text: &str) -> Result<Schema> {
    Schema::parse_str(text).map_err(|e| anyhow::anyhow!("the header's schema does not parse: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(offset: u64) -> Position {
        Position {
            log: "L".into(),
            partition: 2,
            offset,
            sub: 0,
            time_ms: Some(1_700_000_000_000),
        }
    }

    fn file(codec: BlockCodec, records: &[(Option<Position>, &str)]) -> Vec<u8> {
        let sync = sync_marker("x");
        let mut out = header(
            GENERIC_SCHEMA,
            codec,
            &[(ENVELOPE_KEY, GENERIC.as_bytes())],
            &sync,
        );
        for chunk in records.chunks(2) {
            let mut block = Vec::new();
            for (p, e) in chunk {
                put_generic(
                    &mut block,
                    p.as_ref(),
                    5,
                    b"iglu:a/b/jsonschema/1-0-0",
                    e.as_bytes(),
                );
            }
            codec.compress(&mut block).unwrap();
            block_frame(&mut out, chunk.len() as u64, &block, &sync);
        }
        out
    }

    #[test]
    fn generic_files_read_back_with_apache_avro() {
        let records = [
            (Some(pos(7)), r#"{"schema":"s","data":{"a":"é"}}"#),
            (None, r#"{"schema":"s","data":{}}"#),
            (Some(pos(9)), "{}"),
        ];
        for codec in [
            BlockCodec::Null,
            BlockCodec::Deflate(6),
            BlockCodec::Snappy,
            BlockCodec::Zstd(3),
        ] {
            let bytes = file(codec, &records);
            let reader = apache_avro::Reader::new(&bytes[..]).unwrap();
            let values: Vec<_> = reader.map(|v| v.unwrap()).collect();
            assert_eq!(values.len(), 3, "{codec:?}");
            let apache_avro::types::Value::Record(fields) = &values[0] else {
                panic!("a record")
            };
            assert_eq!(
                fields[2].1,
                apache_avro::types::Value::String("iglu:a/b/jsonschema/1-0-0".into())
            );
            assert_eq!(
                fields[3].1,
                apache_avro::types::Value::String(records[0].1.into())
            );
            // And with our own reader.
            let mut r = ContainerReader::open(&bytes[..]).unwrap();
            let mut block = Vec::new();
            let mut seen = Vec::new();
            while let Some(n) = r.next_block(&mut block).unwrap() {
                let mut c = Cursor::new(&block);
                for _ in 0..n {
                    let rec = read_generic(&mut c).unwrap();
                    seen.push((rec.position, String::from_utf8(rec.event.to_vec()).unwrap()));
                }
                assert!(c.is_empty());
            }
            let want: Vec<_> = records
                .iter()
                .map(|(p, e)| (p.clone(), e.to_string()))
                .collect();
            assert_eq!(seen, want);
        }
    }

    #[test]
    fn damaged_framing_is_found() {
        let bytes = file(
            BlockCodec::Deflate(6),
            &[(Some(pos(1)), "{}"), (None, "{}"), (None, "{}")],
        );
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        let mut r = ContainerReader::open(&bad[..]).unwrap();
        let mut block = Vec::new();
        r.next_block(&mut block).unwrap();
        let e = r.next_block(&mut block).unwrap_err();
        assert!(e.to_string().contains("sync marker"), "{e}");
        let cut = &bytes[..bytes.len() - 5];
        let mut r = ContainerReader::open(cut).unwrap();
        r.next_block(&mut block).unwrap();
        assert!(r.next_block(&mut block).is_err());
        assert!(ContainerReader::open(&b"PAR1"[..]).is_err());
    }

    #[test]
    fn longs_round_trip() {
        for n in [0i64, 1, -1, 63, -64, 64, 1 << 40, i64::MAX, i64::MIN] {
            let mut v = Vec::new();
            put_long(&mut v, n);
            assert_eq!(Cursor::new(&v).long().unwrap(), n);
            assert_eq!(read_long(&mut &v[..]).unwrap(), n);
        }
    }

    #[test]
    fn the_schemas_parse() {
        parse_schema(GENERIC_SCHEMA).unwrap();
        let data =
            serde_json::json!({"type":"record","name":"X","fields":[{"name":"a","type":"int"}]});
        parse_schema(&typed_schema(&data)).unwrap();
    }
}
