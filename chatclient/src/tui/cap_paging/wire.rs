//! The simulation wired as the shell wires a real Session and a real App:
//! ordered queues both ways, stepped in a fixed order until all are empty.

use std::collections::{BTreeMap, VecDeque};

use chatproto::{PresenceStatus, ServerFrame};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::{Sim, ToScreen};
use crate::console::InputEvent;
use crate::session::{Mode, Session};
use crate::tui::app::{App, Effect};
use crate::tui::theme::Theme;
use crate::tui::{state_of, Shown};

fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
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
    pub(super) fn apply(&mut self) {
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

    pub(super) fn client_frame(&mut self, f: ServerFrame) {
        self.s.handle_frame(0, f);
        self.apply();
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
        t.draw(|f| crate::tui::draw::draw(f, &mut self.app))
            .unwrap();
    }

    /// Scroll to the oldest line (drawn), then once more up: asks.
    pub fn up_past_top(&mut self) {
        self.app.scroll = usize::MAX / 4;
        self.draw();
        self.key(KeyCode::PageUp);
        self.draw();
    }

    pub fn current(&self) -> String {
        self.app.state.current.clone().unwrap_or_default()
    }
}
