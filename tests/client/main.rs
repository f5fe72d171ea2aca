//! The client tests: one binary, so that its tests run in parallel, on the
//! runner of `support/runner.rs` (see there why not libtest's).

#[macro_use]
#[path = "../support/runner.rs"]
mod runner;

#[path = "../support/fake.rs"]
mod fake;
#[path = "../support/process.rs"]
mod process;
#[path = "../support/sshd.rs"]
mod sshd;
#[path = "../support/mod.rs"]
mod support;

mod cli;
mod client;
mod client_auth;
mod client_edges;
mod client_hostile;
mod client_output;
mod client_udp;
mod disk;
mod first_scan;
mod history;
mod peer;
mod peer_scan;
mod prompt;
mod relay;
mod relay_macs;
mod serve_cli;
mod ssh;
mod sync;
mod sync_converge;
mod sync_peer;
mod sync_state;
mod sync_trash;

fn main() -> std::process::ExitCode {
    runner::run(&[
        cli::CASES,
        client::CASES,
        client_auth::CASES,
        client_edges::CASES,
        client_hostile::CASES,
        client_output::CASES,
        client_udp::CASES,
        disk::CASES,
        first_scan::CASES,
        history::CASES,
        peer::CASES,
        peer_scan::CASES,
        prompt::CASES,
        relay::CASES,
        relay_macs::CASES,
        serve_cli::CASES,
        ssh::CASES,
        sync::CASES,
        sync_converge::CASES,
        sync_state::CASES,
        sync_peer::CASES,
        sync_trash::CASES,
    ])
}
