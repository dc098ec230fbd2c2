//! Holding this node's proposals while the others may take it for dead.
//!
//! A node whose heartbeats stop reaching NATS for `--node-dead-after-ms`
//! (held up: a machine too busy, a process stopped, or NATS away from this
//! node alone) is taken for dead by the others: they free its clients'
//! nicknames and say those clients left their rooms, and someone else may
//! take a freed name. What this node's clients sent meanwhile must not
//! then be stored under that name. So the publisher publishes nothing
//! while the fence is up: from the moment this node's last heartbeat is
//! within half a heartbeat period of that limit (it looks before each
//! message), until one gets through again and, after a silence of the
//! whole limit, until the hub has read its clients' claims back, NATS
//! answering for every one, and closed those another node freed (a sweep
//! begun after the silence; the heartbeat asks for one at every beat
//! until then). What those clients proposed before they were closed is
//! refused to them, not published.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chatproto::SessionId;
use tokio::sync::Notify;

use super::lock;

/// See the module's documentation.
#[derive(Debug)]
pub(super) struct Fence {
    state: Mutex<State>,
    lifted: Notify,
}

#[derive(Debug)]
struct State {
    /// When the last heartbeat NATS took began.
    beat_ok: Instant,
    up: bool,
    /// Up for a silence of the whole limit: lifted only once a sweep of
    /// the claims numbered above this one is over.
    sweep_after: Option<u64>,
    /// Sweeps of the claims begun so far.
    sweeps: u64,
    /// Sessions closed because another node took this one for dead, each
    /// with the number of the first proposal made after: those numbered
    /// below it from that session are refused.
    gone: HashMap<SessionId, usize>,
}

impl Fence {
    pub(super) fn new() -> Fence {
        Fence {
            state: Mutex::new(State {
                beat_ok: Instant::now(),
                up: false,
                sweep_after: None,
                sweeps: 0,
                gone: HashMap::new(),
            }),
            lifted: Notify::new(),
        }
    }

    /// A heartbeat is about to be put, `silent` after the last one NATS
    /// took began: past `warn_at`, the fence goes up (if it is not);
    /// past `dead_after`, it stays up until a sweep begun from now on is
    /// over.
    pub(super) fn beating(&self, silent: Duration, warn_at: Duration, dead_after: Duration) {
        let mut s = lock(&self.state);
        if silent >= warn_at {
            s.up = true;
        }
        if silent >= dead_after && s.sweep_after.is_none() {
            s.sweep_after = Some(s.sweeps);
        }
    }

    /// NATS took the heartbeat begun at `began`: the fence comes down
    /// unless it waits for a sweep.
    pub(super) fn beat_ok(&self, began: Instant) {
        let mut s = lock(&self.state);
        s.beat_ok = s.beat_ok.max(began);
        if s.up && s.sweep_after.is_none() {
            s.up = false;
            self.lifted.notify_waiters();
        }
    }

    /// Whether the fence waits for a sweep of the claims (the heartbeat
    /// asks for one at every beat until one is over: a sweep asked for
    /// while another ran can be lost, and one NATS did not answer in
    /// full lifts nothing).
    pub(super) fn wants_sweep(&self) -> bool {
        lock(&self.state).sweep_after.is_some()
    }

    /// Whether the last heartbeat NATS took began `warn_at` ago or more:
    /// the publisher stops between two messages of a batch then.
    pub(super) fn stale(&self, warn_at: Duration) -> bool {
        lock(&self.state).beat_ok.elapsed() >= warn_at
    }

    /// A sweep of the claims begins: its number, for [`Fence::swept`].
    pub(super) fn sweep_begins(&self) -> u64 {
        let mut s = lock(&self.state);
        s.sweeps += 1;
        s.sweeps
    }

    /// The hub has closed the clients that sweep `n` found freed: the
    /// fence comes down if it waited for a sweep begun before `n`, and the
    /// last heartbeat is fresh (otherwise the next one brings it down).
    pub(super) fn swept(&self, n: u64, warn_at: Duration) {
        let mut s = lock(&self.state);
        if s.sweep_after.is_some_and(|after| n > after) {
            s.sweep_after = None;
            if s.beat_ok.elapsed() < warn_at {
                s.up = false;
                self.lifted.notify_waiters();
            }
        }
    }

    /// `session` was closed because another node took this one for dead:
    /// its proposals numbered below `next` are refused.
    pub(super) fn gone(&self, session: SessionId, next: usize) {
        lock(&self.state).gone.insert(session, next);
    }

    /// Whether the proposal numbered `number`, from `session`, is one of
    /// a session closed for that since. Numbers at or past every cutoff
    /// forget the sessions (proposals come in order).
    pub(super) fn refused(&self, session: Option<SessionId>, number: usize) -> bool {
        let mut s = lock(&self.state);
        if s.gone.is_empty() {
            return false;
        }
        s.gone.retain(|_, next| *next > number);
        session.is_some_and(|sid| s.gone.get(&sid).is_some_and(|next| number < *next))
    }

    /// Whether any session is waiting to have its proposals refused.
    pub(super) fn any_gone(&self) -> bool {
        !lock(&self.state).gone.is_empty()
    }

    /// Wait while the fence is up, putting it up first if the last
    /// heartbeat NATS took began `warn_at` ago or more.
    pub(super) async fn wait(&self, warn_at: Duration) {
        loop {
            let lifted = self.lifted.notified();
            {
                let mut s = lock(&self.state);
                if s.beat_ok.elapsed() >= warn_at {
                    s.up = true;
                }
                if !s.up {
                    return;
                }
            }
            // Woken when it comes down, and looked at again now and then
            // (a heartbeat may come down on it without a wake missed).
            let _ = tokio::time::timeout(Duration::from_millis(100), lifted).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WARN: Duration = Duration::from_millis(2_000);
    const DEAD: Duration = Duration::from_millis(3_000);

    fn is_up(f: &Fence) -> bool {
        lock(&f.state).up
    }

    #[test]
    fn a_short_silence_is_lifted_by_the_next_heartbeat() {
        let f = Fence::new();
        f.beating(Duration::from_millis(1_000), WARN, DEAD);
        assert!(!is_up(&f));
        f.beating(Duration::from_millis(2_500), WARN, DEAD);
        assert!(is_up(&f));
        f.beat_ok(Instant::now());
        assert!(!is_up(&f));
    }

    #[test]
    fn a_silence_of_the_limit_waits_for_a_sweep_begun_after_it() {
        let f = Fence::new();
        let before = f.sweep_begins();
        f.beating(Duration::from_millis(5_000), WARN, DEAD);
        f.beat_ok(Instant::now());
        assert!(is_up(&f), "a heartbeat alone does not lift it");
        assert!(f.wants_sweep(), "the heartbeat asks for sweeps meanwhile");
        f.swept(before, WARN);
        assert!(is_up(&f), "a sweep begun before the silence does not");
        let after = f.sweep_begins();
        f.swept(after, WARN);
        assert!(!is_up(&f));
        assert!(!f.wants_sweep());
        assert!(!f.stale(WARN), "the beat just taken is fresh");
    }

    #[test]
    fn a_gone_sessions_earlier_proposals_are_refused_and_later_ones_not() {
        let f = Fence::new();
        f.gone(SessionId(7), 10);
        assert!(f.refused(Some(SessionId(7)), 9));
        assert!(!f.refused(Some(SessionId(8)), 9), "another session's");
        assert!(!f.refused(Some(SessionId(7)), 10), "made after the close");
        assert!(!f.any_gone(), "forgotten once past its cutoff");
    }
}
