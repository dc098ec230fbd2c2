//! Connections that go quiet: one that never joins, one that stalls half-way
//! through a header, and joined members that stop answering pings.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{is_presence, kind, Client, Server};
use serde_json::json;

#[test]
fn connections_that_never_join_are_closed_after_the_join_timeout() {
    let server = Server::start(&["--join-timeout-ms", "1000"]);
    let mut alice = server.join("alice");
    let start = Instant::now();
    let mut silent = server.connect();
    let mut half = server.connect();
    half.send_raw(&[0, 0]);
    for c in [&mut silent, &mut half] {
        c.expect_error("timeout");
        c.expect_closed();
    }
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(1000),
        "closed after {waited:?}, before the join timeout"
    );
    // Nobody else noticed: the next thing alice hears is her own pong.
    alice.ping_pong();
    // Both are in the log and counted, the one that sent nothing too
    // (it never reached the hub: before, it was neither).
    assert!(
        server.wait_for_line("closing connection: it sent nothing", common::WAIT),
        "{}",
        server.log()
    );
    let page = server.http_get("/metrics");
    assert!(
        page.lines()
            .any(|l| l == r#"chat_disconnects_total{reason="timeout"} 2"#),
        "{page}"
    );
}

/// Read `client` until every nick in `gone` has gone offline, answering each
/// server ping at once. Returns how many pings it answered.
fn answer_pings_until_offline(client: &mut Client, gone: &[&str]) -> usize {
    let mut waiting: Vec<&str> = gone.to_vec();
    let mut pings = 0;
    for _ in 0..1000 {
        if waiting.is_empty() {
            return pings;
        }
        let frame = client.recv_frame();
        match kind(&frame) {
            "ping" => {
                pings += 1;
                client.send_frame(&json!({"type": "pong"}));
            }
            "presence" if frame["status"] == "offline" => {
                let nick = frame["nick"].as_str().unwrap_or("");
                assert!(waiting.contains(&nick), "unexpected departure: {frame}");
                waiting.retain(|n| *n != nick);
            }
            _ => panic!("unexpected frame while waiting: {frame}"),
        }
    }
    panic!("still waiting for {waiting:?} to leave");
}

#[test]
fn silent_members_are_pinged_then_closed_and_everyone_sees_them_leave() {
    let server = Server::start(&["--idle-ping-ms", "300", "--pong-timeout-ms", "1000"]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    let mut carol = server.join("carol");
    for expected in ["bob", "carol"] {
        assert!(is_presence(&alice.recv_frame(), expected, "online"));
    }
    assert!(is_presence(&bob.recv_frame(), "carol", "online"));

    // alice answers every ping on her own thread, as a live client would,
    // while bob stays silent and carol stalls half-way through a header.
    let watcher = thread::spawn(move || {
        let pings = answer_pings_until_offline(&mut alice, &["bob", "carol"]);
        (alice, pings)
    });
    carol.send_raw(&[0, 0]);
    for c in [&mut bob, &mut carol] {
        c.expect_kind("ping");
        // Both time out on the same tick, so one may see the other leave first.
        let (before, error) = c.recv_until(2, |f| kind(f) == "error");
        assert!(before.iter().all(|f| kind(f) == "presence"), "{before:?}");
        assert_eq!(error["code"], "timeout", "{error}");
        c.expect_closed();
    }
    let (mut alice, pings) = watcher.join().expect("alice's thread");
    assert!(pings >= 1, "alice was never pinged");

    // alice answered, so she stays: she is pinged again and is still served.
    alice.expect_kind("ping");
    alice.send_frame(&json!({"type": "pong"}));
    alice.send_frame(&json!({"type": "ping"}));
    let (_, pong) = alice.recv_until(10, |f| {
        assert!(kind(f) != "error", "alice was closed: {f}");
        kind(f) == "pong"
    });
    assert_eq!(kind(&pong), "pong");
}
