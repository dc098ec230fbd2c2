//! The constructors of the frames and of the members they carry, the one
//! way to build them outside this crate (all are `#[non_exhaustive]`).

use super::{ClientFrame, ErrorCode, Limits, PresenceStatus, RoomInfo, ServerFrame};

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

impl RoomInfo {
    /// A room and its member count.
    pub fn new(room: impl Into<String>, members: u64) -> Self {
        RoomInfo {
            room: room.into(),
            members,
        }
    }
}
