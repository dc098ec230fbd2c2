//! The sweep of this node's nickname claims: which of them are no longer
//! held as claimed (freed by another node while this one seemed dead).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use chatproto::ClientId;
use futures_util::StreamExt;
use tracing::warn;

use crate::cluster::{leader_entry, Cluster, FromCluster, HEARTBEAT_EVERY};

/// Nickname claims read back at once in a sweep.
const CLAIMS_AT_ONCE: usize = 64;

impl Cluster {
    /// Which of `claims` (each a client's nickname key and the revision
    /// it claimed) are no longer held as claimed: freed by another node
    /// while this one seemed dead, and perhaps taken since. The answer
    /// goes to the hub; a claim NATS could not tell about counts as held.
    ///
    /// Read now, and once more after the others' next judging: a node
    /// that judged this one just before hearing it again frees the claims
    /// a moment later.
    pub fn check_claims(self: &Arc<Self>, claims: Vec<(ClientId, String, u64)>) {
        // One sweep at a time: with many clients one takes a while, and
        // what asks for it may ask again meanwhile; one asked for then is
        // asked of the hub again at the end (its claims are newer).
        if self.checking_claims.swap(true, Ordering::AcqRel) {
            self.claims_again.store(true, Ordering::Release);
            return;
        }
        let me = Arc::clone(self);
        let sweep = self.fence.sweep_begins();
        tokio::spawn(async move {
            // Every claim answered, in both rounds (see `fence`).
            let mut complete = true;
            for round in 0..2 {
                if round > 0 {
                    tokio::time::sleep(2 * HEARTBEAT_EVERY).await;
                }
                // Many at once (a node with thousands of clients holds
                // its proposals until the sweep is over), each from the
                // leader: a lagging replica would show a claim made a
                // moment ago as missing.
                let looks = futures_util::stream::iter(claims.iter().cloned().map(
                    |(client, key, revision)| {
                        let nicks = me.nicks.clone();
                        async move {
                            let look = leader_entry(&nicks, &key);
                            (
                                client,
                                revision,
                                tokio::time::timeout(HEARTBEAT_EVERY, look).await,
                            )
                        }
                    },
                ))
                .buffer_unordered(CLAIMS_AT_ONCE)
                .collect::<Vec<_>>()
                .await;
                let mut lost = Vec::new();
                let mut unanswered = 0;
                for (client, revision, look) in looks {
                    match look {
                        Ok(Ok(Some((rev, Some(_))))) if rev == revision => {}
                        Ok(Ok(_)) => lost.push(client),
                        Ok(Err(_)) | Err(_) => unanswered += 1,
                    }
                }
                if unanswered > 0 {
                    complete = false;
                    warn!(
                        unanswered,
                        "cannot check some nickname claims; they count as held"
                    );
                }
                if !lost.is_empty() && me.to_hub.send(FromCluster::ClaimsLost(lost)).await.is_err()
                {
                    break;
                }
            }
            // A sweep asked for meanwhile is asked of the hub again (with
            // its claims as they are now); looked at again after the
            // sweep is marked over, so one asked for in between is not
            // lost (one asked for after it begins its own).
            // After its `ClaimsLost`: the hub has closed those clients by
            // the time it hears this.
            let _ = me
                .to_hub
                .send(FromCluster::ClaimsChecked(sweep, complete))
                .await;
            let mut again = me.claims_again.swap(false, Ordering::AcqRel);
            me.checking_claims.store(false, Ordering::Release);
            again |= me.claims_again.swap(false, Ordering::AcqRel);
            if again {
                let _ = me.to_hub.send(FromCluster::HeldUp).await;
            }
        });
    }
}
