//! A deterministic simulation harness for the [`Room`], and the invariant
//! checks the tests and fuzz targets share.
//!
//! [`Sim`] plays N fake clients against a real room with a fake clock. Every
//! byte the room emits is decoded the way a client would, and the harness
//! asserts as it goes that each client sees seq strictly increasing and only
//! messages addressed to it. Useful to embedders too: drive your own scenario
//! and inspect what each client received.

use bytes::BytesMut;

use crate::{
    encode, ClientFrame, ClientId, ErrorCode, Event, FrameDecoder, PresenceStatus, Room,
    RoomConfig, ServerFrame,
};

/// One fake client of a [`Sim`].
#[derive(Debug)]
pub struct SimClient {
    /// The handle the room gave it.
    pub id: ClientId,
    /// The nickname it joined as, once its `welcome` arrived.
    pub nick: Option<String>,
    /// Whether the connection is still open (closed by [`Sim::disconnect`] or by the room).
    pub open: bool,
    /// The error code the room closed it with, if it did.
    pub closed_with: Option<ErrorCode>,
    /// Every frame it received, in order.
    pub received: Vec<ServerFrame>,
    last_seq: u64,
    decoder: FrameDecoder,
    buf: BytesMut,
}

/// N fake clients, a fake clock and a real [`Room`].
#[derive(Debug)]
pub struct Sim {
    /// The room under test.
    pub room: Room,
    /// The fake clock, unix milliseconds.
    pub now: u64,
    /// The clients, indexed by the number [`Sim::connect`] returned.
    pub clients: Vec<SimClient>,
    /// Every event the room reported, in order.
    pub events: Vec<Event>,
}

impl Sim {
    /// A room with `config` and the clock at `now`.
    pub fn new(config: RoomConfig, now: u64) -> Self {
        Sim {
            room: Room::new(config),
            now,
            clients: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Open a new connection; returns its index.
    pub fn connect(&mut self) -> usize {
        let id = self.room.handle_connect(self.now);
        self.clients.push(SimClient {
            id,
            nick: None,
            open: true,
            closed_with: None,
            received: Vec::new(),
            last_seq: 0,
            decoder: FrameDecoder::new(self.room.config().max_frame_bytes),
            buf: BytesMut::new(),
        });
        self.clients.len() - 1
    }

    /// Client `i` sends `frame` (it goes through the codec, as on a socket).
    /// Ignored if the client is closed.
    pub fn send(&mut self, i: usize, frame: ClientFrame) {
        if !self.clients[i].open {
            return;
        }
        let max = self.room.config().max_frame_bytes;
        let wire = encode(&frame, max).expect("test frames fit");
        let mut buf = BytesMut::from(&wire[..]);
        let mut dec = FrameDecoder::new(max);
        let frame = dec
            .decode::<ClientFrame>(&mut buf)
            .expect("framing is valid")
            .expect("a whole frame")
            .expect("a valid payload");
        self.room.handle_frame(self.now, self.clients[i].id, frame);
        self.flush();
    }

    /// Client `i` sends raw payload bytes (after framing), as a misbehaving
    /// client would.
    pub fn send_payload(&mut self, i: usize, payload: &[u8]) {
        if !self.clients[i].open {
            return;
        }
        match crate::parse_payload::<ClientFrame>(payload) {
            Ok(frame) => self.room.handle_frame(self.now, self.clients[i].id, frame),
            Err(e) => self.room.handle_bad_frame(self.now, self.clients[i].id, &e),
        }
        self.flush();
    }

    /// Client `i` joins as `nick`.
    pub fn join(&mut self, i: usize, nick: &str) {
        self.send(i, ClientFrame::Join { nick: nick.into() });
    }

    /// Client `i` sends `text` to `to` (empty: everyone).
    pub fn msg(&mut self, i: usize, to: &[&str], text: &str) {
        let to = to.iter().map(|s| s.to_string()).collect();
        self.send(
            i,
            ClientFrame::Msg {
                to,
                text: text.into(),
            },
        );
    }

    /// Client `i`'s connection closes.
    pub fn disconnect(&mut self, i: usize) {
        if !self.clients[i].open {
            return;
        }
        self.clients[i].open = false;
        self.room.handle_disconnect(self.now, self.clients[i].id);
        self.flush();
    }

    /// Move the clock forward by `ms` and tick the room.
    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.room.handle_tick(self.now);
        self.flush();
    }

    /// Drain the room into the clients, checking each frame as it arrives.
    ///
    /// # Panics
    ///
    /// If the room breaks an invariant: bytes for a closed or unknown client,
    /// an undecodable frame, a seq that does not increase for a client, a
    /// message delivered to someone it was not addressed to.
    pub fn flush(&mut self) {
        while let Some(t) = self.room.poll_transmit() {
            let c = self
                .clients
                .iter_mut()
                .find(|c| c.id == t.to)
                .expect("transmit for a client the room never gave out");
            assert!(c.open, "transmit for closed client {}", t.to);
            c.buf.extend_from_slice(&t.bytes);
            while let Some(frame) = c
                .decoder
                .decode::<ServerFrame>(&mut c.buf)
                .expect("framing")
            {
                let frame = frame.expect("room sent an invalid payload");
                check_frame(c, &frame);
                c.received.push(frame);
            }
            assert!(c.buf.is_empty(), "transmit ended mid-frame");
        }
        while let Some(close) = self.room.poll_close() {
            let c = self
                .clients
                .iter_mut()
                .find(|c| c.id == close.client)
                .expect("close for an unknown client");
            c.open = false;
            c.closed_with = Some(close.code);
        }
        while let Some(e) = self.room.poll_event() {
            self.events.push(e);
        }
    }

    /// Take the frames client `i` has received since the last call.
    pub fn take(&mut self, i: usize) -> Vec<ServerFrame> {
        std::mem::take(&mut self.clients[i].received)
    }
}

fn check_frame(c: &mut SimClient, frame: &ServerFrame) {
    let seq = match frame {
        ServerFrame::Welcome { nick, seq, online } => {
            assert!(c.nick.is_none(), "second welcome");
            assert!(
                online.contains(nick) || online.len() > 1,
                "welcome lacks joiner"
            );
            c.nick = Some(nick.clone());
            assert!(*seq >= c.last_seq);
            c.last_seq = *seq;
            return;
        }
        ServerFrame::Presence { seq, .. } => *seq,
        ServerFrame::Msg { seq, from, to, .. } => {
            let me = c.nick.as_deref().expect("msg before welcome");
            let addressed =
                to.is_empty() || from == me || to.iter().any(|n| n.eq_ignore_ascii_case(me));
            assert!(addressed, "{me} received a message for {to:?}");
            *seq
        }
        _ => return,
    };
    assert!(
        seq > c.last_seq,
        "seq {seq} after {} for {}",
        c.last_seq,
        c.id
    );
    c.last_seq = seq;
}

/// Feed `data` to a [`FrameDecoder`] in chunks chosen by its first byte, and
/// check what it yields: no panic, no buffer grown past the limit plus one
/// chunk, and every frame re-encodes and decodes to the same frame.
///
/// The `decode` fuzz target and the corpus replay test both call this.
pub fn check_decode(data: &[u8]) {
    let Some((&knob, rest)) = data.split_first() else {
        return;
    };
    let max = crate::MIN_MAX_FRAME_BYTES;
    let chunk = 1 + (knob as usize % 64) * (knob as usize % 7 + 1);
    let mut dec = FrameDecoder::new(max);
    let mut buf = BytesMut::new();
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode::<ClientFrame>(&mut buf) {
                Ok(None) => break,
                Err(_) => {
                    assert!(
                        dec.decode::<ClientFrame>(&mut buf).is_err(),
                        "error is sticky"
                    );
                    return;
                }
                Ok(Some(Err(_))) => {}
                Ok(Some(Ok(frame))) => {
                    let wire = encode(&frame, max).expect("a decoded frame re-encodes");
                    let mut again = BytesMut::from(&wire[..]);
                    let back = FrameDecoder::new(max).decode::<ClientFrame>(&mut again);
                    assert_eq!(back, Ok(Some(Ok(frame))), "round trip");
                }
            }
            // The decoder may reserve one checked body; anything more is a leak.
            let bound = 2 * (max + crate::HEADER_LEN + chunk);
            assert!(buf.capacity() <= bound, "buffer grew to {}", buf.capacity());
        }
    }
}

/// Drive a room with operations read from `data` and check its invariants:
/// seq strictly increasing per client, unique nicknames, no delivery to a
/// non-recipient (all checked by [`Sim`]), and every `join` and `msg` from
/// an open client answered by exactly one reply (welcome or echo, or an
/// error).
///
/// The `room` fuzz target and the corpus replay test both call this.
pub fn check_room_ops(data: &[u8]) {
    const NICKS: [&str; 8] = [
        "alice", "Alice", "bob", "b0b", "carol", "dave", "bad nick", "",
    ];
    let mut sim = Sim::new(
        RoomConfig {
            max_frame_bytes: crate::MIN_MAX_FRAME_BYTES,
            join_timeout_ms: 1_000,
            idle_ping_ms: 2_000,
            pong_timeout_ms: 1_000,
            // Low enough that the fuzzer's recipient lists cross it.
            max_recipients: 4,
            ..RoomConfig::default()
        },
        1_000_000,
    );
    let mut ops = data.iter().copied();
    while let (Some(op), Some(arg)) = (ops.next(), ops.next()) {
        let n = sim.clients.len();
        let who = if n == 0 { 0 } else { arg as usize % n };
        match op % 8 {
            0 | 1 if n < 16 => {
                let i = sim.connect();
                if op % 8 == 1 {
                    expect_one_reply(&mut sim, i, |s| s.join(i, NICKS[arg as usize % 8]));
                }
            }
            2 if n > 0 => expect_one_reply(&mut sim, who, |s| {
                s.join(who, NICKS[(arg >> 4) as usize % 8])
            }),
            3 | 4 if n > 0 => {
                let mut to = Vec::new();
                for (bit, nick) in NICKS.iter().enumerate() {
                    if op & (1 << (bit % 3 + 3)) != 0 && arg & (1 << bit) != 0 {
                        to.push(*nick);
                    }
                }
                let long = "x".repeat(if op & 0x80 != 0 { 900 } else { 3 });
                expect_one_reply(&mut sim, who, |s| s.msg(who, &to, &long));
            }
            5 if n > 0 => sim.disconnect(who),
            6 => sim.advance(arg as u64 * 20),
            7 if n > 0 => match arg % 3 {
                0 => sim.send(who, ClientFrame::Pong),
                1 => sim.send(who, ClientFrame::Ping),
                _ => sim.send_payload(who, &data[..data.len().min(arg as usize)]),
            },
            _ => {}
        }
        check_unique_nicks(&sim.room);
    }
    for i in 0..sim.clients.len() {
        sim.disconnect(i);
    }
    assert_eq!(sim.room.connections(), 0);
    assert_eq!(sim.room.members(), 0);
}

/// Run `act` and check that client `i`, if open before, got exactly one
/// reply to it: a welcome, an echo of its own message, or an error.
fn expect_one_reply(sim: &mut Sim, i: usize, act: impl FnOnce(&mut Sim)) {
    let was_open = sim.clients[i].open;
    let before = sim.clients[i].received.len();
    act(sim);
    if !was_open {
        return;
    }
    let me = sim.clients[i].nick.clone();
    let replies = sim.clients[i].received[before..]
        .iter()
        .filter(|f| match f {
            ServerFrame::Welcome { .. } | ServerFrame::Error { .. } => true,
            ServerFrame::Msg { from, .. } => Some(from) == me.as_ref(),
            _ => false,
        })
        .count();
    assert_eq!(replies, 1, "client {i} got {replies} replies");
}

fn check_unique_nicks(room: &Room) {
    let mut keys: Vec<String> = room.online().map(crate::nick::nick_key).collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "duplicate nicknames online");
}

/// The presence statuses client `i` of `sim` saw, as (nick, status) pairs.
pub fn presences(sim: &Sim, i: usize) -> Vec<(String, PresenceStatus)> {
    sim.clients[i]
        .received
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Presence { nick, status, .. } => Some((nick.clone(), *status)),
            _ => None,
        })
        .collect()
}
