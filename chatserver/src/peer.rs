//! One connection's socket and its bounded outbound queue, shared by the hub
//! (which queues and writes without ever waiting) and the connection task
//! (which reads, and waits for the socket when a write would block).
//!
//! A plain TCP peer is written by the hub itself. A peer behind TLS or a
//! WebSocket is written by its own writer task, which takes entries (each
//! one or more whole frames) from the same bounded queue ([`Peer::take`]):
//! the hub only queues and wakes it.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use bytes::{Buf, Bytes};
use chatproto::{ClientId, ErrorCode, ServerFrame};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::budget::{OutboundBudget, SLOT_BYTES};
use crate::ratelimit::{ReadAllowance, LOOKED_AT_EVENT_BYTES};

/// How many queued buffers go into one vectored write.
const MAX_IOVECS: usize = 64;

/// Runs of frames up to this size queued for a peer that is behind (it
/// still held something from an earlier turn when this turn's first run
/// came) are copied out of the buffer they were cut from, which would
/// otherwise stay alive for them: a peer behind keeps at most one shared
/// buffer per 4 KiB it holds, beyond the turn it fell behind in.
const COPY_BELOW: usize = 4096;

/// History reads (a `history` page or an `enter`'s replay from the store or
/// the cluster's log) a client may have waiting at once. Past it, its
/// connection passes no other frame that may read until one is answered
/// (see [`Feeder::pass`](crate::feed::Feeder::pass)): a client that asks
/// faster than the disk answers cannot grow the queue of reads.
pub const MAX_READS_WAITING: usize = 4;

/// How much a peer's queue holds before its client is a slow consumer:
/// past `bytes` for longer than the hub's grace (`--slow-consumer-ms`),
/// or past `max_bytes` at once (each counted as [`Peer::queued`] is).
/// A burst larger than `bytes` that the client reads at once is no
/// reason to close it.
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
    /// What `queue` holds: its unwritten bytes plus [`SLOT_BYTES`] per entry
    /// (a frame, or a run of frames cut from one buffer).
    queued: usize,
    /// The front buffer is partly written and must be finished first.
    head_partial: bool,
    /// In the hub's list of peers to flush.
    dirty: bool,
    /// The last write would block; the connection task flushes when writable.
    blocked: bool,
    /// Since when `queued` has been past [`QueueLimits::bytes`] (`None`
    /// while it is not).
    over_since: Option<Instant>,
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
    /// A peer whose outbound queue (unwritten bytes plus [`SLOT_BYTES`]
    /// per entry) is bounded by `limits`. Frames leaving the queue are
    /// reported to `budget`; the hub reports those it queues.
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

    /// The hub sent this peer `frame`, `bytes` long: if it answers a read
    /// (a replayed message, a `history` page, the member list of an
    /// `entered`, `online` or `welcome`, a `rooms` list: a few bytes of
    /// request answered with up to hundreds of KiB), charge it to the read
    /// allowance now, below zero if need be (see
    /// [`Feeder::pass`](crate::feed::Feeder::pass)).
    pub fn charge_read(&self, frame: &ServerFrame, bytes: usize) {
        let Some(reads) = &self.reads else {
            return;
        };
        if matches!(
            frame,
            ServerFrame::Msg { replay: true, .. }
                | ServerFrame::History { .. }
                | ServerFrame::Entered { .. }
                | ServerFrame::Online { .. }
                | ServerFrame::Welcome { .. }
                | ServerFrame::Rooms { .. }
        ) {
            reads.charge(bytes, Instant::now());
        }
    }

    /// The history database looked at `looked_at` stored events to answer
    /// a read of this peer's, an answer of `answered` bytes (all its
    /// frames, as [`charge_read`](Peer::charge_read) charged them):
    /// charge what looking at them costs beyond that,
    /// [`LOOKED_AT_EVENT_BYTES`] each. A page of messages the peer may see
    /// costs what it did (each is longer than that), where an empty page
    /// after a long scan of messages to others was charged as nothing.
    pub fn charge_looked_at(&self, looked_at: u64, answered: usize) {
        let Some(reads) = &self.reads else {
            return;
        };
        let cost = looked_at.saturating_mul(LOOKED_AT_EVENT_BYTES);
        let beyond = cost.saturating_sub(answered as u64);
        if beyond > 0 {
            reads.charge(
                usize::try_from(beyond).unwrap_or(usize::MAX),
                Instant::now(),
            );
        }
    }

    /// `None` when the read allowance is at zero or more at `now` (or
    /// there is none), less its reserve for each read not answered yet of
    /// the `passed` frames that ask to read the connection handed to the
    /// hub (and for each read from disk it waits for); else how long until
    /// time has paid what is missing.
    pub fn read_wait(&self, now: Instant, passed: u64) -> Option<std::time::Duration> {
        let reads = self.reads.as_ref()?;
        let answered = self.reads_answered.load(Ordering::Relaxed);
        let unanswered = passed.saturating_sub(answered) as usize + self.reads_waiting();
        reads.wait(now, unanswered)
    }

    /// The hub has answered one more of the frames that ask to read (in
    /// order): what it sent for it is charged, or it waits for a read from
    /// disk ([`reads_waiting`](Peer::reads_waiting)). Wakes the connection
    /// task, whose next such frame may wait for it. (Nothing without a
    /// read allowance.)
    pub fn read_answered(&self) {
        if self.reads.is_some() {
            self.reads_answered.fetch_add(1, Ordering::Relaxed);
            self.wake.notify_one();
        }
    }

    /// The socket of a plain TCP peer.
    ///
    /// # Panics
    ///
    /// For a peer written by a task, which has none.
    pub fn socket(&self) -> &TcpStream {
        self.stream.as_ref().expect("a plain TCP peer").as_ref()
    }

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
        }
        over
    }

    /// Since when the queue has been past [`QueueLimits::bytes`], if it is.
    pub fn over_since(&self) -> Option<Instant> {
        self.out().over_since
    }

    fn out(&self) -> MutexGuard<'_, Outbound> {
        // A panic while holding this lock leaves plain data behind; carry on.
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `bytes` (one or more whole frames) unless that would pass
    /// [`QueueLimits::max_bytes`]. The
    /// caller reports each `Queued` frame to the budget (the hub does so
    /// once per batch).
    pub fn push(&self, bytes: Bytes) -> Push {
        self.push_where(bytes, false)
    }

    /// [`push`](Peer::push), but ahead of what waits behind reads
    /// ([`hold`](Peer::hold)): for a server `ping`, which answers no frame
    /// and so keeps no place among the answers. A client whose history
    /// read waits for a slow disk hears from the server meanwhile.
    pub fn push_ahead(&self, bytes: Bytes) -> Push {
        self.push_where(bytes, true)
    }

    fn push_where(&self, bytes: Bytes, ahead: bool) -> Push {
        let mut out = self.out();
        if out.closing {
            return Push::Closed;
        }
        let cost = bytes.len() + SLOT_BYTES;
        if out.queued + cost > self.limits.max_bytes {
            return Push::Overflow;
        }
        // A peer that has not written what it was given before keeps what
        // is queued for a while: a few frames cut from a turn's shared
        // buffer would keep the whole buffer alive (and counted in the
        // budget) that long, so they get a copy of their own. Whether it
        // is behind is judged at its first push since the last flush:
        // what that push finds queued is left over, while what later
        // pushes of the same turn find is this turn's own (an echo's run
        // beside a broadcast's, say).
        if !out.dirty {
            out.behind = out.blocked || !out.queue.is_empty() || !out.held.is_empty();
        }
        let bytes = if out.behind && bytes.len() <= COPY_BELOW {
            self.budget.track(Bytes::copy_from_slice(&bytes))
        } else {
            bytes
        };
        out.queued += cost;
        let over = self.mark_over(&mut out);
        if let (Some((_, after)), false) = (out.held.back_mut(), ahead) {
            after.push_back(bytes);
            return Push::Queued { newly: false, over };
        }
        out.queue.push_back(bytes);
        let newly = !out.dirty;
        out.dirty = true;
        Push::Queued { newly, over }
    }

    /// From now on hold what is queued, until [`release`](Peer::release)
    /// of `ticket` puts the answer to a read in front of it.
    pub fn hold(&self, ticket: u64) {
        self.out().held.push_back((ticket, VecDeque::new()));
    }

    /// The error code the server closes the peer for, if it said one.
    pub fn closed_for(&self) -> Option<ErrorCode> {
        self.out().closed_for
    }

    /// How many reads this peer waits for ([`hold`](Peer::hold) and not
    /// yet [`release`](Peer::release)d).
    pub fn reads_waiting(&self) -> usize {
        self.out().held.len()
    }

    /// Count `bytes` (a writer's copy of what it took, being written) in
    /// the budget until the guard is dropped.
    pub fn count_copy(&self, bytes: usize) -> crate::budget::Counted {
        self.budget.count(bytes)
    }

    /// The tickets of the reads this peer waits for, oldest first.
    pub fn held_tickets(&self) -> Vec<u64> {
        self.out().held.iter().map(|(t, _)| *t).collect()
    }

    /// The answer to the read `ticket` (frames the caller tracked in the
    /// budget; their slots are counted here, once taken), then what was
    /// held behind it: [`Push::Queued`], as a push says it, or
    /// [`Push::Overflow`] if that took the queue past
    /// [`QueueLimits::max_bytes`]. A peer kicked or closed since it asked
    /// has no such ticket: the answer is dropped and nothing counted
    /// ([`Push::Closed`]).
    pub fn release(&self, ticket: u64, answer: Vec<Bytes>) -> Push {
        let mut out = self.out();
        let Some(i) = out.held.iter().position(|(t, _)| *t == ticket) else {
            return Push::Closed;
        };
        self.budget.add_slots(answer.len());
        let (_, after) = out.held.remove(i).expect("found above");
        let mut frames: VecDeque<Bytes> = answer.into();
        out.queued += frames.iter().map(|b| b.len() + SLOT_BYTES).sum::<usize>();
        frames.extend(after);
        if i == 0 {
            out.queue.extend(frames);
        } else if let Some((_, before)) = out.held.get_mut(i - 1) {
            // Reads are answered in order, so this is not expected; keep
            // the order anyway.
            before.extend(frames);
        }
        let newly = !out.dirty;
        out.dirty = true;
        let over = self.mark_over(&mut out);
        let overflow = out.queued > self.limits.max_bytes;
        // The last answer a client that said its last waited for.
        let close = out.close_when_answered && out.held.is_empty();
        if close {
            out.closing = true;
        }
        drop(out);
        // A connection task waiting for a read to be answered (past
        // MAX_READS_WAITING) reads again.
        self.wake.notify_one();
        if close {
            self.writable.notify_one();
        }
        if overflow {
            // Queued, but past the most: the policy replaces it all.
            return Push::Overflow;
        }
        Push::Queued { newly, over }
    }

    /// Drop everything queued that has not started going out, queue `last`
    /// (an error frame with `code`) in its place, and close once it is
    /// written.
    pub fn kick(&self, last: Bytes, code: ErrorCode) {
        let mut out = self.out();
        if out.closing {
            return;
        }
        out.closed_for = Some(code);
        let keep = usize::from(out.head_partial);
        let held: usize = out.held.iter().map(|(_, a)| a.len()).sum();
        out.held = VecDeque::new();
        let dropped = out.queue.len().saturating_sub(keep) + held;
        // A fresh ring: the old one may have grown large, and a closing
        // peer can wait a while for its connection task to finish.
        let mut queue = VecDeque::with_capacity(keep + 1);
        queue.extend(out.queue.pop_front().filter(|_| keep == 1));
        queue.push_back(last);
        out.queue = queue;
        out.queued = out.queue.iter().map(|b| b.len() + SLOT_BYTES).sum();
        self.settle(&mut out);
        out.closing = true;
        drop(out);
        // `dropped` left the queue and `last` came in.
        self.budget.remove_slots(dropped);
        self.budget.add_slots(1);
        self.wake.notify_one();
        self.writable.notify_one();
    }

    /// Close once what is queued is written.
    pub fn close(&self) {
        self.close_with(None);
    }

    /// Close once every read it waits for is answered (see
    /// [`release`](Peer::release)) and what is queued is written: the
    /// client said its last, and the core has sent all it asked for.
    pub fn close_once_answered(&self) {
        let mut out = self.out();
        if out.held.is_empty() {
            drop(out);
            self.close();
        } else {
            out.close_when_answered = true;
        }
    }

    /// [`close`](Peer::close), for the error `code` its last frame gave.
    pub fn close_for(&self, code: ErrorCode) {
        self.close_with(Some(code));
    }

    fn close_with(&self, code: Option<ErrorCode>) {
        let mut out = self.out();
        if out.closed_for.is_none() {
            out.closed_for = code;
        }
        // Reads not answered yet will not be: what waited behind them goes.
        for (_, after) in std::mem::take(&mut out.held) {
            out.queue.extend(after);
        }
        out.closing = true;
        drop(out);
        self.wake.notify_one();
        // A writer task asleep on an empty queue must see it too.
        self.writable.notify_one();
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

    /// What the queue holds: unwritten bytes plus [`SLOT_BYTES`] per entry.
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn peer_with(budget: &Arc<OutboundBudget>) -> (Peer, std::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_, write) = server.into_split();
        (
            Peer::new(write, QueueLimits::fixed(1 << 20), Arc::clone(budget)),
            client,
        )
    }

    /// Queue `n` distinct 10-byte frames, reporting their slots as the hub does.
    fn queue(peer: &Peer, budget: &Arc<OutboundBudget>, n: usize) {
        for _ in 0..n {
            let frame = budget.track(Bytes::from_static(b"0123456789"));
            assert!(matches!(peer.push(frame), Push::Queued { .. }));
        }
        budget.add_slots(n);
    }

    #[tokio::test]
    async fn a_peer_behind_does_not_keep_a_shared_buffer_alive() {
        const BACKLOG: usize = 1_000;
        let budget = OutboundBudget::new(1 << 30);
        // A peer written by a task that has not taken what it was given
        // in a turn before: behind.
        let peer = Peer::for_task(QueueLimits::fixed(1 << 20), Arc::clone(&budget));
        let backlog = budget.track(Bytes::from(vec![b'x'; BACKLOG]));
        assert!(matches!(peer.push(backlog), Push::Queued { .. }));
        // Runs of the same turn are its own, not left over: no copy.
        let shared = budget.track(Bytes::from(vec![b'w'; 100_000]));
        assert!(matches!(
            peer.push(shared.slice(..100)),
            Push::Queued { .. }
        ));
        drop(shared);
        assert_eq!(budget.used(), BACKLOG + 100_000);
        // The turn ends (the hub flushes: the task is woken) and the task
        // takes nothing before the next turn's small run, cut from a big
        // shared buffer.
        assert!(peer.flush(true).unwrap());
        let shared = budget.track(Bytes::from(vec![b'y'; 100_000]));
        assert!(matches!(
            peer.push(shared.slice(..100)),
            Push::Queued { .. }
        ));
        drop(shared);
        assert_eq!(
            budget.used(),
            BACKLOG + 100_000 + 100,
            "a copy, not the buffer (the first turn's slice holds its own)"
        );
        // A peer with nothing queued gets the slice itself.
        let (fresh, _client) = peer_with(&budget).await;
        let shared = budget.track(Bytes::from(vec![b'z'; 100_000]));
        assert!(matches!(
            fresh.push(shared.slice(..100)),
            Push::Queued { .. }
        ));
        drop(shared);
        assert_eq!(budget.used(), BACKLOG + 100_000 + 100 + 100_000);
    }

    #[tokio::test]
    async fn queued_frames_leave_the_budget_however_the_peer_ends() {
        let budget = OutboundBudget::new(1 << 20);
        let (peer, _client) = peer_with(&budget).await;
        queue(&peer, &budget, 10);
        assert_eq!(budget.used(), 10 * (10 + SLOT_BYTES));
        assert_eq!(peer.queued(), 10 * (10 + SLOT_BYTES));
        // Written: nothing held any more.
        assert!(peer.flush(false).unwrap());
        assert_eq!((budget.used(), peer.queued()), (0, 0));
        // Kicked: only the last frame's slot (an untracked error frame).
        queue(&peer, &budget, 5);
        peer.kick(Bytes::from_static(b"bye"), ErrorCode::SlowConsumer);
        assert_eq!(budget.used(), SLOT_BYTES);
        assert_eq!(peer.queued(), 3 + SLOT_BYTES);
        // Dropped with frames still queued.
        drop(peer);
        assert_eq!(budget.used(), 0);

        let (peer, client) = peer_with(&budget).await;
        queue(&peer, &budget, 7);
        drop(peer);
        assert_eq!(budget.used(), 0);
        drop(client);
    }

    #[tokio::test]
    async fn frames_left_when_the_socket_fails_leave_the_budget() {
        let budget = OutboundBudget::new(1 << 20);
        let (peer, _client) = peer_with(&budget).await;
        // Every write fails from now on (EPIPE), as after the client's reset.
        socket2::SockRef::from(peer.socket())
            .shutdown(std::net::Shutdown::Write)
            .unwrap();
        queue(&peer, &budget, 4);
        peer.hold(1);
        queue(&peer, &budget, 2);
        assert!(peer.flush(false).is_err());
        assert!(peer.is_dead());
        assert_eq!((budget.used(), peer.queued()), (0, 0));
        drop(peer);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn what_comes_during_a_read_goes_after_its_answer() {
        let budget = OutboundBudget::new(1 << 20);
        let (peer, mut client) = peer_with(&budget).await;
        let frame = |b: &'static [u8]| budget.track(Bytes::from_static(b));
        assert!(matches!(
            peer.push(frame(b"a")),
            Push::Queued { newly: true, .. }
        ));
        peer.hold(1);
        peer.push(frame(b"b"));
        peer.hold(2);
        peer.push(frame(b"c"));
        budget.add_slots(3);
        peer.flush(false).unwrap();
        // The second answer first: it waits behind the first.
        peer.release(2, vec![frame(b"2")]);
        peer.flush(false).unwrap();
        peer.release(1, vec![frame(b"1")]);
        assert!(peer.flush(false).unwrap());
        assert_eq!((budget.used(), peer.queued()), (0, 0));
        let mut got = [0u8; 5];
        use std::io::Read;
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"a1b2c");
    }

    /// A server `ping` pushed ahead goes out while a read waits, before
    /// what waits behind the read (a ping answers no frame); what was
    /// pushed before the read still goes first.
    #[test]
    fn a_ping_pushed_ahead_does_not_wait_for_a_read() {
        let budget = OutboundBudget::new(1 << 30);
        let peer = Peer::for_task(QueueLimits::fixed(1 << 20), Arc::clone(&budget));
        let frame = |b: &'static [u8]| budget.track(Bytes::from_static(b));
        peer.push(frame(b"a"));
        peer.hold(1);
        peer.push(frame(b"b"));
        assert!(matches!(peer.push_ahead(frame(b"p")), Push::Queued { .. }));
        budget.add_slots(3);
        let mut batch = Vec::new();
        peer.take(64, 1 << 20, &mut batch);
        assert_eq!(batch, [&b"a"[..], &b"p"[..]]);
        peer.release(1, vec![frame(b"1")]);
        let mut batch = Vec::new();
        peer.take(64, 1 << 20, &mut batch);
        assert_eq!(batch, [&b"1"[..], &b"b"[..]]);
    }

    /// A client that said its last, waiting for a read from disk, is
    /// closed once the answer (and what was held behind it) is queued,
    /// not before: the answer is not dropped.
    #[test]
    fn a_peer_closed_once_answered_waits_for_its_reads() {
        let budget = OutboundBudget::new(1 << 30);
        let peer = Peer::for_task(QueueLimits::fixed(1 << 20), Arc::clone(&budget));
        peer.hold(7);
        let after = budget.track(Bytes::from_static(b"after"));
        assert!(matches!(peer.push(after), Push::Queued { .. }));
        budget.add_slots(1);
        peer.close_once_answered();
        assert!(!peer.is_closing(), "a read is still to be answered");
        let answer = budget.track(Bytes::from_static(b"answer"));
        assert!(matches!(peer.release(7, vec![answer]), Push::Queued { .. }));
        assert!(peer.is_closing(), "answered: now it closes");
        let mut batch = Vec::new();
        peer.take(64, 1 << 20, &mut batch);
        assert_eq!(batch, [&b"answer"[..], &b"after"[..]]);
        // With no read waiting it closes at once.
        let idle = Peer::for_task(QueueLimits::fixed(1 << 20), Arc::clone(&budget));
        idle.close_once_answered();
        assert!(idle.is_closing());
    }

    #[test]
    fn a_writer_takes_at_most_a_batch_of_bytes_and_one_entry_more() {
        let budget = OutboundBudget::new(1 << 30);
        let peer = Peer::for_task(QueueLimits::fixed(1 << 20), Arc::clone(&budget));
        for _ in 0..10 {
            let entry = budget.track(Bytes::from(vec![b'x'; 30_000]));
            assert!(matches!(peer.push(entry), Push::Queued { .. }));
        }
        budget.add_slots(10);
        let mut batch = Vec::new();
        assert!(peer.take(64, 64_000, &mut batch));
        assert_eq!(
            batch.len(),
            3,
            "60,000 bytes are under the bound, 90,000 reach it"
        );
        assert_eq!(peer.queued(), 7 * (30_000 + SLOT_BYTES));
        batch.clear();
        assert!(peer.take(2, 1 << 20, &mut batch));
        assert_eq!(batch.len(), 2, "the count of entries bounds it too");
    }

    /// Past `bytes` a queue is over (said once, with when), still queued;
    /// past `max_bytes` it overflows; written back under `bytes`, it is
    /// no longer over, and passing it again is said again.
    /// A peer written by a task, over `bytes` and overflowing past
    /// `max_bytes`, with its budget.
    fn graced(bytes: usize, max_bytes: usize) -> (Arc<OutboundBudget>, Peer) {
        let budget = OutboundBudget::new(1 << 20);
        let limits = QueueLimits { bytes, max_bytes };
        let peer = Peer::for_task(limits, Arc::clone(&budget));
        (budget, peer)
    }

    fn queued(newly: bool, over: bool) -> Push {
        Push::Queued { newly, over }
    }

    #[test]
    fn a_queue_past_its_limit_is_over_until_read_back_under_it() {
        let (budget, peer) = graced(1000, 2500);
        let frame = || budget.track(Bytes::from(vec![b'x'; 600]));
        assert_eq!(peer.push(frame()), queued(true, false));
        assert_eq!(peer.over_since(), None);
        assert_eq!(peer.push(frame()), queued(false, true));
        let since = peer.over_since().expect("over its limit");
        assert_eq!(peer.push(frame()), queued(false, false));
        assert_eq!(peer.over_since(), Some(since), "still the same time over");
        assert_eq!(peer.push(frame()), Push::Overflow, "past max_bytes");
        let mut taken = Vec::new();
        assert!(peer.take(1, usize::MAX, &mut taken));
        assert_eq!(
            peer.over_since(),
            Some(since),
            "1264 bytes left: still over"
        );
        assert!(peer.take(1, usize::MAX, &mut taken));
        assert_eq!(peer.over_since(), None, "back under it");
        assert_eq!(peer.push(frame()), queued(true, true));
        assert!(peer.over_since().is_some());
    }

    /// An answer to a read that takes the queue past its most overflows,
    /// as a push would (it was only watched for the grace).
    #[test]
    fn an_answer_past_the_most_overflows() {
        let (budget, peer) = graced(1000, 2000);
        peer.hold(1);
        let page = vec![budget.track(Bytes::from(vec![b'x'; 2500]))];
        assert_eq!(peer.release(1, page), Push::Overflow);
    }

    /// Answers to reads are charged (other frames are not), and a read
    /// the hub has not answered yet is reserved for; without a read
    /// allowance nothing waits.
    #[test]
    fn answers_are_charged_and_reads_not_yet_answered_reserved_for() {
        let budget = OutboundBudget::new(1 << 20);
        let t0 = Instant::now();
        // 1,000 bytes a second after 3,000; 2,000 reserved a read.
        let reads = ReadAllowance::new(1_000, 3_000, 2_000, t0);
        let peer = Peer::for_task(QueueLimits::fixed(1 << 20), Arc::clone(&budget));
        let peer = peer.with_reads(reads);
        assert_eq!(peer.read_wait(t0, 1), None, "one passed: 1,000 left");
        assert_eq!(
            peer.read_wait(t0, 2),
            Some(std::time::Duration::from_secs(1))
        );
        // The first answered with a page of 2,500 bytes; a pong is free.
        peer.charge_read(&ServerFrame::history("r", Vec::new(), false), 2_500);
        peer.charge_read(&ServerFrame::Pong, 10_000);
        peer.read_answered();
        let t1 = Instant::now();
        assert_eq!(peer.read_wait(t1, 1), None, "500 left");
        let wait = peer.read_wait(t1, 2).expect("1,500 short");
        assert!(
            wait <= std::time::Duration::from_millis(1_500)
                && wait > std::time::Duration::from_millis(1_400),
            "{wait:?}"
        );
        let free = Peer::for_task(QueueLimits::fixed(1 << 20), budget);
        free.charge_read(&ServerFrame::history("r", Vec::new(), false), 1 << 30);
        assert_eq!(free.read_wait(t0, 100), None);
    }

    /// A read from the database is charged for the events it looked at,
    /// 64 bytes each, beyond what its answer was charged: an empty page
    /// after a long scan costs its scan, a page of what was looked at
    /// costs its bytes alone.
    #[test]
    fn what_a_read_looked_at_is_charged_beyond_its_answer() {
        let budget = OutboundBudget::new(1 << 20);
        let t0 = Instant::now();
        // 1,000 bytes a second after 100,000; nothing reserved.
        let reads = ReadAllowance::new(1_000, 100_000, 0, t0);
        let peer = Peer::for_task(QueueLimits::fixed(1 << 20), Arc::clone(&budget));
        let peer = peer.with_reads(reads);
        // A page of 70 bytes after 1,000 events: 64,000 in all.
        peer.charge_read(&ServerFrame::history("r", Vec::new(), false), 70);
        peer.charge_looked_at(1_000, 70);
        // A page of 20,000 bytes after 200 events (12,800): its bytes.
        peer.charge_read(&ServerFrame::history("r", Vec::new(), false), 20_000);
        peer.charge_looked_at(200, 20_000);
        let t1 = Instant::now();
        assert_eq!(peer.read_wait(t1, 0), None, "16,000 left");
        // 16,000 short of another 32,000: 16 s at 1,000 a second.
        peer.charge_looked_at(500, 0);
        let wait = peer.read_wait(t1, 0).expect("16,000 short");
        let secs = wait.as_secs_f64();
        assert!((15.9..=16.0).contains(&secs), "{wait:?}");
        let free = Peer::for_task(QueueLimits::fixed(1 << 20), budget);
        free.charge_looked_at(u64::MAX, 0);
        assert_eq!(free.read_wait(t0, 0), None);
    }

    #[tokio::test]
    async fn an_answer_for_a_peer_kicked_while_it_waited_leaves_nothing_counted() {
        let budget = OutboundBudget::new(1 << 20);
        let (peer, _client) = peer_with(&budget).await;
        peer.hold(1);
        peer.kick(Bytes::from_static(b"bye"), ErrorCode::SlowConsumer);
        let counted = budget.used();
        assert_eq!(
            peer.release(1, vec![budget.track(Bytes::from_static(b"page"))]),
            Push::Closed
        );
        assert_eq!(budget.used(), counted, "the dropped answer's slot stayed");
        drop(peer);
        assert_eq!(budget.used(), 0);
    }
}
