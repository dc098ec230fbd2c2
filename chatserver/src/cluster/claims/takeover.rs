//! Taking a session over: asking the node that holds a resumed
//! session's connection to close it and give up its nickname, and
//! answering such asks from the others.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use chatproto::TokenHash;
use futures_util::StreamExt;
use tracing::{debug, warn};

use crate::cluster::{
    hex, ClaimError, Cluster, FromCluster, TakenOver, TAKEOVER_AGAIN_AFTER, TAKEOVER_DELETES,
    TAKEOVER_PREFIX,
};

/// A takeover's answers: the connection closed and its claim deleted;
/// nothing closed (or the claim still held: an older node says this for
/// the next one too); closed, its claim given up once its departures are
/// stored.
const TAKEN_OVER: &[u8] = b"1";
const NOT_TAKEN_OVER: &[u8] = b"0";
const STILL_LEAVING: &[u8] = b"2";

/// What the node asked to close a session's connection answered.
pub(super) enum Takeover {
    /// Closed, its claim deleted: claim now.
    Closed,
    /// Nothing closed (no answer, or the node is gone).
    Nothing,
    /// Closed, but its departures are not stored yet: its claim goes
    /// once they are.
    Leaving,
}

impl Cluster {
    /// Ask the run `origin` to close the connection of the session whose
    /// token hashes to `token` and give up its nickname claim; what it did
    /// (it answers once the claim is deleted, or once it has waited for
    /// the session's departures for a while).
    pub(super) async fn take_over(&self, origin: &str, token: &TokenHash) -> Takeover {
        let subject = format!("{TAKEOVER_PREFIX}{}", hex(origin.as_bytes()));
        let payload = Bytes::copy_from_slice(token);
        match self.client.request(subject, payload).await {
            Ok(reply) => match reply.payload.as_ref() {
                TAKEN_OVER => Takeover::Closed,
                STILL_LEAVING => Takeover::Leaving,
                _ => Takeover::Nothing,
            },
            // Nobody listens for that run: it is gone (killed, say), and
            // the others free its nicknames once they take it for dead,
            // which their logs say; the client is told to try again.
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                debug!(origin, "a session's takeover: its node is gone");
                Takeover::Nothing
            }
            Err(e) => {
                warn!(error = %e, origin, "a node did not answer a session's takeover");
                Takeover::Nothing
            }
        }
    }

    /// Claim `nick` for a session whose connection the run `origin` closed
    /// for this join, and which is still leaving its rooms there: that run
    /// gives the claim up once the departures are stored (claimed before,
    /// this node's enterings could be stored before them, and a departure
    /// stored after an entering takes the session out of the room it has
    /// just entered). Claimed again every [`TAKEOVER_AGAIN_AFTER`] while
    /// `origin` holds it, until `until` at most: then the join is told to
    /// try again ([`ClaimError::Leaving`]).
    pub(super) async fn claim_once_left(
        &self,
        nick: &str,
        key: &str,
        skeleton: &str,
        origin: &str,
        until: tokio::time::Instant,
    ) -> Result<(String, u64), ClaimError> {
        loop {
            if tokio::time::Instant::now() + TAKEOVER_AGAIN_AFTER >= until {
                return Err(ClaimError::Leaving);
            }
            tokio::time::sleep(TAKEOVER_AGAIN_AFTER).await;
            let claim = self.claim_nick(nick, key, skeleton).await;
            match &claim {
                Err(ClaimError::Taken {
                    same: true,
                    origin: Some(holder),
                    ..
                }) if holder == origin => {}
                _ => return claim,
            }
        }
    }

    /// Answer other runs (and this one) asking to close the connection of
    /// a session they resume: the hub closes it, and the claim it held is
    /// deleted before the answer, so that the asker can claim at once.
    pub(in crate::cluster) async fn answer_takeovers(
        self: Arc<Self>,
        mut asked: async_nats::Subscriber,
    ) {
        while let Some(msg) = asked.next().await {
            if self.to_hub.is_closed() {
                return;
            }
            // Each on its own: one waits until the departures of the
            // session it closed are stored (NATS slow, up to 2 s), which
            // must not hold up the others.
            tokio::spawn(Arc::clone(&self).answer_takeover(msg));
        }
    }

    /// Answer one node asking to take a session over (see
    /// [`Cluster::answer_takeovers`]).
    async fn answer_takeover(self: Arc<Self>, msg: async_nats::Message) {
        let Some(reply) = msg.reply.clone() else {
            return;
        };
        let mut answer = NOT_TAKEN_OVER;
        if let Ok(token) = <TokenHash>::try_from(msg.payload.as_ref()) {
            let (done, taken) = tokio::sync::oneshot::channel();
            if self
                .to_hub
                .send(FromCluster::TakeOver { token, done })
                .await
                .is_err()
            {
                return;
            }
            match taken.await {
                Ok(TakenOver::Closed(key, revision)) => {
                    // The hub has let the claim go: nobody else deletes it.
                    if self.delete_claim_now(&key, revision).await {
                        answer = TAKEN_OVER;
                    } else {
                        // Still held: the asker gets `nick_taken` (and may
                        // try again); the delete goes on in the background.
                        self.release(key, revision);
                    }
                }
                // The hub gives the claim up once the departures are
                // stored; the asker claims until then.
                Ok(TakenOver::Leaving) => answer = STILL_LEAVING,
                Ok(TakenOver::NotHere) | Err(_) => {}
            }
        }
        let answer = Bytes::from_static(answer);
        if let Err(e) = self.client.publish(reply, answer).await {
            warn!(error = %e, "cannot answer a session's takeover");
        }
    }

    /// Delete the claim `key` at `revision` within a few quick tries (an
    /// asker waits); whether it is gone (or no longer ours).
    async fn delete_claim_now(&self, key: &str, revision: u64) -> bool {
        let mut backoff = Duration::from_millis(50);
        for attempt in 1..=TAKEOVER_DELETES {
            match self.nicks.delete_expect_revision(key, Some(revision)).await {
                Ok(_) => return true,
                // Freed already (this node seemed dead to the others): the
                // asker may claim.
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => return true,
                Err(e) => warn!(error = %e, "cannot give up a nickname claim"),
            }
            if attempt < TAKEOVER_DELETES {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        false
    }
}
