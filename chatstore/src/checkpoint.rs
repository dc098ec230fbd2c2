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
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
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
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Start the thread on the database at `path` and have `db` (the
    /// writer) nudge it after each commit that leaves the log long.
    pub fn start(db: &mut Connection, path: &Path, synchronous: &str) -> std::io::Result<Self> {
        let (nudge, nudged) = sync_channel(1);
        let path = path.to_owned();
        let synchronous = synchronous.to_owned();
        let thread = std::thread::Builder::new()
            .name("chat-checkpoint".into())
            .spawn(move || run(&path, &synchronous, &nudged))?;
        let hook_nudge = nudge.clone();
        // Replaces SQLite's automatic checkpoint (itself a WAL hook).
        db.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: i32| {
            if pages >= CHECKPOINT_PAGES_MAX {
                // Busy (the thread is at it) or not: tried again next commit.
                let _ = wal.checkpoint_v2(CheckpointMode::PASSIVE);
            } else if pages >= CHECKPOINT_PAGES {
                // A nudge already waiting covers this one.
                if let Err(TrySendError::Disconnected(_)) = hook_nudge.try_send(Nudge::Checkpoint) {
                    let _ = wal.checkpoint_v2(CheckpointMode::PASSIVE);
                }
            }
            Ok(())
        }))
        .map_err(std::io::Error::other)?;
        Ok(Checkpointer {
            nudge,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let _ = self.nudge.send(Nudge::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(path: &Path, synchronous: &str, nudged: &Receiver<Nudge>) {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let Ok(db) = Connection::open_with_flags(path, flags) else {
        // Without this thread the writer's own checkpoint keeps the log
        // bounded; wait for the stop.
        while let Ok(Nudge::Checkpoint) = nudged.recv() {}
        return;
    };
    let _ = db.pragma_update(None, "synchronous", synchronous);
    while let Ok(Nudge::Checkpoint) = nudged.recv() {
        // A failure (the disk full, say) leaves the log as it is: the next
        // nudge tries again.
        let _ = db.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}
