//! The client core against a hostile or broken server: bytes from the
//! server through a [`FrameDecoder`] into a [`Client`], interleaved with
//! the client's own actions and timers, checked after every step.
//!
//! This file holds the ops read from the input and the shell's state;
//! the shell's connection, bytes and timer are in `shell`, what it checks
//! of everything the client does in `checks`, and the server frames
//! built from the input in `template`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::BytesMut;

use crate::{encode, Client, FrameDecoder, DEFAULT_MAX_FRAME_BYTES, MIN_MAX_FRAME_BYTES};

mod checks;
mod shell;
mod template;

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
/// [`CLIENT_MAX_ROSTER`]: crate::CLIENT_MAX_ROSTER
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
