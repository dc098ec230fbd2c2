//! The operations a walk is made of, and how a random walk picks them.

use proptest::prelude::*;

use crate::{IDLE_PING, JOIN_POOL, JOIN_TIMEOUT, PONG_TIMEOUT, RESUME_WINDOW, ROOM_POOL, TO_POOL};

#[derive(Debug, Clone)]
pub(crate) enum Op {
    Connect,
    /// A v1 join.
    Join(usize, usize),
    /// A v2 join entering the rooms listed.
    JoinV2(usize, usize, Vec<usize>),
    Leave(usize),
    /// The client says its last (its stream ends cleanly) and is closed
    /// once answered.
    End(usize),
    Kick(usize),
    /// A v1 message (to `lobby`).
    Msg(usize, Vec<usize>),
    /// A v2 message: room, recipients, id.
    MsgIn(usize, usize, Vec<usize>, Option<usize>),
    /// Enter a room, with the last seq and epoch seen if `true` and known.
    Enter(usize, usize, bool),
    Part(usize, usize),
    History(usize, usize, Option<u64>, Option<u64>),
    Rooms(usize),
    /// A new connection resumes the session (with its nick, or with
    /// another) and re-enters its rooms; the old one is disconnected
    /// first if `true`, else left open (lost without the server knowing),
    /// and the resume takes the session over.
    Resume(usize, Option<usize>, bool),
    Ping(usize),
    Pong(usize),
    Advance(u64),
}

pub(crate) fn op() -> impl Strategy<Value = Op> {
    let who = 0..8usize;
    let room = || prop_oneof![6 => 0..3usize, 1 => 3..ROOM_POOL.len()];
    // Mostly to everyone: a long list of names rarely all resolve.
    let to = || {
        prop_oneof![
            3 => Just(Vec::new()),
            2 => prop::collection::vec(0..TO_POOL.len(), 1..3),
            1 => prop::collection::vec(0..TO_POOL.len(), 3..5),
        ]
    };
    let id = prop::option::of(prop_oneof![6 => 0..3usize, 1 => 3..5usize]);
    prop_oneof![
        2 => Just(Op::Connect),
        3 => (who.clone(), 0..JOIN_POOL.len()).prop_map(|(c, p)| Op::Join(c, p)),
        3 => (who.clone(), 0..JOIN_POOL.len(), prop::collection::vec(room(), 0..4))
            .prop_map(|(c, p, r)| Op::JoinV2(c, p, r)),
        1 => prop_oneof![
            who.clone().prop_map(Op::Leave),
            who.clone().prop_map(Op::End),
            who.clone().prop_map(Op::Kick)
        ],
        3 => (who.clone(), to()).prop_map(|(c, to)| Op::Msg(c, to)),
        6 => (who.clone(), room(), to(), id).prop_map(|(c, r, to, id)| Op::MsgIn(c, r, to, id)),
        4 => (who.clone(), room(), any::<bool>()).prop_map(|(c, r, s)| Op::Enter(c, r, s)),
        2 => (who.clone(), room()).prop_map(|(c, r)| Op::Part(c, r)),
        2 => (who.clone(), room(), prop::option::of(0..30u64), prop::option::of(0..5u64))
            .prop_map(|(c, r, b, l)| Op::History(c, r, b, l)),
        1 => who.clone().prop_map(Op::Rooms),
        3 => (who.clone(), prop::option::weighted(0.25, 0..JOIN_POOL.len()), any::<bool>())
            .prop_map(|(c, p, cut)| Op::Resume(c, p, cut)),
        1 => who.clone().prop_map(Op::Ping),
        1 => who.prop_map(Op::Pong),
        2 => (0..800u64).prop_map(Op::Advance),
        // Exactly a timeout, or a hair before one: off-by-one bugs live here.
        1 => prop_oneof![
            Just(JOIN_TIMEOUT), Just(IDLE_PING), Just(PONG_TIMEOUT), Just(RESUME_WINDOW),
            Just(PONG_TIMEOUT - 1), Just(1), Just(2_500),
        ].prop_map(Op::Advance),
    ]
}
