//! Starting again from a store: rooms and sessions restored as they
//! were, and the session ids that stored events have taken reserved.

use std::sync::Arc;

use super::{RestoreError, TokenHash};
use crate::server::event::{Event, EventBody, SessionId};
use crate::server::room::Room;
use crate::server::session::Session;
use crate::server::{Now, Server};

impl Server {
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
    /// someone is in or entering (a `join` or `enter` handled, even if
    /// not yet polled; in cluster mode also someone the log lists in it:
    /// restore before connections enter), and so does a
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
        // fan-out: their messages would reach no one. One entering it (a
        // join or `enter` decided, not yet applied) would be in it by its
        // session only, and at the cap of rooms the room, empty, could be
        // forgotten under it: its leaving would have no room. Also one
        // the log lists, or with events stamped and not yet applied.
        if self.rooms.get(&name).is_some_and(|r| self.in_use(r)) {
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

    /// Whether anyone is in `room`, or entering it: a connection in its
    /// fan-out, a session the log lists in it (cluster mode), an event
    /// stamped and not yet applied, or a session in it or entering it by
    /// its own account. (That last look is at every session: made only
    /// for a room in memory already, restored again or entered before it
    /// was restored, not at a start restoring each room once.)
    fn in_use(&self, room: &Room) -> bool {
        !room.is_empty()
            || !room.roster.is_empty()
            || self.sessions.values().any(|s| {
                s.rooms.contains_key(&*room.name)
                    || s.entering.iter().any(|e| *e.room == *room.name)
            })
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
            Session::new(
                String::new(),
                token,
                &nick,
                key,
                skeleton,
                None,
                Some(now.mono),
            ),
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
