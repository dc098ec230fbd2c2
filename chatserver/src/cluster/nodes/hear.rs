//! Hearing the others: a watch on the heartbeat bucket keeps each node's
//! latest heartbeat, and when it came, for the judging to read.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use async_nats::jetstream::kv;
use futures_util::StreamExt;
use tokio::sync::Notify;
use tracing::{error, warn};

use super::{heard_afresh, Beat, Heard};
use crate::cluster::{lock, Cluster, HEARTBEAT_EVERY};

impl Cluster {
    /// Keep `heard` up to date from a watch on the heartbeat bucket,
    /// watching again whenever the watch ends (NATS restarted, say) or
    /// `rewatch` says it is behind. Each watch begins with every node's
    /// latest heartbeat: one the watch never got to (it broke when a NATS
    /// server was lost) must not look like a node that does not exist.
    pub(super) async fn hear_nodes(self: Arc<Self>, heard: Heard, rewatch: Arc<Notify>) {
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
}
