//! The server core's settings: every limit a peer can run into.

use crate::codec::{DEFAULT_MAX_FRAME_BYTES, MIN_MAX_FRAME_BYTES};
use crate::frame::Limits;
use crate::nick::NickRule;

/// The default for [`ServerConfig::max_recipients`].
pub const DEFAULT_MAX_RECIPIENTS: usize = 64;

/// The default for [`ServerConfig::id_window`], and the window a client
/// may take a server that does not announce one to have.
pub const DEFAULT_ID_WINDOW: usize = 1_024;

/// The default for [`ServerConfig::held_ping_ms`]: well inside the
/// patience of chatproto's [`Client`](crate::Client) (a ping after 15 s
/// heard nothing, dead 15 s later) and of chatserver's web page (a ping
/// 3 s after a message left unanswered, dead 10 s later).
pub const DEFAULT_HELD_PING_MS: u64 = 5_000;

/// The default for [`ServerConfig::history_scan`].
pub const DEFAULT_HISTORY_SCAN: usize = 10_000;

/// The room a v1 client is in, and the default room of a `msg`.
pub const LOBBY: &str = "lobby";

/// The server core's settings. Times are in milliseconds of the monotonic
/// clock ([`Now::mono`](crate::Now)); `u64::MAX` means never. A value
/// under its documented minimum is taken as that minimum when
/// [`Server::new`](crate::Server::new) is given the settings.
///
/// The struct may gain members in minor releases (`#[non_exhaustive]`), so
/// another crate cannot write it as a literal, not even with
/// `..Default::default()`: start from the default and set members.
///
/// ```
/// use chatproto::{FrameDecoder, ServerConfig};
///
/// let mut config = ServerConfig::default();
/// config.resume_window_ms = 30_000;
/// config.max_frame_bytes = 256 * 1024;
/// // The shell's decoders take what the `welcome` will announce.
/// let decoder = FrameDecoder::new(config.max_frame_bytes);
/// assert_eq!(decoder.max_frame_bytes(), 256 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The largest payload sent or received (default
    /// [`DEFAULT_MAX_FRAME_BYTES`], at least [`MIN_MAX_FRAME_BYTES`], at
    /// most `u32::MAX`, the most a length header can say; a value out of
    /// that range is taken as its nearer end). A message whose largest
    /// stamped copy (a replay, with its id) would be longer than this less
    /// 512 bytes (what a history page wraps it in, PROTOCOL.md 5.3) is
    /// refused with `msg_too_large`.
    pub max_frame_bytes: usize,
    /// A connection that has not joined this long after connecting is
    /// closed with `timeout` (default 10 000).
    pub join_timeout_ms: u64,
    /// A joined client silent this long is sent a `ping` (default 30 000).
    pub idle_ping_ms: u64,
    /// A client that has not answered a `ping` after this long is closed
    /// with `timeout` (default 10 000).
    pub pong_timeout_ms: u64,
    /// A joined connection whose answers have waited this long, held
    /// behind its own events on their way through the log
    /// ([`cluster`](ServerConfig::cluster)) or behind the store
    /// ([`durable`](ServerConfig::durable)), is sent a `ping`, and again
    /// each time this passes while they stay held (default
    /// [`DEFAULT_HELD_PING_MS`], at least 1). A server `ping` is no
    /// answer, so it is not held: it tells the client the link is alive
    /// while the `pong` it asked for waits in line (PROTOCOL.md 7). Its
    /// answer is ordinary activity; nobody is judged for not giving it.
    /// The wait is judged without a break since the connection's first
    /// frame held: with the store, a frame is taken as held while any
    /// batch is unanswered, so a connection sending faster than the store
    /// commits, its answers flowing, may be sent one such `ping` each
    /// interval too (a few bytes; harmless).
    pub held_ping_ms: u64,
    /// The most recipients one `msg` may name in `to`, duplicates counted
    /// (default [`DEFAULT_MAX_RECIPIENTS`], at least 1). A longer list is
    /// refused with `too_many_recipients` before any name is looked up, so
    /// the cost of a message stays proportional to this, not to its size.
    pub max_recipients: usize,
    /// The most rooms one client may be in at once (default 32, at least
    /// 1).
    pub max_rooms_per_client: usize,
    /// The most rooms the server holds in memory at once (default 10 000,
    /// at least 1). At the cap, entering a new room takes a room nobody is
    /// in out of memory (the least recently used of those that never held
    /// a message, or if there is none, of the others): forgotten, history
    /// and all, on a memory server; unloaded on a durable one (see
    /// [`max_stored_rooms`](ServerConfig::max_stored_rooms)).
    pub max_rooms: usize,
    /// The most rooms a [`durable`](ServerConfig::durable) server keeps,
    /// those in memory included (default 100 000). Rooms past
    /// [`max_rooms`](ServerConfig::max_rooms) that held a message rest in
    /// the store, unloaded, and entering one loads it back under the same
    /// epoch (its seqs go on; replays and pages read the store). The core
    /// keeps about 250 bytes for each. Past this cap, the room unloaded
    /// longest ago is forgotten, history and all. At most `max_rooms`
    /// (with the default `max_rooms`, anything up to 10 000) unloads none:
    /// every room taken out of memory is forgotten. A memory server or a
    /// [`cluster`](ServerConfig::cluster) ignores it.
    pub max_stored_rooms: usize,
    /// Messages kept per room in memory (default 2 048, at least 1).
    pub history_per_room: usize,
    /// Bytes of messages kept per room in memory (default 1 MiB): the
    /// oldest go first when either this or `history_per_room` is passed.
    pub history_bytes_per_room: usize,
    /// Bytes of messages kept in memory for all rooms together (default
    /// 256 MiB). Past it, the least recently used rooms with history
    /// forget their oldest messages until the total is back under it (a
    /// durable server's store still has them).
    pub history_bytes_total: usize,
    /// The most messages an `enter` with `since` replays (default 500).
    pub replay_limit: usize,
    /// The most bytes an `enter`'s replay takes on the wire (default 512
    /// KiB): the newest messages that fit are replayed and `recovered` is
    /// false if some did not. Keep it well under the shell's per-client
    /// outbound queue, or a replay of long messages closes the client it
    /// was meant for.
    pub replay_bytes: usize,
    /// The most messages one `history` page holds (default 200, at least
    /// 1).
    pub history_page: usize,
    /// The most events one `history` page, or one `enter`'s replay, looks
    /// at (default [`DEFAULT_HISTORY_SCAN`], at least 1): messages in
    /// memory, seqs of any kind in the store's range. Short of a full page,
    /// the answer then carries `more` and the `before` to go on from: in a
    /// room full of messages to others, a page costs this much, not the
    /// whole room.
    pub history_scan: usize,
    /// How long after its connection ended a session may be resumed
    /// (default 120 000).
    pub resume_window_ms: u64,
    /// The most sessions waiting to be resumed at once (default 2 048):
    /// past it the one whose connection ended first is forgotten. Each
    /// holds up to `id_window` ids, so this bounds their memory.
    pub max_detached_sessions: usize,
    /// How many of a session's latest message ids are remembered to refuse
    /// duplicates (default [`DEFAULT_ID_WINDOW`], at least 1); announced
    /// in `welcome`.
    pub id_window: usize,
    /// Which nicknames are allowed (default [`NickRule::Unicode`]; see
    /// [the nickname rule](crate#nicknames)).
    pub nick_rule: NickRule,
    /// The rate limit the shell applies to each connection, in frames per
    /// second (default 0: none said), which `welcome` announces so that
    /// clients pace themselves ([`Limits::rate`]). The core does not
    /// enforce it: reading a connection slower is the shell's part.
    pub rate: u64,
    /// The burst that goes with [`rate`](ServerConfig::rate).
    pub burst: u64,
    /// The byte allowance the shell applies to each connection beside
    /// [`rate`](ServerConfig::rate), in payload bytes per second (default
    /// 0: none said), which `welcome` announces ([`Limits::rate_bytes`]).
    /// Like `rate`, not enforced by the core.
    pub rate_bytes: u64,
    /// The burst that goes with [`rate_bytes`](ServerConfig::rate_bytes).
    pub burst_bytes: u64,
    /// The read allowance the shell applies to each connection, in bytes
    /// sent a second in answer to its reads (default 0: none said), which
    /// `welcome` announces ([`Limits::read_rate_bytes`]). Like `rate`, not
    /// enforced by the core.
    pub read_rate_bytes: u64,
    /// The burst that goes with
    /// [`read_rate_bytes`](ServerConfig::read_rate_bytes).
    pub read_burst_bytes: u64,
    /// In a room with more members than this, entering and leaving are
    /// still events (they take a seq) but are sent only to the one who
    /// entered or left, not to everyone: a join storm into a huge room
    /// would otherwise cost members² frames. Default 1 000.
    pub presence_fanout_max: usize,
    /// Hold every output until what it depends on is stored: the server
    /// then yields [`Output::Persist`](crate::Output::Persist) and waits for
    /// [`Server::handle_persisted`](crate::Server::handle_persisted). A room
    /// whose members all left is kept (its history is in the store).
    /// Default `false`: memory only.
    pub durable: bool,
    /// Events are sequenced by a shared log outside this server (several
    /// servers sharing rooms, see [`Server::handle_logged`](crate::Server::handle_logged)):
    /// deciding yields [`Output::Propose`](crate::Output::Propose) instead
    /// of stamping, and a room changes only when the log hands its events
    /// back, from this server or any other, in the log's order. Rooms come
    /// from the log ([`Server::open_room`](crate::Server::open_room); a
    /// room a client enters before it is opened is made here without an
    /// epoch, which `open_room` then gives; its events are taken only
    /// then) and are never forgotten; rooms track who is in them on every server. Set
    /// [`durable`](ServerConfig::durable) too, so that new sessions are
    /// stored where other servers can resume them. Default `false`.
    pub cluster: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            join_timeout_ms: 10_000,
            idle_ping_ms: 30_000,
            pong_timeout_ms: 10_000,
            held_ping_ms: DEFAULT_HELD_PING_MS,
            max_recipients: DEFAULT_MAX_RECIPIENTS,
            max_rooms_per_client: 32,
            max_rooms: 10_000,
            max_stored_rooms: 100_000,
            history_per_room: 2_048,
            history_bytes_per_room: 1 << 20,
            history_bytes_total: 256 << 20,
            replay_limit: 500,
            replay_bytes: 512 << 10,
            history_page: 200,
            history_scan: DEFAULT_HISTORY_SCAN,
            resume_window_ms: 120_000,
            max_detached_sessions: 2_048,
            id_window: DEFAULT_ID_WINDOW,
            presence_fanout_max: 1_000,
            durable: false,
            cluster: false,
            nick_rule: NickRule::default(),
            rate: 0,
            burst: 0,
            rate_bytes: 0,
            burst_bytes: 0,
            read_rate_bytes: 0,
            read_burst_bytes: 0,
        }
    }
}

impl ServerConfig {
    /// The same settings, with every value raised to its minimum (and the
    /// frame limit lowered to what a length header can say).
    pub(crate) fn sanitized(mut self) -> Self {
        self.max_frame_bytes = self
            .max_frame_bytes
            .clamp(MIN_MAX_FRAME_BYTES, u32::MAX as usize);
        self.max_recipients = self.max_recipients.max(1);
        self.held_ping_ms = self.held_ping_ms.max(1);
        self.max_rooms_per_client = self.max_rooms_per_client.max(1);
        self.max_rooms = self.max_rooms.max(1);
        self.history_per_room = self.history_per_room.max(1);
        self.history_page = self.history_page.max(1);
        self.history_scan = self.history_scan.max(1);
        self.id_window = self.id_window.max(1);
        self
    }

    /// What `welcome` announces for these settings as they are. A
    /// [`Server`](crate::Server) raises each value to its minimum first
    /// (a frame limit below 1,024 bytes to 1,024, say), so what a server's
    /// clients are told is `server.config().limits()`, not this on the
    /// settings handed to [`Server::new`](crate::Server::new).
    pub fn limits(&self) -> Limits {
        Limits::new(
            self.max_frame_bytes as u64,
            self.max_recipients as u64,
            self.replay_limit as u64,
            self.history_page as u64,
        )
        .with_presence_fanout_max(self.presence_fanout_max as u64)
        .with_id_window(self.id_window as u64)
        .with_rate(self.rate, self.burst)
        .with_byte_rate(self.rate_bytes, self.burst_bytes)
        .with_read_rate(self.read_rate_bytes, self.read_burst_bytes)
    }
}
