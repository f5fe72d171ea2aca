//! Uploads as they arrive on the server (a native `FileUpload`, an FTP
//! `STOR`): a hidden temporary file made beside the final name, inside
//! the share whatever a link swapped meanwhile, and placed under its name
//! by [`place`] once verified.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::PathBuf;

use super::error::ShareError;
use super::hash::Md5;
use super::paths::{check_name, folder_inside, real_path_of, visible_below};
use super::place::{place, Mode, Placed};
use super::Share;
use crate::protocol::Reply;

impl Share {
    /// Starts receiving an upload of `name`: checks the name, makes the
    /// folders it needs (never through a link that leaves the share), and
    /// creates a hidden temporary file beside where it will go. `tag` keeps
    /// concurrent uploads of one name apart.
    pub fn begin_upload(&self, name: &str, tag: &str) -> Result<Incoming, ShareError> {
        self.begin(name, tag, false)
    }

    /// [`Share::begin_upload`] for a name that is a shared file already
    /// (FTP's STOR, which announces no md5): the bytes are received beside
    /// it, and [`Incoming::place`] keeps the file there, stores nothing
    /// and says whether the content was the same.
    pub fn begin_upload_beside(&self, name: &str, tag: &str) -> Result<Incoming, ShareError> {
        self.begin(name, tag, true)
    }

    fn begin(&self, name: &str, tag: &str, beside: bool) -> Result<Incoming, ShareError> {
        check_name(name)?;
        if self.is_ignored(name) {
            return Err(ShareError::NotShared);
        }
        // Folders made for this upload are removed again (when still
        // empty) if it fails, from here on.
        let mut incoming = Incoming {
            path: PathBuf::new(),
            temp: PathBuf::new(),
            file: None,
            created: Vec::new(),
        };
        let (dir, base) = folder_inside(&self.root, name, &mut incoming.created)?;
        // Anything already under the name (a folder, a link leading out of
        // the share, a file that is not shared) is not replaced: a shared
        // file there was answered before the upload began.
        let there = fs::symlink_metadata(dir.join(base));
        if there.is_ok_and(|m| !(beside && m.is_file())) {
            return Err(ShareError::NotShared);
        }
        incoming.path = dir.join(base);
        let temp = dir.join(format!(".{base}.p2pshare-up-{tag}"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        incoming.temp = temp;
        incoming.file = Some(file);
        // What was created must lie in the share, whatever a link swapped
        // meanwhile pointed at. From here on the files are named by where
        // the temporary file really is: a refused one is removed there
        // (not through the swapped link), and a kept one is placed beside
        // it.
        let meta = incoming.file()?.metadata()?;
        let real =
            real_path_of(incoming.file()?, &incoming.temp, &meta).ok_or(ShareError::NotShared)?;
        // Shared there too: a link to an ignored folder (or a state folder
        // inside the share) leads nowhere an upload may go.
        let inside = real
            .parent()
            .and_then(|p| visible_below(&self.root, p))
            .is_some_and(|rel| {
                rel.to_str()
                    .is_some_and(|r| r.is_empty() || !self.is_ignored(&format!("{r}/{base}")))
            });
        incoming.path = real.with_file_name(base);
        incoming.temp = real;
        if inside {
            Ok(incoming)
        } else {
            Err(ShareError::NotShared)
        }
    }
}

/// An upload being received into a hidden temporary file. Dropped without
/// [`Incoming::place`], it removes the temporary file: nothing is stored.
pub struct Incoming {
    pub(super) path: PathBuf,
    pub(super) temp: PathBuf,
    pub(super) file: Option<File>,
    /// Folders this upload created, outermost first.
    pub(super) created: Vec<PathBuf>,
}

impl Placed {
    /// The final reply of an upload of `name` that ended up here.
    pub fn reply(self, name: &str) -> Reply<'static> {
        match self {
            Placed::Stored => Reply::stored(name),
            Placed::Same => Reply::stored_same(name),
            Placed::Exists => Reply::exists_differently(name),
        }
    }
}

impl Incoming {
    pub fn file(&self) -> io::Result<&File> {
        self.file
            .as_ref()
            .ok_or_else(|| io::Error::other("upload already placed"))
    }

    /// Puts the verified file under its name, never over another file
    /// (see [`place`]).
    pub fn place(mut self, md5: &Md5) -> io::Result<Placed> {
        if let Some(f) = self.file.take() {
            f.sync_all()?;
        }
        let placed = place(&self.temp, &self.path, md5, Mode::New)?;
        if placed == Placed::Stored {
            self.created.clear();
        }
        Ok(placed)
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.temp);
        }
        // Only folders still empty go: one another upload meanwhile put a
        // file into stays.
        for dir in self.created.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}
