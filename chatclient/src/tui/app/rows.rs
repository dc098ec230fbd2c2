//! How many rows entries take in the message area, counted from the
//! bottom ([`entry_height`]: each laid out once for a width), keeping a
//! scrolled-back view on what it shows as entries come and go, and each
//! room's view where its reader left it.

use super::*;
use crate::tui::format::entry_height;

impl App {
    /// The rows the entries at `range` take in the view (none for those
    /// of other rooms), counted from the last, up to `stop` at most.
    pub(super) fn rows_of(&mut self, range: std::ops::Range<usize>, stop: usize) -> usize {
        let (theme, width) = (self.theme, self.area.0);
        let mut rows = 0;
        for e in self.entries.range(range).rev() {
            if rows >= stop {
                break;
            }
            if shown_in(e, &self.state.current) {
                rows += entry_height(e, theme, &mut self.nicks, width);
            }
        }
        rows
    }

    /// `rows` were added (or taken away) just above the entry at `at`:
    /// scrolled back, a view above them stays where it is (counted from
    /// the bottom, it moves by as many rows).
    pub(super) fn keep_view(&mut self, at: usize, rows: usize, added: bool) {
        if self.scroll == 0 || rows == 0 {
            return;
        }
        // Only as far up as the view's bottom: a page of a long log lays
        // out what is below the view, not the whole log, for each line.
        let below = self.rows_of(at..self.entries.len(), self.scroll + 1);
        if below > self.scroll {
            // In the view or above it: the view stays (what is above it
            // moves up).
            return;
        }
        self.scroll = if added {
            self.scroll + rows
        } else {
            self.scroll.saturating_sub(rows)
        };
    }
}

/// Where the reader left a room's view scrolled back, to show it there
/// again once the room is current ([`App::back_to_view`]).
#[derive(Debug)]
pub(super) struct LeftAt {
    /// The line at the view's bottom ([`Entry::id`]), and how many of its
    /// rows were below the view; `None` when the view was above the
    /// oldest line (scrolled up, not drawn since).
    line: Option<(u32, usize)>,
    /// The rows scrolled back: where the view goes if that line is gone
    /// (the cap let it go while another room was read at its newest).
    scroll: usize,
    /// [`App::new_below`] then, and the room's new lines since.
    new_below: usize,
    /// Of those, the lines not kept (of a room cut).
    new_unkept: usize,
}

impl App {
    /// The next [`Entry::id`].
    pub(super) fn new_id(&mut self) -> u32 {
        self.last_id = self.last_id.wrapping_add(1);
        self.last_id
    }

    /// Another room becomes current: where the reader is in this one,
    /// scrolled back, is kept to come back to, as its new lines below
    /// the view are counted; the area then follows the newest lines as
    /// it shows the other room.
    pub(super) fn leave_view(&mut self) {
        let room = self.state.current.clone();
        if self.scroll == 0 {
            self.left_at.remove(&room);
        } else {
            let left = LeftAt {
                line: self.line_at_bottom(),
                scroll: self.scroll,
                new_below: self.new_below,
                new_unkept: self.new_unkept,
            };
            self.left_at.insert(room, left);
        }
        self.scroll_to_bottom_only();
    }

    /// The line at the bottom of the view, and how many of its rows are
    /// below it.
    fn line_at_bottom(&mut self) -> Option<(u32, usize)> {
        let (theme, width) = (self.theme, self.area.0);
        let mut below = 0;
        for e in self.entries.iter().rev() {
            if !shown_in(e, &self.state.current) {
                continue;
            }
            let rows = entry_height(e, theme, &mut self.nicks, width);
            if below + rows > self.scroll {
                return Some((e.id, self.scroll - below));
            }
            below += rows;
        }
        None
    }

    /// The room made current is shown where its reader left it scrolled
    /// back, if they did ([`App::leave_view`]): the same line at the
    /// view's bottom, what came below it since counted as new below.
    /// Whether it was (if not, the room is shown from its newest).
    pub(super) fn back_to_view(&mut self) -> bool {
        let Some(left) = self.left_at.remove(&self.state.current) else {
            return false;
        };
        let current = self.state.current.clone();
        let at = left.line.and_then(|(id, up)| {
            let at = (self.entries.iter()).rposition(|e| e.id == id && shown_in(e, &current))?;
            Some((at, up))
        });
        self.scroll = match at {
            Some((at, up)) => {
                let own = self.rows_of(at..at + 1, usize::MAX);
                self.rows_of(at + 1..self.entries.len(), usize::MAX) + up.min(own.saturating_sub(1))
            }
            None => left.scroll,
        };
        if self.scroll > 0 {
            self.new_below = left.new_below;
            self.new_unkept = left.new_unkept;
        }
        self.scroll > 0
    }

    /// `entry` came, of a room not shown: if its view was left scrolled
    /// back, one more new line below it (not `kept`: of a room cut).
    pub(super) fn new_below_left(&mut self, entry: &Entry, kept: bool) {
        if !entry.may_be_new() {
            return;
        }
        if let Some(left) = self.left_at.get_mut(&entry.room) {
            left.new_below += 1;
            left.new_unkept += usize::from(!kept);
        }
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::KeyCode;

    use super::*;
    use crate::tui::app::fixture::*;

    #[test]
    fn scrolled_back_the_view_stays_put() {
        let mut app = app();
        app.area = (40, 10);
        for i in 0..30 {
            app.add_line(msg("lobby", "bob", &[], &format!("m{i}")), "12:00".into());
        }
        app.handle_event(key(KeyCode::PageUp));
        assert_eq!(app.scroll, 9);
        app.add_line(msg("lobby", "bob", &[], "new"), "12:00".into());
        assert_eq!((app.scroll, app.new_below), (10, 1));
        // What a page of history brought is said at the bottom, and is
        // not news there.
        let note = Line::HistoryNote {
            room: "lobby".into(),
            text: "5 older messages of #lobby; /history shows more".into(),
        };
        // A line in another room does not move the view.
        app.add_line(msg("rust", "bob", &[], "elsewhere"), "12:00".into());
        assert_eq!(app.scroll, 10);
        app.add_line(note, "12:00".into());
        assert_eq!(app.new_below, 1);
        app.handle_event(key(KeyCode::Esc));
        assert_eq!((app.scroll, app.new_below), (0, 0));
    }

    /// PageUp twice in #lobby, Ctrl-N, Ctrl-P: #lobby was back at its
    /// newest line, and what it said below the screen was gone. Each
    /// room is shown where its reader left it, the same lines on the
    /// screen, what came in it meanwhile new below; a room left at its
    /// newest line is shown from its newest.
    #[test]
    fn a_room_come_back_to_is_where_its_reader_left_it() {
        let mut app = app();
        let say = |app: &mut App, room: &str, text: String| {
            app.add_line(msg(room, "bob", &[], &text), "12:00".into());
        };
        let make_current = |app: &mut App, room: &str| {
            let mut state = app.state.clone();
            state.current = Some(room.into());
            app.set_state(state);
        };
        for i in 0..60 {
            say(&mut app, "lobby", format!("l{i}"));
        }
        say(&mut app, "rust", "r0".into());
        area_rows(&mut app);
        app.handle_event(key(KeyCode::PageUp));
        area_rows(&mut app);
        app.handle_event(key(KeyCode::PageUp));
        let read = area_rows(&mut app);
        assert!(read[0].ends_with("bob: l32"), "{read:?}");

        make_current(&mut app, "rust");
        assert_eq!(app.scroll, 0);
        for i in 60..63 {
            say(&mut app, "lobby", format!("l{i}"));
            say(&mut app, "rust", format!("r{i}"));
        }
        make_current(&mut app, "lobby");
        assert_eq!(area_rows(&mut app), read);
        assert_eq!(app.new_below, 3);

        make_current(&mut app, "rust");
        let newest = area_rows(&mut app);
        assert!(newest[9].ends_with("bob: r62"), "{newest:?}");
        make_current(&mut app, "lobby");
        app.handle_event(key(KeyCode::Esc));
        make_current(&mut app, "rust");
        say(&mut app, "lobby", "l63".into());
        make_current(&mut app, "lobby");
        assert_eq!((app.scroll, app.new_below), (0, 0));
        assert!(area_rows(&mut app)[9].ends_with("bob: l63"));
    }

    /// Read back while 30 lines came: `30 new below` stayed 30 as the
    /// reader read down through them, to the last. It counts those still
    /// wholly below the screen.
    #[test]
    fn new_below_counts_the_new_lines_still_below_the_screen() {
        let mut app = app();
        for i in 0..100 {
            app.add_line(msg("lobby", "bob", &[], &format!("m{i}")), "12:00".into());
        }
        area_rows(&mut app);
        app.handle_event(key(KeyCode::PageUp));
        assert_eq!(app.scroll, 9);
        for i in 0..30 {
            app.add_line(msg("lobby", "bob", &[], &format!("n{i}")), "12:01".into());
        }
        let mut counts = vec![];
        while app.scroll > 0 {
            area_rows(&mut app);
            counts.push(app.new_below);
            app.handle_event(key(KeyCode::PageDown));
        }
        assert_eq!(counts, [30, 30, 21, 12, 3]);
    }
}
