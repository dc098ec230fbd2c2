//! Server frames built from the input: valid in form, arbitrary in
//! content (rooms, nicknames, seqs near both ends, ids the client sent or
//! not, limits a server may announce).

use super::{text, Input, Shell, ME, NICKS, PREFIX, ROOMS};
use crate::{ErrorCode, Limits, PresenceStatus, RoomInfo, ServerFrame, MIN_MAX_FRAME_BYTES};

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

impl Shell {
    /// A server frame built from the next few bytes: valid in form,
    /// arbitrary in content.
    pub(super) fn template(&self, input: &mut Input) -> ServerFrame {
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
