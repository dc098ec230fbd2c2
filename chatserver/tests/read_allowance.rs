//! The read allowance: what the server sends a client in answer to its
//! reads (replayed messages, history pages, member lists) is held to
//! `--read-rate-bytes` after `--read-burst-bytes`, and none of it is
//! forgiven; a client that reads within it, or only talks, is not held.

mod common;

use std::time::{Duration, Instant};

use common::{frame_bytes, kind, Client, Next, Server};
use serde_json::{json, Value};

/// Whether the server charges `frame` to the read allowance.
fn answers_a_read(frame: &Value) -> bool {
    match kind(frame) {
        "entered" | "online" | "history" | "rooms" | "welcome" => true,
        "msg" => frame["replay"] == true,
        _ => false,
    }
}

/// `frame` as the bytes a client writes.
fn raw(frame: &Value) -> Vec<u8> {
    frame_bytes(frame.to_string().as_bytes())
}

/// What a loop of reads brought a client.
#[derive(Debug)]
struct Answers {
    /// Bytes of the frames that answer reads, length headers included.
    bytes: usize,
    /// The most one `enter` was answered with (its `entered`, member
    /// lists and replay).
    largest: usize,
    /// From the first byte written to the last frame read.
    took: Duration,
}

impl Answers {
    /// The read allowance held: no more than the burst, the rate for the
    /// time taken, and the one answer whose reading was allowed last.
    fn assert_within(&self, rate: usize, burst: usize) {
        let allowed = burst as f64 + rate as f64 * self.took.as_secs_f64() + self.largest as f64;
        assert!(
            self.bytes as f64 <= allowed,
            "{self:?}: more than {allowed:.0} bytes ({burst} at once, then {rate} a second)"
        );
    }
}

/// Write `frames` at once, then read until `enters` `entered` frames have
/// come: what answered reads, and how long it took. Any error fails.
fn answers_to(client: &mut Client, frames: &[u8], enters: usize) -> Answers {
    let started = Instant::now();
    client.send_raw(frames);
    let (mut bytes, mut answer, mut largest, mut entered) = (0, 0, 0, 0);
    // Bounded: each frame comes within the wait, and an enter brings at
    // most a few hundred.
    for _ in 0..enters * 1_000 {
        let frame = client.recv_frame();
        assert_ne!(kind(&frame), "error", "{frame}");
        if !answers_a_read(&frame) {
            continue;
        }
        if kind(&frame) == "entered" {
            entered += 1;
            answer = 0;
        }
        let n = client.last_frame_bytes();
        bytes += n;
        answer += n;
        largest = largest.max(answer);
        if entered == enters {
            break;
        }
    }
    assert_eq!(entered, enters, "not every enter was answered");
    Answers {
        bytes,
        largest,
        took: started.elapsed(),
    }
}

/// Ping, and read what was still coming (none of it an error) up to the
/// pong: the connection is open.
fn pong_after_the_rest(client: &mut Client) {
    client.send_frame(&json!({"type": "ping"}));
    let (before, _) = client.recv_until(100_000, |f| kind(f) == "pong");
    assert!(before.iter().all(|f| kind(f) != "error"), "{before:?}");
}

/// Send `msg` `times` times, each once the one before has come back:
/// read up to the next `msg` (within 10 frames).
fn say_echoed(client: &mut Client, msg: &Value, times: usize) {
    for _ in 0..times {
        client.send_frame(msg);
        client.recv_until(10, |f| kind(f) == "msg");
    }
}

/// `n` clients in `room`, each with a nickname of 32 letters (Hangul, 3
/// bytes each in UTF-8): a room whose member list takes about 28 KB.
/// Each waits until it is in; none reads on.
fn members(server: &Server, room: &str, n: usize) -> Vec<Client> {
    (0..n)
        .map(|i| {
            let letters: String = (0..28)
                .map(|j| char::from_u32(0xAC00 + ((i * 29 + j) % 11_172) as u32).expect("Hangul"))
                .collect();
            let mut member = server.connect();
            member.send_frame(
                &json!({"type": "join", "nick": format!("{letters}{i:04}"), "rooms": [room]}),
            );
            member.recv_until(10, |f| kind(f) == "entered");
            member
        })
        .collect()
}

/// Each `enter` of a room of 300 members is answered with its member
/// list (about 28 KB) for a few bytes. Entering and parting it in a loop
/// gets no more than the read allowance: before it, member lists were
/// not counted at all and the loop got as much as the server could send
/// (10.9 MB/s against a byte allowance of 64 KiB/s). The frame rate and
/// the byte allowance are set high, so that the read allowance alone
/// holds the loop.
fn enter_and_part_a_big_room(store: &[&str]) {
    const PAIRS: usize = 30;
    const RATE: usize = 500_000;
    const BURST: usize = 100_000;
    let mut flags = vec![
        "--max-clients-per-ip",
        "0",
        "--rate",
        "1000",
        "--burst",
        "1000",
        "--rate-bytes",
        "1000000000",
        "--burst-bytes",
        "1073741824",
        "--replay-bytes",
        "16384",
        "--read-rate-bytes",
        "500000",
        "--read-burst-bytes",
        "100000",
    ];
    flags.extend_from_slice(store);
    let server = Server::start(&flags);
    let _members = members(&server, "big", 300);
    let mut asker = server.join("asker");
    let pair = [
        raw(&json!({"type": "enter", "room": "big"})),
        raw(&json!({"type": "part", "room": "big"})),
    ]
    .concat();
    let answers = answers_to(&mut asker, &pair.repeat(PAIRS), PAIRS);
    assert!(answers.largest > 25_000, "a big member list: {answers:?}");
    answers.assert_within(RATE, BURST);
    // Held, not closed.
    pong_after_the_rest(&mut asker);
}

#[test]
fn entering_and_parting_a_big_room_again_and_again_is_held_to_the_read_allowance() {
    enter_and_part_a_big_room(&[]);
}

/// The same with the history database: each `enter` is answered once the
/// store has its presence, and the next `enter` is read only once that
/// answer is charged (not as soon as the hub has taken the first).
#[test]
fn with_the_database_entering_and_parting_again_and_again_is_held_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_str().expect("a UTF-8 path");
    enter_and_part_a_big_room(&["--data-dir", path]);
}

/// Entering 32 rooms, each replayed (about 8 KB), then parting them, in a
/// loop: before, an `enter` never paid for replays, and what the frames
/// after it owed was capped at one burst of the byte allowance, the rest
/// forgiven (4.6 MB/s against 64 KiB/s). Now every replayed byte is
/// charged to the read allowance, and none is forgiven. (The byte
/// allowance is set high, as above.)
#[test]
fn entering_and_parting_many_replayed_rooms_again_and_again_is_held_to_the_read_allowance() {
    const ROOMS: usize = 32;
    const CYCLES: usize = 3;
    const RATE: usize = 500_000;
    const BURST: usize = 100_000;
    let server = Server::start(&[
        "--rate",
        "1000",
        "--burst",
        "1000",
        "--rate-bytes",
        "1000000000",
        "--burst-bytes",
        "1073741824",
        "--replay-bytes",
        "8192",
        "--read-rate-bytes",
        "500000",
        "--read-burst-bytes",
        "100000",
    ]);
    let rooms: Vec<String> = (0..ROOMS).map(|i| format!("r{i}")).collect();
    let mut talker = server.join("talker");
    let text = "z".repeat(2_000);
    for room in &rooms {
        talker.enter(room);
        let msg = json!({"type": "msg", "room": room, "text": text});
        say_echoed(&mut talker, &msg, 4);
        talker.send_frame(&json!({"type": "part", "room": room}));
    }
    pong_after_the_rest(&mut talker);
    // In no room (not `lobby`): all 32 may be entered.
    let mut asker = server.connect();
    asker.send_frame(&json!({"type": "join", "nick": "asker", "rooms": []}));
    asker.expect_kind("welcome");
    let enters: Vec<u8> = rooms
        .iter()
        .flat_map(|r| raw(&json!({"type": "enter", "room": r})))
        .collect();
    let parts: Vec<u8> = rooms
        .iter()
        .flat_map(|r| raw(&json!({"type": "part", "room": r})))
        .collect();
    let cycle = [enters, parts].concat();
    let answers = answers_to(&mut asker, &cycle.repeat(CYCLES), ROOMS * CYCLES);
    assert!(answers.largest > 6_000, "replayed: {answers:?}");
    answers.assert_within(RATE, BURST);
    pong_after_the_rest(&mut asker);
}

/// A client entering its rooms again after a reconnect, each with a full
/// replay, then talking, is held for none of it: the replays fit the read
/// allowance's burst, and messages never wait for reads. Before, the
/// replays (240 KB) were charged to what the client sent after them, a
/// burst of the byte allowance at most: a client that had used its burst
/// (talked) waited 13 s to say the next thing (5,000 bytes a second after
/// 65,536).
#[test]
fn a_client_entering_its_rooms_again_with_full_replays_and_talking_is_not_held() {
    const ROOMS: usize = 4;
    const SAID: usize = 5;
    // Little of a read rate: what the replays leave of the burst is all
    // there is.
    let server = Server::start(&[
        "--rate-bytes",
        "5000",
        "--burst-bytes",
        "65536",
        "--rate-limit-grace-ms",
        "300",
        "--replay-bytes",
        "65536",
        "--read-rate-bytes",
        "1000",
        "--read-burst-bytes",
        "300000",
    ]);
    // Each room's 60 KB said by a talker of its own, within its burst.
    let rooms: Vec<String> = (0..ROOMS).map(|i| format!("r{i}")).collect();
    let text = "z".repeat(4_000);
    let mut talkers = Vec::new();
    for room in &rooms {
        let mut talker = server.join(&format!("t{room}"));
        talker.enter(room);
        let msg = json!({"type": "msg", "room": room, "text": text});
        say_echoed(&mut talker, &msg, 15);
        talkers.push(talker);
    }
    let mut back = server.join("back");
    // It had talked before: little of its byte allowance's burst is left.
    let long = "y".repeat(10_000);
    say_echoed(&mut back, &json!({"type": "msg", "text": long}), 6);
    let enters: Vec<u8> = rooms
        .iter()
        .flat_map(|r| raw(&json!({"type": "enter", "room": r})))
        .collect();
    back.send_raw(&enters);
    let mut replayed = 0;
    back.recv_until(ROOMS * 100, |f| {
        assert_ne!(kind(f), "error", "{f}");
        replayed += usize::from(f["replay"] == true);
        replayed == ROOMS * 15
    });
    // Then it talks: every message echoed within 5 s, far less than the
    // 13 s the first waited before (a loaded machine takes well under a
    // second).
    let said: Vec<u8> = (0..SAID)
        .flat_map(|i| raw(&json!({"type": "msg", "room": "r0", "text": format!("back {i}")})))
        .collect();
    back.send_raw(&said);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut echoed = 0;
    while echoed < SAID {
        let left = deadline.saturating_duration_since(Instant::now());
        let f = match back.next_within(left) {
            Next::Frame(f) => f,
            other => panic!("{other:?} with {echoed} echoed"),
        };
        assert_ne!(kind(&f), "error", "{f}");
        echoed += usize::from(kind(&f) == "msg" && f["from"] == "back");
    }
    // Talking on is not held by the replays' debt either.
    for i in 0..SAID {
        back.send_frame(&json!({"type": "msg", "room": "r1", "text": format!("on {i}")}));
        let (_, echo) = back.recv_until(10, |f| kind(f) == "msg");
        assert_eq!(echo["text"], format!("on {i}"));
    }
    back.ping_pong();
}

/// A client reading a room's history a page at a time, each asked once
/// the one before has come, is slowed by the read allowance (each page
/// takes longer to pay for than the grace of 300 ms) but never closed:
/// it has nothing more waiting while a page is held.
#[test]
fn a_client_reading_history_page_by_page_is_slowed_never_closed() {
    const SAID: usize = 60;
    const RATE: f64 = 10_000.0;
    let server = Server::start(&[
        "--max-frame-bytes",
        "4096",
        "--rate-bytes",
        "1000000",
        "--burst-bytes",
        "1000000",
        "--replay-bytes",
        "1024",
        "--read-rate-bytes",
        "10000",
        "--read-burst-bytes",
        "4096",
        "--rate-limit-grace-ms",
        "300",
    ]);
    let mut talker = server.join("talker");
    talker.enter("old");
    let text = "h".repeat(300);
    let msg = json!({"type": "msg", "room": "old", "text": text});
    say_echoed(&mut talker, &msg, SAID);
    let mut reader = server.join("reader");
    reader.enter("old");
    let started = Instant::now();
    let (mut pages, mut seen, mut paged) = (0, 0, 0);
    let mut before: Option<u64> = None;
    for _ in 0..SAID {
        let mut ask = json!({"type": "history", "room": "old"});
        if let Some(b) = before {
            ask["before"] = json!(b);
        }
        reader.send_frame(&ask);
        let (_, page) = reader.recv_until(SAID * 2, |f| kind(f) == "history");
        pages += 1;
        paged += reader.last_frame_bytes();
        let events = page["events"].as_array().expect("events");
        seen += events.len();
        if page["more"] != true {
            break;
        }
        before = page["before"]
            .as_u64()
            .or_else(|| events.first().and_then(|e| e["seq"].as_u64()));
    }
    assert_eq!(seen, SAID, "every message, in {pages} pages");
    assert!(pages >= 5, "{pages} pages");
    // Slowed: what was paged beyond the burst and one page was paid for
    // at the rate. (A lower bound only.)
    let least = (paged as f64 - 2.0 * 4096.0) / RATE;
    assert!(
        started.elapsed().as_secs_f64() >= least,
        "{paged} bytes in {:?}",
        started.elapsed()
    );
    reader.ping_pong();
}

#[test]
fn welcome_says_the_read_allowance_and_no_rate_limit_means_none() {
    let server = Server::start(&[
        "--read-rate-bytes",
        "100000",
        "--read-burst-bytes",
        "2000000",
    ]);
    let welcome = server.connect().join("a");
    assert_eq!(welcome["limits"]["read_rate_bytes"], 100_000, "{welcome}");
    assert_eq!(
        welcome["limits"]["read_burst_bytes"], 2_000_000,
        "{welcome}"
    );
    let server = Server::start(&[]);
    let welcome = server.connect().join("b");
    assert_eq!(welcome["limits"]["read_rate_bytes"], 524_288, "{welcome}");
    // 32 rooms of a replay (512 KiB) and a frame (64 KiB).
    assert_eq!(
        welcome["limits"]["read_burst_bytes"], 18_874_368,
        "{welcome}"
    );
    for flags in [["--rate", "0"], ["--read-rate-bytes", "0"]] {
        let server = Server::start(&flags);
        let welcome = server.connect().join("c");
        for member in ["read_rate_bytes", "read_burst_bytes"] {
            assert!(
                welcome["limits"].get(member).is_none(),
                "{member} in {welcome}"
            );
        }
    }
}

/// Pages from the history database of a room of messages to others: each
/// comes back empty (about 70 bytes) after looking at `--history-scan`
/// stored events, which cost the server's one reader far more than the
/// bytes. Asked again and again, they are held to the read allowance
/// by what was looked at, 64 bytes an event: before, each was charged
/// its 70 bytes, and five connections kept the reader busy.
#[test]
fn empty_pages_after_long_scans_of_the_database_are_held_to_the_read_allowance() {
    const SAID: usize = 2_000;
    const SCAN: usize = 1_000;
    const PAGES: usize = 12;
    const RATE: f64 = 320_000.0;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path");
    let stored = ["--data-dir", data, "--history-per-room", "4"];
    // Alice's messages to bob, stored by a server without limits.
    let mut server = Server::start(&[&stored[..], &["--rate", "0"]].concat());
    let mut alice = server.join("alice");
    let _bob = server.join("bob");
    for n in 0..SAID {
        alice.send_frame(&json!({"type": "msg", "to": ["bob"], "text": format!("p{n}")}));
    }
    alice.recv_until(SAID * 2, |f| f["text"] == format!("p{}", SAID - 1));
    server.sigterm();
    assert!(server.wait_exit(common::WAIT).success());
    let server = Server::start(
        &[
            &stored[..],
            &[
                "--history-scan",
                "1000",
                "--max-frame-bytes",
                "4096",
                "--replay-bytes",
                "1024",
                "--read-rate-bytes",
                "320000",
                "--read-burst-bytes",
                "4096",
            ],
        ]
        .concat(),
    );
    let mut carol = server.join("carol");
    let ask = raw(&json!({"type": "history", "room": "lobby", "limit": 1, "before": 1_500}));
    let started = Instant::now();
    carol.send_raw(&ask.repeat(PAGES));
    for _ in 0..PAGES {
        let (_, page) = carol.recv_until(10, |f| kind(f) == "history");
        assert_eq!(page["events"], json!([]), "{page}");
        assert_eq!(page["more"], true, "{page}");
    }
    // Each page was charged its scan: all but the one the burst paid for,
    // and the last (charged once sent), at the rate. (A lower bound only.)
    let least = ((PAGES - 2) * SCAN * 64) as f64 / RATE;
    let took = started.elapsed().as_secs_f64();
    assert!(took >= least, "{PAGES} pages in {took:.2} s");
    // Held, not closed.
    carol.ping_pong();
}
