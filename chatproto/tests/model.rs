//! Model-based test: random operations run against the real `Server`
//! (through the simulation harness) and against a reference model written
//! here, which says who is online, who is in which room, and who must
//! receive what, in which order.
//!
//! After every operation each client's new frames must equal the model's,
//! and, checked on the real frames alone: seq rises strictly per room and
//! connection; a private message reaches only its sender's and recipients'
//! sessions (live, replayed or in a history page); and no session receives
//! a message twice across a resume (a replay after `since` holds only what
//! came after it).
//!
//! At the end of every walk, the same frames go through the exactly-once
//! oracle chatbench's soak uses (`chatproto::testkit::oracle`): per life of
//! each room, every client's stay must have received every message for it,
//! once and in order. The model has checked each frame by then, so the
//! oracle must agree with it.

// The crate root sits in tests/, so each part's file is named by its path.
#[path = "model/checks.rs"]
mod checks;
#[path = "model/ops.rs"]
mod ops;
#[path = "model/rooms.rs"]
mod rooms;
#[path = "model/sessions.rs"]
mod sessions;
#[path = "model/walks.rs"]
mod walks;

use std::collections::{BTreeMap, BTreeSet};

use chatproto::{ErrorCode, PresenceStatus, ServerConfig, ServerFrame};

const JOIN_TIMEOUT: u64 = 1_000;
const IDLE_PING: u64 = 3_000;
const PONG_TIMEOUT: u64 = 1_000;
const RESUME_WINDOW: u64 = 4_000;
/// Small limits, so that random walks reach them.
const MAX_ROOMS: usize = 2;
const MAX_RECIPIENTS: usize = 3;
const REPLAY_LIMIT: usize = 4;
const HISTORY_PAGE: usize = 3;
const FANOUT_MAX: usize = 3;
const START: u64 = 1_732_400_000_000;

fn config() -> ServerConfig {
    let mut c = ServerConfig::default();
    c.join_timeout_ms = JOIN_TIMEOUT;
    c.idle_ping_ms = IDLE_PING;
    c.pong_timeout_ms = PONG_TIMEOUT;
    c.resume_window_ms = RESUME_WINDOW;
    c.max_rooms_per_client = MAX_ROOMS;
    c.max_recipients = MAX_RECIPIENTS;
    c.replay_limit = REPLAY_LIMIT;
    c.history_page = HISTORY_PAGE;
    c.presence_fanout_max = FANOUT_MAX;
    c
}

/// Nicknames clients ask for: (nick, identity, look-alike class); identity
/// `None` marks a nickname the rule forbids.
const JOIN_POOL: [(&str, Option<&str>, &str); 17] = [
    ("alice", Some("alice"), "A"),
    ("Alice", Some("alice"), "A"),
    ("ALICE", Some("alice"), "A"),
    ("bob", Some("bob"), "B"),
    ("b0b", Some("b0b"), "B"),
    ("B0B", Some("b0b"), "B"),
    ("carol", Some("carol"), "C"),
    ("dave", Some("dave"), "D"),
    ("mary", Some("mary"), "M"),
    ("rnary", Some("rnary"), "M"),
    ("José", Some("josé"), "J"),
    ("JOSÉ", Some("josé"), "J"),
    ("Jose", Some("jose"), "J"),
    ("Дмитрий", Some("дмитрий"), "R"),
    ("bad nick", None, ""),
    ("", None, ""),
    ("x@y", None, ""),
];

/// Names messages are addressed to: members in any case, and strangers.
const TO_POOL: [&str; 15] = [
    "alice",
    "ALICE",
    "bob",
    "Bob",
    "B0B",
    "carol",
    "dave",
    "Mary",
    "rnary",
    "zed",
    "bad nick",
    "",
    "josé",
    "JOSE",
    "ДМИТРИЙ",
];

/// Rooms clients name: three rooms, a case variant, a name the rule forbids.
const ROOM_POOL: [&str; 5] = ["lobby", "rust", "ops", "Rust", "#ops"];

/// Message ids: a few to reuse, an empty one and one too long.
fn msg_id(k: usize) -> String {
    match k {
        0 => "a".into(),
        1 => "b".into(),
        2 => "c".into(),
        3 => String::new(),
        _ => "x".repeat(65),
    }
}

/// A frame as the model can predict it: lists of nicks sorted, the
/// error's message (for a human) left out, and the session token (random)
/// left out, checked apart. An epoch is random too; the model names a
/// room's n-th life instead, and the real epoch is bound to that name
/// when first seen.
fn normalize(frame: &ServerFrame) -> ServerFrame {
    let mut f = frame.clone();
    match &mut f {
        ServerFrame::Welcome {
            online, session, ..
        } => {
            online.sort();
            *session = None;
        }
        ServerFrame::Entered { online, .. } => online.sort(),
        ServerFrame::Error { message, .. } => message.clear(),
        _ => {}
    }
    f
}

fn error(
    code: ErrorCode,
    room: Option<String>,
    id: Option<String>,
    seq: Option<u64>,
) -> ServerFrame {
    ServerFrame::error_v2(code, String::new(), id, room, seq)
}

/// A room name as the protocol canonicalizes it, or `None` if it breaks
/// the rule.
fn canon(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let ok = (1..=32).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c));
    ok.then(|| raw.to_ascii_lowercase())
}

/// One connection.
struct Conn {
    open: bool,
    session: Option<usize>,
    /// The nick its welcome gave.
    nick: Option<String>,
    connected_at: u64,
    last_heard: u64,
    ping_sent_at: Option<u64>,
    out: Vec<ServerFrame>,
    /// What it has seen of each room: the room's life (unknown to a v1
    /// welcome) and the last seq.
    view: BTreeMap<String, (Option<String>, u64)>,
    /// The rooms its session is in (as they were when it closed).
    rooms: BTreeSet<String>,
}

/// One session: what a welcome's token names.
struct Session {
    nick: String,
    key: String,
    class: &'static str,
    conn: Option<usize>,
    ended_at: Option<u64>,
    rooms: BTreeSet<String>,
    ids: BTreeMap<String, (String, u64)>,
    /// Ids of messages refused `unknown_nick` or `not_in_room`, oldest
    /// first, the newest 64: refused again when resent.
    refused: Vec<(String, ErrorCode)>,
    /// The fatal error its last connection was closed with (not a
    /// takeover's), for the welcome of its next resume.
    closed_for: Option<ErrorCode>,
}

struct Message {
    seq: u64,
    from: usize,
    from_nick: String,
    to: Vec<(usize, String)>,
    text: String,
    ts: u64,
    id: Option<String>,
}

impl Message {
    fn visible_to(&self, s: usize) -> bool {
        self.to.is_empty() || self.from == s || self.to.iter().any(|(t, _)| *t == s)
    }

    fn frame(&self, room: &str, mine: bool, replay: bool) -> ServerFrame {
        let frame = ServerFrame::msg(
            Some(room.into()),
            self.seq,
            self.from_nick.clone(),
            self.to.iter().map(|(_, n)| n.clone()).collect(),
            self.text.clone(),
            self.ts,
            if mine { self.id.clone() } else { None },
        );
        if replay {
            frame.into_replay()
        } else {
            frame
        }
    }
}

struct Room {
    /// Which life of the room this is (a room with no members and no
    /// messages is forgotten; entering it again starts a new life).
    life: String,
    seq: u64,
    members: Vec<usize>,
    history: Vec<Message>,
}

/// The reference: the rules of PROTOCOL.md, written as plainly as possible.
struct Model {
    now: u64,
    clients: Vec<Conn>,
    sessions: Vec<Session>,
    rooms: BTreeMap<String, Room>,
    lives: usize,
    /// For every message stamped, by its (unique) text: the sender's
    /// session and, for a private one, the recipients' sessions.
    addressed: BTreeMap<String, (usize, Option<BTreeSet<usize>>)>,
}

impl Model {
    fn new() -> Self {
        Model {
            now: START,
            clients: Vec::new(),
            sessions: Vec::new(),
            rooms: BTreeMap::new(),
            lives: 0,
            addressed: BTreeMap::new(),
        }
    }

    fn mono(&self) -> u64 {
        self.now - START
    }

    fn connect(&mut self) {
        let mono = self.mono();
        self.clients.push(Conn {
            open: true,
            session: None,
            nick: None,
            connected_at: mono,
            last_heard: mono,
            ping_sent_at: None,
            out: Vec::new(),
            view: BTreeMap::new(),
            rooms: BTreeSet::new(),
        });
    }

    /// A frame from client `i` arrived; returns whether it is open.
    fn heard(&mut self, i: usize) -> bool {
        let mono = self.mono();
        let c = &mut self.clients[i];
        if c.open {
            c.last_heard = mono;
            c.ping_sent_at = None;
        }
        c.open
    }

    /// Send `frame` to client `i`, which keeps track of the last seq it saw.
    fn push(&mut self, i: usize, frame: ServerFrame) {
        let c = &mut self.clients[i];
        match &frame {
            ServerFrame::Presence {
                room: Some(room),
                seq,
                ..
            }
            | ServerFrame::Msg {
                room: Some(room),
                seq,
                replay: false,
                ..
            } => {
                if let Some((_, last)) = c.view.get_mut(room) {
                    *last = *seq;
                }
            }
            _ => {}
        }
        c.out.push(frame);
    }

    fn error(&mut self, i: usize, code: ErrorCode, room: Option<String>, id: Option<String>) {
        self.push(i, error(code, room, id, None));
    }

    /// The session of client `i`, or `not_joined` for it.
    fn joined(&mut self, i: usize) -> Option<usize> {
        let s = self.clients[i].session;
        if s.is_none() {
            self.error(i, ErrorCode::NotJoined, None, None);
        }
        s
    }

    fn conn(&self, s: usize) -> usize {
        self.sessions[s].conn.expect("a member is connected")
    }

    /// The session online under `key`.
    fn online(&self, key: &str) -> Option<usize> {
        (0..self.sessions.len())
            .find(|&s| self.sessions[s].conn.is_some() && self.sessions[s].key == key)
    }

    /// The next seq of `room`.
    fn stamp(&mut self, room: &str) -> u64 {
        let r = self.rooms.get_mut(room).expect("the room exists");
        r.seq += 1;
        r.seq
    }

    fn presence(&self, room: &str, seq: u64, s: usize, status: PresenceStatus) -> ServerFrame {
        ServerFrame::presence(
            Some(room.into()),
            seq,
            self.sessions[s].nick.clone(),
            status,
            self.now,
        )
    }

    /// The newest `limit` messages of `room` with a seq in `(after,
    /// before)` that session `s` may see, oldest first, as it receives
    /// them replayed; and whether older ones it may see exist.
    fn visible(
        &self,
        s: usize,
        room: &str,
        after: u64,
        before: u64,
        limit: usize,
    ) -> (Vec<ServerFrame>, bool) {
        let all: Vec<&Message> = self.rooms[room]
            .history
            .iter()
            .filter(|m| after < m.seq && m.seq < before && m.visible_to(s))
            .collect();
        let skip = all.len().saturating_sub(limit);
        let page = all[skip..]
            .iter()
            .map(|m| m.frame(room, m.from == s, true))
            .collect();
        (page, skip > 0)
    }
}

/// What a run reached, so a fixed walk can show it covers the rules.
#[derive(Debug, Default)]
struct Stats {
    duplicates: usize,
    recovered: usize,
    replayed_after_since: usize,
    replayed_latest: usize,
    private_in_history: usize,
    history_more: usize,
    resumed: usize,
    new_lives: usize,
    errors: BTreeMap<&'static str, usize>,
    /// Deliveries the oracle asked for (and found).
    oracle_expected: u64,
}
