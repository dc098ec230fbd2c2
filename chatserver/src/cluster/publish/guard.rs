//! Which proposals of a batch go in its next round, and which of them go
//! guarded (with an expectation no stream can meet) so that one stored
//! late cannot change what later ones meant.

use chatproto::{EventBody, SessionId};

use super::{PROBE, REFUSED};
use crate::cluster::entry::decode_event;
use crate::cluster::Proposal;

/// What a guard needs to know of a proposal: whether it is a message, or
/// a presence (an entering or a leaving) of which session.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Msg,
    Presence(SessionId),
}

fn kind_of(p: &Proposal) -> Option<Kind> {
    let event = decode_event(&p.room, 0, &p.payload)?;
    Some(match event.body {
        EventBody::Msg { .. } => Kind::Msg,
        EventBody::Presence { session, .. } => Kind::Presence(session),
        _ => return None,
    })
}

/// What the next round of a batch sends: while any proposal sent before
/// has had no answer (`unsure`), those only, each a [`PROBE`] (looked for
/// below the stream's top: a copy may be above a later one of its room
/// answered, if that answer named another node's older copy); then the
/// rest, as [`guarded`] says.
pub(super) fn next_round(
    batch: &[Proposal],
    stored: &[u64],
    unsure: &[bool],
) -> Vec<(usize, Option<u64>)> {
    let probing = (0..batch.len()).any(|i| stored[i] == 0 && unsure[i]);
    guarded(batch, stored)
        .filter(|&(i, _)| !probing || unsure[i])
        .map(|(i, guard)| (i, if probing { Some(PROBE) } else { guard }))
        .collect()
}

/// The proposals of `batch` not stored yet, in order, each guarded (with
/// the lowest seq of the later proposals of its room stored) if storing it
/// after them would change what they meant: a message behind any of them
/// (after its sender's later messages), an entering or a leaving behind
/// its own session's later presence in the room (a leaving after its
/// session's entering again would take it out of the room; an entering
/// after its session's parting would put it back in). Stored late, any
/// other presence means what it meant (an entering after its session's
/// message leaves that message unechoed, but refusing it would not echo
/// it either, and the session is in the room as it asked).
fn guarded<'a>(
    batch: &'a [Proposal],
    stored: &'a [u64],
) -> impl Iterator<Item = (usize, Option<u64>)> + 'a {
    // Per room: the lowest seq of its later proposals stored, and the
    // sessions with a presence among them.
    let mut later: Vec<(&str, u64, Vec<SessionId>)> = Vec::new();
    let mut guard = vec![None; batch.len()];
    for i in (0..batch.len()).rev() {
        let room = &*batch[i].room;
        match stored[i] {
            REFUSED => {}
            0 => {
                let Some((_, below, moved)) = later.iter().find(|(r, _, _)| *r == room) else {
                    continue;
                };
                let guard_it = match kind_of(&batch[i]) {
                    Some(Kind::Msg) => true,
                    Some(Kind::Presence(s)) => moved.contains(&s),
                    None => false,
                };
                if guard_it {
                    guard[i] = Some(*below);
                }
            }
            seq => {
                let at = match later.iter().position(|(r, _, _)| *r == room) {
                    Some(at) => at,
                    None => {
                        later.push((room, seq, Vec::new()));
                        later.len() - 1
                    }
                };
                let l = &mut later[at];
                l.1 = l.1.min(seq);
                if let Some(Kind::Presence(s)) = kind_of(&batch[i]) {
                    l.2.push(s);
                }
            }
        }
    }
    (0..batch.len())
        .filter(move |&i| stored[i] == 0)
        .map(move |i| (i, guard[i]))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chatproto::{Event, PresenceStatus};

    use super::*;
    use crate::cluster::entry::encode_event;

    fn proposal(room: &str, body: EventBody) -> Proposal {
        let room: Arc<str> = room.into();
        let event = Event::new(Arc::clone(&room), 0, 1, body);
        Proposal {
            room,
            payload: encode_event(&event),
            msg_id: String::new(),
            undoable: true,
            tried: true,
            first_sent: None,
            number: 0,
        }
    }

    fn msg(room: &str, s: u64) -> Proposal {
        proposal(
            room,
            EventBody::msg(SessionId(s), "n", Vec::new(), "hi", None),
        )
    }

    fn enter(room: &str, s: u64) -> Proposal {
        proposal(
            room,
            EventBody::presence(SessionId(s), "n", PresenceStatus::Online),
        )
    }

    fn leave(room: &str, s: u64) -> Proposal {
        proposal(
            room,
            EventBody::presence(SessionId(s), "n", PresenceStatus::Offline),
        )
    }

    fn guards(batch: &[Proposal], stored: &[u64]) -> Vec<(usize, Option<u64>)> {
        guarded(batch, stored).collect()
    }

    #[test]
    fn a_message_behind_a_later_stored_one_of_its_room_is_guarded() {
        // Lost: 0, 1 and 2 (room a), 4 (room b); stored: 3 (a, seq 9), 5 (a, seq 7).
        let batch = [
            msg("a", 1),
            enter("a", 2),
            leave("a", 6),
            msg("a", 3),
            msg("b", 4),
            msg("a", 5),
        ];
        let stored = [0, 0, 0, 9, 0, 7];
        // Another session's presence is not guarded: late, it means what
        // it meant.
        assert_eq!(
            guards(&batch, &stored),
            [(0, Some(7)), (1, None), (2, None), (4, None)]
        );
        // Nothing later stored: tried again as it was.
        assert_eq!(guards(&batch[..2], &[0, 0]), [(0, None), (1, None)]);
        // A refused one is not a later stored one.
        assert_eq!(
            guards(&batch[..4], &[0, 0, 0, REFUSED]),
            [(0, None), (1, None), (2, None)]
        );
    }

    #[test]
    fn while_a_proposal_sent_is_unanswered_only_those_go_each_guarded() {
        // 0 and 2 sent, no answer; 1 not sent yet; 3 stored at seq 9.
        let batch = [msg("a", 1), msg("a", 2), msg("b", 3), msg("a", 4)];
        let stored = [0, 0, 0, 9];
        assert_eq!(
            next_round(&batch, &stored, &[true, false, true, false]),
            [(0, Some(PROBE)), (2, Some(PROBE))]
        );
        // Answered (stored nowhere): the rest go, guarded as before.
        assert_eq!(
            next_round(&batch, &stored, &[false; 4]),
            [(0, Some(9)), (1, Some(9)), (2, None)]
        );
    }

    #[test]
    fn an_entering_is_guarded_only_behind_its_own_sessions_leaving() {
        let batch = [enter("a", 1), enter("a", 2), enter("b", 1), leave("a", 1)];
        assert_eq!(
            guards(&batch, &[0, 0, 0, 12]),
            [(0, Some(12)), (1, None), (2, None)]
        );
    }

    #[test]
    fn a_leaving_is_guarded_only_behind_its_own_sessions_entering() {
        let batch = [
            leave("a", 1),
            leave("a", 2),
            leave("b", 1),
            msg("a", 3),
            enter("a", 1),
        ];
        let stored = [0, 0, 0, 12, 13];
        // Session 1's leaving of a would undo its entering again; session
        // 2's would not, nor session 1's of another room.
        assert_eq!(
            guards(&batch, &stored),
            [(0, Some(12)), (1, None), (2, None)]
        );
        // Behind someone else's message only: stored late, as before.
        assert_eq!(
            guards(&batch[..4], &[0, 0, 0, 12]),
            [(0, None), (1, None), (2, None)]
        );
    }
}
