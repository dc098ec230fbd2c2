//! The memory all outbound queues may hold together.
//!
//! Each client's queue has its own cap (`--outbound-queue-bytes`), but when
//! many clients stop reading at once (thousands leaving together, each
//! departure announced to everyone still queued) the per-client caps add up
//! to gigabytes. This budget caps the sum. It counts what is really held:
//! each buffer of encoded frames once, however many queues share it, plus
//! a slot per queue entry. Past the limit the hub applies the overflow
//! policy: the client with the largest queue gets `slow_consumer` and is
//! closed, then the next largest, until the total is back under three
//! quarters of the limit.

use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;

/// What a queued frame costs beyond its bytes: its slot in a queue.
pub const SLOT_BYTES: usize = std::mem::size_of::<Bytes>();

/// Bytes held by all outbound queues, and their limit.
#[derive(Debug)]
pub struct OutboundBudget {
    /// Signed: a queue may report a pop before the hub has added the push
    /// it batched up, so the count can dip below zero for a moment.
    used: AtomicIsize,
    limit: usize,
}

impl OutboundBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(OutboundBudget {
            used: AtomicIsize::new(0),
            limit,
        })
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        usize::try_from(self.used.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Whether the queues hold more than the limit.
    pub fn is_over(&self) -> bool {
        self.used() > self.limit
    }

    /// Count `slots` more queued frames.
    pub fn add_slots(&self, slots: usize) {
        self.add(slots * SLOT_BYTES);
    }

    /// Count `slots` fewer queued frames.
    pub fn remove_slots(&self, slots: usize) {
        self.sub(slots * SLOT_BYTES);
    }

    fn add(&self, bytes: usize) {
        if bytes > 0 {
            self.used.fetch_add(
                isize::try_from(bytes).unwrap_or(isize::MAX),
                Ordering::Relaxed,
            );
        }
    }

    fn sub(&self, bytes: usize) {
        if bytes > 0 {
            self.used.fetch_sub(
                isize::try_from(bytes).unwrap_or(isize::MAX),
                Ordering::Relaxed,
            );
        }
    }

    /// Count `bytes` more held outside any frame (a writer's copy of what
    /// it is writing) until the returned guard is dropped.
    pub fn count(self: &Arc<Self>, bytes: usize) -> Counted {
        self.add(bytes);
        Counted {
            bytes,
            budget: Arc::clone(self),
        }
    }

    /// The same bytes, counted against the budget until the last copy of
    /// them (in whichever queues) is dropped.
    pub fn track(self: &Arc<Self>, bytes: Bytes) -> Bytes {
        self.add(bytes.len());
        Bytes::from_owner(Tracked {
            bytes,
            budget: Arc::clone(self),
        })
    }
}

/// An encoded frame whose memory is counted until it is dropped.
struct Tracked {
    bytes: Bytes,
    budget: Arc<OutboundBudget>,
}

/// Bytes counted in a budget until this is dropped (a writer's copy of
/// frames while it writes them: see [`OutboundBudget::count`]).
#[derive(Debug)]
#[must_use = "the bytes are counted only while this is held"]
pub struct Counted {
    bytes: usize,
    budget: Arc<OutboundBudget>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.budget.sub(self.bytes);
    }
}

impl AsRef<[u8]> for Tracked {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.budget.sub(self.bytes.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracked_frame_counts_once_until_its_last_copy_is_dropped() {
        let budget = OutboundBudget::new(1000);
        let frame = budget.track(Bytes::from(vec![7u8; 600]));
        let copies: Vec<Bytes> = (0..10).map(|_| frame.clone()).collect();
        assert_eq!(budget.used(), 600);
        assert!(!budget.is_over());
        budget.add_slots(20);
        assert_eq!(budget.used(), 600 + 20 * SLOT_BYTES);
        drop(frame);
        drop(copies);
        assert_eq!(budget.used(), 20 * SLOT_BYTES);
        budget.remove_slots(20);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_counted_copy_is_held_until_its_guard_goes() {
        let budget = OutboundBudget::new(1000);
        let copy = budget.count(700);
        assert_eq!(budget.used(), 700);
        let more = budget.count(400);
        assert!(budget.is_over());
        drop(copy);
        drop(more);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn over_the_limit_is_reported_and_a_transient_dip_reads_as_zero() {
        let budget = OutboundBudget::new(100);
        budget.remove_slots(1);
        assert_eq!(budget.used(), 0);
        budget.add_slots(1);
        let big = budget.track(Bytes::from(vec![0u8; 101]));
        assert!(budget.is_over());
        drop(big);
        assert!(!budget.is_over());
    }
}
