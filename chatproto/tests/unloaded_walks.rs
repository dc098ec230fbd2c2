//! Random walks of a durable server with few rooms in memory and in the
//! store (rooms unloaded, woken and forgotten all the time), a store that
//! fails and recovers (and fails again while it recovers), clients that
//! reconnect and clean restarts from what was stored. Checked at every
//! step: no client ever sees two different events under one (room,
//! epoch, seq); a private message reaches only its sender and
//! recipients; an `entered` that says `recovered` replays exactly the
//! stored messages after its `since` that the session may see.
//!
//! `CHAT_WALK_SEEDS` (default 1,000, a few seconds) and `CHAT_WALK_START`
//! (default 1) pick the seeds. Without the fixes they were written for,
//! seed 104 (a resting room's seq told again after a failed batch) and
//! seed 675 (forgotten names kept once each, as many as rooms are
//! stored) fail.

use std::collections::HashMap;

use chatproto::testkit::Sim;
use chatproto::{ClientFrame, Event, EventBody, Record, ServerConfig, ServerFrame};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const NICKS: [&str; 4] = ["ann", "bob", "cat", "dan"];
const ROOMS: [&str; 5] = ["r0", "r1", "r2", "r3", "r4"];

struct Who {
    nick: &'static str,
    idx: usize,
    token: Option<String>,
    /// Room -> epoch now (from the last `entered`).
    epoch: HashMap<String, String>,
    /// Room -> (epoch, highest seq seen).
    seen: HashMap<String, (String, u64)>,
    /// Room -> the since of the last enter sent, with the generation.
    asked: HashMap<String, (u64, String, u32)>,
}

struct World {
    /// (room, epoch, seq) -> what it was.
    truth: HashMap<(String, String, u64), String>,
    /// text -> allowed nicks (empty: everyone).
    private: HashMap<String, Vec<String>>,
    gen: u32,
}

fn expected(
    records: &[Record],
    room: &str,
    epoch: &str,
    after: u64,
    upto: u64,
    me: &str,
) -> Vec<u64> {
    let mut cur: Option<String> = None;
    let mut out = Vec::new();
    for r in records {
        match r {
            // A room told again under its epoch keeps its history.
            Record::Room { name, epoch: e, .. }
                if &**name == room && cur.as_deref() != Some(e.as_str()) =>
            {
                cur = Some(e.clone());
                out.clear();
            }
            Record::Forgotten { name, .. } if &**name == room => {
                cur = None;
                out.clear();
            }
            Record::Event(ev) if &*ev.room == room && cur.as_deref() == Some(epoch) => {
                if let EventBody::Msg { nick, to, .. } = &ev.body {
                    let vis = to.is_empty() || &**nick == me || to.iter().any(|r| &*r.nick == me);
                    if vis && ev.seq > after && ev.seq <= upto {
                        out.push(ev.seq);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn check_recovered(sim: &Sim, w: &Who, world: &World, frames: &[ServerFrame], ctx: &str) {
    for (i, f) in frames.iter().enumerate() {
        let ServerFrame::Entered {
            room,
            epoch,
            seq,
            recovered: true,
            ..
        } = f
        else {
            continue;
        };
        let Some((since, e, gen)) = w.asked.get(room) else {
            continue;
        };
        if e != epoch || *gen != world.gen {
            continue;
        }
        let got: Vec<u64> = frames[i + 1..]
            .iter()
            .take_while(|f| !matches!(f, ServerFrame::Entered { .. }))
            .filter_map(|f| match f {
                ServerFrame::Msg {
                    room: Some(r),
                    seq,
                    replay: true,
                    ..
                } if r == room => Some(*seq),
                _ => None,
            })
            .collect();
        let want = expected(&sim.store.records, room, epoch, *since, *seq, w.nick);
        assert_eq!(
            got, want,
            "{ctx}: {} recovered #{room} since {since} to {seq}",
            w.nick
        );
    }
}

fn cfg(seed: u64) -> ServerConfig {
    let mut c = ServerConfig::default();
    c.durable = true;
    c.max_rooms = 1 + (seed % 3) as usize;
    c.max_stored_rooms = c.max_rooms + 1 + (seed % 3) as usize;
    c.history_per_room = 1 + (seed % 4) as usize;
    c.replay_limit = 3 + (seed % 5) as usize;
    c.history_page = 3;
    c.resume_window_ms = 1_000_000;
    if seed % 7 == 3 {
        c.history_bytes_total = 400;
    }
    if seed % 5 == 2 {
        c.history_scan = 2 + (seed % 3) as usize;
    }
    if seed % 11 == 4 {
        c.history_bytes_per_room = 300;
    }
    c
}

fn take(sim: &mut Sim, w: &mut Who, world: &mut World, ctx: &str) {
    let frames = sim.take(w.idx);
    check_recovered(sim, w, world, &frames, ctx);
    let mut flat = Vec::new();
    for f in frames {
        match f {
            ServerFrame::History { room, events, .. } => {
                for e in events {
                    flat.push((Some(room.clone()), e));
                }
            }
            other => flat.push((None, other)),
        }
    }
    for (hroom, f) in flat {
        match f {
            ServerFrame::Welcome {
                session: Some(token),
                ..
            } => w.token = Some(token),
            ServerFrame::Entered {
                room, epoch, seq, ..
            } => {
                w.epoch.insert(room.clone(), epoch.clone());
                let s = w.seen.entry(room.clone()).or_insert((epoch.clone(), 0));
                if s.0 != epoch {
                    *s = (epoch.clone(), 0);
                }
                s.1 = s.1.max(seq);
            }
            ServerFrame::Msg {
                room,
                seq,
                from,
                text,
                ..
            } => {
                let room = room.or(hroom).expect("msg room");
                if let Some(allowed) = world.private.get(&text) {
                    if !allowed.is_empty() {
                        assert!(
                            allowed.iter().any(|n| n == w.nick),
                            "{ctx}: {} saw private {text:?} to {allowed:?}",
                            w.nick
                        );
                    }
                }
                let epoch = w.epoch.get(&room).cloned().expect("epoch known");
                let what = format!("msg {from} {text}");
                check(world, &room, &epoch, seq, what, ctx, w.nick);
                let s = w.seen.entry(room.clone()).or_insert((epoch.clone(), 0));
                if s.0 == epoch {
                    s.1 = s.1.max(seq);
                }
            }
            ServerFrame::Presence {
                room,
                seq,
                nick,
                status,
                ..
            } => {
                let room = room.expect("presence room");
                let Some(epoch) = w.epoch.get(&room).cloned() else {
                    continue;
                };
                let what = format!("presence {nick} {status:?}");
                check(world, &room, &epoch, seq, what, ctx, w.nick);
                let s = w.seen.entry(room.clone()).or_insert((epoch.clone(), 0));
                if s.0 == epoch {
                    s.1 = s.1.max(seq);
                }
            }
            _ => {}
        }
    }
}

fn check(world: &mut World, room: &str, epoch: &str, seq: u64, what: String, ctx: &str, me: &str) {
    let key = (room.to_owned(), epoch.to_owned(), seq);
    match world.truth.get(&key) {
        Some(old) => assert_eq!(
            old, &what,
            "{ctx}: {me} saw #{room} {epoch} seq {seq} as two events"
        ),
        None => {
            world.truth.insert(key, what);
        }
    }
}

/// A restarted server from what the store holds (as chatstore would).
fn restart(old: &Sim, config: ServerConfig, now: u64) -> Sim {
    struct R {
        epoch: String,
        last: u64,
        events: Vec<Event>,
    }
    let mut rooms: Vec<(String, R)> = Vec::new();
    let mut max_session = 0;
    for r in &old.store.records {
        match r {
            Record::Room {
                name, epoch, seq, ..
            } => match rooms.iter_mut().find(|(n, _)| **n == **name) {
                Some((_, r)) if r.epoch == *epoch => r.last = r.last.max(*seq),
                Some((_, r)) => {
                    *r = R {
                        epoch: epoch.clone(),
                        last: *seq,
                        events: Vec::new(),
                    }
                }
                None => rooms.push((
                    name.to_string(),
                    R {
                        epoch: epoch.clone(),
                        last: *seq,
                        events: Vec::new(),
                    },
                )),
            },
            Record::Forgotten { name, .. } => rooms.retain(|(n, _)| **n != **name),
            Record::Event(e) => {
                let (_, r) = rooms
                    .iter_mut()
                    .find(|(n, _)| **n == *e.room)
                    .expect("event of a known room");
                r.last = r.last.max(e.seq);
                r.events.push(Event::clone(e));
                max_session = max_session.max(e.session().0);
            }
            Record::Session { id, .. } => max_session = max_session.max(id.0),
            _ => {}
        }
    }
    let mut sim = Sim::new(config.clone(), now);
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&now.to_le_bytes());
    sim.server = chatproto::Server::new(config.clone(), seed);
    sim.store.records = old.store.records.clone();
    sim.store.reads_after_writes = old.store.reads_after_writes;
    sim.server.reserve_sessions(max_session + 1);
    let mut active: Vec<(u64, &String, &R)> = rooms
        .iter()
        .map(|(n, r)| {
            let newest = r
                .events
                .iter()
                .filter(|e| e.is_msg())
                .map(|e| e.ts)
                .max()
                .unwrap_or(0);
            (newest, n, r)
        })
        .collect();
    active.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)));
    let rest = active.len().saturating_sub(config.max_rooms);
    for (_, n, r) in &active[..rest] {
        let oldest = r.events.first().map_or(r.last + 1, |e| e.seq);
        sim.server
            .restore_unloaded_room(n, &r.epoch, r.last, oldest)
            .unwrap();
    }
    for (_, n, r) in &active[rest..] {
        let oldest = r.events.first().map_or(r.last + 1, |e| e.seq);
        let msgs: Vec<Event> = r.events.iter().filter(|e| e.is_msg()).cloned().collect();
        let keep = config.history_per_room;
        let recent = msgs[msgs.len().saturating_sub(keep)..].to_vec();
        sim.server
            .restore_room(n, &r.epoch, r.last, oldest, recent)
            .unwrap();
    }
    sim.flush();
    sim
}

fn run(seed: u64, steps: usize) {
    let config = cfg(seed);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut now = 1_700_000_000_000u64;
    let mut sim = Sim::new(config.clone(), now);
    sim.store.reads_after_writes = seed % 2 == 1;
    let mut world = World {
        truth: HashMap::new(),
        private: HashMap::new(),
        gen: 0,
    };
    let mut whos: Vec<Who> = Vec::new();
    for nick in NICKS {
        let idx = sim.connect();
        sim.send(idx, ClientFrame::join_v2(nick, vec![], None));
        let mut w = Who {
            nick,
            idx,
            token: None,
            epoch: HashMap::new(),
            seen: HashMap::new(),
            asked: HashMap::new(),
        };
        take(&mut sim, &mut w, &mut world, "join");
        whos.push(w);
    }
    let mut counter = 0;
    let mut log: Vec<String> = Vec::new();
    for step in 0..steps {
        let i = rng.below(whos.len() as u64) as usize;
        let room = ROOMS[rng.below(ROOMS.len() as u64) as usize];
        let op = rng.below(100);
        let ctx = format!("seed {seed} step {step}");
        let idx = whos[i].idx;
        match op {
            0..=24 => {
                let since = if rng.below(2) == 0 {
                    whos[i].seen.get(room).map(|(e, s)| (*s, e.clone()))
                } else {
                    None
                };
                log.push(format!("{} enter {room} {since:?}", whos[i].nick));
                match &since {
                    Some((s, e)) => {
                        whos[i]
                            .asked
                            .insert(room.to_owned(), (*s, e.clone(), world.gen));
                    }
                    None => {
                        whos[i].asked.remove(room);
                    }
                }
                sim.send(idx, ClientFrame::enter(room, since));
            }
            25..=44 => {
                log.push(format!("{} part {room}", whos[i].nick));
                sim.send(idx, ClientFrame::part(room));
            }
            45..=74 => {
                counter += 1;
                let text = format!("t{counter}");
                let to: Vec<String> = if rng.below(3) == 0 {
                    vec![NICKS[rng.below(4) as usize].to_owned()]
                } else {
                    vec![]
                };
                let mut allowed = to.clone();
                if !allowed.is_empty() {
                    allowed.push(whos[i].nick.to_owned());
                }
                world.private.insert(text.clone(), allowed);
                let id = (rng.below(2) == 0).then(|| format!("id{}", rng.below(4)));
                log.push(format!(
                    "{} msg {room} {text} to {to:?} id {id:?}",
                    whos[i].nick
                ));
                sim.send(idx, ClientFrame::msg_in(room, to, text, id));
            }
            75..=82 => {
                let before = (rng.below(2) == 0).then(|| rng.below(20));
                log.push(format!("{} history {room} {before:?}", whos[i].nick));
                sim.send(idx, ClientFrame::history(room, before, Some(3)));
            }
            83 if sim.store.fail.is_some() => {
                // The batch the recovery hands out fails too.
                log.push("store recovers, fails again".into());
                sim.server.handle_store_recovered();
                sim.flush();
            }
            83..=88 => {
                if sim.store.fail.take().is_some() {
                    log.push("store recovers".into());
                    sim.server.handle_store_recovered();
                    sim.flush();
                } else {
                    log.push("store fails".into());
                    sim.store.fail = Some("disk full".into());
                }
            }
            89..=93 => {
                // Reconnect, resuming the session.
                log.push(format!("{} reconnects", whos[i].nick));
                sim.disconnect(idx);
                let n = sim.connect();
                whos[i].idx = n;
                whos[i].epoch.clear();
                let token = whos[i].token.clone();
                sim.send(n, ClientFrame::join_v2(whos[i].nick, vec![], token));
            }
            94..=95 if sim.store.fail.is_none() => {
                // A clean restart: everything stored first.
                log.push("restart".into());
                sim.commit();
                if sim.store.fail.is_some() {
                    continue;
                }
                now += 1_000;
                sim = restart(&sim, config.clone(), now);
                world.gen += 1;
                for w in whos.iter_mut() {
                    w.idx = sim.connect();
                    w.epoch.clear();
                    w.token = None;
                    sim.send(w.idx, ClientFrame::join_v2(w.nick, vec![], None));
                }
            }
            _ => {
                now += 5;
                sim.advance(5);
            }
        }
        sim.commit();
        for w in whos.iter_mut() {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                take(&mut sim, w, &mut world, &ctx)
            }));
            if let Err(e) = r {
                let tail: Vec<_> = log.iter().rev().take(60).rev().collect();
                eprintln!(
                    "config {config:?}\nlog tail:\n{}",
                    tail.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join("\n")
                );
                std::panic::resume_unwind(e);
            }
        }
    }
}

#[test]
fn walks_through_unloads_failures_and_restarts_keep_seqs_and_privacy() {
    let var = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let seeds = var("CHAT_WALK_SEEDS", 1_000);
    let start = var("CHAT_WALK_START", 1);
    for seed in start..start + seeds {
        run(seed, 400);
    }
}
