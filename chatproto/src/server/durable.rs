//! Durability: what the shell must store before the outputs after it go
//! out, what to do when the store fails, and starting again from a store.
//!
//! With [`ServerConfig::durable`](crate::ServerConfig::durable) set, every
//! stamped event, every new session and every new room becomes a
//! [`Record`]. `poll` hands the records out in one [`Output::Persist`]
//! (the shell writes them in one transaction) and then holds every output
//! decided after them until [`Server::handle_persisted`] says they are
//! stored: no message a client saw acknowledged can be lost by killing
//! the server. (While the store fails, messages are refused, but
//! presence and new sessions go on unstored: see
//! [`Server::handle_store_recovered`].)

use std::collections::VecDeque;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::frame::{ErrorCode, ServerFrame};
use crate::server::event::{Event, EventBody, SessionId};
use crate::server::room::Room;
use crate::server::session::{OnTheWay, Session};
use crate::server::{ClientId, Now, Server, Step};

/// A session token as it is stored: its SHA-256, never the token itself.
pub type TokenHash = [u8; 32];

/// The stored form of a session token.
pub fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Why [`Server::restore_room`], [`Server::restore_unloaded_room`] or
/// [`Server::restore_session`] restored nothing. The server is as it was
/// before the call; a shell restoring from its store can say so and go on
/// with the rest (chatserver logs a warning).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The room's name is not one a client could give
    /// ([`room_name`](crate::room_name) refuses it: empty, longer than
    /// [`MAX_ROOM_LEN`](crate::MAX_ROOM_LEN), or with a character other
    /// than `a-z 0-9 - _ .`).
    #[error("room {name:?} was not restored: its name is not one a client could give ({why})")]
    #[non_exhaustive]
    RoomName {
        /// The name as given.
        name: String,
        /// What [`room_name`](crate::room_name) said of it.
        why: String,
    },
    /// The room's `last_seq` is 2^62 or more: no store gets there, and the
    /// room's seqs would run out (a damaged or hand-edited store).
    #[error("room {room} was not restored: its last seq {last_seq} is 2^62 or more, which no store reaches (its seqs would run out)")]
    #[non_exhaustive]
    SeqTooHigh {
        /// The room's canonical name.
        room: String,
        /// The seq given.
        last_seq: u64,
    },
    /// Someone is in the room (a client entered it before it was restored):
    /// restoring it over them would leave them out of its fan-out. Restore
    /// rooms before connections enter.
    #[error("room {room} was not restored: clients are in it already; restore rooms before accepting connections")]
    #[non_exhaustive]
    RoomInUse {
        /// The room's canonical name.
        room: String,
    },
    /// The room's `recent` events are not in seq order, oldest first and
    /// each once ([`Server::restore_room`] only): a damaged store, or one
    /// read in another order. Served so, a replay would go back in seq,
    /// and a client drops every event at or below the last seq it saw.
    #[error("room {room} was not restored: its recent events are not in seq order, oldest first and each once (seq {seq} came after {after})")]
    #[non_exhaustive]
    RecentOutOfOrder {
        /// The room's canonical name.
        room: String,
        /// The first event's seq that is not above the one before it.
        seq: u64,
        /// The seq of the event before it.
        after: u64,
    },
    /// The room is loaded already ([`Server::restore_unloaded_room`]
    /// only: it leaves a room in memory as it is).
    #[error("room {room} was not restored unloaded: it is loaded already")]
    #[non_exhaustive]
    RoomLoaded {
        /// The room's canonical name.
        room: String,
    },
    /// The session's nickname is not one a client could join with under
    /// the server's [`nick_rule`](crate::ServerConfig::nick_rule).
    #[error("session {id} was not restored: its nickname {nick:?} is not one a client could join with ({why})")]
    #[non_exhaustive]
    Nick {
        /// The session.
        id: SessionId,
        /// The nickname as given.
        nick: String,
        /// Why the rule refuses it.
        why: crate::NickError,
    },
    /// The session's id is `u64::MAX`, which leaves no id above it for
    /// new sessions.
    #[error("session {id} was not restored: its id is the highest there is, which would leave none for new sessions")]
    #[non_exhaustive]
    LastSessionId {
        /// The session.
        id: SessionId,
    },
    /// A session with this id is known already: live here, or restored
    /// before (a store holding two sessions under one id, or a session
    /// restored again). The one known is left as it is.
    #[error("session {id} was not restored: a session with that id is known already")]
    #[non_exhaustive]
    SessionKnown {
        /// The session.
        id: SessionId,
    },
    /// The session's token is known already, as another session's (`holder`).
    #[error("session {id} was not restored: its token is session {holder}'s already")]
    #[non_exhaustive]
    TokenKnown {
        /// The session given.
        id: SessionId,
        /// The session the token belongs to.
        holder: SessionId,
    },
}

impl RestoreError {
    /// The canonical name of a room to restore whose last seq is
    /// `last_seq`, or why it cannot be restored
    /// ([`RoomName`](RestoreError::RoomName),
    /// [`SeqTooHigh`](RestoreError::SeqTooHigh)).
    pub(crate) fn check_room(name: &str, last_seq: u64) -> Result<String, RestoreError> {
        let name = crate::room_name(name).map_err(|why| RestoreError::RoomName {
            name: name.to_owned(),
            why,
        })?;
        if last_seq >= crate::server::SEQ_LIMIT {
            return Err(RestoreError::SeqTooHigh {
                room: name,
                last_seq,
            });
        }
        Ok(name)
    }
}

/// What a durable server asks its shell to store, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Record {
    /// A room began (or began again, after it was forgotten: a new
    /// `epoch`, whose history replaces the old one).
    #[non_exhaustive]
    Room {
        /// The canonical name.
        name: Arc<str>,
        /// Its epoch.
        epoch: String,
        /// The highest seq the room has given out so far (0 for a room
        /// that just began): the store's last seq of the room is raised
        /// to it, so that after a restart the room goes on above every
        /// seq a client may have seen, stored or not (presence changes
        /// go ahead unstored while the store fails).
        seq: u64,
    },
    /// A session began; resuming it after a restart needs this.
    #[non_exhaustive]
    Session {
        /// Its id, which stored events name.
        id: SessionId,
        /// The nickname it joined as.
        nick: Arc<str>,
        /// Its token's hash.
        token: TokenHash,
    },
    /// A stamped event.
    Event(Arc<Event>),
    /// A session was resumed (`attached`) or lost its connection: the
    /// store keeps the sessions last active, and never forgets one that
    /// is attached, so a session resumed long ago and still connected can
    /// be resumed after a restart.
    #[non_exhaustive]
    Attached {
        /// The session.
        id: SessionId,
        /// Whether it has a connection now.
        attached: bool,
        /// When it lost its connection (`attached` false; empty when
        /// true): the room and seq of each message whose id it remembers
        /// (its newest [`id_window`](crate::ServerConfig::id_window)),
        /// oldest first. A restarted server gives these ids back
        /// ([`Server::restore_message_ids`]): they are the messages the
        /// session may send again, whatever the room and however many
        /// messages came after, and it sends none while detached.
        sent: Vec<(Arc<str>, u64)>,
    },
    /// A room was forgotten (nobody in it, at the cap of rooms; or, when
    /// rooms rest in the store unloaded, the one unloaded longest ago past
    /// [`max_stored_rooms`](crate::ServerConfig::max_stored_rooms)): its
    /// history goes with it, so that the store holds no more rooms than
    /// the server keeps. Entering it again begins it with a new epoch.
    #[non_exhaustive]
    Forgotten {
        /// The canonical name.
        name: Arc<str>,
        /// Whether it held a message: its history may be missed (a shell
        /// tells the operator of those; a room where only presence came
        /// to pass loses nothing anyone reads).
        said: bool,
    },
    /// A session can no longer be resumed (its resume window passed, or
    /// more sessions waited than
    /// [`max_detached_sessions`](crate::ServerConfig::max_detached_sessions)):
    /// the store forgets it too, so that a restarted server does not
    /// bring it back. Its id stays taken.
    #[non_exhaustive]
    SessionForgotten {
        /// The session.
        id: SessionId,
    },
    /// The sessions the core holds, all of them, in increasing order: the
    /// store forgets every other (their ids stay taken). Handed out when
    /// the store works again after failing, so that a session forgotten
    /// meanwhile (whose [`SessionForgotten`](Record::SessionForgotten)
    /// was never stored) is not brought back by a restart.
    #[non_exhaustive]
    SessionsKept {
        /// Their ids, in increasing order.
        ids: Vec<SessionId>,
    },
}

impl Record {
    /// A room began, with `epoch`.
    pub fn room(name: impl Into<Arc<str>>, epoch: impl Into<String>) -> Self {
        Record::room_at(name, epoch, 0)
    }

    /// A room of `epoch` that has given out seqs up to `seq`: the store
    /// keeps its last seq at least that high.
    pub fn room_at(name: impl Into<Arc<str>>, epoch: impl Into<String>, seq: u64) -> Self {
        Record::Room {
            name: name.into(),
            epoch: epoch.into(),
            seq,
        }
    }

    /// A room was forgotten, its history with it (taken to have held a
    /// message).
    pub fn forgotten(name: impl Into<Arc<str>>) -> Self {
        Record::Forgotten {
            name: name.into(),
            said: true,
        }
    }

    /// The session `id` was resumed (`attached`) or lost its connection.
    pub fn attached(id: SessionId, attached: bool) -> Self {
        Record::Attached {
            id,
            attached,
            sent: Vec::new(),
        }
    }

    /// The session `id` lost its connection; `sent`: the room and seq of
    /// each message whose id it remembers, oldest first (see
    /// [`Record::Attached`]).
    pub fn detached(id: SessionId, sent: Vec<(Arc<str>, u64)>) -> Self {
        Record::Attached {
            id,
            attached: false,
            sent,
        }
    }

    /// The session `id` can no longer be resumed.
    pub fn session_forgotten(id: SessionId) -> Self {
        Record::SessionForgotten { id }
    }

    /// The sessions held are `ids` (in increasing order), no other.
    pub fn sessions_kept(ids: Vec<SessionId>) -> Self {
        Record::SessionsKept { ids }
    }

    /// A session began: its id, its nickname and its token's hash.
    pub fn session(id: SessionId, nick: impl Into<Arc<str>>, token: TokenHash) -> Self {
        Record::Session {
            id,
            nick: nick.into(),
            token,
        }
    }
}

/// The durable side of the server's state.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// Records not handed out yet.
    pub records: Vec<Record>,
    /// Tickets given so far: one for each record that holds outputs back,
    /// one for each `Forgotten` record, and one for each batch of them
    /// handed out again once the store recovers (those hold nothing).
    pub issued: u64,
    /// Every ticket up to this one is stored.
    pub stored: u64,
    /// A barrier is queued for records not handed out yet: a later record
    /// goes out in the same batch (handed out whole, stored at once), so
    /// the outputs after it wait behind that barrier, and need no other.
    pub open: bool,
    /// Why the store is failing, while it is.
    pub down: Option<String>,
    /// The failure lasts until the server restarts (see
    /// [`Server::handle_persist_failed_until_restart`]).
    pub until_restart: bool,
    /// Rooms forgotten whose `Forgotten` record is handed out but not yet
    /// stored, with the ticket that says it is, and whether they held a
    /// message.
    pub forgetting: Vec<(u64, Arc<str>, bool)>,
    /// Rooms forgotten while the store failed, or whose record was lost
    /// with a failed batch: handed out when it works again (oldest first,
    /// each once, at most `max_rooms` or `max_stored_rooms` of them,
    /// whichever is more).
    pub forget_later: VecDeque<Arc<str>>,
    /// The names in `forget_later`, each with whether it held a message.
    pub forget_later_names: std::collections::HashMap<Arc<str>, bool, foldhash::fast::RandomState>,
}

impl Server {
    /// Queue a stamped event to be applied: behind a store ticket when
    /// durable and the store works.
    pub(crate) fn queue_event(&mut self, event: Event) {
        let event = Arc::new(event);
        if self.config.cluster {
            // The log numbers it and hands it back to be applied; its
            // session's later answers wait for it.
            if let Some(s) = self.sessions.get_mut(&event.session()) {
                if s.conn.is_some() {
                    s.in_flight.push_back(OnTheWay {
                        event: Arc::clone(&event),
                        place: s.places,
                    });
                    s.places += 1;
                }
            }
            self.proposed.push(event);
            return;
        }
        if self.config.durable && self.gate.down.is_none() {
            self.gate.records.push(Record::Event(Arc::clone(&event)));
            self.hold();
        }
        self.steps.push_back(Step::Apply(event));
    }

    /// Hold every later output until the records so far are stored.
    fn hold(&mut self) {
        self.gate.issued += 1;
        if !self.gate.open {
            self.gate.open = true;
            self.steps.push_back(Step::Barrier(self.gate.issued));
        }
    }

    /// A room was created: its epoch must be stored before its events.
    pub(crate) fn record_room(&mut self, room: &Room) {
        if self.config.durable && !self.config.cluster && self.gate.down.is_none() {
            // Its events follow in this batch: they are above nothing yet.
            self.gate.records.push(Record::room_at(
                Arc::clone(&room.name),
                room.epoch.clone(),
                0,
            ));
        }
    }

    /// A room was forgotten (see [`Record::Forgotten`]): the store forgets
    /// it too.
    /// While the store fails (and when the batch that held it fails), the
    /// room is kept to be forgotten once the store works again (see
    /// `forget_later`). `said`: whether it held a message.
    pub(crate) fn record_forgotten(&mut self, name: Arc<str>, said: bool) {
        if self.config.cluster {
            return;
        }
        if !self.config.durable {
            // Its history is gone with it: the shell may say so.
            if said {
                self.steps.push_back(Step::Forgotten(name));
            }
            return;
        }
        if self.gate.down.is_some() {
            self.forget_later(name, said);
            return;
        }
        self.gate.records.push(Record::Forgotten {
            name: Arc::clone(&name),
            said,
        });
        let ticket = self.ticket();
        self.gate.forgetting.push((ticket, name, said));
    }

    /// A session can no longer be resumed: the store forgets it too (see
    /// [`Record::SessionForgotten`]). While the store fails nothing is
    /// kept for it: when the store works again it is told every session
    /// held ([`Record::SessionsKept`]), which covers this one and any
    /// whose record went with a failed batch. Not in a cluster, whose
    /// sessions expire in its own buckets.
    pub(crate) fn record_session_forgotten(&mut self, sid: SessionId) {
        if !self.config.durable || self.config.cluster || self.gate.down.is_some() {
            return;
        }
        self.gate.records.push(Record::session_forgotten(sid));
    }

    /// A ticket for records that hold nothing back (no barrier): stored
    /// once the store answers a `through` at or past it.
    pub(crate) fn ticket(&mut self) -> u64 {
        self.gate.issued += 1;
        self.gate.issued
    }

    /// Keep `name` to be forgotten by the store once it works again: once
    /// (forgetting it deletes whatever the store holds of it), and no
    /// more names than the store may keep rooms. A name given up stays in
    /// the store with the seqs it knows, and a restarted server may take
    /// its room up again from there: the more names kept, the rarer. In
    /// memory only, the oldest given up first.
    fn forget_later(&mut self, name: Arc<str>, said: bool) {
        let gate = &mut self.gate;
        if let Some(held) = gate.forget_later_names.get_mut(&name) {
            *held |= said;
            return;
        }
        gate.forget_later_names.insert(Arc::clone(&name), said);
        let most = self
            .config
            .max_rooms
            .max(self.config.max_stored_rooms)
            .max(1);
        if gate.forget_later.len() >= most {
            if let Some(old) = gate.forget_later.pop_front() {
                gate.forget_later_names.remove(&old);
            }
        }
        gate.forget_later.push_back(name);
    }

    /// A session was created: stored before its `welcome` goes out, so the
    /// token in it can resume the session after a restart.
    pub(crate) fn record_session(&mut self, sid: SessionId) {
        if !self.config.durable || self.gate.down.is_some() {
            return;
        }
        let s = &self.sessions[&sid];
        self.gate.records.push(Record::Session {
            id: sid,
            nick: s.nick.clone(),
            token: hash_token(&s.token),
        });
        self.hold();
    }

    /// A session was resumed (`attached`) or lost its connection: the
    /// store ranks sessions by when they were last active. Nothing waits
    /// for it (a restart loses at most this ranking). Not in a cluster,
    /// whose sessions expire in its own buckets.
    pub(crate) fn record_attached(&mut self, sid: SessionId, attached: bool) {
        if self.config.durable && !self.config.cluster && self.gate.down.is_none() {
            let record = self.attached_record(sid, attached);
            self.gate.records.push(record);
        }
    }

    /// `sid` attached, or detached with the messages whose ids it
    /// remembers (what a restart gives back to it).
    fn attached_record(&self, sid: SessionId, attached: bool) -> Record {
        match self.sessions.get(&sid) {
            Some(s) if !attached => Record::detached(sid, s.ids.sent()),
            _ => Record::attached(sid, attached),
        }
    }

    /// The records handed out with the `through` ticket, and all before,
    /// are stored: what they held back may go.
    pub fn handle_persisted(&mut self, through: u64) {
        self.gate.stored = self.gate.stored.max(through.min(self.gate.issued));
        let stored = self.gate.stored;
        self.gate.forgetting.retain(|(ticket, ..)| *ticket > stored);
    }

    /// Storing the records handed out failed with `cause` (the disk is
    /// full, say). Every record not stored yet is given up, the ones
    /// handed out and the ones not: their messages are refused with
    /// `unavailable` (their seqs go to the next events, so a room's seqs
    /// stay gapless), their presence changes go ahead unstored. Until
    /// [`handle_store_recovered`](Server::handle_store_recovered), new
    /// messages are refused with `unavailable` and the rest of the server
    /// (presence, history from memory, pings) works unstored.
    pub fn handle_persist_failed(&mut self, cause: &str) {
        if !self.config.durable {
            return;
        }
        self.gate.down = Some(cause.to_owned());
        self.gate.records.clear();
        self.gate.open = false;
        // Batches reported stored before this one failed keep their events.
        let stored_before = self.gate.stored;
        // Unloaded rooms whose last seqs may have gone with it.
        self.unloaded.failed(stored_before);
        self.gate.stored = self.gate.issued;
        // Rooms whose forgetting was lost with the batch: again later.
        for (_, name, said) in std::mem::take(&mut self.gate.forgetting) {
            self.forget_later(name, said);
        }
        if self.config.cluster {
            // Only sessions are stored here; events are the log's.
            return;
        }
        // Renumber what is left, room by room, from the last applied seq
        // (nothing stamped after it was seen by anyone) or the last stored
        // one still to apply.
        for r in self.rooms.values_mut() {
            r.next_seq = r.seq + 1;
        }
        // A room whose last events were given up may be empty now, unused.
        for r in self.rooms.values().filter(|r| r.is_empty()) {
            self.order.emptied(r);
        }
        let message = self.fit(self.refusal_text(cause));
        let refusal = |id: &Option<String>, room: &str| ServerFrame::Error {
            code: ErrorCode::Unavailable,
            message: message.clone(),
            id: id.clone(),
            room: Some(room.to_owned()),
            seq: None,
        };
        // Messages refused, by session and id: a `duplicate` already
        // queued for a resend of one is a refusal now.
        let mut refused: Vec<(SessionId, String)> = Vec::new();
        // Steps ahead of the first barrier were released: stored.
        let mut stored = true;
        // Connections whose `welcome` is queued ahead of the step at hand:
        // a refusal after it goes out after it.
        let mut welcome_ahead: Vec<ClientId> = Vec::new();
        let steps = std::mem::take(&mut self.steps);
        for step in steps {
            if let Step::Welcome { client, .. } = &step {
                welcome_ahead.push(*client);
            }
            let step = match step {
                Step::Barrier(ticket) => {
                    stored = ticket <= stored_before;
                    continue;
                }
                Step::Apply(event) if stored => {
                    if let Some(r) = self.rooms.get_mut(&*event.room) {
                        r.next_seq = r.next_seq.max(event.seq + 1);
                    }
                    Step::Apply(event)
                }
                Step::Apply(event) if !event.is_msg() => {
                    let Some(r) = self.rooms.get_mut(&*event.room) else {
                        continue;
                    };
                    let mut e = Event::clone(&event);
                    e.seq = r.next_seq;
                    r.next_seq += 1;
                    Step::Apply(Arc::new(e))
                }
                Step::Apply(event) => {
                    let EventBody::Msg { from, id, .. } = &event.body else {
                        continue;
                    };
                    let Some(s) = self.sessions.get_mut(from) else {
                        continue;
                    };
                    // Its id is free again, whoever is connected now: a
                    // resend is taken, not answered `duplicate`.
                    if let Some(id) = id {
                        s.ids.forget(id);
                        refused.push((*from, id.clone()));
                    }
                    // Told only to a connection that has its `welcome`,
                    // or whose welcome is queued ahead (its join and this
                    // message came in one batch): a resume's new one,
                    // whose welcome is queued after this, resends the
                    // message itself.
                    let to = s.conn.filter(|c| {
                        self.conns.get(c).is_some_and(|k| k.welcomed) || welcome_ahead.contains(c)
                    });
                    let Some(to) = to else {
                        continue;
                    };
                    Step::Send(to, refusal(id, &event.room))
                }
                Step::Send(
                    to,
                    ServerFrame::Error {
                        code,
                        id: Some(id),
                        room: Some(room),
                        ..
                    },
                ) if code == ErrorCode::Duplicate
                    && self
                        .conns
                        .get(&to)
                        .and_then(|c| c.session)
                        .is_some_and(|sid| refused.iter().any(|(s, i)| *s == sid && *i == id)) =>
                {
                    Step::Send(to, refusal(&Some(id), &room))
                }
                other => other,
            };
            self.steps.push_back(step);
        }
    }

    /// Storing failed with `cause` and will not work again in this run
    /// (the database file was deleted under the server, say): as
    /// [`handle_persist_failed`](Server::handle_persist_failed), but a
    /// refused message is told that the server takes none until it is
    /// restarted, not to try again later. Called while the store fails
    /// already (for another cause, one that would have mended), it only
    /// changes what refused messages are told. The shell promises, by
    /// calling it, not to call
    /// [`handle_store_recovered`](Server::handle_store_recovered) again in
    /// this run (if it does, that ends this failure as it ends any, and
    /// what the refused were told was untrue).
    pub fn handle_persist_failed_until_restart(&mut self, cause: &str) {
        if !self.config.durable {
            return;
        }
        self.gate.until_restart = true;
        if self.gate.down.is_some() {
            self.gate.down = Some(cause.to_owned());
        } else {
            self.handle_persist_failed(cause);
        }
    }

    /// The store works again: messages are taken again, the rooms
    /// forgotten meanwhile are forgotten by the store, and every room and
    /// session is handed out to be stored (again: storing is idempotent),
    /// so that what began while it failed can be resumed after a restart.
    /// Each room goes with the highest seq it gave out: the presence
    /// changes applied unstored meanwhile were seen with their seqs, and a
    /// restarted server must not give those seqs to other events (a
    /// client that saw them would resume past those events).
    pub fn handle_store_recovered(&mut self) {
        if self.gate.down.take().is_none() {
            return;
        }
        self.gate.until_restart = false;
        // The batch handed out now has a ticket of its own: a failure
        // before it is stored tells what it held again (rooms in memory
        // are told at every recovery; see `Unloaded::failed` for those
        // resting in the store).
        let ticket = self.ticket();
        // Before the rooms: a room forgotten and begun again meanwhile is
        // forgotten by the store, then begun with its new epoch.
        let later = std::mem::take(&mut self.gate.forget_later);
        let mut said_of = std::mem::take(&mut self.gate.forget_later_names);
        for name in later {
            let said = said_of.remove(&name).unwrap_or(true);
            self.gate.records.push(Record::Forgotten {
                name: Arc::clone(&name),
                said,
            });
            self.gate.forgetting.push((ticket, name, said));
        }
        let mut names: Vec<_> = self.rooms.keys().cloned().collect();
        names.sort_unstable();
        for name in names {
            let r = &self.rooms[&name];
            // A cluster's seqs are its log's, not this store's.
            let seq = if self.config.cluster {
                0
            } else {
                r.next_seq - 1
            };
            self.gate
                .records
                .push(Record::room_at(Arc::clone(&r.name), r.epoch.clone(), seq));
        }
        // And those unloaded meanwhile (the store may not know them).
        let unloaded = self.unloaded_unstored(ticket);
        self.gate.records.extend(unloaded);
        if !self.config.cluster {
            // Every session held, so that the store forgets those
            // forgotten meanwhile (their records were not stored).
            let mut held: Vec<SessionId> = self.sessions.keys().copied().collect();
            held.sort_unstable();
            self.gate.records.push(Record::sessions_kept(held));
        }
        let mut ids: Vec<_> = self
            .sessions
            .iter()
            .filter(|(_, s)| !s.token.is_empty())
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        for sid in ids {
            let s = &self.sessions[&sid];
            self.gate.records.push(Record::Session {
                id: sid,
                nick: s.nick.clone(),
                token: hash_token(&s.token),
            });
        }
        // Who is connected now: comings and goings meanwhile were not
        // stored (a cluster's sessions are not ranked).
        if !self.config.cluster {
            let mut all: Vec<_> = self.sessions.keys().copied().collect();
            all.sort_unstable();
            for sid in all {
                let attached = self.sessions[&sid].conn.is_some();
                let record = self.attached_record(sid, attached);
                self.gate.records.push(record);
            }
        }
    }

    /// Why the store is failing, while it is (see
    /// [`handle_persist_failed`](Server::handle_persist_failed)).
    pub fn store_failure(&self) -> Option<&str> {
        self.gate.down.as_deref()
    }

    /// The answer to a `msg` while the store is failing.
    pub(crate) fn unavailable(&self) -> Option<String> {
        let cause = self.gate.down.as_deref()?;
        Some(self.refusal_text(cause))
    }

    /// What a message refused for the store's failure `cause` is told:
    /// to try again later, unless only a restart mends it.
    fn refusal_text(&self, cause: &str) -> String {
        if self.gate.until_restart {
            format!(
                "the server cannot store messages ({cause}); your message was not sent, and none \
                 will be until the server is restarted"
            )
        } else {
            format!(
                "the server cannot store messages right now ({cause}); your message was not sent; try again later"
            )
        }
    }

    /// Start again from a store: a room as it was, with the seq of its last
    /// stored event and its newest events (oldest first) for the memory
    /// window (all of them if there are fewer than
    /// [`history_per_room`](crate::ServerConfig::history_per_room)).
    /// `oldest` is the seq of its oldest stored event. Call before
    /// any connection; the next event of the room gets `last_seq + 1`.
    /// Restore rooms from the least to the most recently active: a room
    /// restored later counts as used later, so at the cap of rooms the
    /// earliest restored is forgotten first among those alike (a room
    /// restored with no message in `recent` goes before any that has
    /// one, see [`ServerConfig::max_rooms`](crate::ServerConfig::max_rooms)). The name is folded as
    /// clients' are ([`room_name`](crate::room_name)); a name no client
    /// could give, or a `last_seq` of 2^62 or more (no store gets there;
    /// the room's seqs would run out), restores nothing; so does a room
    /// someone is in (restore before connections enter), and so does a
    /// `recent` not in seq order, oldest first and each once (a damaged
    /// store: its replays would go back in seq): the error says
    /// which ([`RestoreError::RoomName`], [`RestoreError::SeqTooHigh`],
    /// [`RestoreError::RoomInUse`], [`RestoreError::RecentOutOfOrder`]),
    /// and the server is as it was. A room
    /// restored again replaces what was restored before.
    pub fn restore_room(
        &mut self,
        name: &str,
        epoch: &str,
        last_seq: u64,
        oldest: u64,
        recent: Vec<Event>,
    ) -> Result<(), RestoreError> {
        let name = RestoreError::check_room(name, last_seq)?;
        // Every event given, also those passed over below: a run out of
        // order is a store that cannot be trusted with the rest either.
        if let Some(w) = recent.windows(2).find(|w| w[1].seq <= w[0].seq) {
            return Err(RestoreError::RecentOutOfOrder {
                room: name,
                seq: w[1].seq,
                after: w[0].seq,
            });
        }
        // Its members would stay in it by their sessions, but not in its
        // fan-out: their messages would reach no one.
        if self.rooms.get(&name).is_some_and(|r| !r.members.is_empty()) {
            return Err(RestoreError::RoomInUse { room: name });
        }
        if let Some(before) = self.rooms.remove(&name) {
            self.history_bytes -= before.history_bytes;
        }
        self.unloaded.take(&name);
        let name: Arc<str> = Arc::from(name);
        let mut room = Room::new(Arc::clone(&name), epoch.to_owned());
        self.applied += 1;
        room.touched = self.applied;
        room.seq = last_seq;
        room.next_seq = last_seq + 1;
        room.history_start = oldest.clamp(1, last_seq + 1);
        room.stored_from = room.history_start;
        let (cap, per_room) = (
            self.config.history_per_room,
            self.config.history_bytes_per_room,
        );
        let recent: Vec<Event> = recent
            .into_iter()
            // A message below `oldest` (stamped in the future, kept by
            // retention past where history starts) is not served.
            .filter(|e| e.seq <= last_seq && e.seq >= oldest && e.is_msg())
            .collect();
        // Fewer than memory keeps: the store had no older message, so memory
        // holds the room's whole history from `oldest` on.
        let whole = recent.len() < cap;
        for e in recent {
            let mut e = e;
            e.room = Arc::clone(&name);
            let e = Arc::new(e);
            if let EventBody::Msg {
                from, id: Some(id), ..
            } = &e.body
            {
                if let Some(s) = self.sessions.get_mut(from) {
                    s.ids.insert(id, &name, epoch, e.seq, self.config.id_window);
                }
            }
            if room.history.is_empty() && !whole {
                room.history_start = e.seq;
            }
            self.history_bytes += crate::server::room::event_bytes(&e);
            let freed = room.remember(e, cap, per_room);
            self.history_bytes -= freed;
        }
        self.rooms.insert(name.to_string(), room);
        self.note_used(&name);
        Ok(())
    }

    /// Start again from a store: a session that may be resumed for one
    /// resume window from `now`. Restore sessions before rooms, so that
    /// their latest message ids are known again (a client resending a
    /// message the server stored before it stopped gets `duplicate`).
    /// New sessions are numbered above it, except with
    /// [`ServerConfig::cluster`](crate::ServerConfig::cluster), where
    /// [`Server::reserve_sessions`] gives each server a block of its own
    /// and a session restored from another server's block (resumed here)
    /// leaves this one's numbering where it was: moved into that block,
    /// it would give new sessions the ids the other server gives its own.
    /// A nickname no client could join with, the id `u64::MAX` (no id
    /// above it for new sessions), or an id or token known already (a
    /// session live here, or restored before) restores nothing: the error
    /// says which ([`RestoreError::Nick`], [`RestoreError::LastSessionId`],
    /// [`RestoreError::SessionKnown`], [`RestoreError::TokenKnown`]), and
    /// the server is as it was.
    pub fn restore_session(
        &mut self,
        now: Now,
        id: SessionId,
        nick: &str,
        token: TokenHash,
    ) -> Result<(), RestoreError> {
        let nick = crate::nick::normalize_nick(nick, self.config.nick_rule).map_err(|why| {
            RestoreError::Nick {
                id,
                nick: nick.to_owned(),
                why,
            }
        })?;
        if id.0 == u64::MAX {
            return Err(RestoreError::LastSessionId { id });
        }
        // Known already (it began or was restored here). Another session
        // under a known id would leave the first one's token pointing at
        // it, and take a live client's session away.
        if self.sessions.contains_key(&id) {
            return Err(RestoreError::SessionKnown { id });
        }
        if let Some(&holder) = self.tokens.get(&token) {
            return Err(RestoreError::TokenKnown { id, holder });
        }
        let key = crate::nick::nick_key(&nick);
        let skeleton = crate::nick::nick_skeleton(&nick);
        if !self.config.cluster {
            self.next_session = self.next_session.max(id.0 + 1);
        }
        self.tokens.insert(token, id);
        self.sessions.insert(
            id,
            Session {
                token: String::new(),
                token_hash: token,
                nick: Arc::from(nick.as_str()),
                key,
                skeleton,
                conn: None,
                ended_at: Some(now.mono),
                detach: 0,
                timer: false,
                rooms: Default::default(),
                entering: Default::default(),
                leaving: Default::default(),
                leavings: 0,
                ids: Default::default(),
                in_flight: Default::default(),
                resent: Default::default(),
                places: 0,
                deferred: Default::default(),
            },
        );
        self.detach_timer(id, now);
        self.note_detached(id);
        Ok(())
    }

    /// Session ids below this are taken (by stored events): a store gives
    /// the highest it has seen plus one, so no new session can read an old
    /// one's private messages. `u64::MAX` is never given: with it next,
    /// a `join` that needs a new session is refused (`unavailable`), and
    /// ids never start again from 0.
    pub fn reserve_sessions(&mut self, next: u64) {
        self.next_session = self.next_session.max(next);
    }
}
