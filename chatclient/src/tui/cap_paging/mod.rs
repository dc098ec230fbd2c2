//! Paging back at the message area's cap ([`MAX_ENTRIES`]) end to end: a
//! real Session and a real App wired as the shell wires them (ordered
//! queues both ways), and a fake server with a log per room.
//!
//! This file holds the simulation's state and the tests; its wiring (the
//! queues, stepped in a fixed order) is in `wire`, the fake server in
//! `server`, and what is checked of the screen in `check`.

use std::collections::{BTreeMap, VecDeque};

use chatproto::{ClientFrame, ServerFrame};
use crossterm::event::KeyCode;

use super::app::test_lines::placed_in;
use super::app::{App, State, MAX_ENTRIES, MAX_ENTRIES_EVER};
use super::Shown;
use crate::console::InputEvent;
use crate::render::Line;
use crate::session::Session;

mod check;
mod server;
mod wire;

enum ToScreen {
    Line(Line),
    State(State),
}

pub(super) struct Sim {
    pub s: Session,
    pub app: App,
    shown: Shown,
    last: Option<State>,
    to_screen: VecDeque<ToScreen>,
    to_session: VecDeque<InputEvent>,
    to_server: VecDeque<ClientFrame>,
    to_client: VecDeque<ServerFrame>,
    /// Per room: every seq the server holds, and which are messages.
    pub logs: BTreeMap<String, Vec<u64>>,
    seq: BTreeMap<String, u64>,
}

/// Fill to the cap: `lobby` first, then enough of `rust` that lobby's
/// oldest lines go.
fn filled(lobby: usize, rust: usize) -> Sim {
    let mut sim = Sim::new(&["lobby", "rust"]);
    for _ in 0..lobby {
        sim.live("lobby");
    }
    sim.settle();
    for _ in 0..rust {
        sim.live("rust");
    }
    sim.settle();
    sim
}

/// #lobby's 300 messages, then #rust's lines push its oldest out of the
/// full area: scrolling up past the top pages back through all of
/// #lobby's, each shown once, in order, with no hole.
#[test]
fn paging_back_at_the_cap_brings_back_every_message_once_in_order() {
    let mut sim = filled(300, MAX_ENTRIES - 100);
    assert!(sim.shown_seqs("lobby").len() < 300);
    sim.check("lobby").unwrap();
    sim.page_all(40).unwrap();
}

/// #lobby's messages, the first `older` of them from before alice came
/// (held by the server, not sent), read back from the top while #lobby
/// and #rust get 100,000 lines, past the bound ([`MAX_ENTRIES_EVER`]):
/// #lobby's newest lines go, and it is cut.
fn lobby_cut(older: usize) -> Sim {
    let mut sim = Sim::new(&["lobby", "rust"]);
    for _ in 0..older {
        sim.unseen("lobby");
    }
    for _ in 0..100 {
        sim.live("lobby");
    }
    sim.settle();
    sim.app.scroll = usize::MAX / 4;
    sim.draw();
    // (#rust's lines straight to the screen: the session has no part
    // in them here, and 100,000 of them through it take seconds.)
    let rust = || placed_in("rust", "r", 0, 0, false);
    for i in 0..MAX_ENTRIES_EVER + MAX_ENTRIES {
        if i.is_multiple_of(250) {
            sim.live("lobby");
        } else if i % 1_000 == 1 {
            sim.settle();
        } else {
            sim.app.add_line(rust(), "12:00".into());
        }
    }
    sim.settle();
    assert!(sim.app.entries.len() <= MAX_ENTRIES_EVER);
    let last = sim.logs["lobby"].last().copied();
    assert!(sim.shown_seqs("lobby").last() < last.as_ref());
    sim
}

/// Read back at the top of #lobby while #lobby and #rust get 100,000
/// lines, past the bound ([`MAX_ENTRIES_EVER`]): #lobby's newest lines
/// go. Scrolled down to its last line (which says so), then down once
/// more, its newest messages are shown again, from the session's page of
/// the newest: each once, in order, with no hole; paging back from there
/// brings back every one.
#[test]
fn down_past_the_last_line_kept_shows_the_newest_again_once_in_order() {
    let mut sim = lobby_cut(0);
    let last = sim.logs["lobby"].last().copied();
    sim.app.scroll = 1;
    sim.key(KeyCode::PageDown);
    sim.settle();
    assert!(sim.shown_seqs("lobby").last() < last.as_ref());
    sim.key(KeyCode::PageDown);
    sim.settle();
    assert_eq!(sim.shown_seqs("lobby").last(), last.as_ref());
    sim.check("lobby").unwrap();
    sim.page_all(100).unwrap();
}

/// #lobby cut while read back at its top, then a reconnect whose replay
/// leaves a gap in what it missed: scrolling up past the top asked the
/// server for the missing (newest) messages, which a room cut does not
/// show, so paging back did nothing until the gap was fetched. It pages
/// back through #lobby's older messages, as in a room not cut; Esc then
/// shows its newest, the missed ones among them.
#[test]
fn up_in_a_room_cut_after_a_reconnect_pages_back_not_into_the_gap() {
    let mut sim = lobby_cut(100);
    let first = sim.shown_seqs("lobby")[0];
    for _ in 0..30 {
        sim.unseen("lobby");
    }
    sim.reconnect(&["lobby", "rust"], 2);
    assert!(sim.app.state.joined);
    sim.up_past_top();
    sim.settle();
    let now = sim.shown_seqs("lobby")[0];
    assert!(now < first, "paged back from {first} to {now}");
    sim.check("lobby").unwrap();
    sim.app.scroll = 0;
    sim.key(KeyCode::Esc);
    sim.settle();
    assert_eq!(sim.shown_seqs("lobby").last(), sim.logs["lobby"].last());
    sim.check("lobby").unwrap();
}

/// Esc in a room cut fetches its newest page: its note said "20 older
/// messages of #lobby; /history shows more", older than nothing shown.
/// It says they are the newest.
#[test]
fn the_newest_page_of_a_room_cut_says_it_is_the_newest() {
    let mut sim = lobby_cut(0);
    sim.key(KeyCode::Esc);
    sim.settle();
    let notes: Vec<&str> = sim
        .app
        .entries
        .iter()
        .filter_map(|e| match &e.line {
            Line::HistoryNote { room, text } if room == "lobby" => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        notes,
        ["the newest 20 messages of #lobby; /history shows more"]
    );
}

/// A line typed in a room cut: its newest are fetched first, and the
/// line, echoed, is the last of them, each once, in order.
#[test]
fn a_line_typed_in_a_room_cut_is_echoed_under_its_newest() {
    let mut sim = lobby_cut(0);
    for c in "hello".chars() {
        sim.key(KeyCode::Char(c));
    }
    sim.key(KeyCode::Enter);
    sim.settle();
    let last = sim
        .app
        .entries
        .iter()
        .rev()
        .find(|e| e.room.as_deref() == Some("lobby") && matches!(e.line, Line::Msg { .. }));
    assert!(
        last.is_some_and(|e| matches!(&e.line, Line::Msg { text, .. } if text == "hello")),
        "{last:?}"
    );
    assert_eq!(sim.shown_seqs("lobby").last(), sim.logs["lobby"].last());
    assert!(sim.shown_seqs("lobby").len() > 10);
    sim.check("lobby").unwrap();
}

/// #lobby's 5,000 messages, from before alice came, read back with
/// PageUp held down (each press drawn, the server quick to answer):
/// each press moved about ten rows and asked a 20-message page every
/// other press, some 500 presses to the start. Each press moves a
/// screen less a line, older messages a page ahead of it (two screens'
/// worth), and the start is as many presses away as #lobby has screens.
#[test]
fn page_up_held_down_reads_back_a_screen_a_press() {
    let mut sim = Sim::new(&["lobby"]);
    for _ in 0..5_000 {
        sim.unseen("lobby");
    }
    sim.draw();
    let page = sim.app.area.1 - 1;
    let mut presses = 0;
    while sim.shown_seqs("lobby").first() != sim.logs["lobby"].first() || !sim.app.at_top {
        assert!(presses < 5_000 / page + 5, "{presses} presses");
        let was = sim.app.scroll;
        sim.key(KeyCode::PageUp);
        sim.settle();
        sim.draw();
        presses += 1;
        if !sim.app.at_top {
            assert_eq!(sim.app.scroll - was, page, "press {presses}");
        }
    }
    assert!(presses >= 5_000 / page, "{presses} presses");
    let pages = sim.s.older_taken();
    assert!(
        pages <= 5_000 / (2 * sim.app.area.1 as u64) + 2,
        "{pages} pages"
    );
    sim.check("lobby").unwrap();
}

/// PageUp pressed three times while the older messages the first asked
/// for are on their way: one request at a time (the next once those
/// came, for what the keys asked past them), and once they came the
/// view is three pages up, as far as the keys took it.
#[test]
fn presses_while_older_messages_come_take_the_view_up_once_they_came() {
    let mut sim = Sim::new(&["lobby"]);
    for _ in 0..5_000 {
        sim.unseen("lobby");
    }
    sim.draw();
    let page = sim.app.area.1 - 1;
    for _ in 0..3 {
        sim.key(KeyCode::PageUp);
        sim.draw();
    }
    let asked = sim.to_session.iter();
    let asked = asked.filter(|e| matches!(e, InputEvent::Older(_))).count();
    assert_eq!(asked, 1);
    sim.settle();
    sim.draw();
    assert_eq!(sim.app.scroll, 3 * page);
    assert_eq!(sim.s.older_taken(), 2);
    sim.check("lobby").unwrap();
}
