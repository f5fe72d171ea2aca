//! The HTTP front end (`--http`) through raw sockets against a real
//! server on 127.0.0.1:0: files with their headers, ranges and 304s,
//! keep-alive and its idle bound, the caps on request heads, traversal in
//! every spelling, odd names through the page's links, folder pages,
//! JSON and the md5sum manifest, uploads, Digest authentication, the
//! per-address limit and history rows.

use crate::support::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use p2pshare::server::{Config, HttpAt, RunningServer};

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn h(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A server with `--http 127.0.0.1:0`, changed by `change`.
pub fn serve_http(
    dir: &TempDir,
    change: impl FnOnce(Config) -> Config,
) -> (RunningServer, SocketAddr) {
    let server = start_with(change(Config {
        http: Some(HttpAt::parse("127.0.0.1:0").unwrap()),
        ..config(dir.path())
    }));
    let addr = server.http_addr().expect("the HTTP listener");
    (server, addr)
}

pub fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    BufReader::new(s)
}

/// Reads one response; None when the connection closed first.
pub fn read_resp(r: &mut BufReader<TcpStream>, head: bool) -> Option<Resp> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let status: u16 = line.split(' ').nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).ok()?;
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':')?;
        headers.push((n.to_string(), v.trim().to_string()));
    }
    let mut resp = Resp {
        status,
        headers,
        body: Vec::new(),
    };
    let len: usize = resp.h("content-length").map_or(0, |v| v.parse().unwrap());
    if !head && status != 304 && status != 100 {
        resp.body = vec![0; len];
        r.read_exact(&mut resp.body).ok()?;
    }
    Some(resp)
}

/// One request on a connection of its own.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut c = connect(addr);
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: t\r\n");
    for (n, v) in headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "PUT" || method == "POST" {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    let s = c.get_mut();
    s.write_all(raw.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_resp(&mut c, method == "HEAD").expect("a response")
}

pub fn get(addr: SocketAddr, target: &str) -> Resp {
    request(addr, "GET", target, &[], b"")
}

/// A share name as a URL path, encoded here apart from the server's
/// own encoder: every byte but unreserved ones and `/` as `%XX`.
pub fn enc(name: &str) -> String {
    let mut out = String::from("/");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn dec(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            out.push(if i <= c.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

fn files_get_their_headers_and_head_keeps_the_connection() {
    let dir = TempDir::new("http-get");
    let content = pseudo_random(100_000, 3);
    dir.write("d/caf\u{e9} file.bin", &content);
    let (_s, addr) = serve_http(&dir, |c| c);
    let r = get(addr, "/d/caf%C3%A9%20file.bin");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, content);
    let md5 = md5_hex(&content);
    assert_eq!(r.h("content-length"), Some("100000"));
    assert_eq!(r.h("etag"), Some(format!("\"{md5}\"").as_str()));
    let raw_md5: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&md5[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    assert_eq!(
        r.h("repr-digest"),
        Some(format!("md5=:{}:", b64(&raw_md5)).as_str())
    );
    assert!(r.h("last-modified").unwrap().ends_with(" GMT"));
    assert_eq!(r.h("x-content-type-options"), Some("nosniff"));
    assert!(r
        .h("content-security-policy")
        .unwrap()
        .starts_with("sandbox"));
    assert!(r
        .h("content-disposition")
        .unwrap()
        .contains("filename*=UTF-8''caf%C3%A9%20file.bin"));
    assert_eq!(r.h("accept-ranges"), Some("bytes"));
    // HEAD: the same head, no body; the connection goes on.
    let mut c = connect(addr);
    c.get_mut()
        .write_all(b"HEAD /d/caf%C3%A9%20file.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /d/caf%C3%A9%20file.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let head = read_resp(&mut c, true).unwrap();
    assert_eq!(
        (head.status, head.h("content-length")),
        (200, Some("100000"))
    );
    assert_eq!(head.h("etag"), r.h("etag"));
    let again = read_resp(&mut c, false).unwrap();
    assert_eq!(
        again.body, content,
        "keep-alive: a second request on one connection"
    );
}

fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let dir = TempDir::new("http-idle");
    dir.write("a.txt", "a");
    let (_s, addr) = serve_http(&dir, |c| Config {
        idle_timeout: Duration::from_secs(1),
        ..c
    });
    let mut c = connect(addr);
    c.get_mut()
        .write_all(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_resp(&mut c, false).unwrap().body, b"a");
    // Nothing more is sent: the server closes the connection.
    let mut rest = Vec::new();
    let n = c.read_to_end(&mut rest).unwrap();
    assert_eq!(n, 0);
}

fn request_heads_are_capped_with_4xx() {
    let dir = TempDir::new("http-caps");
    dir.write("a.txt", "a");
    let (_s, addr) = serve_http(&dir, |c| c);
    let send = |raw: &[u8]| {
        let mut c = connect(addr);
        let _ = c.get_mut().write_all(raw);
        read_resp(&mut c, false).map(|r| r.status)
    };
    let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(9000));
    assert_eq!(send(long.as_bytes()), Some(414));
    let mut many = String::from("GET /a.txt HTTP/1.1\r\n");
    for i in 0..100 {
        many.push_str(&format!("X-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(send(many.as_bytes()), Some(431));
    let big = format!("GET /a.txt HTTP/1.1\r\nX: {}\r\n\r\n", "v".repeat(20_000));
    assert_eq!(send(big.as_bytes()), Some(431));
    assert_eq!(
        send(b"GET /a.txt HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n"),
        Some(413)
    );
    assert_eq!(send(b"GET /a.txt SPDY/3\r\n\r\n"), Some(505));
    assert_eq!(send(b"BREW /a.txt HTTP/1.1\r\n\r\n"), Some(405));
    assert_eq!(send(b"\x00\xff garbage\r\n\r\n"), Some(400));
    // The server goes on.
    assert_eq!(get(addr, "/a.txt").body, b"a");
}

fn ranges_if_range_and_conditional_requests() {
    let dir = TempDir::new("http-range");
    let content = pseudo_random(1000, 5);
    dir.write("f.bin", &content);
    let (_s, addr) = serve_http(&dir, |c| c);
    let whole = get(addr, "/f.bin");
    let etag = whole.h("etag").unwrap().to_string();
    let lm = whole.h("last-modified").unwrap().to_string();
    let r = request(addr, "GET", "/f.bin", &[("Range", "bytes=10-19")], b"");
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &content[10..20]);
    assert_eq!(r.h("content-range"), Some("bytes 10-19/1000"));
    let r = request(addr, "GET", "/f.bin", &[("Range", "bytes=-5")], b"");
    assert_eq!(r.body, &content[995..]);
    let r = request(addr, "GET", "/f.bin", &[("Range", "bytes=990-")], b"");
    assert_eq!(r.body, &content[990..]);
    let r = request(addr, "GET", "/f.bin", &[("Range", "bytes=1000-")], b"");
    assert_eq!(r.status, 416);
    assert_eq!(r.h("content-range"), Some("bytes */1000"));
    let r = request(
        addr,
        "GET",
        "/f.bin",
        &[("Range", "bytes=5-9"), ("If-Range", &etag)],
        b"",
    );
    assert_eq!((r.status, r.body.as_slice()), (206, &content[5..10]));
    let r = request(
        addr,
        "GET",
        "/f.bin",
        &[("Range", "bytes=5-9"), ("If-Range", &lm)],
        b"",
    );
    assert_eq!(r.status, 206);
    let stale = "\"00000000000000000000000000000000\"";
    let r = request(
        addr,
        "GET",
        "/f.bin",
        &[("Range", "bytes=5-9"), ("If-Range", stale)],
        b"",
    );
    assert_eq!(
        (r.status, r.body.len()),
        (200, 1000),
        "another version: the whole file"
    );
    let r = request(addr, "GET", "/f.bin", &[("If-None-Match", &etag)], b"");
    assert_eq!((r.status, r.body.len()), (304, 0));
    assert_eq!(r.h("etag"), Some(etag.as_str()));
    let r = request(addr, "GET", "/f.bin", &[("If-None-Match", stale)], b"");
    assert_eq!(r.status, 200);
    let r = request(addr, "GET", "/f.bin", &[("If-Modified-Since", &lm)], b"");
    assert_eq!(r.status, 304);
    let old = "Thu, 01 Jan 1970 00:00:01 GMT";
    let r = request(addr, "GET", "/f.bin", &[("If-Modified-Since", old)], b"");
    assert_eq!(r.status, 200);
}

fn traversal_in_every_spelling_is_the_404_of_a_missing_file() {
    let dir = TempDir::new("http-traversal");
    dir.write("sub/a.txt", "a");
    dir.write(".hidden", "h");
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd-link")).unwrap();
    let (_s, addr) = serve_http(&dir, |c| c);
    let missing = get(addr, "/no-such-file");
    assert_eq!(missing.status, 404);
    for target in [
        "/../../../../etc/passwd",
        "/sub/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/sub%2f..%2f..%2fetc%2fpasswd",
        "/..%5c..%5cetc%5cpasswd",
        "/sub\\..\\..\\etc\\passwd",
        "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
        "/%c0%af..%c0%afetc%c0%afpasswd",
        "/..;/..;/etc/passwd",
        "/sub/..;/a.txt",
        "//etc/passwd",
        "/.hidden",
        "/%2ehidden",
        "/passwd-link",
        "/sub/a.txt%00.png",
        "/.p2pshare/history.tsv",
    ] {
        let r = get(addr, target);
        assert_eq!(r.status, 404, "{target}");
        assert_eq!(r.body, missing.body, "{target}");
        let r = get(addr, &format!("{target}/"));
        assert_eq!(r.status, 404, "{target}/");
    }
    assert_eq!(get(addr, "/sub/a.txt").body, b"a");
}

/// The `href`s of a page, decoded.
fn hrefs(page: &str) -> Vec<String> {
    page.split("href=\"")
        .skip(1)
        .map(|s| {
            let raw = &s[..s.find('"').unwrap()];
            raw.replace("&amp;", "&").replace("&quot;", "\"")
        })
        .collect()
}

fn odd_names_round_trip_through_the_pages_links() {
    let dir = TempDir::new("http-odd");
    let mut names = troublesome_names();
    names.extend([
        "hash #1.txt".to_string(),
        "what?.txt".into(),
        "100%.txt".into(),
        "%41%2f.txt".into(),
        "plus+and&amp;.txt".into(),
        "'single' \"double\".txt".into(),
        "<img src=x onerror=alert(1)>.html".into(),
    ]);
    write_named_files(&dir, &names);
    let (_s, addr) = serve_http(&dir, |c| c);
    // Walk the pages from the top, following every link into a folder
    // and fetching every file link.
    let mut found = std::collections::BTreeMap::new();
    let mut todo = vec!["/".to_string()];
    while let Some(page) = todo.pop() {
        let r = get(addr, &page);
        assert_eq!(r.status, 200, "{page}");
        let text = r.text();
        assert!(!text.contains("<img"), "names are escaped");
        for h in hrefs(&text) {
            if h.starts_with('?') || h.contains('?') || h == "/" || h == "../" {
                continue;
            }
            if !h.starts_with(&page) || h == page {
                continue;
            }
            if h.ends_with('/') {
                todo.push(h);
            } else {
                let body = get(addr, &h);
                assert_eq!(body.status, 200, "{h}");
                let name = String::from_utf8(dec(&h[1..])).unwrap();
                found.insert(name, body.body);
            }
        }
    }
    for (i, name) in names.iter().enumerate() {
        let want = format!("file {i}: {name:?}\n").repeat(i + 1);
        assert_eq!(
            found
                .get(name)
                .map(|b| String::from_utf8_lossy(b).into_owned()),
            Some(want),
            "{name:?}"
        );
        // And the name encoded here names the same file.
        assert_eq!(get(addr, &enc(name)).status, 200, "{name:?}");
    }
    assert_eq!(found.len(), names.len());
}

fn folder_pages_sort_search_and_list_as_json_and_md5sum() {
    let dir = TempDir::new("http-pages");
    dir.write("small.txt", "s");
    dir.write("big.txt", "b".repeat(5000));
    dir.write("mid.log", "m".repeat(300));
    dir.write("sub/deep/x.txt", "x");
    let set = |rel: &str, secs: u64| {
        let f = std::fs::File::options()
            .write(true)
            .open(dir.path().join(rel))
            .unwrap();
        f.set_modified(unix(secs)).unwrap();
    };
    set("small.txt", 1_700_000_000);
    set("big.txt", 1_800_000_000);
    set("mid.log", 1_750_000_000);
    let (_s, addr) = serve_http(&dir, |c| c);
    let page = get(addr, "/");
    assert_eq!(page.status, 200);
    let csp = page.h("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    let text = page.text();
    assert!(!text.contains("<script"));
    assert!(text.contains("href=\"/sub/\""));
    let order = |text: &str| -> Vec<String> {
        hrefs(text)
            .into_iter()
            .filter(|h| h.starts_with('/') && (h.ends_with(".txt") || h.ends_with(".log")))
            .collect()
    };
    let by_size = get(addr, "/?sort=size&order=desc").text();
    assert_eq!(order(&by_size), ["/big.txt", "/mid.log", "/small.txt"]);
    let by_time = get(addr, "/?sort=time").text();
    assert_eq!(order(&by_time), ["/small.txt", "/mid.log", "/big.txt"]);
    let glob = get(addr, "/?glob=*.txt").text();
    assert_eq!(order(&glob), ["/big.txt", "/small.txt", "/sub/deep/x.txt"]);
    let window = get(addr, "/?from=2023-11-14T00:00:00Z&to=2025-07-01T00:00:00Z").text();
    assert_eq!(order(&window), ["/mid.log", "/small.txt"]);
    let bad = get(addr, "/?glob=%5B");
    assert_eq!(bad.status, 400);
    // JSON, by parameter or by Accept.
    let json = get(addr, "/?format=json");
    assert_eq!(json.h("content-type"), Some("application/json"));
    let j = json.text();
    assert!(j.contains("{\"name\":\"sub\",\"type\":\"folder\""), "{j}");
    assert!(j.contains(&format!("\"md5\":\"{}\"", md5_hex(b"s"))) || j.contains("\"md5\":null"));
    let by_accept = request(
        addr,
        "GET",
        "/sub/deep/",
        &[("Accept", "application/json")],
        b"",
    );
    assert!(by_accept.text().contains("\"url\":\"/sub/deep/x.txt\""));
    // The manifest: md5sum's format, names from the folder listed.
    let m = get(addr, "/sub/?checkall").text();
    assert_eq!(m, format!("{}  deep/x.txt\n", md5_hex(b"x")));
    let all = get(addr, "/?checkall").text();
    assert_eq!(all.lines().count(), 4);
    assert_eq!(get(addr, "/nope/").status, 404);
}

fn uploads_only_with_allow_upload_never_over_another_file() {
    let dir = TempDir::new("http-up-off");
    let (_s, addr) = serve_http(&dir, |c| c);
    let r = request(addr, "PUT", "/new.txt", &[], b"data");
    assert_eq!(r.status, 403);
    assert!(!dir.path().join("new.txt").exists());

    let dir = TempDir::new("http-up");
    dir.write("there.txt", "old");
    let (_s, addr) = serve_http(&dir, |c| Config {
        allow_upload: true,
        ..c
    });
    let r = request(
        addr,
        "PUT",
        "/in%20dir/new%20%F0%9F%98%80.txt",
        &[],
        b"data",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.text(),
        format!("{}  in dir/new \u{1f600}.txt\n", md5_hex(b"data"))
    );
    assert!(r.h("repr-digest").is_some());
    assert_eq!(
        std::fs::read(dir.path().join("in dir/new \u{1f600}.txt")).unwrap(),
        b"data"
    );
    let r = request(addr, "PUT", "/there.txt", &[], b"old");
    assert_eq!(r.status, 200, "the same content");
    let r = request(addr, "PUT", "/there.txt", &[], b"new");
    assert_eq!(r.status, 409);
    assert_eq!(std::fs::read(dir.path().join("there.txt")).unwrap(), b"old");
    // A digest that does not match: nothing appears.
    let wrong = b64(&md5::compute(b"other").0);
    let r = request(
        addr,
        "PUT",
        "/checked.txt",
        &[("Content-MD5", &wrong)],
        b"body",
    );
    assert_eq!(r.status, 400);
    assert!(!dir.path().join("checked.txt").exists());
    let right = format!("md5=:{}:", b64(&md5::compute(b"body").0));
    let r = request(
        addr,
        "PUT",
        "/checked.txt",
        &[("Repr-Digest", &right)],
        b"body",
    );
    assert_eq!(r.status, 201);
    let r = request(addr, "PUT", "/../escape.txt", &[], b"x");
    assert_eq!(r.status, 404);
    // The form: two files into a folder.
    let body = "--B0\r\nContent-Disposition: form-data; name=\"file\"; filename=\"one.txt\"\r\n\r\n1\r\n\
                --B0\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t%22w o.txt\"\r\n\r\ntwo\r\n--B0--\r\n";
    let r = request(
        addr,
        "POST",
        "/in%20dir/",
        &[("Content-Type", "multipart/form-data; boundary=B0")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(
        std::fs::read(dir.path().join("in dir/one.txt")).unwrap(),
        b"1"
    );
    assert_eq!(
        std::fs::read(dir.path().join("in dir/t\"w o.txt")).unwrap(),
        b"two"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path().join("in dir"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 3, "no temporary file left: {names:?}");
}

/// The Digest `Authorization` for a challenge.
pub fn digest(www: &str, secret: &str, method: &str, uri: &str, nc: u32) -> String {
    let nonce = www
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let h = |s: String| format!("{:x}", md5::compute(s));
    let ha1 = h(format!("me:p2pshare:{secret}"));
    let ha2 = h(format!("{method}:{uri}"));
    let nc = format!("{nc:08x}");
    let resp = h(format!("{ha1}:{nonce}:{nc}:abc:auth:{ha2}"));
    format!(
        "Digest username=\"me\", realm=\"p2pshare\", nonce=\"{nonce}\", uri=\"{uri}\", \
         qop=auth, nc={nc}, cnonce=\"abc\", response=\"{resp}\", algorithm=MD5"
    )
}

fn digest_authentication_with_a_secret_and_no_replay() {
    let dir = TempDir::new("http-auth");
    dir.write("a.txt", "a");
    let (_s, addr) = serve_http(&dir, |c| Config {
        secret: Some("s3cret".into()),
        ..c
    });
    let r = get(addr, "/a.txt");
    assert_eq!(r.status, 401);
    let www = r.h("www-authenticate").unwrap().to_string();
    assert!(
        www.starts_with("Digest ") && www.contains("qop=\"auth\""),
        "{www}"
    );
    assert!(!r.headers.iter().any(|(_, v)| v.contains("Basic")));
    let basic = request(
        addr,
        "GET",
        "/a.txt",
        &[("Authorization", "Basic bWU6czNjcmV0")],
        b"",
    );
    assert_eq!(basic.status, 401);
    let auth = digest(&www, "s3cret", "GET", "/a.txt", 1);
    let ok = request(addr, "GET", "/a.txt", &[("Authorization", &auth)], b"");
    assert_eq!((ok.status, ok.body.as_slice()), (200, &b"a"[..]));
    // The captured request, sent again: refused.
    let replay = request(addr, "GET", "/a.txt", &[("Authorization", &auth)], b"");
    assert_eq!(replay.status, 401);
    let next = digest(&www, "s3cret", "GET", "/a.txt", 2);
    assert_eq!(
        request(addr, "GET", "/a.txt", &[("Authorization", &next)], b"").status,
        200
    );
    // For another URL, the same answer does not fit.
    let other = digest(&www, "s3cret", "GET", "/a.txt", 3);
    assert_eq!(
        request(addr, "GET", "/", &[("Authorization", &other)], b"").status,
        401
    );
    let wrong = digest(&www, "nope", "GET", "/a.txt", 4);
    assert_eq!(
        request(addr, "GET", "/a.txt", &[("Authorization", &wrong)], b"").status,
        401
    );
    let forged = digest("nonce=\"made-up\"", "s3cret", "GET", "/a.txt", 1);
    assert_eq!(
        request(addr, "GET", "/a.txt", &[("Authorization", &forged)], b"").status,
        401
    );
}

fn connections_count_against_the_per_address_limit_and_rows_are_written() {
    let dir = TempDir::new("http-limit");
    dir.write("a.txt", "a");
    let (_s, addr) = serve_http(&dir, |c| Config { max_per_ip: 1, ..c });
    let mut first = connect(addr);
    first
        .get_mut()
        .write_all(b"GET /a.txt HTTP/1.1\r\n\r\n")
        .unwrap();
    assert_eq!(read_resp(&mut first, false).unwrap().status, 200);
    let second = get(addr, "/a.txt");
    assert_eq!(second.status, 503);
    drop(first);
    assert!(wait_until(Duration::from_secs(20), || get(addr, "/a.txt")
        .status
        == 200));
    let history = dir.path().join(".p2pshare/history.tsv");
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&history).is_ok_and(|h| h.contains("HTTP GET /a.txt\t200"))
    }));
}

fn serve_http_prints_the_url_to_open_and_is_off_by_default() {
    use crate::process::Proc;
    let dir = TempDir::new("http-cli");
    dir.write("a.txt", "from the binary");
    let share = dir.path().to_str().unwrap();
    let p = Proc::spawn(&[
        "serve",
        "--share",
        share,
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--http",
        "127.0.0.1:0",
    ]);
    p.await_stderr("HTTP on http://127.0.0.1:", Duration::from_secs(60));
    let err = p.stderr();
    let url = err
        .split("HTTP on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    assert_eq!(get(addr, "/a.txt").body, b"from the binary");
    drop(p);
    let p = Proc::spawn(&[
        "serve",
        "--share",
        share,
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
    ]);
    p.await_stderr("sharing", Duration::from_secs(60));
    // Once the control port greets, anything the start had to say is said.
    let err = p.stderr();
    let port = err.split("on 127.0.0.1:").nth(1).unwrap();
    let port: u16 = port[..port.find(|c: char| !c.is_ascii_digit()).unwrap()]
        .parse()
        .unwrap();
    let _greeted = Conn::open(SocketAddr::from(([127, 0, 0, 1], port)));
    assert!(!p.stderr().contains("HTTP"), "{}", p.dump());
}

cases![
    serve_http_prints_the_url_to_open_and_is_off_by_default,
    files_get_their_headers_and_head_keeps_the_connection,
    an_idle_connection_is_closed_after_the_idle_timeout,
    request_heads_are_capped_with_4xx,
    ranges_if_range_and_conditional_requests,
    traversal_in_every_spelling_is_the_404_of_a_missing_file,
    odd_names_round_trip_through_the_pages_links,
    folder_pages_sort_search_and_list_as_json_and_md5sum,
    uploads_only_with_allow_upload_never_over_another_file,
    digest_authentication_with_a_secret_and_no_replay,
    connections_count_against_the_per_address_limit_and_rows_are_written,
];
