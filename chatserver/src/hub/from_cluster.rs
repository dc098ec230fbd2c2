//! What the cluster's tasks say, applied: the log's events (and who said
//! each session entered a room), rooms opened and caught up with at
//! start, claims, reads, takeovers and the streams' new starts.

use std::sync::Arc;

use chatproto::{EventBody, Now, PresenceStatus};
use tracing::{info, warn};

use super::{ClusterSide, Hub, Owner, BATCH};
use crate::cluster::{FromCluster, TakenOver};

impl Hub {
    /// Something the cluster's tasks said.
    pub(super) fn heard(&mut self, now: Now, item: FromCluster) {
        match item {
            FromCluster::Open {
                room,
                epoch,
                first_seq,
                last_seq,
            } => {
                self.server.open_room(&room, &epoch, first_seq);
                if let Some(c) = &mut self.cluster {
                    // The stream as it is now: made anew since the listing
                    // at start, its events are new ones.
                    if let Some(quiet) = c.read_at_start.get_mut(&room) {
                        *quiet = (*quiet).min(last_seq);
                    }
                    if c.catch_up
                        .get(&room)
                        .is_some_and(|&to| last_seq < first_seq || to < first_seq)
                    {
                        c.catch_up.remove(&room);
                    }
                }
                self.seed_if_due(&room);
                self.check_caught_up();
            }
            FromCluster::Event { event, origin } => {
                let (room, seq) = (Arc::clone(&event.room), event.seq);
                if let Some(c) = &mut self.cluster {
                    c.heard_from(&origin, now.mono);
                }
                // A session this node said entered the room, said to leave
                // it by another node.
                let mut said_gone = None;
                if let (
                    Some(c),
                    EventBody::Presence {
                        session,
                        nick,
                        status,
                        ..
                    },
                ) = (&mut self.cluster, &event.body)
                {
                    if *status == PresenceStatus::Online {
                        c.owners.entry(*session).or_default().insert(
                            Arc::clone(&room),
                            Owner {
                                origin,
                                seq,
                                nick: nick.clone(),
                            },
                        );
                    } else if let Some(rooms) = c.owners.get_mut(session) {
                        let mine = &c.link.origin;
                        let connected = self.server.connection_of(*session).is_some();
                        if *origin != **mine
                            && connected
                            && rooms.get(&room).is_some_and(|o| o.origin == *mine)
                        {
                            // Kept: closing the client proposes its
                            // departure again (the core still has it in
                            // the room), and with the entry it carries
                            // the id the other run gave this one, so the
                            // log keeps one.
                            said_gone = Some(*session);
                        } else {
                            rooms.remove(&room);
                            if rooms.is_empty() {
                                c.owners.remove(session);
                            }
                        }
                    }
                }
                if let Err(e) = self.server.handle_logged(event) {
                    warn!(error = %e, "an event of the cluster's log was not applied");
                }
                if let Some(session) = said_gone {
                    self.said_gone_elsewhere(session);
                }
                self.seed_if_due(&room);
                self.caught_up_to(&room, seq);
            }
            FromCluster::Skip { room, seq } => {
                // The follower said why (once).
                if let Err(e) = self.server.skip_logged(&room, seq) {
                    warn!(error = %e, "a log entry was not stepped over");
                }
                self.seed_if_due(&room);
                self.caught_up_to(&room, seq);
            }
            FromCluster::Claimed(claimed) => self.claimed(now, claimed),
            FromCluster::Persisted(through) => self.server.handle_persisted(through),
            FromCluster::Read {
                ticket,
                client,
                found,
            } => self.answer_read(ticket, client, found),
            FromCluster::Alive(alive) => self.clean_up_after(now, &alive),
            FromCluster::HeldUp => {
                if let Some(c) = &self.cluster {
                    c.check_claims();
                }
            }
            FromCluster::ClaimsLost(clients) => self.claims_lost(&clients),
            FromCluster::ClaimsChecked(n, complete) => {
                if let Some(c) = &self.cluster {
                    c.link.swept(n, complete);
                }
            }
            FromCluster::TakeOver { token, done } => {
                // The core knows the connection, unless it closed it
                // already (a pong timeout, say) and the hub has not heard
                // it is gone yet: the hub still holds its claim then,
                // with the session's token.
                let client = self
                    .server
                    .handle_resumed_elsewhere(now, &token)
                    .or_else(|| {
                        let c = self.cluster.as_ref()?;
                        // The newest, should two hold one (a claim freed
                        // elsewhere whose news has not come yet).
                        c.claims
                            .iter()
                            .filter(|(_, claim)| claim.token == Some(token))
                            .map(|(id, _)| *id)
                            .max()
                    });
                let claim = client.and_then(|client| self.cluster.as_mut()?.claims.remove(&client));
                // The close and the session's departures are queued (to
                // the connection and the publisher), and the claim given
                // up once they are in the log: the resuming node's
                // enterings come after them there. (Stored after one, a
                // departure would take the client out of the room it just
                // entered.) The departures carry the ids the resuming node
                // uses too, so the log keeps the first of each.
                self.dispatch(now);
                let Some(c) = &self.cluster else { return };
                // Closed by an earlier takeover, and leaving still (that
                // node's client tries again, or another node asks).
                if claim.is_none() && c.link.leaving(&token) {
                    let _ = done.send(TakenOver::Leaving);
                    return;
                }
                let mut stored = c.link.stored_so_far();
                let within = c.link.departures_stored_within();
                let link = Arc::clone(&c.link);
                if claim.is_some() {
                    link.set_leaving(token, true);
                }
                tokio::spawn(async move {
                    // The answer is not held for ever (the resuming node
                    // waits for it within its join's claim timeout)...
                    let in_time = tokio::time::timeout(within, &mut stored).await.is_ok();
                    let Some(super::Claim { key, revision, .. }) = claim else {
                        let _ = done.send(TakenOver::NotHere);
                        return;
                    };
                    if in_time {
                        link.set_leaving(token, false);
                        let _ = done.send(TakenOver::Closed(key, revision));
                        return;
                    }
                    // ...but the claim is (behind a backlog of proposals,
                    // or with NATS slow or away): given up before the
                    // departures are stored, it let the resuming node's
                    // enterings into the log before them. That node claims
                    // until then, or tells its client to try again.
                    let _ = done.send(TakenOver::Leaving);
                    // An error: the publisher is gone (this node stops),
                    // and nothing of this node's is stored any more.
                    let _ = stored.await;
                    // Said leaving until the claim is gone: a takeover
                    // asked again meanwhile must not be told there is
                    // nothing here, and the nickname taken.
                    link.release_now(&key, revision).await;
                    link.set_leaving(token, false);
                });
            }
            FromCluster::Duplicate(event) => self.server.handle_logged_duplicate(&event),
            FromCluster::Refused(event, cause) => self.server.handle_log_refused(&event, &cause),
            FromCluster::RosterLost(room) => {
                if let Some(c) = &mut self.cluster {
                    c.unlisted.insert(room.clone());
                    c.asking.insert(room);
                }
            }
            FromCluster::Roster { room, seats } => {
                if let Some(c) = &mut self.cluster {
                    c.asking.remove(&room);
                }
                if let Some(seats) = seats {
                    self.take_roster(&room, seats);
                }
                self.check_caught_up();
            }
            FromCluster::RosterAsked { room, answer } => {
                let _ = answer.send(self.roster_of(&room));
            }
            FromCluster::Starts(starts) => {
                for (room, first, _) in &starts {
                    self.server.handle_pruned(room, *first);
                }
                // One line a look, however many rooms moved.
                let moved: Vec<&(String, u64, bool)> = starts.iter().filter(|s| s.2).collect();
                match moved.as_slice() {
                    [] => {}
                    [(room, first, _)] => info!(
                        room = room.as_str(),
                        first, "a room's stream starts later now; older events are served no more"
                    ),
                    many => info!(
                        rooms = many.len(),
                        "rooms' streams start later now; older events are served no more"
                    ),
                }
            }
        }
    }

    fn caught_up_to(&mut self, room: &str, seq: u64) {
        if let Some(c) = &mut self.cluster {
            if c.catch_up.get(room).is_some_and(|&to| seq >= to) {
                c.catch_up.remove(room);
                self.check_caught_up();
            }
        }
    }

    /// Once every room known at start is applied, and the other nodes
    /// said who is in those that need it: accept clients.
    pub(super) fn check_caught_up(&mut self) {
        if let Some(c) = &mut self.cluster {
            if c.catch_up.is_empty() && c.asking.is_empty() {
                if let Some(tx) = c.caught_up.take() {
                    let _ = tx.send(());
                }
            }
        }
    }
}

/// The cluster's next messages (up to a batch); 0 if its tasks are gone.
pub(super) async fn recv_cluster(
    cluster: &mut Option<ClusterSide>,
    into: &mut Vec<FromCluster>,
) -> usize {
    match cluster {
        Some(c) => c.rx.recv_many(into, BATCH).await,
        None => std::future::pending().await,
    }
}
