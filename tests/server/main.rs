//! The server tests: one binary, so that its tests run in parallel, on the
//! runner of `support/runner.rs` (see there why not libtest's).

#[macro_use]
#[path = "../support/runner.rs"]
mod runner;

#[path = "../support/process.rs"]
mod process;
#[path = "../support/mod.rs"]
mod support;

mod auth;
mod bad_input;
mod by_hand;
mod commands;
mod concurrency;
mod data_port;
mod download;
mod empty_transfers;
mod ftp;
mod ftp_clients;
mod ftp_ftplib;
mod fuzz;
mod glob;
mod grammar;
mod hostile_server;
mod http;
mod http_clients;
mod ignore;
mod limits;
mod listing;
mod names;
mod patterns;
mod prefix;
mod rescan;
mod shortlist;
mod state;
mod stdio;
mod suite;
mod traversal;
mod udp;
mod upload;

fn main() -> std::process::ExitCode {
    runner::run(&[
        auth::CASES,
        bad_input::CASES,
        by_hand::CASES,
        commands::CASES,
        concurrency::CASES,
        data_port::CASES,
        download::CASES,
        empty_transfers::CASES,
        ftp::CASES,
        ftp_clients::CASES,
        ftp_ftplib::CASES,
        fuzz::CASES,
        glob::CASES,
        grammar::CASES,
        hostile_server::CASES,
        http::CASES,
        http_clients::CASES,
        ignore::CASES,
        limits::CASES,
        listing::CASES,
        names::CASES,
        patterns::CASES,
        prefix::CASES,
        rescan::CASES,
        shortlist::CASES,
        state::CASES,
        stdio::CASES,
        suite::CASES,
        traversal::CASES,
        udp::CASES,
        upload::CASES,
    ])
}
