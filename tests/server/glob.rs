//! `IndexGet regex <pattern>`: shell-style patterns, against the base name
//! when the pattern has no `/`, against the whole path when it has one.

use crate::support::*;

fn share() -> TempDir {
    let dir = TempDir::new("glob");
    for name in [
        "a.txt",
        "b.md",
        "img1.png",
        "img2.png",
        "img10.png",
        "docs/b.txt",
        "docs/d.pdf",
        "docs/deep/c.txt",
        "docs/deep/deeper/e.txt",
        "my docs/x y.txt",
        "other/docs/f.txt",
        ".hidden.txt",
        "docs/.secret.txt",
    ] {
        dir.write(name, name.as_bytes());
    }
    dir
}

fn names(c: &mut Conn, pattern: &str) -> Vec<String> {
    let r = c.cmd(&format!("IndexGet regex {pattern}"));
    assert_eq!(r.code, 213, "{pattern}: {:?}", r.lines);
    assert_eq!(r.header(), "name\tsize\ttimestamp\ttype");
    assert_eq!(r.last(), format!("{} files", r.rows().len()));
    r.names()
}

fn a_pattern_without_slash_matches_the_base_name_at_any_depth() {
    let dir = share();
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    // > IndexGet regex *.txt
    assert_eq!(
        names(&mut c, "*.txt"),
        [
            "a.txt",
            "docs/b.txt",
            "docs/deep/c.txt",
            "docs/deep/deeper/e.txt",
            "my docs/x y.txt",
            "other/docs/f.txt",
        ]
    );
    assert_eq!(names(&mut c, "b.*"), ["b.md", "docs/b.txt"]);
    assert_eq!(names(&mut c, "e.txt"), ["docs/deep/deeper/e.txt"]);
    // A folder's name alone is not a file's base name.
    assert_eq!(names(&mut c, "docs"), Vec::<String>::new());
    // Hidden files never match, not even a pattern for dot files.
    assert_eq!(names(&mut c, ".*"), Vec::<String>::new());
    assert_eq!(names(&mut c, "*secret*"), Vec::<String>::new());
}

fn a_pattern_with_slash_matches_the_whole_path() {
    let dir = share();
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    // `*` stays within one folder.
    assert_eq!(names(&mut c, "docs/*.txt"), ["docs/b.txt"]);
    assert_eq!(names(&mut c, "docs/*"), ["docs/b.txt", "docs/d.pdf"]);
    assert_eq!(names(&mut c, "*/b.txt"), ["docs/b.txt"]);
    assert_eq!(
        names(&mut c, "*/*/*.txt"),
        ["docs/deep/c.txt", "other/docs/f.txt"]
    );
    // `**` crosses folders, zero or more of them.
    assert_eq!(
        names(&mut c, "docs/**/*.txt"),
        ["docs/b.txt", "docs/deep/c.txt", "docs/deep/deeper/e.txt"]
    );
    assert_eq!(
        names(&mut c, "**/docs/*.txt"),
        ["docs/b.txt", "other/docs/f.txt"]
    );
    assert_eq!(names(&mut c, "**/*.pdf"), ["docs/d.pdf"]);
    assert_eq!(
        names(&mut c, "docs/**/*"),
        [
            "docs/b.txt",
            "docs/d.pdf",
            "docs/deep/c.txt",
            "docs/deep/deeper/e.txt"
        ]
    );
    // The path is anchored: no match in the middle.
    assert_eq!(names(&mut c, "deep/*.txt"), Vec::<String>::new());
    // Quoted, a pattern holds spaces.
    assert_eq!(names(&mut c, "\"my docs/*\""), ["my docs/x y.txt"]);
    assert_eq!(names(&mut c, "\"* y.txt\""), ["my docs/x y.txt"]);
}

fn question_mark_and_brackets() {
    let dir = share();
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    // `?` is exactly one character.
    assert_eq!(names(&mut c, "img?.png"), ["img1.png", "img2.png"]);
    assert_eq!(names(&mut c, "img??.png"), ["img10.png"]);
    assert_eq!(names(&mut c, "?.txt").len(), 5);
    // `?` never stands for `/`.
    assert_eq!(names(&mut c, "docs/deep?c.txt"), Vec::<String>::new());
    assert_eq!(names(&mut c, "docs/deep/?.txt"), ["docs/deep/c.txt"]);
    // Sets, ranges and negation.
    assert_eq!(names(&mut c, "img[12].png"), ["img1.png", "img2.png"]);
    assert_eq!(names(&mut c, "img[!1].png"), ["img2.png"]);
    assert_eq!(names(&mut c, "[a-b].*"), ["a.txt", "b.md", "docs/b.txt"]);
    assert_eq!(names(&mut c, "docs/[bd].*"), ["docs/b.txt", "docs/d.pdf"]);
    // Names are case-sensitive.
    assert_eq!(names(&mut c, "*.TXT"), Vec::<String>::new());
    assert_eq!(names(&mut c, "IMG1.png"), Vec::<String>::new());
}

fn an_invalid_pattern_is_501() {
    let dir = share();
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    for pattern in ["[", "img[1.png", "a**", "docs/***", "**a/b"] {
        let r = c.cmd(&format!("IndexGet regex {pattern}"));
        assert_eq!(r.code, 501, "{pattern}: {:?}", r.lines);
        assert!(r.last().contains("invalid pattern"), "{:?}", r.lines);
    }
    let r = c.cmd(&format!("IndexGet regex {}", "*".repeat(2000)));
    assert_eq!(r.code, 501, "{:?}", r.lines);
    c.assert_alive();
}

fn no_match_is_an_empty_table() {
    let dir = share();
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    // > IndexGet regex *.nothing
    // < 213-name	size	timestamp	type
    // < 213 0 files
    let r = c.cmd("IndexGet regex *.nothing");
    assert_eq!(r.lines, ["213-name\tsize\ttimestamp\ttype", "213 0 files"]);
    let r = c.cmd("IndexGet regex nowhere/**/*");
    assert_eq!(r.lines, ["213-name\tsize\ttimestamp\ttype", "213 0 files"]);
}

fn rows_are_the_longlist_rows() {
    let dir = share();
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    let all = c.cmd("IndexGet longlist");
    let some = c.cmd("IndexGet regex docs/*");
    for row in some.lines[1..some.lines.len() - 1].iter() {
        assert!(all.lines.contains(row), "{row} not in {:?}", all.lines);
    }
    assert_eq!(some.rows().len(), 2);
}

cases![
    a_pattern_without_slash_matches_the_base_name_at_any_depth,
    a_pattern_with_slash_matches_the_whole_path,
    question_mark_and_brackets,
    an_invalid_pattern_is_501,
    no_match_is_an_empty_table,
    rows_are_the_longlist_rows,
];
