//! chatserver's wire format v1.
//!
//! Frames are walked in place in the receive buffer (a 4-byte big-endian
//! length, checked against the limit exactly as chatproto's `FrameDecoder`
//! does, then the payload) so that no frame costs an allocation or a
//! reference count: the load generator must outrun the server it measures.
//! Payloads go through a fast scanner that recognises the exact member
//! order chatproto serializes (`msg`, `presence`, `welcome`, `ping`) without
//! building a value; anything it is not sure of (an escape in a string,
//! another member order, a rarer frame) goes to `serde_json` through
//! [`chatproto::parse_payload`], with the same result, only slower. The
//! fast path does not check that a message's text is UTF-8 (texts are
//! compared as bytes); everything else it accepts, serde would too.
//!
//! Over a WebSocket (`--transport ws`/`wss`) only the framing differs: each
//! payload is one text message, without the length prefix (see [`super::ws`]);
//! the payloads and their scanner are the same.

use std::borrow::Cow;

use bytes::{Buf, BytesMut};
use chatproto::{encode_into, ClientFrame, PresenceStatus, ServerFrame, HEADER_LEN};

use super::ws::WsFraming;
use super::{Delivery, Dest, In, ToList, WireError};

/// The largest frame we send (ours are small).
const MAX_SEND: usize = chatproto::DEFAULT_MAX_FRAME_BYTES;
/// The largest frame we accept: above any `--max-frame-bytes` a server would
/// use, below anything a broken header could make us buffer.
const MAX_FRAME: usize = 16 << 20;

/// One chat connection's decoder state.
#[derive(Debug)]
pub struct ChatWire {
    scratch: BytesMut,
    /// `None`: chatproto's 4-byte length prefix (TCP, TLS); `Some`: one
    /// WebSocket text message per payload.
    ws: Option<Box<WsFraming>>,
}

impl Default for ChatWire {
    fn default() -> Self {
        Self::new()
    }
}

impl ChatWire {
    /// A fresh connection with length-prefixed frames.
    pub fn new() -> Self {
        ChatWire {
            scratch: BytesMut::new(),
            ws: None,
        }
    }

    /// A fresh connection over a WebSocket; `seed` picks its masking keys.
    pub fn websocket(seed: u32) -> Self {
        ChatWire {
            scratch: BytesMut::new(),
            ws: Some(Box::new(WsFraming::new(seed))),
        }
    }

    /// The WebSocket framing, if this connection has it.
    pub fn ws_mut(&mut self) -> Option<&mut WsFraming> {
        self.ws.as_deref_mut()
    }

    fn put(&mut self, frame: &ClientFrame, out: &mut Vec<u8>) {
        self.scratch.clear();
        encode_into(frame, &mut self.scratch, MAX_SEND).expect("benchmark frames are small");
        self.put_payload(None, out);
    }

    /// Append the frame in `scratch` (with its length prefix), or the
    /// constant frame `fixed` (also with it), framed for the transport.
    fn put_payload(&mut self, fixed: Option<&[u8]>, out: &mut Vec<u8>) {
        let framed = fixed.unwrap_or(&self.scratch);
        match &mut self.ws {
            None => out.extend_from_slice(framed),
            Some(ws) => ws.put_text(&framed[HEADER_LEN..], out),
        }
    }

    pub(super) fn hello(&mut self, nick: &str, out: &mut Vec<u8>) {
        self.put(&ClientFrame::join(nick), out);
    }

    pub(super) fn publish(&mut self, dest: Dest<'_>, text: &str, out: &mut Vec<u8>) {
        let to = match dest {
            Dest::Room => Vec::new(),
            Dest::Member(m) => vec![m.to_owned()],
        };
        self.publish_to(to, text, out);
    }

    /// Send `text` to the nicks in `to` (empty: everyone).
    pub fn publish_to(&mut self, to: Vec<String>, text: &str, out: &mut Vec<u8>) {
        self.put(&ClientFrame::msg(to, text), out);
    }

    pub(super) fn pong(&mut self, out: &mut Vec<u8>) {
        self.put_payload(Some(b"\0\0\0\x0f{\"type\":\"pong\"}"), out);
    }

    pub(super) fn ping(&mut self, out: &mut Vec<u8>) {
        self.put_payload(Some(b"\0\0\0\x0f{\"type\":\"ping\"}"), out);
    }

    pub(super) fn decode(
        &mut self,
        buf: &mut BytesMut,
        f: &mut dyn FnMut(In<'_>),
    ) -> Result<(), WireError> {
        if let Some(ws) = &mut self.ws {
            return ws.decode(buf, MAX_FRAME, &mut |payload| f(scan(payload)));
        }
        let mut at = 0;
        let result = loop {
            let Some(head) = buf.get(at..at + HEADER_LEN) else {
                break Ok(());
            };
            let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
            if len == 0 || len > MAX_FRAME {
                break Err(WireError(format!(
                    "chatserver sent a frame header of {len} bytes (limit {MAX_FRAME})"
                )));
            }
            let Some(payload) = buf.get(at + HEADER_LEN..at + HEADER_LEN + len) else {
                break Ok(());
            };
            f(scan(payload));
            at += HEADER_LEN + len;
        };
        buf.advance(at);
        result
    }
}

/// Read one server payload.
pub fn scan(payload: &[u8]) -> In<'_> {
    if let Some(fast) = scan_fast(payload) {
        return fast;
    }
    match chatproto::parse_payload::<ServerFrame>(payload) {
        Ok(frame) => owned(frame),
        Err(e) => In::Error {
            code: Cow::Borrowed("bad_server_frame"),
            message: Cow::Owned(format!(
                "the server sent a payload that is not a frame: {e}"
            )),
        },
    }
}

fn owned(frame: ServerFrame) -> In<'static> {
    match frame {
        ServerFrame::Msg {
            seq,
            from,
            to,
            text,
            ..
        } => In::Msg(Delivery {
            seq: Some(seq),
            from: Some(Cow::Owned(from)),
            to: ToList::Owned(to),
            text: Cow::Owned(text.into_bytes()),
        }),
        ServerFrame::Presence {
            seq, nick, status, ..
        } => In::Presence {
            seq,
            nick: Cow::Owned(nick),
            online: status == PresenceStatus::Online,
        },
        ServerFrame::Welcome { seq, .. } => In::Ready { seq: Some(seq) },
        ServerFrame::Ping => In::Ping,
        // The answer to our ping: everything sent before it has arrived.
        ServerFrame::Pong => In::Ack,
        ServerFrame::Error { code, message, .. } => In::Error {
            code: Cow::Borrowed(code.as_str()),
            message: Cow::Owned(message),
        },
        _ => In::Other,
    }
}

/// A cursor over a payload for the fast path; every method fails softly.
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + s.len())? == s {
            self.i += s.len();
            Some(())
        } else {
            None
        }
    }

    fn uint(&mut self) -> Option<u64> {
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(&d) = self.b.get(self.i) {
            if !d.is_ascii_digit() {
                break;
            }
            v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.i += 1;
        }
        (self.i > start && self.i - start <= 20).then_some(v)
    }

    /// The rest of a string whose opening quote was consumed, if it has no
    /// escapes (then its JSON bytes are its value). Raw control characters
    /// are not looked for: serde_json, which wrote the payload, escapes them.
    fn plain_str(&mut self) -> Option<&'a [u8]> {
        let rest = self.b.get(self.i..)?;
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[end] != b'"' {
            return None;
        }
        self.i += end + 1;
        Some(&rest[..end])
    }

    /// Like `plain_str`, for the short strings (nicks) where a simple loop
    /// beats setting up a SIMD search.
    fn short_str(&mut self) -> Option<&'a [u8]> {
        let rest = self.b.get(self.i..)?;
        let end = rest.iter().position(|&c| c == b'"' || c == b'\\')?;
        if rest[end] != b'"' {
            return None;
        }
        self.i += end + 1;
        Some(&rest[..end])
    }

    /// Skip one or more digits.
    fn digits(&mut self) -> Option<()> {
        let n = self
            .b
            .get(self.i..)?
            .iter()
            .take_while(|d| d.is_ascii_digit())
            .count();
        self.i += n;
        (n > 0).then_some(())
    }

    /// An array of plain strings; returns what is between the brackets.
    fn str_array(&mut self) -> Option<&'a [u8]> {
        self.lit(b"[")?;
        let start = self.i;
        if self.lit(b"]").is_some() {
            return Some(&self.b[start..start]);
        }
        loop {
            self.lit(b"\"")?;
            self.short_str()?;
            if self.lit(b"]").is_some() {
                return Some(&self.b[start..self.i - 1]);
            }
            self.lit(b",")?;
        }
    }

    fn end(&self) -> Option<()> {
        (self.i == self.b.len()).then_some(())
    }
}

fn utf8(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok()
}

fn scan_fast(p: &[u8]) -> Option<In<'_>> {
    let mut c = Cur { b: p, i: 0 };
    c.lit(b"{\"type\":\"")?;
    let kind = c.short_str()?;
    // v2 servers name the room; this adapter uses one room.
    if c.lit(b",\"room\":\"").is_some() {
        c.short_str()?;
    }
    match kind {
        b"msg" => {
            c.lit(b",\"seq\":")?;
            let seq = c.uint()?;
            c.lit(b",\"from\":\"")?;
            let from = utf8(c.short_str()?)?;
            c.lit(b",\"to\":")?;
            let to = c.str_array()?;
            c.lit(b",\"text\":\"")?;
            let text = c.plain_str()?;
            c.lit(b",\"ts\":")?;
            c.digits()?;
            c.lit(b"}")?;
            c.end()?;
            Some(In::Msg(Delivery {
                seq: Some(seq),
                from: Some(Cow::Borrowed(from)),
                to: ToList::Raw(to),
                text: Cow::Borrowed(text),
            }))
        }
        b"presence" => {
            c.lit(b",\"seq\":")?;
            let seq = c.uint()?;
            c.lit(b",\"nick\":\"")?;
            let nick = utf8(c.short_str()?)?;
            c.lit(b",\"status\":\"")?;
            let online = match c.plain_str()? {
                b"online" => true,
                b"offline" => false,
                _ => return None,
            };
            c.lit(b",\"ts\":")?;
            c.digits()?;
            c.lit(b"}")?;
            c.end()?;
            Some(In::Presence {
                seq,
                nick: Cow::Borrowed(nick),
                online,
            })
        }
        b"welcome" => {
            // The online list can be long and is not needed: stop at the seq.
            c.lit(b",\"nick\":\"")?;
            c.plain_str()?;
            c.lit(b",\"seq\":")?;
            let seq = c.uint()?;
            c.lit(b",\"online\":[")?;
            (p.last() == Some(&b'}')).then_some(In::Ready { seq: Some(seq) })
        }
        // Continuations of a long welcome list: nothing to read in them.
        b"online" => c.lit(b",\"nicks\":[").map(|_| In::Other),
        b"ping" => c.lit(b"}").and_then(|_| c.end()).map(|_| In::Ping),
        b"pong" => c.lit(b"}").and_then(|_| c.end()).map(|_| In::Ack),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatproto::{encode, ErrorCode};

    fn payload(frame: &ServerFrame) -> Vec<u8> {
        encode(frame, 1 << 20).unwrap()[4..].to_vec()
    }

    fn msg(seq: u64, from: &str, to: &[&str], text: &str) -> ServerFrame {
        ServerFrame::msg(
            Some("lobby".into()),
            seq,
            from,
            to.iter().map(|s| s.to_string()).collect(),
            text,
            1_732_400_000_456,
            None,
        )
    }

    /// The fast path and serde agree, and the fast path is taken when it should be.
    fn check_msg(frame: ServerFrame, fast_expected: bool) {
        let ServerFrame::Msg {
            seq,
            ref from,
            ref to,
            ref text,
            ..
        } = frame
        else {
            unreachable!()
        };
        let p = payload(&frame);
        assert_eq!(
            scan_fast(&p).is_some(),
            fast_expected,
            "{}",
            String::from_utf8_lossy(&p)
        );
        let In::Msg(d) = scan(&p) else {
            panic!("not a msg: {}", String::from_utf8_lossy(&p))
        };
        assert_eq!(d.seq, Some(seq));
        assert_eq!(d.from.as_deref(), Some(from.as_str()));
        assert_eq!(d.to.to_vec(), *to);
        assert_eq!(&*d.text, text.as_bytes());
    }

    #[test]
    fn msgs_decode_the_same_fast_or_slow() {
        check_msg(msg(43, "alice", &[], "hello"), true);
        check_msg(msg(1, "a", &["bob"], ""), true);
        check_msg(msg(u64::MAX, "b0", &["c1", "Dd", "e!"], "3:4:5:xxxx"), true);
        check_msg(msg(7, "alice", &[], "caf\u{e9} \u{202e} \u{1F600}"), true);
        // Escapes force the serde path; the text must come out unescaped.
        check_msg(
            msg(8, "alice", &["bob"], "say \"hi\" \\ \u{1b}[31m\n"),
            false,
        );
    }

    #[test]
    fn presence_welcome_ping_error() {
        let p = payload(&ServerFrame::presence(
            Some("lobby".into()),
            42,
            "alice",
            PresenceStatus::Offline,
            5,
        ));
        assert_eq!(
            scan_fast(&p),
            Some(In::Presence {
                seq: 42,
                nick: "alice".into(),
                online: false
            })
        );
        let p = payload(&ServerFrame::welcome(
            "bob",
            41,
            vec!["a".into(), "bob".into()],
            None,
            None,
            None,
        ));
        assert_eq!(scan_fast(&p), Some(In::Ready { seq: Some(41) }));
        assert_eq!(scan(&payload(&ServerFrame::Ping)), In::Ping);
        assert!(scan_fast(&payload(&ServerFrame::Ping)).is_some());
        assert_eq!(
            scan(&payload(&ServerFrame::online(None, vec!["x".into()]))),
            In::Other
        );
        assert_eq!(scan(&payload(&ServerFrame::Pong)), In::Ack);
        let p = payload(&ServerFrame::error(
            ErrorCode::UnknownNick,
            "not online: zed",
        ));
        assert_eq!(
            scan(&p),
            In::Error {
                code: "unknown_nick".into(),
                message: "not online: zed".into()
            }
        );
    }

    #[test]
    fn another_member_order_still_decodes() {
        let p = br#"{"text":"hi","ts":1,"to":[],"from":"al","seq":9,"type":"msg","extra":true}"#;
        assert!(scan_fast(p).is_none());
        let In::Msg(d) = scan(p) else { panic!() };
        assert_eq!((d.seq, &*d.text), (Some(9), &b"hi"[..]));
    }

    #[test]
    fn truncated_or_garbage_payloads_never_panic() {
        let p = payload(&msg(43, "alice", &["bob"], "hello"));
        for cut in 0..p.len() {
            let r = scan(&p[..cut]);
            assert!(matches!(r, In::Error { .. }), "{cut}: {r:?}");
        }
        for junk in [
            &b""[..],
            b"{",
            b"[]",
            b"\xff\xfe",
            b"{\"type\":\"msg\",\"seq\":99999999999999999999999}",
        ] {
            assert!(matches!(scan(junk), In::Error { .. }));
        }
    }

    #[test]
    fn decode_frames_arriving_one_byte_at_a_time() {
        let mut wire = Vec::new();
        for i in 0..5 {
            wire.extend_from_slice(&encode(&msg(i, "x", &[], &format!("m{i}")), 1024).unwrap());
        }
        wire.extend_from_slice(&encode(&ServerFrame::Ping, 1024).unwrap());
        let mut w = ChatWire::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in &wire {
            buf.extend_from_slice(&[*b]);
            w.decode(&mut buf, &mut |ev| {
                got.push(match ev {
                    In::Msg(d) => String::from_utf8(d.text.into_owned()).unwrap(),
                    other => format!("{other:?}"),
                })
            })
            .unwrap();
        }
        assert_eq!(got, ["m0", "m1", "m2", "m3", "m4", "Ping"]);
        assert!(buf.is_empty());
    }

    #[test]
    fn headers_are_checked_like_chatproto_checks_them() {
        let mut w = ChatWire::new();
        for bad in [&b"\xff\xff\xff\xff{"[..], b"\0\0\0\0", b"\x01\0\0\x01"] {
            let mut buf = BytesMut::from(bad);
            assert!(w.decode(&mut buf, &mut |_| {}).is_err(), "{bad:?}");
        }
        // Exactly the limit is fine (and waits for the body).
        let mut buf = BytesMut::from(&(MAX_FRAME as u32).to_be_bytes()[..]);
        assert!(w.decode(&mut buf, &mut |_| {}).is_ok());
        assert_eq!(buf.len(), 4);
    }

    #[test]
    fn many_frames_in_one_buffer_and_a_partial_one_left_over() {
        let mut wire = Vec::new();
        for i in 0..50 {
            wire.extend_from_slice(&encode(&msg(i, "x", &[], "t"), 1024).unwrap());
        }
        let tail = encode(&ServerFrame::Ping, 1024).unwrap();
        wire.extend_from_slice(&tail[..6]);
        let mut buf = BytesMut::from(&wire[..]);
        let mut n = 0;
        ChatWire::new()
            .decode(&mut buf, &mut |ev| n += matches!(ev, In::Msg(_)) as usize)
            .unwrap();
        assert_eq!(n, 50);
        assert_eq!(&buf[..], &tail[..6]);
    }

    #[test]
    fn hello_publish_and_pong_are_valid_client_frames() {
        let mut w = ChatWire::new();
        let mut out = Vec::new();
        w.hello("b1", &mut out);
        w.publish(Dest::Room, "hi", &mut out);
        w.publish(Dest::Member("b2"), "yo", &mut out);
        w.pong(&mut out);
        let mut buf = BytesMut::from(&out[..]);
        let mut dec = chatproto::FrameDecoder::default();
        let mut frames = Vec::new();
        while let chatproto::Decoded::Frame(f) = dec.decode::<ClientFrame>(&mut buf) {
            frames.push(f);
        }
        assert!(buf.is_empty(), "every frame decodes");
        assert_eq!(
            frames,
            [
                ClientFrame::join("b1"),
                ClientFrame::msg(vec![], "hi"),
                ClientFrame::msg(vec!["b2".into()], "yo"),
                ClientFrame::Pong,
            ]
        );
    }

    /// Over a WebSocket: the same payloads, each one masked text frame
    /// without the length prefix; and server messages read the same.
    #[test]
    fn over_a_websocket_the_payloads_are_the_same_without_the_prefix() {
        use std::io::Cursor;
        use tungstenite::protocol::frame::coding::{Data, OpCode};
        use tungstenite::protocol::frame::{Frame, FrameHeader};

        let mut plain = ChatWire::new();
        let mut ws = ChatWire::websocket(99);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for w in [&mut plain, &mut ws] {
            let out = if w.ws.is_none() { &mut a } else { &mut b };
            w.hello("b1", out);
            w.publish(Dest::Member("b2"), "yo", out);
            w.pong(out);
            w.ping(out);
        }
        let mut payloads = Vec::new();
        let mut cur = Cursor::new(&b[..]);
        while (cur.position() as usize) < b.len() {
            let (h, len) = FrameHeader::parse(&mut cur).unwrap().unwrap();
            assert!(h.is_final);
            assert_eq!(h.opcode, OpCode::Data(Data::Text));
            let at = cur.position() as usize;
            let mut p = b[at..at + len as usize].to_vec();
            super::super::ws::apply_mask(&mut p, h.mask.unwrap());
            payloads.push(p);
            cur.set_position((at + len as usize) as u64);
        }
        let mut prefixed = Vec::new();
        for p in &payloads {
            prefixed.extend_from_slice(&(p.len() as u32).to_be_bytes());
            prefixed.extend_from_slice(p);
        }
        assert_eq!(prefixed, a, "the same frames, prefix for prefix");

        let mut wire = Vec::new();
        for i in 0..3 {
            let p = payload(&msg(i, "x", &[], &format!("m{i}")));
            Frame::message(p, OpCode::Data(Data::Text), true)
                .format(&mut wire)
                .unwrap();
        }
        let mut buf = BytesMut::from(&wire[..]);
        let mut got = Vec::new();
        ws.decode(&mut buf, &mut |ev| match ev {
            In::Msg(d) => got.push(String::from_utf8(d.text.into_owned()).unwrap()),
            other => panic!("{other:?}"),
        })
        .unwrap();
        assert_eq!(got, ["m0", "m1", "m2"]);
        assert!(buf.is_empty());
    }
}
