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

mod connection;
mod event;
mod frames;
mod pace;
mod pending;
mod roster;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::frame::{ClientFrame, ErrorCode, Limits};
pub use event::{ClientEvent, ClientOutput, Unacknowledged};
use pending::{msg_frame, Pending};
use roster::Roster;

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

#[derive(Debug, Clone, Default)]
struct RoomState {
    /// The epoch and last seq seen, to enter again with `since`.
    epoch: Option<String>,
    last_seq: u64,
    /// Where its kept history starts, as the server last said (its
    /// `entered`, or a last `history` page).
    oldest: u64,
    /// Who is in it.
    roster: Roster,
    /// Entered on this connection.
    entered: bool,
    /// When it was asked for (the rooms given to `new` first, in order):
    /// after a join they are entered in this order.
    asked: u64,
    /// Parted, its `part` not sent yet: the events of the room that came
    /// meanwhile and were not told, oldest first (at most [`MAX_UNTOLD`]
    /// of them, [`MAX_UNTOLD_BYTES`] in all), told if it is entered again
    /// before the `part` goes.
    untold: VecDeque<ClientEvent>,
    /// The bytes of the strings of `untold`.
    untold_bytes: usize,
    /// Some of those were let go (past the caps), or the room was
    /// entered again with a gap meanwhile: entered again, the user is
    /// told of a gap.
    skipped: bool,
    /// This connection's `entered` of it replays everything after what
    /// was seen before (the same history, no gap): a message of ours not
    /// in that replay was not stored.
    whole: bool,
    /// Its `enter` waits until no room is being parted (see
    /// [`Client::enter`]): they still count against the server's rooms
    /// per client, and at that cap it would be refused. Kept across a
    /// reconnect: the next connection enters what the last one was in
    /// first, then these.
    waits: bool,
}

/// The most events kept of a room while its `part` waits (see
/// [`Client::part`]): a replay's worth (500 by default), so that a room
/// parted during a replay and entered again loses nothing...
const MAX_UNTOLD: usize = 512;
/// ...and the most bytes of their strings: a hostile server's 512
/// frames of 16 MiB each would otherwise be kept whole.
const MAX_UNTOLD_BYTES: usize = 4 * 1024 * 1024;

impl RoomState {
    /// `nick` came (`online`) or went at `seq`: the roster follows, once.
    /// Whether it is new (not a seq seen already).
    fn presence(&mut self, seq: u64, nick: &str, online: bool) -> bool {
        if seq <= self.last_seq {
            return false;
        }
        self.last_seq = seq;
        if online {
            self.roster.admit(nick.to_owned());
        } else {
            self.roster.remove(nick);
        }
        true
    }

    /// Keep `e`, an event of this room that came while it was being
    /// parted, to tell if it is entered again; past the caps the oldest
    /// kept are let go.
    fn untold(&mut self, e: ClientEvent) {
        self.untold_bytes += event_bytes(&e);
        self.untold.push_back(e);
        while self.untold.len() > MAX_UNTOLD || self.untold_bytes > MAX_UNTOLD_BYTES {
            let Some(old) = self.untold.pop_front() else {
                break;
            };
            self.untold_bytes -= event_bytes(&old);
            self.skipped = true;
        }
    }

    /// Let go of the messages kept past `seq` (all of them at 0: a room
    /// entered in a history they are not of), and every presence kept
    /// with them at 0; a gap is told if any was.
    fn untold_after(&mut self, seq: u64) {
        let before = self.untold.len();
        self.untold.retain(|e| match e {
            ClientEvent::Message { seq: s, .. } => *s <= seq,
            _ => seq > 0,
        });
        if self.untold.len() != before {
            self.untold_bytes = self.untold.iter().map(event_bytes).sum();
            self.skipped = true;
        }
    }

    /// Forget what was kept while parting (told, or parted anew).
    fn take_untold(&mut self) -> VecDeque<ClientEvent> {
        self.untold_bytes = 0;
        std::mem::take(&mut self.untold)
    }
}

/// The bytes of the strings of `e`, an event kept while its room is
/// parted (a message or a presence).
fn event_bytes(e: &ClientEvent) -> usize {
    match e {
        ClientEvent::Message {
            room,
            from,
            to,
            text,
            ..
        } => room.len() + from.len() + text.len() + to.iter().map(String::len).sum::<usize>(),
        ClientEvent::Presence { room, nick, .. } => room.len() + nick.len(),
        _ => 0,
    }
}

/// See [`Client::footprint`].
#[cfg(feature = "testkit")]
#[derive(Debug)]
pub(crate) struct Footprint<'a> {
    /// Rooms asked for on this connection, not answered yet.
    pub(crate) entering: Vec<&'a str>,
    /// Rooms whose messages wait for their replay to end.
    pub(crate) held: Vec<&'a str>,
    /// Rooms parted whose `part` waits for their held messages.
    pub(crate) parting: Vec<&'a str>,
    /// Outputs not drained by `poll`.
    pub(crate) queued: usize,
    /// The bytes of every string kept.
    pub(crate) bytes: usize,
}

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
/// with its text, for the user to send again if it did not arrive.
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
    /// Rooms whose pending messages wait for the replay to end (after a
    /// fresh session).
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
    /// `room_invalid` for each, naming it.
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

    /// The nickname: the one asked for until a `welcome` comes, then the
    /// server's spelling of it (as the others see it), which compares
    /// equal to another spelling of it under [`nick_key`](crate::nick_key)
    /// only.
    pub fn nick(&self) -> &str {
        &self.nick
    }

    /// Whether the join succeeded on the current connection.
    pub fn is_joined(&self) -> bool {
        self.phase == Phase::Joined
    }

    /// The rooms this client is in (or will enter on connecting).
    pub fn rooms(&self) -> impl Iterator<Item = &str> + '_ {
        self.rooms.keys().map(String::as_str)
    }

    /// The epoch of `room`'s history as the server last said it, or as
    /// [`set_last_seen`](Client::set_last_seen) gave it (`None` before
    /// either, or after the room was parted). Seqs are
    /// comparable only within one epoch.
    pub fn epoch(&self, room: &str) -> Option<&str> {
        self.room(room).and_then(|r| r.epoch.as_deref())
    }

    /// The seq of the last event of `room` this client saw in the room's
    /// current epoch (0 before any): what it enters the room again
    /// `since` after a reconnect, so where a gap the
    /// [`ClientEvent::Entered`] reports begins. `None` when not in it.
    pub fn last_seq(&self, room: &str) -> Option<u64> {
        self.room(room).map(|r| r.last_seq)
    }

    /// The session's token as the server gave it in its last `welcome`
    /// (`None` before one). It is a secret: whoever has it can take the
    /// session over. Kept with each room's [`epoch`](Client::epoch) and
    /// [`last_seq`](Client::last_seq), it lets a program that restarts
    /// carry on where it was: see [`resume_session`](Client::resume_session)
    /// and [`set_last_seen`](Client::set_last_seen).
    pub fn session_token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Carry on a session of an earlier run of this program (its
    /// [`session_token`](Client::session_token)): the next join asks the
    /// server to resume it. If the server still holds the session (its
    /// connection ended within the server's resume window, chatserver's
    /// `--resume-window-ms`, two minutes by default; a chatserver with
    /// history on disk keeps it across its own restarts) and the join is
    /// under the session's nickname (in any case), the
    /// [`ClientEvent::Joined`] says `resumed`. If not, the server starts a
    /// new session, with a new token. Only while offline (before a connection, or after
    /// [`handle_disconnected`](Client::handle_disconnected)): otherwise it
    /// returns `false` and does nothing.
    ///
    /// What the earlier run sent and never saw acknowledged is not carried
    /// over: its [`pending`](Client::pending) messages are the program's
    /// to keep, and sent again with new ids they may arrive twice. Give
    /// this run an id prefix of its own ([`Client::new`]): the server
    /// remembers the session's latest ids, and takes a message with an id
    /// it has seen for a resend.
    pub fn resume_session(&mut self, token: impl Into<String>) -> bool {
        if self.phase != Phase::Offline {
            return false;
        }
        self.token = Some(token.into());
        true
    }

    /// Where an earlier run of this program was in `room` (its
    /// [`epoch`](Client::epoch) and [`last_seq`](Client::last_seq)): the
    /// room is entered (added if it is not one of this client's rooms)
    /// with `since`, so the server replays what was said after it, as
    /// after a reconnect, and the [`ClientEvent::Entered`] says whether
    /// anything is missing (`gap`: the server no longer holds all of it,
    /// or its history began anew). Only while offline, and for a room
    /// name that follows the rule ([`room_name`](crate::room_name)):
    /// otherwise it returns `false` and does nothing.
    pub fn set_last_seen(&mut self, room: &str, epoch: impl Into<String>, last_seq: u64) -> bool {
        if self.phase != Phase::Offline || crate::room_name(room).is_err() {
            return false;
        }
        let room = room.to_ascii_lowercase();
        let asked = self.rooms.values().map(|r| r.asked + 1).max().unwrap_or(0);
        let r = self.rooms.entry(room).or_insert_with(|| RoomState {
            asked,
            ..RoomState::default()
        });
        r.epoch = Some(epoch.into());
        r.last_seq = last_seq;
        true
    }

    /// The frame limit to encode this client's frames with and to decode
    /// the server's with: the `max_frame_bytes` of the server's last
    /// `welcome`, or [`DEFAULT_MAX_FRAME_BYTES`](crate::DEFAULT_MAX_FRAME_BYTES)
    /// before one or from a server that announced none; at least
    /// [`MIN_MAX_FRAME_BYTES`](crate::MIN_MAX_FRAME_BYTES) and at most
    /// [`CLIENT_MAX_FRAME_BYTES`]. [`send_msg`](Client::send_msg) lets
    /// through any message that fits it.
    pub fn max_frame_bytes(&self) -> usize {
        self.frame_limit()
    }

    /// The limits the server announced in its last `welcome` (`None`
    /// before one, or from a server that announced none). Its
    /// [`presence_fanout_max`](Limits::presence_fanout_max) says past how
    /// many members a room's online list may fall behind.
    pub fn limits(&self) -> Option<&Limits> {
        self.limits.as_ref()
    }

    /// Who is in `room`, sorted by identity: at most
    /// [`CLIENT_MAX_ROSTER`] names, none longer than a nickname may be
    /// ([`MAX_NICK_LEN`](crate::MAX_NICK_LEN) characters; a server that
    /// sends one is broken, and it is left out).
    pub fn roster(&self, room: &str) -> Vec<&str> {
        self.room(room)
            .map(|r| r.roster.nicks().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// How many are in `room` (the length of [`Client::roster`], without
    /// making the list).
    pub fn roster_len(&self, room: &str) -> usize {
        self.room(room).map_or(0, |r| r.roster.len())
    }

    /// A number that stays the same as long as [`Client::roster`] of
    /// `room` does, and changes when it may have changed: a shell that
    /// shows the list can keep it with this number and make it again only
    /// when the number differs, instead of making and comparing the whole
    /// list after every event (a large room's list is thousands of names).
    /// No two lists have the same number, across rooms and clients: a room
    /// parted and entered again gets a new one (but for a part taken back
    /// by entering again before it went out, which keeps the room and its
    /// list as they were). 0 for a room that is not
    /// one of [`Client::rooms`].
    pub fn roster_version(&self, room: &str) -> u64 {
        self.room(room).map_or(0, |r| r.roster.version())
    }

    /// `room`'s state, its name in any case (room names are folded to
    /// lower case, as [`enter`](Client::enter) and the server fold them).
    fn room(&self, room: &str) -> Option<&RoomState> {
        if room.bytes().any(|b| b.is_ascii_uppercase()) {
            self.rooms.get(&room.to_ascii_lowercase())
        } else {
            self.rooms.get(room)
        }
    }

    /// Messages sent that the server has not acknowledged yet (echo or error).
    ///
    /// The client keeps each until it is acknowledged or given up, however
    /// many there are: only [`send_msg`](Client::send_msg) adds to them,
    /// never the server, so their bound is the shell's to set (chatclient
    /// takes no more input while 512 are unanswered, or as many as
    /// [`id_window`](Client::id_window) if fewer), with this count.
    /// Keep it at most the server's id window: a resumed session resends
    /// them all, and the server recognises a resend only among that many
    /// of the session's latest ids; past it, resends are delivered again.
    pub fn unacknowledged(&self) -> usize {
        self.pending.len()
    }

    /// How many of this session's latest message ids the server remembers
    /// (PROTOCOL.md 5.4): the one its last `welcome` announced, else
    /// [`DEFAULT_ID_WINDOW`](crate::DEFAULT_ID_WINDOW) (before a `welcome`,
    /// or from a server that does not say), and at least 1.
    pub fn id_window(&self) -> usize {
        self.limits
            .as_ref()
            .and_then(|l| l.id_window)
            .map_or(crate::DEFAULT_ID_WINDOW, |w| {
                usize::try_from(w).unwrap_or(usize::MAX).max(1)
            })
    }

    /// Whether the message [`send_msg`](Client::send_msg) returned `id`
    /// for is still waiting for the server's answer. Once it is not,
    /// either the frame just handled answered it (its echo: live, replayed
    /// or, after a fresh session, recognised by its content; or an error
    /// carrying `id`), or the core gave it up itself and said so with a
    /// [`ClientEvent::Error`](crate::ClientEvent::Error) (a message too
    /// large to send, or, at a `welcome`, too large for the server's
    /// limit; one to a room parted before it was entered), or, after a
    /// session the server did not resume, with a
    /// [`ClientEvent::Unconfirmed`] (its fate unknown).
    pub fn is_unacknowledged(&self, id: &str) -> bool {
        self.pending.iter().any(|p| p.id == id)
    }

    /// The messages sent and not acknowledged yet, oldest first: what a
    /// user interface shows as "sending" until each echo arrives.
    pub fn pending(&self) -> impl Iterator<Item = Unacknowledged<'_>> + '_ {
        let open = self.phase != Phase::Offline;
        let connection = self.connections;
        self.pending.iter().map(move |p| Unacknowledged {
            id: &p.id,
            room: &p.room,
            to: &p.to,
            text: &p.text,
            may_have_arrived: p.written || (open && p.sent_on != 0 && p.sent_on == connection),
        })
    }

    /// Enter `room` (it is remembered across reconnects).
    ///
    /// A name that breaks the rule ([`room_name`](crate::room_name)) is
    /// not asked for, nor remembered: it is answered at once by a
    /// [`ClientEvent::Error`] `room_invalid` naming it, as the server
    /// would answer it (which leaves a long name out, so a client could
    /// not tell it was refused).
    ///
    /// While a room parted is still waiting to be left (see
    /// [`part`](Client::part)), the `enter` of a new room waits for that
    /// `part`, and so do messages sent to the room: the server counts the
    /// room being parted, and a client at its rooms per client would be
    /// refused `too_many_rooms`. Parted before its `enter` went, the room
    /// is dropped, and each message that waited for it is answered by a
    /// [`ClientEvent::Error`] `not_in_room` with its id (it never went).
    /// One that went on a connection lost since is sent again for the
    /// server's answer in a resumed session, and given up as a
    /// [`ClientEvent::Unconfirmed`] after a fresh one (its fate unknown).
    pub fn enter(&mut self, room: &str) {
        if let Err(why) = crate::room_name(room) {
            return self.refuse_room(room, why);
        }
        let room = room.to_ascii_lowercase();
        if let Some(mut r) = self.parting.remove(&room) {
            // Its `part` has not gone yet: still in it, as entered (the
            // answer may have come while parting: told now), with what
            // came meanwhile.
            if r.entered {
                self.event(ClientEvent::Entered {
                    room: room.clone(),
                    online: r.roster.nicks().cloned().collect(),
                    again: false,
                    gap: r.skipped,
                    reset: false,
                });
            }
            for e in r.take_untold() {
                self.event(e);
            }
            r.skipped = false;
            self.rooms.insert(room, r);
            return self.enter_waiting();
        }
        if let Some(r) = self.rooms.get(&room) {
            // Asked again: the server answers (`already_in_room`), unless
            // its `enter` still waits.
            if self.phase == Phase::Joined && !r.waits {
                self.enter_now(&room);
            }
            return;
        }
        let asked = self.rooms.values().map(|r| r.asked + 1).max().unwrap_or(0);
        let waits = !self.parting.is_empty();
        self.rooms.insert(
            room.clone(),
            RoomState {
                asked,
                waits,
                ..RoomState::default()
            },
        );
        if self.phase == Phase::Joined && !waits {
            self.enter_now(&room);
        }
    }

    /// Leave `room`. Messages sent to it and not answered yet (by their
    /// echo or an error), or waiting for its replay (after a fresh
    /// session), are answered first, the `part` only after the last of
    /// them: one resent after a reconnect into a room already left would
    /// be refused (`not_in_room`) although it may have arrived. Meanwhile
    /// the room is left as far as [`rooms`](Client::rooms) and the events
    /// go (only the answers to those messages are told), and a reconnect
    /// enters it again to resend them. Entered again before its `part`
    /// went, the room is kept as it was, and the events that came
    /// meanwhile are told then (up to 512 of them, and 4 MiB of text;
    /// past that the oldest are let go, and the
    /// [`Entered`](ClientEvent::Entered) says `gap`).
    pub fn part(&mut self, room: &str) {
        let room = room.to_ascii_lowercase();
        let Some(mut r) = self.rooms.remove(&room) else {
            return;
        };
        if r.waits {
            // Never entered: nothing to part, and what was sent to it
            // since waited for the entering.
            return self.give_up_unentered(&room);
        }
        if self.held.contains(&room) || self.pending.iter().any(|p| p.room == room) {
            r.skipped = false;
            r.take_untold();
            self.parting.insert(room, r);
        } else if self.phase == Phase::Joined {
            self.send(ClientFrame::part(room));
        }
    }

    /// Send `text` to `to` (empty: everyone) in `room`; returns its id. It
    /// is resent after a reconnect until the server acknowledges it (after
    /// a session the server did not resume, only if the core can tell it
    /// was not delivered; otherwise it is given up as a
    /// [`ClientEvent::Unconfirmed`]: see [`Client`]). While
    /// a fresh session's replay of `room` holds older messages back, it
    /// waits behind them.
    ///
    /// A message whose frame is longer than the server takes
    /// ([`Client::max_frame_bytes`]: the `max_frame_bytes` of its
    /// `welcome`, at most [`CLIENT_MAX_FRAME_BYTES`], or
    /// [`DEFAULT_MAX_FRAME_BYTES`](crate::DEFAULT_MAX_FRAME_BYTES) from a
    /// server whose `welcome` said none) is not sent: it is answered at
    /// once by a [`ClientEvent::Error`] `msg_too_large` with its id, as one
    /// found too long when a `welcome` arrives is.
    ///
    /// Under a rate the server announced, its frame may wait in the core
    /// (behind others, or until the pacer allows it): it goes from
    /// [`handle_timeout`](Client::handle_timeout) at the time
    /// [`poll_timeout`](Client::poll_timeout) then says.
    pub fn send_msg(&mut self, room: &str, to: Vec<String>, text: impl Into<String>) -> String {
        self.next_id += 1;
        let id = format!("{}{}", self.id_prefix, self.next_id);
        let mut p = Pending {
            id: id.clone(),
            room: room.to_ascii_lowercase(),
            to,
            text: text.into(),
            sent_after: None,
            sent_as: String::new(),
            sent_on: 0,
            written: false,
        };
        if self.phase == Phase::Joined {
            // Sent, the frame would be refused by the shell's encoder or
            // close the connection, and it would wait for an echo that
            // never comes.
            let max = self.frame_limit();
            if let Err(crate::EncodeError::TooLarge { len, .. }) =
                crate::encode(&msg_frame(&p), max)
            {
                self.too_large(p, len, max);
                return id;
            }
        }
        if self.phase == Phase::Joined && !self.held.contains(&p.room) && !self.waits(&p.room) {
            p.sent_after = Some(self.seen_in(&p.room));
            p.sent_as = crate::nick::nick_key(&self.nick);
            p.sent_on = self.connections;
            self.send(msg_frame(&p));
        }
        self.pending.push_back(p);
        id
    }

    /// Ask for a history page of `room`; the answer comes as a
    /// [`ClientEvent::History`]. Only a joined client asks (see
    /// [`is_joined`](Client::is_joined)): called before its
    /// [`ClientEvent::Joined`] (offline, or while the `join` waits for its
    /// `welcome`), it does nothing, no frame and no event, since a request
    /// queued then would reach the server before the `join`. Ask again
    /// once joined.
    pub fn history(&mut self, room: &str, before: Option<u64>, limit: Option<u64>) {
        if self.phase == Phase::Joined {
            self.send(ClientFrame::history(
                room.to_ascii_lowercase(),
                before,
                limit,
            ));
        }
    }

    /// Ask for the list of rooms; the answer comes as a
    /// [`ClientEvent::Rooms`]. Only a joined client asks: before its
    /// [`ClientEvent::Joined`] it does nothing, as
    /// [`history`](Client::history).
    pub fn list_rooms(&mut self) {
        if self.phase == Phase::Joined {
            self.send(ClientFrame::Rooms);
        }
    }

    /// The next frame to send or event to show.
    #[must_use = "a frame not sent is a message lost; an event not shown is a screen wrong"]
    pub fn poll(&mut self) -> Option<ClientOutput> {
        self.out.pop_front()
    }

    /// What the core holds beyond its public accessors, for the testkit's
    /// bounds: the room names of its sets, the outputs not drained, and
    /// the bytes of every string it keeps.
    #[cfg(feature = "testkit")]
    pub(crate) fn footprint(&self) -> Footprint<'_> {
        let rooms = self.rooms.iter().chain(&self.parting);
        let room_bytes: usize = rooms
            .map(|(name, r)| {
                let roster = r.roster.bytes();
                name.len() + r.epoch.as_ref().map_or(0, String::len) + roster + r.untold_bytes
            })
            .sum();
        let pending_bytes: usize = self
            .pending
            .iter()
            .map(|p| {
                p.id.len()
                    + p.room.len()
                    + p.text.len()
                    + p.to.iter().map(String::len).sum::<usize>()
            })
            .sum();
        let names = |set: &BTreeSet<String>| set.iter().map(String::len).sum::<usize>();
        Footprint {
            entering: self.entering.iter().map(String::as_str).collect(),
            held: self.held.iter().map(String::as_str).collect(),
            parting: self.parting.keys().map(String::as_str).collect(),
            queued: self.out.len(),
            bytes: self.nick.len()
                + self.token.as_ref().map_or(0, String::len)
                + self.id_prefix.len()
                + room_bytes
                + pending_bytes
                + names(&self.entering)
                + names(&self.held),
        }
    }

    /// Send the `enter` of `room` (one being parted too: see
    /// [`part`](Client::part)), with `since` if it was entered before.
    fn enter_now(&mut self, room: &str) {
        if !self.parting.contains_key(room) {
            self.rooms.entry(room.to_owned()).or_default();
        }
        let since = self
            .rooms
            .get(room)
            .or_else(|| self.parting.get(room))
            .and_then(|r| r.epoch.clone().map(|e| (r.last_seq, e)));
        self.entering.insert(room.to_owned());
        self.send(ClientFrame::enter(room, since));
    }

    /// Send `frame`, or queue it behind those waiting for the pacer. A
    /// ping or pong is never held (a pong late is a connection closed;
    /// the server counts both, and the pacer leaves a tenth of the rate
    /// for them); the join goes before the pacer is set (by the
    /// `welcome`).
    fn send(&mut self, frame: ClientFrame) {
        let free = matches!(frame, ClientFrame::Ping | ClientFrame::Pong);
        let now = self.now;
        match &mut self.pacer {
            Some(p) if !free => {
                let cost = p.cost(&frame);
                if self.paced.is_empty() && p.take(now, cost) {
                    self.out.push_back(ClientOutput::Send(frame));
                } else {
                    self.paced.push_back((frame, cost));
                }
            }
            _ => self.out.push_back(ClientOutput::Send(frame)),
        }
    }

    /// The message `pending[i]` is settled (acknowledged or refused): it
    /// is no longer waiting, nor is its frame, if it still waits for the
    /// pacer or to be polled (a server answered it before it went: not
    /// ours, but no reason to send a message already settled; one frame
    /// can settle a message, release another and settle that one too).
    fn settled(&mut self, i: usize) {
        let Some(p) = self.pending.remove(i) else {
            return;
        };
        let this =
            |f: &ClientFrame| matches!(f, ClientFrame::Msg { id: Some(id), .. } if *id == p.id);
        if !self.paced.is_empty() {
            self.paced.retain(|(f, _)| !this(f));
        }
        if !self.out.is_empty() {
            self.out
                .retain(|o| !matches!(o, ClientOutput::Send(f) if this(f)));
        }
        self.part_when_answered(&p.room);
    }

    /// Send the `part` of `room`, parted while messages to it waited, if
    /// none waits any longer (nor its replay). Only a room entered, or
    /// being entered, on this connection is parted: one whose entering
    /// was refused is not in, and a reconnect enters it again first.
    fn part_when_answered(&mut self, room: &str) {
        // Checked first: every answer to a message comes here, and almost
        // no room is being parted.
        if !self.parting.contains_key(room)
            || self.phase != Phase::Joined
            || self.held.contains(room)
            || self.pending.iter().any(|p| p.room == room)
        {
            return;
        }
        let entered = self.entering.contains(room);
        if let Some(r) = self.parting.remove(room) {
            if r.entered || entered {
                self.send(ClientFrame::part(room));
            }
        }
        self.enter_waiting();
    }

    /// Whether `room`'s `enter` waits for the rooms being parted.
    fn waits(&self, room: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| r.waits)
    }

    /// Once no room is being parted, enter those whose `enter` waited for
    /// that (in the order asked for), and send what waited for them.
    pub(super) fn enter_waiting(&mut self) {
        if self.phase != Phase::Joined || !self.parting.is_empty() {
            return;
        }
        let mut waiting: Vec<(u64, String)> = self
            .rooms
            .iter_mut()
            .filter(|(_, r)| r.waits)
            .map(|(name, r)| {
                r.waits = false;
                (r.asked, name.clone())
            })
            .collect();
        if waiting.is_empty() {
            return;
        }
        waiting.sort_unstable();
        for (_, room) in &waiting {
            self.enter_now(room);
        }
        // Not one sent to the room on this connection before it was asked
        // for (it waits for its answer: `not_in_room`).
        let held = std::mem::take(&mut self.held);
        let connection = self.connections;
        self.send_pending(|p| {
            p.sent_on != connection
                && !held.contains(&p.room)
                && waiting.iter().any(|(_, r)| *r == p.room)
        });
        self.held = held;
    }

    /// Send what waited for the pacer, as far as it lets at `now`.
    fn send_paced(&mut self, now: u64) {
        let Some(p) = &mut self.pacer else {
            return;
        };
        while let Some((_, cost)) = self.paced.front() {
            if !p.take(now, *cost) {
                break;
            }
            if let Some((frame, _)) = self.paced.pop_front() {
                self.out.push_back(ClientOutput::Send(frame));
            }
        }
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
