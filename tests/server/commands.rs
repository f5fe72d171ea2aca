//! Every command of the control protocol and its errors, as a person with
//! `nc` would see them.

use crate::support::*;

use std::time::{Duration, SystemTime};

use p2pshare::server::Config;

/// Asserts a one-line reply with `code` whose text contains `part`.
fn expect(r: &Reply, code: u16, part: &str) {
    assert_eq!(r.code, code, "{:?}", r.lines);
    assert_eq!(r.lines.len(), 1, "one line expected: {:?}", r.lines);
    assert!(r.last().contains(part), "{part:?} not in {:?}", r.lines);
}

fn greets_first_with_220() {
    let server = Share::new("cmd-greet").serve();
    let c = Conn::open(server.addr());
    assert!(c.greeting.starts_with("220 "), "{}", c.greeting);
    assert!(c.greeting.contains("p2pshare"), "{}", c.greeting);
}

/// The greeting's bytes end with CR LF (FTP clients wait for it); the
/// native replies after it end with LF alone.
fn the_greeting_ends_with_crlf_and_the_replies_after_it_with_lf() {
    use std::io::{BufRead, BufReader, Write};
    let server = Share::new("cmd-greet-crlf").serve();
    let s = std::net::TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut greeting = Vec::new();
    r.read_until(b'\n', &mut greeting).unwrap();
    assert!(greeting.starts_with(b"220 "), "{greeting:?}");
    assert!(greeting.ends_with(b"\r\n"), "{greeting:?}");
    assert_eq!(greeting.iter().filter(|&&b| b == b'\r').count(), 1);
    (&s).write_all(b"NOOP\r\nNOOP\n").unwrap();
    for _ in 0..2 {
        let mut line = Vec::new();
        r.read_until(b'\n', &mut line).unwrap();
        assert_eq!(line, b"200 ok\n");
    }
}

fn help_lists_every_command_and_one_usage() {
    let server = Share::new("cmd-help").serve();
    let mut c = Conn::open(server.addr());

    // > HELP
    // < 214-...   (one line per command)
    // < 214 end of help
    let help = c.cmd("HELP");
    assert_eq!(help.code, 214, "{:?}", help.lines);
    let (last, first) = help.lines.split_last().unwrap();
    assert!(last.starts_with("214 "), "{last}");
    assert!(first.iter().all(|l| l.starts_with("214-")), "{first:?}");
    let text = help.text();
    for usage in [
        "IndexGet longlist | shortlist <start> <end> | regex <pattern>",
        "FileHash verify <name> | checkall",
        "FileDownload [TCP|UDP] <name> [<offset>]",
        "FileUpload <name> <size> <md5>",
        "History [<n>]",
        "HELP [<command>]",
        "NOOP",
        "AUTH <secret>",
        "QUIT",
    ] {
        assert!(text.contains(usage), "HELP lacks {usage:?}:\n{text}");
    }

    // > HELP indexget
    // < 214 usage: IndexGet longlist | ...
    let one = c.cmd("HELP indexget");
    expect(&one, 214, "usage: IndexGet longlist");
    expect(
        &c.cmd("help FILEHASH"),
        214,
        "usage: FileHash verify <name>",
    );
    expect(&c.cmd("HELP history"), 214, "usage: History [<n>]");

    // An unknown command is a bad argument, and says where to look.
    let unknown = c.cmd("HELP frobnicate");
    expect(&unknown, 501, "frobnicate");
    assert!(unknown.last().contains("HELP"), "{:?}", unknown.lines);
    expect(&c.cmd("HELP NOOP QUIT"), 501, "usage: HELP");
    c.assert_alive();
}

fn noop_answers_200_and_takes_no_arguments() {
    let server = Share::new("cmd-noop").serve();
    let mut c = Conn::open(server.addr());
    expect(&c.cmd("NOOP"), 200, "ok");
    expect(&c.cmd("noop"), 200, "ok");
    expect(&c.cmd("NOOP now"), 501, "usage: NOOP");
    c.assert_alive();
}

fn quit_says_bye_then_closes() {
    let server = Share::new("cmd-quit").serve();
    let mut c = Conn::open(server.addr());
    expect(&c.cmd("QUIT now"), 501, "usage: QUIT");
    expect(&c.cmd("quit"), 221, "bye");
    assert_eq!(c.read_line(), None, "the server must close after 221");
}

fn verbs_and_flags_are_case_insensitive_names_are_not() {
    let server = Share::new("cmd-case").file("a.txt", "hello\n").serve();
    let mut c = Conn::open(server.addr());

    for line in [
        "IndexGet longlist",
        "indexget LONGLIST",
        "INDEXGET LongList",
    ] {
        assert_eq!(c.cmd(line).names(), ["a.txt"], "{line}");
    }
    for line in ["IndexGet regex *.txt", "iNdExGeT REGEX *.txt"] {
        assert_eq!(c.cmd(line).names(), ["a.txt"], "{line}");
    }
    for line in ["FileHash checkall", "filehash CHECKALL"] {
        assert_eq!(c.cmd(line).names(), ["a.txt"], "{line}");
    }
    let v = c.cmd("FILEHASH VERIFY a.txt");
    assert_eq!(v.rows()[0][..2], ["a.txt", &md5_hex(b"hello\n")]);
    expect(&c.cmd("Noop"), 200, "ok");

    // File names and patterns keep their case.
    expect(&c.cmd("FileHash verify A.TXT"), 550, "A.TXT");
    assert_eq!(c.cmd("IndexGet regex *.TXT").names(), Vec::<String>::new());

    // The transport flag is a flag: any case.
    let (r150, bytes, done) = download(&mut c, server.addr(), "a.txt");
    assert_eq!(bytes, b"hello\n");
    assert_eq!(done.code, 226, "{:?}", done.lines);
    let again = c.cmd("filedownload tcp a.txt");
    assert_eq!(again.code, 150, "{:?}", again.lines);
    assert_eq!(data_of(&again), data_of(&r150));
    // The data connection of the first download is closed: connect again
    // to the same port with the same token.
    let (port, token) = data_of(&again);
    let mut d = data_connect(server.addr(), port, &token);
    assert_eq!(read_exact_n(&mut d, 6), b"hello\n");
    assert_eq!(c.read_reply().code, 226);
}

fn blank_lines_get_no_reply() {
    let server = Share::new("cmd-blank").serve();
    let mut c = Conn::open(server.addr());
    // > (Enter)
    // > (spaces and tabs, Enter)
    // > NOOP
    // < 200 ok      (the first reply after the blank lines is NOOP's)
    c.send_raw(b"\n");
    c.send_raw(b"   \t  \n");
    c.send_raw(b"\r\n");
    c.send_raw(b"\t\r\n");
    expect(&c.cmd("NOOP"), 200, "ok");
    // Nothing else is waiting: a second NOOP gets the next 200.
    expect(&c.cmd("NOOP"), 200, "ok");
    // Blank lines are not requests: the history holds only the NOOPs.
    let h = c.cmd("History");
    let requests: Vec<String> = h.rows().into_iter().map(|r| r[3].clone()).collect();
    assert_eq!(requests, ["NOOP", "NOOP"]);
}

fn a_reply_is_sent_while_the_next_line_is_still_being_typed() {
    let server = Share::new("cmd-partial").serve();
    let mut c = Conn::open(server.addr());
    // > NOOP
    // > NO          (the next line, not yet ended)
    // < 200 ok      (at once: the server does not wait for the line's end)
    c.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    c.send_raw(b"NOOP\nNO");
    expect(&c.read_reply(), 200, "ok");
    c.send_raw(b"OP\n");
    expect(&c.read_reply(), 200, "ok");
}

fn quoted_names_hold_spaces_quotes_and_backslashes() {
    let server = Share::new("cmd-quote")
        .file("my docs/a b.txt", "spaced\n")
        .file("say \"hi\".txt", "quoted\n")
        .file("back\\slash.txt", "slashed\n")
        .serve();
    let mut c = Conn::open(server.addr());

    // > FileHash verify "my docs/a b.txt"
    // < 213-name	md5	timestamp
    // < 213-my docs/a b.txt	<md5>	<time>
    // < 213 1 files
    let r = c.cmd("FileHash verify \"my docs/a b.txt\"");
    assert_eq!(r.header(), "name\tmd5\ttimestamp");
    assert_eq!(r.rows()[0][..2], ["my docs/a b.txt", &md5_hex(b"spaced\n")]);
    assert_eq!(r.last(), "1 files");

    let r = c.cmd(r#"FileHash verify "say \"hi\".txt""#);
    assert_eq!(r.rows()[0][..2], ["say \"hi\".txt", &md5_hex(b"quoted\n")]);

    // A backslash inside quotes is written `\\`; in the table, `\\` too.
    let r = c.cmd(r#"FileHash verify "back\\slash.txt""#);
    assert_eq!(r.rows()[0][0], "back\\\\slash.txt");
    assert_eq!(r.rows()[0][1], md5_hex(b"slashed\n"));

    // Unquoted, the name falls apart into three words: a usage error.
    let r = c.cmd("FileDownload my docs/a b.txt");
    assert_eq!(r.code, 501, "{:?}", r.lines);

    let (r150, bytes, done) = download(&mut c, server.addr(), "\"my docs/a b.txt\"");
    assert_eq!(bytes, b"spaced\n");
    assert!(r150.lines[0].starts_with("150-my docs/a b.txt\t7\t"));
    expect(&done, 226, "my docs/a b.txt 7 bytes md5=");

    let globbed = c.cmd("IndexGet regex \"my docs/*\"");
    assert_eq!(globbed.names(), ["my docs/a b.txt"]);
}

fn indexget_errors() {
    let server = Share::new("cmd-indexget").serve();
    let mut c = Conn::open(server.addr());
    expect(&c.cmd("IndexGet"), 501, "usage: IndexGet");
    expect(&c.cmd("IndexGet sideways"), 501, "usage: IndexGet");
    expect(
        &c.cmd("IndexGet longlist now"),
        501,
        "usage: IndexGet longlist",
    );
    expect(
        &c.cmd("IndexGet shortlist 5"),
        501,
        "usage: IndexGet shortlist <start> <end>",
    );
    expect(&c.cmd("IndexGet regex"), 501, "usage: IndexGet regex");
    expect(&c.cmd("IndexGet regex \"\""), 501, "empty pattern");
    expect(&c.cmd("IndexGet regex a b"), 501, "usage: IndexGet regex");
    // An empty share is an empty table.
    let r = c.cmd("IndexGet longlist");
    assert_eq!(r.lines, ["213-name\tsize\ttimestamp\ttype", "213 0 files"]);
    c.assert_alive();
}

fn filehash_verify_checkall_and_errors() {
    let server = Share::new("cmd-filehash")
        .file("a.txt", "alpha\n")
        .file("sub/b.bin", [0u8, 1, 2, 3])
        .file(".hidden", "secret")
        .serve();
    let mut c = Conn::open(server.addr());

    let v = c.cmd("FileHash verify sub/b.bin");
    assert_eq!(v.header(), "name\tmd5\ttimestamp");
    let rows = v.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][..2], ["sub/b.bin", &md5_hex(&[0, 1, 2, 3])]);
    humantime::parse_rfc3339(&rows[0][2]).expect("RFC 3339 timestamp");
    assert_eq!(v.last(), "1 files");

    let all = c.cmd("FileHash checkall");
    assert_eq!(all.header(), "name\tmd5\ttimestamp");
    let md5s: Vec<(String, String)> = all
        .rows()
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    assert_eq!(
        md5s,
        [
            ("a.txt".to_string(), md5_hex(b"alpha\n")),
            ("sub/b.bin".to_string(), md5_hex(&[0, 1, 2, 3])),
        ]
    );
    assert_eq!(all.last(), "2 files");

    expect(&c.cmd("FileHash"), 501, "usage: FileHash");
    expect(
        &c.cmd("FileHash verify"),
        501,
        "usage: FileHash verify <name>",
    );
    expect(
        &c.cmd("FileHash verify a b"),
        501,
        "usage: FileHash verify <name>",
    );
    expect(&c.cmd("FileHash checkall a.txt"), 501, "usage: FileHash");
    expect(&c.cmd("FileHash sideways a.txt"), 501, "usage: FileHash");
    expect(&c.cmd("FileHash verify nope.txt"), 550, "nope.txt");
    expect(&c.cmd("FileHash verify .hidden"), 550, "not shared");
    expect(&c.cmd("FileHash verify sub"), 550, "sub");
    c.assert_alive();
}

fn filedownload_errors() {
    let server = Share::new("cmd-download")
        .file("a.txt", "0123456789")
        .serve();
    let mut c = Conn::open(server.addr());
    expect(
        &c.cmd("FileDownload"),
        501,
        "usage: FileDownload [TCP|UDP] <name> [<offset>]",
    );
    expect(
        &c.cmd("FileDownload TCP a.txt 1 2"),
        501,
        "usage: FileDownload",
    );
    expect(&c.cmd("FileDownload a.txt -1"), 501, "offset");
    expect(&c.cmd("FileDownload a.txt ten"), 501, "offset");
    expect(&c.cmd("FileDownload a.txt 11"), 501, "past the end");
    expect(&c.cmd("FileDownload missing.txt"), 550, "missing.txt");
    expect(&c.cmd("FileDownload ../etc/passwd"), 550, "not shared");

    // A resume from the middle sends only the rest; 226 has the whole md5.
    let r150 = c.cmd("FileDownload TCP a.txt 4");
    assert_eq!(r150.code, 150, "{:?}", r150.lines);
    assert_eq!(r150.lines.len(), 2);
    let row: Vec<&str> = r150.lines[0][4..].split('\t').collect();
    assert_eq!(row[..2], ["a.txt", "10"]);
    assert_eq!(row[3], md5_hex(b"0123456789"));
    assert!(
        r150.lines[1].starts_with("150 DATA tcp port="),
        "{:?}",
        r150
    );
    let (port, token) = data_of(&r150);
    let mut d = data_connect(server.addr(), port, &token);
    assert_eq!(read_exact_n(&mut d, 6), b"456789");
    expect(
        &c.read_reply(),
        226,
        &format!("a.txt 10 bytes md5={}", md5_hex(b"0123456789")),
    );
    // An offset equal to the size is an empty transfer, not an error.
    let r150 = c.cmd("FileDownload a.txt 10");
    assert_eq!(r150.code, 150, "{:?}", r150.lines);
    expect(&c.read_reply(), 226, "a.txt 10 bytes");
    c.assert_alive();
}

fn fileupload_is_disabled() {
    let Served { dir, server } = Share::new("cmd-upload").serve();
    let mut c = Conn::open(server.addr());
    // > FileUpload new.txt 3 900150983cd24fb0d6963f7d28e17f72
    // < 550 uploads are disabled on this peer
    expect(
        &c.cmd("FileUpload new.txt 3 900150983cd24fb0d6963f7d28e17f72"),
        550,
        "uploads are disabled on this peer",
    );
    assert!(!dir.path().join("new.txt").exists());
    expect(&c.cmd("FileUpload new.txt 3"), 501, "usage: FileUpload");
    expect(
        &c.cmd("FileUpload new.txt three 900150983cd24fb0d6963f7d28e17f72"),
        501,
        "size",
    );
    expect(&c.cmd("FileUpload new.txt 3 xyz"), 501, "md5");
    c.assert_alive();
}

fn auth_is_accepted_where_no_secret_is_set() {
    let server = Share::new("cmd-auth").serve();
    let mut c = Conn::open(server.addr());
    expect(&c.cmd("AUTH anything"), 230, "no secret");
    expect(&c.cmd("auth \"two words\""), 230, "no secret");
    expect(&c.cmd("AUTH"), 501, "usage: AUTH <secret>");
    expect(&c.cmd("AUTH a b"), 501, "usage: AUTH <secret>");
    c.assert_alive();
}

fn auth_with_a_secret_gates_commands_and_closes_after_three_wrong_tries() {
    let dir = TempDir::new("cmd-auth-secret");
    dir.write("a.txt", "hello\n");
    let server = start_with(p2pshare::server::Config {
        secret: Some("s3cret words".into()),
        ..config(dir.path())
    });

    let mut c = Conn::open(server.addr());
    // Before AUTH only HELP, NOOP, AUTH and QUIT work.
    assert_eq!(c.cmd("IndexGet longlist").code, 530);
    assert_eq!(c.cmd("FileHash verify a.txt").code, 530);
    assert_eq!(c.cmd("History").code, 530);
    assert_eq!(c.cmd("HELP").code, 214);
    expect(&c.cmd("NOOP"), 200, "ok");
    assert_eq!(c.cmd("AUTH wrong").code, 530);
    expect(&c.cmd("AUTH \"s3cret words\""), 230, "");
    assert_eq!(c.cmd("IndexGet longlist").names(), ["a.txt"]);
    // The secret itself is never written to the history.
    let h = c.cmd("History");
    assert!(!h.text().contains("s3cret"), "{}", h.text());

    // Three wrong tries: 530 each, then the server closes.
    let mut c = Conn::open(server.addr());
    assert_eq!(c.cmd("AUTH one").code, 530);
    assert_eq!(c.cmd("AUTH two").code, 530);
    assert_eq!(c.cmd("AUTH three").code, 530);
    assert_eq!(c.read_line(), None, "closed after the third wrong secret");
}

fn history_shows_earlier_requests_of_this_peer() {
    let server = Share::new("cmd-history").file("a.txt", "hello\n").serve();
    let before = SystemTime::now() - Duration::from_secs(1);
    let mut c = Conn::open(server.addr());
    let me = c.stream.local_addr().unwrap().to_string();

    assert_eq!(c.cmd("NOOP").code, 200);
    assert_eq!(c.cmd("IndexGet longlist").code, 213);
    assert_eq!(c.cmd("FileHash verify nope").code, 550);
    assert_eq!(c.cmd("frobnicate").code, 500);

    // > History 3
    // < 213-time	direction	peer	request	reply
    // < 213-<time>	in	127.0.0.1:<port>	IndexGet longlist	213
    // < ...
    let h = c.cmd("History 3");
    assert_eq!(h.header(), "time\tdirection\tpeer\trequest\treply");
    let rows = h.rows();
    let tail: Vec<[&str; 4]> = rows
        .iter()
        .map(|r| [r[1].as_str(), r[2].as_str(), r[3].as_str(), r[4].as_str()])
        .collect();
    assert_eq!(
        tail,
        [
            ["in", me.as_str(), "IndexGet longlist", "213"],
            ["in", me.as_str(), "FileHash verify nope", "550"],
            ["in", me.as_str(), "frobnicate", "500"],
        ]
    );
    assert_eq!(h.last(), "3 requests");
    for r in &rows {
        let t = humantime::parse_rfc3339(&r[0]).expect("RFC 3339 time");
        assert!(t >= before && t <= SystemTime::now(), "{}", r[0]);
    }

    // Without a count: every request so far (fewer than the default 50),
    // now including the History request itself.
    let all = c.cmd("history");
    let requests: Vec<String> = all.rows().into_iter().map(|r| r[3].clone()).collect();
    assert_eq!(
        requests,
        [
            "NOOP",
            "IndexGet longlist",
            "FileHash verify nope",
            "frobnicate",
            "History 3"
        ]
    );

    let none = c.cmd("History 0");
    assert_eq!(
        none.lines,
        [
            "213-time\tdirection\tpeer\trequest\treply",
            "213 0 requests"
        ]
    );
    expect(&c.cmd("History x"), 501, "History");
    expect(&c.cmd("History -1"), 501, "History");
    expect(&c.cmd("History 1 2"), 501, "usage: History");
    expect(&c.cmd("History 99999999"), 501, "History");
}

fn history_default_is_the_last_50() {
    let server = Share::new("cmd-history50").serve();
    let mut c = Conn::open(server.addr());
    // Pipelined, as `nc` would send a pasted block.
    let block: String = (0..60).map(|i| format!("HELP q{i}\n")).collect();
    c.send_raw(block.as_bytes());
    for _ in 0..60 {
        assert_eq!(c.read_reply().code, 501);
    }
    let h = c.cmd("History");
    let requests: Vec<String> = h.rows().into_iter().map(|r| r[3].clone()).collect();
    let want: Vec<String> = (10..60).map(|i| format!("HELP q{i}")).collect();
    assert_eq!(requests, want);
    assert_eq!(h.last(), "50 requests");
}

fn history_survives_a_restart() {
    let dir = TempDir::new("cmd-history-restart");
    dir.write("a.txt", "hello\n");
    let first_peer;
    {
        let server = start(dir.path());
        let mut c = Conn::open(server.addr());
        first_peer = c.stream.local_addr().unwrap().to_string();
        assert_eq!(c.cmd("IndexGet longlist").code, 213);
        assert_eq!(c.cmd("FileHash verify a.txt").code, 213);
        assert_eq!(c.cmd("QUIT").code, 221);
        server.stop();
    }
    // It is kept in the hidden state folder, which is never listed.
    assert!(dir.path().join(".p2pshare/history.tsv").is_file());

    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    let me = c.stream.local_addr().unwrap().to_string();
    assert_eq!(c.cmd("IndexGet longlist").names(), ["a.txt"]);
    let h = c.cmd("History");
    let rows: Vec<[String; 4]> = h
        .rows()
        .into_iter()
        .map(|r| [r[1].clone(), r[2].clone(), r[3].clone(), r[4].clone()])
        .collect();
    let row = |peer: &str, req: &str, code: &str| {
        ["in".to_string(), peer.to_string(), req.into(), code.into()]
    };
    assert_eq!(
        rows,
        [
            row(&first_peer, "IndexGet longlist", "213"),
            row(&first_peer, "FileHash verify a.txt", "213"),
            row(&first_peer, "QUIT", "221"),
            row(&me, "IndexGet longlist", "213"),
        ]
    );
}

fn the_share_fixture_serves_its_files_with_its_config_and_cleans_up() {
    let served = Share::new("cmd-fixture")
        .file("a.txt", "hello\n")
        .file("sub/b.txt", "b\n")
        .with(|c| Config { max_line: 64, ..c })
        .serve();
    let path = served.path().to_path_buf();
    let mut c = served.conn();
    assert_eq!(c.cmd("FileHash checkall").names(), ["a.txt", "sub/b.txt"]);
    let (_, bytes, done) = download(&mut c, served.addr(), "sub/b.txt");
    assert_eq!((bytes.as_slice(), done.code), (&b"b\n"[..], 226));
    // The config reached the server: a line past 64 bytes is refused.
    assert_eq!(c.cmd(&format!("NOOP{}", " ".repeat(80))).code, 500);
    drop(c);
    drop(served);
    assert!(!path.exists(), "{} is left", path.display());
}

cases![
    greets_first_with_220,
    the_greeting_ends_with_crlf_and_the_replies_after_it_with_lf,
    help_lists_every_command_and_one_usage,
    noop_answers_200_and_takes_no_arguments,
    quit_says_bye_then_closes,
    verbs_and_flags_are_case_insensitive_names_are_not,
    blank_lines_get_no_reply,
    a_reply_is_sent_while_the_next_line_is_still_being_typed,
    quoted_names_hold_spaces_quotes_and_backslashes,
    indexget_errors,
    filehash_verify_checkall_and_errors,
    filedownload_errors,
    fileupload_is_disabled,
    auth_is_accepted_where_no_secret_is_set,
    auth_with_a_secret_gates_commands_and_closes_after_three_wrong_tries,
    history_shows_earlier_requests_of_this_peer,
    history_default_is_the_last_50,
    history_survives_a_restart,
    the_share_fixture_serves_its_files_with_its_config_and_cleans_up,
];
