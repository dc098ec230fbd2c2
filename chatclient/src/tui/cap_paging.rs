//! Paging back at the message area's cap ([`MAX_ENTRIES`]) end to end: a
//! real Session and a real App wired as the shell wires them (ordered
//! queues both ways), and a fake server with a log per room.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chatproto::{ClientFrame, PresenceStatus, ServerFrame};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::app::test_lines::placed_in;
use super::app::{App, Effect, State, MAX_ENTRIES, MAX_ENTRIES_EVER};
use super::theme::Theme;
use super::{state_of, Shown};
use crate::console::InputEvent;
use crate::render::Line;
use crate::session::{Mode, Session};

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

fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

/// bob's message `q` of `room`, its text the room and the seq (`lobby7`).
fn bobs(room: &str, q: u64) -> ServerFrame {
    ServerFrame::msg(
        Some(room.into()),
        q,
        "bob",
        vec![],
        format!("{room}{q}"),
        0,
        None,
    )
}

/// bob's message `q` of `room` as a replay or a page of history gives it.
fn bobs_replayed(room: &str, q: u64) -> ServerFrame {
    let mut m = bobs(room, q);
    if let ServerFrame::Msg { replay, .. } = &mut m {
        *replay = true;
    }
    m
}

impl Sim {
    pub fn new(rooms: &[&str]) -> Sim {
        let names: Vec<String> = rooms.iter().map(|r| r.to_string()).collect();
        let mut s = Session::new("alice", &names, "t-", 65_536);
        s.set_mode(Mode {
            hold_departures: true,
            ..Mode::default()
        });
        s.name_every_room();
        let mut sim = Sim {
            s,
            app: App::new(Theme { color: false }, false),
            shown: Shown::default(),
            last: None,
            to_screen: VecDeque::new(),
            to_session: VecDeque::new(),
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            logs: BTreeMap::new(),
            seq: BTreeMap::new(),
        };
        sim.app.area = (100, 30);
        sim.s.handle_connected(0);
        sim.apply();
        sim.to_server.clear();
        let welcome =
            ServerFrame::welcome("alice", 0, vec![], Some("tok".into()), Some(false), None);
        sim.client_frame(welcome);
        for r in &names {
            sim.seq.insert(r.clone(), 1);
            sim.logs.insert(r.clone(), Vec::new());
            let e = ServerFrame::entered(r, "e1", 0, 1, vec!["alice".into()], false);
            sim.client_frame(e);
            let p = ServerFrame::presence(Some(r.clone()), 1, "alice", PresenceStatus::Online, 0);
            sim.client_frame(p);
        }
        sim.settle();
        sim
    }

    /// What `apply` in net.rs does: the state, the lines, the state.
    fn apply(&mut self) {
        self.push_state();
        while let Some(a) = self.s.poll() {
            match a {
                crate::session::Action::Print(l) => self.to_screen.push_back(ToScreen::Line(l)),
                crate::session::Action::Send(f) => self.to_server.push_back(f),
                _ => {}
            }
        }
        self.push_state();
    }

    fn push_state(&mut self) {
        let st = state_of(&self.s, &mut self.shown);
        if self.last.as_ref() != Some(&st) {
            self.last = Some(st.clone());
            self.to_screen.push_back(ToScreen::State(st));
        }
    }

    fn client_frame(&mut self, f: ServerFrame) {
        self.s.handle_frame(0, f);
        self.apply();
    }

    /// The server sends a live message in `room`.
    pub fn live(&mut self, room: &str) {
        let q = self.seq.get_mut(room).unwrap();
        *q += 1;
        let q = *q;
        self.logs.get_mut(room).unwrap().push(q);
        self.to_client.push_back(bobs(room, q));
    }

    /// The server holds a message of `room` the client is not sent (one
    /// from before it came, or one said while it was away).
    pub fn unseen(&mut self, room: &str) {
        let q = self.seq.get_mut(room).unwrap();
        *q += 1;
        let q = *q;
        self.logs.get_mut(room).unwrap().push(q);
    }

    /// The connection lost and back, the session resumed: each of
    /// `rooms` entered again with its last `replayed` messages replayed,
    /// not all it missed (a gap, if it missed more), then alice's own
    /// presence.
    pub fn reconnect(&mut self, rooms: &[&str], replayed: usize) {
        self.s.handle_disconnected();
        self.apply();
        self.settle();
        self.s.handle_connected(1);
        self.apply();
        self.settle();
        self.to_server.clear();
        let welcome =
            ServerFrame::welcome("alice", 0, vec![], Some("tok".into()), Some(true), None);
        self.client_frame(welcome);
        for r in rooms {
            let last = self.seq[*r];
            let e = ServerFrame::entered(*r, "e1", last, 1, vec!["alice".into()], false);
            self.client_frame(e);
            let log = &self.logs[*r];
            let tail: Vec<u64> = log[log.len().saturating_sub(replayed)..].to_vec();
            for q in tail {
                self.client_frame(bobs_replayed(r, q));
            }
            let q = self.seq.get_mut(*r).unwrap();
            *q += 1;
            let p =
                ServerFrame::presence(Some(r.to_string()), *q, "alice", PresenceStatus::Online, 0);
            self.client_frame(p);
        }
        self.settle();
    }

    /// Answer one request the server got.
    fn serve(&mut self, f: ClientFrame) {
        if let ClientFrame::Msg { room, text, id, .. } = f {
            let room = room.unwrap_or_default();
            let q = self.seq.get_mut(&room).unwrap();
            *q += 1;
            let q = *q;
            self.logs.get_mut(&room).unwrap().push(q);
            let echo = ServerFrame::msg(Some(room), q, "alice", vec![], text, 0, id);
            self.to_client.push_back(echo);
            return;
        }
        if let ClientFrame::History {
            room,
            before,
            limit,
            ..
        } = f
        {
            let log = &self.logs[&room];
            let limit = limit.unwrap_or(50).clamp(1, 200) as usize;
            let below: Vec<u64> = log
                .iter()
                .copied()
                .filter(|q| before.is_none_or(|b| *q < b))
                .collect();
            let start = below.len().saturating_sub(limit);
            let more = start > 0;
            let events = below[start..]
                .iter()
                .map(|q| bobs_replayed(&room, *q))
                .collect();
            self.to_client
                .push_back(ServerFrame::history(room, events, more));
        }
    }

    /// Whether a line saying messages are missing is shown in `room`.
    pub fn gap_lines(&self, room: &str) -> usize {
        self.app
            .entries
            .iter()
            .filter(|e| {
                e.room.as_deref() == Some(room) && matches!(e.line, Line::Gap { filled: false, .. })
            })
            .count()
    }

    /// One step of one of the four queues; false if all are empty.
    pub fn step(&mut self, which: u64) -> bool {
        for k in 0..4 {
            match (which + k) % 4 {
                0 => {
                    if let Some(f) = self.to_server.pop_front() {
                        self.serve(f);
                        return true;
                    }
                }
                1 => {
                    if let Some(f) = self.to_client.pop_front() {
                        self.client_frame(f);
                        return true;
                    }
                }
                2 => {
                    if let Some(e) = self.to_session.pop_front() {
                        match e {
                            InputEvent::Line(l) => self.s.handle_line(&l),
                            InputEvent::Older(n) => self.s.handle_older(n),
                            InputEvent::LetGo(r, p) => self.s.handle_let_go(&r, p),
                            InputEvent::Cut(r, p) => self.s.handle_cut(&r, p),
                            _ => {}
                        }
                        self.apply();
                        return true;
                    }
                }
                _ => {
                    if let Some(m) = self.to_screen.pop_front() {
                        match m {
                            ToScreen::Line(l) => self.app.add_line(l, "12:00".into()),
                            ToScreen::State(st) => self.app.set_state(st),
                        }
                        self.effects();
                        return true;
                    }
                }
            }
        }
        false
    }

    fn effects(&mut self) {
        for e in self.app.take_effects() {
            match e {
                Effect::Send(l) => self.to_session.push_back(InputEvent::Line(l)),
                Effect::Older(n) => self.to_session.push_back(InputEvent::Older(n)),
                Effect::LetGo(r, p) => self.to_session.push_back(InputEvent::LetGo(r, p)),
                Effect::Cut(r, p) => self.to_session.push_back(InputEvent::Cut(r, p)),
                _ => {}
            }
        }
    }

    /// Everything delivered, in a fixed order.
    pub fn settle(&mut self) {
        let mut i = 0;
        while self.step(i) {
            i += 1;
        }
    }

    pub fn key(&mut self, code: KeyCode) {
        self.app.handle_event(key(code));
        self.effects();
    }

    pub fn draw(&mut self) {
        let mut t = Terminal::new(TestBackend::new(100, 32)).unwrap();
        t.draw(|f| super::draw::draw(f, &mut self.app)).unwrap();
    }

    /// Scroll to the oldest line (drawn), then once more up: asks.
    pub fn up_past_top(&mut self) {
        self.app.scroll = usize::MAX / 4;
        self.draw();
        self.key(KeyCode::PageUp);
        self.draw();
    }

    /// The seqs of `room` shown, in order (the latest era only).
    pub fn shown_seqs(&self, room: &str) -> Vec<u64> {
        let places: Vec<_> = self
            .app
            .entries
            .iter()
            .filter_map(|e| match &e.line {
                Line::Msg { place, .. } if e.room.as_deref() == Some(room) => Some(*place),
                _ => None,
            })
            .collect();
        let era = places.iter().map(|p| p.era).max().unwrap_or(0);
        places
            .iter()
            .filter(|p| p.era == era)
            .map(|p| p.seq)
            .collect()
    }

    /// No double, in order, and nothing missing between two lines shown
    /// (no hole) but under a line saying messages are missing: Err with
    /// what is wrong.
    pub fn check(&self, room: &str) -> Result<(), String> {
        let era = self
            .app
            .entries
            .iter()
            .filter_map(|e| match &e.line {
                Line::Msg { place, .. } if e.room.as_deref() == Some(room) => Some(place.era),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let log: BTreeSet<u64> = self.logs[room].iter().copied().collect();
        let mut prev: Option<u64> = None;
        let mut gap_since = false;
        for e in &self.app.entries {
            if e.room.as_deref() != Some(room) {
                continue;
            }
            match &e.line {
                Line::Gap { filled: false, .. } => gap_since = true,
                Line::Msg { place, .. } if place.era == era => {
                    let q = place.seq;
                    if let Some(p) = prev {
                        if p == q {
                            return Err(format!("#{room}: {q} shown twice"));
                        }
                        if p > q {
                            return Err(format!("#{room}: {p} above {q} (order)"));
                        }
                        let missing: Vec<u64> = log.range(p + 1..q).copied().collect();
                        if !missing.is_empty() && !gap_since {
                            return Err(format!(
                                "#{room}: hole of {} between {p} and {q} (no gap line): {:?}",
                                missing.len(),
                                &missing[..missing.len().min(10)]
                            ));
                        }
                    }
                    prev = Some(q);
                    gap_since = false;
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub fn dump(&self, room: &str) {
        let mut out = Vec::new();
        for e in &self.app.entries {
            if e.room.as_deref() != Some(room) {
                continue;
            }
            out.push(match &e.line {
                Line::Msg {
                    place,
                    page,
                    missed,
                    ..
                } => format!(
                    "{}:{}{}{}",
                    place.era,
                    place.seq,
                    if *page { "p" } else { "" },
                    if *missed { "m" } else { "" }
                ),
                Line::Gap { filled, .. } => format!("GAP{filled}"),
                Line::HistoryNote { text, .. } => format!("NOTE({text})"),
                Line::HistoryStart { .. } => "START".into(),
                other => format!("{:?}", std::mem::discriminant(other)),
            });
        }
        let n = out.len();
        eprintln!("#{room} entries ({n}): {:?}", &out[n.saturating_sub(400)..]);
    }

    pub fn current(&self) -> String {
        self.app.state.current.clone().unwrap_or_default()
    }

    /// Page back in the current room until everything is shown (or the
    /// session says nothing is older), never going back to the bottom.
    pub fn page_all(&mut self, max: usize) -> Result<(), String> {
        let room = self.current();
        let mut same = 0;
        let mut was = usize::MAX;
        for _ in 0..max {
            self.settle();
            if self.shown_seqs(&room).first() == self.logs[&room].first()
                && self.gap_lines(&room) == 0
            {
                break;
            }
            let n = self.shown_seqs(&room).len();
            same = if n == was { same + 1 } else { 0 };
            was = n;
            if same >= 3 {
                break;
            }
            self.up_past_top();
            self.settle();
            if let Err(e) = self.check(&room) {
                self.dump(&room);
                return Err(format!("during paging back: {e}"));
            }
        }
        self.check(&room)?;
        let shown: BTreeSet<u64> = self.shown_seqs(&room).into_iter().collect();
        let lost: Vec<u64> = self.logs[&room]
            .iter()
            .copied()
            .filter(|q| !shown.contains(q))
            .collect();
        if lost.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "#{room}: {} never shown after paging back: {:?}",
                lost.len(),
                &lost[..lost.len().min(10)]
            ))
        }
    }
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
