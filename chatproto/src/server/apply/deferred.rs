//! Cluster mode: the answers held while a session's events are on their
//! way through the log, each put back at its frame's place and let go
//! once none of that session's events is still on its way.

use crate::frame::ServerFrame;
use crate::server::event::{Event, SessionId};
use crate::server::{Server, Step};

impl Server {
    /// Cluster mode: `event` came back from the log (`applied`: it is
    /// being applied), or the log said it held it already or refused it,
    /// and `answer` is the sender's answer for it, which goes where that
    /// message's frame came among the answers waiting. If it was the last
    /// of its connection's on the way, the answers that waited go out:
    /// right after its deliveries if applied, else after what is queued
    /// already (a `welcome` held until the session is stored among it).
    /// Whether it was one of that connection's.
    pub(crate) fn answers_after(
        &mut self,
        event: &Event,
        answer: Option<ServerFrame>,
        applied: bool,
    ) -> bool {
        let Some(s) = self.sessions.get_mut(&event.session()) else {
            return false;
        };
        let mine = s
            .in_flight
            .iter()
            .position(|w| same_proposal(&w.event, event));
        let Some(w) = mine.and_then(|i| s.in_flight.remove(i)) else {
            return false;
        };
        self.on_the_way = self.on_the_way.saturating_sub(1);
        if let (Some(frame), Some(conn)) = (answer, s.conn) {
            // Its place: after the answers to the frames before its own
            // (waiting when it was proposed, or put in since for earlier
            // events), before those to the frames after it (put in first
            // for a later event, they were counted in before it).
            let at = s.deferred.partition_point(|(place, _)| *place < w.place);
            s.deferred.insert(at, (w.place, Step::Send(conn, frame)));
            self.deferred += 1;
        }
        let sid = event.session();
        self.release_deferred(sid, applied);
        true
    }

    /// Cluster mode: the first copy of a message that session `sid`
    /// resent with `id` while that copy was on its way through the log
    /// came back (`applied`) or was refused: each resend that waited for
    /// it is answered `answer` at its frame's place, but the first when
    /// `echoed` (the copy's echo to that connection answers it). Then, if
    /// nothing else holds them, the answers that waited go.
    pub(crate) fn resends_answered(
        &mut self,
        sid: SessionId,
        id: &str,
        answer: &ServerFrame,
        echoed: bool,
        applied: bool,
    ) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let (mut skip, mut found) = (echoed, false);
        let mut i = 0;
        while i < s.resent.len() {
            if s.resent[i].0 != id {
                i += 1;
                continue;
            }
            let Some((_, place)) = s.resent.remove(i) else {
                break;
            };
            found = true;
            if std::mem::take(&mut skip) {
                continue;
            }
            if let Some(conn) = s.conn {
                let at = s.deferred.partition_point(|(p, _)| *p < place);
                s.deferred
                    .insert(at, (place, Step::Send(conn, answer.clone())));
                self.deferred += 1;
            }
        }
        if found {
            self.release_deferred(sid, applied);
        }
    }

    /// Cluster mode: once none of session `sid`'s events is on its way
    /// and no resend waits, the answers that waited go: right after the
    /// deliveries of the event being applied if `applied`, else after what
    /// is queued already (a `welcome` held until the session is stored
    /// among it).
    fn release_deferred(&mut self, sid: SessionId, applied: bool) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if !s.in_flight.is_empty() || !s.resent.is_empty() {
            return;
        }
        // Its answers go: a frame held later starts a new wait, unless
        // the store still holds some of them.
        let stored = self.gate.stored;
        if let Some(c) = s.conn.and_then(|c| self.conns.get_mut(&c)) {
            if c.held.is_some_and(|h| h.ticket <= stored) {
                c.held = None;
            }
        }
        if s.deferred.is_empty() {
            return;
        }
        let deferred = std::mem::take(&mut s.deferred);
        self.deferred = self.deferred.saturating_sub(deferred.len());
        let deferred = deferred.into_iter().map(|(_, step)| step);
        if applied {
            for step in deferred.rev() {
                self.steps.push_front(step);
            }
        } else {
            self.steps.extend(deferred);
        }
    }
}

/// Cluster mode: whether `logged`, handed back by the log, is `proposed`
/// (its room, stamp and body are; the log gave it only a seq).
pub(super) fn same_proposal(proposed: &Event, logged: &Event) -> bool {
    proposed.room == logged.room && proposed.ts == logged.ts && proposed.body == logged.body
}
