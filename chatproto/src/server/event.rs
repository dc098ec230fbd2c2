//! Sequenced room events: what a room says happened in it.
//!
//! Handling a client's frame decides; if the frame changes a room, it
//! becomes an [`Event`] stamped with the room's next `seq` and the wall
//! clock's `ts`. Applying events in seq order is how a room's history
//! grows and how its members change as the events tell them, so two
//! copies of a room fed the same events say the same things to the same
//! members. The rest is local housekeeping, not events: a closed
//! connection leaves the member list at once (its leaving, an event, tells
//! the others), a room is made at its first `enter` and taken out of
//! memory at the cap of rooms (forgotten, or unloaded into the store), and
//! history in memory is trimmed (a room's bounds, the server-wide byte
//! budget, which may trim another room, and retention).

use std::sync::Arc;

use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;

use crate::frame::{PresenceStatus, ServerFrame};

/// A session: what a client's resume token names. It outlives a
/// connection by the resume window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// The longest room name, in characters.
pub const MAX_ROOM_LEN: usize = 32;

/// Check a room name and give its canonical form (ASCII lower case).
///
/// A room name is 1 to 32 characters of `a-z 0-9 - _ .`, starting with a
/// letter or a digit; upper-case ASCII letters are accepted and folded.
///
/// ```
/// assert_eq!(chatproto::room_name("Rust-Lang").unwrap(), "rust-lang");
/// assert!(chatproto::room_name("#rust").is_err());
/// ```
pub fn room_name(raw: &str) -> Result<String, String> {
    room_name_ref(raw).map(std::borrow::Cow::into_owned)
}

/// [`room_name`], borrowing `raw` when it is already canonical (nearly
/// always), so a message's room costs no copy.
pub(crate) fn room_name_ref(raw: &str) -> Result<std::borrow::Cow<'_, str>, String> {
    let ok = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.');
    let bytes = raw.as_bytes();
    // Too long in bytes is too long in characters only for ASCII: a short
    // name that is long in bytes has characters the rule refuses, and is
    // told so, not that it is too long.
    if raw.is_empty() || (raw.len() > MAX_ROOM_LEN && raw.is_ascii()) {
        return Err(format!(
            "a room name is 1 to {MAX_ROOM_LEN} characters; this one has {}",
            raw.len()
        ));
    }
    if !bytes[0].is_ascii_alphanumeric() || !bytes.iter().all(|&c| ok(c)) {
        return Err(
            "a room name uses only a-z 0-9 - _ . and starts with a letter or digit (no #)"
                .to_owned(),
        );
    }
    if bytes.iter().any(u8::is_ascii_uppercase) {
        Ok(raw.to_ascii_lowercase().into())
    } else {
        Ok(raw.into())
    }
}

/// One recipient of a private or group message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recipient {
    /// The recipient's session: only it may see the message, later too.
    pub session: SessionId,
    /// Its nickname when the message was sent.
    pub nick: Arc<str>,
}

impl Recipient {
    /// A recipient: its session and its nickname when the message was sent.
    pub fn new(session: SessionId, nick: impl Into<Arc<str>>) -> Self {
        Recipient {
            session,
            nick: nick.into(),
        }
    }
}

/// What happened in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventBody {
    /// Someone entered (`Online`) or left (`Offline`) the room.
    #[non_exhaustive]
    Presence {
        /// Whose session.
        session: SessionId,
        /// Its nickname.
        nick: Arc<str>,
        /// Entered or left.
        status: PresenceStatus,
    },
    /// A message.
    #[non_exhaustive]
    Msg {
        /// The sender's session.
        from: SessionId,
        /// The sender's nickname.
        nick: Arc<str>,
        /// The recipients; empty means everyone in the room.
        to: Vec<Recipient>,
        /// The text, exactly as sent.
        text: String,
        /// The sender's id for it, if it gave one.
        id: Option<String>,
    },
}

impl EventBody {
    /// `session`, known as `nick`, entered (`Online`) or left (`Offline`).
    pub fn presence(session: SessionId, nick: impl Into<Arc<str>>, status: PresenceStatus) -> Self {
        EventBody::Presence {
            session,
            nick: nick.into(),
            status,
        }
    }

    /// A message from session `from`, known as `nick`, to `to` (empty:
    /// everyone in the room), with the sender's `id` for it if it gave one.
    pub fn msg(
        from: SessionId,
        nick: impl Into<Arc<str>>,
        to: Vec<Recipient>,
        text: impl Into<String>,
        id: Option<String>,
    ) -> Self {
        EventBody::Msg {
            from,
            nick: nick.into(),
            to,
            text: text.into(),
            id,
        }
    }
}

/// A stamped room event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// The room's canonical name.
    pub room: Arc<str>,
    /// The room's sequence number of this event: one more than the last.
    pub seq: u64,
    /// When it was stamped, unix milliseconds (the wall clock).
    pub ts: u64,
    /// What happened.
    pub body: EventBody,
}

impl Event {
    /// An event of `room` with `seq`, `ts` and `body`.
    pub fn new(room: impl Into<Arc<str>>, seq: u64, ts: u64, body: EventBody) -> Self {
        Event {
            room: room.into(),
            seq,
            ts,
            body,
        }
    }

    /// Whether `session` may see this event: a message to everyone, or to
    /// a list that names it or that it sent; a presence always.
    pub fn visible_to(&self, session: SessionId) -> bool {
        match &self.body {
            EventBody::Presence { .. } => true,
            EventBody::Msg { from, to, .. } => {
                to.is_empty() || *from == session || to.iter().any(|r| r.session == session)
            }
        }
    }

    /// The session whose event this is: the sender of a message, or the
    /// one that entered or left.
    pub fn session(&self) -> SessionId {
        match &self.body {
            EventBody::Presence { session, .. } => *session,
            EventBody::Msg { from, .. } => *from,
        }
    }

    /// A message's client-chosen id, if it has one.
    pub(crate) fn msg_id(&self) -> Option<&str> {
        match &self.body {
            EventBody::Msg { id, .. } => id.as_deref(),
            _ => None,
        }
    }

    /// Whether this is a message (not a presence).
    pub fn is_msg(&self) -> bool {
        matches!(self.body, EventBody::Msg { .. })
    }

    /// The event as it goes on the wire, borrowing it: `with_id` for the
    /// sending session's copies, `replay` for replayed and history copies.
    pub fn wire(&self, with_id: bool, replay: bool) -> WireEvent<'_> {
        WireEvent {
            event: self,
            with_id,
            replay,
        }
    }

    /// The event as an owned frame (see [`Event::wire`]).
    pub fn to_frame(&self, with_id: bool, replay: bool) -> ServerFrame {
        match &self.body {
            EventBody::Presence { nick, status, .. } => ServerFrame::Presence {
                room: Some(self.room.to_string()),
                seq: self.seq,
                nick: nick.to_string(),
                status: *status,
                ts: self.ts,
            },
            EventBody::Msg {
                nick, to, text, id, ..
            } => ServerFrame::Msg {
                room: Some(self.room.to_string()),
                seq: self.seq,
                from: nick.to_string(),
                to: to.iter().map(|r| r.nick.to_string()).collect(),
                text: text.clone(),
                ts: self.ts,
                id: if with_id { id.clone() } else { None },
                replay,
            },
        }
    }
}

/// An [`Event`] serialized exactly as the equivalent [`ServerFrame`]
/// (`presence` or `msg`), without copying its strings (a test checks the
/// bytes are the same).
#[derive(Debug, Clone, Copy)]
pub struct WireEvent<'a> {
    pub(crate) event: &'a Event,
    pub(crate) with_id: bool,
    pub(crate) replay: bool,
}

struct Nicks<'a>(&'a [Recipient]);

impl Serialize for Nicks<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|r| &*r.nick))
    }
}

impl Serialize for WireEvent<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.event;
        match &e.body {
            EventBody::Presence { nick, status, .. } => {
                let mut st = s.serialize_struct("Presence", 6)?;
                st.serialize_field("type", "presence")?;
                st.serialize_field("room", &*e.room)?;
                st.serialize_field("seq", &e.seq)?;
                st.serialize_field("nick", &**nick)?;
                st.serialize_field("status", status)?;
                st.serialize_field("ts", &e.ts)?;
                st.end()
            }
            EventBody::Msg {
                nick, to, text, id, ..
            } => {
                let mut st = s.serialize_struct("Msg", 9)?;
                st.serialize_field("type", "msg")?;
                st.serialize_field("room", &*e.room)?;
                st.serialize_field("seq", &e.seq)?;
                st.serialize_field("from", &**nick)?;
                st.serialize_field("to", &Nicks(to))?;
                st.serialize_field("text", text)?;
                st.serialize_field("ts", &e.ts)?;
                if let (true, Some(id)) = (self.with_id, id) {
                    st.serialize_field("id", id)?;
                }
                if self.replay {
                    st.serialize_field("replay", &true)?;
                }
                st.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode;

    #[test]
    fn the_wire_view_is_the_frame_byte_for_byte() {
        let to = vec![
            Recipient {
                session: SessionId(2),
                nick: "bob".into(),
            },
            Recipient {
                session: SessionId(3),
                nick: "c{d}~<x>/'".into(),
            },
        ];
        for to in [Vec::new(), to] {
            for text in ["hi", "tab\there \"quoted\" \u{1b}[31m \\ \u{202e}", ""] {
                for id in [None, Some("m-1".to_string())] {
                    let e = Event::new(
                        "rust",
                        u64::MAX,
                        1_732_400_000_456,
                        EventBody::Msg {
                            from: SessionId(1),
                            nick: "alice".into(),
                            to: to.clone(),
                            text: text.into(),
                            id,
                        },
                    );
                    for (with_id, replay) in [(false, false), (true, false), (true, true)] {
                        assert_eq!(
                            encode(&e.wire(with_id, replay), 65_536).unwrap(),
                            encode(&e.to_frame(with_id, replay), 65_536).unwrap()
                        );
                    }
                }
            }
        }
        let p = Event::new(
            "lobby",
            7,
            9,
            EventBody::Presence {
                session: SessionId(1),
                nick: "alice".into(),
                status: PresenceStatus::Offline,
            },
        );
        assert_eq!(
            encode(&p.wire(true, false), 65_536).unwrap(),
            encode(&p.to_frame(true, false), 65_536).unwrap()
        );
    }

    #[test]
    fn room_names() {
        assert_eq!(room_name("lobby").unwrap(), "lobby");
        assert_eq!(room_name("Rust.Lang_2-x").unwrap(), "rust.lang_2-x");
        assert_eq!(room_name(&"a".repeat(32)).unwrap(), "a".repeat(32));
        for bad in [
            "",
            "#rust",
            "-x",
            ".x",
            "_x",
            "a b",
            "é",
            &"a".repeat(33),
            "a/b",
        ] {
            assert!(room_name(bad).is_err(), "{bad:?}");
        }
        // Over 32 bytes but not 32 characters: refused for its characters,
        // not said to be too long.
        let accented = "\u{e9}".repeat(17);
        let why = room_name(&accented).unwrap_err();
        assert!(why.contains("uses only a-z"), "{why}");
        assert_eq!(
            room_name(&"a".repeat(33)).unwrap_err(),
            "a room name is 1 to 32 characters; this one has 33"
        );
    }
}
