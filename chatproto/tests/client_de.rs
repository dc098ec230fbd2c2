//! The hand-written `Deserialize` for `ClientFrame` accepts exactly what
//! serde's derive for the same internally tagged enum accepts, and builds
//! the same frames: checked against that derive on generated objects.

use chatproto::{parse_payload, ClientFrame};
use proptest::prelude::*;
use serde::Deserialize;

/// What serde derives for the client frames of v2: the reference the hand
/// decoder must agree with.
///
/// An `Option` member is `None` when absent (the derive's own rule for
/// `Option`, so no attribute is needed) and when `null`; `to` is the one
/// member that defaults without being an `Option`, as the hand decoder
/// does.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Derived {
    Join {
        nick: String,
        rooms: Option<Vec<String>>,
        resume: Option<String>,
    },
    Enter {
        room: String,
        since: Option<u64>,
        epoch: Option<String>,
    },
    Part {
        room: String,
    },
    Msg {
        room: Option<String>,
        // Absent or null: everyone (PROTOCOL.md §4.1).
        to: Option<Vec<String>>,
        text: String,
        id: Option<String>,
    },
    History {
        room: String,
        before: Option<u64>,
        limit: Option<u64>,
    },
    Rooms,
    Ping,
    Pong,
}

impl From<Derived> for ClientFrame {
    fn from(d: Derived) -> Self {
        match d {
            Derived::Join {
                nick,
                rooms: Some(rooms),
                resume,
            } => ClientFrame::join_v2(nick, rooms, resume),
            Derived::Join {
                nick,
                rooms: None,
                resume: None,
            } => ClientFrame::join(nick),
            // A v1 join carrying a resume token: no constructor says that.
            Derived::Join {
                nick,
                rooms: None,
                resume: Some(token),
            } => {
                let mut frame = ClientFrame::join(nick);
                if let ClientFrame::Join { resume, .. } = &mut frame {
                    *resume = Some(token);
                }
                frame
            }
            // `since` without `epoch` or the other way round: nor that.
            Derived::Enter { room, since, epoch } => {
                let mut frame = ClientFrame::enter(room, None);
                if let ClientFrame::Enter {
                    since: s, epoch: e, ..
                } = &mut frame
                {
                    (*s, *e) = (since, epoch);
                }
                frame
            }
            Derived::Part { room } => ClientFrame::part(room),
            Derived::Msg {
                room: Some(room),
                to,
                text,
                id,
            } => ClientFrame::msg_in(room, to.unwrap_or_default(), text, id),
            // A v1 msg (no room) carrying an id: nor that.
            Derived::Msg {
                room: None,
                to,
                text,
                id,
            } => {
                let mut frame = ClientFrame::msg(to.unwrap_or_default(), text);
                if let ClientFrame::Msg { id: i, .. } = &mut frame {
                    *i = id;
                }
                frame
            }
            Derived::History {
                room,
                before,
                limit,
            } => ClientFrame::history(room, before, limit),
            Derived::Rooms => ClientFrame::Rooms,
            Derived::Ping => ClientFrame::Ping,
            Derived::Pong => ClientFrame::Pong,
        }
    }
}

/// Every kind a client may send, and one it may not.
const KINDS: [&str; 9] = [
    "join", "enter", "part", "msg", "history", "rooms", "ping", "pong", "shout",
];

/// JSON values of every shape, biased towards the ones frames use.
fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        3 => prop::sample::select(&KINDS[..]).prop_map(|k| format!("{k:?}")),
        2 => "[a-z]{0,5}".prop_map(|s| format!("{s:?}")),
        1 => Just("\"tab\\there \\u00e9\"".to_string()),
        2 => any::<i64>().prop_map(|n| n.to_string()),
        // Above i64::MAX: still a u64 for `since`, `before` and `limit`.
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => (0..3u64).prop_map(|n| n.to_string()),
        1 => Just("-0".to_string()),
        1 => Just("1.5".to_string()),
        1 => Just("1e3".to_string()),
        1 => Just("18446744073709551616".to_string()),
        2 => Just("null".to_string()),
        1 => Just("true".to_string()),
        // An array of strings: what `to` and `rooms` want.
        2 => prop::collection::vec("[a-z]{0,4}", 0..3).prop_map(|v| {
            let v: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
            format!("[{}]", v.join(","))
        }),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(inner, 0..3).prop_map(|v| {
                let members: Vec<String> = v
                    .iter()
                    .enumerate()
                    .map(|(i, x)| format!("\"k{i}\":{x}"))
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

/// Objects whose members are mostly the ones client frames know, in any
/// order, sometimes repeated.
fn object() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        4 => Just("type"),
        2 => Just("nick"),
        2 => Just("to"),
        2 => Just("text"),
        2 => Just("room"),
        1 => Just("rooms"),
        1 => Just("resume"),
        1 => Just("since"),
        1 => Just("epoch"),
        1 => Just("id"),
        1 => Just("before"),
        1 => Just("limit"),
        1 => Just("from"),
        1 => Just("seq"),
    ];
    prop::collection::vec((key, value()), 0..7).prop_map(|members| {
        let members: Vec<String> = members
            .into_iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        format!("{{{}}}", members.join(","))
    })
}

/// A JSON string of printable ASCII with nothing to escape.
fn text() -> impl Strategy<Value = String> {
    "[ -~&&[^\"\\\\]]{0,20}".prop_map(|t| format!("\"{t}\""))
}

/// An optional member: absent, `null`, or the value.
fn opt(name: &'static str, v: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(format!(",\"{name}\":null")),
        v.prop_map(move |v| format!(",\"{name}\":{v}")),
    ]
}

fn names() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z]{1,6}", 0..3).prop_map(|v| {
        let v: Vec<String> = v.iter().map(|n| format!("\"{n}\"")).collect();
        format!("[{}]", v.join(","))
    })
}

/// A frame with its kind first and the members it needs, well typed.
fn plausible() -> impl Strategy<Value = String> {
    let room = || "[a-z]{1,6}".prop_map(|r| format!("\"{r}\""));
    let num = || any::<u64>().prop_map(|n| n.to_string());
    // `to`: absent, null (both everyone) or a list.
    let to = prop_oneof![
        Just(String::new()),
        Just(",\"to\":null".to_owned()),
        names().prop_map(|v| format!(",\"to\":{v}"))
    ];
    prop_oneof![
        (
            "[a-z]{1,8}",
            opt("rooms", names()),
            opt("resume", "[0-9a-f]{4}".prop_map(|t| format!("\"{t}\"")))
        )
            .prop_map(|(n, rooms, resume)| format!(
                "{{\"type\":\"join\",\"nick\":\"{n}\"{rooms}{resume}}}"
            )),
        (opt("room", room()), to, text(), opt("id", text())).prop_map(
            |(room, to, text, id)| format!("{{\"type\":\"msg\"{room}{to},\"text\":{text}{id}}}")
        ),
        (room(), opt("since", num()), opt("epoch", text()))
            .prop_map(|(r, s, e)| format!("{{\"type\":\"enter\",\"room\":{r}{s}{e}}}")),
        room().prop_map(|r| format!("{{\"type\":\"part\",\"room\":{r}}}")),
        (room(), opt("before", num()), opt("limit", num()))
            .prop_map(|(r, b, l)| format!("{{\"type\":\"history\",\"room\":{r}{b}{l}}}")),
        Just("{\"type\":\"rooms\"}".to_string()),
        Just("{\"type\":\"ping\"}".to_string()),
        Just("{\"text\":\"late tag\",\"type\":\"msg\"}".to_string()),
        Just("{\"room\":\"late\",\"since\":3,\"type\":\"enter\"}".to_string()),
    ]
}

fn check(json: &str) -> Result<(), TestCaseError> {
    let ours = parse_payload::<ClientFrame>(json.as_bytes());
    let derived: Result<Derived, _> = serde_json::from_str(json);
    match (ours, derived) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, ClientFrame::from(b), "{}", json),
        (Err(_), Err(_)) => {}
        (a, b) => prop_assert!(false, "{json}: ours {a:?}, derive {b:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn accepts_and_rejects_what_the_derive_does(json in object()) {
        check(&json)?;
    }

    #[test]
    fn well_formed_frames_decode_the_same(json in plausible()) {
        // Well-formed frames must also be accepted, not merely agreed on.
        prop_assert!(parse_payload::<ClientFrame>(json.as_bytes()).is_ok(), "{}", json);
        check(&json)?;
    }
}

/// Cases where the two decoders could plausibly part ways, spelled out.
#[test]
fn the_corners_agree_with_the_derive() {
    let cases = [
        // null is absent for an optional member...
        r#"{"type":"msg","room":null,"text":"x","id":null}"#,
        r#"{"type":"join","nick":"a","rooms":null,"resume":null}"#,
        r#"{"type":"enter","room":"r","since":null,"epoch":null}"#,
        // ...and the wrong type for a required one.
        r#"{"type":"enter","room":null}"#,
        r#"{"type":"part","room":null}"#,
        r#"{"type":"history","room":null}"#,
        // `to` is optional too: null is everyone.
        r#"{"type":"msg","to":null,"text":"x"}"#,
        r#"{"type":"msg","to":null,"to":["a"],"text":"x"}"#,
        // A member given twice is an error when the kind uses it, null or not.
        r#"{"type":"msg","room":null,"room":"r","text":"x"}"#,
        r#"{"type":"enter","room":"a","room":"b"}"#,
        r#"{"type":"history","room":"a","limit":1,"limit":null}"#,
        r#"{"type":"type","type":"ping"}"#,
        // ...and ignored when it does not.
        r#"{"type":"ping","room":"a","room":"b"}"#,
        r#"{"type":"join","nick":"a","since":1,"since":2}"#,
        // Numbers: unsigned integers only.
        r#"{"type":"enter","room":"r","since":18446744073709551615}"#,
        r#"{"type":"enter","room":"r","since":18446744073709551616}"#,
        r#"{"type":"enter","room":"r","since":-1}"#,
        r#"{"type":"enter","room":"r","since":-0}"#,
        r#"{"type":"history","room":"r","before":1.0}"#,
        r#"{"type":"history","room":"r","limit":1e2}"#,
        // Arrays of strings, and the rest.
        r#"{"type":"join","nick":"a","rooms":[]}"#,
        r#"{"type":"join","nick":"a","rooms":["a",null]}"#,
        r#"{"type":"join","nick":"a","rooms":[["a"]]}"#,
        r#"{"type":"msg","text":"x","id":""}"#,
        r#"{"type":"rooms","rooms":7}"#,
    ];
    for json in cases {
        check(json).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn errors_name_the_member_at_fault() {
    let cases = [
        (r#"{"type":"join","nick":42}"#, "member `nick`"),
        (
            r#"{"type":"join","nick":"a","rooms":"lobby"}"#,
            "member `rooms`",
        ),
        (
            r#"{"type":"join","nick":"a","resume":7}"#,
            "member `resume`",
        ),
        (r#"{"type":"msg","to":"bob","text":"x"}"#, "member `to`"),
        (r#"{"type":"msg","to":["bob",7],"text":"x"}"#, "member `to`"),
        (r#"{"type":"msg","text":false}"#, "member `text`"),
        (r#"{"type":"msg","text":"x","room":1}"#, "member `room`"),
        (r#"{"type":"msg","text":"x","id":[]}"#, "member `id`"),
        (r#"{"type":"enter","room":null}"#, "member `room`"),
        (
            r#"{"type":"enter","room":"r","since":"3"}"#,
            "member `since`",
        ),
        (r#"{"type":"enter","room":"r","epoch":3}"#, "member `epoch`"),
        (
            r#"{"type":"history","room":"r","before":-1}"#,
            "member `before`",
        ),
        (
            r#"{"type":"history","room":"r","limit":0.5}"#,
            "member `limit`",
        ),
        (r#"{"type":"part"}"#, "missing field `room`"),
        (
            r#"{"type":"part","room":"a","room":"b"}"#,
            "duplicate field `room`",
        ),
        (r#"{"type":7}"#, "member `type`"),
    ];
    for (json, words) in cases {
        let err = parse_payload::<ClientFrame>(json.as_bytes()).unwrap_err();
        assert!(err.to_string().contains(words), "{json}: {err}");
    }
    // A member the kind does not use is ignored, whatever its value.
    assert_eq!(
        parse_payload::<ClientFrame>(br#"{"type":"ping","nick":5,"to":{},"room":[1]}"#).unwrap(),
        ClientFrame::Ping
    );
}

/// `to` is optional, and a null optional member is an absent one
/// (PROTOCOL.md §4.1): a message to everyone, as without it.
#[test]
fn a_null_to_is_everyone() {
    let null = parse_payload::<ClientFrame>(br#"{"type":"msg","to":null,"text":"hi"}"#);
    let absent = parse_payload::<ClientFrame>(br#"{"type":"msg","text":"hi"}"#);
    assert_eq!(null.expect("a msg"), absent.expect("a msg"));
    let fast = ClientFrame::from_payload(br#"{"type":"msg","room":"r","to":null,"text":"hi"}"#);
    assert_eq!(
        fast.expect("a msg"),
        ClientFrame::msg_in("r", vec![], "hi", None)
    );
}
