//! The server tests: one binary, so that its tests run in parallel.

#[path = "../support/process.rs"]
mod process;
#[path = "../support/mod.rs"]
mod support;

mod auth;
mod bad_input;
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
mod ignore;
mod limits;
mod listing;
mod names;
mod patterns;
mod rescan;
mod shortlist;
mod state;
mod traversal;
mod udp;
mod upload;
