//! Rooms a durable server takes out of memory at the cap of rooms rest in
//! its store and come back when entered: same epoch, seqs going on, the
//! history read from the store. Only past the cap of stored rooms is one
//! forgotten, history and all.

use chatproto::testkit::Sim;
use std::sync::Arc;

use chatproto::{
    hash_token, ClientFrame, ErrorCode, Event, EventBody, Record, RestoreError, ServerConfig,
    ServerFrame, SessionId,
};

const T0: u64 = 1_732_400_000_000;

/// A durable server holding one room in memory.
fn one_in_memory(max_stored_rooms: usize) -> ServerConfig {
    let mut cfg = ServerConfig::default();
    cfg.durable = true;
    cfg.max_rooms = 1;
    cfg.history_per_room = 4;
    cfg.max_stored_rooms = max_stored_rooms;
    cfg
}

fn texts(frames: &[ServerFrame]) -> Vec<String> {
    frames
        .iter()
        .flat_map(|f| match f {
            ServerFrame::History { events, .. } => events.clone(),
            other => vec![other.clone()],
        })
        .filter_map(|f| match f {
            ServerFrame::Msg { text, .. } => Some(text),
            _ => None,
        })
        .collect()
}

/// The `entered` of `frames`: epoch, seq, oldest and recovered.
fn entered(frames: &[ServerFrame]) -> (String, u64, u64, bool) {
    frames
        .iter()
        .find_map(|f| match f {
            ServerFrame::Entered {
                epoch,
                seq,
                oldest,
                recovered,
                ..
            } => Some((epoch.clone(), *seq, *oldest, *recovered)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no entered in {frames:?}"))
}

/// What the store was told of rooms, in order.
fn room_log(sim: &Sim) -> Vec<String> {
    sim.store
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Room { name, seq, .. } => Some(format!("room {name} {seq}")),
            Record::Forgotten { name, .. } => Some(format!("forgotten {name}")),
            _ => None,
        })
        .collect()
}

/// Alice (client 0) enters `room`, says `n` messages there and parts.
fn say_in(sim: &mut Sim, room: &str, n: usize) {
    sim.send(0, ClientFrame::enter(room, None));
    for i in 0..n {
        let text = format!("{room}{i}");
        sim.send(0, ClientFrame::msg_in(room, vec![], text, None));
    }
    sim.send(0, ClientFrame::part(room));
    sim.commit();
}

/// `a` says `text` in `room` with the message id `id`; what it gets.
fn said_with_id(sim: &mut Sim, a: usize, room: &str, text: &str, id: &str) -> Vec<ServerFrame> {
    sim.send(a, ClientFrame::msg_in(room, vec![], text, Some(id.into())));
    sim.commit();
    sim.take(a)
}

/// `frames` are one answer: `duplicate` of the message stored at `seq`.
fn assert_duplicate_of(frames: &[ServerFrame], seq: u64) {
    assert!(
        matches!(
            frames,
            [ServerFrame::Error {
                code: ErrorCode::Duplicate,
                seq: Some(s),
                ..
            }] if *s == seq
        ),
        "{frames:?}"
    );
}

fn alice(cfg: ServerConfig) -> Sim {
    let mut sim = Sim::new(cfg, T0);
    let a = sim.connect();
    sim.send(a, ClientFrame::join_v2("alice", vec![], None));
    sim.commit();
    sim.take(a);
    sim
}

#[test]
fn a_room_taken_out_at_the_cap_comes_back_from_the_store() {
    let mut sim = alice(one_in_memory(100));
    say_in(&mut sim, "rust", 10);
    let frames = sim.take(0);
    let (epoch, _, _, _) = entered(&frames);
    // rust's last seq: its entering, ten messages and the parting.
    let last = 12;
    say_in(&mut sim, "ops", 1);
    sim.take(0);
    assert_eq!(sim.server.rooms_unloaded(), 1, "rust rests in the store");
    assert_eq!(sim.server.rooms_forgotten(), 0);

    // Bob enters rust afresh: the same room, its latest messages read
    // from the store (memory held none of them), seqs going on.
    let b = sim.connect();
    sim.send(b, ClientFrame::join_v2("bob", vec!["rust".into()], None));
    sim.commit();
    let frames = sim.take(b);
    assert_eq!(entered(&frames), (epoch.clone(), last, 1, false));
    let said: Vec<String> = (0..10).map(|i| format!("rust{i}")).collect();
    assert_eq!(texts(&frames), said);
    sim.send(b, ClientFrame::msg_in("rust", vec![], "back", None));
    sim.commit();
    let seqs: Vec<u64> = sim
        .take(b)
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Msg { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    // bob's entering took last + 1 (ops rested meanwhile).
    assert_eq!(seqs, [last + 2]);
    assert_eq!(sim.server.rooms_unloaded(), 1, "ops rests now");

    // Alice comes back with what she saw: recovered, from the store.
    sim.send(0, ClientFrame::enter("rust", Some((5, epoch.clone()))));
    sim.commit();
    let frames = sim.take(0);
    let (e, _, _, recovered) = entered(&frames);
    assert_eq!((e, recovered), (epoch, true));
    // (rust4 is seq 6.)
    let mut after: Vec<String> = (4..10).map(|i| format!("rust{i}")).collect();
    after.push("back".into());
    assert_eq!(texts(&frames), after);

    // The store was never told to forget rust, nor to begin it again.
    assert_eq!(room_log(&sim), ["room rust 0", "room ops 0"]);
}

#[test]
fn past_the_cap_of_stored_rooms_the_one_unloaded_longest_ago_is_forgotten() {
    // One room in memory, two kept: one rests unloaded.
    let mut sim = alice(one_in_memory(2));
    for room in ["rust", "ops", "dev"] {
        say_in(&mut sim, room, 1);
    }
    sim.take(0);
    assert_eq!(sim.server.rooms_unloaded(), 1);
    assert_eq!(sim.server.rooms_forgotten(), 1);
    assert_eq!(
        room_log(&sim),
        ["room rust 0", "room ops 0", "forgotten rust", "room dev 0"]
    );
    // rust begins anew; ops comes back as it was.
    let b = sim.connect();
    sim.send(b, ClientFrame::join_v2("bob", vec!["ops".into()], None));
    sim.commit();
    assert_eq!(texts(&sim.take(b)), ["ops0"]);
    sim.send(b, ClientFrame::part("ops"));
    sim.send(b, ClientFrame::enter("rust", None));
    sim.commit();
    let frames = sim.take(b);
    assert_eq!(entered(&frames).1, 0, "a new rust");
    assert!(texts(&frames).is_empty());
}

#[test]
fn a_room_that_never_held_a_message_is_forgotten_not_unloaded() {
    let mut sim = alice(one_in_memory(100));
    say_in(&mut sim, "rust", 0);
    say_in(&mut sim, "ops", 0);
    assert_eq!(sim.server.rooms_unloaded(), 0);
    assert_eq!(sim.server.rooms_forgotten(), 1);
    // The store is told it held none (a shell does not warn of it).
    let said: Vec<bool> = sim
        .store
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Forgotten { said, .. } => Some(*said),
            _ => None,
        })
        .collect();
    assert_eq!(said, [false]);
}

#[test]
fn a_memory_server_forgets_at_the_cap_whatever_the_cap_of_stored_rooms() {
    let mut cfg = one_in_memory(100);
    cfg.durable = false;
    let mut sim = alice(cfg);
    say_in(&mut sim, "rust", 3);
    say_in(&mut sim, "ops", 1);
    assert_eq!(sim.server.rooms_unloaded(), 0);
    assert_eq!(sim.server.rooms_forgotten(), 1);
    sim.take(0);
    sim.send(0, ClientFrame::enter("rust", None));
    assert!(texts(&sim.take(0)).is_empty(), "rust began anew");
}

/// Alice says one message in rust and parts; the store fails, found by
/// her entering rust again, and she parts again: rust gave out 1 to 5,
/// the last two unstored. With `unload`, she enters ops, which unloads
/// rust; otherwise rust stays in memory, empty.
fn rust_unstored(unload: bool) -> Sim {
    let mut sim = alice(one_in_memory(100));
    say_in(&mut sim, "rust", 1);
    sim.store.fail = Some("disk full".into());
    sim.send(0, ClientFrame::enter("rust", None));
    sim.commit();
    assert!(sim.server.store_failure().is_some());
    sim.send(0, ClientFrame::part("rust"));
    if unload {
        sim.send(0, ClientFrame::enter("ops", None));
    }
    sim.commit();
    assert_eq!(sim.server.rooms_unloaded(), usize::from(unload));
    sim
}

/// A room unloaded while the store fails gave out seqs the store never
/// heard of (presence goes on unstored): once it works again the store
/// is told of the room's last seq, so that after a restart no seq a
/// client saw is given again.
#[test]
fn a_room_unloaded_while_the_store_fails_is_stored_once_it_works() {
    let mut sim = rust_unstored(true);
    let before = room_log(&sim);

    sim.store.fail = None;
    sim.server.handle_store_recovered();
    sim.commit();
    let told: Vec<String> = room_log(&sim).split_off(before.len());
    // rust gave out 1 to 5: entering, "rust0", parting, entering again
    // and parting again (the last two unstored).
    assert!(told.contains(&"room rust 5".to_owned()), "{told:?}");
    assert!(!told.iter().any(|r| r.starts_with("forgotten")), "{told:?}");
    // Told once: the store working on does not tell it again.
    sim.send(0, ClientFrame::msg_in("ops", vec![], "on", None));
    sim.commit();
    let again = room_log(&sim).split_off(before.len() + told.len());
    assert!(again.is_empty(), "{again:?}");
}

/// A restarted server restores the rooms past its cap unloaded: entering
/// one takes it up under its stored epoch, seqs going on.
#[test]
fn rooms_restored_unloaded_come_back_when_entered() {
    let mut sim = Sim::new(one_in_memory(3), T0);
    // What the store holds of older.
    let said = EventBody::msg(SessionId(0), "alice", vec![], "hello", None);
    let hello = Event::new("older", 1, T0, said);
    sim.store
        .records
        .push(Record::room_at("older", "e-older", 9));
    sim.store.records.push(Record::Event(Arc::new(hello)));
    sim.server
        .restore_unloaded_room("old", "e-old", 7, 3)
        .unwrap();
    sim.server
        .restore_unloaded_room("older", "e-older", 9, 1)
        .unwrap();
    sim.server
        .restore_room("new", "e-new", 4, 1, Vec::new())
        .unwrap();
    assert_eq!(sim.server.rooms_unloaded(), 2);
    // Refused, each saying why, the server as it was.
    let why = sim.server.restore_unloaded_room("new", "e-other", 5, 1);
    assert!(
        matches!(&why, Err(RestoreError::RoomLoaded { room, .. }) if room == "new"),
        "{why:?}"
    );
    let why = sim.server.restore_unloaded_room("", "e-x", 5, 1);
    assert!(
        matches!(&why, Err(RestoreError::RoomName { name, .. }) if name.is_empty()),
        "{why:?}"
    );
    let why = sim.server.restore_unloaded_room("Far", "e-far", 1 << 62, 1);
    assert!(
        matches!(&why, Err(RestoreError::SeqTooHigh { room, .. }) if room == "far"),
        "{why:?}"
    );
    assert_eq!(sim.server.rooms_unloaded(), 2);
    // A third would pass the cap of stored rooms: the earliest restored
    // is forgotten.
    sim.server
        .restore_unloaded_room("newest", "e-newest", 2, 1)
        .unwrap();
    assert_eq!(sim.server.rooms_unloaded(), 2);
    let a = sim.connect();
    sim.send(a, ClientFrame::join_v2("alice", vec!["older".into()], None));
    sim.commit();
    let frames = sim.take(a);
    assert_eq!(entered(&frames), ("e-older".to_owned(), 9, 1, false));
    assert_eq!(texts(&frames), ["hello"]);
    // (new, restored with no message, was forgotten to make way.)
    let log = room_log(&sim).split_off(1);
    assert_eq!(log, ["forgotten old", "forgotten new"]);
    assert_eq!(sim.server.rooms_unloaded(), 1);
}

/// A restored session's message stored in a room restored unloaded: its
/// id, given back with `restore_message_ids`, makes a resend into the
/// room (entered again) a duplicate, not a second copy. The ids of a room
/// that does not rest unloaded, and of a session not restored, are
/// passed over.
#[test]
fn a_resend_into_a_room_restored_unloaded_is_a_duplicate() {
    let mut sim = Sim::new(one_in_memory(3), T0);
    let now = sim.clock();
    sim.server
        .restore_session(now, SessionId(5), "alice", hash_token("tok-a"))
        .unwrap();
    let mine = |room: &str, seq, from, id: &str| {
        let said = EventBody::msg(SessionId(from), "alice", vec![], "hi", Some(id.into()));
        Event::new(room, seq, T0, said)
    };
    sim.server
        .restore_unloaded_room("older", "e-older", 9, 1)
        .unwrap();
    sim.server.restore_message_ids(
        "older",
        &[mine("older", 8, 6, "a-0"), mine("older", 9, 5, "a-1")],
    );
    sim.server
        .restore_message_ids("elsewhere", &[mine("elsewhere", 3, 5, "a-2")]);
    let a = sim.connect();
    sim.send(
        a,
        ClientFrame::join_v2("alice", vec![], Some("tok-a".into())),
    );
    sim.send(a, ClientFrame::enter("older", Some((9, "e-older".into()))));
    sim.commit();
    sim.take(a);
    let frames = said_with_id(&mut sim, a, "older", "hi", "a-1");
    assert_duplicate_of(&frames, 9);
    sim.send(a, ClientFrame::part("older"));
    sim.send(a, ClientFrame::enter("elsewhere", None));
    let frames = said_with_id(&mut sim, a, "elsewhere", "hi", "a-2");
    assert_eq!(texts(&frames), ["hi"], "a new room: {frames:?}");
}

/// `restore_message_id` gives a session its ids in the order given,
/// across rooms, whatever the order its rooms were restored in (each
/// loaded room gives its messages' ids as it is restored): a window of 2
/// given z-1 then a-1 keeps a-1 at the session's next new message, and a
/// resend of it is a duplicate.
#[test]
fn ids_given_back_keep_the_order_given_across_rooms() {
    let mut cfg = one_in_memory(3);
    cfg.max_rooms = 2;
    cfg.id_window = 2;
    let mut sim = Sim::new(cfg, T0);
    let now = sim.clock();
    sim.server
        .restore_session(now, SessionId(5), "alice", hash_token("tok-a"))
        .unwrap();
    let mine = |room: &str, seq, id: &str| {
        let said = EventBody::msg(SessionId(5), "alice", vec![], "hi", Some(id.into()));
        Event::new(room, seq, T0, said)
    };
    // Restored room after room, "zz" last: z-1 counts as the newest.
    sim.server
        .restore_room("aa", "e-aa", 1, 1, vec![mine("aa", 1, "a-1")])
        .unwrap();
    sim.server
        .restore_room("zz", "e-zz", 1, 1, vec![mine("zz", 1, "z-1")])
        .unwrap();
    // Given again in the order sent: a-1 the newest.
    sim.server.restore_message_id("zz", SessionId(5), "z-1", 1);
    sim.server.restore_message_id("aa", SessionId(5), "a-1", 1);
    let a = sim.connect();
    sim.send(
        a,
        ClientFrame::join_v2("alice", vec![], Some("tok-a".into())),
    );
    sim.send(a, ClientFrame::enter("aa", Some((1, "e-aa".into()))));
    sim.send(a, ClientFrame::enter("zz", Some((1, "e-zz".into()))));
    sim.commit();
    sim.take(a);
    said_with_id(&mut sim, a, "zz", "new", "n-1");
    let frames = said_with_id(&mut sim, a, "aa", "hi", "a-1");
    assert_duplicate_of(&frames, 1);
}

/// Entering a room resting in the store when no room can make way (each
/// has someone in it) is refused, and the room rests on as it was.
#[test]
fn a_room_that_cannot_come_back_now_rests_on() {
    let mut sim = alice(one_in_memory(100));
    say_in(&mut sim, "rust", 2);
    let (epoch, ..) = entered(&sim.take(0));
    sim.send(0, ClientFrame::enter("ops", None));
    sim.commit();
    sim.take(0);
    let b = sim.connect();
    sim.send(b, ClientFrame::join_v2("bob", vec!["rust".into()], None));
    sim.commit();
    let errors: Vec<_> = sim
        .take(b)
        .into_iter()
        .filter_map(|f| match f {
            ServerFrame::Error { code, message, .. } => Some((code, message)),
            _ => None,
        })
        .collect();
    // It exists: the answer does not say it cannot begin.
    assert_eq!(
        errors,
        [(
            chatproto::ErrorCode::TooManyRooms,
            "the server holds 1 room in use, the most it may, so #rust (kept with its \
             history) cannot be opened now; try again when a room empties"
                .to_owned()
        )]
    );
    assert_eq!(sim.server.rooms_unloaded(), 1);
    sim.send(0, ClientFrame::part("ops"));
    sim.send(b, ClientFrame::enter("rust", None));
    sim.commit();
    let frames = sim.take(b);
    assert_eq!(entered(&frames).0, epoch);
    assert_eq!(texts(&frames), ["rust0", "rust1"]);
}

/// Retention deleting the oldest messages of a room resting in the store
/// moves where its history starts: `entered.oldest` says so when it
/// comes back (here with a store that cannot read, so that only the core
/// tells).
#[test]
fn retention_moves_the_start_of_a_resting_room() {
    let mut sim = alice(one_in_memory(100));
    say_in(&mut sim, "rust", 8);
    let (epoch, ..) = entered(&sim.take(0));
    say_in(&mut sim, "ops", 0);
    sim.take(0);
    sim.server.handle_pruned_epoch("rust", "another epoch", 5);
    sim.server.handle_pruned_epoch("rust", &epoch, 7);
    sim.store.fail_reads = Some("disk on fire".into());
    sim.send(0, ClientFrame::enter("rust", None));
    sim.commit();
    assert_eq!(entered(&sim.take(0)).2, 7);
}

/// The batch the recovery handed out fails (the store still failing);
/// once the store works and recovers, it is told rust's last seq, 5.
fn told_once_it_works(mut sim: Sim) {
    sim.commit();
    assert!(sim.server.store_failure().is_some(), "failed again");
    sim.store.fail = None;
    sim.server.handle_store_recovered();
    sim.commit();
    assert!(room_log(&sim).contains(&"room rust 5".to_owned()));
}

/// The store fails while rust gives out seqs it never hears of, rust is
/// unloaded, and the batch that tells the store of rust's last seq at
/// the recovery fails too: the next recovery tells it again (else a
/// restarted server would give those seqs to other events).
#[test]
fn a_resting_rooms_seq_is_told_again_when_the_batch_telling_it_fails() {
    let mut sim = rust_unstored(true);
    sim.server.handle_store_recovered();
    told_once_it_works(sim);
}

/// rust gives out seqs unstored and rests in memory; the store recovers,
/// rust is unloaded before the batch that tells its last seq is stored,
/// and that batch fails: the next recovery tells it.
#[test]
fn a_room_unloaded_before_the_recovery_batch_fails_is_told_again() {
    let mut sim = rust_unstored(false);
    sim.server.handle_store_recovered();
    sim.send(0, ClientFrame::enter("ops", None));
    assert_eq!(sim.server.rooms_unloaded(), 1);
    told_once_it_works(sim);
}

/// An entering without `since` asks the store for the latest messages
/// when memory holds fewer; if the store cannot read, memory's are shown.
#[test]
fn a_fresh_entering_the_store_cannot_answer_shows_what_memory_holds() {
    let mut cfg = one_in_memory(100);
    cfg.max_rooms = 10;
    let mut sim = alice(cfg);
    say_in(&mut sim, "rust", 10);
    sim.take(0);
    sim.store.fail_reads = Some("disk on fire".into());
    let b = sim.connect();
    sim.send(b, ClientFrame::join_v2("bob", vec!["rust".into()], None));
    sim.commit();
    assert_eq!(texts(&sim.take(b)), ["rust6", "rust7", "rust8", "rust9"]);
    sim.store.fail_reads = None;
    sim.send(b, ClientFrame::part("rust"));
    sim.send(b, ClientFrame::enter("rust", None));
    sim.commit();
    let all: Vec<String> = (0..10).map(|i| format!("rust{i}")).collect();
    assert_eq!(texts(&sim.take(b)), all, "from the store");
}

/// An entering refused for want of room (every room in memory has
/// someone in it) leaves the resting room where it was in the order: it
/// is still the first forgotten.
#[test]
fn a_refused_entering_keeps_a_resting_rooms_turn() {
    // One in memory, two resting.
    let mut sim = alice(one_in_memory(3));
    say_in(&mut sim, "rust", 1);
    say_in(&mut sim, "ops", 1);
    sim.send(0, ClientFrame::enter("dev", None));
    sim.send(0, ClientFrame::msg_in("dev", vec![], "dev0", None));
    sim.commit();
    assert_eq!(sim.server.rooms_unloaded(), 2);
    let b = sim.connect();
    sim.send(b, ClientFrame::join_v2("bob", vec!["rust".into()], None));
    sim.commit();
    assert!(sim.take(b).iter().any(|f| matches!(
        f,
        ServerFrame::Error {
            code: chatproto::ErrorCode::TooManyRooms,
            ..
        }
    )));
    // dev rests too now: the one unloaded longest ago goes.
    sim.send(0, ClientFrame::part("dev"));
    sim.send(0, ClientFrame::enter("new", None));
    sim.commit();
    let forgotten: Vec<String> = room_log(&sim)
        .into_iter()
        .filter(|r| r.starts_with("forgotten"))
        .collect();
    assert_eq!(forgotten, ["forgotten rust"]);
}

/// A v1 join when `lobby` cannot begin (the cap of rooms reached, every
/// room with someone in it) is welcomed, with nothing of the lobby, and
/// then told why it is in no room.
#[test]
fn a_v1_join_at_the_cap_is_welcomed_then_told_lobby_cannot_begin() {
    let mut cfg = one_in_memory(100);
    cfg.durable = false;
    let mut sim = Sim::new(cfg, T0);
    let a = sim.connect();
    sim.send(a, ClientFrame::join_v2("alice", vec!["rust".into()], None));
    let b = sim.connect();
    sim.send(b, ClientFrame::join("bob"));
    let frames = sim.take(b);
    assert!(
        matches!(
            &frames[..],
            [
                ServerFrame::Welcome { seq: 0, online, .. },
                ServerFrame::Error {
                    code: chatproto::ErrorCode::TooManyRooms,
                    room: Some(lobby),
                    ..
                },
            ] if online.is_empty() && lobby == "lobby"
        ),
        "{frames:?}"
    );
}

/// What alice (client 0) is answered for `text` sent into `room`, which
/// she is in, with the message id `id`: the echo's seq, or the error's
/// code, room and seq.
fn send_with_id(
    sim: &mut Sim,
    room: &str,
    id: &str,
    text: &str,
) -> Result<u64, (ErrorCode, Option<String>, Option<u64>)> {
    sim.send(0, ClientFrame::msg_in(room, vec![], text, Some(id.into())));
    sim.commit();
    let frames = sim.take(0);
    let answer = frames.iter().find_map(|f| match f {
        ServerFrame::Msg {
            id: Some(i), seq, ..
        } if i == id => Some(Ok(*seq)),
        ServerFrame::Error {
            code,
            id: Some(i),
            room,
            seq,
            ..
        } if i == id => Some(Err((*code, room.clone(), *seq))),
        _ => None,
    });
    answer.unwrap_or_else(|| panic!("no answer for {id} in {frames:?}"))
}

/// A message id stands for its message in its room's history: when that
/// history is gone (the room forgotten at the cap of rooms, by a memory
/// server), the id goes with it. A message sent again with it, into the
/// room begun again (a new epoch) or into another room, is a new
/// message, not a `duplicate` pointing at a seq of the lost history
/// (which the room begun again may give to another message). Its id is
/// then the session's newest, and stays in a window of two ids for as
/// long as a new message's id would.
#[test]
fn a_forgotten_rooms_message_ids_are_forgotten_with_it() {
    let mut cfg = one_in_memory(100);
    cfg.durable = false;
    cfg.id_window = 2;
    let mut sim = alice(cfg);
    sim.send(0, ClientFrame::enter("rust", None));
    let (old_epoch, ..) = entered(&sim.take(0));
    assert_eq!(send_with_id(&mut sim, "rust", "a-1", "first"), Ok(2));
    assert_eq!(send_with_id(&mut sim, "rust", "a-2", "second"), Ok(3));
    // Within its history, a resend is a duplicate.
    let dup = (ErrorCode::Duplicate, Some("rust".to_owned()), Some(2));
    assert_eq!(send_with_id(&mut sim, "rust", "a-1", "first"), Err(dup));
    sim.send(0, ClientFrame::part("rust"));
    // ops takes rust's place at the cap of one room: rust is forgotten.
    sim.send(0, ClientFrame::enter("ops", None));
    sim.take(0);
    assert_eq!(sim.server.rooms_forgotten(), 1);

    // Into another room: a new message there.
    assert_eq!(send_with_id(&mut sim, "ops", "a-2", "second"), Ok(2));
    sim.send(0, ClientFrame::part("ops"));
    // Into rust begun again: a new message of the new history.
    sim.send(0, ClientFrame::enter("rust", None));
    let (epoch, seq, ..) = entered(&sim.take(0));
    assert_ne!(epoch, old_epoch, "rust began again");
    assert_eq!(seq, 0);
    assert_eq!(send_with_id(&mut sim, "rust", "a-1", "first"), Ok(2));
    // And the id stands for that message now, the newest of the two the
    // window keeps: one more id pushes out a-2, not a-1.
    assert_eq!(send_with_id(&mut sim, "rust", "a-3", "third"), Ok(3));
    let dup = (ErrorCode::Duplicate, Some("rust".to_owned()), Some(2));
    assert_eq!(send_with_id(&mut sim, "rust", "a-1", "first"), Err(dup));
    // (a-2, out of the window, is taken as new: a client keeps no more
    // unacknowledged than the window.)
    assert_eq!(send_with_id(&mut sim, "rust", "a-2", "second"), Ok(4));
}

/// A durable server's room that rests in the store keeps its history,
/// and its message ids with it: a resend once it is taken up again is a
/// duplicate. Once it is forgotten past the cap of stored rooms and
/// begun again, the id is free: the message is new in the new history.
#[test]
fn a_resting_rooms_message_ids_hold_until_it_is_forgotten() {
    // One room in memory, one resting.
    let mut sim = alice(one_in_memory(2));
    sim.send(0, ClientFrame::enter("rust", None));
    sim.commit();
    let (old_epoch, ..) = entered(&sim.take(0));
    assert_eq!(send_with_id(&mut sim, "rust", "a-1", "first"), Ok(2));
    sim.send(0, ClientFrame::part("rust"));
    sim.commit();
    say_in(&mut sim, "ops", 1);
    sim.take(0);
    assert_eq!(sim.server.rooms_unloaded(), 1, "rust rests");

    // Taken up again: the same history, the id still stands for seq 2.
    sim.send(0, ClientFrame::enter("rust", None));
    sim.commit();
    assert_eq!(entered(&sim.take(0)).0, old_epoch);
    let dup = (ErrorCode::Duplicate, Some("rust".to_owned()), Some(2));
    assert_eq!(send_with_id(&mut sim, "rust", "a-1", "first"), Err(dup));
    sim.send(0, ClientFrame::part("rust"));
    sim.commit();

    // ops wakes (rust rests), then dev (ops rests): rust, unloaded
    // longest ago, is forgotten.
    say_in(&mut sim, "ops", 1);
    say_in(&mut sim, "dev", 1);
    sim.take(0);
    assert_eq!(sim.server.rooms_forgotten(), 1);
    assert_eq!(
        room_log(&sim).last().map(String::as_str),
        Some("room dev 0")
    );
    assert!(room_log(&sim).contains(&"forgotten rust".to_owned()));

    sim.send(0, ClientFrame::enter("rust", None));
    sim.commit();
    let (epoch, seq, ..) = entered(&sim.take(0));
    assert_ne!(epoch, old_epoch, "rust began again");
    assert_eq!(seq, 0);
    assert_eq!(send_with_id(&mut sim, "rust", "a-1", "first"), Ok(2));
}
