//! Entering and parting rooms: `enter` and `part`, the `part` that waits
//! for the answers to the messages sent to its room, and the `enter`s
//! that wait for it.

use super::{Client, ClientEvent, Phase, RoomState};
use crate::frame::ClientFrame;

impl Client {
    /// Enter `room` (it is remembered across reconnects).
    ///
    /// A name that breaks the rule ([`room_name`](crate::room_name)) is
    /// not asked for, nor remembered: it is answered at once by a
    /// [`ClientEvent::Error`] `room_invalid` naming it, as the server
    /// would answer it (which leaves a long name out, so a client could
    /// not tell it was refused).
    ///
    /// While a room parted is still waiting to be left (see
    /// [`part`](Client::part)), the `enter` of a new room waits for that
    /// `part`, and so do messages sent to the room: the server counts the
    /// room being parted, and a client at its rooms per client would be
    /// refused `too_many_rooms`. Parted before its `enter` went, the room
    /// is dropped, and each message that waited for it is answered by a
    /// [`ClientEvent::Error`] `not_in_room` with its id (it never went).
    /// One that went on a connection lost since is sent again for the
    /// server's answer in a resumed session, and given up as a
    /// [`ClientEvent::Unconfirmed`] after a fresh one (its fate unknown).
    pub fn enter(&mut self, room: &str) {
        if let Err(why) = crate::room_name(room) {
            return self.refuse_room(room, why);
        }
        let room = room.to_ascii_lowercase();
        if let Some(mut r) = self.parting.remove(&room) {
            // Its `part` has not gone yet: still in it, as entered (the
            // answer may have come while parting: told now), with what
            // came meanwhile.
            if r.entered {
                self.event(ClientEvent::Entered {
                    room: room.clone(),
                    online: r.roster.nicks().cloned().collect(),
                    again: false,
                    gap: r.skipped,
                    reset: false,
                });
            }
            for e in r.take_untold() {
                self.event(e);
            }
            r.skipped = false;
            self.rooms.insert(room, r);
            return self.enter_waiting();
        }
        if let Some(r) = self.rooms.get(&room) {
            // Asked again: the server answers (`already_in_room`), unless
            // its `enter` still waits.
            if self.phase == Phase::Joined && !r.waits {
                self.enter_now(&room);
            }
            return;
        }
        let asked = self.rooms.values().map(|r| r.asked + 1).max().unwrap_or(0);
        let waits = !self.parting.is_empty();
        self.rooms.insert(
            room.clone(),
            RoomState {
                asked,
                waits,
                ..RoomState::default()
            },
        );
        if self.phase == Phase::Joined && !waits {
            self.enter_now(&room);
        }
    }

    /// Leave `room`. Messages sent to it and not answered yet (by their
    /// echo or an error), or waiting for its replay (after a fresh
    /// session), are answered first, the `part` only after the last of
    /// them: one resent after a reconnect into a room already left would
    /// be refused (`not_in_room`) although it may have arrived. Meanwhile
    /// the room is left as far as [`rooms`](Client::rooms) and the events
    /// go (only the answers to those messages are told), and a reconnect
    /// enters it again to resend them. Entered again before its `part`
    /// went, the room is kept as it was, and the events that came
    /// meanwhile are told then (up to 512 of them, and 4 MiB of text;
    /// past that the oldest are let go, and the
    /// [`Entered`](ClientEvent::Entered) says `gap`).
    pub fn part(&mut self, room: &str) {
        let room = room.to_ascii_lowercase();
        let Some(mut r) = self.rooms.remove(&room) else {
            return;
        };
        if r.waits {
            // Never entered: nothing to part, and what was sent to it
            // since waited for the entering.
            return self.give_up_unentered(&room);
        }
        if self.held.contains(&room) || self.pending.iter().any(|p| p.room == room) {
            r.skipped = false;
            r.take_untold();
            self.parting.insert(room, r);
        } else if self.phase == Phase::Joined {
            self.send(ClientFrame::part(room));
        }
    }

    /// Send the `enter` of `room` (one being parted too: see
    /// [`part`](Client::part)), with `since` if it was entered before.
    pub(super) fn enter_now(&mut self, room: &str) {
        if !self.parting.contains_key(room) {
            self.rooms.entry(room.to_owned()).or_default();
        }
        let since = self
            .rooms
            .get(room)
            .or_else(|| self.parting.get(room))
            .and_then(|r| r.epoch.clone().map(|e| (r.last_seq, e)));
        self.entering.insert(room.to_owned());
        self.send(ClientFrame::enter(room, since));
    }

    /// Send the `part` of `room`, parted while messages to it waited, if
    /// none waits any longer (nor its replay). Only a room entered, or
    /// being entered, on this connection is parted: one whose entering
    /// was refused is not in, and a reconnect enters it again first.
    pub(super) fn part_when_answered(&mut self, room: &str) {
        // Checked first: every answer to a message comes here, and almost
        // no room is being parted.
        if !self.parting.contains_key(room)
            || self.phase != Phase::Joined
            || self.held.contains(room)
            || self.pending.iter().any(|p| p.room == room)
        {
            return;
        }
        let entered = self.entering.contains(room);
        if let Some(r) = self.parting.remove(room) {
            if r.entered || entered {
                self.send(ClientFrame::part(room));
            }
        }
        self.enter_waiting();
    }

    /// Whether `room`'s `enter` waits for the rooms being parted.
    pub(super) fn waits(&self, room: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| r.waits)
    }

    /// Once no room is being parted, enter those whose `enter` waited for
    /// that (in the order asked for), and send what waited for them.
    pub(super) fn enter_waiting(&mut self) {
        if self.phase != Phase::Joined || !self.parting.is_empty() {
            return;
        }
        let mut waiting: Vec<(u64, String)> = self
            .rooms
            .iter_mut()
            .filter(|(_, r)| r.waits)
            .map(|(name, r)| {
                r.waits = false;
                (r.asked, name.clone())
            })
            .collect();
        if waiting.is_empty() {
            return;
        }
        waiting.sort_unstable();
        for (_, room) in &waiting {
            self.enter_now(room);
        }
        // Not one sent to the room on this connection before it was asked
        // for (it waits for its answer: `not_in_room`).
        let held = std::mem::take(&mut self.held);
        let connection = self.connections;
        self.send_pending(|p| {
            p.sent_on != connection
                && !held.contains(&p.room)
                && waiting.iter().any(|(_, r)| *r == p.room)
        });
        self.held = held;
    }
}
