//! The `p2pshare` binary: parses the command line, runs the subcommand and
//! maps the outcome to an exit status (0 ok, 1 failure, 2 usage error).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use p2pshare::cli::{self, Action, Env};
use p2pshare::server::Server;

fn main() -> ExitCode {
    let action = match cli::parse_with(std::env::args().skip(1), &Env::from_process()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("p2pshare: {e}");
            return ExitCode::from(2);
        }
    };
    match action {
        Action::Help(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Action::Version => {
            println!("p2pshare {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Action::Client(args) => ExitCode::from(p2pshare::client::run(args)),
        Action::Peer(args) => ExitCode::from(p2pshare::peer::run(args)),
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
                "p2pshare: sharing {} ({} files) on {}",
                server.share().root().display(),
                server.share().snapshot().len(),
                server.local_addr()
            );
            p2pshare::share::scan::report_unnamable(&server.share().unnamable());
            match server.run() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("p2pshare: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
