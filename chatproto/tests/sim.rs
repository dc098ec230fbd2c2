//! A seeded afternoon of chat: 20 client slots, a fake clock, random v1 and
//! v2 operations, driven straight through `Server` with the loop a shell
//! runs (`handle_*`, then `poll` until `None`, then sleep until
//! `poll_timeout`). The same seed must give the same bytes, and every
//! client must agree on what each (room, seq) is.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};
use chatproto::{
    encode, parse_payload, ClientFrame, ClientId, ErrorCode, FrameDecoder, Kick, Now, Output,
    Server, ServerConfig, ServerFrame,
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
const STEPS: usize = 4_000;
/// The wall clock at the start, unix milliseconds.
const WALL: u64 = 1_732_400_000_000;

/// Names clients ask for and send to: clashes, case variants, look-alikes,
/// invalid ones and names nobody holds.
const NAMES: [&str; 28] = [
    "ann", "ben", "cat", "dan", "eve", "fay", "gus", "hal", "ida", "jon", "kim", "lou", "max",
    "ned", "oli", "pam", "ray", "sue", "tom", "val", "ANN", "Ben", "b3n", "0li", "rnax", "no one",
    "zed", "",
];

/// Rooms clients name: three real ones, a case variant and a bad name.
const ROOMS: [&str; 5] = ["lobby", "rust", "ops", "Rust", "#ops"];

/// Message ids: few, so that sessions reuse them.
const IDS: [&str; 4] = ["a", "b", "c", ""];

/// What one run produced.
struct Run {
    /// Every output of the server in order: sends, deliveries, closes.
    transcript: Vec<u8>,
    /// The bytes each connection received, by connection.
    streams: BTreeMap<ClientId, Vec<u8>>,
}

/// What a connection has seen of each room (its epoch and the last seq),
/// as a client keeps it to re-enter with `since`.
#[derive(Debug, Clone, Default)]
struct View {
    rooms: BTreeMap<String, (String, u64)>,
}

/// A connection that ended after its welcome: what its client keeps to
/// come back.
#[derive(Debug, Clone)]
struct Departed {
    nick: String,
    token: String,
    view: View,
}

/// The shell: a server, its clocks, and what it wrote to whom.
struct Shell {
    server: Server,
    mono: u64,
    /// Added to `WALL + mono` for the wall clock: it can step, timers must not care.
    wall_offset: i64,
    slots: [Option<ClientId>; SLOTS],
    views: BTreeMap<ClientId, View>,
    /// The nick and token of every connection welcomed.
    joined: BTreeMap<ClientId, (String, String)>,
    /// Every connection that ended after its welcome.
    departed: Vec<Departed>,
    /// Who was sent a `ping` since the last drain.
    pinged: Vec<ClientId>,
    out: Run,
}

impl Shell {
    fn now(&self) -> Now {
        Now::new(
            self.mono,
            (WALL + self.mono).saturating_add_signed(self.wall_offset),
        )
    }

    /// Everything the server has to say, as a shell writes it out.
    fn drain(&mut self) {
        let max = self.server.config().max_frame_bytes;
        while let Some(output) = self.server.poll() {
            match output {
                Output::Send { to, frame, .. } => {
                    let bytes = encode(&frame, max).expect("the server's frames fit");
                    write(&mut self.out, to, &bytes);
                    let view = self.views.entry(to).or_default();
                    match frame {
                        ServerFrame::Ping => self.pinged.push(to),
                        ServerFrame::Welcome {
                            nick,
                            session: Some(token),
                            ..
                        } => {
                            self.joined.insert(to, (nick, token));
                        }
                        ServerFrame::Entered {
                            room, epoch, seq, ..
                        } => {
                            view.rooms.insert(room, (epoch, seq));
                        }
                        _ => {}
                    }
                }
                Output::Deliver {
                    event, to, with_id, ..
                } => {
                    // Encoded once, the same bytes for every recipient.
                    let bytes = encode(&event.wire(with_id, false), max).expect("events fit");
                    self.out
                        .transcript
                        .extend_from_slice(format!("{event:?} {with_id}\n").as_bytes());
                    for &c in to {
                        write(&mut self.out, c, &bytes);
                        if let Some((_, last)) =
                            self.views.entry(c).or_default().rooms.get_mut(&*event.room)
                        {
                            *last = event.seq;
                        }
                    }
                }
                Output::Close { client, code, .. } => {
                    self.out
                        .transcript
                        .extend_from_slice(format!("close {client} {code}\n").as_bytes());
                    self.ended(client);
                }
                Output::Forgotten { room, .. } => {
                    self.out
                        .transcript
                        .extend_from_slice(format!("forgotten {room}\n").as_bytes());
                }
                _ => panic!("an output this shell does not know"),
            }
        }
    }

    /// `client`'s connection ended: free its slot, and let its client
    /// remember how to come back.
    fn ended(&mut self, client: ClientId) {
        for slot in self.slots.iter_mut().filter(|s| **s == Some(client)) {
            *slot = None;
        }
        if let Some((nick, token)) = self.joined.get(&client).cloned() {
            let view = self.views.get(&client).cloned().unwrap_or_default();
            self.departed.push(Departed { nick, token, view });
        }
    }

    /// Sleep `ms`, waking at every deadline on the way.
    fn sleep(&mut self, ms: u64) {
        let until = self.mono + ms;
        while let Some(at) = self.server.poll_timeout() {
            if at > until {
                break;
            }
            self.mono = self.mono.max(at);
            self.server.handle_timeout(self.now());
            self.drain();
        }
        self.mono = until;
    }

    /// `frame` from `id`, through the codec as on a socket; then the drain
    /// that follows every input.
    fn frame(&mut self, id: ClientId, frame: ClientFrame) {
        let max = self.server.config().max_frame_bytes;
        let mut buf = BytesMut::from(&encode(&frame, max).unwrap()[..]);
        let frame = FrameDecoder::new(max).decode(&mut buf).frame().unwrap();
        self.server.handle_frame(self.now(), id, frame);
        self.drain();
    }
}

fn write(out: &mut Run, to: ClientId, bytes: &Bytes) {
    out.transcript.extend_from_slice(&to.0.to_be_bytes());
    out.transcript.extend_from_slice(bytes);
    out.streams.entry(to).or_default().extend_from_slice(bytes);
}

fn config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.join_timeout_ms = 3_000;
    config.idle_ping_ms = 8_000;
    config.pong_timeout_ms = 3_000;
    config.max_rooms_per_client = 2;
    config.resume_window_ms = 20_000;
    config.history_per_room = 64;
    config.replay_limit = 20;
    config.history_page = 10;
    // Low enough that a busy lobby sends presence only to its subject.
    config.presence_fanout_max = 10;
    config
}

fn run(seed: u64) -> Run {
    let mut rng = Rng(seed);
    let mut sh = Shell {
        server: Server::new(config(), [7; 32]),
        mono: 0,
        wall_offset: 0,
        slots: [None; SLOTS],
        views: BTreeMap::new(),
        joined: BTreeMap::new(),
        departed: Vec::new(),
        pinged: Vec::new(),
        out: Run {
            transcript: Vec::new(),
            streams: BTreeMap::new(),
        },
    };

    // The morning's announcements: every room gets a message, so that no
    // room is ever empty of history, removed, and created again with its
    // seq starting over (which would make (room, seq) ambiguous below).
    let host = sh.server.handle_connect(sh.now());
    sh.frame(
        host,
        ClientFrame::join_v2("host", vec!["lobby".into(), "rust".into()], None),
    );
    sh.frame(
        host,
        ClientFrame::msg_in("lobby", vec![], "good afternoon", None),
    );
    sh.frame(
        host,
        ClientFrame::msg_in("rust", vec![], "rust meetup at 5", None),
    );
    sh.frame(host, ClientFrame::part("rust"));
    sh.frame(host, ClientFrame::enter("ops", None));
    sh.frame(
        host,
        ClientFrame::msg_in("ops", vec![], "deploy freeze", None),
    );
    sh.server.handle_disconnect(sh.now(), host);
    sh.drain();
    sh.out
        .transcript
        .extend_from_slice(b"-- the afternoon begins\n");

    for step in 0..STEPS {
        if step == STEPS / 2 {
            // NTP steps the wall clock back an hour: only `ts` may notice.
            sh.wall_offset = -3_600_000;
        }
        let s = rng.below(SLOTS);
        let name = |rng: &mut Rng| NAMES[rng.below(NAMES.len())].to_string();
        let room = |rng: &mut Rng| ROOMS[rng.below(ROOMS.len())].to_string();
        let Some(id) = sh.slots[s] else {
            sh.slots[s] = Some(sh.server.handle_connect(sh.now()));
            sh.drain();
            continue;
        };
        // A client that has not joined mostly tries to; one that has, rarely.
        let kind = match (sh.joined.contains_key(&id), rng.below(30)) {
            (false, 0..=21) | (true, 0) => rng.below(6),
            _ => 6 + rng.below(20),
        };
        let frame = match kind {
            0..=2 => Some(ClientFrame::join(name(&mut rng))),
            3..=5 => match sh.departed.len() {
                // Come back as a connection that ended: resume its session
                // (if it ended in time and its nick is free), then re-enter
                // its rooms from the last seq it saw.
                n if n > 0 && rng.below(2) == 0 => {
                    let d = sh.departed[n - 1 - rng.below(n.min(8))].clone();
                    sh.frame(id, ClientFrame::join_v2(d.nick, vec![], Some(d.token)));
                    for (room, (epoch, seq)) in d.view.rooms {
                        sh.frame(id, ClientFrame::enter(room, Some((seq, epoch))));
                    }
                    None
                }
                _ => {
                    let rooms = (0..rng.below(4)).map(|_| room(&mut rng)).collect();
                    Some(ClientFrame::join_v2(name(&mut rng), rooms, None))
                }
            },
            6..=10 => {
                let n = rng.below(6).saturating_sub(2);
                let to = (0..n).map(|_| name(&mut rng)).collect();
                Some(ClientFrame::msg(to, format!("m{step} from slot {s}")))
            }
            11..=13 => {
                let to = (0..rng.below(3)).map(|_| name(&mut rng)).collect();
                let id = (rng.below(2) == 0).then(|| IDS[rng.below(IDS.len())].to_string());
                let text = format!("m{step} from slot {s}");
                Some(ClientFrame::msg_in(room(&mut rng), to, text, id))
            }
            14 => {
                let room = room(&mut rng);
                let since = match sh.views.get(&id).and_then(|v| v.rooms.get(&room)) {
                    Some((epoch, seq)) if rng.below(2) == 0 => Some((*seq, epoch.clone())),
                    _ => None,
                };
                Some(ClientFrame::enter(room, since))
            }
            15 => Some(ClientFrame::part(room(&mut rng))),
            16 => {
                let before = (rng.below(2) == 0).then(|| rng.below(200) as u64);
                let limit = (rng.below(2) == 0).then(|| rng.below(30) as u64);
                Some(ClientFrame::history(room(&mut rng), before, limit))
            }
            17 => Some(ClientFrame::Rooms),
            18 => Some(ClientFrame::Ping),
            19..=20 => Some(ClientFrame::Pong),
            21 => {
                sh.server.handle_disconnect(sh.now(), id);
                sh.ended(id);
                None
            }
            22 => {
                let e = parse_payload::<ClientFrame>(b"{\"type\":\"shout\"}").unwrap_err();
                sh.server.handle_bad_frame(sh.now(), id, &e);
                None
            }
            23 if rng.below(8) == 0 => {
                sh.server.kick(sh.now(), id, Kick::RateLimited);
                None
            }
            _ => {
                let ms = rng.below(1_500) as u64;
                sh.sleep(ms);
                // Most clients answer a ping at once; the rest time out.
                for id in std::mem::take(&mut sh.pinged) {
                    if rng.below(5) > 0 {
                        sh.frame(id, ClientFrame::Pong);
                    }
                }
                None
            }
        };
        if let Some(frame) = frame {
            sh.frame(id, frame);
        }
        sh.drain();
    }
    sh.out
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

/// What the checks saw, to show the run exercised the server.
#[derive(Default)]
struct Seen {
    errors: BTreeMap<&'static str, usize>,
    /// Every live copy of a (room, seq), by recipient count.
    copies: BTreeMap<(String, u64), usize>,
    resumed: usize,
    recovered: usize,
    replayed: usize,
    history_msgs: usize,
}

/// Check every stream of `run`: seq rises per room, a replay follows its
/// `entered` in order, only messages addressed to the client, and every
/// copy of a (room, seq) the same bytes.
fn check(run: &Run) -> Seen {
    let mut seen = Seen::default();
    // (room, seq, with the sender's id) -> the one payload every copy has.
    let mut by_seq: BTreeMap<(String, u64, bool), Bytes> = BTreeMap::new();
    for (&id, stream) in &run.streams {
        let mut me: Option<String> = None;
        let mut last: BTreeMap<String, u64> = BTreeMap::new();
        // The room whose `entered` came last, and its seq: a replay follows it.
        let mut entered: Option<(String, u64)> = None;
        let mut replay_last = 0;
        for (frame, payload) in frames(stream) {
            let addressed = |from: &str, to: &[String], me: &Option<String>| {
                let me = me.as_deref().expect("a message before welcome");
                to.is_empty()
                    || from.eq_ignore_ascii_case(me)
                    || to.iter().any(|n| n.eq_ignore_ascii_case(me))
            };
            let (room, seq, with_id) = match frame {
                ServerFrame::Welcome {
                    nick,
                    seq,
                    online,
                    resumed,
                    ..
                } => {
                    assert!(me.is_none(), "{id}: a second welcome");
                    me = Some(nick);
                    seen.resumed += usize::from(resumed == Some(true));
                    if !online.is_empty() {
                        last.insert("lobby".into(), seq);
                    }
                    continue;
                }
                ServerFrame::Entered {
                    room,
                    seq,
                    recovered,
                    ..
                } => {
                    assert!(seq >= last.get(&room).copied().unwrap_or(0));
                    last.insert(room.clone(), seq);
                    seen.recovered += usize::from(recovered);
                    entered = Some((room, seq));
                    replay_last = 0;
                    continue;
                }
                ServerFrame::Msg {
                    room,
                    seq,
                    from,
                    to,
                    id: msg_id,
                    replay: true,
                    ..
                } => {
                    // A replay: right after `entered`, older than it, in order.
                    let room = room.expect("a v2 server names the room");
                    let (r, at) = entered.as_ref().expect("a replay before entered");
                    assert_eq!(&room, r);
                    assert!(replay_last < seq && seq <= *at, "{id}: replay seq {seq}");
                    replay_last = seq;
                    assert!(addressed(&from, &to, &me), "{id}: replay of {to:?}");
                    assert!(msg_id.is_none() || me.as_deref() == Some(from.as_str()));
                    seen.replayed += 1;
                    continue;
                }
                ServerFrame::Msg {
                    room,
                    seq,
                    from,
                    to,
                    id: msg_id,
                    ..
                } => {
                    assert!(addressed(&from, &to, &me), "{id}: a message for {to:?}");
                    (
                        room.expect("a v2 server names the room"),
                        seq,
                        msg_id.is_some(),
                    )
                }
                ServerFrame::Presence { room, seq, .. } => {
                    (room.expect("a v2 server names the room"), seq, false)
                }
                ServerFrame::History { events, .. } => {
                    for e in events {
                        let ServerFrame::Msg {
                            from, to, replay, ..
                        } = e
                        else {
                            panic!("{id}: a history page holds {e:?}");
                        };
                        assert!(replay);
                        assert!(addressed(&from, &to, &me), "{id}: history of {to:?}");
                        seen.history_msgs += 1;
                    }
                    continue;
                }
                ServerFrame::Error { code, .. } => {
                    *seen.errors.entry(code.as_str()).or_default() += 1;
                    continue;
                }
                _ => continue,
            };
            entered = None;
            let l = last.entry(room.clone()).or_default();
            assert!(seq > *l, "{id}: seq {seq} after {l} in {room}");
            *l = seq;
            // One event, one encoding: every recipient got the same bytes.
            let first = by_seq
                .entry((room.clone(), seq, with_id))
                .or_insert_with(|| payload.clone());
            assert_eq!(
                *first, payload,
                "{room} seq {seq} differs between recipients"
            );
            *seen.copies.entry((room, seq)).or_default() += 1;
        }
    }
    seen
}

#[test]
fn every_client_agrees_on_what_each_seq_is() {
    let seen = check(&run(0xC0FFEE));
    // The scenario must actually exercise the server.
    let shared = seen.copies.values().filter(|&&n| n > 1).count();
    assert!(seen.copies.len() > 500, "only {} events", seen.copies.len());
    assert!(shared > 400, "only {shared} events seen by more than one");
    for room in ["lobby", "rust", "ops"] {
        let n = seen.copies.keys().filter(|(r, _)| r == room).count();
        assert!(n > 80, "only {n} events in {room}");
    }
    assert!(seen.resumed > 30, "{} resumed", seen.resumed);
    assert!(seen.recovered > 30, "{} recovered", seen.recovered);
    assert!(seen.replayed > 300, "{} replayed", seen.replayed);
    assert!(
        seen.history_msgs > 80,
        "{} in history pages",
        seen.history_msgs
    );
    for code in [
        ErrorCode::NickTaken,
        ErrorCode::NickInvalid,
        ErrorCode::NotJoined,
        ErrorCode::AlreadyJoined,
        ErrorCode::UnknownNick,
        ErrorCode::BadFrame,
        ErrorCode::Timeout,
        ErrorCode::RateLimited,
        ErrorCode::RoomInvalid,
        ErrorCode::NotInRoom,
        ErrorCode::AlreadyInRoom,
        ErrorCode::TooManyRooms,
        ErrorCode::Duplicate,
    ] {
        assert!(
            seen.errors.get(code.as_str()).copied().unwrap_or(0) > 0,
            "no {code} in {:?}",
            seen.errors
        );
    }
    let rooms: BTreeSet<&String> = seen.copies.keys().map(|(r, _)| r).collect();
    assert_eq!(rooms.len(), 3, "{rooms:?}");
}

#[test]
fn other_afternoons_keep_the_same_rules() {
    for seed in 1..=6 {
        check(&run(seed * 0x9E37_79B9));
    }
}
