//! One control connection: the greeting, the request loop, and the
//! hand-over of each request to the front end of its dialect (`native.rs`
//! for p2pshare's own commands, `ftp.rs` for FTP's verbs: a session may
//! mix both). What every dialect shares (the AUTH gate, the history rows,
//! the limits, the data channels) is the session core's (`core.rs`).

use std::io::{self, BufWriter, Write};
use std::net::{SocketAddr, TcpStream};

use super::core::{self, Control, Session};
use super::ftp_state::{FtpFront, FtpState};
use super::line_ends::LineEnds;
use super::Shared;
use crate::protocol::{code, Command, Dialect, Ftp, Parsed, Reply, Spec};
use crate::stop::Stop;

/// Serves one control connection until the peer quits or leaves.
pub(crate) fn run(shared: &Shared, conn: &TcpStream, stop: &Stop) {
    let (Ok(peer), Ok(local)) = (conn.peer_addr(), conn.local_addr()) else {
        return;
    };
    // Seen through a `[::]` listener, an IPv4 client and the address it
    // reached are ::ffff:a.b.c.d. As plain IPv4 they are what the history
    // records, what data listeners bind to and what the data channel
    // compares a connection's source with.
    let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (peer, local) = (canonical(peer), canonical(local));
    let _ = conn.set_nodelay(true);
    let (input, output) = core::control_of(shared, conn);
    serve(shared, stop, input, output, peer, local);
}

/// Runs a session over `input` and `output` (a control connection, or
/// streams in memory in a test) until the peer quits or leaves.
fn serve<C: Control, W: Write>(
    shared: &Shared,
    stop: &Stop,
    input: C,
    output: W,
    peer: SocketAddr,
    local: SocketAddr,
) -> BufWriter<LineEnds<W>> {
    let mut ftp = FtpState::default();
    let mut s = Session::new(shared, stop, input, output, peer, local);
    let _ = s.serve(&mut ftp);
    s.finish()
}

/// Runs the one session of `serve --stdio` over `input` and `output`
/// until the peer quits or its input ends; an error when the streams
/// failed.
pub(super) fn serve_stdio<C: Control, W: Write>(
    shared: &Shared,
    stop: &Stop,
    input: C,
    output: W,
) -> io::Result<()> {
    let mut ftp = FtpState::default();
    let mut s = Session::over_stdio(shared, stop, input, output);
    let served = s.serve(&mut ftp);
    let mut out = s.finish();
    served.and(out.flush())
}

impl<'a, C: Control, W: Write> Session<'a, C, W> {
    /// The greeting, then each request in turn; `ftp` is what FTP's front
    /// end keeps between its verbs.
    fn serve(&mut self, ftp: &mut FtpState<'a>) -> io::Result<()> {
        // The greeting ends with CR LF, as FTP clients wait for; the
        // native replies after it keep their LF.
        self.set_crlf(true);
        let greeting = match self.greeting() {
            Ok(greeting) => greeting,
            // No nonce, no login: the connection is refused.
            Err(e) => Reply::no_random(&e),
        };
        let refused = greeting.code() != code::GREETING;
        self.send(greeting)?;
        self.flush()?;
        if refused {
            return Ok(());
        }
        self.set_crlf(false);
        loop {
            let data_idle = self.shared().config.data_idle;
            let wake = match (self.release_idle_data(), ftp.release_idle(data_idle)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            self.wake_at(wake);
            let next = match self.next_request() {
                Some(Ok(next)) => next,
                Some(Err(e)) if is_timeout(&e) => {
                    if !self.requests().get_ref().get_ref().idle_left().is_zero() {
                        continue;
                    }
                    self.answering(String::new());
                    let _ = self.send(Reply::idle_timeout());
                    let _ = self.flush();
                    return Ok(());
                }
                Some(Err(e)) => return Err(e),
                None => {
                    // A stopping server shuts the reading side of every
                    // session: this end of stream is that, not the client.
                    if self.stop().is_set() {
                        self.answering(String::new());
                        self.send(Reply::shutting_down())?;
                    }
                    return self.flush();
                }
            };
            let (line, reply, quit) = match next {
                Ok(request) => {
                    self.answering(request.said.0);
                    let reply = self.respond(request.spec, request.command, ftp)?;
                    let quit = reply == code::BYE || self.refused_too_often() || self.closing();
                    (request.line, reply, quit)
                }
                Err(refusal) => {
                    self.answering(refusal.said.0);
                    let reply = match refusal.dialect {
                        Dialect::Ftp => FtpFront::new(self, ftp).refuse(refusal.reply)?,
                        Dialect::P2pshare => self.send(refusal.reply)?,
                    };
                    (refusal.line, reply, refusal.closes)
                }
            };
            self.record(&line, reply);
            // Flush only when a further whole request is already waiting,
            // so a pipelining client gets its replies in few packets; a
            // line still being typed is no reason to hold a reply back.
            if quit || !self.requests().get_ref().buffer().contains(&b'\n') {
                self.flush()?;
            }
            if quit {
                return Ok(());
            }
        }
    }

    /// Hands one command to the front end of its dialect (530 to what
    /// needs authentication before AUTH succeeded); its reply is written,
    /// and its final code returned for the history.
    fn respond(&mut self, spec: &Spec, command: Parsed, ftp: &mut FtpState<'a>) -> io::Result<u16> {
        if let Some(refusal) = self.gate(spec) {
            return self.send(refusal);
        }
        match command {
            Parsed::Native(command) => {
                // A native transfer opens the session's data channels:
                // FTP's passive listener closes (a session never holds
                // both).
                if matches!(command, Command::Download { .. } | Command::Upload { .. }) {
                    ftp.drop_passive();
                }
                self.native(command)
            }
            // A stdio session opens no socket: no passive listener.
            Parsed::Ftp(Ftp::Pasv | Ftp::Epsv(_)) if self.stdio() => {
                FtpFront::new(self, ftp).refuse(Reply::passive_over_stdio())
            }
            Parsed::Ftp(verb) => {
                let reply = FtpFront::new(self, ftp).ftp(verb)?;
                self.send(reply)
            }
        }
    }
}

/// Errors that only mean a read timed out.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;
    use crate::server::Config;
    use crate::share::state::StateChoice;
    use crate::share::Share;
    use std::io::Read;
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// A client's side in memory: these bytes, then the end of the stream
    /// (or, when `idle`, a read timeout past the idle deadline).
    struct Script {
        bytes: io::Cursor<Vec<u8>>,
        idle: bool,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.bytes.read(buf)? {
                0 if self.idle => Err(io::ErrorKind::WouldBlock.into()),
                n => Ok(n),
            }
        }
    }

    impl Control for Script {
        fn idle_deadline(&self) -> Option<Instant> {
            self.idle.then(Instant::now)
        }

        fn touch(&mut self) {}

        fn wake_at(&mut self, _: Option<Instant>) {}
    }

    struct Folder(PathBuf);

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A shared folder holding `a.txt` ("hello"), and what sessions share.
    fn shared(tag: &str, config: Config) -> (Folder, Shared) {
        let dir =
            std::env::temp_dir().join(format!("p2pshare-session-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.txt"), "hello").unwrap();
        let share = Share::open(&dir, &StateChoice::default()).unwrap();
        let history = Arc::new(History::of_share(&share.state_dir()));
        let shared = Shared::new(config, Arc::new(share), history, 1);
        (Folder(dir), shared)
    }

    /// What the session wrote for `input`, after the greeting.
    fn transcript(shared: &Shared, stop: &Stop, input: &[u8], idle: bool) -> String {
        let script = Script {
            bytes: io::Cursor::new(input.to_vec()),
            idle,
        };
        let addr: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let out = serve(shared, stop, script, Vec::new(), addr, addr);
        let text = String::from_utf8(out.into_inner().unwrap().inner).unwrap();
        let (greeting, rest) = text.split_once("\r\n").unwrap();
        assert!(greeting.starts_with("220 p2pshare "), "{greeting}");
        assert!(!greeting.contains('\n'), "{greeting}");
        rest.to_string()
    }

    #[test]
    fn a_session_answers_each_line_in_order() {
        let (_dir, shared) = shared("order", Config::default());
        let long = "x".repeat(shared.config.max_line + 1);
        let input = format!(
            "NOOP\r\n\n  \t\nfrob\nHELP frob\nhelp history\n{long}\nNOOP now\n\
             FileDownload missing.txt\nFileDownload a.txt 9\n\
             FileUpload b.txt 5 5d41402abc4b2a76b9719d911017c592\nQUIT\nNOOP\n"
        );
        let mut input = input.into_bytes();
        input.splice(6..6, b"\xff\n".iter().copied());
        let got = transcript(&shared, &Stop::new(), &input, false);
        assert_eq!(
            got,
            "200 ok\n\
             500 invalid UTF-8 in request\n\
             500 unknown command 'frob'; HELP lists commands\n\
             501 unknown command 'frob'; HELP lists commands\n\
             214 usage: History [<n>] [--only <verb>] [--no-poll]\n\
             500 line too long (the limit is 4096 bytes)\n\
             501 usage: NOOP\n\
             550 no such file or not shared: missing.txt\n\
             501 offset 9 is past the end of a.txt (5 bytes)\n\
             550 uploads are disabled on this peer\n\
             221 bye\n"
        );
        let requests: Vec<String> = shared
            .history
            .last(20)
            .unwrap()
            .into_iter()
            .map(|r| format!("{} {}", r[4], r[3]))
            .collect();
        assert_eq!(requests[0], "200 NOOP");
        assert_eq!(requests[1], "500 \u{fffd}");
        assert_eq!(requests[5], "500 (line too long)");
        assert_eq!(requests.last().unwrap(), "221 QUIT");
    }

    #[test]
    fn tables_come_from_the_share() {
        let (dir, shared) = shared("tables", Config::default());
        let mtime = std::fs::metadata(dir.0.join("a.txt"))
            .unwrap()
            .modified()
            .unwrap();
        let ts = crate::timefmt::format(mtime);
        let got = transcript(
            &shared,
            &Stop::new(),
            b"IndexGet longlist\nFileHash verify a.txt\nFileHash checkall\nIndexGet regex *.md\n",
            false,
        );
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines[0], "213-name\tsize\ttimestamp\ttype");
        assert!(
            lines[1].starts_with(&format!("213-a.txt\t5\t{ts}\t")),
            "{}",
            lines[1]
        );
        assert_eq!(lines[2], "213 1 files");
        let hash_table = format!(
            "213-name\tmd5\ttimestamp\n\
             213-a.txt\t5d41402abc4b2a76b9719d911017c592\t{ts}\n\
             213 1 files\n"
        );
        let rest = lines[3..].join("\n") + "\n";
        assert_eq!(
            rest,
            format!("{hash_table}{hash_table}213-name\tsize\ttimestamp\ttype\n213 0 files\n")
        );
    }

    #[test]
    fn nothing_but_help_noop_auth_and_quit_before_auth() {
        let config = Config {
            secret: Some("s3cret".into()),
            auth_delay: Duration::ZERO,
            ..Config::default()
        };
        let (_dir, shared) = shared("auth", config);
        let got = transcript(
            &shared,
            &Stop::new(),
            b"IndexGet longlist\nAUTH wrong\nNOOP\nHELP AUTH\nAUTH s3cret\nHistory 2\nQUIT\n",
            false,
        );
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(
            lines[..5],
            [
                "530 authentication required: send AUTH <secret> first",
                "530 wrong secret (1 of 3 tries)",
                "200 ok",
                "214 usage: AUTH <secret>",
                "230 authenticated",
            ]
        );
        assert_eq!(lines[5], "213-time\tdirection\tpeer\trequest\treply");
        assert!(lines[6].ends_with("\tin\t127.0.0.1:40000\tHELP AUTH\t214"));
        assert!(lines[7].ends_with("\tin\t127.0.0.1:40000\tAUTH ***\t230"));
        assert_eq!(lines[8..], ["213 2 requests", "221 bye"]);

        let got = transcript(
            &shared,
            &Stop::new(),
            b"AUTH a\nAUTH b\nAUTH c\nNOOP\n",
            false,
        );
        assert_eq!(
            got,
            "530 wrong secret (1 of 3 tries)\n\
             530 wrong secret (2 of 3 tries)\n\
             530 wrong secret; closing the connection\n"
        );
    }

    #[test]
    fn the_session_ends_with_421_when_idle_or_stopping() {
        let (_dir, shared) = shared("end", Config::default());
        let got = transcript(&shared, &Stop::new(), b"NOOP\n", true);
        assert_eq!(got, "200 ok\n421 idle timeout\n");
        let stop = Stop::new();
        stop.set();
        assert_eq!(
            transcript(&shared, &stop, b"NOOP\n", false),
            "200 ok\n421 shutting down\n"
        );
        assert_eq!(
            transcript(&shared, &Stop::new(), b"NOOP", false),
            "200 ok\n"
        );
    }
}
