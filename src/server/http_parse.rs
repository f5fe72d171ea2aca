//! HTTP/1.1 requests as the HTTP front end reads them: the request line
//! and headers with their caps, URL paths and query strings
//! percent-decoded exactly, share names percent-encoded for links, one
//! byte range, and HTTP dates. Nothing here touches the share or a
//! socket beyond the reader it is given.

use std::io::{self, BufRead};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest request line, in bytes (414 past it).
pub const MAX_REQUEST_LINE: usize = 8192;
/// The longest header section, all header lines together (431 past it).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most header lines (431 past it).
pub const MAX_HEADERS: usize = 64;

/// A request's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The target as sent, for the history.
    pub target: String,
    /// The path part, still percent-encoded.
    pub path: String,
    /// The query's pairs, decoded (`+` is a space).
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// HTTP/1.0 (no keep-alive unless asked for).
    pub http10: bool,
}

impl Request {
    /// The first header of that name (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    /// The first query parameter of that name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// True when the connection stays open after the reply.
    pub fn keep_alive(&self) -> bool {
        let conn = self.header("connection").unwrap_or("").to_ascii_lowercase();
        if self.http10 {
            conn.contains("keep-alive")
        } else {
            !conn.contains("close")
        }
    }
}

/// Why a request could not be read: a status to answer with (the
/// connection closes after it), or the connection's end (closed, timed
/// out, broken off in the middle).
#[derive(Debug)]
pub enum ReadError {
    Status(u16, &'static str),
    Closed,
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Closed
    }
}

/// Reads one line of at most `max` bytes (without its CR LF); `Ok(None)`
/// at the end of the stream before any byte. A longer line is `too_long`.
fn read_line(
    r: &mut impl BufRead,
    max: usize,
    too_long: ReadError,
) -> Result<Option<Vec<u8>>, ReadError> {
    let mut line = Vec::new();
    let n = io::Read::take(&mut *r, max as u64 + 2).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        if line.len() > max {
            return Err(too_long);
        }
        return Err(ReadError::Closed);
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.len() > max {
        return Err(too_long);
    }
    Ok(Some(line))
}

/// Reads a request head; `Ok(None)` when the connection ended between
/// requests. Blank lines before a request are skipped (RFC 9112 2.2).
pub fn read_request(r: &mut impl BufRead) -> Result<Option<Request>, ReadError> {
    let line = loop {
        let too_long = ReadError::Status(414, "request line too long");
        match read_line(r, MAX_REQUEST_LINE, too_long)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => continue,
            Some(l) => break l,
        }
    };
    let line = String::from_utf8(line).map_err(|_| ReadError::Status(400, "bad request line"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Status(400, "bad request line"));
    };
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(ReadError::Status(505, "HTTP/1.1 only")),
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ReadError::Status(400, "bad method"));
    }
    if !target.starts_with('/') || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(ReadError::Status(400, "bad request target"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = path.split('#').next().unwrap_or("");
    let mut headers = Vec::new();
    let mut bytes = 0;
    loop {
        let too_long = ReadError::Status(431, "header too large");
        let Some(h) = read_line(r, MAX_HEADER_BYTES, too_long)? else {
            return Err(ReadError::Closed);
        };
        if h.is_empty() {
            break;
        }
        bytes += h.len() + 2;
        if bytes > MAX_HEADER_BYTES || headers.len() >= MAX_HEADERS {
            return Err(ReadError::Status(431, "too many or too large headers"));
        }
        let h = String::from_utf8_lossy(&h);
        let Some((name, value)) = h.split_once(':') else {
            return Err(ReadError::Status(400, "bad header line"));
        };
        if name.is_empty() || name.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(ReadError::Status(400, "bad header name"));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Ok(Some(Request {
        method: method.to_string(),
        target: target.to_string(),
        path: path.to_string(),
        query: parse_query(query),
        headers,
        http10,
    }))
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Percent-decodes `s` to bytes; `plus` makes `+` a space (query
/// strings). A `%` not followed by two hex digits stays as it is.
pub fn percent_decode(s: &str, plus: bool) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = b.get(i + 1).and_then(|&x| hex_val(x));
                let l = b.get(i + 2).and_then(|&x| hex_val(x));
                if let (Some(h), Some(l)) = (h, l) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// A query string's pairs, each decoded; invalid UTF-8 is replaced.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .take(32)
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| String::from_utf8_lossy(&percent_decode(s, true)).into_owned();
            (dec(k), dec(v))
        })
        .collect()
}

/// What a URL path names: the share name (no leading `/`) and whether it
/// ended with `/` (a folder). None when the decoded bytes are not UTF-8
/// (overlong forms included) or hold a NUL: such a path names nothing.
/// The name's rules (no `..`, no hidden or empty components) are the
/// share's to check.
pub fn name_of_path(path: &str) -> Option<(String, bool)> {
    let bytes = percent_decode(path, false);
    let name = String::from_utf8(bytes).ok()?;
    if name.contains('\0') {
        return None;
    }
    let name = name.strip_prefix('/')?;
    match name.strip_suffix('/') {
        Some(folder) => Some((folder.to_string(), true)),
        None => Some((name.to_string(), name.is_empty())),
    }
}

/// A share name as a URL path (with a leading `/`): every byte but
/// `A-Z a-z 0-9 - . _ ~ /` percent-encoded.
pub fn url_of(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    out.push('/');
    encode_into(&mut out, name, b"-._~/");
    out
}

/// Percent-encodes `s` for a query value or an RFC 8187 `filename*`.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    encode_into(&mut out, s, b"-._~");
    out
}

fn encode_into(out: &mut String, s: &str, keep: &[u8]) {
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
}

/// A `Range` header's one range, resolved against a file of `size`
/// bytes: `Ok(Some((first, last)))`, `Ok(None)` when the header is not
/// one byte range (the whole file is sent), `Err(())` when it cannot be
/// satisfied (416).
#[allow(clippy::result_unit_err)]
pub fn one_range(header: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (first, last) = match (a.is_empty(), b.is_empty()) {
        (true, false) => {
            let Some(n) = num(b) else { return Ok(None) };
            if n == 0 || size == 0 {
                return Err(());
            }
            (size.saturating_sub(n), size - 1)
        }
        (false, _) => {
            let Some(first) = num(a) else { return Ok(None) };
            let last = if b.is_empty() {
                u64::MAX
            } else {
                match num(b) {
                    Some(l) if l >= first => l,
                    _ => return Ok(None),
                }
            };
            if first >= size {
                return Err(());
            }
            (first, last.min(size - 1))
        }
        (true, true) => return Ok(None),
    };
    Ok(Some((first, last)))
}

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Whole seconds since the epoch (0 before it).
pub fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(t: SystemTime) -> String {
    let s = secs(t);
    let days = (s / 86_400) as i64;
    let rem = s % 86_400;
    let (y, m, d) = civil(days);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[m as usize - 1],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Reads an IMF-fixdate; None for anything else.
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let rest = s.trim().split_once(", ")?.1;
    let f: Vec<&str> = rest.split(' ').collect();
    let [d, mon, y, hms, "GMT"] = f.as_slice() else {
        return None;
    };
    let d: u32 = d.parse().ok()?;
    let m = MONTHS.iter().position(|x| x == mon)? as u32 + 1;
    let y: i64 = y.parse().ok()?;
    let t: Vec<u64> = hms
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [h, mi, se] = t.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&d) || *h > 23 || *mi > 59 || *se > 60 {
        return None;
    }
    let days = u64::try_from(days_from_civil(y, m, d)).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(days * 86_400 + h * 3600 + mi * 60 + se))
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn parse(raw: &str) -> Result<Option<Request>, ReadError> {
        read_request(&mut Cursor::new(raw.as_bytes().to_vec()))
    }

    fn status(raw: &str) -> u16 {
        match parse(raw) {
            Err(ReadError::Status(s, _)) => s,
            other => panic!("{raw:?}: {other:?}"),
        }
    }

    #[test]
    fn reads_a_request_with_headers_and_query() {
        let r = parse(
            "GET /a%20b/c?sort=size&glob=*.txt+x HTTP/1.1\r\nHost: x\r\nRange:  bytes=1-\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/a%20b/c");
        assert_eq!(r.param("glob"), Some("*.txt x"));
        assert_eq!(r.header("range"), Some("bytes=1-"));
        assert!(r.keep_alive());
        assert!(parse("").unwrap().is_none());
    }

    #[test]
    fn caps_give_4xx() {
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_REQUEST_LINE));
        assert_eq!(status(&long), 414);
        let mut many = String::from("GET / HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            many.push_str(&format!("X-{i}: y\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(status(&many), 431);
        let big = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
            "v".repeat(MAX_HEADER_BYTES)
        );
        assert_eq!(status(&big), 431);
        assert_eq!(status("GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(status("GET  / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status("GET http://x/ HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nno colon\r\n\r\n"), 400);
    }

    #[test]
    fn paths_decode_exactly_and_names_encode_back() {
        let odd = "a b/#?%\"'\t\n\r\\ 😀.txt";
        assert_eq!(name_of_path(&url_of(odd)), Some((odd.to_string(), false)));
        assert_eq!(name_of_path("/"), Some((String::new(), true)));
        assert_eq!(name_of_path("/d/"), Some(("d".into(), true)));
        assert_eq!(name_of_path("/a%2f..%2fb"), Some(("a/../b".into(), false)));
        // Overlong UTF-8 for `.` and `/`, and a NUL, name nothing.
        assert_eq!(name_of_path("/%c0%ae%c0%ae/x"), None);
        assert_eq!(name_of_path("/%c0%af"), None);
        assert_eq!(name_of_path("/a%00"), None);
        assert_eq!(percent_decode("%zz%4", false), b"%zz%4");
        assert_eq!(percent_decode("%41%", false), b"A%");
    }

    #[test]
    fn one_range_is_resolved() {
        assert_eq!(one_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(one_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(one_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(one_range("bytes=50-1000", 100), Ok(Some((50, 99))));
        assert_eq!(one_range("bytes=100-", 100), Err(()));
        assert_eq!(one_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(one_range("items=0-1", 100), Ok(None));
        assert_eq!(one_range("bytes=5-1", 100), Ok(None));
    }

    #[test]
    fn http_dates_round_trip() {
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
        let now = UNIX_EPOCH + Duration::from_secs(secs(SystemTime::now()));
        assert_eq!(parse_http_date(&http_date(now)), Some(now));
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }
}
