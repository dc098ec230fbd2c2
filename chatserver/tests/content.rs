//! What a client puts in a frame: nicknames that could deceive are refused,
//! text is delivered exactly as sent, and the room stamps `from` and `seq`.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{is_presence, kind, Server};
use serde_json::json;

/// Nicknames that must be refused, each with what makes it deceptive.
const DECEPTIVE_NICKS: &[(&str, &str)] = &[
    ("eve\u{1b}[2J", "ESC (terminal escape)"),
    ("eve\u{7}", "C0 control BEL"),
    ("eve\u{0}", "C0 control NUL"),
    ("eve\u{7f}", "DEL"),
    ("eve\u{85}", "C1 control NEL"),
    ("eve\u{9b}31m", "C1 control CSI"),
    ("eve\u{202e}evil", "bidi override RLO"),
    ("eve\u{2066}x", "bidi isolate LRI"),
    ("e\u{200b}ve", "zero-width space"),
    ("e\u{200d}ve", "zero-width joiner"),
    ("\u{feff}eve", "zero-width no-break space"),
    ("b\u{43e}b", "Cyrillic o in bob"),
    ("bob\u{301}", "combining accent"),
    ("b0b", "look-alike of bob, who is online"),
    ("B0B", "look-alike of bob in capitals"),
];

#[test]
fn deceptive_nicknames_are_nick_invalid() {
    let server = Server::start(&[]);
    let mut bob = server.join("bob");
    let mut eve = server.connect();
    for (nick, what) in DECEPTIVE_NICKS {
        eve.send_frame(&json!({"type": "join", "nick": nick}));
        let frame = eve.expect_kind("error");
        assert_eq!(frame["code"], "nick_invalid", "{what}: {frame}");
    }
    // The look-alike refusal names whom it looks like.
    eve.send_frame(&json!({"type": "join", "nick": "b0b"}));
    assert!(eve.expect_error("nick_invalid").contains("bob"));
    // Refusals do not close the connection, and nobody saw them.
    eve.join("eve");
    let seen = bob.recv_frame();
    assert!(is_presence(&seen, "eve", "online"), "{seen}");
}

/// Text that would repaint, reorder or hide things on a terminal.
const HOSTILE_TEXT: &str = "\u{1b}[2J\u{1b}]0;owned\u{7}\u{0}\u{8}\r\n\t\u{7f}\u{85}\u{9b}31m\
                            \u{202e}txet\u{202c}\u{2066}x\u{2069}\u{200b}\u{feff}end";

#[test]
fn text_with_controls_is_delivered_exactly_as_sent() {
    let server = Server::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.expect_kind("presence");
    for to in [json!([]), json!(["bob"])] {
        alice.send_frame(&json!({"type": "msg", "to": to, "text": HOSTILE_TEXT}));
        for reader in [&mut bob, &mut alice] {
            let m = reader.expect_kind("msg");
            let got = m["text"].as_str().expect("text");
            assert_eq!(
                got.as_bytes(),
                HOSTILE_TEXT.as_bytes(),
                "text changed in transit"
            );
        }
    }
}

#[test]
fn from_seq_and_ts_sent_by_a_client_are_ignored() {
    let server = Server::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    let joined = alice.recv_frame();
    assert!(is_presence(&joined, "bob", "online"));
    let last_seq = joined["seq"].as_u64().expect("seq");
    alice.send_frame(&json!({
        "type": "msg",
        "text": "trust me",
        "from": "bob",
        "seq": 1_000_000,
        "ts": 1,
    }));
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    for reader in [&mut bob, &mut alice] {
        let m = reader.recv_frame();
        assert_eq!(kind(&m), "msg", "{m}");
        assert_eq!(m["from"], "alice", "{m}");
        assert_eq!(m["seq"], last_seq + 1, "{m}");
        let ts = m["ts"].as_u64().expect("ts");
        assert!(
            ts.abs_diff(now_ms) < 60_000,
            "ts {ts} is not the server's clock"
        );
    }
}
