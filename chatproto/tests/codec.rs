//! The decoder fed the way bytes really arrive, and the encoder's limit.

use bytes::{BufMut, BytesMut};
use chatproto::testkit::Sim;
use chatproto::{
    encode, encode_into, ClientFrame, Decoded, EncodeError, ErrorCode, FrameDecoder, FramingError,
    Limits, PayloadError, PresenceStatus, RoomInfo, ServerConfig, ServerFrame,
    DEFAULT_MAX_FRAME_BYTES, HEADER_LEN, MIN_MAX_FRAME_BYTES,
};

/// A few frames of every client kind, v1 and v2, with text that needs
/// escaping.
fn sample() -> Vec<ClientFrame> {
    vec![
        ClientFrame::join("alice"),
        ClientFrame::join_v2("alice", vec!["lobby".into(), "rust".into()], None),
        ClientFrame::join_v2("alice", vec![], Some("0123456789abcdef".into())),
        ClientFrame::msg(vec![], "hello everyone"),
        ClientFrame::msg(
            vec!["bob".into(), "carol".into()],
            "tab\t\"quote\" é ✓ \u{1b}[2J",
        ),
        ClientFrame::msg_in(
            "rust",
            vec!["bob".into()],
            "in a room",
            Some("m-1 ✓".into()),
        ),
        ClientFrame::enter("rust", None),
        ClientFrame::enter("ops", Some((41, "e\"poch".into()))),
        ClientFrame::part("rust"),
        ClientFrame::history("rust", Some(42), Some(10)),
        ClientFrame::history("ops", None, None),
        ClientFrame::Rooms,
        ClientFrame::Ping,
        ClientFrame::Pong,
    ]
}

fn wire(frames: &[ClientFrame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        out.extend_from_slice(&encode(f, DEFAULT_MAX_FRAME_BYTES).unwrap());
    }
    out
}

/// Decode everything `buf` holds; panics on a framing or payload error.
fn drain(dec: &mut FrameDecoder, buf: &mut BytesMut) -> Vec<ClientFrame> {
    let mut out = Vec::new();
    loop {
        match dec.decode::<ClientFrame>(buf) {
            Decoded::Frame(f) => out.push(f),
            Decoded::Incomplete => break,
            other => panic!("{other:?}"),
        }
    }
    out
}

/// Frame `payload` with its length header.
fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

#[test]
fn one_byte_at_a_time() {
    let frames = sample();
    let bytes = wire(&frames);
    let mut dec = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let mut ends = Vec::new();
    for (i, b) in bytes.iter().enumerate() {
        buf.put_u8(*b);
        if let Decoded::Frame(f) = dec.decode::<ClientFrame>(&mut buf) {
            got.push(f);
            ends.push(i + 1);
            assert!(buf.is_empty());
        }
    }
    assert_eq!(got, frames);
    // A frame came out exactly when its last byte arrived, never earlier.
    let mut end = 0;
    let expected: Vec<usize> = frames
        .iter()
        .map(|f| {
            end += encode(f, DEFAULT_MAX_FRAME_BYTES).unwrap().len();
            end
        })
        .collect();
    assert_eq!(ends, expected);
    assert_eq!(dec.decode::<ClientFrame>(&mut buf), Decoded::Incomplete);
}

#[test]
fn split_across_two_reads_at_every_offset() {
    let frames = sample();
    let bytes = wire(&frames);
    for cut in 0..=bytes.len() {
        let mut dec = FrameDecoder::default();
        let mut buf = BytesMut::from(&bytes[..cut]);
        let mut got = drain(&mut dec, &mut buf);
        buf.extend_from_slice(&bytes[cut..]);
        got.extend(drain(&mut dec, &mut buf));
        assert_eq!(got, frames, "cut at {cut}");
        assert!(buf.is_empty());
        assert!(!dec.is_mid_frame(&buf));
    }
}

#[test]
fn is_mid_frame_tracks_a_partial_frame() {
    let bytes = wire(&[ClientFrame::Ping]);
    let mut dec = FrameDecoder::default();
    let mut buf = BytesMut::new();
    assert!(!dec.is_mid_frame(&buf));
    buf.extend_from_slice(&bytes[..2]);
    assert_eq!(dec.decode::<ClientFrame>(&mut buf), Decoded::Incomplete);
    assert_eq!(buf.len(), 2, "a partial header stays in the buffer");
    assert!(dec.is_mid_frame(&buf));
    buf.extend_from_slice(&bytes[2..HEADER_LEN + 1]);
    assert_eq!(dec.decode::<ClientFrame>(&mut buf), Decoded::Incomplete);
    assert!(dec.is_mid_frame(&buf));
    buf.extend_from_slice(&bytes[HEADER_LEN + 1..]);
    assert_eq!(dec.decode(&mut buf), Decoded::Frame(ClientFrame::Ping));
    assert!(!dec.is_mid_frame(&buf));
}

#[test]
fn fifty_frames_in_one_buffer() {
    let frames: Vec<ClientFrame> = (0..50)
        .map(|i| {
            let to = if i % 3 == 0 {
                vec![]
            } else {
                vec![format!("n{i}")]
            };
            ClientFrame::msg(to, format!("message number {i}"))
        })
        .collect();
    let mut buf = BytesMut::from(&wire(&frames)[..]);
    let mut dec = FrameDecoder::default();
    assert_eq!(drain(&mut dec, &mut buf), frames);
    assert!(buf.is_empty());
}

/// A `msg` frame whose payload is exactly `len` bytes.
fn msg_of_len(len: usize) -> Vec<u8> {
    let head = br#"{"type":"msg","text":""#;
    let mut payload = head.to_vec();
    payload.resize(len - 2, b'x');
    payload.extend_from_slice(b"\"}");
    assert_eq!(payload.len(), len);
    framed(&payload)
}

#[test]
fn payload_of_exactly_max_is_accepted() {
    for max in [MIN_MAX_FRAME_BYTES, DEFAULT_MAX_FRAME_BYTES] {
        let mut buf = BytesMut::from(&msg_of_len(max)[..]);
        let mut dec = FrameDecoder::new(max);
        match dec.decode::<ClientFrame>(&mut buf) {
            Decoded::Frame(ClientFrame::Msg { text, .. }) => assert_eq!(text.len(), max - 24),
            other => panic!("max {max}: {other:?}"),
        }
        assert!(buf.is_empty());
    }
}

#[test]
fn max_plus_one_is_rejected_from_the_header_alone() {
    for max in [MIN_MAX_FRAME_BYTES, 5000, DEFAULT_MAX_FRAME_BYTES] {
        let frame = msg_of_len(max + 1);
        let mut buf = BytesMut::with_capacity(16);
        buf.extend_from_slice(&frame[..HEADER_LEN]);
        let cap = buf.capacity();
        let mut dec = FrameDecoder::new(max);
        let Decoded::Broken(err) = dec.decode::<ClientFrame>(&mut buf) else {
            panic!("max {max}: the header alone is refused");
        };
        assert_eq!(err, FramingError::too_large(max as u64 + 1, max));
        assert_eq!(err.code(), ErrorCode::FrameTooLarge);
        assert!(err.code().is_fatal());
        assert!(err.to_string().contains(&format!("{}", max + 1)), "{err}");
        assert_eq!(buf.capacity(), cap, "nothing reserved for the body");
        // The body arriving later changes nothing: the stream cannot resync.
        buf.extend_from_slice(&frame[HEADER_LEN..]);
        assert_eq!(dec.decode::<ClientFrame>(&mut buf), Decoded::Broken(err));
        let mut fresh = BytesMut::from(&wire(&[ClientFrame::Ping])[..]);
        assert_eq!(dec.decode::<ClientFrame>(&mut fresh), Decoded::Broken(err));
    }
}

/// JSON sent without its length header (as from `nc`): the refusal says
/// what the four bytes it read as a length were.
#[test]
fn json_without_a_header_is_told_so() {
    let mut buf = BytesMut::from(&br#"{"type":"join","nick":"alice"}"#[..]);
    let mut dec = FrameDecoder::default();
    let err = dec.decode_payload(&mut buf).unwrap_err();
    assert_eq!(err.code(), ErrorCode::FrameTooLarge);
    assert_eq!(
        err.to_string(),
        "frame of 2065855609 bytes exceeds the limit of 65536 bytes (its length header \
         reads as text, '{\"ty': each frame begins with its payload's length in 4 bytes, \
         big-endian, before the JSON); closing"
    );
    // A length over the limit that is not such text: as before.
    let e = FramingError::too_large(0x7b22_0001, 65536).to_string();
    assert_eq!(
        e,
        "frame of 2065825793 bytes exceeds the limit of 65536 bytes; closing"
    );
    let e = FramingError::too_large(u32::MAX as u64, 65536).to_string();
    assert!(!e.contains("text"), "{e}");
}

#[test]
fn header_of_all_ones_allocates_nothing() {
    let mut buf = BytesMut::with_capacity(8);
    buf.extend_from_slice(&[0xFF; 4]);
    let mut dec = FrameDecoder::default();
    let err = dec.decode_payload(&mut buf).unwrap_err();
    assert_eq!(
        err,
        FramingError::too_large(u32::MAX as u64, DEFAULT_MAX_FRAME_BYTES)
    );
    assert!(buf.capacity() <= 64, "capacity {}", buf.capacity());
    assert_eq!(dec.decode_payload(&mut buf), Err(err), "sticky");
}

#[test]
fn a_checked_header_reserves_at_most_its_body() {
    let mut buf = BytesMut::new();
    buf.put_u32(60_000);
    let mut dec = FrameDecoder::default();
    assert_eq!(dec.decode_payload(&mut buf), Ok(None));
    assert!(buf.capacity() >= 60_000 && buf.capacity() < 2 * 60_000 + 64);
}

#[test]
fn length_zero_is_fatal_and_sticky() {
    let mut buf = BytesMut::from(&[0u8, 0, 0, 0][..]);
    buf.extend_from_slice(&wire(&[ClientFrame::Ping]));
    let mut dec = FrameDecoder::default();
    assert_eq!(
        dec.decode::<ClientFrame>(&mut buf),
        Decoded::Broken(FramingError::Empty)
    );
    assert_eq!(FramingError::Empty.code(), ErrorCode::EmptyFrame);
    assert!(ErrorCode::EmptyFrame.is_fatal());
    // A valid frame behind it is never decoded.
    for _ in 0..3 {
        assert_eq!(
            dec.decode::<ClientFrame>(&mut buf),
            Decoded::Broken(FramingError::Empty)
        );
    }
    // Not even from a fresh buffer: the decoder itself remembers.
    let mut fresh = BytesMut::from(&wire(&[ClientFrame::Ping])[..]);
    assert_eq!(
        dec.decode::<ClientFrame>(&mut fresh),
        Decoded::Broken(FramingError::Empty)
    );
}

#[test]
fn a_partial_header_is_not_an_error() {
    for n in 0..HEADER_LEN {
        let mut buf = BytesMut::from(&[0u8; 3][..n]);
        assert_eq!(FrameDecoder::default().decode_payload(&mut buf), Ok(None));
        assert_eq!(buf.len(), n);
    }
}

#[test]
fn garbage_is_an_error_never_a_panic() {
    // An HTTP request: "GET " read as a length is far over the limit.
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..]);
    let err = FrameDecoder::default()
        .decode_payload(&mut buf)
        .unwrap_err();
    assert_eq!(
        err,
        FramingError::too_large(u32::from_be_bytes(*b"GET ") as u64, DEFAULT_MAX_FRAME_BYTES)
    );
    // Seeded corruption of a valid stream: each flipped byte may break a
    // payload (bad frame, carry on) or a header (close); never a panic.
    let clean = wire(&sample());
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut frames, mut bad, mut fatal) = (0, 0, 0);
    for _ in 0..500 {
        let mut data = clean.clone();
        for _ in 0..1 + next() % 3 {
            let at = next() as usize % data.len();
            data[at] = next() as u8;
        }
        let mut dec = FrameDecoder::default();
        let mut buf = BytesMut::new();
        'feed: for piece in data.chunks(1 + next() as usize % 40) {
            buf.extend_from_slice(piece);
            loop {
                match dec.decode::<ClientFrame>(&mut buf) {
                    Decoded::Incomplete => break,
                    Decoded::Frame(_) => frames += 1,
                    Decoded::Invalid(_) => bad += 1,
                    Decoded::Broken(_) => {
                        fatal += 1;
                        break 'feed;
                    }
                }
            }
        }
        assert!(buf.capacity() <= 2 * DEFAULT_MAX_FRAME_BYTES + 64);
        chatproto::testkit::check_decode(&data);
    }
    assert!(frames > 0 && bad > 0 && fatal > 0, "{frames} {bad} {fatal}");
}

/// Decode `payload` (framed), then a ping behind it, from one buffer.
fn bad_then_ping(payload: &[u8]) -> PayloadError {
    let mut buf = BytesMut::from(&framed(payload)[..]);
    buf.extend_from_slice(&wire(&[ClientFrame::Ping]));
    let mut dec = FrameDecoder::default();
    let err = match dec.decode::<ClientFrame>(&mut buf) {
        Decoded::Invalid(e) => e,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(payload)),
    };
    // Framing is still in sync: the next frame decodes.
    assert_eq!(dec.decode(&mut buf), Decoded::Frame(ClientFrame::Ping));
    err
}

#[test]
fn bad_payloads_say_what_was_wrong_and_the_decoder_carries_on() {
    assert!(matches!(
        bad_then_ping(b"{\"type\":\"join\",\"nick\":\"\xff\"}"),
        PayloadError::NotUtf8 {
            valid_up_to: 23,
            ..
        }
    ));
    for p in ["[\"join\",\"alice\"]", "42", "null", "\"ping\"", "true"] {
        let e = bad_then_ping(p.as_bytes());
        assert_eq!(e, PayloadError::NotObject, "{p}");
        assert!(e.to_string().contains("not a JSON object"));
    }
    let cases: [(&str, &[&str]); 11] = [
        ("hello", &["not JSON"]),
        ("{\"type\":\"ping\"", &["not JSON"]),
        ("{\"type\":\"ping\"} x", &["not JSON"]),
        ("   ", &["not JSON"]),
        (
            "{\"type\":\"shout\",\"text\":\"hi\"}",
            &["unknown variant", "shout"],
        ),
        ("{\"nick\":\"alice\"}", &["missing field", "type"]),
        ("{\"type\":\"join\"}", &["missing field", "nick"]),
        (
            "{\"type\":\"msg\",\"to\":[\"bob\"]}",
            &["missing field", "text"],
        ),
        (
            "{\"type\":\"join\",\"nick\":42}",
            &["invalid type", "42", "string"],
        ),
        (
            "{\"type\":\"msg\",\"to\":\"bob\",\"text\":\"x\"}",
            &["invalid type", "sequence"],
        ),
        ("{\"type\":7}", &["invalid type", "7"]),
    ];
    for (p, words) in cases {
        let e = bad_then_ping(p.as_bytes());
        if p.contains("shout") {
            assert!(
                matches!(&e, PayloadError::UnknownKind { kind, .. } if kind == "shout"),
                "{p}: {e:?}"
            );
        } else {
            assert!(matches!(e, PayloadError::Invalid(_)), "{p}: {e:?}");
        }
        let msg = e.to_string();
        for w in words {
            assert!(msg.contains(w), "{p}: {msg:?} lacks {w:?}");
        }
    }
}

#[test]
fn a_bad_payload_becomes_bad_frame_and_the_connection_stays_open() {
    let mut sim = Sim::new(ServerConfig::default(), 1_000);
    let a = sim.connect();
    sim.join(a, "alice");
    sim.take(a);
    sim.send_payload(a, b"{\"type\":\"join\",\"nick\":42}");
    match &sim.take(a)[..] {
        [ServerFrame::Error { code, message, .. }] => {
            assert_eq!(*code, ErrorCode::BadFrame);
            assert!(message.contains("invalid type"), "{message}");
            assert!(message.contains("member `nick`"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(sim.clients[a].open);
    sim.msg(a, &[], "still here");
    assert!(matches!(&sim.take(a)[..], [ServerFrame::Msg { text, .. }] if text == "still here"));
}

#[test]
fn unknown_members_are_ignored() {
    let cases = [
        (
            r#"{"type":"join","nick":"alice","colour":"red","v":{"x":[1,2]}}"#,
            ClientFrame::join("alice"),
        ),
        (
            r#"{"v":2,"type":"msg","text":"hi","to":["bob"],"reply_to":7}"#,
            ClientFrame::msg(vec!["bob".into()], "hi"),
        ),
        // Members another kind uses are ignored, whatever their type.
        (r#"{"type":"ping","id":7}"#, ClientFrame::Ping),
        (r#"{"type":"pong","id":null}"#, ClientFrame::Pong),
        (
            r#"{"type":"rooms","rooms":{"a":1},"room":false}"#,
            ClientFrame::Rooms,
        ),
        (
            r#"{"type":"part","room":"rust","since":"x","nick":[]}"#,
            ClientFrame::part("rust"),
        ),
        (
            r#"{"type":"join","nick":"alice","since":-1,"before":1.5,"text":7}"#,
            ClientFrame::join("alice"),
        ),
        // A null optional member is an absent one.
        (
            r#"{"type":"join","nick":"alice","rooms":null,"resume":null}"#,
            ClientFrame::join("alice"),
        ),
        (
            r#"{"type":"msg","room":null,"text":"hi","id":null}"#,
            ClientFrame::msg(vec![], "hi"),
        ),
    ];
    for (p, want) in cases {
        let mut buf = BytesMut::from(&framed(p.as_bytes())[..]);
        assert_eq!(
            FrameDecoder::default().decode(&mut buf),
            Decoded::Frame(want),
            "{p}"
        );
    }
    let mut buf = BytesMut::from(&framed(br#"{"type":"pong","extra":true}"#)[..]);
    assert_eq!(
        FrameDecoder::default().decode(&mut buf),
        Decoded::Frame(ServerFrame::Pong)
    );
}

#[test]
fn a_client_cannot_choose_from_or_seq() {
    let p = br#"{"type":"msg","from":"mallory","seq":999,"ts":1,"replay":true,"text":"hi"}"#;
    let mut buf = BytesMut::from(&framed(p)[..]);
    let decoded = FrameDecoder::default().decode::<ClientFrame>(&mut buf);
    assert_eq!(decoded, Decoded::Frame(ClientFrame::msg(vec![], "hi")));

    let mut sim = Sim::new(ServerConfig::default(), 5_000);
    let a = sim.connect();
    sim.join(a, "alice");
    sim.take(a);
    sim.send_payload(a, p);
    let got = sim.take(a);
    let want = ServerFrame::msg(Some("lobby".into()), 2, "alice", vec![], "hi", 5_000, None);
    assert_eq!(got, vec![want]);
}

#[test]
fn the_encoder_refuses_payloads_over_the_limit() {
    let frame = |n: usize| ClientFrame::msg(vec![], "x".repeat(n));
    // `{"type":"msg","text":""}` is 24 bytes.
    let max = 2000;
    let ok = encode(&frame(max - 24), max).unwrap();
    assert_eq!(ok.len(), HEADER_LEN + max);
    assert_eq!(&ok[..HEADER_LEN], &(max as u32).to_be_bytes());
    match encode(&frame(max - 23), max) {
        Err(EncodeError::TooLarge { len, max: m, .. }) => assert_eq!((len, m), (max + 1, max)),
        other => panic!("{other:?}"),
    }
    // On error the destination is left as it was.
    let mut dst = BytesMut::from(&b"keep"[..]);
    assert!(encode_into(&frame(max), &mut dst, max).is_err());
    assert_eq!(&dst[..], b"keep");
    encode_into(&ClientFrame::Ping, &mut dst, max).unwrap();
    assert_eq!(&dst[..4], b"keep");
    assert_eq!(&dst[4..], &encode(&ClientFrame::Ping, max).unwrap()[..]);
}

#[test]
fn limits_are_raised_to_the_minimum_and_lowered_to_what_a_header_says() {
    assert_eq!(FrameDecoder::new(10).max_frame_bytes(), MIN_MAX_FRAME_BYTES);
    // And above what a header can say, lowered to it, as `encode` does
    // (the decoder said `usize::MAX`, which no frame can reach).
    assert_eq!(
        FrameDecoder::new(usize::MAX).max_frame_bytes(),
        u32::MAX as usize
    );
    assert_eq!(
        FrameDecoder::default().max_frame_bytes(),
        DEFAULT_MAX_FRAME_BYTES
    );
    let text = "x".repeat(MIN_MAX_FRAME_BYTES - 24);
    let f = ClientFrame::msg(vec![], text);
    assert!(
        encode(&f, 10).is_ok(),
        "the encoder raises a tiny limit too"
    );
    let mut buf = BytesMut::from(&msg_of_len(MIN_MAX_FRAME_BYTES)[..]);
    assert!(matches!(
        FrameDecoder::new(1).decode::<ClientFrame>(&mut buf),
        Decoded::Frame(_)
    ));
}

/// A server's frame limit above what a length header can say is taken
/// as that most, and announced so.
#[test]
fn a_servers_frame_limit_is_at_most_what_a_header_says() {
    let mut config = chatproto::ServerConfig::default();
    config.max_frame_bytes = usize::MAX;
    let mut s = chatproto::Server::new(config, [0; 32]);
    let now = chatproto::Now::new(0, 0);
    let a = s.handle_connect(now);
    s.handle_frame(now, a, ClientFrame::join("alice"));
    let mut announced = None;
    while let Some(out) = s.poll() {
        if let chatproto::Output::Send {
            frame: ServerFrame::Welcome { limits, .. },
            ..
        } = out
        {
            announced = limits.map(|l| l.max_frame_bytes);
        }
    }
    assert_eq!(announced, Some(u64::from(u32::MAX)));
}

#[test]
fn encode_then_decode_round_trips_every_server_kind() {
    let msg = |room: Option<&str>, id: Option<&str>, replay: bool| {
        let frame = ServerFrame::msg(
            room.map(Into::into),
            u64::MAX,
            "alice",
            vec!["bob".into()],
            "\u{0}\u{7f}\u{2028}😀",
            0,
            id.map(Into::into),
        );
        if replay {
            frame.into_replay()
        } else {
            frame
        }
    };
    let frames = vec![
        // v1 shapes: every v2 member absent.
        ServerFrame::welcome(
            "alice",
            41,
            vec!["alice".into(), "bob".into()],
            None,
            None,
            None,
        ),
        ServerFrame::online(None, vec!["carol".into()]),
        ServerFrame::presence(None, 42, "alice", PresenceStatus::Offline, u64::MAX),
        msg(None, None, false),
        ServerFrame::error(ErrorCode::Timeout, "late"),
        // v2 shapes: every member present.
        ServerFrame::welcome(
            "alice",
            0,
            vec![],
            Some("00ff".into()),
            Some(true),
            Some(Limits::new(65_536, 64, 500, 200)),
        ),
        ServerFrame::online(Some("rust".into()), vec!["carol".into()]),
        ServerFrame::entered("rust", "e\"1", 7, 1, vec!["alice".into()], true),
        ServerFrame::presence(Some("rust".into()), 8, "alice", PresenceStatus::Online, 1),
        msg(Some("rust"), Some("m-1"), true),
        ServerFrame::history(
            "rust",
            vec![
                msg(Some("rust"), None, true),
                msg(Some("rust"), Some("m-2"), true),
            ],
            true,
        ),
        ServerFrame::history("ops", vec![], false),
        ServerFrame::rooms(vec![RoomInfo::new("lobby", 3), RoomInfo::new("rust", 1)]),
        ServerFrame::error_v2(
            ErrorCode::Duplicate,
            "again",
            Some("m-1".into()),
            Some("rust".into()),
            Some(9),
        ),
        ServerFrame::error(ErrorCode::NotInRoom, "enter first"),
        ServerFrame::Ping,
        ServerFrame::Pong,
        ServerFrame::notice("bye"),
    ];
    let mut buf = BytesMut::new();
    for f in &frames {
        encode_into(f, &mut buf, MIN_MAX_FRAME_BYTES).unwrap();
    }
    let mut dec = FrameDecoder::new(MIN_MAX_FRAME_BYTES);
    for f in &frames {
        assert_eq!(dec.decode(&mut buf), Decoded::Frame(f.clone()));
    }
    assert_eq!(dec.decode::<ServerFrame>(&mut buf), Decoded::Incomplete);
}

/// What a v1 server sent still decodes: every v2 member has a default.
#[test]
fn v1_server_frames_decode_with_the_v2_members_absent() {
    let cases = [
        (
            r#"{"type":"welcome","nick":"alice","seq":3,"online":["alice"]}"#,
            ServerFrame::welcome("alice", 3, vec!["alice".into()], None, None, None),
        ),
        (
            r#"{"type":"presence","seq":4,"nick":"bob","status":"online","ts":9}"#,
            ServerFrame::presence(None, 4, "bob", PresenceStatus::Online, 9),
        ),
        (
            r#"{"type":"msg","seq":5,"from":"bob","to":[],"text":"hi","ts":10}"#,
            ServerFrame::msg(None, 5, "bob", vec![], "hi", 10, None),
        ),
        (
            r#"{"type":"online","nicks":["carol"]}"#,
            ServerFrame::online(None, vec!["carol".into()]),
        ),
    ];
    for (p, want) in cases {
        let mut buf = BytesMut::from(&framed(p.as_bytes())[..]);
        assert_eq!(
            FrameDecoder::default().decode(&mut buf),
            Decoded::Frame(want.clone()),
            "{p}"
        );
        // And it encodes back to the same bytes: no v2 member appears when
        // it has nothing to say.
        let bytes = encode(&want, DEFAULT_MAX_FRAME_BYTES).unwrap();
        assert_eq!(&bytes[HEADER_LEN..], p.as_bytes());
    }
    // A code from a newer server is `unknown`, not a failed frame.
    let p = br#"{"type":"error","code":"a_code_from_the_future","message":"?"}"#;
    let mut buf = BytesMut::from(&framed(p)[..]);
    assert_eq!(
        FrameDecoder::default().decode(&mut buf),
        Decoded::Frame(ServerFrame::error(ErrorCode::Unknown, "?"))
    );
}

/// A server frame of a kind this version does not know (a later one's) is
/// told apart from a known kind gone wrong: a client ignores the first
/// (PROTOCOL.md section 2) and may say the second. The server's words for
/// either are the same as before.
#[test]
fn an_unknown_kind_is_told_from_a_known_kind_gone_wrong() {
    let decode = |p: &str| {
        let mut buf = BytesMut::from(&framed(p.as_bytes())[..]);
        match FrameDecoder::default().decode::<ServerFrame>(&mut buf) {
            Decoded::Invalid(e) => e,
            other => panic!("{p}: {other:?}"),
        }
    };
    let e = decode(r#"{"type":"motd","text":"welcome to the LAN party"}"#);
    match &e {
        PayloadError::UnknownKind { kind, message, .. } => {
            assert_eq!(kind, "motd");
            assert!(message.starts_with("not a valid frame: unknown variant `motd`"));
            assert_eq!(e.to_string(), *message);
        }
        other => panic!("{other:?}"),
    }
    // Known kinds with a member wrong, or no kind at all: not unknown.
    for p in [
        r#"{"type":"msg","from":"bob","seq":"one","ts":1,"text":"hi"}"#,
        r#"{"type":"presence","nick":"bob","status":"away","seq":1,"ts":1}"#,
        r#"{"type":42}"#,
        r#"{"text":"motd"}"#,
    ] {
        let mut buf = BytesMut::from(&framed(p.as_bytes())[..]);
        match FrameDecoder::default().decode::<ServerFrame>(&mut buf) {
            Decoded::Invalid(PayloadError::Invalid(_)) => {}
            other => panic!("{p}: {other:?}"),
        }
    }
}

/// A decoder replaced by another (one with the limit a `welcome` raised)
/// after it said `Incomplete` part way into a frame: the new one reads
/// that frame whole, as if nothing had changed.
#[test]
fn a_decoder_replaced_mid_frame_reads_the_frame_on() {
    let first = encode(&ClientFrame::Ping, 1_024).expect("encodes");
    let second = encode(&ClientFrame::msg(vec![], "hello after the swap"), 1_024).expect("encodes");
    for cut in 1..second.len() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&first);
        buf.extend_from_slice(&second[..cut]);
        let mut old = FrameDecoder::new(1_024);
        assert_eq!(
            old.decode::<ClientFrame>(&mut buf),
            Decoded::Frame(ClientFrame::Ping)
        );
        assert_eq!(old.decode::<ClientFrame>(&mut buf), Decoded::Incomplete);
        assert!(old.is_mid_frame(&buf), "cut at {cut}");
        let mut new = FrameDecoder::new(1 << 20);
        buf.extend_from_slice(&second[cut..]);
        assert_eq!(
            new.decode::<ClientFrame>(&mut buf),
            Decoded::Frame(ClientFrame::msg(vec![], "hello after the swap")),
            "cut at {cut}"
        );
        assert!(buf.is_empty());
    }
}

/// A header announcing a frame near a huge limit reserves a bounded
/// amount ahead, not the frame's whole length: the buffer grows as the
/// bytes arrive.
#[test]
fn a_huge_header_alone_reserves_little() {
    let mut dec = FrameDecoder::new(u32::MAX as usize);
    let mut buf = BytesMut::new();
    buf.put_u32(u32::MAX - 1);
    buf.put_slice(b"{\"type\":");
    assert_eq!(dec.decode::<ServerFrame>(&mut buf), Decoded::Incomplete);
    assert!(buf.capacity() <= 2 << 20, "reserved {}", buf.capacity());
}
