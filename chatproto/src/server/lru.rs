//! The rooms in the order they were last used, by kind, for the two
//! forgettings that take the least recently used room: the oldest
//! messages of the room least recently used (all history past its
//! budget; rooms with more than their newest message first) and the empty
//! room least recently used (at the cap of rooms). Each looked at every
//! room every time: with 10,000 rooms, a message past the history budget
//! cost 119 to 211 us, against 0.6 to 1.5 us now (BENCHMARKS.md, "Forgetting
//! the least recently used room").
//!
//! A room is noted with its `touched` whenever that changes (an event
//! applied, a room restored) and when its history is cut to one message;
//! an entry whose room was used since (another `touched`), or is no longer
//! of its kind, is stale and goes when it is found. `touched` only grows,
//! so entries noted as rooms are used are in order; the others are kept in
//! ordered sets.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use crate::server::ids::StrMap;
use crate::server::room::Room;

/// Stale entries are swept out when there are this many more than rooms
/// (and more than twice as many).
const SWEEP_OVER: usize = 1_024;

#[derive(Debug, Default)]
pub(crate) struct Order {
    /// Rooms that kept more than one message, in the order they were used.
    several: VecDeque<(u64, Arc<str>)>,
    /// Rooms that keep exactly one message, by when they were last used.
    one: BTreeSet<(u64, Arc<str>)>,
    /// Empty rooms (see [`Room::is_empty`]) that never held a message, by
    /// when they were last used (rooms made before any event count as used
    /// at 0).
    empty: BTreeSet<(u64, Arc<str>)>,
    /// Empty rooms that held a message ([`Room::said`]), likewise: forgotten
    /// only when no room of `empty` is left, so that rooms made and left
    /// in a loop do not push out a room whose history would go with it.
    empty_said: BTreeSet<(u64, Arc<str>)>,
}

impl Order {
    /// `room` was used (`touched` is new), or made: note it as it is now.
    /// `rooms`: how many there are. True when stale entries should be
    /// swept out now ([`Order::sweep`]).
    #[must_use]
    pub fn used(&mut self, room: &Room, rooms: usize) -> bool {
        match room.history.len() {
            0 => {}
            1 => {
                self.one.insert((room.touched, Arc::clone(&room.name)));
            }
            _ => match self.several.back_mut() {
                // The same room again (the common case: one busy room):
                // its entry moves to now, where it is already.
                Some((t, name)) if Arc::ptr_eq(name, &room.name) => *t = room.touched,
                _ => self
                    .several
                    .push_back((room.touched, Arc::clone(&room.name))),
            },
        }
        if room.touched == 0 || room.is_empty() {
            self.emptied(room);
        }
        let most = rooms.saturating_mul(2).max(rooms + SWEEP_OVER);
        self.several.len() > most
            || self.one.len() > most
            || self.empty.len() > most
            || self.empty_said.len() > most
    }

    /// `room` is empty now, not by an event of its own (the events on
    /// their way to it were given up).
    pub fn emptied(&mut self, room: &Room) {
        let entry = (room.touched, Arc::clone(&room.name));
        if room.said {
            self.empty_said.insert(entry);
        } else {
            self.empty.insert(entry);
        }
    }

    /// `room`'s history was cut, not by an event of its own.
    pub fn cut(&mut self, room: &Room) {
        if room.history.len() == 1 {
            self.one.insert((room.touched, Arc::clone(&room.name)));
        }
    }

    /// The room least recently used of those that keep messages, those
    /// keeping more than one first.
    pub fn oldest_with_history(&mut self, rooms: &StrMap<Room>) -> Option<Arc<str>> {
        while let Some((t, name)) = self.several.front() {
            if rooms
                .get(&**name)
                .is_some_and(|r| r.touched == *t && r.history.len() > 1)
            {
                return Some(Arc::clone(name));
            }
            // Used since, cut to one message (then in `one`), or gone.
            self.several.pop_front();
        }
        while let Some((t, name)) = self.one.first() {
            if rooms
                .get(&**name)
                .is_some_and(|r| r.touched == *t && r.history.len() == 1)
            {
                return Some(Arc::clone(name));
            }
            self.one.pop_first();
        }
        None
    }

    /// The empty room least recently used of those that never held a
    /// message, else of those that did.
    pub fn oldest_empty(&mut self, rooms: &StrMap<Room>) -> Option<Arc<str>> {
        oldest_in(&mut self.empty, rooms, false)
            .or_else(|| oldest_in(&mut self.empty_said, rooms, true))
    }

    /// Drop every stale entry (an empty room's stays while the room was
    /// not used since: see [`Order::oldest_empty`]).
    pub fn sweep(&mut self, rooms: &StrMap<Room>) {
        let now = |t: u64, name: &str| rooms.get(name).filter(|r| r.touched == t);
        self.several
            .retain(|(t, n)| now(*t, n).is_some_and(|r| r.history.len() > 1));
        self.one
            .retain(|(t, n)| now(*t, n).is_some_and(|r| r.history.len() == 1));
        self.empty
            .retain(|(t, n)| now(*t, n).is_some_and(|r| !r.said));
        self.empty_said.retain(|(t, n)| now(*t, n).is_some());
    }
}

/// The first room of `set` that is empty now, stale entries dropped on the
/// way: gone, used since, or (`said` false) that held a message since
/// without being used (restored anew).
fn oldest_in(
    set: &mut BTreeSet<(u64, Arc<str>)>,
    rooms: &StrMap<Room>,
    said: bool,
) -> Option<Arc<str>> {
    let mut stale = Vec::new();
    let mut found = None;
    for (t, name) in set.iter() {
        match rooms.get(&**name) {
            Some(r) if r.touched == *t && (said || !r.said) => {
                if r.is_empty() {
                    found = Some(Arc::clone(name));
                    break;
                }
                // Not empty now without being used (an event on its
                // way): it may be empty again the same way.
            }
            _ => stale.push((*t, Arc::clone(name))),
        }
    }
    for e in stale {
        set.remove(&e);
    }
    found
}
