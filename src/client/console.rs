//! The client's console: commands from `-c`, a pipe or a terminal; replies
//! shown as aligned tables and a progress bar on a terminal, as plain TSV
//! into a pipe; errors on stderr; an exit status that says whether every
//! command succeeded.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fetch::{self, Outcome, Ui};
use super::send;
use super::{Client, ClientError};
use crate::history::History;
use crate::protocol::{self, code, quote_word, Command, ReplyLine, HISTORY_HEADER};

/// Everything the console needs to reach a peer.
#[derive(Debug, Clone)]
pub struct Settings {
    pub target: String,
    pub share: PathBuf,
    pub secret: Option<String>,
    pub overwrite: bool,
    pub connect_timeout: Duration,
    /// UDP payload size for `FileDownload UDP`; None picks by path.
    pub udp_payload: Option<usize>,
}

/// What running one command came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Failed,
    Quit,
}

pub const HELP: &str = "\
Commands are the protocol's, typed as over nc (case-insensitive):
  IndexGet longlist | shortlist <start> <end> | regex <pattern>
  FileHash verify <name> | checkall
  FileDownload [TCP|UDP] <name-or-pattern>   verified download into the share folder
  FileUpload <name-or-pattern>               send files from the share folder (if the peer allows)
  History [<n>]                              the peer's request history
  HELP [<command>]                           the peer's help
  NOOP, QUIT
Local commands (lowercase):
  history [<n>]   this side's history (requests received and made)
  help            this text
  exit            same as QUIT
";

/// The console: one connection to a peer (made on first use, remade after
/// it broke) and where output goes.
pub struct Console {
    settings: Settings,
    history: Arc<History>,
    client: Option<Client>,
    tty_out: bool,
    tty_err: bool,
    /// Peer mode: the other peer may not be up yet (or may be restarting),
    /// so a command waits for it instead of failing.
    wait_for_peer: bool,
}

impl Console {
    pub fn new(settings: Settings, history: Arc<History>) -> Console {
        Console {
            settings,
            history,
            client: None,
            tty_out: io::stdout().is_terminal(),
            tty_err: io::stderr().is_terminal(),
            wait_for_peer: false,
        }
    }

    /// Makes commands wait, retrying, until the peer can be reached (peer
    /// mode, where either side may start first).
    pub fn wait_for_peer(&mut self) {
        self.wait_for_peer = true;
    }

    /// Connects now if not connected.
    pub fn connect(&mut self) -> Result<&mut Client, ClientError> {
        let mut told = false;
        while self.client.is_none() {
            match Client::connect(
                &self.settings.target,
                self.settings.connect_timeout,
                Some(self.history.clone()),
                self.settings.secret.as_deref(),
            ) {
                Ok(c) => self.client = Some(c),
                Err(ClientError::Connect(_, e)) if self.wait_for_peer => {
                    if !told {
                        eprintln!(
                            "p2pshare: the command waits until {} can be reached ({e})",
                            self.settings.target
                        );
                        told = true;
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => return Err(e),
            }
        }
        self.client
            .as_mut()
            .ok_or_else(|| ClientError::Protocol("not connected".into()))
    }

    /// Runs commands from a terminal (edited, see [`super::prompt`]) or a
    /// pipe until QUIT or end of input. Returns how many failed.
    pub fn run_stdin(&mut self) -> usize {
        let mut lines = super::prompt::Lines::stdin("p2pshare> ");
        let mut failures = 0;
        while let Some(line) = lines.next_line() {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("p2pshare: cannot read input: {e}");
                    failures += 1;
                    break;
                }
            };
            // Where lines are not edited, an arrow key arrives as an
            // escape sequence: never a command anybody meant to send.
            if line.contains('\x1b') {
                eprintln!(
                    "p2pshare: not sent: the line holds an escape sequence (an arrow key?): {}",
                    protocol::shown(&line)
                );
                failures += 1;
                continue;
            }
            match self.execute(&line) {
                Status::Ok => {}
                Status::Failed => failures += 1,
                Status::Quit => break,
            }
        }
        failures
    }

    /// Ends the session politely.
    pub fn close(&mut self) {
        if let Some(c) = self.client.as_mut() {
            c.quit();
        }
        self.client = None;
    }

    /// Runs one command line.
    pub fn execute(&mut self, line: &str) -> Status {
        let words = match protocol::split_words(line) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("p2pshare: {}", e.message);
                return Status::Failed;
            }
        };
        let Some(verb) = words.first() else {
            return Status::Ok;
        };
        match verb.as_str() {
            "help" => {
                print!("{HELP}");
                return Status::Ok;
            }
            "history" => return self.local_history(&words[1..]),
            _ => {}
        }
        if verb.eq_ignore_ascii_case("exit") || verb.eq_ignore_ascii_case("quit") {
            self.close();
            return Status::Quit;
        }
        let result = if verb.eq_ignore_ascii_case("fileupload") {
            match &words[1..] {
                [name] => self.upload(name),
                _ => {
                    eprintln!(
                        "p2pshare: usage: FileUpload <name-or-pattern> (from the share folder)"
                    );
                    return Status::Failed;
                }
            }
        } else if verb.eq_ignore_ascii_case("filedownload") {
            match protocol::parse(line) {
                Ok(Some(Command::Download {
                    transport, name, ..
                })) => self.download(transport, &name),
                Ok(_) => Ok(Status::Failed),
                Err(e) => {
                    eprintln!("p2pshare: {}", e.message);
                    return Status::Failed;
                }
            }
        } else {
            self.remote(line)
        };
        match result {
            Ok(s) => s,
            Err(e) => {
                eprintln!("p2pshare: {e}");
                // The connection is suspect now: make a new one next time.
                self.client = None;
                Status::Failed
            }
        }
    }

    /// Sends a request as typed and shows its reply.
    fn remote(&mut self, line: &str) -> Result<Status, ClientError> {
        let tty = self.tty_out;
        let client = self.connect()?;
        client.send(line)?;
        let mut table: Vec<String> = Vec::new();
        let mut stdout = io::stdout().lock();
        let last = client.read_reply_with(&mut |l: &ReplyLine| {
            if l.code == code::TABLE && !l.last {
                if tty {
                    table.push(l.text.clone());
                } else {
                    let _ = writeln!(stdout, "{}", l.text);
                }
            } else if l.code < 400 && !(l.code == code::TABLE && l.last) {
                let _ = writeln!(stdout, "{}", l.text);
            }
        })?;
        client.record(line, last.code);
        if tty && !table.is_empty() {
            let rows: Vec<Vec<String>> = table.iter().map(|t| super::split_row(t)).collect();
            let _ = stdout.write_all(aligned(&rows).as_bytes());
        }
        if last.code == code::TABLE && tty {
            let _ = writeln!(stdout, "({})", last.text);
        }
        let _ = stdout.flush();
        if last.code >= 400 {
            eprintln!("p2pshare: {} {}", last.code, last.text);
            return Ok(Status::Failed);
        }
        if last.code == code::BYE {
            self.client = None;
            return Ok(Status::Quit);
        }
        Ok(Status::Ok)
    }

    /// `FileDownload`: one name, or every match of a pattern.
    fn download(
        &mut self,
        transport: protocol::Transport,
        name: &str,
    ) -> Result<Status, ClientError> {
        let opts = fetch::Options {
            dest: self.settings.share.clone(),
            overwrite: self.settings.overwrite,
            retries: 3,
            transport,
            udp_payload: self.settings.udp_payload,
        };
        let mut ui = ConsoleUi::new(self.tty_out, self.tty_err);
        let client = self.connect()?;
        let names: Vec<String> = if name.contains(['*', '?', '[']) {
            let r = client.request(&format!("IndexGet regex {}", quote_word(name)))?;
            if r.code() != code::TABLE {
                eprintln!("p2pshare: {} {}", r.code(), r.text());
                return Ok(Status::Failed);
            }
            let names: Vec<String> = r
                .table_rows()
                .into_iter()
                .filter_map(|r| r.into_iter().next())
                .collect();
            if names.is_empty() {
                eprintln!("p2pshare: no file on the peer matches {name}");
                return Ok(Status::Failed);
            }
            names
        } else {
            vec![name.to_string()]
        };
        let failed = fetch::fetch(client, &names, &opts, &mut ui)?;
        Ok(if failed == 0 {
            Status::Ok
        } else {
            Status::Failed
        })
    }

    /// `FileUpload`: one local file, or every local match of a pattern.
    fn upload(&mut self, name: &str) -> Result<Status, ClientError> {
        let root = self.settings.share.clone();
        let names = if name.contains(['*', '?', '[']) {
            match send::local_matches(&root, name) {
                Ok(n) if n.is_empty() => {
                    eprintln!("p2pshare: no local file matches {name}");
                    return Ok(Status::Failed);
                }
                Ok(n) => n,
                Err(e) => {
                    eprintln!("p2pshare: {e}");
                    return Ok(Status::Failed);
                }
            }
        } else {
            vec![name.to_string()]
        };
        let mut ui = ConsoleUi::new(self.tty_out, self.tty_err);
        let client = self.connect()?;
        let failed = send::upload(client, &root, &names, &mut ui)?;
        Ok(if failed == 0 {
            Status::Ok
        } else {
            Status::Failed
        })
    }

    fn local_history(&mut self, args: &[String]) -> Status {
        let n = match args {
            [] => protocol::HISTORY_DEFAULT,
            [n] => match n.parse() {
                Ok(n) => n,
                Err(_) => {
                    eprintln!("p2pshare: usage: history [<n>]");
                    return Status::Failed;
                }
            },
            _ => {
                eprintln!("p2pshare: usage: history [<n>]");
                return Status::Failed;
            }
        };
        match self.history.last(n) {
            Ok(rows) => {
                let mut out = io::stdout().lock();
                let header: Vec<String> = HISTORY_HEADER.iter().map(|s| s.to_string()).collect();
                if self.tty_out {
                    let mut all = vec![header];
                    all.extend(rows);
                    let _ = out.write_all(aligned_with_header(&all).as_bytes());
                } else {
                    let _ = writeln!(out, "{}", header.join("\t"));
                    for r in rows {
                        let fields: Vec<String> =
                            r.iter().map(|f| protocol::escape_field(f)).collect();
                        let _ = writeln!(out, "{}", fields.join("\t"));
                    }
                }
                Status::Ok
            }
            Err(e) => {
                eprintln!(
                    "p2pshare: cannot read {}: {e}",
                    self.history.path().display()
                );
                Status::Failed
            }
        }
    }
}

/// Aligns a table whose first row is the header; a `size` column is shown
/// human-readable.
fn aligned(rows: &[Vec<String>]) -> String {
    aligned_with_header(rows)
}

fn aligned_with_header(rows: &[Vec<String>]) -> String {
    let Some(header) = rows.first() else {
        return String::new();
    };
    let size_col = header.iter().position(|h| h == "size");
    let shown: Vec<Vec<String>> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.iter()
                .enumerate()
                .map(|(j, f)| {
                    let f = protocol::escape_field(f);
                    match (Some(j) == size_col && i > 0, f.parse::<u64>()) {
                        (true, Ok(n)) => human_size(n),
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
            widths[j] = widths[j].max(f.chars().count());
        }
    }
    let mut out = String::new();
    for r in &shown {
        let mut line = String::new();
        for (j, f) in r.iter().enumerate() {
            if j > 0 {
                line.push_str("  ");
            }
            let pad = widths[j] - f.chars().count();
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
struct ConsoleUi {
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
    fn new(tty_out: bool, tty_err: bool) -> ConsoleUi {
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
        let mut out = io::stdout().lock();
        let _ = out.write_all(self.rows.as_bytes());
        let _ = out.flush();
    }
}

impl Ui for ConsoleUi {
    fn start(&mut self, name: &str, total: u64, done: u64) {
        self.name = name.to_string();
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
        eprint!(
            "\r\x1b[K{} [{}{}] {} / {} {}/s ETA {}",
            self.name,
            "=".repeat(filled),
            " ".repeat(width - filled),
            human_size(done),
            human_size(self.total),
            human_size(rate as u64),
            eta
        );
        let _ = io::stderr().flush();
    }

    fn end(&mut self) {
        if self.drawn.is_some() {
            eprint!("\r\x1b[K");
            let _ = io::stderr().flush();
        }
        self.drawn = None;
    }

    fn outcome(&mut self, outcome: &Outcome) {
        let mut out = io::stdout().lock();
        match outcome {
            Outcome::Downloaded(row) | Outcome::Uploaded(row) | Outcome::UpToDate(row) => {
                let fields = row.fields();
                let fields: Vec<String> =
                    fields.iter().map(|f| protocol::escape_field(f)).collect();
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
                        eprintln!("p2pshare: {}: up to date", row.name);
                    }
                }
            }
            Outcome::Failed { message, .. } => {
                let _ = out.flush();
                eprintln!("p2pshare: {message}");
            }
        }
        if self.rows.len() >= 64 * 1024 {
            let _ = out.write_all(self.rows.as_bytes());
            self.rows.clear();
        }
        let _ = out.flush();
    }

    fn note(&mut self, text: &str) {
        eprintln!("p2pshare: {text}");
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
