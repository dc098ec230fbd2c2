//! `Server::poll` drained after each input or after several gives every
//! connection the same frames in the same order (the rule of the
//! `Server` docs). Its exceptions are left out: disconnects; and in a
//! memory server a room its last member leaves (forgotten or not,
//! depending on whether an entering was decided before the leaving was
//! applied), so parts and kicks run only on a durable server, whose
//! rooms stay.

use std::collections::BTreeMap;

use chatproto::{
    parse_payload, ClientFrame, ClientId, FramingError, Kick, Now, Output, Server, ServerConfig,
    ServerFrame,
};
use proptest::prelude::*;

const NICKS: [&str; 4] = ["alice", "bob", "carol", "dave"];
const ROOMS: [&str; 3] = ["lobby", "rust", "ops"];

#[derive(Debug, Clone)]
enum Op {
    Connect,
    /// A v1 join (`None`) or a v2 join entering these rooms.
    Join(usize, usize, Option<Vec<usize>>),
    Enter(usize, usize),
    Part(usize, usize),
    /// To everyone (empty) or to these nicknames.
    Msg(usize, usize, Vec<usize>),
    History(usize, usize),
    Rooms(usize),
    /// A payload that is not a frame.
    BadFrame(usize),
    /// The shell closes the connection (a framing error).
    Kick(usize),
    /// A v2 join resuming the last session welcomed as this nickname (a
    /// takeover if that session's connection is open), entering these
    /// rooms.
    Resume(usize, usize, Vec<usize>),
    /// The clocks move on this many seconds, timers run (a ping, a pong or
    /// join timeout).
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    op_in(4)
}

/// An op on one of the first `conns` connections.
fn op_in(conns: usize) -> impl Strategy<Value = Op> {
    let conn = 0..conns;
    let room = 0..ROOMS.len();
    prop_oneof![
        1 => Just(Op::Connect),
        2 => (conn.clone(), 0..NICKS.len(), prop::option::of(prop::collection::vec(room.clone(), 0..3)))
            .prop_map(|(c, n, r)| Op::Join(c, n, r)),
        2 => (conn.clone(), room.clone()).prop_map(|(c, r)| Op::Enter(c, r)),
        2 => (conn.clone(), room.clone()).prop_map(|(c, r)| Op::Part(c, r)),
        3 => (conn.clone(), room.clone(), prop::collection::vec(0..NICKS.len(), 0..3))
            .prop_map(|(c, r, to)| Op::Msg(c, r, to)),
        1 => (conn.clone(), room).prop_map(|(c, r)| Op::History(c, r)),
        1 => conn.clone().prop_map(Op::Rooms),
        1 => conn.clone().prop_map(Op::BadFrame),
        1 => conn.clone().prop_map(Op::Kick),
    ]
}

/// The ops above, with resumes and the clock moving on (durable only:
/// both close connections in the core).
fn op_more() -> impl Strategy<Value = Op> {
    let conn = 0..8usize;
    let room = 0..ROOMS.len();
    prop_oneof![
        8 => op_in(8),
        2 => Just(Op::Connect),
        4 => (conn, 0..2usize, prop::collection::vec(room, 0..3))
            .prop_map(|(c, n, r)| Op::Resume(c, n, r)),
        1 => prop_oneof![Just(5), Just(12), Just(31), Just(45)].prop_map(Op::Advance),
    ]
}

/// Run `ops` on a new server, draining after the ops whose flag is set
/// (and at the end); every connection's frames, in order.
fn run(ops: &[(Op, bool)], durable: bool) -> BTreeMap<ClientId, Vec<ServerFrame>> {
    run_with(ops, durable, None).0
}

/// As `run`; a `Resume` takes its token from `tokens` (by op) if given,
/// else from the welcomes drained so far. Also the token each op used.
fn run_with(
    ops: &[(Op, bool)],
    durable: bool,
    tokens: Option<&[Option<String>]>,
) -> (BTreeMap<ClientId, Vec<ServerFrame>>, Vec<Option<String>>) {
    let mut config = ServerConfig::default();
    config.durable = durable;
    run_config(ops, config, tokens)
}

/// As `run_with`, on a server with `config`.
fn run_config(
    ops: &[(Op, bool)],
    config: ServerConfig,
    tokens: Option<&[Option<String>]>,
) -> (BTreeMap<ClientId, Vec<ServerFrame>>, Vec<Option<String>>) {
    let mut server = Server::new(config, [7; 32]);
    let mut now = Now::new(1_000, 1_732_400_000_000);
    let mut conns: Vec<ClientId> = Vec::new();
    let mut got: BTreeMap<ClientId, Vec<ServerFrame>> = BTreeMap::new();
    let mut sent = 0u64;
    let mut used: Vec<Option<String>> = Vec::new();
    for (i, (op, drain)) in ops.iter().enumerate() {
        used.push(None);
        let frame = match op {
            Op::Resume(c, n, rooms) => {
                let token = match tokens {
                    Some(t) => t[i].clone(),
                    None => last_token(&got, NICKS[*n]),
                };
                used[i] = token.clone();
                Some((
                    *c,
                    ClientFrame::join_v2(
                        NICKS[*n],
                        rooms.iter().map(|&r| ROOMS[r].to_owned()).collect(),
                        token,
                    ),
                ))
            }
            Op::Advance(secs) => {
                let until = now.mono + secs * 1_000;
                while let Some(at) = server.poll_timeout().filter(|&at| at <= until) {
                    // A ping goes out (is polled) before its pong timeout
                    // can judge it (one still queued is not judged):
                    // drained before each timer, not after the last.
                    drain_into(&mut server, &mut got);
                    now = Now::new(at.max(now.mono), now.wall + (at.max(now.mono) - now.mono));
                    server.handle_timeout(now);
                }
                now = Now::new(until, now.wall + (until - now.mono));
                None
            }
            Op::Connect => {
                conns.push(server.handle_connect(now));
                None
            }
            Op::Join(c, n, rooms) => Some((
                *c,
                match rooms {
                    None => ClientFrame::join(NICKS[*n]),
                    Some(r) => ClientFrame::join_v2(
                        NICKS[*n],
                        r.iter().map(|&r| ROOMS[r].to_owned()).collect(),
                        None,
                    ),
                },
            )),
            Op::Enter(c, r) => Some((*c, ClientFrame::enter(ROOMS[*r], None))),
            Op::Part(c, r) => Some((*c, ClientFrame::part(ROOMS[*r]))),
            Op::Msg(c, r, to) => {
                sent += 1;
                let to = to.iter().map(|&n| NICKS[n].to_owned()).collect();
                let id = Some(format!("m{sent}"));
                Some((
                    *c,
                    ClientFrame::msg_in(ROOMS[*r], to, format!("text {sent}"), id),
                ))
            }
            Op::History(c, r) => Some((*c, ClientFrame::history(ROOMS[*r], None, Some(5)))),
            Op::Rooms(c) => Some((*c, ClientFrame::Rooms)),
            Op::BadFrame(c) => {
                if let Some(&client) = conns.get(*c) {
                    let bad = parse_payload::<ClientFrame>(b"not json").unwrap_err();
                    server.handle_bad_frame(now, client, &bad);
                }
                None
            }
            Op::Kick(c) => {
                if let Some(&client) = conns.get(*c) {
                    server.kick(now, client, Kick::Framing(FramingError::Empty));
                }
                None
            }
        };
        if let Some((c, frame)) = frame {
            if let Some(&client) = conns.get(c) {
                server.handle_frame(now, client, frame);
            }
        }
        if *drain {
            drain_into(&mut server, &mut got);
        }
    }
    drain_into(&mut server, &mut got);
    (got, used)
}

/// The token of the last `welcome` drained for `nick`.
fn last_token(got: &BTreeMap<ClientId, Vec<ServerFrame>>, nick: &str) -> Option<String> {
    // Connections are numbered in order: the last one's is the latest.
    got.values()
        .flat_map(|f| f.iter())
        .rev()
        .find_map(|f| match f {
            ServerFrame::Welcome {
                nick: n, session, ..
            } if n == nick => session.clone(),
            _ => None,
        })
}

fn drain_into(server: &mut Server, got: &mut BTreeMap<ClientId, Vec<ServerFrame>>) {
    while let Some(out) = server.poll() {
        match out {
            Output::Send { to, frame, .. } => got.entry(to).or_default().push(frame),
            Output::Deliver {
                event, to, with_id, ..
            } => {
                for &c in to {
                    got.entry(c)
                        .or_default()
                        .push(event.to_frame(with_id, false));
                }
            }
            // The last thing a closed connection gets.
            Output::Close { client, code, .. } => {
                let close = ServerFrame::error(code, format!("closed: {code:?}"));
                got.entry(client).or_default().push(close);
            }
            // Stored at once.
            Output::Persist { through, .. } => server.handle_persisted(through),
            other => panic!("the server asked for {other:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn draining_late_gives_every_connection_the_same_frames(
        ops in prop::collection::vec((op(), any::<bool>()), 1..40),
        durable in any::<bool>(),
    ) {
        let ops: Vec<(Op, bool)> = ops
            .into_iter()
            .filter(|(o, _)| durable || !matches!(o, Op::Part(..) | Op::Kick(..)))
            .collect();
        prop_assert_eq!(run(&each_drained(&ops), durable), run(&ops, durable));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// With resumes (takeovers among them) and timeouts too, on a durable
    /// server (each closes connections in the core).
    #[test]
    fn draining_late_gives_the_same_frames_with_resumes_and_timeouts(
        ops in prop::collection::vec((op_more(), any::<bool>()), 1..40),
    ) {
        let (each, tokens) = run_with(&each_drained(&ops), true, None);
        let (late, _) = run_with(&ops, true, Some(&tokens));
        prop_assert_eq!(each, late);
    }
}

fn each_drained(ops: &[(Op, bool)]) -> Vec<(Op, bool)> {
    ops.iter().map(|(o, _)| (o.clone(), true)).collect()
}

/// The case the property found: a `part` of lobby handled before the
/// join's `welcome` was polled made the welcome say the join entered no
/// lobby (`seq` 0, nobody online).
#[test]
fn a_part_before_the_welcome_is_polled_does_not_change_it() {
    let ops = [
        (Op::Connect, true),
        (Op::Join(0, 0, None), true),
        (Op::Connect, true),
        (Op::Join(1, 1, Some(vec![0])), false),
        (Op::Part(1, 0), false),
    ];
    let late = run(&ops, false);
    assert_eq!(run(&each_drained(&ops), false), late);
    let welcome = late.values().nth(1).and_then(|f| f.first()).cloned();
    match welcome {
        Some(ServerFrame::Welcome { seq, online, .. }) => {
            assert_eq!(
                (seq, online),
                (1, vec!["alice".to_owned(), "bob".to_owned()])
            )
        }
        other => panic!("not a welcome: {other:?}"),
    }
}

/// A join, a payload that is not a frame and a kick drained once gave
/// the kicked connection no `welcome` (built when reached, after the kick
/// had forgotten the connection); drained after each, it had one, first.
#[test]
fn a_welcome_queued_before_a_kick_goes_out_however_it_is_drained() {
    for durable in [false, true] {
        let ops = [
            (Op::Connect, true),
            (Op::Join(0, 0, None), false),
            (Op::BadFrame(0), false),
            (Op::Kick(0), false),
        ];
        let late = run(&ops, durable);
        assert_eq!(run(&each_drained(&ops), durable), late);
        let kinds: Vec<String> = late[&ClientId(0)]
            .iter()
            .map(|f| {
                // An error by its code.
                let v = serde_json::to_value(f).unwrap();
                v.get("code")
                    .unwrap_or(&v["type"])
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        // The last is the `Close`.
        assert_eq!(
            kinds,
            [
                "welcome",
                "presence",
                "bad_frame",
                "empty_frame",
                "empty_frame"
            ]
        );
    }
}

/// So do the answers to a `history` and a `rooms` asked before the kick,
/// and the echoes of a message and a part decided before it.
#[test]
fn answers_queued_before_a_kick_go_out_however_it_is_drained() {
    let ops = [
        (Op::Connect, true),
        (Op::Join(0, 0, Some(vec![0, 1])), true),
        (Op::Msg(0, 0, vec![]), true),
        (Op::Msg(0, 0, vec![0]), false),
        (Op::Part(0, 1), false),
        (Op::History(0, 0), false),
        (Op::Rooms(0), false),
        (Op::Kick(0), false),
    ];
    let late = run(&ops, true);
    assert_eq!(run(&each_drained(&ops), true), late);
}

/// `ops` drained once and drained after each (resumes taking the tokens
/// the latter saw), on a durable server.
fn both_ways(
    ops: &[(Op, bool)],
) -> (
    BTreeMap<ClientId, Vec<ServerFrame>>,
    BTreeMap<ClientId, Vec<ServerFrame>>,
) {
    let (each, tokens) = run_with(&each_drained(ops), true, None);
    let (late, _) = run_with(ops, true, Some(&tokens));
    (each, late)
}

/// A session taken over twice before the first connection's `Close` is
/// polled: the second takeover made the session forget the first
/// connection it was closing (`Session::closing` holds one), so that
/// connection lost the echo (with its id) of a message it sent before
/// the first takeover; drained after each, it had it.
#[test]
fn an_echo_decided_before_two_takeovers_goes_to_the_first_connection() {
    let ops = [
        (Op::Connect, true),
        (Op::Join(0, 0, Some(vec![1])), true),
        (Op::Msg(0, 1, vec![]), false),
        (Op::Connect, false),
        (Op::Resume(1, 0, vec![]), false),
        (Op::Connect, false),
        (Op::Resume(2, 0, vec![]), false),
    ];
    let (each, late) = both_ways(&ops);
    let echo = |got: &BTreeMap<ClientId, Vec<ServerFrame>>| {
        got[&ClientId(0)].iter().find_map(|f| match f {
            ServerFrame::Msg { id, .. } => Some(id.clone()),
            _ => None,
        })
    };
    assert_eq!(echo(&each), Some(Some("m1".to_owned())));
    assert_eq!(echo(&late), echo(&each));
    assert_eq!(late, each);
}

/// The same for a part decided before the first takeover: the first
/// connection saw its own part only if drained before the second.
#[test]
fn a_part_decided_before_two_takeovers_is_seen_by_the_first_connection() {
    let ops = [
        (Op::Connect, true),
        (Op::Join(0, 0, Some(vec![1])), true),
        (Op::Part(0, 1), false),
        (Op::Connect, false),
        (Op::Resume(1, 0, vec![]), false),
        (Op::Connect, false),
        (Op::Resume(2, 0, vec![]), false),
    ];
    let (each, late) = both_ways(&ops);
    assert_eq!(late, each);
}

/// And for a private message to the session decided before the first
/// takeover: the first connection, in the room, got it drained after
/// each; drained once the second takeover hid it.
#[test]
fn a_private_message_decided_before_two_takeovers_reaches_the_first_connection() {
    let ops = [
        (Op::Connect, true),
        (Op::Join(0, 0, Some(vec![1])), true),
        (Op::Connect, true),
        (Op::Join(1, 1, Some(vec![1])), true),
        (Op::Msg(1, 1, vec![0]), false),
        (Op::Connect, false),
        (Op::Resume(2, 0, vec![]), false),
        (Op::Connect, false),
        (Op::Resume(3, 0, vec![]), false),
    ];
    let (each, late) = both_ways(&ops);
    assert_eq!(late, each);
}

/// A durable server keeping 4 messages a room in memory, alice having
/// said 10 in lobby; alice asks for a `history` page reaching past
/// memory (answered by a read of the store), then is kicked, drained
/// after the kick or before it. The store answers each read at once, as
/// a synchronous store does: what `handle_page` gives alice.
fn page_for_kicked(drain_before_kick: bool) -> Option<(ClientId, Vec<ServerFrame>)> {
    let mut config = ServerConfig::default();
    config.durable = true;
    config.history_per_room = 4;
    let mut server = Server::new(config, [7; 32]);
    let now = Now::new(1_000, 1_732_400_000_000);
    let mut got = BTreeMap::new();
    let alice = server.handle_connect(now);
    server.handle_frame(now, alice, ClientFrame::join("alice"));
    for n in 0..10 {
        let frame = ClientFrame::msg_in("lobby", vec![], format!("m{n}"), Some(format!("id{n}")));
        server.handle_frame(now, alice, frame);
        drain_into(&mut server, &mut got);
    }
    server.handle_frame(now, alice, ClientFrame::history("lobby", None, Some(8)));
    let mut answered = None;
    let mut poll_all = |server: &mut Server| loop {
        let ticket = match server.poll() {
            None => break,
            Some(Output::Read { ticket, .. }) => ticket,
            Some(Output::Persist { through, .. }) => {
                server.handle_persisted(through);
                continue;
            }
            Some(_) => continue,
        };
        answered = Some(server.handle_page(ticket, Err("no store here".to_owned())));
    };
    if drain_before_kick {
        poll_all(&mut server);
    }
    server.kick(now, alice, Kick::Framing(FramingError::Empty));
    poll_all(&mut server);
    answered.expect("a read was asked")
}

/// Its `Output::Read` goes out before its `Close` either way, but drained
/// once the page is never given: `handle_page` looks for the asker among
/// the open connections, and the kick took it out (it is only among those
/// closing), so the shell that holds alice's frames behind the read is
/// told she is gone and her page is lost.
#[test]
fn a_history_read_asked_before_a_kick_is_answered_however_it_is_drained() {
    let each = page_for_kicked(true);
    assert!(matches!(&each, Some((_, f)) if matches!(f[..], [ServerFrame::History { .. }])));
    assert_eq!(page_for_kicked(false), each);
}

/// A server that keeps no detached session waiting (its session is
/// forgotten as its connection closes), durable.
fn forgetful() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.durable = true;
    config.max_detached_sessions = 0;
    config
}

/// A kicked connection whose session is forgotten at once (past
/// `max_detached_sessions`) before its `Close` is polled: its `welcome`
/// is kept for it (`Closing` holds what it says), but its echo (with the
/// id), its own part and a private message to it, decided before the
/// kick, are looked up through the session, gone, so drained once it
/// gets the message without its id and neither the part nor the private
/// message; drained after each, it had them.
#[test]
fn echoes_decided_before_a_kick_go_out_when_the_session_is_forgotten() {
    let ops = [
        (Op::Connect, true),
        (Op::Join(0, 0, Some(vec![0, 1])), true),
        (Op::Connect, true),
        (Op::Join(1, 1, Some(vec![0])), true),
        (Op::Msg(0, 0, vec![]), false),
        (Op::Msg(1, 0, vec![0]), false),
        (Op::Part(0, 1), false),
        (Op::Kick(0), false),
    ];
    let (each, _) = run_config(&each_drained(&ops), forgetful(), None);
    let (late, _) = run_config(&ops, forgetful(), None);
    assert_eq!(late[&ClientId(0)], each[&ClientId(0)]);
}

/// A closed connection's `welcome` names it by the nickname it joined
/// with, then lists the session by the spelling a later takeover resumed
/// it with ("Alice" for "alice"): `online` is built from the session as
/// it is now, the rest from what the close kept. Drained after each, the
/// welcome went out before the takeover and said "alice" both times.
fn welcome_of_a_connection_taken_over(drain_before_takeover: bool) -> ServerFrame {
    let mut config = ServerConfig::default();
    config.durable = true;
    let mut server = Server::new(config, [7; 32]);
    let now = Now::new(1_000, 1_732_400_000_000);
    let mut got = BTreeMap::new();
    let first = server.handle_connect(now);
    server.handle_frame(now, first, ClientFrame::join("alice"));
    drain_into(&mut server, &mut got);
    let token = last_token(&got, "alice");
    let second = server.handle_connect(now);
    let join = ClientFrame::join_v2("alice", vec!["lobby".to_owned()], token.clone());
    server.handle_frame(now, second, join);
    if drain_before_takeover {
        drain_into(&mut server, &mut got);
    }
    let third = server.handle_connect(now);
    let join = ClientFrame::join_v2("Alice", vec!["lobby".to_owned()], token);
    server.handle_frame(now, third, join);
    drain_into(&mut server, &mut got);
    got[&second][0].clone()
}

#[test]
fn a_closed_connections_welcome_lists_it_as_it_joined() {
    let each = welcome_of_a_connection_taken_over(true);
    let ServerFrame::Welcome { nick, online, .. } = &each else {
        panic!("not a welcome: {each:?}");
    };
    assert_eq!(
        (nick.as_str(), &online[..]),
        ("alice", &["alice".to_owned()][..])
    );
    assert_eq!(welcome_of_a_connection_taken_over(false), each);
}

/// A server, durable or not, that alice then bob joined with
/// `join(nick)`, drained: the server, the instant it was told all at,
/// what each connection got, alice's and bob's.
fn alice_and_bob(
    durable: bool,
    join: impl Fn(&'static str) -> ClientFrame,
) -> (
    Server,
    Now,
    BTreeMap<ClientId, Vec<ServerFrame>>,
    ClientId,
    ClientId,
) {
    let mut config = ServerConfig::default();
    config.durable = durable;
    let mut server = Server::new(config, [7; 32]);
    let now = Now::new(1_000, 1_732_400_000_000);
    let mut got = BTreeMap::new();
    let alice = server.handle_connect(now);
    server.handle_frame(now, alice, join("alice"));
    let bob = server.handle_connect(now);
    server.handle_frame(now, bob, join("bob"));
    drain_into(&mut server, &mut got);
    (server, now, got, alice, bob)
}

/// alice parts #rust and her connection closes (the shell's
/// `handle_disconnect`) before the part is applied: #rust is no longer
/// among her session's rooms, but her connection was still in #rust's
/// fan-out until then, so bob's message there, decided before the part
/// and drained after the disconnect, was delivered to the closed
/// connection. It goes to bob alone, and so does alice's part.
#[test]
fn a_connection_closed_with_its_part_not_applied_gets_no_event() {
    for durable in [false, true] {
        let in_rust = |nick: &str| ClientFrame::join_v2(nick, vec!["rust".into()], None);
        let (mut server, now, mut got, alice, bob) = alice_and_bob(durable, in_rust);
        let before = got[&alice].len();
        let said = ClientFrame::msg_in("rust", vec![], "before the part", None);
        server.handle_frame(now, bob, said);
        server.handle_frame(now, alice, ClientFrame::part("rust"));
        server.handle_disconnect(now, alice);
        drain_into(&mut server, &mut got);
        assert_eq!(got[&alice][before..], [], "durable {durable}");
        let bobs: Vec<String> = got[&bob]
            .iter()
            .filter_map(|f| match f {
                ServerFrame::Msg { text, .. } => Some(text.clone()),
                ServerFrame::Presence {
                    room, nick, status, ..
                } if room.as_deref() == Some("rust") => Some(format!("{nick} {status:?}")),
                _ => None,
            })
            .collect();
        assert_eq!(
            bobs[bobs.len() - 2..],
            ["before the part", "alice Offline"],
            "durable {durable}"
        );
    }
}

/// The shell says a connection closed (its socket failed) while the core
/// is closing it, its `Close` not polled yet: no event goes to it after
/// that, not even those decided before the kick (bob's message, here).
/// Before, a disconnect of a connection the core was closing did
/// nothing, and it stayed in its rooms until its `Close`.
#[test]
fn a_connection_disconnected_while_the_core_closes_it_gets_no_event() {
    for durable in [false, true] {
        let (mut server, now, mut got, alice, bob) = alice_and_bob(durable, ClientFrame::join);
        let before = got[&alice].len();
        let said = ClientFrame::msg_in("lobby", vec![], "before the kick", None);
        server.handle_frame(now, bob, said);
        server.kick(now, alice, Kick::RateLimited);
        server.handle_disconnect(now, alice);
        drain_into(&mut server, &mut got);
        let events = got[&alice][before..]
            .iter()
            .filter(|f| matches!(f, ServerFrame::Msg { .. } | ServerFrame::Presence { .. }));
        assert_eq!(events.count(), 0, "durable {durable}: {:?}", got[&alice]);
        let bobs = got[&bob].iter().filter(|f| match f {
            ServerFrame::Msg { text, .. } => text == "before the kick",
            ServerFrame::Presence { nick, .. } => nick == "alice",
            _ => false,
        });
        // The message and her leaving (bob joined after her entering).
        assert_eq!(bobs.count(), 2, "durable {durable}: {:?}", got[&bob]);
    }
}
