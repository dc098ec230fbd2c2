//! Cluster mode end to end: several real chatserver nodes sharing rooms
//! through a real nats-server with JetStream, started here on a free
//! loopback port with a temporary store directory and stopped by its PID.
//! Without nats-server on PATH these tests say so and pass, unless
//! `CHAT_REQUIRE_NATS=1` (as .ci/run sets), where they fail.

mod common;

use std::collections::{BTreeMap, HashMap};

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{is_presence, kind, Client, Next, Server, WAIT};
use serde_json::{json, Value};

/// A nats-server with JetStream, on 127.0.0.1, killed (by PID) on drop.
struct Nats {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Nats {
    /// Start one, or `None` (having said why) if there is no nats-server
    /// and it is not required.
    fn start(test: &str) -> Option<Nats> {
        let found = Command::new("nats-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            let required =
                std::env::var("CHAT_REQUIRE_NATS").is_ok_and(|v| !v.is_empty() && v != "0");
            assert!(
                !required,
                "{test}: nats-server not found on PATH and CHAT_REQUIRE_NATS is set"
            );
            eprintln!(
                "\n*** {test}: SKIPPED: nats-server not found on PATH \
                 (apt-get install nats-server; set CHAT_REQUIRE_NATS=1 to fail instead) ***\n"
            );
            return None;
        }
        let port = free_port();
        let mut nats = Nats {
            child: None,
            port,
            dir: tempfile::tempdir().expect("temporary directory"),
        };
        nats.run();
        Some(nats)
    }

    /// Start the process (again) on the same port and store directory.
    fn run(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        // Ready when it accepts a connection and says INFO.
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let mut line = String::new();
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(s), &mut line);
                if line.starts_with("INFO") {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "nats-server did not start");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGKILL (its own PID) and reap.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A node named `name` of the cluster on `nats`.
fn node(nats: &Nats, name: &str, extra: &[&str]) -> Server {
    let url = nats.url();
    let mut flags = vec!["--cluster", &url, "--node", name];
    flags.extend_from_slice(extra);
    Server::start(&flags)
}

/// Join `nick` on `server` (v2 join, into the lobby); the welcome.
fn join(server: &Server, nick: &str) -> (Client, Value) {
    let mut c = server.connect();
    c.send_frame(&json!({"type": "join", "nick": nick, "rooms": ["lobby"]}));
    let welcome = c.expect_kind("welcome");
    (c, welcome)
}

/// Frames until `done` says stop (at most `max`, each within WAIT).
fn read_until(c: &mut Client, max: usize, mut done: impl FnMut(&Value) -> bool) -> Vec<Value> {
    let mut got = Vec::new();
    for _ in 0..max {
        match c.next() {
            Next::Frame(f) => {
                let stop = done(&f);
                got.push(f);
                if stop {
                    return got;
                }
            }
            other => panic!("expected a frame, got {other:?} after {} frames", got.len()),
        }
    }
    panic!("not done within {max} frames");
}

#[test]
fn clients_on_two_nodes_talk_in_one_room() {
    let Some(nats) = Nats::start("clients_on_two_nodes_talk_in_one_room") else {
        return;
    };
    let a = node(&nats, "a", &[]);
    let b = node(&nats, "b", &[]);
    let (mut alice, _) = join(&a, "alice");
    read_until(&mut alice, 10, |f| kind(f) == "entered");
    let (mut bob, welcome) = join(&b, "bob");
    let entered = read_until(&mut bob, 10, |f| kind(f) == "entered");
    let entered = entered.last().unwrap();
    // bob, on node b, sees alice on node a.
    let online = entered["online"].as_array().unwrap();
    assert!(online.contains(&json!("alice")), "{entered}");
    assert!(welcome["session"].is_string());
    read_until(&mut alice, 10, |f| is_presence(f, "bob", "online"));

    alice.send_frame(&json!({"type": "msg", "room": "lobby", "text": "hi bob", "id": "a1"}));
    let echo = read_until(&mut alice, 10, |f| kind(f) == "msg");
    let echo = echo.last().unwrap();
    assert_eq!(echo["id"], "a1");
    let got = read_until(&mut bob, 10, |f| kind(f) == "msg");
    let got = got.last().unwrap();
    assert_eq!(got["text"], "hi bob");
    assert_eq!(got["seq"], echo["seq"], "one seq for everyone");

    // A private message across nodes.
    bob.send_frame(&json!({"type": "msg", "room": "lobby", "to": ["alice"], "text": "psst"}));
    let got = read_until(&mut alice, 10, |f| kind(f) == "msg");
    assert_eq!(got.last().unwrap()["text"], "psst");

    // One nickname on one node at a time, across nodes.
    let mut again = b.connect();
    again.send_frame(&json!({"type": "join", "nick": "ALICE", "rooms": ["lobby"]}));
    again.expect_error("nick_taken");
}

/// Frames of `c` until `done` is true of everything seen so far, each
/// within WAIT; all of them.
fn collect(c: &mut Client, max: usize, mut done: impl FnMut(&[Value]) -> bool) -> Vec<Value> {
    let mut got = Vec::new();
    while !done(&got) {
        assert!(got.len() < max, "not done within {max} frames");
        match c.next() {
            Next::Frame(f) => got.push(f),
            other => panic!("expected a frame, got {other:?} after {} frames", got.len()),
        }
    }
    got
}

/// Whether each room's seqs in `frames` (events, not replays) only grow.
fn seqs_increase(frames: &[Value]) -> Result<(), String> {
    let mut last: HashMap<String, u64> = HashMap::new();
    for f in frames {
        if !matches!(kind(f), "msg" | "presence") || f["replay"] == true {
            continue;
        }
        let room = f["room"].as_str().unwrap_or("lobby").to_owned();
        let seq = f["seq"].as_u64().ok_or(format!("no seq: {f}"))?;
        let prev = last.insert(room.clone(), seq).unwrap_or(0);
        if seq <= prev {
            return Err(format!("#{room}: seq {seq} after {prev}"));
        }
    }
    Ok(())
}

/// Read until `c` knows everyone in `everyone` is in the lobby (from its
/// `entered` and the presence events after it).
fn wait_for_everyone(c: &mut Client, everyone: &[String]) {
    let mut here: std::collections::HashSet<String> = Default::default();
    collect(c, 10_000, |got| {
        if let Some(f) = got.last() {
            if kind(f) == "entered" && f["room"] == "lobby" {
                for n in f["online"].as_array().unwrap() {
                    here.insert(n.as_str().unwrap().to_owned());
                }
            }
            if kind(f) == "presence" && f["room"] == "lobby" {
                let nick = f["nick"].as_str().unwrap().to_owned();
                if f["status"] == "online" {
                    here.insert(nick);
                } else {
                    here.remove(&nick);
                }
            }
        }
        everyone.iter().all(|n| here.contains(n))
    });
}

const FAST: [&str; 4] = ["--rate", "10000", "--burst", "10000"];

#[test]
fn thirty_clients_on_three_nodes_see_one_order() {
    let Some(nats) = Nats::start("thirty_clients_on_three_nodes_see_one_order") else {
        return;
    };
    let nodes: Vec<Server> = ["a", "b", "c"]
        .iter()
        .map(|n| node(&nats, n, &FAST))
        .collect();
    const CLIENTS: usize = 30;
    const EACH: usize = 4;
    let nicks: Vec<String> = (0..CLIENTS).map(|i| format!("u{i}")).collect();
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let mut threads = Vec::new();
    for (i, nick) in nicks.iter().enumerate() {
        let mut c = nodes[i % 3].connect();
        let (nick, everyone, barrier) = (nick.clone(), nicks.clone(), Arc::clone(&barrier));
        threads.push(thread::spawn(move || {
            c.send_frame(&json!({"type": "join", "nick": nick, "rooms": ["lobby", "shared"]}));
            c.expect_kind("welcome");
            wait_for_everyone(&mut c, &everyone);
            barrier.wait();
            // Everyone talks at once: to the shared room, and privately
            // to the next client (on another node).
            let next = &everyone[(i + 1) % everyone.len()];
            for k in 0..EACH {
                c.send_frame(&json!({"type": "msg", "room": "shared", "text": format!("{nick}/{k}"), "id": format!("b{k}")}));
            }
            c.send_frame(&json!({"type": "msg", "room": "lobby", "to": [next], "text": format!("{nick}->{next}")}));
            let prev = &everyone[(i + everyone.len() - 1) % everyone.len()];
            let private = format!("{prev}->{nick}");
            let frames = collect(&mut c, 20_000, |got| {
                let shared = got
                    .iter()
                    .filter(|f| kind(f) == "msg" && f["room"] == "shared")
                    .count();
                shared == CLIENTS * EACH && got.iter().any(|f| f["text"] == private.as_str())
            });
            (nick, frames)
        }));
    }
    let results: Vec<(String, Vec<Value>)> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();
    let order = |frames: &[Value]| -> Vec<(u64, String)> {
        frames
            .iter()
            .filter(|f| kind(f) == "msg" && f["room"] == "shared")
            .map(|f| {
                (
                    f["seq"].as_u64().unwrap(),
                    f["text"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let first = order(&results[0].1);
    assert_eq!(first.len(), CLIENTS * EACH);
    for (nick, frames) in &results {
        seqs_increase(frames).unwrap_or_else(|e| panic!("{nick}: {e}"));
        assert_eq!(order(frames), first, "{nick} saw another order");
        // Each private message reached its recipient once, and no one else.
        let private: Vec<&Value> = frames
            .iter()
            .filter(|f| kind(f) == "msg" && f["room"] == "lobby" && f["id"].is_null())
            .collect();
        assert!(
            private.iter().all(|f| {
                let t = f["text"].as_str().unwrap();
                t.ends_with(&format!("->{nick}")) || t.starts_with(&format!("{nick}->"))
            }),
            "{nick} saw someone else's private message"
        );
    }
    // Every message once, each sender's in the order it sent them.
    let mut seen = BTreeMap::new();
    for (_, text) in &first {
        *seen.entry(text.clone()).or_insert(0) += 1;
    }
    assert!(seen.values().all(|&n| n == 1));
    for nick in &nicks {
        let mine: Vec<&String> = first
            .iter()
            .map(|(_, t)| t)
            .filter(|t| t.starts_with(&format!("{nick}/")))
            .collect();
        let want: Vec<String> = (0..EACH).map(|k| format!("{nick}/{k}")).collect();
        assert_eq!(mine, want.iter().collect::<Vec<_>>());
    }
}

#[test]
fn two_clients_claiming_one_nick_on_two_nodes_at_once_one_wins() {
    let Some(nats) = Nats::start("two_clients_claiming_one_nick_on_two_nodes_at_once_one_wins")
    else {
        return;
    };
    let a = node(&nats, "a", &[]);
    let b = node(&nats, "b", &[]);
    for round in 0..5 {
        let nick = format!("zed{round}");
        let barrier = Arc::new(Barrier::new(2));
        let mut answers = Vec::new();
        let mut threads = Vec::new();
        for server in [&a, &b] {
            let mut c = server.connect();
            let (nick, barrier) = (nick.clone(), Arc::clone(&barrier));
            threads.push(thread::spawn(move || {
                barrier.wait();
                c.send_frame(&json!({"type": "join", "nick": nick, "rooms": ["lobby"]}));
                let first = c.recv_frame();
                (c, first)
            }));
        }
        let mut clients = Vec::new();
        for t in threads {
            let (c, first) = t.join().unwrap();
            answers.push(first);
            clients.push(c);
        }
        let won = answers.iter().filter(|f| kind(f) == "welcome").count();
        let lost = answers
            .iter()
            .filter(|f| kind(f) == "error" && f["code"] == "nick_taken")
            .count();
        assert_eq!((won, lost), (1, 1), "round {round}: {answers:?}");
    }
}
