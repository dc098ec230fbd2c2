//! A disk that refuses to grow a file, as a full disk does (the process's
//! file size limit stands in for it: no root, no mount). SQLite writes a
//! transaction's pages only at its commit, so a probe that wrote the
//! failed batch and rolled it back never touched the disk, said the store
//! worked while the disk was still full, and the server went from "works
//! again" to "cannot store" every second. A test binary of its own: the
//! limit is the whole process's.

use std::sync::Arc;

use chatproto::{Event, EventBody, Record, SessionId};
use chatstore::{Store, Sync, DB_FILE};

fn batch(first: u64, n: u64) -> Vec<Record> {
    let mut out = vec![Record::room("lobby", "e1")];
    for seq in first..first + n {
        let body = EventBody::msg(SessionId(1), "alice", vec![], "x".repeat(1_000), None);
        out.push(Record::Event(Arc::new(Event::new(
            "lobby",
            seq,
            1_732_400_000_000 + seq,
            body,
        ))));
    }
    out
}

/// Files may grow to `bytes` at most (`None`: no limit). A write past it
/// fails with `EFBIG` (the signal it would raise is ignored).
fn limit_file_size(bytes: Option<u64>) {
    let limit = libc::rlimit {
        rlim_cur: bytes.unwrap_or(libc::RLIM_INFINITY),
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain system calls on this process's own settings.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
}

#[test]
fn a_probe_fails_while_the_disk_cannot_take_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), Sync::Normal).unwrap();
    store.append(&batch(1, 1)).unwrap();
    let size = |name: &str| std::fs::metadata(dir.path().join(name)).map_or(0, |m| m.len());
    // No file may grow: the next batch's pages do not fit anywhere.
    limit_file_size(Some(size(DB_FILE).max(size(&format!("{DB_FILE}-wal")))));
    let next = batch(2, 40);
    let failed = store.append(&next);
    let probed = store.probe(&next);
    limit_file_size(None);
    assert!(failed.is_err(), "the disk is full: the batch fails");
    assert!(
        probed.is_err(),
        "a probe while the disk is still full says so"
    );
    // The disk has room again: the probe says so, stores nothing, and
    // the batch goes in.
    store.probe(&next).unwrap();
    assert_eq!(
        store.rooms().unwrap()[0].last_seq,
        1,
        "a probe stores nothing"
    );
    store.append(&next).unwrap();
    assert_eq!(store.rooms().unwrap()[0].last_seq, 41);
}
