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
use tokio::sync::{mpsc, Notify};
use tracing::{info, warn};

use super::{leader_entry, lock, ClaimValue, Cluster, FromCluster, HEARTBEAT_EVERY};

/// The longest a release of stopped runs' nicknames may take before it
/// is begun again.
const RELEASE_WITHIN: Duration = Duration::from_secs(30);

impl Cluster {
    /// Say this run is alive.
    pub(super) async fn beat(&self) -> Result<(), String> {
        // Within a heartbeat period: a put sent on a connection to a NATS
        // server that has just gone is never answered, and waiting out
        // the client's request timeout (5 s) would leave this node silent
        // past `dead_after` although it reconnected at once; the next
        // beat goes on the new connection.
        let put = self
            .nodes
            .put(&self.settings.node, Bytes::from(self.origin.to_string()));
        match tokio::time::timeout(HEARTBEAT_EVERY, put).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("cannot heartbeat into NATS: {e}")),
            Err(_) => Err(format!(
                "cannot heartbeat into NATS: no answer within {HEARTBEAT_EVERY:?}"
            )),
        }
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
        let mut alive_before: HashSet<Arc<str>> = HashSet::new();
        let mut first = true;
        // The task releasing the nicknames of runs found gone, if any (it
        // returns the runs it took for alive, if it released all others);
        // the set of the last one done; and whether another is due.
        let mut releasing: Option<tokio::task::JoinHandle<Option<HashSet<Arc<str>>>>> = None;
        let mut released: Option<HashSet<Arc<str>>> = None;
        let mut release_due = false;
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
            if let Err(e) = self.beat().await {
                warn!(error = %e, "heartbeat failed");
                // NATS is away for everyone: no heartbeat changed meanwhile,
                // and silence from then on is counted afresh.
                let now = Instant::now();
                heard_afresh(&heard, now);
                judge_from = now + dead_after;
                continue;
            }
            last_beat = now;
            // Silent long enough to be taken for dead (held up, or NATS
            // away from this node alone): the hub reads its clients'
            // nickname claims back, and closes those that are gone.
            if silent >= dead_after {
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
                .filter(|(_, (_, _, at))| now.duration_since(*at) >= dead_after)
                .map(|(key, (rev, _, _))| (key.clone(), *rev))
                .collect();
            let mut unsure = false;
            // Each look within a heartbeat period, and none after one
            // that got no answer: a request that NATS never answers must
            // not stop this node's own heartbeat.
            for (key, rev) in suspects {
                let look = tokio::time::timeout(HEARTBEAT_EVERY, self.latest_beat(&key));
                match look.await.unwrap_or(Err(())) {
                    Ok(Some((revision, Some(origin)))) if revision != rev => {
                        lock(&heard).insert(key, (revision, origin, Instant::now()));
                        rewatch.notify_one();
                    }
                    Ok(_) => {}
                    Err(()) => {
                        unsure = true;
                        break;
                    }
                }
            }
            if unsure {
                continue;
            }
            let now = Instant::now();
            let mut alive: HashSet<Arc<str>> = lock(&heard)
                .values()
                .filter(|(_, _, at)| now.duration_since(*at) < dead_after)
                .map(|(_, origin, _)| Arc::from(origin.as_str()))
                .collect();
            alive.insert(Arc::clone(&self.origin));
            if first || alive_before.iter().any(|o| !alive.contains(o)) {
                release_due = true;
            }
            first = false;
            alive_before = alive.clone();
            // The nicknames of the runs gone are released before the hub
            // hears that they are gone (it says their clients left, after
            // which they may come back anywhere with their nicknames). A
            // task of its own, one at a time, bounded, tried again until
            // it is done: a request per nickname must not hold up this
            // node's heartbeat.
            if let Some(done) = releasing.take_if(|task| task.is_finished()) {
                match done.now_or_never() {
                    Some(Ok(Some(set))) => released = Some(set),
                    _ => release_due = true,
                }
            }
            if release_due && releasing.is_none() {
                release_due = false;
                let (me, set) = (Arc::clone(&self), alive.clone());
                releasing = Some(tokio::spawn(async move {
                    let done = tokio::time::timeout(RELEASE_WITHIN, me.release_nicks(&set)).await;
                    matches!(done, Ok(true)).then_some(set)
                }));
            }
            // The hub hears of a run gone only once a release that left it
            // out is done: alive now, or alive when the last release
            // began. Not waited for: the next heartbeat tells it again.
            let Some(released) = &released else { continue };
            let told: HashSet<Arc<str>> = alive.union(released).cloned().collect();
            if let Err(mpsc::error::TrySendError::Closed(_)) =
                self.to_hub.try_send(FromCluster::Alive(told))
            {
                return;
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

    /// Keep `heard` up to date from a watch on the heartbeat bucket,
    /// watching again whenever the watch ends (NATS restarted, say) or
    /// `rewatch` says it is behind.
    async fn hear_nodes(self: Arc<Self>, heard: Heard, rewatch: Arc<Notify>) {
        'watch: loop {
            match self.nodes.watch_all().await {
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
                        if entry.operation == kv::Operation::Put {
                            let origin = String::from_utf8_lossy(&entry.value).into_owned();
                            let now = Instant::now();
                            let h = heard.entry(entry.key).or_insert((
                                entry.revision,
                                origin.clone(),
                                now,
                            ));
                            // Only a newer one: a watch behind may still
                            // hand over older ones.
                            if entry.revision > h.0 {
                                *h = (entry.revision, origin, now);
                            }
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

    /// Release the nicknames held by runs not in `alive`, each read from
    /// the bucket's leader (a lagging replica's revision would make the
    /// delete fail). `true`: every key was looked at and every such
    /// nickname released (or changed meanwhile).
    async fn release_nicks(&self, alive: &HashSet<Arc<str>>) -> bool {
        let Ok(keys) = self.nicks.keys().await else {
            return false;
        };
        let keys: Vec<String> = keys.filter_map(|k| async { k.ok() }).collect().await;
        let mut all = true;
        for key in keys {
            let (revision, value) = match leader_entry(&self.nicks, &key).await {
                Ok(Some((revision, Some(value)))) => (revision, value),
                Ok(_) => continue,
                Err(_) => {
                    all = false;
                    continue;
                }
            };
            let Ok(v) = serde_json::from_slice::<ClaimValue>(&value) else {
                continue;
            };
            if alive.contains(v.origin.as_str()) {
                continue;
            }
            info!(
                nick = v.nick,
                node = v.origin,
                "releasing a nickname of a node that stopped"
            );
            match self
                .nicks
                .delete_expect_revision(&key, Some(revision))
                .await
            {
                Ok(()) => {}
                // Written again meanwhile: someone holds it now.
                Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision => {}
                Err(_) => all = false,
            }
        }
        all
    }
}

/// Each node's latest heartbeat, by node name: its revision, its run's
/// origin, and when this node heard it.
pub(super) type Heard = Arc<Mutex<HashMap<String, (u64, String, Instant)>>>;

/// Every node heard `now`: their silence is counted from here (after
/// NATS was away, or this node was held up, what they said meanwhile
/// may not have been read).
pub(super) fn heard_afresh(heard: &Heard, now: Instant) {
    for h in lock(heard).values_mut() {
        h.2 = now;
    }
}
