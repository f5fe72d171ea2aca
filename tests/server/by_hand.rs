//! README.md's "A login by hand", replayed: the shell lines of its second
//! block run as printed (with `openssl`), and what they print is typed
//! into a real server with a secret, as a person at `nc` would. The
//! server's replies have the shape the README shows, its proof is the one
//! the README's command computes, and its MACs check.

use crate::support::*;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use p2pshare::proof::{greeting_nonce, split_mac, Nonce, Proofs};
use p2pshare::server::Config;

/// The section's code blocks, in order, each as its lines.
fn readme_blocks() -> Vec<Vec<String>> {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let section = readme
        .split("### A login by hand")
        .nth(1)
        .expect("README.md has a section 'A login by hand'");
    let section = section.split("\n#").next().unwrap_or(section);
    let mut blocks = Vec::new();
    let mut open: Option<Vec<String>> = None;
    for line in section.lines() {
        if line.starts_with("```") {
            match open.take() {
                Some(b) => blocks.push(b),
                None => open = Some(Vec::new()),
            }
        } else if let Some(b) = open.as_mut() {
            b.push(line.to_string());
        }
    }
    blocks
}

/// The secret the README's block sets (`$ SECRET=...`).
fn readme_secret(commands: &[String]) -> String {
    commands
        .iter()
        .find_map(|l| l.strip_prefix("$ SECRET="))
        .expect("the block sets SECRET")
        .to_string()
}

fn a_login_by_hand_works_as_the_readme_prints_it() {
    let blocks = readme_blocks();
    assert_eq!(blocks.len(), 3, "nc, the shell, nc again: {blocks:?}");
    let (shown_greeting, commands, shown_session) = (&blocks[0], &blocks[1], &blocks[2]);
    let secret = readme_secret(commands);

    let dir = TempDir::new("by-hand");
    dir.write("notes.txt", "hello\n");
    set_mtime(
        &dir.path().join("notes.txt"),
        UNIX_EPOCH + Duration::from_secs(1_796_637_600), // 2026-12-07T10:00:00Z
    );
    let server = start_with(Config {
        secret: Some(secret.clone()),
        ..config(dir.path())
    });
    let mut c = Conn::open(server.addr());
    // The greeting reads as the README shows it, but for its ids.
    // A line's shape: each `key=value` word as `key=`, each word of 32
    // hex digits as `HEX`.
    let shape = |l: &str| {
        l.split(' ')
            .map(|w| match w.split_once('=') {
                Some((k, _)) => format!("{k}="),
                None if Nonce::from_hex(w).is_some() => "HEX".into(),
                None => w.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(shown_greeting[0], "$ nc localhost 9000");
    assert_eq!(shape(&c.greeting), shape(&shown_greeting[1]));
    let sn = greeting_nonce(&c.greeting).expect("a nonce in the greeting");

    // The shell lines as printed, but for the nonce, which is this
    // server's.
    let script: Vec<&str> = commands
        .iter()
        .filter_map(|l| l.strip_prefix("$ "))
        .filter(|l| !l.starts_with("SN="))
        .collect();
    let out = Command::new("bash")
        .args(["-euc", &script.join("\n")])
        .env("SN", sn.to_string())
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let printed: Vec<&str> = printed.lines().collect();
    let shown: Vec<&String> = commands.iter().filter(|l| !l.starts_with("$ ")).collect();
    assert_eq!(printed.len(), shown.len(), "{printed:?} against {shown:?}");
    let (auth, server_proof, request) = (printed[0], printed[1], printed[2]);

    // Typed into nc: the 230 carries the proof the shell computed.
    let r = c.cmd(auth);
    assert_eq!(r.lines.len(), 1, "{:?}", r.lines);
    assert!(
        r.lines[0].starts_with(&format!("230 authenticated; proof={server_proof} mac=")),
        "{:?} against {server_proof}",
        r.lines
    );
    let cn = auth.split(' ').nth(2).and_then(Nonce::from_hex).unwrap();
    let proofs = Proofs::new(secret.as_bytes(), &sn, &cn);
    let check = |n: u64, request: &str, lines: &[String]| {
        let mut mac = proofs.key.reply_mac(n, request);
        let (last, rest) = lines.split_last().unwrap();
        for l in rest {
            mac.line(l.as_bytes());
        }
        let (text, got) = split_mac(last).expect("a mac word on the last line");
        mac.line(text.as_bytes());
        assert!(mac.finish().same_as(&got), "reply {n}: {lines:?}");
    };
    check(0, auth, &r.lines);
    let r = c.cmd(request);
    check(1, "IndexGet longlist", &r.lines);
    // As the README shows the session: the lines typed and the replies.
    let mut session = vec![auth.to_string()];
    session.extend(
        [
            "230 authenticated; proof=x mac=y".to_string(),
            request.to_string(),
        ]
        .into_iter()
        .chain(r.lines.iter().cloned()),
    );
    let shapes = |ls: &[String]| ls.iter().map(|l| shape(l)).collect::<Vec<_>>();
    assert_eq!(shapes(&session), shapes(shown_session));
    assert_eq!(r.lines[..2], shown_session[3..5]);
}

cases![
    #[ignore = "needs openssl; .ci/run runs it"]
    a_login_by_hand_works_as_the_readme_prints_it
];
