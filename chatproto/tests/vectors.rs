//! Every line of `vectors.txt` checked against the code: decoding gives the
//! frame, encoding gives the bytes, and the server frames come out of a real
//! server core. PROTOCOL.md must list the same lines, its example frames
//! must be canonical frames, and its table of error codes the crate's.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};
use chatproto::testkit::Sim;
use chatproto::{
    encode, ClientFrame, ClientId, Decoded, ErrorCode, FrameDecoder, FramingError, Kick, Now,
    Output, PayloadError, RoomInfo, Server, ServerConfig, ServerFrame, DEFAULT_MAX_FRAME_BYTES,
};

const FILE: &str = include_str!("vectors.txt");
const T: u64 = 1_732_400_000_000;

#[derive(Debug)]
struct Vector {
    line: usize,
    kind: &'static str,
    name: &'static str,
    bytes: Vec<u8>,
    expect: &'static str,
    text: &'static str,
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(
        s.len().is_multiple_of(2) && s.bytes().all(|b| b"0123456789abcdef".contains(&b)),
        "{s}"
    );
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn vectors() -> Vec<Vector> {
    FILE.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(n, text)| {
            let f: Vec<&str> = text.split('\t').collect();
            assert_eq!(f.len(), 4, "line {}: {text:?}", n + 1);
            Vector {
                line: n + 1,
                kind: f[0],
                name: f[1],
                bytes: unhex(f[2]),
                expect: f[3],
                text,
            }
        })
        .collect()
}

fn find(vs: &[Vector], kind: &str, name: &str) -> Vec<u8> {
    let v = vs.iter().find(|v| v.kind == kind && v.name == name);
    v.unwrap_or_else(|| panic!("no {kind} vector {name}"))
        .bytes
        .clone()
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, PayloadError> {
    let mut buf = BytesMut::from(bytes);
    let out = match FrameDecoder::default().decode(&mut buf) {
        Decoded::Frame(frame) => Ok(frame),
        Decoded::Invalid(why) => Err(why),
        Decoded::Incomplete => panic!("not a whole frame"),
        Decoded::Broken(why) => panic!("framing: {why}"),
    };
    assert!(buf.is_empty(), "one frame per vector");
    out
}

#[test]
fn the_file_is_well_formed_and_covers_every_kind() {
    let vs = vectors();
    let mut seen = BTreeSet::new();
    let mut types = BTreeSet::new();
    for v in &vs {
        assert!(
            seen.insert((v.kind, v.name)),
            "line {}: duplicate {}",
            v.line,
            v.name
        );
        let kinds = [
            "c2s",
            "s2c",
            "c2s-accept",
            "s2c-accept",
            "c2s-bad",
            "c2s-fatal",
        ];
        assert!(kinds.contains(&v.kind), "line {}: kind {}", v.line, v.kind);
        if v.kind == "c2s-fatal" {
            assert_eq!(v.bytes.len(), 4, "line {}: a header alone", v.line);
            continue;
        }
        let len = u32::from_be_bytes(v.bytes[..4].try_into().unwrap()) as usize;
        assert_eq!(len, v.bytes.len() - 4, "line {}: length header", v.line);
        if v.kind == "c2s" || v.kind == "s2c" {
            assert_eq!(
                &v.bytes[4..],
                v.expect.as_bytes(),
                "line {}: payload column",
                v.line
            );
            let value: serde_json::Value = serde_json::from_str(v.expect).unwrap();
            types.insert(format!("{} {}", v.kind, value["type"].as_str().unwrap()));
            if let Some(code) = value["code"].as_str() {
                types.insert(format!("code {code}"));
            }
        }
    }
    for t in [
        "join", "enter", "part", "msg", "history", "rooms", "ping", "pong",
    ] {
        assert!(types.contains(&format!("c2s {t}")), "no c2s {t}");
    }
    for t in [
        "welcome", "online", "entered", "presence", "msg", "history", "rooms", "error", "ping",
        "pong", "notice",
    ] {
        assert!(types.contains(&format!("s2c {t}")), "no s2c {t}");
    }
    use ErrorCode::*;
    for code in [
        NickTaken,
        NickInvalid,
        NotJoined,
        AlreadyJoined,
        UnknownNick,
        BadFrame,
        FrameTooLarge,
        EmptyFrame,
        MsgTooLarge,
        TooManyRecipients,
        RoomInvalid,
        NotInRoom,
        AlreadyInRoom,
        TooManyRooms,
        Duplicate,
        Unavailable,
        ServerFull,
        RateLimited,
        SlowConsumer,
        Timeout,
        ResumedElsewhere,
    ] {
        assert!(
            types.contains(&format!("code {code}")),
            "no error vector for {code}"
        );
    }
}

/// What each canonical client vector means, written out by hand.
fn client_meaning(name: &str) -> ClientFrame {
    let msg = |to: &[&str], text: &str| {
        ClientFrame::msg(to.iter().map(|s| s.to_string()).collect(), text)
    };
    match name {
        "join" => ClientFrame::join("alice"),
        "join-v2" => ClientFrame::join_v2("dave", vec!["rust".into()], None),
        "join-resume" => ClientFrame::join_v2(
            "alice",
            vec![],
            Some("0123456789abcdef0123456789abcdef".into()),
        ),
        "enter" => ClientFrame::enter("rust", None),
        "enter-since" => ClientFrame::enter("rust", Some((7, "e1".into()))),
        "part" => ClientFrame::part("rust"),
        "msg-room-id" => ClientFrame::msg_in("rust", vec![], "hello rust", Some("m1".into())),
        "history" => ClientFrame::history("rust", Some(10), Some(2)),
        "rooms" => ClientFrame::Rooms,
        "msg-all" => msg(&[], "hello everyone"),
        "msg-to" => msg(&["bob", "carol"], "hello"),
        "msg-escapes" => msg(&["alice"], "tab\t \"quoted\" back\\slash \u{1b}[31m é ✓ 😀"),
        "ping" => ClientFrame::Ping,
        "pong" => ClientFrame::Pong,
        other => panic!("no meaning written for c2s {other}"),
    }
}

#[test]
fn frames_decode_to_their_meaning_and_encode_to_their_bytes() {
    for v in vectors() {
        let canonical = match v.kind {
            "c2s" => {
                let f: ClientFrame = decode(&v.bytes).unwrap();
                assert_eq!(f, client_meaning(v.name), "line {}", v.line);
                encode(&f, DEFAULT_MAX_FRAME_BYTES).unwrap()
            }
            "c2s-accept" => encode(&decode::<ClientFrame>(&v.bytes).unwrap(), 65_536).unwrap(),
            "s2c" | "s2c-accept" => {
                encode(&decode::<ServerFrame>(&v.bytes).unwrap(), 65_536).unwrap()
            }
            _ => continue,
        };
        if v.kind.ends_with("-accept") {
            assert_eq!(&canonical[4..], v.expect.as_bytes(), "line {}", v.line);
        } else {
            assert_eq!(&canonical[..], &v.bytes[..], "line {}", v.line);
        }
    }
    let online = find(&vectors(), "s2c", "online");
    let nicks = vec!["dave".to_string(), "erin".to_string()];
    assert_eq!(
        decode::<ServerFrame>(&online),
        Ok(ServerFrame::online(None, nicks))
    );
    let cut = find(&vectors(), "s2c", "rooms-cut");
    let listed = vec![RoomInfo::new("lobby", 2), RoomInfo::new("rust", 2)];
    assert_eq!(
        decode::<ServerFrame>(&cut),
        Ok(ServerFrame::rooms_of(listed, 40))
    );
    let future = find(&vectors(), "s2c-accept", "error-unknown-code");
    assert!(matches!(
        decode(&future),
        Ok(ServerFrame::Error {
            code: ErrorCode::Unknown,
            ..
        })
    ));
}

fn why(e: &PayloadError) -> &'static str {
    match e {
        PayloadError::NotUtf8 { .. } => "not_utf8",
        PayloadError::NotObject => "not_object",
        PayloadError::Invalid(m) if m.starts_with("payload is not JSON") => "not_json",
        PayloadError::UnknownKind { .. } => "unknown_type",
        PayloadError::Invalid(m) if m.contains("missing field") => "missing_member",
        PayloadError::Invalid(m) if m.contains("invalid type") => "mistyped_member",
        other => panic!("unclassified {other:?}"),
    }
}

#[test]
fn bad_payloads_are_bad_frame_and_the_connection_stays_open() {
    for v in vectors().into_iter().filter(|v| v.kind == "c2s-bad") {
        let err = decode::<ClientFrame>(&v.bytes).unwrap_err();
        assert_eq!(
            format!("bad_frame:{}", why(&err)),
            v.expect,
            "line {}: {err}",
            v.line
        );
        let mut sim = Sim::new(ServerConfig::default(), T);
        let a = sim.connect();
        sim.send_payload(a, &v.bytes[4..]);
        sim.send(a, ClientFrame::Ping);
        match &sim.take(a)[..] {
            [ServerFrame::Error {
                code: ErrorCode::BadFrame,
                ..
            }, ServerFrame::Pong] => {}
            other => panic!("line {}: {other:?}", v.line),
        }
    }
}

#[test]
fn fatal_headers_are_rejected_before_the_body() {
    for v in vectors().into_iter().filter(|v| v.kind == "c2s-fatal") {
        let mut buf = BytesMut::from(&v.bytes[..]);
        let err = FrameDecoder::default()
            .decode_payload(&mut buf)
            .unwrap_err();
        assert_eq!(err.code().as_str(), v.expect, "line {}", v.line);
        assert!(err.code().is_fatal());
        assert!(
            buf.capacity() < 64,
            "line {}: reserved {}",
            v.line,
            buf.capacity()
        );
    }
}

#[test]
fn every_client_vector_survives_arriving_one_byte_at_a_time() {
    let vs = vectors();
    let kinds = ["c2s", "c2s-accept", "c2s-bad"];
    let sent: Vec<&Vector> = vs.iter().filter(|v| kinds.contains(&v.kind)).collect();
    let stream: Vec<u8> = sent.iter().flat_map(|v| v.bytes.iter().copied()).collect();
    let mut dec = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in stream {
        buf.extend_from_slice(&[b]);
        match dec.decode::<ClientFrame>(&mut buf) {
            Decoded::Frame(frame) => got.push(Ok(frame)),
            Decoded::Invalid(why) => got.push(Err(why)),
            Decoded::Incomplete => {}
            Decoded::Broken(why) => panic!("framing: {why}"),
        }
    }
    let want: Vec<_> = sent
        .iter()
        .map(|v| decode::<ClientFrame>(&v.bytes))
        .collect();
    assert_eq!(got, want);
}

/// A server core driven through a script; each step names the vectors it
/// must emit. With `CHATPROTO_PRINT_VECTORS` set, vectors missing from the
/// file are printed as lines for it instead of failing.
struct Script {
    server: Server,
    vectors: BTreeMap<&'static str, Vec<u8>>,
    produced: BTreeSet<&'static str>,
    closes: Vec<(ClientId, ErrorCode)>,
}

impl Script {
    fn new() -> Script {
        let mut config = ServerConfig::default();
        config.max_rooms_per_client = 2;
        Script {
            server: Server::new(config, [1; 32]),
            vectors: vectors()
                .into_iter()
                .filter(|v| v.kind == "s2c")
                .map(|v| (v.name, v.bytes))
                .collect(),
            produced: BTreeSet::new(),
            closes: Vec::new(),
        }
    }

    fn drain(&mut self) -> Vec<(ClientId, Bytes)> {
        let mut got = Vec::new();
        while let Some(out) = self.server.poll() {
            let mut stored = None;
            match out {
                // A durable server's store takes every batch at once.
                Output::Persist { through, .. } => stored = Some(through),
                Output::Send { to, frame, .. } => got.push((to, encode(&frame, 65_536).unwrap())),
                Output::Deliver {
                    event, to, with_id, ..
                } => {
                    let bytes = encode(&event.wire(with_id, false), 65_536).unwrap();
                    got.extend(to.iter().map(|&c| (c, bytes.clone())));
                }
                Output::Close { client, code, .. } => self.closes.push((client, code)),
                _ => {}
            }
            if let Some(through) = stored {
                self.server.handle_persisted(through);
            }
        }
        got
    }

    fn expect(&mut self, want: &[(ClientId, &'static str)]) {
        let got = self.drain();
        let print = std::env::var_os("CHATPROTO_PRINT_VECTORS").is_some();
        let mut expected = Vec::new();
        for (i, &(to, name)) in want.iter().enumerate() {
            self.produced.insert(name);
            match self.vectors.get(name) {
                Some(bytes) => expected.push((to, Bytes::from(bytes.clone()))),
                None if print => {
                    let (_, bytes) = &got[i];
                    let payload = std::str::from_utf8(&bytes[4..]).unwrap();
                    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                    println!("s2c\t{name}\t{hex}\t{payload}");
                    self.vectors.insert(name, bytes.to_vec());
                    expected.push((to, bytes.clone()));
                }
                None => panic!("no s2c {name}"),
            }
        }
        assert_eq!(got, expected);
    }

    fn closes(&mut self) -> Vec<(ClientId, ErrorCode)> {
        std::mem::take(&mut self.closes)
    }

    /// Client `id` sends the frame of the c2s vector `name`, off the wire.
    fn send(&mut self, now: Now, id: ClientId, c2s: &[u8]) {
        let frame = decode::<ClientFrame>(c2s).unwrap();
        self.server.handle_frame(now, id, frame);
    }
}

/// Both clocks, `ms` after the script starts.
fn at(ms: u64) -> Now {
    Now::new(ms, T + ms)
}

#[test]
fn a_server_produces_the_server_vectors() {
    let vs = vectors();
    let c2s = |name| find(&vs, "c2s", name);
    let mut s = Script::new();
    let join = |nick: &str| ClientFrame::join(nick);
    let msg = |to: &[&str], text: &str| {
        ClientFrame::msg(to.iter().map(|s| s.to_string()).collect(), text)
    };

    let a = s.server.handle_connect(at(0));
    s.send(at(0), a, &c2s("join"));
    s.expect(&[(a, "welcome-alone"), (a, "presence-online-alone")]);
    let b = s.server.handle_connect(at(123));
    s.server.handle_frame(at(123), b, join("bob"));
    s.expect(&[
        (b, "welcome"),
        (a, "presence-online"),
        (b, "presence-online"),
    ]);
    s.send(at(456), a, &c2s("msg-all"));
    s.expect(&[(a, "msg-all"), (b, "msg-all")]);
    s.server.handle_frame(at(789), a, msg(&["BOB"], "hi bob"));
    s.expect(&[(b, "msg-to"), (a, "msg-to")]);
    s.send(at(1_000), b, &c2s("msg-escapes"));
    s.expect(&[(a, "msg-escapes"), (b, "msg-escapes")]);
    s.send(at(1_000), b, &c2s("ping"));
    s.expect(&[(b, "pong")]);

    let now = at(2_000);
    let c = s.server.handle_connect(now);
    s.server.handle_frame(now, c, msg(&[], "hi"));
    s.expect(&[(c, "error-not-joined")]);
    for (nick, vector) in [
        ("ALICE", "error-nick-taken"),
        ("b0b", "error-nick-look-alike"),
        ("bad nick", "error-nick-invalid"),
    ] {
        s.server.handle_frame(now, c, join(nick));
        s.expect(&[(c, vector)]);
    }
    s.server.handle_bad_frame(now, c, &PayloadError::NotObject);
    s.expect(&[(c, "error-bad-frame")]);
    s.send(now, a, &c2s("join"));
    s.expect(&[(a, "error-already-joined")]);
    s.server
        .handle_frame(now, a, msg(&["bob", "dave", "erin", "dave"], "hi"));
    s.expect(&[(a, "error-unknown-nick")]);
    s.server.handle_frame(now, a, msg(&[], &"x".repeat(65_500)));
    s.expect(&[(a, "error-msg-too-large")]);
    let many: Vec<String> = (0..65).map(|i| format!("n{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    s.server.handle_frame(now, a, msg(&many, "hi"));
    s.expect(&[(a, "error-too-many-recipients")]);
    assert!(s.closes().is_empty(), "none of these is fatal");

    // v2: a client entering a room with a join, then a message with an id.
    let d = s.server.handle_connect(at(3_000));
    s.send(at(3_000), d, &c2s("join-v2"));
    s.expect(&[
        (d, "welcome-v2"),
        (d, "entered"),
        (d, "presence-online-rust"),
    ]);
    s.send(at(3_100), d, &c2s("msg-room-id"));
    s.expect(&[(d, "msg-room-id-echo")]);
    s.send(at(3_100), d, &c2s("msg-room-id"));
    s.expect(&[(d, "error-duplicate")]);
    s.server
        .handle_frame(at(3_100), a, ClientFrame::msg_in("rust", vec![], "x", None));
    s.expect(&[(a, "error-not-in-room")]);
    s.server
        .handle_frame(at(3_100), a, ClientFrame::enter("#rust", None));
    s.expect(&[(a, "error-room-invalid")]);
    s.send(at(3_100), d, &c2s("enter"));
    s.expect(&[(d, "error-already-in-room")]);
    s.server
        .handle_frame(at(3_200), a, ClientFrame::enter("rust", None));
    s.expect(&[
        (a, "entered-with-replay"),
        (a, "msg-room-replay"),
        (d, "presence-online-rust-alice"),
        (a, "presence-online-rust-alice"),
    ]);
    s.send(at(3_300), a, &c2s("history"));
    s.expect(&[(a, "history")]);
    s.send(at(3_300), a, &c2s("rooms"));
    s.expect(&[(a, "rooms")]);
    s.server
        .handle_frame(at(3_300), a, ClientFrame::enter("ops", None));
    s.expect(&[(a, "error-too-many-rooms")]);
    s.send(at(3_400), a, &c2s("part"));
    s.expect(&[
        (d, "presence-offline-rust-alice"),
        (a, "presence-offline-rust-alice"),
    ]);
    s.server.handle_disconnect(at(3_500), d);
    s.expect(&[]);
    assert!(s.closes().is_empty());

    s.server.handle_timeout(at(12_000));
    s.expect(&[(c, "error-timeout-join")]);
    assert_eq!(s.closes(), vec![(c, ErrorCode::Timeout)]);
    s.server.handle_timeout(at(31_000));
    s.expect(&[(b, "ping")]);
    s.send(at(31_000), b, &c2s("pong"));
    s.expect(&[]);
    // alice last spoke at 3.4 s.
    s.server.handle_timeout(at(33_400));
    s.expect(&[(a, "ping")]);
    s.server.handle_timeout(at(43_399));
    s.expect(&[]);
    s.server.handle_timeout(at(43_400));
    s.expect(&[(a, "error-timeout-ping"), (b, "presence-offline")]);
    assert_eq!(s.closes(), vec![(a, ErrorCode::Timeout)]);

    // Codes the shell decides, through `kick`.
    for (why, vector) in [
        (
            Kick::Framing(FramingError::too_large(65_537, 65_536)),
            "error-frame-too-large",
        ),
        (Kick::Framing(FramingError::Empty), "error-empty-frame"),
        (Kick::ServerFull, "error-server-full"),
        (Kick::RateLimited, "error-rate-limited"),
        (Kick::slow_consumer(1_048_576), "error-slow-consumer"),
    ] {
        let code = why.code();
        let id = s.server.handle_connect(at(42_000));
        s.server.kick(at(42_000), id, why);
        s.expect(&[(id, vector)]);
        assert_eq!(s.closes(), vec![(id, code)]);
    }
    s.server.handle_shutdown("the server is shutting down");
    s.expect(&[(b, "notice")]);

    // A durable server whose store fails refuses messages.
    let mut durable = ServerConfig::default();
    durable.durable = true;
    s.server = Server::new(durable, [1; 32]);
    let e = s.server.handle_connect(at(50_000));
    s.send(at(50_000), e, &c2s("join-v2"));
    s.drain();
    s.server.handle_persist_failed("disk full");
    s.send(at(50_100), e, &c2s("msg-room-id"));
    s.expect(&[(e, "error-unavailable")]);

    // A page that stops at `history_scan` (2 here) short of anything frank
    // may see says where the next one starts.
    let mut short = ServerConfig::default();
    short.history_scan = 2;
    s.server = Server::new(short, [1; 32]);
    let d = s.server.handle_connect(at(60_000));
    s.send(at(60_000), d, &c2s("join-v2")); // dave enters rust: seq 1
    let e = s.server.handle_connect(at(60_000));
    let rust = vec!["rust".to_owned()];
    s.server.handle_frame(
        at(60_000),
        e,
        ClientFrame::join_v2("erin", rust.clone(), None),
    ); // 2
    for text in ["psst", "psst again", "and again"] {
        let to = vec!["erin".to_owned()];
        s.server
            .handle_frame(at(60_100), d, ClientFrame::msg_in("rust", to, text, None));
        // 3, 4
    }
    let f = s.server.handle_connect(at(60_200));
    s.server
        .handle_frame(at(60_200), f, ClientFrame::join_v2("frank", rust, None)); // 6
    s.drain();
    s.send(at(60_300), f, &c2s("history"));
    s.expect(&[(f, "history-stopped-short")]);

    // A resume while the session's connection is still open closes that
    // connection.
    let g = s.server.handle_connect(at(60_400));
    s.server
        .handle_frame(at(60_400), g, ClientFrame::join_v2("gina", vec![], None));
    let token = match s.drain().first().map(|(_, b)| decode::<ServerFrame>(b)) {
        Some(Ok(ServerFrame::Welcome { session, .. })) => session,
        other => panic!("gina's welcome, not {other:?}"),
    };
    let h = s.server.handle_connect(at(60_500));
    s.server
        .handle_frame(at(60_500), h, ClientFrame::join_v2("gina", vec![], token));
    let got = s.drain();
    let name = "error-resumed-elsewhere";
    s.produced.insert(name);
    assert_eq!(got[0], (g, Bytes::from(s.vectors[name].clone())));
    assert_eq!(got[1].0, h);
    assert_eq!(s.closes(), vec![(g, ErrorCode::ResumedElsewhere)]);

    // The shell closes that one for reading too slowly (its error frame
    // may never leave the full socket): the next resume's welcome says so.
    s.server
        .handle_disconnect_for(at(60_600), h, ErrorCode::SlowConsumer);
    s.drain();
    let i = s.server.handle_connect(at(60_700));
    let token = match decode::<ServerFrame>(&got[1].1) {
        Ok(ServerFrame::Welcome { session, .. }) => session,
        other => panic!("gina's second welcome, not {other:?}"),
    };
    s.server
        .handle_frame(at(60_700), i, ClientFrame::join_v2("gina", vec![], token));
    s.expect(&[(i, "welcome-resumed-closed-for")]);

    // Every server vector comes out of the server, except the continuation
    // frame and the cut room list, which need a room, or rooms, too many
    // to list here.
    let mut unproduced: Vec<&str> = s
        .vectors
        .keys()
        .copied()
        .filter(|n| !s.produced.contains(n))
        .collect();
    unproduced.sort();
    assert_eq!(unproduced, vec!["online", "rooms-cut"]);
}

#[test]
fn protocol_md_lists_every_vector() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../PROTOCOL.md");
    let doc = std::fs::read_to_string(path).expect("PROTOCOL.md next to the workspace root");
    let listed: BTreeSet<&str> = doc.lines().collect();
    for v in vectors() {
        assert!(
            listed.contains(v.text),
            "PROTOCOL.md lacks line {} of vectors.txt",
            v.line
        );
    }
    assert!(doc.contains("chatproto/tests/vectors.txt"));
    // The copy said to be verbatim is the file, line for line: no line
    // there that the file (and so the checks above) does not hold.
    let start = doc.find("The file, verbatim:").expect("the verbatim copy");
    let block = &doc[start..];
    let block = &block[block.find("```text\n").expect("its text block") + 8..];
    let block = &block[..block.find("```").expect("the end of the block")];
    let (copy, file): (Vec<&str>, Vec<&str>) = (block.lines().collect(), FILE.lines().collect());
    for (n, (c, f)) in copy.iter().zip(&file).enumerate() {
        assert_eq!(
            c,
            f,
            "PROTOCOL.md's copy differs at line {} of vectors.txt",
            n + 1
        );
    }
    assert_eq!(
        copy.len(),
        file.len(),
        "PROTOCOL.md's copy and vectors.txt: lines"
    );
}

/// The table of error codes in PROTOCOL.md section 6 names every code
/// the crate knows, each once, says which close the connection as
/// `ErrorCode::is_fatal` does, and each has an `s2c` vector.
#[test]
fn protocol_md_error_table_matches_the_codes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../PROTOCOL.md");
    let doc = std::fs::read_to_string(path).expect("PROTOCOL.md next to the workspace root");
    let start = doc.find("\n## 6. Errors").expect("section 6");
    let section = &doc[start..];
    let section = &section[..section.find("\n## 7. ").expect("section 7")];
    let vectored: BTreeSet<String> = vectors()
        .iter()
        .filter(|v| v.kind == "s2c")
        .filter_map(|v| {
            let value: serde_json::Value = serde_json::from_str(v.expect).ok()?;
            Some(value["code"].as_str()?.to_owned())
        })
        .collect();
    let mut listed = BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`');
        let code: ErrorCode = serde_json::from_value(serde_json::json!(name)).unwrap();
        assert_ne!(
            code,
            ErrorCode::Unknown,
            "PROTOCOL.md lists {name}, unknown to the crate"
        );
        assert_eq!(code.as_str(), name);
        let fatal = match cells[2] {
            "**yes**" => true,
            "no" => false,
            other => panic!("{name}: fatal column {other:?}"),
        };
        assert_eq!(code.is_fatal(), fatal, "{name}: fatal column");
        assert!(vectored.contains(name), "{name}: no s2c vector");
        assert!(listed.insert(name.to_owned()), "{name} listed twice");
    }
    assert_eq!(
        listed, vectored,
        "the codes listed and the codes with vectors"
    );
}

/// Every example frame in PROTOCOL.md's `json` blocks is a frame of the
/// crate, written canonically (section 2.2): it decodes as a client or a
/// server frame and encodes back to the same text, no member unknown,
/// missing or out of order.
#[test]
fn protocol_md_examples_are_canonical_frames() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../PROTOCOL.md");
    let doc = std::fs::read_to_string(path).expect("PROTOCOL.md next to the workspace root");
    let mut seen = 0;
    for block in doc.split("```json\n").skip(1) {
        let block = &block[..block.find("```").expect("the end of a json block")];
        for line in block.lines().filter(|l| !l.is_empty()) {
            let as_client = chatproto::parse_payload::<ClientFrame>(line.as_bytes())
                .map(|f| serde_json::to_string(&f).unwrap());
            let as_server = chatproto::parse_payload::<ServerFrame>(line.as_bytes())
                .map(|f| serde_json::to_string(&f).unwrap());
            assert!(
                as_client.as_deref() == Ok(line) || as_server.as_deref() == Ok(line),
                "PROTOCOL.md: {line}\n as a client frame: {as_client:?}\n as a server frame: {as_server:?}"
            );
            seen += 1;
        }
    }
    assert!(seen >= 20, "only {seen} examples");
}

/// The server reads client frames with `ClientFrame::from_payload` (plain
/// frames without serde): every client vector reads the same that way,
/// the same frame or an error in the same words (a bad `msg`'s names its
/// room, see `PayloadError::InRoom`).
#[test]
fn client_vectors_read_the_same_without_serde() {
    for v in vectors() {
        if !v.kind.starts_with("c2s") || v.kind == "c2s-fatal" {
            continue;
        }
        let payload = &v.bytes[4..];
        let fast = ClientFrame::from_payload(payload).map_err(|e| e.to_string());
        let serde = chatproto::parse_payload::<ClientFrame>(payload).map_err(|e| e.to_string());
        assert_eq!(fast, serde, "line {}", v.line);
    }
}
