//! The tests of `messages.rs`.

use super::*;
use crate::render::Line;
use crate::tui::app::test_lines::{missing_at, placed_in, rng};
use crate::tui::app::Sending;
use crate::tui::draw::fixture::*;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use unicode_width::UnicodeWidthStr;

/// Lines the session has not taken yet (it reads no more while many
/// messages wait for the server) are shown as waiting, not lost from
/// sight; a command among them is not a message.
#[test]
fn lines_not_taken_yet_show_as_waiting() {
    let mut app = app();
    let mut state = app.state.clone();
    state.pending = vec![Sending {
        id: String::new(),
        room: "lobby".into(),
        to: vec![],
        text: "taken".into(),
        may_have_arrived: true,
    }];
    state.lines_taken = 0;
    app.set_state(state.clone());
    use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
    app.handle_event(Event::Paste("taken\nnot yet\n@bob nor this\n".into()));
    for c in "/who".chars() {
        app.input.insert(c);
    }
    app.handle_event(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    state.lines_taken = 1;
    app.set_state(state);
    let rows = screen(&mut app, 40, 6);
    assert_eq!(
        rows[..4],
        [
            "",
            "--:-- alice: taken",
            "--:-- alice: not yet",
            "--:-- alice -> bob: nor this",
        ]
    );
    let mut state = app.state.clone();
    state.lines_taken = 4;
    app.set_state(state);
    assert!(app.waiting.is_empty());
}

/// A line waiting under `/query` goes to that nickname, and one after
/// a `/join` typed before it to that room, not the current one.
#[test]
fn waiting_lines_follow_query_and_join_typed_before_them() {
    let mut app = app();
    let mut state = app.state.clone();
    state.query = Some("bob".into());
    app.set_state(state);
    use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
    for line in ["hi", "@carol yes", "/query", "all", "/join rust", "there"] {
        for c in line.chars() {
            app.input.insert(c);
        }
        app.handle_event(Event::Key(KeyEvent::new(
            KeyCode::Enter,
            KeyModifiers::NONE,
        )));
    }
    let rows = screen(&mut app, 40, 6);
    assert_eq!(
        rows[..4],
        [
            "",
            "--:-- alice -> bob: hi",
            "--:-- alice -> carol: yes",
            "--:-- alice: all",
        ]
    );
    let sent: Vec<(String, Vec<String>)> = app
        .waiting_messages()
        .into_iter()
        .map(|s| (s.room, s.to))
        .collect();
    assert_eq!(sent[3], ("rust".to_owned(), vec![]));
}

#[test]
fn scrolling_back_stops_at_the_oldest_line() {
    let mut app = app();
    for i in 0..10 {
        app.add_line(msg("lobby", "bob", &format!("m{i}")), "12:00".into());
    }
    app.scroll = 100;
    let rows = screen(&mut app, 40, 6);
    assert_eq!(app.scroll, 6);
    assert_eq!(rows[0], "12:00 bob: m0");
    assert!(rows[4].contains("more below"), "{:?}", rows[4]);
}

/// Read far back while a flood comes, a draw lays out what it shows,
/// not every row between it and the newest: as few entries 50,000
/// rows back as 100 rows back.
#[test]
fn a_draw_far_back_lays_out_what_it_shows() {
    use crate::tui::format::LAID_OUT;
    let mut app = app();
    let line = |i: usize| msg("lobby", "bob", &format!("m{i}"));
    for i in 0..20 {
        app.add_line(line(i), "12:00".into());
    }
    screen(&mut app, 40, 12);
    app.scroll = 1;
    for i in 20..60_020 {
        app.add_line(line(i), "12:00".into());
    }
    let mut next = 60_020;
    let mut laid_out = |app: &mut App, scroll: usize| {
        app.scroll = scroll;
        screen(app, 40, 12);
        // One more comes below, and the screen is drawn again.
        app.add_line(line(next), "12:01".into());
        next += 1;
        let before = LAID_OUT.with(|n| n.get());
        let rows = screen(app, 40, 12);
        (LAID_OUT.with(|n| n.get()) - before, rows)
    };
    let (near, rows) = laid_out(&mut app, 100);
    assert_eq!(rows[9], "12:00 bob: m59919", "{rows:?}");
    let (far, rows) = laid_out(&mut app, 50_000);
    assert_eq!(rows[9], "12:00 bob: m10020", "{rows:?}");
    assert!(rows[10].contains("new below"), "{rows:?}");
    assert!(
        near <= 12 && far <= 12,
        "entries laid out for a draw: {near} 100 rows back, {far} 50,000 rows back"
    );
}

/// A room whose history began anew, scrolled up to its top: the page
/// that scrolling past the top fetches is of the new history, and
/// goes below the view, above the new history's first line shown.
/// The view stays on what it showed (it moved down by the page's
/// rows).
#[test]
fn a_page_of_a_history_begun_anew_below_the_view_does_not_move_it() {
    let placed = |text: String, era, seq, page| placed_in("lobby", &text, era, seq, page);
    let mut app = app();
    for i in 0..30 {
        app.add_line(placed(format!("a{i}"), 1, 100 + i, false), "12:00".into());
    }
    let gone = Line::HistoryGone {
        room: "lobby".into(),
    };
    app.add_line(gone, "12:01".into());
    for i in 30..60 {
        app.add_line(placed(format!("n{i}"), 2, i, false), "12:01".into());
    }
    app.scroll = 1_000;
    let before = screen(&mut app, 40, 8);
    assert!(app.at_top);
    assert_eq!(before[0], "12:00 bob: a0");
    for i in 0..30 {
        app.add_line(placed(format!("n{i}"), 2, i, true), "12:02".into());
    }
    let after = screen(&mut app, 40, 8);
    assert_eq!(after[..5], before[..5]);
}

/// The terminal resized while scrolled back: the message read at the
/// bottom of the view stays there, though it and everything below it
/// now wrap into another number of rows.
#[test]
fn a_resize_keeps_the_message_read_in_view() {
    let mut app = app();
    for i in 0..30 {
        let text = format!("m{i}a m{i}b m{i}c m{i}d m{i}e m{i}f m{i}g m{i}h");
        app.add_line(msg("lobby", "bob", &text), "12:00".into());
    }
    // Which message the bottom row of the area (8 rows) shows.
    let read = |rows: &[String]| {
        let word = rows[7].split_whitespace().last().unwrap_or("").to_owned();
        word.trim_end_matches(|c: char| c.is_ascii_lowercase())
            .to_owned()
    };
    screen(&mut app, 40, 10);
    app.scroll = 13;
    let wide = screen(&mut app, 40, 10);
    let before = read(&wide);
    assert!(before.starts_with('m') && before != "m29", "{wide:?}");
    for (w, h) in [(24, 10), (60, 10), (40, 10)] {
        let now = screen(&mut app, w, h);
        assert_eq!(read(&now), before, "at {w} columns: {now:?}");
    }
}

/// Scrolled back to read above a reconnect's gap, the messages
/// /history brings into it go below what is read, which stays where it
/// is; so it does when the gap's line goes.
#[test]
fn a_gap_filled_below_the_view_leaves_it_alone() {
    let mut app = app();
    for i in 0..20 {
        app.add_line(msg("lobby", "bob", &format!("m{i}")), "12:00".into());
    }
    let gap = |filled| Line::Gap {
        room: "lobby".into(),
        filled,
    };
    app.add_line(gap(false), "12:01".into());
    for i in 30..45 {
        app.add_line(msg("lobby", "bob", &format!("m{i}")), "12:02".into());
    }
    screen(&mut app, 40, 10);
    // m15 at the bottom of the view: the gap's line (three rows) and
    // what follows it are below.
    app.scroll = 22;
    let before = screen(&mut app, 40, 10);
    assert!(before[7].ends_with("bob: m15"), "{before:?}");
    for i in 20..30 {
        let missing = missing_at(&format!("m{i}"), crate::render::Place::default());
        app.add_line(missing, "12:03".into());
    }
    assert_eq!(screen(&mut app, 40, 10), before);
    app.add_line(gap(true), "12:04".into());
    assert_eq!(screen(&mut app, 40, 10), before);
    // At the bottom, the newest stay in view.
    app.scroll = 0;
    let bottom = screen(&mut app, 40, 10);
    assert!(bottom[7].ends_with("bob: m44"), "{bottom:?}");
}

/// Scrolled back while our own messages wait for the server (typed
/// during a reconnect, say): their confirmation turns the waiting
/// rows at the bottom into messages in the same place, so what is
/// being read stays where it is, and nothing new is said to be below.
#[test]
fn our_confirmed_messages_do_not_move_a_scrolled_back_view() {
    let mut app = app();
    for i in 0..20 {
        app.add_line(msg("lobby", "bob", &format!("m{i}")), "12:00".into());
    }
    let sending = |text: &str| Sending {
        id: String::new(),
        room: "lobby".into(),
        to: vec![],
        text: text.into(),
        may_have_arrived: true,
    };
    let mut state = app.state.clone();
    state.pending = vec![sending("one"), sending("two"), sending("three")];
    app.set_state(state);
    screen(&mut app, 40, 8);
    app.scroll = 10;
    let before = screen(&mut app, 40, 8);
    assert!(before[6].contains(" more below "), "{before:?}");
    for (n, text) in ["one", "two", "three"].into_iter().enumerate() {
        app.add_line(msg("lobby", "alice", text), "12:01".into());
        let mut state = app.state.clone();
        state.pending.remove(0);
        app.set_state(state);
        assert_eq!(screen(&mut app, 40, 8), before, "after {}", n + 1);
    }
    app.scroll = 0;
    let newest = screen(&mut app, 40, 8);
    assert_eq!(newest[5], "12:01 alice: three");
}

#[test]
fn a_family_and_devanagari_leave_no_residue() {
    // Every cell the message area shows is one ratatui writes: no
    // cluster hides cells behind it that the terminal would fill, and
    // no joiner reaches the terminal.
    let mut app = app();
    app.show_names = true;
    let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}";
    app.add_line(
        msg("lobby", "gina", &format!("D family {family} end")),
        "12:00".into(),
    );
    app.add_line(
        msg(
            "lobby",
            "gina",
            "\u{928}\u{92e}\u{938}\u{94d}\u{924}\u{947}",
        ),
        "12:00".into(),
    );
    let mut t = Terminal::new(TestBackend::new(60, 6)).unwrap();
    t.draw(|f| draw(f, &mut app)).unwrap();
    let buf = t.backend().buffer().clone();
    for y in 0..6 {
        for x in 0..60 {
            let symbol = buf[(x, y)].symbol();
            assert!(!symbol.contains('\u{200d}'), "a joiner at {x},{y}");
            assert!(
                symbol.width() <= 1 || symbol.chars().count() == 1,
                "{symbol:?} at {x},{y} hides a cell"
            );
        }
    }
    // (A wide character's second cell reads as a space here.)
    let rows = screen(&mut app, 60, 6);
    assert_eq!(
        rows[2],
        format!("12:00 gina: D family 👨 👩 👧  end{}bob", " ".repeat(18))
    );
    assert_eq!(
        rows[3],
        "12:00 gina: \u{928}\u{92e}\u{938}\u{94d}\u{924}\u{947}"
    );
}

/// Scrolling up near the oldest line shown (less than a screen above
/// the view) asks for older messages, once at a time, while the
/// session says there may be some; not with a screen and more above.
#[test]
fn scrolling_up_past_the_oldest_line_asks_for_older_ones() {
    use crate::tui::app::Effect;
    use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
    let page_up = Event::Key(KeyEvent::new(KeyCode::PageUp, KeyModifiers::NONE));
    let mut app = app();
    let mut state = app.state.clone();
    state.older = true;
    app.set_state(state.clone());
    for i in 0..12 {
        app.add_line(msg("lobby", "bob", &format!("m{i}")), "12:00".into());
    }
    // 12 lines in 4 rows: a page up leaves 5 above the view, a
    // screen and more; the next leaves 2: older ones are asked then,
    // before the oldest line is in view.
    screen(&mut app, 40, 6);
    app.handle_event(page_up.clone());
    screen(&mut app, 40, 6);
    assert!(app.take_effects().is_empty(), "asked a screen ahead");
    app.handle_event(page_up.clone());
    screen(&mut app, 40, 6);
    assert!(!app.at_top);
    assert_eq!(app.take_effects(), [Effect::Older(20)]);
    // Asked: not again while the request waits, nor while its page is
    // on its way.
    for _ in 0..2 {
        app.handle_event(page_up.clone());
        screen(&mut app, 40, 6);
    }
    assert!(app.at_top);
    assert!(app.take_effects().is_empty());
    state.older_taken = 1;
    state.older = false;
    state.paging = true;
    app.set_state(state.clone());
    app.handle_event(page_up.clone());
    assert!(app.take_effects().is_empty());
    // Its page came (its note ends it), and brought nothing above:
    // the reader asked to go further up, so the next is asked at once.
    state.older = true;
    state.paging = false;
    app.set_state(state.clone());
    assert!(app.take_effects().is_empty(), "asked before it came");
    let note = Line::HistoryNote {
        room: "lobby".into(),
        text: "0 older messages of #lobby; /history shows more".into(),
    };
    app.add_line(note, "12:01".into());
    assert_eq!(app.take_effects(), [Effect::Older(20)]);
    // Nothing older: the view stays at the oldest line.
    state.older_taken = 2;
    state.older = false;
    app.set_state(state);
    let start = Line::HistoryStart {
        room: "lobby".into(),
        era: 0,
        older_gone: false,
    };
    app.add_line(start, "12:01".into());
    app.handle_event(page_up);
    assert!(app.take_effects().is_empty());
}

/// The request scrolling up makes is not a typed line: refused (the
/// connection lost before the session took it, say), nothing of it
/// goes into the input, nor into the lines Up brings back, nor is
/// it said to be "not sent" (it was put back into the input as
/// `/history`, and Up brought it back).
#[test]
fn the_request_scrolling_up_makes_is_not_a_typed_line() {
    use crate::tui::app::Effect;
    use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
    let key = |code| Event::Key(KeyEvent::new(code, KeyModifiers::NONE));
    let mut app = app();
    let mut state = app.state.clone();
    state.older = true;
    app.set_state(state);
    app.add_line(msg("lobby", "bob", "only"), "12:00".into());
    screen(&mut app, 40, 6);
    assert!(app.at_top);
    app.handle_event(key(KeyCode::PageUp));
    assert_eq!(app.take_effects().len(), 1, "asked once");
    // What the session would refuse, had it been the first line.
    app.refused(1);
    assert_eq!(app.input.text(), "");
    app.handle_event(key(KeyCode::Up));
    assert_eq!(app.input.text(), "", "Up brings back nothing typed");
    // A line typed after it is the first, and the one Up brings back.
    for c in "hi".chars() {
        app.handle_event(key(KeyCode::Char(c)));
    }
    app.handle_event(key(KeyCode::Enter));
    assert!(matches!(&app.take_effects()[..], [Effect::Send(l)] if l == "hi"));
    app.handle_event(key(KeyCode::Up));
    app.handle_event(key(KeyCode::Up));
    assert_eq!(app.input.text(), "hi");
    let notes = app
        .entries
        .iter()
        .filter(|e| matches!(&e.line, Line::Info(t) if t.contains("not sent")))
        .count();
    assert_eq!(notes, 0);
}

/// A page (of the older history above the view, or of a history
/// begun anew below it, lines wrapping, other rooms between) leaves
/// the scrolled-back view on what it shows.
#[test]
fn pages_keep_a_scrolled_back_view_on_what_it_shows() {
    let placed = |room: &str, text: String, era, seq, page| placed_in(room, &text, era, seq, page);
    let mut rnd = rng(99);
    for round in 0..200 {
        let mut app = app();
        let long = |i: u64, k: u64| format!("m{i} {}", "word ".repeat(k as usize));
        let anew = rnd(2) == 0;
        for i in 50..90 {
            let k = rnd(12);
            app.add_line(placed("lobby", long(i, k), 1, i, false), "12:00".into());
            if rnd(5) == 0 {
                app.add_line(placed("rust", "x".into(), 1, i, false), "12:00".into());
            }
        }
        let era = if anew {
            app.add_line(
                Line::HistoryGone {
                    room: "lobby".into(),
                },
                "12:01".into(),
            );
            for i in 30..60 {
                let k = rnd(12);
                app.add_line(placed("lobby", long(i, k), 2, i, false), "12:01".into());
            }
            2
        } else {
            1
        };
        app.scroll = 1 + rnd(300) as usize;
        let before = screen(&mut app, 40, 10);
        let n = 1 + rnd(25);
        for i in (30 - n)..30 {
            let k = rnd(12);
            app.add_line(placed("lobby", long(i, k), era, i, true), "12:02".into());
        }
        let after = screen(&mut app, 40, 10);
        assert_eq!(after[5..8], before[5..8], "round {round} anew {anew}");
    }
}
