//! Timestamps on the wire: RFC 3339 in UTC with whole seconds out; RFC 3339
//! (any offset), plain dates and Unix seconds in.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last second that RFC 3339 with a four-digit year can show.
const MAX_SECS: u64 = 253_402_300_799;

/// Formats a time as `2026-11-27T10:00:00Z`. Times before 1970 or after
/// year 9999 (a file system can hold either) are clamped, never a panic.
pub fn format(t: SystemTime) -> String {
    display(t).to_string()
}

/// [`format()`] as a value to write (into a table row) without a `String`
/// of its own.
pub fn display(t: SystemTime) -> impl std::fmt::Display {
    humantime::format_rfc3339_seconds(clamp(t))
}

/// Clamps a time into what [`format()`] can show, dropping sub-seconds.
pub fn clamp(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs.min(MAX_SECS))
}

/// Seconds since the Unix epoch, 0 for earlier times.
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Parses a time given by a person or a script:
/// `2026-11-27T10:00:00Z`, `2026-11-27T12:00:00+02:00`, `2026-11-27 10:00:00`
/// (UTC when no offset), `2026-11-27 10:00` (no seconds), `2026-11-27`
/// (midnight UTC), Unix seconds, or `now`. Fractions of a second are
/// dropped: the time is the whole second it falls in, as listed.
///
/// ```
/// use p2pshare::timefmt::{format, parse};
///
/// let t = parse("2026-11-27T12:00:00.75+02:00").unwrap();
/// assert_eq!(format(t), "2026-11-27T10:00:00Z");
/// assert_eq!(parse("2026-11-27").unwrap(), parse("2026-11-27T00:00:00Z").unwrap());
/// assert!(parse("2026-13-01").is_err());
/// ```
pub fn parse(s: &str) -> Result<SystemTime, String> {
    parse_exact(s).map(|t| UNIX_EPOCH + Duration::from_secs(unix_secs(t)))
}

fn parse_exact(s: &str) -> Result<SystemTime, String> {
    let bad = || {
        format!(
            "bad time '{}': use RFC 3339 (2026-11-27T10:00:00Z), a date and time (\"2026-11-27 10:00\"), a date (2026-11-27), Unix seconds or now",
            crate::names::shown(s)
        )
    };
    if s.is_empty() || s.len() > 64 {
        return Err(bad());
    }
    if s.eq_ignore_ascii_case("now") {
        return Ok(SystemTime::now());
    }
    // `2026-11-27 10:00`: no seconds.
    if s.len() == 16 && matches!(s.as_bytes()[10], b' ' | b'T' | b't') && s.as_bytes()[13] == b':' {
        return parse_exact(&format!("{s}:00"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = s.parse().map_err(|_| bad())?;
        if secs > MAX_SECS {
            return Err(bad());
        }
        return Ok(UNIX_EPOCH + Duration::from_secs(secs));
    }
    if !s.is_ascii() {
        return Err(bad());
    }
    if s.len() == 10 {
        return humantime::parse_rfc3339(&format!("{s}T00:00:00Z")).map_err(|_| bad());
    }
    // A trailing numeric offset (+hh:mm / -hh:mm) is applied by hand:
    // humantime reads UTC only.
    let (base, offset_secs) = split_offset(s).ok_or_else(bad)?;
    let base = base.strip_suffix(['Z', 'z']).unwrap_or(base);
    // RFC 3339 allows a lowercase `t` as well as `z`; humantime reads only `T`.
    let t = humantime::parse_rfc3339_weak(&base.replacen('t', "T", 1)).map_err(|_| bad())?;
    let t = if offset_secs >= 0 {
        t.checked_sub(Duration::from_secs(offset_secs.unsigned_abs()))
    } else {
        t.checked_add(Duration::from_secs(offset_secs.unsigned_abs()))
    };
    let t = t.ok_or_else(bad)?;
    if t < UNIX_EPOCH {
        return Err(bad());
    }
    Ok(t)
}

/// Splits `...+hh:mm` into the base and the offset in seconds east of UTC.
fn split_offset(s: &str) -> Option<(&str, i64)> {
    let b = s.as_bytes();
    if b.len() > 19 + 6 && matches!(b[b.len() - 6], b'+' | b'-') && b[b.len() - 3] == b':' {
        let sign = if b[b.len() - 6] == b'+' { 1 } else { -1 };
        let hh: i64 = s.get(b.len() - 5..b.len() - 3)?.parse().ok()?;
        let mm: i64 = s.get(b.len() - 2..)?.parse().ok()?;
        if hh > 23 || mm > 59 {
            return None;
        }
        return Some((s.get(..b.len() - 6)?, sign * (hh * 3600 + mm * 60)));
    }
    if b.len() == 19 + 6 && matches!(b[19], b'+' | b'-') && b[22] == b':' {
        let sign = if b[19] == b'+' { 1 } else { -1 };
        let hh: i64 = s.get(20..22)?.parse().ok()?;
        let mm: i64 = s.get(23..25)?.parse().ok()?;
        if hh > 23 || mm > 59 {
            return None;
        }
        return Some((s.get(..19)?, sign * (hh * 3600 + mm * 60)));
    }
    Some((s, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn fractions_are_dropped_minutes_alone_and_now_are_read() {
        // A start with a fraction is the whole second it falls in, so a
        // file listed at that second is inside the range.
        assert_eq!(parse("2026-11-27T10:00:00.75Z"), Ok(t(1795773600)));
        assert_eq!(parse("2026-11-27 10:00:00.5"), Ok(t(1795773600)));
        assert_eq!(parse("2026-11-27 10:00"), Ok(t(1795773600)));
        assert_eq!(parse("2026-11-27T10:00"), Ok(t(1795773600)));
        let before = unix_secs(SystemTime::now());
        let now = unix_secs(parse("now").unwrap());
        assert!(now >= before && now <= before + 60, "{now} {before}");
        assert_eq!(parse("NOW").map(|_| ()), Ok(()));
        assert!(parse("2026-11-27 10").is_err());
    }

    #[test]
    fn parses_every_accepted_form() {
        let cases: &[(&str, u64)] = &[
            ("1795773600", 1795773600),
            ("0", 0),
            ("2026-11-27T10:00:00Z", 1795773600),
            ("2026-11-27t10:00:00z", 1795773600),
            ("2026-11-27T10:00:00", 1795773600),
            ("2026-11-27 10:00:00", 1795773600),
            ("2026-11-27T12:00:00+02:00", 1795773600),
            ("2026-11-27T05:30:00-04:30", 1795773600),
            ("2026-11-27T10:00:00.5Z", 1795773600),
            ("2026-11-27T10:00:00+00:00", 1795773600),
            ("2026-11-27", 1795737600),
        ];
        for (s, want) in cases {
            let got = parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(unix_secs(got), *want, "{s}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for s in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-11-27T25:00:00Z",
            "2026-11-27T10:00:00+25:00",
            "99999999999999999999",
            "1969-12-31T23:00:00Z",
            "1970-01-01T00:00:00+01:00",
            "2026-11-27T10",
            "2026-11-27 10:0",
            "ä026-11-27",
        ] {
            assert!(parse(s).is_err(), "{s} should be refused");
        }
    }

    #[test]
    fn formats_and_clamps() {
        assert_eq!(format(t(1795773600)), "2026-11-27T10:00:00Z");
        assert_eq!(
            format(t(1795773600) + Duration::from_millis(999)),
            "2026-11-27T10:00:00Z"
        );
        assert_eq!(
            format(UNIX_EPOCH - Duration::from_secs(10)),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            format(t(MAX_SECS) + Duration::from_secs(1000)),
            "9999-12-31T23:59:59Z"
        );
    }
}
