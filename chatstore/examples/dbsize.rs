//! How big the history database gets, and how fast the store appends:
//! 1,000,000 messages (about 100 bytes of text each, to the whole room) in
//! batches of 1,024, one transaction per batch, into a fresh directory.
//!
//! ```sh
//! cargo run --release -p chatstore --example dbsize -- [normal|full] [MESSAGES] [TEXT_BYTES]
//! ```
//!
//! Prints the append rate, the files while the store is open (chat.db and
//! chat.db-wal), and chat.db once the store is closed: SQLite checkpoints
//! the WAL into chat.db when its last connection closes and deletes it.
use std::sync::Arc;
use std::time::Instant;

use chatproto::{Event, EventBody, Record, SessionId};
use chatstore::{Store, Sync, DB_FILE};

const BATCH: u64 = 1024;

fn size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sync = match args.first().map(String::as_str) {
        None | Some("normal") => Sync::Normal,
        Some("full") => Sync::Full,
        Some(other) => panic!("sync mode {other:?}: normal or full"),
    };
    let total: u64 = args
        .get(1)
        .map_or(1_000_000, |a| a.parse().expect("MESSAGES"));
    let text_bytes: usize = args.get(2).map_or(100, |a| a.parse().expect("TEXT_BYTES"));

    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut store = Store::open(dir.path(), sync).expect("open the store");
    let room: Arc<str> = "lobby".into();
    let nick: Arc<str> = "publisher0".into();
    store
        .append(&[Record::room(Arc::clone(&room), "e1")])
        .expect("the room record");

    let mut seq = 0;
    let mut appending = std::time::Duration::ZERO;
    while seq < total {
        let n = (total - seq).min(BATCH);
        let batch: Vec<Record> = (0..n)
            .map(|_| {
                seq += 1;
                // Like chatbench's texts: sender, number, a time, padding.
                let mut text = format!("publisher0:{seq}:{}:", 1_000_000_000 + seq * 997);
                let pad = text_bytes.saturating_sub(text.len());
                text.extend(std::iter::repeat_n('x', pad));
                let body = EventBody::msg(SessionId(1), Arc::clone(&nick), Vec::new(), text, None);
                let ts = 1_732_400_000_000 + seq / 2;
                Record::Event(Arc::new(Event::new(Arc::clone(&room), seq, ts, body)))
            })
            .collect();
        let t = Instant::now();
        store.append(&batch).expect("append");
        appending += t.elapsed();
    }

    let db = dir.path().join(DB_FILE);
    let wal = dir.path().join(format!("{DB_FILE}-wal"));
    let (open_db, open_wal) = (size(&db), size(&wal));
    drop(store); // the last connection: SQLite checkpoints and removes the WAL
    let (closed_db, closed_wal) = (size(&db), size(&wal));

    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let secs = appending.as_secs_f64();
    println!("sync {sync:?}, {total} messages of {text_bytes} bytes, batches of {BATCH}");
    println!(
        "append: {secs:.2} s in Store::append, {:.0} messages/s",
        total as f64 / secs
    );
    println!(
        "open:   chat.db {:.1} MiB + chat.db-wal {:.1} MiB = {:.1} MiB",
        mib(open_db),
        mib(open_wal),
        mib(open_db + open_wal)
    );
    println!(
        "closed: chat.db {:.1} MiB (wal {closed_wal} bytes): {:.1} MiB per million, {:.0} bytes per message",
        mib(closed_db),
        mib(closed_db) * 1e6 / total as f64,
        closed_db as f64 / total as f64
    );
}
