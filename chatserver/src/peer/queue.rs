//! Queuing frames for a peer, up to its limits, and closing it: at once
//! (a kick, its queue dropped for a last error frame) or once what is
//! queued is written.

use std::collections::VecDeque;

use bytes::Bytes;
use chatproto::ErrorCode;

use super::{Peer, Push};
use crate::budget::SLOT_BYTES;

/// Runs of frames up to this size queued for a peer that is behind (it
/// still held something from an earlier turn when this turn's first run
/// came) are copied out of the buffer they were cut from, which would
/// otherwise stay alive for them: a peer behind keeps at most one shared
/// buffer per 4 KiB it holds, beyond the turn it fell behind in.
const COPY_BELOW: usize = 4096;

impl Peer {
    /// Queue `bytes` (one or more whole frames) unless that would pass
    /// [`QueueLimits::max_bytes`](super::QueueLimits::max_bytes). The
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
}
