//! The FTP verbs of a session: the same share, name rules, md5 cache,
//! limits, AUTH gate and history as the native commands, in FTP's words.
//! From the first FTP verb on, the session ends its reply lines with CR LF
//! (`LineEnds`); native commands keep working beside the FTP ones. The
//! handlers are methods of [`FtpFront`]: the session core (`core.rs`),
//! reached through its methods, and FTP's own state, which the
//! connection's loop keeps for it. Nothing here imports the native front
//! end (`native.rs`).

use std::io::{self, Write};
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, SystemTime};

use super::core::Control;
use super::ftp_data::{self, Passive};
use super::ftp_list::{self, absolute, resolve};
use super::ftp_state::FtpFront;
use super::ftp_upload::Store;
use crate::protocol::ftp_reply::{facts_line, list_line, Entry};
use crate::protocol::{FileOp, Ftp, Reply, Transport, Waited};
use crate::share::index::Index;
use crate::share::OpenedFile;
use crate::transfer::{tcp, token, SendOutcome, Sending};

impl<'a, C: Control, W: Write> FtpFront<'_, 'a, C, W> {
    /// From the first FTP line on (one refused too), replies end with CR
    /// LF; what was written before goes out first, with LF.
    fn speak_ftp(&mut self) -> io::Result<()> {
        if !self.core.crlf() {
            self.core.flush()?;
            self.core.set_crlf(true);
        }
        Ok(())
    }

    /// Writes the refusal of a line that was FTP's (an FTP verb that did
    /// not parse), in CR LF; returns its code for the history.
    pub(super) fn refuse(&mut self, reply: Reply<'_>) -> io::Result<u16> {
        self.speak_ftp()?;
        self.core.send(reply)
    }

    /// Answers an FTP verb, switching the session to CR LF first.
    pub(super) fn ftp(&mut self, cmd: Ftp) -> io::Result<Reply<'static>> {
        self.speak_ftp()?;
        Ok(match cmd {
            Ftp::User(_) if self.core.authed() => Reply::ftp_logged_in(),
            Ftp::User(_) => Reply::ftp_need_password(),
            Ftp::Pass(_) if self.core.shared().config.secret.is_none() => Reply::ftp_logged_in(),
            Ftp::Pass(given) => self.pass(&given)?,
            Ftp::AuthTls => Reply::ftp_no_tls(),
            Ftp::Syst => Reply::ftp_system(),
            Ftp::Feat => Reply::ftp_features(),
            Ftp::Opts(o) => opts(&o),
            Ftp::Pwd => Reply::ftp_pwd(&absolute(self.state.cwd())),
            Ftp::Cwd(path) => self.cwd(&path),
            Ftp::Cdup => {
                let parent = ftp_list::parent(self.state.cwd()).to_string();
                self.state.set_cwd(parent);
                Reply::ftp_cwd(&absolute(self.state.cwd()))
            }
            Ftp::Type(t) => match t.to_ascii_uppercase().as_str() {
                "I" | "L 8" => Reply::ftp_ok("type I: binary"),
                "A" | "A N" => Reply::ftp_ok("type A: the bytes are sent unchanged"),
                _ => Reply::ftp_unsupported("TYPE", &t),
            },
            Ftp::Mode(m) if m.eq_ignore_ascii_case("S") => Reply::ftp_ok("mode S: stream"),
            Ftp::Mode(m) => Reply::ftp_unsupported("MODE", &m),
            Ftp::Stru(s) if s.eq_ignore_ascii_case("F") => Reply::ftp_ok("structure F: file"),
            Ftp::Stru(s) => Reply::ftp_unsupported("STRU", &s),
            Ftp::Stat(path) => self.stat(path.as_deref()),
            Ftp::Abor => {
                self.state.drop_passive();
                Reply::ftp_nothing_to_abort()
            }
            Ftp::Pasv => self.passive(false, None),
            Ftp::Epsv(arg) => self.passive(true, arg.as_deref()),
            Ftp::Active => Reply::ftp_no_active_mode(),
            Ftp::List { names_only, path } => self.list(path.as_deref(), names_only, false)?,
            Ftp::Mlsd(path) => self.list(path.as_deref(), false, true)?,
            Ftp::Mlst(path) => self.mlst(path.as_deref()),
            Ftp::Size(name) => self.size(&name),
            Ftp::Mdtm(name) => self.with_file(&name, |_, _, f| Reply::ftp_mdtm(f.mtime)),
            Ftp::Hash(name) => self.with_md5(&name, |n, f, d| Reply::ftp_hash(n, f.size(), d)),
            Ftp::Xmd5(name) => self.with_md5(&name, |_, _, d| Reply::ftp_xmd5(d)),
            Ftp::Rest(offset) => {
                self.state.set_rest(offset);
                Reply::ftp_restart(offset)
            }
            Ftp::Retr(name) => self.retr(&name)?,
            Ftp::Stor(name) => self.store(&name, Store::Stor)?,
            Ftp::Appe(name) => self.store(&name, Store::Appe)?,
            Ftp::Mkd(path) => self.mkd(&path),
            Ftp::Rmd(path) => Reply::ftp_no_removal(&path),
        })
    }

    /// PASS on a peer with a secret. FTP sends its password in plain
    /// text, so the secret is never taken here: only the FTP password of
    /// `--ftp-password`, and without one every login is refused, counted as
    /// no try. The password goes through the core's AUTH path (its
    /// per-address throttle, its count of wrong tries) as what it stands
    /// for: the secret when it is right, a text that is not the secret
    /// when it is wrong.
    /// FTP's `PASS` on a peer with a secret: only the FTP password of
    /// `--ftp-password`, never the secret, which FTP would carry in plain
    /// text. It is a login of its own, so `--auth proof-only` (which is
    /// about the secret) does not refuse it.
    fn pass(&mut self, given: &str) -> io::Result<Reply<'static>> {
        match self.core.shared().config.ftp_password.as_deref() {
            Some(password) => self
                .core
                .try_login(|| token::equal(given.as_bytes(), password.as_bytes())),
            None if self.core.requests().checks_macs() => Ok(Reply::already_proven()),
            None => Ok(Reply::ftp_logins_off()),
        }
    }

    fn cwd(&mut self, path: &str) -> Reply<'static> {
        let snap = self.core.shared().share.snapshot();
        match resolve(self.state.cwd(), path) {
            Some(dir) if self.is_folder(&snap, &dir) => {
                let reply = Reply::ftp_cwd(&absolute(&dir));
                self.state.set_cwd(dir);
                reply
            }
            _ => Reply::ftp_no_folder(path),
        }
    }

    /// True when `dir` is a folder: one the index knows by its files, or
    /// one on the disk with none yet (just made by MKD).
    fn is_folder(&self, snap: &Index, dir: &str) -> bool {
        ftp_list::is_folder(snap, dir) || self.core.shared().share.folder_exists(dir)
    }

    /// [`ftp_list::rows`], and no rows for a folder with no file yet.
    fn rows<'s>(&self, snap: &'s Index, name: &str, files_too: bool) -> Option<Vec<Entry<'s>>> {
        ftp_list::rows(snap, name, files_too)
            .or_else(|| self.core.shared().share.folder_exists(name).then(Vec::new))
    }

    /// The share name `path` names from the current folder; None when the
    /// native rules refuse it.
    pub(super) fn name_of(&self, path: Option<&str>) -> Option<String> {
        resolve(self.state.cwd(), path.unwrap_or("."))
    }

    fn stat(&mut self, path: Option<&str>) -> Reply<'static> {
        let Some(path) = path else {
            let mut lines = vec![format!("connected from {}", self.core.peer())];
            lines.push(format!("current folder {}", absolute(self.state.cwd())));
            lines.push("TYPE I or A (bytes unchanged), STRU F, MODE S".into());
            lines.push("no transfer in progress".into());
            return Reply::ftp_status(lines);
        };
        let snap = self.core.shared().share.snapshot();
        let Some(name) = self.name_of(Some(path)) else {
            return Reply::ftp_no_folder(path);
        };
        let now = SystemTime::now();
        match self.rows(&snap, &name, true) {
            Some(rows) => Reply::ftp_stat_listing(rows.iter().map(|e| list_line(e, now)).collect()),
            None => Reply::ftp_no_folder(path),
        }
    }

    fn mlst(&mut self, path: Option<&str>) -> Reply<'static> {
        let shown = path.unwrap_or(".");
        let snap = self.core.shared().share.snapshot();
        let Some(name) = self.name_of(path) else {
            return Reply::not_shared(shown);
        };
        let full = absolute(&name);
        let made = || {
            let mtime = self.core.shared().share.folder_time(&name)?;
            Some(Entry {
                name: "",
                dir: true,
                size: 0,
                mtime,
            })
        };
        match ftp_list::entry(&snap, &name).or_else(made) {
            Some(e) => Reply::ftp_mlst(&Entry { name: &full, ..e }),
            None => Reply::not_shared(shown),
        }
    }

    /// PASV (`extended` false) or EPSV: a new listener for the next
    /// transfer, replacing any earlier one. The session's native data
    /// channels close first, so that a session holds one or the other.
    fn passive(&mut self, extended: bool, arg: Option<&str>) -> Reply<'static> {
        self.state.drop_passive();
        let v4 = self.core.local().is_ipv4();
        match arg.map(str::to_ascii_uppercase).as_deref() {
            Some("ALL") => {
                self.state.set_epsv_all();
                return Reply::ftp_ok("EPSV ALL: only EPSV from now on");
            }
            None => {}
            Some("1") if v4 => {}
            Some("2") if !v4 => {}
            Some(_) => return Reply::ftp_use_epsv(),
        }
        if !extended && self.state.epsv_all() {
            return Reply::ftp_bad_sequence("PASV after EPSV ALL: use EPSV");
        }
        let IpAddr::V4(ip) = self.core.local() else {
            if !extended {
                return Reply::ftp_use_epsv();
            }
            return self.open_passive(Reply::ftp_extended_passive);
        };
        if extended {
            self.open_passive(Reply::ftp_extended_passive)
        } else {
            self.open_passive(|p| Reply::ftp_passive(ip, p))
        }
    }

    fn open_passive(&mut self, reply: impl Fn(u16) -> Reply<'static>) -> Reply<'static> {
        self.core.close_data_channels();
        match Passive::open(self.core.shared(), self.core.local(), self.core.peer().ip()) {
            Ok(p) => {
                let port = p.port();
                self.state.set_passive(p);
                reply(port)
            }
            Err(refused) => refused,
        }
    }

    /// A transfer's data connection once what it needs is `ready`: the
    /// passive listener is given up when that failed (the client opens a
    /// new one for its next try).
    pub(super) fn when_ready<T>(
        &mut self,
        ready: Result<T, Reply<'static>>,
        what: &str,
    ) -> Result<(T, TcpStream), Reply<'static>> {
        match ready {
            Ok(t) => Ok((t, self.data_connection(what)?)),
            Err(reply) => {
                self.state.drop_passive();
                Err(reply)
            }
        }
    }

    /// The data connection of a transfer: the 150 first, then the
    /// connection from the control peer within the wait for data (cut
    /// short by the idle timeout, as for native transfers).
    fn data_connection(&mut self, what: &str) -> Result<TcpStream, Reply<'static>> {
        let passive = self
            .state
            .take_passive()
            .ok_or_else(Reply::ftp_no_passive)?;
        self.core
            .announce(Reply::ftp_opening(what))
            .map_err(|e| Reply::data_broken(Transport::Tcp, &e))?;
        let deadline = self.core.idle_deadline();
        let left = deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(std::time::Instant::now())
        });
        let full = self.core.shared().config.data_wait;
        let wait = full.min(left);
        match passive.accept(self.core.peer().ip(), wait, self.core.stop()) {
            Some(conn) => Ok(conn),
            None if wait < full => Err(Reply::ftp_no_connection(Waited::CutByIdle)),
            None => Err(Reply::ftp_no_connection(Waited::Full(full))),
        }
    }

    fn list(
        &mut self,
        path: Option<&str>,
        names_only: bool,
        mlsd: bool,
    ) -> io::Result<Reply<'static>> {
        // Read before the snapshot: one taken after the first scan reads
        // done is the whole share.
        let incomplete = !self.core.shared().share.scanned();
        let snap = self.core.shared().share.snapshot();
        let shown = path.unwrap_or(".").to_string();
        let rows = self
            .name_of(path)
            .and_then(|name| self.rows(&snap, &name, !mlsd))
            .ok_or_else(|| Reply::ftp_no_folder(&shown));
        let (rows, conn) = match self.when_ready(rows, &shown) {
            Ok(ready) => ready,
            Err(reply) => return Ok(reply),
        };
        let now = SystemTime::now();
        let lines = rows.iter().map(|e| match (names_only, mlsd) {
            (_, true) => facts_line(e),
            (true, _) => e.name.to_string(),
            _ => list_line(e, now),
        });
        let sent = ftp_data::send_lines(&conn, self.core.shared().config.data_timeout, lines);
        ftp_data::close(conn);
        self.core.touch();
        Ok(match sent {
            Ok(n) => Reply::ftp_listed(n, incomplete),
            Err(e) => Reply::data_broken(Transport::Tcp, &e),
        })
    }

    /// Opens the file `path` names by the native rules, then answers with
    /// `reply`; 550 as natively when it is not shared.
    fn with_file(
        &mut self,
        path: &str,
        reply: impl FnOnce(&mut Self, &str, &OpenedFile) -> Reply<'static>,
    ) -> Reply<'static> {
        let Some(name) = self.name_of(Some(path)) else {
            return Reply::not_shared(path);
        };
        match self.core.shared().share.open_file(&name) {
            Ok(f) => reply(self, &name, &f),
            Err(e) => e.reply(path, FileOp::Open),
        }
    }

    /// [`Session::with_file`] with the file's md5, from the cache or
    /// hashed now.
    fn with_md5(
        &mut self,
        path: &str,
        reply: impl FnOnce(&str, &OpenedFile, crate::digest::Md5) -> Reply<'static>,
    ) -> Reply<'static> {
        self.with_file(path, |s, _, f| match s.core.shared().share.md5_of(f) {
            Ok(d) => reply(path, f, d),
            Err(e) => Reply::cannot(FileOp::Hash, path, &e),
        })
    }

    /// RETR: the bytes from the REST offset on, as the native TCP channel
    /// sends them. The 226 names the md5 when the cache has it (a file not
    /// hashed yet is not hashed first: the bytes go out at once).
    fn retr(&mut self, path: &str) -> io::Result<Reply<'static>> {
        let offset = self.state.take_rest();
        let opened = match self.name_of(Some(path)) {
            Some(name) => self
                .core
                .shared()
                .share
                .open_file(&name)
                .map_err(|e| e.reply(path, FileOp::Open)),
            None => Err(Reply::not_shared(path)),
        };
        let f = match opened {
            Ok(f) if offset > f.size() => Err(Reply::offset_past_end(path, offset, f.size())),
            other => other,
        };
        let (f, mut conn) = match self.when_ready(f, path) {
            Ok(ready) => ready,
            Err(reply) => return Ok(reply),
        };
        let _ = conn.set_write_timeout(Some(self.core.shared().config.data_timeout));
        let outcome = tcp::send_file(&mut conn, &f, offset);
        ftp_data::close(conn);
        self.core.touch();
        let md5 = self.core.shared().share.known_md5(&f.name, &f.key);
        Ok(match (outcome, md5) {
            (SendOutcome::Sent(_), Some(d)) => Reply::download_complete(path, f.size(), d),
            (SendOutcome::Sent(_), None) => Reply::ftp_sent(path, f.size()),
            (outcome, md5) => outcome.reply(&Sending {
                name: path,
                size: f.size(),
                md5: md5.unwrap_or(crate::digest::Md5::of([])),
                data: &crate::protocol::DataLine {
                    transport: Transport::Tcp,
                    port: 0,
                    token: String::new(),
                },
                waited: Waited::CutByIdle,
            }),
        })
    }
}

/// OPTS: UTF8 is always on; MLST's facts are always the three; HASH is
/// always MD5.
fn opts(o: &str) -> Reply<'static> {
    let upper = o.to_ascii_uppercase();
    let mut words = upper.split_whitespace();
    match (words.next(), words.next()) {
        (Some("UTF8" | "UTF-8"), None | Some("ON")) => Reply::ftp_ok("UTF8 is always on"),
        (Some("MLST"), _) => Reply::ftp_ok("MLST OPTS size;modify;type;"),
        (Some("HASH"), None | Some("MD5")) => Reply::ftp_ok("MD5"),
        _ => Reply::ftp_unsupported("OPTS", o),
    }
}
