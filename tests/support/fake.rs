//! A scripted fake peer for client tests: a listener on 127.0.0.1:0 whose
//! every session runs a script given by the test, to send what a real
//! server never would (lies, endless tables, stalls, escape sequences).
//! Std only; each session and the accept loop run on their own threads.
//!
//! Used next to `support/mod.rs` as `#[path = "support/fake.rs"] mod fake;`.

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The token every fake data channel uses.
pub const TOKEN: &str = "0123456789abcdef";

/// How long a fake session waits for the client's data connection.
pub const DATA_WAIT: Duration = Duration::from_secs(10);

/// A fake peer; stops accepting when dropped.
pub struct FakeServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    sessions: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
}

/// One control session of a fake peer, as its script sees it.
pub struct Session {
    /// Which session this is: 0 for the first the server accepted.
    pub n: usize,
    reader: BufReader<TcpStream>,
    pub out: TcpStream,
    data_listener: TcpListener,
    /// The data connection the client made, once it made one.
    pub data: Option<TcpStream>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeServer {
    /// Starts a fake peer running `script` for every session; the session
    /// ends when the script returns (its connection is closed then).
    pub fn start(script: impl Fn(&mut Session) -> io::Result<()> + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake server");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let sessions = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(script);
        {
            let (stop, sessions, requests) = (stop.clone(), sessions.clone(), requests.clone());
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let n = sessions.fetch_add(1, Ordering::SeqCst);
                    let (script, requests) = (script.clone(), requests.clone());
                    thread::spawn(move || {
                        if let Ok(mut s) = Session::new(conn, n, requests) {
                            let _ = script(&mut s);
                        }
                    });
                }
            });
        }
        FakeServer {
            addr,
            stop,
            sessions,
            requests,
        }
    }

    /// Every request line received so far, over all sessions.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// How many sessions were accepted so far.
    pub fn sessions(&self) -> usize {
        self.sessions.load(Ordering::SeqCst)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
    }
}

impl Session {
    fn new(conn: TcpStream, n: usize, requests: Arc<Mutex<Vec<String>>>) -> io::Result<Session> {
        conn.set_read_timeout(Some(Duration::from_secs(60)))?;
        let data_listener = TcpListener::bind("127.0.0.1:0")?;
        Ok(Session {
            n,
            reader: BufReader::new(conn.try_clone()?),
            out: conn,
            data_listener,
            data: None,
            requests,
        })
    }

    /// Writes `text` as it is.
    pub fn say(&mut self, text: &str) -> io::Result<()> {
        self.out.write_all(text.as_bytes())
    }

    /// A greeting as a real server sends it (ending with CR LF).
    pub fn greet(&mut self) -> io::Result<()> {
        self.say("220 fake peer ready\r\n")
    }

    /// The next request line (recorded, line end removed); None when the
    /// client closed the connection.
    pub fn request(&mut self) -> io::Result<Option<String>> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\n', '\r']).to_string();
        self.requests.lock().unwrap().push(line.clone());
        Ok(Some(line))
    }

    /// Reads requests until one starts with `prefix` (answering `NOOP`,
    /// `QUIT` and anything else with what a real server would say in
    /// short). None when the client left first.
    pub fn until(&mut self, prefix: &str) -> io::Result<Option<String>> {
        while let Some(line) = self.request()? {
            if line.starts_with(prefix) {
                return Ok(Some(line));
            }
            if line == "QUIT" {
                self.say("221 bye\n")?;
                return Ok(None);
            }
            if line == "NOOP" {
                self.say("200 ok\n")?;
            } else {
                self.say("500 the fake peer does not know that\n")?;
            }
        }
        Ok(None)
    }

    /// The text of a `150 DATA tcp` line for this session's data channel.
    pub fn data_line(&self) -> String {
        format!(
            "DATA tcp port={} token={TOKEN}",
            self.data_listener.local_addr().unwrap().port()
        )
    }

    /// The two-line 150 of a download of `name` (escaped as a real server
    /// does not need to be: the test gives the row's fields as sent).
    pub fn announce(&mut self, row_name: &str, content: &[u8]) -> io::Result<()> {
        let line = format!(
            "150-{row_name}\t{}\t2026-01-02T03:04:05Z\t{:x}\n150 {}\n",
            content.len(),
            md5::compute(content),
            self.data_line()
        );
        self.say(&line)
    }

    /// The data connection: the one held, else the next to connect with
    /// the token within [`DATA_WAIT`].
    pub fn data(&mut self) -> io::Result<&mut TcpStream> {
        self.data_within(DATA_WAIT)
    }

    /// The data connection as a real server takes it: the one held unless
    /// the client closed it, else the next to connect with the token
    /// within `wait` (an error of kind `TimedOut` when none came).
    pub fn data_within(&mut self, wait: Duration) -> io::Result<&mut TcpStream> {
        if self.data.as_ref().is_some_and(|d| !is_alive(d)) {
            self.data = None;
        }
        if self.data.is_none() {
            self.data_listener.set_nonblocking(true)?;
            let deadline = Instant::now() + wait;
            let mut conn = loop {
                match self.data_listener.accept() {
                    Ok((c, _)) => break c,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if Instant::now() >= deadline {
                            return Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                "no data connection",
                            ));
                        }
                        thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => return Err(e),
                }
            };
            conn.set_nonblocking(false)?;
            conn.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut token = String::new();
            BufReader::new(&mut conn).read_line(&mut token)?;
            if token.trim_end() != TOKEN {
                return Err(io::Error::other(format!("bad token {token:?}")));
            }
            self.data = Some(conn);
        }
        Ok(self.data.as_mut().unwrap())
    }

    /// Closes the data connection, as a server does after a failed
    /// transfer.
    pub fn drop_data(&mut self) {
        if let Some(d) = self.data.take() {
            let _ = d.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Keeps the session open without a word until the client leaves.
    pub fn silence(&mut self) -> io::Result<()> {
        let mut buf = Vec::new();
        let _ = io::Read::read_to_end(&mut self.reader, &mut buf);
        Ok(())
    }
}

impl Session {
    /// True when a data connection is waiting to be accepted (the client
    /// made one this session has not taken).
    pub fn data_connection_waiting(&self) -> bool {
        if self.data_listener.set_nonblocking(true).is_err() {
            return false;
        }
        self.data_listener.accept().is_ok()
    }
}

/// False when the client closed the connection (a peek reads end of file).
fn is_alive(c: &TcpStream) -> bool {
    if c.set_nonblocking(true).is_err() {
        return false;
    }
    let mut b = [0u8; 1];
    let alive = match c.peek(&mut b) {
        Ok(n) => n > 0,
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
    };
    c.set_nonblocking(false).is_ok() && alive
}
