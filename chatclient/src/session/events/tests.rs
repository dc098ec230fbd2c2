//! The tests of `events.rs` (and `events/history.rs`).

use super::*;
use crate::session::testkit::*;
use chatproto::{ClientFrame, ErrorCode, ServerFrame};

/// A big room's online list comes in parts (`entered`, then `online`
/// frames): the line entering it counts the whole list and names its
/// first people in the server's order, once the list is whole.
#[test]
fn entering_a_big_room_counts_its_whole_list() {
    let mut s = joined(&["lobby"]);
    line(&mut s, "/join big");
    let part = |from: usize, to: usize| -> Vec<String> {
        (from..to).map(|i| format!("p{i:02}")).collect()
    };
    let mut shown = lines_of(
        &mut s,
        [
            entered("big", 0, &["alice"], false),
            ServerFrame::online(Some("big".into()), part(1, 4)),
            ServerFrame::online(Some("big".into()), part(4, 25)),
        ],
    );
    assert_eq!(shown, [""; 0], "the list is not whole yet");
    shown = lines_of(&mut s, [presence("big", 1, "alice", true)]);
    assert_eq!(
        shown,
        [
            "* entered #big; 25 online: alice, p01, p02, p03, p04, p05, p06, p07, p08, \
             p09 and 15 more",
            "* alice is online"
        ]
    );
}

#[test]
fn the_first_join_shows_the_lobby_as_v1_did() {
    let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
    assert_eq!(s.prompt(), "alice #lobby> ");
    s.handle_connected(0);
    let out = drain(&mut s);
    assert!(matches!(&out.sent[..], [ClientFrame::Join { .. }]));
    let out = frame(&mut s, welcome("alice", false));
    assert_eq!(out.lines, ["* joined as alice; /help lists the commands"]);
    assert_eq!(out.other, [Action::Joined]);
    assert_eq!(out.sent, [ClientFrame::enter("lobby", None)]);
    // Said once the list is whole: before the replay.
    let out = frame(&mut s, entered("lobby", 3, &["bob", "alice"], false));
    assert_eq!(out.lines, [""; 0]);
    // The replay on a first enter is the room's recent history.
    let out = frame(
        &mut s,
        replayed(msg("lobby", 2, "bob", &[], "earlier"), None),
    );
    assert_eq!(
        out.lines,
        [
            "* entered #lobby; 2 online: alice, bob",
            "[history] bob: earlier"
        ]
    );
    let shown = lines_of(
        &mut s,
        [
            presence("lobby", 4, "alice", true),
            msg("lobby", 5, "bob", &[], "hello"),
            msg("lobby", 6, "bob", &["alice"], "psst"),
            msg("lobby", 7, "carol", &["alice", "bob"], "both"),
            presence("lobby", 8, "bob", false),
            ServerFrame::notice("going down"),
        ],
    );
    assert_eq!(
        shown,
        [
            "* alice is online",
            "bob: hello",
            "bob -> alice: psst",
            "carol -> alice, bob: both",
            "* bob left",
            "* server: going down",
        ]
    );
    let out = line(&mut s, "/who");
    assert_eq!(out.lines, ["* online (1): alice"]);
}

#[test]
fn history_pages_back_from_the_oldest_message_shown() {
    let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
    s.handle_connected(0);
    frame(&mut s, welcome("alice", false));
    frame(&mut s, entered("lobby", 6, &["alice"], false));
    for seq in [5, 6] {
        let m = msg("lobby", seq, "bob", &[], &format!("m{seq}"));
        frame(&mut s, replayed(m, None));
    }
    frame(&mut s, presence("lobby", 7, "alice", true));
    let out = line(&mut s, "/history 2");
    assert_eq!(out.sent, [ClientFrame::history("lobby", Some(5), Some(2))]);
    let page = |seqs: &[u64], more: bool| {
        ServerFrame::history(
            "lobby",
            seqs.iter()
                .map(|&q| replayed(msg("lobby", q, "bob", &[], &format!("m{q}")), None))
                .collect(),
            more,
        )
    };
    let out = frame(&mut s, page(&[3, 4], true));
    assert_eq!(
        out.lines,
        [
            "[history] bob: m3",
            "[history] bob: m4",
            "* 2 older messages of #lobby; /history shows more"
        ]
    );
    let out = line(&mut s, "/history");
    assert_eq!(
        out.sent,
        [ClientFrame::history(
            "lobby",
            Some(3),
            Some(crate::input::HISTORY_DEFAULT)
        )]
    );
    let out = frame(&mut s, page(&[1], false));
    assert_eq!(
        out.lines,
        [
            "[history] bob: m1",
            "* 1 older message of #lobby (3 fetched so far); that is all"
        ]
    );
    line(&mut s, "/history");
    assert_eq!(
        frame(&mut s, page(&[], false)).lines,
        ["* no older messages in #lobby"]
    );
}

/// A `/history` given up (an error naming the room, with a code a
/// page is not refused with: it may have been the refusal, or not)
/// and asked again: a history page names no request, so the late page
/// of the first was taken for the answer to the second, and the
/// second's page then for an answer too, saying a second note (and
/// showing its messages twice once the room has more than are kept
/// to tell). One page is shown, and the next `/history` pages on
/// from it.
#[test]
fn a_page_given_up_and_asked_again_is_shown_once() {
    let mut s = lobby_shown_30_to_39(false);
    let out = line(&mut s, "/history 5");
    assert_eq!(out.sent, [ClientFrame::history("lobby", Some(30), Some(5))]);
    frame(&mut s, room_error(ErrorCode::Unavailable, "busy", "lobby"));
    let out = line(&mut s, "/history 5");
    assert_eq!(out.sent, [ClientFrame::history("lobby", Some(30), Some(5))]);
    let page = || {
        let msgs = (25..=29)
            .map(|q| replayed(msg("lobby", q, "bob", &[], &format!("m{q}")), None))
            .collect();
        ServerFrame::history("lobby", msgs, true)
    };
    assert_eq!(
        frame(&mut s, page()).lines,
        [
            "[history] bob: m25",
            "[history] bob: m26",
            "[history] bob: m27",
            "[history] bob: m28",
            "[history] bob: m29",
            "* 5 older messages of #lobby; /history shows more"
        ]
    );
    assert_eq!(frame(&mut s, page()).lines, [""; 0], "answered already");
    let out = line(&mut s, "/history 5");
    assert_eq!(out.sent, [ClientFrame::history("lobby", Some(25), Some(5))]);
}

/// A page that answers no `/history` asked (none was, or the room was
/// left while it came) was shown as if asked.
#[test]
fn a_page_nobody_waits_for_is_not_shown() {
    let mut s = joined(&["lobby", "rust"]);
    let m3 = || replayed(msg("rust", 3, "bob", &[], "m3"), None);
    let shown = frame(&mut s, ServerFrame::history("rust", vec![m3()], false)).lines;
    assert_eq!(shown, [""; 0], "not asked");
    line(&mut s, "/join rust");
    let out = line(&mut s, "/history 5");
    assert_eq!(out.sent, [ClientFrame::history("rust", None, Some(5))]);
    line(&mut s, "/part rust");
    let shown = frame(&mut s, ServerFrame::history("rust", vec![m3()], false)).lines;
    assert_eq!(shown, [""; 0], "asked, and the room left");
}

/// `/clear` in the full-screen client empties the room's view, so the
/// next `/history` shows the newest messages again, not only older
/// ones; the line mode, which clears nothing, says so and pages on.
#[test]
fn clear_on_the_full_screen_makes_history_start_from_the_newest_again() {
    for full_screen in [true, false] {
        let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
        if full_screen {
            s.name_every_room();
        }
        s.handle_connected(0);
        frame(&mut s, welcome("alice", false));
        frame(&mut s, entered("lobby", 6, &["alice"], false));
        frame(&mut s, replayed(msg("lobby", 6, "bob", &[], "m6"), None));
        frame(&mut s, presence("lobby", 7, "alice", true));
        let out = line(&mut s, "/clear");
        assert_eq!(out.lines.is_empty(), full_screen, "{:?}", out.lines);
        let before = (!full_screen).then_some(6);
        let out = line(&mut s, "/history 2");
        assert_eq!(out.sent, [ClientFrame::history("lobby", before, Some(2))]);
        if full_screen {
            // What was cleared is shown again.
            let m6 = replayed(msg("lobby", 6, "bob", &[], "m6"), None);
            let out = frame(&mut s, ServerFrame::history("lobby", vec![m6], false));
            assert!(
                out.lines[0].ends_with("[history] bob: m6"),
                "{:?}",
                out.lines
            );
        }
    }
}

#[test]
fn an_empty_page_that_stopped_short_pages_on_from_where_it_says() {
    let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
    s.handle_connected(0);
    frame(&mut s, welcome("alice", false));
    frame(&mut s, entered("lobby", 900, &["alice"], false));
    frame(&mut s, presence("lobby", 901, "alice", true));
    let out = line(&mut s, "/history 5");
    assert_eq!(out.sent, [ClientFrame::history("lobby", None, Some(5))]);
    // The server looked at its bound of messages to others.
    let out = frame(
        &mut s,
        ServerFrame::history_from("lobby", vec![], true, 400),
    );
    assert_eq!(
        out.lines,
        ["* no older messages for you in this stretch of #lobby; /history looks further back"]
    );
    let out = line(&mut s, "/history 5");
    assert_eq!(
        out.sent,
        [ClientFrame::history("lobby", Some(400), Some(5))]
    );
}

#[test]
fn a_history_begun_anew_pages_back_from_its_own_messages() {
    let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
    s.handle_connected(0);
    frame(&mut s, welcome("alice", false));
    frame(&mut s, entered("lobby", 900, &["alice"], false));
    frame(
        &mut s,
        ServerFrame::history_from("lobby", vec![], true, 400),
    );
    // The server restarted without its history: a new epoch, seqs
    // start over, and seq 400 means nothing in it.
    s.handle_disconnected();
    s.handle_connected(10);
    frame(&mut s, welcome("alice", false));
    let fresh = ServerFrame::entered("lobby", "e2", 2, 1, vec!["alice".into()], false);
    frame(&mut s, fresh);
    drain(&mut s);
    let out = line(&mut s, "/history 5");
    assert_eq!(out.sent, [ClientFrame::history("lobby", None, Some(5))]);
}

/// Paged back to the start of a room's history, then the server
/// restarted without it: the new history's older messages are to be
/// fetched (scrolling up past the top of the full-screen client asks
/// only while there are): the earlier history's "that is all" held.
#[test]
fn a_history_begun_anew_has_older_messages_again() {
    let mut s = joined(&["lobby"]);
    s.name_every_room();
    line(&mut s, "/history 5");
    frame(&mut s, ServerFrame::history("lobby", vec![], false));
    assert!(!s.pages_back("lobby"), "nothing older");
    back(&mut s, 10);
    let fresh = ServerFrame::entered("lobby", "e2", 80, 1, vec!["alice".into()], false);
    frame(&mut s, fresh);
    frame(&mut s, replayed(msg("lobby", 79, "bob", &[], "n79"), None));
    frame(&mut s, presence("lobby", 80, "alice", true));
    assert!(s.pages_back("lobby"), "the new history's older ones");
}

/// Back in a room after a /part, its replay repeats what is on the
/// screen already: only what was said meanwhile is shown, as history.
/// In a history begun anew, the same seqs are other messages.
#[test]
fn a_room_joined_again_shows_nothing_twice() {
    let mut s = joined(&["lobby", "rust"]);
    frame(&mut s, msg("rust", 2, "bob", &[], "one"));
    frame(&mut s, msg("rust", 3, "bob", &[], "two"));
    line(&mut s, "/part rust");
    line(&mut s, "/join rust");
    let shown = lines_of(
        &mut s,
        [
            entered("rust", 5, &["bob"], false),
            replayed(msg("rust", 2, "bob", &[], "one"), None),
            replayed(msg("rust", 3, "bob", &[], "two"), None),
            replayed(msg("rust", 4, "bob", &[], "meanwhile"), None),
            presence("rust", 5, "alice", true),
        ],
    );
    assert_eq!(
        shown,
        [
            "* entered #rust; 1 online: bob",
            "[history] bob: meanwhile",
            "* alice is online"
        ]
    );

    line(&mut s, "/part rust");
    line(&mut s, "/join rust");
    let anew = ServerFrame::entered("rust", "e2", 1, 1, vec!["bob".into()], false);
    frame(&mut s, anew);
    let out = frame(
        &mut s,
        replayed(msg("rust", 2, "bob", &[], "new one"), None),
    );
    assert_eq!(
        out.lines,
        ["* entered #rust; 1 online: bob", "[history] bob: new one"]
    );
}

/// Back in a room after a /part, `/history` pages back from the
/// oldest message on the screen, counting those the replay repeated,
/// and a page shows none of what is on the screen already.
#[test]
fn history_in_a_room_joined_again_shows_nothing_twice() {
    let mut s = joined(&["lobby", "rust"]);
    for seq in 2..=4 {
        frame(&mut s, msg("rust", seq, "bob", &[], &format!("m{seq}")));
    }
    line(&mut s, "/part rust");
    line(&mut s, "/join rust");
    frame(&mut s, entered("rust", 6, &["bob"], false));
    frame(&mut s, replayed(msg("rust", 4, "bob", &[], "m4"), None));
    frame(&mut s, replayed(msg("rust", 5, "bob", &[], "m5"), None));
    frame(&mut s, presence("rust", 6, "alice", true));
    let out = line(&mut s, "/history 3");
    assert_eq!(out.sent, [ClientFrame::history("rust", Some(4), Some(3))]);
    let page = ServerFrame::history(
        "rust",
        (2..=3)
            .map(|q| replayed(msg("rust", q, "bob", &[], &format!("m{q}")), None))
            .collect(),
        false,
    );
    let out = frame(&mut s, page);
    assert_eq!(out.lines, ["* no older messages in #rust"]);
}

/// Full-screen, `/clear` then `/history 5` shows a room's newest 5
/// messages; back in it after a `/part`, its replay brings older ones
/// too. They are not on the screen, but are older than what is: they
/// go above it (as a page does), not below the newest, and what is
/// said meanwhile goes at the bottom.
#[test]
fn a_replay_after_clear_puts_older_messages_above_those_shown() {
    let mut s = joined(&["lobby", "t1"]);
    s.name_every_room();
    for seq in 2..=31 {
        frame(&mut s, msg("t1", seq, "frank", &[], &format!("m{seq}")));
    }
    line(&mut s, "/join t1");
    line(&mut s, "/clear");
    let out = line(&mut s, "/history 5");
    assert_eq!(out.sent, [ClientFrame::history("t1", None, Some(5))]);
    let page = |seqs: std::ops::RangeInclusive<u64>| {
        seqs.map(|q| replayed(msg("t1", q, "frank", &[], &format!("m{q}")), None))
            .collect::<Vec<_>>()
    };
    frame(
        &mut s,
        ServerFrame::history_from("t1", page(27..=31), true, 27),
    );
    line(&mut s, "/part");
    line(&mut s, "/join t1");
    let mut replay = vec![entered("t1", 33, &["frank"], false)];
    replay.extend(page(12..=32));
    replay.push(presence("t1", 33, "alice", true));
    for f in replay {
        s.handle_frame(0, f);
    }
    // Each message shown, and whether it goes above those of its room.
    let shown: Vec<(String, bool)> = std::iter::from_fn(|| s.poll())
        .filter_map(|a| match a {
            Action::Print(Line::Msg { text, page, .. }) => Some((text, page)),
            _ => None,
        })
        .collect();
    let mut want: Vec<(String, bool)> = (12..=26).map(|q| (format!("m{q}"), true)).collect();
    want.push(("m32".into(), false));
    assert_eq!(shown, want);
    // `/history` pages back from the oldest one now shown.
    let out = line(&mut s, "/history 5");
    assert_eq!(out.sent, [ClientFrame::history("t1", Some(12), Some(5))]);
}

/// `/part` with a line unanswered, a reconnect with a gap in the
/// room's replay (the core enters it again quietly, to resend), then
/// `/join` before its `part` went: the room is taken back with the
/// core's gap, which is said, and `/history` fills it from the oldest
/// message told.
#[test]
fn a_room_taken_back_before_its_part_went_tells_its_gap() {
    let mut s = joined(&["lobby", "rust"]);
    line(&mut s, "/join rust");
    line(&mut s, "hi");
    line(&mut s, "/part rust");
    assert_eq!(s.unacknowledged(), 1);
    back(&mut s, 10);
    drain(&mut s);
    frame(&mut s, entered("lobby", 1, &["alice"], true));
    frame(&mut s, presence("lobby", 2, "alice", true));
    // Seqs 2 to 599 of #rust are gone from the server's replay.
    let fresh = ServerFrame::entered("rust", "e1", 700, 600, vec!["alice".into()], false);
    frame(&mut s, fresh);
    frame(&mut s, replayed(msg("rust", 650, "bob", &[], "late"), None));
    let out = line(&mut s, "/join rust");
    assert!(
        out.lines.iter().any(|l| l.contains("missing")),
        "no gap said: {:?}",
        out.lines
    );
    let out = line(&mut s, "/history 5");
    assert_eq!(out.sent, [ClientFrame::history("rust", Some(650), Some(6))]);
}

/// A line sent just before `/part`, the connection lost before its
/// echo, the session resumed and the room's history begun anew (the
/// server forgot it while nobody was in it): the core enters the
/// room again to resend it, and its echo is shown (README: a message
/// sent there just before still shows), though its seq is one shown
/// in the old history.
#[test]
fn an_echo_after_a_part_into_a_history_begun_anew_is_shown() {
    let mut s = joined(&["lobby", "rust"]);
    frame(&mut s, msg("rust", 2, "bob", &[], "old two"));
    line(&mut s, "/join rust");
    let id = the_id(&line(&mut s, "hi").sent);
    line(&mut s, "/part rust");
    s.handle_disconnected();
    s.handle_connected(10);
    let out = frame(&mut s, welcome("alice", true));
    let anew = |room: &str| ServerFrame::entered(room, "e2", 0, 1, vec!["alice".into()], false);
    frame(&mut s, anew("lobby"));
    frame(&mut s, presence("lobby", 1, "alice", true));
    frame(&mut s, anew("rust"));
    frame(&mut s, presence("rust", 1, "alice", true));
    assert!(
        out.sent
            .iter()
            .any(|f| matches!(f, ClientFrame::Msg { .. })),
        "resent: {:?}",
        out.sent
    );
    let out = frame(&mut s, echo("rust", 2, "alice", "hi", &id));
    // The part goes now, and is said below the echo.
    assert_eq!(out.lines, ["[#rust] alice: hi", "* you left #rust"]);
}

/// What was shown of a room is kept after `/part` (its replay, if it
/// is entered again, is not shown twice), but only for the last rooms
/// left: a bot walking through many rooms kept 256 seqs of each.
#[test]
fn what_was_seen_of_rooms_left_is_kept_for_the_last_ones_only() {
    let mut s = joined(&["lobby"]);
    for i in 0..200 {
        let room = format!("r{i}");
        line(&mut s, &format!("/join {room}"));
        frame(&mut s, entered(&room, 20, &["alice"], false));
        for q in 1..20 {
            frame(&mut s, replayed(msg(&room, q, "bob", &[], "x"), None));
        }
        frame(&mut s, presence(&room, 20, "alice", true));
        line(&mut s, "/part");
    }
    assert!(
        s.seen.len() <= crate::session::PARTED_KEPT + 1,
        "{} rooms kept",
        s.seen.len()
    );
    assert!(s.seen.contains_key("r199"), "the last room left is kept");
    assert!(!s.seen.contains_key("r0"), "the first is not");
}

#[test]
fn a_refused_join_is_reported_to_the_shell() {
    let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
    s.handle_connected(0);
    drain(&mut s);
    let out = frame(
        &mut s,
        ServerFrame::error(ErrorCode::NickTaken, "the nickname alice is in use"),
    );
    assert_eq!(
        out.other,
        [Action::Refused {
            code: ErrorCode::NickTaken,
            message: "the nickname alice is in use".into()
        }]
    );
}
