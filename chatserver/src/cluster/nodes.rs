//! Heartbeats: this node's, and the watch on the others' that takes a
//! silent node for dead (its nicknames are released, and the hub says its
//! clients left).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;
use tracing::{info, warn};

use super::{lock, ClaimValue, Cluster, FromCluster, HEARTBEAT_EVERY};

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
        tokio::spawn(Arc::clone(&self).hear_nodes(Arc::clone(&heard)));
        let mut alive_before: HashSet<Arc<str>> = HashSet::new();
        let mut first = true;
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
            // (its watch behind) keeps it alive.
            let suspects: Vec<(String, u64)> = lock(&heard)
                .iter()
                .filter(|(_, (_, _, at))| now.duration_since(*at) >= dead_after)
                .map(|(key, (rev, _, _))| (key.clone(), *rev))
                .collect();
            let mut unsure = false;
            for (key, rev) in suspects {
                match self.nodes.entry(key.clone()).await {
                    Ok(Some(e)) if e.operation == kv::Operation::Put && e.revision != rev => {
                        let origin = String::from_utf8_lossy(&e.value).into_owned();
                        lock(&heard).insert(key, (e.revision, origin, Instant::now()));
                    }
                    Ok(_) => {}
                    Err(_) => unsure = true,
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
                self.release_nicks(&alive).await;
            }
            first = false;
            alive_before = alive.clone();
            if self.to_hub.send(FromCluster::Alive(alive)).await.is_err() {
                return;
            }
        }
    }

    /// Keep `heard` up to date from a watch on the heartbeat bucket,
    /// watching again whenever the watch ends (NATS restarted, say).
    async fn hear_nodes(self: Arc<Self>, heard: Heard) {
        loop {
            match self.nodes.watch_all().await {
                Ok(mut watch) => {
                    while let Some(entry) = watch.next().await {
                        let Ok(entry) = entry else { break };
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
