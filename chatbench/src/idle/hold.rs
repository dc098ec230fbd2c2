//! The idle connections one process holds: joined a batch at a time,
//! synced (each has read all the server sent it), and closed.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

use super::conn::{idle_conn, ConnState, FAILED, JOINED, PENDING};
use crate::net::Endpoint;
use crate::progress;
use crate::wire::Target;

/// A set of idle connections held by this process.
pub struct Holder {
    states: Vec<Arc<ConnState>>,
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    /// Sync rounds: each connection pings when the number changes.
    sync_tx: watch::Sender<u64>,
    sync_round: AtomicU64,
    closed: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<String>>>,
    target: Target,
}

impl Holder {
    pub(super) fn count(&self, status: u8) -> usize {
        self.states
            .iter()
            .filter(|s| s.status.load(Ordering::Relaxed) == status)
            .count()
    }

    /// The highest seq any connection has seen.
    pub fn max_seq(&self) -> u64 {
        self.states
            .iter()
            .map(|s| s.seq.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }

    /// Wait until every joined connection has read everything the server
    /// sent it so far (chat), at most `within`: each pings, and is caught
    /// up when the pong arrives, since it comes after all that was queued
    /// before it. (Waiting for every joiner's presence instead would wait
    /// forever in a room large enough that the server stops announcing
    /// joins to everyone.)
    pub async fn sync(&self, within: Duration) -> bool {
        if self.target != Target::Chat {
            return true;
        }
        let round = self.sync_round.fetch_add(1, Ordering::Relaxed) + 1;
        self.sync_tx.send_replace(round);
        let deadline = Instant::now() + within;
        loop {
            let behind = self.states.iter().any(|s| {
                s.status.load(Ordering::Relaxed) == JOINED
                    && s.synced.load(Ordering::Relaxed) < round
            });
            if !behind {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            sleep(Duration::from_millis(5)).await;
        }
    }

    fn error(&self, e: String) {
        let mut errs = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errs.len() < 20 {
            errs.push(e);
        }
    }

    /// The errors so far.
    pub fn errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Close every connection; returns how many the server had closed first.
    pub async fn close(self) -> usize {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.closed.load(Ordering::Relaxed)
    }
}

/// What a set of idle connections is.
#[derive(Debug, Clone)]
pub struct HoldSpec {
    /// The server.
    pub target: Target,
    /// Its address and the transport.
    pub to: Arc<Endpoint>,
    /// Source address of our sockets.
    pub source: Option<IpAddr>,
    /// Nicks are `{prefix}{i}`.
    pub prefix: String,
    /// How many.
    pub n: usize,
    /// How many join at once.
    pub batch: usize,
    /// No new batch starts after this long.
    pub budget: Duration,
    /// Print progress to stderr.
    pub progress: bool,
}

/// Connect and join the connections of `spec`, a batch at a time.
pub async fn hold(spec: &HoldSpec) -> Holder {
    let HoldSpec {
        target,
        ref to,
        source,
        ref prefix,
        n,
        batch,
        budget,
        progress,
    } = *spec;
    let (stop, stop_rx) = watch::channel(false);
    // Never read here: every clone sees the latest round as new.
    let (sync_tx, sync_rx) = watch::channel(0u64);
    let mut h = Holder {
        states: Vec::with_capacity(n),
        tasks: Vec::with_capacity(n),
        stop,
        sync_tx,
        sync_round: AtomicU64::new(0),
        closed: Arc::new(AtomicUsize::new(0)),
        errors: Arc::new(Mutex::new(Vec::new())),
        target,
    };
    let started = Instant::now();
    let label = match source {
        Some(ip) => format!("idle {} from {ip}", target.name()),
        None => format!("idle {}", target.name()),
    };
    let bar = progress::bar(progress, n as u64, progress::JOINS, label);
    let batch = batch.max(1);
    for first in (0..n).step_by(batch) {
        if started.elapsed() >= budget {
            h.error(format!(
                "join budget of {budget:?} used up after {first} connections"
            ));
            break;
        }
        let end = (first + batch).min(n);
        for i in first..end {
            let st = Arc::new(ConnState {
                status: AtomicU8::new(PENDING),
                seq: AtomicU64::new(0),
                synced: AtomicU64::new(0),
            });
            h.states.push(st.clone());
            let nick = format!("{prefix}{i}");
            let (closed, errors, stop) = (h.closed.clone(), h.errors.clone(), stop_rx.clone());
            let sync = sync_rx.clone();
            h.tasks.push(tokio::spawn(idle_conn(
                target,
                to.clone(),
                source,
                nick,
                st,
                closed,
                errors,
                stop,
                sync,
            )));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while h.states[first..end]
            .iter()
            .any(|s| s.status.load(Ordering::Relaxed) == PENDING)
            && Instant::now() < deadline
        {
            sleep(Duration::from_millis(2)).await;
        }
        if !h.sync(Duration::from_secs(60)).await {
            h.error(format!(
                "connections fell behind the room's events after {end} joins"
            ));
        }
        let (joined, failed) = (h.count(JOINED), h.count(FAILED));
        bar.set_position(joined as u64);
        bar.set_message(format!("({failed} failed)"));
    }
    bar.finish_and_clear();
    if progress {
        eprintln!(
            "[idle {}] {} joined, {} failed, in {:.1}s",
            target.name(),
            h.count(JOINED),
            h.count(FAILED),
            started.elapsed().as_secs_f64()
        );
    }
    let pending = h.count(PENDING);
    if pending > 0 {
        h.error(format!("{pending} connections never finished joining"));
    }
    h
}
