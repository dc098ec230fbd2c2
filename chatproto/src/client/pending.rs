//! The messages sent and not yet acknowledged: held back until a fresh
//! session's replay ends, released, resent, or given up as too large.

use std::collections::{BTreeMap, VecDeque};

use super::{Client, ClientEvent, Phase, RoomState};
use crate::frame::{ClientFrame, ErrorCode};

/// A message sent and not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pending {
    pub(super) id: String,
    pub(super) room: String,
    pub(super) to: Vec<String>,
    pub(super) text: String,
    /// The room's last seq seen when its frame was first handed out to be
    /// sent (0 again once the room's history began anew): a fresh
    /// session's replay can hold it only above that. `None`: never sent,
    /// so no replay holds it, and nothing must be taken for it.
    pub(super) sent_after: Option<u64>,
    /// The nickname (its [key](crate::nick::nick_key)) it was last sent
    /// under: a fresh session's replay shows it from that one, which a
    /// fresh session joined under another (the first taken meanwhile) is
    /// not.
    pub(super) sent_as: String,
    /// The connection (its number, from 1) it was last handed out on; 0:
    /// never. One sent on this connection is not sent again on it.
    pub(super) sent_on: u64,
    /// Its frame was polled out (to be written) on a connection that has
    /// ended since, with no answer: the server may have it. One whose
    /// frame never left the core (typed offline, or still waiting for the
    /// pacer when its connection ended) cannot have arrived.
    pub(super) written: bool,
    /// Written on a session the server did not resume since, and not yet
    /// looked for in a replay of its room: the session open now does not
    /// know its id, so a resend could be a second copy. It waits for that
    /// replay (found, sent again, or given up as
    /// [`ClientEvent::Unconfirmed`]) on however many connections it takes,
    /// those that resume the new session too.
    pub(super) unchecked: bool,
}

impl Pending {
    /// Whether a message at `seq` in a fresh session's replay of its room,
    /// from `from` to `to` with `text`, can be this one: sent before, and
    /// the same text from the nickname it was sent under to the same
    /// people after what was seen then (an older message of the same text
    /// was another).
    pub(super) fn may_be(&self, seq: u64, from: &str, to: &[String], text: &str) -> bool {
        self.sent_after.is_some_and(|after| seq > after)
            && crate::nick::nick_key(from) == self.sent_as
            && self.text == text
            && same_people(&self.to, to)
    }
}

/// Whether two recipient lists name the same people (as the server
/// folds nicknames; it lists each once).
fn same_people(a: &[String], b: &[String]) -> bool {
    let keys = |l: &[String]| {
        l.iter()
            .map(|n| crate::nick::nick_key(n))
            .collect::<std::collections::BTreeSet<_>>()
    };
    keys(a) == keys(b)
}

impl Client {
    /// A session began. If it is fresh (`resumed` false), the server
    /// knows none of the earlier session's ids: every message written on
    /// an earlier connection is [unchecked](Pending::unchecked) from now
    /// on. One unchecked (now, or since a fresh session whose replay did
    /// not arrive before its connection ended) that this session cannot
    /// see again is given up, each told as [`ClientEvent::Unconfirmed`]:
    /// a private or group message (only the session that sent it sees it,
    /// PROTOCOL.md 5.6), or one to a room not entered again. Messages to
    /// everyone in a room entered again are looked for in its replay (see
    /// [`Client::release`]).
    pub(super) fn unconfirm_unseen(&mut self, resumed: bool) {
        if !resumed {
            for p in self.pending.iter_mut().filter(|p| p.written) {
                p.unchecked = true;
            }
        }
        let (rooms, parting) = (&self.rooms, &self.parting);
        let seen = |p: &Pending| {
            p.to.is_empty() && (rooms.contains_key(&p.room) || parting.contains_key(&p.room))
        };
        let (gone, kept): (VecDeque<Pending>, _) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.unchecked && !seen(p));
        self.pending = kept;
        for p in gone {
            self.unconfirmed(p);
        }
    }

    /// `room`, whose `enter` waited, is parted before it went; nothing
    /// is held for its replay any longer. Each message to it that the
    /// server will not answer on this connection is settled now, as the
    /// person who parted expects:
    ///
    /// - one that never went (it waited for the entering) is given up,
    ///   told as an error `not_in_room` with its id;
    /// - one written on an earlier connection and not sent on this one
    ///   (the room was entered again after a reconnect, and waited): if
    ///   the session knows its id, it is sent now, and the server answers
    ///   it by its id (`duplicate` if it had it, else `not_in_room`;
    ///   offline, the next `welcome` sends it); if it is
    ///   [unchecked](Pending::unchecked) (written before a fresh session,
    ///   which does not know its id and will not replay the room), it is
    ///   given up, told as [`ClientEvent::Unconfirmed`] (it may have
    ///   arrived, if the room's `enter` had gone before it).
    ///
    /// One sent on this connection (to the room before it was asked for)
    /// waits for the server's answer, as any message to a room not
    /// entered.
    pub(super) fn give_up_unentered(&mut self, room: &str) {
        // Held: its unchecked messages were to be looked for in the
        // room's replay.
        self.held.remove(room);
        let connection = self.connections;
        let earlier = |p: &Pending| p.room == room && p.sent_on != connection;
        let (gone, kept): (VecDeque<Pending>, _) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.room == room && (p.sent_after.is_none() || p.unchecked));
        self.pending = kept;
        for p in gone {
            if p.sent_after.is_some() {
                self.unconfirmed(p);
                continue;
            }
            self.event(ClientEvent::Error {
                code: ErrorCode::NotInRoom,
                message: format!(
                    "your message was not sent: you left #{room} before it was entered"
                ),
                id: Some(p.id),
                room: Some(p.room),
            });
        }
        // (Offline or joining, the next `welcome` sends it: the room is
        // not ours any more, so it waits for nothing.) What is left the
        // session knows by its id.
        if self.phase == Phase::Joined {
            self.send_pending(earlier);
        }
    }

    /// Tell that `p` is given up, its fate unknown.
    fn unconfirmed(&mut self, p: Pending) {
        self.event(ClientEvent::Unconfirmed {
            id: p.id,
            room: p.room,
            to: p.to,
            text: p.text,
        });
    }

    /// Messages waiting to be sent (again) whose frame is larger than the
    /// server takes (`max`, from its `welcome`) are given up, each told as
    /// an `error` `msg_too_large`: sent, the frame would close the
    /// connection, and be sent again after every reconnect.
    pub(super) fn drop_too_large(&mut self, max: usize) {
        let mut kept = VecDeque::with_capacity(self.pending.len());
        for p in std::mem::take(&mut self.pending) {
            match crate::encode(&msg_frame(&p), max) {
                Err(crate::EncodeError::TooLarge { len, .. }) => self.too_large(p, len, max),
                _ => kept.push_back(p),
            }
        }
        self.pending = kept;
    }

    /// The payload limit of the server's last `welcome`, or the
    /// protocol's default from a server that said none (PROTOCOL.md 1.1):
    /// a frame over it is refused by a shell encoding with that limit, and
    /// would wait for an echo for ever.
    pub(super) fn frame_limit(&self) -> usize {
        self.limits
            .as_ref()
            .map_or(crate::DEFAULT_MAX_FRAME_BYTES, |l| {
                // As `encode` takes it, so that what is said is what holds.
                usize::try_from(l.max_frame_bytes)
                    .unwrap_or(usize::MAX)
                    .clamp(crate::MIN_MAX_FRAME_BYTES, super::CLIENT_MAX_FRAME_BYTES)
            })
    }

    /// Tell that `p`, whose frame is `len` bytes, is given up: the server
    /// takes at most `max`.
    pub(super) fn too_large(&mut self, p: Pending, len: usize, max: usize) {
        self.event(ClientEvent::Error {
            code: ErrorCode::MsgTooLarge,
            message: format!(
                "your message was not sent: its frame is {len} bytes and the server takes at most {max}"
            ),
            id: Some(p.id),
            room: Some(p.room),
        });
    }

    /// The replay of `room` is over (or none is coming: its entering
    /// was refused): send what was held for it. What was
    /// [unchecked](Pending::unchecked) and not found in the replay was not
    /// stored if the replay reached back to when it was sent
    /// ([`RoomState::whole`]): sent again, under an id this session knows
    /// from now on. Otherwise the server may have had it (the replay has a
    /// gap, the history began anew, or there was no replay): given up,
    /// told as [`ClientEvent::Unconfirmed`], not sent again.
    pub(super) fn release(&mut self, room: &str) {
        if !self.held.remove(room) {
            return;
        }
        let whole = (self.rooms.get(room))
            .or_else(|| self.parting.get(room))
            .is_some_and(|r| r.whole);
        if !whole {
            let (gone, kept): (VecDeque<Pending>, _) = std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|p| p.room == room && p.unchecked);
            self.pending = kept;
            for p in gone {
                self.unconfirmed(p);
            }
        }
        for p in self.pending.iter_mut().filter(|p| p.room == room) {
            p.unchecked = false;
        }
        self.send_pending(|p| p.room == room);
        self.part_when_answered(room);
    }

    /// Send the waiting messages `which` picks, in order, each noted as
    /// sent after its room's last seq if it was not before (see
    /// [`Pending::sent_after`]).
    pub(super) fn send_pending(&mut self, which: impl Fn(&Pending) -> bool) {
        let mut frames = Vec::new();
        let me = crate::nick::nick_key(&self.nick);
        let connection = self.connections;
        for p in self.pending.iter_mut() {
            if !which(p) {
                continue;
            }
            p.sent_on = connection;
            if p.sent_after.is_none() {
                p.sent_after = Some(seen_in(&self.rooms, &self.parting, &p.room));
            }
            p.sent_as.clone_from(&me);
            frames.push(msg_frame(p));
        }
        for f in frames {
            self.send(f);
        }
    }

    /// The last seq seen of `room` (being parted, too): 0 before any.
    pub(super) fn seen_in(&self, room: &str) -> u64 {
        seen_in(&self.rooms, &self.parting, room)
    }

    /// `room`'s history began anew: what was sent to it may be anywhere
    /// in the new one.
    pub(super) fn sent_into_new_history(&mut self, room: &str) {
        for p in self.pending.iter_mut().filter(|p| p.room == room) {
            if p.sent_after.is_some() {
                p.sent_after = Some(0);
            }
        }
    }

    /// `room` came back at `seq`, below what was seen there (the same
    /// history, its last seqs given again): a message sent after a later
    /// seq may be stored above `seq` now, so it is looked for from there.
    pub(super) fn sent_into_history_behind(&mut self, room: &str, seq: u64) {
        for p in self.pending.iter_mut().filter(|p| p.room == room) {
            if let Some(after) = &mut p.sent_after {
                *after = (*after).min(seq);
            }
        }
    }
}

/// [`Client::seen_in`], from the rooms alone (while a message of
/// `pending` is borrowed).
fn seen_in(
    rooms: &BTreeMap<String, RoomState>,
    parting: &BTreeMap<String, RoomState>,
    room: &str,
) -> u64 {
    rooms
        .get(room)
        .or_else(|| parting.get(room))
        .map_or(0, |r| r.last_seq)
}

pub(super) fn msg_frame(p: &Pending) -> ClientFrame {
    ClientFrame::msg_in(
        p.room.clone(),
        p.to.clone(),
        p.text.clone(),
        Some(p.id.clone()),
    )
}
