//! How a request line splits into words (PROTOCOL.md sections 1 and 11).

use super::ParseError;
use crate::names::{unescape_one, Escapes};

/// Splits a request line into words: separated by runs of spaces or tabs;
/// a word starting with `"` runs to the next unescaped `"`. In bare and
/// quoted words alike `\\`, `\t`, `\n` and `\r` stand for a backslash,
/// TAB, LF and CR; inside quotes `\"` stands for a quote. A backslash
/// before anything else stays as it is.
pub fn split_words(line: &str) -> Result<Vec<String>, ParseError> {
    split_words_with(line, Escapes::Wire)
}

/// [`split_words`] with the escapes of `escapes`.
pub fn split_words_with(line: &str, escapes: Escapes) -> Result<Vec<String>, ParseError> {
    let mut words = Vec::new();
    let mut rest = line;
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            return Ok(words);
        }
        let quoted = rest.starts_with('"');
        if quoted {
            rest = &rest[1..];
        }
        let (word, end, closed) = one_word(rest, quoted, escapes);
        if quoted && !closed {
            return Err(ParseError::syntax("syntax error: unterminated quote"));
        }
        rest = &rest[end..];
        if quoted && !rest.is_empty() && !rest.starts_with([' ', '\t']) {
            return Err(ParseError::syntax(
                "syntax error: a closing quote must end the word",
            ));
        }
        words.push(word);
    }
}

/// The word at the start of `rest` (after its opening quote when
/// `quoted`): the word, where it ends in `rest`, and whether a closing
/// quote ended it.
fn one_word(rest: &str, quoted: bool, escapes: Escapes) -> (String, usize, bool) {
    let mut word = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' if quoted => return (word, i + 1, true),
            ' ' | '\t' if !quoted => return (word, i, false),
            '\\' => {
                let after = &rest[i + 1..];
                match unescape_one(after, quoted, escapes) {
                    Some((ch, used)) => {
                        word.push(ch);
                        // Skip what the escape took after the backslash.
                        for _ in 0..after[..used].chars().count() {
                            chars.next();
                        }
                    }
                    None => word.push('\\'),
                }
            }
            c => word.push(c),
        }
    }
    (word, rest.len(), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{escape_field, quote_word, unescape_field};

    #[test]
    fn escapes_round_trip() {
        for s in ["plain", "a\tb", "line\nbreak\r", "back\\slash", "\\t"] {
            assert_eq!(unescape_field(&escape_field(s)), s);
        }
        assert_eq!(escape_field("a\tb\\"), "a\\tb\\\\");
    }

    #[test]
    fn quoting_round_trips_through_split_words() {
        for s in [
            "plain",
            "two words",
            "q\"uote",
            "back\\slash",
            "",
            "tab\there",
        ] {
            let line = format!("verb {}", quote_word(s));
            assert_eq!(
                split_words(&line).unwrap(),
                vec!["verb".to_string(), s.into()]
            );
        }
    }
}
