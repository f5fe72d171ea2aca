//! The `p2pshare` binary: parses the command line, runs the subcommand and
//! maps the outcome to an exit status (0 ok, 1 failure, 2 usage error).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use p2pshare::cli::{self, Action, Env};
use p2pshare::client::out::{self, Stream};
use p2pshare::server::Server;

fn main() -> ExitCode {
    // An argument that is not UTF-8 is refused with its bytes shown
    // (std::env::args would panic on it).
    let mut args = Vec::new();
    for a in std::env::args_os().skip(1) {
        match a.into_string() {
            Ok(a) => args.push(a),
            Err(a) => {
                let bytes = std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str());
                out::line(
                    Stream::Stderr,
                    format_args!(
                        "p2pshare: the argument '{}' is not valid UTF-8",
                        p2pshare::names::shown_bytes(bytes)
                    ),
                );
                return ExitCode::from(2);
            }
        }
    }
    let action = match cli::parse_with(args, &Env::from_process()) {
        Ok(a) => a,
        Err(e) => {
            out::line(Stream::Stderr, format_args!("p2pshare: {e}"));
            return ExitCode::from(2);
        }
    };
    if let Some(warning) = cli::weak_secret_warning(&action) {
        out::line(Stream::Stderr, format_args!("{warning}"));
    }
    match action {
        Action::Help(text) => printed(&text),
        Action::Secret => match cli::secret::generate() {
            Ok(secret) => printed(&format!("{secret}\n")),
            Err(e) => {
                out::line(
                    Stream::Stderr,
                    format_args!("p2pshare: cannot make a secret: {e}"),
                );
                ExitCode::from(1)
            }
        },
        Action::Version => printed(&format!("p2pshare {}\n", env!("CARGO_PKG_VERSION"))),
        Action::Client(args) => ExitCode::from(p2pshare::client::run(args)),
        Action::Peer(args) => ExitCode::from(p2pshare::peer::run(*args)),
        Action::ServeStdio(config) => ExitCode::from(p2pshare::server::serve_stdio(config)),
        Action::Serve(config) => {
            let server = match Server::bind(config) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("p2pshare: {e}");
                    return ExitCode::from(1);
                }
            };
            for note in server.share().notes() {
                eprintln!("p2pshare: {note}");
            }
            eprintln!(
                "p2pshare: sharing {} (first scan running) on {}",
                server.share().root().display(),
                server.local_addr()
            );
            match server.announcing().run() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("p2pshare: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// Writes `text` to stdout: exit status 0, or 1 (said on stderr when it
/// takes it) when stdout cannot take it.
fn printed(text: &str) -> ExitCode {
    out::write(Stream::Stdout, text);
    if out::report_failure() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
