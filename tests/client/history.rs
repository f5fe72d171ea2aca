//! `History` and the client's `history` filtered: only one command's rows,
//! or without the `FileHash checkall` rows a peer's poller leaves every
//! poll. Over a real connection to a real server, and the binary.

use crate::support::*;

use crate::process::*;

/// The request column of a History table.
fn requests(r: &Reply) -> Vec<String> {
    r.rows().into_iter().map(|row| row[3].clone()).collect()
}

fn history_leaves_out_the_poll_rows_or_keeps_one_command() {
    let dir = TempDir::new("history-filter");
    dir.write("a.txt", "a");
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    for _ in 0..5 {
        assert_eq!(c.cmd("FileHash checkall").code, 213);
        assert_eq!(c.cmd("NOOP").code, 200);
    }
    assert_eq!(c.cmd("FileHash verify a.txt").code, 213);
    assert_eq!(c.cmd("IndexGet longlist").code, 213);

    let all = c.cmd("History 100");
    assert!(requests(&all).iter().any(|r| r == "FileHash checkall"));
    let quiet = c.cmd("History 100 --no-poll");
    let got = requests(&quiet);
    assert!(!got.iter().any(|r| r == "FileHash checkall"), "{got:?}");
    assert!(got.iter().any(|r| r == "FileHash verify a.txt"), "{got:?}");
    assert!(got.iter().any(|r| r == "History 100"), "{got:?}");
    assert_eq!(
        quiet.last(),
        format!("{} requests", got.len()),
        "the count is the rows kept"
    );

    // The last n of the kept rows, oldest first.
    let noops = c.cmd("history --only noop 3");
    assert_eq!(requests(&noops), ["NOOP", "NOOP", "NOOP"]);
    let hashes = c.cmd("History --only FileHash --no-poll");
    assert_eq!(requests(&hashes), ["FileHash verify a.txt"]);

    for bad in [
        "History --only",
        "History 5 6",
        "History --frob",
        "History 99999999",
    ] {
        let r = c.cmd(bad);
        assert_eq!(r.code, 501, "{bad}: {:?}", r.lines);
        assert!(r.last().contains("History"), "{bad}: {:?}", r.lines);
    }
    c.assert_alive();
}

/// Runs the client with these commands; its output from the history's
/// header on.
fn local_rows(
    addr: std::net::SocketAddr,
    share: &std::path::Path,
    commands: &[&str],
) -> (Finished, Vec<String>) {
    let mut args = Vec::new();
    for c in commands {
        args.extend(["-c", c]);
    }
    let f = run(&client_args(addr, share, &args), "");
    let rows = f
        .lines()
        .into_iter()
        .skip_while(|l| !l.starts_with("time\t"))
        .map(str::to_string)
        .collect();
    (f, rows)
}

fn the_clients_own_history_filters_the_same_way() {
    let (there, here) = (TempDir::new("history-there"), TempDir::new("history-here"));
    there.write("a.txt", "a");
    let server = start(there.path());
    let commands = [
        "FileHash checkall",
        "NOOP",
        "FileHash checkall",
        "history --no-poll",
    ];
    let (f, rows) = local_rows(server.addr(), here.path(), &commands);
    assert_eq!(f.code(), Some(0), "{f}");
    assert_eq!(rows.len(), 2, "the header and NOOP: {f}");
    assert!(rows[1].ends_with("\tNOOP\t200"), "{f}");
    let (f, rows) = local_rows(server.addr(), here.path(), &["history --only filehash 1"]);
    assert_eq!(rows.len(), 2, "{f}");
    assert!(rows[1].ends_with("\tFileHash checkall\t213"), "{f}");
    let (bad, _) = local_rows(server.addr(), here.path(), &["history --only"]);
    assert_eq!(bad.code(), Some(2), "{bad}");
}

/// A row the disk cannot take whole is not left in part: the client runs
/// under a file size limit (`ulimit -f`, SIGXFSZ ignored, so a write past
/// it is cut short and the next fails with EFBIG, as at a full disk) with
/// a history that ends 10 bytes short of it.
fn a_history_row_cut_short_by_the_disk_is_taken_back_whole() {
    let there = TempDir::new("history-efbig-there");
    there.write("a.txt", "a");
    let server = start(there.path());
    let (share, state) = (
        TempDir::new("history-efbig-share"),
        TempDir::new("history-efbig-state"),
    );
    // What `ulimit -f 2` allows, in bytes (sh counts blocks of 512 or 1024).
    let probe = state.path().join("probe");
    let probe_script =
        "trap '' XFSZ; ulimit -f 2 || exit 97; head -c 100000 /dev/zero > \"$0\" 2>/dev/null";
    let _ = std::process::Command::new("sh")
        .args(["-c", probe_script, &probe.display().to_string()])
        .status();
    let limit = std::fs::metadata(&probe)
        .map(|m| m.len() as usize)
        .unwrap_or(0);
    assert!(
        (512..100_000).contains(&limit),
        "sh cannot set a file size limit: {limit}"
    );
    std::fs::remove_file(&probe).unwrap();
    // Whole rows up to 10 bytes short of the limit.
    let row = |request: &str| format!("2026-01-01T00:00:00Z\tout\t127.0.0.1:1\t{request}\t200\n");
    let filler = row(&"x".repeat(limit - 10 - row("").len()));
    let history = state.path().join("history.tsv");
    std::fs::write(&history, &filler).unwrap();
    let script = "trap '' XFSZ; ulimit -f 2 || exit 97; exec \"$0\" \"$@\"";
    let (addr, share_dir) = (
        server.addr().to_string(),
        share.path().display().to_string(),
    );
    let state_dir = state.path().display().to_string();
    let args = [
        "-c",
        script,
        bin(),
        "client",
        &addr,
        "--share",
        &share_dir,
        "--state",
        &state_dir,
        "-c",
        "NOOP",
    ];
    let out = Proc::spawn_program("sh", &args, &[]).finish();
    assert_eq!(out.code(), Some(0), "{out}");
    let got = String::from_utf8_lossy(&std::fs::read(&history).unwrap()).into_owned();
    assert_eq!(got, filler, "only whole rows; {out}");
    // With room again, the next rows are whole, each on its own line.
    let out = run(
        &client_args(
            server.addr(),
            share.path(),
            &["--state", &state_dir, "-c", "NOOP"],
        ),
        "",
    );
    assert_eq!(out.code(), Some(0), "{out}");
    let got = String::from_utf8_lossy(&std::fs::read(&history).unwrap()).into_owned();
    assert!(got.starts_with(&filler), "{got:?}");
    let rows: Vec<&str> = got[filler.len()..].lines().collect();
    assert!(!rows.is_empty(), "{got:?}");
    for r in rows {
        let fields: Vec<&str> = r.split('\t').collect();
        assert_eq!(fields.len(), 5, "{r:?}");
        assert!(
            fields[0].starts_with("20") && fields[4].parse::<u16>().is_ok(),
            "{r:?}"
        );
    }
}

cases![
    history_leaves_out_the_poll_rows_or_keeps_one_command,
    the_clients_own_history_filters_the_same_way,
    a_history_row_cut_short_by_the_disk_is_taken_back_whole,
];
