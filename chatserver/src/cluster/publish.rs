//! Proposing: the publisher task appends what the hub proposes to each
//! room's stream, in batches, and learns from the acknowledgement which
//! seq the log gave it (a duplicate: whether the copy stored is ours).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::header::{NATS_EXPECTED_LAST_SEQUENCE, NATS_MESSAGE_ID};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::HeaderMap;
use chatproto::Event;
use tokio::sync::mpsc;
use tracing::warn;

use super::entry::{decode_event, encode_event};
use super::{lock, names, Cluster, FromCluster, Proposal, ORIGIN, PUBLISH_BATCH};

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
    /// already stored goes with an expectation no stream can meet: NATS
    /// answers a copy it holds (stored before, in its place) as a
    /// duplicate, and refuses a message it does not hold, which its
    /// sender is then told was not sent (`unavailable`) rather than have
    /// it stored out of order.
    pub(super) async fn publish(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Proposal>) {
        let mut batch = Vec::with_capacity(PUBLISH_BATCH);
        // Rooms whose stream is known to exist, with their subject (made
        // once, cloned cheaply per message).
        let mut known: HashMap<Arc<str>, async_nats::Subject> = HashMap::new();
        let mut done: Vec<bool> = Vec::with_capacity(PUBLISH_BATCH);
        let mut todo: Vec<(usize, bool)> = Vec::new();
        loop {
            if rx.recv_many(&mut batch, PUBLISH_BATCH).await == 0 {
                return;
            }
            done.clear();
            done.resize(batch.len(), false);
            todo.clear();
            todo.extend((0..batch.len()).map(|i| (i, false)));
            let mut backoff = Duration::from_millis(50);
            loop {
                match self
                    .publish_some(&mut batch, &todo, &mut done, &mut known)
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
                todo.extend(guarded(&batch, &done));
            }
            self.pending.fetch_sub(batch.len(), Ordering::Relaxed);
            batch.clear();
        }
    }

    /// Publish the proposals `todo` names (each with whether it goes
    /// guarded: see [`Cluster::publish`]) and await their
    /// acknowledgements, marking in `done` those stored or refused. A
    /// publish that fails before the acknowledgements are awaited marks
    /// none: all go again, and their ids keep the ones stored already
    /// from being stored twice.
    async fn publish_some(
        self: &Arc<Self>,
        batch: &mut [Proposal],
        todo: &[(usize, bool)],
        done: &mut [bool],
        known: &mut HashMap<Arc<str>, async_nats::Subject>,
    ) -> Result<(), String> {
        let n = todo.len();
        let mut acks = Vec::with_capacity(n);
        for (k, &(i, guard)) in todo.iter().enumerate() {
            let p = &mut batch[i];
            if !known.contains_key(&p.room) {
                self.open_stream(&p.room).await?;
                known.insert(Arc::clone(&p.room), names(&p.room).1.into());
            }
            let mut headers = HeaderMap::new();
            headers.insert(NATS_MESSAGE_ID, p.msg_id.as_str());
            headers.insert(ORIGIN, &*self.origin);
            if guard {
                // Met by no stream holding a later message: only a copy
                // already stored (a duplicate) passes.
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
                    return Err(format!("message {k} of {n}: {e}"));
                }
            }
        }
        // Every acknowledgement is awaited, a failed one or not: which
        // later ones are stored decides how the failed ones go again.
        let mut failed = None;
        // One after the other while they come; from the first failure on,
        // the rest together: after a lost connection each may take the
        // whole acknowledgement timeout.
        let mut answers = Vec::with_capacity(n);
        let mut acks = acks.into_iter();
        for (i, guard, ack, tried) in acks.by_ref() {
            let answer = ack.await;
            let bad = answer.is_err();
            answers.push((i, guard, answer, tried));
            if bad {
                break;
            }
        }
        answers.extend(
            futures_util::future::join_all(
                acks.map(|(i, guard, ack, tried)| async move { (i, guard, ack.await, tried) }),
            )
            .await,
        );
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
                    done[i] = true;
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
                Err(e) if guard && e.kind() == PublishErrorKind::WrongLastSequence => {
                    // Not stored, and a later message of its room is.
                    done[i] = true;
                    let p = &batch[i];
                    if let Some(event) = decode_event(&p.room, 0, &p.payload) {
                        let _ = self.to_hub.send(FromCluster::Refused(event)).await;
                    }
                }
                Err(e) => {
                    // The stream went (deleted by hand): made again by
                    // the next try, so that this room's proposals do not
                    // hold up every other room's behind them.
                    if e.kind() == PublishErrorKind::StreamNotFound {
                        known.remove(&batch[i].room);
                    }
                    failed.get_or_insert_with(|| e.to_string());
                }
            }
        }
        failed.map_or(Ok(()), Err)
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

/// The proposals of `batch` not `done`, in order, each with whether it
/// must go guarded: a message with a later proposal of its room already
/// stored.
fn guarded<'a>(
    batch: &'a [Proposal],
    done: &'a [bool],
) -> impl Iterator<Item = (usize, bool)> + 'a {
    let mut stored_later: Vec<&str> = Vec::new();
    let mut guard = vec![false; batch.len()];
    for i in (0..batch.len()).rev() {
        let room = &*batch[i].room;
        if done[i] {
            if !stored_later.contains(&room) {
                stored_later.push(room);
            }
        } else if stored_later.contains(&room) {
            guard[i] =
                decode_event(&batch[i].room, 0, &batch[i].payload).is_some_and(|e| e.is_msg());
        }
    }
    (0..batch.len())
        .filter(move |&i| !done[i])
        .map(move |i| (i, guard[i]))
}
