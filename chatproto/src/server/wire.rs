//! The two frames a server sends most, `msg` and `presence`, written
//! straight into the output buffer: byte for byte what serde_json writes
//! for them (a property test compares the two), without serde's generic
//! machinery, which was about half of what encoding a private message
//! cost.

use bytes::{BufMut, BytesMut};

use crate::client_scan::special;
use crate::codec::{frame_into, EncodeError};
use crate::frame::PresenceStatus;
use crate::server::event::{EventBody, WireEvent};

impl WireEvent<'_> {
    /// Append the event to `dst` as one length-prefixed frame of at most
    /// `max_frame_bytes` payload bytes, exactly as
    /// [`encode_into`](crate::encode_into) would. On error `dst` is left as
    /// it was.
    pub fn encode_into(
        &self,
        dst: &mut BytesMut,
        max_frame_bytes: usize,
    ) -> Result<(), EncodeError> {
        frame_into(dst, max_frame_bytes, |dst| {
            self.payload(dst);
            Ok(())
        })
    }

    fn payload(&self, dst: &mut BytesMut) {
        let e = self.event;
        // `{"type":KIND,"room":ROOM,"seq":SEQ`, as both kinds begin.
        let head = |dst: &mut BytesMut, kind: &[u8]| {
            dst.put_slice(b"{\"type\":\"");
            dst.put_slice(kind);
            dst.put_slice(b"\",\"room\":");
            string(dst, &e.room);
            dst.put_slice(b",\"seq\":");
            number(dst, e.seq);
        };
        match &e.body {
            EventBody::Presence { nick, status, .. } => {
                head(dst, b"presence");
                dst.put_slice(b",\"nick\":");
                string(dst, nick);
                dst.put_slice(match status {
                    PresenceStatus::Online => b",\"status\":\"online\",\"ts\":",
                    PresenceStatus::Offline => b",\"status\":\"offline\",\"ts\":",
                });
                number(dst, e.ts);
            }
            EventBody::Msg {
                nick, to, text, id, ..
            } => {
                head(dst, b"msg");
                dst.put_slice(b",\"from\":");
                string(dst, nick);
                dst.put_slice(b",\"to\":[");
                for (i, r) in to.iter().enumerate() {
                    if i > 0 {
                        dst.put_u8(b',');
                    }
                    string(dst, &r.nick);
                }
                dst.put_slice(b"],\"text\":");
                string(dst, text);
                dst.put_slice(b",\"ts\":");
                number(dst, e.ts);
                if let (true, Some(id)) = (self.with_id, id) {
                    dst.put_slice(b",\"id\":");
                    string(dst, id);
                }
                if self.replay {
                    dst.put_slice(b",\"replay\":true");
                }
            }
        }
        dst.put_u8(b'}');
    }
}

/// `s` as a JSON string, escaped as serde_json escapes it.
fn string(dst: &mut BytesMut, s: &str) {
    dst.reserve(s.len() + 2);
    escaped(s, |part| dst.put_slice(part.as_bytes()));
}

/// Append `s` to `out` as a JSON string (quotes included), escaped as
/// serde_json escapes it: a quote, a backslash and the control characters
/// U+0000 to U+001F, the rest as it is. A string with none of them (most)
/// is checked sixteen bytes at a time and copied whole; in one with some,
/// they are found eight at a time and the plain stretches between them
/// copied whole, as the server's own encoder writes events. For a store or
/// a shell that writes JSON of its own.
///
/// ```
/// let mut out = String::from("[");
/// chatproto::push_json_string(&mut out, "say \"hi\"\n");
/// out.push(',');
/// chatproto::push_json_string(&mut out, "bell \u{7}, tab \t, é");
/// out.push(']');
/// assert_eq!(out, r#"["say \"hi\"\n","bell \u0007, tab \t, é"]"#);
/// ```
#[inline]
pub fn push_json_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    escaped(s, |part| out.push_str(part));
}

/// Whether `b` holds a byte a JSON string escapes (a quote, a backslash, a
/// control character). Every byte is looked at, with no early exit, so the
/// compiler checks sixteen at a time: the strings written are mostly
/// plain, and read whole anyway.
#[inline]
pub(crate) fn needs_escape(b: &[u8]) -> bool {
    b.iter().fold(false, |hit, &c| {
        hit | (c == b'"') | (c == b'\\') | (c < 0x20)
    })
}

/// `s` as a JSON string, handed to `put` in parts: the quotes, the plain
/// stretches and each escape. Most strings need none: one scan, one copy.
#[inline(always)]
fn escaped(s: &str, mut put: impl FnMut(&str)) {
    /// The escape of each control character, as serde_json writes them.
    const CONTROL: [&str; 32] = [
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b", "\\t", "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f", "\\u0010", "\\u0011",
        "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019",
        "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
    ];
    let bytes = s.as_bytes();
    put("\"");
    if !needs_escape(bytes) {
        put(s);
        put("\"");
        return;
    }
    let mut plain = 0;
    while let Some(i) = special(&bytes[plain..]).map(|i| plain + i) {
        // `i` is at an ASCII byte: both slices are whole characters.
        put(&s[plain..i]);
        plain = i + 1;
        put(match bytes[i] {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b => CONTROL[usize::from(b)],
        });
    }
    put(&s[plain..]);
    put("\"");
}

/// `n` in decimal.
fn number(dst: &mut BytesMut, n: u64) {
    dst.put_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use crate::encode_into;
    use crate::server::event::{Event, EventBody, Recipient, SessionId};
    use crate::PresenceStatus;

    use super::*;

    fn same(e: &Event, with_id: bool, replay: bool, max: usize) {
        let wire = e.wire(with_id, replay);
        let mut ours = BytesMut::from(&b"kept"[..]);
        let mut serde = ours.clone();
        let a = wire.encode_into(&mut ours, max);
        let b = encode_into(&wire, &mut serde, max);
        assert_eq!(a.is_ok(), b.is_ok(), "{a:?} {b:?}");
        assert_eq!(ours, serde);
    }

    proptest! {
        #[test]
        fn push_json_string_is_serde_jsons_byte_for_byte(
            s in "(\\PC|[\"\\\\\u{0}-\u{1f}\u{7f}]){0,40}",
        ) {
            let mut out = String::from("kept");
            push_json_string(&mut out, &s);
            prop_assert_eq!(out, format!("kept{}", serde_json::to_string(&s).unwrap()));
        }

        #[test]
        fn msg_frames_are_serde_jsons_byte_for_byte(
            room in "[a-z0-9_-]{1,32}",
            seq in any::<u64>(),
            ts in any::<u64>(),
            nick in "\\PC{1,8}",
            to in proptest::collection::vec("\\PC{1,8}", 0..4),
            // Any text, control characters and quotes included.
            text in any::<String>(),
            id in proptest::option::of("[ -~]{1,16}"),
            with_id in any::<bool>(),
            replay in any::<bool>(),
        ) {
            let to = to.into_iter().enumerate()
                .map(|(i, n)| Recipient::new(SessionId(i as u64), n))
                .collect();
            let body = EventBody::Msg {
                from: SessionId(9),
                nick: Arc::from(nick.as_str()),
                to,
                text,
                id,
            };
            same(&Event::new(room.as_str(), seq, ts, body), with_id, replay, 65_536);
        }

        #[test]
        fn texts_dense_with_escapes_are_serde_jsons_byte_for_byte(
            // Runs of plain bytes of every length around the eight the
            // search reads at a time, between bytes to escape.
            text in "([ -~é]{0,11}[\"\\\\\\x00-\\x1f\\x7f]){0,8}[ -~]{0,17}",
        ) {
            let body = EventBody::Msg {
                from: SessionId(1),
                nick: Arc::from("n"),
                to: Vec::new(),
                text,
                id: None,
            };
            same(&Event::new("lobby", 1, 2, body), false, false, 65_536);
        }

        #[test]
        fn presence_frames_are_serde_jsons_byte_for_byte(
            nick in any::<String>(),
            online in any::<bool>(),
            seq in any::<u64>(),
        ) {
            let status = if online { PresenceStatus::Online } else { PresenceStatus::Offline };
            let body = EventBody::Presence { session: SessionId(1), nick: Arc::from(nick.as_str()), status };
            same(&Event::new("lobby", seq, 7, body), false, false, 65_536);
        }
    }

    #[test]
    fn every_escape_and_the_size_limit_match() {
        let text: String = (0u8..0x80).map(char::from).collect::<String>() + "é\u{2028}\u{7f}";
        for (text, max) in [(text.clone(), 65_536), ("x".repeat(2_000), 1_024)] {
            let body = EventBody::Msg {
                from: SessionId(1),
                nick: "a\"b".into(),
                to: vec![Recipient::new(SessionId(2), "c\\d")],
                text,
                id: Some("i\n".into()),
            };
            same(&Event::new("rust", 0, u64::MAX, body), true, true, max);
        }
    }
}
