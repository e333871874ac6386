//! One record of the file log: `OFFSET TAB APPEND_TIME_MS TAB CRC32C TAB EVENT`
//! on one line. The CRC-32C covers the offset, the time and the event, so a
//! record checks itself and a segment stays greppable (`cut -f4-`).

use std::fmt;

/// Bytes a record adds around its event at most: two 20-digit numbers, eight
/// hex digits, three tabs and the newline.
pub const MAX_OVERHEAD: usize = 20 + 1 + 20 + 1 + 8 + 1 + 1;

/// A decoded record, borrowing its event from the segment's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The record's offset in its partition.
    pub offset: u64,
    /// When it was appended, in milliseconds since the epoch.
    pub time_ms: i64,
    /// The event, exactly as appended.
    pub event: &'a [u8],
}

/// Why a line is not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// The fields are not there or not numbers.
    Malformed,
    /// The stored CRC-32C does not match the record's bytes.
    Checksum,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Malformed => f.write_str("is not a well-formed record"),
            RecordError::Checksum => f.write_str("fails its CRC-32C check"),
        }
    }
}

/// Appends one encoded record, with its newline, to `out`.
#[inline]
pub fn encode(out: &mut Vec<u8>, offset: u64, time_ms: i64, event: &[u8]) {
    let prefix_start = out.len();
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(num.format(offset).as_bytes());
    out.push(b'\t');
    out.extend_from_slice(num.format(time_ms).as_bytes());
    out.push(b'\t');
    let crc = crc32c::crc32c_append(crc32c::crc32c(&out[prefix_start..]), event);
    out.extend_from_slice(&hex8(crc));
    out.push(b'\t');
    out.extend_from_slice(event);
    out.push(b'\n');
}

/// Decodes one line (without its newline) and checks its CRC-32C.
#[inline]
pub fn decode(line: &[u8]) -> Result<Record<'_>, RecordError> {
    let (offset, rest) = split_number(line).ok_or(RecordError::Malformed)?;
    let (time, rest) = split_number(rest).ok_or(RecordError::Malformed)?;
    let prefix_len = line.len() - rest.len();
    if rest.len() < 9 || rest[8] != b'\t' {
        return Err(RecordError::Malformed);
    }
    let stored = parse_hex8(&rest[..8]).ok_or(RecordError::Malformed)?;
    let event = &rest[9..];
    let crc = crc32c::crc32c_append(crc32c::crc32c(&line[..prefix_len]), event);
    if crc != stored {
        return Err(RecordError::Checksum);
    }
    Ok(Record {
        offset,
        time_ms: time as i64,
        event,
    })
}

/// Reads only the offset and time of a line, without checking the CRC: used
/// to skip forward to a position, where the records skipped are not output.
#[inline]
pub fn peek_offset_time(line: &[u8]) -> Option<(u64, i64)> {
    let (offset, rest) = split_number(line)?;
    let (time, _) = split_number(rest)?;
    Some((offset, time as i64))
}

#[inline]
fn split_number(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(21) {
        match b {
            b'0'..=b'9' => {
                value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            }
            b'\t' if i > 0 => return Some((value, &bytes[i + 1..])),
            _ => return None,
        }
    }
    None
}

#[inline]
fn hex8(value: u32) -> [u8; 8] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 8];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = DIGITS[((value >> (28 - 4 * i)) & 0xf) as usize];
    }
    out
}

#[inline]
fn parse_hex8(bytes: &[u8]) -> Option<u32> {
    let mut value = 0u32;
    for &b in bytes {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        value = (value << 4) | u32::from(digit);
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut out = Vec::new();
        encode(&mut out, 42, 1_700_000_000_123, br#"{"a":"b	c"}"#);
        assert_eq!(out.last(), Some(&b'\n'));
        let line = &out[..out.len() - 1];
        let text = std::str::from_utf8(line).unwrap();
        assert!(text.starts_with("42\t1700000000123\t"));
        let rec = decode(line).unwrap();
        assert_eq!(rec.offset, 42);
        assert_eq!(rec.time_ms, 1_700_000_000_123);
        assert_eq!(rec.event, br#"{"a":"b	c"}"#);
        assert_eq!(peek_offset_time(line), Some((42, 1_700_000_000_123)));
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let mut out = Vec::new();
        encode(&mut out, 7, 123, br#"{"k":1}"#);
        let line = &out[..out.len() - 1];
        for i in 0..line.len() {
            let mut bad = line.to_vec();
            bad[i] ^= 0x01;
            assert!(decode(&bad).is_err(), "flip at {i} not caught");
        }
    }

    #[test]
    fn malformed_lines() {
        for bad in [
            &b""[..],
            b"x\t1\t00000000\t{}",
            b"1\t2\t0000\t{}",
            b"1\t2",
            b"\t2\t00000000\t{}",
        ] {
            assert_eq!(decode(bad).unwrap_err(), RecordError::Malformed);
        }
    }
}
