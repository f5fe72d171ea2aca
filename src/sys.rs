//! What p2pshare knows of Linux beyond std: open flags, error numbers and
//! /proc paths, each defined once and right for the architecture built
//! for. (Without libc, these numbers are written out here; they are the
//! kernel's ABI and do not change.)
//!
//! The open flags and error numbers are those of the kernel's generic
//! headers, which x86, RISC-V, LoongArch and s390 use; ARM, AArch64 and
//! PowerPC give `O_DIRECTORY` and `O_NOFOLLOW` other values. Elsewhere
//! (another architecture or system) the flags are 0 and `O_TMPFILE` is
//! None, so opening works without them, and the error numbers are -1,
//! which no error has.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::OnceLock;

pub use arch::*;

/// Opens without blocking (a FIFO opened for reading would wait for a
/// writer).
pub const O_NONBLOCK: i32 = if KNOWN { 0o4000 } else { 0 };

/// Opens only the name, not the file: no device driver, FIFO or socket
/// is touched, and the descriptor can be looked at (fstat, its
/// /proc/self/fd link) and opened for real through that link. 0 where
/// unknown (an ordinary open).
pub const O_PATH: i32 = if KNOWN { 0o10000000 } else { 0 };

/// Opens a terminal without making it the controlling one.
pub const O_NOCTTY: i32 = if KNOWN { 0o400 } else { 0 };

/// An unnamed file in the folder opened (`__O_TMPFILE | O_DIRECTORY`):
/// gone when closed. None where unknown.
pub const O_TMPFILE: Option<i32> = if KNOWN {
    Some(0o20000000 | O_DIRECTORY)
} else {
    None
};

/// The OS's random source.
pub const RANDOM_SOURCE: &str = "/dev/urandom";

/// [`RANDOM_SOURCE`], open for the whole process once opened.
static RANDOM: OnceLock<File> = OnceLock::new();

/// Opens the OS's random source for the rest of the process (once; later
/// calls only check it is open) and reads from it once, so that a source
/// that is missing or gives nothing is an error now, at start, and not
/// when a token is needed, perhaps at the open-file limit.
pub fn open_random() -> io::Result<()> {
    let why = |e: io::Error| io::Error::new(e.kind(), format!("cannot read {RANDOM_SOURCE}: {e}"));
    if RANDOM.get().is_none() {
        let f = File::open(RANDOM_SOURCE).map_err(why)?;
        let _ = RANDOM.set(f);
    }
    random_bytes(&mut [0u8; 8]).map_err(why)
}

/// Fills `buf` from the OS's random source, opening it first if no one
/// has ([`open_random`]). There is no other way: an error when the
/// source cannot be read.
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    use std::io::Read;
    if RANDOM.get().is_none() {
        let _ = RANDOM.set(File::open(RANDOM_SOURCE)?);
    }
    let source = RANDOM
        .get()
        .ok_or_else(|| io::Error::other("no random source"))?;
    (&*source).read_exact(buf)
}

/// The process's open descriptors, one link per descriptor to what it is.
pub const PROC_SELF_FD: &str = "/proc/self/fd";

/// The process's resource limits, one line per limit.
pub const PROC_SELF_LIMITS: &str = "/proc/self/limits";

/// The path `/proc/self/fd/N` of an open file: a link to what the
/// descriptor really is.
pub fn fd_link(file: &File) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("{PROC_SELF_FD}/{}", file.as_raw_fd()))
}

#[cfg(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "riscv64",
        target_arch = "riscv32",
        target_arch = "loongarch64",
        target_arch = "s390x"
    )
))]
mod arch {
    pub(super) const KNOWN: bool = true;
    /// Fails unless the path is a folder.
    pub const O_DIRECTORY: i32 = 0o200000;
    /// Fails on a symbolic link instead of following it.
    pub const O_NOFOLLOW: i32 = 0o400000;
    pub use super::errno_generic::*;
}

#[cfg(all(
    target_os = "linux",
    any(
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "powerpc",
        target_arch = "powerpc64"
    )
))]
mod arch {
    pub(super) const KNOWN: bool = true;
    /// Fails unless the path is a folder.
    pub const O_DIRECTORY: i32 = 0o40000;
    /// Fails on a symbolic link instead of following it.
    pub const O_NOFOLLOW: i32 = 0o100000;
    pub use super::errno_generic::*;
}

#[cfg(not(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "riscv64",
        target_arch = "riscv32",
        target_arch = "loongarch64",
        target_arch = "s390x",
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "powerpc",
        target_arch = "powerpc64"
    )
)))]
mod arch {
    pub(super) const KNOWN: bool = false;
    pub const O_DIRECTORY: i32 = 0;
    pub const O_NOFOLLOW: i32 = 0;
    pub const EPERM: i32 = -1;
    pub const ENOMEM: i32 = -1;
    pub const EACCES: i32 = -1;
    pub const ENFILE: i32 = -1;
    pub const EMFILE: i32 = -1;
    pub const EROFS: i32 = -1;
    pub const ENAMETOOLONG: i32 = -1;
    pub const ELOOP: i32 = -1;
    pub const ENOBUFS: i32 = -1;
}

/// Error numbers of the kernel's generic headers.
#[allow(dead_code)]
mod errno_generic {
    /// Operation not permitted.
    pub const EPERM: i32 = 1;
    /// Out of memory.
    pub const ENOMEM: i32 = 12;
    /// Permission denied.
    pub const EACCES: i32 = 13;
    /// The system's table of open files is full.
    pub const ENFILE: i32 = 23;
    /// The process has its most open descriptors.
    pub const EMFILE: i32 = 24;
    /// Read-only file system.
    pub const EROFS: i32 = 30;
    /// A path or one of its components is too long.
    pub const ENAMETOOLONG: i32 = 36;
    /// Too many symbolic links, or `O_NOFOLLOW` met one.
    pub const ELOOP: i32 = 40;
    /// No buffer space for a socket.
    pub const ENOBUFS: i32 = 105;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::os::unix::fs::OpenOptionsExt;

    #[test]
    fn the_flags_do_what_they_say_here() {
        let dir = std::env::temp_dir().join(format!("p2pshare-sys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, b"x").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let open =
            |p: &std::path::Path, flags| OpenOptions::new().read(true).custom_flags(flags).open(p);
        if KNOWN {
            let e = open(&link, O_NOFOLLOW).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(ELOOP), "{e}");
            let e = open(&file, O_DIRECTORY).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::NotADirectory, "{e}");
            assert!(open(&dir, O_DIRECTORY).is_ok());
            assert!(open(&file, O_NOFOLLOW | O_NONBLOCK | O_NOCTTY).is_ok());
            let long = dir.join("n".repeat(300));
            let e = open(&long, 0).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(ENAMETOOLONG), "{e}");
        }
        let f = std::fs::File::open(&file).unwrap();
        assert_eq!(
            std::fs::read_link(fd_link(&f)).unwrap(),
            std::fs::canonicalize(&file).unwrap()
        );
        assert!(std::fs::read_to_string(PROC_SELF_LIMITS)
            .unwrap()
            .contains("Max open files"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
