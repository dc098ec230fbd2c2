//! Applying: where a stamped event changes its room (its history, and its
//! members as the event tells them), one event at a time, as the shell
//! drains [`Server::poll`]. What changes a room besides is listed in
//! [`event`](super::event)'s docs.

mod deferred;
mod message;
mod presence;

use std::sync::Arc;

use crate::frame::{PresenceStatus, ServerFrame};
use crate::server::event::{Event, EventBody};
use crate::server::output::Output;
use crate::server::{Audience, ClientId, Server, Step};

/// The most records a new batch has room for before its first push: more
/// than one turn of a busy server hands the store.
const RECORDS_ROOM: usize = 4096;

impl Server {
    /// The next thing to do, or `None` when there is nothing to do now:
    /// nothing is left, or (a durable server) what is left waits behind a
    /// store batch not answered yet ([`Output::Persist`]; counted by
    /// [`outputs_waiting`](Server::outputs_waiting)); a `ping` for a
    /// connection whose answers are held
    /// ([`held_ping_ms`](crate::ServerConfig::held_ping_ms)) comes first,
    /// waiting for nothing. Call after each `handle_*` (or after
    /// several), until `None`.
    #[must_use = "outputs not acted on are frames lost or connections left open"]
    pub fn poll(&mut self) -> Option<Output<'_>> {
        // A loop, not a call again, for each step that comes to nothing (a
        // queued answer to a connection gone): there may be thousands.
        loop {
            // A `ping` answers no frame: it waits for nothing.
            while let Some(to) = self.keepalives.pop_front() {
                if self.conns.contains_key(&to) {
                    let frame = ServerFrame::Ping;
                    return Some(Output::Send { to, frame });
                }
            }
            if !self.proposed.is_empty() {
                return Some(Output::Propose {
                    events: std::mem::take(&mut self.proposed),
                });
            }
            if !self.gate.records.is_empty() {
                // Records after these get a barrier of their own.
                self.gate.open = false;
                // The next batch starts with room for as many as this one
                // (up to a bound): grown from nothing, every batch moved
                // its records about ten times, each larger move a request
                // glibc serves the slow way.
                let room = self.gate.records.len().min(RECORDS_ROOM);
                return Some(Output::Persist {
                    records: std::mem::replace(&mut self.gate.records, Vec::with_capacity(room)),
                    through: self.gate.issued,
                });
            }
            while self.front.is_empty() && self.pending.is_empty() {
                match self.steps.pop_front()? {
                    Step::Apply(event) => self.apply(event),
                    Step::Roster(room, roster) => self.apply_roster(&room, roster),
                    Step::Skipped(room, seq) => {
                        if let Some(r) = self.rooms.get_mut(&*room) {
                            r.seq = r.seq.max(seq);
                        }
                    }
                    Step::Barrier(ticket) if ticket > self.gate.stored => {
                        // Held until the store has it.
                        self.steps.push_front(Step::Barrier(ticket));
                        self.barrier_stops += 1;
                        return None;
                    }
                    Step::Barrier(_) => {}
                    other => self.front.push_back(other),
                }
            }
            let Some(step) = self.front.pop_front() else {
                break;
            };
            if let Some(out) = self.materialize(step) {
                return Some(out);
            }
        }
        let audience = self.pending.pop_front()?;
        let event = self.current.as_deref()?;
        let (to, with_id): (&[ClientId], bool) = match audience {
            Audience::Room => (
                self.rooms.get(&*event.room).map_or(&[][..], |r| &r.members),
                false,
            ),
            Audience::List(mut list) => {
                // The old buffer goes back for the next list.
                std::mem::swap(&mut self.list, &mut list);
                list.clear();
                self.spare = list;
                (&self.list, false)
            }
            Audience::One(client, with_id) => {
                self.list.clear();
                self.list.push(client);
                (&self.list, with_id)
            }
        };
        Some(Output::Deliver { event, to, with_id })
    }

    /// A step that is not an event, as an output; `None` if it came to
    /// nothing (its connection is gone).
    fn materialize(&mut self, step: Step) -> Option<Output<'static>> {
        match step {
            Step::Send(to, frame) => {
                if matches!(frame, ServerFrame::Ping) {
                    let stops = self.barrier_stops;
                    if let Some(c) = self.conns.get_mut(&to) {
                        if let Some(mark) = c.ping_queued.take() {
                            c.ping_late = mark != stops;
                        }
                    }
                }
                Some(Output::Send { to, frame })
            }
            Step::Close(client, code) => {
                self.closed(client);
                Some(Output::Close { client, code })
            }
            // Closed meanwhile (a timeout, a kick): its `Close` says to
            // close it (it follows, or went already).
            Step::Forgotten(room) => Some(Output::Forgotten { room }),
            Step::End(client) => self
                .conns
                .contains_key(&client)
                .then_some(Output::Finish { client }),
            Step::Welcome {
                client,
                lobby,
                resumed,
                closed_for,
            } => {
                let frames = self.welcome(client, lobby, resumed, closed_for)?;
                if let Some(c) = self.conns.get_mut(&client) {
                    c.welcomed = true;
                } else if let Some(k) = self.closing.get_mut(&client) {
                    k.welcomed = true;
                }
                let mut frames = frames.into_iter();
                let first = frames.next()?;
                // The continuation frames go next, before anything else.
                let rest: Vec<ServerFrame> = frames.collect();
                for f in rest.into_iter().rev() {
                    self.front.push_front(Step::Send(client, f));
                }
                Some(Output::Send {
                    to: client,
                    frame: first,
                })
            }
            Step::History {
                client,
                room,
                before,
                limit,
            } => {
                let sid = self.answered_session(client)?;
                if let Some(query) = self.beyond_memory(sid, &room, before, limit) {
                    let (after, before) = (query.after, query.before);
                    let epoch = self.rooms.get(&room).map(|r| r.epoch.clone())?;
                    let pending = crate::server::reads::Pending::History {
                        room,
                        after,
                        before,
                        limit,
                        epoch,
                    };
                    return Some(self.read(client, query, pending));
                }
                let frame = self.history_page(sid, &room, before, limit);
                Some(Output::Send { to: client, frame })
            }
            Step::Read(client, query, pending) => Some(self.read(client, query, pending)),
            Step::Rooms(client) => {
                self.answered_session(client)?;
                Some(Output::Send {
                    to: client,
                    frame: self.room_list(),
                })
            }
            Step::Apply(_) | Step::Barrier(_) | Step::Roster(..) | Step::Skipped(..) => None,
        }
    }

    /// Apply one stamped event: change the room, and queue what must be
    /// sent because of it (the `entered` of whoever entered, then the
    /// event's deliveries).
    // Out of line, as it was while `poll` called itself: inlined into the
    // loop it costs more (callgrind, BENCHMARKS.md).
    #[inline(never)]
    fn apply(&mut self, event: Arc<Event>) {
        let Some(room) = self.rooms.get_mut(&*event.room) else {
            return;
        };
        if event.seq <= room.seq {
            // Applied already (a sequencer may deliver twice).
            return;
        }
        self.applied += 1;
        room.touched = self.applied;
        match &event.body {
            EventBody::Presence {
                session,
                status: PresenceStatus::Online,
                ..
            } => {
                self.apply_enter(&event, *session);
                self.note_used(&event.room);
            }
            EventBody::Presence { session, .. } => {
                let stale = self.apply_leave(&event, *session);
                self.note_used(&event.room);
                if stale {
                    self.enter_again(&event, *session);
                }
            }
            EventBody::Msg { .. } => self.apply_msg(&event),
        }
        if self.config.cluster {
            self.answers_after(&event, None, true);
        }
        self.current = Some(event);
    }
}
