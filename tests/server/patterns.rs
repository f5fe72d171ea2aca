//! Pattern safety (`IndexGet regex`) against a real server sharing 10,000
//! files with long names: patterns built to make a backtracking matcher
//! blow up (the vsftpd 2.3.3 kind of CPU exhaustion) answer within two
//! seconds or are refused with 501, and a pattern longer than 1024 bytes
//! is refused.

use crate::support::*;

use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use p2pshare::server::{Config, RunningServer};

/// How long one pattern may take, reply read to its end: four times the
/// server's matching budget, room for a loaded machine, and still far below
/// the minutes a backtracking matcher would take.
const BOUND: Duration = Duration::from_secs(2);

/// Folders, files per folder, and the length of each base name.
const FOLDERS: usize = 40;
const PER_FOLDER: usize = 250;
const NAME_LEN: usize = 200;
/// Files in the folder with a long name of `a`s (for patterns with `/`).
const IN_LONG_FOLDER: usize = 20;

fn long_folder() -> String {
    "a".repeat(NAME_LEN)
}

/// One base name: almost all `a`, so `*a*a*...*b` finds a partial match
/// at every position and never a whole one.
fn base_name(i: usize) -> String {
    let tail = format!("{i:05}.txt");
    "a".repeat(NAME_LEN - tail.len()) + &tail
}

/// The shared server, built once for every test of this file (10,000
/// files take a moment to write and index).
fn server() -> &'static (TempDir, RunningServer) {
    static S: OnceLock<(TempDir, RunningServer)> = OnceLock::new();
    S.get_or_init(|| {
        let dir = TempDir::new("patterns");
        for f in 0..FOLDERS {
            let folder = dir.path().join(format!("dir{f:02}"));
            std::fs::create_dir_all(&folder).unwrap();
            for i in 0..PER_FOLDER {
                std::fs::write(folder.join(base_name(f * PER_FOLDER + i)), b"").unwrap();
            }
        }
        for i in 0..IN_LONG_FOLDER {
            dir.write(&format!("{}/x{i}.txt", long_folder()), b"");
        }
        // No rescans during the test: each would walk 10,000 files.
        let server = start_with(Config {
            rescan: Duration::from_secs(3600),
            ..config(dir.path())
        });
        (dir, server)
    })
}

/// Sends `IndexGet regex <pattern>` and returns the reply and how long it
/// took, checking the bound.
fn timed(c: &mut Conn, pattern: &str) -> Reply {
    let began = Instant::now();
    let r = c.cmd(&format!("IndexGet regex {}", quote(pattern)));
    let took = began.elapsed();
    assert!(
        took < BOUND,
        "{} took {took:?} (pattern of {} bytes)",
        &pattern[..pattern.len().min(60)],
        pattern.len()
    );
    assert!(
        r.code == 213 || r.code == 501,
        "{}: {:?}",
        &pattern[..pattern.len().min(60)],
        &r.lines[..r.lines.len().min(3)]
    );
    r
}

fn the_share_really_has_ten_thousand_long_names() {
    let (_, server) = server();
    let mut c = Conn::open(server.addr());
    let all = c.cmd("IndexGet longlist");
    assert_eq!(all.rows().len(), FOLDERS * PER_FOLDER + IN_LONG_FOLDER);
    assert_eq!(
        all.names()
            .iter()
            .filter(|n| n.len() == 6 + NAME_LEN)
            .count(),
        FOLDERS * PER_FOLDER
    );
    // An ordinary pattern still finds what it should.
    let r = timed(&mut c, "*01234.txt");
    assert_eq!(r.names(), [format!("dir04/{}", base_name(1234))]);
}

fn many_stars_against_a_near_miss_answer_within_the_bound() {
    let (_, server) = server();
    let mut c = Conn::open(server.addr());
    let mut patterns = vec![
        "*a*a*a*a*a*a*a*a*b".to_string(),
        format!("{}b", "*a".repeat(30)),
        format!("{}b", "*a".repeat(200)),
        format!("{}*b", "*".repeat(1000)),
        format!("{}b", "*?".repeat(300)),
        format!("{}b", "a*".repeat(400)),
        format!("dir*/{}b", "*a".repeat(100)),
        format!("**/{}b", "*a?".repeat(60)),
        // Stars before a `/`, against the folder named with 200 `a`s: a
        // backtracking matcher tries every way to place them.
        "*a*a*a*a*a*a*a*a*b/*".to_string(),
        format!("{}b/**", "*a".repeat(40)),
        format!("**/{}b/*.txt", "*a".repeat(20)),
        // A long literal after a star: (name x pattern) steps per name.
        format!("*{}b", "a".repeat(180)),
        format!("*/*{}b", "a".repeat(180)),
    ];
    // Hundreds of `*` segments, up to the length cap.
    let mut p = String::new();
    while p.len() + 2 <= 1023 {
        p.push_str("*a");
    }
    p.push('b');
    patterns.push(p);
    for p in &patterns {
        let r = timed(&mut c, p);
        if r.code == 213 {
            assert_eq!(r.rows().len(), 0, "{p}");
        }
    }
    // Patterns that match everything, also cheaply.
    let r = timed(&mut c, &format!("{}*.txt", "*a".repeat(50)));
    if r.code == 213 {
        assert_eq!(r.rows().len(), FOLDERS * PER_FOLDER);
    }
    let r = timed(&mut c, &format!("{}*/*.txt", "*a".repeat(50)));
    if r.code == 213 {
        assert_eq!(r.rows().len(), IN_LONG_FOLDER);
    }
    c.assert_alive();
}

fn long_bracket_classes_answer_within_the_bound() {
    let (_, server) = server();
    let mut c = Conn::open(server.addr());
    let class: String = ('b'..='z').chain('A'..='Z').collect::<String>().repeat(21);
    let negated = format!("[!{}]", &class[..1000]);
    let patterns = [
        format!("[{}]*", &class[..1020]),
        format!("*[{}]*[{}]b", &class[..500], &class[..500]),
        format!("{negated}*"),
        format!("*{}", "[a-z0-9.]".repeat(110)),
        format!("*{}b", "[!b]*".repeat(200)),
        format!("[{}", "a".repeat(1020)),
    ];
    for p in &patterns {
        assert!(p.len() <= 1024, "{}", p.len());
        timed(&mut c, p);
    }
    c.assert_alive();
}

fn an_over_long_pattern_is_refused_with_501() {
    let (_, server) = server();
    let mut c = Conn::open(server.addr());
    let r = timed(&mut c, &"*".repeat(1025));
    assert_eq!(r.lines, ["501 pattern longer than 1024 bytes"]);
    let r = timed(&mut c, &format!("{}b", "*a".repeat(2000)));
    assert_eq!(r.code, 501);
    // Exactly at the cap: answered.
    let at_cap = format!("{}*.txt", "a".repeat(1019));
    assert_eq!(at_cap.len(), 1024);
    let r = timed(&mut c, &at_cap);
    assert_eq!(r.code, 213, "{:?}", &r.lines[..1]);
    assert_eq!(r.rows().len(), 0);
    // Three stars in a row are not a pattern.
    let r = timed(&mut c, "a***");
    assert_eq!(r.code, 501);
    c.assert_alive();
}

fn a_slow_pattern_holds_up_no_other_session() {
    let (_, server) = server();
    let addr = server.addr();
    // Several sessions hammering with the worst patterns at once...
    let hammer: Vec<_> = (0..3)
        .map(|_| {
            thread::spawn(move || {
                let mut c = Conn::open(addr);
                for _ in 0..5 {
                    c.cmd(&format!("IndexGet regex {}b", "*a".repeat(200)));
                }
            })
        })
        .collect();
    // ...while another is answered promptly.
    let mut c = Conn::open(addr);
    for _ in 0..10 {
        let t = Instant::now();
        c.assert_alive();
        assert!(t.elapsed() < BOUND, "{:?}", t.elapsed());
    }
    for t in hammer {
        t.join().unwrap();
    }
}

cases![
    the_share_really_has_ten_thousand_long_names,
    many_stars_against_a_near_miss_answer_within_the_bound,
    long_bracket_classes_answer_within_the_bound,
    an_over_long_pattern_is_refused_with_501,
    a_slow_pattern_holds_up_no_other_session,
];
