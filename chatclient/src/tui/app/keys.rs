//! What each key and paste does to the full-screen client's [`App`]:
//! editing, sending, completing, switching rooms, scrolling, and a paste
//! of several lines (asked about when long).

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind};

use super::*;

/// Whether `event` types text into the input line, deletes some, or
/// sends it (as `App::key` takes it): a character, Backspace, Delete,
/// Ctrl-H, Ctrl-W, Ctrl-U, Ctrl-K, Alt-Backspace, Tab (it completes),
/// Enter, a paste. Not a key that moves the cursor or the view, brings a
/// line back (Up, Down), switches rooms, clears the line (Ctrl-C) or
/// leaves (Ctrl-D, which on a line typed deletes only what is under the
/// cursor, nothing at its end), nor the mouse.
pub(super) fn types_text(event: &Event) -> bool {
    let Event::Key(key) = event else {
        return matches!(event, Event::Paste(_));
    };
    if key.kind == KeyEventKind::Release {
        return false;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    match key.code {
        KeyCode::Enter | KeyCode::Backspace | KeyCode::Delete | KeyCode::Tab | KeyCode::BackTab => {
            true
        }
        KeyCode::Char(c) if ctrl => {
            matches!(c.to_ascii_lowercase(), 'h' | 'w' | 'u' | 'k' | 'j' | 'm')
        }
        KeyCode::Char(c) => !alt && !c.is_control(),
        _ => false,
    }
}

impl App {
    /// Something happened on the terminal.
    pub fn handle_event(&mut self, event: Event) {
        match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => self.key(key),
            Event::Paste(text) => {
                self.completion = None;
                self.ctrl_c_armed = false;
                if !self.quitting {
                    self.paste(&text);
                }
            }
            Event::Mouse(m) => match m.kind {
                MouseEventKind::ScrollUp => self.scroll_up(WHEEL_ROWS),
                MouseEventKind::ScrollDown => self.scroll_down(WHEEL_ROWS),
                _ => {}
            },
            _ => {}
        }
    }

    fn key(&mut self, key: KeyEvent) {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        if !matches!(key.code, KeyCode::Tab | KeyCode::BackTab) {
            self.completion = None;
        }
        let armed = std::mem::take(&mut self.ctrl_c_armed);
        let code = match key.code {
            KeyCode::Char(c) if ctrl => KeyCode::Char(c.to_ascii_lowercase()),
            other => other,
        };
        if self.paste.is_some() {
            match code {
                KeyCode::Char('y' | 'Y') | KeyCode::Enter if !ctrl => self.answer_paste(true),
                KeyCode::Char('n' | 'N') | KeyCode::Esc if !ctrl => self.answer_paste(false),
                KeyCode::Char('c') if ctrl => self.answer_paste(false),
                _ => {}
            }
            return;
        }
        // Keys that only move the view work while leaving too.
        match code {
            KeyCode::PageUp => return self.scroll_up(self.page()),
            KeyCode::PageDown => return self.scroll_down(self.page()),
            KeyCode::Esc => return self.scroll_to_bottom(),
            KeyCode::F(2) => {
                self.show_names = !self.show_names;
                return;
            }
            KeyCode::Char('l') if ctrl => return self.effects.push(Effect::Redraw),
            KeyCode::Char('c') if ctrl => {
                if self.quitting || (armed && self.input.is_empty()) {
                    self.effects.push(Effect::LeaveNow);
                } else if self.input.is_empty() {
                    self.ctrl_c_armed = true;
                } else {
                    // Clearing a typed line only clears it: leaving takes
                    // two more, on the empty line.
                    self.input.clear();
                }
                return;
            }
            _ => {}
        }
        if self.quitting {
            return;
        }
        let input = &mut self.input;
        match code {
            KeyCode::Enter => self.submit(),
            KeyCode::Char('j' | 'm') if ctrl => self.submit(),
            KeyCode::Tab => self.complete(false),
            KeyCode::BackTab => self.complete(true),
            KeyCode::Char('d') if ctrl => {
                if input.is_empty() {
                    self.quitting = true;
                    self.effects.push(Effect::End);
                } else {
                    input.delete();
                }
            }
            KeyCode::Char('n') if ctrl => self.switch_room(true),
            KeyCode::Char('p') if ctrl => self.switch_room(false),
            KeyCode::Up => input.history_up(),
            KeyCode::Down => input.history_down(),
            KeyCode::Left if ctrl || alt => input.word_left(),
            KeyCode::Right if ctrl || alt => input.word_right(),
            KeyCode::Left => input.left(),
            KeyCode::Right => input.right(),
            KeyCode::Char('b') if ctrl => input.left(),
            KeyCode::Char('f') if ctrl => input.right(),
            KeyCode::Char('b') if alt => input.word_left(),
            KeyCode::Char('f') if alt => input.word_right(),
            KeyCode::Home => input.home(),
            KeyCode::End => input.end(),
            KeyCode::Char('a') if ctrl => input.home(),
            KeyCode::Char('e') if ctrl => input.end(),
            KeyCode::Backspace if alt => input.delete_word_before(),
            KeyCode::Backspace => input.backspace(),
            KeyCode::Char('h') if ctrl => input.backspace(),
            KeyCode::Delete => input.delete(),
            KeyCode::Char('w') if ctrl => input.delete_word_before(),
            KeyCode::Char('u') if ctrl => input.delete_to_start(),
            KeyCode::Char('k') if ctrl => input.delete_to_end(),
            KeyCode::Char(c) if !ctrl && !alt && !c.is_control() => input.insert(c),
            _ => {}
        }
    }

    /// Enter: hand the line to the session (`/clear` is the screen's own).
    fn submit(&mut self) {
        let line = self.input.take();
        if line.trim().is_empty() {
            return;
        }
        let command = parse_line(&line);
        let too_long =
            |text: &str| self.state.max_text > 0 && text_bytes(text) > self.state.max_text;
        match &command {
            // A message is shown under the room's newest: in a room cut,
            // they are fetched first (its echo comes after them).
            Command::Send { text, .. } if !too_long(text) => self.scroll_to_bottom(),
            // A command's answer is a note, kept in a room cut too: it
            // stays cut (`/clear` empties it; nothing to fetch for).
            _ => self.scroll_to_bottom_only(),
        }
        match command {
            Command::Clear => {
                self.clear_view();
                // The session forgets what was shown, for `/history`.
                self.give(line);
            }
            Command::Help => {
                let time = chrono::Local::now().format("%H:%M").to_string();
                for text in HELP {
                    self.add_line(Line::Info((*text).to_owned()), time.clone());
                }
            }
            Command::Quit => {
                self.quitting = true;
                self.give(line);
            }
            // Past the most the current room takes from us to everyone
            // (recipients only lower it), the session refuses the message
            // and says why: the line stays, to be cut down, not retyped.
            Command::Send { text, .. }
                if self.state.max_text > 0 && text_bytes(&text) > self.state.max_text =>
            {
                self.give(line.clone());
                self.input.set(line, None);
            }
            _ => self.give(line),
        }
    }

    /// `/clear`: forget what the message area shows.
    fn clear_view(&mut self) {
        let current = self.state.current.clone();
        self.entries.retain(|e| !super::shown_in(e, &current));
        // Nothing shown: what comes is kept again (the session forgets
        // what it showed too).
        if let Some(room) = &current {
            self.cut.remove(room);
        }
        self.scroll_to_bottom();
    }

    /// Ctrl-N and Ctrl-P: the next or previous room becomes current.
    fn switch_room(&mut self, forward: bool) {
        let rooms = &self.state.rooms;
        if rooms.len() < 2 {
            return;
        }
        // From the room the last Ctrl-N went to, if the session has not
        // taken that line yet (keys in a burst, over a slow link).
        let from = self.switching.as_ref().or(self.state.current.as_ref());
        let at = from
            .and_then(|c| rooms.iter().position(|r| r == c))
            .unwrap_or(0);
        let next = if forward {
            (at + 1) % rooms.len()
        } else {
            (at + rooms.len() - 1) % rooms.len()
        };
        let room = rooms[next].clone();
        self.give(format!("/join {room}"));
        self.switching = Some(room);
    }

    fn complete(&mut self, back: bool) {
        let mut text = self.input.text().to_owned();
        if let Some(c) = &mut self.completion {
            c.step(back);
            let cursor = c.apply(&mut text);
            self.input.set(text, Some(cursor));
            return;
        }
        let me = nick_key(&self.state.nick);
        let nicks: Vec<&str> = self
            .state
            .roster
            .iter()
            .map(String::as_str)
            .filter(|n| nick_key(n) != me)
            .collect();
        let rooms: Vec<&str> = self
            .state
            .rooms
            .iter()
            .chain(&self.state.listed_rooms)
            .map(String::as_str)
            .collect();
        let words = Words { nicks, rooms };
        let Some(mut c) = Completion::start(&text, self.input.cursor(), &words) else {
            return;
        };
        let cursor = c.apply(&mut text);
        self.input.set(text, Some(cursor));
        self.completion = Some(c);
    }

    /// A bracketed paste: one line goes into the input line; several are
    /// sent as separate messages (asked about first if there are many),
    /// and what follows the last line break stays in the input line. A
    /// paste while another waits for its answer goes on from where that
    /// one ended: its lines join the question.
    fn paste(&mut self, text: &str) {
        let text = text
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .replace('\t', "    ");
        let text: String = text
            .chars()
            .filter(|&c| c == '\n' || !c.is_control())
            .collect();
        if let Some(q) = &mut self.paste {
            let (lines, rest, at) = split_pasted(&text, &q.rest, q.at, false);
            q.lines.extend(lines);
            q.rest = rest;
            q.at = at;
            return;
        }
        if !text.contains('\n') {
            self.input.insert_str(&text);
            return;
        }
        let before = (self.input.text().to_owned(), self.input.cursor());
        let (lines, rest, at) = split_pasted(&text, &before.0, before.1, true);
        if lines.len() > PASTE_ASK_OVER {
            self.paste = Some(PasteQuestion {
                lines,
                rest,
                at,
                before,
            });
            return;
        }
        self.send_pasted(lines, rest);
    }

    fn send_pasted(&mut self, lines: Vec<String>, rest: String) {
        if !lines.is_empty() {
            self.scroll_to_bottom();
        }
        for line in lines {
            self.input.remember(&line);
            self.give(line);
        }
        self.input.set(rest, None);
    }

    fn answer_paste(&mut self, yes: bool) {
        let Some(q) = self.paste.take() else { return };
        if yes {
            self.send_pasted(q.lines, q.rest);
        } else {
            self.input.set(q.before.0, Some(q.before.1));
        }
    }

    fn page(&self) -> usize {
        self.area.1.saturating_sub(1).max(1)
    }

    fn scroll_up(&mut self, rows: usize) {
        // (Fetching older messages on the way: see `read_up`.)
        self.read_up(rows);
        // (Back to reading: the newest of a room cut, not asked yet.)
        self.newest_of = None;
    }

    fn scroll_down(&mut self, rows: usize) {
        self.stop_reading_up();
        if self.scroll == 0 {
            // Down past the last line: in a room cut, that line says its
            // newer ones were not kept, and this fetches them.
            self.want_newest();
            return;
        }
        self.scroll = self.scroll.saturating_sub(rows);
        if self.scroll == 0 {
            self.new_below = 0;
            self.new_unkept = 0;
            // Read back: the pages asked at the bottom were there to read.
            self.release_held();
            self.trim();
        }
    }

    /// Back to the newest line (Esc; a line sent): in a room cut while
    /// read back, its newest are asked again.
    pub(super) fn scroll_to_bottom(&mut self) {
        self.scroll_to_bottom_only();
        self.want_newest();
    }

    /// [`App::scroll_to_bottom`] of the room current so far, another
    /// becoming current (which is shown from its newest once it is).
    pub(super) fn scroll_to_bottom_only(&mut self) {
        self.stop_reading_up();
        if self.scroll > 0 {
            // (See `scroll_down`.)
            self.release_held();
        }
        self.scroll = 0;
        self.new_below = 0;
        self.new_unkept = 0;
        self.trim();
    }

    /// Drawn, the screen had `news` entries that may be new lines
    /// ([`Entry::may_be_new`]) wholly under its bottom: the new lines still
    /// below it ([`App::new_below`]) are those not kept and at most as
    /// many kept as there are among them. New lines come at the bottom,
    /// so those kept are the last of the view's lines: read down to,
    /// they are no longer below.
    pub(crate) fn new_below_at_most(&mut self, news: usize) {
        let unkept = self.new_unkept.min(self.new_below);
        let kept = self.new_below - unkept;
        if kept == 0 {
            return;
        }
        self.new_below = unkept + news.min(kept);
        self.new_unkept = unkept;
    }
}

impl Entry {
    /// Whether it may be a new line below the screen
    /// ([`App::new_below_at_most`]): not the line saying a room is cut,
    /// nor what a page brought.
    pub(crate) fn may_be_new(&self) -> bool {
        !self.cut && !matches!(self.line, Line::HistoryNote { .. })
    }
}

/// `text` (cleaned) pasted into `input` at byte `cursor`: the lines it
/// sends, what the input line holds after them, and where in that the
/// paste ended. `typed`: whether the input before the cursor was typed
/// (then the first line finishes it, a command if it was one) or is the
/// end of an earlier paste (then it is text, as every pasted line).
fn split_pasted(
    text: &str,
    input: &str,
    cursor: usize,
    typed: bool,
) -> (Vec<String>, String, usize) {
    let (head, tail) = input.split_at(cursor);
    let mut pieces: Vec<&str> = text.split('\n').collect();
    let last = pieces.pop().unwrap_or("");
    if pieces.is_empty() {
        return (
            Vec::new(),
            format!("{head}{last}{tail}"),
            cursor + last.len(),
        );
    }
    let mut lines = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let line = match i {
            0 => format!("{head}{piece}"),
            _ => (*piece).to_owned(),
        };
        if i == 0 && typed && !head.is_empty() {
            // The first line finishes what was typed: it is a command if
            // that was.
            lines.push(line);
        } else if line.trim_start().starts_with('/') {
            // Pasted text is text: a line that starts with / (after any
            // spaces, which a typed line ignores too) is sent as it is,
            // without those spaces, not run as a command.
            lines.push(format!("/{}", line.trim_start()));
        } else {
            lines.push(line);
        }
    }
    lines.retain(|l| !l.trim().is_empty());
    (lines, format!("{last}{tail}"), last.len())
}

#[cfg(test)]
mod tests;
