//! One round of a batch: its proposals published, their acknowledgements
//! awaited together, and what each answer says of where it went (a
//! refused retry looked for below the later one of its room).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::header::{NATS_EXPECTED_LAST_SEQUENCE, NATS_MESSAGE_ID};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::HeaderMap;
use tracing::warn;

use super::find::CLOCK_SKEW;
use super::{no_room, Failure, PROBE, REFUSED};
use crate::cluster::entry::decode_event;
use crate::cluster::{lock, names, Cluster, FromCluster, Proposal, ORIGIN};

/// How long the acknowledgements after a failed one are awaited, together.
const REST_WAIT: Duration = Duration::from_secs(1);

/// Why an entering stored, then removed before this node read it, is
/// refused to its sender (other nodes may have applied it: entering
/// again is harmless).
const REMOVED_UNREAD: &str = "the room's log removed it (its history limit) before this \
                              server read it";

/// Why a retry is refused to its sender (a leaving's waiting answers
/// are let go: its session entered the room again since).
const OUT_OF_ORDER: &str = "the cluster's log lost it with a NATS connection, and storing it \
                            now would put it after later events of the room";

impl Cluster {
    /// Publish the proposals `todo` names (each guarded, with the seq of
    /// the later one of its room stored or [`PROBE`], or not: see
    /// [`Cluster::publish`]) and await their acknowledgements, marking in
    /// `stored` where each went and in `unsure` which are left without an
    /// answer. On a failure, the acknowledgements already asked for are
    /// still awaited (for at most [`REST_WAIT`] more): which later ones
    /// are stored decides how the failed ones go again.
    pub(super) async fn publish_some(
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
}
