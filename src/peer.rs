//! Peer mode: a server and a client console in one process, the console
//! connected to the other peer, and a poller that reports what changed
//! there.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::client::console::Console;
use crate::client::link::Link;
use crate::client::out::{self, tell};
use crate::client::prompt::print_above;
use crate::client::show::peer_text;
use crate::client::ssh;
use crate::client::sync::{self, Args as SyncArgs};
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
    /// `--sync`: Sync with these options at start and after every poll
    /// that found a change.
    pub sync: Option<SyncArgs>,
}

/// `p2pshare peer`: returns the exit status. The port opens at once, as
/// `serve`'s does: the first scan of the share runs behind it, in the
/// server's rescan thread, and the poller's Sync waits for it.
pub fn run(args: Options) -> u8 {
    let share = match Share::open_unscanned(&args.serve.share, &args.serve.state) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tell!("p2pshare: {e}");
            return 1;
        }
    };
    for note in share.notes() {
        tell!("p2pshare: {note}");
    }
    let history = Arc::new(History::of_share(&share.state_dir()));
    let server = match Server::bind_with(args.serve.clone(), share.clone(), history.clone()) {
        Ok(s) => s,
        Err(e) => {
            tell!("p2pshare: {e}");
            return 1;
        }
    };
    tell!(
        "p2pshare: sharing {} (first scan running) on {}; other peer {}",
        share.root().display(),
        server.local_addr(),
        args.settings.target
    );
    let running = match server.announcing().spawn() {
        Ok(r) => r,
        Err(e) => {
            tell!("p2pshare: {e}");
            return 1;
        }
    };
    let stop = Stop::new();
    let (link, console_link) = links(&args.settings.target);
    let poller = {
        let poller = Poller {
            link,
            settings: args.settings.clone(),
            history: history.clone(),
            share: share.clone(),
            sync: args.sync.clone(),
        };
        let stop = stop.clone();
        let poll = args.poll;
        thread::Builder::new()
            .name("p2pshare-poll".into())
            .spawn(move || poll_loop(&poller, poll, &stop))
    };
    if let Err(e) = poller {
        tell!("p2pshare: cannot start the poller: {e}");
    }
    let mut console = Console::new(args.settings, history)
        .with_share(share)
        .with_link(console_link);
    console.wait_for_peer();
    console.run_stdin();
    console.close();
    if console.interrupted() {
        // Ctrl-C at the prompt, where the terminal does not turn it into
        // a signal: it ends the peer as the signal would.
        tell!("p2pshare: interrupted; stopping");
        stop.set();
        return 130;
    }
    tell!(
        "p2pshare: console closed; still serving on {} (interrupt to stop)",
        running.addr()
    );
    running.wait();
    stop.set();
    u8::from(out::any_failed())
}

/// The connections of the poller and of the console: one shared for an
/// `ssh://` peer (one ssh process), each its own over TCP.
fn links(target: &str) -> (Link, Link) {
    let link = Link::default();
    if ssh::is_ssh(target) {
        (link.clone(), link)
    } else {
        (link, Link::default())
    }
}

/// A file as `FileHash checkall` shows it: md5 and timestamp.
type Listing = BTreeMap<String, (String, String)>;

/// How long the poller waits before it tries again to reach the other
/// peer: its poll interval, at most this.
const RETRY_MAX: Duration = Duration::from_secs(1);

/// What the poller works with.
struct Poller {
    /// The connection it polls on: the console's too for an `ssh://`
    /// peer (one ssh connection for both).
    link: Link,
    settings: Settings,
    history: Arc<History>,
    share: Arc<Share>,
    sync: Option<SyncArgs>,
}

/// Connects (retrying every `poll`, at most [`RETRY_MAX`], until the other
/// peer is up), then every `poll` runs
/// `FileHash checkall` and prints one line per file added, changed or
/// removed since the last time; with `--sync`, syncs after it (see
/// [`Poller::sync_after`]).
fn poll_loop(p: &Poller, poll: Duration, stop: &Stop) {
    let (settings, history) = (&p.settings, &p.history);
    let mut last: Option<Listing> = None;
    let mut told_waiting = false;
    let mut told_output = false;
    let mut told_scanning = false;
    // Names that were still changing at the last sync: synced at the
    // next poll even if it finds nothing new.
    let mut waiting = false;
    while !stop.is_set() {
        let mut client = p.link.lock();
        let Some(c) = client.as_mut() else {
            match ssh::connect(settings, Some(history.clone())) {
                Ok(c) => {
                    print_above(
                        &format!("p2pshare: connected to the other peer at {}", c.addr()),
                        true,
                    );
                    *client = Some(c);
                    told_waiting = false;
                }
                Err(e) => {
                    drop(client);
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
            Ok((last_line, _)) if last_line.text.contains(crate::protocol::INCOMPLETE) => {
                say_scanning(&mut told_scanning)
            }
            Ok((last_line, now)) if last_line.code == code::TABLE => {
                told_scanning = false;
                if let Some(before) = &last {
                    for line in changes(before, &now) {
                        print_above(&format!("{}: {line}", settings.target), false);
                    }
                }
                let synced = p.sync_after(c, last.as_ref(), &now, &mut waiting);
                last = Some(now);
                if let Err(e) = synced {
                    print_above(&format!("p2pshare: Sync failed ({e}); reconnecting"), true);
                    *client = None;
                }
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
                *client = None;
            }
        }
        drop(client);
        report_output(&mut told_output);
        if stop.wait(poll) {
            return;
        }
    }
}

/// The other peer's first scan still runs (after a restart, say): a file
/// its listing lacks may be there all the same. Nothing is reported or
/// synced from such a listing, and the last whole listing stays what the
/// next one is compared with; this says so, once.
fn say_scanning(told: &mut bool) {
    if !*told {
        print_above(
            "p2pshare: the other peer's first scan is still running; \
             its changes are reported once it is done",
            true,
        );
        *told = true;
    }
}

/// Says on stderr (when it takes it), once, that the poller's report
/// could not be written.
fn report_output(told: &mut bool) {
    if *told {
        out::take_failure();
    } else {
        *told = out::report_failure();
    }
}

impl Poller {
    /// With `--sync`: runs Sync on `c` at the first poll, after a poll
    /// that found a change, and after one that follows a sync that left
    /// files waiting. The files that changed since the poll before
    /// (still being written, perhaps) wait for a poll that finds them
    /// unchanged.
    fn sync_after(
        &self,
        c: &mut Client,
        before: Option<&Listing>,
        now: &Listing,
        waiting: &mut bool,
    ) -> Result<(), ClientError> {
        let Some(args) = &self.sync else {
            return Ok(());
        };
        if !self.share.scanned() {
            // This side's first scan still runs behind the open port: the
            // Sync waits for the first poll after it is done.
            *waiting = true;
            return Ok(());
        }
        let busy = before.map(|b| changed_names(b, now));
        if busy.as_ref().is_some_and(|b| b.is_empty()) && !*waiting {
            return Ok(());
        }
        let busy = busy.unwrap_or_default();
        *waiting = !busy.is_empty();
        let ctx = sync::Context {
            settings: self.settings.clone(),
            history: self.history.clone(),
            state_dir: self.share.state_dir(),
            share: Some(self.share.clone()),
            tty_out: std::io::IsTerminal::is_terminal(&std::io::stdout()),
            busy,
            seen: Some(now.iter().map(|(n, v)| (n.clone(), v.0.clone())).collect()),
            quiet: true,
        };
        sync::run(c, args, &ctx).map(|_| ())
    }
}

/// The names added, changed or removed between two listings.
fn changed_names(before: &Listing, now: &Listing) -> std::collections::BTreeSet<String> {
    let changed = now
        .iter()
        .filter(|(n, v)| before.get(*n).is_none_or(|old| old.0 != v.0))
        .map(|(n, _)| n.clone());
    let removed = before.keys().filter(|n| !now.contains_key(*n)).cloned();
    changed.chain(removed).collect()
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
