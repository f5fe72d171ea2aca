//! The client's own output: stdout and stderr written without a panic
//! (`println!` and `eprintln!` panic when a write fails), and every write
//! that failed remembered, so that the command whose output it was fails
//! (exit status 1) and says so on stderr when stderr can take it.
//!
//! A failure is remembered twice: for the thread that wrote (so that the
//! console's command and peer mode's poller each see their own), and for
//! the process (for its exit status).

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once any write to stdout or stderr failed in this process.
static FAILED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The first write on this thread that failed since
    /// [`take_failure`], said as a message.
    static FAILURE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Which of the two streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

fn remember(stream: Stream, e: &io::Error) {
    if e.kind() == io::ErrorKind::Interrupted {
        return;
    }
    FAILED.store(true, Ordering::Relaxed);
    FAILURE.with(|f| {
        f.borrow_mut()
            .get_or_insert_with(|| format!("cannot write to {}: {e}", stream.name()));
    });
}

/// What failed on this thread since the last call (`cannot write to
/// stdout: No space left on device (os error 28)`), and forgets it.
pub fn take_failure() -> Option<String> {
    FAILURE.with(|f| f.borrow_mut().take())
}

/// True once any write to stdout or stderr failed in this process.
pub fn any_failed() -> bool {
    FAILED.load(Ordering::Relaxed)
}

/// A stream whose failed writes are remembered (and still returned).
pub struct Checked<W> {
    inner: W,
    stream: Stream,
}

impl<W: Write> Checked<W> {
    fn checked<T>(&self, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r {
            remember(self.stream, e);
        }
        r
    }
}

impl<W: Write> Write for Checked<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.inner.write(buf);
        self.checked(r)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let r = self.inner.write_all(buf);
        self.checked(r)
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = self.inner.flush();
        self.checked(r)
    }
}

/// Stdout, locked.
pub fn stdout() -> Checked<io::StdoutLock<'static>> {
    Checked {
        inner: io::stdout().lock(),
        stream: Stream::Stdout,
    }
}

/// Stderr, locked.
pub fn stderr() -> Checked<io::StderrLock<'static>> {
    Checked {
        inner: io::stderr().lock(),
        stream: Stream::Stderr,
    }
}

/// Writes `text` to a stream and flushes it; a failure is remembered.
pub fn write(stream: Stream, text: &str) {
    let _ = match stream {
        Stream::Stdout => {
            let mut o = stdout();
            o.write_all(text.as_bytes()).and_then(|()| o.flush())
        }
        Stream::Stderr => stderr().write_all(text.as_bytes()),
    };
}

/// A formatted line to a stream, written at once.
pub fn line(stream: Stream, args: fmt::Arguments<'_>) {
    let mut text = args.to_string();
    text.push('\n');
    write(stream, &text);
}

/// `println!` without the panic: a line on stdout.
macro_rules! sayln {
    ($($arg:tt)*) => {
        $crate::client::out::line($crate::client::out::Stream::Stdout, format_args!($($arg)*))
    };
}

/// `eprintln!` without the panic: a line on stderr.
macro_rules! tell {
    ($($arg:tt)*) => {
        $crate::client::out::line($crate::client::out::Stream::Stderr, format_args!($($arg)*))
    };
}

/// `eprint!` without the panic.
macro_rules! tell_raw {
    ($($arg:tt)*) => {
        $crate::client::out::write(
            $crate::client::out::Stream::Stderr,
            &format!($($arg)*),
        )
    };
}

pub(crate) use {sayln, tell, tell_raw};

/// Reports what failed on this thread since the last call on stderr
/// (when stderr takes it); true when something did.
pub fn report_failure() -> bool {
    let Some(message) = take_failure() else {
        return false;
    };
    tell!("p2pshare: {message}");
    // A stderr that failed too has nothing more to say.
    take_failure();
    true
}

/// Output held back until the reply it shows is checked (a reply with a
/// MAC is shown only once its final line's MAC held): in an unnamed
/// temporary file, as a table may have millions of rows, or in memory
/// where no such file can be made.
pub enum Held {
    File(io::BufWriter<std::fs::File>),
    Memory(Vec<u8>),
}

impl Held {
    pub fn new() -> Held {
        match unnamed_file() {
            Ok(f) => Held::File(io::BufWriter::new(f)),
            Err(_) => Held::Memory(Vec::new()),
        }
    }

    /// Writes what was held to `to`.
    pub fn release(self, to: &mut dyn Write) -> io::Result<()> {
        use std::io::Seek;
        match self {
            Held::File(w) => {
                let mut f = w.into_inner().map_err(|e| e.into_error())?;
                f.rewind()?;
                io::copy(&mut f, to).map(|_| ())
            }
            Held::Memory(m) => to.write_all(&m),
        }
    }
}

impl Default for Held {
    fn default() -> Held {
        Held::new()
    }
}

impl Write for Held {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Held::File(w) => w.write(buf),
            Held::Memory(m) => m.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Held::File(w) => w.flush(),
            Held::Memory(_) => Ok(()),
        }
    }
}

/// A temporary file only this process can reach: made (readable by its
/// owner only) and removed at once, kept open.
fn unnamed_file() -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut id = [0u8; 8];
    crate::sys::random_bytes(&mut id)?;
    let path = std::env::temp_dir().join(format!(
        ".p2pshare-held-{}-{}",
        std::process::id(),
        crate::digest::hex(&id)
    ));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(f)
}
