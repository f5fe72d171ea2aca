//! Transfers of zero bytes over TCP (PROTOCOL.md section 7): an empty file,
//! a resume at the end of a file, an empty upload. The server answers 226
//! right after the 150, without waiting for a data connection.

use crate::support::*;

use std::time::{Duration, Instant};

use p2pshare::server::Config;

/// A server whose wait for a data connection would show: 20 s.
fn serve(dir: &TempDir) -> p2pshare::server::RunningServer {
    start_with(Config {
        data_wait: Duration::from_secs(20),
        allow_upload: true,
        ..config(dir.path())
    })
}

fn an_empty_file_and_a_resume_at_its_end_are_226_at_once() {
    let dir = TempDir::new("zero-download");
    dir.write("empty.txt", "");
    dir.write("a.txt", "abc\n");
    let server = serve(&dir);
    let addr = server.addr();
    let mut c = Conn::open(addr);
    for (line, size, md5) in [
        ("FileDownload empty.txt", 0, md5_hex(b"")),
        ("FileDownload TCP empty.txt 0", 0, md5_hex(b"")),
        ("FileDownload a.txt 4", 4, md5_hex(b"abc\n")),
    ] {
        let began = Instant::now();
        let r150 = c.cmd(line);
        assert_eq!(r150.code, 150, "{line}: {:?}", r150.lines);
        assert_eq!(row_of_150(&r150)[1], size.to_string());
        let done = c.read_reply();
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "{line}: waited {:?}",
            began.elapsed()
        );
        let name = line.split(' ').rev().find(|w| w.ends_with(".txt")).unwrap();
        assert_eq!(
            done.lines,
            [format!("226 {name} {size} bytes md5={md5}")],
            "{line}"
        );
    }
    // The data channel still works for a transfer with bytes.
    let (_, bytes, done) = download(&mut c, addr, "a.txt");
    assert_eq!((bytes.as_slice(), done.code), (&b"abc\n"[..], 226));
    // And an empty file after it does not touch the held connection.
    let mut s = DataSession::open(addr);
    let got = s.fetch("a.txt", None).unwrap();
    assert_eq!((got.bytes.as_slice(), got.done.code), (&b"abc\n"[..], 226));
    let got = s.fetch("empty.txt", None).unwrap();
    assert_eq!((got.bytes.len(), got.done.code), (0, 226));
    let got = s.fetch("a.txt", Some(1)).unwrap();
    assert_eq!((got.bytes.as_slice(), got.done.code), (&b"bc\n"[..], 226));
}

fn an_empty_upload_is_stored_without_a_data_connection() {
    let dir = TempDir::new("zero-upload");
    let server = serve(&dir);
    let mut c = Conn::open(server.addr());
    let began = Instant::now();
    let r150 = c.cmd(&format!("FileUpload new.txt 0 {}", md5_hex(b"")));
    assert_eq!(r150.code, 150, "{:?}", r150.lines);
    let done = c.read_reply();
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(done.lines, ["226 stored new.txt"]);
    assert_eq!(std::fs::read(dir.path().join("new.txt")).unwrap(), b"");
    // An empty upload that announces another md5 stores nothing.
    let r150 = c.cmd(&format!("FileUpload other.txt 0 {}", md5_hex(b"x")));
    assert_eq!(r150.code, 150, "{:?}", r150.lines);
    assert_eq!(c.read_reply().code, 550);
    assert!(!dir.path().join("other.txt").exists());
    // A client that connects anyway is served by the next transfer.
    let up = upload_raw(&mut c, server.addr(), "third.txt", b"", None);
    assert_eq!(up.code(), 226, "{up:?}");
    let up = upload_raw(&mut c, server.addr(), "fourth.txt", b"four\n", None);
    assert_eq!(up.code(), 226, "{up:?}");
    assert_eq!(
        std::fs::read(dir.path().join("fourth.txt")).unwrap(),
        b"four\n"
    );
}

cases![
    an_empty_file_and_a_resume_at_its_end_are_226_at_once,
    an_empty_upload_is_stored_without_a_data_connection,
];
