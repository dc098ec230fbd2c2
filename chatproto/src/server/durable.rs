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
//!
//! This file holds the records and the gate's state; `durable/records.rs`
//! hands records out and holds outputs behind them, `durable/reports.rs`
//! takes what the shell says of its store (stored, failed, working again),
//! and `durable/restore.rs` starts a server again from a store.

mod records;
mod reports;
mod restore;

use std::collections::VecDeque;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::server::event::{Event, SessionId};
#[cfg(doc)]
use crate::server::Server;

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
    /// Someone is in the room, or entering it (a client entered it before
    /// it was restored, or its `join` or `enter` was handled and not yet
    /// polled; in cluster mode, also a client the log lists in it):
    /// restoring it over them would leave them out of its fan-out, or in
    /// it by their session only. Restore rooms before connections enter.
    #[error("room {room} was not restored: clients are in it or entering it already; restore rooms before accepting connections")]
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
