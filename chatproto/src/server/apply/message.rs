//! Applying a message: kept in its room's history, its recipients
//! queued (the sender's echo apart), and the oldest history of the
//! least recently used rooms shed while all of it is over its budget.

use std::sync::Arc;

use super::deferred::same_proposal;
use crate::server::event::{Event, EventBody};
use crate::server::{Audience, Server};

impl Server {
    pub(super) fn apply_msg(&mut self, event: &Arc<Event>) {
        // Noted in the order of use there, before the history is shed.
        self.keep_and_deliver(event);
        // Over the budget for all rooms: the room least recently written
        // to gives back its oldest messages first, so rooms people left
        // behind go before the history of the rooms they talk in.
        self.shed_history();
    }

    fn keep_and_deliver(&mut self, event: &Arc<Event>) {
        let (cap, per_room) = (
            self.config.history_per_room,
            self.config.history_bytes_per_room,
        );
        let rooms = self.rooms.len();
        let room = self.rooms.get_mut(&*event.room).expect("checked by apply");
        room.seq = event.seq;
        let added = crate::server::room::event_bytes(event);
        let freed = room.remember(Arc::clone(event), cap, per_room);
        self.history_bytes = self.history_bytes + added - freed;
        if self.order.used(room, rooms) {
            self.order.sweep(&self.rooms);
        }
        let EventBody::Msg { from, to, id, .. } = &event.body else {
            return;
        };
        let here = self.rooms.get(&*event.room).expect("checked by apply");
        // The connection the echo goes to, if any. A room member has its
        // welcome; a sender of a private message may be a resume's new
        // connection that has not had it yet. One the core is closing (not
        // yet sent its `Close`) may have sent it. (Its session may be
        // forgotten meanwhile: that connection is the one the session is
        // in the room as.)
        let live = self.sessions.get(from).and_then(|s| s.conn);
        let closing = if self.closing.is_empty() {
            None
        } else {
            here.conn_of(*from).filter(|c| self.closing.contains_key(c))
        };
        let sender = [live, closing].into_iter().flatten().find(|&c| {
            if to.is_empty() {
                here.has(c)
            } else {
                self.welcomed(c)
            }
        });
        // Looked up again only after the cluster's bookkeeping, which
        // changes the server (the common case looks once).
        let room = if !self.config.cluster {
            here
        } else {
            // The seq its id stands for is known only now.
            let epoch = self.rooms.get(&*event.room).map_or("", |r| &r.epoch);
            if let (Some(id), Some(s)) = (id, self.sessions.get_mut(from)) {
                if s.ids.get(id).is_some() {
                    let cap = self.config.id_window;
                    s.ids.insert(id, &event.room, epoch, event.seq, cap);
                }
                // Resends of it waited for this: the echo answers the
                // first if it goes to the connection they came on (the
                // session's, in the room's fan-out now: not while that
                // connection's entering is still on its way, and still
                // while its leaving is), unless the copy is that
                // connection's own, whose frame the echo answers; the
                // others are told `duplicate`, with the seq known now,
                // each at its frame's place.
                if s.resent.iter().any(|(r, _)| r == id) {
                    let own = s.in_flight.iter().any(|w| same_proposal(&w.event, event));
                    let echoed = !own && sender.is_some() && sender == s.conn;
                    let frame = self.duplicate(id, &event.room, event.seq);
                    self.resends_answered(*from, id, &frame, echoed, true);
                }
            }
            self.rooms.get(&*event.room).expect("checked by apply")
        };
        if to.is_empty() {
            match (id, sender) {
                (Some(_), Some(me)) => {
                    let mut others = std::mem::take(&mut self.spare);
                    others.extend(room.members.iter().copied().filter(|&c| c != me));
                    self.pending.push_back(Audience::List(others));
                    self.pending.push_back(Audience::One(me, true));
                }
                _ => self.pending.push_back(Audience::Room),
            }
            return;
        }
        let mut list = std::mem::take(&mut self.spare);
        // Recipients in the room now: a resume's new connection is not
        // before its `welcome` and `entered` (its replay brings it).
        // (A session's connection in the room is its own, or the one the
        // core is closing, whose session may be forgotten meanwhile; never
        // one whose `Close` went out.)
        list.extend(to.iter().filter_map(|r| {
            room.conn_of(r.session).filter(|&c| {
                Some(c) != sender && (self.conns.contains_key(&c) || self.closing.contains_key(&c))
            })
        }));
        match (id, sender) {
            (Some(_), Some(me)) => {
                self.pending.push_back(Audience::List(list));
                self.pending.push_back(Audience::One(me, true));
            }
            (None, Some(me)) => {
                list.push(me);
                self.pending.push_back(Audience::List(list));
            }
            (_, None) => self.pending.push_back(Audience::List(list)),
        }
    }

    /// Forget the oldest messages of the least recently used rooms until
    /// all history fits its budget (or only the newest message is left).
    fn shed_history(&mut self) {
        while self.history_bytes > self.config.history_bytes_total {
            let noted = self.order.oldest_with_history(&self.rooms);
            debug_assert_eq!(
                self.touched_of(noted.as_deref()),
                self.touched_of(self.oldest_with_history_scan()),
                "the order of use kept for the history budget"
            );
            let Some(room) = noted.and_then(|n| self.rooms.get_mut(&*n)) else {
                return;
            };
            let freed = room.forget_oldest();
            if freed == 0 {
                return;
            }
            self.order.cut(room);
            self.history_bytes -= freed;
        }
    }

    /// When `room` was last used, if there is such a room (to check the
    /// order of use against a look at every room).
    pub(crate) fn touched_of(&self, room: Option<&str>) -> Option<u64> {
        room.and_then(|n| self.rooms.get(n)).map(|r| r.touched)
    }

    /// The room [`Server::shed_history`] takes from, by looking at every
    /// room (what [`lru::Order`](crate::server::lru) answers sooner).
    fn oldest_with_history_scan(&self) -> Option<&str> {
        let lru = self.rooms.iter().filter(|(_, r)| !r.history.is_empty());
        lru.min_by_key(|(_, r)| (r.history.len() == 1, r.touched))
            .map(|(n, _)| n.as_str())
    }
}
