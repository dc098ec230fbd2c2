//! A chunk: a run of a room's events in one row, a JSON array of one
//! array per event. Writing an event's array, reading a chunk back,
//! inserting one, and a stored message as the event it was.

use std::sync::Arc;

use chatproto::{Event, EventBody, Recipient, SessionId};
use rusqlite::params;

use crate::StoreError;

/// An event's kind, as rows (`kind`, with `online` for a presence) and,
/// from v8, chunks (the presence's status in the kind) store it: a
/// presence that went offline...
pub(crate) const KIND_OFFLINE: i64 = 0;
/// ...a message...
pub(crate) const KIND_MSG: i64 = 1;
/// ...and a presence that came online (v8).
pub(crate) const KIND_ONLINE: i64 = 2;

/// A row's kind (v7 and before) as a chunk's: a presence's status from
/// its `online` column.
pub(crate) const LEGACY_KIND: &str = "CASE WHEN kind = 1 THEN 1 WHEN online THEN 2 ELSE 0 END";

/// One stored event as a chunk's JSON holds it, an array: seq, ts, kind
/// ([`KIND_MSG`], or a presence: [`KIND_ONLINE`], [`KIND_OFFLINE`]),
/// session, nick, then as far as any is there: text, msg_id, the
/// recipients' sessions as ",12,45," and their nicks one per line (both
/// absent or null for everyone). A message to everyone without an id is
/// `[seq,ts,1,session,"nick","text"]`.
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) seq: u64,
    pub(crate) ts: u64,
    pub(crate) kind: i64,
    pub(crate) session: u64,
    nick: String,
    text: Option<String>,
    msg_id: Option<String>,
    pub(crate) to_sessions: Option<String>,
    to_nicks: Option<String>,
}

impl<'de> serde::Deserialize<'de> for Stored {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = Stored;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an event: [seq, ts, kind, session, nick, text?, msg_id?, to_sessions?, to_nicks?]")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Stored, A::Error> {
                /// The element at `at`, which must be there.
                fn need<'de, A: serde::de::SeqAccess<'de>, T: serde::Deserialize<'de>>(
                    a: &mut A,
                    at: usize,
                ) -> Result<T, A::Error> {
                    a.next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(at, &Fields))
                }
                let (seq, ts, kind, session, nick) = (
                    need(&mut a, 0)?,
                    need(&mut a, 1)?,
                    need(&mut a, 2)?,
                    need(&mut a, 3)?,
                    need(&mut a, 4)?,
                );
                let mut next = || a.next_element::<Option<String>>().map(Option::flatten);
                Ok(Stored {
                    seq,
                    ts,
                    kind,
                    session,
                    nick,
                    text: next()?,
                    msg_id: next()?,
                    to_sessions: next()?,
                    to_nicks: next()?,
                })
            }
        }
        d.deserialize_seq(Fields)
    }
}

impl Stored {
    /// About how many bytes the event takes in memory as text: its nick,
    /// text, id and recipients.
    pub(crate) fn text_bytes(&self) -> usize {
        let len = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        self.nick.len() + len(&self.text) + len(&self.msg_id) + len(&self.to_nicks)
    }
}

/// A chunk's events, oldest first.
pub(crate) fn decode_chunk(json: &str) -> rusqlite::Result<Vec<Stored>> {
    serde_json::from_str(json).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// An event's fields, borrowed, as [`Stored`] orders them.
pub(crate) struct Fields<'a> {
    pub(crate) seq: u64,
    pub(crate) ts: u64,
    pub(crate) kind: i64,
    pub(crate) session: u64,
    pub(crate) nick: &'a str,
    pub(crate) text: Option<&'a str>,
    pub(crate) msg_id: Option<&'a str>,
    pub(crate) to: To<'a>,
}

/// A message's recipients: as a chunk stored them (sessions as ",12,45,",
/// nicks one per line, both `None` for everyone), or as the event has them
/// (none: everyone), written in that form without a copy.
pub(crate) enum To<'a> {
    Stored(Option<&'a str>, Option<&'a str>),
    Live(&'a [Recipient]),
}

impl<'a> Fields<'a> {
    pub(crate) fn of(e: &'a Stored) -> Fields<'a> {
        Fields {
            seq: e.seq,
            ts: e.ts,
            kind: e.kind,
            session: e.session,
            nick: &e.nick,
            text: e.text.as_deref(),
            msg_id: e.msg_id.as_deref(),
            to: To::Stored(e.to_sessions.as_deref(), e.to_nicks.as_deref()),
        }
    }

    /// Append the event's JSON array to `out`, up to its last field that
    /// is there.
    pub(crate) fn push(&self, out: &mut String) {
        out.push('[');
        for n in [self.seq, self.ts] {
            out.push_str(itoa::Buffer::new().format(n));
            out.push(',');
        }
        match u8::try_from(self.kind) {
            Ok(k @ 0..=9) => out.push(char::from(b'0' + k)),
            _ => out.push_str(itoa::Buffer::new().format(self.kind)),
        }
        out.push(',');
        out.push_str(itoa::Buffer::new().format(self.session));
        out.push(',');
        push_str(out, Some(self.nick));
        let to = match self.to {
            To::Stored(None, None) | To::Live([]) => false,
            To::Stored(..) | To::Live(_) => true,
        };
        if self.text.is_some() || self.msg_id.is_some() || to {
            out.push(',');
            push_str(out, self.text);
        }
        if self.msg_id.is_some() || to {
            out.push(',');
            push_str(out, self.msg_id);
        }
        match self.to {
            _ if !to => {}
            To::Stored(sessions, nicks) => {
                for s in [sessions, nicks] {
                    out.push(',');
                    push_str(out, s);
                }
            }
            To::Live(to) => {
                // Digits and commas need no escaping.
                out.push_str(",\",");
                for r in to {
                    out.push_str(itoa::Buffer::new().format(r.session.0));
                    out.push(',');
                }
                out.push_str("\",");
                // A nickname holds no control character, so no newline:
                // one recipient's nicks are its nick as it is.
                match to {
                    [one] => push_str(out, Some(&one.nick)),
                    _ => {
                        let nicks = to.iter().map(|r| &*r.nick).collect::<Vec<_>>().join("\n");
                        push_str(out, Some(&nicks));
                    }
                }
            }
        }
        out.push(']');
    }
}

/// `s` as a JSON string, or `null`.
fn push_str(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => chatproto::push_json_string(out, s),
        None => out.push_str("null"),
    }
}

pub(crate) fn insert_chunk(
    tx: &rusqlite::Transaction<'_>,
    base: i64,
    first: u64,
    last: u64,
    json: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached("INSERT INTO chunks (id, first, events) VALUES (?1, ?2, ?3)")?
        .execute(params![base | last as i64, first as i64, json])?;
    Ok(())
}

/// A stored message as the event it was.
pub(crate) fn stored_msg(e: Stored, room: &Arc<str>) -> Event {
    let Stored {
        seq,
        ts,
        session,
        nick,
        text,
        msg_id,
        to_sessions: sessions,
        to_nicks: nicks,
        ..
    } = e;
    let to = match (sessions, nicks) {
        (Some(sessions), Some(nicks)) => sessions
            .split(',')
            .filter(|s| !s.is_empty())
            .zip(nicks.split('\n'))
            .map(|(s, n)| Recipient::new(SessionId(s.parse().unwrap_or(u64::MAX)), n))
            .collect(),
        _ => Vec::new(),
    };
    let body = EventBody::msg(
        SessionId(session),
        nick,
        to,
        text.unwrap_or_default(),
        msg_id,
    );
    Event::new(Arc::clone(room), seq, ts, body)
}
