//! The task that owns the [`Server`] core: it feeds the core what the
//! connections read, and moves the core's output into each peer's queue.
//! It never waits on a socket: writes are attempted without blocking, and a
//! peer whose socket is full is left to its own connection task.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use chatproto::{
    encode, encode_into, escape_control, ClientFrame, ClientId, ErrorCode, Event, EventBody, Kick,
    Now, Output, PayloadError, PresenceStatus, ReadPage, Record, Server, ServerFrame, SessionId,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::args::LogText;
use crate::budget::OutboundBudget;
use crate::cluster::{ClaimError, Claimed, Cluster, FromCluster};
use crate::peer::{Peer, Push};
use crate::stage::{Audience, Stage};
use crate::store::{FromStore, StoreLink, ToStore};

/// Records waiting for the store (beside the batch it is writing) past
/// which the hub stops reading new input: the senders' sockets fill and TCP
/// slows them, instead of a queue growing without bound.
const STORE_BACKLOG: usize = 16_384;

/// How long shutdown waits for the store to take what was acknowledged-to-be.
const STORE_SETTLE: Duration = Duration::from_secs(10);

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
    Cluster(usize),
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
    /// This turn's frames for the peers, queued when the turn ends.
    stage: Stage,
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
    /// Cluster mode: the link, and what the hub keeps for it.
    cluster: Option<ClusterSide>,
    /// Set once `listening on` is printed: events are logged from then on.
    listening: Arc<std::sync::atomic::AtomicBool>,
}

/// What the hub keeps in cluster mode.
pub struct ClusterSide {
    link: Arc<Cluster>,
    rx: mpsc::Receiver<FromCluster>,
    /// Who is in which room, by the run of the node that said so (and the
    /// seq of its entering): when a run stops, the others say its clients
    /// left, with ids that make several nodes' saying count once.
    owners: HashMap<SessionId, HashMap<Arc<str>, Owner>>,
    /// Inputs of clients waiting for a nickname claim, in order.
    parked: HashMap<ClientId, VecDeque<ToHub>>,
    /// Each joined client's claim: its key and revision.
    claims: HashMap<ClientId, (String, u64)>,
    /// Rooms not caught up with yet, to the seq; then `caught_up` fires.
    catch_up: HashMap<String, u64>,
    caught_up: Option<oneshot::Sender<()>>,
    /// Departures proposed for stopped nodes' clients, and when.
    cleaning: HashMap<String, Instant>,
}

/// Who said a session entered a room.
#[derive(Debug, Clone)]
struct Owner {
    origin: Arc<str>,
    seq: u64,
    nick: Arc<str>,
}

impl ClusterSide {
    /// The hub's side of `link`: events arrive on `rx`; `caught_up`
    /// fires once every room in `catch_up` is applied to its seq.
    pub fn new(
        link: Arc<Cluster>,
        rx: mpsc::Receiver<FromCluster>,
        catch_up: HashMap<String, u64>,
        caught_up: oneshot::Sender<()>,
    ) -> Self {
        ClusterSide {
            link,
            rx,
            owners: HashMap::new(),
            parked: HashMap::new(),
            claims: HashMap::new(),
            catch_up,
            caught_up: Some(caught_up),
            cleaning: HashMap::new(),
        }
    }
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
            stage: Stage::default(),
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
            cluster: None,
            listening: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// The flag to set once `listening on` is printed (events are logged
    /// only after it).
    pub fn listening(&self) -> Arc<std::sync::atomic::AtomicBool> {
        Arc::clone(&self.listening)
    }

    /// Run as a node of a cluster (see `cluster`).
    pub fn set_cluster(&mut self, side: ClusterSide) {
        self.cluster = Some(side);
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
        let mut from_cluster = Vec::with_capacity(BATCH);
        self.check_caught_up();
        loop {
            // Sleep until the core's next deadline: an idle server does not wake.
            let deadline = self.server.poll_timeout().map(|t| self.clock.instant(t));
            // A store that falls behind stops the reading (see STORE_BACKLOG).
            let proposed = self.cluster.as_ref().map_or(0, |c| {
                c.link.pending.load(std::sync::atomic::Ordering::Relaxed)
            });
            let reading = self.to_store.len() < STORE_BACKLOG && proposed < STORE_BACKLOG;
            let has_store = self.store.is_some();
            let has_cluster = self.cluster.is_some();
            let turn = tokio::select! {
                n = rx.recv_many(&mut batch, BATCH), if reading => Turn::Inputs(n),
                answer = recv_store(&mut self.store), if has_store => Turn::Store(answer),
                n = recv_cluster(&mut self.cluster, &mut from_cluster), if has_cluster => Turn::Cluster(n),
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
                Turn::Shutdown => {
                    if self.cluster.is_some() {
                        self.leave_cluster().await;
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
                    // A server that never got to listen (its port taken, say)
                    // has said why in one line; it does not add this one.
                    if self.listening.load(std::sync::atomic::Ordering::Relaxed) {
                        info!(clients = self.peers.len(), "shutting down");
                    }
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
                warn!(
                    cause,
                    "the history database failed a batch: messages not yet stored are refused until it works again"
                );
                self.give_up_batch(&cause);
            }
            FromStore::Refused(cause) => {
                warn!(
                    cause,
                    "the history database refused a batch: the messages not yet stored were refused"
                );
                // Refused alone: the store is up again at once, before any
                // other input is read.
                self.give_up_batch(&cause);
                self.server.handle_store_recovered();
            }
            FromStore::Recovered => {
                self.server.handle_store_recovered();
                info!("the history database works again; messages are taken again");
            }
            FromStore::Pruned { deleted, rooms } => {
                for (room, epoch, oldest) in rooms {
                    self.server.handle_pruned_epoch(&room, &epoch, oldest);
                }
                info!(
                    deleted,
                    "retention deleted old events; they are served no more"
                );
            }
            FromStore::Read {
                ticket,
                client,
                found,
            } => self.answer_read(ticket, client, found),
        }
    }

    /// The batch in the store's hands was not stored: the core gives up
    /// every record not stored, those waiting here included.
    fn give_up_batch(&mut self, cause: &str) {
        self.storing = false;
        self.metrics.append_failed();
        self.to_store.clear();
        self.server.handle_persist_failed(cause);
    }

    /// The store read history for `client`: its answer goes before what
    /// was held for it meanwhile.
    fn answer_read(&mut self, ticket: u64, client: ClientId, found: Result<ReadPage, String>) {
        if let Err(e) = &found {
            warn!(error = %e, "the history database could not read; answering from memory");
        }
        let frames = match self.server.handle_page(ticket, found) {
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
            ToHub::Frame(id, frame) => self.server.handle_frame(now, id, frame),
            ToHub::BadFrame(id, err) => self.server.handle_bad_frame(now, id, &err),
            ToHub::Progress(id) => self.server.handle_progress(now, id),
            ToHub::Gone(id) => {
                if let Some(c) = &mut self.cluster {
                    if let Some((key, rev)) = c.claims.remove(&id) {
                        c.link.release(key, rev);
                    }
                }
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
    /// The core applies one event per output; its copies are staged and
    /// queued once the turn ends or [`STAGE_BYTES`](crate::stage::STAGE_BYTES)
    /// or [`STAGE_RUNS`](crate::stage::STAGE_RUNS) are staged, so a client
    /// closed for overflowing leaves (and its departure reaches everyone)
    /// after at most that much more was made for it.
    fn dispatch(&mut self, now: Now) {
        loop {
            let Some(out) = self.server.poll() else {
                return;
            };
            // Frames and events are staged; anything else that touches a
            // peer (a close, a held read) first queues what was staged, so
            // that it comes after them.
            if !matches!(
                out,
                Output::Send { .. }
                    | Output::Deliver { .. }
                    | Output::Persist { .. }
                    | Output::Propose { .. }
            ) {
                unstage(
                    &mut self.stage,
                    &self.budget,
                    &mut self.to_flush,
                    &mut self.overflowed,
                );
            }
            match out {
                Output::Send { to, frame, .. } => self.stage_frame(to, &frame),
                Output::Deliver {
                    event, to, with_id, ..
                } => {
                    // An event may go out in several deliveries (everyone
                    // else, then whoever parted); log it once.
                    let key = (Arc::as_ptr(&event.room) as *const u8 as usize, event.seq);
                    // Nothing before `listening on`: a node catching up with
                    // the cluster's log at start does not log it again.
                    let replaying = !self.listening.load(std::sync::atomic::Ordering::Relaxed);
                    if self.log_events && !replaying && self.last_logged != Some(key) {
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
                        let audience = if to.len() > 1 {
                            Audience::Many
                        } else {
                            Audience::One
                        };
                        match self
                            .stage
                            .encode_event(&wire, audience, self.max_frame_bytes)
                        {
                            Ok(staged) => {
                                for c in to {
                                    if let Some(peer) = self.peers.get(c) {
                                        self.stage.add(peer, &staged);
                                    }
                                }
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
                Output::Propose { events, .. } => {
                    if let Some(c) = &mut self.cluster {
                        for e in &events {
                            propose(c, e, |s| self.server.is_connected(s));
                        }
                    }
                }
                Output::Read {
                    ticket,
                    client,
                    query,
                    ..
                } if self.cluster.is_some() => {
                    if let Some(peer) = self.peers.get(&client) {
                        peer.hold(ticket);
                    }
                    if let Some(c) = &self.cluster {
                        c.link.read(ticket, client, query);
                    }
                }
                Output::Persist {
                    records, through, ..
                } if self.cluster.is_some() => {
                    let sessions = records
                        .into_iter()
                        .filter_map(|r| match r {
                            Record::Session {
                                id, nick, token, ..
                            } => Some((id, nick.to_string(), token)),
                            _ => None,
                        })
                        .collect();
                    if let Some(c) = &self.cluster {
                        c.link.store_sessions(sessions, through);
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
            if self.stage.is_full() {
                self.unstage();
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

    /// Cluster mode: hold `input` if its client waits for a nickname
    /// claim, or if it is a join (whose claim starts now); otherwise give
    /// it back to be handled.
    fn park(&mut self, input: ToHub) -> Option<ToHub> {
        let id = match &input {
            ToHub::Frame(id, _)
            | ToHub::BadFrame(id, _)
            | ToHub::Progress(id)
            | ToHub::Gone(id) => *id,
            _ => return Some(input),
        };
        let c = self.cluster.as_mut()?;
        if let Some(queue) = c.parked.get_mut(&id) {
            queue.push_back(input);
            return None;
        }
        let ToHub::Frame(_, ClientFrame::Join { nick, resume, .. }) = &input else {
            return Some(input);
        };
        if self.server.nick(id).is_some() {
            return Some(input);
        }
        // A nickname the core would refuse is refused by the core.
        let Ok(nick) = chatproto::normalize_nick(nick, self.server.config().nick_rule) else {
            return Some(input);
        };
        let key = chatproto::nick_key(&nick);
        let skeleton = chatproto::nick_skeleton(&nick);
        let resume = resume.as_deref().map(chatproto::hash_token);
        c.link.claim(id, nick, key, skeleton, resume);
        c.parked.insert(id, VecDeque::from([input]));
        None
    }

    /// Something the cluster's tasks said.
    fn heard(&mut self, now: Now, item: FromCluster) {
        match item {
            FromCluster::Open {
                room,
                epoch,
                first_seq,
                last_seq,
            } => {
                self.server.open_room(&room, &epoch, first_seq);
                if let Some(c) = &mut self.cluster {
                    if c.catch_up
                        .get(&room)
                        .is_some_and(|&to| last_seq < first_seq || to < first_seq)
                    {
                        c.catch_up.remove(&room);
                    }
                }
                self.check_caught_up();
            }
            FromCluster::Event { event, origin } => {
                let (room, seq) = (Arc::clone(&event.room), event.seq);
                if let (
                    Some(c),
                    EventBody::Presence {
                        session,
                        nick,
                        status,
                        ..
                    },
                ) = (&mut self.cluster, &event.body)
                {
                    if *status == PresenceStatus::Online {
                        c.owners.entry(*session).or_default().insert(
                            Arc::clone(&room),
                            Owner {
                                origin,
                                seq,
                                nick: nick.clone(),
                            },
                        );
                    } else if let Some(rooms) = c.owners.get_mut(session) {
                        rooms.remove(&room);
                        if rooms.is_empty() {
                            c.owners.remove(session);
                        }
                    }
                }
                if let Err(e) = self.server.handle_logged(event) {
                    warn!(error = %e, "an event of the cluster's log was not applied");
                }
                self.caught_up_to(&room, seq);
            }
            FromCluster::Skip { room, seq } => {
                // The follower said why (once).
                if let Err(e) = self.server.skip_logged(&room, seq) {
                    warn!(error = %e, "a log entry was not stepped over");
                }
                self.caught_up_to(&room, seq);
            }
            FromCluster::Claimed(claimed) => self.claimed(now, claimed),
            FromCluster::Persisted(through) => self.server.handle_persisted(through),
            FromCluster::Read {
                ticket,
                client,
                found,
            } => self.answer_read(ticket, client, found),
            FromCluster::Alive(alive) => self.clean_up_after(now, &alive),
            FromCluster::HeldUp => {
                if let Some(c) = &self.cluster {
                    let claims = c
                        .claims
                        .iter()
                        .map(|(id, (key, rev))| (*id, key.clone(), *rev))
                        .collect();
                    c.link.check_claims(claims);
                }
            }
            FromCluster::ClaimsLost(clients) => self.claims_lost(&clients),
            FromCluster::TakeOver { token, done } => {
                let claim = self
                    .server
                    .handle_resumed_elsewhere(now, &token)
                    .and_then(|client| self.cluster.as_mut()?.claims.remove(&client));
                // The close and the session's departures are queued (to
                // the connection and the publisher) before the claim is
                // given up; the departures carry the ids the resuming node
                // uses too, so the log keeps the first of each.
                self.dispatch(now);
                let _ = done.send(claim);
            }
            FromCluster::Duplicate(event) => self.server.handle_logged_duplicate(&event),
            FromCluster::Starts(starts) => {
                for (room, first, _) in &starts {
                    self.server.handle_pruned(room, *first);
                }
                // One line a look, however many rooms moved.
                let moved: Vec<&(String, u64, bool)> = starts.iter().filter(|s| s.2).collect();
                match moved.as_slice() {
                    [] => {}
                    [(room, first, _)] => info!(
                        room = room.as_str(),
                        first, "a room's stream starts later now; older events are served no more"
                    ),
                    many => info!(
                        rooms = many.len(),
                        "rooms' streams start later now; older events are served no more"
                    ),
                }
            }
        }
    }

    fn caught_up_to(&mut self, room: &str, seq: u64) {
        if let Some(c) = &mut self.cluster {
            if c.catch_up.get(room).is_some_and(|&to| seq >= to) {
                c.catch_up.remove(room);
                self.check_caught_up();
            }
        }
    }

    /// Once every room known at start is applied: accept clients.
    fn check_caught_up(&mut self) {
        if let Some(c) = &mut self.cluster {
            if c.catch_up.is_empty() {
                if let Some(tx) = c.caught_up.take() {
                    let _ = tx.send(());
                }
            }
        }
    }

    /// A join's nickname claim came back: the join goes to the core (or
    /// is refused here), then what the client sent meanwhile, in order.
    fn claimed(&mut self, now: Now, claimed: Claimed) {
        let Some(c) = &mut self.cluster else { return };
        let client = claimed.client;
        let Some(mut queue) = c.parked.remove(&client) else {
            if let Ok((key, rev)) = claimed.claim {
                c.link.release(key, rev);
            }
            return;
        };
        let join = queue.pop_front();
        let refusal = match claimed.claim {
            Ok((key, rev)) => {
                if let Some((sid, nick, hash)) = claimed.session {
                    // Begun on another node: known here from now on, and
                    // whatever that node said of it in rooms is over.
                    self.server.restore_session(now, sid, &nick, hash);
                    self.forget_elsewhere(now, sid);
                }
                if let Some(ToHub::Frame(id, frame)) = join {
                    self.server.handle_frame(now, id, frame);
                }
                let c = self.cluster.as_mut().expect("checked above");
                if self.server.nick(client).is_some() {
                    c.claims.insert(client, (key, rev));
                } else {
                    c.link.release(key, rev);
                }
                None
            }
            Err(ClaimError::Taken {
                nick, same: true, ..
            }) => Some(ServerFrame::error(
                ErrorCode::NickTaken,
                format!("the nickname {nick} is in use; choose another"),
            )),
            Err(ClaimError::Taken {
                nick, same: false, ..
            }) => Some(ServerFrame::error(
                ErrorCode::NickInvalid,
                format!("that nickname looks too much like {nick}, who is online; choose another"),
            )),
            Err(ClaimError::Unreachable(e)) => Some(ServerFrame::error(
                ErrorCode::Unavailable,
                format!("the server cannot reach its cluster ({e}); try again later"),
            )),
        };
        if let Some(frame) = refusal {
            self.send_now(client, &frame);
        }
        self.dispatch(now);
        for input in queue {
            self.handle(now, input);
            self.dispatch(now);
        }
    }

    /// `sid` resumes here: where another run said it is in a room, say it
    /// left (with the id every node would use, so it counts once), before
    /// this node says it entered again.
    fn forget_elsewhere(&mut self, now: Now, sid: SessionId) {
        let Some(c) = &mut self.cluster else { return };
        let Some(rooms) = c.owners.get(&sid) else {
            return;
        };
        let stale: Vec<(Arc<str>, Owner)> = rooms
            .iter()
            .filter(|(_, o)| o.origin != c.link.origin)
            .map(|(r, o)| (Arc::clone(r), o.clone()))
            .collect();
        for (room, owner) in stale {
            propose_gone(c, now, &room, sid, &owner);
        }
    }

    /// The runs in `alive` heartbeat: every client another run said is in
    /// a room leaves it (once every room is caught up with).
    fn clean_up_after(&mut self, now: Now, alive: &HashSet<Arc<str>>) {
        let Some(c) = &mut self.cluster else { return };
        if !c.catch_up.is_empty() {
            return;
        }
        let mine = Arc::clone(&c.link.origin);
        propose_departures(c, now, |origin| *origin != mine && !alive.contains(origin));
        c.cleaning
            .retain(|_, at| at.elapsed() < Duration::from_secs(60));
    }

    /// Stopping in cluster mode: this node's clients leave their rooms
    /// (proposed and stored, within a bound), its claims are given up, and
    /// its heartbeat goes, so the other nodes know at once.
    async fn leave_cluster(&mut self) {
        // One bound for all of it, as before the wait below was added.
        let deadline = Instant::now() + STORE_SETTLE;
        self.apply_own_proposals(deadline).await;
        let now = self.clock.now();
        let Some(c) = &mut self.cluster else { return };
        let mine = Arc::clone(&c.link.origin);
        propose_departures(c, now, |origin| *origin == mine);
        let link = Arc::clone(&c.link);
        let claims: Vec<(String, u64)> = c.claims.drain().map(|(_, v)| v).collect();
        let settle = async {
            while link.pending.load(std::sync::atomic::Ordering::Relaxed) > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            link.leave(claims).await;
        };
        let _ = tokio::time::timeout_at(deadline, settle).await;
    }

    /// Before a clean stop: wait (until `deadline` at most) until
    /// everything this node proposed is in the log and applied here (or
    /// stepped over), so that a client whose entering was still on its way
    /// is among the departures.
    async fn apply_own_proposals(&mut self, deadline: Instant) {
        let mut items = Vec::with_capacity(BATCH);
        loop {
            let Some(c) = &mut self.cluster else { return };
            let pending = c.link.pending.load(std::sync::atomic::Ordering::Relaxed);
            let acked = c.link.acked();
            let applied =
                |room: &str, seq: u64| self.server.next_logged(room).is_none_or(|next| next > seq);
            if pending == 0 && acked.iter().all(|(room, seq)| applied(room, *seq)) {
                return;
            }
            // The acknowledgements come to the publisher, not here: look
            // again every 20 ms.
            let closed = tokio::select! {
                n = recv_cluster(&mut self.cluster, &mut items) => n == 0,
                _ = tokio::time::sleep(Duration::from_millis(20)) => false,
                _ = tokio::time::sleep_until(deadline) => return,
            };
            if closed {
                return;
            }
            let now = self.clock.now();
            for item in items.drain(..) {
                self.heard(now, item);
                self.dispatch(now);
            }
            self.drain(now);
        }
    }

    /// Queue what the turn staged (see [`unstage`]), and apply the
    /// overflow policy to the queues that overflowed.
    fn unstage(&mut self) {
        unstage(
            &mut self.stage,
            &self.budget,
            &mut self.to_flush,
            &mut self.overflowed,
        );
        for id in std::mem::take(&mut self.overflowed) {
            // Gone meanwhile: nothing to close.
            if self.peers.contains_key(&id) {
                self.overflow(id);
            }
        }
    }

    /// Stage `frame` for `to`.
    fn stage_frame(&mut self, to: ClientId, frame: &ServerFrame) {
        let Some(peer) = self.peers.get(&to) else {
            return;
        };
        match self
            .stage
            .encode(frame, Audience::One, self.max_frame_bytes)
        {
            Ok(staged) => self.stage.add(peer, &staged),
            // The core builds only frames that fit.
            Err(e) => warn!(client = %to, error = %e, "a frame did not encode"),
        }
    }

    /// Queue `frame` for `to` now, after what this turn staged.
    fn send_now(&mut self, to: ClientId, frame: &ServerFrame) {
        self.stage_frame(to, frame);
        self.unstage();
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
        self.close_with(id, why.code(), why.message());
    }

    /// Replace `id`'s queue by an error with `code` and `message`, close
    /// it, and take it out of the core after the current output.
    fn close_with(&mut self, id: ClientId, code: ErrorCode, message: String) {
        if !self.kicked.insert(id) {
            return;
        }
        self.metrics.closed_for(code.as_str());
        if let Some(peer) = self.peers.get(&id) {
            match encode(&ServerFrame::error(code, message), self.max_frame_bytes) {
                Ok(bytes) => peer.kick(self.budget.track(bytes)),
                Err(_) => peer.close(),
            }
        }
        self.leaving.push(id);
    }

    /// Another node freed these clients' nicknames while this one was
    /// held up and seemed dead (and said they left their rooms): each
    /// still holding that claim is closed, and resumes by reconnecting,
    /// here or elsewhere, if its nickname is still free. Two people never
    /// hold one nickname, and a session is never in a room on this node
    /// while every other node has it gone.
    fn claims_lost(&mut self, clients: &[ClientId]) {
        let Some(c) = &mut self.cluster else { return };
        let lost: Vec<ClientId> = clients
            .iter()
            .filter(|id| c.claims.remove(id).is_some())
            .copied()
            .collect();
        for id in lost {
            let nick = self.server.nick(id).unwrap_or("(not joined)").to_owned();
            warn!(client = %id, nick, "this node seemed dead to the others, which freed this client's nickname; closing it");
            let why = "this server lost touch with the others, which took it for stopped; reconnect, and your session resumes if your nickname is still free";
            self.close_with(id, ErrorCode::Unavailable, why.to_owned());
        }
    }

    /// Write what each queued-to peer's socket takes now, never waiting. A
    /// peer whose socket broke is gone: it leaves the core next.
    fn flush_pending(&mut self) {
        self.unstage();
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
            self.unstage();
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

/// Queue what the turn staged, each peer's runs in order; queues that
/// overflow are named in `overflowed` (the caller applies the policy).
fn unstage(
    stage: &mut Stage,
    budget: &Arc<OutboundBudget>,
    to_flush: &mut Vec<Arc<Peer>>,
    overflowed: &mut Vec<ClientId>,
) {
    if stage.is_empty() {
        return;
    }
    let mut queued = 0;
    stage.take(
        |b| budget.track(b),
        |peer, bytes| {
            let id = peer.id.get().copied();
            // After a refused run, none of that peer's later ones: it is
            // closed, and must not get frames past a gap.
            if id.is_some_and(|id| overflowed.contains(&id)) {
                return;
            }
            match peer.push(bytes) {
                Push::Queued(newly) => {
                    if newly {
                        to_flush.push(peer);
                    }
                    queued += 1;
                }
                Push::Closed => {}
                Push::Overflow => overflowed.extend(id),
            }
        },
    );
    budget.add_slots(queued);
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

/// Propose the departure of every session in a room whose entering was
/// said by a run `said_by` picks, in session and room order.
fn propose_departures(c: &mut ClusterSide, now: Now, said_by: impl Fn(&Arc<str>) -> bool) {
    let mut gone: Vec<(SessionId, Arc<str>, Owner)> = c
        .owners
        .iter()
        .flat_map(|(sid, rooms)| {
            rooms
                .iter()
                .filter(|(_, o)| said_by(&o.origin))
                .map(|(room, o)| (*sid, Arc::clone(room), o.clone()))
        })
        .collect();
    gone.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    for (sid, room, owner) in gone {
        propose_gone(c, now, &room, sid, &owner);
    }
}

/// Propose `event`, with the message id that makes the log keep one copy
/// of what two nodes may both say:
///
/// * a message with an id: its session and id, so that a resend after the
///   session moved from a node that logged it is not logged twice (the
///   publisher tells the hub, which answers `duplicate`);
/// * a session that lost its connection here leaving a room where this
///   node said it entered: the id every node gives that departure (see
///   `propose_gone`), which the node it resumes on says too, maybe
///   before this one's word is applied there.
///
/// Anything else gets this run's next id. (A part while connected too: if
/// another node had said the same departure, the log would drop this one
/// and the session's answers would wait for it for ever.)
fn propose(c: &mut ClusterSide, event: &Event, connected: impl Fn(SessionId) -> bool) {
    match &event.body {
        EventBody::Msg {
            from, id: Some(id), ..
        } => {
            let id = format!("m/{}/{}", from.0, crate::cluster::hex(id.as_bytes()));
            return c.link.propose_with_id(event, id);
        }
        EventBody::Presence {
            session,
            status: PresenceStatus::Offline,
            ..
        } if !connected(*session) => {
            let mine = Arc::clone(&c.link.origin);
            // Taken out now: should the session enter again and leave
            // before this departure comes back from the log, that one is
            // another.
            let rooms = c.owners.get_mut(session);
            let owner = rooms.and_then(|r| match r.get(&event.room) {
                Some(o) if o.origin == mine => r.remove(&event.room),
                _ => None,
            });
            if let Some(owner) = owner {
                let id = gone_id(&event.room, *session, &owner);
                c.cleaning.insert(id.clone(), Instant::now());
                return c.link.propose_with_id(event, id);
            }
        }
        _ => {}
    }
    c.link.propose(event);
}

/// The message id of `sid` leaving `room` after the entry `owner` says.
fn gone_id(room: &str, sid: SessionId, owner: &Owner) -> String {
    format!("gone/{room}/{}/{}", sid.0, owner.seq)
}

/// Propose that `sid` left `room` because the run that said it entered is
/// gone, with the id every node uses for that (JetStream keeps one copy).
fn propose_gone(c: &mut ClusterSide, now: Now, room: &Arc<str>, sid: SessionId, owner: &Owner) {
    let id = gone_id(room, sid, owner);
    if c.cleaning
        .get(&id)
        .is_some_and(|at| at.elapsed() < Duration::from_secs(10))
    {
        return;
    }
    c.cleaning.insert(id.clone(), Instant::now());
    let event = Event::new(
        Arc::clone(room),
        0,
        now.wall,
        EventBody::presence(sid, owner.nick.clone(), PresenceStatus::Offline),
    );
    c.link.propose_with_id(&event, id);
}

/// The cluster's next messages (up to a batch); 0 if its tasks are gone.
async fn recv_cluster(cluster: &mut Option<ClusterSide>, into: &mut Vec<FromCluster>) -> usize {
    match cluster {
        Some(c) => c.rx.recv_many(into, BATCH).await,
        None => std::future::pending().await,
    }
}

/// The store's next answer; `None` if its thread is gone (or there is none).
async fn recv_store(store: &mut Option<StoreLink>) -> Option<FromStore> {
    match store {
        Some(link) => link.rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer whose queue holds `limit` bytes, registered as client `id`.
    async fn peer(
        id: u64,
        limit: usize,
        budget: &Arc<OutboundBudget>,
    ) -> (Arc<Peer>, std::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_, write) = server.into_split();
        let peer = Arc::new(Peer::new(write, limit, Arc::clone(budget)));
        peer.id.set(ClientId(id)).unwrap();
        (peer, client)
    }

    #[tokio::test]
    async fn after_a_refused_run_a_peer_gets_nothing_more_and_is_named_once() {
        let budget = OutboundBudget::new(1 << 20);
        let (slow, _c1) = peer(1, 600, &budget).await;
        let (fine, _c2) = peer(2, 1 << 20, &budget).await;
        let mut stage = Stage::default();
        let big = ServerFrame::notice("x".repeat(1_000));
        let small = ServerFrame::notice("y");
        // A big frame for both (too big for the slow queue), a small one
        // for the slow peer alone, then another big one for both.
        let e1 = stage.encode(&big, Audience::Many, 65_536).unwrap();
        stage.add(&slow, &e1);
        stage.add(&fine, &e1);
        let p = stage.encode(&small, Audience::One, 65_536).unwrap();
        stage.add(&slow, &p);
        let e2 = stage.encode(&big, Audience::Many, 65_536).unwrap();
        stage.add(&slow, &e2);
        stage.add(&fine, &e2);
        let (mut to_flush, mut overflowed) = (Vec::new(), Vec::new());
        unstage(&mut stage, &budget, &mut to_flush, &mut overflowed);
        assert_eq!(overflowed, [ClientId(1)]);
        assert_eq!(slow.queued(), 0, "not the small frame past the refused one");
        assert!(fine.queued() > 2_000);
        assert_eq!(to_flush.len(), 1);
    }
}
