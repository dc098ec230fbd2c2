//! This node's own proposals the log stored, kept until the room's
//! follower reads past them. The stream's limits may remove one before
//! the follower gets to it (a room kept short, a node behind); it is then
//! applied from this copy, which is what the log held at that seq, so its
//! sender is answered and this node's copy of the room is the others'.
//! Stepped over instead, it would leave its sender waiting for an answer
//! that never comes, and every later answer to that session behind it.
//! A follower about to step over events first waits (a little) for the
//! acknowledgements of this node's proposals being published in the
//! room, one of which may be in the gap. One stepped over before its
//! acknowledgement came all the same is lost to this node's copy of the
//! room: its sender is answered as for a copy the log held already (a
//! message: `duplicate`, with its seq) or refused (an entering), in its
//! place.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::{lock, Cluster, Proposal};

/// How long a follower about to step over events waits for the
/// acknowledgements of this node's proposals being published in the room.
const SKIP_WAIT: Duration = Duration::from_millis(500);

/// The most bytes of a room's own proposals kept unread; past it the
/// oldest go (its follower that far behind: a hang of its own).
const OWN_KEPT_BYTES: usize = 8 << 20;

/// The most of a room's seqs stepped over remembered (an acknowledgement
/// comes within moments of its proposal's seq being read or stepped
/// over); past it the oldest go.
const SKIPPED_KEPT: usize = 4_096;

/// One room's own stored proposals not read yet.
#[derive(Debug, Default)]
pub(super) struct OwnStored {
    /// The seq the room's follower reads next: nothing below is kept.
    next: u64,
    /// Each proposal's payload by the seq the log gave it.
    events: BTreeMap<u64, Bytes>,
    /// Their bytes.
    bytes: usize,
    /// Seqs stepped over with no copy here: one of them acknowledged to
    /// this node later was its own, lost.
    skipped: BTreeSet<u64>,
    /// This node's proposals the publisher started on, and those it is
    /// done with (acknowledged or refused), counted since the start.
    started: u64,
    finished: u64,
}

/// Per room, each shared with the room's follower (which reads it at
/// every event without looking the room up). Room names are peers'
/// words: foldhash, seeded, as for the core's maps of them.
pub(super) type OwnByRoom = HashMap<Arc<str>, Arc<Mutex<OwnStored>>, foldhash::fast::RandomState>;

impl OwnStored {
    /// This node's proposal `payload` was stored at `seq`: kept until the
    /// follower reads it, unless it has already. `true`: the follower
    /// stepped over it (removed before it was read): it will not be
    /// applied here.
    fn stored(&mut self, seq: u64, payload: &Bytes) -> bool {
        if seq < self.next {
            return self.skipped.remove(&seq);
        }
        self.bytes += payload.len();
        if let Some(old) = self.events.insert(seq, payload.clone()) {
            self.bytes -= old.len();
        }
        while self.bytes > OWN_KEPT_BYTES {
            match self.events.pop_first() {
                Some((_, old)) => self.bytes -= old.len(),
                None => break,
            }
        }
        false
    }

    /// The follower is past `seq`, read or (`skipped`) stepped over: what
    /// was kept up to it goes; stepped over, this node's proposal at
    /// `seq`, if it is one, is returned.
    fn past(&mut self, seq: u64, skipped: bool) -> Option<Bytes> {
        self.next = self.next.max(seq + 1);
        let mut at_seq = None;
        while let Some(e) = self.events.first_entry() {
            if *e.key() > seq {
                break;
            }
            let (s, payload) = e.remove_entry();
            self.bytes -= payload.len();
            if s == seq && skipped {
                at_seq = Some(payload);
            }
        }
        if skipped && at_seq.is_none() {
            // Another node's, or this one's not acknowledged yet.
            self.skipped.insert(seq);
            if self.skipped.len() > SKIPPED_KEPT {
                self.skipped.pop_first();
            }
        }
        at_seq
    }
}

impl OwnStored {
    /// Every proposal kept, oldest first, and none kept from now on (the
    /// room's stream went from under this node).
    pub(super) fn take_all(own: &Mutex<OwnStored>) -> Vec<Bytes> {
        let mut r = lock(own);
        r.bytes = 0;
        r.next = u64::MAX;
        std::mem::take(&mut r.events).into_values().collect()
    }
}

impl Cluster {
    /// `room`'s own stored proposals (made empty the first time).
    pub(super) fn own_room(&self, room: &str) -> Arc<Mutex<OwnStored>> {
        let mut own = lock(&self.own);
        match own.get(room) {
            Some(r) => Arc::clone(r),
            None => Arc::clone(own.entry(Arc::from(room)).or_default()),
        }
    }

    /// The publisher starts (`true`) or is done with (`false`) `batch`:
    /// counted a run of one room's proposals at a time.
    pub(super) fn publishing(&self, batch: &[Proposal], start: bool) {
        let mut rest = batch;
        while let Some(first) = rest.first() {
            let n = rest
                .iter()
                .take_while(|p| Arc::ptr_eq(&p.room, &first.room) || p.room == first.room)
                .count();
            let room = self.own_room(&first.room);
            let mut r = lock(&room);
            if start {
                r.started += n as u64;
            } else {
                r.finished += n as u64;
            }
            rest = &rest[n..];
        }
    }

    /// Before `room`'s follower steps over events: wait (up to
    /// [`SKIP_WAIT`]) until the publisher is done with the proposals of
    /// the room it had started on (not those it starts on meanwhile), so
    /// that one of them in the gap is kept and applied from its copy.
    pub(super) async fn await_publishing(&self, room: &str) {
        let until = Instant::now() + SKIP_WAIT;
        let room = self.own_room(room);
        let started = lock(&room).started;
        while lock(&room).finished < started && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// [`OwnStored::stored`] in `room`.
    pub(super) fn stored_own(&self, room: &str, seq: u64, payload: &Bytes) -> bool {
        lock(&self.own_room(room)).stored(seq, payload)
    }
}

impl OwnStored {
    /// [`OwnStored::past`], for the room's follower.
    pub(super) fn follower_past(room: &Mutex<OwnStored>, seq: u64, skipped: bool) -> Option<Bytes> {
        lock(room).past(seq, skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(s: &str) -> Bytes {
        Bytes::from(s.to_owned())
    }

    /// Acknowledged, then removed before it was read: its copy, once.
    #[test]
    fn one_stored_then_stepped_over_comes_from_its_copy() {
        let mut r = OwnStored::default();
        assert!(!r.stored(5, &bytes("five")));
        assert!(!r.stored(7, &bytes("seven")));
        assert_eq!(r.past(4, true), None, "another node's");
        assert_eq!(r.past(5, true), Some(bytes("five")));
        assert_eq!(r.past(5, true), None, "given once");
        // Read: its copy goes, not given.
        assert_eq!(r.past(7, false), None);
        assert!(r.events.is_empty());
    }

    /// Read before its acknowledgement came: nothing kept, nothing lost.
    #[test]
    fn one_read_before_its_acknowledgement_is_not_kept() {
        let mut r = OwnStored::default();
        assert_eq!(r.past(3, false), None);
        assert!(!r.stored(3, &bytes("three")), "read: not lost");
        assert!(r.events.is_empty());
    }

    /// Stepped over before its acknowledgement came: lost, said once.
    #[test]
    fn one_stepped_over_before_its_acknowledgement_is_lost() {
        let mut r = OwnStored::default();
        assert_eq!(r.past(3, true), None);
        assert_eq!(r.past(4, true), None);
        assert!(r.stored(4, &bytes("four")));
        assert!(!r.stored(4, &bytes("four")), "said once");
        assert_eq!(r.skipped.len(), 1, "3 was another node's");
    }

    /// A follower far behind keeps at most so many bytes, the newest;
    /// and so many seqs stepped over are remembered, the newest.
    #[test]
    fn what_is_kept_is_bounded() {
        let mut r = OwnStored::default();
        let kb = Bytes::from(vec![b'x'; 1024]);
        let n = (OWN_KEPT_BYTES / 1024) as u64 + 10;
        for seq in 1..=n {
            r.stored(seq, &kb);
        }
        assert_eq!(r.bytes, OWN_KEPT_BYTES);
        assert_eq!(r.events.len(), OWN_KEPT_BYTES / 1024);
        assert_eq!(r.events.first_key_value().map(|(s, _)| *s), Some(11));
        assert_eq!(r.past(n, false), None);
        assert_eq!((r.bytes, r.events.len()), (0, 0));
        let mut r = OwnStored::default();
        let n = SKIPPED_KEPT as u64 + 10;
        for seq in 1..=n {
            r.past(seq, true);
        }
        assert_eq!(r.skipped.len(), SKIPPED_KEPT);
        assert_eq!(r.skipped.first(), Some(&11));
    }
}
