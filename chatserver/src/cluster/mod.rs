//! Several chatserver nodes sharing rooms through NATS JetStream (see
//! ARCHITECTURE.md, "Scale-out").
//!
//! One stream per room: its sequence numbers are the room's seqs. The hub
//! hands what its core proposes to the publisher task, which appends it to
//! the room's stream (with a `Nats-Msg-Id`, so a retry is stored once); a
//! follower task per room reads each stream in order, from every node's
//! proposals, and hands each event to the hub, which feeds it to the core.
//! Nicknames are claimed in a key-value bucket, sessions kept in another
//! (so any node can resume them), and each node heartbeats into a third;
//! a node that stops is noticed by the others, who say its clients left.
//!
//! This file holds the link's settings and what it tells the hub; `start`
//! starts it, `buckets` makes the key-value buckets and reads a key from
//! its stream's leader; each task has a module: `publish` (proposals into
//! the streams), `follow` (the streams read back in order), `entry` (an
//! event as a stream message), `claims` (nicknames and sessions),
//! `nodes` (heartbeats, and judging the silent), `history` (pages read
//! from a stream), `own` (this node's own proposals kept until read back,
//! and applied from that copy if the stream's limits drop them unread),
//! `fence` (nothing published while the others may be taking this node
//! for dead, then its clients they took for gone closed), `roster` (who
//! is in a room, asked of a node that is up by one that cannot read it
//! all from the stream); `export` prints the streams for `chatserver
//! export`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::header::HeaderName;
use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use chatproto::{ClientId, Event, ReadPage, SessionId, TokenHash};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

mod buckets;
mod claims;
mod entry;
mod export;
mod fence;
mod follow;
mod history;
mod nodes;
mod own;
mod publish;
mod roster;
mod start;

pub use export::export;
pub use follow::LimitsSet;
pub use roster::Seats;

use buckets::leader_entry;

/// Stream names are this and the room's name in hex (room names may hold
/// `.`, which stream names may not).
const STREAM_PREFIX: &str = "CHATROOM_";
/// Subjects are this and the room's name in hex.
const SUBJECT_PREFIX: &str = "chatroom.";
/// Where a node says it created a room's stream.
const ROOMS_SUBJECT: &str = "chat.rooms";
/// Where a node (this and its run's origin in hex) is asked to close the
/// connection of a session another node resumes.
const TAKEOVER_PREFIX: &str = "chat.takeover.";
/// How many times a join claims a nickname its own session holds on a
/// connection that is being closed for it.
const TAKEOVER_CLAIMS: u32 = 3;
/// How many times a node tries to delete the claim of a connection it
/// closed for a takeover (waiting 50 ms, then twice as long each time:
/// 350 ms in all; with the wait for the departures to be stored, see
/// `Cluster::departures_stored_within`, within a join's claim timeout
/// when NATS answers).
const TAKEOVER_DELETES: u32 = 4;
/// How long a node tries to give up a nickname claim that NATS would not
/// delete (waiting 50 ms, then twice as long each time, at most 5 s
/// between tries) before it logs that it is still trying (it tries on);
/// and how long it looks for a claim whose answer was lost, to give it
/// back, before it gives up.
const RELEASE_FOR: Duration = Duration::from_secs(300);
/// How long a join waits before claiming once more when the node holding
/// its nickname closed no connection for it (its own loss may be freeing
/// the claim at that moment).
const TAKEOVER_AGAIN_AFTER: Duration = Duration::from_millis(100);
/// How many times a node tries its first heartbeat (1.55 s of waiting in
/// all, from 50 ms).
const FIRST_BEAT_TRIES: u32 = 6;
/// How many times a nickname is claimed while NATS says another write to
/// its key is being stored, and how long it waits before the second try
/// (twice as long each time after: 310 ms in all at most).
const KEY_BUSY_TRIES: u32 = 6;
const KEY_BUSY_WAIT: Duration = Duration::from_millis(10);
/// How many times a nickname is claimed when its claim is found given up
/// between the claim's refusal and the look at who holds it.
const CLAIM_FREED_TRIES: u32 = 3;
/// The key-value buckets.
const NICKS: &str = "chat_nicks";
const SESSIONS: &str = "chat_sessions";
const NODES: &str = "chat_nodes";
/// The header naming the node (and its run) that proposed an event (made
/// once: a name given as a string is checked and copied at every use).
const ORIGIN: HeaderName = HeaderName::from_static("Chat-Origin");
/// How long JetStream remembers message ids to drop a second copy.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// What a client closed because another node took this one for dead is
/// told, and what it proposed meanwhile is refused with.
pub const TAKEN_FOR_DEAD: &str = "this server lost touch with the others, which took it for stopped; reconnect, and your session resumes if your nickname is still free";
/// What a message proposed while the others took this node for dead is
/// refused with: its sender's connection was closed with
/// [`TAKEN_FOR_DEAD`] and has, most often, resumed by the time this is
/// read, so it is told no more to reconnect.
pub const LOST_WHILE_TAKEN_FOR_DEAD: &str =
    "this server lost touch with the others while it was on its way, and they took it for stopped";
/// How often a node heartbeats and looks at the others' heartbeats.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// How long a starting node watches the heartbeat key of its name when a
/// run that did not stop cleanly left it: a live run writes it every
/// [`HEARTBEAT_EVERY`], so twice that and a half sees it write.
const TWIN_WATCH: Duration = Duration::from_millis(2_500);
/// How often every node lists the streams, for rooms whose announcement
/// it missed.
const RESCAN_EVERY: Duration = Duration::from_secs(2);
/// How long a room's follower waits for its next event before it looks
/// whether the stream holds one it has not read (then its consumer is
/// stuck, and it reads the stream again with a new one).
const FOLLOW_STALL: Duration = Duration::from_secs(3);
/// The longest wait between two such looks in a quiet room (the wait
/// doubles from `FOLLOW_STALL` while the room stays quiet).
const FOLLOW_LOOK_MAX: Duration = Duration::from_secs(30);
/// Proposals published before their acknowledgements are awaited.
const PUBLISH_BATCH: usize = 512;
/// Session records are kept this long (a day past any resume window).
const SESSION_MAX_AGE: Duration = Duration::from_secs(86_400);
/// A node's heartbeat is kept this long after its last: a node that never
/// stopped cleanly (killed, its machine lost) leaves its key until then,
/// long after the others took it for dead and freed its nicknames. A
/// live node writes its key every [`HEARTBEAT_EVERY`].
const NODE_MAX_AGE: Duration = Duration::from_secs(86_400);

/// The settings of cluster mode.
#[derive(Debug, Clone)]
pub struct Settings {
    /// NATS server URLs.
    pub urls: Vec<String>,
    /// This node's name.
    pub node: String,
    /// Stream and bucket replicas (1 to 5; a NATS cluster's size, or 1).
    pub replicas: usize,
    /// A node silent this long is taken for dead.
    pub dead_after: Duration,
    /// Longest wait for NATS to claim a join's nickname (under the join
    /// timeout: the join is answered `unavailable` past it).
    pub claim_timeout: Duration,
    /// Stream limits: messages per room and their age (zero: no limit).
    pub max_messages: u64,
    pub max_age: Duration,
    /// Whether the operator gave each of those limits (a flag or the
    /// environment): only a limit given is set, by a node starting, on
    /// the rooms' streams made with another. Left to its default, a limit
    /// applies to new rooms only: a node added without the flags must not
    /// cut every room's history down to the defaults.
    pub max_messages_given: bool,
    pub max_age_given: bool,
    /// How often the rooms' streams are asked where they start now (the
    /// limits drop old events), so that memory serves none of those.
    pub starts_every: Duration,
    /// `--max-frame-bytes`: every event must fit one NATS message.
    pub max_frame_bytes: usize,
    /// Where the heartbeat says whether NATS is reached (`/healthz`,
    /// `chat_log_up`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Room for an event's stored members beyond its largest frame, and a
/// message's headers, within NATS's `max_payload`.
const PAYLOAD_SLACK: usize = 4_096;

/// What the cluster tasks tell the hub.
#[derive(Debug)]
pub enum FromCluster {
    /// A room's stream: its epoch and the first seq it holds; its events
    /// follow.
    Open {
        room: String,
        epoch: String,
        first_seq: u64,
        /// The last seq when the follower started (to catch up to).
        last_seq: u64,
    },
    /// The next event of a room, proposed by `origin`.
    Event { event: Event, origin: Arc<str> },
    /// A stream message this version cannot read: stepped over.
    Skip { room: String, seq: u64 },
    /// The nickname claim (and session lookup) for a join.
    Claimed(Claimed),
    /// The session records up to this ticket are stored.
    Persisted(u64),
    /// A history read.
    Read {
        ticket: u64,
        client: ClientId,
        found: Result<ReadPage, String>,
    },
    /// The nodes (by origin) heartbeating now.
    Alive(HashSet<Arc<str>>),
    /// This node was held up for longer than the others wait for a
    /// heartbeat: they may have taken it for dead and freed its clients'
    /// nicknames (see [`Cluster::check_claims`]).
    HeldUp,
    /// These clients' nickname claims are no longer this node's (another
    /// node freed them while this one seemed dead).
    ClaimsLost(Vec<ClientId>),
    /// The sweep of the claims numbered so is over (its `ClaimsLost`, if
    /// any, came before), and whether NATS answered for every claim: see
    /// [`Cluster::swept`].
    ClaimsChecked(u64, bool),
    /// Another node resumes the session whose token hashes to `token`:
    /// close its connection here, if it is here, and answer on `done`.
    TakeOver {
        token: TokenHash,
        done: tokio::sync::oneshot::Sender<TakenOver>,
    },
    /// The log already held a message this node proposed, by its session
    /// and id (from another node: a resend after the session moved); the
    /// proposal, numbered with the seq of the copy the log holds.
    Duplicate(Event),
    /// The log refused a message this node proposed, for the reason
    /// given (words for its sender): stored now, it would land behind
    /// later messages of its room, or NATS has no room for it (see
    /// [`Cluster::publish`]). Its sender is told it was not sent.
    Refused(Event, String),
    /// Rooms whose streams start later than this node knew: each room,
    /// its stream's first seq (its limits dropped the events before it),
    /// and whether that moved since the last look (else first seen so).
    Starts(Vec<(String, u64, bool)>),
    /// The room's members as the hub has them miss those who entered or
    /// left before the events the stream dropped unread (its limits): the
    /// hub answers nobody for the room until it takes their `Roster`, and
    /// a node starting does not listen until the `Roster` comes.
    RosterLost(String),
    /// Who is in a room as another node holds them, for the hub to give
    /// its core right after the event at their seq (see `roster`); `None`
    /// if no node said.
    Roster { room: String, seats: Option<Seats> },
    /// Another node asks who is in `room`: the hub answers if it has
    /// caught up with it.
    RosterAsked {
        room: String,
        answer: tokio::sync::oneshot::Sender<Option<Seats>>,
    },
}

/// The outcome of claiming a nickname for a join.
#[derive(Debug)]
pub struct Claimed {
    /// Who joins.
    pub client: ClientId,
    /// The claim: its key and revision, or why not.
    pub claim: Result<(String, u64), ClaimError>,
    /// The session the join resumes, if another node began it.
    pub session: Option<(SessionId, String, TokenHash)>,
}

/// What the hub did for another node that resumes one of its sessions.
#[derive(Debug)]
pub enum TakenOver {
    /// No connection of that session here (or none holding a claim).
    NotHere,
    /// Its connection closed and its departures stored: the claim (key
    /// and revision), for the answering task to give up now.
    Closed(String, u64),
    /// Its connection closed, but its departures are not stored yet
    /// (behind a backlog of this node's proposals, or NATS slow): the
    /// claim is given up only once they are, so that the resuming node's
    /// enterings come after them in the log.
    Leaving,
}

/// Why a nickname could not be claimed.
#[derive(Debug)]
pub enum ClaimError {
    /// Someone on some node has it (or one that looks like it): their
    /// nick, whether it is the same nickname (else a look-alike), and the
    /// run (origin) holding it.
    Taken {
        nick: String,
        same: bool,
        origin: Option<String>,
    },
    /// NATS did not answer.
    Unreachable(String),
    /// The session this join resumes is still leaving its rooms on the
    /// node it was connected to, which holds its nickname until that is
    /// stored (see [`TakenOver::Leaving`]).
    Leaving,
}

/// A session to store: its id, nickname and token hash.
pub type SessionRecord = (SessionId, String, TokenHash);

/// What the hub hands the publisher, in order.
#[derive(Debug)]
pub enum ToPublisher {
    /// An event to append to its room's stream.
    Propose(Proposal),
    /// Answered once everything handed over before it is stored (or
    /// refused to its sender); dropped unanswered if the publisher ends.
    Barrier(tokio::sync::oneshot::Sender<()>),
}

/// One event for a room's stream.
#[derive(Debug)]
pub struct Proposal {
    pub room: Arc<str>,
    pub payload: Bytes,
    pub msg_id: String,
    /// A message or an entering, which the core can take back
    /// (`Server::handle_log_refused`): one the log has no room for is
    /// refused to its sender rather than tried again until there is. A
    /// leaving must be stored, sooner or later.
    pub undoable: bool,
    /// Published once already (its acknowledgement failed): a duplicate
    /// may be that try's copy, not another node's.
    pub tried: bool,
    /// When it was first published (the wall clock, as NATS stamps what
    /// it stores): no copy this node stored is older, which bounds the
    /// look for one whose answer was lost (another node may have stored
    /// one under an id every node gives alike earlier).
    pub first_sent: Option<std::time::SystemTime>,
    /// Its place among this node's proposals (see `fence`).
    pub number: usize,
}

/// The node's link to the cluster.
pub struct Cluster {
    client: async_nats::Client,
    js: jetstream::Context,
    nicks: kv::Store,
    sessions: kv::Store,
    nodes: kv::Store,
    settings: Settings,
    /// This node's name and run: `node/random`.
    pub origin: Arc<str>,
    proposals: mpsc::UnboundedSender<ToPublisher>,
    session_tx: mpsc::UnboundedSender<(Vec<SessionRecord>, u64)>,
    /// Proposals not acknowledged yet (the hub stops reading past a limit).
    pub pending: Arc<AtomicUsize>,
    to_hub: mpsc::Sender<FromCluster>,
    /// Rooms followed.
    following: Mutex<HashSet<String>>,
    /// Proposals numbered so far (their message ids).
    next_id: AtomicUsize,
    /// Set once the node listens (see [`Cluster::set_ready`]): other
    /// nodes are judged from then on.
    pub ready: std::sync::atomic::AtomicBool,
    /// What the node says before it listens, said once it does (each: a
    /// warning or not, the room, the words).
    said_later: Mutex<Vec<(bool, String, String)>>,
    /// Per room, the seq the log gave this node's latest proposal.
    acked: Mutex<HashMap<Arc<str>, u64>>,
    /// This node's proposals stored and not read back yet (see `own`).
    own: Mutex<own::OwnByRoom>,
    /// A sweep of this node's nickname claims is under way; another was
    /// asked for meanwhile.
    checking_claims: AtomicBool,
    claims_again: AtomicBool,
    /// Sessions (by their token's hash) whose connection this node closed
    /// for another node's resume, and whose nickname claim it holds until
    /// their departures are stored (see [`TakenOver::Leaving`]).
    leaving: Mutex<HashSet<TokenHash>>,
    /// Proposals made so far, of every kind (their `number`s).
    numbered: AtomicUsize,
    /// Holds the publisher while the others may take this node for dead.
    fence: fence::Fence,
    /// Rooms whose stream went from under this node (deleted, or NATS
    /// lost its store), each with the words for a refused sender: the
    /// node keeps the room as it was and refuses what comes for it until
    /// it restarts (see `follow`).
    lost_rooms: Mutex<HashMap<String, String>>,
}

/// Which stream and subject hold `room`.
fn names(room: &str) -> (String, String) {
    let hex = hex(room.as_bytes());
    (
        format!("{STREAM_PREFIX}{hex}"),
        format!("{SUBJECT_PREFIX}{hex}"),
    )
}

/// `bytes` in lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The room whose stream is named `stream`, if it is one: the name this
/// version gives a room's stream ([`names`]), of a valid room name.
/// Anything else that lists under the prefix (a stream made by hand, or
/// by something else writing to the NATS account) is not followed,
/// exported, or taken for a room.
fn room_of_stream(stream: &str) -> Option<String> {
    let room = unhex(stream.strip_prefix(STREAM_PREFIX)?)?;
    let valid = chatproto::room_name(&room).as_deref() == Ok(room.as_str());
    (valid && names(&room).0 == stream).then_some(room)
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// A stream's description: the room and its epoch.
#[derive(Serialize, Deserialize)]
struct Description {
    room: String,
    epoch: String,
}

/// A claim's value: who holds the nickname, and which attempt of this
/// node wrote it (so that one whose answer was lost can be found and
/// given back; absent in the claims of nodes before it).
#[derive(Serialize, Deserialize)]
struct ClaimValue {
    origin: String,
    nick: String,
    key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    attempt: String,
}

/// A session's record: enough to resume it on any node.
#[derive(Serialize, Deserialize)]
struct SessionValue {
    id: u64,
    nick: String,
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    // A weaker id only risks a clash with another run of the same node.
    let _ = getrandom::fill(&mut b);
    hex(&b)
}

impl Cluster {
    /// How long after this node's last heartbeat it holds its proposals:
    /// half a heartbeat period before the others could take it for dead
    /// (see `fence`).
    fn warn_at(&self) -> Duration {
        self.settings.dead_after.saturating_sub(HEARTBEAT_EVERY / 2)
    }

    /// The hub closed the clients the sweep of the claims numbered `n`
    /// found freed: the publisher may go on if it waited for that, and
    /// NATS answered for every claim (`complete`; if not, the heartbeat
    /// asks for another sweep).
    pub fn swept(&self, n: u64, complete: bool) {
        if complete {
            self.fence.swept(n, self.warn_at());
        }
    }

    /// `session` is closed because another node took this one for dead:
    /// what it proposed and is not published yet is refused to it.
    pub fn session_gone(&self, session: SessionId) {
        self.fence.gone(
            session,
            self.numbered.load(std::sync::atomic::Ordering::Relaxed),
        );
    }

    /// How long a node's heartbeat may be silent before it is taken for
    /// dead.
    pub fn dead_after(&self) -> Duration {
        self.settings.dead_after
    }

    /// Whether the session whose token hashes to `token` is leaving its
    /// rooms here after a takeover (its claim held until that is stored).
    pub fn leaving(&self, token: &TokenHash) -> bool {
        lock(&self.leaving).contains(token)
    }

    /// Say that session is leaving (`true`), or has left.
    pub fn set_leaving(&self, token: TokenHash, leaving: bool) {
        let mut set = lock(&self.leaving);
        if leaving {
            set.insert(token);
        } else {
            set.remove(&token);
        }
    }

    /// How long a takeover waits for the closed session's departures to
    /// be stored before giving up its nickname claim all the same: 2 s,
    /// or two thirds of the asker's claim timeout if that is less (the
    /// asker must get its answer, and delete its claim, within it).
    pub fn departures_stored_within(&self) -> Duration {
        (self.settings.claim_timeout * 2 / 3).min(Duration::from_secs(2))
    }
}

/// A lock that a panic elsewhere does not poison for us.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `said`, an error of NATS's, with the likely cause when the server
/// `client` reached says it has no JetStream (nats-server started
/// without `-js`): NATS's own words ("jetstream unavailable", "requested
/// JetStream resource does not exist") do not say what to do. Only a
/// hint: in a NATS cluster, JetStream may be on the other servers.
fn jetstream_hint(client: &async_nats::Client, said: String) -> String {
    if client.server_info().jetstream {
        said
    } else {
        format!("{said} (the NATS server reached has no JetStream: start nats-server with -js)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_streams_named_as_this_version_names_a_room_are_rooms() {
        for room in ["lobby", "rust-dev", "a.b_c", "0"] {
            assert_eq!(room_of_stream(&names(room).0).as_deref(), Some(room));
        }
        let not_rooms = [
            "OTHER_6c6f626279".to_owned(),
            // Not hex, odd length, not UTF-8.
            format!("{STREAM_PREFIX}zz"),
            format!("{STREAM_PREFIX}6c6"),
            format!("{STREAM_PREFIX}ff"),
            // Hex of names no client could enter: empty, a space, a
            // control character, upper case (rooms are folded).
            STREAM_PREFIX.to_owned(),
            format!("{STREAM_PREFIX}{}", hex(b"a b")),
            format!("{STREAM_PREFIX}{}", hex(b"a\nb")),
            format!("{STREAM_PREFIX}{}", hex(b"Lobby")),
            format!("{STREAM_PREFIX}{}", hex("ünïcode".as_bytes())),
            format!("{STREAM_PREFIX}{}", hex(b"#rust")),
            format!("{STREAM_PREFIX}{}", hex("x".repeat(200).as_bytes())),
            // A room's hex in upper case: another stream than its own.
            format!("{STREAM_PREFIX}6C6F626279"),
        ];
        for stream in not_rooms {
            assert_eq!(room_of_stream(&stream), None, "{stream}");
        }
    }
}
