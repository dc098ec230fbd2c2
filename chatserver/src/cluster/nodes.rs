//! Heartbeats: this node's, and the watch on the others' that takes a
//! silent node for dead (its nicknames are released, and the hub says its
//! clients left).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::Notify;
use tracing::{debug, error, info, warn};

use super::{leader_entry, lock, ClaimValue, Cluster, FromCluster, HEARTBEAT_EVERY, TWIN_WATCH};

/// The longest wait for one request of a release of stopped runs'
/// nicknames (the release is begun again after one goes unanswered).
const REQUEST_WITHIN: Duration = Duration::from_secs(5);
/// Nicknames a release looks at, at once.
const RELEASE_AT_ONCE: usize = 16;
/// While this node's heartbeat keeps failing (NATS away), how often at
/// most the log says so again: once a second would bury everything else.
const FAILING_LOGGED_EVERY: Duration = Duration::from_secs(60);

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

    /// A run that holds a nickname but was never heard: whether it is
    /// gone for good (its node's heartbeat is another run's, or deleted,
    /// or absent). If its node's heartbeat is still its own, it may be
    /// alive: it is taken as heard now, and judged like any other from
    /// here (silent for `dead_after`, it is dead). `Err`: no answer.
    async fn never_heard(&self, origin: &str, heard: &Heard) -> Result<bool, ()> {
        let Some((node, _)) = origin.rsplit_once('/') else {
            return Ok(true);
        };
        let look = tokio::time::timeout(REQUEST_WITHIN, self.latest_beat(node)).await;
        match look.map_err(|_| ())?? {
            Some((revision, Some(run))) if run == origin => {
                let mut heard = lock(heard);
                let h = heard
                    .entry(node.to_owned())
                    .or_insert_with(|| Beat::new(revision, run.clone()));
                if h.rev < revision {
                    *h = Beat::new(revision, run);
                }
                // Found dead already at this very heartbeat.
                Ok(h.rev == revision && h.dead)
            }
            _ => Ok(true),
        }
    }

    /// Keep `heard` up to date from a watch on the heartbeat bucket,
    /// watching again whenever the watch ends (NATS restarted, say) or
    /// `rewatch` says it is behind. Each watch begins with every node's
    /// latest heartbeat: one the watch never got to (it broke when a NATS
    /// server was lost) must not look like a node that does not exist.
    async fn hear_nodes(self: Arc<Self>, heard: Heard, rewatch: Arc<Notify>) {
        // Other runs found heartbeating under this node's name after this
        // run did (said once each).
        let mut twins = HashSet::new();
        'watch: loop {
            // This run's own heartbeat seen in this watch: after it, a
            // heartbeat of another run under this name is a live one.
            let mut own_seen = false;
            match self.nodes.watch_with_history(">").await {
                Ok(mut watch) => {
                    loop {
                        let entry = tokio::select! {
                            entry = watch.next() => entry,
                            () = rewatch.notified() => {
                                // What it heard stays true: no afresh.
                                warn!("the watch on the nodes' heartbeats is behind; watching anew");
                                continue 'watch;
                            }
                        };
                        let Some(Ok(entry)) = entry else { break };
                        let mut heard = lock(&heard);
                        // Only a newer one: a watch behind may still hand
                        // over older ones (and its first are the latest of
                        // each, perhaps looked up already).
                        let newer = heard.get(&entry.key).is_none_or(|h| entry.revision > h.rev);
                        if !newer {
                        } else if entry.operation == kv::Operation::Put {
                            let origin = String::from_utf8_lossy(&entry.value).into_owned();
                            if entry.key == self.settings.node {
                                if origin == *self.origin {
                                    own_seen = true;
                                } else if own_seen && twins.insert(origin.clone()) {
                                    error!(
                                        node = entry.key,
                                        other = origin,
                                        "another chatserver runs with this node's --node name: every node needs a name of its own; \
                                         until one of them stops, the nodes take the clients of one or the other for dead in turn"
                                    );
                                }
                            }
                            // Heard beating here (again, or lately), not
                            // the last word of a run that stopped long ago.
                            let again = heard.get(&entry.key).is_some_and(|h| h.origin == origin);
                            let age = ((crate::wall_ms() / 1000) as i64)
                                .saturating_sub(entry.created.unix_timestamp());
                            let mut beat = Beat::new(entry.revision, origin);
                            beat.live =
                                again || age <= self.settings.dead_after.as_secs() as i64 + 1;
                            heard.insert(entry.key, beat);
                        } else {
                            // A clean stop deleted its heartbeat.
                            heard.remove(&entry.key);
                        }
                    }
                }
                Err(e) => warn!(error = %e, "cannot watch the nodes' heartbeats"),
            }
            if self.to_hub.is_closed() {
                return;
            }
            // Heard afresh from the next watch on.
            heard_afresh(&heard, Instant::now());
            tokio::time::sleep(HEARTBEAT_EVERY).await;
        }
    }

    /// Release the nicknames held by runs neither in `alive` (the runs
    /// alive when the release began) nor heard since, each read from the
    /// bucket's leader (a lagging replica's revision would make the delete
    /// fail), several at a time, each request bounded. `true`: every key
    /// was looked at and every such nickname released (or written again
    /// meanwhile).
    async fn release_nicks(&self, alive: &HashSet<Arc<str>>, heard: &Heard) -> bool {
        let Ok(Ok(mut listing)) = tokio::time::timeout(REQUEST_WITHIN, self.nicks.keys()).await
        else {
            return false;
        };
        let mut keys = Vec::new();
        loop {
            match tokio::time::timeout(REQUEST_WITHIN, listing.next()).await {
                Ok(Some(Ok(key))) => keys.push(key),
                Ok(None) => break,
                Ok(Some(Err(_))) | Err(_) => return false,
            }
        }
        let dead_after = self.settings.dead_after;
        // A run heard lately is alive; one heard, then silent, was judged
        // dead; one never heard (its heartbeats came while this node's
        // watch was broken) is looked up before its nicknames go.
        let heard_as = |origin: &str| {
            let now = Instant::now();
            lock(heard)
                .values()
                .filter(|h| h.origin == origin)
                .map(|h| !h.dead && now.duration_since(h.at) < dead_after)
                .max()
        };
        // What `never_heard` said of each run, once per release.
        let looked: Mutex<HashMap<String, Result<bool, ()>>> = Mutex::default();
        let looked = &looked;
        // How many nicknames of each run this release freed: one line a
        // run, not one a nickname (a node of 10,000 clients).
        let freed: Mutex<HashMap<String, u64>> = Mutex::default();
        let freed_by_run = &freed;
        let released = futures_util::stream::iter(keys)
            .map(|key| async move {
                let freed = freed_by_run;
                let look = tokio::time::timeout(REQUEST_WITHIN, leader_entry(&self.nicks, &key));
                let (revision, value) = match look.await {
                    Ok(Ok(Some((revision, Some(value))))) => (revision, value),
                    Ok(Ok(_)) => return true,
                    Ok(Err(_)) | Err(_) => return false,
                };
                let Ok(v) = serde_json::from_slice::<ClaimValue>(&value) else {
                    return true;
                };
                if alive.contains(v.origin.as_str()) {
                    return true;
                }
                match heard_as(&v.origin) {
                    // Heard lately though not alive when this release
                    // began (back, new, or counted afresh): left to the
                    // next release, which knows better; this one does
                    // not count as done.
                    Some(true) => return false,
                    Some(false) => {}
                    None => {
                        let known = lock(looked).get(&v.origin).copied();
                        let gone = match known {
                            Some(gone) => gone,
                            None => {
                                let gone = self.never_heard(&v.origin, heard).await;
                                lock(looked).insert(v.origin.clone(), gone);
                                gone
                            }
                        };
                        match gone {
                            Ok(true) => {}
                            // Heard now (it heartbeats), or no answer:
                            // looked at again by the next release.
                            Ok(false) | Err(()) => return false,
                        }
                    }
                }
                debug!(
                    nick = v.nick,
                    node = v.origin,
                    "releasing a nickname of a node that stopped"
                );
                let delete = self.nicks.delete_expect_revision(&key, Some(revision));
                match tokio::time::timeout(REQUEST_WITHIN, delete).await {
                    Ok(Ok(())) => {
                        *lock(freed).entry(v.origin).or_insert(0) += 1;
                        true
                    }
                    // Written again meanwhile: someone holds it now.
                    Ok(Err(e)) => e.kind() == kv::DeleteErrorKind::WrongLastRevision,
                    Err(_) => false,
                }
            })
            .buffer_unordered(RELEASE_AT_ONCE)
            .fold(true, |all, one| async move { all && one })
            .await;
        let mut freed: Vec<(String, u64)> = lock(&freed).drain().collect();
        freed.sort_unstable();
        for (node, nicknames) in freed {
            info!(
                node,
                nicknames, "released the nicknames of a node that stopped"
            );
        }
        released
    }
}

/// What the log says of this node's heartbeat: its first failure, each
/// other cause the first time it comes in the run of failures, then at
/// most one line each [`FAILING_LOGGED_EVERY`] while it goes on failing
/// (with how many failures were not logged), and one when a heartbeat
/// goes through again.
#[derive(Debug, Default)]
struct BeatLog {
    /// Failing since the first failure in a row, if failing.
    failing: Option<FailingSince>,
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

/// A run of failed heartbeats.
#[derive(Debug)]
struct FailingSince {
    /// When the first of them failed.
    since: Instant,
    /// When the log last said so.
    logged_at: Instant,
    /// Failures in the run.
    failures: u64,
    /// Failures since the last one logged.
    unlogged: u64,
    /// The causes logged in the run, each once: causes that alternate
    /// (NATS servers of a cluster, one without its store, reached in
    /// turn) are not said at every heartbeat.
    said: Vec<BeatCause>,
}

/// What to log of a failed heartbeat.
#[derive(Debug, PartialEq, Eq)]
enum Failing {
    /// The first of a run.
    First,
    /// The run goes on: `failures` in `for_secs` seconds, `unlogged` of
    /// them since the last line.
    Still {
        failures: u64,
        for_secs: u64,
        unlogged: u64,
    },
}

impl BeatLog {
    /// A heartbeat failed at `now` for `cause`: what to log, if anything.
    /// A cause not said yet in this run of failures is said at once: NATS
    /// back without its store, or without JetStream, after an outage must
    /// not wait for the next reminder, as what to do is no longer to wait.
    fn failed(&mut self, now: Instant, cause: BeatCause) -> Option<Failing> {
        let Some(f) = &mut self.failing else {
            self.failing = Some(FailingSince {
                since: now,
                logged_at: now,
                failures: 1,
                unlogged: 0,
                said: vec![cause],
            });
            return Some(Failing::First);
        };
        f.failures += 1;
        let said = f.said.contains(&cause);
        if said && now.duration_since(f.logged_at) < FAILING_LOGGED_EVERY {
            f.unlogged += 1;
            return None;
        }
        if !said {
            f.said.push(cause);
        }
        let still = Failing::Still {
            failures: f.failures,
            for_secs: now.duration_since(f.since).as_secs(),
            unlogged: f.unlogged,
        };
        f.logged_at = now;
        f.unlogged = 0;
        Some(still)
    }

    /// A heartbeat went through at `now`: after failures, how many and
    /// for how many seconds (to log once).
    fn succeeded(&mut self, now: Instant) -> Option<(u64, u64)> {
        let f = self.failing.take()?;
        Some((f.failures, now.duration_since(f.since).as_secs()))
    }
}

/// Which runs the hub may hear are gone. A run found gone is told only
/// once a release of nicknames that began after it was found gone is
/// done, so that its clients are said to have left only when their
/// nicknames are free; and nothing is told before the first release is
/// done (runs gone before this node started hold nicknames too).
#[derive(Debug)]
struct Releases {
    /// The runs alive at the last judgement.
    alive_before: HashSet<Arc<str>>,
    /// Runs found gone, with the generation of the first release that
    /// can have released their nicknames.
    gone_at: HashMap<Arc<str>, u64>,
    /// The generation of the next release to begin.
    next: u64,
    /// The newest generation done (0: none yet).
    done: u64,
    /// A release is due.
    due: bool,
}

impl Releases {
    fn new() -> Self {
        Releases {
            alive_before: HashSet::new(),
            gone_at: HashMap::new(),
            next: 1,
            done: 0,
            due: true,
        }
    }

    /// A judgement found these runs alive.
    fn judged(&mut self, alive: &HashSet<Arc<str>>) {
        for run in &self.alive_before {
            if !alive.contains(run) {
                self.gone_at.entry(Arc::clone(run)).or_insert(self.next);
                self.due = true;
            }
        }
        // Back after all (its heartbeat was only late).
        self.gone_at.retain(|run, _| !alive.contains(run));
        self.alive_before.clone_from(alive);
    }

    /// A release may begin: its generation, if one is due.
    fn begin(&mut self) -> Option<u64> {
        if !self.due {
            return None;
        }
        self.due = false;
        self.next += 1;
        Some(self.next - 1)
    }

    /// The release of `generation` ended; `all`: it released every
    /// nickname of a run not alive.
    fn ended(&mut self, generation: u64, all: bool) {
        if !all {
            return self.failed();
        }
        self.done = self.done.max(generation);
        let done = self.done;
        self.gone_at.retain(|_, g| *g > done);
    }

    /// A release ended without releasing them all: another is due.
    fn failed(&mut self) {
        self.due = true;
    }

    /// What the hub may hear is alive: the runs alive now and those
    /// found gone whose nicknames no release has freed yet. `None`
    /// before the first release is done.
    fn told(&self, alive: &HashSet<Arc<str>>) -> Option<HashSet<Arc<str>>> {
        if self.done == 0 {
            return None;
        }
        let mut told = alive.clone();
        told.extend(self.gone_at.keys().cloned());
        Some(told)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(names: &[&str]) -> HashSet<Arc<str>> {
        names.iter().map(|n| Arc::from(*n)).collect()
    }

    #[test]
    fn a_failing_heartbeat_is_logged_once_a_minute_and_its_return_once() {
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let mut log = BeatLog::default();
        assert_eq!(log.succeeded(at(0)), None, "nothing failed");
        assert_eq!(log.failed(at(1), BeatCause::Away), Some(Failing::First));
        for s in 2..61 {
            assert_eq!(log.failed(at(s), BeatCause::Away), None, "at {s} s");
        }
        assert_eq!(
            log.failed(at(61), BeatCause::Away),
            Some(Failing::Still {
                failures: 61,
                for_secs: 60,
                unlogged: 59
            })
        );
        assert_eq!(log.failed(at(62), BeatCause::Away), None);
        assert_eq!(log.succeeded(at(63)), Some((62, 62)));
        assert_eq!(log.succeeded(at(64)), None, "said once");
        // A new run of failures begins with its first logged again.
        assert_eq!(log.failed(at(65), BeatCause::Away), Some(Failing::First));
    }

    #[test]
    fn a_heartbeat_failing_for_a_new_cause_is_logged_at_once() {
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let mut log = BeatLog::default();
        assert_eq!(log.failed(at(0), BeatCause::Away), Some(Failing::First));
        assert_eq!(log.failed(at(1), BeatCause::Away), None);
        // NATS back, without its store: said at once.
        assert_eq!(
            log.failed(at(2), BeatCause::StoreLost),
            Some(Failing::Still {
                failures: 3,
                for_secs: 2,
                unlogged: 1
            })
        );
        assert_eq!(
            log.failed(at(3), BeatCause::StoreLost),
            None,
            "the same cause waits"
        );
        // Away again: said already in this run.
        assert_eq!(log.failed(at(4), BeatCause::Away), None);
        // Back without JetStream (started without -js): said at once.
        assert_eq!(
            log.failed(at(5), BeatCause::NoJetStream),
            Some(Failing::Still {
                failures: 6,
                for_secs: 5,
                unlogged: 2
            })
        );
    }

    /// Causes that alternate at every heartbeat (a NATS cluster's servers
    /// reached in turn, one of them without its store) are each said
    /// once, then in the reminder once a minute: each was said at once,
    /// so the log said one line a second.
    #[test]
    fn a_heartbeat_failing_for_alternating_causes_is_logged_once_for_each() {
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let cause = |s: u64| match s % 2 {
            0 => BeatCause::Away,
            _ => BeatCause::StoreLost,
        };
        let mut log = BeatLog::default();
        assert_eq!(log.failed(at(0), cause(0)), Some(Failing::First));
        assert_eq!(
            log.failed(at(1), cause(1)),
            Some(Failing::Still {
                failures: 2,
                for_secs: 1,
                unlogged: 0
            })
        );
        for s in 2..61 {
            assert_eq!(log.failed(at(s), cause(s)), None, "at {s} s");
        }
        assert_eq!(
            log.failed(at(61), cause(61)),
            Some(Failing::Still {
                failures: 62,
                for_secs: 61,
                unlogged: 59
            })
        );
        assert_eq!(log.succeeded(at(62)), Some((62, 62)));
        // A new run says its causes anew.
        assert_eq!(log.failed(at(63), cause(1)), Some(Failing::First));
        assert!(log.failed(at(64), cause(0)).is_some());
    }

    #[test]
    fn nothing_is_told_before_the_first_release_is_done() {
        let mut r = Releases::new();
        r.judged(&runs(&["me", "b"]));
        assert_eq!(r.told(&runs(&["me", "b"])), None);
        let first = r.begin().expect("the first judgement releases");
        assert_eq!(r.begin(), None, "one is due, not two");
        r.ended(first, true);
        assert_eq!(r.told(&runs(&["me", "b"])), Some(runs(&["me", "b"])));
    }

    #[test]
    fn a_run_gone_is_told_only_once_a_release_begun_after_it_is_done() {
        let mut r = Releases::new();
        r.judged(&runs(&["me", "b", "c"]));
        let first = r.begin().unwrap();
        r.ended(first, true);
        // d starts later (after the last release), then dies while no
        // release runs: still told alive until one that left it out ends.
        r.judged(&runs(&["me", "b", "c", "d"]));
        r.judged(&runs(&["me", "b", "c"]));
        assert_eq!(
            r.told(&runs(&["me", "b", "c"])).unwrap(),
            runs(&["me", "b", "c", "d"])
        );
        let second = r.begin().unwrap();
        // b dies while the second release runs: the second does not cover it.
        r.judged(&runs(&["me", "c"]));
        r.ended(second, true);
        assert_eq!(
            r.told(&runs(&["me", "c"])).unwrap(),
            runs(&["me", "c", "b"])
        );
        let third = r.begin().unwrap();
        r.ended(third, true);
        assert_eq!(r.told(&runs(&["me", "c"])).unwrap(), runs(&["me", "c"]));
    }

    #[test]
    fn a_failed_release_is_begun_again_and_covers_nothing() {
        let mut r = Releases::new();
        r.judged(&runs(&["me", "b"]));
        let first = r.begin().unwrap();
        r.ended(first, true);
        r.judged(&runs(&["me"]));
        let second = r.begin().unwrap();
        r.ended(second, false);
        assert_eq!(r.told(&runs(&["me"])).unwrap(), runs(&["me", "b"]));
        let third = r.begin().expect("begun again");
        r.ended(third, true);
        assert_eq!(r.told(&runs(&["me"])).unwrap(), runs(&["me"]));
    }

    #[test]
    fn a_run_back_before_a_release_is_not_told_gone() {
        let mut r = Releases::new();
        r.judged(&runs(&["me", "b"]));
        let first = r.begin().unwrap();
        r.ended(first, true);
        // b is late once, then heard again before any release ends.
        r.judged(&runs(&["me"]));
        r.judged(&runs(&["me", "b"]));
        assert_eq!(r.told(&runs(&["me", "b"])).unwrap(), runs(&["me", "b"]));
        let second = r.begin().expect("its lateness made one due");
        r.ended(second, true);
        assert_eq!(r.told(&runs(&["me", "b"])).unwrap(), runs(&["me", "b"]));
        // Gone for good this time: told once a release begun after it ends.
        r.judged(&runs(&["me"]));
        assert_eq!(r.told(&runs(&["me"])).unwrap(), runs(&["me", "b"]));
        let third = r.begin().unwrap();
        r.ended(third, true);
        assert_eq!(r.told(&runs(&["me"])).unwrap(), runs(&["me"]));
    }
}
