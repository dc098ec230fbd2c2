//! What a durable server hands its store, as it decides: a record for
//! each stamped event, new session and new room (and forgotten ones),
//! and the barrier that holds later outputs until they are stored.

use std::sync::Arc;

use super::{hash_token, Record};
use crate::server::event::{Event, SessionId};
use crate::server::room::Room;
use crate::server::session::OnTheWay;
use crate::server::{Server, Step};

impl Server {
    /// Queue a stamped event to be applied: behind a store ticket when
    /// durable and the store works.
    pub(crate) fn queue_event(&mut self, event: Event) {
        let event = Arc::new(event);
        if self.config.cluster {
            // The log numbers it and hands it back to be applied; its
            // session's later answers wait for it.
            if let Some(s) = self.sessions.get_mut(&event.session()) {
                if s.conn.is_some() {
                    s.in_flight.push_back(OnTheWay {
                        event: Arc::clone(&event),
                        place: s.places,
                    });
                    s.places += 1;
                    self.on_the_way += 1;
                }
            }
            self.proposed.push(event);
            return;
        }
        if self.config.durable && self.gate.down.is_none() {
            self.gate.records.push(Record::Event(Arc::clone(&event)));
            self.hold();
        }
        self.steps.push_back(Step::Apply(event));
    }

    /// Hold every later output until the records so far are stored.
    fn hold(&mut self) {
        self.gate.issued += 1;
        if !self.gate.open {
            self.gate.open = true;
            self.steps.push_back(Step::Barrier(self.gate.issued));
        }
    }

    /// A room was created: its epoch must be stored before its events.
    pub(crate) fn record_room(&mut self, room: &Room) {
        if self.config.durable && !self.config.cluster && self.gate.down.is_none() {
            // Its events follow in this batch: they are above nothing yet.
            self.gate.records.push(Record::room_at(
                Arc::clone(&room.name),
                room.epoch.clone(),
                0,
            ));
        }
    }

    /// A room was forgotten (see [`Record::Forgotten`]): the store forgets
    /// it too.
    /// While the store fails (and when the batch that held it fails), the
    /// room is kept to be forgotten once the store works again (see
    /// `forget_later`). `said`: whether it held a message.
    pub(crate) fn record_forgotten(&mut self, name: Arc<str>, said: bool) {
        if self.config.cluster {
            return;
        }
        if !self.config.durable {
            // Its history is gone with it: the shell may say so.
            if said {
                self.steps.push_back(Step::Forgotten(name));
            }
            return;
        }
        if self.gate.down.is_some() {
            self.forget_later(name, said);
            return;
        }
        self.gate.records.push(Record::Forgotten {
            name: Arc::clone(&name),
            said,
        });
        let ticket = self.ticket();
        self.gate.forgetting.push((ticket, name, said));
    }

    /// A session can no longer be resumed: the store forgets it too (see
    /// [`Record::SessionForgotten`]). While the store fails nothing is
    /// kept for it: when the store works again it is told every session
    /// held ([`Record::SessionsKept`]), which covers this one and any
    /// whose record went with a failed batch. Not in a cluster, whose
    /// sessions expire in its own buckets.
    pub(crate) fn record_session_forgotten(&mut self, sid: SessionId) {
        if !self.config.durable || self.config.cluster || self.gate.down.is_some() {
            return;
        }
        self.gate.records.push(Record::session_forgotten(sid));
    }

    /// A ticket for records that hold nothing back (no barrier): stored
    /// once the store answers a `through` at or past it.
    pub(crate) fn ticket(&mut self) -> u64 {
        self.gate.issued += 1;
        self.gate.issued
    }

    /// Keep `name` to be forgotten by the store once it works again: once
    /// (forgetting it deletes whatever the store holds of it), and no
    /// more names than the store may keep rooms. A name given up stays in
    /// the store with the seqs it knows, and a restarted server may take
    /// its room up again from there: the more names kept, the rarer. In
    /// memory only, the oldest given up first.
    pub(super) fn forget_later(&mut self, name: Arc<str>, said: bool) {
        let gate = &mut self.gate;
        if let Some(held) = gate.forget_later_names.get_mut(&name) {
            *held |= said;
            return;
        }
        gate.forget_later_names.insert(Arc::clone(&name), said);
        let most = self
            .config
            .max_rooms
            .max(self.config.max_stored_rooms)
            .max(1);
        if gate.forget_later.len() >= most {
            if let Some(old) = gate.forget_later.pop_front() {
                gate.forget_later_names.remove(&old);
            }
        }
        gate.forget_later.push_back(name);
    }

    /// A session was created: stored before its `welcome` goes out, so the
    /// token in it can resume the session after a restart.
    pub(crate) fn record_session(&mut self, sid: SessionId) {
        if !self.config.durable || self.gate.down.is_some() {
            return;
        }
        let s = &self.sessions[&sid];
        self.gate.records.push(Record::Session {
            id: sid,
            nick: s.nick.clone(),
            token: hash_token(&s.token),
        });
        self.hold();
    }

    /// A session was resumed (`attached`) or lost its connection: the
    /// store ranks sessions by when they were last active. Nothing waits
    /// for it (a restart loses at most this ranking). Not in a cluster,
    /// whose sessions expire in its own buckets.
    pub(crate) fn record_attached(&mut self, sid: SessionId, attached: bool) {
        if self.config.durable && !self.config.cluster && self.gate.down.is_none() {
            let record = self.attached_record(sid, attached);
            self.gate.records.push(record);
        }
    }

    /// `sid` attached, or detached with the messages whose ids it
    /// remembers (what a restart gives back to it).
    pub(super) fn attached_record(&self, sid: SessionId, attached: bool) -> Record {
        match self.sessions.get(&sid) {
            Some(s) if !attached => Record::detached(sid, s.ids.sent()),
            _ => Record::attached(sid, attached),
        }
    }
}
