//! Opening the database: the data directory and its lock file (one
//! server per directory), the checks before anything is written, the
//! pragmas; a read-only open beside a running server; the cap on its size.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::{
    checkpoint, Store, StoreError, Sync, DB_FILE, LOCK_FILE, READABLE_FROM, SCHEMA_VERSION,
};

impl Store {
    /// Open (creating if needed) the database in `dir`, check it, migrate
    /// it to this version, and take it for this process alone.
    pub fn open(dir: &Path, sync: Sync) -> Result<Store, StoreError> {
        let dir_err = |source| StoreError::Dir {
            dir: dir.to_owned(),
            source,
        };
        if let Some(why) = file_in_the_way(dir) {
            return Err(dir_err(why));
        }
        // Private messages are in it: made readable by its owner only
        // (the directory, and the files in it, which SQLite's log and
        // shared-memory files take their mode from).
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(dir_err)?;
        let path = dir.join(DB_FILE);
        // One server per directory. A lock file rather than SQLite's own
        // exclusive mode, so that readers (`chatserver export`, the sqlite3
        // tool) can read while the server runs; the OS drops the lock if
        // the process dies.
        let lock = owner_only()
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
        // What SQLite says past this point names the file and what to do
        // (a damaged file, a full disk), not only SQLite's words.
        Self::open_locked(path.clone(), lock, sync).map_err(|e| e.naming(&path))
    }

    /// [`open`](Store::open)'s part once the directory is locked.
    fn open_locked(
        path: std::path::PathBuf,
        lock: std::fs::File,
        sync: Sync,
    ) -> Result<Store, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let had_bytes = std::fs::metadata(&path).is_ok_and(|m| m.len() > 0);
        // A new database begins as an empty file of its owner's only
        // (SQLite would make it readable by all, and its log files alike).
        match owner_only().write(true).create_new(true).open(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(StoreError::Dir {
                    dir: path.parent().map(Path::to_owned).unwrap_or_default(),
                    source: e,
                })
            }
        }
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
            file_id: file_id(&path),
            max_bytes: None,
            max_event_bytes: crate::MAX_EVENT_BYTES,
            prune_at: None,
            path,
            _lock: Some(lock),
            version: SCHEMA_VERSION,
            numbers: std::collections::HashMap::new(),
            buffers: Default::default(),
            began_in_empty: had_bytes && version == 0,
        };
        store.migrate(version)?;
        store.detach_sessions()?;
        store._checkpointer = checkpoint::Checkpointer::start(&mut store.db, &store.path, level)?;
        store.set_log_pages(checkpoint::log_pages(None))?;
        Ok(store)
    }

    /// Open the database in `dir` to read only, beside a server that may
    /// be writing it (for an export). Nothing is created or changed.
    pub fn open_read_only(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join(DB_FILE);
        if !path.exists() {
            let why = if dir.is_dir() {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("no {DB_FILE} in it"))
            } else if let Some(file) = file_in_the_way(dir) {
                file
            } else {
                std::io::Error::new(std::io::ErrorKind::NotFound, "there is no such directory")
            };
            return Err(StoreError::Dir {
                dir: dir.to_owned(),
                source: why,
            });
        }
        // Kept while reading as a file that cannot change: no server takes
        // the directory meanwhile.
        let mut shared = None;
        // No server holds the directory (its lock file free, or none: a
        // copy) and no log holds writes to fold in: the file cannot change
        // while this reads it, so it is read as such, and SQLite makes no
        // shared-memory file or log beside it (an export creates nothing).
        let log = dir.join(format!("{DB_FILE}-wal"));
        let quiet_log = !std::fs::metadata(&log).is_ok_and(|m| m.len() > 0);
        let unheld = quiet_log
            && match std::fs::File::open(dir.join(LOCK_FILE)) {
                Ok(f) => {
                    let free = f.try_lock_shared().is_ok();
                    if free {
                        shared = Some(f);
                    }
                    free
                }
                Err(no) => no.kind() == std::io::ErrorKind::NotFound,
            };
        let first = read_only(&path, unheld);
        let (db, version) = match first {
            Ok(opened) => opened,
            // A database in WAL mode is read beside its shared-memory
            // file, which a read-only directory (a backup on a read-only
            // mount) cannot get. With no server holding the directory
            // and no log left to fold in, read it as a file that never
            // changes. With a log, what it holds would be left out: say so.
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly)
                ) =>
            {
                let log = dir.join(format!("{DB_FILE}-wal"));
                // A server holding the directory writes on: this reader
                // must share the shared-memory file with it. A lock file
                // that cannot be read may be held too.
                match std::fs::File::open(dir.join(LOCK_FILE)) {
                    Ok(f) if f.try_lock_shared().is_ok() => shared = Some(f),
                    Ok(_) => return Err(classify(e, &path)),
                    Err(no) if no.kind() == std::io::ErrorKind::NotFound => {}
                    Err(why) => {
                        return Err(StoreError::Dir {
                            dir: dir.to_owned(),
                            source: std::io::Error::other(format!(
                                "{e}; and {LOCK_FILE}, which says whether a server has the \
                                 directory, cannot be read: {why}"
                            )),
                        })
                    }
                }
                // Said alone: SQLite's words ("unable to open database
                // file") and another directory would not help.
                if std::fs::metadata(&log).is_ok_and(|m| m.len() > 0) {
                    return Err(StoreError::UnfoldedLog {
                        dir: dir.to_owned(),
                        log,
                    });
                }
                read_only(&path, true).map_err(|_| classify(e, &path))?
            }
            Err(e) => return Err(classify(e, &path)),
        };
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path,
                found: version,
            });
        }
        // As `open` tells them: another program's database is not one to
        // migrate.
        let tables: i64 = db.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if version == 0 && tables > 0 {
            return Err(StoreError::Foreign(path));
        }
        if version == 0 {
            return Err(StoreError::Empty(path));
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
            _lock: shared,
            version,
            numbers: std::collections::HashMap::new(),
            buffers: Default::default(),
            file_id: None,
            max_bytes: None,
            max_event_bytes: crate::MAX_EVENT_BYTES,
            prune_at: None,
            began_in_empty: false,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether [`open`](Store::open) found the file there, not empty, with
    /// nothing in it (an SQLite database with no tables, such as a copy of
    /// `chat.db` made without its `chat.db-wal` while a server wrote), and
    /// began a new history in it: worth a warning, since whoever put it
    /// there likely meant a history to be in it.
    pub fn began_in_an_empty_file(&self) -> bool {
        self.began_in_empty
    }

    /// `Err(Gone)` when the database's name no longer leads to the file
    /// opened (deleted, or another put in its place).
    pub(crate) fn check_file(&self) -> Result<(), StoreError> {
        match self.file_id {
            Some(id) if file_id(&self.path) != Some(id) => Err(StoreError::Gone(self.path.clone())),
            _ => Ok(()),
        }
    }

    /// Cap the database at about `bytes` (`None`: no cap). Past it, an
    /// append fails as if the disk were full; reading still works, and
    /// space that retention frees is used again.
    ///
    /// The write-ahead log beside it is not part of the cap, but kept to
    /// a part of it: checkpointed once it holds an eighth of the cap (by
    /// the checkpoint thread) or a quarter (by the writer itself, once
    /// the thread's copy under way is done), and cut back to an eighth
    /// once a checkpoint emptied it; never more
    /// than without a cap ([`CHECKPOINT_PAGES`](crate::CHECKPOINT_PAGES),
    /// [`CHECKPOINT_PAGES_MAX`](crate::CHECKPOINT_PAGES_MAX)). A reader
    /// holding a snapshot open (the sqlite3 tool inside a transaction)
    /// keeps a checkpoint from emptying the log, and the log grows
    /// meanwhile.
    pub fn set_max_bytes(&mut self, bytes: Option<u64>) -> Result<(), StoreError> {
        let page = self.page_size()?;
        let cap = bytes.map(|b| (b.min(i64::MAX as u64) as i64 / page).max(1));
        let pages = cap.unwrap_or(i64::from(u32::MAX) * 4);
        // SQLite answers with the cap it set (never below the current size).
        let _: i64 = self
            .db
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
                r.get(0)
            })?;
        self.max_bytes = bytes;
        self.set_log_pages(checkpoint::log_pages(cap))
    }

    /// The most bytes one event may take as stored (its JSON), past which
    /// [`append`](Store::append) and [`probe`](Store::probe) refuse its
    /// batch with [`StoreError::EventTooLarge`]; by default
    /// [`MAX_EVENT_BYTES`](crate::MAX_EVENT_BYTES), above anything
    /// chatserver writes. A core whose
    /// [`max_frame_bytes`](chatproto::ServerConfig::max_frame_bytes) is
    /// above 16 MiB stamps larger messages: raise this to its frame limit
    /// and 21 bytes for each recipient it allows. (SQLite itself refuses
    /// a row over 1 GB.)
    pub fn set_max_event_bytes(&mut self, bytes: usize) {
        self.max_event_bytes = bytes;
    }

    /// Checkpoint the log after `nudge` pages (the thread) or `itself`
    /// (the writer), and cut it back to `nudge` pages when a checkpoint
    /// has emptied it (SQLite keeps the file as long as it grew, else).
    fn set_log_pages(&mut self, (nudge, itself): (i32, i32)) -> Result<(), StoreError> {
        match &self._checkpointer {
            Some(c) => c.set_pages((nudge, itself)),
            // No thread: SQLite's own checkpoint, in the commit.
            None => {
                let _: i64 = self.db.query_row(
                    &format!("PRAGMA wal_autocheckpoint = {nudge}"),
                    [],
                    |r| r.get(0),
                )?;
            }
        }
        // A log frame is a page and its 24-byte header, after the log's
        // own 32-byte header.
        let kept = i64::from(nudge) * (self.page_size()? + 24) + 32;
        let _: i64 =
            self.db
                .query_row(&format!("PRAGMA journal_size_limit = {kept}"), [], |r| {
                    r.get(0)
                })?;
        Ok(())
    }

    /// The database's page size, in bytes.
    fn page_size(&self) -> Result<i64, StoreError> {
        Ok(self.db.query_row("PRAGMA page_size", [], |r| r.get(0))?)
    }
}

/// A file where `dir` or one of the directories above it should be: it
/// is then no directory to use, and the OS would say only "Not a
/// directory", naming neither. `None` when the nearest of them that
/// exists is a directory (or none does).
fn file_in_the_way(dir: &Path) -> Option<std::io::Error> {
    let (at, _) = dir
        .ancestors()
        // A relative path's last ancestor is "": the current directory.
        .take_while(|a| !a.as_os_str().is_empty())
        // Below a file, asking fails (ENOTDIR): go on up to it.
        .find_map(|a| std::fs::metadata(a).ok().map(|m| (a, m)))
        .filter(|(_, m)| !m.is_dir())?;
    let why = if at == dir {
        "it is a file, not a directory".to_owned()
    } else {
        format!("{} is a file, not a directory", at.display())
    };
    Some(std::io::Error::new(std::io::ErrorKind::NotADirectory, why))
}

/// The file at `path`: its device and inode (`None`: missing, or not on Unix).
fn file_id(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The database at `path` opened to read only, and its schema version
/// (asking for it is when SQLite first reads the file). `immutable`: as a
/// file that cannot change, without the shared-memory file or locks.
fn read_only(path: &Path, immutable: bool) -> Result<(Connection, i64), rusqlite::Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let db = if immutable {
        // A URI's path: `%`, `?` and `#` would be read as its syntax.
        let mut uri = String::from("file:");
        for c in path.to_string_lossy().chars() {
            match c {
                '%' => uri.push_str("%25"),
                '?' => uri.push_str("%3f"),
                '#' => uri.push_str("%23"),
                c => uri.push(c),
            }
        }
        uri.push_str("?immutable=1");
        Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)?
    } else {
        Connection::open_with_flags(path, flags)?
    };
    db.busy_timeout(std::time::Duration::from_secs(5))?;
    let version: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    Ok((db, version))
}

/// Name the errors a person can act on.
pub(crate) fn classify(e: rusqlite::Error, path: &Path) -> StoreError {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::NotADatabase) => StoreError::NotADatabase(path.to_owned()),
        Some(C::DatabaseCorrupt) => StoreError::Damaged {
            path: path.to_owned(),
            source: e,
        },
        Some(C::DiskFull) => StoreError::DiskFull(path.to_owned()),
        _ if full_disk(&e, || free_bytes(path)) => StoreError::DiskFull(path.to_owned()),
        Some(C::DatabaseBusy) | Some(C::DatabaseLocked) => StoreError::Locked(path.to_owned()),
        // The file is there, and cannot be written: its owner or mode.
        Some(C::ReadOnly) if path.exists() => StoreError::NotWritable {
            path: path.to_owned(),
            source: e,
        },
        Some(C::CannotOpen) | Some(C::ReadOnly) | Some(C::PermissionDenied) => StoreError::Dir {
            dir: path.parent().unwrap_or(path).to_owned(),
            source: std::io::Error::other(e.to_string()),
        },
        _ => StoreError::Sqlite(e),
    }
}

/// Free space below this on the disk holding the database, at an I/O
/// error, is why: a write that found no room for its page (a log frame,
/// the shared-memory index, a checkpoint's copy) fails that way, as "disk
/// I/O error" rather than SQLite's "database or disk is full".
pub(crate) const FULL_BELOW_BYTES: u64 = 1 << 20;

/// Whether `e` is SQLite's "full" or an I/O error, on a disk with less
/// than [`FULL_BELOW_BYTES`] free (`free` tells how much: asked only for
/// those two). SQLite's "database or disk is full" alone does not say
/// which: it is also the answer at the size cap (`--store-max-mib`).
pub(crate) fn full_disk(e: &rusqlite::Error, free: impl FnOnce() -> Option<u64>) -> bool {
    use rusqlite::ErrorCode as C;
    matches!(
        e.sqlite_error_code(),
        Some(C::DiskFull | C::SystemIoFailure)
    ) && out_of_space(free())
}

/// Whether `free` (bytes an unprivileged writer may still use, `None` when
/// unknown) is too little to go on.
pub(crate) fn out_of_space(free: Option<u64>) -> bool {
    free.is_some_and(|b| b < FULL_BELOW_BYTES)
}

/// The bytes an unprivileged writer may still use on the filesystem
/// holding `path` (its directory), or `None` if it cannot be told.
pub(crate) fn free_bytes(path: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty())?;
        let fs = rustix::fs::statvfs(dir).ok()?;
        Some(fs.f_bavail.saturating_mul(fs.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Options that create a file readable and writable by its owner only.
fn owner_only() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    fn sqlite(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), None)
    }

    /// SQLite's "attempt to write a readonly database" on a file that is
    /// there names the file and its owner or mode, not the directory.
    #[test]
    fn a_database_file_that_cannot_be_written_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        std::fs::write(&path, b"").unwrap();
        let said = classify(sqlite(ffi::SQLITE_READONLY), &path).to_string();
        assert!(
            said.starts_with(&format!("cannot write {}", path.display())),
            "{said}"
        );
        assert!(said.contains("owner or mode"), "{said}");
        // Not there at all: the directory is what cannot be written.
        let gone = dir.path().join("gone").join(DB_FILE);
        let said = classify(sqlite(ffi::SQLITE_READONLY), &gone).to_string();
        assert!(said.starts_with("cannot use the data directory"), "{said}");
    }

    #[test]
    fn an_io_error_or_full_on_a_disk_with_no_room_is_a_full_disk() {
        for code in [ffi::SQLITE_IOERR_WRITE, ffi::SQLITE_FULL] {
            let e = sqlite(code);
            assert!(full_disk(&e, || Some(0)));
            assert!(full_disk(&e, || Some(FULL_BELOW_BYTES - 1)));
            // Room left (SQLite's "full" is then the size cap), or no way
            // to tell: the error as it is.
            assert!(!full_disk(&e, || Some(FULL_BELOW_BYTES)));
            assert!(!full_disk(&e, || None));
        }
        // Other errors are not about space: the disk is not even asked.
        let mut asked = false;
        assert!(!full_disk(&sqlite(ffi::SQLITE_BUSY), || {
            asked = true;
            Some(0)
        }));
        assert!(!asked);
        let path = Path::new("/data/chat.db");
        assert!(matches!(
            classify(sqlite(ffi::SQLITE_FULL), path),
            StoreError::DiskFull(p) if p == path
        ));
    }

    /// The history holds private messages: a data directory the store
    /// makes, and every file it makes there (the database, its log and
    /// shared-memory files, the lock), are its owner's only.
    #[cfg(unix)]
    #[test]
    fn what_the_store_makes_is_its_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        let store = Store::open(&dir, Sync::Normal).unwrap();
        // Something written, so the log files are there.
        store
            .db
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for name in [DB_FILE, "chat.db-wal", "chat.db-shm", LOCK_FILE] {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
        // A database opened again is as it was.
        drop(store);
        let _again = Store::open(&dir, Sync::Normal).unwrap();
        assert_eq!(mode(&dir.join(DB_FILE)), 0o600);
    }

    #[test]
    fn free_space_is_read_from_the_directory_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(&dir.path().join("chat.db"));
        if cfg!(unix) {
            assert!(free.is_some(), "statvfs of a temporary directory");
        }
        // A directory that does not exist, and a bare file name: unknown.
        assert_eq!(free_bytes(Path::new("/nonexistent-dir-x/chat.db")), None);
        assert_eq!(free_bytes(Path::new("chat.db")), None);
    }
}
