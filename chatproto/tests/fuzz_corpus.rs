//! Replays the committed fuzz seed corpus through the same checks the fuzz
//! targets run, so a regression input added to `fuzz/corpus/<target>/`
//! fails an ordinary `cargo test`, no nightly or cargo-fuzz needed.

use std::fs;
use std::path::PathBuf;

use chatproto::testkit::{check_client_ops, check_decode, check_room_ops};
use chatproto::{encode, ErrorCode, Limits, PresenceStatus, ServerFrame};

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

#[test]
fn client_corpus_replays_clean() {
    let n = replay("client", check_client_ops);
    assert!(n > 0, "no files in fuzz/corpus/client");
}

/// An input for `check_client_ops`: its ops, written one by one.
struct Ops(Vec<u8>);

impl Ops {
    /// Reads of 1 + (knob % 64) * (knob % 7 + 1) bytes, a 1 KiB decoder
    /// (8 KiB with the high bit).
    fn new(knob: u8) -> Self {
        Ops(vec![knob])
    }

    /// The server sends `frame`, as raw bytes (op 0) in pieces of at most 255.
    fn frame(self, frame: ServerFrame) -> Self {
        let wire = encode(&frame, 1 << 20).expect("a seed frame encodes");
        self.bytes(&wire)
    }

    /// The server sends `bytes` (op 0, in pieces of at most 255).
    fn bytes(mut self, bytes: &[u8]) -> Self {
        for piece in bytes.chunks(255) {
            self.0.push(0);
            self.0.push(piece.len() as u8);
            self.0.extend_from_slice(piece);
        }
        self
    }

    /// The client sends a message in room `room` (an index: lobby, rust,
    /// Rust, music, #bad) of text `text` (hi, hello, then longer ones).
    fn send(self, room: u8, text: u8) -> Self {
        self.op(SEND, &[room | text << 3, 0])
    }

    /// Any other op and its argument bytes.
    fn op(mut self, op: u8, args: &[u8]) -> Self {
        self.0.push(op);
        self.0.extend_from_slice(args);
        self
    }
}

const SEND: u8 = 7;
const ENTER: u8 = 8;
const PART: u8 = 9;
const ASK: u8 = 10;
const CONNECT: u8 = 11;
const DISCONNECT: u8 = 12;
const TICK: u8 = 13;
const DEADLINE: u8 = 14;

fn welcome(resumed: bool, max_frame_bytes: u64) -> ServerFrame {
    let limits = Limits::new(max_frame_bytes, 64, 500, 200).with_presence_fanout_max(1000);
    ServerFrame::welcome(
        "alice",
        0,
        vec![],
        Some("tok".into()),
        Some(resumed),
        Some(limits),
    )
}

fn entered(room: &str, seq: u64, online: &[&str], recovered: bool) -> ServerFrame {
    let online = online.iter().map(|n| n.to_string()).collect();
    ServerFrame::entered(room, "e1", seq, 1, online, recovered)
}

fn msg(room: &str, seq: u64, from: &str, text: &str, id: Option<&str>) -> ServerFrame {
    ServerFrame::msg(
        Some(room.into()),
        seq,
        from,
        vec![],
        text,
        1_732_400_000_000,
        id.map(Into::into),
    )
}

fn presence(room: &str, seq: u64, nick: &str, status: PresenceStatus) -> ServerFrame {
    ServerFrame::presence(Some(room.into()), seq, nick, status, 1_732_400_000_000)
}

/// The seeds of fuzz/corpus/client, by name: small valid sessions, each
/// reaching a part of the client core the fuzzer then varies.
fn client_seeds() -> Vec<(&'static str, Ops)> {
    use PresenceStatus::{Offline, Online};
    let joined = |knob| {
        Ops::new(knob)
            .frame(welcome(false, 65_536))
            .frame(entered("lobby", 4, &["bob", "alice"], false))
            .frame(presence("lobby", 5, "alice", Online))
            .frame(entered("rust", 0, &["alice"], false))
            .frame(presence("rust", 1, "alice", Online))
    };
    vec![
        (
            "chat-and-echo",
            joined(0x3f)
                .frame(msg("lobby", 6, "bob", "hi alice", None))
                .send(0, 0)
                .frame(msg("lobby", 7, "alice", "hi", Some("f-1")))
                .frame(presence("rust", 2, "carol", Online))
                .frame(presence("rust", 3, "carol", Offline))
                .frame(ServerFrame::Ping),
        ),
        (
            "one-byte-reads",
            joined(0x00).frame(msg("lobby", 6, "Bob", "one byte at a time", None)),
        ),
        (
            "resume-after-drop",
            joined(0x15)
                .send(1, 0)
                .op(DISCONNECT, &[])
                .send(1, 1)
                .op(CONNECT, &[])
                .frame(welcome(true, 65_536))
                .frame(entered("rust", 3, &["alice", "bob"], true))
                .frame(msg("rust", 2, "alice", "hi", Some("f-1")).into_replay())
                .frame(msg("rust", 3, "bob", "missed", None).into_replay())
                .frame(presence("rust", 4, "alice", Online))
                .frame(entered("lobby", 5, &["alice"], true))
                .frame(presence("lobby", 6, "alice", Online))
                .frame(msg("rust", 5, "alice", "hello", Some("f-2"))),
        ),
        (
            "fresh-session-held-until-replay",
            joined(0x27)
                .send(1, 0)
                .op(DISCONNECT, &[])
                .op(CONNECT, &[])
                .frame(welcome(false, 65_536))
                .frame(entered("rust", 7, &["alice"], false))
                .frame(msg("rust", 2, "alice", "hi", None).into_replay())
                .frame(presence("rust", 8, "alice", Online)),
        ),
        (
            "refused-then-join-as",
            Ops::new(0x3f)
                .frame(ServerFrame::error(ErrorCode::NickTaken, "taken"))
                .op(ASK, &[3 | 2 << 2])
                .frame(ServerFrame::welcome(
                    "bob",
                    0,
                    vec![],
                    Some("t".into()),
                    Some(false),
                    None,
                ))
                .frame(entered("lobby", 0, &["bob"], false)),
        ),
        (
            "ping-then-dead",
            joined(0x3f)
                .op(TICK, &[80])
                .op(DEADLINE, &[])
                .op(CONNECT, &[]),
        ),
        (
            "history-page",
            joined(0x3f)
                .op(ASK, &[1 << 2])
                .frame(ServerFrame::history_from(
                    "rust",
                    vec![
                        msg("rust", 1, "bob", "old", None).into_replay(),
                        msg("rust", 2, "carol", "older", None).into_replay(),
                    ],
                    true,
                    1,
                )),
        ),
        (
            "refusals",
            joined(0x3f)
                .op(ENTER, &[3])
                .frame(ServerFrame::error_v2(
                    ErrorCode::RoomInvalid,
                    "no",
                    None,
                    Some("music".into()),
                    None,
                ))
                .send(1, 0)
                .frame(ServerFrame::error_v2(
                    ErrorCode::Duplicate,
                    "sent",
                    Some("f-1".into()),
                    Some("rust".into()),
                    Some(2),
                ))
                .op(PART, &[1])
                .op(CONNECT, &[])
                .frame(welcome(true, 1024))
                .send(0, 3),
        ),
        (
            "online-continuation",
            joined(0x3f)
                .op(ENTER, &[3])
                .frame(entered("music", 9, &["alice", "bob"], false))
                .frame(ServerFrame::online(
                    Some("music".into()),
                    vec!["carol".into(), "dave".into()],
                ))
                .frame(presence("music", 10, "alice", Online)),
        ),
        (
            "zero-length-frame",
            joined(0x3f)
                .bytes(&[0, 0, 0, 0])
                .op(CONNECT, &[])
                .frame(welcome(true, 65_536)),
        ),
    ]
}

/// The committed client seeds are what [`client_seeds`] makes (with
/// `CHATPROTO_WRITE_SEEDS=1`, it writes them), and each runs clean.
#[test]
fn client_seeds_are_their_recipes() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/client");
    let write = std::env::var_os("CHATPROTO_WRITE_SEEDS").is_some();
    for (name, Ops(bytes)) in client_seeds() {
        check_client_ops(&bytes);
        let path = dir.join(name);
        if write {
            fs::create_dir_all(&dir).expect("corpus directory");
            fs::write(&path, &bytes).expect("seed written");
        }
        let committed = fs::read(&path).unwrap_or_default();
        assert!(committed == bytes, "{} is not its recipe's", path.display());
    }
}
