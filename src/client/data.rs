//! The client's data channels. One TCP data connection is held between
//! transfers and reused only when the transfer before it ended with a
//! `226` and a look (that does not wait) finds it still open. A transfer
//! reads or writes exactly the bytes its `150` announced: the reader
//! watches the control connection meanwhile, so a peer that gives up, or
//! whose final reply comes with bytes missing, ends the wait instead of
//! the timeout. A UDP transfer goes behind the same calls.
//!
//! Every transfer ends with [`Transfer::finish`], which reads the final
//! reply (unless it came already) and holds the data connection for the
//! next transfer only after a `226`, as the peer keeps its end only then.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::answer::Answer;
use super::control::{Client, DataConn};
use super::error::{ClientError, Wait};
use super::inline;
use super::transport::{peek_now, Peek};
use crate::protocol::{self, code, DataLine, Transport};
use crate::transfer::udp;

/// Receive and send buffer size.
pub(crate) const CHUNK: usize = 256 * 1024;

/// How long one read of a data connection waits before the control
/// connection is looked at.
const SLICE: Duration = Duration::from_millis(100);

/// How long bytes may still arrive after the final reply of their
/// transfer (they were sent before it, but travel on another connection).
const SHORT_GRACE: Duration = Duration::from_secs(3);

/// How long a transfer of zero bytes without a data connection waits for
/// the final reply before it makes a data connection after all (for a
/// peer that waits for one even then).
const ZERO_GRACE: Duration = Duration::from_millis(200);

/// The bytes a `150` announced: how far the local copy is (`offset`) and
/// how many bytes are to come after it (`want`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub offset: u64,
    pub want: u64,
}

/// A transfer whose bytes have come or gone (or stopped), before its
/// final reply is judged: see [`Transfer::finish`].
pub(crate) struct Transfer {
    /// Every byte, or why not.
    bytes: io::Result<()>,
    /// The final reply, when it came while the bytes were awaited.
    last: Option<Answer>,
    /// The TCP data connection it used, to hold after a `226`.
    conn: Option<DataConn>,
}

impl Transfer {
    fn broken(e: io::Error) -> Transfer {
        Transfer {
            bytes: Err(e),
            last: None,
            conn: None,
        }
    }

    /// The final reply (the one already read, else the next) and how the
    /// bytes went. The data connection is held for the next transfer
    /// only when every byte went and the reply is a `226`; any other end
    /// closes it.
    pub fn finish(self, client: &mut Client) -> Result<(io::Result<()>, Answer), ClientError> {
        let last = match self.last {
            Some(last) => last,
            None => client.read_reply()?,
        };
        if self.bytes.is_ok() && last.code() == code::COMPLETE {
            if let Some(conn) = self.conn {
                client.data = Some(conn);
            }
        }
        Ok((self.bytes, last))
    }
}

/// Where the bytes of a transfer go, as its `150 DATA` line says: a data
/// channel (TCP or UDP), or inline on the control stream (see
/// [`inline`]), with how many there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Channel {
    Net(DataLine),
    Inline(u64),
}

impl Channel {
    /// Reads the text of a `150 DATA` line.
    pub(crate) fn parse(text: &str) -> Option<Channel> {
        match protocol::parse_inline_data_line(text) {
            Some(n) => Some(Channel::Inline(n)),
            None => protocol::parse_data_line(text).map(Channel::Net),
        }
    }

    /// How a message names it: `TCP`, `UDP` or `inline`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Channel::Net(l) if l.transport == Transport::Tcp => "TCP",
            Channel::Net(_) => "UDP",
            Channel::Inline(_) => protocol::lines::INLINE,
        }
    }
}

/// A transfer that went inline: nothing to hold afterwards.
fn inline_transfer(bytes: io::Result<()>) -> Transfer {
    Transfer {
        bytes,
        last: None,
        conn: None,
    }
}

/// Receives the bytes `span` announces on `channel` into `out`, telling
/// `progress` how many of them are in. A channel that stays silent for
/// the timeout ends the command (an error naming it); any other failure
/// is in the [`Transfer`], for a retry.
pub(crate) fn receive(
    client: &mut Client,
    channel: &Channel,
    span: Span,
    udp_payload: Option<usize>,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<Transfer, ClientError> {
    let line = match channel {
        Channel::Net(line) => line,
        Channel::Inline(n) => {
            return inline::receive(client, *n, out, progress).map(inline_transfer)
        }
    };
    match line.transport {
        Transport::Tcp if span.want == 0 => Ok(receive_nothing(client, line)),
        Transport::Tcp => {
            let conn = match open(client, line) {
                Ok(c) => c,
                Err(e) => return Ok(Transfer::broken(e)),
            };
            ExactReader::new(client, line, conn, span.want).read_into(out, progress)
        }
        Transport::Udp => match receive_udp(client, line, span, udp_payload, out, progress) {
            // Nothing came for the timeout (a link down for a while). The
            // sender gives up within its silence bound (10 s) of the last
            // thing it heard, and says so on the control connection: when
            // that comes within one more timeout, the download is retried
            // from what came, as a broken TCP one is. A peer that says
            // nothing even then has gone: that ends it.
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                if client.reply_within(client.timeout()) {
                    Ok(Transfer::broken(io::Error::new(
                        io::ErrorKind::TimedOut,
                        stalled(client, line).to_string(),
                    )))
                } else {
                    Err(stalled(client, line))
                }
            }
            bytes => Ok(Transfer {
                bytes,
                last: None,
                conn: None,
            }),
        },
    }
}

/// Takes the bytes `span` announces and throws them away: for a transfer
/// that cannot be stored, so that the channels stay in step.
pub(crate) fn discard(
    client: &mut Client,
    line: &Channel,
    span: Span,
    udp_payload: Option<usize>,
) -> Result<Transfer, ClientError> {
    receive(
        client,
        line,
        span,
        udp_payload,
        &mut io::sink(),
        &mut |_| {},
    )
}

/// Sends the first `len` bytes of `file` (from its start, wherever it
/// was read to) on `channel`, telling `progress` how many went. Only an
/// inline transfer can break the control stream (the error).
pub(crate) fn send(
    client: &mut Client,
    channel: &Channel,
    file: &mut File,
    len: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<Transfer, ClientError> {
    let line = match channel {
        Channel::Net(line) => line,
        Channel::Inline(_) => {
            return inline::send(client, file, len, progress).map(inline_transfer)
        }
    };
    Ok(send_on(client, line, file, len, progress))
}

fn send_on(
    client: &mut Client,
    line: &DataLine,
    file: &mut File,
    len: u64,
    progress: &mut dyn FnMut(u64),
) -> Transfer {
    let mut conn = match open(client, line) {
        Ok(c) => c,
        Err(e) => return Transfer::broken(e),
    };
    let bytes = send_exactly(&mut conn.stream, file, len, progress);
    // A send that broke closes its connection at once, so that the peer
    // stops waiting for the rest and gives its final reply.
    let conn = bytes.is_ok().then_some(conn);
    Transfer {
        bytes,
        last: None,
        conn,
    }
}

fn send_exactly(
    stream: &mut TcpStream,
    file: &mut File,
    len: u64,
    progress: &mut dyn FnMut(u64),
) -> io::Result<()> {
    file.seek(io::SeekFrom::Start(0))?;
    let mut buf = vec![0u8; CHUNK];
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
        progress(sent);
    }
    if sent != len {
        return Err(io::Error::other("the file shrank while it was sent"));
    }
    Ok(())
}

/// A new data connection to the channel `line` names, its token sent.
/// Reads on it wait [`SLICE`] at a time, so that a receive can look at the
/// control connection in between.
fn connect(client: &Client, line: &DataLine) -> io::Result<DataConn> {
    let addr = SocketAddr::new(client.addr().ip()?, line.port);
    let mut stream = TcpStream::connect_timeout(&addr, client.timeout())?;
    let _ = stream.set_nodelay(true);
    stream.set_read_timeout(Some(SLICE))?;
    stream.set_write_timeout(Some(client.timeout()))?;
    stream.write_all(format!("{}\n", line.token).as_bytes())?;
    Ok(DataConn {
        port: line.port,
        token: line.token.clone(),
        stream,
    })
}

/// Takes the data connection held for the channel `line` names, unless
/// the peer has closed it (a look that does not wait): a connection
/// closed at the other end is never written to nor read from again. One
/// held for another channel is dropped.
fn take_held(client: &mut Client, line: &DataLine) -> Option<DataConn> {
    client.data.take().filter(|d| {
        d.port == line.port && d.token == line.token && peek_now(&d.stream) != Peek::Closed
    })
}

/// The data connection for a transfer: the one held (see [`take_held`]),
/// else a new one.
fn open(client: &mut Client, line: &DataLine) -> io::Result<DataConn> {
    match take_held(client, line) {
        Some(c) => Ok(c),
        None => connect(client, line),
    }
}

/// A transfer of zero bytes: nothing to read. A peer that needs no data
/// connection for it answers at once; one that waits for a connection
/// gets one.
fn receive_nothing(client: &mut Client, line: &DataLine) -> Transfer {
    let held = take_held(client, line);
    let conn = if held.is_some() || client.reply_within(ZERO_GRACE) {
        held
    } else {
        match connect(client, line) {
            Ok(c) => Some(c),
            Err(e) => return Transfer::broken(e),
        }
    };
    Transfer {
        bytes: Ok(()),
        last: None,
        conn,
    }
}

/// The error of a data channel on which nothing arrived for the timeout.
fn stalled(client: &Client, line: &DataLine) -> ClientError {
    ClientError::Timeout(client.late(Wait::Channel(line.transport, line.port)))
}

/// Reads exactly the announced bytes from a TCP data connection, looking
/// at the control connection whenever a read waited [`SLICE`] in vain: a
/// final reply that arrives while bytes are missing ends the wait for
/// them once nothing more came for [`SHORT_GRACE`] (or the timeout, when
/// shorter), and a data connection silent for the timeout ends the
/// command.
struct ExactReader<'a> {
    client: &'a mut Client,
    line: &'a DataLine,
    conn: DataConn,
    want: u64,
    left: u64,
    last_byte: Instant,
    /// The final reply, once it came, and when.
    last: Option<(Answer, Instant)>,
}

impl<'a> ExactReader<'a> {
    fn new(client: &'a mut Client, line: &'a DataLine, conn: DataConn, want: u64) -> Self {
        ExactReader {
            client,
            line,
            conn,
            want,
            left: want,
            last_byte: Instant::now(),
            last: None,
        }
    }

    fn read_into(
        mut self,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Transfer, ClientError> {
        let mut buf = vec![0u8; CHUNK.min(usize::try_from(self.want).unwrap_or(CHUNK))];
        while self.left > 0 {
            let n = buf
                .len()
                .min(usize::try_from(self.left).unwrap_or(buf.len()));
            match self.conn.stream.read(&mut buf[..n]) {
                Ok(0) => return Ok(self.ended(io::ErrorKind::UnexpectedEof.into())),
                Ok(got) => {
                    if let Err(e) = out.write_all(&buf[..got]) {
                        return Ok(self.ended(e));
                    }
                    self.left -= got as u64;
                    self.last_byte = Instant::now();
                    progress(self.want - self.left);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if let Some(e) = self.look_at_control()? {
                        return Ok(self.ended(e));
                    }
                }
                Err(e) => return Ok(self.ended(e)),
            }
        }
        Ok(Transfer {
            bytes: Ok(()),
            last: self.last.map(|(r, _)| r),
            conn: Some(self.conn),
        })
    }

    /// After a read that waited in vain: reads the final reply if it is
    /// there, and says why the bytes will not all come, if they will not.
    fn look_at_control(&mut self) -> Result<Option<io::Error>, ClientError> {
        let got = self.want - self.left;
        if self.last.is_none() && self.client.reply_pending() {
            let r = self.client.read_reply()?;
            let complete = r.code() == code::COMPLETE;
            self.last = Some((r, Instant::now()));
            if !complete {
                // The peer gave up on the transfer (and closes the data
                // connection).
                return Ok(Some(io::Error::other(format!(
                    "the peer ended it after {got} of {} bytes",
                    self.want
                ))));
            }
        }
        let timeout = self.client.timeout();
        let grace = SHORT_GRACE.min(timeout);
        match &self.last {
            // Bytes sent before the final reply may still be on their
            // way; none came for the grace time: they never will.
            Some((_, at)) if at.elapsed() >= grace && self.last_byte.elapsed() >= grace => {
                Ok(Some(io::Error::other(format!(
                    "only {got} of {} bytes came before the peer's final reply",
                    self.want
                ))))
            }
            None if self.last_byte.elapsed() >= timeout => Err(stalled(self.client, self.line)),
            _ => Ok(None),
        }
    }

    /// The transfer, broken by `e`; the connection goes with it.
    fn ended(self, e: io::Error) -> Transfer {
        Transfer {
            bytes: Err(e),
            last: self.last.map(|(r, _)| r),
            conn: None,
        }
    }
}

fn receive_udp(
    client: &Client,
    line: &DataLine,
    span: Span,
    payload: Option<usize>,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> io::Result<()> {
    let addr = SocketAddr::new(client.addr().ip()?, line.port);
    let defaults = udp::ReceiveOptions::for_path(addr);
    let opts = udp::ReceiveOptions {
        payload: payload.unwrap_or(defaults.payload),
        idle: client.timeout(),
        ..defaults
    };
    udp::receive_with(
        addr,
        &line.token,
        span.offset,
        span.want,
        out,
        progress,
        &opts,
    )?;
    Ok(())
}
