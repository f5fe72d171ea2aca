//! How the console shows what the peer said and what a transfer does:
//! aligned tables with human-readable sizes at a terminal, TSV rows into
//! a pipe, the peer's text with every control character escaped, and the
//! result rows and progress bar of downloads and uploads.

use std::io::Write;
use std::time::{Duration, Instant};

use super::out::{self, tell, tell_raw};
use super::outcome::{Outcome, Ui};
use super::prompt::width;
use crate::protocol;

/// Aligns a table whose first row is the header; a `size` column is shown
/// human-readable.
pub(super) fn aligned(rows: &[Vec<String>]) -> String {
    aligned_with_header(rows)
}

pub(super) fn aligned_with_header(rows: &[Vec<String>]) -> String {
    let Some(header) = rows.first() else {
        return String::new();
    };
    let size_col = header.iter().position(|h| h == "size");
    let name_col = header.iter().position(|h| h == "name");
    let shown: Vec<Vec<String>> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.iter()
                .enumerate()
                .map(|(j, f)| {
                    let f = protocol::shown(f);
                    match (Some(j) == size_col && i > 0, f.parse::<u64>()) {
                        (true, Ok(n)) => human_size(n),
                        // A space at either end of a name would not be
                        // seen: the name is quoted, as the console reads it.
                        _ if Some(j) == name_col
                            && i > 0
                            && (f.starts_with(' ') || f.ends_with(' ')) =>
                        {
                            format!("\"{}\"", f.replace('"', "\\\""))
                        }
                        _ => f,
                    }
                })
                .collect()
        })
        .collect();
    let cols = shown.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in &shown {
        for (j, f) in r.iter().enumerate() {
            widths[j] = widths[j].max(width(f));
        }
    }
    let mut out = String::new();
    for r in &shown {
        let mut line = String::new();
        for (j, f) in r.iter().enumerate() {
            if j > 0 {
                line.push_str("  ");
            }
            let pad = widths[j] - width(f);
            if Some(j) == size_col {
                line.push_str(&" ".repeat(pad));
                line.push_str(f);
            } else {
                line.push_str(f);
                if j + 1 < r.len() {
                    line.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Text from the peer (a reply's text) as it may safely be shown: the
/// table escapes it already uses stay as they are, and control characters
/// sent raw are shown as `\u{HEX}` ([`protocol::shown`]), so no escape
/// sequence of the peer reaches the terminal.
pub fn peer_text(text: &str) -> String {
    protocol::shown(&protocol::unescape_field(text))
}

/// The count line of a table at a terminal, from the peer's `1 files` or
/// `3 files`: `1 file`, `3 files`.
pub(super) fn count_text(text: &str) -> String {
    let text = peer_text(text);
    let mut words = text.splitn(3, ' ');
    match (words.next(), words.next(), words.next()) {
        (Some("1"), Some(noun), rest) if noun.len() > 1 && noun.ends_with('s') => {
            let one = &noun[..noun.len() - 1];
            match rest {
                Some(rest) => format!("1 {one} {rest}"),
                None => format!("1 {one}"),
            }
        }
        _ => text,
    }
}

/// A table row from the peer as it goes into a pipe: its fields keep the
/// wire's table escapes (`\t`, `\n`, `\r`, `\\`), and any other control
/// character is written `\u{HEX}` ([`protocol::shown`]), never raw.
pub(super) fn tsv_row(text: &str) -> String {
    let fields: Vec<String> = text.split('\t').map(peer_text).collect();
    fields.join("\t")
}

/// `1536` → `1.5 KiB`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// Download reporting: result rows on stdout, notes and errors on stderr,
/// a progress bar on a terminal for transfers that take a moment.
pub(super) struct ConsoleUi {
    tty_out: bool,
    tty_err: bool,
    /// Result rows not yet written: into a pipe they go out in blocks,
    /// not one write per file.
    rows: String,
    name: String,
    total: u64,
    first: u64,
    started: Instant,
    drawn: Option<Instant>,
}

impl ConsoleUi {
    pub(super) fn new(tty_out: bool, tty_err: bool) -> ConsoleUi {
        ConsoleUi {
            tty_out,
            tty_err,
            rows: String::new(),
            name: String::new(),
            total: 0,
            first: 0,
            started: Instant::now(),
            drawn: None,
        }
    }
}

impl Drop for ConsoleUi {
    fn drop(&mut self) {
        let mut out = out::stdout();
        let _ = out.write_all(self.rows.as_bytes());
        let _ = out.flush();
    }
}

impl Ui for ConsoleUi {
    fn start(&mut self, name: &str, total: u64, done: u64) {
        self.name = protocol::shown(name);
        self.total = total;
        self.first = done;
        self.started = Instant::now();
        self.drawn = None;
    }

    fn progress(&mut self, done: u64) {
        if !self.tty_err {
            return;
        }
        let elapsed = self.started.elapsed();
        if elapsed < Duration::from_millis(500) {
            return;
        }
        if self
            .drawn
            .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.drawn = Some(Instant::now());
        let rate = (done - self.first) as f64 / elapsed.as_secs_f64().max(0.001);
        let left = self.total.saturating_sub(done);
        let eta = if rate > 0.0 {
            format!("{:.0}s", left as f64 / rate)
        } else {
            "?".into()
        };
        let frac = if self.total > 0 {
            done as f64 / self.total as f64
        } else {
            1.0
        };
        let width = 24;
        let filled = ((frac * width as f64) as usize).min(width);
        tell_raw!(
            "\r\x1b[K{} [{}{}] {} / {} {}/s ETA {}",
            self.name,
            "=".repeat(filled),
            " ".repeat(width - filled),
            human_size(done),
            human_size(self.total),
            human_size(rate as u64),
            eta
        );
        let _ = out::stderr().flush();
    }

    fn end(&mut self) {
        if self.drawn.is_some() {
            tell_raw!("\r\x1b[K");
            let _ = out::stderr().flush();
        }
        self.drawn = None;
    }

    fn outcome(&mut self, outcome: &Outcome) {
        let mut out = out::stdout();
        match outcome {
            Outcome::Downloaded(row) | Outcome::Uploaded(row) | Outcome::UpToDate(row) => {
                // Every field as it may be shown: the name is the one the
                // file was stored under, the others are the peer's.
                let fields: Vec<String> = row.fields().iter().map(|f| protocol::shown(f)).collect();
                if self.tty_out {
                    let note = if matches!(outcome, Outcome::UpToDate(_)) {
                        "  (up to date)"
                    } else {
                        ""
                    };
                    let _ = writeln!(
                        out,
                        "{}  {}  {}  {}{note}",
                        fields[0],
                        human_size(row.size),
                        fields[2],
                        fields[3]
                    );
                } else {
                    self.rows.push_str(&fields.join("\t"));
                    self.rows.push('\n');
                    if matches!(outcome, Outcome::UpToDate(_)) {
                        tell!("p2pshare: {}: up to date", fields[0]);
                    }
                }
            }
            Outcome::Failed { message, .. } => {
                let _ = out.flush();
                tell!("p2pshare: {message}");
            }
        }
        if self.rows.len() >= 64 * 1024 {
            let _ = out.write_all(self.rows.as_bytes());
            self.rows.clear();
        }
        let _ = out.flush();
    }

    fn note(&mut self, text: &str) {
        tell!("p2pshare: {text}");
    }

    fn resume(&mut self, name: &str, offset: u64) {
        // At a terminal and in a pipe alike: a script's log shows it.
        tell!(
            "p2pshare: resuming {} at {}",
            protocol::shown(name),
            human_size(offset)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
    }

    #[test]
    fn wide_names_align_by_display_width_and_edge_spaces_are_quoted() {
        let rows = vec![
            vec!["name".into(), "size".into()],
            vec!["日本語.txt".into(), "6".into()],
            vec!["\u{1f600}.txt".into(), "6".into()],
            vec!["abcdefghij".into(), "6".into()],
            vec![" lead.txt".into(), "6".into()],
        ];
        let table = aligned(&rows);
        let lines: Vec<&str> = table.lines().collect();
        // Every row's size column ends in the same terminal column.
        let widths: Vec<usize> = lines.iter().map(|l| width(l)).collect();
        assert!(
            widths.iter().all(|w| *w == widths[0]),
            "{table}\n{widths:?}"
        );
        assert!(lines[4].starts_with("\" lead.txt\""), "{table}");
    }

    #[test]
    fn aligns_columns_and_right_aligns_sizes() {
        let rows = vec![
            vec!["name".into(), "size".into()],
            vec!["a.txt".into(), "6".into()],
            vec!["long-name.bin".into(), "2048".into()],
        ];
        assert_eq!(
            aligned(&rows),
            "name              size\na.txt              6 B\nlong-name.bin  2.0 KiB\n"
        );
    }
}
