//! Where state lives (`history.tsv`, `hashes.tsv`), through the real
//! binary: `<share>/.p2pshare` by default, `--state DIR` when given, a
//! folder under the user's state folder when the share is read-only, and
//! nothing at all from a client that never had anything to record.
//!
//! A read-only share is made for real. As a normal user the folder is
//! chmod 0555. Root ignores permission bits, so as root (CI) the child
//! runs in a mount namespace of its own (`unshare -m`) where the folder is
//! bind-mounted read-only: what a read-only bind mount or a disc gives.

use crate::support::*;

use crate::process::*;

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use p2pshare::share::state::key;

const WAIT: Duration = Duration::from_secs(20);

/// Every name directly in `dir`, hidden ones too, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn is_root() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        .unwrap_or(false)
}

/// Runs programs with one folder read-only, the way a mounted disc is.
struct ReadOnly {
    dir: PathBuf,
    mount: bool,
}

/// Bind-mounts `$1` read-only over itself in the child's own mount
/// namespace, then runs the rest of the arguments.
const RO_MOUNT: &str =
    r#"d=$1; shift; mount --bind "$d" "$d" && mount -o remount,bind,ro "$d" && exec "$@""#;

impl ReadOnly {
    fn new(dir: &Path) -> ReadOnly {
        let ro = if is_root() {
            ReadOnly {
                dir: dir.to_path_buf(),
                mount: true,
            }
        } else {
            set_modes(dir, 0o555, 0o444);
            ReadOnly {
                dir: dir.to_path_buf(),
                mount: false,
            }
        };
        // Whatever the way, the folder must really refuse a new file.
        let probe = ro
            .command(
                "sh",
                &["-c", r#"touch "$0/.probe""#, &dir.display().to_string()],
            )
            .output()
            .expect("run sh");
        assert!(
            !probe.status.success() && !dir.join(".probe").exists(),
            "could not make {} read-only{}",
            dir.display(),
            if ro.mount {
                " (as root this needs `unshare -m` and `mount` with CAP_SYS_ADMIN; \
                 or run the test as a normal user)"
            } else {
                ""
            }
        );
        ro
    }

    /// `program ARGS` with the folder read-only.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        if self.mount {
            let mut c = Command::new("unshare");
            c.args(["-m", "--propagation", "private", "sh", "-c", RO_MOUNT, "sh"])
                .arg(&self.dir)
                .arg(program)
                .args(args);
            c
        } else {
            let mut c = Command::new(program);
            c.args(args);
            c
        }
    }

    /// The binary with the folder read-only, without the caller's HOME
    /// and XDG_STATE_HOME (each test says what the child gets).
    fn p2pshare(&self, args: &[&str]) -> Command {
        let mut c = self.command(bin(), args);
        c.env_remove("HOME").env_remove("XDG_STATE_HOME");
        c
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if !self.mount {
            set_modes(&self.dir, 0o755, 0o644);
        }
    }
}

fn set_modes(dir: &Path, dirs: u32, files: u32) {
    for e in fs::read_dir(dir).unwrap().flatten() {
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            set_modes(&e.path(), dirs, files);
        } else if ft.is_file() {
            fs::set_permissions(e.path(), fs::Permissions::from_mode(files)).unwrap();
        }
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(dirs)).unwrap();
}

fn spawn(cmd: Command) -> Proc {
    let what = format!("{cmd:?}");
    Proc::spawn_command(cmd, what)
}

fn finish(cmd: Command) -> Finished {
    spawn(cmd).finish()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A server (the in-process one) sharing one file, for clients to talk to.
fn a_server(dir: &TempDir) -> (p2pshare::server::RunningServer, SocketAddr) {
    dir.write("served/a.txt", "alpha\n");
    let server = start(&dir.path().join("served"));
    let addr = server.addr();
    (server, addr)
}

fn a_client_that_never_connects_creates_nothing() {
    let cwd = TempDir::new("state-none");
    let mut cmd = Command::new(bin());
    cmd.current_dir(cwd.path())
        .args(["client", &closed_addr().to_string(), "-c", "NOOP"]);
    let out = finish(cmd);
    assert_eq!(out.code(), Some(2), "{out}");
    assert_eq!(names_in(cwd.path()), Vec::<String>::new(), "{out}");
}

fn a_client_makes_its_state_folder_with_the_first_history_row() {
    let dir = TempDir::new("state-lazy");
    let (_server, addr) = a_server(&dir);
    let share = dir.path().join("mine");
    let out = run(&client_args(addr, &share, &["-c", "NOOP"]), "");
    assert_eq!(out.code(), Some(0), "{out}");
    let history = fs::read_to_string(share.join(".p2pshare/history.tsv")).unwrap();
    assert!(history.contains("\tNOOP\t200"), "{history}");
}

fn serve_keeps_a_read_only_shares_state_in_the_users_state_folder() {
    let dir = TempDir::new("state-ro-serve");
    dir.write("share/a.txt", "alpha\n");
    let share = dir.path().join("share");
    let xdg = dir.path().join("xdg");
    let ro = ReadOnly::new(&share);
    let mut cmd = ro.p2pshare(&[
        "serve",
        "--share",
        &s(&share),
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
    ]);
    cmd.env("XDG_STATE_HOME", &xdg);
    let server = spawn(cmd);
    let addr = server.serving_addr();
    let state = xdg
        .join("p2pshare")
        .join(key(&fs::canonicalize(&share).unwrap()));
    assert!(
        server
            .stderr()
            .contains(&format!("keeping it in {}", state.display())),
        "{}",
        server.dump()
    );
    let mut c = Conn::open(addr);
    assert_eq!(c.cmd("IndexGet longlist").names(), ["a.txt"]);
    assert_eq!(c.cmd("FileHash checkall").code, 213);
    assert!(
        wait_until(WAIT, || fs::read_to_string(state.join("hashes.tsv"))
            .is_ok_and(
                |t| t.lines().filter(|l| !l.starts_with('#')).count() == 1
            )),
        "no md5 cache in {}\n{}",
        state.display(),
        server.dump()
    );
    let history = fs::read_to_string(state.join("history.tsv")).unwrap();
    assert!(history.contains("IndexGet longlist\t213"), "{history}");
    assert_eq!(names_in(&share), ["a.txt"]);
}

fn serve_with_a_read_only_share_and_no_state_folder_says_to_pass_state() {
    let dir = TempDir::new("state-ro-none");
    dir.write("share/a.txt", "alpha\n");
    let share = dir.path().join("share");
    let ro = ReadOnly::new(&share);
    let out = finish(ro.p2pshare(&[
        "serve",
        "--share",
        &s(&share),
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
    ]));
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("pass --state DIR"), "{out}");
    assert!(out.stderr.contains(".p2pshare"), "{out}");

    // With --state it serves, and the share stays as it was.
    let state = dir.path().join("elsewhere/state");
    let server = spawn(ro.p2pshare(&[
        "serve",
        "--share",
        &s(&share),
        "--state",
        &s(&state),
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
    ]));
    let mut c = Conn::open(server.serving_addr());
    assert_eq!(c.cmd("IndexGet longlist").names(), ["a.txt"]);
    assert!(wait_until(WAIT, || fs::read_to_string(
        state.join("history.tsv")
    )
    .is_ok_and(|t| t.contains("IndexGet longlist"))));
    assert_eq!(names_in(&share), ["a.txt"]);
}

fn a_client_with_a_read_only_share_lists_and_keeps_its_history_elsewhere() {
    let dir = TempDir::new("state-ro-client");
    let (_server, addr) = a_server(&dir);
    fs::create_dir(dir.path().join("mine")).unwrap();
    let share = dir.path().join("mine");
    let xdg = dir.path().join("xdg");
    let ro = ReadOnly::new(&share);
    let args = client_args(addr, &share, &["-c", "IndexGet longlist", "-c", "NOOP"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let mut cmd = ro.p2pshare(&args);
    cmd.env("XDG_STATE_HOME", &xdg);
    let out = finish(cmd);
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(out.lines()[1].split('\t').next(), Some("a.txt"), "{out}");
    let state = xdg
        .join("p2pshare")
        .join(key(&fs::canonicalize(&share).unwrap()));
    assert!(
        out.stderr
            .contains(&format!("keeping it in {}", state.display())),
        "{out}"
    );
    let history = fs::read_to_string(state.join("history.tsv")).unwrap();
    assert!(history.contains("\tNOOP\t200"), "{history}");

    // With nowhere to keep it, the client still works, with one warning.
    let out = finish(ro.p2pshare(&args));
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(out.lines()[1].split('\t').next(), Some("a.txt"), "{out}");
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("cannot write the history"))
        .collect();
    assert_eq!(warnings.len(), 1, "{out}");
    assert_eq!(names_in(&share), Vec::<String>::new());
}

fn a_visible_state_folder_inside_the_share_is_never_shared() {
    let dir = TempDir::new("state-inside");
    dir.write("share/a.txt", "alpha\n");
    let share = dir.path().join("share");
    std::os::unix::fs::symlink("state", share.join("link")).unwrap();
    let server = Proc::spawn(&[
        "serve",
        "--share",
        &s(&share),
        "--state",
        &s(&share.join("state")),
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--rescan",
        "100ms",
    ]);
    let mut c = Conn::open(server.serving_addr());
    c.cmd("NOOP");
    assert!(wait_until(WAIT, || share.join("state/hashes.tsv").exists()));
    assert!(share.join("state/history.tsv").exists());
    // Once a rescan has seen a file added after the state files, the
    // listings hold the files and nothing of the state.
    dir.write("share/b.txt", "beta\n");
    assert!(wait_until(WAIT, || c
        .cmd("IndexGet longlist")
        .names()
        .contains(&"b.txt".to_string())));
    assert_eq!(c.cmd("IndexGet longlist").names(), ["a.txt", "b.txt"]);
    assert_eq!(c.cmd("FileHash checkall").names(), ["a.txt", "b.txt"]);
    for name in ["state/history.tsv", "state/hashes.tsv", "link/history.tsv"] {
        assert_eq!(
            c.cmd(&format!("FileHash verify {name}")).code,
            550,
            "{name}"
        );
        assert_eq!(c.cmd(&format!("FileDownload {name}")).code, 550, "{name}");
    }

    // The state folder cannot be the share itself.
    let out = run(
        &[
            "serve",
            "--share",
            &s(&share),
            "--state",
            &s(&share),
            "--port",
            "0",
        ],
        "",
    );
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("the shared folder itself"), "{out}");
}

cases![
    a_client_that_never_connects_creates_nothing,
    a_client_makes_its_state_folder_with_the_first_history_row,
    serve_keeps_a_read_only_shares_state_in_the_users_state_folder,
    serve_with_a_read_only_share_and_no_state_folder_says_to_pass_state,
    a_client_with_a_read_only_share_lists_and_keeps_its_history_elsewhere,
    a_visible_state_folder_inside_the_share_is_never_shared,
];
