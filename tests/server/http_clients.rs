//! The HTTP clients people have, against a real server's `--http` side:
//! curl resumes with `-C -`, authenticates with `--digest`, uploads with
//! `-T` and is refused traversal; wget `-r -np` mirrors the share byte
//! for byte; aria2c fetches a 256 MiB file over four ranges at once;
//! Python's urllib reads the JSON listing; headless Chromium loads the
//! listing, follows a folder link and a search URL, fetches a file, and
//! does not run the script of a shared `evil.html`. Each needs its tool,
//! so they are ignored in a plain `cargo test`; `.ci/run` installs the
//! tools and runs them with `--ignored`.

use crate::support::*;

use std::path::Path;

use p2pshare::server::Config;

use super::http::{enc, get, serve_http};

use crate::support::{tool as run, tool_ok as ok};

fn share() -> TempDir {
    let dir = TempDir::new("http-clients");
    dir.write("a.txt", "hello\n");
    dir.write("with space #1.txt", "spaced out\n");
    dir.write("docs/read me?.txt", "read me\n");
    dir.write("docs/old/100% done.txt", "minutes\n");
    dir.write("emoji \u{1f600} 'q' \"d\".txt", "odd\n");
    dir.write("music/big.bin", pseudo_random(3_000_000, 9));
    dir.write(".hidden.txt", "never");
    dir
}

fn curl_resumes_authenticates_uploads_and_is_refused_traversal() {
    let dir = share();
    let (_s, addr) = serve_http(&dir, |c| Config {
        allow_upload: true,
        secret: Some("s3cret".into()),
        ..c
    });
    let url = format!("http://{addr}");
    let auth = ["--digest", "-u", "me:s3cret"];
    // Without the secret: 401, and curl -f fails.
    let refused = run("curl", &["-sSf", &format!("{url}/a.txt")]);
    assert!(!refused.status.success());
    let wrong = run(
        "curl",
        &["-sSf", "--digest", "-u", "me:nope", &format!("{url}/a.txt")],
    );
    assert!(!wrong.status.success());
    let got = ok(&run(
        "curl",
        &[&auth[..], &["-sSf", &format!("{url}/a.txt")]].concat(),
    ));
    assert_eq!(got, "hello\n");
    // Resume a partial download.
    let out = TempDir::new("http-curl-out");
    let big = std::fs::read(dir.path().join("music/big.bin")).unwrap();
    let part = out.write("big.bin", &big[..1_234_567]);
    let part = part.to_str().unwrap();
    ok(&run(
        "curl",
        &[
            &auth[..],
            &[
                "-sSf",
                "-C",
                "-",
                "-o",
                part,
                &format!("{url}/music/big.bin"),
            ],
        ]
        .concat(),
    ));
    assert_eq!(std::fs::read(part).unwrap(), big);
    // Upload with -T into a folder (curl appends the file's name).
    let src = out.write("up load.txt", "uploaded by curl\n");
    let reply = ok(&run(
        "curl",
        &[
            &auth[..],
            &["-sSf", "-T", src.to_str().unwrap(), &format!("{url}/docs/")],
        ]
        .concat(),
    ));
    assert_eq!(
        reply,
        format!("{}  docs/up load.txt\n", md5_hex(b"uploaded by curl\n"))
    );
    assert_eq!(
        std::fs::read(dir.path().join("docs/up load.txt")).unwrap(),
        b"uploaded by curl\n"
    );
    // Traversal, sent as typed: the 404 of a missing file.
    for path in [
        "/../../../etc/passwd",
        "/docs/..%2f..%2f..%2fetc%2fpasswd",
        "/..;/etc/passwd",
    ] {
        let code = ok(&run(
            "curl",
            &[
                &auth[..],
                &[
                    "-s",
                    "--path-as-is",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    &format!("{url}{path}"),
                ],
            ]
            .concat(),
        ));
        assert_eq!(code, "404", "{path}");
    }
}

/// Every shared file (not hidden) below `dir`, relative, with its bytes.
fn files_below(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "index.html" {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn wget_mirrors_the_share_byte_for_byte() {
    let dir = share();
    let (_s, addr) = serve_http(&dir, |c| c);
    let out = TempDir::new("http-wget");
    ok(&run(
        "wget",
        &[
            "-r",
            "-np",
            "-nH",
            "-q",
            "--reject-regex",
            "[?]",
            "--restrict-file-names=nocontrol",
            "-P",
            out.path().to_str().unwrap(),
            &format!("http://{addr}/"),
        ],
    ));
    assert_eq!(files_below(out.path()), files_below(dir.path()));
}

fn aria2c_fetches_256_mib_over_four_ranges() {
    let dir = TempDir::new("http-aria2c");
    let block = pseudo_random(1 << 20, 4);
    let mut big = Vec::with_capacity(256 << 20);
    for i in 0..256u32 {
        big.extend_from_slice(&i.to_be_bytes());
        big.extend_from_slice(&block[4..]);
    }
    dir.write("big file.bin", &big);
    let want = md5_hex(&big);
    drop(big);
    let (_s, addr) = serve_http(&dir, |c| c);
    let out = TempDir::new("http-aria2c-out");
    ok(&run(
        "aria2c",
        &[
            "-q",
            "-x",
            "4",
            "-s",
            "4",
            "-k",
            "1M",
            "--file-allocation=none",
            "-d",
            out.path().to_str().unwrap(),
            "-o",
            "got.bin",
            &format!("http://{addr}/big%20file.bin"),
        ],
    ));
    let got = std::fs::read(out.path().join("got.bin")).unwrap();
    assert_eq!(md5_hex(&got), want);
    // Four connections asked for ranges: history rows say 206.
    let history = std::fs::read_to_string(dir.path().join(".p2pshare/history.tsv")).unwrap();
    assert!(
        history.lines().filter(|l| l.ends_with("\t206")).count() >= 2,
        "{history}"
    );
}

fn python_urllib_reads_the_json_listing() {
    let dir = share();
    let (_s, addr) = serve_http(&dir, |c| c);
    let script = "import json, sys, urllib.request\n\
                  d = json.load(urllib.request.urlopen(sys.argv[1]))\n\
                  for f in d['files']:\n    print(f['type'], f['name'], f['size'], f['md5'], f['url'], sep='\\t')\n";
    let out = ok(&run(
        "python3",
        &["-c", script, &format!("http://{addr}/?format=json")],
    ));
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    let names: Vec<&str> = rows.iter().map(|r| r[1]).collect();
    assert_eq!(
        names,
        [
            "docs",
            "music",
            "a.txt",
            "emoji \u{1f600} 'q' \"d\".txt",
            "with space #1.txt"
        ]
    );
    let a = rows.iter().find(|r| r[1] == "a.txt").unwrap();
    assert_eq!(a[2], "6");
    assert_eq!(a[4], "/a.txt");
    // The urls it gives fetch the files.
    for r in &rows {
        if r[0] == "file" {
            assert_eq!(get(addr, r[4]).status, 200, "{}", r[4]);
        }
    }
}

fn chromium(url: &str) -> String {
    let profile = TempDir::new("chromium-profile");
    let out = run(
        "chromium",
        &[
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
            url,
        ],
    );
    ok(&out)
}

/// The first `href` in `dom` that ends with `suffix`.
fn link(dom: &str, suffix: &str) -> String {
    dom.split("href=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].replace("&amp;", "&"))
        .find(|h| h.ends_with(suffix))
        .unwrap_or_else(|| panic!("no link ending {suffix} in {dom}"))
}

fn chromium_lists_follows_searches_and_fetches_without_running_shared_script() {
    let dir = share();
    dir.write(
        "evil.html",
        "<html><body><p id=x>static</p><script>document.getElementById('x').textContent='RAN-'+'SCRIPT'</script></body></html>",
    );
    let (_s, addr) = serve_http(&dir, |c| c);
    let base = format!("http://{addr}");
    let top = chromium(&format!("{base}/"));
    assert!(top.contains("with space #1.txt"), "{top}");
    assert!(
        top.contains("emoji \u{1f600} 'q' \"d\".txt")
            || top.contains("emoji \u{1f600} 'q' &quot;d&quot;.txt")
    );
    // Follow the folder link as the page gives it.
    let docs = link(&top, "/docs/");
    let page = chromium(&format!("{base}{docs}"));
    assert!(page.contains("read me?.txt"), "{page}");
    let file = link(&page, &enc("read me?.txt")[1..]);
    let fetched = chromium(&format!("{base}{file}"));
    assert!(
        fetched.contains("<pre") && fetched.contains("read me\n"),
        "{fetched}"
    );
    // A search is a URL.
    let found = chromium(&format!("{base}/?glob=*.txt&sort=size"));
    assert!(found.contains("docs/old/100% done.txt"), "{found}");
    assert!(!found.contains("big.bin"));
    // The shared page's script does not run.
    let evil = chromium(&format!("{base}/evil.html"));
    assert!(
        evil.contains("static") && !evil.contains("RAN-SCRIPT</p>"),
        "{evil}"
    );
}

cases![
    #[ignore = "needs curl"]
    curl_resumes_authenticates_uploads_and_is_refused_traversal,
    #[ignore = "needs wget"]
    wget_mirrors_the_share_byte_for_byte,
    #[ignore = "needs aria2c"]
    aria2c_fetches_256_mib_over_four_ranges,
    #[ignore = "needs python3"]
    python_urllib_reads_the_json_listing,
    #[ignore = "needs chromium"]
    chromium_lists_follows_searches_and_fetches_without_running_shared_script,
];
