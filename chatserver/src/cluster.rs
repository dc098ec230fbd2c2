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

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::header::{HeaderName, NATS_MESSAGE_ID};
use async_nats::jetstream::{self, consumer, kv, stream};
use async_nats::HeaderMap;
use bytes::Bytes;
use chatproto::{
    ClientId, Event, EventBody, PresenceStatus, ReadPage, ReadQuery, Recipient, SessionId,
    TokenHash,
};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{info, warn};

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
/// 350 ms in all, well within a join's claim timeout).
const TAKEOVER_DELETES: u32 = 4;
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
/// The key-value buckets.
const NICKS: &str = "chat_nicks";
const SESSIONS: &str = "chat_sessions";
const NODES: &str = "chat_nodes";
/// The header naming the node (and its run) that proposed an event (made
/// once: a name given as a string is checked and copied at every use).
const ORIGIN: HeaderName = HeaderName::from_static("Chat-Origin");
/// How long JetStream remembers message ids to drop a second copy.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How often a node heartbeats and looks at the others' heartbeats.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// How often every node lists the streams, for rooms whose announcement
/// it missed.
const RESCAN_EVERY: Duration = Duration::from_secs(2);
/// How long a room's follower waits for its next event, when this node
/// knows of a stored one it has not read, before it reads the stream again
/// with a new consumer.
const FOLLOW_STALL: Duration = Duration::from_secs(3);
/// Proposals published before their acknowledgements are awaited.
const PUBLISH_BATCH: usize = 512;
/// Session records are kept this long (a day past any resume window).
const SESSION_MAX_AGE: Duration = Duration::from_secs(86_400);

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
    /// How often the rooms' streams are asked where they start now (the
    /// limits drop old events), so that memory serves none of those.
    pub starts_every: Duration,
}

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
    /// Another node resumes the session whose token hashes to `token`:
    /// close its connection here, if it is here, and answer with that
    /// connection's nickname claim (to be given up) on `done`.
    TakeOver {
        token: TokenHash,
        done: tokio::sync::oneshot::Sender<Option<(String, u64)>>,
    },
    /// The log already held a message this node proposed, by its session
    /// and id (from another node: a resend after the session moved); the
    /// proposal, numbered with the seq of the copy the log holds.
    Duplicate(Event),
    /// Rooms whose streams start later than this node knew: each room,
    /// its stream's first seq (its limits dropped the events before it),
    /// and whether that moved since the last look (else first seen so).
    Starts(Vec<(String, u64, bool)>),
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
}

/// A session to store: its id, nickname and token hash.
pub type SessionRecord = (SessionId, String, TokenHash);

/// One event for a room's stream.
#[derive(Debug)]
pub struct Proposal {
    pub room: Arc<str>,
    pub payload: Bytes,
    pub msg_id: String,
    /// Published once already (its acknowledgement failed): a duplicate
    /// may be that try's copy, not another node's.
    pub tried: bool,
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
    proposals: mpsc::UnboundedSender<Proposal>,
    session_tx: mpsc::UnboundedSender<(Vec<SessionRecord>, u64)>,
    /// Proposals not acknowledged yet (the hub stops reading past a limit).
    pub pending: Arc<AtomicUsize>,
    to_hub: mpsc::Sender<FromCluster>,
    /// Rooms followed.
    following: Mutex<HashSet<String>>,
    /// Proposals numbered so far (their message ids).
    next_id: AtomicUsize,
    /// Set once the node listens: other nodes are judged from then on.
    pub ready: std::sync::atomic::AtomicBool,
    /// Per room, the seq the log gave this node's latest proposal.
    acked: Mutex<HashMap<Arc<str>, u64>>,
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

/// A claim's value: who holds the nickname.
#[derive(Serialize, Deserialize)]
struct ClaimValue {
    origin: String,
    nick: String,
    key: String,
}

/// A session's record: enough to resume it on any node.
#[derive(Serialize, Deserialize)]
struct SessionValue {
    id: u64,
    nick: String,
}

/// An event as a stream message's payload, read: its kind and nickname
/// borrowed from the payload where they hold no escape ([`LoggedOut`] is
/// the same payload written).
#[derive(Deserialize)]
struct Logged<'a> {
    /// `p` presence, `m` message.
    #[serde(borrow)]
    k: Cow<'a, str>,
    s: u64,
    #[serde(borrow)]
    n: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    on: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    to: Vec<(u64, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    ts: u64,
}

/// An event as a stream message's payload, written from the event's own
/// strings (no copy of them on the way).
#[derive(Serialize)]
struct LoggedOut<'a> {
    k: &'a str,
    s: u64,
    n: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    on: Option<bool>,
    #[serde(skip_serializing_if = "LoggedRecipients::is_empty")]
    to: LoggedRecipients<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    t: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    ts: u64,
}

/// `event` as a stream message's payload.
pub fn encode_event(event: &Event) -> Bytes {
    let logged = match &event.body {
        EventBody::Presence {
            session,
            nick,
            status,
            ..
        } => LoggedOut {
            k: "p",
            s: session.0,
            n: nick,
            on: Some(*status == PresenceStatus::Online),
            to: LoggedRecipients(&[]),
            t: None,
            id: None,
            ts: event.ts,
        },
        EventBody::Msg {
            from,
            nick,
            to,
            text,
            id,
            ..
        } => LoggedOut {
            k: "m",
            s: from.0,
            n: nick,
            on: None,
            to: LoggedRecipients(to),
            t: Some(text),
            id: id.as_deref(),
            ts: event.ts,
        },
        _ => return Bytes::new(),
    };
    Bytes::from(serde_json::to_vec(&logged).unwrap_or_default())
}

/// A message's recipients as the log holds them: `[session, nick]` pairs.
struct LoggedRecipients<'a>(&'a [Recipient]);

impl LoggedRecipients<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for LoggedRecipients<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|r| (r.session.0, &*r.nick)))
    }
}

/// A stream message's payload as the event `seq` of `room`.
pub fn decode_event(room: &Arc<str>, seq: u64, payload: &[u8]) -> Option<Event> {
    match Plain(payload).read() {
        Some((ts, body)) => Some(Event::new(Arc::clone(room), seq, ts, body)),
        None => decode_any(room, seq, payload),
    }
}

/// [`decode_event`] for any payload serde can read (other key orders,
/// whitespace, escapes, members this version does not know).
fn decode_any(room: &Arc<str>, seq: u64, payload: &[u8]) -> Option<Event> {
    let l: Logged<'_> = serde_json::from_slice(payload).ok()?;
    let body = match &*l.k {
        "p" => {
            let status = if l.on? {
                PresenceStatus::Online
            } else {
                PresenceStatus::Offline
            };
            EventBody::presence(SessionId(l.s), &*l.n, status)
        }
        "m" => EventBody::msg(
            SessionId(l.s),
            &*l.n,
            l.to.into_iter()
                .map(|(s, n)| Recipient::new(SessionId(s), n))
                .collect(),
            l.t?,
            l.id,
        ),
        _ => return None,
    };
    Some(Event::new(Arc::clone(room), seq, l.ts, body))
}

/// A payload read the short way: exactly as [`encode_event`] writes it
/// (its keys in its order, no whitespace) with no escape in any string,
/// which is nearly every event; anything else is left to serde
/// (`read` says `None`). serde_json's general reading of the same object
/// was a tenth of a node's instructions per event.
struct Plain<'a>(&'a [u8]);

impl<'a> Plain<'a> {
    /// The event's `ts` and body, having read the whole payload.
    fn read(mut self) -> Option<(u64, EventBody)> {
        self.lit(b"{\"k\":\"")?;
        let kind = *self.0.first()?;
        self.0 = &self.0[1..];
        self.lit(b"\",\"s\":")?;
        let session = SessionId(self.num()?);
        self.lit(b",\"n\":")?;
        let nick = self.string()?;
        let on = if self.lit(b",\"on\":true").is_some() {
            Some(true)
        } else if self.lit(b",\"on\":false").is_some() {
            Some(false)
        } else {
            None
        };
        let mut to = Vec::new();
        if self.lit(b",\"to\":[").is_some() {
            loop {
                self.lit(b"[")?;
                let s = SessionId(self.num()?);
                self.lit(b",")?;
                to.push(Recipient::new(s, self.string()?));
                self.lit(b"]")?;
                if self.lit(b",").is_none() {
                    break;
                }
            }
            self.lit(b"]")?;
        }
        // A key once read must have its string: `"t":,` is no text.
        let text = match self.lit(b",\"t\":") {
            Some(()) => Some(self.string()?),
            None => None,
        };
        let id = match self.lit(b",\"id\":") {
            Some(()) => Some(self.string()?),
            None => None,
        };
        self.lit(b",\"ts\":")?;
        let ts = self.num()?;
        self.lit(b"}")?;
        if !self.0.is_empty() {
            return None;
        }
        let body = match (kind, on) {
            (b'p', Some(on)) if to.is_empty() && text.is_none() && id.is_none() => {
                let status = if on {
                    PresenceStatus::Online
                } else {
                    PresenceStatus::Offline
                };
                EventBody::presence(session, nick, status)
            }
            (b'm', None) => EventBody::msg(session, nick, to, text?, id.map(str::to_owned)),
            _ => return None,
        };
        Some((ts, body))
    }

    /// Step over `s` if the payload goes on with it.
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        self.0 = self.0.strip_prefix(s)?;
        Some(())
    }

    /// A JSON number that fits a u64, written as the encoder writes one
    /// (no sign, no leading zero, no fraction).
    fn num(&mut self) -> Option<u64> {
        let len = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        let (digits, rest) = self.0.split_at(len);
        if len == 0 || (digits[0] == b'0' && len > 1) {
            return None;
        }
        let n = digits.iter().try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })?;
        self.0 = rest;
        Some(n)
    }

    /// A JSON string with no escape and no control character in it.
    fn string(&mut self) -> Option<&'a str> {
        let rest = self.0.strip_prefix(b"\"")?;
        let end = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[end] != b'"' {
            return None;
        }
        let s = std::str::from_utf8(&rest[..end]).ok()?;
        self.0 = &rest[end + 1..];
        Some(s)
    }
}

/// The stream sequence of a JetStream message, read from its reply
/// subject: `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer
/// seq>.<time>.<pending>`, or with the domain and account hash after
/// `$JS.ACK.` (and maybe a token at the end). async-nats's `info()` reads
/// every field, and its ordered consumer has already done so once for each
/// message; this reads the one the follower needs. `None` for any other
/// shape (then `info()` is asked).
fn stream_seq(reply: &str) -> Option<u64> {
    let rest = reply.strip_prefix("$JS.ACK.")?.as_bytes();
    // Where each token starts, for the first ten.
    let mut starts = [0usize; 10];
    let mut n = 1;
    for (i, &b) in rest.iter().enumerate() {
        if b == b'.' {
            if n == starts.len() {
                n += 1;
                break;
            }
            starts[n] = i + 1;
            n += 1;
        }
    }
    let at = match n {
        7 => 3,
        9.. => 5,
        _ => return None,
    };
    let token = &rest[starts[at]..];
    let token = &token[..token.iter().position(|&b| b == b'.')?];
    std::str::from_utf8(token).ok()?.parse().ok()
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    // A weaker id only risks a clash with another run of the same node.
    let _ = getrandom::fill(&mut b);
    hex(&b)
}

impl Cluster {
    /// Connect, make the buckets, and start the publisher, the room
    /// discovery and the heartbeat. Events reach the hub through `to_hub`.
    pub async fn start(
        settings: Settings,
        to_hub: mpsc::Sender<FromCluster>,
    ) -> Result<Arc<Cluster>, String> {
        let urls = settings.urls.clone();
        let client = async_nats::ConnectOptions::new()
            .name(format!("chatserver {}", settings.node))
            .max_reconnects(None)
            .connect(urls.clone())
            .await
            .map_err(|e| format!("cannot reach NATS at {}: {e}", urls.join(",")))?;
        let js = jetstream::new(client.clone());
        let replicas = settings.replicas;
        let nicks = bucket(&js, NICKS, replicas, Duration::ZERO).await?;
        let sessions = bucket(&js, SESSIONS, replicas, SESSION_MAX_AGE).await?;
        let nodes = bucket(&js, NODES, replicas, Duration::ZERO).await?;
        let origin: Arc<str> = Arc::from(format!("{}/{}", settings.node, random_hex(6)));
        let (proposals, rx) = mpsc::unbounded_channel();
        let (session_tx, session_rx) = mpsc::unbounded_channel();
        let cluster = Arc::new(Cluster {
            client,
            js,
            nicks,
            sessions,
            nodes,
            settings,
            origin,
            proposals,
            session_tx,
            pending: Arc::new(AtomicUsize::new(0)),
            to_hub,
            following: Mutex::new(HashSet::new()),
            next_id: AtomicUsize::new(0),
            ready: std::sync::atomic::AtomicBool::new(false),
            acked: Mutex::new(HashMap::new()),
        });
        // Heartbeat before anything else: others must not take this run
        // for dead once it has clients. A bucket just made with replicas
        // may not be reachable through every NATS server yet ("no stream
        // found"): a few more tries, waiting twice as long each time.
        let mut beat = cluster.beat().await;
        let mut wait = Duration::from_millis(50);
        for _ in 1..FIRST_BEAT_TRIES {
            if beat.is_ok() {
                break;
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
            beat = cluster.beat().await;
        }
        beat?;
        tokio::spawn(Arc::clone(&cluster).publish(rx));
        tokio::spawn(Arc::clone(&cluster).write_sessions(session_rx));
        tokio::spawn(Arc::clone(&cluster).discover());
        tokio::spawn(Arc::clone(&cluster).watch_nodes());
        tokio::spawn(Arc::clone(&cluster).watch_starts());
        let subject = format!("{TAKEOVER_PREFIX}{}", hex(cluster.origin.as_bytes()));
        let asked = cluster
            .client
            .subscribe(subject)
            .await
            .map_err(|e| format!("cannot subscribe to takeovers: {e}"))?;
        tokio::spawn(Arc::clone(&cluster).answer_takeovers(asked));
        Ok(cluster)
    }

    /// Every `starts_every`, ask each room's stream where it starts, and
    /// tell the hub of each start that moved (the stream's limits dropped
    /// older events, which this node's memory may still hold).
    async fn watch_starts(self: Arc<Self>) {
        let mut known: HashMap<String, u64> = HashMap::new();
        let mut tick = tokio::time::interval(self.settings.starts_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut initial = true;
        loop {
            tick.tick().await;
            let rooms = self.room_states().await;
            let first_look = std::mem::replace(&mut initial, false);
            let mut starts = Vec::new();
            for (room, first, _) in rooms {
                // A room there at the first look was loaded from where its
                // stream started then (nothing to say, but to be sure); one
                // seen later began here at 1.
                let was = known.insert(room.clone(), first);
                let moved = match was {
                    Some(was) if first > was => true,
                    None if first > 1 => !first_look,
                    _ => continue,
                };
                starts.push((room, first, moved));
            }
            if !starts.is_empty() && self.to_hub.send(FromCluster::Starts(starts)).await.is_err() {
                return;
            }
            if self.to_hub.is_closed() {
                return;
            }
        }
    }

    /// Hand `event` (decided by this node's core) to the publisher.
    pub fn propose(&self, event: &Event) {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let msg_id = format!("{}/{n}", self.origin);
        self.propose_with_id(event, msg_id);
    }

    /// Hand `event` to the publisher with the id that makes it unique
    /// across nodes (several nodes saying one dead node's client left).
    pub fn propose_with_id(&self, event: &Event, msg_id: String) {
        self.pending.fetch_add(1, Ordering::Relaxed);
        let proposal = Proposal {
            room: Arc::clone(&event.room),
            payload: encode_event(event),
            msg_id,
            tried: false,
        };
        if self.proposals.send(proposal).is_err() {
            self.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The publisher: proposals go to their rooms' streams in order, in
    /// batches whose acknowledgements are awaited together. A failed one
    /// is tried again (with everything after it, in order) until NATS
    /// takes it: its id makes a copy stored twice count once.
    async fn publish(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Proposal>) {
        let mut batch = Vec::with_capacity(PUBLISH_BATCH);
        // Rooms whose stream is known to exist, with their subject (made
        // once, cloned cheaply per message).
        let mut known: HashMap<Arc<str>, async_nats::Subject> = HashMap::new();
        loop {
            if rx.recv_many(&mut batch, PUBLISH_BATCH).await == 0 {
                return;
            }
            let mut backoff = Duration::from_millis(50);
            let mut from = 0;
            while from < batch.len() {
                match self.publish_some(&mut batch[from..], &mut known).await {
                    Ok(()) => from = batch.len(),
                    Err((done, e)) => {
                        from += done;
                        warn!(error = %e, "cannot append to the cluster's log; trying again");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
            }
            self.pending.fetch_sub(batch.len(), Ordering::Relaxed);
            batch.clear();
        }
    }

    /// Publish `batch` and await its acknowledgements; on failure, how
    /// many from the start are surely stored (a publish that failed before
    /// the acknowledgements were awaited counts none: all go again, and
    /// their ids keep the ones stored already from being stored twice).
    async fn publish_some(
        self: &Arc<Self>,
        batch: &mut [Proposal],
        known: &mut HashMap<Arc<str>, async_nats::Subject>,
    ) -> Result<(), (usize, String)> {
        let n = batch.len();
        let mut acks = Vec::with_capacity(n);
        for (i, p) in batch.iter_mut().enumerate() {
            if !known.contains_key(&p.room) {
                self.open_stream(&p.room).await.map_err(|e| (0, e))?;
                known.insert(Arc::clone(&p.room), names(&p.room).1.into());
            }
            let mut headers = HeaderMap::new();
            headers.insert(NATS_MESSAGE_ID, p.msg_id.as_str());
            headers.insert(ORIGIN, &*self.origin);
            let subject = known[&p.room].clone();
            match self
                .js
                .publish_with_headers(subject, headers, p.payload.clone())
                .await
            {
                // Whether it was published before this try, and is now.
                Ok(ack) => acks.push((ack, std::mem::replace(&mut p.tried, true))),
                Err(e) => return Err((0, format!("message {i} of {n}: {e}"))),
            }
        }
        for (i, (ack, tried)) in acks.into_iter().enumerate() {
            // A duplicate is success: an earlier try stored it, or another
            // node did (a session's message resent after it moved; the
            // hub answers `duplicate`: this copy will not come back).
            match ack.await {
                // A copy of a message still being stored (nats-server 2.10
                // with replicas answers so, with seq 0; 2.11 and later with
                // an error): its seq is known once it is, so ask again.
                Ok(ack) if ack.duplicate && ack.sequence == 0 => {
                    return Err((i, "a copy of a message still being stored".into()))
                }
                Ok(ack) => {
                    let p = &batch[i];
                    if ack.duplicate
                        && p.msg_id.starts_with("m/")
                        && !self.ours(p, ack.sequence, tried).await
                    {
                        if let Some(event) = decode_event(&p.room, ack.sequence, &p.payload) {
                            let _ = self.to_hub.send(FromCluster::Duplicate(event)).await;
                        }
                        // An older seq, not this node's proposal.
                        continue;
                    }
                    // In order within a room; the latest, not the highest,
                    // so a stream made again does not leave an old seq here.
                    lock(&self.acked).insert(Arc::clone(&p.room), ack.sequence);
                }
                Err(e) => return Err((i, e.to_string())),
            }
        }
        Ok(())
    }

    /// Make sure `room` has a stream (creating it with a new epoch if
    /// not), and follow it.
    async fn open_stream(self: &Arc<Self>, room: &str) -> Result<(), String> {
        let (name, subject) = names(room);
        for _ in 0..3 {
            if self.js.get_stream(&name).await.is_ok() {
                self.follow(room);
                return Ok(());
            }
            let description = serde_json::to_string(&Description {
                room: room.to_owned(),
                epoch: random_hex(16),
            })
            .map_err(|e| e.to_string())?;
            let config = stream::Config {
                name: name.clone(),
                subjects: vec![subject.clone()],
                description: Some(description),
                max_messages: clamp_i64(self.settings.max_messages),
                max_age: self.settings.max_age,
                duplicate_window: DUPLICATE_WINDOW,
                num_replicas: self.settings.replicas,
                discard: stream::DiscardPolicy::Old,
                storage: stream::StorageType::File,
                ..Default::default()
            };
            // Two nodes may race to create it: the loser finds it next time.
            if self.js.create_stream(config).await.is_ok() {
                info!(room, "created the room's stream");
                let _ = self
                    .client
                    .publish(ROOMS_SUBJECT, Bytes::from(room.to_owned()))
                    .await;
                self.follow(room);
                return Ok(());
            }
        }
        Err(format!("cannot create the stream of #{room}"))
    }

    /// Start following `room`'s stream, unless it is followed.
    pub fn follow(self: &Arc<Self>, room: &str) {
        let new = lock(&self.following).insert(room.to_owned());
        if new {
            tokio::spawn(Arc::clone(self).follow_room(room.to_owned()));
        }
    }

    /// Read one room's stream in order, forever: each event to the hub.
    async fn follow_room(self: Arc<Self>, room: String) {
        let (name, _) = names(&room);
        let room: Arc<str> = Arc::from(room);
        let mut next = 0u64;
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.follow_once(&room, &name, &mut next).await {
                Ok(()) => return, // the hub is gone
                Err(e) => {
                    warn!(room = &*room, error = %e, "reading the room's stream again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// One reading of a stream from `next`; `Ok` only when the hub is gone.
    async fn follow_once(&self, room: &Arc<str>, name: &str, next: &mut u64) -> Result<(), String> {
        let mut stream = self.js.get_stream(name).await.map_err(|e| e.to_string())?;
        let info = stream.info().await.map_err(|e| e.to_string())?;
        if *next == 0 {
            let d: Description = info
                .config
                .description
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok())
                .ok_or("the stream has no room description")?;
            let state = &info.state;
            let first = if state.messages == 0 {
                state.last_sequence + 1
            } else {
                state.first_sequence
            };
            *next = first;
            let open = FromCluster::Open {
                room: room.to_string(),
                epoch: d.epoch,
                first_seq: first,
                last_seq: state.last_sequence,
            };
            if self.to_hub.send(open).await.is_err() {
                return Ok(());
            }
        }
        let config = consumer::push::OrderedConfig {
            deliver_subject: self.client.new_inbox(),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: *next,
            },
            ..Default::default()
        };
        let consumer = stream
            .create_consumer(config)
            .await
            .map_err(|e| e.to_string())?;
        let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
        // The origin of the last event, shared by the events after it from
        // the same node (most of them, in a busy room).
        let mut origin: Arc<str> = Arc::from("");
        loop {
            let msg = match tokio::time::timeout(FOLLOW_STALL, messages.next()).await {
                Ok(Some(msg)) => msg,
                Ok(None) => break,
                // Nothing for a while, though this node's own proposals are
                // stored past what it read: the consumer is stuck (async-nats
                // remaking it after a NATS server was lost may never finish):
                // read again, with a new one, from the next event.
                Err(_) => {
                    let stored = lock(&self.acked).get(&**room).copied();
                    match stored {
                        Some(stored) if stored >= *next => {
                            return Err(format!(
                                "no event past seq {} for {FOLLOW_STALL:?}, though this \
                                 node's proposals are stored up to {stored}",
                                *next - 1
                            ));
                        }
                        _ => continue,
                    }
                }
            };
            let msg = msg.map_err(|e| e.to_string())?;
            let seq = match msg.reply.as_deref().and_then(stream_seq) {
                Some(seq) => seq,
                None => msg.info().map_err(|e| e.to_string())?.stream_sequence,
            };
            if seq < *next {
                continue;
            }
            if seq > *next {
                // Gone for good (retention dropped them while this node
                // lagged): stepped over, as every node does that reads
                // them now. Otherwise never applied around: read again
                // from the missing one.
                let first = stream
                    .info()
                    .await
                    .map_err(|e| e.to_string())?
                    .state
                    .first_sequence;
                if first < seq {
                    return Err(format!("expected seq {next}, got {seq}"));
                }
                warn!(
                    room = %room,
                    from = *next,
                    to = seq - 1,
                    "events removed by retention before this node read them"
                );
                while *next < seq {
                    let skip = FromCluster::Skip {
                        room: room.to_string(),
                        seq: *next,
                    };
                    if self.to_hub.send(skip).await.is_err() {
                        return Ok(());
                    }
                    *next += 1;
                }
            }
            let from = msg.headers.as_ref().and_then(|h| h.get(ORIGIN));
            let from = from.map_or("", |v| v.as_str());
            if *origin != *from {
                origin = Arc::from(from);
            }
            let item = match decode_event(room, seq, &msg.payload) {
                Some(event) => FromCluster::Event {
                    event,
                    origin: Arc::clone(&origin),
                },
                None => {
                    warn!(
                        room = %room,
                        seq, "stepping over a log entry this version cannot read"
                    );
                    FromCluster::Skip {
                        room: room.to_string(),
                        seq,
                    }
                }
            };
            if self.to_hub.send(item).await.is_err() {
                return Ok(());
            }
            *next += 1;
        }
        Err("the stream's consumer ended".into())
    }

    /// Follow every room: those that exist now, those announced, and
    /// (every few seconds) any whose announcement was missed.
    async fn discover(self: Arc<Self>) {
        let mut announced = match self.client.subscribe(ROOMS_SUBJECT).await {
            Ok(s) => Some(s),
            Err(e) => {
                warn!(error = %e, "cannot hear new rooms; listing streams only");
                None
            }
        };
        let mut tick = tokio::time::interval(RESCAN_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    for room in self.list_rooms().await {
                        self.follow(&room);
                    }
                }
                Some(msg) = async { match announced.as_mut() { Some(s) => s.next().await, None => std::future::pending().await } } => {
                    if let Ok(room) = std::str::from_utf8(&msg.payload) {
                        if chatproto::room_name(room).as_deref() == Ok(room) {
                            self.follow(room);
                        }
                    }
                }
            }
            if self.to_hub.is_closed() {
                return;
            }
        }
    }

    /// Every room with a stream, and its last seq.
    pub async fn room_streams(&self) -> Vec<(String, u64)> {
        let states = self.room_states().await;
        states
            .into_iter()
            .map(|(room, _, last)| (room, last))
            .collect()
    }

    /// Every room with a stream, with its first and last seq: one request
    /// to NATS per page of streams (256), not one per room.
    async fn room_states(&self) -> Vec<(String, u64, u64)> {
        let mut streams = self.js.streams();
        let mut out = Vec::new();
        while let Some(info) = streams.next().await {
            let info = match info {
                Ok(info) => info,
                Err(e) => {
                    warn!(error = %e, "cannot list the rooms' streams");
                    break;
                }
            };
            let room = info.config.name.strip_prefix(STREAM_PREFIX).and_then(unhex);
            if let Some(room) = room {
                out.push((room, info.state.first_sequence, info.state.last_sequence));
            }
        }
        out
    }

    async fn list_rooms(&self) -> Vec<String> {
        let mut names = self.js.stream_names();
        let mut rooms = Vec::new();
        while let Some(name) = names.next().await {
            let Ok(name) = name else { break };
            if let Some(room) = name.strip_prefix(STREAM_PREFIX).and_then(unhex) {
                rooms.push(room);
            }
        }
        rooms
    }

    /// Say this run is alive.
    async fn beat(&self) -> Result<(), String> {
        // Within a heartbeat period: a put sent on a connection to a NATS
        // server that has just gone is never answered, and waiting out
        // the client's request timeout (5 s) would leave this node silent
        // past `dead_after` although it reconnected at once; the next
        // beat goes on the new connection.
        let put = self
            .nodes
            .put(&self.settings.node, Bytes::from(self.origin.to_string()));
        match tokio::time::timeout(HEARTBEAT_EVERY, put).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("cannot heartbeat into NATS: {e}")),
            Err(_) => Err(format!(
                "cannot heartbeat into NATS: no answer within {HEARTBEAT_EVERY:?}"
            )),
        }
    }

    /// Heartbeat, and tell the hub which runs heartbeat: a run whose
    /// heartbeat has not changed for `dead_after` is dead, its clients
    /// leave their rooms (the hub proposes it) and its nicknames are
    /// released here. The others' heartbeats are watched (one consumer on
    /// the bucket, not a listing each second).
    async fn watch_nodes(self: Arc<Self>) {
        // Each node's latest heartbeat: its revision, its run, and when it
        // was heard (on this node's clock).
        let heard: Heard = Arc::default();
        tokio::spawn(Arc::clone(&self).hear_nodes(Arc::clone(&heard)));
        let mut alive_before: HashSet<Arc<str>> = HashSet::new();
        let mut first = true;
        // Nobody is judged before a whole `dead_after` of listening (from
        // the start, or since NATS came back): a node not heard yet is
        // not a dead one.
        let mut judge_from = Instant::now() + self.settings.dead_after;
        let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // When this node's last heartbeat that NATS took began (one was
        // put before this task started).
        let mut last_beat = Instant::now();
        let dead_after = self.settings.dead_after;
        loop {
            let waited_from = Instant::now();
            tick.tick().await;
            // A tick is a heartbeat period away at most. Much later, this
            // node itself was held up (a machine too busy, a process
            // stopped): the heartbeats it would have heard meanwhile may
            // not be read yet, so the others' silence is counted afresh,
            // as after NATS was away, instead of taking them for dead. (A
            // heartbeat heard just before a stall is a period old: past
            // half of what is left of `dead_after`, judging could err.)
            let now = Instant::now();
            let waited = now.duration_since(waited_from);
            if waited >= HEARTBEAT_EVERY + dead_after.saturating_sub(HEARTBEAT_EVERY) / 2 {
                warn!(
                    ms = waited.as_millis() as u64,
                    "this node was held up; the others' heartbeats are judged afresh"
                );
                heard_afresh(&heard, now);
                judge_from = judge_from.max(now + dead_after);
            }
            let silent = now.duration_since(last_beat);
            if let Err(e) = self.beat().await {
                warn!(error = %e, "heartbeat failed");
                // NATS is away for everyone: no heartbeat changed meanwhile,
                // and silence from then on is counted afresh.
                let now = Instant::now();
                heard_afresh(&heard, now);
                judge_from = now + dead_after;
                continue;
            }
            last_beat = now;
            // Silent long enough to be taken for dead (held up, or NATS
            // away from this node alone): the hub reads its clients'
            // nickname claims back, and closes those that are gone.
            if silent >= dead_after && self.to_hub.send(FromCluster::HeldUp).await.is_err() {
                return;
            }
            let now = Instant::now();
            // Nor while this node reads the rooms' logs before listening.
            if now < judge_from || !self.ready.load(Ordering::Relaxed) {
                continue;
            }
            // A node that seems silent is asked of NATS itself before it
            // is taken for dead: a heartbeat this node has not read yet
            // (its watch behind) keeps it alive.
            let suspects: Vec<(String, u64)> = lock(&heard)
                .iter()
                .filter(|(_, (_, _, at))| now.duration_since(*at) >= dead_after)
                .map(|(key, (rev, _, _))| (key.clone(), *rev))
                .collect();
            let mut unsure = false;
            for (key, rev) in suspects {
                match self.nodes.entry(key.clone()).await {
                    Ok(Some(e)) if e.operation == kv::Operation::Put && e.revision != rev => {
                        let origin = String::from_utf8_lossy(&e.value).into_owned();
                        lock(&heard).insert(key, (e.revision, origin, Instant::now()));
                    }
                    Ok(_) => {}
                    Err(_) => unsure = true,
                }
            }
            if unsure {
                continue;
            }
            let now = Instant::now();
            let mut alive: HashSet<Arc<str>> = lock(&heard)
                .values()
                .filter(|(_, _, at)| now.duration_since(*at) < dead_after)
                .map(|(_, origin, _)| Arc::from(origin.as_str()))
                .collect();
            alive.insert(Arc::clone(&self.origin));
            if first || alive_before.iter().any(|o| !alive.contains(o)) {
                self.release_nicks(&alive).await;
            }
            first = false;
            alive_before = alive.clone();
            if self.to_hub.send(FromCluster::Alive(alive)).await.is_err() {
                return;
            }
        }
    }

    /// Keep `heard` up to date from a watch on the heartbeat bucket,
    /// watching again whenever the watch ends (NATS restarted, say).
    async fn hear_nodes(self: Arc<Self>, heard: Heard) {
        loop {
            match self.nodes.watch_all().await {
                Ok(mut watch) => {
                    while let Some(entry) = watch.next().await {
                        let Ok(entry) = entry else { break };
                        let mut heard = lock(&heard);
                        if entry.operation == kv::Operation::Put {
                            let origin = String::from_utf8_lossy(&entry.value).into_owned();
                            let now = Instant::now();
                            let h = heard.entry(entry.key).or_insert((
                                entry.revision,
                                origin.clone(),
                                now,
                            ));
                            if h.0 != entry.revision {
                                *h = (entry.revision, origin, now);
                            }
                        } else {
                            // A clean stop deleted its heartbeat.
                            heard.remove(&entry.key);
                        }
                    }
                }
                Err(e) => warn!(error = %e, "cannot watch the nodes' heartbeats"),
            }
            if self.to_hub.is_closed() {
                return;
            }
            // Heard afresh from the next watch on.
            heard_afresh(&heard, Instant::now());
            tokio::time::sleep(HEARTBEAT_EVERY).await;
        }
    }

    /// Release the nicknames held by runs not in `alive`.
    async fn release_nicks(&self, alive: &HashSet<Arc<str>>) {
        let Ok(keys) = self.nicks.keys().await else {
            return;
        };
        let keys: Vec<String> = keys.filter_map(|k| async { k.ok() }).collect().await;
        for key in keys {
            let Ok(Some(entry)) = self.nicks.entry(key.clone()).await else {
                continue;
            };
            if entry.operation != kv::Operation::Put {
                continue;
            }
            let Ok(v) = serde_json::from_slice::<ClaimValue>(&entry.value) else {
                continue;
            };
            if !alive.contains(v.origin.as_str()) {
                info!(
                    nick = v.nick,
                    node = v.origin,
                    "releasing a nickname of a node that stopped"
                );
                let _ = self
                    .nicks
                    .delete_expect_revision(&key, Some(entry.revision))
                    .await;
            }
        }
    }

    /// Claim `nick` (normalized; `key` and `skeleton` are its identity and
    /// look-alike forms) for `client`, and find the session `resume`
    /// names if another node began it. The answer goes to the hub.
    pub fn claim(
        self: &Arc<Self>,
        client: ClientId,
        nick: String,
        key: String,
        skeleton: String,
        resume: Option<TokenHash>,
    ) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut work = {
                let me = Arc::clone(&me);
                tokio::spawn(async move {
                    let session = match resume {
                        Some(hash) => me.find_session(&hash).await,
                        None => None,
                    };
                    let mut claim = me.claim_nick(&nick, &key, &skeleton).await;
                    // The session's own nickname, held by a connection
                    // still open somewhere: the token wins (PROTOCOL.md
                    // §5.1), so that connection is closed and its claim
                    // given up, and the nickname is claimed again.
                    let own = session
                        .as_ref()
                        .is_some_and(|(_, held_as)| chatproto::nick_key(held_as) == key);
                    for _ in 0..TAKEOVER_CLAIMS {
                        let (Some(hash), true) = (resume, own) else {
                            break;
                        };
                        let Err(ClaimError::Taken {
                            same: true,
                            origin: Some(origin),
                            ..
                        }) = &claim
                        else {
                            break;
                        };
                        // Nothing closed there: its own loss may be freeing
                        // the claim now; one more look, a moment later.
                        let closed = me.take_over(origin, &hash).await;
                        if !closed {
                            tokio::time::sleep(TAKEOVER_AGAIN_AFTER).await;
                        }
                        claim = me.claim_nick(&nick, &key, &skeleton).await;
                        if !closed {
                            break;
                        }
                    }
                    (session, claim)
                })
            };
            let limit = me.settings.claim_timeout;
            let waited = tokio::time::timeout(limit, &mut work).await;
            let (session, claim) = match waited {
                Ok(Ok(done)) => done,
                Ok(Err(e)) => (None, Err(ClaimError::Unreachable(e.to_string()))),
                Err(_) => {
                    // Too late for this join (it must not outlast the join
                    // timeout): a claim that lands after all is given back.
                    let late = Arc::clone(&me);
                    tokio::spawn(async move {
                        if let Ok((_, Ok((key, rev)))) = work.await {
                            late.release(key, rev);
                        }
                    });
                    let why = format!("no answer from NATS within {} ms", limit.as_millis());
                    (None, Err(ClaimError::Unreachable(why)))
                }
            };
            let _ = me
                .to_hub
                .send(FromCluster::Claimed(Claimed {
                    client,
                    claim,
                    session: session.map(|(id, n)| (id, n, resume.unwrap_or_default())),
                }))
                .await;
        });
    }

    /// A duplicate acknowledgement for the message `p`: whether the copy
    /// the log holds is this proposal's own (an earlier try stored it, and
    /// it comes back to be applied) rather than another node's (a resend
    /// after the session moved; it will not come back). Never published
    /// before: not ours. Published before: ours if the stored payload is
    /// this one, stamp included; if that cannot be read, ours (the client
    /// then waits for an echo, and resends on its next reconnect).
    async fn ours(&self, p: &Proposal, seq: u64, tried: bool) -> bool {
        if !tried {
            return false;
        }
        let (name, _) = names(&p.room);
        let stored = match self.js.get_stream(&name).await {
            Ok(stream) => stream.get_raw_message(seq).await.ok(),
            Err(_) => None,
        };
        stored.is_none_or(|m| m.payload == p.payload)
    }

    /// Ask the run `origin` to close the connection of the session whose
    /// token hashes to `token` and give up its nickname claim; whether it
    /// did (it answers once the claim is deleted).
    async fn take_over(&self, origin: &str, token: &TokenHash) -> bool {
        let subject = format!("{TAKEOVER_PREFIX}{}", hex(origin.as_bytes()));
        let payload = Bytes::copy_from_slice(token);
        match self.client.request(subject, payload).await {
            Ok(reply) => reply.payload.as_ref() == b"1",
            Err(e) => {
                warn!(error = %e, origin, "a node did not answer a session's takeover");
                false
            }
        }
    }

    /// Answer other runs (and this one) asking to close the connection of
    /// a session they resume: the hub closes it, and the claim it held is
    /// deleted before the answer, so that the asker can claim at once.
    async fn answer_takeovers(self: Arc<Self>, mut asked: async_nats::Subscriber) {
        while let Some(msg) = asked.next().await {
            let Some(reply) = msg.reply.clone() else {
                continue;
            };
            let mut closed = false;
            if let Ok(token) = <TokenHash>::try_from(msg.payload.as_ref()) {
                let (done, answer) = tokio::sync::oneshot::channel();
                if self
                    .to_hub
                    .send(FromCluster::TakeOver { token, done })
                    .await
                    .is_err()
                {
                    return;
                }
                if let Ok(Some((key, revision))) = answer.await {
                    // The hub has let the claim go: nobody else deletes it.
                    let mut backoff = Duration::from_millis(50);
                    for attempt in 1..=TAKEOVER_DELETES {
                        match self
                            .nicks
                            .delete_expect_revision(&key, Some(revision))
                            .await
                        {
                            Ok(_) => {
                                closed = true;
                                break;
                            }
                            // Freed already (this node seemed dead to the
                            // others): the asker may claim.
                            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                                closed = true;
                                break;
                            }
                            Err(e) => warn!(error = %e, "cannot give up a nickname claim"),
                        }
                        if attempt < TAKEOVER_DELETES {
                            tokio::time::sleep(backoff).await;
                            backoff *= 2;
                        }
                    }
                }
            }
            let answer = Bytes::from_static(if closed { b"1" } else { b"0" });
            if let Err(e) = self.client.publish(reply, answer).await {
                warn!(error = %e, "cannot answer a session's takeover");
            }
        }
    }

    async fn claim_nick(
        &self,
        nick: &str,
        key: &str,
        skeleton: &str,
    ) -> Result<(String, u64), ClaimError> {
        let kv_key = format!("n{}", hex(&chatproto::hash_token(skeleton)[..20]));
        let value = serde_json::to_vec(&ClaimValue {
            origin: self.origin.to_string(),
            nick: nick.to_owned(),
            key: key.to_owned(),
        })
        .map_err(|e| ClaimError::Unreachable(e.to_string()))?;
        let value = Bytes::from(value);
        // Another write to this key is being stored (another claim, or one
        // given up): with replicas, nats-server 2.11 and later refuse this
        // one meanwhile, where 2.9 and 2.10 order the two. A moment later
        // the answer is the usual one.
        let mut created = self.nicks.create(&kv_key, value.clone()).await;
        let mut wait = KEY_BUSY_WAIT;
        for _ in 1..KEY_BUSY_TRIES {
            if !created.as_ref().is_err_and(|e| key_busy(e)) {
                break;
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
            created = self.nicks.create(&kv_key, value.clone()).await;
        }
        match created {
            Ok(rev) => Ok((kv_key, rev)),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                let holder = self
                    .nicks
                    .entry(kv_key.clone())
                    .await
                    .ok()
                    .flatten()
                    .and_then(|e| serde_json::from_slice::<ClaimValue>(&e.value).ok());
                let (nick, same, origin) = match holder {
                    Some(h) => (h.nick, h.key == key, Some(h.origin)),
                    None => (nick.to_owned(), true, None),
                };
                Err(ClaimError::Taken { nick, same, origin })
            }
            Err(e) => Err(ClaimError::Unreachable(e.to_string())),
        }
    }

    /// Give up a claim (only the claimer's revision is deleted: a newer
    /// owner keeps it).
    pub fn release(&self, key: String, revision: u64) {
        let nicks = self.nicks.clone();
        tokio::spawn(async move {
            let _ = nicks.delete_expect_revision(&key, Some(revision)).await;
        });
    }

    /// Which of `claims` (each a client's nickname key and the revision
    /// it claimed) are no longer held as claimed: freed by another node
    /// while this one seemed dead, and perhaps taken since. The answer
    /// goes to the hub; a claim NATS could not tell about counts as held.
    ///
    /// Read now, and once more after the others' next judging: a node
    /// that judged this one just before hearing it again frees the claims
    /// a moment later.
    pub fn check_claims(self: &Arc<Self>, claims: Vec<(ClientId, String, u64)>) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            for round in 0..2 {
                if round > 0 {
                    tokio::time::sleep(2 * HEARTBEAT_EVERY).await;
                }
                let mut lost = Vec::new();
                for (client, key, revision) in &claims {
                    match me.nicks.entry(key.clone()).await {
                        Ok(Some(e))
                            if e.operation == kv::Operation::Put && e.revision == *revision => {}
                        Ok(_) => lost.push(*client),
                        Err(e) => warn!(error = %e, "cannot check a nickname claim"),
                    }
                }
                if !lost.is_empty() && me.to_hub.send(FromCluster::ClaimsLost(lost)).await.is_err()
                {
                    return;
                }
            }
        });
    }

    async fn find_session(&self, hash: &TokenHash) -> Option<(SessionId, String)> {
        let entry = self.sessions.get(hex(hash)).await.ok()??;
        let v: SessionValue = serde_json::from_slice(&entry).ok()?;
        Some((SessionId(v.id), v.nick))
    }

    /// Store session records (id, nick, token hash) where every node can
    /// find them; the hub hears `Persisted(through)` when they are.
    pub fn store_sessions(&self, sessions: Vec<SessionRecord>, through: u64) {
        let _ = self.session_tx.send((sessions, through));
    }

    /// The one writer of session records, in order (so `Persisted`
    /// tickets only grow), trying each until NATS takes it.
    async fn write_sessions(
        self: Arc<Self>,
        mut rx: mpsc::UnboundedReceiver<(Vec<SessionRecord>, u64)>,
    ) {
        while let Some((sessions, through)) = rx.recv().await {
            for (id, nick, hash) in sessions {
                let value =
                    serde_json::to_vec(&SessionValue { id: id.0, nick }).unwrap_or_default();
                let mut backoff = Duration::from_millis(50);
                while let Err(e) = self
                    .sessions
                    .put(hex(&hash), Bytes::from(value.clone()))
                    .await
                {
                    warn!(error = %e, "cannot store a session in NATS; trying again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
            if self
                .to_hub
                .send(FromCluster::Persisted(through))
                .await
                .is_err()
            {
                return;
            }
        }
    }

    /// Per room, the seq the log gave this node's latest proposal.
    pub fn acked(&self) -> Vec<(Arc<str>, u64)> {
        lock(&self.acked)
            .iter()
            .map(|(room, seq)| (Arc::clone(room), *seq))
            .collect()
    }

    /// A clean stop: say this run is gone (the others release its
    /// nicknames at once) and give up the claims of its clients.
    pub async fn leave(&self, claims: Vec<(String, u64)>) {
        for (key, rev) in claims {
            let _ = self.nicks.delete_expect_revision(&key, Some(rev)).await;
        }
        let _ = self.nodes.delete(&self.settings.node).await;
    }

    /// Read history the hub's memory no longer holds from the room's
    /// stream, newest first, at most a bounded number of messages.
    pub fn read(self: &Arc<Self>, ticket: u64, client: ClientId, query: ReadQuery) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let found = me.read_stream(&query).await;
            let _ = me
                .to_hub
                .send(FromCluster::Read {
                    ticket,
                    client,
                    found,
                })
                .await;
        });
    }

    async fn read_stream(&self, q: &ReadQuery) -> Result<ReadPage, String> {
        let (name, _) = names(&q.room);
        let mut stream = self.js.get_stream(&name).await.map_err(|e| e.to_string())?;
        let state = stream
            .info()
            .await
            .map_err(|e| e.to_string())?
            .state
            .clone();
        let first = state.first_sequence;
        let mut page = Vec::new();
        let mut seq = q.before.saturating_sub(1).min(state.last_sequence);
        // One request per stored event: look at a bounded number (fewer
        // than `history_scan`, which bounds a local database's read);
        // messages to others are skipped, and the answer says where to go
        // on from.
        let mut budget = (q.limit as u64 * 4 + 64).min(q.scan);
        let low = q.after.max(first.saturating_sub(1));
        while seq > low && page.len() < q.limit && budget > 0 {
            budget -= 1;
            if let Ok(m) = stream.get_raw_message(seq).await {
                if let Some(e) = decode_event(&q.room, seq, &m.payload) {
                    if e.is_msg() && e.visible_to(q.session) {
                        page.push(e);
                    }
                }
            }
            seq -= 1;
        }
        page.reverse();
        // Everything above `seq` was looked at.
        Ok(ReadPage::new(page, seq > low, seq + 1))
    }
}

/// Each node's latest heartbeat, by node name: its revision, its run's
/// origin, and when this node heard it.
type Heard = Arc<Mutex<HashMap<String, (u64, String, Instant)>>>;

/// Every node heard `now`: their silence is counted from here (after
/// NATS was away, or this node was held up, what they said meanwhile
/// may not have been read).
fn heard_afresh(heard: &Heard, now: Instant) {
    for h in lock(heard).values_mut() {
        h.2 = now;
    }
}

/// A lock that a panic elsewhere does not poison for us.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether NATS refused a key-value write because another write to the
/// same key was still being stored: nats-server 2.11 and later, on a
/// bucket with replicas, answer so (error 10164, "wrong last sequence"
/// without a sequence) instead of ordering the two. async-nats reports it
/// as an error of no particular kind, the server's answer among its
/// sources.
fn key_busy(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(api) = e.downcast_ref::<jetstream::Error>() {
            return api.error_code() == jetstream::ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT;
        }
        next = e.source();
    }
    false
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A key-value bucket, made as nats-server 2.9 understands: async-nats's
/// `create_key_value` asks for account details that server cannot give in
/// the shape this client expects, so the bucket's stream is made directly
/// with the settings a bucket has.
async fn bucket(
    js: &jetstream::Context,
    name: &str,
    replicas: usize,
    max_age: Duration,
) -> Result<kv::Store, String> {
    let config = stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: replicas,
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    if js.get_stream(format!("KV_{name}")).await.is_err() {
        if let Err(e) = js.create_stream(config).await {
            // Another node may have made it meanwhile.
            if js.get_stream(format!("KV_{name}")).await.is_err() {
                return Err(format!("cannot make the {name} bucket in NATS: {e}"));
            }
        }
    }
    js.get_key_value(name)
        .await
        .map_err(|e| format!("cannot open the {name} bucket in NATS: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_nats::jetstream::context::{PublishError, PublishErrorKind};

    #[test]
    fn the_stream_seq_is_read_from_both_reply_subject_forms() {
        // ADR-15's first form, and the form with domain and account hash
        // (with and without the token some servers add at the end).
        let v1 = "$JS.ACK.CHATROOM_6c6f6262.cons_1.1.4242.17.1764600000000000000.3";
        let v2 = "$JS.ACK.hub.ACCHASH.CHATROOM_6c6f6262.cons_1.1.4242.17.1764600000000000000.3";
        assert_eq!(stream_seq(v1), Some(4242));
        assert_eq!(stream_seq(v2), Some(4242));
        assert_eq!(stream_seq(&format!("{v2}.xyz")), Some(4242));
        assert_eq!(stream_seq(&format!("{v2}.xyz.more.tokens")), Some(4242));
        // Shapes it does not know: left to async-nats's parser.
        for bad in [
            "_INBOX.abc.def",
            "$JS.ACK.a.b.c",
            "$JS.ACK.a.b.c.d.e.f.g.h",
            "$JS.ACK.s.c.1.notanumber.17.0.3",
            "$JS.ACK.s.c.1.-1.17.0.3",
        ] {
            assert_eq!(stream_seq(bad), None, "{bad}");
        }
    }

    #[test]
    fn events_come_back_from_the_log_as_they_went_in() {
        let room: Arc<str> = Arc::from("lobby");
        let events = [
            Event::new(
                Arc::clone(&room),
                7,
                1_764_600_000_123,
                EventBody::presence(SessionId(3), "alice", PresenceStatus::Online),
            ),
            Event::new(
                Arc::clone(&room),
                8,
                1_764_600_000_124,
                EventBody::presence(SessionId(3), "alice", PresenceStatus::Offline),
            ),
            Event::new(
                Arc::clone(&room),
                9,
                1_764_600_000_125,
                EventBody::msg(
                    SessionId(3),
                    "alice",
                    Vec::new(),
                    "hi \"all\"\n\u{e9}",
                    None,
                ),
            ),
            Event::new(
                Arc::clone(&room),
                10,
                1_764_600_000_126,
                EventBody::msg(
                    SessionId(3),
                    "alice",
                    vec![
                        Recipient::new(SessionId(4), "bob"),
                        Recipient::new(SessionId(5), "carol"),
                    ],
                    "psst",
                    Some("m-1".into()),
                ),
            ),
        ];
        for e in events {
            let payload = encode_event(&e);
            assert_eq!(decode_event(&room, e.seq, &payload), Some(e));
        }
    }

    proptest::proptest! {
        /// The short way reads what serde reads, whenever it reads at all,
        /// and it reads every event without an escape in its strings.
        #[test]
        fn the_short_way_agrees_with_serde(
            presence in proptest::bool::ANY,
            on in proptest::bool::ANY,
            session in proptest::num::u64::ANY,
            ts in proptest::num::u64::ANY,
            nick in "[a-z\"\\\\\u{e9}\n]{0,6}",
            to in proptest::collection::vec((proptest::num::u64::ANY, "[a-z\"\\\\]{0,4}"), 0..3),
            text in "[ -~\u{e9}\u{1f600}\n\t]{0,12}",
            id in proptest::option::of("[a-z0-9/\"]{0,6}"),
            cut in 0usize..200,
            flip in proptest::option::of((0usize..200, proptest::num::u8::ANY)),
            hole in proptest::option::of((0usize..200, 1usize..12)),
        ) {
            let room: Arc<str> = Arc::from("r");
            let body = if presence {
                let status = if on { PresenceStatus::Online } else { PresenceStatus::Offline };
                EventBody::presence(SessionId(session), nick.as_str(), status)
            } else {
                let to = to.iter().map(|(s, n)| Recipient::new(SessionId(*s), n.as_str())).collect();
                EventBody::msg(SessionId(session), nick.as_str(), to, text, id)
            };
            let event = Event::new(Arc::clone(&room), 9, ts, body);
            let payload = encode_event(&event);
            proptest::prop_assert_eq!(decode_event(&room, 9, &payload), Some(event));
            let plain = !payload.contains(&b'\\') && !payload.iter().any(|&b| b < 0x20);
            proptest::prop_assert_eq!(Plain(&payload).read().is_some(), plain);
            // Damaged payloads: cut short, a few bytes gone (a value or a
            // key), or one byte changed.
            let mut bad = payload[..cut.min(payload.len())].to_vec();
            if let Some((at, len)) = hole {
                let at = at.min(bad.len());
                bad.drain(at..(at + len).min(bad.len()));
            }
            if let Some((at, b)) = flip {
                if let Some(x) = bad.get_mut(at) {
                    *x = b;
                }
            }
            if let Some((ts, body)) = Plain(&bad).read() {
                let short = Event::new(Arc::clone(&room), 9, ts, body);
                proptest::prop_assert_eq!(Some(short), decode_any(&room, 9, &bad));
            }
        }
    }

    #[test]
    fn malformed_payloads_are_not_read_the_short_way() {
        // A key without its value, a value of another type, keys out of
        // order, whitespace: the short way says no, and serde decides.
        for bad in [
            r#"{"k":"p","s":1,"n":"a","on":true,"t":,"ts":5}"#,
            r#"{"k":"p","s":1,"n":"a","on":false,"t":,"id":,"ts":5}"#,
            r#"{"k":"m","s":1,"n":"a","t":"x","id":,"ts":5}"#,
            r#"{"k":"m","s":1,"n":"a","t":null,"ts":5}"#,
            r#"{"k":"m","s":1,"n":"a","to":[],"t":"x","ts":5}"#,
            r#"{"k":"m","s":1,"n":"a","to":[[2,"b"],],"t":"x","ts":5}"#,
            r#"{"k":"m","s":01,"n":"a","t":"x","ts":5}"#,
            r#"{"k":"m","s":1,"n":"a","t":"x","ts":18446744073709551616}"#,
            r#"{"s":1,"k":"m","n":"a","t":"x","ts":5}"#,
            r#"{"k":"m", "s":1,"n":"a","t":"x","ts":5}"#,
            r#"{"k":"m","s":1,"n":"a","t":"x","ts":5} "#,
            r#"{"k":"m","s":1,"n":"a","t":"x\u0041","ts":5}"#,
        ] {
            assert!(Plain(bad.as_bytes()).read().is_none(), "{bad}");
        }
        // What serde makes of the reordered one, which is valid.
        let room: Arc<str> = Arc::from("r");
        let reordered = br#"{"s":1,"k":"m","n":"a","t":"x","ts":5}"#;
        assert_eq!(
            decode_event(&room, 1, reordered),
            Some(Event::new(
                Arc::clone(&room),
                1,
                5,
                EventBody::msg(SessionId(1), "a", Vec::new(), "x", None)
            ))
        );
    }

    #[test]
    fn log_entries_written_before_the_borrowed_encoder_still_read() {
        // What the encoder wrote before it borrowed the event's strings
        // (serde's derive over owned fields): the format is unchanged.
        let room: Arc<str> = Arc::from("lobby");
        let p = br#"{"k":"p","s":3,"n":"alice","on":true,"ts":5}"#;
        let m = br#"{"k":"m","s":3,"n":"al\u0069ce","to":[[4,"bob"]],"t":"a\"b","id":"x","ts":6}"#;
        assert_eq!(
            decode_event(&room, 1, p),
            Some(Event::new(
                Arc::clone(&room),
                1,
                5,
                EventBody::presence(SessionId(3), "alice", PresenceStatus::Online)
            ))
        );
        let want = Event::new(
            Arc::clone(&room),
            2,
            6,
            EventBody::msg(
                SessionId(3),
                "alice",
                vec![Recipient::new(SessionId(4), "bob")],
                "a\"b",
                Some("x".into()),
            ),
        );
        assert_eq!(decode_event(&room, 2, m), Some(want.clone()));
        assert_eq!(
            &encode_event(&want)[..],
            br#"{"k":"m","s":3,"n":"alice","to":[[4,"bob"]],"t":"a\"b","id":"x","ts":6}"#
        );
        assert_eq!(
            decode_event(&room, 3, br#"{"k":"q","s":3,"n":"a","ts":1}"#),
            None
        );
    }

    /// A claim's `create` refused by the server with `err_code`, as
    /// async-nats reports it (the server's answer under a publish error,
    /// under an update error).
    fn refused_create(kind: PublishErrorKind, err_code: u64) -> kv::CreateError {
        let answer =
            format!(r#"{{"code":400,"err_code":{err_code},"description":"wrong last sequence"}}"#);
        let api: jetstream::Error = serde_json::from_str(&answer).unwrap();
        let publish = PublishError::with_source(kind, api);
        kv::CreateError::from(kv::UpdateError::from(publish))
    }

    #[test]
    fn a_key_written_meanwhile_is_told_from_other_refusals() {
        // 10164: another write to the key is being stored (2.11+).
        let busy = refused_create(PublishErrorKind::Other, 10164);
        assert_eq!(busy.kind(), kv::CreateErrorKind::Other);
        assert!(key_busy(&busy));
        // 10071: the key holds another revision (a claim exists).
        let taken = refused_create(PublishErrorKind::WrongLastSequence, 10071);
        assert_eq!(taken.kind(), kv::CreateErrorKind::AlreadyExists);
        assert!(!key_busy(&taken));
        // No answer from the server at all.
        let timed_out = kv::CreateError::new(kv::CreateErrorKind::Publish);
        assert!(!key_busy(&timed_out));
    }
}
