//! The tests of `keys.rs`.

use crossterm::event::{Event, KeyCode};

use super::*;
use crate::tui::app::fixture::*;

#[test]
fn ctrl_c_clears_then_leaves() {
    let mut app = app();
    type_str(&mut app, "half typed");
    app.handle_event(ctrl('c'));
    assert!(app.input.is_empty());
    assert!(app.take_effects().is_empty());
    assert!(!app.ctrl_c_armed, "clearing a line does not arm leaving");
    app.handle_event(ctrl('c'));
    assert!(app.take_effects().is_empty(), "the empty line only warns");
    assert!(app.ctrl_c_armed);
    app.handle_event(ctrl('c'));
    assert_eq!(app.take_effects(), [Effect::LeaveNow]);

    // On an empty line the first Ctrl-C only warns.
    let mut app = self::app();
    app.handle_event(ctrl('c'));
    assert!(app.take_effects().is_empty());
    assert!(app.ctrl_c_armed);
    type_str(&mut app, "x");
    app.handle_event(ctrl('c'));
    assert!(app.take_effects().is_empty(), "a key in between disarms");
    assert!(app.input.is_empty());
    app.handle_event(ctrl('c'));
    assert!(app.take_effects().is_empty());
    app.handle_event(ctrl('c'));
    assert_eq!(app.take_effects(), [Effect::LeaveNow]);
}

#[test]
fn ctrl_d_and_quit_leave_gracefully() {
    let mut app = app();
    type_str(&mut app, "ab");
    app.handle_event(key(KeyCode::Home));
    app.handle_event(ctrl('d'));
    assert_eq!(app.input.text(), "b");
    app.handle_event(ctrl('u'));
    app.handle_event(ctrl('e'));
    app.handle_event(ctrl('k'));
    app.handle_event(ctrl('d'));
    assert_eq!(app.input.text(), "b");
    app.handle_event(ctrl('a'));
    app.handle_event(ctrl('k'));
    app.handle_event(ctrl('d'));
    assert_eq!(app.take_effects(), [Effect::End]);
    assert!(app.quitting);
    type_str(&mut app, "ignored");
    assert!(app.input.is_empty());

    let mut app = self::app();
    type_str(&mut app, "/QUIT");
    app.handle_event(key(KeyCode::Enter));
    assert_eq!(app.take_effects(), [Effect::Send("/QUIT".into())]);
    assert!(app.quitting);
    // While leaving, Ctrl-C leaves at once.
    app.handle_event(ctrl('c'));
    assert_eq!(app.take_effects(), [Effect::LeaveNow]);
}

#[test]
fn enter_sends_and_clear_clears_the_current_room() {
    let mut app = app();
    app.add_line(msg("lobby", "bob", &[], "one"), "12:00".into());
    app.add_line(msg("rust", "bob", &[], "two"), "12:00".into());
    type_str(&mut app, "hello");
    app.handle_event(key(KeyCode::Enter));
    type_str(&mut app, "   ");
    app.handle_event(key(KeyCode::Enter));
    assert_eq!(app.take_effects(), [Effect::Send("hello".into())]);
    type_str(&mut app, "/Clear");
    app.handle_event(key(KeyCode::Enter));
    // The session hears of it too: /history starts from the newest again.
    assert_eq!(app.take_effects(), [Effect::Send("/Clear".into())]);
    assert_eq!(app.entries.len(), 1, "#rust keeps its line");
    type_str(&mut app, "/HELP");
    app.handle_event(key(KeyCode::Enter));
    assert!(app.take_effects().is_empty(), "the screen's own help");
    assert_eq!(app.entries.len(), 1 + HELP.len());
    for _ in 0..3 {
        app.handle_event(key(KeyCode::Up));
    }
    assert_eq!(app.input.text(), "hello");
}

#[test]
fn a_line_too_long_to_send_stays_in_the_input_after_enter() {
    let mut app = app();
    app.state.max_text = 12;
    type_str(&mut app, "@bob twelve bytes!");
    app.handle_event(key(KeyCode::Enter));
    // The session refuses it and says why; the line is kept to edit.
    assert_eq!(
        app.take_effects(),
        [Effect::Send("@bob twelve bytes!".into())]
    );
    assert_eq!(app.input.text(), "@bob twelve bytes!");
    app.handle_event(ctrl('u'));
    type_str(&mut app, "@bob twelve bytes");
    app.handle_event(key(KeyCode::Enter));
    assert_eq!(
        app.take_effects(),
        [Effect::Send("@bob twelve bytes".into())]
    );
    assert!(app.input.is_empty(), "a line that may fit is sent and gone");
    app.handle_event(key(KeyCode::Up));
    assert_eq!(app.input.text(), "@bob twelve bytes");
}

#[test]
fn a_pasted_line_with_spaces_before_a_slash_is_text() {
    let mut app = app();
    app.handle_event(Event::Paste("first\n  /part\n\t/quit\nrest".into()));
    assert_eq!(
        app.take_effects(),
        [
            Effect::Send("first".into()),
            Effect::Send("//part".into()),
            Effect::Send("//quit".into()),
        ]
    );
    assert_eq!(app.input.text(), "rest");
}

#[test]
fn a_long_paste_asks_once_and_a_short_one_is_sent() {
    let mut app = app();
    type_str(&mut app, "/me ");
    app.handle_event(Event::Paste("waves\r\n/etc\nthird\nhalf".into()));
    assert_eq!(
        app.take_effects(),
        [
            Effect::Send("/me waves".into()),
            Effect::Send("//etc".into()),
            Effect::Send("third".into()),
        ]
    );
    assert_eq!(app.input.text(), "half");
    let long: String = (1..=12).map(|i| format!("line {i}\n")).collect();
    app.handle_event(Event::Paste(long));
    assert!(app.take_effects().is_empty());
    assert_eq!(app.paste.as_ref().map(|q| q.lines.len()), Some(12));
    type_str(&mut app, "x"); // not an answer
    app.handle_event(key(KeyCode::Char('y')));
    let sent = app.take_effects();
    assert_eq!(sent.len(), 12);
    assert_eq!(sent[0], Effect::Send("halfline 1".into()));
    assert!(app.input.is_empty());

    let long: String = (1..=12).map(|i| format!("line {i}\n")).collect();
    type_str(&mut app, "keep");
    app.handle_event(Event::Paste(long));
    app.handle_event(key(KeyCode::Char('n')));
    assert!(app.take_effects().is_empty());
    assert_eq!(app.input.text(), "keep");
    // One line goes into the input line; controls are dropped.
    app.handle_event(Event::Paste(" more\u{1b}[2J\tok".into()));
    assert_eq!(app.input.text(), "keep more[2J    ok");
    assert!(app.take_effects().is_empty());
}

/// A paste while another waits for its yes or no joins it: a yes sends
/// both, in order, the second going on from where the first ended; a
/// no keeps neither.
#[test]
fn a_paste_while_one_waits_joins_it() {
    let mut app = app();
    let first: String = (1..=7).map(|i| format!("a{i}\n")).collect();
    app.handle_event(Event::Paste(format!("{first}half")));
    app.handle_event(Event::Paste(" done\nb1\nb2".into()));
    assert!(app.take_effects().is_empty());
    assert_eq!(app.paste.as_ref().map(|q| q.lines.len()), Some(9));
    app.handle_event(key(KeyCode::Char('y')));
    let sent = app.take_effects();
    let want: Vec<Effect> = (1..=7)
        .map(|i| format!("a{i}"))
        .chain(["half done".into(), "b1".into()])
        .map(Effect::Send)
        .collect();
    assert_eq!(sent, want);
    assert_eq!(app.input.text(), "b2");

    app.handle_event(ctrl('u'));
    type_str(&mut app, "keep");
    app.handle_event(Event::Paste(first.clone()));
    app.handle_event(Event::Paste(first));
    app.handle_event(key(KeyCode::Char('n')));
    assert!(app.take_effects().is_empty());
    assert_eq!(app.input.text(), "keep");

    // The end of the first paste is pasted text, not typed: a line
    // the second one finishes is text even if it starts with /.
    app.handle_event(ctrl('u'));
    let first: String = (1..=7).map(|i| format!("c{i}\n")).collect();
    app.handle_event(Event::Paste(format!("{first}/quit")));
    app.handle_event(Event::Paste("\nlast".into()));
    app.handle_event(key(KeyCode::Char('y')));
    let sent = app.take_effects();
    assert_eq!(
        sent.last(),
        Some(&Effect::Send("//quit".into())),
        "{sent:?}"
    );
}

#[test]
fn tab_completes_nicks_but_not_our_own() {
    let mut app = app();
    type_str(&mut app, "hi a");
    app.handle_event(key(KeyCode::Tab));
    assert_eq!(app.input.text(), "hi a", "only alice starts with a: us");
    app.handle_event(ctrl('u'));
    type_str(&mut app, "c");
    app.handle_event(key(KeyCode::Tab));
    assert_eq!(app.input.text(), "carol: ");
    type_str(&mut app, "/");
    app.handle_event(ctrl('u'));
    type_str(&mut app, "/j");
    app.handle_event(key(KeyCode::Tab));
    type_str(&mut app, "r");
    app.handle_event(key(KeyCode::Tab));
    assert_eq!(app.input.text(), "/join rust ");
}

/// Keys in a burst (a slow link): each Ctrl-N goes on from where the
/// one before went, though the session has not moved yet.
#[test]
fn ctrl_n_twice_before_the_session_moves_goes_two_rooms_on() {
    let mut app = app();
    let mut state = app.state.clone();
    state.rooms = ["a", "b", "c", "lobby"].map(String::from).to_vec();
    app.set_state(state.clone());
    app.handle_event(ctrl('n'));
    app.handle_event(ctrl('n'));
    assert_eq!(
        app.take_effects(),
        [
            Effect::Send("/join a".into()),
            Effect::Send("/join b".into())
        ]
    );
    // Taken, and the session says so: from there as ever.
    state.lines_taken = 2;
    state.current = Some("b".into());
    app.set_state(state);
    app.handle_event(ctrl('p'));
    assert_eq!(app.take_effects(), [Effect::Send("/join a".into())]);
}

/// Ctrl-N to the next room, Ctrl-P back (before the session moved:
/// back from where Ctrl-N went).
#[test]
fn ctrl_n_and_ctrl_p_switch_rooms() {
    let mut app = app();
    app.handle_event(ctrl('n'));
    app.handle_event(ctrl('p'));
    assert_eq!(
        app.take_effects(),
        [
            Effect::Send("/join rust".into()),
            Effect::Send("/join lobby".into())
        ]
    );
}
