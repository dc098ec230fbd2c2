//! Nicknames and sessions in the key-value buckets: claiming and
//! releasing a nickname, taking a session over from another node, and
//! storing sessions so that any node can resume them.
//!
//! This file holds a join's claim of a nickname; taking a session over
//! from the node that holds it is in `takeover`, giving a claim up in
//! `release`, the sweep that checks this node's claims in `sweep`, and
//! the session records in `sessions`.

use std::sync::Arc;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use chatproto::{ClientId, TokenHash};
use tracing::warn;

use super::{
    hex, ClaimError, ClaimValue, Claimed, Cluster, FromCluster, CLAIM_FREED_TRIES, KEY_BUSY_TRIES,
    KEY_BUSY_WAIT, TAKEOVER_AGAIN_AFTER, TAKEOVER_CLAIMS,
};

mod release;
mod sessions;
mod sweep;
mod takeover;
#[cfg(test)]
mod tests;

use release::give_back_attempt;
use takeover::Takeover;

impl Cluster {
    /// Claim `nick` (normalized; `key` and `skeleton` are its identity and
    /// look-alike forms) for `client`, and find the session `resume`
    /// names if another node began it. With `take_over`, a connection of
    /// that session still open on another node is closed for it (the
    /// token wins); without (a join read with its connection's end), the
    /// nickname it holds is taken. The answer goes to the hub.
    pub fn claim(
        self: &Arc<Self>,
        client: ClientId,
        nick: String,
        key: String,
        skeleton: String,
        resume: Option<TokenHash>,
        take_over: bool,
    ) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let limit = me.settings.claim_timeout;
            // A claim waiting for a closed connection's departures gives
            // up a little before the join's own limit, to say so.
            let until = tokio::time::Instant::now() + limit - limit / 10;
            let mut work = {
                let me = Arc::clone(&me);
                tokio::spawn(async move {
                    let session = match resume {
                        Some(hash) => me.find_session(&hash).await,
                        None => None,
                    };
                    let mut claim = me.claim_nick(&nick, &key, &skeleton).await;
                    // The session's own nickname, held by a connection
                    // still open somewhere: the token wins (PROTOCOL.md
                    // §5.1), so that connection is closed and its claim
                    // given up, and the nickname is claimed again.
                    let own = session
                        .as_ref()
                        .is_some_and(|(_, held_as)| chatproto::nick_key(held_as) == key)
                        && take_over;
                    for _ in 0..TAKEOVER_CLAIMS {
                        let (Some(hash), true) = (resume, own) else {
                            break;
                        };
                        let Err(ClaimError::Taken {
                            same: true,
                            origin: Some(origin),
                            ..
                        }) = &claim
                        else {
                            break;
                        };
                        let origin = origin.clone();
                        match me.take_over(&origin, &hash).await {
                            Takeover::Closed => {
                                claim = me.claim_nick(&nick, &key, &skeleton).await;
                            }
                            // Nothing closed there: its own loss may be
                            // freeing the claim now; one more look, a
                            // moment later.
                            Takeover::Nothing => {
                                tokio::time::sleep(TAKEOVER_AGAIN_AFTER).await;
                                claim = me.claim_nick(&nick, &key, &skeleton).await;
                                break;
                            }
                            Takeover::Leaving => {
                                claim = me
                                    .claim_once_left(&nick, &key, &skeleton, &origin, until)
                                    .await;
                                break;
                            }
                        }
                    }
                    (session, claim)
                })
            };
            let waited = tokio::time::timeout(limit, &mut work).await;
            // Read once: the words below agree with each other.
            let log_cause = me.settings.metrics.log_cause();
            let (session, claim) = match waited {
                Ok(Ok(done)) => done,
                Ok(Err(e)) => (None, Err(ClaimError::Unreachable(e.to_string()))),
                Err(_) => {
                    // Too late for this join (it must not outlast the join
                    // timeout): a claim that lands after all is given back.
                    let late = Arc::clone(&me);
                    tokio::spawn(async move {
                        if let Ok((_, Ok((key, rev)))) = work.await {
                            late.release(key, rev);
                        }
                    });
                    // With the heartbeat failing too, NATS may have
                    // answered, only not as a claim needs (its cause is
                    // added below).
                    let why = match log_cause {
                        Some(_) => format!("no claim within {} ms", limit.as_millis()),
                        None => format!("no answer from NATS within {} ms", limit.as_millis()),
                    };
                    (None, Err(ClaimError::Unreachable(why)))
                }
            };
            // A NATS server reached without JetStream (restarted without
            // `-js`) answers, but not as a claim needs: the cause and
            // what to do, as the log says, not NATS's words alone; so
            // does the heartbeat's cause when it fails too (NATS lost
            // the cluster's buckets, say).
            let claim = claim.map_err(|e| match e {
                ClaimError::Unreachable(why) => {
                    let why = super::jetstream_hint(&me.client, why);
                    ClaimError::Unreachable(match &log_cause {
                        Some(cause) => format!("{why}; {cause}"),
                        None => why,
                    })
                }
                other => other,
            });
            let _ = me
                .to_hub
                .send(FromCluster::Claimed(Claimed {
                    client,
                    claim,
                    session: session.map(|(id, n)| (id, n, resume.unwrap_or_default())),
                }))
                .await;
        });
    }

    /// Claim `nick` in the nicknames bucket: the key's revision, or who
    /// holds it.
    pub(super) async fn claim_nick(
        &self,
        nick: &str,
        key: &str,
        skeleton: &str,
    ) -> Result<(String, u64), ClaimError> {
        let kv_key = format!("n{}", hex(&chatproto::hash_token(skeleton)[..20]));
        // This attempt's own mark: a write of it whose answer was lost is
        // known for its own, not taken for someone else's claim.
        let attempt = super::random_hex(8);
        let value = serde_json::to_vec(&ClaimValue {
            origin: self.origin.to_string(),
            nick: nick.to_owned(),
            key: key.to_owned(),
            attempt: attempt.clone(),
        })
        .map_err(|e| ClaimError::Unreachable(e.to_string()))?;
        let value = Bytes::from(value);
        for _ in 0..CLAIM_FREED_TRIES {
            match self.create_claim(&kv_key, &value).await {
                Ok(rev) => return Ok((kv_key, rev)),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
                Err(e) => {
                    // No answer, or an error: NATS may have stored it all
                    // the same. Nobody holds such a claim (the join is
                    // refused), so it would keep the nickname taken for
                    // as long as this node runs: found and given back.
                    let nicks = self.nicks.clone();
                    tokio::spawn(async move { give_back_attempt(&nicks, &kv_key, &attempt).await });
                    return Err(ClaimError::Unreachable(e.to_string()));
                }
            }
            let found = match self.nicks.entry(kv_key.clone()).await {
                Ok(entry) => {
                    let held = holder(entry.as_ref().map(|e| (&e.operation, &e.value[..])));
                    // This attempt's own write, its answer lost (the
                    // client library then reads the key and says it
                    // exists): claimed. The join may have been answered
                    // already; then the claim is given back.
                    if let (Holder::Held(h), Some(e)) = (&held, &entry) {
                        if h.attempt == attempt {
                            return Ok((kv_key, e.revision));
                        }
                    }
                    held
                }
                Err(e) => {
                    warn!(error = %e, "cannot read who holds a nickname");
                    Holder::Unknown
                }
            };
            let (nick, same, origin) = match found {
                // Given up between the two (its holder left, or a node
                // it was taken over from let it go): claimed again. Told
                // `nick_taken` with nobody holding it, a resuming client
                // would have been refused its own nickname.
                Holder::Free => continue,
                Holder::Held(h) => (h.nick, h.key == key, Some(h.origin)),
                Holder::Unknown => (nick.to_owned(), true, None),
            };
            return Err(ClaimError::Taken { nick, same, origin });
        }
        // Taken and given up again at every look: held for moments only,
        // by someone.
        Err(ClaimError::Taken {
            nick: nick.to_owned(),
            same: true,
            origin: None,
        })
    }

    /// Create the claim `kv_key` (see [`Cluster::claim_nick`]).
    async fn create_claim(&self, kv_key: &str, value: &Bytes) -> Result<u64, kv::CreateError> {
        // Another write to this key is being stored (another claim, or one
        // given up): with replicas, nats-server 2.11 and later refuse this
        // one meanwhile, where 2.9 and 2.10 order the two. A moment later
        // the answer is the usual one.
        let mut created = self.nicks.create(kv_key, value.clone()).await;
        let mut wait = KEY_BUSY_WAIT;
        for _ in 1..KEY_BUSY_TRIES {
            if !created.as_ref().is_err_and(|e| key_busy(e)) {
                break;
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
            created = self.nicks.create(kv_key, value.clone()).await;
        }
        created
    }
}

/// Who holds a nickname's key, as read after a claim of it was refused.
pub(super) enum Holder {
    /// Nobody: the key was given up (deleted or purged) since.
    Free,
    /// The claim this names.
    Held(ClaimValue),
    /// Somebody, but the claim could not be read.
    Unknown,
}

/// [`Holder`] from the key's latest entry (its operation and value), if
/// it has one.
pub(super) fn holder(entry: Option<(&kv::Operation, &[u8])>) -> Holder {
    match entry {
        Some((kv::Operation::Put, value)) => {
            serde_json::from_slice(value).map_or(Holder::Unknown, Holder::Held)
        }
        Some(_) | None => Holder::Free,
    }
}

/// Whether NATS refused a key-value write because another write to the
/// same key was still being stored: nats-server 2.11 and later, on a
/// bucket with replicas, answer so (error 10164, "wrong last sequence"
/// without a sequence) instead of ordering the two. async-nats reports it
/// as an error of no particular kind, the server's answer among its
/// sources.
pub(super) fn key_busy(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(api) = e.downcast_ref::<jetstream::Error>() {
            return api.error_code() == jetstream::ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT;
        }
        next = e.source();
    }
    false
}
