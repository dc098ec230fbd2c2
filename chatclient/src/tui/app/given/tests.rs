//! The tests of `given.rs`.

use crossterm::event::KeyCode;

use super::*;
use crate::tui::app::fixture::*;

/// Typing on at once after sending, before the refused line came
/// back into the input: the keys joined it ("hello" + "how").
/// It is kept for Up, and said. Keys typed later than that edit it:
/// they were typed with it in sight.
#[test]
fn keys_typed_as_a_refused_line_comes_back_do_not_join_it() {
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let mut app = self::app();
    for line in ["hello", "second"] {
        type_str(&mut app, line);
        app.handle_event(key(KeyCode::Enter));
    }
    app.refused(1);
    app.drawn(ms(0));
    assert_eq!(app.input.text(), "hello", "back in the empty input");
    // Scrolling is not typing: it leaves the line there.
    app.handle_term(key(KeyCode::PageUp), ms(10));
    assert_eq!(app.input.text(), "hello");
    for (i, c) in "how".chars().enumerate() {
        app.handle_term(key(KeyCode::Char(c)), ms(20 + i as u64));
    }
    assert_eq!(app.input.text(), "how");
    let said = |app: &App| -> Vec<String> {
        app.entries
            .iter()
            .filter_map(|e| match &e.line {
                Line::Info(text) => Some(text.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(said(&app), ["not sent; Up brings it back: hello"]);
    app.handle_event(key(KeyCode::Up));
    assert_eq!(app.input.text(), "hello", "the first one Up brings back");
    app.handle_event(key(KeyCode::Down));
    assert_eq!(app.input.text(), "how");

    // Typed after a second with the line in sight: it is mended.
    app.handle_event(ctrl('u'));
    type_str(&mut app, "again");
    app.handle_event(key(KeyCode::Enter));
    app.refused(3);
    app.drawn(ms(5_000));
    app.handle_term(key(KeyCode::Char('!')), ms(6_000));
    assert_eq!(app.input.text(), "again!");
    assert_eq!(said(&app).len(), 1);
}

/// A message the server refused comes back into the input, to be
/// mended, unless something is being typed there.
#[test]
fn a_refused_message_comes_back_into_an_empty_input() {
    let mut app = self::app();
    for line in ["hello", "@zed hi there", "@nobody else"] {
        type_str(&mut app, line);
        app.handle_event(key(KeyCode::Enter));
    }
    assert_eq!(app.take_effects().len(), 3);
    assert!(app.input.is_empty());
    app.refused(2);
    assert_eq!(app.input.text(), "@zed hi there");
    // Being typed: left as it is; Up brings it back first.
    app.refused(3);
    assert_eq!(app.input.text(), "@zed hi there");
    app.handle_event(key(KeyCode::Up));
    assert_eq!(app.input.text(), "@nobody else");
    // A line it does not know (or already put back): nothing.
    app.input.clear();
    app.refused(2);
    app.refused(9);
    assert!(app.input.is_empty());
}

/// A message given up unconfirmed after a lost session comes back
/// into an empty input, to be sent again if it did not arrive; with
/// something being typed, Up brings it, and the note says what
/// became of it (not "not sent": it may have arrived).
#[test]
fn an_unconfirmed_message_comes_back_to_be_sent_again() {
    let mut app = self::app();
    for line in ["@bob secret", "hello all"] {
        type_str(&mut app, line);
        app.handle_event(key(KeyCode::Enter));
    }
    app.take_effects();
    app.unconfirmed(1);
    assert_eq!(app.input.text(), "@bob secret");
    app.unconfirmed(2);
    assert_eq!(app.input.text(), "@bob secret");
    let said: Vec<String> = (app.entries.iter())
        .filter_map(|e| match &e.line {
            Line::Info(text) => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(said, ["not confirmed; Up brings it back: hello all"]);
    app.handle_event(key(KeyCode::Up));
    assert_eq!(app.input.text(), "hello all");
}

/// "hello" sent, refused and put back into the input, drawn at
/// `t0`.
fn refused_hello(t0: Instant) -> App {
    let mut app = self::app();
    type_str(&mut app, "hello");
    app.handle_event(key(KeyCode::Enter));
    app.take_effects();
    app.refused(1);
    app.drawn(t0);
    assert_eq!(app.input.text(), "hello");
    app
}

/// The notes saying a refused line is kept for Up.
fn not_sent_notes(app: &App) -> Vec<&Entry> {
    app.entries
        .iter()
        .filter(|e| matches!(&e.line, Line::Info(t) if t.starts_with("not sent")))
        .collect()
}

/// Ctrl-N (a room switch, no edit) just after a refused line came
/// back took it out of the input.
#[test]
fn a_room_switch_as_a_refused_line_comes_back_leaves_it_in_the_input() {
    let t0 = Instant::now();
    let mut app = refused_hello(t0);
    app.handle_term(ctrl('n'), t0 + Duration::from_millis(100));
    assert_eq!(app.input.text(), "hello", "Ctrl-N does not edit the input");
    assert_eq!(app.take_effects(), [Effect::Send("/join rust".into())]);
    assert!(not_sent_notes(&app).is_empty());
}

/// Ctrl-D just after a refused line came back emptied the line and
/// then, on the empty line, ended the client: the refused line, in
/// sight in the input, was lost with it.
#[test]
fn ctrl_d_as_a_refused_line_comes_back_does_not_end_the_client() {
    let t0 = Instant::now();
    let mut app = refused_hello(t0);
    app.handle_term(ctrl('d'), t0 + Duration::from_millis(300));
    assert!(
        !app.take_effects().contains(&Effect::End),
        "Ctrl-D on the line shown ended the client; input {:?}",
        app.input.text()
    );
    assert_eq!(app.input.text(), "hello");
}

/// Ctrl-C just after a refused line came back took it out, and a
/// second Ctrl-C on the empty line armed leaving (a third left):
/// twice left at once. It clears the line as on any line typed.
#[test]
fn ctrl_c_as_a_refused_line_comes_back_clears_it_as_any_line() {
    let t0 = Instant::now();
    let mut app = refused_hello(t0);
    app.handle_term(ctrl('c'), t0 + Duration::from_millis(100));
    assert!(app.input.is_empty());
    assert!(!app.ctrl_c_armed, "the line was cleared, not leaving");
    app.handle_term(ctrl('c'), t0 + Duration::from_millis(200));
    assert!(app.take_effects().is_empty(), "left at the second Ctrl-C");
    assert!(not_sent_notes(&app).is_empty());
}

/// Up just after a refused line came back brought the line straight
/// back, yet a note said it was not in the input.
#[test]
fn up_as_a_refused_line_comes_back_says_no_note() {
    let t0 = Instant::now();
    let mut app = refused_hello(t0);
    app.handle_term(key(KeyCode::Up), t0 + Duration::from_millis(100));
    assert_eq!(app.input.text(), "hello");
    assert_eq!(
        not_sent_notes(&app).len(),
        0,
        "a note for a line that is in the input"
    );
}

/// Left or Home just after a refused line came back emptied it. They
/// move the cursor on it, and what is typed next edits it (the
/// cursor moved: it was seen).
#[test]
fn moving_the_cursor_as_a_refused_line_comes_back_keeps_it_to_edit() {
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    for (moves, edited) in [
        (&[key(KeyCode::Left)][..], "hellxo"),
        (&[key(KeyCode::Home)][..], "xhello"),
        (&[ctrl('a'), ctrl('e')][..], "hellox"),
    ] {
        let mut app = refused_hello(t0);
        for (i, m) in moves.iter().enumerate() {
            app.handle_term(m.clone(), ms(50 + i as u64));
            assert_eq!(app.input.text(), "hello", "{m:?}");
        }
        app.handle_term(key(KeyCode::Char('x')), ms(100));
        assert_eq!(app.input.text(), edited);
        assert!(not_sent_notes(&app).is_empty());
    }
}

/// The window starts when the line is drawn: keys handled before that
/// draw were typed before it could be seen, however late they are
/// handled; after it, those within a second.
#[test]
fn a_refused_line_is_seen_once_drawn() {
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let mut app = self::app();
    type_str(&mut app, "hello");
    app.handle_event(key(KeyCode::Enter));
    app.refused(1);
    app.handle_term(key(KeyCode::Char('h')), ms(3_000));
    assert_eq!(app.input.text(), "h", "typed before the draw");
    assert_eq!(not_sent_notes(&app).len(), 1);

    for (typed_at, input) in [(900, "x"), (1_000, "hellox")] {
        let mut app = refused_hello(ms(5_000));
        app.handle_term(key(KeyCode::Char('x')), ms(5_000 + typed_at));
        assert_eq!(app.input.text(), input, "{typed_at} ms after the draw");
    }
}

/// Ctrl-N, then a key typed on (to the room switched to) before the
/// refused line could be seen: the note was filed in the room left,
/// the switch not taken yet, and in the room switched to the line
/// was gone without a word.
#[test]
fn the_note_of_a_refused_line_is_said_in_the_room_switched_to() {
    let t0 = Instant::now();
    let mut app = refused_hello(t0);
    app.handle_term(ctrl('n'), t0 + Duration::from_millis(100));
    app.handle_term(key(KeyCode::Char('x')), t0 + Duration::from_millis(150));
    assert_eq!(app.input.text(), "x");
    let mut st = app.state.clone();
    st.current = Some("rust".into());
    app.set_state(st);
    let current = app.state.current.clone();
    let seen = not_sent_notes(&app)
        .into_iter()
        .any(|e| super::shown_in(e, &current));
    assert!(
        seen,
        "input {:?}; the note is not in #rust's view",
        app.input.text()
    );
}

/// "hello" typed, then `/join ops`, then "draft" in the input; and the
/// session's state once it has taken both lines, #ops being entered
/// (for the test to give the app when it wants).
fn a_line_behind_a_join() -> (App, State) {
    let mut app = self::app();
    type_str(&mut app, "hello");
    app.handle_event(key(KeyCode::Enter));
    type_str(&mut app, "/join ops");
    app.handle_event(key(KeyCode::Enter));
    type_str(&mut app, "draft");
    let mut st = app.state.clone();
    st.lines_taken = 2;
    st.current = Some("ops".into());
    st.rooms.push("ops".into());
    st.entering.push("ops".into());
    (app, st)
}

/// A refused line kept for Up while a `/join` of a room not entered
/// yet waited to be taken, or to be answered: its note went to that
/// room, and when the server would not let us in, the room was never
/// shown, nor the note. It is moved to the room current then; in the
/// room entered it stays.
#[test]
fn the_note_of_a_refused_line_is_seen_when_the_join_ahead_is_refused() {
    for (taken, refused) in [(false, true), (true, true), (false, false), (true, false)] {
        let case = format!("join taken first: {taken}; refused: {refused}");
        let (mut app, mut st) = a_line_behind_a_join();
        if taken {
            app.set_state(st.clone());
            app.refused(1);
        } else {
            app.refused(1);
            app.set_state(st.clone());
        }
        assert_eq!(not_sent_notes(&app).len(), 1, "{case}");
        st.entering.clear();
        if refused {
            st.current = Some("lobby".into());
            st.rooms.retain(|r| r != "ops");
        }
        app.set_state(st);
        let current = app.state.current.clone();
        let seen = not_sent_notes(&app)
            .into_iter()
            .any(|e| super::shown_in(e, &current));
        assert!(seen, "{case}: not in the view of {current:?}");
        // Not moved again later (the room parted, say).
        let mut st = app.state.clone();
        st.current = Some("rust".into());
        st.rooms.retain(|r| r != "ops");
        app.set_state(st);
        let filed = not_sent_notes(&app)[0].room.clone();
        let want = if refused { "lobby" } else { "ops" };
        assert_eq!(filed.as_deref(), Some(want), "{case}");
    }
}

/// A refused line kept for Up while a `/join ops` waits for its
/// answer, and the connection goes before it: the session's state
/// then still lists #ops among the rooms, no longer among those being
/// entered, so the note was taken as #ops's for good; the reconnect's
/// enter of #ops refused, it was in a room never shown. While not
/// joined, where it goes waits; back, and #ops refused, it is in the
/// room current then.
#[test]
fn the_note_of_a_refused_line_is_seen_if_the_join_is_refused_after_a_reconnect() {
    let (mut app, mut st) = a_line_behind_a_join();
    app.set_state(st.clone());
    app.refused(1);
    // The connection lost before #ops is answered.
    st.joined = false;
    st.entering.clear();
    app.set_state(st.clone());
    // Back: the core enters #ops again...
    st.joined = true;
    st.entering.push("ops".into());
    app.set_state(st.clone());
    // ...and it is refused.
    st.entering.clear();
    st.current = Some("lobby".into());
    st.rooms.retain(|r| r != "ops");
    app.set_state(st);
    let current = app.state.current.clone();
    let seen = not_sent_notes(&app)
        .into_iter()
        .any(|e| super::shown_in(e, &current));
    assert!(seen, "the note is filed under #ops, never shown");
}

/// A line refused while Up and Down browse the lines typed before:
/// the note said Up brings it back, and Up went on further back.
/// The next Up brings it, and browsing goes on from there.
#[test]
fn a_line_refused_while_browsing_is_the_next_up_brings_back() {
    let mut app = self::app();
    for line in ["one", "two", "hello"] {
        type_str(&mut app, line);
        app.handle_event(key(KeyCode::Enter));
    }
    type_str(&mut app, "draft");
    app.handle_event(key(KeyCode::Up));
    app.handle_event(key(KeyCode::Up));
    assert_eq!(app.input.text(), "two");
    app.refused(3);
    assert_eq!(app.input.text(), "two", "what is shown is left");
    assert_eq!(not_sent_notes(&app).len(), 1);
    let mut seen = Vec::new();
    for k in [
        KeyCode::Up,
        KeyCode::Up,
        KeyCode::Down,
        KeyCode::Down,
        KeyCode::Down,
    ] {
        app.handle_event(key(k));
        seen.push(app.input.text().to_owned());
    }
    assert_eq!(seen, ["hello", "one", "hello", "two", "draft"]);
}
