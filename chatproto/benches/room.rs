//! Fan-out through the server core: messages handled per second in a room
//! of 100 (and of 1 000) members; and a message into one of many rooms past
//! the history budget for them all.
//!
//! Each iteration is one `handle_frame` followed by the drain a shell does
//! after every input: `poll` until `None`, encoding each `Deliver` once and
//! handing every recipient's outbound queue a clone of the same `Bytes`. A
//! broadcast to 100 members is 100 queued copies, so copies per second are
//! 100 times the messages per second reported.

use std::hint::black_box;

use bytes::Bytes;
use chatproto::{encode, ClientFrame, ClientId, Now, Output, Server, ServerConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// The shell's side: one outbound queue per connection.
struct Shell {
    server: Server,
    ids: Vec<ClientId>,
    queues: Vec<Vec<Bytes>>,
    mono: u64,
}

impl Shell {
    /// A server whose `lobby` holds `members` v1 clients, join traffic drained.
    fn new(members: usize) -> Self {
        let mut sh = Shell {
            server: Server::new(ServerConfig::default(), [1; 32]),
            ids: Vec::new(),
            queues: Vec::new(),
            mono: 0,
        };
        for i in 0..members {
            let id = sh.server.handle_connect(sh.now());
            sh.server
                .handle_frame(sh.now(), id, ClientFrame::join(format!("member{i:04}")));
            sh.ids.push(id);
            sh.queues.push(Vec::new());
            sh.drain();
        }
        assert_eq!(sh.server.members(), members);
        sh.clear();
        sh
    }

    /// A server with `config` and one v2 client, alice, in no room.
    fn alice_alone(config: ServerConfig) -> Self {
        let mut sh = Shell {
            server: Server::new(config, [1; 32]),
            ids: Vec::new(),
            queues: vec![Vec::new()],
            mono: 0,
        };
        let id = sh.server.handle_connect(sh.now());
        sh.ids.push(id);
        sh.send(0, ClientFrame::join_v2("alice", Vec::new(), None));
        sh
    }

    fn now(&self) -> Now {
        Now::new(self.mono, 1_732_400_000_000 + self.mono)
    }

    /// Drain the server as a shell does; returns how many copies were queued.
    fn drain(&mut self) -> usize {
        let max = self.server.config().max_frame_bytes;
        let mut copies = 0;
        while let Some(out) = self.server.poll() {
            match out {
                Output::Send { to, frame, .. } => {
                    let bytes = encode(&frame, max).expect("fits");
                    self.queues[to.0 as usize].push(bytes);
                    copies += 1;
                }
                Output::Deliver {
                    event, to, with_id, ..
                } => {
                    // Encode once; every recipient shares the bytes.
                    let bytes = encode(&event.wire(with_id, false), max).expect("fits");
                    for c in to {
                        self.queues[c.0 as usize].push(bytes.clone());
                    }
                    copies += to.len();
                }
                Output::Close { client, .. } => {
                    black_box(client);
                }
                _ => {}
            }
        }
        copies
    }

    /// The writers caught up: every queue empty, its bytes dropped.
    fn clear(&mut self) {
        for q in &mut self.queues {
            black_box(&q);
            q.clear();
        }
    }

    /// Member `i` sends `frame`; everything it causes is queued, then written.
    fn send(&mut self, i: usize, frame: ClientFrame) -> usize {
        self.mono += 1;
        self.server.handle_frame(self.now(), self.ids[i], frame);
        let copies = self.drain();
        self.clear();
        copies
    }
}

const TEXT: &str = "a chat line of about sixty-four bytes, as people type them: ok?!";

fn fanout(c: &mut Criterion) {
    for members in [100, 1_000] {
        let mut g = c.benchmark_group(format!("room_fanout_{members}"));
        g.throughput(Throughput::Elements(1));
        if members > 100 {
            g.sample_size(20);
        }

        g.bench_function("broadcast_msg", |b| {
            let mut sh = Shell::new(members);
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % members;
                let copies = sh.send(i, ClientFrame::msg(Vec::new(), TEXT));
                assert_eq!(copies, members);
            })
        });

        // A v2 message with an id: the sender's echo is encoded apart
        // (it alone carries the id), and the id is remembered for dedup.
        g.bench_function("broadcast_msg_with_id", |b| {
            let mut sh = Shell::new(members);
            let mut n: u64 = 0;
            b.iter(|| {
                n += 1;
                let i = n as usize % members;
                let id = Some(format!("m{n}"));
                let frame = ClientFrame::msg_in(chatproto::LOBBY, Vec::new(), TEXT, id);
                assert_eq!(sh.send(i, frame), members);
            })
        });

        g.bench_function("private_msg", |b| {
            let mut sh = Shell::new(members);
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % members;
                let to = format!("member{:04}", (i + 37) % members);
                let copies = sh.send(i, ClientFrame::msg(vec![to], TEXT));
                // The recipient and the sender's echo.
                assert_eq!(copies, 2);
            })
        });
        // As chatclient sends them: each message with an id of its own,
        // remembered (and the oldest forgotten) for dedup.
        g.bench_function("private_msg_with_id", |b| {
            let mut sh = Shell::new(members);
            let mut n: u64 = 0;
            b.iter(|| {
                n += 1;
                let i = n as usize % members;
                let to = format!("member{:04}", (i + 37) % members);
                let id = Some(format!("m{n}"));
                let frame = ClientFrame::msg_in(chatproto::LOBBY, vec![to], TEXT, id);
                // The recipient and the sender's echo.
                assert_eq!(sh.send(i, frame), 2);
            })
        });
        g.finish();
    }
}

/// Many rooms past the history budget for them all: each message makes the
/// least recently used room give back its oldest message (BENCHMARKS.md,
/// "Forgetting the least recently used room").
fn rooms_past_the_history_budget(c: &mut Criterion) {
    let mut g = c.benchmark_group("rooms_past_the_history_budget");
    g.throughput(Throughput::Elements(1));
    for rooms in [1_000, 10_000] {
        g.bench_function(format!("msg_{rooms}_rooms"), |b| {
            let mut config = ServerConfig::default();
            config.max_rooms_per_client = rooms;
            // About two of these messages a room fit (each is counted for
            // its strings and 128 bytes), so history is shed from the start.
            config.history_bytes_total = rooms * 500;
            let mut sh = Shell::alice_alone(config);
            let names: Vec<String> = (0..rooms).map(|i| format!("r{i}")).collect();
            for name in &names {
                sh.send(0, ClientFrame::enter(name.clone(), None));
            }
            for _ in 0..3 {
                for name in &names {
                    sh.send(0, ClientFrame::msg_in(name.clone(), Vec::new(), TEXT, None));
                }
            }
            let mut i = 0;
            b.iter(|| {
                // People talk in a few rooms; the rest sit idle.
                i = (i + 1) % 7;
                let frame = ClientFrame::msg_in(names[i].clone(), Vec::new(), TEXT, None);
                assert_eq!(sh.send(0, frame), 1);
            })
        });
    }
    g.finish();
}

/// A `rooms` request on a server with 10,000 rooms in use: the answer
/// lists the names that sort first, as many as fit a frame (about 1,000
/// at the default limit).
fn rooms_answer(c: &mut Criterion) {
    let mut g = c.benchmark_group("rooms_answer");
    g.throughput(Throughput::Elements(1));
    let rooms = 10_000;
    g.bench_function(format!("{rooms}_rooms"), |b| {
        let mut config = ServerConfig::default();
        config.max_rooms_per_client = rooms;
        let mut sh = Shell::alice_alone(config);
        // Names in no particular order.
        for i in 0..rooms {
            let n = (i * 7_919) % rooms;
            sh.send(0, ClientFrame::enter(format!("r{n}"), None));
        }
        b.iter(|| assert_eq!(sh.send(0, ClientFrame::Rooms), 1))
    });
    g.finish();
}

criterion_group!(benches, fanout, rooms_past_the_history_budget, rooms_answer);
criterion_main!(benches);
