//! Giving a nickname claim up: tried again while NATS cannot be
//! reached, since nothing else gives it back, and all of them at a clean
//! stop.

use std::time::Duration;

use async_nats::jetstream::kv;
use tracing::warn;

use super::{holder, Holder};
use crate::cluster::{Cluster, RELEASE_FOR};

impl Cluster {
    /// Give up a claim (only the claimer's revision is deleted: a newer
    /// owner keeps it). Nothing else deletes it, so a delete that fails
    /// (NATS away, a bucket's leader being elected) is tried again, less
    /// and less often, until it is (for as long as this node runs): else
    /// the nickname would stay taken until it stops.
    pub fn release(&self, key: String, revision: u64) {
        let nicks = self.nicks.clone();
        tokio::spawn(async move { give_up(&nicks, &key, revision).await });
    }

    /// [`Cluster::release`], done when the claim is: with NATS away, not
    /// before it is back (its callers do not hold up a stop on it).
    pub async fn release_now(&self, key: &str, revision: u64) {
        give_up(&self.nicks, key, revision).await;
    }

    /// A clean stop: say this run is gone (the others release its
    /// nicknames at once) and give up the claims of its clients.
    pub async fn leave(&self, claims: Vec<(String, u64)>) {
        for (key, rev) in claims {
            let _ = self.nicks.delete_expect_revision(&key, Some(rev)).await;
        }
        let _ = self.nodes.delete(&self.settings.node).await;
    }
}

/// A claim written by `attempt` whose answer was lost: once the key can
/// be read, given back if it holds that attempt's claim (nothing to do if
/// it holds another's, or none). Looked for during about [`RELEASE_FOR`]
/// only: every join while NATS is away ends so (its claim may have been
/// stored), and looking for ever would keep a task for each of them for
/// as long as NATS stays away. A claim found is given up as any other.
pub(super) async fn give_back_attempt(nicks: &kv::Store, key: &str, attempt: &str) {
    let look = move || async move {
        let entry = nicks.entry(key).await?;
        let ours = entry.as_ref().and_then(|e| {
            let held = holder(Some((&e.operation, &e.value[..])));
            matches!(held, Holder::Held(h) if h.attempt == attempt).then_some(e.revision)
        });
        if let Some(revision) = ours {
            give_up(nicks, key, revision).await;
        }
        Ok::<_, kv::EntryError>(())
    };
    retried(
        key,
        "looking for a nickname claim whose answer was lost",
        Some(RELEASE_FOR),
        look,
    )
    .await;
}

/// Give up the claim `key` at `revision`, tried again while NATS cannot
/// be reached (see [`Cluster::release`] and [`retried`]).
async fn give_up(nicks: &kv::Store, key: &str, revision: u64) {
    let delete = move || async move {
        match nicks.delete_expect_revision(key, Some(revision)).await {
            Ok(_) => Ok(()),
            // Not ours any more (freed while this node seemed
            // dead, perhaps taken since): nothing to give up.
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(()),
            Err(e) => Err(e),
        }
    };
    retried(key, "giving up a nickname claim", None, delete).await;
}

/// Run `attempt` until it is done (`Ok`), backing off from 50 ms to 5 s
/// between tries: for about `within`, past which the last error is
/// logged as having given up `what` on `key`; or, with `None`, for as long
/// as the node runs, the error logged once past about [`RELEASE_FOR`]
/// (still trying). A claim the node held is given up so: nothing else
/// gives it back, and a nickname left claimed stays taken until the node
/// stops. Those are bounded: one per claim the node held, and no claim is
/// held while NATS cannot be reached.
pub(super) async fn retried<
    E: std::fmt::Display,
    F: std::future::Future<Output = Result<(), E>>,
>(
    key: &str,
    what: &str,
    within: Option<Duration>,
    mut attempt: impl FnMut() -> F,
) {
    let mut backoff = Duration::from_millis(50);
    let start = tokio::time::Instant::now();
    let mut warn_at = Some(start + within.unwrap_or(RELEASE_FOR));
    loop {
        match attempt().await {
            Ok(()) => return,
            Err(e) if warn_at.is_some_and(|t| tokio::time::Instant::now() >= t) => {
                if within.is_some() {
                    warn!(error = %e, key, "gave up {what}");
                    return;
                }
                warn!(error = %e, key, "still {what}; trying again every 5 s");
                warn_at = None;
            }
            Err(_) => {}
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
