//! Nicknames and sessions in the key-value buckets: claiming and
//! releasing a nickname, taking a session over from another node, and
//! storing sessions so that any node can resume them.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use chatproto::{ClientId, SessionId, TokenHash};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::{
    hex, leader_entry, ClaimError, ClaimValue, Claimed, Cluster, FromCluster, SessionRecord,
    SessionValue, TakenOver, CLAIM_FREED_TRIES, HEARTBEAT_EVERY, KEY_BUSY_TRIES, KEY_BUSY_WAIT,
    RELEASE_FOR, TAKEOVER_AGAIN_AFTER, TAKEOVER_CLAIMS, TAKEOVER_DELETES, TAKEOVER_PREFIX,
};

/// A takeover's answers: the connection closed and its claim deleted;
/// nothing closed (or the claim still held: an older node says this for
/// the next one too); closed, its claim given up once its departures are
/// stored.
const TAKEN_OVER: &[u8] = b"1";
const NOT_TAKEN_OVER: &[u8] = b"0";
const STILL_LEAVING: &[u8] = b"2";

/// What the node asked to close a session's connection answered.
enum Takeover {
    /// Closed, its claim deleted: claim now.
    Closed,
    /// Nothing closed (no answer, or the node is gone).
    Nothing,
    /// Closed, but its departures are not stored yet: its claim goes
    /// once they are.
    Leaving,
}

/// Nickname claims read back at once in a sweep.
const CLAIMS_AT_ONCE: usize = 64;

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

    /// Ask the run `origin` to close the connection of the session whose
    /// token hashes to `token` and give up its nickname claim; what it did
    /// (it answers once the claim is deleted, or once it has waited for
    /// the session's departures for a while).
    async fn take_over(&self, origin: &str, token: &TokenHash) -> Takeover {
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
    async fn claim_once_left(
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
    pub(super) async fn answer_takeovers(self: Arc<Self>, mut asked: async_nats::Subscriber) {
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

    /// Claim `nick` in the nicknames bucket: the key's revision, or who
    /// holds it.
    async fn claim_nick(
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

    async fn find_session(&self, hash: &TokenHash) -> Option<(SessionId, String)> {
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
    pub(super) async fn write_sessions(
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

    /// A clean stop: say this run is gone (the others release its
    /// nicknames at once) and give up the claims of its clients.
    pub async fn leave(&self, claims: Vec<(String, u64)>) {
        for (key, rev) in claims {
            let _ = self.nicks.delete_expect_revision(&key, Some(rev)).await;
        }
        let _ = self.nodes.delete(&self.settings.node).await;
    }
}

/// Who holds a nickname's key, as read after a claim of it was refused.
enum Holder {
    /// Nobody: the key was given up (deleted or purged) since.
    Free,
    /// The claim this names.
    Held(ClaimValue),
    /// Somebody, but the claim could not be read.
    Unknown,
}

/// [`Holder`] from the key's latest entry (its operation and value), if
/// it has one.
fn holder(entry: Option<(&kv::Operation, &[u8])>) -> Holder {
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

/// A claim written by `attempt` whose answer was lost: once the key can
/// be read, given back if it holds that attempt's claim (nothing to do if
/// it holds another's, or none). Looked for during about [`RELEASE_FOR`]
/// only: every join while NATS is away ends so (its claim may have been
/// stored), and looking for ever would keep a task for each of them for
/// as long as NATS stays away. A claim found is given up as any other.
async fn give_back_attempt(nicks: &kv::Store, key: &str, attempt: &str) {
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
async fn retried<E: std::fmt::Display, F: std::future::Future<Output = Result<(), E>>>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use async_nats::jetstream::context::{PublishError, PublishErrorKind};

    /// A claim NATS would not delete for longer than [`RELEASE_FOR`] (an
    /// outage of ten minutes) is given back once it can be: the node
    /// gave up after five minutes, and the nickname stayed taken for as
    /// long as it ran.
    #[tokio::test(start_paused = true)]
    async fn a_claim_is_given_back_after_an_outage_longer_than_release_for() {
        let back = tokio::time::Instant::now() + Duration::from_secs(600);
        let tries = std::cell::Cell::new(0u32);
        retried("alice", "giving up a nickname claim", None, || async {
            tries.set(tries.get() + 1);
            if tokio::time::Instant::now() < back {
                Err("no responders")
            } else {
                Ok(())
            }
        })
        .await;
        let now = tokio::time::Instant::now();
        assert!(now >= back, "done while NATS was still away");
        assert!(
            now < back + Duration::from_secs(6),
            "tried every 5 s at most"
        );
        // 50 ms doubling to 5 s, then every 5 s: bounded, not a busy loop.
        assert!((100..140).contains(&tries.get()), "{} tries", tries.get());
    }

    /// The look for a claim whose answer was lost ends after about
    /// [`RELEASE_FOR`] while NATS stays away: every join then ends so, and
    /// a look each, for ever, would grow with the joins tried.
    #[tokio::test(start_paused = true)]
    async fn a_look_for_a_lost_claim_ends_while_nats_stays_away() {
        let start = tokio::time::Instant::now();
        retried(
            "alice",
            "looking for a nickname claim whose answer was lost",
            Some(RELEASE_FOR),
            || async { Err::<(), _>("no responders") },
        )
        .await;
        let took = start.elapsed();
        assert!(
            took >= RELEASE_FOR && took < RELEASE_FOR + Duration::from_secs(6),
            "{took:?}"
        );
    }

    /// A claim's `create` refused by the server with `err_code`, as
    /// async-nats reports it (the server's answer under a publish error,
    /// under an update error).
    fn refused_create(kind: PublishErrorKind, err_code: u64) -> kv::CreateError {
        let answer =
            format!(r#"{{"code":400,"err_code":{err_code},"description":"wrong last sequence"}}"#);
        let api: jetstream::Error = serde_json::from_str(&answer).unwrap();
        let publish = PublishError::with_source(kind, api);
        kv::CreateError::from(kv::UpdateError::from(publish))
    }

    /// A claim refused, then found given up when its holder is read: the
    /// nickname is free (claimed again), not held by an unknown someone
    /// (a delete marker's empty value read as a holder that could not be
    /// parsed, and the join was told `nick_taken`).
    #[test]
    fn a_claim_given_up_before_its_holder_is_read_is_free() {
        let claim = ClaimValue {
            origin: "run-1".into(),
            nick: "Alice".into(),
            key: "alice".into(),
            attempt: String::new(),
        };
        let value = serde_json::to_vec(&claim).unwrap();
        let put = kv::Operation::Put;
        assert!(matches!(
            holder(Some((&put, &value))),
            Holder::Held(h) if h.nick == "Alice" && h.origin == "run-1"
        ));
        for gone in [kv::Operation::Delete, kv::Operation::Purge] {
            assert!(matches!(holder(Some((&gone, b""))), Holder::Free));
        }
        assert!(matches!(holder(None), Holder::Free));
        assert!(matches!(holder(Some((&put, b"{}"))), Holder::Unknown));
    }

    #[test]
    fn a_key_written_meanwhile_is_told_from_other_refusals() {
        // 10164: another write to the key is being stored (2.11+).
        let busy = refused_create(PublishErrorKind::Other, 10164);
        assert_eq!(busy.kind(), kv::CreateErrorKind::Other);
        assert!(key_busy(&busy));
        // 10071: the key holds another revision (a claim exists).
        let taken = refused_create(PublishErrorKind::WrongLastSequence, 10071);
        assert_eq!(taken.kind(), kv::CreateErrorKind::AlreadyExists);
        assert!(!key_busy(&taken));
        // No answer from the server at all.
        let timed_out = kv::CreateError::new(kv::CreateErrorKind::Publish);
        assert!(!key_busy(&timed_out));
    }
}
