//! One connection's socket and its bounded outbound queue, shared by the hub
//! (which queues and writes without ever waiting) and the connection task
//! (which reads, and waits for the socket when a write would block).
//!
//! A plain TCP peer is written by the hub itself. A peer behind TLS or a
//! WebSocket is written by its own writer task, which takes entries (each
//! one or more whole frames) from the same bounded queue ([`Peer::take`]):
//! the hub only queues and wakes it.
//!
//! This file holds the peer, its queue's state and what the hub asks of
//! it; queuing frames and closing are in `queue`, holding frames behind
//! a read and charging what reads cost in `reads`, writing the queue out
//! (the hub's flush of a plain socket, a writer task's take) in `write`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use chatproto::{ClientId, ErrorCode};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::budget::OutboundBudget;
use crate::ratelimit::ReadAllowance;

mod queue;
mod reads;
#[cfg(test)]
mod tests;
mod write;

/// History reads (a `history` page or an `enter`'s replay from the store or
/// the cluster's log) a client may have waiting at once. Past it, its
/// connection passes no other frame that may read until one is answered
/// (see [`Feeder::pass`](crate::feed::Feeder::pass)): a client that asks
/// faster than the disk answers cannot grow the queue of reads.
pub const MAX_READS_WAITING: usize = 4;

/// How much a peer's queue holds before its client is a slow consumer:
/// past `bytes` for longer than the hub's grace (`--slow-consumer-ms`)
/// while writing out less than `bytes` of it, or past `max_bytes` at once
/// (each counted as [`Peer::queued`] is). A burst larger than `bytes`
/// that the client reads, at once or steadily, is no reason to close it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// `--outbound-queue-bytes`.
    pub bytes: usize,
    /// `--outbound-queue-max-bytes`: at least `bytes`.
    pub max_bytes: usize,
}

impl QueueLimits {
    /// One limit, passed at once (no grace).
    pub fn fixed(bytes: usize) -> Self {
        QueueLimits {
            bytes,
            max_bytes: bytes,
        }
    }
}

/// A connection as the hub and its task both see it.
#[derive(Debug)]
pub struct Peer {
    /// The socket of a plain TCP peer (`None`: a writer task writes), as
    /// its write half: the connection task reads through the read half;
    /// writes happen under `out`'s lock.
    stream: Option<OwnedWriteHalf>,
    /// Wakes a writer task: frames are queued, or the peer is closing.
    pub writable: Notify,
    /// The room's handle, set once the hub has registered the connection.
    pub id: OnceLock<ClientId>,
    /// Wakes the connection task: a write would block, or the peer is closing.
    pub wake: Notify,
    out: Mutex<Outbound>,
    limits: QueueLimits,
    budget: Arc<OutboundBudget>,
    /// The hub's own mark: 1 + this peer's latest run in the hub's stage
    /// (0: none). Only the hub's thread reads or writes it.
    pub staged: AtomicUsize,
    /// What it may be sent in answer to its reads (`None`: no limit),
    /// charged by [`Peer::charge_read`].
    reads: Option<ReadAllowance>,
    /// How many of its frames that ask to read the hub has answered (see
    /// [`Peer::read_answered`]).
    reads_answered: AtomicU64,
}

#[derive(Debug, Default)]
struct Outbound {
    queue: VecDeque<Bytes>,
    /// What `queue` holds: its unwritten bytes plus
    /// [`SLOT_BYTES`](crate::budget::SLOT_BYTES) per entry (a frame, or a
    /// run of frames cut from one buffer).
    queued: usize,
    /// The front buffer is partly written and must be finished first.
    head_partial: bool,
    /// In the hub's list of peers to flush.
    dirty: bool,
    /// The last write would block; the connection task flushes when writable.
    blocked: bool,
    /// Since when `queued` has been past [`QueueLimits::bytes`], or since
    /// the hub last found its client reading it ([`Peer::watch_again`])
    /// (`None` while it is not past it).
    over_since: Option<Instant>,
    /// Bytes taken off the queue so far: written to the socket, or taken
    /// by the writer task (which takes more only once it wrote those).
    written: u64,
    /// What `written` was when `over_since` was last set.
    written_at_over: u64,
    /// Something queued before this turn was still unwritten at the
    /// turn's first push (see [`Peer::push`]).
    behind: bool,
    /// No more frames are accepted; flush what is queued, then close.
    closing: bool,
    /// The socket failed; nothing more can be written.
    dead: bool,
    /// Why the server closes the peer (the error code of its last frame),
    /// for a transport whose close says why (a WebSocket's close status).
    closed_for: Option<ErrorCode>,
    /// Reads of history from disk this peer waits for, oldest first, each
    /// with the frames queued after it: they go once its answer went.
    /// Counted in `queued` like the queue.
    held: VecDeque<(u64, VecDeque<Bytes>)>,
    /// Close once `held` is empty (see [`Peer::close_once_answered`]).
    close_when_answered: bool,
}

/// The result of [`Peer::push`] (and [`Peer::release`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Push {
    /// Queued.
    Queued {
        /// The peer was not yet on the hub's flush list.
        newly: bool,
        /// The queue went past [`QueueLimits::bytes`] with it: the hub
        /// gives the client its grace to read it back under.
        over: bool,
    },
    /// Queuing would pass [`QueueLimits::max_bytes`]: the overflow policy
    /// (slow_consumer) applies at once.
    Overflow,
    /// The peer is closing; the bytes were dropped.
    Closed,
}

impl Peer {
    /// A peer whose outbound queue (unwritten bytes plus
    /// [`SLOT_BYTES`](crate::budget::SLOT_BYTES) per entry) is bounded by
    /// `limits`. Frames leaving the queue are reported to `budget`; the hub
    /// reports those it queues.
    pub fn new(stream: OwnedWriteHalf, limits: QueueLimits, budget: Arc<OutboundBudget>) -> Self {
        Self::with(Some(stream), limits, budget)
    }

    /// A peer written by a writer task (TLS, WebSocket), with the same
    /// queue limits and budget.
    pub fn for_task(limits: QueueLimits, budget: Arc<OutboundBudget>) -> Self {
        Self::with(None, limits, budget)
    }

    fn with(
        stream: Option<OwnedWriteHalf>,
        limits: QueueLimits,
        budget: Arc<OutboundBudget>,
    ) -> Self {
        Peer {
            stream,
            writable: Notify::new(),
            id: OnceLock::new(),
            wake: Notify::new(),
            out: Mutex::new(Outbound::default()),
            limits,
            budget,
            staged: AtomicUsize::new(0),
            reads: None,
            reads_answered: AtomicU64::new(0),
        }
    }

    /// The same peer, its answers to reads charged to `reads` (`None`: no
    /// read allowance).
    #[must_use]
    pub fn with_reads(mut self, reads: Option<ReadAllowance>) -> Self {
        self.reads = reads;
        self
    }

    /// The socket of a plain TCP peer.
    ///
    /// # Panics
    ///
    /// For a peer written by a task, which has none.
    pub fn socket(&self) -> &TcpStream {
        self.stream.as_ref().expect("a plain TCP peer").as_ref()
    }

    /// A queue back under [`QueueLimits::bytes`] is no longer over it.
    fn settle(&self, out: &mut Outbound) {
        if out.queued <= self.limits.bytes {
            out.over_since = None;
        }
    }

    /// Mark a queue that went past [`QueueLimits::bytes`]; whether it
    /// just did.
    fn mark_over(&self, out: &mut Outbound) -> bool {
        let over = out.queued > self.limits.bytes && out.over_since.is_none();
        if over {
            out.over_since = Some(Instant::now());
            out.written_at_over = out.written;
        }
        over
    }

    /// Since when the queue has been watched past [`QueueLimits::bytes`],
    /// and how many bytes were taken off it since then (written, or taken
    /// by the writer task), if it is past it.
    pub fn lag(&self) -> Option<(Instant, u64)> {
        let out = self.out();
        let since = out.over_since?;
        Some((since, out.written - out.written_at_over))
    }

    /// A queue still past [`QueueLimits::bytes`] whose client is reading
    /// it is watched again from `now`, what it wrote counted from there.
    pub fn watch_again(&self, now: Instant) {
        let mut out = self.out();
        if out.over_since.is_some() {
            out.over_since = Some(now);
            out.written_at_over = out.written;
        }
    }

    fn out(&self) -> MutexGuard<'_, Outbound> {
        // A panic while holding this lock leaves plain data behind; carry on.
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The error code the server closes the peer for, if it said one.
    pub fn closed_for(&self) -> Option<ErrorCode> {
        self.out().closed_for
    }

    /// Whether the peer is closing.
    pub fn is_closing(&self) -> bool {
        self.out().closing
    }

    /// Whether the socket failed.
    pub fn is_dead(&self) -> bool {
        self.out().dead
    }

    /// Whether a write would block and the connection task must wait for the socket.
    pub fn is_blocked(&self) -> bool {
        let out = self.out();
        out.blocked && !out.dead
    }

    /// What the queue holds: unwritten bytes plus
    /// [`SLOT_BYTES`](crate::budget::SLOT_BYTES) per entry.
    pub fn queued(&self) -> usize {
        self.out().queued
    }

    /// Whether anything is left to write.
    pub fn has_queued(&self) -> bool {
        let out = self.out();
        out.queued > 0 && !out.dead
    }

    /// Free the outbound ring buffer if nothing is queued: idle connections
    /// should cost next to nothing.
    pub fn trim(&self) {
        let mut out = self.out();
        if out.queue.is_empty() && out.queue.capacity() > 0 {
            out.queue = VecDeque::new();
        }
    }
}

impl Drop for Peer {
    /// Frames still queued when the connection is gone leave the budget too
    /// (their bytes leave it as the frames drop; their slots here).
    fn drop(&mut self) {
        let out = self.out.get_mut().unwrap_or_else(|e| e.into_inner());
        let held: usize = out.held.iter().map(|(_, a)| a.len()).sum();
        self.budget.remove_slots(out.queue.len() + held);
        // The socket closes when both halves are gone, as it did whole;
        // the write half would otherwise send a FIN of its own first.
        if let Some(write) = self.stream.take() {
            write.forget();
        }
    }
}
