//! `Sync --restore [<name> [<time>]]`: lists what Sync put into the trash,
//! newest first, or brings one version back under its name. A different
//! file under that name is never lost: it goes to the trash in turn
//! (refused when the trash has no room for it). Needs nothing of the
//! peer.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::trash::{self, copy, Entry, Trash};
use super::{note, Context, Restore};
use crate::client::local::local_md5;
use crate::client::show::{aligned_with_header, human_size};
use crate::protocol::shown;
use crate::share::hash::md5_of_reader;
use crate::share::{check_name, folder_inside, place, Mode, Placed};
use crate::timefmt;

/// The header of the list.
const LIST_HEADER: [&str; 4] = ["time", "name", "size", "timestamp"];

/// Runs `Sync --restore`; false when it failed. `stamp` names the trash
/// folder a replaced version goes to.
pub(super) fn run(r: &Restore, ctx: &Context, stamp: &str) -> bool {
    let dir = ctx.state_dir.join(trash::DIR);
    let mut all = trash::entries(&dir);
    let Some(name) = &r.name else {
        list(&all, ctx);
        return true;
    };
    all.retain(|e| e.name == *name && r.time.as_ref().is_none_or(|t| *t == e.time));
    let Some(entry) = all.pop() else {
        let at = r
            .time
            .as_ref()
            .map(|t| format!(" from the run of {}", shown(t)))
            .unwrap_or_default();
        note(&format!(
            "{} is not in the trash{at} (Sync --restore lists what is)",
            shown(name)
        ));
        return false;
    };
    match bring_back(&entry, ctx, stamp) {
        Ok(reason) => {
            let md5 = local_md5(&share_root(ctx).join(&entry.name)).unwrap_or_default();
            let row = vec![
                "restore".to_string(),
                entry.name.clone(),
                entry.size.to_string(),
                timefmt::format(entry.mtime),
                md5,
                reason,
            ];
            let mut out = io::stdout().lock();
            if !ctx.tty_out {
                let _ = writeln!(out, "{}", super::exec::HEADER.join("\t"));
            }
            super::exec::print_row(&mut out, &row, ctx.tty_out);
            true
        }
        Err(why) => {
            note(&format!("{}: not restored: {why}", shown(&entry.name)));
            false
        }
    }
}

/// The list of the trash, newest first, and what it holds in all.
fn list(all: &[Entry], ctx: &Context) {
    let header: Vec<String> = LIST_HEADER.iter().map(|h| h.to_string()).collect();
    let mut newest_first: Vec<&Entry> = all.iter().collect();
    newest_first.sort_by(|a, b| b.time.cmp(&a.time).then(a.name.cmp(&b.name)));
    let rows = newest_first.iter().map(|e| {
        vec![
            e.time.clone(),
            e.name.clone(),
            e.size.to_string(),
            timefmt::format(e.mtime),
        ]
    });
    let mut out = io::stdout().lock();
    if ctx.tty_out {
        let shown_rows = rows.map(|r| {
            let size = r[2].parse().map(human_size).unwrap_or_default();
            vec![r[0].clone(), shown(&r[1]), size, r[3].clone()]
        });
        let table: Vec<Vec<String>> = std::iter::once(header).chain(shown_rows).collect();
        let _ = out.write_all(aligned_with_header(&table).as_bytes());
    } else {
        let _ = writeln!(out, "{}", header.join("\t"));
        for r in rows {
            super::exec::print_row(&mut out, &r, false);
        }
    }
    let _ = out.flush();
    let bytes: u64 = all.iter().map(|e| e.size).sum();
    let b = ctx.settings.trash;
    note(&format!(
        "the trash holds {} versions, {} of at most {} (--trash-max-size), each for {} (--trash-max-age); Sync --restore NAME [TIME] brings one back",
        all.len(),
        human_size(bytes),
        human_size(b.max_bytes),
        age_text(b.max_age)
    ));
}

/// `30 days` for whole days, else as humantime writes it (`12h`).
fn age_text(d: std::time::Duration) -> String {
    const DAY: u64 = 24 * 3600;
    match d.as_secs() {
        DAY if d.subsec_nanos() == 0 => "1 day".to_string(),
        s if s > DAY && s % DAY == 0 && d.subsec_nanos() == 0 => format!("{} days", s / DAY),
        _ => humantime::format_duration(d).to_string(),
    }
}

/// The local share's folder.
fn share_root(ctx: &Context) -> PathBuf {
    let root = match &ctx.share {
        Some(s) => s.root().to_path_buf(),
        None => ctx.settings.share.clone(),
    };
    fs::canonicalize(&root).unwrap_or(root)
}

/// Puts `entry` back under its name; returns what the row says.
fn bring_back(entry: &Entry, ctx: &Context, stamp: &str) -> Result<String, String> {
    check_name(&entry.name).map_err(|_| "it is not a name a share can hold".to_string())?;
    let dir = ctx.state_dir.join(trash::DIR);
    let from = entry.path(&dir);
    let root = share_root(ctx);
    fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    let state = fs::canonicalize(&ctx.state_dir).unwrap_or(ctx.state_dir.clone());
    let (folder, base) = folder_inside(&root, &entry.name, &mut Vec::new())
        .map_err(|_| "its folder is not one of the share's".to_string())?;
    if folder.starts_with(&state) {
        return Err("its folder is the state folder".into());
    }
    let to = folder.join(base);
    let from_shown = format!("from {}", shown_in_trash(&dir, &from));
    match fs::symlink_metadata(&to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            place_new(&from, &to).map_err(|e| e.to_string())?;
            trash::prune(&dir, &from);
            Ok(from_shown)
        }
        Ok(m) if m.is_file() => {
            let same = local_md5(&to).map_err(|e| e.to_string())?
                == local_md5(&from).map_err(|e| e.to_string())?;
            if same {
                return Ok(format!(
                    "{from_shown}: the file here is the same; nothing changed"
                ));
            }
            let mut trash = Trash::open(&ctx.state_dir, stamp, ctx.settings.trash, false);
            let old = trash.keep(&to, &entry.name).map_err(|why| {
                format!("the file here differs and cannot go to the trash: {why}")
            })?;
            let placed = place_over(&from, &to);
            if let Err(e) = placed {
                trash.give_back(&old);
                return Err(e.to_string());
            }
            trash::prune(&dir, &from);
            Ok(format!(
                "{from_shown}; the file that was here went to {}",
                trash.shown(&old)
            ))
        }
        Ok(_) => Err("something other than a file is in the way".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// `at` from `trash/` on.
fn shown_in_trash(dir: &Path, at: &Path) -> String {
    let parent = dir.parent().unwrap_or(dir);
    at.strip_prefix(parent).unwrap_or(at).display().to_string()
}

/// A hidden temporary name beside `to`.
fn temp_beside(to: &Path) -> PathBuf {
    let base = to
        .file_name()
        .map(|b| b.to_string_lossy())
        .unwrap_or_default();
    to.with_file_name(format!(".{base}.p2pshare-restore"))
}

/// Moves `from` to `to`, where nothing is: a hard link fails when a file
/// appeared there meanwhile, so nothing is replaced. Across file systems
/// it is copied beside `to` first, and the copy takes the name as every
/// arriving file does ([`place`]), never over a file that appeared.
fn place_new(from: &Path, to: &Path) -> io::Result<()> {
    let appeared = || io::Error::other("a file appeared under its name meanwhile; nothing changed");
    match fs::hard_link(from, to) {
        Ok(()) => fs::remove_file(from),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(appeared()),
        Err(_) => {
            let tmp = temp_beside(to);
            copy(from, &tmp)?;
            let placed = fs::File::open(&tmp)
                .and_then(md5_of_reader)
                .and_then(|md5| place(&tmp, to, &md5, Mode::New));
            match placed {
                Ok(Placed::Stored) => fs::remove_file(from),
                Ok(Placed::Same | Placed::Exists) => Err(appeared()),
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    Err(e)
                }
            }
        }
    }
}

/// Moves `from` over the file at `to` (kept in the trash already), in one
/// rename; across file systems through a copy beside `to`.
fn place_over(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            let tmp = temp_beside(to);
            copy(from, &tmp)?;
            fs::rename(&tmp, to).inspect_err(|_| {
                let _ = fs::remove_file(&tmp);
            })?;
            fs::remove_file(from)
        }
        r => r,
    }
}
