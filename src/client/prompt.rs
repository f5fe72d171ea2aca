//! The console's input: at a terminal, a prompt with line editing and
//! this session's history; from a pipe (or where the terminal cannot be
//! switched), plain lines.
//!
//! The editing itself is [`Editor`]: bytes in, line state out, no
//! terminal involved. [`Lines`] drives it. For each line it switches the
//! terminal to non-canonical mode with `stty` (no echo, no signals: Ctrl-C
//! is a key here) and back before the line is returned, so a command runs
//! with the terminal as it was (Ctrl-C interrupts a transfer as usual).
//! The terminal is restored on every way out: a line, the end of input,
//! an error, a panic (by drop). Only a signal from outside while a line is
//! being read can leave it switched (`stty sane` repairs it).
//!
//! Output of other threads (the poller in peer mode) goes through
//! [`print_above`], which puts it above the prompt and redraws the line.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// What a byte finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// Enter: the line typed.
    Line(String),
    /// Ctrl-D on an empty line: the end of input.
    Eof,
    /// Ctrl-C: the line was thrown away.
    Cancelled,
}

/// The words Tab completes: the peer's commands and the console's own.
const COMMAND_WORDS: &[&str] = &[
    "IndexGet",
    "FileHash",
    "FileDownload",
    "FileUpload",
    "History",
    "HELP",
    "NOOP",
    "AUTH",
    "QUIT",
    "Sync",
    "history",
    "help",
    "exit",
];

/// The longest escape sequence taken apart; a longer one is dropped.
const MAX_SEQUENCE: usize = 16;

/// A line being edited, with the lines entered before it.
#[derive(Debug, Default)]
pub struct Editor {
    line: Vec<char>,
    cursor: usize,
    history: Vec<String>,
    /// Which history line is shown, while browsing with up and down.
    browsing: Option<usize>,
    /// The line that was being typed when browsing began.
    draft: Vec<char>,
    /// An escape sequence or UTF-8 character not complete yet.
    pending: Vec<u8>,
}

impl Editor {
    pub fn new() -> Editor {
        Editor::default()
    }

    /// The line as it stands.
    pub fn line(&self) -> String {
        self.line.iter().collect()
    }

    /// Where the cursor is, in characters from the start.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// The lines entered so far, oldest first.
    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Feeds every byte of `bytes`; returns what the first finishing
    /// byte finished, and how many bytes were used up to it.
    pub fn feed_all(&mut self, bytes: &[u8]) -> (Option<Done>, usize) {
        for (i, &b) in bytes.iter().enumerate() {
            if let Some(done) = self.feed(b) {
                return (Some(done), i + 1);
            }
        }
        (None, bytes.len())
    }

    /// Takes one byte from the terminal.
    pub fn feed(&mut self, b: u8) -> Option<Done> {
        if !self.pending.is_empty() {
            return self.continue_pending(b);
        }
        match b {
            0x1b => self.pending.push(b),
            b'\r' | b'\n' => return Some(self.submit()),
            0x01 => self.cursor = 0,               // Ctrl-A
            0x05 => self.cursor = self.line.len(), // Ctrl-E
            0x02 => self.left(),                   // Ctrl-B
            0x06 => self.right(),                  // Ctrl-F
            0x10 => self.up(),                     // Ctrl-P
            0x0e => self.down(),                   // Ctrl-N
            0x7f | 0x08 => self.backspace(),
            0x04 if self.line.is_empty() => return Some(Done::Eof), // Ctrl-D
            0x04 => self.delete(),
            0x03 => {
                // Ctrl-C
                self.set_line(Vec::new());
                self.browsing = None;
                return Some(Done::Cancelled);
            }
            0x0b => self.line.truncate(self.cursor), // Ctrl-K
            0x15 => {
                // Ctrl-U
                self.line.drain(..self.cursor);
                self.cursor = 0;
            }
            0x17 => self.delete_word_before(), // Ctrl-W
            b'\t' => self.complete(),
            0x00..=0x1f => {}
            0x20..=0x7e => self.insert(b as char),
            0xc0..=0xf7 => self.pending.push(b),
            // A stray continuation byte or one that never starts UTF-8.
            _ => {}
        }
        None
    }

    fn continue_pending(&mut self, b: u8) -> Option<Done> {
        self.pending.push(b);
        if self.pending[0] != 0x1b {
            let need = match self.pending[0] {
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                _ => 4,
            };
            if !(0x80..=0xbf).contains(&b) {
                // Not a continuation: the character is broken; the byte
                // starts afresh.
                self.pending.clear();
                return self.feed(b);
            }
            if self.pending.len() == need {
                let bytes = std::mem::take(&mut self.pending);
                if let Some(c) = std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| s.chars().next())
                {
                    self.insert(c);
                }
            }
            return None;
        }
        let seq = self.pending.clone();
        let done = match seq.as_slice() {
            [_, b'['] | [_, b'O'] => false,
            [_, b'[', .., last] if (0x40..=0x7e).contains(last) => {
                self.csi(&seq[2..seq.len() - 1], *last);
                true
            }
            // Parameter and intermediate bytes: the sequence goes on.
            [_, b'[', .., last] if (0x20..=0x3f).contains(last) => false,
            [_, b'[', ..] => true,
            [_, b'O', last] => {
                self.csi(&[], *last);
                true
            }
            [_, b'b'] => {
                self.word_left();
                true
            }
            [_, b'f'] => {
                self.word_right();
                true
            }
            [_, 0x7f] => {
                self.delete_word_before();
                true
            }
            // Alt with anything else, or ESC ESC: nothing.
            _ => true,
        };
        if done || self.pending.len() >= MAX_SEQUENCE {
            self.pending.clear();
        }
        None
    }

    /// A CSI (`ESC [ params final`) or SS3 (`ESC O final`) key.
    fn csi(&mut self, params: &[u8], last: u8) {
        let ctrl = params.ends_with(b";5");
        match (params, last) {
            (_, b'A') => self.up(),
            (_, b'B') => self.down(),
            (_, b'C') if ctrl => self.word_right(),
            (_, b'D') if ctrl => self.word_left(),
            (_, b'C') => self.right(),
            (_, b'D') => self.left(),
            (_, b'H') | (b"1" | b"7", b'~') => self.cursor = 0,
            (_, b'F') | (b"4" | b"8", b'~') => self.cursor = self.line.len(),
            (b"3", b'~') => self.delete(),
            // Insert, page keys, function keys, paste marks: nothing.
            _ => {}
        }
    }

    fn submit(&mut self) -> Done {
        let line = self.line();
        if !line.trim().is_empty() && self.history.last() != Some(&line) {
            self.history.push(line.clone());
        }
        self.set_line(Vec::new());
        self.browsing = None;
        self.draft.clear();
        Done::Line(line)
    }

    /// Tab: completes the command word being typed (the first word, the
    /// cursor at its end) as far as the commands that start so agree,
    /// with a space after a whole one; anywhere else it does nothing.
    fn complete(&mut self) {
        let typed: String = self.line[..self.cursor].iter().collect();
        let at_word_end = self.line.get(self.cursor).is_none_or(|c| *c == ' ');
        if typed.is_empty() || typed.contains([' ', '\t']) || !at_word_end {
            return;
        }
        let fits: Vec<&str> = COMMAND_WORDS
            .iter()
            .copied()
            .filter(|w| w.len() >= typed.len() && w[..typed.len()].eq_ignore_ascii_case(&typed))
            .collect();
        let Some(first) = fits.first() else {
            return;
        };
        // As far as every fitting word agrees (ignoring case); a word the
        // local and the peer's commands both have (history, History)
        // keeps the case typed.
        let mut common = first.len();
        for w in &fits[1..] {
            common = common.min(
                first
                    .bytes()
                    .zip(w.bytes())
                    .take_while(|(a, b)| a.eq_ignore_ascii_case(b))
                    .count(),
            );
        }
        let exact_case = fits.iter().find(|w| w.starts_with(typed.as_str()));
        let word = exact_case.unwrap_or(first);
        let mut add: Vec<char> = word[typed.len()..common].chars().collect();
        let whole = fits
            .iter()
            .all(|w| w.len() == common && w.eq_ignore_ascii_case(word));
        if whole && self.line.get(self.cursor).is_none() {
            add.push(' ');
        }
        for c in add {
            self.insert(c);
        }
    }

    fn set_line(&mut self, line: Vec<char>) {
        self.cursor = line.len();
        self.line = line;
    }

    fn insert(&mut self, c: char) {
        self.line.insert(self.cursor, c);
        self.cursor += 1;
    }

    fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.line.len());
    }

    fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            self.line.remove(self.cursor);
        }
    }

    fn delete(&mut self) {
        if self.cursor < self.line.len() {
            self.line.remove(self.cursor);
        }
    }

    /// Where the word before the cursor starts (spaces before it skipped).
    fn word_start(&self) -> usize {
        let mut i = self.cursor;
        while i > 0 && self.line[i - 1].is_whitespace() {
            i -= 1;
        }
        while i > 0 && !self.line[i - 1].is_whitespace() {
            i -= 1;
        }
        i
    }

    fn delete_word_before(&mut self) {
        let start = self.word_start();
        self.line.drain(start..self.cursor);
        self.cursor = start;
    }

    fn word_left(&mut self) {
        self.cursor = self.word_start();
    }

    fn word_right(&mut self) {
        let n = self.line.len();
        let mut i = self.cursor;
        while i < n && self.line[i].is_whitespace() {
            i += 1;
        }
        while i < n && !self.line[i].is_whitespace() {
            i += 1;
        }
        self.cursor = i;
    }

    fn up(&mut self) {
        let i = match self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.draft = std::mem::take(&mut self.line);
                self.history.len() - 1
            }
            Some(0) => return,
            Some(i) => i - 1,
        };
        self.browsing = Some(i);
        self.set_line(self.history[i].chars().collect());
    }

    fn down(&mut self) {
        let Some(i) = self.browsing else { return };
        if i + 1 < self.history.len() {
            self.browsing = Some(i + 1);
            self.set_line(self.history[i + 1].chars().collect());
        } else {
            self.browsing = None;
            let draft = std::mem::take(&mut self.draft);
            self.set_line(draft);
        }
    }

    /// What draws the prompt and the line on a terminal `width` columns
    /// wide, cursor placed: from the start of the row, the prompt, as
    /// much of the line as fits around the cursor, the rest of the row
    /// cleared. Control characters show as `^X`.
    pub fn render(&self, prompt: &str, width: usize) -> String {
        let cells: Vec<(String, usize)> = self.line.iter().map(|&c| cell(c)).collect();
        let prompt_width = prompt.chars().count();
        // The last column stays free: writing there wraps on some
        // terminals.
        let room = width.saturating_sub(prompt_width + 1).max(1);
        let upto = |from: usize, to: usize| cells[from..to].iter().map(|c| c.1).sum::<usize>();
        let mut start = 0;
        while start < self.cursor && upto(start, self.cursor) >= room {
            start += 1;
        }
        let mut end = start;
        let mut used = 0;
        while end < cells.len() && used + cells[end].1 <= room {
            used += cells[end].1;
            end += 1;
        }
        let mut out = String::from("\r");
        out.push_str(prompt);
        for c in &cells[start..end] {
            out.push_str(&c.0);
        }
        out.push_str("\x1b[K\r");
        let column = prompt_width + upto(start, self.cursor);
        if column > 0 {
            out.push_str(&format!("\x1b[{column}C"));
        }
        out
    }
}

/// How many terminal columns `s` takes, shown as [`cell`] shows it
/// (wide East Asian characters and emoji two, combining marks none).
pub(super) fn width(s: &str) -> usize {
    s.chars().map(|c| cell(c).1).sum()
}

/// How a character is shown, and how many columns that takes.
fn cell(c: char) -> (String, usize) {
    let u = c as u32;
    match u {
        0..=0x1f => (format!("^{}", char::from(b'@' + u as u8)), 2),
        0x7f => ("^?".into(), 2),
        0x80..=0x9f => (format!("\\u{{{u:x}}}"), 4 + format!("{u:x}").len()),
        // Combining marks and zero-width characters.
        0x0300..=0x036f | 0x200b..=0x200f | 0xfe00..=0xfe0f => (c.to_string(), 0),
        // East Asian wide ranges and emoji.
        0x1100..=0x115f
        | 0x2e80..=0xa4cf
        | 0xac00..=0xd7a3
        | 0xf900..=0xfaff
        | 0xfe30..=0xfe4f
        | 0xff00..=0xff60
        | 0xffe0..=0xffe6
        | 0x1f300..=0x1f64f
        | 0x1f680..=0x1f6ff
        | 0x1f900..=0x1f9ff
        | 0x1fa70..=0x1faff
        | 0x20000..=0x3fffd => (c.to_string(), 2),
        _ => (c.to_string(), 1),
    }
}

/// The prompt line as last drawn, while one is being edited: what
/// [`print_above`] redraws after its output.
static SHOWN: Mutex<Option<String>> = Mutex::new(None);

fn shown() -> std::sync::MutexGuard<'static, Option<String>> {
    SHOWN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Prints one line (to stderr when `to_stderr`, else stdout) while the
/// user may be typing at the prompt: above the prompt, which is drawn
/// again with the line being typed.
pub fn print_above(text: &str, to_stderr: bool) {
    // The streams are locked one at a time: a command's output may hold
    // stdout while it writes to stderr.
    let shown = shown();
    if shown.is_some() {
        super::out::tell_raw!("\r\x1b[K");
    }
    if to_stderr {
        super::out::tell!("{text}");
    } else {
        super::out::sayln!("{text}");
    }
    if let Some(s) = shown.as_ref() {
        super::out::tell_raw!("{s}");
    }
    let _ = super::out::stderr().flush();
}

/// Runs `stty ARGS` on the terminal that is stdin; its output when it
/// succeeded.
fn stty(args: &[&str]) -> Option<String> {
    let out = Command::new("stty")
        .args(args)
        .stdin(Stdio::inherit())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The terminal's settings as they were, put back on drop.
struct Saved(String);

impl Drop for Saved {
    fn drop(&mut self) {
        let _ = stty(&[&self.0]);
    }
}

/// The terminal in non-canonical mode while one line is read.
struct Switched<'a>(&'a Saved);

impl Drop for Switched<'_> {
    fn drop(&mut self) {
        *shown() = None;
        let _ = stty(&[&self.0 .0]);
    }
}

/// Where console lines come from.
pub struct Lines {
    prompt: &'static str,
    mode: Mode,
    /// Ctrl-C at the prompt ends the input (peer mode) rather than only
    /// throwing the line away.
    ctrl_c_ends: bool,
    /// The input was ended by Ctrl-C.
    interrupted: bool,
}

enum Mode {
    /// Edited at a terminal.
    Edit {
        editor: Editor,
        saved: Saved,
        /// Bytes read but not used yet (the rest of a pasted block).
        unread: Vec<u8>,
    },
    /// Read as they come; `prompt` when stdin is a terminal.
    Plain { prompt: bool },
}

impl Lines {
    /// Lines from stdin, edited when stdin and stderr are a terminal and
    /// `stty` can switch it, else plain (a prompt still shown when stdin
    /// is a terminal).
    pub fn stdin(prompt: &'static str) -> Lines {
        let tty = io::stdin().is_terminal();
        let mode = match (tty && io::stderr().is_terminal())
            .then(|| stty(&["-g"]))
            .flatten()
        {
            Some(saved) if !saved.is_empty() => Mode::Edit {
                editor: Editor::new(),
                saved: Saved(saved),
                unread: Vec::new(),
            },
            _ => Mode::Plain { prompt: tty },
        };
        Lines {
            prompt,
            mode,
            ctrl_c_ends: false,
            interrupted: false,
        }
    }

    /// Makes Ctrl-C at the prompt end the input, the line being typed
    /// thrown away (see [`Lines::interrupted`]).
    pub fn ending_on_ctrl_c(mut self) -> Lines {
        self.ctrl_c_ends = true;
        self
    }

    /// True when the input was ended by Ctrl-C.
    pub fn interrupted(&self) -> bool {
        self.interrupted
    }

    /// True when lines are edited at the terminal.
    pub fn editing(&self) -> bool {
        matches!(self.mode, Mode::Edit { .. })
    }

    /// The next line (without its line end), None at the end of input.
    pub fn next_line(&mut self) -> Option<io::Result<String>> {
        let prompt = self.prompt;
        match &mut self.mode {
            Mode::Plain { prompt: show } => {
                if *show {
                    super::out::tell_raw!("{prompt}");
                    let _ = super::out::stderr().flush();
                }
                let mut line = String::new();
                match io::stdin().lock().read_line(&mut line) {
                    Ok(0) => {
                        if *show {
                            // Ctrl-D: the shell's prompt on a line of its own.
                            super::out::tell!("");
                        }
                        None
                    }
                    Ok(_) => Some(Ok(line.trim_end_matches(['\n', '\r']).to_string())),
                    Err(e) => Some(Err(e)),
                }
            }
            Mode::Edit {
                editor,
                saved,
                unread,
            } => {
                let ends = self.ctrl_c_ends.then_some(&mut self.interrupted);
                edit_line(prompt, editor, saved, unread, ends)
            }
        }
    }
}

/// Reads one line at the terminal with `editor`. With `ctrl_c_ends`,
/// Ctrl-C ends the input (None), and sets the flag it points to.
fn edit_line(
    prompt: &str,
    editor: &mut Editor,
    saved: &Saved,
    unread: &mut Vec<u8>,
    ctrl_c_ends: Option<&mut bool>,
) -> Option<io::Result<String>> {
    if stty(&[
        "-icanon", "-echo", "-isig", "-iexten", "-ixon", "min", "1", "time", "0",
    ])
    .is_none()
    {
        return Some(Err(io::Error::other("cannot switch the terminal (stty)")));
    }
    let _switched = Switched(saved);
    let width = stty(&["size"])
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .filter(|&w: &usize| w > 0)
        .unwrap_or(80);
    let draw = |editor: &Editor| {
        let r = editor.render(prompt, width);
        let mut shown = shown();
        let mut err = super::out::stderr();
        let _ = err.write_all(r.as_bytes());
        let _ = err.flush();
        *shown = Some(r);
    };
    draw(editor);
    let mut buf = [0u8; 256];
    loop {
        if unread.is_empty() {
            match io::stdin().lock().read(&mut buf) {
                Ok(0) => {
                    super::out::tell!("");
                    return None;
                }
                Ok(n) => unread.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    super::out::tell!("");
                    return Some(Err(e));
                }
            }
        }
        let (done, used) = editor.feed_all(unread);
        unread.drain(..used);
        match done {
            None => draw(editor),
            Some(Done::Line(line)) => {
                // The line as sent stays on the screen, its end in view.
                let mut sent = Editor::new();
                line.chars().for_each(|c| sent.insert(c));
                draw(&sent);
                *shown() = None;
                super::out::tell!("");
                return Some(Ok(line));
            }
            Some(Done::Eof) => {
                *shown() = None;
                super::out::tell!("");
                return None;
            }
            Some(Done::Cancelled) => {
                super::out::tell!("^C");
                if let Some(flag) = ctrl_c_ends {
                    *shown() = None;
                    unread.clear();
                    *flag = true;
                    return None;
                }
                draw(editor);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `keys`; the lines entered and what remains on the line.
    fn typed(e: &mut Editor, keys: &[u8]) -> Vec<Done> {
        let mut done = Vec::new();
        for &b in keys {
            done.extend(e.feed(b));
        }
        done
    }

    fn line(s: &str) -> Done {
        Done::Line(s.to_string())
    }

    #[test]
    fn typing_and_enter() {
        let mut e = Editor::new();
        assert_eq!(typed(&mut e, b"NOOP\r"), [line("NOOP")]);
        assert_eq!(typed(&mut e, b"HELP\n"), [line("HELP")]);
        assert_eq!(e.line(), "");
        assert_eq!(e.history(), ["NOOP", "HELP"]);
    }

    #[test]
    fn arrows_home_end_move_and_never_reach_the_line() {
        let mut e = Editor::new();
        // "IndexGet list", left 4, type "long", Home, End, delete back.
        typed(&mut e, b"IndexGet list\x1b[D\x1b[D\x1b[D\x1b[Dlong");
        assert_eq!((e.line().as_str(), e.cursor()), ("IndexGet longlist", 13));
        typed(&mut e, b"\x1b[H");
        assert_eq!(e.cursor(), 0);
        typed(&mut e, b"\x1b[F");
        assert_eq!(e.cursor(), 17);
        typed(&mut e, b"\x1b[1~");
        assert_eq!(e.cursor(), 0);
        typed(&mut e, b"\x1b[4~\x1bOH");
        assert_eq!(e.cursor(), 0);
        typed(&mut e, b"\x1bOF\x1b[C\x1b[C");
        assert_eq!(e.cursor(), 17);
        // Keys with no meaning here: F5, PgUp, Insert, Alt-x.
        typed(&mut e, b"\x1b[15~\x1b[5~\x1b[2~\x1bx\x1b[1;2P");
        assert_eq!(typed(&mut e, b"\r"), [line("IndexGet longlist")]);
    }

    #[test]
    fn backspace_delete_and_the_kill_keys() {
        let mut e = Editor::new();
        typed(&mut e, b"abcd\x7f\x08");
        assert_eq!(e.line(), "ab");
        typed(&mut e, b"\x01\x1b[3~");
        assert_eq!((e.line().as_str(), e.cursor()), ("b", 0));
        typed(&mut e, b"\x05 one two  \x17");
        assert_eq!(e.line(), "b one ");
        typed(&mut e, b"\x1b[D\x1b[D\x0b");
        assert_eq!(e.line(), "b on");
        typed(&mut e, b"\x1b[D\x15");
        assert_eq!((e.line().as_str(), e.cursor()), ("n", 0));
        // Ctrl-D with text deletes under the cursor.
        typed(&mut e, b"\x04");
        assert_eq!(e.line(), "");
        // Word moves: Alt-b, Alt-f, Ctrl-left, Ctrl-right.
        typed(&mut e, b"aa bb cc\x1bb");
        assert_eq!(e.cursor(), 6);
        typed(&mut e, b"\x1b[1;5D\x1b[1;5D");
        assert_eq!(e.cursor(), 0);
        typed(&mut e, b"\x1bf\x1b[1;5C");
        assert_eq!(e.cursor(), 5);
    }

    #[test]
    fn up_and_down_walk_this_sessions_lines() {
        let mut e = Editor::new();
        typed(&mut e, b"one\rtwo\rtwo\r  \rthree\r");
        assert_eq!(e.history(), ["one", "two", "three"]);
        typed(&mut e, b"dra");
        typed(&mut e, b"\x1b[A");
        assert_eq!(e.line(), "three");
        typed(&mut e, b"\x1b[A\x1b[A\x1b[A");
        assert_eq!(e.line(), "one");
        typed(&mut e, b"\x1b[B");
        assert_eq!(e.line(), "two");
        typed(&mut e, b"\x1b[B\x1b[B");
        assert_eq!((e.line().as_str(), e.cursor()), ("dra", 3));
        typed(&mut e, b"\x1bOA\x10");
        assert_eq!(e.line(), "two");
        assert_eq!(typed(&mut e, b"!\r"), [line("two!")]);
        assert_eq!(e.history().last().map(String::as_str), Some("two!"));
    }

    #[test]
    fn ctrl_c_clears_and_ctrl_d_ends_only_an_empty_line() {
        let mut e = Editor::new();
        assert_eq!(typed(&mut e, b"half a comm\x03"), [Done::Cancelled]);
        assert_eq!(e.line(), "");
        assert_eq!(typed(&mut e, b"x\x04"), []);
        assert_eq!(typed(&mut e, b"\x7f\x04"), [Done::Eof]);
    }

    #[test]
    fn utf8_arrives_whole_and_broken_bytes_are_dropped() {
        let mut e = Editor::new();
        let mut keys = "FileDownload caf\u{e9} \u{1f600}.txt".as_bytes().to_vec();
        keys.extend_from_slice(b"\xff\xc3X\x80\r");
        assert_eq!(
            typed(&mut e, &keys),
            [line("FileDownload caf\u{e9} \u{1f600}.txtX")]
        );
    }

    #[test]
    fn no_escape_byte_ever_reaches_a_line() {
        // Every sequence a terminal sends, and broken ones, then Enter.
        let mut e = Editor::new();
        let mut keys = Vec::new();
        for seq in [
            &b"\x1b[A"[..],
            b"\x1b[Z",
            b"\x1b[200~",
            b"\x1b[201~",
            b"\x1b[1;5A",
            b"\x1b[?1;2c",
            b"\x1b\x1b",
            b"\x1bO",
            b"\x1b[\x01",
            b"\x1b[99999999999999999999",
        ] {
            keys.extend_from_slice(seq);
            keys.push(b'a');
        }
        keys.push(b'\r');
        let done = typed(&mut e, &keys);
        let [Done::Line(l)] = done.as_slice() else {
            panic!("{done:?}");
        };
        assert!(!l.contains('\x1b'), "{l:?}");
    }

    #[test]
    fn pasted_lines_come_one_at_a_time() {
        let mut e = Editor::new();
        let (d, used) = e.feed_all(b"NOOP\nHELP\n");
        assert_eq!((d, used), (Some(line("NOOP")), 5));
        let (d, used) = e.feed_all(b"HELP\n");
        assert_eq!((d, used), (Some(line("HELP")), 5));
    }

    #[test]
    fn tab_completes_command_words_and_is_never_a_tab() {
        let done = |keys: &[u8]| {
            let mut e = Editor::new();
            typed(&mut e, keys);
            e.line()
        };
        assert_eq!(done(b"FileD\t"), "FileDownload ");
        assert_eq!(done(b"filed\t"), "filedownload ");
        assert_eq!(done(b"File\t"), "File");
        assert_eq!(done(b"Fi\t"), "File");
        assert_eq!(done(b"Ind\tlong"), "IndexGet long");
        assert_eq!(done(b"hist\t"), "history ");
        assert_eq!(done(b"Hist\t"), "History ");
        // Past the first word, or where nothing fits: nothing happens.
        assert_eq!(done(b"IndexGet \t"), "IndexGet ");
        assert_eq!(done(b"zz\t"), "zz");
        assert_eq!(done(b"\t"), "");
        assert!(!done(b"a\tb\t").contains('\t'));
    }

    #[test]
    fn render_places_the_cursor_and_scrolls_long_lines() {
        let mut e = Editor::new();
        typed(&mut e, b"abc\x1b[D");
        assert_eq!(e.render("> ", 80), "\r> abc\x1b[K\r\x1b[4C");
        // Control characters are shown, and take their columns.
        let mut e = Editor::new();
        typed(&mut e, b"ab");
        e.cursor = 1;
        e.insert('\t');
        e.cursor = 3;
        assert_eq!(e.render("> ", 80), "\r> a^Ib\x1b[K\r\x1b[6C");
        // A line wider than the terminal: the part around the cursor.
        let mut e = Editor::new();
        typed(&mut e, b"0123456789abcdefghij");
        let r = e.render("> ", 12);
        assert_eq!(r, "\r> cdefghij\x1b[K\r\x1b[10C");
        typed(&mut e, b"\x01");
        assert_eq!(e.render("> ", 12), "\r> 012345678\x1b[K\r\x1b[2C");
        // Wide characters count twice.
        let mut e = Editor::new();
        typed(&mut e, "\u{1f600}x".as_bytes());
        assert_eq!(e.render("> ", 80), "\r> \u{1f600}x\x1b[K\r\x1b[5C");
    }
}
