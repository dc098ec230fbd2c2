//! The tests of `bound.rs`.

use crossterm::event::KeyCode;

use super::*;
use crate::tui::app::fixture::*;
use crate::tui::app::test_lines::{missing_at, placed_in};

/// The seqs of #lobby's messages, in the order shown.
fn lobby_seqs(app: &App) -> Vec<u64> {
    app.entries
        .iter()
        .filter_map(|e| match &e.line {
            Line::Msg { place, .. } if e.room.as_deref() == Some("lobby") => Some(place.seq),
            _ => None,
        })
        .collect()
}

/// The lines saying a room's newer lines were not kept, by room.
fn cut_lines(app: &App) -> Vec<(String, String)> {
    app.entries
        .iter()
        .filter(|e| e.cut)
        .map(|e| match &e.line {
            Line::Info(text) => (e.room.clone().unwrap_or_default(), text.clone()),
            other => panic!("{other:?}"),
        })
        .collect()
}

/// Scrolled back, nothing went: a terminal left scrolled up on a
/// busy room grew without bound. Past the bound, the oldest lines
/// far above the screen go (#lobby's 20,000 first, read back from
/// near the bottom of 80,000), what is on the screen stays, nothing
/// is cut, and the session is told where #lobby's lines now start
/// before it pages back.
#[test]
fn read_back_past_the_bound_the_oldest_lines_above_go_first() {
    let mut app = self::app();
    let mut seq = 0;
    // #lobby's next message, or #rust's but one in ten.
    let mut flood = |app: &mut App, i: usize| {
        if i.is_multiple_of(10) {
            seq += 1;
            let text = format!("m{seq}");
            app.add_line(placed_in("lobby", &text, 1, seq, false), "12:00".into());
        } else {
            app.add_line(msg("rust", "bob", &[], "r"), "12:00".into());
        }
    };
    for i in 0..MAX_ENTRIES {
        flood(&mut app, i * 10);
    }
    area_rows(&mut app);
    app.handle_event(key(KeyCode::PageUp));
    for i in 0..MAX_ENTRIES_EVER - MAX_ENTRIES - 10 {
        flood(&mut app, i);
    }
    // Read on down to near the newest.
    app.scroll = 30;
    let shown = area_rows(&mut app);
    let mut most = 0;
    for i in 0..MAX_ENTRIES {
        flood(&mut app, i);
        most = most.max(app.entries.len());
    }
    assert!(most <= MAX_ENTRIES_EVER, "{most} lines");
    assert_eq!(area_rows(&mut app), shown);
    assert!(cut_lines(&app).is_empty());
    let seqs = lobby_seqs(&app);
    let last = seqs.last().copied();
    let want = MAX_ENTRIES + (MAX_ENTRIES_EVER - MAX_ENTRIES - 10).div_ceil(10) + MAX_ENTRIES / 10;
    assert_eq!(last, Some(want as u64), "new lines kept");
    let first = seqs[0];
    assert!(first > MAX_ENTRIES as u64, "the oldest went: {first}");
    assert_eq!(seqs, (first..=want as u64).collect::<Vec<_>>());
    app.scroll = usize::MAX / 4;
    area_rows(&mut app);
    app.handle_event(key(KeyCode::PageUp));
    let from = Some(crate::render::Place { era: 1, seq: first });
    let kept = Kept { from, first: from };
    // The 9 rows past the top, and two screens of 10 more.
    assert_eq!(
        app.take_effects(),
        [Effect::LetGo("lobby".into(), kept), Effect::Older(29)]
    );
}

/// #lobby's 100 messages read back from the top while #lobby and
/// #rust get 100,000 lines: the area stays within its bound, the
/// screen as it was; the newest lines below it go, and each room
/// whose lines went says so at the bottom of its lines, its lines
/// counted (new below, unread, a mention flagged) but not kept.
/// Scrolled down to it, that line is the last; Esc asks #lobby's
/// newest page (the session told first that none of its lines is
/// shown): given, with a line that came meanwhile, the newest are
/// shown once each, in order. #rust, made current, asks its own.
#[test]
fn read_back_near_the_top_under_a_flood_the_newest_go_and_come_back_at_esc() {
    let mut app = self::app();
    let shown = lobby_read_from_the_top(&mut app, 1, 100);
    assert!(app.at_top && shown[0].ends_with("bob: m1"), "{shown:?}");
    let (mut lobby_new, mut rust_new) = (0, 0);
    let mut most = 0;
    let mut seq = 100;
    for i in 0..MAX_ENTRIES_EVER + MAX_ENTRIES {
        if i % 10 != 0 {
            let text = if i % 400 == 1 { "alice?" } else { "r" };
            app.add_line(msg("rust", "bob", &[], text), "12:01".into());
            rust_new += 1;
        } else {
            seq += 1;
            let text = format!("m{seq}");
            app.add_line(placed_in("lobby", &text, 1, seq, false), "12:01".into());
            lobby_new += 1;
        }
        most = most.max(app.entries.len());
    }
    assert!(most <= MAX_ENTRIES_EVER, "{most} lines");
    assert_eq!(area_rows(&mut app), shown);
    assert_eq!(app.new_below, lobby_new);
    assert_eq!(
        app.unread.get("rust"),
        Some(&Unread {
            count: rust_new,
            alert: true
        })
    );
    let said = |room: &str| {
        (
            room.to_owned(),
            format!("newer lines of #{room} not kept while you read back: Esc for the newest"),
        )
    };
    assert_eq!(cut_lines(&app), [said("lobby"), said("rust")]);
    let last_lobby = app
        .entries
        .iter()
        .rev()
        .find(|e| e.room.as_deref() == Some("lobby"));
    assert!(last_lobby.is_some_and(|e| e.cut), "at the bottom of #lobby");
    // Not kept, while cut.
    let before = app.entries.len();
    seq += 1;
    app.add_line(placed_in("lobby", "late", 1, seq, false), "12:02".into());
    assert_eq!(app.entries.len(), before);

    // Scrolled down to the bottom, #lobby's last line says so, and
    // nothing is asked until Esc (or down once more).
    app.take_effects();
    app.scroll = 1;
    app.handle_event(key(KeyCode::PageDown));
    let rows = area_rows(&mut app);
    let bottom = rows[rows.len() - 2..].join(" ");
    let bottom = bottom.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        bottom
            .ends_with("* newer lines of #lobby not kept while you read back: Esc for the newest"),
        "{rows:?}"
    );
    assert_eq!(app.take_effects(), []);
    app.handle_event(key(KeyCode::Esc));
    // (Back at the newest, the area is cut to its cap: #rust's oldest
    // lines went too.)
    let effects = app.take_effects();
    let told = effects.iter().filter(|e| matches!(e, Effect::LetGo(..)));
    let told = told.count() as u64;
    assert!(
        effects.contains(&Effect::LetGo("lobby".into(), Kept::default()))
            && effects.last() == Some(&Effect::Older(20)),
        "{effects:?}"
    );
    assert!(lobby_seqs(&app).is_empty());
    let mut state = app.state.clone();
    state.let_go_taken = told;
    state.older_taken = 1;
    app.set_state(state);
    // Said before the page came; the page has it too.
    seq += 1;
    app.add_line(placed_in("lobby", "now", 1, seq, false), "12:03".into());
    for q in seq - 49..=seq {
        let text = format!("m{q}");
        app.add_line(placed_in("lobby", &text, 1, q, true), "12:03".into());
    }
    let newest: Vec<u64> = (seq - 49..=seq).collect();
    assert_eq!(lobby_seqs(&app), newest);
    assert_eq!(cut_lines(&app), [said("rust")]);
    let rows = area_rows(&mut app);
    assert!(rows[rows.len() - 1].ends_with("bob: now"), "{rows:?}");
    // Kept again.
    app.add_line(
        placed_in("lobby", "next", 1, seq + 1, false),
        "12:04".into(),
    );
    assert_eq!(lobby_seqs(&app).last(), Some(&(seq + 1)));

    let mut state = app.state.clone();
    state.current = Some("rust".into());
    app.set_state(state);
    assert_eq!(
        app.take_effects(),
        [
            Effect::LetGo("rust".into(), Kept::default()),
            Effect::Older(20)
        ]
    );
    assert!(cut_lines(&app).is_empty());
}

/// Read back at the top of #lobby while #rust fills the area to its
/// bound, a page of #lobby's older messages comes: passing the bound
/// as it comes, it is kept whole above #lobby's lines, in order (the
/// rest of a page whose first lines went would not be shown, leaving
/// a hole under them), and the screen stays; #rust's newest lines go
/// instead, and it is cut.
#[test]
fn a_page_read_back_at_the_bound_is_kept_whole_and_the_newest_go() {
    let mut app = self::app();
    let shown = lobby_read_from_the_top(&mut app, 1_001, 1_100);
    assert!(app.at_top);
    for _ in 0..MAX_ENTRIES_EVER - 130 {
        app.add_line(msg("rust", "bob", &[], "r"), "12:00".into());
    }
    let mut most = 0;
    for seq in 901..=1_000 {
        let text = format!("m{seq}");
        app.add_line(placed_in("lobby", &text, 1, seq, true), "12:01".into());
        most = most.max(app.entries.len());
    }
    assert!(most <= MAX_ENTRIES_EVER, "{most} lines");
    assert_eq!(lobby_seqs(&app), (901..=1_100).collect::<Vec<_>>());
    assert_eq!(area_rows(&mut app), shown);
    let said = "newer lines of #rust not kept while you read back: Esc for the newest";
    assert_eq!(cut_lines(&app), [("rust".to_owned(), said.to_owned())]);
}

/// Back after a reconnect while #lobby is cut: the line saying
/// messages are missing is not kept (it is newer than what #lobby
/// keeps), so the page of them that paging up asks brings the
/// newest messages, which went above #lobby's oldest line, out of
/// order. Newer than every message kept, they are counted, not kept.
#[test]
fn missed_messages_paged_in_a_room_cut_are_not_put_above_its_lines() {
    let mut app = self::app();
    let seq = cut_lobby(&mut app);
    let kept = lobby_seqs(&app);
    let below = app.new_below;
    app.add_line(
        Line::Gap {
            room: "lobby".into(),
            filled: false,
        },
        "12:02".into(),
    );
    for q in seq + 10..seq + 15 {
        let line = missing_at(&format!("m{q}"), Place { era: 1, seq: q });
        app.add_line(line, "12:02".into());
    }
    let seqs = lobby_seqs(&app);
    assert!(seqs == kept, "#lobby's first: {:?}", &seqs[..5]);
    assert_eq!(app.new_below, below + 6);
}

/// The client's own lines filed under a room cut (an error answering
/// a line typed, the connection lost, a refused line kept for Up)
/// were counted and not kept, and Esc dropped the room's notes with
/// its messages: the person never saw them. They are kept, below the
/// line saying the room is cut, and stay when its newest are asked.
#[test]
fn notes_in_a_room_cut_are_kept_and_stay_at_esc() {
    let mut app = self::app();
    cut_lobby(&mut app);
    let error = Line::Error {
        code: "unknown_nick".into(),
        message: "no such nick: dave".into(),
    };
    app.add_line(error.clone(), "12:02".into());
    let info = Line::Info("connection lost; reconnecting".into());
    app.add_line(info.clone(), "12:02".into());
    let notes = |app: &App| {
        app.entries
            .iter()
            .filter(|e| e.room.as_deref() == Some("lobby"))
            .filter(|e| matches!(e.line, Line::Error { .. } | Line::Info(_)) && !e.cut)
            .map(|e| e.line.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(notes(&app), [error.clone(), info.clone()]);
    app.handle_event(key(KeyCode::Esc));
    assert!(lobby_seqs(&app).is_empty());
    assert_eq!(notes(&app), [error, info]);
}

/// Who came and went while #lobby was cut: joins and leaves are in
/// no page of history, so its newest page at Esc did not bring them,
/// and they were not kept: a reader who pressed Esc never saw them.
/// They are kept, as notes are, and stay at Esc; those of before the
/// cut (among the lines read back) go with the room's lines.
#[test]
fn joins_and_leaves_in_a_room_cut_are_kept_and_stay_at_esc() {
    let mut app = self::app();
    let old = Line::Presence {
        room: Some("lobby".into()),
        nick: "carol".into(),
        online: false,
    };
    app.add_line(old, "11:00".into());
    cut_lobby(&mut app);
    let came = Line::Presence {
        room: Some("lobby".into()),
        nick: "dave".into(),
        online: true,
    };
    app.add_line(came.clone(), "12:02".into());
    let away = Line::WhileAway {
        room: Some("lobby".into()),
        joined: vec!["erin".into()],
        left: vec![],
    };
    app.add_line(away.clone(), "12:03".into());
    let kept = |app: &App| {
        app.entries
            .iter()
            .filter(|e| e.room.as_deref() == Some("lobby"))
            .filter(|e| matches!(e.line, Line::Presence { .. } | Line::WhileAway { .. }))
            .map(|e| e.line.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(kept(&app)[1..], [came.clone(), away.clone()]);
    app.handle_event(key(KeyCode::Esc));
    assert!(lobby_seqs(&app).is_empty());
    assert_eq!(kept(&app), [came, away]);
}

/// In a room cut, a message typed fetches its newest first (its echo
/// comes under them); a command does not: `/clear` fetched a page it
/// then dropped (the view emptied), `/who` or `/history` one the
/// answer did not ask for. They go to the bottom of what is kept,
/// the room still cut (`/clear`: not, nothing shown).
#[test]
fn in_a_room_cut_a_message_fetches_its_newest_and_a_command_does_not() {
    let typed = |app: &mut App, line: &str| {
        type_str(app, line);
        app.handle_event(key(KeyCode::Enter));
        let effects = app.take_effects().into_iter();
        // (Not what the session is told of the area: back at the
        // bottom, it is cut to its cap, the oldest lines going.)
        effects
            .filter(|e| !matches!(e, Effect::Cut(..) | Effect::LetGo(..)))
            .collect::<Vec<_>>()
    };
    let mut app = self::app();
    cut_lobby(&mut app);
    app.take_effects();
    for line in ["/who", "/history"] {
        assert_eq!(typed(&mut app, line), [Effect::Send(line.into())]);
        assert_eq!(app.scroll, 0);
        assert!(app.cut.contains("lobby"));
    }
    assert_eq!(typed(&mut app, "/clear"), [Effect::Send("/clear".into())]);
    assert!(!app.cut.contains("lobby") && lobby_seqs(&app).is_empty());

    let mut app = self::app();
    cut_lobby(&mut app);
    app.take_effects();
    assert_eq!(
        typed(&mut app, "hello"),
        [Effect::Older(20), Effect::Send("hello".into())]
    );
    assert!(!app.cut.contains("lobby") && lobby_seqs(&app).is_empty());
}

/// #rust cut, then left (`/part rust` in #lobby, then #lobby left
/// too): no Esc brings its newest (it is not current, nor is any
/// room in the view of none, which shows its lines), so its line
/// says it was left, not Esc. Entered again, its newest are asked.
#[test]
fn a_room_cut_and_left_says_so_and_asks_its_newest_entered_again() {
    let mut app = self::app();
    cut_lobby(&mut app);
    app.handle_event(key(KeyCode::Esc));
    app.take_effects();
    let mut state = app.state.clone();
    state.rooms = vec!["lobby".into()];
    app.set_state(state.clone());
    state.rooms = vec![];
    state.current = None;
    app.set_state(state.clone());
    assert_eq!(app.take_effects(), []);
    let said = "newer lines of #rust not kept while you read back; you left #rust";
    let markers: Vec<_> = app.entries.iter().filter(|e| e.cut).collect();
    assert_eq!(markers.len(), 1);
    assert!(
        matches!(&markers[0].line, Line::Info(t) if t == said),
        "{markers:?}"
    );
    state.rooms = vec!["rust".into()];
    state.current = Some("rust".into());
    app.set_state(state);
    assert_eq!(
        app.take_effects(),
        [
            Effect::LetGo("rust".into(), Kept::default()),
            Effect::Older(20)
        ]
    );
    assert!(app.entries.iter().all(|e| !e.cut));
}

/// In a room cut, the lines not kept are below the screen until its
/// newest are fetched: read down to its last lines, they are still
/// counted, and those kept (its messages before the cut, who came
/// since) as far as they are below the screen.
#[test]
fn new_below_in_a_room_cut_counts_what_was_not_kept() {
    let mut app = self::app();
    let last = cut_lobby(&mut app);
    area_rows(&mut app);
    // m1 to m100 read back, then m101 on, to m{last}: those after
    // the last kept were not.
    let kept = lobby_seqs(&app).last().copied().unwrap_or(0);
    let unkept = (last - kept) as usize;
    assert!(kept > 100 && unkept > 0, "{kept} {unkept}");
    assert_eq!(app.new_below, (last - 100) as usize);
    for nick in ["dave", "erin", "frank", "gina"] {
        let came = Line::Presence {
            room: Some("lobby".into()),
            nick: nick.into(),
            online: true,
        };
        app.add_line(came, "12:02".into());
    }
    assert_eq!(app.new_below, (last - 100) as usize + 4);
    app.scroll = 20;
    app.handle_event(key(KeyCode::PageDown));
    app.handle_event(key(KeyCode::PageDown));
    let rows = area_rows(&mut app);
    assert_eq!(app.scroll, 2);
    assert!(rows[9].contains("erin"), "{rows:?}");
    assert_eq!(app.new_below, unkept + 2);
}
