//! Command-line parsing: one loop over the arguments per subcommand, strict
//! about anything unexpected, with `--help` everywhere.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::server::Config;

/// What the command line asks for.
#[derive(Debug)]
pub enum Action {
    Serve(Config),
    /// Print this text to stdout and exit 0.
    Help(String),
    Version,
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
  p2pshare help [serve]                show help
  p2pshare --version

Run 'p2pshare serve --help' for the options. The protocol is plain text:
'nc 127.0.0.1 9000' and type HELP.
";

pub const SERVE_USAGE: &str = "\
usage: p2pshare serve [options]

Shares a folder over the p2pshare protocol (see PROTOCOL.md).

options:
  --share DIR            folder to share (default ./shared, created if missing)
  --port N               control port (default 9000; 0 picks a free one)
  --bind ADDR            address to listen on (default 0.0.0.0)
  --rescan DURATION      how often to rescan the folder (default 5s; e.g. 500ms, 1m)
  --data-ports LO-HI     take data ports from this range (default: any free port)
  --max-connections N    concurrent control sessions (default 256)
  --idle-timeout DUR     close a session idle this long (default 300s)
  --data-timeout DUR     abort a transfer stalled this long (default 300s)
  -h, --help             show this help
";

/// Arguments with `--name=value` split into name and value.
struct Args {
    items: std::collections::VecDeque<String>,
}

impl Args {
    fn new(args: impl IntoIterator<Item = String>) -> Args {
        let mut items = std::collections::VecDeque::new();
        for a in args {
            match a.split_once('=') {
                Some((name, value)) if name.starts_with("--") => {
                    items.push_back(name.to_string());
                    items.push_back(value.to_string());
                }
                _ => items.push_back(a),
            }
        }
        Args { items }
    }

    fn next(&mut self) -> Option<String> {
        self.items.pop_front()
    }

    fn value(&mut self, opt: &str) -> Result<String, UsageError> {
        self.next()
            .ok_or_else(|| UsageError(format!("{opt} needs a value")))
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Action, UsageError> {
    let mut args = Args::new(args);
    let Some(sub) = args.next() else {
        return Ok(Action::Help(MAIN_USAGE.to_string()));
    };
    match sub.as_str() {
        "serve" => parse_serve(&mut args),
        "help" | "-h" | "--help" => Ok(Action::Help(
            match args.next().as_deref() {
                Some("serve") => SERVE_USAGE,
                _ => MAIN_USAGE,
            }
            .to_string(),
        )),
        "-V" | "--version" | "version" => Ok(Action::Version),
        other => Err(UsageError(format!(
            "unknown subcommand '{other}'; try 'p2pshare --help'"
        ))),
    }
}

fn parse_serve(args: &mut Args) -> Result<Action, UsageError> {
    let mut c = Config::default();
    while let Some(a) = args.next() {
        if a == "-h" || a == "--help" {
            return Ok(Action::Help(SERVE_USAGE.to_string()));
        }
        if !apply_serve_option(&mut c, &a, args)? {
            return Err(UsageError(format!(
                "unexpected argument '{a}' for serve; see 'p2pshare serve --help'"
            )));
        }
    }
    Ok(Action::Serve(c))
}

/// Applies one server option; false when `a` is not one.
fn apply_serve_option(c: &mut Config, a: &str, args: &mut Args) -> Result<bool, UsageError> {
    match a {
        "--share" => c.share = PathBuf::from(args.value(a)?),
        "--port" => c.port = number(a, &args.value(a)?)?,
        "--bind" => {
            let v = args.value(a)?;
            c.bind = v
                .parse::<IpAddr>()
                .map_err(|_| UsageError(format!("--bind: '{v}' is not an IP address")))?;
        }
        "--rescan" => c.rescan = duration(a, &args.value(a)?)?,
        "--data-ports" => c.data_ports = Some(port_range(&args.value(a)?)?),
        "--max-connections" => c.max_connections = number(a, &args.value(a)?)?,
        "--idle-timeout" => c.idle_timeout = duration(a, &args.value(a)?)?,
        "--data-timeout" => c.data_timeout = duration(a, &args.value(a)?)?,
        _ => return Ok(false),
    }
    Ok(true)
}

fn number<T: std::str::FromStr>(opt: &str, v: &str) -> Result<T, UsageError> {
    v.parse()
        .map_err(|_| UsageError(format!("{opt}: '{v}' is not a valid number")))
}

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
