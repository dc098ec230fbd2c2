//! What a shell can ask the client (its nickname, rooms, rosters, limits,
//! the messages not acknowledged yet), and, while offline, the session
//! and rooms an earlier run left off at.

#[cfg(feature = "testkit")]
use std::collections::BTreeSet;

use super::{Client, Phase, RoomState, Unacknowledged};
#[cfg(doc)]
use super::{ClientEvent, CLIENT_MAX_FRAME_BYTES, CLIENT_MAX_ROSTER};
use crate::frame::Limits;

/// See [`Client::footprint`].
#[cfg(feature = "testkit")]
#[derive(Debug)]
pub(crate) struct Footprint<'a> {
    /// Rooms asked for on this connection, not answered yet.
    pub(crate) entering: Vec<&'a str>,
    /// Rooms whose messages wait for their replay to end.
    pub(crate) held: Vec<&'a str>,
    /// Rooms parted whose `part` waits for their held messages.
    pub(crate) parting: Vec<&'a str>,
    /// Outputs not drained by `poll`.
    pub(crate) queued: usize,
    /// The bytes of every string kept.
    pub(crate) bytes: usize,
}

impl Client {
    /// The nickname: the one asked for until a `welcome` comes, then the
    /// server's spelling of it (as the others see it), which compares
    /// equal to another spelling of it under [`nick_key`](crate::nick_key)
    /// only.
    pub fn nick(&self) -> &str {
        &self.nick
    }

    /// Whether the join succeeded on the current connection.
    pub fn is_joined(&self) -> bool {
        self.phase == Phase::Joined
    }

    /// The rooms this client is in (or will enter on connecting).
    pub fn rooms(&self) -> impl Iterator<Item = &str> + '_ {
        self.rooms.keys().map(String::as_str)
    }

    /// The epoch of `room`'s history as the server last said it, or as
    /// [`set_last_seen`](Client::set_last_seen) gave it (`None` before
    /// either, or after the room was parted). Seqs are
    /// comparable only within one epoch.
    pub fn epoch(&self, room: &str) -> Option<&str> {
        self.room(room).and_then(|r| r.epoch.as_deref())
    }

    /// The seq of the last event of `room` this client saw in the room's
    /// current epoch (0 before any): what it enters the room again
    /// `since` after a reconnect, so where a gap the
    /// [`ClientEvent::Entered`] reports begins. `None` when not in it.
    pub fn last_seq(&self, room: &str) -> Option<u64> {
        self.room(room).map(|r| r.last_seq)
    }

    /// The session's token as the server gave it in its last `welcome`
    /// (`None` before one). It is a secret: whoever has it can take the
    /// session over. Kept with each room's [`epoch`](Client::epoch) and
    /// [`last_seq`](Client::last_seq), it lets a program that restarts
    /// carry on where it was: see [`resume_session`](Client::resume_session)
    /// and [`set_last_seen`](Client::set_last_seen).
    pub fn session_token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Carry on a session of an earlier run of this program (its
    /// [`session_token`](Client::session_token)): the next join asks the
    /// server to resume it. If the server still holds the session (its
    /// connection ended within the server's resume window, chatserver's
    /// `--resume-window-ms`, two minutes by default; a chatserver with
    /// history on disk keeps it across its own restarts) and the join is
    /// under the session's nickname (in any case), the
    /// [`ClientEvent::Joined`] says `resumed`. If not, the server starts a
    /// new session, with a new token. Only while offline (before a connection, or after
    /// [`handle_disconnected`](Client::handle_disconnected)): otherwise it
    /// returns `false` and does nothing. A token so long that the `join`
    /// would not fit a frame ([`max_frame_bytes`](Client::max_frame_bytes);
    /// no server gives one) is left out of it: the join starts a new
    /// session.
    ///
    /// What the earlier run sent and never saw acknowledged is not carried
    /// over: its [`pending`](Client::pending) messages are the program's
    /// to keep, and sent again with new ids they may arrive twice. Give
    /// this run an id prefix of its own ([`Client::new`]): the server
    /// remembers the session's latest ids, and takes a message with an id
    /// it has seen for a resend.
    pub fn resume_session(&mut self, token: impl Into<String>) -> bool {
        if self.phase != Phase::Offline {
            return false;
        }
        self.token = Some(token.into());
        true
    }

    /// Where an earlier run of this program was in `room` (its
    /// [`epoch`](Client::epoch) and [`last_seq`](Client::last_seq)): the
    /// room is entered (added if it is not one of this client's rooms)
    /// with `since`, so the server replays what was said after it, as
    /// after a reconnect, and the [`ClientEvent::Entered`] says whether
    /// anything is missing (`gap`: the server no longer holds all of it,
    /// or its history began anew). Only while offline, and for a room
    /// name that follows the rule ([`room_name`](crate::room_name)):
    /// otherwise it returns `false` and does nothing.
    pub fn set_last_seen(&mut self, room: &str, epoch: impl Into<String>, last_seq: u64) -> bool {
        if self.phase != Phase::Offline || crate::room_name(room).is_err() {
            return false;
        }
        let room = room.to_ascii_lowercase();
        let asked = self.rooms.values().map(|r| r.asked + 1).max().unwrap_or(0);
        let r = self.rooms.entry(room).or_insert_with(|| RoomState {
            asked,
            ..RoomState::default()
        });
        r.epoch = Some(epoch.into());
        r.last_seq = last_seq;
        true
    }

    /// The frame limit to encode this client's frames with and to decode
    /// the server's with: the `max_frame_bytes` of the server's last
    /// `welcome`, or [`DEFAULT_MAX_FRAME_BYTES`](crate::DEFAULT_MAX_FRAME_BYTES)
    /// before one or from a server that announced none; at least
    /// [`MIN_MAX_FRAME_BYTES`](crate::MIN_MAX_FRAME_BYTES) and at most
    /// [`CLIENT_MAX_FRAME_BYTES`]. [`send_msg`](Client::send_msg) lets
    /// through any message that fits it.
    pub fn max_frame_bytes(&self) -> usize {
        self.frame_limit()
    }

    /// The limits the server announced in its last `welcome` (`None`
    /// before one, or from a server that announced none). Its
    /// [`presence_fanout_max`](Limits::presence_fanout_max) says past how
    /// many members a room's online list may fall behind.
    pub fn limits(&self) -> Option<&Limits> {
        self.limits.as_ref()
    }

    /// Who is in `room`, sorted by identity: at most
    /// [`CLIENT_MAX_ROSTER`] names, none longer than a nickname may be
    /// ([`MAX_NICK_LEN`](crate::MAX_NICK_LEN) characters; a server that
    /// sends one is broken, and it is left out).
    pub fn roster(&self, room: &str) -> Vec<&str> {
        self.room(room)
            .map(|r| r.roster.nicks().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// How many are in `room` (the length of [`Client::roster`], without
    /// making the list).
    pub fn roster_len(&self, room: &str) -> usize {
        self.room(room).map_or(0, |r| r.roster.len())
    }

    /// A number that stays the same as long as [`Client::roster`] of
    /// `room` does, and changes when it may have changed: a shell that
    /// shows the list can keep it with this number and make it again only
    /// when the number differs, instead of making and comparing the whole
    /// list after every event (a large room's list is thousands of names).
    /// No two lists have the same number, across rooms and clients: a room
    /// parted and entered again gets a new one (but for a part taken back
    /// by entering again before it went out, which keeps the room and its
    /// list as they were). 0 for a room that is not
    /// one of [`Client::rooms`].
    pub fn roster_version(&self, room: &str) -> u64 {
        self.room(room).map_or(0, |r| r.roster.version())
    }

    /// `room`'s state, its name in any case (room names are folded to
    /// lower case, as [`enter`](Client::enter) and the server fold them).
    fn room(&self, room: &str) -> Option<&RoomState> {
        if room.bytes().any(|b| b.is_ascii_uppercase()) {
            self.rooms.get(&room.to_ascii_lowercase())
        } else {
            self.rooms.get(room)
        }
    }

    /// Messages sent that the server has not acknowledged yet (echo or error).
    ///
    /// The client keeps each until it is acknowledged or given up, however
    /// many there are: only [`send_msg`](Client::send_msg) adds to them,
    /// never the server, so their bound is the shell's to set (chatclient
    /// takes no more input while 512 are unanswered, or as many as
    /// [`id_window`](Client::id_window) if fewer), with this count.
    /// Keep it at most the server's id window: a resumed session resends
    /// them all, and the server recognises a resend only among that many
    /// of the session's latest ids; past it, resends are delivered again.
    pub fn unacknowledged(&self) -> usize {
        self.pending.len()
    }

    /// How many of this session's latest message ids the server remembers
    /// (PROTOCOL.md 5.4): the one its last `welcome` announced, else
    /// [`DEFAULT_ID_WINDOW`](crate::DEFAULT_ID_WINDOW) (before a `welcome`,
    /// or from a server that does not say), and at least 1.
    pub fn id_window(&self) -> usize {
        self.limits
            .as_ref()
            .and_then(|l| l.id_window)
            .map_or(crate::DEFAULT_ID_WINDOW, |w| {
                usize::try_from(w).unwrap_or(usize::MAX).max(1)
            })
    }

    /// Whether the message [`send_msg`](Client::send_msg) returned `id`
    /// for is still waiting for the server's answer. Once it is not,
    /// either the frame just handled answered it (its echo: live, replayed
    /// or, after a fresh session, recognised by its content; or an error
    /// carrying `id`), or the core gave it up itself and said so with a
    /// [`ClientEvent::Error`](crate::ClientEvent::Error) (a message too
    /// large to send, or, at a `welcome`, too large for the server's
    /// limit; one to a room parted before it was entered), or, after a
    /// session the server did not resume, with a
    /// [`ClientEvent::Unconfirmed`] (its fate unknown).
    pub fn is_unacknowledged(&self, id: &str) -> bool {
        self.pending.iter().any(|p| p.id == id)
    }

    /// The messages sent and not acknowledged yet, oldest first: what a
    /// user interface shows as "sending" until each echo arrives.
    pub fn pending(&self) -> impl Iterator<Item = Unacknowledged<'_>> + '_ {
        let open = self.phase != Phase::Offline;
        let connection = self.connections;
        self.pending.iter().map(move |p| Unacknowledged {
            id: &p.id,
            room: &p.room,
            to: &p.to,
            text: &p.text,
            may_have_arrived: p.written || (open && p.sent_on != 0 && p.sent_on == connection),
        })
    }

    /// What the core holds beyond its public accessors, for the testkit's
    /// bounds: the room names of its sets, the outputs not drained, and
    /// the bytes of every string it keeps.
    #[cfg(feature = "testkit")]
    pub(crate) fn footprint(&self) -> Footprint<'_> {
        let rooms = self.rooms.iter().chain(&self.parting);
        let room_bytes: usize = rooms
            .map(|(name, r)| {
                let roster = r.roster.bytes();
                name.len() + r.epoch.as_ref().map_or(0, String::len) + roster + r.untold_bytes
            })
            .sum();
        let pending_bytes: usize = self
            .pending
            .iter()
            .map(|p| {
                p.id.len()
                    + p.room.len()
                    + p.text.len()
                    + p.to.iter().map(String::len).sum::<usize>()
            })
            .sum();
        let names = |set: &BTreeSet<String>| set.iter().map(String::len).sum::<usize>();
        Footprint {
            entering: self.entering.iter().map(String::as_str).collect(),
            held: self.held.iter().map(String::as_str).collect(),
            parting: self.parting.keys().map(String::as_str).collect(),
            queued: self.out.len(),
            bytes: self.nick.len()
                + self.token.as_ref().map_or(0, String::len)
                + self.id_prefix.len()
                + room_bytes
                + pending_bytes
                + names(&self.entering)
                + names(&self.held),
        }
    }
}
