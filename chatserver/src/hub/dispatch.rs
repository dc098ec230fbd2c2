//! The core's output moved to where it goes: frames and events staged for
//! the peers (and logged), closes, reads and records to the store or the
//! cluster, proposals to the cluster; then the overflow policies applied.

use std::sync::Arc;

use chatproto::{
    escape_control, ClientId, ErrorCode, Event, EventBody, Now, Output, PresenceStatus, Record,
    ServerFrame,
};
use tracing::{info, warn};

use super::peers::unstage;
use super::proposals::propose;
use super::Hub;
use crate::args::LogText;
use crate::stage::Audience;
use crate::store::ToStore;

impl Hub {
    /// Move the core's output into the peers' queues, and apply the
    /// overflow policies.
    ///
    /// The core applies one event per output; its copies are staged and
    /// queued once the turn ends or [`STAGE_BYTES`](crate::stage::STAGE_BYTES)
    /// or [`STAGE_RUNS`](crate::stage::STAGE_RUNS) are staged, so a client
    /// closed for overflowing leaves (and its departure reaches everyone)
    /// after at most that much more was made for it.
    pub(super) fn dispatch(&mut self, now: Now) {
        loop {
            let Some(out) = self.server.poll() else {
                return;
            };
            // Frames and events are staged; anything else that touches a
            // peer (a close, a held read) first queues what was staged, so
            // that it comes after them.
            if !matches!(
                out,
                Output::Send { .. }
                    | Output::Deliver { .. }
                    | Output::Persist { .. }
                    | Output::Propose { .. }
                    | Output::Forgotten { .. }
            ) {
                unstage(
                    &mut self.stage,
                    &self.budget,
                    &mut self.to_flush,
                    &mut self.overflowed,
                    &mut self.lagging,
                );
            }
            match out {
                Output::Send { to, frame, .. } => {
                    // What ties a client's number in the log (its address,
                    // why it was closed) to a nickname.
                    match &frame {
                        ServerFrame::Welcome { nick, resumed, .. } => {
                            log_joined(to, nick, *resumed == Some(true));
                            self.nicks.insert(to, nick.clone());
                        }
                        // Only a join is answered so.
                        ServerFrame::Error {
                            code: code @ (ErrorCode::NickTaken | ErrorCode::NickInvalid),
                            ..
                        } => info!(client = %to, code = %code, "join refused"),
                        // Not behind a read from the store: see ping_ahead.
                        ServerFrame::Ping if self.ping_ahead(to) => continue,
                        _ => {}
                    }
                    self.stage_frame(to, &frame)
                }
                Output::Deliver {
                    event, to, with_id, ..
                } => {
                    // An event may go out in several deliveries (everyone
                    // else, then whoever parted); log it once.
                    let key = (Arc::as_ptr(&event.room) as *const u8 as usize, event.seq);
                    // Nothing before `listening on`: a node catching up with
                    // the cluster's log at start does not log it again (nor
                    // what it read then but delivers after).
                    let replaying = || {
                        !self.listening.load(std::sync::atomic::Ordering::Relaxed)
                            || self.cluster.as_ref().is_some_and(|c| {
                                c.read_at_start
                                    .get(&*event.room)
                                    .is_some_and(|&to| event.seq <= to)
                            })
                    };
                    if self.log_events && self.last_logged != Some(key) && !replaying() {
                        self.last_logged = Some(key);
                        log_event(event, self.log_text);
                    }
                    if event.is_msg() && self.last_counted != Some(key) {
                        self.last_counted = Some(key);
                        self.metrics.message();
                    }
                    self.metrics.delivered(to.len());
                    if !to.is_empty() {
                        let wire = event.wire(with_id, false);
                        let audience = if to.len() > 1 {
                            Audience::Many
                        } else {
                            Audience::One
                        };
                        match self
                            .stage
                            .encode_event(&wire, audience, self.max_frame_bytes)
                        {
                            Ok(staged) => {
                                for c in to {
                                    if let Some(peer) = self.peers.get(c) {
                                        self.stage.add(peer, &staged);
                                    }
                                }
                            }
                            Err(e) => warn!(error = %e, "an event did not encode"),
                        }
                    }
                }
                Output::Close { client, code, .. } => {
                    self.metrics.closed_for(code);
                    if let Some(peer) = self.peers.get(&client) {
                        info!(client = %client, code = %code, "closing connection");
                        peer.close_for(code);
                    }
                }
                // `--store memory`: its history is gone (the history
                // database's thread says the same of those it deletes).
                Output::Forgotten { room, .. } => warn!(
                    room = %room,
                    "forgot #{room}, a room nobody is in, to make way for others (--max-rooms): its history is lost (--store memory)"
                ),
                // Its connection task waits for this, then says `Gone`.
                Output::Finish { client, .. } => {
                    if let Some(peer) = self.peers.get(&client) {
                        peer.close_once_answered();
                    }
                }
                Output::Propose { events, .. } => {
                    if let Some(c) = &mut self.cluster {
                        for e in &events {
                            propose(c, e, |s| self.server.is_connected(s));
                        }
                    }
                }
                Output::Read {
                    ticket,
                    client,
                    query,
                    ..
                } if self.cluster.is_some() => {
                    if let Some(peer) = self.peers.get(&client) {
                        peer.hold(ticket);
                    }
                    if let Some(c) = &self.cluster {
                        c.link.read(ticket, client, query);
                    }
                }
                Output::Persist {
                    records, through, ..
                } if self.cluster.is_some() => {
                    let sessions = records
                        .into_iter()
                        .filter_map(|r| match r {
                            Record::Session {
                                id, nick, token, ..
                            } => Some((id, nick.to_string(), token)),
                            _ => None,
                        })
                        .collect();
                    if let Some(c) = &self.cluster {
                        c.link.store_sessions(sessions, through);
                    }
                }
                Output::Read {
                    ticket,
                    client,
                    query,
                    ..
                } => {
                    if let Some(peer) = self.peers.get(&client) {
                        peer.hold(ticket);
                    }
                    let asked = self.store.as_ref().is_some_and(|l| match &l.reads {
                        Some(reads) => reads.send((ticket, client, query)).is_ok(),
                        None => {
                            let read = ToStore::Read {
                                ticket,
                                client,
                                query,
                            };
                            l.tx.send(read).is_ok()
                        }
                    });
                    if !asked {
                        self.unanswered.push((ticket, client));
                    }
                }
                Output::Persist {
                    records, through, ..
                } => {
                    if self.to_store.is_empty() {
                        self.to_store = records;
                    } else {
                        self.to_store.extend(records);
                    }
                    self.to_store_through = through;
                }
                _ => {}
            }
            if self.stage.is_full() {
                self.unstage();
            }
            for id in std::mem::take(&mut self.overflowed) {
                self.overflow(id);
            }
            if self.budget.is_over() {
                // Write what the sockets take now: only what stays queued
                // is a backlog worth closing anyone for.
                self.flush_pending();
                self.enforce_budget();
            }
            for id in std::mem::take(&mut self.leaving) {
                self.disconnect(now, id);
            }
            for (ticket, client) in std::mem::take(&mut self.unanswered) {
                let gone = "the history database is not running".to_owned();
                self.answer_read(ticket, client, Err(gone));
            }
        }
    }
}

/// One line per room event, in seq order: `[#room seq] ...`.
fn log_event(event: &Event, show: LogText) {
    let (room, seq) = (&event.room, event.seq);
    match &event.body {
        EventBody::Presence { nick, status, .. } => match status {
            PresenceStatus::Online => info!("[#{room} {seq}] {nick} joined"),
            _ => info!("[#{room} {seq}] {nick} left"),
        },
        EventBody::Msg { nick, to, text, .. } => {
            // Arguments are only evaluated when the level is enabled.
            let shown = match (show, to.is_empty()) {
                (LogText::All, _) | (LogText::Public, true) => escape_control(text),
                _ => "(text not logged)".into(),
            };
            if to.is_empty() {
                info!("[#{room} {seq}] {nick} -> everyone: {shown}");
            } else {
                let names: Vec<&str> = to.iter().map(|r| &*r.nick).collect();
                info!("[#{room} {seq}] {nick} -> {}: {shown}", names.join(", "));
            }
        }
        _ => {}
    }
}

/// A join answered: the client's number with its nickname, in the log.
/// Out of line and cold: a join is rare beside the messages the turn's
/// loop around it handles.
#[cold]
#[inline(never)]
fn log_joined(client: ClientId, nick: &str, resumed: bool) {
    if resumed {
        info!(client = %client, nick = %nick, "resumed its session");
    } else {
        info!(client = %client, nick = %nick, "joined");
    }
}
