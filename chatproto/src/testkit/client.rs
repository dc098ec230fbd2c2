//! The client core against a hostile or broken server: bytes from the
//! server through a [`FrameDecoder`] into a [`Client`], interleaved with
//! the client's own actions and timers, checked after every step.

use std::collections::{BTreeMap, BTreeSet};

use bytes::BytesMut;

use crate::{
    encode, Client, ClientEvent, ClientFrame, ClientOutput, Decoded, ErrorCode, FrameDecoder,
    Limits, PresenceStatus, RoomInfo, ServerFrame, CLIENT_MAX_ROSTER, DEFAULT_MAX_FRAME_BYTES,
    HEADER_LEN, MAX_NICK_LEN, MIN_MAX_FRAME_BYTES,
};

/// The client's nickname and the prefix of its ids.
const ME: &str = "alice";
const PREFIX: &str = "f-";
/// Room names the ops pick from (`Rust` is `rust` to the client; the
/// server may still spell it so).
const ROOMS: [&str; 5] = ["lobby", "rust", "Rust", "music", "#bad"];
/// Nicknames the ops pick from: ours in two cases, one that folds to
/// another key, one in two normalization forms, and one a character
/// longer than any nickname may be.
const NICKS: [&str; 8] = [
    "alice",
    "ALICE",
    "bob",
    "carol",
    "José",
    "Jose\u{301}",
    "Straße",
    "dave-is-one-character-too-long-xy",
];
const EPOCHS: [&str; 3] = ["e1", "e2", ""];
const ERRORS: [ErrorCode; 12] = [
    ErrorCode::NickTaken,
    ErrorCode::NickInvalid,
    ErrorCode::NotJoined,
    ErrorCode::RoomInvalid,
    ErrorCode::TooManyRooms,
    ErrorCode::Unavailable,
    ErrorCode::Duplicate,
    ErrorCode::MsgTooLarge,
    ErrorCode::UnknownNick,
    ErrorCode::NotInRoom,
    ErrorCode::AlreadyInRoom,
    ErrorCode::ResumedElsewhere,
];

/// A text of one of five sizes: two short ones, one that fits only the
/// larger decoder, one over it, and one over the default frame limit.
fn text(i: u8) -> String {
    match i % 5 {
        0 => "hi".to_owned(),
        1 => "hello".to_owned(),
        2 => "x".repeat(900),
        3 => "y".repeat(5_000),
        _ => "z".repeat(DEFAULT_MAX_FRAME_BYTES + 10),
    }
}

/// The bytes of the input, read from the front; past the end, zeros.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn next(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn arg(&mut self) -> u8 {
        self.next().unwrap_or(0)
    }

    /// The next `n` bytes (fewer at the end); `n == 0`: all that is left.
    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = if n == 0 {
            self.data.len()
        } else {
            n.min(self.data.len())
        };
        let (taken, rest) = self.data.split_at(n);
        self.data = rest;
        taken
    }
}

/// A shell around the client, as a real one would be, that checks
/// everything the client does.
struct Shell {
    client: Client,
    /// The chunk size server bytes arrive in.
    chunk: usize,
    decoder: FrameDecoder,
    buf: BytesMut,
    /// Whether a connection is open (from `handle_connected` until
    /// `handle_disconnected` or the client's `Dead`).
    connected: bool,
    /// Whether the client said `Joined` on this connection.
    joined_here: bool,
    /// The ids of the messages sent on this connection.
    sent_here: BTreeSet<String>,
    /// The monotonic clock.
    now: u64,
    /// Every room name (lowercased) the shell gave the client.
    asked: BTreeSet<String>,
    /// The ids `send_msg` returned, in order.
    sent: Vec<String>,
    /// Bytes of text and names handed to the client.
    client_bytes: usize,
    /// Bytes from the server.
    server_bytes: usize,
    /// Per room, the seq of the last message reported since the room was
    /// last entered (or the shell entered or parted it).
    last_seq: BTreeMap<String, u64>,
    /// Per room, its roster and roster version when last checked: the
    /// list may change only with the version.
    rosters: BTreeMap<String, (u64, Vec<String>)>,
}

impl Shell {
    fn new(max: usize, chunk: usize) -> Self {
        let rooms = ["lobby", "rust"];
        let mut shell = Shell {
            client: Client::new(ME, rooms, PREFIX),
            chunk,
            decoder: FrameDecoder::new(max),
            buf: BytesMut::new(),
            connected: false,
            joined_here: false,
            sent_here: BTreeSet::new(),
            now: 0,
            asked: rooms.iter().map(|r| r.to_string()).collect(),
            sent: Vec::new(),
            client_bytes: ME.len() + PREFIX.len(),
            server_bytes: 0,
            last_seq: BTreeMap::new(),
            rosters: BTreeMap::new(),
        };
        shell.connect();
        shell
    }

    fn connect(&mut self) {
        self.client.handle_connected(self.now);
        self.connected = true;
        self.joined_here = false;
        self.sent_here.clear();
        self.decoder = FrameDecoder::new(self.decoder.max_frame_bytes());
        self.buf.clear();
        self.drain();
    }

    fn disconnect(&mut self) {
        self.client.handle_disconnected();
        self.gone();
        self.drain();
    }

    /// The connection is over: what was read and not decoded goes with it.
    fn gone(&mut self) {
        self.connected = false;
        self.joined_here = false;
        self.buf.clear();
    }

    /// Bytes from the server, in the shell's chunks, each frame handed to
    /// the client as soon as it is whole.
    fn feed(&mut self, bytes: &[u8]) {
        if !self.connected {
            // No connection, no bytes.
            return;
        }
        self.server_bytes += bytes.len();
        let max = self.decoder.max_frame_bytes();
        for piece in bytes.chunks(self.chunk) {
            self.buf.extend_from_slice(piece);
            loop {
                match self.decoder.decode::<ServerFrame>(&mut self.buf) {
                    Decoded::Incomplete => break,
                    // A frame the shell cannot read is skipped: the framing
                    // is still in sync.
                    Decoded::Invalid(_) => {}
                    Decoded::Broken(_) => {
                        // The stream cannot be resynchronised: close it.
                        self.disconnect();
                        return;
                    }
                    Decoded::Frame(frame) => {
                        check_server_round_trip(&frame, max);
                        let pending = self.client.unacknowledged();
                        self.client.handle_frame(self.now, frame);
                        self.drain();
                        assert!(
                            self.client.unacknowledged() <= pending,
                            "a server frame added to the unacknowledged messages"
                        );
                    }
                }
                // The decoder may reserve one checked body; anything more is a leak.
                let bound = 2 * (max + HEADER_LEN + self.chunk);
                assert!(
                    self.buf.capacity() <= bound,
                    "read buffer grew to {}",
                    self.buf.capacity()
                );
            }
        }
    }

    /// Time passes to `now`; the timer runs.
    fn tick(&mut self, now: u64) {
        self.now = self.now.max(now);
        let due = self.client.poll_timeout().is_some_and(|at| at <= self.now);
        self.client.handle_timeout(self.now);
        let done = self.drain();
        if due {
            // Else a shell sleeping until `poll_timeout` wakes for ever.
            assert!(done > 0, "a deadline passed and the timer did nothing");
        } else {
            assert_eq!(done, 0, "the timer acted before its deadline");
        }
    }

    /// Drain the client, checking every output; returns how many.
    fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Some(out) = self.client.poll() {
            n += 1;
            match out {
                ClientOutput::Send(frame) => self.check_send(frame),
                ClientOutput::Event(e) => self.check_event(e),
            }
        }
        self.check_state();
        n
    }

    fn check_send(&mut self, frame: ClientFrame) {
        assert!(
            self.connected,
            "a frame to send with no connection: {frame:?}"
        );
        if !self.joined_here {
            assert!(
                matches!(
                    frame,
                    ClientFrame::Join { .. } | ClientFrame::Ping | ClientFrame::Pong
                ),
                "{frame:?} before the welcome"
            );
        }
        let wire = encode(&frame, u32::MAX as usize).expect("a client frame encodes");
        let payload = &wire[HEADER_LEN..];
        assert_eq!(
            ClientFrame::from_payload(payload),
            crate::parse_payload::<ClientFrame>(payload),
            "the plain-frame scanner agrees with serde"
        );
        let mut again = BytesMut::from(&wire[..]);
        let back = FrameDecoder::new(payload.len()).decode::<ClientFrame>(&mut again);
        assert_eq!(back, Decoded::Frame(frame.clone()), "round trip");
        let has = |room: &str| self.client.rooms().any(|r| r == room);
        // Parted while its messages wait: entered again on a new
        // connection to resend them (see `Client::part`).
        let parting = |room: &str| self.client.footprint().parting.contains(&room);
        let paced = self
            .client
            .limits()
            .is_some_and(|l| l.rate.is_some() || l.rate_bytes.is_some());
        match &frame {
            ClientFrame::Msg { id, room, .. } => {
                let id = id.as_deref().expect("the client's messages carry ids");
                assert!(self.client.is_unacknowledged(id), "{id} sent, not pending");
                // Else a server could have the client send its messages
                // again and again, a frame of its own bringing them all.
                assert!(
                    self.sent_here.insert(id.to_owned()),
                    "{id} sent twice on one connection"
                );
                let room = room.as_deref().unwrap_or(crate::LOBBY);
                assert!(self.asked.contains(room), "a message to #{room}");
                // The limit the server announced (as `encode` takes it), or
                // the protocol's default from a server that announced none.
                let limit = self.client.limits().map_or(DEFAULT_MAX_FRAME_BYTES, |l| {
                    usize::try_from(l.max_frame_bytes)
                        .unwrap_or(usize::MAX)
                        .clamp(MIN_MAX_FRAME_BYTES, crate::CLIENT_MAX_FRAME_BYTES)
                });
                assert!(
                    payload.len() <= limit,
                    "a message frame of {} bytes sent to a server that takes {limit}",
                    payload.len()
                );
            }
            // As the room stands when the frame goes; under a rate it may
            // have waited for the pacer (in order, as a slow network would
            // hold it), and the room changed meanwhile.
            ClientFrame::Enter { room, .. } if !paced => {
                assert!(has(room) || parting(room), "enter of #{room}, not ours")
            }
            ClientFrame::Part { room } if !paced => {
                assert!(!has(room), "part of #{room}, still ours")
            }
            ClientFrame::Join { nick, .. } => assert_eq!(nick, self.client.nick()),
            _ => {}
        }
    }

    fn check_event(&mut self, e: ClientEvent) {
        let has = |room: &str| self.client.rooms().any(|r| r == room);
        match e {
            ClientEvent::Joined { .. } => {
                assert!(self.connected && self.client.is_joined());
                self.joined_here = true;
            }
            ClientEvent::Refused { .. } => assert!(!self.client.is_joined()),
            ClientEvent::Entered { room, .. } => {
                assert!(has(&room), "entered #{room}, not ours");
                self.last_seq.remove(&room);
            }
            ClientEvent::Presence { room, .. } => assert!(has(&room), "presence in #{room}"),
            ClientEvent::Message {
                room, seq, mine, ..
            } => {
                if has(&room) {
                    let last = self.last_seq.entry(room.clone()).or_insert(0);
                    // Reported once: seqs rise (0 is never a message's).
                    assert!(seq > *last, "#{room}: message {seq} after {last}");
                    *last = seq;
                } else {
                    assert!(mine, "a message of #{room}, not ours, not mine");
                }
            }
            ClientEvent::History { events, .. } => {
                for e in events {
                    assert!(matches!(e, ClientEvent::Message { .. }), "{e:?} in a page");
                }
            }
            ClientEvent::Error { id: Some(id), .. } => {
                assert!(
                    !self.client.is_unacknowledged(&id),
                    "{id} refused, still pending"
                );
            }
            ClientEvent::Dead => {
                assert!(self.connected, "dead with no connection");
                self.gone();
            }
            _ => {}
        }
    }

    fn check_state(&mut self) {
        let fp = self.client.footprint();
        assert_eq!(fp.queued, 0, "outputs left after draining");
        let rooms: BTreeSet<&str> = self.client.rooms().collect();
        for r in rooms
            .iter()
            .chain(&fp.entering)
            .chain(&fp.held)
            .chain(&fp.parting)
        {
            assert!(self.asked.contains(*r), "#{r} held, never asked for");
        }
        for r in &fp.parting {
            assert!(!rooms.contains(r), "#{r} both ours and parting");
        }
        for r in &fp.held {
            assert!(
                rooms.contains(r) || fp.parting.contains(r),
                "#{r} held, neither ours nor parting"
            );
        }
        assert_eq!(
            self.client.poll_timeout().is_some(),
            self.connected,
            "a timer without a connection, or none with one"
        );
        for r in ROOMS {
            let version = self.client.roster_version(r);
            let roster: Vec<String> = self
                .client
                .roster(r)
                .into_iter()
                .map(str::to_owned)
                .collect();
            assert_eq!(
                version == 0,
                !rooms.contains(&*r.to_ascii_lowercase()),
                "#{r}'s roster version is 0 exactly when it is not ours"
            );
            if let Some((was, before)) =
                self.rosters.insert(r.to_owned(), (version, roster.clone()))
            {
                assert!(
                    version != was || roster == before,
                    "#{r}'s roster changed from {before:?} to {roster:?} under one version"
                );
            }
        }
        for r in &rooms {
            let roster = self.client.roster(r);
            assert!(
                roster.len() <= CLIENT_MAX_ROSTER,
                "#{r}'s roster is over its cap"
            );
            for n in roster {
                let chars = n.chars().count();
                assert!(
                    chars <= MAX_NICK_LEN,
                    "#{r}'s roster keeps a name of {chars} characters"
                );
            }
        }
        // Pending: sent by the shell, oldest first, none twice.
        let mut sent = self.sent.iter();
        for p in self.client.pending() {
            assert!(sent.any(|s| s == p.id), "{} pending out of order", p.id);
        }
        // Nothing the server says is kept more than a few times over
        // (case folding makes a key up to three times its name).
        let bound = 1024 + self.client_bytes + 8 * self.server_bytes;
        assert!(fp.bytes <= bound, "the client holds {} bytes", fp.bytes);
    }

    /// A server frame built from the next few bytes: valid in form,
    /// arbitrary in content.
    fn template(&self, input: &mut Input) -> ServerFrame {
        let (kind, a, b, c) = (input.arg(), input.arg(), input.arg(), input.arg());
        let room = |x: u8| ROOMS[x as usize % ROOMS.len()].to_owned();
        let v1_room = |x: u8| (x % 6 != 5).then(|| room(x));
        let nick = |x: u8| NICKS[x as usize % NICKS.len()].to_owned();
        let nicks = |bits: u8| -> Vec<String> {
            (0..8).filter(|i| bits & (1 << i) != 0).map(nick).collect()
        };
        // Seqs near 0 and near the top of u64.
        let seq = |x: u8| {
            if x & 0x80 != 0 {
                u64::MAX - u64::from(x & 0x7f)
            } else {
                u64::from(x)
            }
        };
        let id = |x: u8| match x % 4 {
            0 => None,
            3 => Some(format!("{PREFIX}999")),
            _ if self.sent.is_empty() => None,
            _ => Some(self.sent[x as usize / 4 % self.sent.len()].clone()),
        };
        match kind % 12 {
            0 => {
                let limits = match (a >> 4) % 4 {
                    0 => None,
                    1 => Some(0),
                    2 => Some(MIN_MAX_FRAME_BYTES as u64),
                    _ => Some(u64::MAX),
                };
                ServerFrame::welcome(
                    if a & 1 != 0 { nick(b) } else { ME.to_owned() },
                    seq(c),
                    nicks(b),
                    (a & 2 != 0).then(|| format!("tok{}", b % 3)),
                    (a & 4 != 0).then_some(a & 8 != 0),
                    // The rates as a server may say them: mostly none (so
                    // that most runs check each frame against the state
                    // when it goes, see `check_send`), else the slowest,
                    // ours, or past any clock; the byte allowance's burst
                    // below a frame or far above.
                    limits.map(|max| {
                        let rate = [0, 0, 0, 0, 0, 1, 50, u64::MAX][usize::from(c % 8)];
                        let burst = [1, 2, 100, u64::MAX][usize::from(c / 8 % 4)];
                        let rate_bytes = [0, 0, 0, 1, 65_536, u64::MAX][usize::from(c / 32 % 6)];
                        let burst_bytes = [0, 1_000, u64::MAX][usize::from(b % 3)];
                        Limits::new(max, 4, 50, 200)
                            .with_rate(rate, burst)
                            .with_byte_rate(rate_bytes, burst_bytes)
                    }),
                )
            }
            1 => ServerFrame::entered(
                room(a),
                EPOCHS[(a >> 4) as usize % EPOCHS.len()],
                seq(c),
                seq(c.wrapping_add(a >> 3)),
                nicks(b),
                a & 8 != 0,
            ),
            2 => ServerFrame::presence(
                v1_room(a),
                seq(c),
                nick(b),
                if a & 0x80 != 0 {
                    PresenceStatus::Offline
                } else {
                    PresenceStatus::Online
                },
                0,
            ),
            3 | 4 => {
                let frame = ServerFrame::msg(
                    v1_room(a),
                    seq(c),
                    nick(b),
                    if b & 0x80 != 0 { nicks(a) } else { Vec::new() },
                    text((b >> 3) % 4),
                    0,
                    id(a >> 3),
                );
                if kind & 0x80 != 0 {
                    frame.into_replay()
                } else {
                    frame
                }
            }
            5 => {
                let events = (0..a % 4)
                    .map(|i| {
                        let f = ServerFrame::msg(
                            Some(room(a)),
                            seq(c.wrapping_add(i)),
                            nick(b.wrapping_add(i)),
                            Vec::new(),
                            text(i),
                            0,
                            id(b.wrapping_add(i * 4)),
                        );
                        f.into_replay()
                    })
                    .collect();
                ServerFrame::history_from(room(a), events, b & 1 != 0, seq(c))
            }
            6 => ServerFrame::online(v1_room(a), nicks(b)),
            7 => ServerFrame::rooms(vec![RoomInfo::new(room(a), u64::from(b))]),
            8 | 9 => ServerFrame::error_v2(
                ERRORS[b as usize % ERRORS.len()],
                "no",
                id(a),
                (c & 1 != 0).then(|| room(c >> 1)),
                (c & 2 != 0).then_some(seq(a)),
            ),
            10 => ServerFrame::Ping,
            _ if a & 1 != 0 => ServerFrame::Pong,
            _ => ServerFrame::notice("going down"),
        }
    }
}

/// A frame the decoder made re-encodes within the limit it came in under
/// (the canonical form is the shortest) and decodes to the same frame.
fn check_server_round_trip(frame: &ServerFrame, max: usize) {
    let wire = encode(frame, max).expect("a decoded server frame re-encodes within its limit");
    let mut again = BytesMut::from(&wire[..]);
    let back = FrameDecoder::new(max).decode::<ServerFrame>(&mut again);
    assert_eq!(
        back,
        Decoded::Frame(frame.clone()),
        "server frame round trip"
    );
}

/// Drive a [`Client`] with server bytes and the client's own actions read
/// from `data`, and check what it does after every step: no panic; every
/// frame it sends encodes and decodes back to itself (both parsers
/// agreeing), only a `join`, `ping` or `pong` before its `welcome`, none
/// without a connection, a message within the limit the server announced
/// (the protocol's default if none), still unacknowledged and once per
/// connection, an `enter`
/// or `part` only of a room it is in or has left; every `entered`,
/// `presence` and message event is of one of its rooms (or its own echo),
/// messages reported once, in rising seq; a roster holds at most
/// [`CLIENT_MAX_ROSTER`] names, none longer than a nickname; a message
/// refused is no longer pending; nothing from the server adds a room or a
/// pending message, or grows what the client holds beyond a few times the
/// bytes it sent; a timer due does something and one not due does
/// nothing; and every server frame decoded re-encodes and decodes to
/// itself.
///
/// The first byte picks the decoder's limit (high bit: 8 KiB, else 1 KiB)
/// and how server bytes are cut into reads (as in [`check_decode`]); the
/// client starts connected. Then each op byte, by `op % 16`:
///
/// * 0-3: the next byte `n`, then `n` raw bytes from the server (`n` = 0:
///   all the rest);
/// * 4-6: a server frame built from the next four bytes (see the code);
/// * 7: `send_msg` (the next byte: bits 0-2 the room, 3-6 the text's
///   size, 15 the longest, 7 whether the byte after names recipients); 8: `enter`; 9: `part`; 10: `history`, `list_rooms`
///   or `join_as`;
/// * 11: a new connection; 12: the connection ends;
/// * 13: time passes (the next byte squared, times 8 ms); 14: to the
///   timer's deadline; 15: to near the end of the clock.
///
/// The `client` fuzz target and the corpus replay test both call this.
///
/// [`check_decode`]: super::check_decode
pub fn check_client_ops(data: &[u8]) {
    let mut input = Input { data };
    let Some(knob) = input.next() else {
        return;
    };
    let max = if knob & 0x80 != 0 {
        8 * MIN_MAX_FRAME_BYTES
    } else {
        MIN_MAX_FRAME_BYTES
    };
    let chunk = 1 + (knob as usize % 64) * (knob as usize % 7 + 1);
    let mut shell = Shell::new(max, chunk);
    while let Some(op) = input.next() {
        match op % 16 {
            0..=3 => {
                let n = input.arg() as usize;
                let bytes = input.take(n);
                shell.feed(bytes);
            }
            4..=6 => {
                let frame = shell.template(&mut input);
                // A frame over the decoder's limit breaks the stream, as
                // from a server with a larger one.
                let wire = encode(&frame, u32::MAX as usize).expect("a server frame encodes");
                shell.feed(&wire);
            }
            7 => {
                let (a, b) = (input.arg(), input.arg());
                let room = ROOMS[(a & 7) as usize % ROOMS.len()];
                let to: Vec<String> = if a & 0x80 != 0 {
                    (0..8)
                        .filter(|i| b & (1 << i) != 0)
                        .map(|i| NICKS[i].to_owned())
                        .collect()
                } else {
                    Vec::new()
                };
                // The longest (over the default limit) one time in 16:
                // it is slow to check, and one is enough.
                let size = (a >> 3) & 0xf;
                let text = text(if size == 0xf { 4 } else { size % 4 });
                shell.client_bytes +=
                    64 + room.len() + text.len() + to.iter().map(String::len).sum::<usize>();
                shell.asked.insert(room.to_ascii_lowercase());
                let id = shell.client.send_msg(room, to, text);
                assert!(id.starts_with(PREFIX) && !shell.sent.contains(&id));
                shell.sent.push(id);
                shell.drain();
            }
            8 | 9 => {
                let room = ROOMS[input.arg() as usize % ROOMS.len()];
                let lower = room.to_ascii_lowercase();
                shell.client_bytes += 2 * room.len();
                shell.last_seq.remove(&lower);
                if op % 16 == 8 {
                    shell.asked.insert(lower);
                    shell.client.enter(room);
                } else {
                    shell.client.part(room);
                }
                shell.drain();
            }
            10 => {
                let a = input.arg();
                let room = ROOMS[(a >> 2) as usize % ROOMS.len()];
                match a % 4 {
                    0 => shell.client.history(room, None, Some(3)),
                    1 => shell.client.history(room, Some(u64::from(a)), None),
                    2 => shell.client.list_rooms(),
                    _ => {
                        let nick = NICKS[(a >> 2) as usize % NICKS.len()];
                        shell.client_bytes += nick.len();
                        shell.client.join_as(nick);
                    }
                }
                shell.drain();
            }
            11 => shell.connect(),
            12 => shell.disconnect(),
            13 => {
                let a = u64::from(input.arg());
                shell.tick(shell.now.saturating_add(a * a * 8));
            }
            14 => {
                if let Some(at) = shell.client.poll_timeout() {
                    shell.tick(at);
                }
            }
            _ => {
                let a = u64::from(input.arg());
                shell.tick(u64::MAX - a * 1_000);
            }
        }
    }
}
