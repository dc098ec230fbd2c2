//! Session records (id, nick, token hash) in the sessions bucket, where
//! any node can find a session to resume.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chatproto::{SessionId, TokenHash};
use tokio::sync::mpsc;
use tracing::warn;

use crate::cluster::{hex, Cluster, FromCluster, SessionRecord, SessionValue};

impl Cluster {
    pub(super) async fn find_session(&self, hash: &TokenHash) -> Option<(SessionId, String)> {
        let entry = self.sessions.get(hex(hash)).await.ok()??;
        let v: SessionValue = serde_json::from_slice(&entry).ok()?;
        Some((SessionId(v.id), v.nick))
    }

    /// Store session records (id, nick, token hash) where every node can
    /// find them; the hub hears `Persisted(through)` when they are.
    pub fn store_sessions(&self, sessions: Vec<SessionRecord>, through: u64) {
        let _ = self.session_tx.send((sessions, through));
    }

    /// The one writer of session records, in order (so `Persisted`
    /// tickets only grow), trying each until NATS takes it.
    pub(in crate::cluster) async fn write_sessions(
        self: Arc<Self>,
        mut rx: mpsc::UnboundedReceiver<(Vec<SessionRecord>, u64)>,
    ) {
        while let Some((sessions, through)) = rx.recv().await {
            for (id, nick, hash) in sessions {
                let value =
                    serde_json::to_vec(&SessionValue { id: id.0, nick }).unwrap_or_default();
                let mut backoff = Duration::from_millis(50);
                while let Err(e) = self
                    .sessions
                    .put(hex(&hash), Bytes::from(value.clone()))
                    .await
                {
                    warn!(error = %e, "cannot store a session in NATS; trying again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
            if self
                .to_hub
                .send(FromCluster::Persisted(through))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}
