//! History older than the server keeps in memory comes from the database:
//! a `history` page reaches back to the first message, and what the client
//! is sent meanwhile comes after the page, in order.

mod common;

use common::{kind, Server};
use serde_json::{json, Value};

fn texts(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["text"].as_str().expect("text").to_owned())
        .collect()
}

#[test]
fn a_history_page_reaches_past_memory_into_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path");
    let server = Server::start(&["--data-dir", data, "--history-per-room", "4", "--rate", "0"]);
    let mut alice = server.join("alice");
    for n in 0..30 {
        alice.send_frame(&json!({"type": "msg", "room": "lobby", "text": format!("m{n}"), "id": format!("i{n}")}));
    }
    for n in 0..30 {
        let echo = alice.expect_kind("msg");
        assert_eq!(echo["text"], format!("m{n}"));
    }
    let mut bob = server.join("bob");
    // A page, then a ping at once: the pong comes after the page.
    bob.send_frame(&json!({"type": "history", "room": "lobby", "limit": 20}));
    bob.send_frame(&json!({"type": "ping"}));
    let page = bob.expect_kind("history");
    let want: Vec<String> = (10..30).map(|n| format!("m{n}")).collect();
    assert_eq!(texts(&page), want);
    assert_eq!(page["more"], true);
    assert!(page["events"][0]["replay"] == true);
    bob.expect_kind("pong");
    // Paging back to the first message.
    let before = page["events"][0]["seq"].clone();
    bob.send_frame(&json!({"type": "history", "room": "lobby", "before": before, "limit": 50}));
    let page = bob.expect_kind("history");
    let want: Vec<String> = (0..10).map(|n| format!("m{n}")).collect();
    assert_eq!(texts(&page), want);
    assert_eq!(page["more"], false);
    // Only alice's own copies carry her ids.
    assert!(page["events"][0].get("id").is_none());
    alice.send_frame(&json!({"type": "history", "room": "lobby", "limit": 1, "before": 3}));
    let mine = alice.recv_until(40, |f| kind(f) == "history").1;
    assert_eq!(mine["events"][0]["id"], "i0");
}

/// In the database, a room where alice said one thing to everyone and then
/// 100 things to bob: carol's pages look at 30 events each, come back
/// empty with where to go on from, and reach alice's one message.
#[test]
fn pages_of_the_database_look_at_a_bounded_stretch_and_go_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path");
    let flags = [
        "--data-dir",
        data,
        "--history-per-room",
        "4",
        "--history-scan",
        "30",
    ];
    let server = Server::start(&[&flags[..], &["--rate", "0"]].concat());
    let mut alice = server.join("alice");
    let _bob = server.join("bob");
    alice.send_frame(&json!({"type": "msg", "text": "to all"}));
    for n in 0..100 {
        alice.send_frame(&json!({"type": "msg", "to": ["bob"], "text": format!("p{n}")}));
    }
    alice.recv_until(200, |f| f["text"] == "p99");
    let mut carol = server.join("carol");
    let mut before: Option<u64> = None;
    // Bounded: about 105 events, 30 a page; each page before the last is
    // empty.
    for empty in 0..10 {
        let mut ask = json!({"type": "history", "room": "lobby", "limit": 10});
        if let Some(b) = before {
            ask["before"] = json!(b);
        }
        carol.send_frame(&ask);
        let page = carol.expect_kind("history");
        if page["more"] == false {
            assert_eq!(texts(&page), ["to all"]);
            assert!(page.get("before").is_none(), "{page}");
            assert!((3..=4).contains(&empty), "{empty} empty pages before it");
            return;
        }
        assert!(texts(&page).is_empty(), "nothing to bob for carol: {page}");
        let next = page["before"]
            .as_u64()
            .expect("a page with more says where to go on");
        assert!(before.is_none_or(|b| next < b), "{next} after {before:?}");
        before = Some(next);
    }
    panic!("paging did not reach alice's message");
}

/// Forty pages past memory asked at once, with pings among them: more
/// reads than a client may have waiting (the rest wait in its socket), all
/// answered, each where it was asked.
#[test]
fn many_pages_asked_at_once_are_answered_in_order_among_the_other_frames() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path");
    let server = Server::start(&["--data-dir", data, "--history-per-room", "4", "--rate", "0"]);
    let mut alice = server.join("alice");
    for n in 0..30 {
        alice.send_frame(&json!({"type": "msg", "text": format!("m{n}")}));
    }
    alice.recv_until(40, |f| f["text"] == "m29");
    let mut bob = server.join("bob");
    const PAGES: usize = 40;
    for k in 0..PAGES {
        bob.send_frame(&json!({"type": "history", "room": "lobby", "limit": k % 20 + 5}));
        if k % 8 == 7 {
            bob.send_frame(&json!({"type": "ping"}));
        }
    }
    for k in 0..PAGES {
        let page = bob.expect_kind("history");
        let want: Vec<String> = (30 - (k % 20 + 5)..30).map(|n| format!("m{n}")).collect();
        assert_eq!(texts(&page), want, "page {k}");
        if k % 8 == 7 {
            bob.expect_kind("pong");
        }
    }
    bob.ping_pong();
}

/// A `chat.db` that holds nothing (a copy made without its `chat.db-wal`
/// while a server wrote) is begun anew, and the log warns about it: an
/// operator restoring such a backup learns it held no history. A new
/// data directory is no news.
#[test]
fn a_history_begun_in_an_empty_database_file_is_warned_about() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = rusqlite::Connection::open(dir.path().join("chat.db")).expect("sqlite");
    db.pragma_update(None, "journal_mode", "WAL").expect("wal");
    drop(db);
    let data = dir.path().to_str().expect("utf-8 path");
    let warning = "the database file was there but held nothing";
    let server = Server::start(&["--data-dir", data]);
    assert!(
        server.wait_for_line(warning, common::WAIT),
        "{}",
        server.log()
    );
    server.join("alice").ping_pong();
    let fresh = tempfile::tempdir().expect("tempdir");
    let data = fresh.path().join("data");
    let server = Server::start(&["--data-dir", data.to_str().expect("utf-8 path")]);
    assert!(
        server.wait_for_line("history database open", common::WAIT),
        "{}",
        server.log()
    );
    server.join("alice").ping_pong();
    // Logged after everything the start logs, on the same stream.
    assert!(
        server.wait_for_line("nick=alice", common::WAIT),
        "{}",
        server.log()
    );
    assert!(!server.log().contains(warning), "{}", server.log());
}
