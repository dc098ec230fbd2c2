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
}

fn op() -> impl Strategy<Value = Op> {
    let conn = 0..4usize;
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
        1 => conn.prop_map(Op::Kick),
    ]
}

/// Run `ops` on a new server, draining after the ops whose flag is set
/// (and at the end); every connection's frames, in order.
fn run(ops: &[(Op, bool)], durable: bool) -> BTreeMap<ClientId, Vec<ServerFrame>> {
    let mut config = ServerConfig::default();
    config.durable = durable;
    let mut server = Server::new(config, [7; 32]);
    let now = Now::new(1_000, 1_732_400_000_000);
    let mut conns: Vec<ClientId> = Vec::new();
    let mut got: BTreeMap<ClientId, Vec<ServerFrame>> = BTreeMap::new();
    let mut sent = 0u64;
    for (op, drain) in ops {
        let frame = match op {
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
    got
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
