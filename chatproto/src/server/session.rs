//! Per-connection and per-session state, beside the rooms.
//!
//! A connection ([`ClientId`]) is one socket; a session ([`SessionId`]) is
//! what a client's `welcome` token names. A session is attached to at most
//! one connection; when that ends, the session waits out the resume window
//! so a reconnecting client can continue it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::server::event::SessionId;
use crate::server::ClientId;

/// One open connection.
#[derive(Debug)]
pub(crate) struct Conn {
    /// Its session, once it has joined.
    pub session: Option<SessionId>,
    /// When it last sent a frame.
    pub last_heard: u64,
    /// When it was pinged without answering yet.
    pub ping_sent_at: Option<u64>,
    /// Its ping waits to go out (behind the store's barrier, or until the
    /// next poll): the server's count of stops at a barrier when it was
    /// queued, to tell whether it then waited for the store.
    pub ping_queued: Option<u64>,
    /// Its ping went out after waiting for the store: the client could
    /// not answer it in time, so its pong's time starts again at the
    /// next check.
    pub ping_late: bool,
    /// When it connected (monotonic ms), and the shell's paused total
    /// then: it must join within the join timeout of input taken.
    pub connected_at: u64,
    pub join_paused: u64,
    /// The shell's paused total when its ping went out.
    pub ping_paused: u64,
    /// Whether its `welcome` went out (nothing of its session may come
    /// before it: a resume can find a message of the session's previous
    /// connection still on its way).
    pub welcomed: bool,
    /// Its answers are held (see [`Held`]), since when.
    pub held: Option<Held>,
    /// When it was last sent a `ping` for its answers held (monotonic ms).
    pub held_pinged: Option<u64>,
    /// Whether its `Timer::Held` is armed: at most one is.
    pub held_timer: bool,
    /// Its stream ended ([`handle_end`](crate::Server::handle_end), or
    /// read with a frame: [`handle_last_frame`](crate::Server::handle_last_frame)):
    /// its end is answered once, and a join from it takes no open
    /// connection's session over.
    pub ended: bool,
}

/// A connection's answers wait, held behind its own events on their way
/// through the log (cluster mode) or behind records not yet stored: since
/// `since` (monotonic ms) without a break, the newest behind the store's
/// `ticket` (stored once the store says it holds that ticket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Held {
    pub since: u64,
    pub ticket: u64,
}

impl Conn {
    pub fn new(now: u64) -> Self {
        Conn {
            session: None,
            last_heard: now,
            ping_sent_at: None,
            ping_queued: None,
            ping_late: false,
            connected_at: now,
            join_paused: 0,
            ping_paused: 0,
            welcomed: false,
            held: None,
            held_pinged: None,
            held_timer: false,
            ended: false,
        }
    }
}

/// What an `enter` asked for, kept until its presence event is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnterRequest {
    /// A v1 join: no `entered`, no replay.
    pub v1: bool,
    /// The last seq and epoch the client saw, if it said.
    pub since: Option<(u64, String)>,
}

/// An `enter` of a session whose presence is not applied yet.
#[derive(Debug)]
pub(crate) struct Entering {
    pub room: String,
    /// What to answer. `None`: asked by a connection that is gone, whose
    /// presence must not answer (or add) the connection attached now.
    pub req: Option<EnterRequest>,
    /// Asked by a connection the core closed since (a kick, a timeout, a
    /// takeover): until its `Close` goes out, it is answered (and in the
    /// room) as if it were open, as when the shell drained before the close.
    pub closed: Option<(ClientId, EnterRequest)>,
    /// The wall-clock stamp its presence was proposed with. In a cluster
    /// the log may also bring the session's enterings said by another
    /// node (before it moved here), and a refused one comes back apart
    /// from those applied: only the one proposed for this entry (its room
    /// and stamp, which no other entry of the room on its way has) answers
    /// it. (Another node's of the very same millisecond would be taken for
    /// it.)
    pub ts: u64,
    /// Cluster mode: the session's `leavings` when it was proposed. Applied
    /// before a leaving of the room proposed earlier (numbered below
    /// this), it makes that leaving stale.
    pub after_leavings: u64,
}

/// Cluster mode: at most this many of one session's leavings are noted
/// ([`Session::leaving`]); a new one pushes out the oldest. A leaving the
/// log steps over (`Server::skip_logged`), or drops for another server's
/// copy of the same departure, is never applied here, and its note would
/// stay for the session's life. A note pushed out while its leaving is
/// still on its way only makes that leaving count as another server's
/// when it comes (it takes the session's connection here out of the room
/// only if the session parted the room last).
pub(crate) const MAX_LEAVING_NOTES: usize = 64;

/// Cluster mode: a leaving of a session's proposed here and not applied
/// yet. The log may bring it after the session's next entering of the
/// room (on a new connection, here or on another server, or on the same
/// one): it takes out of the room's fan-out only the connection it was
/// proposed for, and nothing once an entering proposed after it is
/// applied.
#[derive(Debug)]
pub(crate) struct Leaving {
    pub room: Arc<str>,
    /// The wall-clock stamp it was proposed with, which no other leaving
    /// of the session's from the room on its way has (see
    /// [`Entering::ts`]).
    pub ts: u64,
    /// The connection it was proposed for: the one that parted, or the
    /// one that closed.
    pub conn: ClientId,
    /// Its number among the session's leavings (see `Session::leavings`).
    pub n: u64,
    /// An entering of the room proposed after it was applied first: the
    /// session is in the room by that one, which this does not undo.
    pub stale: bool,
}

/// A session.
#[derive(Debug)]
pub(crate) struct Session {
    /// Its token, as given in `welcome` (empty for a session restored from
    /// a store until it is resumed: only the hash is stored).
    pub token: String,
    /// The token's hash, by which a `resume` finds the session.
    pub token_hash: crate::server::durable::TokenHash,
    /// The nickname, and its identity and look-alike keys.
    pub nick: std::sync::Arc<str>,
    pub key: String,
    pub skeleton: String,
    /// The connection it is attached to.
    pub conn: Option<ClientId>,
    /// When its connection ended (monotonic ms), while detached.
    pub ended_at: Option<u64>,
    /// Whether a timer for its resume window is armed: at most one is, so
    /// a session detached again and again within its window (a client
    /// reconnecting in a loop) adds no more timers (the one armed arms
    /// itself again for the window's real end, see `Server::detach_timer`).
    pub timer: bool,
    /// Which detaching of the server's this session's latest was (see
    /// `Server::detached`): an older entry for it there is stale.
    pub detach: u64,
    /// The rooms it is in (decided: entered, not yet parted).
    pub rooms: crate::server::ids::StrMap<()>,
    /// Its `enter`s whose presence is not applied yet, in order: what to
    /// answer when it is (even if a `part` came meanwhile: every `enter`
    /// is answered).
    pub entering: VecDeque<Entering>,
    /// Cluster mode: its leavings proposed here and not applied (nor
    /// refused) yet, in order; at most [`MAX_LEAVING_NOTES`].
    pub leaving: VecDeque<Leaving>,
    /// Cluster mode: how many leavings it proposed here, to tell which of
    /// them came before an entering.
    pub leavings: u64,
    /// Its latest message ids.
    pub ids: IdWindow,
    /// Cluster mode: the events its connection proposed and the log has
    /// not handed back yet, and the answers decided meanwhile, which wait
    /// for them so that the connection gets its answers in the order it
    /// sent its frames. An event counts as back when one equal to it
    /// (room, stamp and body) is applied: not one of an earlier
    /// connection's, nor another server's word about the session.
    pub in_flight: VecDeque<OnTheWay>,
    /// Cluster mode: ids of messages resent on this connection while
    /// their first copy was on its way through the log (its seq not known
    /// yet): answered once that copy is applied (its echo) or refused
    /// (`unavailable`), not `duplicate` with a seq no message has; each
    /// with its frame's place among the answers (see `places`): the
    /// answers to later frames wait for it. At most `id_window`, the
    /// oldest dropped.
    pub resent: VecDeque<(String, u64)>,
    /// The place of the next frame's answer among the waiting ones:
    /// each answer that waits, and each event put on its way, takes the
    /// next.
    pub places: u64,
    /// The answers waiting, each with its frame's place, in that order
    /// (an answer for an event on its way goes in at its event's place,
    /// see `Server::answers_after`).
    pub deferred: VecDeque<(u64, crate::server::Step)>,
}

impl Session {
    /// A session named `nick` (with its identity `key` and look-alike
    /// `skeleton`), in no room yet and with nothing on its way: attached
    /// to `conn` (a `join`), or detached since `ended_at` (one a store
    /// restored, its `token` empty until it is resumed).
    pub fn new(
        token: String,
        token_hash: crate::server::durable::TokenHash,
        nick: &str,
        key: String,
        skeleton: String,
        conn: Option<ClientId>,
        ended_at: Option<u64>,
    ) -> Session {
        Session {
            token,
            token_hash,
            nick: std::sync::Arc::from(nick),
            key,
            skeleton,
            conn,
            ended_at,
            detach: 0,
            timer: false,
            rooms: Default::default(),
            entering: Default::default(),
            leaving: Default::default(),
            leavings: 0,
            ids: IdWindow::default(),
            in_flight: Default::default(),
            resent: Default::default(),
            places: 0,
            deferred: Default::default(),
        }
    }
}

/// Cluster mode: an event a connection proposed, on its way through the
/// log, and where an answer for it would go among the waiting ones.
#[derive(Debug)]
pub(crate) struct OnTheWay {
    pub event: Arc<crate::server::event::Event>,
    /// Its frame's place among the session's answers (see
    /// `Session::places`).
    pub place: u64,
}

/// The ids a session used last, each with its message's room, the
/// room's epoch then, and the message's seq.
///
/// An id is kept as a 64-bit hash of it (seeded at random, so a client
/// cannot choose two ids that collide; and a collision could only make
/// one of its own messages taken for a resend of another), not as the
/// string: up to 64 bytes each, 1,024 of them made a session's window
/// about 200 KB, which a client could fill in 20 s and leave behind
/// with its session. The room is the room's own name, shared; its epoch
/// is a hash too. About 90 bytes an id, whatever its length.
///
/// An id stands for its message only while the room has that epoch
/// (see `Server::sent_before`): when the room's history is gone, so is
/// what the id pointed at.
#[derive(Debug, Default)]
pub(crate) struct IdWindow {
    /// The keys, oldest first, with those forgotten left in place (see
    /// `gone`) until they reach the front or the list is compacted.
    order: VecDeque<u64>,
    /// Keyed by the hashes themselves: hashed once, not twice.
    seen: HashMap<u64, Sent, std::hash::BuildHasherDefault<Hashed>>,
    /// Keys forgotten but still in `order`, how many times each: a key's
    /// live place (if it is in `seen`) is always its last in `order`, so
    /// its first places are the forgotten ones. Forgetting is then O(1)
    /// (it was a scan of the window, on the message path), and `order`
    /// is compacted when more than a quarter of it is gone.
    gone: HashMap<u64, u32, std::hash::BuildHasherDefault<Hashed>>,
    /// The sum of `gone`'s counts.
    stale: usize,
    /// Ids of messages refused for what may change (a recipient not
    /// online, a room not entered), oldest first, at most
    /// [`MAX_REFUSED_IDS`]: a resend is refused again, not delivered after
    /// the messages sent after it. Boxed: most sessions have none.
    refused: Option<Box<Refused>>,
    hasher: foldhash::fast::RandomState,
}

/// How many refused message ids a session remembers ([`IdWindow`]): a
/// resend after a reconnect is of the messages the client had not seen
/// answered, a few at a time.
pub(crate) const MAX_REFUSED_IDS: usize = 64;

/// The refused ids' keys with their codes, oldest first.
#[derive(Debug, Default)]
struct Refused {
    order: VecDeque<u64>,
    codes: HashMap<u64, crate::ErrorCode, std::hash::BuildHasherDefault<Hashed>>,
}

/// Where the message that used an id went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sent {
    pub room: Arc<str>,
    /// The room's epoch when the id was remembered, hashed
    /// ([`IdWindow::epoch_key`]).
    pub epoch: u64,
    pub seq: u64,
}

/// The [`IdWindow`]'s keys as they are: they are hashes already.
#[derive(Debug, Default)]
pub(crate) struct Hashed(u64);

impl std::hash::Hasher for Hashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64`s are hashed here; anything else still spreads.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl IdWindow {
    fn key(&self, id: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, id)
    }

    /// `epoch` as [`Sent::epoch`] keeps it.
    pub fn epoch_key(&self, epoch: &str) -> u64 {
        // Told from an id's key by what comes before: an epoch is never
        // looked up among the ids, this only keeps the two apart.
        std::hash::BuildHasher::hash_one(&self.hasher, ("epoch", epoch))
    }

    /// Where the message that used `id` went, if remembered.
    pub fn get(&self, id: &str) -> Option<&Sent> {
        self.seen.get(&self.key(id))
    }

    /// The code a message with `id` was refused with, if remembered
    /// ([`IdWindow::refuse`]).
    pub fn refused(&self, id: &str) -> Option<crate::ErrorCode> {
        let refused = self.refused.as_ref()?;
        refused.codes.get(&self.key(id)).copied()
    }

    /// Remember that the message with `id` was refused with `code`,
    /// forgetting the oldest past [`MAX_REFUSED_IDS`].
    pub fn refuse(&mut self, id: &str, code: crate::ErrorCode) {
        let key = self.key(id);
        let refused = self.refused.get_or_insert_with(Default::default);
        if refused.codes.insert(key, code).is_none() {
            refused.order.push_back(key);
        }
        while refused.order.len() > MAX_REFUSED_IDS {
            if let Some(old) = refused.order.pop_front() {
                refused.codes.remove(&old);
            }
        }
    }

    /// Forget `id` (its message was refused after all, or its room's
    /// history is gone).
    pub fn forget(&mut self, id: &str) {
        let key = self.key(id);
        if self.seen.remove(&key).is_some() {
            *self.gone.entry(key).or_default() += 1;
            self.stale += 1;
            if self.stale > self.seen.len() / 4 + 16 {
                self.compact();
            }
        }
    }

    /// Take the forgotten places out of `order`: O(window), once per
    /// more than a quarter of a window of forgotten ids.
    fn compact(&mut self) {
        let gone = &mut self.gone;
        self.order.retain(|k| match gone.get_mut(k) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        });
        self.gone.clear();
        self.stale = 0;
    }

    /// Take the oldest key out of `order`, and out of `seen` unless that
    /// place was a forgotten one.
    fn pop_oldest(&mut self) {
        let Some(old) = self.order.pop_front() else {
            return;
        };
        if let Some(n) = self.gone.get_mut(&old) {
            *n -= 1;
            if *n == 0 {
                self.gone.remove(&old);
            }
            self.stale -= 1;
        } else {
            self.seen.remove(&old);
        }
    }

    /// The room and seq of each message whose id it remembers, oldest
    /// first (what a detached session's store record keeps).
    pub fn sent(&self) -> Vec<(Arc<str>, u64)> {
        let mut gone = self.gone.clone();
        let mut out = Vec::with_capacity(self.seen.len());
        for key in &self.order {
            if let Some(n) = gone.get_mut(key).filter(|n| **n > 0) {
                *n -= 1;
                continue;
            }
            if let Some(s) = self.seen.get(key) {
                out.push((Arc::clone(&s.room), s.seq));
            }
        }
        out
    }

    /// How many ids it remembers.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }

    /// [`insert`](IdWindow::insert), and one known already moves to the
    /// end, the newest (a restart gives the newest ids again, in the order
    /// they were stamped): its old place is left to be skipped, as a
    /// forgotten id's.
    pub fn insert_newest(&mut self, id: &str, room: &Arc<str>, epoch: &str, seq: u64, cap: usize) {
        let key = self.key(id);
        if self.seen.contains_key(&key) && self.order.back() != Some(&key) {
            // Its old place is left as a forgotten one's is.
            *self.gone.entry(key).or_default() += 1;
            self.stale += 1;
            self.order.push_back(key);
            if self.stale > self.seen.len() / 4 + 16 {
                self.compact();
            }
        }
        self.insert(id, room, epoch, seq, cap);
    }

    /// Remember `id` for the message `seq` of `room`, whose epoch is
    /// `epoch`, forgetting the oldest beyond `cap`.
    pub fn insert(&mut self, id: &str, room: &Arc<str>, epoch: &str, seq: u64, cap: usize) {
        let key = self.key(id);
        let sent = Sent {
            room: Arc::clone(room),
            epoch: self.epoch_key(epoch),
            seq,
        };
        if let Some(known) = self.seen.get_mut(&key) {
            *known = sent;
        } else {
            self.seen.insert(key, sent);
            self.order.push_back(key);
        }
        while self.seen.len() > cap {
            self.pop_oldest();
        }
        // Forgotten places at the front go too (nothing is left behind
        // them once the window empties).
        while self
            .order
            .front()
            .is_some_and(|k| self.gone.contains_key(k))
        {
            self.pop_oldest();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_window_forgets_the_oldest() {
        let mut w = IdWindow::default();
        let lobby: Arc<str> = Arc::from("lobby");
        let at = |w: &IdWindow, id: &str| w.get(id).map(|s| (Arc::clone(&s.room), s.seq));
        for i in 0..5 {
            w.insert(&format!("m{i}"), &lobby, "e1", i, 3);
        }
        assert!(w.get("m0").is_none() && w.get("m1").is_none());
        assert_eq!(at(&w, "m4"), Some((Arc::clone(&lobby), 4)));
        assert_eq!(w.order.len(), 3);
        // Remembered again (a resend applied in a cluster): one entry.
        w.insert("m4", &lobby, "e1", 9, 3);
        assert_eq!(at(&w, "m4"), Some((Arc::clone(&lobby), 9)));
        assert_eq!(w.order.len(), 3);
        w.forget("m3");
        assert!(w.get("m3").is_none());
        assert_eq!(w.len(), 2);
        // Given again as the newest (a restart): the older one goes first.
        w.insert("m5", &lobby, "e1", 5, 3);
        w.insert_newest("m2", &lobby, "e1", 2, 3);
        w.insert_newest("m2", &lobby, "e1", 2, 3);
        w.insert("m6", &lobby, "e1", 6, 3);
        assert!(w.get("m4").is_none(), "the oldest given");
        assert!(w.get("m2").is_some() && w.get("m5").is_some() && w.get("m6").is_some());
        assert_eq!(w.len(), 3);
    }

    /// Forgetting leaves the id's place in the order list, skipped when
    /// it comes to the front: an id forgotten and remembered again is the
    /// newest (its old place does not take its new entry out), the window
    /// still keeps `cap` ids, and the list stays within a bound however
    /// many are forgotten.
    #[test]
    fn a_forgotten_id_leaves_its_place_to_be_skipped() {
        let mut w = IdWindow::default();
        let lobby: Arc<str> = Arc::from("lobby");
        for i in 0..4 {
            w.insert(&format!("m{i}"), &lobby, "e1", i, 4);
        }
        // m0 forgotten and sent again: the newest, not the oldest.
        w.forget("m0");
        assert!(w.get("m0").is_none());
        assert_eq!(w.len(), 3);
        w.insert("m0", &lobby, "e2", 10, 4);
        assert_eq!(w.len(), 4);
        // m1 goes first; m0's old place (now at the front) is skipped and
        // does not take its new entry with it.
        w.insert("m4", &lobby, "e2", 11, 4);
        assert!(w.get("m1").is_none());
        assert_eq!(w.get("m0").map(|s| s.seq), Some(10));
        w.insert("m5", &lobby, "e2", 12, 4);
        w.insert("m6", &lobby, "e2", 13, 4);
        assert!(w.get("m2").is_none() && w.get("m3").is_none());
        assert_eq!(w.get("m0").map(|s| s.seq), Some(10), "four newest kept");
        assert_eq!(w.len(), 4);
        w.insert("m7", &lobby, "e2", 14, 4);
        assert!(w.get("m0").is_none(), "now the oldest, it goes");
        // Forgotten twice, given again as the newest at a restart.
        w.forget("m5");
        w.insert("m5", &lobby, "e2", 15, 4);
        w.forget("m5");
        w.insert("m5", &lobby, "e2", 16, 4);
        w.insert_newest("m5", &lobby, "e2", 16, 4);
        assert_eq!(w.len(), 4);
        for i in 8..11 {
            w.insert(&format!("m{i}"), &lobby, "e2", i, 4);
        }
        assert_eq!(
            w.get("m5").map(|s| s.seq),
            Some(16),
            "still the newest but three"
        );
        // Forgotten and remembered over and over: the list stays bounded.
        for round in 0..10_000u64 {
            let id = format!("r{}", round % 3);
            w.forget(&id);
            w.insert(&id, &lobby, "e2", 100 + round, 4);
            assert!(w.order.len() <= 4 + 4 / 4 + 17, "{}", w.order.len());
        }
        assert_eq!(w.len(), 4);
        assert!(w.get("r0").is_some() && w.get("r1").is_some() && w.get("r2").is_some());
        assert_eq!(w.order.len(), w.len() + w.stale);
        // Everything forgotten: nothing kept, and the list empties as new
        // ids come.
        for id in ["m10", "r0", "r1", "r2"] {
            w.forget(id);
        }
        assert_eq!(w.len(), 0);
        for i in 0..8 {
            w.insert(&format!("n{i}"), &lobby, "e2", 200 + i, 4);
        }
        assert_eq!(w.len(), 4);
        assert_eq!(
            w.order.len(),
            4,
            "the forgotten places went with the oldest"
        );
        assert!(w.gone.is_empty() && w.stale == 0);
    }

    /// What the type's "about 90 bytes an id" counts on: a map entry is
    /// the id's hash and its `Sent`, 40 bytes (a full window has about
    /// two buckets an id), and each id is 8 bytes more in `order`.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn an_entry_is_forty_bytes() {
        assert_eq!(std::mem::size_of::<(u64, Sent)>(), 40);
    }

    // IdWindow against a simple model (a reviewer's test).
    mod model {
        use super::*;
        use proptest::prelude::*;
        use std::collections::{HashMap as Map, VecDeque};

        #[derive(Debug, Clone)]
        enum Op {
            Insert(u8),
            InsertNewest(u8),
            Forget(u8),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                3 => (0u8..24).prop_map(Op::Insert),
                1 => (0u8..24).prop_map(Op::InsertNewest),
                2 => (0u8..24).prop_map(Op::Forget),
            ]
        }

        #[derive(Default)]
        struct Model {
            order: VecDeque<String>,
            seen: Map<String, u64>,
        }
        impl Model {
            fn insert(&mut self, id: &str, seq: u64, cap: usize) {
                if let Some(s) = self.seen.get_mut(id) {
                    *s = seq;
                } else {
                    self.seen.insert(id.to_owned(), seq);
                    self.order.push_back(id.to_owned());
                }
                while self.order.len() > cap {
                    let old = self.order.pop_front().unwrap();
                    self.seen.remove(&old);
                }
            }
            fn insert_newest(&mut self, id: &str, seq: u64, cap: usize) {
                if self.seen.contains_key(id) {
                    self.order.retain(|k| k != id);
                    self.order.push_back(id.to_owned());
                }
                self.insert(id, seq, cap);
            }
            fn forget(&mut self, id: &str) {
                if self.seen.remove(id).is_some() {
                    self.order.retain(|k| k != id);
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]
            #[test]
            fn id_window_matches_a_model(cap in 1usize..8, ops in proptest::collection::vec(op(), 0..400)) {
                let lobby: Arc<str> = Arc::from("lobby");
                let mut w = IdWindow::default();
                let mut m = Model::default();
                for (seq, o) in ops.iter().enumerate() {
                    let seq = seq as u64;
                    match o {
                        Op::Insert(i) => { let id = format!("m{i}"); w.insert(&id, &lobby, "e", seq, cap); m.insert(&id, seq, cap); }
                        Op::InsertNewest(i) => { let id = format!("m{i}"); w.insert_newest(&id, &lobby, "e", seq, cap); m.insert_newest(&id, seq, cap); }
                        Op::Forget(i) => { let id = format!("m{i}"); w.forget(&id); m.forget(&id); }
                    }
                    for i in 0..24u8 {
                        let id = format!("m{i}");
                        prop_assert_eq!(w.get(&id).map(|s| s.seq), m.seen.get(&id).copied(), "id {} after {:?}", id, o);
                    }
                    prop_assert_eq!(w.len(), m.seen.len());
                    let want: Vec<u64> = m.order.iter().map(|k| m.seen[k]).collect();
                    let got: Vec<u64> = w.sent().into_iter().map(|(_, s)| s).collect();
                    prop_assert_eq!(got, want, "sent() order");
                    prop_assert_eq!(w.order.len(), w.seen.len() + w.stale);
                    prop_assert_eq!(w.stale, w.gone.values().map(|n| *n as usize).sum::<usize>());
                    prop_assert!(w.stale <= w.seen.len() / 4 + 17);
                }
            }
        }
    }
}
