//! The `p2pshare` binary: parses the command line, runs the subcommand and
//! maps the outcome to an exit status (0 ok, 1 failure, 2 usage error).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use p2pshare::cli::{self, Action};
use p2pshare::server::Server;

fn main() -> ExitCode {
    let action = match cli::parse(std::env::args().skip(1)) {
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
        Action::Client(mut args) => {
            if args.settings.secret.is_none() {
                args.settings.secret = std::env::var("P2PSHARE_SECRET").ok();
            }
            ExitCode::from(p2pshare::client::run(args))
        }
        Action::Peer(mut args) => {
            if args.settings.secret.is_none() {
                args.settings.secret = std::env::var("P2PSHARE_SECRET").ok();
                args.serve.secret = args.settings.secret.clone();
            }
            ExitCode::from(p2pshare::peer::run(args))
        }
        Action::Serve(mut config) => {
            if config.secret.is_none() {
                config.secret = std::env::var("P2PSHARE_SECRET").ok();
            }
            let server = match Server::bind(config) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("p2pshare: {e}");
                    return ExitCode::from(1);
                }
            };
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
