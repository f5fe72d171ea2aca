//! The client's console: commands from `-c`, a pipe or a terminal; replies
//! shown as aligned tables and a progress bar on a terminal, as plain TSV
//! into a pipe; errors on stderr; an exit status that says whether every
//! command succeeded.

use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use super::answer::split_row;
use super::control::Client;
use super::error::ClientError;
use super::fetch;
use super::link::Link;
use super::out::{self, tell};
use super::send;
use super::settings::Settings;
use super::show::{aligned, aligned_with_header, count_text, peer_text, tsv_row, ConsoleUi};
use super::ssh;
use super::sync;
use crate::history::History;
use crate::protocol::{self, code, quote_word, Command, Escapes, ReplyLine, HISTORY_HEADER};
use crate::share::Share;

/// What running one command came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Failed,
    Quit,
}

/// The console: one connection to a peer (made on first use, remade after
/// it broke) and where output goes.
pub struct Console {
    settings: Settings,
    history: Arc<History>,
    /// The connection to the peer (see [`Link`]).
    link: Link,
    tty_out: bool,
    tty_err: bool,
    /// Peer mode: the other peer may not be up yet (or may be restarting),
    /// so a command waits for it instead of failing.
    wait_for_peer: bool,
    /// Commands refused here, before reaching the peer, for their words.
    usage_errors: usize,
    /// The input at the terminal was ended by Ctrl-C (peer mode).
    interrupted: bool,
    /// The local share, when it is open already (peer mode): Sync uses
    /// its index and md5 cache.
    share: Option<Arc<Share>>,
}

impl Console {
    pub fn new(settings: Settings, history: Arc<History>) -> Console {
        Console {
            settings,
            history,
            link: Link::default(),
            tty_out: io::stdout().is_terminal(),
            tty_err: io::stderr().is_terminal(),
            wait_for_peer: false,
            usage_errors: 0,
            interrupted: false,
            share: None,
        }
    }

    /// Uses `link` for the connection to the peer, shared with whoever
    /// else holds it (peer mode's poller).
    pub fn with_link(mut self, link: Link) -> Console {
        self.link = link;
        self
    }

    /// Lets Sync use the local share as it is open already.
    pub fn with_share(mut self, share: Arc<Share>) -> Console {
        self.share = Some(share);
        self
    }

    /// How many commands were refused for their words (a usage error,
    /// told on stderr) before reaching the peer.
    pub fn usage_errors(&self) -> usize {
        self.usage_errors
    }

    /// Tells a usage error and counts it.
    fn usage(&mut self, message: &str) -> Status {
        tell!("p2pshare: {message}");
        self.usage_errors += 1;
        Status::Failed
    }

    /// Makes commands wait, retrying, until the peer can be reached (peer
    /// mode, where either side may start first).
    pub fn wait_for_peer(&mut self) {
        self.wait_for_peer = true;
    }

    /// Connects now if not connected.
    pub fn connect(&mut self) -> Result<(), ClientError> {
        let link = self.link.clone();
        let mut slot = link.lock();
        self.connect_into(&mut slot).map(|_| ())
    }

    /// The connection in `slot`, made first when there is none.
    fn connect_into<'a>(
        &self,
        slot: &'a mut Option<Client>,
    ) -> Result<&'a mut Client, ClientError> {
        let client = match slot.take() {
            Some(c) => c,
            None => self.new_client()?,
        };
        Ok(slot.insert(client))
    }

    /// A new connection to the peer (through ssh for an `ssh://` one); in
    /// peer mode, one that waits until the peer can be reached.
    fn new_client(&self) -> Result<Client, ClientError> {
        let mut told = false;
        loop {
            match ssh::connect(&self.settings, Some(self.history.clone())) {
                Ok(c) => return Ok(c),
                Err(ClientError::Connect(_, e)) if self.wait_for_peer => {
                    if !told {
                        tell!(
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
    }

    /// Runs `f` on the connection to the peer, made first when there is
    /// none, and remade first when the peer closed the one held (it
    /// restarted, said `421`, or the connection idled out): nothing was
    /// sent on it yet, so the command just runs on the new one. When the
    /// connection drops while `f` runs and `resend` says so (a request that
    /// changes nothing on the peer, with nothing shown yet), `f` runs once
    /// more on a new connection.
    fn on_peer<T>(
        &mut self,
        mut f: impl FnMut(&mut Client) -> Result<T, ClientError>,
        resend: impl Fn() -> bool,
    ) -> Result<T, ClientError> {
        let mut again = false;
        let link = self.link.clone();
        let mut slot = link.lock();
        loop {
            if slot.as_mut().is_some_and(|c| !c.is_open()) {
                *slot = None;
            }
            let client = self.connect_into(&mut slot)?;
            match f(client) {
                Err(e) if e.is_drop() && !again && resend() => {
                    tell!("p2pshare: {e}; connecting again");
                    *slot = None;
                    again = true;
                }
                other => return other,
            }
        }
    }

    /// Runs commands from a terminal (edited, see [`super::prompt`]) or a
    /// pipe until QUIT or end of input. Returns how many failed.
    /// In peer mode Ctrl-C at the prompt ends the input (see
    /// [`Console::interrupted`]).
    pub fn run_stdin(&mut self) -> usize {
        let mut lines = super::prompt::Lines::stdin("p2pshare> ");
        if self.wait_for_peer {
            lines = lines.ending_on_ctrl_c();
        }
        let mut failures = 0;
        while let Some(line) = lines.next_line() {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    tell!("p2pshare: cannot read input: {e}");
                    failures += 1;
                    break;
                }
            };
            // Where lines are not edited, an arrow key arrives as an
            // escape sequence: never a command anybody meant to send.
            if line.contains('\x1b') {
                tell!(
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
        self.interrupted = lines.interrupted();
        failures
    }

    /// True when Ctrl-C at the prompt ended the input.
    pub fn interrupted(&self) -> bool {
        self.interrupted
    }

    /// Ends the session politely.
    pub fn close(&mut self) {
        let mut slot = self.link.lock();
        if let Some(c) = slot.as_mut() {
            c.quit();
        }
        *slot = None;
    }

    /// Runs one command line. Output that could not be written (stdout
    /// or stderr full or gone) fails it, said on stderr when stderr takes
    /// it.
    pub fn execute(&mut self, line: &str) -> Status {
        let status = self.command(line);
        if out::report_failure() && status != Status::Quit {
            return Status::Failed;
        }
        status
    }

    /// Runs one command line.
    /// Words are read with the console's escapes ([`Escapes::Console`]:
    /// the wire's, plus `\u{HEX}` as names are shown), so that a name
    /// copied from the client's output names the same file; each is
    /// written again with [`quote_word`] for the peer.
    fn command(&mut self, line: &str) -> Status {
        let words = match protocol::split_words_with(line, Escapes::Console) {
            Ok(w) => w,
            Err(e) => return self.usage(&e.message),
        };
        let Some(verb) = words.first() else {
            return Status::Ok;
        };
        match verb.as_str() {
            "help" => {
                out::write(out::Stream::Stdout, &super::help::text());
                return Status::Ok;
            }
            "history" => return self.local_history(&words[1..]),
            _ => {}
        }
        if verb.eq_ignore_ascii_case("exit") || verb.eq_ignore_ascii_case("quit") {
            self.close();
            return Status::Quit;
        }
        // With --secret the login is AUTH PROOF's: a typed AUTH would put
        // a secret on the wire as it is.
        if verb.eq_ignore_ascii_case("auth") && self.settings.secret.is_some() {
            return self.usage(
                "not sent: with --secret the client logs in by AUTH PROOF, and a typed AUTH would send a secret as it is",
            );
        }
        let result = if verb.eq_ignore_ascii_case("sync") {
            match sync::parse_args(&words[1..]) {
                Ok(args) => self.sync(&args),
                Err(message) => return self.usage(&message),
            }
        } else if verb.eq_ignore_ascii_case("fileupload") {
            match &words[1..] {
                [name] => self.upload(name),
                _ => {
                    return self
                        .usage("usage: FileUpload <name-or-pattern> (from the share folder)")
                }
            }
        } else if verb.eq_ignore_ascii_case("filedownload") {
            match download_args(&words[1..], self.settings.overwrite) {
                Ok((transport, name, overwrite)) => self.download(transport, &name, overwrite),
                Err(message) => return self.usage(&message),
            }
        } else {
            let line: Vec<String> = words.iter().map(|w| quote_word(w)).collect();
            self.remote(&line.join(" "))
        };
        match result {
            Ok(s) => s,
            Err(e) => {
                tell!("p2pshare: {e}");
                // The connection is suspect now: make a new one next time.
                *self.link.lock() = None;
                Status::Failed
            }
        }
    }

    /// Sends a request as typed and shows its reply.
    fn remote(&mut self, line: &str) -> Result<Status, ClientError> {
        let tty = self.tty_out;
        let is_history = line
            .split(' ')
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("history"));
        // Nothing a remote command does changes the peer's files (uploads
        // go through `upload`), so it is sent again after a drop, as long
        // as none of its reply was shown yet.
        let shown = std::cell::Cell::new(false);
        let last = self.on_peer(
            |client| {
                client.send(line)?;
                let mut table: Vec<String> = Vec::new();
                let mut stdout = out::stdout();
                // A reply with a MAC is shown only once it held.
                let mut held = client.is_sealed().then(out::Held::new);
                let last = client.read_reply_with(&mut |l: &ReplyLine| {
                    shown.set(true);
                    let to: &mut dyn Write = match &mut held {
                        Some(h) => h,
                        None => &mut stdout,
                    };
                    if l.code == code::TABLE && !l.last {
                        if tty {
                            table.push(l.text.clone());
                        } else {
                            let _ = writeln!(to, "{}", tsv_row(&l.text));
                        }
                    } else if l.code < 400 && !(l.code == code::TABLE && l.last) {
                        let _ = writeln!(to, "{}", peer_text(&l.text));
                    }
                })?;
                if let Some(h) = held {
                    let _ = h.release(&mut stdout);
                }
                client.record(line, last.code);
                if tty && !table.is_empty() {
                    if is_history {
                        let _ = writeln!(
                            stdout,
                            "the peer's history ({}); `history` shows this side's:",
                            client.addr()
                        );
                    }
                    let rows: Vec<Vec<String>> = table.iter().map(|t| split_row(t)).collect();
                    let _ = stdout.write_all(aligned(&rows).as_bytes());
                }
                if last.code == code::TABLE && tty {
                    let _ = writeln!(stdout, "({})", count_text(&last.text));
                }
                let _ = stdout.flush();
                Ok(last)
            },
            || !shown.get(),
        )?;
        if last.code >= 400 {
            tell!("p2pshare: {} {}", last.code, peer_text(&last.text));
            return Ok(Status::Failed);
        }
        if last.code == code::BYE {
            *self.link.lock() = None;
            return Ok(Status::Quit);
        }
        Ok(Status::Ok)
    }

    /// `FileDownload`: one name, or every match of a pattern.
    fn download(
        &mut self,
        transport: protocol::Transport,
        name: &str,
        overwrite: bool,
    ) -> Result<Status, ClientError> {
        let transport = ssh::transport_for(&self.settings.target, transport);
        let opts = fetch::Options {
            dest: self.settings.share.clone(),
            overwrite,
            retries: 3,
            transport,
            udp_payload: self.settings.udp_payload,
            state_dir: self
                .history
                .path()
                .parent()
                .map(std::path::Path::to_path_buf),
        };
        let mut ui = ConsoleUi::new(self.tty_out, self.tty_err);
        // Asking for names and downloading change nothing on the peer:
        // both are sent again after a drop, the download going on with
        // the files not done yet (a partial file resumes).
        let names = self.on_peer(|client| fetch::names_of(client, name), || true)?;
        let (names, pattern) = match names {
            Ok(found) => found,
            Err(message) => {
                tell!("p2pshare: {message}");
                return Ok(Status::Failed);
            }
        };
        let mut batch = fetch::Batch::new(names);
        self.on_peer(
            |client| fetch::fetch(client, &mut batch, &opts, &mut ui),
            || true,
        )?;
        drop(ui);
        if pattern && self.tty_err {
            let t = batch.tally;
            tell!(
                "p2pshare: {}: {} downloaded, {} up to date, {} failed",
                protocol::shown(name),
                t.downloaded,
                t.up_to_date,
                t.failed
            );
        }
        Ok(if batch.tally.failed == 0 {
            Status::Ok
        } else {
            Status::Failed
        })
    }

    /// `Sync`: the peer's changes into the local share (see [`sync`]).
    fn sync(&mut self, args: &sync::Args) -> Result<Status, ClientError> {
        let ctx = self.sync_context(std::collections::BTreeSet::new());
        // `--restore` needs nothing of the peer: it runs even while the
        // peer cannot be reached.
        if let Some(r) = &args.restore {
            return Ok(match sync::restore(r, &ctx) {
                true => Status::Ok,
                false => Status::Failed,
            });
        }
        // Not sent again after a drop: what was done stays done, and the
        // next Sync goes on from there.
        let report = self.on_peer(|client| sync::run(client, args, &ctx), || false)?;
        Ok(if report.ok {
            Status::Ok
        } else {
            Status::Failed
        })
    }

    /// Where a Sync of this console runs.
    pub fn sync_context(&self, busy: std::collections::BTreeSet<String>) -> sync::Context {
        let root = self.settings.share.clone();
        sync::Context {
            settings: self.settings.clone(),
            history: self.history.clone(),
            state_dir: self.history.path().parent().unwrap_or(&root).to_path_buf(),
            share: self.share.clone(),
            tty_out: self.tty_out,
            busy,
            seen: None,
            quiet: false,
        }
    }

    /// `FileUpload`: one local file, or every local match of a pattern.
    fn upload(&mut self, name: &str) -> Result<Status, ClientError> {
        let root = self.settings.share.clone();
        let names = if name.contains(['*', '?', '[']) {
            let state = self.history.path().parent().unwrap_or(&root);
            match send::local_matches(&root, name, state) {
                Ok(n) if n.is_empty() => {
                    tell!("p2pshare: no local file matches {}", protocol::shown(name));
                    return Ok(Status::Failed);
                }
                Ok(n) => n,
                Err(e) => {
                    tell!("p2pshare: {e}");
                    return Ok(Status::Failed);
                }
            }
        } else {
            vec![name.to_string()]
        };
        let mut ui = ConsoleUi::new(self.tty_out, self.tty_err);
        // An upload is never sent twice: after a drop in its middle the
        // peer may have stored the file or not, and only a look would
        // tell. A connection found closed before it starts is remade.
        let failed = self.on_peer(
            |client| send::upload(client, &root, &names, &mut ui),
            || false,
        )?;
        Ok(if failed == 0 {
            Status::Ok
        } else {
            Status::Failed
        })
    }

    fn local_history(&mut self, args: &[String]) -> Status {
        const USAGE: &str = "usage: history [<n>] [--only <verb>] [--no-poll]";
        let (n, filter) = match protocol::parse_history_args(args) {
            Ok(x) => x,
            Err(_) => return self.usage(USAGE),
        };
        let rows = if filter.is_all() {
            self.history.last(n)
        } else {
            self.history.matching(n, &filter).map(Iterator::collect)
        };
        match rows {
            Ok(rows) => {
                let mut out = out::stdout();
                let header: Vec<String> = HISTORY_HEADER.iter().map(|s| s.to_string()).collect();
                if self.tty_out {
                    let _ = writeln!(
                        out,
                        "this side's history ({}); `History` shows the peer's:",
                        self.history.path().display()
                    );
                    let mut all = vec![header];
                    all.extend(rows);
                    let _ = out.write_all(aligned_with_header(&all).as_bytes());
                } else {
                    let _ = writeln!(out, "{}", header.join("\t"));
                    for r in rows {
                        let fields: Vec<String> = r.iter().map(|f| protocol::shown(f)).collect();
                        let _ = writeln!(out, "{}", fields.join("\t"));
                    }
                }
                Status::Ok
            }
            Err(e) => {
                tell!(
                    "p2pshare: cannot read {}: {e}",
                    self.history.path().display()
                );
                Status::Failed
            }
        }
    }
}

/// The words after `FileDownload` in the console: `[TCP|UDP] [--overwrite]
/// <name-or-pattern>` (the flag may come first too, and is a name when
/// nothing follows it). With the transport, the name and whether to
/// overwrite; else the usage error. No offset: the client resumes a
/// partial download by itself.
fn download_args(
    args: &[String],
    overwrite: bool,
) -> Result<(protocol::Transport, String, bool), String> {
    let is_transport = |w: &str| w.eq_ignore_ascii_case("tcp") || w.eq_ignore_ascii_case("udp");
    let mut overwrite = overwrite;
    let mut rest: Vec<String> = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let before_name = rest.is_empty() || (rest.len() == 1 && is_transport(&rest[0]));
        if a == "--overwrite" && before_name && i + 1 < args.len() {
            overwrite = true;
        } else {
            rest.push(a.clone());
        }
    }
    const USAGE: &str = "usage: FileDownload [TCP|UDP] [--overwrite] <name-or-pattern>";
    let transport_given = rest.len() > 1 && is_transport(&rest[0]);
    let words = &rest[usize::from(transport_given)..];
    if words.len() > 1 {
        // More than one word: an offset (never taken here), or a name
        // with spaces that was not quoted.
        let last = &words[words.len() - 1];
        return Err(
            if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
                format!("FileDownload takes no offset here: the client resumes a partial download by itself; {USAGE}")
            } else {
                let transport = if transport_given {
                    String::new()
                } else {
                    format!(
                        " ('{}' is not a transport (TCP or UDP))",
                        protocol::shown(&words[0])
                    )
                };
                format!(
                "FileDownload takes one name: quote a name with spaces, as in FileDownload \"{}\"{transport}; {USAGE}",
                protocol::shown(&words.join(" "))
            )
            },
        );
    }
    match protocol::parse_download(&rest) {
        Ok(Command::Download {
            transport, name, ..
        }) => Ok((transport, name, overwrite)),
        _ => Err(USAGE.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::download_args;

    fn words(line: &str) -> Vec<String> {
        line.split(' ').map(String::from).collect()
    }

    #[test]
    fn a_name_with_spaces_unquoted_is_told_to_be_quoted_never_offered_an_offset() {
        let err = download_args(&words("notes/meeting notes.txt"), false).unwrap_err();
        assert!(err.contains("quote"), "{err}");
        assert!(err.contains("\"notes/meeting notes.txt\""), "{err}");
        assert!(!err.contains("<offset>"), "{err}");
        let err = download_args(&words("UDP a b c"), false).unwrap_err();
        assert!(err.contains("\"a b c\""), "{err}");
        let err = download_args(&words("a.txt 10"), false).unwrap_err();
        assert!(err.contains("no offset"), "{err}");
        assert!(!err.contains("<offset>"), "{err}");
        let ok = download_args(&words("UDP --overwrite a.txt"), false).unwrap();
        assert_eq!(ok.1, "a.txt");
        assert!(ok.2);
    }
}
