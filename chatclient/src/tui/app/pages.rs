//! Where the lines of a history page go in the full-screen client's
//! message area ([`App::insert_page_line`]): each after the one before
//! it, a scrolled-back view staying on what it shows; and the lines
//! saying a room's messages are missing after a reconnect, which pages
//! fill.

use super::*;

impl App {
    /// Put a line of a page at `at` (the page's next line goes after
    /// it); nothing goes for it (the next line at the bottom makes the
    /// log [`MAX_ENTRIES`] again, see [`App::trim`]), but scrolled back
    /// past [`MAX_ENTRIES_EVER`]. A view
    /// scrolled back stays on what it shows, the line going above it, in
    /// it or below it (a page of a history begun anew goes below the
    /// earlier one's lines): what is below the line is counted for the
    /// page's first line, not laid out again for each.
    pub(super) fn insert_page_line(&mut self, at: usize, mut entry: Entry) {
        let room = entry.room.clone();
        // Asked while following the newest (`/history` typed at the
        // bottom): kept for the reader to scroll up to, not taken by the
        // cap at the next line (it may be the oldest of all). Not the
        // messages missing after a reconnect, which nobody asked for.
        let asked = matches!(
            entry.line,
            Line::Msg {
                page: true,
                missed: false,
                ..
            } | Line::HistoryStart { .. }
        );
        if self.scroll == 0 && asked {
            entry.held = true;
            self.holding = true;
        }
        let after = match &entry.line {
            Line::Msg { place, .. } if place.era != 0 => Some(*place),
            _ => None,
        };
        let going_on = self
            .page_at
            .as_ref()
            .filter(|p| p.room == room && p.at == at);
        let known = going_on.and_then(|p| p.below);
        let start = going_on.map_or(at, |p| p.start);
        self.entries.insert(at, entry);
        let mut below = None;
        let rows = match self.scroll {
            0 => 0,
            _ => self.rows_of(at..at + 1, usize::MAX),
        };
        if rows > 0 {
            let stop = self.scroll + 1;
            let counted = match known {
                // All of them, or as far as this view needs.
                Some((n, upto)) if n < upto || upto >= stop => (n, upto),
                _ => (self.rows_of(at + 1..self.entries.len(), stop), stop),
            };
            if counted.0 <= self.scroll {
                // At the view's bottom or below it: the view stays.
                self.scroll += rows;
            }
            below = Some(counted);
        }
        self.page_at = Some(PageAt {
            room,
            start,
            at: at + 1,
            after,
            below,
        });
        // (Nothing goes but past the bound: see `trim`.)
        if self.scroll > 0 {
            self.bound();
        }
    }

    /// Take away the lines saying messages are missing in the rooms
    /// `gone` picks.
    pub(super) fn drop_gap_lines(&mut self, gone: impl Fn(&String) -> bool) {
        let before = self.entries.len();
        self.entries.retain(|e| match (&e.line, &e.room) {
            (Line::Gap { filled: false, .. }, Some(room)) => !gone(room),
            _ => true,
        });
        if self.entries.len() != before {
            self.page_at = None;
        }
    }

    /// Where `room`'s line saying messages are missing is, if it has one.
    pub(super) fn gap_line(&self, room: &Option<String>) -> Option<usize> {
        self.entries
            .iter()
            .rposition(|e| matches!(&e.line, Line::Gap { filled: false, .. }) && e.room == *room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::fixture::*;
    use crate::tui::app::test_lines::{missing_at, placed_in};

    #[test]
    fn a_history_page_goes_above_what_its_room_shows() {
        let mut app = app();
        app.add_line(msg("rust", "bob", &[], "r1"), "12:00".into());
        // Notes of the room over its first message (entering it) were
        // said after every older one: a page goes above them.
        let entered = Line::Entered {
            room: "lobby".into(),
            text: "entered #lobby; 2 online".into(),
        };
        app.add_line(entered, "12:00".into());
        app.add_line(msg("lobby", "bob", &[], "new1"), "12:00".into());
        app.add_line(msg("lobby", "carol", &[], "new2"), "12:01".into());
        let older = |text: &str| Line::Msg {
            room: Some("lobby".into()),
            history: true,
            page: true,
            missed: false,
            from: "bob".into(),
            to: vec![],
            text: text.into(),
            ts: 0,
            place: crate::render::Place::default(),
        };
        app.add_line(older("old1"), "12:02".into());
        app.add_line(older("old2"), "12:02".into());
        // A line after the page is new again: at the bottom.
        app.add_line(msg("lobby", "bob", &[], "new3"), "12:03".into());
        let texts: Vec<&str> = app
            .entries
            .iter()
            .filter_map(|e| match &e.line {
                Line::Msg { text, .. } => Some(text.as_str()),
                Line::Entered { .. } => Some("(entered)"),
                _ => None,
            })
            .collect();
        assert_eq!(
            texts,
            ["r1", "old1", "old2", "(entered)", "new1", "new2", "new3"]
        );
    }

    /// Paging back to the start of a room showed the notes of entering
    /// it (`* joined as`, `* entered #lobby`) above the start of its
    /// history and its oldest message: each page went under them. They
    /// were said after every message older than the room's oldest shown,
    /// so a page goes above them, and the start mark above all; a note
    /// between two messages stays between them.
    #[test]
    fn a_page_goes_above_the_notes_over_its_rooms_first_message() {
        let mut app = app();
        let info = |text: &str| Line::Info(text.into());
        app.add_line(info("joined as alice"), "12:00".into());
        let entered = Line::Entered {
            room: "lobby".into(),
            text: "entered #lobby; 2 online".into(),
        };
        app.add_line(entered, "12:00".into());
        app.add_line(msg("rust", "bob", &[], "r1"), "12:00".into());
        app.add_line(placed_in("lobby", "m5", 1, 5, false), "12:00".into());
        app.add_line(info("who: alice bob"), "12:01".into());
        app.add_line(placed_in("lobby", "m6", 1, 6, false), "12:01".into());
        for seq in [3, 4, 1, 2] {
            let line = placed_in("lobby", &format!("m{seq}"), 1, seq, true);
            app.add_line(line, "12:02".into());
        }
        let start = Line::HistoryStart {
            room: "lobby".into(),
            era: 1,
            older_gone: false,
        };
        app.add_line(start, "12:02".into());
        let lobby: Vec<String> = app
            .entries
            .iter()
            .filter(|e| app.in_view(e))
            .map(|e| match &e.line {
                Line::Msg { text, .. } | Line::Info(text) => text.clone(),
                Line::Entered { .. } => "(entered)".into(),
                Line::HistoryStart { .. } => "(start)".into(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            lobby,
            [
                "(start)",
                "m1",
                "m2",
                "m3",
                "m4",
                "joined as alice",
                "(entered)",
                "m5",
                "who: alice bob",
                "m6"
            ]
        );
    }

    /// Paging back reached the room's first message: one mark, above
    /// it and the notes of entering the room (said after it); a later
    /// one takes its place.
    #[test]
    fn the_start_of_a_rooms_history_is_marked_once_at_the_top() {
        let mut app = app();
        let entered = Line::Entered {
            room: "lobby".into(),
            text: "entered #lobby; 2 online".into(),
        };
        app.add_line(entered, "12:00".into());
        app.add_line(msg("lobby", "bob", &[], "m2"), "12:00".into());
        let start = || Line::HistoryStart {
            room: "lobby".into(),
            older_gone: false,
            era: 0,
        };
        let texts = |app: &App| -> Vec<String> {
            app.entries
                .iter()
                .map(|e| match &e.line {
                    Line::Msg { text, .. } => text.clone(),
                    Line::Entered { .. } => "(entered)".into(),
                    Line::HistoryStart { .. } => "(start)".into(),
                    other => format!("{other:?}"),
                })
                .collect()
        };
        app.add_line(start(), "12:01".into());
        assert_eq!(texts(&app), ["(start)", "(entered)", "m2"]);
        app.add_line(msg("lobby", "bob", &[], "m3"), "12:02".into());
        app.add_line(start(), "12:03".into());
        assert_eq!(texts(&app), ["(start)", "(entered)", "m2", "m3"]);
    }

    /// What a /history brought (or that its page is on its way) is one
    /// line a room, the newest, at the bottom; scrolled back, the view
    /// stays on what it shows.
    #[test]
    fn a_history_note_takes_the_last_ones_place() {
        let mut app = app();
        let note = |room: &str, text: &str| Line::HistoryNote {
            room: room.into(),
            text: text.into(),
        };
        let texts = |app: &App| -> Vec<String> {
            app.entries
                .iter()
                .map(|e| match &e.line {
                    Line::Msg { text, .. } => text.clone(),
                    Line::HistoryNote { room, text } => format!("#{room}: {text}"),
                    other => format!("{other:?}"),
                })
                .collect()
        };
        app.add_line(msg("lobby", "bob", &[], "new1"), "12:00".into());
        app.add_line(note("rust", "2 older"), "12:00".into());
        app.add_line(note("lobby", "on their way"), "12:01".into());
        app.add_line(note("lobby", "5 older"), "12:01".into());
        app.add_line(msg("lobby", "bob", &[], "new2"), "12:02".into());
        assert_eq!(
            texts(&app),
            ["new1", "#rust: 2 older", "#lobby: 5 older", "new2"]
        );
        // Scrolled back to the first line, the note below the view goes:
        // what the view shows does not move.
        app.area = (80, 2);
        app.scroll = 2;
        app.add_line(note("lobby", "3 older"), "12:03".into());
        assert_eq!(
            texts(&app),
            ["new1", "#rust: 2 older", "new2", "#lobby: 3 older"]
        );
        assert_eq!(app.scroll, 2, "one row gone below the view, one come");
    }

    /// Messages missing after a reconnect, fetched by /history, go
    /// under the line saying they are missing (newest page first, each
    /// page in order), not above everything; once none is missing, that
    /// line goes.
    #[test]
    fn a_gap_is_filled_where_it_is() {
        let mut app = app();
        let gap = |filled| Line::Gap {
            room: "lobby".into(),
            filled,
        };
        app.add_line(msg("lobby", "bob", &[], "m3"), "12:00".into());
        app.add_line(gap(false), "12:01".into());
        app.add_line(msg("lobby", "bob", &[], "m19"), "12:01".into());
        let shown = |app: &App| -> Vec<String> {
            app.entries
                .iter()
                .map(|e| match &e.line {
                    Line::Msg { text, .. } => text.clone(),
                    Line::Gap { .. } => "(gap)".into(),
                    _ => "(other)".into(),
                })
                .collect()
        };
        app.add_line(missing_at("m17", Place::default()), "12:02".into());
        app.add_line(missing_at("m18", Place::default()), "12:02".into());
        app.add_line(Line::Info("2 missing messages".into()), "12:02".into());
        app.add_line(missing_at("m15", Place::default()), "12:03".into());
        app.add_line(missing_at("m16", Place::default()), "12:03".into());
        assert_eq!(
            shown(&app),
            ["m3", "(gap)", "m15", "m16", "m17", "m18", "m19", "(other)"]
        );
        app.add_line(gap(true), "12:04".into());
        assert_eq!(
            shown(&app),
            ["m3", "m15", "m16", "m17", "m18", "m19", "(other)"]
        );
    }

    /// A room's history begun anew (the server restarted without it): its
    /// messages, and a page of it, go below the earlier history's, whose
    /// seqs are not theirs to compare with; the start of its history is
    /// marked above its first message.
    #[test]
    fn a_history_begun_anew_goes_below_the_earlier_one() {
        let mut app = app();
        app.add_line(placed("a5", 1, 5, false), "12:00".into());
        app.add_line(placed("a6", 1, 6, false), "12:00".into());
        app.add_line(placed("n30", 2, 30, false), "12:01".into());
        app.add_line(placed("n31", 2, 31, false), "12:01".into());
        let gone = Line::HistoryGone {
            room: "lobby".into(),
        };
        app.add_line(gone, "12:01".into());
        app.add_line(placed("n1", 2, 1, true), "12:02".into());
        app.add_line(placed("n2", 2, 2, true), "12:02".into());
        let start = Line::HistoryStart {
            room: "lobby".into(),
            older_gone: false,
            era: 2,
        };
        app.add_line(start, "12:02".into());
        assert_eq!(
            words(&app),
            ["a5", "a6", "(start)", "n1", "n2", "n30", "n31", "(gone)"]
        );
    }

    /// A room's history begun anew with nothing said in it yet: paging
    /// back finds its start at once, and the mark goes below the earlier
    /// history's messages, not above them at the top (where it said the
    /// room's history started above messages of the one before); what is
    /// said then goes below the mark.
    #[test]
    fn the_start_of_an_empty_history_begun_anew_goes_below_the_earlier_one() {
        let mut app = app();
        app.add_line(placed("a5", 1, 5, false), "12:00".into());
        app.add_line(placed("a6", 1, 6, false), "12:00".into());
        let gone = Line::HistoryGone {
            room: "lobby".into(),
        };
        app.add_line(gone, "12:01".into());
        let start = Line::HistoryStart {
            room: "lobby".into(),
            older_gone: false,
            era: 2,
        };
        app.add_line(start, "12:02".into());
        app.add_line(placed("n1", 2, 1, false), "12:03".into());
        assert_eq!(words(&app), ["a5", "a6", "(gone)", "(start)", "n1"]);
    }

    /// A gap's line goes when nothing will be fetched into it any more:
    /// its room left, or its history begun anew.
    #[test]
    fn a_gap_line_goes_with_its_room_or_its_history() {
        let mut app = app();
        for room in ["lobby", "rust"] {
            let gap = Line::Gap {
                room: room.into(),
                filled: false,
            };
            app.add_line(gap, "12:00".into());
        }
        let gaps = |app: &App| -> Vec<String> {
            app.entries
                .iter()
                .filter(|e| matches!(e.line, Line::Gap { .. }))
                .filter_map(|e| e.room.clone())
                .collect()
        };
        assert_eq!(gaps(&app), ["lobby", "rust"]);
        let mut state = app.state.clone();
        state.rooms = vec!["lobby".into()];
        app.set_state(state);
        assert_eq!(gaps(&app), ["lobby"], "#rust was left");
        let gone = Line::HistoryGone {
            room: "lobby".into(),
        };
        app.add_line(gone, "12:01".into());
        assert!(gaps(&app).is_empty());
    }
}
