//! `Store::append` throughput: batches of 1, 64 and 1,024 messages (about
//! 100 bytes of text each, to the whole room) into a store in a temporary
//! directory, with `Sync::Normal` and `Sync::Full` (`append_room`); and
//! batches of 1,024 messages to one member each, whose recipients go in
//! the message's row (`append_private`).
//!
//! One batch is one transaction, as the server writes one per turn of its
//! loop; criterion's throughput is in messages, so the figure it prints is
//! the store's own append rate at that batch size. The store grows through
//! the run (seqs keep rising in one room), as it does in a server.
//!
//! ```sh
//! cargo bench -p chatstore --bench append
//! ```

use std::hint::black_box;
use std::sync::Arc;

use chatproto::{Event, EventBody, Recipient, Record, SessionId};
use chatstore::{Store, Sync};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const ROOM: &str = "lobby";
const TEXT_BYTES: usize = 100;

/// A store in a fresh temporary directory with `lobby` in it (the
/// directory goes when the value is dropped).
fn open(sync: Sync) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut store = Store::open(dir.path(), sync).expect("open the store");
    store
        .append(&[Record::room(ROOM, "e1")])
        .expect("the room record");
    (dir, store)
}

/// Stamps the messages of `lobby`, seq after seq.
struct Messages {
    seq: u64,
    text: String,
    nick: Arc<str>,
    room: Arc<str>,
}

impl Messages {
    fn new() -> Self {
        Messages {
            seq: 0,
            text: "x".repeat(TEXT_BYTES),
            nick: "publisher0".into(),
            room: ROOM.into(),
        }
    }

    /// The next `n` messages as records: to everyone, or (`private`) to
    /// one member each.
    fn batch(&mut self, n: usize, private: bool) -> Vec<Record> {
        (0..n)
            .map(|i| {
                self.seq += 1;
                let to = if private {
                    vec![Recipient::new(SessionId(2 + (i as u64 % 99)), "member")]
                } else {
                    Vec::new()
                };
                let body = EventBody::msg(
                    SessionId(1),
                    Arc::clone(&self.nick),
                    to,
                    self.text.clone(),
                    Some(format!("m{}", self.seq)),
                );
                let ts = 1_732_400_000_000 + self.seq;
                Record::Event(Arc::new(Event::new(
                    Arc::clone(&self.room),
                    self.seq,
                    ts,
                    body,
                )))
            })
            .collect()
    }
}

fn sync_name(sync: Sync) -> &'static str {
    match sync {
        Sync::Normal => "normal",
        _ => "full",
    }
}

fn append(c: &mut Criterion) {
    for (group_name, private) in [("append_room", false), ("append_private", true)] {
        let mut group = c.benchmark_group(group_name);
        for sync in [Sync::Normal, Sync::Full] {
            for batch in [1usize, 64, 1024] {
                // Private messages: only the largest batch (the per-row cost
                // of the recipients table is what differs).
                if private && batch != 1024 {
                    continue;
                }
                group.throughput(Throughput::Elements(batch as u64));
                let id = BenchmarkId::new(sync_name(sync), batch);
                let (_dir, mut store) = open(sync);
                let mut messages = Messages::new();
                group.bench_function(id, |bencher| {
                    bencher.iter_batched(
                        || messages.batch(batch, private),
                        |records| store.append(black_box(&records)).expect("append"),
                        criterion::BatchSize::LargeInput,
                    );
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, append);
criterion_main!(benches);
