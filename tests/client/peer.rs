//! Peer mode, `p2pshare peer`: two real peer processes on loopback, each
//! serving its own temporary folder and running a console (fed through its
//! stdin) connected to the other. They download from each other, share on
//! what they got, keep the history of both directions, and report what
//! changes on the other side.

use crate::support::*;

use crate::process::*;

use crate::fake::FakeServer;

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Generous: these machines are small and noisy. Every wait polls and
/// returns as soon as its condition holds.
const WAIT: Duration = Duration::from_secs(20);

/// Two running peers, A started first and B second; both are killed when
/// this is dropped (each `Proc` kills its own child).
struct Pair {
    a: Proc,
    b: Proc,
    a_addr: SocketAddr,
    b_addr: SocketAddr,
}

/// Starts A and then B ([`start_peers`]), and waits until each poller is
/// connected to the other peer and has its first listing of it, against
/// which later changes are reported.
fn start_pair(a_dir: &Path, b_dir: &Path) -> Pair {
    let (a, b, a_addr, b_addr) = start_peers(a_dir, b_dir, &[], WAIT);
    a.await_stderr("connected to the other peer", WAIT);
    b.await_stderr("connected to the other peer", WAIT);
    await_row(
        a_dir,
        "out",
        &b_addr.to_string(),
        "FileHash checkall",
        "213",
    );
    await_row(
        b_dir,
        "out",
        &a_addr.to_string(),
        "FileHash checkall",
        "213",
    );
    Pair {
        a,
        b,
        a_addr,
        b_addr,
    }
}

/// The rows of a share's history file, each split on TAB.
fn history_rows(share: &Path) -> Vec<Vec<String>> {
    fs::read_to_string(share.join(".p2pshare/history.tsv"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// Is there a history row with this direction, request and reply, and a
/// peer column passing `peer`?
fn has_row(
    rows: &[Vec<String>],
    dir: &str,
    peer: impl Fn(&str) -> bool,
    request: &str,
    reply: &str,
) -> bool {
    rows.iter()
        .any(|r| r.len() == 5 && r[1] == dir && peer(&r[2]) && r[3] == request && r[4] == reply)
}

/// Polls until a share's history has a row with this direction, peer
/// (`*`: any), request and reply.
fn await_row(share: &Path, dir: &str, peer: &str, request: &str, reply: &str) {
    let found = wait_until(WAIT, || {
        has_row(
            &history_rows(share),
            dir,
            |p| peer == "*" || p == peer,
            request,
            reply,
        )
    });
    assert!(
        found,
        "no row {dir} {peer} {request:?} {reply} in {}:\n{:?}",
        share.display(),
        history_rows(share)
    );
}

/// Polls until `path` holds `content`.
fn await_file(path: &Path, content: &[u8], who: &Proc) {
    assert!(
        wait_until(WAIT, || fs::read(path).is_ok_and(|c| c == content)),
        "{} never arrived\n{}",
        path.display(),
        who.dump()
    );
}

fn two_peers_download_from_each_other_and_share_on_what_they_got() {
    let a_dir = TempDir::new("peer-a");
    let b_dir = TempDir::new("peer-b");
    let c_dir = TempDir::new("peer-c");
    a_dir.write("from-a.txt", "written on A\n");
    let b_bytes = pseudo_random(200_000, 5);
    b_dir.write("media/from-b.bin", &b_bytes);
    let mut p = start_pair(a_dir.path(), b_dir.path());
    let (a_at, b_at) = (p.a_addr.to_string(), p.b_addr.to_string());

    // A asks B for its file; it lands in A's own shared folder.
    p.a.send("FileDownload media/from-b.bin\n");
    await_file(&a_dir.path().join("media/from-b.bin"), &b_bytes, &p.a);
    p.a.await_stdout("media/from-b.bin\t200000\t", WAIT);
    // And B asks A.
    p.b.send("FileDownload from-a.txt\n");
    await_file(&b_dir.path().join("from-a.txt"), b"written on A\n", &p.b);
    p.b.await_stdout("from-a.txt\t13\t", WAIT);

    // A shares on what it got: B's poller sees it appear on A...
    p.b.await_stdout(&format!("{a_at}: added media/from-b.bin"), WAIT);
    // ...and a third party can fetch it from A.
    let out = run(
        &[
            "client",
            &a_at,
            "--share",
            &c_dir.path().display().to_string(),
            "-c",
            "FileDownload media/from-b.bin",
        ],
        "",
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(
        fs::read(c_dir.path().join("media/from-b.bin")).unwrap(),
        b_bytes
    );
    // The same the other way round.
    p.a.await_stdout(&format!("{b_at}: added from-a.txt"), WAIT);

    // History in both directions, in each peer's one history file: the
    // requests each made (out, to the other's address) and the ones it
    // received (in, from whichever port the other side connected from).
    let a_dir_p = a_dir.path();
    await_row(
        a_dir_p,
        "out",
        &b_at,
        "FileDownload TCP media/from-b.bin",
        "226",
    );
    await_row(a_dir_p, "out", &b_at, "FileHash checkall", "213");
    await_row(a_dir_p, "in", "*", "FileDownload TCP from-a.txt", "226");
    await_row(a_dir_p, "in", "*", "FileHash checkall", "213");
    // (the third party's request)
    await_row(
        a_dir_p,
        "in",
        "*",
        "FileDownload TCP media/from-b.bin",
        "226",
    );
    await_row(
        b_dir.path(),
        "out",
        &a_at,
        "FileDownload TCP from-a.txt",
        "226",
    );
    await_row(
        b_dir.path(),
        "in",
        "*",
        "FileDownload TCP media/from-b.bin",
        "226",
    );

    // `History` over the protocol shows both directions too.
    let mut conn = Conn::open(p.a_addr);
    let h = conn.cmd("History 10000");
    assert_eq!(h.header(), "time\tdirection\tpeer\trequest\treply");
    let rows = h.rows();
    let to_b = |peer: &str| peer == b_at;
    assert!(has_row(
        &rows,
        "out",
        to_b,
        "FileDownload TCP media/from-b.bin",
        "226"
    ));
    assert!(has_row(
        &rows,
        "in",
        |_| true,
        "FileDownload TCP from-a.txt",
        "226"
    ));

    // The local `history` command, typed into A's console, shows them too.
    p.a.send("history 10000\n");
    p.a.await_stdout("time\tdirection\tpeer\trequest\treply", WAIT);
    p.a.await_stdout(
        &format!("\tout\t{b_at}\tFileDownload TCP media/from-b.bin\t226"),
        WAIT,
    );
    p.a.await_stdout("\tin\t127.0.0.1:", WAIT);
}

fn a_file_added_changed_or_removed_on_the_other_side_is_reported() {
    let a_dir = TempDir::new("peer-poll-a");
    let b_dir = TempDir::new("peer-poll-b");
    b_dir.write("stays.txt", "same\n");
    b_dir.write("edited.txt", "first version\n");
    b_dir.write("old/gone.txt", "soon gone\n");
    let p = start_pair(a_dir.path(), b_dir.path());
    let b_at = p.b_addr.to_string();

    b_dir.write("docs/new file.txt", "brand new\n");
    p.a.await_stdout(&format!("{b_at}: added docs/new file.txt"), WAIT);

    b_dir.write("edited.txt", "second, longer version\n");
    p.a.await_stdout(&format!("{b_at}: changed edited.txt"), WAIT);

    fs::remove_file(b_dir.path().join("old/gone.txt")).unwrap();
    p.a.await_stdout(&format!("{b_at}: removed old/gone.txt"), WAIT);

    // A name with an escape sequence is reported as it may be shown.
    b_dir.write("esc\u{1b}]0;title\u{7}.txt", "x\n");
    p.a.await_stdout(
        &format!("{b_at}: added esc\\u{{1b}}]0;title\\u{{7}}.txt"),
        WAIT,
    );
    assert!(
        !p.a.stdout().contains(['\u{1b}', '\u{7}']),
        "{}",
        p.a.dump()
    );

    // Only what changed is reported, once.
    let out = p.a.stdout();
    assert!(!out.contains("stays.txt"), "{out}");
    assert_eq!(out.matches("added docs/new file.txt").count(), 1, "{out}");
}

fn end_of_input_closes_the_console_but_the_server_keeps_serving() {
    let a_dir = TempDir::new("peer-eof-a");
    let b_dir = TempDir::new("peer-eof-b");
    a_dir.write("kept.txt", "still here\n");
    let mut p = start_pair(a_dir.path(), b_dir.path());

    p.a.close_stdin();
    p.a.await_stderr("console closed", WAIT);
    assert!(p.a.running(), "A ended\n{}", p.a.dump());

    // A's server still answers, on the same address...
    let mut conn = Conn::open(p.a_addr);
    conn.assert_alive();
    // ...serves files to the other peer...
    p.b.send("FileDownload kept.txt\n");
    await_file(&b_dir.path().join("kept.txt"), b"still here\n", &p.b);
    // ...and A keeps watching B.
    b_dir.write("later.txt", "x\n");
    p.a.await_stdout(&format!("{}: added later.txt", p.b_addr), WAIT);
    assert!(p.a.running(), "A ended\n{}", p.a.dump());
}

fn a_peer_started_first_runs_its_commands_once_the_other_is_up() {
    let a_dir = TempDir::new("peer-first-a");
    let b_dir = TempDir::new("peer-first-b");
    b_dir.write("b.txt", "from b\n");
    // As in `start_pair`: B's port is picked up front, and the whole start
    // is tried again should another process take it in the meantime.
    for _ in 0..5 {
        let b_port = free_port();
        let mut a = Proc::spawn(&peer_args(
            a_dir.path(),
            0,
            &format!("127.0.0.1:{b_port}"),
            &[],
        ));
        // A command is waiting on A's input before B even exists.
        a.send("FileDownload b.txt\n");
        assert!(
            wait_until(WAIT, || bound_addr(&a).is_some()),
            "{}",
            a.dump()
        );
        a.await_stderr("waiting for the other peer", WAIT);
        assert!(!a_dir.path().join("b.txt").exists());

        let mut b = Proc::spawn(&peer_args(
            b_dir.path(),
            b_port,
            &bound_addr(&a).unwrap().to_string(),
            &[],
        ));
        assert!(
            wait_until(WAIT, || bound_addr(&b).is_some() || !b.running()),
            "{}",
            b.dump()
        );
        if bound_addr(&b).is_none() {
            assert!(b.stderr().contains("cannot listen"), "{}", b.dump());
            continue;
        }
        a.await_stderr("connected to the other peer", WAIT);
        await_file(&a_dir.path().join("b.txt"), b"from b\n", &a);
        a.await_stdout("b.txt\t7\t", WAIT);
        // The command waited instead of failing.
        assert!(
            !a.stderr()
                .lines()
                .any(|l| l.starts_with("p2pshare: cannot connect")),
            "{}",
            a.dump()
        );
        return;
    }
    panic!("could not start two peers: ports kept being taken");
}

fn a_peer_sending_an_endless_table_to_the_poller_does_not_take_the_server_down() {
    let a_dir = TempDir::new("peer-endless-a");
    a_dir.write("mine.txt", "still served\n");
    // The other peer answers every `FileHash checkall` with a table that
    // never ends (3,000,000 rows at most, past the client's bound, then
    // silence).
    let endless = FakeServer::start(|s| {
        s.greet()?;
        s.until("FileHash checkall")?;
        s.say("213-name\tmd5\ttimestamp\n")?;
        let row = format!("213-f.txt\t{:x}\t2026-01-02T03:04:05Z\n", md5::compute(b""));
        let chunk = row.repeat(10_000);
        for _ in 0..300 {
            s.out.write_all(chunk.as_bytes())?;
        }
        s.silence()
    });
    let mut args = peer_args(a_dir.path(), 0, &endless.addr.to_string(), &[]);
    // One poll at the start, the next in a while: one endless table is
    // enough for this test.
    args.extend([
        "--timeout".into(),
        "2s".into(),
        "--poll".into(),
        "1m".into(),
    ]);
    let a = Proc::spawn(&args);
    assert!(
        wait_until(WAIT, || bound_addr(&a).is_some()),
        "{}",
        a.dump()
    );
    a.await_stderr("longer than the client takes (at most 2000000 lines", WAIT);
    // The peer's own server still serves, and the poller tries again.
    let mut conn = Conn::open(bound_addr(&a).unwrap());
    conn.assert_alive();
    let (_, bytes, done) = download(&mut conn, bound_addr(&a).unwrap(), "mine.txt");
    assert_eq!((bytes.as_slice(), done.code), (&b"still served\n"[..], 226));
    a.await_stderr("lost the other peer", WAIT);
    let mut a = a;
    assert!(a.running(), "{}", a.dump());
}

fn a_poller_whose_table_drips_gives_up_after_the_timeout_and_reconnects() {
    let a_dir = TempDir::new("peer-drip-a");
    // Every session of the other peer answers `FileHash checkall` with a
    // table that comes a byte every 200 ms, for a minute at most.
    let dripping = FakeServer::start(|s| {
        s.greet()?;
        s.until("FileHash checkall")?;
        s.say("213-name\tmd5\ttimestamp\n")?;
        let row = format!("213-f.txt\t{:x}\t2026-01-02T03:04:05Z\n", md5::compute(b""));
        let end = std::time::Instant::now() + Duration::from_secs(60);
        for b in row.bytes().cycle() {
            if std::time::Instant::now() >= end {
                break;
            }
            s.out.write_all(&[b])?;
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    });
    let mut args = peer_args(a_dir.path(), 0, &dripping.addr.to_string(), &[]);
    args.extend(["--poll", "1s", "--timeout", "2s", "--sync"].map(String::from));
    let a = Proc::spawn(&args);
    a.await_stderr(
        "lost the other peer (a reply line from",
        Duration::from_secs(15),
    );
    assert!(
        wait_until(Duration::from_secs(15), || dripping.sessions() >= 2),
        "the poller did not connect again: {}",
        a.dump()
    );
}

fn after_the_other_peer_restarts_the_next_console_command_reconnects_and_runs() {
    let a_dir = TempDir::new("peer-restart-a");
    let b_dir = TempDir::new("peer-restart-b");
    b_dir.write("first.txt", "first\n");
    let Pair {
        mut a,
        b,
        a_addr,
        b_addr,
    } = start_pair(a_dir.path(), b_dir.path());
    a.send("FileDownload first.txt\n");
    await_file(&a_dir.path().join("first.txt"), b"first\n", &a);

    // B is killed and started again on the same port, with a new file.
    drop(b);
    b_dir.write("second.txt", "second\n");
    let b = Proc::spawn(&peer_args(
        b_dir.path(),
        b_addr.port(),
        &a_addr.to_string(),
        &[],
    ));
    assert!(
        wait_until(WAIT, || bound_addr(&b).is_some()),
        "{}",
        b.dump()
    );
    a.send("FileDownload second.txt\n");
    await_file(&a_dir.path().join("second.txt"), b"second\n", &a);
    a.await_stdout("second.txt\t7\t", WAIT);
    assert!(
        !a.stderr().contains("closed the connection"),
        "the command failed first:\n{}",
        a.dump()
    );
}

fn a_file_reported_as_changed_can_be_fetched_again_with_overwrite() {
    let a_dir = TempDir::new("peer-ow-a");
    let b_dir = TempDir::new("peer-ow-b");
    b_dir.write("news.txt", "first edition\n");
    let mut p = start_pair(a_dir.path(), b_dir.path());
    p.a.send("FileDownload news.txt\n");
    await_file(&a_dir.path().join("news.txt"), b"first edition\n", &p.a);

    b_dir.write("news.txt", "second, later edition\n");
    p.a.await_stdout(&format!("{}: changed news.txt", p.b_addr), WAIT);
    p.a.send("FileDownload --overwrite news.txt\n");
    await_file(
        &a_dir.path().join("news.txt"),
        b"second, later edition\n",
        &p.a,
    );
}

cases![
    two_peers_download_from_each_other_and_share_on_what_they_got,
    a_file_added_changed_or_removed_on_the_other_side_is_reported,
    end_of_input_closes_the_console_but_the_server_keeps_serving,
    a_peer_started_first_runs_its_commands_once_the_other_is_up,
    a_peer_sending_an_endless_table_to_the_poller_does_not_take_the_server_down,
    a_poller_whose_table_drips_gives_up_after_the_timeout_and_reconnects,
    after_the_other_peer_restarts_the_next_console_command_reconnects_and_runs,
    a_file_reported_as_changed_can_be_fetched_again_with_overwrite,
];
