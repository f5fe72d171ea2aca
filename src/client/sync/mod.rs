//! `Sync [--dry-run] [--delete] [--force-delete] [<pattern>]`: pulls the
//! connected peer's changes into the local share. The peer's `FileHash
//! checkall`, this side's md5s and the sync state (what both had when
//! they last agreed, kept per peer share id) give each file one decision
//! ([`plan`]); `exec` carries them out, every version it replaces or
//! removes kept in the [`trash`] first, where `Sync --restore`
//! ([`restore`]) finds it.

mod exec;
mod gather;
pub mod plan;
mod restore;
pub mod state;
pub mod trash;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use super::control::Client;
use super::error::ClientError;
use super::settings::Settings;
use crate::history::History;
use crate::protocol::greeting_share_id;
use crate::share::index::Matcher;
use crate::share::state::StateChoice;
use crate::share::Share;
use plan::{Action, Files, Had, Inputs, Rules};

/// The console's usage line for Sync.
pub const USAGE: &str =
    "usage: Sync [--dry-run] [--delete] [--force-delete] [<pattern>], or Sync --restore [<name> [<time>]]";

/// What a Sync is asked to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    pub dry_run: bool,
    pub delete: bool,
    pub force_delete: bool,
    /// Only the files matching it (as `IndexGet regex` matches).
    pub pattern: Option<String>,
    /// `--restore`: lists the trash, or brings a version back (boxed:
    /// peer mode's options hold an `Args` and need none).
    pub restore: Option<Box<Restore>>,
}

/// What `Sync --restore` is asked for: nothing (the list), a name (its
/// newest version in the trash), or a name and the time of its run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restore {
    pub name: Option<String>,
    pub time: Option<String>,
}

/// Reads the words after `Sync`.
pub fn parse_args(words: &[String]) -> Result<Args, String> {
    if words.first().is_some_and(|w| w == "--restore") {
        return match &words[1..] {
            [] => Ok(None),
            [name] => Ok(Some((name, None))),
            [name, time] => Ok(Some((name, Some(time)))),
            _ => Err(USAGE.to_string()),
        }
        .map(|r| Args {
            restore: Some(Box::new(Restore {
                name: r.map(|(n, _)| n.clone()),
                time: r.and_then(|(_, t)| t.cloned()),
            })),
            ..Args::default()
        });
    }
    let mut a = Args::default();
    for w in words {
        match w.as_str() {
            "--dry-run" => a.dry_run = true,
            "--delete" => a.delete = true,
            "--force-delete" => a.force_delete = true,
            _ if w.starts_with("--") => return Err(format!("unknown option {w}; {USAGE}")),
            _ if a.pattern.is_some() => return Err(USAGE.to_string()),
            _ => a.pattern = Some(w.clone()),
        }
    }
    if let Some(p) = &a.pattern {
        Matcher::new(p).map_err(|e| format!("{}; {USAGE}", e.0))?;
    }
    Ok(a)
}

/// How many files ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub downloaded: usize,
    pub conflicts: usize,
    pub deleted: usize,
    pub kept: usize,
    pub skipped: usize,
    pub in_step: usize,
    pub failed: usize,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.downloaded += o.downloaded;
        self.conflicts += o.conflicts;
        self.deleted += o.deleted;
        self.kept += o.kept;
        self.skipped += o.skipped;
        self.in_step += o.in_step;
        self.failed += o.failed;
    }

    /// Counts a plan's decisions as they would end.
    fn of_plan(decisions: &[plan::Decision]) -> Counts {
        let mut c = Counts::default();
        for d in decisions {
            match d.action {
                Action::InStep => c.in_step += 1,
                Action::Download => c.downloaded += 1,
                Action::Conflict | Action::Yield => c.conflicts += 1,
                Action::Delete => c.deleted += 1,
                Action::Keep => c.kept += 1,
                Action::Skip => c.skipped += 1,
            }
        }
        c
    }

    fn text(&self) -> String {
        format!(
            "{} downloaded, {} conflicts, {} deleted, {} kept, {} skipped, {} in step, {} failed",
            self.downloaded,
            self.conflicts,
            self.deleted,
            self.kept,
            self.skipped,
            self.in_step,
            self.failed
        )
    }
}

/// Where a sync runs: the client's settings and state, the local share
/// when it is open already (peer mode), names to leave alone this time.
pub struct Context {
    pub settings: Settings,
    pub history: Arc<History>,
    pub state_dir: PathBuf,
    pub share: Option<Arc<Share>>,
    pub tty_out: bool,
    /// Names still changing on the peer (peer mode): not synced yet.
    pub busy: BTreeSet<String>,
    /// The peer's md5s as the last poll saw them (peer mode): a file the
    /// sync's own listing finds otherwise is still changing too.
    pub seen: Option<std::collections::BTreeMap<String, String>>,
    /// Shows only the rows that change something, and the summary only
    /// when something changed or failed (peer mode, after each poll).
    pub quiet: bool,
}

/// What one sync came to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Report {
    pub counts: Counts,
    /// False when something failed or the guard held deletions back.
    pub ok: bool,
}

/// Everything a sync plans from, gathered.
struct Gathered {
    peer_id: String,
    remote: Files,
    local: Files,
    busy: BTreeSet<String>,
    base: Files,
    /// Versions this side had before, by name.
    had: Had,
    state_path: PathBuf,
    share: Arc<Share>,
    /// The peer's listing was marked incomplete: no deletion is planned.
    incomplete: bool,
}

/// Gathers the peer's files, this side's and the sync state; else the
/// message that says why not.
fn gather(client: &mut Client, ctx: &Context) -> Result<Result<Gathered, String>, ClientError> {
    let Some(peer_id) = greeting_share_id(client.greeting()).map(str::to_string) else {
        return Ok(Err(
            "the peer announces no share id in its greeting; Sync needs a p2pshare peer that does"
                .into(),
        ));
    };
    if let Some(share) = &ctx.share {
        gather::await_first_scan(share);
    }
    let gather::Remote {
        files: mut remote,
        mut left_out,
        incomplete,
    } = match gather::remote(client)? {
        Ok(r) => r,
        Err(said) => return Ok(Err(format!("Sync: {said}"))),
    };
    let share = match &ctx.share {
        Some(s) => s.clone(),
        None => {
            let choice = StateChoice {
                dir: Some(ctx.state_dir.clone()),
                fallback_base: None,
            };
            match Share::open(&ctx.settings.share, &choice) {
                Ok(s) => Arc::new(s),
                Err(e) => return Ok(Err(e.to_string())),
            }
        }
    };
    // The state folder, wherever it lies, is never synced: the peer's
    // files of that name are left out, as hidden names are.
    let state_below = gather::state_below(&share, &ctx.state_dir);
    let in_state = |n: &String| state_below.iter().any(|s| gather::is_below(n, s));
    let before = remote.len();
    remote.retain(|n, _| !in_state(n));
    left_out += before - remote.len();
    if left_out > 0 {
        note(&format!(
            "{left_out} of the peer's files have names that cannot be synced here; left out"
        ));
    }
    let (local, mut busy) = gather::local(&share);
    let had = gather::had(&share);
    busy.extend(ctx.busy.iter().cloned());
    if let Some(seen) = &ctx.seen {
        let differs = |n: &String| {
            remote.get(n).map(|v| v.md5)
                != seen.get(n).and_then(|m| crate::digest::Md5::from_hex(m))
        };
        busy.extend(
            remote
                .keys()
                .chain(seen.keys())
                .filter(|n| differs(n))
                .cloned(),
        );
    }
    let state_path = state::path(&ctx.state_dir, &peer_id);
    let mut base = match state::load(&state_path) {
        Ok(b) => b,
        Err(e) => return Ok(Err(e)),
    };
    base.retain(|n, _| !in_state(n));
    Ok(Ok(Gathered {
        peer_id,
        remote,
        local,
        busy,
        base,
        had,
        state_path,
        share,
        incomplete,
    }))
}

/// Plans from what was gathered, only the files of the pattern if there
/// is one.
fn plan_of(g: &Gathered, args: &Args) -> plan::Plan {
    // Copies only with a pattern, of the files it matches: the listings
    // are the largest things a sync holds.
    let matcher = args.pattern.as_deref().and_then(|p| Matcher::new(p).ok());
    let only = |f: &Files| -> Option<Files> {
        let m = matcher.as_ref()?;
        Some(
            f.iter()
                .filter(|(n, _)| m.matches(n))
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
        )
    };
    let (remote, local, base) = (only(&g.remote), only(&g.local), only(&g.base));
    let inputs = Inputs {
        remote: remote.as_ref().unwrap_or(&g.remote),
        local: local.as_ref().unwrap_or(&g.local),
        base: base.as_ref().unwrap_or(&g.base),
        busy: &g.busy,
        had: &g.had,
        here_id: g.share.id(),
        peer_id: &g.peer_id,
    };
    // A file missing from an incomplete listing may be there all the
    // same: no deletion is carried over this time.
    let rules = Rules {
        delete: args.delete && !g.incomplete,
        force_delete: args.force_delete && !g.incomplete,
    };
    plan::plan(&inputs, rules)
}

/// Runs one Sync with the peer on `client` (`--restore` needs no peer).
pub fn run(client: &mut Client, args: &Args, ctx: &Context) -> Result<Report, ClientError> {
    if let Some(r) = &args.restore {
        return Ok(Report {
            counts: Counts::default(),
            ok: restore(r, ctx),
        });
    }
    let g = match gather(client, ctx)? {
        Ok(g) => g,
        Err(message) => {
            note(&message);
            return Ok(Report::default());
        }
    };
    let plan = plan_of(&g, args);
    let held = g.incomplete && args.delete;
    if g.incomplete {
        note(&format!(
            "{}the peer's listing is incomplete (its first scan is still running); \
             sync again once it is done",
            if held { "Sync deleted nothing: " } else { "" }
        ));
    }
    if let Some(why) = &plan.guard {
        note(&format!(
            "Sync deleted nothing: {why} (Sync --delete --force-delete deletes all the same)"
        ));
    }
    let peer = &g.peer_id[..8];
    let stamp = stamp(SystemTime::now());
    if args.dry_run {
        let mut trash = trash::Trash::open(&ctx.state_dir, &stamp, ctx.settings.trash, true);
        let (notes, refused) = trash::dry_notes(&plan.decisions, &g.local, &mut trash);
        show_plan(&plan.decisions, &notes, ctx.tty_out);
        let counts = Counts::of_plan(&plan.decisions);
        note(&format!(
            "Sync with {peer} (dry run, nothing changed): {}",
            counts.text()
        ));
        return Ok(Report {
            counts,
            ok: plan.guard.is_none() && !refused && !held,
        });
    }
    if !ctx.tty_out && !ctx.quiet {
        super::out::sayln!("{}", exec::HEADER.join("\t"));
    }
    let run = exec::Run {
        settings: &ctx.settings,
        history: ctx.history.clone(),
        share: &g.share,
        state_dir: &ctx.state_dir,
        peer_id: &g.peer_id,
        local: &g.local,
        stamp: &stamp,
        tty: ctx.tty_out,
        quiet: ctx.quiet,
    };
    let (counts, new_base) = exec::carry_out(client, &run, &plan.decisions, &g.base)?;
    // In peer mode this side's server lists the share: it lists what the
    // sync wrote at once, never the versions the sync just replaced.
    if ctx.share.is_some() && counts.downloaded + counts.conflicts + counts.deleted > 0 {
        g.share.rescan();
    }
    let _ = g.share.save_hashes();
    let mut ok = counts.failed == 0 && plan.guard.is_none() && !held;
    if let Err(e) = state::save(&g.state_path, &new_base) {
        let at = g.state_path.display();
        note(&format!("cannot write the sync state {at}: {e}"));
        ok = false;
    }
    let _ = super::out::stdout().flush();
    let changed = counts.downloaded + counts.conflicts + counts.deleted + counts.failed > 0;
    if !ctx.quiet || changed || !ok {
        note(&format!("Sync with {peer}: {}", counts.text()));
    }
    Ok(Report { counts, ok })
}

/// Runs `Sync --restore` (see `restore`); false when it
/// failed. It needs no peer.
pub fn restore(r: &Restore, ctx: &Context) -> bool {
    restore::run(r, ctx, &stamp(SystemTime::now()))
}

/// A message on stderr, above the console's prompt when one is drawn
/// (peer mode's poller syncs while a person types).
fn note(text: &str) {
    super::prompt::print_above(&format!("p2pshare: {text}"), true);
}

/// A dry run's plan: every decision but the files in step, as an aligned
/// table at a terminal, TSV with its header into a pipe; `notes` add to
/// the reason of the steps that put a version into the trash.
fn show_plan(
    decisions: &[plan::Decision],
    notes: &std::collections::HashMap<String, String>,
    tty: bool,
) {
    let header: Vec<String> = exec::HEADER.iter().map(|h| h.to_string()).collect();
    let rows = decisions
        .iter()
        .filter(|d| d.action != Action::InStep)
        .map(|d| {
            let note = notes.get(&d.name).map_or("", String::as_str);
            let reason = match d.action {
                Action::Conflict | Action::Yield => exec::conflict_reason(d, "goes"),
                _ => format!("{}{note}", d.reason),
            };
            exec::fields(d.action.as_str(), d, &reason)
        });
    let mut out = super::out::stdout();
    if tty {
        let all: Vec<Vec<String>> = std::iter::once(header).chain(rows).collect();
        let _ = out.write_all(super::show::aligned_with_header(&all).as_bytes());
    } else {
        let _ = writeln!(out, "{}", header.join("\t"));
        for r in rows {
            exec::print_row(&mut out, &r, false);
        }
    }
    let _ = out.flush();
}

/// `YYYYMMDD-HHMMSS` in UTC.
fn stamp(t: SystemTime) -> String {
    let s = crate::timefmt::format(t);
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    format!(
        "{}-{}",
        &digits[..8.min(digits.len())],
        &digits[8.min(digits.len())..]
    )
}
