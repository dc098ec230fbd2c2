//! The server's frames, as the client takes them: `handle_frame` and its
//! handlers of `welcome`, `entered`, `presence`, `msg`, `history` and `error`.

use super::{Client, ClientEvent, Phase};
use crate::frame::{ClientFrame, ErrorCode, PresenceStatus, ServerFrame};
use crate::nick::nick_key;

impl Client {
    /// A frame arrived from the server.
    ///
    /// Before a connection (before the first
    /// [`handle_connected`](Client::handle_connected)) and while offline
    /// (after [`handle_disconnected`](Client::handle_disconnected)), a
    /// frame is one the connection that ended sent (still in the shell's
    /// buffer when it saw the end): it queues no frame for the next
    /// connection, which starts with its `join`. A `ping` is not answered
    /// (the connection it asks about is gone) and a `welcome` is passed
    /// over; the others are taken as if they came before the end, so the
    /// events they carry are told (messages and their echoes, errors,
    /// notices, pages, room lists, who entered and left), and the next
    /// connection enters the rooms again from the last seq seen. While the
    /// `join` waits for its answer, the `welcome` answers it, an error
    /// refuses it ([`ClientEvent::Refused`]), and a `ping` is answered
    /// (after the `join`, which went first).
    pub fn handle_frame(&mut self, now: u64, frame: ServerFrame) {
        self.tick(now);
        self.heard_at = now;
        self.pinged_at = None;
        match frame {
            // A connection that is gone: its `pong` would go out before
            // the next one's `join`.
            ServerFrame::Ping if self.phase == Phase::Offline => {}
            ServerFrame::Ping => self.send(ClientFrame::Pong),
            // One per connection, answering its join. Another (a broken
            // server's) would enter every room and send every message
            // waiting again, as many times as it came; one while offline
            // would do so for a connection that is gone.
            ServerFrame::Welcome { .. } if self.phase != Phase::Joining => {}
            ServerFrame::Welcome {
                nick,
                session,
                resumed,
                limits,
                closed_for,
                ..
            } => {
                self.limits = limits;
                let now = self.now;
                self.pacer = limits.and_then(|l| super::pace::Pace::new(&l, now));
                self.drop_too_large(self.frame_limit());
                self.welcome(nick, session, resumed.unwrap_or(false), closed_for);
            }
            ServerFrame::Online { room, nicks } => {
                // Only `entered` continuations matter: we join into no room.
                // Also of a room being parted, which its `entered` fills
                // too and an `enter` before its `part` goes takes back.
                let (rooms, parting) = (&mut self.rooms, &mut self.parting);
                let room = room.and_then(|r| match rooms.get_mut(&r) {
                    Some(state) => Some(state),
                    None => parting.get_mut(&r),
                });
                if let Some(r) = room {
                    for n in nicks {
                        r.roster.admit(n);
                    }
                }
            }
            ServerFrame::Entered {
                room,
                epoch,
                seq,
                oldest,
                online,
                recovered,
            } => self.entered(room, epoch, seq, oldest, online, recovered),
            ServerFrame::Presence {
                room,
                seq,
                nick,
                status,
                ..
            } => {
                let room = room.unwrap_or_else(|| crate::LOBBY.to_owned());
                if status == PresenceStatus::Online && nick_key(&nick) == nick_key(&self.nick) {
                    // Our own entering: the replay before it is over.
                    self.release(&room);
                }
                let online = status == PresenceStatus::Online;
                if let Some(r) = self.rooms.get_mut(&room) {
                    if r.presence(seq, &nick, online) {
                        self.event(ClientEvent::Presence { room, nick, online });
                    }
                } else if let Some(r) = self.parting.get_mut(&room) {
                    // Parting, its `part` not sent yet: kept in step
                    // quietly, and told if it is entered again.
                    if r.presence(seq, &nick, online) {
                        r.untold(ClientEvent::Presence { room, nick, online });
                    }
                }
            }
            ServerFrame::Msg { .. } => {
                if let Some(e) = self.message(frame, true) {
                    self.event(e);
                }
            }
            ServerFrame::History {
                room,
                events,
                more,
                before,
                oldest: kept_from,
            } => {
                // A server that does not say where the next page starts
                // (chatserver before 0.3): from the oldest message of this one.
                let oldest = match events.first() {
                    Some(ServerFrame::Msg { seq, .. }) => Some(*seq),
                    _ => None,
                };
                let events: Vec<ClientEvent> = events
                    .into_iter()
                    .filter_map(|f| self.message(f, false))
                    .collect();
                let before = if more { before.or(oldest) } else { None };
                // Where the kept history starts: from the page, or from a
                // server that does not say, from the room's `entered`.
                let state = self.rooms.get_mut(&room);
                let oldest = match (more, state) {
                    (true, _) => None,
                    (false, Some(r)) => {
                        r.oldest = r.oldest.max(kept_from.unwrap_or(0));
                        Some(r.oldest)
                    }
                    (false, None) => kept_from,
                };
                self.event(ClientEvent::History {
                    room,
                    events,
                    more,
                    before,
                    oldest,
                });
            }
            ServerFrame::Rooms { rooms, total } => {
                let listed = rooms.len() as u64;
                let list = rooms.into_iter().map(|r| (r.room, r.members)).collect();
                let unlisted = total.map_or(0, |t| t.saturating_sub(listed));
                self.event(ClientEvent::rooms(list, unlisted));
            }
            ServerFrame::Error {
                code,
                message,
                id,
                room,
                ..
            } => self.error(code, message, id, room),
            ServerFrame::Notice { text } => self.event(ClientEvent::Notice(text)),
            _ => {}
        }
    }

    fn welcome(
        &mut self,
        nick: String,
        session: Option<String>,
        resumed: bool,
        closed_for: Option<ErrorCode>,
    ) {
        self.phase = Phase::Joined;
        // Why the server closed the connection before, unless its `error`
        // said it then (it often could not: the socket of a client closed
        // for reading too slowly takes nothing more).
        let heard = self.fatal_heard.take();
        let closed_for = closed_for.filter(|code| resumed && heard != Some(*code));
        self.nick = nick.clone();
        if !resumed {
            // A fresh session: the server remembers none of our ids, so
            // what it stored from us must be found by content instead.
            self.token = None;
        }
        if session.is_some() {
            self.token = session;
        }
        let reconnect = self.connections > 1;
        self.event(ClientEvent::Joined {
            nick,
            resumed,
            reconnect,
            closed_for,
        });
        // What this session cannot see again and cannot tell by its id
        // is given up, not sent a second time (the server may have
        // delivered it).
        self.unconfirm_unseen(resumed);
        // Those parted while messages to them waited are entered again
        // first: the messages are sent again there, the `part` once they
        // are answered. One whose messages are all given up (too large for
        // this server) is left as it is: not entered. While any is, a
        // room never entered yet (asked for offline, say) waits for the
        // parts too, as one asked for while they wait: at the server's
        // rooms per client it would be refused, or crowd them out.
        let pending = &self.pending;
        self.parting
            .retain(|room, _| pending.iter().any(|p| &p.room == room));
        let parting: Vec<String> = self.parting.keys().cloned().collect();
        for room in &parting {
            self.enter_now(room);
        }
        let waiting = !self.parting.is_empty();
        for r in self.rooms.values_mut() {
            r.waits = waiting && (r.waits || r.epoch.is_none());
        }
        // Then the rooms in the order they were asked for: the first given
        // is the one a user sees as current, and its answer comes first.
        // Those asked for while others were being parted still wait for
        // the parts.
        let mut rooms: Vec<(u64, String)> = self
            .rooms
            .iter()
            .filter(|(_, r)| !r.waits)
            .map(|(name, r)| (r.asked, name.clone()))
            .collect();
        rooms.sort_unstable();
        for (_, room) in &rooms {
            self.enter_now(room);
        }
        // A resumed session has our ids: the server drops a resend it
        // already has. A fresh one does not, so a message that reached it
        // before the connection dropped is recognised in the room's replay
        // by its content; resend only after that replay (up to our own
        // entering presence). Until that replay is seen, a connection
        // that resumes the fresh session has the same wait: the session
        // still does not know those ids.
        // Only a room something unchecked was written to is held: what
        // was never written cannot be in its replay.
        self.held.clear();
        self.held.extend(
            self.pending
                .iter()
                .filter(|p| p.unchecked)
                .map(|p| p.room.clone())
                .filter(|r| self.rooms.contains_key(r) || self.parting.contains_key(r)),
        );
        let held = std::mem::take(&mut self.held);
        let waiting: Vec<String> = (self.rooms.iter())
            .filter(|(_, r)| r.waits)
            .map(|(name, _)| name.clone())
            .collect();
        self.send_pending(|p| !held.contains(&p.room) && !waiting.contains(&p.room));
        self.held = held;
    }

    fn entered(
        &mut self,
        room: String,
        epoch: String,
        seq: u64,
        oldest: u64,
        online: Vec<String>,
        recovered: bool,
    ) {
        self.entering.remove(&room);
        // Parted, the `part` not sent yet: kept in step quietly, in case
        // the room is entered again before it goes (then told, with a
        // gap if there is one).
        let (r, parting) = match self.rooms.get_mut(&room) {
            Some(r) => (r, false),
            None => match self.parting.get_mut(&room) {
                Some(r) => (r, true),
                // Parted before this answer arrived: it must not bring
                // the room back (the server has our `part` and leaves us
                // out).
                None => return,
            },
        };
        let again = r.epoch.is_some();
        // A new epoch lost what came before; otherwise nothing can be
        // missing if nothing was said since (or ever).
        let new_epoch = r.epoch.as_deref() != Some(&epoch);
        // The same history, but the room is behind what was seen here (a
        // server that lost its last seqs, presence only, gives them again:
        // PROTOCOL.md §5.8): its events after `seq` are new ones, not
        // copies, and nothing it holds was missed.
        let behind = again && !new_epoch && seq < r.last_seq;
        let gap = again
            && !recovered
            && (new_epoch || seq > r.last_seq || oldest > r.last_seq.saturating_add(1));
        let began_anew = r.epoch.is_some() && new_epoch;
        if new_epoch {
            // A new history: seqs start over.
            r.last_seq = 0;
        } else if behind {
            r.last_seq = seq;
        }
        r.epoch = Some(epoch);
        r.oldest = oldest;
        r.entered = true;
        r.whole = again && !new_epoch && !gap;
        r.roster.set(&online);
        if parting {
            r.skipped |= gap;
            // What was kept meanwhile is told only as far as this history
            // goes on from it: not of another history (its seqs are given
            // again), nor past where this one is behind (given again too).
            if new_epoch {
                r.untold_after(0);
            } else if behind {
                r.untold_after(seq);
            }
        }
        if began_anew {
            self.sent_into_new_history(&room);
        } else if behind {
            self.sent_into_history_behind(&room, seq);
        }
        if parting {
            return;
        }
        self.event(ClientEvent::Entered {
            room,
            online,
            again,
            gap,
            reset: again && new_epoch,
        });
    }

    /// A `msg` frame as an event, once: `None` if already seen. `live`
    /// frames advance the room's last seq.
    fn message(&mut self, frame: ServerFrame, live: bool) -> Option<ClientEvent> {
        let ServerFrame::Msg {
            room,
            seq,
            from,
            to,
            text,
            ts,
            id,
            replay,
        } = frame
        else {
            return None;
        };
        let room = room.unwrap_or_else(|| crate::LOBBY.to_owned());
        // Acknowledged: the echo, or its replay after a reconnect.
        let mut mine = false;
        if let Some(id) = &id {
            if let Some(i) = self.pending.iter().position(|p| &p.id == id) {
                self.settled(i);
                mine = true;
            }
        }
        if !mine && replay && live && self.held.contains(&room) {
            // A session that does not know the ids (fresh, or a fresh one
            // resumed before its replay came) cannot match them: match
            // by content, in the replay that comes before the held
            // messages are resent.
            if let Some(i) = self
                .pending
                .iter()
                .position(|p| p.unchecked && p.room == room && p.may_be(seq, &from, &to, &text))
            {
                self.settled(i);
                mine = true;
            }
        }
        let acknowledged = mine;
        mine |= nick_key(&from) == nick_key(&self.nick);
        let parted = live && !self.rooms.contains_key(&room);
        if let Some(r) = self.rooms.get_mut(&room).filter(|_| live) {
            if seq <= r.last_seq {
                return None;
            }
            r.last_seq = seq;
        }
        let event = ClientEvent::Message {
            room,
            seq,
            from,
            to,
            text,
            ts,
            mine,
            replay,
        };
        if !parted {
            return Some(event);
        }
        // Parted since: only the echo of a message sent before the part
        // is still told (the user has not seen it yet). Parting, its
        // `part` not sent yet, the room is kept in step quietly, its
        // other events kept to tell if it is entered again.
        let ClientEvent::Message { room, .. } = &event else {
            return None;
        };
        match self.parting.get_mut(room) {
            Some(r) if seq > r.last_seq => {
                r.last_seq = seq;
                if !acknowledged {
                    r.untold(event);
                    return None;
                }
            }
            _ if !acknowledged => return None,
            _ => {}
        }
        Some(event)
    }

    fn error(
        &mut self,
        code: ErrorCode,
        message: String,
        id: Option<String>,
        room: Option<String>,
    ) {
        if self.phase == Phase::Joining {
            // A fatal code (`server_full`, a join `timeout`): the server
            // closes the connection, no other nickname can be tried on it.
            self.join_refused = !code.is_fatal();
            self.event(ClientEvent::Refused { code, message });
            return;
        }
        if code.is_fatal() {
            self.fatal_heard = Some(code);
        }
        if let Some(id) = &id {
            if let Some(i) = self.pending.iter().position(|p| &p.id == id) {
                self.settled(i);
            }
            if code == ErrorCode::Duplicate {
                // Delivered before the connection dropped; its copy came
                // (or comes) with the replay.
                return;
            }
        }
        // An error with a message's id answers that message, never an
        // `enter` (which has none) of the room it names.
        if let Some(r) = room.as_ref().filter(|_| id.is_none()) {
            // Refused, the room is not entered: its name or the cap, or
            // a server with no room to log it now; or a code this client
            // does not know, the failure of that `enter` (PROTOCOL.md 6).
            let refused = matches!(
                code,
                ErrorCode::RoomInvalid
                    | ErrorCode::TooManyRooms
                    | ErrorCode::Unavailable
                    | ErrorCode::Unknown
            );
            // Only these answer an `enter`: a `not_in_room` answers a
            // `history` (or `part`) of the room sent before it, whose
            // entering goes on.
            let answers_enter = refused || code == ErrorCode::AlreadyInRoom;
            if answers_enter && self.entering.remove(r) && refused {
                self.rooms.remove(r);
                // Not entered: nothing to part.
                self.parting.remove(r);
                // No replay is coming: what was held goes now (and is
                // refused, or delivered, on its own).
                self.release(r);
                self.enter_waiting();
            }
        }
        self.event(ClientEvent::Error {
            code,
            message,
            id,
            room,
        });
    }
}
