//! Reading replies back, as a client does: one reply line, and the fields
//! of the `150 DATA` line.

use std::fmt;

use super::Transport;

/// One line of a reply as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine {
    pub code: u16,
    /// True on the last line of a reply (`DDD text`), false on `DDD-text`.
    pub last: bool,
    pub text: String,
}

/// Parses a reply line (`213-...` or `213 ...`). None when malformed.
pub fn parse_reply_line(line: &str) -> Option<ReplyLine> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let bytes = line.as_bytes();
    if bytes.len() < 3 || !bytes[..3].iter().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let code: u16 = line.get(..3)?.parse().ok()?;
    let (last, text) = match bytes.get(3) {
        None => (true, ""),
        Some(b' ') => (true, line.get(4..)?),
        Some(b'-') => (false, line.get(4..)?),
        Some(_) => return None,
    };
    Some(ReplyLine {
        code,
        last,
        text: text.to_string(),
    })
}

/// The `150 DATA` line's fields: where the data channel of a transfer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataLine {
    pub transport: Transport,
    pub port: u16,
    pub token: String,
}

/// The text of the `150 DATA` line: `DATA tcp port=40123 token=...`.
impl fmt::Display for DataLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DATA {} port={} token={}",
            self.transport.as_str(),
            self.port,
            self.token
        )
    }
}

/// Formats the text of the `150 DATA` line.
pub fn data_line(d: &DataLine) -> String {
    d.to_string()
}

/// Parses the text of a `150 DATA ...` line.
pub fn parse_data_line(text: &str) -> Option<DataLine> {
    let mut words = text.split_whitespace();
    if words.next()? != "DATA" {
        return None;
    }
    let transport = Transport::from_word(words.next()?)?;
    let mut port = None;
    let mut token = None;
    for w in words {
        if let Some(p) = w.strip_prefix("port=") {
            port = p.parse().ok();
        } else if let Some(t) = w.strip_prefix("token=") {
            token = Some(t.to_string());
        }
    }
    Some(DataLine {
        transport,
        port: port?,
        token: token?,
    })
}

/// The word after `DATA` in the `150 DATA` line of the inline data mode
/// (a stdio session): `DATA inline bytes=<n>`, then n raw bytes on the
/// control stream itself.
pub const INLINE: &str = "inline";

/// The text of the inline data mode's `150 DATA` line: `n` bytes follow.
pub fn inline_data_line(bytes: u64) -> String {
    format!("DATA {INLINE} bytes={bytes}")
}

/// The byte count of an inline `150 DATA` line's text (`DATA inline
/// bytes=<n>`, other words after it ignored as in [`parse_data_line`]);
/// None for any other text.
pub fn parse_inline_data_line(text: &str) -> Option<u64> {
    let mut words = text.split_whitespace();
    if words.next()? != "DATA" || words.next()? != INLINE {
        return None;
    }
    let n = words.find_map(|w| w.strip_prefix("bytes="))?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reply_and_data_lines() {
        type Want = Option<(u16, bool, &'static str)>;
        let cases: &[(&str, Want)] = &[
            ("213-name\tsize", Some((213, false, "name\tsize"))),
            ("213 3 files\n", Some((213, true, "3 files"))),
            ("200", Some((200, true, ""))),
            ("2x0 nope", None),
            ("20", None),
            ("200x", None),
        ];
        for (line, want) in cases {
            let got = parse_reply_line(line).map(|r| (r.code, r.last, r.text));
            assert_eq!(
                got,
                want.map(|(c, l, t)| (c, l, t.to_string())),
                "line {line:?}"
            );
        }
        let d = parse_data_line("DATA tcp port=40123 token=5f2a9c0e81d3b7aa").unwrap();
        assert_eq!(d.port, 40123);
        assert_eq!(d.token, "5f2a9c0e81d3b7aa");
        assert_eq!(d.transport, Transport::Tcp);
        assert_eq!(data_line(&d), "DATA tcp port=40123 token=5f2a9c0e81d3b7aa");
        assert_eq!(parse_data_line("DATA tcp port=x token=y"), None);
        assert_eq!(parse_data_line("DATA sctp port=1 token=y"), None);
        assert_eq!(inline_data_line(1048576), "DATA inline bytes=1048576");
        assert_eq!(
            parse_inline_data_line("DATA inline bytes=1048576"),
            Some(1 << 20)
        );
        assert_eq!(
            parse_inline_data_line("DATA inline bytes=0 mac=ab"),
            Some(0)
        );
        assert_eq!(parse_inline_data_line("DATA inline bytes=-1"), None);
        assert_eq!(parse_inline_data_line("DATA inline bytes=+1"), None);
        assert_eq!(parse_inline_data_line("DATA inline"), None);
        assert_eq!(parse_inline_data_line("DATA tcp port=1 token=y"), None);
        assert_eq!(parse_data_line("DATA inline bytes=5"), None);
    }
}

/// How the greeting names the share: a word `share-id=<hex>`.
pub const SHARE_ID_WORD: &str = "share-id=";

/// The share id a greeting's text announces: 32 lowercase hex digits
/// after [`SHARE_ID_WORD`] in one of its words, if there is one.
pub fn greeting_share_id(text: &str) -> Option<&str> {
    text.split([' ', ';'])
        .filter_map(|w| w.strip_prefix(SHARE_ID_WORD))
        .find(|id| id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

#[cfg(test)]
mod share_id_tests {
    use super::greeting_share_id;

    #[test]
    fn the_greeting_names_the_share() {
        let id = "0123456789abcdef0123456789abcdef";
        let text = format!("p2pshare 0.1.0 ready; share-id={id}; HELP lists commands");
        assert_eq!(greeting_share_id(&text), Some(id));
        assert_eq!(
            greeting_share_id("p2pshare 0.1.0 ready; HELP lists commands"),
            None
        );
        assert_eq!(greeting_share_id("x share-id=0123"), None);
        assert_eq!(
            greeting_share_id("share-id=0123456789ABCDEF0123456789abcdef"),
            None
        );
    }
}
