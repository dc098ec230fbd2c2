//! The public API as another crate sees it: every frame, event, record and
//! kick is built through constructors only, and every variant with members
//! is matched with `..`. Struct literals of these types do not compile
//! outside the crate (they are `#[non_exhaustive]`, so that the wire
//! format's new members are minor releases), which is why this file is an
//! integration test: it would stop compiling if a frame lost its way to be
//! built.

use std::sync::Arc;

use chatproto::{
    hash_token, ClientEvent, ClientFrame, ErrorCode, Event, EventBody, FramingError, Kick, Limits,
    PresenceStatus, ReadPage, ReadQuery, Recipient, Record, RoomInfo, ServerFrame, SessionId,
};

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap()
}

#[test]
fn every_client_frame_is_built_by_a_constructor() {
    let cases = [
        (
            ClientFrame::join("alice"),
            r#"{"type":"join","nick":"alice"}"#,
        ),
        (
            ClientFrame::join_v2("alice", vec!["rust".into()], Some("t0".into())),
            r#"{"type":"join","nick":"alice","rooms":["rust"],"resume":"t0"}"#,
        ),
        (
            ClientFrame::enter("rust", None),
            r#"{"type":"enter","room":"rust"}"#,
        ),
        (
            ClientFrame::enter("rust", Some((41, "e1".into()))),
            r#"{"type":"enter","room":"rust","since":41,"epoch":"e1"}"#,
        ),
        (
            ClientFrame::part("rust"),
            r#"{"type":"part","room":"rust"}"#,
        ),
        (
            ClientFrame::msg(vec![], "hi"),
            r#"{"type":"msg","text":"hi"}"#,
        ),
        (
            ClientFrame::msg_in("rust", vec!["bob".into()], "hi", Some("m-1".into())),
            r#"{"type":"msg","room":"rust","to":["bob"],"text":"hi","id":"m-1"}"#,
        ),
        (
            ClientFrame::history("rust", Some(9), Some(50)),
            r#"{"type":"history","room":"rust","before":9,"limit":50}"#,
        ),
        (ClientFrame::Rooms, r#"{"type":"rooms"}"#),
        (ClientFrame::Ping, r#"{"type":"ping"}"#),
        (ClientFrame::Pong, r#"{"type":"pong"}"#),
    ];
    for (frame, wire) in cases {
        assert_eq!(json(&frame), wire);
        assert_eq!(
            chatproto::parse_payload::<ClientFrame>(wire.as_bytes()),
            Ok(frame)
        );
    }
}

#[test]
fn every_server_frame_is_built_by_a_constructor() {
    let msg = ServerFrame::msg(
        Some("rust".into()),
        7,
        "alice",
        vec!["bob".into()],
        "hi",
        1_000,
        Some("m-1".into()),
    );
    let cases = [
        (
            ServerFrame::welcome("alice", 3, vec!["alice".into()], None, None, None),
            r#"{"type":"welcome","nick":"alice","seq":3,"online":["alice"]}"#,
        ),
        (
            ServerFrame::welcome(
                "alice",
                3,
                vec![],
                Some("t0".into()),
                Some(false),
                Some(Limits::new(65_536, 64, 500, 200)),
            ),
            r#"{"type":"welcome","nick":"alice","seq":3,"online":[],"session":"t0","resumed":false,"limits":{"max_frame_bytes":65536,"max_recipients":64,"replay_limit":500,"history_page":200}}"#,
        ),
        (
            ServerFrame::online(Some("rust".into()), vec!["carol".into()]),
            r#"{"type":"online","room":"rust","nicks":["carol"]}"#,
        ),
        (
            ServerFrame::entered("rust", "e1", 7, 1, vec!["alice".into()], true),
            r#"{"type":"entered","room":"rust","epoch":"e1","seq":7,"oldest":1,"online":["alice"],"recovered":true}"#,
        ),
        (
            ServerFrame::presence(None, 4, "bob", PresenceStatus::Online, 9),
            r#"{"type":"presence","seq":4,"nick":"bob","status":"online","ts":9}"#,
        ),
        (
            msg.clone(),
            r#"{"type":"msg","room":"rust","seq":7,"from":"alice","to":["bob"],"text":"hi","ts":1000,"id":"m-1"}"#,
        ),
        (
            ServerFrame::history("rust", vec![msg.clone().into_replay()], true),
            r#"{"type":"history","room":"rust","events":[{"type":"msg","room":"rust","seq":7,"from":"alice","to":["bob"],"text":"hi","ts":1000,"id":"m-1","replay":true}],"more":true}"#,
        ),
        (
            ServerFrame::history_to("rust", vec![], 903),
            r#"{"type":"history","room":"rust","events":[],"more":false,"oldest":903}"#,
        ),
        (
            ServerFrame::rooms(vec![RoomInfo::new("lobby", 3)]),
            r#"{"type":"rooms","rooms":[{"room":"lobby","members":3}]}"#,
        ),
        (
            ServerFrame::rooms_of(vec![RoomInfo::new("lobby", 3)], 40),
            r#"{"type":"rooms","rooms":[{"room":"lobby","members":3}],"total":40}"#,
        ),
        (
            ServerFrame::error(ErrorCode::NickTaken, "taken"),
            r#"{"type":"error","code":"nick_taken","message":"taken"}"#,
        ),
        (
            ServerFrame::error_v2(
                ErrorCode::Duplicate,
                "again",
                Some("m-1".into()),
                Some("rust".into()),
                Some(7),
            ),
            r#"{"type":"error","code":"duplicate","message":"again","id":"m-1","room":"rust","seq":7}"#,
        ),
        (
            ServerFrame::notice("bye"),
            r#"{"type":"notice","text":"bye"}"#,
        ),
        (ServerFrame::Ping, r#"{"type":"ping"}"#),
        (ServerFrame::Pong, r#"{"type":"pong"}"#),
    ];
    for (frame, wire) in cases {
        assert_eq!(json(&frame), wire);
        assert_eq!(
            chatproto::parse_payload::<ServerFrame>(wire.as_bytes()),
            Ok(frame)
        );
    }
    // Only a `msg` carries the replay mark.
    assert_eq!(ServerFrame::Ping.into_replay(), ServerFrame::Ping);
}

#[test]
fn frames_are_matched_with_dots() {
    let frames = [
        ServerFrame::entered("rust", "e1", 7, 1, vec![], false),
        ServerFrame::error(ErrorCode::Timeout, "late"),
        ServerFrame::Ping,
    ];
    let mut seen = Vec::new();
    for frame in frames {
        // A new member, or a new frame, leaves this match as it is.
        match frame {
            ServerFrame::Entered { room, seq, .. } => seen.push(format!("{room} {seq}")),
            ServerFrame::Error { code, .. } => seen.push(code.to_string()),
            _ => seen.push("other".into()),
        }
    }
    assert_eq!(seen, ["rust 7", "timeout", "other"]);
}

#[test]
fn events_records_and_kicks_are_built_by_constructors() {
    let bob = Recipient::new(SessionId(2), "bob");
    let body = EventBody::msg(SessionId(1), "alice", vec![bob], "hi", Some("m-1".into()));
    let event = Event::new("rust", 7, 1_000, body);
    assert!(event.visible_to(SessionId(2)) && !event.visible_to(SessionId(3)));
    assert_eq!(
        json(&event.wire(false, false)),
        r#"{"type":"msg","room":"rust","seq":7,"from":"alice","to":["bob"],"text":"hi","ts":1000}"#
    );
    let entered = Event::new(
        "rust",
        8,
        1_001,
        EventBody::presence(SessionId(2), "bob", PresenceStatus::Offline),
    );
    assert_eq!(
        entered.to_frame(false, false),
        ServerFrame::presence(
            Some("rust".into()),
            8,
            "bob",
            PresenceStatus::Offline,
            1_001
        )
    );

    let records = [
        Record::room("rust", "e1"),
        Record::session(SessionId(1), "alice", hash_token("t0")),
        Record::Event(Arc::new(event)),
        Record::session_forgotten(SessionId(1)),
    ];
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| match r {
            Record::Room { name, .. } if &**name == "rust" => "room",
            Record::Session { id, .. } if *id == SessionId(1) => "session",
            Record::Event(_) => "event",
            Record::SessionForgotten { id, .. } if *id == SessionId(1) => "forgotten",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["room", "session", "event", "forgotten"]);

    let query = ReadQuery::new("rust", SessionId(1), 0, 8, 50);
    assert_eq!((query.after, query.before, query.limit), (0, 8, 50));
    let page = ReadPage::new(Vec::new(), true, 7).with_oldest(3);
    assert_eq!((page.more, page.from, page.oldest), (true, 7, Some(3)));

    assert_eq!(Kick::slow_consumer(10).code(), ErrorCode::SlowConsumer);
    assert_eq!(Kick::over_budget(10).code(), ErrorCode::SlowConsumer);
    let framing = FramingError::too_large(70_000, 65_536);
    assert!(matches!(
        framing,
        FramingError::TooLarge { len: 70_000, .. }
    ));
    assert_eq!(Kick::Framing(framing).code(), ErrorCode::FrameTooLarge);
}

#[test]
fn client_events_are_built_by_constructors() {
    let message = ClientEvent::message("rust", 7, "alice", vec![], "hi", 1_000);
    let events = [
        ClientEvent::joined("alice", false, false),
        ClientEvent::refused(ErrorCode::NickTaken, "taken"),
        ClientEvent::entered("rust", vec!["alice".into()], false, false),
        message.clone().into_mine().into_replay(),
        ClientEvent::presence("rust", "bob", true),
        ClientEvent::history("rust", vec![message.clone()], false),
        ClientEvent::error(ErrorCode::Duplicate, "again", Some("m-1".into()), None),
        ClientEvent::rooms(vec![("rust".into(), 1)], 0),
        ClientEvent::Notice("bye".into()),
        ClientEvent::Dead,
    ];
    let flags: Vec<(bool, bool)> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Message { mine, replay, .. } => Some((*mine, *replay)),
            _ => None,
        })
        .collect();
    assert_eq!(flags, [(true, true)]);
    assert!(matches!(
        &events[5],
        ClientEvent::History { events, .. } if events == &[message]
    ));
    assert_eq!(ClientEvent::Dead.into_mine(), ClientEvent::Dead);
}

/// The codec's buffer types come from chatproto itself: a crate with no
/// `bytes` dependency of its own encodes and decodes with them.
#[test]
fn the_codec_is_used_with_the_bytes_chatproto_gives() {
    use chatproto::bytes::BytesMut;
    use chatproto::{encode_into, Decoded, FrameDecoder};
    let mut buf = BytesMut::new();
    encode_into(&ClientFrame::join("alice"), &mut buf, 1024).unwrap();
    let frame: chatproto::bytes::Bytes = chatproto::encode(&ClientFrame::Ping, 1024).unwrap();
    buf.extend_from_slice(&frame);
    let mut decoder = FrameDecoder::new(1024);
    assert!(matches!(
        decoder.decode::<ClientFrame>(&mut buf),
        Decoded::Frame(f) if f == ClientFrame::join("alice")
    ));
    assert!(matches!(
        decoder.decode::<ClientFrame>(&mut buf),
        Decoded::Frame(f) if f == ClientFrame::Ping
    ));
}

/// The error types are errors another crate can box and send across
/// threads, and none holds a dependency's type: `EncodeError::Json`
/// carries chatproto's own `SerializeError`, whose text is the JSON
/// writer's and which has no source (its words are all there is).
#[test]
fn the_error_types_are_plain_errors_of_this_crate() {
    use std::error::Error;
    fn plain<E: Error + Send + Sync + Clone + PartialEq + 'static>() {}
    plain::<chatproto::FramingError>();
    plain::<chatproto::PayloadError>();
    plain::<chatproto::EncodeError>();
    plain::<chatproto::SerializeError>();
    plain::<chatproto::NickError>();
    plain::<chatproto::LogError>();

    let pairs: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
    let err = chatproto::encode(&pairs, 1024).unwrap_err();
    let chatproto::EncodeError::Json(why) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(why.to_string(), "key must be a string");
    assert_eq!(
        err.to_string(),
        "frame could not be serialized: key must be a string"
    );
    assert!(err.source().is_none() && why.source().is_none());
    let boxed: Box<dyn Error + Send + Sync> = Box::new(err.clone());
    assert_eq!(boxed.to_string(), err.to_string());
}
