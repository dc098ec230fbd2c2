//! The full-screen client's cap while following the newest
//! ([`MAX_ENTRIES`]): the oldest lines go ([`App::trim`]), and the session
//! is told where what each room shows starts now ([`Effect::LetGo`]), so
//! that paging back goes on from there.

use super::*;

impl App {
    /// While following the newest, keep at most [`MAX_ENTRIES`]: the
    /// oldest go, and the session is told, before it next pages back, of
    /// each room whose messages went ([`Effect::LetGo`]). Scrolled back,
    /// nothing goes until the area passes [`MAX_ENTRIES_EVER`] (then what
    /// is farthest from the screen, [`App::bound`]): a page read back
    /// stays (at the top of a full area, it went as it came). A page
    /// asked while following the newest stays too, and what is below it:
    /// the oldest go only down to it ([`Entry::held`]), until the reader
    /// has scrolled back and come back, or the area is twice its size.
    pub(super) fn trim(&mut self) {
        if self.scroll > 0 {
            self.bound();
            return;
        }
        if self.entries.len() > 2 * MAX_ENTRIES {
            // Held long enough: the area at twice its size at most.
            self.release_held();
        }
        while self.entries.len() > MAX_ENTRIES {
            if self.entries.front().is_some_and(|e| e.held) {
                break;
            }
            let Some(e) = self.entries.pop_front() else {
                break;
            };
            self.page_at = None;
            if let (Line::Msg { .. }, Some(room)) = (&e.line, e.room) {
                self.let_go.insert(room);
            }
        }
    }

    /// The pages asked while following the newest ([`Entry::held`]) may
    /// go as the rest now.
    pub(super) fn release_held(&mut self) {
        if std::mem::take(&mut self.holding) {
            for e in self.entries.iter_mut() {
                e.held = false;
            }
        }
    }

    /// Tell the session where what is shown of each room whose messages
    /// the cap let go starts now.
    pub(super) fn tell_let_go(&mut self) {
        for room in std::mem::take(&mut self.let_go) {
            let kept = self.kept_of(&room);
            self.drop_gap_lines_above_all(&room);
            self.told += 1;
            self.telling.push_back((self.told, room.clone()));
            self.effects.push(Effect::LetGo(room, kept));
        }
        self.tell_cuts();
    }

    /// Take away `room`'s lines saying messages are missing that are
    /// above all its messages: the cap let go of what was shown above
    /// them, and the session forgets those gaps when told (they are
    /// older than what is shown, paged back through as the rest).
    pub(super) fn drop_gap_lines_above_all(&mut self, room: &str) {
        let here = Some(room.to_owned());
        let mut first = self
            .entries
            .iter()
            .position(|e| e.room == here && matches!(e.line, Line::Msg { .. }))
            .unwrap_or(self.entries.len());
        let mut i = 0;
        while i < first {
            let e = &self.entries[i];
            if e.room == here && matches!(e.line, Line::Gap { filled: false, .. }) {
                let rows = self.rows_of(i..i + 1, usize::MAX);
                self.keep_view(i + 1, rows, false);
                self.entries.remove(i);
                self.page_at = None;
                first -= 1;
            } else {
                i += 1;
            }
        }
    }

    /// The places of `room`'s oldest message shown, in the latest of its
    /// histories shown and in any (the cap took all above it).
    pub(super) fn kept_of(&self, room: &str) -> Kept {
        let place_of = |e: &Entry| match &e.line {
            Line::Msg { place, .. } if e.room.as_deref() == Some(room) => Some(*place),
            _ => None,
        };
        let first = self.entries.iter().find_map(place_of);
        let latest = (self.entries.iter().rev().filter_map(place_of)).find(|p| p.era != 0);
        let from = latest.and_then(|latest| {
            let mut all = self.entries.iter().filter_map(place_of);
            all.find(|p| p.era == latest.era)
        });
        Kept { from, first }
    }

    /// Whether a page of `room` come now was asked from below what the
    /// cap let go of it, the session not told yet or not having taken
    /// it: shown above the room's oldest line, it would leave a hole.
    pub(super) fn pages_past_a_cut(&self, room: &Option<String>) -> bool {
        room.as_ref()
            .is_some_and(|r| self.let_go.contains(r) || self.telling.iter().any(|(_, t)| t == r))
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::KeyCode;

    use super::*;
    use crate::tui::app::fixture::*;
    use crate::tui::app::test_lines::{missing_at, placed_in};

    /// `line` typed and given: the session is told first where #lobby's
    /// lines kept start (`kept`), then gets the line.
    fn typed_after_lobbys_let_go(app: &mut App, line: &str, kept: Kept) {
        type_str(app, line);
        app.handle_event(key(KeyCode::Enter));
        assert_eq!(
            app.take_effects(),
            [
                Effect::LetGo("lobby".into(), kept),
                Effect::Send(line.into())
            ]
        );
    }

    /// With as many lines as are kept, a page's lines go in their order;
    /// the next line at the bottom pushes the oldest out (not each line
    /// of the page, which went at once when it was the oldest).
    #[test]
    fn a_gap_is_filled_in_order_when_the_lines_are_at_their_cap() {
        let mut app = app();
        for i in 0..MAX_ENTRIES - 2 {
            app.add_line(msg("lobby", "bob", &[], &format!("old{i}")), "12:00".into());
        }
        app.add_line(
            Line::Gap {
                room: "lobby".into(),
                filled: false,
            },
            "12:01".into(),
        );
        app.add_line(msg("lobby", "bob", &[], "m19"), "12:01".into());
        assert_eq!(app.entries.len(), MAX_ENTRIES);
        for text in ["m16", "m17", "m18"] {
            app.add_line(missing_at(text, Place::default()), "12:02".into());
        }
        assert_eq!(app.entries.len(), MAX_ENTRIES + 3);
        app.add_line(msg("lobby", "bob", &[], "m20"), "12:03".into());
        assert_eq!(app.entries.len(), MAX_ENTRIES);
        let last: Vec<String> = app
            .entries
            .iter()
            .skip(MAX_ENTRIES - 6)
            .map(|e| match &e.line {
                Line::Msg { text, .. } => text.clone(),
                Line::Gap { .. } => "(gap)".into(),
                _ => "(other)".into(),
            })
            .collect();
        assert_eq!(last, ["(gap)", "m16", "m17", "m18", "m19", "m20"]);
    }

    /// A room whose oldest messages the cap let go (other rooms' lines
    /// came after them): scrolling up past its oldest line tells the
    /// session where what is shown of it starts, then asks for older
    /// ones, so the page goes on from there, not from the oldest ever
    /// shown, above a hole. A page asked before the session was told
    /// pages back from below what went: it is not shown, and its note
    /// says so. The page asked after it is kept, though the area is full
    /// and its lines the oldest (they went as they came); back at the
    /// newest line, the log is cut to the cap again.
    #[test]
    fn paging_back_at_the_cap_goes_on_from_the_oldest_line_kept() {
        let mut app = self::app();
        let mut state = app.state.clone();
        state.older = true;
        app.set_state(state.clone());
        for seq in 1..=100 {
            app.add_line(
                placed_in("lobby", &format!("m{seq}"), 1, seq, false),
                "12:00".into(),
            );
        }
        for i in 0..MAX_ENTRIES - 50 {
            app.add_line(msg("rust", "bob", &[], &format!("r{i}")), "12:00".into());
        }
        assert_eq!(app.entries.len(), MAX_ENTRIES);
        let lobby = |app: &App| -> Vec<u64> {
            app.entries
                .iter()
                .filter_map(|e| match &e.line {
                    Line::Msg { place, .. } if e.room.as_deref() == Some("lobby") => {
                        Some(place.seq)
                    }
                    _ => None,
                })
                .collect()
        };
        assert_eq!(lobby(&app), (51..=100).collect::<Vec<_>>());
        // A page asked before (by a /history typed at the newest line)
        // comes now, from below 1: not shown.
        app.add_line(placed_in("lobby", "m0", 1, 0, true), "12:01".into());
        assert_eq!(lobby(&app)[0], 51);
        app.handle_event(key(KeyCode::PageUp));
        let from = Some(crate::render::Place { era: 1, seq: 51 });
        let kept = Kept { from, first: from };
        // Two screens' worth of the area's 22 rows.
        assert_eq!(
            app.take_effects(),
            [Effect::LetGo("lobby".into(), kept), Effect::Older(44)]
        );
        // Its note comes after the session was told, before it took it.
        app.add_line(
            Line::HistoryNote {
                room: "lobby".into(),
                text: "1 older message of #lobby".into(),
            },
            "12:01".into(),
        );
        let note = app.entries.iter().rev().find_map(|e| match &e.line {
            Line::HistoryNote { text, .. } => Some(text.clone()),
            _ => None,
        });
        assert!(note.is_some_and(|t| t.contains("not shown")));
        state.let_go_taken = 1;
        state.older_taken = 1;
        app.set_state(state);
        for seq in 31..=50 {
            app.add_line(
                placed_in("lobby", &format!("m{seq}"), 1, seq, true),
                "12:02".into(),
            );
        }
        assert_eq!(lobby(&app), (31..=100).collect::<Vec<_>>());
        // (The note, and the page.)
        assert_eq!(app.entries.len(), MAX_ENTRIES + 21);
        app.handle_event(key(KeyCode::Esc));
        assert_eq!(app.entries.len(), MAX_ENTRIES);
        assert_eq!(lobby(&app)[0], 52, "the page, and one line for the note");
        // Told again before the next request.
        let from = Some(crate::render::Place { era: 1, seq: 52 });
        typed_after_lobbys_let_go(&mut app, "/history", Kept { from, first: from });
    }

    /// The cap let go of the oldest lines of #lobby's earlier history
    /// (1), those of its latest (2) all kept: the session is told where
    /// each starts, not to forget what is still shown of the earlier one.
    #[test]
    fn the_session_is_told_where_each_history_kept_starts() {
        let mut app = self::app();
        for (era, seq) in (1..=2).flat_map(|era| (1..=10).map(move |seq| (era, seq))) {
            let text = format!("m{era}.{seq}");
            app.add_line(placed_in("lobby", &text, era, seq, false), "12:00".into());
        }
        for i in 0..MAX_ENTRIES - 15 {
            app.add_line(msg("rust", "bob", &[], &format!("r{i}")), "12:00".into());
        }
        assert_eq!(app.entries.len(), MAX_ENTRIES);
        let at = |era, seq| Some(crate::render::Place { era, seq });
        let kept = Kept {
            from: at(2, 1),
            first: at(1, 6),
        };
        typed_after_lobbys_let_go(&mut app, "hi", kept);
    }

    /// `/history` typed at the newest line of a full area: the page goes
    /// above #lobby's oldest line, the oldest of all, and stays (its
    /// note says there is more, and the reader scrolls up to it) while
    /// new lines come, the oldest above it going; once read back and
    /// back at the newest line, the area is cut to the cap again.
    #[test]
    fn a_page_asked_at_the_newest_line_of_a_full_area_stays_to_be_read() {
        let mut app = self::app();
        for seq in 101..=200 {
            let text = format!("m{seq}");
            app.add_line(placed_in("lobby", &text, 1, seq, false), "12:00".into());
        }
        for i in 0..MAX_ENTRIES - 100 {
            app.add_line(msg("rust", "bob", &[], &format!("r{i}")), "12:00".into());
        }
        assert_eq!(app.entries.len(), MAX_ENTRIES);
        let lobby = |app: &App| -> Vec<u64> {
            app.entries
                .iter()
                .filter_map(|e| match &e.line {
                    Line::Msg { place, .. } if e.room.as_deref() == Some("lobby") => {
                        Some(place.seq)
                    }
                    _ => None,
                })
                .collect()
        };
        type_str(&mut app, "/history");
        app.handle_event(key(KeyCode::Enter));
        assert_eq!(app.take_effects(), [Effect::Send("/history".into())]);
        for seq in 51..=100 {
            let text = format!("m{seq}");
            app.add_line(placed_in("lobby", &text, 1, seq, true), "12:01".into());
        }
        app.add_line(
            Line::HistoryNote {
                room: "lobby".into(),
                text: "50 older messages of #lobby; /history shows more".into(),
            },
            "12:01".into(),
        );
        for i in 0..10 {
            app.add_line(msg("rust", "bob", &[], &format!("n{i}")), "12:02".into());
        }
        assert_eq!(lobby(&app), (51..=200).collect::<Vec<_>>());
        assert_eq!(app.scroll, 0);
        // Read back, then back at the newest: cut again (the page is the
        // oldest of all).
        app.scroll = 5;
        app.handle_event(key(KeyCode::Esc));
        assert_eq!(app.entries.len(), MAX_ENTRIES);
        assert_eq!(lobby(&app), (112..=200).collect::<Vec<_>>());
    }
}
