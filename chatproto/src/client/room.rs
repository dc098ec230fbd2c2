//! A room as the client knows it: where it was left (epoch, last seq),
//! who is in it, and the events kept while its `part` waits.

use std::collections::VecDeque;

use super::roster::Roster;
#[cfg(doc)]
use super::Client;
use super::ClientEvent;

#[derive(Debug, Clone, Default)]
pub(super) struct RoomState {
    /// The epoch and last seq seen, to enter again with `since`.
    pub(super) epoch: Option<String>,
    pub(super) last_seq: u64,
    /// Where its kept history starts, as the server last said (its
    /// `entered`, or a last `history` page).
    pub(super) oldest: u64,
    /// Who is in it.
    pub(super) roster: Roster,
    /// Entered on this connection.
    pub(super) entered: bool,
    /// When it was asked for (the rooms given to `new` first, in order):
    /// after a join they are entered in this order.
    pub(super) asked: u64,
    /// Parted, its `part` not sent yet: the events of the room that came
    /// meanwhile and were not told, oldest first (at most [`MAX_UNTOLD`]
    /// of them, [`MAX_UNTOLD_BYTES`] in all), told if it is entered again
    /// before the `part` goes.
    pub(super) untold: VecDeque<ClientEvent>,
    /// The bytes of the strings of `untold`.
    pub(super) untold_bytes: usize,
    /// Some of those were let go (past the caps), or the room was
    /// entered again with a gap meanwhile: entered again, the user is
    /// told of a gap.
    pub(super) skipped: bool,
    /// This connection's `entered` of it replays everything after what
    /// was seen before (the same history, no gap): a message of ours not
    /// in that replay was not stored.
    pub(super) whole: bool,
    /// Its `enter` waits until no room is being parted (see
    /// [`Client::enter`]): they still count against the server's rooms
    /// per client, and at that cap it would be refused. Kept across a
    /// reconnect: the next connection enters what the last one was in
    /// first, then these.
    pub(super) waits: bool,
}

/// The most events kept of a room while its `part` waits (see
/// [`Client::part`]): a replay's worth (500 by default), so that a room
/// parted during a replay and entered again loses nothing...
const MAX_UNTOLD: usize = 512;
/// ...and the most bytes of their strings: a hostile server's 512
/// frames of 16 MiB each would otherwise be kept whole.
const MAX_UNTOLD_BYTES: usize = 4 * 1024 * 1024;

impl RoomState {
    /// `nick` came (`online`) or went at `seq`: the roster follows, once.
    /// Whether it is new (not a seq seen already).
    pub(super) fn presence(&mut self, seq: u64, nick: &str, online: bool) -> bool {
        if seq <= self.last_seq {
            return false;
        }
        self.last_seq = seq;
        if online {
            self.roster.admit(nick.to_owned());
        } else {
            self.roster.remove(nick);
        }
        true
    }

    /// Keep `e`, an event of this room that came while it was being
    /// parted, to tell if it is entered again; past the caps the oldest
    /// kept are let go.
    pub(super) fn untold(&mut self, e: ClientEvent) {
        self.untold_bytes += event_bytes(&e);
        self.untold.push_back(e);
        while self.untold.len() > MAX_UNTOLD || self.untold_bytes > MAX_UNTOLD_BYTES {
            let Some(old) = self.untold.pop_front() else {
                break;
            };
            self.untold_bytes -= event_bytes(&old);
            self.skipped = true;
        }
    }

    /// Let go of the messages kept past `seq` (all of them at 0: a room
    /// entered in a history they are not of), and every presence kept
    /// with them at 0; a gap is told if any was.
    pub(super) fn untold_after(&mut self, seq: u64) {
        let before = self.untold.len();
        self.untold.retain(|e| match e {
            ClientEvent::Message { seq: s, .. } => *s <= seq,
            _ => seq > 0,
        });
        if self.untold.len() != before {
            self.untold_bytes = self.untold.iter().map(event_bytes).sum();
            self.skipped = true;
        }
    }

    /// Forget what was kept while parting (told, or parted anew).
    pub(super) fn take_untold(&mut self) -> VecDeque<ClientEvent> {
        self.untold_bytes = 0;
        std::mem::take(&mut self.untold)
    }
}

/// The bytes of the strings of `e`, an event kept while its room is
/// parted (a message or a presence).
fn event_bytes(e: &ClientEvent) -> usize {
    match e {
        ClientEvent::Message {
            room,
            from,
            to,
            text,
            ..
        } => room.len() + from.len() + text.len() + to.iter().map(String::len).sum::<usize>(),
        ClientEvent::Presence { room, nick, .. } => room.len() + nick.len(),
        _ => 0,
    }
}
