//! What a transfer comes to, in the words every part of the client uses:
//! the file as the peer described it, how its download or upload ended,
//! and what the console is told meanwhile.

/// A file as the peer described it in the 150 line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub name: String,
    pub size: u64,
    pub timestamp: String,
    pub md5: String,
}

impl FileRow {
    pub fn fields(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.size.to_string(),
            self.timestamp.clone(),
            self.md5.clone(),
        ]
    }
}

/// How one download ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Downloaded(FileRow),
    /// Sent to the peer, which stored it.
    Uploaded(FileRow),
    /// A local file with the same content was already there.
    UpToDate(FileRow),
    Failed {
        name: String,
        message: String,
        cause: Cause,
    },
}

/// Why a file failed, where the caller acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The peer, the network, the name, a file in the way, ...
    Other,
    /// The local disk (or the user's quota on it) is full: the download
    /// was not retried, and its partial file is removed.
    NoSpace,
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        !matches!(self, Outcome::Failed { .. })
    }

    /// A failure of `name` for another cause than a full disk.
    pub fn failed(name: &str, message: String) -> Outcome {
        Outcome::Failed {
            name: name.to_string(),
            message,
            cause: Cause::Other,
        }
    }

    /// Whether it failed because the local disk is full.
    pub fn is_no_space(&self) -> bool {
        matches!(
            self,
            Outcome::Failed {
                cause: Cause::NoSpace,
                ..
            }
        )
    }
}

/// What the console is told while downloads run.
pub trait Ui {
    /// A transfer of `name` starts; `done` bytes of `total` are already here.
    fn start(&mut self, _name: &str, _total: u64, _done: u64) {}
    /// `done` bytes of the current transfer have arrived.
    fn progress(&mut self, _done: u64) {}
    /// The current transfer ended (either way).
    fn end(&mut self) {}
    /// One file is finished.
    fn outcome(&mut self, outcome: &Outcome);
    /// Something worth telling on the way (a retry, a wait).
    fn note(&mut self, _text: &str) {}
    /// A transfer of `name` continues a partial file of `offset` bytes.
    fn resume(&mut self, _name: &str, _offset: u64) {}
}
