//! `IndexGet longlist`: the table layout, what is shared and what is not,
//! field escaping, and the type column against real files of each kind.

use crate::support::*;

use std::fs;
use std::path::Path;
use std::time::Duration;

/// 2026-11-27T10:00:00Z
const T0: u64 = 1_795_773_600;

fn longlist_table_layout_is_exact_and_sorted_by_bytes() {
    let dir = TempDir::new("list-layout");
    // Written out of order; the reply is in byte order of the whole path,
    // not in the order a folder walk meets them.
    let files: &[(&str, &str, u64)] = &[
        ("dir/z.txt", "zz\n", T0 + 1),
        ("é.txt", "accént\n", T0 + 2),
        ("a.txt", "hello\n", T0),
        ("dir.txt", "d\n", T0 + 3),
        ("B.txt", "upper\n", T0 + 4),
        ("dir/sub/deep.txt", "deep\n", T0 + 5),
        ("a b.txt", "space\n", T0 + 6),
        ("dir-a.txt", "dash\n", T0 + 7),
        ("_.txt", "under\n", T0 + 86_400),
    ];
    for (name, content, t) in files {
        let p = dir.write(name, content);
        set_mtime(&p, unix(*t));
    }
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());

    // > IndexGet longlist
    let r = c.cmd("IndexGet longlist");
    assert_eq!(
        r.lines,
        [
            "213-name\tsize\ttimestamp\ttype",
            "213-B.txt\t6\t2026-11-27T10:00:04Z\ttext/plain",
            "213-_.txt\t6\t2026-11-28T10:00:00Z\ttext/plain",
            "213-a b.txt\t6\t2026-11-27T10:00:06Z\ttext/plain",
            "213-a.txt\t6\t2026-11-27T10:00:00Z\ttext/plain",
            "213-dir-a.txt\t5\t2026-11-27T10:00:07Z\ttext/plain",
            "213-dir.txt\t2\t2026-11-27T10:00:03Z\ttext/plain",
            "213-dir/sub/deep.txt\t5\t2026-11-27T10:00:05Z\ttext/plain",
            "213-dir/z.txt\t3\t2026-11-27T10:00:01Z\ttext/plain",
            "213-é.txt\t8\t2026-11-27T10:00:02Z\ttext/plain",
            "213 9 files",
        ]
    );
    let names = r.names();
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(names, sorted);
}

fn hidden_files_and_folders_are_never_listed() {
    let Served { dir, server } = Share::new("list-hidden")
        .file("shown.txt", "yes\n")
        .file(".secret", "no\n")
        .file("..dots", "no\n")
        .file(".hiddendir/a.txt", "no\n")
        .file("visible/.x", "no\n")
        .file("visible/.hidden/deep.txt", "no\n")
        .file("visible/shown.txt", "yes\n")
        .file(".p2pshare/planted.txt", "no\n")
        .serve();
    let mut c = Conn::open(server.addr());
    let want = ["shown.txt", "visible/shown.txt"];
    assert_eq!(c.cmd("IndexGet longlist").names(), want);
    assert_eq!(c.cmd("FileHash checkall").names(), want);
    assert_eq!(c.cmd("IndexGet regex *").names(), want);
    assert_eq!(c.cmd("IndexGet regex **/*").names(), want);

    // The server's own state (history, hash cache) now exists; a rescan
    // picks up a new file but still leaves the state folder out.
    assert!(dir.path().join(".p2pshare/history.tsv").is_file());
    dir.write("later.txt", "new\n");
    dir.write("visible/.later", "no\n");
    assert!(
        wait_until(Duration::from_secs(10), || {
            c.cmd("IndexGet longlist")
                .names()
                .contains(&"later.txt".into())
        }),
        "rescan never showed later.txt"
    );
    assert_eq!(
        c.cmd("IndexGet longlist").names(),
        ["later.txt", "shown.txt", "visible/shown.txt"]
    );
}

fn fields_with_tab_newline_or_backslash_are_escaped() {
    let dir = TempDir::new("list-escape");
    for name in [
        "tab\there.txt",
        "back\\slash.txt",
        "new\nline.txt",
        "cr\rx.txt",
    ] {
        let p = dir.write(name, "x\n");
        set_mtime(&p, unix(T0));
    }
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    let r = c.cmd("IndexGet longlist");
    // Every row has exactly four fields: no raw TAB or line break leaks.
    assert_eq!(
        r.lines,
        [
            "213-name\tsize\ttimestamp\ttype",
            "213-back\\\\slash.txt\t2\t2026-11-27T10:00:00Z\ttext/plain",
            "213-cr\\rx.txt\t2\t2026-11-27T10:00:00Z\ttext/plain",
            "213-new\\nline.txt\t2\t2026-11-27T10:00:00Z\ttext/plain",
            "213-tab\\there.txt\t2\t2026-11-27T10:00:00Z\ttext/plain",
            "213 4 files",
        ]
    );
    assert!(r.rows().iter().all(|row| row.len() == 4));
    // The unescaped name round-trips into a request (a TAB inside quotes).
    let names: Vec<String> = r
        .names()
        .iter()
        .map(|n| p2pshare::protocol::unescape_field(n))
        .collect();
    assert!(names.contains(&"tab\there.txt".to_string()));
    let v = c.cmd("FileHash verify \"tab\there.txt\"");
    assert_eq!(v.rows()[0][..2], ["tab\\there.txt", &md5_hex(b"x\n")]);
    let v = c.cmd("FileHash verify \"back\\\\slash.txt\"");
    assert_eq!(v.rows()[0][0], "back\\\\slash.txt");
}

// ---- real files of each kind, built by hand --------------------------------

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// One final stored (uncompressed) deflate block.
fn deflate_stored(data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(data.len()).expect("short data");
    let mut out = vec![0x01];
    out.extend(len.to_le_bytes());
    out.extend((!len).to_le_bytes());
    out.extend(data);
    out
}

fn png_1x1() -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut crc_input = kind.to_vec();
        crc_input.extend(data);
        out.extend(&crc_input);
        out.extend(crc32(&crc_input).to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    // 1x1, 8-bit greyscale.
    let ihdr = [0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0];
    chunk(&mut png, b"IHDR", &ihdr);
    let raw = [0u8, 0x80]; // filter byte, one pixel
    let mut zlib = vec![0x78, 0x01];
    zlib.extend(deflate_stored(&raw));
    zlib.extend(adler32(&raw).to_be_bytes());
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    png
}

fn jpeg_minimal() -> Vec<u8> {
    let mut j = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00".to_vec();
    j.extend(b"\xff\xd9");
    j
}

fn gif_1x1() -> Vec<u8> {
    vec![
        0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0xff, 0xff,
        0xff, 0x00, 0x00, 0x00, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00,
        0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
    ]
}

fn pdf_minimal() -> Vec<u8> {
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
        .to_vec()
}

/// A zip archive holding one stored file.
fn zip_one(name: &str, data: &[u8]) -> Vec<u8> {
    let crc = crc32(data).to_le_bytes();
    let size = (data.len() as u32).to_le_bytes();
    let name_len = (name.len() as u16).to_le_bytes();
    let (time, date) = ([0x00, 0x50], [0x7b, 0x5d]); // 2026-11-27 10:00
    let mut z = Vec::new();
    // Local file header.
    z.extend(b"PK\x03\x04");
    z.extend([20, 0, 0, 0, 0, 0]); // version needed, flags, method: stored
    z.extend(time);
    z.extend(date);
    z.extend(crc);
    z.extend(size);
    z.extend(size);
    z.extend(name_len);
    z.extend([0, 0]);
    z.extend(name.as_bytes());
    z.extend(data);
    // Central directory.
    let cd_offset = (z.len() as u32).to_le_bytes();
    let cd_start = z.len();
    z.extend(b"PK\x01\x02");
    z.extend([20, 3, 20, 0, 0, 0, 0, 0]); // made by, needed, flags, method
    z.extend(time);
    z.extend(date);
    z.extend(crc);
    z.extend(size);
    z.extend(size);
    z.extend(name_len);
    z.extend([0; 8]); // extra, comment, disk, internal attrs
    z.extend((0o100644u32 << 16).to_le_bytes()); // external attrs
    z.extend([0, 0, 0, 0]); // offset of the local header
    z.extend(name.as_bytes());
    let cd_size = ((z.len() - cd_start) as u32).to_le_bytes();
    // End of central directory.
    z.extend(b"PK\x05\x06");
    z.extend([0, 0, 0, 0, 1, 0, 1, 0]);
    z.extend(cd_size);
    z.extend(cd_offset);
    z.extend([0, 0]);
    z
}

/// A gzip member holding `data` in a stored deflate block.
fn gzip_of(data: &[u8]) -> Vec<u8> {
    let mut g = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    g.extend(deflate_stored(data));
    g.extend(crc32(data).to_le_bytes());
    g.extend((data.len() as u32).to_le_bytes());
    g
}

/// Binary data that matches no magic number.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// An ELF executable of this machine: /bin/ls, or this test binary.
fn an_elf() -> Vec<u8> {
    fs::read("/bin/ls")
        .or_else(|_| fs::read(std::env::current_exe().expect("current exe")))
        .expect("an ELF file to copy")
}

fn type_column(c: &mut Conn) -> Vec<(String, String)> {
    c.cmd("IndexGet longlist")
        .rows()
        .into_iter()
        .map(|r| (r[0].clone(), r[3].clone()))
        .collect()
}

/// Files of many types, each with the type `file --mime-type` gives it.
fn type_cases() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    vec![
        (
            "notes.txt",
            b"hello world\nsecond line\n".to_vec(),
            "text/plain",
        ),
        (
            "readme",
            "caf\u{e9} au lait\n".as_bytes().to_vec(),
            "text/plain",
        ),
        (
            "dos.txt",
            b"line one\r\nline two\r\n".to_vec(),
            "text/plain",
        ),
        // Text that is not UTF-8 is still text to `file`.
        (
            "latin1.txt",
            b"caf\xe9 cr\xe8me br\xfbl\xe9e\n".to_vec(),
            "text/plain",
        ),
        (
            "cp1252.txt",
            b"\x93quoted\x94 \x85 bell\x07\n".to_vec(),
            "text/plain",
        ),
        (
            "utf16.txt",
            b"\xff\xfeh\0i\0\r\0\n\0".to_vec(),
            "text/plain",
        ),
        ("pixel.png", png_1x1(), "image/png"),
        ("photo.jpg", jpeg_minimal(), "image/jpeg"),
        ("anim.gif", gif_1x1(), "image/gif"),
        ("doc.pdf", pdf_minimal(), "application/pdf"),
        (
            "archive.zip",
            zip_one("hello.txt", b"hello\n"),
            "application/zip",
        ),
        ("notes.txt.gz", gzip_of(b"hello gzip\n"), "application/gzip"),
        ("noise.dat", noise(2048), "application/octet-stream"),
        (
            "controls.dat",
            b"abc\x01\x02def\n".to_vec(),
            "application/octet-stream",
        ),
        ("empty", Vec::new(), "inode/x-empty"),
        // Content first, the name second.
        ("disguised.txt", png_1x1(), "image/png"),
        ("text.bin", b"plain words\n".to_vec(), "text/plain"),
    ]
}

/// The type a table lists for `name`.
fn type_in(listed: &[(String, String)], name: &str) -> String {
    listed
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} not listed: {listed:?}"))
        .1
        .clone()
}

/// Writes [`type_cases`] and an ELF file (`tools/ls`) into `dir` and
/// returns the type column a server sharing it lists.
fn listed_types(dir: &TempDir) -> Vec<(String, String)> {
    for (name, bytes, _) in &type_cases() {
        dir.write(name, bytes);
    }
    dir.write("tools/ls", an_elf());
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    type_column(&mut c)
}

fn type_column_sniffs_content_like_file_does() {
    let dir = TempDir::new("list-types");
    let cases = type_cases();
    let listed = listed_types(&dir);
    let type_of = |name: &str| type_in(&listed, name);
    for (name, _, want) in &cases {
        assert_eq!(type_of(name), *want, "type of {name}");
    }
    let elf_type = type_of("tools/ls");
    assert!(
        [
            "application/x-executable",
            "application/x-pie-executable",
            "application/x-sharedlib"
        ]
        .contains(&elf_type.as_str()),
        "ELF type {elf_type}"
    );
}

fn type_column_gives_the_same_answers_as_the_file_command() {
    assert!(
        file_mime(Path::new("/dev/null")).is_some(),
        "`file --mime-type` does not run here"
    );
    let dir = TempDir::new("list-types-file");
    let listed = listed_types(&dir);
    for (name, _, _) in &type_cases() {
        let theirs = file_mime(&dir.path().join(name)).unwrap();
        assert_eq!(type_in(&listed, name), theirs, "{name}: ours vs `file`");
    }
    let elf = dir.path().join("tools/ls");
    assert_eq!(
        type_in(&listed, "tools/ls"),
        file_mime(&elf).unwrap(),
        "ELF: ours vs `file`"
    );
    // A gzip file made by the gzip command, too.
    let plain = dir.write("log.txt", "line one\nline two\n".repeat(50));
    gzip(&plain);
    let gz = dir.path().join("log.txt.gz");
    assert_eq!(file_mime(&gz).as_deref(), Some("application/gzip"));
}

/// `gzip -k path` (gzip is essential on Debian: its absence is a failure).
fn gzip(path: &Path) {
    let ran = std::process::Command::new("gzip")
        .arg("-k")
        .arg(path)
        .status();
    assert!(
        ran.as_ref().is_ok_and(|s| s.success()),
        "gzip -k failed: {ran:?}"
    );
}

fn gzip_made_by_the_gzip_command_is_application_gzip() {
    let dir = TempDir::new("list-gzip");
    let plain = dir.write("log.txt", "line one\nline two\n".repeat(50));
    gzip(&plain);
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    let listed = type_column(&mut c);
    assert_eq!(
        listed,
        [
            ("log.txt".to_string(), "text/plain".to_string()),
            ("log.txt.gz".to_string(), "application/gzip".to_string()),
        ]
    );
}

/// A pattern that looks like a regular expression and matches nothing is
/// not met with silence: the count line says patterns are shell-style and
/// how this one is written so. The table stays a table.
fn a_regular_expression_that_matches_nothing_is_told_how_to_write_it() {
    let Served { dir: _dir, server } = Share::new("list-regex-hint")
        .file("docs/a.txt", "a\n")
        .serve();
    let mut c = Conn::open(server.addr());
    let r = c.cmd(r"IndexGet regex ^docs/.*\.txt$");
    assert_eq!(r.code, 213, "{:?}", r.lines);
    assert!(r.names().is_empty(), "{:?}", r.lines);
    assert!(r.last().starts_with("0 files; "), "{:?}", r.lines);
    assert!(r.last().contains("shell-style"), "{:?}", r.lines);
    assert!(r.last().contains("\"docs/*.txt\""), "{:?}", r.lines);
    // The hint is right, and a pattern that matches gets no note.
    let r = c.cmd("IndexGet regex docs/*.txt");
    assert_eq!(r.names(), ["docs/a.txt"]);
    assert_eq!(r.last(), "1 files");
}

cases![
    a_regular_expression_that_matches_nothing_is_told_how_to_write_it,
    longlist_table_layout_is_exact_and_sorted_by_bytes,
    hidden_files_and_folders_are_never_listed,
    fields_with_tab_newline_or_backslash_are_escaped,
    type_column_sniffs_content_like_file_does,
    #[ignore = "needs `file` (apt-get install file)"]
    type_column_gives_the_same_answers_as_the_file_command,
    gzip_made_by_the_gzip_command_is_application_gzip,
];
