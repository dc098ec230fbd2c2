//! Who is in a room, asked of another node: a node that reads a room's
//! stream from past its start (its limits dropped the oldest events,
//! before this node started or while it lagged) cannot learn from it who
//! entered before that and is still there. Every node that applied the
//! stream up to a seq has the same members (`chatproto::Server::roster`),
//! so it asks one that is up, on `chat.roster.<room in hex>`, and the
//! hub gives the answer to its core right after that seq's event
//! (`chatproto::Server::seed_roster`), with who said each one entered (to
//! say they left, with the ids every node uses, should that run stop).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chatproto::{Roster, RosterMember, SessionId};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::{hex, lock, unhex, Cluster, FromCluster};

/// Where a node is asked for a room's members: this and the room's name
/// in hex. Every node that has caught up listens on all of them.
const ROSTER_PREFIX: &str = "chat.roster.";
/// How long a node waits for another to say who is in a room (no node
/// listening is known at once).
const ROSTER_WAIT: Duration = Duration::from_secs(2);
/// How long a node waits for answers before it asks again (a node that
/// answered had not read the room as far as it must yet, or its answer
/// was lost).
const ASK_AGAIN: Duration = Duration::from_millis(250);
/// How long an asked node waits for its hub to build the answer.
const HUB_WAIT: Duration = Duration::from_secs(1);
/// Members per message of an answer at most (fewer under a small NATS
/// `max_payload`: 512 bytes of it a member, twice the most one takes).
const PART_MEMBERS: usize = 1_000;
/// The most parts an asker takes from one node (a million members).
const MAX_PARTS: usize = 1_000;

/// A room's members as a node holds them, each with who said they
/// entered and the seq of that entering (see `hub::Owner`).
#[derive(Debug)]
pub struct Seats {
    /// Who is in the room, as of `roster.seq`.
    pub roster: Roster,
    /// Beside each of `roster.members`: the run that said they entered,
    /// and its seq (an empty run: not known).
    pub owners: Vec<(Arc<str>, u64)>,
}

/// One message of an answer: the members `part` of `parts`, from the run
/// `from`.
#[derive(Serialize, Deserialize)]
struct Part {
    from: String,
    epoch: String,
    seq: u64,
    part: usize,
    parts: usize,
    /// Session, nickname, found by it, the run that said it entered, and
    /// that entering's seq.
    members: Vec<(u64, String, bool, String, u64)>,
}

impl Cluster {
    /// Log `text` about `room` (a warning, or information): now if the
    /// node listens, else once it does (its first line says where it
    /// listens).
    pub(super) fn say(&self, warning: bool, room: &str, text: String) {
        let mut later = lock(&self.said_later);
        if self.ready.load(Ordering::Relaxed) {
            drop(later);
            log_line(warning, room, &text);
        } else {
            later.push((warning, room.to_owned(), text));
        }
    }

    /// The node listens: what it held back to say is said, and from now on
    /// it says it at once.
    pub fn set_ready(&self) {
        let held = {
            let mut later = lock(&self.said_later);
            self.ready.store(true, Ordering::Relaxed);
            std::mem::take(&mut *later)
        };
        for (warning, room, text) in held {
            log_line(warning, &room, &text);
        }
    }

    /// Listen for other nodes asking who is in a room, and answer for the
    /// rooms this node has caught up with (the hub says). Called once the
    /// node accepts clients: a node still catching up does not listen, so
    /// that a cluster of one is told at once that nobody answers.
    pub async fn answer_rosters(self: Arc<Self>) {
        let subject = format!("{ROSTER_PREFIX}*");
        let mut asked = match self.client.subscribe(subject).await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot listen for other nodes asking who is in a room");
                return;
            }
        };
        // One at a time: each waits for the hub at most `HUB_WAIT`.
        while let Some(msg) = asked.next().await {
            let Some(reply) = msg.reply.clone() else {
                continue;
            };
            let Some(room) = msg
                .subject
                .strip_prefix(ROSTER_PREFIX)
                .and_then(unhex)
                .filter(|r| chatproto::room_name(r).as_deref() == Ok(r.as_str()))
            else {
                continue;
            };
            let (tx, rx) = oneshot::channel();
            let ask = FromCluster::RosterAsked { room, answer: tx };
            if self.to_hub.send(ask).await.is_err() {
                return;
            }
            let Ok(Ok(Some(seats))) = tokio::time::timeout(HUB_WAIT, rx).await else {
                continue;
            };
            for part in self.parts(seats) {
                if let Err(e) = self.client.publish(reply.clone(), part).await {
                    warn!(error = %e, "cannot answer a node asking who is in a room");
                    break;
                }
            }
        }
    }

    /// `seats` as the messages of an answer.
    fn parts(&self, seats: Seats) -> Vec<Bytes> {
        let Seats { roster, owners } = seats;
        let epoch = roster.epoch;
        let members: Vec<(u64, String, bool, String, u64)> = roster
            .members
            .into_iter()
            .zip(owners)
            .map(|(m, (origin, since))| {
                (
                    m.session.0,
                    m.nick.to_string(),
                    m.found_by_nick,
                    origin.to_string(),
                    since,
                )
            })
            .collect();
        // A member takes about 230 bytes at most (a nickname of 32
        // characters of 4 bytes, a node's name and run, two numbers).
        let per_part = (self.client.server_info().max_payload / 512).clamp(1, PART_MEMBERS);
        let chunks: Vec<_> = members.chunks(per_part).collect();
        let parts = chunks.len().max(1);
        (0..parts)
            .filter_map(|i| {
                let part = Part {
                    from: self.origin.to_string(),
                    epoch: epoch.clone(),
                    seq: roster.seq,
                    part: i,
                    parts,
                    members: chunks.get(i).map_or_else(Vec::new, |c| c.to_vec()),
                };
                serde_json::to_vec(&part).ok().map(Bytes::from)
            })
            .collect()
    }

    /// Ask the other nodes who is in `room` (of `epoch`), as of a seq no
    /// lower than `from - 1`: the first whole answer, or `None` (logged:
    /// nobody answered, or no answer would do) after `ROSTER_WAIT` at
    /// most. Asked again every `ASK_AGAIN` until then (the nodes that
    /// answered had not read the room that far, or their answer was
    /// lost), all answers coming to one inbox: a late one still counts.
    pub(super) async fn ask_roster(&self, room: &str, epoch: &str, from: u64) -> Option<Seats> {
        let said = |why: &str| {
            self.say(
                true,
                room,
                format!(
                    "{why}: people in the room who entered before seq {from} (the oldest event \
                     its stream keeps) are missing from this node's list of it until they come \
                     or go again"
                ),
            );
        };
        let subject = format!("{ROSTER_PREFIX}{}", hex(room.as_bytes()));
        let inbox = self.client.new_inbox();
        let mut answers = match self.client.subscribe(inbox.clone()).await {
            Ok(s) => s,
            Err(e) => {
                said(&format!(
                    "cannot ask the other nodes who is in the room: {e}"
                ));
                return None;
            }
        };
        let deadline = tokio::time::Instant::now() + ROSTER_WAIT;
        // Each node's parts, by the seq of its answer.
        let mut got: HashMap<(String, u64), Vec<Option<Part>>> = HashMap::new();
        let mut behind = None;
        while tokio::time::Instant::now() < deadline {
            let ask = self
                .client
                .publish_with_reply(subject.clone(), inbox.clone(), Bytes::new());
            if let Err(e) = ask.await {
                said(&format!(
                    "cannot ask the other nodes who is in the room: {e}"
                ));
                return None;
            }
            let until = (tokio::time::Instant::now() + ASK_AGAIN).min(deadline);
            while let Ok(Some(msg)) = tokio::time::timeout_at(until, answers.next()).await {
                if msg.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                    said("no other node is up to say who is in the room");
                    return None;
                }
                let Ok(part) = serde_json::from_slice::<Part>(&msg.payload) else {
                    continue;
                };
                if part.epoch != epoch || part.seq.saturating_add(1) < from {
                    behind = Some(format!(
                        "node {} answered with epoch {} at seq {}",
                        part.from, part.epoch, part.seq
                    ));
                    continue;
                }
                if part.parts == 0 || part.parts > MAX_PARTS || part.part >= part.parts {
                    continue;
                }
                let key = (part.from.clone(), part.seq);
                let parts = got
                    .entry(key.clone())
                    .or_insert_with(|| (0..part.parts).map(|_| None).collect());
                if parts.len() != part.parts {
                    continue;
                }
                let i = part.part;
                parts[i] = Some(part);
                if parts.iter().all(Option::is_some) {
                    let parts = got.remove(&key).unwrap_or_default();
                    let seats = seats_of(parts.into_iter().flatten());
                    self.say(
                        false,
                        room,
                        format!(
                            "took who is in the room from node {}: {} members at seq {}",
                            key.0,
                            seats.roster.members.len(),
                            seats.roster.seq
                        ),
                    );
                    return Some(seats);
                }
            }
        }
        match behind {
            Some(why) => said(&format!("no node has read the room that far: {why}")),
            None => said("no other node said who is in the room in time"),
        }
        None
    }
}

fn log_line(warning: bool, room: &str, text: &str) {
    if warning {
        warn!(room, "{text}");
    } else {
        info!(room, "{text}");
    }
}

/// One node's whole answer, as the hub takes it.
fn seats_of(parts: impl Iterator<Item = Part>) -> Seats {
    let mut epoch = String::new();
    let mut seq = 0;
    let mut members = Vec::new();
    let mut owners = Vec::new();
    for part in parts {
        epoch = part.epoch;
        seq = part.seq;
        for (session, nick, found_by_nick, origin, since) in part.members {
            members.push(RosterMember {
                session: SessionId(session),
                nick: nick.into(),
                found_by_nick,
            });
            owners.push((Arc::from(origin), since));
        }
    }
    Seats {
        roster: Roster {
            epoch,
            seq,
            members,
        },
        owners,
    }
}
