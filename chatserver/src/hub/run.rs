//! The hub's loop: what wakes it (inputs, the store, the cluster, a
//! deadline, a slow-consumer check, a trim, shutdown), what each turn does with it, and the
//! connections' inputs handed to the core.

use std::time::Duration;

use chatproto::Now;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use super::from_cluster::recv_cluster;
use super::persist::recv_store;
use super::{Activity, Hub, ToHub, BATCH, STORE_SETTLE};
use crate::store::FromStore;

/// Records waiting for the store (beside the batch it is writing) past
/// which the hub stops reading new input: the senders' sockets fill and TCP
/// slows them, instead of a queue growing without bound.
const STORE_BACKLOG: usize = 16_384;

/// Outputs the core holds behind the store (answers and events after a
/// batch not yet stored: a `pong` for each `ping`, say) or, in cluster
/// mode, the cluster's log (its proposals not back from the log, and the
/// answers waiting behind them) past which the hub stops reading new
/// input too: inputs that make no record would otherwise grow that queue
/// while the store is stuck, and proposals NATS stored but this node has
/// not read back yet are not in the publisher's count.
const OUTPUTS_BACKLOG: usize = 65_536;

/// How many times the hub yields to gather more of the cluster's log
/// into one turn, while each time brings more.
const CLUSTER_GATHER: usize = 32;

/// At most this many queued inputs are handled before due timers run.
const TIMEOUT_CATCH_UP: usize = 8192;

/// How often, while there is activity, idle peers give back their queue's
/// memory and the heap is looked at; an idle server does not wake for it.
const TRIM_INTERVAL: Duration = Duration::from_secs(1);

/// When the heap's free pages go back to the OS: after this many inputs,
/// or this many connections opened and closed, once a trim interval has
/// seen fewer than the quiet number of the same kind. Counting connections
/// on their own matters: joins and leaves are what churn memory (each
/// welcome lists everyone, each presence goes to everyone), and with many
/// clients the pongs to idle pings never let the inputs go quiet.
const RELEASE_AFTER: Activity = Activity {
    inputs: 1_000,
    churn: 100,
};
const QUIET: Activity = Activity {
    inputs: 100,
    churn: 10,
};

/// The heap's free pages also go back once the outbound queues, having
/// held at least this much since the last release, hold a quarter of it
/// or less: slow readers of large replays, closed or caught up, leave
/// what their queues held free but kept by the allocator (64 of them,
/// each sent 15 MB, left 180 MiB of the server's memory so).
const RELEASE_AFTER_QUEUED: usize = 16 << 20;

/// What one look at the activity decides.
#[derive(Debug, PartialEq, Eq)]
struct Look {
    /// Hand the heap's free pages back now.
    release: bool,
    /// Look again a trim interval from now.
    again: bool,
}

/// Whether to release memory after a trim interval with `recent`
/// activity, the outbound queues holding `queued` bytes; `since` and
/// `peak` are what was seen since the last release (reset by one).
fn release_now(since: &mut Activity, peak: &mut usize, recent: Activity, queued: usize) -> Look {
    since.inputs += recent.inputs;
    since.churn += recent.churn;
    *peak = (*peak).max(queued);
    let inputs_settled = recent.inputs < QUIET.inputs && since.inputs >= RELEASE_AFTER.inputs;
    let churn_settled = recent.churn < QUIET.churn && since.churn >= RELEASE_AFTER.churn;
    let queues_drained = *peak >= RELEASE_AFTER_QUEUED && queued <= *peak / 4;
    let release = inputs_settled || churn_settled || queues_drained;
    if release {
        *since = Activity::default();
        *peak = queued;
    }
    Look {
        release,
        // Queues that held much may drain with no input at all (their
        // readers catching up): looked at until they have.
        again: recent.inputs > 0 || recent.churn > 0 || *peak >= RELEASE_AFTER_QUEUED,
    }
}

/// What woke the hub.
enum Turn {
    Inputs(usize),
    Store(Option<FromStore>),
    Cluster(usize),
    Timeout,
    Trim,
    Lagging,
    Shutdown,
}

impl Hub {
    /// Run until `shutdown` turns true or every connection sender is gone.
    /// On shutdown every client gets a notice, then its connection closes
    /// once its queue is written.
    pub async fn run(mut self, mut rx: mpsc::Receiver<ToHub>, mut shutdown: watch::Receiver<bool>) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut from_cluster = Vec::with_capacity(BATCH);
        self.check_caught_up();
        loop {
            // A store that falls behind stops the reading (see STORE_BACKLOG).
            let proposed = self.cluster.as_ref().map_or(0, |c| {
                c.link.pending.load(std::sync::atomic::Ordering::Relaxed)
            });
            let reading = self.to_store.len() < STORE_BACKLOG
                && proposed < STORE_BACKLOG
                && self.server.outputs_waiting() < OUTPUTS_BACKLOG;
            if reading == self.input_paused {
                // Pongs and joins wait unread while paused: the core
                // times nobody out for that.
                self.input_paused = !reading;
                self.server.handle_input_paused(self.clock.now(), !reading);
                // Debug only: near the bound it may change every turn.
                tracing::debug!(paused = !reading, "input from the connections");
            }
            // Sleep until the core's next deadline: an idle server does not
            // wake. Read after the pause's news: its end arms timers.
            let deadline = self.server.poll_timeout().map(|t| self.clock.instant(t));
            self.watch_lagging();
            let has_store = self.store.is_some();
            let has_cluster = self.cluster.is_some();
            let turn = tokio::select! {
                n = rx.recv_many(&mut batch, BATCH), if reading => Turn::Inputs(n),
                answer = recv_store(&mut self.store), if has_store => Turn::Store(answer),
                n = recv_cluster(&mut self.cluster, &mut from_cluster), if has_cluster => Turn::Cluster(n),
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => Turn::Timeout,
                _ = tokio::time::sleep_until(self.next_trim.unwrap_or_else(Instant::now)), if self.next_trim.is_some() => Turn::Trim,
                _ = tokio::time::sleep_until(self.next_lag_check.unwrap_or_else(Instant::now)), if self.next_lag_check.is_some() => Turn::Lagging,
                _ = shutdown.wait_for(|stop| *stop) => Turn::Shutdown,
            };
            match turn {
                // Every connection is gone, and the accept loop too, which
                // ends only at a stop: a stop, however it is heard. With no
                // connection open, both are ready at once and `select!`
                // takes either; this one must leave the cluster as well
                // (its heartbeat deleted: the other nodes warned that it
                // had died) and say it shuts down.
                Turn::Inputs(0) | Turn::Shutdown => {
                    self.shut_down().await;
                    return;
                }
                Turn::Inputs(n) => {
                    if n < BATCH {
                        // Let the connections that are ready run first, so
                        // one turn carries many frames and each socket gets
                        // one write for all of them.
                        tokio::task::yield_now().await;
                        while batch.len() < BATCH {
                            match rx.try_recv() {
                                Ok(input) => batch.push(input),
                                Err(_) => break,
                            }
                        }
                    }
                    self.recent.inputs += batch.len() as u64;
                    self.next_trim
                        .get_or_insert_with(|| Instant::now() + TRIM_INTERVAL);
                    let now = self.clock.now();
                    // With a store, what the inputs decide waits for it
                    // anyway: taken out once, at the end of the turn, the
                    // turn's records go to it as one batch.
                    let each = self.store.is_none();
                    for input in batch.drain(..) {
                        self.handle(now, input);
                        if each {
                            self.dispatch(now);
                        }
                    }
                }
                Turn::Timeout => {
                    // Under load, a pong may be waiting in the queue: hear
                    // what is already queued before judging who is silent.
                    let now = self.clock.now();
                    // Not past the backlogs' bounds (see `reading`).
                    let catch_up = if reading { TIMEOUT_CATCH_UP } else { 0 };
                    for _ in 0..catch_up {
                        let Ok(input) = rx.try_recv() else { break };
                        self.handle(now, input);
                        self.dispatch(now);
                    }
                    self.server.handle_timeout(self.clock.now());
                }
                Turn::Trim => {
                    for peer in self.peers.values() {
                        peer.trim();
                    }
                    let active = self.release_memory_if_quiet();
                    self.next_trim = active.then(|| Instant::now() + TRIM_INTERVAL);
                }
                Turn::Lagging => self.check_lagging(),
                Turn::Store(None) => self.store_stopped(),
                Turn::Store(Some(answer)) => self.stored(answer),
                Turn::Cluster(0) => {
                    warn!("the cluster's tasks stopped");
                    self.cluster = None;
                }
                Turn::Cluster(n) => {
                    if n < BATCH {
                        // As with inputs: let the followers that are ready
                        // run first, so one turn applies many events and
                        // each socket gets one write for all of them.
                        // Yield again while they bring more: the log
                        // arrives in bursts of reads.
                        for _ in 0..CLUSTER_GATHER {
                            tokio::task::yield_now().await;
                            let before = from_cluster.len();
                            if let Some(c) = &mut self.cluster {
                                while from_cluster.len() < BATCH {
                                    match c.rx.try_recv() {
                                        Ok(item) => from_cluster.push(item),
                                        Err(_) => break,
                                    }
                                }
                            }
                            if from_cluster.len() == before || from_cluster.len() >= BATCH {
                                break;
                            }
                        }
                    }
                    let now = self.clock.now();
                    for item in from_cluster.drain(..) {
                        self.heard(now, item);
                        self.dispatch(now);
                    }
                }
            }
            self.drain(self.clock.now());
            self.send_to_store();
            self.report_reads();
        }
    }

    /// A stop: leave the cluster, store what is stamped, say goodbye to
    /// every client, close their connections once written, and close the
    /// database.
    async fn shut_down(&mut self) {
        if self.cluster.is_some() {
            self.leave_cluster().await;
        }
        // Sessions whose resume window has passed are forgotten now, and
        // so by the store: a restart must not bring them back. (Only
        // them: the other timers would judge connections whose answers
        // wait unread. A cluster's sessions expire in its buckets.)
        if self.cluster.is_none() {
            self.server.forget_expired_sessions(self.clock.now());
        }
        // What is stamped is stored and sent before the goodbye.
        let _ = tokio::time::timeout(STORE_SETTLE, self.settle_store()).await;
        self.server
            .handle_shutdown("the server is shutting down; goodbye");
        let mut online: Vec<String> = self.server.online().map(str::to_owned).collect();
        online.sort_unstable();
        for nick in online {
            info!("{nick} left (the server is shutting down)");
        }
        self.drain(self.clock.now());
        for peer in self.peers.values() {
            peer.close();
        }
        // A server that never got to listen (its port taken, say) has said
        // why in one line; it does not add this one.
        if self.listening.load(std::sync::atomic::Ordering::Relaxed) {
            info!(clients = self.peers.len(), "shutting down");
        }
        self.close_store().await;
    }

    /// Quiet after a burst: hand the heap's free pages back to the OS.
    /// Whether to look again a trim interval from now.
    fn release_memory_if_quiet(&mut self) -> bool {
        let recent = std::mem::take(&mut self.recent);
        let queued = self.budget.used();
        let look = release_now(
            &mut self.since_release,
            &mut self.queued_peak,
            recent,
            queued,
        );
        if look.release {
            crate::trim::release_free_memory();
        }
        look.again
    }

    pub(super) fn handle(&mut self, now: Now, input: ToHub) {
        if matches!(input, ToHub::Connect { .. } | ToHub::Gone(_)) {
            self.recent.churn += 1;
        }
        let input = match self.cluster.is_some() {
            true => match self.park(input) {
                Some(input) => input,
                None => return,
            },
            false => input,
        };
        match input {
            ToHub::Connect { peer, reply } => {
                let id = self.server.handle_connect(now);
                let _ = peer.id.set(id);
                if reply.send(id).is_ok() {
                    self.peers.insert(id, peer);
                } else {
                    self.server.handle_disconnect(now, id);
                }
            }
            ToHub::Frame(id, frame) => {
                if crate::feed::reads(&frame) {
                    self.reads_taken.push(id);
                }
                self.server.handle_frame(now, id, frame);
            }
            ToHub::LastFrame(id, frame) => {
                if crate::feed::reads(&frame) {
                    self.reads_taken.push(id);
                }
                self.server.handle_last_frame(now, id, frame);
            }
            ToHub::BadFrame(id, err) => self.server.handle_bad_frame(now, id, &err),
            ToHub::Progress(id) => self.server.handle_progress(now, id),
            ToHub::End(id) => self.server.handle_end(id),
            ToHub::Gone(id) => {
                // With its token, kept since its join: a connection the
                // core closed (a pong timeout, say) is forgotten there.
                let claim = self.cluster.as_mut().and_then(|c| c.claims.remove(&id));
                // Its end in the log, beside `connected` (with the
                // address) and `joined`. A session whose connection ended
                // by itself (a page reloaded, a network gone) is kept for
                // a resume: said here, or the rooms' `left` lines that
                // follow read as if it had quit. (One the core closed
                // first, for a reason logged then, is said plainly.)
                let window = self.server.config().resume_window_ms;
                let kept = window > 0 && self.server.session_id_of(id).is_some();
                match self.nicks.remove(&id) {
                    Some(nick) if kept => info!(
                        client = %id,
                        nick = %nick,
                        resume_window_ms = window,
                        "disconnected; its session is kept for a resume"
                    ),
                    Some(nick) => info!(client = %id, nick = %nick, "disconnected"),
                    None => info!(client = %id, "disconnected"),
                }
                self.disconnect(now, id);
                self.peers.remove(&id);
                self.kicked.remove(&id);
                if let Some(claim) = claim {
                    self.release_once_left(now, claim);
                }
            }
            ToHub::Snapshot(reply) => {
                let _ = reply.send(crate::metrics::Snapshot {
                    rooms: self.server.rooms().count() as u64,
                    members: self.server.members() as u64,
                    rooms_forgotten: self.server.rooms_forgotten(),
                    rooms_unloaded: self.server.rooms_unloaded() as u64,
                });
            }
            ToHub::Alive(reply) => {
                let _ = reply.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    /// What a look should say: release now, look again.
    fn says(release: bool, again: bool) -> Look {
        Look { release, again }
    }

    /// Slow readers of large replays fill the queues with few inputs and
    /// little churn; once their queues drain (closed or read), the memory
    /// they held goes back, even with no input to wake the hub.
    #[test]
    fn memory_goes_back_once_large_queues_have_drained() {
        let (mut since, mut peak) = (Activity::default(), 0);
        let quiet = Activity::default();
        let burst = Activity {
            inputs: 64,
            churn: 64,
        };
        let mut look = |recent, queued| release_now(&mut since, &mut peak, recent, queued);
        assert_eq!(look(burst, 120 * MIB), says(false, true), "filling");
        assert_eq!(look(quiet, 100 * MIB), says(false, true), "held");
        // Drained to a quarter or less: released; what is still queued is
        // watched in turn, and released once drained too.
        assert_eq!(look(quiet, 20 * MIB), says(true, true), "drained");
        assert_eq!(look(quiet, 0), says(true, false), "the rest drained");
        assert_eq!(look(quiet, 0), says(false, false), "once");
    }

    /// Queues that never held much are no reason to release, nor to keep
    /// looking; the counts of inputs and connections still are.
    #[test]
    fn small_queues_change_nothing_and_bursts_of_inputs_still_count() {
        let (mut since, mut peak) = (Activity::default(), 0);
        let quiet = Activity::default();
        let busy = Activity {
            inputs: 5_000,
            churn: 0,
        };
        let mut look = |recent, queued| release_now(&mut since, &mut peak, recent, queued);
        assert_eq!(look(quiet, MIB), says(false, false));
        assert_eq!(look(busy, 0), says(false, true), "not quiet yet");
        assert_eq!(look(quiet, 0), says(true, false), "quiet after it");
    }
}
