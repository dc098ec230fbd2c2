//! What a retention step costs a store holding many rooms: `ROOMS` rooms
//! (default 100,000) with one young message each, and one room with
//! 20,000 messages older than the age limit, pruned as chatserver's store
//! thread prunes (steps of 1,000, each followed by a read of where the
//! history of every room it deleted from now starts). Every write waits
//! behind a step, so the longest step is what an acknowledgement may wait.
//!
//! ```sh
//! cargo run --release -p chatstore --example retention -- [ROOMS]
//! ```
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatproto::{Event, EventBody, Record, SessionId};
use chatstore::{Store, Sync};

const T: u64 = 1_732_400_000_000;
const STEP: usize = 1_000;

fn msg(room: &str, seq: u64, ts: u64, text: &str) -> Record {
    let body = EventBody::msg(SessionId(1), "n1", vec![], text, None);
    Record::Event(Arc::new(Event::new(room, seq, ts, body)))
}

fn main() {
    let rooms: u64 = std::env::args()
        .nth(1)
        .map_or(100_000, |a| a.parse().expect("ROOMS"));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut store = Store::open(dir.path(), Sync::Normal).expect("open the store");
    let mut batch = Vec::new();
    for r in 0..rooms {
        let name = format!("r{r:07}");
        batch.push(Record::room(name.as_str(), "e"));
        batch.push(msg(&name, 1, T + 10_000_000, "young"));
        if batch.len() > 20_000 {
            store.append(&batch).expect("append");
            batch.clear();
        }
    }
    batch.push(Record::room("zzz", "e"));
    for s in 1..=20_000 {
        batch.push(msg("zzz", s, T + s, "old"));
    }
    store.append(&batch).expect("append");

    let now = T + 10_000_001;
    let (mut steps, mut deleted, mut worst) = (0, 0, Duration::ZERO);
    let start = Instant::now();
    loop {
        let t = Instant::now();
        let step = store
            .prune_step(now, 5_000_000, u64::MAX / 2, STEP)
            .expect("prune");
        for name in &step.rooms {
            store.room(name).expect("read a room");
        }
        worst = worst.max(t.elapsed());
        steps += 1;
        deleted += step.deleted;
        if !step.more {
            break;
        }
    }
    println!(
        "{rooms} rooms: {deleted} events deleted in {steps} steps, {:.1} ms in all, the longest step {:.2} ms",
        start.elapsed().as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3
    );
}
