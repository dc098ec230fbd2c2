//! WebSocket (RFC 6455) framing for chat over `GET /ws`: the client half
//! of the opening handshake, and frames written masked and read unmasked.
//!
//! Written here rather than taken from tungstenite's `WebSocketStream`
//! because the load generator must not cost more per delivery over a
//! WebSocket than over TCP, or the comparison measures the generator: a
//! text frame is walked in place in the receive buffer, like a
//! length-prefixed frame (a 2-, 4- or 10-byte header instead of 4 bytes),
//! and its payload goes straight to the chat scanner, with no `Message`, no
//! allocation and no copy. Only what a benchmark never sees on the fast
//! path is slower: a message split over several frames is put together in a
//! buffer, and pings and closes are answered through a queue the
//! connection writes before its next bytes. The few things that are easy
//! to get wrong by hand come from tungstenite (already in the tree through
//! axum): the handshake's key and its accept hash; and the tests check
//! these frames against tungstenite's own encoder and parser both ways.
//!
//! A server's frame must not be masked, use no reserved bit (chatserver
//! negotiates no extension) and no reserved opcode; control frames are
//! final and at most 125 bytes. Anything else breaks the connection, as
//! RFC 6455 asks of a client.

use bytes::{Buf, BytesMut};

use super::WireError;

/// The opcodes of RFC 6455, section 5.2.
pub const CONTINUATION: u8 = 0x0;
/// A text message (chat's JSON payloads).
pub const TEXT: u8 = 0x1;
/// A binary message (chatserver answers one with `bad_frame`).
pub const BINARY: u8 = 0x2;
/// The closing handshake.
pub const CLOSE: u8 = 0x8;
/// A ping, to be answered with a pong carrying the same payload.
pub const PING: u8 = 0x9;
/// A pong.
pub const PONG: u8 = 0xA;

/// A frame's header, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The last frame of its message.
    pub fin: bool,
    /// What it carries.
    pub opcode: u8,
    /// Bytes of header (2, 4 or 10 for a server's unmasked frame).
    pub header_len: usize,
    /// Bytes of payload that follow.
    pub payload_len: usize,
}

/// Read the header at the start of `b`: `Ok(None)` until all of it has
/// arrived. `max` bounds the payload (a broken header must not make us
/// buffer gigabytes).
#[inline]
pub fn parse_header(b: &[u8], max: usize) -> Result<Option<Header>, WireError> {
    let (Some(&b0), Some(&b1)) = (b.first(), b.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(WireError(format!(
            "the server set a reserved bit in a WebSocket frame ({b0:#04x}); no extension was negotiated"
        )));
    }
    if b1 & 0x80 != 0 {
        return Err(WireError(
            "the server masked a WebSocket frame (RFC 6455 5.1: it must not)".into(),
        ));
    }
    let (payload_len, header_len) = match b1 & 0x7f {
        126 => {
            let Some(l) = b.get(2..4) else {
                return Ok(None);
            };
            (u64::from(u16::from_be_bytes([l[0], l[1]])), 4)
        }
        127 => {
            let Some(l) = b.get(2..10) else {
                return Ok(None);
            };
            let mut v = [0u8; 8];
            v.copy_from_slice(l);
            (u64::from_be_bytes(v), 10)
        }
        n => (u64::from(n), 2),
    };
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0f;
    match opcode {
        CONTINUATION | TEXT | BINARY => {}
        CLOSE | PING | PONG => {
            if !fin || payload_len > 125 {
                return Err(WireError(format!(
                    "the server sent a control frame (opcode {opcode:#x}) that is fragmented or longer than 125 bytes"
                )));
            }
        }
        _ => {
            return Err(WireError(format!(
                "the server sent a WebSocket frame with the reserved opcode {opcode:#x}"
            )))
        }
    }
    if payload_len > max as u64 {
        return Err(WireError(format!(
            "the server sent a WebSocket frame of {payload_len} bytes (limit {max})"
        )));
    }
    Ok(Some(Header {
        fin,
        opcode,
        header_len,
        payload_len: payload_len as usize,
    }))
}

/// Append one final, masked frame to `out`: the header, the masking key,
/// then `payload` masked with it.
pub fn put_frame(opcode: u8, payload: &[u8], mask: [u8; 4], out: &mut Vec<u8>) {
    let len = payload.len();
    out.reserve(14 + len);
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask);
}

/// XOR `buf` with the masking key, repeated (RFC 6455 5.3); masking and
/// unmasking are the same.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = buf.chunks_exact_mut(4);
    for c in &mut chunks {
        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ word;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i];
    }
}

/// Masking keys for one connection. RFC 6455 asks for keys a page's
/// script cannot predict (against cache poisoning of proxies in between);
/// a benchmark on loopback has neither, and the server's cost of
/// unmasking is the same for any key, so a xorshift seeded per connection
/// does, and costs nothing.
#[derive(Debug, Clone)]
pub struct Masks(u32);

impl Masks {
    /// A generator; `seed` picks the sequence (0 is replaced).
    pub fn new(seed: u32) -> Self {
        Masks(if seed == 0 { 0x9E37_79B9 } else { seed })
    }

    /// The next key.
    pub fn next_key(&mut self) -> [u8; 4] {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x.to_ne_bytes()
    }
}

/// The client's WebSocket state: a message split over frames while it is
/// being put together, and control frames to write before anything else.
#[derive(Debug)]
pub struct WsFraming {
    masks: Masks,
    /// The payload so far of a fragmented text message.
    partial: Option<Vec<u8>>,
    /// Pongs and the close reply, masked and framed, for the connection to
    /// write next.
    control: Vec<u8>,
    /// The server closed the WebSocket (and we answered).
    closed: bool,
}

impl WsFraming {
    /// A fresh connection's state.
    pub fn new(seed: u32) -> Self {
        WsFraming {
            masks: Masks::new(seed),
            partial: None,
            control: Vec::new(),
            closed: false,
        }
    }

    /// Append one masked text frame carrying `payload`.
    pub fn put_text(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        put_frame(TEXT, payload, self.masks.next_key(), out);
    }

    /// Move the queued control frames (pongs, the close reply) to `out`.
    pub fn take_control(&mut self, out: &mut Vec<u8>) {
        if !self.control.is_empty() {
            out.append(&mut self.control);
        }
    }

    /// Whether the server closed the WebSocket.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The frame that starts our side of the closing handshake (1000:
    /// normal closure), appended to `out`.
    pub fn put_close(&mut self, out: &mut Vec<u8>) {
        put_frame(CLOSE, &1000u16.to_be_bytes(), self.masks.next_key(), out);
    }

    /// Consume every whole frame at the front of `buf`, calling `f` with
    /// the payload of each whole text message.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        max: usize,
        f: &mut dyn FnMut(&[u8]),
    ) -> Result<(), WireError> {
        let mut at = 0;
        let result = loop {
            let h = match parse_header(&buf[at..], max) {
                Ok(Some(h)) => h,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            let start = at + h.header_len;
            let Some(payload) = buf.get(start..start + h.payload_len) else {
                break Ok(());
            };
            at = start + h.payload_len;
            // The fast path: one whole text message in one frame.
            if h.opcode == TEXT && h.fin && self.partial.is_none() {
                f(payload);
                continue;
            }
            if let Err(e) = self.slow(h, payload, max, f) {
                break Err(e);
            }
        };
        buf.advance(at);
        result
    }

    fn slow(
        &mut self,
        h: Header,
        payload: &[u8],
        max: usize,
        f: &mut dyn FnMut(&[u8]),
    ) -> Result<(), WireError> {
        match h.opcode {
            TEXT if self.partial.is_some() => Err(WireError(
                "the server began a text message inside another (RFC 6455 5.4)".into(),
            )),
            TEXT => {
                // `fin` is false here: the first fragment.
                self.partial = Some(payload.to_vec());
                Ok(())
            }
            CONTINUATION => {
                let Some(p) = self.partial.as_mut() else {
                    return Err(WireError(
                        "the server sent a continuation frame with no message begun".into(),
                    ));
                };
                if p.len() + payload.len() > max {
                    return Err(WireError(format!(
                        "the server sent a fragmented WebSocket message over {max} bytes"
                    )));
                }
                p.extend_from_slice(payload);
                if h.fin {
                    let whole = self.partial.take().unwrap_or_default();
                    f(&whole);
                }
                Ok(())
            }
            BINARY => Err(WireError(
                "the server sent a binary WebSocket message; chat payloads are text".into(),
            )),
            PING => {
                put_frame(PONG, payload, self.masks.next_key(), &mut self.control);
                Ok(())
            }
            CLOSE => {
                if !self.closed {
                    self.closed = true;
                    // Echo its status code (RFC 6455 5.5.1), or none.
                    let code = payload.get(..2).unwrap_or(&[]);
                    put_frame(CLOSE, code, self.masks.next_key(), &mut self.control);
                }
                Ok(())
            }
            // Pongs answer pings we never send.
            _ => Ok(()),
        }
    }
}

/// The HTTP/1.1 request that opens a WebSocket on `/ws` of `host`, with
/// `key` as its `Sec-WebSocket-Key`. No `Origin`: not a browser, so the
/// server's same-origin check lets it in.
pub fn request(host: &str, key: &str) -> Vec<u8> {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// A new random `Sec-WebSocket-Key`.
pub fn new_key() -> String {
    tungstenite::handshake::client::generate_key()
}

/// Check the server's answer at the start of `b` to a request made with
/// `key`: `Ok(None)` until its head has arrived, then the head's length
/// (what follows are already frames).
pub fn check_response(b: &[u8], key: &str) -> Result<Option<usize>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    let len = match res.parse(b) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            return Err(format!(
                "the answer to the WebSocket upgrade is not HTTP: {e}"
            ))
        }
    };
    let header = |name: &str| {
        res.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
    };
    if res.code != Some(101) {
        let body = String::from_utf8_lossy(&b[len..]);
        return Err(format!(
            "the server answered the WebSocket upgrade with {} {}{}",
            res.code.unwrap_or(0),
            res.reason.unwrap_or(""),
            if body.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", body.trim())
            }
        ));
    }
    let upgrade = header("upgrade").unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(format!(
            "101 without `Upgrade: websocket` (got {upgrade:?})"
        ));
    }
    let connection = header("connection").unwrap_or_default();
    if !connection
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    {
        return Err(format!(
            "101 without `Connection: Upgrade` (got {connection:?})"
        ));
    }
    let want = tungstenite::handshake::derive_accept_key(key.as_bytes());
    match header("sec-websocket-accept") {
        Some(got) if got == want => Ok(Some(len)),
        got => Err(format!(
            "wrong Sec-WebSocket-Accept: {got:?}, expected {want:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
    use tungstenite::protocol::frame::{Frame, FrameHeader};

    /// A server's frame as tungstenite writes it.
    fn server_frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let frame = match opcode {
            OpCode::Control(Control::Ping) => Frame::ping(payload.to_vec()),
            OpCode::Control(Control::Pong) => Frame::pong(payload.to_vec()),
            data => Frame::message(payload.to_vec(), data, fin),
        };
        let mut out = Vec::new();
        frame.format(&mut out).unwrap();
        out
    }

    fn text(payload: &[u8]) -> Vec<u8> {
        server_frame(OpCode::Data(Data::Text), true, payload)
    }

    fn decode_all(w: &mut WsFraming, buf: &mut BytesMut) -> Result<Vec<Vec<u8>>, WireError> {
        let mut got = Vec::new();
        w.decode(buf, 1 << 20, &mut |p| got.push(p.to_vec()))?;
        Ok(got)
    }

    const SIZES: [usize; 9] = [0, 1, 125, 126, 127, 1000, 65535, 65536, 70000];

    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| b'a' + (i % 26) as u8).collect()
    }

    #[test]
    fn our_frames_parse_in_tungstenite_as_masked_text_with_the_payload() {
        let mut w = WsFraming::new(12345);
        for n in SIZES {
            let p = payload(n);
            let mut out = Vec::new();
            w.put_text(&p, &mut out);
            let mut cur = Cursor::new(&out[..]);
            let (h, len) = FrameHeader::parse(&mut cur).unwrap().unwrap();
            assert!(h.is_final && !h.rsv1 && !h.rsv2 && !h.rsv3, "{n}");
            assert_eq!(h.opcode, OpCode::Data(Data::Text));
            let mask = h.mask.expect("a client's frame is masked");
            assert_eq!(len, n as u64);
            let at = cur.position() as usize;
            assert_eq!(at + n, out.len(), "{n}: nothing after the payload");
            let mut body = out[at..].to_vec();
            // Unmask with a plain loop, not ours.
            for (i, b) in body.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
            assert_eq!(body, p, "{n}");
        }
    }

    #[test]
    fn masks_differ_from_frame_to_frame_and_never_are_zero() {
        let mut m = Masks::new(0);
        let keys: Vec<_> = (0..1000).map(|_| m.next_key()).collect();
        assert!(keys.iter().all(|k| *k != [0; 4]));
        let mut uniq = keys.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), keys.len());
    }

    #[test]
    fn apply_mask_matches_the_rfc_loop_at_every_length_and_alignment() {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let data = payload(40);
        for start in 0..4 {
            for len in 0..=36 {
                let mut ours = data[start..start + len].to_vec();
                apply_mask(&mut ours, mask);
                let plain: Vec<u8> = data[start..start + len]
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b ^ mask[i % 4])
                    .collect();
                assert_eq!(ours, plain);
            }
        }
        // RFC 6455 5.7: "Hello" masked with 37 fa 21 3d.
        let mut hello = b"Hello".to_vec();
        apply_mask(&mut hello, mask);
        assert_eq!(hello, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn tungstenites_server_frames_decode_at_every_size() {
        let mut wire = Vec::new();
        for n in SIZES {
            wire.extend_from_slice(&text(&payload(n)));
        }
        let mut buf = BytesMut::from(&wire[..]);
        let got = decode_all(&mut WsFraming::new(1), &mut buf).unwrap();
        assert_eq!(got, SIZES.map(payload).to_vec());
        assert!(buf.is_empty());
    }

    #[test]
    fn frames_arriving_one_byte_at_a_time() {
        let mut wire = Vec::new();
        for n in [0, 5, 126, 300] {
            wire.extend_from_slice(&text(&payload(n)));
        }
        wire.extend_from_slice(&server_frame(OpCode::Control(Control::Ping), true, b"p"));
        wire.extend_from_slice(&text(b"last"));
        let mut w = WsFraming::new(1);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in &wire {
            buf.extend_from_slice(&[*b]);
            got.extend(decode_all(&mut w, &mut buf).unwrap());
        }
        assert_eq!(
            got,
            vec![
                payload(0),
                payload(5),
                payload(126),
                payload(300),
                b"last".to_vec()
            ]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn a_fragmented_message_with_a_ping_between_fragments() {
        let mut wire = server_frame(OpCode::Data(Data::Text), false, b"{\"type\":");
        wire.extend(server_frame(OpCode::Control(Control::Ping), true, b"hb"));
        wire.extend(server_frame(OpCode::Data(Data::Continue), false, b"\"pi"));
        wire.extend(server_frame(OpCode::Data(Data::Continue), true, b"ng\"}"));
        wire.extend(text(b"after"));
        let mut w = WsFraming::new(7);
        let mut buf = BytesMut::from(&wire[..]);
        let got = decode_all(&mut w, &mut buf).unwrap();
        assert_eq!(
            got,
            vec![b"{\"type\":\"ping\"}".to_vec(), b"after".to_vec()]
        );
        // The ping is answered with a masked pong carrying its payload.
        let mut out = Vec::new();
        w.take_control(&mut out);
        let mut cur = Cursor::new(&out[..]);
        let (h, len) = FrameHeader::parse(&mut cur).unwrap().unwrap();
        assert_eq!(h.opcode, OpCode::Control(Control::Pong));
        assert_eq!(len, 2);
        let mut body = out[cur.position() as usize..].to_vec();
        apply_mask(&mut body, h.mask.unwrap());
        assert_eq!(body, b"hb");
        out.clear();
        w.take_control(&mut out);
        assert!(out.is_empty(), "taken once");
    }

    #[test]
    fn a_close_is_answered_once_with_its_code() {
        let mut close = Vec::new();
        Frame::close(Some(tungstenite::protocol::CloseFrame {
            code: 1000u16.into(),
            reason: "bye".into(),
        }))
        .format(&mut close)
        .unwrap();
        let mut w = WsFraming::new(3);
        let mut buf = BytesMut::from(&close[..]);
        buf.extend_from_slice(&close);
        assert!(decode_all(&mut w, &mut buf).unwrap().is_empty());
        assert!(w.is_closed());
        let mut out = Vec::new();
        w.take_control(&mut out);
        let mut cur = Cursor::new(&out[..]);
        let (h, len) = FrameHeader::parse(&mut cur).unwrap().unwrap();
        assert_eq!((h.opcode, len), (OpCode::Control(Control::Close), 2));
        assert_eq!(out.len(), cur.position() as usize + 2, "one reply only");
    }

    #[test]
    fn what_a_client_must_refuse() {
        let mut masked = Vec::new();
        let mut f = Frame::message(b"hi".to_vec(), OpCode::Data(Data::Text), true);
        f.header_mut().mask = Some([1, 2, 3, 4]);
        f.format(&mut masked).unwrap();
        let mut rsv = text(b"hi");
        rsv[0] |= 0x40;
        let mut reserved_op = text(b"hi");
        reserved_op[0] = 0x83;
        let mut long_ping = server_frame(OpCode::Control(Control::Ping), true, &[0; 126]);
        long_ping.truncate(4);
        let binary = server_frame(OpCode::Data(Data::Binary), true, b"hi");
        let orphan = server_frame(OpCode::Data(Data::Continue), true, b"hi");
        let mut nested = server_frame(OpCode::Data(Data::Text), false, b"a");
        nested.extend(text(b"b"));
        for (why, bad) in [
            ("masked", masked),
            ("rsv1", rsv),
            ("opcode 3", reserved_op),
            ("ping of 126", long_ping),
            ("binary", binary),
            ("orphan continuation", orphan),
            ("text inside text", nested),
        ] {
            let mut buf = BytesMut::from(&bad[..]);
            assert!(
                decode_all(&mut WsFraming::new(1), &mut buf).is_err(),
                "{why}"
            );
        }
        // Over the limit, from the header alone.
        let mut head = BytesMut::from(&[0x81u8, 127, 0, 0, 0, 1, 0, 0, 0, 0][..]);
        assert!(WsFraming::new(1)
            .decode(&mut head, 1 << 20, &mut |_| {})
            .is_err());
    }

    #[test]
    fn the_handshake_request_and_answers() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let req = String::from_utf8(request("127.0.0.1:7878", key)).unwrap();
        assert!(req.starts_with("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:7878\r\n"));
        assert!(req.contains("\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
        assert!(req.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(!req.to_ascii_lowercase().contains("origin"));
        assert!(req.ends_with("\r\n\r\n"));
        // RFC 6455 1.3's example.
        let ok = "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\
                  connection: upgrade\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        let mut with_frame = ok.as_bytes().to_vec();
        with_frame.extend(text(b"x"));
        assert_eq!(check_response(&with_frame, key), Ok(Some(ok.len())));
        for cut in 0..ok.len() {
            assert_eq!(
                check_response(&ok.as_bytes()[..cut], key),
                Ok(None),
                "{cut}"
            );
        }
        let wrong = ok.replace("s3pP", "AAAA");
        assert!(check_response(wrong.as_bytes(), key).is_err());
        let refused = "HTTP/1.1 403 Forbidden\r\ncontent-length: 10\r\n\r\nforbidden\n";
        let e = check_response(refused.as_bytes(), key).unwrap_err();
        assert!(e.contains("403") && e.contains("forbidden"), "{e}");
        // A fresh key each time, which the server's accept must match.
        let (a, b) = (new_key(), new_key());
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
    }
}
