//! The lines the full-screen client hands to the session
//! ([`App::give`]): shown as waiting until it takes them, and one refused
//! (or left unconfirmed by a lost connection) put back into the empty
//! input, or else kept for Up with a note saying so; a key typed as it
//! comes back, before it could be seen, is not added to it
//! ([`App::handle_term`]).

use super::*;

impl App {
    /// Hand `line` to the session; it shows as waiting until taken.
    pub(super) fn give(&mut self, line: String) {
        // It may page back (`/history`) where the cap let lines go.
        self.tell_let_go();
        self.given += 1;
        self.waiting.push_back(line.clone());
        if self.recent.len() == RECENT_LINES {
            self.recent.pop_front();
        }
        self.recent.push_back((self.given, line.clone()));
        self.effects.push(Effect::Send(line));
    }

    /// Input line `number` was refused (a message by the server, an
    /// unknown nickname, say; a command by the client): back in the
    /// input to be mended, if the input is empty. What is being typed is
    /// never replaced nor added to: the line is then the next that Up
    /// brings back, and a line says so; so it is if keys typing on come
    /// before it could be seen (see [`App::handle_term`]).
    pub fn refused(&mut self, number: u64) {
        self.put_back(number, "not sent");
    }

    /// Input line `number` was a message the connection lost before the
    /// server confirmed it, which the server's new session cannot tell
    /// of: not sent again (it may have arrived), and put back as a
    /// refused line is, to be sent again if it did not.
    pub fn unconfirmed(&mut self, number: u64) {
        self.put_back(number, "not confirmed");
    }

    /// Input line `number` back in the input, or the next Up brings it
    /// (see [`App::refused`]); `why` is said in the note then.
    pub(super) fn put_back(&mut self, number: u64, why: &'static str) {
        let Some(at) = self.recent.iter().position(|(n, _)| *n == number) else {
            return;
        };
        let (_, line) = self.recent.remove(at).unwrap_or_default();
        if self.input.text() == line {
            // Kept there already (too long to send).
            return;
        }
        if self.input.is_empty() && self.paste.is_none() {
            self.input.set(line.clone(), None);
            self.restored = Some(Restored {
                line,
                why,
                drawn: None,
            });
        } else {
            self.kept_for_up(line, why);
        }
    }

    /// The screen was drawn at `now`: a refused line put back into the
    /// input is in sight from then on.
    pub fn drawn(&mut self, now: Instant) {
        if let Some(r) = &mut self.restored {
            r.drawn.get_or_insert(now);
        }
    }

    /// The refused `line` is not in the input: the next Up brings it back.
    /// Said in the room the user is in, or is going to (a Ctrl-N not
    /// taken yet: the line would be filed in the room being left). A room
    /// a `/join` enters may be refused: the note is then moved to the room
    /// current after all ([`App::place_ahead_notes`]).
    pub(super) fn kept_for_up(&mut self, line: String, why: &str) {
        self.input.recall_last(&line);
        let time = chrono::Local::now().format("%H:%M").to_string();
        let here = self.room_ahead();
        let ahead = here
            .as_ref()
            .is_some_and(|r| !self.state.rooms.contains(r) || self.state.entering.contains(r));
        self.add_line_in(
            Line::Info(format!("{why}; Up brings it back: {line}")),
            time,
            here,
        );
        if ahead {
            if let Some(e) = self.entries.back_mut() {
                e.ahead = true;
                self.ahead_notes += 1;
            }
        }
    }

    /// Notes filed in a room a `/join` led to ([`Entry::ahead`]): once
    /// the session took that `/join` and the server answered it, they
    /// stay in the room entered; in one refused (not ours), they go to
    /// the room current now, where the person is.
    pub(super) fn place_ahead_notes(&mut self) {
        if self.ahead_notes == 0 {
            return;
        }
        // (Counted again: the cap or a /clear may have taken some.)
        let mut left = 0;
        for i in 0..self.entries.len() {
            let e = &self.entries[i];
            let Some(room) = e.room.clone().filter(|_| e.ahead) else {
                continue;
            };
            let joining = self
                .waiting
                .iter()
                .any(|l| matches!(parse_line(l), Command::Join(r) if r == room));
            // While not joined (a connection lost before the /join was
            // answered), the room is entered again, or refused, once back.
            if joining || self.state.entering.contains(&room) || !self.state.joined {
                left += 1;
                continue;
            }
            self.entries[i].ahead = false;
            if self.state.rooms.contains(&room) {
                continue;
            }
            self.entries[i].room = self.state.current.clone();
            let rows = self.rows_of(i..i + 1, usize::MAX);
            self.keep_view(i + 1, rows, true);
        }
        self.ahead_notes = left;
    }

    /// The room typed lines go to once the lines handed on are taken: a
    /// Ctrl-N, Ctrl-P or `/join` waiting among them leads there.
    pub(super) fn room_ahead(&self) -> Option<String> {
        let joined = self.waiting.iter().rev().find_map(|l| match parse_line(l) {
            Command::Join(room) => Some(room),
            _ => None,
        });
        joined.or_else(|| self.state.current.clone())
    }

    /// Something happened on the terminal at `now` (as
    /// [`handle_event`](App::handle_event)). A key that types or deletes
    /// text (or sends), come before a refused line put back into the
    /// empty input was drawn or within [`UNSEEN`] of it, was meant for
    /// that empty line: it goes there, and the refused line is kept for
    /// Up (said), not joined by what is typed. Other keys act on the line
    /// as it is shown (Ctrl-C clears it, Ctrl-D leaves it be); one that
    /// moves the cursor or brings a line back shows the line was seen,
    /// and what is typed next edits it. Scrolling and switching rooms
    /// leave the input alone.
    pub fn handle_term(&mut self, event: Event, now: Instant) {
        // (Typing does nothing while leaving, or answers a paste's
        // question.)
        let typing = keys::types_text(&event) && !self.quitting && self.paste.is_none();
        if typing {
            if let Some(r) = self.restored.take() {
                let unseen = r
                    .drawn
                    .is_none_or(|at| now.saturating_duration_since(at) < UNSEEN);
                if unseen && self.input.text() == r.line {
                    self.input.clear();
                    self.kept_for_up(r.line, r.why);
                }
            }
        }
        let before = self
            .restored
            .as_ref()
            .map(|_| (self.input.text().to_owned(), self.input.cursor()));
        self.handle_event(event);
        if before.is_some_and(|(text, cursor)| {
            (text.as_str(), cursor) != (self.input.text(), self.input.cursor())
        }) {
            self.restored = None;
        }
    }

    /// The messages among the lines not taken yet, as they will be sent,
    /// oldest first: to the current room and the `/query` nickname as far
    /// as the screen knows, following a `/join` or `/query` typed before
    /// them.
    pub fn waiting_messages(&self) -> Vec<Sending> {
        let mut room = self.state.current.clone().unwrap_or_default();
        let mut query = self.state.query.clone();
        let mut out = Vec::new();
        for line in &self.waiting {
            match parse_line(line) {
                Command::Send { mut to, text } => {
                    if to.is_empty() {
                        to.extend(query.clone());
                    }
                    // Not taken by the session yet: never sent.
                    out.push(Sending {
                        id: String::new(),
                        room: room.clone(),
                        to,
                        text,
                        may_have_arrived: false,
                    });
                }
                Command::Join(r) => room = r,
                Command::Query(nick) => query = nick,
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
