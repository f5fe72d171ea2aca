//! The thin client: its settings and `run`.
//!
//! Below it: [`console`] runs commands, [`fetch`] downloads a batch of
//! files (one file's download in `download`, its local files in `local`),
//! [`send`] uploads, and `data` owns the data connections both use. All of
//! them talk to the peer through `control`'s [`Client`]: the control
//! connection over any byte stream that implements
//! [`transport::Transport`] (TCP is one), with the deadlines of `deadline`
//! and the client's bounds on replies written once; with a secret, the
//! challenge-response login and the MACs of every request and reply are
//! `login`'s, applied there. A reply arrives as an [`Answer`]; what fails
//! is a [`ClientError`].

mod answer;
pub mod console;
mod control;
mod data;
mod deadline;
mod download;
mod error;
pub mod fetch;
mod help;
mod inline;
pub mod link;
mod local;
mod login;
pub mod out;
mod outcome;
mod pipe;
pub mod prompt;
pub mod send;
mod settings;
pub mod show;
pub mod ssh;
pub mod sync;
pub mod transport;

use std::io::Write;
use std::sync::Arc;

pub use self::answer::{
    split_row, unescape, Answer, MAX_REPLY_BYTES, MAX_REPLY_LINE, MAX_REPLY_LINES,
};
pub use self::control::Client;
pub use self::error::{duration_text, Bound, Breach, ClientError, Late, Wait};
pub use self::settings::Settings;
pub use self::transport::{resolve, Peer, Transport, DEFAULT_PORT};
use crate::history::History;
use crate::share::state::StateChoice;

/// What `p2pshare client` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub settings: Settings,
    /// The commands to run, in order; none: read them from stdin.
    pub commands: Vec<String>,
    /// Where the history goes.
    pub state: StateChoice,
}

/// The history of the local shared folder: in the state folder that
/// `state` and the share choose (see [`crate::share::state::plan`]), which
/// is created only with the first row. A note about where it is goes to
/// stderr.
pub fn local_history(share: &std::path::Path, state: &StateChoice) -> History {
    let state = crate::share::state::plan(share, state);
    if let Some(note) = &state.note {
        out::tell!("p2pshare: {note}");
    }
    History::of_share(&state.path)
}

/// `p2pshare client`: runs the commands and returns the exit status (0 all
/// succeeded, 1 some failed, 2 the peer could not be reached or a `-c`
/// command was a usage error).
pub fn run(args: Options) -> u8 {
    // Nothing is created here: downloads make the folder when they need
    // it, the history with its first row. A path that cannot become a
    // folder is a mistake to tell now.
    if let Err(e) = crate::share::check_folder(&args.settings.share) {
        out::tell!("p2pshare: {e}");
        return 2;
    }
    let history = Arc::new(local_history(&args.settings.share, &args.state));
    let mut console = console::Console::new(args.settings, history);
    match console.connect() {
        Ok(_) => {}
        // Not reached at all: 2, like a usage error. Reached but refused
        // (a wrong secret, not a p2pshare peer): the command failed, 1.
        // A peer that accepts and never greets is as unreachable.
        Err(
            e @ (ClientError::Connect(..) | ClientError::Unusable(..) | ClientError::Timeout(_)),
        ) => {
            out::tell!("p2pshare: {e}");
            return 2;
        }
        Err(e) => {
            out::tell!("p2pshare: {e}");
            return 1;
        }
    }
    let mut failures = 0;
    if args.commands.is_empty() {
        failures += console.run_stdin();
    } else {
        for c in &args.commands {
            match console.execute(c) {
                console::Status::Ok => {}
                console::Status::Failed => failures += 1,
                console::Status::Quit => break,
            }
        }
        // A command given with -c that could not even be sent is a
        // mistake on the command line.
        if console.usage_errors() > 0 {
            console.close();
            return 2;
        }
    }
    console.close();
    // Output that could not be written fails the run, whatever wrote it.
    let _ = out::stdout().flush();
    out::report_failure();
    u8::from(failures > 0 || out::any_failed())
}
