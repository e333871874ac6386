//! Times and durations as users type them: RFC 3339 times and durations such
//! as `30m` or `1h30m`, converted to the milliseconds the log stores.

use anyhow::{anyhow, bail, Result};
use jiff::{SignedDuration, Timestamp};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

/// Parses an RFC 3339 time (`2026-11-27T10:00:00Z`, `…+01:00`, fractional
/// seconds allowed) into milliseconds since the epoch.
pub fn parse_rfc3339_ms(text: &str) -> Result<i64> {
    let ts: Timestamp = text.parse().map_err(|e| {
        anyhow!("{text:?} is not an RFC 3339 time ({e}); write it like 2026-11-27T10:00:00Z")
    })?;
    Ok(ts.as_millisecond())
}

/// Parses a point in time as `--from @TIME` takes it: an RFC 3339 time,
/// `now`, or a time relative to `now_ms` such as `-1h`, `-30m` or `-1d12h`
/// (in the past; `+DUR` is in the future).
pub fn parse_point_ms(text: &str, now_ms: i64) -> Result<i64> {
    let relative = |sign: i64, rest: &str| -> Result<i64> {
        let d = parse_duration_ms(rest).map_err(|e| {
            anyhow!("{text:?} is not a relative time ({e}); write it like -1h, -30m or -7d")
        })?;
        now_ms
            .checked_add(sign * d)
            .ok_or_else(|| anyhow!("{text:?} is too far from now"))
    };
    match text {
        "now" => Ok(now_ms),
        _ if text.starts_with('-') => relative(-1, &text[1..]),
        _ if text.starts_with('+') => relative(1, &text[1..]),
        _ => parse_rfc3339_ms(text)
            .map_err(|e| anyhow!("{e}, or as now, -1h, -30m (relative to now)")),
    }
}

/// Formats milliseconds since the epoch as RFC 3339 in UTC with millisecond
/// precision, the form every event this project writes uses.
pub fn format_rfc3339_ms(ms: i64) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(ts) => format!("{ts:.3}"),
        Err(_) => format!("{ms}ms-since-epoch"),
    }
}

/// Parses a duration such as `30m`, `1h30m`, `2d`, `500ms` or `45s`.
pub fn parse_duration_ms(text: &str) -> Result<i64> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        bail!("empty duration; write it like 30m or 1h30m");
    }
    let (days, rest) = split_days(trimmed)?;
    let rest_ms = if rest.is_empty() {
        0
    } else {
        let d: SignedDuration = rest.parse().map_err(|e| {
            anyhow!("{text:?} is not a duration ({e}); write it like 500ms, 30s, 30m, 1h30m or 7d")
        })?;
        i64::try_from(d.as_millis()).map_err(|_| anyhow!("duration {text:?} is too long"))?
    };
    let total = days
        .checked_mul(86_400_000)
        .and_then(|d| d.checked_add(rest_ms))
        .ok_or_else(|| anyhow!("duration {text:?} is too long"))?;
    if total < 0 {
        bail!("duration {text:?} is negative");
    }
    Ok(total)
}

/// Splits a leading `Nd` off, since days are a common unit for retention that
/// the underlying parser treats as calendar units.
fn split_days(text: &str) -> Result<(i64, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && text[digits..].starts_with('d') && !text[digits..].starts_with("da") {
        let days: i64 = text[..digits]
            .parse()
            .map_err(|_| anyhow!("duration {text:?} is too long"))?;
        return Ok((days, text[digits + 1..].trim_start()));
    }
    Ok((0, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let ms = parse_rfc3339_ms("2026-11-27T10:00:00.250Z").unwrap();
        assert_eq!(format_rfc3339_ms(ms), "2026-11-27T10:00:00.250Z");
        assert_eq!(
            parse_rfc3339_ms("2026-11-27T11:00:00+01:00").unwrap(),
            parse_rfc3339_ms("2026-11-27T10:00:00Z").unwrap()
        );
        assert!(parse_rfc3339_ms("yesterday").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("30m").unwrap(), 1_800_000);
        assert_eq!(parse_duration_ms("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration_ms("500ms").unwrap(), 500);
        assert_eq!(parse_duration_ms("7d").unwrap(), 7 * 86_400_000);
        assert_eq!(parse_duration_ms("1d12h").unwrap(), 36 * 3_600_000);
        assert!(parse_duration_ms("soon").is_err());
        assert!(parse_duration_ms("").is_err());
    }

    #[test]
    fn points_absolute_and_relative() {
        let now = parse_rfc3339_ms("2026-11-27T10:00:00Z").unwrap();
        assert_eq!(parse_point_ms("now", now).unwrap(), now);
        assert_eq!(parse_point_ms("-1h", now).unwrap(), now - 3_600_000);
        assert_eq!(parse_point_ms("-30m", now).unwrap(), now - 1_800_000);
        assert_eq!(parse_point_ms("+1d", now).unwrap(), now + 86_400_000);
        assert_eq!(
            parse_point_ms("2026-11-27T09:00:00Z", now).unwrap(),
            now - 3_600_000
        );
        assert!(parse_point_ms("-soon", now).is_err());
        assert!(parse_point_ms("yesterday", now).is_err());
    }
}
