//! Every name a share can hold can be listed, pasted back from a table
//! into a request, hashed and downloaded byte for byte (PROTOCOL.md
//! sections 1, 3 and 11).

use crate::process;

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;

use crate::support::*;

fn names_pasted_from_a_longlist_fetch_each_file_byte_for_byte() {
    let share = TempDir::new("names-share");
    let names = troublesome_names();
    write_named_files(&share, &names);
    let server = start(share.path());
    let mut c = Conn::open(server.addr());
    let list = c.cmd("IndexGet longlist");
    let fields: Vec<String> = list.names();
    let listed: BTreeSet<String> = fields.iter().map(|f| unescaped(f)).collect();
    let want: BTreeSet<String> = names.iter().cloned().collect();
    assert_eq!(listed, want, "every name is listed, once");
    for line in &list.lines {
        assert!(!line.contains(['\n', '\r']), "{line:?}");
    }
    let mut data = None;
    for field in &fields {
        let name = unescaped(field);
        let word = pasted(field);
        let hash = c.cmd(&format!("FileHash verify {word}"));
        assert_eq!(hash.code, 213, "verify {word}: {:?}", hash.lines);
        assert_eq!(
            hash.rows()[0][0],
            *field,
            "the row names the file as listed"
        );
        let r150 = c.cmd(&format!("FileDownload {word}"));
        let row = row_of_150(&r150);
        assert_eq!(row[0], *field, "150 for {word}");
        let size: u64 = row[1].parse().unwrap();
        let stream = data.get_or_insert_with(|| {
            let (port, token) = data_of(&r150);
            data_connect(server.addr(), port, &token)
        });
        let mut got = Vec::new();
        stream.take(size).read_to_end(&mut got).unwrap();
        let done = c.read_reply();
        assert_eq!(done.code, 226, "{word}: {:?}", done.lines);
        assert_eq!(got, fs::read(share.path().join(&name)).unwrap(), "{word}");
        assert_eq!(md5_hex(&got), hash.rows()[0][1]);
    }
    c.assert_alive();
}

fn a_name_written_with_escapes_or_quotes_names_the_same_file() {
    let server = Share::new("names-forms")
        .file("back\\slash.txt", "one backslash")
        .file("tab\there.txt", "a tab")
        .file("a \"b\".txt", "quotes")
        .serve();
    let mut c = Conn::open(server.addr());
    for word in [
        r"back\\slash.txt",
        r#""back\\slash.txt""#,
        r"tab\there.txt",
        r#""tab\there.txt""#,
        "\"tab\there.txt\"",
        r#""a \"b\".txt""#,
    ] {
        let r = c.cmd(&format!("FileHash verify {word}"));
        assert_eq!(r.code, 213, "{word}: {:?}", r.lines);
    }
    // An escape the grammar does not know stays as it is: this names a
    // file with a backslash and a `q`, which does not exist.
    let r = c.cmd(r"FileHash verify back\qslash.txt");
    assert_eq!(
        r.lines,
        [r"550 no such file or not shared: back\\qslash.txt"]
    );
    // The name in a message is written with the table's escapes.
    let r = c.cmd(r"FileDownload nothing\there");
    assert_eq!(r.lines, [r"550 no such file or not shared: nothing\there"]);
}

fn names_that_are_not_utf8_are_left_out_and_reported_on_stderr() {
    use std::os::unix::ffi::OsStrExt;
    let share = TempDir::new("names-utf8");
    share.write("fine.txt", "ok");
    let bad = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    fs::write(share.path().join(bad), "latin-1 name").unwrap();
    let serve = process::Proc::spawn(&[
        "serve",
        "--share",
        share.path().to_str().unwrap(),
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
    ]);
    let addr = serve.serving_addr();
    serve.await_stderr("not shared: ", process::LIMIT);
    let err = serve.stderr();
    assert!(
        err.contains("caf\\xe9.txt: the name is not valid UTF-8"),
        "{err}"
    );
    let mut c = Conn::open(addr);
    assert_eq!(c.cmd("IndexGet longlist").names(), ["fine.txt"]);
}

/// `p2pshare client ... -c 'FileDownload [UDP] "**"'` into a fresh folder:
/// every troublesome name lands byte-identical under its own name, and
/// nothing else does.
fn client_fetches_every_name(transport: &str) {
    let share = TempDir::new("names-client-src");
    let dest = TempDir::new("names-client-dst");
    let names = troublesome_names();
    write_named_files(&share, &names);
    let server = start(share.path());
    let command = format!("FileDownload {transport} \"**\"");
    let out = process::run(
        &process::client_args(server.addr(), dest.path(), &["-c", &command]),
        "",
    );
    assert_eq!(out.code(), Some(0), "{out}");
    let got: BTreeSet<String> = entries_below(dest.path())
        .into_iter()
        .filter(|e| !e.ends_with('/'))
        .collect();
    let want: BTreeSet<String> = names.iter().cloned().collect();
    assert_eq!(got, want, "{out}");
    for name in &names {
        assert_eq!(
            fs::read(dest.path().join(name)).unwrap(),
            fs::read(share.path().join(name)).unwrap(),
            "{name:?}"
        );
    }
    // One line per file.
    assert_eq!(out.lines().len(), names.len(), "{out}");
}

fn the_clients_pattern_download_fetches_every_name_over_tcp() {
    client_fetches_every_name("TCP");
}

fn the_clients_pattern_download_fetches_every_name_over_udp() {
    client_fetches_every_name("UDP");
}

cases![
    names_pasted_from_a_longlist_fetch_each_file_byte_for_byte,
    a_name_written_with_escapes_or_quotes_names_the_same_file,
    names_that_are_not_utf8_are_left_out_and_reported_on_stderr,
    the_clients_pattern_download_fetches_every_name_over_tcp,
    the_clients_pattern_download_fetches_every_name_over_udp,
];
