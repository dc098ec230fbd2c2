//! Room fan-out: events handled per second in a 100-member room.
//!
//! Each iteration is one `handle_frame` followed by the full drain a server
//! does after every input (`poll_transmit`, `poll_close`, `poll_event`, each
//! until `None`). A broadcast is 100 deliveries, so deliveries per second
//! are 100 times the events per second reported.

use std::hint::black_box;

use chatproto::{ClientFrame, ClientId, Room, RoomConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const MEMBERS: usize = 100;

/// A room with `MEMBERS` joined clients and its join traffic drained.
fn full_room(now: u64) -> (Room, Vec<ClientId>) {
    let mut room = Room::new(RoomConfig::default());
    let ids: Vec<ClientId> = (0..MEMBERS)
        .map(|i| {
            let id = room.handle_connect(now);
            let nick = format!("member{i:03}");
            room.handle_frame(now, id, ClientFrame::Join { nick });
            id
        })
        .collect();
    drain(&mut room);
    assert_eq!(room.members(), MEMBERS);
    (room, ids)
}

/// Drain the room in the documented order; returns how many transmits.
fn drain(room: &mut Room) -> usize {
    let mut n = 0;
    while let Some(t) = room.poll_transmit() {
        black_box(t);
        n += 1;
    }
    while let Some(c) = room.poll_close() {
        black_box(c);
    }
    while let Some(e) = room.poll_event() {
        black_box(e);
    }
    n
}

fn fanout(c: &mut Criterion) {
    let text = "a chat line of about sixty-four bytes, as people type them: ok?!".to_owned();
    let mut g = c.benchmark_group("room_fanout_100");
    g.throughput(Throughput::Elements(1));

    g.bench_function("broadcast_msg", |b| {
        let mut now = 1_732_400_000_000;
        let (mut room, ids) = full_room(now);
        let mut i = 0;
        b.iter(|| {
            now += 1;
            i = (i + 1) % MEMBERS;
            let frame = ClientFrame::Msg {
                to: Vec::new(),
                text: text.clone(),
            };
            room.handle_frame(now, ids[i], frame);
            assert_eq!(drain(&mut room), MEMBERS);
        })
    });

    g.bench_function("private_msg", |b| {
        let mut now = 1_732_400_000_000;
        let (mut room, ids) = full_room(now);
        let mut i = 0;
        b.iter(|| {
            now += 1;
            i = (i + 1) % MEMBERS;
            let to = format!("member{:03}", (i + 37) % MEMBERS);
            let frame = ClientFrame::Msg {
                to: vec![to],
                text: text.clone(),
            };
            room.handle_frame(now, ids[i], frame);
            // The recipient and the sender's echo.
            assert_eq!(drain(&mut room), 2);
        })
    });
    g.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
