//! The typed frames of wire format v2 (a superset of v1), one enum per direction.
//!
//! Every payload is a JSON object whose `"type"` member names the frame kind.
//! Members a receiver does not know are ignored, so a newer peer can add
//! fields without breaking an older one.
//! Building and matching them: see the crate docs.

use serde::{Deserialize, Serialize};

/// A frame sent by a client to the server.
///
/// A client must send [`ClientFrame::Join`] before anything else except
/// [`ClientFrame::Ping`] and [`ClientFrame::Pong`]. Members marked "v2" are
/// optional: a v1 client never sends them and gets exactly the v1 behaviour.
///
/// `Deserialize` is written by hand (in one pass, naming the member at
/// fault in errors); `Serialize` is derived. The constructors
/// ([`ClientFrame::join`], [`ClientFrame::msg`], ...) fill the optional
/// members with their defaults.
///
/// Its `Debug` is its JSON with a `resume` token left out: whoever reads a
/// log that shows a `join` could otherwise take the session over.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientFrame {
    /// Ask to join under `nick`. Answered by `welcome` or an error.
    #[non_exhaustive]
    Join {
        /// The requested nickname; see [the nickname rule](crate#nicknames) for the rule.
        nick: String,
        /// v2: rooms to enter at once (`[]` enters none). Absent: a v1 join,
        /// which enters `lobby` and gets only v1 frames.
        #[serde(skip_serializing_if = "Option::is_none")]
        rooms: Option<Vec<String>>,
        /// v2: the `session` token of an earlier `welcome`, to continue
        /// that session.
        #[serde(skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
    },
    /// v2: enter a room. Answered by `entered`, the replay, then live events.
    #[non_exhaustive]
    Enter {
        /// The room's name, without `#`.
        room: String,
        /// The last seq of this room the client has seen.
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
        /// The room's epoch when `since` was seen.
        #[serde(skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
    },
    /// v2: leave a room.
    #[non_exhaustive]
    Part {
        /// The room to leave.
        room: String,
    },
    /// Send `text` to the nicknames in `to`, or to everyone in the room when
    /// `to` is absent, null or empty. Answered by the echo of the stamped message,
    /// or an error.
    #[non_exhaustive]
    Msg {
        /// v2: the room; absent means `lobby`.
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// Recipients by nickname; empty means everyone in the room.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        to: Vec<String>,
        /// The message text, delivered exactly as sent.
        text: String,
        /// v2: a client-chosen id (1-64 characters); a second `msg` with the
        /// same id from the same session is not delivered again.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// v2: ask for a page of a room's history.
    #[non_exhaustive]
    History {
        /// The room.
        room: String,
        /// Only messages with a seq below this; absent: the newest.
        #[serde(skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        /// At most this many messages (0 is taken as 1; absent: 50; at most
        /// the server's page size, `history_page` in `welcome`'s `limits`).
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<u64>,
    },
    /// v2: list the rooms that have members.
    Rooms,
    /// Liveness probe; the server answers with `pong`.
    Ping,
    /// The answer to a server `ping`.
    Pong,
}

/// `frame` as its JSON (as it goes on the wire): the `Debug` of both
/// kinds of frame, given one whose session token, if it had one, is
/// replaced.
fn debug_json(
    f: &mut std::fmt::Formatter<'_>,
    kind: &str,
    frame: &impl Serialize,
) -> std::fmt::Result {
    let json = serde_json::to_string(frame).map_err(|_| std::fmt::Error)?;
    write!(f, "{kind}({json})")
}

/// What a frame's `Debug` shows for a session token.
const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for ClientFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientFrame::Join {
                nick,
                rooms,
                resume: Some(_),
            } => {
                let shown = ClientFrame::Join {
                    nick: nick.clone(),
                    rooms: rooms.clone(),
                    resume: Some(REDACTED.to_owned()),
                };
                debug_json(f, "ClientFrame", &shown)
            }
            _ => debug_json(f, "ClientFrame", self),
        }
    }
}

impl std::fmt::Debug for ServerFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerFrame::Welcome {
                session: Some(_), ..
            } => {
                let mut shown = self.clone();
                if let ServerFrame::Welcome { session, .. } = &mut shown {
                    *session = Some(REDACTED.to_owned());
                }
                debug_json(f, "ServerFrame", &shown)
            }
            _ => debug_json(f, "ServerFrame", self),
        }
    }
}

/// Constructors: the one way to build a frame outside this crate (every
/// variant with members is `#[non_exhaustive]`). When a later version adds
/// a member, these keep their signatures and leave it absent.
impl ClientFrame {
    /// A v1 `join` as `nick`: enters `lobby`.
    pub fn join(nick: impl Into<String>) -> Self {
        ClientFrame::Join {
            nick: nick.into(),
            rooms: None,
            resume: None,
        }
    }

    /// A v2 `join` as `nick` entering `rooms`, resuming `resume` if given.
    pub fn join_v2(nick: impl Into<String>, rooms: Vec<String>, resume: Option<String>) -> Self {
        ClientFrame::Join {
            nick: nick.into(),
            rooms: Some(rooms),
            resume,
        }
    }

    /// An `enter` of `room`, with the last seq and epoch seen, if any.
    pub fn enter(room: impl Into<String>, since: Option<(u64, String)>) -> Self {
        let (since, epoch) = match since {
            Some((s, e)) => (Some(s), Some(e)),
            None => (None, None),
        };
        ClientFrame::Enter {
            room: room.into(),
            since,
            epoch,
        }
    }

    /// A `part` of `room`.
    pub fn part(room: impl Into<String>) -> Self {
        ClientFrame::Part { room: room.into() }
    }

    /// A `msg` in `lobby` (v1) to `to` (empty: everyone).
    pub fn msg(to: Vec<String>, text: impl Into<String>) -> Self {
        ClientFrame::Msg {
            room: None,
            to,
            text: text.into(),
            id: None,
        }
    }

    /// A `msg` in `room` to `to` (empty: everyone), with an optional id.
    pub fn msg_in(
        room: impl Into<String>,
        to: Vec<String>,
        text: impl Into<String>,
        id: Option<String>,
    ) -> Self {
        ClientFrame::Msg {
            room: Some(room.into()),
            to,
            text: text.into(),
            id,
        }
    }

    /// A `history` request.
    pub fn history(room: impl Into<String>, before: Option<u64>, limit: Option<u64>) -> Self {
        ClientFrame::History {
            room: room.into(),
            before,
            limit,
        }
    }
}

/// The limits a server announces in `welcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Limits {
    /// The largest frame payload either side may send.
    pub max_frame_bytes: u64,
    /// The most names one `msg` may carry in `to`.
    pub max_recipients: u64,
    /// The most messages an `enter` with `since` replays.
    pub replay_limit: u64,
    /// The most messages one `history` page holds.
    pub history_page: u64,
    /// In a room with more members than this, entering and leaving are
    /// sent only to the one who entered or left (PROTOCOL.md 5.2), so a
    /// client's online list there may fall behind. `None` from a server
    /// that does not say (an older one), whose cap a client may take to
    /// be the default, 1 000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_fanout_max: Option<u64>,
    /// How many of a session's latest message ids the server remembers
    /// (PROTOCOL.md 5.4): a resent message is recognised by its id only
    /// among these, so a client keeps at most this many unacknowledged.
    /// `None` from a server that does not say (an older one), whose window
    /// a client may take to be the default, 1 024.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_window: Option<u64>,
    /// The frames per second, on average, the server reads from one
    /// connection (PROTOCOL.md 7): a client that sends faster is read
    /// slower, and one held back for long is closed with `rate_limited`.
    /// `None` when the server sets no limit or does not say (an older
    /// one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u64>,
    /// The frames a connection may send at once before [`rate`](Limits::rate)
    /// applies; said with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    /// The payload bytes per second, on average, the server reads from one
    /// connection (PROTOCOL.md 7), beside [`rate`](Limits::rate): a client
    /// that sends more is read slower, as for frames. `None` when the
    /// server sets no such limit or does not say (an older one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_bytes: Option<u64>,
    /// The payload bytes a connection may send at once before
    /// [`rate_bytes`](Limits::rate_bytes) applies; said with it, and never
    /// less than [`max_frame_bytes`](Limits::max_frame_bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst_bytes: Option<u64>,
    /// The bytes per second, on average, the server sends one connection
    /// in answer to its reads (replays, `history` pages, member lists, the
    /// room list; PROTOCOL.md 7): past
    /// [`read_burst_bytes`](Limits::read_burst_bytes), its next frame that
    /// asks to read is read once they are paid for. `None` when the server
    /// sets no such limit or does not say (an older one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_rate_bytes: Option<u64>,
    /// The bytes a connection may be sent at once in answer to its reads
    /// before [`read_rate_bytes`](Limits::read_rate_bytes) applies; said
    /// with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_burst_bytes: Option<u64>,
}

impl Limits {
    /// Limits with these values.
    pub fn new(
        max_frame_bytes: u64,
        max_recipients: u64,
        replay_limit: u64,
        history_page: u64,
    ) -> Self {
        Limits {
            max_frame_bytes,
            max_recipients,
            replay_limit,
            history_page,
            presence_fanout_max: None,
            id_window: None,
            rate: None,
            burst: None,
            rate_bytes: None,
            burst_bytes: None,
            read_rate_bytes: None,
            read_burst_bytes: None,
        }
    }

    /// These limits, saying the server's rate limit: `rate` frames a
    /// second after a `burst` (a `burst` of 0 is said as 1: a client may
    /// always send one frame). A `rate` of 0 (no limit) says nothing.
    #[must_use]
    pub fn with_rate(mut self, rate: u64, burst: u64) -> Self {
        if rate > 0 {
            self.rate = Some(rate);
            self.burst = Some(burst.max(1));
        }
        self
    }

    /// These limits, saying the server's byte allowance: `rate_bytes`
    /// payload bytes a second after `burst_bytes` (raised to
    /// [`max_frame_bytes`](Limits::max_frame_bytes) if below it). A
    /// `rate_bytes` of 0 (no limit) says nothing.
    #[must_use]
    pub fn with_byte_rate(mut self, rate_bytes: u64, burst_bytes: u64) -> Self {
        if rate_bytes > 0 {
            self.rate_bytes = Some(rate_bytes);
            self.burst_bytes = Some(burst_bytes.max(self.max_frame_bytes).max(1));
        }
        self
    }

    /// These limits, saying the server's read allowance: `read_rate_bytes`
    /// bytes a second sent in answer to reads after `read_burst_bytes`
    /// (said as at least 1). A `read_rate_bytes` of 0 (no limit) says
    /// nothing.
    #[must_use]
    pub fn with_read_rate(mut self, read_rate_bytes: u64, read_burst_bytes: u64) -> Self {
        if read_rate_bytes > 0 {
            self.read_rate_bytes = Some(read_rate_bytes);
            self.read_burst_bytes = Some(read_burst_bytes.max(1));
        }
        self
    }

    /// These limits, saying the server's presence fan-out cap.
    #[must_use]
    pub fn with_presence_fanout_max(mut self, presence_fanout_max: u64) -> Self {
        self.presence_fanout_max = Some(presence_fanout_max);
        self
    }

    /// These limits, saying how many of a session's message ids the server
    /// remembers.
    #[must_use]
    pub fn with_id_window(mut self, id_window: u64) -> Self {
        self.id_window = Some(id_window);
        self
    }
}

/// One room in a `rooms` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RoomInfo {
    /// Its name.
    pub room: String,
    /// How many are in it now.
    pub members: u64,
}

impl RoomInfo {
    /// A room and its member count.
    pub fn new(room: impl Into<String>, members: u64) -> Self {
        RoomInfo {
            room: room.into(),
            members,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A frame sent by the server to a client.
///
/// Members marked "v2" are absent from a v1 server's frames; a v2 server
/// sends them to every client (v1 clients ignore members they do not know).
///
/// Its `Debug` is its JSON with a `welcome`'s `session` token left out:
/// whoever reads a log could otherwise take the session over.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerFrame {
    /// Sent to a client once it has joined, before anything else.
    #[non_exhaustive]
    Welcome {
        /// The nickname the client joined as.
        nick: String,
        /// `lobby`'s latest seq when the join entered it, else 0; every
        /// later event of `lobby` has a larger seq.
        seq: u64,
        /// Everyone in `lobby` when the join entered it, the joiner
        /// included, else empty. When the list does not fit in one frame,
        /// the rest follows in [`ServerFrame::Online`] frames.
        online: Vec<String>,
        /// v2: the session's token, to `resume` it after a disconnect.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        /// v2: whether this join continued an earlier session.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resumed: Option<bool>,
        /// v2: the server's limits.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limits: Option<Limits>,
        /// v2, on a resume only: the fatal error the server closed the
        /// session's previous connection with (`slow_consumer`,
        /// `rate_limited`, `timeout`, ...), when it closed it for one.
        /// The `error` frame that said it may never have arrived (a client
        /// closed for reading too slowly is the one whose socket would not
        /// take it). Absent when that connection ended otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        closed_for: Option<ErrorCode>,
    },
    /// The continuation of a `welcome` or `entered` whose `online` list did not fit.
    #[non_exhaustive]
    Online {
        /// v2: the room the list is of (absent: `lobby`, as in v1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// More nicknames that are online.
        nicks: Vec<String>,
    },
    /// v2: the answer to `enter`, before the replay and the live events.
    #[non_exhaustive]
    Entered {
        /// The room entered.
        room: String,
        /// The room's epoch: it changes whenever the room's history is lost.
        epoch: String,
        /// The room's latest seq.
        seq: u64,
        /// Every message with a seq at least this is still in the history.
        oldest: u64,
        /// Who is in the room now, the enterer included. When the list
        /// does not fit in one frame, the rest follows in
        /// [`ServerFrame::Online`] frames with this `room`.
        online: Vec<String>,
        /// True when `since` and the current `epoch` were given and the
        /// replay holds every message after `since` this session may see.
        recovered: bool,
    },
    /// Someone entered or left a room (in v1: came online or went offline).
    #[non_exhaustive]
    Presence {
        /// v2: the room.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The room's sequence number of this event.
        seq: u64,
        /// Whose presence changed.
        nick: String,
        /// The new status.
        status: PresenceStatus,
        /// When the room saw it, unix milliseconds.
        ts: u64,
    },
    /// A message, stamped by the room.
    #[non_exhaustive]
    Msg {
        /// v2: the room.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The room's sequence number of this message.
        seq: u64,
        /// The sender's nickname, stamped by the room.
        from: String,
        /// The recipients as named by the room; empty means everyone.
        to: Vec<String>,
        /// The text, exactly as the sender sent it.
        text: String,
        /// When the room accepted it, unix milliseconds.
        ts: u64,
        /// v2: the sender's id for it; only on the sending session's copies.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// v2: true on copies sent by a replay or a `history` page.
        #[serde(default, skip_serializing_if = "is_false")]
        replay: bool,
    },
    /// v2: a page of history, the answer to `history`.
    #[non_exhaustive]
    History {
        /// The room.
        room: String,
        /// `msg` frames in increasing seq.
        events: Vec<ServerFrame>,
        /// Whether older messages this session may see may exist.
        more: bool,
        /// With `more`: the `before` to ask for the next older page. Every
        /// message this session may see between it and the asked `before`
        /// is in `events`; a page that stopped at the server's
        /// `history_scan` bound may be empty and still carry it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        /// v2: without `more`: where the room's kept history starts now,
        /// as `entered.oldest` says it (every message with a seq at least
        /// this is kept). Above 1, older messages were deleted (the
        /// server's retention or its cap), so the page reached that, not
        /// the room's beginning. Absent from older servers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        oldest: Option<u64>,
    },
    /// v2: the rooms that have members, the answer to `rooms`.
    #[non_exhaustive]
    Rooms {
        /// The rooms, by name. As many as fit one frame: past that, those
        /// whose names sort first.
        rooms: Vec<RoomInfo>,
        /// v2: how many rooms have members, when that is more than are
        /// listed (the list was cut to fit one frame); absent when the
        /// list is whole, and from older servers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    /// Something went wrong; see [`ErrorCode`] for which codes close the connection.
    #[non_exhaustive]
    Error {
        /// A stable machine-readable code.
        code: ErrorCode,
        /// A sentence for a human: what happened and what to do.
        message: String,
        /// v2: the `id` of the `msg` this answers, if it carried one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// v2: the room concerned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// v2: for `duplicate`, the seq of the original message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// Liveness probe; the client must answer with `pong`.
    Ping,
    /// The answer to a client `ping`.
    Pong,
    /// A message from the server itself, for example before it shuts down.
    #[non_exhaustive]
    Notice {
        /// Text for a human.
        text: String,
    },
}

/// The status carried by a `presence` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PresenceStatus {
    /// The nickname entered the room (in v1: joined).
    Online,
    /// The nickname left the room: it parted, timed out or was disconnected.
    Offline,
}

/// The stable codes carried by `error` frames.
///
/// Codes are never renamed; new ones may be added, so a receiver must accept
/// codes it does not know (they decode as [`ErrorCode::Unknown`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The nickname is already in use (compared by identity key:
    /// normalised and case-folded, so `Straße` and `STRASSE` are one;
    /// PROTOCOL.md section 3).
    NickTaken,
    /// The nickname breaks the nickname rule or looks like an online nickname.
    NickInvalid,
    /// A frame other than `join`, `ping` or `pong` arrived before `join`.
    NotJoined,
    /// A second `join` arrived on a joined connection.
    AlreadyJoined,
    /// A recipient is not online or not in the room; nothing was delivered
    /// to anyone.
    UnknownNick,
    /// The payload was not a valid frame; the connection stays open.
    BadFrame,
    /// The length header exceeded the limit; the connection closes.
    FrameTooLarge,
    /// The length header was zero; the connection closes.
    EmptyFrame,
    /// The stamped message (its replay copy, with its id) would be longer
    /// than the frame limit less 512 bytes (PROTOCOL.md 5.3); nothing was
    /// delivered.
    MsgTooLarge,
    /// A `msg` named more recipients than the server allows; nothing was delivered.
    TooManyRecipients,
    /// The server has no room for another connection; the connection closes.
    ServerFull,
    /// The client sent far more than its rate limit for too long; the connection closes.
    RateLimited,
    /// The client did not read its messages fast enough; the connection closes.
    SlowConsumer,
    /// The client did not join, or did not answer a ping, in time; the connection closes.
    Timeout,
    /// v2: the room name breaks the rule (1-32 of `a-z 0-9 - _ .`, starting
    /// with a letter or digit).
    RoomInvalid,
    /// v2: the request needs the client to be in the room.
    NotInRoom,
    /// v2: `enter` of a room the client is already in.
    AlreadyInRoom,
    /// v2: the client is in as many rooms as it may be, or the server holds
    /// as many rooms as it may.
    TooManyRooms,
    /// v2: a `msg` whose `id` this session already used; not delivered again.
    Duplicate,
    /// v2: the server cannot store messages right now (its disk is full or
    /// failing); the message was not sent. Reading still works; try again
    /// later (its `message` says when none will be taken until the server
    /// restarts). From a server that shares rooms (PROTOCOL.md §5.9) also the
    /// answer to a `join` or an `enter` it cannot log now, and, without
    /// `id`, the last frame before it closes a connection whose nickname
    /// the other servers freed (the one case it is fatal). Also the answer
    /// to a `join` that would begin a new session when the server's
    /// session ids are used up (a store reserved the last of them).
    Unavailable,
    /// v2.1: the client's session was resumed on another connection (one
    /// that gave its token); this connection closes. A client MUST NOT
    /// reconnect on it by itself: the other connection is using the
    /// session, and taking it back would close that one.
    // Numbered after `Unknown`, which keeps the number it had (serde
    // wants `Unknown` last); codes added later are numbered on from here.
    ResumedElsewhere = 21,
    /// A code this version does not know (sent by a newer peer).
    #[serde(other)]
    Unknown = 20,
}

impl ErrorCode {
    /// The code as it appears on the wire, e.g. `"nick_taken"`.
    pub fn as_str(self) -> &'static str {
        // The same snake_case rule as serde's, from the variant names.
        self.into()
    }

    /// Whether the server always closes the connection after sending this
    /// code. [`ErrorCode::Unavailable`] is not, though a server that shares
    /// rooms closes a connection after one without `id` (PROTOCOL.md §6),
    /// and a code this version does not know may be: tell a closed
    /// connection by its closing.
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            ErrorCode::FrameTooLarge
                | ErrorCode::EmptyFrame
                | ErrorCode::ServerFull
                | ErrorCode::RateLimited
                | ErrorCode::SlowConsumer
                | ErrorCode::Timeout
                | ErrorCode::ResumedElsewhere
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Constructors: the one way to build a frame outside this crate (every
/// variant with members is `#[non_exhaustive]`). Each takes the members the
/// frame has today, optional ones as `Option`; when a later version adds a
/// member, these keep their signatures and leave it absent.
impl ServerFrame {
    /// A `welcome` to `nick`: `lobby`'s `seq` and who is in it. A v1
    /// server's has no `session`, `resumed` or `limits`; a v2 server sends
    /// all three.
    pub fn welcome(
        nick: impl Into<String>,
        seq: u64,
        online: Vec<String>,
        session: Option<String>,
        resumed: Option<bool>,
        limits: Option<Limits>,
    ) -> Self {
        ServerFrame::Welcome {
            nick: nick.into(),
            seq,
            online,
            session,
            resumed,
            limits,
            closed_for: None,
        }
    }

    /// This frame, a [`ServerFrame::Welcome`], saying the session's
    /// previous connection was closed with the fatal error `code` (its
    /// `closed_for`); any other frame is returned as it is.
    pub fn with_closed_for(mut self, code: Option<ErrorCode>) -> Self {
        if let ServerFrame::Welcome { closed_for, .. } = &mut self {
            *closed_for = code;
        }
        self
    }

    /// An `online` continuation: more of `room`'s members (`None`: `lobby`,
    /// as in v1).
    pub fn online(room: Option<String>, nicks: Vec<String>) -> Self {
        ServerFrame::Online { room, nicks }
    }

    /// An `entered`: the answer to `enter`.
    pub fn entered(
        room: impl Into<String>,
        epoch: impl Into<String>,
        seq: u64,
        oldest: u64,
        online: Vec<String>,
        recovered: bool,
    ) -> Self {
        ServerFrame::Entered {
            room: room.into(),
            epoch: epoch.into(),
            seq,
            oldest,
            online,
            recovered,
        }
    }

    /// A `presence`: `nick` entered or left `room` (`None` in v1).
    pub fn presence(
        room: Option<String>,
        seq: u64,
        nick: impl Into<String>,
        status: PresenceStatus,
        ts: u64,
    ) -> Self {
        ServerFrame::Presence {
            room,
            seq,
            nick: nick.into(),
            status,
            ts,
        }
    }

    /// A stamped `msg` in `room` (`None` in v1) from `from` to `to` (empty:
    /// everyone), with the sender's `id` (only on the sender's copies). Not
    /// a replay copy: see [`ServerFrame::into_replay`].
    pub fn msg(
        room: Option<String>,
        seq: u64,
        from: impl Into<String>,
        to: Vec<String>,
        text: impl Into<String>,
        ts: u64,
        id: Option<String>,
    ) -> Self {
        ServerFrame::Msg {
            room,
            seq,
            from: from.into(),
            to,
            text: text.into(),
            ts,
            id,
            replay: false,
        }
    }

    /// This frame as a replay or a `history` page carries it: a `msg` is
    /// marked `replay`; no other frame has the mark, so they stay as they
    /// are.
    #[must_use]
    pub fn into_replay(mut self) -> Self {
        if let ServerFrame::Msg { replay, .. } = &mut self {
            *replay = true;
        }
        self
    }

    /// A `history` page of `room`: `msg` frames in increasing seq, and
    /// whether older ones exist (the next page is asked from the oldest of
    /// `events`; see [`history_from`](ServerFrame::history_from)).
    pub fn history(room: impl Into<String>, events: Vec<ServerFrame>, more: bool) -> Self {
        ServerFrame::History {
            room: room.into(),
            events,
            more,
            before: None,
            oldest: None,
        }
    }

    /// The last `history` page of `room`: no `more`, and `oldest`, where
    /// the room's kept history starts now.
    pub fn history_to(room: impl Into<String>, events: Vec<ServerFrame>, oldest: u64) -> Self {
        ServerFrame::History {
            room: room.into(),
            events,
            more: false,
            before: None,
            oldest: Some(oldest),
        }
    }

    /// A `history` page of `room` that tells where the next older page
    /// starts: `before` is sent only with `more`.
    pub fn history_from(
        room: impl Into<String>,
        events: Vec<ServerFrame>,
        more: bool,
        before: u64,
    ) -> Self {
        ServerFrame::History {
            room: room.into(),
            events,
            more,
            before: more.then_some(before),
            oldest: None,
        }
    }

    /// A `rooms` answer listing every room that has members.
    pub fn rooms(rooms: Vec<RoomInfo>) -> Self {
        ServerFrame::Rooms { rooms, total: None }
    }

    /// A `rooms` answer cut to fit a frame: `rooms` of the `total` rooms
    /// that have members.
    pub fn rooms_of(rooms: Vec<RoomInfo>, total: u64) -> Self {
        ServerFrame::Rooms {
            rooms,
            total: Some(total),
        }
    }

    /// An `error` frame with the given code and message.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerFrame::error_v2(code, message, None, None, None)
    }

    /// An `error` frame with its v2 members: the `id` of the `msg` it
    /// answers, the room concerned and, for `duplicate`, the original's seq.
    pub fn error_v2(
        code: ErrorCode,
        message: impl Into<String>,
        id: Option<String>,
        room: Option<String>,
        seq: Option<u64>,
    ) -> Self {
        ServerFrame::Error {
            code,
            message: message.into(),
            id,
            room,
            seq,
        }
    }

    /// A `notice` with `text`.
    pub fn notice(text: impl Into<String>) -> Self {
        ServerFrame::Notice { text: text.into() }
    }
}
