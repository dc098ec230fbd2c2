//! Durable history for chatserver: every room's sequenced events in an
//! SQLite database (WAL mode), written in batches, one transaction each.
//!
//! The store is a plain blocking object: the server gives it to a thread of
//! its own, hands it each turn's stamped events as one batch, and only
//! acknowledges them once [`Store::append`] has returned. This crate knows
//! nothing of sockets or tasks; it keeps one thread of its own, which
//! copies the write-ahead log into the database (a checkpoint) so that no
//! append waits for that.
//!
//! ```
//! use std::sync::Arc;
//! use chatproto::{Event, EventBody, Record, SessionId};
//! use chatstore::{Store, Sync};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut store = Store::open(dir.path(), Sync::Normal).unwrap();
//! let body = EventBody::msg(SessionId(1), "alice", vec![], "hello", None);
//! let hello = Event::new("lobby", 1, 1_732_400_000_000, body);
//! store.append(&[
//!     Record::room("lobby", "e1"),
//!     Record::Event(Arc::new(hello.clone())),
//! ]).unwrap();
//! drop(store);
//! // A restart: the history is there, and the room's seq goes on.
//! let store = Store::open(dir.path(), Sync::Normal).unwrap();
//! assert_eq!(store.rooms().unwrap()[0].last_seq, 1);
//! let (page, more) = store.page("lobby", SessionId(9), u64::MAX, 50).unwrap();
//! assert_eq!((page, more), (vec![hello], false));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chatproto::{
    Event, EventBody, PresenceStatus, ReadPage, ReadQuery, Recipient, Record, SessionId, TokenHash,
};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

mod checkpoint;
pub use checkpoint::{CHECKPOINT_PAGES, CHECKPOINT_PAGES_MAX};

/// The schema version this build writes; migrations bring older ones here.
pub const SCHEMA_VERSION: i64 = 8;

/// The low bits of an event's key that hold its seq: the key is the room's
/// number shifted left by this many bits, plus the seq (schema v6; from
/// v8 the key of a chunk of events, with the seq of its last one).
pub const SEQ_BITS: u32 = 40;

/// The highest seq a room can store: 2^40 - 1, about 1.1 trillion events
/// (3.5 years at 10,000 messages a second into one room, without a pause).
pub const MAX_SEQ: u64 = (1 << SEQ_BITS) - 1;

/// The most rooms a database can number at once: 2^23 - 1, about 8.4
/// million (a room keeps its number when it begins again; a new room
/// takes the number after the highest in use, which may be a forgotten
/// room's, and past this one the lowest free number).
pub const MAX_ROOMS: u64 = (1 << (63 - SEQ_BITS)) - 1;

/// The most events one row of the database holds (schema v8): a batch
/// stores each room's events as runs ("chunks") of up to this many, one
/// row each, so that SQLite's cost per row is paid once a run, not once
/// an event.
pub const CHUNK_EVENTS: usize = 64;

/// The most bytes of JSON a chunk of more than one event holds: a row
/// then fits in one 4 KiB page of SQLite's (a larger one spills into
/// overflow pages, whole pages each, about a third of them empty on
/// average). An event whose JSON is longer alone is a chunk of its own.
pub const CHUNK_BYTES: usize = 4_000;

/// The database file in the data directory.
pub const DB_FILE: &str = "chat.db";

/// The file a server holds locked while it uses the data directory.
pub const LOCK_FILE: &str = "chat.lock";

/// How hard a committed batch is pushed to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sync {
    /// Survives the process being killed; a power cut may lose the last
    /// instants (SQLite `synchronous=NORMAL` in WAL mode).
    Normal,
    /// Every batch is fsynced before `append` returns (`synchronous=FULL`).
    Full,
}

/// Why the store failed; every message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory could not be created or written.
    #[error("cannot use the data directory {dir}: {source}; choose another with --data-dir")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a database (nothing was written to it).
    #[error(
        "{0} is not a chat database (it is not SQLite); move it away or choose another --data-dir"
    )]
    NotADatabase(PathBuf),
    /// Another server holds the database.
    #[error("{0} is in use by another chatserver; stop it, or choose another --data-dir")]
    Locked(PathBuf),
    /// The database was written by a newer version.
    #[error("{path} has schema version {found}, newer than this chatserver's {SCHEMA_VERSION}; run a newer chatserver")]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
    },
    /// The file is an SQLite database of another program; it is left as it is.
    #[error("{0} is a database of another program, not a chat database; move it away or choose another --data-dir")]
    Foreign(PathBuf),
    /// A read-only open found an older schema, which only a server migrates.
    #[error("{path} has schema version {found}, older than this chatserver reads as it is ({READABLE_FROM} to {SCHEMA_VERSION}); start chatserver on it once to migrate it")]
    OlderSchema {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
    },
    /// An event for a room whose record was never stored (a caller bug).
    #[error("an event for room {0}, which the store does not know")]
    UnknownRoom(String),
    /// An event whose seq is not above every seq its room stored before
    /// (a caller bug: a room's seqs only go up, each stored once).
    #[error("an event of room {room} with seq {seq}, not above the room's stored events")]
    OutOfOrder {
        /// The room.
        room: String,
        /// The event's seq.
        seq: u64,
    },
    /// A room's seq went past [`MAX_SEQ`], or a new room past [`MAX_ROOMS`]:
    /// the keys the schema gives events are all taken.
    #[error("room {room} cannot be stored: {why}")]
    KeysFull {
        /// The room.
        room: String,
        /// Which limit it reached.
        why: &'static str,
    },
    /// SQLite reported an error (a full disk, an I/O error, ...).
    #[error("the history database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// A session as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredSession {
    /// Its id.
    pub id: SessionId,
    /// The nickname it joined as.
    pub nick: String,
    /// Its token's SHA-256.
    pub token: TokenHash,
}

/// A room as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredRoom {
    /// Its name.
    pub name: String,
    /// Its epoch: changes only when its history is lost.
    pub epoch: String,
    /// The seq of its last stored event.
    pub last_seq: u64,
    /// The seq of its oldest stored event (`last_seq + 1` when none).
    pub oldest: u64,
}

/// The history database.
#[derive(Debug)]
pub struct Store {
    /// Declared before `db`: stopped and joined before the writer closes
    /// (the last connection to close checkpoints and removes the log).
    _checkpointer: Option<checkpoint::Checkpointer>,
    db: Connection,
    path: PathBuf,
    /// Held locked for as long as the store is open (`None` when read-only).
    _lock: Option<std::fs::File>,
    /// The file's schema version: [`SCHEMA_VERSION`], or as low as
    /// [`READABLE_FROM`] when opened read-only.
    version: i64,
    /// Each committed room's number (they never change), as the writer
    /// found them.
    numbers: std::collections::HashMap<String, i64>,
}

/// The oldest schema [`Store::open_read_only`] reads as it is: v5 only
/// added `rooms.max_session`, which [`Store::next_session`] does without
/// on a v4 file (by reading every event); v6 keyed events by an integer,
/// and reads of v4 and v5 files keep their queries by room name.
pub const READABLE_FROM: i64 = 4;

/// An event's kind, as rows (`kind`, with `online` for a presence) and,
/// from v8, chunks (the presence's status in the kind) store it: a
/// presence that went offline...
const KIND_OFFLINE: i64 = 0;
/// ...a message...
const KIND_MSG: i64 = 1;
/// ...and a presence that came online (v8).
const KIND_ONLINE: i64 = 2;

/// A row's kind (v7 and before) as a chunk's: a presence's status from
/// its `online` column.
const LEGACY_KIND: &str = "CASE WHEN kind = 1 THEN 1 WHEN online THEN 2 ELSE 0 END";

impl Store {
    /// Open (creating if needed) the database in `dir`, check it, migrate
    /// it to this version, and take it for this process alone.
    pub fn open(dir: &Path, sync: Sync) -> Result<Store, StoreError> {
        let dir_err = |source| StoreError::Dir {
            dir: dir.to_owned(),
            source,
        };
        if dir.exists() && !dir.is_dir() {
            return Err(dir_err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "it is a file, not a directory",
            )));
        }
        std::fs::create_dir_all(dir).map_err(dir_err)?;
        let path = dir.join(DB_FILE);
        // One server per directory. A lock file rather than SQLite's own
        // exclusive mode, so that readers (`chatserver export`, the sqlite3
        // tool) can read while the server runs; the OS drops the lock if
        // the process dies.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(dir_err)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(StoreError::Locked(path)),
            Err(std::fs::TryLockError::Error(e)) => return Err(dir_err(e)),
        }
        // No mutex of SQLite's own: a `Connection` is used by one thread
        // at a time (Rust sees to it), and the serialized mode's lock on
        // every call was a few percent of a stored message's cost.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let db = Connection::open_with_flags(&path, flags).map_err(|e| classify(e, &path))?;
        // A database another server holds is refused at once, not after a wait.
        db.busy_timeout(std::time::Duration::ZERO)?;
        // Reading the schema is the first thing that looks at the file: a
        // file that is not SQLite fails here, before anything is written.
        let version: i64 = db
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| classify(e, &path))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path,
                found: version,
            });
        }
        // Version 0 is a new file, or another program's database: only an
        // empty one is ours to fill.
        let tables: i64 = db.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if version == 0 && tables > 0 {
            return Err(StoreError::Foreign(path));
        }
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| classify(e, &path))?;
        let level = match sync {
            Sync::Normal => "NORMAL",
            Sync::Full => "FULL",
        };
        db.pragma_update(None, "synchronous", level)?;
        let mut store = Store {
            _checkpointer: None,
            db,
            path,
            _lock: Some(lock),
            version: SCHEMA_VERSION,
            numbers: std::collections::HashMap::new(),
        };
        store.migrate(version)?;
        store._checkpointer = checkpoint::Checkpointer::start(&mut store.db, &store.path, level)?;
        Ok(store)
    }

    /// Open the database in `dir` to read only, beside a server that may
    /// be writing it (for an export). Nothing is created or changed.
    pub fn open_read_only(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join(DB_FILE);
        if !path.exists() {
            return Err(StoreError::Dir {
                dir: dir.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no {DB_FILE} in it"),
                ),
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let db = Connection::open_with_flags(&path, flags).map_err(|e| classify(e, &path))?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = db
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| classify(e, &path))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path,
                found: version,
            });
        }
        if version < READABLE_FROM {
            return Err(StoreError::OlderSchema {
                path,
                found: version,
            });
        }
        Ok(Store {
            _checkpointer: None,
            db,
            path,
            _lock: None,
            version,
            numbers: std::collections::HashMap::new(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&mut self, from: i64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self
            .db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| classify(e, &path))?;
        if from < 1 {
            tx.execute_batch(
                "CREATE TABLE rooms (
                     name TEXT PRIMARY KEY,
                     epoch TEXT NOT NULL,
                     last_seq INTEGER NOT NULL
                 ) WITHOUT ROWID;
                 CREATE TABLE events (
                     room TEXT NOT NULL,
                     seq INTEGER NOT NULL,
                     ts INTEGER NOT NULL,
                     kind INTEGER NOT NULL,
                     session INTEGER NOT NULL,
                     nick TEXT NOT NULL,
                     online INTEGER,
                     text TEXT,
                     msg_id TEXT,
                     to_all INTEGER NOT NULL,
                     PRIMARY KEY (room, seq)
                 ) WITHOUT ROWID;
                 CREATE TABLE recipients (
                     room TEXT NOT NULL,
                     seq INTEGER NOT NULL,
                     position INTEGER NOT NULL,
                     session INTEGER NOT NULL,
                     nick TEXT NOT NULL,
                     PRIMARY KEY (room, seq, position)
                 ) WITHOUT ROWID;
                 CREATE INDEX events_by_ts ON events (ts);",
            )?;
        }
        if from < 2 {
            // v2: sessions, so that a client can resume across a restart.
            // Only a hash of the token is kept.
            tx.execute_batch(
                "CREATE TABLE sessions (
                     id INTEGER PRIMARY KEY,
                     nick TEXT NOT NULL,
                     token_hash BLOB NOT NULL
                 );",
            )?;
        }
        if from < 3 {
            // v3: a message's recipients in its own row (their sessions as
            // ",12,45," to look one up, their nicks one per line), not a
            // row each in a table of their own: a private message is one
            // insert, not two.
            tx.execute_batch(
                "ALTER TABLE events ADD COLUMN to_sessions TEXT;
                 ALTER TABLE events ADD COLUMN to_nicks TEXT;
                 UPDATE events SET
                     to_sessions = (SELECT ',' || group_concat(session, ',') || ','
                                    FROM (SELECT session FROM recipients r
                                          WHERE r.room = events.room AND r.seq = events.seq
                                          ORDER BY position)),
                     to_nicks = (SELECT group_concat(nick, char(10))
                                 FROM (SELECT nick FROM recipients r
                                       WHERE r.room = events.room AND r.seq = events.seq
                                       ORDER BY position))
                 WHERE NOT to_all;
                 DROP TABLE recipients;",
            )?;
        }
        if from < 4 {
            // v4: no index on `ts`. Retention by age reads each room's
            // oldest events through the primary key instead, and every
            // append saved a second B-tree insert per event.
            tx.execute_batch("DROP INDEX IF EXISTS events_by_ts;")?;
        }
        if from < 5 {
            // v5: each room remembers the highest session that wrote an
            // event into it, so that finding the next free session id at
            // start reads one row per room instead of every event. Found
            // here once, by that read.
            tx.execute_batch(
                "ALTER TABLE rooms ADD COLUMN max_session INTEGER NOT NULL DEFAULT -1;
                 UPDATE rooms SET max_session = coalesce(
                     (SELECT max(session) FROM events WHERE events.room = rooms.name), -1);",
            )?;
        }
        if from < 6 {
            // v6: an event's key is one integer, the room's number << 40
            // plus its seq, instead of the room's name and the seq: an
            // append is a rowid B-tree insert at the room's end (about 22%
            // fewer instructions per row, a file 15% smaller; BENCHMARKS).
            // Rows are copied once, in the old key's order, which is the
            // new one's (rooms are numbered in name order): no sort. The
            // copy needs free space for a second table while it runs; the
            // file keeps its size after (a VACUUM shrinks it). The view
            // `history` shows them with their room's name, for the sqlite3
            // tool.
            let (rooms, bad): (i64, i64) = tx.query_row(
                &format!(
                    "SELECT (SELECT count(*) FROM rooms),
                            (SELECT count(*) FROM events WHERE seq < 0 OR seq > {MAX_SEQ}
                                 OR room NOT IN (SELECT name FROM rooms))
                            + (SELECT count(*) FROM rooms WHERE last_seq > {MAX_SEQ})"
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if rooms as u64 > MAX_ROOMS || bad > 0 {
                return Err(StoreError::KeysFull {
                    room: "(migrating to schema v6)".to_owned(),
                    why: "more rooms or a higher seq than schema v6 can key, \
                          or events of a room it does not list",
                });
            }
            tx.execute_batch(&format!(
                "ALTER TABLE rooms ADD COLUMN no INTEGER;
                 UPDATE rooms SET no = n.no FROM
                     (SELECT name, row_number() OVER (ORDER BY name) AS no FROM rooms) AS n
                 WHERE n.name = rooms.name;
                 CREATE UNIQUE INDEX rooms_by_no ON rooms (no);
                 ALTER TABLE events RENAME TO events_v5;
                 CREATE TABLE events (
                     id INTEGER PRIMARY KEY,
                     ts INTEGER NOT NULL,
                     kind INTEGER NOT NULL,
                     session INTEGER NOT NULL,
                     nick TEXT NOT NULL,
                     online INTEGER,
                     text TEXT,
                     msg_id TEXT,
                     to_all INTEGER NOT NULL,
                     to_sessions TEXT,
                     to_nicks TEXT
                 );
                 INSERT INTO events
                     SELECT (r.no << {SEQ_BITS}) | e.seq, e.ts, e.kind, e.session, e.nick,
                            e.online, e.text, e.msg_id, e.to_all, e.to_sessions, e.to_nicks
                     FROM events_v5 e JOIN rooms r ON r.name = e.room
                     ORDER BY e.room, e.seq;
                 DROP TABLE events_v5;
                 CREATE VIEW history AS
                     SELECT r.name AS room, e.id & {MAX_SEQ} AS seq, e.ts, e.kind, e.session,
                            e.nick, e.online, e.text, e.msg_id, e.to_all, e.to_sessions,
                            e.to_nicks
                     FROM rooms r JOIN events e
                         ON e.id >= r.no << {SEQ_BITS} AND e.id <= (r.no << {SEQ_BITS}) + {MAX_SEQ};"
            ))?;
        }
        if from < 7 {
            // v7: a room the server forgot is deleted, events and all (the
            // store held every room ever named). The highest session that
            // wrote into a forgotten room stays counted here.
            tx.execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;",
            )?;
        }
        if from < 8 {
            // v8: a room's events are stored a run at a time, one row
            // ("chunk") per run of up to CHUNK_EVENTS events of a batch,
            // keyed by the room's number << SEQ_BITS plus the seq of its
            // last event; the events are a JSON array, each one an array
            // (seq, ts, kind, session, nick, then text, msg_id,
            // to_sessions, to_nicks as far as any is there; a presence's
            // status is in its kind: see `Stored`). SQLite's cost is per row (binding,
            // the record, the B-tree insert), and a stored message cost
            // about 5,600 instructions as a row of its own (BENCHMARKS).
            // Old rows are grouped by blocks of 16 seqs (a page holds
            // 16 messages of up to about 250 bytes); the view
            // `history` shows one row per event as before.
            tx.execute_batch(&format!(
                "DROP VIEW IF EXISTS history;
                 CREATE TABLE chunks (
                     id INTEGER PRIMARY KEY,
                     first INTEGER NOT NULL,
                     events TEXT NOT NULL
                 );
                 INSERT INTO chunks (id, first, events)
                     SELECT max(id), min(id) & {MAX_SEQ},
                            json_group_array(json_array(id & {MAX_SEQ}, ts, {LEGACY_KIND},
                                session, nick, text, msg_id, to_sessions, to_nicks) ORDER BY id)
                     FROM events GROUP BY id >> 4 ORDER BY 1;
                 DROP TABLE events;
                 CREATE VIEW history AS
                     SELECT r.name AS room, json_extract(j.value, '$[0]') AS seq,
                            json_extract(j.value, '$[1]') AS ts,
                            CASE json_extract(j.value, '$[2]') WHEN {KIND_MSG} THEN 1 ELSE 0 END
                                AS kind,
                            json_extract(j.value, '$[3]') AS session,
                            json_extract(j.value, '$[4]') AS nick,
                            CASE json_extract(j.value, '$[2]') WHEN {KIND_ONLINE} THEN 1
                                WHEN {KIND_OFFLINE} THEN 0 END AS online,
                            json_extract(j.value, '$[5]') AS text,
                            json_extract(j.value, '$[6]') AS msg_id,
                            json_extract(j.value, '$[7]') IS NULL AS to_all,
                            json_extract(j.value, '$[7]') AS to_sessions,
                            json_extract(j.value, '$[8]') AS to_nicks
                     FROM rooms r
                         JOIN chunks c
                             ON c.id >= r.no << {SEQ_BITS}
                             AND c.id <= (r.no << {SEQ_BITS}) + {MAX_SEQ},
                         json_each(c.events) AS j;"
            ))?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        Ok(())
    }

    /// How this file's queries pick a room's events, with `?1` the
    /// room's name: by name and seq (v4, v5), or by the key range of the
    /// room's number (v6 on). One statement looks the number up and reads,
    /// so a reader beside the writer never reads a number that a
    /// forgotten room gave up to another in between.
    fn keys(&self) -> Keys {
        if self.version < 6 {
            return Keys {
                range: "room = ?1 AND seq >= ?2 AND seq <= ?3",
                seq: "seq",
                order: "seq",
                max: i64::MAX,
            };
        }
        Keys {
            range: "id >= ((SELECT no FROM rooms WHERE name = ?1) << 40) + ?2
                    AND id <= ((SELECT no FROM rooms WHERE name = ?1) << 40) + ?3",
            seq: "id & 1099511627775",
            order: "id",
            max: MAX_SEQ as i64,
        }
    }

    /// Store a batch of records in one transaction: all of it or none.
    /// A room record with a new epoch starts the room's history again.
    pub fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        let tx = self.db.transaction()?;
        let mut found = Vec::new();
        write(&tx, records, &self.numbers, &mut found)?;
        tx.commit()?;
        // Only numbers that are committed are kept: a room added by a
        // batch that failed may get another number later.
        for (name, no) in found {
            match no {
                Some(no) => self.numbers.insert(name, no),
                None => self.numbers.remove(&name),
            };
        }
        Ok(())
    }

    /// Whether `records` could be stored now: written, then rolled back.
    /// After a failed [`append`](Store::append), this tells when the cause
    /// (a full disk, say) has gone.
    pub fn probe(&mut self, records: &[Record]) -> Result<(), StoreError> {
        let tx = self.db.transaction()?;
        write(&tx, records, &self.numbers, &mut Vec::new())?;
        tx.rollback()?;
        Ok(())
    }

    /// Cap the database at about `bytes` (`None`: no cap). Past it, an
    /// append fails as if the disk were full; reading still works, and
    /// space that retention frees is used again.
    pub fn set_max_bytes(&mut self, bytes: Option<u64>) -> Result<(), StoreError> {
        let page: i64 = self.db.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let pages = bytes.map_or(i64::from(u32::MAX) * 4, |b| (b as i64 / page).max(1));
        // SQLite answers with the cap it set (never below the current size).
        let _: i64 = self
            .db
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
                r.get(0)
            })?;
        Ok(())
    }

    /// Forget all but the newest `keep` sessions (those older cannot be
    /// resumed after a restart anyway: the server restores only the newest).
    pub fn forget_sessions(&mut self, keep: usize) -> Result<usize, StoreError> {
        let n = self.db.execute(
            "DELETE FROM sessions WHERE id < (SELECT min(id) FROM
                 (SELECT id FROM sessions ORDER BY id DESC LIMIT ?1))",
            params![keep.min(i64::MAX as usize) as i64],
        )?;
        Ok(n)
    }

    /// The newest `limit` sessions, oldest first.
    pub fn sessions(&self, limit: usize) -> Result<Vec<StoredSession>, StoreError> {
        let mut st = self.db.prepare_cached(
            "SELECT id, nick, token_hash FROM
                 (SELECT * FROM sessions ORDER BY id DESC LIMIT ?1)
             ORDER BY id",
        )?;
        let rows = st.query_map(params![limit.min(i64::MAX as usize) as i64], |r| {
            let hash: Vec<u8> = r.get(2)?;
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?, hash))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, nick, hash) = row?;
            // A hash of another length cannot match any token: skipped.
            if let Ok(token) = TokenHash::try_from(hash.as_slice()) {
                out.push(StoredSession {
                    id: SessionId(id),
                    nick,
                    token,
                });
            }
        }
        Ok(out)
    }

    /// One more than the highest session id the store has named: no new
    /// session may take an id below it (it could read an old one's private
    /// messages). Senders are counted, through each room's highest writer
    /// (kept as events are written, and kept when they are deleted), so
    /// this reads one row per room, not the events; recipients need not
    /// be: each had a session record, and retention keeps the newest
    /// records.
    pub fn next_session(&self) -> Result<u64, StoreError> {
        let sql = if self.version >= 7 {
            "SELECT max(m) FROM (SELECT max(id) AS m FROM sessions
                                 UNION ALL SELECT max(max_session) FROM rooms
                                 UNION ALL SELECT value FROM meta
                                           WHERE key = 'max_forgotten_session')"
        } else if self.version >= 5 {
            "SELECT max(m) FROM (SELECT max(id) AS m FROM sessions
                                 UNION ALL SELECT max(max_session) FROM rooms)"
        } else {
            "SELECT max(m) FROM (SELECT max(id) AS m FROM sessions
                                 UNION ALL SELECT max(session) FROM events)"
        };
        let max: Option<i64> = self.db.query_row(sql, [], |r| r.get(0))?;
        // -1: a room no session has written into yet.
        Ok(max.filter(|m| *m >= 0).map_or(0, |m| m as u64 + 1))
    }

    /// The newest `limit` messages of `room`, oldest first, whoever may see
    /// them: what a restarted server keeps in memory.
    pub fn recent(&self, room: &str, limit: usize) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        self.scan(room, 0, Order::NewestFirst(limit), |e| out.push(e))?;
        out.reverse();
        Ok(out)
    }

    /// Every message of `room` with a seq above `since`, oldest first,
    /// handed to `each` (for an export).
    pub fn export(
        &self,
        room: &str,
        since: u64,
        each: impl FnMut(Event),
    ) -> Result<(), StoreError> {
        self.scan(room, since, Order::OldestFirst, each)
    }

    fn scan(
        &self,
        room: &str,
        since: u64,
        order: Order,
        mut each: impl FnMut(Event),
    ) -> Result<(), StoreError> {
        let (newest_first, mut left) = match order {
            Order::OldestFirst => (false, usize::MAX),
            Order::NewestFirst(n) => (true, n),
        };
        if left == 0 {
            return Ok(());
        }
        let room_name: Arc<str> = Arc::from(room);
        self.walk(room, since.saturating_add(1), u64::MAX, newest_first, |e| {
            if e.kind == KIND_MSG {
                each(stored_msg(e, &room_name));
                left -= 1;
            }
            left > 0
        })
    }

    /// Hand each stored event of `room` with a seq in `lo..=hi` to `each`,
    /// newest or oldest first, for as long as it answers `true`. Chunks
    /// (v8) are read a row at a time; older files' rows are read as chunks
    /// of one event.
    fn walk(
        &self,
        room: &str,
        lo: u64,
        hi: u64,
        newest_first: bool,
        mut each: impl FnMut(Stored) -> bool,
    ) -> Result<(), StoreError> {
        let keys = self.keys();
        let (Some(from), to) = (keys.lower(lo), keys.upper(hi)) else {
            return Ok(());
        };
        if from > to {
            return Ok(());
        }
        let dir = if newest_first { "DESC" } else { "ASC" };
        let sql = if self.version >= 8 {
            // The chunks from the one holding `lo` to the one holding `hi`
            // (the first whose last seq reaches it), or to the room's end.
            format!(
                "SELECT events FROM chunks
                 WHERE id >= ((SELECT no FROM rooms WHERE name = ?1) << 40) + ?2
                   AND id <= coalesce(
                       (SELECT min(id) FROM chunks
                        WHERE id >= ((SELECT no FROM rooms WHERE name = ?1) << 40) + ?3
                          AND id <= ((SELECT no FROM rooms WHERE name = ?1) << 40)
                                    + 1099511627775),
                       ((SELECT no FROM rooms WHERE name = ?1) << 40) + 1099511627775)
                 ORDER BY id {dir}"
            )
        } else {
            let Keys {
                range, seq, order, ..
            } = keys;
            format!(
                "SELECT json_array(json_array({seq}, ts, {LEGACY_KIND}, session, nick, text,
                                              msg_id, to_sessions, to_nicks))
                 FROM events WHERE {range} ORDER BY {order} {dir}"
            )
        };
        let mut st = self.db.prepare_cached(&sql)?;
        let mut rows = st.query(params![room, from, to])?;
        let (lo, hi) = (from as u64, to as u64);
        while let Some(r) = rows.next()? {
            let json = r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
            let events = decode_chunk(json)?;
            let mut go = |e: Stored| !(lo..=hi).contains(&e.seq) || each(e);
            let went = if newest_first {
                events.into_iter().rev().all(&mut go)
            } else {
                events.into_iter().all(&mut go)
            };
            if !went {
                break;
            }
        }
        Ok(())
    }

    /// Every room with its epoch, last seq and oldest stored seq.
    pub fn rooms(&self) -> Result<Vec<StoredRoom>, StoreError> {
        let sql = if self.version < 6 {
            "SELECT name, epoch, last_seq,
                    (SELECT min(seq) FROM events WHERE events.room = rooms.name)
             FROM rooms ORDER BY name"
        } else if self.version >= 8 {
            "SELECT name, epoch, last_seq,
                    (SELECT first FROM chunks
                     WHERE id >= rooms.no << 40 AND id <= (rooms.no << 40) + 1099511627775
                     ORDER BY id LIMIT 1)
             FROM rooms ORDER BY name"
        } else {
            "SELECT name, epoch, last_seq,
                    (SELECT id - (rooms.no << 40) FROM events
                     WHERE id >= rooms.no << 40 AND id <= (rooms.no << 40) + 1099511627775
                     ORDER BY id LIMIT 1)
             FROM rooms ORDER BY name"
        };
        let mut st = self.db.prepare_cached(sql)?;
        let rows = st.query_map([], |r| {
            let last_seq = r.get::<_, i64>(2)? as u64;
            let oldest: Option<i64> = r.get(3)?;
            Ok(StoredRoom {
                name: r.get(0)?,
                epoch: r.get(1)?,
                last_seq,
                oldest: oldest.map_or(last_seq + 1, |s| s as u64),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest `limit` messages of `room` with a seq below `before`
    /// that `session` may see, oldest first, and whether older ones exist.
    /// Reads back as far as it takes: see [`read`](Store::read) for a
    /// bounded read.
    pub fn page(
        &self,
        room: &str,
        session: SessionId,
        before: u64,
        limit: usize,
    ) -> Result<(Vec<Event>, bool), StoreError> {
        self.page_between(room, session, 0, before, limit)
    }

    /// What the server core asks for with `Output::Read`: like
    /// [`page`](Store::page), only messages with a seq above `query.after`,
    /// looking at the newest `query.scan` seqs of the range at most (a
    /// page of a room of messages to others costs that, not the room).
    pub fn read(&self, query: &ReadQuery) -> Result<ReadPage, StoreError> {
        let lowest = query.lowest();
        let (events, more) = self.page_between(
            &query.room,
            query.session,
            lowest.saturating_sub(1),
            query.before,
            query.limit,
        )?;
        if more {
            let from = events.first().map_or(query.before, |e| e.seq);
            return Ok(ReadPage::new(events, true, from));
        }
        // Cut short by the scan: more if the range holds anything older
        // (seqs `after + 1 ..= lowest - 1`): the first event found there
        // answers, found in the first chunk that reaches the range (a
        // chunk's seqs may have gaps, where retention kept a message
        // stamped in the future).
        let mut older = false;
        if lowest > query.after.saturating_add(1) {
            self.walk(&query.room, query.after + 1, lowest - 1, false, |_| {
                older = true;
                false
            })?;
        }
        Ok(ReadPage::new(events, older, lowest))
    }

    fn page_between(
        &self,
        room: &str,
        session: SessionId,
        after: u64,
        before: u64,
        limit: usize,
    ) -> Result<(Vec<Event>, bool), StoreError> {
        // Seqs `after + 1 ..= before - 1`.
        let Some(hi) = before.checked_sub(1) else {
            return Ok((Vec::new(), false));
        };
        let me = format!(",{},", session.0);
        let room_name: Arc<str> = Arc::from(room);
        let mut page = Vec::new();
        self.walk(room, after.saturating_add(1), hi, true, |e| {
            let visible = match &e.to_sessions {
                None => true,
                Some(to) => e.session == session.0 || to.contains(&me),
            };
            if e.kind == KIND_MSG && visible {
                page.push(stored_msg(e, &room_name));
            }
            page.len() <= limit
        })?;
        let more = page.len() > limit;
        page.truncate(limit);
        page.reverse();
        Ok((page, more))
    }

    /// Retention, in bounded steps: delete at most `batch` events older
    /// than `now_ms - max_age_ms`, or beyond the newest `max_per_room` of
    /// their room. Returns how many went; call again while it is `batch`.
    pub fn prune(
        &mut self,
        now_ms: u64,
        max_age_ms: u64,
        max_per_room: u64,
        batch: usize,
    ) -> Result<usize, StoreError> {
        let cutoff = now_ms.saturating_sub(max_age_ms).min(i64::MAX as u64) as i64;
        let now = now_ms.min(i64::MAX as u64) as i64;
        let tx = self.db.transaction()?;
        let mut deleted = 0;
        {
            // Room by room, each room's oldest chunks first, through the
            // key, so a pass with nothing to delete reads a chunk a room
            // (one query joining rooms to events read every event, 0.2 s
            // per million, every pass).
            let rooms: Vec<(i64, i64)> = tx
                .prepare_cached("SELECT no, last_seq FROM rooms ORDER BY name")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let keep = max_per_room.min(i64::MAX as u64) as i64;
            let mut oldest = tx.prepare_cached(
                "SELECT id, events FROM chunks WHERE id >= ?1 AND id <= ?2 ORDER BY id",
            )?;
            // What becomes of a chunk: deleted, or its survivors.
            let mut edits: Vec<(i64, i64, Vec<Stored>)> = Vec::new();
            for (no, last_seq) in rooms {
                if deleted == batch {
                    break;
                }
                let base = no << SEQ_BITS;
                // Past the count: the events below the newest `keep`.
                let below = last_seq.saturating_sub(keep).max(0) as u64;
                // Too old: the room's oldest events, in seq order, up to
                // the first one young enough. A room's `ts` follows its
                // seq but for a wall clock that was stepped: after a step
                // back, what follows waits for what came before; a stamp
                // in the future (a clock that was ahead) is stepped over,
                // kept until its time comes but holding nothing back. At
                // most `batch` events are looked at for their age.
                let mut aged = false;
                let mut looked = 0;
                let mut rows = oldest.query(params![base, base + MAX_SEQ as i64])?;
                while let Some(r) = rows.next()? {
                    let id: i64 = r.get(0)?;
                    // A chunk that cannot be read (a row edited by hand)
                    // stops this room's retention, not every room's: the
                    // room's reads say what is wrong.
                    let Some(events) = r
                        .get_ref(1)?
                        .as_str()
                        .ok()
                        .and_then(|json| decode_chunk(json).ok())
                    else {
                        break;
                    };
                    let total = events.len();
                    let mut survivors = Vec::with_capacity(total);
                    let mut stop = false;
                    for e in events {
                        let ts = e.ts.min(i64::MAX as u64) as i64;
                        if !aged {
                            looked += 1;
                        }
                        let old = !aged && ts < cutoff;
                        // Young enough: the age scan ends here.
                        if !aged && ts >= cutoff && ts <= now {
                            aged = true;
                        }
                        if stop || deleted == batch || !(e.seq <= below || old) {
                            // Nothing after it can go: too young, and
                            // within the count.
                            if aged && e.seq > below {
                                stop = true;
                            }
                            survivors.push(e);
                        } else {
                            deleted += 1;
                        }
                        if looked >= batch {
                            aged = true;
                        }
                    }
                    if survivors.len() < total {
                        edits.push((base, id, survivors));
                    }
                    if stop || deleted == batch || (aged && (id - base) as u64 > below) {
                        break;
                    }
                }
            }
            drop(oldest);
            for (base, id, survivors) in edits {
                tx.prepare_cached("DELETE FROM chunks WHERE id = ?1")?
                    .execute(params![id])?;
                if let (Some(first), Some(last)) = (survivors.first(), survivors.last()) {
                    let mut json = String::from("[");
                    for (i, e) in survivors.iter().enumerate() {
                        if i > 0 {
                            json.push(',');
                        }
                        Fields::of(e).push(&mut json);
                    }
                    json.push(']');
                    insert_chunk(&tx, base, first.seq, last.seq, &json)?;
                }
            }
        }
        tx.commit()?;
        Ok(deleted)
    }
}

/// How a read picks a room's events in this file's schema (see
/// [`Store::keys`]): the room's name bound as `?1`, then the lowest and
/// highest seq.
struct Keys {
    /// The condition, on `?1`, `?2` and `?3`.
    range: &'static str,
    /// The expression for an event's seq.
    seq: &'static str,
    /// What orders a room's events.
    order: &'static str,
    /// The highest seq the schema can hold.
    max: i64,
}

impl Keys {
    /// A range's lowest seq, or `None` when no event can be that high.
    fn lower(&self, seq: u64) -> Option<i64> {
        i64::try_from(seq).ok().filter(|s| *s <= self.max)
    }

    /// A range's highest seq, as far as the schema holds them.
    fn upper(&self, seq: u64) -> i64 {
        seq.min(self.max as u64) as i64
    }
}

/// Which end of a room's history a scan starts from.
enum Order {
    OldestFirst,
    NewestFirst(usize),
}

/// One stored event as a chunk's JSON holds it, an array: seq, ts, kind
/// ([`KIND_MSG`], or a presence: [`KIND_ONLINE`], [`KIND_OFFLINE`]),
/// session, nick, then as far as any is there: text, msg_id, the
/// recipients' sessions as ",12,45," and their nicks one per line (both
/// absent or null for everyone). A message to everyone without an id is
/// `[seq,ts,1,session,"nick","text"]`.
#[derive(Debug)]
struct Stored {
    seq: u64,
    ts: u64,
    kind: i64,
    session: u64,
    nick: String,
    text: Option<String>,
    msg_id: Option<String>,
    to_sessions: Option<String>,
    to_nicks: Option<String>,
}

impl<'de> serde::Deserialize<'de> for Stored {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = Stored;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an event: [seq, ts, kind, session, nick, text?, msg_id?, to_sessions?, to_nicks?]")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Stored, A::Error> {
                /// The element at `at`, which must be there.
                fn need<'de, A: serde::de::SeqAccess<'de>, T: serde::Deserialize<'de>>(
                    a: &mut A,
                    at: usize,
                ) -> Result<T, A::Error> {
                    a.next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(at, &Fields))
                }
                let (seq, ts, kind, session, nick) = (
                    need(&mut a, 0)?,
                    need(&mut a, 1)?,
                    need(&mut a, 2)?,
                    need(&mut a, 3)?,
                    need(&mut a, 4)?,
                );
                let mut next = || a.next_element::<Option<String>>().map(Option::flatten);
                Ok(Stored {
                    seq,
                    ts,
                    kind,
                    session,
                    nick,
                    text: next()?,
                    msg_id: next()?,
                    to_sessions: next()?,
                    to_nicks: next()?,
                })
            }
        }
        d.deserialize_seq(Fields)
    }
}

/// A chunk's events, oldest first.
fn decode_chunk(json: &str) -> rusqlite::Result<Vec<Stored>> {
    serde_json::from_str(json).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// An event's fields, borrowed, as [`Stored`] orders them.
struct Fields<'a> {
    seq: u64,
    ts: u64,
    kind: i64,
    session: u64,
    nick: &'a str,
    text: Option<&'a str>,
    msg_id: Option<&'a str>,
    to: To<'a>,
}

/// A message's recipients: as a chunk stored them (sessions as ",12,45,",
/// nicks one per line, both `None` for everyone), or as the event has them
/// (none: everyone), written in that form without a copy.
enum To<'a> {
    Stored(Option<&'a str>, Option<&'a str>),
    Live(&'a [Recipient]),
}

impl<'a> Fields<'a> {
    fn of(e: &'a Stored) -> Fields<'a> {
        Fields {
            seq: e.seq,
            ts: e.ts,
            kind: e.kind,
            session: e.session,
            nick: &e.nick,
            text: e.text.as_deref(),
            msg_id: e.msg_id.as_deref(),
            to: To::Stored(e.to_sessions.as_deref(), e.to_nicks.as_deref()),
        }
    }

    /// Append the event's JSON array to `out`, up to its last field that
    /// is there.
    fn push(&self, out: &mut String) {
        out.push('[');
        for n in [self.seq, self.ts] {
            out.push_str(itoa::Buffer::new().format(n));
            out.push(',');
        }
        match u8::try_from(self.kind) {
            Ok(k @ 0..=9) => out.push(char::from(b'0' + k)),
            _ => out.push_str(itoa::Buffer::new().format(self.kind)),
        }
        out.push(',');
        out.push_str(itoa::Buffer::new().format(self.session));
        out.push(',');
        push_str(out, Some(self.nick));
        let to = match self.to {
            To::Stored(None, None) | To::Live([]) => false,
            To::Stored(..) | To::Live(_) => true,
        };
        if self.text.is_some() || self.msg_id.is_some() || to {
            out.push(',');
            push_str(out, self.text);
        }
        if self.msg_id.is_some() || to {
            out.push(',');
            push_str(out, self.msg_id);
        }
        match self.to {
            _ if !to => {}
            To::Stored(sessions, nicks) => {
                for s in [sessions, nicks] {
                    out.push(',');
                    push_str(out, s);
                }
            }
            To::Live(to) => {
                // Digits and commas need no escaping.
                out.push_str(",\",");
                for r in to {
                    out.push_str(itoa::Buffer::new().format(r.session.0));
                    out.push(',');
                }
                out.push_str("\",");
                // A nickname holds no control character, so no newline:
                // one recipient's nicks are its nick as it is.
                match to {
                    [one] => push_str(out, Some(&one.nick)),
                    _ => {
                        let nicks = to.iter().map(|r| &*r.nick).collect::<Vec<_>>().join("\n");
                        push_str(out, Some(&nicks));
                    }
                }
            }
        }
        out.push(']');
    }
}

/// `s` as a JSON string, or `null`.
fn push_str(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => chatproto::push_json_string(out, s),
        None => out.push_str("null"),
    }
}

/// A room's events of one batch being gathered into a chunk.
struct Chunk {
    /// Its first and last event's seq.
    first: u64,
    last: u64,
    count: usize,
    /// `[` and the events so far, comma-separated.
    json: String,
}

/// What a batch does to one room: its last seq, highest writer, key base
/// and the chunk it is gathering.
struct Run<'a> {
    room: &'a str,
    /// The last seq gathered (0 when none since the batch began or began
    /// the room again); the next must be above it.
    seq: u64,
    /// The first seq gathered since then.
    first: Option<u64>,
    session: i64,
    base: i64,
    chunk: Option<Chunk>,
}

/// Insert the chunk `run` is gathering, if any. A chunk whose key is
/// taken ends at a seq the room stored before: out of order (a seq that
/// does not collide is caught by [`update_room`]).
fn flush_chunk(tx: &rusqlite::Transaction<'_>, run: &mut Run<'_>) -> Result<(), StoreError> {
    if let Some(mut c) = run.chunk.take() {
        c.json.push(']');
        match insert_chunk(tx, run.base, c.first, c.last, &c.json) {
            Err(StoreError::Sqlite(e))
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) =>
            {
                return Err(StoreError::OutOfOrder {
                    room: run.room.to_owned(),
                    seq: c.last,
                });
            }
            other => other?,
        }
    }
    Ok(())
}

fn insert_chunk(
    tx: &rusqlite::Transaction<'_>,
    base: i64,
    first: u64,
    last: u64,
    json: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached("INSERT INTO chunks (id, first, events) VALUES (?1, ?2, ?3)")?
        .execute(params![base | last as i64, first as i64, json])?;
    Ok(())
}

/// Write `records` inside `tx`, in order: each room's events are gathered
/// into chunks, inserted once full and before any other record (a room
/// begun again deletes the room's earlier events).
///
/// A room's number comes from this batch's `found` (the latest entry),
/// from `known` (committed ones), or from the file; rooms this batch
/// numbers or looks up are added to `found`, and those it forgets, with
/// `None`.
fn write<'a>(
    tx: &rusqlite::Transaction<'_>,
    records: &'a [Record],
    known: &std::collections::HashMap<String, i64>,
    found: &mut Vec<(String, Option<i64>)>,
) -> Result<(), StoreError> {
    // Each room's last seq and highest session are written once per batch
    // (events of a room come in seq order).
    let mut runs: Vec<Run<'a>> = Vec::new();
    // The chunk of the room a record names goes in before the record
    // acts on the room.
    let flush_room = |runs: &mut Vec<Run<'a>>, name: &str| -> Result<(), StoreError> {
        match runs.iter_mut().find(|r| r.room == name) {
            Some(run) => flush_chunk(tx, run),
            None => Ok(()),
        }
    };
    for record in records {
        match record {
            Record::Room { name, epoch, .. } => {
                flush_room(&mut runs, name)?;
                match begin_room(tx, name, epoch)? {
                    // The same epoch again changes nothing.
                    Began::Same => {}
                    // A room begun again (a new epoch) drops what came
                    // before in this batch too.
                    // Its highest writer stays: sessions only go up.
                    Began::Again => {
                        if let Some(run) = runs.iter_mut().find(|r| *r.room == **name) {
                            run.seq = 0;
                            run.first = None;
                        }
                    }
                    // A room's record goes before its events: events of a
                    // room not yet known were refused at the first one.
                    Began::New(no) => found.push((name.to_string(), Some(no))),
                }
            }
            Record::Forgotten { name, .. } => {
                flush_room(&mut runs, name)?;
                // What this batch wrote into it is counted first.
                if let Some(i) = runs.iter().position(|r| *r.room == **name) {
                    let run = runs.remove(i);
                    update_room(tx, &run)?;
                }
                forget_room(tx, name)?;
                found.push((name.to_string(), None));
            }
            Record::Session {
                id, nick, token, ..
            } => {
                tx.prepare_cached(
                    "INSERT INTO sessions (id, nick, token_hash) VALUES (?1, ?2, ?3)
                     ON CONFLICT (id) DO UPDATE SET nick = excluded.nick",
                )?
                .execute(params![id.0 as i64, &**nick, &token[..]])?;
            }
            Record::Event(e) => {
                let room_name: &str = &e.room;
                let writer = e.session().0 as i64;
                if e.seq > MAX_SEQ {
                    return Err(StoreError::KeysFull {
                        room: room_name.to_owned(),
                        why: "its seq is past the highest a room can store",
                    });
                }
                let at = match runs.iter().position(|r| r.room == room_name) {
                    Some(at) => at,
                    None => {
                        let base = room_number(tx, room_name, known, found)? << SEQ_BITS;
                        runs.push(Run {
                            room: room_name,
                            seq: 0,
                            first: None,
                            session: -1,
                            base,
                            chunk: None,
                        });
                        runs.len() - 1
                    }
                };
                let run = &mut runs[at];
                if run.first.is_some() && e.seq <= run.seq {
                    return Err(StoreError::OutOfOrder {
                        room: room_name.to_owned(),
                        seq: e.seq,
                    });
                }
                run.first.get_or_insert(e.seq);
                run.seq = e.seq;
                run.session = run.session.max(writer);
                let (kind, session, nick, text, msg_id, to): (_, _, &str, _, _, &[Recipient]) =
                    match &e.body {
                        EventBody::Presence {
                            session,
                            nick,
                            status,
                            ..
                        } => (
                            match status {
                                PresenceStatus::Online => KIND_ONLINE,
                                _ => KIND_OFFLINE,
                            },
                            *session,
                            nick,
                            None,
                            None,
                            &[],
                        ),
                        EventBody::Msg {
                            from,
                            nick,
                            to,
                            text,
                            id,
                            ..
                        } => (KIND_MSG, *from, nick, Some(&**text), id.as_deref(), to),
                        _ => continue,
                    };
                // A chunk holds increasing seqs, up to its bounds.
                if run.chunk.as_ref().is_some_and(|c| c.count >= CHUNK_EVENTS) {
                    flush_chunk(tx, run)?;
                }
                let c = run.chunk.get_or_insert_with(|| Chunk {
                    first: e.seq,
                    last: e.seq,
                    count: 0,
                    // A batch may name many rooms: small until it grows.
                    json: String::with_capacity(1024),
                });
                let mark = c.json.len();
                c.json.push(if c.count == 0 { '[' } else { ',' });
                Fields {
                    seq: e.seq,
                    ts: e.ts,
                    kind,
                    session: session.0,
                    nick,
                    text,
                    msg_id,
                    to: To::Live(to),
                }
                .push(&mut c.json);
                // The closing `]` counted.
                if c.count > 0 && c.json.len() + 1 > CHUNK_BYTES {
                    // Past a page with this event: the chunk closes before
                    // it, and it begins the next one.
                    let event = c.json.split_off(mark + 1);
                    c.json.truncate(mark);
                    flush_chunk(tx, run)?;
                    let mut json = String::with_capacity(event.len().max(1024) + 2);
                    json.push('[');
                    json.push_str(&event);
                    run.chunk = Some(Chunk {
                        first: e.seq,
                        last: e.seq,
                        count: 1,
                        json,
                    });
                } else {
                    c.last = e.seq;
                    c.count += 1;
                }
            }
            _ => {}
        }
    }
    for run in &mut runs {
        flush_chunk(tx, run)?;
    }
    for run in &runs {
        update_room(tx, run)?;
    }
    Ok(())
}

/// A room's number: this batch's latest word on it in `found` (a room it
/// forgot has none: its events are refused), else the committed `known`
/// one, else the file's (then added to `found`).
fn room_number(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    known: &std::collections::HashMap<String, i64>,
    found: &mut Vec<(String, Option<i64>)>,
) -> Result<i64, StoreError> {
    match found.iter().rev().find(|(r, _)| r == name) {
        Some((_, Some(no))) => return Ok(*no),
        Some((_, None)) => {}
        None => {
            if let Some(no) = known.get(name) {
                return Ok(*no);
            }
        }
    }
    let no = tx
        .prepare_cached("SELECT no FROM rooms WHERE name = ?1")?
        .query_row(params![name], |r| r.get::<_, i64>(0))
        .optional()?
        .ok_or_else(|| StoreError::UnknownRoom(name.to_owned()))?;
    found.push((name.to_owned(), Some(no)));
    Ok(no)
}

/// A room's last seq and highest writer, after a batch's events; the
/// first of them must be above what the room stored before.
fn update_room(tx: &rusqlite::Transaction<'_>, run: &Run<'_>) -> Result<(), StoreError> {
    let updated = tx
        .prepare_cached(
            "UPDATE rooms SET last_seq = max(last_seq, ?2), max_session = max(max_session, ?3)
             WHERE name = ?1 AND (?4 IS NULL OR last_seq < ?4)",
        )?
        .execute(params![
            run.room,
            run.seq as i64,
            run.session,
            run.first.map(|f| f as i64)
        ])?;
    if updated == 0 {
        let known = tx
            .prepare_cached("SELECT 1 FROM rooms WHERE name = ?1")?
            .exists(params![run.room])?;
        return Err(match (known, run.first) {
            (true, Some(seq)) => StoreError::OutOfOrder {
                room: run.room.to_owned(),
                seq,
            },
            _ => StoreError::UnknownRoom(run.room.to_owned()),
        });
    }
    Ok(())
}

/// A room the server forgot: its events and its row go, and its number is
/// free; its highest writer stays counted (sessions only go up).
fn forget_room(tx: &rusqlite::Transaction<'_>, name: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO meta (key, value)
             SELECT 'max_forgotten_session', max_session FROM rooms WHERE name = ?1
         ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
        params![name],
    )?;
    delete_events(tx, name)?;
    tx.execute("DELETE FROM rooms WHERE name = ?1", params![name])?;
    Ok(())
}

/// Every event of the room `name` (its number's whole key range).
fn delete_events(tx: &rusqlite::Transaction<'_>, name: &str) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM chunks
         WHERE id >= ((SELECT no FROM rooms WHERE name = ?1) << 40)
           AND id <= ((SELECT no FROM rooms WHERE name = ?1) << 40) + 1099511627775",
        params![name],
    )?;
    Ok(())
}

/// A stored message as the event it was.
fn stored_msg(e: Stored, room: &Arc<str>) -> Event {
    let Stored {
        seq,
        ts,
        session,
        nick,
        text,
        msg_id,
        to_sessions: sessions,
        to_nicks: nicks,
        ..
    } = e;
    let to = match (sessions, nicks) {
        (Some(sessions), Some(nicks)) => sessions
            .split(',')
            .filter(|s| !s.is_empty())
            .zip(nicks.split('\n'))
            .map(|(s, n)| Recipient::new(SessionId(s.parse().unwrap_or(u64::MAX)), n))
            .collect(),
        _ => Vec::new(),
    };
    let body = EventBody::msg(
        SessionId(session),
        nick,
        to,
        text.unwrap_or_default(),
        msg_id,
    );
    Event::new(Arc::clone(room), seq, ts, body)
}

/// What a room record did.
enum Began {
    /// The room is new: its number.
    New(i64),
    /// The same epoch again: nothing.
    Same,
    /// A new epoch: the old history went, the room began again.
    Again,
}

/// A room record: new, the same epoch again (nothing to do), or a new
/// epoch (the old history goes: the room began again).
fn begin_room(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    epoch: &str,
) -> Result<Began, StoreError> {
    let old: Option<String> = tx
        .prepare_cached("SELECT epoch FROM rooms WHERE name = ?1")?
        .query_row(params![name], |r| r.get(0))
        .optional()?;
    match old {
        Some(old) if old == epoch => Ok(Began::Same),
        Some(_) => {
            // The room keeps its number; its events go.
            delete_events(tx, name)?;
            tx.execute(
                "UPDATE rooms SET epoch = ?2, last_seq = 0 WHERE name = ?1",
                params![name, epoch],
            )?;
            Ok(Began::Again)
        }
        None => {
            // The next number above all; once those are taken, the lowest
            // free one (forgotten rooms give theirs up).
            let mut no: i64 =
                tx.query_row("SELECT coalesce(max(no), 0) + 1 FROM rooms", [], |r| {
                    r.get(0)
                })?;
            if no as u64 > MAX_ROOMS {
                no = tx.query_row(
                    "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM rooms WHERE no = 1) THEN 1
                            ELSE (SELECT min(no) + 1 FROM rooms r
                                  WHERE NOT EXISTS (SELECT 1 FROM rooms s WHERE s.no = r.no + 1))
                            END",
                    [],
                    |r| r.get(0),
                )?;
            }
            if no as u64 > MAX_ROOMS {
                return Err(StoreError::KeysFull {
                    room: name.to_owned(),
                    why: "the database holds as many rooms as it can number",
                });
            }
            tx.execute(
                "INSERT INTO rooms (name, epoch, last_seq, no) VALUES (?1, ?2, 0, ?3)",
                params![name, epoch, no],
            )?;
            Ok(Began::New(no))
        }
    }
}

/// Name the errors a person can act on.
fn classify(e: rusqlite::Error, path: &Path) -> StoreError {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::NotADatabase) => StoreError::NotADatabase(path.to_owned()),
        Some(C::DatabaseBusy) | Some(C::DatabaseLocked) => StoreError::Locked(path.to_owned()),
        Some(C::CannotOpen) | Some(C::ReadOnly) | Some(C::PermissionDenied) => StoreError::Dir {
            dir: path.parent().unwrap_or(path).to_owned(),
            source: std::io::Error::other(e.to_string()),
        },
        _ => StoreError::Sqlite(e),
    }
}

// The key's seq mask, as the SQL above spells it.
const _: () = assert!(MAX_SEQ == 1_099_511_627_775 && SEQ_BITS == 40);
