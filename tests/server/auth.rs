//! The shared secret (PROTOCOL.md section 5) against a real server: what is
//! answered before `AUTH`, the right and wrong secrets, three wrong tries
//! closing the connection, the secret kept out of every history, and the
//! client and server binaries taking it from `--secret` or
//! `P2PSHARE_SECRET`.

use crate::support::*;

use crate::process::*;

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use p2pshare::proof::{greeting_nonce, split_mac, Mac, Nonce, Proofs, SessionKey};
use p2pshare::server::{AuthMode, Config, RunningServer};

const SECRET: &str = "s3cret-Word";

fn serve(dir: &TempDir) -> RunningServer {
    start_with(Config {
        secret: Some(SECRET.into()),
        allow_upload: true,
        // Wrong tries past the third from one address wait: not long here.
        auth_delay: Duration::from_millis(1),
        ..config(dir.path())
    })
}

fn history_text(share: &Path) -> String {
    fs::read_to_string(share.join(".p2pshare/history.tsv")).unwrap_or_default()
}

fn before_auth_only_help_noop_auth_and_quit_are_answered() {
    let dir = TempDir::new("auth-gate");
    dir.write("a.txt", "a\n");
    let server = serve(&dir);
    let mut c = Conn::open(server.addr());
    assert!(
        c.greeting.ends_with("AUTH <secret> required"),
        "{}",
        c.greeting
    );
    assert_eq!(c.cmd("HELP").code, 214);
    assert_eq!(c.cmd("HELP FileDownload").code, 214);
    assert_eq!(c.cmd("NOOP").code, 200);
    for line in [
        "IndexGet longlist",
        "IndexGet shortlist 2020-01-01 2030-01-01",
        "IndexGet regex *",
        "FileHash verify a.txt",
        "FileHash checkall",
        "FileDownload a.txt",
        "FileDownload UDP a.txt",
        &format!("FileUpload b.txt 2 {}", md5_hex(b"b\n")),
        "History",
        "History 5",
    ] {
        let r = c.cmd(line);
        assert_eq!(
            r.lines,
            ["530 authentication required: send AUTH <secret> first"],
            "{line}"
        );
    }
    // Nothing was done for them: no upload, no data port.
    assert!(!dir.path().join("b.txt").exists());
    // A line that does not parse is answered as such, before anything else.
    assert_eq!(c.cmd("frobnicate").code, 500);
    assert_eq!(c.cmd("IndexGet").code, 501);
    assert_eq!(c.cmd("QUIT").code, 221);
    assert_eq!(c.read_to_close(), "");
}

fn the_right_secret_opens_everything() {
    let dir = TempDir::new("auth-ok");
    dir.write("a.txt", "a\n");
    let server = serve(&dir);
    let mut c = Conn::open(server.addr());
    let r = c.cmd("AUTH wrong");
    assert_eq!(r.lines, ["530 wrong secret (1 of 3 tries)"]);
    let r = c.cmd(&format!("AUTH {SECRET}"));
    assert_eq!(r.lines, ["230 authenticated"]);
    assert_eq!(c.cmd("IndexGet longlist").names(), ["a.txt"]);
    assert_eq!(c.cmd("FileHash verify a.txt").rows()[0][1], md5_hex(b"a\n"));
    let (_, bytes, done) = download(&mut c, server.addr(), "a.txt");
    assert_eq!((bytes.as_slice(), done.code), (&b"a\n"[..], 226));
    let up = upload_raw(&mut c, server.addr(), "up.txt", b"up\n", None);
    assert_eq!(up.code(), 226, "{up:?}");
    assert_eq!(c.cmd("History 3").code, 213);
    // Secrets are case-sensitive, compared whole.
    let mut d = Conn::open(server.addr());
    assert_eq!(d.cmd(&format!("AUTH {}", SECRET.to_uppercase())).code, 530);
    assert_eq!(d.cmd(&format!("AUTH {}", &SECRET[..5])).code, 530);
    assert_eq!(d.cmd("IndexGet longlist").code, 530);
    let mut e = Conn::open(server.addr());
    assert_eq!(e.cmd(&format!("AUTH {SECRET}x")).code, 530);
    assert_eq!(e.cmd(&format!("AUTH \"{SECRET} \"")).code, 530);
    assert_eq!(e.cmd(&format!("AUTH \"{SECRET}\"")).code, 230);
}

fn three_wrong_secrets_close_the_connection() {
    let dir = TempDir::new("auth-three");
    let server = serve(&dir);
    let mut c = Conn::open(server.addr());
    assert_eq!(c.cmd("AUTH one").lines, ["530 wrong secret (1 of 3 tries)"]);
    assert_eq!(c.cmd("NOOP").code, 200);
    assert_eq!(c.cmd("AUTH two").lines, ["530 wrong secret (2 of 3 tries)"]);
    assert_eq!(
        c.cmd("AUTH three").lines,
        ["530 wrong secret; closing the connection"]
    );
    assert_eq!(c.read_to_close(), "");

    // Two wrong, then the right one: in; the count starts again.
    let mut c = Conn::open(server.addr());
    assert_eq!(c.cmd("AUTH one").code, 530);
    assert_eq!(c.cmd("AUTH two").code, 530);
    assert_eq!(c.cmd(&format!("AUTH {SECRET}")).code, 230);
    // Wrong tries after that do not undo it, but three still close.
    assert_eq!(c.cmd("AUTH one").lines, ["530 wrong secret (1 of 3 tries)"]);
    assert_eq!(c.cmd("AUTH two").code, 530);
    assert_eq!(c.cmd("IndexGet longlist").code, 213);
    assert_eq!(c.cmd("AUTH three").code, 530);
    assert_eq!(c.read_to_close(), "");

    // Without a secret, AUTH with anything is a 230.
    let Served {
        dir: _open_dir,
        server: open,
    } = Share::new("auth-none").serve();
    let mut c = Conn::open(open.addr());
    assert!(
        c.greeting.ends_with("HELP lists commands"),
        "{}",
        c.greeting
    );
    assert_eq!(
        c.cmd("AUTH whatever").lines,
        ["230 no secret is needed on this peer"]
    );
}

fn the_secret_never_reaches_the_history() {
    let dir = TempDir::new("auth-history");
    dir.write("a.txt", "a\n");
    let server = serve(&dir);
    let mut c = Conn::open(server.addr());
    // Right, wrong, misquoted and mistyped: none of it may be written.
    assert_eq!(c.cmd(&format!("AUTH {SECRET}")).code, 230);
    assert_eq!(c.cmd("AUTH wrong-guess-1").code, 530);
    assert_eq!(c.cmd(&format!("auth \"{SECRET}")).code, 500);
    assert_eq!(c.cmd(&format!("AUTH {SECRET} extra")).code, 501);
    assert_eq!(c.cmd(&format!("Auth \"{SECRET}\"x")).code, 500);
    assert_eq!(c.cmd("AUTH").code, 501);
    let h = c.cmd("History 20");
    let text = h.text() + &history_text(dir.path());
    assert!(!text.contains(SECRET), "{text}");
    assert!(!text.contains("wrong-guess-1"), "{text}");
    let rows = h.rows();
    let auth_rows: Vec<_> = rows.iter().filter(|r| r[3].starts_with("AUTH")).collect();
    assert_eq!(auth_rows.len(), 6, "{rows:?}");
    assert!(auth_rows.iter().all(|r| r[3] == "AUTH ***"), "{rows:?}");
    assert_eq!(
        auth_rows.iter().map(|r| r[4].as_str()).collect::<Vec<_>>(),
        ["230", "530", "500", "501", "500", "501"]
    );
}

// ---- the binaries ----

fn the_client_authenticates_with_the_option_or_the_environment() {
    let dir = TempDir::new("auth-client");
    dir.write("a.txt", "a\n");
    let server = serve(&dir);
    let addr = server.addr();
    let local = TempDir::new("auth-client-local");

    let r = run(
        &client_args(
            addr,
            local.path(),
            &[
                "--secret",
                SECRET,
                "-c",
                "IndexGet longlist",
                "-c",
                "FileDownload a.txt",
            ],
        ),
        "",
    );
    assert_eq!(r.code(), Some(0), "{r}");
    assert_eq!(r.lines()[0], "name\tsize\ttimestamp\ttype", "{r}");
    assert!(r.lines()[1].starts_with("a.txt\t2\t"), "{r}");
    assert_eq!(fs::read(local.path().join("a.txt")).unwrap(), b"a\n");

    let env_local = TempDir::new("auth-client-env");
    let r = run_with_env(
        &client_args(addr, env_local.path(), &["-c", "FileHash checkall"]),
        &[("P2PSHARE_SECRET", SECRET)],
        "",
    );
    assert_eq!(r.code(), Some(0), "{r}");
    assert!(r.stdout.contains(&md5_hex(b"a\n")), "{r}");

    // Without the secret: every command is a 530, exit 1.
    let r = run(
        &client_args(
            addr,
            local.path(),
            &["-c", "IndexGet longlist", "-c", "NOOP"],
        ),
        "",
    );
    assert_eq!(r.code(), Some(1), "{r}");
    assert!(
        r.stderr
            .contains("530 authentication required: send AUTH <secret> first"),
        "{r}"
    );
    assert!(r.stdout.contains("ok"), "NOOP is answered: {r}");

    // A wrong secret: the client gives up at once. The peer was reached,
    // so this is a failure (1), not an unreachable peer (2).
    let r = run(
        &client_args(addr, local.path(), &["--secret", "nope", "-c", "NOOP"]),
        "",
    );
    assert_eq!(r.code(), Some(1), "{r}");
    assert!(r.stderr.contains("authentication failed: 530"), "{r}");

    // AUTH typed as a command works as well.
    let typed_local = TempDir::new("auth-client-typed");
    let r = run(
        &client_args(
            addr,
            typed_local.path(),
            &["-c", &format!("AUTH {SECRET}"), "-c", "IndexGet longlist"],
        ),
        "",
    );
    assert_eq!(r.code(), Some(0), "{r}");
    assert!(r.stdout.contains("a.txt\t2\t"), "{r}");

    // Neither the client's history nor the server's holds the secret.
    for share in [
        local.path(),
        env_local.path(),
        typed_local.path(),
        dir.path(),
    ] {
        let h = history_text(share);
        assert!(!h.is_empty(), "{}", share.display());
        assert!(!h.contains(SECRET), "{}: {h}", share.display());
    }
}

fn the_server_takes_its_secret_from_the_environment() {
    let dir = TempDir::new("auth-serve-env");
    dir.write("a.txt", "a\n");
    let share = dir.path().display().to_string();
    let server = Proc::spawn_program(
        bin(),
        &[
            "serve",
            "--share",
            &share,
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
        ],
        &[("P2PSHARE_SECRET", SECRET)],
    );
    let addr = server.serving_addr();
    let mut c = Conn::open(addr);
    assert!(
        c.greeting.ends_with("AUTH <secret> required"),
        "{}",
        c.greeting
    );
    assert_eq!(c.cmd("IndexGet longlist").code, 530);
    assert_eq!(c.cmd(&format!("AUTH {SECRET}")).code, 230);
    assert_eq!(c.cmd("IndexGet longlist").names(), ["a.txt"]);
    // The secret is not on the command line, so not in `ps` either.
    let cmdline = fs::read(format!("/proc/{}/cmdline", server.id())).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&cmdline).contains(SECRET));
}

fn no_spelling_of_auth_puts_the_secret_in_the_history() {
    let dir = TempDir::new("auth-spellings");
    let server = serve(&dir);
    let mut c = Conn::open(server.addr());
    let spellings: Vec<Vec<u8>> = [
        format!("AUTH\u{a0}{SECRET}"),
        format!("\u{feff}AUTH {SECRET}"),
        format!("\u{0}AUTH {SECRET}"),
        format!("AUTH{SECRET}"),
        format!("auth{SECRET}"),
        format!("\"AUTH\" {SECRET}"),
        format!("'AUTH' {SECRET}"),
        format!("  \t AUTH {SECRET}"),
        format!("\u{3000}AUTH {SECRET}"),
        format!("aUtH\u{2009}{SECRET}"),
        format!("A\u{200b}UTH {SECRET}"),
        format!("\u{ff21}\u{ff35}\u{ff34}\u{ff28} {SECRET}"),
        format!("AUTH {SECRET} \u{1b}[31m"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .chain([
        // Not UTF-8, before and after the word.
        [&b"\xff\xfeAUTH "[..], SECRET.as_bytes()].concat(),
        [&b"AUTH "[..], SECRET.as_bytes(), b" \xff"].concat(),
    ])
    .collect();
    for line in &spellings {
        c.send_raw(&[line.as_slice(), b"\n"].concat());
        // Some are refused, `"AUTH"` is an AUTH like any other.
        let r = c.read_reply();
        assert!(
            [230, 500, 501].contains(&r.code),
            "{:?}: {:?}",
            String::from_utf8_lossy(line),
            r.lines
        );
    }
    // And one too long for a line.
    c.send(&format!("AUTH {SECRET}{}", " ".repeat(5000)));
    assert_eq!(c.read_reply().code, 500);
    assert_eq!(c.cmd(&format!("AUTH {SECRET}")).code, 230);
    let h = c.cmd("History 100");
    let text = h.text() + &history_text(dir.path());
    assert!(!text.contains(SECRET), "{text}");
    assert!(!text.contains(&SECRET[1..]), "{text}");
    let rows = h.rows();
    let requests: Vec<&str> = rows.iter().map(|r| r[3].as_str()).collect();
    let mut want = vec!["AUTH ***"; spellings.len()];
    want.push("(line too long)");
    want.push("AUTH ***");
    assert_eq!(requests, want);
}

/// Sends a wrong secret on a new connection and returns how long its
/// answer took.
fn wrong_try(addr: std::net::SocketAddr) -> Duration {
    let mut c = Conn::open(addr);
    let began = Instant::now();
    assert_eq!(c.cmd("AUTH wrong").code, 530);
    began.elapsed()
}

/// The first wait for a wrong secret in the tests of the delay; they
/// double from there.
const FIRST_DELAY: Duration = Duration::from_millis(100);

/// A server with a secret whose wrong tries wait [`FIRST_DELAY`] doubling
/// up to `max` times that.
fn delaying_server(tag: &str, max: u32) -> Served {
    delaying_server_from(tag, FIRST_DELAY, max)
}

/// A server with a secret whose wrong tries wait `first` doubling up to
/// `max` times that.
fn delaying_server_from(tag: &str, first: Duration, max: u32) -> Served {
    Share::new(tag)
        .with(|c| Config {
            secret: Some(SECRET.into()),
            auth_delay: first,
            auth_delay_max: first * max,
            ..c
        })
        .serve()
}

fn wrong_secrets_from_one_address_slow_down_all_its_connections() {
    let first = FIRST_DELAY;
    let server = delaying_server("auth-delay", 2);
    let addr = server.addr();
    // Three wrong tries cost nothing and close the connection, as before.
    let mut c = Conn::open(addr);
    for _ in 0..3 {
        let began = Instant::now();
        assert_eq!(c.cmd("AUTH wrong").code, 530);
        assert!(began.elapsed() < first, "{:?}", began.elapsed());
    }
    assert_eq!(c.read_to_close(), "");
    // The fourth, on a new connection, waits; the fifth twice as long.
    assert!(wrong_try(addr) >= first);
    assert!(wrong_try(addr) >= first * 2);
    // Tries on several connections at once are answered one after the
    // other: 200 ms each now, the most.
    let began = Instant::now();
    let at_once: Vec<_> = (0..3)
        .map(|_| thread::spawn(move || wrong_try(addr)))
        .collect();
    for t in at_once {
        t.join().unwrap();
    }
    assert!(
        began.elapsed() >= Duration::from_millis(550),
        "three tries at once took {:?}",
        began.elapsed()
    );
    // (Another address is not held up by them: see the next test.)
    assert!(wrong_try(addr) >= first * 2);
    // The right secret from this address: in, and the count starts again.
    let mut c = Conn::open(addr);
    assert_eq!(c.cmd(&format!("AUTH {SECRET}")).code, 230);
    assert!(wrong_try(addr) < first);
}

fn wrong_secrets_from_one_address_do_not_hold_up_another() {
    // Long enough that 127.0.0.2's whole exchange fits inside 127.0.0.1's
    // wait on a loaded machine.
    let first = Duration::from_millis(500);
    let server = delaying_server_from("auth-delay-other", first, 4);
    let addr = server.addr();
    let mut c = Conn::open(addr);
    for _ in 0..3 {
        assert_eq!(c.cmd("AUTH wrong").code, 530);
    }
    assert!(wrong_try(addr) >= first);
    assert!(wrong_try(addr) >= first * 2);
    // While 127.0.0.1 waits for its answer, 127.0.0.2 is answered at once.
    let mut waiting = Conn::open(addr);
    waiting.send("AUTH wrong");
    let asked = Instant::now();
    assert!(wait_until(Duration::from_secs(10), || server_read_all(
        &waiting.stream
    )));
    let slow = thread::spawn(move || {
        assert_eq!(waiting.read_reply().code, 530);
        asked.elapsed()
    });
    let began = Instant::now();
    let got = nc_from_127_0_0_2(addr, &format!("AUTH {SECRET}\nQUIT\n"))
        .unwrap_or_else(|why| panic!("cannot connect from 127.0.0.2: {why}"));
    assert_eq!(
        got.lines().skip(1).collect::<Vec<_>>(),
        ["230 authenticated", "221 bye"]
    );
    // Answered while 127.0.0.1 still waits for its own answer.
    assert!(
        !slow.is_finished(),
        "127.0.0.2 was answered only after 127.0.0.1 ({:?})",
        began.elapsed()
    );
    assert!(slow.join().unwrap() >= first * 4);
}

// ---- the challenge-response login (PROTOCOL.md section 12) ----

/// A control connection logged in with `AUTH PROOF`, computing the
/// client's side with `p2pshare::proof` and checking every reply's MAC.
struct Proven {
    c: Conn,
    key: SessionKey,
    /// The number of the last request sent.
    n: u64,
    /// The number of the next reply.
    r: u64,
    /// What the login showed that must never be recorded.
    words: Vec<String>,
}

/// The text of `line` without its line end, and the MAC it ends with.
fn split_reply_mac(line: &str) -> (String, Mac) {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (text, mac) = split_mac(line).unwrap_or_else(|| panic!("no mac in {line:?}"));
    (text.to_string(), mac)
}

impl Proven {
    fn login(addr: std::net::SocketAddr, secret: &str) -> Proven {
        let mut c = Conn::open(addr);
        let sn = greeting_nonce(&c.greeting).expect("a nonce in the greeting");
        let cn = Nonce(pseudo_random(16, 7).try_into().unwrap());
        let p = Proofs::new(secret.as_bytes(), &sn, &cn);
        let auth = format!("AUTH PROOF {cn} {}", p.client);
        c.send(&auth);
        let mut me = Proven {
            c,
            key: p.key,
            n: 0,
            r: 0,
            words: vec![p.client.to_string(), p.server.to_string()],
        };
        me.words.push(me.key.to_hex());
        let r = me.read(&auth);
        assert_eq!(r.lines, [format!("230 authenticated; proof={}", p.server)]);
        me
    }

    /// Sends `line` with its MAC.
    fn send(&mut self, line: &str) {
        self.n += 1;
        let mac = self.key.request_mac(self.n, line);
        self.words.push(mac.to_string());
        self.c.send(&format!("{line} mac={mac}"));
    }

    /// Reads the next reply, answering `request`, and checks its MAC;
    /// returns it without the MAC word and line ends.
    fn read(&mut self, request: &str) -> Reply {
        let mut reply = self.c.read_reply();
        let last = reply.lines.pop().unwrap();
        let (text, mac) = split_reply_mac(&last);
        let mut lines: Vec<String> = reply
            .lines
            .iter()
            .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
            .collect();
        lines.push(text);
        let mut want = self.key.reply_mac(self.r, request);
        for l in &lines {
            want.line(l.as_bytes());
        }
        assert!(
            want.finish().same_as(&mac),
            "reply {} to {request:?} has a wrong mac: {lines:?}",
            self.r
        );
        self.words.push(mac.to_string());
        self.r += 1;
        reply.lines = lines;
        reply
    }

    fn cmd(&mut self, line: &str) -> Reply {
        self.send(line);
        self.read(line)
    }
}

fn a_proof_login_macs_every_reply_after_it() {
    let dir = TempDir::new("auth-proof");
    dir.write("a.txt", "a\n");
    for i in 0..40 {
        dir.write(&format!("many/f{i}.txt"), format!("{i}\n"));
    }
    let server = serve(&dir);
    let addr = server.addr();
    let mut p = Proven::login(addr, SECRET);
    assert_eq!(p.cmd("NOOP").lines, ["200 ok"]);
    // A table of many rows.
    let table = p.cmd("IndexGet longlist");
    assert_eq!(table.rows().len(), 41);
    assert_eq!(p.cmd("FileHash verify a.txt").rows()[0][1], md5_hex(b"a\n"));
    // A download: its 150 and its 226 are two replies to one request.
    let request = "FileDownload TCP a.txt";
    let r150 = p.cmd(request);
    assert_eq!(r150.code, 150, "{:?}", r150.lines);
    assert_eq!(row_of_150(&r150)[3], md5_hex(b"a\n"));
    let (port, token) = data_of(&r150);
    let mut d = data_connect(addr, port, &token);
    assert_eq!(read_exact_n(&mut d, 2), b"a\n");
    let done = p.read(request);
    assert_eq!(done.code, 226, "{:?}", done.lines);
    close_data(d);
    // An upload's 150 and 226 too.
    let up = format!("FileUpload up.txt 3 {}", md5_hex(b"up\n"));
    let r150 = p.cmd(&up);
    assert_eq!(r150.code, 150, "{:?}", r150.lines);
    let (port, token) = data_of(&r150);
    let mut d = data_connect(addr, port, &token);
    std::io::Write::write_all(&mut d, b"up\n").unwrap();
    drop(d);
    assert_eq!(p.read(&up).code, 226);
    // Refusals of every kind.
    assert_eq!(p.cmd("FileDownload missing.txt").code, 550);
    assert_eq!(p.cmd("frobnicate").code, 500);
    assert_eq!(p.cmd("IndexGet").code, 501);
    assert_eq!(p.cmd("HELP").code, 214);
    // An FTP verb: its reply ends with CR LF, and carries its MAC; so do
    // the 150 and 226 of an FTP download.
    assert_eq!(p.cmd("SYST").code, 215);
    let epsv = p.cmd("EPSV");
    assert_eq!(epsv.code, 229, "{:?}", epsv.lines);
    let port: u16 = epsv.last().split("|||").nth(1).unwrap()[..]
        .trim_end_matches("|)")
        .parse()
        .unwrap();
    let mut data = std::net::TcpStream::connect((addr.ip(), port)).unwrap();
    assert_eq!(p.cmd("RETR a.txt").code, 150);
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut data, &mut got).unwrap();
    assert_eq!(got, b"a\n");
    assert_eq!(p.read("RETR a.txt").code, 226);
    // No second login: the session keeps its key.
    assert_eq!(p.cmd(&format!("AUTH {SECRET}")).code, 503);
    assert_eq!(p.cmd("PASS x").code, 503);
    let h = p.cmd("History 30");
    let rows = h.rows();
    let requests: Vec<&str> = rows.iter().map(|r| r[3].as_str()).collect();
    assert!(requests.contains(&"AUTH ***"), "{requests:?}");
    assert!(requests.contains(&"IndexGet longlist"), "{requests:?}");
    assert!(requests.contains(&"FileDownload TCP a.txt"), "{requests:?}");
    assert_eq!(p.cmd("QUIT").lines, ["221 bye"]);
    assert_eq!(p.c.read_to_close(), "");
    // Neither the history file nor its table holds a proof, a key or a
    // MAC.
    let text = h.text() + &history_text(dir.path());
    assert!(!text.contains("mac="), "{text}");
    for w in &p.words {
        assert!(!text.contains(w.as_str()), "{w} in {text}");
    }
    assert!(!text.contains(SECRET), "{text}");
}

fn a_wrong_proof_is_a_wrong_secret() {
    let dir = TempDir::new("auth-proof-wrong");
    let server = serve(&dir);
    let mut c = Conn::open(server.addr());
    let sn = greeting_nonce(&c.greeting).unwrap();
    let cn = Nonce([9; 16]);
    let wrong = Proofs::new(b"not the secret", &sn, &cn).client;
    let line = format!("AUTH PROOF {cn} {wrong}");
    assert_eq!(c.cmd(&line).lines, ["530 wrong secret (1 of 3 tries)"]);
    // Another server nonce's proof is wrong here too (no replay).
    let other = Proofs::new(SECRET.as_bytes(), &Nonce([1; 16]), &cn).client;
    assert_eq!(
        c.cmd(&format!("auth proof {cn} {other}")).lines,
        ["530 wrong secret (2 of 3 tries)"]
    );
    assert_eq!(c.cmd("IndexGet longlist").code, 530);
    assert_eq!(
        c.cmd(&line).lines,
        ["530 wrong secret; closing the connection"]
    );
    assert_eq!(c.read_to_close(), "");
    // Malformed proofs are a usage error, not a try.
    let mut c = Conn::open(server.addr());
    for bad in [
        "AUTH PROOF".to_string(),
        format!("AUTH PROOF {cn}"),
        format!("AUTH PROOF {cn} {}", &wrong.to_string()[1..]),
        format!("AUTH PROOF {cn} {wrong} more"),
        format!("AUTH PROOF x{} {wrong}", &cn.to_string()[1..]),
    ] {
        assert_eq!(
            c.cmd(&bad).lines,
            ["501 usage: AUTH PROOF <client-nonce> <client-proof> (32 hex digits each)"],
            "{bad}"
        );
    }
    // Each connection has its own nonce.
    let d = Conn::open(server.addr());
    assert_ne!(greeting_nonce(&d.greeting), Some(sn));
    // Without a secret, no nonce, and AUTH PROOF is a 230 without proof.
    let Served {
        dir: _open_dir,
        server: open,
    } = Share::new("auth-proof-none").serve();
    let mut c = Conn::open(open.addr());
    assert_eq!(greeting_nonce(&c.greeting), None);
    assert_eq!(
        c.cmd(&format!("AUTH PROOF {cn} {wrong}")).lines,
        ["230 no secret is needed on this peer"]
    );
    assert_eq!(c.cmd("NOOP").lines, ["200 ok"]);
}

fn a_request_without_its_mac_closes_the_connection() {
    let dir = TempDir::new("auth-proof-mac");
    dir.write("a.txt", "a\n");
    let server = serve(&dir);
    let changed = "530 request changed on the way (its mac does not match); closing the connection";
    // No MAC at all.
    let mut p = Proven::login(server.addr(), SECRET);
    p.n += 1;
    p.c.send("IndexGet longlist");
    assert_eq!(p.read("IndexGet longlist").lines, [changed]);
    assert_eq!(p.c.read_to_close(), "");
    // A MAC of another line.
    let mut p = Proven::login(server.addr(), SECRET);
    p.n += 1;
    let mac = p.key.request_mac(p.n, "NOOP");
    p.c.send(&format!("QUIT mac={mac}"));
    assert_eq!(p.read("QUIT").lines, [changed]);
    assert_eq!(p.c.read_to_close(), "");
    // A MAC of the same line under another number (a replayed request):
    // refused lines and blank ones, as counted.
    let mut p = Proven::login(server.addr(), SECRET);
    assert_eq!(p.cmd("frob").code, 500);
    p.c.send(" \t");
    assert_eq!(p.cmd("NOOP").code, 200);
    let mac = p.key.request_mac(p.n, "NOOP");
    p.n += 1;
    p.c.send(&format!("NOOP mac={mac}"));
    assert_eq!(p.read("NOOP").lines, [changed]);
    assert_eq!(p.c.read_to_close(), "");
    // A line over the limit cannot be checked.
    let mut p = Proven::login(server.addr(), SECRET);
    p.n += 1;
    p.c.send(&"x".repeat(5000));
    assert_eq!(p.read("").lines, [changed]);
    assert_eq!(p.c.read_to_close(), "");
    let text = history_text(dir.path());
    assert!(!text.contains("mac="), "{text}");
}

fn a_proof_session_ends_an_idle_session_with_a_mac() {
    let dir = TempDir::new("auth-proof-idle");
    let server = start_with(Config {
        secret: Some(SECRET.into()),
        idle_timeout: Duration::from_secs(1),
        ..config(dir.path())
    });
    let mut p = Proven::login(server.addr(), SECRET);
    assert_eq!(p.cmd("NOOP").code, 200);
    // Unsolicited: it answers no request.
    assert_eq!(p.read("").lines, ["421 idle timeout"]);
}

fn proof_only_refuses_the_plain_secret() {
    let dir = TempDir::new("auth-proof-only");
    dir.write("a.txt", "a\n");
    let server = start_with(Config {
        secret: Some(SECRET.into()),
        auth: AuthMode::ProofOnly,
        ..config(dir.path())
    });
    let mut c = Conn::open(server.addr());
    assert!(greeting_nonce(&c.greeting).is_some(), "{}", c.greeting);
    assert!(
        c.greeting.ends_with("AUTH PROOF required"),
        "{}",
        c.greeting
    );
    // Not a wrong try: three of them leave the connection open.
    for line in [
        format!("AUTH {SECRET}"),
        "AUTH wrong".into(),
        "AUTH x".into(),
    ] {
        assert_eq!(
            c.cmd(&line).lines,
            ["530 this peer takes only AUTH PROOF (PROTOCOL.md section 12)"]
        );
    }
    assert_eq!(c.cmd("IndexGet longlist").code, 530);
    assert_eq!(c.cmd("NOOP").code, 200);
    let mut p = Proven::login(server.addr(), SECRET);
    assert_eq!(p.cmd("IndexGet longlist").names(), ["a.txt"]);
    let text = history_text(dir.path());
    assert!(!text.contains(SECRET), "{text}");
}

fn every_hard_name_goes_with_its_mac() {
    let dir = TempDir::new("auth-proof-names");
    let names = troublesome_names();
    write_named_files(&dir, &names);
    let server = serve(&dir);
    let addr = server.addr();
    let mut p = Proven::login(addr, SECRET);
    assert!(wait_until(Duration::from_secs(30), || {
        p.cmd("IndexGet longlist").rows().len() == names.len()
    }));
    for (i, name) in names.iter().enumerate() {
        let want = format!("file {i}: {name:?}\n").repeat(i + 1);
        let r = p.cmd(&format!("FileHash verify {}", quote(name)));
        assert_eq!(r.code, 213, "{name:?}: {:?}", r.lines);
        assert_eq!(r.rows()[0][1], md5_hex(want.as_bytes()), "{name:?}");
        let request = format!("FileDownload TCP {}", quote(name));
        let r150 = p.cmd(&request);
        assert_eq!(r150.code, 150, "{name:?}: {:?}", r150.lines);
        let (port, token) = data_of(&r150);
        let mut d = data_connect(addr, port, &token);
        assert_eq!(read_exact_n(&mut d, want.len() as u64), want.as_bytes());
        assert_eq!(p.read(&request).code, 226, "{name:?}");
        close_data(d);
    }
}

cases![
    before_auth_only_help_noop_auth_and_quit_are_answered,
    the_right_secret_opens_everything,
    three_wrong_secrets_close_the_connection,
    the_secret_never_reaches_the_history,
    the_client_authenticates_with_the_option_or_the_environment,
    the_server_takes_its_secret_from_the_environment,
    no_spelling_of_auth_puts_the_secret_in_the_history,
    wrong_secrets_from_one_address_slow_down_all_its_connections,
    #[ignore = "needs `nc -s` (netcat-openbsd) and 127.0.0.2"]
    wrong_secrets_from_one_address_do_not_hold_up_another,
    a_proof_login_macs_every_reply_after_it,
    a_wrong_proof_is_a_wrong_secret,
    a_request_without_its_mac_closes_the_connection,
    a_proof_session_ends_an_idle_session_with_a_mac,
    proof_only_refuses_the_plain_secret,
    every_hard_name_goes_with_its_mac,
];
