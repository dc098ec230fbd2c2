//! Retention: a full store recovers once it frees room, and deleted messages are not served.

use std::time::Duration;

use serde_json::json;

use crate::common::{kind, WAIT};
use crate::{durable, export, join_v2, say, str_of, u64_of};

/// A full store works again once retention has freed room: the server
/// notices by itself (it tries the refused batch each second), and the
/// next message takes the next seq; after a restart on the same
/// directory, seqs go on from there.
#[test]
fn a_full_store_takes_messages_again_once_retention_frees_room() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let flags = &[
        "--store-max-mib",
        "1",
        "--rate",
        "0",
        "--history-max-messages",
        "5",
        "--history-prune-every-secs",
        "1",
    ];
    let mut server = durable(dir.path(), flags);
    let mut alice = server.connect();
    join_v2(&mut alice, "alice", &["lobby"], None);
    let mut last = 0;
    let mut full = false;
    for i in 0..200 {
        let text = format!("{i:03} {}", "z".repeat(30_000));
        alice.send_frame(
            &json!({"type": "msg", "room": "lobby", "text": text, "id": format!("m-{i}")}),
        );
        let f = alice.recv_frame();
        if kind(&f) == "error" {
            assert_eq!(f["code"], "unavailable", "{f}");
            full = true;
            break;
        }
        last = u64_of(&f, "seq");
    }
    assert!(full, "1 MiB never filled up");
    assert!(
        server.wait_for_line("messages are taken again", Duration::from_secs(20)),
        "the store never recovered; log:\n{}",
        server.log()
    );
    let echo = say(&mut alice, "lobby", "after", "a-1");
    assert_eq!(u64_of(&echo, "seq"), last + 1, "{echo}");
    // Retention kept the newest five of the room, then the new one.
    let texts: Vec<String> = export(dir.path(), &["--room", "lobby"])
        .iter()
        .map(|m| str_of(m, "text").chars().take(5).collect())
        .collect();
    assert!(
        texts.len() <= 6 && texts.last().map(String::as_str) == Some("after"),
        "{texts:?}"
    );

    // A restart on the same directory, with the same flags: the room's
    // seq goes on after everything stored (a seq given again would fail
    // to store, and the message would be refused), and the store takes
    // messages at once.
    let after = u64_of(&echo, "seq");
    drop(alice);
    server.sigterm();
    assert!(server.wait_exit(WAIT).success());
    let server = durable(dir.path(), flags);
    let mut alice = server.connect();
    join_v2(&mut alice, "alice", &["lobby"], None);
    let echo = say(&mut alice, "lobby", "restarted", "r-1");
    assert!(u64_of(&echo, "seq") > after, "{echo}");
    let stored = export(dir.path(), &["--room", "lobby"]);
    assert_eq!(
        stored.last().map(|m| str_of(m, "text")),
        Some("restarted"),
        "{stored:?}"
    );
}

/// What retention deleted is served no more, though the server still held
/// it in memory: a newcomer's replay, `entered.oldest` and a history page
/// start where the stored history now starts. The first pass runs at
/// start, so a restart with a stricter limit serves nothing past it.
#[test]
fn messages_retention_deleted_are_not_served_from_memory() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = durable(dir.path(), &["--rate", "0"]);
    let mut alice = server.connect();
    join_v2(&mut alice, "alice", &["lobby"], None);
    let seqs: Vec<u64> = (0..10)
        .map(|i| {
            u64_of(
                &say(&mut alice, "lobby", &format!("m{i}"), &format!("m-{i}")),
                "seq",
            )
        })
        .collect();
    // Her leaving is stored before the stop: her own `offline` comes only
    // once it is (a dropped connection raced the SIGTERM, and a shutdown
    // stores no departure, so the store kept m7 too now and then).
    alice.send_frame(&json!({"type": "part", "room": "lobby"}));
    let left = alice.expect_kind("presence");
    assert_eq!(str_of(&left, "status"), "offline", "{left}");
    drop(alice);
    server.sigterm();
    assert!(server.wait_exit(WAIT).success());

    // Restarted keeping three events a room (alice's leaving is one).
    let flags = &[
        "--history-max-messages",
        "3",
        "--history-prune-every-secs",
        "3600",
    ];
    let server = durable(dir.path(), flags);
    assert!(
        server.wait_for_line("retention deleted old events", Duration::from_secs(20)),
        "no retention pass at start; log:\n{}",
        server.log()
    );
    let stored: Vec<String> = export(dir.path(), &["--room", "lobby"])
        .iter()
        .map(|m| str_of(m, "text").to_owned())
        .collect();
    assert_eq!(
        stored,
        ["m8", "m9"],
        "the store keeps the newest three events"
    );

    let mut bob = server.connect();
    let b = join_v2(&mut bob, "bob", &["lobby"], None);
    assert_eq!(
        u64_of(&b.entered["lobby"], "oldest"),
        seqs[8],
        "{:?}",
        b.entered
    );
    let replay: Vec<&str> = b.replay["lobby"]
        .iter()
        .map(|m| str_of(m, "text"))
        .collect();
    assert_eq!(replay, ["m8", "m9"]);
    bob.send_frame(&json!({"type": "history", "room": "lobby"}));
    let h = bob.expect_kind("history");
    let page: Vec<&str> = h["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|m| str_of(m, "text"))
        .collect();
    assert_eq!((page, &h["more"]), (vec!["m8", "m9"], &json!(false)), "{h}");
}
