//! The sync planner: what the peer has, what this side has and what both
//! had when they last agreed, in; one decision per file, out. Pure: no
//! sockets, no files, so every rule is a unit test.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::digest::Md5;

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

/// What Sync does with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// The same on both sides.
    InStep,
    /// The peer's version replaces (or becomes) this side's.
    Download,
    /// This side's version stays; nothing to fetch.
    Keep,
    /// Changed on both sides (or different at the first sync): this side's
    /// stays, the peer's lands beside it under a conflict name.
    Conflict,
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
            Action::Conflict => "conflict",
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

/// The three listings of one sync, and the names to leave alone this
/// time (still changing there, or not readable here).
pub struct Inputs<'a> {
    pub remote: &'a Files,
    pub local: &'a Files,
    pub base: &'a Files,
    pub busy: &'a BTreeSet<String>,
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
    let d = |action, version: &Version, reason, base| Decision {
        action,
        name: name.to_string(),
        version: version.clone(),
        reason,
        base,
    };
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
        (Some(r), Some(l)) => match b {
            Some(b) if b.md5 == l.md5 => {
                d(Action::Download, r, "changed there", Base::Set(r.clone()))
            }
            Some(b) if b.md5 == r.md5 => d(Action::Keep, l, "changed here", Base::Unchanged),
            Some(_) => d(
                Action::Conflict,
                r,
                "changed on both sides",
                Base::Set(r.clone()),
            ),
            None => d(
                Action::Conflict,
                r,
                "different at the first sync",
                Base::Set(r.clone()),
            ),
        },
        (Some(r), None) => match b {
            None => d(Action::Download, r, "new there", Base::Set(r.clone())),
            Some(b) if b.md5 == r.md5 => d(
                Action::Skip,
                r,
                "deleted here; not fetched again",
                Base::Unchanged,
            ),
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

/// The name the peer's version of `name` gets beside it in a conflict:
/// `NAME.sync-conflict-YYYYMMDD-HHMMSS-PEER.EXT` in the same folder, the
/// extension being what follows the last `.` of the base name (none for a
/// name without one, or whose only `.` starts it).
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

    /// The plan for these listings, nothing busy.
    fn planned(remote: &Files, local: &Files, base: &Files, rules: Rules) -> Plan {
        let busy = BTreeSet::new();
        let inp = Inputs {
            remote,
            local,
            base,
            busy: &busy,
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
            (
                Some("b"),
                Some("c"),
                Some("a"),
                false,
                Conflict,
                "changed on both sides",
            ),
            (
                Some("b"),
                Some("c"),
                None,
                false,
                Conflict,
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
