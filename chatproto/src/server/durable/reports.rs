//! What the shell reports of its store: records stored, storing failed
//! (what was not stored is given up, its messages refused), the store
//! working again (what began meanwhile handed out to be stored); and what
//! a message is told while the store fails.

use std::sync::Arc;

use super::{hash_token, Record};
use crate::frame::{ErrorCode, ServerFrame};
use crate::server::event::{Event, EventBody, SessionId};
use crate::server::{ClientId, Server, Step};

impl Server {
    /// The records handed out with the `through` ticket, and all before,
    /// are stored: what they held back may go.
    pub fn handle_persisted(&mut self, through: u64) {
        self.gate.stored = self.gate.stored.max(through.min(self.gate.issued));
        let stored = self.gate.stored;
        self.gate.forgetting.retain(|(ticket, ..)| *ticket > stored);
    }

    /// Storing the records handed out failed with `cause` (the disk is
    /// full, say). Every record not stored yet is given up, the ones
    /// handed out and the ones not: their messages are refused with
    /// `unavailable` (their seqs go to the next events, so a room's seqs
    /// stay gapless), their presence changes go ahead unstored. Until
    /// [`handle_store_recovered`](Server::handle_store_recovered), new
    /// messages are refused with `unavailable` and the rest of the server
    /// (presence, history from memory, pings) works unstored.
    pub fn handle_persist_failed(&mut self, cause: &str) {
        if !self.config.durable {
            return;
        }
        self.gate.down = Some(cause.to_owned());
        self.gate.records.clear();
        self.gate.open = false;
        // Batches reported stored before this one failed keep their events.
        let stored_before = self.gate.stored;
        // Unloaded rooms whose last seqs may have gone with it.
        self.unloaded.failed(stored_before);
        self.gate.stored = self.gate.issued;
        // Rooms whose forgetting was lost with the batch: again later.
        for (_, name, said) in std::mem::take(&mut self.gate.forgetting) {
            self.forget_later(name, said);
        }
        if self.config.cluster {
            // Only sessions are stored here; events are the log's.
            return;
        }
        // Renumber what is left, room by room, from the last applied seq
        // (nothing stamped after it was seen by anyone) or the last stored
        // one still to apply.
        for r in self.rooms.values_mut() {
            r.next_seq = r.seq + 1;
        }
        // A room whose last events were given up may be empty now, unused.
        for r in self.rooms.values().filter(|r| r.is_empty()) {
            self.order.emptied(r);
        }
        let message = self.fit(self.refusal_text(cause));
        let refusal = |id: &Option<String>, room: &str| ServerFrame::Error {
            code: ErrorCode::Unavailable,
            message: message.clone(),
            id: id.clone(),
            room: Some(room.to_owned()),
            seq: None,
        };
        // Messages refused, by session and id: a `duplicate` already
        // queued for a resend of one is a refusal now.
        let mut refused: Vec<(SessionId, String)> = Vec::new();
        // Steps ahead of the first barrier were released: stored.
        let mut stored = true;
        // Connections whose `welcome` is queued ahead of the step at hand:
        // a refusal after it goes out after it.
        let mut welcome_ahead: Vec<ClientId> = Vec::new();
        let steps = std::mem::take(&mut self.steps);
        for step in steps {
            if let Step::Welcome { client, .. } = &step {
                welcome_ahead.push(*client);
            }
            let step = match step {
                Step::Barrier(ticket) => {
                    stored = ticket <= stored_before;
                    continue;
                }
                Step::Apply(event) if stored => {
                    if let Some(r) = self.rooms.get_mut(&*event.room) {
                        r.next_seq = r.next_seq.max(event.seq + 1);
                    }
                    Step::Apply(event)
                }
                Step::Apply(event) if !event.is_msg() => {
                    let Some(r) = self.rooms.get_mut(&*event.room) else {
                        continue;
                    };
                    let mut e = Event::clone(&event);
                    e.seq = r.next_seq;
                    r.next_seq += 1;
                    Step::Apply(Arc::new(e))
                }
                Step::Apply(event) => {
                    let EventBody::Msg { from, id, .. } = &event.body else {
                        continue;
                    };
                    let Some(s) = self.sessions.get_mut(from) else {
                        continue;
                    };
                    // Its id is free again, whoever is connected now: a
                    // resend is taken, not answered `duplicate`.
                    if let Some(id) = id {
                        s.ids.forget(id);
                        refused.push((*from, id.clone()));
                    }
                    // Told only to a connection that has its `welcome`,
                    // or whose welcome is queued ahead (its join and this
                    // message came in one batch): a resume's new one,
                    // whose welcome is queued after this, resends the
                    // message itself.
                    let to = s.conn.filter(|c| {
                        self.conns.get(c).is_some_and(|k| k.welcomed) || welcome_ahead.contains(c)
                    });
                    let Some(to) = to else {
                        continue;
                    };
                    Step::Send(to, refusal(id, &event.room))
                }
                Step::Send(
                    to,
                    ServerFrame::Error {
                        code,
                        id: Some(id),
                        room: Some(room),
                        ..
                    },
                ) if code == ErrorCode::Duplicate
                    // Also to a connection the core is closing: its
                    // client resumes and trusts what it was told.
                    && self
                        .answered_session(to)
                        .is_some_and(|sid| refused.iter().any(|(s, i)| *s == sid && *i == id)) =>
                {
                    Step::Send(to, refusal(&Some(id), &room))
                }
                other => other,
            };
            self.steps.push_back(step);
        }
    }

    /// Storing failed with `cause` and will not work again in this run
    /// (the database file was deleted under the server, say): as
    /// [`handle_persist_failed`](Server::handle_persist_failed), but a
    /// refused message is told that the server takes none until it is
    /// restarted, not to try again later. Called while the store fails
    /// already (for another cause, one that would have mended), it only
    /// changes what refused messages are told. The shell promises, by
    /// calling it, not to call
    /// [`handle_store_recovered`](Server::handle_store_recovered) again in
    /// this run (if it does, that ends this failure as it ends any, and
    /// what the refused were told was untrue).
    pub fn handle_persist_failed_until_restart(&mut self, cause: &str) {
        if !self.config.durable {
            return;
        }
        self.gate.until_restart = true;
        if self.gate.down.is_some() {
            self.gate.down = Some(cause.to_owned());
        } else {
            self.handle_persist_failed(cause);
        }
    }

    /// The store works again: messages are taken again, the rooms
    /// forgotten meanwhile are forgotten by the store, and every room and
    /// session is handed out to be stored (again: storing is idempotent),
    /// so that what began while it failed can be resumed after a restart.
    /// Each room goes with the highest seq it gave out: the presence
    /// changes applied unstored meanwhile were seen with their seqs, and a
    /// restarted server must not give those seqs to other events (a
    /// client that saw them would resume past those events).
    pub fn handle_store_recovered(&mut self) {
        if self.gate.down.take().is_none() {
            return;
        }
        self.gate.until_restart = false;
        // The batch handed out now has a ticket of its own: a failure
        // before it is stored tells what it held again (rooms in memory
        // are told at every recovery; see `Unloaded::failed` for those
        // resting in the store).
        let ticket = self.ticket();
        // Before the rooms: a room forgotten and begun again meanwhile is
        // forgotten by the store, then begun with its new epoch.
        let later = std::mem::take(&mut self.gate.forget_later);
        let mut said_of = std::mem::take(&mut self.gate.forget_later_names);
        for name in later {
            let said = said_of.remove(&name).unwrap_or(true);
            self.gate.records.push(Record::Forgotten {
                name: Arc::clone(&name),
                said,
            });
            self.gate.forgetting.push((ticket, name, said));
        }
        let mut names: Vec<_> = self.rooms.keys().cloned().collect();
        names.sort_unstable();
        for name in names {
            let r = &self.rooms[&name];
            // A cluster's seqs are its log's, not this store's.
            let seq = if self.config.cluster {
                0
            } else {
                r.next_seq - 1
            };
            self.gate
                .records
                .push(Record::room_at(Arc::clone(&r.name), r.epoch.clone(), seq));
        }
        // And those unloaded meanwhile (the store may not know them).
        let unloaded = self.unloaded_unstored(ticket);
        self.gate.records.extend(unloaded);
        if !self.config.cluster {
            // Every session held, so that the store forgets those
            // forgotten meanwhile (their records were not stored).
            let mut held: Vec<SessionId> = self.sessions.keys().copied().collect();
            held.sort_unstable();
            self.gate.records.push(Record::sessions_kept(held));
        }
        let mut ids: Vec<_> = self
            .sessions
            .iter()
            .filter(|(_, s)| !s.token.is_empty())
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        for sid in ids {
            let s = &self.sessions[&sid];
            self.gate.records.push(Record::Session {
                id: sid,
                nick: s.nick.clone(),
                token: hash_token(&s.token),
            });
        }
        // Who is connected now: comings and goings meanwhile were not
        // stored (a cluster's sessions are not ranked).
        if !self.config.cluster {
            let mut all: Vec<_> = self.sessions.keys().copied().collect();
            all.sort_unstable();
            for sid in all {
                let attached = self.sessions[&sid].conn.is_some();
                let record = self.attached_record(sid, attached);
                self.gate.records.push(record);
            }
        }
    }

    /// Why the store is failing, while it is (see
    /// [`handle_persist_failed`](Server::handle_persist_failed)).
    pub fn store_failure(&self) -> Option<&str> {
        self.gate.down.as_deref()
    }

    /// The answer to a `msg` while the store is failing.
    pub(crate) fn unavailable(&self) -> Option<String> {
        let cause = self.gate.down.as_deref()?;
        Some(self.refusal_text(cause))
    }

    /// What a message refused for the store's failure `cause` is told:
    /// to try again later, unless only a restart mends it.
    fn refusal_text(&self, cause: &str) -> String {
        if self.gate.until_restart {
            format!(
                "the server cannot store messages ({cause}); your message was not sent, and none \
                 will be until the server is restarted"
            )
        } else {
            format!(
                "the server cannot store messages right now ({cause}); your message was not sent; try again later"
            )
        }
    }
}
