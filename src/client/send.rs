//! Uploads: `FileUpload` of files from the local shared folder, each
//! announced with its size and md5 so the peer can verify what it stores.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use super::console::peer_text;
use super::fetch::{data_conn, FileRow, Outcome, Ui};
use super::{Client, ClientError};
use crate::protocol::{self, code, quote_word, shown};
use crate::share::index::Index;
use crate::share::{check_name, hash, scan, Ignore};
use crate::timefmt;

/// The local files under `root` whose names match `pattern` (as
/// `IndexGet regex` matches them).
pub fn local_matches(root: &Path, pattern: &str) -> Result<Vec<String>, String> {
    let matcher = crate::share::index::Matcher::new(pattern).map_err(|e| e.0)?;
    let index = scan::walk(root, &Index::default(), &Ignore::default());
    Ok(index
        .all()
        .map(|(n, _)| n.clone())
        .filter(|n| matcher.matches(n))
        .collect())
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
    let fail = |message: String| Outcome::Failed {
        name: name.to_string(),
        message,
    };
    if check_name(name).is_err() {
        return Ok(fail(format!(
            "{}: not a name that can be shared",
            shown(name)
        )));
    }
    let path = root.join(name);
    let opened = File::open(&path).and_then(|f| {
        let meta = f.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        Ok((f, meta))
    });
    let (mut file, meta) = match opened {
        Ok(x) => x,
        Err(e) => {
            return Ok(fail(format!(
                "cannot read {}: {e}",
                shown(&path.display().to_string())
            )))
        }
    };
    let md5 = match hash::md5_of_reader(&mut file) {
        Ok(d) => d.to_string(),
        Err(e) => {
            return Ok(fail(format!(
                "cannot read {}: {e}",
                shown(&path.display().to_string())
            )))
        }
    };
    let row = FileRow {
        name: name.to_string(),
        size: meta.len(),
        timestamp: timefmt::format(meta.modified().unwrap_or(std::time::UNIX_EPOCH)),
        md5: md5.clone(),
    };
    let line = format!("FileUpload {} {} {md5}", quote_word(name), meta.len());
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
    let Some(data) = protocol::parse_data_line(first.text()) else {
        return Err(ClientError::Protocol(format!(
            "bad 150 reply to the upload of {}: {}",
            shown(name),
            peer_text(first.text())
        )));
    };
    ui.start(name, meta.len(), 0);
    let sent = data_conn(client, &data).and_then(|mut conn| {
        send_bytes(&mut conn.stream, &mut file, meta.len(), ui)?;
        // Kept for the next transfer only when this one went well.
        client.data = Some(conn);
        Ok(())
    });
    ui.end();
    let last = client.read_reply()?;
    if last.code() != code::COMPLETE {
        client.data = None;
    }
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

/// Sends the file from its start over the data connection.
fn send_bytes(
    stream: &mut std::net::TcpStream,
    file: &mut File,
    len: u64,
    ui: &mut dyn Ui,
) -> io::Result<()> {
    use std::io::Seek;
    file.seek(io::SeekFrom::Start(0))?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut sent = 0u64;
    let mut reader = file.take(len);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        stream.write_all(&buf[..n])?;
        sent += n as u64;
        ui.progress(sent);
    }
    if sent != len {
        return Err(io::Error::other("the file shrank while it was sent"));
    }
    Ok(())
}
