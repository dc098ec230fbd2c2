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
//! message the server had not acknowledged, under the same id. Do not
//! connect again by yourself after the error
//! [`ErrorCode::ResumedElsewhere`]: another connection with this session's
//! token continues it, and a resume here would close that one.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::frame::{ClientFrame, ErrorCode, Limits, PresenceStatus, ServerFrame};
use crate::nick::nick_key;

/// How long the client may hear nothing before it pings, and then how
/// long it waits for any answer before it calls the connection dead
/// (monotonic milliseconds).
pub const CLIENT_PING_AFTER_MS: u64 = 45_000;
/// See [`CLIENT_PING_AFTER_MS`].
pub const CLIENT_DEAD_AFTER_MS: u64 = 15_000;

/// The longest id prefix used: with a `u64` counter (20 digits at most),
/// an id stays within the protocol's 64 characters (PROTOCOL.md §5.4).
const MAX_ID_PREFIX: usize = 64 - 20;

/// What the shell must do, from [`Client::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use = "a frame not sent is a message lost; an event not shown is a screen wrong"]
pub enum ClientOutput {
    /// Send this frame to the server.
    Send(ClientFrame),
    /// Show this to the user, in this order.
    Event(ClientEvent),
}

/// Something the user should see.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// Joined (first connection) or rejoined (after a reconnect).
    #[non_exhaustive]
    Joined {
        /// The nickname, as the server spells it.
        nick: String,
        /// Whether the earlier session was continued.
        resumed: bool,
        /// Whether this is a reconnect.
        reconnect: bool,
    },
    /// The join was refused (`nick_taken`, `nick_invalid`, ...). The
    /// connection stays open: [`Client::join_as`] tries another nickname.
    #[non_exhaustive]
    Refused {
        /// Why.
        code: ErrorCode,
        /// The server's sentence.
        message: String,
    },
    /// A room was entered (or entered again after a reconnect).
    #[non_exhaustive]
    Entered {
        /// The room.
        room: String,
        /// Who is in it, as the `entered` frame lists it. In a room whose
        /// list does not fit one frame this is only its first part: the
        /// rest comes in `online` frames, which go into
        /// [`Client::roster`] without an event of their own, so the
        /// roster is whole by the room's next event (a replayed message,
        /// or this client's own [`ClientEvent::Presence`]).
        online: Vec<String>,
        /// Whether this entered the room again after a reconnect.
        again: bool,
        /// Whether messages since the last one seen may be missing (the
        /// server could not replay all of them). The replayed ones follow
        /// as [`ClientEvent::Message`]s with `replay` set.
        gap: bool,
        /// Entered again, into a history begun anew (a new epoch: the
        /// server forgot the room, or it kept no history across a
        /// restart): seqs start over, and what was shown before belongs to
        /// the old history.
        reset: bool,
    },
    /// A message, live or replayed; each is reported once.
    #[non_exhaustive]
    Message {
        /// The room.
        room: String,
        /// Its seq in the room.
        seq: u64,
        /// The sender.
        from: String,
        /// The recipients; empty: everyone in the room.
        to: Vec<String>,
        /// The text, as sent.
        text: String,
        /// Unix milliseconds, stamped by the server.
        ts: u64,
        /// Whether this client sent it (this is its echo).
        mine: bool,
        /// Whether it came from a replay (sent while away).
        replay: bool,
    },
    /// Someone entered or left a room.
    #[non_exhaustive]
    Presence {
        /// The room.
        room: String,
        /// Who.
        nick: String,
        /// Entered (`true`) or left.
        online: bool,
    },
    /// A page of history, oldest first.
    #[non_exhaustive]
    History {
        /// The room.
        room: String,
        /// The messages, as [`ClientEvent::Message`]s.
        events: Vec<ClientEvent>,
        /// Whether older ones may exist.
        more: bool,
        /// With `more`: where the next older page starts, the `before` for
        /// [`Client::history`]: at most the oldest message's seq, lower when
        /// the server looked further (its `history_scan` bound), and the
        /// oldest message's seq from a server that does not say.
        before: Option<u64>,
    },
    /// The rooms with members.
    Rooms(Vec<(String, u64)>),
    /// A request failed. `id` is set when it answered a message this
    /// client sent (that message is given up).
    #[non_exhaustive]
    Error {
        /// The code.
        code: ErrorCode,
        /// The server's sentence.
        message: String,
        /// The id of the message it answers.
        id: Option<String>,
        /// The room concerned.
        room: Option<String>,
    },
    /// A notice from the server.
    Notice(String),
    /// The connection seems dead (nothing heard after a ping): close it and
    /// reconnect. The core already counts it ended, as after
    /// [`Client::handle_disconnected`] (calling that too does no harm).
    Dead,
}

/// A message this client sent that the server has not acknowledged yet,
/// from [`Client::pending`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unacknowledged<'a> {
    /// Its id (the same on every resend).
    pub id: &'a str,
    /// The room it was sent in.
    pub room: &'a str,
    /// The recipients; empty: everyone in the room.
    pub to: &'a [String],
    /// The text.
    pub text: &'a str,
}

/// Constructors, for a shell's own tests (every variant with members is
/// `#[non_exhaustive]`: new members come in minor releases, and these
/// keep their signatures).
impl ClientEvent {
    /// [`ClientEvent::Joined`].
    pub fn joined(nick: impl Into<String>, resumed: bool, reconnect: bool) -> Self {
        ClientEvent::Joined {
            nick: nick.into(),
            resumed,
            reconnect,
        }
    }

    /// [`ClientEvent::Refused`].
    pub fn refused(code: ErrorCode, message: impl Into<String>) -> Self {
        ClientEvent::Refused {
            code,
            message: message.into(),
        }
    }

    /// [`ClientEvent::Entered`].
    pub fn entered(room: impl Into<String>, online: Vec<String>, again: bool, gap: bool) -> Self {
        ClientEvent::Entered {
            room: room.into(),
            online,
            again,
            gap,
            reset: false,
        }
    }

    /// [`ClientEvent::Message`], live and from someone else; see
    /// [`ClientEvent::into_mine`] and [`ClientEvent::into_replay`] for the other kinds.
    pub fn message(
        room: impl Into<String>,
        seq: u64,
        from: impl Into<String>,
        to: Vec<String>,
        text: impl Into<String>,
        ts: u64,
    ) -> Self {
        ClientEvent::Message {
            room: room.into(),
            seq,
            from: from.into(),
            to,
            text: text.into(),
            ts,
            mine: false,
            replay: false,
        }
    }

    /// A [`ClientEvent::Message`] marked as this client's own; other
    /// events are returned as they are.
    #[must_use]
    pub fn into_mine(mut self) -> Self {
        if let ClientEvent::Message { mine, .. } = &mut self {
            *mine = true;
        }
        self
    }

    /// A [`ClientEvent::Message`] marked as replayed; other events are
    /// returned as they are.
    #[must_use]
    pub fn into_replay(mut self) -> Self {
        if let ClientEvent::Message { replay, .. } = &mut self {
            *replay = true;
        }
        self
    }

    /// [`ClientEvent::Presence`].
    pub fn presence(room: impl Into<String>, nick: impl Into<String>, online: bool) -> Self {
        ClientEvent::Presence {
            room: room.into(),
            nick: nick.into(),
            online,
        }
    }

    /// [`ClientEvent::History`].
    pub fn history(room: impl Into<String>, events: Vec<ClientEvent>, more: bool) -> Self {
        let before = match events.first() {
            Some(ClientEvent::Message { seq, .. }) if more => Some(*seq),
            _ => None,
        };
        ClientEvent::History {
            room: room.into(),
            events,
            more,
            before,
        }
    }

    /// [`ClientEvent::Error`].
    pub fn error(
        code: ErrorCode,
        message: impl Into<String>,
        id: Option<String>,
        room: Option<String>,
    ) -> Self {
        ClientEvent::Error {
            code,
            message: message.into(),
            id,
            room,
        }
    }
}

/// A message sent and not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    id: String,
    room: String,
    to: Vec<String>,
    text: String,
}

#[derive(Debug, Clone, Default)]
struct RoomState {
    /// The epoch and last seq seen, to enter again with `since`.
    epoch: Option<String>,
    last_seq: u64,
    /// Who is in it, by identity key.
    roster: BTreeMap<String, String>,
    /// Entered on this connection.
    entered: bool,
    /// When it was asked for (the rooms given to `new` first, in order):
    /// after a join they are entered in this order.
    asked: u64,
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
/// what the server had not acknowledged, under the same ids.
#[derive(Debug)]
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
    /// Rooms parted while their messages were held: the `part` goes
    /// once they are sent (so they are neither lost nor sent twice), and
    /// the room's state comes back if it is entered again before that.
    parting: BTreeMap<String, RoomState>,
    id_prefix: String,
    next_id: u64,
    out: VecDeque<ClientOutput>,
    heard_at: u64,
    pinged_at: Option<u64>,
    limits: Option<Limits>,
}

impl Client {
    /// A client that will join as `nick` and enter `rooms`. `id_prefix`
    /// makes its message ids (give it a few random characters, so ids
    /// differ between runs of the same nickname). Only its first 44
    /// characters are used: an id is the prefix and a counter of up to 20
    /// digits, and the server refuses an id over 64 characters with a
    /// `bad_frame` that cannot name the message.
    pub fn new(nick: impl Into<String>, rooms: &[&str], id_prefix: impl Into<String>) -> Self {
        let mut id_prefix = id_prefix.into();
        if let Some((cut, _)) = id_prefix.char_indices().nth(MAX_ID_PREFIX) {
            id_prefix.truncate(cut);
        }
        Client {
            nick: nick.into(),
            phase: Phase::Offline,
            connections: 0,
            token: None,
            rooms: rooms
                .iter()
                .enumerate()
                .map(|(asked, r)| {
                    let state = RoomState {
                        asked: asked as u64,
                        ..RoomState::default()
                    };
                    (r.to_ascii_lowercase(), state)
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
            limits: None,
        }
    }

    /// The nickname.
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

    /// The epoch of `room`'s history as the server last said it (`None`
    /// before it was entered, or after it was parted). Seqs are
    /// comparable only within one epoch.
    pub fn epoch(&self, room: &str) -> Option<&str> {
        self.rooms.get(room).and_then(|r| r.epoch.as_deref())
    }

    /// The seq of the last event of `room` this client saw in the room's
    /// current epoch (0 before any): what it enters the room again
    /// `since` after a reconnect, so where a gap the
    /// [`ClientEvent::Entered`] reports begins. `None` when not in it.
    pub fn last_seq(&self, room: &str) -> Option<u64> {
        self.rooms.get(room).map(|r| r.last_seq)
    }

    /// The limits the server announced in its last `welcome` (`None`
    /// before one, or from a server that announced none). Its
    /// [`presence_fanout_max`](Limits::presence_fanout_max) says past how
    /// many members a room's online list may fall behind.
    pub fn limits(&self) -> Option<&Limits> {
        self.limits.as_ref()
    }

    /// Who is in `room`, sorted by identity.
    pub fn roster(&self, room: &str) -> Vec<&str> {
        self.rooms
            .get(room)
            .map(|r| r.roster.values().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// How many are in `room` (the length of [`Client::roster`], without
    /// making the list).
    pub fn roster_len(&self, room: &str) -> usize {
        self.rooms.get(room).map_or(0, |r| r.roster.len())
    }

    /// Messages sent that the server has not acknowledged yet (echo or error).
    pub fn unacknowledged(&self) -> usize {
        self.pending.len()
    }

    /// Whether the message [`send_msg`](Client::send_msg) returned `id`
    /// for is still waiting for the server's answer. Once it is not, the
    /// frame just handled answered it: its echo (live, replayed or, after a
    /// fresh session, recognised by its content) or an error carrying `id`.
    pub fn is_unacknowledged(&self, id: &str) -> bool {
        self.pending.iter().any(|p| p.id == id)
    }

    /// The messages sent and not acknowledged yet, oldest first: what a
    /// user interface shows as "sending" until each echo arrives.
    pub fn pending(&self) -> impl Iterator<Item = Unacknowledged<'_>> + '_ {
        self.pending.iter().map(|p| Unacknowledged {
            id: &p.id,
            room: &p.room,
            to: &p.to,
            text: &p.text,
        })
    }

    /// A connection is open: join (resuming the session if there was one).
    /// The one before, if the shell did not say it ended
    /// ([`Client::handle_disconnected`]), is taken to have ended first.
    pub fn handle_connected(&mut self, now: u64) {
        if self.phase != Phase::Offline {
            self.handle_disconnected();
        }
        self.phase = Phase::Joining;
        self.connections += 1;
        self.heard_at = now;
        self.pinged_at = None;
        self.entering.clear();
        for r in self.rooms.values_mut() {
            r.entered = false;
            r.roster.clear();
        }
        self.send(ClientFrame::join_v2(
            self.nick.clone(),
            Vec::new(),
            self.token.clone(),
        ));
    }

    /// Join as `nick` instead, after the server refused the nickname
    /// ([`ClientEvent::Refused`] with `nick_taken` or `nick_invalid`: the
    /// connection stays open): the join is sent again with it. Offline,
    /// the next connection joins with it. Once joined there is no
    /// changing it: returns `false` and does nothing.
    pub fn join_as(&mut self, nick: impl Into<String>) -> bool {
        match self.phase {
            Phase::Joined => false,
            Phase::Offline => {
                self.nick = nick.into();
                true
            }
            Phase::Joining => {
                self.nick = nick.into();
                self.send(ClientFrame::join_v2(
                    self.nick.clone(),
                    Vec::new(),
                    self.token.clone(),
                ));
                true
            }
        }
    }

    /// The connection ended. What was not acknowledged is kept, to resend.
    pub fn handle_disconnected(&mut self) {
        self.phase = Phase::Offline;
        // Frames not sent yet belong to the dead connection; the next one
        // starts with its join (what matters is kept: pending messages).
        self.out.retain(|o| matches!(o, ClientOutput::Event(_)));
        self.held.clear();
        // Parted: the next connection does not enter them (their messages
        // are sent there without the room, and refused).
        self.parting.clear();
    }

    /// Enter `room` (it is remembered across reconnects).
    pub fn enter(&mut self, room: &str) {
        let room = room.to_ascii_lowercase();
        if let Some(r) = self.parting.remove(&room) {
            // Its `part` has not gone yet: still in it, as entered (the
            // answer may have come while parting: told now).
            if r.entered {
                self.event(ClientEvent::Entered {
                    room: room.clone(),
                    online: r.roster.values().cloned().collect(),
                    again: false,
                    gap: false,
                    reset: false,
                });
            }
            self.rooms.insert(room, r);
            return;
        }
        let asked = self.rooms.values().map(|r| r.asked + 1).max().unwrap_or(0);
        self.rooms.entry(room.clone()).or_insert_with(|| RoomState {
            asked,
            ..RoomState::default()
        });
        if self.phase == Phase::Joined {
            self.enter_now(&room);
        }
    }

    /// Leave `room`. Messages to it that wait for its replay (after a
    /// fresh session) are sent first, once the replay ends, then the
    /// `part`; events of the room are no longer reported meanwhile, except
    /// the echoes of those messages.
    pub fn part(&mut self, room: &str) {
        let room = room.to_ascii_lowercase();
        let Some(r) = self.rooms.remove(&room) else {
            return;
        };
        if self.held.contains(&room) {
            self.parting.insert(room, r);
        } else if self.phase == Phase::Joined {
            self.send(ClientFrame::part(room));
        }
    }

    /// Send `text` to `to` (empty: everyone) in `room`; returns its id. It
    /// is resent after a reconnect until the server acknowledges it. While
    /// a fresh session's replay of `room` holds older messages back, it
    /// waits behind them.
    ///
    /// A message whose frame is longer than the server takes (the
    /// `max_frame_bytes` of its `welcome`, see [`Client::limits`]) is not
    /// sent: it is answered at once by a [`ClientEvent::Error`]
    /// `msg_too_large` with its id, as one found too long when a
    /// `welcome` arrives is.
    pub fn send_msg(&mut self, room: &str, to: Vec<String>, text: impl Into<String>) -> String {
        self.next_id += 1;
        let id = format!("{}{}", self.id_prefix, self.next_id);
        let p = Pending {
            id: id.clone(),
            room: room.to_ascii_lowercase(),
            to,
            text: text.into(),
        };
        if self.phase == Phase::Joined {
            if let Some(max) = self.frame_limit() {
                // Sent, the frame would be refused by the shell's encoder
                // or close the connection, and it would wait for an echo
                // that never comes.
                if let Err(crate::EncodeError::TooLarge { len, .. }) =
                    crate::encode(&msg_frame(&p), max)
                {
                    self.too_large(p, len, max);
                    return id;
                }
            }
        }
        if self.phase == Phase::Joined && !self.held.contains(&p.room) {
            self.send(msg_frame(&p));
        }
        self.pending.push_back(p);
        id
    }

    /// Ask for a history page of `room`. Only a joined client asks (see
    /// [`is_joined`](Client::is_joined)): a request queued while offline
    /// would reach the next connection before its `join`.
    pub fn history(&mut self, room: &str, before: Option<u64>, limit: Option<u64>) {
        if self.phase == Phase::Joined {
            self.send(ClientFrame::history(
                room.to_ascii_lowercase(),
                before,
                limit,
            ));
        }
    }

    /// Ask for the list of rooms. Only a joined client asks, as for
    /// [`history`](Client::history).
    pub fn list_rooms(&mut self) {
        if self.phase == Phase::Joined {
            self.send(ClientFrame::Rooms);
        }
    }

    /// When to call [`handle_timeout`](Client::handle_timeout), on the
    /// monotonic clock, while connected.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.phase == Phase::Offline {
            return None;
        }
        Some(match self.pinged_at {
            Some(at) => at.saturating_add(CLIENT_DEAD_AFTER_MS),
            None => self.heard_at.saturating_add(CLIENT_PING_AFTER_MS),
        })
    }

    /// Time passed: ping a silent server, or call the connection dead.
    pub fn handle_timeout(&mut self, now: u64) {
        if self.phase == Phase::Offline {
            return;
        }
        match self.pinged_at {
            Some(at) if now >= at.saturating_add(CLIENT_DEAD_AFTER_MS) => {
                // As good as ended: what belongs to it goes now, so a
                // shell that connects again at once without
                // `handle_disconnected` starts clean (its join first).
                self.handle_disconnected();
                self.out.push_back(ClientOutput::Event(ClientEvent::Dead));
            }
            None if now >= self.heard_at.saturating_add(CLIENT_PING_AFTER_MS) => {
                self.pinged_at = Some(now);
                self.send(ClientFrame::Ping);
            }
            _ => {}
        }
    }

    /// The next frame to send or event to show.
    #[must_use = "a frame not sent is a message lost; an event not shown is a screen wrong"]
    pub fn poll(&mut self) -> Option<ClientOutput> {
        self.out.pop_front()
    }

    /// A frame arrived from the server.
    pub fn handle_frame(&mut self, now: u64, frame: ServerFrame) {
        self.heard_at = now;
        self.pinged_at = None;
        match frame {
            ServerFrame::Ping => self.send(ClientFrame::Pong),
            ServerFrame::Welcome {
                nick,
                session,
                resumed,
                limits,
                ..
            } => {
                self.limits = limits;
                if let Some(max) = self.frame_limit() {
                    self.drop_too_large(max);
                }
                self.welcome(nick, session, resumed.unwrap_or(false));
            }
            ServerFrame::Online { room, nicks } => {
                // Only `entered` continuations matter: we join into no room.
                if let Some(r) = room.and_then(|r| self.rooms.get_mut(&r)) {
                    for n in nicks {
                        r.roster.insert(nick_key(&n), n);
                    }
                }
            }
            ServerFrame::Entered {
                room,
                epoch,
                seq,
                oldest,
                online,
                recovered,
            } => self.entered(room, epoch, seq, oldest, online, recovered),
            ServerFrame::Presence {
                room,
                seq,
                nick,
                status,
                ..
            } => {
                let room = room.unwrap_or_else(|| crate::LOBBY.to_owned());
                if status == PresenceStatus::Online && nick_key(&nick) == nick_key(&self.nick) {
                    // Our own entering: the replay before it is over.
                    self.release(&room);
                }
                let Some(r) = self.rooms.get_mut(&room) else {
                    return;
                };
                if seq <= r.last_seq {
                    return;
                }
                r.last_seq = seq;
                let online = status == PresenceStatus::Online;
                if online {
                    r.roster.insert(nick_key(&nick), nick.clone());
                } else {
                    r.roster.remove(&nick_key(&nick));
                }
                self.event(ClientEvent::Presence { room, nick, online });
            }
            ServerFrame::Msg { .. } => {
                if let Some(e) = self.message(frame, true) {
                    self.event(e);
                }
            }
            ServerFrame::History {
                room,
                events,
                more,
                before,
            } => {
                // A server that does not say where the next page starts
                // (chatserver before 0.3): from the oldest message of this one.
                let oldest = match events.first() {
                    Some(ServerFrame::Msg { seq, .. }) => Some(*seq),
                    _ => None,
                };
                let events: Vec<ClientEvent> = events
                    .into_iter()
                    .filter_map(|f| self.message(f, false))
                    .collect();
                let before = if more { before.or(oldest) } else { None };
                self.event(ClientEvent::History {
                    room,
                    events,
                    more,
                    before,
                });
            }
            ServerFrame::Rooms { rooms } => {
                let list = rooms.into_iter().map(|r| (r.room, r.members)).collect();
                self.event(ClientEvent::Rooms(list));
            }
            ServerFrame::Error {
                code,
                message,
                id,
                room,
                ..
            } => self.error(code, message, id, room),
            ServerFrame::Notice { text } => self.event(ClientEvent::Notice(text)),
            _ => {}
        }
    }

    /// Messages waiting to be sent (again) whose frame is larger than the
    /// server takes (`max`, from its `welcome`) are given up, each told as
    /// an `error` `msg_too_large`: sent, the frame would close the
    /// connection, and be sent again after every reconnect.
    fn drop_too_large(&mut self, max: usize) {
        let mut kept = VecDeque::with_capacity(self.pending.len());
        for p in std::mem::take(&mut self.pending) {
            match crate::encode(&msg_frame(&p), max) {
                Err(crate::EncodeError::TooLarge { len, .. }) => self.too_large(p, len, max),
                _ => kept.push_back(p),
            }
        }
        self.pending = kept;
    }

    /// The payload limit of the server's last `welcome`, if it said one.
    fn frame_limit(&self) -> Option<usize> {
        self.limits
            .as_ref()
            .map(|l| usize::try_from(l.max_frame_bytes).unwrap_or(usize::MAX))
    }

    /// Tell that `p`, whose frame is `len` bytes, is given up: the server
    /// takes at most `max`.
    fn too_large(&mut self, p: Pending, len: usize, max: usize) {
        self.event(ClientEvent::Error {
            code: ErrorCode::MsgTooLarge,
            message: format!(
                "your message was not sent: its frame is {len} bytes and the server takes at most {max}"
            ),
            id: Some(p.id),
            room: Some(p.room),
        });
    }

    fn welcome(&mut self, nick: String, session: Option<String>, resumed: bool) {
        self.phase = Phase::Joined;
        self.nick = nick.clone();
        if !resumed {
            // A fresh session: the server remembers none of our ids, so
            // what it stored from us must be found by content instead.
            self.token = None;
        }
        if session.is_some() {
            self.token = session;
        }
        let reconnect = self.connections > 1;
        self.event(ClientEvent::Joined {
            nick,
            resumed,
            reconnect,
        });
        // In the order they were asked for: the first given is the one a
        // user sees as current, and its answer comes first.
        let mut rooms: Vec<(u64, String)> = self
            .rooms
            .iter()
            .map(|(name, r)| (r.asked, name.clone()))
            .collect();
        rooms.sort_unstable();
        for (_, room) in &rooms {
            self.enter_now(room);
        }
        // A resumed session has our ids: the server drops a resend it
        // already has. A fresh one does not, so a message that reached it
        // before the connection dropped is recognised in the room's replay
        // by its content; resend only after that replay (up to our own
        // entering presence).
        self.held.clear();
        if !resumed {
            self.held.extend(
                self.pending
                    .iter()
                    .map(|p| p.room.clone())
                    .filter(|r| self.rooms.contains_key(r)),
            );
        }
        let now: Vec<ClientFrame> = self
            .pending
            .iter()
            .filter(|p| !self.held.contains(&p.room))
            .map(msg_frame)
            .collect();
        for f in now {
            self.send(f);
        }
    }

    /// The replay of `room` is over: send what was held for it.
    fn release(&mut self, room: &str) {
        if !self.held.remove(room) {
            return;
        }
        let frames: Vec<ClientFrame> = self
            .pending
            .iter()
            .filter(|p| p.room == room)
            .map(msg_frame)
            .collect();
        for f in frames {
            self.send(f);
        }
        if self.parting.remove(room).is_some() {
            self.send(ClientFrame::part(room));
        }
    }

    fn enter_now(&mut self, room: &str) {
        let r = self.rooms.entry(room.to_owned()).or_default();
        let since = r.epoch.clone().map(|e| (r.last_seq, e));
        self.entering.insert(room.to_owned());
        self.send(ClientFrame::enter(room, since));
    }

    fn entered(
        &mut self,
        room: String,
        epoch: String,
        seq: u64,
        oldest: u64,
        online: Vec<String>,
        recovered: bool,
    ) {
        self.entering.remove(&room);
        if let Some(r) = self.parting.get_mut(&room) {
            // Parted, the `part` not sent yet: kept quietly, in case the
            // room is entered again before it goes.
            r.epoch = Some(epoch);
            r.entered = true;
            r.last_seq = seq;
            r.roster = online.iter().map(|n| (nick_key(n), n.clone())).collect();
            return;
        }
        let Some(r) = self.rooms.get_mut(&room) else {
            // Parted before this answer arrived: it must not bring the
            // room back (the server has our `part` and leaves us out).
            return;
        };
        let again = r.epoch.is_some();
        // A new epoch lost what came before; otherwise nothing can be
        // missing if nothing was said since (or ever).
        let new_epoch = r.epoch.as_deref() != Some(&epoch);
        let gap = again
            && !recovered
            && (new_epoch || seq > r.last_seq || oldest > r.last_seq.saturating_add(1));
        if r.epoch.as_deref() != Some(&epoch) {
            // A new history: seqs start over.
            r.last_seq = 0;
        }
        r.epoch = Some(epoch);
        r.entered = true;
        r.roster = online.iter().map(|n| (nick_key(n), n.clone())).collect();
        self.event(ClientEvent::Entered {
            room,
            online,
            again,
            gap,
            reset: again && new_epoch,
        });
    }

    /// A `msg` frame as an event, once: `None` if already seen. `live`
    /// frames advance the room's last seq.
    fn message(&mut self, frame: ServerFrame, live: bool) -> Option<ClientEvent> {
        let ServerFrame::Msg {
            room,
            seq,
            from,
            to,
            text,
            ts,
            id,
            replay,
        } = frame
        else {
            return None;
        };
        let room = room.unwrap_or_else(|| crate::LOBBY.to_owned());
        // Acknowledged: the echo, or its replay after a reconnect.
        let mut mine = false;
        if let Some(id) = &id {
            if let Some(i) = self.pending.iter().position(|p| &p.id == id) {
                self.pending.remove(i);
                mine = true;
            }
        }
        let me = nick_key(&self.nick);
        if !mine && replay && live && self.held.contains(&room) && nick_key(&from) == me {
            // A fresh session cannot match ids: match by content, in the
            // replay that comes before the held messages are resent.
            if let Some(i) = self
                .pending
                .iter()
                .position(|p| p.room == room && p.text == text)
            {
                self.pending.remove(i);
            }
        }
        let acknowledged = mine;
        mine |= nick_key(&from) == me;
        if live {
            match self.rooms.get_mut(&room) {
                Some(r) if seq <= r.last_seq => return None,
                Some(r) => r.last_seq = seq,
                // Parted since: only the echo of a message sent before the
                // part is still told (the user has not seen it yet).
                None => {
                    // Parting, its `part` not sent yet: in step, quietly.
                    if let Some(r) = self.parting.get_mut(&room) {
                        r.last_seq = r.last_seq.max(seq);
                    }
                    if !acknowledged {
                        return None;
                    }
                }
            }
        }
        Some(ClientEvent::Message {
            room,
            seq,
            from,
            to,
            text,
            ts,
            mine,
            replay,
        })
    }

    fn error(
        &mut self,
        code: ErrorCode,
        message: String,
        id: Option<String>,
        room: Option<String>,
    ) {
        if self.phase == Phase::Joining {
            self.event(ClientEvent::Refused { code, message });
            return;
        }
        if let Some(id) = &id {
            if let Some(i) = self.pending.iter().position(|p| &p.id == id) {
                self.pending.remove(i);
            }
            if code == ErrorCode::Duplicate {
                // Delivered before the connection dropped; its copy came
                // (or comes) with the replay.
                return;
            }
        }
        if let Some(r) = &room {
            // Refused, the room is not entered: its name or the cap, or
            // (with no message id) a server with no room to log it now.
            let refused = matches!(code, ErrorCode::RoomInvalid | ErrorCode::TooManyRooms)
                || (code == ErrorCode::Unavailable && id.is_none());
            if self.entering.remove(r) && refused {
                self.rooms.remove(r);
                // Not entered: nothing to part.
                self.parting.remove(r);
                // No replay is coming: what was held goes now (and is
                // refused, or delivered, on its own).
                self.release(r);
            }
        }
        self.event(ClientEvent::Error {
            code,
            message,
            id,
            room,
        });
    }

    fn send(&mut self, frame: ClientFrame) {
        self.out.push_back(ClientOutput::Send(frame));
    }

    fn event(&mut self, e: ClientEvent) {
        self.out.push_back(ClientOutput::Event(e));
    }
}

fn msg_frame(p: &Pending) -> ClientFrame {
    ClientFrame::msg_in(
        p.room.clone(),
        p.to.clone(),
        p.text.clone(),
        Some(p.id.clone()),
    )
}
