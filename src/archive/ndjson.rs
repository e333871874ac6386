//! Compressed NDJSON files: the event lines as they came in (position
//! member included), compressed in blocks of about a megabyte, each block
//! one complete zstd frame or gzip member. Concatenated frames and members
//! are what `zstd -d`, `gzip -d`, DuckDB and Spark read as one stream, and
//! blocks let every open file share one compressor instead of keeping a
//! streaming context each.

use std::io::{Read, Write};

use anyhow::{Context, Result};

/// Which compression an NDJSON file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// zstd at a level 1–22.
    Zstd(i32),
    /// gzip at a level 0–9.
    Gzip(u32),
}

/// A reusable compressor for whole blocks.
pub struct BlockCompressor {
    compression: Compression,
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

impl BlockCompressor {
    /// A compressor for `compression`.
    pub fn new(compression: Compression) -> Result<Self> {
        let zstd = match compression {
            Compression::Zstd(level) => Some(zstd::bulk::Compressor::new(level)?),
            Compression::Gzip(_) => None,
        };
        Ok(BlockCompressor { compression, zstd })
    }

    /// Compresses `block` into `out` (cleared first) as one frame or member.
    pub fn compress(&mut self, block: &[u8], out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        match self.compression {
            Compression::Zstd(_) => {
                let z = self.zstd.as_mut().expect("made with a zstd context");
                out.reserve(zstd::zstd_safe::compress_bound(block.len()));
                z.compress_to_buffer(block, out)?;
            }
            Compression::Gzip(level) => {
                let mut enc = flate2::write::GzEncoder::new(
                    std::mem::take(out),
                    flate2::Compression::new(level.min(9)),
                );
                enc.write_all(block)?;
                *out = enc.finish()?;
            }
        }
        Ok(())
    }
}

/// Opens a decompressing reader for an NDJSON file of `format`.
pub fn reader<'a, R: Read + 'a>(
    inner: R,
    format: super::layout::Format,
) -> Result<Box<dyn Read + 'a>> {
    use super::layout::Format;
    Ok(match format {
        Format::NdjsonZst => Box::new(
            zstd::stream::read::Decoder::new(inner).context("cannot start a zstd decoder")?,
        ),
        Format::NdjsonGz => Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            inner,
        ))),
        Format::Avro => anyhow::bail!("an Avro file is not NDJSON"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::layout::Format;

    #[test]
    fn blocks_concatenate_into_one_stream() {
        for (c, f) in [
            (Compression::Zstd(3), Format::NdjsonZst),
            (Compression::Gzip(6), Format::NdjsonGz),
        ] {
            let mut comp = BlockCompressor::new(c).unwrap();
            let mut file = Vec::new();
            let mut out = Vec::new();
            for block in [&b"{\"a\":1}\n{\"b\":2}\n"[..], b"{\"c\":3}\n"] {
                comp.compress(block, &mut out).unwrap();
                file.extend_from_slice(&out);
            }
            let mut text = String::new();
            reader(&file[..], f)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            assert_eq!(text, "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
        }
    }
}
