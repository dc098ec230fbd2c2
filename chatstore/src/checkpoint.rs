//! Copying the write-ahead log into the database off the writer's path.
//!
//! In WAL mode a commit appends pages to `chat.db-wal`; a checkpoint copies
//! them into `chat.db` and syncs it to the disk. SQLite's automatic
//! checkpoint runs inside the commit that crosses its threshold, so that
//! one batch waits for the copy and the sync (milliseconds), and with it
//! every message the batch holds. Here the writer only nudges a thread of
//! the store's own, which checkpoints through a connection of its own
//! (`PASSIVE`: it never blocks the writer). Should the log grow long all
//! the same, the writer checkpoints itself, so the log stays bounded:
//! the thread, nudged after every commit, may be copying at any moment,
//! and the log starts again from its beginning only at a commit that
//! finds it all copied, which a writer that never pauses never finds
//! while the thread copies. So past that length the writer waits for
//! the thread's copy under way to end, then copies the rest itself.
//!
//! A checkpoint that copied the whole log lets the next commit write the
//! log again from its start, but SQLite keeps the file as long as it
//! grew: the writer's `journal_size_limit` has it cut back then to what
//! the thread's threshold holds. With a cap on the database
//! ([`Store::set_max_bytes`](crate::Store::set_max_bytes)) both
//! thresholds shrink with it ([`log_pages`]).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags};

/// Log pages after which the thread checkpoints (SQLite's own default
/// for its automatic checkpoint: about 4 MB with 4 KiB pages).
pub const CHECKPOINT_PAGES: i32 = 1_000;

/// Log pages after which the writer checkpoints itself, as SQLite would:
/// the bound on the log (about 64 MB) when the thread cannot keep up.
pub const CHECKPOINT_PAGES_MAX: i32 = 16_000;

/// The fewest log pages the thread waits for under a small cap (and the
/// writer for twice as many): a checkpoint for every commit or two would
/// cost more than the log it saves.
const LEAST_PAGES: i32 = 16;

/// The log pages after which the thread checkpoints, and after which the
/// writer checkpoints itself, for a database capped at `cap_pages`
/// (`None`: no cap): [`CHECKPOINT_PAGES`] and [`CHECKPOINT_PAGES_MAX`],
/// or an eighth and a quarter of the cap when those are less, so that the
/// log beside a small database stays small beside it too.
pub(crate) fn log_pages(cap_pages: Option<i64>) -> (i32, i32) {
    let Some(cap) = cap_pages else {
        return (CHECKPOINT_PAGES, CHECKPOINT_PAGES_MAX);
    };
    let part = |n: i64, most: i32| {
        i32::try_from(cap / n)
            .unwrap_or(most)
            .clamp(LEAST_PAGES, most.max(LEAST_PAGES))
    };
    (
        part(8, CHECKPOINT_PAGES),
        part(4, CHECKPOINT_PAGES_MAX).max(2 * LEAST_PAGES),
    )
}

/// The log pages after which the thread checkpoints, and the writer
/// itself: set again with the cap.
#[derive(Debug)]
struct Thresholds {
    nudge: AtomicI32,
    itself: AtomicI32,
}

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
    /// What the writer's hook checks the log against.
    thresholds: Arc<Thresholds>,
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
        // Held by whoever copies the log: the thread, or the writer past
        // its threshold (SQLite would answer it busy at once).
        let copying = Arc::new(Mutex::new(()));
        let copier = Arc::clone(&copying);
        let Ok(thread) = std::thread::Builder::new()
            .name("chat-checkpoint".into())
            .spawn(move || run(&path, &synchronous, &nudged, &stopping, &copier))
        else {
            return Ok(None);
        };
        // Made before the hook: if setting it fails, dropping this stops
        // the thread.
        let (nudge_at, itself_at) = log_pages(None);
        let thresholds = Arc::new(Thresholds {
            nudge: AtomicI32::new(nudge_at),
            itself: AtomicI32::new(itself_at),
        });
        let checkpointer = Checkpointer {
            nudge: nudge.clone(),
            stop,
            thresholds: Arc::clone(&thresholds),
            thread: Some(thread),
        };
        // Replaces SQLite's automatic checkpoint (itself a WAL hook).
        db.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: i32| {
            if pages >= thresholds.itself.load(Ordering::Relaxed) {
                // Once the thread's copy is done (milliseconds). A reader
                // on an older snapshot may still keep some of the log
                // from being copied: tried again next commit.
                let _held = copying.lock().unwrap_or_else(PoisonError::into_inner);
                let _ = wal.checkpoint_v2(CheckpointMode::PASSIVE);
            } else if pages >= thresholds.nudge.load(Ordering::Relaxed) {
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

impl Checkpointer {
    /// Checkpoint after `nudge` log pages (the thread) and `itself` (the
    /// writer), from the next commit on (see [`log_pages`]).
    pub(crate) fn set_pages(&self, (nudge, itself): (i32, i32)) {
        self.thresholds.nudge.store(nudge, Ordering::Relaxed);
        self.thresholds.itself.store(itself, Ordering::Relaxed);
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

fn run(
    path: &Path,
    synchronous: &str,
    nudged: &Receiver<Nudge>,
    stop: &AtomicBool,
    copying: &Mutex<()>,
) {
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
        let _held = copying.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = db.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_cap_keeps_the_log_to_a_part_of_it() {
        assert_eq!(log_pages(None), (CHECKPOINT_PAGES, CHECKPOINT_PAGES_MAX));
        // 1 GiB of 4 KiB pages: the cap is far above the usual log.
        assert_eq!(
            log_pages(Some(262_144)),
            (CHECKPOINT_PAGES, CHECKPOINT_PAGES_MAX)
        );
        // 64 MiB: the thread's threshold as ever, the writer's a quarter.
        assert_eq!(log_pages(Some(16_384)), (CHECKPOINT_PAGES, 4_096));
        // 16 MiB: an eighth and a quarter.
        assert_eq!(log_pages(Some(4_096)), (512, 1_024));
        // 2 MiB: an eighth and a quarter.
        assert_eq!(log_pages(Some(512)), (64, 128));
        // A cap of a page or two: still a few commits a checkpoint.
        assert_eq!(log_pages(Some(1)), (LEAST_PAGES, 2 * LEAST_PAGES));
        assert_eq!(log_pages(Some(i64::MAX)), log_pages(None));
    }
}
