//! The store against a model, over random batches: what every room holds
//! after each batch (and after closing and opening the store again) is
//! exactly what a plain list per room says, in seq order, with each
//! private message visible only to its sender and recipients.
//!
//! Batches mix rooms begun (again, with the same or a new epoch) and
//! forgotten (their numbers then given to rooms begun after),
//! messages to everyone or to a few, presence events, sessions and
//! retention by count and by age, in sizes that cross the store's
//! events-per-chunk boundary (a chunk of a batch holds at most 64 of a
//! room's events); a room begun again in the middle of a batch drops what came
//! before in that batch too.

use std::collections::BTreeMap;
use std::sync::Arc;

use chatproto::{hash_token, Event, EventBody, PresenceStatus, Recipient, Record, SessionId};
use chatstore::{Store, Sync};
use proptest::prelude::*;

const ROOMS: [&str; 3] = ["a", "b", "c"];
const EPOCHS: [&str; 2] = ["e1", "e2"];
const T: u64 = 1_732_400_000_000;

#[derive(Debug, Clone)]
enum Op {
    /// Begin room `.0` with epoch `.1`.
    Room(usize, usize),
    /// A message in room `.0` from session `.1` to sessions `.2` (none:
    /// everyone).
    Msg(usize, u64, Vec<u64>),
    /// A presence event in room `.0`.
    Presence(usize, u64),
    /// A session record.
    Session(u64),
    /// Room `.0` forgotten, history and all (its number free again).
    Forget(usize),
}

#[derive(Debug, Clone)]
struct Batch {
    ops: Vec<Op>,
    /// Close and open the store after it.
    reopen: bool,
    /// Then keep only the newest this many events per room.
    keep: Option<u64>,
    /// Then delete events older than this many ms before the newest
    /// event's time (each event is 1 ms after the one before).
    age: Option<u64>,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0..ROOMS.len(), 0..EPOCHS.len()).prop_map(|(r, e)| Op::Room(r, e)),
        8 => (0..ROOMS.len(), 1..6u64, prop::collection::vec(1..6u64, 0..3))
            .prop_map(|(r, f, to)| Op::Msg(r, f, to)),
        2 => (0..ROOMS.len(), 1..6u64).prop_map(|(r, s)| Op::Presence(r, s)),
        1 => (1..6u64).prop_map(Op::Session),
        1 => (0..ROOMS.len()).prop_map(Op::Forget),
    ]
}

fn batch() -> impl Strategy<Value = Batch> {
    (
        prop::collection::vec(op(), 0..240),
        prop::bool::weighted(0.2),
        prop::option::weighted(0.15, 1..40u64),
        prop::option::weighted(0.15, 0..60u64),
    )
        .prop_map(|(ops, reopen, keep, age)| Batch {
            ops,
            reopen,
            keep,
            age,
        })
}

/// One room as the model sees it.
#[derive(Debug, Default, Clone)]
struct Room {
    epoch: String,
    last_seq: u64,
    /// Every event stored (messages and presence), in seq order.
    events: Vec<Event>,
}

fn visible(e: &Event, s: SessionId) -> bool {
    match &e.body {
        EventBody::Msg { from, to, .. } => {
            to.is_empty() || *from == s || to.iter().any(|r| r.session == s)
        }
        _ => false,
    }
}

fn is_msg(e: &Event) -> bool {
    matches!(e.body, EventBody::Msg { .. })
}

/// The records for `ops`, and the model after them. A room not begun
/// is begun (epoch e1) before its first event.
fn records(
    ops: &[Op],
    model: &mut BTreeMap<&'static str, Room>,
    sessions: &mut BTreeMap<u64, String>,
    n: &mut u64,
    writers: &mut Option<u64>,
) -> Vec<Record> {
    let mut out = Vec::new();
    let begin =
        |out: &mut Vec<Record>, model: &mut BTreeMap<&'static str, Room>, r: usize, e: usize| {
            let (name, epoch) = (ROOMS[r], EPOCHS[e]);
            out.push(Record::room(name, epoch));
            let room = model.entry(name).or_default();
            if room.epoch != epoch {
                *room = Room {
                    epoch: epoch.into(),
                    ..Room::default()
                };
            }
        };
    for op in ops {
        let r = match op {
            Op::Room(r, e) => {
                begin(&mut out, model, *r, *e);
                continue;
            }
            Op::Forget(r) => {
                out.push(Record::forgotten(ROOMS[*r]));
                model.remove(ROOMS[*r]);
                continue;
            }
            Op::Session(id) => {
                sessions.insert(*id, format!("n{id}"));
                out.push(Record::session(
                    SessionId(*id),
                    format!("n{id}"),
                    hash_token(&format!("t{id}")),
                ));
                continue;
            }
            Op::Msg(r, ..) | Op::Presence(r, _) => *r,
        };
        if !model.contains_key(ROOMS[r]) {
            begin(&mut out, model, r, 0);
        }
        *n += 1;
        let room = model.get_mut(ROOMS[r]).expect("begun");
        room.last_seq += 1;
        let writer = match op {
            Op::Msg(_, from, _) => *from,
            Op::Presence(_, s) => *s,
            _ => unreachable!(),
        };
        *writers = Some(writers.map_or(writer, |w| w.max(writer)));
        let body = match op {
            Op::Msg(_, from, to) => EventBody::msg(
                SessionId(*from),
                format!("n{from}"),
                to.iter()
                    .map(|&t| Recipient::new(SessionId(t), format!("n{t}")))
                    .collect(),
                format!("text {n}"),
                n.is_multiple_of(3).then(|| format!("id{n}")),
            ),
            Op::Presence(_, s) => {
                EventBody::presence(SessionId(*s), format!("n{s}"), PresenceStatus::Online)
            }
            _ => unreachable!(),
        };
        let event = Event::new(ROOMS[r], room.last_seq, T + *n, body);
        room.events.push(event.clone());
        out.push(Record::Event(Arc::new(event)));
    }
    out
}

fn check(
    store: &Store,
    model: &BTreeMap<&'static str, Room>,
    sessions: &BTreeMap<u64, String>,
    writers: Option<u64>,
) -> Result<(), TestCaseError> {
    let fail = |e: chatstore::StoreError| TestCaseError::fail(e.to_string());
    // Sessions: each once, with its nick and its token's hash; the next
    // id is past every session id stored, in a session record or an event.
    // (Listed by last activity: compared by id.)
    let mut stored: Vec<(u64, String, Vec<u8>)> = store
        .sessions(1_000)
        .map_err(fail)?
        .into_iter()
        .map(|s| (s.id.0, s.nick, s.token.to_vec()))
        .collect();
    stored.sort_unstable_by_key(|s| s.0);
    let want: Vec<(u64, String, Vec<u8>)> = sessions
        .iter()
        .map(|(id, nick)| (*id, nick.clone(), hash_token(&format!("t{id}")).to_vec()))
        .collect();
    prop_assert_eq!(stored, want);
    // Above every session stored and every session that ever wrote an
    // event, even one whose events are gone since.
    let next = sessions
        .keys()
        .copied()
        .chain(writers)
        .max()
        .map_or(0, |m| m + 1);
    prop_assert_eq!(store.next_session().map_err(fail)?, next);
    let stored = store.rooms().map_err(fail)?;
    let got: Vec<(String, String, u64)> = stored
        .iter()
        .map(|r| (r.name.clone(), r.epoch.clone(), r.last_seq))
        .collect();
    let want: Vec<(String, String, u64)> = model
        .iter()
        .map(|(n, r)| (n.to_string(), r.epoch.clone(), r.last_seq))
        .collect();
    prop_assert_eq!(got, want);
    for (name, room) in model {
        let oldest = stored
            .iter()
            .find(|r| r.name == *name)
            .expect("listed")
            .oldest;
        let want_oldest = room.events.first().map_or(room.last_seq + 1, |e| e.seq);
        prop_assert_eq!(oldest, want_oldest, "oldest of {}", name);
        let msgs: Vec<Event> = room.events.iter().filter(|e| is_msg(e)).cloned().collect();
        let recent = store
            .recent(name, 100_000)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&recent, &msgs, "messages of {}", name);
        for s in 0..7 {
            let (page, more) = store
                .page(name, SessionId(s), u64::MAX, 100_000)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let want: Vec<Event> = msgs
                .iter()
                .filter(|e| visible(e, SessionId(s)))
                .cloned()
                .collect();
            prop_assert_eq!(&page, &want, "{} as session {}", name, s);
            prop_assert!(!more);
            // Page by page, four at a time, newest first: the same, each
            // page ending where the one after it starts.
            let mut paged: Vec<Event> = Vec::new();
            let mut before = u64::MAX;
            for _ in 0..=want.len() {
                let (mut page, more) = store
                    .page(name, SessionId(s), before, 4)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(page.len() == 4 || !more);
                if let Some(first) = page.first() {
                    before = first.seq;
                }
                page.append(&mut paged);
                paged = page;
                if !more {
                    break;
                }
            }
            prop_assert_eq!(&paged, &want, "{} as session {}, paged", name, s);
        }
    }
    Ok(())
}

fn run(batches: &[Batch]) -> Result<(), TestCaseError> {
    let fail = |e: chatstore::StoreError| TestCaseError::fail(e.to_string());
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut store = Store::open(dir.path(), Sync::Normal).expect("open");
    let mut model: BTreeMap<&'static str, Room> = BTreeMap::new();
    let mut sessions: BTreeMap<u64, String> = BTreeMap::new();
    let mut n = 0;
    let mut writers = None;
    for b in batches {
        let recs = records(&b.ops, &mut model, &mut sessions, &mut n, &mut writers);
        store
            .append(&recs)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        // Retention by count, by age, or both in one call (as the
        // server calls it); the calls delete what they say they did.
        if b.keep.is_some() || b.age.is_some() {
            let now = T + n;
            let age = b.age.unwrap_or(u64::MAX / 2);
            let keep = b.keep.unwrap_or(u64::MAX / 2);
            let cutoff = now.saturating_sub(age);
            let before: usize = model.values().map(|r| r.events.len()).sum();
            for room in model.values_mut() {
                let first = room.last_seq.saturating_sub(keep);
                room.events.retain(|e| e.seq > first && e.ts >= cutoff);
            }
            let gone = before - model.values().map(|r| r.events.len()).sum::<usize>();
            let mut deleted = 0;
            loop {
                let d = store.prune(now, age, keep, 50).map_err(fail)?;
                deleted += d;
                if d < 50 {
                    break;
                }
            }
            prop_assert_eq!(deleted, gone, "deleted as counted");
        }
        if b.reopen {
            drop(store);
            store = Store::open(dir.path(), Sync::Normal).expect("open again");
        }
        check(&store, &model, &sessions, writers)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_store_holds_what_the_model_says(batches in prop::collection::vec(batch(), 1..8)) {
        run(&batches)?;
    }
}
