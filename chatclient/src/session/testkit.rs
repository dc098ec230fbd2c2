//! Test helpers: a session driven with frames and lines, and what it did.

use chatproto::{ClientFrame, ErrorCode, PresenceStatus, ServerFrame};

use super::{Action, Session};
use crate::ledger::LineOutcome;
use crate::render::{render, Style};

/// What one batch of input made the session do: frames sent, lines
/// shown (rendered plain) and the other actions.
#[derive(Debug, Default)]
pub(super) struct Out {
    pub(super) sent: Vec<ClientFrame>,
    pub(super) lines: Vec<String>,
    pub(super) outcomes: Vec<LineOutcome>,
    pub(super) other: Vec<Action>,
}

pub(super) fn drain(s: &mut Session) -> Out {
    let mut out = Out::default();
    while let Some(a) = s.poll() {
        match a {
            Action::Send(f) => out.sent.push(f),
            Action::Print(l) => out.lines.push(render(&l, Style::default(), None)),
            Action::Outcome(o) => out.outcomes.push(o),
            other => out.other.push(other),
        }
    }
    out
}

pub(super) fn frame(s: &mut Session, f: ServerFrame) -> Out {
    s.handle_frame(0, f);
    drain(s)
}

/// The lines shown for `frames`, handled in order.
pub(super) fn lines_of(
    s: &mut Session,
    frames: impl IntoIterator<Item = ServerFrame>,
) -> Vec<String> {
    frames.into_iter().flat_map(|f| frame(s, f).lines).collect()
}

pub(super) fn line(s: &mut Session, l: &str) -> Out {
    s.handle_line(l);
    drain(s)
}

pub(super) fn welcome(nick: &str, resumed: bool) -> ServerFrame {
    ServerFrame::welcome(nick, 0, vec![], Some("token".into()), Some(resumed), None)
}

pub(super) fn entered(room: &str, seq: u64, online: &[&str], recovered: bool) -> ServerFrame {
    ServerFrame::entered(
        room,
        "e1",
        seq,
        1,
        online.iter().map(|n| n.to_string()).collect(),
        recovered,
    )
}

/// More of `room`'s online list, after its `entered`.
pub(super) fn online(room: &str, nicks: &[&str]) -> ServerFrame {
    ServerFrame::online(
        Some(room.into()),
        nicks.iter().map(|n| n.to_string()).collect(),
    )
}

pub(super) fn msg(room: &str, seq: u64, from: &str, to: &[&str], text: &str) -> ServerFrame {
    ServerFrame::msg(
        Some(room.into()),
        seq,
        from,
        to.iter().map(|n| n.to_string()).collect(),
        text,
        0,
        None,
    )
}

pub(super) fn replayed(mut f: ServerFrame, with_id: Option<&str>) -> ServerFrame {
    if let ServerFrame::Msg { id, replay, .. } = &mut f {
        *id = with_id.map(str::to_owned);
        *replay = true;
    }
    f
}

pub(super) fn echo(room: &str, seq: u64, from: &str, text: &str, id: &str) -> ServerFrame {
    let mut f = msg(room, seq, from, &[], text);
    if let ServerFrame::Msg { id: mine, .. } = &mut f {
        *mine = Some(id.into());
    }
    f
}

pub(super) fn presence(room: &str, seq: u64, nick: &str, online: bool) -> ServerFrame {
    ServerFrame::presence(
        Some(room.into()),
        seq,
        nick,
        if online {
            PresenceStatus::Online
        } else {
            PresenceStatus::Offline
        },
        0,
    )
}

/// An `error` naming `room` and no message id: how the server refuses an
/// enter (or a page).
pub(super) fn room_error(code: ErrorCode, message: &str, room: &str) -> ServerFrame {
    ServerFrame::error_v2(code, message, None, Some(room.into()), None)
}

pub(super) fn the_id(sent: &[ClientFrame]) -> String {
    match sent {
        [ClientFrame::Msg { id: Some(id), .. }] => id.clone(),
        other => panic!("expected one msg, sent {other:?}"),
    }
}

/// alice, welcomed on a first connection, to enter `rooms`.
pub(super) fn welcomed(rooms: &[&str]) -> Session {
    let rooms: Vec<String> = rooms.iter().map(|r| r.to_string()).collect();
    let mut s = Session::new("alice", &rooms, "t-", 65_536);
    s.handle_connected(0);
    drain(&mut s);
    frame(&mut s, welcome("alice", false));
    s
}

/// The connection lost, and a new one at `at` ms, alice's session
/// resumed.
pub(super) fn back(s: &mut Session, at: u64) {
    s.handle_disconnected();
    s.handle_connected(at);
    frame(s, welcome("alice", true));
}

/// alice, joined and in `rooms` (each entered at seq 0 with her own
/// presence at seq 1), every output drained.
/// Joined to #lobby (each line named by its room when `full_screen`, as
/// the full-screen client has them), bob's messages 30 to 39 shown.
pub(super) fn lobby_shown_30_to_39(full_screen: bool) -> Session {
    let mut s = joined(&["lobby"]);
    if full_screen {
        s.name_every_room();
    }
    for q in 30..=39 {
        frame(&mut s, msg("lobby", q, "bob", &[], &format!("m{q}")));
    }
    s
}

/// #lobby entered again in `epoch` up to `seq` (alice online).
fn entered_in(epoch: &str, seq: u64) -> ServerFrame {
    ServerFrame::entered("lobby", epoch, seq, 1, vec!["alice".into()], false)
}

/// Back in #lobby after a restart, its history begun anew as e2 (carol's
/// "in e2" at 1): the lines shown.
pub(super) fn begun_anew_as_e2(s: &mut Session) -> Vec<String> {
    back(s, 10);
    lines_of(
        s,
        [
            entered_in("e2", 1),
            replayed(msg("lobby", 1, "carol", &[], "in e2"), None),
            presence("lobby", 2, "alice", true),
        ],
    )
}

/// Back in #lobby after another restart, its history gone back to e1
/// (bob's "one", "two" at 2 and 3, then "three"): the lines shown.
pub(super) fn back_to_e1(s: &mut Session) -> Vec<String> {
    back(s, 20);
    lines_of(
        s,
        [
            entered_in("e1", 5),
            replayed(msg("lobby", 2, "bob", &[], "one"), None),
            replayed(msg("lobby", 3, "bob", &[], "two"), None),
            replayed(msg("lobby", 4, "bob", &[], "three"), None),
            presence("lobby", 6, "alice", true),
        ],
    )
}

pub(super) fn joined(rooms: &[&str]) -> Session {
    let mut s = welcomed(rooms);
    for r in rooms {
        frame(&mut s, entered(r, 0, &["alice"], false));
        frame(&mut s, presence(r, 1, "alice", true));
    }
    s
}
