//! Downloads and uploads of a session over its data channels.

use std::io::{self, Seek, SeekFrom};
use std::net::TcpStream;

use crate::share::OpenedFile;
use crate::transfer::{CopyError, Source};

/// The data channels read a shared file through this: at offsets, and
/// over TCP by the kernel's own copy.
impl Source for OpenedFile {
    fn len(&self) -> u64 {
        self.size()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.file, buf, offset)
    }

    fn changed(&self) -> io::Result<bool> {
        OpenedFile::changed(self)
    }

    /// `io::copy` from the file to a socket, which Linux does with
    /// `sendfile`: the bytes never pass through this process.
    fn copy_to(&self, offset: u64, len: u64, out: &mut TcpStream) -> Result<u64, CopyError> {
        let mut f = self.file.try_clone().map_err(CopyError::Read)?;
        f.seek(SeekFrom::Start(offset)).map_err(CopyError::Read)?;
        io::copy(&mut io::Read::take(f, len), out).map_err(CopyError::Write)
    }
}
