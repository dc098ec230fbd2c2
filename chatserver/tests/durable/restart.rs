//! A clean restart on the same directory, and rooms past the highest seq or past `--max-rooms`.

use rusqlite::Connection;
use serde_json::json;

use serde_json::Value;

use crate::common::{Client, Server};
use crate::{durable, enter_since, export, join_v2, say, stop_cleanly, str_of, u64_of, Stored};

// ---------------------------------------------------------------------
// 2. A clean restart.
// ---------------------------------------------------------------------

/// SIGTERM, then a new server on the same directory: the room's history,
/// seq and epoch and both sessions survive. bob, who left before the last
/// three messages, resumes and re-enters with `since` and the epoch: he is
/// `recovered` with exactly the three he missed. alice's message ids
/// survive too (a resend is `duplicate`), and her history still carries
/// them.
#[test]
fn a_clean_restart_keeps_history_seq_epoch_and_sessions() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = durable(dir.path(), &[]);
    let mut alice = server.connect();
    let a = join_v2(&mut alice, "alice", &["rust"], None);
    assert_eq!(a.welcome["resumed"], false, "{}", a.welcome);
    let alice_token = str_of(&a.welcome, "session").to_owned();
    let epoch = str_of(&a.entered["rust"], "epoch").to_owned();
    let mut bob = server.connect();
    let b = join_v2(&mut bob, "bob", &["rust"], None);
    let bob_token = str_of(&b.welcome, "session").to_owned();
    let p = alice.expect_kind("presence");
    assert_eq!(
        (&p["nick"], &p["status"]),
        (&json!("bob"), &json!("online"))
    );

    let mut echoes = Vec::new();
    for i in 1..=3 {
        let echo = say(
            &mut alice,
            "rust",
            &format!("before {i}"),
            &format!("a-{i}"),
        );
        let at_bob = bob.expect_kind("msg");
        assert_eq!(at_bob["seq"], echo["seq"], "{at_bob}");
        assert!(
            at_bob["id"].is_null(),
            "only the sender's copy has the id: {at_bob}"
        );
        echoes.push(echo);
    }
    let bob_since = u64_of(&echoes[2], "seq");
    drop(bob);
    let gone = alice.expect_kind("presence");
    assert_eq!(
        (&gone["nick"], &gone["status"]),
        (&json!("bob"), &json!("offline"))
    );
    assert_eq!(u64_of(&gone, "seq"), bob_since + 1);
    for i in 4..=6 {
        echoes.push(say(
            &mut alice,
            "rust",
            &format!("before {i}"),
            &format!("a-{i}"),
        ));
    }
    let a6 = u64_of(&echoes[5], "seq");

    stop_cleanly(&mut server, &mut alice);

    let stored = Stored::read(dir.path());
    stored.assert_gapless("after SIGTERM");
    let last = stored.last("rust");
    assert!(
        last >= a6,
        "the store ends at {last}, before the last echo {a6}"
    );
    assert_eq!(stored.epoch("rust"), epoch);
    assert_eq!(
        export(dir.path(), &["--room", "rust"]),
        echoes,
        "the export"
    );

    let server = durable(dir.path(), &[]);
    // bob first: he missed 4..6.
    let mut bob = server.connect();
    let b = join_v2(&mut bob, "bob", &[], Some(&bob_token));
    assert_eq!(
        b.welcome["resumed"], true,
        "bob's session survives: {}",
        b.welcome
    );
    let e = enter_since(&mut bob, "bob", "rust", bob_since, &epoch);
    let entered = &e.entered["rust"];
    assert_eq!(entered["epoch"], epoch.as_str(), "{entered}");
    assert_eq!(entered["recovered"], true, "{entered}");
    assert_eq!(
        u64_of(entered, "seq"),
        last,
        "the room's seq goes on: {entered}"
    );
    let replay: Vec<(u64, &str, &str)> = e.replay["rust"]
        .iter()
        .map(|m| {
            assert!(m["id"].is_null(), "alice's id in bob's replay: {m}");
            (u64_of(m, "seq"), str_of(m, "from"), str_of(m, "text"))
        })
        .collect();
    let missed: Vec<(u64, &str, &str)> = echoes[3..]
        .iter()
        .map(|m| (u64_of(m, "seq"), "alice", str_of(m, "text")))
        .collect();
    assert_eq!(replay, missed, "bob's replay");
    assert_eq!(u64_of(&e.presence["rust"], "seq"), last + 1);

    // alice: nothing missed; her ids are remembered.
    let mut alice = server.connect();
    let a = join_v2(&mut alice, "alice", &[], Some(&alice_token));
    assert_eq!(a.welcome["resumed"], true, "{}", a.welcome);
    let e = enter_since(&mut alice, "alice", "rust", a6, &epoch);
    assert_eq!(
        e.entered["rust"]["recovered"], true,
        "{}",
        e.entered["rust"]
    );
    assert!(
        e.replay.get("rust").is_none_or(|r| r.is_empty()),
        "{:?}",
        e.replay
    );
    assert_eq!(u64_of(&e.presence["rust"], "seq"), last + 2);
    let p = bob.expect_kind("presence");
    assert_eq!((&p["nick"], u64_of(&p, "seq")), (&json!("alice"), last + 2));
    alice.send_frame(&json!({"type": "msg", "room": "rust", "text": "before 6", "id": "a-6"}));
    let dup = alice.expect_kind("error");
    assert_eq!(dup["code"], "duplicate", "{dup}");
    assert_eq!(
        (&dup["id"], &dup["room"]),
        (&json!("a-6"), &json!("rust")),
        "{dup}"
    );
    assert_eq!(u64_of(&dup, "seq"), a6, "{dup}");
    let after = say(&mut alice, "rust", "after", "a-7");
    assert_eq!(u64_of(&after, "seq"), last + 3, "{after}");
    assert_eq!(bob.expect_kind("msg")["seq"], after["seq"]);
    echoes.push(after);

    // History from before the restart, with alice's ids on her copies.
    alice.send_frame(&json!({"type": "history", "room": "rust"}));
    let h = alice.expect_kind("history");
    assert_eq!(h["events"].as_array().map(Vec::len), Some(7), "{h}");
    for (m, echo) in h["events"].as_array().unwrap().iter().zip(&echoes) {
        assert_eq!(m["replay"], true, "{m}");
        let mut m = m.clone();
        m.as_object_mut().unwrap().remove("replay");
        assert_eq!(&m, echo, "alice's history vs her echoes");
    }
    assert_eq!(h["more"], false, "{h}");

    // A newcomer entering without since gets the newest, not recovered.
    let mut carol = server.connect();
    let c = join_v2(&mut carol, "carol", &["rust"], None);
    assert_eq!(
        c.entered["rust"]["recovered"], false,
        "{}",
        c.entered["rust"]
    );
    assert_eq!(c.entered["rust"]["epoch"], epoch.as_str());
    let seqs: Vec<u64> = c.replay["rust"].iter().map(|m| u64_of(m, "seq")).collect();
    let want: Vec<u64> = echoes.iter().map(|m| u64_of(m, "seq")).collect();
    assert_eq!(seqs, want, "carol's replay");
}

/// Only presences lie between bob's `since` and the room's first message:
/// nothing he may see was forgotten, so re-entering must be `recovered`
/// (§5.2: `since + 1 >= oldest`, `oldest` the smallest seq from which every
/// message is kept). It is on the running server; it must stay so after a
/// restart.
#[test]
fn after_a_restart_presences_before_the_first_message_are_no_gap() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = durable(dir.path(), &[]);
    let mut alice = server.connect();
    let a = join_v2(&mut alice, "alice", &["rust"], None);
    let epoch = str_of(&a.entered["rust"], "epoch").to_owned();
    let mut bob = server.connect();
    let b = join_v2(&mut bob, "bob", &["rust"], None);
    let bob_token = str_of(&b.welcome, "session").to_owned();
    let bob_since = u64_of(&b.presence["rust"], "seq");
    alice.expect_kind("presence");
    drop(bob);
    alice.expect_kind("presence");
    let m1 = say(&mut alice, "rust", "one", "a-1");
    let m2 = say(&mut alice, "rust", "two", "a-2");
    assert!(
        u64_of(&m1, "seq") > bob_since + 1,
        "a presence lies between"
    );

    // bob comes back from `since`: once before the restart, once after.
    let back = |server: &Server| {
        let mut bob = server.connect();
        let b = join_v2(&mut bob, "bob", &[], Some(&bob_token));
        assert_eq!(b.welcome["resumed"], true, "{}", b.welcome);
        let e = enter_since(&mut bob, "bob", "rust", bob_since, &epoch);
        let replay: Vec<(u64, String)> = e.replay["rust"]
            .iter()
            .map(|m| (u64_of(m, "seq"), str_of(m, "text").to_owned()))
            .collect();
        (e.entered["rust"].clone(), replay)
    };
    let want = vec![
        (u64_of(&m1, "seq"), "one".to_owned()),
        (u64_of(&m2, "seq"), "two".to_owned()),
    ];
    let (entered, replay) = back(&server);
    assert_eq!(replay, want, "bob's replay before the restart");
    assert_eq!(entered["recovered"], true, "before the restart: {entered}");
    // bob goes again (online, offline).
    alice.expect_kind("presence");
    alice.expect_kind("presence");

    stop_cleanly(&mut server, &mut alice);

    let server = durable(dir.path(), &[]);
    let (entered, replay) = back(&server);
    assert_eq!(replay, want, "bob's replay after the restart");
    assert!(
        u64_of(&entered, "oldest") <= bob_since + 1,
        "entered.oldest claims messages before the first one were forgotten: {entered}"
    );
    assert_eq!(
        entered["recovered"], true,
        "nothing was forgotten, yet not recovered after the restart: {entered}"
    );
}

/// PROTOCOL.md §5.8: a client that resumes within `resume_window_ms` of
/// the server starting again continues its session. A session whose
/// window had passed before the stop was forgotten by that server and
/// stays forgotten: its token joins as a new session (carol). One still
/// waiting for its client at the stop (dave), and one connected then
/// (bob), are resumed. The window is short (3 s) so that carol's can
/// pass; the restarted server has the default one.
#[test]
fn a_session_past_its_resume_window_at_the_stop_is_not_resumed_after_it() {
    let window = std::time::Duration::from_millis(3_000);
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = durable(dir.path(), &["--resume-window-ms", "3000"]);
    let mut bob = server.connect();
    let b = join_v2(&mut bob, "bob", &["rust"], None);
    let bob_token = str_of(&b.welcome, "session").to_owned();
    let token_of = |nick: &str, bob: &mut crate::common::Client| {
        let mut c = server.connect();
        let e = join_v2(&mut c, nick, &["rust"], None);
        let online = bob.expect_kind("presence");
        assert_eq!(
            (&online["nick"], &online["status"]),
            (&json!(nick), &json!("online"))
        );
        (c, str_of(&e.welcome, "session").to_owned())
    };
    let (carol, carol_token) = token_of("carol", &mut bob);
    let (dave, dave_token) = token_of("dave", &mut bob);
    drop(carol);
    let offline = bob.expect_kind("presence");
    assert_eq!(
        (&offline["nick"], &offline["status"]),
        (&json!("carol"), &json!("offline"))
    );
    // The server saw carol's connection end before bob heard of it: once
    // this much has passed, her window has.
    let ended = std::time::Instant::now();
    // Waiting on the clock itself, which is what is tested: bounded by
    // the window.
    for _ in 0..1_000 {
        if ended.elapsed() > window {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(ended.elapsed() > window, "the window did not pass");
    drop(dave);
    let offline = bob.expect_kind("presence");
    assert_eq!(
        (&offline["nick"], &offline["status"]),
        (&json!("dave"), &json!("offline"))
    );
    stop_cleanly(&mut server, &mut bob);

    let server = durable(dir.path(), &[]);
    let resumed = |nick: &str, token: &str| {
        let mut c = server.connect();
        let e = join_v2(&mut c, nick, &[], Some(token));
        e.welcome["resumed"].clone()
    };
    assert_eq!(
        resumed("bob", &bob_token),
        json!(true),
        "connected at the stop"
    );
    assert_eq!(
        resumed("dave", &dave_token),
        json!(true),
        "within its window at the stop"
    );
    assert_eq!(
        resumed("carol", &carol_token),
        json!(false),
        "past its window before the stop: a new session"
    );
}

/// A room at the highest seq the database can key: its next message is
/// refused with `unavailable` naming the room and the limit, and the
/// store goes on for the other rooms (it does not stay down).
#[test]
fn a_room_past_the_highest_seq_is_refused_alone() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = durable(dir.path(), &[]);
    let mut alice = server.connect();
    join_v2(&mut alice, "alice", &["rust"], None);
    say(&mut alice, "rust", "one", "a-1");
    stop_cleanly(&mut server, &mut alice);
    // As if rust had come to one below the highest seq.
    let db = Connection::open(dir.path().join(chatstore::DB_FILE)).expect("open");
    let edge = chatstore::MAX_SEQ;
    db.execute(
        "UPDATE rooms SET last_seq = ?1 WHERE name = 'rust'",
        [edge as i64 - 5],
    )
    .expect("update");
    drop(db);

    let server = durable(dir.path(), &[]);
    let mut alice = server.connect();
    join_v2(&mut alice, "alice", &["rust", "lobby"], None);
    // Messages (and any presence) take the seqs up to the highest; the
    // next message is refused.
    let mut echoed = Vec::new();
    let err = loop {
        assert!(
            echoed.len() < 6,
            "no refusal past the highest seq: {echoed:?}"
        );
        let id = format!("a-{}", echoed.len() + 2);
        alice.send_frame(&json!({"type": "msg", "room": "rust", "text": "near", "id": id}));
        let frame = loop {
            let f = alice.recv_frame();
            if f["type"] != "presence" {
                break f;
            }
        };
        match frame["type"].as_str() {
            Some("msg") => echoed.push(u64_of(&frame, "seq")),
            Some("error") => break frame,
            _ => panic!("{frame}"),
        }
    };
    assert!(
        echoed.first().is_some_and(|s| *s > edge - 5) && echoed.last() <= Some(&edge),
        "{echoed:?}"
    );
    assert_eq!(err["code"], "unavailable", "{err}");
    let text = str_of(&err, "message");
    assert!(text.contains("#rust") && text.contains("seq"), "{err}");
    // The other rooms go on, at once.
    say(&mut alice, "lobby", "still here", "a-9");
    let stored = Stored::read(dir.path());
    assert!(stored.last("rust") <= edge);
}

/// A database with more rooms than `--max-rooms` loads the most recently
/// active ones, no more than the cap, and the rest rest in the file,
/// unloaded: entering one takes it up again, same epoch and history.
/// Past `--max-stored-rooms` the least recently active are left in the
/// file unknown to the server, and the operator is told.
#[test]
fn past_max_rooms_the_least_recently_active_rooms_rest_unloaded_until_entered() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = durable(dir.path(), &[]);
    let mut alice = server.connect();
    let first = join_v2(&mut alice, "alice", &["aa", "bb", "cc"], None);
    for room in ["aa", "bb", "cc"] {
        say(
            &mut alice,
            room,
            &format!("in {room}"),
            &format!("id-{room}"),
        );
    }
    stop_cleanly(&mut server, &mut alice);
    // Activity as if bb were the least recent and aa the most (a minute
    // ago and after: retention keeps them).
    let db = Connection::open(dir.path().join(chatstore::DB_FILE)).expect("open");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let ago = now - 60_000;
    for (room, ts) in [("bb", ago), ("cc", ago + 1_000), ("aa", ago + 2_000)] {
        db.execute(
            "UPDATE chunks SET events = (SELECT json_group_array(json_set(j.value, '$[1]', ?2))
                                         FROM json_each(chunks.events) AS j)
             WHERE (id >> 40) = (SELECT no FROM rooms WHERE name = ?1)",
            rusqlite::params![room, ts],
        )
        .expect("update");
    }
    drop(db);

    let mut server = durable(dir.path(), &["--max-rooms", "2"]);
    let metric = |server: &Server, line: &str| {
        let page = server.http_get("/metrics");
        assert!(page.lines().any(|l| l == line), "no {line:?} in\n{page}");
    };
    metric(&server, "chat_rooms_unloaded 1");
    let mut bob = server.connect();
    let again = join_v2(&mut bob, "bob", &["aa", "cc"], None);
    for room in ["aa", "cc"] {
        assert_eq!(
            again.entered[room]["epoch"], first.entered[room]["epoch"],
            "#{room} was loaded"
        );
        assert!(
            u64_of(&again.entered[room], "seq") >= 2,
            "{}",
            again.entered[room]
        );
    }
    // The cap is reached: bb comes back in the place of the least recently
    // active room nobody is in, cc, which rests unloaded in its turn.
    bob.send_frame(&json!({"type": "part", "room": "cc"}));
    bob.expect_kind("presence");
    let bb = enter_since(&mut bob, "bob", "bb", 0, "not bb's epoch");
    assert_eq!(bb.entered["bb"]["epoch"], first.entered["bb"]["epoch"]);
    assert!(u64_of(&bb.entered["bb"], "seq") >= 2, "{:?}", bb.entered);
    let replay: Vec<&Value> = bb.replay["bb"].iter().map(|m| &m["text"]).collect();
    assert_eq!(replay, [&json!("in bb")], "read from the database");
    metric(&server, "chat_rooms_unloaded 1");
    metric(&server, "chat_rooms_forgotten_total 0");
    assert_eq!(server.log().matches("forgot #").count(), 0);
    stop_cleanly(&mut server, &mut bob);

    // Room for one in memory and two in the file: bb, the least recently
    // active, is left in the file unknown to the server (a start deletes
    // nothing), and entering it begins it anew.
    let server = durable(dir.path(), &["--max-rooms", "1", "--max-stored-rooms", "2"]);
    assert!(
        server.wait_for_lines("more rooms than --max-stored-rooms", 1, crate::common::WAIT),
        "{}",
        server.log()
    );
    metric(&server, "chat_rooms_forgotten_total 0");
    metric(&server, "chat_rooms_unloaded 1");
    assert_eq!(
        export(dir.path(), &["--room", "bb"]).len(),
        1,
        "bb is still in the file"
    );
    let mut carol = server.connect();
    let bb = join_v2(&mut carol, "carol", &["bb"], None);
    assert_ne!(bb.entered["bb"]["epoch"], first.entered["bb"]["epoch"]);
    assert_eq!(u64_of(&bb.entered["bb"], "seq"), 0, "{:?}", bb.entered);
    assert!(!bb.replay.contains_key("bb"), "{:?}", bb.replay);
}

/// Stamp the events stored in `dir`'s database as sent in this order (a
/// fast run can stamp several in one millisecond, and the order of
/// messages in different rooms is then unknown): `room`'s events at
/// `base` plus `per_seq` times their seq, `base` a minute ago plus
/// `offset` milliseconds.
fn stamp(dir: &std::path::Path, room: &str, offset: i64, per_seq: i64) {
    let db = Connection::open(dir.join(chatstore::DB_FILE)).expect("open");
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
        - 60_000
        + offset;
    db.execute(
        "UPDATE chunks SET events = (SELECT json_group_array(json_set(j.value, '$[1]',
                                         ?2 + ?3 * json_extract(j.value, '$[0]')))
                                     FROM json_each(chunks.events) AS j)
         WHERE (id >> 40) = (SELECT no FROM rooms WHERE name = ?1)",
        rusqlite::params![room, base, per_seq],
    )
    .expect("update");
}

/// alice, in aa and bb, says two messages in bb, then one in aa (its
/// echo returned), then bob one in bb; the server stops cleanly, and the
/// stamps are set in that order (see [`stamp`]). The directory, alice's
/// session token and aa's epoch.
fn alice_in_aa_then_bob_in_bb() -> (tempfile::TempDir, String, String, Value) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = durable(dir.path(), &[]);
    let mut alice = server.connect();
    let a = join_v2(&mut alice, "alice", &["aa", "bb"], None);
    let token = str_of(&a.welcome, "session").to_owned();
    let epoch = str_of(&a.entered["aa"], "epoch").to_owned();
    say(&mut alice, "bb", "first in bb", "id-b1");
    say(&mut alice, "bb", "second in bb", "id-b2");
    let in_aa = say(&mut alice, "aa", "in aa", "id-aa");
    let mut bob = server.connect();
    join_v2(&mut bob, "bob", &["bb"], None);
    say(&mut bob, "bb", "last in bb", "id-bob");
    alice.expect_kind("presence");
    assert_eq!(alice.expect_kind("msg")["text"], "last in bb");
    stop_cleanly(&mut server, &mut alice);
    // bb is the more recently active room (at one room in memory, aa
    // rests), and alice's newest message is hers in aa.
    stamp(dir.path(), "bb", 0, 1_000);
    stamp(dir.path(), "aa", 3_500, 0);
    (dir, token, epoch, in_aa)
}

/// A message stored before a stop whose echo its sender never saw, in a
/// room the restarted server leaves unloaded (past `--max-rooms`): the
/// sender's session comes back, enters the room again and sends it once
/// more with its id. It is a duplicate, as in a room restored loaded,
/// not a second copy, though the session's older messages in the room
/// restored loaded fill its window of ids (two here).
#[test]
fn a_resend_into_a_room_restored_unloaded_is_a_duplicate() {
    let (dir, token, epoch, quiet) = alice_in_aa_then_bob_in_bb();

    let server = durable(dir.path(), &["--max-rooms", "1", "--id-window", "2"]);
    let page = server.http_get("/metrics");
    assert!(
        page.lines().any(|l| l == "chat_rooms_unloaded 1"),
        "aa rests unloaded:\n{page}"
    );
    let mut alice = server.connect();
    let a = join_v2(&mut alice, "alice", &[], Some(&token));
    assert_eq!(a.welcome["resumed"], true, "{}", a.welcome);
    let seq = u64_of(&quiet, "seq");
    let e = enter_since(&mut alice, "alice", "aa", seq - 1, &epoch);
    assert_eq!(e.entered["aa"]["epoch"], epoch.as_str(), "{:?}", e.entered);
    alice.send_frame(&json!({"type": "msg", "room": "aa", "text": "in aa", "id": "id-aa"}));
    let dup = alice.expect_kind("error");
    assert_eq!(dup["code"], "duplicate", "{dup}");
    assert_eq!(u64_of(&dup, "seq"), seq, "{dup}");
    assert_eq!(
        export(dir.path(), &["--room", "aa"]).len(),
        1,
        "stored once"
    );
}

/// The same with both rooms loaded: a session's window of ids (two here)
/// keeps its newest messages after a restart, whichever room they are in.
/// Given room after room, the less recently active room first, alice's
/// newest id (in aa) was pushed out by her two older ones in bb, and her
/// resend of it was stored twice.
#[test]
fn a_resend_of_the_newest_message_in_a_quieter_room_is_a_duplicate_after_a_restart() {
    let (dir, token, epoch, newest) = alice_in_aa_then_bob_in_bb();

    let server = durable(dir.path(), &["--id-window", "2"]);
    let mut alice = server.connect();
    let a = join_v2(&mut alice, "alice", &[], Some(&token));
    assert_eq!(a.welcome["resumed"], true, "{}", a.welcome);
    let seq = u64_of(&newest, "seq");
    enter_since(&mut alice, "alice", "aa", seq, &epoch);
    alice.send_frame(&json!({"type": "msg", "room": "aa", "text": "in aa", "id": "id-aa"}));
    let dup = alice.expect_kind("error");
    assert_eq!(dup["code"], "duplicate", "{dup}");
    assert_eq!(u64_of(&dup, "seq"), seq, "{dup}");
}

/// A room forgotten at the caps (here nothing is unloaded: the database
/// keeps no more rooms than memory) is warned of when it held a message,
/// whose history is deleted; one where only presence came to pass is
/// not (nothing anyone reads is lost).
#[test]
fn a_forgotten_room_is_warned_of_only_when_it_held_a_message() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let server = durable(dir.path(), &["--max-rooms", "1", "--max-stored-rooms", "1"]);
    let mut alice = server.connect();
    join_v2(&mut alice, "alice", &["quiet"], None);
    for (room, next) in [("quiet", "said"), ("said", "third")] {
        if room == "said" {
            say(&mut alice, "said", "hello", "id-1");
        }
        alice.send_frame(&json!({"type": "part", "room": room}));
        alice.expect_kind("presence");
        alice.send_frame(&json!({"type": "enter", "room": next}));
        alice.expect_kind("entered");
        alice.expect_kind("presence");
    }
    assert!(
        server.wait_for_lines("forgot #said", 1, crate::common::WAIT),
        "{}",
        server.log()
    );
    let log = server.log();
    assert!(!log.contains("forgot #quiet"), "{log}");
    let page = server.http_get("/metrics");
    assert!(
        page.lines().any(|l| l == "chat_rooms_forgotten_total 2"),
        "{page}"
    );
}

/// alice's message whose echo she never saw, then more messages of
/// bob's in the room than `--history-per-room` (2 here; 2,048 by
/// default), then a clean restart. Her session comes back (her window of
/// ids, 1,024, held one id: hers) and she sends the message again under
/// its id: it must be `duplicate`, not a second copy. `store::restore`
/// gave the core the ids of a loaded room's newest `--history-per-room`
/// messages only (and of a room left unloaded, its newest `--id-window`
/// messages of anyone), so her id was not among them and the message was
/// stored twice; it now gives each session the ids it remembered when it
/// lost its connection, which the store keeps with the session.
#[test]
fn a_resend_behind_more_than_history_per_room_messages_is_a_duplicate_after_a_restart() {
    resend_after_restart(&["--history-per-room", "2"], 3);
}

/// The same with the default `--history-per-room` (2,048): 2,049
/// messages of bob's after alice's (`--rate 0` only so that the test
/// sends them fast; a room of 17 messages a second does it within the
/// default two-minute resume window).
#[test]
fn a_resend_behind_2049_messages_is_a_duplicate_after_a_restart_with_the_defaults() {
    resend_after_restart(&["--rate", "0"], 2_049);
}

fn resend_after_restart(args: &[&str], others: usize) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = durable(dir.path(), args);
    let (mut bob, epoch, token) = sent_and_gone(&mut server, "rust");
    for i in 1..=others {
        say(&mut bob, "rust", &format!("bob {i}"), &format!("b-{i}"));
    }
    stop_cleanly(&mut server, &mut bob);

    let server = durable(dir.path(), args);
    let mut alice = server.connect();
    let a = join_v2(&mut alice, "alice", &[], Some(&token));
    assert_eq!(a.welcome["resumed"], true, "{}", a.welcome);
    enter_since(&mut alice, "alice", "rust", 0, &epoch);
    resend_is_a_duplicate(&mut alice, dir.path(), "rust", "only once", "a-1");
}

/// The same for a room the restarted server leaves unloaded
/// (`--max-rooms 1`): `store::restore` read its newest `--id-window`
/// messages of anyone (2 here), bob's, and alice's id (the only one her
/// window of two held) was not given back.
#[test]
fn a_resend_into_a_room_restored_unloaded_behind_others_messages_is_a_duplicate() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let args = ["--max-rooms", "1", "--id-window", "2"];
    let mut server = durable(dir.path(), &["--id-window", "2"]);
    let (mut bob, epoch, token) = sent_and_gone(&mut server, "aa");
    say(&mut bob, "aa", "bob 1", "b-1");
    say(&mut bob, "aa", "bob 2", "b-2");
    bob.send_frame(&json!({"type": "part", "room": "aa"}));
    bob.expect_kind("presence");
    bob.send_frame(&json!({"type": "enter", "room": "bb"}));
    bob.expect_kind("entered");
    bob.expect_kind("presence");
    say(&mut bob, "bb", "bob in bb", "b-3");
    stop_cleanly(&mut server, &mut bob);

    let server = durable(dir.path(), &args);
    let page = server.http_get("/metrics");
    assert!(
        page.lines().any(|l| l == "chat_rooms_unloaded 1"),
        "aa rests unloaded:\n{page}"
    );
    let mut alice = server.connect();
    let a = join_v2(&mut alice, "alice", &[], Some(&token));
    assert_eq!(a.welcome["resumed"], true, "{}", a.welcome);
    enter_since(&mut alice, "alice", "aa", 0, &epoch);
    resend_is_a_duplicate(&mut alice, dir.path(), "aa", "only once", "a-1");
}

/// Ids were given back only for messages of the last resume window
/// before the newest message anywhere, but a session
/// stays resumable for a resume window from when its connection was
/// found gone, which can be a ping timeout after its last message.
/// alice sends a message and her link dies silently (she reads nothing,
/// answers no ping); the server closes her connection a ping timeout
/// later; bob talks on; the server stops cleanly while her session can
/// still be resumed. After the restart she resumes and sends it again:
/// it must be `duplicate`. Scaled down (resume window 2 s, ping after
/// 1.5 s idle, 1.5 s for the pong); with the defaults the same happens
/// to a stop between 120 and 160 s after the message. Her room is
/// restored unloaded (`--max-rooms 1` at the restart; bob talked in
/// another): a room restored loaded gave the ids of all its messages
/// kept in memory whenever they were sent.
#[test]
fn a_resend_from_a_session_found_gone_late_is_a_duplicate_after_a_restart() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().expect("temporary directory");
    let args = [
        "--resume-window-ms",
        "2000",
        "--idle-ping-ms",
        "1500",
        "--pong-timeout-ms",
        "1500",
    ];
    let mut server = durable(dir.path(), &args);
    let mut bob = server.connect();
    let b = join_v2(&mut bob, "bob", &["rust", "bb"], None);
    let epoch = str_of(&b.entered["rust"], "epoch").to_owned();
    let mut alice = server.connect();
    let a = join_v2(&mut alice, "alice", &["rust"], None);
    let token = str_of(&a.welcome, "session").to_owned();
    let sent = Instant::now();
    alice.send_frame(&json!({"type": "msg", "room": "rust", "text": "only once", "id": "a-1"}));
    // alice reads nothing more and answers no ping.
    let mut gone = false;
    let mut i = 0;
    loop {
        i += 1;
        bob.send_frame(&json!({"type": "msg", "room": "bb", "text": format!("tick {i}"), "id": format!("b-{i}")}));
        loop {
            let f = bob.recv_frame();
            if f["type"] == "presence" && f["nick"] == "alice" && f["status"] == "offline" {
                gone = true;
            }
            if f["type"] == "msg" && f["id"] == format!("b-{i}") {
                break;
            }
        }
        if gone && sent.elapsed() > Duration::from_millis(2_300) {
            break;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "alice was never found gone"
        );
        std::thread::sleep(Duration::from_millis(400));
    }
    drop(alice);
    stop_cleanly(&mut server, &mut bob);

    let mut restarted: Vec<&str> = args.to_vec();
    restarted.extend(["--max-rooms", "1"]);
    let server = durable(dir.path(), &restarted);
    let page = server.http_get("/metrics");
    assert!(
        page.lines().any(|l| l == "chat_rooms_unloaded 1"),
        "rust rests unloaded:\n{page}"
    );
    let mut alice = server.connect();
    let a = join_v2(&mut alice, "alice", &[], Some(&token));
    assert_eq!(
        a.welcome["resumed"], true,
        "her session comes back: {}",
        a.welcome
    );
    enter_since(&mut alice, "alice", "rust", 0, &epoch);
    resend_is_a_duplicate(&mut alice, dir.path(), "rust", "only once", "a-1");
}

// A restored window keeps the order the session sent its ids in, across
// rooms (a reviewer's finding: it was the rooms' names' order, and the
// session's newest id, in "aa", went before its older one, in "zz", at its
// next new message).
#[test]
fn a_restored_window_keeps_the_newest_across_rooms() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let args = ["--id-window", "2", "--resume-window-ms", "2000"];
    let mut server = durable(dir.path(), &args);
    let mut bob = server.connect();
    join_v2(&mut bob, "bob", &["bb"], None);
    let mut alice = server.connect();
    let a = join_v2(&mut alice, "alice", &["aa", "zz"], None);
    let token = str_of(&a.welcome, "session").to_owned();
    let epoch_aa = str_of(&a.entered["aa"], "epoch").to_owned();
    let epoch_zz = str_of(&a.entered["zz"], "epoch").to_owned();
    say(&mut alice, "zz", "older", "z-1");
    say(&mut alice, "aa", "newest", "a-1");
    // Past the resume window before the newest message anywhere, so the
    // "recent" fallback does not reorder.
    std::thread::sleep(std::time::Duration::from_millis(2_300));
    say(&mut bob, "bb", "later", "b-1");
    stop_cleanly(&mut server, &mut bob);
    drop(alice);

    let server = durable(dir.path(), &args);
    let mut alice = server.connect();
    let a = join_v2(&mut alice, "alice", &[], Some(&token));
    assert_eq!(a.welcome["resumed"], true, "{}", a.welcome);
    enter_since(&mut alice, "alice", "zz", 0, &epoch_zz);
    enter_since(&mut alice, "alice", "aa", 0, &epoch_aa);
    // One new message: a window of 2 now holds a-1 and n-1.
    say(&mut alice, "zz", "new", "n-1");
    resend_is_a_duplicate(&mut alice, dir.path(), "aa", "newest", "a-1");
}

// Resumed after a restart, its connection lost again without sending, a
// second clean restart: the session's list survives (a reviewer's test).
#[test]
fn a_resend_across_two_restarts_is_a_duplicate() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let args = ["--history-per-room", "2"];
    let mut server = durable(dir.path(), &args);
    let (mut bob, epoch, token) = sent_and_gone(&mut server, "rust");
    for i in 1..=3 {
        say(&mut bob, "rust", &format!("bob {i}"), &format!("b-{i}"));
    }
    stop_cleanly(&mut server, &mut bob);

    // First restart: alice resumes, sends nothing, loses her connection.
    let mut server = durable(dir.path(), &args);
    let mut bob = server.connect();
    join_v2(&mut bob, "bob2", &["other"], None);
    let mut alice = server.connect();
    let a = join_v2(&mut alice, "alice", &[], Some(&token));
    assert_eq!(a.welcome["resumed"], true, "{}", a.welcome);
    drop(alice);
    // Her connection is closed once the server counts bob2's alone (a
    // stop while she was still connected would write her list too).
    let open = r#"chat_connections{transport="tcp"} 1"#;
    for tries in 0.. {
        if server.http_get("/metrics").lines().any(|l| l == open) {
            break;
        }
        assert!(tries < 200, "alice's connection was never closed");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    say(&mut bob, "other", "tick", "t-1");
    stop_cleanly(&mut server, &mut bob);

    // Second restart.
    let server = durable(dir.path(), &args);
    let mut alice = server.connect();
    let a = join_v2(&mut alice, "alice", &[], Some(&token));
    assert_eq!(a.welcome["resumed"], true, "{}", a.welcome);
    enter_since(&mut alice, "alice", "rust", 0, &epoch);
    resend_is_a_duplicate(&mut alice, dir.path(), "rust", "only once", "a-1");
}

/// `client` sends `text` into `room` again under `id`, after a restart:
/// it must be answered `duplicate`, and the room's history in `dir` hold
/// the message once.
fn resend_is_a_duplicate(
    client: &mut Client,
    dir: &std::path::Path,
    room: &str,
    text: &str,
    id: &str,
) {
    client.send_frame(&json!({"type": "msg", "room": room, "text": text, "id": id}));
    let answer = loop {
        let f = client.recv_frame();
        if f["type"] == "error" || (f["type"] == "msg" && f["id"] == id && f["replay"].is_null()) {
            break f;
        }
    };
    let copies = export(dir, &["--room", room])
        .into_iter()
        .filter(|m| m["text"] == text)
        .count();
    assert_eq!(
        (answer["code"].as_str(), copies),
        (Some("duplicate"), 1),
        "the resend was answered {answer}; stored {copies} times"
    );
}

/// bob and alice in `room`; alice's message "only once" (id `a-1`) goes
/// out and her connection drops before she reads its echo (bob has seen
/// it and her leaving). Returns bob, the room's epoch and her session's
/// token.
fn sent_and_gone(server: &mut Server, room: &str) -> (Client, String, String) {
    let mut bob = server.connect();
    let b = join_v2(&mut bob, "bob", &[room], None);
    let epoch = str_of(&b.entered[room], "epoch").to_owned();
    let mut alice = server.connect();
    let a = join_v2(&mut alice, "alice", &[room], None);
    let token = str_of(&a.welcome, "session").to_owned();
    alice.send_frame(&json!({"type": "msg", "room": room, "text": "only once", "id": "a-1"}));
    loop {
        let m = bob.recv_frame();
        if m["type"] == "msg" && m["text"] == "only once" {
            break;
        }
    }
    drop(alice);
    let gone = bob.expect_kind("presence");
    assert_eq!(gone["status"], "offline", "{gone}");
    (bob, epoch, token)
}

/// A session the database holds that the core refuses at start (its
/// nickname is not one `--ascii-nicks` allows) is said in the log, with
/// which session and why, and the server starts without it; the others
/// are restored. It was skipped without a word, and still counted among
/// the sessions restored.
#[test]
fn a_stored_session_refused_at_start_is_logged_and_the_rest_restored() {
    use chatproto::{hash_token, Record, SessionId};
    let dir = tempfile::tempdir().expect("temporary directory");
    {
        let mut store =
            chatstore::Store::open(dir.path(), chatstore::Sync::Normal).expect("the store");
        store
            .append(&[
                Record::session(SessionId(1), "José", hash_token("tok-j")),
                Record::session(SessionId(2), "bob", hash_token("tok-b")),
                Record::attached(SessionId(1), false),
                Record::attached(SessionId(2), false),
            ])
            .expect("stored");
    }
    let server = durable(dir.path(), &["--ascii-nicks"]);
    assert!(
        server.wait_for_line("was not restored", crate::common::WAIT),
        "{}",
        server.log()
    );
    let log = server.log();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("was not restored"))
        .collect();
    assert_eq!(said.len(), 1, "{log}");
    assert!(
        said[0].contains("WARN") && said[0].contains("session s1") && said[0].contains("nickname"),
        "{log}"
    );
    let open = log
        .lines()
        .find(|l| l.contains("history database open"))
        .expect("the database opened");
    assert!(open.contains("sessions=1"), "{open}");
    // The server goes on: bob resumes.
    let mut bob = server.connect();
    let b = join_v2(&mut bob, "bob", &[], Some("tok-b"));
    assert_eq!(b.welcome["resumed"], true, "{}", b.welcome);
}
