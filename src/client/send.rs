//! Uploads: `FileUpload` of files from the local shared folder, each
//! announced with its size and md5 so the peer can verify what it stores.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use super::control::Client;
use super::data::{self, Channel};
use super::error::{Breach, ClientError};
use super::outcome::{FileRow, Outcome, Ui};
use super::show::peer_text;
use crate::protocol::{code, quote_word, shown};
use crate::share::index::Matcher;
use crate::share::{check_name, hash, scan, Ignore};
use crate::timefmt;

/// The local files under `root` whose names match `pattern` (as
/// `IndexGet regex` matches them), found by name alone, and none from the
/// folder `state` (where this side keeps its history) when it lies inside
/// `root`.
pub fn local_matches(root: &Path, pattern: &str, state: &Path) -> Result<Vec<String>, String> {
    let matcher = Matcher::new(pattern).map_err(|e| e.0)?;
    let mut ignore = Ignore::default();
    ignore.folders.extend(folder_below(root, state));
    let mut names = scan::walk_names(root, &ignore);
    names.retain(|n| matcher.matches(n));
    Ok(names)
}

/// The path of the folder `dir` below `root`, when it is there.
fn folder_below(root: &Path, dir: &Path) -> Option<String> {
    let (root, dir) = (fs::canonicalize(root).ok()?, fs::canonicalize(dir).ok()?);
    let rel = dir.strip_prefix(&root).ok()?.to_str()?;
    (!rel.is_empty()).then(|| rel.to_string())
}

/// Uploads `names` (relative to `root`) one after the other. Returns how
/// many failed; a broken control connection is an error.
pub fn upload(
    client: &mut Client,
    root: &Path,
    names: &[String],
    ui: &mut dyn Ui,
) -> Result<usize, ClientError> {
    let mut failed = 0;
    for name in names {
        let outcome = upload_one(client, root, name, ui)?;
        if !outcome.is_ok() {
            failed += 1;
        }
        ui.outcome(&outcome);
    }
    Ok(failed)
}

fn upload_one(
    client: &mut Client,
    root: &Path,
    name: &str,
    ui: &mut dyn Ui,
) -> Result<Outcome, ClientError> {
    let fail = |message: String| Outcome::failed(name, message);
    if check_name(name).is_err() {
        return Ok(fail(format!(
            "{}: not a name that can be shared",
            shown(name)
        )));
    }
    let (mut file, row) = match open_local(root, name) {
        Ok(x) => x,
        Err(e) => return Ok(fail(e)),
    };
    let line = format!("FileUpload {} {} {}", quote_word(name), row.size, row.md5);
    client.send(&line)?;
    let first = client.read_reply()?;
    match first.code() {
        code::COMPLETE => {
            client.record(&line, first.code());
            return Ok(Outcome::UpToDate(row));
        }
        code::DATA => {}
        c => {
            client.record(&line, c);
            return Ok(fail(format!("{c} {}", peer_text(first.text()))));
        }
    }
    let Some(channel) = Channel::parse(first.text()) else {
        return Err(ClientError::Protocol(Breach::Announcement {
            what: "upload",
            name: name.to_string(),
            lines: vec![first.text().to_string()],
        }));
    };
    if let Channel::Inline(n) = channel {
        if n != row.size {
            return Err(ClientError::Protocol(Breach::InlineBytes {
                what: "upload",
                name: name.to_string(),
                announced: n,
                due: row.size,
            }));
        }
    }
    ui.start(name, row.size, 0);
    let sent = data::send(client, &channel, &mut file, row.size, &mut |n| {
        ui.progress(n)
    });
    ui.end();
    let (sent, last) = sent?.finish(client)?;
    client.record(&line, last.code());
    Ok(match (sent, last.code()) {
        (Ok(()), code::COMPLETE) => Outcome::Uploaded(row),
        (Err(e), c) => fail(format!(
            "upload of {} broken ({e}); {c} {}",
            shown(name),
            peer_text(last.text())
        )),
        (Ok(()), c) => fail(format!("{c} {}", peer_text(last.text()))),
    })
}

/// Opens the regular file `name` below `root` and describes it as an
/// upload announces it (size, modification time, md5); else why not.
fn open_local(root: &Path, name: &str) -> Result<(File, FileRow), String> {
    let path = root.join(name);
    let cannot = |e: io::Error| format!("cannot read {}: {e}", shown(&path.display().to_string()));
    let (mut file, meta) = File::open(&path)
        .and_then(|f| {
            let meta = f.metadata()?;
            if !meta.is_file() {
                return Err(io::Error::other("not a regular file"));
            }
            Ok((f, meta))
        })
        .map_err(cannot)?;
    let md5 = hash::md5_of_reader(&mut file).map_err(cannot)?;
    let row = FileRow {
        name: name.to_string(),
        size: meta.len(),
        timestamp: timefmt::format(meta.modified().unwrap_or(std::time::UNIX_EPOCH)),
        md5: md5.to_string(),
    };
    Ok((file, row))
}
