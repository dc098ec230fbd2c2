//! Members that vanish rudely: mid-frame, by reset, by half-close. Each is
//! cleaned up at once: the others see it go offline, and its place under
//! `--max-clients` is free again.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{is_presence, kind, Client, Next, Server, WAIT};
use serde_json::{json, Value};

/// Two places, so the leaver's place must come back for `next` to join; and
/// pings far off, so no ping timeout can explain a departure.
fn server() -> Server {
    Server::start(&["--max-clients", "2", "--idle-ping-ms", "60000"])
}

/// Join as `nick`, retrying while the server is still full. The place of a
/// client that just left is given back when its connection task finishes,
/// a moment after the room has seen it go.
fn join_when_admitted(server: &Server, nick: &str) -> Client {
    let deadline = Instant::now() + WAIT;
    for _ in 0..500 {
        let mut c = server.connect();
        c.send_frame(&json!({"type": "join", "nick": nick}));
        match c.next() {
            Next::Frame(f) if kind(&f) == "welcome" => {
                c.expect_kind("presence");
                return c;
            }
            Next::Frame(f) => assert_eq!(f["code"], "server_full", "{f}"),
            Next::Eof | Next::Reset => {}
            Next::TimedOut => panic!("no answer to join"),
        }
        assert!(Instant::now() < deadline, "the server stayed full");
        thread::sleep(Duration::from_millis(20));
    }
    panic!("the server stayed full");
}

/// `leave` makes `gone` vanish; the watcher must see it go offline as the
/// very next thing, and a new client must then fit under the cap.
fn vanishes_cleanly(leave: impl FnOnce(Client)) {
    let server = server();
    let mut watcher = server.join("watcher");
    let gone = server.join("gone");
    assert!(is_presence(&watcher.recv_frame(), "gone", "online"));
    leave(gone);
    let frame = watcher.recv_frame();
    assert!(is_presence(&frame, "gone", "offline"), "{frame}");
    let _next = join_when_admitted(&server, "next");
    let frame = watcher.recv_frame();
    assert!(is_presence(&frame, "next", "online"), "{frame}");
}

#[test]
fn disconnect_mid_frame() {
    vanishes_cleanly(|mut gone| {
        // A header announcing 100 bytes, then 10 of them, then FIN.
        gone.send_raw(&100u32.to_be_bytes());
        gone.send_raw(br#"{"type":"m"#);
    });
}

#[test]
fn connection_reset() {
    vanishes_cleanly(|gone| {
        // Linger 0: close sends RST instead of FIN.
        socket2::SockRef::from(gone.stream())
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER");
    });
}

#[test]
fn half_close() {
    let server = server();
    let mut watcher = server.join("watcher");
    let mut gone = server.join("gone");
    assert!(is_presence(&watcher.recv_frame(), "gone", "online"));
    gone.shutdown_write();
    let frame = watcher.recv_frame();
    assert!(is_presence(&frame, "gone", "offline"), "{frame}");
    // The server finishes its side too rather than keep a half-open socket.
    gone.expect_closed();
    let _next = join_when_admitted(&server, "next");
    assert!(is_presence(&watcher.recv_frame(), "next", "online"));
}

/// A connection lost without the server noticing (no FIN, no reset: the
/// socket here simply stays open and silent) does not keep its session's
/// nickname from the client coming back: a resume with the session's
/// token takes the session over at once. The old connection is told
/// `resumed_elsewhere` and closed; the others see the session go and
/// come back, each once; the messages said meanwhile are replayed.
#[test]
fn a_resume_takes_over_a_connection_the_server_thinks_alive() {
    let server = Server::start(&["--idle-ping-ms", "60000"]);
    let mut lost = server.connect();
    lost.send_frame(&json!({"type": "join", "nick": "alice", "rooms": ["lobby"]}));
    let welcome = lost.expect_kind("welcome");
    let (_, entered) = lost.recv_until(10, |f| kind(f) == "entered");
    let (epoch, seq) = (entered["epoch"].clone(), entered["seq"].clone());
    let mut bob = server.join("bob");
    bob.say("said while alice was away");
    bob.recv_until(10, |f| kind(f) == "msg");

    let mut back = server.connect();
    back.send_frame(&json!({
        "type": "join", "nick": "alice", "rooms": [], "resume": welcome["session"]
    }));
    let resumed = back.expect_kind("welcome");
    assert_eq!(resumed["resumed"], true, "{resumed}");
    let (_, error) = lost.recv_until(10, |f| kind(f) == "error");
    assert_eq!(error["code"], "resumed_elsewhere", "{error}");
    lost.expect_closed();

    back.send_frame(&json!({"type": "enter", "room": "lobby", "since": seq, "epoch": epoch}));
    let (replay, _) = back.recv_until(20, |f| is_presence(f, "alice", "online"));
    let entered = &replay[0];
    assert_eq!(entered["recovered"], true, "{entered}");
    let texts: Vec<&str> = replay.iter().filter_map(|f| f["text"].as_str()).collect();
    assert_eq!(texts, ["said while alice was away"]);

    let (mut seen, last) = bob.recv_until(10, |f| is_presence(f, "alice", "online"));
    seen.push(last);
    let alice: Vec<&str> = seen
        .iter()
        .filter(|f| kind(f) == "presence" && f["nick"] == "alice")
        .map(|f| f["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(alice, ["offline", "online"]);
}

/// A reconnect attempt that gave up waiting for its welcome and closed
/// while the server was stalled (its connection, its resuming join and its
/// end all waiting in the kernel) takes nothing over when the server reads
/// it at last, after the client's newer connection resumed the session:
/// that connection stays (it answers a ping, told nothing), and the stale
/// join is answered `nick_taken`, then closed. Before, the stale join took
/// the session over (`resumed_elsewhere` to the live connection, which
/// chatclient does not reconnect) and then ended at once.
#[test]
fn a_resume_read_with_its_connections_end_takes_nothing_over() {
    let server = Server::start(&["--idle-ping-ms", "60000"]);
    let mut first = server.connect();
    first.send_frame(&json!({"type": "join", "nick": "alice", "rooms": ["lobby"]}));
    let welcome = first.expect_kind("welcome");
    let resume = json!({
        "type": "join", "nick": "alice", "rooms": [], "resume": welcome["session"]
    });
    let mut live = server.connect();
    live.send_frame(&resume);
    assert_eq!(live.expect_kind("welcome")["resumed"], true);
    first.recv_until(10, |f| f["code"] == "resumed_elsewhere");

    server.stop();
    let mut stale = server.connect();
    stale.send_frame(&resume);
    stale.shutdown_write();
    server.signal("CONT");
    let answers = stale.frames_to_eof();
    let codes: Vec<&Value> = answers.iter().map(|f| &f["code"]).collect();
    assert_eq!(codes, [&json!("nick_taken")], "{answers:?}");

    live.ping_pong();
}

/// A client that sends its join, a ping and a message in one write and
/// then half-closes (a script piping lines into a socket) gets every
/// answer before the server closes its side: the welcome, the pong, the
/// echo. The room sees it come, speak and go, in that order.
fn answered_before_the_half_close(server: &Server) {
    let mut watcher = server.join("watcher");
    let mut c = server.connect();
    let mut bytes = Vec::new();
    for frame in [
        json!({"type": "join", "nick": "alice"}),
        json!({"type": "ping"}),
        json!({"type": "msg", "text": "bye", "id": "m1"}),
    ] {
        bytes.extend(common::frame_bytes(frame.to_string().as_bytes()));
    }
    c.send_raw(&bytes);
    c.shutdown_write();
    let got = c.frames_to_eof();
    let kinds: Vec<&str> = got.iter().map(kind).collect();
    assert_eq!(kinds, ["welcome", "presence", "pong", "msg"], "{got:?}");
    assert_eq!(got[3]["text"], "bye");
    assert_eq!(got[3]["id"], "m1", "its echo");
    assert!(is_presence(&watcher.recv_frame(), "alice", "online"));
    assert_eq!(watcher.expect_kind("msg")["text"], "bye");
    let frame = watcher.recv_frame();
    assert!(is_presence(&frame, "alice", "offline"), "{frame}");
}

#[test]
fn frames_sent_before_a_half_close_are_answered() {
    answered_before_the_half_close(&server());
}

/// The same with the history database, where every answer waits for the
/// batch that holds the join and the message to be stored.
#[test]
fn frames_sent_before_a_half_close_are_answered_once_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("UTF-8 path");
    let server = Server::start(&["--data-dir", data, "--idle-ping-ms", "60000"]);
    answered_before_the_half_close(&server);
}

/// The end of a client nothing waits for is answered at once, not after
/// the close-flush time (a minute here, past the tests' wait).
#[test]
fn a_half_close_with_nothing_to_answer_but_a_pong_is_not_held() {
    let server = Server::start(&["--close-flush-ms", "60000"]);
    let mut c = server.connect();
    c.send_frame(&json!({"type": "ping"}));
    c.shutdown_write();
    let got = c.frames_to_eof();
    assert_eq!(got.iter().map(kind).collect::<Vec<_>>(), ["pong"]);
}

/// Frames held back by the rate limit when the client half-closes are
/// still read and answered: the end is read after them.
#[test]
fn frames_held_by_the_rate_limit_before_a_half_close_are_answered() {
    let server = Server::start(&["--burst", "5", "--rate", "50", "--idle-ping-ms", "60000"]);
    let mut c = server.connect();
    let mut bytes = common::frame_bytes(
        json!({"type": "join", "nick": "alice"})
            .to_string()
            .as_bytes(),
    );
    for _ in 0..40 {
        bytes.extend(common::frame_bytes(br#"{"type":"ping"}"#));
    }
    c.send_raw(&bytes);
    c.shutdown_write();
    let got = c.frames_to_eof();
    assert_eq!(got.iter().filter(|f| kind(f) == "pong").count(), 40);
}

/// History pages read from disk for a client that half-closed right
/// after asking (more of them than a client may have waiting) come, each
/// whole, before its pong and the close.
#[test]
fn pages_read_from_disk_before_a_half_close_are_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("UTF-8 path");
    let server = Server::start(&[
        "--data-dir",
        data,
        "--history-bytes-per-room",
        "1024",
        "--idle-ping-ms",
        "60000",
    ]);
    let mut alice = server.join("alice");
    for i in 0..30 {
        let id = format!("m{i}");
        let text = format!("{i:03}{}", "x".repeat(200));
        alice.send_frame(&json!({"type": "msg", "text": text, "id": id}));
        alice.recv_until(10, |f| kind(f) == "msg" && f["id"] == id.as_str());
    }
    let mut bob = server.connect();
    let mut bytes = common::frame_bytes(
        json!({"type": "join", "nick": "bob"})
            .to_string()
            .as_bytes(),
    );
    let page = json!({"type": "history", "room": "lobby", "limit": 30}).to_string();
    for _ in 0..6 {
        bytes.extend(common::frame_bytes(page.as_bytes()));
    }
    bytes.extend(common::frame_bytes(br#"{"type":"ping"}"#));
    bob.send_raw(&bytes);
    bob.shutdown_write();
    let got = bob.frames_to_eof();
    let pages: Vec<usize> = got
        .iter()
        .filter(|f| kind(f) == "history")
        .map(|f| f["events"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(pages, [30; 6], "{got:?}");
    assert_eq!(got.last().map(kind), Some("pong"));
}
