//! Event time from a field's raw JSON: RFC 3339 strings (with a fast path
//! for the `2026-11-27T09:00:00.123Z` form every tool here writes), or epoch
//! seconds or milliseconds, chosen or detected by size.

use super::spec::TimeFormat;

/// Numbers below this are epoch seconds when the format is detected (up to
/// the year 5138); larger ones are milliseconds (from March 1973 on).
pub const SECONDS_BELOW: f64 = 1e11;

/// Reads the raw JSON value `raw` (a string with its quotes, or a number) as
/// ms since the epoch; the error says what was found.
pub fn parse(raw: &[u8], format: TimeFormat) -> Result<i64, String> {
    match raw.first() {
        Some(b'"') => {
            let inner = &raw[1..raw.len().saturating_sub(1)];
            if format != TimeFormat::S && format != TimeFormat::Ms {
                if let Some(ms) = fast_rfc3339(inner) {
                    return Ok(ms);
                }
            }
            let text: std::borrow::Cow<'_, str> = match std::str::from_utf8(inner) {
                Ok(t) if memchr::memchr(b'\\', inner).is_none() => t.into(),
                _ => serde_json::from_slice::<String>(raw)
                    .map_err(|e| e.to_string())?
                    .into(),
            };
            match format {
                TimeFormat::Auto | TimeFormat::Rfc3339 => rfc3339(&text),
                TimeFormat::S | TimeFormat::Ms => number(&text, format),
            }
        }
        Some(b'-' | b'0'..=b'9') => {
            if format == TimeFormat::Rfc3339 {
                return Err(format!(
                    "{} is a number, not an RFC 3339 time (use --time-format auto, s or ms)",
                    String::from_utf8_lossy(raw)
                ));
            }
            number(&String::from_utf8_lossy(raw), format)
        }
        _ => Err(format!(
            "a JSON {}, not a time (RFC 3339 text or epoch seconds or ms)",
            kind(raw)
        )),
    }
}

fn kind(raw: &[u8]) -> &'static str {
    match raw.first() {
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        _ => "value",
    }
}

fn number(text: &str, format: TimeFormat) -> Result<i64, String> {
    let n: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of epoch seconds or ms"))?;
    if !n.is_finite() {
        return Err(format!("{text} is not a time"));
    }
    let seconds = match format {
        TimeFormat::S => true,
        TimeFormat::Ms => false,
        _ => n.abs() < SECONDS_BELOW,
    };
    let ms = if seconds { n * 1000.0 } else { n };
    if ms.abs() > 8.2e15 {
        return Err(format!("{text} is out of the range of times"));
    }
    Ok(ms.floor() as i64)
}

/// Parses RFC 3339 into ms since the epoch (sub-millisecond digits are cut).
pub fn rfc3339(text: &str) -> Result<i64, String> {
    if let Some(ms) = fast_rfc3339(text.as_bytes()) {
        return Ok(ms);
    }
    crate::time::parse_rfc3339_ms(text).map_err(|e| e.to_string())
}

/// `YYYY-MM-DDTHH:MM:SS[.f+](Z|±HH:MM)`; `None` for anything else, which
/// the full parser then reads (or refuses with its message).
fn fast_rfc3339(b: &[u8]) -> Option<i64> {
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let d = |i: usize| -> Option<i64> {
        let c = b[i];
        c.is_ascii_digit().then(|| i64::from(c - b'0'))
    };
    let two = |i: usize| -> Option<i64> { Some(d(i)? * 10 + d(i + 1)?) };
    let year = two(0)? * 100 + two(2)?;
    let month = two(5)?;
    let day = two(8)?;
    let (hour, minute, second) = (two(11)?, two(14)?, two(17)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..3 {
            millis *= 10;
        }
    }
    let offset_min = match &b[i..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let all = [*h1, *h2, *m1, *m2];
            if !all.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let h = i64::from(h1 - b'0') * 10 + i64::from(h2 - b'0');
            let m = i64::from(m1 - b'0') * 10 + i64::from(m2 - b'0');
            if h > 23 || m > 59 {
                return None;
            }
            let v = h * 60 + m;
            if *sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some(((days * 86_400 + hour * 3600 + minute * 60 + second) - offset_min * 60) * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<u8> {
        format!("\"{s}\"").into_bytes()
    }

    #[test]
    fn the_fast_path_agrees_with_the_full_parser() {
        for text in [
            "2026-11-27T09:00:00Z",
            "2026-11-27T09:00:00.1Z",
            "2026-11-27T09:00:00.123Z",
            "2026-11-27T09:00:00.123456789Z",
            "2024-02-29T23:59:59.999+05:30",
            "1969-12-31T23:59:59.500-01:00",
            "2000-03-01T00:00:00Z",
        ] {
            let slow = crate::time::parse_rfc3339_ms(text).unwrap();
            assert_eq!(fast_rfc3339(text.as_bytes()), Some(slow), "{text}");
            assert_eq!(parse(&q(text), TimeFormat::Auto), Ok(slow));
        }
        assert_eq!(fast_rfc3339(b"2026-02-30T00:00:00Z"), None);
        assert!(parse(&q("2026-02-30T00:00:00Z"), TimeFormat::Auto).is_err());
        assert!(parse(&q("yesterday"), TimeFormat::Auto).is_err());
    }

    #[test]
    fn epoch_numbers_are_detected_or_chosen() {
        assert_eq!(
            parse(b"1764234000", TimeFormat::Auto),
            Ok(1_764_234_000_000)
        );
        assert_eq!(
            parse(b"1764234000.25", TimeFormat::Auto),
            Ok(1_764_234_000_250)
        );
        assert_eq!(
            parse(b"1764234000000", TimeFormat::Auto),
            Ok(1_764_234_000_000)
        );
        assert_eq!(parse(b"1764234000", TimeFormat::Ms), Ok(1_764_234_000));
        assert_eq!(parse(b"5", TimeFormat::S), Ok(5000));
        assert_eq!(
            parse(&q("1764234000"), TimeFormat::S),
            Ok(1_764_234_000_000)
        );
        assert!(parse(b"1764234000", TimeFormat::Rfc3339).is_err());
        assert!(parse(b"true", TimeFormat::Auto)
            .unwrap_err()
            .contains("boolean"));
        assert!(parse(b"{}", TimeFormat::Auto)
            .unwrap_err()
            .contains("object"));
    }
}
