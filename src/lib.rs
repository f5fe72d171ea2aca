//! p2pshare: two peers share a folder each over a human-readable line
//! protocol on TCP, with a separate data channel (TCP or UDP) for the
//! bytes, and FTP's passive-mode verbs on the same port (and, with
//! `--http`, HTTP/1.1 on a port of its own). PROTOCOL.md is
//! the wire contract; README.md is for the user. This page is for the
//! developer: the layers, how one request flows, where each file's job
//! is, how to add a command and how the tests are organised. Each
//! module's own documentation says more of its files.
//!
//! # A tour of the main types
//!
//! A request line is parsed into a [`protocol::Command`] with typed
//! arguments ([`protocol::parse`]); a blank line is no request at all,
//! and a bad one is a [`protocol::ParseError`] that becomes a reply:
//!
//! ```
//! use p2pshare::protocol::{self, Command, Transport};
//!
//! let cmd = protocol::parse("FileDownload UDP \"notes/meeting notes.txt\" 100").unwrap();
//! assert_eq!(
//!     cmd,
//!     Some(Command::Download {
//!         transport: Transport::Udp,
//!         name: "notes/meeting notes.txt".to_string(),
//!         offset: 100,
//!     })
//! );
//! assert_eq!(protocol::parse("  ").unwrap(), None);
//! let bad = protocol::parse("FileHash verify").unwrap_err();
//! assert!(bad.reply().code() >= 500);
//! ```
//!
//! Every reply is a [`protocol::Reply`] value with one constructor per
//! reply; it writes itself, line ends and escapes included, to any
//! [`std::io::Write`]. A table streams its rows and ends with its count:
//!
//! ```
//! use p2pshare::protocol::{FileRow, Reply};
//! use std::time::{Duration, UNIX_EPOCH};
//!
//! let mut out = Vec::new();
//! Reply::not_shared("nope.txt").write_to(&mut out).unwrap();
//! assert_eq!(out, b"550 no such file or not shared: nope.txt\n");
//!
//! let row = FileRow {
//!     name: "a\tb.txt",
//!     size: 20,
//!     mtime: UNIX_EPOCH + Duration::from_secs(1_795_000_000),
//!     mime: "text/plain",
//! };
//! let mut out = Vec::new();
//! Reply::files(vec![row]).write_to(&mut out).unwrap();
//! assert_eq!(
//!     String::from_utf8(out).unwrap(),
//!     "213-name\tsize\ttimestamp\ttype\n\
//!      213-a\\tb.txt\t20\t2026-11-18T11:06:40Z\ttext/plain\n\
//!      213 1 files\n"
//! );
//! ```
//!
//! A name can hold any byte but NUL and `/`; in a table field TAB, LF, CR
//! and backslash are escaped ([`names::escape_field`]), and
//! [`names::unescape_field`] gives the name back:
//!
//! ```
//! use p2pshare::names::{escape_field, unescape_field};
//!
//! let name = "odd\tname\nwith \\ and \r.txt";
//! let field = escape_field(name);
//! assert_eq!(field, "odd\\tname\\nwith \\\\ and \\r.txt");
//! assert!(!field.contains(['\t', '\n', '\r']));
//! assert_eq!(unescape_field(&field), name);
//! ```
//!
//! Timestamps are read in several forms ([`timefmt::parse`]) and always
//! written as RFC 3339 in UTC ([`timefmt::format`]):
//!
//! ```
//! use p2pshare::timefmt;
//!
//! let t = timefmt::parse("2026-11-27T10:00:00Z").unwrap();
//! assert_eq!(timefmt::parse("2026-11-27 10:00").unwrap(), t);
//! assert_eq!(timefmt::parse(&timefmt::unix_secs(t).to_string()).unwrap(), t);
//! assert_eq!(timefmt::format(t), "2026-11-27T10:00:00Z");
//! assert!(timefmt::parse("yesterday").is_err());
//! ```
//!
//! A [`share::Share`] is an open folder: its state folder, its index (hidden
//! names left out) and its md5 cache. [`share::Share::open_file`] opens a
//! shared file only inside the folder:
//!
//! ```
//! use p2pshare::share::{state::StateChoice, Share};
//!
//! let dir = std::env::temp_dir().join(format!("p2pshare-doc-share-{}", std::process::id()));
//! std::fs::create_dir_all(dir.join("notes")).unwrap();
//! std::fs::write(dir.join("notes/todo.txt"), "fix bike\n").unwrap();
//! std::fs::write(dir.join(".hidden"), "not shared").unwrap();
//!
//! let share = Share::open(&dir, &StateChoice::default()).unwrap();
//! let index = share.snapshot();
//! let names: Vec<&str> = index.all().map(|(name, _)| name).collect();
//! assert_eq!(names, ["notes/todo.txt"]);
//! assert_eq!(share.open_file("notes/todo.txt").unwrap().size(), 9);
//! assert!(share.open_file("../etc/passwd").is_err());
//! assert!(share.open_file(".hidden").is_err());
//! # drop(share);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```
//!
//! A [`server::Server`] binds its control port (port 0 picks a free one),
//! then serves on threads of its own until it is stopped:
//!
//! ```
//! use p2pshare::{addr::Bind, server::{Config, Server}};
//! use std::io::{BufRead, BufReader, Write};
//! use std::net::TcpStream;
//!
//! let dir = std::env::temp_dir().join(format!("p2pshare-doc-server-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! std::fs::write(dir.join("hello.txt"), "hello from p2pshare\n").unwrap();
//!
//! let config = Config {
//!     share: dir.clone(),
//!     bind: Bind::parse("127.0.0.1").unwrap(),
//!     port: 0,
//!     ..Config::default()
//! };
//! let server = Server::bind(config).unwrap();
//! let addr = server.local_addr();
//! assert_ne!(addr.port(), 0);
//! let running = server.spawn().unwrap();
//!
//! let mut conn = TcpStream::connect(addr).unwrap();
//! let mut lines = BufReader::new(conn.try_clone().unwrap()).lines();
//! assert!(lines.next().unwrap().unwrap().starts_with("220 p2pshare"));
//! conn.write_all(b"FileHash verify hello.txt\nQUIT\n").unwrap();
//! let reply: Vec<String> = lines.map(Result::unwrap).collect();
//! assert_eq!(reply[0], "213-name\tmd5\ttimestamp");
//! assert!(reply[1].starts_with("213-hello.txt\t"));
//! assert_eq!(reply.last().unwrap(), "221 bye");
//!
//! running.stop();
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```
//!
//! # Layers
//!
//! Modules import only from the layers below their own:
//!
//! ```text
//! cli, main        argument lexer and usage texts; the process's exit status
//! roles            server   client   peer
//! services         share    transfer    history
//! vocabulary       protocol  names  timefmt  digest  sys  stop  addr
//! ```
//!
//! - Vocabulary, free of sockets and files: [`protocol`] (the command
//!   table, [`protocol::Command`], the request reader, every
//!   [`protocol::Reply`]), [`names`] (the name codec), [`timefmt`]
//!   (timestamps), [`digest`] (hex and [`digest::Md5`]), [`sys`] (Linux
//!   constants), [`stop`] (a stop signal), [`addr`] (`--bind` addresses,
//!   `HOST[:PORT]` targets).
//! - Services: [`share`] (name rules, safe open, index, rescan, md5 cache,
//!   MIME), [`transfer`] (the data channels; reads the bytes it sends
//!   through [`transfer::Source`], and does not know [`share`]),
//!   [`history`] (`history.tsv` in the state folder). None imports
//!   another; each converts its own errors and outcomes into replies with
//!   [`protocol`]'s constructors (`ShareError::reply`,
//!   `SendOutcome::reply`, ...).
//! - Roles: [`server`] (the accept loop, per-address limits, one thread
//!   per session; it hands the share's open files to the data channels
//!   as [`transfer::Source`]; FTP's verbs are answered on the same
//!   session, on the same share, limits and AUTH), [`client`] (the thin client: the control
//!   connection, one module owning the data channels, a download batch
//!   and one file's download as explicit states, uploads, the console),
//!   [`peer`] (both at once). Each role takes its settings as a value
//!   ([`server::Config`], [`client::Settings`] and [`client::Options`],
//!   [`peer::Options`]); only [`cli`] knows the command line, and
//!   [`cli::Lexer`] takes it apart.
//!
//! # One request, one way
//!
//! ```text
//! socket bytes → protocol::Requests (capped lines → Request | Refusal)
//!   → server::session (AUTH gate from the command table, dispatch)
//!   → a handler: share / history tables, or a transfer over a
//!     transfer::Channel (one path for TCP and UDP up to Channel::send)
//!   → a protocol::Reply value → Reply::write_to → socket
//! ```
//!
//! The UDP channel is built in layers of its own: the wire format
//! ([`transfer::frame`]), loss recovery, congestion control and pacing,
//! the sender and receiver state machines (time and bytes in, datagrams
//! and deadlines out), and one module that does the socket and clock I/O
//! ([`transfer::udp`] lists them).
//!
//! The same shape, with the threads and the UDP channel's layers:
//!
//! ```text
//! cli, main     the command line → server::Config, client::Settings, peer::Options
//!    │
//! roles         server ─ session ─ handlers        client ─ console ─ fetch        peer
//!    │              (threads, sockets)                 (control connection, data channels)
//! services      share (names, index, md5 cache)   transfer (TCP, UDP channel)   history
//!    │                                               udp: frame → recovery/congestion/pacing
//!    │                                                    → sender/receiver (no I/O) → channel (I/O)
//! vocabulary    protocol (command table, Request, Reply)   names   digest   timefmt   sys
//! ```
//!
//! `tests/layers.rs` checks this shape on the files themselves: the
//! imports point down, one file of the UDP channel touches sockets,
//! clocks and threads, no file in `src/` holds more than 600 lines of
//! code and no function more than 80.
//!
//! # Source layout
//!
//! ```text
//! src/main.rs             thin: parse arguments, run the subcommand, map the outcome to an exit status
//! src/cli.rs              the argument parser (serve, client, peer): builds each role's settings; usage texts; the environment read in one place
//! src/cli/lexer.rs        the argument lexer: short flags, long flags, values (a flag's value taken as written)
//! src/addr.rs             --bind addresses and host names, HOST[:PORT] checks that name the wrong part
//! src/lib.rs              crate overview: the layers and the flow of a request
//! src/protocol/           the wire's vocabulary, free of sockets and files:
//!   spec.rs               what every dialect declares: Spec (verb, usage, help, AUTH gate, dialect), Verb, ParseError
//!   command.rs            the native commands: their Verbs in NATIVE, Command, parse
//!   ftp_command.rs        the FTP verbs: their Verbs in FTP_VERBS (the rest of the line as the argument), Ftp, parse_ftp
//!   ftp_reply.rs          the FTP replies as values, and LIST / MLSD lines, FTP times, quoted paths
//!   words.rs              how a request line splits into words (quotes, escapes)
//!   requests.rs           the reading side of a connection: capped lines in, Request or Refusal out; secrets masked
//!   reply.rs              Reply: one constructor per reply, written to any Write; tables streamed row by row
//!   lines.rs              reading replies back: reply lines, the 150 DATA line (a data channel's, or inline)
//!   stdio_reply.rs        the replies of a stdio session: its inline data mode, what it refuses (UDP, passive mode)
//! src/names.rs            the name codec: table escapes, request quoting, what is shown to a person
//! src/timefmt.rs          timestamps: RFC 3339 / date / Unix seconds in, RFC 3339 UTC out
//! src/digest.rs           hex and Md5: strict in (exactly 2 hex digits a byte), lowercase out
//! src/sys.rs              Linux open flags, error numbers and /proc paths, per architecture
//! src/stop.rs             a stop signal threads can poll or sleep on
//! src/history.rs          the request history, history.tsv in the state folder
//! src/server/mod.rs       Server: bind (port 0 works), accept loop, connection limits, stop
//! src/server/session.rs   one control connection: the greeting, the request loop, each line to its dialect's front end
//! src/server/core.rs      the session core every dialect shares: its reading and writing sides, limits, the AUTH gate,
//!                         history rows, the native transfers as handlers that return replies; its state private
//! src/server/native.rs    the native front end: the native commands' handlers over the core
//! src/server/wire.rs      what a control connection is made of below the core's two sides: a socket, or stdio
//! src/server/stdio.rs     the stdio face (serve --stdio): one session on stdin and stdout, no socket; their reader and writer threads
//! src/server/inline.rs    the inline data mode of a stdio session: a transfer's bytes on the control stream itself
//! src/server/line_ends.rs the reply writer's line ends: LF, or CR LF once FTP is spoken (and for the greeting)
//! src/server/macs.rs     after an AUTH PROOF login, the MAC on the last line of every reply, a line at a time
//! src/server/listing.rs   the tables: IndexGet, FileHash, History
//! src/server/transfers.rs downloads and uploads over the session's data channels, one path for TCP and UDP
//! src/server/limits.rs    per address: data ports of --data-ports, history rows, AUTH tries
//! src/server/ftp.rs       the FTP front end (FtpFront: the core and FTP's own state): the FTP verbs' handlers
//! src/server/ftp_state.rs FTP's own session state (current folder, REST offset, passive listener) and FtpFront
//! src/server/ftp_upload.rs FTP uploads: STOR, APPE, REST + STOR into a partial file kept for a resume
//! src/server/ftp_data.rs  FTP passive data connections: one listener per transfer, only the control peer's address
//! src/server/ftp_list.rs  FTP paths inside the share (CWD, traversal refused) and listings from the index
//! src/server/http.rs      the HTTP front end (--http): its own listener, a thread per connection, keep-alive, dispatch, history rows
//! src/server/http_parse.rs HTTP request heads with their caps, percent-coding of names, one byte range, HTTP dates
//! src/server/http_response.rs, http_exchange.rs  a response (bytes or a file range), one request being answered
//! src/server/http_file.rs GET/HEAD of a file: ETag and Repr-Digest from the md5, Range, If-Range, 304s, sandbox CSP
//! src/server/http_folder.rs, http_rows.rs, http_page.rs, http_json.rs  folder pages, search, JSON, the md5sum manifest
//! src/server/http_upload.rs, http_form.rs  PUT and the upload form (multipart), checked and placed like FileUpload
//! src/server/http_auth.rs, http_nonce.rs  Digest authentication with --secret: expiring nonces, rising nonce counts
//! src/share/mod.rs        the shared folder: only docs, the files' declarations and re-exports (no code)
//! src/share/front.rs      Share: open a folder with its state, index and md5 cache, rescan, open a file only inside
//! src/share/paths.rs      name rules (check_name) and path safety: folders inside a root (uploads and downloads)
//! src/share/error.rs      OpenError (a folder that cannot be shared) and ShareError (a refused request, its reply)
//! src/share/place.rs      placement: how every file that arrives takes its name, never over another (uploads and downloads)
//! src/share/upload.rs     an upload as it arrives on the server: its hidden temporary file inside the share
//! src/share/partial.rs    broken FTP uploads kept for a resume (APPE, REST + STOR), and folders made by MKD
//! src/share/had.rs        the versions of each file this share had before, for Sync's "the peer is behind"
//! src/share/ignore.rs     .p2pignore
//! src/share/opening.rs    opening a shared file: the name alone first (O_PATH), the file once it is a regular one inside
//! src/share/index.rs      the in-memory index and its queries (longlist, shortlist, glob)
//! src/share/scan.rs       the folder walk and the rescan thread (restarted after a panic)
//! src/share/hash.rs       the md5 cache keyed by (size, mtime, inode), hashes.tsv in the state folder
//! src/share/state.rs      where the state folder is: --state, <share>/.p2pshare, or one under ~/.local/state
//! src/share/mime.rs       content sniffing for the type column
//! src/transfer/mod.rs     Channel (a data channel as the server uses it), Source, the one SendOutcome, tokens
//! src/transfer/net.rs     binding a port of --data-ports, waking a blocked thread, accept backoff
//! src/transfer/tcp.rs     the TCP data channel: listener, token check, send and receive
//! src/transfer/udp/       the UDP data channel, from the wire up; only channel.rs does I/O:
//!   frame.rs              datagram layout: field ranges and a checked view, read and written through them
//!   frame/repr.rs         whole datagrams as values: parse into Frame, emit
//!   recovery.rs           packets in flight, RTT, RFC 9002 loss detection and probe timeout, spurious losses
//!   congestion.rs         the congestion controller trait and the loss-scaled controller
//!   pacing.rs             the pacer's token bucket
//!   chunks.rs             what the sender knows of each chunk; read-ahead through Source
//!   sender.rs             Sender: one transfer's sending side as a state machine (time and bytes in, datagrams and deadlines out)
//!   receiver.rs           Receiver: one transfer's receiving side as a state machine, writing to a sink
//!   channel.rs            UdpChannel and receive: the sockets, the clock, the threads, the loops that drive both
//! src/client/mod.rs       the thin client: its modules and run; re-exports for the rest of the crate
//! src/client/settings.rs  Settings: everything the client needs to reach a peer and store what it gets
//! src/client/transport.rs Transport: the byte stream under the control connection (TCP today), resolving a target
//! src/client/control.rs   Client: the control connection over any Transport: bounded replies, deadlines, closed-connection checks
//! src/client/answer.rs    Answer: a reply as the client reads it, its rows, and the bounds on its lines and bytes
//! src/client/error.rs     ClientError: typed, with the I/O error as its source; every message written once
//! src/client/outcome.rs   what one file's transfer came to (FileRow, Outcome, Cause), and how it is shown (Ui)
//! src/client/deadline.rs  the control connection's reader under a deadline: the greeting, each reply line, each whole reply
//! src/client/out.rs       stdout and stderr written without a panic; a failed write fails the command (exit status 1)
//! src/client/data.rs      the data channels: connect with the token, reuse only after a 226 and a liveness look, exactly the announced bytes
//!                         read while the control connection is watched, the UDP receive behind the same calls, uploads' sends
//! src/client/fetch.rs     a download command as a batch: local places, pipelined requests in a window, retries, resuming after a drop
//! src/client/download.rs  one file's download as states: requested, announced, receiving, verifying, placed; each reply bound to its request
//! src/client/local.rs     the local side: the share's real path, folders inside it, the partial file that is also the lock, local md5s
//! src/client/send.rs      uploads from the local folder (patterns matched on names, the client's state folder left out)
//! src/client/console.rs   the client's console: scripted or interactive, commands, reconnects, exit status
//! src/client/show.rs      what the console shows: aligned tables or TSV, the peer's text escaped, result rows, the progress bar
//! src/client/help.rs      the console's help, from the protocol's command table plus the client's own forms
//! src/client/sync/        Sync, the peer's changes pulled into the share:
//!   mod.rs                its arguments, one run (gather, plan, show or carry out), the summary
//!   plan.rs               the planner, pure: three listings in, one decision per file out; conflict names
//!   state.rs              the sync state file per peer share id, written atomically
//!   gather.rs             the two listings: the peer's checkall and longlist, the local index and md5 cache
//!   exec.rs               carrying a plan out: downloads (two connections for large files), the rows
//!   trash.rs              the trash: what a run removes or replaces, kept first; its age and size bounds
//!   restore.rs            Sync --restore: the trash listed, a version brought back
//! src/client/prompt.rs    the prompt: line editing and history at a terminal (stty), plain lines elsewhere
//! src/peer.rs             peer mode (peer::Options): a server and a client console in one process
//! tests/support/          std-only: the test runner of the two binaries below, the Share fixture (files, config, then a server), TempDir, a raw line client, the binary as a child process (at a terminal too), a scripted fake peer
//! tests/server/           one test binary: a module per capability of the server, talking to real servers over real sockets; grammar.rs is the fuzz test's oracle, written from PROTOCOL.md; ftp_clients.rs drives curl and lftp, http_clients.rs curl, wget, aria2c, urllib and Chromium (ignored in a plain cargo test, run by .ci/run)
//! tests/client/           one test binary: the client, peer mode and the command line, as child processes against real and fake servers
//! tests/layers.rs         the source keeps its layers, file and function sizes
//! tests/docs.rs           README.md within 500 lines, and every option it names in a --help
//! tests/udp_sim.rs        the UDP sender and receiver over a simulated lossy link with a virtual clock
//! scripts/demo.sh         two peers on loopback, walked through every command
//! scripts/nc-smoke.sh     a real server driven with nc alone
//! scripts/bench.sh        p2pshare against vsftpd + curl (and curl against p2pshare's FTP), lftp, rsync and tftp-hpa: one markdown table
//! scripts/loadgen.py      many concurrent control sessions, for the benchmark's load case
//! .ci/run                 what CI runs: install what is missing, cargo test, the ignored tests it can run, the nc smoke test
//! ```
//!
//! # Adding a command
//!
//! 1. In `src/protocol/command.rs`, a variant of [`protocol::Command`]
//!    with typed fields, and a `Verb` (a [`protocol::Spec`]: verb, usage,
//!    help line, whether it needs AUTH; and its parser from the words
//!    after the verb) listed in `NATIVE` and in [`protocol::COMMANDS`]. That gives it its place in `HELP`
//!    and in the client's `help`, its usage errors and the AUTH gate.
//!    (Only where the client runs it its own way, as with `FileDownload`,
//!    does it get a line in `src/client/help.rs`.)
//! 2. In `src/protocol/reply.rs`, a constructor of [`protocol::Reply`]
//!    for each reply it can get that is not there yet, with its exact
//!    bytes in the table test.
//! 3. In the server, a handler returning those replies in
//!    `src/server/native.rs` (over the session core's methods), and its
//!    arm in that front end's dispatch.
//! 4. Its section in PROTOCOL.md, and a test in `tests/server/` that
//!    speaks it over a real connection; where the command's grammar is
//!    new, its forms in `tests/server/grammar.rs` too, so that the fuzz
//!    test knows what each line must get.
//!
//! An FTP verb is added the same way with its `Verb` in `FTP_VERBS` of
//! `src/protocol/ftp_command.rs` (dialect `Ftp`: its argument is the rest
//! of the line, `HELP` lists it apart and the client's `help` leaves it
//! out), a variant of [`protocol::Ftp`], its replies in
//! `src/protocol/ftp_reply.rs`, its arm in `FtpFront::ftp`
//! (`src/server/ftp.rs`),
//! its line in `FEAT` when it is an extension, and its row in
//! PROTOCOL.md section 13.
//!
//! # Tests
//!
//! - `cargo test` runs five test binaries besides the unit tests and
//!   these doc tests (in about 12 s on 2 cores); cargo runs the binaries
//!   one after the other, so a new test goes into a module of
//!   `tests/server/` or `tests/client/`, not a new file at the top: add
//!   `mod <name>;` to the group's `main.rs` and its `<name>::CASES` to the
//!   list there, and import helpers with `use crate::support::*;`, `use
//!   crate::process::*;`.
//! - Those two binaries run on a small runner of their own
//!   (`tests/support/runner.rs`, `harness = false`): most of their tests
//!   wait on sockets, timeouts and child processes, so it runs four tests
//!   per core at once (4 to 16; `--test-threads N` or `RUST_TEST_THREADS`
//!   choose), where libtest runs one per core. It takes libtest's options
//!   (name filters, `--exact`, `--skip`, `--ignored`, `--include-ignored`,
//!   `--list`) and prints its lines and `test result:` summary, but does
//!   not capture a test's output. A module names its tests at its end:
//!   `cases![a, b, #[ignore = "needs nc"] c];`. A test function left out
//!   of that list is never used, which the build warns about and clippy's
//!   `-D warnings` refuses. A test that has not ended after 120 s
//!   (`P2PSHARE_TEST_TIMEOUT=SECONDS` sets another time) fails with its
//!   name, `test NAME ... FAILED (no end after 120 s)`, and the run goes
//!   on and ends without it.
//! - A test starts from `Share::new("tag").file(name, bytes).with(|c|
//!   Config { ..c }).serve()`; no test waits out a fixed timeout: the
//!   server's timeouts, including how long a data connection has for its
//!   token (`Config::token_deadline`), are set short where a test needs
//!   one to fire.
//! - A test that needs root or a tool that may be missing (`nc -s`,
//!   `file`, `curl`, `lftp`, `script`, `ip netns` and `nft`) is listed as
//!   `#[ignore = "needs ..."]`, so the summary counts it as ignored rather
//!   than passed; `cargo test -- --ignored` runs them, and `.ci/run` does
//!   so for those whose tools are there and prints how many ran. `.ci/run`
//!   also runs `cargo fmt --check`, `cargo clippy --all-targets -- -D
//!   warnings` and `cargo doc --no-deps` with `RUSTDOCFLAGS="-D
//!   warnings"`, and bounds each cargo step with `timeout`.
//! - `tests/docs.rs` holds README.md to its promises: at most 500 lines,
//!   and every `--option` it names is in the `--help` of `serve`,
//!   `client` or `peer`.
//!

#![forbid(unsafe_code)]

pub mod addr;
pub mod cli;
pub mod client;
pub mod digest;
pub mod history;
pub mod names;
pub mod peer;
pub mod proof;
pub mod protocol;
pub mod server;
pub mod share;
pub mod stop;
pub mod sys;
pub mod timefmt;
pub mod transfer;
