//! This node's own proposals the log stored, kept until the room's
//! follower reads past them. The stream's limits may remove one before
//! the follower gets to it (a room kept short, a node behind); it is then
//! applied from this copy, which is what the log held at that seq, so its
//! sender is answered and this node's copy of the room is the others'.
//! Stepped over instead, it would leave its sender waiting for an answer
//! that never comes, and every later answer to that session behind it.
//! One stepped over before its acknowledgement came (the follower read
//! the next seq first) is lost to this node's copy of the room: its
//! sender is answered as for a copy the log held already (a message:
//! `duplicate`, with its seq) or refused (an entering), in its place.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;

use super::{lock, Cluster};

/// The most of a room's own proposals kept unread, and of its seqs stepped
/// over remembered; past it the oldest goes (its follower, or the
/// acknowledgements, that far behind: a hang of its own).
const OWN_KEPT_MAX: usize = 65_536;

/// One room's own stored proposals not read yet.
#[derive(Debug, Default)]
pub(super) struct OwnStored {
    /// The seq the room's follower reads next: nothing below is kept.
    next: u64,
    /// Each proposal's payload by the seq the log gave it.
    events: BTreeMap<u64, Bytes>,
    /// Seqs stepped over with no copy here: one of them acknowledged to
    /// this node later was its own, lost.
    skipped: BTreeSet<u64>,
}

/// Per room.
pub(super) type OwnByRoom = HashMap<Arc<str>, OwnStored>;

impl Cluster {
    /// The log stored this node's proposal `payload` in `room` at `seq`:
    /// kept until the follower reads it, unless it has already. `true`:
    /// the follower stepped over it (removed before it was read), so it
    /// will not be applied here.
    pub(super) fn stored_own(&self, room: &Arc<str>, seq: u64, payload: &Bytes) -> bool {
        let mut own = lock(&self.own);
        let r = own.entry(Arc::clone(room)).or_default();
        if seq < r.next {
            return r.skipped.remove(&seq);
        }
        r.events.insert(seq, payload.clone());
        if r.events.len() > OWN_KEPT_MAX {
            r.events.pop_first();
        }
        false
    }

    /// The follower of `room` is past `seq`, read or (`skipped`) stepped
    /// over: what was kept up to it goes; this node's proposal at `seq`,
    /// if it is one, is returned.
    pub(super) fn past_own(&self, room: &str, seq: u64, skipped: bool) -> Option<Bytes> {
        let mut own = lock(&self.own);
        let r = match own.get_mut(room) {
            Some(r) => r,
            None => own.entry(Arc::from(room)).or_default(),
        };
        r.next = r.next.max(seq + 1);
        let mut at_seq = None;
        while let Some(e) = r.events.first_entry() {
            if *e.key() > seq {
                break;
            }
            let (s, payload) = e.remove_entry();
            if s == seq {
                at_seq = Some(payload);
            }
        }
        if skipped && at_seq.is_none() {
            r.skipped.insert(seq);
            if r.skipped.len() > OWN_KEPT_MAX {
                r.skipped.pop_first();
            }
        }
        at_seq
    }
}
