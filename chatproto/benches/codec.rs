//! Codec throughput, side by side with bare `serde_json` on the same payloads.
//!
//! The `codec` lines are what a connection pays per frame; the `serde_json`
//! lines are the floor no JSON codec can beat. Both lines of a group count
//! the same bytes (payloads plus their 4-byte headers) and the same frames,
//! so their throughputs compare directly.

use std::hint::black_box;

use bytes::BytesMut;
use chatproto::{
    encode, encode_into, ClientFrame, Decoded, Event, EventBody, FrameDecoder, Recipient,
    ServerFrame, SessionId,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

/// Frames per iteration: enough that per-iteration overhead vanishes.
const FRAMES: usize = 1_000;
const MAX: usize = chatproto::DEFAULT_MAX_FRAME_BYTES;

/// A ~64-byte chat line that differs from frame to frame.
fn text(i: usize) -> String {
    let t = format!("message {i:05}: the quick brown fox jumps over the lazy dog, ok");
    debug_assert!((60..=70).contains(&t.len()));
    t
}

/// Client `msg` frames (v1, no room or id) as they arrive from many
/// senders: mostly to everyone, every fourth to one or two people.
fn client_msgs() -> Vec<ClientFrame> {
    (0..FRAMES)
        .map(|i| {
            let to = match i % 8 {
                3 => vec!["bob".into()],
                7 => vec!["bob".into(), "carol".into()],
                _ => Vec::new(),
            };
            ClientFrame::msg(to, text(i))
        })
        .collect()
}

/// Server `msg` frames as a v2 server sends them to everyone in `lobby`.
fn server_msgs() -> Vec<ServerFrame> {
    (0..FRAMES)
        .map(|i| {
            ServerFrame::msg(
                Some(chatproto::LOBBY.into()),
                1_000_000 + i as u64,
                "alice",
                Vec::new(),
                text(i),
                1_732_400_000_000 + i as u64,
                None,
            )
        })
        .collect()
}

fn decode(c: &mut Criterion) {
    let frames = client_msgs();
    let payloads: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| serde_json::to_vec(f).expect("serializable"))
        .collect();
    let mut wire = BytesMut::new();
    for f in &frames {
        encode_into(f, &mut wire, MAX).expect("fits");
    }
    let wire = wire.freeze();

    let mut g = c.benchmark_group("decode_client_msg");
    g.throughput(Throughput::ElementsAndBytes {
        elements: FRAMES as u64,
        bytes: wire.len() as u64,
    });
    g.bench_function("codec", |b| {
        // The copy into a fresh buffer stands for the socket read and is
        // not timed; the decoder then splits frames off it without copying.
        b.iter_batched(
            || BytesMut::from(&wire[..]),
            |mut buf| {
                let mut dec = FrameDecoder::new(MAX);
                let mut n = 0;
                while let Decoded::Frame(frame) = dec.decode::<ClientFrame>(&mut buf) {
                    black_box(frame);
                    n += 1;
                }
                assert_eq!(n, FRAMES);
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("codec_from_payload", |b| {
        // The same, through the plain-frame scanner a server uses.
        b.iter_batched(
            || BytesMut::from(&wire[..]),
            |mut buf| {
                let mut dec = FrameDecoder::new(MAX);
                let mut n = 0;
                while let Decoded::Frame(frame) =
                    dec.decode_with(&mut buf, ClientFrame::from_payload)
                {
                    black_box(frame);
                    n += 1;
                }
                assert_eq!(n, FRAMES);
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("serde_json", |b| {
        b.iter(|| {
            for p in &payloads {
                black_box(serde_json::from_slice::<ClientFrame>(black_box(p)).expect("valid"));
            }
        })
    });
    g.finish();
}

fn encode_bench(c: &mut Criterion) {
    let frames = server_msgs();
    let bytes: usize = frames
        .iter()
        .map(|f| encode(f, MAX).expect("fits").len())
        .sum();

    let mut g = c.benchmark_group("encode_server_msg");
    g.throughput(Throughput::ElementsAndBytes {
        elements: FRAMES as u64,
        bytes: bytes as u64,
    });
    // One fresh buffer per frame, like `serde_json::to_vec`.
    g.bench_function("codec_encode", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(encode(black_box(f), MAX).expect("fits"));
            }
        })
    });
    // One reused buffer, as a shell's writer encodes.
    g.bench_function("codec_encode_into", |b| {
        let mut buf = BytesMut::with_capacity(bytes);
        b.iter(|| {
            buf.clear();
            for f in &frames {
                encode_into(black_box(f), &mut buf, MAX).expect("fits");
            }
            black_box(&buf);
        })
    });
    g.bench_function("serde_json_to_vec", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(serde_json::to_vec(black_box(f)).expect("serializable"));
            }
        })
    });
    g.finish();
}

/// A room's message events as the server's shell writes them (chatproto's
/// own writer for `msg`, not serde): one in eight private, one in eight
/// with a quote to escape.
fn encode_event_bench(c: &mut Criterion) {
    let events: Vec<Event> = (0..FRAMES)
        .map(|i| {
            let to = match i % 8 {
                3 => vec![Recipient::new(SessionId(2), "bob")],
                _ => Vec::new(),
            };
            let mut t = text(i);
            if i % 8 == 5 {
                t.insert_str(10, "\"quoted\" ");
            }
            let body = EventBody::msg(SessionId(1), "alice", to, t, None);
            Event::new(
                chatproto::LOBBY,
                1_000_000 + i as u64,
                1_732_400_000_000,
                body,
            )
        })
        .collect();
    let mut buf = BytesMut::new();
    for e in &events {
        e.wire(false, false)
            .encode_into(&mut buf, MAX)
            .expect("fits");
    }
    let mut g = c.benchmark_group("encode_event");
    g.throughput(Throughput::ElementsAndBytes {
        elements: FRAMES as u64,
        bytes: buf.len() as u64,
    });
    g.bench_function("wire_encode_into", |b| {
        b.iter(|| {
            buf.clear();
            for e in &events {
                black_box(e)
                    .wire(false, false)
                    .encode_into(&mut buf, MAX)
                    .expect("fits");
            }
            black_box(&buf);
        })
    });
    g.finish();
}

/// Hostile payloads near the frame limit: an array of a wrong type under
/// a member the frame knows (`to`), and the same bytes under a member it
/// ignores. What one frame costs the server to refuse or take.
fn decode_hostile(c: &mut Criterion) {
    let ones = vec!["1"; 30_000].join(",");
    let nested = vec!["[[[1]]]"; 8_000].join(",");
    let cases = [
        (
            "wrong_array_under_to",
            format!(r#"{{"type":"ping","to":[{ones}]}}"#),
        ),
        (
            "nested_arrays_under_to",
            format!(r#"{{"type":"ping","to":[{nested}]}}"#),
        ),
        (
            "same_under_ignored_key",
            format!(r#"{{"type":"ping","x":[{ones}]}}"#),
        ),
    ];
    let mut g = c.benchmark_group("decode_hostile");
    for (name, payload) in &cases {
        assert!(payload.len() < MAX, "{name}: {} bytes", payload.len());
        g.throughput(Throughput::Bytes(payload.len() as u64));
        g.bench_function(*name, |b| {
            b.iter(|| black_box(ClientFrame::from_payload(black_box(payload.as_bytes()))))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    decode,
    decode_hostile,
    encode_bench,
    encode_event_bench
);
criterion_main!(benches);
