//! Heartbeats: this node's, and the watch on the others' that takes a
//! silent node for dead (its nicknames are released, and the hub says its
//! clients left).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_nats::jetstream::{kv, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::Notify;
use tracing::{info, warn};

use super::{lock, ClaimValue, Cluster, FromCluster, HEARTBEAT_EVERY, NODES};

/// The header NATS marks a key-value delete (or purge) with.
const KV_OPERATION: &str = "KV-Operation";

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
        // The task releasing the nicknames of runs found gone, if any.
        let mut releasing: Option<tokio::task::JoinHandle<()>> = None;
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
            if silent >= dead_after && self.to_hub.send(FromCluster::HeldUp).await.is_err() {
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
            // Each look within a heartbeat period: a request that NATS
            // never answers must not stop this node's own heartbeat.
            for (key, rev) in suspects {
                let look = tokio::time::timeout(HEARTBEAT_EVERY, self.latest_beat(&key));
                match look.await.unwrap_or(Err(())) {
                    Ok(Some((revision, Some(origin)))) if revision != rev => {
                        lock(&heard).insert(key, (revision, origin, Instant::now()));
                        rewatch.notify_one();
                    }
                    Ok(_) => {}
                    Err(()) => unsure = true,
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
            let shrank = first || alive_before.iter().any(|o| !alive.contains(o));
            first = false;
            alive_before = alive.clone();
            if shrank {
                // The nicknames of the runs gone are released first, and
                // only then is the hub told (it says their clients left,
                // after which they may come back anywhere with their
                // nicknames). A task of its own: one request per nickname
                // must not hold up this node's heartbeat, and the hub
                // hears nothing newer until it is done.
                let me = Arc::clone(&self);
                releasing = Some(tokio::spawn(async move {
                    me.release_nicks(&alive).await;
                    let _ = me.to_hub.send(FromCluster::Alive(alive)).await;
                }));
                continue;
            }
            if releasing.as_ref().is_some_and(|task| !task.is_finished()) {
                continue;
            }
            if self.to_hub.send(FromCluster::Alive(alive)).await.is_err() {
                return;
            }
        }
    }

    /// A node's latest heartbeat as the bucket's stream leader holds it:
    /// its revision, and its run (none: the node stopped cleanly). Not a
    /// read of `kv::Store::entry`, which any replica may answer, one that
    /// lags after a NATS server was lost among them (a live node would
    /// look silent). `Err`: no answer.
    async fn latest_beat(&self, key: &str) -> Result<Option<(u64, Option<String>)>, ()> {
        let subject = format!("$KV.{NODES}.{key}");
        match self
            .nodes
            .stream
            .get_last_raw_message_by_subject(&subject)
            .await
        {
            Ok(m) => {
                let put = m.headers.get(KV_OPERATION).is_none();
                let origin = put.then(|| String::from_utf8_lossy(&m.payload).into_owned());
                Ok(Some((m.sequence, origin)))
            }
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(_) => Err(()),
        }
    }

    /// Keep `heard` up to date from a watch on the heartbeat bucket,
    /// watching again whenever the watch ends (NATS restarted, say) or
    /// `rewatch` says it is behind.
    async fn hear_nodes(self: Arc<Self>, heard: Heard, rewatch: Arc<Notify>) {
        loop {
            match self.nodes.watch_all().await {
                Ok(mut watch) => {
                    loop {
                        let entry = tokio::select! {
                            entry = watch.next() => entry,
                            () = rewatch.notified() => {
                                warn!("the watch on the nodes' heartbeats is behind; watching anew");
                                break;
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
                            if h.0 != entry.revision {
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

    /// Release the nicknames held by runs not in `alive`.
    async fn release_nicks(&self, alive: &HashSet<Arc<str>>) {
        let Ok(keys) = self.nicks.keys().await else {
            return;
        };
        let keys: Vec<String> = keys.filter_map(|k| async { k.ok() }).collect().await;
        for key in keys {
            let Ok(Some(entry)) = self.nicks.entry(key.clone()).await else {
                continue;
            };
            if entry.operation != kv::Operation::Put {
                continue;
            }
            let Ok(v) = serde_json::from_slice::<ClaimValue>(&entry.value) else {
                continue;
            };
            if !alive.contains(v.origin.as_str()) {
                info!(
                    nick = v.nick,
                    node = v.origin,
                    "releasing a nickname of a node that stopped"
                );
                let _ = self
                    .nicks
                    .delete_expect_revision(&key, Some(entry.revision))
                    .await;
            }
        }
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
