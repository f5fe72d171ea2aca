//! The console's prompt at a real terminal: the real binary on a
//! pseudo-terminal (python3's `pty` module drives it), keys typed as a
//! terminal sends them. Arrow keys edit and recall lines and never reach
//! the peer as commands; the terminal's settings are what they were after
//! the client ends; Ctrl-D leaves the shell on a line of its own. Where
//! lines are not edited (a pipe, no `stty`), a line holding an escape
//! sequence is refused, not sent.

use crate::support::*;

use crate::process::*;

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

/// Runs `argv` on a new pseudo-terminal, `cwd` its folder, and plays
/// `steps`: `Expect(text)` waits (up to 20 s) until the terminal shows
/// `text` after what the previous expect matched; `Send(bytes)` types;
/// `Write(path, bytes)` writes a file; `WaitFile(path, text)` waits until
/// the file holds `text`; `Kill` sends SIGTERM. Then waits for the
/// program to end. The driver prints everything the
/// terminal showed to stdout and exits with the program's status (3 when
/// an expect timed out).
const DRIVER: &str = r#"
import os, pty, select, sys, time
steps = eval(sys.argv[1])
argv = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
seen = b""
start = 0
def read_some(deadline):
    global seen
    left = deadline - time.time()
    if left <= 0:
        return False
    r, _, _ = select.select([fd], [], [], left)
    if not r:
        return False
    try:
        data = os.read(fd, 65536)
    except OSError:
        return False
    if not data:
        return False
    seen += data
    return True
def finish(code):
    sys.stdout.buffer.write(seen)
    sys.stdout.flush()
    os._exit(code)
for kind, arg, *more in steps:
    if kind == "send":
        os.write(fd, arg)
    elif kind == "kill":
        os.kill(pid, 15)
    elif kind == "write":
        open(arg, "wb").write(more[0])
    elif kind == "wait_file":
        deadline = time.time() + 20
        while True:
            try:
                if more[0] in open(arg, "rb").read():
                    break
            except OSError:
                pass
            if time.time() > deadline:
                sys.stderr.write("timed out waiting for %r in %r\n" % (more[0], arg))
                finish(3)
            read_some(time.time() + 0.02)
    else:
        deadline = time.time() + 20
        while arg not in seen[start:]:
            if not read_some(deadline):
                sys.stderr.write("timed out waiting for %r\n" % arg)
                finish(3)
        start = seen.index(arg, start) + len(arg)
deadline = time.time() + 20
while read_some(deadline):
    pass
_, status = os.waitpid(pid, 0)
finish(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 4)
"#;

enum Step {
    Expect(&'static str),
    Send(&'static [u8]),
    Write(String, &'static [u8]),
    WaitFile(String, &'static str),
    Kill,
}
use Step::*;

fn py_bytes(b: &[u8]) -> String {
    let mut s = String::from("b'");
    for &c in b {
        let _ = write!(s, "\\x{c:02x}");
    }
    s.push('\'');
    s
}

struct Terminal {
    code: Option<i32>,
    /// Everything the terminal showed.
    screen: String,
    stderr: String,
}

fn on_terminal(cwd: &Path, argv: &[&str], steps: &[Step]) -> Terminal {
    let have_python = Command::new("python3")
        .arg("-c")
        .arg("import pty")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        have_python,
        "the terminal tests need python3 with its pty module (apt-get install python3)"
    );
    let mut list = String::from("[");
    for s in steps {
        match s {
            Expect(t) => write!(list, "('expect', {}),", py_bytes(t.as_bytes())),
            Send(b) => write!(list, "('send', {}),", py_bytes(b)),
            Write(p, b) => write!(
                list,
                "('write', {}, {}),",
                py_bytes(p.as_bytes()),
                py_bytes(b)
            ),
            WaitFile(p, t) => write!(
                list,
                "('wait_file', {}, {}),",
                py_bytes(p.as_bytes()),
                py_bytes(t.as_bytes())
            ),
            Kill => write!(list, "('kill', b''),"),
        }
        .unwrap();
    }
    list.push(']');
    let out = Command::new("python3")
        .current_dir(cwd)
        .arg("-c")
        .arg(DRIVER)
        .arg(list)
        .args(argv)
        .output()
        .expect("run python3");
    Terminal {
        code: out.status.code(),
        screen: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl std::fmt::Display for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- screen\n{:?}\n--- driver\n{}",
            self.code, self.screen, self.stderr
        )
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The requests a server's history holds, in order.
fn requests(share: &Path) -> Vec<String> {
    fs::read_to_string(share.join(".p2pshare/history.tsv"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split('\t').nth(3).map(str::to_string))
        .collect()
}

const UP: &[u8] = b"\x1b[A";
const LEFT4: &[u8] = b"\x1b[D\x1b[D\x1b[D\x1b[D";

fn the_prompt_edits_and_recalls_lines_and_restores_the_terminal() {
    let dir = TempDir::new("prompt-edit");
    dir.write("served/a.txt", "alpha\n");
    let server = start(&dir.path().join("served"));
    let addr = server.addr().to_string();
    let mine = dir.path().join("mine").display().to_string();
    // The shell around the client saves the terminal's settings before
    // and after, as a person's shell would live with them.
    let script = r#"stty -g > before; "$@"; echo "exit $?" > status; stty -g > after"#;
    let t = on_terminal(
        dir.path(),
        &[
            "sh",
            "-c",
            script,
            "sh",
            bin(),
            "client",
            &addr,
            "--share",
            &mine,
        ],
        &[
            Expect("p2pshare> "),
            // A typo mended with Backspace.
            Send(b"NOOQ\x7fP\r"),
            Expect("ok"),
            // "IndexGet list", four to the left, "long" put in.
            Expect("p2pshare> "),
            Send(b"IndexGet list"),
            Send(LEFT4),
            Send(b"long\r"),
            Expect("a.txt"),
            // Up twice recalls the NOOP; Home and End move about it.
            Expect("p2pshare> "),
            Send(UP),
            Send(UP),
            Send(b"\x1b[H\x1b[F\r"),
            Expect("ok"),
            // Ctrl-C throws a half-typed line away; Ctrl-D ends.
            Expect("p2pshare> "),
            Send(b"FileDownload half"),
            Send(b"\x03"),
            Expect("^C"),
            Expect("p2pshare> "),
            Send(b"\x04"),
        ],
    );
    assert_eq!(t.code, Some(0), "{t}");
    assert_eq!(
        requests(&dir.path().join("served")),
        ["NOOP", "IndexGet longlist", "NOOP", "QUIT"],
        "{t}"
    );
    assert!(!t.screen.contains("500"), "{t}");
    // The shell's next prompt starts on a line of its own.
    assert!(t.screen.ends_with('\n'), "{t}");
    assert_eq!(
        fs::read_to_string(dir.path().join("status")).unwrap(),
        "exit 0\n"
    );
    let before = fs::read_to_string(dir.path().join("before")).unwrap();
    let after = fs::read_to_string(dir.path().join("after")).unwrap();
    assert_eq!(before, after, "the terminal was left changed");
}

fn without_stty_the_prompt_is_plain_and_refuses_escape_sequences() {
    let dir = TempDir::new("prompt-plain");
    dir.write("served/a.txt", "alpha\n");
    let server = start(&dir.path().join("served"));
    let addr = server.addr().to_string();
    let mine = dir.path().join("mine").display().to_string();
    // No PATH: no stty, so the terminal stays as it is (canonical, echo),
    // and an arrow key arrives in the line.
    let t = on_terminal(
        dir.path(),
        &["env", "PATH=", bin(), "client", &addr, "--share", &mine],
        &[
            Expect("p2pshare> "),
            Send(UP),
            Send(b"\r"),
            Expect("not sent"),
            Expect("p2pshare> "),
            Send(b"NOOP\r"),
            Expect("ok"),
            Expect("p2pshare> "),
            Send(b"\x04"),
        ],
    );
    assert_eq!(t.code, Some(1), "{t}");
    assert!(t.screen.contains("escape sequence"), "{t}");
    assert_eq!(
        requests(&dir.path().join("served")),
        ["NOOP", "QUIT"],
        "{t}"
    );
    assert!(t.screen.ends_with('\n'), "{t}");
}

fn from_a_pipe_a_line_with_an_escape_sequence_is_refused() {
    let dir = TempDir::new("prompt-pipe");
    dir.write("served/a.txt", "alpha\n");
    let server = start(&dir.path().join("served"));
    let out = run(
        &client_args(server.addr(), &dir.path().join("mine"), &[]),
        "\x1b[A\nNOOP\n",
    );
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("not sent"), "{out}");
    assert_eq!(requests(&dir.path().join("served")), ["NOOP", "QUIT"]);
}

fn in_peer_mode_the_pollers_news_goes_above_the_line_being_typed() {
    let dir = TempDir::new("prompt-peer");
    dir.write("other/a.txt", "alpha\n");
    let other = start(&dir.path().join("other"));
    let target = other.addr().to_string();
    let mine = dir.path().join("mine").display().to_string();
    let argv = [
        bin(),
        "peer",
        "--share",
        &mine,
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--connect",
        &target,
        "--poll",
        "200ms",
    ];
    let news = format!("{target}: added news.txt");
    let news: &'static str = Box::leak(news.into_boxed_str());
    let other_history = dir.path().join("other/.p2pshare/history.tsv");
    let t = on_terminal(
        dir.path(),
        &argv,
        &[
            Expect("connected to the other peer"),
            Expect("p2pshare> "),
            Send(b"IndexGet"),
            // The poller has seen the other side once; then a file
            // appears there.
            WaitFile(s(&other_history), "FileHash checkall"),
            Write(s(&dir.path().join("other/news.txt")), b"news\n"),
            Expect(news),
            // The prompt and the half-typed line are drawn again below it.
            Expect("p2pshare> IndexGet"),
            Send(b" longlist\r"),
            Expect("news.txt"),
            Expect("p2pshare> "),
            Send(b"\x04"),
            Expect("console closed"),
            Kill,
        ],
    );
    assert!(
        requests(&dir.path().join("other")).contains(&"IndexGet longlist".to_string()),
        "{t}"
    );
    let at = t.screen.find(news).expect("news shown");
    assert!(
        t.screen[at..].contains("p2pshare> IndexGet"),
        "the line was not drawn again: {t}"
    );
}

/// Ctrl-C at the peer prompt ends the peer, console and server, as a
/// signal would; the half-typed line never reaches the other side, and the
/// terminal is as it was.
fn ctrl_c_at_the_peer_prompt_ends_peer_mode() {
    let dir = TempDir::new("prompt-peer-ctrl-c");
    dir.write("other/a.txt", "alpha\n");
    let other = start(&dir.path().join("other"));
    let target = other.addr().to_string();
    let mine = dir.path().join("mine").display().to_string();
    let script = r#"stty -g > before; "$@"; echo "exit $?" > status; stty -g > after"#;
    let t = on_terminal(
        dir.path(),
        &[
            "sh",
            "-c",
            script,
            "sh",
            bin(),
            "peer",
            "--share",
            &mine,
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--connect",
            &target,
            "--poll",
            "1h",
        ],
        &[
            Expect("connected to the other peer"),
            Expect("p2pshare> "),
            Send(b"NOOP\r"),
            Expect("ok"),
            Expect("p2pshare> "),
            Send(b"ip addr"),
            Send(b"\x03"),
            Expect("^C"),
            // The peer ends by itself: no Kill here.
            Expect("interrupted"),
        ],
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("status")).unwrap_or_default(),
        "exit 130\n",
        "{t}"
    );
    assert!(t.screen.contains("interrupted"), "{t}");
    assert!(!t.screen.contains("still serving"), "{t}");
    let sent = requests(&dir.path().join("other"));
    assert!(!sent.iter().any(|r| r.contains("ip")), "{sent:?} {t}");
    let before = fs::read_to_string(dir.path().join("before")).unwrap();
    let after = fs::read_to_string(dir.path().join("after")).unwrap();
    assert_eq!(before, after, "the terminal was left changed");
}

/// At a terminal `History` (the peer's) and `history` (this side's) each
/// say whose history they show on their first line; Tab completes a
/// command word and never puts a TAB into the line.
fn history_tables_say_whose_and_tab_completes_commands() {
    let dir = TempDir::new("prompt-history");
    dir.write("served/a.txt", "alpha\n");
    let server = start(&dir.path().join("served"));
    let addr = server.addr().to_string();
    let mine = dir.path().join("mine").display().to_string();
    let t = on_terminal(
        dir.path(),
        &[bin(), "client", &addr, "--share", &mine],
        &[
            Expect("p2pshare> "),
            Send(b"NO\t\r"),
            Expect("ok"),
            Expect("p2pshare> "),
            Send(b"History 5\r"),
            Expect("the peer's history"),
            Expect("p2pshare> "),
            Send(b"history 5\r"),
            Expect("this side's history"),
            Expect("p2pshare> "),
            Send(b"\x04"),
        ],
    );
    assert_eq!(t.code, Some(0), "{t}");
    let sent = requests(&dir.path().join("served"));
    assert_eq!(sent[0], "NOOP", "{sent:?} {t}");
    assert!(!t.screen.contains("^I"), "{t}");
}

cases![
    history_tables_say_whose_and_tab_completes_commands,
    ctrl_c_at_the_peer_prompt_ends_peer_mode,
    the_prompt_edits_and_recalls_lines_and_restores_the_terminal,
    without_stty_the_prompt_is_plain_and_refuses_escape_sequences,
    from_a_pipe_a_line_with_an_escape_sequence_is_refused,
    in_peer_mode_the_pollers_news_goes_above_the_line_being_typed,
];
