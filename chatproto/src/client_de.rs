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

/// The values of `"type"` a client may send.
const KINDS: &[&str] = &["join", "msg", "ping", "pong"];

/// A member's value: what the frame wants, or a description of what came.
enum Member<T> {
    Absent,
    Value(T),
    /// The value had another type; the text says which.
    Wrong(String),
    /// The member came more than once: an error if the frame's kind uses it.
    Twice,
}

impl<T> Member<T> {
    /// The value, or the error the member's name and `expected` make.
    fn require<E: de::Error>(self, name: &'static str, expected: &str) -> Result<T, E> {
        match self {
            Member::Value(v) => Ok(v),
            Member::Absent => Err(E::missing_field(name)),
            Member::Wrong(what) => Err(wrong_type(name, &what, expected)),
            Member::Twice => Err(E::duplicate_field(name)),
        }
    }

    /// The value, `default` if absent, or the error for a wrong type.
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

/// Reads any JSON value: a string is kept, anything else is described.
struct LenientString;

impl<'de> Visitor<'de> for LenientString {
    type Value = Result<String, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Ok(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Ok(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Err(describe(Unexpected::Bool(v))))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Err(describe(Unexpected::Signed(v))))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Err(describe(Unexpected::Unsigned(v))))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Err(describe(Unexpected::Float(v))))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Err(describe(Unexpected::Unit)))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err(describe(Unexpected::Seq)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Err(describe(Unexpected::Map)))
    }
}

/// A string member, or a description of the value that came instead.
struct MaybeString(Result<String, String>);

impl<'de> Deserialize<'de> for MaybeString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LenientString).map(MaybeString)
    }
}

/// Reads any JSON value: an array of strings is kept, anything else is
/// described (for an array, by its first element that is not a string).
struct LenientStrings;

impl<'de> Visitor<'de> for LenientStrings {
    type Value = Result<Vec<String>, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
        let mut wrong = None;
        while let Some(MaybeString(item)) = seq.next_element()? {
            match item {
                Ok(s) if wrong.is_none() => out.push(s),
                Ok(_) => {}
                Err(what) => {
                    wrong.get_or_insert(format!("an array holding {what}"));
                }
            }
        }
        Ok(wrong.map_or(Ok(out), Err))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Err(describe(Unexpected::Str(v))))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Err(describe(Unexpected::Bool(v))))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Err(describe(Unexpected::Signed(v))))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Err(describe(Unexpected::Unsigned(v))))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Err(describe(Unexpected::Float(v))))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Err(describe(Unexpected::Unit)))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Err(describe(Unexpected::Map)))
    }
}

/// An array-of-strings member, or a description of what came instead.
struct MaybeStrings(Result<Vec<String>, String>);

impl<'de> Deserialize<'de> for MaybeStrings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LenientStrings).map(MaybeStrings)
    }
}

/// The members a client frame can have; the rest are ignored.
enum Key {
    Type,
    Nick,
    To,
    Text,
    Other,
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
                Ok(match v {
                    "type" => Key::Type,
                    "nick" => Key::Nick,
                    "to" => Key::To,
                    "text" => Key::Text,
                    _ => Key::Other,
                })
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

struct FrameVisitor;

impl<'de> Visitor<'de> for FrameVisitor {
    type Value = ClientFrame;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a client frame: an object with a \"type\" member")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ClientFrame, A::Error> {
        let mut kind: Member<String> = Member::Absent;
        let mut nick: Member<String> = Member::Absent;
        let mut to: Member<Vec<String>> = Member::Absent;
        let mut text: Member<String> = Member::Absent;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Type => {
                    let MaybeString(v) = map.next_value()?;
                    set(&mut kind, v);
                }
                Key::Nick => {
                    let MaybeString(v) = map.next_value()?;
                    set(&mut nick, v);
                }
                Key::To => {
                    let MaybeStrings(v) = map.next_value()?;
                    set(&mut to, v);
                }
                Key::Text => {
                    let MaybeString(v) = map.next_value()?;
                    set(&mut text, v);
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let kind = kind.require::<A::Error>("type", "a frame type string")?;
        match kind.as_str() {
            "join" => Ok(ClientFrame::Join {
                nick: nick.require("nick", "a string")?,
            }),
            "msg" => Ok(ClientFrame::Msg {
                to: to.or_default("to", "a sequence of strings")?,
                text: text.require("text", "a string")?,
            }),
            "ping" => Ok(ClientFrame::Ping),
            "pong" => Ok(ClientFrame::Pong),
            other => Err(de::Error::unknown_variant(other, KINDS)),
        }
    }
}

impl<'de> Deserialize<'de> for ClientFrame {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FrameVisitor)
    }
}
