//! The history database's own thread: it takes the records the hub
//! gathered (a turn's, or several while it wrote the last) as one batch
//! and writes them in one transaction, so the hub never waits on the
//! disk. It also runs retention in small steps between batches, and while
//! the store fails it tries the failed batch again (rolled back) each
//! second, to say when it works again. Reads of history go to a second
//! thread with a read-only connection of its own, so a long one (a page
//! of a room where the reader may see few messages) never holds up a
//! commit.

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use chatproto::{ClientId, ReadPage, ReadQuery, Record};
use chatstore::Store;
use tokio::sync::mpsc;

use reader::spawn_reader;
use run::run;

mod export;
mod reader;
mod restore;
mod run;
#[cfg(test)]
mod tests;

pub use export::{export, export_room, write_failed, READER_GONE};
pub use restore::restore;

/// How often, at most, a batch the store could not write is logged (at
/// its size cap, or on a disk nearly full, every large message fails and
/// the next probe works, as fast as a client sends them); the lines left
/// out are counted in the next. The hub leaves its side at debug.
pub const FAILURE_LOG_EVERY: Duration = Duration::from_secs(10);

/// What the hub asks of the store thread.
#[derive(Debug)]
pub enum ToStore {
    /// Store these records, then answer `Stored { through }`.
    Append {
        /// The records, in order.
        records: Vec<Record>,
        /// The core's ticket for them.
        through: u64,
    },
    /// Read history for `client`, then answer `Read`.
    Read {
        /// The core's ticket for the read.
        ticket: u64,
        /// Who asked.
        client: ClientId,
        /// What to read.
        query: ReadQuery,
    },
    /// Run a retention pass now (once the server listens: a server
    /// restarted with a stricter limit, or after a long stop, would
    /// otherwise serve what the limits delete until the first period
    /// ends; and nothing may be logged before `listening on`).
    Prune,
}

/// What the store thread answers.
#[derive(Debug)]
pub enum FromStore {
    /// The batch with this ticket (and all before) is stored.
    Stored(u64),
    /// The batch could not be stored, for `cause`; `until_restart`:
    /// nothing will be in this run (the database file was deleted).
    Failed {
        /// Why, as a refused client is told.
        cause: String,
        /// Only a restart mends it.
        until_restart: bool,
    },
    /// A probe found the database gone while it failed for another cause
    /// (told as `Failed` before): only a restart mends it now.
    Lost(String),
    /// The batch can never be stored (a room past the database's keys):
    /// refused alone, and the store works on. One answer, so that nothing
    /// the hub reads between a failure and a recovery is refused too.
    Refused(String),
    /// The store works again after a failure; `said`: the log said the
    /// failure (it leaves out one mended at the next probe, within
    /// [`FAILURE_LOG_EVERY`] of the last it said), so this says the end.
    Recovered {
        /// The failure was logged.
        said: bool,
    },
    /// Retention committed a batch of deletions: each room's name, epoch
    /// and oldest stored seq now (the epoch, so that a report about a room
    /// since forgotten and begun again does not move the new one's start).
    /// Sent after every batch, not once a pass ends: until the hub hears,
    /// it serves from memory, and promises replays over, what is gone.
    Pruned {
        /// How many events the pass deleted so far.
        deleted: usize,
        /// Whether the pass has ended (`deleted` is then its total).
        done: bool,
        /// Each room's name, epoch and oldest stored seq (empty when the
        /// last batch of a pass deleted nothing).
        rooms: Vec<(String, String, u64)>,
    },
    /// The answer to a `Read`.
    Read {
        /// The core's ticket for the read.
        ticket: u64,
        /// Who asked.
        client: ClientId,
        /// The messages found (oldest first) and whether older ones exist.
        found: Result<ReadPage, String>,
    },
    /// The store thread ended while the hub still had its link (a panic):
    /// said because the reading thread, which the hub also feeds, keeps
    /// the answers' channel open.
    Stopped,
}

/// Sends [`FromStore::Stopped`] when the store thread's work ends, however
/// it ends (unwinding from a panic too).
struct SayStopped(mpsc::UnboundedSender<FromStore>);

impl Drop for SayStopped {
    fn drop(&mut self) {
        // No hub any more (shutdown) is fine.
        let _ = self.0.send(FromStore::Stopped);
    }
}

/// Retention settings.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Messages older than this go (milliseconds; 0: kept whatever their age).
    pub max_age_ms: u64,
    /// Per room, all but the newest this many go.
    pub max_per_room: u64,
    /// Sessions kept for resuming after a restart.
    pub sessions: usize,
    /// How often a retention pass starts.
    pub every: Duration,
}

/// The hub's end of the store thread.
pub struct StoreLink {
    /// Requests, in order.
    pub tx: std_mpsc::Sender<ToStore>,
    /// Reads straight to the reading thread (when it started), so that a
    /// write the disk holds up does not hold them too: the reading thread
    /// has its own connection, and what a read looks for was stored
    /// before it was asked (only what is stored is ever applied).
    /// `None`: send reads through `tx` and the store thread reads them.
    pub reads: Option<Reads>,
    /// Answers: batches in order, reads in the order asked (a read may
    /// be answered after batches handed over later: its own thread reads).
    pub rx: mpsc::UnboundedReceiver<FromStore>,
    /// The thread, joined at shutdown so the database closes cleanly.
    pub thread: Option<std::thread::JoinHandle<()>>,
}

/// Start the store thread around `store`, and its reading thread.
pub fn spawn(mut store: Store, retention: Retention) -> std::io::Result<StoreLink> {
    let (tx, requests) = std_mpsc::channel();
    let (answers, rx) = mpsc::unbounded_channel();
    let reader = store
        .path()
        .parent()
        .and_then(|dir| Store::open_read_only(dir).ok())
        .and_then(|db| spawn_reader(db, answers.clone()).ok());
    let (reads, reading) = reader.unzip();
    let thread = std::thread::Builder::new()
        .name("chat-store".into())
        .spawn(move || {
            let stopped = SayStopped(answers.clone());
            run(&mut store, &requests, &answers, retention);
            drop(stopped);
            // The reading thread stops once the hub drops its link (the
            // only sender of reads): wait for it.
            if let Some(thread) = reading {
                let _ = thread.join();
            }
        })?;
    Ok(StoreLink {
        tx,
        reads,
        rx,
        thread: Some(thread),
    })
}

/// Reads by the reading thread: requests in, answers to the hub.
pub type Reads = std_mpsc::Sender<(u64, ClientId, ReadQuery)>;
