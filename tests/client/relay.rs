//! The test relay of `support/relay.rs`, checked against the real client
//! and server: through a relay that changes nothing, listings, TCP
//! downloads and Sync work and the capture holds every byte; through one
//! that changes a reply or replays an earlier session's, the client shows
//! what the relay made of it when there is no secret, and fails with the
//! error of a changed reply when there is one.

use crate::support::relay::{self, Hooks, Kind, Relay};
use crate::support::*;

use crate::process::*;

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use p2pshare::server::Config;

/// A server on `share`'s files with the data ports of a relay, and that
/// relay in front of it doing `hooks`.
fn served_through(share: Share, hooks: Hooks) -> (Relay, Served) {
    let bound = Relay::bind(8);
    let ports = bound.data_ports();
    let served = share
        .with(|c| Config {
            data_ports: Some(ports),
            ..c
        })
        .serve();
    let relay = bound.start(served.addr(), hooks);
    (relay, served)
}

fn client_at(addr: SocketAddr, dest: &Path, commands: &[&str]) -> Finished {
    let mut extra = Vec::new();
    for c in commands {
        extra.extend(["-c", c]);
    }
    run(&client_args(addr, dest, &extra), "")
}

fn a_transparent_relay_carries_listings_downloads_and_sync_and_captures_every_byte() {
    let big = pseudo_random(3 << 20, 7);
    let odd = "odd name \u{2713} 'q'.bin";
    let (relay, _served) = served_through(
        Share::new("relay-clear")
            .file("a.txt", "hello\n")
            .file(odd, &big)
            .file("docs/b.txt", "bee\n"),
        Hooks::default(),
    );
    assert_eq!(relay.addr().ip(), relay::RELAY_IP);

    let dest = TempDir::new("relay-clear-dst");
    let out = client_at(relay.addr(), dest.path(), &["IndexGet longlist"]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stdout.contains("a.txt\t6\t"), "{out}");
    assert!(out.stdout.contains("docs/b.txt\t4\t"), "{out}");

    let out = client_at(
        relay.addr(),
        dest.path(),
        &[&format!("FileDownload TCP {}", quote(odd))],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(fs::read(dest.path().join(odd)).unwrap(), big);

    let synced = TempDir::new("relay-clear-sync");
    let out = client_at(relay.addr(), synced.path(), &["Sync"]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(fs::read(synced.path().join(odd)).unwrap(), big);
    assert_eq!(
        fs::read(synced.path().join("docs/b.txt")).unwrap(),
        b"bee\n"
    );

    // Every byte went through the relay: the requests, the replies, the
    // file's bytes on a data connection at one of the relay's ports.
    let cap = relay.capture();
    assert!(cap.control().len() >= 3, "{:?}", cap.streams.len());
    assert!(cap.contains(b"IndexGet longlist"));
    assert!(cap.contains(b"213-a.txt\t6\t"));
    assert!(cap.contains(&big));
    let (lo, hi) = relay.data_ports();
    assert!(!cap.data().is_empty());
    for s in cap.data() {
        assert!(
            matches!(s.kind, Kind::Data(p) if (lo..=hi).contains(&p)),
            "{:?}",
            s.kind
        );
    }
    // The server's lines were recorded, the greeting first.
    assert!(relay::text(&relay.server_lines(0)[0]).starts_with("220 "));
}

/// The secret of the cases that show what a MAC catches.
const SECRET: &str = "relay-self-test:five-good-words-of-secret";

/// The server of `served_through`, with `SECRET`.
fn with_secret(share: Share) -> Share {
    share.with(|c| Config {
        secret: Some(SECRET.into()),
        ..c
    })
}

fn client_with_secret(addr: SocketAddr, dest: &Path, commands: &[&str]) -> Finished {
    let mut all = vec!["--secret", SECRET];
    all.extend_from_slice(commands);
    let mut extra = Vec::new();
    for c in all.iter().skip(2) {
        extra.extend(["-c", c]);
    }
    run(&client_args(addr, dest, &[&all[..2], &extra].concat()), "")
}

fn changed_on_the_way(addr: SocketAddr) -> String {
    format!(
        "the reply from {addr} was changed on the way (its mac does not match); dropping the connection"
    )
}

/// Someone in the middle changes one byte of a table row (a.txt becomes
/// e.txt). Without a secret the client shows the changed row as the
/// peer's word (what the hook did reaches the client); with one, the
/// reply's MAC fails: exit status 1, the error, and no row shown.
fn a_changed_byte_of_a_row_goes_through_without_a_secret_and_fails_its_mac_with_one() {
    let hooks = || {
        Hooks::default().on_server_lines(|_, line| {
            if line.starts_with(b"213-a.txt\t") {
                let mut changed = line.clone();
                changed[4] = b'e';
                vec![changed]
            } else {
                vec![line]
            }
        })
    };
    let share = |tag| {
        Share::new(tag)
            .file("a.txt", "hello\n")
            .file("b.txt", "bee\n")
    };
    let (relay, _served) = served_through(share("relay-byte"), hooks());
    let dest = TempDir::new("relay-byte-dst");
    let out = client_at(relay.addr(), dest.path(), &["IndexGet longlist"]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stdout.contains("\ne.txt\t6\t"), "{out}");
    assert!(!out.stdout.contains("\na.txt\t"), "{out}");
    assert!(relay.capture().contains(b"213-a.txt\t6\t"));

    let (relay, _served) = served_through(with_secret(share("relay-byte-mac")), hooks());
    let out = client_with_secret(relay.addr(), dest.path(), &["IndexGet longlist"]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains(&changed_on_the_way(relay.addr())),
        "{out}"
    );
    assert!(out.stdout.is_empty(), "{out}");
    // What the server sent was the real row.
    assert!(relay.capture().contains(b"213-a.txt\t6\t"));
}

/// Someone in the middle records a session and plays its replies into a
/// later one, after the share changed. Without a secret the client shows
/// the old listing as the new one; with one, the old `230` proves the
/// secret for another client nonce, and the old listing's MAC is another
/// session's: the later session fails either way.
fn a_replayed_session_goes_through_without_a_secret_and_fails_with_one() {
    for secret in [false, true] {
        let share = Share::new("relay-replay").file("a.txt", "hello\n");
        let share = if secret { with_secret(share) } else { share };
        let (relay, served) = served_through(share, Hooks::default());
        let dest = TempDir::new("relay-replay-dst");
        let ask = |relay: &Relay| {
            if secret {
                client_with_secret(relay.addr(), dest.path(), &["IndexGet longlist"])
            } else {
                client_at(relay.addr(), dest.path(), &["IndexGet longlist"])
            }
        };
        let first = ask(&relay);
        assert_eq!(first.code(), Some(0), "{first}");
        let record = relay.server_lines(0);
        assert!(record.len() >= 3, "{record:?}");

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
        for from in [1, 2] {
            relay.set_hooks(Hooks::default().on_server_lines(relay::replay(record.clone(), from)));
            let second = ask(&relay);
            if !secret {
                // The old listing, without the new file, exit status 0.
                assert_eq!(second.code(), Some(0), "{second}");
                assert_eq!(second.stdout, first.stdout, "{second}");
                continue;
            }
            assert_eq!(second.code(), Some(1), "from {from}: {second}");
            let said = if from == 1 {
                format!("the peer at {} does not know the secret", relay.addr())
            } else {
                changed_on_the_way(relay.addr())
            };
            assert!(second.stderr.contains(&said), "from {from}: {second}");
            assert!(second.stdout.is_empty(), "from {from}: {second}");
        }
        assert!(relay.capture().contains(b"213-new.txt\t4\t"));
    }
}

/// The line hooks add, hold and drop lines, and the data hook changes
/// bytes: the client's one NOOP reaches the server twice, the first reply
/// is held until the second comes and goes on in its place, and a
/// download whose bytes were changed fails its md5 check.
fn hooks_add_hold_drop_and_change_what_they_carry() {
    let mut held: Option<Vec<u8>> = None;
    let hooks = Hooks::default()
        .on_client_lines(|_, line| {
            if relay::text(&line) == "NOOP" {
                vec![line.clone(), line]
            } else {
                vec![line]
            }
        })
        .on_server_lines(move |_, line| {
            if !line.starts_with(b"200 ") {
                return vec![line];
            }
            match held.take() {
                None => {
                    held = Some(line);
                    vec![]
                }
                Some(first) => vec![first],
            }
        })
        .on_data(|at, bytes| {
            if at.dir == relay::Dir::ToClient {
                for b in bytes.iter_mut() {
                    *b ^= 1;
                }
            }
        });
    let (relay, served) = served_through(
        Share::new("relay-hooks").file("f.bin", pseudo_random(200_000, 3)),
        hooks,
    );
    let dest = TempDir::new("relay-hooks-dst");
    let out = client_at(relay.addr(), dest.path(), &["NOOP", "FileDownload f.bin"]);
    // The md5 check catches the changed bytes (every try's).
    assert_ne!(out.code(), Some(0), "{out}");
    assert!(!dest.path().join("f.bin").exists(), "{out}");
    let noops = fs::read_to_string(served.path().join(".p2pshare/history.tsv"))
        .unwrap()
        .matches("\tNOOP\t200")
        .count();
    assert_eq!(noops, 2);
}

/// Dropping the relay ends its threads (the drop joins them), closes
/// the connections it carried and gives its ports back.
fn dropping_the_relay_closes_its_connections_and_frees_its_ports() {
    let (relay, served) = served_through(
        Share::new("relay-drop").file("a.txt", "hello\n"),
        Hooks::default(),
    );
    let addr = relay.addr();
    let (lo, hi) = relay.data_ports();
    let mut c = Conn::open(addr);
    let (_, bytes, done) = download(&mut c, addr, "a.txt");
    assert_eq!((bytes.as_slice(), done.code), (&b"hello\n"[..], 226));
    c.assert_alive();
    drop(relay);
    assert_eq!(c.read_line(), None);
    assert!(std::net::TcpListener::bind(addr).is_ok());
    for p in lo..=hi {
        assert!(
            std::net::TcpListener::bind((relay::RELAY_IP, p)).is_ok(),
            "{p}"
        );
    }
    // The server goes on.
    served.conn().assert_alive();
}

cases![
    a_transparent_relay_carries_listings_downloads_and_sync_and_captures_every_byte,
    a_changed_byte_of_a_row_goes_through_without_a_secret_and_fails_its_mac_with_one,
    a_replayed_session_goes_through_without_a_secret_and_fails_with_one,
    hooks_add_hold_drop_and_change_what_they_carry,
    dropping_the_relay_closes_its_connections_and_frees_its_ports,
];
