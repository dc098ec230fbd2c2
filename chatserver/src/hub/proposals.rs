//! What the node proposes to the cluster's log, with the ids that make
//! the log keep one copy of what two nodes may both say: messages, and the
//! departures of sessions resumed here, of stopped runs' clients, and of
//! this node's own clients when it stops.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chatproto::{Event, EventBody, Now, PresenceStatus, SessionId};
use tokio::time::Instant;
use tracing::warn;

use super::from_cluster::recv_cluster;
use super::{ClusterSide, Hub, Owner, BATCH, STORE_SETTLE};

impl Hub {
    /// `sid` resumes here: where another run said it is in a room, say it
    /// left (with the id every node would use, so it counts once), before
    /// this node says it entered again.
    pub(super) fn forget_elsewhere(&mut self, now: Now, sid: SessionId) {
        let Some(c) = &mut self.cluster else { return };
        let Some(rooms) = c.owners.get(&sid) else {
            return;
        };
        let stale: Vec<(Arc<str>, Owner)> = rooms
            .iter()
            .filter(|(_, o)| o.origin != c.link.origin)
            .map(|(r, o)| (Arc::clone(r), o.clone()))
            .collect();
        for (room, owner) in stale {
            propose_gone(c, now, &room, sid, &owner);
        }
    }

    /// The runs in `alive` heartbeat: every client another run said is in
    /// a room leaves it (once every room is caught up with).
    pub(super) fn clean_up_after(&mut self, now: Now, alive: &HashSet<Arc<str>>) {
        let Some(c) = &mut self.cluster else { return };
        if !c.catch_up.is_empty() {
            return;
        }
        let mine = Arc::clone(&c.link.origin);
        // A run whose events the log still brings is alive, whatever the
        // heartbeats say (this node's watch on them may be behind, and a
        // run started meanwhile not heard yet).
        let within = c.link.dead_after().as_millis() as u64;
        let gone: HashSet<Arc<str>> = c
            .owners
            .values()
            .flat_map(|rooms| rooms.values().map(|o| &o.origin))
            .filter(|o| **o != mine && !alive.contains(*o) && !c.heard_lately(o, now.mono, within))
            .cloned()
            .collect();
        propose_departures(c, now, |origin| gone.contains(origin));
        c.cleaning
            .retain(|_, at| at.elapsed() < Duration::from_secs(60));
        c.active
            .retain(|(_, at)| now.mono.saturating_sub(*at) < 10 * within);
    }

    /// Stopping in cluster mode: this node's clients leave their rooms
    /// (proposed and stored, within a bound), its claims are given up, and
    /// its heartbeat goes, so the other nodes know at once.
    pub(super) async fn leave_cluster(&mut self) {
        // One bound for all of it, as before the wait below was added.
        let deadline = Instant::now() + STORE_SETTLE;
        self.apply_own_proposals(deadline).await;
        let now = self.clock.now();
        let Some(c) = &mut self.cluster else { return };
        let mine = Arc::clone(&c.link.origin);
        propose_departures(c, now, |origin| *origin == mine);
        let link = Arc::clone(&c.link);
        let claims: Vec<(String, u64)> = c
            .claims
            .drain()
            .map(|(_, claim)| (claim.key, claim.revision))
            .collect();
        let settle = async {
            while link.pending.load(std::sync::atomic::Ordering::Relaxed) > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            link.leave(claims).await;
        };
        if tokio::time::timeout_at(deadline, settle).await.is_err() {
            // Otherwise the log goes on to say each client left, as if it
            // were stored, after a silence nothing explained.
            warn!(
                unstored = link.pending.load(std::sync::atomic::Ordering::Relaxed),
                "NATS did not store this node's leaving within {} s (is it away?); stopping \
                 all the same: the other nodes say its clients left once they take it for dead",
                STORE_SETTLE.as_secs()
            );
        }
    }

    /// Before a clean stop: wait (until `deadline` at most) until
    /// everything this node proposed is in the log and applied here (or
    /// stepped over), so that a client whose entering was still on its way
    /// is among the departures.
    async fn apply_own_proposals(&mut self, deadline: Instant) {
        let mut items = Vec::with_capacity(BATCH);
        loop {
            let Some(c) = &mut self.cluster else { return };
            let pending = c.link.pending.load(std::sync::atomic::Ordering::Relaxed);
            let acked = c.link.acked();
            let applied =
                |room: &str, seq: u64| self.server.next_logged(room).is_none_or(|next| next > seq);
            if pending == 0 && acked.iter().all(|(room, seq)| applied(room, *seq)) {
                return;
            }
            // The acknowledgements come to the publisher, not here: look
            // again every 20 ms.
            let closed = tokio::select! {
                n = recv_cluster(&mut self.cluster, &mut items) => n == 0,
                _ = tokio::time::sleep(Duration::from_millis(20)) => false,
                _ = tokio::time::sleep_until(deadline) => return,
            };
            if closed {
                return;
            }
            let now = self.clock.now();
            for item in items.drain(..) {
                self.heard(now, item);
                self.dispatch(now);
            }
            self.drain(now);
        }
    }
}

/// Propose the departure of every session in a room whose entering was
/// said by a run `said_by` picks, in session and room order.
fn propose_departures(c: &mut ClusterSide, now: Now, said_by: impl Fn(&Arc<str>) -> bool) {
    let mut gone: Vec<(SessionId, Arc<str>, Owner)> = c
        .owners
        .iter()
        .flat_map(|(sid, rooms)| {
            rooms
                .iter()
                .filter(|(_, o)| said_by(&o.origin))
                .map(|(room, o)| (*sid, Arc::clone(room), o.clone()))
        })
        .collect();
    gone.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    for (sid, room, owner) in gone {
        propose_gone(c, now, &room, sid, &owner);
    }
}

/// Propose `event`, with the message id that makes the log keep one copy
/// of what two nodes may both say:
///
/// * a message with an id: its session and id, so that a resend after the
///   session moved from a node that logged it is not logged twice (the
///   publisher tells the hub, which answers `duplicate`);
/// * a session that lost its connection here leaving a room where this
///   node said it entered: the id every node gives that departure (see
///   `propose_gone`), which the node it resumes on says too, maybe
///   before this one's word is applied there.
///
/// Anything else gets this run's next id. (A part while connected too: if
/// another node had said the same departure, the log would drop this one
/// and the session's answers would wait for it for ever.)
pub(super) fn propose(c: &mut ClusterSide, event: &Event, connected: impl Fn(SessionId) -> bool) {
    match &event.body {
        EventBody::Msg {
            from, id: Some(id), ..
        } => {
            let id = format!("m/{}/{}", from.0, crate::cluster::hex(id.as_bytes()));
            return c.link.propose_with_id(event, id);
        }
        EventBody::Presence {
            session,
            status: PresenceStatus::Offline,
            ..
        } if !connected(*session) => {
            let mine = Arc::clone(&c.link.origin);
            // Taken out now: should the session enter again and leave
            // before this departure comes back from the log, that one is
            // another.
            let rooms = c.owners.get_mut(session);
            let owner = rooms.and_then(|r| match r.get(&event.room) {
                Some(o) if o.origin == mine => r.remove(&event.room),
                _ => None,
            });
            // (This departure may never come back to empty it: the log
            // may hold another run's copy already.)
            if c.owners.get(session).is_some_and(|r| r.is_empty()) {
                c.owners.remove(session);
            }
            if let Some(owner) = owner {
                let id = gone_id(&event.room, *session, &owner);
                c.cleaning.insert(id.clone(), Instant::now());
                return c.link.propose_with_id(event, id);
            }
        }
        _ => {}
    }
    c.link.propose(event);
}

/// The message id of `sid` leaving `room` after the entry `owner` says.
fn gone_id(room: &str, sid: SessionId, owner: &Owner) -> String {
    format!("gone/{room}/{}/{}", sid.0, owner.seq)
}

/// Propose that `sid` left `room` because the run that said it entered is
/// gone, with the id every node uses for that (JetStream keeps one copy).
fn propose_gone(c: &mut ClusterSide, now: Now, room: &Arc<str>, sid: SessionId, owner: &Owner) {
    let id = gone_id(room, sid, owner);
    if c.cleaning
        .get(&id)
        .is_some_and(|at| at.elapsed() < Duration::from_secs(10))
    {
        return;
    }
    c.cleaning.insert(id.clone(), Instant::now());
    let event = Event::new(
        Arc::clone(room),
        0,
        now.wall,
        EventBody::presence(sid, owner.nick.clone(), PresenceStatus::Offline),
    );
    c.link.propose_with_id(&event, id);
}
