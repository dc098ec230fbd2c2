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

/// Any JSON value, reduced to what client frames can use: a string, an
/// array of strings, or a description of something else.
enum Value {
    Str(String),
    Strings(Vec<String>),
    Other(String),
}

impl Value {
    /// The string, or a description of what came instead.
    fn into_string(self) -> Result<String, String> {
        match self {
            Value::Str(s) => Ok(s),
            Value::Strings(_) => Err(describe(Unexpected::Seq)),
            Value::Other(what) => Err(what),
        }
    }

    /// The array of strings, or a description of what came instead.
    fn into_strings(self) -> Result<Vec<String>, String> {
        match self {
            Value::Strings(v) => Ok(v),
            Value::Str(s) => Err(describe(Unexpected::Str(&s))),
            Value::Other(what) => Err(what),
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
        Ok(Value::Other(describe(Unexpected::Signed(v))))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Other(describe(Unexpected::Unsigned(v))))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Other(describe(Unexpected::Float(v))))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Other(describe(Unexpected::Unit)))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    /// An array: its strings, or a description by its first element that
    /// is not a string.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
        let mut wrong = None;
        while let Some(item) = seq.next_element::<Any>()? {
            match (item.0.into_string(), &wrong) {
                (Ok(s), None) => out.push(s),
                (Ok(_), Some(_)) => {}
                (Err(what), _) => {
                    wrong.get_or_insert(format!("an array holding {what}"));
                }
            }
        }
        Ok(wrong.map_or(Value::Strings(out), Value::Other))
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
                Key::Type => set(&mut kind, map.next_value::<Any>()?.0.into_string()),
                Key::Nick => set(&mut nick, map.next_value::<Any>()?.0.into_string()),
                Key::To => set(&mut to, map.next_value::<Any>()?.0.into_strings()),
                Key::Text => set(&mut text, map.next_value::<Any>()?.0.into_string()),
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
