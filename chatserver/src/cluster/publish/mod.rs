//! Proposing: the publisher task appends what the hub proposes to each
//! room's stream, in batches, and learns from the acknowledgement which
//! seq the log gave it (a duplicate: whether the copy stored is ours).
//!
//! This file holds the publisher's loop and what the hub calls; one round
//! of a batch is in `round`, the look for a copy whose answer was lost in
//! `find`, and which proposals go guarded in `guard`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::CreateStreamErrorKind;
use async_nats::jetstream::ErrorCode;
use chatproto::{Event, EventBody, PresenceStatus};
use tokio::sync::mpsc;
use tracing::warn;

use super::entry::{decode_event, encode_event};
use super::{
    lock, Cluster, FromCluster, Proposal, ToPublisher, LOST_WHILE_TAKEN_FOR_DEAD, PUBLISH_BATCH,
};

mod find;
mod guard;
mod round;

use guard::next_round;

/// `stored` of a proposal refused (its sender told it was not sent).
const REFUSED: u64 = u64::MAX;

/// The guard of a proposal sent before whose answer never came (see
/// [`Cluster::publish`]): met by no stream holding anything, as any
/// guard, and looked for below the stream's top when refused.
const PROBE: u64 = u64::MAX;

/// Why a round of publishing failed: in words, and whether NATS said it
/// has no room (its store, or the account's limits, full; then `full`
/// holds the words for a refused message's sender).
pub(super) struct Failure {
    pub(super) why: String,
    pub(super) full: Option<String>,
}

impl From<String> for Failure {
    fn from(why: String) -> Failure {
        Failure { why, full: None }
    }
}

/// The words for a sender whose message NATS had no room for, if that is
/// what `e` (a JetStream error, or one with such a source) says.
pub(super) fn no_room(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut at = Some(e);
    while let Some(e) = at {
        if let Some(js) = e.downcast_ref::<async_nats::jetstream::Error>() {
            return no_room_code(js);
        }
        at = e.source();
    }
    None
}

/// [`no_room`] of one JetStream error.
pub(super) fn no_room_code(js: &async_nats::jetstream::Error) -> Option<String> {
    let full = matches!(
        js.error_code(),
        ErrorCode::INSUFFICIENT_RESOURCES
            | ErrorCode::STORAGE_RESOURCES_EXCEEDED
            | ErrorCode::MEMORY_RESOURCES_EXCEEDED
            | ErrorCode::ACCOUNT_RESOURCES_EXCEEDED
            | ErrorCode::MAXIMUM_STREAMS_LIMIT
    );
    full.then(|| format!("the cluster's log is full (NATS: {js})"))
}

/// [`no_room`] of a stream's creation refused; or the words for a room
/// whose stream NATS will not place its copies of: more
/// `--cluster-replicas` than one NATS server holds (no retry changes
/// that), or than a NATS cluster has servers up now. Its messages are
/// refused this round (the room's next proposal tries again), rather
/// than hold up every other room's for ever.
pub(super) fn no_room_to_create(kind: &CreateStreamErrorKind) -> Option<String> {
    let CreateStreamErrorKind::JetStream(js) = kind else {
        return None;
    };
    let why = match js.error_code() {
        ErrorCode::STREAM_REPLICAS_NOT_SUPPORTED => "cannot make this room",
        ErrorCode::CLUSTER_NO_PEERS => "cannot place this room's copies now",
        _ => return no_room_code(js),
    };
    Some(format!(
        "the cluster's log {why} (NATS: {js}; --cluster-replicas is more than \
         NATS has servers, or some are down)"
    ))
}

impl Cluster {
    /// Hand `event` (decided by this node's core) to the publisher.
    pub fn propose(&self, event: &Event) {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let msg_id = format!("{}/{n}", self.origin);
        self.propose_with_id(event, msg_id);
    }

    /// Hand `event` to the publisher with the id that makes it unique
    /// across nodes (several nodes saying one dead node's client left).
    pub fn propose_with_id(&self, event: &Event, msg_id: String) {
        self.pending.fetch_add(1, Ordering::Relaxed);
        let proposal = Proposal {
            room: Arc::clone(&event.room),
            payload: encode_event(event),
            msg_id,
            undoable: event.is_msg()
                || matches!(
                    event.body,
                    EventBody::Presence {
                        status: PresenceStatus::Online,
                        ..
                    }
                ),
            tried: false,
            first_sent: None,
            number: self.numbered.fetch_add(1, Ordering::Relaxed),
        };
        if self.proposals.send(ToPublisher::Propose(proposal)).is_err() {
            self.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Answered once everything proposed so far is stored in the log (or
    /// refused to its sender); an error if the publisher is gone.
    pub fn stored_so_far(&self) -> tokio::sync::oneshot::Receiver<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = self.proposals.send(ToPublisher::Barrier(tx));
        rx
    }

    /// Per room, the seq the log gave this node's latest proposal.
    pub fn acked(&self) -> Vec<(Arc<str>, u64)> {
        lock(&self.acked)
            .iter()
            .map(|(room, seq)| (Arc::clone(room), *seq))
            .collect()
    }

    /// The publisher: proposals go to their rooms' streams in order, in
    /// batches whose acknowledgements are awaited together. A failed one
    /// is tried again until NATS takes it: its id makes a copy stored
    /// twice count once.
    ///
    /// A connection lost under a batch can lose publishes written to it
    /// while later ones, still queued in the NATS client, go out on the
    /// next connection and are stored: tried again, an earlier message
    /// would land after a later one of its room (after its sender's next
    /// messages; a leaving after its session's entering again, an entering
    /// after its session's parting). So a message tried again behind a
    /// later proposal of its room already stored, or an entering or a
    /// leaving behind its own session's later presence in the room, goes
    /// with an expectation no stream can meet (the last seq 0). NATS
    /// answers a copy it holds as a duplicate (up to 2.11, and with
    /// replicas, within the stream's duplicate window) or refuses it (2.12
    /// and later, on a stream without replicas, and past the window): a
    /// refused one is looked for in the stream below the later one. Held,
    /// it is stored in its place; not, its sender is told
    /// it was not sent (`unavailable`; a leaving is dropped, its session's
    /// entering again stands) rather than have it stored out of order.
    ///
    /// Nor does anything go again while a proposal sent before has had no
    /// answer to any copy of it (its acknowledgement timed out: NATS away,
    /// or slow): a copy may still be queued in the client for the next
    /// connection, and a message sent again would be stored after it, in
    /// the wrong order, as the stream's top could not yet show. The next
    /// round sends only those, each with the same expectation (a probe):
    /// NATS answers it after whatever went before it on the connection,
    /// and a refused one is looked for below the stream's top then. Found,
    /// it is stored in its place; not, it goes with the rest of the batch
    /// in the round after, guarded as above.
    ///
    /// A message or an entering NATS has no room for (its store or the
    /// account's limits full, or no room for a new room's stream) is
    /// refused to its sender at once. A leaving is tried again until there
    /// is room (as is a message or entering whose earlier try, its answer
    /// lost, may be stored); while it waits, the batch's messages and
    /// enterings not sent yet and those proposed meanwhile are refused as
    /// they come (storing them would put them before it), and later
    /// leavings wait behind it, in order.
    pub(super) async fn publish(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<ToPublisher>) {
        let mut got = Vec::with_capacity(PUBLISH_BATCH);
        let mut batch = Vec::with_capacity(PUBLISH_BATCH);
        // Barriers to answer once what came before them is stored: at the
        // end of a batch with nothing held back.
        let mut barriers = Vec::new();
        // Leavings that came while an earlier one waited for room in the
        // log: published first, in order, before anything from `rx`.
        let mut held: VecDeque<Proposal> = VecDeque::new();
        // Rooms whose stream is known to exist, with their subject (made
        // once, cloned cheaply per message).
        let mut known: HashMap<Arc<str>, async_nats::Subject> = HashMap::new();
        // Per proposal of the batch: the seq it was stored at (0: not yet;
        // `REFUSED`: refused, its sender told).
        let mut stored: Vec<u64> = Vec::with_capacity(PUBLISH_BATCH);
        // Per proposal of the batch: sent, and no answer to any copy of it
        // came (a copy may be stored, or may still be on its way).
        let mut unsure: Vec<bool> = Vec::with_capacity(PUBLISH_BATCH);
        let mut todo: Vec<(usize, Option<u64>)> = Vec::new();
        loop {
            if held.is_empty() {
                if rx.recv_many(&mut got, PUBLISH_BATCH).await == 0 {
                    return;
                }
                for item in got.drain(..) {
                    match item {
                        ToPublisher::Propose(p) => batch.push(p),
                        ToPublisher::Barrier(b) => barriers.push(b),
                    }
                }
            } else {
                batch.extend(held.drain(..held.len().min(PUBLISH_BATCH)));
            }
            self.publishing(&batch, true);
            stored.clear();
            stored.resize(batch.len(), 0);
            unsure.clear();
            unsure.resize(batch.len(), false);
            todo.clear();
            todo.extend((0..batch.len()).map(|i| (i, None)));
            let mut backoff = Duration::from_millis(50);
            loop {
                // Nothing goes while the others may take this node for
                // dead; then what its clients closed for that proposed
                // is refused to them, not stored under a name another
                // may hold by now.
                self.fence.wait(self.warn_at()).await;
                if self.fence.any_gone() {
                    for (i, p) in batch.iter().enumerate() {
                        if stored[i] == 0 && p.undoable && !p.tried && self.of_gone(p) {
                            stored[i] = REFUSED;
                            self.refuse(p, LOST_WHILE_TAKEN_FOR_DEAD).await;
                        }
                    }
                    todo.retain(|(i, _)| stored[*i] == 0);
                    if todo.is_empty() {
                        break;
                    }
                }
                match self
                    .publish_some(&mut batch, &todo, &mut stored, &mut unsure, &mut known)
                    .await
                {
                    // Every answer came; probes not found go again now.
                    Ok(()) if stored.contains(&0) => {
                        todo.clear();
                        todo.extend(next_round(&batch, &stored, &unsure));
                        continue;
                    }
                    Ok(()) => break,
                    Err(Failure { why, full: None }) => {
                        warn!(error = %why, "cannot append to the cluster's log; trying again");
                        tokio::time::sleep(backoff).await;
                    }
                    Err(Failure {
                        why,
                        full: Some(cause),
                    }) => {
                        // The batch's messages and enterings not sent yet would go after
                        // what waits: refused now. (One sent whose answer
                        // was lost may be stored: tried again, as ever.)
                        for (i, p) in batch.iter().enumerate() {
                            if stored[i] == 0 && p.undoable && !p.tried {
                                stored[i] = REFUSED;
                                self.refuse(p, &cause).await;
                            }
                        }
                        if !stored.contains(&0) {
                            break;
                        }
                        warn!(error = %why, "no room in the cluster's log; trying again");
                        self.wait_refusing(&mut rx, &mut held, &mut barriers, backoff, &cause)
                            .await;
                    }
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                todo.clear();
                todo.extend(next_round(&batch, &stored, &unsure));
            }
            self.publishing(&batch, false);
            self.pending.fetch_sub(batch.len(), Ordering::Relaxed);
            batch.clear();
            if held.is_empty() {
                for b in barriers.drain(..) {
                    let _ = b.send(());
                }
            }
        }
    }

    /// Whether `p` was proposed by a session closed since because another
    /// node took this one for dead.
    fn of_gone(&self, p: &Proposal) -> bool {
        let session = decode_event(&p.room, 0, &p.payload).map(|e| e.session());
        self.fence.refused(session, p.number)
    }

    /// Tell `p`'s sender it was not sent, for `cause`.
    async fn refuse(&self, p: &Proposal, cause: &str) {
        if let Some(event) = decode_event(&p.room, 0, &p.payload) {
            let _ = self
                .to_hub
                .send(FromCluster::Refused(event, cause.to_owned()))
                .await;
        }
    }

    /// Wait `wait` while a leaving waits for room in the log: each message
    /// or entering proposed meanwhile is refused for `cause` as it comes;
    /// a leaving joins `held`, in order, to be published after what waits
    /// (and a barrier waits for those).
    async fn wait_refusing(
        &self,
        rx: &mut mpsc::UnboundedReceiver<ToPublisher>,
        held: &mut VecDeque<Proposal>,
        barriers: &mut Vec<tokio::sync::oneshot::Sender<()>>,
        wait: Duration,
        cause: &str,
    ) {
        let until = tokio::time::Instant::now() + wait;
        while let Ok(Some(item)) = tokio::time::timeout_at(until, rx.recv()).await {
            let p = match item {
                ToPublisher::Propose(p) => p,
                ToPublisher::Barrier(b) => {
                    barriers.push(b);
                    continue;
                }
            };
            if p.undoable {
                self.refuse(&p, cause).await;
                self.pending.fetch_sub(1, Ordering::Relaxed);
            } else {
                held.push_back(p);
            }
        }
    }
}
