//! Durable history for chatserver: every room's sequenced events in an
//! SQLite database (WAL mode), written in batches, one transaction each.
//!
//! The store is a plain blocking object: the server gives it to a thread of
//! its own, hands it the stamped events gathered since the last (a turn's,
//! or several turns') as one batch, and only
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

use chatproto::{SessionId, TokenHash};
use rusqlite::Connection;

mod append;
mod checkpoint;
mod chunk;
mod open;
mod reads;
mod retention;
mod rooms;
mod schema;
mod sessions;
pub use checkpoint::{CHECKPOINT_PAGES, CHECKPOINT_PAGES_MAX};
pub use reads::{Export, EXPORT_PAGE_BYTES, EXPORT_PAGE_EVENTS};
pub use retention::Pruned;

/// The schema version this build writes; migrations bring older ones here.
pub const SCHEMA_VERSION: i64 = 11;

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

/// The most bytes one event may take as stored (its JSON in a chunk),
/// unless [`Store::set_max_event_bytes`] says otherwise: 18 MiB. A larger
/// one is refused ([`StoreError::EventTooLarge`]) with the whole batch.
///
/// Above the largest event chatserver can write: a message is refused
/// when its stamped copy would pass the frame limit (at most 16 MiB less
/// one byte with `--max-frame-bytes`), and its stored form is at most
/// that copy and 21 bytes for each recipient's session (65,536 of them at
/// most with `--max-recipients`: 1.3 MiB more).
pub const MAX_EVENT_BYTES: usize = 18 << 20;

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
    /// The database file is there but cannot be written by this process
    /// (its owner or mode); nothing was written to it.
    #[error("cannot write {path} ({source}); give the user chatserver runs as write access to it (its owner or mode), or choose another --data-dir")]
    NotWritable {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// A read-only open of a directory it cannot write (a backup on a
    /// read-only mount) found writes in the write-ahead log not yet in
    /// the database, and no shared-memory file beside it: SQLite reads
    /// the log only through one, which it cannot make there.
    #[error("cannot read the history in {dir}: its write-ahead log {log} holds writes not yet in {DB_FILE}, which SQLite reads only through a {DB_FILE}-shm it cannot make in a directory it cannot write; copy the whole directory somewhere writable and export the copy")]
    UnfoldedLog {
        /// The directory.
        dir: PathBuf,
        /// The log.
        log: PathBuf,
    },
    /// A read-only open found a database with nothing in it: no schema at
    /// all, as a copy of the file alone makes while a server writes (what
    /// it wrote is in the write-ahead log beside it, `chat.db-wal`).
    #[error("{0} holds no chat history: it is an empty database (a copy of chat.db made without its chat.db-wal while a server ran has nothing in it); copy the whole data directory, or make a backup as README's \"Backups\" says")]
    Empty(PathBuf),
    /// The file is not a database (nothing was written to it).
    #[error(
        "{0} is not a chat database (it is not SQLite); move it away or choose another --data-dir"
    )]
    NotADatabase(PathBuf),
    /// Another server holds the database.
    #[error("{0} is in use by another chatserver (or a `chatserver export` reading it while no server ran); stop it, or choose another --data-dir")]
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
    /// A room record or an event names a room by a name no client could
    /// give: not what [`chatproto::room_name`] makes of it (empty, too
    /// long, a character other than `a-z 0-9 - _ .`, or upper-case
    /// letters it folds). Nothing of the batch was stored.
    #[error("room name {name:?} cannot be stored: {why}; a room is stored under the name chatproto::room_name gives")]
    RoomName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        why: String,
    },
    /// An event takes more bytes as stored than the limit
    /// ([`MAX_EVENT_BYTES`], or what [`Store::set_max_event_bytes`] set).
    /// Nothing of the batch was stored.
    #[error("an event of room {room} with seq {seq} is {bytes} bytes as stored, over the limit of {max}; nothing of its batch was stored")]
    EventTooLarge {
        /// The room.
        room: String,
        /// The event's seq.
        seq: u64,
        /// Its size as stored.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A session record or an event's sender has an id above 2^63 - 1,
    /// which the database cannot count (it keeps ids as signed 64-bit
    /// integers): [`Store::next_session`] would not count it, and a new
    /// session could be given its id, and read its private messages.
    /// Nothing of the batch was stored.
    #[error("session {0} cannot be stored: its id is above 2^63 - 1, the highest the history database counts")]
    SessionId(chatproto::SessionId),
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
    /// The database file was deleted or replaced while the store had it
    /// open: SQLite would go on writing into the file no name leads to
    /// any more, and lose it all when it closes. Refused until a restart.
    #[error("{0} was deleted or replaced while chatserver had it open; nothing more is stored there; restart chatserver")]
    Gone(PathBuf),
    /// The file is damaged (SQLite found it malformed), found at start or
    /// by [`StoreError::naming`].
    #[error("{path} is damaged ({source}); restore it from a backup, or move it away to start with an empty history")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The disk had no room for the database: found at start, by
    /// [`StoreError::naming`], or by an [`append`](Store::append) or a
    /// [`probe`](Store::probe) that failed with less than 1 MiB free.
    #[error("the disk holding {0} is full; free some space, or choose another --data-dir")]
    DiskFull(PathBuf),
    /// The database reached the cap [`Store::set_max_bytes`] set
    /// (`--store-max-mib`): appends fail until retention frees space.
    #[error("{path} reached its size cap of {} MiB (--store-max-mib); it stores again once retention frees space, or raise the cap", bytes.div_ceil(1 << 20))]
    AtCap {
        /// The file.
        path: PathBuf,
        /// The cap.
        bytes: u64,
    },
    /// SQLite reported an error (a full disk, an I/O error, ...).
    #[error("the history database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl StoreError {
    /// This error as one naming the database file `path` and what to do,
    /// where SQLite's own words would say neither (a damaged file, a full
    /// disk, one that cannot be written); other errors as they are. For
    /// what goes wrong while starting (reading what was stored), where a
    /// person has to act.
    pub fn naming(self, path: &Path) -> StoreError {
        match self {
            StoreError::Sqlite(e) => open::classify(e, path),
            e => e,
        }
    }
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
    /// The room and seq of each message whose id it remembered when it
    /// last lost its connection, oldest first (empty if it never did, or
    /// in a file older than schema v11).
    pub sent: Vec<(String, u64)>,
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
    /// Where its history starts: the seq of its oldest stored event
    /// (`last_seq + 1` when none), but above every seq retention deleted
    /// (a message stamped in the future may be kept below that).
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
    /// Held locked for as long as the store is open: exclusively by a
    /// server; shared by a reader that reads the database as a file that
    /// cannot change (see `open_read_only`); `None` for other readers.
    _lock: Option<std::fs::File>,
    /// The file's schema version: [`SCHEMA_VERSION`], or as low as
    /// [`READABLE_FROM`] when opened read-only.
    version: i64,
    /// Each committed room's number (they never change), as the writer
    /// found them.
    numbers: std::collections::HashMap<String, i64>,
    /// Chunks' JSON buffers, for the next batches.
    buffers: append::ChunkBuffers,
    /// The database file as opened (device and inode; `None` read-only,
    /// or not on Unix): a batch is not committed once its name leads
    /// elsewhere.
    file_id: Option<(u64, u64)>,
    /// The cap [`Store::set_max_bytes`] set, if any.
    max_bytes: Option<u64>,
    /// The most bytes an event may take as stored
    /// ([`Store::set_max_event_bytes`]).
    max_event_bytes: usize,
    /// The room the next step of a retention pass begins at (`None`: the
    /// first), where the last one stopped.
    prune_at: Option<String>,
    /// The file was there, not empty, and held no chat schema (nor
    /// anything else): a new history was begun in it.
    began_in_empty: bool,
}

/// The oldest schema [`Store::open_read_only`] reads as it is: v5 only
/// added `rooms.max_session`, which [`Store::next_session`] does without
/// on a v4 file (by reading every event); v6 keyed events by an integer,
/// and reads of v4 and v5 files keep their queries by room name.
pub const READABLE_FROM: i64 = 4;

// The key's seq mask, as the SQL in the modules spells it.
const _: () = assert!(MAX_SEQ == 1_099_511_627_775 && SEQ_BITS == 40);
