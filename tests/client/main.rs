//! The client tests: one binary, so that its tests run in parallel.

#[path = "../support/fake.rs"]
mod fake;
#[path = "../support/process.rs"]
mod process;
#[path = "../support/mod.rs"]
mod support;

mod cli;
mod client;
mod client_edges;
mod client_hostile;
mod client_udp;
mod history;
mod peer;
mod prompt;
mod serve_cli;
mod sync;
mod sync_peer;
