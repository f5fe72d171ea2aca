//! Command-line parsing: one loop per subcommand over what [`Lexer`]
//! yields (flags and values), strict about anything unexpected, with
//! `--help` everywhere. Each option takes its value from the lexer, so
//! the form of a value (`--share=DIR`, `-c CMD`, `-c=CMD`) is decided in
//! one place and a value is never mistaken for a flag.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::addr::{check_target, Bind};
use crate::client::{self, Settings};
use crate::peer;
use crate::server::{AuthMode, Config, HttpAt};
use crate::share::state::StateChoice;
use crate::stop::MAX_DURATION;

mod lexer;
pub mod secret;
pub use lexer::{Arg, Lexer};

/// What the command line asks for.
#[derive(Debug)]
pub enum Action {
    Serve(Config),
    /// `serve --stdio`: one session on stdin and stdout.
    ServeStdio(Config),
    Client(client::Options),
    /// Boxed: by far the largest.
    Peer(Box<peer::Options>),
    /// Print a new random secret (`p2pshare secret`).
    Secret,
    /// Print this text to stdout and exit 0.
    Help(String),
    Version,
}

/// What the environment adds to the command line. Read in one place,
/// [`Env::from_process`], and applied in one, [`parse_with`]: nothing else
/// in p2pshare reads environment variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// `P2PSHARE_SECRET`, used when `--secret` is not given.
    pub secret: Option<String>,
    /// `P2PSHARE_FTP_PASSWORD`, used when `--ftp-password` is not given.
    pub ftp_password: Option<String>,
    /// Where state goes when a share cannot hold its own:
    /// `$XDG_STATE_HOME/p2pshare`, else `$HOME/.local/state/p2pshare`
    /// (relative values are ignored, as the XDG rules say).
    pub state_base: Option<PathBuf>,
}

impl Env {
    /// The environment of this process.
    pub fn from_process() -> Env {
        Env::from_vars(|name| std::env::var_os(name))
    }

    /// The environment that `var` describes.
    pub fn from_vars(var: impl Fn(&str) -> Option<OsString>) -> Env {
        let dir = |name: &str| var(name).map(PathBuf::from).filter(|p| p.is_absolute());
        let state_base = dir("XDG_STATE_HOME")
            .or_else(|| dir("HOME").map(|home| home.join(".local/state")))
            .map(|d| d.join("p2pshare"));
        Env {
            secret: var("P2PSHARE_SECRET").and_then(|s| s.into_string().ok()),
            ftp_password: var("P2PSHARE_FTP_PASSWORD").and_then(|s| s.into_string().ok()),
            state_base,
        }
    }
}

/// A command-line mistake: printed with a hint, exit status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

pub const MAIN_USAGE: &str = "\
p2pshare: share a folder with another peer over a line protocol on TCP

usage:
  p2pshare serve [options]             share a folder (default ./shared on port 9000)
  p2pshare client [HOST[:PORT] | ssh://[USER@]HOST[:PORT][/PATH]] [options]
                                       talk to a peer: list, hash, download
  p2pshare peer --connect HOST[:PORT] [options]
                                       serve and talk to the other peer at once
  p2pshare secret                      print a new random secret for --secret
  p2pshare help [serve|client|peer|secret]
                                       show help
  p2pshare --version

Run 'p2pshare SUBCOMMAND --help' for the options. The protocol is plain text:
'nc 127.0.0.1 9000' and type HELP.
";

pub const SERVE_USAGE: &str = "\
usage: p2pshare serve [options]

Shares a folder over the p2pshare protocol (see PROTOCOL.md).

options:
  --share DIR            folder to share (default ./shared; a missing last folder
                         is created, a missing parent is an error)
  --state DIR            where history.tsv and hashes.tsv go (default <share>/.p2pshare;
                         ~/.local/state/p2pshare/NAME-ID when the share is read-only)
  --port N               control port (default 9000; 0 picks a free one)
  --bind ADDR            address or host name to listen on (default: every
                         address, IPv6 and IPv4 where the system allows, else 0.0.0.0)
  --rescan DURATION      how often to rescan the folder (default 5s; e.g. 500ms, 1m;
                         at least 25 times the CPU time the last rescan took)
  --data-ports LO-HI     take data ports from this range (default: any free port)
  --max-connections N    concurrent control sessions (default 256)
  --max-per-ip N         concurrent control sessions from one address (default 32)
  --prefix-v4 BITS       what counts as one address for every per-address limit:
  --prefix-v6 BITS       the first BITS of an IPv4 address (default 32, 0 to 32) or
                         of an IPv6 one (default 64, a /64; 0 to 128)
  --max-line N           longest request line in bytes (default 4096)
  --allow-upload         accept FileUpload (and FTP STOR) into the shared folder (default: refused)
  --secret S             require a login with the secret S before anything else (or
                         set P2PSHARE_SECRET); make one with 'p2pshare secret': a
                         short one can be guessed offline from one recorded login
  --ftp-password P       with a secret: FTP logins take P, a password of its own (or set
                         P2PSHARE_FTP_PASSWORD). FTP sends its password in plain
                         text, so the secret is never one; without this option a
                         server with a secret refuses FTP logins. P must differ
                         from the secret
  --auth any|proof-only  with --secret, which logins are taken: any (default) also
                         takes the plain AUTH S a person types; proof-only takes only
                         AUTH PROOF, where the secret never crosses the wire
  --http [ADDR:]PORT     also serve HTTP/1.1 there, for browsers and curl (default: off;
                         ADDR defaults to --bind's; the URL to open is printed)
  --idle-timeout DUR     close a session idle this long (default 300s)
  --data-timeout DUR     abort a transfer stalled this long, and close a session
                         whose replies wait unread this long in all (default 300s)
  --data-idle DUR        close a session's data ports after DUR without a transfer
                         (default: keep them for the whole session)
  --stdio                serve one session on stdin and stdout and open no socket,
                         as ssh runs it ('ssh HOST p2pshare serve --stdio'): file
                         bytes travel inline on the same stream, stderr carries
                         messages only; ends when stdin does (exit status 0).
                         Not with --port, --bind, --data-ports, --max-connections,
                         --max-per-ip, --prefix-v4, --prefix-v6, --data-idle, --http
  -h, --help             show this help

Durations (DURATION, DUR) are above zero and at most 10 years (10y).
";

pub const CLIENT_USAGE: &str = "\
usage: p2pshare client [HOST[:PORT] | ssh://[USER@]HOST[:PORT][/PATH]] [options]

Connects to a peer (default 127.0.0.1:9000) and runs protocol commands:
from -c, else one per line from stdin (a prompt on a terminal). Downloads
land in the --share folder, verified by md5. Type 'help' for the commands.

options:
  --share DIR            where downloads land (default ./shared)
  --state DIR            where the history goes (default <share>/.p2pshare, made
                         with the first row; ~/.local/state/p2pshare/NAME-ID
                         when the share is read-only)
  -c, --command CMD      run CMD and exit (repeatable; in order)
  --secret S             log in with S by AUTH PROOF: S never crosses the wire, and
                         the peer must prove it knows S too (or set P2PSHARE_SECRET)
  --overwrite            replace local files whose content differs
  --timeout DUR          the longest wait on the peer: connect, greeting, each
                         reply line (the first reply to a download of a file
                         the peer has yet to hash comes late), a transfer
                         without progress (default 60s)
  --udp-payload BYTES    UDP datagram payload for FileDownload UDP (default 1400,
                         15800 on loopback; more only where the path carries it
                         without fragmenting)
  --trash-max-age DUR    Sync's trash drops versions older than this (default 30d)
  --trash-max-size SIZE  Sync's trash holds at most this much (default 1GiB; e.g.
                         500MiB): the oldest versions go first, and a step that
                         would need more room than this is refused
  --remote-command PROG  for an ssh:// peer: the p2pshare to run there (default
                         p2pshare, found on the remote PATH; one word, quoted
                         for the remote shell)
  -h, --help             show this help

Over ssh: HOST may be ssh://[USER@]HOST[:PORT][/PATH]. The client runs
  ssh [-p PORT] -- [USER@]HOST PROG serve --stdio [--share PATH]
with your keys, agent, known_hosts and ~/.ssh/config, and transfers go
inside that connection. /PATH is absolute, /~/PATH is below the remote
home; %XX escapes are decoded. IPv6 goes in brackets: ssh://[::1].
P2PSHARE_SSH replaces 'ssh' (e.g. P2PSHARE_SSH='ssh -i ~/.ssh/k'): split
into words at blanks, '...' taken as is, \\ escaping the next character
(inside \"...\" only \" and \\), nothing expanded (no $VAR, no ~).
FileDownload UDP over ssh goes inside the connection as TCP would.

exit status: 0 every command succeeded, 1 some failed, 2 usage error or
peer unreachable (over ssh also: the remote p2pshare missing, the login
or host key refused, the remote side ending early).
";

pub const PEER_USAGE: &str = "\
usage: p2pshare peer --connect HOST[:PORT] [options]
       p2pshare peer --connect ssh://[USER@]HOST[:PORT][/PATH] [options]

Serves a folder and runs a console connected to the other peer: commands
typed (or piped) go to the other peer, downloads land in the shared folder
and are shared on from there. Changes on the other side are reported every
--poll interval. End of input closes the console; the server keeps serving
until interrupted.

options:
  --connect HOST[:PORT]  the other peer (required); or ssh://[USER@]HOST[:PORT][/PATH]:
                         its side runs through ssh (see 'p2pshare client --help'):
                         one connection for the console, the poller and --sync,
                         reopened after a drop; P2PSHARE_SSH replaces 'ssh'
  --remote-command PROG  for an ssh:// peer: the p2pshare to run there (default p2pshare)
  --poll DURATION        how often to check the other peer for changes (default 10s)
  --sync                 run Sync at start (once this share's first scan is done) and
                         after every poll that found a change: the other peer's new
                         and changed files come here (a file still changing waits for
                         a quiet poll)
  --delete               with --sync: files deleted there go to the trash here
  --force-delete         with --sync --delete: past the mass-deletion guard too
  --secret S             log in with S by AUTH PROOF: S never crosses the wire, and
                         the peer must prove it knows S too (or set P2PSHARE_SECRET)
  --overwrite            replace local files whose content differs
  --udp-payload BYTES    UDP datagram payload (see 'p2pshare client --help')
  --timeout DUR          the longest wait on the other peer (default 60s; see
                         'p2pshare client --help')
  --trash-max-age DUR    Sync's trash drops versions older than this (default 30d)
  --trash-max-size SIZE  Sync's trash holds at most this much (default 1GiB; see
                         'p2pshare client --help')
  --ftp-password P       FTP logins to this peer's server take P (see 'p2pshare serve
                         --help': without it, a peer with a secret refuses FTP logins)
  and every option of 'p2pshare serve' (--share, --state, --port, --bind, --http, ...)
  -h, --help             show this help
";

/// Parses the arguments after the program name, with nothing from the
/// environment.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Action, UsageError> {
    parse_with(args, &Env::default())
}

/// Parses the arguments after the program name; what they leave open is
/// taken from `env`.
pub fn parse_with(args: impl IntoIterator<Item = String>, env: &Env) -> Result<Action, UsageError> {
    let mut action = parse_args(args)?;
    match &mut action {
        Action::Serve(c) | Action::ServeStdio(c) => {
            c.secret = c.secret.take().or_else(|| env.secret.clone());
            c.ftp_password = c.ftp_password.take().or_else(|| env.ftp_password.clone());
            c.state.fallback_base = env.state_base.clone();
            check_ftp_password(c)?;
        }
        Action::Client(a) => {
            a.settings.secret = a.settings.secret.take().or_else(|| env.secret.clone());
            a.state.fallback_base = env.state_base.clone();
        }
        Action::Peer(p) => {
            p.settings.secret = p.settings.secret.take().or_else(|| env.secret.clone());
            p.serve.secret = p.settings.secret.clone();
            p.serve.ftp_password = p
                .serve
                .ftp_password
                .take()
                .or_else(|| env.ftp_password.clone());
            p.serve.state.fallback_base = env.state_base.clone();
            check_ftp_password(&p.serve)?;
        }
        Action::Secret | Action::Help(_) | Action::Version => {}
    }
    Ok(action)
}

/// The warning said at start when the secret of `action` is shorter than
/// one `p2pshare secret` prints; None when it is not, or there is none.
pub fn weak_secret_warning(action: &Action) -> Option<String> {
    let secret = match action {
        Action::Serve(c) | Action::ServeStdio(c) => c.secret.as_deref(),
        Action::Client(a) => a.settings.secret.as_deref(),
        Action::Peer(p) => p.settings.secret.as_deref(),
        Action::Secret | Action::Help(_) | Action::Version => None,
    };
    secret.and_then(secret::weak)
}

/// An FTP password goes with a secret, and is not the secret: FTP sends
/// it in plain text.
fn check_ftp_password(c: &Config) -> Result<(), UsageError> {
    match (&c.secret, &c.ftp_password) {
        (None, Some(_)) => Err(UsageError(
            "--ftp-password (or P2PSHARE_FTP_PASSWORD) goes with a secret: without \
             --secret, FTP logins need no password"
                .into(),
        )),
        (Some(s), Some(p)) if s == p => Err(UsageError(
            "--ftp-password must differ from the secret: FTP sends its password in plain \
             text, and the secret must never cross the wire"
                .into(),
        )),
        _ => Ok(()),
    }
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Action, UsageError> {
    let mut lex = Lexer::new(args);
    let Some(sub) = lex.next()? else {
        // No subcommand is a mistake (exit 2), not a request for help:
        // the short usage goes to stderr.
        let short = MAIN_USAGE
            .split_once("usage:\n")
            .and_then(|(_, rest)| rest.split_once("\n\n"))
            .map_or(MAIN_USAGE, |(lines, _)| lines);
        return Err(UsageError(format!(
            "a subcommand is needed (try 'p2pshare --help')\nusage:\n{short}"
        )));
    };
    match sub.to_string().as_str() {
        "serve" => parse_serve(&mut lex),
        "client" => parse_client(&mut lex),
        "peer" => parse_peer(&mut lex),
        "secret" => match lex.next()? {
            None => Ok(Action::Secret),
            Some(a) if a.to_string() == "-h" || a.to_string() == "--help" => {
                Ok(Action::Help(secret::SECRET_USAGE.to_string()))
            }
            Some(a) => Err(UsageError(format!(
                "unexpected argument '{a}' for secret; see 'p2pshare secret --help'"
            ))),
        },
        "help" | "-h" | "--help" => {
            let topic = match lex.next() {
                Ok(Some(Arg::Value(v))) => v,
                _ => String::new(),
            };
            Ok(Action::Help(
                match topic.as_str() {
                    "serve" => SERVE_USAGE,
                    "client" => CLIENT_USAGE,
                    "peer" => PEER_USAGE,
                    "secret" => secret::SECRET_USAGE,
                    _ => MAIN_USAGE,
                }
                .to_string(),
            ))
        }
        "-V" | "--version" | "version" => Ok(Action::Version),
        other => Err(UsageError(format!(
            "unknown subcommand '{other}'; try 'p2pshare --help'"
        ))),
    }
}

fn parse_serve(lex: &mut Lexer) -> Result<Action, UsageError> {
    let mut c = Config::default();
    let mut stdio = false;
    // The first option given that only a listening server has.
    let mut network = None;
    while let Some(arg) = lex.next()? {
        let a = arg.to_string();
        if a == "-h" || a == "--help" {
            return Ok(Action::Help(SERVE_USAGE.to_string()));
        }
        if a == "--stdio" {
            stdio = true;
            continue;
        }
        if matches!(arg, Arg::Value(_)) || !apply_serve_option(&mut c, &a, lex)? {
            return Err(UsageError(format!(
                "unexpected argument '{a}' for serve; see 'p2pshare serve --help'"
            )));
        }
        if NETWORK_ONLY.contains(&a.as_str()) {
            network.get_or_insert(a);
        }
    }
    match network {
        Some(a) if stdio => Err(UsageError(format!(
            "{a} does not apply to --stdio: a stdio session opens no socket; \
             see 'p2pshare serve --help'"
        ))),
        _ if stdio => Ok(Action::ServeStdio(c)),
        _ => Ok(Action::Serve(c)),
    }
}

/// The options of serve that only a listening server has: its sockets
/// and its limits over many sessions.
const NETWORK_ONLY: &[&str] = &[
    "--port",
    "--bind",
    "--data-ports",
    "--max-connections",
    "--max-per-ip",
    "--prefix-v4",
    "--prefix-v6",
    "--data-idle",
    "--http",
];

/// Applies one option shared by client and peer; false when `a` is not one.
fn apply_client_option(s: &mut Settings, a: &str, lex: &mut Lexer) -> Result<bool, UsageError> {
    match a {
        "--secret" => s.secret = Some(lex.value()?),
        "--overwrite" => s.overwrite = true,
        "--remote-command" => {
            let v = lex.value()?;
            if v.is_empty() {
                return Err(UsageError(format!("{a}: give a program")));
            }
            s.remote_command = Some(v);
        }
        "--timeout" => s.timeout = duration(a, &lex.value()?)?,
        "--trash-max-age" => s.trash.max_age = duration(a, &lex.value()?)?,
        "--trash-max-size" => {
            let v = lex.value()?;
            s.trash.max_bytes = crate::client::sync::trash::parse_size(&v)
                .map_err(|e| UsageError(format!("{a}: {e}")))?;
        }
        "--udp-payload" => {
            let n: usize = number(a, &lex.value()?)?;
            let (lo, hi) = (
                crate::transfer::frame::MIN_PAYLOAD,
                crate::transfer::frame::MAX_PAYLOAD,
            );
            if !(lo..=hi).contains(&n) {
                return Err(UsageError(format!(
                    "{a}: {n} is outside {lo} to {hi} bytes"
                )));
            }
            s.udp_payload = Some(n);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn parse_client(lex: &mut Lexer) -> Result<Action, UsageError> {
    let mut s = Settings::default();
    let mut commands = Vec::new();
    let mut target = None;
    let mut state = StateChoice::default();
    while let Some(arg) = lex.next()? {
        let a = match arg {
            Arg::Value(v) if target.is_none() => {
                target = Some(v);
                continue;
            }
            Arg::Value(v) => {
                return Err(UsageError(format!(
                    "unexpected argument '{v}': give one HOST[:PORT]; quote commands after -c"
                )))
            }
            flag => flag.to_string(),
        };
        match a.as_str() {
            "-h" | "--help" => return Ok(Action::Help(CLIENT_USAGE.to_string())),
            "--share" => s.share = PathBuf::from(lex.value()?),
            "--state" => state.dir = Some(PathBuf::from(lex.value()?)),
            "-c" | "--command" => commands.push(lex.value()?),
            _ if apply_client_option(&mut s, &a, lex)? => {}
            _ => {
                return Err(UsageError(format!(
                    "unknown option '{a}' for client; see 'p2pshare client --help'"
                )))
            }
        }
    }
    if let Some(t) = target {
        check_target(&t).map_err(|e| UsageError(format!("client: {e}")))?;
        s.target = t;
    }
    Ok(Action::Client(client::Options {
        settings: s,
        commands,
        state,
    }))
}

fn parse_peer(lex: &mut Lexer) -> Result<Action, UsageError> {
    let mut serve = Config::default();
    let mut s = Settings::default();
    let mut target = None;
    let mut poll = Duration::from_secs(10);
    let mut sync: Option<crate::client::sync::Args> = None;
    let (mut delete, mut force_delete) = (false, false);
    let unexpected = |a: &str| {
        UsageError(format!(
            "unexpected argument '{a}' for peer; see 'p2pshare peer --help'"
        ))
    };
    while let Some(arg) = lex.next()? {
        let a = arg.to_string();
        if matches!(arg, Arg::Value(_)) {
            return Err(unexpected(&a));
        }
        match a.as_str() {
            "-h" | "--help" => return Ok(Action::Help(PEER_USAGE.to_string())),
            "--connect" => target = Some(lex.value()?),
            "--poll" => poll = duration(&a, &lex.value()?)?,
            "--sync" => sync = Some(crate::client::sync::Args::default()),
            "--delete" => delete = true,
            "--force-delete" => force_delete = true,
            _ if apply_client_option(&mut s, &a, lex)? => {}
            _ if apply_serve_option(&mut serve, &a, lex)? => {}
            _ => return Err(unexpected(&a)),
        }
    }
    let Some(target) = target else {
        return Err(UsageError(
            "peer needs --connect HOST[:PORT] (the other peer)".into(),
        ));
    };
    check_target(&target).map_err(|e| UsageError(format!("--connect: {e}")))?;
    if let Some(a) = sync.as_mut() {
        a.delete = delete;
        a.force_delete = force_delete;
    } else if delete || force_delete {
        return Err(UsageError(
            "--delete and --force-delete go with --sync".into(),
        ));
    }
    s.target = target;
    s.share = serve.share.clone();
    // One secret both ways: the one this peer asks for and gives.
    serve.secret = s.secret.clone();
    Ok(Action::Peer(Box::new(peer::Options {
        serve,
        settings: s,
        poll,
        sync,
    })))
}

/// Applies one server option; false when `a` is not one.
fn apply_serve_option(c: &mut Config, a: &str, lex: &mut Lexer) -> Result<bool, UsageError> {
    match a {
        "--share" => c.share = PathBuf::from(lex.value()?),
        "--state" => c.state.dir = Some(PathBuf::from(lex.value()?)),
        "--port" => c.port = number(a, &lex.value()?)?,
        "--bind" => {
            c.bind = Bind::parse(&lex.value()?).map_err(|e| UsageError(format!("{a}: {e}")))?;
        }
        "--rescan" => c.rescan = duration(a, &lex.value()?)?,
        "--data-ports" => c.data_ports = Some(port_range(&lex.value()?)?),
        "--max-connections" => c.max_connections = number(a, &lex.value()?)?,
        "--max-per-ip" => c.max_per_ip = number(a, &lex.value()?)?,
        "--prefix-v4" => c.prefix.v4 = prefix_len(a, &lex.value()?, 32)?,
        "--prefix-v6" => c.prefix.v6 = prefix_len(a, &lex.value()?, 128)?,
        "--max-line" => {
            let n: usize = number(a, &lex.value()?)?;
            if !(64..=1 << 20).contains(&n) {
                return Err(UsageError(format!(
                    "{a}: {n} is outside 64 to 1048576 bytes"
                )));
            }
            c.max_line = n;
        }
        "--allow-upload" => c.allow_upload = true,
        "--secret" => c.secret = Some(lex.value()?),
        "--auth" => {
            let v = lex.value()?;
            c.auth = AuthMode::from_word(&v).ok_or_else(|| {
                UsageError(format!("{a}: '{v}' is neither 'any' nor 'proof-only'"))
            })?;
        }
        "--ftp-password" => c.ftp_password = Some(lex.value()?),
        "--idle-timeout" => c.idle_timeout = duration(a, &lex.value()?)?,
        "--data-timeout" => c.data_timeout = duration(a, &lex.value()?)?,
        "--data-idle" => c.data_idle = Some(duration(a, &lex.value()?)?),
        "--http" => {
            let v = lex.value()?;
            c.http = Some(HttpAt::parse(&v).map_err(|e| UsageError(format!("{a}: {e}")))?);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn number<T: std::str::FromStr>(opt: &str, v: &str) -> Result<T, UsageError> {
    v.parse()
        .map_err(|_| UsageError(format!("{opt}: '{v}' is not a valid number")))
}

fn prefix_len(opt: &str, v: &str, max: u8) -> Result<u8, UsageError> {
    match v.parse::<u8>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(UsageError(format!(
            "{opt}: '{v}' is not a prefix length (0 to {max} bits)"
        ))),
    }
}

/// Every duration option of serve, client and peer, read here: above
/// zero, and at most [`MAX_DURATION`] (10 years), so that no deadline
/// counted from it can leave the clock's range.
fn duration(opt: &str, v: &str) -> Result<Duration, UsageError> {
    let d = humantime::parse_duration(v).map_err(|e| {
        UsageError(format!(
            "{opt}: '{v}' is not a duration ({e}); e.g. 5s, 500ms, 2m"
        ))
    })?;
    if d.is_zero() {
        return Err(UsageError(format!(
            "{opt}: the duration must be above zero"
        )));
    }
    if d > MAX_DURATION {
        return Err(UsageError(format!(
            "{opt}: '{v}' is too long; a duration is at most 10 years (10y)"
        )));
    }
    Ok(d)
}

fn port_range(v: &str) -> Result<(u16, u16), UsageError> {
    let bad = || {
        UsageError(format!(
            "--data-ports: '{v}' is not a range like 40000-40100"
        ))
    };
    let (lo, hi) = v.split_once('-').ok_or_else(bad)?;
    let lo: u16 = lo.parse().map_err(|_| bad())?;
    let hi: u16 = hi.parse().map_err(|_| bad())?;
    if lo == 0 || hi < lo {
        return Err(bad());
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(line: &str) -> Result<Action, UsageError> {
        parse(line.split_whitespace().map(str::to_string))
    }

    #[test]
    fn serve_options_reach_the_config() {
        let Ok(Action::Serve(c)) = parse_words(
            "serve --share /tmp/x --port=0 --bind 127.0.0.1 --rescan 250ms \
             --data-ports 40000-40010 --max-connections 9 --max-per-ip 3 \
             --idle-timeout 1m --data-timeout 2s --max-line 100 --allow-upload --secret s",
        ) else {
            panic!("serve should parse");
        };
        assert_eq!(c.share, PathBuf::from("/tmp/x"));
        assert_eq!(c.port, 0);
        assert_eq!(c.bind.to_string(), "127.0.0.1");
        assert_eq!(c.rescan, Duration::from_millis(250));
        assert_eq!(c.data_ports, Some((40000, 40010)));
        assert_eq!((c.max_connections, c.max_per_ip, c.max_line), (9, 3, 100));
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.data_timeout, Duration::from_secs(2));
        assert!(c.allow_upload);
        assert_eq!(c.secret.as_deref(), Some("s"));
    }

    #[test]
    fn serve_stdio_takes_the_options_of_one_session() {
        let Ok(Action::ServeStdio(c)) = parse_words(
            "serve --share /tmp/x --stdio --allow-upload --idle-timeout 5s --rescan 1s \
             --data-timeout 7s --max-line 100 --secret s",
        ) else {
            panic!("serve --stdio should parse");
        };
        assert_eq!(c.share, PathBuf::from("/tmp/x"));
        assert!(c.allow_upload);
        assert_eq!(c.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.data_timeout, Duration::from_secs(7));
        assert_eq!(c.secret.as_deref(), Some("s"));
        for option in [
            "--port 0",
            "--bind ::1",
            "--data-ports 1-2",
            "--data-idle 1s",
            "--http 8080",
        ] {
            let line = format!("serve --stdio {option}");
            let Err(e) = parse_words(&line) else {
                panic!("{line} should be refused");
            };
            let word = option.split(' ').next().unwrap();
            assert!(
                e.0.starts_with(&format!("{word} does not apply to --stdio")),
                "{e}"
            );
        }
        assert!(matches!(
            parse_words("serve --port 0"),
            Ok(Action::Serve(_))
        ));
    }

    #[test]
    fn http_takes_a_port_or_an_address_and_port() {
        let Ok(Action::Serve(c)) = parse_words("serve --http 127.0.0.1:8080") else {
            panic!("serve --http should parse");
        };
        let at = c.http.unwrap();
        assert_eq!(at.port, 8080);
        assert_eq!(at.bind.unwrap().to_string(), "127.0.0.1");
        let Ok(Action::Serve(c)) = parse_words("serve") else {
            panic!("serve should parse");
        };
        assert!(c.http.is_none(), "off by default");
        assert!(parse_words("serve --http nope").is_err());
    }

    #[test]
    fn client_and_peer_arguments() {
        let Ok(Action::Client(a)) = parse(
            [
                "client",
                "host:9001",
                "-c",
                "IndexGet longlist",
                "--command=NOOP",
                "--overwrite",
            ]
            .map(String::from),
        ) else {
            panic!("client should parse");
        };
        assert_eq!(a.settings.target, "host:9001");
        assert_eq!(a.commands, ["IndexGet longlist", "NOOP"]);
        assert!(a.settings.overwrite);
        let Ok(Action::Peer(p)) =
            parse_words("peer --connect 127.0.0.1:9001 --port 9002 --poll 1s --share s --secret k")
        else {
            panic!("peer should parse");
        };
        assert_eq!(p.settings.target, "127.0.0.1:9001");
        assert_eq!(p.serve.port, 9002);
        assert_eq!(p.poll, Duration::from_secs(1));
        assert_eq!(p.settings.share, PathBuf::from("s"));
        assert_eq!(p.serve.secret.as_deref(), Some("k"));
        assert!(p.sync.is_none());
        let Ok(Action::Peer(p)) = parse_words("peer --connect h --sync --delete") else {
            panic!("peer --sync should parse");
        };
        assert_eq!(
            p.sync.map(|a| (a.delete, a.force_delete)),
            Some((true, false))
        );
        assert!(parse_words("peer --connect h --delete").is_err());
    }

    #[test]
    fn auth_takes_any_or_proof_only_on_serve_and_peer() {
        let Ok(Action::Serve(c)) = parse_words("serve --secret s") else {
            panic!("serve should parse");
        };
        assert_eq!(c.auth, AuthMode::Any);
        let Ok(Action::Serve(c)) = parse_words("serve --secret s --auth proof-only") else {
            panic!("serve --auth should parse");
        };
        assert_eq!(c.auth, AuthMode::ProofOnly);
        let Ok(Action::Peer(p)) = parse_words("peer --connect h --auth proof-only") else {
            panic!("peer --auth should parse");
        };
        assert_eq!(p.serve.auth, AuthMode::ProofOnly);
        let Err(e) = parse_words("serve --auth plain") else {
            panic!("--auth plain should not parse");
        };
        assert!(e.0.contains("neither 'any' nor 'proof-only'"), "{}", e.0);
        assert!(SERVE_USAGE.contains("--auth any|proof-only"));
    }

    #[test]
    fn state_folders_and_the_environment() {
        let env = Env {
            secret: Some("from-env".into()),
            ftp_password: None,
            state_base: Some(PathBuf::from("/home/u/.local/state/p2pshare")),
        };
        let words = |line: &str| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let Ok(Action::Serve(c)) = parse_with(words("serve --state /var/lib/p"), &env) else {
            panic!("serve should parse");
        };
        assert_eq!(c.state.dir, Some(PathBuf::from("/var/lib/p")));
        assert_eq!(c.state.fallback_base, env.state_base);
        assert_eq!(c.secret.as_deref(), Some("from-env"));
        let Ok(Action::Client(a)) = parse_with(words("client --state st --secret mine"), &env)
        else {
            panic!("client should parse");
        };
        assert_eq!(a.state.dir, Some(PathBuf::from("st")));
        assert_eq!(a.settings.secret.as_deref(), Some("mine"));
        let Ok(Action::Peer(p)) = parse_with(words("peer --connect h --state st"), &env) else {
            panic!("peer should parse");
        };
        assert_eq!(p.serve.state.dir, Some(PathBuf::from("st")));
        assert_eq!(p.serve.secret.as_deref(), Some("from-env"));

        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            Env::from_vars(move |k| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            })
        };
        let base = |e: Env| e.state_base.map(|p| p.display().to_string());
        assert_eq!(
            base(vars(&[("HOME", "/home/u")])).as_deref(),
            Some("/home/u/.local/state/p2pshare")
        );
        assert_eq!(
            base(vars(&[("HOME", "/home/u"), ("XDG_STATE_HOME", "/st")])).as_deref(),
            Some("/st/p2pshare")
        );
        // Relative or empty values are not places.
        assert_eq!(
            base(vars(&[("HOME", "/home/u"), ("XDG_STATE_HOME", "rel")])).as_deref(),
            Some("/home/u/.local/state/p2pshare")
        );
        assert_eq!(base(vars(&[("HOME", "")])), None);
        assert_eq!(
            vars(&[("P2PSHARE_SECRET", "k")]).secret.as_deref(),
            Some("k")
        );
    }

    #[test]
    fn mistakes_are_usage_errors() {
        for line in [
            "frobnicate",
            "serve --port",
            "serve --port 99999",
            "serve --rescan soon",
            "serve --rescan 0s",
            "serve --data-ports 10-5",
            "serve --bind 127.0.0.1:9000",
            "serve --bind ::1:9000:x",
            "client 127.0.0.1:notaport",
            "client [::1",
            "peer --connect host:0",
            "serve --max-line 10",
            "serve extra",
            "client a b",
            "client --bogus",
            "peer",
            "peer --connect",
            "serve --secret same --ftp-password same",
            "serve --ftp-password alone",
            "peer --connect h --secret k --ftp-password k",
            "secret extra",
            // No subcommand: a usage error, not help.
            "",
        ] {
            assert!(parse_words(line).is_err(), "{line} should be refused");
        }
        for line in [
            "--help",
            "serve --help",
            "client -h",
            "peer --help",
            "help peer",
        ] {
            assert!(
                matches!(parse_words(line), Ok(Action::Help(_))),
                "{line:?} should show help"
            );
        }
    }
}
