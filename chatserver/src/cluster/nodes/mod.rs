//! Heartbeats: this node's, and the watch on the others' that takes a
//! silent node for dead (its nicknames are released, and the hub says its
//! clients left).
//!
//! This file holds the heartbeat and the judging of the silent; the watch
//! that hears the others' heartbeats is in `hear`, the release of a dead
//! run's nicknames in `release`, and what the log says of a failing
//! heartbeat in `beat_log`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use tokio::sync::Notify;
use tracing::{info, warn};

use super::{leader_entry, lock, Cluster, FromCluster, HEARTBEAT_EVERY, TWIN_WATCH};

mod beat_log;
mod hear;
mod release;

use beat_log::{BeatLog, Failing};
use release::Releases;

/// The longest wait for one request of a release of stopped runs'
/// nicknames (the release is begun again after one goes unanswered).
const REQUEST_WITHIN: Duration = Duration::from_secs(5);

impl Cluster {
    /// Say this run is alive.
    pub(super) async fn beat(&self) -> Result<(), BeatFailed> {
        // Within a heartbeat period: a put sent on a connection to a NATS
        // server that has just gone is never answered, and waiting out
        // the client's request timeout (5 s) would leave this node silent
        // past `dead_after` although it reconnected at once; the next
        // beat goes on the new connection.
        let put = self
            .nodes
            .put(&self.settings.node, Bytes::from(self.origin.to_string()));
        let away = |text: String| BeatFailed {
            text,
            cause: BeatCause::Away,
        };
        match tokio::time::timeout(HEARTBEAT_EVERY, put).await {
            Ok(Ok(_)) => Ok(()),
            // NATS restarted without `-js`: its "no stream found" is no
            // lost store, and says nothing of what to do.
            Ok(Err(e)) if !self.client.server_info().jetstream => Err(BeatFailed {
                text: super::jetstream_hint(
                    &self.client,
                    format!("cannot heartbeat into NATS: {e}"),
                ),
                cause: BeatCause::NoJetStream,
            }),
            Ok(Err(e)) if stream_gone(&e) && self.bucket_gone().await => Err(BeatFailed {
                text: format!(
                    "cannot heartbeat into NATS: it no longer has the cluster's buckets (did \
                     it lose its store?); restart every node of the cluster: {e}"
                ),
                cause: BeatCause::StoreLost,
            }),
            Ok(Err(e)) => Err(away(format!("cannot heartbeat into NATS: {e}"))),
            Err(_) => Err(away(format!(
                "cannot heartbeat into NATS: no answer within {HEARTBEAT_EVERY:?}"
            ))),
        }
    }

    /// Whether JetStream says the heartbeats' bucket does not exist (asked
    /// once a put found no stream: "no responders" says the same while a
    /// NATS server restarts).
    async fn bucket_gone(&self) -> bool {
        let look = self.js.get_stream(&self.nodes.stream_name);
        matches!(
            tokio::time::timeout(HEARTBEAT_EVERY, look).await,
            Ok(Err(e)) if super::follow::stream_not_found(&e)
        )
    }

    /// Heartbeat, and tell the hub which runs heartbeat: a run whose
    /// heartbeat has not changed for `dead_after` is dead, its clients
    /// leave their rooms (the hub proposes it) and its nicknames are
    /// released here. The others' heartbeats are watched (one consumer on
    /// the bucket, not a listing each second).
    pub(super) async fn watch_nodes(self: Arc<Self>) {
        // Each node's latest heartbeat: its revision, its run, and when it
        // was heard (on this node's clock).
        let heard: Heard = Arc::default();
        let rewatch = Arc::new(Notify::new());
        tokio::spawn(Arc::clone(&self).hear_nodes(Arc::clone(&heard), Arc::clone(&rewatch)));
        // Which runs the hub may hear are gone; the task releasing the
        // nicknames of runs found gone, if any (its generation, and
        // whether it released them all); the hub being told, if it is.
        let mut releases = Releases::new();
        let mut releasing: Option<tokio::task::JoinHandle<(u64, bool)>> = None;
        let mut telling: Option<tokio::task::JoinHandle<()>> = None;
        // Nobody is judged before a whole `dead_after` of listening (from
        // the start, or since NATS came back): a node not heard yet is
        // not a dead one.
        let mut judge_from = Instant::now() + self.settings.dead_after;
        let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // When this node's last heartbeat that NATS took began (one was
        // put before this task started).
        let mut last_beat = Instant::now();
        let dead_after = self.settings.dead_after;
        let mut beat_log = BeatLog::default();
        loop {
            let waited_from = Instant::now();
            tick.tick().await;
            // A tick is a heartbeat period away at most. Much later, this
            // node itself was held up (a machine too busy, a process
            // stopped): the heartbeats it would have heard meanwhile may
            // not be read yet, so the others' silence is counted afresh,
            // as after NATS was away, instead of taking them for dead. (A
            // heartbeat heard just before a stall is a period old: past
            // half of what is left of `dead_after`, judging could err.)
            let now = Instant::now();
            let waited = now.duration_since(waited_from);
            if waited >= HEARTBEAT_EVERY + dead_after.saturating_sub(HEARTBEAT_EVERY) / 2 {
                warn!(
                    ms = waited.as_millis() as u64,
                    "this node was held up; the others' heartbeats are judged afresh"
                );
                heard_afresh(&heard, now);
                judge_from = judge_from.max(now + dead_after);
            }
            let silent = now.duration_since(last_beat);
            self.fence.beating(silent, self.warn_at(), dead_after);
            if let Err(e) = self.beat().await {
                self.settings.metrics.log_down(Some(&e.text));
                match beat_log.failed(Instant::now(), e.cause) {
                    Some(Failing::First) => warn!(
                        error = %e,
                        "heartbeat failed; while it fails, said again once a minute at most"
                    ),
                    Some(Failing::Still {
                        failures,
                        for_secs,
                        unlogged,
                    }) => warn!(
                        error = %e,
                        failures,
                        for_secs,
                        unlogged,
                        "heartbeat still failing"
                    ),
                    None => {}
                }
                // NATS is away for everyone: no heartbeat changed meanwhile,
                // and silence from then on is counted afresh.
                let now = Instant::now();
                heard_afresh(&heard, now);
                judge_from = now + dead_after;
                continue;
            }
            last_beat = now;
            self.fence.beat_ok(now);
            self.settings.metrics.log_down(None);
            if let Some((failures, for_secs)) = beat_log.succeeded(Instant::now()) {
                info!(failures, for_secs, "heartbeat into NATS again");
            }
            // Silent long enough to be taken for dead (held up, or NATS
            // away from this node alone): the hub reads its clients'
            // nickname claims back, and closes those that are gone.
            if silent >= dead_after || self.fence.wants_sweep() {
                // Not waited for here: a hub behind must not silence this
                // node's heartbeat.
                let to_hub = self.to_hub.clone();
                tokio::spawn(async move { to_hub.send(FromCluster::HeldUp).await });
            }
            if self.to_hub.is_closed() {
                return;
            }
            let now = Instant::now();
            // Nor while this node reads the rooms' logs before listening.
            if now < judge_from || !self.ready.load(Ordering::Relaxed) {
                continue;
            }
            // A node that seems silent is asked of NATS itself before it
            // is taken for dead: a heartbeat this node has not read yet
            // (its watch behind) keeps it alive, and the watch is made
            // anew (after a NATS server is lost it may never catch up).
            let suspects: Vec<(String, u64)> = lock(&heard)
                .iter()
                .filter(|(_, h)| !h.dead && now.duration_since(h.at) >= dead_after)
                .map(|(key, h)| (key.clone(), h.rev))
                .collect();
            let mut unsure = false;
            // Whether the watch was found behind, on any of them.
            let mut behind = false;
            // Each look within a heartbeat period, and none after one
            // that got no answer: a request that NATS never answers must
            // not stop this node's own heartbeat.
            for (key, rev) in suspects {
                let look = tokio::time::timeout(HEARTBEAT_EVERY, self.latest_beat(&key));
                match look.await.unwrap_or(Err(())) {
                    Ok(Some((revision, Some(origin)))) if revision != rev => {
                        let mut beat = Beat::new(revision, origin);
                        beat.live = true;
                        lock(&heard).insert(key, beat);
                        behind = true;
                    }
                    // Silent at the leader too: dead, and not looked up
                    // again (nor counted afresh) until it beats again.
                    Ok(_) => {
                        if let Some(h) = lock(&heard).get_mut(&key).filter(|h| h.rev == rev) {
                            h.dead = true;
                            let silent_ms = now.duration_since(h.at).as_millis();
                            if h.live {
                                warn!(
                                    node = h.origin,
                                    silent_ms,
                                    "a node stopped sending its heartbeat: taken for dead; its clients leave and their nicknames are freed"
                                );
                            } else {
                                // Its last heartbeat was old when heard:
                                // it stopped before this run began.
                                info!(
                                    node = h.origin,
                                    "a node that stopped before this one started: taken for dead"
                                );
                            }
                        }
                    }
                    Err(()) => {
                        unsure = true;
                        break;
                    }
                }
            }
            // One wake for all of them: a wake for each (as NATS comes
            // back, every node, this one included, may be found ahead of
            // the watch) made the watch anew, and said so, up to that many
            // times within milliseconds (a wake while the watch is being
            // made anew is kept for the next one).
            if behind {
                rewatch.notify_one();
            }
            if unsure {
                continue;
            }
            // Alive as of the judgement above (`now`, not a later clock):
            // a run whose silence reached `dead_after` only since then
            // was not asked of the bucket's leader, nor said dead; left
            // out here, its nicknames were released (and its clients said
            // to have left) unconfirmed, a live node's too with this
            // node's watch behind. It is judged at the next heartbeat.
            let mut alive: HashSet<Arc<str>> = lock(&heard)
                .values()
                .filter(|h| !h.dead && now.duration_since(h.at) < dead_after)
                .map(|h| Arc::from(h.origin.as_str()))
                .collect();
            alive.insert(Arc::clone(&self.origin));
            releases.judged(&alive);
            // The nicknames of the runs gone are released before the hub
            // hears that they are gone (it says their clients left, after
            // which they may come back anywhere with their nicknames). A
            // task of its own, one at a time, begun again until it is
            // done: a request per nickname must not hold up this node's
            // heartbeat.
            if let Some(done) = releasing.take_if(|task| task.is_finished()) {
                match done.now_or_never() {
                    Some(Ok((generation, all))) => releases.ended(generation, all),
                    _ => releases.failed(),
                }
            }
            if releasing.is_none() {
                if let Some(generation) = releases.begin() {
                    let (me, heard) = (Arc::clone(&self), Arc::clone(&heard));
                    let alive = alive.clone();
                    releasing = Some(tokio::spawn(async move {
                        (generation, me.release_nicks(&alive, &heard).await)
                    }));
                }
            }
            // Not waited for, and one at a time: the next heartbeat tells
            // the hub again, newer.
            let Some(told) = releases.told(&alive) else {
                continue;
            };
            if self.to_hub.is_closed() {
                return;
            }
            if telling.as_ref().is_none_or(|t| t.is_finished()) {
                let to_hub = self.to_hub.clone();
                telling = Some(tokio::spawn(async move {
                    let _ = to_hub.send(FromCluster::Alive(told)).await;
                }));
            }
        }
    }

    /// A node's latest heartbeat as the bucket's stream leader holds it
    /// (see [`leader_entry`]): its revision, and its run (none: the node
    /// stopped cleanly). `Err`: no answer.
    async fn latest_beat(&self, key: &str) -> Result<Option<(u64, Option<String>)>, ()> {
        let entry = leader_entry(&self.nodes, key).await.map_err(|_| ())?;
        Ok(entry.map(|(revision, value)| {
            let origin = value.map(|v| String::from_utf8_lossy(&v).into_owned());
            (revision, origin)
        }))
    }

    /// Refuse to start under a `--node` name another run heartbeats under
    /// now (the same service started twice, a copied service file): its
    /// heartbeat taken over, the others would free its clients'
    /// nicknames. A run that stopped cleanly deleted its key; one that
    /// did not (killed) is silent: its key is watched for
    /// [`TWIN_WATCH`], and a heartbeat within it is a live twin. No answer
    /// from NATS is no verdict: the start goes on (and its heartbeat
    /// fails, or the watch of heartbeats says so later).
    pub(super) async fn no_twin(&self) -> Result<(), String> {
        let key = &self.settings.node;
        let Ok(Some((first, Some(_)))) = self.latest_beat(key).await else {
            return Ok(());
        };
        tokio::time::sleep(TWIN_WATCH).await;
        match self.latest_beat(key).await {
            Ok(Some((revision, Some(run)))) if revision != first => Err(format!(
                "another chatserver runs with --node {key} (its run {run}, heartbeating now); \
                 give every node a name of its own"
            )),
            _ => Ok(()),
        }
    }
}

/// Why a heartbeat failed.
#[derive(Debug)]
pub(super) struct BeatFailed {
    /// What the log says.
    pub(super) text: String,
    /// What it comes to, for the log to say a new cause at once.
    cause: BeatCause,
}

/// What a failed heartbeat comes to: each asks something else of the
/// operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BeatCause {
    /// NATS away or not answering: wait, it comes back.
    Away,
    /// NATS answers but has lost the cluster's buckets: restart the nodes.
    StoreLost,
    /// The NATS server reached has no JetStream: start it with `-js`.
    NoJetStream,
}

impl std::fmt::Display for BeatFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Each node's latest heartbeat, by node name.
pub(super) type Heard = Arc<Mutex<HashMap<String, Beat>>>;

/// A node's latest heartbeat as this node heard it.
#[derive(Debug)]
pub(super) struct Beat {
    /// Its revision in the bucket.
    rev: u64,
    /// Its run's origin.
    origin: String,
    /// When this node heard it (or began to count its silence afresh).
    at: Instant,
    /// Found silent, and confirmed by the bucket's leader: that run is
    /// dead (until a newer heartbeat comes).
    dead: bool,
    /// Heard beating while this run watched: its death is news (a
    /// heartbeat already old when first heard is a run that stopped
    /// before this one began, and is taken for dead without a word).
    live: bool,
}

impl Beat {
    fn new(rev: u64, origin: String) -> Beat {
        Beat {
            rev,
            origin,
            at: Instant::now(),
            dead: false,
            live: false,
        }
    }
}

/// Every node not found dead heard `now`: their silence is counted from
/// here (after NATS was away, or this node was held up, what they said
/// meanwhile may not have been read). One found dead stays dead.
pub(super) fn heard_afresh(heard: &Heard, now: Instant) {
    for h in lock(heard).values_mut().filter(|h| !h.dead) {
        h.at = now;
    }
}

/// Whether `e` says the stream behind a bucket is gone (NATS lost its
/// store, or it was deleted): nothing comes back by trying again.
fn stream_gone(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut at = Some(e);
    while let Some(e) = at {
        if let Some(p) = e.downcast_ref::<async_nats::jetstream::context::PublishError>() {
            return p.kind() == async_nats::jetstream::context::PublishErrorKind::StreamNotFound;
        }
        at = e.source();
    }
    false
}
