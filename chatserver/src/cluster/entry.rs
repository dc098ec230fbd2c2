//! A room event as a stream message: the payload this version writes
//! (and reads back the short way, with serde as the fallback for any other
//! shape), and the stream seq read from a message's reply subject.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use chatproto::{Event, EventBody, PresenceStatus, Recipient, SessionId};
use serde::{Deserialize, Serialize};

/// An event as a stream message's payload, read: its kind and nickname
/// borrowed from the payload where they hold no escape ([`LoggedOut`] is
/// the same payload written).
#[derive(Deserialize)]
struct Logged<'a> {
    /// `p` presence, `m` message.
    #[serde(borrow)]
    k: Cow<'a, str>,
    s: u64,
    #[serde(borrow)]
    n: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    on: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    to: Vec<(u64, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    ts: u64,
}

/// An event as a stream message's payload, written from the event's own
/// strings (no copy of them on the way).
#[derive(Serialize)]
struct LoggedOut<'a> {
    k: &'a str,
    s: u64,
    n: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    on: Option<bool>,
    #[serde(skip_serializing_if = "LoggedRecipients::is_empty")]
    to: LoggedRecipients<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    t: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    ts: u64,
}

/// `event` as a stream message's payload.
pub fn encode_event(event: &Event) -> Bytes {
    let logged = match &event.body {
        EventBody::Presence {
            session,
            nick,
            status,
            ..
        } => LoggedOut {
            k: "p",
            s: session.0,
            n: nick,
            on: Some(*status == PresenceStatus::Online),
            to: LoggedRecipients(&[]),
            t: None,
            id: None,
            ts: event.ts,
        },
        EventBody::Msg {
            from,
            nick,
            to,
            text,
            id,
            ..
        } => LoggedOut {
            k: "m",
            s: from.0,
            n: nick,
            on: None,
            to: LoggedRecipients(to),
            t: Some(text),
            id: id.as_deref(),
            ts: event.ts,
        },
        _ => return Bytes::new(),
    };
    Bytes::from(serde_json::to_vec(&logged).unwrap_or_default())
}

/// A message's recipients as the log holds them: `[session, nick]` pairs.
struct LoggedRecipients<'a>(&'a [Recipient]);

impl LoggedRecipients<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for LoggedRecipients<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|r| (r.session.0, &*r.nick)))
    }
}

/// A stream message's payload as the event `seq` of `room`.
pub fn decode_event(room: &Arc<str>, seq: u64, payload: &[u8]) -> Option<Event> {
    match Plain(payload).read() {
        Some((ts, body)) => Some(Event::new(Arc::clone(room), seq, ts, body)),
        None => decode_any(room, seq, payload),
    }
}

/// [`decode_event`] for any payload serde can read (other key orders,
/// whitespace, escapes, members this version does not know).
fn decode_any(room: &Arc<str>, seq: u64, payload: &[u8]) -> Option<Event> {
    let l: Logged<'_> = serde_json::from_slice(payload).ok()?;
    let body = match &*l.k {
        "p" => {
            let status = if l.on? {
                PresenceStatus::Online
            } else {
                PresenceStatus::Offline
            };
            EventBody::presence(SessionId(l.s), &*l.n, status)
        }
        "m" => EventBody::msg(
            SessionId(l.s),
            &*l.n,
            l.to.into_iter()
                .map(|(s, n)| Recipient::new(SessionId(s), n))
                .collect(),
            l.t?,
            l.id,
        ),
        _ => return None,
    };
    Some(Event::new(Arc::clone(room), seq, l.ts, body))
}

/// A payload read the short way: exactly as [`encode_event`] writes it
/// (its keys in its order, no whitespace) with no escape in any string,
/// which is nearly every event; anything else is left to serde
/// (`read` says `None`). serde_json's general reading of the same object
/// was a tenth of a node's instructions per event.
struct Plain<'a>(&'a [u8]);

impl<'a> Plain<'a> {
    /// The event's `ts` and body, having read the whole payload.
    fn read(mut self) -> Option<(u64, EventBody)> {
        self.lit(b"{\"k\":\"")?;
        let kind = *self.0.first()?;
        self.0 = &self.0[1..];
        self.lit(b"\",\"s\":")?;
        let session = SessionId(self.num()?);
        self.lit(b",\"n\":")?;
        let nick = self.string()?;
        let on = if self.lit(b",\"on\":true").is_some() {
            Some(true)
        } else if self.lit(b",\"on\":false").is_some() {
            Some(false)
        } else {
            None
        };
        let mut to = Vec::new();
        if self.lit(b",\"to\":[").is_some() {
            loop {
                self.lit(b"[")?;
                let s = SessionId(self.num()?);
                self.lit(b",")?;
                to.push(Recipient::new(s, self.string()?));
                self.lit(b"]")?;
                if self.lit(b",").is_none() {
                    break;
                }
            }
            self.lit(b"]")?;
        }
        // A key once read must have its string: `"t":,` is no text.
        let text = match self.lit(b",\"t\":") {
            Some(()) => Some(self.string()?),
            None => None,
        };
        let id = match self.lit(b",\"id\":") {
            Some(()) => Some(self.string()?),
            None => None,
        };
        self.lit(b",\"ts\":")?;
        let ts = self.num()?;
        self.lit(b"}")?;
        if !self.0.is_empty() {
            return None;
        }
        let body = match (kind, on) {
            (b'p', Some(on)) if to.is_empty() && text.is_none() && id.is_none() => {
                let status = if on {
                    PresenceStatus::Online
                } else {
                    PresenceStatus::Offline
                };
                EventBody::presence(session, nick, status)
            }
            (b'm', None) => EventBody::msg(session, nick, to, text?, id.map(str::to_owned)),
            _ => return None,
        };
        Some((ts, body))
    }

    /// Step over `s` if the payload goes on with it.
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        self.0 = self.0.strip_prefix(s)?;
        Some(())
    }

    /// A JSON number that fits a u64, written as the encoder writes one
    /// (no sign, no leading zero, no fraction).
    fn num(&mut self) -> Option<u64> {
        let len = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        let (digits, rest) = self.0.split_at(len);
        if len == 0 || (digits[0] == b'0' && len > 1) {
            return None;
        }
        let n = digits.iter().try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })?;
        self.0 = rest;
        Some(n)
    }

    /// A JSON string with no escape and no control character in it.
    fn string(&mut self) -> Option<&'a str> {
        let rest = self.0.strip_prefix(b"\"")?;
        let end = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[end] != b'"' {
            return None;
        }
        let s = std::str::from_utf8(&rest[..end]).ok()?;
        self.0 = &rest[end + 1..];
        Some(s)
    }
}

/// The stream sequence of a JetStream message, read from its reply
/// subject: `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer
/// seq>.<time>.<pending>`, or with the domain and account hash after
/// `$JS.ACK.` (and maybe a token at the end). async-nats's `info()` reads
/// every field, and its ordered consumer has already done so once for each
/// message; this reads the one the follower needs. `None` for any other
/// shape (then `info()` is asked).
pub(super) fn stream_seq(reply: &str) -> Option<u64> {
    let rest = reply.strip_prefix("$JS.ACK.")?.as_bytes();
    // Where each token starts, for the first ten.
    let mut starts = [0usize; 10];
    let mut n = 1;
    for (i, &b) in rest.iter().enumerate() {
        if b == b'.' {
            if n == starts.len() {
                n += 1;
                break;
            }
            starts[n] = i + 1;
            n += 1;
        }
    }
    let at = match n {
        7 => 3,
        9.. => 5,
        _ => return None,
    };
    let token = &rest[starts[at]..];
    let token = &token[..token.iter().position(|&b| b == b'.')?];
    std::str::from_utf8(token).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_seq_is_read_from_both_reply_subject_forms() {
        // ADR-15's first form, and the form with domain and account hash
        // (with and without the token some servers add at the end).
        let v1 = "$JS.ACK.CHATROOM_6c6f6262.cons_1.1.4242.17.1764600000000000000.3";
        let v2 = "$JS.ACK.hub.ACCHASH.CHATROOM_6c6f6262.cons_1.1.4242.17.1764600000000000000.3";
        assert_eq!(stream_seq(v1), Some(4242));
        assert_eq!(stream_seq(v2), Some(4242));
        assert_eq!(stream_seq(&format!("{v2}.xyz")), Some(4242));
        assert_eq!(stream_seq(&format!("{v2}.xyz.more.tokens")), Some(4242));
        // Shapes it does not know: left to async-nats's parser.
        for bad in [
            "_INBOX.abc.def",
            "$JS.ACK.a.b.c",
            "$JS.ACK.a.b.c.d.e.f.g.h",
            "$JS.ACK.s.c.1.notanumber.17.0.3",
            "$JS.ACK.s.c.1.-1.17.0.3",
        ] {
            assert_eq!(stream_seq(bad), None, "{bad}");
        }
    }

    #[test]
    fn events_come_back_from_the_log_as_they_went_in() {
        let room: Arc<str> = Arc::from("lobby");
        let events = [
            Event::new(
                Arc::clone(&room),
                7,
                1_764_600_000_123,
                EventBody::presence(SessionId(3), "alice", PresenceStatus::Online),
            ),
            Event::new(
                Arc::clone(&room),
                8,
                1_764_600_000_124,
                EventBody::presence(SessionId(3), "alice", PresenceStatus::Offline),
            ),
            Event::new(
                Arc::clone(&room),
                9,
                1_764_600_000_125,
                EventBody::msg(
                    SessionId(3),
                    "alice",
                    Vec::new(),
                    "hi \"all\"\n\u{e9}",
                    None,
                ),
            ),
            Event::new(
                Arc::clone(&room),
                10,
                1_764_600_000_126,
                EventBody::msg(
                    SessionId(3),
                    "alice",
                    vec![
                        Recipient::new(SessionId(4), "bob"),
                        Recipient::new(SessionId(5), "carol"),
                    ],
                    "psst",
                    Some("m-1".into()),
                ),
            ),
        ];
        for e in events {
            let payload = encode_event(&e);
            assert_eq!(decode_event(&room, e.seq, &payload), Some(e));
        }
    }

    proptest::proptest! {
        /// The short way reads what serde reads, whenever it reads at all,
        /// and it reads every event without an escape in its strings.
        #[test]
        fn the_short_way_agrees_with_serde(
            presence in proptest::bool::ANY,
            on in proptest::bool::ANY,
            session in proptest::num::u64::ANY,
            ts in proptest::num::u64::ANY,
            nick in "[a-z\"\\\\\u{e9}\n]{0,6}",
            to in proptest::collection::vec((proptest::num::u64::ANY, "[a-z\"\\\\]{0,4}"), 0..3),
            text in "[ -~\u{e9}\u{1f600}\n\t]{0,12}",
            id in proptest::option::of("[a-z0-9/\"]{0,6}"),
            cut in 0usize..200,
            flip in proptest::option::of((0usize..200, proptest::num::u8::ANY)),
            hole in proptest::option::of((0usize..200, 1usize..12)),
        ) {
            let room: Arc<str> = Arc::from("r");
            let body = if presence {
                let status = if on { PresenceStatus::Online } else { PresenceStatus::Offline };
                EventBody::presence(SessionId(session), nick.as_str(), status)
            } else {
                let to = to.iter().map(|(s, n)| Recipient::new(SessionId(*s), n.as_str())).collect();
                EventBody::msg(SessionId(session), nick.as_str(), to, text, id)
            };
            let event = Event::new(Arc::clone(&room), 9, ts, body);
            let payload = encode_event(&event);
            proptest::prop_assert_eq!(decode_event(&room, 9, &payload), Some(event));
            let plain = !payload.contains(&b'\\') && !payload.iter().any(|&b| b < 0x20);
            proptest::prop_assert_eq!(Plain(&payload).read().is_some(), plain);
            // Damaged payloads: cut short, a few bytes gone (a value or a
            // key), or one byte changed.
            let mut bad = payload[..cut.min(payload.len())].to_vec();
            if let Some((at, len)) = hole {
                let at = at.min(bad.len());
                bad.drain(at..(at + len).min(bad.len()));
            }
            if let Some((at, b)) = flip {
                if let Some(x) = bad.get_mut(at) {
                    *x = b;
                }
            }
            if let Some((ts, body)) = Plain(&bad).read() {
                let short = Event::new(Arc::clone(&room), 9, ts, body);
                proptest::prop_assert_eq!(Some(short), decode_any(&room, 9, &bad));
            }
        }
    }

    #[test]
    fn malformed_payloads_are_not_read_the_short_way() {
        // A key without its value, a value of another type, keys out of
        // order, whitespace: the short way says no, and serde decides.
        for bad in [
            r#"{"k":"p","s":1,"n":"a","on":true,"t":,"ts":5}"#,
            r#"{"k":"p","s":1,"n":"a","on":false,"t":,"id":,"ts":5}"#,
            r#"{"k":"m","s":1,"n":"a","t":"x","id":,"ts":5}"#,
            r#"{"k":"m","s":1,"n":"a","t":null,"ts":5}"#,
            r#"{"k":"m","s":1,"n":"a","to":[],"t":"x","ts":5}"#,
            r#"{"k":"m","s":1,"n":"a","to":[[2,"b"],],"t":"x","ts":5}"#,
            r#"{"k":"m","s":01,"n":"a","t":"x","ts":5}"#,
            r#"{"k":"m","s":1,"n":"a","t":"x","ts":18446744073709551616}"#,
            r#"{"s":1,"k":"m","n":"a","t":"x","ts":5}"#,
            r#"{"k":"m", "s":1,"n":"a","t":"x","ts":5}"#,
            r#"{"k":"m","s":1,"n":"a","t":"x","ts":5} "#,
            r#"{"k":"m","s":1,"n":"a","t":"x\u0041","ts":5}"#,
        ] {
            assert!(Plain(bad.as_bytes()).read().is_none(), "{bad}");
        }
        // What serde makes of the reordered one, which is valid.
        let room: Arc<str> = Arc::from("r");
        let reordered = br#"{"s":1,"k":"m","n":"a","t":"x","ts":5}"#;
        assert_eq!(
            decode_event(&room, 1, reordered),
            Some(Event::new(
                Arc::clone(&room),
                1,
                5,
                EventBody::msg(SessionId(1), "a", Vec::new(), "x", None)
            ))
        );
    }

    #[test]
    fn log_entries_written_before_the_borrowed_encoder_still_read() {
        // What the encoder wrote before it borrowed the event's strings
        // (serde's derive over owned fields): the format is unchanged.
        let room: Arc<str> = Arc::from("lobby");
        let p = br#"{"k":"p","s":3,"n":"alice","on":true,"ts":5}"#;
        let m = br#"{"k":"m","s":3,"n":"al\u0069ce","to":[[4,"bob"]],"t":"a\"b","id":"x","ts":6}"#;
        assert_eq!(
            decode_event(&room, 1, p),
            Some(Event::new(
                Arc::clone(&room),
                1,
                5,
                EventBody::presence(SessionId(3), "alice", PresenceStatus::Online)
            ))
        );
        let want = Event::new(
            Arc::clone(&room),
            2,
            6,
            EventBody::msg(
                SessionId(3),
                "alice",
                vec![Recipient::new(SessionId(4), "bob")],
                "a\"b",
                Some("x".into()),
            ),
        );
        assert_eq!(decode_event(&room, 2, m), Some(want.clone()));
        assert_eq!(
            &encode_event(&want)[..],
            br#"{"k":"m","s":3,"n":"alice","to":[[4,"bob"]],"t":"a\"b","id":"x","ts":6}"#
        );
        assert_eq!(
            decode_event(&room, 3, br#"{"k":"q","s":3,"n":"a","ts":1}"#),
            None
        );
    }
}
