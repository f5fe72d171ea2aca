//! The FTP dialect over raw sockets, as an FTP client speaks it: login,
//! passive data connections, every verb, the name rules (traversal in
//! any spelling is 550), data connections from another address, active
//! mode and TLS refused, and odd names in listings and downloads.

use crate::support::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use p2pshare::server::Config;

/// An FTP control connection read line by line, CR LF checked.
struct Ftp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    addr: SocketAddr,
    /// True once replies must end with CR LF (after the first FTP verb).
    crlf: bool,
}

impl Ftp {
    fn open(addr: SocketAddr) -> (Ftp, String) {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut f = Ftp {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
            addr,
            crlf: false,
        };
        // The greeting ends with CR LF, whatever follows.
        f.crlf = true;
        let greeting = f.line();
        f.crlf = false;
        assert!(greeting.starts_with("220 p2pshare "), "{greeting:?}");
        (f, greeting)
    }

    /// One reply line, without its line end (which must be the session's).
    fn line(&mut self) -> String {
        let mut line = String::new();
        assert!(self.reader.read_line(&mut line).unwrap() > 0, "closed");
        let line = line.strip_suffix('\n').expect("a whole line").to_string();
        match line.strip_suffix('\r') {
            Some(l) if self.crlf => l.to_string(),
            _ if self.crlf => panic!("LF without CR: {line:?}"),
            Some(_) => panic!("CR LF before any FTP verb: {line:?}"),
            None => line,
        }
    }

    /// A whole reply: its code and its lines (RFC 959 multi-line form).
    fn reply(&mut self) -> (u16, Vec<String>) {
        let first = self.line();
        let code: u16 = first[..3].parse().expect("a reply code");
        let mut lines = vec![first.clone()];
        if first.as_bytes().get(3) == Some(&b'-') {
            loop {
                let l = self.line();
                lines.push(l.clone());
                if l.len() >= 4 && l.starts_with(&first[..3]) && l.as_bytes()[3] == b' ' {
                    break;
                }
            }
        }
        (code, lines)
    }

    fn send(&mut self, line: &str) {
        let verb = line.split(' ').next().unwrap().to_ascii_uppercase();
        let native = [
            "NOOP", "HELP", "QUIT", "INDEXGET", "FILEHASH", "HISTORY", "AUTH",
        ];
        if !native.contains(&verb.as_str()) || line.eq_ignore_ascii_case("AUTH TLS") {
            self.crlf = true;
        }
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
    }

    fn cmd(&mut self, line: &str) -> (u16, Vec<String>) {
        self.send(line);
        self.reply()
    }

    /// Sends `line` and expects `code`; returns the last line.
    fn expect(&mut self, line: &str, code: u16) -> String {
        let (got, lines) = self.cmd(line);
        assert_eq!(got, code, "{line:?}: {lines:?}");
        lines.last().unwrap().clone()
    }

    fn login(&mut self) {
        self.expect("USER anonymous", 230);
    }

    /// EPSV, then a connection to its port.
    fn passive(&mut self) -> TcpStream {
        let text = self.expect("EPSV", 229);
        let port: u16 = text
            .split("|||")
            .nth(1)
            .and_then(|r| r.strip_suffix("|)"))
            .unwrap()
            .parse()
            .unwrap();
        TcpStream::connect((self.addr.ip(), port)).unwrap()
    }

    /// A transfer command over a new passive connection: the 150, all the
    /// bytes, and the final reply.
    fn transfer(&mut self, line: &str) -> (Vec<u8>, u16, String) {
        let mut data = self.passive();
        let text = self.expect(line, 150);
        assert!(text.starts_with("150 "), "{text}");
        let mut bytes = Vec::new();
        data.read_to_end(&mut bytes).unwrap();
        let (code, lines) = self.reply();
        (bytes, code, lines.last().unwrap().clone())
    }

    fn text_of(&mut self, line: &str) -> String {
        let (bytes, code, last) = self.transfer(line);
        assert_eq!(code, 226, "{line}: {last}");
        String::from_utf8(bytes).unwrap()
    }
}

/// An anonymous session on `server`.
fn logged_in(server: &p2pshare::server::RunningServer) -> Ftp {
    let (mut f, _) = Ftp::open(server.addr());
    f.login();
    f
}

/// A share with a file, a folder, and a file two folders down.
fn share() -> TempDir {
    let dir = TempDir::new("ftp");
    dir.write("a.txt", "hello");
    dir.write("docs/readme.txt", "read me\n");
    dir.write("docs/old/minutes.txt", "minutes\n");
    dir.write(".hidden.txt", "secret");
    dir
}

fn a_session_logs_in_and_answers_every_session_verb() {
    let dir = share();
    let server = start(dir.path());
    let (mut f, greeting) = Ftp::open(server.addr());
    assert!(greeting.ends_with("HELP lists commands"));
    // Native commands before FTP: LF line ends.
    assert_eq!(f.cmd("NOOP").0, 200);
    f.expect("USER anonymous", 230);
    f.expect("PASS guest@", 230);
    assert_eq!(f.expect("SYST", 215), "215 UNIX Type: L8");
    let (code, feat) = f.cmd("FEAT");
    assert_eq!(code, 211);
    assert_eq!(
        feat,
        [
            "211-Features:",
            " EPSV",
            " HASH MD5*",
            " MDTM",
            " MLST size*;modify*;type*;",
            " REST STREAM",
            " SIZE",
            " TVFS",
            " UTF8",
            "211 End"
        ]
    );
    f.expect("OPTS UTF8 ON", 200);
    f.expect("OPTS MLST size;modify;type;", 200);
    f.expect("OPTS HASH MD5", 200);
    f.expect("OPTS FROB", 504);
    assert_eq!(f.expect("PWD", 257), "257 \"/\" is the current folder");
    assert_eq!(f.expect("XPWD", 257), "257 \"/\" is the current folder");
    f.expect("TYPE A", 200);
    f.expect("TYPE I", 200);
    f.expect("TYPE E", 504);
    f.expect("MODE S", 200);
    f.expect("MODE B", 504);
    f.expect("STRU F", 200);
    f.expect("STRU R", 504);
    f.expect("ABOR", 226);
    let (code, stat) = f.cmd("STAT");
    assert_eq!(code, 211);
    assert!(stat.iter().any(|l| l == " current folder /"), "{stat:?}");
    let (code, help) = f.cmd("HELP");
    assert_eq!(code, 214);
    assert!(help.iter().any(|l| l.contains("RETR <file>")), "{help:?}");
    assert!(help.iter().any(|l| l.contains("IndexGet longlist")));
    f.expect("HELP RETR", 214);
    // Bad FTP lines get their 5xx and the session goes on.
    f.expect("RETR", 501);
    f.expect("REST x", 501);
    f.expect("SITE CHMOD 777 a.txt", 500);
    // Native commands keep working, now with CR LF.
    let (code, table) = f.cmd("IndexGet longlist");
    assert_eq!(code, 213);
    assert!(table.iter().any(|l| l.starts_with("213-a.txt\t5\t")));
    f.expect("NOOP", 200);
    f.expect("QUIT", 221);
}

fn folders_are_virtual_and_stay_inside_the_share() {
    let dir = share();
    let server = start(dir.path());
    let mut f = logged_in(&server);
    assert_eq!(f.expect("CWD docs", 250), "250 now in \"/docs\"");
    assert_eq!(f.expect("PWD", 257), "257 \"/docs\" is the current folder");
    f.expect("CWD old", 250);
    assert_eq!(f.expect("SIZE minutes.txt", 213), "213 8");
    f.expect("CDUP", 250);
    assert_eq!(f.expect("PWD", 257), "257 \"/docs\" is the current folder");
    f.expect("SIZE /a.txt", 213);
    f.expect("CWD /", 250);
    f.expect("CDUP", 250);
    assert_eq!(f.expect("PWD", 257), "257 \"/\" is the current folder");
    f.expect("CWD nowhere", 550);
    f.expect("CWD a.txt", 550);
    f.expect("CWD .hidden", 550);
}

fn traversal_in_any_spelling_is_550() {
    let dir = share();
    let outside = TempDir::new("ftp-outside");
    outside.write("secret.txt", "TOPSECRET 9");
    std::os::unix::fs::symlink(outside.path(), dir.path().join("out")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        dir.path().join("link.txt"),
    )
    .unwrap();
    let server = start(dir.path());
    let mut f = logged_in(&server);
    f.expect("CWD docs", 250);
    let outside_name = outside.path().join("secret.txt");
    let abs = outside_name.to_str().unwrap();
    for path in [
        "..",
        "../..",
        "/..",
        "../a.txt",
        "old/../../a.txt",
        "/../../etc/passwd",
        "..\\..\\etc\\passwd",
        "%2e%2e/a.txt",
        ".../a.txt",
        "/.hidden.txt",
        "/.p2pshare/history.tsv",
        "/out/secret.txt",
        "/link.txt",
        abs,
    ] {
        for verb in ["SIZE", "MDTM", "HASH", "XMD5", "RETR", "MLST"] {
            let (code, lines) = f.cmd(&format!("{verb} {path}"));
            assert_eq!(code, 550, "{verb} {path}: {lines:?}");
            assert!(!lines.concat().contains("TOPSECRET"), "{lines:?}");
        }
        f.expect(&format!("CWD {path}"), 550);
        f.expect(&format!("LIST {path}"), 550);
        f.expect(&format!("MLSD {path}"), 550);
    }
    // Still in /docs, and a RETR without PASV is 425.
    assert_eq!(f.expect("PWD", 257), "257 \"/docs\" is the current folder");
    f.expect("RETR readme.txt", 425);
}

fn files_are_sized_timed_hashed_and_fetched_from_an_offset() {
    let dir = share();
    let big = pseudo_random(3_000_001, 7);
    dir.write("big.bin", &big);
    set_mtime(&dir.path().join("a.txt"), time("2026-11-27T10:00:00Z"));
    let server = start(dir.path());
    let mut f = logged_in(&server);
    assert_eq!(f.expect("SIZE big.bin", 213), "213 3000001");
    assert_eq!(f.expect("MDTM a.txt", 213), "213 20261127100000");
    let md5 = md5_hex(b"hello");
    assert_eq!(
        f.expect("HASH a.txt", 213),
        format!("213 MD5 0-5 {md5} a.txt")
    );
    assert_eq!(f.expect("XMD5 a.txt", 250), format!("250 {md5}"));
    let (bytes, code, last) = f.transfer("RETR big.bin");
    assert_eq!(code, 226, "{last}");
    assert!(bytes == big);
    f.expect("REST 2999000", 350);
    let (bytes, code, _) = f.transfer("RETR big.bin");
    assert_eq!(code, 226);
    assert!(bytes[..] == big[2_999_000..]);
    // The offset is for one RETR only.
    let (bytes, _, last) = f.transfer("RETR a.txt");
    assert_eq!(bytes, b"hello");
    assert_eq!(last, format!("226 a.txt 5 bytes md5={md5}"));
    // PASV works as EPSV does, on IPv4.
    let text = f.expect("PASV", 227);
    let nums: Vec<u16> = text
        .rsplit_once('(')
        .unwrap()
        .1
        .trim_end_matches(')')
        .split(',')
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(nums[..4], [127, 0, 0, 1]);
    let mut data = TcpStream::connect(("127.0.0.1", nums[4] * 256 + nums[5])).unwrap();
    f.expect("RETR docs/readme.txt", 150);
    let mut got = Vec::new();
    data.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"read me\n");
    assert_eq!(f.reply().0, 226);
    f.expect("REST 6", 350);
    let mut _data = f.passive();
    f.expect("RETR a.txt", 501);
    f.expect("SIZE nope.txt", 550);
}

fn listings_carry_odd_names_and_retr_fetches_them() {
    let dir = TempDir::new("ftp-names");
    let names = [
        "a b.txt",
        "tab\there.txt",
        "emoji 😀.txt",
        "say \"hi\".txt",
        "'single'.txt",
        "back\\slash.txt",
        "[br]*?.txt",
        "sub dir/inner file.txt",
    ];
    for (i, n) in names.iter().enumerate() {
        dir.write(n, format!("content {i}"));
    }
    dir.write("two\nlines.txt", "lf");
    let server = start(dir.path());
    let mut f = logged_in(&server);
    let list = f.text_of("LIST");
    let mlsd = f.text_of("MLSD");
    let nlst = f.text_of("NLST");
    assert!(list.ends_with("\r\n") && mlsd.ends_with("\r\n"));
    for n in names.iter().filter(|n| !n.contains('/')) {
        assert!(
            list.lines().any(|l| l.ends_with(&format!(" {n}"))),
            "{n}: {list}"
        );
        assert!(
            mlsd.lines().any(
                |l| l.starts_with("type=file;size=9;modify=") && l.ends_with(&format!("; {n}"))
            ),
            "{n}: {mlsd}"
        );
        assert!(nlst.lines().any(|l| l == *n), "{n}: {nlst}");
    }
    assert!(mlsd
        .lines()
        .any(|l| l.starts_with("type=dir;") && l.ends_with("; sub dir")));
    assert!(list
        .lines()
        .any(|l| l.starts_with('d') && l.ends_with(" sub dir")));
    // A name FTP cannot write on a line is left out, never split.
    assert!(!list.contains("lines.txt") && !mlsd.contains("lines.txt"));
    assert_eq!(list.lines().count(), names.len());
    for (i, n) in names.iter().enumerate() {
        let (bytes, code, last) = f.transfer(&format!("RETR {n}"));
        assert_eq!(code, 226, "{n}: {last}");
        assert_eq!(bytes, format!("content {i}").as_bytes(), "{n}");
    }
    f.expect("CWD sub dir", 250);
    assert_eq!(f.text_of("NLST"), "inner file.txt\r\n");
    let (code, mlst) = f.cmd("MLST inner file.txt");
    assert_eq!(code, 250);
    assert!(mlst[1].ends_with("; /sub dir/inner file.txt"), "{mlst:?}");
}

fn a_data_connection_from_another_address_gets_nothing() {
    let dir = share();
    let server = start(dir.path());
    let mut f = logged_in(&server);
    let text = f.expect("EPSV", 229);
    let port = text.split("|||").nth(1).unwrap().trim_end_matches("|)");
    // python3 binds the source address, which std cannot.
    let script = format!(
        "import socket\n\
         s = socket.socket()\n\
         s.bind(('127.0.0.2', 0))\n\
         s.settimeout(20)\n\
         s.connect(('127.0.0.1', {port}))\n\
         got = b''\n\
         while True:\n\
         \x20   b = s.recv(65536)\n\
         \x20   if not b: break\n\
         \x20   got += b\n\
         print('connected, got', len(got))\n"
    );
    let foreign = std::thread::spawn(move || {
        Command::new("python3")
            .args(["-c", &script])
            .output()
            .expect("python3 (installed by .ci/run)")
    });
    f.expect("RETR a.txt", 150);
    let out = foreign.join().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "connected, got 0",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The listener still waits for the control peer's connection.
    let mut data = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
    let mut got = Vec::new();
    data.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hello");
    assert_eq!(f.reply().0, 226);
}

fn active_mode_is_refused_to_any_address() {
    let dir = share();
    let server = start(dir.path());
    let mut f = logged_in(&server);
    for line in [
        "PORT 127,0,0,3,39,16",
        "PORT 10,0,0,1,0,21",
        "PORT 127,0,0,1,39,16",
        "EPRT |1|127.0.0.3|10000|",
        "EPRT |2|::1|10000|",
    ] {
        let text = f.expect(line, 502);
        assert!(text.contains("PASV or EPSV"), "{text}");
    }
    // Nothing was opened: a RETR has no data connection to use.
    f.expect("RETR a.txt", 425);
    assert_eq!(f.text_of("NLST"), "a.txt\r\ndocs\r\n");
}

fn auth_tls_is_534_and_costs_no_try_then_the_ftp_password_logs_in() {
    let dir = share();
    let server = start_with(Config {
        secret: Some("s3cret".into()),
        ftp_password: Some("ftp pass".into()),
        ..config(dir.path())
    });
    let (mut f, _) = Ftp::open(server.addr());
    let began = Instant::now();
    for _ in 0..5 {
        f.expect("AUTH TLS", 534);
        f.expect("AUTH SSL", 534);
    }
    assert!(began.elapsed() < Duration::from_secs(1));
    f.expect("LIST", 530);
    f.expect("SIZE a.txt", 530);
    f.expect("USER anonymous", 331);
    f.expect("PASS wrong", 530);
    f.expect("USER anonymous", 331);
    f.expect("PASS ftp pass", 230);
    assert_eq!(f.text_of("NLST"), "a.txt\r\ndocs\r\n");
    // The history has the FTP requests, the password masked.
    let (code, rows) = f.cmd("History 30");
    assert_eq!(code, 213);
    let rows = rows.join("\n");
    for want in [
        "\tUSER anonymous\t331",
        "\tPASS ***\t530",
        "\tPASS ***\t230",
        "\tNLST\t226",
        "\tAUTH ***\t534",
    ] {
        assert!(rows.contains(want), "{want}: {rows}");
    }
    assert!(
        !rows.contains("s3cret") && !rows.contains("wrong") && !rows.contains("ftp pass"),
        "{rows}"
    );
}

/// FTP sends its password in plain text: the secret is never one. Given
/// as PASS, it is a wrong password like any other, counted as a wrong
/// try; the third closes the session.
fn the_secret_is_never_an_ftp_password() {
    let dir = share();
    let server = start_with(Config {
        secret: Some("s3cret".into()),
        ftp_password: Some("for-ftp".into()),
        ..config(dir.path())
    });
    let (mut f, _) = Ftp::open(server.addr());
    f.expect("USER x", 331);
    let text = f.expect("PASS s3cret", 530);
    assert!(text.contains("1 of 3"), "{text}");
    f.expect("LIST", 530);
    f.expect("PASS s3cret", 530);
    f.expect("PASS s3cret", 530);
    let mut rest = String::new();
    f.reader.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "");
    // The FTP password logs in, and so does the secret natively.
    let (mut f, _) = Ftp::open(server.addr());
    f.expect("USER x", 331);
    f.expect("PASS for-ftp", 230);
    f.expect("NOOP", 200);
    let mut c = Conn::open(server.addr());
    assert_eq!(c.cmd("AUTH s3cret").code, 230);
    // `--auth proof-only` is about the secret: the FTP password, a login
    // of its own, still logs in, and the secret still never does.
    let server = start_with(Config {
        secret: Some("s3cret".into()),
        ftp_password: Some("for-ftp".into()),
        auth: p2pshare::server::AuthMode::ProofOnly,
        ..config(dir.path())
    });
    let (mut f, _) = Ftp::open(server.addr());
    f.expect("USER x", 331);
    f.expect("PASS s3cret", 530);
    f.expect("PASS for-ftp", 230);
    f.expect("NOOP", 200);
}

/// A peer with a secret and no FTP password refuses every FTP login,
/// saying why and what to do; the refusals are no wrong tries: the
/// session stays open, and the address is not slowed down.
fn without_an_ftp_password_a_peer_with_a_secret_refuses_ftp_logins() {
    let dir = share();
    let server = start_with(Config {
        secret: Some("s3cret".into()),
        auth_delay: Duration::from_secs(30),
        ..config(dir.path())
    });
    let (mut f, _) = Ftp::open(server.addr());
    let began = Instant::now();
    for pass in ["PASS s3cret", "PASS anything", "PASS", "PASS s3cret"].repeat(2) {
        f.expect("USER anonymous", 331);
        let text = f.expect(pass, 530);
        assert!(
            text.contains("FTP logins are off") && text.contains("--ftp-password"),
            "{text}"
        );
    }
    assert!(began.elapsed() < Duration::from_secs(20));
    f.expect("NLST", 530);
    // The secret still works natively, at once.
    let mut c = Conn::open(server.addr());
    assert_eq!(c.cmd("AUTH s3cret").code, 230);
    let rows = c.cmd("History 30").text();
    assert!(rows.contains("\tPASS ***\t530"), "{rows}");
    assert!(
        !rows.contains("s3cret") && !rows.contains("anything"),
        "{rows}"
    );
}

fn three_wrong_passwords_close_the_session() {
    let dir = share();
    let server = start_with(Config {
        secret: Some("s3cret".into()),
        ftp_password: Some("ftp".into()),
        ..config(dir.path())
    });
    let (mut f, _) = Ftp::open(server.addr());
    f.expect("USER x", 331);
    f.expect("PASS a", 530);
    f.expect("PASS b", 530);
    f.expect("PASS c", 530);
    let mut rest = String::new();
    f.reader.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "");
}

fn stor_needs_allow_upload() {
    let dir = share();
    let server = start(dir.path());
    let mut f = logged_in(&server);
    let _data = f.passive();
    let text = f.expect("STOR new.txt", 550);
    assert!(text.contains("uploads are disabled"), "{text}");
    assert!(!dir.path().join("new.txt").exists());
}

/// STORs `content` as `name` and returns the final reply's code and text.
fn stor(f: &mut Ftp, name: &str, content: &[u8]) -> (u16, String) {
    let mut data = f.passive();
    f.expect(&format!("STOR {name}"), 150);
    data.write_all(content).unwrap();
    drop(data);
    let (code, lines) = f.reply();
    (code, lines.last().unwrap().clone())
}

fn stor_stores_through_a_temporary_file_and_never_overwrites() {
    let dir = share();
    let server = start_with(Config {
        allow_upload: true,
        ..config(dir.path())
    });
    let mut f = logged_in(&server);
    let content = pseudo_random(1_000_000, 3);
    let (code, text) = stor(&mut f, "up load 😀.bin", &content);
    assert_eq!(code, 226, "{text}");
    assert_eq!(
        text,
        format!(
            "226 stored up load 😀.bin 1000000 bytes md5={}",
            md5_hex(&content)
        )
    );
    assert!(std::fs::read(dir.path().join("up load 😀.bin")).unwrap() == content);
    f.expect("CWD docs", 250);
    let (code, text) = stor(&mut f, "new/deep.txt", b"deep");
    assert_eq!(code, 226, "{text}");
    assert_eq!(
        std::fs::read(dir.path().join("docs/new/deep.txt")).unwrap(),
        b"deep"
    );
    // Same content: fine. Other content: 553, the file untouched.
    let (code, text) = stor(&mut f, "/a.txt", b"hello");
    assert_eq!(code, 226, "{text}");
    assert!(text.contains("same content"), "{text}");
    let (code, text) = stor(&mut f, "/a.txt", b"other");
    assert_eq!(code, 553, "{text}");
    assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"hello");
    // Names the rules refuse, before any byte.
    for bad in ["../x.txt", "/.hidden2", "/.p2pshare/x", "old/../../x"] {
        let _data = f.passive();
        f.expect(&format!("STOR {bad}"), 553);
    }
    // No temporary file is left anywhere.
    let left: Vec<String> = entries_below(dir.path())
        .into_iter()
        .filter(|e| e.contains("p2pshare-up"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// MKD by the rules of an upload's name: never through a link leading
/// out, never a hidden or ignored name, a `"` doubled in the 257; the
/// folder made is entered, listed and described at once.
fn mkd_stays_inside_the_share_and_its_folder_is_there_at_once() {
    let dir = share();
    let outside = TempDir::new("ftp-mkd-outside");
    std::os::unix::fs::symlink(outside.path(), dir.path().join("out")).unwrap();
    let server = start_with(Config {
        allow_upload: true,
        ..config(dir.path())
    });
    let mut f = logged_in(&server);
    for bad in [
        "out/x",
        "out/x/y",
        ".hidden",
        "docs/.h",
        "/.p2pshare/x",
        "../x",
        "a/../../x",
    ] {
        f.expect(&format!("MKD {bad}"), 553);
    }
    assert_eq!(entries_below(outside.path()), Vec::<String>::new());
    f.expect("MKD out", 550);
    f.expect("MKD docs", 550);
    f.expect("MKD", 501);
    let made = f.expect("XMKD say \"hi\"/x y", 257);
    assert_eq!(made, "257 \"/say \"\"hi\"\"/x y\" created");
    assert!(dir.path().join("say \"hi\"/x y").is_dir());
    f.expect("CWD say \"hi\"/x y", 250);
    assert_eq!(f.text_of("LIST"), "");
    let (code, lines) = f.cmd("MLST");
    assert_eq!(code, 250, "{lines:?}");
    assert!(lines[1].starts_with(" type=dir;"), "{lines:?}");
    f.expect("RMD .", 550);
    f.expect("XRMD /say \"hi\"", 550);
    assert!(dir.path().join("say \"hi\"/x y").is_dir());
}

/// An upload whose client goes away mid-file (control and data closed).
fn broken_off(addr: SocketAddr, name: &str, content: &[u8]) {
    let mut g = logged_in_at(addr);
    let mut data = g.passive();
    g.expect(&format!("STOR {name}"), 150);
    data.write_all(content).unwrap();
    drop(g);
    drop(data);
}

fn logged_in_at(addr: SocketAddr) -> Ftp {
    let (mut f, _) = Ftp::open(addr);
    f.login();
    f
}

/// Uploads broken off keep what arrived, at most 16 per share: the 17th
/// removes the oldest. None is listed or served; SIZE finds each.
fn partial_uploads_are_kept_within_their_bound() {
    let dir = share();
    let server = start_with(Config {
        allow_upload: true,
        ..config(dir.path())
    });
    let partial = |i: usize| dir.path().join(format!("up/.p{i}.bin.p2pshare-partial"));
    for i in 0..17 {
        broken_off(
            server.addr(),
            &format!("up/p{i}.bin"),
            &vec![b'x'; 1000 + i],
        );
        assert!(wait_until(Duration::from_secs(10), || partial(i).exists()));
    }
    let kept: Vec<usize> = (0..17).filter(|&i| partial(i).exists()).collect();
    assert_eq!(kept, (1..17).collect::<Vec<_>>());
    let mut f = logged_in(&server);
    assert_eq!(f.expect("SIZE up/p16.bin", 213), "213 1016");
    f.expect("SIZE up/p0.bin", 550);
    assert_eq!(f.text_of("NLST up"), "");
    let _data = f.passive();
    f.expect("RETR up/p16.bin", 550);
    // REST past what arrived: 554, and the partial upload stays.
    f.expect("REST 2000", 350);
    let _data = f.passive();
    f.expect("STOR up/p16.bin", 554);
    assert!(partial(16).exists());
}

fn a_refused_first_ftp_line_is_answered_with_cr_lf_too() {
    let dir = share();
    let server = start(dir.path());
    let (mut f, _) = Ftp::open(server.addr());
    // The test client expects CR LF from the first FTP verb on.
    f.expect("SIZE", 501);
    f.expect("NOOP", 200);
}

fn on_ipv6_epsv_works_and_pasv_says_to_use_it() {
    let dir = share();
    let server = start_with(Config {
        bind: "::1".parse().unwrap(),
        ..config(dir.path())
    });
    assert!(server.addr().is_ipv6());
    let mut f = logged_in(&server);
    f.expect("PASV", 522);
    f.expect("EPSV 1", 522);
    assert_eq!(f.text_of("RETR a.txt"), "hello");
    let (bytes, code, _) = f.transfer("RETR docs/readme.txt");
    assert_eq!((bytes.as_slice(), code), (&b"read me\n"[..], 226));
}

fn passive_ports_come_from_data_ports_within_the_address_share() {
    let dir = share();
    // One free port: one address may hold it, for one transfer at a time.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = start_with(Config {
        data_ports: Some((port, port)),
        ..config(dir.path())
    });
    let (mut a, _) = Ftp::open(server.addr());
    let (mut b, _) = Ftp::open(server.addr());
    a.login();
    b.login();
    let text = a.expect("EPSV", 229);
    assert!(text.contains(&format!("|||{port}|")), "{text}");
    let text = b.expect("EPSV", 425);
    assert!(text.contains("holds 1 of the 1"), "{text}");
    // A's transfer gives the port back; a new PASV replaces the old one.
    let mut data = TcpStream::connect(("127.0.0.1", port)).unwrap();
    a.expect("RETR a.txt", 150);
    let mut got = Vec::new();
    data.read_to_end(&mut got).unwrap();
    assert_eq!(a.reply().0, 226);
    assert_eq!(b.text_of("RETR a.txt"), "hello");
    b.expect("PASV", 227);
    b.expect("PASV", 227);
}

fn stat_mlst_and_listings_of_paths() {
    let dir = share();
    let server = start(dir.path());
    let mut f = logged_in(&server);
    let (code, stat) = f.cmd("STAT docs");
    assert_eq!(code, 213, "{stat:?}");
    assert_eq!(stat.len(), 4, "{stat:?}");
    assert!(stat[1].starts_with(" drwxr-xr-x") && stat[1].ends_with(" old"));
    assert!(stat[2].starts_with(" -rw-r--r--") && stat[2].ends_with(" readme.txt"));
    f.expect("STAT nowhere", 550);
    let (code, mlst) = f.cmd("MLST");
    assert_eq!(code, 250);
    assert!(mlst[1].starts_with(" type=dir;modify=") && mlst[1].ends_with("; /"));
    let (_, mlst) = f.cmd("MLST /docs/old");
    assert!(mlst[1].ends_with("; /docs/old"), "{mlst:?}");
    let list = f.text_of("LIST docs/readme.txt");
    assert!(
        list.starts_with("-rw-r--r-- 1 ftp ftp            8 ") && list.ends_with(" readme.txt\r\n")
    );
    assert_eq!(f.text_of("NLST docs/old"), "minutes.txt\r\n");
    assert_eq!(f.text_of("LIST -la docs/old").lines().count(), 1);
    // MLSD lists folders only.
    let _data = f.passive();
    f.expect("MLSD a.txt", 550);
    // After EPSV ALL, PASV is refused.
    f.expect("EPSV ALL", 200);
    f.expect("PASV", 503);
    assert_eq!(f.text_of("RETR a.txt"), "hello");
}

fn native_transfers_and_ftp_ones_take_turns_in_one_session() {
    let dir = share();
    let server = start(dir.path());
    let mut f = logged_in(&server);
    f.expect("EPSV", 229);
    // A native download closes the passive listener and opens the data
    // channel; the next EPSV closes that again.
    f.send("FileDownload a.txt");
    let (code, lines) = f.reply();
    assert_eq!(code, 150, "{lines:?}");
    let data = lines[1].strip_prefix("150 DATA tcp port=").unwrap();
    let (port, token) = data.split_once(" token=").unwrap();
    let mut d = data_connect(server.addr(), port.parse().unwrap(), token);
    assert_eq!(read_exact_n(&mut d, 5), b"hello");
    assert_eq!(f.reply().0, 226);
    f.expect("RETR a.txt", 425);
    assert_eq!(f.text_of("RETR docs/readme.txt"), "read me\n");
    // The native channel is gone with the EPSV: its port takes nothing.
    let mut old = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap()));
    if let Ok(s) = old.as_mut() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 1];
        assert!(matches!(s.read(&mut b), Ok(0) | Err(_)));
    }
}

fn with_data_idle_an_unused_passive_listener_closes() {
    let dir = share();
    let server = start_with(Config {
        data_idle: Some(Duration::from_millis(200)),
        ..config(dir.path())
    });
    let mut f = logged_in(&server);
    let text = f.expect("EPSV", 229);
    let port: u16 = text
        .split("|||")
        .nth(1)
        .unwrap()
        .trim_end_matches("|)")
        .parse()
        .unwrap();
    let closed = wait_until(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_err()
    });
    assert!(closed, "the passive port still listens");
    f.expect("RETR a.txt", 425);
    // A new one works as before.
    assert_eq!(f.text_of("RETR a.txt"), "hello");
}

cases![
    a_session_logs_in_and_answers_every_session_verb,
    folders_are_virtual_and_stay_inside_the_share,
    traversal_in_any_spelling_is_550,
    files_are_sized_timed_hashed_and_fetched_from_an_offset,
    listings_carry_odd_names_and_retr_fetches_them,
    a_data_connection_from_another_address_gets_nothing,
    active_mode_is_refused_to_any_address,
    auth_tls_is_534_and_costs_no_try_then_the_ftp_password_logs_in,
    the_secret_is_never_an_ftp_password,
    without_an_ftp_password_a_peer_with_a_secret_refuses_ftp_logins,
    three_wrong_passwords_close_the_session,
    stor_needs_allow_upload,
    stor_stores_through_a_temporary_file_and_never_overwrites,
    mkd_stays_inside_the_share_and_its_folder_is_there_at_once,
    partial_uploads_are_kept_within_their_bound,
    a_refused_first_ftp_line_is_answered_with_cr_lf_too,
    on_ipv6_epsv_works_and_pasv_says_to_use_it,
    passive_ports_come_from_data_ports_within_the_address_share,
    stat_mlst_and_listings_of_paths,
    native_transfers_and_ftp_ones_take_turns_in_one_session,
    with_data_idle_an_unused_passive_listener_closes,
];
