//! `p2pshare serve` as a person starts it: its help, its start line, a
//! port in use, usage errors, and what a kill leaves behind.

use crate::support::*;

use crate::process::*;

use std::fs;
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

fn help_lists_every_option() {
    let out = run(&["serve", "--help"], "");
    assert_eq!(out.code(), Some(0), "{out}");
    for opt in [
        "--share DIR",
        "--state DIR",
        "--port N",
        "--bind ADDR",
        "--rescan DURATION",
        "--data-ports LO-HI",
        "--max-connections N",
        "--max-per-ip N",
        "--max-line N",
        "--allow-upload",
        "--secret S",
        "--idle-timeout DUR",
        "--data-timeout DUR",
        "--help",
    ] {
        assert!(out.stdout.contains(opt), "{opt} missing from:\n{out}");
    }
    let top = run(&["--help"], "");
    assert_eq!(top.code(), Some(0));
    for sub in ["serve", "client", "peer"] {
        assert!(top.stdout.contains(&format!("p2pshare {sub}")), "{top}");
    }
}

fn a_port_in_use_is_a_clear_error_with_status_1() {
    let dir = TempDir::new("serve-busy");
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let share = dir.path().display().to_string();
    let out = run(
        &[
            "serve",
            "--share",
            &share,
            "--bind",
            "127.0.0.1",
            "--port",
            &port,
        ],
        "",
    );
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("in use"), "{out}");
    assert!(out.stderr.contains(&port), "{out}");
}

fn usage_errors_exit_2_and_name_the_problem() {
    for (args, says) in [
        (vec!["serve", "--port", "http"], "--port"),
        (vec!["serve", "--rescan", "often"], "--rescan"),
        (vec!["serve", "--bogus"], "--bogus"),
        (vec!["launch"], "launch"),
    ] {
        let out = run(&args, "");
        assert_eq!(out.code(), Some(2), "{args:?}: {out}");
        assert!(out.stderr.contains(says), "{args:?}: {out}");
    }
}

fn a_killed_server_leaves_its_state_whole_and_answers_the_same_after_a_restart() {
    let dir = TempDir::new("serve-kill");
    dir.write("a.txt", "alpha\n");
    dir.write("b/c.txt", "gamma\n");
    let share = dir.path().display().to_string();
    let args = [
        "serve",
        "--share",
        &share,
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--rescan",
        "100ms",
    ];
    let server = Proc::spawn(&args);
    let addr = server.serving_addr();
    assert!(
        server.stderr().contains(&format!("sharing {share}")),
        "{}",
        server.dump()
    );
    let mut c = Conn::open(addr);
    let hashes = dir.path().join(".p2pshare/hashes.tsv");
    // The background hasher saves the cache once it has hashed the folder.
    assert!(wait_until(Duration::from_secs(20), || fs::read_to_string(
        &hashes
    )
    .is_ok_and(|t| t.lines().count() == 2)));
    let before = c.cmd("FileHash checkall");
    assert_eq!(before.names(), ["a.txt", "b/c.txt"]);
    // SIGTERM, as a service manager stops it.
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let done = server.finish();
    assert!(!done.status.success(), "{done}");
    // What it wrote is whole: every history line has five fields, the
    // cache two rows, no temporary file is left.
    let history = fs::read_to_string(dir.path().join(".p2pshare/history.tsv")).unwrap();
    assert!(
        history.lines().all(|l| l.split('\t').count() == 5),
        "{history}"
    );
    assert!(history.contains("FileHash checkall\t213"), "{history}");
    let state: Vec<String> = fs::read_dir(dir.path().join(".p2pshare"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(state.iter().all(|n| !n.ends_with(".tmp")), "{state:?}");
    // A restart answers the same from the saved cache.
    let again = Proc::spawn(&args);
    let mut c = Conn::open(again.serving_addr());
    assert_eq!(c.cmd("FileHash checkall").rows(), before.rows());
}

cases![
    help_lists_every_option,
    a_port_in_use_is_a_clear_error_with_status_1,
    usage_errors_exit_2_and_name_the_problem,
    a_killed_server_leaves_its_state_whole_and_answers_the_same_after_a_restart,
];
