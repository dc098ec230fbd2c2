//! Model-based test: random operations run against the real Room (through
//! the simulation harness) and against a reference model written here, which
//! says who is online and who must receive what, in which order.

use std::collections::BTreeSet;

use chatproto::testkit::Sim;
use chatproto::{ClientFrame, ErrorCode, PresenceStatus, RoomConfig, ServerFrame};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

const JOIN_TIMEOUT: u64 = 1_000;
const IDLE_PING: u64 = 3_000;
const PONG_TIMEOUT: u64 = 1_000;

/// Nicknames clients ask for: (nick, identity, look-alike class); identity
/// `None` marks a nickname the rule forbids.
const JOIN_POOL: [(&str, Option<&str>, &str); 13] = [
    ("alice", Some("alice"), "A"),
    ("Alice", Some("alice"), "A"),
    ("ALICE", Some("alice"), "A"),
    ("bob", Some("bob"), "B"),
    ("b0b", Some("b0b"), "B"),
    ("B0B", Some("b0b"), "B"),
    ("carol", Some("carol"), "C"),
    ("dave", Some("dave"), "D"),
    ("mary", Some("mary"), "M"),
    ("rnary", Some("rnary"), "M"),
    ("bad nick", None, ""),
    ("", None, ""),
    ("x@y", None, ""),
];

/// Names messages are addressed to: members in any case, and strangers.
const TO_POOL: [&str; 12] = [
    "alice", "ALICE", "bob", "Bob", "B0B", "carol", "dave", "Mary", "rnary", "zed", "bad nick", "",
];

#[derive(Debug, Clone)]
enum Op {
    Connect,
    Join(usize, usize),
    Leave(usize),
    Msg(usize, Vec<usize>),
    Ping(usize),
    Pong(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..8usize;
    prop_oneof![
        2 => Just(Op::Connect),
        3 => (who.clone(), 0..JOIN_POOL.len()).prop_map(|(c, p)| Op::Join(c, p)),
        1 => who.clone().prop_map(Op::Leave),
        5 => (who.clone(), prop::collection::vec(0..TO_POOL.len(), 0..4))
            .prop_map(|(c, to)| Op::Msg(c, to)),
        1 => who.clone().prop_map(Op::Ping),
        1 => who.prop_map(Op::Pong),
        2 => (0..2_500u64).prop_map(Op::Advance),
        // Exactly a timeout, or a hair before one: off-by-one bugs live here.
        1 => prop_oneof![
            Just(JOIN_TIMEOUT), Just(IDLE_PING), Just(PONG_TIMEOUT),
            Just(PONG_TIMEOUT - 1), Just(1),
        ].prop_map(Op::Advance),
    ]
}

/// What a client observes; errors are compared by code only.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Obs {
    Welcome(String, u64, Vec<String>),
    Presence(u64, String, PresenceStatus, u64),
    Msg(u64, String, Vec<String>, String, u64),
    Error(ErrorCode),
    Ping,
    Pong,
}

fn observe(frame: &ServerFrame) -> Obs {
    match frame.clone() {
        ServerFrame::Welcome {
            nick,
            seq,
            mut online,
        } => {
            online.sort();
            Obs::Welcome(nick, seq, online)
        }
        ServerFrame::Presence {
            seq,
            nick,
            status,
            ts,
        } => Obs::Presence(seq, nick, status, ts),
        ServerFrame::Msg {
            seq,
            from,
            to,
            text,
            ts,
        } => Obs::Msg(seq, from, to, text, ts),
        ServerFrame::Error { code, .. } => Obs::Error(code),
        ServerFrame::Ping => Obs::Ping,
        ServerFrame::Pong => Obs::Pong,
        other => panic!("unexpected {other:?}"),
    }
}

struct Member {
    nick: String,
    key: String,
    class: &'static str,
}

struct Client {
    open: bool,
    member: Option<Member>,
    connected_at: u64,
    last_heard: u64,
    ping_sent_at: Option<u64>,
    out: Vec<Obs>,
}

/// The reference: the rules of PROTOCOL.md, written as plainly as possible.
struct Model {
    now: u64,
    seq: u64,
    clients: Vec<Client>,
}

impl Model {
    fn members(&self) -> Vec<usize> {
        (0..self.clients.len())
            .filter(|&i| self.clients[i].member.is_some())
            .collect()
    }

    fn send_all(&mut self, obs: Obs) {
        for i in self.members() {
            self.clients[i].out.push(obs.clone());
        }
    }

    /// A frame from client `i` arrived; returns whether it is open.
    fn heard(&mut self, i: usize) -> bool {
        let c = &mut self.clients[i];
        c.last_heard = self.now;
        c.ping_sent_at = None;
        c.open
    }

    fn join(&mut self, i: usize, p: usize) {
        let (nick, key, class) = JOIN_POOL[p];
        let clash = |pred: &dyn Fn(&Member) -> bool| {
            self.clients
                .iter()
                .filter_map(|c| c.member.as_ref())
                .any(pred)
        };
        let refusal = match key {
            _ if self.clients[i].member.is_some() => Some(ErrorCode::AlreadyJoined),
            None => Some(ErrorCode::NickInvalid),
            Some(key) if clash(&|m| m.key == key) => Some(ErrorCode::NickTaken),
            Some(_) if clash(&|m| m.class == class) => Some(ErrorCode::NickInvalid),
            Some(_) => None,
        };
        if let Some(code) = refusal {
            return self.clients[i].out.push(Obs::Error(code));
        }
        self.clients[i].member = Some(Member {
            nick: nick.into(),
            key: key.unwrap().into(),
            class,
        });
        let mut online: Vec<String> = self
            .members()
            .iter()
            .map(|&m| self.nick(m).to_owned())
            .collect();
        online.sort();
        self.clients[i]
            .out
            .push(Obs::Welcome(nick.into(), self.seq, online));
        self.seq += 1;
        self.send_all(Obs::Presence(
            self.seq,
            nick.into(),
            PresenceStatus::Online,
            self.now,
        ));
    }

    fn nick(&self, i: usize) -> &str {
        &self.clients[i].member.as_ref().unwrap().nick
    }

    fn close(&mut self, i: usize) {
        self.clients[i].open = false;
        if let Some(m) = self.clients[i].member.take() {
            self.seq += 1;
            self.send_all(Obs::Presence(
                self.seq,
                m.nick,
                PresenceStatus::Offline,
                self.now,
            ));
        }
    }

    fn msg(&mut self, i: usize, to: &[&str], text: String) {
        if self.clients[i].member.is_none() {
            return self.clients[i].out.push(Obs::Error(ErrorCode::NotJoined));
        }
        let mut ids: Vec<usize> = Vec::new();
        for name in to {
            let found = self.members().into_iter().find(|&m| {
                self.clients[m].member.as_ref().unwrap().key == name.to_ascii_lowercase()
            });
            match found {
                None => return self.clients[i].out.push(Obs::Error(ErrorCode::UnknownNick)),
                Some(m) if !ids.contains(&m) => ids.push(m),
                Some(_) => {}
            }
        }
        self.seq += 1;
        let names = ids.iter().map(|&m| self.nick(m).to_owned()).collect();
        let obs = Obs::Msg(self.seq, self.nick(i).to_owned(), names, text, self.now);
        if ids.is_empty() {
            return self.send_all(obs);
        }
        if !ids.contains(&i) {
            ids.push(i);
        }
        for m in ids {
            self.clients[m].out.push(obs.clone());
        }
    }

    fn tick(&mut self) {
        let now = self.now;
        let mut expired = Vec::new();
        for (i, c) in self.clients.iter_mut().enumerate().filter(|(_, c)| c.open) {
            match (&c.member, c.ping_sent_at) {
                (None, _) if now - c.connected_at >= JOIN_TIMEOUT => expired.push(i),
                (Some(_), Some(t)) if now - t >= PONG_TIMEOUT => expired.push(i),
                (Some(_), None) if now - c.last_heard >= IDLE_PING => {
                    c.ping_sent_at = Some(now);
                    c.out.push(Obs::Ping);
                }
                _ => {}
            }
        }
        for i in expired {
            self.clients[i].out.push(Obs::Error(ErrorCode::Timeout));
            self.close(i);
        }
    }
}

fn check(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut config = RoomConfig::default();
    config.join_timeout_ms = JOIN_TIMEOUT;
    config.idle_ping_ms = IDLE_PING;
    config.pong_timeout_ms = PONG_TIMEOUT;
    let start = 1_732_400_000_000;
    let mut sim = Sim::new(config, start);
    let mut model = Model {
        now: start,
        seq: 0,
        clients: Vec::new(),
    };
    for (n, op) in ops.iter().enumerate() {
        let count = model.clients.len();
        let pick = |c: &usize| (count > 0).then(|| c % count);
        match op {
            Op::Connect => {
                sim.connect();
                model.clients.push(Client {
                    open: true,
                    member: None,
                    connected_at: model.now,
                    last_heard: model.now,
                    ping_sent_at: None,
                    out: Vec::new(),
                });
            }
            Op::Join(c, p) => {
                if let Some(i) = pick(c) {
                    sim.join(i, JOIN_POOL[*p].0);
                    if model.heard(i) {
                        model.join(i, *p);
                    }
                }
            }
            Op::Leave(c) => {
                if let Some(i) = pick(c) {
                    sim.disconnect(i);
                    if model.clients[i].open {
                        model.close(i);
                    }
                }
            }
            Op::Msg(c, to) => {
                if let Some(i) = pick(c) {
                    let to: Vec<&str> = to.iter().map(|&t| TO_POOL[t]).collect();
                    let text = format!("text {n}");
                    sim.msg(i, &to, &text);
                    if model.heard(i) {
                        model.msg(i, &to, text);
                    }
                }
            }
            Op::Ping(c) => {
                if let Some(i) = pick(c) {
                    sim.send(i, ClientFrame::Ping);
                    if model.heard(i) {
                        model.clients[i].out.push(Obs::Pong);
                    }
                }
            }
            Op::Pong(c) => {
                if let Some(i) = pick(c) {
                    sim.send(i, ClientFrame::Pong);
                    model.heard(i);
                }
            }
            Op::Advance(ms) => {
                sim.advance(*ms);
                model.now += ms;
                model.tick();
            }
        }
        // Who is online agrees, and no nickname is online twice.
        let real: Vec<String> = sim.room.online().map(str::to_ascii_lowercase).collect();
        let unique: BTreeSet<&String> = real.iter().collect();
        prop_assert_eq!(
            unique.len(),
            real.len(),
            "duplicate nick online: {:?}",
            real
        );
        let expected: BTreeSet<String> = model
            .members()
            .iter()
            .map(|&m| model.nick(m).to_ascii_lowercase())
            .collect();
        prop_assert_eq!(
            unique.into_iter().cloned().collect::<BTreeSet<_>>(),
            expected
        );
    }
    for (i, (real, want)) in sim.clients.iter().zip(&model.clients).enumerate() {
        let got: Vec<Obs> = real.received.iter().map(observe).collect();
        // Same frames, same recipients, same order.
        prop_assert_eq!(&got, &want.out, "client {}", i);
        prop_assert_eq!(real.open, want.open, "client {} open", i);
        // Seq strictly increasing, and only messages addressed to this client.
        let mut last = 0;
        for obs in &got {
            match obs {
                Obs::Msg(seq, from, to, _, _) => {
                    let me = real.nick.as_deref().unwrap();
                    prop_assert!(to.is_empty() || from == me || to.iter().any(|n| n == me));
                    prop_assert!(*seq > last);
                    last = *seq;
                }
                Obs::Presence(seq, ..) => {
                    prop_assert!(*seq > last);
                    last = *seq;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/model.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_room_behaves_like_the_model(ops in prop::collection::vec(op(), 1..80)) {
        check(&ops)?;
    }
}

/// A fixed walk through joins, refusals, routing, pings and timeouts, so the
/// check does not depend on what the random cases happen to reach.
#[test]
fn a_hand_written_sequence_matches_the_model() {
    use Op::*;
    let ops = [
        Msg(0, vec![]),
        Connect,
        Connect,
        Connect,
        Connect,
        Msg(0, vec![0]),
        Join(0, 0),
        Join(1, 1),
        Join(1, 4),
        Join(1, 3),
        Join(2, 3),
        Join(2, 5),
        Join(2, 10),
        Join(0, 6),
        Msg(0, vec![]),
        Msg(1, vec![1, 2, 3]),
        Msg(1, vec![9]),
        Msg(0, vec![4]),
        Ping(2),
        Pong(1),
        Advance(999),
        Advance(1),
        Join(3, 7),
        Advance(2_500),
        Msg(1, vec![]),
        Advance(500),
        Pong(0),
        Advance(1_000),
        Leave(0),
        Join(2, 9),
        Join(2, 8),
        Connect,
        Join(4, 4),
        Msg(4, vec![2, 4]),
    ];
    check(&ops).unwrap();
}
