//! Python's `ftplib` (a client nobody here wrote) against a real server:
//! login, an MLSD walk of the whole share, SIZE, MDTM, RETR, REST + RETR,
//! CWD/PWD, NLST, HASH and XMD5, STOR with and without
//! `--allow-upload`, MKD, and uploads resumed with REST + STOR and APPE. python3 is there wherever `.ci/run` ran.

use crate::support::*;

use std::net::SocketAddr;
use std::process::Command;

use p2pshare::server::Config;

/// Runs `script` with python3, the server's port as `PORT` and `args`
/// after it; panics with its output unless it prints `ok` and succeeds.
fn python(addr: SocketAddr, script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!("{PRELUDE}\n{script}"))
        .arg(addr.port().to_string())
        .args(args)
        .output()
        .expect("python3 (installed by .ci/run)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "python3 failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Connects and logs in anonymously; `md5` of bytes.
const PRELUDE: &str = r#"
import ftplib, hashlib, io, sys
port = int(sys.argv[1])
f = ftplib.FTP()
f.connect('127.0.0.1', port, timeout=30)
f.login()
def md5(b): return hashlib.md5(b).hexdigest()
def fetch(name, rest=None):
    b = io.BytesIO()
    f.retrbinary('RETR ' + name, b.write, rest=rest)
    return b.getvalue()
"#;

/// A share with odd names, folders and a larger file; returns it with
/// its manifest: `name TAB size TAB md5` lines.
fn share() -> (TempDir, String) {
    let dir = TempDir::new("ftplib");
    let files: Vec<(String, Vec<u8>)> = vec![
        ("a.txt".into(), b"hello".to_vec()),
        ("with space.txt".into(), b"spaced".to_vec()),
        ("emoji 😀 \"q\" 'x'.txt".into(), b"odd".to_vec()),
        ("docs/readme.txt".into(), b"read me\n".to_vec()),
        ("docs/old/minutes.txt".into(), b"minutes\n".to_vec()),
        ("music/big.bin".into(), pseudo_random(2_500_000, 5)),
    ];
    let mut manifest = String::new();
    for (name, content) in &files {
        dir.write(name, content);
        manifest.push_str(&format!(
            "{name}\t{}\t{}\n",
            content.len(),
            md5_hex(content)
        ));
    }
    set_mtime(&dir.path().join("a.txt"), time("2026-11-27T10:00:00Z"));
    (dir, manifest)
}

fn ftplib_walks_the_share_with_mlsd_and_fetches_every_file() {
    let (dir, manifest) = share();
    let server = start(dir.path());
    python(
        server.addr(),
        r#"
want = {}
for line in sys.argv[2].splitlines():
    name, size, digest = line.split('\t')
    want[name] = (int(size), digest)
seen = {}
def walk(path):
    for name, facts in f.mlsd(path):
        full = (path.rstrip('/') + '/' + name).lstrip('/')
        if facts['type'] == 'dir':
            walk('/' + full)
        else:
            seen[full] = int(facts['size'])
            assert len(facts['modify']) == 14, facts
walk('/')
assert seen == {k: v[0] for k, v in want.items()}, (seen, want)
for name, (size, digest) in want.items():
    assert f.size(name) == size, name
    assert md5(fetch(name)) == digest, name
    assert f.sendcmd('XMD5 ' + name) == '250 ' + digest
    assert f.sendcmd('HASH ' + name) == '213 MD5 0-%d %s %s' % (size, digest, name)
big = fetch('music/big.bin')
assert fetch('music/big.bin', rest=1000000) == big[1000000:]
assert f.sendcmd('MDTM a.txt') == '213 20261127100000'
print('ok')
"#,
        &[&manifest],
    );
}

fn ftplib_changes_folders_and_lists_names() {
    let (dir, _) = share();
    let server = start(dir.path());
    python(
        server.addr(),
        r#"
assert f.pwd() == '/'
assert sorted(f.nlst()) == sorted(['a.txt', 'docs', 'emoji 😀 "q" \'x\'.txt', 'music', 'with space.txt']), f.nlst()
f.cwd('docs')
assert f.pwd() == '/docs'
assert f.nlst() == ['old', 'readme.txt'], f.nlst()
f.cwd('old')
assert fetch('minutes.txt') == b'minutes\n'
f.cwd('..')
assert f.pwd() == '/docs'
for bad in ['../..', '/..', 'nowhere', '.p2pshare']:
    try:
        f.cwd(bad)
        raise SystemExit('CWD %s worked' % bad)
    except ftplib.error_perm as e:
        assert str(e).startswith('550'), e
lines = []
f.retrlines('LIST', lines.append)
assert [l.split()[-1] for l in lines] == ['old', 'readme.txt'], lines
assert lines[0].startswith('d') and lines[1].startswith('-'), lines
print('ok')
"#,
        &[],
    );
}

const STOR: &str = r#"
data = bytes(range(256)) * 4000
try:
    reply = f.storbinary('STOR up/new file.bin', io.BytesIO(data))
except ftplib.error_perm as e:
    print('refused', e)
else:
    assert reply == '226 stored up/new file.bin %d bytes md5=%s' % (len(data), md5(data)), reply
    print('stored')
    # The same bytes again: fine; others: 553.
    assert f.storbinary('STOR up/new file.bin', io.BytesIO(data)).startswith('226 ')
    try:
        f.storbinary('STOR up/new file.bin', io.BytesIO(b'other'))
        raise SystemExit('overwritten')
    except ftplib.error_perm as e:
        assert str(e).startswith('553'), e
print('ok')
"#;

fn ftplib_stor_is_refused_without_allow_upload() {
    let (dir, _) = share();
    let server = start(dir.path());
    let out = python(server.addr(), STOR, &[]);
    assert!(out.starts_with("refused 550 uploads are disabled"), "{out}");
    assert!(!dir.path().join("up").exists());
}

fn ftplib_stor_stores_with_allow_upload() {
    let (dir, _) = share();
    let server = start_with(Config {
        allow_upload: true,
        ..config(dir.path())
    });
    let out = python(server.addr(), STOR, &[]);
    assert!(out.starts_with("stored"), "{out}");
    let data: Vec<u8> = (0..4000).flat_map(|_| 0..=255u8).collect();
    assert!(std::fs::read(dir.path().join("up/new file.bin")).unwrap() == data);
}

/// MKD makes folders (nested, with quotes and spaces in their names),
/// CWD and STOR into them work at once, and their listing shows the
/// file; RMD, a hidden name and `..` are refused. Then an upload broken
/// off by a client that went away (control and data closed mid-file) is
/// resumed with `REST` + `STOR`, and another with `APPE`: the file
/// appears whole, only then, with the md5 of all its bytes.
const MKD_AND_RESUME: &str = r#"
import socket, time
made = f.mkd('new "q" dir')
assert made == '/new "q" dir', made
assert f.mkd('/new "q" dir/sub 😀/deeper') == '/new "q" dir/sub 😀/deeper'
f.cwd('new "q" dir/sub 😀/deeper')
assert f.pwd() == '/new "q" dir/sub 😀/deeper', f.pwd()
assert f.nlst() == [], f.nlst()
assert f.storbinary('STOR a.txt', io.BytesIO(b'in a new folder')).startswith('226 stored')
assert f.nlst() == ['a.txt'], f.nlst()
f.cwd('/')
for bad, code in [('new "q" dir', '550'), ('.hidden', '553'), ('../out', '553'), ('a/../../out', '553')]:
    try:
        f.mkd(bad)
        raise SystemExit('MKD %s worked' % bad)
    except ftplib.error_perm as e:
        assert str(e).startswith(code), (bad, e)
try:
    f.rmd('new "q" dir/sub 😀/deeper')
    raise SystemExit('RMD worked')
except ftplib.error_perm as e:
    assert str(e).startswith('550') and 'never removes' in str(e), e

data = bytes(range(256)) * 40000
def broken_off(name, n):
    # A second client sends n bytes, then goes away mid-file.
    g = ftplib.FTP()
    g.connect('127.0.0.1', port, timeout=30)
    g.login()
    conn = g.transfercmd('STOR ' + name)
    conn.sendall(data[:n])
    g.close()
    conn.close()
    deadline = time.time() + 20
    while True:
        try:
            return f.size(name)
        except ftplib.error_perm:
            assert time.time() < deadline, 'no partial upload of ' + name
            time.sleep(0.05)
for name, how in [('up/resumed with rest.bin', 'rest'), ('up/resumed with appe.bin', 'appe')]:
    have = broken_off(name, 3000000)
    assert 0 < have <= 3000000, have
    assert name.split('/')[1] not in f.nlst('up'), 'a partial upload is not listed'
    try:
        f.storbinary('STOR ' + name, io.BytesIO(data), rest=have + 1)
        raise SystemExit('REST past the partial file worked')
    except ftplib.error_perm as e:
        assert str(e).startswith('554'), e
    if how == 'rest':
        reply = f.storbinary('STOR ' + name, io.BytesIO(data[have:]), rest=have)
    else:
        reply = f.storbinary('APPE ' + name, io.BytesIO(data[have:]))
    assert reply == '226 stored %s %d bytes md5=%s' % (name, len(data), md5(data)), reply
    assert md5(fetch(name)) == md5(data)
    assert f.size(name) == len(data)
# APPE never changes a stored file.
try:
    f.storbinary('APPE up/resumed with appe.bin', io.BytesIO(b'more'))
    raise SystemExit('APPE changed a stored file')
except ftplib.error_perm as e:
    assert str(e).startswith('553'), e
print('ok')
"#;

fn ftplib_mkd_makes_folders_and_rest_stor_resumes_a_broken_upload() {
    let (dir, _) = share();
    let server = start_with(Config {
        allow_upload: true,
        ..config(dir.path())
    });
    python(server.addr(), MKD_AND_RESUME, &[]);
    let data: Vec<u8> = (0..40000).flat_map(|_| 0..=255u8).collect();
    for name in ["resumed with rest.bin", "resumed with appe.bin"] {
        assert!(std::fs::read(dir.path().join("up").join(name)).unwrap() == data);
    }
    // No partial or temporary file is left beside them.
    let mut left: Vec<String> = std::fs::read_dir(dir.path().join("up"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["resumed with appe.bin", "resumed with rest.bin"]);
    assert_eq!(
        std::fs::read(dir.path().join("new \"q\" dir/sub 😀/deeper/a.txt")).unwrap(),
        b"in a new folder"
    );
}

fn ftplib_mkd_is_refused_without_allow_upload() {
    let (dir, _) = share();
    let server = start(dir.path());
    python(
        server.addr(),
        r#"
try:
    f.mkd('new')
    raise SystemExit('MKD worked')
except ftplib.error_perm as e:
    assert str(e).startswith('550 uploads are disabled'), e
print('ok')
"#,
        &[],
    );
    assert!(!dir.path().join("new").exists());
}

cases![
    ftplib_mkd_makes_folders_and_rest_stor_resumes_a_broken_upload,
    ftplib_mkd_is_refused_without_allow_upload,
    ftplib_walks_the_share_with_mlsd_and_fetches_every_file,
    ftplib_changes_folders_and_lists_names,
    ftplib_stor_is_refused_without_allow_upload,
    ftplib_stor_stores_with_allow_upload,
];
