//! The client's challenge-response login and the MACs after it, against
//! scripted fake peers (tests/support/fake.rs) that compute the server's
//! side with `p2pshare::proof`: one that does not know the secret, one
//! without a nonce, one that changes a reply, one that checks every
//! request's MAC.

use crate::support::*;

use crate::process::*;

use crate::fake::{FakeServer, Session};

use p2pshare::proof::{self, Mac, Nonce, Proofs, SessionKey};

use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

const SECRET: &str = "correct horse battery staple";

/// A share id for the greetings.
const SHARE_ID: &str = "5d41402abc4b2a76b9719d911017c592";

fn client(addr: SocketAddr, dest: &Path, args: &[&str]) -> Finished {
    let mut all = vec!["--secret", SECRET];
    all.extend_from_slice(args);
    run(&client_args(addr, dest, &all), "")
}

/// The server's side of one authenticated session, as a fake computes
/// it: the requests' MACs checked, the replies' MACs made.
struct Sealed {
    key: SessionKey,
    /// The number of the last request read.
    n: u64,
    /// The number of the next reply.
    r: u64,
}

/// Greets with a nonce that is new for every session.
fn greet(s: &mut Session) -> io::Result<Nonce> {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(s.n as u64 + 1).to_be_bytes());
    b[8..].copy_from_slice(&std::process::id().to_be_bytes().repeat(2));
    let sn = Nonce(b);
    s.say(&format!(
        "220 p2pshare 0.1.0 ready; share-id={SHARE_ID}; nonce={sn}; AUTH required\r\n"
    ))?;
    Ok(sn)
}

/// Reads `AUTH PROOF CN CP`, checks the client's proof under `secret`,
/// and answers with the server's proof (or with `proof`, when given, in
/// its place) and reply 0's MAC. Also returns the client's nonce.
fn login(
    s: &mut Session,
    sn: Nonce,
    secret: &str,
    proof: Option<&str>,
) -> io::Result<(Sealed, Nonce)> {
    let line = s.request()?.ok_or_else(|| io::Error::other("no login"))?;
    let words: Vec<&str> = line.split(' ').collect();
    let [auth, form, cn, cp] = words.as_slice() else {
        return Err(io::Error::other(format!("not a proof login: {line}")));
    };
    let cn = Nonce::from_hex(cn).filter(|_| *auth == "AUTH" && *form == "PROOF");
    let cn = cn.ok_or_else(|| io::Error::other(format!("not a proof login: {line}")))?;
    let p = Proofs::new(secret.as_bytes(), &sn, &cn);
    let mut sealed = Sealed {
        key: p.key,
        n: 0,
        r: 0,
    };
    if proof.is_none() && !Mac::from_hex(cp).is_some_and(|m| m.same_as(&p.client)) {
        return Err(io::Error::other("wrong client proof"));
    }
    let text = match proof {
        Some(given) => format!("230 authenticated; {given}"),
        None => format!("230 authenticated; proof={}", p.server),
    };
    sealed.reply(s, &line, &[&text])?;
    Ok((sealed, cn))
}

impl Sealed {
    /// The next request without its MAC word; an error when its MAC is
    /// missing or wrong. None when the client left.
    fn request(&mut self, s: &mut Session) -> io::Result<Option<String>> {
        let Some(line) = s.request()? else {
            return Ok(None);
        };
        self.n += 1;
        match proof::split_mac(&line) {
            Some((text, mac)) if mac.same_as(&self.key.request_mac(self.n, text)) => {
                Ok(Some(text.to_string()))
            }
            _ => Err(io::Error::other(format!(
                "request {} has no right mac: {line}",
                self.n
            ))),
        }
    }

    /// The MAC of the next reply: `lines` answering `request`.
    fn mac(&mut self, request: &str, lines: &[&str]) -> Mac {
        let mut m = self.key.reply_mac(self.r, request);
        for l in lines {
            m.line(l.as_bytes());
        }
        self.r += 1;
        m.finish()
    }

    /// Sends `sent` (its lines without line ends) with `mac` on its last.
    fn send(s: &mut Session, sent: &[&str], mac: Mac) -> io::Result<()> {
        let mut out = String::new();
        for (i, l) in sent.iter().enumerate() {
            out += l;
            if i + 1 == sent.len() {
                out += &format!(" mac={mac}");
            }
            out += "\r\n";
        }
        s.say(&out)
    }

    /// Sends a reply to `request` with its MAC.
    fn reply(&mut self, s: &mut Session, request: &str, lines: &[&str]) -> io::Result<()> {
        let mac = self.mac(request, lines);
        Sealed::send(s, lines, mac)
    }
}

/// The listing every fake gives.
const LISTING: [&str; 3] = [
    "213-name\tsize\ttimestamp\ttype",
    "213-a.txt\t5\t2026-01-02T03:04:05Z\ttext/plain",
    "213 1 files",
];

// ---------------------------------------------------------------------
// Refused before anything is used
// ---------------------------------------------------------------------

fn a_peer_that_does_not_know_the_secret_is_refused_before_any_listing() {
    // It takes any proof, and answers with a made-up one, or none.
    for given in ["proof=0123456789abcdef0123456789abcdef", "welcome"] {
        let impostor = FakeServer::start(move |s| {
            let sn = greet(s)?;
            let (mut k, _) = login(s, sn, "another secret", Some(given))?;
            while let Some(line) = s.request()? {
                let line = proof::split_mac(&line).map_or(line.clone(), |(t, _)| t.into());
                k.reply(s, &line, &LISTING)?;
            }
            Ok(())
        });
        let dest = TempDir::new("auth-impostor-dst");
        let out = client(impostor.addr, dest.path(), &["-c", "IndexGet longlist"]);
        assert_eq!(out.code(), Some(1), "{out}");
        let said = format!("the peer at {} does not know the secret", impostor.addr);
        assert!(out.stderr.contains(&said), "{out}");
        assert!(!out.stdout.contains("a.txt"), "{out}");
        assert!(out.stdout.is_empty(), "{out}");
        let requests = impostor.requests();
        assert_eq!(requests.len(), 1, "only the login was sent: {requests:?}");
        assert!(requests[0].starts_with("AUTH PROOF "), "{requests:?}");
        assert!(!requests[0].contains(SECRET), "{requests:?}");
        assert!(entries_below(dest.path()).is_empty(), "{out}");
    }
}

fn a_peer_without_a_nonce_is_refused_and_never_sees_the_secret() {
    let plain = FakeServer::start(|s| {
        s.greet()?;
        while let Some(line) = s.request()? {
            if line.starts_with("AUTH") {
                s.say("230 authenticated\r\n")?;
            } else {
                s.say(&format!("{}\r\n", LISTING.join("\r\n")))?;
            }
        }
        Ok(())
    });
    let dest = TempDir::new("auth-plain-dst");
    let out = client(plain.addr, dest.path(), &["-c", "IndexGet longlist"]);
    assert_eq!(out.code(), Some(1), "{out}");
    let said = format!(
        "the peer at {} does not offer the challenge-response login (AUTH PROOF)",
        plain.addr
    );
    assert!(out.stderr.contains(&said), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    assert!(plain.requests().is_empty(), "{:?}", plain.requests());
}

// ---------------------------------------------------------------------
// A changed reply fails the command, and nothing is kept
// ---------------------------------------------------------------------

/// A fake that logs in, then answers the `nth` reply (1 for the first
/// after the login) with `changed` in place of what its MAC covers.
fn changing(
    nth: u64,
    listing_change: fn(&mut Vec<String>),
) -> (FakeServer, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let fake = FakeServer::start(move |s| {
        let sn = greet(s)?;
        let (mut k, _) = login(s, sn, SECRET, None)?;
        while let Some(line) = k.request(s)? {
            log.lock().unwrap().push(line.clone());
            let real: Vec<String> = if line == "IndexGet longlist" {
                LISTING.iter().map(|l| l.to_string()).collect()
            } else if line == "QUIT" {
                vec!["221 bye".into()]
            } else {
                vec!["200 ok".into()]
            };
            let lines: Vec<&str> = real.iter().map(String::as_str).collect();
            let mac = k.mac(&line, &lines);
            let mut sent = real.clone();
            if k.r == nth + 1 && line == "IndexGet longlist" {
                listing_change(&mut sent);
            }
            let sent: Vec<&str> = sent.iter().map(String::as_str).collect();
            Sealed::send(s, &sent, mac)?;
        }
        Ok(())
    });
    (fake, seen)
}

fn a_listing_with_a_changed_byte_or_a_dropped_row_is_never_shown() {
    let changes: [fn(&mut Vec<String>); 3] = [
        |l| l[1] = l[1].replace("a.txt", "b.txt"),
        |l| {
            l.remove(1);
        },
        |l| l[2] = "213 1 file".into(),
    ];
    for change in changes {
        let (fake, seen) = changing(2, change);
        let dest = TempDir::new("auth-changed-dst");
        let out = client(
            fake.addr,
            dest.path(),
            &["-c", "NOOP", "-c", "IndexGet longlist", "-c", "NOOP"],
        );
        assert_eq!(out.code(), Some(1), "{out}");
        let said = format!(
            "the reply from {} was changed on the way (its mac does not match); dropping the connection",
            fake.addr
        );
        assert!(out.stderr.contains(&said), "{out}");
        // The first NOOP's reply held; the listing is not shown at all.
        assert!(!out.stdout.contains(".txt"), "{out}");
        assert!(out.stdout.starts_with("ok\n"), "{out}");
        // The last NOOP ran on a new connection, logged in again.
        assert_eq!(fake.sessions(), 2, "{out}");
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            ["NOOP", "IndexGet longlist", "NOOP", "QUIT"],
            "{out}"
        );
    }
}

/// A fake that serves `content` as a.txt, with a MAC that fails on the
/// `150` (`on_150`) or on the `226`.
fn download_changed(content: &'static [u8], on_150: bool) -> FakeServer {
    FakeServer::start(move |s| {
        let sn = greet(s)?;
        let (mut k, _) = login(s, sn, SECRET, None)?;
        while let Some(line) = k.request(s)? {
            if line.starts_with("FileDownload") {
                let row = format!(
                    "150-a.txt\t{}\t2026-01-02T03:04:05Z\t{:x}",
                    content.len(),
                    md5::compute(content)
                );
                let data = format!("150 {}", s.data_line());
                let mac = k.mac(&line, &[&row, &data]);
                let row_sent = if on_150 {
                    // Another file's bytes, with their md5.
                    row.replace(
                        &format!("{:x}", md5::compute(content)),
                        &format!("{:x}", md5::compute(b"evil!")),
                    )
                } else {
                    row.clone()
                };
                Sealed::send(s, &[&row_sent, &data], mac)?;
                if !on_150 {
                    s.data()?.write_all(content)?;
                    let done = format!("226 a.txt {} bytes", content.len());
                    let mac = k.mac(&line, &[&done]);
                    Sealed::send(s, &["226 a.txt 5 bytez"], mac)?;
                } else if let Ok(d) = s.data_within(std::time::Duration::from_secs(2)) {
                    d.write_all(b"evil!")?;
                }
            } else {
                k.reply(s, &line, &["200 ok"])?;
            }
        }
        Ok(())
    })
}

fn a_download_whose_150_or_226_was_changed_stores_nothing() {
    for on_150 in [true, false] {
        let fake = download_changed(b"hello", on_150);
        let dest = TempDir::new("auth-dl-changed-dst");
        let out = client(fake.addr, dest.path(), &["-c", "FileDownload a.txt"]);
        assert_eq!(out.code(), Some(1), "{on_150}: {out}");
        assert!(
            out.stderr
                .contains("was changed on the way (its mac does not match)"),
            "{on_150}: {out}"
        );
        // No file, and no partial file either.
        assert!(
            entries_below(dest.path()).is_empty(),
            "{on_150}: {:?} {out}",
            entries_below(dest.path())
        );
    }
}

fn with_a_secret_a_typed_auth_is_not_sent() {
    let (fake, seen) = changing(u64::MAX - 1, |_| {});
    let dest = TempDir::new("auth-typed-dst");
    let out = client(
        fake.addr,
        dest.path(),
        &["-c", "auth hunter2", "-c", "NOOP"],
    );
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(out.stderr.contains("not sent: with --secret"), "{out}");
    assert_eq!(out.stdout, "ok\n", "{out}");
    assert_eq!(seen.lock().unwrap().as_slice(), ["NOOP", "QUIT"], "{out}");
    assert!(!fake.requests().iter().any(|r| r.contains("hunter2")));
}

fn a_sync_whose_listing_was_changed_changes_nothing_here() {
    let fake = FakeServer::start(|s| {
        let sn = greet(s)?;
        let (mut k, _) = login(s, sn, SECRET, None)?;
        while let Some(line) = k.request(s)? {
            if line == "FileHash checkall" {
                let row = format!(
                    "213-a.txt\t{:x}\t2026-01-02T03:04:05Z",
                    md5::compute(b"hello")
                );
                k.reply(s, &line, &["213-name\tmd5\ttimestamp", &row, "213 1 files"])?;
            } else if line == "IndexGet longlist" {
                // A row dropped: mine.txt, which the peer has too, would
                // be deleted here.
                let mac = k.mac(
                    &line,
                    &[
                        LISTING[0],
                        LISTING[1],
                        "213-mine.txt\t5\t2026-01-02T03:04:05Z\ttext/plain",
                        "213 2 files",
                    ],
                );
                Sealed::send(s, &[LISTING[0], LISTING[1], "213 2 files"], mac)?;
            } else {
                k.reply(s, &line, &["200 ok"])?;
            }
        }
        Ok(())
    });
    let dest = TempDir::new("auth-sync-dst");
    dest.write("mine.txt", "mine\n");
    let out = client(fake.addr, dest.path(), &["-c", "Sync --delete"]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("was changed on the way"), "{out}");
    assert_eq!(entries_below(dest.path()), ["mine.txt"], "{out}");
    let state = dest.path().join(format!(".p2pshare/sync/{SHARE_ID}.tsv"));
    assert!(!state.exists(), "{out}");
}

// ---------------------------------------------------------------------
// Every request carries its MAC; a new connection logs in again
// ---------------------------------------------------------------------

fn every_request_carries_its_mac_through_pipelined_downloads_and_reconnects() {
    let files: [(&str, &[u8]); 2] = [("a b.txt", b"first\n"), ("c\td.txt", b"second\n")];
    let nonces = Arc::new(Mutex::new(Vec::new()));
    let seen = nonces.clone();
    let fake = FakeServer::start(move |s| {
        let sn = greet(s)?;
        let (mut k, cn) = login(s, sn, SECRET, None)?;
        seen.lock().unwrap().push(cn);
        while let Some(line) = k.request(s)? {
            if line.starts_with("FileHash verify") {
                k.reply(s, &line, &["550 no such file or not shared"])?;
            } else if line.starts_with("IndexGet regex") {
                let mut t = vec!["213-name\tsize\ttimestamp\ttype".to_string()];
                for (name, c) in files {
                    let name = name.replace('\t', "\\t");
                    t.push(format!(
                        "213-{name}\t{}\t2026-01-02T03:04:05Z\ttext/plain",
                        c.len()
                    ));
                }
                t.push("213 2 files".into());
                let t: Vec<&str> = t.iter().map(String::as_str).collect();
                k.reply(s, &line, &t)?;
            } else if let Some(rest) = line.strip_prefix("FileDownload TCP ") {
                let name = rest.trim_matches('"').replace("\\t", "\t");
                let (name, c) = files.iter().find(|(n, _)| *n == name).unwrap();
                let row = format!(
                    "150-{}\t{}\t2026-01-02T03:04:05Z\t{:x}",
                    name.replace('\t', "\\t"),
                    c.len(),
                    md5::compute(c)
                );
                let data = format!("150 {}", s.data_line());
                k.reply(s, &line, &[&row, &data])?;
                s.data()?.write_all(c)?;
                k.reply(s, &line, &[&format!("226 {} bytes", c.len())])?;
            } else if line == "QUIT" {
                return k.reply(s, &line, &["221 bye"]);
            } else {
                k.reply(s, &line, &["200 ok"])?;
                // The first session ends after its first NOOP: the next
                // command finds it closed and connects again.
                if s.n == 0 {
                    return Ok(());
                }
            }
        }
        Ok(())
    });
    let dest = TempDir::new("auth-requests-dst");
    let out = client(
        fake.addr,
        dest.path(),
        &["-c", "NOOP", "-c", "FileDownload \"*.txt\"", "-c", "NOOP"],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    for (name, c) in files {
        assert_eq!(fs::read(dest.path().join(name)).unwrap(), c, "{out}");
    }
    assert_eq!(fake.sessions(), 2, "{out}");
    let nonces = nonces.lock().unwrap();
    assert_eq!(nonces.len(), 2, "{out}");
    assert!(nonces[0] != nonces[1], "a fresh nonce for each login");
    // Every request after a login went with a MAC that held: a fake
    // that found one without would have ended its session early.
    let requests = fake.requests();
    let downloads = requests
        .iter()
        .filter(|r| r.starts_with("FileDownload"))
        .count();
    assert_eq!(downloads, 2, "{requests:?}");
    for r in &requests {
        assert!(
            r.starts_with("AUTH PROOF ") || proof::split_mac(r).is_some(),
            "{r}"
        );
        assert!(!r.contains(SECRET), "{r}");
    }
}

// ---------------------------------------------------------------------
// Against a real server with a secret
// ---------------------------------------------------------------------

/// A relay on 127.0.0.1:0 in front of `to`: every byte the client sends
/// on its control connections is kept in the returned buffer.
fn relay(to: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let kept = sent.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(client) = conn else { continue };
            let Ok(server) = TcpStream::connect(to) else {
                continue;
            };
            let (mut from_server, mut to_client) =
                (server.try_clone().unwrap(), client.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = io::copy(&mut from_server, &mut to_client);
                let _ = to_client.shutdown(std::net::Shutdown::Write);
            });
            let kept = kept.clone();
            std::thread::spawn(move || {
                let (mut client, mut server) = (client, server);
                let mut buf = [0u8; 4096];
                loop {
                    match io::Read::read(&mut client, &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            kept.lock().unwrap().extend_from_slice(&buf[..n]);
                            if server.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = server.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (addr, sent)
}

fn against_a_real_server_every_command_works_and_the_secret_never_crosses_the_wire() {
    let big = pseudo_random(700_000, 7);
    let served = Share::new("auth-real-srv")
        .file("a b.txt", "hello\n")
        .file("d/big.bin", &big)
        .with(|c| p2pshare::server::Config {
            secret: Some(SECRET.into()),
            allow_upload: true,
            ..c
        })
        .serve();
    let (via, sent) = relay(served.addr());
    let dest = TempDir::new("auth-real-dst");
    dest.write("up.txt", "uploaded\n");
    let out = client(
        via,
        dest.path(),
        &[
            "-c",
            "IndexGet longlist",
            "-c",
            "FileDownload \"a b.txt\"",
            "-c",
            "FileDownload UDP d/big.bin",
            "-c",
            "FileUpload up.txt",
        ],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stdout.contains("a b.txt\t6\t"), "{out}");
    assert_eq!(fs::read(dest.path().join("a b.txt")).unwrap(), b"hello\n");
    assert_eq!(fs::read(dest.path().join("d/big.bin")).unwrap(), big);
    assert_eq!(
        fs::read(served.path().join("up.txt")).unwrap(),
        b"uploaded\n"
    );
    // Sync, into a share of its own.
    let synced = TempDir::new("auth-real-sync");
    let out = client(via, synced.path(), &["-c", "Sync"]);
    assert_eq!(out.code(), Some(0), "{out}");
    // (The upload is listed once the server's rescan found it: not
    // waited for here.)
    assert_eq!(fs::read(synced.path().join("d/big.bin")).unwrap(), big);
    assert_eq!(fs::read(synced.path().join("a b.txt")).unwrap(), b"hello\n");
    let sent = sent.lock().unwrap();
    let text = String::from_utf8_lossy(&sent);
    assert!(text.contains("AUTH PROOF "), "{text}");
    assert!(text.contains("IndexGet longlist mac="), "{text}");
    assert!(!text.contains(SECRET), "{text}");
    assert!(!text.contains("AUTH correct"), "{text}");
}

fn two_peers_with_a_secret_that_takes_only_proofs_sync_both_ways() {
    let (a_dir, b_dir) = (TempDir::new("auth-peer-a"), TempDir::new("auth-peer-b"));
    a_dir.write("from a.txt", "A\n");
    b_dir.write("from-b/deep.txt", "B\n");
    let extra = ["--sync", "--secret", SECRET, "--auth", "proof-only"];
    let wait = std::time::Duration::from_secs(30);
    let (a, b, _, _) = start_peers(a_dir.path(), b_dir.path(), &extra, wait);
    let both = |d: &TempDir| {
        fs::read(d.path().join("from a.txt")).is_ok_and(|c| c == b"A\n")
            && fs::read(d.path().join("from-b/deep.txt")).is_ok_and(|c| c == b"B\n")
    };
    let ok = wait_until(wait, || both(&a_dir) && both(&b_dir));
    assert!(ok, "never converged\nA {}\nB {}", a.dump(), b.dump());
    for d in [&a_dir, &b_dir] {
        let h = fs::read_to_string(d.path().join(".p2pshare/history.tsv")).unwrap();
        assert!(!h.contains(SECRET), "{h}");
        assert!(h.contains("AUTH ***"), "{h}");
    }
}

/// The client without a secret, at a terminal: says once that the
/// connection is not protected; into a pipe, it says nothing of it.
fn without_a_secret_the_client_says_once_at_a_terminal_that_nothing_is_protected() {
    assert!(
        terminal_available(),
        "`script` cannot run the client at a terminal here"
    );
    let served = Share::new("auth-open-srv").file("a.txt", "a\n").serve();
    let dest = TempDir::new("auth-open-dst");
    let args = client_args(
        served.addr(),
        dest.path(),
        &["-c", "NOOP", "-c", "FileDownload a.txt", "-c", "NOOP"],
    );
    let said = format!(
        "the connection to {} is not protected (no secret; see README \"Security\")",
        served.addr()
    );
    let out = at_a_terminal(&args);
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(out.stdout.matches(&said).count(), 1, "{out}");
    let out = run(&args, "");
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(!out.stderr.contains("not protected"), "{out}");
}

cases![
    a_peer_that_does_not_know_the_secret_is_refused_before_any_listing,
    a_peer_without_a_nonce_is_refused_and_never_sees_the_secret,
    a_listing_with_a_changed_byte_or_a_dropped_row_is_never_shown,
    a_download_whose_150_or_226_was_changed_stores_nothing,
    a_sync_whose_listing_was_changed_changes_nothing_here,
    with_a_secret_a_typed_auth_is_not_sent,
    every_request_carries_its_mac_through_pipelined_downloads_and_reconnects,
    against_a_real_server_every_command_works_and_the_secret_never_crosses_the_wire,
    two_peers_with_a_secret_that_takes_only_proofs_sync_both_ways,
    #[ignore = "needs a terminal: `script` (util-linux)"]
    without_a_secret_the_client_says_once_at_a_terminal_that_nothing_is_protected,
];
