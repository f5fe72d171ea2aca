//! The shared folder: the rules for names in requests, opening files so a
//! request can never leave the folder, the index with its md5 cache, and
//! how every file that arrives takes its name.
//!
//! This file only declares the module's files and re-exports what callers
//! use; each file holds one part:
//!
//! - `front.rs`: the [`Share`] front end: a folder opened with its state,
//!   its index and md5 cache, rescans, and [`Share::open_file`], which
//!   opens a shared file and nothing else ([`OpenedFile`]);
//! - `paths.rs`: the name rules ([`check_name`]) and path safety: the
//!   folder a name goes into, made inside the root and never through a
//!   link that leaves it ([`folder_inside`]), and the check of what was
//!   made there ([`real_path_inside`]); server uploads and client
//!   downloads both use them;
//! - `error.rs`: why a folder cannot be shared ([`OpenError`]) and why a
//!   request was refused ([`ShareError`], with its reply);
//! - `place.rs`: placement, the one function ([`place`]) by which every
//!   verified file takes its final name, on the server (uploads) and on
//!   the client (downloads, and a Sync restore across file systems)
//!   alike;
//! - `upload.rs`: an upload as it arrives ([`Incoming`]), placed by
//!   [`place`] once verified;
//! - `partial.rs`: broken FTP uploads kept for a resume ([`ResumeFrom`]),
//!   and folders made by MKD;
//! - `had.rs`: the versions of each file the share had before;
//! - `opening.rs`: opening a name alone (`O_PATH`), then the regular file
//!   it is, never following a link or blocking on a FIFO;
//! - `index.rs`, `scan.rs`, `hash.rs` ([`FileKey`] and the md5 cache),
//!   `ignore.rs` (`.p2pignore`), `state.rs` (the state folder,
//!   [`STATE_DIR`]) and `mime.rs` (content sniffing).
//!
//! [`Share`] is defined in front.rs; upload.rs, partial.rs and had.rs add
//! methods to it in `impl Share` blocks of their own.

mod error;
mod front;
mod had;
pub mod hash;
mod ignore;
pub mod index;
pub mod mime;
mod opening;
mod partial;
mod paths;
mod place;
pub mod scan;
pub mod state;
mod upload;

pub use error::{OpenError, ShareError};
pub use front::{check_folder, Hashing, OpenedFile, Share};
pub use hash::FileKey;
pub use ignore::{Ignore, IGNORE_FILE};
pub use partial::{ResumeFrom, MAX_PARTIALS, PARTIAL_TTL};
pub use paths::{check_name, folder_inside, real_path_inside};
pub use place::{place, place_by_placeholder, Mode, Placed};
pub use state::STATE_DIR;
pub use upload::Incoming;
