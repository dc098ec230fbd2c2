//! One client flooding the server with maximal recipient lists must not
//! stall anyone else: every such frame is refused with
//! `too_many_recipients` before a single name is looked up.

mod common;

use std::thread;
use std::time::Duration;

use common::{kind, Next, Server};
use serde_json::json;

/// Frames in the flood. Before the limit each one cost the room about
/// 60 ms (the names were de-duplicated by linear scans), so the flood held
/// the room for about 18 s and every ping below would have gone unanswered.
const FLOOD: usize = 300;

/// Pings the bystander sends while the flood is going on.
const PINGS: usize = 20;

/// How long one ping may wait for its pong. Far longer than a round trip
/// (well under a millisecond on loopback, and under a second with the
/// whole test suite loading both cores, where 1 s was once too short),
/// far shorter than what the flood cost the room before (about 18 s).
const PONG_WITHIN: Duration = Duration::from_secs(5);

/// A `msg` naming as many distinct unknown nicknames as fit in a default
/// frame (about 60 KB).
fn maximal_msg() -> Vec<u8> {
    let names: Vec<String> = (0..6_500).map(|i| format!("x{i}")).collect();
    let frame = json!({"type": "msg", "to": names, "text": "hi"}).to_string();
    assert!(frame.len() < 65_536, "{} bytes", frame.len());
    frame.into_bytes()
}

#[test]
fn a_flood_of_maximal_recipient_lists_does_not_stall_anyone_else() {
    // No rate limit: the flood reaches the room as fast as it can be sent.
    let server = Server::start(&["--rate", "0"]);
    let mut bystander = server.join("bystander");
    let mut attacker = server.join("attacker");
    // The attacker's own presence, which the bystander sees first.
    assert_eq!(kind(&bystander.recv_frame()), "presence");

    let payload = maximal_msg();
    let mut writer = attacker.stream().try_clone().expect("clone socket");
    let flood = thread::spawn(move || {
        use std::io::Write;
        let frame = common::frame_bytes(&payload);
        for _ in 0..FLOOD {
            writer.write_all(&frame).expect("flood");
        }
    });

    for i in 0..PINGS {
        bystander.send_frame(&json!({"type": "ping"}));
        match bystander.next_within(PONG_WITHIN) {
            Next::Frame(f) if kind(&f) == "pong" => {}
            other => panic!("ping {i} during the flood: {other:?}"),
        }
    }
    flood.join().expect("flood thread");

    // Every frame of the flood was answered, each with the cheap refusal.
    for i in 0..FLOOD {
        let message = attacker.expect_error("too_many_recipients");
        assert!(
            message.contains("at most 64") && message.contains("names 6500"),
            "frame {i}: {message}"
        );
    }
    // The bystander saw nothing of it.
    bystander.ping_pong();
}
