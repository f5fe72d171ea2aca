//! The thin client against a peer it must not trust: the real binary
//! against real servers whose shares are arranged to trip it, and against
//! small scripted fake servers (tests/support/fake.rs) that send what a
//! real server never would.

use crate::support::*;

use crate::process::*;

use crate::fake;
use crate::fake::FakeServer;

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

fn client(addr: SocketAddr, dest: &Path, args: &[&str]) -> Finished {
    run(&client_args(addr, dest, args), "")
}

// ---------------------------------------------------------------------
// Nothing lands outside the share
// ---------------------------------------------------------------------

fn a_download_never_writes_through_a_link_that_leads_out_of_the_share() {
    let srv = TempDir::new("hostile-link-srv");
    let dest = TempDir::new("hostile-link-dst");
    let outside = TempDir::new("hostile-link-out");
    // The peer shares a folder named like a link in the client's share.
    srv.write("link/evil.txt", "evil\n");
    srv.write("link/victim.txt", "replaced\n");
    srv.write("link/deeper/new.txt", "new\n");
    srv.write("fine/ok.txt", "ok\n");
    srv.write("fine/target.txt", "the peer's target\n");
    srv.write("inside/x.txt", "x\n");
    let server = start(srv.path());
    outside.write("victim.txt", "precious\n");
    outside.write("target.txt", "outside target\n");
    symlink(outside.path(), dest.path().join("link")).unwrap();
    // A link to a folder inside the share is followed, as the server does.
    fs::create_dir(dest.path().join("real")).unwrap();
    symlink(dest.path().join("real"), dest.path().join("inside")).unwrap();
    // A link at a file's final name is never written through.
    fs::create_dir(dest.path().join("fine")).unwrap();
    symlink(
        outside.path().join("target.txt"),
        dest.path().join("fine/target.txt"),
    )
    .unwrap();

    for extra in [&[][..], &["--overwrite"][..]] {
        let mut args = extra.to_vec();
        args.extend(["-c", "FileDownload \"**\""]);
        let out = client(server.addr(), dest.path(), &args);
        assert_eq!(out.code(), Some(1), "{out}");
        assert_eq!(
            entries_below(outside.path()),
            ["target.txt", "victim.txt"],
            "{out}"
        );
        assert_eq!(
            fs::read(outside.path().join("victim.txt")).unwrap(),
            b"precious\n"
        );
        assert_eq!(
            fs::read(outside.path().join("target.txt")).unwrap(),
            b"outside target\n"
        );
        for name in ["link/evil.txt", "link/victim.txt", "link/deeper/new.txt"] {
            assert!(
                out.stderr.contains(name) && out.stderr.contains("outside the share"),
                "{name}: {out}"
            );
        }
        assert_eq!(fs::read(dest.path().join("fine/ok.txt")).unwrap(), b"ok\n");
        assert_eq!(fs::read(dest.path().join("real/x.txt")).unwrap(), b"x\n");
    }
    // With --overwrite the link at the final name was replaced by the
    // peer's file, inside the share; the file it pointed at is untouched.
    let target = dest.path().join("fine/target.txt");
    assert!(!fs::symlink_metadata(&target)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(&target).unwrap(), b"the peer's target\n");
}

// ---------------------------------------------------------------------
// --timeout bounds every wait on the peer
// ---------------------------------------------------------------------

/// Runs the client with `--timeout 500ms` and checks that it gave up within
/// a few seconds, naming what it waited for.
fn gives_up_in_time(peer: &FakeServer, command: &str, said: &str, code: i32) -> Finished {
    let dest = TempDir::new("hostile-timeout-dst");
    let began = Instant::now();
    let out = client(
        peer.addr,
        dest.path(),
        &["--timeout", "500ms", "-c", command],
    );
    let took = began.elapsed();
    assert!(took < Duration::from_secs(8), "took {took:?}: {out}");
    assert_eq!(out.code(), Some(code), "{out}");
    assert!(out.stderr.contains(said), "expected {said:?}: {out}");
    out
}

fn a_peer_that_never_greets_is_given_up_on_after_the_timeout() {
    let mute = FakeServer::start(|s| s.silence());
    let said = format!("no greeting from {} within 500ms", mute.addr);
    gives_up_in_time(&mute, "NOOP", &said, 2);
}

fn a_peer_that_never_answers_is_given_up_on_after_the_timeout() {
    let mute = FakeServer::start(|s| {
        s.greet()?;
        s.silence()
    });
    let said = format!("no reply from {} within 500ms", mute.addr);
    gives_up_in_time(&mute, "NOOP", &said, 1);
    gives_up_in_time(&mute, "FileDownload a.txt", &said, 1);
}

fn a_stalled_data_connection_is_given_up_on_after_the_timeout() {
    let content = vec![7u8; 100_000];
    let stalling = {
        let content = content.clone();
        FakeServer::start(move |s| {
            s.greet()?;
            s.until("FileDownload")?;
            s.announce("a.bin", &content)?;
            s.data()?.write_all(&content[..10_000])?;
            s.silence()
        })
    };
    let out = gives_up_in_time(&stalling, "FileDownload a.bin", "stalled", 1);
    assert!(out.stderr.contains("within 500ms"), "{out}");
}

fn a_silent_udp_sender_is_given_up_on_after_the_timeout() {
    // A UDP data port that takes the receiver's datagrams and never
    // answers them.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = udp.local_addr().unwrap().port();
    let silent = FakeServer::start(move |s| {
        s.greet()?;
        s.until("FileDownload")?;
        s.say(&format!(
            "150-a.bin\t1000\t2026-01-02T03:04:05Z\t{:x}\n150 DATA udp port={port} token={}\n",
            md5::compute([0u8; 1000]),
            fake::TOKEN
        ))?;
        s.silence()
    });
    let out = gives_up_in_time(&silent, "FileDownload UDP a.bin", "within 500ms", 1);
    assert!(out.stderr.contains("UDP"), "{out}");
    drop(udp);
}

/// Sends `text` one byte every `every`, then `filler` the same way for as
/// long as the client listens (at most a minute): a peer that is never
/// quite silent.
fn drip(s: &mut fake::Session, text: &str, filler: &str, every: Duration) -> std::io::Result<()> {
    let end = Instant::now() + Duration::from_secs(60);
    for b in text.bytes().chain(filler.bytes().cycle()) {
        if Instant::now() >= end {
            break;
        }
        s.out.write_all(&[b])?;
        std::thread::sleep(every);
    }
    Ok(())
}

/// Runs the client with `--timeout 2s` and checks that it gave up within
/// three times that (a loaded machine is slow to start a process), with
/// `code` and a message holding `said`. A client still waiting then is
/// killed, and the test fails.
fn gives_up_on_a_drip(peer: &FakeServer, command: &str, said: &str, code: i32) -> Finished {
    let dest = TempDir::new("hostile-drip-dst");
    let began = Instant::now();
    let mut p = Proc::spawn(&client_args(
        peer.addr,
        dest.path(),
        &["--timeout", "2s", "-c", command],
    ));
    let ended = wait_until(Duration::from_secs(6), || !p.running());
    let took = began.elapsed();
    assert!(ended, "still waiting after {took:?}: {}", p.dump());
    let out = p.finish();
    println!("gave up on a dripping peer after {took:?}");
    assert_eq!(out.code(), Some(code), "{out}");
    assert!(out.stderr.contains(said), "expected {said:?}: {out}");
    out
}

fn a_greeting_dripped_a_byte_at_a_time_is_given_up_on_after_the_timeout() {
    let dripping = FakeServer::start(|s| {
        drip(
            s,
            "220 fake peer ready",
            " and",
            Duration::from_millis(1500),
        )
    });
    let said = format!("no greeting from {} within 2s", dripping.addr);
    gives_up_on_a_drip(&dripping, "NOOP", &said, 2);
}

fn a_table_dripped_a_byte_at_a_time_is_given_up_on_after_the_timeout() {
    // Rows of a real length: no line comes whole within the timeout.
    let dripping = FakeServer::start(|s| {
        s.greet()?;
        s.until("IndexGet")?;
        s.say("213-name\tsize\ttimestamp\ttype\n")?;
        let row = "213-a.txt\t5\t2026-01-02T03:04:05Z\ttext/plain\n";
        drip(s, "", row, Duration::from_millis(200))
    });
    let said = format!(
        "a reply line from {} did not come whole within 2s",
        dripping.addr
    );
    gives_up_on_a_drip(&dripping, "IndexGet longlist", &said, 1);
    // Short lines, each whole in time: the whole reply is not.
    let dripping = FakeServer::start(|s| {
        s.greet()?;
        s.until("NOOP")?;
        drip(s, "", "200-x\n", Duration::from_millis(200))
    });
    let said = format!(
        "a reply from {} did not come whole in time (2s",
        dripping.addr
    );
    gives_up_on_a_drip(&dripping, "NOOP", &said, 1);
}

fn the_client_reads_a_greeting_ending_with_lf_or_crlf() {
    for end in ["\n", "\r\n"] {
        let peer = FakeServer::start(move |s| {
            s.say(&format!("220 fake peer ready{end}"))?;
            s.until("NOOP")?;
            s.say("200 ok\r\n")?;
            s.until("QUIT")?;
            Ok(())
        });
        let dest = TempDir::new("hostile-greeting-end");
        let out = client(peer.addr, dest.path(), &["-c", "NOOP"]);
        assert_eq!(out.code(), Some(0), "{end:?}: {out}");
        assert_eq!(out.stdout, "ok\n", "{end:?}: {out}");
    }
}

// ---------------------------------------------------------------------
// Replies are bounded
// ---------------------------------------------------------------------

/// Bytes the endless fake table sends at most (beyond the client's bound
/// of 256 MiB), so that a client without a bound is not grown by much
/// more than that before the test ends.
const ENDLESS_CAP: usize = 320 << 20;

/// Writes table rows (`213-...`) of 200 KiB each until the client stops
/// reading or [`ENDLESS_CAP`] bytes went out; returns how many went out.
fn endless_rows(s: &mut fake::Session, name: &str) -> usize {
    let row = format!("213-{name}\t1\t{}\ttext/plain\n", "t".repeat(200 << 10));
    let chunk = row.repeat(16);
    let mut sent = 0;
    while sent < ENDLESS_CAP {
        if s.out.write_all(chunk.as_bytes()).is_err() {
            break;
        }
        sent += chunk.len();
    }
    sent
}

fn an_endless_table_fails_the_command_with_the_bound_and_memory_stays_bounded() {
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let endless = {
        let sent = sent.clone();
        FakeServer::start(move |s| {
            s.greet()?;
            while let Some(line) = s.request()? {
                if line.starts_with("FileHash verify") {
                    s.say("550 no such file or not shared\n")?;
                } else if line == "NOOP" {
                    s.say("200 ok\n")?;
                } else if line == "QUIT" {
                    return s.say("221 bye\n");
                } else if line.starts_with("IndexGet regex") {
                    s.say("213-name\tsize\ttimestamp\ttype\n")?;
                    let n = endless_rows(s, "f.txt");
                    sent.store(n, std::sync::atomic::Ordering::SeqCst);
                    s.silence()?;
                    return Ok(());
                }
            }
            Ok(())
        })
    };
    let dest = TempDir::new("hostile-endless-dst");
    let out = client(
        endless.addr,
        dest.path(),
        &[
            "--timeout",
            "2s",
            "-c",
            "FileDownload \"*.txt\"",
            "-c",
            "NOOP",
        ],
    );
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains("longer than the client takes") && out.stderr.contains("256 MiB"),
        "{out}"
    );
    // The client stopped reading at its bound and went on with the next
    // command on a new connection.
    assert!(
        wait_until(Duration::from_secs(5), || sent
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0),
        "{out}"
    );
    assert!(
        sent.load(std::sync::atomic::Ordering::SeqCst) < ENDLESS_CAP,
        "{out}"
    );
    assert!(entries_below(dest.path()).is_empty(), "{out}");
    assert_eq!(out.stdout, "ok\n", "{out}");
}

// ---------------------------------------------------------------------
// Each reply belongs to its request
// ---------------------------------------------------------------------

fn a_150_for_another_file_is_never_stored_and_stops_the_command() {
    // Asked for a.txt, the peer announces and sends b.txt.
    let liar = FakeServer::start(|s| {
        s.greet()?;
        while let Some(line) = s.request()? {
            if line.starts_with("FileDownload") {
                s.announce("b.txt", b"the content of b\n")?;
                s.data()?.write_all(b"the content of b\n")?;
                s.say("226 b.txt 17 bytes\n")?;
            } else if line == "NOOP" {
                s.say("200 ok\n")?;
            } else if line == "QUIT" {
                return s.say("221 bye\n");
            }
        }
        Ok(())
    });
    let dest = TempDir::new("hostile-liar-dst");
    let out = client(
        liar.addr,
        dest.path(),
        &["-c", "FileDownload a.txt", "-c", "NOOP"],
    );
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains("a.txt")
            && out.stderr.contains("b.txt")
            && out.stderr.contains("out of step"),
        "{out}"
    );
    assert!(entries_below(dest.path()).is_empty(), "{out}");
    // The next command runs on a new connection.
    assert_eq!(out.stdout, "ok\n", "{out}");
    assert_eq!(liar.sessions(), 2, "{out}");
}

fn replies_shifted_by_one_never_put_a_file_under_another_name() {
    // The peer answers every FileDownload with an extra 500 first, as a
    // server that read the request as two lines would.
    let files: Vec<(String, Vec<u8>)> = (1..=4)
        .map(|i| {
            (
                format!("f{i}.txt"),
                format!("content of file{i}\n").into_bytes(),
            )
        })
        .collect();
    let shifting = {
        let files = files.clone();
        FakeServer::start(move |s| {
            s.greet()?;
            while let Some(line) = s.request()? {
                if line.starts_with("IndexGet regex") {
                    let mut t = String::from("213-name\tsize\ttimestamp\ttype\n");
                    for (name, c) in &files {
                        t += &format!(
                            "213-{name}\t{}\t2026-01-02T03:04:05Z\ttext/plain\n",
                            c.len()
                        );
                    }
                    t += &format!("213 {} files\n", files.len());
                    s.say(&t)?;
                } else if let Some(rest) = line.strip_prefix("FileDownload TCP ") {
                    s.say("500 unknown command 'b.txt'\n")?;
                    let (name, c) = files.iter().find(|(n, _)| n == rest).unwrap();
                    s.announce(name, c)?;
                    s.data()?.write_all(c)?;
                    s.say(&format!("226 {name} {} bytes\n", c.len()))?;
                } else if line.starts_with("FileHash verify") {
                    s.say("550 no such file or not shared\n")?;
                } else if line == "QUIT" {
                    return s.say("221 bye\n");
                }
            }
            Ok(())
        })
    };
    let dest = TempDir::new("hostile-shift-dst");
    let out = client(shifting.addr, dest.path(), &["-c", "FileDownload \"f*\""]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("out of step"), "{out}");
    // Whatever landed, landed under its own name with its own content.
    for e in entries_below(dest.path()) {
        let (_, content) = files
            .iter()
            .find(|(n, _)| *n == e)
            .unwrap_or_else(|| panic!("{e}: {out}"));
        assert_eq!(&fs::read(dest.path().join(&e)).unwrap(), content, "{e}");
    }
}

// ---------------------------------------------------------------------
// Retries start at once
// ---------------------------------------------------------------------

/// How long the fakes below wait for a data connection before they answer
/// 425, where a real server waits 30 s: a client that waits for one gets
/// no further before this much time has passed.
const FAKE_DATA_WAIT: Duration = Duration::from_secs(3);

/// Sends every byte, then 226.
fn send_all(s: &mut fake::Session, bytes: &[u8]) -> std::io::Result<()> {
    s.data()?.write_all(bytes)?;
    s.say(&format!("226 sent {} bytes\n", bytes.len()))
}

fn after_a_451_the_retry_starts_at_once_on_a_new_data_connection() {
    // The first try: every byte, then 451 and the data connection closed,
    // as a server whose file changed while it was sent.
    let peer = serving_any(|n, s, bytes| {
        if n == 0 {
            s.data()?.write_all(bytes)?;
            s.drop_data();
            s.say("451 c.bin changed while it was being sent; try again\n")
        } else {
            send_all(s, bytes)
        }
    });
    let dest = TempDir::new("hostile-451-dst");
    let began = Instant::now();
    let out = client(peer.addr, dest.path(), &["-c", "FileDownload c.bin"]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(
        began.elapsed() < FAKE_DATA_WAIT,
        "{:?}: {out}",
        began.elapsed()
    );
    assert!(!out.stderr.contains("425"), "{out}");
    let asked: Vec<String> = peer
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("FileDownload"))
        .collect();
    assert_eq!(asked.len(), 2, "{asked:?}\n{out}");
    assert!(fs::read(dest.path().join("c.bin")).unwrap() == content_of("c.bin"));
}

/// A fake serving any `*.bin` name with content of its own, each transfer
/// as `plan(n, session, bytes)` sends it (n counts the downloads of the
/// session); it waits [`FAKE_DATA_WAIT`] for a data connection, then
/// answers 425.
fn serving_any(
    plan: impl Fn(usize, &mut fake::Session, &[u8]) -> std::io::Result<()> + Send + Sync + 'static,
) -> FakeServer {
    FakeServer::start(move |s| {
        s.greet()?;
        let mut n = 0;
        while let Some(line) = s.until("FileDownload")? {
            let words: Vec<&str> = line.split(' ').collect();
            let (name, offset) = match words.as_slice() {
                [_, _, name] => (name.to_string(), 0),
                [_, _, name, offset] => (name.to_string(), offset.parse().unwrap()),
                _ => return s.say("501 the fake peer does not know that\n"),
            };
            let content = content_of(&name);
            s.announce(&name, &content)?;
            if s.data_within(FAKE_DATA_WAIT).is_err() {
                s.say("425 no data connection within 3s\n")?;
            } else {
                plan(n, s, &content[offset..])?;
            }
            n += 1;
        }
        Ok(())
    })
}

/// What [`serving_any`] serves under `name`.
fn content_of(name: &str) -> Vec<u8> {
    pseudo_random(40_000 + name.len() * 1000, name.len() as u64)
}

fn a_data_connection_the_peer_closed_between_transfers_is_not_reused() {
    // After each transfer the peer closes the data connection (as a peer
    // that releases an idle data port does), then says 226.
    let peer = serving_any(|_, s, bytes| {
        s.data()?.write_all(bytes)?;
        s.drop_data();
        s.say(&format!("226 sent {} bytes\n", bytes.len()))
    });
    let dest = TempDir::new("hostile-closed-data-dst");
    let began = Instant::now();
    let out = client(
        peer.addr,
        dest.path(),
        &["-c", "FileDownload a.bin", "-c", "FileDownload bb.bin"],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(
        began.elapsed() < FAKE_DATA_WAIT,
        "{:?}: {out}",
        began.elapsed()
    );
    assert!(!out.stderr.contains("425"), "{out}");
    for name in ["a.bin", "bb.bin"] {
        assert!(fs::read(dest.path().join(name)).unwrap() == content_of(name));
    }
}

fn a_short_stream_followed_by_226_is_noticed_and_retried_at_once() {
    // The first transfer sends half the bytes, says 226 and keeps the data
    // connection open; the next one is whole.
    let peer = serving_any(|n, s, bytes| {
        let bytes = if n == 0 {
            &bytes[..bytes.len() / 2]
        } else {
            bytes
        };
        s.data()?.write_all(bytes)?;
        s.say(&format!("226 sent {} bytes\n", bytes.len()))
    });
    let dest = TempDir::new("hostile-short-dst");
    let began = Instant::now();
    let out = client(
        peer.addr,
        dest.path(),
        &["--timeout", "500ms", "-c", "FileDownload short.bin"],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "{:?}: {out}",
        began.elapsed()
    );
    assert!(out.stderr.contains("226"), "the retry is told: {out}");
    assert!(fs::read(dest.path().join("short.bin")).unwrap() == content_of("short.bin"));
    // The retry asked only for the rest.
    let asked: Vec<String> = peer
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("FileDownload"))
        .collect();
    let half = content_of("short.bin").len() / 2;
    assert_eq!(
        asked,
        [
            "FileDownload TCP short.bin".to_string(),
            format!("FileDownload TCP short.bin {half}")
        ],
        "{out}"
    );
}

fn zero_bytes_need_no_data_connection_from_a_peer_that_answers_at_once() {
    // A peer that says 226 for zero bytes without waiting for a data
    // connection: the client must neither wait nor connect.
    let connected = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let peer = {
        let connected = connected.clone();
        FakeServer::start(move |s| {
            s.greet()?;
            s.until("FileDownload")?;
            s.announce("empty.txt", b"")?;
            s.say("226 empty.txt 0 bytes\n")?;
            s.until("QUIT")?;
            connected.store(
                s.data_connection_waiting(),
                std::sync::atomic::Ordering::SeqCst,
            );
            s.say("221 bye\n")
        })
    };
    let dest = TempDir::new("hostile-zero-dst");
    let began = Instant::now();
    let out = client(peer.addr, dest.path(), &["-c", "FileDownload empty.txt"]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(fs::read(dest.path().join("empty.txt")).unwrap(), b"");
    assert!(
        wait_until(Duration::from_secs(5), || peer
            .requests()
            .contains(&"QUIT".to_string())),
        "{out}"
    );
    assert!(wait_until(Duration::from_secs(5), || !connected
        .load(std::sync::atomic::Ordering::SeqCst)));
}

// ---------------------------------------------------------------------
// A connection that drops in the middle of a command
// ---------------------------------------------------------------------

fn a_listing_cut_off_by_a_drop_is_sent_again_on_a_new_connection() {
    // The first session closes at the request, before a word of reply.
    let flaky = FakeServer::start(|s| {
        s.greet()?;
        let first = s.n == 0;
        while let Some(line) = s.request()? {
            if first {
                return Ok(());
            }
            match line.as_str() {
                "IndexGet longlist" => {
                    s.say("213-name\tsize\ttimestamp\ttype\n213-x.txt\t1\t2026-01-02T03:04:05Z\ttext/plain\n213 1 files\n")?
                }
                "QUIT" => return s.say("221 bye\n"),
                _ => s.say("500 no\n")?,
            }
        }
        Ok(())
    });
    let dest = TempDir::new("hostile-resend-dst");
    let out = client(flaky.addr, dest.path(), &["-c", "IndexGet longlist"]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stdout.contains("x.txt\t1\t"), "{out}");
    assert_eq!(flaky.sessions(), 2, "{out}");
}

fn a_download_cut_off_by_a_drop_goes_on_with_what_is_left_on_a_new_connection() {
    // The first session sends half of the file and dies.
    let content = pseudo_random(200_000, 91);
    let dying = {
        let content = content.clone();
        FakeServer::start(move |s| {
            s.greet()?;
            while let Some(line) = s.until("FileDownload")? {
                let offset: usize = line.split(' ').nth(3).map_or(0, |o| o.parse().unwrap());
                s.announce("half.bin", &content)?;
                if s.n == 0 {
                    s.data()?.write_all(&content[..100_000])?;
                    return Ok(());
                }
                s.data()?.write_all(&content[offset..])?;
                s.say("226 ok\n")?;
            }
            Ok(())
        })
    };
    let dest = TempDir::new("hostile-resend-dl-dst");
    let out = client(dying.addr, dest.path(), &["-c", "FileDownload half.bin"]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(fs::read(dest.path().join("half.bin")).unwrap() == content);
    let asked: Vec<String> = dying
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("FileDownload"))
        .collect();
    assert_eq!(
        asked,
        [
            "FileDownload TCP half.bin",
            "FileDownload TCP half.bin 100000"
        ],
        "{out}"
    );
}

fn an_upload_cut_off_by_a_drop_is_never_sent_again() {
    let took = FakeServer::start(|s| {
        s.greet()?;
        // The request arrives, then the connection drops.
        s.until("FileUpload")?;
        Ok(())
    });
    let dest = TempDir::new("hostile-upload-drop");
    dest.write("up.txt", "upload me\n");
    let out = client(took.addr, dest.path(), &["-c", "FileUpload up.txt"]);
    assert_eq!(out.code(), Some(1), "{out}");
    let uploads = took
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("FileUpload"))
        .count();
    assert_eq!(uploads, 1, "{out}");
}

// ---------------------------------------------------------------------
// No escape sequence of the peer reaches the terminal
// ---------------------------------------------------------------------

/// Characters a terminal acts on: ESC, BEL, the C1 CSI, a bidi override.
fn has_raw_controls(text: &str) -> bool {
    text.chars()
        .any(|c| matches!(c, '\u{1b}' | '\u{7}' | '\u{9b}' | '\u{202e}' | '\r'))
}

/// A name with a title change, a screen clear, a bell, a C1 CSI and a
/// bidi override in it.
const EVIL: &str = "evil\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{202e}txt.exe";

/// [`EVIL`] as the client shows it, and as its console reads it back.
const EVIL_SHOWN: &str = "evil\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{9b}31m\\u{202e}txt.exe";

/// A peer whose names and texts carry escape sequences ([`EVIL`]).
fn escaping_peer() -> FakeServer {
    FakeServer::start(|s| {
        s.say(&format!("220 welcome {EVIL}\n"))?;
        while let Some(line) = s.request()? {
            if line == "IndexGet longlist" {
                s.say(&format!(
                    "213-name\tsize\ttimestamp\ttype\n213-{EVIL}\t4\t2026-01-02T03:04:05Z\ttext/{EVIL}\n213 1 files {EVIL}\n"
                ))?;
            } else if line == format!("FileHash verify {EVIL}") {
                s.say(&format!(
                    "213-name\tmd5\ttimestamp\n213-{EVIL}\t{:x}\t2026-01-02T03:04:05Z\n213 1 files\n",
                    md5::compute(b"evil")
                ))?;
            } else if line.starts_with("FileHash verify") {
                s.say(&format!("550 no such file or not shared: {EVIL}\n"))?;
            } else if line.starts_with("FileDownload") {
                s.announce(EVIL, b"evil")?;
                s.data()?.write_all(b"evil")?;
                s.say(&format!("226 {EVIL} 4 bytes\n"))?;
            } else if line == "NOOP" {
                s.say(&format!("200 ok {EVIL}\n"))?;
            } else if line == "QUIT" {
                return s.say("221 bye\n");
            } else {
                s.say(&format!("500 unknown command {EVIL}\n"))?;
            }
        }
        Ok(())
    })
}

fn names_and_texts_from_the_peer_never_reach_a_pipe_with_raw_escapes() {
    let peer = escaping_peer();
    let dest = TempDir::new("hostile-esc-dst");
    let evil_word = EVIL_SHOWN;
    let out = client(
        peer.addr,
        dest.path(),
        &[
            "-c",
            "IndexGet longlist",
            "-c",
            "NOOP",
            "-c",
            "FileHash verify x",
            "-c",
            &format!("FileDownload {evil_word}"),
            "-c",
            "Bogus",
        ],
    );
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(!has_raw_controls(&out.stdout), "{:?}", out.stdout);
    assert!(!has_raw_controls(&out.stderr), "{:?}", out.stderr);
    // What is shown is the `\u{HEX}` form the console reads back: the
    // download of the word shown fetched that file, under its own name.
    assert!(out.stdout.contains(evil_word), "{out}");
    let stored = EVIL;
    let got = fs::read(dest.path().join(stored)).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(got, b"evil", "{out}");
    assert!(
        peer.requests()
            .contains(&format!("FileDownload TCP {stored}")),
        "{:?}",
        peer.requests()
    );
}

fn names_and_texts_from_the_peer_never_reach_a_terminal_with_raw_escapes() {
    assert!(
        terminal_available(),
        "`script` cannot run the client at a terminal here"
    );
    let peer = escaping_peer();
    let dest = TempDir::new("hostile-esc-tty-dst");
    let download = format!("FileDownload {EVIL_SHOWN}");
    let args = client_args(
        peer.addr,
        dest.path(),
        &[
            "-c",
            "IndexGet longlist",
            "-c",
            "NOOP",
            "-c",
            "FileHash verify x",
            "-c",
            &download,
        ],
    );
    let out = at_a_terminal(&args);
    // The client's own progress-bar redraw is the only escape it writes
    // itself; it draws none for a transfer this short.
    assert!(
        !has_raw_controls(&out.stdout.replace("\r\n", "\n")),
        "{:?}",
        out.stdout
    );
    assert!(out.stdout.contains(EVIL_SHOWN), "{out}");
    let got = fs::read(dest.path().join(EVIL)).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(got, b"evil", "{out}");
}

cases![
    a_download_never_writes_through_a_link_that_leads_out_of_the_share,
    a_peer_that_never_greets_is_given_up_on_after_the_timeout,
    a_peer_that_never_answers_is_given_up_on_after_the_timeout,
    a_stalled_data_connection_is_given_up_on_after_the_timeout,
    a_silent_udp_sender_is_given_up_on_after_the_timeout,
    a_greeting_dripped_a_byte_at_a_time_is_given_up_on_after_the_timeout,
    a_table_dripped_a_byte_at_a_time_is_given_up_on_after_the_timeout,
    the_client_reads_a_greeting_ending_with_lf_or_crlf,
    an_endless_table_fails_the_command_with_the_bound_and_memory_stays_bounded,
    a_150_for_another_file_is_never_stored_and_stops_the_command,
    replies_shifted_by_one_never_put_a_file_under_another_name,
    after_a_451_the_retry_starts_at_once_on_a_new_data_connection,
    a_data_connection_the_peer_closed_between_transfers_is_not_reused,
    a_short_stream_followed_by_226_is_noticed_and_retried_at_once,
    zero_bytes_need_no_data_connection_from_a_peer_that_answers_at_once,
    a_listing_cut_off_by_a_drop_is_sent_again_on_a_new_connection,
    a_download_cut_off_by_a_drop_goes_on_with_what_is_left_on_a_new_connection,
    an_upload_cut_off_by_a_drop_is_never_sent_again,
    names_and_texts_from_the_peer_never_reach_a_pipe_with_raw_escapes,
    #[ignore = "needs a terminal: `script` (util-linux)"]
    names_and_texts_from_the_peer_never_reach_a_terminal_with_raw_escapes,
];
