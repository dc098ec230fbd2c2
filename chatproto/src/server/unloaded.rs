//! Rooms a durable server keeps in its store but not in memory.
//!
//! At the cap of rooms ([`ServerConfig::max_rooms`](crate::ServerConfig::max_rooms))
//! a server forgets the least recently used room nobody is in. A memory
//! server's room goes with its history. A durable server's room that held
//! a message is only unloaded: its history stays in the store, and the core
//! keeps what it needs to take the room up again (its epoch, its last seq,
//! where its stored history starts). Entering it loads it back under the
//! same epoch, so seqs go on where they stopped, a client's `since` still
//! holds, and replays and history pages read the store.
//!
//! Unloaded rooms are bounded too
//! ([`ServerConfig::max_stored_rooms`](crate::ServerConfig::max_stored_rooms)):
//! past it the one unloaded longest ago is forgotten, history and all.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::server::durable::{Record, RestoreError};
use crate::server::event::{Event, EventBody};
use crate::server::room::Room;
use crate::server::Server;
use crate::SessionId;

/// What a room kept in the store needs to be taken up again (its name is
/// its key in [`Unloaded`]).
#[derive(Debug)]
pub(crate) struct Resting {
    epoch: Box<str>,
    /// The highest seq the room gave out.
    last_seq: u64,
    /// The oldest seq its stored history holds.
    oldest: u64,
    /// When it was unloaded (the count of unloadings), its key in `order`.
    at: u64,
    /// The store may not know the room (or its last seq): it was unloaded
    /// while the store failed, or a batch that may have held its records
    /// failed since. Told when the store works again.
    unstored: bool,
    /// The store ticket issued when it was unloaded (or last told to the
    /// store): a batch failing before that ticket is stored may have held
    /// what the store needs of it.
    ticket: u64,
}

/// The rooms unloaded, by name and in the order they were unloaded: about
/// 250 bytes each (the two maps' entries, the name and the epoch;
/// BENCHMARKS.md, "An unloaded room's memory").
#[derive(Debug, Default)]
pub(crate) struct Unloaded {
    rooms: HashMap<Arc<str>, Resting, foldhash::fast::RandomState>,
    order: BTreeMap<u64, Arc<str>>,
    count: u64,
}

impl Resting {
    /// The room as it rests in the store, taken up again (its memory
    /// window empty: replays and pages read the store).
    pub fn into_room(self, name: Arc<str>) -> Room {
        let mut room = Room::new(name, self.epoch.into());
        room.seq = self.last_seq;
        room.next_seq = self.last_seq + 1;
        room.history_start = self.last_seq + 1;
        room.stored_from = self.oldest.clamp(1, self.last_seq + 1);
        // (Unloaded while the store failed, and it fails still: it is told
        // of every room in memory when it works again.)
        room.said = true;
        room
    }
}

impl Unloaded {
    /// Rest `name` as unloaded now.
    fn put(&mut self, name: Arc<str>, mut r: Resting) {
        self.count += 1;
        r.at = self.count;
        self.put_back(name, r);
    }

    /// Rest `name` again as `r` says, where it was in the order.
    pub fn put_back(&mut self, name: Arc<str>, r: Resting) {
        if let Some(old) = self.rooms.remove(&name) {
            self.order.remove(&old.at);
        }
        self.order.insert(r.at, Arc::clone(&name));
        self.rooms.insert(name, r);
    }

    /// The name of `name`'s room as kept here, and its epoch, if it
    /// rests unloaded.
    pub fn get(&self, name: &str) -> Option<(&Arc<str>, &str)> {
        self.rooms.get_key_value(name).map(|(k, r)| (k, &*r.epoch))
    }

    pub fn take(&mut self, name: &str) -> Option<(Arc<str>, Resting)> {
        let (name, r) = self.rooms.remove_entry(name)?;
        self.order.remove(&r.at);
        Some((name, r))
    }

    fn take_oldest(&mut self) -> Option<Arc<str>> {
        let (_, name) = self.order.pop_first()?;
        self.rooms.remove(&name);
        Some(name)
    }

    /// A batch failed: every room whose records it may have held (those
    /// unloaded or told to the store after the last batch stored,
    /// `stored`) is told to the store again when it works.
    pub fn failed(&mut self, stored: u64) {
        for r in self.rooms.values_mut() {
            if r.ticket > stored {
                r.unstored = true;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Retention moved the start of `name`'s stored history (of `epoch`,
    /// when given).
    pub fn pruned(&mut self, name: &str, epoch: Option<&str>, oldest: u64) {
        if let Some(r) = self.rooms.get_mut(name) {
            if epoch.is_none_or(|e| e == &*r.epoch) {
                r.oldest = r.oldest.max(oldest.min(r.last_seq + 1));
            }
        }
    }
}

impl Server {
    /// How many rooms may rest in the store unloaded: none for a memory
    /// server or a cluster (whose rooms are never forgotten).
    pub(crate) fn unloaded_cap(&self) -> usize {
        if !self.config.durable || self.config.cluster {
            return 0;
        }
        self.config
            .max_stored_rooms
            .saturating_sub(self.config.max_rooms)
    }

    /// Rooms resting in the store, not in memory (see
    /// [`ServerConfig::max_stored_rooms`](crate::ServerConfig::max_stored_rooms)):
    /// entering one loads it back.
    pub fn rooms_unloaded(&self) -> usize {
        self.unloaded.len()
    }

    /// Take `room` (nobody in it, nothing on its way) out of memory. A
    /// room that held a message rests in the store when there is room for
    /// it there; any other is forgotten. True if it was unloaded.
    pub(crate) fn unload(&mut self, room: &Room) -> bool {
        let cap = self.unloaded_cap();
        if cap == 0 || !room.said {
            return false;
        }
        let oldest = room.stored_from.min(room.history_start);
        self.rest(&room.name, &room.epoch, room.next_seq - 1, oldest, cap);
        true
    }

    /// Rest `name` in the store, unloaded, as of `epoch` with seqs given
    /// out up to `last_seq` and history from `oldest`; past `cap` rooms
    /// resting, the one unloaded longest ago is forgotten.
    fn rest(&mut self, name: &Arc<str>, epoch: &str, last_seq: u64, oldest: u64, cap: usize) {
        let resting = Resting {
            epoch: epoch.into(),
            last_seq,
            oldest,
            at: 0,
            unstored: self.gate.down.is_some(),
            ticket: self.gate.issued,
        };
        self.unloaded.put(Arc::clone(name), resting);
        while self.unloaded.len() > cap {
            let Some(old) = self.unloaded.take_oldest() else {
                break;
            };
            self.rooms_forgotten += 1;
            self.record_forgotten(old, true);
        }
    }

    /// The rooms the store may not know as they are (see
    /// [`Unloaded::failed`]), for the store once it works again: each
    /// with the highest seq it gave out, under `ticket` (the recovery
    /// batch's), so that if this batch fails too they are told again.
    pub(crate) fn unloaded_unstored(&mut self, ticket: u64) -> Vec<Record> {
        let mut out: Vec<_> = self
            .unloaded
            .rooms
            .iter_mut()
            .filter(|(_, r)| r.unstored)
            .map(|(name, r)| {
                r.unstored = false;
                r.ticket = ticket;
                (Arc::clone(name), r.epoch.to_string(), r.last_seq)
            })
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out.into_iter()
            .map(|(name, epoch, seq)| Record::room_at(name, epoch, seq))
            .collect()
    }

    /// Start again from a store: a room that stays in the store, not
    /// loaded (past the cap of rooms in memory), as
    /// [`restore_room`](Server::restore_room) takes its arguments. Entering
    /// it loads it back under the same epoch, its seqs going on from
    /// `last_seq`. Restore them from the least to the most recently active:
    /// past [`ServerConfig::max_stored_rooms`](crate::ServerConfig::max_stored_rooms)
    /// the earliest restored is forgotten (the store is told to delete
    /// it; a shell that would rather leave such rooms in the store restores
    /// no more than the cap, the cap of rooms in memory subtracted). A
    /// memory server or a cluster keeps none: the room is forgotten as
    /// well. A room restored so is kept whatever it held (whether it held
    /// a message is not asked). A name no client could give
    /// ([`RestoreError::RoomName`]), or a `last_seq` of 2^62 or more
    /// ([`RestoreError::SeqTooHigh`]), restores nothing; a room loaded
    /// already is left as it is ([`RestoreError::RoomLoaded`]).
    pub fn restore_unloaded_room(
        &mut self,
        name: &str,
        epoch: &str,
        last_seq: u64,
        oldest: u64,
    ) -> Result<(), RestoreError> {
        let name = RestoreError::check_room(name, last_seq)?;
        if self.rooms.contains_key(&name) {
            return Err(RestoreError::RoomLoaded { room: name });
        }
        let name: Arc<str> = Arc::from(name);
        let cap = self.unloaded_cap();
        if cap == 0 {
            self.rooms_forgotten += 1;
            self.record_forgotten(name, true);
            return Ok(());
        }
        self.rest(&name, epoch, last_seq, oldest.clamp(1, last_seq + 1), cap);
        Ok(())
    }

    /// Start again from a store: the message ids in `recent` (messages of
    /// `name`, a room restored before, oldest first), so that a restored
    /// session resending one of them into the room gets `duplicate` and
    /// not a second copy: [`restore_message_id`](Server::restore_message_id)
    /// for each message with an id, events other than messages passed
    /// over.
    pub fn restore_message_ids(&mut self, name: &str, recent: &[Event]) {
        for e in recent {
            if let EventBody::Msg {
                from, id: Some(id), ..
            } = &e.body
            {
                self.restore_message_id(name, *from, id, e.seq);
            }
        }
    }

    /// Start again from a store: `from` sent the message `seq` of `name`
    /// (a room restored before, loaded or not) with the id `id`, so that
    /// resending it into the room gets `duplicate` and not a second copy.
    /// Only a session restored before keeps it, within its id window,
    /// which keeps the last given (an id given again moves to the end,
    /// the newest; a room restored loaded gave its messages' ids room
    /// after room): give each session's ids in the order it sent them,
    /// across rooms, after all the rooms are restored, so that its window
    /// ends with its newest, as it did before the restart. A room not
    /// restored (or forgotten since) is passed over.
    pub fn restore_message_id(&mut self, name: &str, from: SessionId, id: &str, seq: u64) {
        let Some(s) = self.sessions.get_mut(&from) else {
            return;
        };
        let Ok(name) = crate::room_name(name) else {
            return;
        };
        let (name, epoch) = match self.rooms.get(&name) {
            Some(r) => (&r.name, r.epoch.as_str()),
            None => match self.unloaded.get(&name) {
                Some(resting) => resting,
                None => return,
            },
        };
        s.ids
            .insert_newest(id, name, epoch, seq, self.config.id_window);
    }
}
