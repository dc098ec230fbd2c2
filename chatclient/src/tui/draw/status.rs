//! The status bar: the current room and who is in it, the other rooms
//! in the order Ctrl-N goes with their unread counts and mentions, and
//! what is going on (reconnecting, lines waiting long for the server,
//! scrolled back); fitted
//! to a narrow window by saying less, never by cutting the next room.

use super::*;

/// `#lobby  #rust 3  #ops 1!     reconnecting  3 online`
pub(super) fn draw_status(frame: &mut Frame<'_>, app: &App, area: Rect, names_hidden: bool) {
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
    state.extend(app.waiting_note());
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
    // The number online is not known while reconnecting, nor in a room
    // whose entering the server has not answered yet.
    let entering = app
        .state
        .current
        .as_ref()
        .is_some_and(|c| app.state.entering.contains(c));
    let mut show_online = app.state.joined && !entering;
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

#[cfg(test)]
mod tests {
    use crate::tui::draw::fixture::*;

    /// The status bar among `rows` (the row naming #lobby).
    fn lobby_bar(rows: &[String]) -> &str {
        rows.iter()
            .find(|r| r.contains("#lobby"))
            .expect("a status bar")
    }

    #[test]
    fn reconnecting_says_no_number_online() {
        let mut app = app();
        app.show_names = true;
        let mut state = app.state.clone();
        state.joined = false;
        app.set_state(state);
        let rows = screen(&mut app, 60, 5);
        let bar = lobby_bar(&rows);
        assert!(bar.ends_with("reconnecting"), "{rows:?}");
        assert!(!rows.iter().any(|r| r.contains("2 online")), "{rows:?}");
        assert!(rows[0].ends_with("was online"), "{rows:?}");
    }

    /// A room asked for and not entered yet has no number online (it
    /// said `0 online` until the server answered).
    #[test]
    fn a_room_being_entered_says_no_number_online() {
        let mut app = app();
        let mut state = app.state.clone();
        state.entering = vec!["lobby".into()];
        app.set_state(state);
        let rows = screen(&mut app, 60, 5);
        let bar = lobby_bar(&rows);
        assert!(!bar.contains("online"), "{rows:?}");
        let mut state = app.state.clone();
        state.entering.clear();
        app.set_state(state);
        let rows = screen(&mut app, 60, 5);
        assert!(rows.iter().any(|r| r.contains("2 online")), "{rows:?}");
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
}
