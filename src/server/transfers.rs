//! Downloads and uploads of a session over its data channels. A download
//! takes one path for TCP and UDP up to the point where the bytes move
//! ([`Channel::send`]); an upload comes over TCP.

use std::io::{self, BufWriter};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::limits::PortClaim;
use super::Shared;
use crate::digest::Md5;
use crate::protocol::{FileOp, Reply, Transport, Waited};
use crate::share::{Incoming, OpenedFile, Placed, ShareError};
use crate::transfer::tcp::{DataChannel, ReceiveOutcome};
use crate::transfer::udp::UdpChannel;
use crate::transfer::{token, Channel, SendLimits, SendOutcome, Sending, Source};

/// The data channels read a shared file through this, at offsets. Over
/// TCP the bytes go through [`Source::copy_to`]'s large buffer: a plain
/// `io::copy` from the file here moved 8 KiB per system call.
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
}

/// Sends a preliminary reply (a 150) at once: written and flushed before
/// the data flows.
pub(super) type Announce<'r> = dyn FnMut(Reply<'_>) -> io::Result<()> + 'r;

/// How a transfer ended.
pub(super) struct Done {
    pub reply: Reply<'static>,
    /// True when the client took part (a data connection came, or a
    /// HELLO): the time it took is not idle time.
    pub active: bool,
}

/// Why a transfer ended before its bytes moved: its reply, or the control
/// connection failed.
enum Early {
    Reply(Reply<'static>),
    Io(io::Error),
}

impl From<Reply<'static>> for Early {
    fn from(r: Reply<'static>) -> Early {
        Early::Reply(r)
    }
}

impl From<io::Error> for Early {
    fn from(e: io::Error) -> Early {
        Early::Io(e)
    }
}

/// How a channel opens: on the local address, for the peer's, in a range
/// of ports or on any.
type Opener<'o, C> = &'o dyn Fn(IpAddr, IpAddr, Option<(u16, u16)>) -> io::Result<C>;

/// A data channel with the claim on its port. Fields drop in order: the
/// port is closed before it counts as free again.
struct Held<'a, C> {
    channel: C,
    _claim: Option<PortClaim<'a>>,
}

/// A session's data channels, each opened on first use and kept for the
/// session (or until `--data-idle` gives them back).
pub(super) struct Transfers<'a> {
    shared: &'a Shared,
    /// The control connection's local address (where the data channels
    /// listen) and the client's (the only one they take).
    local: IpAddr,
    peer: IpAddr,
    tcp: Option<Held<'a, DataChannel>>,
    udp: Option<Held<'a, UdpChannel>>,
    /// When a transfer last needed the channels (or they opened).
    used: Instant,
}

impl<'a> Transfers<'a> {
    pub fn new(shared: &'a Shared, local: IpAddr, peer: IpAddr) -> Transfers<'a> {
        Transfers {
            shared,
            local,
            peer,
            tcp: None,
            udp: None,
            used: Instant::now(),
        }
    }

    /// Closes the data channels (before an FTP passive listener opens: a
    /// session holds one or the other).
    pub fn close(&mut self) {
        self.tcp = None;
        self.udp = None;
    }

    /// Closes the data channels when no transfer has needed them for
    /// `data_idle` (when set), so that an idle session holds no data port.
    /// Returns when that is due for the channels still open.
    pub fn release_idle(&mut self) -> Option<Instant> {
        let open = self.tcp.is_some() || self.udp.is_some();
        let due = match self.shared.config.data_idle {
            Some(idle) if open => self.used.checked_add(idle),
            _ => None,
        };
        match due {
            Some(at) if Instant::now() >= at => {
                self.tcp = None;
                self.udp = None;
                None
            }
            due => due,
        }
    }

    /// `FileDownload`: the file's row and its data channel in a 150, the
    /// bytes from `offset` on, then 226 (or why not). The wait for the
    /// receiver ends at `idle_deadline` at the latest (see
    /// [`Transfers::wait`]).
    pub fn download(
        &mut self,
        transport: Transport,
        name: &str,
        offset: u64,
        idle_deadline: Option<Instant>,
        announce: &mut Announce<'_>,
    ) -> io::Result<Done> {
        let done = self.try_download(transport, name, offset, idle_deadline, announce);
        self.used = Instant::now();
        finish(done)
    }

    fn try_download(
        &mut self,
        transport: Transport,
        name: &str,
        offset: u64,
        idle_deadline: Option<Instant>,
        announce: &mut Announce<'_>,
    ) -> Result<Done, Early> {
        let (f, md5) = to_send(self.shared, name, offset)?;
        let data = self.channel(transport)?.data_line();
        announce(Reply::download_announce(
            name,
            f.size(),
            f.mtime,
            md5,
            &data,
        ))?;
        let wait = self.wait(idle_deadline);
        let limits = self.limits(wait);
        let outcome = self.channel(transport)?.send(&f, offset, &limits);
        let sending = Sending {
            name,
            size: f.size(),
            md5,
            data: &data,
            waited: self.waited(wait),
        };
        Ok(Done {
            reply: outcome.reply(&sending),
            active: !matches!(outcome, SendOutcome::NoReceiver),
        })
    }

    /// `FileUpload`: receives `size` bytes into a hidden temporary file and
    /// stores it under `name` only when the md5 matches and no other file
    /// is in the way. Waits for the data connection as a download does.
    pub fn upload(
        &mut self,
        name: &str,
        size: u64,
        want: Md5,
        idle_deadline: Option<Instant>,
        announce: &mut Announce<'_>,
    ) -> io::Result<Done> {
        let done = self.try_upload(name, size, want, idle_deadline, announce);
        self.used = Instant::now();
        finish(done)
    }

    fn try_upload(
        &mut self,
        name: &str,
        size: u64,
        want: Md5,
        idle_deadline: Option<Instant>,
        announce: &mut Announce<'_>,
    ) -> Result<Done, Early> {
        let shared = self.shared;
        to_receive(shared, name, want)?;
        let data = self.tcp()?.data_line();
        let incoming = begin_upload(shared, name)?;
        announce(Reply::data(&data))?;
        let wait = self.wait(idle_deadline);
        let stall = shared.config.data_timeout;
        let channel = self.tcp()?;
        let outcome = match incoming.file() {
            // Nothing to receive: no data connection is needed.
            Ok(_) if size == 0 => Some(ReceiveOutcome::Received(0, Md5::of([]))),
            Ok(f) => {
                let mut out = BufWriter::with_capacity(256 * 1024, f);
                channel.receive(wait, stall, size, &mut out)
            }
            Err(e) => {
                channel.drop_connection();
                Some(ReceiveOutcome::WriteFailed(e))
            }
        };
        let Some(outcome) = outcome else {
            let reply = Reply::no_receiver(Transport::Tcp, data.port, self.waited(wait));
            return Err(reply.into());
        };
        Ok(Done {
            reply: stored(incoming, &outcome, name, size, want),
            active: true,
        })
    }

    /// The session's channel for `transport`, opened on first use (when
    /// the address may hold one more data port).
    fn channel(&mut self, transport: Transport) -> Result<&mut dyn Channel, Reply<'static>> {
        Ok(match transport {
            Transport::Tcp => self.tcp()?,
            Transport::Udp => {
                let held = match self.udp.take() {
                    Some(held) => held,
                    None => self.open(Transport::Udp, &UdpChannel::open)?,
                };
                &mut self.udp.insert(held).channel
            }
        })
    }

    /// The session's TCP channel, opened on first use.
    fn tcp(&mut self) -> Result<&mut DataChannel, Reply<'static>> {
        let held = match self.tcp.take() {
            Some(held) => held,
            None => {
                let deadline = self.shared.config.token_deadline;
                let open = |local, peer, ports| DataChannel::open(local, peer, ports, deadline);
                self.open(Transport::Tcp, &open)?
            }
        };
        Ok(&mut self.tcp.insert(held).channel)
    }

    /// Claims a data port for the peer's address, then opens a channel.
    fn open<C>(
        &mut self,
        transport: Transport,
        open: Opener<'_, C>,
    ) -> Result<Held<'a, C>, Reply<'static>> {
        let shared = self.shared;
        let claim = shared.claim_port(self.peer, transport)?;
        let channel = open(self.local, self.peer, shared.config.data_ports)
            .map_err(|e| Reply::no_data_port(transport, &e))?;
        self.used = Instant::now();
        Ok(Held {
            channel,
            _claim: claim,
        })
    }

    /// How long a transfer waits for its receiver: `data_wait`, but no
    /// longer than what is left until the idle deadline, counted from the
    /// last bytes the client sent. Waiting for a connection that never
    /// comes is idle time, so pipelined requests cannot stretch a session
    /// past its idle timeout.
    fn wait(&self, idle_deadline: Option<Instant>) -> Duration {
        let left = idle_deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(Instant::now())
        });
        self.shared.config.data_wait.min(left)
    }

    fn limits(&self, wait: Duration) -> SendLimits {
        SendLimits {
            wait,
            silence: self.shared.config.udp_silence,
            stall: self.shared.config.data_timeout,
        }
    }

    /// How a 425 names a wait of `wait`: the whole `data_wait`, or cut
    /// short by the idle timeout.
    fn waited(&self, wait: Duration) -> Waited {
        let full = self.shared.config.data_wait;
        if wait < full {
            Waited::CutByIdle
        } else {
            Waited::Full(full)
        }
    }
}

/// The file `name` opened to be sent from `offset` on, with its md5; or
/// why not: no such file (550), an offset past its end (501), no md5
/// (451).
pub(super) fn to_send(
    shared: &Shared,
    name: &str,
    offset: u64,
) -> Result<(OpenedFile, Md5), Reply<'static>> {
    let f = shared
        .share
        .open_file(name)
        .map_err(|e| e.reply(name, FileOp::Open))?;
    if offset > f.size() {
        return Err(Reply::offset_past_end(name, offset, f.size()));
    }
    let md5 = shared
        .share
        .md5_of(&f)
        .map_err(|e| Reply::cannot(FileOp::Hash, name, &e))?;
    Ok((f, md5))
}

/// Ok when an upload of `name` with the md5 `want` is to be received;
/// else its reply: uploads disabled (550), the same file already there
/// (226), another one there (553), a name not allowed (553).
pub(super) fn to_receive(shared: &Shared, name: &str, want: Md5) -> Result<(), Reply<'static>> {
    if !shared.config.allow_upload {
        return Err(Reply::uploads_disabled());
    }
    let share = &shared.share;
    match share.open_file(name) {
        Ok(f) => {
            let have = share
                .md5_of(&f)
                .map_err(|e| Reply::cannot(FileOp::Hash, name, &e))?;
            let placed = if have == want {
                Placed::Same
            } else {
                Placed::Exists
            };
            Err(placed.reply(name))
        }
        Err(ShareError::NotShared) => Ok(()),
        Err(e) => Err(e.reply(name, FileOp::Check)),
    }
}

/// The hidden temporary file an upload of `name` arrives in.
pub(super) fn begin_upload(shared: &Shared, name: &str) -> Result<Incoming, Reply<'static>> {
    token::new()
        .map_err(ShareError::Io)
        .and_then(|tag| shared.share.begin_upload(name, &tag))
        .map_err(|e| e.reply(name, FileOp::Store))
}

/// The final reply of an upload of `name` that arrived as `outcome` into
/// `incoming`: stored under its name when every byte came with the md5
/// `want`, else nothing stored.
pub(super) fn stored(
    incoming: Incoming,
    outcome: &ReceiveOutcome,
    name: &str,
    size: u64,
    want: Md5,
) -> Reply<'static> {
    match outcome.refusal(name, size, want) {
        Some(refused) => refused,
        None => match incoming.place(&want) {
            Ok(placed) => placed.reply(name),
            Err(e) => Reply::cannot(FileOp::Store, name, &e),
        },
    }
}

/// A transfer's end: an early reply is one without activity.
fn finish(done: Result<Done, Early>) -> io::Result<Done> {
    match done {
        Ok(done) => Ok(done),
        Err(Early::Reply(reply)) => Ok(Done {
            reply,
            active: false,
        }),
        Err(Early::Io(e)) => Err(e),
    }
}
