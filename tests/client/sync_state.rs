//! `Sync` against a scripted peer that lies: forged rows in any field of
//! its listings, a listing that empties and comes back, files offered
//! inside the client's state folder, a deletion padded to look small.
//! The sync state must hold only what both sides agreed on, read back
//! strictly, and no peer may steer what Sync writes or removes.

use crate::fake::{FakeServer, Session};
use crate::process::*;
use crate::support::*;

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

const PEER_ID: &str = "0123456789abcdef0123456789abcdef";
const TS: &str = "2026-01-02T03:04:05Z";

/// One file as the fake peer lists it: each field exactly as sent (so a
/// test can forge any of them), and the bytes it serves.
#[derive(Clone)]
struct Row {
    name: String,
    md5: String,
    size: String,
    ts: String,
    ty: String,
    content: Vec<u8>,
}

impl Row {
    /// An honest row for a plain name.
    fn of(name: &str, content: &str) -> Row {
        Row {
            name: name.to_string(),
            md5: md5_hex(content.as_bytes()),
            size: content.len().to_string(),
            ts: TS.to_string(),
            ty: "text/plain".to_string(),
            content: content.as_bytes().to_vec(),
        }
    }
}

/// A fake p2pshare peer with a share id, listing `rows` (which the test
/// may change between syncs) and serving their bytes.
struct Peer {
    fake: FakeServer,
    rows: Arc<Mutex<Vec<Row>>>,
}

impl Peer {
    fn start(rows: Vec<Row>) -> Peer {
        let rows = Arc::new(Mutex::new(rows));
        let listed = rows.clone();
        let fake = FakeServer::start(move |s| serve(s, &listed));
        Peer { fake, rows }
    }

    fn set(&self, rows: Vec<Row>) {
        *self.rows.lock().unwrap() = rows;
    }

    fn addr(&self) -> SocketAddr {
        self.fake.addr
    }
}

/// One session of the fake peer.
fn serve(s: &mut Session, rows: &Mutex<Vec<Row>>) -> std::io::Result<()> {
    s.say(&format!(
        "220 fake ready; share-id={PEER_ID}; HELP lists commands\n"
    ))?;
    while let Some(line) = s.request()? {
        let rows = rows.lock().unwrap().clone();
        let table = |header: &str, row: &dyn Fn(&Row) -> String| {
            let mut t = format!("213-{header}\n");
            for r in &rows {
                t.push_str(&format!("213-{}\n", row(r)));
            }
            t + &format!("213 {} files\n", rows.len())
        };
        if line == "FileHash checkall" {
            s.say(&table("name\tmd5\ttimestamp", &|r| {
                format!("{}\t{}\t{}", r.name, r.md5, r.ts)
            }))?;
        } else if line == "IndexGet longlist" {
            s.say(&table("name\tsize\ttimestamp\ttype", &|r| {
                format!("{}\t{}\t{}\t{}", r.name, r.size, r.ts, r.ty)
            }))?;
        } else if let Some(rest) = line.strip_prefix("FileDownload TCP ") {
            let word = rest.split(' ').next().unwrap_or("");
            match rows.iter().find(|r| r.name == word) {
                Some(r) => {
                    s.announce(&r.name, &r.content)?;
                    s.data()?.write_all(&r.content)?;
                    s.say("226 ok\n")?;
                }
                None => s.say("550 no such file or not shared\n")?,
            }
        } else if line == "QUIT" {
            return s.say("221 bye\n");
        } else {
            s.say("500 the fake peer does not know that\n")?;
        }
    }
    Ok(())
}

/// Runs `client ADDR --share SHARE [--state STATE] -c "Sync ARGS"`.
fn sync(addr: SocketAddr, share: &Path, state: Option<&Path>, args: &str) -> Finished {
    let command = format!("Sync {args}");
    let mut extra: Vec<String> = Vec::new();
    if let Some(st) = state {
        extra.extend(["--state".to_string(), st.display().to_string()]);
    }
    extra.extend(["-c".to_string(), command.trim_end().to_string()]);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    run(&client_args(addr, share, &extra), "")
}

/// The sync state the client keeps for the fake peer.
fn state_text(state_dir: &Path) -> String {
    fs::read_to_string(state_dir.join(format!("sync/{PEER_ID}.tsv"))).unwrap_or_default()
}

fn a_forged_row_in_any_field_never_reaches_the_sync_state() {
    let thesis = "my thesis, the only copy\n";
    let forged = format!(
        "\\nthesis.txt\\t{}\\t{}\\t{TS}",
        md5_hex(thesis.as_bytes()),
        thesis.len()
    );
    for field in ["name", "md5", "size", "timestamp", "type"] {
        let here = TempDir::new("forged-here");
        here.write("thesis.txt", thesis);
        here.write("hello.txt", "hello\n");
        let mut hello = Row::of("hello.txt", "hello\n");
        match field {
            "name" => hello.name.push_str(&forged),
            "md5" => hello.md5.push_str(&forged),
            "size" => hello.size.push_str(&forged),
            "timestamp" => hello.ts.push_str(&forged),
            _ => hello.ty.push_str(&forged),
        }
        let peer = Peer::start(vec![hello]);
        let first = sync(peer.addr(), here.path(), None, "");
        let state = state_text(&here.path().join(".p2pshare"));
        assert!(
            !state.lines().any(|l| l.starts_with("thesis.txt\t")),
            "{field}: a forged row reached the sync state:\n{state}\n{first}"
        );
        if field != "name" {
            // A name may hold any character; the other fields may not.
            assert_eq!(first.code(), Some(1), "{field}: {first}");
            assert!(
                first.stderr.contains("malformed") && first.stderr.contains(field),
                "{field}: {first}"
            );
            assert!(state.is_empty(), "{field}: nothing is written\n{state}");
        }
        // The peer now offers other bytes under the thesis' name, and
        // stops listing both (a deletion, were the forged row agreed).
        peer.set(vec![Row::of("thesis.txt", "the peer's bytes\n")]);
        let second = sync(peer.addr(), here.path(), None, "--delete --force-delete");
        assert_eq!(
            fs::read_to_string(here.path().join("thesis.txt")).unwrap(),
            thesis,
            "{field}: the thesis was replaced\n{first}\n{second}"
        );
    }
}

fn a_sync_state_that_does_not_read_stops_the_sync_with_its_line() {
    let here = TempDir::new("strict-here");
    let peer = Peer::start(vec![Row::of("a.txt", "a\n")]);
    let first = sync(peer.addr(), here.path(), None, "");
    assert_eq!(first.code(), Some(0), "{first}");
    let path = here.path().join(format!(".p2pshare/sync/{PEER_ID}.tsv"));
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str("b.txt\tnot-an-md5\t1\t2026-01-02T03:04:05Z\n");
    fs::write(&path, &text).unwrap();
    peer.set(vec![Row::of("a.txt", "a\n"), Row::of("c.txt", "c\n")]);
    let second = sync(peer.addr(), here.path(), None, "");
    assert_eq!(second.code(), Some(1), "{second}");
    assert!(
        second.stderr.contains(&path.display().to_string()) && second.stderr.contains("line 3"),
        "{second}"
    );
    assert!(!here.path().join("c.txt").exists(), "nothing is applied");
    assert_eq!(fs::read_to_string(&path).unwrap(), text, "nor rewritten");
}

fn a_refused_sync_keeps_its_base_and_the_files_come_back_in_step() {
    let here = TempDir::new("refused-here");
    let rows = vec![
        Row::of("a.txt", "a\n"),
        Row::of("b.txt", "b\n"),
        Row::of("c.txt", "c\n"),
    ];
    let peer = Peer::start(rows.clone());
    assert_eq!(sync(peer.addr(), here.path(), None, "").code(), Some(0));
    here.write("a.txt", "a, changed here\n");
    peer.set(Vec::new());
    let refused = sync(peer.addr(), here.path(), None, "--delete");
    assert_eq!(refused.code(), Some(1), "{refused}");
    assert!(refused.stderr.contains("lists no file"), "{refused}");
    peer.set(rows);
    let back = sync(peer.addr(), here.path(), None, "");
    assert_eq!(back.code(), Some(0), "{back}");
    assert!(back.stderr.contains(" 0 conflicts"), "{back}");
    let copies: Vec<String> = entries_below(here.path())
        .into_iter()
        .filter(|n| n.contains("sync-conflict"))
        .collect();
    assert!(copies.is_empty(), "{copies:?}\n{back}");
    assert_eq!(
        fs::read_to_string(here.path().join("a.txt")).unwrap(),
        "a, changed here\n"
    );
}

fn the_peer_cannot_write_into_the_state_folder_inside_the_share() {
    let dir = TempDir::new("stfolder");
    let share = dir.path().join("share");
    let state = share.join("st");
    fs::create_dir_all(&share).unwrap();
    let forged = format!(
        "name\\tmd5\\tsize\\ttimestamp\\nmine.txt\\t{}\\t1\\t{TS}\\n",
        md5_hex(b"x")
    );
    let sync_row = Row {
        content: forged
            .replace("\\n", "\n")
            .replace("\\t", "\t")
            .into_bytes(),
        ..Row::of(&format!("st/sync/{PEER_ID}.tsv"), "")
    };
    let sync_row = Row {
        md5: md5_hex(&sync_row.content),
        size: sync_row.content.len().to_string(),
        ..sync_row
    };
    let peer = Peer::start(vec![
        Row::of("st/evil.txt", "evil\n"),
        sync_row,
        Row::of("fine.txt", "fine\n"),
    ]);
    let f = sync(peer.addr(), &share, Some(&state), "");
    assert_eq!(
        fs::read_to_string(share.join("fine.txt")).unwrap(),
        "fine\n",
        "{f}"
    );
    assert!(!state.join("evil.txt").exists(), "{f}");
    let kept = state_text(&state);
    assert!(!kept.contains("mine.txt"), "{kept}\n{f}");
    assert!(
        fake_requests_hold_no(&peer, "st/"),
        "{:?}",
        peer.fake.requests()
    );
    // Nor does a plain download write there.
    let args = [
        "--state",
        state.to_str().unwrap(),
        "-c",
        "FileDownload st/evil.txt",
    ];
    let got = run(&client_args(peer.addr(), &share, &args), "");
    assert_eq!(got.code(), Some(1), "{got}");
    assert!(got.stderr.contains("state folder"), "{got}");
    assert!(!state.join("evil.txt").exists(), "{got}");
}

fn fake_requests_hold_no(peer: &Peer, what: &str) -> bool {
    peer.fake
        .requests()
        .iter()
        .all(|r| !(r.starts_with("FileDownload") && r.contains(what)))
}

fn a_padded_mass_deletion_is_held_back() {
    let here = TempDir::new("padded-here");
    let private: Vec<Row> = (0..4)
        .map(|i| Row::of(&format!("private{i}.txt"), &format!("p{i}\n")))
        .collect();
    let padding: Vec<Row> = (0..4)
        .map(|i| Row::of(&format!("pad{i}.txt"), &format!("pad{i}\n")))
        .collect();
    let all: Vec<Row> = private.iter().chain(&padding).cloned().collect();
    let peer = Peer::start(all);
    assert_eq!(sync(peer.addr(), here.path(), None, "").code(), Some(0));
    // Four of eight files go: exactly half, which a share-only guard lets
    // through; four private files are too many all the same.
    peer.set(padding);
    let f = sync(peer.addr(), here.path(), None, "--delete");
    assert_eq!(f.code(), Some(1), "{f}");
    assert!(f.stderr.contains("deleted nothing"), "{f}");
    for i in 0..4 {
        assert!(here.path().join(format!("private{i}.txt")).exists(), "{f}");
    }
}

fn folders_that_sync_emptied_go_with_their_files() {
    let here = TempDir::new("folders-here");
    let pads: Vec<Row> = (0..6)
        .map(|i| Row::of(&format!("pad{i}.txt"), &format!("pad{i}\n")))
        .collect();
    let mut before = pads.clone();
    before.extend([
        Row::of("old/a.txt", "a\n"),
        Row::of("old/sub/b.txt", "b\n"),
        Row::of("shared/c.txt", "c\n"),
    ]);
    let peer = Peer::start(before);
    assert_eq!(sync(peer.addr(), here.path(), None, "").code(), Some(0));
    // Here: a folder emptied on purpose, and a file of this side's own
    // beside one the peer deletes.
    fs::create_dir(here.path().join("mine")).unwrap();
    here.write("shared/own.txt", "own\n");
    // There: `old` renamed to `new`, `shared/c.txt` deleted.
    let mut after = pads;
    after.extend([Row::of("new/a.txt", "a\n"), Row::of("new/sub/b.txt", "b\n")]);
    peer.set(after);
    let f = sync(peer.addr(), here.path(), None, "--delete");
    assert_eq!(f.code(), Some(0), "{f}");
    let entries = entries_below(here.path());
    assert!(
        here.path().join("new/sub/b.txt").exists(),
        "{entries:?}\n{f}"
    );
    assert!(!here.path().join("old").exists(), "{entries:?}\n{f}");
    assert!(here.path().join("mine").is_dir(), "{entries:?}");
    assert!(here.path().join("shared/own.txt").exists(), "{entries:?}");
    assert!(!here.path().join("shared/c.txt").exists(), "{entries:?}");
}

cases![
    a_forged_row_in_any_field_never_reaches_the_sync_state,
    a_sync_state_that_does_not_read_stops_the_sync_with_its_line,
    a_refused_sync_keeps_its_base_and_the_files_come_back_in_step,
    the_peer_cannot_write_into_the_state_folder_inside_the_share,
    a_padded_mass_deletion_is_held_back,
    folders_that_sync_emptied_go_with_their_files,
];
