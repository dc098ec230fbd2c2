//! The store against a temporary directory: what goes in comes back, in
//! pages, to whom it may; retention; a restart; and the faults an operator
//! meets, each refused with a clear error and the file left alone.

use std::sync::Arc;

use chatproto::{
    hash_token, Event, EventBody, PresenceStatus, ReadQuery, Recipient, Record, SessionId,
};
use chatstore::{Store, StoreError, Sync};

const T: u64 = 1_732_400_000_000;

fn msg(room: &str, seq: u64, from: u64, to: &[u64], text: &str) -> Event {
    let to = to
        .iter()
        .map(|&s| Recipient::new(SessionId(s), format!("n{s}")))
        .collect();
    let body = EventBody::msg(
        SessionId(from),
        format!("n{from}"),
        to,
        text,
        Some(format!("id{seq}")),
    );
    Event::new(room, seq, T + seq, body)
}

fn presence(room: &str, seq: u64, who: u64) -> Event {
    let body = EventBody::presence(SessionId(who), format!("n{who}"), PresenceStatus::Online);
    Event::new(room, seq, T + seq, body)
}

/// Store `batch`, each room it names first begun with `epoch`.
fn put(store: &mut Store, epoch: &str, batch: &[Event]) {
    store.append(&records(epoch, batch)).unwrap();
}

/// `batches` batches of 100 messages of 1,000 bytes to #big (seqs from
/// 1), about 100 KB a batch; the last seq.
fn put_big(store: &mut Store, batches: u64) -> u64 {
    let text = "x".repeat(1_000);
    let mut seq = 0;
    for _ in 0..batches {
        let batch: Vec<Event> = (0..100)
            .map(|_| {
                seq += 1;
                msg("big", seq, 1, &[], &text)
            })
            .collect();
        put(store, "e", &batch);
    }
    seq
}

/// The size of a write-ahead log of `pages` 4 KiB pages: its header and
/// each frame's.
fn log_bytes(pages: u64) -> u64 {
    pages * (4096 + 24) + 32
}

fn records(epoch: &str, batch: &[Event]) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for e in batch {
        let room = Record::room(e.room.clone(), epoch);
        if !out.contains(&room) {
            out.push(room);
        }
        out.push(Record::Event(Arc::new(e.clone())));
    }
    out
}

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path(), Sync::Normal).expect("open")
}

/// The database file itself, as the sqlite3 tool would see it.
fn sql(dir: &tempfile::TempDir) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.path().join(chatstore::DB_FILE)).expect("open chat.db")
}

/// Every message an export of `room` after `since` reads, its pages one
/// after another.
fn exported(store: &Store, room: &str, since: u64) -> Vec<Event> {
    let pages: Vec<Vec<Event>> = store.export(room, since).collect::<Result<_, _>>().unwrap();
    assert!(pages.iter().all(|p| !p.is_empty()), "an empty page");
    pages.concat()
}

fn texts(page: &[Event]) -> Vec<String> {
    page.iter()
        .map(|e| match &e.body {
            EventBody::Msg { text, .. } => text.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn append_read_back_page_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let mut batch = vec![presence("rust", 1, 1)];
    for seq in 2..=11 {
        batch.push(msg("rust", seq, 1, &[], &format!("m{seq}")));
    }
    put(&mut store, "epoch-1", &batch);
    // Exactly as stamped, private members and ids included.
    let (page, more) = store.page("rust", SessionId(7), u64::MAX, 3).unwrap();
    assert_eq!(page, batch[8..].to_vec());
    assert!(more);
    // Paging back from the oldest seq shown, to the end.
    let (page, more) = store.page("rust", SessionId(7), 9, 3).unwrap();
    assert_eq!(texts(&page), ["m6", "m7", "m8"]);
    assert!(more);
    let (page, more) = store.page("rust", SessionId(7), 3, 3).unwrap();
    assert_eq!(texts(&page), ["m2"]);
    assert!(!more, "presence is not history");
    drop(store);

    let store = open(&dir);
    let rooms = store.rooms().unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(
        (rooms[0].name.as_str(), rooms[0].epoch.as_str()),
        ("rust", "epoch-1")
    );
    assert_eq!((rooms[0].last_seq, rooms[0].oldest), (11, 1));
    assert_eq!(
        store
            .page("rust", SessionId(7), u64::MAX, 50)
            .unwrap()
            .0
            .len(),
        10
    );
}

#[test]
fn private_messages_come_back_only_to_their_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let batch = vec![
        msg("lobby", 1, 1, &[], "all"),
        msg("lobby", 2, 1, &[2, 3], "group"),
        msg("lobby", 3, 2, &[1], "reply"),
    ];
    put(&mut store, "e", &batch);
    let seen = |s| texts(&store.page("lobby", SessionId(s), u64::MAX, 50).unwrap().0);
    assert_eq!(seen(1), ["all", "group", "reply"]);
    assert_eq!(seen(2), ["all", "group", "reply"]);
    assert_eq!(seen(3), ["all", "group"]);
    assert_eq!(
        seen(4),
        ["all"],
        "a later holder of a nick sees nothing private"
    );
    let (page, _) = store.page("lobby", SessionId(3), u64::MAX, 50).unwrap();
    assert_eq!(page[1], batch[1], "recipients in order, with their nicks");
}

#[test]
fn retention_by_age_and_count_in_bounded_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let batch: Vec<Event> = (1..=20).map(|s| msg("r", s, 1, &[2], "x")).collect();
    put(&mut store, "e", &batch);
    // Keep the newest 15: 5 go, at most 2 per call.
    let mut gone = 0;
    for _ in 0..10 {
        let n = store.prune(T + 100, 1_000_000, 15, 2).unwrap();
        assert!(n <= 2);
        gone += n;
        if n == 0 {
            break;
        }
    }
    assert_eq!(gone, 5);
    assert_eq!(store.rooms().unwrap()[0].oldest, 6);
    // Older than 10 ms before T + 20: seqs 6 to 9 go (ts = T + seq).
    while store.prune(T + 20, 10, 1_000, 100).unwrap() > 0 {}
    let (page, more) = store.page("r", SessionId(2), u64::MAX, 100).unwrap();
    assert_eq!(page.first().map(|e| e.seq), Some(10));
    assert!(!more);
    assert_eq!(
        store.rooms().unwrap()[0].last_seq,
        20,
        "seq goes on after pruning"
    );
}

#[test]
fn retention_by_age_goes_room_by_room_and_stops_at_the_first_young_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    // Room "x": ts = T + seq. Room "y": a wall clock stepped back after
    // seq 3 (ts T+1, T+2, T+3, then T-100...): the step's events wait
    // behind seq 3's, which is young.
    let xs: Vec<Event> = (1..=10).map(|s| msg("x", s, 1, &[], "x")).collect();
    let mut ys: Vec<Event> = (1..=6).map(|s| msg("y", s, 1, &[], "y")).collect();
    for e in &mut ys[3..] {
        e.ts = T - 100;
    }
    put(&mut store, "e", &xs);
    put(&mut store, "e", &ys);
    // Older than T + 3: x's 1 and 2, y's 1 and 2; one at a time.
    let mut gone = 0;
    for _ in 0..10 {
        let n = store.prune(T + 13, 10, 1_000, 1).unwrap();
        gone += n;
        if n == 0 {
            break;
        }
    }
    assert_eq!(gone, 4);
    let oldest: Vec<(String, u64)> = store
        .rooms()
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.oldest))
        .collect();
    assert_eq!(oldest, [("x".to_string(), 3), ("y".to_string(), 3)]);
}

#[test]
fn a_second_server_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(&dir);
    match Store::open(dir.path(), Sync::Normal) {
        Err(StoreError::Locked(path)) => assert!(path.ends_with("chat.db")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let junk = b"these are somebody's notes, not a database\n".repeat(100);
    std::fs::write(&path, &junk).unwrap();
    let err = Store::open(dir.path(), Sync::Full).unwrap_err();
    assert!(matches!(err, StoreError::NotADatabase(_)), "{err:?}");
    assert!(err.to_string().contains("not a chat database"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), junk);
}

/// A database cut short (a copy that stopped halfway, a disk that lost
/// its end): refused at start, naming the file and what to do, not only
/// in SQLite's words, and left as it is.
#[test]
fn a_truncated_database_is_refused_as_damaged_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let text = "x".repeat(2_000);
    for seq in 1..=200 {
        put(&mut store, "e", &[msg("rust", seq, 1, &[], &text)]);
    }
    drop(store);
    let path = dir.path().join(chatstore::DB_FILE);
    let whole = std::fs::read(&path).unwrap();
    assert!(whole.len() > 100_000, "{} bytes", whole.len());
    for keep in [4_096, whole.len() / 2] {
        let cut = &whole[..keep];
        std::fs::write(&path, cut).unwrap();
        let err = Store::open(dir.path(), Sync::Normal)
            .err()
            .unwrap_or_else(|| panic!("a database cut to {keep} bytes was opened"));
        assert!(matches!(err, StoreError::Damaged { .. }), "{keep}: {err:?}");
        let said = err.to_string();
        assert!(said.starts_with(&path.display().to_string()), "{said}");
        assert!(
            said.contains("is damaged") && said.contains("backup"),
            "{said}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), cut, "left as it was");
    }
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(&dir));
    mark_newer(dir.path());
    let err = Store::open(dir.path(), Sync::Normal).unwrap_err();
    assert!(
        matches!(err, StoreError::NewerSchema { found: 99, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer"), "{err}");
}

/// Mark the database as written by schema 99, as a future version would:
/// SQLite keeps `user_version` in the file header, 4 bytes big-endian at
/// offset 60 (the store checkpointed its WAL into the file when it closed).
fn mark_newer(dir: &std::path::Path) {
    let path = dir.join("chat.db");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[60..64].copy_from_slice(&99u32.to_be_bytes());
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn a_data_directory_that_cannot_be_created_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let err = Store::open(&file.join("data"), Sync::Normal).unwrap_err();
    assert!(matches!(err, StoreError::Dir { .. }), "{err:?}");
    assert!(err.to_string().contains("--data-dir"), "{err}");
}

/// A backup of `chat.db` alone, copied while a server wrote, is an empty
/// database (everything is in the `chat.db-wal` left behind): an export
/// says so, not that it is an older version to migrate.
#[test]
fn an_empty_database_read_to_export_is_said_to_hold_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = rusqlite::Connection::open(dir.path().join("chat.db")).unwrap();
    db.pragma_update(None, "journal_mode", "WAL").unwrap();
    drop(db);
    let err = Store::open_read_only(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Empty(_)), "{err:?}");
    let said = err.to_string();
    assert!(
        said.contains("holds no chat history") && said.contains("chat.db-wal"),
        "{said}"
    );
}

/// A server started on that empty copy begins a new history in it, and
/// says so (`began_in_an_empty_file`, which chatserver logs as a
/// warning); a new directory, or a history opened again, is no news.
#[test]
fn a_history_begun_in_an_empty_database_file_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let db = rusqlite::Connection::open(dir.path().join("chat.db")).unwrap();
    db.pragma_update(None, "journal_mode", "WAL").unwrap();
    drop(db);
    let store = Store::open(dir.path(), Sync::Normal).unwrap();
    assert!(store.began_in_an_empty_file());
    drop(store);
    let again = Store::open(dir.path(), Sync::Normal).unwrap();
    assert!(!again.began_in_an_empty_file(), "opened again");
    let fresh = tempfile::tempdir().unwrap();
    let new = Store::open(&fresh.path().join("data"), Sync::Normal).unwrap();
    assert!(!new.began_in_an_empty_file(), "a new directory");
}

/// An export of a directory that is not there says so, not that it lacks
/// a database.
#[test]
fn an_export_of_a_missing_directory_says_it_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open_read_only(&dir.path().join("chat-data")).unwrap_err();
    assert!(err.to_string().contains("no such directory"), "{err}");
    let err = Store::open_read_only(dir.path()).unwrap_err();
    assert!(err.to_string().contains("no chat.db in it"), "{err}");
}

/// A data directory that is a file, or below one, is said to be so,
/// naming the file, by a server's open and by an export's: the OS said
/// only "Not a directory", and an export that there was no such directory.
#[test]
fn a_data_directory_that_is_a_file_or_below_one_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "mine").unwrap();
    let below = file.join("data");
    let in_the_way = format!("{} is a file, not a directory", file.display());
    for (dir, said) in [
        (&file, "it is a file, not a directory"),
        (&below, in_the_way.as_str()),
    ] {
        let opened = Store::open(dir, Sync::Normal).map(drop).unwrap_err();
        let read = Store::open_read_only(dir).map(drop).unwrap_err();
        for err in [opened.to_string(), read.to_string()] {
            let head = format!("cannot use the data directory {}: {said};", dir.display());
            assert!(err.starts_with(&head), "{err}");
        }
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"mine");
}

#[test]
fn sessions_come_back_hashed_and_ids_are_never_given_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let session = |id: u64, nick: &str| {
        Record::session(SessionId(id), nick, hash_token(&format!("token-{id}")))
    };
    store
        .append(&[session(0, "alice"), session(1, "bob"), session(2, "carol")])
        .unwrap();
    // A message from session 9, whose own record is gone.
    put(&mut store, "e", &[msg("rust", 1, 9, &[2], "psst")]);
    drop(store);
    let store = open(&dir);
    let newest = store.sessions(2).unwrap();
    let ids: Vec<u64> = newest.iter().map(|s| s.id.0).collect();
    assert_eq!(ids, vec![1, 2]);
    assert_eq!(newest[0].nick, "bob");
    assert_eq!(newest[0].token, hash_token("token-1"));
    assert_eq!(store.next_session().unwrap(), 10);
    let mut store = store;
    assert_eq!(store.forget_sessions(1).unwrap(), 2);
    assert_eq!(store.sessions(10).unwrap()[0].nick, "carol");
    // No token is stored in clear.
    let bytes = std::fs::read(dir.path().join(chatstore::DB_FILE)).unwrap();
    let wal = std::fs::read(dir.path().join("chat.db-wal")).unwrap_or_default();
    for file in [bytes, wal] {
        assert!(!file.windows(7).any(|w| w == b"token-1"));
    }
}

/// Sessions are kept by when they were last active, and an attached one
/// is never forgotten: alice, connected while newer sessions came and
/// went, keeps her row through retention and a kill, and comes back
/// among the sessions a restarted server restores (before, retention
/// kept the newest ids and deleted hers, and a restart restored the
/// newest ids). The highest id forgotten stays taken.
#[test]
fn sessions_are_kept_by_last_activity_and_never_while_attached() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let session = |id: u64, nick: &str| {
        Record::session(SessionId(id), nick, hash_token(&format!("token-{id}")))
    };
    store.append(&[session(0, "alice")]).unwrap();
    for id in 1..=5 {
        let went = Record::attached(SessionId(id), false);
        store.append(&[session(id, "other"), went]).unwrap();
    }
    // bob (1) resumes and goes again: the last active of those gone.
    let back = [true, false].map(|a| Record::attached(SessionId(1), a));
    store.append(&back).unwrap();
    assert_eq!(store.forget_sessions(2).unwrap(), 3, "2, 3 and 4 go");
    let ids = |store: &Store, n: usize| -> Vec<u64> {
        store.sessions(n).unwrap().iter().map(|s| s.id.0).collect()
    };
    assert_eq!(ids(&store, 10), [5, 1, 0], "least recently active first");
    // Killed while alice is connected: she is restored first.
    drop(store);
    let mut store = open(&dir);
    assert_eq!(ids(&store, 1), [0]);
    // Now detached and the last active, she stays; the highest id goes,
    // and stays counted.
    assert_eq!(store.forget_sessions(2).unwrap(), 1);
    assert_eq!(ids(&store, 10), [1, 0]);
    assert_eq!(store.next_session().unwrap(), 6);
}

/// A session the server forgot (its resume window passed) is forgotten
/// by the store too, so that a restart does not bring it back; its id
/// stays taken, the highest included.
#[test]
fn a_session_forgotten_is_not_restored_and_its_id_stays_taken() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let session = |id: u64| Record::session(SessionId(id), "n", hash_token(&format!("t{id}")));
    store.append(&[session(1), session(2), session(3)]).unwrap();
    let gone = |id: u64| {
        [
            Record::attached(SessionId(id), false),
            Record::session_forgotten(SessionId(id)),
        ]
    };
    store.append(&gone(3)).unwrap();
    store.append(&gone(1)).unwrap();
    drop(store);
    let store = open(&dir);
    let ids: Vec<u64> = store.sessions(10).unwrap().iter().map(|s| s.id.0).collect();
    assert_eq!(ids, [2]);
    assert_eq!(store.next_session().unwrap(), 4);
}

/// The sessions the core still holds, told after an outage: the store
/// forgets every other, and their ids stay taken.
#[test]
fn sessions_not_kept_are_forgotten_and_their_ids_stay_taken() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let session = |id: u64| Record::session(SessionId(id), "n", hash_token(&format!("t{id}")));
    store
        .append(&[session(1), session(2), session(3), session(4)])
        .unwrap();
    store
        .append(&[Record::sessions_kept(vec![SessionId(2), SessionId(3)])])
        .unwrap();
    drop(store);
    let store = open(&dir);
    let ids: Vec<u64> = store.sessions(10).unwrap().iter().map(|s| s.id.0).collect();
    assert_eq!(ids, [2, 3]);
    assert_eq!(store.next_session().unwrap(), 5);
}

/// A version 8 database (sessions without activity, rooms without how
/// far retention deleted) is migrated: its sessions ranked by id as
/// before, and they go on being kept by activity.
#[test]
fn a_version_8_database_gets_session_activity() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let session = |id: u64| Record::session(SessionId(id), "n", hash_token(&format!("t{id}")));
    store.append(&[session(3), session(1), session(2)]).unwrap();
    drop(store);
    sql(&dir)
        .execute_batch(
            "DROP INDEX sessions_by_active;
             ALTER TABLE sessions DROP COLUMN sent;
             ALTER TABLE sessions DROP COLUMN active;
             ALTER TABLE sessions DROP COLUMN live;
             ALTER TABLE rooms DROP COLUMN pruned;
             PRAGMA user_version = 8;",
        )
        .unwrap();
    let mut store = open(&dir);
    let ids: Vec<u64> = store.sessions(10).unwrap().iter().map(|s| s.id.0).collect();
    assert_eq!(ids, [1, 2, 3]);
    store
        .append(&[Record::attached(SessionId(1), false)])
        .unwrap();
    assert_eq!(store.forget_sessions(1).unwrap(), 2);
    let ids: Vec<u64> = store.sessions(10).unwrap().iter().map(|s| s.id.0).collect();
    assert_eq!(ids, [1]);
    let version: i64 = sql(&dir)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, chatstore::SCHEMA_VERSION);
}

/// A session that lost its connection keeps the rooms and seqs of the
/// messages whose ids it remembered then (schema v11): a restarted server
/// reads them back (`messages_at`, a chunk at a time) to give the ids
/// again, however many messages came after. Resumed, it keeps them (it
/// sent nothing since); detached again, the new list replaces them.
#[test]
fn a_detached_session_keeps_the_messages_it_may_send_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    store
        .append(&[Record::session(SessionId(1), "alice", hash_token("t1"))])
        .unwrap();
    let mut batch = Vec::new();
    for seq in 1..=200 {
        batch.push(msg("rust", seq, 1, &[], &format!("m{seq}")));
    }
    put(&mut store, "e", &batch);
    let rust: Arc<str> = Arc::from("rust");
    let bb: Arc<str> = Arc::from("bb");
    let sent = vec![
        (Arc::clone(&rust), 3),
        (Arc::clone(&bb), 9),
        (Arc::clone(&rust), 150),
        (Arc::clone(&rust), 151),
    ];
    store
        .append(&[Record::detached(SessionId(1), sent)])
        .unwrap();
    drop(store);
    let mut store = open(&dir);
    let back = |store: &Store| store.sessions(10).unwrap()[0].sent.clone();
    let want = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
        v.iter().map(|(r, s)| (r.to_string(), *s)).collect()
    };
    assert_eq!(
        back(&store),
        want(&[("rust", 3), ("bb", 9), ("rust", 150), ("rust", 151)])
    );
    // Read back a chunk at a time; a seq not stored, or a room unknown,
    // is passed over.
    let at = store.messages_at("rust", &[3, 150, 151, 500]).unwrap();
    assert_eq!(texts(&at), ["m3", "m150", "m151"]);
    assert!(store.messages_at("bb", &[9]).unwrap().is_empty());
    // Resumed: kept. Detached again: replaced.
    store
        .append(&[Record::attached(SessionId(1), true)])
        .unwrap();
    assert_eq!(back(&store).len(), 4);
    store
        .append(&[Record::detached(SessionId(1), vec![(rust, 200)])])
        .unwrap();
    assert_eq!(back(&store), want(&[("rust", 200)]));
}

/// A version 10 database (sessions without what they sent) is migrated:
/// its sessions come back with no list, and a lost connection gives them
/// one.
#[test]
fn a_version_10_database_gets_what_sessions_sent() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    store
        .append(&[Record::session(SessionId(1), "n", hash_token("t1"))])
        .unwrap();
    drop(store);
    sql(&dir)
        .execute_batch(
            "ALTER TABLE sessions DROP COLUMN sent;
             PRAGMA user_version = 10;",
        )
        .unwrap();
    let mut store = open(&dir);
    let sessions = store.sessions(10).unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].sent.is_empty());
    store
        .append(&[Record::detached(SessionId(1), vec![(Arc::from("rust"), 7)])])
        .unwrap();
    assert_eq!(
        store.sessions(10).unwrap()[0].sent,
        [("rust".to_owned(), 7)]
    );
    let version: i64 = sql(&dir)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, chatstore::SCHEMA_VERSION);
}

#[test]
fn recent_and_export_read_a_room_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let mut batch = vec![presence("rust", 1, 1)];
    for seq in 2..=6 {
        batch.push(msg("rust", seq, 1, &[], &format!("m{seq}")));
    }
    put(&mut store, "e", &batch);
    assert_eq!(texts(&store.recent("rust", 2).unwrap()), ["m5", "m6"]);
    assert_eq!(texts(&exported(&store, "rust", 3)), ["m4", "m5", "m6"]);
    assert!(store.recent("nowhere", 5).unwrap().is_empty());
}

/// An export reads a page at a time, each in a read transaction of its
/// own, ended before the page is handed out: paused between pages (its
/// reader not reading), it holds no snapshot, so a checkpoint empties the
/// log while the server writes on. What was stored meanwhile comes in a
/// later page; a room begun again meanwhile ends its export.
#[test]
fn an_export_holds_no_snapshot_between_its_pages() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    // Two and a half pages of events, every tenth a presence.
    let n = chatstore::EXPORT_PAGE_EVENTS as u64 * 5 / 2;
    let event = |seq: u64| match seq % 10 {
        0 => presence("rust", seq, 2),
        _ => msg("rust", seq, 1, &[], &format!("m{seq}")),
    };
    put(&mut store, "e", &(1..=n).map(event).collect::<Vec<_>>());
    let reader = Store::open_read_only(dir.path()).unwrap();
    let mut pages = reader.export("rust", 0);
    let first = pages.next().unwrap().unwrap();
    assert_eq!(first.len(), chatstore::EXPORT_PAGE_EVENTS * 9 / 10);
    put(&mut store, "e", &[msg("rust", n + 1, 1, &[], "later")]);
    let (busy, log, copied): (i64, i64, i64) = sql(&dir)
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((busy, log, copied), (0, 0, 0), "the log emptied");
    let rest: Vec<Vec<Event>> = pages.collect::<Result<_, _>>().unwrap();
    assert_eq!(rest.len(), 2, "two more pages");
    let seqs: Vec<u64> = first
        .iter()
        .chain(rest.iter().flatten())
        .map(|e| e.seq)
        .collect();
    let want: Vec<u64> = (1..=n + 1).filter(|s| s % 10 != 0).collect();
    assert_eq!(seqs, want);
    // The room begun again between two pages: the export ends there.
    let mut pages = reader.export("rust", 0);
    assert_eq!(pages.next().unwrap().unwrap()[0].seq, 1);
    put(&mut store, "f", &(1..=n).map(event).collect::<Vec<_>>());
    assert!(pages.next().is_none());
    assert_eq!(exported(&reader, "rust", 0).len(), want.len() - 1);
}

/// The messages stamped from a time on, newest first up to a count (what
/// a restarted server reads of a room it leaves unloaded, for the ids a
/// resumed session may send again).
#[test]
fn recent_since_stops_at_the_first_older_message_or_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let mut batch = vec![presence("rust", 1, 1)];
    for seq in 2..=6 {
        batch.push(msg("rust", seq, 1, &[], &format!("m{seq}")));
    }
    put(&mut store, "e", &batch);
    put(&mut store, "e", &[presence("rust", 7, 1)]);
    let since = |limit, ts| texts(&store.recent_since("rust", limit, ts).unwrap());
    assert_eq!(since(10, T + 4), ["m4", "m5", "m6"]);
    assert_eq!(since(2, T), ["m5", "m6"]);
    assert_eq!(since(10, T), ["m2", "m3", "m4", "m5", "m6"]);
    assert!(since(10, T + 7).is_empty());
    assert!(since(0, T).is_empty());
    assert!(store.recent_since("nowhere", 5, 0).unwrap().is_empty());
}

#[test]
fn a_room_begun_again_starts_its_history_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    put(&mut store, "old", &[msg("rust", 1, 1, &[], "before")]);
    // The same epoch again changes nothing; a new one starts over at seq 1.
    put(&mut store, "old", &[msg("rust", 2, 1, &[], "still")]);
    put(&mut store, "new", &[msg("rust", 1, 1, &[], "after")]);
    let rooms = store.rooms().unwrap();
    assert_eq!((rooms[0].epoch.as_str(), rooms[0].last_seq), ("new", 1));
    assert_eq!(texts(&store.recent("rust", 10).unwrap()), ["after"]);
}

#[test]
fn the_same_epoch_again_in_a_batch_keeps_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    put(&mut store, "e", &[msg("b", 1, 1, &[], "one")]);
    // The room record again, same epoch, between two of its events: found
    // by tests/model.rs (the room's last seq stayed behind its events, so
    // after a restart the next seq would have been taken).
    store
        .append(&[
            Record::Event(Arc::new(msg("b", 2, 1, &[], "two"))),
            Record::room("b", "e"),
            Record::Event(Arc::new(msg("b", 3, 1, &[], "three"))),
            Record::room("b", "e"),
        ])
        .unwrap();
    assert_eq!(store.rooms().unwrap()[0].last_seq, 3);
    drop(store);
    let mut store = open(&dir);
    put(&mut store, "e", &[msg("b", 4, 1, &[], "four")]);
    assert_eq!(
        texts(&store.recent("b", 10).unwrap()),
        ["one", "two", "three", "four"]
    );
}

/// A room record carries the highest seq the server gave out (presence
/// changes it applied unstored while the store failed): the room's last
/// seq rises to it, whether the room is known, new or begun again, so a
/// restarted server goes on above it; a later event at or below it is
/// out of order. Before, the same epoch again left the last seq as it
/// was (a new room started at 0), and seqs 3 and 4 were given again.
#[test]
fn a_room_record_raises_the_rooms_last_seq_to_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    put(
        &mut store,
        "e",
        &[presence("lobby", 1, 1), presence("lobby", 2, 2)],
    );
    store
        .append(&[
            Record::Event(Arc::new(msg("lobby", 3, 1, &[], "in this batch"))),
            Record::room_at("lobby", "e", 4),
            Record::room_at("late", "e1", 7),
            Record::room_at("again", "e1", 0),
            Record::room_at("again", "e2", 5),
        ])
        .unwrap();
    // A lower seq never lowers it.
    store.append(&[Record::room_at("lobby", "e", 1)]).unwrap();
    drop(store);
    let mut store = open(&dir);
    let last: Vec<(String, u64)> = store
        .rooms()
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.last_seq))
        .collect();
    let want = [("again", 5), ("late", 7), ("lobby", 4)].map(|(n, s)| (n.to_owned(), s));
    assert_eq!(last, want);
    let stale = Record::Event(Arc::new(msg("lobby", 4, 1, &[], "taken")));
    assert!(matches!(
        store.append(&[stale]),
        Err(StoreError::OutOfOrder { seq: 4, .. })
    ));
    put(&mut store, "e", &[msg("lobby", 5, 1, &[], "next")]);
    let said = texts(&store.recent("lobby", 10).unwrap());
    assert_eq!(said, ["in this batch", "next"]);
}

#[test]
fn events_before_their_new_rooms_record_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    put(&mut store, "e", &[msg("a", 1, 1, &[], "in a")]);
    // Room x's event, then x's record: refused as if the record were not
    // there (it stored the event but not x's last seq before).
    let err = store
        .append(&[
            Record::Event(Arc::new(msg("a", 2, 1, &[], "a again"))),
            Record::Event(Arc::new(msg("x", 1, 1, &[], "too early"))),
            Record::room("x", "e"),
        ])
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::UnknownRoom(r) if r == "x"),
        "{err}"
    );
    // All or nothing: a's event did not go in either, nor room x.
    let rooms = store.rooms().unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].last_seq, 1);
    assert_eq!(texts(&store.recent("a", 10).unwrap()), ["in a"]);
}

#[test]
fn a_stamp_from_a_clock_set_ahead_holds_no_retention_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = pruned_around_a_stamp_from_the_future(&dir);
    assert_eq!(texts(&store.recent("r", 10).unwrap()), ["m1", "m4", "m5"]);
}

/// Room `r` (epoch `e`): seq 1 stamped a year ahead (the clock was
/// wrong), then 2..=5 at T + seq, as the corrected clock stamps them;
/// then pruned of what is older than 10 ms at T + 14: seqs 2 and 3 go,
/// seq 1 waits for its time, seqs 4 and 5 are young.
fn pruned_around_a_stamp_from_the_future(dir: &tempfile::TempDir) -> Store {
    let mut store = open(dir);
    let mut batch: Vec<Event> = (1..=5)
        .map(|s| msg("r", s, 1, &[], &format!("m{s}")))
        .collect();
    batch[0].ts = T + 365 * 24 * 3_600_000;
    put(&mut store, "e", &batch);
    while store.prune(T + 14, 10, 1_000, 100).unwrap() > 0 {}
    store
}

/// Where a room's history starts is above every seq retention deleted,
/// though a message stamped in the future is kept below that: the room
/// reported seq 1 (the kept message) as its oldest while 2 and 3 were
/// gone, so `entered.oldest` promised them and a replay from `since` 1
/// was taken as whole. A room begun again starts over.
#[test]
fn history_starts_above_what_retention_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = pruned_around_a_stamp_from_the_future(&dir);
    assert_eq!(texts(&store.recent("r", 10).unwrap()), ["m1", "m4", "m5"]);
    assert_eq!(store.rooms().unwrap()[0].oldest, 4);
    let query = ReadQuery::new("r", SessionId(1), 1, 6, 50);
    assert_eq!(store.read(&query).unwrap().oldest, Some(4));
    drop(store);
    let mut store = open(&dir);
    assert_eq!(store.rooms().unwrap()[0].oldest, 4, "kept across a restart");
    put(&mut store, "e2", &[msg("r", 1, 1, &[], "again")]);
    assert_eq!(store.rooms().unwrap()[0].oldest, 1);
}

/// A pass of retention goes on while a step says `more`, from the room
/// the last step stopped in: every room's old events go, each step tells
/// only the rooms it deleted from, and the pass then ends.
#[test]
fn a_retention_pass_goes_on_from_where_its_last_step_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let mut batch = Vec::new();
    for room in ["a", "b", "c", "d"] {
        batch.extend((1..=5).map(|s| msg(room, s, 1, &[], "old")));
    }
    // Room b is young: nothing of it goes.
    for e in batch.iter_mut().filter(|e| &*e.room == "b") {
        e.ts += 1_000;
    }
    put(&mut store, "e", &batch);
    let mut steps = Vec::new();
    loop {
        let step = store.prune_step(T + 100, 50, 1_000, 4).unwrap();
        steps.push((step.deleted, step.rooms.clone()));
        if !step.more {
            break;
        }
        assert!(steps.len() < 10, "{steps:?}");
    }
    let all: usize = steps.iter().map(|(n, _)| n).sum();
    assert_eq!(all, 15, "{steps:?}");
    let told: Vec<String> = steps.iter().flat_map(|(_, r)| r.clone()).collect();
    assert!(!told.contains(&"b".to_owned()), "{steps:?}");
    for room in ["a", "c", "d"] {
        assert!(told.contains(&room.to_owned()), "{room}: {steps:?}");
    }
    assert_eq!(texts(&store.recent("b", 10).unwrap()).len(), 5);
    // The next pass begins at the first room again, with nothing to do
    // but to look: at most 4 rooms a step.
    let step = store.prune_step(T + 100, 50, 1_000, 4).unwrap();
    assert_eq!((step.deleted, step.more), (0, false));
    let step = store.prune_step(T + 100, 50, 1_000, 2).unwrap();
    assert_eq!(
        (step.deleted, step.more),
        (0, true),
        "two rooms looked at of four"
    );
    let step = store.prune_step(T + 100, 50, 1_000, 2).unwrap();
    assert_eq!((step.deleted, step.more), (0, false), "the other two");
}

/// Messages stamped in the future (a clock that was ahead) before old
/// ones, fewer than a step looks at: a pass still deletes every old one,
/// a step at a time. It ended after the first step, which could delete
/// only what the stamps left of it, so a room gained a few deletions a
/// pass.
#[test]
fn stamps_from_the_future_do_not_end_a_pass_early() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let mut batch: Vec<Event> = (1..=30).map(|s| msg("r", s, 1, &[], "m")).collect();
    for e in &mut batch[..8] {
        e.ts = T + 365 * 24 * 3_600_000;
    }
    put(&mut store, "e", &batch);
    let mut deleted = 0;
    for _ in 0..20 {
        let step = store.prune_step(T + 1_000, 10, 1_000, 10).unwrap();
        deleted += step.deleted;
        if !step.more {
            break;
        }
    }
    assert_eq!(deleted, 22, "all but the 8 stamped ahead");
}

#[test]
fn an_event_too_old_and_past_the_count_is_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let batch: Vec<Event> = (1..=10).map(|s| msg("r", s, 1, &[], "x")).collect();
    put(&mut store, "e", &batch);
    // Everything before T + 9 is too old (seqs 1-8), and all but the
    // newest 4 are past the count (seqs 1-6): 8 go, counted once each.
    assert_eq!(store.prune(T + 19, 10, 4, 100).unwrap(), 8);
    assert_eq!(store.rooms().unwrap()[0].oldest, 9);
    assert_eq!(store.prune(T + 19, 10, 4, 100).unwrap(), 0);
}

#[test]
fn a_full_store_refuses_a_batch_whole_keeps_reading_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    put(&mut store, "e", &[msg("rust", 1, 1, &[], "kept")]);
    store.set_max_bytes(Some(1)).unwrap();
    let big: Vec<Event> = (2..200)
        .map(|seq| msg("rust", seq, 1, &[], &"x".repeat(4_000)))
        .collect();
    let batch = records("e", &big);
    // Named as the cap, not as SQLite's "database or disk is full": the
    // disk has room.
    let err = store.append(&batch).unwrap_err();
    assert!(matches!(err, StoreError::AtCap { bytes: 1, .. }), "{err}");
    assert!(err.to_string().contains("size cap"), "{err}");
    assert!(matches!(store.probe(&batch), Err(StoreError::AtCap { .. })));
    // Nothing of the failed batch is there; what was stored still reads.
    assert_eq!(texts(&store.recent("rust", 10).unwrap()), ["kept"]);
    assert_eq!(store.rooms().unwrap()[0].last_seq, 1);
    // The cause goes away: a probe says so, and the batch goes in.
    store.set_max_bytes(None).unwrap();
    store.probe(&batch).unwrap();
    assert_eq!(
        store.rooms().unwrap()[0].last_seq,
        1,
        "a probe stores nothing"
    );
    store.append(&batch).unwrap();
    assert_eq!(store.rooms().unwrap()[0].last_seq, 199);
}

/// The database file deleted (or another put in its place) while the
/// store has it open: SQLite would write on into the file no name leads
/// to, every batch acknowledged and all of it lost at the close. Refused
/// instead, and no probe says it works again.
#[test]
fn a_database_deleted_while_open_refuses_every_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    put(&mut store, "e", &[msg("rust", 1, 1, &[], "kept")]);
    let db = dir.path().join(chatstore::DB_FILE);
    std::fs::remove_file(&db).unwrap();
    let batch = records("e", &[msg("rust", 2, 1, &[], "after")]);
    let err = store.append(&batch).unwrap_err();
    assert!(matches!(err, StoreError::Gone(_)), "{err}");
    assert!(err.to_string().contains("deleted or replaced"), "{err}");
    assert!(store.probe(&batch).is_err());
    // Another file in its place is not the one open either.
    std::fs::write(&db, b"").unwrap();
    assert!(matches!(store.append(&batch), Err(StoreError::Gone(_))));
}

#[test]
fn a_version_1_database_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    // A database as version 1 wrote it: no sessions, recipients in a
    // table of their own.
    let db = sql(&dir);
    db.execute_batch(
        "CREATE TABLE rooms (name TEXT PRIMARY KEY, epoch TEXT NOT NULL,
                             last_seq INTEGER NOT NULL) WITHOUT ROWID;
         CREATE TABLE events (room TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL,
                              kind INTEGER NOT NULL, session INTEGER NOT NULL,
                              nick TEXT NOT NULL, online INTEGER, text TEXT, msg_id TEXT,
                              to_all INTEGER NOT NULL,
                              PRIMARY KEY (room, seq)) WITHOUT ROWID;
         CREATE TABLE recipients (room TEXT NOT NULL, seq INTEGER NOT NULL,
                                  position INTEGER NOT NULL, session INTEGER NOT NULL,
                                  nick TEXT NOT NULL,
                                  PRIMARY KEY (room, seq, position)) WITHOUT ROWID;
         CREATE INDEX events_by_ts ON events (ts);
         INSERT INTO rooms VALUES ('rust', 'e', 2);
         INSERT INTO events VALUES ('rust', 1, 1, 1, 1, 'n1', NULL, 'from v1', NULL, 1);
         INSERT INTO events VALUES ('rust', 2, 2, 1, 1, 'n1', NULL, 'psst', 'id2', 0);
         INSERT INTO recipients VALUES ('rust', 2, 0, 3, 'n3');
         INSERT INTO recipients VALUES ('rust', 2, 1, 4, 'n4');
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(db);
    let store = open(&dir);
    assert!(store.sessions(10).unwrap().is_empty());
    // v5 found the highest writer (session 1, with no record of its own)
    // in the events, once, for the next free session id.
    assert_eq!(store.next_session().unwrap(), 2);
    assert_eq!(
        texts(&store.recent("rust", 10).unwrap()),
        ["from v1", "psst"]
    );
    // The private message kept its recipients, in order, and who may see it.
    let (page, _) = store.page("rust", SessionId(4), u64::MAX, 10).unwrap();
    let EventBody::Msg { to, .. } = &page[1].body else {
        panic!("{page:?}");
    };
    let to: Vec<(u64, &str)> = to.iter().map(|r| (r.session.0, &*r.nick)).collect();
    assert_eq!(to, [(3, "n3"), (4, "n4")]);
    assert_eq!(
        texts(&store.page("rust", SessionId(5), u64::MAX, 10).unwrap().0),
        ["from v1"]
    );
    // v4 dropped the index on `ts`.
    drop(store);
    let db = sql(&dir);
    let indexes: i64 = db
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'events_by_ts'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 0);
}

#[test]
fn a_big_batch_keeps_its_order_across_rooms_and_a_room_begun_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    // 100 events in two rooms (not a multiple of the rows per statement),
    // private and public, then "b" begun again mid-batch: its first 40
    // events go, what follows in the same batch stays.
    let mut recs = vec![Record::room("a", "e1"), Record::room("b", "e1")];
    let (mut a, mut b) = (0, 0);
    let mut want_a = Vec::new();
    for i in 0..100u64 {
        let e = if i % 2 == 0 {
            a += 1;
            want_a.push(format!("a{a}"));
            msg(
                "a",
                a,
                1,
                if i % 4 == 0 { &[] } else { &[2, 3] },
                &format!("a{a}"),
            )
        } else {
            b += 1;
            msg("b", b, 1, &[], &format!("b{b}"))
        };
        recs.push(Record::Event(Arc::new(e)));
        if i == 79 {
            recs.push(Record::room("b", "e2"));
            b = 0;
        }
    }
    store.append(&recs).unwrap();
    assert_eq!(texts(&store.recent("a", 100).unwrap()), want_a);
    let want_b: Vec<String> = (1..=10).map(|n| format!("b{n}")).collect();
    assert_eq!(texts(&store.recent("b", 100).unwrap()), want_b);
    let rooms = store.rooms().unwrap();
    let last: Vec<(&str, &str, u64)> = rooms
        .iter()
        .map(|r| (r.name.as_str(), r.epoch.as_str(), r.last_seq))
        .collect();
    assert_eq!(last, [("a", "e1", 50), ("b", "e2", 10)]);
    // Who may see what survived the multi-row statements.
    let (page, _) = store.page("a", SessionId(9), u64::MAX, 100).unwrap();
    assert_eq!(page.len(), 25, "only the public half");
    let (page, _) = store.page("a", SessionId(3), u64::MAX, 100).unwrap();
    assert_eq!(page.len(), 50);
}

#[test]
fn a_reader_sees_what_a_running_server_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    put(&mut store, "e", &[msg("rust", 1, 1, &[], "live")]);
    let reader = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(texts(&reader.recent("rust", 10).unwrap()), ["live"]);
    // A reader takes no lock: the writer goes on.
    put(&mut store, "e", &[msg("rust", 2, 1, &[], "more")]);
    assert_eq!(reader.rooms().unwrap()[0].last_seq, 2);
}

/// A directory no server holds, with no log to fold in, is read as a file
/// that cannot change: SQLite makes no shared-memory file or log beside
/// it (`chatserver export` creates nothing), and a server holding the
/// directory meanwhile would find it in use.
#[test]
fn reading_a_directory_no_server_holds_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    put(&mut store, "e", &[msg("rust", 1, 1, &[], "kept")]);
    drop(store);
    let names = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = names();
    let reader = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(texts(&reader.recent("rust", 10).unwrap()), ["kept"]);
    assert!(matches!(
        Store::open(dir.path(), Sync::Normal),
        Err(StoreError::Locked(_))
    ));
    drop(reader);
    assert_eq!(names(), before, "the reader left files behind");
}

/// A database whose shared-memory file cannot be made (its directory on
/// a read-only mount, say: here a link to nowhere stands in its place) is
/// still read once its writer has gone, as a file that cannot change; one
/// whose log holds writes not yet folded in is refused, saying why.
#[cfg(unix)]
#[test]
fn a_database_in_a_directory_that_cannot_be_written_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    put(&mut store, "e", &[msg("rust", 1, 1, &[], "kept")]);
    drop(store);
    let shm = dir.path().join("chat.db-shm");
    let wal = dir.path().join("chat.db-wal");
    let _ = std::fs::remove_file(&shm);
    let _ = std::fs::remove_file(&wal);
    std::os::unix::fs::symlink(dir.path().join("gone/shm"), &shm).unwrap();
    let reader = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(texts(&reader.recent("rust", 10).unwrap()), ["kept"]);
    drop(reader);
    std::fs::write(&wal, b"not folded in").unwrap();
    let Err(err) = Store::open_read_only(dir.path()) else {
        panic!("a log not folded in was read past");
    };
    // One thing to do, not also another --data-dir.
    let said = err.to_string();
    assert_eq!(
        said,
        format!(
            "cannot read the history in {}: its write-ahead log {} holds writes not yet in \
             chat.db, which SQLite reads only through a chat.db-shm it cannot make in a \
             directory it cannot write; copy the whole directory somewhere writable and \
             export the copy",
            dir.path().display(),
            wal.display()
        )
    );
    assert!(matches!(err, StoreError::UnfoldedLog { .. }), "{err:?}");
}

#[test]
fn a_read_takes_the_newest_in_a_range() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let batch: Vec<Event> = (1..=9)
        .map(|seq| msg("rust", seq, 1, &[], &format!("m{seq}")))
        .collect();
    put(&mut store, "e", &batch);
    let q = chatproto::ReadQuery::new("rust", SessionId(5), 3, 8, 2);
    let page = store.read(&q).unwrap();
    assert_eq!(
        (texts(&page.events), page.more, page.from),
        (vec!["m6".into(), "m7".into()], true, 6)
    );
    let q = chatproto::ReadQuery::new("rust", SessionId(5), 5, 8, 10);
    let page = store.read(&q).unwrap();
    assert_eq!(
        (texts(&page.events), page.more),
        (vec!["m6".into(), "m7".into()], false)
    );
}

/// A read says where the room's history starts once its page is read:
/// the server learns from it that retention deleted part of a replay's
/// range before the pass's report reached it (it had no way to, and
/// told a client whose replay lost two messages `recovered: true`).
#[test]
fn a_read_says_where_the_rooms_history_starts() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let batch: Vec<Event> = (1..=10).map(|n| msg("lobby", n, 1, &[], "m")).collect();
    put(&mut store, "e", &batch);
    let query = ReadQuery::new("lobby", SessionId(1), 1, 11, 50);
    assert_eq!(store.read(&query).unwrap().oldest, Some(1));
    assert_eq!(store.prune(T, u64::MAX, 6, 1_000).unwrap(), 4);
    let page = store.read(&query).unwrap();
    assert_eq!((page.events.len(), page.oldest), (6, Some(5)));
    // A room the store does not hold says nothing.
    let elsewhere = ReadQuery::new("nowhere", SessionId(1), 0, 5, 50);
    assert_eq!(store.read(&elsewhere).unwrap().oldest, None);
}

#[test]
fn a_read_looks_at_no_more_than_its_scan() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    // Session 3 said m1; then 1 said twenty things to 2.
    let mut batch = vec![msg("rust", 1, 3, &[], "m1")];
    batch.extend((2..=21).map(|seq| msg("rust", seq, 1, &[2], &format!("p{seq}"))));
    put(&mut store, "e", &batch);
    let mut pages = Vec::new();
    let mut before = 22;
    // Bounded: 21 seqs, 8 a page.
    for _ in 0..5 {
        let q = chatproto::ReadQuery::new("rust", SessionId(3), 0, before, 5).with_scan(8);
        let page = store.read(&q).unwrap();
        pages.push((texts(&page.events), page.more, page.from, page.looked_at));
        if !page.more {
            break;
        }
        before = page.from;
    }
    // Each says what it looked at: its 8 seqs, and the one older that
    // says there is more.
    let none = Vec::<String>::new();
    assert_eq!(
        pages,
        [
            (none.clone(), true, 14, 9),
            (none.clone(), true, 6, 9),
            (vec!["m1".to_owned()], false, 1, 5),
        ]
    );
    // Session 2 may see them: a full page stops at its oldest message,
    // having looked at one more.
    let q = chatproto::ReadQuery::new("rust", SessionId(2), 0, 22, 5).with_scan(8);
    let page = store.read(&q).unwrap();
    assert_eq!(
        (page.events.len(), page.more, page.from, page.looked_at),
        (5, true, 17, 6)
    );
}

#[test]
fn another_programs_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(chatstore::DB_FILE);
    {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('mine');")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(dir.path(), Sync::Normal).unwrap_err();
    assert!(matches!(err, StoreError::Foreign(_)), "{err:?}");
    assert!(err.to_string().contains("another program"), "{err}");
    // An export says the same (it advised migrating the file by starting
    // a server on it, which the server then refused).
    let Err(err) = Store::open_read_only(dir.path()) else {
        panic!("another program's database opened for an export");
    };
    assert!(matches!(err, StoreError::Foreign(_)), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn the_log_is_copied_into_the_database_beside_the_appends() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let db = dir.path().join(chatstore::DB_FILE);
    let wal = dir.path().join(format!("{}-wal", chatstore::DB_FILE));
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    // About 12 MB of messages in batches of 100: the log passes
    // CHECKPOINT_PAGES (4 MB of 4 KiB pages) three times over.
    let seq = put_big(&mut store, 120);
    // The checkpoint thread copies in the background: wait for it, within
    // a bound.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while size(&db) < 4_000_000 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(size(&db) >= 4_000_000, "chat.db holds {} bytes", size(&db));
    let max_wal = log_bytes(u64::try_from(chatstore::CHECKPOINT_PAGES_MAX).unwrap());
    assert!(size(&wal) <= max_wal, "the log holds {} bytes", size(&wal));
    assert_eq!(store.recent("big", 3).unwrap().len(), 3);
    drop(store);
    let store = open(&dir);
    assert_eq!(store.rooms().unwrap()[0].last_seq, seq);
}

/// A log grown long (a reader held a snapshot while the server wrote:
/// no checkpoint could empty it) is cut back once a checkpoint has: to
/// what the checkpoint thread's threshold holds, an eighth of a small
/// cap (SQLite kept the file as long as it grew: 335 MB after an export
/// paused while a million messages were stored).
#[test]
fn a_long_log_is_cut_back_once_a_checkpoint_emptied_it() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join(format!("{}-wal", chatstore::DB_FILE));
    let wal_size = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    let mut store = open(&dir);
    // 4 MiB: 1,024 pages, the log kept to 128, the writer checkpointing
    // past 256.
    store.set_max_bytes(Some(4 << 20)).unwrap();
    let reader = sql(&dir);
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM rooms;")
        .unwrap();
    // About 2.5 MB.
    let mut seq = put_big(&mut store, 20);
    let grown = wal_size();
    assert!(grown > log_bytes(512), "the log grew to {grown}");
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    // The next commit finds the log long and copies it all; the one after
    // writes it again from its start, cut back then. A few more, should
    // the checkpoint thread have held a lock that one needed.
    for _ in 0..50 {
        seq += 1;
        put(&mut store, "e", &[msg("big", seq, 1, &[], "small")]);
        if wal_size() <= log_bytes(128) {
            break;
        }
    }
    assert!(
        wal_size() <= log_bytes(128),
        "the log holds {} bytes, from {grown}",
        wal_size()
    );
    assert_eq!(store.rooms().unwrap()[0].last_seq, seq);
}

/// Under a small cap, commits one after another (a message a batch, as
/// a busy server's turns go) keep the log to a part of the cap: past a
/// quarter of it the writer waits for the checkpoint thread's copy and
/// checkpoints itself, so the next commit writes the log from its start.
/// (The thread, checkpointing without a pause, kept the writer's own
/// checkpoint busy, and the log never started again while the writes
/// went on: 23.7 MB beside a cap of 2 MiB.)
#[test]
fn commits_without_a_pause_keep_the_log_to_a_part_of_a_small_cap() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join(format!("{}-wal", chatstore::DB_FILE));
    let mut store = open(&dir);
    // 4 MiB: 1,024 pages, the writer checkpointing past 256.
    store.set_max_bytes(Some(4 << 20)).unwrap();
    let mut largest = 0;
    for seq in 1..=3_000 {
        put(&mut store, "e", &[msg("busy", seq, 1, &[], "hello")]);
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    // A quarter of the cap, and room for a few commits more that did not
    // start the log again (the thread held a lock that needed).
    let most = log_bytes(384);
    assert!(largest <= most, "the log grew to {largest} bytes");
    assert_eq!(store.rooms().unwrap()[0].last_seq, 3_000);
}

#[test]
fn a_room_begun_again_keeps_its_writers_sessions_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    // Session 5 writes, then the room begins again in the same batch:
    // its event is gone, but no new session may take id 5.
    store
        .append(&[
            Record::room("a", "e1"),
            Record::Event(Arc::new(msg("a", 1, 5, &[], "gone"))),
            Record::room("a", "e2"),
            Record::Event(Arc::new(presence("a", 1, 2))),
        ])
        .unwrap();
    assert_eq!(store.next_session().unwrap(), 6);
    assert_eq!(store.rooms().unwrap()[0].last_seq, 1);
    // And across batches, and a reopen.
    store
        .append(&[
            Record::room("a", "e3"),
            Record::Event(Arc::new(presence("a", 1, 3))),
        ])
        .unwrap();
    drop(store);
    assert_eq!(open(&dir).next_session().unwrap(), 6);
}

/// A database as versions 4 (`max_session: false`) and 5 wrote it: events
/// keyed by their room's name and seq. Room `rust`: a message to all from
/// session 7, a private one from 7 to 3, a presence of 9; room `go`: two
/// messages from 2.
fn old_database(dir: &tempfile::TempDir, max_session: bool) {
    let db = sql(dir);
    db.execute_batch(
        "CREATE TABLE rooms (name TEXT PRIMARY KEY, epoch TEXT NOT NULL,
                             last_seq INTEGER NOT NULL) WITHOUT ROWID;
         CREATE TABLE events (room TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL,
                              kind INTEGER NOT NULL, session INTEGER NOT NULL,
                              nick TEXT NOT NULL, online INTEGER, text TEXT, msg_id TEXT,
                              to_all INTEGER NOT NULL, to_sessions TEXT, to_nicks TEXT,
                              PRIMARY KEY (room, seq)) WITHOUT ROWID;
         CREATE TABLE sessions (id INTEGER PRIMARY KEY, nick TEXT NOT NULL,
                                token_hash BLOB NOT NULL);
         INSERT INTO rooms VALUES ('rust', 'e1', 3), ('go', 'e2', 2);
         INSERT INTO events VALUES
             ('rust', 1, 1001, 1, 7, 'n7', NULL, 'to all', 'id1', 1, NULL, NULL),
             ('rust', 2, 1002, 1, 7, 'n7', NULL, 'psst', 'id2', 0, ',3,', 'n3'),
             ('rust', 3, 1003, 0, 9, 'n9', 1, NULL, NULL, 1, NULL, NULL),
             ('go', 1, 1004, 1, 2, 'n2', NULL, 'go 1', NULL, 1, NULL, NULL),
             ('go', 2, 1005, 1, 2, 'n2', NULL, 'go 2', NULL, 1, NULL, NULL);
         PRAGMA user_version = 4;",
    )
    .unwrap();
    if max_session {
        db.execute_batch(
            "ALTER TABLE rooms ADD COLUMN max_session INTEGER NOT NULL DEFAULT -1;
             UPDATE rooms SET max_session = CASE name WHEN 'rust' THEN 9 ELSE 2 END;
             PRAGMA user_version = 5;",
        )
        .unwrap();
    }
}

/// What a store gives back of the database `old_database` wrote.
fn read_old(store: &Store) {
    let rooms: Vec<(String, String, u64, u64)> = store
        .rooms()
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.epoch, r.last_seq, r.oldest))
        .collect();
    assert_eq!(
        rooms,
        [
            ("go".to_owned(), "e2".to_owned(), 2, 1),
            ("rust".to_owned(), "e1".to_owned(), 3, 1)
        ]
    );
    assert_eq!(
        texts(&store.recent("rust", 10).unwrap()),
        ["to all", "psst"]
    );
    assert_eq!(texts(&store.recent("go", 1).unwrap()), ["go 2"]);
    let (page, more) = store.page("rust", SessionId(3), u64::MAX, 10).unwrap();
    assert_eq!(
        (texts(&page), more),
        (vec!["to all".into(), "psst".into()], false)
    );
    assert_eq!(page[1].seq, 2);
    assert_eq!(page[1].ts, 1002);
    let (page, more) = store.page("rust", SessionId(4), u64::MAX, 10).unwrap();
    assert_eq!((texts(&page), more), (vec!["to all".into()], false));
    let (page, more) = store.page("go", SessionId(4), 2, 10).unwrap();
    assert_eq!((texts(&page), more), (vec!["go 1".into()], false));
    assert_eq!(texts(&exported(store, "go", 1)), ["go 2"]);
    assert!(store.recent("nowhere", 10).unwrap().is_empty());
    assert_eq!(store.next_session().unwrap(), 10);
}

#[test]
fn a_version_4_database_is_read_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    old_database(&dir, false);
    // An export (read-only) reads it without a migration, and still
    // finds the next free session id, from the events.
    let ro = Store::open_read_only(dir.path()).unwrap();
    read_old(&ro);
    drop(ro);
    // A version 3 file is not read as it is.
    let db = sql(&dir);
    db.pragma_update(None, "user_version", 3).unwrap();
    drop(db);
    let err = Store::open_read_only(dir.path()).unwrap_err();
    assert!(
        matches!(err, StoreError::OlderSchema { found: 3, .. }),
        "{err}"
    );
    // The server migrates it (v4 to v6) and reads the same.
    let db = sql(&dir);
    db.pragma_update(None, "user_version", 4).unwrap();
    drop(db);
    read_old(&open(&dir));
}

#[test]
fn a_version_5_database_is_migrated_to_integer_keys_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    old_database(&dir, true);
    read_old(&Store::open_read_only(dir.path()).unwrap());
    let mut store = open(&dir);
    read_old(&store);
    // Each room goes on from its seq, a new room beside them, in one batch.
    store
        .append(&[
            Record::room("rust", "e1"),
            Record::Event(Arc::new(msg("rust", 4, 7, &[], "after"))),
            Record::room("zig", "e3"),
            Record::Event(Arc::new(msg("zig", 1, 11, &[], "zig 1"))),
            Record::Event(Arc::new(msg("go", 3, 2, &[], "go 3"))),
        ])
        .unwrap();
    drop(store);
    let mut store = open(&dir);
    assert_eq!(
        texts(&store.recent("rust", 10).unwrap()),
        ["to all", "psst", "after"]
    );
    assert_eq!(
        texts(&store.recent("go", 10).unwrap()),
        ["go 1", "go 2", "go 3"]
    );
    assert_eq!(texts(&store.recent("zig", 10).unwrap()), ["zig 1"]);
    assert_eq!(store.next_session().unwrap(), 12);
    // Retention by count keeps each room's newest, room by room.
    assert_eq!(store.prune(T * 2, u64::MAX, 1, 100).unwrap(), 5);
    let oldest: Vec<(String, u64, u64)> = store
        .rooms()
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.oldest, r.last_seq))
        .collect();
    assert_eq!(
        oldest,
        [
            ("go".to_owned(), 3, 3),
            ("rust".to_owned(), 4, 4),
            ("zig".to_owned(), 1, 1)
        ]
    );
    drop(store);
    // The sqlite3 tool sees the rows by room name and seq, through the
    // view `history`; the old table is gone.
    let db = sql(&dir);
    let rows: Vec<(String, i64, String)> = db
        .prepare("SELECT room, seq, text FROM history WHERE kind = 1 ORDER BY room, seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        [
            ("go".to_owned(), 3, "go 3".to_owned()),
            ("rust".to_owned(), 4, "after".to_owned()),
            ("zig".to_owned(), 1, "zig 1".to_owned())
        ]
    );
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, chatstore::SCHEMA_VERSION);
}

#[test]
fn a_seq_past_the_key_is_refused_whole_with_its_room_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let last = chatstore::MAX_SEQ;
    put(&mut store, "e", &[msg("edge", last, 1, &[], "the last")]);
    let err = store
        .append(&records(
            "e",
            &[
                msg("edge", 1, 1, &[], "kept?"),
                msg("edge", last + 1, 1, &[], "past"),
            ],
        ))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::KeysFull { room, .. } if room == "edge"),
        "{err}"
    );
    assert!(err.to_string().contains("room edge"), "{err}");
    // Nothing of the batch went in; the room's last event reads back.
    let (page, more) = store.page("edge", SessionId(1), u64::MAX, 10).unwrap();
    assert_eq!((texts(&page), more), (vec!["the last".into()], false));
    assert_eq!(page[0].seq, last);
    assert_eq!(store.rooms().unwrap()[0].last_seq, last);
}

#[test]
fn a_forgotten_room_goes_with_its_history_and_its_writer_stays_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    put(
        &mut store,
        "e1",
        &[
            msg("old", 1, 40, &[], "old 1"),
            msg("keep", 1, 2, &[], "keep 1"),
        ],
    );
    // In one batch: more into old, old forgotten, then begun again as new.
    store
        .append(&[
            Record::Event(Arc::new(msg("old", 2, 41, &[], "old 2"))),
            Record::forgotten("old"),
            Record::room("old", "e2"),
            Record::Event(Arc::new(msg("old", 1, 3, &[], "new 1"))),
        ])
        .unwrap();
    assert_eq!(texts(&store.recent("old", 10).unwrap()), ["new 1"]);
    assert_eq!(texts(&store.recent("keep", 10).unwrap()), ["keep 1"]);
    let rooms: Vec<(String, String, u64)> = store
        .rooms()
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.epoch, r.last_seq))
        .collect();
    assert_eq!(
        rooms,
        [
            ("keep".to_owned(), "e1".to_owned(), 1),
            ("old".to_owned(), "e2".to_owned(), 1)
        ]
    );
    // Forgotten for good: gone from the file, its writer (41) counted.
    store.append(&[Record::forgotten("old")]).unwrap();
    drop(store);
    let mut store = open(&dir);
    let names: Vec<String> = store.rooms().unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["keep"]);
    assert!(store.recent("old", 10).unwrap().is_empty());
    assert_eq!(store.next_session().unwrap(), 42);
    // An event of a forgotten room is refused, the batch whole.
    let err = store
        .append(&[
            Record::Event(Arc::new(msg("keep", 2, 2, &[], "keep 2"))),
            Record::Event(Arc::new(msg("old", 2, 3, &[], "lost"))),
        ])
        .unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownRoom(ref r) if r == "old"),
        "{err}"
    );
    assert_eq!(texts(&store.recent("keep", 10).unwrap()), ["keep 1"]);
    // Its number is free again; the room that takes it starts empty.
    put(&mut store, "e3", &[msg("next", 1, 5, &[], "next 1")]);
    assert_eq!(texts(&store.recent("next", 10).unwrap()), ["next 1"]);
    let db = sql(&dir);
    let numbers: Vec<(String, i64)> = db
        .prepare("SELECT name, no FROM rooms ORDER BY no")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(numbers, [("keep".to_owned(), 2), ("next".to_owned(), 3)]);
}

#[test]
fn past_the_highest_room_number_the_lowest_free_one_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    put(
        &mut store,
        "e",
        &[msg("a", 1, 1, &[], "a 1"), msg("b", 1, 1, &[], "b 1")],
    );
    drop(store);
    // As if every number up to the highest had been given: b holds it,
    // and 1 (a) is taken; 2 is free.
    let db = sql(&dir);
    let top = chatstore::MAX_ROOMS as i64;
    db.execute(
        "UPDATE chunks SET id = (?1 << 40) + (id & 1099511627775) WHERE id >> 40 = 2",
        [top],
    )
    .unwrap();
    db.execute("UPDATE rooms SET no = ?1 WHERE name = 'b'", [top])
        .unwrap();
    drop(db);
    let mut store = open(&dir);
    assert_eq!(texts(&store.recent("b", 10).unwrap()), ["b 1"]);
    put(&mut store, "e", &[msg("c", 1, 1, &[], "c 1")]);
    for (room, text) in [("a", "a 1"), ("b", "b 1"), ("c", "c 1")] {
        assert_eq!(texts(&store.recent(room, 10).unwrap()), [text], "{room}");
    }
    let db = sql(&dir);
    let no: i64 = db
        .query_row("SELECT no FROM rooms WHERE name = 'c'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(no, 2);
}

/// Two rooms with neighbouring numbers, the lower one at the highest seq
/// and the upper one at seq 1: reads, `oldest`, retention and a room
/// begun again each stay inside their own room's keys.
#[test]
fn neighbouring_rooms_never_read_or_delete_across_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let top = chatstore::MAX_SEQ;
    put(
        &mut store,
        "e",
        &[
            msg("low", top - 1, 1, &[], "low a"),
            msg("low", top, 1, &[], "low b"),
        ],
    );
    put(
        &mut store,
        "e",
        &[msg("up", 1, 1, &[], "up 1"), msg("up", 2, 1, &[], "up 2")],
    );
    assert_eq!(texts(&store.recent("low", 10).unwrap()), ["low a", "low b"]);
    assert_eq!(texts(&store.recent("up", 10).unwrap()), ["up 1", "up 2"]);
    let (page, more) = store.page("low", SessionId(9), u64::MAX, 10).unwrap();
    assert_eq!(
        (texts(&page), more),
        (vec!["low a".into(), "low b".into()], false)
    );
    let (page, more) = store.page("up", SessionId(9), 2, 10).unwrap();
    assert_eq!((texts(&page), more), (vec!["up 1".into()], false));
    // Reads from at or past the highest seq find nothing, in either room.
    for (room, since) in [("low", top), ("low", u64::MAX), ("up", top)] {
        let out = exported(&store, room, since);
        assert!(out.is_empty(), "{room} {since}: {out:?}");
    }
    let page = store
        .read(&ReadQuery::new("low", SessionId(9), top, u64::MAX, 10))
        .unwrap();
    assert!(page.events.is_empty() && !page.more, "{page:?}");
    let page = store
        .read(&ReadQuery::new("low", SessionId(9), top - 2, u64::MAX, 10))
        .unwrap();
    assert_eq!(texts(&page.events), ["low a", "low b"]);
    let oldest: Vec<(String, u64)> = store
        .rooms()
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.oldest))
        .collect();
    assert_eq!(oldest, [("low".to_owned(), top - 1), ("up".to_owned(), 1)]);
    // Retention by count keeps each room's newest.
    assert_eq!(store.prune(T, u64::MAX, 1, 100).unwrap(), 2);
    assert_eq!(texts(&store.recent("low", 10).unwrap()), ["low b"]);
    assert_eq!(texts(&store.recent("up", 10).unwrap()), ["up 2"]);
    // Each begun again deletes its own events only.
    store.append(&[Record::room("up", "e2")]).unwrap();
    assert_eq!(texts(&store.recent("low", 10).unwrap()), ["low b"]);
    assert!(store.recent("up", 10).unwrap().is_empty());
    put(&mut store, "e2", &[msg("up", 1, 1, &[], "up again")]);
    store.append(&[Record::room("low", "e2")]).unwrap();
    assert!(store.recent("low", 10).unwrap().is_empty());
    assert_eq!(texts(&store.recent("up", 10).unwrap()), ["up again"]);
}

/// A v5 file holding what v6 cannot key is refused whole, and left as it
/// was: a seq past the highest, a room's last seq past it, or events of a
/// room the file does not list.
#[test]
fn a_version_5_file_v6_cannot_key_is_refused_and_left_as_it_was() {
    for bad in [
        "UPDATE events SET seq = 1099511627776 WHERE room = 'go' AND seq = 2",
        "UPDATE rooms SET last_seq = 1099511627776 WHERE name = 'go'",
        "DELETE FROM rooms WHERE name = 'go'",
    ] {
        let dir = tempfile::tempdir().unwrap();
        old_database(&dir, true);
        let db = sql(&dir);
        db.execute_batch(bad).unwrap();
        drop(db);
        let err = Store::open(dir.path(), Sync::Normal).unwrap_err();
        assert!(matches!(err, StoreError::KeysFull { .. }), "{bad}: {err}");
        let db = sql(&dir);
        let version: i64 = db
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        let events: i64 = db
            .query_row(
                "SELECT count(*) FROM events WHERE room IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!((version, events), (5, 5), "{bad}");
    }
}

#[test]
fn any_text_comes_back_as_it_went_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let odd = [
        "quote \" backslash \\ slash / end",
        "tab\tnewline\nreturn\r bell\u{7} escape\u{1b} del\u{7f}",
        "ünïcødé ✓ 🦀 \u{2028}",
        "\\u0041 is not A",
        "",
    ];
    let batch: Vec<Event> = odd
        .iter()
        .enumerate()
        .map(|(i, t)| msg("odd", i as u64 + 1, 1, &[2], t))
        .collect();
    put(&mut store, "e", &batch);
    let (page, _) = store.page("odd", SessionId(2), u64::MAX, 50).unwrap();
    assert_eq!(page, batch);
    drop(store);
    // The sqlite3 tool reads the same through the view.
    let db = sql(&dir);
    let rows: Vec<String> = db
        .prepare("SELECT text FROM history ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, odd);
}

#[test]
fn a_batch_longer_than_a_chunk_and_rooms_taking_turns_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let n = chatstore::CHUNK_EVENTS as u64 * 2 + 5;
    // Two rooms' events interleaved in one batch.
    let mut batch = Vec::new();
    for seq in 1..=n {
        batch.push(msg("a", seq, 1, &[], &format!("a{seq}")));
        batch.push(msg("b", seq, 1, &[], &format!("b{seq}")));
    }
    put(&mut store, "e", &batch);
    let db = sql(&dir);
    let chunks: i64 = db
        .query_row("SELECT count(*) FROM chunks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(chunks, 6, "three chunks a room: 64, 64 and 5 events");
    for room in ["a", "b"] {
        let want: Vec<String> = (1..=n).map(|s| format!("{room}{s}")).collect();
        assert_eq!(texts(&store.recent(room, 1_000).unwrap()), want);
        // A page across a chunk's edge.
        let (page, more) = store.page(room, SessionId(9), 70, 10).unwrap();
        assert_eq!(texts(&page), want[59..69].to_vec());
        assert!(more);
    }
    // Retention by count cuts inside a chunk: the oldest tells the truth.
    assert_eq!(store.prune(T * 2, u64::MAX, n - 70, 1_000).unwrap(), 140);
    for r in store.rooms().unwrap() {
        assert_eq!((r.oldest, r.last_seq), (71, n), "{}", r.name);
    }
    assert_eq!(texts(&store.recent("a", 1).unwrap()), [format!("a{n}")]);
    let (page, more) = store.page("a", SessionId(9), 73, 10).unwrap();
    assert_eq!(
        (texts(&page), more),
        (vec!["a71".into(), "a72".into()], false)
    );
}

#[test]
fn a_version_5_database_becomes_chunks_of_16_seqs() {
    let dir = tempfile::tempdir().unwrap();
    old_database(&dir, true);
    // 130 more messages in `go`, seqs 3 to 132.
    sql(&dir)
        .execute_batch(
            "WITH RECURSIVE s(n) AS (SELECT 3 UNION ALL SELECT n + 1 FROM s WHERE n < 132)
             INSERT INTO events SELECT 'go', n, 1000 + n, 1, 2, 'n2', NULL, 'go ' || n, NULL,
                                       1, NULL, NULL FROM s;
             UPDATE rooms SET last_seq = 132 WHERE name = 'go';",
        )
        .unwrap();
    let store = open(&dir);
    let want: Vec<String> = (1..=132).map(|s| format!("go {s}")).collect();
    assert_eq!(texts(&store.recent("go", 1_000).unwrap()), want);
    let (page, more) = store.page("go", SessionId(4), 66, 4).unwrap();
    assert_eq!((texts(&page), more), (want[61..65].to_vec(), true));
    let db = sql(&dir);
    let chunks: Vec<(i64, i64)> = db
        .prepare(
            "SELECT first, id & 1099511627775 FROM chunks
             WHERE id >> 40 = (SELECT no FROM rooms WHERE name = 'go') ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut want: Vec<(i64, i64)> = vec![(1, 15)];
    want.extend((1..8).map(|b| (b * 16, b * 16 + 15)));
    want.push((128, 132));
    assert_eq!(chunks, want);
}

#[test]
fn a_gap_retention_left_inside_a_chunk_is_not_an_older_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let now = T + 1_000_000;
    // Seq 1 stamped in the future (a clock that was ahead), 2 to 8 old,
    // 9 to 12 recent: one chunk.
    let batch: Vec<Event> = (1..=12)
        .map(|seq| {
            let mut e = msg("g", seq, 1, &[], &format!("m{seq}"));
            e.ts = match seq {
                1 => now + 1_000_000,
                2..=8 => T + seq,
                _ => now - 100 + seq,
            };
            e
        })
        .collect();
    put(&mut store, "e", &batch);
    assert_eq!(store.prune(now, 500_000, u64::MAX, 100).unwrap(), 7);
    // A read whose scan stops at 9: nothing is left in 2..8.
    let q = ReadQuery::new("g", SessionId(5), 1, 13, 10).with_scan(4);
    let page = store.read(&q).unwrap();
    assert_eq!(
        (texts(&page.events), page.more),
        (
            vec!["m9".into(), "m10".into(), "m11".into(), "m12".into()],
            false
        )
    );
    // From the start, seq 1 is there.
    let q = ReadQuery::new("g", SessionId(5), 0, 13, 10).with_scan(4);
    assert!(store.read(&q).unwrap().more);
    assert_eq!(texts(&store.recent("g", 10).unwrap())[0], "m1");
}

#[test]
fn a_seq_not_above_the_rooms_stored_ones_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    put(
        &mut store,
        "e",
        &[1, 2, 3].map(|s| msg("o", s, 1, &[], &format!("m{s}"))),
    );
    // Again, in a later batch.
    let err = store
        .append(&records("e", &[msg("o", 2, 1, &[], "again")]))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::OutOfOrder { room, seq: 2 } if room == "o"),
        "{err}"
    );
    // The last one stored again (its chunk's key).
    let err = store
        .append(&records("e", &[msg("o", 3, 1, &[], "again")]))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::OutOfOrder { seq: 3, .. }),
        "{err}"
    );
    // Out of order within a batch.
    let err = store
        .append(&records(
            "e",
            &[5, 7, 6].map(|s| msg("o", s, 1, &[], &format!("m{s}"))),
        ))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::OutOfOrder { seq: 6, .. }),
        "{err}"
    );
    // Nothing of either went in; the next in order does.
    put(&mut store, "e", &[msg("o", 4, 1, &[], "m4")]);
    assert_eq!(
        texts(&store.recent("o", 10).unwrap()),
        ["m1", "m2", "m3", "m4"]
    );
}

#[test]
fn a_chunk_spells_each_event_as_far_as_it_has_fields() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let mut all = msg("c", 1, 7, &[], "hi \"all\"");
    if let EventBody::Msg { id, .. } = &mut all.body {
        *id = None;
    }
    let off = Event::new(
        "c",
        4,
        T + 4,
        EventBody::presence(SessionId(9), "n9", PresenceStatus::Offline),
    );
    put(
        &mut store,
        "e",
        &[
            all,
            msg("c", 2, 7, &[3, 4], "psst"),
            presence("c", 3, 9),
            off,
        ],
    );
    drop(store);
    let db = sql(&dir);
    let json: String = db
        .query_row("SELECT events FROM chunks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        json,
        format!(
            "[[1,{},1,7,\"n7\",\"hi \\\"all\\\"\"],\
             [2,{},1,7,\"n7\",\"psst\",\"id2\",\",3,4,\",\"n3\\nn4\"],\
             [3,{},2,9,\"n9\"],[4,{},0,9,\"n9\"]]",
            T + 1,
            T + 2,
            T + 3,
            T + 4
        )
    );
    // The view spells them as rows, a presence's status in `online`.
    type Row = (i64, i64, Option<i64>, Option<String>, bool, Option<String>);
    let rows: Vec<Row> = db
        .prepare("SELECT seq, kind, online, msg_id, to_all, to_nicks FROM history ORDER BY seq")
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        [
            (1, 1, None, None, true, None),
            (2, 1, None, Some("id2".into()), false, Some("n3\nn4".into())),
            (3, 0, Some(1), None, true, None),
            (4, 0, Some(0), None, true, None),
        ]
    );
}

#[test]
fn a_chunk_of_several_events_fits_in_a_page_and_a_long_event_is_one_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    // Ten messages of 1,000 bytes, one of 5,000, ten more of 1,000.
    let batch: Vec<Event> = (1..=21)
        .map(|seq| {
            let size = if seq == 11 { 5_000 } else { 1_000 };
            msg("big", seq, 1, &[], &format!("{seq:>size$}"))
        })
        .collect();
    put(&mut store, "e", &batch);
    assert_eq!(
        store.page("big", SessionId(2), u64::MAX, 100).unwrap().0,
        batch
    );
    let db = sql(&dir);
    let chunks: Vec<(i64, i64, i64)> = db
        .prepare("SELECT first, id & 1099511627775, length(events) FROM chunks ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for &(first, last, len) in &chunks {
        assert!(
            len as usize <= chatstore::CHUNK_BYTES || first == last,
            "{chunks:?}"
        );
    }
    let spans: Vec<(i64, i64)> = chunks.iter().map(|&(f, l, _)| (f, l)).collect();
    assert_eq!(
        spans,
        [
            (1, 3),
            (4, 6),
            (7, 9),
            (10, 10),
            (11, 11),
            (12, 14),
            (15, 17),
            (18, 20),
            (21, 21)
        ]
    );
}

#[test]
fn a_chunk_that_cannot_be_read_holds_back_only_its_rooms_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let batch: Vec<Event> = ["a", "b"]
        .iter()
        .flat_map(|room| (1..=5).map(move |seq| msg(room, seq, 1, &[], &format!("{room}{seq}"))))
        .collect();
    put(&mut store, "e", &batch);
    // Room a's chunk, broken by hand.
    sql(&dir)
        .execute(
            "UPDATE chunks SET events = 'not json'
             WHERE id >> 40 = (SELECT no FROM rooms WHERE name = 'a')",
            [],
        )
        .unwrap();
    // Keep the newest 2 of each room: b's 3 go, a's stay.
    assert_eq!(store.prune(T * 2, u64::MAX, 2, 100).unwrap(), 3);
    assert_eq!(texts(&store.recent("b", 10).unwrap()), ["b4", "b5"]);
    // Reading a says what is wrong.
    let err = store.recent("a", 10).unwrap_err();
    assert!(err.to_string().contains("history database"), "{err}");
}

/// A room named as no client could name it (empty, with `#`, or not in
/// the canonical form the core gives) is refused at the API with the
/// whole batch, whether a room record or an event names it: a room `""`
/// was stored, and an event for it went in once its record had.
#[test]
fn a_room_name_the_core_never_gives_is_refused_with_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    put(&mut store, "e", &[msg("a", 1, 1, &[], "in a")]);
    for bad in ["", "#rust", "Rust", "a b", &"x".repeat(33)] {
        let err = store
            .append(&[
                Record::Event(Arc::new(msg("a", 2, 1, &[], "a again"))),
                Record::room(bad, "e"),
                Record::Event(Arc::new(msg(bad, 1, 1, &[], "hi"))),
            ])
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::RoomName { name, .. } if name == bad),
            "{bad:?}: {err}"
        );
        assert!(err.to_string().contains("room_name"), "{err}");
        // An event alone, for a room not known: the name is what is wrong.
        let err = store
            .append(&[Record::Event(Arc::new(msg(bad, 1, 1, &[], "hi")))])
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::RoomName { name, .. } if name == bad),
            "{bad:?}: {err}"
        );
    }
    let err = store.append(&[Record::room("Rust", "e")]).unwrap_err();
    assert!(err.to_string().contains("\"rust\""), "{err}");
    // Nothing of those batches went in.
    let rooms = store.rooms().unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].last_seq, 1);
}

/// An event larger than `MAX_EVENT_BYTES` as stored (20 MB of text) is
/// refused with its batch, saying its room, seq and size; one as large as
/// the largest chatserver can stamp (16 MiB of text to 65,536 recipients
/// with the longest session ids) is stored. A 20 MB event was stored.
#[test]
fn an_event_past_the_size_limit_is_refused_with_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    put(&mut store, "e", &[msg("a", 1, 1, &[], "in a")]);
    let huge = msg("a", 3, 1, &[], &"x".repeat(20_000_000));
    let err = store
        .append(&[
            Record::Event(Arc::new(msg("a", 2, 1, &[], "before it"))),
            Record::Event(Arc::new(huge.clone())),
        ])
        .unwrap_err();
    match &err {
        StoreError::EventTooLarge {
            room,
            seq,
            bytes,
            max,
        } => {
            assert_eq!((room.as_str(), *seq), ("a", 3));
            assert!(*bytes > 20_000_000, "{bytes}");
            assert_eq!(*max, chatstore::MAX_EVENT_BYTES);
        }
        other => panic!("{other}"),
    }
    assert!(store
        .probe(&[Record::Event(Arc::new(huge.clone()))])
        .is_err());
    assert_eq!(texts(&store.recent("a", 10).unwrap()), ["in a"]);

    // The largest chatserver stamps fits.
    let to: Vec<Recipient> = (0..65_536u64)
        .map(|i| Recipient::new(SessionId(u64::MAX - i), "n"))
        .collect();
    let body = EventBody::msg(SessionId(1), "n1", to, "y".repeat(16 << 20), None);
    let largest = Event::new("a", 2, T, body);
    store
        .append(&[Record::Event(Arc::new(largest))])
        .expect("the largest event chatserver writes is stored");
    assert_eq!(store.recent("a", 10).unwrap().len(), 2);

    // A store told to take larger events takes them.
    store.set_max_event_bytes(32 << 20);
    store.append(&[Record::Event(Arc::new(huge))]).unwrap();
    assert_eq!(store.room("a").unwrap().unwrap().last_seq, 3);
}

/// A session id above 2^63 - 1, as a session or an event's sender, is
/// refused with its batch: stored as a negative integer, it was not
/// counted by `next_session`, which then let a new session take an id
/// at or below it (and read its private messages).
#[test]
fn a_session_id_the_database_cannot_count_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    put(&mut store, "e", &[msg("a", 1, 7, &[], "in a")]);
    let high = SessionId(1 << 63);
    let err = store
        .append(&[Record::session(high, "n", hash_token("t"))])
        .unwrap_err();
    assert!(
        matches!(err, StoreError::SessionId(id) if id == high),
        "{err}"
    );
    let err = store
        .append(&[Record::Event(Arc::new(msg("a", 2, 1 << 63, &[], "hi")))])
        .unwrap_err();
    assert!(
        matches!(err, StoreError::SessionId(id) if id == high),
        "{err}"
    );
    assert_eq!(store.next_session().unwrap(), 8);
    // The highest it counts goes in, and is counted.
    let top = SessionId(i64::MAX as u64);
    store
        .append(&[Record::session(top, "n", hash_token("t"))])
        .unwrap();
    assert_eq!(store.next_session().unwrap(), i64::MAX as u64 + 1);
}
