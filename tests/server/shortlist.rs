//! `IndexGet shortlist <start> <end>`: every accepted time form, inclusive
//! bounds in whole seconds, and the refusals.

use crate::support::*;

use std::time::Duration;

/// 2026-11-27T10:00:00Z
const TEN: u64 = 1_795_773_600;
const HOUR: u64 = 3600;

/// A share with files modified around 2026-11-27 10:00-12:00 UTC.
fn share() -> TempDir {
    let dir = TempDir::new("shortlist");
    let files: &[(&str, u64)] = &[
        ("day-before.txt", TEN - 10 * HOUR - 1), // 2026-11-26T23:59:59Z
        ("midnight.txt", TEN - 10 * HOUR),       // 2026-11-27T00:00:00Z
        ("early.txt", TEN - 1),                  // 09:59:59
        ("start.txt", TEN),                      // 10:00:00
        ("docs/mid.txt", TEN + HOUR),            // 11:00:00
        ("end.txt", TEN + 2 * HOUR),             // 12:00:00
        ("late.txt", TEN + 2 * HOUR + 1),        // 12:00:01
        ("next-day.txt", TEN + 14 * HOUR),       // 2026-11-28T00:00:00Z
    ];
    for (name, t) in files {
        let p = dir.write(name, name.as_bytes());
        set_mtime(&p, unix(*t));
    }
    // 12:00:00.700: within the end second, so inside an inclusive end.
    let p = dir.write("end-frac.txt", "frac");
    set_mtime(&p, unix(TEN + 2 * HOUR) + Duration::from_millis(700));
    dir
}

const TEN_TO_NOON: [&str; 4] = ["docs/mid.txt", "end-frac.txt", "end.txt", "start.txt"];

fn rfc3339_with_z() {
    let dir = share();
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    // > IndexGet shortlist 2026-11-27T10:00:00Z 2026-11-27T12:00:00Z
    let r = c.cmd("IndexGet shortlist 2026-11-27T10:00:00Z 2026-11-27T12:00:00Z");
    assert_eq!(r.header(), "name\tsize\ttimestamp\ttype");
    assert_eq!(r.names(), TEN_TO_NOON);
    assert_eq!(r.last(), "4 files");
    let times: Vec<String> = r.rows().into_iter().map(|row| row[2].clone()).collect();
    assert_eq!(
        times,
        [
            "2026-11-27T11:00:00Z",
            "2026-11-27T12:00:00Z",
            "2026-11-27T12:00:00Z",
            "2026-11-27T10:00:00Z"
        ]
    );
    // RFC 3339 letters may be lowercase, and fractions of a second are
    // allowed (the file at 12:00:00.700 counts as 12:00:00).
    let r = c.cmd("IndexGet shortlist 2026-11-27t10:00:00z 2026-11-27T12:00:00.000Z");
    assert_eq!(r.names(), TEN_TO_NOON);
    // No offset at all means UTC too.
    let r = c.cmd("IndexGet shortlist 2026-11-27T10:00:00 2026-11-27T12:00:00");
    assert_eq!(r.names(), TEN_TO_NOON);
}

fn rfc3339_with_offset() {
    let dir = share();
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    // 12:00+02:00 is 10:00Z.
    let r = c.cmd("IndexGet shortlist 2026-11-27T12:00:00+02:00 2026-11-27T14:00:00+02:00");
    assert_eq!(r.names(), TEN_TO_NOON);
    // West of UTC, and the two forms mixed.
    let r = c.cmd("IndexGet shortlist 2026-11-27T05:00:00-05:00 2026-11-27T12:00:00Z");
    assert_eq!(r.names(), TEN_TO_NOON);
}

fn date_only_means_midnight_utc() {
    let dir = share();
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    // Both midnights are inside: the bounds are inclusive.
    let r = c.cmd("IndexGet shortlist 2026-11-27 2026-11-28");
    assert_eq!(
        r.names(),
        [
            "docs/mid.txt",
            "early.txt",
            "end-frac.txt",
            "end.txt",
            "late.txt",
            "midnight.txt",
            "next-day.txt",
            "start.txt"
        ]
    );
    let r = c.cmd("IndexGet shortlist 2026-11-26 2026-11-27");
    assert_eq!(r.names(), ["day-before.txt", "midnight.txt"]);
}

fn unix_seconds() {
    let dir = share();
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    let r = c.cmd(&format!("IndexGet shortlist {TEN} {}", TEN + 2 * HOUR));
    assert_eq!(r.names(), TEN_TO_NOON);
    // Mixed with RFC 3339.
    let r = c.cmd(&format!(
        "IndexGet shortlist 2026-11-27T10:00:00Z {}",
        TEN + 2 * HOUR
    ));
    assert_eq!(r.names(), TEN_TO_NOON);
    // Everything since the epoch.
    let r = c.cmd("IndexGet shortlist 0 4102444800");
    assert_eq!(r.names().len(), 9);
}

fn four_word_form() {
    let dir = share();
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    // > IndexGet shortlist 2026-11-27 10:00:00 2026-11-27 12:00:00
    let r = c.cmd("IndexGet shortlist 2026-11-27 10:00:00 2026-11-27 12:00:00");
    assert_eq!(r.names(), TEN_TO_NOON);
    let r = c.cmd("indexget SHORTLIST 2026-11-27 09:59:59 2026-11-27 10:00:00");
    assert_eq!(r.names(), ["early.txt", "start.txt"]);
}

fn bounds_are_inclusive_to_the_second() {
    let dir = share();
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    // start == end: exactly the files of that second.
    let r = c.cmd("IndexGet shortlist 2026-11-27T10:00:00Z 2026-11-27T10:00:00Z");
    assert_eq!(r.names(), ["start.txt"]);
    let r = c.cmd("IndexGet shortlist 2026-11-27T12:00:00Z 2026-11-27T12:00:00Z");
    assert_eq!(r.names(), ["end-frac.txt", "end.txt"]);
    // One second either side is out.
    let r = c.cmd("IndexGet shortlist 2026-11-27T10:00:01Z 2026-11-27T11:59:59Z");
    assert_eq!(r.names(), ["docs/mid.txt"]);
    // A window with nothing in it is an empty table.
    let r = c.cmd("IndexGet shortlist 2026-11-27T10:00:01Z 2026-11-27T10:59:59Z");
    assert_eq!(r.lines, ["213-name\tsize\ttimestamp\ttype", "213 0 files"]);
}

fn end_before_start_is_501() {
    let dir = share();
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    for line in [
        "IndexGet shortlist 2026-11-27T12:00:00Z 2026-11-27T10:00:00Z",
        "IndexGet shortlist 2026-11-28 2026-11-27",
        "IndexGet shortlist 1795780800 1795773600",
        "IndexGet shortlist 2026-11-27 12:00:00 2026-11-27 10:00:00",
        "IndexGet shortlist 2026-11-27T10:00:01Z 2026-11-27T10:00:00Z",
    ] {
        let r = c.cmd(line);
        assert_eq!(r.code, 501, "{line}: {:?}", r.lines);
        assert!(r.last().contains("before the start"), "{:?}", r.lines);
        assert!(
            r.last().contains("usage: IndexGet shortlist"),
            "{:?}",
            r.lines
        );
    }
    c.assert_alive();
}

fn junk_times_are_501() {
    let dir = share();
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    for line in [
        "IndexGet shortlist yesterday today",
        "IndexGet shortlist 2026-13-01 2026-12-01",
        "IndexGet shortlist 2026-11-27T25:00:00Z 2026-11-28",
        "IndexGet shortlist 2026-11-27T10:00:00+25:00 2026-11-28",
        "IndexGet shortlist 2026-11-27T10 2026-11-28",
        "IndexGet shortlist -5 10",
        "IndexGet shortlist 99999999999999999999 99999999999999999999",
        "IndexGet shortlist 2026-11-27 10:00:00 2026-11-27 noon",
        "IndexGet shortlist 1969-12-31T23:00:00Z 2026-11-28",
    ] {
        let r = c.cmd(line);
        assert_eq!(r.code, 501, "{line}: {:?}", r.lines);
        assert!(r.last().contains("bad time"), "{:?}", r.lines);
    }
    // A wrong number of words is a usage error.
    for line in [
        "IndexGet shortlist",
        "IndexGet shortlist 2026-11-27",
        "IndexGet shortlist 2026-11-27 10:00:00 2026-11-28",
        "IndexGet shortlist a b c d e",
    ] {
        let r = c.cmd(line);
        assert_eq!(r.code, 501, "{line}: {:?}", r.lines);
        assert!(
            r.last().contains("usage: IndexGet shortlist <start> <end>"),
            "{:?}",
            r.lines
        );
    }
    c.assert_alive();
}

cases![
    rfc3339_with_z,
    rfc3339_with_offset,
    date_only_means_midnight_utc,
    unix_seconds,
    four_word_form,
    bounds_are_inclusive_to_the_second,
    end_before_start_is_501,
    junk_times_are_501,
];
