//! Replays the committed fuzz seed corpus through the same checks the fuzz
//! targets run, so a regression input added to `fuzz/corpus/<target>/`
//! fails an ordinary `cargo test`, no nightly or cargo-fuzz needed.

use std::fs;
use std::path::PathBuf;

use chatproto::testkit::{check_decode, check_room_ops};

/// Run `check` on every file in `fuzz/corpus/<target>`, naming the file that
/// panics, and return how many files there were.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    for path in &paths {
        let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(
            outcome.is_ok(),
            "{} fails the {target} check",
            path.display()
        );
    }
    paths.len()
}

#[test]
fn decode_corpus_replays_clean() {
    let n = replay("decode", check_decode);
    assert!(n > 0, "no files in fuzz/corpus/decode");
}

#[test]
fn room_corpus_replays_clean() {
    let n = replay("room", check_room_ops);
    assert!(n > 0, "no files in fuzz/corpus/room");
}
