//! Proposing: the publisher task appends what the hub proposes to each
//! room's stream, in batches, and learns from the acknowledgement which
//! seq the log gave it (a duplicate: whether the copy stored is ours).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::header::{NATS_EXPECTED_LAST_SEQUENCE, NATS_MESSAGE_ID};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::stream::RawMessageErrorKind;
use async_nats::HeaderMap;
use chatproto::Event;
use tokio::sync::mpsc;
use tracing::warn;

use super::entry::{decode_event, encode_event};
use super::{lock, names, Cluster, FromCluster, Proposal, ORIGIN, PUBLISH_BATCH};

/// `stored` of a proposal refused (its sender told it was not sent).
const REFUSED: u64 = u64::MAX;

/// How long the acknowledgements after a failed one are awaited, together.
const REST_WAIT: Duration = Duration::from_secs(1);

/// How many messages below a later one of its room a refused retry is
/// looked for (stored before its acknowledgement was lost).
const FIND_BELOW: u64 = 2 * PUBLISH_BATCH as u64;

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
            tried: false,
        };
        if self.proposals.send(proposal).is_err() {
            self.pending.fetch_sub(1, Ordering::Relaxed);
        }
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
    /// messages). So a message tried again behind a later one of its room
    /// already stored goes with an expectation no stream can meet (the
    /// last seq 0). NATS answers a copy it holds as a duplicate (up to
    /// 2.11, and with replicas) or refuses it (2.12 and later, on a stream
    /// without replicas); a refused one is looked for in the stream below
    /// the later one. Found, it is stored in its place; not found, its
    /// sender is told it was not sent (`unavailable`) rather than have it
    /// stored out of order.
    pub(super) async fn publish(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Proposal>) {
        let mut batch = Vec::with_capacity(PUBLISH_BATCH);
        // Rooms whose stream is known to exist, with their subject (made
        // once, cloned cheaply per message).
        let mut known: HashMap<Arc<str>, async_nats::Subject> = HashMap::new();
        // Per proposal of the batch: the seq it was stored at (0: not yet;
        // `REFUSED`: refused, its sender told).
        let mut stored: Vec<u64> = Vec::with_capacity(PUBLISH_BATCH);
        let mut todo: Vec<(usize, Option<u64>)> = Vec::new();
        loop {
            if rx.recv_many(&mut batch, PUBLISH_BATCH).await == 0 {
                return;
            }
            stored.clear();
            stored.resize(batch.len(), 0);
            todo.clear();
            todo.extend((0..batch.len()).map(|i| (i, None)));
            let mut backoff = Duration::from_millis(50);
            loop {
                match self
                    .publish_some(&mut batch, &todo, &mut stored, &mut known)
                    .await
                {
                    Ok(()) => break,
                    Err(e) => {
                        warn!(error = %e, "cannot append to the cluster's log; trying again");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
                todo.clear();
                todo.extend(guarded(&batch, &stored));
            }
            self.pending.fetch_sub(batch.len(), Ordering::Relaxed);
            batch.clear();
        }
    }

    /// Publish the proposals `todo` names (each guarded, with the seq of
    /// the later one of its room stored, or not: see [`Cluster::publish`])
    /// and await their acknowledgements, marking in `stored` where each
    /// went. On a failure, the acknowledgements already asked for are
    /// still awaited (for at most [`REST_WAIT`] more): which later ones
    /// are stored decides how the failed ones go again.
    async fn publish_some(
        self: &Arc<Self>,
        batch: &mut [Proposal],
        todo: &[(usize, Option<u64>)],
        stored: &mut [u64],
        known: &mut HashMap<Arc<str>, async_nats::Subject>,
    ) -> Result<(), String> {
        let n = todo.len();
        let mut acks = Vec::with_capacity(n);
        let mut failed = None;
        for (k, &(i, guard)) in todo.iter().enumerate() {
            let p = &mut batch[i];
            if !known.contains_key(&p.room) {
                if let Err(e) = self.open_stream(&p.room).await {
                    failed = Some(e);
                    break;
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
                Ok(ack) => acks.push((i, guard, ack, std::mem::replace(&mut p.tried, true))),
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
                let answer = ack.await.map_err(|e| (e.kind(), e.to_string()));
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
                    Ok(answer) => answer.map_err(|e| (e.kind(), e.to_string())),
                    Err(_) => Err((PublishErrorKind::TimedOut, "no acknowledgement".into())),
                };
                (i, guard, answer, tried)
            }))
            .await,
        );
        let mut refused: Vec<(usize, u64, String)> = Vec::new();
        for (i, guard, answer, tried) in answers {
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
                    // In order within a room; the latest, not the highest,
                    // so a stream made again does not leave an old seq here.
                    lock(&self.acked).insert(Arc::clone(&p.room), ack.sequence);
                }
                // Looked for in the stream below, once for all of a room.
                Err((PublishErrorKind::WrongLastSequence, e)) if guard.is_some() => {
                    refused.push((i, guard.unwrap_or(0), e));
                }
                Err((kind, e)) => {
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
        // acknowledgement lost), or not stored at all.
        let mut rooms: Vec<(Arc<str>, u64)> = Vec::new();
        for &(i, below, _) in &refused {
            let room = &batch[i].room;
            match rooms.iter_mut().find(|(r, _)| r == room) {
                Some(r) => r.1 = r.1.max(below),
                None => rooms.push((Arc::clone(room), below)),
            }
        }
        for (room, below) in rooms {
            let ids = match self.ids_below(&room, below).await {
                Ok(ids) => ids,
                // Cannot tell: tried again later.
                Err(why) => {
                    failed.get_or_insert(why);
                    continue;
                }
            };
            for &(i, _, _) in refused.iter().filter(|r| batch[r.0].room == room) {
                let p = &batch[i];
                match ids.get(p.msg_id.as_str()) {
                    // Stored before the later one: in its place.
                    Some(&seq) => stored[i] = seq,
                    None => {
                        stored[i] = REFUSED;
                        if let Some(event) = decode_event(&p.room, 0, &p.payload) {
                            let _ = self.to_hub.send(FromCluster::Refused(event)).await;
                        }
                    }
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// The message ids of the [`FIND_BELOW`] messages of `room`'s stream
    /// below `seq`, with their seqs; `Err` if the stream cannot be read.
    async fn ids_below(&self, room: &str, seq: u64) -> Result<HashMap<String, u64>, String> {
        let (name, _) = names(room);
        let stream = self.js.get_stream(&name).await.map_err(|e| e.to_string())?;
        let low = seq.saturating_sub(FIND_BELOW).max(1);
        let mut ids = HashMap::new();
        for at in (low..seq).rev() {
            match stream.get_raw_message(at).await {
                Ok(m) => {
                    if let Some(id) = m.headers.get(NATS_MESSAGE_ID) {
                        ids.insert(id.as_str().to_owned(), at);
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

/// The proposals of `batch` not stored yet, in order, each guarded (with
/// the lowest seq of the later proposals of its room stored) if it is a
/// message behind one of them.
fn guarded<'a>(
    batch: &'a [Proposal],
    stored: &'a [u64],
) -> impl Iterator<Item = (usize, Option<u64>)> + 'a {
    let mut later: Vec<(&str, u64)> = Vec::new();
    let mut guard = vec![None; batch.len()];
    for i in (0..batch.len()).rev() {
        let room = &*batch[i].room;
        match stored[i] {
            REFUSED => {}
            0 => {
                let below = later.iter().find(|(r, _)| *r == room).map(|&(_, s)| s);
                if below.is_some()
                    && decode_event(&batch[i].room, 0, &batch[i].payload)
                        .is_some_and(|e| e.is_msg())
                {
                    guard[i] = below;
                }
            }
            seq => match later.iter_mut().find(|(r, _)| *r == room) {
                Some(l) => l.1 = l.1.min(seq),
                None => later.push((room, seq)),
            },
        }
    }
    (0..batch.len())
        .filter(move |&i| stored[i] == 0)
        .map(move |i| (i, guard[i]))
}
