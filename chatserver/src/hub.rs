//! The task that owns the [`Room`]: it feeds the room what the connections
//! read, and moves the room's output into each peer's queue. It never waits
//! on a socket: writes are attempted without blocking, and a peer whose
//! socket is full is left to its own connection task.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use chatproto::{
    encode, escape_control, ClientFrame, ClientId, ClientIdMap, ErrorCode, Event, PayloadError,
    Room, ServerFrame,
};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use crate::budget::OutboundBudget;
use crate::peer::{Peer, Push};

/// How often the room's timers run.
const TICK: Duration = Duration::from_millis(250);

/// At most this many queued inputs are handled before a tick's timeouts.
const TICK_CATCH_UP: usize = 8192;

/// Every this many ticks, idle peers give back their queue's memory.
const TRIM_EVERY_TICKS: u64 = 4;

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

/// Inputs handled, and connections opened or closed.
#[derive(Debug, Default, Clone, Copy)]
struct Activity {
    inputs: u64,
    churn: u64,
}

/// Most transmits moved into peers' queues between two looks at the
/// outbound budget (2 MiB of queue slots): a burst such as a tick timing out
/// thousands of clients is written out as it goes, not queued whole first.
const DISPATCH_CHUNK: usize = 65_536;

/// How many inputs the hub takes per turn before writing out.
const BATCH: usize = 1024;

/// What connection tasks tell the hub.
#[derive(Debug)]
pub enum ToHub {
    /// A connection opened; the hub answers with its handle.
    Connect {
        /// The new peer.
        peer: Arc<Peer>,
        /// Where to send the handle.
        reply: oneshot::Sender<ClientId>,
    },
    /// A frame arrived.
    Frame(ClientId, ClientFrame),
    /// A payload arrived that is not a frame.
    BadFrame(ClientId, PayloadError),
    /// The connection is finished (EOF, error, or closed by the server).
    Gone(ClientId),
}

/// What woke the hub.
enum Turn {
    Inputs(usize),
    Tick,
    Shutdown,
}

/// The room and the peers it talks to.
pub struct Hub {
    room: Room,
    peers: ClientIdMap<Arc<Peer>>,
    to_flush: Vec<Arc<Peer>>,
    slow_consumer: Bytes,
    budget: Arc<OutboundBudget>,
    /// Sent to the clients closed when all queues together pass the budget.
    over_budget: Bytes,
    /// Clients to take out of the room, one at a time: closed for
    /// overflowing, or their socket broke.
    leaving: VecDeque<ClientId>,
    /// Activity in the current trim interval, and since memory was last
    /// given back.
    recent: Activity,
    since_release: Activity,
}

/// Unix milliseconds now: the room's `now`.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Hub {
    /// A hub around `room`; every peer's queue holds at most
    /// `outbound_queue_bytes`, and all of them together `budget`.
    pub fn new(room: Room, outbound_queue_bytes: usize, budget: Arc<OutboundBudget>) -> Self {
        let msg = format!(
            "you did not read your messages fast enough (over {outbound_queue_bytes} bytes waiting); closing"
        );
        let max = room.config().max_frame_bytes;
        let slow_consumer = encode(&ServerFrame::error(ErrorCode::SlowConsumer, msg), max)
            .expect("an error frame fits");
        let msg = format!(
            "the server's outbound memory for all clients is full (over {} bytes) and yours was the longest queue; closing",
            budget.limit()
        );
        let over_budget = encode(&ServerFrame::error(ErrorCode::SlowConsumer, msg), max)
            .expect("an error frame fits");
        Hub {
            room,
            peers: ClientIdMap::default(),
            to_flush: Vec::new(),
            slow_consumer,
            budget,
            over_budget,
            leaving: VecDeque::new(),
            recent: Activity::default(),
            since_release: Activity::default(),
        }
    }

    /// Run until `shutdown` turns true or every connection sender is gone.
    /// On shutdown every client gets a notice, then its connection closes
    /// once its queue is written.
    pub async fn run(mut self, mut rx: mpsc::Receiver<ToHub>, mut shutdown: watch::Receiver<bool>) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut ticks: u64 = 0;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let turn = tokio::select! {
                n = rx.recv_many(&mut batch, BATCH) => Turn::Inputs(n),
                _ = tick.tick() => Turn::Tick,
                _ = shutdown.wait_for(|stop| *stop) => Turn::Shutdown,
            };
            match turn {
                Turn::Inputs(0) => return,
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
                    let now = now_ms();
                    for input in batch.drain(..) {
                        self.handle(now, input);
                        // Keep the room's queue at one event's worth.
                        self.dispatch(now);
                    }
                }
                Turn::Tick => {
                    // Under load, a pong may be waiting in the queue: hear
                    // what is already queued before judging who is silent.
                    let now = now_ms();
                    for _ in 0..TICK_CATCH_UP {
                        let Ok(input) = rx.try_recv() else { break };
                        self.handle(now, input);
                        self.dispatch(now);
                    }
                    self.room.handle_tick(now_ms());
                    ticks += 1;
                    if ticks.is_multiple_of(TRIM_EVERY_TICKS) {
                        for peer in self.peers.values() {
                            peer.trim();
                        }
                        self.release_memory_if_quiet();
                    }
                }
                Turn::Shutdown => {
                    self.room
                        .handle_shutdown(now_ms(), "the server is shutting down; goodbye");
                    self.drain(now_ms());
                    for peer in self.peers.values() {
                        peer.close();
                    }
                    info!(clients = self.peers.len(), "shutting down");
                    return;
                }
            }
            self.drain(now_ms());
        }
    }

    /// Quiet after a burst: hand the heap's free pages back to the OS.
    fn release_memory_if_quiet(&mut self) {
        let recent = std::mem::take(&mut self.recent);
        self.since_release.inputs += recent.inputs;
        self.since_release.churn += recent.churn;
        let inputs_settled =
            recent.inputs < QUIET.inputs && self.since_release.inputs >= RELEASE_AFTER.inputs;
        let churn_settled =
            recent.churn < QUIET.churn && self.since_release.churn >= RELEASE_AFTER.churn;
        if inputs_settled || churn_settled {
            crate::trim::release_free_memory();
            self.since_release = Activity::default();
        }
    }

    fn handle(&mut self, now: u64, input: ToHub) {
        if matches!(input, ToHub::Connect { .. } | ToHub::Gone(_)) {
            self.recent.churn += 1;
        }
        match input {
            ToHub::Connect { peer, reply } => {
                let id = self.room.handle_connect(now);
                let _ = peer.id.set(id);
                if reply.send(id).is_ok() {
                    self.peers.insert(id, peer);
                } else {
                    self.room.handle_disconnect(now, id);
                }
            }
            ToHub::Frame(id, frame) => self.room.handle_frame(now, id, frame),
            ToHub::BadFrame(id, err) => self.room.handle_bad_frame(now, id, &err),
            ToHub::Gone(id) => {
                self.room.handle_disconnect(now, id);
                self.peers.remove(&id);
            }
        }
    }

    /// Move the room's transmits into the peers' queues, and apply the
    /// overflow policies.
    ///
    /// A client closed for overflowing leaves the room, and its offline
    /// presence goes to everyone: one departure at a time, each after the
    /// previous one's copies are queued, so the room's own queue never
    /// holds more than one event's copies. (Leaving them all at once, when
    /// thousands of clients overflow together, queued N² copies there.)
    fn dispatch(&mut self, now: u64) {
        loop {
            let more = self.dispatch_queued();
            if self.budget.is_over() {
                // Write what the sockets take now: only what stays queued
                // is a backlog worth closing anyone for.
                self.flush_pending();
                self.enforce_budget();
            }
            if more {
                continue;
            }
            let Some(id) = self.leaving.pop_front() else {
                return;
            };
            self.room.handle_disconnect(now, id);
        }
    }

    /// Write what each queued-to peer's socket takes now, never waiting. A
    /// peer whose socket broke is gone: it leaves the room next.
    fn flush_pending(&mut self) {
        let mut flushing = std::mem::take(&mut self.to_flush);
        for peer in flushing.drain(..) {
            if peer.flush(true).is_err() {
                if let Some(&id) = peer.id.get() {
                    self.leaving.push_back(id);
                }
            }
        }
        // Keep the list's allocation for the next turn.
        self.to_flush = flushing;
    }

    /// Move the room's queued transmits into the peers' queues.
    /// At most [`DISPATCH_CHUNK`] of them, so that the budget is looked at
    /// in between; `true` if the room may have more.
    fn dispatch_queued(&mut self) -> bool {
        let mut queued = 0;
        let mut taken = 0;
        while taken < DISPATCH_CHUNK {
            let Some(t) = self.room.poll_transmit() else {
                break;
            };
            taken += 1;
            let Some(peer) = self.peers.get(&t.to) else {
                continue;
            };
            match peer.push(t.bytes) {
                Push::Queued(newly) => {
                    queued += 1;
                    if newly {
                        self.to_flush.push(Arc::clone(peer));
                    }
                }
                Push::Closed => {}
                Push::Overflow => {
                    let nick = self.room.nick(t.to).unwrap_or("(not joined)");
                    warn!(client = %t.to, nick, "slow consumer: outbound queue full; closing");
                    peer.kick(self.slow_consumer.clone());
                    self.leaving.push_back(t.to);
                }
            }
        }
        self.budget.add_slots(queued);
        taken == DISPATCH_CHUNK
    }

    /// The overflow policy of the outbound budget: while all queues
    /// together hold more than the limit, close the client with the longest
    /// queue (`slow_consumer`), until they hold at most three quarters of it.
    fn enforce_budget(&mut self) {
        if !self.budget.is_over() {
            return;
        }
        let target = self.budget.limit() / 4 * 3;
        let mut longest: Vec<(usize, ClientId)> = self
            .peers
            .iter()
            .filter(|(_, peer)| !peer.is_closing())
            .map(|(&id, peer)| (peer.queued(), id))
            .filter(|&(queued, _)| queued > 0)
            .collect();
        longest.sort_unstable_by(|a, b| b.cmp(a));
        let mut used = self.budget.used();
        let closable: usize = longest.iter().map(|&(queued, _)| queued).sum();
        if used.saturating_sub(closable) > target {
            // Even closing every client with a queue would not get under
            // the target: connections already closing hold the memory, and
            // they free it within --close-flush-ms. Close nobody for it.
            return;
        }
        // Closing a queue frees its slots, and its frames unless other
        // queues share them: assume all of it, and look again next time.
        for (queued, id) in longest {
            if used <= target {
                break;
            }
            let nick = self.room.nick(id).unwrap_or("(not joined)");
            warn!(client = %id, nick, queued, total = used, "outbound budget full: closing the longest queue");
            if let Some(peer) = self.peers.get(&id) {
                peer.kick(self.over_budget.clone());
            }
            self.leaving.push_back(id);
            used = used.saturating_sub(queued);
        }
    }

    /// Move everything the room produced to the peers, write what the
    /// sockets take now, close who must be closed, and log events.
    fn drain(&mut self, now: u64) {
        // Until the broken sockets' departures have been sent too.
        loop {
            self.dispatch(now);
            if self.to_flush.is_empty() {
                break;
            }
            self.flush_pending();
        }
        while let Some(close) = self.room.poll_close() {
            if let Some(peer) = self.peers.get(&close.client) {
                // The room has already dropped the client; its `Left` event names it.
                info!(client = %close.client, code = %close.code, "closing connection");
                peer.close();
            }
        }
        while let Some(event) = self.room.poll_event() {
            log_event(&event);
        }
    }
}

fn log_event(event: &Event) {
    match event {
        Event::Joined { nick, seq, .. } => info!("[{seq}] {nick} joined"),
        Event::Left { nick, seq, .. } => info!("[{seq}] {nick} left"),
        Event::Message {
            seq,
            from,
            to,
            text,
            ..
        } => {
            // Arguments are only evaluated when the level is enabled.
            if to.is_empty() {
                info!("[{seq}] {from} -> everyone: {}", escape_control(text));
            } else {
                info!(
                    "[{seq}] {from} -> {}: {}",
                    to.join(", "),
                    escape_control(text)
                );
            }
        }
        _ => {}
    }
}
