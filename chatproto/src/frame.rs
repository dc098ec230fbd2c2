//! The typed frames of wire format v1, one enum per direction.
//!
//! Every payload is a JSON object whose `"type"` member names the frame kind.
//! Members a receiver does not know are ignored, so a newer peer can add
//! fields without breaking an older one.

use serde::{Deserialize, Serialize};

/// A frame sent by a client to the server.
///
/// A client must send [`ClientFrame::Join`] before anything else except
/// [`ClientFrame::Ping`] and [`ClientFrame::Pong`].
///
/// `Deserialize` is written by hand (in one pass, naming the member at
/// fault in errors); `Serialize` is derived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientFrame {
    /// Ask to join the room under `nick`. Answered by `welcome` or an error.
    Join {
        /// The requested nickname; see [`crate::nick`] for the rule.
        nick: String,
    },
    /// Send `text` to the nicknames in `to`, or to everyone when `to` is
    /// absent or empty. Answered by the echo of the stamped message, or an error.
    Msg {
        /// Recipients by nickname (case-insensitive); empty means everyone.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        to: Vec<String>,
        /// The message text, delivered exactly as sent.
        text: String,
    },
    /// Liveness probe; the server answers with `pong`.
    Ping,
    /// The answer to a server `ping`.
    Pong,
}

/// A frame sent by the server to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerFrame {
    /// Sent to a client once it has joined, before its own `online` presence.
    Welcome {
        /// The nickname the client joined as.
        nick: String,
        /// The room's latest seq when the client joined; every later event
        /// it receives has a larger seq.
        seq: u64,
        /// Everyone online, the joiner included. When the list does not fit
        /// in one frame, the rest follows in [`ServerFrame::Online`] frames.
        online: Vec<String>,
    },
    /// The continuation of a `welcome` whose `online` list did not fit.
    Online {
        /// More nicknames that are online.
        nicks: Vec<String>,
    },
    /// Someone came online or went offline.
    Presence {
        /// The room-wide sequence number of this event.
        seq: u64,
        /// Whose presence changed.
        nick: String,
        /// The new status.
        status: PresenceStatus,
        /// When the room saw it, unix milliseconds.
        ts: u64,
    },
    /// A message, stamped by the room.
    Msg {
        /// The room-wide sequence number of this message.
        seq: u64,
        /// The sender's nickname, stamped by the room.
        from: String,
        /// The recipients as named by the room; empty means everyone.
        to: Vec<String>,
        /// The text, exactly as the sender sent it.
        text: String,
        /// When the room accepted it, unix milliseconds.
        ts: u64,
    },
    /// Something went wrong; see [`ErrorCode`] for which codes close the connection.
    Error {
        /// A stable machine-readable code.
        code: ErrorCode,
        /// A sentence for a human: what happened and what to do.
        message: String,
    },
    /// Liveness probe; the client must answer with `pong`.
    Ping,
    /// The answer to a client `ping`.
    Pong,
    /// A message from the server itself, for example before it shuts down.
    Notice {
        /// Text for a human.
        text: String,
    },
}

/// The status carried by a `presence` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    /// The nickname joined the room.
    Online,
    /// The nickname left, timed out or was disconnected.
    Offline,
}

/// The stable codes carried by `error` frames.
///
/// Codes are never renamed; new ones may be added, so a receiver must accept
/// codes it does not know (they decode as [`ErrorCode::Unknown`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The nickname is already in use (compared case-insensitively).
    NickTaken,
    /// The nickname breaks the nickname rule or looks like an online nickname.
    NickInvalid,
    /// A frame other than `join`, `ping` or `pong` arrived before `join`.
    NotJoined,
    /// A second `join` arrived on a joined connection.
    AlreadyJoined,
    /// A recipient is not online; nothing was delivered to anyone.
    UnknownNick,
    /// The payload was not a valid frame; the connection stays open.
    BadFrame,
    /// The length header exceeded the limit; the connection closes.
    FrameTooLarge,
    /// The length header was zero; the connection closes.
    EmptyFrame,
    /// The stamped message would exceed the frame limit; nothing was delivered.
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
    /// A code this version does not know (sent by a newer peer).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it appears on the wire, e.g. `"nick_taken"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NickTaken => "nick_taken",
            ErrorCode::NickInvalid => "nick_invalid",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::AlreadyJoined => "already_joined",
            ErrorCode::UnknownNick => "unknown_nick",
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::EmptyFrame => "empty_frame",
            ErrorCode::MsgTooLarge => "msg_too_large",
            ErrorCode::TooManyRecipients => "too_many_recipients",
            ErrorCode::ServerFull => "server_full",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::SlowConsumer => "slow_consumer",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Unknown => "unknown",
        }
    }

    /// Whether the server closes the connection after sending this code.
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            ErrorCode::FrameTooLarge
                | ErrorCode::EmptyFrame
                | ErrorCode::ServerFull
                | ErrorCode::RateLimited
                | ErrorCode::SlowConsumer
                | ErrorCode::Timeout
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ServerFrame {
    /// An `error` frame with the given code and message.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerFrame::Error {
            code,
            message: message.into(),
        }
    }
}
