//! curl, lftp and rclone, the FTP clients people have, against a real
//! server: curl lists, fetches a name with a space, resumes with `-C -`,
//! uploads with `-T` (into new folders with `--ftp-create-dirs`, and
//! resumed with `-C -` after it was killed) and is refused traversal;
//! lftp mirrors the whole share byte for byte, and uploads a tree with
//! `mirror -R`; rclone copies a tree up. Each needs its tool, so they are
//! ignored in a plain `cargo test`; `.ci/run` installs curl, lftp and
//! rclone and runs them with `--ignored`.

use crate::support::*;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use p2pshare::server::{Config, RunningServer};

use crate::support::{tool as run, tool_ok as ok};

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

/// The tree an upload test sends: nested folders, names with spaces and
/// quotes, non-ASCII names, a larger file.
fn tree() -> TempDir {
    let dir = TempDir::new("ftp-up-tree");
    dir.write("top.txt", "at the top\n");
    dir.write("sub one/file with space.txt", "spaced\n");
    dir.write("sub one/deeper/bin.dat", pseudo_random(700_000, 3));
    dir.write("sub one/deeper/it's \"quoted\".txt", "quoted\n");
    dir.write("ünïcødé 目录/ж 😀.txt", "non-ASCII\n");
    dir
}

/// The files below `dir` (no hidden ones) with their bytes.
fn visible_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    files_below(dir)
        .into_iter()
        .filter(|(rel, _)| !rel.split('/').any(|c| c.starts_with('.')))
        .collect()
}

fn upload_server() -> (TempDir, RunningServer) {
    let dir = TempDir::new("ftp-up-share");
    dir.write("old.txt", "there before");
    let server = start_with(Config {
        allow_upload: true,
        ..config(dir.path())
    });
    (dir, server)
}

/// `lftp mirror -R` sends a tree: MKD for each folder, CWD into it at
/// once, STOR for each file. Every step after the greeting is quick
/// (lftp's debug lines carry their second).
fn lftp_mirror_r_uploads_a_tree_with_nested_folders() {
    let src = tree();
    let (dir, server) = upload_server();
    let script = format!(
        "set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 20; \
         debug -t 3; open -p {} 127.0.0.1; mirror -R {} '/up loaded'",
        server.addr().port(),
        src.path().display()
    );
    let out = run("lftp", &["-c", &script]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    assert!(
        visible_files(&dir.path().join("up loaded")) == visible_files(src.path()),
        "the uploaded tree differs: {log}"
    );
    // `2026-12-07 14:41:54 <--- 250 ...`: the seconds of each line after
    // the greeting's.
    let secs: Vec<u64> = log
        .lines()
        .skip_while(|l| !l.contains("<--- 220"))
        .filter_map(|l| {
            let t = l.get(11..19)?;
            let mut p = t.split(':').map(|n| n.parse::<u64>().ok());
            Some(p.next()?? * 3600 + p.next()?? * 60 + p.next()??)
        })
        .collect();
    assert!(secs.len() > 5, "{log}");
    for w in secs.windows(2) {
        // One second apart at most: a step that took over 1 s shows as 2.
        assert!(w[1].saturating_sub(w[0]) <= 1, "a step waited: {log}");
    }
}

/// `rclone copy` of the same tree: its folders with MKD, its files with
/// STOR, each looked up right after it is stored.
fn rclone_copy_uploads_a_tree() {
    let src = tree();
    let (dir, server) = upload_server();
    // rclone takes the password obscured (any password logs in here).
    let pass = ok(&run("rclone", &["obscure", "anonymous"]));
    let remote = format!(
        ":ftp,host=127.0.0.1,port={},user=anonymous,pass={}:copied/there",
        server.addr().port(),
        pass.trim()
    );
    let out = run(
        "rclone",
        &[
            "copy",
            "--config",
            "/dev/null",
            "--retries",
            "1",
            src.path().to_str().unwrap(),
            &remote,
        ],
    );
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    assert!(
        visible_files(&dir.path().join("copied/there")) == visible_files(src.path()),
        "the copied tree differs: {log}"
    );
}

/// `curl --ftp-create-dirs -T` into folders that do not exist: CWD fails,
/// MKD makes each, CWD into it works at once.
fn curl_ftp_create_dirs_uploads_into_new_folders() {
    let src = tree();
    let (dir, server) = upload_server();
    let file = src.path().join("sub one/file with space.txt");
    let url = format!("ftp://{}/new%20folder/sub%20%C3%BC/", server.addr());
    ok(&run(
        "curl",
        &[
            "-sS",
            "--ftp-create-dirs",
            "-T",
            file.to_str().unwrap(),
            &url,
        ],
    ));
    assert_eq!(
        std::fs::read(dir.path().join("new folder/sub ü/file with space.txt")).unwrap(),
        b"spaced\n"
    );
}

/// A partial upload kept on the server: its name while it is not whole.
fn partial_of(dir: &Path, name: &str) -> std::path::PathBuf {
    dir.join(format!(".{name}.p2pshare-partial"))
}

/// `curl -C - -T` after a curl killed mid-upload: SIZE finds what
/// arrived, APPE sends the rest, and the file appears whole only then.
fn curl_c_resumes_an_interrupted_upload() {
    let (dir, server) = upload_server();
    let src = TempDir::new("ftp-curl-resume");
    let big = pseudo_random(8_000_000, 11);
    let file = src.write("big file.bin", &big);
    let url = format!("ftp://{}/up/", server.addr());
    let mut slow = Command::new("curl")
        .args(["-sS", "--ftp-create-dirs", "--limit-rate", "1M", "-T"])
        .arg(&file)
        .arg(&url)
        .spawn()
        .expect("curl");
    // Killed once some of it arrived.
    let up = dir.path().join("up");
    let arrived = || {
        std::fs::read_dir(&up).is_ok_and(|d| {
            d.flatten().any(|e| {
                e.file_name().to_string_lossy().contains("p2pshare-up")
                    && e.metadata().is_ok_and(|m| m.len() > 1_000_000)
            })
        })
    };
    assert!(wait_until(Duration::from_secs(30), arrived));
    slow.kill().unwrap();
    slow.wait().unwrap();
    let partial = partial_of(&up, "big file.bin");
    assert!(wait_until(Duration::from_secs(10), || partial.exists()));
    assert!(!up.join("big file.bin").exists(), "not whole, not there");
    let kept = std::fs::metadata(&partial).unwrap().len();
    assert!(kept > 1_000_000 && kept < big.len() as u64, "{kept}");
    let out = run(
        "curl",
        &["-sS", "-v", "-C", "-", "-T", file.to_str().unwrap(), &url],
    );
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    assert!(log.contains(&format!("< 213 {kept}")), "{log}");
    assert!(log.contains("> APPE big file.bin"), "{log}");
    assert!(std::fs::read(up.join("big file.bin")).unwrap() == big);
    assert!(!partial.exists());
}

cases![
    #[ignore = "needs lftp; .ci/run runs it"]
    lftp_mirror_r_uploads_a_tree_with_nested_folders,
    #[ignore = "needs rclone; .ci/run runs it"]
    rclone_copy_uploads_a_tree,
    #[ignore = "needs curl; .ci/run runs it"]
    curl_ftp_create_dirs_uploads_into_new_folders,
    #[ignore = "needs curl; .ci/run runs it"]
    curl_c_resumes_an_interrupted_upload,
    #[ignore = "needs curl; .ci/run runs it"]
    curl_lists_fetches_resumes_and_uploads,
    #[ignore = "needs curl; .ci/run runs it"]
    curl_is_refused_traversal,
    #[ignore = "needs lftp; .ci/run runs it"]
    lftp_mirrors_the_whole_share_byte_for_byte,
    #[ignore = "needs lftp; .ci/run runs it"]
    lftp_lists_the_share_at_once,
];
