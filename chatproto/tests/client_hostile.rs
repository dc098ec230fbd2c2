//! The client core against a broken or hostile server: what the `client`
//! fuzz target (`chatproto::testkit::check_client_ops`) found, and the
//! bounds set while writing it, each kept as a test that fails without its
//! fix.

mod common;
use common::sent_and_refused;

use chatproto::{
    Client, ClientEvent, ClientFrame, ClientOutput, ErrorCode, Limits, PresenceStatus, ServerFrame,
    CLIENT_MAX_FRAME_BYTES, CLIENT_MAX_ROSTER, DEFAULT_MAX_FRAME_BYTES, MAX_NICK_LEN,
    MIN_MAX_FRAME_BYTES,
};

/// A `welcome` that announces no limits (as a v1 server's).
fn welcome_without_limits(resumed: bool) -> ServerFrame {
    ServerFrame::welcome("alice", 0, vec![], Some("t".into()), Some(resumed), None)
}

/// A server whose `welcome` announces no limits takes the protocol's
/// default: a message longer than that is given up with `msg_too_large`
/// when sent, not handed to a shell that cannot encode it (it waited for
/// an echo for ever, and went again after every reconnect).
#[test]
fn a_message_over_the_default_limit_is_given_up_when_the_server_announced_none() {
    let mut c = Client::new("alice", ["lobby"], "a-");
    c.handle_connected(0);
    c.handle_frame(0, welcome_without_limits(false));
    while c.poll().is_some() {}
    let big = c.send_msg("lobby", vec![], "x".repeat(DEFAULT_MAX_FRAME_BYTES));
    c.send_msg("lobby", vec![], "fits");
    let (sent, refused) = sent_and_refused(&mut c);
    assert_eq!(sent, ["fits"]);
    assert_eq!(refused, [(ErrorCode::MsgTooLarge, Some(big.clone()))]);
    assert!(!c.is_unacknowledged(&big));
}

/// The same for a message written while offline, at the `welcome` of a
/// server that announces no limits.
#[test]
fn a_pending_message_over_the_default_limit_is_given_up_at_a_welcome_without_limits() {
    let mut c = Client::new("alice", ["lobby"], "a-");
    let big = c.send_msg("lobby", vec![], "x".repeat(DEFAULT_MAX_FRAME_BYTES));
    c.send_msg("lobby", vec![], "fits");
    c.handle_connected(0);
    c.handle_frame(0, welcome_without_limits(true));
    let (sent, refused) = sent_and_refused(&mut c);
    assert_eq!(sent, ["fits"]);
    assert_eq!(refused, [(ErrorCode::MsgTooLarge, Some(big.clone()))]);
    assert_eq!(c.unacknowledged(), 1);
}

/// alice, joined, in the lobby with bob.
fn in_lobby() -> Client {
    let mut c = Client::new("alice", ["lobby"], "a-");
    c.handle_connected(0);
    c.handle_frame(0, welcome_without_limits(false));
    let online = vec!["alice".to_owned(), "bob".to_owned()];
    c.handle_frame(0, ServerFrame::entered("lobby", "e1", 1, 1, online, false));
    while c.poll().is_some() {}
    c
}

fn presence(seq: u64, nick: &str, status: PresenceStatus) -> ServerFrame {
    ServerFrame::presence(Some("lobby".into()), seq, nick, status, 0)
}

/// A server naming ever more members of a room (in `online` frames, or
/// one `presence` after another) fills the roster up to
/// `CLIENT_MAX_ROSTER`, no further: it grew without end. Those kept
/// still leave, and another takes the place freed.
#[test]
fn a_roster_stops_at_its_cap() {
    let mut c = in_lobby();
    let names: Vec<String> = (0..CLIENT_MAX_ROSTER + 500)
        .map(|i| format!("n{i}"))
        .collect();
    for chunk in names.chunks(1_000) {
        c.handle_frame(0, ServerFrame::online(Some("lobby".into()), chunk.to_vec()));
    }
    assert_eq!(c.roster_len("lobby"), CLIENT_MAX_ROSTER);
    c.handle_frame(0, presence(2, "late", PresenceStatus::Online));
    assert_eq!(c.roster_len("lobby"), CLIENT_MAX_ROSTER);
    assert!(!c.roster("lobby").contains(&"late"));
    c.handle_frame(0, presence(3, "bob", PresenceStatus::Offline));
    assert_eq!(c.roster_len("lobby"), CLIENT_MAX_ROSTER - 1);
    c.handle_frame(0, presence(4, "later", PresenceStatus::Online));
    assert_eq!(c.roster_len("lobby"), CLIENT_MAX_ROSTER);
    assert!(c.roster("lobby").contains(&"later"));
}

/// A name longer than any nickname may be (`MAX_NICK_LEN` characters)
/// is not kept in a roster, however the server says it: each could be a
/// whole frame long.
#[test]
fn a_name_longer_than_a_nickname_is_not_kept_in_a_roster() {
    let long = "é".repeat(MAX_NICK_LEN + 1);
    let longest = "é".repeat(MAX_NICK_LEN);
    let mut c = Client::new("alice", ["lobby"], "a-");
    c.handle_connected(0);
    c.handle_frame(0, welcome_without_limits(false));
    let online = vec!["alice".to_owned(), long.clone()];
    c.handle_frame(0, ServerFrame::entered("lobby", "e1", 1, 1, online, false));
    c.handle_frame(
        0,
        ServerFrame::online(Some("lobby".into()), vec![long.clone()]),
    );
    c.handle_frame(0, presence(2, &long, PresenceStatus::Online));
    assert_eq!(c.roster("lobby"), ["alice"]);
    c.handle_frame(0, presence(3, &longest, PresenceStatus::Online));
    assert_eq!(c.roster("lobby"), ["alice", longest.as_str()]);
}

/// A second `welcome` on one connection (a broken server's) is ignored:
/// it entered every room and sent every message waiting once more, as many
/// times as it came, a few bytes from the server making the client send
/// all it had; and it took the session's token and limits from it.
#[test]
fn a_second_welcome_on_one_connection_is_ignored() {
    let mut c = in_lobby();
    c.handle_frame(0, presence(2, "alice", PresenceStatus::Online));
    c.send_msg("lobby", vec![], "x".repeat(10_000));
    while c.poll().is_some() {}
    for _ in 0..3 {
        let again =
            ServerFrame::welcome("alice", 0, vec![], Some("other".into()), Some(true), None);
        c.handle_frame(0, again);
        assert_eq!(c.poll(), None);
    }
    assert_eq!(c.unacknowledged(), 1);
    // The session is still the first welcome's.
    c.handle_disconnected();
    c.handle_connected(1);
    let join = c.poll();
    let resume = match &join {
        Some(ClientOutput::Send(ClientFrame::Join { resume, .. })) => resume.as_deref(),
        other => panic!("not a join: {other:?}"),
    };
    assert_eq!(resume, Some("t"));
}

/// A `welcome` while no join is outstanding (the connection is gone, and
/// the next not made yet) is not taken: it would enter every room and
/// send every waiting message again, for a connection that is gone.
#[test]
fn a_welcome_while_offline_is_not_taken() {
    let mut c = in_lobby();
    c.send_msg("lobby", vec![], "waiting");
    c.handle_disconnected();
    while c.poll().is_some() {}
    c.handle_frame(1, welcome_without_limits(true));
    let mut out = Vec::new();
    while let Some(o) = c.poll() {
        out.push(o);
    }
    assert!(
        !out.iter().any(|o| matches!(o, ClientOutput::Send(_))),
        "{out:?}"
    );
    assert_eq!(c.unacknowledged(), 1);
}

/// The frame limit a shell encodes and decodes with is the one the
/// server announced, within bounds: a hostile server announcing 4 GiB
/// (the docs said to decode with what it announced) would have a client
/// buffer that much for one frame; one announcing 0 could not be told a
/// thing. Before any `welcome`, the protocol's default.
#[test]
fn the_frame_limit_is_the_announced_one_within_bounds() {
    let welcome = |max: u64| {
        ServerFrame::welcome(
            "alice",
            0,
            vec![],
            Some("t".into()),
            Some(false),
            Some(Limits::new(max, 64, 500, 200)),
        )
    };
    for (announced, used) in [
        (u64::from(u32::MAX), CLIENT_MAX_FRAME_BYTES),
        (u64::MAX, CLIENT_MAX_FRAME_BYTES),
        (16_777_215, 16_777_215),
        (200_000, 200_000),
        (0, MIN_MAX_FRAME_BYTES),
    ] {
        let mut c = Client::new("alice", ["lobby"], "a-");
        assert_eq!(c.max_frame_bytes(), DEFAULT_MAX_FRAME_BYTES);
        c.handle_connected(0);
        c.handle_frame(0, welcome(announced));
        assert_eq!(c.max_frame_bytes(), used, "{announced} announced");
    }
}

/// What comes for a room while its `part` waits (here: during a fresh
/// session's replay, its message held) is kept to tell if it is entered
/// again, but not without bound: a server sending ever more, or ever
/// larger, frames for it is kept to the newest 512, and 4 MiB, and the
/// entering says there is a gap.
#[test]
fn a_room_being_parted_keeps_a_bounded_tail_of_its_events() {
    for (count, len, kept) in [(600, 10, 512), (5, 1_000_000, 4), (3, 10, 3)] {
        let mut c = Client::new("alice", ["lobby"], "a-");
        c.handle_connected(0);
        c.handle_frame(0, welcome_without_limits(false));
        let entered =
            |seq| ServerFrame::entered("lobby", "e1", seq, 1, vec!["alice".into()], false);
        c.handle_frame(0, entered(0));
        c.send_msg("lobby", vec![], "held");
        c.handle_disconnected();
        c.handle_connected(1);
        c.handle_frame(1, welcome_without_limits(false));
        c.handle_frame(1, entered(0));
        c.part("lobby");
        for seq in 1..=count {
            let text = "t".repeat(len);
            let m = ServerFrame::msg(Some("lobby".into()), seq, "bob", vec![], text, 1, None);
            c.handle_frame(1, m.into_replay());
        }
        while c.poll().is_some() {}
        c.enter("lobby");
        let mut told = Vec::new();
        let mut gap = None;
        while let Some(out) = c.poll() {
            match out {
                ClientOutput::Event(ClientEvent::Message { seq, .. }) => told.push(seq),
                ClientOutput::Event(ClientEvent::Entered { gap: g, .. }) => gap = Some(g),
                _ => {}
            }
        }
        assert_eq!(told.len(), kept, "{count} of {len} bytes");
        assert_eq!(told.last(), Some(&count), "the newest kept");
        assert_eq!(gap, Some(kept < count as usize), "{count} of {len} bytes");
    }
}

/// A room parted while its only message waited, that message then given
/// up at the next `welcome` (too large for the new server): the room is
/// not entered again (it would never be parted, nothing left to answer).
#[test]
fn a_parted_room_whose_message_is_given_up_is_not_entered_again() {
    let mut c = Client::new("alice", ["lobby", "rust"], "a-");
    c.handle_connected(0);
    c.handle_frame(0, welcome_without_limits(false));
    c.send_msg("rust", vec![], "x".repeat(5_000));
    c.part("rust");
    c.handle_disconnected();
    while c.poll().is_some() {}
    c.handle_connected(1);
    let small = Limits::new(1_024, 64, 500, 200);
    c.handle_frame(
        1,
        ServerFrame::welcome(
            "alice",
            0,
            vec![],
            Some("t".into()),
            Some(true),
            Some(small),
        ),
    );
    let mut entered = Vec::new();
    let mut refused = Vec::new();
    while let Some(out) = c.poll() {
        match out {
            ClientOutput::Send(ClientFrame::Enter { room, .. }) => entered.push(room),
            ClientOutput::Event(ClientEvent::Error { code, .. }) => refused.push(code),
            _ => {}
        }
    }
    assert_eq!(refused, [ErrorCode::MsgTooLarge]);
    assert_eq!(entered, ["lobby"]);
    assert_eq!(c.unacknowledged(), 0);
}
