//! SIGKILL under load: no acknowledged message is lost, and every client resumes.

mod checks;
mod raw;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use checks::{check_at_end, check_at_kill, check_chatclient, check_export, check_raw};
use serde_json::Value;

use crate::common::{Client, RealClient, WAIT};
use crate::{durable, export, free_port, wall_ms, Stored};

// ---------------------------------------------------------------------
// 1. SIGKILL under load.
// ---------------------------------------------------------------------

/// The raw clients of the kill test; each sends `PER_CLIENT` messages, at
/// most `WINDOW` unanswered at once, alternating between the rooms.
const RAW: [&str; 4] = ["alice", "bob", "carol", "dave"];
const ROOMS: [&str; 2] = ["lobby", "rust"];
const PER_CLIENT: usize = 200;
const WINDOW: usize = 8;
/// Lines the real chatclient types before the kill, and while the server is down.
const REAL_LINES: usize = 30;

fn msg_room(nick: &str, i: usize) -> &'static str {
    ROOMS[(i + nick.len()) % ROOMS.len()]
}

fn msg_id(nick: &str, i: usize) -> String {
    format!("{nick}-{i:03}")
}

fn msg_text(nick: &str, i: usize) -> String {
    format!("{nick} {i:03} {} {}", msg_room(nick, i), "x".repeat(i % 40))
}

/// SplitMix64: a seeded generator for the kill moment.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// Where the restarted server is, and what the store held at the kill.
#[derive(Debug, Clone)]
struct Restart {
    addr: SocketAddr,
    stored_last: HashMap<String, u64>,
}

/// A raw client's state; it runs on a thread of its own.
struct Raw {
    nick: String,
    conn: Client,
    token: String,
    /// Which connection this is (0 before the kill, 1 after).
    generation: usize,
    epochs: HashMap<String, String>,
    /// `entered.seq` of the first entry: every msg after it must reach us.
    first: HashMap<String, u64>,
    /// The last seq received per room (msg or presence).
    last: HashMap<String, u64>,
    in_room: HashSet<String>,
    replaying: HashSet<String>,
    /// Every msg received, per room, in arrival order.
    got: HashMap<String, Vec<Value>>,
    /// Every msg and presence received on the first connection.
    before_kill: Vec<Value>,
    /// Sent, not answered: index -> (room, text).
    pending: BTreeMap<usize, (String, String)>,
    /// Answered: id -> (room, seq, text).
    echoes: HashMap<String, (String, u64, String)>,
    next: usize,
    fins: HashSet<(String, String)>,
    restart: Option<Restart>,
    /// The resumed welcome and entries, checked by the test.
    resumed: Option<(Value, Vec<Value>)>,
    echo_tx: Sender<()>,
}

/// What a raw client's thread is told.
struct Control {
    restart: Receiver<Restart>,
    fin: Receiver<()>,
    done: Sender<String>,
}

/// The client threads, joined as they finish; a thread that panicked fails
/// the test with its message.
struct Workers {
    running: Vec<Option<JoinHandle<Raw>>>,
    done: Vec<Raw>,
}

impl Workers {
    fn check(&mut self) {
        for slot in &mut self.running {
            if slot.as_ref().is_some_and(|h| h.is_finished()) {
                let handle = slot.take().expect("checked");
                match handle.join() {
                    Ok(raw) => self.done.push(raw),
                    Err(p) => std::panic::resume_unwind(p),
                }
            }
        }
    }

    /// The next message on `rx`, within [`WAIT`], watching the threads.
    fn recv<T>(&mut self, rx: &Receiver<T>, what: &str) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(v) => return v,
                Err(RecvTimeoutError::Timeout) => {
                    self.check();
                    assert!(Instant::now() < deadline, "no {what} within {WAIT:?}");
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.check();
                    panic!("no {what}: every sender is gone");
                }
            }
        }
    }

    fn join_all(mut self) -> Vec<Raw> {
        let deadline = Instant::now() + WAIT;
        while self.running.iter().any(Option::is_some) {
            assert!(Instant::now() < deadline, "client threads did not end");
            self.check();
            // Polling for threads that end: bounded, not synchronisation.
            thread::sleep(Duration::from_millis(10));
        }
        self.done
    }
}

fn seed() -> u64 {
    match std::env::var("DURABLE_SEED") {
        Ok(s) => s.parse().expect("DURABLE_SEED is a number"),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    }
}

/// The test. Four raw clients send into two rooms as fast as their
/// windows allow while the real chatclient types into the lobby; the server
/// is killed with SIGKILL after a random number of echoes and started again
/// on the same directory and port.
///
/// * Everything any client received before the kill was in the store at
///   the kill, and every echo is in the export exactly once.
/// * The store's seqs are gapless before and after; what was stored before
///   the kill is unchanged, and the first event after the restart is the
///   last stored seq + 1.
/// * The raw clients resume (`resumed: true`), re-enter with `since` and
///   the epoch (`recovered: true`), and end having received every message
///   of each room after they first entered exactly once, in seq order.
/// * The chatclient reconnects by itself and shows every lobby message
///   (its own lines included) exactly once, in the stored order.
#[test]
fn sigkill_under_load_loses_no_acknowledged_message_and_everyone_resumes() {
    let seed = seed();
    println!("kill test seed {seed} (DURABLE_SEED={seed} picks the same kill moment)");
    let mut rng = Rng(seed);
    let total = (RAW.len() * PER_CLIENT) as u64;
    let kill_after = rng.range(10, total * 3 / 4);
    println!("killing after {kill_after} of {total} echoes");

    let dir = tempfile::tempdir().expect("temporary directory");
    let listen = format!("127.0.0.1:{}", free_port());
    let flags = [
        "--listen",
        &listen,
        "--rate",
        "0",
        // Every replay here must be whole: the test is about the store.
        "--replay-limit",
        "100000",
        "--replay-bytes",
        "8388608",
        "--outbound-queue-bytes",
        "33554432",
        "--log-level",
        "warn",
    ];
    let mut server = durable(dir.path(), &flags);

    // The real client first, so it sees the lobby's every message.
    let mut eve = RealClient::start("eve", &listen, &[("CHATCLIENT_RECONNECT_MIN_MS", "50")]);
    eve.expect_line("its own presence", |l| l == "* eve is online");
    let (echo_tx, echo_rx) = mpsc::channel();
    let raws: Vec<Raw> = RAW
        .iter()
        .map(|n| Raw::join(&server, n, echo_tx.clone()))
        .collect();
    drop(echo_tx);
    let (done_tx, done_rx) = mpsc::channel();
    let mut restart_txs = Vec::new();
    let mut fin_txs = Vec::new();
    let mut workers = Workers {
        running: Vec::new(),
        done: Vec::new(),
    };
    for raw in raws {
        let (restart_tx, restart) = mpsc::channel();
        let (fin_tx, fin) = mpsc::channel();
        restart_txs.push(restart_tx);
        fin_txs.push(fin_tx);
        let ctl = Control {
            restart,
            fin,
            done: done_tx.clone(),
        };
        workers
            .running
            .push(Some(thread::spawn(move || raw.run(ctl))));
    }
    let eve_lines: Vec<String> = (0..2 * REAL_LINES).map(|i| format!("eve {i:03}")).collect();
    eve.type_lines(&eve_lines[..REAL_LINES]);

    for n in 0..kill_after {
        workers.recv(&echo_rx, &format!("echo {n}"));
    }
    server.sigkill();
    let killed_ms = wall_ms();

    // What the store held at the kill.
    let at_kill = Stored::read(dir.path());
    at_kill.assert_gapless("at the kill");
    for room in ROOMS {
        let rows = &at_kill.events[room];
        assert_eq!(
            rows.last().map(|r| r.seq),
            Some(at_kill.last(room)),
            "#{room}: rooms.last_seq is not its last event"
        );
    }
    let stored_raw_msgs = at_kill
        .events
        .values()
        .flatten()
        .filter(|r| r.kind == 1 && RAW.contains(&r.nick.as_str()))
        .count() as u64;
    assert!(
        stored_raw_msgs >= kill_after && stored_raw_msgs < total,
        "the kill came after {stored_raw_msgs} stored messages, not mid-load ({kill_after} echoes of {total})"
    );
    println!(
        "stored at the kill: {stored_raw_msgs} raw messages, last seqs {:?}",
        at_kill.rooms
    );
    let export_at_kill = export(dir.path(), &[]);
    let stored_last: HashMap<String, u64> = ROOMS
        .iter()
        .map(|r| (r.to_string(), at_kill.last(r)))
        .collect();

    // Typed while the server is down: sent once it is back.
    eve.type_lines(&eve_lines[REAL_LINES..]);
    server = durable(dir.path(), &flags);
    assert_eq!(server.addr().to_string(), listen, "restarted elsewhere");
    for tx in &restart_txs {
        tx.send(Restart {
            addr: server.addr(),
            stored_last: stored_last.clone(),
        })
        .expect("a client thread went away");
    }
    for _ in 0..RAW.len() {
        workers.recv(&done_rx, "client done");
    }
    eve.expect_line("its last line's echo", |l| {
        l == format!("eve: {}", eve_lines[2 * REAL_LINES - 1])
    });
    for tx in &fin_txs {
        tx.send(()).expect("a client thread went away");
    }
    let raws = workers.join_all();
    for raw in &raws {
        let entered: Vec<&Value> = raw.resumed.iter().flat_map(|(_, e)| e).collect();
        let seqs: Vec<(&Value, &Value)> = entered.iter().map(|e| (&e["room"], &e["seq"])).collect();
        let replayed = raw.got.values().flatten().filter(|m| m["replay"] == true);
        println!(
            "{}: re-entered at {seqs:?}, {} msgs replayed",
            raw.nick,
            replayed.count()
        );
    }
    let fins: Vec<String> = RAW.iter().map(|n| format!("{n}: fin")).collect();
    eve.expect_all(&fins);
    let (status, stderr, shown) = eve.finish();
    println!(
        "chatclient: {:?}",
        shown
            .iter()
            .filter(|l| l.starts_with("* "))
            .collect::<Vec<_>>()
    );
    assert!(status.success(), "chatclient exited {status}: {stderr}");
    assert!(stderr.is_empty(), "chatclient's stderr: {stderr}");

    server.sigterm();
    let status = server.wait_exit(WAIT);
    assert!(status.success(), "the restarted server exited {status:?}");

    check_at_kill(&raws, &at_kill, &export_at_kill, &stored_last, kill_after);
    let at_end = Stored::read(dir.path());
    check_at_end(&at_kill, &at_end, &stored_last, killed_ms);
    let exported = export(dir.path(), &[]);
    let by_room = check_export(&exported, &at_end);
    for raw in &raws {
        check_raw(raw, &exported, &by_room);
    }
    check_chatclient(&shown, &by_room, &eve_lines);
}
