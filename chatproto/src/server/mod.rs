//! The server core: sessions, rooms and their sequenced events, with no I/O.

mod answers;
mod apply;
pub(crate) mod config;
mod decide;
pub(crate) mod durable;
pub(crate) mod event;
mod ids;
pub(crate) mod log;
mod lru;
pub(crate) mod output;
pub(crate) mod reads;
mod room;
mod session;
mod timers;
mod unloaded;
pub(crate) mod wire;

use std::collections::VecDeque;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::frame::{ClientFrame, ErrorCode, ServerFrame};
use config::ServerConfig;
use durable::TokenHash;
use event::{Event, SessionId};
use output::Kick;
use room::Room;
use session::{Conn, Session};
use timers::{Timer, Timers};

/// A room's seq from a store or a log at or past this is refused
/// ([`Server::restore_room`], [`Server::open_room`]): seqs go up by one an
/// event, so no room gets near it, and one begun near `u64::MAX` would
/// run out of numbers.
pub(crate) const SEQ_LIMIT: u64 = 1 << 62;

/// A small handle by which the [`Server`] knows a connection. Never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u64);

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The two clocks, read by the caller once per call.
///
/// `mono` drives every timer and must never go backwards (milliseconds
/// from any origin, e.g. a `std::time::Instant` taken at start); `wall`
/// only stamps events' `ts` (unix milliseconds) and may step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds.
    pub mono: u64,
    /// Unix milliseconds.
    pub wall: u64,
}

impl Now {
    /// Both clocks.
    pub fn new(mono: u64, wall: u64) -> Self {
        Now { mono, wall }
    }
}

/// A step of the ordered work queue: what `poll` turns into outputs, in
/// the order it was decided.
#[derive(Debug)]
pub(crate) enum Step {
    /// A frame for one connection.
    Send(ClientId, ServerFrame),
    /// The `welcome` of a join, built when reached so that it agrees with
    /// every event applied before it.
    Welcome {
        client: ClientId,
        lobby: bool,
        resumed: bool,
        /// On a resume: the fatal error the session's last connection was
        /// closed with.
        closed_for: Option<ErrorCode>,
    },
    /// A `history` answer, built when reached.
    History {
        client: ClientId,
        room: String,
        before: Option<u64>,
        limit: usize,
    },
    /// A `rooms` answer, built when reached.
    Rooms(ClientId),
    /// A stamped event to apply.
    Apply(Arc<Event>),
    /// Nothing after this goes out until the store holds the records up to
    /// this ticket (see [`durable`]), and with them every record handed
    /// out in the same `Persist` (the later ones need no barrier of their
    /// own).
    Barrier(u64),
    /// Close a connection.
    Close(ClientId, ErrorCode),
    /// A connection that said its last: close it (see
    /// [`Server::handle_end`]).
    End(ClientId),
    /// Ask the store (see [`reads`]).
    Read(ClientId, reads::ReadQuery, reads::Pending),
    /// Cluster mode: a room's members from another server, as of the last
    /// event applied before this step (see [`Server::seed_roster`]).
    Roster(Arc<str>, log::Roster),
    /// Cluster mode: a room's event stepped over (see
    /// [`Server::skip_logged`]): the room's seq moves to it.
    Skipped(Arc<str>, u64),
    /// Memory only: a room that held a message was forgotten, its
    /// history with it ([`Output::Forgotten`]).
    Forgotten(Arc<str>),
}

/// A joined connection the core closed, until its `Close` goes out.
#[derive(Debug)]
pub(crate) struct Closing {
    pub session: SessionId,
    pub nick: Arc<str>,
    pub token: String,
    /// Whether its `welcome` went out.
    pub welcomed: bool,
}

/// Who a delivery waiting in `poll` goes to.
#[derive(Debug)]
enum Audience {
    /// Everyone in the event's room.
    Room,
    /// The connections listed.
    List(Vec<ClientId>),
    /// One connection; with the sender's id if `true`.
    One(ClientId, bool),
}

/// The chat server as a deterministic state machine: no sockets, tasks or clock.
///
/// # Driving it
///
/// Input comes in through `handle_*` methods, most taking [`Now`] (not
/// `handle_end`, those that report what the store or the log did, nor
/// `handle_shutdown`):
///
/// * [`handle_connect`](Server::handle_connect): a connection opened; returns its [`ClientId`];
/// * [`handle_frame`](Server::handle_frame): a frame arrived;
/// * [`handle_bad_frame`](Server::handle_bad_frame): a payload arrived that was not a frame;
/// * [`handle_end`](Server::handle_end): a client ended its stream cleanly
///   and waits for its answers (then [`Output::Finish`](crate::Output::Finish));
/// * [`handle_last_frame`](Server::handle_last_frame): a frame and the end
///   of its client's stream, read together (a resuming join that takes
///   nothing over);
/// * [`handle_progress`](Server::handle_progress): a client read what was
///   queued for it (alive, though its answer to a ping may be behind that);
/// * [`handle_disconnect`](Server::handle_disconnect): a connection closed or failed;
/// * [`handle_disconnect_for`](Server::handle_disconnect_for): the shell
///   closed a connection with a fatal error of its own (its session's
///   resume says it);
/// * [`handle_timeout`](Server::handle_timeout): the deadline of
///   [`poll_timeout`](Server::poll_timeout) has passed;
/// * [`kick`](Server::kick): the shell's own policies close a connection;
/// * [`handle_shutdown`](Server::handle_shutdown): the server is stopping.
///
/// Output is drained with [`poll`](Server::poll) until it returns `None`,
/// after each `handle_*` call or after several (the outputs are the same
/// either way, in the same order, except that no event is delivered to a
/// connection that [`handle_disconnect`](Server::handle_disconnect) said
/// closed meanwhile, though answers already queued for it may still come:
/// the shell drops output for a connection it no longer has; that a
/// connection the core closed itself (a [`kick`](Server::kick), a
/// timeout, a takeover) before its [`Output::Finish`](crate::Output::Finish)
/// was polled gets none, its `Close` saying the same; that a `ping` for
/// answers held (see [`ServerConfig::held_ping_ms`]) goes ahead of
/// everything waiting, a barrier included; that a ping still
/// queued (not polled) when its pong's time is up is not judged yet: the
/// client has the whole time again from then, as for one held by the
/// store; that a
/// durable shell that takes a turn's inputs first gets their records in
/// one batch; and that a memory server forgets a room its last member
/// left, with no history, when that leaving is applied, unless an
/// entering of the room was decided before: drained late, such a room may
/// go on where drained early it would start anew, with a new epoch); then [`poll_timeout`](Server::poll_timeout)
/// says when to call [`handle_timeout`](Server::handle_timeout) (an idle
/// server sleeps). `poll` is also where stamped events are applied, one at
/// a time: an event's fan-out is one [`Output::Deliver`](crate::Output::Deliver) holding the event
/// and its recipients, or two, or none (see there), so however many events
/// wait, the shell never holds more than one event's copies unwritten.
///
/// A connection the core closes itself (a [`kick`](Server::kick), a
/// timeout, a takeover by a resume) still gets, before its
/// [`Output::Close`](crate::Output::Close), what was decided for it before
/// the close and not yet polled (its `welcome`, its answers, its own
/// entering and echoes, its rooms' events), as if polled before the close,
/// also when its session is resumed again or forgotten meanwhile, and
/// nothing after it.
///
/// # Example
///
/// ```
/// use chatproto::{ClientFrame, Now, Output, Server, ServerConfig, ServerFrame};
///
/// let mut server = Server::new(ServerConfig::default(), [7; 32]);
/// let now = Now::new(0, 1_732_400_000_000);
/// let alice = server.handle_connect(now);
/// server.handle_frame(now, alice, ClientFrame::join("alice"));
/// let mut frames = Vec::new();
/// while let Some(out) = server.poll() {
///     match out {
///         Output::Send { to, frame, .. } => frames.push((to, frame)),
///         Output::Deliver { event, to, with_id, .. } => {
///             // A shell encodes `event.wire(with_id, false)` once and
///             // writes the same bytes to each of `to`.
///             let frame = event.to_frame(with_id, false);
///             frames.extend(to.iter().map(|&c| (c, frame.clone())));
///         }
///         Output::Close { .. } => {}
///         _ => {}
///     }
/// }
/// // alice gets her welcome, then her own presence in the lobby.
/// assert!(matches!(&frames[0], (to, ServerFrame::Welcome { nick, .. }) if *to == alice && nick == "alice"));
/// assert!(matches!(&frames[1].1, ServerFrame::Presence { room: Some(room), .. } if room == "lobby"));
/// // The next deadline: alice's join timeout, which finds her joined and
/// // does nothing; her idle ping comes at 30 s.
/// assert_eq!(server.poll_timeout(), Some(10_000));
/// ```
///
/// Its `Debug` shows counts only, never a session's token (which would
/// let whoever reads a log take the session over).
pub struct Server {
    config: ServerConfig,
    rng: StdRng,
    next_client: u64,
    next_session: u64,
    conns: ids::IdMap<ClientId, Conn>,
    /// Connections the core closed (a kick, a timeout, a takeover) whose
    /// `Close` has not gone out yet: what their answers queued before it
    /// (a `welcome`, a `history` page, the room list) are built from, as
    /// they would have been had the shell drained before the close.
    closing: ids::IdMap<ClientId, Closing>,
    sessions: ids::IdMap<SessionId, Session>,
    /// The fatal error each detached session's last connection was closed
    /// with, by the core or the shell (see
    /// [`handle_disconnect_for`](Server::handle_disconnect_for)), for the
    /// `welcome` of its resume to say (`closed_for`). Only sessions that
    /// have one are here.
    closed_for: ids::IdMap<SessionId, ErrorCode>,
    tokens: std::collections::HashMap<durable::TokenHash, SessionId>,
    by_key: ids::StrMap<SessionId>,
    by_skeleton: ids::StrMap<SessionId>,
    rooms: ids::StrMap<Room>,
    /// The rooms each connection is in the fan-out of (`Room::members`):
    /// what it leaves at once when it closes. Its session's rooms do not
    /// say it: a room it parted stays in this list until the part is
    /// applied.
    fanout_of: ids::IdMap<ClientId, Vec<Arc<str>>>,
    steps: VecDeque<Step>,
    /// Frames an applied event put before its own delivery (an `entered`
    /// and its replay), sent first.
    front: VecDeque<Step>,
    /// The deliveries of the event applied last.
    pending: VecDeque<Audience>,
    /// The event applied last: what `Output::Deliver` borrows.
    current: Option<Arc<Event>>,
    /// Scratch for a `Deliver` to a list, and a spare buffer for the next.
    list: Vec<ClientId>,
    spare: Vec<ClientId>,
    timers: Timers,
    /// What every room's history holds together (see `event_bytes`).
    history_bytes: usize,
    /// Rooms forgotten at the cap of rooms (or of stored rooms) so far.
    rooms_forgotten: u64,
    /// Rooms resting in the store, out of memory (durable servers).
    unloaded: unloaded::Unloaded,
    /// The rooms in the order they were last used, to forget the least
    /// recently used first.
    order: lru::Order,
    /// Events applied and rooms restored so far: the clock of each room's
    /// `touched`, which orders the rooms by when they were last used.
    applied: u64,
    /// Sessions in the order their connections ended, each with the
    /// number of that detaching (`detaches`); an entry whose session has
    /// been resumed, has expired or was detached again since is stale and
    /// counts for nothing.
    detached: VecDeque<(SessionId, u64)>,
    /// Sessions detached so far.
    detaches: u64,
    /// What must be stored before outputs go (when durable).
    gate: durable::Gate,
    /// How many times output stopped at a barrier, the store not done:
    /// what tells a ping that waited for the store (see `Conn::ping_late`).
    barrier_stops: u64,
    /// The shell takes no input now (see
    /// [`handle_input_paused`](Server::handle_input_paused)), since
    /// `paused_since` (monotonic ms).
    input_paused: bool,
    paused_since: u64,
    /// How long the shell's input was paused in all, pauses that ended
    /// (see [`paused_ms`](Server::paused_ms)).
    paused_before: u64,
    /// Pong and join timers that came due while input was paused: moved
    /// here (each connection keeps at most one of each), and armed again
    /// when the pause ends, for what is left of their time.
    held_timers: Vec<Timer>,
    /// Answers held in sessions behind their events on the way through
    /// the log (cluster mode): counted in
    /// [`outputs_waiting`](Server::outputs_waiting).
    deferred: usize,
    /// Questions to the store not answered yet, by ticket.
    reads: ids::IdMap<u64, (ClientId, reads::Pending)>,
    next_read: u64,
    /// Events decided but not yet numbered by the log (cluster mode).
    proposed: Vec<Arc<Event>>,
    /// Connections to send a `ping` to ahead of everything waiting, their
    /// answers held past [`held_ping_ms`](ServerConfig::held_ping_ms)
    /// (see `Timer::Held`): at most one each per interval.
    keepalives: VecDeque<ClientId>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("connections", &self.conns.len())
            .field("sessions", &self.sessions.len())
            .field("rooms", &self.rooms.len())
            .field("outputs_waiting", &self.outputs_waiting())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server with `config`; `seed` makes the session tokens and room
    /// epochs (give it 32 bytes from the operating system's random source:
    /// tokens are only unguessable if the seed is). The standard library
    /// has no call for those bytes; chatserver and
    /// `examples/tiny_server.rs` take them with the `getrandom` crate
    /// (`getrandom::fill(&mut seed)`). A fixed seed, as
    /// in the doc examples, is for tests only: every run makes the same
    /// tokens.
    pub fn new(config: ServerConfig, seed: [u8; 32]) -> Self {
        Server {
            config: config.sanitized(),
            rng: StdRng::from_seed(seed),
            next_client: 0,
            next_session: 0,
            conns: Default::default(),
            closing: Default::default(),
            sessions: Default::default(),
            closed_for: Default::default(),
            tokens: Default::default(),
            by_key: Default::default(),
            by_skeleton: Default::default(),
            rooms: Default::default(),
            fanout_of: Default::default(),
            steps: VecDeque::new(),
            front: VecDeque::new(),
            pending: VecDeque::new(),
            current: None,
            list: Vec::new(),
            spare: Vec::new(),
            timers: Timers::default(),
            history_bytes: 0,
            rooms_forgotten: 0,
            unloaded: Default::default(),
            order: Default::default(),
            applied: 0,
            detached: VecDeque::new(),
            detaches: 0,
            gate: durable::Gate::default(),
            barrier_stops: 0,
            input_paused: false,
            paused_since: 0,
            paused_before: 0,
            held_timers: Vec::new(),
            deferred: 0,
            reads: Default::default(),
            next_read: 0,
            proposed: Vec::new(),
            keepalives: VecDeque::new(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// How many outputs are decided but not yet given by
    /// [`poll`](Server::poll): answers and events waiting behind a
    /// [`Persist`](crate::Output::Persist) not yet reported stored (or, in
    /// cluster mode, proposals not yet back from the log). A shell stops
    /// taking input past a bound of its own, so that a stalled store cannot
    /// make this grow without end (a `pong` per `ping` waits there too).
    pub fn outputs_waiting(&self) -> usize {
        self.steps.len() + self.deferred + self.keepalives.len()
    }

    /// How many connections are open, joined or not.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// How many rooms were forgotten so far, history and all, to make way
    /// for a new one: at the cap of rooms ([`ServerConfig::max_rooms`])
    /// a room nobody was in (the least recently used of those that never
    /// held a message, or if there is none, of the others); with
    /// [`ServerConfig::durable`], a room that held a message is not
    /// forgotten there but unloaded ([`Server::rooms_unloaded`]), and
    /// forgotten only past [`ServerConfig::max_stored_rooms`] (from the
    /// store too).
    pub fn rooms_forgotten(&self) -> u64 {
        self.rooms_forgotten
    }

    /// How many connections have joined.
    pub fn members(&self) -> usize {
        self.conns.values().filter(|c| c.session.is_some()).count()
    }

    /// The nickname `client` joined as, if it has.
    pub fn nick(&self, client: ClientId) -> Option<&str> {
        let sid = self.conns.get(&client)?.session?;
        self.sessions.get(&sid).map(|s| &*s.nick)
    }

    /// The session `client` joined as, if it has.
    pub fn session_id_of(&self, client: ClientId) -> Option<SessionId> {
        self.conns.get(&client)?.session
    }

    /// Whether `session` has a connection to this server now.
    pub fn is_connected(&self, session: SessionId) -> bool {
        self.sessions
            .get(&session)
            .is_some_and(|s| s.conn.is_some())
    }

    /// The connection `session` has to this server now, if any.
    pub fn connection_of(&self, session: SessionId) -> Option<ClientId> {
        self.sessions.get(&session)?.conn
    }

    /// The hash of the token of the session `client` joined as (what
    /// another cluster node names the session by when it asks to take it
    /// over); `None` before it joined.
    pub fn token_hash_of(&self, client: ClientId) -> Option<TokenHash> {
        let sid = self.conns.get(&client)?.session?;
        Some(self.sessions.get(&sid)?.token_hash)
    }

    /// The nicknames online, in no particular order.
    pub fn online(&self) -> impl Iterator<Item = &str> + '_ {
        self.sessions
            .values()
            .filter(|s| s.conn.is_some())
            .map(|s| &*s.nick)
    }

    /// The latest seq applied in `room` (0 if it does not exist). The
    /// name is compared as the protocol does, after ASCII lower-casing:
    /// `seq("Lobby")` is `seq("lobby")`.
    pub fn seq(&self, room: &str) -> u64 {
        match self.rooms.get(room) {
            Some(r) => r.seq,
            None if room.bytes().any(|b| b.is_ascii_uppercase()) => self
                .rooms
                .get(&room.to_ascii_lowercase())
                .map_or(0, |r| r.seq),
            None => 0,
        }
    }

    /// The rooms that exist, with how many of this server's connections
    /// are in each (in cluster mode, those on other servers are not
    /// counted here; the `rooms` answer to clients counts them).
    pub fn rooms(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        self.rooms
            .iter()
            .map(|(n, r)| (n.as_str(), r.members.len()))
    }

    /// A connection opened. It must send `join` within the join timeout.
    pub fn handle_connect(&mut self, now: Now) -> ClientId {
        let id = ClientId(self.next_client);
        self.next_client += 1;
        let mut conn = Conn::new(now.mono);
        conn.join_paused = self.paused_ms(now.mono);
        self.conns.insert(id, conn);
        self.timers.arm(
            now.mono.saturating_add(self.config.join_timeout_ms),
            Timer::Join(id),
        );
        id
    }

    /// `client`'s connection closed or failed. Its session leaves every
    /// room it was in (everyone there sees it go, but in a room past
    /// [`presence_fanout_max`](crate::ServerConfig::presence_fanout_max),
    /// where nobody is told) and can be resumed within the resume window.
    /// No event is delivered to it from here on, also one the core was
    /// closing (its `Close` not polled yet). Unknown clients are ignored.
    pub fn handle_disconnect(&mut self, now: Now, client: ClientId) {
        self.disconnect(now, client, None);
    }

    /// [`handle_disconnect`](Server::handle_disconnect) for a connection
    /// the shell closed itself with the fatal error `code` (its own
    /// policies, a [`Kick`]: `slow_consumer`, `rate_limited`, a framing
    /// error), whether or not that `error` frame could be written: the
    /// `welcome` of the session's resume says `code` as its `closed_for`
    /// (PROTOCOL.md 5.1), so the client learns why even if the frame never
    /// reached it.
    pub fn handle_disconnect_for(&mut self, now: Now, client: ClientId, code: ErrorCode) {
        self.disconnect(now, client, Some(code));
    }

    fn disconnect(&mut self, now: Now, client: ClientId, code: Option<ErrorCode>) {
        // Nothing more can reach it: out of every room's fan-out now, and,
        // if the core was closing it, nothing more is built for it.
        self.out_of_fanout(client);
        self.closing.remove(&client);
        let code = code.filter(|c| *c != ErrorCode::ResumedElsewhere);
        self.drop_conn(now, client, true, code);
    }

    /// `client` will send nothing more: its stream ended cleanly (the
    /// other side's FIN, a WebSocket close) after the frames already
    /// handed to [`handle_frame`](Server::handle_frame). Everything those
    /// frames asked for is answered first (a `welcome`, a `pong`, an
    /// echo: held for the store or, in a cluster, for the log, as any
    /// answer is), then [`Output::Finish`](crate::Output::Finish) says to
    /// close it. The connection stays in its rooms until the shell, having
    /// closed it, calls [`handle_disconnect`](Server::handle_disconnect).
    /// Unknown clients are ignored.
    ///
    /// A shell that calls `handle_disconnect` at once instead loses the
    /// answers still on their way to a client that sent its last frames
    /// and half-closed (a script piping a few lines into a socket).
    ///
    /// It takes no [`Now`]: an end is no sign of life (a client that will
    /// send nothing more cannot answer a ping, so its timers run on as
    /// they were: one whose answers wait too long is closed as any), and
    /// nothing is stamped.
    ///
    /// Only the first end of a connection counts: one told by
    /// [`handle_last_frame`](Server::handle_last_frame) already is not
    /// answered again.
    pub fn handle_end(&mut self, client: ClientId) {
        if let Some(c) = self.conns.get_mut(&client) {
            if !std::mem::replace(&mut c.ended, true) {
                self.answer(client, Step::End(client));
            }
        }
    }

    /// `frame`, and then the end of `client`'s stream, read together
    /// before the frame was handed over: as
    /// [`handle_frame`](Server::handle_frame) followed by
    /// [`handle_end`](Server::handle_end), except that a `join` resuming
    /// a session whose connection is still open does not take it over
    /// (PROTOCOL.md 5.1): a connection that has ended cannot continue the
    /// session, and closing the open one with `resumed_elsewhere` would
    /// only end it for nothing. Such a join is answered as a join for a
    /// nickname in use is (`nick_taken`). This is a client's reconnect
    /// attempt that gave up waiting for its `welcome` and closed, its join
    /// queued with its end while the server was stalled (stopped, or a
    /// paused VM), then read after a newer connection of the same client
    /// had resumed the session. A shell need only look for the end after
    /// a connection's first frame, when it is a join with `resume`.
    /// Unknown clients are ignored; so is a frame after the end was told
    /// (nothing comes after an end: it is not answered again either).
    pub fn handle_last_frame(&mut self, now: Now, client: ClientId, frame: ClientFrame) {
        let Some(c) = self.conns.get_mut(&client) else {
            return;
        };
        if std::mem::replace(&mut c.ended, true) {
            return;
        }
        self.handle_frame(now, client, frame);
        self.answer(client, Step::End(client));
    }

    /// The shell saw `client` read what was queued for it (its socket took
    /// bytes after being full). That proves it alive like a frame from it
    /// would: a ping it has not answered yet no longer times it out, since
    /// the ping may be waiting behind the backlog it is reading.
    pub fn handle_progress(&mut self, now: Now, client: ClientId) {
        if let Some(c) = self.conns.get_mut(&client) {
            c.last_heard = now.mono;
            c.ping_sent_at = None;
        }
    }

    /// Close `client` for a reason the shell decided (see [`Kick`]): it
    /// gets the error frame, then [`Output::Close`](crate::Output::Close), and leaves its rooms.
    /// What was decided for it before and not yet polled (its `welcome`,
    /// answers, events) still comes first, as if polled before the kick.
    pub fn kick(&mut self, now: Now, client: ClientId, why: Kick) {
        if !self.conns.contains_key(&client) {
            return;
        }
        self.close_with(now, client, why.frame());
    }

    /// A server that shares rooms with this one (§5.9 of PROTOCOL.md) is
    /// resuming the session whose token hashes to `token`, and that
    /// session's connection is here: close it with `resumed_elsewhere`
    /// (its session leaves its rooms and waits to be resumed, as after any
    /// disconnect). The connection closed, if one was open.
    pub fn handle_resumed_elsewhere(&mut self, now: Now, token: &TokenHash) -> Option<ClientId> {
        let client = self.live_conn_of(token, None)?;
        self.close_with(now, client, resumed_elsewhere());
        Some(client)
    }

    /// The open connection of the session whose token hashes to `token`,
    /// if that session's nickname has the identity `key` (any, if `None`).
    fn live_conn_of(&self, token: &TokenHash, key: Option<&str>) -> Option<ClientId> {
        let s = &self.sessions[self.tokens.get(token)?];
        match key {
            Some(key) if s.key != key => None,
            _ => s.conn,
        }
    }

    /// The server is stopping: send every connection a `notice` with `text`.
    /// The caller then writes out what is queued and closes every connection.
    pub fn handle_shutdown(&mut self, text: &str) {
        let mut ids: Vec<ClientId> = self.conns.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.steps
                .push_back(Step::Send(id, ServerFrame::notice(text)));
        }
    }

    /// `room` was used or made (or restored): note it in the order of use.
    fn note_used(&mut self, room: &str) {
        if let Some(r) = self.rooms.get(room) {
            if self.order.used(r, self.rooms.len()) {
                self.order.sweep(&self.rooms);
            }
        }
    }

    /// Send `error` to `client`, close it, and let its session leave.
    fn close_with(&mut self, now: Now, client: ClientId, error: ServerFrame) {
        let ServerFrame::Error { code, .. } = &error else {
            return;
        };
        let code = *code;
        // What waited for the log goes first; the connection is closing.
        if let Some(s) = self.session_of(client) {
            let deferred = std::mem::take(&mut s.deferred);
            s.in_flight.clear();
            s.resent.clear();
            self.deferred = self.deferred.saturating_sub(deferred.len());
            self.steps
                .extend(deferred.into_iter().map(|(_, step)| step));
        }
        self.steps.push_back(Step::Send(client, error));
        self.steps.push_back(Step::Close(client, code));
        // A takeover's new connection resumes the session at once: it is
        // not told of its own taking over.
        let said = (code != ErrorCode::ResumedElsewhere).then_some(code);
        self.drop_conn(now, client, false, said);
    }

    /// Forget the connection; its session (if any) leaves its rooms and
    /// releases its nickname, and waits out the resume window. `gone`: the
    /// shell said it closed (nothing more can reach it), rather than the
    /// core closing it after what is queued for it. `closed_for`: the fatal
    /// error it was closed with, for the session's resume to say.
    fn drop_conn(&mut self, now: Now, client: ClientId, gone: bool, closed_for: Option<ErrorCode>) {
        let Some(conn) = self.conns.remove(&client) else {
            return;
        };
        let Some(sid) = conn.session else {
            return;
        };
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if !gone {
            // Until its `Close` goes out it gets what was decided before,
            // as if the shell had drained then. Its session may be
            // forgotten meanwhile (past `max_detached_sessions`): what a
            // `welcome` says is kept.
            let closing = Closing {
                session: sid,
                nick: s.nick.clone(),
                token: s.token.clone(),
                welcomed: conn.welcomed,
            };
            self.closing.insert(client, closing);
        }
        s.conn = None;
        s.ended_at = Some(now.mono);
        match closed_for {
            Some(code) => self.closed_for.insert(sid, code),
            None => self.closed_for.remove(&sid),
        };
        s.in_flight.clear();
        s.resent.clear();
        self.deferred = self.deferred.saturating_sub(s.deferred.len());
        s.deferred.clear();
        let (key, skeleton, nick) = (s.key.clone(), s.skeleton.clone(), s.nick.clone());
        let mut rooms: Vec<String> = s.rooms.drain().map(|(r, _)| r).collect();
        // Their presences are still on their way: each must find its own
        // `enter` gone, not take one a resuming connection makes next
        // (answered on this connection if it is closing, not gone).
        for e in s.entering.iter_mut() {
            if let Some(req) = e.req.take() {
                e.closed = (!gone).then_some((client, req));
            }
        }
        rooms.sort_unstable();
        if self.by_key.get(&key) == Some(&sid) {
            self.by_key.remove(&key);
        }
        if self.by_skeleton.get(&skeleton) == Some(&sid) {
            self.by_skeleton.remove(&skeleton);
        }
        // A connection gone left every room's audience already (see
        // `out_of_fanout`); one being closed gets what comes before its
        // `Close`, and leaves then.
        for room in rooms {
            self.stamp_leaving(now, &room, sid, nick.clone(), client);
        }
        self.record_attached(sid, false);
        self.detach_timer(sid, now);
        self.note_detached(sid);
    }

    /// `sid` waits to be resumed: past `max_detached_sessions` waiting,
    /// the one waiting longest is forgotten. Only sessions still waiting
    /// count (not entries for those resumed, expired or detached again).
    pub(crate) fn note_detached(&mut self, sid: SessionId) {
        self.detaches += 1;
        let n = self.detaches;
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.detach = n;
        }
        self.detached.push_back((sid, n));
        let sessions = &self.sessions;
        let waiting = |&(sid, n): &(SessionId, u64)| {
            sessions
                .get(&sid)
                .is_some_and(|s| s.conn.is_none() && s.detach == n)
        };
        while self.detached.front().is_some_and(|e| !waiting(e)) {
            self.detached.pop_front();
        }
        if self.detached.len() <= self.config.max_detached_sessions {
            return;
        }
        self.detached.retain(waiting);
        while self.detached.len() > self.config.max_detached_sessions {
            let Some((old, _)) = self.detached.pop_front() else {
                break;
            };
            if let Some(s) = self.sessions.remove(&old) {
                self.closed_for.remove(&old);
                self.tokens.remove(&s.token_hash);
                self.record_session_forgotten(old);
            }
        }
    }

    /// The session `client` joined as, for an answer queued to it: also
    /// while the core closes it (until its `Close` goes out).
    pub(crate) fn answered_session(&self, client: ClientId) -> Option<SessionId> {
        match self.conns.get(&client) {
            Some(c) => c.session,
            None => self.closing.get(&client).map(|k| k.session),
        }
    }

    /// Whether `client`'s `welcome` went out (also while the core closes
    /// it): nothing of its session may come before.
    pub(crate) fn welcomed(&self, client: ClientId) -> bool {
        match self.conns.get(&client) {
            Some(c) => c.welcomed,
            None => self.closing.get(&client).is_some_and(|k| k.welcomed),
        }
    }

    /// `client`'s `Close` went out: what was decided before it is all
    /// told, and it is out of every room's fan-out.
    fn closed(&mut self, client: ClientId) {
        self.closing.remove(&client);
        self.out_of_fanout(client);
    }

    /// `client` is closed: out of the fan-out of every room it is in, at
    /// once, so that no event applied before its leaving (held by the
    /// store, decided in the same turn, or on its way through a
    /// cluster's log) lists it. In cluster mode its session stays in each
    /// room's roster until that leaving is applied, which then takes out
    /// no connection. A room it parted is among them until the part is
    /// applied.
    fn out_of_fanout(&mut self, client: ClientId) {
        let Some(rooms) = self.fanout_of.remove(&client) else {
            return;
        };
        for name in rooms {
            if let Some(r) = self.rooms.get_mut(&*name) {
                r.remove_conn(client);
            }
        }
    }

    /// The session `client` joined as.
    fn session_of(&mut self, client: ClientId) -> Option<&mut Session> {
        let sid = self.conns.get(&client)?.session?;
        self.sessions.get_mut(&sid)
    }

    /// The `welcome` of `client`'s join, if still queued, says the join
    /// entered no lobby (its enter of lobby refused, at the join or later
    /// by a cluster's log, before the welcome goes out).
    pub(crate) fn welcome_without_lobby(&mut self, client: ClientId) {
        for step in &mut self.steps {
            if let Step::Welcome {
                client: c, lobby, ..
            } = step
            {
                if *c == client {
                    *lobby = false;
                }
            }
        }
    }

    /// Queue `step`, an answer to `client`: in cluster mode it waits
    /// behind the client's events that are still on their way through the
    /// log, and its resends that wait for them (answers go out in the
    /// order the frames came).
    pub(crate) fn answer(&mut self, client: ClientId, step: Step) {
        if self.config.cluster {
            if let Some(s) = self.session_of(client) {
                if !s.in_flight.is_empty() || !s.resent.is_empty() {
                    s.deferred.push_back((s.places, step));
                    s.places += 1;
                    self.deferred += 1;
                    return;
                }
            }
        }
        self.steps.push_back(step);
    }

    /// A new unguessable token (128 random bits, hex).
    fn token(&mut self) -> String {
        let (a, b) = (self.rng.next_u64(), self.rng.next_u64());
        format!("{a:016x}{b:016x}")
    }
}

/// What closes a connection whose session a newer connection resumed.
pub(crate) fn resumed_elsewhere() -> ServerFrame {
    ServerFrame::error(
        ErrorCode::ResumedElsewhere,
        "your session was resumed on another connection, which continues it; \
         this one is closed (do not reconnect it automatically)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientFrame, Output};

    /// The token of the `welcome` `client` got, reading everything out.
    fn welcome_token(server: &mut Server, client: ClientId) -> String {
        let mut token = None;
        while let Some(out) = server.poll() {
            if let Output::Send {
                to,
                frame: ServerFrame::Welcome { session, .. },
                ..
            } = out
            {
                if to == client {
                    token = session;
                }
            }
        }
        token.expect("welcomed")
    }

    fn session_timers(server: &Server) -> usize {
        let all = server.timers.iter();
        all.filter(|t| matches!(t, Timer::Session(_))).count()
    }

    /// Many rooms, a small history budget and a small cap of rooms, with
    /// clients entering, parting, talking and leaving at random: every
    /// room the order of use gives for shedding history and for the cap
    /// is the one a look at every room finds (`debug_assert`s in
    /// `shed_history` and `forget_an_empty_room`, which this debug build
    /// runs at each), and the budget holds.
    #[test]
    fn the_order_of_use_picks_the_rooms_a_full_look_would() {
        let config = ServerConfig {
            max_rooms: 40,
            max_rooms_per_client: 8,
            history_bytes_total: 6_000,
            history_per_room: 6,
            ..ServerConfig::default()
        };
        let budget = config.history_bytes_total;
        let mut server = Server::new(config, [3; 32]);
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut now = Now::new(0, 1_732_400_000_000);
        let mut clients: Vec<Option<ClientId>> = vec![None; 12];
        let (mut fullest, mut most_rooms) = (0, 0);
        for step in 0..20_000 {
            now = Now::new(now.mono + 1, now.wall + 1);
            let slot = next(clients.len() as u64) as usize;
            let frame = match clients[slot] {
                None => {
                    let c = server.handle_connect(now);
                    clients[slot] = Some(c);
                    (c, ClientFrame::join_v2(format!("n{slot}"), vec![], None))
                }
                Some(c) => {
                    let room = format!("r{}", next(60));
                    match next(10) {
                        0 => {
                            server.handle_disconnect(now, c);
                            clients[slot] = None;
                            continue;
                        }
                        1 | 2 => (c, ClientFrame::enter(room, None)),
                        3 => (c, ClientFrame::Part { room }),
                        _ => {
                            let text = "x".repeat(next(300) as usize);
                            (c, ClientFrame::msg_in(room, vec![], text, None))
                        }
                    }
                }
            };
            server.handle_frame(now, frame.0, frame.1);
            while server.poll().is_some() {}
            assert!(
                server.history_bytes <= budget,
                "step {step}: {}",
                server.history_bytes
            );
            fullest = fullest.max(server.history_bytes);
            most_rooms = most_rooms.max(server.rooms.len());
        }
        // Both forgettings were needed (or this tested nothing).
        assert!(fullest > budget - 600, "{fullest}");
        assert_eq!(most_rooms, 40);
    }

    /// A client reconnecting in a loop within its resume window: one
    /// timer for its session, not one per lost connection (which a window
    /// of hours would have let grow without bound), and the session still
    /// expires at the end of the window after its last connection.
    #[test]
    fn a_session_detached_again_and_again_keeps_one_timer() {
        let window = 60_000;
        let config = ServerConfig {
            resume_window_ms: window,
            ..ServerConfig::default()
        };
        let mut server = Server::new(config, [7; 32]);
        let mut now = Now::new(0, 1_732_400_000_000);
        let first = server.handle_connect(now);
        server.handle_frame(now, first, ClientFrame::join_v2("alice", vec![], None));
        let mut token = welcome_token(&mut server, first);
        server.handle_disconnect(now, first);
        for _ in 0..1_000 {
            now = Now::new(now.mono + 10, now.wall + 10);
            let again = server.handle_connect(now);
            let join = ClientFrame::join_v2("alice", vec![], Some(token.clone()));
            server.handle_frame(now, again, join);
            token = welcome_token(&mut server, again);
            server.handle_disconnect(now, again);
            server.handle_timeout(now);
        }
        assert_eq!(session_timers(&server), 1);
        let last_end = now.mono;
        // Past the first connection's window, not the last one's: alive.
        server.handle_timeout(Now::new(window + 1, now.wall));
        assert_eq!(session_timers(&server), 1);
        assert_eq!(server.sessions.len(), 1);
        // Past the last one's: gone, and so is its timer.
        server.handle_timeout(Now::new(last_end + window, now.wall));
        assert_eq!((session_timers(&server), server.sessions.len()), (0, 0));
    }

    /// Cluster mode: a session parts and enters a room again and again,
    /// and the log brings back its enterings but steps over every leaving
    /// (as it does an entry it cannot read; a leaving another server's copy
    /// of the same departure was kept for is never brought back either).
    /// Its notes of leavings on their way stay bounded; the newest is
    /// still noted, and taken when its leaving is applied.
    /// In a cluster a session's second entering or leaving of a room is
    /// stamped a millisecond after its first: at the wall clock's end it
    /// stays there (a debug build panicked on the overflow).
    #[test]
    fn enterings_and_leavings_stamped_at_the_clocks_end_do_not_overflow() {
        let config = ServerConfig {
            cluster: true,
            ..ServerConfig::default()
        };
        let mut server = Server::new(config, [6; 32]);
        let now = Now::new(0, u64::MAX);
        let alice = server.handle_connect(now);
        let join = ClientFrame::join_v2("alice", vec!["lobby".into()], None);
        server.handle_frame(now, alice, join);
        let mut proposed = Vec::new();
        for frame in [
            ClientFrame::enter("rust", None),
            ClientFrame::part("rust"),
            ClientFrame::enter("rust", None),
            ClientFrame::part("rust"),
        ] {
            server.handle_frame(now, alice, frame);
            while let Some(out) = server.poll() {
                if let Output::Propose { events } = out {
                    proposed.extend(events.iter().map(|e| (e.room.to_string(), e.ts)));
                }
            }
        }
        assert!(
            proposed
                .iter()
                .any(|(room, ts)| room == "rust" && *ts == u64::MAX),
            "{proposed:?}"
        );
    }

    #[test]
    fn a_sessions_leavings_the_log_never_brings_back_are_not_kept_for_ever() {
        let config = ServerConfig {
            cluster: true,
            ..ServerConfig::default()
        };
        let mut server = Server::new(config, [5; 32]);
        let mut seq = 0;
        let mut now = Now::new(0, 1_700_000_000_000);
        // What the server proposed, each numbered as the log would; its
        // leavings stepped over unless `apply_leavings`.
        let mut settle = |server: &mut Server, apply_leavings: bool| {
            let mut proposed = Vec::new();
            while let Some(out) = server.poll() {
                if let Output::Propose { events } = out {
                    proposed.extend(events);
                }
            }
            for e in proposed {
                server.open_room(&e.room, "epoch", 1);
                seq += 1;
                let leaving = matches!(
                    e.body,
                    event::EventBody::Presence {
                        status: crate::PresenceStatus::Offline,
                        ..
                    }
                );
                if leaving && !apply_leavings {
                    server.skip_logged(&e.room, seq).unwrap();
                } else {
                    let mut e = Event::clone(&e);
                    e.seq = seq;
                    server.handle_logged(e).unwrap();
                }
            }
            while server.poll().is_some() {}
        };
        let alice = server.handle_connect(now);
        let join = ClientFrame::join_v2("alice", vec!["lobby".into()], None);
        server.handle_frame(now, alice, join);
        settle(&mut server, false);
        let sid = server.session_id_of(alice).unwrap();
        let rounds = session::MAX_LEAVING_NOTES * 3;
        for _ in 0..rounds {
            now.wall += 1;
            server.handle_frame(now, alice, ClientFrame::part("lobby"));
            server.handle_frame(now, alice, ClientFrame::enter("lobby", None));
            settle(&mut server, false);
        }
        let notes = server.sessions[&sid].leaving.len();
        assert_eq!(notes, session::MAX_LEAVING_NOTES, "after {rounds} parts");

        // The newest part's note is there, and its leaving, applied, takes
        // it and alice's connection out of the room.
        now.wall += 1;
        server.handle_frame(now, alice, ClientFrame::part("lobby"));
        let last = now.wall;
        let s = &server.sessions[&sid];
        assert_eq!(s.leaving.back().map(|l| l.ts), Some(last));
        settle(&mut server, true);
        let s = &server.sessions[&sid];
        assert!(s.leaving.iter().all(|l| l.ts != last), "{:?}", s.leaving);
        assert_eq!(server.rooms["lobby"].conn_of(sid), None);
    }
}
