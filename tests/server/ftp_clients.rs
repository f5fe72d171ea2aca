//! curl and lftp, the FTP clients people have, against a real server:
//! curl lists, fetches a name with a space, resumes with `-C -`, uploads
//! with `-T` and is refused traversal; lftp mirrors the whole share byte
//! for byte. Each needs its tool, so they are ignored in a plain
//! `cargo test`; `.ci/run` installs curl and lftp and runs them with
//! `--ignored`.

use crate::support::*;

use std::path::Path;
use std::process::{Command, Output};

use p2pshare::server::Config;

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is not installed: {e}"))
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn share() -> TempDir {
    let dir = TempDir::new("ftp-clients");
    dir.write("a.txt", "hello");
    dir.write("with space.txt", "spaced out");
    dir.write("docs/readme.txt", "read me\n");
    dir.write("docs/old/minutes.txt", "minutes\n");
    dir.write("emoji 😀 'q'.txt", "odd");
    dir.write("music/big.bin", pseudo_random(5_000_000, 9));
    dir.write(".hidden.txt", "never");
    dir
}

fn curl_lists_fetches_resumes_and_uploads() {
    let dir = share();
    let server = start_with(Config {
        allow_upload: true,
        ..config(dir.path())
    });
    let url = format!("ftp://{}", server.addr());
    let list = ok(&run("curl", &["-sS", &format!("{url}/")]));
    for name in [
        "a.txt",
        "with space.txt",
        "docs",
        "music",
        "emoji 😀 'q'.txt",
    ] {
        assert!(
            list.lines().any(|l| l.ends_with(&format!(" {name}"))),
            "{name}: {list}"
        );
    }
    assert!(!list.contains(".hidden"));
    let names = ok(&run("curl", &["-sS", "-l", &format!("{url}/docs/")]));
    // curl turns the CR LF of a name list into LF.
    assert_eq!(names, "old\nreadme.txt\n");
    let spaced = ok(&run("curl", &["-sS", &format!("{url}/with%20space.txt")]));
    assert_eq!(spaced, "spaced out");
    // Resume: a partial file is completed from where it ends.
    let out = TempDir::new("ftp-curl-out");
    let big = std::fs::read(dir.path().join("music/big.bin")).unwrap();
    let part = out.write("big.bin", &big[..1_234_567]);
    let part = part.to_str().unwrap();
    ok(&run(
        "curl",
        &[
            "-sS",
            "-C",
            "-",
            "-o",
            part,
            &format!("{url}/music/big.bin"),
        ],
    ));
    assert!(std::fs::read(part).unwrap() == big);
    // Upload, then the same name with other bytes is refused.
    let up = out.write("up.txt", "uploaded by curl");
    let up = up.to_str().unwrap();
    ok(&run("curl", &["-sS", "-T", up, &format!("{url}/docs/")]));
    assert_eq!(
        std::fs::read(dir.path().join("docs/up.txt")).unwrap(),
        b"uploaded by curl"
    );
    let other = out.write("other/up.txt", "other bytes");
    let refused = run(
        "curl",
        &[
            "-sS",
            "-T",
            other.to_str().unwrap(),
            &format!("{url}/docs/"),
        ],
    );
    assert!(!refused.status.success());
    assert_eq!(
        std::fs::read(dir.path().join("docs/up.txt")).unwrap(),
        b"uploaded by curl"
    );
}

fn curl_is_refused_traversal() {
    let dir = share();
    let outside = TempDir::new("ftp-curl-outside");
    outside.write("secret.txt", "TOPSECRET");
    let server = start(dir.path());
    let url = format!("ftp://{}", server.addr());
    let secret = outside.path().join("secret.txt");
    for path in [
        "/../../../../etc/passwd".to_string(),
        "/docs/../../secret.txt".to_string(),
        "/%2e%2e/%2e%2e/etc/passwd".to_string(),
        "/..%2f..%2fetc%2fpasswd".to_string(),
        format!("/{}", secret.display()),
        format!("/%2f{}", secret.display()),
        "/.hidden.txt".to_string(),
        "/.p2pshare/history.tsv".to_string(),
    ] {
        let out = run("curl", &["-sS", "--path-as-is", &format!("{url}{path}")]);
        assert!(!out.status.success(), "{path} was served");
        let got = String::from_utf8_lossy(&out.stdout);
        assert!(
            !got.contains("TOPSECRET") && !got.contains("root:"),
            "{path}"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("550") || err.contains("(9)") || err.contains("(78)"),
            "{path}: {err}"
        );
    }
}

/// Every file below `dir` (hidden ones too) with its bytes.
fn files_below(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = entries_below(dir)
        .into_iter()
        .filter(|rel| dir.join(rel).is_file())
        .map(|rel| {
            let bytes = std::fs::read(dir.join(&rel)).unwrap();
            (rel, bytes)
        })
        .collect();
    out.sort();
    out
}

fn lftp_mirrors_the_whole_share_byte_for_byte() {
    let dir = share();
    let server = start(dir.path());
    let out = TempDir::new("ftp-lftp-out");
    let target = out.path().join("m");
    let script = format!(
        "set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 20; \
         open -p {} 127.0.0.1; mirror / {}",
        server.addr().port(),
        target.display()
    );
    ok(&run("lftp", &["-c", &script]));
    let want: Vec<(String, Vec<u8>)> = files_below(dir.path())
        .into_iter()
        .filter(|(rel, _)| !rel.split('/').any(|c| c.starts_with('.')))
        .collect();
    let got = files_below(&target);
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&got), names(&want));
    assert!(got == want, "the mirror differs in its bytes");
}

/// lftp takes the greeting at once (it waits 5 s for a line that ends
/// with LF alone) and lists the share: the whole session in under a
/// second on an idle machine; the bound allows for a loaded one.
fn lftp_lists_the_share_at_once() {
    let dir = share();
    let server = start(dir.path());
    let script = format!(
        "set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 20; \
         open -p {} 127.0.0.1; cls -1 /",
        server.addr().port()
    );
    let began = std::time::Instant::now();
    let list = ok(&run("lftp", &["-c", &script]));
    let took = began.elapsed();
    println!("lftp listed the share in {took:?}");
    for name in ["/a.txt", "/with space.txt", "/docs/", "/music/"] {
        assert!(list.lines().any(|l| l == name), "{name} not in {list}");
    }
    assert!(
        took < std::time::Duration::from_secs(3),
        "lftp took {took:?}"
    );
}

cases![
    #[ignore = "needs curl; .ci/run runs it"]
    curl_lists_fetches_resumes_and_uploads,
    #[ignore = "needs curl; .ci/run runs it"]
    curl_is_refused_traversal,
    #[ignore = "needs lftp; .ci/run runs it"]
    lftp_mirrors_the_whole_share_byte_for_byte,
    #[ignore = "needs lftp; .ci/run runs it"]
    lftp_lists_the_share_at_once,
];
