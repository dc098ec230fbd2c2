//! The sans-IO client core against the server core, in memory: a join, rooms,
//! and connections cut at the worst moments, with nothing lost, shown twice
//! or reordered.

mod common;
use common::sent_and_refused;

use bytes::BytesMut;
use chatproto::{
    encode, Client, ClientEvent, ClientFrame, ClientId, ClientOutput, Decoded, ErrorCode,
    FrameDecoder, Limits, Now, Output, PresenceStatus, RoomInfo, Server, ServerConfig, ServerFrame,
    CLIENT_DEAD_AFTER_MS, CLIENT_PING_AFTER_MS, DEFAULT_ID_WINDOW,
};

const T0: u64 = 1_732_400_000_000;

/// One client of a [`Net`]: its core, its connection (if any), and the
/// bytes the server sent it that it has not read yet.
struct Peer {
    core: Client,
    conn: Option<ClientId>,
    inbox: BytesMut,
    decoder: FrameDecoder,
    /// Every event the core reported.
    events: Vec<ClientEvent>,
}

/// A server core and clients, wired through the codec.
struct Net {
    server: Server,
    peers: Vec<Peer>,
    mono: u64,
}

impl Net {
    fn new() -> Net {
        Net::with(ServerConfig::default())
    }

    fn with(config: ServerConfig) -> Net {
        Net {
            server: Server::new(config, [3; 32]),
            peers: Vec::new(),
            mono: 0,
        }
    }

    fn now(&self) -> Now {
        Now::new(self.mono, T0 + self.mono)
    }

    fn add(&mut self, nick: &str, rooms: &[&str]) -> usize {
        self.peers.push(Peer {
            core: Client::new(nick, rooms, format!("{nick}-")),
            conn: None,
            inbox: BytesMut::new(),
            decoder: FrameDecoder::default(),
            events: Vec::new(),
        });
        let i = self.peers.len() - 1;
        self.connect(i);
        i
    }

    fn connect(&mut self, i: usize) {
        let id = self.server.handle_connect(self.now());
        self.peers[i].conn = Some(id);
        self.peers[i].core.handle_connected(self.mono);
        self.pump();
    }

    /// Cut `i`'s connection: whatever the server had sent that `i` did not
    /// read is lost.
    fn cut(&mut self, i: usize) {
        if let Some(id) = self.peers[i].conn.take() {
            self.peers[i].inbox.clear();
            self.peers[i].core.handle_disconnected();
            self.server.handle_disconnect(self.now(), id);
        }
        self.drain_server(false);
    }

    /// Move frames both ways until nothing moves; each client reads all it got.
    fn pump(&mut self) {
        for _ in 0..100 {
            let mut moved = self.drain_clients();
            moved |= self.drain_server(false);
            for i in 0..self.peers.len() {
                moved |= self.read(i);
            }
            if !moved {
                return;
            }
        }
        panic!("the network did not settle");
    }

    /// Client outputs: frames go to the server, events are recorded.
    fn drain_clients(&mut self) -> bool {
        let mut moved = false;
        for i in 0..self.peers.len() {
            while let Some(out) = self.peers[i].core.poll() {
                moved = true;
                match out {
                    ClientOutput::Send(frame) => {
                        if let Some(id) = self.peers[i].conn {
                            let wire = encode(&frame, 65_536).unwrap();
                            let mut b = BytesMut::from(&wire[..]);
                            let f = FrameDecoder::default()
                                .decode::<ClientFrame>(&mut b)
                                .frame()
                                .expect("a valid whole frame");
                            self.server.handle_frame(self.now(), id, f);
                        }
                    }
                    ClientOutput::Event(e) => self.peers[i].events.push(e),
                    other => panic!("{other:?}"),
                }
            }
        }
        moved
    }

    /// Server outputs into the clients' inboxes (not read yet).
    fn drain_server(&mut self, _read: bool) -> bool {
        let mut moved = false;
        while let Some(out) = self.server.poll() {
            moved = true;
            let (bytes, to): (bytes::Bytes, Vec<ClientId>) = match out {
                Output::Send { to, frame, .. } => (encode(&frame, 65_536).unwrap(), vec![to]),
                Output::Deliver {
                    event, to, with_id, ..
                } => (
                    encode(&event.wire(with_id, false), 65_536).unwrap(),
                    to.to_vec(),
                ),
                _ => continue,
            };
            for p in &mut self.peers {
                if p.conn.is_some_and(|c| to.contains(&c)) {
                    p.inbox.extend_from_slice(&bytes);
                }
            }
        }
        moved
    }

    /// Client `i` reads what it received.
    fn read(&mut self, i: usize) -> bool {
        let mut moved = false;
        let p = &mut self.peers[i];
        loop {
            match p.decoder.decode::<ServerFrame>(&mut p.inbox) {
                Decoded::Frame(f) => p.core.handle_frame(self.mono, f),
                Decoded::Incomplete => break,
                other => panic!("the server sent a bad frame: {other:?}"),
            }
            moved = true;
        }
        moved
    }

    /// The messages client `i` showed, as (room, from, text), in order.
    fn shown(&self, i: usize) -> Vec<(String, String, String)> {
        self.peers[i]
            .events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Message {
                    room, from, text, ..
                } => Some((room.clone(), from.clone(), text.clone())),
                _ => None,
            })
            .collect()
    }
}

fn texts(shown: &[(String, String, String)], from: &str) -> Vec<String> {
    shown
        .iter()
        .filter(|(_, f, _)| f == from)
        .map(|(_, _, t)| t.clone())
        .collect()
}

#[test]
fn join_enter_and_talk_in_two_rooms() {
    let mut net = Net::new();
    let a = net.add("alice", &["lobby", "rust"]);
    let b = net.add("bob", &["rust"]);
    assert!(net.peers[a].core.is_joined() && net.peers[b].core.is_joined());
    assert_eq!(net.peers[a].core.roster("rust"), vec!["alice", "bob"]);
    assert_eq!(net.peers[a].core.roster_len("rust"), 2);
    assert_eq!(net.peers[b].core.roster_len("lobby"), 0, "not in it");
    let id = net.peers[a].core.send_msg("rust", vec![], "hello rust");
    assert_eq!(net.peers[a].core.unacknowledged(), 1);
    assert!(net.peers[a].core.is_unacknowledged(&id));
    let pending: Vec<_> = net.peers[a].core.pending().collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].id, pending[0].room, pending[0].text),
        (id.as_str(), "rust", "hello rust")
    );
    assert!(pending[0].to.is_empty());
    net.pump();
    assert_eq!(net.peers[a].core.pending().count(), 0);
    assert_eq!(net.peers[a].core.unacknowledged(), 0, "{id} acknowledged");
    assert!(!net.peers[a].core.is_unacknowledged(&id));
    assert_eq!(texts(&net.shown(b), "alice"), vec!["hello rust"]);
    let mine = net.peers[a].events.iter().any(
        |e| matches!(e, ClientEvent::Message { mine: true, text, .. } if text == "hello rust"),
    );
    assert!(mine, "alice's own line is marked as hers");
    // A private message in the lobby bob is not in: refused, and given up.
    net.peers[a]
        .core
        .send_msg("lobby", vec!["bob".into()], "psst");
    net.pump();
    assert_eq!(net.peers[a].core.unacknowledged(), 0);
    assert!(net.peers[a]
        .events
        .iter()
        .any(|e| matches!(e, ClientEvent::Error { id: Some(_), .. })));
    assert!(texts(&net.shown(b), "alice").len() == 1);
}

/// The connection drops after alice's messages reached the server but
/// before their echoes reached her; meanwhile bob keeps talking. After
/// the reconnect each message shows exactly once, in the room's order.
#[test]
fn a_cut_mid_stream_resumes_with_nothing_lost_or_shown_twice() {
    let mut net = Net::new();
    let a = net.add("alice", &["lobby"]);
    let b = net.add("bob", &["lobby"]);
    for i in 0..3 {
        net.peers[a].core.send_msg("lobby", vec![], format!("a{i}"));
    }
    // The frames reach the server, the server answers, alice reads nothing.
    net.drain_clients();
    net.drain_server(false);
    net.read(b);
    net.cut(a);
    assert_eq!(net.peers[a].core.unacknowledged(), 3, "no echo arrived");
    for i in 0..2 {
        net.peers[b].core.send_msg("lobby", vec![], format!("b{i}"));
    }
    // Two more from alice while she is away: sent on reconnect.
    net.peers[a].core.send_msg("lobby", vec![], "a3");
    net.pump();
    net.connect(a);
    net.pump();
    assert_eq!(net.peers[a].core.unacknowledged(), 0);
    let want_a: Vec<String> = (0..4).map(|i| format!("a{i}")).collect();
    assert_eq!(
        texts(&net.shown(a), "alice"),
        want_a,
        "alice sees hers once"
    );
    assert_eq!(texts(&net.shown(b), "alice"), want_a, "bob sees them once");
    assert_eq!(texts(&net.shown(a), "bob"), vec!["b0", "b1"]);
    // Both show the room in the same order.
    let order = |i: usize| -> Vec<String> {
        net.shown(i)
            .into_iter()
            .map(|(_, f, t)| format!("{f}:{t}"))
            .collect()
    };
    assert_eq!(order(a), order(b));
    let joined_again = net.peers[a].events.iter().any(|e| {
        matches!(
            e,
            ClientEvent::Joined {
                resumed: true,
                reconnect: true,
                ..
            }
        )
    });
    assert!(joined_again, "the session was resumed");
    let gap = net.peers[a]
        .events
        .iter()
        .any(|e| matches!(e, ClientEvent::Entered { gap: true, .. }));
    assert!(!gap, "everything was replayed");
    let errors: Vec<&ClientEvent> = net.peers[a]
        .events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Error { .. }))
        .collect();
    assert!(
        errors.is_empty(),
        "a resend is not an error to show: {errors:?}"
    );
}

/// A server that replays what the client has already seen (here: the client
/// enters again with an older `since` than it has) shows nothing twice.
#[test]
fn what_was_seen_is_not_shown_again() {
    let mut net = Net::new();
    let a = net.add("alice", &["lobby"]);
    let b = net.add("bob", &["lobby"]);
    net.peers[b].core.send_msg("lobby", vec![], "once");
    net.pump();
    // A fresh enter without since replays the latest messages again.
    let id = net.peers[a].conn.unwrap();
    net.server
        .handle_frame(net.now(), id, ClientFrame::part("lobby"));
    net.server
        .handle_frame(net.now(), id, ClientFrame::enter("lobby", None));
    net.pump();
    assert_eq!(texts(&net.shown(a), "bob"), vec!["once"]);
}

/// Cut twice in a row, with messages in flight each time.
#[test]
fn two_cuts_in_a_row() {
    let mut net = Net::new();
    let a = net.add("alice", &["lobby", "rust"]);
    let b = net.add("bob", &["lobby", "rust"]);
    let mut want = Vec::new();
    for round in 0..2 {
        for room in ["lobby", "rust"] {
            let t = format!("{room}-{round}");
            net.peers[a].core.send_msg(room, vec![], t.clone());
            want.push(t);
        }
        net.drain_clients();
        net.drain_server(false);
        net.cut(a);
        net.peers[b]
            .core
            .send_msg("rust", vec![], format!("b{round}"));
        net.pump();
        net.connect(a);
        net.pump();
    }
    let mut got = texts(&net.shown(a), "alice");
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(texts(&net.shown(a), "bob"), vec!["b0", "b1"]);
    assert_eq!(texts(&net.shown(b), "alice").len(), 4);
}

/// Parting a room while the server's answer to entering it is on its way
/// leaves it parted: the late `entered` does not bring the room back, so
/// it is not shown as entered, nor entered again after a reconnect.
#[test]
fn a_room_parted_while_entering_stays_parted() {
    let mut net = Net::new();
    let a = net.add("alice", &["lobby"]);
    net.peers[a].core.enter("rust");
    // The enter reaches the server; its answer waits, unread.
    net.drain_clients();
    net.drain_server(false);
    net.peers[a].core.part("rust");
    net.pump();
    let rooms =
        |net: &Net| -> Vec<String> { net.peers[a].core.rooms().map(str::to_owned).collect() };
    assert_eq!(rooms(&net), ["lobby"]);
    let shown = |net: &Net| -> usize {
        net.peers[a]
            .events
            .iter()
            .filter(|e| matches!(e, ClientEvent::Entered { room, .. } if room == "rust"))
            .count()
    };
    assert_eq!(shown(&net), 0, "{:?}", net.peers[a].events);
    net.cut(a);
    net.connect(a);
    net.pump();
    assert_eq!(rooms(&net), ["lobby"]);
    assert_eq!(shown(&net), 0, "{:?}", net.peers[a].events);
}

/// The echo of a message sent just before parting its room still comes
/// out, once: the user has not seen it yet. Others' later messages in
/// that room do not.
#[test]
fn the_echo_of_a_message_sent_before_a_part_is_shown() {
    let mut net = Net::new();
    let a = net.add("alice", &["lobby", "rust"]);
    let b = net.add("bob", &["rust"]);
    net.peers[a].core.send_msg("rust", vec![], "last words");
    net.peers[a].core.part("rust");
    net.pump();
    net.peers[b].core.send_msg("rust", vec![], "after she left");
    net.pump();
    assert_eq!(
        net.shown(a)
            .iter()
            .filter(|(room, _, _)| room == "rust")
            .map(|(_, from, text)| format!("{from}: {text}"))
            .collect::<Vec<_>>(),
        ["alice: last words"]
    );
    assert_eq!(net.peers[a].core.unacknowledged(), 0);
}

/// A request made while offline is not queued in front of the next
/// connection's `join` (the server would answer `not_joined`, which the
/// core would take for a refused join): only joined clients ask.
#[test]
fn requests_while_offline_do_not_spoil_the_next_join() {
    let mut net = Net::new();
    let a = net.add("alice", &["lobby"]);
    net.cut(a);
    net.peers[a].core.history("lobby", None, Some(10));
    net.peers[a].core.list_rooms();
    net.connect(a);
    net.pump();
    assert!(net.peers[a].core.is_joined(), "{:?}", net.peers[a].events);
    let refused = net.peers[a]
        .events
        .iter()
        .any(|e| matches!(e, ClientEvent::Refused { .. }));
    assert!(!refused, "{:?}", net.peers[a].events);
}

/// A room list cut to fit a frame says how many rooms it leaves out; a
/// whole one (or an older server's) leaves out none.
#[test]
fn a_cut_room_list_says_how_many_are_not_listed() {
    let mut c = Client::new("alice", ["lobby"], "a-");
    c.handle_connected(0);
    c.handle_frame(0, fresh_welcome());
    c.handle_frame(0, lobby_entered());
    drain(&mut c);
    let listed = vec![RoomInfo::new("alpha", 2), RoomInfo::new("lobby", 1)];
    c.handle_frame(0, ServerFrame::rooms_of(listed.clone(), 10_016));
    c.handle_frame(0, ServerFrame::rooms(listed));
    let lists: Vec<(usize, u64)> = drain(&mut c)
        .1
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::Rooms {
                rooms, unlisted, ..
            } => Some((rooms.len(), unlisted)),
            _ => None,
        })
        .collect();
    assert_eq!(lists, [(2, 10_014), (2, 0)]);
}

/// A last history page says where the room's kept history starts: the
/// page's own `oldest`, or from a server that does not say it, the
/// room's `entered`; a page with more says nothing of it.
#[test]
fn a_last_history_page_says_where_the_kept_history_starts() {
    let mut c = Client::new("alice", ["lobby"], "a-");
    c.handle_connected(0);
    c.handle_frame(0, fresh_welcome());
    // Retention had deleted up to seq 40 when alice entered.
    c.handle_frame(
        0,
        ServerFrame::entered("lobby", "e1", 90, 41, vec!["alice".into()], false),
    );
    drain(&mut c);
    c.handle_frame(0, ServerFrame::history_from("lobby", vec![], true, 60));
    // An older server: no `oldest`, the `entered`'s stands.
    c.handle_frame(0, ServerFrame::history("lobby", vec![], false));
    // Retention ran again since.
    c.handle_frame(0, ServerFrame::history_to("lobby", vec![], 75));
    c.handle_frame(0, ServerFrame::history("lobby", vec![], false));
    let said: Vec<(bool, Option<u64>)> = drain(&mut c)
        .1
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::History { more, oldest, .. } => Some((more, oldest)),
            _ => None,
        })
        .collect();
    assert_eq!(
        said,
        [
            (true, None),
            (false, Some(41)),
            (false, Some(75)),
            (false, Some(75))
        ]
    );
}

/// Away longer than the resume window: the session is fresh and the
/// server remembers none of alice's ids. A message it had stored before
/// the connection dropped is recognised in the replay, not sent twice.
#[test]
fn a_fresh_session_does_not_resend_what_the_replay_shows() {
    let mut cfg = ServerConfig::default();
    cfg.resume_window_ms = 1_000;
    let mut net = Net::new();
    net.server = Server::new(cfg, [5; 32]);
    let a = net.add("alice", &["lobby"]);
    let b = net.add("bob", &["lobby"]);
    net.peers[a]
        .core
        .send_msg("lobby", vec![], "stored, echo lost");
    net.drain_clients();
    net.drain_server(false);
    net.read(b);
    net.cut(a);
    net.peers[a]
        .core
        .send_msg("lobby", vec![], "typed while away");
    net.mono += 5_000;
    let now = net.now();
    net.server.handle_timeout(now); // the session is forgotten
    net.pump();
    net.connect(a);
    net.pump();
    let fresh = net.peers[a].events.iter().any(|e| {
        matches!(
            e,
            ClientEvent::Joined {
                resumed: false,
                reconnect: true,
                ..
            }
        )
    });
    assert!(fresh, "a fresh session");
    assert_eq!(net.peers[a].core.unacknowledged(), 0);
    assert_eq!(
        texts(&net.shown(b), "alice"),
        vec!["stored, echo lost", "typed while away"],
        "bob sees each once"
    );
    assert_eq!(
        texts(&net.shown(a), "alice"),
        vec!["stored, echo lost", "typed while away"]
    );
}

/// Away past the resume window with a message to everyone written and
/// its echo lost (`stored`: the server had it) or the frame lost on the
/// way (not stored); the fresh session's connection drops before the
/// room's replay arrives, and the next one resumes that fresh session. It
/// does not know the message's id, so the message is still looked for in
/// the replay first: bob gets it once, stored or not, and alice shows it
/// once, not unconfirmed.
#[test]
fn a_fresh_session_resumed_before_its_replay_still_looks_for_what_was_written() {
    for stored in [true, false] {
        let mut cfg = ServerConfig::default();
        cfg.resume_window_ms = 1_000;
        let mut net = Net::with(cfg);
        let a = net.add("alice", &["lobby"]);
        let b = net.add("bob", &["lobby"]);
        net.peers[a].core.send_msg("lobby", vec![], "m1");
        if stored {
            net.drain_clients();
        } else {
            // Written to the connection, lost with it.
            while net.peers[a].core.poll().is_some() {}
        }
        net.drain_server(false);
        net.read(b);
        net.cut(a);
        net.mono += 5_000;
        let now = net.now();
        net.server.handle_timeout(now); // the session is forgotten
        net.pump();
        // A fresh session: the join and its welcome pass, the `enter` goes
        // and the connection drops before its answer is read.
        let id = net.server.handle_connect(net.now());
        net.peers[a].conn = Some(id);
        net.peers[a].core.handle_connected(net.mono);
        net.drain_clients();
        net.drain_server(false);
        net.read(a);
        net.drain_clients();
        net.drain_server(false);
        let fresh = net.peers[a].events.iter().any(|e| {
            matches!(
                e,
                ClientEvent::Joined {
                    resumed: false,
                    reconnect: true,
                    ..
                }
            )
        });
        assert!(fresh, "a fresh session");
        net.cut(a);
        // At once: the fresh session is resumed.
        net.mono += 10;
        net.connect(a);
        net.pump();
        let resumed = net.peers[a].events.iter().any(|e| {
            matches!(
                e,
                ClientEvent::Joined {
                    resumed: true,
                    reconnect: true,
                    ..
                }
            )
        });
        assert!(resumed, "the fresh session resumed");
        assert_eq!(texts(&net.shown(b), "alice"), ["m1"], "stored {stored}");
        assert_eq!(texts(&net.shown(a), "alice"), ["m1"], "stored {stored}");
        assert_eq!(net.peers[a].core.unacknowledged(), 0);
        let unconfirmed = net.peers[a]
            .events
            .iter()
            .any(|e| matches!(e, ClientEvent::Unconfirmed { .. }));
        assert!(!unconfirmed, "stored {stored}");
    }
}

/// A message typed before the first connection was never sent, so no
/// replay holds it: the same text said earlier under the same nickname
/// (another run of the client) is not taken for it, and it goes.
#[test]
fn an_older_message_of_the_same_text_is_not_taken_for_one_never_sent() {
    let mut net = Net::new();
    let b = net.add("bob", &["lobby"]);
    let a = net.add("alice", &["lobby"]);
    net.peers[a].core.send_msg("lobby", vec![], "hi");
    net.pump();
    net.cut(a);
    // Another run of the client, as alice: a fresh session, whose replay
    // of the lobby holds the first "hi".
    net.peers[a].core = Client::new("alice", ["lobby"], "alice2-");
    net.peers[a].core.send_msg("lobby", vec![], "hi");
    net.connect(a);
    net.pump();
    assert_eq!(net.peers[a].core.unacknowledged(), 0);
    assert_eq!(texts(&net.shown(b), "alice"), ["hi", "hi"], "bob sees both");
}

/// After a fresh session, a message of ours in the replay is taken for a
/// waiting one only if it came after what was seen when that one was
/// sent, with the same text to the same people: otherwise it is another.
/// Not found in a replay that holds everything since, it was not stored:
/// sent again.
#[test]
fn a_fresh_replay_settles_only_the_same_message_sent_after_what_was_seen() {
    let mine = |seq: u64, to: &[&str], text: &str| {
        ServerFrame::msg(
            Some("lobby".into()),
            seq,
            "alice",
            to.iter().map(|t| t.to_string()).collect(),
            text,
            T0,
            None,
        )
        .into_replay()
    };
    let mut c = alice_in_lobby();
    c.handle_frame(0, mine(2, &[], "hi"));
    sent_texts(&mut c);
    // Sent after seq 2: "hi" to everyone, and "hi" again.
    c.send_msg("lobby", vec![], "hi");
    c.send_msg("lobby", vec![], "hi");
    assert_eq!(sent_texts(&mut c), ["hi", "hi"]);
    c.handle_disconnected();
    c.handle_connected(1);
    c.handle_frame(1, fresh_welcome());
    // The room's latest seq is that of the last event its replay brings,
    // all of it since seq 2 (`recovered`).
    let entered = ServerFrame::entered("lobby", "e1", 4, 1, vec!["alice".into()], true);
    c.handle_frame(1, entered);
    // The replay: the old "hi" (seq 2, seen before) is neither; one to
    // carol is not one to everyone; the one at seq 4 is the first.
    c.handle_frame(1, mine(2, &[], "hi"));
    c.handle_frame(1, mine(3, &["carol"], "hi"));
    assert_eq!(c.unacknowledged(), 2);
    c.handle_frame(1, mine(4, &[], "hi"));
    assert_eq!(c.unacknowledged(), 1);
    c.handle_frame(1, own_presence(5));
    // The second was not in the replay, which holds all since: sent again.
    assert_eq!(sent_texts(&mut c), ["hi"]);
}

/// What `c` put out, as [`outputs`] says it, and `unconfirmed ID TEXT`
/// for each message given up with its fate unknown.
fn outputs_unconfirmed(c: &mut Client) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(o) = c.poll() {
        out.push(match o {
            ClientOutput::Send(ClientFrame::Msg { text, .. }) => format!("msg {text}"),
            ClientOutput::Event(ClientEvent::Unconfirmed { id, text, .. }) => {
                format!("unconfirmed {id} {text}")
            }
            ClientOutput::Event(ClientEvent::Message {
                room, from, text, ..
            }) => format!("{room}: {from}: {text}"),
            _ => continue,
        });
    }
    out
}

/// Away longer than the resume window, with a private and a group message
/// written and not answered: the fresh session cannot see them (only the
/// session that sent them does, PROTOCOL.md 5.6), so nothing tells
/// whether they arrived. Each is given up, told unconfirmed with its
/// text, and not sent again: bob, who had them, does not get them twice.
/// One typed while offline never went: it is sent.
#[test]
fn a_fresh_session_does_not_send_again_what_it_cannot_see() {
    let mut cfg = ServerConfig::default();
    cfg.resume_window_ms = 1_000;
    let mut net = Net::with(cfg);
    let a = net.add("alice", &["lobby"]);
    let b = net.add("bob", &["lobby"]);
    let secret = net.peers[a]
        .core
        .send_msg("lobby", vec!["bob".into()], "secret");
    let group = net.peers[a]
        .core
        .send_msg("lobby", vec!["bob".into(), "alice".into()], "group");
    net.drain_clients();
    net.drain_server(false);
    net.read(b);
    net.cut(a);
    net.peers[a]
        .core
        .send_msg("lobby", vec!["bob".into()], "typed offline");
    net.mono += 5_000;
    let now = net.now();
    net.server.handle_timeout(now); // the session is forgotten
    net.pump();
    net.connect(a);
    net.pump();
    assert_eq!(net.peers[a].core.unacknowledged(), 0);
    assert_eq!(
        texts(&net.shown(b), "alice"),
        ["secret", "group", "typed offline"],
        "bob sees each once"
    );
    let unconfirmed: Vec<(String, Vec<String>, String)> = net.peers[a]
        .events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Unconfirmed { id, to, text, .. } => {
                Some((id.clone(), to.clone(), text.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        unconfirmed,
        [
            (secret, vec!["bob".to_owned()], "secret".to_owned()),
            (
                group,
                vec!["bob".to_owned(), "alice".to_owned()],
                "group".to_owned()
            )
        ]
    );
}

/// A message to everyone written before a fresh session, not in the
/// room's replay: sent again only when the replay holds everything since
/// it was sent. After a gap (the server replays only so many), or in a
/// history begun anew, the server may have had it: given up, unconfirmed,
/// not sent. One whose frame never left the core (still queued when the
/// connection ended) cannot have arrived: sent.
#[test]
fn a_fresh_replay_with_a_gap_gives_up_what_it_does_not_show() {
    // (recovered, epoch, polled before the drop) and what follows the
    // replay.
    let cases: [(bool, &str, bool, &[&str]); 4] = [
        (true, "e1", true, &["msg lost"]),
        (false, "e1", true, &["unconfirmed a-1 lost"]),
        (true, "e2", true, &["unconfirmed a-1 lost"]),
        (false, "e2", false, &["msg lost"]),
    ];
    for (recovered, epoch, polled, after) in cases {
        let mut c = alice_in_lobby();
        outputs(&mut c);
        c.send_msg("lobby", vec![], "lost");
        if polled {
            assert_eq!(outputs_unconfirmed(&mut c), ["msg lost"]);
        }
        c.handle_disconnected();
        c.handle_connected(1);
        c.handle_frame(1, fresh_welcome());
        let entered = ServerFrame::entered("lobby", epoch, 9, 1, vec!["alice".into()], recovered);
        c.handle_frame(1, entered);
        let mut told = outputs_unconfirmed(&mut c);
        if polled {
            assert!(told.is_empty(), "held for the replay: {told:?}");
        }
        c.handle_frame(1, own_presence(10));
        told.extend(outputs_unconfirmed(&mut c));
        assert_eq!(
            told, after,
            "recovered {recovered}, epoch {epoch}, polled {polled}"
        );
        let gone = after[0].starts_with("unconfirmed");
        assert_eq!(c.unacknowledged(), usize::from(!gone));
        assert_eq!(c.is_unacknowledged("a-1"), !gone);
    }
}

/// A message to everyone found in a fresh session's replay after a gap
/// is known delivered (its copy is shown), not given up.
#[test]
fn a_message_found_in_a_replay_with_a_gap_is_delivered() {
    let mut c = alice_in_lobby();
    c.send_msg("lobby", vec![], "there");
    outputs(&mut c);
    c.handle_disconnected();
    c.handle_connected(1);
    c.handle_frame(1, fresh_welcome());
    let entered = ServerFrame::entered("lobby", "e1", 9, 5, vec!["alice".into()], false);
    c.handle_frame(1, entered);
    let copy = ServerFrame::msg(Some("lobby".into()), 8, "alice", vec![], "there", T0, None);
    c.handle_frame(1, copy.into_replay());
    c.handle_frame(1, own_presence(10));
    assert_eq!(outputs_unconfirmed(&mut c), ["lobby: alice: there"]);
    assert_eq!(c.unacknowledged(), 0);
}

/// A room parted while a fresh session's replay holds our message for it:
/// the replay's copy of that message, recognised by its content, is still
/// told (the user has not seen it), as its echo would be; nothing else of
/// the room is.
#[test]
fn a_message_recognised_in_the_replay_of_a_room_being_parted_is_told() {
    let mut c = alice_in_lobby();
    c.send_msg("lobby", vec![], "older");
    while c.poll().is_some() {}
    c.handle_disconnected();
    c.handle_connected(1);
    c.handle_frame(1, fresh_welcome());
    c.part("lobby");
    c.handle_frame(1, lobby_entered());
    while c.poll().is_some() {}
    let replayed = |seq: u64, from: &str, text: &str| {
        ServerFrame::msg(Some("lobby".into()), seq, from, vec![], text, T0, None).into_replay()
    };
    c.handle_frame(1, replayed(2, "bob", "not told"));
    c.handle_frame(1, replayed(3, "alice", "older"));
    let mut told = Vec::new();
    while let Some(out) = c.poll() {
        if let ClientOutput::Event(ClientEvent::Message { text, .. }) = out {
            told.push(text);
        }
    }
    assert_eq!(told, ["older"]);
    assert_eq!(c.unacknowledged(), 0);
}

/// An error that answers a message (it carries the message's id) and
/// names a room being entered is not the `enter`'s answer: the room's own
/// refusal after it still removes the room, which is then not asked for
/// again at every reconnect.
#[test]
fn an_error_for_a_message_is_not_the_answer_to_entering_its_room() {
    let mut c = Client::new("alice", ["lobby"], "a-");
    c.handle_connected(0);
    c.handle_frame(0, fresh_welcome());
    c.handle_frame(0, lobby_entered());
    c.enter("rust");
    let id = c.send_msg("rust", vec![], "early");
    while c.poll().is_some() {}
    c.handle_frame(
        0,
        ServerFrame::error_v2(
            ErrorCode::NotInRoom,
            "you are not in #rust",
            Some(id),
            Some("rust".into()),
            None,
        ),
    );
    assert_eq!(c.rooms().collect::<Vec<_>>(), ["lobby", "rust"]);
    c.handle_frame(
        0,
        ServerFrame::error_v2(
            ErrorCode::TooManyRooms,
            "you are in too many rooms",
            None,
            Some("rust".into()),
            None,
        ),
    );
    assert_eq!(c.rooms().collect::<Vec<_>>(), ["lobby"]);
}

/// After a join the rooms are entered in the order they were asked for:
/// those given to `Client::new` as given (the first is the one a user
/// sees as current), then those entered later; not by name.
#[test]
fn rooms_are_entered_in_the_order_they_were_asked_for() {
    let mut c = Client::new("alice", ["rust", "lobby", "go", "rust"], "a-");
    c.enter("ada");
    c.handle_connected(0);
    let welcome = ServerFrame::welcome("alice", 0, vec![], Some("t".into()), Some(false), None);
    c.handle_frame(0, welcome);
    let mut entered = Vec::new();
    while let Some(out) = c.poll() {
        if let ClientOutput::Send(ClientFrame::Enter { room, .. }) = out {
            entered.push(room);
        }
    }
    assert_eq!(entered, ["rust", "lobby", "go", "ada"]);
    // Listing them is still by name.
    assert_eq!(
        c.rooms().collect::<Vec<_>>(),
        ["ada", "go", "lobby", "rust"]
    );
}

/// alice's `welcome` (session token `t`) with these `limits`.
fn welcome_with(resumed: bool, limits: Limits) -> ServerFrame {
    ServerFrame::welcome(
        "alice",
        0,
        vec![],
        Some("t".into()),
        Some(resumed),
        Some(limits),
    )
}

/// alice's `welcome`, saying a rate limit of `rate` frames a second after
/// `burst`.
fn rated_welcome(resumed: bool, rate: u64, burst: u64) -> ServerFrame {
    welcome_with(
        resumed,
        Limits::new(65_536, 64, 500, 200).with_rate(rate, burst),
    )
}

/// alice's `welcome` of a fresh session (not resumed).
fn fresh_welcome() -> ServerFrame {
    ServerFrame::welcome("alice", 0, vec![], Some("t".into()), Some(false), None)
}

/// The lobby entered, with alice alone in it.
fn lobby_entered() -> ServerFrame {
    ServerFrame::entered("lobby", "e1", 0, 1, vec!["alice".into()], false)
}

/// alice's own entering presence in the lobby, at `seq`: its replay ends.
fn own_presence(seq: u64) -> ServerFrame {
    ServerFrame::presence(
        Some("lobby".into()),
        seq,
        "alice",
        PresenceStatus::Online,
        T0,
    )
}

/// alice, joined on a first connection (a fresh session) and in the
/// lobby, its replay over (her own entering presence, seq 1); what that
/// put out is not drained.
fn alice_in_lobby() -> Client {
    let mut c = Client::new("alice", ["lobby"], "a-");
    c.handle_connected(0);
    c.handle_frame(0, fresh_welcome());
    c.handle_frame(0, lobby_entered());
    c.handle_frame(0, own_presence(1));
    c
}

/// The echo, at `seq`, of "pending" (a-1) in rust: see [`parting_rust`].
fn pending_echo(seq: u64) -> ServerFrame {
    ServerFrame::msg(
        Some("rust".into()),
        seq,
        "alice",
        vec![],
        "pending",
        T0,
        Some("a-1".into()),
    )
}

/// alice (as [`alice_in_lobby`]) entered rust, sent "pending" there
/// (id a-1, not answered yet) and parted it: its `part` waits.
fn parting_rust() -> Client {
    let mut c = alice_in_lobby();
    c.enter("rust");
    c.handle_frame(
        0,
        ServerFrame::entered("rust", "e1", 0, 1, vec!["alice".into()], false),
    );
    c.send_msg("rust", vec![], "pending");
    c.part("rust");
    c
}

/// After a fresh-session rejoin, what was unacknowledged waits for the
/// room's replay (it may be in it). A line typed in between waits too,
/// behind it: nothing goes out before our own entering presence, and
/// then the older message first.
#[test]
fn a_message_typed_during_a_fresh_replay_waits_behind_the_held_ones() {
    let msgs = |c: &mut Client| -> Vec<String> {
        let mut texts = Vec::new();
        while let Some(out) = c.poll() {
            if let ClientOutput::Send(ClientFrame::Msg { text, .. }) = out {
                texts.push(text);
            }
        }
        texts
    };
    let mut c = alice_in_lobby();
    msgs(&mut c);
    c.send_msg("lobby", vec![], "older");
    assert_eq!(msgs(&mut c), ["older"]);
    c.handle_disconnected();

    c.handle_connected(1);
    c.handle_frame(1, fresh_welcome());
    c.handle_frame(1, lobby_entered());
    assert!(msgs(&mut c).is_empty(), "held for the replay");
    c.send_msg("lobby", vec![], "newer");
    assert!(msgs(&mut c).is_empty(), "typed during the replay: held too");
    c.handle_frame(1, own_presence(2));
    assert_eq!(msgs(&mut c), ["older", "newer"]);
    assert_eq!(c.unacknowledged(), 2);
}

/// Parting a room while a fresh session's replay holds our messages for it
/// sends them once the replay ends, then, once they are answered, the
/// `part`: nothing is lost, and nothing waits for the next reconnect.
/// Entering it again before that keeps it, with no `part` at all, and as
/// entered (the server's answer may have come while it was parted: it is
/// told then).
#[test]
fn parting_during_a_fresh_replay_sends_the_held_messages_then_parts() {
    let frames = |c: &mut Client| -> Vec<String> {
        let mut out = Vec::new();
        while let Some(o) = c.poll() {
            match o {
                ClientOutput::Send(ClientFrame::Msg { text, .. }) => {
                    out.push(format!("msg {text}"))
                }
                ClientOutput::Send(ClientFrame::Part { room, .. }) => {
                    out.push(format!("part {room}"))
                }
                ClientOutput::Event(ClientEvent::Entered { room, online, .. }) => {
                    out.push(format!("entered {room} {}", online.join(",")))
                }
                _ => {}
            }
        }
        out
    };
    for enter_again in [false, true] {
        let mut c = alice_in_lobby();
        c.send_msg("lobby", vec![], "older");
        assert_eq!(frames(&mut c), ["entered lobby alice", "msg older"]);
        c.handle_disconnected();
        c.handle_connected(1);
        c.handle_frame(1, fresh_welcome());
        frames(&mut c);
        c.part("lobby");
        // The answer to the enter comes after the part.
        c.handle_frame(1, lobby_entered());
        assert!(
            frames(&mut c).is_empty(),
            "held for the replay: no part yet, nothing told"
        );
        assert_eq!(c.rooms().count(), 0, "parted as far as the user sees");
        if enter_again {
            c.enter("lobby");
            assert_eq!(c.rooms().collect::<Vec<_>>(), ["lobby"]);
            assert_eq!(frames(&mut c), ["entered lobby alice"]);
            assert_eq!(c.roster("lobby"), ["alice"]);
        }
        c.handle_frame(1, own_presence(2));
        assert_eq!(frames(&mut c), ["msg older"]);
        assert_eq!(c.unacknowledged(), 1);
        // Its echo answers it: only then does the `part` go.
        c.handle_frame(1, echo(3, "older", "a-1"));
        let after: Vec<String> = frames(&mut c);
        assert_eq!(c.unacknowledged(), 0);
        if enter_again {
            assert!(after.is_empty(), "{after:?}");
        } else {
            assert_eq!(after, ["part lobby"]);
        }
    }
}

/// alice's message `text` with `id` in the lobby at `seq`, live.
fn echo(seq: u64, text: &str, id: &str) -> ServerFrame {
    ServerFrame::msg(
        Some("lobby".into()),
        seq,
        "alice",
        vec![],
        text,
        T0,
        Some(id.into()),
    )
}

/// What `c` put out: `msg TEXT`, `part ROOM`, `enter ROOM`, and the
/// events `entered ROOM gap`, `ROOM: FROM: TEXT`, `ROOM: NICK online`
/// (or offline) and `error CODE ID`.
fn outputs(c: &mut Client) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(o) = c.poll() {
        out.push(match o {
            ClientOutput::Send(ClientFrame::Msg { text, .. }) => format!("msg {text}"),
            ClientOutput::Send(ClientFrame::Part { room, .. }) => format!("part {room}"),
            ClientOutput::Send(ClientFrame::Enter { room, .. }) => format!("enter {room}"),
            ClientOutput::Event(ClientEvent::Entered { room, gap, .. }) => {
                format!("entered {room} {gap}")
            }
            ClientOutput::Event(ClientEvent::Message {
                room, from, text, ..
            }) => format!("{room}: {from}: {text}"),
            ClientOutput::Event(ClientEvent::Presence {
                room, nick, online, ..
            }) => {
                format!(
                    "{room}: {nick} {}",
                    if online { "online" } else { "offline" }
                )
            }
            ClientOutput::Event(ClientEvent::Error { code, id, .. }) => {
                format!("error {} {}", code.as_str(), id.unwrap_or_default())
            }
            _ => continue,
        });
    }
    out
}

/// A message sent and its room parted at once, both delivered, and the
/// connection gone before the echo: the resumed session resends it into
/// the room it left, which the server answers `not_in_room`, a delivered
/// message told as refused. The `part` waits for the echo instead, and
/// the next connection enters the room again for the resend, which the
/// server knows (`duplicate`): nothing is refused, nothing arrives twice,
/// and the room is parted after.
#[test]
fn a_message_sent_just_before_a_part_is_not_refused_after_a_reconnect() {
    let mut net = Net::new();
    let a = net.add("alice", &["lobby", "rust"]);
    let b = net.add("bob", &["rust"]);
    net.peers[a].core.send_msg("rust", vec![], "last words");
    net.peers[a].core.part("rust");
    net.drain_clients();
    net.drain_server(false);
    net.read(b);
    net.cut(a);
    net.connect(a);
    net.pump();
    assert_eq!(texts(&net.shown(b), "alice"), ["last words"]);
    assert_eq!(net.peers[a].core.unacknowledged(), 0);
    let refused: Vec<_> = net.peers[a]
        .events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Error { .. }))
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(net.peers[a].core.rooms().collect::<Vec<_>>(), ["lobby"]);
    assert_eq!(net.peers[b].core.roster("rust"), ["bob"], "parted at last");
}

/// A server that lets a session be in two rooms at most.
fn two_rooms_each() -> Net {
    let mut config = ServerConfig::default();
    config.max_rooms_per_client = 2;
    Net::with(config)
}

/// The errors client `i` was told.
fn errors(net: &Net, i: usize) -> Vec<&ClientEvent> {
    net.peers[i]
        .events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Error { .. }))
        .collect()
}

/// At the server's rooms per client, a room parted while its message
/// waits for the echo still counts until its `part` goes: a room entered
/// meanwhile was refused `too_many_rooms`, and a message sent to it
/// `not_in_room`. Its `enter` waits for the `part` instead.
#[test]
fn a_room_entered_while_another_is_parted_waits_for_the_part_at_the_cap() {
    let mut net = two_rooms_each();
    let a = net.add("alice", &["lobby", "rust"]);
    let b = net.add("bob", &["rust"]);
    net.peers[a].core.send_msg("rust", vec![], "last words");
    net.peers[a].core.part("rust");
    net.peers[a].core.enter("ops");
    net.peers[a].core.send_msg("ops", vec![], "first words");
    net.pump();
    assert!(errors(&net, a).is_empty(), "{:?}", errors(&net, a));
    assert_eq!(net.peers[a].core.unacknowledged(), 0);
    assert_eq!(
        net.peers[a].core.rooms().collect::<Vec<_>>(),
        ["lobby", "ops"]
    );
    assert_eq!(net.peers[a].core.roster("ops"), ["alice"]);
    assert_eq!(texts(&net.shown(b), "alice"), ["last words"]);
    assert_eq!(net.peers[b].core.roster("rust"), ["bob"], "parted");
    let ops: Vec<_> = net
        .shown(a)
        .into_iter()
        .filter(|(r, _, _)| r == "ops")
        .collect();
    assert_eq!(texts(&ops, "alice"), ["first words"]);
}

/// The same with the connection lost before the echo: the next one
/// enters the rooms the last was in, the room being parted among them,
/// and the new room only once that `part` went.
#[test]
fn a_room_entered_while_another_is_parted_waits_for_the_part_after_a_reconnect() {
    let mut net = two_rooms_each();
    let a = net.add("alice", &["lobby", "rust"]);
    let b = net.add("bob", &["rust"]);
    net.peers[a].core.send_msg("rust", vec![], "last words");
    net.peers[a].core.part("rust");
    net.peers[a].core.enter("ops");
    net.peers[a].core.send_msg("ops", vec![], "first words");
    net.drain_clients();
    net.drain_server(false);
    net.read(b);
    net.cut(a);
    net.connect(a);
    net.pump();
    assert!(errors(&net, a).is_empty(), "{:?}", errors(&net, a));
    assert_eq!(net.peers[a].core.unacknowledged(), 0);
    assert_eq!(
        net.peers[a].core.rooms().collect::<Vec<_>>(),
        ["lobby", "ops"]
    );
    assert_eq!(net.peers[a].core.roster("ops"), ["alice"]);
    assert_eq!(texts(&net.shown(b), "alice"), ["last words"], "once");
    assert_eq!(net.peers[b].core.roster("rust"), ["bob"], "parted");
    let ops: Vec<_> = net
        .shown(a)
        .into_iter()
        .filter(|(r, _, _)| r == "ops")
        .collect();
    assert_eq!(texts(&ops, "alice"), ["first words"]);
}

/// A room whose `enter` waits, parted before it went: no `enter` nor
/// `part` goes, and a message sent to it (which never went) is given up
/// with its id, not left waiting for an echo.
#[test]
fn a_room_parted_before_its_waiting_enter_went_gives_up_its_messages() {
    let mut c = parting_rust();
    outputs(&mut c);
    c.enter("ops");
    let id = c.send_msg("ops", vec![], "never sent");
    c.part("ops");
    assert_eq!(outputs(&mut c), [format!("error not_in_room {id}")]);
    assert_eq!(c.unacknowledged(), 1);
    c.handle_frame(0, pending_echo(2));
    assert_eq!(outputs(&mut c), ["part rust", "rust: alice: pending"]);
    assert_eq!(c.rooms().collect::<Vec<_>>(), ["lobby"]);
}

/// After a fresh session, the room being parted is entered again and
/// waits for its replay; the room asked for meanwhile is entered only once
/// the `part` went, and its message (never sent) right after.
#[test]
fn a_waiting_enter_goes_after_a_fresh_sessions_replay_and_part() {
    let mut c = parting_rust();
    c.enter("ops");
    c.send_msg("ops", vec![], "never sent");
    outputs(&mut c);
    c.handle_disconnected();
    c.handle_connected(1);
    c.handle_frame(1, fresh_welcome());
    assert_eq!(outputs(&mut c), ["enter rust", "enter lobby"], "ops waits");
    c.handle_frame(
        1,
        ServerFrame::entered("rust", "e1", 1, 1, vec!["alice".into()], true),
    );
    c.handle_frame(
        1,
        ServerFrame::presence(Some("rust".into()), 2, "alice", PresenceStatus::Online, T0),
    );
    assert_eq!(outputs(&mut c), ["msg pending"]);
    c.handle_frame(1, pending_echo(3));
    assert_eq!(
        outputs(&mut c),
        [
            "part rust",
            "enter ops",
            "msg never sent",
            "rust: alice: pending"
        ]
    );
    assert_eq!(c.rooms().collect::<Vec<_>>(), ["lobby", "ops"]);
}

/// A message sent to a room not entered goes at once; the room, entered
/// just after while another is parted, waits. After a fresh session it
/// is held too (its message went before). Parted then: nothing is held
/// for it any more (a later message to it goes at once, as to any room
/// not entered), and the message that went on the earlier connection is
/// given up, told unconfirmed: the fresh session does not know its id,
/// and no replay of the room will show it (it was left waiting for an
/// echo for ever, still "sending").
#[test]
fn a_waiting_room_parted_after_a_fresh_session_is_not_held() {
    let mut c = parting_rust();
    let early = c.send_msg("ops", vec![], "early");
    c.enter("ops");
    outputs(&mut c);
    c.handle_disconnected();
    c.handle_connected(1);
    c.handle_frame(1, fresh_welcome());
    assert_eq!(outputs(&mut c), ["enter rust", "enter lobby"], "ops waits");
    c.part("ops");
    assert_eq!(
        outputs_unconfirmed(&mut c),
        [format!("unconfirmed {early} early")],
        "early went on the lost connection: its fate unknown"
    );
    assert!(!c.is_unacknowledged(&early));
    assert_eq!(c.unacknowledged(), 1, "pending, in rust");
    c.handle_frame(
        1,
        ServerFrame::entered("rust", "e1", 1, 1, vec!["alice".into()], true),
    );
    c.handle_frame(
        1,
        ServerFrame::presence(Some("rust".into()), 2, "alice", PresenceStatus::Online, T0),
    );
    assert_eq!(outputs(&mut c), ["msg pending"]);
    c.handle_frame(1, pending_echo(3));
    assert_eq!(outputs(&mut c), ["part rust", "rust: alice: pending"]);
    c.send_msg("ops", vec![], "late");
    assert_eq!(outputs(&mut c), ["msg late"], "not held");
    assert_eq!(c.unacknowledged(), 1, "late, waiting for its answer");
}

/// The same after a session the server resumed: it knows the message's
/// id, so the message is sent again when its waiting room is parted, and
/// the server's answer settles it (here `not_in_room`: it had refused
/// it, the room not entered then); it was left waiting for ever.
#[test]
fn a_waiting_room_parted_after_a_resumed_session_has_its_message_answered() {
    let mut c = parting_rust();
    let early = c.send_msg("ops", vec![], "early");
    c.enter("ops");
    outputs(&mut c);
    c.handle_disconnected();
    c.handle_connected(1);
    c.handle_frame(1, welcome_with(true, Limits::new(65_536, 64, 500, 200)));
    let entering = outputs(&mut c);
    assert!(
        !entering.contains(&"msg early".to_owned()),
        "ops waits: {entering:?}"
    );
    c.part("ops");
    assert_eq!(outputs(&mut c), ["msg early"], "asked of the server again");
    c.handle_frame(
        1,
        ServerFrame::error_v2(
            ErrorCode::NotInRoom,
            "you are not in #ops",
            Some(early.clone()),
            Some("ops".into()),
            None,
        ),
    );
    assert_eq!(outputs(&mut c), [format!("error not_in_room {early}")]);
    assert!(!c.is_unacknowledged(&early));
}

/// Frames handed in after the connection ended (still in the shell's
/// buffer when it saw the end) queue nothing: a `ping` was answered, its
/// `pong` put out while offline or, not polled, in front of the next
/// connection's `join`. No kind of frame does: not the echo that lets a
/// waiting `part` go, an `entered` with a message waiting, an own
/// entering presence, nor an error refusing an entering.
#[test]
fn frames_handled_offline_queue_nothing_for_the_next_connection() {
    let sends = |c: &mut Client| -> Vec<String> {
        let mut sent = Vec::new();
        while let Some(out) = c.poll() {
            if let ClientOutput::Send(f) = out {
                sent.push(format!("{f:?}"));
            }
        }
        sent
    };
    let offline_frames = || {
        vec![
            ServerFrame::Ping,
            ServerFrame::Pong,
            fresh_welcome(),
            ServerFrame::entered("rust", "e1", 0, 1, vec!["alice".into()], false),
            ServerFrame::entered("ops", "e1", 0, 1, vec!["alice".into()], false),
            own_presence(2),
            pending_echo(3),
            echo(4, "late", "a-9"),
            ServerFrame::history("lobby", vec![], false),
            ServerFrame::rooms(vec![RoomInfo::new("lobby", 1)]),
            ServerFrame::error_v2(ErrorCode::RoomInvalid, "no", None, Some("ops".into()), None),
            ServerFrame::notice("bye"),
            ServerFrame::Ping,
        ]
    };
    // Drained while offline, and not.
    for drain_offline in [true, false] {
        let mut c = parting_rust();
        c.enter("ops");
        c.send_msg("ops", vec![], "waiting");
        sends(&mut c);
        c.handle_disconnected();
        for f in offline_frames() {
            c.handle_frame(1, f);
        }
        if drain_offline {
            assert_eq!(sends(&mut c), Vec::<String>::new(), "offline");
        }
        c.handle_connected(2);
        let first = sends(&mut c);
        assert_eq!(first.len(), 1, "{first:?}");
        assert!(first[0].contains(r#""type":"join""#), "{first:?}");
    }
    // Before the first connection, likewise.
    let mut c = Client::new("alice", ["lobby"], "a-");
    for f in offline_frames() {
        c.handle_frame(0, f);
    }
    c.handle_connected(1);
    let first = sends(&mut c);
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].contains(r#""type":"join""#), "{first:?}");
}

/// A room whose `enter` waits, with a message that went on a lost
/// connection, parted while offline: nothing goes before the next
/// `join`, and the next resumed session sends the message again (the
/// room is not ours any more: it waits for nothing), for the server's
/// answer.
#[test]
fn a_waiting_room_parted_offline_has_its_message_sent_after_the_next_join() {
    let mut c = parting_rust();
    let early = c.send_msg("ops", vec![], "early");
    c.enter("ops");
    outputs(&mut c);
    c.handle_disconnected();
    c.handle_connected(1);
    c.handle_frame(1, welcome_with(true, Limits::new(65_536, 64, 500, 200)));
    outputs(&mut c);
    c.handle_disconnected();
    c.part("ops");
    assert_eq!(outputs(&mut c), Vec::<String>::new(), "offline");
    assert!(c.is_unacknowledged(&early));
    c.handle_connected(2);
    assert!(outputs(&mut c).is_empty(), "the join first");
    c.handle_frame(2, welcome_with(true, Limits::new(65_536, 64, 500, 200)));
    let after = outputs(&mut c);
    assert!(after.contains(&"msg early".to_owned()), "{after:?}");
    assert!(!after.contains(&"enter ops".to_owned()), "{after:?}");
}

/// A message sent to a room not entered goes at once (the server answers
/// it `not_in_room`); the room, entered just after while another is
/// parted, waits. When the part goes the room is entered, and that
/// message is not sent a second time on the connection (found by the
/// client fuzz target: entered, the room would have stored the copy of a
/// message told refused).
#[test]
fn a_message_sent_before_its_room_waited_is_not_sent_again_when_it_is_entered() {
    let mut c = parting_rust();
    c.send_msg("ops", vec![], "early");
    c.enter("ops");
    assert_eq!(outputs(&mut c).last().unwrap(), "msg early");
    c.handle_frame(0, pending_echo(2));
    assert_eq!(
        outputs(&mut c),
        ["part rust", "enter ops", "rust: alice: pending"]
    );
}

/// The same sequence as the client fuzz target's operations: the testkit's
/// invariants hold (a room held is ours or being parted).
#[test]
fn a_waiting_room_parted_after_a_fresh_session_keeps_the_testkit_invariants() {
    let data = [
        0u8, // 1 KiB decoder, 1-byte chunks
        4, 0, 6, 0, 0, // a fresh welcome
        7, 1, 0, // a message to rust
        9, 1, // rust parted: its part waits for the message
        7, 3, 0, // a message to music, not entered: it goes at once
        8, 3, // music entered: it waits for rust's part
        12, 11, // disconnected, connected
        4, 0, 6, 0, 0, // a fresh welcome: rust and music held, music waits
        9, 3, // music parted
    ];
    chatproto::testkit::check_client_ops(&data);
}

/// Under the pacer, a message to a room not entered waits in the core's
/// queue; the room is then entered (it waits for a part) and parted. The
/// message went to the queue before: it is not given up (that would tell
/// it refused and then send it anyway), and its frame goes.
#[test]
fn a_message_queued_for_the_pacer_is_not_given_up_with_its_waiting_room() {
    let mut c = Client::new("alice", ["lobby"], "a-");
    c.handle_connected(0);
    let slow = Limits::new(65_536, 4, 50, 200).with_rate(1, 2);
    c.handle_frame(
        0,
        ServerFrame::welcome(
            "alice",
            0,
            vec![],
            Some("t".into()),
            Some(false),
            Some(slow),
        ),
    );
    c.handle_frame(0, lobby_entered());
    c.handle_frame(0, own_presence(1));
    c.send_msg("lobby", vec![], "pending");
    c.part("lobby");
    let early = c.send_msg("ops", vec![], "early");
    c.enter("ops");
    c.part("ops");
    let out = outputs(&mut c);
    assert!(!out.iter().any(|o| o.starts_with("error")), "{out:?}");
    assert!(c.is_unacknowledged(&early));
    let mut sent = Vec::new();
    for t in 1..20 {
        c.handle_timeout(t * 10_000);
        while let Some(o) = c.poll() {
            if let ClientOutput::Send(ClientFrame::Msg { id: Some(id), .. }) = o {
                sent.push(id);
            }
        }
    }
    assert!(sent.contains(&early), "{sent:?}");
}

/// At two rooms per client, alice (in lobby and rust) loses her
/// connection with a message to rust delivered but not echoed. Offline she
/// enters ops, then leaves rust. The next connection enters rust (being
/// parted) first: its message is a duplicate there, not refused; and ops,
/// never entered, waits for rust's part as a room entered online would:
/// nothing is refused.
#[test]
fn a_room_entered_offline_does_not_crowd_out_the_one_being_parted() {
    let mut net = two_rooms_each();
    let a = net.add("alice", &["lobby", "rust"]);
    let b = net.add("bob", &["rust"]);
    net.peers[a].core.send_msg("rust", vec![], "last words");
    net.drain_clients();
    net.drain_server(false);
    net.read(b);
    net.cut(a);
    net.peers[a].core.enter("ops");
    net.peers[a].core.part("rust");
    net.connect(a);
    net.pump();
    assert_eq!(
        texts(&net.shown(b), "alice"),
        ["last words"],
        "delivered once"
    );
    assert_eq!(net.peers[a].core.unacknowledged(), 0);
    assert!(errors(&net, a).is_empty(), "{:?}", errors(&net, a));
    assert_eq!(
        net.peers[a].core.rooms().collect::<Vec<_>>(),
        ["lobby", "ops"]
    );
    assert_eq!(net.peers[a].core.roster("ops"), ["alice"]);
    assert_eq!(net.peers[b].core.roster("rust"), ["bob"], "parted");
}

/// A room parted while its messages wait, the connection lost twice: the
/// next connection enters it again before resending them (sent without
/// it, they would be refused `not_in_room`), and parts it once answered.
#[test]
fn a_room_parted_while_its_messages_wait_is_entered_again_after_a_reconnect() {
    let mut c = alice_in_lobby();
    c.enter("rust");
    c.handle_frame(
        0,
        ServerFrame::entered("rust", "e1", 0, 1, vec!["alice".into()], false),
    );
    c.send_msg("rust", vec![], "pending");
    outputs(&mut c);
    c.handle_disconnected();
    c.handle_connected(1);
    c.handle_frame(1, fresh_welcome());
    c.part("rust");
    c.handle_disconnected();
    c.handle_connected(2);
    c.handle_frame(2, fresh_welcome());
    assert_eq!(
        outputs(&mut c),
        ["enter rust", "enter lobby"],
        "held for its replay"
    );
    c.handle_frame(
        2,
        ServerFrame::entered("rust", "e1", 1, 1, vec!["alice".into()], true),
    );
    c.handle_frame(
        2,
        ServerFrame::presence(Some("rust".into()), 2, "alice", PresenceStatus::Online, T0),
    );
    assert_eq!(outputs(&mut c), ["msg pending"]);
    c.handle_frame(2, pending_echo(3));
    // Its echo is told (the user has not seen it), and the `part` goes.
    assert_eq!(outputs(&mut c), ["part rust", "rust: alice: pending"]);
    assert_eq!(c.rooms().collect::<Vec<_>>(), ["lobby"]);
}

/// A room parted during a fresh session's replay and entered again before
/// the `part` went: what the replay brought meanwhile is told then, after
/// the room's `entered`, with no gap: it would otherwise be lost, the
/// room's last seq already past it.
#[test]
fn a_room_parted_and_entered_again_during_its_replay_loses_nothing() {
    let mut c = alice_in_lobby();
    c.send_msg("lobby", vec![], "pending");
    outputs(&mut c);
    c.handle_disconnected();
    c.handle_connected(1);
    c.handle_frame(1, fresh_welcome());
    // Everything since seq 1 is replayed (`recovered`).
    c.handle_frame(
        1,
        ServerFrame::entered(
            "lobby",
            "e1",
            3,
            1,
            vec!["alice".into(), "bob".into()],
            true,
        ),
    );
    outputs(&mut c);
    c.part("lobby");
    c.handle_frame(
        1,
        ServerFrame::msg(
            Some("lobby".into()),
            2,
            "bob",
            vec![],
            "while away",
            T0,
            None,
        )
        .into_replay(),
    );
    c.handle_frame(
        1,
        ServerFrame::presence(Some("lobby".into()), 3, "bob", PresenceStatus::Offline, T0),
    );
    assert!(outputs(&mut c).is_empty(), "parted: nothing told");
    c.enter("lobby");
    assert_eq!(
        outputs(&mut c),
        [
            "entered lobby false",
            "lobby: bob: while away",
            "lobby: bob offline"
        ]
    );
    assert_eq!(c.roster("lobby"), ["alice"]);
    c.handle_frame(1, own_presence(4));
    assert_eq!(outputs(&mut c), ["msg pending", "lobby: alice online"]);
}

/// A fresh session under another nickname (the first was taken while the
/// client was away) still recognises its message in the replay, shown
/// from the nickname it was sent under, and does not send it again.
#[test]
fn a_fresh_session_under_another_nickname_does_not_resend_what_the_replay_shows() {
    let mut c = alice_in_lobby();
    c.send_msg("lobby", vec![], "hello");
    outputs(&mut c);
    c.handle_disconnected();
    c.handle_connected(1);
    c.handle_frame(1, ServerFrame::error(ErrorCode::NickTaken, "taken"));
    assert!(c.join_as("alice_"));
    c.handle_frame(
        1,
        ServerFrame::welcome("alice_", 0, vec![], Some("t2".into()), Some(false), None),
    );
    c.handle_frame(
        1,
        ServerFrame::entered("lobby", "e1", 3, 1, vec!["alice_".into()], false),
    );
    c.handle_frame(
        1,
        ServerFrame::msg(Some("lobby".into()), 2, "alice", vec![], "hello", T0, None).into_replay(),
    );
    c.handle_frame(
        1,
        ServerFrame::presence(
            Some("lobby".into()),
            4,
            "alice_",
            PresenceStatus::Online,
            T0,
        ),
    );
    let sent: Vec<String> = outputs(&mut c)
        .into_iter()
        .filter(|o| o.starts_with("msg "))
        .collect();
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(c.unacknowledged(), 0);
}

/// A message waiting to be sent again whose frame the server's `welcome`
/// says is too large is given up with `msg_too_large`, not sent: the
/// server would close the connection for it, and the client would send it
/// again after every reconnect, for ever.
#[test]
fn a_pending_message_too_large_for_the_server_is_given_up_at_welcome() {
    use chatproto::ErrorCode;
    let mut c = Client::new("alice", ["lobby"], "a-");
    c.handle_connected(0);
    let small = ServerFrame::welcome("alice", 0, vec![], Some("t".into()), Some(false), None);
    c.handle_frame(0, small);
    c.send_msg("lobby", vec![], "x".repeat(1_500));
    c.send_msg("lobby", vec![], "fits");
    c.handle_disconnected();
    while c.poll().is_some() {}
    c.handle_connected(1);
    c.handle_frame(1, small_welcome(true));
    let (sent, refused) = sent_and_refused(&mut c);
    assert_eq!(sent, ["fits"]);
    assert_eq!(refused, [(ErrorCode::MsgTooLarge, Some("a-1".to_owned()))]);
    assert_eq!(c.unacknowledged(), 1);
}

/// A message sent while joined whose frame is longer than the server's
/// `welcome` says it takes is given up at once with `msg_too_large`: no
/// shell can send it, and it would wait for an echo for ever.
#[test]
fn a_message_too_large_for_the_server_is_given_up_when_sent() {
    use chatproto::ErrorCode;
    let mut c = Client::new("alice", ["lobby"], "a-");
    c.handle_connected(0);
    c.handle_frame(0, small_welcome(false));
    while c.poll().is_some() {}
    let big = c.send_msg("lobby", vec![], "x".repeat(1_500));
    c.send_msg("lobby", vec![], "fits");
    let (sent, refused) = sent_and_refused(&mut c);
    assert_eq!(sent, ["fits"]);
    assert_eq!(refused, [(ErrorCode::MsgTooLarge, Some(big.clone()))]);
    assert!(!c.is_unacknowledged(&big));
    assert_eq!(c.unacknowledged(), 1);
}

/// An entering refused with `unavailable` (a server sharing rooms whose
/// log has no room now) leaves the room not entered: it is gone from the
/// client's rooms and may be entered again.
#[test]
fn an_entering_refused_unavailable_is_not_entered_and_may_be_tried_again() {
    let mut c = alice_in_lobby();
    while c.poll().is_some() {}
    c.enter("rust");
    while c.poll().is_some() {}
    let refused = ServerFrame::error_v2(
        chatproto::ErrorCode::Unavailable,
        "you did not enter #rust: the cluster's log is full; try again",
        None,
        Some("rust".into()),
        None,
    );
    c.handle_frame(0, refused);
    while c.poll().is_some() {}
    assert_eq!(c.rooms().collect::<Vec<_>>(), ["lobby"]);
    c.enter("rust");
    let mut sent = Vec::new();
    while let Some(out) = c.poll() {
        if let ClientOutput::Send(ClientFrame::Enter { room, .. }) = out {
            sent.push(room);
        }
    }
    assert_eq!(sent, ["rust"]);
}

/// A room whose name breaks the rule is refused at once, by `new` and by
/// `enter`, naming it (the server leaves a long one out of its error, so
/// the client could never tell it was refused), and never asked for.
#[test]
fn a_room_name_that_breaks_the_rule_is_refused_at_once_and_not_asked_for() {
    let long = "r".repeat(40);
    let mut c = Client::new("alice", ["lobby", &long, "#ops"], "a-");
    // The rooms refused, and the rooms asked for (in a join or an enter).
    let out = |c: &mut Client| {
        let (mut refused, mut asked) = (Vec::new(), Vec::new());
        while let Some(out) = c.poll() {
            match out {
                ClientOutput::Event(ClientEvent::Error {
                    code: chatproto::ErrorCode::RoomInvalid,
                    room,
                    ..
                }) => refused.push(room.expect("named")),
                ClientOutput::Send(ClientFrame::Join { rooms, .. }) => {
                    asked.extend(rooms.unwrap_or_default())
                }
                ClientOutput::Send(ClientFrame::Enter { room, .. }) => asked.push(room),
                _ => {}
            }
        }
        (refused, asked)
    };
    let none: Vec<String> = Vec::new();
    assert_eq!(
        out(&mut c),
        (vec![long.clone(), "#ops".into()], none.clone())
    );
    assert_eq!(c.rooms().collect::<Vec<_>>(), ["lobby"]);
    c.handle_connected(0);
    c.handle_frame(0, fresh_welcome());
    assert_eq!(out(&mut c), (none.clone(), vec!["lobby".to_owned()]));
    c.handle_frame(0, lobby_entered());
    out(&mut c);
    c.enter(&long);
    assert_eq!(out(&mut c), (vec![long], none));
    assert_eq!(c.rooms().collect::<Vec<_>>(), ["lobby"]);
}

/// Under a rate the server said in its `welcome`, frames go no faster
/// than nine tenths of it after half its burst, in order (an `enter` waits
/// behind the messages before it); a pong is never held; what waited is
/// sent again in full on the next connection, paced by that one's rate.
#[test]
fn frames_are_paced_under_the_rate_the_server_said() {
    let sent = |c: &mut Client| {
        let mut sent = Vec::new();
        while let Some(out) = c.poll() {
            if let ClientOutput::Send(frame) = out {
                sent.push(match frame {
                    ClientFrame::Msg { text, .. } => text,
                    ClientFrame::Enter { room, .. } => format!("enter {room}"),
                    ClientFrame::Pong => "pong".to_owned(),
                    other => format!("{other:?}"),
                });
            }
        }
        sent
    };
    // 10 a second after 4 at once: 9 a second (one every 112 ms) after 2.
    let mut c = Client::new("alice", ["lobby"], "a-");
    c.handle_connected(1_000);
    c.handle_frame(1_000, rated_welcome(false, 10, 4));
    c.handle_frame(1_000, lobby_entered());
    c.handle_frame(1_000, own_presence(1));
    // The join before the rate was said; the enter of the lobby took one
    // of two.
    let first = sent(&mut c);
    assert!(first[0].contains(r#""type":"join""#), "{first:?}");
    assert_eq!(first[1..], ["enter lobby"]);
    for i in 0..4 {
        c.send_msg("lobby", vec![], format!("m{i}"));
    }
    c.enter("rust");
    c.handle_frame(1_000, ServerFrame::Ping);
    assert_eq!(sent(&mut c), ["m0", "pong"]);
    assert_eq!(c.poll_timeout(), Some(1_112));
    c.handle_timeout(1_111);
    assert!(sent(&mut c).is_empty(), "not before its time");
    c.handle_timeout(1_112);
    assert_eq!(sent(&mut c), ["m1"]);
    // The bucket holds two at most.
    c.handle_timeout(1_112 + 5 * 112);
    assert_eq!(sent(&mut c), ["m2", "m3"]);
    c.handle_timeout(1_112 + 6 * 112);
    assert_eq!(sent(&mut c), ["enter rust"]);
    assert!(
        c.poll_timeout() > Some(2_000),
        "nothing waits: the ping timer"
    );
    // More than the bucket holds, then the connection ends: the next
    // one's welcome sends every message again, under its own rate.
    for i in 4..8 {
        c.send_msg("lobby", vec![], format!("m{i}"));
    }
    assert!(sent(&mut c).len() < 4);
    c.handle_disconnected();
    c.handle_connected(5_000);
    sent(&mut c);
    c.handle_frame(5_000, rated_welcome(true, 1_000, 200));
    let again = sent(&mut c);
    assert!(again.contains(&"enter lobby".to_owned()), "{again:?}");
    let texts: Vec<&String> = again.iter().filter(|t| t.starts_with('m')).collect();
    assert_eq!(texts, ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"]);
}

/// Under a byte allowance the server said, large messages go no faster
/// than nine tenths of it after half its burst, each counted by its
/// encoded frame (the deadline is exact to the millisecond); one larger
/// than half the burst goes when the bucket is full and the rest is owed.
#[test]
fn large_messages_are_paced_under_the_byte_allowance_the_server_said() {
    // Each frame sent: its text's length and its payload's (what the
    // server counts).
    let sent = |c: &mut Client| {
        let mut sent = Vec::new();
        while let Some(out) = c.poll() {
            if let ClientOutput::Send(frame) = out {
                let payload = chatproto::encode(&frame, 1 << 20).expect("fits").len() as u64 - 4;
                let text = match frame {
                    ClientFrame::Msg { text, .. } => text.len(),
                    _ => 0,
                };
                sent.push((text, payload));
            }
        }
        sent
    };
    let texts = |s: &[(usize, u64)]| s.iter().map(|(t, _)| *t).collect::<Vec<_>>();
    // 9,000 bytes a second after 20,000: 8,100 a second after 10,000, in
    // millionths of a byte 8,100,000 a millisecond.
    let limits = Limits::new(16_384, 64, 500, 200).with_byte_rate(9_000, 20_000);
    let mut c = Client::new("alice", ["lobby"], "a-");
    c.handle_connected(1_000);
    sent(&mut c); // the join, before any limit was said
    c.handle_frame(1_000, welcome_with(false, limits));
    let enter = sent(&mut c);
    assert_eq!(enter.len(), 1, "the enter of the lobby");
    c.handle_frame(1_000, lobby_entered());
    c.handle_frame(1_000, own_presence(1));
    for _ in 0..4 {
        c.send_msg("lobby", vec![], "x".repeat(4_000));
    }
    let first = sent(&mut c);
    assert_eq!(
        texts(&first),
        [4_000, 4_000],
        "two fit in 10,000 with the enter"
    );
    // What the third still needs, at 8.1 bytes a millisecond.
    let spent: u64 = enter.iter().chain(&first).map(|(_, p)| p).sum();
    let held = 10_000 - spent;
    let need = first[1].1 - held;
    let next = 1_000 + (need * 1_000_000).div_ceil(8_100_000);
    assert_eq!(c.poll_timeout(), Some(next));
    c.handle_timeout(next - 1);
    assert!(sent(&mut c).is_empty(), "not before its time");
    c.handle_timeout(next);
    assert_eq!(texts(&sent(&mut c)), [4_000]);
    // A message larger than half the burst waits for a full bucket.
    c.send_msg("lobby", vec![], "y".repeat(12_000));
    c.handle_timeout(next + 1_000);
    assert_eq!(texts(&sent(&mut c)), [4_000]);
    c.handle_timeout(next + 1_000 + 700);
    assert!(sent(&mut c).is_empty(), "about 9,700 of 10,000: not yet");
    c.handle_timeout(next + 1_000 + 1_240);
    let big = sent(&mut c);
    assert_eq!(texts(&big), [12_000], "the bucket is full: it goes");
    // It owed what the bucket did not hold: the next waits for that too.
    c.send_msg("lobby", vec![], "z".repeat(10));
    assert!(sent(&mut c).is_empty(), "the debt is not paid");
    let owed = big[0].1 - 10_000;
    let at = c.poll_timeout().expect("a deadline");
    assert!(at > next + 1_000 + 1_240 + owed * 1_000 / 8_100, "{at}");
}

/// A `rooms` request costs the byte allowance the largest frame, as the
/// server counts it (PROTOCOL.md §7): after one, a message waits until
/// that much came back.
#[test]
fn a_rooms_request_is_paced_as_the_largest_frame() {
    // 16,384-byte frames; 10,000 bytes a second after 40,000: half of it
    // (20,000) at once, then 9 bytes a millisecond.
    let limits = Limits::new(16_384, 64, 500, 200).with_byte_rate(10_000, 40_000);
    let mut c = Client::new("alice", [] as [&str; 0], "a-");
    c.handle_connected(1_000);
    while c.poll().is_some() {}
    c.handle_frame(1_000, welcome_with(false, limits));
    while c.poll().is_some() {}
    let sent = |c: &mut Client| {
        let mut sent = Vec::new();
        while let Some(out) = c.poll() {
            if let ClientOutput::Send(frame) = out {
                sent.push(frame);
            }
        }
        sent
    };
    c.list_rooms();
    assert_eq!(sent(&mut c), [ClientFrame::Rooms], "16,384 of 20,000");
    c.list_rooms();
    assert!(sent(&mut c).is_empty(), "3,616 left: the second waits");
    // 16,384 - 3,616 = 12,768 bytes more, at 9 a millisecond.
    assert_eq!(c.poll_timeout(), Some(1_000 + 12_768_u64.div_ceil(9)));
}

/// `history` and `list_rooms` before the `welcome` (offline, or while
/// the join waits) do nothing, as their docs say: no frame that would
/// reach the server before the `join`, and no event. Once joined, each
/// sends its frame.
#[test]
fn history_and_rooms_before_the_welcome_do_nothing() {
    let mut c = Client::new("alice", ["lobby"], "a-");
    c.history("lobby", None, None);
    c.list_rooms();
    assert_eq!(c.poll(), None, "offline");
    c.handle_connected(0);
    while c.poll().is_some() {}
    c.history("lobby", None, None);
    c.list_rooms();
    assert_eq!(c.poll(), None, "joining");
    c.handle_frame(0, welcome_with(false, Limits::new(65_536, 64, 500, 200)));
    while c.poll().is_some() {}
    c.history("lobby", None, Some(10));
    c.list_rooms();
    let sent: Vec<ClientOutput> = std::iter::from_fn(|| c.poll()).collect();
    assert_eq!(
        sent,
        [
            ClientOutput::Send(ClientFrame::history("lobby", None, Some(10))),
            ClientOutput::Send(ClientFrame::Rooms),
        ]
    );
}

/// A message whose frame still waits for the pacer when the server
/// acknowledges it (after a resume, the replay of a room holds the copies
/// the server stored before the connection dropped) is not sent again.
#[test]
fn a_paced_message_acknowledged_by_the_replay_is_not_sent() {
    let welcome = |resumed| rated_welcome(resumed, 10, 4);
    let mut c = Client::new("alice", ["lobby"], "a-");
    c.handle_connected(0);
    c.handle_frame(0, welcome(false));
    c.handle_frame(0, lobby_entered());
    c.handle_frame(0, own_presence(1));
    while c.poll().is_some() {}
    let ids: Vec<String> = (0..6)
        .map(|i| c.send_msg("lobby", vec![], format!("m{i}")))
        .collect();
    while c.poll().is_some() {}
    // The connection drops; the server had stored m0 to m3.
    c.handle_disconnected();
    c.handle_connected(10_000);
    c.handle_frame(10_000, welcome(true));
    let stored = |i: usize| {
        ServerFrame::msg(
            Some("lobby".into()),
            2 + i as u64,
            "alice",
            vec![],
            format!("m{i}"),
            1,
            Some(ids[i].clone()),
        )
    };
    for i in 0..4 {
        c.handle_frame(10_000, stored(i));
    }
    let mut sent = Vec::new();
    for t in 0..40 {
        c.handle_timeout(10_000 + t * 200);
        while let Some(out) = c.poll() {
            if let ClientOutput::Send(ClientFrame::Msg { text, .. }) = out {
                sent.push(text);
            }
        }
    }
    // At most the two the bucket let go at once went before the replay.
    assert!(sent.len() <= 4, "{sent:?}");
    assert_eq!(sent[sent.len() - 2..], ["m4", "m5"], "{sent:?}");
    assert_eq!(c.unacknowledged(), 2);
}

/// A monotonic clock may start anywhere: a deadline past `u64::MAX` is
/// `u64::MAX`, not a panic (or, wrapped, a deadline already past).
#[test]
fn deadlines_near_the_end_of_the_clock_saturate() {
    let mut client = Client::new("alice", [] as [&str; 0], "t");
    let late = u64::MAX - 10;
    client.handle_connected(late);
    assert_eq!(client.poll_timeout(), Some(u64::MAX));
    client.handle_timeout(late + 5);
    let sent: Vec<ClientOutput> = std::iter::from_fn(|| client.poll()).collect();
    assert_eq!(sent.len(), 1, "only the join: {sent:?}");
    client.handle_timeout(u64::MAX);
    assert!(matches!(
        client.poll(),
        Some(ClientOutput::Send(ClientFrame::Ping))
    ));
    assert_eq!(client.poll_timeout(), Some(u64::MAX));
}

/// An id prefix too long for the protocol's 64-character ids is cut, so
/// that messages are sent and acknowledged, not refused with a
/// `bad_frame` that names no message (and resent after every reconnect).
#[test]
fn a_long_id_prefix_still_makes_ids_the_server_takes() {
    let mut server = Server::new(ServerConfig::default(), [5; 32]);
    let now = Now::new(0, T0);
    let conn = server.handle_connect(now);
    let mut client = Client::new("alice", ["lobby"], "é".repeat(70));
    client.handle_connected(0);
    let mut sent = false;
    let mut events = Vec::new();
    for _ in 0..4 {
        while let Some(out) = client.poll() {
            match out {
                ClientOutput::Send(frame) => server.handle_frame(now, conn, frame),
                ClientOutput::Event(e) => events.push(e),
                _ => {}
            }
        }
        while let Some(out) = server.poll() {
            match out {
                Output::Send { frame, .. } => client.handle_frame(0, frame),
                Output::Deliver { event, with_id, .. } => {
                    client.handle_frame(0, event.to_frame(with_id, false))
                }
                _ => {}
            }
        }
        if client.is_joined() && !sent {
            let id = client.send_msg("lobby", vec![], "hi");
            assert!(id.chars().count() <= 64, "{id}");
            sent = true;
        }
    }
    assert!(sent);
    assert_eq!(client.unacknowledged(), 0, "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ClientEvent::Message { mine: true, .. })),
        "{events:?}"
    );
}

/// `last_seq` is the seq of the last event seen, joins and leaves
/// included: what a reconnect enters again `since`, where its gap
/// begins, until the replay after it brings more.
#[test]
fn last_seq_is_where_a_reconnect_enters_again_from() {
    let mut c = Client::new("alice", ["lobby"], "a");
    c.handle_connected(T0);
    c.handle_frame(T0, fresh_welcome());
    c.handle_frame(T0, lobby_entered());
    assert_eq!(c.last_seq("lobby"), Some(0));
    assert_eq!(c.last_seq("rust"), None, "not in it");
    c.handle_frame(T0, own_presence(1));
    let bob = ServerFrame::msg(Some("lobby".into()), 2, "bob", vec![], "hi", T0, None);
    c.handle_frame(T0, bob);
    let left = ServerFrame::presence(Some("lobby".into()), 3, "bob", PresenceStatus::Offline, T0);
    c.handle_frame(T0, left);
    assert_eq!(c.last_seq("lobby"), Some(3));
    c.handle_disconnected();
    c.handle_connected(T0);
    c.handle_frame(T0, fresh_welcome());
    // Entered again with a gap: not yet past what was seen.
    let again = ServerFrame::entered("lobby", "e1", 20, 1, vec!["alice".into()], false);
    c.handle_frame(T0, again);
    assert_eq!(c.last_seq("lobby"), Some(3));
    while c.poll().is_some() {}
}

/// A server whose room went back below what this client saw, in the same
/// epoch (PROTOCOL.md §5.8's open case: a server stopped while its store
/// failed gives the lost seqs again): the reconnect's `entered` has a
/// lower seq and `recovered: false`. Its events from there on are new
/// ones, not copies of those seen: they are shown. Nothing the server
/// holds was missed (what it lost is presence only): no gap.
#[test]
fn a_room_whose_seq_went_back_in_the_same_epoch_is_followed_from_there() {
    let mut c = Client::new("alice", ["lobby"], "a");
    c.handle_connected(T0);
    c.handle_frame(T0, fresh_welcome());
    c.handle_frame(T0, lobby_entered());
    c.handle_frame(T0, own_presence(1));
    for seq in 2..=5 {
        let bob = ServerFrame::msg(Some("lobby".into()), seq, "bob", vec![], "old", T0, None);
        c.handle_frame(T0, bob);
    }
    assert_eq!(c.last_seq("lobby"), Some(5));
    c.handle_disconnected();
    while c.poll().is_some() {}
    c.handle_connected(T0);
    c.handle_frame(T0, fresh_welcome());
    let behind = ServerFrame::entered("lobby", "e1", 2, 1, vec!["alice".into()], false);
    c.handle_frame(T0, behind);
    assert_eq!(c.last_seq("lobby"), Some(2));
    c.handle_frame(T0, own_presence(3));
    let carol = ServerFrame::msg(Some("lobby".into()), 4, "carol", vec![], "new", T0, None);
    c.handle_frame(T0, carol);
    let mut events = Vec::new();
    while let Some(out) = c.poll() {
        if let chatproto::ClientOutput::Event(e) = out {
            events.push(e);
        }
    }
    assert!(
        events.iter().any(|e| matches!(
            e,
            ClientEvent::Entered {
                gap: false,
                reset: false,
                ..
            }
        )),
        "{events:?}"
    );
    assert!(
        events.iter().any(
            |e| matches!(e, ClientEvent::Message { from, text, .. } if from == "carol" && text == "new")
        ),
        "{events:?}"
    );
    assert_eq!(c.last_seq("lobby"), Some(4));
}

/// A message sent after seq 7 whose answer was lost; the room comes back
/// behind it (at 5, same epoch) in a fresh session, the message is sent
/// again after the replay and stored at 7, and that answer is lost too.
/// The next fresh session's replay holds it at 7: taken for ours (after
/// what was seen in the history as it is now), not sent a third time.
#[test]
fn a_message_stored_in_a_room_that_came_back_behind_is_found_in_the_replay() {
    let mut c = alice_in_lobby();
    for seq in 2..=7 {
        let bob = ServerFrame::msg(Some("lobby".into()), seq, "bob", vec![], "x", T0, None);
        c.handle_frame(T0, bob);
    }
    c.send_msg("lobby", vec![], "hi");
    assert_eq!(sent_texts(&mut c), ["hi"]);
    c.handle_disconnected();
    c.handle_connected(1);
    c.handle_frame(1, fresh_welcome());
    let behind = ServerFrame::entered("lobby", "e1", 5, 1, vec!["alice".into()], false);
    c.handle_frame(1, behind);
    c.handle_frame(1, own_presence(6));
    assert_eq!(sent_texts(&mut c), ["hi"], "not in the replay: sent again");
    c.handle_disconnected();
    c.handle_connected(2);
    c.handle_frame(2, fresh_welcome());
    let entered = ServerFrame::entered("lobby", "e1", 7, 1, vec!["alice".into()], false);
    c.handle_frame(2, entered);
    let mine = ServerFrame::msg(Some("lobby".into()), 7, "alice", vec![], "hi", T0, None);
    c.handle_frame(2, mine.into_replay());
    c.handle_frame(2, own_presence(8));
    assert_eq!(c.unacknowledged(), 0);
    assert!(sent_texts(&mut c).is_empty());
}

/// A nickname taken is refused and the connection stays open: the same
/// client joins again under another one, enters its rooms and talks, and
/// once joined its nickname cannot change.
#[test]
fn a_refused_nickname_is_tried_again_as_another() {
    let mut net = Net::new();
    let a = net.add("alice", &["lobby"]);
    // Not while its join waits for an answer: two joins would race.
    let mut waiting = Client::new("Alice", ["lobby"], "w-");
    waiting.handle_connected(0);
    assert!(!waiting.join_as("bob"));
    assert_eq!(waiting.nick(), "Alice");
    let b = net.add("Alice", &["lobby"]);
    assert!(!net.peers[b].core.is_joined());
    assert!(
        net.peers[b].events.iter().any(|e| matches!(
            e,
            ClientEvent::Refused {
                code: chatproto::ErrorCode::NickTaken,
                ..
            }
        )),
        "{:?}",
        net.peers[b].events
    );
    assert!(net.peers[b].core.join_as("bob"));
    net.pump();
    assert!(net.peers[b].core.is_joined(), "{:?}", net.peers[b].events);
    assert_eq!(net.peers[b].core.nick(), "bob");
    net.peers[b].core.send_msg("lobby", vec![], "hi, I am bob");
    net.pump();
    assert_eq!(net.peers[b].core.unacknowledged(), 0);
    let heard = net.peers[a].events.iter().any(|e| {
        matches!(e, ClientEvent::Message { from, text, .. } if from == "bob" && text == "hi, I am bob")
    });
    assert!(heard, "{:?}", net.peers[a].events);
    assert!(!net.peers[b].core.join_as("carol"));
    assert_eq!(net.peers[b].core.nick(), "bob");
}

/// A room's state is found by its name in any case, as `enter` and the
/// server fold it.
#[test]
fn a_rooms_state_is_found_by_its_name_in_any_case() {
    let mut net = Net::new();
    let a = net.add("alice", &["Rust"]);
    net.pump();
    let c = &net.peers[a].core;
    assert_eq!(c.rooms().collect::<Vec<_>>(), ["rust"]);
    assert_eq!(c.roster("Rust"), ["alice"]);
    assert_eq!(c.roster_len("RUST"), 1);
    assert_eq!(c.last_seq("Rust"), c.last_seq("rust"));
    assert!(c.last_seq("Rust").is_some());
    assert_eq!(c.epoch("Rust"), c.epoch("rust"));
    assert!(c.epoch("Rust").is_some());
}

/// A refusal that closes the connection (`server_full`) leaves no
/// nickname to try on it: `join_as` waits for the next connection.
#[test]
fn a_fatal_refusal_tries_no_other_nickname_on_its_connection() {
    let mut c = Client::new("alice", ["lobby"], "f-");
    c.handle_connected(0);
    while c.poll().is_some() {}
    c.handle_frame(
        1,
        ServerFrame::error(chatproto::ErrorCode::ServerFull, "full"),
    );
    assert!(!c.join_as("bob"));
    assert!(c.poll().is_none_or(|o| !matches!(o, ClientOutput::Send(_))));
    c.handle_disconnected();
    assert!(c.join_as("bob"));
    assert_eq!(c.nick(), "bob");
}

/// The texts of the messages `c` has to send, in order (its other output
/// dropped).
fn sent_texts(c: &mut Client) -> Vec<String> {
    let mut texts = Vec::new();
    while let Some(out) = c.poll() {
        if let ClientOutput::Send(ClientFrame::Msg { text, .. }) = out {
            texts.push(text);
        }
    }
    texts
}

/// The frames `c` has to send, in order, and the events it reported.
fn drain(c: &mut Client) -> (Vec<ClientFrame>, Vec<ClientEvent>) {
    let (mut frames, mut events) = (Vec::new(), Vec::new());
    while let Some(out) = c.poll() {
        match out {
            ClientOutput::Send(f) => frames.push(f),
            ClientOutput::Event(e) => events.push(e),
            _ => {}
        }
    }
    (frames, events)
}

/// A connection called dead, or one the shell never said ended, is over
/// when the next one opens: that connection's first frame is its join,
/// never a frame left from the old one (the server would answer it
/// `not_joined`), and the message waiting is sent after the welcome.
#[test]
fn a_new_connection_starts_with_its_join_whatever_the_old_one_left() {
    for said_dead in [true, false] {
        let mut c = Client::new("alice", [] as [&str; 0], "a-");
        c.handle_connected(0);
        drain(&mut c);
        c.handle_frame(
            0,
            ServerFrame::welcome("alice", 0, vec![], Some("t".into()), Some(false), None),
        );
        c.handle_frame(
            0,
            ServerFrame::entered("lobby", "e", 0, 1, vec!["alice".into()], false),
        );
        drain(&mut c);
        c.send_msg("lobby", vec![], "hello");
        let mut at = 0;
        if said_dead {
            // Pinged, then silent: dead. The frames queued meanwhile are
            // not drained by this shell before it connects again.
            for _ in 0..2 {
                at = c.poll_timeout().expect("connected");
                c.handle_timeout(at);
            }
        }
        c.handle_connected(at);
        let (frames, events) = drain(&mut c);
        assert_eq!(
            events.iter().any(|e| matches!(e, ClientEvent::Dead)),
            said_dead,
            "{events:?}"
        );
        assert!(
            matches!(&frames[..], [ClientFrame::Join { .. }]),
            "said dead: {said_dead}: {frames:?}"
        );
        assert_eq!(c.unacknowledged(), 1, "kept to send again");
    }
}

/// alice's `welcome` from a server that takes frames of 1,024 bytes.
fn small_welcome(resumed: bool) -> ServerFrame {
    welcome_with(resumed, Limits::new(1_024, 64, 500, 200))
}

/// A program that restarts keeps its session's token and where it was in
/// each room, and gives them to the new run's core: the server resumes
/// the session (`resumed`), and the room is replayed from
/// where the earlier run was: what it had seen is not shown again, what
/// was said meanwhile is, and nothing is missing.
#[test]
fn a_new_run_resumes_the_session_and_room_of_an_earlier_one() {
    let mut net = Net::new();
    let a = net.add("alice", &["lobby"]);
    let b = net.add("bob", &["lobby"]);
    net.peers[b].core.send_msg("lobby", vec![], "before");
    net.pump();
    let old = &net.peers[a].core;
    let token = old.session_token().expect("a token once joined").to_owned();
    let epoch = old.epoch("lobby").expect("entered").to_owned();
    let seen = old.last_seq("lobby").expect("entered");
    // The earlier run ends; bob talks while nobody runs as alice.
    net.cut(a);
    net.peers[b].core.send_msg("lobby", vec![], "meanwhile");
    net.pump();
    let mut new = Client::new("alice", [] as [&str; 0], "alice-run2-");
    assert_eq!(new.session_token(), None, "no welcome yet");
    assert!(new.resume_session(token.clone()));
    assert!(new.set_last_seen("Lobby", epoch, seen));
    assert_eq!(new.rooms().collect::<Vec<_>>(), ["lobby"]);
    assert_eq!(new.last_seq("lobby"), Some(seen));
    net.peers[a].core = new;
    net.peers[a].events.clear();
    net.connect(a);
    net.pump();
    let p = &net.peers[a];
    assert!(p.events.iter().any(|e| matches!(
        e,
        ClientEvent::Joined { nick, resumed: true, .. } if nick == "alice"
    )));
    assert!(p.events.iter().any(|e| matches!(
        e,
        ClientEvent::Entered { room, again: true, gap: false, .. } if room == "lobby"
    )));
    assert_eq!(texts(&net.shown(a), "bob"), ["meanwhile"]);
    assert_eq!(p.core.session_token(), Some(token.as_str()));
    // Connected, neither may change any more.
    let core = &mut net.peers[a].core;
    assert!(!core.resume_session("other"));
    assert!(!core.set_last_seen("rust", "e9", 4));
    assert_eq!(core.session_token(), Some(token.as_str()));
    assert_eq!(core.last_seq("rust"), None);
}

/// A token the server does not hold (forgotten, or never its own) gives a
/// new session with a new token, under the nickname asked for; the room
/// is still replayed from where the earlier run was.
#[test]
fn a_token_the_server_does_not_hold_gives_a_new_session() {
    let mut net = Net::new();
    let b = net.add("bob", &["lobby"]);
    net.peers[b].core.send_msg("lobby", vec![], "one");
    net.pump();
    let epoch = net.peers[b].core.epoch("lobby").unwrap().to_owned();
    let seen = net.peers[b].core.last_seq("lobby").unwrap();
    net.peers[b].core.send_msg("lobby", vec![], "two");
    net.pump();
    let mut c = Client::new("carol", [] as [&str; 0], "carol-");
    assert!(c.resume_session("not-a-token-of-this-server"));
    assert!(!c.set_last_seen("no room!", "e1", 1), "an invalid name");
    assert!(c.set_last_seen("lobby", epoch, seen));
    net.peers.push(Peer {
        core: c,
        conn: None,
        inbox: BytesMut::new(),
        decoder: FrameDecoder::default(),
        events: Vec::new(),
    });
    let c = net.peers.len() - 1;
    net.connect(c);
    net.pump();
    let p = &net.peers[c];
    assert!(p.events.iter().any(|e| matches!(
        e,
        ClientEvent::Joined { nick, resumed: false, .. } if nick == "carol"
    )));
    let token = p.core.session_token().expect("a new token");
    assert_ne!(token, "not-a-token-of-this-server");
    assert_eq!(texts(&net.shown(c), "bob"), ["two"]);
}

/// The id window a client keeps its unacknowledged messages within is the
/// one its server's `welcome` announced, else the default.
#[test]
fn the_id_window_is_the_one_the_server_announced() {
    let mut c = Client::new("alice", ["lobby"], "a-");
    assert_eq!(c.id_window(), DEFAULT_ID_WINDOW, "before any welcome");
    c.handle_connected(0);
    c.handle_frame(0, fresh_welcome());
    assert_eq!(
        c.id_window(),
        DEFAULT_ID_WINDOW,
        "a server that does not say"
    );
    c.handle_disconnected();
    c.handle_connected(10);
    let small = Limits::new(65_536, 64, 500, 200).with_id_window(3);
    c.handle_frame(10, welcome_with(true, small));
    assert_eq!(c.id_window(), 3);
    c.handle_disconnected();
    c.handle_connected(20);
    let none = Limits::new(65_536, 64, 500, 200).with_id_window(0);
    c.handle_frame(20, welcome_with(true, none));
    assert_eq!(c.id_window(), 1, "never below one");
    let mut config = ServerConfig::default();
    config.id_window = 7;
    assert_eq!(config.limits().id_window, Some(7), "announced");
}

/// Neither core prints a session's token in its `Debug` (a log of it
/// would hand the session to whoever reads the log): not once joined,
/// not with a `join` that carries it waiting to be sent, not with a
/// `welcome` that carries it waiting to go out.
#[test]
fn debug_output_never_shows_a_session_token() {
    let mut net = Net::new();
    let a = net.add("alice", &["lobby"]);
    let token = net.peers[a]
        .core
        .session_token()
        .expect("joined")
        .to_owned();
    let shown = |net: &Net| format!("{:?} {:?}", net.server, net.peers[a].core);
    assert!(!shown(&net).contains(&token), "{}", shown(&net));
    // The connection lost; the new one's join (with the token) waits in
    // the client, and the server's welcome for it waits in the server.
    let old = net.peers[a].conn.take().expect("connected");
    net.peers[a].core.handle_disconnected();
    net.server.handle_disconnect(net.now(), old);
    net.drain_server(false);
    net.peers[a].core.handle_connected(net.mono);
    assert!(!shown(&net).contains(&token), "{}", shown(&net));
    let id = net.server.handle_connect(net.now());
    let join = loop {
        match net.peers[a].core.poll() {
            Some(ClientOutput::Send(f)) if matches!(f, ClientFrame::Join { .. }) => break f,
            Some(_) => {}
            None => panic!("no join"),
        }
    };
    // Nor do the frames and outputs a shell would log: the `join` that
    // carries it, the server's output that carries its `welcome`.
    let logged = format!("{join:?} {:?}", ClientOutput::Send(join.clone()));
    assert!(!logged.contains(&token), "{logged}");
    assert!(logged.contains("<redacted>"), "{logged}");
    net.server.handle_frame(net.now(), id, join);
    assert!(net.server.outputs_waiting() > 0, "the welcome waits");
    assert!(!shown(&net).contains(&token), "{}", shown(&net));
    let mut welcomed = false;
    while let Some(out) = net.server.poll() {
        let logged = format!("{out:?}");
        assert!(!logged.contains(&token), "{logged}");
        welcomed |= logged.contains("\"welcome\"");
    }
    assert!(welcomed, "the welcome was among the outputs");
}

/// A message settled by the frame that also released it is not sent: a
/// page answering two waiting messages at once (a broken server's: an
/// honest one sends a message's id only on its sender's copies of it)
/// settles the first, whose room's `part` then lets the room the second
/// waits for be entered and the second handed out; the second's answer
/// in the same page took it off the waiting list, and its frame must go
/// too. Found by the `client` fuzz target ("a-2 sent, not pending").
#[test]
fn a_message_settled_by_the_page_that_released_it_is_not_sent() {
    let mut c = Client::new("alice", ["lobby", "rust"], "a-");
    let first = c.send_msg("rust", vec![], "one");
    c.part("rust");
    let second = c.send_msg("lobby", vec![], "two");
    c.handle_connected(0);
    c.handle_frame(0, fresh_welcome());
    // rust entered again to send "one"; the lobby waits for its part.
    assert_eq!(outputs(&mut c), ["enter rust", "msg one"]);
    let answer = |seq: u64, room: &str, text: &str, id: &str| {
        ServerFrame::msg(
            Some(room.into()),
            seq,
            "alice",
            vec![],
            text,
            T0,
            Some(id.into()),
        )
        .into_replay()
    };
    c.handle_frame(
        0,
        ServerFrame::history(
            "rust",
            vec![
                answer(1, "rust", "one", &first),
                answer(2, "lobby", "two", &second),
            ],
            false,
        ),
    );
    let out = outputs(&mut c);
    assert!(
        !out.iter().any(|o| o == "msg two"),
        "a settled message was sent: {out:?}"
    );
    assert_eq!(c.unacknowledged(), 0);
    assert!(out.iter().any(|o| o == "part rust"), "{out:?}");
}

/// A room being parted (its `part` waits for a message's answer) keeps
/// what comes meanwhile, to tell if it is entered again. When its
/// history begins anew (a reconnect to a server restarted without it),
/// what was kept is of the old history, whose seqs the new one gives
/// again: it is let go, and entering tells of a gap, not of two messages
/// at one seq, the old one after the new room's `entered` (found by the
/// `client` fuzz target, with a broken server's message before the
/// room's `entered`).
#[test]
fn what_a_parted_room_kept_goes_when_its_history_begins_anew() {
    let mut c = parting_rust();
    let bob = |seq: u64, text: &str| {
        ServerFrame::msg(Some("rust".into()), seq, "bob", vec![], text, T0, None)
    };
    c.handle_frame(0, bob(2, "old two"));
    outputs(&mut c);
    c.handle_disconnected();
    c.handle_connected(1);
    c.handle_frame(1, fresh_welcome());
    c.handle_frame(
        1,
        ServerFrame::entered("rust", "e2", 1, 1, vec!["alice".into()], false),
    );
    c.handle_frame(1, bob(2, "new two"));
    outputs(&mut c);
    c.enter("rust");
    assert_eq!(
        outputs(&mut c),
        ["entered rust true", "rust: bob: new two"],
        "the old history's kept message is let go, and a gap told"
    );
}

/// Every frame `c` put out on the connection, as `KIND` or `msg ID TEXT`,
/// and whether it called the connection dead; drained.
fn wire_and_dead(c: &mut Client) -> (Vec<String>, bool) {
    let (frames, events) = drain(c);
    let frames = frames
        .iter()
        .map(|f| match f {
            ClientFrame::Msg { id, text, .. } => {
                format!("msg {} {text}", id.as_deref().unwrap_or(""))
            }
            ClientFrame::Ping => "ping".into(),
            ClientFrame::Pong => "pong".into(),
            ClientFrame::Join { .. } => "join".into(),
            ClientFrame::Enter { room, .. } => format!("enter {room}"),
            other => format!("{other:?}"),
        })
        .collect();
    (
        frames,
        events.iter().any(|e| matches!(e, ClientEvent::Dead)),
    )
}

/// A connection black-holed (no FIN, no RST: what alice sends vanishes
/// and nothing comes) is found by the client's own keepalive: a ping
/// after 15 s of silence, dead 15 s later when nothing answered, 30 s
/// after the last frame heard (the server takes 40 s), not 60. The
/// reconnect then resumes the session and resends the message typed
/// into the hole, under its id.
#[test]
fn a_black_holed_connection_is_found_dead_within_30_s_and_its_message_resent() {
    let mut c = alice_in_lobby();
    drain(&mut c);
    let heard = 1_000;
    c.handle_frame(heard, ServerFrame::Pong);
    c.send_msg("lobby", vec![], "into the hole");
    assert_eq!(wire_and_dead(&mut c).0, ["msg a-1 into the hole"]);
    let mut at = heard;
    let mut seen = Vec::new();
    for _ in 0..10 {
        let Some(next) = c.poll_timeout() else { break };
        assert!(next > at, "time goes on: {next} after {at}");
        at = next;
        c.handle_timeout(at);
        let (frames, dead) = wire_and_dead(&mut c);
        seen.push((at - heard, frames, dead));
        if dead {
            break;
        }
    }
    assert_eq!(
        seen,
        [
            (15_000, vec!["ping".to_owned()], false),
            (30_000, vec![], true),
        ]
    );
    assert_eq!(
        (CLIENT_PING_AFTER_MS, CLIENT_DEAD_AFTER_MS),
        (15_000, 15_000),
        "the defaults"
    );
    assert_eq!(c.poll_timeout(), None, "offline: no timer");
    assert_eq!(c.unacknowledged(), 1, "kept to send again");
    c.handle_connected(at + 500);
    assert_eq!(wire_and_dead(&mut c).0, ["join"]);
    c.handle_frame(
        at + 600,
        welcome_with(true, Limits::new(65_536, 64, 500, 200)),
    );
    c.handle_frame(at + 600, lobby_entered());
    let (frames, _) = wire_and_dead(&mut c);
    assert_eq!(
        frames
            .iter()
            .filter(|f| f.starts_with("msg"))
            .collect::<Vec<_>>(),
        ["msg a-1 into the hole"],
        "{frames:?}"
    );
}

/// The keepalive's two times are settings: with a ping after 4 s and
/// death 2 s after, a silent connection is dead 6 s after the last frame
/// heard; any frame heard after the ping answers it, and the silence is
/// counted again from there.
#[test]
fn the_keepalive_times_are_set_and_any_frame_answers_the_ping() {
    let mut c = alice_in_lobby();
    c.set_keepalive(4_000, 2_000);
    drain(&mut c);
    assert_eq!(c.poll_timeout(), Some(4_000));
    c.handle_timeout(4_000);
    assert_eq!(wire_and_dead(&mut c), (vec!["ping".to_owned()], false));
    assert_eq!(c.poll_timeout(), Some(6_000));
    // Not a pong: a message of bob's, late, proves the link alive too.
    c.handle_frame(
        5_500,
        ServerFrame::msg(Some("lobby".into()), 2, "bob", vec![], "hi", T0, None),
    );
    drain(&mut c);
    assert_eq!(c.poll_timeout(), Some(9_500));
    c.handle_timeout(9_500);
    assert_eq!(wire_and_dead(&mut c), (vec!["ping".to_owned()], false));
    c.handle_timeout(11_499);
    assert_eq!(wire_and_dead(&mut c), (vec![], false));
    c.handle_timeout(11_500);
    assert_eq!(wire_and_dead(&mut c), (vec![], true));
}

/// A server whose answers wait (a cluster's log away: the echo of
/// alice's message and the pong of her ping wait for it) sends a `ping`
/// of its own every few seconds: each is heard as proof of life, even
/// while her own ping is unanswered, and answered with a `pong`. The
/// connection is not called dead however long the answers take.
#[test]
fn a_servers_ping_while_the_clients_goes_unanswered_keeps_the_link_alive() {
    let mut c = alice_in_lobby();
    drain(&mut c);
    c.handle_frame(1_000, ServerFrame::Pong);
    c.send_msg("lobby", vec![], "waits for the log");
    assert_eq!(wire_and_dead(&mut c).0, ["msg a-1 waits for the log"]);
    // Her own ping after 15 s heard nothing, unanswered.
    c.handle_timeout(1_000 + CLIENT_PING_AFTER_MS);
    assert_eq!(wire_and_dead(&mut c), (vec!["ping".to_owned()], false));
    // The server's pings, every 5 s from then on for a minute.
    let mut at = 1_000 + CLIENT_PING_AFTER_MS;
    for _ in 0..12 {
        at += 5_000;
        c.handle_timeout(at - 1);
        assert_eq!(wire_and_dead(&mut c), (vec![], false), "at {at}");
        c.handle_frame(at, ServerFrame::Ping);
        assert_eq!(wire_and_dead(&mut c), (vec!["pong".to_owned()], false));
    }
    assert!(
        c.poll_timeout().is_some_and(|t| t > at),
        "nothing due: the last frame heard was at {at}"
    );
    assert_eq!(c.unacknowledged(), 1, "its echo still to come");
}

/// The `closed_for` of `c`'s `Joined` events, in order.
fn joined_closed_for(c: &mut Client) -> Vec<Option<ErrorCode>> {
    let mut got = Vec::new();
    while let Some(out) = c.poll() {
        if let ClientOutput::Event(ClientEvent::Joined { closed_for, .. }) = out {
            got.push(closed_for);
        }
    }
    got
}

/// A resume's `welcome` that says why the server closed the connection
/// before (`closed_for`) is told in the `Joined` event, unless the
/// `error` frame that said it arrived on that connection (then it was
/// told as that error). Only a resume says it.
#[test]
fn why_the_server_closed_the_last_connection_is_told_once() {
    let resumed_after = |code| {
        ServerFrame::welcome("alice", 0, vec![], Some("t".into()), Some(true), None)
            .with_closed_for(Some(code))
    };
    let mut c = alice_in_lobby();
    joined_closed_for(&mut c);
    // The error never arrived: the socket was full.
    c.handle_disconnected();
    c.handle_connected(1);
    c.handle_frame(1, resumed_after(ErrorCode::SlowConsumer));
    assert_eq!(joined_closed_for(&mut c), [Some(ErrorCode::SlowConsumer)]);
    // It arrived: said once, by the error.
    c.handle_frame(1, ServerFrame::error(ErrorCode::SlowConsumer, "too slow"));
    c.handle_disconnected();
    c.handle_connected(2);
    c.handle_frame(2, resumed_after(ErrorCode::SlowConsumer));
    assert_eq!(joined_closed_for(&mut c), [None]);
    // A fresh session's welcome says nothing of the one before.
    c.handle_disconnected();
    c.handle_connected(3);
    c.handle_frame(3, fresh_welcome().with_closed_for(Some(ErrorCode::Timeout)));
    assert_eq!(joined_closed_for(&mut c), [None]);
}

/// Which of the messages not acknowledged may have reached the server:
/// one written to the connection (open, or lost since with no answer)
/// may have; one typed while offline never left the client.
#[test]
fn a_message_never_written_is_told_apart_from_one_that_may_have_arrived() {
    let arrived = |c: &Client| -> Vec<(String, bool)> {
        c.pending()
            .map(|p| (p.text.to_owned(), p.may_have_arrived))
            .collect()
    };
    let mut c = alice_in_lobby();
    drain(&mut c);
    c.send_msg("lobby", vec![], "written");
    drain(&mut c);
    assert_eq!(arrived(&c), [("written".to_owned(), true)]);
    c.handle_disconnected();
    c.send_msg("lobby", vec![], "typed offline");
    drain(&mut c);
    assert_eq!(
        arrived(&c),
        [
            ("written".to_owned(), true),
            ("typed offline".to_owned(), false)
        ]
    );
    // Connected again but not joined yet: still not sent.
    c.handle_connected(10);
    drain(&mut c);
    assert_eq!(arrived(&c)[1], ("typed offline".to_owned(), false));
}

/// What `c` put out: each frame (as it encodes with the client's own
/// limit, which every one must fit) and each event.
fn encoded_and_events(c: &mut Client) -> (Vec<ClientFrame>, Vec<ClientEvent>) {
    let (mut frames, mut events) = (Vec::new(), Vec::new());
    let max = c.max_frame_bytes();
    while let Some(o) = c.poll() {
        match o {
            ClientOutput::Send(f) => {
                if let Err(e) = encode(&f, max) {
                    panic!("a frame that does not fit {max} bytes: {e}");
                }
                frames.push(f);
            }
            ClientOutput::Event(e) => events.push(e),
            other => panic!("{other:?}"),
        }
    }
    (frames, events)
}

/// A nickname longer than any server takes (70,000 characters, from a
/// command line say) is not sent in a frame no shell can encode: the
/// join is refused at once, `nick_invalid` saying how long it is, and the
/// connection takes another nickname. A token too long to send (a shell's
/// saved file gone wrong) is left out of the join: a new session.
#[test]
fn a_join_that_would_not_fit_a_frame_is_refused_or_sent_without_its_token() {
    let mut c = Client::new("n".repeat(70_000), ["lobby"], "a-");
    c.handle_connected(0);
    let (frames, events) = encoded_and_events(&mut c);
    assert!(frames.is_empty(), "{frames:?}");
    assert!(
        matches!(
            &events[..],
            [ClientEvent::Refused { code: ErrorCode::NickInvalid, message, .. }]
                if message.contains("70000 characters")
        ),
        "{events:?}"
    );
    assert!(c.join_as("alice"));
    let (frames, _) = encoded_and_events(&mut c);
    assert!(
        matches!(&frames[..], [ClientFrame::Join { nick, .. }] if nick == "alice"),
        "{frames:?}"
    );
    // Offline, the next connection's join is refused the same way.
    c.handle_disconnected();
    assert!(c.join_as("é".repeat(33)));
    c.handle_connected(1);
    let (frames, events) = encoded_and_events(&mut c);
    assert!(frames.is_empty(), "{frames:?}");
    assert!(
        matches!(
            &events[..],
            [ClientEvent::Refused {
                code: ErrorCode::NickInvalid,
                ..
            }]
        ),
        "{events:?}"
    );

    let mut c = Client::new("alice", ["lobby"], "a-");
    assert!(c.resume_session("t".repeat(70_000)));
    c.handle_connected(0);
    let (frames, _) = encoded_and_events(&mut c);
    assert!(
        matches!(&frames[..], [ClientFrame::Join { resume: None, .. }]),
        "{frames:?}"
    );
    assert_eq!(c.session_token(), None);
}

/// A history page of a room whose name breaks the rule (70,000
/// characters long) is not asked for in a frame no shell can encode: it
/// is answered at once with `room_invalid` naming the room, as an
/// `enter` of it is.
#[test]
fn a_history_request_for_a_room_name_that_breaks_the_rule_is_refused_at_once() {
    let mut c = alice_in_lobby();
    encoded_and_events(&mut c);
    let long = "r".repeat(70_000);
    c.history(&long, None, Some(10));
    let (frames, events) = encoded_and_events(&mut c);
    assert!(frames.is_empty(), "{frames:?}");
    assert!(
        matches!(
            &events[..],
            [ClientEvent::Error { code: ErrorCode::RoomInvalid, id: None, room: Some(r), .. }]
                if *r == long
        ),
        "{events:?}"
    );
    c.history("Lobby", None, Some(10));
    let (frames, _) = encoded_and_events(&mut c);
    assert!(
        matches!(&frames[..], [ClientFrame::History { room, .. }] if room == "lobby"),
        "{frames:?}"
    );
}

/// A `history` of a room not entered yet is refused `not_in_room` (with
/// the room, no id); the room's `enter`, sent after it, goes on: a `part`
/// waiting for a message's answer in that room still goes once the room
/// is entered (it was dropped: the refusal took the room out of those
/// being entered, so the server kept alice in a room she had left).
#[test]
fn a_history_refused_before_an_enter_does_not_end_that_entering() {
    let mut net = Net::new();
    let a = net.add("alice", &["lobby"]);
    let c = &mut net.peers[a].core;
    c.history("rust", None, None);
    c.send_msg("rust", vec![], "early");
    c.enter("rust");
    c.part("rust");
    net.pump();
    assert!(
        !net.peers[a].core.rooms().any(|r| r == "rust"),
        "{:?}",
        net.peers[a].core.rooms().collect::<Vec<_>>()
    );
    // Left on the server too: entering it again is not `already_in_room`.
    net.peers[a].core.enter("rust");
    net.pump();
    let errors: Vec<ErrorCode> = net.peers[a]
        .events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Error { code, .. } => Some(*code),
            _ => None,
        })
        .collect();
    assert!(!errors.contains(&ErrorCode::AlreadyInRoom), "{errors:?}");
    assert!(net.peers[a].core.rooms().any(|r| r == "rust"));
}

/// An error with a code this client does not know, naming a room being
/// entered and no id, is the failure of that `enter` (PROTOCOL.md 6): the
/// room is not entered, and a message held for its replay (a fresh
/// session after a message written on the earlier one) goes on its own
/// (it waited for ever: no replay was coming).
#[test]
fn an_enter_refused_with_a_code_not_known_is_not_entered() {
    let mut c = alice_in_lobby();
    c.send_msg("lobby", vec![], "hello");
    while c.poll().is_some() {}
    c.handle_disconnected();
    c.handle_connected(10);
    c.handle_frame(10, fresh_welcome());
    let (frames, _) = drain(&mut c);
    assert!(
        !frames.iter().any(|f| matches!(f, ClientFrame::Msg { .. })),
        "held for the replay: {frames:?}"
    );
    let refusal = r#"{"type":"error","code":"room_closed","message":"no","room":"lobby"}"#;
    let refusal = chatproto::parse_payload::<ServerFrame>(refusal.as_bytes()).unwrap();
    c.handle_frame(10, refusal);
    let (frames, events) = drain(&mut c);
    assert!(!c.rooms().any(|r| r == "lobby"), "{events:?}");
    assert!(
        frames.iter().any(|f| matches!(f, ClientFrame::Msg { .. }))
            || events
                .iter()
                .any(|e| matches!(e, ClientEvent::Unconfirmed { .. })),
        "the held message neither sent nor told: {frames:?} {events:?}"
    );
}

/// A room parted while its `enter` was being answered: the names past
/// the `entered`'s own come in an `online` continuation, kept as they
/// are for a room entered, so the room taken back (entered again before
/// its `part` went) lists everyone (it lacked them until a reconnect).
#[test]
fn a_room_parted_while_entering_keeps_its_roster_continuation() {
    let mut c = alice_in_lobby();
    c.enter("rust");
    c.send_msg("rust", vec![], "pending");
    c.part("rust");
    c.handle_frame(
        0,
        ServerFrame::entered(
            "rust",
            "e1",
            5,
            1,
            vec!["alice".into(), "bob".into()],
            false,
        ),
    );
    let more = r#"{"type":"online","room":"rust","nicks":["carol","dave"]}"#;
    c.handle_frame(
        0,
        chatproto::parse_payload::<ServerFrame>(more.as_bytes()).unwrap(),
    );
    c.enter("rust");
    assert_eq!(c.roster("rust"), ["alice", "bob", "carol", "dave"]);
}
