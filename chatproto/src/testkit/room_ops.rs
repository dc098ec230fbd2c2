//! The body of the `room` fuzz target: a [`Sim`] driven by operations read
//! from the fuzzer's bytes, and the invariants checked along the way.

use std::collections::HashMap;

use super::Sim;
use crate::{ClientFrame, Record, Server, ServerConfig, ServerFrame};

/// Drive a server with operations read from `data` and check its
/// invariants: seq strictly increasing per client and room, unique
/// nicknames, no delivery to a non-recipient (all checked by [`Sim`]), and
/// every `join` and `msg` from an open client answered by exactly one reply
/// (welcome or echo, or an error; a welcome may be followed by the
/// refusal of rooms it could not enter). The server holds two rooms in
/// memory among more names, so rooms are taken out of memory all the
/// time. An odd first byte makes the server durable: then every message
/// is stored before it goes out, stored seqs rise within an epoch (rooms
/// unloaded and woken keep theirs), rooms rest in the store up to three,
/// and the store can fail and recover on command.
///
/// The `room` fuzz target and the corpus replay test both call this.
pub fn check_room_ops(data: &[u8]) {
    const NICKS: [&str; 8] = [
        "alice",
        "Alice",
        "bob",
        "b0b",
        "José",
        "Jose\u{301}",
        "bad nick",
        "",
    ];
    // Messages go to the first four; entering, parting and pages to any.
    const ROOMS: [&str; 8] = ["lobby", "rust", "Rust", "#bad", "ops", "dev", "Ops", "x.y"];
    let mut sim = Sim::new(
        ServerConfig {
            max_frame_bytes: crate::MIN_MAX_FRAME_BYTES,
            join_timeout_ms: 1_000,
            idle_ping_ms: 2_000,
            pong_timeout_ms: 1_000,
            // Low enough that the fuzzer's recipient lists cross it.
            max_recipients: 4,
            max_rooms_per_client: 2,
            history_per_room: 8,
            // Few enough that rooms are taken out of memory (forgotten,
            // or unloaded and woken on a durable server) and forgotten
            // past the store's cap.
            max_rooms: 2,
            max_stored_rooms: 3,
            // Odd first bytes run a durable server, whose store the ops
            // below can make fail and recover.
            durable: data.first().is_some_and(|b| b & 1 == 1),
            ..ServerConfig::default()
        },
        1_000_000,
    );
    let mut ops = data.iter().copied();
    // Whether the shell's input is paused (the server is told; frames the
    // ops send meanwhile still reach it, which no shell does, and must
    // break nothing either).
    let mut paused = false;
    while let (Some(op), Some(arg)) = (ops.next(), ops.next()) {
        let n = sim.clients.len();
        let who = if n == 0 { 0 } else { arg as usize % n };
        match op % 8 {
            0 | 1 if n < 16 => {
                let i = sim.connect();
                if op % 8 == 1 {
                    expect_one_reply(&mut sim, i, |s| s.join(i, NICKS[arg as usize % 8]));
                }
            }
            2 if n > 0 => expect_one_reply(&mut sim, who, |s| {
                s.join(who, NICKS[(arg >> 4) as usize % 8])
            }),
            3 | 4 if n > 0 => {
                let mut to = Vec::new();
                for (bit, nick) in NICKS.iter().enumerate() {
                    if op & (1 << (bit % 3 + 3)) != 0 && arg & (1 << bit) != 0 {
                        to.push(nick.to_string());
                    }
                }
                let long = "x".repeat(if op & 0x80 != 0 { 900 } else { 3 });
                let room = ROOMS[(op >> 5) as usize % 4];
                let id = (op & 0x40 != 0).then(|| format!("id{}", arg % 4));
                let frame = if room == crate::LOBBY && id.is_none() {
                    ClientFrame::msg(to, long)
                } else {
                    ClientFrame::msg_in(room, to, long, id)
                };
                expect_one_reply(&mut sim, who, |s| s.send(who, frame));
            }
            // The connection goes (a reset), or the client says its last
            // and is closed once answered.
            5 if n > 0 && arg & 0x80 != 0 => sim.end(who),
            5 if n > 0 => sim.disconnect(who),
            6 if arg & 0x80 != 0 && sim.server.config().durable => {
                if sim.store.fail.take().is_some() {
                    sim.server.handle_store_recovered();
                    sim.flush();
                } else {
                    sim.store.fail = Some("disk full".into());
                }
            }
            // A bit of the op, not of its argument: time steps keep
            // their whole range.
            6 if op & 0x08 != 0 => {
                paused = !paused;
                sim.server.handle_input_paused(sim.clock(), paused);
                sim.flush();
            }
            6 => sim.advance(arg as u64 * 20),
            7 if n > 0 => match arg % 8 {
                0 => sim.send(who, ClientFrame::Pong),
                1 => sim.send(who, ClientFrame::Ping),
                2 => sim.send(
                    who,
                    ClientFrame::enter(ROOMS[(arg >> 3) as usize % 8], None),
                ),
                3 => sim.send(who, ClientFrame::part(ROOMS[(arg >> 3) as usize % 8])),
                4 => sim.send(
                    who,
                    ClientFrame::history(ROOMS[(arg >> 3) as usize % 8], None, Some(3)),
                ),
                5 => sim.send(who, ClientFrame::Rooms),
                6 => {
                    // Reconnect as the same nick, resuming this client's session.
                    let (nick, token) = (
                        sim.clients[who].nick.clone(),
                        sim.clients[who].session.clone(),
                    );
                    sim.disconnect(who);
                    if let Some(nick) = nick {
                        let i = sim.connect();
                        sim.send(i, ClientFrame::join_v2(nick, vec!["lobby".into()], token));
                    }
                }
                _ => sim.send_payload(who, &data[..data.len().min(arg as usize)]),
            },
            _ => {}
        }
        check_unique_nicks(&sim.server);
    }
    // Once input is taken again, every connection that stays silent is
    // closed within its timeouts (held timers came back).
    if paused {
        sim.server.handle_input_paused(sim.clock(), false);
    }
    sim.advance(10_000);
    for (i, c) in sim.clients.iter().enumerate() {
        assert!(!c.open, "client {i} still open after 10 s of silence");
    }
    for i in 0..sim.clients.len() {
        sim.disconnect(i);
    }
    assert_eq!(sim.server.connections(), 0);
    assert_eq!(sim.server.members(), 0);
    check_stored_order(&sim.store.records);
}

/// A store's events: each room's seqs strictly increase within an epoch
/// (a room record with a new epoch starts it again).
fn check_stored_order(records: &[Record]) {
    let mut last: HashMap<&str, (&str, u64)> = HashMap::new();
    for r in records {
        match r {
            // A room record raises the room's last seq to its own.
            Record::Room { name, epoch, seq } => match last.get_mut(&**name) {
                Some((e, at)) if e == epoch => *at = (*at).max(*seq),
                _ => {
                    last.insert(name, (epoch, *seq));
                }
            },
            Record::Forgotten { name, .. } => {
                last.remove(&**name);
            }
            Record::Event(e) => {
                let Some(entry) = last.get_mut(&*e.room) else {
                    panic!("an event of #{} before its room", e.room);
                };
                assert!(e.seq > entry.1, "stored seq {} after {}", e.seq, entry.1);
                entry.1 = e.seq;
            }
            _ => {}
        }
    }
}

/// Run `act` and check that client `i`, if open before, got exactly one
/// reply to it: a welcome, an echo of its own message, or an error.
fn expect_one_reply(sim: &mut Sim, i: usize, act: impl FnOnce(&mut Sim)) {
    let was_open = sim.clients[i].open && !sim.clients[i].ended;
    let before = sim.clients[i].received.len();
    act(sim);
    if !was_open {
        return;
    }
    let me = sim.clients[i].nick.clone();
    let got = &sim.clients[i].received[before..];
    // A join is answered by its welcome, and then by a refusal for each
    // room it could not enter (at the cap of rooms, `lobby` among them):
    // those belong to the welcome.
    let welcomed = got.iter().any(|f| matches!(f, ServerFrame::Welcome { .. }));
    let replies = got
        .iter()
        .filter(|f| match f {
            ServerFrame::Error {
                code: crate::ErrorCode::TooManyRooms,
                ..
            } if welcomed => false,
            ServerFrame::Welcome { .. } | ServerFrame::Error { .. } => true,
            ServerFrame::Msg { from, replay, .. } => Some(from) == me.as_ref() && !replay,
            _ => false,
        })
        .count();
    assert_eq!(
        replies,
        1,
        "client {i} got {replies} replies: {:?}",
        &sim.clients[i].received[before..]
    );
}

fn check_unique_nicks(server: &Server) {
    let mut keys: Vec<String> = server.online().map(crate::nick::nick_key).collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "duplicate nicknames online");
}
