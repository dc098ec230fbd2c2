//! Who is in a room, between nodes (see `cluster::roster`): the members
//! another node said, given to the core once the log reaches their seq
//! here, and this node's own, answered to a node that asks.

use std::sync::Arc;

use tracing::warn;

use super::{Hub, Owner};
use crate::cluster::Seats;

impl Hub {
    /// Another node said who is in `room` as of `seats.roster.seq`: given
    /// to the core now if that is the last event handed to it here, or
    /// once it is (the room is caught up with only then).
    pub(super) fn take_roster(&mut self, room: &str, seats: Seats) {
        let Some(c) = &mut self.cluster else { return };
        let Some(next) = self.server.next_logged(room) else {
            return;
        };
        let seq = seats.roster.seq;
        if seq.saturating_add(1) < next {
            warn!(
                room,
                seq, next, "another node's word on who is in the room came too late; not taken"
            );
            return;
        }
        c.seeds.insert(room.to_owned(), seats);
        self.seed_if_due(room);
        // Not given yet (the answer is ahead of what the log has brought
        // here): a node starting listens once it is.
        let Some(c) = &mut self.cluster else { return };
        if c.seeds.contains_key(room) && c.caught_up.is_some() {
            let to = c.catch_up.entry(room.to_owned()).or_insert(seq);
            *to = (*to).max(seq);
        }
    }

    /// Give the core the members another node said are in `room`, if the
    /// log here has just handed it the event they were taken at; and take
    /// who said each entered from them.
    pub(super) fn seed_if_due(&mut self, room: &str) {
        let Some(c) = &mut self.cluster else { return };
        if c.seeds.is_empty() {
            return;
        }
        let due = c
            .seeds
            .get(room)
            .is_some_and(|s| self.server.next_logged(room) == Some(s.roster.seq.saturating_add(1)));
        if !due {
            return;
        }
        let Some(seats) = c.seeds.remove(room) else {
            return;
        };
        let Seats { roster, owners } = seats;
        let members: Vec<(chatproto::SessionId, Arc<str>)> = roster
            .members
            .iter()
            .map(|m| (m.session, Arc::clone(&m.nick)))
            .collect();
        if let Err(e) = self.server.seed_roster(room, roster) {
            warn!(error = %e, "another node's word on who is in the room not taken");
            return;
        }
        c.unlisted.remove(room);
        // The runs that said who entered, as the other node has them.
        let room_key: Arc<str> = Arc::from(room);
        for rooms in c.owners.values_mut() {
            rooms.remove(room);
        }
        c.owners.retain(|_, rooms| !rooms.is_empty());
        for ((session, nick), (origin, since)) in members.into_iter().zip(owners) {
            if origin.is_empty() {
                continue;
            }
            c.owners.entry(session).or_default().insert(
                Arc::clone(&room_key),
                Owner {
                    origin,
                    seq: since,
                    nick,
                },
            );
        }
    }

    /// Who is in `room` here, with who said each entered: for another
    /// node that asks; `None` while this node has not caught up with it,
    /// or misses some of its members.
    pub(super) fn roster_of(&self, room: &str) -> Option<Seats> {
        let c = self.cluster.as_ref()?;
        if c.catch_up.contains_key(room) || c.unlisted.contains(room) || c.seeds.contains_key(room)
        {
            return None;
        }
        let roster = self.server.roster(room)?;
        let owners = roster
            .members
            .iter()
            .map(|m| {
                let owner = c.owners.get(&m.session).and_then(|rooms| rooms.get(room));
                owner.map_or_else(|| (Arc::from(""), 0), |o| (Arc::clone(&o.origin), o.seq))
            })
            .collect();
        Some(Seats { roster, owners })
    }
}
