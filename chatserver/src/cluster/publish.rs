//! Proposing: the publisher task appends what the hub proposes to each
//! room's stream, in batches, and learns from the acknowledgement which
//! seq the log gave it (a duplicate: whether the copy stored is ours).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::header::NATS_MESSAGE_ID;
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
    /// is tried again (with everything after it, in order) until NATS
    /// takes it: its id makes a copy stored twice count once.
    pub(super) async fn publish(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Proposal>) {
        let mut batch = Vec::with_capacity(PUBLISH_BATCH);
        // Rooms whose stream is known to exist, with their subject (made
        // once, cloned cheaply per message).
        let mut known: HashMap<Arc<str>, async_nats::Subject> = HashMap::new();
        loop {
            if rx.recv_many(&mut batch, PUBLISH_BATCH).await == 0 {
                return;
            }
            let mut backoff = Duration::from_millis(50);
            let mut from = 0;
            while from < batch.len() {
                match self.publish_some(&mut batch[from..], &mut known).await {
                    Ok(()) => from = batch.len(),
                    Err((done, e)) => {
                        from += done;
                        warn!(error = %e, "cannot append to the cluster's log; trying again");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
            }
            self.pending.fetch_sub(batch.len(), Ordering::Relaxed);
            batch.clear();
        }
    }

    /// Publish `batch` and await its acknowledgements; on failure, how
    /// many from the start are surely stored (a publish that failed before
    /// the acknowledgements were awaited counts none: all go again, and
    /// their ids keep the ones stored already from being stored twice).
    async fn publish_some(
        self: &Arc<Self>,
        batch: &mut [Proposal],
        known: &mut HashMap<Arc<str>, async_nats::Subject>,
    ) -> Result<(), (usize, String)> {
        let n = batch.len();
        let mut acks = Vec::with_capacity(n);
        for (i, p) in batch.iter_mut().enumerate() {
            if !known.contains_key(&p.room) {
                self.open_stream(&p.room).await.map_err(|e| (0, e))?;
                known.insert(Arc::clone(&p.room), names(&p.room).1.into());
            }
            let mut headers = HeaderMap::new();
            headers.insert(NATS_MESSAGE_ID, p.msg_id.as_str());
            headers.insert(ORIGIN, &*self.origin);
            let subject = known[&p.room].clone();
            match self
                .js
                .publish_with_headers(subject, headers, p.payload.clone())
                .await
            {
                // Whether it was published before this try, and is now.
                Ok(ack) => acks.push((ack, std::mem::replace(&mut p.tried, true))),
                Err(e) => {
                    if e.kind() == PublishErrorKind::StreamNotFound {
                        known.remove(&p.room);
                    }
                    return Err((0, format!("message {i} of {n}: {e}")));
                }
            }
        }
        for (i, (ack, tried)) in acks.into_iter().enumerate() {
            // A duplicate is success: an earlier try stored it, or another
            // node did (a session's message resent after it moved; the
            // hub answers `duplicate`: this copy will not come back).
            match ack.await {
                // A copy of a message still being stored (nats-server 2.10
                // with replicas answers so, with seq 0; 2.11 and later with
                // an error): its seq is known once it is, so ask again.
                Ok(ack) if ack.duplicate && ack.sequence == 0 => {
                    return Err((i, "a copy of a message still being stored".into()))
                }
                Ok(ack) => {
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
                Err(e) => {
                    // The stream went (deleted by hand): made again by
                    // the next try, so that this room's proposals do not
                    // hold up every other room's behind them.
                    if e.kind() == PublishErrorKind::StreamNotFound {
                        known.remove(&batch[i].room);
                    }
                    return Err((i, e.to_string()));
                }
            }
        }
        Ok(())
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
