//! `Deserialize` for [`ClientFrame`], in one pass.
//!
//! serde's derive for an internally tagged enum first copies every member
//! into a buffer of its own (it cannot know the variant before it has seen
//! `"type"`, which may come last), then deserializes the variant from that
//! buffer: an allocation per member on the hot path of every frame. This
//! reads each member once, straight into what the frames need. A member
//! whose value has the wrong type is only an error if the frame's kind uses
//! it; members a kind does not use are ignored whatever their value, as the
//! protocol's forward-compatibility rule says. Errors name the member.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::Deserialize;

use crate::frame::ClientFrame;
use crate::PayloadError;

/// The values of `"type"` a client may send.
const KINDS: &[&str] = &[
    "join", "enter", "part", "msg", "history", "rooms", "ping", "pong",
];

/// One of [`KINDS`].
#[derive(Clone, Copy)]
enum Known {
    Join,
    Enter,
    Part,
    Msg,
    History,
    Rooms,
    Ping,
    Pong,
}

/// A frame's `type`: one of [`KINDS`], or another string (an error once
/// the frame is built).
enum Kind {
    Known(Known),
    Unknown(String),
}

impl Kind {
    /// The kind `name` names; only an unknown one is copied.
    fn of(name: &str) -> Kind {
        Kind::Known(match name {
            "join" => Known::Join,
            "enter" => Known::Enter,
            "part" => Known::Part,
            "msg" => Known::Msg,
            "history" => Known::History,
            "rooms" => Known::Rooms,
            "ping" => Known::Ping,
            "pong" => Known::Pong,
            _ => return Kind::Unknown(name.to_owned()),
        })
    }
}

/// A member's value: what the frame wants, or a description of what came.
#[derive(Default)]
enum Member<T> {
    #[default]
    Absent,
    Value(T),
    /// The value had another type; the text says which.
    Wrong(String),
    /// The member came more than once: an error if the frame's kind uses it.
    Twice,
}

impl<T> Member<T> {
    /// The value, or the error the member's name and `expected` make.
    #[inline]
    fn require<E: de::Error>(self, name: &'static str, expected: &str) -> Result<T, E> {
        match self {
            Member::Value(v) => Ok(v),
            Member::Absent => Err(E::missing_field(name)),
            Member::Wrong(what) => Err(wrong_type(name, &what, expected)),
            Member::Twice => Err(E::duplicate_field(name)),
        }
    }

    /// The value, `None` if absent or null, or the error for a wrong type.
    #[inline]
    fn optional<E: de::Error>(self, name: &'static str, expected: &str) -> Result<Option<T>, E> {
        match self {
            Member::Absent => Ok(None),
            other => other.require(name, expected).map(Some),
        }
    }

    /// The value, `default` if absent, or the error for a wrong type.
    #[inline]
    fn or_default<E: de::Error>(self, name: &'static str, expected: &str) -> Result<T, E>
    where
        T: Default,
    {
        match self {
            Member::Absent => Ok(T::default()),
            other => other.require(name, expected),
        }
    }
}

fn wrong_type<E: de::Error>(name: &str, what: &str, expected: &str) -> E {
    E::custom(format_args!(
        "member `{name}`: invalid type: {what}, expected {expected}"
    ))
}

/// Describe an unexpected value the way serde does ("integer `42`").
fn describe(u: Unexpected<'_>) -> String {
    u.to_string()
}

/// Any JSON value, reduced to what client frames can use: a string, an
/// array of strings, or a description of something else.
pub(crate) enum Value {
    Str(String),
    Strings(Vec<String>),
    Unsigned(u64),
    Null,
    Other(String),
}

impl Value {
    /// What came, as serde would describe it in an error.
    fn describe(self) -> String {
        match self {
            Value::Str(s) => describe(Unexpected::Str(&s)),
            Value::Strings(_) => describe(Unexpected::Seq),
            Value::Unsigned(n) => describe(Unexpected::Unsigned(n)),
            Value::Null => describe(Unexpected::Unit),
            Value::Other(what) => what,
        }
    }

    /// The string, or a description of what came instead.
    fn into_string(self) -> Result<String, String> {
        match self {
            Value::Str(s) => Ok(s),
            other => Err(other.describe()),
        }
    }

    /// The array of strings, or a description of what came instead.
    fn into_strings(self) -> Result<Vec<String>, String> {
        match self {
            Value::Strings(v) => Ok(v),
            other => Err(other.describe()),
        }
    }

    /// The unsigned integer, or a description of what came instead.
    fn into_u64(self) -> Result<u64, String> {
        match self {
            Value::Unsigned(n) => Ok(n),
            other => Err(other.describe()),
        }
    }

    /// For an optional member: null is absent.
    fn nullable<T>(self, f: impl FnOnce(Value) -> Result<T, String>) -> Option<Result<T, String>> {
        match self {
            Value::Null => None,
            other => Some(f(other)),
        }
    }
}

/// Reads any JSON value into a [`Value`]; never fails on a type.
struct AnyValue;

impl<'de> Visitor<'de> for AnyValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Other(describe(Unexpected::Bool(v))))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        match u64::try_from(v) {
            Ok(n) => Ok(Value::Unsigned(n)),
            Err(_) => Ok(Value::Other(describe(Unexpected::Signed(v)))),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Unsigned(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Other(describe(Unexpected::Float(v))))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    /// An array: its strings, or a description by its first element that
    /// is not a string. Past that element the rest is only skipped: read
    /// and described one by one, an array of 30,000 wrong elements cost
    /// twelve times what skipping it does (BENCHMARKS.md).
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
        while let Some(item) = seq.next_element::<Any>()? {
            match item.0.into_string() {
                Ok(s) => out.push(s),
                Err(what) => {
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    return Ok(Value::Other(format!("an array holding {what}")));
                }
            }
        }
        Ok(Value::Strings(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Value::Other(describe(Unexpected::Map)))
    }
}

/// A member's value as [`AnyValue`] reads it.
struct Any(Value);

impl<'de> Deserialize<'de> for Any {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnyValue).map(Any)
    }
}

/// The members a client frame can have; the rest are ignored.
pub(crate) enum Key {
    Type,
    Nick,
    To,
    Text,
    Rooms,
    Resume,
    Room,
    Since,
    Epoch,
    Id,
    Before,
    Limit,
    Other,
}

impl Key {
    /// The member a name stands for.
    pub(crate) fn from_name(name: &str) -> Key {
        match name {
            "type" => Key::Type,
            "nick" => Key::Nick,
            "to" => Key::To,
            "text" => Key::Text,
            "rooms" => Key::Rooms,
            "resume" => Key::Resume,
            "room" => Key::Room,
            "since" => Key::Since,
            "epoch" => Key::Epoch,
            "id" => Key::Id,
            "before" => Key::Before,
            "limit" => Key::Limit,
            _ => Key::Other,
        }
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key::from_name(v))
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// Store what came for a member; a second one marks it as given twice.
fn set<T>(slot: &mut Member<T>, value: Result<T, String>) {
    *slot = match (&slot, value) {
        (Member::Absent, Ok(v)) => Member::Value(v),
        (Member::Absent, Err(what)) => Member::Wrong(what),
        _ => Member::Twice,
    };
}

/// Store what came for an optional member, where null means absent (as
/// serde's derive reads `Option`); a second one, null or not, marks it as
/// given twice.
fn set_opt<T>(slot: &mut Member<T>, seen: &mut bool, value: Option<Result<T, String>>) {
    if std::mem::replace(seen, true) {
        *slot = Member::Twice;
        return;
    }
    if let Some(value) = value {
        set(slot, value);
    }
}

/// What came for each member a client frame can have, as a frame's
/// members are read one by one: by serde (below) or by the scanner of
/// plain frames (`crate::client_scan`), which then build the frame the
/// same way.
#[derive(Default)]
pub(crate) struct Members {
    kind: Member<Kind>,
    nick: Member<String>,
    to: Member<Vec<String>>,
    text: Member<String>,
    room: Member<String>,
    rooms: Member<Vec<String>>,
    resume: Member<String>,
    since: Member<u64>,
    epoch: Member<String>,
    id: Member<String>,
    before: Member<u64>,
    limit: Member<u64>,
    /// Whether an optional member came at all (null included).
    seen: [bool; 9],
}

impl Members {
    /// Note the value of member `key` (not [`Key::Other`], whose value is
    /// ignored unread).
    pub(crate) fn put(&mut self, key: Key, value: Value) {
        let seen = &mut self.seen;
        match key {
            Key::Type => set(&mut self.kind, value.into_string().map(|k| Kind::of(&k))),
            Key::Nick => set(&mut self.nick, value.into_string()),
            // Optional: null is absent, which is everyone.
            Key::To => set_opt(
                &mut self.to,
                &mut seen[8],
                value.nullable(Value::into_strings),
            ),
            Key::Text => set(&mut self.text, value.into_string()),
            // `room` is optional in `msg` and required elsewhere; a null
            // is absent for `msg` and the wrong type for the others.
            Key::Room => set_opt(
                &mut self.room,
                &mut seen[0],
                value.nullable(Value::into_string),
            ),
            Key::Rooms => set_opt(
                &mut self.rooms,
                &mut seen[1],
                value.nullable(Value::into_strings),
            ),
            Key::Resume => set_opt(
                &mut self.resume,
                &mut seen[2],
                value.nullable(Value::into_string),
            ),
            Key::Since => set_opt(
                &mut self.since,
                &mut seen[3],
                value.nullable(Value::into_u64),
            ),
            Key::Epoch => set_opt(
                &mut self.epoch,
                &mut seen[4],
                value.nullable(Value::into_string),
            ),
            Key::Id => set_opt(
                &mut self.id,
                &mut seen[5],
                value.nullable(Value::into_string),
            ),
            Key::Before => set_opt(
                &mut self.before,
                &mut seen[6],
                value.nullable(Value::into_u64),
            ),
            Key::Limit => set_opt(
                &mut self.limit,
                &mut seen[7],
                value.nullable(Value::into_u64),
            ),
            Key::Other => {}
        }
    }

    /// Note a plain string given for member `key`, as [`put`](Members::put)
    /// would a [`Value::Str`], copying it only if a frame may use it (the
    /// scanner's path).
    pub(crate) fn put_str(&mut self, key: Key, s: &str) {
        match key {
            Key::Type => set(&mut self.kind, Ok(Kind::of(s))),
            Key::Text => set(&mut self.text, Ok(s.to_owned())),
            Key::Other => {}
            key => self.put(key, Value::Str(s.to_owned())),
        }
    }

    /// Note an array of strings given for member `key`, as
    /// [`put`](Members::put) would a [`Value::Strings`] (the scanner's path).
    pub(crate) fn put_strings(&mut self, key: Key, v: Vec<String>) {
        match key {
            Key::To => set_opt(&mut self.to, &mut self.seen[8], Some(Ok(v))),
            Key::Other => {}
            key => self.put(key, Value::Strings(v)),
        }
    }

    /// The frame these members make, or the error that names what is wrong.
    pub(crate) fn build<E: de::Error>(self) -> Result<ClientFrame, E> {
        let kind = match self.kind.require::<E>("type", "a frame type string")? {
            Kind::Known(k) => k,
            Kind::Unknown(other) => return Err(de::Error::unknown_variant(&other, KINDS)),
        };
        const STR: &str = "a string";
        const NUM: &str = "an unsigned integer";
        let seen_room = self.seen[0];
        match kind {
            Known::Join => Ok(ClientFrame::Join {
                nick: self.nick.require("nick", STR)?,
                rooms: self.rooms.optional("rooms", "a sequence of strings")?,
                resume: self.resume.optional("resume", STR)?,
            }),
            Known::Enter => Ok(ClientFrame::Enter {
                room: required_room(self.room, seen_room)?,
                since: self.since.optional("since", NUM)?,
                epoch: self.epoch.optional("epoch", STR)?,
            }),
            Known::Part => Ok(ClientFrame::Part {
                room: required_room(self.room, seen_room)?,
            }),
            Known::Msg => Ok(ClientFrame::Msg {
                room: self.room.optional("room", STR)?,
                to: self.to.or_default("to", "a sequence of strings")?,
                text: self.text.require("text", STR)?,
                id: self.id.optional("id", STR)?,
            }),
            Known::History => Ok(ClientFrame::History {
                room: required_room(self.room, seen_room)?,
                before: self.before.optional("before", NUM)?,
                limit: self.limit.optional("limit", NUM)?,
            }),
            Known::Rooms => Ok(ClientFrame::Rooms),
            Known::Ping => Ok(ClientFrame::Ping),
            Known::Pong => Ok(ClientFrame::Pong),
        }
    }
}

impl Members {
    /// The room a frame about one room is about, and a `msg`'s `id`, when
    /// they were read whatever else is wrong: a string `room` given once
    /// (absent or null in a `msg`: `lobby`), a string `id`.
    fn about(self) -> Option<(String, Option<String>)> {
        let Member::Value(Kind::Known(kind)) = self.kind else {
            return None;
        };
        let room = match (kind, self.room) {
            (Known::Enter | Known::Part | Known::History | Known::Msg, Member::Value(room)) => room,
            (Known::Msg, Member::Absent) => crate::LOBBY.to_owned(),
            _ => return None,
        };
        let id = match (kind, self.id) {
            (Known::Msg, Member::Value(id)) => Some(id),
            _ => None,
        };
        Some((room, id))
    }
}

/// `error`, what the serde path made of the client frame `payload`, as
/// [`PayloadError::InRoom`] when it is a frame about one room whose room
/// could be read (see [`Members::about`]); otherwise as it is.
pub(crate) fn in_room(payload: &[u8], error: PayloadError) -> PayloadError {
    let PayloadError::Invalid(message) = error else {
        return error;
    };
    let about = std::str::from_utf8(payload)
        .ok()
        .and_then(|text| serde_json::from_str::<About>(text).ok())
        .and_then(|a| a.0);
    match about {
        Some((room, id)) => PayloadError::InRoom { room, id, message },
        None => PayloadError::Invalid(message),
    }
}

/// What [`Members::about`] reads of a payload: only `type`, `room` and
/// `id`, whatever the other members hold.
struct About(Option<(String, Option<String>)>);

impl<'de> Deserialize<'de> for About {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AboutVisitor;
        impl<'de> Visitor<'de> for AboutVisitor {
            type Value = About;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a client frame")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<About, A::Error> {
                let mut members = Members::default();
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Type | Key::Room | Key::Id => {
                            let value = map.next_value::<Any>()?.0;
                            members.put(key, value);
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(About(members.about()))
            }
        }
        d.deserialize_map(AboutVisitor)
    }
}

struct FrameVisitor;

impl<'de> Visitor<'de> for FrameVisitor {
    type Value = ClientFrame;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a client frame: an object with a \"type\" member")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ClientFrame, A::Error> {
        let mut members = Members::default();
        while let Some(key) = map.next_key::<Key>()? {
            if let Key::Other = key {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value = map.next_value::<Any>()?.0;
            members.put(key, value);
        }
        members.build()
    }
}

/// `room` where a frame requires it: a null is the wrong type, not absent.
fn required_room<E: de::Error>(room: Member<String>, seen: bool) -> Result<String, E> {
    match room {
        Member::Absent if seen => Err(wrong_type("room", &describe(Unexpected::Unit), "a string")),
        other => other.require("room", "a string"),
    }
}

impl<'de> Deserialize<'de> for ClientFrame {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FrameVisitor)
    }
}
