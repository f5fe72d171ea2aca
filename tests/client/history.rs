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

cases![
    history_leaves_out_the_poll_rows_or_keeps_one_command,
    the_clients_own_history_filters_the_same_way,
];
