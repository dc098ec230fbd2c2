//! A seeded afternoon of chat: 20 clients, a fake clock, random operations.
//! The same seed must give the same bytes, and every client must agree on
//! the order of the messages it shares with any other.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};
use chatproto::{
    encode, parse_payload, ClientFrame, ClientId, ErrorCode, FrameDecoder, Room, RoomConfig,
    ServerFrame,
};

/// xorshift64: tiny, seeded, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SLOTS: usize = 20;
const STEPS: usize = 3_000;

/// Names clients ask for and send to: clashes, case variants, look-alikes,
/// invalid ones and names nobody holds.
const NAMES: [&str; 28] = [
    "ann", "ben", "cat", "dan", "eve", "fay", "gus", "hal", "ida", "jon", "kim", "lou", "max",
    "ned", "oli", "pam", "ray", "sue", "tom", "val", "ANN", "Ben", "b3n", "0li", "rnax", "no one",
    "zed", "",
];

/// What one run produced.
struct Run {
    /// Every output of the room in order: transmits, closes, events.
    transcript: Vec<u8>,
    /// The bytes each connection received, by connection.
    streams: BTreeMap<ClientId, Vec<u8>>,
    /// How often each error code was sent.
    errors: BTreeMap<String, usize>,
}

fn run(seed: u64) -> Run {
    let mut rng = Rng(seed);
    let mut config = RoomConfig::default();
    config.join_timeout_ms = 3_000;
    config.idle_ping_ms = 8_000;
    config.pong_timeout_ms = 3_000;
    let max = config.max_frame_bytes;
    let mut room = Room::new(config);
    let mut now: u64 = 1_732_400_000_000;
    let mut slots: [Option<ClientId>; SLOTS] = [None; SLOTS];
    let mut out = Run {
        transcript: Vec::new(),
        streams: BTreeMap::new(),
        errors: BTreeMap::new(),
    };

    for step in 0..STEPS {
        let s = rng.below(SLOTS);
        let name = |rng: &mut Rng| NAMES[rng.below(NAMES.len())].to_string();
        let frame = match (slots[s], rng.below(20)) {
            (None, _) => {
                slots[s] = Some(room.handle_connect(now));
                None
            }
            (Some(_), 0..=2) => Some(ClientFrame::Join {
                nick: name(&mut rng),
            }),
            (Some(_), 3..=11) => {
                let n = rng.below(4);
                let to = (0..n).map(|_| name(&mut rng)).collect();
                let text = format!("m{step} from slot {s}");
                Some(ClientFrame::Msg { to, text })
            }
            (Some(_), 12) => Some(ClientFrame::Ping),
            (Some(_), 13..=14) => Some(ClientFrame::Pong),
            (Some(id), 15) => {
                room.handle_disconnect(now, id);
                slots[s] = None;
                None
            }
            (Some(id), 16) => {
                let e = parse_payload::<ClientFrame>(b"{\"type\":\"shout\"}").unwrap_err();
                room.handle_bad_frame(now, id, &e);
                None
            }
            (Some(_), _) => {
                now += rng.below(1_500) as u64;
                room.handle_tick(now);
                None
            }
        };
        if let (Some(frame), Some(id)) = (frame, slots[s]) {
            // Through the codec, as on a socket.
            let mut buf = BytesMut::from(&encode(&frame, max).unwrap()[..]);
            let frame = FrameDecoder::new(max)
                .decode(&mut buf)
                .unwrap()
                .unwrap()
                .unwrap();
            room.handle_frame(now, id, frame);
        }
        drain(&mut room, &mut slots, &mut out);
    }
    out
}

fn drain(room: &mut Room, slots: &mut [Option<ClientId>], out: &mut Run) {
    while let Some(t) = room.poll_transmit() {
        out.transcript.extend_from_slice(&t.to.0.to_be_bytes());
        out.transcript.extend_from_slice(&t.bytes);
        out.streams
            .entry(t.to)
            .or_default()
            .extend_from_slice(&t.bytes);
    }
    while let Some(c) = room.poll_close() {
        out.transcript
            .extend_from_slice(format!("close {} {}\n", c.client, c.code).as_bytes());
        for slot in slots.iter_mut().filter(|s| **s == Some(c.client)) {
            *slot = None;
        }
    }
    while let Some(e) = room.poll_event() {
        out.transcript
            .extend_from_slice(format!("{e:?}\n").as_bytes());
    }
}

/// The frames of one connection's stream, with each frame's payload.
fn frames(stream: &[u8]) -> Vec<(ServerFrame, Bytes)> {
    let mut buf = BytesMut::from(stream);
    let mut dec = FrameDecoder::default();
    let mut out = Vec::new();
    while let Some(payload) = dec.decode_payload(&mut buf).expect("framing") {
        let frame = parse_payload(&payload).expect("valid payload");
        out.push((frame, payload));
    }
    assert!(buf.is_empty(), "a stream ended mid-frame");
    out
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let a = run(0x5EED);
    let b = run(0x5EED);
    assert!(a.transcript.len() > 100_000, "{}", a.transcript.len());
    assert!(a.transcript == b.transcript, "two runs of one seed differ");
    assert!(
        run(0x5EED + 1).transcript != a.transcript,
        "the seed matters"
    );
}

#[test]
fn every_client_agrees_on_the_order_it_shares() {
    let mut run = run(0xC0FFEE);
    let mut msgs: BTreeMap<ClientId, Vec<u64>> = BTreeMap::new();
    let mut by_seq: BTreeMap<u64, Bytes> = BTreeMap::new();
    for (&id, stream) in &run.streams {
        let mut last = 0;
        for (frame, payload) in frames(stream) {
            let seq = match frame {
                ServerFrame::Msg { seq, .. } => {
                    msgs.entry(id).or_default().push(seq);
                    seq
                }
                ServerFrame::Presence { seq, .. } => seq,
                ServerFrame::Welcome { seq, .. } => {
                    assert!(seq >= last);
                    last = seq;
                    continue;
                }
                ServerFrame::Error { code, .. } => {
                    *run.errors.entry(code.to_string()).or_default() += 1;
                    continue;
                }
                _ => continue,
            };
            assert!(seq > last, "{id}: seq {seq} after {last}");
            last = seq;
            // One event, one encoding: every recipient got the same bytes.
            let first = by_seq.entry(seq).or_insert_with(|| payload.clone());
            assert_eq!(*first, payload, "seq {seq} differs between recipients");
        }
    }
    let ids: Vec<&ClientId> = msgs.keys().collect();
    let mut shared = 0;
    for (n, a) in ids.iter().enumerate() {
        for b in &ids[n + 1..] {
            let (ma, mb) = (&msgs[*a], &msgs[*b]);
            let (sa, sb): (BTreeSet<_>, BTreeSet<_>) = (ma.iter().collect(), mb.iter().collect());
            let a_view: Vec<u64> = ma.iter().copied().filter(|s| sb.contains(s)).collect();
            let b_view: Vec<u64> = mb.iter().copied().filter(|s| sa.contains(s)).collect();
            assert_eq!(a_view, b_view, "{a} and {b} disagree");
            shared += a_view.len();
        }
    }
    // The scenario must actually exercise the room.
    assert!(by_seq.len() > 300, "only {} events", by_seq.len());
    assert!(shared > 1_000, "only {shared} shared deliveries");
    for code in [
        ErrorCode::NickTaken,
        ErrorCode::NickInvalid,
        ErrorCode::NotJoined,
        ErrorCode::AlreadyJoined,
        ErrorCode::UnknownNick,
        ErrorCode::BadFrame,
        ErrorCode::Timeout,
    ] {
        assert!(
            run.errors.get(code.as_str()).copied().unwrap_or(0) > 0,
            "no {code} in {:?}",
            run.errors
        );
    }
}
