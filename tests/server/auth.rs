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

use p2pshare::server::{Config, RunningServer};

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
    Share::new(tag)
        .with(|c| Config {
            secret: Some(SECRET.into()),
            auth_delay: FIRST_DELAY,
            auth_delay_max: FIRST_DELAY * max,
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
    let first = FIRST_DELAY;
    let server = delaying_server("auth-delay-other", 4);
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
    assert!(
        began.elapsed() < Duration::from_millis(300),
        "127.0.0.2 waited {:?}",
        began.elapsed()
    );
    assert!(slow.join().unwrap() >= first * 4);
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
];
