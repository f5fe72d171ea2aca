//! Peer mode: a server and a client console in one process, the console
//! connected to the other peer, and a poller that reports what changed
//! there.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::client::console::Console;
use crate::client::prompt::print_above;
use crate::client::show::peer_text;
use crate::client::{unescape, Client, ClientError, Settings};
use crate::history::History;
use crate::protocol::{code, shown, ReplyLine};
use crate::server::{Config, Server};
use crate::share::Share;
use crate::stop::Stop;

/// What `p2pshare peer` is asked to do: serve a folder and run a console
/// connected to the other peer.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server; its share is the console's too.
    pub serve: Config,
    /// The console's connection to the other peer.
    pub settings: Settings,
    /// How often the other peer is checked for changes.
    pub poll: Duration,
}

/// `p2pshare peer`: returns the exit status.
pub fn run(args: Options) -> u8 {
    let share = match Share::open(&args.serve.share, &args.serve.state) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("p2pshare: {e}");
            return 1;
        }
    };
    for note in share.notes() {
        eprintln!("p2pshare: {note}");
    }
    let history = Arc::new(History::of_share(&share.state_dir()));
    let server = match Server::bind_with(args.serve.clone(), share.clone(), history.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("p2pshare: {e}");
            return 1;
        }
    };
    eprintln!(
        "p2pshare: sharing {} ({} files) on {}; other peer {}",
        share.root().display(),
        share.snapshot().len(),
        server.local_addr(),
        args.settings.target
    );
    crate::share::scan::report_unnamable(&share.unnamable());
    let running = match server.spawn() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("p2pshare: {e}");
            return 1;
        }
    };
    let stop = Stop::new();
    let poller = {
        let settings = args.settings.clone();
        let history = history.clone();
        let stop = stop.clone();
        let poll = args.poll;
        thread::Builder::new()
            .name("p2pshare-poll".into())
            .spawn(move || poll_loop(&settings, history, poll, &stop))
    };
    if let Err(e) = poller {
        eprintln!("p2pshare: cannot start the poller: {e}");
    }
    let mut console = Console::new(args.settings, history);
    console.wait_for_peer();
    console.run_stdin();
    console.close();
    eprintln!(
        "p2pshare: console closed; still serving on {} (interrupt to stop)",
        running.addr()
    );
    running.wait();
    stop.set();
    0
}

/// A file as `FileHash checkall` shows it: md5 and timestamp.
type Listing = BTreeMap<String, (String, String)>;

/// How long the poller waits before it tries again to reach the other
/// peer: its poll interval, at most this.
const RETRY_MAX: Duration = Duration::from_secs(1);

/// Connects (retrying every `poll`, at most [`RETRY_MAX`], until the other
/// peer is up), then every `poll` runs
/// `FileHash checkall` and prints one line per file added, changed or
/// removed since the last time.
fn poll_loop(settings: &Settings, history: Arc<History>, poll: Duration, stop: &Stop) {
    let mut client: Option<Client> = None;
    let mut last: Option<Listing> = None;
    let mut told_waiting = false;
    while !stop.is_set() {
        let Some(c) = client.as_mut() else {
            match Client::connect(
                &settings.target,
                settings.timeout,
                Some(history.clone()),
                settings.secret.as_deref(),
            ) {
                Ok(c) => {
                    print_above(
                        &format!("p2pshare: connected to the other peer at {}", c.addr()),
                        true,
                    );
                    client = Some(c);
                    told_waiting = false;
                }
                Err(e) => {
                    if !told_waiting {
                        print_above(&format!("p2pshare: waiting for the other peer ({e})"), true);
                        told_waiting = true;
                    }
                    if stop.wait(poll.min(RETRY_MAX)) {
                        return;
                    }
                }
            }
            continue;
        };
        match checkall(c) {
            Ok((last_line, now)) if last_line.code == code::TABLE => {
                if let Some(before) = &last {
                    for line in changes(before, &now) {
                        print_above(&format!("{}: {line}", settings.target), false);
                    }
                }
                last = Some(now);
            }
            Ok((r, _)) => print_above(
                &format!(
                    "p2pshare: polling the other peer: {} {}",
                    r.code,
                    peer_text(&r.text)
                ),
                true,
            ),
            Err(e) => {
                // A peer that breaks the protocol (an endless table, say)
                // is tried again after the poll interval, not at once.
                print_above(
                    &format!("p2pshare: lost the other peer ({e}); reconnecting"),
                    true,
                );
                client = None;
            }
        }
        if stop.wait(poll) {
            return;
        }
    }
}

/// `FileHash checkall` on `c`: its final line and the listing, read row by
/// row (the reply is bounded by [`crate::client::MAX_REPLY_LINES`] and
/// [`crate::client::MAX_REPLY_BYTES`]).
fn checkall(c: &mut Client) -> Result<(ReplyLine, Listing), ClientError> {
    let line = "FileHash checkall";
    c.send(line)?;
    let mut now = Listing::new();
    let last = c.read_table(&mut |text| {
        let mut f = text.split('\t');
        if let (Some(name), Some(md5), Some(ts)) = (f.next(), f.next(), f.next()) {
            now.insert(unescape(name), (md5.to_string(), ts.to_string()));
        }
    })?;
    c.record(line, last.code);
    Ok((last, now))
}

/// `added NAME`, `changed NAME`, `removed NAME` lines, in name order, each
/// name as it may be shown ([`shown`]: no escape sequence of the other
/// peer reaches the terminal).
pub fn changes(before: &Listing, now: &Listing) -> Vec<String> {
    let mut out = Vec::new();
    for (name, v) in now {
        match before.get(name) {
            None => out.push(format!("added {}", shown(name))),
            Some(old) if old.0 != v.0 => out.push(format!("changed {}", shown(name))),
            Some(_) => {}
        }
    }
    for name in before.keys() {
        if !now.contains_key(name) {
            out.push(format!("removed {}", shown(name)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_added_changed_removed() {
        let l = |v: &[(&str, &str)]| -> Listing {
            v.iter()
                .map(|(n, m)| (n.to_string(), (m.to_string(), String::new())))
                .collect()
        };
        let before = l(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let now = l(&[("a", "1"), ("b", "9"), ("d", "4")]);
        assert_eq!(
            changes(&before, &now),
            ["changed b", "added d", "removed c"]
        );
    }
}
