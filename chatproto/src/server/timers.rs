//! Deadlines on the monotonic clock, so an idle server sleeps instead of
//! scanning every client on a tick.
//!
//! Timers are checked lazily: one that fires may find its reason gone (the
//! client spoke, joined or left) and does nothing, or re-arms itself for
//! its real deadline. So handling a frame touches the heap only to arm a
//! connection's first timer of a kind (its join arms its idle timer), and
//! each connection has at most one idle, one join and one pong timer
//! armed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::server::event::SessionId;
use crate::server::ClientId;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    Join(ClientId),
    Idle(ClientId),
    Pong(ClientId),
    Session(SessionId),
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(u64, Timer)>>,
}

impl Timers {
    /// Arm `timer` for `at`; not at all for `u64::MAX` (a setting of
    /// `u64::MAX`, "never", saturated to it), which would never come and
    /// would stay in the heap for good, one for every connection.
    pub fn arm(&mut self, at: u64, timer: Timer) {
        if at != u64::MAX {
            self.heap.push(Reverse((at, timer)));
        }
    }

    pub fn next(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Every timer armed, in no order.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = Timer> + '_ {
        self.heap.iter().map(|Reverse((_, t))| *t)
    }

    /// Move every timer due at `now` into `out`.
    pub fn due(&mut self, now: u64, out: &mut Vec<Timer>) {
        while let Some(Reverse((at, _))) = self.heap.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((_, t))) = self.heap.pop() {
                out.push(t);
            }
        }
        if self.heap.capacity() > 1024 && self.heap.capacity() > 4 * self.heap.len() {
            self.heap.shrink_to_fit();
        }
    }
}
