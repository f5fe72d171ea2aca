//! Running the real `p2pshare` binary from a test: a child process whose
//! stdout and stderr are collected as they arrive (so a test can poll them
//! while it runs) and which is killed when the guard is dropped, so a
//! failing assertion never leaves a process behind.
//!
//! Used by the test files that drive the binary (`client.rs`, `peer.rs`)
//! next to `support/mod.rs`: `#[path = "support/process.rs"] mod process;`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long any one child may run before the test gives up on it.
pub const LIMIT: Duration = Duration::from_secs(30);

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_p2pshare")
}

/// A running `p2pshare` with its output collected; killed on drop.
pub struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    /// What the process was started with, for failure messages.
    pub what: String,
}

/// A finished run: exit status and everything it printed.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// stdout's lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.status.code(),
            self.stdout,
            self.stderr
        )
    }
}

fn collect(mut r: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => into.lock().unwrap().extend_from_slice(&buf[..n]),
            }
        }
    })
}

impl Proc {
    /// Starts `p2pshare ARGS` with stdin piped (write with [`Proc::send`],
    /// close with [`Proc::close_stdin`]).
    pub fn spawn<S: AsRef<str>>(args: &[S]) -> Proc {
        let mut p = Proc::spawn_program(bin(), args, &[]);
        p.what = p.what.replacen(bin(), "p2pshare", 1);
        p
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Writes to the child's stdin.
    pub fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(text.as_bytes()).expect("write to stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Closes the child's stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Everything printed to stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Everything printed to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned()
    }

    /// Is the process still running?
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Polls until stdout contains `text`; panics with both outputs after
    /// `limit`.
    pub fn await_stdout(&self, text: &str, limit: Duration) {
        if !crate::support::wait_until(limit, || self.stdout().contains(text)) {
            panic!(
                "{text:?} never appeared on stdout of {}\n{}",
                self.what,
                self.dump()
            );
        }
    }

    /// Polls until stderr contains `text`; panics after `limit`.
    pub fn await_stderr(&self, text: &str, limit: Duration) {
        if !crate::support::wait_until(limit, || self.stderr().contains(text)) {
            panic!(
                "{text:?} never appeared on stderr of {}\n{}",
                self.what,
                self.dump()
            );
        }
    }

    /// Both outputs, for failure messages.
    pub fn dump(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout(), self.stderr())
    }

    /// Closes stdin and waits for the process to end by itself (killing it
    /// and failing after [`LIMIT`]).
    pub fn finish(mut self) -> Finished {
        self.close_stdin();
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            match self.child.try_wait().expect("wait for p2pshare") {
                Some(s) => break s,
                None if Instant::now() >= deadline => {
                    panic!(
                        "{} did not end within {LIMIT:?}\n{}",
                        self.what,
                        self.dump()
                    )
                }
                None => thread::sleep(Duration::from_millis(10)),
            }
        };
        // The pipes close with the process: the readers end.
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Finished {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Only the child this guard started, by its own handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `p2pshare ARGS` with `input` on stdin and waits for it to end.
pub fn run<S: AsRef<str>>(args: &[S], input: &str) -> Finished {
    let mut p = Proc::spawn(args);
    if !input.is_empty() {
        p.send(input);
    }
    p.finish()
}

/// A loopback port that was free a moment ago, below the kernel's
/// ephemeral range ([`crate::support::free_port_range`]): no other test's
/// connection or port-0 listener is given it between this look and the
/// bind that uses it, as an ephemeral one could be on a busy machine.
pub fn free_port() -> u16 {
    crate::support::free_port_range(1).0
}

/// A loopback address where nothing listens (for "unreachable" cases).
pub fn closed_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

impl Proc {
    /// Starts `program ARGS` (the binary through `sh`, say) with extra
    /// environment variables, its output collected and killed on drop as
    /// with [`Proc::spawn`].
    pub fn spawn_program<S: AsRef<str>>(program: &str, args: &[S], env: &[(&str, &str)]) -> Proc {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        let mut cmd = Command::new(program);
        cmd.args(&args).envs(env.iter().copied());
        Proc::spawn_command(cmd, format!("{program} {}", args.join(" ")))
    }

    /// Starts a prepared command (its own folder, environment, a wrapper
    /// around the binary), with stdin piped and its output collected,
    /// killed on drop as with [`Proc::spawn`]. `what` names it in failure
    /// messages.
    pub fn spawn_command(mut cmd: Command, what: String) -> Proc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), out.clone()),
            collect(child.stderr.take().unwrap(), err.clone()),
        ];
        Proc {
            stdin: child.stdin.take(),
            child,
            out,
            err,
            readers,
            what,
        }
    }

    /// The control address a `p2pshare serve --port 0` child listens on,
    /// from its start line (`... on 127.0.0.1:PORT`), once its first scan
    /// is done and every file has been read for its md5 and type (both
    /// lines of the hashing end in "hashed now").
    pub fn serving_addr(&self) -> SocketAddr {
        self.await_stderr(" on 127.0.0.1:", LIMIT);
        self.await_stderr("p2pshare: the first scan is done", LIMIT);
        self.await_stderr(" hashed now", LIMIT);
        let err = self.stderr();
        let line = err
            .lines()
            .find(|l| l.contains(" on 127.0.0.1:"))
            .expect("start line");
        let at = line.rfind(" on ").unwrap() + 4;
        let addr = line[at..].split([';', ' ']).next().unwrap();
        addr.parse().expect("address in the start line")
    }
}

/// Runs `p2pshare ARGS` with extra environment variables and `input` on
/// stdin, and waits for it to end.
pub fn run_with_env<S: AsRef<str>>(args: &[S], env: &[(&str, &str)], input: &str) -> Finished {
    let mut p = Proc::spawn_program(bin(), args, env);
    if !input.is_empty() {
        p.send(input);
    }
    p.finish()
}

/// The arguments of `p2pshare client ADDR --share SHARE EXTRA...`.
pub fn client_args(addr: SocketAddr, share: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        "client".to_string(),
        addr.to_string(),
        "--share".into(),
        share.display().to_string(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// The arguments of `p2pshare peer` sharing `share` on 127.0.0.1:`port`,
/// told to reach `connect`, rescanning every 100 ms and polling every
/// 200 ms, then `extra`.
pub fn peer_args(share: &std::path::Path, port: u16, connect: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "peer",
        "--share",
        &share.display().to_string(),
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--connect",
        connect,
        "--rescan",
        "100ms",
        "--poll",
        "200ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// The address a peer reports on stderr when it starts:
/// `p2pshare: sharing DIR (first scan running) on ADDR; other peer TARGET`.
pub fn bound_addr(p: &Proc) -> Option<SocketAddr> {
    let err = p.stderr();
    let line = err.lines().find(|l| l.contains("; other peer "))?;
    let head = line.split("; other peer ").next()?;
    head.rsplit(" on ").next()?.parse().ok()
}

/// Starts peer A on a port of its own choosing (port 0) and then B, each
/// told where the other is and given `extra`; returns them with their
/// addresses once the first scan of each share is done (their listings
/// are whole from then on). A must be told B's port before B exists, so B's port is
/// picked up front ([`free_port`]). Another process could take it in that
/// short window; B then fails to bind, and the pair is started again.
pub fn start_peers(
    a_dir: &std::path::Path,
    b_dir: &std::path::Path,
    extra: &[&str],
    wait: Duration,
) -> (Proc, Proc, SocketAddr, SocketAddr) {
    use crate::support::wait_until;
    for _ in 0..5 {
        let b_port = free_port();
        let a = Proc::spawn(&peer_args(a_dir, 0, &format!("127.0.0.1:{b_port}"), extra));
        assert!(
            wait_until(wait, || bound_addr(&a).is_some()),
            "A never said where it listens\n{}",
            a.dump()
        );
        let a_addr = bound_addr(&a).unwrap();
        // A started first: it keeps trying to reach B.
        a.await_stderr("waiting for the other peer", wait);
        let mut b = Proc::spawn(&peer_args(b_dir, b_port, &a_addr.to_string(), extra));
        let up = wait_until(wait, || bound_addr(&b).is_some() || !b.running());
        assert!(up, "B never started\n{}", b.dump());
        let Some(b_addr) = bound_addr(&b) else {
            // The port was taken in the meantime: start over.
            assert!(b.stderr().contains("cannot listen"), "{}", b.dump());
            continue;
        };
        assert_eq!(b_addr.port(), b_port);
        for p in [&a, &b] {
            p.await_stderr("p2pshare: the first scan is done", wait);
        }
        return (a, b, a_addr, b_addr);
    }
    panic!("could not start two peers: ports kept being taken");
}

/// True when `script` (util-linux) can run a command at a terminal here.
pub fn terminal_available() -> bool {
    Command::new("script")
        .args(["-q", "-e", "-c", "true", "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `p2pshare ARGS` with a terminal as its stdin, stdout and stderr
/// (through `script`, see [`terminal_available`]); `stdout` holds what
/// the terminal showed, the child's stdout and stderr together, with
/// CR LF line ends.
pub fn at_a_terminal<S: AsRef<str>>(args: &[S]) -> Finished {
    let command: Vec<String> = std::iter::once(bin())
        .chain(args.iter().map(AsRef::as_ref))
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let argv = ["-q", "-e", "-c", &command.join(" "), "/dev/null"];
    Proc::spawn_program("script", &argv, &[]).finish()
}

/// `p2pshare serve` of `share` on 127.0.0.1, port 0, with `extra`
/// arguments, under an open-file limit of `nofile` (the shell's
/// `ulimit -n`, so no tool beyond `sh` is needed). Returns the child and
/// its control address.
pub fn serve_limited(share: &std::path::Path, nofile: u32, extra: &[&str]) -> (Proc, SocketAddr) {
    let share = share.display().to_string();
    let script = format!("ulimit -n {nofile} && exec \"$0\" \"$@\"");
    let mut args = vec![
        "-c",
        &script,
        bin(),
        "serve",
        "--share",
        &share,
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
    ];
    args.extend_from_slice(extra);
    let p = Proc::spawn_program("sh", &args, &[]);
    let addr = p.serving_addr();
    (p, addr)
}

/// How many descriptors process `pid` has open (`/proc/PID/fd`).
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// How many descriptor numbers process `pid` has taken: those open, plus
/// one for each of its threads blocked in `accept`. Linux reserves the
/// new connection's descriptor before an accept waits, so a waiting
/// accept holds a number that `/proc/PID/fd` does not show, and a process
/// at its open-file limit can list one fewer per waiting accept.
pub fn fds_taken(pid: u32) -> usize {
    // accept and accept4, as /proc/PID/task/TID/syscall numbers them.
    const ACCEPTS: &[&str] = if cfg!(target_arch = "aarch64") {
        &["202", "242"]
    } else {
        &["43", "288"]
    };
    let waiting = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("syscall"))
                .is_ok_and(|s| s.split(' ').next().is_some_and(|n| ACCEPTS.contains(&n)))
        })
        .count();
    open_fds(pid) + waiting
}

/// CPU time process `pid` used so far, user and system
/// (`/proc/PID/stat`, in clock ticks of 1/100 s).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name in parentheses may hold spaces: count fields from
    // after its closing parenthesis (field 3 on).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// The peak resident memory of process `pid` so far (`VmHWM` in
/// `/proc/PID/status`), in bytes.
pub fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Runs the test `test` of this test binary (its path below the binary,
/// `udp::real_kernel_loss_...`) again under `wrap`, a command that runs
/// the arguments it is given in another setting (`unshare -n`, `ip netns
/// exec NS`, a mount namespace), with `env` set so that the inner run
/// knows it is the inner one. What the inner run printed is shown
/// indented under `tag`: its `test result:` line is not this binary's.
/// The inner test must have run and passed. Returns what it printed.
pub fn run_again_inside(
    mut wrap: Command,
    test: &str,
    env: (&str, &std::ffi::OsStr),
    tag: &str,
) -> String {
    let out = wrap
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env.0, env.1)
        .output()
        .unwrap_or_else(|e| panic!("{tag}: cannot run {:?}: {e}", wrap.get_program()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for line in text.lines() {
        eprintln!("  {tag} | {line}");
    }
    assert!(out.status.success(), "{tag}: {text}");
    assert!(text.contains("1 passed"), "{tag}: {text}");
    text
}
