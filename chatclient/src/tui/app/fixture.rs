//! What the [`App`]'s tests build on: alice's screen in #lobby (and
//! #rust), messages, keys.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};

use super::test_lines::placed_in;
use super::*;

pub(super) fn app() -> App {
    let mut app = App::new(Theme { color: false }, true);
    app.set_state(State {
        nick: "alice".into(),
        prompt: "alice #lobby> ".into(),
        current: Some("lobby".into()),
        rooms: vec!["lobby".into(), "rust".into()],
        roster: vec!["alice".into(), "bob".into(), "carol".into()].into(),
        joined: true,
        ..State::default()
    });
    app
}

pub(super) fn msg(room: &str, from: &str, to: &[&str], text: &str) -> Line {
    Line::Msg {
        room: Some(room.into()),
        history: false,
        page: false,
        missed: false,
        from: from.into(),
        to: to.iter().map(|s| s.to_string()).collect(),
        text: text.into(),
        ts: 0,
        place: crate::render::Place::default(),
    }
}

pub(super) fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub(super) fn ctrl(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

pub(super) fn type_str(app: &mut App, s: &str) {
    for c in s.chars() {
        app.handle_event(key(KeyCode::Char(c)));
    }
}

/// The message area's rows as drawn in a terminal of 60 by 12 (the
/// area 10 rows high), without the bars below it.
pub(super) fn area_rows(app: &mut App) -> Vec<String> {
    use ratatui::{backend::TestBackend, Terminal};
    let mut t = Terminal::new(TestBackend::new(60, 12)).unwrap();
    t.draw(|f| crate::tui::draw::draw(f, app)).unwrap();
    let buf = t.backend().buffer().clone();
    (0..app.area.1 as u16)
        .map(|y| {
            let row: String = (0..60).map(|x| buf[(x, y)].symbol()).collect();
            row.trim_end().to_owned()
        })
        .collect()
}

/// #lobby's messages `m{first}` to `m{last}`, read back from the top
/// (scrolled up as far as they go); the rows then shown.
pub(super) fn lobby_read_from_the_top(app: &mut App, first: u64, last: u64) -> Vec<String> {
    for seq in first..=last {
        let text = format!("m{seq}");
        app.add_line(placed_in("lobby", &text, 1, seq, false), "12:00".into());
    }
    area_rows(app);
    app.scroll = usize::MAX / 4;
    area_rows(app)
}

/// #lobby's 100 messages read back from the top while #lobby and
/// #rust get 100,000 lines: #lobby is cut. Its last seq given.
pub(super) fn cut_lobby(app: &mut App) -> u64 {
    lobby_read_from_the_top(app, 1, 100);
    let mut seq = 100;
    for i in 0..MAX_ENTRIES_EVER + MAX_ENTRIES {
        if i % 10 != 0 {
            app.add_line(msg("rust", "bob", &[], "r"), "12:01".into());
        } else {
            seq += 1;
            let text = format!("m{seq}");
            app.add_line(placed_in("lobby", &text, 1, seq, false), "12:01".into());
        }
    }
    assert!(app.cut.contains("lobby"));
    seq
}

/// bob's message `text` in #lobby, `seq` of the history `era`.
pub(super) fn placed(text: &str, era: u64, seq: u64, page: bool) -> Line {
    placed_in("lobby", text, era, seq, page)
}

/// The entries as short words: a message's text, the others' kind.
pub(super) fn words(app: &App) -> Vec<String> {
    app.entries
        .iter()
        .map(|e| match &e.line {
            Line::Msg { text, .. } => text.clone(),
            Line::Entered { .. } => "(entered)".into(),
            Line::HistoryGone { .. } => "(gone)".into(),
            Line::HistoryStart { .. } => "(start)".into(),
            _ => "(other)".into(),
        })
        .collect()
}
