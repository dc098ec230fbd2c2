//! The hand-written `Deserialize` for `ClientFrame` accepts exactly what
//! serde's derive for the same internally tagged enum accepts, and builds
//! the same frames: checked against that derive on generated objects.

use chatproto::{parse_payload, ClientFrame};
use proptest::prelude::*;
use serde::Deserialize;

/// What serde derives for the v1 client frames (the previous decoder).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Derived {
    Join {
        nick: String,
    },
    Msg {
        #[serde(default)]
        to: Vec<String>,
        text: String,
    },
    Ping,
    Pong,
}

impl From<Derived> for ClientFrame {
    fn from(d: Derived) -> Self {
        match d {
            Derived::Join { nick } => ClientFrame::Join { nick },
            Derived::Msg { to, text } => ClientFrame::Msg { to, text },
            Derived::Ping => ClientFrame::Ping,
            Derived::Pong => ClientFrame::Pong,
        }
    }
}

/// JSON values of every shape, biased towards the ones frames use.
fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("\"join\"".to_string()),
        Just("\"msg\"".to_string()),
        Just("\"ping\"".to_string()),
        Just("\"pong\"".to_string()),
        Just("\"shout\"".to_string()),
        "[a-z]{0,5}".prop_map(|s| format!("{s:?}")),
        Just("\"tab\\there \\u00e9\"".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("1.5".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
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
        3 => Just("type"),
        2 => Just("nick"),
        2 => Just("to"),
        2 => Just("text"),
        1 => Just("from"),
        1 => Just("seq"),
    ];
    prop::collection::vec((key, value()), 0..6).prop_map(|members| {
        let members: Vec<String> = members
            .into_iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        format!("{{{}}}", members.join(","))
    })
}

/// A frame with its kind first and the members it needs, well typed.
fn plausible() -> impl Strategy<Value = String> {
    let names = prop::collection::vec("[a-z]{1,6}", 0..3);
    prop_oneof![
        "[a-z]{1,8}".prop_map(|n| format!("{{\"type\":\"join\",\"nick\":\"{n}\"}}")),
        (names, "[ -~&&[^\"\\\\]]{0,20}").prop_map(|(to, text)| {
            let to: Vec<String> = to.iter().map(|n| format!("\"{n}\"")).collect();
            format!(
                "{{\"type\":\"msg\",\"to\":[{}],\"text\":\"{text}\"}}",
                to.join(",")
            )
        }),
        Just("{\"type\":\"ping\"}".to_string()),
        Just("{\"text\":\"late tag\",\"type\":\"msg\"}".to_string()),
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
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn accepts_and_rejects_what_the_derive_does(json in object()) {
        check(&json)?;
    }

    #[test]
    fn well_formed_frames_decode_the_same(json in plausible()) {
        check(&json)?;
    }
}

#[test]
fn errors_name_the_member_at_fault() {
    let cases = [
        (r#"{"type":"join","nick":42}"#, "member `nick`"),
        (r#"{"type":"msg","to":"bob","text":"x"}"#, "member `to`"),
        (r#"{"type":"msg","to":["bob",7],"text":"x"}"#, "member `to`"),
        (r#"{"type":"msg","text":false}"#, "member `text`"),
        (r#"{"type":7}"#, "member `type`"),
    ];
    for (json, words) in cases {
        let err = parse_payload::<ClientFrame>(json.as_bytes()).unwrap_err();
        assert!(err.to_string().contains(words), "{json}: {err}");
    }
    // A member the kind does not use is ignored, whatever its value.
    assert_eq!(
        parse_payload::<ClientFrame>(br#"{"type":"ping","nick":5,"to":{}}"#).unwrap(),
        ClientFrame::Ping
    );
}
