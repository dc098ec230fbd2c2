//! Drawing the [`App`] on the terminal, every frame from scratch (ratatui
//! compares it with the last one and writes only what changed):
//!
//! ```text
//! ┌──────────────────────────────────────┬───────────┐
//! │ message area: the current room,      │ who is    │
//! │ newest at the bottom, scrolled back  │ online    │
//! │ with PgUp, wrapped under the text    │ (F2)      │
//! ├──────────────────────────────────────┴───────────┤
//! │ status bar: #room  other rooms, unread, !        │
//! │ input line: alice #room> typing here_            │
//! └──────────────────────────────────────────────────┘
//! ```
//!
//! This file lays the parts out (and draws the side list of who is
//! online); each part is drawn by a file of its own: `draw/messages.rs`
//! the message area, `draw/status.rs` the status bar, `draw/input.rs` the
//! input line.

use ratatui::layout::Rect;
use ratatui::text::{Line as Row, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::app::App;
use super::format::{entry_height, entry_rows, sending_rows};
use super::wrap::{grapheme_width, spans, text_width};
use crate::session::{grouped, text_bytes};
use unicode_segmentation::UnicodeSegmentation;

mod input;
mod messages;
mod status;

use input::draw_input;
use messages::{draw_messages, same_text_at};
use status::draw_status;

/// The side list is shown only when the message area keeps this much.
const MIN_MESSAGE_WIDTH: u16 = 24;

/// Draw everything.
pub fn draw(frame: &mut Frame<'_>, app: &mut App) {
    let area = frame.area();
    if area.width == 0 || area.height == 0 {
        return;
    }
    let input = Rect {
        y: area.bottom() - 1,
        height: 1,
        ..area
    };
    let status = (area.height >= 2).then(|| Rect {
        y: area.bottom() - 2,
        height: 1,
        ..area
    });
    let mut messages = Rect {
        height: area.height.saturating_sub(2),
        ..area
    };
    let mut names = None;
    if app.show_names && messages.height > 0 {
        let longest = app
            .state
            .roster
            .iter()
            .map(|n| text_width(&chatproto::escape_control(n)))
            .max()
            .unwrap_or(0);
        let width = (longest.max(10) as u16 + 1).min(20);
        if messages.width > MIN_MESSAGE_WIDTH + width {
            messages.width -= width + 1;
            names = Some(Rect {
                x: messages.right() + 1,
                width,
                ..messages
            });
        }
    }
    let was_wide = app.area.0;
    app.area = (usize::from(messages.width), usize::from(messages.height));
    if messages.height > 0 {
        if app.scroll > 0 && was_wide != app.area.0 && was_wide > 0 {
            app.scroll = same_text_at(app, was_wide, app.area.0);
        }
        draw_messages(frame, app, messages);
    }
    if let Some(r) = names {
        draw_names(frame, app, r);
    }
    if let Some(r) = status {
        // F2 asked for the list, and the window has no room for it.
        let names_hidden = app.show_names && names.is_none() && messages.height > 0;
        draw_status(frame, app, r, names_hidden);
    }
    draw_input(frame, app, input);
}

/// Who is online in the current room (F2).
fn draw_names(frame: &mut Frame<'_>, app: &mut App, area: Rect) {
    let theme = app.theme;
    let roster = &app.state.roster;
    // While reconnecting nobody knows who is online: the list is the
    // last one known, and says so.
    let title = if app.state.joined {
        format!("{} online", roster.len())
    } else {
        "was online".to_owned()
    };
    let mut rows = vec![Row::from(Span::styled(title, theme.prompt()))];
    let room_for = usize::from(area.height).saturating_sub(1);
    let overflow = roster.len() > room_for;
    let listed = if overflow {
        room_for.saturating_sub(1)
    } else {
        roster.len()
    };
    let width = usize::from(area.width);
    for nick in roster.iter().take(listed) {
        let colour = app.nicks.colour(nick);
        let mine = super::app::same_nick(nick, &app.state.nick);
        // A name cut short says so: cut, it would read as another one.
        let mut shown = chatproto::escape_control(nick).into_owned();
        if text_width(&shown) > width {
            shown = cut(&shown, width.saturating_sub(1));
            shown.push('…');
        }
        rows.push(Row::from(spans(&shown, theme.nick(colour, mine))));
    }
    if overflow {
        rows.push(Row::from(Span::styled(
            format!("+{} more", roster.len() - listed),
            theme.quiet(),
        )));
    }
    frame.render_widget(Paragraph::new(rows), area);
}

/// The first of `texts` (longest first) that fits in `width` columns,
/// or the last.
fn fit<const N: usize>(width: usize, texts: [String; N]) -> String {
    let last = texts.len() - 1;
    texts
        .into_iter()
        .enumerate()
        .find(|(i, t)| *i == last || text_width(t.trim_end()) <= width)
        .map(|(_, t)| t)
        .unwrap_or_default()
}

/// `text` cut to at most `width` columns.
fn cut(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    for g in text.graphemes(true) {
        let w = grapheme_width(g);
        if used + w > width {
            break;
        }
        out.push_str(g);
        used += w;
    }
    out
}

/// What the drawing's tests build on: alice's screen in #lobby, drawn
/// to a buffer.
#[cfg(test)]
mod fixture {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::*;
    use crate::render::Line;
    use crate::tui::app::State;
    use crate::tui::theme::Theme;

    pub(super) fn app() -> App {
        let mut app = App::new(Theme { color: false }, false);
        app.set_state(State {
            nick: "alice".into(),
            prompt: "alice #lobby> ".into(),
            current: Some("lobby".into()),
            rooms: vec!["lobby".into(), "ops".into(), "rust".into()],
            roster: vec!["alice".into(), "bob".into()].into(),
            joined: true,
            ..State::default()
        });
        app
    }

    pub(super) fn screen(app: &mut App, w: u16, h: u16) -> Vec<String> {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, app)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..h)
            .map(|y| {
                let mut row = String::new();
                for x in 0..w {
                    row.push_str(buf[(x, y)].symbol());
                }
                row.trim_end().to_owned()
            })
            .collect()
    }

    pub(super) fn msg(room: &str, from: &str, text: &str) -> Line {
        Line::Msg {
            room: Some(room.into()),
            history: false,
            page: false,
            missed: false,
            from: from.into(),
            to: vec![],
            text: text.into(),
            ts: 0,
            place: crate::render::Place::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::tui::app::Sending;
    use crate::tui::draw::fixture::*;

    #[test]
    fn the_layout_at_40_columns() {
        let mut app = app();
        app.add_line(
            msg("lobby", "bob", "hello there alice, this wraps at forty"),
            "12:00".into(),
        );
        app.add_line(msg("rust", "bob", "elsewhere"), "12:00".into());
        let mut state = app.state.clone();
        state.pending = vec![Sending {
            id: String::new(),
            room: "lobby".into(),
            to: vec![],
            text: "mine".into(),
            may_have_arrived: true,
        }];
        app.set_state(state);
        for c in "typing".chars() {
            app.input.insert(c);
        }
        let rows = screen(&mut app, 40, 6);
        assert_eq!(
            rows,
            [
                "",
                "12:00 bob: hello there alice, this wraps",
                "           at forty",
                "--:-- alice: mine",
                " #lobby  #ops  #rust 1         2 online",
                "alice #lobby> typing",
            ]
        );
    }

    #[test]
    fn the_side_list_and_a_narrow_bar() {
        let mut app = app();
        app.show_names = true;
        let rows = screen(&mut app, 50, 5);
        assert!(rows[0].ends_with("2 online"), "{rows:?}");
        assert!(rows[1].ends_with("alice"), "{rows:?}");
        let rows = screen(&mut app, 20, 4);
        assert!(rows[2].starts_with(" #lobby "), "{rows:?}");
        assert!(rows[2].chars().count() <= 20);
    }

    /// A nickname longer than the side list is wide ends with `…`: cut
    /// short silently, it would read as another, shorter one.
    #[test]
    fn a_long_name_in_the_side_list_is_marked_cut() {
        let mut app = app();
        app.show_names = true;
        let long = "abcdefghijklmnopqrstuvwxyz012345";
        let mut state = app.state.clone();
        state.roster = vec!["alice".into(), long.into()].into();
        app.set_state(state);
        let rows = screen(&mut app, 80, 6);
        assert!(rows[1].ends_with(" alice"), "{rows:?}");
        assert!(rows[2].ends_with(" abcdefghijklmnopqrs…"), "{rows:?}");
        assert!(!rows.iter().any(|r| r.contains(long)), "{rows:?}");
    }

    /// F2 in a window too narrow for the list of who is online says so in
    /// the bar (it did nothing, and said nothing).
    #[test]
    fn f2_in_a_narrow_window_says_there_is_no_room_for_the_list() {
        let mut app = app();
        app.show_names = true;
        let rows = screen(&mut app, 34, 5);
        assert!(rows[3].ends_with("F2: too narrow"), "{rows:?}");
        let rows = screen(&mut app, 80, 5);
        assert!(!rows.iter().any(|r| r.contains("too narrow")), "{rows:?}");
        assert!(rows[0].ends_with("2 online"), "{rows:?}");
    }

    /// With several rooms in a window too narrow for their label beside
    /// it, F2's note stays: the rooms left out give up their count first
    /// (the note went, and the bar only showed fewer rooms).
    #[test]
    fn f2_in_a_narrow_window_with_several_rooms_still_says_so() {
        use crate::tui::app::Unread;
        let mut app = app();
        let mut state = app.state.clone();
        state.rooms = ["lobby", "r1", "r2", "r3"].map(String::from).to_vec();
        app.set_state(state);
        let unread = |count, alert| Unread { count, alert };
        app.unread.insert("r2".into(), unread(2, true));
        app.show_names = true;
        let rows = screen(&mut app, 30, 5);
        let bar = &rows[3];
        assert!(bar.ends_with("F2: too narrow"), "{rows:?}");
        assert!(bar.starts_with(" #lobby  +3! "), "{rows:?}");
        assert!(bar.chars().count() <= 30);
    }
}
