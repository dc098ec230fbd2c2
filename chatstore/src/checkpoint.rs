//! Copying the write-ahead log into the database off the writer's path.
//!
//! In WAL mode a commit appends pages to `chat.db-wal`; a checkpoint copies
//! them into `chat.db` and syncs it to the disk. SQLite's automatic
//! checkpoint runs inside the commit that crosses its threshold, so that
//! one batch waits for the copy and the sync (milliseconds), and with it
//! every message the batch holds. Here the writer only nudges a thread of
//! the store's own, which checkpoints through a connection of its own
//! (`PASSIVE`: it never blocks the writer). Should that thread fall far
//! behind, the writer checkpoints itself, so the log stays bounded.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags};

/// Log pages after which the thread checkpoints (SQLite's own default
/// for its automatic checkpoint: about 4 MB with 4 KiB pages).
pub const CHECKPOINT_PAGES: i32 = 1_000;

/// Log pages after which the writer checkpoints itself, as SQLite would:
/// the bound on the log (about 64 MB) when the thread cannot keep up.
pub const CHECKPOINT_PAGES_MAX: i32 = 16_000;

#[derive(Debug)]
enum Nudge {
    Checkpoint,
    Stop,
}

/// The checkpoint thread; stopped and joined when dropped.
#[derive(Debug)]
pub struct Checkpointer {
    nudge: SyncSender<Nudge>,
    /// Set when stopping: a nudge still queued is not acted on.
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Start the thread on the database at `path` and have `db` (the
    /// writer) nudge it after each commit that leaves the log long.
    /// `Ok(None)` when no thread can be started: SQLite's own automatic
    /// checkpoint then goes on as before.
    pub fn start(
        db: &mut Connection,
        path: &Path,
        synchronous: &str,
    ) -> rusqlite::Result<Option<Self>> {
        let (nudge, nudged) = sync_channel(1);
        let stop = Arc::new(AtomicBool::new(false));
        let path = path.to_owned();
        let synchronous = synchronous.to_owned();
        let stopping = Arc::clone(&stop);
        let Ok(thread) = std::thread::Builder::new()
            .name("chat-checkpoint".into())
            .spawn(move || run(&path, &synchronous, &nudged, &stopping))
        else {
            return Ok(None);
        };
        // Made before the hook: if setting it fails, dropping this stops
        // the thread.
        let checkpointer = Checkpointer {
            nudge: nudge.clone(),
            stop,
            thread: Some(thread),
        };
        // Replaces SQLite's automatic checkpoint (itself a WAL hook).
        db.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: i32| {
            if pages >= CHECKPOINT_PAGES_MAX {
                // Busy (the thread is at it) or not: tried again next commit.
                let _ = wal.checkpoint_v2(CheckpointMode::PASSIVE);
            } else if pages >= CHECKPOINT_PAGES {
                // A nudge already waiting covers this one.
                if let Err(TrySendError::Disconnected(_)) = nudge.try_send(Nudge::Checkpoint) {
                    let _ = wal.checkpoint_v2(CheckpointMode::PASSIVE);
                }
            }
            Ok(())
        }))?;
        Ok(Some(checkpointer))
    }
}

impl Drop for Checkpointer {
    /// Stop the thread and wait for it: at most the checkpoint it is in.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.nudge.send(Nudge::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(path: &Path, synchronous: &str, nudged: &Receiver<Nudge>, stop: &AtomicBool) {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let Ok(db) = Connection::open_with_flags(path, flags) else {
        // Gone, so the writer's nudges fail and it checkpoints itself
        // past CHECKPOINT_PAGES, as SQLite would.
        return;
    };
    let _ = db.pragma_update(None, "synchronous", synchronous);
    while let Ok(Nudge::Checkpoint) = nudged.recv() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // A failure (the disk full, say) leaves the log as it is: the next
        // nudge tries again.
        let _ = db.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}
