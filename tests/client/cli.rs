//! The command line as a person types it, through the real binary: which
//! `--share` paths are created and which are mistakes, host names and
//! `HOST:PORT` forms, and the addresses a server listens on.

use crate::support::*;

use crate::process::*;

use std::fs;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn serve_args(share: &Path) -> Vec<String> {
    [
        "serve",
        "--share",
        &s(share),
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
    ]
    .map(String::from)
    .to_vec()
}

fn a_share_with_a_missing_parent_is_refused_and_nothing_is_created() {
    let dir = TempDir::new("cli-typo");
    let typo = dir.path().join("mnt/usb/photos");
    let out = run(&serve_args(&typo), "");
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "{} does not exist",
            dir.path().join("mnt/usb").display()
        )),
        "{out}"
    );
    assert!(!dir.path().join("mnt").exists(), "{out}");
    // The client refuses it as well, before anything else (exit 2).
    let out = run(&client_args(closed_addr(), &typo, &["-c", "NOOP"]), "");
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(out.stderr.contains("does not exist"), "{out}");
    assert!(!dir.path().join("mnt").exists(), "{out}");
}

fn a_share_that_is_a_file_is_not_a_folder() {
    let dir = TempDir::new("cli-file");
    let file = dir.write("afile", "x");
    let out = run(&serve_args(&file), "");
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("not a folder"), "{out}");
    assert!(!out.stderr.contains("os error"), "{out}");
    let out = run(&client_args(closed_addr(), &file, &["-c", "NOOP"]), "");
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(out.stderr.contains("not a folder"), "{out}");
}

fn only_the_last_folder_of_a_share_is_created_and_that_is_said() {
    let dir = TempDir::new("cli-create");
    let share = dir.path().join("new");
    let server = Proc::spawn(&serve_args(&share));
    server.serving_addr();
    assert!(share.is_dir());
    assert!(
        server
            .stderr()
            .contains(&format!("created the folder {}", share.display())),
        "{}",
        server.dump()
    );
    drop(server);
    // The second time it is there: nothing to say.
    let again = Proc::spawn(&serve_args(&share));
    again.serving_addr();
    assert!(!again.stderr().contains("created"), "{}", again.dump());
}

fn the_default_share_is_created_in_the_current_folder() {
    let cwd = TempDir::new("cli-default");
    let mut cmd = Command::new(bin());
    cmd.current_dir(cwd.path())
        .args(["serve", "--bind", "127.0.0.1", "--port", "0"]);
    let server = Proc::spawn_command(cmd, "p2pshare serve (in a new folder)".into());
    server.serving_addr();
    assert!(cwd.path().join("shared").is_dir());
    assert!(
        server.stderr().contains("created the folder"),
        "{}",
        server.dump()
    );
    assert!(fs::read_dir(cwd.path().join("shared/.p2pshare")).is_ok());
}

/// The address in a server's start line (`... on ADDR`).
fn start_line_addr(p: &Proc) -> std::net::SocketAddr {
    // The whole line: stderr is unbuffered, so a line may be read while
    // it is still being written.
    let whole = |err: &str| {
        err.split_inclusive('\n')
            .find(|l| l.starts_with("p2pshare: sharing ") && l.ends_with('\n'))
            .map(|l| l.trim_end().to_string())
    };
    assert!(
        wait_until(LIMIT, || whole(&p.stderr()).is_some()),
        "no start line\n{}",
        p.dump()
    );
    let line = whole(&p.stderr()).unwrap();
    line.rsplit(" on ")
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
}

fn ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

fn bind_takes_a_host_name() {
    let dir = TempDir::new("cli-bind-name");
    let server = Proc::spawn(&[
        "serve",
        "--share",
        &s(dir.path()),
        "--bind",
        "localhost",
        "--port",
        "0",
    ]);
    let addr = start_line_addr(&server);
    assert!(addr.ip().is_loopback(), "{}", server.dump());
    let mut c = Conn::open(addr);
    assert_eq!(c.cmd("NOOP").code, 200);

    for (bind, says) in [
        (
            "no-such-host.invalid",
            "cannot resolve 'no-such-host.invalid'",
        ),
        ("127.0.0.1:9000", "the port goes in --port"),
    ] {
        let out = run(&["serve", "--share", &s(dir.path()), "--bind", bind], "");
        assert_eq!(out.code(), Some(2), "{bind}: {out}");
        assert!(out.stderr.contains(says), "{bind}: {out}");
    }
}

fn a_wrong_host_port_says_which_part_is_wrong() {
    for (target, says) in [
        ("127.0.0.1:notaport", "'notaport' is not a port number"),
        ("127.0.0.1:70000", "'70000' is not a port number"),
        ("[::1", "without its ']'"),
        (":9000", "has no host"),
    ] {
        let out = run(&["client", target, "-c", "NOOP"], "");
        assert_eq!(out.code(), Some(2), "{target}: {out}");
        assert!(out.stderr.contains(says), "{target}: {out}");
        assert!(!out.stderr.contains("lookup"), "{target}: {out}");
        let out = run(&["peer", "--connect", target], "");
        assert_eq!(out.code(), Some(2), "{target}: {out}");
        assert!(out.stderr.contains(says), "{target}: {out}");
    }
}

fn ipv6_targets_in_brackets_keep_working() {
    let dir = TempDir::new("cli-v6");
    if !ipv6_loopback() {
        // Without IPv6 the form is still understood: the failure is the
        // connection's, not the command line's.
        let out = run(&["client", "[::1]:9", "-c", "NOOP"], "");
        assert!(out.stderr.contains("cannot connect to [::1]:9"), "{out}");
        return;
    }
    let server = Proc::spawn(&[
        "serve",
        "--share",
        &s(dir.path()),
        "--bind",
        "::1",
        "--port",
        "0",
    ]);
    let addr = start_line_addr(&server);
    assert_eq!(addr.ip().to_string(), "::1");
    let target = format!("[::1]:{}", addr.port());
    let out = run(
        &[
            "client",
            &target,
            "--share",
            &s(&dir.path().join("c")),
            "-c",
            "NOOP",
        ],
        "",
    );
    assert_eq!(out.code(), Some(0), "{out}");
}

fn by_default_a_server_takes_ipv4_and_ipv6_and_sees_ipv4_clients_as_ipv4() {
    let dir = TempDir::new("cli-dual");
    dir.write("share/a.txt", "alpha\n");
    dir.write("share/b.txt", "beta\n");
    let share = dir.path().join("share");
    let server = Proc::spawn(&[
        "serve",
        "--share",
        &s(&share),
        "--port",
        "0",
        "--max-per-ip",
        "1",
    ]);
    let addr = start_line_addr(&server);
    let dual = ipv6_loopback()
        && fs::read_to_string("/proc/sys/net/ipv6/bindv6only").is_ok_and(|v| v.trim() == "0");
    let expected = if dual { "::" } else { "0.0.0.0" };
    assert_eq!(addr.ip().to_string(), expected, "{}", server.dump());
    let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()));
    if dual {
        Conn::open(std::net::SocketAddr::new(
            "::1".parse().unwrap(),
            addr.port(),
        ))
        .assert_alive();
    }
    // The real client over IPv4, both data channels: each binds where
    // the client reached the server and takes only the client's address.
    let mine = dir.path().join("mine");
    let out = run(
        &client_args(
            v4,
            &mine,
            &["-c", "FileDownload a.txt", "-c", "FileDownload UDP b.txt"],
        ),
        "",
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(fs::read_to_string(mine.join("a.txt")).unwrap(), "alpha\n");
    assert_eq!(fs::read_to_string(mine.join("b.txt")).unwrap(), "beta\n");
    // One session per address: an IPv4 client counts as 127.0.0.1. The
    // client's session may still be ending on the server: wait until a
    // new one is admitted, and keep that one.
    let mut first = None;
    assert!(wait_until(LIMIT, || {
        let Ok(mut s) = TcpStream::connect(v4) else {
            return false;
        };
        let mut line = [0u8; 4];
        let greeted = std::io::Read::read_exact(&mut s, &mut line).is_ok() && &line == b"220 ";
        if greeted {
            first = Some(s);
        }
        greeted
    }));
    let mut second = TcpStream::connect(v4).unwrap();
    let mut refused = String::new();
    std::io::Read::read_to_string(&mut second, &mut refused).unwrap();
    assert!(refused.starts_with("421 "), "{refused:?}");
    drop(first);
    // The history names IPv4 clients as IPv4.
    let history = fs::read_to_string(share.join(".p2pshare/history.tsv")).unwrap();
    let peers: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split('\t').nth(2))
        .collect();
    assert!(
        peers.iter().any(|p| p.starts_with("127.0.0.1:")),
        "{history}"
    );
    assert!(!history.contains("::ffff:"), "{history}");
}

fn a_flags_value_is_taken_as_written_and_only_by_a_flag_that_takes_one() {
    let dir = TempDir::new("cli-values");
    dir.write("share/a.txt", "alpha\n");
    let server = start(&dir.path().join("share"));
    let mine = dir.path().join("mine");
    // A flag without a value refuses one, whatever follows.
    let out = run(&["client", "--overwrite=no", "-c", "NOOP"], "");
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(out.stderr.contains("--overwrite takes no value"), "{out}");
    assert!(!out.stderr.contains("cannot connect"), "{out}");
    // `-c=CMD`, `-cCMD` and `--command=CMD` are the command CMD.
    let out = run(
        &client_args(
            server.addr(),
            &mine,
            &["-c=NOOP", "-cFileDownload a.txt", "--command=NOOP"],
        ),
        "",
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(fs::read_to_string(mine.join("a.txt")).unwrap(), "alpha\n");
    // A value that looks like a flag is still the value: the peer gets
    // the command `--x=y`, and says it knows no such command.
    let out = run(&client_args(server.addr(), &mine, &["-c", "--x=y"]), "");
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("500"), "{out}");
    assert!(!out.stderr.contains("unexpected argument"), "{out}");
}

fn durations_past_ten_years_and_bad_prefixes_are_usage_errors() {
    let dir = TempDir::new("cli-durations");
    // A share that cannot be opened: were an option taken, the command
    // would fail on the share (or the peer) instead, with another message.
    let share = s(&dir.path().join("missing/share"));
    let serve = |opt: &str, v: &str| ["serve", "--share", &share, opt, v].join("\0");
    let mut cases: Vec<String> = [
        "--rescan",
        "--idle-timeout",
        "--data-timeout",
        "--data-idle",
    ]
    .iter()
    .map(|o| serve(o, "300000000000y"))
    .collect();
    cases.push(serve("--rescan", "11y"));
    cases.push(
        [
            "client",
            "127.0.0.1:1",
            "--timeout",
            "300000000000y",
            "-c",
            "NOOP",
        ]
        .join("\0"),
    );
    for opt in ["--poll", "--timeout", "--data-timeout"] {
        cases.push(
            [
                "peer",
                "--connect",
                "127.0.0.1:1",
                "--share",
                &share,
                opt,
                "11y",
            ]
            .join("\0"),
        );
    }
    for args in &cases {
        let args: Vec<&str> = args.split('\0').collect();
        let out = run(&args, "");
        assert_eq!(out.code(), Some(2), "{args:?}: {out}");
        assert!(
            out.stderr
                .contains("is too long; a duration is at most 10 years (10y)"),
            "{args:?}: {out}"
        );
    }
    // Ten years is still taken.
    let out = run(&["serve", "--share", &share, "--rescan", "10y"], "");
    assert_eq!(out.code(), Some(1), "{out}");
    for (opt, v) in [
        ("--prefix-v4", "33"),
        ("--prefix-v6", "129"),
        ("--prefix-v6", "x"),
    ] {
        let out = run(&["serve", "--share", &share, opt, v], "");
        assert_eq!(out.code(), Some(2), "{opt} {v}: {out}");
        assert!(out.stderr.contains("is not a prefix length"), "{out}");
    }
}

fn an_argument_that_is_not_utf8_is_a_usage_error_not_a_crash() {
    use std::os::unix::ffi::OsStrExt;
    let out = Command::new(bin())
        .arg("serve")
        .arg("--share")
        .arg(std::ffi::OsStr::from_bytes(b"caf\xe9"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the argument 'caf\\xe9' is not valid UTF-8"),
        "{err}"
    );
}

/// `p2pshare` alone is a usage error: exit 2, the short usage on stderr,
/// nothing on stdout.
fn no_arguments_is_a_usage_error_with_the_short_usage() {
    let out = run::<&str>(&[], "");
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    assert!(out.stderr.contains("subcommand"), "{out}");
    assert!(out.stderr.contains("p2pshare serve"), "{out}");
    assert!(out.stderr.contains("p2pshare client"), "{out}");
    // Help asked for is still help, on stdout, exit 0.
    let out = run(&["--help".to_string()], "");
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stdout.contains("p2pshare serve"), "{out}");
}

cases![
    no_arguments_is_a_usage_error_with_the_short_usage,
    a_share_with_a_missing_parent_is_refused_and_nothing_is_created,
    a_share_that_is_a_file_is_not_a_folder,
    only_the_last_folder_of_a_share_is_created_and_that_is_said,
    the_default_share_is_created_in_the_current_folder,
    bind_takes_a_host_name,
    a_wrong_host_port_says_which_part_is_wrong,
    ipv6_targets_in_brackets_keep_working,
    by_default_a_server_takes_ipv4_and_ipv6_and_sees_ipv4_clients_as_ipv4,
    a_flags_value_is_taken_as_written_and_only_by_a_flag_that_takes_one,
    an_argument_that_is_not_utf8_is_a_usage_error_not_a_crash,
    durations_past_ten_years_and_bad_prefixes_are_usage_errors,
];
