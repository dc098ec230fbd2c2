//! Deciding `enter` and `part`: a room made at its first `enter` (or
//! loaded back from the store), an empty one taken out of memory at the
//! cap of rooms, and the presence events they stamp with the room's
//! next seq.

use std::sync::Arc;

use super::noun;
use crate::frame::{ErrorCode, PresenceStatus};
use crate::server::event::{room_name, Event, EventBody, SessionId};
use crate::server::room::Room;
use crate::server::session::{EnterRequest, Entering, Leaving, MAX_LEAVING_NOTES};
use crate::server::{ClientId, Now, Server};

impl Server {
    pub(super) fn enter(
        &mut self,
        now: Now,
        client: ClientId,
        sid: SessionId,
        raw: &str,
        req: EnterRequest,
    ) {
        let room = match room_name(raw) {
            Ok(r) => r,
            Err(why) => return self.room_error(client, ErrorCode::RoomInvalid, raw, why),
        };
        let s = &self.sessions[&sid];
        if s.rooms.contains_key(&room) {
            let msg = format!("you are already in #{room}");
            return self.room_error(client, ErrorCode::AlreadyInRoom, &room, msg);
        }
        let max = self.config.max_rooms_per_client;
        if s.rooms.len() >= max {
            let rooms = noun(max, "room", "rooms");
            let msg = format!(
                "you are in {max} {rooms}, the most allowed: part one first to enter #{room}"
            );
            return self.room_error(client, ErrorCode::TooManyRooms, &room, msg);
        }
        if !self.rooms.contains_key(&room) {
            // Resting in the store: taken out before another room is
            // unloaded to make way (which could push it out).
            let resting = self.unloaded.take(&room);
            if self.rooms.len() >= self.config.max_rooms && !self.config.cluster {
                self.forget_an_empty_room();
            }
            if self.rooms.len() >= self.config.max_rooms {
                let n = self.rooms.len();
                let rooms = noun(n, "room", "rooms");
                let msg = if let Some((name, r)) = resting {
                    // Where it was: a refused entering does not keep a
                    // room from its turn to be forgotten.
                    self.unloaded.put_back(name, r);
                    // It exists; none in memory could make way for it.
                    format!(
                        "the server holds {n} {rooms} in use, the most it may, so #{room} (kept with its history) cannot be opened now; try again when a room empties"
                    )
                } else {
                    format!(
                        "the server holds {n} {rooms}, the most it may, so #{room} cannot begin; enter an existing room"
                    )
                };
                return self.room_error(client, ErrorCode::TooManyRooms, &room, msg);
            }
            if let Some((name, r)) = resting {
                let mut woken = r.into_room(name);
                // Resting in the store: its epoch and seqs go on.
                self.applied += 1;
                woken.touched = self.applied;
                self.rooms.insert(room.clone(), woken);
            } else {
                // In a cluster the log gives the epoch (`open_room`).
                let epoch = if self.config.cluster {
                    String::new()
                } else {
                    self.token()
                };
                let created = Room::new(Arc::from(room.as_str()), epoch);
                self.record_room(&created);
                self.rooms.insert(room.clone(), created);
            }
            self.note_used(&room);
        }
        let s = self.sessions.get_mut(&sid).expect("joined");
        s.rooms.insert(room.clone(), ());
        // In a cluster an entering is told from the session's others on
        // their way by its stamp: one of its own per room (a millisecond
        // later than the last, if need be).
        let mut now = now;
        if self.config.cluster {
            let after = s
                .entering
                .iter()
                .filter(|e| e.room == room)
                .map(|e| e.ts.saturating_add(1));
            now.wall = after.fold(now.wall, u64::max);
        }
        s.entering.push_back(Entering {
            room: room.clone(),
            req: Some(req),
            closed: None,
            ts: now.wall,
            after_leavings: s.leavings,
        });
        let nick = s.nick.clone();
        self.stamp_presence(now, &room, sid, nick, PresenceStatus::Online);
    }

    /// At the cap of rooms: take the least recently used room nobody is
    /// in out of memory, so that rooms people left behind never lock
    /// everyone out of new ones. A durable server's room that held a
    /// message rests in its store (see [`unloaded`](crate::server::unloaded));
    /// any other is forgotten, history and all (entering it again starts a
    /// new epoch).
    fn forget_an_empty_room(&mut self) {
        let oldest = self.order.oldest_empty(&self.rooms);
        // (Rooms made and never used tie at 0: either will do.)
        debug_assert_eq!(
            self.touched_of(oldest.as_deref()),
            self.touched_of(self.oldest_empty_scan()),
            "the order of use kept for the cap of rooms"
        );
        if let Some(name) = oldest {
            if let Some(room) = self.rooms.remove(&*name) {
                self.history_bytes -= room.history_bytes;
                if !self.unload(&room) {
                    self.rooms_forgotten += 1;
                    self.record_forgotten(name, room.said);
                }
            }
        }
    }

    /// The room [`Server::forget_an_empty_room`] forgets, by looking at
    /// every room.
    fn oldest_empty_scan(&self) -> Option<&str> {
        let empty = self.rooms.iter().filter(|(_, r)| r.is_empty());
        // Those that never held a message first.
        empty
            .min_by_key(|(_, r)| (r.said, r.touched))
            .map(|(n, _)| n.as_str())
    }

    pub(super) fn part(&mut self, now: Now, client: ClientId, sid: SessionId, raw: &str) {
        let room = match room_name(raw) {
            Ok(r) => r,
            Err(why) => return self.room_error(client, ErrorCode::RoomInvalid, raw, why),
        };
        let s = self.sessions.get_mut(&sid).expect("joined");
        if s.rooms.remove(&room).is_none() {
            let msg = format!("you are not in #{room}");
            return self.room_error(client, ErrorCode::NotInRoom, &room, msg);
        }
        let nick = s.nick.clone();
        self.stamp_leaving(now, &room, sid, nick, client);
    }

    /// Stamp `session`'s leaving of `room`, said for its connection
    /// `conn` (the one that parted, or the one that closed), and queue it
    /// to be applied. In a cluster the log may bring it after the
    /// session's next entering of the room (by a new connection, or the
    /// same one): it is noted with the connection and its number among
    /// the session's leavings, and told from the session's other
    /// leavings of the room on their way by its stamp (a millisecond
    /// later than the last, if need be), as an entering is.
    pub(crate) fn stamp_leaving(
        &mut self,
        now: Now,
        room: &str,
        session: SessionId,
        nick: Arc<str>,
        conn: ClientId,
    ) {
        let mut now = now;
        if self.config.cluster {
            if let (Some(s), Some(r)) = (self.sessions.get_mut(&session), self.rooms.get(room)) {
                let after = s
                    .leaving
                    .iter()
                    .filter(|l| *l.room == *room)
                    .map(|l| l.ts.saturating_add(1));
                now.wall = after.fold(now.wall, u64::max);
                // The oldest goes first if the session has many: the log
                // never brings back a leaving it stepped over or kept
                // another server's copy of, and its note would stay for
                // the session's life.
                if s.leaving.len() >= MAX_LEAVING_NOTES {
                    s.leaving.pop_front();
                }
                s.leaving.push_back(Leaving {
                    room: Arc::clone(&r.name),
                    ts: now.wall,
                    conn,
                    n: s.leavings,
                    stale: false,
                });
                s.leavings += 1;
            }
        }
        self.stamp_presence(now, room, session, nick, PresenceStatus::Offline);
    }

    /// Cluster mode: `leaving`, of `session`, proposed here, was applied
    /// stale (after an entering of the room the session proposed later):
    /// it took the session out of the room's roster, but not its
    /// connection out of the fan-out. If that connection is still in the
    /// room, the session too, and no entering of it is on its way, the
    /// session is said to enter again, so that every server lists it (and
    /// finds it by nickname) as long as it hears the room. That entering
    /// answers nobody, and is stamped as the leaving was.
    pub(crate) fn enter_again(&mut self, leaving: &Event, session: SessionId) {
        let room = &*leaving.room;
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        let heard = s.conn.is_some() && r.conn_of(session) == s.conn;
        if !heard
            || r.roster.contains_key(&session)
            || !s.rooms.contains_key(room)
            || s.entering.iter().any(|e| e.room == room)
        {
            return;
        }
        s.entering.push_back(Entering {
            room: room.to_owned(),
            req: None,
            closed: None,
            ts: leaving.ts,
            after_leavings: s.leavings,
        });
        let nick = s.nick.clone();
        let now = Now {
            mono: 0,
            wall: leaving.ts,
        };
        self.stamp_presence(now, room, session, nick, PresenceStatus::Online);
    }

    /// Stamp a presence event of `room` and queue it to be applied.
    pub(crate) fn stamp_presence(
        &mut self,
        now: Now,
        room: &str,
        session: SessionId,
        nick: Arc<str>,
        status: PresenceStatus,
    ) {
        let body = EventBody::Presence {
            session,
            nick,
            status,
        };
        self.stamp(now, room, body);
    }

    /// Give `body` the room's next seq and the wall clock's ts, and queue
    /// it to be applied.
    fn stamp(&mut self, now: Now, room: &str, body: EventBody) -> u64 {
        let r = self
            .rooms
            .get_mut(room)
            .expect("a room is created before its events");
        // In a cluster the log numbers events: `next_seq` is the next it
        // hands back.
        let seq = if self.config.cluster { 0 } else { r.next_seq };
        if !self.config.cluster {
            r.next_seq += 1;
        }
        let name = Arc::clone(&r.name);
        self.queue_event(Event::new(name, seq, now.wall, body));
        seq
    }
}
