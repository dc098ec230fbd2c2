//! The task that owns the [`Server`] core: it feeds the core what the
//! connections read, and moves the core's output into each peer's queue.
//! It never waits on a socket: writes are attempted without blocking, and a
//! peer whose socket is full is left to its own connection task.
//!
//! This file holds what the connections tell the hub, its clocks, and its
//! state (with what it keeps in cluster mode); each part of the work has a
//! file: `run` (the loop: what wakes the hub, and each turn), `dispatch`
//! (the core's output moved to where it goes), `peers` (the peers' queues
//! written, and the overflow policies), `persist` (the history database's
//! batches and answers), `reads` (read pages released to the client that
//! asked), `from_cluster` (what the cluster's tasks say, applied),
//! `claims` (joins waiting for their nickname claim), `proposals` (what
//! the node proposes to the log, departures said once), `roster` (who is
//! in a room, asked of another node and answered to one).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use chatproto::{ClientFrame, ClientId, Now, PayloadError, Record, Server, SessionId};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::args::LogText;
use crate::budget::OutboundBudget;
use crate::cluster::{Cluster, FromCluster};
use crate::peer::{Peer, QueueLimits};
use crate::stage::Stage;
use crate::store::StoreLink;

mod claims;
mod dispatch;
mod from_cluster;
mod peers;
mod persist;
mod proposals;
mod reads;
mod roster;
mod run;

/// How long shutdown waits for the store to take what was acknowledged-to-be.
const STORE_SETTLE: Duration = Duration::from_secs(10);

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
    /// A frame arrived with the end of the client's stream, read together
    /// before it was handed on (`Server::handle_last_frame`): so far only
    /// a connection's first frame, a join that resumes a session (a
    /// stale reconnect attempt, which takes no open connection over). The
    /// shell's `End` after it is not answered again.
    LastFrame(ClientId, ClientFrame),
    /// A payload arrived that is not a frame.
    BadFrame(ClientId, PayloadError),
    /// The client read a backlog queued for it: it is alive.
    Progress(ClientId),
    /// The client said its last (the end of its stream, a WebSocket
    /// close): the hub answers what it sent, then closes its peer.
    End(ClientId),
    /// The connection is finished (EOF, error, or closed by the server).
    Gone(ClientId),
    /// `/metrics` asks what the core knows.
    Snapshot(oneshot::Sender<crate::metrics::Snapshot>),
    /// `/healthz` asks whether the hub takes its input: answered as it is
    /// read, so no answer means a hub stuck, or far behind.
    Alive(oneshot::Sender<()>),
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
        Now::new(self.start.elapsed().as_millis() as u64, crate::wall_ms())
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
    /// Each peer's queue limits, and the grace of a queue past the first.
    queue: QueueLimits,
    slow_consumer_grace: Duration,
    /// Clients whose queue went past `queue.bytes`, given the grace to
    /// read it back under (see [`Hub::check_lagging`]).
    lagging: HashSet<ClientId>,
    /// When the first of them is due to be looked at again.
    next_lag_check: Option<Instant>,
    /// Clients to take out of the core after the current output: closed
    /// for overflowing, or their socket broke.
    leaving: Vec<ClientId>,
    /// Clients whose queue was replaced by their last frame: nothing more
    /// goes to them.
    kicked: HashSet<ClientId>,
    /// Each joined connection's nickname as its `welcome` gave it, for the
    /// log's `disconnected` line: a connection the core closed (a pong
    /// timeout) is forgotten there before it is gone.
    nicks: HashMap<ClientId, String>,
    /// Input is not taken (a backlog of the store's or the cluster's
    /// past its bound); the core knows.
    input_paused: bool,
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
    /// The most the outbound queues held since memory was last released.
    queued_peak: usize,
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
    /// Clients whose frame that asks to read (`enter`, `history`, ...) the
    /// core took this turn, in order: reported answered at its end, or
    /// once the store has what their answer waits behind (see
    /// [`Hub::report_reads`]).
    reads_taken: Vec<ClientId>,
    /// Those whose answer waits behind the store's batch through a ticket.
    reads_behind_store: VecDeque<(u64, ClientId)>,
    /// The ticket the store said it stored through last.
    stored_through: u64,
    /// Cluster mode: the link, and what the hub keeps for it.
    cluster: Option<ClusterSide>,
    /// Set once `listening on` is printed: events are logged from then on.
    listening: Arc<std::sync::atomic::AtomicBool>,
}

/// A joined client's nickname claim: its key and revision, and its
/// session's token hash, taken at the join. The core forgets a connection
/// it closes at once, and the claim held after that must still say, by
/// this hash, that the session is leaving (see `Hub::release_once_left`).
struct Claim {
    key: String,
    revision: u64,
    token: Option<chatproto::TokenHash>,
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
    /// Each joined client's claim.
    claims: HashMap<ClientId, Claim>,
    /// Rooms not caught up with yet, to the seq; then `caught_up` fires.
    catch_up: HashMap<String, u64>,
    /// Each room's last seq at start, kept: what the log held then is not
    /// logged again, though its deliveries may go out after `listening
    /// on` (the last ones applied are dispatched in the next turn).
    read_at_start: HashMap<String, u64>,
    caught_up: Option<oneshot::Sender<()>>,
    /// Departures proposed for stopped nodes' clients, and when.
    cleaning: HashMap<String, Instant>,
    /// Rooms whose members as the log gave them here miss some (the
    /// stream dropped events before this node read them): not answered
    /// for when another node asks (see `roster`).
    unlisted: HashSet<String>,
    /// Rooms whose members the cluster asks the other nodes about now.
    asking: HashSet<String>,
    /// Who is in a room as another node said, each given to the core
    /// once its seq's event is handed to it.
    seeds: HashMap<String, crate::cluster::Seats>,
    /// When (the hub clock's ms) the log last held an event from each run:
    /// a run whose events are still coming is not taken for gone, though
    /// this node's watch on the heartbeats has not heard it yet.
    /// (A list: there are as many runs as nodes, and most lookups find
    /// the run of the event before, first.)
    active: Vec<(Arc<str>, u64)>,
}

/// Who said a session entered a room.
#[derive(Debug, Clone)]
struct Owner {
    origin: Arc<str>,
    seq: u64,
    nick: Arc<str>,
}

impl ClusterSide {
    /// The log held an event from `origin`, applied at `now_ms` (the hub
    /// clock).
    fn heard_from(&mut self, origin: &Arc<str>, now_ms: u64) {
        let same = |run: &Arc<str>| Arc::ptr_eq(run, origin) || **run == **origin;
        match self.active.iter().position(|(run, _)| same(run)) {
            Some(0) => {}
            // The run heard last goes first.
            Some(i) => self.active.swap(0, i),
            None => self.active.insert(0, (Arc::clone(origin), now_ms)),
        }
        self.active[0].1 = now_ms;
    }

    /// Whether the log brought an event from `origin` within `within_ms`
    /// of `now_ms`.
    fn heard_lately(&self, origin: &str, now_ms: u64, within_ms: u64) -> bool {
        self.active
            .iter()
            .find(|(run, _)| **run == *origin)
            .is_some_and(|&(_, at)| now_ms.saturating_sub(at) < within_ms)
    }

    /// Read every claim of this node's clients back (the cluster closes
    /// those another node freed, see `Cluster::check_claims`; a sweep
    /// asked for while one runs follows it).
    fn check_claims(&self) {
        let claims = self
            .claims
            .iter()
            .map(|(id, claim)| (*id, claim.key.clone(), claim.revision))
            .collect();
        self.link.check_claims(claims);
    }

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
            read_at_start: catch_up.clone(),
            catch_up,
            caught_up: Some(caught_up),
            cleaning: HashMap::new(),
            unlisted: HashSet::new(),
            asking: HashSet::new(),
            seeds: HashMap::new(),
            active: Vec::new(),
        }
    }
}

impl Hub {
    /// A hub around `server`; every peer's queue is bounded by `queue`
    /// (past its `bytes` for `slow_consumer_grace` at most), and all of
    /// them together by `budget`.
    pub fn new(
        server: Server,
        clock: Clock,
        store: Option<StoreLink>,
        queue: QueueLimits,
        slow_consumer_grace: Duration,
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
            queue,
            slow_consumer_grace,
            lagging: HashSet::new(),
            next_lag_check: None,
            leaving: Vec::new(),
            kicked: HashSet::new(),
            nicks: HashMap::new(),
            input_paused: false,
            overflowed: Vec::new(),
            last_logged: None,
            log_events: tracing::enabled!(tracing::Level::INFO),
            log_text: LogText::All,
            recent: Activity::default(),
            since_release: Activity::default(),
            queued_peak: 0,
            next_trim: None,
            store,
            to_store: Vec::new(),
            to_store_through: 0,
            storing: false,
            storing_since: Instant::now(),
            metrics,
            last_counted: None,
            unanswered: Vec::new(),
            reads_taken: Vec::new(),
            reads_behind_store: VecDeque::new(),
            stored_through: 0,
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
}
