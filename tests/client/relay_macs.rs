//! The bundled client against a real server with a secret, through the
//! real TCP relay of `support/relay.rs` that changes what it carries: a
//! byte of a table row, the md5 of a `150` row together with the file's
//! bytes (TCP and UDP), a dropped row, a pair of replies in the wrong
//! order, a request line, a reply from an earlier session, the rows of a
//! `Sync --delete`. Each time the client says that the reply was changed
//! on the way (or refuses a peer that cannot prove the secret), exits 1,
//! and nothing in its share or its sync state is stored, replaced or
//! deleted. Last, captures of every byte of whole sessions, client and
//! peer mode, hold no trace of the secret.

use crate::support::relay::{self, Dir, Hooks, Kind, Line, Relay};
use crate::support::*;

use crate::process::*;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use p2pshare::server::Config;

const SECRET: &str = "relay-macs:seven-tired-owls-guard-the-fjord";

/// Names with every byte that needs care on the wire and on a screen.
const HARD: &str = "tab\there \"q\" back\\slash [x]*?.txt";
const HARD_LF: &str = "line\nfeed\rcr \u{1f600} 'q'.bin";

/// A server with the secret (and uploads allowed) on `share`'s files,
/// with the data ports of a relay, and that relay in front of it.
fn serve_through(share: Share, hooks: Hooks) -> (Relay, Served) {
    let bound = Relay::bind(8);
    let ports = bound.data_ports();
    let served = share
        .with(|c| Config {
            data_ports: Some(ports),
            secret: Some(SECRET.into()),
            allow_upload: true,
            ..c
        })
        .serve();
    let relay = bound.start(served.addr(), hooks);
    (relay, served)
}

/// The client with the secret, through the relay, running `commands`.
fn client(relay: &Relay, dest: &Path, commands: &[&str]) -> Finished {
    let mut extra = vec!["--secret", SECRET, "--timeout", "20s"];
    for c in commands {
        extra.extend(["-c", c]);
    }
    run(&client_args(relay.addr(), dest, &extra), "")
}

/// The client's error for a reply whose MAC failed.
fn changed(relay: &Relay) -> String {
    format!(
        "the reply from {} was changed on the way (its mac does not match); dropping the connection",
        relay.addr()
    )
}

/// Asserts that the client failed with the changed-on-the-way error.
fn assert_changed(out: &Finished, relay: &Relay, what: &str) {
    assert_eq!(out.code(), Some(1), "{what}: {out}");
    assert!(out.stderr.contains(&changed(relay)), "{what}: {out}");
}

/// A name as a table row writes it (`\t`, `\n`, `\r`, `\\`).
fn escaped(name: &str) -> String {
    name.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

/// Everything below `dir` but the history (which records the failed
/// requests) and the state folder that holds it: each folder, and each
/// file with its bytes; the state folder's sync state and trash
/// included.
fn snapshot(dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel == ".p2pshare/history.tsv" {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                // The state folder, made for the history.
                if rel != ".p2pshare" {
                    out.insert(format!("{rel}/"), None);
                }
                walk(root, &p, out);
            } else {
                out.insert(rel, Some(fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The names (and sizes) of a snapshot, for failure messages.
fn names(s: &BTreeMap<String, Option<Vec<u8>>>) -> Vec<String> {
    s.iter()
        .map(|(k, v)| format!("{k:?} {:?}", v.as_ref().map(Vec::len)))
        .collect()
}

fn assert_unchanged(before: &BTreeMap<String, Option<Vec<u8>>>, dest: &Path, what: &str) {
    let after = snapshot(dest);
    assert!(
        &after == before,
        "{what}: the client's share changed\nbefore {:?}\nafter  {:?}",
        names(before),
        names(&after)
    );
}

/// A hook on the server's lines that hands each line starting with
/// `start` to `change` (which says what goes on in its place), counting
/// them in the returned counter.
fn on_rows(start: String, change: fn(&str, Line) -> Vec<Line>) -> (Hooks, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let count = hits.clone();
    let hooks = Hooks::default().on_server_lines(move |_, line| {
        if line.starts_with(start.as_bytes()) {
            count.fetch_add(1, Ordering::SeqCst);
            change(&start, line)
        } else {
            vec![line]
        }
    });
    (hooks, hits)
}

/// The first byte after `start` (a size's or an md5's first digit) made
/// another digit of the same kind: a row that still reads well.
fn one_byte_changed(start: &str, mut line: Line) -> Vec<Line> {
    let b = &mut line[start.len()];
    *b = match *b {
        b'9' => b'8',
        b'f' => b'e',
        b'0'..=b'8' | b'a'..=b'e' => *b + 1,
        other => other ^ 1,
    };
    vec![line]
}

fn dropped(_: &str, _: Line) -> Vec<Line> {
    Vec::new()
}

/// The share the table cases list: a hard name first among others.
fn listed_share(tag: &str) -> Share {
    Share::new(tag)
        .file(HARD, "hard\n")
        .file(HARD_LF, "lf\n")
        .file("plain.txt", "plain\n")
}

/// A table command through a relay whose hook `change`s the row of
/// [`HARD`]: the client fails with the error, shows no row, and its
/// share stays as it was.
fn table_case(tag: &str, command: &str, change: fn(&str, Line) -> Vec<Line>) {
    let start = format!("213-{}\t", escaped(HARD));
    let (hooks, hits) = on_rows(start.clone(), change);
    let (relay, _served) = serve_through(listed_share(tag), hooks);
    let dest = TempDir::new(tag);
    let before = snapshot(dest.path());
    let out = client(&relay, dest.path(), &[command]);
    let what = format!("{command} ({tag})");
    assert_changed(&out, &relay, &what);
    assert_eq!(hits.load(Ordering::SeqCst), 1, "{what}: {out}");
    // Nothing of the table was shown, not even its header.
    for shown in ["txt", "bin", "name", "plain"] {
        assert!(!out.stdout.contains(shown), "{what}: {out}");
    }
    assert_unchanged(&before, dest.path(), &what);
    // The server sent the row as it is.
    assert!(relay.capture().contains(start.as_bytes()), "{what}");
}

// ---------------------------------------------------------------------
// 1. One byte of a table row; 3. a dropped row
// ---------------------------------------------------------------------

fn one_changed_byte_of_a_listing_or_checkall_row_is_detected_and_nothing_shown() {
    table_case("macs-byte-list", "IndexGet longlist", one_byte_changed);
    table_case("macs-byte-hash", "FileHash checkall", one_byte_changed);
}

fn a_dropped_listing_or_checkall_row_is_detected_and_nothing_shown() {
    table_case("macs-drop-list", "IndexGet longlist", dropped);
    table_case("macs-drop-hash", "FileHash checkall", dropped);
}

// ---------------------------------------------------------------------
// 2. The md5 of a 150 row changed together with the file's bytes
// ---------------------------------------------------------------------

/// A download of a file with a hard name through a relay that puts the
/// md5 of other bytes of the same size in the `150` row, and those bytes
/// in place of the file's, on TCP (`udp` false) or on UDP.
fn md5_and_data_case(udp: bool) {
    let real = pseudo_random(300_000, 11);
    let evil = Arc::new(pseudo_random(300_000, 12));
    let (real_md5, evil_md5) = (md5_hex(&real), md5_hex(&evil));
    let rows = Arc::new(AtomicUsize::new(0));
    let count = rows.clone();
    let mut hooks = Hooks::default().on_server_lines(move |_, line| {
        if line.starts_with(b"150-") {
            count.fetch_add(1, Ordering::SeqCst);
            let t = String::from_utf8(line.clone()).unwrap();
            assert!(t.contains(&real_md5), "{t:?}");
            vec![t.replace(&real_md5, &evil_md5).into_bytes()]
        } else {
            vec![line]
        }
    });
    let bytes = evil.clone();
    hooks = if udp {
        // DATA frames (kind 2): the chunk at its file offset.
        hooks.on_datagrams(move |at, d| {
            if at.dir == Dir::ToClient && d.len() > 33 && d[1] == 2 {
                let off = u64::from_be_bytes(d[22..30].try_into().unwrap()) as usize;
                let n = d.len() - 33;
                d[33..].copy_from_slice(&bytes[off..off + n]);
            }
        })
    } else {
        hooks.on_data(move |at, piece| {
            if at.dir == Dir::ToClient {
                let off = at.offset as usize;
                piece.copy_from_slice(&bytes[off..off + piece.len()]);
            }
        })
    };
    let (relay, _served) = serve_through(Share::new("macs-md5-srv").file(HARD_LF, &real), hooks);
    let dest = TempDir::new("macs-md5-dst");
    dest.write("mine.txt", "mine\n");
    let before = snapshot(dest.path());
    let transport = if udp { "UDP" } else { "TCP" };
    let command = format!("FileDownload {transport} {}", quote(HARD_LF));
    let out = client(&relay, dest.path(), &[&command]);
    // Neither the file nor a partial one.
    assert_unchanged(&before, dest.path(), transport);
    assert_changed(&out, &relay, transport);
    assert_eq!(rows.load(Ordering::SeqCst), 1, "{transport}: {out}");
}

fn a_150_whose_md5_was_changed_with_the_bytes_stores_nothing_over_tcp() {
    md5_and_data_case(false);
}

fn a_150_whose_md5_was_changed_with_the_bytes_stores_nothing_over_udp() {
    md5_and_data_case(true);
}

// ---------------------------------------------------------------------
// 4. A reordered pair of replies
// ---------------------------------------------------------------------

/// A hook that holds the reply whose first line starts with `first`
/// (all its lines, up to its final one) and lets it go on after the
/// final line of the next reply whose final line starts with `after`.
fn hold(first: &'static [u8], after: &'static [u8]) -> impl FnMut(relay::At, Line) -> Vec<Line> {
    let mut held: Vec<Line> = Vec::new();
    let mut holding = false;
    let mut done = false;
    move |_, line| {
        if done {
            return vec![line];
        }
        if !holding && held.is_empty() && line.starts_with(first) {
            holding = true;
        }
        if holding {
            // A final line: `NNN ` after its code.
            if line.get(3) == Some(&b' ') {
                holding = false;
            }
            held.push(line);
            return Vec::new();
        }
        if !held.is_empty() && line.get(3) == Some(&b' ') && line.starts_with(after) {
            done = true;
            let mut out = vec![line];
            out.append(&mut held);
            return out;
        }
        vec![line]
    }
}

fn replies_in_the_wrong_order_are_detected_in_sync_and_in_a_pipelined_download() {
    // Sync sends `FileHash checkall` and `IndexGet longlist` in one
    // write: the checkall's table comes after the listing's.
    let hooks = Hooks::default().on_server_lines(hold(b"213-name\tmd5\t", b"213 "));
    let (relay, _served) = serve_through(listed_share("macs-order-sync"), hooks);
    let dest = TempDir::new("macs-order-sync-dst");
    let before = snapshot(dest.path());
    let out = client(&relay, dest.path(), &["Sync"]);
    assert_changed(&out, &relay, "Sync");
    assert_unchanged(&before, dest.path(), "Sync");

    // A pattern's downloads are pipelined: the first file's `226` comes
    // after the second file's `150`.
    let hooks = Hooks::default().on_server_lines(hold(b"226 ", b"150 "));
    let (relay, _served) = serve_through(
        Share::new("macs-order-dl")
            .file(&format!("d/{HARD}"), pseudo_random(100_000, 1))
            .file(&format!("d/{HARD_LF}"), pseudo_random(100_000, 2)),
        hooks,
    );
    let dest = TempDir::new("macs-order-dl-dst");
    let before = snapshot(dest.path());
    let out = client(&relay, dest.path(), &["FileDownload TCP \"d/*\""]);
    assert_changed(&out, &relay, "a pattern");
    // The folder the files were to go to may stay, empty.
    let _ = fs::remove_dir(dest.path().join("d"));
    assert_unchanged(&before, dest.path(), "a pattern");
    // Both requests went out before the first reply was through.
    let cap = relay.capture();
    let sent = String::from_utf8_lossy(&cap.control()[0].from_client).into_owned();
    assert_eq!(sent.matches("FileDownload TCP ").count(), 2, "{sent}");
}

// ---------------------------------------------------------------------
// 5. A changed or added request line
// ---------------------------------------------------------------------

fn a_changed_or_added_request_line_is_refused_by_the_server_and_fails_the_client() {
    // The name of the file asked for is changed on the way to the other
    // file's: the request's MAC no longer holds.
    let (asked, other) = (quote(HARD), quote(HARD_LF));
    let hooks = Hooks::default().on_client_lines(move |_, line| {
        let t = relay::text(&line);
        if t.starts_with("FileDownload TCP ") {
            vec![relay::line_like(&line, &t.replacen(&asked, &other, 1))]
        } else {
            vec![line]
        }
    });
    let (relay, served) = serve_through(listed_share("macs-request-srv"), hooks);
    let dest = TempDir::new("macs-request-dst");
    let before = snapshot(dest.path());
    let command = format!("FileDownload TCP {}", quote(HARD));
    let out = client(&relay, dest.path(), &[&command]);
    assert_changed(&out, &relay, "a changed request");
    assert_unchanged(&before, dest.path(), "a changed request");
    let refusal = "530 request changed on the way (its mac does not match); closing the connection";
    let cap = relay.capture();
    let replies = String::from_utf8_lossy(&cap.control()[0].from_server).into_owned();
    assert!(replies.contains(refusal), "{replies}");
    assert!(!replies.contains("150"), "{replies}");
    assert!(cap.data().is_empty(), "no transfer began");
    let history = fs::read_to_string(served.path().join(".p2pshare/history.tsv")).unwrap();
    assert!(history.contains("\t530\n"), "{history}");

    // An upload of the relay's own goes in before the client's request:
    // the server refuses it, and stores nothing.
    let evil = b"evil!";
    let injected = format!("FileUpload planted.txt {} {}\n", evil.len(), md5_hex(evil));
    let hooks = Hooks::default().on_client_lines(move |at, line| {
        if at.line == 1 {
            vec![injected.clone().into_bytes(), line]
        } else {
            vec![line]
        }
    });
    let (relay, served) = serve_through(listed_share("macs-inject-srv"), hooks);
    let dest = TempDir::new("macs-inject-dst");
    let before = snapshot(dest.path());
    let out = client(&relay, dest.path(), &["IndexGet longlist"]);
    assert_changed(&out, &relay, "an added request");
    assert!(!out.stdout.contains("txt"), "{out}");
    assert_unchanged(&before, dest.path(), "an added request");
    let cap = relay.capture();
    let replies = String::from_utf8_lossy(&cap.control()[0].from_server).into_owned();
    assert!(replies.contains(refusal), "{replies}");
    assert!(!replies.contains("213-"), "{replies}");
    assert!(!served.path().join("planted.txt").exists());
    assert!(cap.data().is_empty(), "no transfer began");
}

// ---------------------------------------------------------------------
// 6. A reply replayed from an earlier session
// ---------------------------------------------------------------------

fn replies_replayed_from_an_earlier_session_are_refused_or_detected() {
    let (relay, served) = serve_through(listed_share("macs-replay-srv"), Hooks::default());
    let dest = TempDir::new("macs-replay-dst");
    let first = client(&relay, dest.path(), &["IndexGet longlist"]);
    assert_eq!(first.code(), Some(0), "{first}");
    let record = relay.server_lines(0);
    assert!(record.len() >= 6, "{record:?}");
    assert!(relay::text(&record[1]).starts_with("230 "), "{record:?}");

    // The share changes: the old listing is stale.
    served.dir.write("new.txt", "new\n");
    let mut c = served.conn();
    c.cmd(&format!("AUTH {SECRET}"));
    assert!(
        wait_until(Duration::from_secs(20), || c
            .cmd("IndexGet longlist")
            .names()
            .contains(&"new.txt".to_string())),
        "the server never listed new.txt"
    );
    let refused = format!("the peer at {} does not know the secret", relay.addr());
    // From the greeting on, and from the login's reply on: the old `230`
    // proves the secret for another client nonce, so the server is
    // refused before anything is used; from the first reply after the
    // login on: the old listing's MAC is another session's.
    for (from, said) in [(0, refused.clone()), (1, refused), (2, changed(&relay))] {
        let before = snapshot(dest.path());
        relay.set_hooks(Hooks::default().on_server_lines(relay::replay(record.clone(), from)));
        let out = client(&relay, dest.path(), &["IndexGet longlist"]);
        assert_eq!(out.code(), Some(1), "from {from}: {out}");
        assert!(out.stderr.contains(&said), "from {from}: {out}");
        assert!(out.stdout.is_empty(), "from {from}: {out}");
        assert_unchanged(&before, dest.path(), &format!("replay from {from}"));
    }
}

// ---------------------------------------------------------------------
// 7. Sync --delete through a relay that drops rows
// ---------------------------------------------------------------------

fn sync_delete_through_a_relay_that_drops_rows_deletes_nothing_and_keeps_its_state() {
    let share = Share::new("macs-sync-srv")
        .file(HARD, "hard\n")
        .file(HARD_LF, "lf\n")
        .file("a.txt", "a\n")
        .file("b.txt", "b\n")
        .file("c.txt", "c\n")
        .file("d/e.txt", "e\n");
    let (relay, _served) = serve_through(share, Hooks::default());
    let dest = TempDir::new("macs-sync-dst");
    let out = client(&relay, dest.path(), &["Sync"]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(fs::read(dest.path().join(HARD)).unwrap(), b"hard\n");
    let state = dest.path().join(".p2pshare/sync");
    assert_eq!(fs::read_dir(&state).unwrap().count(), 1, "{out}");

    let listing = format!("213-{}\t", escaped(HARD));
    let hash_row = |l: &[u8]| {
        // A checkall row: name, md5 (32 hex digits), timestamp.
        let t = relay::text(l);
        let f: Vec<&str> = t.split('\t').collect();
        f.len() == 3 && f[1].len() == 32
    };
    type Drop = fn(&[u8], &str, &dyn Fn(&[u8]) -> bool) -> bool;
    let cases: [(&str, Drop); 3] = [
        ("the listing's row", |l, row, hash| {
            l.starts_with(row.as_bytes()) && !hash(l)
        }),
        ("the checkall row", |l, row, hash| {
            l.starts_with(row.as_bytes()) && hash(l)
        }),
        ("both rows", |l, row, _| l.starts_with(row.as_bytes())),
    ];
    for (what, drops) in cases {
        let hits = Arc::new(AtomicUsize::new(0));
        let count = hits.clone();
        let row = listing.clone();
        relay.set_hooks(Hooks::default().on_server_lines(move |_, line| {
            if drops(&line, &row, &hash_row) {
                count.fetch_add(1, Ordering::SeqCst);
                Vec::new()
            } else {
                vec![line]
            }
        }));
        let before = snapshot(dest.path());
        let out = client(&relay, dest.path(), &["Sync --delete"]);
        // Every file, the sync state and the trash byte for byte.
        assert_unchanged(&before, dest.path(), what);
        assert_changed(&out, &relay, what);
        assert!(hits.load(Ordering::SeqCst) >= 1, "{what}: {out}");
        assert!(!dest.path().join(".p2pshare/trash").exists(), "{what}");
    }
}

// ---------------------------------------------------------------------
// 8. Captures of whole sessions hold no trace of the secret
// ---------------------------------------------------------------------

/// The forms of the secret someone in the middle could look for: itself,
/// its bytes in hex (either case) and in base64.
fn secret_forms() -> Vec<(String, Vec<u8>)> {
    let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    vec![
        ("as it is".into(), SECRET.as_bytes().to_vec()),
        ("in hex".into(), hex.clone().into_bytes()),
        ("in HEX".into(), hex.to_uppercase().into_bytes()),
        ("in base64".into(), base64(SECRET.as_bytes()).into_bytes()),
    ]
}

/// Standard base64 (RFC 4648), without padding.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn assert_no_secret(cap: &relay::Capture, what: &str) {
    for (form, bytes) in secret_forms() {
        assert!(!cap.contains(&bytes), "{what}: the secret {form} crossed");
    }
}

fn a_whole_client_session_both_ways_control_and_data_holds_no_secret() {
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64(b"fooba"), "Zm9vYmE");
    let big = pseudo_random(400_000, 5);
    let (relay, served) = serve_through(
        listed_share("macs-capture-srv").file("d/big.bin", &big),
        Hooks::default(),
    );
    let dest = TempDir::new("macs-capture-dst");
    dest.write("up \u{1f600}.txt", "uploaded\n");
    let out = client(
        &relay,
        dest.path(),
        &[
            "IndexGet longlist",
            &format!("FileDownload TCP {}", quote(HARD)),
            "FileDownload UDP d/big.bin",
            &format!("FileUpload {}", quote("up \u{1f600}.txt")),
        ],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(fs::read(dest.path().join(HARD)).unwrap(), b"hard\n");
    assert_eq!(fs::read(dest.path().join("d/big.bin")).unwrap(), big);
    let up = served.path().join("up \u{1f600}.txt");
    assert_eq!(fs::read(up).unwrap(), b"uploaded\n");
    let synced = TempDir::new("macs-capture-sync");
    let out = client(&relay, synced.path(), &["Sync"]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(fs::read(synced.path().join(HARD_LF)).unwrap(), b"lf\n");

    // Every byte went through the relay, both ways: requests with their
    // MACs, replies, a TCP data connection each way, UDP datagrams.
    let cap = relay.capture();
    assert!(cap.contains(b"AUTH PROOF "));
    assert!(cap.contains(b"IndexGet longlist mac="));
    assert!(cap.contains(b"230 authenticated; proof="));
    assert!(cap.contains(b"uploaded\n"));
    let tcp_down = cap
        .data()
        .iter()
        .any(|s| matches!(s.kind, Kind::Data(_)) && s.from_server.starts_with(b"hard\n"));
    assert!(tcp_down, "no TCP download captured");
    let udp = cap
        .data()
        .iter()
        .any(|s| matches!(s.kind, Kind::Udp(_)) && !s.from_client.is_empty());
    assert!(udp, "no UDP flow captured");
    let chunk = &big[..1000];
    assert!(
        cap.contains(chunk),
        "the UDP download's bytes were not seen"
    );
    assert_no_secret(&cap, "client session");
    // Nor do the server's history, or the client's.
    for h in [served.path(), dest.path(), synced.path()] {
        let h = fs::read(h.join(".p2pshare/history.tsv")).unwrap();
        let text = String::from_utf8_lossy(&h);
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("AUTH ***"), "{text}");
    }
}

fn peer_mode_through_the_relay_syncs_and_its_capture_holds_no_secret() {
    let (a_dir, b_dir) = (TempDir::new("macs-peer-a"), TempDir::new("macs-peer-b"));
    a_dir.write(HARD, "from A\n");
    b_dir.write(&format!("from-b/{HARD_LF}"), "from B\n");
    let wait = Duration::from_secs(60);
    // B serves on 127.0.0.1 with the relay's data ports; A reaches B
    // through the relay, and B reaches A directly.
    let bound = Relay::bind(8);
    let (lo, hi) = bound.data_ports();
    let a_port = free_port();
    let ports = format!("{lo}-{hi}");
    let with = |ports: Option<&str>| {
        let mut v = vec!["--sync", "--secret", SECRET];
        if let Some(p) = ports {
            v.extend(["--data-ports", p]);
        }
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let b_extra = with(Some(&ports));
    let b_extra: Vec<&str> = b_extra.iter().map(String::as_str).collect();
    let a_to = format!("127.0.0.1:{a_port}");
    let b = Proc::spawn(&peer_args(b_dir.path(), 0, &a_to, &b_extra));
    assert!(
        wait_until(wait, || bound_addr(&b).is_some()),
        "B never said where it listens\n{}",
        b.dump()
    );
    let relay = bound.start(bound_addr(&b).unwrap(), Hooks::default());
    let a_extra = with(None);
    let a_extra: Vec<&str> = a_extra.iter().map(String::as_str).collect();
    let a = Proc::spawn(&peer_args(
        a_dir.path(),
        a_port,
        &relay.addr().to_string(),
        &a_extra,
    ));
    let both = |d: &TempDir| {
        fs::read(d.path().join(HARD)).is_ok_and(|c| c == b"from A\n")
            && fs::read(d.path().join(format!("from-b/{HARD_LF}"))).is_ok_and(|c| c == b"from B\n")
    };
    let ok = wait_until(wait, || both(&a_dir) && both(&b_dir));
    assert!(ok, "never converged\nA {}\nB {}", a.dump(), b.dump());
    let cap = relay.capture();
    assert!(cap.contains(b"AUTH PROOF "), "A's poller went elsewhere");
    assert!(
        cap.contains(b"from B\n"),
        "B's file did not cross the relay"
    );
    assert_no_secret(&cap, "peer mode");
    for (p, d) in [(&a, &a_dir), (&b, &b_dir)] {
        assert!(!p.stderr().contains(SECRET), "{}", p.dump());
        assert!(!p.stdout().contains(SECRET), "{}", p.dump());
        let h = fs::read_to_string(d.path().join(".p2pshare/history.tsv")).unwrap();
        assert!(!h.contains(SECRET), "{h}");
    }
}

cases![
    one_changed_byte_of_a_listing_or_checkall_row_is_detected_and_nothing_shown,
    a_dropped_listing_or_checkall_row_is_detected_and_nothing_shown,
    a_150_whose_md5_was_changed_with_the_bytes_stores_nothing_over_tcp,
    a_150_whose_md5_was_changed_with_the_bytes_stores_nothing_over_udp,
    replies_in_the_wrong_order_are_detected_in_sync_and_in_a_pipelined_download,
    a_changed_or_added_request_line_is_refused_by_the_server_and_fails_the_client,
    replies_replayed_from_an_earlier_session_are_refused_or_detected,
    sync_delete_through_a_relay_that_drops_rows_deletes_nothing_and_keeps_its_state,
    a_whole_client_session_both_ways_control_and_data_holds_no_secret,
    peer_mode_through_the_relay_syncs_and_its_capture_holds_no_secret,
];
