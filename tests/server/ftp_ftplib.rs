//! Python's `ftplib` (a client nobody here wrote) against a real server:
//! login, an MLSD walk of the whole share, SIZE, MDTM, RETR, REST + RETR,
//! CWD/PWD, NLST, HASH and XMD5, and STOR with and without
//! `--allow-upload`. python3 is there wherever `.ci/run` ran.

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

cases![
    ftplib_walks_the_share_with_mlsd_and_fetches_every_file,
    ftplib_changes_folders_and_lists_names,
    ftplib_stor_is_refused_without_allow_upload,
    ftplib_stor_stores_with_allow_upload,
];
