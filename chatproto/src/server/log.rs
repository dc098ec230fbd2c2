//! Cluster mode: rooms whose events are numbered by a shared log (one
//! stream per room, say), so that several servers apply the same events in
//! the same order and each fans them out to its own connections.
//!
//! Deciding works as alone, against this server's own sessions; what it
//! would stamp goes out as [`Output::Propose`](crate::Output::Propose). The
//! shell appends it to the room's log, and feeds every event the log holds,
//! from every server, to [`Server::handle_logged`] in the log's order.
//! Applying is then the same on every server, so every copy of a room has
//! the same members, seq and history.

use crate::{PresenceStatus, SessionId};
use std::sync::Arc;

use crate::frame::{ErrorCode, ServerFrame};
use crate::server::event::{Event, EventBody};
use crate::server::room::Room;
use crate::server::{Server, Step};

/// Why [`Server::handle_logged`] did not take an event.
///
/// Like its variants with named members, it may grow: match with `..`
/// in each arm and keep a `_` arm. Outside chatproto, a variant with
/// named members is not built with a literal (only the core makes them):
///
/// ```compile_fail
/// let gap = chatproto::LogError::Gap { room: "lobby".into(), expected: 2, got: 3 };
/// ```
///
/// ```
/// # let e = chatproto::LogError::NotCluster;
/// match e {
///     chatproto::LogError::Gap { expected, .. } => println!("read again from {expected}"),
///     other => println!("{other}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// This server is not in cluster mode
    /// ([`ServerConfig::cluster`](crate::ServerConfig::cluster)): it numbers
    /// its own events, and takes none from a log.
    #[error("this server is not in cluster mode: it takes no events from a log")]
    NotCluster,
    /// The room was never opened with [`Server::open_room`] (which gives
    /// its epoch and the log's first seq), though a client of this
    /// server may have entered it: open it, then hand its events.
    #[error("room {0} is not open: open it from the log first")]
    UnknownRoom(String),
    /// Events are missing before this one: read the log again from
    /// `expected` (a log that skips is read again, never applied around).
    #[error("room {room}: expected seq {expected}, got {got}; read the log again from {expected}")]
    #[non_exhaustive]
    Gap {
        /// The room.
        room: String,
        /// The seq this server applies next.
        expected: u64,
        /// The seq that came.
        got: u64,
    },
    /// A roster was given where the room's next event is not the one
    /// after it: [`Server::seed_roster`] takes one right after the event
    /// it was taken at.
    #[error("room {room}: a roster taken at seq {seq} given where the next event is seq {next}; give it right after its own")]
    #[non_exhaustive]
    RosterSeq {
        /// The room.
        room: String,
        /// The seq the roster was taken at.
        seq: u64,
        /// The seq this server takes next.
        next: u64,
    },
    /// A roster of another epoch of the room (its log was made anew).
    #[error("room {room}: a roster of epoch {epoch} given where the room's is {ours}")]
    #[non_exhaustive]
    RosterEpoch {
        /// The room.
        room: String,
        /// The roster's epoch.
        epoch: String,
        /// The room's epoch here.
        ours: String,
    },
    /// A roster that lists one session twice ([`Server::roster`] never
    /// does: a damaged or hand-made one), which would list it under two
    /// nicknames: take the roster again from a server that applied the
    /// room's log.
    #[error("room {room}: a roster lists session {session} twice; take the roster again from a server that applied the log")]
    #[non_exhaustive]
    RosterMemberTwice {
        /// The room.
        room: String,
        /// The session listed twice.
        session: SessionId,
    },
}

/// Cluster mode: who is in a room on every server, as of one of its
/// events ([`Server::roster`]). Every server that applied the room's log
/// from its start up to `seq` holds the same one, so a server that cannot
/// read the log's start (its limits dropped the oldest events) can take
/// it from another ([`Server::seed_roster`]) instead of missing everyone
/// who entered before that. (A server that opened the room past its
/// start, or stepped over events, holds what it learned: only as good as
/// the seed it was given, which the shell must know before it passes its
/// roster on.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    /// The room's epoch (see [`Server::open_room`]).
    pub epoch: String,
    /// The seq of the last event it reflects.
    pub seq: u64,
    /// Everyone in the room, in session order.
    pub members: Vec<RosterMember>,
}

/// One member of a [`Roster`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterMember {
    /// Their session.
    pub session: SessionId,
    /// Their nickname, as they entered with it.
    pub nick: Arc<str>,
    /// Whether a private message to their nickname finds this session:
    /// `false` only for a session whose nickname another one in the room
    /// has too (one of a node taken for dead whose departure is not
    /// applied yet, and the person who took the nickname since).
    pub found_by_nick: bool,
}

impl Server {
    /// Cluster mode: the log holds `name` with this `epoch` (the same on
    /// every server, e.g. kept with the log), and its oldest event kept
    /// is `first_seq` (1 unless the log dropped older ones). Call before
    /// feeding the room's events; calling again changes only what was not
    /// known yet: an epoch, and, while no event of the room was applied
    /// here, a `first_seq` further on. Not in cluster mode, it does nothing (as do
    /// [`handle_logged_duplicate`](Server::handle_logged_duplicate) and
    /// [`handle_log_refused`](Server::handle_log_refused); the calls that
    /// answer say [`LogError::NotCluster`]). A name that is not as a
    /// client's is folded ([`room_name`](crate::room_name): `rust`, not
    /// `Rust` or `#rust`), which no client could enter, or a `first_seq` of
    /// 2^62 or more (no log gets there; the room's seqs would run out),
    /// opens nothing.
    pub fn open_room(&mut self, name: &str, epoch: &str, first_seq: u64) {
        if !self.config.cluster
            || first_seq >= crate::server::SEQ_LIMIT
            || crate::server::event::room_name_ref(name).map_or(true, |n| n != name)
        {
            return;
        }
        let first_seq = first_seq.max(1);
        let room = self
            .rooms
            .entry(name.to_owned())
            .or_insert_with(|| Room::new(Arc::from(name), String::new()));
        room.opened = true;
        if room.epoch.is_empty() {
            room.epoch = epoch.to_owned();
        }
        if room.seq == 0 && room.next_seq <= first_seq {
            room.seq = first_seq - 1;
            room.next_seq = first_seq;
            room.history_start = first_seq;
            room.stored_from = first_seq;
        }
    }

    /// Cluster mode: the log's next event of a room, numbered by the log
    /// (`seq`), from this server or another. Events must come in seq order
    /// with no gap; one already taken is ignored. It is applied (and fanned
    /// out to this server's connections) as `poll` reaches it. A room
    /// must be opened first ([`open_room`](Server::open_room)), also one
    /// a client of this server entered: its epoch comes from there, and
    /// its clients are told it.
    ///
    /// A leaving (a `presence` `offline`) takes out of the room's fan-out
    /// only the connection it was proposed for here, if that is still
    /// the session's connection in the room and no entering of the room
    /// the session proposed here after it was applied first: one the log
    /// brings after the session's next entering (its new connection's,
    /// after a resume, or the same connection's, after a part) takes out
    /// none. One another server proposed takes out none of this server's
    /// connections (it was said for a connection there, before the
    /// session resumed here; or, if the session is connected here, that
    /// server took this one for dead: a shell closes that connection,
    /// found with [`connection_of`](Server::connection_of)). Any leaving
    /// of a session that parted the room here since its last entering
    /// takes its connection out, whichever leaving it was proposed for
    /// (another server's of the very same millisecond may be taken for
    /// its own). The room's roster follows the log all the same: the
    /// session is out of it. An entering of a session the roster lists
    /// already, under another nickname (a log that says it entered twice,
    /// under two), lists it under the new one, which finds it; the old
    /// one no longer does. If a leaving proposed here comes after an
    /// entering of the room the session proposed later, and its
    /// connection here is still in the room, this server proposes the
    /// session's entering again (an [`Output::Propose`](crate::Output::Propose), answering
    /// nobody), so that every server lists it once that is applied.
    pub fn handle_logged(&mut self, event: Event) -> Result<(), LogError> {
        if !self.config.cluster {
            return Err(LogError::NotCluster);
        }
        let Some(room) = self.rooms.get_mut(&*event.room).filter(|r| r.opened) else {
            return Err(LogError::UnknownRoom(event.room.to_string()));
        };
        if event.seq < room.next_seq {
            return Ok(());
        }
        if event.seq > room.next_seq {
            return Err(LogError::Gap {
                room: event.room.to_string(),
                expected: room.next_seq,
                got: event.seq,
            });
        }
        room.next_seq += 1;
        let mut event = event;
        event.room = Arc::clone(&room.name);
        self.steps.push_back(Step::Apply(Arc::new(event)));
        Ok(())
    }

    /// Cluster mode: the log already held a message this server proposed,
    /// by its session and message id (the log drops a second copy): a
    /// resend after the session moved from a server that had logged it.
    /// It will not come back to be applied. `event` is the proposal, with
    /// the seq the log holds the first copy at; its sender gets
    /// `duplicate` with that seq, as from a single server, before any
    /// answer that waited for the message. A message without an id has
    /// no answer of its own: the answers that waited for it go on.
    pub fn handle_logged_duplicate(&mut self, event: &Event) {
        if !self.config.cluster {
            return;
        }
        let EventBody::Msg { from, id, .. } = &event.body else {
            return;
        };
        let Some(id) = id else {
            self.answers_after(event, None, false);
            return;
        };
        let cap = self.config.id_window;
        let epoch = self.rooms.get(&*event.room).map_or("", |r| &r.epoch);
        let Some(s) = self.sessions.get_mut(from) else {
            return;
        };
        s.ids.insert(id, &event.room, epoch, event.seq, cap);
        // Only to the connection that sent it (not one that resumed the
        // session since), in its place among the answers; and to each
        // resend that waited for it, in its own.
        let frame = self.duplicate(id, &event.room, event.seq);
        self.resends_answered(*from, id, &frame, false, false);
        self.answers_after(event, Some(frame), false);
    }

    /// Cluster mode: the log refused a message this server proposed (after
    /// a lost connection it could only have been stored behind later
    /// messages of its room, out of its sender's order; or it has no room
    /// for it), so it will not come back to be applied. `event` is the
    /// proposal. Its sender gets `unavailable` with `cause` (the message
    /// was not sent, and its id may be used again), in its place among the
    /// answers.
    ///
    /// A refused entering (a `presence` `online`) is undone: the session
    /// is not in the room (it may enter again), and its connection gets
    /// `unavailable` with the room and `cause`, in its place among the
    /// answers. One this server said again by itself (see
    /// [`handle_logged`](Server::handle_logged)) is dropped, and nobody is
    /// told: the session stays in the room, unlisted. A refused leaving is dropped, and the answers that waited
    /// for it go on: a shell refuses one when nothing of its room was
    /// stored (no room to leave), or when storing it would put it after
    /// its session's entering the room again (which then stands: the
    /// session is in the room as its current connection, whichever
    /// connection it was in as before).
    pub fn handle_log_refused(&mut self, event: &Event, cause: &str) {
        if !self.config.cluster {
            return;
        }
        match &event.body {
            EventBody::Presence {
                session,
                status: PresenceStatus::Online,
                ..
            } => return self.log_refused_enter(event, *session, cause),
            EventBody::Presence { session, .. } => {
                // It will not be applied: what it was proposed for goes.
                if let Some(s) = self.sessions.get_mut(session) {
                    let room = &*event.room;
                    if let Some(i) = s
                        .leaving
                        .iter()
                        .position(|l| *l.room == *room && l.ts == event.ts)
                    {
                        s.leaving.remove(i);
                    }
                }
                self.answers_after(event, None, false);
                return;
            }
            _ => {}
        }
        let EventBody::Msg { from, id, .. } = &event.body else {
            return;
        };
        if let (Some(id), Some(s)) = (id, self.sessions.get_mut(from)) {
            s.ids.forget(id);
        }
        let frame = ServerFrame::Error {
            code: ErrorCode::Unavailable,
            message: self.fit(format!("your message was not sent: {cause}; send it again")),
            id: id.clone(),
            room: Some(event.room.to_string()),
            seq: None,
        };
        // Resends of it on the session's connection waited for this: each
        // is answered the same, at its frame's place.
        if let Some(id) = id {
            self.resends_answered(*from, id, &frame, false, false);
        }
        self.answers_after(event, Some(frame), false);
    }

    /// [`Server::handle_log_refused`] of an entering.
    fn log_refused_enter(&mut self, event: &Event, sid: SessionId, cause: &str) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let room = &*event.room;
        // The entering proposed with this stamp (this server's come back,
        // or are refused, in the order they were decided).
        let Some(i) = s
            .entering
            .iter()
            .position(|e| e.room == room && e.ts == event.ts)
        else {
            return;
        };
        let refused = s.entering.remove(i);
        // Said again by this server, asked by no connection
        // (`enter_again`): the session stays in the room, and nobody is
        // told.
        let asked = refused
            .as_ref()
            .is_some_and(|e| e.req.is_some() || e.closed.is_some());
        if !asked {
            self.answers_after(event, None, false);
            return;
        }
        // The rooms are the connection's now: one gone, its entering
        // refused, says nothing of them; and this connection is still in
        // the room if it entered it again meanwhile.
        let ours = refused.is_some_and(|e| e.req.is_some());
        if ours && !s.entering.iter().any(|e| e.room == room && e.req.is_some()) {
            s.rooms.remove(room);
            // A join's lobby, refused before its welcome went out (held for
            // the store): the welcome says no lobby.
            if room == crate::LOBBY {
                if let Some(conn) = s.conn {
                    self.welcome_without_lobby(conn);
                }
            }
        }
        let frame = ServerFrame::Error {
            code: ErrorCode::Unavailable,
            message: self.fit(format!("you did not enter #{room}: {cause}; try again")),
            id: None,
            room: Some(room.to_owned()),
            seq: None,
        };
        self.answers_after(event, Some(frame), false);
    }

    /// Cluster mode: the log's event `seq` of `room` is not one this server
    /// can read (written by a newer version, or damaged), or one it could
    /// not read at all (the log dropped it first): step over it, as every
    /// server does, so the seqs after it still apply. The room's seq
    /// ([`Server::seq`]) moves to it once `poll` reaches it.
    ///
    /// The core cannot tell whose event it stepped over. If it was one
    /// of this server's own proposals (the shell knows, from the log's
    /// acknowledgement of the seq it stored it at), the shell also hands
    /// that proposal back: a message with
    /// [`handle_logged_duplicate`](Server::handle_logged_duplicate) at
    /// that seq (its sender is answered `duplicate`: it is in the log),
    /// anything else with [`handle_log_refused`](Server::handle_log_refused).
    /// Otherwise the proposal stays counted as on its way
    /// ([`outputs_waiting`](Server::outputs_waiting)) and its
    /// connection's later answers wait for it for the session's life.
    /// (chatserver applies its own proposals from the copy it kept, and
    /// steps over only other servers' events.)
    pub fn skip_logged(&mut self, room: &str, seq: u64) -> Result<(), LogError> {
        if !self.config.cluster {
            return Err(LogError::NotCluster);
        }
        let Some(r) = self.rooms.get_mut(room).filter(|r| r.opened) else {
            return Err(LogError::UnknownRoom(room.to_owned()));
        };
        if seq < r.next_seq {
            return Ok(());
        }
        if seq > r.next_seq {
            return Err(LogError::Gap {
                room: room.to_owned(),
                expected: r.next_seq,
                got: seq,
            });
        }
        r.next_seq += 1;
        // The room's seq moves past it once `poll` reaches it, after the
        // events handed before it (a seed given right after it finds the
        // seq it was taken at).
        let name = Arc::clone(&r.name);
        self.steps.push_back(Step::Skipped(name, seq));
        Ok(())
    }

    /// Cluster mode: who is in `room` on every server as of the last event
    /// applied (or stepped over) here: events handed with
    /// [`handle_logged`](Server::handle_logged) or
    /// [`skip_logged`](Server::skip_logged) count once `poll` has reached
    /// them. `None` if the room is not here (neither opened nor entered by a
    /// client of this server), or not in cluster mode. See
    /// [`Roster`] for when it is whole.
    pub fn roster(&self, room: &str) -> Option<Roster> {
        if !self.config.cluster {
            return None;
        }
        let r = self.rooms.get(room)?;
        let mut members: Vec<RosterMember> = r
            .roster
            .iter()
            .map(|(&session, nick)| RosterMember {
                session,
                nick: Arc::clone(nick),
                found_by_nick: r.roster_keys.get(&crate::nick::nick_key(nick)) == Some(&session),
            })
            .collect();
        members.sort_unstable_by_key(|m| m.session);
        Some(Roster {
            epoch: r.epoch.clone(),
            seq: r.seq,
            members,
        })
    }

    /// Cluster mode: `room`'s members are `roster` (from another server's
    /// [`roster`](Server::roster), of the same epoch) once the event at
    /// `roster.seq` is applied here, whatever the events this server read
    /// said: call it right after handing that event (or stepping over it,
    /// or opening the room at `roster.seq + 1`). This server's own connections stay in
    /// the room as they are; only who it lists (and finds by nickname) on
    /// the other servers changes. A roster that lists a session twice is
    /// refused ([`LogError::RosterMemberTwice`]); of two members with one
    /// nickname that both say they are found by it, the later is.
    pub fn seed_roster(&mut self, room: &str, roster: Roster) -> Result<(), LogError> {
        if !self.config.cluster {
            return Err(LogError::NotCluster);
        }
        let Some(r) = self.rooms.get(room).filter(|r| r.opened) else {
            return Err(LogError::UnknownRoom(room.to_owned()));
        };
        if r.epoch != roster.epoch {
            return Err(LogError::RosterEpoch {
                room: room.to_owned(),
                epoch: roster.epoch,
                ours: r.epoch.clone(),
            });
        }
        if r.next_seq != roster.seq.saturating_add(1) {
            return Err(LogError::RosterSeq {
                room: room.to_owned(),
                seq: roster.seq,
                next: r.next_seq,
            });
        }
        // Listed twice, a session would be listed under one of its names
        // and found by both.
        let mut sessions: Vec<SessionId> = roster.members.iter().map(|m| m.session).collect();
        sessions.sort_unstable();
        if let Some(w) = sessions.windows(2).find(|w| w[0] == w[1]) {
            return Err(LogError::RosterMemberTwice {
                room: room.to_owned(),
                session: w[0],
            });
        }
        self.steps
            .push_back(Step::Roster(Arc::clone(&r.name), roster));
        Ok(())
    }

    /// [`Server::seed_roster`], reached in `poll`.
    pub(crate) fn apply_roster(&mut self, room: &str, roster: Roster) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if r.seq != roster.seq {
            return;
        }
        r.roster.clear();
        r.roster_keys.clear();
        for m in roster.members {
            if m.found_by_nick {
                r.roster_keys
                    .insert(crate::nick::nick_key(&m.nick), m.session);
            }
            r.roster.insert(m.session, m.nick);
        }
    }

    /// Cluster mode: the seq this server applies next in `room` (what to
    /// read the log from; 1 for a room a client of this server entered
    /// that is not opened yet); `None` if the room is not here.
    pub fn next_logged(&self, room: &str) -> Option<u64> {
        self.rooms.get(room).map(|r| r.next_seq)
    }
}
