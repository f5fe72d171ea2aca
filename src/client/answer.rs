//! A whole reply as the client receives it, and the fields of its table
//! rows.

use crate::protocol::{self, code, ReplyLine};

/// The longest reply line the client accepts from a peer.
pub const MAX_REPLY_LINE: usize = 256 * 1024;

/// The most lines one reply may have: twice the rows of a `FileHash
/// checkall` of a million files.
pub const MAX_REPLY_LINES: usize = 2_000_000;

/// The most bytes one reply may have: such a checkall with names of 200
/// bytes on average.
pub const MAX_REPLY_BYTES: u64 = 256 << 20;

/// A whole reply: its lines in order, the last one final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub lines: Vec<ReplyLine>,
}

impl Answer {
    /// The code of the final line.
    pub fn code(&self) -> u16 {
        self.lines.last().map_or(0, |l| l.code)
    }

    /// The text of the final line.
    pub fn text(&self) -> &str {
        self.lines.last().map_or("", |l| l.text.as_str())
    }

    pub fn is_ok(&self) -> bool {
        (100..400).contains(&self.code())
    }

    /// The rows of a 213 table (header and count left out), split on TAB
    /// and unescaped.
    pub fn table_rows(&self) -> Vec<Vec<String>> {
        if self.code() != code::TABLE || self.lines.len() < 2 {
            return Vec::new();
        }
        self.lines[1..self.lines.len() - 1]
            .iter()
            .map(|l| split_row(&l.text))
            .collect()
    }

    /// The rows of a `FileHash` table as name → (md5, timestamp).
    pub fn hash_rows<C: FromIterator<(String, (String, String))>>(&self) -> C {
        self.table_rows()
            .into_iter()
            .filter_map(|row| {
                let mut f = row.into_iter();
                Some((f.next()?, (f.next()?, f.next()?)))
            })
            .collect()
    }
}

/// Splits a table line on TAB and unescapes each field.
pub fn split_row(text: &str) -> Vec<String> {
    text.split('\t').map(unescape).collect()
}

/// [`protocol::unescape_field`], with no work for a field without a
/// backslash (most of them), which it leaves as it is.
pub fn unescape(field: &str) -> String {
    if field.contains('\\') {
        protocol::unescape_field(field)
    } else {
        field.to_string()
    }
}
