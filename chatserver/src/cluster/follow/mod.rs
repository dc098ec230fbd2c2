//! Following: one task per room reads its stream in order and hands each
//! event to the hub; new rooms are discovered, and each stream's start
//! (moved by its limits) is watched.
//!
//! This file holds a room's follower task; opening a room's stream (and
//! losing it) is in `streams`, finding the rooms and their streams' starts
//! and limits in `rooms`.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::stream::RawMessageErrorKind;
use async_nats::jetstream::{consumer, stream};
use futures_util::StreamExt;
use tracing::warn;

use super::entry::{decode_event, stream_seq};
use super::own::OwnStored;
use super::{
    lock, names, Cluster, Description, FromCluster, FOLLOW_LOOK_MAX, FOLLOW_STALL, ORIGIN,
};

mod rooms;
mod streams;

pub use rooms::LimitsSet;
pub(super) use streams::stream_not_found;

impl Cluster {
    /// Start following `room`'s stream, unless it is followed.
    pub fn follow(self: &Arc<Self>, room: &str) {
        let new = lock(&self.following).insert(room.to_owned());
        if new {
            tokio::spawn(Arc::clone(self).follow_room(room.to_owned()));
        }
    }

    /// Read one room's stream in order, forever: each event to the hub.
    async fn follow_room(self: Arc<Self>, room: String) {
        let (name, _) = names(&room);
        let room: Arc<str> = Arc::from(room);
        let mut next = 0u64;
        // The room's epoch, from its stream's description when first read.
        let mut epoch = String::new();
        let mut backoff = Duration::from_millis(50);
        loop {
            let from = next;
            match self.follow_once(&room, &name, &mut next, &mut epoch).await {
                Ok(()) => return, // the hub is gone, or the stream made anew
                // Its stream went (this node's publisher found it gone):
                // nothing more to read until a restart.
                Err(_) if self.lost_room(&room).is_some() => return,
                Err(e) => {
                    // A reading that got somewhere starts the waits over.
                    if next > from {
                        backoff = Duration::from_millis(50);
                    }
                    warn!(room = &*room, error = %e, "reading the room's stream again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Whether the room's follower, silent for a while at `next`, is
    /// stuck: this node's own proposals stored that far say so without
    /// asking; otherwise, once the silence has lasted `look_after`, the
    /// stream is asked where it starts and ends (within `FOLLOW_STALL`; no
    /// answer is no news). Events the stream's limits removed before this
    /// node read them are stepped over here (a new consumer would wait
    /// for them for ever). `Err`: the last seq the stream holds, past
    /// what this node read; `Ok(false)`: the hub is gone.
    async fn check_silence(
        &self,
        room: &Arc<str>,
        stream: &mut stream::Stream,
        epoch: &str,
        next: &mut u64,
        asked: bool,
    ) -> Result<bool, u64> {
        let acked = lock(&self.acked).get(&**room).copied();
        if let Some(stored) = acked.filter(|&s| s >= *next) {
            return Err(stored);
        }
        if !asked {
            return Ok(true);
        }
        let Ok(Ok(info)) = tokio::time::timeout(FOLLOW_STALL, stream.info()).await else {
            return Ok(true);
        };
        let state = info.state.clone();
        let first = if state.messages == 0 {
            state.last_sequence + 1
        } else {
            state.first_sequence
        };
        if first > *next && !self.skip_to(room, epoch, next, first).await {
            return Ok(false);
        }
        if state.messages > 0 && state.last_sequence >= *next {
            // The events past `next` removed from inside the stream (see
            // `follow_once`): stepped over; any there: read again.
            let end = state.last_sequence + 1;
            if !matches!(all_removed(stream, *next, end).await, Ok(true)) {
                return Err(state.last_sequence);
            }
            if !self.skip_to(room, epoch, next, end).await {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Step over the events from `next` up to `to` (not included), which
    /// were removed from the stream before this node read them (by its
    /// limits, or by NATS or an operator inside it), as every node does
    /// that reads them now; but this node's own proposals stored there
    /// are applied from its copy (see `own`). If any was another's, who
    /// is in the room is asked of a node that read them (see `roster`).
    /// `false`: the hub is gone.
    async fn skip_to(&self, room: &Arc<str>, epoch: &str, next: &mut u64, to: u64) -> bool {
        // (Said once the node listens, if it is starting.)
        self.say(
            true,
            room,
            format!(
                "events removed from the room's stream before this node read them: seqs {} to {}",
                *next,
                to - 1
            ),
        );
        self.await_publishing(room).await;
        let own = self.own_room(room);
        // Whether any was another node's (one of this node's own is
        // applied from its copy): who entered or left there is unknown.
        let mut unknown = false;
        while *next < to {
            let seq = *next;
            // This node's own, stored: applied from its copy (what the
            // log held there), as it would have been read.
            let copy = OwnStored::follower_past(&own, seq, true);
            let item = match copy.and_then(|p| decode_event(room, seq, &p)) {
                Some(event) => FromCluster::Event {
                    event,
                    origin: Arc::clone(&self.origin),
                },
                None => {
                    unknown = true;
                    FromCluster::Skip {
                        room: room.to_string(),
                        seq,
                    }
                }
            };
            if self.to_hub.send(item).await.is_err() {
                return false;
            }
            *next += 1;
        }
        // Who entered or left among the others' is asked of a node that
        // read them.
        !unknown || self.seek_roster(room, epoch, to).await
    }

    /// Tell the hub that `room`'s members as it has them miss the events
    /// before `from` (it answers nobody for the room until it is told who
    /// they are, and a node starting does not listen until then), ask the
    /// other nodes, and hand the hub their answer. `false`: the hub is
    /// gone.
    async fn seek_roster(&self, room: &Arc<str>, epoch: &str, from: u64) -> bool {
        self.roster_lost(room).await && self.ask_for_hub(room, epoch, from).await
    }

    /// The first half of [`Cluster::seek_roster`].
    async fn roster_lost(&self, room: &Arc<str>) -> bool {
        let lost = FromCluster::RosterLost(room.to_string());
        self.to_hub.send(lost).await.is_ok()
    }

    /// The second half of [`Cluster::seek_roster`]: the answer, or none.
    async fn ask_for_hub(&self, room: &Arc<str>, epoch: &str, from: u64) -> bool {
        let seats = self.ask_roster(room, epoch, from).await;
        let room = room.to_string();
        self.to_hub
            .send(FromCluster::Roster { room, seats })
            .await
            .is_ok()
    }

    /// One reading of a stream from `next`; `Ok` only when the hub is gone
    /// or the stream was made anew (see [`Cluster::lose_room`]).
    async fn follow_once(
        &self,
        room: &Arc<str>,
        name: &str,
        next: &mut u64,
        epoch: &mut String,
    ) -> Result<(), String> {
        // This node's own proposals stored in the room, read past here.
        let own = self.own_room(room);
        let mut stream = self.js.get_stream(name).await.map_err(|e| e.to_string())?;
        let info = stream.info().await.map_err(|e| e.to_string())?;
        let d: Description = info
            .config
            .description
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .ok_or("the stream has no room description")?;
        // The stream was deleted and made again (by hand: nothing here
        // deletes one) while this node followed the old one: its seqs
        // begin again under another epoch, which must not be applied as
        // if they went on from the old ones. The room stays as it was
        // here until the node is restarted.
        if *next != 0 && d.epoch != *epoch {
            self.lose_room(
                room,
                &format!("was made anew (epoch {} after {epoch})", d.epoch),
            );
            // Stopped, as if the hub were gone: the room is not read again.
            return Ok(());
        }
        if *next == 0 {
            epoch.clone_from(&d.epoch);
            let state = &info.state;
            let first = if state.messages == 0 {
                state.last_sequence + 1
            } else {
                state.first_sequence
            };
            *next = first;
            // The stream's limits dropped its start: who entered before it
            // and is still there is asked of a node that read it (said
            // before the room opens, so that the hub does not take the
            // room as caught up with before it has the answer).
            let ask = first > 1;
            if ask && !self.roster_lost(room).await {
                return Ok(());
            }
            let open = FromCluster::Open {
                room: room.to_string(),
                epoch: d.epoch,
                first_seq: first,
                last_seq: state.last_sequence,
            };
            if self.to_hub.send(open).await.is_err() {
                return Ok(());
            }
            if ask && !self.ask_for_hub(room, epoch, first).await {
                return Ok(());
            }
        }
        let config = consumer::push::OrderedConfig {
            deliver_subject: self.client.new_inbox(),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: *next,
            },
            ..Default::default()
        };
        let consumer = stream
            .create_consumer(config)
            .await
            .map_err(|e| e.to_string())?;
        let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
        // The origin of the last event, shared by the events after it from
        // the same node (most of them, in a busy room).
        let mut origin: Arc<str> = Arc::from("");
        // The silence's checks: every `tick` (a little past FOLLOW_STALL,
        // apart for each room so that rooms started together do not ask
        // NATS together), and the stream itself asked once the silence
        // (or the time since the last look) reaches `look_after`, which
        // doubles while the room stays quiet.
        let tick =
            FOLLOW_STALL + Duration::from_millis(RandomState::new().hash_one(&**room) % 1000);
        let mut look_after = FOLLOW_STALL;
        let mut silent_since = Instant::now();
        // An event came since the last tick (noted without a clock read
        // per event: a tick fires `tick` after the last one).
        let mut heard = false;
        loop {
            let msg = match tokio::time::timeout(tick, messages.next()).await {
                Ok(Some(msg)) => {
                    heard = true;
                    msg
                }
                Ok(None) => break,
                // Nothing for a while, though the stream holds an event past
                // what this node read: the consumer is stuck (async-nats
                // remaking it after a NATS server was lost may never finish,
                // and this node's connection may not even have dropped):
                // read again, with a new one, from the next event.
                Err(_) => {
                    if heard {
                        heard = false;
                        look_after = FOLLOW_STALL;
                        let now = Instant::now();
                        silent_since = now.checked_sub(tick).unwrap_or(now);
                    }
                    let ask = silent_since.elapsed() >= look_after;
                    match self
                        .check_silence(room, &mut stream, epoch, next, ask)
                        .await
                    {
                        Err(stored) => {
                            return Err(format!(
                                "no event past seq {} for {:?}, though the stream holds \
                                 seq {stored}",
                                *next - 1,
                                silent_since.elapsed()
                            ));
                        }
                        Ok(false) => return Ok(()),
                        Ok(true) => {}
                    }
                    if ask {
                        look_after = (look_after * 2).min(FOLLOW_LOOK_MAX);
                        silent_since = Instant::now();
                    }
                    continue;
                }
            };
            let msg = msg.map_err(|e| e.to_string())?;
            let seq = match msg.reply.as_deref().and_then(stream_seq) {
                Some(seq) => seq,
                None => msg.info().map_err(|e| e.to_string())?.stream_sequence,
            };
            // Seqs only go up in a stream: one lower is a stream made
            // anew under the consumer (async-nats follows one of the same
            // name after a reconnect), read again from the top, where its
            // epoch is looked at.
            if seq < *next {
                return Err(format!(
                    "the stream went back to seq {seq} below {next}: made anew?"
                ));
            }
            if seq > *next {
                // Gone for good (retention dropped them while this node
                // lagged, or they were removed from inside the stream:
                // nats-server 2.9 removes a message it stored past an
                // account's limits, after storing it): stepped over, as
                // every node does that reads them now. Otherwise (the
                // consumer lost one) never applied around: read again
                // from the missing one.
                let first = stream
                    .info()
                    .await
                    .map_err(|e| e.to_string())?
                    .state
                    .first_sequence;
                if first < seq && !all_removed(&stream, first.max(*next), seq).await? {
                    return Err(format!("expected seq {next}, got {seq}"));
                }
                if !self.skip_to(room, epoch, next, seq).await {
                    return Ok(());
                }
            }
            // Read: this node's copy of it (if it is its own) is not needed.
            OwnStored::follower_past(&own, seq, false);
            let from = msg.headers.as_ref().and_then(|h| h.get(ORIGIN));
            let from = from.map_or("", |v| v.as_str());
            if *origin != *from {
                origin = Arc::from(from);
            }
            let item = match decode_event(room, seq, &msg.payload) {
                Some(event) => FromCluster::Event {
                    event,
                    origin: Arc::clone(&origin),
                },
                None => {
                    warn!(
                        room = %room,
                        seq, "stepping over a log entry this version cannot read"
                    );
                    FromCluster::Skip {
                        room: room.to_string(),
                        seq,
                    }
                }
            };
            if self.to_hub.send(item).await.is_err() {
                return Ok(());
            }
            *next += 1;
        }
        Err("the stream's consumer ended".into())
    }
}

/// Whether `stream` holds none of the seqs `from..to` (each asked for,
/// up to the first it holds).
async fn all_removed(stream: &stream::Stream, from: u64, to: u64) -> Result<bool, String> {
    for at in from..to {
        match stream.get_raw_message(at).await {
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => {}
            Err(e) => return Err(format!("reading seq {at} of the room's stream: {e}")),
        }
    }
    Ok(true)
}
