//! The per-client rate limit: a fast sender is slowed, not robbed; others
//! are not starved; a sender far over the limit for long is closed.

mod common;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use common::{frame_bytes, is_presence, kind, Client, Next, Server, SMALL_BYTE_ALLOWANCE};
use serde_json::{json, Value};

/// Write `count` broadcast messages `m0`, `m1`, ... one write each, as fast
/// as the socket takes them, on a thread of its own. Stops at the first
/// write error (the server may close the connection).
fn flood(client: &Client, count: usize) -> thread::JoinHandle<usize> {
    flood_padded(client, count, 0)
}

/// [`flood`], each text followed by a space and `pad` bytes when `pad` is
/// not 0.
fn flood_padded(client: &Client, count: usize, pad: usize) -> thread::JoinHandle<usize> {
    let mut stream = client.stream().try_clone().expect("clone the socket");
    let padding = if pad == 0 {
        String::new()
    } else {
        format!(" {}", "x".repeat(pad))
    };
    thread::spawn(move || {
        for i in 0..count {
            let frame = json!({"type": "msg", "text": format!("m{i}{padding}")});
            if stream
                .write_all(&frame_bytes(frame.to_string().as_bytes()))
                .is_err()
            {
                return i;
            }
        }
        count
    })
}

/// Read `client`'s echoes until it is sent `rate_limited`, which must come
/// before `max` echoes, then its connection's end.
fn expect_rate_limited(client: &mut Client, max: usize) {
    let mut echoed = 0;
    loop {
        match client.next() {
            Next::Frame(f) if kind(&f) == "msg" => echoed += 1,
            Next::Frame(f) => {
                assert_eq!(f["code"], "rate_limited", "{f}");
                break;
            }
            other => panic!("expected rate_limited, got {other:?} after {echoed} echoes"),
        }
        assert!(echoed < max, "{echoed} messages passed and no rate_limited");
    }
    client.expect_closed();
}

/// Check that `msgs` are `m0..` from `from`, in order, with rising seq.
fn assert_in_order(msgs: &[Value], from: &str) {
    let mut last_seq = 0;
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(m["from"], from, "{m}");
        assert_eq!(m["text"], format!("m{i}"), "message {i} out of order");
        let seq = m["seq"].as_u64().expect("seq");
        assert!(seq > last_seq, "seq went from {last_seq} to {seq}");
        last_seq = seq;
    }
}

#[test]
fn a_burst_over_the_rate_is_slowed_but_nothing_is_lost_and_others_stay_responsive() {
    const COUNT: usize = 300;
    let server = Server::start(&["--rate", "100", "--burst", "20"]);
    let mut other = server.join("other");
    let mut fast = server.join("fast");
    assert!(is_presence(&other.recv_frame(), "fast", "online"));

    let started = Instant::now();
    let writer = flood(&fast, COUNT);
    // Once the flood is arriving, `other` pings. At 100 a second the flood
    // takes about three seconds to pass, so an unstarved server answers long
    // before the flood's last message reaches `other`.
    let first = other.expect_kind("msg");
    other.send_frame(&json!({"type": "ping"}));
    let (mut seen, _pong) = other.recv_until(COUNT + 1, |f| kind(f) == "pong");
    seen.insert(0, first);
    assert!(
        seen.len() < COUNT,
        "the pong came after all {COUNT} flood messages"
    );
    while seen.len() < COUNT {
        seen.push(other.expect_kind("msg"));
    }
    assert_in_order(&seen, "fast");
    // The limit did apply: past the burst of 20, 100 a second. (A lower
    // bound only; a slow machine can only make this longer.)
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2500),
        "{COUNT} messages passed in {took:?}, faster than 100 a second"
    );

    assert_eq!(writer.join().expect("writer thread"), COUNT);
    let echoes: Vec<Value> = (0..COUNT).map(|_| fast.expect_kind("msg")).collect();
    assert_in_order(&echoes, "fast");
    // Slowed, not closed.
    fast.ping_pong();
}

#[test]
fn far_over_the_limit_for_long_is_rate_limited_and_closed() {
    let server = Server::start(&[
        "--rate",
        "5",
        "--burst",
        "5",
        "--rate-limit-grace-ms",
        "300",
    ]);
    let mut watcher = server.join("watcher");
    let mut fast = server.join("fast");
    assert!(is_presence(&watcher.recv_frame(), "fast", "online"));

    let writer = flood(&fast, 5000);
    expect_rate_limited(&mut fast, 100);
    let (_, gone) = watcher.recv_until(100, |f| kind(f) == "presence");
    assert!(is_presence(&gone, "fast", "offline"), "{gone}");
    writer.join().expect("writer thread");
}

#[test]
fn a_flood_of_frames_larger_than_one_read_is_rate_limited_and_closed() {
    // Each frame takes more than one of the server's 8 KiB reads, so its
    // read buffer is seldom left holding whole frames only; the flood must
    // still be closed, as one of small frames is. Frames near the frame
    // limit, under the default allowance, too: the socket has nothing
    // more at times while part of a frame is read.
    for (size, allowance) in [(20_000, "40000"), (60_000, "65536")] {
        let server = Server::start(&[
            "--rate-bytes",
            allowance,
            "--burst-bytes",
            "262144",
            "--rate-limit-grace-ms",
            "300",
        ]);
        let mut watcher = server.join("watcher");
        let mut fast = server.join("fast");
        assert!(is_presence(&watcher.recv_frame(), "fast", "online"));

        // Many seconds at the allowance, were it only slowed. The burst
        // passes a few, the allowance one or two more within the grace;
        // the next has waited past it.
        let writer = flood_padded(&fast, 200, size);
        expect_rate_limited(&mut fast, 20);
        let (_, gone) = watcher.recv_until(200, |f| kind(f) == "presence");
        assert!(is_presence(&gone, "fast", "offline"), "{gone}");
        writer.join().expect("writer thread");
    }
}

/// A `rooms` request is a few bytes, but the core looks at every room to
/// answer it, with up to a frame: the byte allowance charges it as the
/// largest frame. 50 of them at once (850 bytes, well within the frame
/// rate's burst of 100) pass four at once (the burst of 262,144 bytes),
/// then one a second, and the rest wait past the grace: closed. Charged
/// their own bytes, all 50 were answered at once.
#[test]
fn a_flood_of_rooms_requests_is_held_to_the_byte_allowance_and_closed() {
    let server = Server::start(&[
        "--rate-bytes",
        "65536",
        "--burst-bytes",
        "262144",
        "--rate-limit-grace-ms",
        "300",
    ]);
    let mut asker = server.join("asker");
    let request = frame_bytes(json!({"type": "rooms"}).to_string().as_bytes());
    asker.send_raw(&request.repeat(50));
    let mut answered = 0;
    loop {
        match asker.next() {
            Next::Frame(f) if kind(&f) == "rooms" => answered += 1,
            Next::Frame(f) => {
                assert_eq!(f["code"], "rate_limited", "{f}");
                break;
            }
            other => panic!("expected rate_limited, got {other:?} after {answered} answers"),
        }
        assert!(
            answered < 10,
            "{answered} rooms answers and no rate_limited"
        );
    }
    assert!(
        answered >= 4,
        "the burst lets four through, {answered} were"
    );
    asker.expect_closed();
    // Another client asking now and then is answered every time.
    let mut patient = server.join("patient");
    for _ in 0..3 {
        patient.send_frame(&json!({"type": "rooms"}));
        patient.expect_kind("rooms");
    }
}

#[test]
fn a_client_that_waits_for_each_echo_is_slowed_by_the_byte_allowance_not_closed() {
    // 20,000 bytes a second after a burst of 65,536: the first six pass
    // at once, each after waits half a second, far longer in all than the
    // grace. Each is read in two reads and the client sends nothing more
    // until its echo comes, so it is caught up each time.
    let server = Server::start(&SMALL_BYTE_ALLOWANCE);
    let mut c = server.join("patient");
    let text = "y".repeat(10_000);
    for _ in 0..10 {
        c.send_frame(&json!({"type": "msg", "text": text}));
        let echo = c.expect_kind("msg");
        assert_eq!(echo["text"].as_str().map(str::len), Some(10_000));
    }
    c.ping_pong();
}

#[test]
fn large_messages_are_held_to_the_byte_allowance_and_welcome_says_it() {
    const COUNT: usize = 10;
    const SIZE: usize = 10_000;
    // Frames are plenty (1,000 a second); bytes are not: 40,000 a second
    // after 65,536, so about six of these pass at once and the other four
    // take about a second.
    let server = Server::start(&[
        "--rate",
        "1000",
        "--burst",
        "1000",
        "--rate-bytes",
        "40000",
        "--burst-bytes",
        "65536",
    ]);
    let mut other = server.join("other");
    let mut fast = server.connect();
    let welcome = fast.join("fast");
    assert_eq!(welcome["limits"]["rate_bytes"], 40_000, "{welcome}");
    assert_eq!(welcome["limits"]["burst_bytes"], 65_536, "{welcome}");
    assert!(is_presence(&other.recv_frame(), "fast", "online"));

    let started = Instant::now();
    let writer = flood_padded(&fast, COUNT, SIZE);
    let seen: Vec<Value> = (0..COUNT).map(|_| other.expect_kind("msg")).collect();
    for (i, m) in seen.iter().enumerate() {
        let text = m["text"].as_str().expect("text");
        assert!(
            text.starts_with(&format!("m{i} ")),
            "message {i} out of order"
        );
        assert_eq!(text.len(), SIZE + 3);
    }
    // The allowance did apply: about 100,000 bytes past a burst of 65,536
    // at 40,000 a second. (A lower bound only.)
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700),
        "{COUNT} messages of {SIZE} bytes passed in {took:?}, faster than the allowance"
    );
    assert_eq!(writer.join().expect("writer thread"), COUNT);
    // Slowed, not closed.
    for _ in 0..COUNT {
        fast.expect_kind("msg");
    }
    fast.ping_pong();
}

#[test]
fn no_rate_limit_means_no_byte_allowance_either() {
    let server = Server::start(&["--rate", "0"]);
    let mut c = server.connect();
    let welcome = c.join("c");
    let limits = &welcome["limits"];
    for member in ["rate", "burst", "rate_bytes", "burst_bytes"] {
        assert!(limits.get(member).is_none(), "{member} in {welcome}");
    }
    let server = Server::start(&[]);
    let welcome = server.connect().join("d");
    assert_eq!(
        welcome["limits"]["rate_bytes"], 65_536,
        "the default, {welcome}"
    );
    assert_eq!(welcome["limits"]["burst_bytes"], 262_144, "{welcome}");
}
