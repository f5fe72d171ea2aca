//! The UDP data channel's sender and receiver state machines driven
//! through a simulated link with a virtual clock, in the manner of
//! quinn-proto's test `Pair`: no sockets, no sleeping, and the same run
//! every time. Each direction of the link has a latency, a bottleneck rate
//! with a queue, and seeded loss, duplication and reordering; the clock
//! jumps from one event (a datagram's arrival, a deadline of either side)
//! to the next.
//!
//! Every test checks the bytes that reached the receiver's sink (all of
//! them, once each, in order: the sink equals the file), the outcomes of
//! both sides, and figures with stated bounds: retransmissions and the
//! virtual time the transfer took.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use p2pshare::transfer::frame::{self, Body, Frame};
use p2pshare::transfer::udp::sender::Finished;
use p2pshare::transfer::udp::{
    ReceiveOptions, Received, Receiver, SendLimits, SendStats, Sender, DEFAULT_PAYLOAD,
    DEFAULT_SILENCE,
};
use p2pshare::transfer::{SendOutcome, Source};

const TOKEN: [u8; 8] = *b"\x5f\x2a\x9c\x0e\x81\xd3\xb7\xaa";
const TRANSFER: u32 = 7;
const MIB: usize = 1 << 20;

/// Virtual time bounds of the lossy runs. The bottleneck alone needs
/// 0.36 s for 4 MiB and 0.18 s for 2 MiB; every loss episode shrinks the
/// window by half the running loss share (which starts at 1), and it grows
/// back by one packet per round trip, so on a 20 ms path 1 % loss costs
/// about three times that and 10 % (a loss in nearly every round) twenty.
const LOSS_1_MS: u64 = 1_600;
const LOSS_10_MS: u64 = 5_500;

/// Seeded xorshift, so every run makes the same choices.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn file_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut v: Vec<u8> = (0..len.div_ceil(8))
        .flat_map(|_| rng.next().to_le_bytes())
        .collect();
    v.truncate(len);
    v
}

/// A file in memory, which can be made to shrink.
struct Mem {
    bytes: Vec<u8>,
    shrunk_to: Cell<Option<usize>>,
}

impl Mem {
    fn new(bytes: Vec<u8>) -> Mem {
        Mem {
            bytes,
            shrunk_to: Cell::new(None),
        }
    }

    fn now_len(&self) -> usize {
        self.shrunk_to.get().unwrap_or(self.bytes.len())
    }
}

impl Source for Mem {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let from = (offset as usize).min(self.now_len());
        let n = buf.len().min(self.now_len() - from);
        buf[..n].copy_from_slice(&self.bytes[from..from + n]);
        Ok(n)
    }

    fn changed(&self) -> io::Result<bool> {
        Ok(self.shrunk_to.get().is_some())
    }
}

/// What one direction of the link did.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    sent: u64,
    dropped: u64,
    dropped_data: u64,
    duplicated: u64,
    reordered: u64,
}

/// A datagram on its way: arrival time, then the order it was sent in.
type InFlight = Reverse<(Instant, u64, Vec<u8>)>;

/// Extra delay for particular datagrams (None: as usual).
type DelayRule = Box<dyn FnMut(&[u8]) -> Option<Duration>>;

/// One direction of the link.
struct Path {
    latency: Duration,
    /// Bytes per second through the bottleneck; None: no bottleneck.
    rate: Option<f64>,
    busy_until: Instant,
    loss: f64,
    dup: f64,
    reorder: f64,
    /// How much later a reordered datagram arrives.
    reorder_delay: Duration,
    rng: Rng,
    delay_rule: DelayRule,
    /// Everything sent is lost: the peer has vanished.
    cut: bool,
    queue: BinaryHeap<InFlight>,
    seq: u64,
    counts: Counts,
    /// The last few datagrams sent, delivered or not.
    last_sent: VecDeque<Vec<u8>>,
}

impl Path {
    fn new(latency: Duration, rate: Option<f64>, seed: u64, now: Instant) -> Path {
        Path {
            latency,
            rate,
            busy_until: now,
            loss: 0.0,
            dup: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            rng: Rng::new(seed),
            delay_rule: Box::new(|_| None),
            cut: false,
            queue: BinaryHeap::new(),
            seq: 0,
            counts: Counts::default(),
            last_sent: VecDeque::new(),
        }
    }

    fn send(&mut self, now: Instant, bytes: &[u8]) {
        self.counts.sent += 1;
        if self.last_sent.len() == 8 {
            self.last_sent.pop_front();
        }
        self.last_sent.push_back(bytes.to_vec());
        if self.cut || self.rng.unit() < self.loss {
            self.counts.dropped += 1;
            if matches!(Frame::parse(bytes).map(|f| f.body), Ok(Body::Data { .. })) {
                self.counts.dropped_data += 1;
            }
            return;
        }
        let mut leaves = now;
        if let Some(rate) = self.rate {
            leaves = self.busy_until.max(now) + Duration::from_secs_f64(bytes.len() as f64 / rate);
            self.busy_until = leaves;
        }
        let mut at = leaves + self.latency;
        if let Some(extra) = (self.delay_rule)(bytes) {
            at += extra;
        } else if self.rng.unit() < self.reorder {
            self.counts.reordered += 1;
            at += self.reorder_delay;
        }
        self.push(at, bytes);
        if self.rng.unit() < self.dup {
            self.counts.duplicated += 1;
            self.push(at + Duration::from_micros(1), bytes);
        }
    }

    fn push(&mut self, at: Instant, bytes: &[u8]) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, bytes.to_vec())));
    }

    fn next_arrival(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((at, _, _))| *at)
    }

    fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.next_arrival()? > now {
            return None;
        }
        self.queue.pop().map(|Reverse((_, _, b))| b)
    }
}

/// A datagram a third party slips in before every real one on a path.
struct Junk {
    from: SocketAddr,
    bytes: Vec<u8>,
}

/// A sender and a receiver joined by a simulated link, and a virtual clock.
struct Pair<'a> {
    epoch: Instant,
    now: Instant,
    sender: Sender<'a, Mem>,
    receiver: Receiver,
    /// Stops taking part, as a receiver that has vanished.
    receiver_gone: bool,
    sink: Vec<u8>,
    to_receiver: Path,
    to_sender: Path,
    junk_to_sender: Vec<Junk>,
    junk_to_receiver: Vec<Vec<u8>>,
    sent: Option<SendOutcome>,
    sent_at: Option<Duration>,
    received: Option<Received>,
    received_at: Option<Duration>,
    /// When a datagram from the receiver last reached the sender.
    last_to_sender: Option<Instant>,
    len: u64,
    steps: u64,
}

const RECEIVER: &str = "10.0.0.2:50000";

/// Link settings for both directions.
#[derive(Clone, Copy)]
struct Link {
    one_way: Duration,
    rate: Option<f64>,
    loss: f64,
    dup: f64,
    reorder: f64,
    reorder_delay: Duration,
    seed: u64,
}

impl Link {
    /// 10 ms each way, 100 Mbit/s at the bottleneck with a queue that
    /// never overflows, no loss.
    fn clean() -> Link {
        Link {
            one_way: Duration::from_millis(10),
            rate: Some(100e6 / 8.0),
            loss: 0.0,
            dup: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            seed: 1,
        }
    }
}

impl<'a> Pair<'a> {
    fn new(epoch: Instant, file: &'a Mem, link: Link, limits: &SendLimits) -> Pair<'a> {
        let opts = ReceiveOptions {
            payload: DEFAULT_PAYLOAD,
            ..ReceiveOptions::default()
        };
        let len = file.len();
        let sender = Sender::new(epoch, file, 0, TOKEN, limits, &Finished::default());
        let receiver = Receiver::new(epoch, TOKEN, TRANSFER, 0, len, &opts);
        let path = |seed: u64| {
            let mut p = Path::new(link.one_way, link.rate, seed, epoch);
            p.loss = link.loss;
            p.dup = link.dup;
            p.reorder = link.reorder;
            p.reorder_delay = link.reorder_delay;
            p
        };
        Pair {
            epoch,
            now: epoch,
            sender,
            receiver,
            receiver_gone: false,
            sink: Vec::new(),
            to_receiver: path(link.seed * 2),
            to_sender: path(link.seed * 2 + 1),
            junk_to_sender: Vec::new(),
            junk_to_receiver: Vec::new(),
            sent: None,
            sent_at: None,
            received: None,
            received_at: None,
            last_to_sender: None,
            len,
            steps: 0,
        }
    }

    fn elapsed(&self) -> Duration {
        self.now - self.epoch
    }

    /// Steps while `go_on` says so, within bounds that catch a run that
    /// never ends.
    fn run_while(&mut self, mut go_on: impl FnMut(&Pair) -> bool) {
        while go_on(self) {
            self.step();
            assert!(
                self.elapsed() < Duration::from_secs(600) && self.steps < 5_000_000,
                "no end after {:?} and {} steps: sent {:?}, received {:?}, {} of {} bytes",
                self.elapsed(),
                self.steps,
                self.sent,
                self.received,
                self.sink.len(),
                self.len,
            );
        }
    }

    /// Runs until both sides are done (or the receiver is gone).
    fn run(&mut self) {
        self.run_while(|p| p.sent.is_none() || (p.received.is_none() && !p.receiver_gone));
    }

    /// Everything due at `now` on both sides, then the clock moves to the
    /// next event.
    fn step(&mut self) {
        self.steps += 1;
        if !self.receiver_gone && self.received.is_none() {
            self.step_receiver();
        } else {
            while self.to_receiver.pop_due(self.now).is_some() {}
        }
        if self.sent.is_none() {
            self.step_sender();
        } else {
            while self.to_sender.pop_due(self.now).is_some() {}
        }
        self.advance();
    }

    /// As the channel drives it: timers, then every datagram that has
    /// arrived, then "nothing more queued", then what it has to send.
    fn step_receiver(&mut self) {
        let now = self.now;
        self.receiver.handle_timeout(now);
        while let Some(d) = self.to_receiver.pop_due(now) {
            for j in &self.junk_to_receiver {
                let r = self.receiver.handle_datagram(now, j, &mut self.sink);
                r.expect("a Vec takes every write");
            }
            // The sink keeps what it is given: all of it counts as written.
            self.receiver.set_written(self.sink.len() as u64);
            let r = self.receiver.handle_datagram(now, &d, &mut self.sink);
            r.expect("a Vec takes every write");
        }
        self.receiver.handle_queue_empty(now);
        while let Some(d) = self.receiver.poll_transmit() {
            self.to_sender.send(now, d);
        }
        if let Some(o) = self.receiver.poll_outcome() {
            self.received = Some(o);
            self.received_at = Some(now - self.epoch);
        }
    }

    /// As the channel drives it: every datagram that has arrived, then
    /// timers, then what it may send (each DATA confirmed as sent).
    fn step_sender(&mut self) {
        let now = self.now;
        let receiver: SocketAddr = RECEIVER.parse().unwrap();
        while let Some(d) = self.to_sender.pop_due(now) {
            for j in &self.junk_to_sender {
                self.sender.handle_datagram(now, j.from, &j.bytes);
            }
            self.last_to_sender = Some(now);
            self.sender.handle_datagram(now, receiver, &d);
        }
        self.sender.handle_timeout(now);
        while let Some(t) = self.sender.poll_transmit(now) {
            assert_eq!(t.to, receiver);
            let data = t.data;
            self.to_receiver.send(now, t.bytes);
            if data {
                self.sender.on_sent(now);
            }
        }
        if let Some(o) = self.sender.poll_outcome() {
            self.sent = Some(o);
            self.sent_at = Some(now - self.epoch);
        }
    }

    /// Moves the clock to the next arrival or deadline.
    fn advance(&mut self) {
        let sender = self.sent.is_none().then(|| self.sender.poll_timeout());
        let receiver_on = !self.receiver_gone && self.received.is_none();
        let receiver = receiver_on.then(|| self.receiver.poll_timeout());
        let next = [
            self.to_receiver.next_arrival(),
            self.to_sender.next_arrival(),
            sender.flatten(),
            receiver.flatten(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(self.now + Duration::from_secs(1));
        // A deadline already past (the pacer's, rounded) moves on anyway.
        self.now = next.max(self.now + Duration::from_nanos(1));
    }
}

fn limits() -> SendLimits {
    SendLimits {
        wait: Duration::from_secs(30),
        silence: DEFAULT_SILENCE,
        stall: Duration::from_secs(300),
    }
}

/// Runs one whole transfer of `file` over `link`.
fn transfer<'a>(file: &'a Mem, link: Link) -> Pair<'a> {
    let began = Instant::now();
    let mut p = Pair::new(began, file, link, &limits());
    p.run();
    eprintln!(
        "{} bytes in {:?} virtual, {:?} real, {} steps: {:?}; to receiver {:?}; to sender {:?}",
        file.bytes.len(),
        p.sent_at,
        began.elapsed(),
        p.steps,
        p.sender.stats(),
        p.to_receiver.counts,
        p.to_sender.counts,
    );
    p
}

/// Every byte reached the sink once, in order, and both sides say so.
fn assert_exact(p: &Pair, file: &Mem) {
    assert_eq!(p.sink.len(), file.bytes.len());
    assert!(p.sink == file.bytes, "the bytes differ");
    assert_eq!(md5::compute(&p.sink).0, md5::compute(&file.bytes).0);
    match &p.sent {
        Some(SendOutcome::Sent(n)) => assert_eq!(*n, file.bytes.len() as u64),
        other => panic!("sender ended with {other:?}"),
    }
    assert_eq!(p.received, Some(Received::Complete));
}

fn chunks(len: usize) -> u64 {
    len.div_ceil(DEFAULT_PAYLOAD) as u64
}

/// The time the bottleneck needs for the file's datagrams, plus one round
/// trip.
fn ideal(len: usize, link: &Link) -> Duration {
    let bytes = len as u64 + chunks(len) * frame::DATA_HEADER_LEN as u64;
    let rate = link.rate.unwrap_or(f64::INFINITY);
    Duration::from_secs_f64(bytes as f64 / rate) + link.one_way * 2
}

#[test]
fn without_loss_every_chunk_is_sent_once() {
    let file = Mem::new(file_bytes(2 * MIB, 1));
    let link = Link::clean();
    let p = transfer(&file, link);
    assert_exact(&p, &file);
    let s = p.sender.stats();
    assert_eq!(s.packets, chunks(2 * MIB));
    assert_eq!((s.retransmitted, s.lost, s.probes, s.undone), (0, 0, 0, 0));
    // The bottleneck needs 0.19 s; slow start costs a few round trips.
    let took = p.sent_at.unwrap();
    assert!(took > ideal(2 * MIB, &link), "{took:?}");
    assert!(took < Duration::from_millis(300), "{took:?}");
}

#[test]
fn one_percent_loss_costs_only_the_lost_chunks() {
    let file = Mem::new(file_bytes(4 * MIB, 2));
    let link = Link {
        loss: 0.01,
        seed: 2,
        ..Link::clean()
    };
    let p = transfer(&file, link);
    assert_exact(&p, &file);
    let s = p.sender.stats();
    let dropped = p.to_receiver.counts.dropped_data;
    assert!(dropped >= 20, "{dropped}");
    // Each dropped DATA is sent again, once; hardly anything else is.
    assert!(s.retransmitted >= dropped, "{s:?}, {dropped} dropped");
    assert!(s.retransmitted <= dropped + 3, "{s:?}, {dropped} dropped");
    let took = p.sent_at.unwrap();
    assert!(took < Duration::from_millis(LOSS_1_MS), "{took:?}");
}

#[test]
fn ten_percent_loss_still_delivers_every_byte() {
    let file = Mem::new(file_bytes(2 * MIB, 3));
    let link = Link {
        loss: 0.10,
        seed: 3,
        ..Link::clean()
    };
    let p = transfer(&file, link);
    assert_exact(&p, &file);
    let s = p.sender.stats();
    let dropped = p.to_receiver.counts.dropped_data;
    assert!(dropped >= 120, "{dropped}");
    assert!(s.retransmitted >= dropped, "{s:?}, {dropped} dropped");
    assert!(s.retransmitted <= dropped + 5, "{s:?}, {dropped} dropped");
    // A loss in every round keeps the window small on a 20 ms path.
    let took = p.sent_at.unwrap();
    assert!(took < Duration::from_millis(LOSS_10_MS), "{took:?}");
}

#[test]
fn reordered_datagrams_are_put_back_in_order() {
    let file = Mem::new(file_bytes(2 * MIB, 4));
    let link = Link {
        reorder: 0.05,
        reorder_delay: Duration::from_millis(3),
        seed: 4,
        ..Link::clean()
    };
    let p = transfer(&file, link);
    assert_exact(&p, &file);
    let s = p.sender.stats();
    let reordered = p.to_receiver.counts.reordered;
    assert!(reordered >= 60, "{reordered}");
    // Nothing was lost: a chunk goes again only when its packet was
    // overtaken by three others, and then only once.
    assert!(s.retransmitted <= s.lost, "{s:?}");
    assert!(s.lost <= reordered, "{s:?}, {reordered} reordered");
    // The acknowledgements of the late packets undo the window
    // decreases, so reordering costs little time (2.2 s without undo).
    assert!(s.undone >= 5, "{s:?}");
    let took = p.sent_at.unwrap();
    assert!(took < Duration::from_millis(400), "{took:?}");
}

#[test]
fn duplicated_datagrams_are_taken_once() {
    let file = Mem::new(file_bytes(2 * MIB, 5));
    let link = Link {
        dup: 0.10,
        seed: 5,
        ..Link::clean()
    };
    let p = transfer(&file, link);
    assert_exact(&p, &file);
    let s = p.sender.stats();
    assert!(p.to_receiver.counts.duplicated >= 100);
    assert!(p.to_sender.counts.duplicated > 10);
    assert_eq!((s.retransmitted, s.lost, s.undone), (0, 0, 0), "{s:?}");
    assert_eq!(s.packets, chunks(2 * MIB));
    assert!(p.sent_at.unwrap() < Duration::from_millis(300));
}

/// The packet number of a DATA frame.
fn data_pn(bytes: &[u8]) -> Option<u64> {
    match Frame::parse(bytes).ok()?.body {
        Body::Data { pn, .. } => Some(pn),
        _ => None,
    }
}

#[test]
fn a_loss_that_proves_spurious_is_undone() {
    let file = Mem::new(file_bytes(2 * MIB, 6));
    let link = Link::clean();
    let clean = transfer(&file, link);
    let mut p = Pair::new(Instant::now(), &file, link, &limits());
    // Packet 300 arrives 5 ms late: after three later packets were
    // acknowledged, so it is declared lost; then its acknowledgement
    // shows the loss was not one, and the window decrease is undone.
    p.to_receiver.delay_rule =
        Box::new(|b| (data_pn(b) == Some(300)).then_some(Duration::from_millis(5)));
    p.run();
    eprintln!(
        "delayed packet 300: {:?} in {:?}",
        p.sender.stats(),
        p.sent_at
    );
    assert_exact(&p, &file);
    let s = p.sender.stats();
    assert_eq!((s.lost, s.undone), (1, 1), "{s:?}");
    assert!(s.retransmitted <= 1, "{s:?}");
    // With the window restored the transfer takes hardly longer.
    let (took, clean_took) = (p.sent_at.unwrap(), clean.sent_at.unwrap());
    assert!(
        took < clean_took + link.one_way,
        "{took:?} vs {clean_took:?}"
    );
}

#[test]
fn a_vanished_receiver_is_given_up_after_the_silence_limit() {
    let file = Mem::new(file_bytes(2 * MIB, 7));
    let mut p = Pair::new(Instant::now(), &file, Link::clean(), &limits());
    p.run_while(|p| p.sink.len() < MIB);
    // The receiver is gone: nothing more comes back from it.
    p.receiver_gone = true;
    p.to_sender.cut = true;
    let aborts_before = p.to_receiver.counts.sent;
    p.run();
    match p.sent {
        Some(SendOutcome::Silent(d)) => assert_eq!(d, DEFAULT_SILENCE),
        ref other => panic!("sender ended with {other:?}"),
    }
    // Exactly the silence limit after the last datagram it heard.
    let heard = p.last_to_sender.unwrap() - p.epoch;
    assert_eq!(p.sent_at.unwrap() - heard, DEFAULT_SILENCE);
    let s = p.sender.stats();
    // Meanwhile it probed with a backed-off timer, not in a loop.
    assert!(s.probes >= 3 && s.probes <= 12, "{s:?}");
    assert!(p.to_receiver.counts.sent - aborts_before < 2000);
    // Its last words were three ABORT 426.
    let last = p.to_receiver.last_sent.iter().rev().take(3);
    for b in last {
        assert_eq!(Frame::parse(b).unwrap().body, Body::Abort { code: 426 });
    }
}

#[test]
fn a_vanished_sender_is_given_up_after_the_idle_time() {
    let file = Mem::new(file_bytes(2 * MIB, 8));
    let mut p = Pair::new(Instant::now(), &file, Link::clean(), &limits());
    p.run_while(|p| p.sink.len() < MIB);
    p.to_receiver.cut = true;
    p.run();
    assert_eq!(p.received, Some(Received::Idle(DEFAULT_SILENCE)));
    assert!(
        matches!(p.sent, Some(SendOutcome::Silent(_))),
        "{:?}",
        p.sent
    );
    assert!(p.sink.len() >= MIB && p.sink[..] == file.bytes[..p.sink.len()]);
}

/// A datagram of the transfer with these header fields.
fn forged(token: &[u8; 8], transfer: u32, emit: impl Fn(&mut Vec<u8>, &[u8; 8], u32)) -> Vec<u8> {
    let mut v = Vec::new();
    emit(&mut v, token, transfer);
    v
}

#[test]
fn wrong_tokens_other_transfers_and_strangers_change_nothing() {
    let file = Mem::new(file_bytes(2 * MIB, 9));
    let len = file.len();
    let link = Link {
        loss: 0.01,
        seed: 9,
        ..Link::clean()
    };
    let clean = transfer(&file, link);
    let mut wrong = TOKEN;
    wrong[0] ^= 0x80;
    let receiver: SocketAddr = RECEIVER.parse().unwrap();
    let stranger: SocketAddr = "10.0.0.2:50001".parse().unwrap();
    let everything = |t: &[u8; 8], id: u32| {
        vec![
            forged(t, id, |v, t, id| {
                frame::emit_hello(v, t, id, 0, len, len, 1400)
            }),
            forged(t, id, |v, t, id| {
                frame::emit_ack(v, t, id, len, len, 0, &[(9999, 0)])
            }),
            forged(t, id, |v, t, id| frame::emit_done(v, t, id, len)),
            forged(t, id, |v, t, id| frame::emit_abort(v, t, id, 426)),
            forged(t, id, |v, t, id| {
                frame::emit_data(v, t, id, 5, 0, true, &[0xee; 1400])
            }),
            forged(t, id, frame::emit_done_ack),
        ]
    };
    let began = Instant::now();
    let mut p = Pair::new(began, &file, link, &limits());
    // A wrong token from the receiver's own address: everything, HELLO
    // first. The right token with another transfer id, and the right
    // token and id from another port: all but a HELLO (which would open
    // the transfer for whoever sends it first, as it should).
    let mut to_sender: Vec<Junk> = everything(&wrong, TRANSFER)
        .into_iter()
        .map(|bytes| Junk {
            from: receiver,
            bytes,
        })
        .collect();
    for (from, id) in [(receiver, TRANSFER + 1), (stranger, TRANSFER)] {
        for bytes in everything(&TOKEN, id).into_iter().skip(1) {
            to_sender.push(Junk { from, bytes });
        }
    }
    to_sender.push(Junk {
        from: receiver,
        bytes: b"\x01\x03garbage".to_vec(),
    });
    p.junk_to_sender = to_sender;
    let mut to_receiver = everything(&wrong, TRANSFER);
    to_receiver.extend(everything(&TOKEN, TRANSFER + 1));
    to_receiver.push(vec![0xff; 40]);
    p.junk_to_receiver = to_receiver;
    p.run();
    assert_exact(&p, &file);
    // Not one datagram, figure or instant differs from the run without
    // them.
    assert_eq!(p.sender.stats(), clean.sender.stats());
    assert_eq!(
        (p.sent_at, p.received_at),
        (clean.sent_at, clean.received_at)
    );
    assert_eq!(p.to_receiver.counts.sent, clean.to_receiver.counts.sent);
    assert_eq!(p.to_sender.counts.sent, clean.to_sender.counts.sent);
    eprintln!("with junk: {:?} real", began.elapsed());
}

#[test]
fn a_file_that_shrinks_is_abandoned_with_451() {
    let file = Mem::new(file_bytes(2 * MIB, 10));
    let mut p = Pair::new(Instant::now(), &file, Link::clean(), &limits());
    p.run_while(|p| p.sink.len() < MIB / 2);
    file.shrunk_to.set(Some(MIB));
    p.run();
    assert!(matches!(p.sent, Some(SendOutcome::Changed)), "{:?}", p.sent);
    assert_eq!(p.received, Some(Received::Aborted(451)));
    assert!(p.sink[..] == file.bytes[..p.sink.len()]);
}

#[test]
fn an_empty_transfer_is_a_hello_and_a_done() {
    let file = Mem::new(Vec::new());
    let p = transfer(&file, Link::clean());
    assert_exact(&p, &file);
    assert_eq!(p.sender.stats(), SendStats::default());
    // HELLO and DONE at 0, 5 and 15 ms (no round trip is known: the
    // repeat starts at 5 ms and doubles), answered by three DONE_ACKs
    // that arrive after one round trip.
    assert_eq!(p.to_sender.counts.sent, 6);
    assert_eq!(p.to_receiver.counts.sent, 3);
    let rtt = Link::clean().one_way * 2;
    let (sent, received) = (p.sent_at.unwrap(), p.received_at.unwrap());
    assert!(
        sent >= rtt / 2 && sent < rtt / 2 + Duration::from_micros(10),
        "{sent:?}"
    );
    assert!(
        received >= rtt && received < rtt + Duration::from_micros(10),
        "{received:?}"
    );
}

fn hello(transfer: u32, offset: u64, len: u64) -> Vec<u8> {
    forged(&TOKEN, transfer, |v, t, id| {
        frame::emit_hello(v, t, id, offset, len, offset + len, 1400)
    })
}

#[test]
fn a_finished_transfer_is_not_reopened_but_its_done_is_answered() {
    let file = Mem::new(file_bytes(1000, 11));
    let now = Instant::now();
    let mut finished = Finished::default();
    finished.push(TRANSFER);
    let mut s = Sender::new(now, &file, 0, TOKEN, &limits(), &finished);
    let from: SocketAddr = RECEIVER.parse().unwrap();
    // Its HELLO, and a HELLO for other bytes, open nothing.
    s.handle_datagram(now, from, &hello(TRANSFER, 0, 1000));
    s.handle_datagram(now, from, &hello(TRANSFER + 1, 1, 999));
    assert_eq!(s.transfer_id(), None);
    assert!(s.poll_transmit(now).is_none());
    // Its DONE gets one DONE_ACK, to where it came from.
    let done = forged(&TOKEN, TRANSFER, |v, t, id| {
        frame::emit_done(v, t, id, 1000)
    });
    s.handle_datagram(now, from, &done);
    let t = s.poll_transmit(now).expect("an answer");
    assert_eq!((t.to, t.data), (from, false));
    assert_eq!(Frame::parse(t.bytes).unwrap().body, Body::DoneAck);
    assert!(s.poll_transmit(now).is_none());
    // Without a HELLO it gives up exactly when its wait is over.
    let wait = limits().wait;
    assert_eq!(s.poll_timeout(), Some(now + wait));
    s.handle_timeout(now + wait - Duration::from_nanos(1));
    assert!(s.poll_outcome().is_none());
    s.handle_timeout(now + wait);
    assert!(matches!(s.poll_outcome(), Some(SendOutcome::NoReceiver)));
    assert!(s.poll_outcome().is_none(), "the outcome comes once");
}

#[test]
fn a_datagram_the_socket_did_not_take_was_never_sent() {
    let file = Mem::new(file_bytes(5000, 12));
    let now = Instant::now();
    let mut s = Sender::new(now, &file, 0, TOKEN, &limits(), &Finished::default());
    let from: SocketAddr = RECEIVER.parse().unwrap();
    s.handle_datagram(now, from, &hello(TRANSFER, 0, 5000));
    assert_eq!(s.transfer_id(), Some(TRANSFER));
    let first = s.poll_transmit(now).expect("DATA").bytes.to_vec();
    // Not confirmed: the same chunk comes again under the same number.
    let again = s.poll_transmit(now).expect("DATA").bytes.to_vec();
    assert_eq!(first, again);
    assert_eq!(data_pn(&first), Some(0));
    assert_eq!(s.stats().packets, 0);
    s.on_sent(now);
    let next = s.poll_transmit(now).expect("DATA").bytes.to_vec();
    assert_eq!(data_pn(&next), Some(1));
    match Frame::parse(&next).unwrap().body {
        Body::Data { offset, .. } => assert_eq!(offset, 1400),
        other => panic!("{other:?}"),
    }
    s.on_sent(now);
    assert_eq!(s.stats().packets, 2);
}
