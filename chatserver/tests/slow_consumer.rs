//! A member that never reads: its queue is bounded, it is dropped, and
//! nobody else loses a message or waits for it.

mod common;
mod webclient;

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use common::{frame_bytes, is_presence, kind, Client, Next, Server, WAIT};
use serde_json::{json, Value};

/// Messages in the flood, and the size of each text: 4 000 × 4 KiB is twice
/// the RSS bound below, so a server that queued everything for the
/// stalled member would fail it.
const COUNT: usize = 4_000;
const TEXT_BYTES: usize = 4096;

/// How many messages the sender may be ahead of the slower of the two
/// members that read. Kept well under the 64 KiB outbound queue, so those
/// two can never be the slow consumer, however the machine schedules them.
const WINDOW: usize = 8;

fn text(i: usize) -> String {
    let head = format!("{i:06}:");
    let fill = "x".repeat(TEXT_BYTES - head.len());
    head + &fill
}

/// Read messages from `sender` until all have arrived, checking their order
/// and reporting each arrival to the writer. Returns whether `gone` went
/// offline meanwhile.
fn read_all(client: &mut Client, sender: &str, gone: &str, acks: (usize, Sender<Ack>)) -> bool {
    let mut saw_gone = false;
    let mut next = 0;
    for _ in 0..COUNT + 10 {
        if next == COUNT {
            break;
        }
        let f = client.recv_frame();
        if is_presence(&f, gone, "offline") {
            saw_gone = true;
            continue;
        }
        assert_eq!(kind(&f), "msg", "{f}");
        assert_eq!(f["from"], sender);
        assert!(
            f["text"] == text(next).as_str(),
            "message {next} lost or reordered"
        );
        next += 1;
        let _ = acks.1.send((acks.0, next));
    }
    assert_eq!(next, COUNT, "frames other than messages kept arriving");
    saw_gone
}

/// (which reader, how many messages it has received)
type Ack = (usize, usize);

/// Write the flood, never more than [`WINDOW`] messages ahead of either reader.
fn write_flood(mut out: TcpStream, acks: Receiver<Ack>) {
    let mut received = [0usize; 2];
    for i in 0..COUNT {
        while i >= received.iter().min().copied().unwrap_or(0) + WINDOW {
            let (who, n) = acks.recv_timeout(WAIT).expect("a reader stopped reading");
            received[who] = n;
        }
        let frame = json!({"type": "msg", "text": text(i)});
        out.write_all(&frame_bytes(frame.to_string().as_bytes()))
            .expect("the sender is never throttled or dropped");
    }
}

/// A queue limit of 64 KiB. It must hold one largest frame and one
/// replay: both smaller.
const SMALL_QUEUE: [&str; 6] = [
    "--outbound-queue-bytes",
    "65536",
    "--max-frame-bytes",
    "16384",
    "--replay-bytes",
    "32768",
];

/// Past its queue's limit for the grace, or past its most at once.
#[test]
fn a_member_that_never_reads_is_dropped_and_nobody_else_is_affected() {
    let grace = [
        "--slow-consumer-ms",
        "200",
        "--outbound-queue-max-bytes",
        "1048576",
    ];
    flood_past_one_stalled_member(&[&SMALL_QUEUE[..], &grace].concat());
}

/// Without a grace, as soon as its queue passes the limit.
#[test]
fn without_a_grace_a_member_that_never_reads_is_dropped_at_once() {
    flood_past_one_stalled_member(&[&SMALL_QUEUE[..], &["--slow-consumer-ms", "0"]].concat());
}

/// Messages in one burst, each of [`TEXT_BYTES`]: about 6.5 times the
/// queue's limit below, for every member at once.
const BURST: usize = 100;

/// One sender's burst far larger than each member's queue limit, to
/// members who read it at once: nobody is a slow consumer, and every
/// member (the sender too, its echoes) gets every message in order.
/// Before, each queue passed its limit within the turn that handled the
/// burst, before anything was written, and every member was closed.
#[test]
fn a_burst_past_the_queue_limit_to_members_who_read_it_closes_nobody() {
    let server =
        Server::start(&[&["--rate", "0", "--log-level", "warn"], &SMALL_QUEUE[..]].concat());
    let mut obs = server.join("obs");
    let mut other = server.join("other");
    let sender = server.join("sender");
    for nick in ["other", "sender"] {
        assert!(is_presence(&obs.recv_frame(), nick, "online"));
    }
    assert!(is_presence(&other.recv_frame(), "sender", "online"));
    let mut burst = Vec::new();
    for i in 0..BURST {
        let frame = json!({"type": "msg", "text": text(i)});
        burst.extend(frame_bytes(frame.to_string().as_bytes()));
    }
    let mut out = sender.stream().try_clone().expect("clone the socket");
    let writer = thread::spawn(move || out.write_all(&burst).expect("the burst is taken"));
    let readers: Vec<_> = [obs, other, sender]
        .into_iter()
        .map(|mut c| {
            thread::spawn(move || {
                for i in 0..BURST {
                    let f = c.recv_frame();
                    assert_eq!(kind(&f), "msg", "message {i}: {f}");
                    assert!(
                        f["text"] == text(i).as_str(),
                        "message {i} lost or reordered"
                    );
                }
                c.ping_pong();
                // Kept open until every reader has its pong: one closed
                // sooner is an offline presence another may get before it.
                c
            })
        })
        .collect();
    writer.join().expect("writer thread");
    let _members: Vec<_> = readers
        .into_iter()
        .map(|r| r.join().expect("a member was closed or lost a message"))
        .collect();
}

/// The per-client cap (64 MiB) is far above the whole flood (16 MB), so
/// only the budget for all queues together can close the stalled member.
#[test]
fn the_budget_for_all_queues_closes_the_longest_one() {
    flood_past_one_stalled_member(&[
        "--outbound-queue-bytes",
        "67108864",
        "--outbound-total-bytes",
        "262144",
    ]);
}

/// Three members; one never reads while another floods the room: the
/// stalled one is closed (`limits`), the others get every message in order
/// without waiting for it, and the server's memory barely moves.
fn flood_past_one_stalled_member(limits: &[&str]) {
    let mut args = vec!["--rate", "0", "--log-level", "warn"];
    args.extend_from_slice(limits);
    let server = Server::start(&args);
    let mut obs = server.join("obs");
    let mut stalled = server.connect_with_rcvbuf(4096);
    stalled.join("stalled");
    let mut sender = server.join("sender");
    for nick in ["stalled", "sender"] {
        assert!(is_presence(&obs.recv_frame(), nick, "online"));
    }
    obs.ping_pong();
    let rss_before = server.rss_kib();

    let (ack_tx, ack_rx) = mpsc::channel();
    let out = sender.stream().try_clone().expect("clone the socket");
    let writer = thread::spawn(move || write_flood(out, ack_rx));
    let echo_acks = (1, ack_tx.clone());
    let echoes = thread::spawn(move || {
        let saw = read_all(&mut sender, "sender", "stalled", echo_acks);
        (sender, saw)
    });
    let obs_saw_gone = read_all(&mut obs, "sender", "stalled", (0, ack_tx));
    writer.join().expect("writer thread");
    let (_sender, sender_saw_gone) = echoes.join().expect("echo reader thread");
    assert!(
        obs_saw_gone && sender_saw_gone,
        "nobody saw the stalled member leave"
    );
    let rss_grew = server.rss_kib().saturating_sub(rss_before);
    assert!(
        rss_grew < 8 * 1024,
        "RSS grew by {rss_grew} KiB while one member did not read"
    );

    // Now the stalled member reads: a gap-free prefix of the flood, then
    // slow_consumer or simply the end of the stream.
    let mut got = 0;
    let mut closed = false;
    for _ in 0..COUNT + 10 {
        match stalled.next() {
            Next::Frame(f) if kind(&f) == "presence" && got == 0 => {}
            Next::Frame(f) if kind(&f) == "msg" => {
                assert!(
                    f["text"] == text(got).as_str(),
                    "gap in the stream at {got}"
                );
                got += 1;
                assert!(got < COUNT, "the stalled member received everything");
            }
            Next::Frame(f) => {
                assert_eq!(f["code"], "slow_consumer", "{f}");
                stalled.expect_closed();
                closed = true;
            }
            Next::Eof | Next::Reset => closed = true,
            Next::TimedOut => panic!("the stalled member's connection was not closed"),
        }
        if closed {
            break;
        }
    }
    assert!(closed, "the stalled member's connection was not closed");
    obs.ping_pong();
}

/// Flags for the tests below: a 64 KiB queue, closed as soon as it passes
/// it, and time enough for the closed client to read what is queued
/// before its error (it reads again only once it was closed).
const CLOSE_AT_ONCE: [&str; 12] = [
    "--rate",
    "0",
    "--log-level",
    "warn",
    "--outbound-queue-bytes",
    "65536",
    "--max-frame-bytes",
    "16384",
    "--replay-bytes",
    "32768",
    "--slow-consumer-ms",
    "0",
];

/// A member floods the lobby, reading its own echoes, until it sees
/// `stalled` (who reads nothing) go offline.
fn flood_until_gone(server: &Server, stalled: &str) {
    let mut sender = server.join("sender");
    for i in 0..COUNT {
        sender.send_frame(&json!({"type": "msg", "text": text(i)}));
        let (before, _) = sender.recv_until(10, |f| kind(f) == "msg");
        if before.iter().any(|f| is_presence(f, stalled, "offline")) {
            return;
        }
    }
    panic!("{stalled} was not closed after {COUNT} messages it did not read");
}

/// A member closed for not reading, whose `slow_consumer` error never
/// left its full socket (it was closed as it stopped: a stream cut
/// mid-frame), is told why when it resumes: the `welcome` says
/// `closed_for`. Before, it learned only that the server had closed the
/// connection.
#[test]
fn a_member_closed_for_reading_too_slowly_is_told_so_when_it_resumes() {
    let server = Server::start(&[&CLOSE_AT_ONCE[..], &["--close-flush-ms", "0"]].concat());
    let mut stalled = server.connect_with_rcvbuf(4096);
    let welcome = stalled.join("stalled");
    flood_until_gone(&server, "stalled");
    drop(stalled);
    let mut again = server.connect();
    again.send_frame(&json!({
        "type": "join", "nick": "stalled", "rooms": [], "resume": welcome["session"],
    }));
    let welcome = again.expect_kind("welcome");
    assert_eq!(welcome["resumed"], true, "{welcome}");
    assert_eq!(welcome["closed_for"], "slow_consumer", "{welcome}");
    // Said once.
    drop(again);
    let mut third = server.connect();
    third.send_frame(&json!({
        "type": "join", "nick": "stalled", "rooms": [], "resume": welcome["session"],
    }));
    let welcome = third.expect_kind("welcome");
    assert_eq!(welcome["resumed"], true, "{welcome}");
    assert_eq!(welcome.get("closed_for"), None, "{welcome}");
}

/// A member closed for not reading that reads again within the close
/// flush time gets what was queued before, then its `slow_consumer` error
/// whole, then the end of the connection: on every transport, and over
/// a WebSocket the close 1008 with the code as its reason.
mod the_error_arrives_whole_once_read {
    use super::*;
    use webclient::{tls_over, ws_over, Framed, Pki, WsNext};

    fn flags(extra: &[&str]) -> Vec<String> {
        let mut f: Vec<String> = CLOSE_AT_ONCE.iter().map(|s| s.to_string()).collect();
        f.extend(["--close-flush-ms", "20000"].map(String::from));
        f.extend(extra.iter().map(|s| s.to_string()));
        f
    }

    fn start(extra: &[&str]) -> Server {
        let f = flags(extra);
        Server::start(&f.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Frames until one that is not a message: the messages in order.
    fn last_after_messages(mut next: impl FnMut() -> Option<Value>) -> Value {
        let mut got = 0;
        for _ in 0..COUNT + 10 {
            let f = next().expect("the connection ended before its error");
            match kind(&f) {
                "msg" => {
                    assert!(f["text"] == text(got).as_str(), "gap at {got}");
                    got += 1;
                }
                "presence" => {}
                _ => return f,
            }
        }
        panic!("no error after {COUNT} frames");
    }

    #[test]
    fn over_tcp() {
        let server = start(&[]);
        let mut stalled = server.connect_with_rcvbuf(4096);
        stalled.join("stalled");
        flood_until_gone(&server, "stalled");
        let last = last_after_messages(|| match stalled.next() {
            Next::Frame(f) => Some(f),
            _ => None,
        });
        assert_eq!(last["code"], "slow_consumer", "{last}");
        stalled.expect_closed();
    }

    #[test]
    fn over_tls() {
        let pki = Pki::new();
        let server = start(&pki.flags());
        let sock = server
            .connect_with_rcvbuf(4096)
            .stream()
            .try_clone()
            .unwrap();
        let mut stalled = Framed::new(
            tls_over(sock, &pki.ca.client_config(), "localhost").expect("TLS handshake"),
        );
        stalled.join("stalled");
        flood_until_gone(&server, "stalled");
        let last = last_after_messages(|| match stalled.next_within(WAIT) {
            Next::Frame(f) => Some(f),
            _ => None,
        });
        assert_eq!(last["code"], "slow_consumer", "{last}");
        assert!(matches!(stalled.next_within(WAIT), Next::Eof));
    }

    #[test]
    fn over_a_websocket() {
        let server = start(&[]);
        let sock = server
            .connect_with_rcvbuf(4096)
            .stream()
            .try_clone()
            .unwrap();
        let url = format!("ws://{}/ws", server.addr());
        let mut stalled = ws_over(sock, &url, None).expect("WebSocket handshake");
        stalled.join("stalled");
        flood_until_gone(&server, "stalled");
        let last = last_after_messages(|| match stalled.next() {
            WsNext::Frame(f) => Some(f),
            _ => None,
        });
        assert_eq!(last["code"], "slow_consumer", "{last}");
        assert_eq!(
            stalled.expect_close_frame(),
            (1008, "slow_consumer".to_owned())
        );
    }
}

/// The grace of the test of a reader too slow, and its backlog of
/// messages of [`TEXT_BYTES`] (about 6 MiB: the kernel's buffers on
/// loopback take up to 4 MiB of it, the rest, 30 times the 64 KiB queue
/// limit, is queued), queued for one member at once.
const READING_GRACE_MS: u64 = 400;
const BACKLOG: usize = 1_500;

/// A member whose receive buffer is 4 KiB gets a backlog of `backlog`
/// messages at once from another, with `--slow-consumer-ms` `grace_ms`,
/// and reads it at `rate` bytes per second for `paced`, then at once. The
/// messages it got in order, the frame that ended them (`None`: it got
/// all, then its `pong`, still connected), and how long it read.
fn backlog_read_at(
    rate: f64,
    paced: Duration,
    grace_ms: u64,
    backlog: usize,
) -> (usize, Option<Value>, Duration) {
    let grace = grace_ms.to_string();
    let server = Server::start(
        &[
            &["--rate", "0", "--log-level", "warn"],
            &SMALL_QUEUE[..],
            &["--slow-consumer-ms", &grace],
        ]
        .concat(),
    );
    let mut reader = server.connect_with_rcvbuf(4096);
    reader.join("reader");
    let mut sender = server.join("sender");
    assert!(is_presence(&reader.recv_frame(), "sender", "online"));
    let mut burst = Vec::new();
    for i in 0..backlog {
        let frame = json!({"type": "msg", "text": text(i)});
        burst.extend(frame_bytes(frame.to_string().as_bytes()));
    }
    let mut out = sender.stream().try_clone().expect("clone the socket");
    let writer = thread::spawn(move || out.write_all(&burst).expect("the burst is taken"));
    // The sender reads its echoes at once.
    let echoes = thread::spawn(move || {
        for i in 0..backlog {
            let f = sender.recv_frame();
            assert!(f["text"] == text(i).as_str(), "echo {i}: {f}");
        }
        sender
    });
    // The slow reader: after each frame it waits until its clock has
    // caught up with what it read at `rate` (the waits are its pace, the
    // workload under test).
    let start = Instant::now();
    let mut read = 0;
    let mut got = 0;
    let mut last = None;
    while got < backlog {
        let f = match reader.next() {
            Next::Frame(f) => f,
            other => panic!("after {got} messages: {other:?}"),
        };
        if kind(&f) != "msg" {
            last = Some(f);
            break;
        }
        assert!(f["text"] == text(got).as_str(), "gap at {got}");
        got += 1;
        read += reader.last_frame_bytes();
        let due = Duration::from_secs_f64(read as f64 / rate);
        if let Some(ahead) = due.min(paced).checked_sub(start.elapsed()) {
            thread::sleep(ahead);
        }
    }
    let took = start.elapsed();
    writer.join().expect("writer thread");
    let _sender = echoes.join().expect("echo reader thread");
    if last.is_none() {
        reader.ping_pong();
    }
    (got, last, took)
}

/// A member reading a backlog far past its queue's limit steadily (4 MiB
/// a second, 6 MiB each grace of 1.5 s, while its limit is 64 KiB) is
/// not closed, though it takes more than two graces to read it: it gets
/// every message in order and is still connected. Before, the grace ran
/// from when the queue first passed the limit, and it was closed
/// `slow_consumer` once that ran out, reading all the while. (The grace
/// is long beside the time the reader takes to free half the kernel's
/// send buffer, up to 4 MiB on loopback, before the server may write
/// again: until then its queue does not shrink, however fast it reads.)
#[test]
fn a_member_reading_a_long_backlog_steadily_is_not_closed() {
    const GRACE_MS: u64 = 1_500;
    const LONG_BACKLOG: usize = 3_500;
    let (got, last, took) =
        backlog_read_at(4.0 * 1024.0 * 1024.0, Duration::MAX, GRACE_MS, LONG_BACKLOG);
    assert_eq!(last, None, "closed after {got} messages in {took:?}");
    assert_eq!(got, LONG_BACKLOG);
    assert!(
        took > Duration::from_millis(2 * GRACE_MS),
        "read in {took:?}: not several graces, the test proves nothing"
    );
}

/// A member that reads too little of its backlog (16 KiB a second, 6.4
/// KiB each grace, under its 64 KiB limit; for 2 s, five graces, then
/// at once) is still closed `slow_consumer`, after a gap-free prefix.
#[test]
fn a_member_reading_less_than_its_limit_each_grace_is_closed() {
    let (got, last, _) = backlog_read_at(
        16.0 * 1024.0,
        Duration::from_secs(2),
        READING_GRACE_MS,
        BACKLOG,
    );
    let last = last.unwrap_or_else(|| panic!("got all {got} messages, not closed"));
    assert_eq!(last["code"], "slow_consumer", "{last}");
}
