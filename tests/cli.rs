//! The command line as a person types it, through the real binary: which
//! `--share` paths are created and which are mistakes, host names and
//! `HOST:PORT` forms, and the addresses a server listens on.

mod support;
use support::*;

#[path = "support/process.rs"]
mod process;
use process::*;

use std::fs;
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

#[test]
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

#[test]
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

#[test]
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

#[test]
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
