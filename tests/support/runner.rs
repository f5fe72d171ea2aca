//! The test runner of the server and client test binaries (`harness =
//! false` in Cargo.toml). It does what `cargo test` users rely on from
//! libtest: name filters, `--exact`, `--skip`, `--ignored`,
//! `--include-ignored`, `--list` (also `--format terse`), `--test-threads`
//! and `RUST_TEST_THREADS`, one `test NAME ... ok` line per test, the
//! `test result:` line and exit status 101 on a failure. Each test runs on
//! a thread named after it, so a panic names its test. A test that has not
//! ended after its time (120 s, or `P2PSHARE_TEST_TIMEOUT` seconds) fails
//! with its name (`test NAME ... FAILED (no end after 120 s)`), and the
//! run goes on without it; the process ends when the run does, whatever
//! such a test still does.
//!
//! What it does differently: it runs more tests at once than there are
//! cores (four per core, from 4 to 16). These tests spend most of their
//! time waiting for sockets, timeouts and child processes, so libtest's
//! one test per core left the machine idle half the time. It does not
//! capture the output of a test; what a test prints goes to the terminal
//! as it happens.
//!
//! A module lists its tests at its end with [`cases!`]; a test function
//! left out of the list is dead code, which the build warns about (and
//! clippy's `-D warnings` refuses), and a module left out of its binary's
//! `main` leaves its `CASES` unused, likewise.

use std::collections::VecDeque;
use std::io::Write;
use std::process::ExitCode;
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a test may run before it fails as hung.
const TIMEOUT: Duration = Duration::from_secs(120);

/// The environment variable that sets another time, in seconds.
const TIMEOUT_ENV: &str = "P2PSHARE_TEST_TIMEOUT";

/// One test: a function of the module at `path`, ignored (with why) when
/// `ignore` holds a reason.
pub struct Case {
    pub path: &'static str,
    pub name: &'static str,
    pub run: fn(),
    pub ignore: &'static [&'static str],
}

/// `cases![a, #[ignore = "needs nc"] b]` at the end of a module: its tests
/// `a` and `b`, as the module's `CASES`.
macro_rules! cases {
    ($( $(#[ignore = $why:literal])? $name:ident ),* $(,)?) => {
        pub const CASES: &[$crate::runner::Case] = &[$(
            $crate::runner::Case {
                path: module_path!(),
                name: stringify!($name),
                run: $name,
                ignore: &[$($why)?],
            }
        ),*];
    };
}

impl Case {
    /// `module::function`, as libtest names it (without the crate).
    fn full_name(&self) -> String {
        match self.path.split_once("::") {
            Some((_, module)) => format!("{module}::{}", self.name),
            None => self.name.to_string(),
        }
    }
}

#[derive(Default)]
struct Options {
    filters: Vec<String>,
    skip: Vec<String>,
    exact: bool,
    ignored: bool,
    include_ignored: bool,
    list: bool,
    terse: bool,
    bench: bool,
    help: bool,
    threads: Option<usize>,
}

const HELP: &str = "\
usage: cargo test --test server|client -- [options] [FILTER...]

Runs the tests whose names contain a FILTER (all without one).

  --exact               a FILTER (and --skip) must be the whole name
  --skip PATTERN        leave out the tests whose names contain it (repeatable)
  --ignored             run only the ignored tests (they say what they need)
  --include-ignored     run the ignored tests too
  --list                list the tests instead (--format terse: the names only)
  --test-threads N      run N tests at once (default: 4 per core, 4 to 16;
                        also RUST_TEST_THREADS)
  --nocapture           accepted; a test's output is never captured

A test that runs longer than 120 s (P2PSHARE_TEST_TIMEOUT=SECONDS sets
another time) fails with its name, and the others go on.";

fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut o = Options::default();
    let mut args = args.peekable();
    while let Some(a) = args.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{what} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => o.help = true,
            "--exact" => o.exact = true,
            "--ignored" => o.ignored = true,
            "--include-ignored" => o.include_ignored = true,
            "--list" => o.list = true,
            "--skip" => o.skip.push(value("--skip")?),
            "--test-threads" => {
                let v = value("--test-threads")?;
                match v.parse::<usize>() {
                    Ok(n) if n > 0 => o.threads = Some(n),
                    _ => return Err(format!("--test-threads wants a number above 0, not {v:?}")),
                }
            }
            "--format" => o.terse = value("--format")? == "terse",
            "--color" | "-Z" => {
                value(&flag)?;
            }
            // Accepted as libtest accepts them; output is never captured.
            "--nocapture" | "--show-output" | "-q" | "--quiet" | "--test" => {}
            // `cargo bench`: there are no benchmarks here.
            "--bench" => o.bench = true,
            f if f.starts_with('-') => {
                return Err(format!("unknown option {f} (--help lists them)"))
            }
            _ => o.filters.push(a),
        }
    }
    Ok(o)
}

fn threads(o: &Options) -> usize {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    o.threads
        .or_else(|| std::env::var("RUST_TEST_THREADS").ok()?.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or((cores * 4).clamp(4, 16))
}

/// The time a test may take: [`TIMEOUT`], or [`TIMEOUT_ENV`] seconds.
fn timeout() -> Duration {
    std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(TIMEOUT, Duration::from_secs)
}

/// How a test ended: Some(passed), or None when it did not end in `limit`.
/// It runs on a thread named after it, which says when it ends, by a panic
/// or not; a test that does not end is left behind.
fn run_one(name: &str, f: fn(), limit: Duration) -> Option<bool> {
    struct Ended(mpsc::Sender<bool>);
    impl Drop for Ended {
        fn drop(&mut self) {
            let _ = self.0.send(!thread::panicking());
        }
    }
    let (tx, rx) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ended = Ended(tx);
            f();
        });
    if let Err(e) = spawned {
        eprintln!("{name}: cannot start its thread: {e}");
        return Some(false);
    }
    match rx.recv_timeout(limit) {
        Ok(passed) => Some(passed),
        Err(mpsc::RecvTimeoutError::Disconnected) => Some(false),
        Err(mpsc::RecvTimeoutError::Timeout) => None,
    }
}

/// Runs the selected tests of `groups` (each module's `CASES`).
pub fn run(groups: &[&[Case]]) -> ExitCode {
    let o = match parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(101);
        }
    };
    if o.help {
        println!("{HELP}");
        return ExitCode::SUCCESS;
    }
    let all: Vec<&Case> = groups.iter().flat_map(|g| g.iter()).collect();
    let matches = |name: &str, pat: &str| {
        if o.exact {
            name == pat
        } else {
            name.contains(pat)
        }
    };
    let selected: Vec<(String, &Case)> = all
        .iter()
        .map(|c| (c.full_name(), *c))
        .filter(|(n, _)| o.filters.is_empty() || o.filters.iter().any(|f| matches(n, f)))
        .filter(|(n, _)| !o.skip.iter().any(|s| matches(n, s)))
        .filter(|(_, c)| !o.ignored || o.include_ignored || !c.ignore.is_empty())
        .filter(|_| !o.bench)
        .collect();
    let filtered_out = all.len() - selected.len();
    if o.list {
        for (n, _) in &selected {
            println!("{n}: test");
        }
        if !o.terse {
            println!("\n{} tests, 0 benchmarks", selected.len());
        }
        return ExitCode::SUCCESS;
    }
    let began = Instant::now();
    let n = selected.len();
    println!("\nrunning {n} test{}", if n == 1 { "" } else { "s" });
    let (mut to_run, mut ignored) = (VecDeque::new(), 0usize);
    for (n, c) in selected {
        match c.ignore.first() {
            Some(why) if !o.ignored && !o.include_ignored => {
                println!("test {n} ... ignored, {why}");
                ignored += 1;
            }
            _ => to_run.push_back((n, c.run)),
        }
    }
    let ran = to_run.len();
    let limit = timeout();
    let queue = Mutex::new(to_run);
    let failed = Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..threads(&o) {
            s.spawn(|| loop {
                let Some((name, f)) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
                else {
                    return;
                };
                let ended = run_one(&name, f, limit);
                let ok = ended == Some(true);
                let mut out = std::io::stdout().lock();
                let _ = match ended {
                    Some(true) => writeln!(out, "test {name} ... ok"),
                    Some(false) => writeln!(out, "test {name} ... FAILED"),
                    None => writeln!(
                        out,
                        "test {name} ... FAILED (no end after {} s)",
                        limit.as_secs()
                    ),
                };
                if !ok {
                    failed.lock().unwrap_or_else(|e| e.into_inner()).push(name);
                }
            });
        }
    });
    let mut failed = failed.into_inner().unwrap_or_else(|e| e.into_inner());
    let passed = ran - failed.len();
    if !failed.is_empty() {
        failed.sort();
        println!("\nfailures:");
        for n in &failed {
            println!("    {n}");
        }
    }
    println!(
        "\ntest result: {}. {passed} passed; {} failed; {ignored} ignored; 0 measured; \
         {filtered_out} filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len(),
        began.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(101)
    }
}
