//! The data directory a start made, taken away again if that start fails
//! before the server serves: a mistyped flag must not leave an empty
//! database behind, in a directory the operator never had. Only what
//! the start made goes, and only when no other server holds it: the
//! store's own files by name (while holding their lock, so that a server
//! starting on the same directory meanwhile cannot lose its files), then
//! each directory made, if empty. Anything else, there before or put
//! there meanwhile, stays, and so do the directories holding it.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use chatstore::{DB_FILE, LOCK_FILE};

/// What SQLite keeps beside the database file (WAL mode, or a rollback
/// journal), each `chat.db` and this.
const DB_SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// The directories and store files a start is about to make, taken away
/// when dropped unless [`Made::keep`] was called. Drop it only once the
/// store is closed (in `run`, it is the first local: the last dropped).
#[derive(Debug)]
pub struct Made {
    /// The data directory (`None`: no store).
    data: Option<PathBuf>,
    /// The directories that did not exist, the data directory first,
    /// then each parent up to the first that existed.
    dirs: Vec<PathBuf>,
    /// The store's files (the database, its side files, the lock) that
    /// did not exist in the data directory: a directory there before
    /// keeps what it held, and loses only these.
    files: Vec<PathBuf>,
}

impl Made {
    /// Before the store opens `dir`: the directories opening it makes
    /// (none when it exists, or when there is no store), and its files.
    pub fn before(dir: Option<&Path>) -> Made {
        let dirs = dir
            .into_iter()
            .flat_map(Path::ancestors)
            // A relative path's last ancestor is "": the current directory.
            .take_while(|d| !d.as_os_str().is_empty() && d.symlink_metadata().is_err())
            .map(Path::to_path_buf)
            .collect();
        let files = dir
            .into_iter()
            .flat_map(|d| {
                std::iter::once(String::new())
                    .chain(DB_SIDE_FILES.map(String::from))
                    .map(|side| d.join(format!("{DB_FILE}{side}")))
                    .chain(std::iter::once(d.join(LOCK_FILE)))
            })
            .filter(|f| f.symlink_metadata().is_err())
            .collect();
        Made {
            data: dir.map(Path::to_path_buf),
            dirs,
            files,
        }
    }

    /// The server serves: what the start made is its data directory now.
    pub fn keep(mut self) {
        self.dirs.clear();
        self.files.clear();
    }

    /// Take away what the start made, as far as it is safe to.
    fn remove(&self) {
        let Some(data) = &self.data else {
            return;
        };
        let lock_path = data.join(LOCK_FILE);
        // Held by no other server. The lock file goes only if this start
        // made it: a stopped server leaves its own behind, and a copy of
        // its data directory (a backup restored) has one too, beside
        // which a start that failed has made side files all the same.
        if let Some(lock) = held(&lock_path) {
            // A database there before keeps a log this start wrote
            // into (it may hold what is not in the database yet, a
            // migration's pages); an empty log or journal, and the
            // shared-memory index (made again from the log), go.
            let ours = self.files.contains(&data.join(DB_FILE));
            for file in self.files.iter().filter(|f| **f != lock_path) {
                let index = file.as_os_str().to_string_lossy().ends_with("-shm");
                let empty = || file.metadata().is_ok_and(|m| m.len() == 0);
                if ours || index || empty() {
                    let _ = std::fs::remove_file(file);
                }
            }
            if self.files.contains(&lock_path) {
                // Unlinked while still held: a server that opened it
                // meanwhile finds it locked and stops.
                let _ = std::fs::remove_file(&lock_path);
            }
            drop(lock);
        }
        // Deepest first; `remove_dir` takes only an empty one.
        for dir in &self.dirs {
            if std::fs::remove_dir(dir).is_err() {
                return;
            }
        }
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        self.remove();
    }
}

/// The lock file at `path`, locked by us: `None` if it is missing or
/// another server holds it.
fn held(path: &Path) -> Option<File> {
    let file = OpenOptions::new().write(true).open(path).ok()?;
    file.try_lock().ok().map(|()| file)
}

/// The data directory, when others than its owner may enter or list it
/// (any of its mode's group or other bits), with its mode, then each of
/// the database's files they may read or write too: private messages
/// are in them. A directory this server made is its owner's only; one
/// made otherwise (by an earlier version, or by hand) keeps its mode. In
/// a directory of its owner's only, no file's mode matters (a backup
/// copied in at 644 is out of others' reach): nothing is said. Files not
/// there are left out; on other systems than Unix, nothing is said.
pub fn open_to_others(dir: &Path) -> Vec<(PathBuf, u32)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let open = |p: PathBuf| {
            let mode = std::fs::metadata(&p).ok()?.permissions().mode() & 0o777;
            (mode & 0o077 != 0).then_some((p, mode))
        };
        let Some(d) = open(dir.to_path_buf()) else {
            return Vec::new();
        };
        let mut files = vec![dir.join(DB_FILE)];
        files.extend(
            DB_SIDE_FILES
                .iter()
                .map(|s| dir.join(format!("{DB_FILE}{s}"))),
        );
        std::iter::once(d)
            .chain(files.into_iter().filter_map(open))
            .collect()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data directory others may enter is said, with its files open to
    /// them; one of its owner's only is not, whatever its files' modes.
    #[test]
    #[cfg(unix)]
    fn a_data_directory_open_to_others_is_found() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        let db = dir.join(DB_FILE);
        std::fs::write(&db, b"").unwrap();
        let set = |p: &Path, mode: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set(&db, 0o644);
        set(&dir, 0o700);
        assert_eq!(open_to_others(&dir), vec![]);
        set(&dir, 0o755);
        assert_eq!(
            open_to_others(&dir),
            vec![(dir.clone(), 0o755), (db.clone(), 0o644)]
        );
        set(&db, 0o600);
        assert_eq!(open_to_others(&dir), vec![(dir.clone(), 0o755)]);
        assert_eq!(open_to_others(&tmp.path().join("none")), vec![]);
    }

    fn open(dir: &Path) -> chatstore::Store {
        chatstore::Store::open(dir, chatstore::Sync::Normal).expect("open the store")
    }

    #[test]
    fn what_a_failed_start_made_goes_however_deep() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("a/b/data");
        let made = Made::before(Some(&data));
        drop(open(&data));
        drop(made);
        assert!(!tmp.path().join("a").exists(), "a/ is left");
        assert!(tmp.path().exists());
    }

    /// A start that failed on a database it could not write (its owner or
    /// mode) had made the shared-memory index and an empty log beside it:
    /// they go, and the database and a log with something in it stay.
    #[test]
    fn side_files_a_failed_start_made_beside_a_database_go_unless_they_hold_something() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        drop(open(&data));
        // A database copied in, without a lock file of its own.
        std::fs::remove_file(data.join(LOCK_FILE)).unwrap();
        let side = |s: &str| data.join(format!("{DB_FILE}{s}"));
        let made = Made::before(Some(&data));
        std::fs::write(side("-shm"), [0u8; 64]).unwrap();
        std::fs::write(side("-wal"), b"").unwrap();
        std::fs::write(data.join(LOCK_FILE), b"").unwrap();
        drop(made);
        assert!(data.join(DB_FILE).exists(), "the database was there before");
        for s in ["-shm", "-wal"] {
            assert!(!side(s).exists(), "{s} is left");
        }
        assert!(!data.join(LOCK_FILE).exists());
        // A log with something in it stays: it may hold a migration.
        let made = Made::before(Some(&data));
        std::fs::write(side("-wal"), b"pages").unwrap();
        std::fs::write(data.join(LOCK_FILE), b"").unwrap();
        drop(made);
        assert!(side("-wal").exists(), "a log with pages in it was removed");
    }

    /// The same beside a whole data directory copied in (a backup
    /// restored), which holds the lock file a stopped server leaves: the
    /// side files a failed start made go, and the lock file stays. A
    /// read-only shared-memory index left there (SQLite gives it the
    /// database's mode) failed the next start, the database's mode
    /// mended, with the same `cannot write chat.db`.
    #[test]
    fn side_files_a_failed_start_made_beside_a_stopped_servers_lock_go() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        drop(open(&data));
        assert!(data.join(LOCK_FILE).exists(), "a stopped server's lock");
        let side = |s: &str| data.join(format!("{DB_FILE}{s}"));
        let made = Made::before(Some(&data));
        std::fs::write(side("-shm"), [0u8; 64]).unwrap();
        std::fs::write(side("-wal"), b"").unwrap();
        drop(made);
        assert!(data.join(DB_FILE).exists(), "the database was there before");
        for s in ["-shm", "-wal"] {
            assert!(!side(s).exists(), "{s} is left");
        }
        assert!(data.join(LOCK_FILE).exists(), "the lock was there before");
        // Nor does a failed start take what a server that opened the
        // directory meanwhile holds.
        let made = Made::before(Some(&data));
        let other = open(&data);
        assert!(side("-wal").exists() && side("-shm").exists());
        drop(made);
        assert!(side("-wal").exists() && side("-shm").exists());
        drop(other);
    }

    #[test]
    fn a_start_that_serves_keeps_it() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let made = Made::before(Some(&data));
        drop(open(&data));
        made.keep();
        assert!(data.join(DB_FILE).exists());
    }

    #[test]
    fn a_directory_that_was_there_stays_with_what_it_held() {
        let tmp = tempfile::tempdir().unwrap();
        // Its own database: opened by the start, and kept.
        drop(open(tmp.path()));
        std::fs::remove_file(tmp.path().join(LOCK_FILE)).unwrap();
        let made = Made::before(Some(tmp.path()));
        drop(open(tmp.path()));
        drop(made);
        assert!(tmp.path().join(DB_FILE).exists());
        // Nor is there anything to take away without a store.
        drop(Made::before(None));
        assert!(tmp.path().join(DB_FILE).exists());
    }

    /// A directory there before, empty, or holding a file that is not a
    /// database (the start fails on it): what the start made in it goes
    /// (the lock file, a database), the directory and its file stay.
    #[test]
    fn what_a_failed_start_made_in_a_directory_there_before_goes() {
        let tmp = tempfile::tempdir().unwrap();
        let made = Made::before(Some(tmp.path()));
        drop(open(tmp.path()));
        drop(made);
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");

        std::fs::write(tmp.path().join(DB_FILE), "not a database").unwrap();
        let made = Made::before(Some(tmp.path()));
        assert!(chatstore::Store::open(tmp.path(), chatstore::Sync::Normal).is_err());
        drop(made);
        assert!(
            !tmp.path().join(LOCK_FILE).exists(),
            "the lock it made goes"
        );
        assert_eq!(
            std::fs::read(tmp.path().join(DB_FILE)).unwrap(),
            b"not a database"
        );
    }

    #[test]
    fn what_another_put_in_it_stays_and_so_does_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("a/data");
        let made = Made::before(Some(&data));
        drop(open(&data));
        std::fs::write(data.join("notes.txt"), "mine").unwrap();
        drop(made);
        assert_eq!(std::fs::read(data.join("notes.txt")).unwrap(), b"mine");
        assert!(!data.join(DB_FILE).exists(), "the store's own file goes");
    }

    #[test]
    fn a_directory_another_server_holds_is_left_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        // Two starts at once on a new directory: both saw it missing, the
        // other one opened the store first and serves from it.
        let made = Made::before(Some(&data));
        let other = open(&data);
        drop(made);
        assert!(data.join(DB_FILE).exists());
        assert!(data.join(LOCK_FILE).exists());
        drop(other);
    }
}
