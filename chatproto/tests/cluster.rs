//! Cluster mode: several cores share rooms through one log per room. The
//! log here is a vector; chatserver's is a JetStream stream.

use std::collections::{BTreeMap, BTreeSet};

use chatproto::{
    ClientFrame, ClientId, Event, EventBody, Kick, LogError, Now, Output, PresenceStatus, Server,
    ServerConfig, SessionId,
};
use serde_json::{json, Value};

const NOW: Now = Now {
    mono: 0,
    wall: 1_700_000_000_000,
};

/// Servers, the log of each room, and every frame each client got.
struct Cluster {
    nodes: Vec<Server>,
    /// How far each node has read each room's log.
    read: Vec<BTreeMap<String, usize>>,
    log: BTreeMap<String, Vec<Event>>,
    got: BTreeMap<(usize, ClientId), Vec<Value>>,
    /// Connections closed: said closed with [`Cluster::disconnect`] (no
    /// delivery may list one after that), or their `Close` polled
    /// (nothing at all may come for one after that).
    ended: BTreeSet<(usize, ClientId)>,
    closed: BTreeSet<(usize, ClientId)>,
}

impl Cluster {
    fn new(n: usize) -> Self {
        let nodes = (0..n)
            .map(|i| {
                let mut cfg = ServerConfig::default();
                cfg.cluster = true;
                let mut s = Server::new(cfg, [i as u8; 32]);
                // Session ids never collide across nodes.
                s.reserve_sessions((i as u64 + 1) << 32);
                s
            })
            .collect();
        Cluster {
            nodes,
            read: vec![BTreeMap::new(); n],
            log: BTreeMap::new(),
            got: BTreeMap::new(),
            ended: BTreeSet::new(),
            closed: BTreeSet::new(),
        }
    }

    /// The shell says `c` on `node` closed.
    fn disconnect(&mut self, node: usize, c: ClientId) {
        self.nodes[node].handle_disconnect(NOW, c);
        self.ended.insert((node, c));
    }

    fn connect(&mut self, node: usize, nick: &str) -> ClientId {
        let c = self.nodes[node].handle_connect(NOW);
        self.nodes[node].handle_frame(NOW, c, ClientFrame::join(nick));
        c
    }

    /// A client joins on `node` as `nick` with a v2 `join` entering
    /// `rooms`, and the cluster settles: the client, and the session
    /// token its `welcome` gave.
    fn join_for_token(&mut self, node: usize, nick: &str, rooms: &[&str]) -> (ClientId, String) {
        let c = self.nodes[node].handle_connect(NOW);
        let rooms = rooms.iter().map(|r| r.to_string()).collect();
        self.nodes[node].handle_frame(NOW, c, ClientFrame::join_v2(nick, rooms, None));
        self.settle();
        let token = self.token(node, c);
        (c, token)
    }

    /// Drain one node: what it proposes is appended to the log.
    fn drain(&mut self, node: usize) {
        let proposed = self.hold(node);
        self.append(&proposed);
    }

    /// Append `events`, proposals, to their rooms' logs, in this order.
    fn append(&mut self, events: &[std::sync::Arc<Event>]) {
        for e in events {
            assert_eq!(e.seq, 0, "a cluster node never numbers events");
            let log = self.log.entry(e.room.to_string()).or_default();
            let mut e = Event::clone(e);
            e.seq = log.len() as u64 + 1;
            log.push(e);
        }
    }

    /// Drain one node as [`Cluster::drain`] does, but what it proposes is
    /// held back from the log and returned (to be appended later, after
    /// what others proposed since: the log's order need not be the
    /// proposals').
    fn hold(&mut self, node: usize) -> Vec<std::sync::Arc<Event>> {
        let mut proposed = Vec::new();
        while let Some(out) = self.nodes[node].poll() {
            match out {
                Output::Propose { events, .. } => proposed.extend(events),
                Output::Send { to, frame, .. } => {
                    assert!(
                        !self.closed.contains(&(node, to)),
                        "node {node}: {frame:?} sent to {to} after its Close"
                    );
                    self.got
                        .entry((node, to))
                        .or_default()
                        .push(serde_json::to_value(&frame).unwrap())
                }
                Output::Deliver {
                    event, to, with_id, ..
                } => {
                    let v = serde_json::to_value(event.wire(with_id, false)).unwrap();
                    for &c in to {
                        assert!(
                            !self.ended.contains(&(node, c)),
                            "node {node}: #{} seq {} delivered to {c}, closed before",
                            event.room,
                            event.seq
                        );
                        self.got.entry((node, c)).or_default().push(v.clone());
                    }
                }
                Output::Close { client, .. } => {
                    self.ended.insert((node, client));
                    self.closed.insert((node, client));
                }
                _ => {}
            }
        }
        proposed
    }

    /// Until nothing moves: every node proposes, then reads every room's
    /// log from where it stopped.
    fn settle(&mut self) {
        for _ in 0..100 {
            let before: usize = self.log.values().map(Vec::len).sum();
            for n in 0..self.nodes.len() {
                self.drain(n);
            }
            for n in 0..self.nodes.len() {
                self.read_log(n, usize::MAX);
            }
            let after: usize = self.log.values().map(Vec::len).sum();
            if after == before {
                return;
            }
        }
        panic!("the cluster did not settle");
    }

    /// Node `n` reads up to `k` more events of each room's log, then drains.
    fn read_log(&mut self, n: usize, k: usize) {
        for (room, events) in &self.log {
            let from = self.read[n].entry(room.clone()).or_insert(0);
            self.nodes[n].open_room(room, "epoch-1", 1);
            let to = from.saturating_add(k).min(events.len());
            for e in &events[*from..to] {
                self.nodes[n].handle_logged(e.clone()).unwrap();
            }
            *from = to;
        }
        self.drain(n);
    }

    /// What node `n` proposes now, held back from the log (the rest of
    /// its output is dropped).
    fn proposals(&mut self, n: usize) -> Vec<std::sync::Arc<Event>> {
        let mut proposed = Vec::new();
        while let Some(out) = self.nodes[n].poll() {
            if let Output::Propose { events, .. } = out {
                proposed.extend(events);
            }
        }
        proposed
    }

    /// Node `n`'s one proposal, a message the log held already at `seq`
    /// (another node logged it first): the node is told so, as its
    /// publisher tells it.
    fn logged_before(&mut self, n: usize, seq: u64) {
        let proposed = self.proposals(n);
        let [event] = &proposed[..] else {
            panic!("one proposal, not {proposed:?}")
        };
        let mut first = Event::clone(event);
        first.seq = seq;
        self.nodes[n].handle_logged_duplicate(&first);
    }

    /// The `type` of each frame `c` on `node` got.
    fn kinds(&self, node: usize, c: ClientId) -> Vec<&str> {
        let frames = self.frames(node, c);
        frames.iter().map(|f| f["type"].as_str().unwrap()).collect()
    }

    fn frames(&self, node: usize, c: ClientId) -> &[Value] {
        self.got.get(&(node, c)).map_or(&[], Vec::as_slice)
    }

    /// The session token in the `welcome` that `c` on `node` got.
    fn token(&self, node: usize, c: ClientId) -> String {
        let frames = self.frames(node, c);
        let Some(welcome) = frames.iter().find(|f| f["type"] == "welcome") else {
            panic!("node {node}: no welcome for {c}: {frames:?}")
        };
        welcome["session"].as_str().unwrap().to_owned()
    }

    fn texts(&self, node: usize, c: ClientId) -> Vec<(u64, String)> {
        self.frames(node, c)
            .iter()
            .filter(|f| f["type"] == "msg")
            .map(|f| {
                (
                    f["seq"].as_u64().unwrap(),
                    f["text"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

/// A server not in cluster mode numbers its own events: what a log would
/// give it is refused, and nothing of it reaches a client.
#[test]
fn a_server_not_in_cluster_mode_takes_nothing_from_a_log() {
    let mut s = Server::new(ServerConfig::default(), [1; 32]);
    let a = s.handle_connect(NOW);
    s.handle_frame(NOW, a, ClientFrame::join("alice"));
    while s.poll().is_some() {}
    s.open_room("lobby", "e-log", 1);
    let ghost = EventBody::presence(SessionId(99), "ghost", PresenceStatus::Offline);
    let event = Event::new("lobby", s.seq("lobby") + 1, NOW.wall, ghost);
    assert_eq!(s.handle_logged(event.clone()), Err(LogError::NotCluster));
    assert_eq!(
        s.skip_logged("lobby", s.seq("lobby") + 1),
        Err(LogError::NotCluster)
    );
    s.handle_logged_duplicate(&event);
    s.handle_log_refused(&event, "no");
    assert!(s.poll().is_none());
    assert_eq!(s.seq("lobby"), 1);
}

#[test]
fn clients_on_two_nodes_see_one_order_and_each_other() {
    let mut c = Cluster::new(2);
    let alice = c.connect(0, "alice");
    c.settle();
    let bob = c.connect(1, "bob");
    c.settle();
    // bob's welcome lists alice, who is on the other node.
    let welcome = &c.frames(1, bob)[0];
    assert_eq!(welcome["type"], "welcome");
    let online: Vec<&str> = welcome["online"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(online, ["alice", "bob"]);
    // alice sees bob arrive.
    assert!(c
        .frames(0, alice)
        .iter()
        .any(|f| f["type"] == "presence" && f["nick"] == "bob" && f["status"] == "online"));

    // Both speak before either node reads the log: one order for both.
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::msg(vec![], "from alice"));
    c.nodes[1].handle_frame(NOW, bob, ClientFrame::msg(vec![], "from bob"));
    c.settle();
    let a = c.texts(0, alice);
    let b = c.texts(1, bob);
    assert_eq!(a.len(), 2);
    assert_eq!(a, b, "both see the same messages with the same seqs");
    assert!(a[0].0 < a[1].0);

    // A private message across nodes reaches only its recipient.
    let carol = c.connect(0, "carol");
    c.settle();
    c.nodes[1].handle_frame(NOW, bob, ClientFrame::msg(vec!["alice".into()], "psst"));
    c.settle();
    assert!(c.texts(0, alice).iter().any(|(_, t)| t == "psst"));
    assert!(!c.texts(0, carol).iter().any(|(_, t)| t == "psst"));
    assert!(
        c.texts(1, bob).iter().any(|(_, t)| t == "psst"),
        "bob's echo"
    );
}

#[test]
fn a_message_with_an_id_is_echoed_with_the_seq_the_log_gave() {
    let mut c = Cluster::new(2);
    let alice = c.connect(0, "alice");
    let bob = c.connect(1, "bob");
    c.settle();
    c.nodes[0].handle_frame(
        NOW,
        alice,
        ClientFrame::msg_in("lobby", vec![], "hi", Some("m1".into())),
    );
    c.settle();
    let echo = c
        .frames(0, alice)
        .iter()
        .find(|f| f["type"] == "msg")
        .unwrap()
        .clone();
    assert_eq!(echo["id"], "m1");
    let seq = echo["seq"].as_u64().unwrap();
    assert_eq!(c.texts(1, bob), vec![(seq, "hi".to_owned())]);
    // Sent again: refused, naming the seq the log gave it.
    c.nodes[0].handle_frame(
        NOW,
        alice,
        ClientFrame::msg_in("lobby", vec![], "hi", Some("m1".into())),
    );
    c.settle();
    let dup = c.frames(0, alice).last().unwrap();
    assert_eq!(dup["code"], "duplicate");
    assert_eq!(dup["seq"].as_u64(), Some(seq));
}

#[test]
fn a_session_said_to_leave_twice_leaves_once() {
    let mut c = Cluster::new(2);
    let alice = c.connect(0, "alice");
    c.connect(1, "bob");
    c.settle();
    let bob_sid = {
        let log = &c.log["lobby"];
        log.iter()
            .find_map(|e| match &e.body {
                EventBody::Presence { session, nick, .. } if &**nick == "bob" => Some(*session),
                _ => None,
            })
            .unwrap()
    };
    // Node 1 dies; two survivors' worth of "bob left" reach the log.
    for _ in 0..2 {
        let log = c.log.get_mut("lobby").unwrap();
        let seq = log.len() as u64 + 1;
        log.push(Event::new(
            "lobby",
            seq,
            NOW.wall,
            EventBody::presence(bob_sid, "bob", PresenceStatus::Offline),
        ));
    }
    c.settle();
    let lefts = c
        .frames(0, alice)
        .iter()
        .filter(|f| f["type"] == "presence" && f["nick"] == "bob" && f["status"] == "offline")
        .count();
    assert_eq!(lefts, 1);
    // bob is gone from the room: a message to him is refused.
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::msg(vec!["bob".into()], "there?"));
    c.settle();
    assert_eq!(c.frames(0, alice).last().unwrap()["code"], "unknown_nick");
}

/// A room the log names as no client could (`Rust`, `#x y`), or at a seq
/// no log gets to (the room's seqs would run out), opens nothing: a room
/// opened under `Rust` could never be entered, as clients' names fold to
/// `rust`, and one at `u64::MAX` overflowed at its first event.
#[test]
fn a_room_the_log_names_as_no_client_could_opens_nothing() {
    let mut cfg = ServerConfig::default();
    cfg.cluster = true;
    let mut s = Server::new(cfg, [1; 32]);
    s.open_room("Rust", "ep", 1);
    s.open_room("#x y", "ep", 1);
    s.open_room("last", "ep", u64::MAX);
    s.open_room("rust", "ep", 1);
    let names: Vec<&str> = s.rooms().map(|(name, _)| name).collect();
    assert_eq!(names, ["rust"]);
    let last = Event::new(
        "last",
        u64::MAX,
        0,
        EventBody::presence(SessionId(9), "zed", PresenceStatus::Online),
    );
    assert!(matches!(
        s.handle_logged(last),
        Err(LogError::UnknownRoom(_))
    ));
}

#[test]
fn a_gap_in_the_log_is_refused_and_an_unknown_room_too() {
    let mut cfg = ServerConfig::default();
    cfg.cluster = true;
    let mut s = Server::new(cfg, [1; 32]);
    let e = |seq| {
        Event::new(
            "lobby",
            seq,
            0,
            EventBody::presence(SessionId(9), "zed", PresenceStatus::Online),
        )
    };
    assert!(matches!(
        s.handle_logged(e(1)),
        Err(LogError::UnknownRoom(_))
    ));
    s.open_room("lobby", "ep", 1);
    s.handle_logged(e(1)).unwrap();
    let gap = s.handle_logged(e(3));
    assert!(
        matches!(&gap, Err(LogError::Gap { room, expected: 2, got: 3, .. }) if room == "lobby"),
        "{gap:?}"
    );
    // Seen already: ignored.
    s.handle_logged(e(1)).unwrap();
    assert_eq!(s.next_logged("lobby"), Some(2));
    while s.poll().is_some() {}
    assert_eq!(s.seq("lobby"), 1);
}

/// alice parts #rust and enters it again on the same connection, and the
/// log holds that entering before the part. The part was proposed before
/// the entering, which is applied first: it takes nothing out, and alice
/// still hears the room her session is in. (It took her out: her session
/// was in #rust, so entering it again was refused, and she heard
/// nothing of it.)
#[test]
fn a_part_logged_after_the_same_connections_entering_again_leaves_it_in() {
    let mut c = Cluster::new(1);
    let alice = c.connect(0, "alice");
    let bob = c.connect(0, "bob");
    for who in [alice, bob] {
        c.nodes[0].handle_frame(NOW, who, ClientFrame::enter("rust", None));
    }
    c.settle();
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::part("rust"));
    let part = c.hold(0);
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::enter("rust", None));
    c.drain(0);
    c.append(&part);
    c.settle();
    assert_eq!(told(&c, 0, alice, "rust", "alice", "offline"), 1);

    c.nodes[0].handle_frame(
        NOW,
        bob,
        ClientFrame::msg_in("rust", vec![], "still there?", None),
    );
    c.settle();
    let heard: Vec<String> = c.texts(0, alice).into_iter().map(|(_, t)| t).collect();
    assert_eq!(heard, ["still there?"], "{:?}", c.frames(0, alice));
}

/// A room a client of this node entered is made here at once, but only
/// the log opens it (its epoch, its first seq): its events are refused
/// until then, as are a step over and a roster. Taken before, they told
/// the client the room's epoch was empty, and a client resuming from it
/// later found another.
#[test]
fn a_room_a_client_entered_takes_no_event_until_the_log_opens_it() {
    let mut c = Cluster::new(1);
    let alice = c.connect(0, "alice");
    c.settle();
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::enter("rust", None));
    let entering = c.hold(0);
    let [event] = &entering[..] else {
        panic!("one proposal, not {entering:?}")
    };
    let mut event = Event::clone(event);
    event.seq = 1;
    let s = &mut c.nodes[0];
    let refused = Err(LogError::UnknownRoom("rust".into()));
    assert_eq!(s.handle_logged(event.clone()), refused);
    assert_eq!(s.skip_logged("rust", 1), refused);
    let roster = chatproto::Roster {
        epoch: String::new(),
        seq: 0,
        members: Vec::new(),
    };
    assert_eq!(s.seed_roster("rust", roster), refused);
    s.open_room("rust", "epoch-r", 1);
    s.handle_logged(event).unwrap();
    c.drain(0);
    let entered = c.frames(0, alice).iter().find(|f| f["type"] == "entered");
    assert_eq!(entered.unwrap()["epoch"], "epoch-r");
}

#[test]
fn answers_wait_for_the_senders_events_on_their_way_through_the_log() {
    let mut c = Cluster::new(2);
    let alice = c.connect(0, "alice");
    let bob = c.connect(1, "bob");
    c.settle();
    // A message, then a ping and a bad enter: the echo first, as sent.
    c.nodes[0].handle_frame(
        NOW,
        alice,
        ClientFrame::msg_in("lobby", vec![], "one", Some("m1".into())),
    );
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::Ping);
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::enter("#bad", None));
    // Nothing answers yet: the log has not handed the message back.
    c.drain(0);
    assert!(!c
        .frames(0, alice)
        .iter()
        .any(|f| f["type"] == "pong" || f["type"] == "error"));
    c.settle();
    let kinds: Vec<&str> = c
        .frames(0, alice)
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .skip_while(|&k| k != "msg")
        .collect();
    assert_eq!(kinds, ["msg", "pong", "error"]);
    // bob's node answers bob at once: nothing of his is on its way.
    c.nodes[1].handle_frame(NOW, bob, ClientFrame::Ping);
    c.drain(1);
    assert_eq!(c.frames(1, bob).last().unwrap()["type"], "pong");
}

/// Answers held behind an event on its way through the log are counted
/// in what waits, which a shell bounds: pings sent while the log is away
/// cannot grow memory unseen.
#[test]
fn answers_held_for_the_log_count_as_waiting() {
    let mut c = Cluster::new(1);
    let alice = c.connect(0, "alice");
    c.settle();
    c.nodes[0].handle_frame(
        NOW,
        alice,
        ClientFrame::msg_in("lobby", vec![], "stuck", Some("m1".into())),
    );
    let proposed = c.proposals(0);
    assert_eq!(proposed.len(), 1);
    let before = c.nodes[0].outputs_waiting();
    for _ in 0..100 {
        c.nodes[0].handle_frame(NOW, alice, ClientFrame::Ping);
    }
    c.drain(0);
    assert_eq!(c.nodes[0].outputs_waiting(), before + 100);
    // Logged: the echo and the pongs go, and nothing is counted any more.
    let mut logged = Event::clone(&proposed[0]);
    logged.seq = c.log["lobby"].len() as u64 + 1;
    c.log.get_mut("lobby").unwrap().push(logged);
    c.read_log(0, usize::MAX);
    assert_eq!(c.nodes[0].outputs_waiting(), 0);
    let kinds = c.kinds(0, alice);
    assert_eq!(kinds.iter().filter(|&&k| k == "pong").count(), 100);
    // Closed while held: nothing stays counted either.
    c.nodes[0].handle_frame(
        NOW,
        alice,
        ClientFrame::msg_in("lobby", vec![], "stuck again", Some("m2".into())),
    );
    c.proposals(0);
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::Ping);
    assert!(c.nodes[0].outputs_waiting() >= 1);
    c.nodes[0].handle_disconnect(NOW, alice);
    c.drain(0);
    assert_eq!(c.nodes[0].outputs_waiting(), 0);
}

/// With the log stalled (proposals handed out, none handed back), what a
/// connection proposes counts as waiting, answers or not, so that a shell
/// stopping input at a bound stops it: 1000 messages with ids (each
/// answered by its own echo, so none holds an answer) counted nothing,
/// while each was kept until the log brought it back (found by a probe:
/// 200 000 of them, about 47 MB, counted 0). Each counts until the log
/// hands it back, says it held it already or refuses it, or its
/// connection closes.
#[test]
fn proposals_not_back_from_the_log_count_as_waiting() {
    let mut c = Cluster::new(1);
    let alice = c.connect(0, "alice");
    c.settle();
    assert_eq!(c.nodes[0].outputs_waiting(), 0);
    let msg = |i: usize| ClientFrame::msg_in("lobby", vec![], "stalled", Some(format!("m{i}")));
    for i in 0..1000 {
        c.nodes[0].handle_frame(NOW, alice, msg(i));
    }
    let proposed = c.proposals(0);
    assert_eq!(proposed.len(), 1000);
    assert_eq!(c.nodes[0].outputs_waiting(), 1000);
    // The first 10 back, the next held already, the next refused.
    c.append(&proposed[..10]);
    c.read_log(0, usize::MAX);
    assert_eq!(c.nodes[0].outputs_waiting(), 990);
    let mut held = Event::clone(&proposed[10]);
    held.seq = 1;
    c.nodes[0].handle_logged_duplicate(&held);
    c.nodes[0].handle_log_refused(&proposed[11], "the log is full");
    c.drain(0);
    // 988 on the way, and their answers (`duplicate`, `unavailable`)
    // waiting behind them.
    assert_eq!(c.nodes[0].outputs_waiting(), 988 + 2);
    // The rest back: nothing waits.
    c.append(&proposed[12..]);
    c.read_log(0, usize::MAX);
    assert_eq!(c.nodes[0].outputs_waiting(), 0);
    // Stalled again, then closed (by the shell, or by the core): nothing
    // counts any more.
    for i in 1000..1010 {
        c.nodes[0].handle_frame(NOW, alice, msg(i));
    }
    c.proposals(0);
    assert_eq!(c.nodes[0].outputs_waiting(), 10);
    c.disconnect(0, alice);
    c.drain(0);
    assert_eq!(c.nodes[0].outputs_waiting(), 0);
    let bob = c.connect(0, "bob");
    c.settle();
    c.nodes[0].handle_frame(NOW, bob, msg(0));
    c.proposals(0);
    assert_eq!(c.nodes[0].outputs_waiting(), 1);
    c.nodes[0].kick(NOW, bob, Kick::RateLimited);
    c.drain(0);
    assert_eq!(c.nodes[0].outputs_waiting(), 0);
}

/// alice sends a message (with `id`), then a ping, and the log says it
/// held that message already, at seq 7.
fn held_already(id: Option<&str>) -> (Cluster, ClientId) {
    let mut c = Cluster::new(1);
    let alice = c.connect(0, "alice");
    c.settle();
    let msg = ClientFrame::msg_in("lobby", vec![], "again", id.map(str::to_owned));
    c.nodes[0].handle_frame(NOW, alice, msg);
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::Ping);
    c.logged_before(0, 7);
    c.drain(0);
    (c, alice)
}

/// A message the log already held under its session and id (logged by
/// another node before the session moved) does not come back: the log's
/// word that it was a duplicate answers the sender `duplicate` with the
/// first copy's seq, before the answers that waited for it.
#[test]
fn a_message_the_log_already_held_is_answered_duplicate() {
    let (mut c, alice) = held_already(Some("m1"));
    let frames = c.frames(0, alice);
    let kinds: Vec<&str> = frames.iter().map(|f| f["type"].as_str().unwrap()).collect();
    let n = kinds.len();
    assert_eq!(kinds[n - 2..], ["error", "pong"], "{frames:?}");
    let error = &frames[n - 2];
    assert_eq!(error["code"], "duplicate");
    assert_eq!(error["seq"], 7);
    assert_eq!(error["id"], "m1");
    // And the id is known from now on, with that seq.
    c.nodes[0].handle_frame(
        NOW,
        alice,
        ClientFrame::msg_in("lobby", vec![], "again", Some("m1".into())),
    );
    c.drain(0);
    let last = c.frames(0, alice).last().unwrap();
    assert_eq!(
        (&last["code"], &last["seq"]),
        (&"duplicate".into(), &7.into())
    );
}

/// A message without an id the log held already (or the shell lost
/// before it was read back) has no answer of its own, but what its sender
/// asked after it is answered all the same.
#[test]
fn a_message_without_an_id_the_log_held_lets_later_answers_go() {
    let (c, alice) = held_already(None);
    let kinds = c.kinds(0, alice);
    assert_eq!(kinds.last(), Some(&"pong"), "{kinds:?}");
    assert!(!kinds.contains(&"error"), "{kinds:?}");
}

/// The log's word that a message was a duplicate answers in that
/// message's place: after the `entered` of an `enter` sent before it,
/// which is still on its way.
#[test]
fn a_duplicate_is_answered_after_the_answers_of_earlier_frames() {
    let mut c = Cluster::new(1);
    let alice = c.connect(0, "alice");
    c.settle();
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::enter("rust", None));
    c.nodes[0].handle_frame(
        NOW,
        alice,
        ClientFrame::msg_in("lobby", vec![], "again", Some("m1".into())),
    );
    let proposed = c.proposals(0);
    let [enter, msg] = &proposed[..] else {
        panic!("two proposals, not {proposed:?}")
    };
    // The enter goes to the log; the message was there already.
    c.log.entry("rust".into()).or_default().push({
        let mut e = Event::clone(enter);
        e.seq = 1;
        e
    });
    let mut first = Event::clone(msg);
    first.seq = 7;
    c.nodes[0].handle_logged_duplicate(&first);
    // Then a second resend and a ping; the second is a duplicate too.
    c.nodes[0].handle_frame(
        NOW,
        alice,
        ClientFrame::msg_in("lobby", vec![], "and again", Some("m2".into())),
    );
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::Ping);
    c.logged_before(0, 8);
    c.drain(0);
    assert!(
        !c.frames(0, alice).iter().any(|f| f["code"] == "duplicate"),
        "answered before the enter came back: {:?}",
        c.frames(0, alice)
    );
    c.settle();
    let frames = c.frames(0, alice);
    let answers = answer_words(frames.iter().skip_while(|f| f["type"] != "entered"));
    assert_eq!(
        answers,
        [
            "entered",
            "presence",
            "duplicate m1",
            "duplicate m2",
            "pong"
        ]
    );
}

/// After a resume, an answer waits for the new connection's own events
/// only: one of the old connection's that comes back from the log
/// meanwhile does not let a `pong` go ahead of the `entered` it follows.
#[test]
fn a_resumed_connections_answers_wait_for_its_own_events_only() {
    let mut c = Cluster::new(1);
    let old = c.connect(0, "alice");
    c.settle();
    let token = c.token(0, old);
    // A message on its way when the connection goes.
    c.nodes[0].handle_frame(
        NOW,
        old,
        ClientFrame::msg_in("lobby", vec![], "on its way", None),
    );
    c.drain(0);
    c.nodes[0].handle_disconnect(NOW, old);
    let new = c.nodes[0].handle_connect(NOW);
    c.nodes[0].handle_frame(NOW, new, ClientFrame::join_v2("alice", vec![], Some(token)));
    c.nodes[0].handle_frame(NOW, new, ClientFrame::enter("rust", None));
    c.nodes[0].handle_frame(NOW, new, ClientFrame::Ping);
    // The log hands back the old message alone first (the new
    // connection's enter is not in the log yet).
    c.read_log(0, 1);
    assert!(
        !c.frames(0, new).iter().any(|f| f["type"] == "pong"),
        "{:?}",
        c.frames(0, new)
    );
    c.settle();
    assert_eq!(c.kinds(0, new), ["welcome", "entered", "presence", "pong"]);
}

mod random {
    //! Random interleavings: clients on two nodes joining, talking,
    //! entering, parting and leaving while each node reads the log at its
    //! own pace, parting the lobby and entering it again, and resuming
    //! their sessions on new connections (on either node), a leaving
    //! logged before or after the session's next entering. Whatever happens: no panic, every client gets
    //! each room's events in increasing seq, none is delivered to a
    //! connection closed (by the shell or by a kick) before it, once both
    //! nodes have read everything they agree on every room's seq, and
    //! every client still connected hears the lobby.

    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Connect(usize, usize),
        Say(usize, bool),
        Private(usize, usize),
        Enter(usize),
        Part(usize),
        Ping(usize),
        Drop(usize),
        /// The shell closes a client (in the core, as for a slow reader).
        Kick(usize),
        /// Node reads up to this many more events of each room.
        Read(usize, usize),
        /// A node proposes what it decided.
        Drain(usize),
        /// A client parts the lobby and enters it again; if `true`, its
        /// entering is logged before its part.
        Reenter(usize, bool),
        /// A client's connection is lost, and its session resumes on a
        /// new one on this node (restored there from the other if need
        /// be), entering the lobby. If `true`, the old connection's
        /// leavings are logged after the new one's entering.
        Resume(usize, usize, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..2usize, 0..6usize).prop_map(|(n, k)| Op::Connect(n, k)),
            (0..8usize, any::<bool>()).prop_map(|(c, id)| Op::Say(c, id)),
            (0..8usize, 0..6usize).prop_map(|(c, k)| Op::Private(c, k)),
            (0..8usize).prop_map(Op::Enter),
            (0..8usize).prop_map(Op::Part),
            (0..8usize).prop_map(Op::Ping),
            (0..8usize).prop_map(Op::Drop),
            (0..8usize).prop_map(Op::Kick),
            (0..2usize, 0..4usize).prop_map(|(n, k)| Op::Read(n, k)),
            (0..2usize).prop_map(Op::Drain),
            (0..8usize, 0..2usize, any::<bool>()).prop_map(|(c, n, late)| Op::Resume(c, n, late)),
            (0..8usize, any::<bool>()).prop_map(|(c, late)| Op::Reenter(c, late)),
        ]
    }

    /// The token and nickname of `client`'s `welcome`, if it had one.
    fn welcomed(c: &Cluster, node: usize, client: ClientId) -> Option<(String, String)> {
        let welcome = c
            .frames(node, client)
            .iter()
            .find(|f| f["type"] == "welcome")?;
        let token = welcome["session"].as_str()?.to_owned();
        Some((token, welcome["nick"].as_str()?.to_owned()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        #[test]
        fn any_interleaving_keeps_one_order(ops in proptest::collection::vec(op(), 1..80)) {
            let mut c = Cluster::new(2);
            let mut clients: Vec<(usize, ClientId)> = Vec::new();
            let mut next_id = 0;
            // How many `enter`s each client sent.
            let mut enters: BTreeMap<(usize, ClientId), usize> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Connect(n, k) => {
                        let id = c.nodes[n].handle_connect(NOW);
                        c.nodes[n].handle_frame(NOW, id, ClientFrame::join(format!("u{k}")));
                        clients.push((n, id));
                    }
                    Op::Say(i, with_id) if !clients.is_empty() => {
                        let (n, id) = clients[i % clients.len()];
                        next_id += 1;
                        let mid = with_id.then(|| format!("m{next_id}"));
                        c.nodes[n].handle_frame(NOW, id, ClientFrame::msg_in("lobby", vec![], "hi", mid));
                    }
                    Op::Private(i, k) if !clients.is_empty() => {
                        let (n, id) = clients[i % clients.len()];
                        c.nodes[n].handle_frame(NOW, id, ClientFrame::msg_in("lobby", vec![format!("u{k}")], "psst", None));
                    }
                    Op::Enter(i) if !clients.is_empty() => {
                        let (n, id) = clients[i % clients.len()];
                        c.nodes[n].handle_frame(NOW, id, ClientFrame::enter("r2", None));
                        *enters.entry((n, id)).or_default() += 1;
                    }
                    Op::Part(i) if !clients.is_empty() => {
                        let (n, id) = clients[i % clients.len()];
                        c.nodes[n].handle_frame(NOW, id, ClientFrame::part("r2"));
                    }
                    Op::Ping(i) if !clients.is_empty() => {
                        let (n, id) = clients[i % clients.len()];
                        c.nodes[n].handle_frame(NOW, id, ClientFrame::Ping);
                    }
                    Op::Drop(i) if !clients.is_empty() => {
                        let (n, id) = clients.remove(i % clients.len());
                        c.disconnect(n, id);
                    }
                    Op::Kick(i) if !clients.is_empty() => {
                        let (n, id) = clients.remove(i % clients.len());
                        c.nodes[n].kick(NOW, id, Kick::RateLimited);
                    }
                    Op::Read(n, k) => c.read_log(n, k),
                    Op::Drain(n) => c.drain(n),
                    Op::Reenter(i, late) if !clients.is_empty() => {
                        let (n, id) = clients[i % clients.len()];
                        c.drain(n);
                        c.nodes[n].handle_frame(NOW, id, ClientFrame::part("lobby"));
                        let part = c.hold(n);
                        c.nodes[n].handle_frame(NOW, id, ClientFrame::enter("lobby", None));
                        if late {
                            c.drain(n);
                            c.append(&part);
                        } else {
                            c.append(&part);
                            c.drain(n);
                        }
                    }
                    Op::Resume(i, to, late) if !clients.is_empty() => {
                        let (n, id) = clients[i % clients.len()];
                        let (Some((token, nick)), Some(sid)) = (welcomed(&c, n, id), c.nodes[n].session_id_of(id)) else {
                            continue;
                        };
                        clients.remove(i % clients.len());
                        // What was decided before is logged in its order.
                        c.drain(n);
                        c.disconnect(n, id);
                        let leavings = c.hold(n);
                        if to != n {
                            known_or_restored(c.nodes[to].restore_session(NOW, sid, &nick, chatproto::hash_token(&token)));
                        }
                        let back = c.nodes[to].handle_connect(NOW);
                        let join = ClientFrame::join_v2(nick, vec!["lobby".into()], Some(token));
                        c.nodes[to].handle_frame(NOW, back, join);
                        if late {
                            c.drain(to);
                            c.append(&leavings);
                        } else {
                            c.append(&leavings);
                            c.drain(to);
                        }
                        clients.push((to, back));
                    }
                    _ => {}
                }
            }
            c.settle();
            // Every client still connected and welcomed is in the lobby:
            // it hears a newcomer there.
            let listening: Vec<(usize, ClientId)> = clients
                .iter()
                .copied()
                .filter(|&(n, id)| welcomed(&c, n, id).is_some())
                .collect();
            let probe = c.connect(0, "probe");
            c.settle();
            c.nodes[0].handle_frame(NOW, probe, ClientFrame::msg_in("lobby", vec![], "anyone?", None));
            c.settle();
            for &(n, id) in &listening {
                let heard = c.texts(n, id).iter().filter(|(_, t)| t == "anyone?").count();
                prop_assert_eq!(heard, 1, "node {} client {}: {:?}", n, id, c.frames(n, id));
            }
            for room in c.log.keys() {
                prop_assert_eq!(c.nodes[0].seq(room), c.nodes[1].seq(room), "#{}", room);
                prop_assert_eq!(c.nodes[0].seq(room), c.log[room].len() as u64);
            }
            for ((node, client), frames) in &c.got {
                let mut last: BTreeMap<String, u64> = BTreeMap::new();
                for f in frames {
                    if !matches!(f["type"].as_str(), Some("msg" | "presence")) || f["replay"] == true {
                        continue;
                    }
                    let room = f["room"].as_str().unwrap_or("lobby").to_owned();
                    let seq = f["seq"].as_u64().unwrap();
                    let prev = last.insert(room.clone(), seq).unwrap_or(0);
                    prop_assert!(seq > prev, "node {} client {}: #{} seq {} after {}", node, client, room, seq, prev);
                }
            }
            // Every `enter` of a client joined and still connected is
            // answered, once: `entered`, or an error naming the room (a
            // part's is `not_in_room`).
            for &(node, client) in &clients {
                let frames = c.got.get(&(node, client)).map_or(&[][..], Vec::as_slice);
                if !frames.iter().any(|f| f["type"] == "welcome") {
                    continue;
                }
                let asked = enters.get(&(node, client)).copied().unwrap_or(0);
                let answered = frames
                    .iter()
                    .filter(|f| f["room"] == "r2")
                    .filter(|f| f["type"] == "entered" || (f["type"] == "error" && f["code"] != "not_in_room"))
                    .count();
                prop_assert_eq!(asked, answered, "node {} client {}", node, client);
            }
        }
    }
}

/// `Server::connection_of` finds the connection of a session the log
/// names (how a shell tells that a departure another node said is of a
/// session still connected to it), and none once it has gone.
#[test]
fn a_session_the_log_names_is_found_to_its_connection() {
    let mut c = Cluster::new(1);
    let alice = c.connect(0, "alice");
    c.drain(0);
    let session = c.log["lobby"]
        .iter()
        .find_map(|e| match &e.body {
            EventBody::Presence { session, .. } => Some(*session),
            _ => None,
        })
        .expect("alice's entering is in the log");
    assert_eq!(c.nodes[0].connection_of(session), Some(alice));
    assert_eq!(c.nodes[0].connection_of(SessionId(u64::MAX)), None);
    c.nodes[0].handle_disconnect(NOW, alice);
    assert_eq!(c.nodes[0].connection_of(session), None);
}

/// The log refused an entering (it has no room): the session is not in
/// the room, its connection is told so in its place among the answers,
/// and it may enter again.
#[test]
fn an_entering_the_log_refused_is_undone_and_may_be_tried_again() {
    let mut c = Cluster::new(1);
    let alice = c.connect(0, "alice");
    c.settle();
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::enter("rust", None));
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::Ping);
    let proposed = c.proposals(0);
    let [enter] = &proposed[..] else {
        panic!("one proposal, not {proposed:?}")
    };
    assert!(matches!(
        &enter.body,
        EventBody::Presence {
            status: PresenceStatus::Online,
            ..
        }
    ));
    c.nodes[0].handle_log_refused(enter, "the log is full");
    c.drain(0);
    let frames = c.frames(0, alice);
    let n = frames.len();
    assert_eq!(c.kinds(0, alice)[n - 2..], ["error", "pong"], "{frames:?}");
    let error = &frames[n - 2];
    assert_eq!(error["code"], "unavailable");
    assert_eq!(error["room"], "rust");
    assert!(error["id"].is_null(), "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("the log is full"), "{message}");
    // Not in #rust: a message there is refused, and entering works.
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::msg_in("rust", vec![], "hi", None));
    c.drain(0);
    assert_eq!(c.frames(0, alice).last().unwrap()["code"], "not_in_room");
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::enter("rust", None));
    c.settle();
    let last = c
        .frames(0, alice)
        .iter()
        .rev()
        .find(|f| f["type"] == "entered");
    assert_eq!(last.unwrap()["room"], "rust");
}

/// The session `nick` entered the lobby with, as the log has it.
fn session_of(c: &Cluster, nick: &str) -> SessionId {
    c.log["lobby"]
        .iter()
        .find_map(|e| match &e.body {
            EventBody::Presence {
                session, nick: n, ..
            } if &**n == nick => Some(*session),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{nick}'s entering is in the log"))
}

/// A session resumed from another node's block of ids (restored here)
/// does not move this node's numbering into that block: the next sessions
/// begun on the two nodes have ids of their own (one id on two nodes
/// delivered a message to one of them to the other too).
#[test]
fn a_session_resumed_from_another_nodes_block_leaves_new_ids_apart() {
    let mut c = Cluster::new(2);
    c.connect(1, "bob");
    c.settle();
    let bob = session_of(&c, "bob");
    c.nodes[0]
        .restore_session(NOW, bob, "bob", [7; 32])
        .unwrap();
    c.connect(0, "dave");
    c.connect(1, "erin");
    c.settle();
    assert_ne!(session_of(&c, "dave"), session_of(&c, "erin"));
}

/// A session that moves to another node before that node has read the
/// room: the log's entering said by the first node (and that node's word
/// that it left) come before the entering said here. Only the entering
/// this connection asked for answers its `enter`; the older one, applied
/// first, did take it (by room alone), so the connection got `entered`
/// early, was taken out by the old departure, and was never put back: it
/// heard nothing more of the room while its roster said it was there.
#[test]
fn an_older_nodes_entering_does_not_answer_an_enter_made_here() {
    let mut c = Cluster::new(2);
    let dave = c.connect(0, "dave");
    c.settle();
    let old = c.nodes[0].handle_connect(NOW);
    let join = ClientFrame::join_v2("alice", vec!["lobby".into()], None);
    c.nodes[0].handle_frame(NOW, old, join);
    c.drain(0);
    let token = c.token(0, old);
    let alice = session_of(&c, "alice");
    // Node 0 loses the connection before reading its entering back.
    c.nodes[0].handle_disconnect(NOW, old);
    c.drain(0);

    // The session resumes on node 1, which has not read the room since.
    let later = Now {
        mono: 5,
        wall: NOW.wall + 5,
    };
    c.nodes[1]
        .restore_session(later, alice, "alice", chatproto::hash_token(&token))
        .unwrap();
    let back = c.nodes[1].handle_connect(later);
    let join = ClientFrame::join_v2("alice", vec![], Some(token));
    c.nodes[1].handle_frame(later, back, join);
    c.nodes[1].handle_frame(later, back, ClientFrame::enter("lobby", None));
    c.settle();

    // Answered by her own entering (seq 4): the room up to seq 3 is what
    // she finds, and the older entering and leaving are not hers to see.
    let frames = c.frames(1, back);
    let kinds: Vec<(&str, u64)> = frames
        .iter()
        .map(|f| (f["type"].as_str().unwrap(), f["seq"].as_u64().unwrap()))
        .collect();
    assert_eq!(kinds, [("welcome", 0), ("entered", 3), ("presence", 4)]);
    // She hears the room after entering it.
    c.nodes[0].handle_frame(later, dave, ClientFrame::msg(vec![], "still there?"));
    c.settle();
    let heard: Vec<String> = c.texts(1, back).into_iter().map(|(_, t)| t).collect();
    assert_eq!(heard, ["still there?"]);
}

/// A connection that resumes its session on the same node, enters a room
/// in the same millisecond as the connection gone did, and has that
/// entering refused by the log (no room for it): the refusal undoes its
/// own entering, not the older one still on its way. It was the older
/// one's entry that went, so the older entering, applied later, took this
/// connection's (telling it `entered` after `unavailable`), or else left
/// it behind for good (the room counted as entered, and entering it again
/// answered `already_in_room`).
#[test]
fn a_refused_entering_undoes_its_own_enter_not_an_older_one() {
    let mut c = Cluster::new(1);
    let old = c.nodes[0].handle_connect(NOW);
    let join = ClientFrame::join_v2("alice", vec!["lobby".into()], None);
    c.nodes[0].handle_frame(NOW, old, join);
    c.drain(0);
    let token = c.token(0, old);
    c.nodes[0].handle_disconnect(NOW, old);
    c.drain(0);

    // Back at once, before the node read its entering (or leaving) back.
    let back = c.nodes[0].handle_connect(NOW);
    let join = ClientFrame::join_v2("alice", vec![], Some(token));
    c.nodes[0].handle_frame(NOW, back, join);
    c.nodes[0].handle_frame(NOW, back, ClientFrame::enter("lobby", None));
    let proposed = c.proposals(0);
    let [entering] = &proposed[..] else {
        panic!("one proposal, not {proposed:?}")
    };
    c.nodes[0].handle_log_refused(entering, "the cluster's log is full");
    c.settle();
    c.nodes[0].handle_frame(NOW, back, ClientFrame::enter("lobby", None));
    c.settle();

    let frames = c.frames(0, back);
    let said: Vec<String> = frames
        .iter()
        .map(|f| match f["type"].as_str().unwrap() {
            "error" => format!("error {}", f["code"].as_str().unwrap()),
            kind => kind.to_owned(),
        })
        .collect();
    assert_eq!(
        said,
        ["error unavailable", "entered", "presence"],
        "{frames:?}"
    );
    assert_eq!(frames[2]["nick"], "alice");
    assert_eq!(frames[2]["status"], "online");
}

/// The entering of a connection gone, refused by the log after the one
/// its session's new connection made was applied: the new connection is
/// still in the room (refusing the old one took the room from the
/// session, and the new connection's part was answered `not_in_room`).
#[test]
fn a_refused_entering_of_a_connection_gone_leaves_the_new_ones_room() {
    let mut c = Cluster::new(1);
    // Everything node 0 proposes, held back from the log.
    fn held(c: &mut Cluster, frames: &mut Vec<Value>) -> Vec<std::sync::Arc<Event>> {
        let mut proposed = Vec::new();
        while let Some(out) = c.nodes[0].poll() {
            match out {
                Output::Propose { events, .. } => proposed.extend(events),
                Output::Send { frame, .. } => frames.push(serde_json::to_value(&frame).unwrap()),
                _ => {}
            }
        }
        proposed
    }
    let mut frames = Vec::new();
    let old = c.nodes[0].handle_connect(NOW);
    let join = ClientFrame::join_v2("alice", vec!["lobby".into()], None);
    c.nodes[0].handle_frame(NOW, old, join);
    let old_entering = held(&mut c, &mut frames);
    let token = frames[0]["session"].as_str().unwrap().to_owned();
    c.nodes[0].handle_disconnect(NOW, old);
    let old_leaving = held(&mut c, &mut frames);

    let back = c.nodes[0].handle_connect(NOW);
    let join = ClientFrame::join_v2("alice", vec!["lobby".into()], Some(token));
    c.nodes[0].handle_frame(NOW, back, join);
    let new_entering = held(&mut c, &mut frames);
    // The log took the new entering; the old one (and so its leaving) it
    // had no room for, and says so after.
    let mut logged = Event::clone(&new_entering[0]);
    logged.seq = 1;
    c.log.insert("lobby".into(), vec![logged]);
    c.read_log(0, usize::MAX);
    for e in old_entering.iter().chain(&old_leaving) {
        c.nodes[0].handle_log_refused(e, "the cluster's log is full");
    }
    c.drain(0);

    c.nodes[0].handle_frame(NOW, back, ClientFrame::part("lobby"));
    c.settle();
    let last = c.frames(0, back).last().unwrap().clone();
    assert_eq!(
        (&last["type"], &last["nick"], &last["status"]),
        (&json!("presence"), &json!("alice"), &json!("offline")),
        "{:?}",
        c.frames(0, back)
    );
}

/// A node whose sessions are stored (as chatserver's are, in NATS): a
/// join's `welcome` waits until its session is. An entering the log
/// refuses meanwhile is answered after that `welcome`, not before it
/// (the refusal's answer went to the head of the queue, ahead of the
/// held welcome; CI saw `unavailable` come first).
#[test]
fn a_refused_entering_is_answered_after_the_welcome_held_for_the_store() {
    // Lobby too: the held welcome then says the join entered no lobby.
    for room in ["zzz", "lobby"] {
        refused_entering_after_the_welcome(room);
    }
}

fn refused_entering_after_the_welcome(room: &str) {
    let mut cfg = ServerConfig::default();
    cfg.cluster = true;
    cfg.durable = true;
    let mut node = Server::new(cfg, [3; 32]);
    let client = node.handle_connect(NOW);
    let join = ClientFrame::join_v2("bob", vec![room.into()], None);
    node.handle_frame(NOW, client, join);
    // What the node says: frames sent, its proposal, its store ticket.
    #[derive(Default)]
    struct Said {
        frames: Vec<Value>,
        entering: Option<std::sync::Arc<Event>>,
        through: Option<u64>,
    }
    fn take(node: &mut Server, said: &mut Said) {
        while let Some(out) = node.poll() {
            match out {
                Output::Propose { events, .. } => said.entering = events.first().cloned(),
                Output::Persist { through, .. } => said.through = Some(through),
                Output::Send { frame, .. } => {
                    said.frames.push(serde_json::to_value(&frame).unwrap())
                }
                _ => {}
            }
        }
    }
    let mut said = Said::default();
    take(&mut node, &mut said);
    assert!(
        said.frames.is_empty(),
        "the welcome waits for the store: {:?}",
        said.frames
    );
    let refused = said.entering.clone().expect("the entering proposed");
    node.handle_log_refused(&refused, "the cluster's log cannot make this room");
    take(&mut node, &mut said);
    node.handle_persisted(said.through.expect("the session handed to the store"));
    take(&mut node, &mut said);
    let frames = said.frames;
    let kinds: Vec<&str> = frames.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["welcome", "error"], "{frames:?}");
    assert_eq!(frames[1]["code"], "unavailable");
    assert_eq!(frames[0]["online"], json!([]), "{frames:?}");
    assert_eq!(frames[0]["seq"], json!(0), "{frames:?}");
}

/// A connection taken over (resumed elsewhere while still open) leaves
/// its rooms by a leaving the log may lose while it stores the new
/// connection's entering (a NATS connection lost under the batch). The
/// publisher then drops the leaving (storing it after the entering would
/// take the session out again): the new connection is in the room all
/// the same, and hears it, though the room still had the old one.
#[test]
fn a_takeovers_entering_stands_when_the_old_connections_leaving_is_dropped() {
    let mut c = Cluster::new(1);
    let bob = c.connect(0, "bob");
    let (_old, token) = c.join_for_token(0, "alice", &["lobby"]);

    // Resumed on a new connection while the old one is open: the old one
    // is closed, and leaves; the new one enters.
    let back = c.nodes[0].handle_connect(NOW);
    let join = ClientFrame::join_v2("alice", vec!["lobby".into()], Some(token));
    c.nodes[0].handle_frame(NOW, back, join);
    let mut proposed = Vec::new();
    while let Some(out) = c.nodes[0].poll() {
        match out {
            Output::Propose { events, .. } => proposed.extend(events),
            Output::Send { to, frame, .. } => c
                .got
                .entry((0, to))
                .or_default()
                .push(serde_json::to_value(&frame).unwrap()),
            _ => {}
        }
    }
    let is_enter = |e: &Event| {
        matches!(
            e.body,
            EventBody::Presence {
                status: PresenceStatus::Online,
                ..
            }
        )
    };
    let (enterings, leavings): (Vec<_>, Vec<_>) = proposed.iter().partition(|e| is_enter(e));
    assert_eq!((enterings.len(), leavings.len()), (1, 1), "{proposed:?}");
    // The log stores the entering; the leaving is dropped by the
    // publisher, which tells the node as for a refusal.
    let log = c.log.entry("lobby".into()).or_default();
    let mut e = Event::clone(enterings[0]);
    e.seq = log.len() as u64 + 1;
    log.push(e);
    c.read_log(0, usize::MAX);
    c.nodes[0].handle_log_refused(leavings[0], "dropped");
    c.drain(0);

    c.nodes[0].handle_frame(
        NOW,
        bob,
        ClientFrame::msg_in("lobby", vec![], "hi alice", None),
    );
    c.settle();
    assert!(
        c.texts(0, back).iter().any(|(_, t)| t == "hi alice"),
        "{:?}",
        c.frames(0, back)
    );
}

/// A node dies with hank in the lobby; the survivors free his nickname
/// and say he left, but a new hank (another session, on another node)
/// may take the name and enter before that leaving is stored. Everyone
/// sees presence by nickname: "hank left" after the new hank came would
/// say he is gone while he is in the room, to everyone and to himself.
/// The old session's leaving is applied, not told.
#[test]
fn an_old_sessions_leaving_is_not_told_once_its_nickname_is_back_in_the_room() {
    let mut c = Cluster::new(2);
    let alice = c.connect(0, "alice");
    c.connect(1, "hank");
    c.settle();
    let session_of = |c: &Cluster, nick: &str| {
        c.log["lobby"]
            .iter()
            .rev()
            .find_map(|e| match &e.body {
                EventBody::Presence {
                    session, nick: n, ..
                } if &**n == nick => Some(*session),
                _ => None,
            })
            .unwrap()
    };
    let old = session_of(&c, "hank");
    // Node 1 dies; hank comes back as a new session on node 0 before the
    // survivors' word that the old one left is stored.
    let hank = c.connect(0, "hank");
    c.drain(0);
    c.read_log(0, usize::MAX);
    let new = session_of(&c, "hank");
    assert_ne!(old, new);
    let log = c.log.get_mut("lobby").unwrap();
    let seq = log.len() as u64 + 1;
    let leaving = Event::new(
        "lobby",
        seq,
        NOW.wall,
        EventBody::presence(old, "hank", PresenceStatus::Offline),
    );
    log.push(leaving.clone());
    c.read[0].insert("lobby".into(), seq as usize);
    c.nodes[0].handle_logged(leaving).unwrap();
    // Still an output, to no one: a shell that logs each event it
    // delivers logs this one too, in its place.
    let mut told = None;
    while let Some(out) = c.nodes[0].poll() {
        if let Output::Deliver { event, to, .. } = out {
            if event.seq == seq {
                told = Some(to.to_vec());
            }
        }
    }
    assert_eq!(told, Some(Vec::new()));
    for (who, c_id) in [("alice", alice), ("hank", hank)] {
        let lefts = c
            .frames(0, c_id)
            .iter()
            .filter(|f| f["type"] == "presence" && f["nick"] == "hank" && f["status"] == "offline")
            .count();
        assert_eq!(lefts, 0, "{who}: {:?}", c.frames(0, c_id));
    }

    // The new hank is in the room: a message to him goes.
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::msg(vec!["hank".into()], "there?"));
    c.settle();
    assert!(
        c.texts(0, hank).iter().any(|(_, t)| t == "there?"),
        "{:?}",
        c.frames(0, hank)
    );
}

/// The log says another node's session entered the lobby as bob, then
/// (with no leaving between) as carol, then that it left. Each node lists
/// it once, found by the nickname it entered with last, and its leaving
/// takes that out: a message to bob or carol afterwards is "not online"
/// (the key for bob was left pointing at a session gone from the roster,
/// and a message to bob panicked; found by a probe).
#[test]
fn a_session_the_log_says_entered_under_two_nicknames_is_found_by_the_last() {
    let mut c = Cluster::new(1);
    let alice = c.connect(0, "alice");
    c.settle();
    let remote = SessionId(1_000);
    let logged = |c: &mut Cluster, nick: &str, status| {
        let log = c.log.get_mut("lobby").unwrap();
        let seq = log.len() as u64 + 1;
        let body = EventBody::presence(remote, nick, status);
        log.push(Event::new("lobby", seq, NOW.wall, body));
        c.read_log(0, usize::MAX);
    };
    logged(&mut c, "bob", PresenceStatus::Online);
    logged(&mut c, "carol", PresenceStatus::Online);
    let roster = c.nodes[0].roster("lobby").unwrap();
    let listed: Vec<_> = roster
        .members
        .iter()
        .map(|m| (m.session, &*m.nick, m.found_by_nick))
        .collect();
    assert!(listed.contains(&(remote, "carol", true)), "{listed:?}");
    assert_eq!(listed.iter().filter(|m| m.0 == remote).count(), 1);
    // carol is found; bob is not online any more.
    let answer = |c: &mut Cluster, to: &str| {
        let text = format!("hi {to}");
        c.nodes[0].handle_frame(NOW, alice, ClientFrame::msg(vec![to.into()], &text));
        c.settle();
        c.frames(0, alice).last().cloned().unwrap()
    };
    assert_eq!(answer(&mut c, "carol")["text"], "hi carol");
    let bob = answer(&mut c, "bob");
    assert_eq!(bob["code"], "unknown_nick", "{bob}");
    logged(&mut c, "carol", PresenceStatus::Offline);
    let roster = c.nodes[0].roster("lobby").unwrap();
    assert!(roster.members.iter().all(|m| m.session != remote));
    for to in ["bob", "carol"] {
        let error = answer(&mut c, to);
        assert_eq!(error["code"], "unknown_nick", "{error}");
    }
}

/// A roster that lists one session twice (no server's
/// [`Server::roster`] does: a damaged or hand-made one) is refused, and
/// the room's roster stays as it was (taken, its second name's key was
/// left pointing at a session gone from the roster once the first
/// left, and a message to that name panicked; found by a probe).
#[test]
fn a_roster_listing_a_session_twice_is_refused() {
    let mut late = late_node();
    late.open_room("lobby", "epoch-1", 10);
    let member = |s, nick: &str| chatproto::RosterMember {
        session: SessionId(s),
        nick: nick.into(),
        found_by_nick: true,
    };
    let roster = chatproto::Roster {
        epoch: "epoch-1".into(),
        seq: 9,
        members: vec![member(1, "bob"), member(1, "carol"), member(2, "dave")],
    };
    let refused = late.seed_roster("lobby", roster);
    assert!(
        matches!(
            &refused,
            Err(LogError::RosterMemberTwice { room, session, .. })
                if room == "lobby" && *session == SessionId(1)
        ),
        "{refused:?}"
    );
    let message = refused.unwrap_err().to_string();
    assert!(
        message.contains("s1") && message.contains("twice"),
        "{message}"
    );
    while late.poll().is_some() {}
    assert_eq!(late.roster("lobby").unwrap().members, []);
    // The same roster, each session once, is taken.
    let roster = chatproto::Roster {
        epoch: "epoch-1".into(),
        seq: 9,
        members: vec![member(1, "carol"), member(2, "dave")],
    };
    late.seed_roster("lobby", roster.clone()).unwrap();
    while late.poll().is_some() {}
    assert_eq!(late.roster("lobby"), Some(roster));
}

/// The lobby's log on `c`, and node 0's roster at its last event, which
/// lists alice and bob.
fn log_and_roster(c: &Cluster) -> (Vec<Event>, chatproto::Roster) {
    let log = c.log["lobby"].clone();
    let roster = c.nodes[0].roster("lobby").unwrap();
    assert_eq!(roster.seq, log.len() as u64);
    let nicks: Vec<&str> = roster.members.iter().map(|m| &*m.nick).collect();
    assert_eq!(nicks, ["alice", "bob"]);
    (log, roster)
}

/// A cluster node that has read nothing yet (its session ids apart from
/// the harness's nodes').
fn late_node() -> Server {
    let mut cfg = ServerConfig::default();
    cfg.cluster = true;
    let mut late = Server::new(cfg, [7; 32]);
    late.reserve_sessions(7 << 32);
    late
}

/// A node that reads a room's log from past its start (the log's limits
/// dropped the oldest events) takes who is in the room from another
/// node's [`Server::roster`], given right after the event it was taken
/// at: its clients see everyone, and reach them by nickname. Without it
/// they would miss everyone whose entering the log no longer holds.
#[test]
fn a_node_reading_past_the_logs_start_takes_the_roster_from_another() {
    let mut c = Cluster::new(1);
    let alice = c.connect(0, "alice");
    c.connect(0, "bob");
    c.settle();
    for text in ["one", "two", "three"] {
        c.nodes[0].handle_frame(NOW, alice, ClientFrame::msg(vec![], text));
    }
    c.settle();
    let (log, roster) = log_and_roster(&c);
    let last = log.len() as u64;
    assert!(roster.members.iter().all(|m| m.found_by_nick));

    // The late node reads the log from the first message on: both
    // enterings are gone from it.
    let mut late = late_node();
    late.open_room("lobby", "epoch-1", 3);
    // Given before its event: refused, naming both seqs.
    assert!(
        matches!(
            late.seed_roster("lobby", roster.clone()),
            Err(LogError::RosterSeq { ref room, seq, next: 3, .. }) if room == "lobby" && seq == last
        ),
        "refused, naming both seqs"
    );
    for e in &log[2..] {
        late.handle_logged(e.clone()).unwrap();
    }
    late.seed_roster("lobby", roster.clone()).unwrap();
    while late.poll().is_some() {}
    assert_eq!(late.roster("lobby"), Some(roster));

    // carol joins there: she sees alice and bob, and reaches bob.
    let carol = late.handle_connect(NOW);
    late.handle_frame(NOW, carol, ClientFrame::join("carol"));
    let mut seq = last;
    let mut got: Vec<Value> = Vec::new();
    for _ in 0..10 {
        let mut proposed = Vec::new();
        while let Some(out) = late.poll() {
            match out {
                Output::Propose { events, .. } => proposed.extend(events),
                Output::Send { to, frame, .. } if to == carol => {
                    got.push(serde_json::to_value(&frame).unwrap())
                }
                _ => {}
            }
        }
        if proposed.is_empty() {
            break;
        }
        for e in proposed {
            seq += 1;
            let mut e = Event::clone(&e);
            e.seq = seq;
            late.handle_logged(e).unwrap();
        }
    }
    let welcome = got.iter().find(|f| f["type"] == "welcome").unwrap();
    assert_eq!(welcome["online"], json!(["alice", "bob", "carol"]));
    late.handle_frame(NOW, carol, ClientFrame::msg(vec!["bob".into()], "hi"));
    let mut proposed = Vec::new();
    while let Some(out) = late.poll() {
        match out {
            Output::Propose { events, .. } => proposed.extend(events),
            Output::Send { to, frame, .. } if to == carol => {
                panic!("carol was answered {frame:?}")
            }
            _ => {}
        }
    }
    assert!(
        matches!(&proposed[..], [e] if matches!(&e.body, EventBody::Msg { text, .. } if text == "hi")),
        "{proposed:?}"
    );
}

/// A roster taken where the late node opens the room (the event before
/// its log's first) is given at once (one of another epoch is refused),
/// and a roster's member whose nickname another member has is listed but
/// not found by it.
#[test]
fn a_roster_is_given_at_the_rooms_opening_and_keeps_who_a_nickname_finds() {
    let mut late = late_node();
    late.open_room("lobby", "epoch-1", 10);
    let member = |s, nick: &str, found_by_nick| chatproto::RosterMember {
        session: SessionId(s),
        nick: nick.into(),
        found_by_nick,
    };
    let roster = chatproto::Roster {
        epoch: "epoch-1".into(),
        seq: 9,
        members: vec![member(1, "Zed", false), member(2, "zed", true)],
    };
    let other = chatproto::Roster {
        epoch: "epoch-0".into(),
        ..roster.clone()
    };
    assert!(matches!(
        late.seed_roster("lobby", other),
        Err(LogError::RosterEpoch { .. })
    ));
    late.seed_roster("lobby", roster.clone()).unwrap();
    while late.poll().is_some() {}
    assert_eq!(late.roster("lobby"), Some(roster));
    // Zed (session 1) leaves: zed is still found.
    let left = EventBody::presence(SessionId(1), "Zed", PresenceStatus::Offline);
    late.handle_logged(Event::new("lobby", 10, NOW.wall, left))
        .unwrap();
    while late.poll().is_some() {}
    let after = late.roster("lobby").unwrap();
    assert_eq!(after.members, vec![member(2, "zed", true)]);
}

/// A node that steps over the last events it reads (`skip_logged`: the
/// log dropped them before it read them) takes the roster taken at the
/// last one it stepped over, given right after it: bob, whose entering it
/// stepped over, is listed. (A step over did not move the room's seq, to
/// which the seed is compared when applied: it was dropped without a
/// word. Found in review.)
#[test]
fn a_roster_given_right_after_a_stepped_over_event_is_taken() {
    let mut c = Cluster::new(1);
    let alice = c.connect(0, "alice");
    c.settle();
    let alices = c.log["lobby"].len();
    c.connect(0, "bob");
    c.settle();
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::msg(vec![], "one"));
    c.settle();
    let (log, roster) = log_and_roster(&c);
    let last = log.len() as u64;

    let mut late = late_node();
    late.open_room("lobby", "epoch-1", 1);
    // It read alice's entering, then the rest was dropped before it read it.
    for e in &log[..alices] {
        late.handle_logged(e.clone()).unwrap();
    }
    while late.poll().is_some() {}
    for seq in alices as u64 + 1..=last {
        late.skip_logged("lobby", seq).unwrap();
    }
    assert_eq!(late.next_logged("lobby"), Some(last + 1));
    // Given right after the event it was taken at (stepped over here).
    late.seed_roster("lobby", roster.clone()).unwrap();
    while late.poll().is_some() {}
    let got = late.roster("lobby").unwrap();
    let nicks: Vec<&str> = got.members.iter().map(|m| &*m.nick).collect();
    assert_eq!(
        nicks,
        ["alice", "bob"],
        "the roster given after a stepped-over event was dropped: {got:?}"
    );
}

/// Who node `n`'s roster of `room` lists, by nickname.
fn listed(c: &Cluster, n: usize, room: &str) -> Vec<String> {
    let roster = c.nodes[n].roster(room).unwrap();
    roster.members.iter().map(|m| m.nick.to_string()).collect()
}

/// How many times `c` on `node` was told that `nick` went `status` in
/// `room`.
fn told(c: &Cluster, node: usize, client: ClientId, room: &str, nick: &str, status: &str) -> usize {
    let frames = c.frames(node, client).iter();
    frames
        .filter(|f| f["type"] == "presence" && f["room"] == room)
        .filter(|f| f["nick"] == nick && f["status"] == status)
        .count()
}

/// A connection the core closes (a kick, or a takeover asked by another
/// node) gets nothing after its `Close`, though its leaving is still on
/// its way through the log: bob's message, logged before that leaving,
/// is not delivered to it (the harness's `drain` fails on a delivery to
/// a closed connection). alice stays in the room's roster, and is found
/// by nickname, until her leaving is applied; that leaving reaches bob
/// once.
#[test]
fn a_connection_the_core_closes_gets_nothing_after_its_close() {
    type End = fn(&mut Server, ClientId);
    let kick: End = |s, alice| s.kick(NOW, alice, Kick::slow_consumer(1 << 20));
    let taken_over: End = |s, alice| {
        let token = s.token_hash_of(alice).unwrap();
        assert_eq!(s.handle_resumed_elsewhere(NOW, &token), Some(alice));
    };
    for (how, end) in [("kick", kick), ("takeover", taken_over)] {
        let mut c = Cluster::new(1);
        let alice = c.connect(0, "alice");
        let bob = c.connect(0, "bob");
        c.settle();
        c.nodes[0].handle_frame(
            NOW,
            bob,
            ClientFrame::msg_in("lobby", vec![], "before the close", None),
        );
        c.drain(0);
        end(&mut c.nodes[0], alice);
        c.drain(0);
        assert!(c.closed.contains(&(0, alice)), "{how}: closed");
        let leaving = c.log["lobby"].len() as u64;
        assert_eq!(c.nodes[0].seq("lobby"), leaving - 2, "{how}");

        // bob's message is applied: to bob alone.
        c.read_log(0, 1);
        assert_eq!(c.nodes[0].seq("lobby"), leaving - 1, "{how}");
        assert_eq!(
            c.texts(0, bob),
            [(leaving - 1, "before the close".to_owned())],
            "{how}"
        );
        assert!(c.texts(0, alice).is_empty(), "{how}");
        // Still in the room for everyone until her leaving is applied:
        // listed, and found by nickname.
        assert_eq!(listed(&c, 0, "lobby"), ["alice", "bob"], "{how}");
        c.nodes[0].handle_frame(
            NOW,
            bob,
            ClientFrame::msg_in("lobby", vec!["alice".into()], "still there?", None),
        );
        c.drain(0);
        let refused = c.frames(0, bob).iter().any(|f| f["type"] == "error");
        assert!(!refused, "{how}: {:?}", c.frames(0, bob));

        // Her leaving is applied: bob is told once, and she is gone.
        c.settle();
        assert!(c.nodes[0].seq("lobby") > leaving, "{how}");
        assert_eq!(told(&c, 0, bob, "lobby", "alice", "offline"), 1, "{how}");
        assert_eq!(listed(&c, 0, "lobby"), ["bob"], "{how}");
        assert!(c.texts(0, alice).is_empty(), "{how}");
        // The private message found nobody by then; bob has his echo.
        assert!(
            c.texts(0, bob).iter().any(|(_, t)| t == "still there?"),
            "{how}: {:?}",
            c.frames(0, bob)
        );
        assert_eq!(c.nodes[0].rooms().collect::<Vec<_>>(), [("lobby", 1)]);
    }
}

/// A resume on this node while the session's connection is open closes
/// that connection (a takeover): the old connection gets nothing after
/// its `Close`, while bob's message logged before its leaving is
/// applied; the new one enters after that leaving, and bob is told alice
/// left, then came back, once each.
#[test]
fn a_connection_taken_over_here_gets_nothing_after_its_close() {
    let mut c = Cluster::new(1);
    let old = c.connect(0, "alice");
    let bob = c.connect(0, "bob");
    c.settle();
    let token = c.token(0, old);
    c.nodes[0].handle_frame(
        NOW,
        bob,
        ClientFrame::msg_in("lobby", vec![], "before the takeover", None),
    );
    c.drain(0);
    let back = c.nodes[0].handle_connect(NOW);
    let join = ClientFrame::join_v2("alice", vec!["lobby".into()], Some(token));
    c.nodes[0].handle_frame(NOW, back, join);
    c.drain(0);
    assert!(c.closed.contains(&(0, old)));

    c.read_log(0, 1);
    assert_eq!(listed(&c, 0, "lobby"), ["alice", "bob"]);
    assert!(c.texts(0, old).is_empty(), "{:?}", c.frames(0, old));
    c.settle();
    assert_eq!(told(&c, 0, bob, "lobby", "alice", "offline"), 1);
    assert_eq!(told(&c, 0, bob, "lobby", "alice", "online"), 1);
    assert_eq!(listed(&c, 0, "lobby"), ["alice", "bob"]);
    // The new connection has bob's message in its replay, and is in the
    // room: it hears the next one.
    c.nodes[0].handle_frame(NOW, bob, ClientFrame::msg_in("lobby", vec![], "hi", None));
    c.settle();
    assert!(c.texts(0, back).iter().any(|(_, t)| t == "hi"));
    assert_eq!(c.nodes[0].rooms().collect::<Vec<_>>(), [("lobby", 2)]);
}

/// alice parts #rust and her connection is closed (by the shell, or by
/// the core) before that part comes back from the log: #rust is no
/// longer among her session's rooms, but until the part is applied the
/// connection was still in #rust's fan-out. bob's message there, logged
/// before the part, is not delivered to it; the part reaches bob once.
#[test]
fn a_connection_closed_with_its_part_on_the_way_gets_nothing_after() {
    type End = fn(&mut Cluster, ClientId);
    let disconnect: End = |c, alice| c.disconnect(0, alice);
    let kick: End = |c, alice| c.nodes[0].kick(NOW, alice, Kick::RateLimited);
    for (how, end) in [("disconnect", disconnect), ("kick", kick)] {
        let mut c = Cluster::new(1);
        let alice = c.connect(0, "alice");
        let bob = c.connect(0, "bob");
        for who in [alice, bob] {
            c.nodes[0].handle_frame(NOW, who, ClientFrame::enter("rust", None));
        }
        c.settle();
        c.nodes[0].handle_frame(
            NOW,
            bob,
            ClientFrame::msg_in("rust", vec![], "before the part", None),
        );
        c.drain(0);
        c.nodes[0].handle_frame(NOW, alice, ClientFrame::part("rust"));
        c.drain(0);
        end(&mut c, alice);
        c.drain(0);
        assert!(c.ended.contains(&(0, alice)), "{how}");

        c.read_log(0, 1);
        assert!(
            c.texts(0, bob).iter().any(|(_, t)| t == "before the part"),
            "{how}"
        );
        assert!(c.texts(0, alice).is_empty(), "{how}");
        assert_eq!(listed(&c, 0, "rust"), ["alice", "bob"], "{how}");
        c.settle();
        assert_eq!(told(&c, 0, bob, "rust", "alice", "offline"), 1, "{how}");
        assert_eq!(told(&c, 0, bob, "lobby", "alice", "offline"), 1, "{how}");
        assert_eq!(listed(&c, 0, "rust"), ["bob"], "{how}");
    }
}

/// alice's connection closes (having parted the lobby just before, in
/// one case), and she resumes on a new one, here or on another node,
/// which enters the lobby again. The log holds that entering before the
/// old connection's leaving: an embedder's log need not keep a node's
/// proposals in the order they were made, nor two nodes' in the order
/// they were said. That leaving was said for the old connection, gone
/// by then: it takes no connection out of the room. The new one, which
/// it took out, heard nothing more of the room while its session was
/// in it.
#[test]
fn a_leaving_logged_after_the_sessions_new_entering_leaves_the_new_connection_in() {
    let cases = [
        ("resumed here", 0, false),
        ("resumed on another node", 1, false),
        ("parted, then resumed here", 0, true),
    ];
    for (how, to, parted) in cases {
        let mut c = Cluster::new(2);
        let bob = c.connect(0, "bob");
        let (old, token) = c.join_for_token(0, "alice", &["lobby"]);
        let alice = c.nodes[0].session_id_of(old).unwrap();
        if parted {
            c.nodes[0].handle_frame(NOW, old, ClientFrame::part("lobby"));
        }
        let mut leaving = c.hold(0);
        c.disconnect(0, old);
        leaving.extend(c.hold(0));
        assert_eq!(leaving.len(), 1, "{how}: {leaving:?}");

        let later = Now {
            mono: 5,
            wall: NOW.wall + 5,
        };
        if to != 0 {
            let hash = chatproto::hash_token(&token);
            known_or_restored(c.nodes[to].restore_session(later, alice, "alice", hash));
        }
        let back = c.nodes[to].handle_connect(later);
        let join = ClientFrame::join_v2("alice", vec!["lobby".into()], Some(token));
        c.nodes[to].handle_frame(later, back, join);
        // The new entering is logged first, then the old leaving.
        c.drain(to);
        c.append(&leaving);
        c.settle();
        assert_eq!(c.kinds(to, back)[..2], ["welcome", "entered"], "{how}");

        c.nodes[0].handle_frame(later, bob, ClientFrame::msg(vec![], "still there?"));
        c.settle();
        let heard: Vec<String> = c.texts(to, back).into_iter().map(|(_, t)| t).collect();
        assert_eq!(heard, ["still there?"], "{how}: {:?}", c.frames(to, back));

        // The log said she left (the old leaving): her part now takes the
        // new connection out all the same, and it is told its own part.
        let parts = told(&c, to, back, "lobby", "alice", "offline");
        c.nodes[to].handle_frame(later, back, ClientFrame::part("lobby"));
        c.settle();
        assert_eq!(
            told(&c, to, back, "lobby", "alice", "offline"),
            parts + 1,
            "{how}"
        );
        c.nodes[0].handle_frame(later, bob, ClientFrame::msg(vec![], "gone?"));
        c.settle();
        assert_eq!(
            c.texts(to, back).len(),
            1,
            "{how}: {:?}",
            c.frames(to, back)
        );
    }
}

/// alice's session moves from node 1 to node 0, and her new connection
/// parts the lobby, all before node 0 reads the log; her old
/// connection's leaving, said by node 1, has the very stamp of her part
/// here (the two clocks' same millisecond). The log holds node 1's
/// leaving, her entering here, then her part. Her part takes her out of
/// the room all the same: she hears nothing more of the room she left.
/// (Node 1's leaving was taken for her part, which then found nothing to
/// take out: she heard the room after leaving it.)
#[test]
fn a_part_whose_stamp_another_nodes_leaving_has_still_takes_the_connection_out() {
    let mut c = Cluster::new(2);
    let bob = c.connect(0, "bob");
    let (first, token) = c.join_for_token(1, "alice", &["lobby"]);
    let alice = c.nodes[1].session_id_of(first).unwrap();
    c.disconnect(1, first);
    c.drain(1);

    let hash = chatproto::hash_token(&token);
    c.nodes[0]
        .restore_session(NOW, alice, "alice", hash)
        .unwrap();
    let back = c.nodes[0].handle_connect(NOW);
    let join = ClientFrame::join_v2("alice", vec!["lobby".into()], Some(token));
    c.nodes[0].handle_frame(NOW, back, join);
    c.nodes[0].handle_frame(NOW, back, ClientFrame::part("lobby"));
    c.settle();
    assert_eq!(c.kinds(0, back)[..2], ["welcome", "entered"]);
    assert_eq!(told(&c, 0, back, "lobby", "alice", "offline"), 1);

    c.nodes[0].handle_frame(NOW, bob, ClientFrame::msg(vec![], "gone?"));
    c.settle();
    assert_eq!(c.texts(0, back), [], "{:?}", c.frames(0, back));
}

/// alice parts #rust and enters it again on the same connection, and the
/// log holds that entering before the part: she stays in the room here,
/// but the log says she left it last. Her node says she entered again,
/// so that every node lists her and finds her by nickname, as long as
/// she is in the room. (Every roster lacked her: a private message to
/// her was refused, and she was listed nowhere, while she heard the
/// room.)
#[test]
fn a_session_still_in_a_room_after_a_stale_leaving_is_listed_again() {
    let mut c = Cluster::new(2);
    let alice = c.connect(0, "alice");
    let bob = c.connect(1, "bob");
    for (n, who) in [(0, alice), (1, bob)] {
        c.nodes[n].handle_frame(NOW, who, ClientFrame::enter("rust", None));
    }
    c.settle();
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::part("rust"));
    let part = c.hold(0);
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::enter("rust", None));
    c.drain(0);
    c.append(&part);
    c.settle();
    for n in 0..2 {
        assert_eq!(listed(&c, n, "rust"), ["alice", "bob"], "node {n}");
    }
    c.nodes[1].handle_frame(
        NOW,
        bob,
        ClientFrame::msg_in("rust", vec!["alice".into()], "psst", None),
    );
    c.settle();
    let heard: Vec<String> = c.texts(0, alice).into_iter().map(|(_, t)| t).collect();
    assert_eq!(heard, ["psst"], "{:?}", c.frames(1, bob));
}

/// A session resumed on another node is restored there, or known there
/// already (it was there before): anything else is a bug.
fn known_or_restored(restored: Result<(), chatproto::RestoreError>) {
    match restored {
        Ok(()) | Err(chatproto::RestoreError::SessionKnown { .. }) => {}
        Err(e) => panic!("{e}"),
    }
}

/// The log's words on two messages with a `ping` between them, the later
/// message's first: each answer goes in its own message's place, the
/// earlier one's before the `pong` (it went after it, behind the later
/// message's answer put in first).
/// Each frame as a word: its type, or an error's code and id.
fn answer_words<'a>(frames: impl IntoIterator<Item = &'a Value>) -> Vec<String> {
    frames
        .into_iter()
        .map(|f| match f["type"].as_str().unwrap() {
            "error" => format!(
                "{} {}",
                f["code"].as_str().unwrap(),
                f["id"].as_str().unwrap()
            ),
            other => other.to_owned(),
        })
        .collect()
}

#[test]
fn a_late_answer_for_a_message_before_a_ping_goes_before_the_pong() {
    let mut c = Cluster::new(1);
    let alice = c.connect(0, "alice");
    c.settle();
    let before = c.frames(0, alice).len();
    let msg = |text: &str, id: &str| ClientFrame::msg_in("lobby", vec![], text, Some(id.into()));
    c.nodes[0].handle_frame(NOW, alice, msg("one", "m1"));
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::Ping);
    c.nodes[0].handle_frame(NOW, alice, msg("two", "m2"));
    c.nodes[0].handle_frame(NOW, alice, ClientFrame::Ping);
    let proposed = c.proposals(0);
    let [one, two] = &proposed[..] else {
        panic!("two proposals, not {proposed:?}")
    };
    // The second is refused first, then the first is said held already.
    c.nodes[0].handle_log_refused(two, "no room");
    let mut first = Event::clone(one);
    first.seq = 7;
    c.nodes[0].handle_logged_duplicate(&first);
    c.drain(0);
    let answers = answer_words(&c.frames(0, alice)[before..]);
    assert_eq!(
        answers,
        ["duplicate m1", "pong", "unavailable m2", "pong"],
        "{:?}",
        c.frames(0, alice)
    );
}

/// alice's message `m1` in `lobby`, with its id.
fn m1() -> ClientFrame {
    ClientFrame::msg_in("lobby", vec![], "hi", Some("m1".into()))
}

/// alice sent `m1`, which the log holds back (returned: the proposal),
/// and her connection dropped; a new connection sent the `join` that
/// resumes her session, not yet settled. With that connection.
fn resuming_with_m1_on_its_way() -> (Cluster, Vec<std::sync::Arc<Event>>, ClientId) {
    let mut c = Cluster::new(1);
    let (old, token) = c.join_for_token(0, "alice", &["lobby"]);
    c.nodes[0].handle_frame(NOW, old, m1());
    let first = c.hold(0);
    assert_eq!(first.len(), 1, "{first:?}");
    c.disconnect(0, old);
    let new = c.nodes[0].handle_connect(NOW);
    let join = ClientFrame::join_v2("alice", vec!["lobby".into()], Some(token));
    c.nodes[0].handle_frame(NOW, new, join);
    (c, first, new)
}

/// As [`resuming_with_m1_on_its_way`], the resume settled. With how many
/// frames the new connection had before the test's.
fn resumed_with_m1_on_its_way() -> (Cluster, Vec<std::sync::Arc<Event>>, ClientId, usize) {
    let (mut c, first, new) = resuming_with_m1_on_its_way();
    c.settle();
    let before = c.frames(0, new).len();
    (c, first, new, before)
}

/// A message resent with its id on a resumed connection while its first
/// copy is still on its way through the log is not answered `duplicate`
/// at once (with seq 0, which no message has, and before the log said it
/// stored the first copy): the first copy's echo, with the seq the log
/// gave, answers it; or, the log refusing that copy, `unavailable`.
#[test]
fn a_resend_while_its_first_copy_is_on_its_way_waits_for_the_log() {
    for refused in [false, true] {
        let (mut c, first, new, before) = resumed_with_m1_on_its_way();
        c.nodes[0].handle_frame(NOW, new, m1());
        c.settle();
        let answers = |c: &Cluster| -> Vec<Value> {
            c.frames(0, new)[before..]
                .iter()
                .filter(|f| f["id"] == "m1")
                .cloned()
                .collect()
        };
        assert_eq!(answers(&c), Vec::<Value>::new(), "refused: {refused}");
        if refused {
            c.nodes[0].handle_log_refused(&first[0], "no room");
        } else {
            c.append(&first);
        }
        c.settle();
        let got = answers(&c);
        let [answer] = &got[..] else {
            panic!("refused: {refused}: one answer, not {got:?}");
        };
        if refused {
            assert_eq!(
                (&answer["type"], &answer["code"]),
                (&"error".into(), &"unavailable".into()),
                "{answer}"
            );
        } else {
            assert_eq!(answer["type"], "msg", "{answer}");
            assert!(answer["seq"].as_u64().is_some_and(|s| s > 0), "{answer}");
        }
    }
}

/// The frames after such a resend are answered after it, in the order
/// sent (PROTOCOL 5.7): a `ping` sent after the resend gets its `pong`
/// once the resend is answered, and so does a second resend of the same
/// message (`duplicate`, with the seq the log gave, or `unavailable`).
/// The `pong` went out at once, ahead of the resend's answer.
#[test]
fn frames_after_a_resend_waiting_for_the_log_are_answered_after_it() {
    for refused in [false, true] {
        let (mut c, first, new, before) = resumed_with_m1_on_its_way();
        c.nodes[0].handle_frame(NOW, new, m1());
        c.nodes[0].handle_frame(NOW, new, ClientFrame::Ping);
        c.nodes[0].handle_frame(NOW, new, m1());
        c.nodes[0].handle_frame(NOW, new, ClientFrame::Ping);
        c.settle();
        assert_eq!(
            answer_words(&c.frames(0, new)[before..]),
            [] as [&str; 0],
            "refused: {refused}"
        );
        if refused {
            c.nodes[0].handle_log_refused(&first[0], "no room");
        } else {
            c.append(&first);
        }
        c.settle();
        let got = &c.frames(0, new)[before..];
        let want: &[&str] = if refused {
            &["unavailable m1", "pong", "unavailable m1", "pong"]
        } else {
            &["msg", "pong", "duplicate m1", "pong"]
        };
        assert_eq!(answer_words(got), want, "refused: {refused}: {got:?}");
        if !refused {
            assert_eq!(got[0]["seq"], got[2]["seq"], "{got:?}");
        }
    }
}

/// A resend waiting for its first copy is answered when the log says it
/// held that copy already (a duplicate, with its seq): `duplicate`, then
/// the `pong` that waited behind it. The resend's wait was never ended
/// there, and every later answer of the connection waited for good.
#[test]
fn a_resend_is_answered_when_the_log_calls_its_first_copy_a_duplicate() {
    let (mut c, first, new, before) = resumed_with_m1_on_its_way();
    c.nodes[0].handle_frame(NOW, new, m1());
    c.nodes[0].handle_frame(NOW, new, ClientFrame::Ping);
    c.settle();
    assert_eq!(answer_words(&c.frames(0, new)[before..]), [] as [&str; 0]);
    let mut held = (*first[0]).clone();
    held.seq = 7;
    c.nodes[0].handle_logged_duplicate(&held);
    c.settle();
    let got = &c.frames(0, new)[before..];
    assert_eq!(answer_words(got), ["duplicate m1", "pong"], "{got:?}");
    assert_eq!(got[0]["seq"], 7, "{got:?}");
}

/// A connection whose answers wait for a log that does not answer (NATS
/// away) is sent a `ping` once they have waited `held_ping_ms`, and again
/// each time that passes while they stay held: a server `ping` answers no
/// frame, so it goes ahead of them, and the client hears that the link
/// is alive (its own keepalive would otherwise call it dead). The answers
/// still come in the order the frames were sent once the log answers;
/// then no more pings come, and the server sleeps until the idle ping.
#[test]
fn answers_held_for_the_log_are_kept_company_by_pings() {
    let at = |mono: u64| Now { mono, ..NOW };
    let mut c = Cluster::new(1);
    let alice = c.connect(0, "alice");
    c.settle();
    let before = c.frames(0, alice).len();
    let msg = ClientFrame::msg_in("lobby", vec![], "stuck", Some("m1".into()));
    c.nodes[0].handle_frame(at(1_000), alice, msg);
    c.nodes[0].handle_frame(at(1_000), alice, ClientFrame::Ping);
    let proposed = c.proposals(0);
    assert_eq!(proposed.len(), 1, "{proposed:?}");
    let held_ping_ms = c.nodes[0].config().held_ping_ms;
    assert_eq!(held_ping_ms, chatproto::DEFAULT_HELD_PING_MS);
    c.nodes[0].handle_timeout(at(1_000 + held_ping_ms - 1));
    c.drain(0);
    assert_eq!(c.kinds(0, alice)[before..], [] as [&str; 0]);
    // The next deadline is the held answers' (the join timeout's at
    // 10 s, the idle ping's at 30 s).
    assert_eq!(c.nodes[0].poll_timeout(), Some(1_000 + held_ping_ms));
    c.nodes[0].handle_timeout(at(1_000 + held_ping_ms));
    c.drain(0);
    assert_eq!(c.kinds(0, alice)[before..], ["ping"]);
    // Its pong is ordinary activity (and waits behind nothing).
    c.nodes[0].handle_frame(at(6_500), alice, ClientFrame::Pong);
    // No second ping within the interval; one when it has passed again.
    c.nodes[0].handle_timeout(at(1_000 + 2 * held_ping_ms - 1));
    c.drain(0);
    assert_eq!(c.kinds(0, alice)[before..], ["ping"]);
    assert_eq!(
        c.nodes[0].poll_timeout(),
        Some(1_000 + 2 * held_ping_ms),
        "the join timeout's deadline came and went"
    );
    c.nodes[0].handle_timeout(at(1_000 + 2 * held_ping_ms));
    c.drain(0);
    assert_eq!(c.kinds(0, alice)[before..], ["ping", "ping"]);
    // The log answers: the echo, then the pong, in the order sent.
    c.append(&proposed);
    c.read_log(0, usize::MAX);
    assert_eq!(
        answer_words(&c.frames(0, alice)[before..]),
        ["ping", "ping", "msg", "pong"]
    );
    // Nothing held: no more pings, and the server sleeps until the idle
    // ping's deadline.
    c.nodes[0].handle_timeout(at(1_000 + 3 * held_ping_ms));
    c.drain(0);
    assert_eq!(c.kinds(0, alice)[before..], ["ping", "ping", "msg", "pong"]);
    let next = c.nodes[0].poll_timeout().unwrap();
    assert!(next >= 30_000, "woken at {next} with nothing held");
}

/// The answers `client` got to its frames that carry id `m1`, outside
/// replays.
fn answers_to_m1(c: &Cluster, client: ClientId, from: usize) -> Vec<Value> {
    c.frames(0, client)[from..]
        .iter()
        .filter(|f| f["id"] == "m1" && f["replay"] != true)
        .cloned()
        .collect()
}

/// A client resuming sends its `join`, then its resends at once (as
/// chatproto's own client does): the resend of `m1` comes before the new
/// connection's entering is applied, while the first copy is on its way.
/// The log brings the first copy, then the old connection's leaving, then
/// the new one's entering: the echo goes to no connection of alice's, so
/// the resend is told `duplicate` (it was told nothing: the echo was
/// counted as its answer).
#[test]
fn a_resend_sent_with_the_resumes_join_is_answered() {
    let (mut c, first, new) = resuming_with_m1_on_its_way();
    c.nodes[0].handle_frame(NOW, new, m1());
    c.nodes[0].handle_frame(NOW, new, ClientFrame::Ping);
    let rest = c.hold(0);
    c.append(&first);
    c.append(&rest);
    c.settle();
    let answers = answers_to_m1(&c, new, 0);
    assert_eq!(answers.len(), 1, "{:?}", c.frames(0, new));
    assert_eq!(answers[0]["type"], "error", "{answers:?}");
    assert_eq!(answers[0]["code"], "duplicate", "{answers:?}");
    // With the seq the log gave the first copy, which the replay shows.
    let replayed: Vec<Value> = c
        .frames(0, new)
        .iter()
        .filter(|f| f["id"] == "m1" && f["replay"] == true)
        .cloned()
        .collect();
    assert_eq!(replayed.len(), 1, "{:?}", c.frames(0, new));
    assert_eq!(answers[0]["seq"], replayed[0]["seq"], "{answers:?}");
    // And before the ping's answer, which came after it.
    let kinds = c.kinds(0, new);
    let dup = kinds.iter().position(|k| *k == "error").unwrap();
    let pong = kinds.iter().position(|k| *k == "pong").unwrap();
    assert!(dup < pong, "{kinds:?}");
}

/// A resend waits for its first copy; the client then leaves the room,
/// and the log brings the first copy before that leaving. The echo goes
/// to the connection, still in the room's fan-out: it answers the resend,
/// which is not also told `duplicate` (after the leaving's answer).
#[test]
fn a_resend_then_a_part_is_answered_once() {
    let (mut c, first, new, before) = resumed_with_m1_on_its_way();
    c.nodes[0].handle_frame(NOW, new, m1());
    c.nodes[0].handle_frame(NOW, new, ClientFrame::part("lobby"));
    let part = c.hold(0);
    c.append(&first);
    c.append(&part);
    c.settle();
    let answers = answers_to_m1(&c, new, before);
    assert_eq!(answers.len(), 1, "{:?}", &c.frames(0, new)[before..]);
    assert_eq!(answers[0]["type"], "msg", "{answers:?}");
    // Before the leaving's answer.
    let kinds = c.kinds(0, new)[before..].to_vec();
    assert_eq!(
        kinds,
        ["msg", "presence"],
        "{:?}",
        &c.frames(0, new)[before..]
    );
}
