//! Proposing: the publisher task appends what the hub proposes to each
//! room's stream, in batches, and learns from the acknowledgement which
//! seq the log gave it (a duplicate: whether the copy stored is ours).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::header::{NATS_EXPECTED_LAST_SEQUENCE, NATS_MESSAGE_ID};
use async_nats::jetstream::context::{CreateStreamErrorKind, PublishErrorKind};
use async_nats::jetstream::stream::RawMessageErrorKind;
use async_nats::jetstream::ErrorCode;
use async_nats::HeaderMap;
use chatproto::{Event, EventBody, PresenceStatus, SessionId};
use tokio::sync::mpsc;
use tracing::warn;

use super::entry::{decode_event, encode_event};
use super::{
    lock, names, Cluster, FromCluster, Proposal, ToPublisher, LOST_WHILE_TAKEN_FOR_DEAD, ORIGIN,
    PUBLISH_BATCH,
};

/// `stored` of a proposal refused (its sender told it was not sent).
const REFUSED: u64 = u64::MAX;

/// The guard of a proposal sent before whose answer never came (see
/// [`Cluster::publish`]): met by no stream holding anything, as any
/// guard, and looked for below the stream's top when refused.
const PROBE: u64 = u64::MAX;

/// How long the acknowledgements after a failed one are awaited, together.
const REST_WAIT: Duration = Duration::from_secs(1);

/// How far below a later message of its room a refused retry is looked
/// for (stored before its acknowledgement was lost): down to this node's
/// last message of an earlier batch (a batch is stored or refused whole
/// before the next is published), or to the stream's first message, and
/// at least [`FIND_BELOW`] messages down; past those, down to the
/// messages NATS stamped this long before the retry was first sent (the
/// node's clock and NATS's may differ by up to this). A count alone would
/// not do: other nodes' messages stored while this node was away from
/// NATS can bury the copy any depth down, and past the stream's duplicate
/// window one not found is stored twice. (An id every node gives alike,
/// a client's message resent through another node or a departure, may
/// have been stored earlier still, by another node: found only within
/// [`FIND_BELOW`].)
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// How many messages that look reads whatever the stamps say...
const FIND_BELOW: u64 = 4 * PUBLISH_BATCH as u64;

/// ...and the most it reads.
const FIND_BELOW_MAX: u64 = 1_000_000;

/// How many times one read that failed is asked again before the look
/// gives up (it is made again from the top at the next round).
const READ_TRIES: usize = 3;

/// How many of its reads are asked at once.
const FIND_AT_ONCE: usize = 32;

/// Why an entering stored, then removed before this node read it, is
/// refused to its sender (other nodes may have applied it: entering
/// again is harmless).
const REMOVED_UNREAD: &str = "the room's log removed it (its history limit) before this \
                              server read it";

/// Why a retry is refused to its sender (a leaving's waiting answers
/// are let go: its session entered the room again since).
const OUT_OF_ORDER: &str = "the cluster's log lost it with a NATS connection, and storing it \
                            now would put it after later events of the room";

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

    /// Tell `p`'s sender it was not sent, for `cause`.
    /// `p`, stored at `seq`, was removed from the stream before this
    /// node read it, and stepped over (see `own`): a message's sender is
    /// answered as for a copy the log held already, an entering refused,
    /// a leaving's waiting answers let go.
    async fn lost(&self, p: &Proposal, seq: u64) {
        let Some(event) = decode_event(&p.room, seq, &p.payload) else {
            return;
        };
        let item = if event.is_msg() {
            FromCluster::Duplicate(event)
        } else {
            FromCluster::Refused(event, REMOVED_UNREAD.to_owned())
        };
        let _ = self.to_hub.send(item).await;
    }

    /// Whether `p` was proposed by a session closed since because another
    /// node took this one for dead.
    fn of_gone(&self, p: &Proposal) -> bool {
        let session = decode_event(&p.room, 0, &p.payload).map(|e| e.session());
        self.fence.refused(session, p.number)
    }

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

    /// Publish the proposals `todo` names (each guarded, with the seq of
    /// the later one of its room stored or [`PROBE`], or not: see
    /// [`Cluster::publish`]) and await their acknowledgements, marking in
    /// `stored` where each went and in `unsure` which are left without an
    /// answer. On a failure, the acknowledgements already asked for are
    /// still awaited (for at most [`REST_WAIT`] more): which later ones
    /// are stored decides how the failed ones go again.
    async fn publish_some(
        self: &Arc<Self>,
        batch: &mut [Proposal],
        todo: &[(usize, Option<u64>)],
        stored: &mut [u64],
        unsure: &mut [bool],
        known: &mut HashMap<Arc<str>, async_nats::Subject>,
    ) -> Result<(), Failure> {
        let n = todo.len();
        let mut acks = Vec::with_capacity(n);
        let mut failed = None;
        // NATS said it has no room (for a leaving: tried again).
        let mut full = None;
        // Rooms whose streams NATS had no room to make, this round: what
        // else comes for them is refused without asking again.
        let mut unmade: Vec<(Arc<str>, String)> = Vec::new();
        for (k, &(i, guard)) in todo.iter().enumerate() {
            // Held up within the batch (a paused process): what is left
            // waits for the fence, as a batch does.
            if self.fence.stale(self.warn_at()) {
                failed = Some("this node's heartbeat is late: holding its proposals".into());
                break;
            }
            let p = &mut batch[i];
            if let Some(cause) = self.lost_room(&p.room) {
                stored[i] = REFUSED;
                self.refuse(p, &cause).await;
                continue;
            }
            if !known.contains_key(&p.room) {
                // No room for the room's stream: nothing of the room was
                // stored, so whatever comes for it is refused (a message or
                // an entering, its sender told; a leaving has nothing to
                // leave, and the core lets what waited for it go).
                let no_room = match unmade.iter().find(|(r, _)| *r == p.room) {
                    Some((_, cause)) => Some(cause.clone()),
                    None => match self.open_stream(&p.room).await {
                        Ok(()) => None,
                        Err(Failure {
                            full: Some(cause),
                            why,
                        }) => {
                            warn!(room = &*p.room, error = %why, "refusing the room's messages and enterings");
                            unmade.push((Arc::clone(&p.room), cause.clone()));
                            Some(cause)
                        }
                        Err(e) => {
                            failed = Some(e.why);
                            break;
                        }
                    },
                };
                if let Some(cause) = no_room {
                    stored[i] = REFUSED;
                    self.refuse(p, &cause).await;
                    continue;
                }
                known.insert(Arc::clone(&p.room), names(&p.room).1.into());
            }
            let mut headers = HeaderMap::new();
            headers.insert(NATS_MESSAGE_ID, p.msg_id.as_str());
            headers.insert(ORIGIN, &*self.origin);
            if guard.is_some() {
                // Met by no stream holding a later message.
                headers.insert(NATS_EXPECTED_LAST_SEQUENCE, "0");
            }
            let subject = known[&p.room].clone();
            match self
                .js
                .publish_with_headers(subject, headers, p.payload.clone())
                .await
            {
                // Whether it was published before this try, and is now.
                Ok(ack) => {
                    unsure[i] = true;
                    p.first_sent.get_or_insert_with(std::time::SystemTime::now);
                    acks.push((i, guard, ack, std::mem::replace(&mut p.tried, true)));
                }
                Err(e) => {
                    if e.kind() == PublishErrorKind::StreamNotFound {
                        known.remove(&p.room);
                    }
                    failed = Some(format!("message {k} of {n}: {e}"));
                    break;
                }
            }
        }
        // One after the other while all goes well; from the first failure
        // on, the rest together, each for at most REST_WAIT (an
        // acknowledgement's own timeout starts only when it is awaited).
        let mut answers = Vec::with_capacity(acks.len());
        let mut acks = acks.into_iter();
        if failed.is_none() {
            for (i, guard, ack, tried) in acks.by_ref() {
                let answer = ack
                    .await
                    .map_err(|e| (e.kind(), no_room(&e), e.to_string()));
                let bad = answer.is_err();
                answers.push((i, guard, answer, tried));
                if bad {
                    break;
                }
            }
        }
        answers.extend(
            futures_util::future::join_all(acks.map(|(i, guard, ack, tried)| async move {
                let answer = match tokio::time::timeout(
                    REST_WAIT,
                    std::future::IntoFuture::into_future(ack),
                )
                .await
                {
                    Ok(answer) => answer.map_err(|e| (e.kind(), no_room(&e), e.to_string())),
                    Err(_) => Err((
                        PublishErrorKind::TimedOut,
                        None,
                        "no acknowledgement".into(),
                    )),
                };
                (i, guard, answer, tried)
            }))
            .await,
        );
        let mut refused: Vec<(usize, u64, String)> = Vec::new();
        for (i, guard, answer, tried) in answers {
            // NATS answered for this copy (after any copy sent before it),
            // but for one still being stored or for a failure of its own.
            unsure[i] = match &answer {
                Ok(ack) => ack.duplicate && ack.sequence == 0,
                Err((PublishErrorKind::WrongLastSequence, _, _)) | Err((_, Some(_), _)) => false,
                Err(_) => true,
            };
            // A duplicate is success: an earlier try stored it, or another
            // node did (a session's message resent after it moved; the
            // hub answers `duplicate`: this copy will not come back).
            match answer {
                // A copy of a message still being stored (nats-server 2.10
                // with replicas answers so, with seq 0; 2.11 and later with
                // an error): its seq is known once it is, so ask again.
                Ok(ack) if ack.duplicate && ack.sequence == 0 => {
                    failed.get_or_insert_with(|| "a copy of a message still being stored".into());
                }
                Ok(ack) => {
                    stored[i] = ack.sequence;
                    let p = &batch[i];
                    // Seqs only go up in a stream (a retry that would land
                    // below a later one is refused, see `guarded`): a
                    // lower one is a stream made anew, which this node's
                    // copy of the room does not follow.
                    let back = lock(&self.acked)
                        .get(&p.room)
                        .is_some_and(|&last| ack.sequence <= last);
                    if back && !ack.duplicate {
                        self.lose_room(&p.room, "was made anew (its seqs began again)");
                    }
                    // Stored where no follower of this node reads: its
                    // sender would wait for ever.
                    if let Some(cause) = self.lost_room(&p.room) {
                        self.refuse(p, &cause).await;
                        continue;
                    }
                    if ack.duplicate
                        && p.msg_id.starts_with("m/")
                        && !self.ours(p, ack.sequence, tried).await
                    {
                        if let Some(event) = decode_event(&p.room, ack.sequence, &p.payload) {
                            let _ = self.to_hub.send(FromCluster::Duplicate(event)).await;
                        }
                        // An older seq, not this node's proposal.
                        continue;
                    }
                    if self.stored_own(&p.room, ack.sequence, &p.payload) {
                        self.lost(p, ack.sequence).await;
                    }
                    self.note_acked(&p.room, ack.sequence, !ack.duplicate);
                }
                // Looked for in the stream below, once for all of a room.
                Err((PublishErrorKind::WrongLastSequence, _, e)) if guard.is_some() => {
                    refused.push((i, guard.unwrap_or(0), e));
                }
                // No room for it: its sender told (unless an earlier try,
                // whose answer was lost, may have stored it).
                Err((_, Some(cause), _)) if batch[i].undoable && !tried => {
                    stored[i] = REFUSED;
                    self.refuse(&batch[i], &cause).await;
                }
                Err((_, Some(cause), e)) => {
                    full.get_or_insert(cause);
                    failed.get_or_insert(e);
                }
                Err((kind, _, e)) => {
                    // The stream went (deleted by hand): made again by
                    // the next try, so that this room's proposals do not
                    // hold up every other room's behind them.
                    if kind == PublishErrorKind::StreamNotFound {
                        known.remove(&batch[i].room);
                    }
                    failed.get_or_insert(e);
                }
            }
        }
        // Each refused retry: stored before the later one of its room (its
        // acknowledgement lost), or not stored at all. A probe is looked for
        // below the stream's top, read now: after its answer, so above
        // whatever copy went before it.
        let mut rooms: Vec<(Arc<str>, u64)> = Vec::new();
        for &(i, below, _) in &refused {
            let room = &batch[i].room;
            match rooms.iter_mut().find(|(r, _)| r == room) {
                Some(r) => r.1 = r.1.max(below),
                None => rooms.push((Arc::clone(room), below)),
            }
        }
        for (room, below) in rooms {
            // No copy of any of them is older than the first try of the
            // earliest sent.
            let since = (refused.iter())
                .filter(|r| batch[r.0].room == room)
                .filter_map(|r| batch[r.0].first_sent)
                .min()
                .and_then(|t| t.checked_sub(CLOCK_SKEW))
                .unwrap_or(std::time::UNIX_EPOCH);
            let of_room: Vec<(usize, u64)> = refused
                .iter()
                .filter(|r| batch[r.0].room == room)
                .map(|r| (r.0, r.1))
                .collect();
            let ids = match self.ids_below(&room, below, since, batch).await {
                Ok(ids) => ids,
                // Cannot tell: tried again later (probed again, whether it
                // was a probe or not).
                Err(why) => {
                    for &(i, _) in &of_room {
                        unsure[i] = true;
                    }
                    failed.get_or_insert(why);
                    continue;
                }
            };
            for (i, guard) in of_room {
                match ids.get(batch[i].msg_id.as_str()) {
                    // Stored before the later one: in its place.
                    Some(&(seq, own)) => self.found(&batch[i], seq, own, &mut stored[i]).await,
                    // Not stored, and no copy on its way: goes again, as
                    // one never sent (refused, not stored, if its session
                    // was taken for dead or the log is full meanwhile).
                    None if guard == PROBE => batch[i].tried = false,
                    None => {
                        stored[i] = REFUSED;
                        self.refuse(&batch[i], OUT_OF_ORDER).await;
                    }
                }
            }
        }
        failed.map_or(Ok(()), |why| Err(Failure { why, full }))
    }

    /// `p`, found stored at `seq` in its room's stream (its answer lost):
    /// marked so in `stored`. This node's copy (`own`) is its latest of the
    /// room if it is; another node's (a message resent after its session
    /// moved) is answered as a duplicate, as its acknowledgement would be:
    /// this copy will not come back.
    async fn found(&self, p: &Proposal, seq: u64, own: bool, stored: &mut u64) {
        *stored = seq;
        if !own && p.msg_id.starts_with("m/") {
            if let Some(event) = decode_event(&p.room, seq, &p.payload) {
                let _ = self.to_hub.send(FromCluster::Duplicate(event)).await;
            }
            return;
        }
        if self.stored_own(&p.room, seq, &p.payload) {
            self.lost(p, seq).await;
        }
        self.note_acked(&p.room, seq, false);
    }

    /// `seq` is where the log holds a proposal of this node's in `room`:
    /// the room's acknowledged seq if it is the `latest` answer (so that
    /// a stream made again does not leave an old seq here), else if it is
    /// above it (an earlier try's copy, found or answered as a duplicate,
    /// may be below a later one's answered since).
    fn note_acked(&self, room: &Arc<str>, seq: u64, latest: bool) {
        let mut acked = lock(&self.acked);
        let last = acked.entry(Arc::clone(room)).or_insert(seq);
        if latest || seq > *last {
            *last = seq;
        }
    }

    /// The message ids of `batch` stored in `room`'s stream below `seq`
    /// (`PROBE`: below its top, as it is now), with their seqs and
    /// whether the copy is this node's: the messages below it are read
    /// down to this node's latest of an earlier batch (all of `batch` went
    /// after it) or the stream's first; past the [`FIND_BELOW`] newest, to
    /// the first NATS stamped before `since`; [`FIND_BELOW_MAX`] at most.
    /// `Err` if the stream cannot be read.
    async fn ids_below(
        &self,
        room: &str,
        seq: u64,
        since: std::time::SystemTime,
        batch: &[Proposal],
    ) -> Result<HashMap<String, (u64, bool)>, String> {
        use futures_util::StreamExt;
        let (name, _) = names(room);
        let stream = self.js.get_stream(&name).await.map_err(|e| e.to_string())?;
        let seq = match seq {
            PROBE => stream.cached_info().state.last_sequence.saturating_add(1),
            seq => seq,
        };
        let since = since
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let first = stream.cached_info().state.first_sequence;
        let low = seq.saturating_sub(FIND_BELOW_MAX).max(first).max(1);
        let ours: std::collections::HashSet<&str> =
            batch.iter().map(|p| p.msg_id.as_str()).collect();
        let mut ids = HashMap::new();
        // Newest first, a few reads on their way at once (a long outage
        // may have put thousands of other nodes' messages on top).
        let stream = &stream;
        let mut reads = futures_util::stream::iter((low..seq).rev())
            .map(|at| async move { (at, stream.get_raw_message(at).await) })
            .buffered(FIND_AT_ONCE);
        while let Some((at, mut read)) = reads.next().await {
            // A read that failed (not a message deleted) is asked again:
            // one failure in a long look would make it all again.
            for _ in 1..READ_TRIES {
                match &read {
                    Err(e) if e.kind() != RawMessageErrorKind::NoMessageFound => {
                        read = stream.get_raw_message(at).await;
                    }
                    _ => break,
                }
            }
            match read {
                Ok(m) => {
                    if m.time.unix_timestamp_nanos() < since && seq - at > FIND_BELOW {
                        break;
                    }
                    let Some(id) = m.headers.get(NATS_MESSAGE_ID) else {
                        continue;
                    };
                    let own = m.headers.get(ORIGIN).map(|o| o.as_str()) == Some(&*self.origin);
                    if ours.contains(id.as_str()) {
                        ids.insert(id.as_str().to_owned(), (at, own));
                    } else if own {
                        // This node's, of an earlier batch.
                        break;
                    }
                }
                Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => {}
                Err(e) => return Err(format!("reading seq {at} of the room's stream: {e}")),
            }
        }
        Ok(ids)
    }

    /// A duplicate acknowledgement for the message `p`: whether the copy
    /// the log holds is this proposal's own (an earlier try stored it, and
    /// it comes back to be applied) rather than another node's (a resend
    /// after the session moved; it will not come back). Never published
    /// before: not ours. Published before: ours if the stored payload is
    /// this one, stamp included; if that cannot be read, ours (the client
    /// then waits for an echo, and resends on its next reconnect).
    async fn ours(&self, p: &Proposal, seq: u64, tried: bool) -> bool {
        if !tried {
            return false;
        }
        let (name, _) = names(&p.room);
        let stored = match self.js.get_stream(&name).await {
            Ok(stream) => stream.get_raw_message(seq).await.ok(),
            Err(_) => None,
        };
        stored.is_none_or(|m| m.payload == p.payload)
    }

    /// Per room, the seq the log gave this node's latest proposal.
    pub fn acked(&self) -> Vec<(Arc<str>, u64)> {
        lock(&self.acked)
            .iter()
            .map(|(room, seq)| (Arc::clone(room), *seq))
            .collect()
    }
}

/// What a guard needs to know of a proposal: whether it is a message, or
/// a presence (an entering or a leaving) of which session.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Msg,
    Presence(SessionId),
}

fn kind_of(p: &Proposal) -> Option<Kind> {
    let event = decode_event(&p.room, 0, &p.payload)?;
    Some(match event.body {
        EventBody::Msg { .. } => Kind::Msg,
        EventBody::Presence { session, .. } => Kind::Presence(session),
        _ => return None,
    })
}

/// What the next round of a batch sends: while any proposal sent before
/// has had no answer (`unsure`), those only, each a [`PROBE`] (looked for
/// below the stream's top: a copy may be above a later one of its room
/// answered, if that answer named another node's older copy); then the
/// rest, as [`guarded`] says.
fn next_round(batch: &[Proposal], stored: &[u64], unsure: &[bool]) -> Vec<(usize, Option<u64>)> {
    let probing = (0..batch.len()).any(|i| stored[i] == 0 && unsure[i]);
    guarded(batch, stored)
        .filter(|&(i, _)| !probing || unsure[i])
        .map(|(i, guard)| (i, if probing { Some(PROBE) } else { guard }))
        .collect()
}

/// The proposals of `batch` not stored yet, in order, each guarded (with
/// the lowest seq of the later proposals of its room stored) if storing it
/// after them would change what they meant: a message behind any of them
/// (after its sender's later messages), an entering or a leaving behind
/// its own session's later presence in the room (a leaving after its
/// session's entering again would take it out of the room; an entering
/// after its session's parting would put it back in). Stored late, any
/// other presence means what it meant (an entering after its session's
/// message leaves that message unechoed, but refusing it would not echo
/// it either, and the session is in the room as it asked).
fn guarded<'a>(
    batch: &'a [Proposal],
    stored: &'a [u64],
) -> impl Iterator<Item = (usize, Option<u64>)> + 'a {
    // Per room: the lowest seq of its later proposals stored, and the
    // sessions with a presence among them.
    let mut later: Vec<(&str, u64, Vec<SessionId>)> = Vec::new();
    let mut guard = vec![None; batch.len()];
    for i in (0..batch.len()).rev() {
        let room = &*batch[i].room;
        match stored[i] {
            REFUSED => {}
            0 => {
                let Some((_, below, moved)) = later.iter().find(|(r, _, _)| *r == room) else {
                    continue;
                };
                let guard_it = match kind_of(&batch[i]) {
                    Some(Kind::Msg) => true,
                    Some(Kind::Presence(s)) => moved.contains(&s),
                    None => false,
                };
                if guard_it {
                    guard[i] = Some(*below);
                }
            }
            seq => {
                let at = match later.iter().position(|(r, _, _)| *r == room) {
                    Some(at) => at,
                    None => {
                        later.push((room, seq, Vec::new()));
                        later.len() - 1
                    }
                };
                let l = &mut later[at];
                l.1 = l.1.min(seq);
                if let Some(Kind::Presence(s)) = kind_of(&batch[i]) {
                    l.2.push(s);
                }
            }
        }
    }
    (0..batch.len())
        .filter(move |&i| stored[i] == 0)
        .map(move |i| (i, guard[i]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal(room: &str, body: EventBody) -> Proposal {
        let room: Arc<str> = room.into();
        let event = Event::new(Arc::clone(&room), 0, 1, body);
        Proposal {
            room,
            payload: encode_event(&event),
            msg_id: String::new(),
            undoable: true,
            tried: true,
            first_sent: None,
            number: 0,
        }
    }

    fn msg(room: &str, s: u64) -> Proposal {
        proposal(
            room,
            EventBody::msg(SessionId(s), "n", Vec::new(), "hi", None),
        )
    }

    fn enter(room: &str, s: u64) -> Proposal {
        proposal(
            room,
            EventBody::presence(SessionId(s), "n", PresenceStatus::Online),
        )
    }

    fn leave(room: &str, s: u64) -> Proposal {
        proposal(
            room,
            EventBody::presence(SessionId(s), "n", PresenceStatus::Offline),
        )
    }

    fn guards(batch: &[Proposal], stored: &[u64]) -> Vec<(usize, Option<u64>)> {
        guarded(batch, stored).collect()
    }

    #[test]
    fn a_message_behind_a_later_stored_one_of_its_room_is_guarded() {
        // Lost: 0, 1 and 2 (room a), 4 (room b); stored: 3 (a, seq 9), 5 (a, seq 7).
        let batch = [
            msg("a", 1),
            enter("a", 2),
            leave("a", 6),
            msg("a", 3),
            msg("b", 4),
            msg("a", 5),
        ];
        let stored = [0, 0, 0, 9, 0, 7];
        // Another session's presence is not guarded: late, it means what
        // it meant.
        assert_eq!(
            guards(&batch, &stored),
            [(0, Some(7)), (1, None), (2, None), (4, None)]
        );
        // Nothing later stored: tried again as it was.
        assert_eq!(guards(&batch[..2], &[0, 0]), [(0, None), (1, None)]);
        // A refused one is not a later stored one.
        assert_eq!(
            guards(&batch[..4], &[0, 0, 0, REFUSED]),
            [(0, None), (1, None), (2, None)]
        );
    }

    #[test]
    fn while_a_proposal_sent_is_unanswered_only_those_go_each_guarded() {
        // 0 and 2 sent, no answer; 1 not sent yet; 3 stored at seq 9.
        let batch = [msg("a", 1), msg("a", 2), msg("b", 3), msg("a", 4)];
        let stored = [0, 0, 0, 9];
        assert_eq!(
            next_round(&batch, &stored, &[true, false, true, false]),
            [(0, Some(PROBE)), (2, Some(PROBE))]
        );
        // Answered (stored nowhere): the rest go, guarded as before.
        assert_eq!(
            next_round(&batch, &stored, &[false; 4]),
            [(0, Some(9)), (1, Some(9)), (2, None)]
        );
    }

    #[test]
    fn an_entering_is_guarded_only_behind_its_own_sessions_leaving() {
        let batch = [enter("a", 1), enter("a", 2), enter("b", 1), leave("a", 1)];
        assert_eq!(
            guards(&batch, &[0, 0, 0, 12]),
            [(0, Some(12)), (1, None), (2, None)]
        );
    }

    #[test]
    fn a_leaving_is_guarded_only_behind_its_own_sessions_entering() {
        let batch = [
            leave("a", 1),
            leave("a", 2),
            leave("b", 1),
            msg("a", 3),
            enter("a", 1),
        ];
        let stored = [0, 0, 0, 12, 13];
        // Session 1's leaving of a would undo its entering again; session
        // 2's would not, nor session 1's of another room.
        assert_eq!(
            guards(&batch, &stored),
            [(0, Some(12)), (1, None), (2, None)]
        );
        // Behind someone else's message only: stored late, as before.
        assert_eq!(
            guards(&batch[..4], &[0, 0, 0, 12]),
            [(0, None), (1, None), (2, None)]
        );
    }
}
