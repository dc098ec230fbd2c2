//! The walks: each operation run against the real `Server` and the model, frames compared.

use std::collections::BTreeSet;

use chatproto::testkit::Sim;
use chatproto::{ClientFrame, ErrorCode, Kick, ServerFrame};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use crate::checks::{since_of, Checks};
use crate::ops::{op, Op};
use crate::{config, msg_id, Model, Stats, JOIN_POOL, RESUME_WINDOW, ROOM_POOL, START, TO_POOL};

fn check(ops: &[Op]) -> Result<Stats, TestCaseError> {
    let mut sim = Sim::new(config(), START);
    let mut model = Model::new();
    let mut checks = Checks::default();
    for (n, op) in ops.iter().enumerate() {
        let count = model.clients.len();
        // An operation goes to connection `c` if it is open, else to an
        // open one (a closed one ignores everything); a resume may pick
        // any connection that ever joined.
        let open: Vec<usize> = (0..count).filter(|&i| model.clients[i].open).collect();
        let pick = |c: &usize| match open.len() {
            _ if *c < count && model.clients[*c].open => Some(*c),
            0 => (count > 0).then(|| c % count),
            n => Some(open[c % n]),
        };
        let pick_any = |c: &usize| (count > 0).then(|| c % count);
        let text = format!("text {n}");
        match op {
            Op::Connect => {
                sim.connect();
                model.connect();
            }
            Op::Join(c, p) => {
                if let Some(i) = pick(c) {
                    sim.join(i, JOIN_POOL[*p].0);
                    if model.heard(i) {
                        model.join(i, *p, None, None);
                    }
                }
            }
            Op::JoinV2(c, p, rooms) => {
                if let Some(i) = pick(c) {
                    let rooms: Vec<&str> = rooms.iter().map(|&r| ROOM_POOL[r]).collect();
                    for r in &rooms {
                        checks.entering(i, r, None);
                    }
                    let owned = rooms.iter().map(|r| r.to_string()).collect();
                    sim.send(i, ClientFrame::join_v2(JOIN_POOL[*p].0, owned, None));
                    if model.heard(i) {
                        model.join(i, *p, Some(rooms), None);
                    }
                }
            }
            Op::Leave(c) => {
                if let Some(i) = pick(c) {
                    sim.disconnect(i);
                    if model.clients[i].open {
                        model.close(i, None);
                    }
                }
            }
            Op::End(c) => {
                if let Some(i) = pick(c) {
                    // Everything it sent is answered at once here (the
                    // store is not held): closed as by a disconnect.
                    sim.end(i);
                    prop_assert!(
                        !sim.clients[i].open || !model.clients[i].open,
                        "closed once answered"
                    );
                    if model.clients[i].open {
                        model.close(i, None);
                    }
                }
            }
            Op::Kick(c) => {
                if let Some(i) = pick(c) {
                    sim.kick(i, Kick::RateLimited);
                    if model.clients[i].open {
                        model.close(i, Some(ErrorCode::RateLimited));
                    }
                }
            }
            Op::Msg(c, to) => {
                if let Some(i) = pick(c) {
                    let to: Vec<&str> = to.iter().map(|&t| TO_POOL[t]).collect();
                    sim.msg(i, &to, &text);
                    if model.heard(i) {
                        model.msg(i, None, &to, text, None);
                    }
                }
            }
            Op::MsgIn(c, r, to, id) => {
                if let Some(i) = pick(c) {
                    let to: Vec<&str> = to.iter().map(|&t| TO_POOL[t]).collect();
                    let id = id.map(msg_id);
                    let owned = to.iter().map(|t| t.to_string()).collect();
                    sim.send(
                        i,
                        ClientFrame::msg_in(ROOM_POOL[*r], owned, text.clone(), id.clone()),
                    );
                    if model.heard(i) {
                        model.msg(i, Some(ROOM_POOL[*r]), &to, text, id);
                    }
                }
            }
            Op::Enter(c, r, with_since) => {
                if let Some(i) = pick(c) {
                    let raw = ROOM_POOL[*r];
                    let since = since_of(&model, &checks, i, raw).filter(|_| *with_since);
                    checks.entering(i, raw, since.as_ref().map(|s| s.1.clone()));
                    let (ours, real) = since.unzip();
                    sim.send(i, ClientFrame::enter(raw, real));
                    if model.heard(i) {
                        model.enter(i, raw, ours, false);
                    }
                }
            }
            Op::Part(c, r) => {
                if let Some(i) = pick(c) {
                    sim.send(i, ClientFrame::part(ROOM_POOL[*r]));
                    if model.heard(i) {
                        model.part(i, ROOM_POOL[*r]);
                    }
                }
            }
            Op::History(c, r, before, limit) => {
                if let Some(i) = pick(c) {
                    sim.send(i, ClientFrame::history(ROOM_POOL[*r], *before, *limit));
                    if model.heard(i) {
                        model.history(i, ROOM_POOL[*r], *before, *limit);
                    }
                }
            }
            Op::Rooms(c) => {
                if let Some(i) = pick(c) {
                    sim.send(i, ClientFrame::Rooms);
                    if model.heard(i) {
                        model.rooms(i);
                    }
                }
            }
            Op::Resume(c, other, cut) => {
                let Some(i) = pick_any(c) else { continue };
                let Some(s) = model.clients[i].session else {
                    continue;
                };
                // The client comes back from its session's latest connection.
                let i = (0..count)
                    .rev()
                    .find(|&k| model.clients[k].session == Some(s))
                    .expect("i itself");
                let nick = model.clients[i].nick.clone().expect("welcomed");
                let p = match other {
                    // Another nickname: a fresh session, not an error. (A
                    // case variant of the same one is left out: the
                    // testkit's own check compares the sender's nick
                    // case-sensitively.)
                    Some(p)
                        if JOIN_POOL[*p].1 == Some(model.sessions[s].key.as_str())
                            && JOIN_POOL[*p].0 != nick =>
                    {
                        continue
                    }
                    Some(p) => *p,
                    None => JOIN_POOL
                        .iter()
                        .position(|p| p.0 == nick)
                        .expect("a pool nick"),
                };
                let token = sim.clients[i].session.clone().expect("the welcome's token");
                if *cut {
                    sim.disconnect(i);
                    if model.clients[i].open {
                        model.close(i, None);
                    }
                }
                let j = sim.connect();
                model.connect();
                sim.send(j, ClientFrame::join_v2(JOIN_POOL[p].0, vec![], Some(token)));
                model.heard(j);
                model.join(j, p, Some(vec![]), Some(s));
                // Re-enter the rooms the old connection was in, from the last
                // seq it saw where it knows the room's epoch.
                for room in model.clients[i].rooms.clone() {
                    let since = since_of(&model, &checks, i, &room);
                    checks.entering(j, &room, since.as_ref().map(|s| s.1.clone()));
                    let (ours, real) = since.unzip();
                    sim.send(j, ClientFrame::enter(room.clone(), real));
                    model.heard(j);
                    model.enter(j, &room, ours, false);
                }
            }
            Op::Ping(c) => {
                if let Some(i) = pick(c) {
                    sim.send(i, ClientFrame::Ping);
                    if model.heard(i) {
                        model.push(i, ServerFrame::Pong);
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
                model.advance(*ms);
            }
        }
        for i in 0..model.clients.len() {
            let real = sim.take(i);
            let want = std::mem::take(&mut model.clients[i].out);
            checks
                .frames(i, &real, &want, &model)
                .map_err(|e| TestCaseError::fail(format!("after op {n} {op:?}: {e}")))?;
            prop_assert_eq!(
                sim.clients[i].open,
                model.clients[i].open,
                "client {} open",
                i
            );
        }
        // Who is online agrees, and no nickname is online twice.
        let real: Vec<String> = sim.server.online().map(chatproto::nick_key).collect();
        let unique: BTreeSet<String> = real.iter().cloned().collect();
        prop_assert_eq!(
            unique.len(),
            real.len(),
            "duplicate nick online: {:?}",
            real
        );
        let expected: BTreeSet<String> = model
            .sessions
            .iter()
            .filter(|s| s.conn.is_some())
            .map(|s| s.key.clone())
            .collect();
        prop_assert_eq!(unique, expected);
        // Which rooms exist (a room is forgotten when it has neither
        // members nor messages), who is in each, and its latest seq.
        let mut real: Vec<(String, usize, u64)> = sim
            .server
            .rooms()
            .map(|(r, n)| (r.to_string(), n, sim.server.seq(r)))
            .collect();
        real.sort();
        let expected: Vec<(String, usize, u64)> = model
            .rooms
            .iter()
            .map(|(n, r)| (n.clone(), r.members.len(), r.seq))
            .collect();
        prop_assert_eq!(real, expected);
    }
    checks.oracle(&model)?;
    checks.stats.new_lives = model.lives;
    Ok(checks.stats)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/model.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_server_behaves_like_the_model(ops in prop::collection::vec(op(), 1..100)) {
        check(&ops)?;
    }
}

/// A fixed walk through v1 joins, refusals, routing, pings and timeouts,
/// so the check does not depend on what the random cases happen to reach.
#[test]
fn a_hand_written_v1_sequence_matches_the_model() {
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
        // Answered pings come again after each silence.
        Advance(3_000),
        Pong(4),
        Advance(3_000),
        Pong(4),
        Advance(3_000),
    ];
    check(&ops).unwrap();
}

/// A fixed walk through rooms, ids, resumes, replays and history.
#[test]
fn a_hand_written_v2_sequence_matches_the_model() {
    use Op::*;
    let (lobby, rust, ops_room) = (0, 1, 2);
    let ops = vec![
        Connect,
        Connect,
        Connect,
        // alice in lobby and rust; bob (v1) in lobby; carol in rust and ops.
        JoinV2(0, 0, vec![lobby, rust]),
        Join(1, 3),
        JoinV2(2, 6, vec![rust, 4, ops_room]),
        // Too many rooms; already in (by another case).
        Enter(0, ops_room, false),
        Enter(2, 3, false),
        // alice to carol in rust, privately, with an id; then the id again.
        MsgIn(0, rust, vec![5], Some(0)),
        MsgIn(0, rust, vec![], Some(0)),
        MsgIn(0, rust, vec![], Some(1)),
        // bob is not in rust: unknown_nick for alice, not_in_room for bob.
        MsgIn(0, rust, vec![2], None),
        MsgIn(1, rust, vec![], None),
        Msg(1, vec![0]),
        MsgIn(2, rust, vec![], Some(2)),
        History(0, rust, None, None),
        History(2, rust, None, Some(1)),
        History(1, rust, None, None),
        // carol goes, alice talks on, carol resumes (client 3) from the
        // last seq she saw; her ids come with her session.
        Leave(2),
        MsgIn(0, rust, vec![], None),
        MsgIn(0, rust, vec![5], None),
        Resume(2, None, true),
        MsgIn(3, rust, vec![], Some(2)),
        History(3, rust, Some(4), Some(2)),
        // bob resumes (client 4) while his connection is open, which is
        // closed: his v1 lobby has no epoch, so no since.
        Resume(1, None, false),
        // alice parts and re-enters from where she was.
        Part(0, rust),
        Enter(0, rust, true),
        Part(0, rust),
        MsgIn(3, rust, vec![], None),
        Enter(0, rust, true),
        Enter(0, ops_room, false),
        Rooms(0),
        // A resume after the window is a fresh session (client 5): her
        // old id is hers to use again.
        Leave(0),
        Advance(RESUME_WINDOW),
        Resume(0, None, true),
        Rooms(5),
        MsgIn(5, rust, vec![], Some(0)),
        // A join that lists lobby past the room limit is not in lobby, and
        // its welcome says so.
        Connect,
        JoinV2(6, 7, vec![rust, ops_room, lobby]),
    ];
    let stats = check(&ops).unwrap();
    assert!(stats.duplicates >= 2, "{stats:?}");
    assert!(stats.resumed >= 2, "{stats:?}");
    assert!(stats.recovered >= 2, "{stats:?}");
    assert!(stats.replayed_after_since >= 2, "{stats:?}");
    assert!(stats.private_in_history >= 1, "{stats:?}");
    // The oracle was asked about deliveries, not only handed empty logs.
    assert!(stats.oracle_expected >= 10, "{stats:?}");
}
