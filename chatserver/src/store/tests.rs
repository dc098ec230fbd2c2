//! The store thread's tests: stopping, retention's reports, a database
//! deleted or moved aside, probes.

use super::run::{cause, probe_keyable, record_room, PROBE_EVERY};
use super::*;
use chatproto::{Event, EventBody, SessionId};
use chatstore::StoreError;

fn msg(room: &str, seq: u64, text: &str) -> Record {
    let body = EventBody::msg(SessionId(1), "alice", Vec::new(), text, None);
    Record::Event(std::sync::Arc::new(Event::new(room, seq, 1, body)))
}

/// Retention keeping 100 events a room, run once an hour (by hand in
/// a test).
const HOURLY_100: Retention = Retention {
    max_age_ms: 0,
    max_per_room: 100,
    sessions: 10,
    every: Duration::from_secs(3_600),
};

/// Stop the store's threads and wait for them.
fn stop(mut link: StoreLink) {
    drop(link.tx);
    drop(link.reads);
    link.thread
        .take()
        .expect("a thread")
        .join()
        .expect("joined");
}

/// A store thread that panics still says it stopped: the hub, whose
/// answers' channel the reading thread keeps open, would otherwise
/// wait for its batch for ever.
#[test]
fn a_store_thread_that_panics_says_it_stopped() {
    let (answers, mut rx) = mpsc::unbounded_channel();
    let keep_open = answers.clone();
    let thread = std::thread::spawn(move || {
        let _stopped = SayStopped(answers);
        panic!("a store that broke");
    });
    assert!(thread.join().is_err(), "it panicked");
    assert!(matches!(rx.try_recv(), Ok(FromStore::Stopped)));
    drop(keep_open);
}

/// Retention reports where each room starts after every batch it
/// commits, not once the pass ends: a pass deleting 1,400 events in
/// batches of 1,000 tells the hub of the first 1,000 before it goes
/// on (the first report was the pass's end, with all 1,400). Until
/// the hub heard, it promised replays over what was gone.
#[test]
fn retention_reports_after_every_batch() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut store = Store::open(dir.path(), chatstore::Sync::Normal).expect("open");
    let mut batch = vec![Record::room("lobby", "e1")];
    batch.extend((1..=1_400 + 100).map(|n| msg("lobby", n, "m")));
    store.append(&batch).expect("append");
    let mut link = spawn(store, HOURLY_100).expect("store thread");
    link.tx.send(ToStore::Prune).expect("prune");
    let mut reports = Vec::new();
    while let Some(answer) = link.rx.blocking_recv() {
        let FromStore::Pruned {
            deleted,
            done,
            rooms,
        } = answer
        else {
            continue;
        };
        let oldest: Vec<u64> = rooms.iter().map(|(_, _, oldest)| *oldest).collect();
        reports.push((deleted, done, oldest));
        if done {
            break;
        }
    }
    assert_eq!(
        reports,
        [(1_000, false, vec![1_001]), (1_400, true, vec![1_401])]
    );
    stop(link);
}

/// The database file deleted while the server runs: the batch is
/// refused, clients are told why, and no probe says it works again
/// (SQLite would write on into the deleted file and lose it all).
#[test]
fn a_deleted_database_is_refused_and_says_so() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut store = Store::open(dir.path(), chatstore::Sync::Normal).expect("open");
    let batch = vec![Record::room("lobby", "e1"), msg("lobby", 1, "lost?")];
    std::fs::remove_file(dir.path().join(chatstore::DB_FILE)).expect("delete it");
    let err = store.append(&batch).expect_err("refused");
    assert_eq!(cause(&err), "its database file was deleted");
    assert!(matches!(store.probe(&batch), Err(StoreError::Gone(_))));
}

/// The database moved aside under a running server and back (the
/// same file, so it checks as the one opened): the hub was told that
/// messages are refused until a restart, and so they are. The next
/// batch is refused without a look, and no probe says the store
/// works again; the probe used to find the file back, and a server
/// took messages after its clients were told none would be (found by
/// a review).
#[test]
fn a_database_lost_stays_lost_until_a_restart() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(dir.path(), chatstore::Sync::Normal).expect("open");
    let mut link = spawn(store, HOURLY_100).expect("store thread");
    let mut append = |records: Vec<Record>, through: u64| {
        link.tx
            .send(ToStore::Append { records, through })
            .expect("sent");
        link.rx.blocking_recv().expect("an answer")
    };
    let first = append(
        vec![Record::room("lobby", "e1"), msg("lobby", 1, "kept")],
        1,
    );
    assert!(matches!(first, FromStore::Stored(1)), "{first:?}");
    let db = dir.path().join(chatstore::DB_FILE);
    let aside = dir.path().join("aside.db");
    std::fs::rename(&db, &aside).expect("moved aside");
    let failed = append(vec![msg("lobby", 2, "refused")], 2);
    assert!(
        matches!(
            failed,
            FromStore::Failed {
                until_restart: true,
                ..
            }
        ),
        "{failed:?}"
    );
    std::fs::rename(&aside, &db).expect("moved back");
    let again = append(vec![msg("lobby", 2, "refused too")], 3);
    assert!(
        matches!(
            again,
            FromStore::Failed {
                until_restart: true,
                ..
            }
        ),
        "{again:?}"
    );
    // Three probes' time: none is made (each would say `Recovered`).
    std::thread::sleep(PROBE_EVERY * 3);
    let said = link.rx.try_recv();
    assert!(said.is_err(), "{said:?}");
    stop(link);
}

/// A failed batch that holds a room past the highest seq probes as
/// working once that room's records are left out, and as failing
/// while anything else in it cannot be stored.
#[test]
fn a_probe_leaves_out_a_room_the_store_cannot_key() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut store = Store::open(dir.path(), chatstore::Sync::Normal).expect("open");
    let mut batch = vec![
        Record::room("lobby", "e1"),
        msg("lobby", 1, "kept"),
        Record::room("rust", "e2"),
        msg("rust", chatstore::MAX_SEQ + 1, "past the keys"),
        msg("lobby", 2, "kept too"),
    ];
    assert!(matches!(
        store.probe(&batch),
        Err(StoreError::KeysFull { .. })
    ));
    probe_keyable(&mut store, &mut batch).expect("the rest can be stored");
    let rooms: Vec<_> = batch.iter().filter_map(record_room).collect();
    assert_eq!(rooms, ["lobby", "lobby", "lobby"]);

    // A store that cannot write fails the probe whatever is left out,
    // though the room past its keys comes first.
    store.set_max_bytes(Some(1)).expect("cap");
    let mut big = vec![
        Record::room("rust", "e2"),
        msg("rust", chatstore::MAX_SEQ + 1, "past the keys"),
        Record::room("ops", "e3"),
    ];
    big.extend((1..=200).map(|n| msg("ops", n, &"x".repeat(2_000))));
    assert!(matches!(
        store.probe(&big),
        Err(StoreError::KeysFull { .. })
    ));
    assert!(matches!(
        probe_keyable(&mut store, &mut big),
        Err(StoreError::AtCap { .. })
    ));
}
