//! What the user sends (a message, a history request, the room list),
//! and the way a frame goes out: behind the pacer, and taken back when
//! the message it carries is settled before it went.

use super::pending::{msg_frame, Pending};
use super::{Client, ClientOutput, Phase};
#[cfg(doc)]
use super::{ClientEvent, CLIENT_MAX_FRAME_BYTES};
use crate::frame::ClientFrame;

impl Client {
    /// Send `text` to `to` (empty: everyone) in `room`; returns its id. It
    /// is resent after a reconnect until the server acknowledges it (after
    /// a session the server did not resume, only if the core can tell it
    /// was not delivered; otherwise it is given up as a
    /// [`ClientEvent::Unconfirmed`]: see [`Client`]). While
    /// a fresh session's replay of `room` holds older messages back, it
    /// waits behind them.
    ///
    /// A message whose frame is longer than the server takes
    /// ([`Client::max_frame_bytes`]: the `max_frame_bytes` of its
    /// `welcome`, at most [`CLIENT_MAX_FRAME_BYTES`], or
    /// [`DEFAULT_MAX_FRAME_BYTES`](crate::DEFAULT_MAX_FRAME_BYTES) from a
    /// server whose `welcome` said none) is not sent: it is answered at
    /// once by a [`ClientEvent::Error`] `msg_too_large` with its id, as one
    /// found too long when a `welcome` arrives is.
    ///
    /// Under a rate the server announced, its frame may wait in the core
    /// (behind others, or until the pacer allows it): it goes from
    /// [`handle_timeout`](Client::handle_timeout) at the time
    /// [`poll_timeout`](Client::poll_timeout) then says.
    pub fn send_msg(&mut self, room: &str, to: Vec<String>, text: impl Into<String>) -> String {
        self.next_id += 1;
        let id = format!("{}{}", self.id_prefix, self.next_id);
        let mut p = Pending {
            id: id.clone(),
            room: room.to_ascii_lowercase(),
            to,
            text: text.into(),
            sent_after: None,
            sent_as: String::new(),
            sent_on: 0,
            written: false,
            unchecked: false,
        };
        if self.phase == Phase::Joined {
            // Sent, the frame would be refused by the shell's encoder or
            // close the connection, and it would wait for an echo that
            // never comes.
            let max = self.frame_limit();
            if let Err(crate::EncodeError::TooLarge { len, .. }) =
                crate::encode(&msg_frame(&p), max)
            {
                self.too_large(p, len, max);
                return id;
            }
        }
        if self.phase == Phase::Joined && !self.held.contains(&p.room) && !self.waits(&p.room) {
            p.sent_after = Some(self.seen_in(&p.room));
            p.sent_as = crate::nick::nick_key(&self.nick);
            p.sent_on = self.connections;
            self.send(msg_frame(&p));
        }
        self.pending.push_back(p);
        id
    }

    /// Ask for a history page of `room`; the answer comes as a
    /// [`ClientEvent::History`]. Only a joined client asks (see
    /// [`is_joined`](Client::is_joined)): called before its
    /// [`ClientEvent::Joined`] (offline, or while the `join` waits for its
    /// `welcome`), it does nothing, no frame and no event, since a request
    /// queued then would reach the server before the `join`. Ask again
    /// once joined.
    ///
    /// A name that breaks the rule ([`room_name`](crate::room_name)) is
    /// not asked for: it is answered at once by a [`ClientEvent::Error`]
    /// `room_invalid` naming it, as [`enter`](Client::enter) answers one
    /// (a long one would not fit a frame).
    pub fn history(&mut self, room: &str, before: Option<u64>, limit: Option<u64>) {
        if self.phase == Phase::Joined {
            if let Err(why) = crate::room_name(room) {
                return self.refuse_room(room, why);
            }
            self.send(ClientFrame::history(
                room.to_ascii_lowercase(),
                before,
                limit,
            ));
        }
    }

    /// Ask for the list of rooms; the answer comes as a
    /// [`ClientEvent::Rooms`]. Only a joined client asks: before its
    /// [`ClientEvent::Joined`] it does nothing, as
    /// [`history`](Client::history).
    pub fn list_rooms(&mut self) {
        if self.phase == Phase::Joined {
            self.send(ClientFrame::Rooms);
        }
    }

    /// Send `frame`, or queue it behind those waiting for the pacer. A
    /// ping or pong is never held (a pong late is a connection closed;
    /// the server counts both, and the pacer leaves a tenth of the rate
    /// for them); the join goes before the pacer is set (by the
    /// `welcome`).
    pub(super) fn send(&mut self, frame: ClientFrame) {
        let free = matches!(frame, ClientFrame::Ping | ClientFrame::Pong);
        let now = self.now;
        match &mut self.pacer {
            Some(p) if !free => {
                let cost = p.cost(&frame);
                if self.paced.is_empty() && p.take(now, cost) {
                    self.out.push_back(ClientOutput::Send(frame));
                } else {
                    self.paced.push_back((frame, cost));
                }
            }
            _ => self.out.push_back(ClientOutput::Send(frame)),
        }
    }

    /// The message `pending[i]` is settled (acknowledged or refused): it
    /// is no longer waiting, nor is its frame, if it still waits for the
    /// pacer or to be polled (a server answered it before it went: not
    /// ours, but no reason to send a message already settled; one frame
    /// can settle a message, release another and settle that one too).
    pub(super) fn settled(&mut self, i: usize) {
        let Some(p) = self.pending.remove(i) else {
            return;
        };
        let this =
            |f: &ClientFrame| matches!(f, ClientFrame::Msg { id: Some(id), .. } if *id == p.id);
        if !self.paced.is_empty() {
            self.paced.retain(|(f, _)| !this(f));
        }
        if !self.out.is_empty() {
            self.out
                .retain(|o| !matches!(o, ClientOutput::Send(f) if this(f)));
        }
        self.part_when_answered(&p.room);
    }

    /// Send what waited for the pacer, as far as it lets at `now`.
    pub(super) fn send_paced(&mut self, now: u64) {
        let Some(p) = &mut self.pacer else {
            return;
        };
        while let Some((_, cost)) = self.paced.front() {
            if !p.take(now, *cost) {
                break;
            }
            if let Some((frame, _)) = self.paced.pop_front() {
                self.out.push_back(ClientOutput::Send(frame));
            }
        }
    }
}
