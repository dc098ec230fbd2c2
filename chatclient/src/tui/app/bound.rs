//! What the full-screen client's message area lets go past
//! [`MAX_ENTRIES_EVER`] lines while the reader reads back
//! ([`App::bound`]), and the rooms it cut: the line saying so, what
//! brings their newest again.

use super::*;
use crate::tui::format::entry_height;

impl App {
    /// Scrolled back past [`MAX_ENTRIES_EVER`] lines, what is farthest
    /// from the screen goes, down to [`MAX_ENTRIES`] lines fewer; the
    /// screen and one more screen of the current room above it stay.
    /// First the oldest lines above those, any room's, as at the cap
    /// (the session is told where what is shown of each room whose
    /// messages went starts, [`Effect::LetGo`], and paging up brings them
    /// back). If that is not enough (the reader near the top of the
    /// area), the newest lines below the screen go, then other rooms'
    /// lines among its own, newest first: each room whose lines went so
    /// is cut ([`App::cut`]), a line at the bottom of its lines saying
    /// so. The rows that go below the screen are taken off the scroll:
    /// what is on the screen does not move.
    pub(super) fn bound(&mut self) {
        if self.entries.len() <= MAX_ENTRIES_EVER {
            return;
        }
        let target = MAX_ENTRIES_EVER - MAX_ENTRIES;
        let (above, below) = self.around_screen();
        let mut upto = above.min(self.entries.len() - target);
        if let Some(p) = self
            .page_at
            .as_ref()
            .filter(|p| p.start < upto && upto < p.at)
        {
            // A page coming goes whole or not at all: the rest of one
            // whose first lines went is not shown (`pages_past_a_cut`),
            // and would leave a hole under what was kept of it.
            upto = if p.at <= above { p.at } else { p.start };
        }
        let mut gone_above = 0;
        while gone_above < upto {
            let Some(e) = self.entries.pop_front() else {
                break;
            };
            gone_above += 1;
            if let (Line::Msg { .. }, Some(room)) = (&e.line, e.room) {
                self.let_go.insert(room);
            }
        }
        // A page coming goes on where it was (if it went, the rest is
        // not shown: see above).
        self.page_at = self.page_at.take().filter(|p| p.at > gone_above);
        if let Some(p) = &mut self.page_at {
            p.at -= gone_above;
            p.start = p.start.saturating_sub(gone_above);
        }
        if self.entries.len() <= target {
            return;
        }
        let (theme, width) = (self.theme, self.area.0);
        let current = self.state.current.clone();
        let mut cut = std::collections::BTreeSet::new();
        let mut rows_gone = 0;
        let mut shown_gone = 0;
        while self.entries.len() > target && self.entries.len() > below.saturating_sub(gone_above) {
            let Some(e) = self.entries.pop_back() else {
                break;
            };
            if shown_in(&e, &current) {
                shown_gone += 1;
                rows_gone += entry_height(&e, theme, &mut self.nicks, width);
                // (A line of every room's, too, is one of the view's.)
                cut.extend(current.clone());
            }
            cut.extend(e.room);
        }
        // Under the screen's bottom: the view stays on what it shows.
        self.scroll = self.scroll.saturating_sub(rows_gone);
        // The new lines counted below it are the last: those that went
        // are new lines not kept now.
        let kept_new = self.new_below.saturating_sub(self.new_unkept);
        self.new_unkept += shown_gone.min(kept_new);
        if let Some(p) = &mut self.page_at {
            // (Counted again: lines below it went.)
            p.below = None;
            p.at = p.at.min(self.entries.len());
        }
        let mut over = self.entries.len().saturating_sub(target);
        if over > 0 {
            // Other rooms' lines among those shown (a quiet room read
            // back, others busy): out of sight too.
            let mut keep = vec![true; self.entries.len()];
            for (i, e) in self.entries.iter().enumerate().rev() {
                if over == 0 {
                    break;
                }
                if !shown_in(e, &current) {
                    keep[i] = false;
                    over -= 1;
                    cut.extend(e.room.clone());
                }
            }
            let mut keep = keep.into_iter();
            self.entries.retain(|_| keep.next().unwrap_or(true));
            self.page_at = None;
        }
        for room in cut {
            self.mark_cut(room);
        }
    }

    /// Where the screen is among the entries, counted from the bottom as
    /// the draw counts (not further back than the oldest line): those
    /// before the first index are wholly more than a screen above it
    /// (one screen of the current room's rows above what is read stays),
    /// those from the second on wholly below it.
    fn around_screen(&mut self) -> (usize, usize) {
        let (theme, width) = (self.theme, self.area.0);
        let height = self.area.1.max(1);
        let stop = self.scroll.saturating_add(2 * height);
        // The rows from each entry to the bottom, from the bottom up.
        let mut to_bottom = Vec::new();
        let mut rows = 0;
        let mut above = 0;
        for i in (0..self.entries.len()).rev() {
            if rows >= stop {
                above = i + 1;
                break;
            }
            let e = &self.entries[i];
            if shown_in(e, &self.state.current) {
                rows += entry_height(e, theme, &mut self.nicks, width);
            }
            to_bottom.push(rows);
        }
        let scroll = match above {
            0 => self.scroll.min(rows.saturating_sub(height)),
            _ => self.scroll,
        };
        let under = to_bottom.iter().take_while(|&&r| r <= scroll).count();
        (above, self.entries.len() - under)
    }

    /// `room` is cut ([`App::bound`]): its lines that come are counted,
    /// not kept, and one line at the bottom of its lines says so, with
    /// what brings them.
    fn mark_cut(&mut self, room: String) {
        let text = cut_text(
            &room,
            !self.state.joined || self.state.rooms.contains(&room),
        );
        self.cut.insert(room.clone());
        self.cut_untold.insert(room.clone());
        let here = Some(room);
        if self.entries.iter().any(|e| e.cut && e.room == here) {
            // Its line is there, the last of its lines still.
            return;
        }
        let entry = Entry {
            time: chrono::Local::now().format("%H:%M").to_string(),
            line: Line::Info(text),
            room: here,
            everywhere: false,
            mention: false,
            mine: false,
            ahead: false,
            held: false,
            cut: true,
            height: Default::default(),
            id: self.new_id(),
        };
        if self.scroll > 0 && self.in_view(&entry) {
            // Below the screen.
            let (theme, width) = (self.theme, self.area.0);
            self.scroll += entry_height(&entry, theme, &mut self.nicks, width);
        }
        self.entries.push_back(entry);
    }

    /// Tell the session of each room cut since it was last told, or left
    /// a gap while cut ([`Effect::Cut`]), where its messages shown end:
    /// what is missing after them is not paged into (the page, newer than
    /// all the room keeps, would not be shown). Its lines saying messages
    /// are missing below its last message go too: what they offer is not
    /// fetched.
    pub(super) fn tell_cuts(&mut self) {
        for room in std::mem::take(&mut self.cut_untold) {
            if !self.cut.contains(&room) {
                continue;
            }
            let here = Some(room.clone());
            let mut last = None;
            let mut i = self.entries.len();
            while i > 0 {
                i -= 1;
                let e = &self.entries[i];
                if e.room != here {
                    continue;
                }
                match &e.line {
                    Line::Msg { place, .. } => {
                        last = Some(*place).filter(|p| p.era != 0);
                        break;
                    }
                    Line::Gap { filled: false, .. } => {
                        let rows = self.rows_of(i..i + 1, usize::MAX);
                        self.keep_view(i + 1, rows, false);
                        self.entries.remove(i);
                        self.page_at = None;
                    }
                    _ => {}
                }
            }
            self.effects.push(Effect::Cut(room, last));
        }
    }

    /// The lines saying a room is cut say whether Esc brings its newest:
    /// not in a room left (not current, it stays cut until entered again
    /// and made current).
    pub(super) fn say_rooms_cut_left(&mut self) {
        let rooms = &self.state.rooms;
        for e in self.entries.iter_mut().filter(|e| e.cut) {
            if let Some(room) = &e.room {
                e.line = Line::Info(cut_text(room, rooms.contains(room)));
                e.height = Default::default();
            }
        }
    }

    /// The reader asked for the current room's newest line (Esc, a line
    /// sent, scrolled down past its last line, the room made current):
    /// in a room cut ([`App::bound`]), whose last line says its newer
    /// ones were not kept, they are fetched ([`App::show_newest_of_cut`]).
    pub(super) fn want_newest(&mut self) {
        let current = self.state.current.as_ref();
        self.newest_of = current.filter(|r| self.cut.contains(*r)).cloned();
        self.show_newest_of_cut();
    }

    /// The newest of the room cut the reader asked for
    /// ([`App::want_newest`]): its lines go and its newest page is asked
    /// ([`Effect::Older`], the session told first that nothing of the
    /// room is shown, [`Effect::LetGo`]: it asks from the newest, as
    /// `/history` after `/clear`), so that its latest messages are shown,
    /// the older ones a scroll up away. Once the session can ask:
    /// connected, and every line typed taken (a `/join` among them
    /// would take the request to another room).
    pub(super) fn show_newest_of_cut(&mut self) {
        if self.newest_of.is_none()
            || self.scroll > 0
            || !self.state.joined
            || !self.waiting.is_empty()
        {
            return;
        }
        let Some(room) = self.newest_of.take() else {
            return;
        };
        if self.state.current.as_ref() != Some(&room) || !self.cut.remove(&room) {
            return;
        }
        let here = Some(room.clone());
        // Its notes stay, above the page (they may not have been read),
        // and who came and went while it was cut (below its line saying
        // so): no page brings them.
        let cut_at = self.entries.iter().position(|e| e.cut && e.room == here);
        let mut at = 0;
        self.entries.retain(|e| {
            at += 1;
            let since_cut = cut_at.is_some_and(|c| at > c + 1);
            e.room != here
                || (!e.cut && (is_note(&e.line) || (since_cut && kept_while_cut(&e.line))))
        });
        self.page_at = None;
        self.let_go.insert(room);
        self.tell_let_go();
        self.older_asked += 1;
        self.effects
            .push(Effect::Older(crate::input::HISTORY_DEFAULT));
    }
}

/// The line saying `room` is cut ([`App::bound`]), with what brings its
/// newest: Esc, or, if it was left (`here` false), entering it again.
fn cut_text(room: &str, here: bool) -> String {
    if here {
        format!("newer lines of #{room} not kept while you read back: Esc for the newest")
    } else {
        format!("newer lines of #{room} not kept while you read back; you left #{room}")
    }
}

/// Whether `line` is kept in a room cut ([`App::bound`]) as it comes: a
/// note ([`is_note`]), or who came or went ([`Line::Presence`],
/// [`Line::WhileAway`]), which no page of history brings once its newest
/// are fetched.
pub(super) fn kept_while_cut(line: &Line) -> bool {
    is_note(line) || matches!(line, Line::Presence { .. } | Line::WhileAway { .. })
}

/// Whether `line` is a note filed under a room rather than the room's
/// own traffic: the client's lines (an error, `/who`, reconnecting,
/// entering and leaving), the server's notices, its history begun anew.
/// A room cut ([`App::bound`]) keeps them as they come, and when its
/// newest are fetched again.
fn is_note(line: &Line) -> bool {
    matches!(
        line,
        Line::Info(_)
            | Line::Error { .. }
            | Line::Notice { .. }
            | Line::Entered { .. }
            | Line::Left { .. }
            | Line::HistoryGone { .. }
    )
}

#[cfg(test)]
mod tests;
