//! One room: its members and its history, changed by applying events (and
//! a closed connection leaving the member list at once, as its `Close`
//! goes out or the shell says it closed).

use std::collections::VecDeque;
use std::sync::Arc;

use crate::server::event::{Event, SessionId};
use crate::server::ids::IdMap;
use crate::server::ClientId;

/// A room's state.
#[derive(Debug)]
pub(crate) struct Room {
    /// Its canonical name, shared by its events.
    pub name: Arc<str>,
    /// Changes whenever the room's history is lost: a room begun here (at
    /// its first `enter`, or again after it was forgotten) gets a new one;
    /// a room restored from the store or loaded back from it keeps the one
    /// stored, and in cluster mode the log gives it
    /// ([`Server::open_room`](crate::Server::open_room); empty until then).
    pub epoch: String,
    /// Cluster mode: opened from the log
    /// ([`Server::open_room`](crate::Server::open_room)), which gives its
    /// epoch and first seq: only then does it take the log's events. (A
    /// room a client entered here is made at once, not opened.)
    pub opened: bool,
    /// The seq of the last event applied.
    pub seq: u64,
    /// The seq the next stamped event gets (ahead of `seq` while stamped
    /// events wait to be applied).
    pub next_seq: u64,
    /// The connections in the room, for fan-out, and their sessions. A
    /// connection closed is out at once (in cluster mode its session
    /// stays in `roster` until its leaving comes back from the log).
    pub members: Vec<ClientId>,
    pub sessions: Vec<SessionId>,
    pos: IdMap<ClientId, usize>,
    by_session: IdMap<SessionId, ClientId>,
    /// The latest messages, oldest first.
    pub history: VecDeque<Arc<Event>>,
    /// Every message with a seq at least this is in `history`.
    pub history_start: u64,
    /// Every message with a seq at least this is in the store (durable
    /// servers; retention moves it).
    pub stored_from: u64,
    /// What `history` holds, as [`event_bytes`] counts it.
    pub history_bytes: usize,
    /// Who is in the room on every server, by session, with their
    /// nicknames and the identity key (see [`crate::nick_key`]) to find
    /// them by (cluster mode only: alone, `sessions` says it).
    pub roster: IdMap<SessionId, Arc<str>>,
    pub roster_keys: crate::server::ids::StrMap<SessionId>,
    /// When an event was last applied here (the server's count of events
    /// applied), to forget the least recently used room first.
    pub touched: u64,
    /// A message was kept here (in this run, or restored from a store):
    /// at the cap of rooms, an empty room that never held one (entered and
    /// left, say) is forgotten before one whose history would go with it.
    pub said: bool,
}

/// The memory one kept message is counted for: its strings and a fixed
/// overhead for the rest.
pub(crate) fn event_bytes(event: &Event) -> usize {
    const OVERHEAD: usize = 128;
    match &event.body {
        crate::EventBody::Msg {
            nick, to, text, id, ..
        } => {
            OVERHEAD
                + nick.len()
                + text.len()
                + id.as_ref().map_or(0, String::len)
                + to.iter().map(|r| r.nick.len() + 16).sum::<usize>()
        }
        _ => OVERHEAD,
    }
}

impl Room {
    pub fn new(name: Arc<str>, epoch: String) -> Self {
        Room {
            name,
            epoch,
            opened: false,
            seq: 0,
            next_seq: 1,
            members: Vec::new(),
            sessions: Vec::new(),
            pos: Default::default(),
            by_session: Default::default(),
            history: VecDeque::new(),
            history_start: 1,
            stored_from: 1,
            history_bytes: 0,
            roster: Default::default(),
            roster_keys: Default::default(),
            touched: 0,
            said: false,
        }
    }

    /// Put `conn` in the room as `session`; whether it went in (not if
    /// either is in already).
    pub fn add(&mut self, conn: ClientId, session: SessionId) -> bool {
        if self.pos.contains_key(&conn) || self.by_session.contains_key(&session) {
            return false;
        }
        self.by_session.insert(session, conn);
        self.pos.insert(conn, self.members.len());
        self.members.push(conn);
        self.sessions.push(session);
        true
    }

    /// The connection `session` is in the room as, if it is in.
    pub fn conn_of(&self, session: SessionId) -> Option<ClientId> {
        self.by_session.get(&session).copied()
    }

    /// Take `session` out of the room; the connection it was in as.
    pub fn remove(&mut self, session: SessionId) -> Option<ClientId> {
        let conn = self.by_session.remove(&session)?;
        let i = self.pos.remove(&conn)?;
        self.members.swap_remove(i);
        self.sessions.swap_remove(i);
        if let Some(&moved) = self.members.get(i) {
            self.pos.insert(moved, i);
        }
        Some(conn)
    }

    /// Take the connection `conn` out of the room (with the session it is
    /// in as); whether it was in.
    pub fn remove_conn(&mut self, conn: ClientId) -> bool {
        let Some(&i) = self.pos.get(&conn) else {
            return false;
        };
        let session = self.sessions[i];
        self.remove(session).is_some()
    }

    /// Keep `event` (a message) in the history, forgetting the oldest past
    /// `cap` messages or `max_bytes`; the bytes forgotten.
    pub fn remember(&mut self, event: Arc<Event>, cap: usize, max_bytes: usize) -> usize {
        self.said = true;
        self.history_bytes += event_bytes(&event);
        self.history.push_back(event);
        let mut freed = 0;
        while self.history.len() > cap || (self.history_bytes > max_bytes && self.history.len() > 1)
        {
            freed += self.forget_oldest();
        }
        freed
    }

    /// Forget the oldest message kept; the bytes it was counted for.
    pub fn forget_oldest(&mut self) -> usize {
        let Some(old) = self.history.pop_front() else {
            return 0;
        };
        self.history_start = old.seq + 1;
        let n = event_bytes(&old);
        self.history_bytes -= n;
        n
    }

    /// The newest `limit` messages `session` may see with seq in
    /// `(after, before)`, oldest first, looking at `scan` events at most
    /// (`history_scan`: a page of a room full of messages to others costs
    /// no more than that).
    pub fn visible(
        &self,
        session: SessionId,
        after: u64,
        before: u64,
        limit: usize,
        scan: usize,
    ) -> Visible<'_> {
        let mut page = Vec::new();
        let mut more = false;
        let mut from = before;
        // The history is in seq order: start just below `before`.
        let start = self.history.partition_point(|e| e.seq < before);
        for (looked, e) in self.history.range(..start).rev().enumerate() {
            if e.seq <= after {
                break;
            }
            if looked == scan {
                more = true;
                break;
            }
            if e.visible_to(session) {
                if page.len() == limit {
                    // Full: the next page starts at its oldest message (at
                    // `before` for a page of none).
                    more = true;
                    from = page.last().map_or(before, |p: &&Arc<Event>| p.seq);
                    break;
                }
                page.push(e);
            }
            from = e.seq;
        }
        page.reverse();
        Visible { page, more, from }
    }

    /// Whether `conn` is in the room.
    pub fn has(&self, conn: ClientId) -> bool {
        self.pos.contains_key(&conn)
    }

    /// Nothing to keep: no members, no history, nothing stamped in flight.
    pub fn is_idle(&self) -> bool {
        self.history.is_empty() && self.is_empty()
    }

    /// No members and nothing stamped in flight: only its history would be
    /// lost if it were forgotten.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.next_seq == self.seq + 1
    }
}

/// A page of what one session may see: see [`Room::visible`].
#[derive(Debug)]
pub struct Visible<'a> {
    /// The messages, oldest first.
    pub page: Vec<&'a Arc<Event>>,
    /// Whether older events were left unread (the page was full, or the
    /// scan bound was reached).
    pub more: bool,
    /// Every event from this seq up to `before` (and above `after`) was
    /// looked at: the `before` of the next older page.
    pub from: u64,
}
