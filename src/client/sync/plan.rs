//! The sync planner: what the peer has, what this side has and what both
//! had when they last agreed, in; one decision per file, out. Pure: no
//! sockets, no files, so every rule is a unit test.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::digest::Md5;
use crate::timefmt;

/// One version of a file: its md5, size and modification time, typed (a
/// peer's fields are read into these once, checked, and never carried as
/// text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub md5: Md5,
    pub size: u64,
    /// Whole seconds since the Unix epoch.
    pub mtime: u64,
}

impl Version {
    /// Reads the three fields of a table row (unescaped): 32 hex digits,
    /// a decimal u64 and an RFC 3339 time in UTC (`2026-11-27T10:00:00Z`,
    /// sub-seconds dropped); else what is wrong with them.
    pub fn parse(md5: &str, size: &str, timestamp: &str) -> Result<Version, String> {
        let shown = crate::names::shown;
        let md5 = Md5::from_hex(md5)
            .ok_or_else(|| format!("md5 \"{}\" is not 32 hex digits", shown(md5)))?;
        let size = match size.bytes().all(|b| b.is_ascii_digit()) {
            true => size.parse().ok(),
            false => None,
        }
        .ok_or_else(|| format!("size \"{}\" is not a number of bytes", shown(size)))?;
        let mtime = parse_time(timestamp).ok_or_else(|| {
            format!(
                "timestamp \"{}\" is not an RFC 3339 time in UTC",
                shown(timestamp)
            )
        })?;
        Ok(Version { md5, size, mtime })
    }

    /// The modification time as a `SystemTime`.
    pub fn time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.mtime)
    }

    /// The modification time as tables write it (`2026-11-27T10:00:00Z`).
    pub fn timestamp(&self) -> String {
        crate::timefmt::format(self.time())
    }
}

/// Seconds since the Unix epoch of a strict RFC 3339 time in UTC, as
/// tables write it (`2026-11-27T10:00:00Z`, sub-seconds allowed and
/// dropped); None for anything else.
pub fn parse_time(s: &str) -> Option<u64> {
    if s.len() > 40 || !s.is_ascii() {
        return None;
    }
    let t = humantime::parse_rfc3339(s).ok()?;
    Some(crate::timefmt::unix_secs(t))
}

/// Files by name.
pub type Files = BTreeMap<String, Version>;

/// The md5s of versions this side had earlier under a name (replaced or
/// removed since), by name.
pub type Had = BTreeMap<String, Vec<Md5>>;

/// What Sync does with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// The same on both sides.
    InStep,
    /// The peer's version replaces (or becomes) this side's.
    Download,
    /// This side's version stays; nothing to fetch.
    Keep,
    /// Changed on both sides (or different at the first sync), and this
    /// side's version wins ([`here_wins`]): it stays, the peer's lands
    /// beside it under the conflict name.
    Conflict,
    /// Changed on both sides, and the peer's version wins: this side's is
    /// moved to the conflict name beside it, the peer's takes its place.
    Yield,
    /// Deleted there, unchanged here: moved into the trash.
    Delete,
    /// Left as it is, for the reason given (deleted here, a deletion not
    /// asked for or held back by the guard, still changing).
    Skip,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::InStep => "in-step",
            Action::Download => "download",
            Action::Keep => "keep",
            Action::Conflict | Action::Yield => "conflict",
            Action::Delete => "delete",
            Action::Skip => "skip",
        }
    }
}

/// What the sync state holds for a file once the decision is carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// As it was.
    Unchanged,
    /// This version is what both sides agree on (or, after a conflict,
    /// what this side has seen of the peer's).
    Set(Version),
    /// Forgotten: the file is gone from both sides, or is this side's own.
    Forget,
}

/// One file's decision: the version the row shows (the peer's where it has
/// one), why, and what the sync state keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub name: String,
    pub version: Version,
    pub reason: &'static str,
    pub base: Base,
    /// The conflict copy's name, for a conflict: where the losing version
    /// goes ([`conflict_name`] of the loser's time and share id).
    pub beside: Option<String>,
}

/// How the plan is made.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules {
    /// Carry deletions over (`--delete`).
    pub delete: bool,
    /// Carry them over even past the mass-deletion guard.
    pub force_delete: bool,
}

/// The decisions, in name order, and why deletions were held back, if
/// they were.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub decisions: Vec<Decision>,
    pub guard: Option<String>,
}

/// The three listings of one sync, the names to leave alone this time
/// (still changing there, or not readable here), the versions this side
/// had earlier, and the share ids of both sides.
pub struct Inputs<'a> {
    pub remote: &'a Files,
    pub local: &'a Files,
    pub base: &'a Files,
    pub busy: &'a BTreeSet<String>,
    pub had: &'a Had,
    /// This side's share id.
    pub here_id: &'a str,
    /// The peer's share id.
    pub peer_id: &'a str,
}

/// Plans a sync (see [`Action`] for the decisions).
pub fn plan(inp: &Inputs, rules: Rules) -> Plan {
    // A sorted list, not a set: 8 bytes a name.
    let mut names: Vec<&String> = inp
        .remote
        .keys()
        .chain(inp.local.keys())
        .chain(inp.base.keys())
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut decisions = Vec::with_capacity(names.len());
    decisions.extend(
        names
            .into_iter()
            .filter_map(|name| decide(name, inp, rules.delete)),
    );
    settle_conflict_copies(inp, &mut decisions);
    let guard = guard(inp, &decisions);
    if guard.is_some() && !rules.force_delete {
        for d in decisions.iter_mut().filter(|d| d.action == Action::Delete) {
            d.action = Action::Skip;
            d.reason = "deleted there; held back by the deletion guard";
            d.base = Base::Unchanged;
        }
    }
    Plan {
        decisions,
        guard: guard.filter(|_| !rules.force_delete),
    }
}

/// The mass-deletion guard's absolute bounds: deletions of more files or
/// bytes than these are held back, however many files are synced, so
/// that a peer cannot pad its listing to make a large deletion look
/// small.
pub const GUARD_FILES: usize = 1000;
pub const GUARD_BYTES: u64 = 1 << 30;

/// The mass-deletion guard: a peer that lists nothing although files were
/// synced with it (with or without `--delete`: it is worth saying), or
/// deletions of half or more of this side's synced files, or of more than
/// [`GUARD_FILES`] files or [`GUARD_BYTES`] bytes, hold every deletion
/// back.
fn guard(inp: &Inputs, decisions: &[Decision]) -> Option<String> {
    let (deletions, bytes) = decisions
        .iter()
        .filter(|d| d.action == Action::Delete)
        .fold((0usize, 0u64), |(n, b), d| {
            (n + 1, b.saturating_add(d.version.size))
        });
    let synced = inp
        .base
        .keys()
        .filter(|n| inp.local.contains_key(*n))
        .count();
    if inp.remote.is_empty() && synced > 0 {
        return Some(format!(
            "the peer lists no file at all, although {synced} files here were synced with it"
        ));
    }
    if deletions == 0 {
        return None;
    }
    let what =
        format!("the peer's deletions would remove {deletions} of the {synced} files synced here");
    if deletions * 2 >= synced {
        Some(format!("{what}, half or more"))
    } else if deletions > GUARD_FILES {
        Some(format!("{what}, more than {GUARD_FILES} files"))
    } else if bytes > GUARD_BYTES {
        Some(format!(
            "{what}, {bytes} bytes, more than {} GiB",
            GUARD_BYTES >> 30
        ))
    } else {
        None
    }
}

/// The decision for one name, None for a name only the sync state knows
/// (gone from both sides) when nothing is to be forgotten.
/// A file kept or skipped keeps its last agreed row (`Base::Unchanged`),
/// so that the peer's file coming back after a refused or mistaken
/// listing is still known as the version both had.
fn decide(name: &str, inp: &Inputs, delete: bool) -> Option<Decision> {
    let r = inp.remote.get(name);
    let l = inp.local.get(name);
    let b = inp.base.get(name);
    let d = |action, version, reason, base| decision(name, action, version, reason, base);
    let same = |x: &Version, y: Option<&Version>| y.is_some_and(|y| y.md5 == x.md5);
    if inp.busy.contains(name) {
        let v = r.or(l).or(b)?;
        return Some(d(
            Action::Skip,
            v,
            "still changing; waits for the next sync",
            Base::Unchanged,
        ));
    }
    Some(match (r, l) {
        (Some(r), Some(l)) if r.md5 == l.md5 => d(
            Action::InStep,
            r,
            "the same on both sides",
            Base::Set(r.clone()),
        ),
        (Some(r), Some(l)) => differ(name, (r, l, b), inp),
        (Some(r), None) => match b {
            _ if same(r, b) => d(
                Action::Skip,
                r,
                "deleted here; not fetched again",
                Base::Unchanged,
            ),
            None => d(Action::Download, r, "new there", Base::Set(r.clone())),
            Some(_) => d(
                Action::Download,
                r,
                "changed there after it was deleted here",
                Base::Set(r.clone()),
            ),
        },
        (None, Some(l)) => match b {
            None => d(Action::Keep, l, "new here", Base::Unchanged),
            Some(_) if !same(l, b) => d(
                Action::Keep,
                l,
                "changed here, deleted there",
                Base::Unchanged,
            ),
            Some(_) if delete => d(Action::Delete, l, "deleted there", Base::Forget),
            Some(_) => d(
                Action::Skip,
                l,
                "deleted there (--delete moves it to the trash)",
                Base::Unchanged,
            ),
        },
        (None, None) => d(Action::InStep, b?, "deleted on both sides", Base::Forget),
    })
}

/// A decision on `name` showing `version`, with nothing beside it.
fn decision(
    name: &str,
    action: Action,
    version: &Version,
    reason: &'static str,
    base: Base,
) -> Decision {
    Decision {
        action,
        name: name.to_string(),
        version: version.clone(),
        reason,
        base,
        beside: None,
    }
}

/// The decision for a file both sides have, with different md5s: the
/// peer's version `r`, this side's `l`, the agreed one `b`.
fn differ(name: &str, (r, l, b): (&Version, &Version, Option<&Version>), inp: &Inputs) -> Decision {
    let d = |action, version, reason, base| decision(name, action, version, reason, base);
    match b {
        Some(b) if b.md5 == l.md5 => d(Action::Download, r, "changed there", Base::Set(r.clone())),
        Some(b) if b.md5 == r.md5 => d(Action::Keep, l, "changed here", Base::Unchanged),
        // A version this side had earlier: the peer is behind, not changed.
        _ if inp.had.get(name).is_some_and(|h| h.contains(&r.md5)) => d(
            Action::Keep,
            l,
            "changed here; the peer has a version this side had before",
            Base::Set(r.clone()),
        ),
        Some(_) => conflict(name, r, l, inp, "changed on both sides"),
        None => conflict(name, r, l, inp, "different at the first sync"),
    }
}

/// Whether this side's version `l` wins a conflict over the peer's `r`:
/// the newer modification time wins; at the same second, the version of
/// the side with the larger share id. Both sides see the same two
/// versions and ids, so both choose the same winner.
pub fn here_wins(l: &Version, r: &Version, here_id: &str, peer_id: &str) -> bool {
    match l.mtime.cmp(&r.mtime) {
        Ordering::Greater => true,
        Ordering::Less => false,
        Ordering::Equal => here_id > peer_id,
    }
}

/// `YYYYMMDD-HHMMSS` in UTC of a version's time.
fn stamp_of(v: &Version) -> String {
    let digits: String = timefmt::format(v.time())
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let (date, time) = digits.split_at(8.min(digits.len()));
    format!("{date}-{time}")
}

/// The first 8 characters of a share id (all of a shorter one).
fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// A conflict over `name`: the winner's version ends under the name on
/// both sides, the loser's beside it, named after the loser's time and
/// share id, so the copy has one name whichever side syncs first. Here
/// the peer's version is shown, and is what the sync state keeps: after
/// the conflict it counts as seen.
fn conflict(name: &str, r: &Version, l: &Version, inp: &Inputs, reason: &'static str) -> Decision {
    let (action, beside) = if here_wins(l, r, inp.here_id, inp.peer_id) {
        let at = conflict_name(name, &stamp_of(r), short_id(inp.peer_id));
        (Action::Conflict, at)
    } else {
        let at = conflict_name(name, &stamp_of(l), short_id(inp.here_id));
        (Action::Yield, at)
    };
    Decision {
        action,
        name: name.to_string(),
        version: r.clone(),
        reason,
        base: Base::Set(r.clone()),
        beside: Some(beside),
    }
}

/// A conflict copy that is already where the conflict puts it needs no
/// transfer: the peer's copy of this side's losing version (which this
/// sync moves there) is in step, and a winning side that has the peer's
/// version beside it already only keeps its own.
fn settle_conflict_copies(inp: &Inputs, decisions: &mut [Decision]) {
    let mut moved: BTreeMap<String, Md5> = BTreeMap::new();
    for d in decisions.iter_mut() {
        let Some(at) = d.beside.clone() else { continue };
        match d.action {
            Action::Yield => {
                if let Some(l) = inp.local.get(&d.name) {
                    moved.insert(at, l.md5);
                }
            }
            Action::Conflict if inp.local.get(&at).is_some_and(|c| c.md5 == d.version.md5) => {
                d.action = Action::Keep;
                d.reason = "conflict; the peer's version is beside it already";
            }
            _ => {}
        }
    }
    for d in decisions.iter_mut() {
        let copy = moved.get(&d.name);
        if d.action == Action::Download && copy.is_some_and(|m| *m == d.version.md5) {
            d.action = Action::InStep;
            d.reason = "the same on both sides once this side's version is moved there";
            d.base = Base::Unchanged;
        }
    }
}

/// The name the losing version of `name` gets beside it in a conflict:
/// `NAME.sync-conflict-YYYYMMDD-HHMMSS-ID.EXT` in the same folder (the
/// loser's modification time and the first 8 digits of its side's share
/// id), the extension being what follows the last `.` of the base name
/// (none for a name without one, or whose only `.` starts it).
pub fn conflict_name(name: &str, stamp: &str, peer: &str) -> String {
    let (dir, base) = match name.rsplit_once('/') {
        Some((d, b)) => (format!("{d}/"), b),
        None => (String::new(), name),
    };
    let (stem, ext) = match base.rfind('.') {
        Some(i) if i > 0 => (&base[..i], &base[i..]),
        _ => (base, ""),
    };
    format!("{dir}{stem}.sync-conflict-{stamp}-{peer}{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This side's share id in the tests, and the peer's: the peer's is
    /// the larger, so it wins ties.
    const HERE: &str = "11111111aaaaaaaaaaaaaaaaaaaaaaaa";
    const PEER: &str = "22222222bbbbbbbbbbbbbbbbbbbbbbbb";

    /// The plan for these listings, nothing busy, nothing had before.
    fn planned(remote: &Files, local: &Files, base: &Files, rules: Rules) -> Plan {
        let busy = BTreeSet::new();
        let inp = Inputs {
            remote,
            local,
            base,
            busy: &busy,
            had: &Had::new(),
            here_id: HERE,
            peer_id: PEER,
        };
        plan(&inp, rules)
    }

    /// A version whose md5 is the digest of `content`.
    fn v(content: &str) -> Version {
        Version {
            md5: Md5::of(content),
            size: 1,
            mtime: 1_796_083_200,
        }
    }

    fn files(list: &[(&str, &str)]) -> Files {
        list.iter().map(|(n, m)| (n.to_string(), v(m))).collect()
    }

    /// The action and reason for one file with these versions.
    fn one(
        r: Option<&str>,
        l: Option<&str>,
        b: Option<&str>,
        delete: bool,
    ) -> (Action, &'static str, Base) {
        let side = |m: Option<&str>| files(&m.map(|m| vec![("f", m)]).unwrap_or_default());
        // Other synced files, so that one deletion stays below the guard.
        let mut remote = side(r);
        let mut local = side(l);
        let mut base = side(b);
        for other in ["x", "y", "z"] {
            for f in [&mut remote, &mut local, &mut base] {
                f.insert(other.into(), v("o"));
            }
        }
        let rules = Rules {
            delete,
            force_delete: false,
        };
        let p = planned(&remote, &local, &base, rules);
        let d = p.decisions.into_iter().find(|d| d.name == "f").unwrap();
        (d.action, d.reason, d.base)
    }

    #[test]
    fn versions_read_only_well_formed_fields() {
        let good = Version::parse(
            "0CC175B9C0F1B6A831C399E269772661",
            "7",
            "2026-12-01T00:00:00.5Z",
        );
        assert_eq!(
            good,
            Ok(Version {
                md5: Md5::of("a"),
                size: 7,
                mtime: 1_796_083_200
            })
        );
        assert_eq!(good.unwrap().timestamp(), "2026-12-01T00:00:00Z");
        let md5 = "0cc175b9c0f1b6a831c399e269772661";
        let ts = "2026-12-01T00:00:00Z";
        for (m, size, t) in [
            ("0cc175b9c0f1b6a831c399e26977266", "7", ts),
            ("0cc175b9c0f1b6a831c399e26977266g", "7", ts),
            (md5, "-7", ts),
            (md5, "+7", ts),
            (md5, "", ts),
            (md5, "18446744073709551616", ts),
            (md5, "7", "2026-12-01T00:00:00Z\nx\ty"),
            (md5, "7", "2026-12-01"),
            (md5, "7", "1796083200"),
            (md5, "7", "2026-13-01T00:00:00Z"),
            (md5, "7", ""),
        ] {
            assert!(Version::parse(m, size, t).is_err(), "{m:?} {size:?} {t:?}");
        }
    }

    /// Peer, here, last agreed, --delete; the action and reason wanted.
    type Case<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        bool,
        Action,
        &'a str,
    );

    #[test]
    fn every_case_gets_its_decision() {
        use Action::*;
        let cases: &[Case] = &[
            (
                Some("a"),
                Some("a"),
                None,
                false,
                InStep,
                "the same on both sides",
            ),
            (
                Some("a"),
                Some("a"),
                Some("z"),
                false,
                InStep,
                "the same on both sides",
            ),
            (
                Some("b"),
                Some("a"),
                Some("a"),
                false,
                Download,
                "changed there",
            ),
            (Some("a"), Some("b"), Some("a"), false, Keep, "changed here"),
            // The same time on both sides: the peer's larger id wins.
            (
                Some("b"),
                Some("c"),
                Some("a"),
                false,
                Yield,
                "changed on both sides",
            ),
            (
                Some("b"),
                Some("c"),
                None,
                false,
                Yield,
                "different at the first sync",
            ),
            (Some("a"), None, None, false, Download, "new there"),
            (
                Some("a"),
                None,
                Some("a"),
                false,
                Skip,
                "deleted here; not fetched again",
            ),
            (
                Some("b"),
                None,
                Some("a"),
                false,
                Download,
                "changed there after it was deleted here",
            ),
            (None, Some("a"), None, false, Keep, "new here"),
            (
                None,
                Some("a"),
                Some("a"),
                false,
                Skip,
                "deleted there (--delete moves it to the trash)",
            ),
            (None, Some("a"), Some("a"), true, Delete, "deleted there"),
            (
                None,
                Some("b"),
                Some("a"),
                true,
                Keep,
                "changed here, deleted there",
            ),
            (
                None,
                None,
                Some("a"),
                false,
                InStep,
                "deleted on both sides",
            ),
        ];
        for &(r, l, b, delete, action, reason) in cases {
            let got = one(r, l, b, delete);
            assert_eq!(
                (got.0, got.1),
                (action, reason),
                "{r:?} {l:?} {b:?} {delete}"
            );
        }
    }

    #[test]
    fn the_sync_state_records_what_both_agree_on() {
        assert_eq!(
            one(Some("b"), Some("a"), Some("a"), false).2,
            Base::Set(v("b"))
        );
        // After a conflict the peer's version counts as seen: the next sync
        // keeps this side's instead of making a second conflict file.
        assert_eq!(
            one(Some("b"), Some("c"), Some("a"), false).2,
            Base::Set(v("b"))
        );
        assert_eq!(one(Some("a"), None, Some("a"), false).2, Base::Unchanged);
        assert_eq!(one(None, None, Some("a"), false).2, Base::Forget);
        assert_eq!(one(None, Some("a"), Some("a"), true).2, Base::Forget);
        // Kept or skipped: the last agreed row stays.
        assert_eq!(one(None, Some("b"), Some("a"), true).2, Base::Unchanged);
    }

    #[test]
    fn a_conflict_resolved_by_the_plan_is_not_planned_again() {
        // Sync once: conflict, the state takes the peer's md5.
        let (remote, local) = (files(&[("f", "b")]), files(&[("f", "c")]));
        let base = Files::new();
        let p = planned(&remote, &local, &base, Rules::default());
        let Base::Set(seen) = &p.decisions[0].base else {
            panic!()
        };
        let base: Files = [("f".to_string(), seen.clone())].into();
        let p = planned(&remote, &local, &base, Rules::default());
        assert_eq!(p.decisions[0].action, Action::Keep);
    }

    /// A version of this content with this time.
    fn at(content: &str, mtime: &str) -> Version {
        Version {
            md5: Md5::of(content),
            size: 1,
            mtime: parse_time(mtime).unwrap(),
        }
    }

    /// One side of a two-sided simulation: its files, its sync state with
    /// the other, its share id and what it had before.
    #[derive(Clone)]
    struct Side {
        files: Files,
        base: Files,
        id: &'static str,
        had: Had,
    }

    /// `me` syncs from `other` (with `--delete`) and carries the plan out
    /// as the executor does; returns the decisions.
    fn sync(me: &mut Side, other: &Side) -> Vec<Decision> {
        let busy = BTreeSet::new();
        let inp = Inputs {
            remote: &other.files,
            local: &me.files,
            base: &me.base,
            busy: &busy,
            had: &me.had,
            here_id: me.id,
            peer_id: other.id,
        };
        let rules = Rules {
            delete: true,
            force_delete: true,
        };
        let p = plan(&inp, rules);
        for d in &p.decisions {
            let (n, r) = (d.name.clone(), d.version.clone());
            match d.action {
                Action::Download => {
                    me.files.insert(n.clone(), r.clone());
                }
                Action::Conflict => {
                    me.files.insert(d.beside.clone().unwrap(), r.clone());
                }
                Action::Yield => {
                    let l = me.files.insert(n.clone(), r.clone()).unwrap();
                    me.files.insert(d.beside.clone().unwrap(), l);
                }
                Action::Delete => {
                    me.files.remove(&n);
                }
                _ => {}
            }
            match &d.base {
                Base::Set(v) => {
                    me.base.insert(n, v.clone());
                }
                Base::Forget => {
                    me.base.remove(&n);
                }
                Base::Unchanged => {}
            }
        }
        p.decisions
    }

    fn conflicts(ds: &[Decision]) -> usize {
        ds.iter()
            .filter(|d| matches!(d.action, Action::Conflict | Action::Yield))
            .count()
    }

    /// Two sides that changed `f` apart (B later), with `other` in step.
    fn apart() -> (Side, Side) {
        let common = files(&[("other", "o")]);
        let side = |id, f: Version| Side {
            files: {
                let mut x = common.clone();
                x.insert("f".into(), f);
                x
            },
            base: common.clone(),
            id,
            had: Had::new(),
        };
        (
            side(HERE, at("a", "2026-12-01T10:00:00Z")),
            side(PEER, at("b", "2026-12-01T10:00:05Z")),
        )
    }

    #[test]
    fn a_conflict_converges_whichever_side_syncs_first() {
        let want: Files = [
            ("f".to_string(), at("b", "2026-12-01T10:00:05Z")),
            (
                "f.sync-conflict-20261201-100000-11111111".to_string(),
                at("a", "2026-12-01T10:00:00Z"),
            ),
            ("other".to_string(), v("o")),
        ]
        .into();
        for a_first in [true, false] {
            let (mut a, mut b) = apart();
            let (first, second) = if a_first {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            assert_eq!(conflicts(&sync(first, second)), 1);
            // The other side: in step (or it yields, when it lost), and
            // from then on nothing changes.
            assert!(conflicts(&sync(second, first)) <= 1);
            assert_eq!(first.files, second.files, "a first: {a_first}");
            for _ in 0..3 {
                let more = sync(second, first).into_iter().chain(sync(first, second));
                assert!(more.into_iter().all(|d| matches!(d.action, Action::InStep)));
            }
            assert_eq!(a.files, want, "a first: {a_first}");
            assert_eq!(b.files, want, "a first: {a_first}");
            // The user resolves on A: merged, the copy deleted. It travels.
            a.files.insert("f".into(), at("m", "2026-12-01T11:00:00Z"));
            a.files.remove("f.sync-conflict-20261201-100000-11111111");
            for _ in 0..2 {
                assert_eq!(conflicts(&sync(&mut b, &a)), 0);
                assert_eq!(conflicts(&sync(&mut a, &b)), 0);
            }
            assert_eq!(a.files, b.files);
            assert_eq!(a.files.get("f").unwrap().md5, Md5::of("m"));
            assert_eq!(a.files.len(), 2, "{:?}", a.files.keys());
        }
    }

    #[test]
    fn the_winner_is_the_newer_version_then_the_larger_share_id() {
        let old = at("a", "2026-12-01T10:00:00Z");
        let new = at("b", "2026-12-01T10:00:01Z");
        assert!(here_wins(&new, &old, HERE, PEER));
        assert!(!here_wins(&old, &new, PEER, HERE));
        // The same second: the larger share id, on both sides alike.
        let same_time = Version {
            md5: Md5::of("c"),
            ..old.clone()
        };
        assert!(here_wins(&old, &same_time, PEER, HERE));
        assert!(!here_wins(&old, &same_time, HERE, PEER));
        // The conflict copy is named after the loser, alike on both sides.
        let (mut a, mut b) = apart();
        let pa = sync(&mut a.clone(), &b);
        let pb = sync(&mut b.clone(), &a);
        let fa = pa.iter().find(|d| d.name == "f").unwrap();
        let fb = pb.iter().find(|d| d.name == "f").unwrap();
        assert_eq!((fa.action, fb.action), (Action::Yield, Action::Conflict));
        assert_eq!(fa.beside, fb.beside);
        assert_eq!(
            fa.beside.as_deref(),
            Some("f.sync-conflict-20261201-100000-11111111")
        );
        // A has the copy already (it moved its version there): B keeps.
        sync(&mut a, &b);
        let again = sync(&mut b, &a);
        assert!(
            again
                .iter()
                .all(|d| d.action == Action::InStep || d.action == Action::Download),
            "{again:?}"
        );
    }

    #[test]
    fn the_side_that_yields_does_not_fetch_its_own_copy_back() {
        // B won and fetched A's version beside it already; then A yields.
        let (mut a, mut b) = apart();
        sync(&mut b, &a);
        let ds = sync(&mut a, &b);
        let copy = ds
            .iter()
            .find(|d| d.name.contains("sync-conflict"))
            .unwrap();
        assert_eq!(copy.action, Action::InStep, "{ds:?}");
        assert_eq!(copy.base, Base::Unchanged);
        assert_eq!(a.files, b.files);
    }

    #[test]
    fn a_peer_with_a_version_this_side_had_is_behind() {
        // Q made f (v1), P copied it, Q changed it (v2) before it saw P's
        // copy: Q has no agreed row, but had v1.
        let mut q = Side {
            files: [("f".to_string(), at("v2", "2026-12-01T10:00:09Z"))].into(),
            base: Files::new(),
            id: HERE,
            had: [("f".to_string(), vec![Md5::of("v1")])].into(),
        };
        let mut p = Side {
            files: [("f".to_string(), at("v1", "2026-12-01T10:00:00Z"))].into(),
            base: [("f".to_string(), at("v1", "2026-12-01T10:00:00Z"))].into(),
            id: PEER,
            had: Had::new(),
        };
        let ds = sync(&mut q, &p);
        assert_eq!(
            (ds[0].action, ds[0].reason),
            (
                Action::Keep,
                "changed here; the peer has a version this side had before"
            )
        );
        assert_eq!(ds[0].base, Base::Set(at("v1", "2026-12-01T10:00:00Z")));
        assert_eq!(sync(&mut p, &q)[0].action, Action::Download);
        assert_eq!(sync(&mut q, &p)[0].action, Action::InStep);
        assert_eq!((p.files.len(), q.files.len()), (1, 1));
        // A file deleted here is fetched again when the peer lists it with
        // no agreed row: the peer may have put it back on purpose (after
        // this side's sync deleted it, say), so a version had here
        // decides nothing for a missing file.
        let mut q = Side {
            files: Files::new(),
            ..q
        };
        q.base.clear();
        p.files.insert("g".into(), at("g1", "2026-12-01T10:00:00Z"));
        q.had.insert("g".into(), vec![Md5::of("g1")]);
        let ds = sync(&mut q, &p);
        let g = ds.iter().find(|d| d.name == "g").unwrap();
        assert_eq!((g.action, g.reason), (Action::Download, "new there"));
        // Without that memory it is a conflict.
        let mut q2 = Side {
            had: Had::new(),
            files: [("f".to_string(), at("v3", "2026-12-01T10:00:30Z"))].into(),
            base: Files::new(),
            id: HERE,
        };
        let p2 = Side {
            files: [("f".to_string(), at("v1", "2026-12-01T10:00:00Z"))].into(),
            ..p
        };
        assert_eq!(sync(&mut q2, &p2)[0].action, Action::Conflict);
    }

    fn deletions(p: &Plan) -> usize {
        p.decisions
            .iter()
            .filter(|d| d.action == Action::Delete)
            .count()
    }

    #[test]
    fn the_guard_holds_back_mass_deletions() {
        let base = files(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]);
        let local = base.clone();
        let rules = Rules {
            delete: true,
            force_delete: false,
        };
        // One of four: less than half.
        let remote = files(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let p = planned(&remote, &local, &base, rules);
        assert!(p.guard.is_none());
        assert_eq!(deletions(&p), 1);
        // Two of four: half, held back (padding the listing with as many
        // files as are deleted no longer gets a deletion through).
        let remote = files(&[("a", "1"), ("b", "2")]);
        let p = planned(&remote, &local, &base, rules);
        assert!(
            p.guard.as_deref().unwrap().contains("2 of the 4"),
            "{:?}",
            p.guard
        );
        // Three of four: held back.
        let remote = files(&[("a", "1")]);
        let p = planned(&remote, &local, &base, rules);
        assert!(
            p.guard.as_deref().unwrap().contains("3 of the 4"),
            "{:?}",
            p.guard
        );
        assert!(p.decisions.iter().all(|d| d.action != Action::Delete));
        // An empty listing: held back, said as such.
        let remote = Files::new();
        let p = planned(&remote, &local, &base, rules);
        assert!(p.guard.as_deref().unwrap().contains("no file at all"));
        // Forced: carried out.
        let forced = Rules {
            delete: true,
            force_delete: true,
        };
        let p = planned(&remote, &local, &base, forced);
        assert!(p.guard.is_none());
        assert_eq!(deletions(&p), 4);
        // Without --delete nothing is deleted; an empty listing is still
        // said, half or more gone is not.
        let p = planned(&remote, &local, &base, Rules::default());
        assert!(p.guard.as_deref().unwrap().contains("no file at all"));
        let remote = files(&[("a", "1")]);
        let p = planned(&remote, &local, &base, Rules::default());
        assert!(p.guard.is_none());
    }

    #[test]
    fn the_guard_counts_files_and_bytes_too() {
        let rules = Rules {
            delete: true,
            force_delete: false,
        };
        // A thousand and one of five thousand files: well below half.
        let names: Vec<String> = (0..5000).map(|i| format!("f{i}")).collect();
        let base: Files = names.iter().map(|n| (n.clone(), v(n))).collect();
        let remote: Files = base
            .iter()
            .skip(GUARD_FILES + 1)
            .map(|(n, x)| (n.clone(), x.clone()))
            .collect();
        let p = planned(&remote, &base, &base, rules);
        assert!(
            p.guard.as_deref().unwrap().contains("more than 1000 files"),
            "{:?}",
            p.guard
        );
        let remote: Files = base
            .iter()
            .skip(GUARD_FILES)
            .map(|(n, x)| (n.clone(), x.clone()))
            .collect();
        assert!(planned(&remote, &base, &base, rules).guard.is_none());
        // One large file of ten: more than the bytes bound.
        let mut base = files(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5")]);
        base.get_mut("a").unwrap().size = GUARD_BYTES + 1;
        let mut remote = base.clone();
        remote.remove("a");
        let p = planned(&remote, &base, &base, rules);
        assert!(p.guard.as_deref().unwrap().contains("GiB"), "{:?}", p.guard);
        base.get_mut("a").unwrap().size = GUARD_BYTES;
        assert!(planned(&remote, &base, &base, rules).guard.is_none());
    }

    #[test]
    fn busy_names_wait() {
        let busy: BTreeSet<String> = ["f".to_string()].into();
        let (remote, local, base) = (
            files(&[("f", "b")]),
            files(&[("f", "a")]),
            files(&[("f", "a")]),
        );
        let inp = Inputs {
            remote: &remote,
            local: &local,
            base: &base,
            busy: &busy,
            had: &Had::new(),
            here_id: HERE,
            peer_id: PEER,
        };
        let p = plan(&inp, Rules::default());
        assert_eq!(
            (p.decisions[0].action, p.decisions[0].base.clone()),
            (Action::Skip, Base::Unchanged)
        );
    }

    #[test]
    fn conflict_names_keep_folder_and_extension() {
        let cases = [
            (
                "a.txt",
                "0123abcd",
                "a.sync-conflict-20261202-071500-0123abcd.txt",
            ),
            (
                "d/e/b.tar.gz",
                "p",
                "d/e/b.tar.sync-conflict-20261202-071500-p.gz",
            ),
            ("noext", "p", "noext.sync-conflict-20261202-071500-p"),
            (".hidden", "p", ".hidden.sync-conflict-20261202-071500-p"),
            (
                "d.x/tab\tname",
                "p",
                "d.x/tab\tname.sync-conflict-20261202-071500-p",
            ),
            (
                "🦀 *?[].rs",
                "p",
                "🦀 *?[].sync-conflict-20261202-071500-p.rs",
            ),
        ];
        for (name, peer, want) in cases {
            assert_eq!(
                conflict_name(name, "20261202-071500", peer),
                want,
                "{name:?}"
            );
        }
    }
}
