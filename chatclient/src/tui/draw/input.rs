//! The input line: the prompt (shortened when narrow), the text around
//! the cursor with marks where it is hidden, a line too long to send
//! marked as it is typed, and a paste's question.

use super::*;

/// The prompt and the line being typed, or a question or hint in its place.
pub(super) fn draw_input(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let theme = app.theme;
    let width = usize::from(area.width);
    let hint = |text: String| Row::from(Span::styled(text, theme.hint()));
    let (row, cursor) = if let Some(q) = &app.paste {
        let n = q.lines.len();
        let text = fit(
            width,
            [
                format!(
                    "send the {n} pasted lines as {n} messages? y or Enter: send, n or Esc: drop "
                ),
                format!("send {n} lines? y/Enter: send, n/Esc: drop "),
                format!("send {n} lines? y/Enter, n/Esc "),
                "y/Enter, n/Esc ".to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::Sending;
    use crate::tui::draw::fixture::*;

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
        // The keys that answer are all said: Enter sends too, Esc drops.
        let wide = screen(&mut app, 80, 3)[2].clone();
        assert_eq!(
            wide,
            "send the 7 pasted lines as 7 messages? y or Enter: send, n or Esc: drop"
        );
        let row = screen(&mut app, 44, 3)[2].clone();
        assert_eq!(row, "send 7 lines? y/Enter: send, n/Esc: drop");
        let row = screen(&mut app, 24, 3)[2].clone();
        assert!(row.ends_with("y/Enter, n/Esc"), "{row:?}");
        let row = screen(&mut app, 10, 3)[2].clone();
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
            id: String::new(),
            room: "lobby".into(),
            to: vec![],
            text: text.into(),
            may_have_arrived: true,
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
}
