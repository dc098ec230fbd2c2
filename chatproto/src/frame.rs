//! The typed frames of wire format v2 (a superset of v1), one enum per direction.
//!
//! Every payload is a JSON object whose `"type"` member names the frame kind.
//! Members a receiver does not know are ignored, so a newer peer can add
//! fields without breaking an older one.
//! Building and matching them: see the crate docs.

mod constructors;
mod debug;

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

/// One room in a `rooms` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RoomInfo {
    /// Its name.
    pub room: String,
    /// How many are in it now.
    pub members: u64,
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
