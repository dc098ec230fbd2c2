//! The task that owns the [`Server`] core: it feeds the core what the
//! connections read, and moves the core's output into each peer's queue.
//! It never waits on a socket: writes are attempted without blocking, and a
//! peer whose socket is full is left to its own connection task.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use chatproto::{
    encode, encode_into, escape_control, ClientFrame, ClientId, Event, EventBody, Kick, Now,
    Output, PayloadError, PresenceStatus, Record, Server,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::args::LogText;
use crate::budget::OutboundBudget;
use crate::peer::{Peer, Push};
use crate::store::{FromStore, StoreLink, ToStore};

/// Records waiting for the store (beside the batch it is writing) past
/// which the hub stops reading new input: the senders' sockets fill and TCP
/// slows them, instead of a queue growing without bound.
const STORE_BACKLOG: usize = 16_384;

/// How long shutdown waits for the store to take what was acknowledged-to-be.
const STORE_SETTLE: Duration = Duration::from_secs(10);

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

/// Inputs handled, and connections opened or closed.
#[derive(Debug, Default, Clone, Copy)]
struct Activity {
    inputs: u64,
    churn: u64,
}

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
    /// The client read a backlog queued for it: it is alive.
    Progress(ClientId),
    /// The connection is finished (EOF, error, or closed by the server).
    Gone(ClientId),
    /// `/metrics` asks what the core knows.
    Snapshot(oneshot::Sender<crate::metrics::Snapshot>),
}

/// What woke the hub.
enum Turn {
    Inputs(usize),
    Store(Option<FromStore>),
    Timeout,
    Trim,
    Shutdown,
}

/// The two clocks the core runs on: monotonic milliseconds since the hub
/// started, and the wall clock for `ts`.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// Both clocks start now.
    pub fn new() -> Self {
        Clock {
            start: Instant::now(),
        }
    }

    /// Both clocks' readings.
    pub fn now(&self) -> Now {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Now::new(self.start.elapsed().as_millis() as u64, wall)
    }

    fn instant(&self, mono: u64) -> Instant {
        self.start + Duration::from_millis(mono)
    }
}

/// A hasher for the core's connection handles: a counter the core hands
/// out, not chosen by a peer, so a multiply spreads them well enough and
/// SipHash's cost on the fan-out path (one lookup per recipient) buys
/// nothing.
#[derive(Debug, Clone, Copy, Default)]
struct HandleHasher(u64);

impl std::hash::Hasher for HandleHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

impl std::hash::BuildHasher for HandleHasher {
    type Hasher = HandleHasher;
    fn build_hasher(&self) -> HandleHasher {
        HandleHasher(0)
    }
}

type Peers = HashMap<ClientId, Arc<Peer>, HandleHasher>;

/// The server core and the peers it talks to.
pub struct Hub {
    server: Server,
    clock: Clock,
    max_frame_bytes: usize,
    /// Where frames are encoded, split off one by one.
    scratch: BytesMut,
    peers: Peers,
    to_flush: Vec<Arc<Peer>>,
    budget: Arc<OutboundBudget>,
    outbound_queue_bytes: usize,
    /// Clients to take out of the core after the current output: closed
    /// for overflowing, or their socket broke.
    leaving: Vec<ClientId>,
    /// Clients whose queue was replaced by their last frame: nothing more
    /// goes to them.
    kicked: HashSet<ClientId>,
    /// Queues that overflowed during the current output.
    overflowed: Vec<ClientId>,
    /// The event logged last (its room's name's address, its seq).
    last_logged: Option<(usize, u64)>,
    /// Whether events are logged (at info level), and which text.
    log_events: bool,
    log_text: LogText,
    /// Activity in the current trim interval, and since memory was last
    /// given back.
    recent: Activity,
    since_release: Activity,
    next_trim: Option<Instant>,
    /// The history database's thread, when there is one.
    store: Option<StoreLink>,
    /// Records for the store's next batch, and the ticket they end with.
    to_store: Vec<Record>,
    to_store_through: u64,
    /// Whether a batch is being written, since when.
    storing: bool,
    storing_since: Instant,
    metrics: Arc<crate::metrics::Metrics>,
    /// The message counted last (its room's name's address, its seq).
    last_counted: Option<(usize, u64)>,
    /// Reads that could not be asked (no store): answered from memory.
    unanswered: Vec<(u64, ClientId)>,
}

impl Hub {
    /// A hub around `server`; every peer's queue holds at most
    /// `outbound_queue_bytes`, and all of them together `budget`.
    pub fn new(
        server: Server,
        clock: Clock,
        store: Option<StoreLink>,
        outbound_queue_bytes: usize,
        budget: Arc<OutboundBudget>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        let max_frame_bytes = server.config().max_frame_bytes;
        Hub {
            server,
            clock,
            max_frame_bytes,
            scratch: BytesMut::new(),
            peers: Peers::default(),
            to_flush: Vec::new(),
            budget,
            outbound_queue_bytes,
            leaving: Vec::new(),
            kicked: HashSet::new(),
            overflowed: Vec::new(),
            last_logged: None,
            log_events: tracing::enabled!(tracing::Level::INFO),
            log_text: LogText::All,
            recent: Activity::default(),
            since_release: Activity::default(),
            next_trim: None,
            store,
            to_store: Vec::new(),
            to_store_through: 0,
            storing: false,
            storing_since: Instant::now(),
            metrics,
            last_counted: None,
            unanswered: Vec::new(),
        }
    }

    /// Which message text the log shows.
    pub fn set_log_text(&mut self, text: LogText) {
        self.log_text = text;
    }

    /// Run until `shutdown` turns true or every connection sender is gone.
    /// On shutdown every client gets a notice, then its connection closes
    /// once its queue is written.
    pub async fn run(mut self, mut rx: mpsc::Receiver<ToHub>, mut shutdown: watch::Receiver<bool>) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            // Sleep until the core's next deadline: an idle server does not wake.
            let deadline = self.server.poll_timeout().map(|t| self.clock.instant(t));
            // A store that falls behind stops the reading (see STORE_BACKLOG).
            let reading = self.to_store.len() < STORE_BACKLOG;
            let has_store = self.store.is_some();
            let turn = tokio::select! {
                n = rx.recv_many(&mut batch, BATCH), if reading => Turn::Inputs(n),
                answer = recv_store(&mut self.store), if has_store => Turn::Store(answer),
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => Turn::Timeout,
                _ = tokio::time::sleep_until(self.next_trim.unwrap_or_else(Instant::now)), if self.next_trim.is_some() => Turn::Trim,
                _ = shutdown.wait_for(|stop| *stop) => Turn::Shutdown,
            };
            match turn {
                Turn::Inputs(0) => {
                    // Every connection is gone: store what is stamped and
                    // close the database cleanly.
                    let _ = tokio::time::timeout(STORE_SETTLE, self.settle_store()).await;
                    self.close_store();
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
                    for input in batch.drain(..) {
                        self.handle(now, input);
                        self.dispatch(now);
                    }
                }
                Turn::Timeout => {
                    // Under load, a pong may be waiting in the queue: hear
                    // what is already queued before judging who is silent.
                    let now = self.clock.now();
                    for _ in 0..TIMEOUT_CATCH_UP {
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
                Turn::Store(None) => {
                    warn!("the history database's thread stopped; stopping");
                    self.store = None;
                    self.server
                        .handle_persist_failed("the history database's thread stopped");
                }
                Turn::Store(Some(answer)) => self.stored(answer),
                Turn::Shutdown => {
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
                    info!(clients = self.peers.len(), "shutting down");
                    self.close_store();
                    return;
                }
            }
            self.drain(self.clock.now());
            self.send_to_store();
        }
    }

    /// Hand the records gathered this turn to the store, as one batch,
    /// unless it is writing one (then they go with the next).
    fn send_to_store(&mut self) {
        if self.storing || self.to_store.is_empty() {
            return;
        }
        let Some(link) = &self.store else { return };
        let records = std::mem::take(&mut self.to_store);
        let through = self.to_store_through;
        if link.tx.send(ToStore::Append { records, through }).is_ok() {
            self.storing = true;
            self.storing_since = Instant::now();
        }
    }

    /// The store answered.
    fn stored(&mut self, answer: FromStore) {
        match answer {
            FromStore::Stored(through) => {
                self.storing = false;
                let took = self.storing_since.elapsed().as_micros() as u64;
                self.metrics.appended(took);
                self.server.handle_persisted(through);
            }
            FromStore::Failed(cause) => {
                self.storing = false;
                self.metrics.append_failed();
                // The core gives up every record not stored, these included.
                self.to_store.clear();
                warn!(
                    cause,
                    "messages are refused until the history database works again"
                );
                self.server.handle_persist_failed(&cause);
            }
            FromStore::Recovered => {
                self.server.handle_store_recovered();
                info!("the history database works again; messages are taken again");
            }
            FromStore::Pruned(rooms) => {
                for (room, oldest) in rooms {
                    self.server.handle_pruned(&room, oldest);
                }
            }
            FromStore::Read {
                ticket,
                client,
                found,
            } => self.answer_read(ticket, client, found),
        }
    }

    /// The store read history for `client`: its answer goes before what
    /// was held for it meanwhile.
    fn answer_read(
        &mut self,
        ticket: u64,
        client: ClientId,
        found: Result<(Vec<Event>, bool), String>,
    ) {
        if let Err(e) = &found {
            warn!(error = %e, "the history database could not read; answering from memory");
        }
        let frames = match self.server.handle_read(ticket, found) {
            Some((to, frames)) if to == client => frames,
            _ => Vec::new(),
        };
        let Some(peer) = self.peers.get(&client) else {
            return;
        };
        let mut answer = Vec::with_capacity(frames.len());
        for frame in &frames {
            match encode_shared(&mut self.scratch, frame, self.max_frame_bytes) {
                Ok(bytes) => answer.push(self.budget.track(bytes)),
                Err(e) => warn!(client = %client, error = %e, "a frame did not encode"),
            }
        }
        self.budget.add_slots(answer.len());
        if peer.release(ticket, answer) {
            self.to_flush.push(Arc::clone(peer));
        }
    }

    /// Wait until everything stamped is stored (or the store failed).
    async fn settle_store(&mut self) {
        loop {
            self.drain(self.clock.now());
            self.send_to_store();
            if !self.storing {
                return;
            }
            match recv_store(&mut self.store).await {
                Some(answer) => self.stored(answer),
                None => return,
            }
        }
    }

    /// Stop the store's thread and wait for it: the database closes cleanly.
    fn close_store(&mut self) {
        if let Some(mut link) = self.store.take() {
            let thread = link.thread.take();
            drop(link);
            if let Some(t) = thread {
                let _ = t.join();
            }
        }
    }

    /// Quiet after a burst: hand the heap's free pages back to the OS.
    /// Whether anything happened since the last look (so look again).
    fn release_memory_if_quiet(&mut self) -> bool {
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
        recent.inputs > 0 || recent.churn > 0
    }

    fn handle(&mut self, now: Now, input: ToHub) {
        if matches!(input, ToHub::Connect { .. } | ToHub::Gone(_)) {
            self.recent.churn += 1;
        }
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
            ToHub::Frame(id, frame) => self.server.handle_frame(now, id, frame),
            ToHub::BadFrame(id, err) => self.server.handle_bad_frame(now, id, &err),
            ToHub::Progress(id) => self.server.handle_progress(now, id),
            ToHub::Gone(id) => {
                self.server.handle_disconnect(now, id);
                self.peers.remove(&id);
                self.kicked.remove(&id);
            }
            ToHub::Snapshot(reply) => {
                let _ = reply.send(crate::metrics::Snapshot {
                    rooms: self.server.rooms().count() as u64,
                    members: self.server.members() as u64,
                });
            }
        }
    }

    /// Move the core's output into the peers' queues, and apply the
    /// overflow policies.
    ///
    /// The core applies one event per output, so a client closed for
    /// overflowing leaves (and its departure reaches everyone) after the
    /// outputs already made: however many clients overflow at once, no more
    /// than one event's copies are made before the budget is looked at again.
    fn dispatch(&mut self, now: Now) {
        loop {
            let Some(out) = self.server.poll() else {
                return;
            };
            match out {
                Output::Send { to, frame, .. } => {
                    match encode_shared(&mut self.scratch, &frame, self.max_frame_bytes) {
                        Ok(bytes) => {
                            let bytes = self.budget.track(bytes);
                            self.push(to, bytes);
                        }
                        // The core builds only frames that fit.
                        Err(e) => warn!(client = %to, error = %e, "a frame did not encode"),
                    }
                }
                Output::Deliver {
                    event, to, with_id, ..
                } => {
                    // An event may go out in several deliveries (everyone
                    // else, then whoever parted); log it once.
                    let key = (Arc::as_ptr(&event.room) as *const u8 as usize, event.seq);
                    if self.log_events && self.last_logged != Some(key) {
                        self.last_logged = Some(key);
                        log_event(event, self.log_text);
                    }
                    if event.is_msg() && self.last_counted != Some(key) {
                        self.last_counted = Some(key);
                        self.metrics.message();
                    }
                    self.metrics.delivered(to.len());
                    if !to.is_empty() {
                        let wire = event.wire(with_id, false);
                        match encode_shared(&mut self.scratch, &wire, self.max_frame_bytes) {
                            Ok(bytes) => {
                                let bytes = self.budget.track(bytes);
                                let mut queued = 0;
                                for &c in to {
                                    queued += queue(
                                        &self.peers,
                                        &mut self.to_flush,
                                        &mut self.overflowed,
                                        c,
                                        &bytes,
                                    );
                                }
                                self.budget.add_slots(queued);
                            }
                            Err(e) => warn!(error = %e, "an event did not encode"),
                        }
                    }
                }
                Output::Close { client, code, .. } => {
                    self.metrics.closed_for(code.as_str());
                    if let Some(peer) = self.peers.get(&client) {
                        info!(client = %client, code = %code, "closing connection");
                        peer.close();
                    }
                }
                Output::Read {
                    ticket,
                    client,
                    query,
                    ..
                } => {
                    if let Some(peer) = self.peers.get(&client) {
                        peer.hold(ticket);
                    }
                    let read = ToStore::Read {
                        ticket,
                        client,
                        query,
                    };
                    let asked = self.store.as_ref().is_some_and(|l| l.tx.send(read).is_ok());
                    if !asked {
                        self.unanswered.push((ticket, client));
                    }
                }
                Output::Persist {
                    records, through, ..
                } => {
                    if self.to_store.is_empty() {
                        self.to_store = records;
                    } else {
                        self.to_store.extend(records);
                    }
                    self.to_store_through = through;
                }
                _ => {}
            }
            for id in std::mem::take(&mut self.overflowed) {
                self.overflow(id);
            }
            if self.budget.is_over() {
                // Write what the sockets take now: only what stays queued
                // is a backlog worth closing anyone for.
                self.flush_pending();
                self.enforce_budget();
            }
            for id in self.leaving.drain(..) {
                self.server.handle_disconnect(now, id);
            }
            for (ticket, client) in std::mem::take(&mut self.unanswered) {
                let gone = "the history database is not running".to_owned();
                self.answer_read(ticket, client, Err(gone));
            }
        }
    }

    /// Queue one frame for `to` (counted in the budget).
    fn push(&mut self, to: ClientId, bytes: Bytes) {
        let queued = queue(
            &self.peers,
            &mut self.to_flush,
            &mut self.overflowed,
            to,
            &bytes,
        );
        self.budget.add_slots(queued);
        for id in std::mem::take(&mut self.overflowed) {
            self.overflow(id);
        }
    }

    /// The overflow policy of one queue: `slow_consumer` instead of all it
    /// held, and the client leaves.
    fn overflow(&mut self, id: ClientId) {
        let nick = self.server.nick(id).unwrap_or("(not joined)");
        warn!(client = %id, nick, "slow consumer: outbound queue full; closing");
        let why = Kick::slow_consumer(self.outbound_queue_bytes);
        self.kick(id, &why);
    }

    /// Replace `id`'s queue by the error of `why`, close it, and take it
    /// out of the core after the current output.
    fn kick(&mut self, id: ClientId, why: &Kick) {
        if !self.kicked.insert(id) {
            return;
        }
        self.metrics.closed_for(why.code().as_str());
        if let Some(peer) = self.peers.get(&id) {
            match encode(&why.frame(), self.max_frame_bytes) {
                Ok(bytes) => peer.kick(self.budget.track(bytes)),
                Err(_) => peer.close(),
            }
        }
        self.leaving.push(id);
    }

    /// Write what each queued-to peer's socket takes now, never waiting. A
    /// peer whose socket broke is gone: it leaves the core next.
    fn flush_pending(&mut self) {
        let mut flushing = std::mem::take(&mut self.to_flush);
        for peer in flushing.drain(..) {
            if peer.flush(true).is_err() {
                if let Some(&id) = peer.id.get() {
                    if self.kicked.insert(id) {
                        self.leaving.push(id);
                    }
                }
            }
        }
        // Keep the list's allocation for the next turn.
        self.to_flush = flushing;
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
        let why = Kick::over_budget(self.budget.limit());
        // Closing a queue frees its slots, and its frames unless other
        // queues share them: assume all of it, and look again next time.
        for (queued, id) in longest {
            if used <= target {
                break;
            }
            let nick = self.server.nick(id).unwrap_or("(not joined)");
            warn!(client = %id, nick, queued, total = used, "outbound budget full: closing the longest queue");
            self.kick(id, &why);
            used = used.saturating_sub(queued);
        }
    }

    /// Move everything the core produced to the peers and write what the
    /// sockets take now, until broken sockets' departures are out too.
    fn drain(&mut self, now: Now) {
        loop {
            self.dispatch(now);
            if self.to_flush.is_empty() {
                break;
            }
            self.flush_pending();
            for id in self.leaving.drain(..) {
                self.server.handle_disconnect(now, id);
            }
        }
    }
}

/// Encode `frame` into the shared scratch buffer and split it off: frames
/// encoded one after another share one allocation (each holds a count on
/// it), instead of one allocation each.
fn encode_shared(
    scratch: &mut BytesMut,
    frame: &impl serde::Serialize,
    max: usize,
) -> Result<Bytes, chatproto::EncodeError> {
    if scratch.capacity() < 256 {
        scratch.reserve(8 * 1024);
    }
    encode_into(frame, scratch, max)?;
    Ok(scratch.split().freeze())
}

/// Queue `bytes` for `to`; 1 if it took a slot. A queue that overflows is
/// named in `overflowed` (the caller applies the policy).
fn queue(
    peers: &Peers,
    to_flush: &mut Vec<Arc<Peer>>,
    overflowed: &mut Vec<ClientId>,
    to: ClientId,
    bytes: &Bytes,
) -> usize {
    let Some(peer) = peers.get(&to) else {
        return 0;
    };
    match peer.push(bytes.clone()) {
        Push::Queued(newly) => {
            if newly {
                to_flush.push(Arc::clone(peer));
            }
            1
        }
        Push::Closed => 0,
        Push::Overflow => {
            overflowed.push(to);
            0
        }
    }
}

/// One line per room event, in seq order: `[#room seq] ...`.
fn log_event(event: &Event, show: LogText) {
    let (room, seq) = (&event.room, event.seq);
    match &event.body {
        EventBody::Presence { nick, status, .. } => match status {
            PresenceStatus::Online => info!("[#{room} {seq}] {nick} joined"),
            _ => info!("[#{room} {seq}] {nick} left"),
        },
        EventBody::Msg { nick, to, text, .. } => {
            // Arguments are only evaluated when the level is enabled.
            let shown = match (show, to.is_empty()) {
                (LogText::All, _) | (LogText::Public, true) => escape_control(text),
                _ => "(text not logged)".into(),
            };
            if to.is_empty() {
                info!("[#{room} {seq}] {nick} -> everyone: {shown}");
            } else {
                let names: Vec<&str> = to.iter().map(|r| &*r.nick).collect();
                info!("[#{room} {seq}] {nick} -> {}: {shown}", names.join(", "));
            }
        }
        _ => {}
    }
}

/// The store's next answer; `None` if its thread is gone (or there is none).
async fn recv_store(store: &mut Option<StoreLink>) -> Option<FromStore> {
    match store {
        Some(link) => link.rx.recv().await,
        None => std::future::pending().await,
    }
}
