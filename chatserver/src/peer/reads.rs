//! A peer's reads of history: what answers them costs (charged to its read
//! allowance), and the frames held behind a read from disk until its
//! answer is queued in front of them.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use chatproto::ServerFrame;

use super::{Peer, Push};
use crate::budget::SLOT_BYTES;
use crate::ratelimit::LOOKED_AT_EVENT_BYTES;

impl Peer {
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

    /// From now on hold what is queued, until [`release`](Peer::release)
    /// of `ticket` puts the answer to a read in front of it.
    pub fn hold(&self, ticket: u64) {
        self.out().held.push_back((ticket, VecDeque::new()));
    }

    /// How many reads this peer waits for ([`hold`](Peer::hold) and not
    /// yet [`release`](Peer::release)d).
    pub fn reads_waiting(&self) -> usize {
        self.out().held.len()
    }

    /// The tickets of the reads this peer waits for, oldest first.
    pub fn held_tickets(&self) -> Vec<u64> {
        self.out().held.iter().map(|(t, _)| *t).collect()
    }

    /// The answer to the read `ticket` (frames the caller tracked in the
    /// budget; their slots are counted here, once taken), then what was
    /// held behind it: [`Push::Queued`], as a push says it, or
    /// [`Push::Overflow`] if that took the queue past
    /// [`QueueLimits::max_bytes`](super::QueueLimits::max_bytes). A peer
    /// kicked or closed since it asked has no such ticket: the answer is
    /// dropped and nothing counted ([`Push::Closed`]).
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
}
