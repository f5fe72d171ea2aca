//! The replies of the FTP dialect (RFC 959, 2389, 2428, 3659,
//! draft-bryan-ftpext-hash), as values like every other [`Reply`], and the
//! lines FTP listings are made of. Nothing here touches a socket or a file.

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use super::code::{AUTHENTICATED, COMPLETE, DATA, NOT_FOUND, NO_DATA, OK, STATUS, TABLE};
use super::Reply;
use crate::digest::Md5;
use crate::timefmt;

/// FTP's reply codes beyond the native ones ([`super::code`]).
pub mod code {
    pub const SYSTEM: u16 = 215;
    pub const PASSIVE: u16 = 227;
    pub const EXTENDED_PASSIVE: u16 = 229;
    pub const FILE_ACTION_OK: u16 = 250;
    pub const PATH_CREATED: u16 = 257;
    pub const NEED_PASSWORD: u16 = 331;
    pub const PENDING: u16 = 350;
    pub const NOT_IMPLEMENTED: u16 = 502;
    pub const BAD_SEQUENCE: u16 = 503;
    pub const NOT_IMPLEMENTED_PARAM: u16 = 504;
    pub const BAD_PROTOCOL: u16 = 522;
    pub const POLICY_DENIED: u16 = 534;
    pub const BAD_REST: u16 = 554;
}

/// The lines of `FEAT`: exactly the extensions the server speaks.
pub const FEATURES: &[&str] = &[
    "EPSV",
    "HASH MD5*",
    "MDTM",
    "MLST size*;modify*;type*;",
    "REST STREAM",
    "SIZE",
    "TVFS",
    "UTF8",
];

/// One entry of a listing: a file, or a folder (which the index knows by
/// the files below it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub name: &'a str,
    pub dir: bool,
    pub size: u64,
    pub mtime: SystemTime,
}

/// `20261127100000`: the time of MDTM and of the `modify` fact, UTC.
pub fn ftp_time(t: SystemTime) -> String {
    timefmt::format(t)
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}

/// A `LIST` line in the form of `ls -l`, as every FTP client parses it:
/// the time for files of the last half year, else the year.
pub fn list_line(e: &Entry<'_>, now: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let stamp = timefmt::format(e.mtime); // 2026-11-27T10:00:00Z
    let month: usize = stamp.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    let day: u32 = stamp.get(8..10).and_then(|d| d.parse().ok()).unwrap_or(1);
    let recent = match now.duration_since(e.mtime) {
        Ok(age) => age < Duration::from_secs(182 * 86_400),
        Err(ahead) => ahead.duration() < Duration::from_secs(86_400),
    };
    let when = if recent {
        stamp.get(11..16).unwrap_or("00:00").to_string()
    } else {
        format!(" {}", stamp.get(..4).unwrap_or("1970"))
    };
    let (mode, links) = if e.dir {
        ("drwxr-xr-x", 2)
    } else {
        ("-rw-r--r--", 1)
    };
    format!(
        "{mode} {links} ftp ftp {:>12} {} {day:>2} {when} {}",
        e.size,
        MONTHS[month.clamp(1, 12) - 1],
        e.name
    )
}

/// An `MLSD` line, or an `MLST` one without its leading space: the facts
/// FEAT names, then the name.
pub fn facts_line(e: &Entry<'_>) -> String {
    if e.dir {
        format!("type=dir;modify={}; {}", ftp_time(e.mtime), e.name)
    } else {
        format!(
            "type=file;size={};modify={}; {}",
            e.size,
            ftp_time(e.mtime),
            e.name
        )
    }
}

/// A path in a 257 reply: quoted, with its quotes doubled (RFC 959).
pub fn quoted_path(path: &str) -> String {
    format!("\"{}\"", path.replace('"', "\"\""))
}

/// Names FTP cannot carry on a line (CR or LF in them) are left out of its
/// listings; the native tables escape them.
pub fn listable(name: &str) -> bool {
    !name.contains(['\r', '\n'])
}

impl<'a> Reply<'a> {
    pub fn ftp_need_password() -> Reply<'a> {
        Reply::line(
            code::NEED_PASSWORD,
            "send the FTP password (never the peer's secret)",
        )
    }

    /// 530 to PASS on a peer with a secret and no FTP password: FTP
    /// would carry the secret in plain text. Not a wrong try.
    pub fn ftp_logins_off() -> Reply<'a> {
        Reply::line(
            super::code::AUTH_REQUIRED,
            "FTP logins are off: this peer has a secret, which FTP would send in plain text; \
             start it with --ftp-password P to take a password of its own for FTP, or use \
             p2pshare client",
        )
    }

    pub fn ftp_logged_in() -> Reply<'a> {
        Reply::line(AUTHENTICATED, "logged in")
    }

    /// 530 to an FTP verb before the login.
    pub fn ftp_login_required() -> Reply<'a> {
        Reply::line(
            super::code::AUTH_REQUIRED,
            "log in with USER and PASS first",
        )
    }

    /// `AUTH TLS`: not offered, so a client that tries TLS first goes on
    /// in plain text. Not a wrong secret.
    pub fn ftp_no_tls() -> Reply<'a> {
        Reply::line(
            code::POLICY_DENIED,
            "TLS is not available on this peer; go on without it",
        )
    }

    pub fn ftp_system() -> Reply<'a> {
        Reply::line(code::SYSTEM, "UNIX Type: L8")
    }

    pub fn ftp_features() -> Reply<'a> {
        let lines = FEATURES.iter().map(|f| f.to_string()).collect();
        Reply::block(STATUS, "Features:", lines, "End")
    }

    pub fn ftp_ok(text: &'static str) -> Reply<'a> {
        Reply::line(OK, text)
    }

    /// A parameter of TYPE, MODE, STRU or OPTS that is not supported.
    pub fn ftp_unsupported(verb: &str, arg: &str) -> Reply<'a> {
        Reply::line(
            code::NOT_IMPLEMENTED_PARAM,
            format!("{verb} {} is not supported", super::shown(arg)),
        )
    }

    pub fn ftp_cwd(path: &str) -> Reply<'a> {
        Reply::line(
            code::FILE_ACTION_OK,
            format!("now in {}", quoted_path(path)),
        )
    }

    pub fn ftp_pwd(path: &str) -> Reply<'a> {
        Reply::line(
            code::PATH_CREATED,
            format!("{} is the current folder", quoted_path(path)),
        )
    }

    pub fn ftp_no_folder(path: &str) -> Reply<'a> {
        Reply::line(
            NOT_FOUND,
            format!("no such folder or not shared: {}", super::shown(path)),
        )
    }

    pub fn ftp_passive(ip: Ipv4Addr, port: u16) -> Reply<'a> {
        let [a, b, c, d] = ip.octets();
        let (p1, p2) = (port >> 8, port & 0xff);
        Reply::line(
            code::PASSIVE,
            format!("Entering Passive Mode ({a},{b},{c},{d},{p1},{p2})"),
        )
    }

    pub fn ftp_extended_passive(port: u16) -> Reply<'a> {
        Reply::line(
            code::EXTENDED_PASSIVE,
            format!("Entering Extended Passive Mode (|||{port}|)"),
        )
    }

    /// PASV on an IPv6 control connection, or EPSV for another protocol.
    pub fn ftp_use_epsv() -> Reply<'a> {
        Reply::line(
            code::BAD_PROTOCOL,
            "this connection's address family needs EPSV (1 is IPv4, 2 IPv6)",
        )
    }

    /// PORT and EPRT: active mode would let a client aim the server at any
    /// address (a bounce attack), so there is none.
    pub fn ftp_no_active_mode() -> Reply<'a> {
        Reply::line(
            code::NOT_IMPLEMENTED,
            "active mode (PORT, EPRT) is not supported: use PASV or EPSV",
        )
    }

    /// A transfer with no PASV or EPSV before it.
    pub fn ftp_no_passive() -> Reply<'a> {
        Reply::line(NO_DATA, "use PASV or EPSV first")
    }

    /// The data connection did not come (from the control connection's
    /// address) in time.
    pub fn ftp_no_connection(waited: super::Waited) -> Reply<'a> {
        Reply::line(
            NO_DATA,
            format!("no data connection {waited}: connect to the passive port"),
        )
    }

    /// The 150 before the bytes of a transfer.
    pub fn ftp_opening(what: &str) -> Reply<'a> {
        Reply::line(
            DATA,
            format!("opening data connection for {}", super::shown(what)),
        )
    }

    /// The 226 after a listing; made during the share's first scan it
    /// says so: `226 N entries (incomplete: the first scan is still
    /// running)`.
    pub fn ftp_listed(n: u64, incomplete: bool) -> Reply<'a> {
        match incomplete {
            true => Reply::line(COMPLETE, format!("{n} entries ({})", super::INCOMPLETE)),
            false => Reply::line(COMPLETE, format!("{n} entries")),
        }
    }

    /// A download whose md5 is not cached yet ends without one.
    pub fn ftp_sent(name: &str, size: u64) -> Reply<'a> {
        Reply::line(COMPLETE, format!("{} {size} bytes", super::shown(name)))
    }

    pub fn ftp_stored(name: &str, size: u64, md5: Md5) -> Reply<'a> {
        Reply::line(
            COMPLETE,
            format!("stored {} {size} bytes md5={md5}", super::shown(name)),
        )
    }

    pub fn ftp_stored_same(name: &str, size: u64, md5: Md5) -> Reply<'a> {
        Reply::line(
            COMPLETE,
            format!(
                "{} was there with the same content: {size} bytes md5={md5}",
                super::shown(name)
            ),
        )
    }

    /// A STOR whose data connection failed (reset, or stalled past the
    /// data timeout) before the client closed it.
    pub fn ftp_upload_broken(got: u64, e: &dyn std::fmt::Display) -> Reply<'a> {
        Reply::line(
            super::code::ABORTED,
            format!("data connection broken after {got} bytes ({e}); nothing stored"),
        )
    }

    /// A STOR or APPE that broke off (the data connection failed, or the
    /// control connection was gone when the data ended): what arrived is
    /// kept for a resume.
    pub fn ftp_upload_kept(name: &str, kept: u64) -> Reply<'a> {
        Reply::line(
            super::code::ABORTED,
            format!(
                "upload of {} broke off: {kept} bytes kept for a resume (APPE, or REST {kept} + STOR)",
                super::shown(name)
            ),
        )
    }

    /// `MKD`: the folder made, quoted as RFC 959 asks.
    pub fn ftp_made(path: &str) -> Reply<'a> {
        Reply::line(code::PATH_CREATED, format!("{} created", quoted_path(path)))
    }

    /// `MKD` of a name taken already.
    pub fn ftp_exists(path: &str) -> Reply<'a> {
        Reply::line(NOT_FOUND, format!("{} exists already", super::shown(path)))
    }

    /// `REST n` + `STOR` where no partial upload holds `n` bytes.
    pub fn ftp_bad_rest(name: &str, offset: u64, have: Option<u64>) -> Reply<'a> {
        let what = match have {
            Some(h) => format!(
                "the partial upload of {} holds {h} bytes",
                super::shown(name)
            ),
            None => format!("no partial upload of {} is kept", super::shown(name)),
        };
        Reply::line(
            code::BAD_REST,
            format!("cannot resume at {offset}: {what}; send REST 0 and STOR, or APPE"),
        )
    }

    /// `APPE` to a stored file: it is never changed.
    pub fn ftp_no_append(name: &str) -> Reply<'a> {
        Reply::line(
            super::code::NAME_NOT_ALLOWED,
            format!(
                "{} is stored already and is never changed: APPE resumes only a partial upload",
                super::shown(name)
            ),
        )
    }

    /// `RMD`: nothing is ever removed over the network.
    pub fn ftp_no_removal(path: &str) -> Reply<'a> {
        Reply::line(
            NOT_FOUND,
            format!(
                "{} stays: this peer never removes folders or files",
                super::shown(path)
            ),
        )
    }

    pub fn ftp_size(size: u64) -> Reply<'a> {
        Reply::line(TABLE, size.to_string())
    }

    pub fn ftp_mdtm(t: SystemTime) -> Reply<'a> {
        Reply::line(TABLE, ftp_time(t))
    }

    /// `HASH`: `213 MD5 0-<size> <md5> <name>`.
    pub fn ftp_hash(name: &str, size: u64, md5: Md5) -> Reply<'a> {
        Reply::line(TABLE, format!("MD5 0-{size} {md5} {}", super::shown(name)))
    }

    pub fn ftp_xmd5(md5: Md5) -> Reply<'a> {
        Reply::line(code::FILE_ACTION_OK, md5.to_string())
    }

    pub fn ftp_restart(offset: u64) -> Reply<'a> {
        Reply::line(
            code::PENDING,
            format!("restarting at {offset}; send RETR or STOR"),
        )
    }

    /// `MLST`: the facts of one entry on the control connection.
    pub fn ftp_mlst(e: &Entry<'_>) -> Reply<'a> {
        let first = format!("Listing {}", e.name);
        Reply::block(code::FILE_ACTION_OK, &first, vec![facts_line(e)], "End")
    }

    /// `STAT`: the session's state.
    pub fn ftp_status(lines: Vec<String>) -> Reply<'a> {
        Reply::block(STATUS, "p2pshare status:", lines, "End of status")
    }

    /// `STAT <path>`: a listing on the control connection.
    pub fn ftp_stat_listing(lines: Vec<String>) -> Reply<'a> {
        Reply::block(TABLE, "Status of the path:", lines, "End of status")
    }

    /// ABOR with no transfer running: transfers end before the next
    /// command is read.
    pub fn ftp_nothing_to_abort() -> Reply<'a> {
        Reply::line(COMPLETE, "no transfer to abort")
    }

    pub fn ftp_bad_sequence(text: &'static str) -> Reply<'a> {
        Reply::line(code::BAD_SEQUENCE, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn bytes(r: Reply<'_>) -> String {
        let mut out = Vec::new();
        r.write_to(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn times_and_paths() {
        assert_eq!(ftp_time(t(1795773600)), "20261127100000");
        assert_eq!(quoted_path("/say \"hi\""), "\"/say \"\"hi\"\"\"");
        assert!(listable("a b\t😀\"q\""));
        assert!(!listable("two\nlines") && !listable("cr\r"));
    }

    #[test]
    fn list_lines_read_like_ls() {
        let file = Entry {
            name: "a b.txt",
            dir: false,
            size: 5,
            mtime: t(1795773600),
        };
        assert_eq!(
            list_line(&file, t(1795773600 + 86_400)),
            "-rw-r--r-- 1 ftp ftp            5 Nov 27 10:00 a b.txt"
        );
        assert_eq!(
            list_line(&file, t(1795773600 + 400 * 86_400)),
            "-rw-r--r-- 1 ftp ftp            5 Nov 27  2026 a b.txt"
        );
        let dir = Entry {
            name: "docs",
            dir: true,
            size: 0,
            mtime: t(0),
        };
        assert!(list_line(&dir, t(1795773600)).starts_with("drwxr-xr-x 2 ftp ftp"));
        assert_eq!(
            facts_line(&file),
            "type=file;size=5;modify=20261127100000; a b.txt"
        );
        assert_eq!(facts_line(&dir), "type=dir;modify=19700101000000; docs");
    }

    #[test]
    fn replies_are_byte_exact() {
        let ip = Ipv4Addr::new(127, 0, 0, 1);
        assert_eq!(
            bytes(Reply::ftp_passive(ip, 41165)),
            "227 Entering Passive Mode (127,0,0,1,160,205)\n"
        );
        assert_eq!(
            bytes(Reply::ftp_extended_passive(41165)),
            "229 Entering Extended Passive Mode (|||41165|)\n"
        );
        assert_eq!(
            bytes(Reply::ftp_features()),
            "211-Features:\n EPSV\n HASH MD5*\n MDTM\n MLST size*;modify*;type*;\n \
             REST STREAM\n SIZE\n TVFS\n UTF8\n211 End\n"
        );
        let md5 = Md5::of(b"hello");
        assert_eq!(
            bytes(Reply::ftp_hash("a b.txt", 5, md5)),
            "213 MD5 0-5 5d41402abc4b2a76b9719d911017c592 a b.txt\n"
        );
        assert_eq!(
            bytes(Reply::ftp_xmd5(md5)),
            "250 5d41402abc4b2a76b9719d911017c592\n"
        );
        assert_eq!(bytes(Reply::ftp_no_tls()).get(..4), Some("534 "));
        assert_eq!(bytes(Reply::ftp_no_active_mode()).get(..4), Some("502 "));
        assert_eq!(
            bytes(Reply::ftp_pwd("/")),
            "257 \"/\" is the current folder\n"
        );
        assert_eq!(
            bytes(Reply::ftp_mdtm(t(1795773600))),
            "213 20261127100000\n"
        );
        let file = Entry {
            name: "/docs/a.txt",
            dir: false,
            size: 5,
            mtime: t(1795773600),
        };
        assert_eq!(
            bytes(Reply::ftp_mlst(&file)),
            "250-Listing /docs/a.txt\n type=file;size=5;modify=20261127100000; /docs/a.txt\n250 End\n"
        );
        assert_eq!(
            bytes(Reply::ftp_stored("n", 5, md5)),
            "226 stored n 5 bytes md5=5d41402abc4b2a76b9719d911017c592\n"
        );
    }
}
