//! File names on the wire and on screen: the one codec both directions
//! use. A shared name may hold any character but NUL and `/`; tables write
//! TAB, LF, CR and backslash as `\t`, `\n`, `\r`, `\\`, and a request
//! word reads exactly those escapes back, so a name copied from a table
//! names the same file when pasted into a request (PROTOCOL.md sections 1,
//! 3 and 11). Nothing here knows about sockets or files.

/// Which escapes a word may hold beyond the wire's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escapes {
    /// The request grammar of the wire: `\\`, `\t`, `\n`, `\r` (and `\"`
    /// inside quotes), the exact inverse of [`escape_field`].
    Wire,
    /// What the client's console reads: the wire's escapes plus
    /// `\u{HEX}` for any character, the form [`shown`] prints control
    /// characters in, so that a name copied from the client's output
    /// names the same file when typed back.
    Console,
}

/// The character an escape stands for, given what follows its backslash,
/// and how many bytes of that it takes; None when the backslash stands
/// for itself.
pub(crate) fn unescape_one(after: &str, quoted: bool, escapes: Escapes) -> Option<(char, usize)> {
    let c = after.chars().next()?;
    let simple = match c {
        '\\' => Some('\\'),
        't' => Some('\t'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        '"' if quoted => Some('"'),
        _ => None,
    };
    if let Some(ch) = simple {
        return Some((ch, 1));
    }
    if escapes == Escapes::Console && c == 'u' {
        let body = after.strip_prefix("u{")?;
        let close = body.find('}')?;
        let hex = &body[..close];
        if (1..=6).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let ch = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
            return Some((ch, 2 + close + 1));
        }
    }
    None
}

/// Escapes a table field: TAB, LF, CR and backslash become `\t`, `\n`,
/// `\r`, `\\`.
///
/// ```
/// use p2pshare::names::{escape_field, unescape_field};
///
/// let name = "a\tb\\c.txt";
/// assert_eq!(escape_field(name), r"a\tb\\c.txt");
/// assert_eq!(unescape_field(&escape_field(name)), name);
/// ```
pub fn escape_field(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !push_escaped(&mut out, c) {
            out.push(c);
        }
    }
    out
}

fn push_escaped(out: &mut String, c: char) -> bool {
    match c {
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\\' => out.push_str("\\\\"),
        _ => return false,
    }
    true
}

/// Reverses [`escape_field`]: the same escapes a bare request word has,
/// so a field and a word are read alike.
pub fn unescape_field(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match unescape_one(&s[i + 1..], false, Escapes::Wire) {
            Some((ch, _)) => {
                out.push(ch);
                chars.next();
            }
            None => out.push('\\'),
        }
    }
    out
}

/// True for what must not reach a terminal raw: control characters (C0,
/// DEL, C1) and the invisible marks that reorder or hide text (bidi
/// controls, zero-width characters, the byte-order mark).
pub fn is_unsafe_to_show(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{061c}' | '\u{feff}'
        )
}

/// A name (or any text from a peer) as a person may safely see it: the
/// table escapes, plus `\u{HEX}` for every character [`is_unsafe_to_show`]
/// finds. The client's console reads both forms back
/// ([`Escapes::Console`]), so what it shows can be typed again.
pub fn shown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if push_escaped(&mut out, c) {
            continue;
        }
        if is_unsafe_to_show(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes a word for a request line so that [`crate::protocol::split_words`] reads it
/// back unchanged: as it is when it needs nothing; with the table escapes
/// when it holds a backslash, TAB, LF or CR; in quotes (where `"` is
/// `\"`) only when it holds a space, starts with a quote or is empty. A
/// name thus never puts a line break into a request.
pub fn quote_word(s: &str) -> String {
    let needs_quotes = s.is_empty() || s.starts_with('"') || s.contains(' ');
    if !needs_quotes {
        return if s.contains(['\t', '\n', '\r', '\\']) {
            escape_field(s)
        } else {
            s.to_string()
        };
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' {
            out.push_str("\\\"");
        } else if !push_escaped(&mut out, c) {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// Bytes that may not be UTF-8 (a path on disk) as [`shown`] shows text,
/// with `\xHH` for each byte that is not part of a UTF-8 character.
pub fn shown_bytes(b: &[u8]) -> String {
    let mut out = String::new();
    for chunk in b.utf8_chunks() {
        out.push_str(&shown(chunk.valid()));
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{split_words, split_words_with};

    /// Names a share can hold that need care: every character the codec
    /// treats specially, and a few a terminal would.
    const NAMES: &[&str] = &[
        "plain.txt",
        "two words",
        " leading and trailing ",
        "tab\there",
        "line\nfeed",
        "carriage\rreturn",
        "back\\slash.txt",
        "back\\\\double",
        "ends with \\",
        "\\t literal",
        "q\"uote",
        "\"starts quoted\"",
        "\"",
        "*?[]",
        "[br].txt",
        "-rf",
        "--overwrite",
        "caf\u{e9} \u{1f600}.txt",
        "esc\u{1b}[31mred",
        "bell\u{7}",
        "rlo\u{202e}txt.exe",
        "dir/sub dir/f\tx",
    ];

    #[test]
    fn quoted_words_read_back_as_every_name() {
        for name in NAMES {
            let line = format!("verb {} end", quote_word(name));
            assert!(!line.contains(['\n', '\r']), "{line:?}");
            assert_eq!(
                split_words(&line).unwrap(),
                ["verb", name, "end"],
                "{line:?}"
            );
        }
    }

    #[test]
    fn a_table_field_pasted_as_a_word_names_the_file() {
        for name in NAMES {
            let field = escape_field(name);
            assert_eq!(unescape_field(&field), *name);
            // Pasted bare where it holds no space and starts with no
            // quote; else in quotes, with `\"` for a quote inside.
            let word = if field.contains(' ') || field.starts_with('"') {
                format!("\"{}\"", field.replace('"', "\\\""))
            } else {
                field.clone()
            };
            assert_eq!(
                split_words(&format!("FileDownload {word}")).unwrap()[1],
                *name,
                "field {field:?}"
            );
        }
    }

    #[test]
    fn unknown_escapes_stay_literal() {
        let cases: &[(&str, &[&str])] = &[
            (r"a\qb", &[r"a\qb"]),
            (r#""a\b""#, &[r"a\b"]),
            (r#"a\"b"#, &[r#"a\"b"#]),
            (r"a\ b", &[r"a\", "b"]),
            (r"\u{41}", &[r"\u{41}"]),
            (r"x\", &[r"x\"]),
            (r"a\\\\b\tc", &["a\\\\b\tc"]),
            (r#""\\\"""#, &["\\\""]),
        ];
        for (line, want) in cases {
            assert_eq!(split_words(line).unwrap(), *want, "{line:?}");
        }
        assert_eq!(unescape_field(r"a\qb\"), r"a\qb\");
    }

    #[test]
    fn shown_names_are_safe_and_read_back_by_the_console() {
        for name in NAMES {
            let s = shown(name);
            assert!(!s.chars().any(is_unsafe_to_show), "{s:?}");
            let word = if s.contains(' ') || s.starts_with('"') {
                format!("\"{}\"", s.replace('"', "\\\""))
            } else {
                s.clone()
            };
            assert_eq!(
                split_words_with(&word, Escapes::Console).unwrap(),
                [*name],
                "{s:?}"
            );
        }
        assert_eq!(shown("esc\u{1b}[A"), "esc\\u{1b}[A");
        assert_eq!(shown("caf\u{e9}"), "caf\u{e9}");
        assert_eq!(
            split_words_with(r"\u{110000} \u{} \u{zz}", Escapes::Console).unwrap(),
            [r"\u{110000}", r"\u{}", r"\u{zz}"]
        );
        assert_eq!(shown_bytes(b"caf\xe9/\x1b.txt"), "caf\\xe9/\\u{1b}.txt");
    }
}
