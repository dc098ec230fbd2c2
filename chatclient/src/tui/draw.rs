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

use ratatui::layout::Rect;
use ratatui::text::{Line as Row, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::app::App;
use super::format::{entry_height, entry_rows, sending_rows};
use super::wrap::{grapheme_width, spans, text_width};
use crate::session::{grouped, text_bytes};
use unicode_segmentation::UnicodeSegmentation;

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

/// Where a row of the message area comes from: the entry (its index in
/// `app.entries`), which of its rows counted from its last, and how many
/// it has; `None` for our messages still being sent.
type Place = Option<(usize, usize, usize)>;

/// Rows of the current room at a width, counted from the bottom.
#[derive(Default)]
struct Bottom {
    /// The rows asked for, newest first, and where each comes from.
    rows: Vec<(Row<'static>, Place)>,
    /// The rows counted: up to one past those asked for, fewer at the
    /// top.
    counted: usize,
    /// Entries wholly below the rows asked for that may be new lines
    /// ([`super::app::Entry::may_be_new`]).
    news_under: usize,
}

/// The current room's rows at `width`, newest first (our messages still
/// being sent, then the entries): `take` of them from `skip` rows above
/// the bottom, laid out. Those below are counted ([`entry_height`]: each
/// entry laid out once for a width), not laid out again: a draw far back
/// costs about what it shows, and a pass of counts.
fn bottom_rows(app: &mut App, width: usize, skip: usize, take: usize) -> Bottom {
    let mut got = Bottom::default();
    let theme = app.theme;
    let current = app.state.current.clone();
    let stop = skip.saturating_add(take).saturating_add(1);
    let keep = |got: &mut Bottom, rows: Vec<Row<'static>>, at: Option<usize>| {
        let n = rows.len();
        for (up, row) in rows.into_iter().rev().enumerate() {
            let i = got.counted + up;
            if i >= skip && i - skip < take {
                got.rows.push((row, at.map(|at| (at, up, n))));
            }
        }
        got.counted += n;
    };
    // Our messages still being sent are the newest.
    for r in sendings(app, width) {
        keep(&mut got, r, None);
    }
    for (at, entry) in app.entries.iter().enumerate().rev() {
        if got.counted >= stop {
            break;
        }
        if !super::app::shown_in(entry, &current) {
            continue;
        }
        let n = entry_height(entry, theme, &mut app.nicks, width);
        if got.counted + n <= skip {
            got.counted += n;
            got.news_under += usize::from(entry.may_be_new());
        } else {
            keep(
                &mut got,
                entry_rows(entry, theme, &mut app.nicks, width),
                Some(at),
            );
        }
    }
    got
}

/// The rows at `width` below the entry `at` (an index in `app.entries`)
/// and its own, if it is shown.
fn rows_under(app: &mut App, width: usize, at: usize) -> Option<(usize, usize)> {
    let mut under: usize = sendings(app, width).iter().map(Vec::len).sum();
    let (theme, current) = (app.theme, app.state.current.clone());
    for (i, e) in app.entries.iter().enumerate().rev() {
        if !super::app::shown_in(e, &current) {
            continue;
        }
        let n = entry_height(e, theme, &mut app.nicks, width);
        if i == at {
            return Some((under, n));
        }
        under += n;
    }
    None
}

/// Our messages still being sent shown in the current room, newest first,
/// as rows at `width`: lines typed that the session has not taken yet,
/// then those it sent.
fn sendings(app: &mut App, width: usize) -> Vec<Vec<Row<'static>>> {
    let current = app.state.current.clone();
    let waiting = app.waiting_messages();
    // Each in its own room's view, as the entries.
    waiting
        .iter()
        .rev()
        .chain(app.state.pending.iter().rev())
        .filter(|s| current.as_ref().is_none_or(|c| *c == s.room))
        .map(|s| sending_rows(s, &app.state.nick, app.theme, &mut app.nicks, width))
        .collect()
}

/// The scroll that keeps the text read at the bottom of the view when
/// the message area goes from `from` columns to `to` (the terminal was
/// resized, or the list of names shown or hidden): the same entry, as
/// far up its rows (which may now be more or fewer) as it was.
fn same_text_at(app: &mut App, from: usize, to: usize) -> usize {
    let read = bottom_rows(app, from, app.scroll, 1);
    let Some(&(_, Some((entry, up, n)))) = read.rows.first() else {
        return app.scroll;
    };
    let Some((last, now)) = rows_under(app, to, entry) else {
        return app.scroll;
    };
    last + up * now / n.max(1)
}

/// The current room's lines, newest at the bottom, `app.scroll` rows back.
fn draw_messages(frame: &mut Frame<'_>, app: &mut App, area: Rect) {
    let width = usize::from(area.width);
    let height = usize::from(area.height);
    let want = app.scroll.saturating_add(height);
    // One row more than the view needs: whether there is one above it.
    let mut got = bottom_rows(app, width, app.scroll, height);
    app.at_top = got.counted <= want;
    // Not further back than the oldest line.
    let most = got.counted.saturating_sub(height);
    if app.scroll > most {
        app.scroll = most;
        got = bottom_rows(app, width, app.scroll, height);
    }
    if app.scroll == 0 {
        app.new_below = 0;
    }
    app.new_below_at_most(got.news_under);
    let mut shown: Vec<Row<'static>> = got.rows.into_iter().map(|(row, _)| row).collect();
    shown.reverse();
    // Newest at the bottom: an area not yet full is filled from there.
    let top = area.y + area.height - shown.len() as u16;
    let rect = Rect {
        y: top,
        height: shown.len() as u16,
        ..area
    };
    frame.render_widget(Paragraph::new(shown), rect);
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

/// `#lobby  #rust 3  #ops 1!     reconnecting  3 online`
fn draw_status(frame: &mut Frame<'_>, app: &App, area: Rect, names_hidden: bool) {
    let theme = app.theme;
    let width = usize::from(area.width);
    let current = match &app.state.current {
        Some(room) => format!(" #{room} "),
        None => " no room ".to_owned(),
    };
    // Each other room's label, whether it mentions us, and its unread
    // count, in the order Ctrl-N goes through them: the one next to the
    // current room is the next, the last one the previous (Ctrl-P).
    let rooms = &app.state.rooms;
    let at = app
        .state
        .current
        .as_ref()
        .and_then(|c| rooms.iter().position(|r| r == c))
        .map_or(0, |at| at + 1);
    let mut others: Vec<(String, bool, usize)> = Vec::new();
    for room in rooms[at..].iter().chain(&rooms[..at]) {
        if Some(room) == app.state.current.as_ref() {
            continue;
        }
        let unread = app.unread.get(room).copied().unwrap_or_default();
        let mut label = format!(" #{room}");
        if unread.count > 0 {
            label.push_str(&format!(" {}", unread.count));
        }
        if unread.alert {
            label.push('!');
        }
        label.push(' ');
        others.push((label, unread.alert, unread.count));
    }
    let mut state = Vec::new();
    if !app.state.joined {
        state.push("reconnecting".to_owned());
    }
    if app.quitting {
        state.push("leaving".to_owned());
    }
    if names_hidden {
        state.push("F2: too narrow".to_owned());
    }
    if app.scroll > 0 {
        state.push(if app.new_below > 0 {
            format!("{} new below", app.new_below)
        } else {
            "more below".to_owned()
        });
    }

    // What does not fit goes, least news first: rooms where nothing
    // happened, the number online, rooms with unread lines, rooms that
    // mention us, and last the state.
    let right_of = |state: &[String], online: bool| {
        let mut parts = state.to_vec();
        if online {
            parts.extend(Some(format!("{} online", app.state.roster.len())));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" {} ", parts.join("  "))
        }
    };
    // The number online is not known while reconnecting.
    let mut show_online = app.state.joined;
    let mut right = right_of(&state, show_online);
    // The rooms left out, as one label: how many, and what they hold
    // unread (`+3 2!`: three rooms, two messages, one mentions us).
    let more = |hidden: usize, unread: usize, alert: bool| {
        if hidden == 0 {
            return String::new();
        }
        let mut label = format!(" +{hidden}");
        if unread > 0 {
            label.push_str(&format!(" {unread}"));
        }
        if alert {
            label.push('!');
        }
        label.push(' ');
        label
    };
    let total = |others: &[(String, bool, usize)], right: &str, more: &str| {
        text_width(&current)
            + others.iter().map(|(l, ..)| text_width(l)).sum::<usize>()
            + text_width(more)
            + text_width(right)
    };
    let (mut hidden, mut hidden_unread, mut hidden_alert) = (0, 0, false);
    loop {
        if total(&others, &right, &more(hidden, hidden_unread, hidden_alert)) <= width {
            break;
        }
        // The first is the room Ctrl-N goes to: it stays while any other
        // can go.
        let rest = others.get(1..).unwrap_or_default();
        let quiet = rest
            .iter()
            .rposition(|(l, alert, _)| !alert && !l.trim().contains(' '))
            .map(|at| at + 1);
        let unread = rest
            .iter()
            .rposition(|(_, alert, _)| !alert)
            .map(|at| at + 1);
        let drop = if let Some(at) = quiet {
            Some(at)
        } else if show_online {
            show_online = false;
            right = right_of(&state, show_online);
            None
        } else if let Some(at) = unread {
            Some(at)
        } else if !others.is_empty() {
            Some(others.len() - 1)
        } else {
            // Only the label of the rooms left out is left: it gives up
            // its count and number (below) before the state goes.
            let shortest = if hidden > 0 {
                1 + usize::from(hidden_alert)
            } else {
                0
            };
            if total(&others, &right, "") + shortest > width {
                right.clear();
            }
            break;
        };
        if let Some(at) = drop {
            let (_, alert, count) = others.remove(at);
            hidden += 1;
            hidden_unread += count;
            hidden_alert |= alert;
        }
    }
    if hidden > 0 {
        // In a window too narrow for it, the label gives up its unread
        // count, then its number, before anything would be cut.
        let room = width.saturating_sub(total(&others, &right, ""));
        let mark = if hidden_alert { "!" } else { "" };
        let label = [
            more(hidden, hidden_unread, hidden_alert),
            format!(" +{hidden}{mark} "),
            format!("+{mark}"),
        ]
        .into_iter()
        .find(|l| text_width(l) <= room)
        .unwrap_or_default();
        others.push((label, hidden_alert, 0));
    }
    let mut row = spans(&current, theme.bar_current());
    for (label, alert, _) in &others {
        let style = if *alert {
            theme.bar_alert()
        } else {
            theme.bar()
        };
        row.extend(spans(label, style));
    }
    let used = total(&others, &right, "");
    row.push(Span::styled(
        " ".repeat(width.saturating_sub(used)),
        theme.bar(),
    ));
    row.push(Span::styled(right, theme.bar()));
    frame.render_widget(Paragraph::new(Row::from(row)), area);
}

/// The prompt and the line being typed, or a question or hint in its place.
fn draw_input(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let theme = app.theme;
    let width = usize::from(area.width);
    let hint = |text: String| Row::from(Span::styled(text, theme.hint()));
    let (row, cursor) = if let Some(q) = &app.paste {
        let n = q.lines.len();
        let text = fit(
            width,
            [
                format!("send the {n} pasted lines as {n} messages? y/n "),
                format!("send {n} lines? y/n "),
                "y/n ".to_owned(),
            ],
        );
        let col = text_width(&text);
        (hint(text), col)
    } else if app.quitting {
        let n = app.state.pending.len();
        let text = if n > 0 {
            let long = format!(
                "leaving once the server has answered {n} message{}; Ctrl-C leaves now",
                if n == 1 { "" } else { "s" }
            );
            let short = "leaving; Ctrl-C leaves now".to_owned();
            fit(width, [long, short, "Ctrl-C leaves now".to_owned()])
        } else {
            "leaving".to_owned()
        };
        (hint(text), 0)
    } else {
        // A line too long to send is marked before Enter refuses it.
        let bytes = text_bytes(app.input.text());
        let max = app.state.max_text;
        let over = (max > 0 && bytes > max)
            .then(|| format!("[too long: {}/{}] ", grouped(bytes), grouped(max)));
        // Figures cut short would be wrong ones: without room, less.
        let over = over
            .map(|o| {
                if text_width(&o) <= width / 2 {
                    o
                } else {
                    cut("[too long] ", width / 2)
                }
            })
            .unwrap_or_default();
        let prompt = short_prompt(&app.state.prompt, width / 2);
        let prompt_width = text_width(&over) + text_width(&prompt);
        let (text, col) = app.input.visible(width.saturating_sub(prompt_width));
        let mut row = spans(&over, theme.error());
        row.extend(spans(&prompt, theme.prompt()));
        let mut cursor = prompt_width + col;
        if text.is_empty() && app.ctrl_c_armed {
            const AGAIN: &str = "Ctrl-C again to leave";
            if prompt_width + AGAIN.len() > width {
                // Without room for both, the hint rather than the prompt.
                row.clear();
                cursor = 0;
            }
            row.push(Span::styled(AGAIN, theme.hint()));
        } else {
            row.extend(spans(&text, ratatui::style::Style::default()));
        }
        (Row::from(row), cursor)
    };
    frame.render_widget(Paragraph::new(row), area);
    let x = area.x + (cursor.min(width.saturating_sub(1)) as u16);
    frame.set_cursor_position((x, area.y));
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

/// The prompt (`alice #rust> `, `alice #rust -> bob> `) in at most
/// `width` columns: whole, or without the nickname, or cut short and
/// ended with `…> `, so that the line typed never runs into it.
fn short_prompt(prompt: &str, width: usize) -> String {
    if text_width(prompt) <= width {
        return prompt.to_owned();
    }
    let room = prompt.find(" #").map_or(prompt, |i| &prompt[i + 1..]);
    if text_width(room) <= width {
        return room.to_owned();
    }
    const END: &str = "…> ";
    let end_width = text_width(END);
    if width <= end_width {
        return cut(prompt, width);
    }
    let mut short = cut(room.trim_end_matches("> "), width - end_width);
    short.push_str(END);
    short
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

#[cfg(test)]
mod tests {
    use super::super::app::test_lines::{missing_at, placed_in, rng};
    use super::super::app::{Sending, State};
    use super::super::theme::Theme;
    use super::*;
    use crate::render::Line;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use unicode_width::UnicodeWidthStr;

    fn app() -> App {
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

    fn screen(app: &mut App, w: u16, h: u16) -> Vec<String> {
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

    fn msg(room: &str, from: &str, text: &str) -> Line {
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

    #[test]
    fn a_line_too_long_to_send_is_marked_while_typed() {
        let mut app = app();
        let mut state = app.state.clone();
        state.max_text = 12;
        app.set_state(state);
        for c in "short".chars() {
            app.input.insert(c);
        }
        assert_eq!(screen(&mut app, 60, 3)[2], "alice #lobby> short");
        // Thirteen characters, fourteen bytes as sent (the quote escaped).
        for c in " \"quoted".chars() {
            app.input.insert(c);
        }
        assert_eq!(
            screen(&mut app, 60, 3)[2],
            "[too long: 14/12] alice #lobby> short \"quoted"
        );
    }

    /// What the input row asks or says instead of the line (a long
    /// paste's question, leaving, Ctrl-C armed) keeps the keys that
    /// answer it in a narrow terminal: cut, the question lost its `y/n`
    /// and the others their Ctrl-C.
    #[test]
    fn the_input_rows_questions_keep_their_keys_when_narrow() {
        use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
        let mut app = app();
        app.handle_event(Event::Paste("1\n2\n3\n4\n5\n6\n7\n".into()));
        let wide = screen(&mut app, 60, 3)[2].clone();
        assert_eq!(wide, "send the 7 pasted lines as 7 messages? y/n");
        let row = screen(&mut app, 24, 3)[2].clone();
        assert!(row.ends_with("y/n"), "{row:?}");
        app.handle_event(Event::Key(KeyEvent::new(
            KeyCode::Char('n'),
            KeyModifiers::NONE,
        )));

        app.handle_event(Event::Key(KeyEvent::new(
            KeyCode::Char('c'),
            KeyModifiers::CONTROL,
        )));
        let wide = screen(&mut app, 60, 3)[2].clone();
        assert_eq!(wide, "alice #lobby> Ctrl-C again to leave");
        let row = screen(&mut app, 24, 3)[2].clone();
        assert!(row.ends_with("Ctrl-C again to leave"), "{row:?}");

        let mut state = app.state.clone();
        let sending = |text: &str| Sending {
            room: "lobby".into(),
            to: vec![],
            text: text.into(),
        };
        state.pending = vec![sending("one"), sending("two")];
        app.set_state(state);
        app.quitting = true;
        let wide = screen(&mut app, 80, 3)[2].clone();
        assert_eq!(
            wide,
            "leaving once the server has answered 2 messages; Ctrl-C leaves now"
        );
        let row = screen(&mut app, 30, 3)[2].clone();
        assert!(row.ends_with("Ctrl-C leaves now"), "{row:?}");
    }

    /// In a narrow terminal the mark with its figures does not fit its
    /// half of the row: cut, it read `[too long: 66,000/64` (a limit of
    /// 64?) and ran into the prompt. It says less instead, whole.
    #[test]
    fn a_too_long_mark_that_does_not_fit_says_less() {
        let mut app = app();
        let mut state = app.state.clone();
        state.max_text = 64_867;
        app.set_state(state);
        for _ in 0..66_000 {
            app.input.insert('x');
        }
        assert!(
            screen(&mut app, 60, 3)[2].starts_with("[too long: 66,000/64,867] alice #lobby> …x")
        );
        let row = screen(&mut app, 40, 3)[2].clone();
        assert!(row.starts_with("[too long] alice #lobby> …x"), "{row:?}");
        let row = screen(&mut app, 16, 3)[2].clone();
        assert!(row.starts_with("[too lo"), "{row:?}");
    }

    /// Narrow, the prompt lost its end and the line typed ran into it
    /// (`alice #rusyped line`). It says less, and ends as a prompt.
    #[test]
    fn a_narrow_prompt_says_less_and_still_ends_as_one() {
        let mut app = app();
        for c in "half typed line".chars() {
            app.input.insert(c);
        }
        assert_eq!(screen(&mut app, 40, 3)[2], "alice #lobby> half typed line");
        // Half of 20 columns: the room without the nickname.
        assert_eq!(screen(&mut app, 20, 3)[2], "#lobby> …typed line");
        // Half of 12: the room cut short, still a prompt.
        assert_eq!(screen(&mut app, 12, 3)[2], "#lo…> …line");
        assert_eq!(short_prompt("alice #rust -> bob> ", 16), "#rust -> bob> ");
        assert_eq!(short_prompt("alice #rust -> bob> ", 10), "#rust -…> ");
        assert_eq!(short_prompt("alice> ", 6), "ali…> ");
        assert_eq!(short_prompt("alice> ", 3), "ali");
    }

    /// A line longer than the input row scrolled sideways with no sign
    /// of what it hid: the row read as the whole line. `…` marks the
    /// edge where text is hidden.
    #[test]
    fn a_long_input_line_marks_the_edge_where_text_is_hidden() {
        let mut app = app();
        for c in "START-0123456789-END".chars() {
            app.input.insert(c);
        }
        assert_eq!(
            screen(&mut app, 40, 3)[2],
            "alice #lobby> START-0123456789-END"
        );
        assert_eq!(screen(&mut app, 30, 3)[2], "alice #lobby> …0123456789-END");
        app.input.home();
        assert_eq!(screen(&mut app, 30, 3)[2], "alice #lobby> START-012345678…");
    }

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
            room: "lobby".into(),
            to: vec![],
            text: "mine".into(),
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

    /// Lines the session has not taken yet (it reads no more while many
    /// messages wait for the server) are shown as waiting, not lost from
    /// sight; a command among them is not a message.
    #[test]
    fn lines_not_taken_yet_show_as_waiting() {
        let mut app = app();
        let mut state = app.state.clone();
        state.pending = vec![Sending {
            room: "lobby".into(),
            to: vec![],
            text: "taken".into(),
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
        use super::super::format::LAID_OUT;
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
            room: "lobby".into(),
            to: vec![],
            text: text.into(),
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

    #[test]
    fn reconnecting_says_no_number_online() {
        let mut app = app();
        app.show_names = true;
        let mut state = app.state.clone();
        state.joined = false;
        app.set_state(state);
        let rows = screen(&mut app, 60, 5);
        let bar = rows
            .iter()
            .find(|r| r.contains("#lobby"))
            .expect("a status bar");
        assert!(bar.ends_with("reconnecting"), "{rows:?}");
        assert!(!rows.iter().any(|r| r.contains("2 online")), "{rows:?}");
        assert!(rows[0].ends_with("was online"), "{rows:?}");
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

    /// The bar lists the other rooms in the order Ctrl-N takes them: the
    /// next one beside the current room, the previous one last.
    #[test]
    fn the_bar_lists_rooms_in_the_order_ctrl_n_goes() {
        let mut app = app();
        let mut state = app.state.clone();
        state.rooms = ["aaa", "lobby", "mid", "zeta"].map(String::from).to_vec();
        state.current = Some("mid".into());
        app.set_state(state);
        let rows = screen(&mut app, 60, 4);
        assert!(
            rows[2].starts_with(" #mid  #zeta  #aaa  #lobby "),
            "{rows:?}"
        );
        app.handle_event(crossterm::event::Event::Key(
            crossterm::event::KeyEvent::new(
                crossterm::event::KeyCode::Char('n'),
                crossterm::event::KeyModifiers::CONTROL,
            ),
        ));
        assert_eq!(
            app.take_effects(),
            [crate::tui::app::Effect::Send("/join zeta".into())]
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

    /// In a narrow bar the room Ctrl-N goes to is the last to be left
    /// out: rooms with unread lines after it go first.
    #[test]
    fn a_narrow_bar_keeps_the_next_room() {
        use crate::tui::app::Unread;
        let mut app = app();
        let mut state = app.state.clone();
        state.rooms = ["alpha", "delta", "gamma", "lobby", "zeta"]
            .map(String::from)
            .to_vec();
        state.current = Some("delta".into());
        app.set_state(state);
        app.unread.insert(
            "lobby".into(),
            Unread {
                count: 1,
                alert: false,
            },
        );
        app.unread.insert(
            "alpha".into(),
            Unread {
                count: 1,
                alert: false,
            },
        );
        let rows = screen(&mut app, 40, 4);
        assert!(rows[2].starts_with(" #delta  #gamma "), "{rows:?}");
    }

    /// Rooms left out of a narrow bar still say what they hold unread.
    #[test]
    fn rooms_left_out_of_the_bar_say_their_unread() {
        use crate::tui::app::Unread;
        let mut app = app();
        let mut state = app.state.clone();
        state.rooms = ["lobby", "alpha", "beta", "gamma", "delta"]
            .map(String::from)
            .to_vec();
        app.set_state(state);
        let unread = |count, alert| Unread { count, alert };
        app.unread.insert("alpha".into(), unread(1, true));
        app.unread.insert("beta".into(), unread(2, false));
        app.unread.insert("gamma".into(), unread(3, false));
        let rows = screen(&mut app, 80, 4);
        assert!(rows[2].contains("#beta 2"), "{rows:?}");
        let rows = screen(&mut app, 30, 4);
        let bar = &rows[2];
        assert!(bar.contains("#alpha 1!"), "{rows:?}");
        assert!(bar.ends_with("+3 5"), "{rows:?}");
        assert!(bar.chars().count() <= 30);
    }

    /// In a window too narrow for the label of the rooms left out, it
    /// gives up its unread count, then its number, keeping the `!` of a
    /// mention: cut, `+1 11!` read `+1 1`, a count that was not there.
    #[test]
    fn the_label_of_rooms_left_out_is_never_cut() {
        use crate::tui::app::Unread;
        let mut app = app();
        let mut state = app.state.clone();
        state.rooms = ["lobby", "rust"].map(String::from).to_vec();
        app.set_state(state);
        app.unread.insert(
            "rust".into(),
            Unread {
                count: 11,
                alert: true,
            },
        );
        for (width, end) in [(18, "+1 11!"), (13, "+1!"), (10, "+!")] {
            let rows = screen(&mut app, width, 4);
            let bar = &rows[2];
            assert!(bar.ends_with(end), "{width}: {rows:?}");
        }
    }

    /// A page (of the older history above the view, or of a history
    /// begun anew below it, lines wrapping, other rooms between) leaves
    /// the scrolled-back view on what it shows.
    #[test]
    fn pages_keep_a_scrolled_back_view_on_what_it_shows() {
        let placed =
            |room: &str, text: String, era, seq, page| placed_in(room, &text, era, seq, page);
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
}
