//! What the client core hands its shell: outputs to act on, events to
//! show, the messages not yet acknowledged, and the events' constructors.

#[cfg(doc)]
use super::Client;
use crate::frame::{ClientFrame, ErrorCode};

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
        /// On a resume: the fatal error the server had closed the previous
        /// connection with (`slow_consumer`, `rate_limited`, `timeout`,
        /// ...), said by the `welcome` (its `closed_for`) because the
        /// `error` frame that said it did not arrive then (a client
        /// closed for reading too slowly seldom gets it). Tell the user
        /// why they were disconnected. `None`: the connection ended
        /// otherwise, the error was received then, or the server does not
        /// say.
        closed_for: Option<ErrorCode>,
    },
    /// The join was refused. With a code that is not fatal (`nick_taken`,
    /// `nick_invalid`, ...) the connection stays open:
    /// [`Client::join_as`] tries another nickname. With a fatal one
    /// ([`ErrorCode::is_fatal`]: `server_full`, a join `timeout`, ...) the
    /// server closes the connection: `join_as` only sets the nickname for
    /// the next one, after [`Client::handle_disconnected`].
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
        /// Whether this entered the room again from the last seq seen:
        /// after a reconnect, or in a new run given
        /// [`Client::set_last_seen`] (so the replay that follows is what
        /// was sent since, not the room's latest messages).
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
        /// Whether it came from a room's replay, not live. After
        /// [`ClientEvent::Entered`] with `again` (a reconnect, or a room
        /// given [`Client::set_last_seen`]), the replay is what was sent
        /// while away; after a first entering (`again` false), it is the
        /// room's latest messages, up to 50, sent before
        /// this client came: a bot must not take those for new commands.
        /// The replay ends with this client's own
        /// [`ClientEvent::Presence`] in the room.
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
        /// oldest message's seq from a server that does not say. `None`
        /// with `more` (an empty page from a server that does not say):
        /// there is no place to go on from; asking with `before: None`
        /// would get the newest page again, so go on from the `before` of
        /// the request this page answered, or stop.
        before: Option<u64>,
        /// Without `more`: where the room's kept history starts (the
        /// page's `oldest`, or from a server that does not say it, the
        /// room's `entered`). Above 1, older messages were deleted (the
        /// server's retention or its cap): say so, not that this is the
        /// start of the room's history. `None` with `more`.
        oldest: Option<u64>,
    },
    /// The rooms with members, by name, each with how many are in it.
    #[non_exhaustive]
    Rooms {
        /// The rooms listed. When they do not all fit one frame, the
        /// server lists those whose names sort first.
        rooms: Vec<(String, u64)>,
        /// How many more rooms have members and are not listed (0: the
        /// list is whole, or the server does not say). Any of them can
        /// still be entered by name.
        unlisted: u64,
    },
    /// A request failed. `id` is set when it answered a message this
    /// client sent (that message is given up). With
    /// [`ErrorCode::ResumedElsewhere`] (or another code that closes the
    /// connection, see [`ErrorCode::is_fatal`]) the server closes the
    /// connection next; after `ResumedElsewhere` do not reconnect by
    /// yourself: another connection continues this session.
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
    /// A message this client sent, given up without an answer: it was
    /// written on a connection that was lost before the server answered
    /// it, and the session that followed is a fresh one (the
    /// [`ClientEvent::Joined`] did not say `resumed`), which cannot tell
    /// whether the server had it. A private or group message is never
    /// visible to a new session (PROTOCOL.md 5.6); a message to everyone
    /// is looked for in its room's replay first, and given up only when
    /// it is not there and the replay does not reach back to when it was
    /// sent (a gap, a history begun anew, a room not entered again).
    /// It may or may not have been delivered: the core does not send it
    /// again (a second copy would reach whoever has the first), and it is
    /// no longer [`pending`](Client::pending). Tell the user, with its
    /// text, so they can send it again if it did not arrive.
    #[non_exhaustive]
    Unconfirmed {
        /// Its id (the one [`Client::send_msg`] returned).
        id: String,
        /// The room it was sent in.
        room: String,
        /// The recipients; empty: everyone in the room.
        to: Vec<String>,
        /// The text.
        text: String,
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
    /// Whether it may have reached the server: handed out to be written
    /// on the connection open now, or written to one lost since with no
    /// answer. `false`: it never left the client (typed while offline, or
    /// held back by pacing when its connection ended), so it did not
    /// arrive.
    pub may_have_arrived: bool,
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
            closed_for: None,
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
            oldest: None,
        }
    }

    /// [`ClientEvent::Rooms`]: `rooms` listed, `unlisted` more not.
    pub fn rooms(rooms: Vec<(String, u64)>, unlisted: u64) -> Self {
        ClientEvent::Rooms { rooms, unlisted }
    }

    /// [`ClientEvent::Unconfirmed`].
    pub fn unconfirmed(
        id: impl Into<String>,
        room: impl Into<String>,
        to: Vec<String>,
        text: impl Into<String>,
    ) -> Self {
        ClientEvent::Unconfirmed {
            id: id.into(),
            room: room.into(),
            to,
            text: text.into(),
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
