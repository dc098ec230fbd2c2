//! The sans-IO chat room.

use std::collections::{HashMap, VecDeque};

use bytes::{Bytes, BytesMut};
use serde::{Serialize, Serializer};

use crate::codec::{encode_into, DEFAULT_MAX_FRAME_BYTES, MIN_MAX_FRAME_BYTES};
use crate::frame::{ClientFrame, ErrorCode, PresenceStatus, ServerFrame};
use crate::nick::{nick_key, nick_skeleton, validate_nick};
use crate::PayloadError;

/// Output queue capacity (in transmits) past which an empty queue is shrunk.
const SHRINK_QUEUE_ABOVE: usize = 4096;

/// The default for [`RoomConfig::max_recipients`].
pub const DEFAULT_MAX_RECIPIENTS: usize = 64;

/// A small handle by which the [`Room`] knows a connection. Never reused by a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u64);

/// A [`std::hash::BuildHasher`] for maps keyed by [`ClientId`]: the ids are
/// the room's own counter, not attacker-chosen, so a multiply is enough and
/// SipHash's cost (a fifth of the fan-out path, measured) is not needed.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientIdHasher(u64);

impl std::hash::Hasher for ClientIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: spreads a counter over the high bits hashbrown uses.
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

impl std::hash::BuildHasher for ClientIdHasher {
    type Hasher = ClientIdHasher;
    fn build_hasher(&self) -> ClientIdHasher {
        ClientIdHasher(0)
    }
}

/// A `HashMap` keyed by [`ClientId`] with [`ClientIdHasher`].
pub type ClientIdMap<V> = HashMap<ClientId, V, ClientIdHasher>;

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The room's settings. Times are in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomConfig {
    /// The largest payload the room will send (default [`DEFAULT_MAX_FRAME_BYTES`]).
    /// A message that would exceed it once stamped is refused with `msg_too_large`.
    pub max_frame_bytes: usize,
    /// A connection that has not joined this long after connecting is closed
    /// with `timeout` (default 10 000).
    pub join_timeout_ms: u64,
    /// A joined client silent this long is sent a `ping` (default 30 000).
    pub idle_ping_ms: u64,
    /// A client that has not answered a `ping` after this long is closed with
    /// `timeout` (default 10 000).
    pub pong_timeout_ms: u64,
    /// The most recipients one `msg` may name in `to`, duplicates counted
    /// (default [`DEFAULT_MAX_RECIPIENTS`], at least 1). A longer list is
    /// refused with `too_many_recipients` before any name is looked up, so
    /// the cost of a message stays proportional to this, not to its size.
    pub max_recipients: usize,
    /// Whether to record [`Event`]s for [`Room::poll_event`] (default true).
    /// Turn off if you never drain them.
    pub record_events: bool,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            join_timeout_ms: 10_000,
            idle_ping_ms: 30_000,
            pong_timeout_ms: 10_000,
            max_recipients: DEFAULT_MAX_RECIPIENTS,
            record_events: true,
        }
    }
}

/// Bytes to send to one client: one or more whole frames.
///
/// Frames for many recipients share one buffer: `bytes` is a cheap clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Who gets them.
    pub to: ClientId,
    /// Length-prefixed frames, ready for the wire.
    pub bytes: Bytes,
}

/// A connection the room has dropped. Send what was queued for it, then close it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    /// The connection to close.
    pub client: ClientId,
    /// Why; an `error` frame with this code was queued just before.
    pub code: ErrorCode,
}

/// Something that happened in the room, in seq order, for logging.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A client joined.
    Joined {
        /// Its handle.
        client: ClientId,
        /// Its nickname.
        nick: String,
        /// The seq of its `online` presence.
        seq: u64,
    },
    /// A joined client left, vanished or was dropped.
    Left {
        /// Its handle.
        client: ClientId,
        /// Its nickname.
        nick: String,
        /// The seq of its `offline` presence.
        seq: u64,
    },
    /// A message was accepted and delivered.
    Message {
        /// Its seq.
        seq: u64,
        /// The sender.
        from: String,
        /// The recipients; empty means everyone.
        to: Vec<String>,
        /// The text as sent.
        text: String,
    },
}

#[derive(Debug)]
struct Client {
    member: Option<Member>,
    connected_at: u64,
    last_heard: u64,
    ping_sent_at: Option<u64>,
}

#[derive(Debug)]
struct Member {
    nick: String,
    key: String,
    skeleton: String,
    /// Position in `Room::members`.
    index: usize,
}

/// The chat room: a deterministic state machine with no sockets, tasks or clock.
///
/// # Driving it
///
/// Input comes in through `handle_*` methods, each taking `now` (unix
/// milliseconds) from the caller:
///
/// * [`handle_connect`](Room::handle_connect): a connection opened; returns its [`ClientId`];
/// * [`handle_frame`](Room::handle_frame): a frame arrived from a client;
/// * [`handle_bad_frame`](Room::handle_bad_frame): a payload arrived that was not a frame;
/// * [`handle_disconnect`](Room::handle_disconnect): a connection closed or failed;
/// * [`handle_tick`](Room::handle_tick): time passed; call it at least every
///   second or so, to run join timeouts and idle pings;
/// * [`handle_shutdown`](Room::handle_shutdown): the server is stopping.
///
/// Output is drained through `poll_*` methods. After every `handle_*` call,
/// drain in this order, each until it returns `None`:
///
/// 1. [`poll_transmit`](Room::poll_transmit): bytes to write to a client;
/// 2. [`poll_close`](Room::poll_close): connections to close once their bytes are written;
/// 3. [`poll_event`](Room::poll_event): what happened, for logging.
///
/// Transmits for one client come out in the order the client must see them,
/// so every client receives events in increasing `seq`.
///
/// # Example
///
/// ```
/// use chatproto::{ClientFrame, FrameDecoder, Room, RoomConfig, ServerFrame};
///
/// let mut room = Room::new(RoomConfig::default());
/// let alice = room.handle_connect(1_000);
/// room.handle_frame(1_000, alice, ClientFrame::Join { nick: "alice".into() });
/// let mut out = Vec::new();
/// while let Some(t) = room.poll_transmit() {
///     out.push(t);
/// }
/// // alice gets her welcome, then her own presence.
/// assert_eq!(out.len(), 2);
/// let mut buf = bytes::BytesMut::from(&out[1].bytes[..]);
/// let frame: ServerFrame = FrameDecoder::default().decode(&mut buf).unwrap().unwrap().unwrap();
/// assert!(matches!(frame, ServerFrame::Presence { seq: 1, .. }));
/// ```
#[derive(Debug)]
pub struct Room {
    config: RoomConfig,
    seq: u64,
    next_id: u64,
    clients: ClientIdMap<Client>,
    /// Joined clients, for broadcast.
    members: Vec<ClientId>,
    by_key: HashMap<String, ClientId>,
    by_skeleton: HashMap<String, ClientId>,
    transmits: VecDeque<Transmit>,
    closes: VecDeque<Close>,
    events: VecDeque<Event>,
    ping: Bytes,
    pong: Bytes,
    /// Scratch for encoding; split off and frozen after each frame.
    buf: BytesMut,
    hook: Hook,
    /// Scratch for a message's recipients, kept between messages.
    scratch_ids: Vec<ClientId>,
    /// Scratch set de-duplicating a message's recipients.
    scratch_seen: std::collections::HashSet<ClientId, ClientIdHasher>,
    /// Connections a tick timed out, dropped one at a time as transmits
    /// are drained: (client, why, the tick's now).
    expiring: VecDeque<(ClientId, &'static str, u64)>,
}

/// A function the room passes each frame through once, right after
/// encoding it and before handing out its copies (see
/// [`Room::set_frame_hook`]).
pub type FrameHook = Box<dyn FnMut(Bytes) -> Bytes + Send>;

/// The optional hook, with a `Debug` that says whether one is set.
#[derive(Default)]
struct Hook(Option<FrameHook>);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Some(FrameHook)"
        } else {
            "None"
        })
    }
}

impl Room {
    /// An empty room.
    pub fn new(mut config: RoomConfig) -> Self {
        config.max_frame_bytes = config.max_frame_bytes.max(MIN_MAX_FRAME_BYTES);
        config.max_recipients = config.max_recipients.max(1);
        let mut room = Room {
            config,
            seq: 0,
            next_id: 0,
            clients: ClientIdMap::default(),
            members: Vec::new(),
            by_key: HashMap::new(),
            by_skeleton: HashMap::new(),
            transmits: VecDeque::new(),
            closes: VecDeque::new(),
            events: VecDeque::new(),
            ping: Bytes::new(),
            pong: Bytes::new(),
            buf: BytesMut::new(),
            hook: Hook::default(),
            scratch_ids: Vec::new(),
            scratch_seen: Default::default(),
            expiring: VecDeque::new(),
        };
        room.ping = room.encode(&ServerFrame::Ping);
        room.pong = room.encode(&ServerFrame::Pong);
        room
    }

    /// Pass every frame the room encodes from now on through `hook`, once,
    /// before its copies go into [`Transmit`]s. The hook must return the
    /// same bytes; it may wrap them, for instance in
    /// [`Bytes::from_owner`] to learn when the last copy has been written
    /// and count the memory queued frames hold.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use chatproto::{ClientFrame, Room, RoomConfig};
    ///
    /// let encoded = Arc::new(AtomicUsize::new(0));
    /// let count = Arc::clone(&encoded);
    /// let mut room = Room::new(RoomConfig::default());
    /// room.set_frame_hook(Box::new(move |bytes| {
    ///     count.fetch_add(1, Ordering::Relaxed);
    ///     bytes
    /// }));
    /// let alice = room.handle_connect(0);
    /// room.handle_frame(0, alice, ClientFrame::Join { nick: "alice".into() });
    /// // The welcome and alice's own online presence.
    /// assert_eq!(encoded.load(Ordering::Relaxed), 2);
    /// ```
    pub fn set_frame_hook(&mut self, hook: FrameHook) {
        self.hook = Hook(Some(hook));
    }

    /// The settings in force.
    pub fn config(&self) -> &RoomConfig {
        &self.config
    }

    /// The latest seq stamped (0 before anything happened).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// How many connections the room knows, joined or not.
    pub fn connections(&self) -> usize {
        self.clients.len()
    }

    /// How many clients have joined.
    pub fn members(&self) -> usize {
        self.members.len()
    }

    /// The nickname of `client`, if it has joined.
    pub fn nick(&self, client: ClientId) -> Option<&str> {
        self.clients
            .get(&client)?
            .member
            .as_ref()
            .map(|m| m.nick.as_str())
    }

    /// The nicknames online, in no particular order.
    pub fn online(&self) -> impl Iterator<Item = &str> + '_ {
        self.members.iter().filter_map(|id| self.nick(*id))
    }

    /// A connection opened at `now`. It must send `join` within the join timeout.
    pub fn handle_connect(&mut self, now: u64) -> ClientId {
        self.settle_expiring();
        let id = ClientId(self.next_id);
        self.next_id += 1;
        self.clients.insert(
            id,
            Client {
                member: None,
                connected_at: now,
                last_heard: now,
                ping_sent_at: None,
            },
        );
        id
    }

    /// A frame arrived from `client` at `now`. Unknown clients are ignored.
    pub fn handle_frame(&mut self, now: u64, client: ClientId, frame: ClientFrame) {
        self.settle_expiring();
        let Some(c) = self.clients.get_mut(&client) else {
            return;
        };
        c.last_heard = now;
        c.ping_sent_at = None;
        let joined = c.member.is_some();
        match frame {
            ClientFrame::Ping => self.push(client, self.pong.clone()),
            ClientFrame::Pong => {}
            ClientFrame::Join { .. } if joined => {
                let mine = self.nick(client).unwrap_or_default();
                let msg =
                    format!("you have already joined as {mine}; reconnect to change nickname");
                self.error(client, ErrorCode::AlreadyJoined, msg);
            }
            ClientFrame::Join { nick } => self.join(now, client, nick),
            ClientFrame::Msg { .. } if !joined => self.error(
                client,
                ErrorCode::NotJoined,
                "send a join frame with your nickname before anything else",
            ),
            ClientFrame::Msg { to, text } => self.message(now, client, to, text),
        }
    }

    /// A payload from `client` was not a valid frame: answer `bad_frame`.
    pub fn handle_bad_frame(&mut self, now: u64, client: ClientId, error: &PayloadError) {
        self.settle_expiring();
        let Some(c) = self.clients.get_mut(&client) else {
            return;
        };
        c.last_heard = now;
        self.error(client, ErrorCode::BadFrame, format!("bad frame: {error}"));
    }

    /// `client`'s connection closed or failed. If it had joined, everyone
    /// else sees it go offline. Unknown clients are ignored.
    pub fn handle_disconnect(&mut self, now: u64, client: ClientId) {
        self.settle_expiring();
        if let Some(c) = self.clients.remove(&client) {
            if let Some(m) = c.member {
                self.leave(now, client, m);
            }
        }
    }

    /// Time passed: close connections that did not join in time or did not
    /// answer a ping, and ping joined clients that have been silent.
    ///
    /// The connections timed out leave as [`poll_transmit`](Room::poll_transmit)
    /// is drained, one at a time: each departure's copies come out before the
    /// next departure is made, so a tick that times out thousands of clients
    /// at once never holds more than one departure's copies. Until then they
    /// still count in [`connections`](Room::connections) and
    /// [`members`](Room::members); any other `handle_*` call first completes
    /// them, so the order of events does not change.
    pub fn handle_tick(&mut self, now: u64) {
        self.settle_expiring();
        let cfg = &self.config;
        let mut expired = Vec::new();
        let mut to_ping = Vec::new();
        for (&id, c) in &mut self.clients {
            match (&c.member, c.ping_sent_at) {
                (None, _) if now.saturating_sub(c.connected_at) >= cfg.join_timeout_ms => {
                    expired.push((id, "you did not join in time"));
                }
                (Some(_), Some(sent)) if now.saturating_sub(sent) >= cfg.pong_timeout_ms => {
                    expired.push((id, "you did not answer a ping in time"));
                }
                (Some(_), None) if now.saturating_sub(c.last_heard) >= cfg.idle_ping_ms => {
                    c.ping_sent_at = Some(now);
                    to_ping.push(id);
                }
                _ => {}
            }
        }
        // Sorted so that the output does not depend on hash order.
        to_ping.sort_unstable();
        expired.sort_unstable();
        for id in to_ping {
            self.push(id, self.ping.clone());
        }
        self.expiring
            .extend(expired.into_iter().map(|(id, why)| (id, why, now)));
    }

    /// Complete every departure a tick left pending.
    fn settle_expiring(&mut self) {
        while let Some((id, why, at)) = self.expiring.pop_front() {
            self.drop_client(at, id, ErrorCode::Timeout, why);
        }
    }

    /// The server is stopping: send every connection a `notice` with `text`.
    /// The caller then flushes and closes every connection.
    pub fn handle_shutdown(&mut self, _now: u64, text: &str) {
        self.settle_expiring();
        let bytes = self.encode(&ServerFrame::Notice { text: text.into() });
        let mut ids: Vec<ClientId> = self.clients.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.push(id, bytes.clone());
        }
    }

    /// Drop `client` with an error `code` the room did not decide itself (the
    /// shell's `rate_limited` or `slow_consumer`, say): queues the error frame
    /// and a [`Close`], and everyone else sees it go offline.
    pub fn kick(&mut self, now: u64, client: ClientId, code: ErrorCode, message: &str) {
        self.settle_expiring();
        self.drop_client(now, client, code, message);
    }

    /// The next bytes to write to a client.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        // The next departure a tick left pending, once the last one's
        // copies are out.
        while self.transmits.is_empty() {
            let Some((id, why, at)) = self.expiring.pop_front() else {
                break;
            };
            self.drop_client(at, id, ErrorCode::Timeout, why);
        }
        let t = self.transmits.pop_front();
        if t.is_none() && self.transmits.capacity() > SHRINK_QUEUE_ABOVE.max(2 * self.members.len())
        {
            // A burst (many events before a drain) should not pin memory.
            self.transmits.shrink_to(self.members.len());
        }
        t
    }

    /// The next connection to close, after writing what was transmitted to it.
    pub fn poll_close(&mut self) -> Option<Close> {
        // Drained out of order: complete the pending departures first.
        self.settle_expiring();
        self.closes.pop_front()
    }

    /// The next event, in seq order.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.settle_expiring();
        self.events.pop_front()
    }

    fn drop_client(&mut self, now: u64, client: ClientId, code: ErrorCode, message: &str) {
        let Some(c) = self.clients.remove(&client) else {
            return;
        };
        let bytes = self.encode_error(code, message.to_owned());
        self.push(client, bytes);
        self.closes.push_back(Close { client, code });
        if let Some(m) = c.member {
            self.leave(now, client, m);
        }
    }

    fn join(&mut self, now: u64, client: ClientId, nick: String) {
        if let Err(e) = validate_nick(&nick) {
            return self.error(client, ErrorCode::NickInvalid, e.to_string());
        }
        let key = nick_key(&nick);
        if let Some(&other) = self.by_key.get(&key) {
            let taken = self.nick(other).unwrap_or_default();
            let msg = format!("the nickname {taken} is in use; choose another");
            return self.error(client, ErrorCode::NickTaken, msg);
        }
        let skeleton = nick_skeleton(&nick);
        if let Some(&other) = self.by_skeleton.get(&skeleton) {
            let like = self.nick(other).unwrap_or_default();
            let msg = format!(
                "the nickname {nick} looks too much like {like}, who is online; choose another"
            );
            return self.error(client, ErrorCode::NickInvalid, msg);
        }
        self.by_key.insert(key.clone(), client);
        self.by_skeleton.insert(skeleton.clone(), client);
        let index = self.members.len();
        self.members.push(client);
        if let Some(c) = self.clients.get_mut(&client) {
            c.member = Some(Member {
                nick: nick.clone(),
                key,
                skeleton,
                index,
            });
        }
        self.welcome(client, &nick);
        self.seq += 1;
        let seq = self.seq;
        let presence = self.encode(&ServerFrame::Presence {
            seq,
            nick: nick.clone(),
            status: PresenceStatus::Online,
            ts: now,
        });
        self.broadcast(presence);
        if self.config.record_events {
            self.events.push_back(Event::Joined { client, nick, seq });
        }
    }

    /// The welcome, its `online` list split over as many frames as it takes.
    fn welcome(&mut self, client: ClientId, nick: &str) {
        // Room for the frame's other members; nicks are ASCII without escapes.
        let budget = self.config.max_frame_bytes - 128;
        let mut chunks: Vec<Vec<String>> = vec![Vec::new()];
        let mut used = 0;
        for &id in &self.members {
            let n = self.nick(id).unwrap_or_default();
            if used + n.len() + 3 > budget {
                chunks.push(Vec::new());
                used = 0;
            }
            used += n.len() + 3;
            chunks.last_mut().expect("never empty").push(n.to_owned());
        }
        let mut chunks = chunks.into_iter();
        let first = ServerFrame::Welcome {
            nick: nick.to_owned(),
            seq: self.seq,
            online: chunks.next().unwrap_or_default(),
        };
        let bytes = self.encode(&first);
        self.push(client, bytes);
        for nicks in chunks {
            let bytes = self.encode(&ServerFrame::Online { nicks });
            self.push(client, bytes);
        }
    }

    fn leave(&mut self, now: u64, client: ClientId, m: Member) {
        self.by_key.remove(&m.key);
        self.by_skeleton.remove(&m.skeleton);
        self.members.swap_remove(m.index);
        if let Some(&moved) = self.members.get(m.index) {
            if let Some(mm) = self.clients.get_mut(&moved).and_then(|c| c.member.as_mut()) {
                mm.index = m.index;
            }
        }
        self.seq += 1;
        let seq = self.seq;
        let presence = self.encode(&ServerFrame::Presence {
            seq,
            nick: m.nick.clone(),
            status: PresenceStatus::Offline,
            ts: now,
        });
        self.broadcast(presence);
        if self.config.record_events {
            self.events.push_back(Event::Left {
                client,
                nick: m.nick,
                seq,
            });
        }
    }

    /// The client online as `name`, compared as [`nick_key`] does, without
    /// allocating the key: every nick online is ASCII and at most
    /// `MAX_NICK_LEN` bytes, so a longer name cannot match.
    fn member_named(&self, name: &str) -> Option<&ClientId> {
        let mut buf = [0u8; crate::nick::MAX_NICK_LEN];
        let key = buf.get_mut(..name.len())?;
        key.copy_from_slice(name.as_bytes());
        key.make_ascii_lowercase();
        // Lower-casing ASCII bytes leaves UTF-8 valid.
        self.by_key.get(std::str::from_utf8(key).ok()?)
    }

    fn message(&mut self, now: u64, client: ClientId, to: Vec<String>, text: String) {
        // Checked before any lookup: the room's work per message is bounded
        // by this limit, not by how many names fit in a frame.
        let max = self.config.max_recipients;
        if to.len() > max {
            let msg = format!(
                "a message may name at most {max} recipients and this one names {}; nothing was delivered",
                to.len()
            );
            return self.error(client, ErrorCode::TooManyRecipients, msg);
        }
        // Resolve every recipient before anything is sent: all or nothing.
        let mut ids = std::mem::take(&mut self.scratch_ids);
        ids.clear();
        self.scratch_seen.clear();
        let mut missing: Vec<&str> = Vec::new();
        let mut missing_seen: std::collections::HashSet<&str> = Default::default();
        for name in &to {
            match self.member_named(name) {
                Some(&id) => {
                    if self.scratch_seen.insert(id) {
                        ids.push(id);
                    }
                }
                None => {
                    if missing_seen.insert(name) {
                        missing.push(name);
                    }
                }
            }
        }
        if !missing.is_empty() {
            let list = missing
                .iter()
                .map(|n| crate::sanitize::escape_control(n))
                .collect::<Vec<_>>()
                .join(", ");
            self.scratch_ids = ids;
            let msg = format!("not online: {list}; nothing was delivered");
            return self.error(client, ErrorCode::UnknownNick, msg);
        }
        let seq = self.seq + 1;
        let view = MsgView {
            kind: "msg",
            seq,
            from: nick_in(&self.clients, client),
            to: NickList {
                ids: &ids,
                clients: &self.clients,
            },
            text: &text,
            ts: now,
        };
        let encoded = encode_once(
            &mut self.buf,
            &mut self.hook,
            self.config.max_frame_bytes,
            &view,
        );
        let bytes = match encoded {
            Ok(b) => b,
            Err(len) => {
                self.scratch_ids = ids;
                let max = self.config.max_frame_bytes;
                let msg = format!("the message would be {len} bytes once stamped, over the limit of {max}; send a shorter text");
                return self.error(client, ErrorCode::MsgTooLarge, msg);
            }
        };
        self.seq = seq;
        if self.config.record_events {
            let names = ids
                .iter()
                .map(|&id| nick_in(&self.clients, id).to_owned())
                .collect();
            self.events.push_back(Event::Message {
                seq,
                from: nick_in(&self.clients, client).to_owned(),
                to: names,
                text,
            });
        }
        if ids.is_empty() {
            self.broadcast(bytes);
        } else {
            if !self.scratch_seen.contains(&client) {
                ids.push(client);
            }
            for &id in &ids {
                self.push(id, bytes.clone());
            }
        }
        self.scratch_ids = ids;
    }

    fn error(&mut self, client: ClientId, code: ErrorCode, message: impl Into<String>) {
        let bytes = self.encode_error(code, message.into());
        self.push(client, bytes);
    }

    /// An error frame that always fits. A message can quote what the client
    /// sent (unknown nicknames, an unknown type) and so outgrow the limit;
    /// it is cut short rather than losing its code.
    fn encode_error(&mut self, code: ErrorCode, mut message: String) -> Bytes {
        if let Ok(b) = self.try_encode(&ServerFrame::error(code, message.as_str())) {
            return b;
        }
        // JSON can spend 6 bytes on one byte of text (`\u001b`); 128 covers the rest.
        let mut keep = message.len().min((self.config.max_frame_bytes - 128) / 6);
        while !message.is_char_boundary(keep) {
            keep -= 1;
        }
        message.truncate(keep);
        message.push_str("...");
        self.encode(&ServerFrame::error(code, message))
    }

    fn broadcast(&mut self, bytes: Bytes) {
        self.transmits.reserve(self.members.len());
        for &id in &self.members {
            self.transmits.push_back(Transmit {
                to: id,
                bytes: bytes.clone(),
            });
        }
    }

    fn push(&mut self, to: ClientId, bytes: Bytes) {
        self.transmits.push_back(Transmit { to, bytes });
    }

    /// Encode a frame the room builds itself, which always fits.
    fn encode(&mut self, frame: &ServerFrame) -> Bytes {
        match self.try_encode(frame) {
            Ok(b) => b,
            Err(_) => {
                // Only `msg` frames can grow past the limit and they go
                // through `try_encode`; fall back to an error frame anyway.
                self.try_encode(&ServerFrame::error(
                    ErrorCode::MsgTooLarge,
                    "a frame exceeded the limit",
                ))
                .unwrap_or_default()
            }
        }
    }

    /// Encode once into the shared scratch buffer; `Err(len)` if over the limit.
    fn try_encode(&mut self, frame: &ServerFrame) -> Result<Bytes, usize> {
        encode_once(
            &mut self.buf,
            &mut self.hook,
            self.config.max_frame_bytes,
            frame,
        )
    }
}

/// Encode `frame` into `buf`, split it off and pass it through the hook;
/// `Err(len)` if it is over the limit. A free function so that a frame
/// borrowing other parts of the room can be encoded.
fn encode_once(
    buf: &mut BytesMut,
    hook: &mut Hook,
    max_frame_bytes: usize,
    frame: &impl Serialize,
) -> Result<Bytes, usize> {
    if buf.capacity() < 256 {
        buf.reserve(8 * 1024);
    }
    match encode_into(frame, buf, max_frame_bytes) {
        Ok(()) => {
            let bytes = buf.split().freeze();
            Ok(match &mut hook.0 {
                Some(hook) => hook(bytes),
                None => bytes,
            })
        }
        Err(crate::EncodeError::TooLarge { len, .. }) => Err(len),
        Err(crate::EncodeError::Json(_)) => Err(0),
    }
}

/// A `msg` frame that borrows its nicks and text from the room: it
/// serializes exactly as [`ServerFrame::Msg`] does (a test checks), so a
/// message costs no copies of them.
#[derive(Serialize)]
struct MsgView<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    from: &'a str,
    to: NickList<'a>,
    text: &'a str,
    ts: u64,
}

/// The nicks of `ids`, serialized as an array of strings.
struct NickList<'a> {
    ids: &'a [ClientId],
    clients: &'a ClientIdMap<Client>,
}

fn nick_in(clients: &ClientIdMap<Client>, id: ClientId) -> &str {
    clients
        .get(&id)
        .and_then(|c| c.member.as_ref())
        .map_or("", |m| m.nick.as_str())
}

impl Serialize for NickList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.ids.iter().map(|&id| nick_in(self.clients, id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode;

    /// A tick that times out every client at once hands their departures
    /// out one at a time: the room never holds more than one departure's
    /// copies (before, all N departures × N copies were queued at once).
    #[test]
    fn a_mass_timeout_leaves_one_departure_at_a_time() {
        const N: usize = 200;
        let config = RoomConfig {
            idle_ping_ms: 1_000,
            pong_timeout_ms: 1_000,
            ..RoomConfig::default()
        };
        let mut room = Room::new(config);
        for i in 0..N {
            let id = room.handle_connect(0);
            room.handle_frame(
                0,
                id,
                ClientFrame::Join {
                    nick: format!("c{i}"),
                },
            );
        }
        while room.poll_transmit().is_some() {}
        room.handle_tick(1_000); // everyone is pinged
        while room.poll_transmit().is_some() {}
        let seq = room.seq();
        room.handle_tick(2_000); // nobody answered
        let (mut most, mut sent) = (0, 0);
        while room.poll_transmit().is_some() {
            most = most.max(room.transmits.len());
            sent += 1;
        }
        assert!(most < N, "{most} transmits queued at once");
        // Each departure: its error frame, then offline to those left.
        assert_eq!(sent, N + N * (N - 1) / 2);
        assert_eq!((room.connections(), room.members()), (0, 0));
        assert_eq!(room.seq(), seq + N as u64);
        let mut closes = 0;
        while room.poll_close().is_some() {
            closes += 1;
        }
        assert_eq!(closes, N);
    }

    /// The room's borrowed `msg` view and `ServerFrame::Msg` are the same
    /// bytes on the wire, for everyone and for a list, escapes included.
    #[test]
    fn msg_view_encodes_exactly_as_server_frame_msg() {
        let mut room = Room::new(RoomConfig::default());
        let mut ids = Vec::new();
        for nick in ["Alex", "bob", "c{d}~<x>/'"] {
            let id = room.handle_connect(0);
            room.handle_frame(0, id, ClientFrame::Join { nick: nick.into() });
            assert_eq!(room.nick(id), Some(nick));
            ids.push(id);
        }
        let max = room.config.max_frame_bytes;
        for to in [&ids[..0], &ids[1..], &ids[..]] {
            for text in ["hi", "tab\there \"quoted\" \u{1b}[31m \\ \u{202e}", ""] {
                let view = MsgView {
                    kind: "msg",
                    seq: u64::MAX,
                    from: nick_in(&room.clients, ids[1]),
                    to: NickList {
                        ids: to,
                        clients: &room.clients,
                    },
                    text,
                    ts: 1_732_400_000_456,
                };
                let frame = ServerFrame::Msg {
                    seq: u64::MAX,
                    from: nick_in(&room.clients, ids[1]).to_owned(),
                    to: to
                        .iter()
                        .map(|&id| nick_in(&room.clients, id).to_owned())
                        .collect(),
                    text: text.to_owned(),
                    ts: 1_732_400_000_456,
                };
                assert_eq!(encode(&view, max).unwrap(), encode(&frame, max).unwrap());
            }
        }
    }
}
