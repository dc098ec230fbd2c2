//! Deciding: what a client's frame means. Each frame is answered at once
//! (an error, a pong), becomes stamped events for the rooms (in cluster
//! mode, proposals the log numbers), or queues a read (a `history` page,
//! a `rooms` list) answered in order as [`poll`](super::Server::poll)
//! comes to it; what a room
//! holds changes only when they are applied (deciding makes a room at its
//! first `enter`, or loads it back from the store, and at the cap of rooms
//! takes an empty one out of memory: forgotten, or on a durable server
//! unloaded if it held a message, see [`unloaded`](super::unloaded)).
//!
//! This file hands each frame to its decision and words the answers; a
//! `join` is decided in `decide/join.rs`, `enter` and `part` in
//! `decide/rooms.rs`, a `msg` in `decide/message.rs`.

mod join;
mod message;
mod rooms;

pub(crate) use message::{wire_bound, wire_len};

use crate::frame::{ClientFrame, ErrorCode, ServerFrame};
use crate::server::event::{room_name, room_name_ref, SessionId};
use crate::server::session::EnterRequest;
use crate::server::{ClientId, Now, Server, Step};
use crate::PayloadError;

/// The longest message id, in characters.
pub const MAX_ID_LEN: usize = 64;

impl Server {
    /// A frame arrived from `client`. Unknown clients are ignored; so is a
    /// frame after the end of its stream was told
    /// ([`handle_end`](Server::handle_end),
    /// [`handle_last_frame`](Server::handle_last_frame)): nothing comes
    /// after an end, and a transport that reads on past it hands frames
    /// that are not decided.
    pub fn handle_frame(&mut self, now: Now, client: ClientId, frame: ClientFrame) {
        self.frame_in(now, client, frame, false);
    }

    /// [`Server::handle_frame`], and with `last` the frame read with its
    /// end ([`Server::handle_last_frame`], which marks the end first):
    /// one look at the connection for both its end and its session.
    pub(crate) fn frame_in(&mut self, now: Now, client: ClientId, frame: ClientFrame, last: bool) {
        let Some(c) = self.conns.get_mut(&client) else {
            return;
        };
        if c.ended && !last {
            return;
        }
        c.last_heard = now.mono;
        c.ping_sent_at = None;
        let session = c.session;
        self.decide(now, client, session, frame);
        if self.may_hold_answers() {
            self.watch_held(now, client);
        }
    }

    /// `frame` from `client`, whose session (if it joined) is `session`.
    fn decide(
        &mut self,
        now: Now,
        client: ClientId,
        session: Option<SessionId>,
        frame: ClientFrame,
    ) {
        let Some(sid) = session else {
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
    /// the connection stays open. Ignored after the end of its stream was
    /// told, as [`handle_frame`](Server::handle_frame) is.
    pub fn handle_bad_frame(&mut self, now: Now, client: ClientId, error: &PayloadError) {
        let Some(c) = self.conns.get_mut(&client).filter(|c| !c.ended) else {
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
    /// a resend of it is refused again
    /// ([`IdWindow::refused`](crate::server::session::IdWindow::refused)).
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

/// `one` for a count of one, else `many`: the words of a count in a
/// message.
fn noun(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}
