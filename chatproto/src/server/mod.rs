//! The server core: sessions, rooms and their sequenced events, with no I/O.

mod answers;
mod apply;
pub(crate) mod config;
mod connections;
mod decide;
pub(crate) mod durable;
pub(crate) mod event;
mod ids;
mod inspect;
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

use crate::frame::{ErrorCode, ServerFrame};
use config::ServerConfig;
use event::{Event, SessionId};
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
///   a frame handed after it is ignored;
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
    /// Events this server's connected sessions proposed that the log has
    /// not handed back (nor said it held or refused) yet, kept in their
    /// sessions (`Session::in_flight`; cluster mode): counted in
    /// [`outputs_waiting`](Server::outputs_waiting) too.
    on_the_way: usize,
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
            on_the_way: 0,
            reads: Default::default(),
            next_read: 0,
            proposed: Vec::new(),
            keepalives: VecDeque::new(),
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
mod tests;
