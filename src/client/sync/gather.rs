//! What a sync plans from: the peer's files (one `FileHash checkall` and
//! one `IndexGet longlist`, sent in one write) and this side's (the
//! share's index and md5 cache).

use std::collections::{BTreeSet, HashMap};

use super::plan::{Files, Version};
use crate::client::{show, split_row, Client, ClientError};
use crate::protocol::code;
use crate::share::{check_name, Share};
use crate::timefmt;

/// The peer's files with md5, size and time. Rows whose name could not be
/// stored here, or whose md5 is not one, are left out (and counted). The
/// peer's refusal is the message to show.
pub(super) fn remote(client: &mut Client) -> Result<Result<(Files, usize), String>, ClientError> {
    let (checkall, longlist) = ("FileHash checkall", "IndexGet longlist");
    client.send(&format!("{checkall}\n{longlist}"))?;
    let mut hashes: Vec<(String, String, String)> = Vec::new();
    let last = client.read_table(&mut |text| {
        if let [name, md5, ts] = split_row(text).as_slice() {
            hashes.push((name.clone(), md5.clone(), ts.clone()));
        }
    })?;
    client.record(checkall, last.code);
    let mut sizes: HashMap<String, u64> = HashMap::new();
    let listed = client.read_table(&mut |text| {
        let mut f = text.split('\t');
        if let (Some(name), Some(size)) = (f.next(), f.next()) {
            if let Ok(size) = size.parse() {
                sizes.insert(crate::client::unescape(name), size);
            }
        }
    })?;
    client.record(longlist, listed.code);
    if last.code != code::TABLE {
        return Ok(Err(format!(
            "{} {}",
            last.code,
            show::peer_text(&last.text)
        )));
    }
    let mut files = Files::new();
    let mut left_out = 0;
    for (name, md5, mtime) in hashes {
        let size = sizes.get(&name).copied().unwrap_or(0);
        let Ok(version) = Version::parse(&md5, &size.to_string(), &mtime) else {
            left_out += 1;
            continue;
        };
        if check_name(&name).is_err() {
            left_out += 1;
            continue;
        }
        files.insert(name, version);
    }
    Ok(Ok((files, left_out)))
}

/// This side's files, from a fresh scan of the share with every md5
/// hashed or cached; the names that could not be hashed (unreadable, or
/// changing while hashed) are busy.
pub(super) fn local(share: &Share) -> (Files, BTreeSet<String>) {
    share.rescan();
    share.hash_pending(&|| false);
    let snap = share.snapshot();
    let md5s = share.cached_md5s(snap.all().map(|(_, e)| &e.key));
    let mut files = Files::new();
    let mut busy = BTreeSet::new();
    for ((name, e), md5) in snap.all().zip(md5s) {
        match md5 {
            Some(md5) => {
                let v = Version {
                    md5,
                    size: e.size,
                    mtime: timefmt::unix_secs(timefmt::clamp(e.mtime)),
                };
                files.insert(name.clone(), v);
            }
            None => {
                busy.insert(name.clone());
            }
        }
    }
    (files, busy)
}
