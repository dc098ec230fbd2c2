//! Writing a peer's queue out: the hub's flush of a plain TCP socket
//! (vectored, never waiting), and the entries a TLS or WebSocket writer
//! task takes to write itself.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, Bytes};
use tokio::net::TcpStream;

use super::{Outbound, Peer};
use crate::budget::SLOT_BYTES;

/// How many queued buffers go into one vectored write.
const MAX_IOVECS: usize = 64;

impl Peer {
    /// For a writer task: move up to `max` entries (each one or more whole
    /// frames) out of the queue into `into`, and no more once they hold
    /// `max_bytes` (at least one is taken): they leave the queue's count and
    /// the budget's slots, and while they are written the queue fills again
    /// up to its limit, so what a stuck writer holds beyond it is at most
    /// that much. `false` when there is nothing to take and the peer is
    /// closing: the task ends the connection.
    pub fn take(&self, max: usize, max_bytes: usize, into: &mut Vec<Bytes>) -> bool {
        let mut out = self.out();
        out.dirty = false;
        let mut n = 0;
        let mut bytes = 0;
        while n < max && bytes < max_bytes {
            let Some(b) = out.queue.pop_front() else {
                break;
            };
            out.queued -= b.len() + SLOT_BYTES;
            out.written += b.len() as u64;
            bytes += b.len();
            n += 1;
            into.push(b);
        }
        self.settle(&mut out);
        if out.queue.is_empty() && out.queue.capacity() > 256 {
            out.queue = VecDeque::new();
        }
        let closing = out.closing;
        drop(out);
        self.budget.remove_slots(n);
        n > 0 || !closing
    }

    /// For a writer task: its socket failed.
    pub fn set_dead(&self) {
        let mut out = self.out();
        out.dead = true;
        out.closing = true;
        drop(out);
        self.wake.notify_one();
    }

    /// Count `bytes` (a writer's copy of what it took, being written) in
    /// the budget until the guard is dropped.
    pub fn count_copy(&self, bytes: usize) -> crate::budget::Counted {
        self.budget.count(bytes)
    }

    /// Write as much as the socket takes now, never waiting. `Ok(true)` when
    /// the queue is empty; `Ok(false)` when the socket would block (the
    /// connection task is woken to finish). On error the peer is dead.
    ///
    /// The hub passes `skip_if_blocked`: a socket that was full is the
    /// connection task's to drain, so the hub saves the system call.
    pub fn flush(&self, skip_if_blocked: bool) -> io::Result<bool> {
        let mut out = self.out();
        out.dirty = false;
        if out.dead {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if skip_if_blocked && out.blocked {
            return Ok(false);
        }
        let Some(stream) = &self.stream else {
            // Its writer task writes.
            drop(out);
            self.writable.notify_one();
            return Ok(true);
        };
        let before = out.queue.len();
        let result = write_queued(stream.as_ref(), &mut out);
        let mut gone = before - out.queue.len();
        if result.is_err() {
            // Nothing more can be written: every entry still queued or
            // held leaves the budget's slots with the queue.
            gone = before + out.held.iter().map(|(_, a)| a.len()).sum::<usize>();
            out.queue = VecDeque::new();
            out.held = VecDeque::new();
            out.queued = 0;
        }
        self.settle(&mut out);
        self.budget.remove_slots(gone);
        match &result {
            Ok(done) => {
                let was_blocked = out.blocked;
                out.blocked = !done;
                // Release the ring buffer after a big burst. Smaller ones
                // keep it (re-growing it every turn costs more than it saves);
                // `trim` frees those once the peer is idle.
                if *done && out.queue.capacity() > 256 {
                    out.queue = VecDeque::new();
                }
                if !done && !was_blocked {
                    drop(out);
                    self.wake.notify_one();
                }
            }
            Err(_) => {
                out.dead = true;
                out.closing = true;
                drop(out);
                self.wake.notify_one();
            }
        }
        result
    }
}

fn write_queued(stream: &TcpStream, out: &mut Outbound) -> io::Result<bool> {
    while !out.queue.is_empty() {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let n = out.queue.len().min(MAX_IOVECS);
        for (slot, buf) in slices.iter_mut().zip(out.queue.iter()) {
            *slot = IoSlice::new(buf);
        }
        let mut written = match stream.try_write_vectored(&slices[..n]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(w) => w,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.queued -= written;
        out.written += written as u64;
        while written > 0 {
            let front = out
                .queue
                .front_mut()
                .expect("written bytes came from the queue");
            if written >= front.len() {
                written -= front.len();
                out.queue.pop_front();
                out.queued -= SLOT_BYTES;
                out.head_partial = false;
            } else {
                front.advance(written);
                out.head_partial = true;
                written = 0;
            }
        }
    }
    Ok(true)
}
