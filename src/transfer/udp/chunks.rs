//! The sender's view of the bytes it sends: the chunks of P bytes from the
//! transfer's offset, which of them have arrived, which are in flight under
//! which packet number, which were lost and wait to be sent again, and how
//! far the receiver lets it go. Also the read-ahead of file bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use super::congestion::MAX_WINDOW;
use super::recovery;
use crate::transfer::Source;

/// File bytes read at once for new data.
const READ_BLOCK: usize = 1 << 20;

/// What the sender knows of one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Last sent in this packet, not yet acknowledged.
    InFlight(u64),
    /// Lost and waiting in the retransmission queue.
    Lost,
    Acked,
}

/// Chunks and their states, by offset.
#[derive(Debug)]
pub struct ChunkMap {
    start: u64,
    end: u64,
    payload: u64,
    /// Bytes below this arrived in order (from the receiver's ACKs).
    delivered: u64,
    /// The receiver's limit: bytes at or past it may not be sent yet.
    max_data: u64,
    /// The first byte never sent.
    next_new: u64,
    chunks: BTreeMap<u64, ChunkState>,
    retransmit: BTreeSet<u64>,
}

impl ChunkMap {
    /// The bytes `start..end` in chunks of `payload`, of which the
    /// receiver can take those below `max_data` for now.
    pub fn new(start: u64, end: u64, payload: u64, max_data: u64) -> ChunkMap {
        ChunkMap {
            start,
            end,
            payload,
            delivered: start,
            max_data: max_data.min(start.saturating_add(MAX_WINDOW)),
            next_new: start,
            chunks: BTreeMap::new(),
            retransmit: BTreeSet::new(),
        }
    }

    pub fn is_delivered(&self) -> bool {
        self.delivered == self.end
    }

    /// Every chunk has been sent, and none waits to be sent again.
    pub fn all_sent(&self) -> bool {
        self.next_new == self.end && self.retransmit.is_empty()
    }

    /// The offset of the chunk holding `off`.
    fn chunk_start(&self, off: u64) -> u64 {
        let off = off.max(self.start);
        off - (off - self.start) % self.payload
    }

    /// The length of the chunk at `chunk`.
    pub fn chunk_len(&self, chunk: u64) -> u64 {
        self.payload.min(self.end - chunk)
    }

    /// Takes an ACK's delivered point and limit. True when the delivered
    /// point moved on.
    pub fn on_ack(&mut self, delivered: u64, max_data: u64) -> bool {
        let delivered = delivered.min(self.end);
        let moved = delivered > self.delivered && delivered <= self.next_new;
        if moved {
            self.delivered = delivered;
            // Chunks wholly below the delivered point need nothing more.
            let first_kept = self.chunk_start(delivered);
            self.chunks = self.chunks.split_off(&first_kept);
            self.retransmit = self.retransmit.split_off(&first_kept);
            if let Some(ChunkState::Lost | ChunkState::InFlight(_)) = self.chunks.get(&first_kept) {
                if first_kept + self.chunk_len(first_kept) <= delivered {
                    self.chunks.insert(first_kept, ChunkState::Acked);
                    self.retransmit.remove(&first_kept);
                }
            }
        }
        let cap = self.delivered.saturating_add(MAX_WINDOW).min(self.end);
        self.max_data = self.max_data.max(max_data.min(cap));
        moved
    }

    /// The next chunk to send: the lowest lost one, else new data the
    /// receiver can take; a probe that finds neither repeats the lowest
    /// unacknowledged chunk, or the last one.
    pub fn pick(&mut self, probe: bool) -> Option<u64> {
        while let Some(&off) = self.retransmit.first() {
            if off + self.chunk_len(off) <= self.delivered {
                self.retransmit.pop_first();
                continue;
            }
            return Some(off);
        }
        if self.next_new < self.end {
            let len = self.chunk_len(self.next_new);
            if self.next_new + len <= self.max_data {
                return Some(self.next_new);
            }
        }
        if !probe {
            return None;
        }
        let oldest = self
            .chunks
            .iter()
            .find(|(_, s)| matches!(s, ChunkState::InFlight(_)))
            .map(|(&off, _)| off);
        if oldest.is_some() {
            return oldest;
        }
        if self.next_new > self.start {
            return Some(self.chunk_start(self.next_new - 1));
        }
        None
    }

    /// True when `off` was sent before (sending it again is a
    /// retransmission).
    pub fn was_sent(&self, off: u64) -> bool {
        off < self.next_new
    }

    /// The chunk at `off` (of `len` bytes) went out as packet `pn`.
    pub fn on_sent(&mut self, off: u64, len: u64, pn: u64) {
        self.retransmit.remove(&off);
        if off >= self.delivered {
            self.chunks.insert(off, ChunkState::InFlight(pn));
        }
        if off == self.next_new {
            self.next_new += len;
        }
    }

    /// True when, once the chunk at `off` is sent, the sender must wait for
    /// an acknowledgement: the window is full, or nothing else may be sent.
    pub fn last_before_wait(&self, off: u64, len: u64, in_flight: u64, window: u64) -> bool {
        if in_flight + len + self.payload > window {
            return true;
        }
        let next_new = if off == self.next_new {
            off + len
        } else {
            self.next_new
        };
        let more_new = next_new < self.end && next_new + self.chunk_len(next_new) <= self.max_data;
        let more_lost = self.retransmit.iter().any(|&o| o != off);
        !more_new && !more_lost
    }
}

impl recovery::Chunks for ChunkMap {
    fn acked(&mut self, off: u64) {
        if let Some(c) = self.chunks.get_mut(&off) {
            *c = ChunkState::Acked;
        }
        self.retransmit.remove(&off);
    }

    fn lost(&mut self, pn: u64, off: u64, len: u64) -> bool {
        if off + len <= self.delivered {
            return false; // arrived after all, as the delivered point shows
        }
        if self.chunks.get(&off) == Some(&ChunkState::InFlight(pn)) {
            self.chunks.insert(off, ChunkState::Lost);
            self.retransmit.insert(off);
        }
        true
    }
}

/// File bytes read ahead a block at a time for new data.
#[derive(Debug, Default)]
pub struct ReadAhead {
    block: Vec<u8>,
    block_start: u64,
}

impl ReadAhead {
    /// Puts the `dst.len()` bytes at `off` into `dst`. New data is read a
    /// block ahead, up to `end`; a chunk sent `again` that lies outside the
    /// block is read alone. Ok(false) when the source is shorter than it
    /// was.
    pub fn read<S: Source + ?Sized>(
        &mut self,
        source: &S,
        off: u64,
        dst: &mut [u8],
        again: bool,
        end: u64,
    ) -> io::Result<bool> {
        let len = dst.len();
        let block_end = self.block_start + self.block.len() as u64;
        if off < self.block_start || off + len as u64 > block_end {
            if again {
                return Ok(source.read_full_at(dst, off)? == len);
            }
            let want = (READ_BLOCK as u64).min(end - off) as usize;
            self.block.resize(want, 0);
            let got = source.read_full_at(&mut self.block, off)?;
            self.block.truncate(got);
            self.block_start = off;
        }
        let from = (off - self.block_start) as usize;
        let Some(src) = self.block.get(from..from + len) else {
            return Ok(false);
        };
        dst.copy_from_slice(src);
        Ok(true)
    }
}
