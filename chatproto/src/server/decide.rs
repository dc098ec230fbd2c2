//! Deciding: what a client's frame means. Each frame is answered at once
//! (an error, a pong), becomes stamped events for the rooms (in cluster
//! mode, proposals the log numbers), or queues a read (a `history` page,
//! a `rooms` list) answered in order as [`poll`](super::Server::poll)
//! comes to it; what a room
//! holds changes only when they are applied (deciding makes a room at its
//! first `enter`, or loads it back from the store, and at the cap of rooms
//! takes an empty one out of memory: forgotten, or on a durable server
//! unloaded if it held a message, see [`unloaded`](super::unloaded)).

use std::collections::HashSet;
use std::sync::Arc;

use crate::frame::{ClientFrame, ErrorCode, PresenceStatus, ServerFrame};
use crate::nick::{nick_key, nick_skeleton, nick_taken_message, normalize_nick};
use crate::server::config::LOBBY;
use crate::server::durable::TokenHash;
use crate::server::event::{room_name, room_name_ref, Event, EventBody, Recipient, SessionId};
use crate::server::room::Room;
use crate::server::session::{
    EnterRequest, Entering, IdWindow, Leaving, Session, MAX_LEAVING_NOTES,
};
use crate::server::timers::Timer;
use crate::server::{ClientId, Now, Server, Step};
use crate::PayloadError;

/// The longest message id, in characters.
pub const MAX_ID_LEN: usize = 64;

/// What a session did before with a message id it sends again.
enum Earlier {
    /// Its message went into this room with this seq.
    Sent(Arc<str>, u64),
    /// Its message was refused with this code.
    Refused(ErrorCode),
}

/// The message of the answer to a resend of the message with `id`,
/// refused before with `code`.
fn refused_before(id: &str, code: ErrorCode, room: &str) -> String {
    let why = match code {
        ErrorCode::NotInRoom => format!("you were not in #{room}"),
        _ => "a recipient was not online (or not in the room)".to_owned(),
    };
    format!(
        "your message with id {} was refused when you first sent it ({why}), and is not sent now; send it again to try again",
        crate::escape_control(id)
    )
}

/// The answer to a `join` that needs a new session when every session id
/// is used up (only a store reserving the last ones gets there).
const SESSIONS_USED_UP: &str =
    "this server can begin no new session: its session ids are used up (resuming a session still works)";

impl Server {
    /// A frame arrived from `client`. Unknown clients are ignored.
    pub fn handle_frame(&mut self, now: Now, client: ClientId, frame: ClientFrame) {
        self.decide(now, client, frame);
        if self.may_hold_answers() {
            self.watch_held(now, client);
        }
    }

    fn decide(&mut self, now: Now, client: ClientId, frame: ClientFrame) {
        let Some(c) = self.conns.get_mut(&client) else {
            return;
        };
        c.last_heard = now.mono;
        c.ping_sent_at = None;
        let Some(sid) = c.session else {
            return match frame {
                ClientFrame::Ping => self.send(client, ServerFrame::Pong),
                ClientFrame::Pong => {}
                ClientFrame::Join {
                    nick,
                    rooms,
                    resume,
                } => self.join(now, client, nick, rooms, resume),
                _ => self.error(
                    client,
                    ErrorCode::NotJoined,
                    "send a join frame with your nickname before anything else",
                ),
            };
        };
        match frame {
            ClientFrame::Ping => self.send(client, ServerFrame::Pong),
            ClientFrame::Pong => {}
            ClientFrame::Join { .. } => {
                let mine = &self.sessions[&sid].nick;
                let msg =
                    format!("you have already joined as {mine}; reconnect to change nickname");
                self.error(client, ErrorCode::AlreadyJoined, msg);
            }
            ClientFrame::Enter { room, since, epoch } => {
                let since = since.zip(epoch);
                self.enter(now, client, sid, &room, EnterRequest { v1: false, since });
            }
            ClientFrame::Part { room } => self.part(now, client, sid, &room),
            ClientFrame::Msg { room, to, text, id } => {
                self.message(now, client, sid, room, to, text, id)
            }
            ClientFrame::History {
                room,
                before,
                limit,
            } => self.history(client, sid, &room, before, limit),
            ClientFrame::Rooms => self.answer(client, Step::Rooms(client)),
        }
    }

    /// A payload from `client` was not a valid frame: answer `bad_frame`;
    /// the connection stays open.
    pub fn handle_bad_frame(&mut self, now: Now, client: ClientId, error: &PayloadError) {
        let Some(c) = self.conns.get_mut(&client) else {
            return;
        };
        c.last_heard = now.mono;
        let message = format!("bad frame: {error}");
        match error {
            // Named as any other answer to a frame about a room names it:
            // as the server spells it, or as sent if it broke the rule.
            PayloadError::InRoom { room, id, .. } => {
                let room = room_name_ref(room).map_or_else(|_| room.clone(), |r| r.into_owned());
                self.msg_error(client, ErrorCode::BadFrame, Some(&room), id, message);
            }
            _ => self.error(client, ErrorCode::BadFrame, message),
        }
        if self.may_hold_answers() {
            self.watch_held(now, client);
        }
    }

    fn join(
        &mut self,
        now: Now,
        client: ClientId,
        nick: String,
        rooms: Option<Vec<String>>,
        resume: Option<String>,
    ) {
        // The normalized form is the nickname from here on: stored, shown
        // and compared.
        let nick = match normalize_nick(&nick, self.config.nick_rule) {
            Ok(n) => n,
            Err(e) => return self.error(client, ErrorCode::NickInvalid, e.to_string()),
        };
        let key = nick_key(&nick);
        let hash = resume.as_deref().map(crate::server::durable::hash_token);
        // A connection that has ended takes nothing over (see
        // `handle_last_frame`).
        let ended = self.conns.get(&client).is_some_and(|c| c.ended);
        let took_over = !ended
            && hash
                .as_ref()
                .is_some_and(|hash| self.take_over(now, hash, &key));
        if let Some(other) = self.by_key.get(&key) {
            let taken = self.sessions.get(other).map_or("", |s| &s.nick);
            let msg = nick_taken_message(&nick, taken);
            return self.error(client, ErrorCode::NickTaken, msg);
        }
        let skeleton = nick_skeleton(&nick);
        if let Some(other) = self.by_skeleton.get(&skeleton) {
            let like = self.sessions.get(other).map_or("", |s| &s.nick);
            let msg = format!(
                "the nickname {nick} looks too much like {like}, who is online; choose another"
            );
            return self.error(client, ErrorCode::NickInvalid, msg);
        }
        // Continue the session named by `resume` if it ended in time (or
        // just now, taken over: even with a resume window of 0) and was
        // this nickname's; otherwise a fresh session, not an error.
        let resumable = hash
            .and_then(|h| self.tokens.get(&h))
            .copied()
            .filter(|sid| {
                let s = &self.sessions[sid];
                s.conn.is_none()
                    && s.key == key
                    && (took_over
                        || s.ended_at.is_some_and(|t| {
                            now.mono < t.saturating_add(self.config.resume_window_ms)
                        }))
            });
        let (sid, resumed) = match resumable {
            Some(sid) => {
                let s = self
                    .sessions
                    .get_mut(&sid)
                    .expect("token of a live session");
                s.conn = Some(client);
                s.ended_at = None;
                // A session restored from a store knows only the hash.
                if let Some(token) = resume {
                    s.token = token;
                }
                // The same person may come back spelled differently (ВОВ
                // for вов): a different look-alike class, to release later.
                s.nick = Arc::from(nick.as_str());
                s.skeleton = skeleton.clone();
                (sid, true)
            }
            None => {
                // `u64::MAX` is never given (nor restored): with it next,
                // the ids are used up, and numbering on from 0 would give
                // a new session the id of one a store restored.
                if self.next_session == u64::MAX {
                    return self.error(client, ErrorCode::Unavailable, SESSIONS_USED_UP);
                }
                let sid = SessionId(self.next_session);
                self.next_session += 1;
                let token = self.token();
                let token_hash = crate::server::durable::hash_token(&token);
                self.tokens.insert(token_hash, sid);
                self.sessions.insert(
                    sid,
                    Session {
                        token,
                        token_hash,
                        nick: Arc::from(nick.as_str()),
                        key: key.clone(),
                        skeleton: skeleton.clone(),
                        conn: Some(client),
                        ended_at: None,
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
                    },
                );
                (sid, false)
            }
        };
        self.by_key.insert(key, sid);
        self.by_skeleton.insert(skeleton, sid);
        if let Some(c) = self.conns.get_mut(&client) {
            c.session = Some(sid);
        }
        self.timers.arm(
            now.mono.saturating_add(self.config.idle_ping_ms),
            Timer::Idle(client),
        );
        let v1 = rooms.is_none();
        let mut rooms = rooms.unwrap_or_else(|| vec![LOBBY.to_owned()]);
        // No more names are tried than a session may be in rooms: those
        // after are answered by one error, not one each (a frame full of
        // names would otherwise be answered by a frame per name).
        let max = self.config.max_rooms_per_client;
        let left_out = rooms.len().saturating_sub(max);
        rooms.truncate(max);
        let lobby = rooms.iter().any(|r| r.eq_ignore_ascii_case(LOBBY));
        if resumed {
            self.record_attached(sid, true);
        } else {
            self.record_session(sid);
        }
        // Said once, by the resume that follows the close.
        let closed_for = self.closed_for.remove(&sid).filter(|_| resumed);
        self.steps.push_back(Step::Welcome {
            client,
            lobby,
            resumed,
            closed_for,
        });
        for room in rooms {
            self.enter(now, client, sid, &room, EnterRequest { v1, since: None });
        }
        if left_out > 0 {
            let msg = format!(
                "a join may list at most {max} {}: the {left_out} after them were not entered",
                noun(max, "room", "rooms")
            );
            self.msg_error(client, ErrorCode::TooManyRooms, None, &None, msg);
        }
        // What the join listed and entered (a refused enter of lobby is no
        // lobby), decided now: a `part` of lobby handled before the
        // welcome is polled does not unmake the join's lobby.
        let entered = self
            .sessions
            .get(&sid)
            .is_some_and(|me| me.rooms.contains_key(LOBBY));
        if !entered {
            self.welcome_without_lobby(client);
        }
    }

    /// A resume names a session whose connection is still open: the
    /// client lost that connection without the server noticing (Wi-Fi
    /// gone, a laptop asleep, a NAT that forgot it), or another copy of
    /// the client holds the token. The token proves the right to the
    /// session, so the newer connection wins: the older one is closed
    /// with `resumed_elsewhere` and its session waits to be resumed, as
    /// after any disconnect. Only for the same nickname (by identity), as
    /// any resume. Whether it closed one.
    fn take_over(&mut self, now: Now, token: &TokenHash, key: &str) -> bool {
        let Some(old) = self.live_conn_of(token, Some(key)) else {
            return false;
        };
        self.close_with(now, old, crate::server::resumed_elsewhere());
        true
    }

    fn enter(&mut self, now: Now, client: ClientId, sid: SessionId, raw: &str, req: EnterRequest) {
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

    fn part(&mut self, now: Now, client: ClientId, sid: SessionId, raw: &str) {
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

    #[allow(clippy::too_many_arguments)]
    fn message(
        &mut self,
        now: Now,
        client: ClientId,
        sid: SessionId,
        room: Option<String>,
        to: Vec<String>,
        text: String,
        id: Option<String>,
    ) {
        let raw = room.as_deref().unwrap_or(LOBBY);
        let room = match room_name_ref(raw) {
            Ok(r) => r,
            Err(why) => return self.msg_error(client, ErrorCode::RoomInvalid, Some(raw), &id, why),
        };
        let room = &*room;
        let s = &self.sessions[&sid];
        if !s.rooms.contains_key(room) {
            let msg = format!("you are not in #{room}; enter it first");
            return self.refuse(client, sid, ErrorCode::NotInRoom, room, &id, msg);
        }
        if let Some(id) = &id {
            let n = id.chars().count();
            if n == 0 || n > MAX_ID_LEN {
                let msg = format!("bad frame: member `id`: {n} characters; use 1 to {MAX_ID_LEN}");
                return self.msg_error(client, ErrorCode::BadFrame, Some(room), &None, msg);
            }
            // Before `unavailable`: a message already delivered is
            // `duplicate` whether or not the store works now.
            match self.sent_before(sid, id) {
                // In a cluster, its first copy is still on its way through
                // the log (its seq is known once applied): answered then,
                // by that copy's echo, or `unavailable` if the log refuses
                // it; not `duplicate` now, with a seq no message has, for
                // a copy that may yet be refused.
                // Its answer keeps this frame's place: later frames' wait
                // behind it.
                Some(Earlier::Sent(_, 0)) if self.config.cluster => {
                    let cap = self.config.id_window.max(1);
                    if let Some(s) = self.sessions.get_mut(&sid) {
                        if s.resent.len() >= cap {
                            s.resent.pop_front();
                        }
                        s.resent.push_back((id.clone(), s.places));
                        s.places += 1;
                    }
                    return;
                }
                Some(Earlier::Sent(orig_room, seq)) => {
                    let frame = self.duplicate(id, &orig_room, seq);
                    return self.send(client, frame);
                }
                // Refused before, for what may have changed since: refused
                // again, or it would come after what was sent after it.
                Some(Earlier::Refused(code)) => {
                    let msg = refused_before(id, code, room);
                    let id = Some(id.clone());
                    return self.msg_error(client, code, Some(room), &id, msg);
                }
                None => {}
            }
        }
        if let Some(msg) = self.unavailable() {
            return self.msg_error(client, ErrorCode::Unavailable, Some(room), &id, msg);
        }
        let s = &self.sessions[&sid];
        // Checked before any lookup: the work per message is bounded by
        // this limit, not by how many names fit in a frame.
        let max = self.config.max_recipients;
        if to.len() > max {
            let recipients = noun(max, "recipient", "recipients");
            let msg = format!(
                "a message may name at most {max} {recipients} and this one names {}; nothing was delivered",
                to.len()
            );
            return self.msg_error(client, ErrorCode::TooManyRecipients, Some(room), &id, msg);
        }
        // Resolve every recipient before anything is sent: all or nothing.
        let mut recipients = Vec::with_capacity(to.len());
        // A set only pays for itself past a handful of names.
        let mut seen: HashSet<SessionId> = HashSet::new();
        let small = to.len() <= 16;
        let mut offline: Vec<&str> = Vec::new();
        let mut elsewhere: Vec<&str> = Vec::new();
        // Names no one could join as: said apart, so that the sender does
        // not wait for someone who can never come.
        let mut impossible: Vec<&str> = Vec::new();
        let mut missing_seen: HashSet<&str> = HashSet::new();
        let roster = self.config.cluster.then(|| &self.rooms[room].roster_keys);
        for name in &to {
            // In a cluster, whoever the room's log says is in it, on any
            // server; otherwise this server's sessions.
            let found = match roster {
                Some(keys) => lookup(keys, name).map(|r| (r, true)),
                None => lookup(&self.by_key, name)
                    .map(|r| (r, self.sessions[&r].rooms.contains_key(room))),
            };
            match found {
                Some((r, true))
                    if (small && !recipients.iter().any(|x: &Recipient| x.session == r))
                        || (!small && seen.insert(r)) =>
                {
                    let nick = match self.sessions.get(&r) {
                        Some(s) => s.nick.clone(),
                        None => self.rooms[room].roster[&r].clone(),
                    };
                    recipients.push(Recipient { session: r, nick });
                }
                Some((_, true)) => {}
                Some((_, false)) if missing_seen.insert(name) => elsewhere.push(name),
                None if missing_seen.insert(name) => {
                    if normalize_nick(name, self.config.nick_rule).is_ok() {
                        offline.push(name);
                    } else {
                        impossible.push(name);
                    }
                }
                _ => {}
            }
        }
        if !offline.is_empty() || !elsewhere.is_empty() || !impossible.is_empty() {
            let list = |names: &[&str]| {
                names
                    .iter()
                    .map(|n| crate::escape_control(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mut parts = Vec::new();
            if !impossible.is_empty() {
                // Quoted: such a name may be empty, or hold a comma.
                let quoted: Vec<String> = impossible
                    .iter()
                    .map(|n| format!("\"{}\"", crate::escape_control(n).replace('"', "\\\"")))
                    .collect();
                parts.push(format!(
                    "not a nickname anyone can have: {}",
                    quoted.join(", ")
                ));
            }
            if !offline.is_empty() {
                parts.push(format!("not online: {}", list(&offline)));
            }
            if !elsewhere.is_empty() {
                parts.push(format!("not in #{room}: {}", list(&elsewhere)));
            }
            let msg = format!("{}; nothing was delivered", parts.join("; "));
            return self.refuse(client, sid, ErrorCode::UnknownNick, room, &id, msg);
        }
        // The session's rooms are all held (a room is forgotten only when
        // nobody is in it); a slip is `not_in_room`, not a panic.
        let Some(r) = self.rooms.get(room) else {
            let msg = format!("you are not in #{room}; enter it first");
            return self.msg_error(client, ErrorCode::NotInRoom, Some(room), &id, msg);
        };
        let cluster = self.config.cluster;
        let event = Event::new(
            Arc::clone(&r.name),
            if cluster { 0 } else { r.next_seq },
            now.wall,
            EventBody::Msg {
                from: sid,
                nick: s.nick.clone(),
                to: recipients,
                text,
                id,
            },
        );
        // Its largest copy (a replay, with the id) must fit a frame, and one
        // history page must be able to hold it.
        let max = self.config.max_frame_bytes - crate::server::answers::FRAME_OVERHEAD;
        // Counted exactly only when a cheap bound (every byte of text and
        // id escaped to six) does not already show that it fits.
        let len = if wire_bound(&event) <= max {
            0
        } else {
            wire_len(&event)
        };
        let id = event.msg_id();
        if len > max {
            let msg = format!("the message would be {len} bytes once stamped, over the limit of {max}; send a shorter text");
            let id = id.map(str::to_owned);
            return self.msg_error(client, ErrorCode::MsgTooLarge, Some(room), &id, msg);
        }
        let r = self.rooms.get_mut(room).expect("checked above");
        if !cluster {
            r.next_seq += 1;
        }
        if let Some(id) = id {
            let cap = self.config.id_window;
            let s = self.sessions.get_mut(&sid).expect("joined");
            s.ids.insert(id, &r.name, &r.epoch, event.seq, cap);
        }
        self.queue_event(event);
    }

    fn history(
        &mut self,
        client: ClientId,
        sid: SessionId,
        raw: &str,
        before: Option<u64>,
        limit: Option<u64>,
    ) {
        let room = match room_name(raw) {
            Ok(r) => r,
            Err(why) => return self.room_error(client, ErrorCode::RoomInvalid, raw, why),
        };
        if !self.sessions[&sid].rooms.contains_key(&room) {
            let msg = format!("you are not in #{room}; enter it to read its history");
            return self.room_error(client, ErrorCode::NotInRoom, &room, msg);
        }
        let page = self.config.history_page;
        // At least one: a page of none would say `more` and the same
        // `before` again, and a pager that asks with it would never end.
        let limit = limit.map_or(50.min(page), |l| l.clamp(1, page as u64) as usize);
        self.answer(
            client,
            Step::History {
                client,
                room,
                before,
                limit,
            },
        );
    }

    pub(crate) fn send(&mut self, to: ClientId, frame: ServerFrame) {
        self.answer(to, Step::Send(to, frame));
    }

    pub(crate) fn error(&mut self, to: ClientId, code: ErrorCode, message: impl Into<String>) {
        let message = self.fit(message.into());
        self.send(to, ServerFrame::error(code, message));
    }

    fn room_error(&mut self, to: ClientId, code: ErrorCode, room: &str, message: String) {
        self.msg_error(to, code, Some(room), &None, message);
    }

    /// Refuse a `msg` for what may change (a recipient not online, a room
    /// not entered), remembering its id, if it has one that kept the rule:
    /// a resend of it is refused again ([`IdWindow::refused`]).
    fn refuse(
        &mut self,
        to: ClientId,
        sid: SessionId,
        code: ErrorCode,
        room: &str,
        id: &Option<String>,
        message: String,
    ) {
        if let Some(id) = id.as_deref() {
            if (1..=MAX_ID_LEN).contains(&id.chars().count()) {
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.ids.refuse(id, code);
                }
            }
        }
        self.msg_error(to, code, Some(room), id, message);
    }

    fn msg_error(
        &mut self,
        to: ClientId,
        code: ErrorCode,
        room: Option<&str>,
        id: &Option<String>,
        message: String,
    ) {
        let message = self.fit(message);
        // A room name that broke the rule is not echoed back: it could be
        // anything up to a frame long.
        let room = room.filter(|r| r.len() <= 32).map(str::to_owned);
        // Nor an id that broke its rule (empty, or longer than allowed).
        let id = id
            .as_ref()
            .filter(|i| (1..=MAX_ID_LEN).contains(&i.chars().count()))
            .cloned();
        let frame = ServerFrame::Error {
            code,
            message,
            id,
            room,
            seq: None,
        };
        self.send(to, frame);
    }

    /// The room and seq of the message `sid` sent with `id`, if the
    /// session remembers it and its room still has the history it went
    /// into. An id stands for its message in that history: a room
    /// forgotten (not resting in the store) or begun again under another
    /// epoch took the message with it, and the seq (which the room begun
    /// again gives to other messages), so such an id is forgotten here
    /// and the message it comes with now is a new one (PROTOCOL.md §5.4).
    /// An id not remembered as sent may be one refused before
    /// ([`Earlier::Refused`]).
    fn sent_before(&mut self, sid: SessionId, id: &str) -> Option<Earlier> {
        let ids = &self.sessions.get(&sid)?.ids;
        let Some(sent) = ids.get(id) else {
            return ids.refused(id).map(Earlier::Refused);
        };
        // A shared log's room is never forgotten and keeps the epoch the
        // log gave it (which an id remembered before it came lacks).
        let stands = self.config.cluster || {
            let epoch = match self.rooms.get(&*sent.room) {
                Some(r) => Some(r.epoch.as_str()),
                None => self.unloaded.get(&sent.room).map(|(_, e)| e),
            };
            epoch.is_some_and(|e| ids.epoch_key(e) == sent.epoch)
        };
        if stands {
            return Some(Earlier::Sent(Arc::clone(&sent.room), sent.seq));
        }
        // Forgotten, not only passed over: remembered again for the new
        // message, its id is the newest in the window, not where the old
        // one was.
        self.sessions.get_mut(&sid)?.ids.forget(id);
        None
    }

    /// The answer to a `msg` whose `id` the session already used for the
    /// message `seq` of `room`.
    pub(crate) fn duplicate(&self, id: &str, room: &str, seq: u64) -> ServerFrame {
        ServerFrame::Error {
            code: ErrorCode::Duplicate,
            message: self.fit(format!(
                "you already sent a message with id {} (seq {seq}); it was not sent again",
                crate::escape_control(id)
            )),
            id: Some(id.to_owned()),
            room: Some(room.to_owned()),
            seq: Some(seq),
        }
    }

    /// An error message that fits a frame: one that quotes what the client
    /// sent could outgrow the limit, and is cut short rather than lost.
    pub(crate) fn fit(&self, mut message: String) -> String {
        // JSON can spend 6 bytes on one byte of text (`\u001b`); 512 covers
        // the other members (code, id, room, seq).
        let keep = (self.config.max_frame_bytes - 512) / 6;
        if message.len() > keep {
            let mut cut = keep;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str("...");
        }
        message
    }
}

/// The session online as `name`, compared as [`nick_key`] does. An ASCII
/// name is folded on the stack: most are, and a lookup per recipient
/// should not allocate.
fn lookup(by_key: &crate::server::ids::StrMap<SessionId>, name: &str) -> Option<SessionId> {
    const SHORT: usize = 4 * crate::nick::MAX_NICK_LEN;
    if name.is_ascii() && name.len() <= SHORT {
        let mut buf = [0u8; SHORT];
        let key = &mut buf[..name.len()];
        key.copy_from_slice(name.as_bytes());
        key.make_ascii_lowercase();
        // Lower-casing ASCII bytes leaves UTF-8 valid.
        return by_key.get(std::str::from_utf8(key).ok()?).copied();
    }
    by_key.get(&nick_key(name)).copied()
}

/// An upper bound of [`wire_len`], without serializing.
pub(crate) fn wire_bound(event: &Event) -> usize {
    // Member names, punctuation, two 20-digit numbers and `replay`.
    const FIXED: usize = 160;
    match &event.body {
        EventBody::Msg {
            nick, to, text, id, ..
        } => {
            FIXED
                + 6 * (event.room.len()
                    + nick.len()
                    + text.len()
                    + id.as_ref().map_or(0, String::len)
                    + to.iter().map(|r| r.nick.len() + 1).sum::<usize>())
        }
        EventBody::Presence { nick, .. } => FIXED + 6 * (event.room.len() + nick.len()),
    }
}

/// The length of `event`'s largest copy on the wire (the sender's replay,
/// with its id and `replay`).
pub(crate) fn wire_len(event: &Event) -> usize {
    // Writing to a counter cannot fail; a failure would count as too large.
    crate::codec::json_len(&event.wire(true, true)).unwrap_or(usize::MAX)
}

/// `one` for a count of one, else `many`: the words of a count in a
/// message.
fn noun(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}
