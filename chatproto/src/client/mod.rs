//! The client's side of the protocol, with no I/O: the join handshake,
//! answering pings, rooms and who is in them, message ids, and resuming a
//! session after the connection drops without losing, repeating or
//! reordering anything.
//!
//! [`Client`] is driven like [`Server`](crate::Server): the shell reports
//! what happened with `handle_*` and drains [`Client::poll`], which returns
//! frames to send and events to show, until `None`. It outlives
//! connections: after [`Client::handle_disconnected`], connect again and
//! call [`Client::handle_connected`]; the client resumes its session,
//! enters its rooms again from the last seq it saw, and resends every
//! message the server had not acknowledged, under the same id (after a
//! session the server did not resume, only those it can tell were not
//! delivered: see [`Client`]). Do not
//! connect again by yourself after the error
//! [`ErrorCode::ResumedElsewhere`]: another connection with this session's
//! token continues it, and a resume here would close that one.

mod accessors;
mod connection;
mod event;
mod frames;
mod membership;
mod pace;
mod pending;
mod room;
mod roster;
mod send;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::frame::{ClientFrame, ErrorCode, Limits};
pub use event::{ClientEvent, ClientOutput, Unacknowledged};
use pending::Pending;
use room::RoomState;

/// How long the client may hear nothing before it pings, by default
/// (monotonic milliseconds; [`Client::set_keepalive`] sets another).
///
/// A connection can die without a word: a peer gone, a NAT mapping
/// dropped, a Wi-Fi or mobile link lost, and packets just vanish (no FIN,
/// no RST). Until the client notices, what is typed looks sent. Silence
/// is taken as a question after 15 s, and no answer in
/// [`CLIENT_DEAD_AFTER_MS`] more as a lost connection: such a link is
/// found within 30 s, before the server finds it (it pings a client
/// silent for 30 s and gives it 10 s more, chatserver's
/// `--idle-ping-ms` and `--pong-timeout-ms`), so the client is already
/// reconnecting when the server lets the session go to its resume
/// window. The cost is a `ping` and a `pong` every 15 s on a quiet
/// connection, a few bytes, well within any server's rate (and it keeps
/// the connection's NAT or mobile-carrier mapping from idling out).
pub const CLIENT_PING_AFTER_MS: u64 = 15_000;
/// How long the client waits for any frame after its ping before it
/// calls the connection dead ([`ClientEvent::Dead`]), by default: 15 s,
/// room for a round trip over a congested mobile link or a server busy
/// for some seconds (see [`CLIENT_PING_AFTER_MS`]). Any frame counts, a
/// server's own `ping` too: a server whose answers wait (behind a
/// cluster's log, or a slow store), the `pong` among them, sends one every
/// few seconds meanwhile ([`ServerConfig::held_ping_ms`](crate::ServerConfig::held_ping_ms)).
pub const CLIENT_DEAD_AFTER_MS: u64 = 15_000;

/// The most members [`Client::roster`] keeps of one room. Past it, a
/// name the server says is in the room is not kept (one kept still
/// leaves), so the list and [`Client::roster_len`] stop at this many:
/// otherwise a broken or hostile server could grow a client's memory
/// without end by naming ever more members. A room this large is far
/// past a room's presence fan-out cap
/// ([`Limits::presence_fanout_max`], 1,000 by default), beyond which its
/// list falls behind anyway.
pub const CLIENT_MAX_ROSTER: usize = 100_000;

/// The largest frame limit [`Client::max_frame_bytes`] gives, whatever a
/// server announces (16 MiB, over chatserver's largest setting,
/// 16,777,215): a client that decodes with the limit a hostile server
/// announced would otherwise buffer up to 4 GiB for one frame.
pub const CLIENT_MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// The longest id prefix used: with a `u64` counter (20 digits at most),
/// an id stays within the protocol's 64 characters (PROTOCOL.md §5.4).
const MAX_ID_PREFIX: usize = 64 - 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Offline,
    Joining,
    Joined,
}

/// The client's side of the protocol, with no I/O: the join handshake,
/// answering pings, rooms and who is in them, message ids, and resuming
/// the session after the connection drops without losing, repeating or
/// reordering anything.
///
/// Drive it like [`Server`](crate::Server): report what happened with
/// `handle_*`, drain [`Client::poll`] (frames to send, events to show)
/// until `None`. It outlives connections: after
/// [`handle_disconnected`](Client::handle_disconnected), connect again and
/// call [`handle_connected`](Client::handle_connected); it resumes its
/// session, enters its rooms again from the last seq it saw and resends
/// what the server had not acknowledged, under the same ids. Its `now`
/// arguments are milliseconds of a monotonic clock (the one
/// [`poll_timeout`](Client::poll_timeout) answers in).
///
/// What the resend can promise depends on the session. Resumed (the
/// server still had it), every resend is recognised by its id, if the
/// session has at most as many messages unacknowledged as the server
/// remembers ids of (its id window: chatserver's `--id-window`, 1,024 by
/// default; see [`unacknowledged`](Client::unacknowledged)). Fresh (the
/// client was away longer than the server's resume window, or the
/// server forgot the session), the server knows none of its ids. A
/// message never written to a connection (typed offline) is sent. One
/// written before to everyone in a room is looked for in the room's
/// replay, by its text and recipients above what the client had seen
/// when it sent it: found, it was delivered (its copy is told as its
/// echo); not found in a replay that holds everything since, it was not
/// stored, and is sent again. The others may or may not have arrived, and
/// are not sent again (a second copy would reach whoever has the first):
/// a private or group message (never in that replay: only the session it
/// came from, and those it went to, see it), one to a room whose replay
/// has a gap or whose history began anew, or one to a room not entered
/// again. Each is given up and told as a [`ClientEvent::Unconfirmed`],
/// with its text, for the user to send again if it did not arrive. A
/// message written before a fresh session waits for that replay however
/// many connections it takes: one that drops before the replay arrives,
/// and the next resumes the fresh session, which still does not know its
/// id, so the replay is looked at there before anything is sent again.
///
/// Do not connect again by yourself after a [`ClientEvent::Error`] with
/// [`ErrorCode::ResumedElsewhere`]: another connection with this session's
/// token continues it, and a resume here would close that one (the core
/// does not stop by itself: the shell must look for that code).
///
/// Encode its frames with [`Client::max_frame_bytes`] (the limit the
/// server's `welcome` announced, up to [`CLIENT_MAX_FRAME_BYTES`]):
/// [`send_msg`](Client::send_msg) lets through any message within that
/// limit, so a smaller fixed limit fails against a server that raised its
/// own. The server's frames can be that long too: decode with a
/// [`FrameDecoder`](crate::FrameDecoder) of that limit (one made after
/// the `welcome` may replace the first between any two calls). Not with
/// the announced limit itself: a hostile server could announce 4 GiB.
///
/// Under a rate limit the server says in its `welcome`
/// ([`Limits::rate`]), frames other than `ping` and `pong` go out no
/// faster than it allows (half its burst at once, then nine tenths of its
/// rate), in order: the rest wait in the core, and
/// [`poll_timeout`](Client::poll_timeout) says when the next may go.
///
/// The [crate documentation](crate#the-client-core) has an example with a
/// reconnect; `examples/time_bot.rs` is a bot over TCP that reconnects.
///
/// Its `Debug` leaves out the session's token and what waits to be sent
/// (a `join` carries the token): whoever reads a log could take the
/// session over with it.
pub struct Client {
    nick: String,
    phase: Phase,
    connections: u64,
    token: Option<String>,
    rooms: BTreeMap<String, RoomState>,
    /// Rooms asked for on this connection, waiting for `entered`.
    entering: BTreeSet<String>,
    pending: VecDeque<Pending>,
    /// Rooms whose pending messages wait for the replay to end: those
    /// with an unchecked message, written before a fresh session (set
    /// again at every `welcome`).
    held: BTreeSet<String>,
    /// Rooms parted while messages to them waited for an answer (or
    /// for the replay, held): the `part` goes once each is answered (so
    /// that none is resent into a room left, refused there although it
    /// arrived), and the room's state comes back if it is entered again
    /// before that. Kept across a reconnect while messages wait: the
    /// next connection enters them again to resend those.
    parting: BTreeMap<String, RoomState>,
    id_prefix: String,
    next_id: u64,
    out: VecDeque<ClientOutput>,
    heard_at: u64,
    pinged_at: Option<u64>,
    /// Silence before a ping, and then before the connection is dead
    /// ([`Client::set_keepalive`]).
    ping_after_ms: u64,
    dead_after_ms: u64,
    limits: Option<Limits>,
    /// The join on this connection was refused (another may be sent).
    join_refused: bool,
    /// The fatal error the server sent on the last joined connection, if
    /// it did: a resume's `closed_for` that says the same is not told
    /// again.
    fatal_heard: Option<ErrorCode>,
    /// Under the rate and byte allowance the server said in its
    /// `welcome`, if any.
    pacer: Option<pace::Pace>,
    /// Frames waiting for the pacer, in order, each with its cost in
    /// bytes: nothing passes them but pings and pongs.
    paced: VecDeque<(ClientFrame, u64)>,
    /// The latest time a `handle_*` call gave.
    now: u64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("nick", &self.nick)
            .field("phase", &self.phase)
            .field("connections", &self.connections)
            .field("has_session", &self.token.is_some())
            .field("rooms", &self.rooms.keys().collect::<Vec<_>>())
            .field("unacknowledged", &self.pending.len())
            .field("queued", &(self.out.len() + self.paced.len()))
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client that will join as `nick` and enter `rooms`, in that
    /// order: any list of names, borrowed or owned (`["lobby", "rust"]`,
    /// a `Vec<String>` or `&[String]` from a command line; for none, a
    /// list whose type is said, such as `[] as [&str; 0]`).
    /// `id_prefix` makes its message ids (give it a few random characters,
    /// so ids differ between runs of the same nickname). Only its first 44
    /// characters are used: an id is the prefix and a counter of up to 20
    /// digits, and the server refuses an id over 64 characters with a
    /// `bad_frame` that cannot name the message.
    ///
    /// A room whose name breaks the rule ([`room_name`](crate::room_name))
    /// is not asked for: the first events are a [`ClientEvent::Error`]
    /// `room_invalid` for each, naming it. A nickname longer than any
    /// server takes ([`MAX_NICK_LEN`](crate::MAX_NICK_LEN) characters) is
    /// not sent either: each connection's join is refused at once by a
    /// [`ClientEvent::Refused`] `nick_invalid` (see
    /// [`handle_connected`](Client::handle_connected)).
    ///
    /// ```
    /// use chatproto::Client;
    ///
    /// let from_args: Vec<String> = vec!["Rust".into(), "lobby".into()];
    /// let client = Client::new("alice", &from_args, "a7f3-");
    /// assert_eq!(client.rooms().collect::<Vec<_>>(), ["lobby", "rust"]);
    /// let bot = Client::new("timebot", ["lobby"], "t-");
    /// assert_eq!(bot.rooms().count(), 1);
    /// ```
    pub fn new(
        nick: impl Into<String>,
        rooms: impl IntoIterator<Item = impl AsRef<str>>,
        id_prefix: impl Into<String>,
    ) -> Self {
        let mut id_prefix = id_prefix.into();
        if let Some((cut, _)) = id_prefix.char_indices().nth(MAX_ID_PREFIX) {
            id_prefix.truncate(cut);
        }
        let mut invalid = Vec::new();
        let mut valid = Vec::new();
        for room in rooms {
            let room = room.as_ref();
            match crate::room_name(room) {
                Ok(_) => valid.push(room.to_ascii_lowercase()),
                Err(why) => invalid.push((room.to_owned(), why)),
            }
        }
        let mut client = Client {
            nick: nick.into(),
            phase: Phase::Offline,
            connections: 0,
            token: None,
            rooms: valid
                .into_iter()
                .enumerate()
                .map(|(asked, r)| {
                    let state = RoomState {
                        asked: asked as u64,
                        ..RoomState::default()
                    };
                    (r, state)
                })
                // The first of a name given twice keeps its place.
                .rev()
                .collect(),
            entering: BTreeSet::new(),
            pending: VecDeque::new(),
            held: BTreeSet::new(),
            parting: BTreeMap::new(),
            id_prefix,
            next_id: 0,
            out: VecDeque::new(),
            heard_at: 0,
            pinged_at: None,
            ping_after_ms: CLIENT_PING_AFTER_MS,
            dead_after_ms: CLIENT_DEAD_AFTER_MS,
            limits: None,
            join_refused: false,
            fatal_heard: None,
            pacer: None,
            paced: VecDeque::new(),
            now: 0,
        };
        for (room, why) in invalid {
            client.refuse_room(&room, why);
        }
        client
    }

    /// The next frame to send or event to show.
    #[must_use = "a frame not sent is a message lost; an event not shown is a screen wrong"]
    pub fn poll(&mut self) -> Option<ClientOutput> {
        self.out.pop_front()
    }

    /// Note the time a `handle_*` call gave (a clock that seems to go back
    /// is taken as standing still).
    fn tick(&mut self, now: u64) {
        self.now = self.now.max(now);
    }

    fn event(&mut self, e: ClientEvent) {
        self.out.push_back(ClientOutput::Event(e));
    }

    /// `room` breaks the naming rule (`why`): said as the server says it.
    fn refuse_room(&mut self, room: &str, why: String) {
        self.event(ClientEvent::Error {
            code: ErrorCode::RoomInvalid,
            message: why,
            id: None,
            room: Some(room.to_owned()),
        });
    }
}
