//! Where a line of a room's history goes among the full-screen client's
//! entries: a message by its place in its room's history (older than one
//! shown goes above it), a page above what its room shows.

use super::*;

/// Where a message goes among its room's lines on the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// Below everything (newer than its room's, or its place unknown).
    Bottom,
    /// Just above the entry at this index (older than its room's there).
    Before(usize),
    /// Above its room's first message of its history, at this index, and
    /// the lines over it ([`App::above_its_notes`]).
    Top(usize),
    /// Nowhere: it is there already (the same place).
    Shown,
}

impl App {
    /// Where `room`'s first message is among the entries (the end if it
    /// has none): what paging back puts lines above. Of the history
    /// `era` (0: the one its newest message is in): one begun anew starts
    /// below the earlier one (see [`Place`]), even
    /// with none of its messages on the screen yet.
    pub(super) fn first_message(&self, room: &Option<String>, era: u64) -> usize {
        let era_of = |e: &Entry| place_in(e, room).map(|p| p.era);
        let era = match era {
            0 => self.entries.iter().rev().find_map(era_of),
            known => Some(known),
        };
        self.entries
            .iter()
            .position(|e| era_of(e).is_some_and(|of| era.is_some_and(|era| of >= era)))
            .unwrap_or(self.entries.len())
    }

    /// Where a message goes that is older than one of its room's on the
    /// screen: above the oldest of those (of its room's history, see
    /// [`Place`]); `Bottom` when it is newer than all of them, or its place
    /// is unknown; `Shown` when it is there already. From the bottom up, as far as its room's newest
    /// message not newer than it: a new message, the common case, stops
    /// at its room's last one. A page's line newer than the one put
    /// before it looks on from there, down: a page older than everything
    /// costs a look through the log for its first line, not for each.
    pub(super) fn newer_of_its_room(&self, entry: &Entry) -> Slot {
        let Line::Msg { place, page, .. } = &entry.line else {
            return Slot::Bottom;
        };
        if place.era == 0 {
            return Slot::Bottom;
        }
        let from = self.page_at.as_ref().filter(|p| {
            *page
                && p.room == entry.room
                && p.after
                    .is_some_and(|a| a.era == place.era && a.seq < place.seq)
        });
        if let Some(p) = from {
            let mut passed = false;
            for (i, e) in (p.at..).zip(self.entries.range(p.at..)) {
                #[cfg(test)]
                self.looked.set(self.looked.get() + 1);
                let Some(other) = place_in(e, &entry.room) else {
                    continue;
                };
                if other.era != place.era {
                    // A later history (or a place unknown): none newer
                    // of its own, as from the bottom up.
                    return Slot::Bottom;
                }
                if other.seq == place.seq {
                    return Slot::Shown;
                }
                if other.seq > place.seq {
                    // Under the line before it (notes over the room's
                    // first message stay below the page), unless older
                    // messages of its room came between.
                    return Slot::Before(if passed { i } else { p.at });
                }
                passed = true;
            }
            return Slot::Bottom;
        }
        let mut at = Slot::Bottom;
        for (i, e) in self.entries.iter().enumerate().rev() {
            #[cfg(test)]
            self.looked.set(self.looked.get() + 1);
            let Some(other) = place_in(e, &entry.room) else {
                continue;
            };
            if other.era == place.era && other.seq < place.seq {
                // Between two of its room's messages.
                return at;
            }
            if other.era != place.era {
                break;
            }
            if other.seq == place.seq {
                return Slot::Shown;
            }
            at = Slot::Before(i);
        }
        match at {
            Slot::Before(first) => Slot::Top(first),
            other => other,
        }
    }

    /// Where a line older than every message of `room` shown (of its
    /// history) goes, `first` the index of the oldest of those: above it
    /// and above the room's lines over it, the notes of entering it, who
    /// came and the client's own. Those were said after every message
    /// older than that one (which the screen did not show then), so a
    /// page goes above them and they stay in time order with the
    /// messages. Not above a message of an earlier history, nor a line
    /// saying messages are missing, the start of the room's history or
    /// that its history begun anew: a page goes below those, as before.
    pub(super) fn above_its_notes(&self, room: &Option<String>, first: usize) -> usize {
        let mut at = first;
        for i in (0..first).rev() {
            #[cfg(test)]
            self.looked.set(self.looked.get() + 1);
            let e = &self.entries[i];
            if !shown_in(e, room) {
                continue;
            }
            let bound = matches!(
                e.line,
                Line::Msg { .. }
                    | Line::Gap { filled: false, .. }
                    | Line::HistoryStart { .. }
                    | Line::HistoryGone { .. }
            );
            if bound && e.room == *room {
                break;
            }
            at = i;
        }
        at
    }
}

/// The place of `e` in its room's history, if it is a message of `room`.
fn place_in<'a>(e: &'a Entry, room: &Option<String>) -> Option<&'a Place> {
    match &e.line {
        Line::Msg { place, .. } if e.room == *room => Some(place),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::KeyCode;

    use super::*;
    use crate::tui::app::fixture::*;
    use crate::tui::app::test_lines::{placed_in, rng};

    /// A room's messages are shown in seq order: one missing between two
    /// on the screen (filled in after a reconnect, or from a page that
    /// came after newer lines) goes between them, not at the bottom; a
    /// page older than all of them above them and the room's notes over
    /// them (said after it).
    #[test]
    fn a_message_goes_between_its_neighbours_by_seq() {
        let mut app = app();
        let entered = Line::Entered {
            room: "lobby".into(),
            text: "entered #lobby; 2 online".into(),
        };
        app.add_line(entered, "12:00".into());
        app.add_line(placed("m2", 1, 2, false), "12:00".into());
        app.add_line(placed("m6", 1, 6, false), "12:00".into());
        app.add_line(msg("rust", "bob", &[], "r1"), "12:01".into());
        app.add_line(Line::Info("a note".into()), "12:01".into());
        app.add_line(placed("m9", 1, 9, false), "12:01".into());
        app.add_line(placed("m7", 1, 7, false), "12:02".into());
        app.add_line(placed("m4", 1, 4, true), "12:02".into());
        app.add_line(placed("m5", 1, 5, true), "12:02".into());
        app.add_line(placed("m1", 1, 1, true), "12:02".into());
        app.add_line(placed("m10", 1, 10, false), "12:03".into());
        app.add_line(msg("lobby", "bob", &[], "unplaced"), "12:03".into());
        assert_eq!(
            words(&app),
            [
                "m1",
                "(entered)",
                "m2",
                "m4",
                "m5",
                "m6",
                "r1",
                "(other)",
                "m7",
                "m9",
                "m10",
                "unplaced"
            ]
        );
    }

    /// A page older than everything on the screen is placed at the cost
    /// of a page, not of a log a line: each of its lines looked through
    /// the whole log (200 lines into 20,000 entries: 4 M looks, 40 ms).
    /// Each line now goes on from where the page's line before it went.
    #[test]
    fn a_page_costs_a_page_to_place_not_a_log_a_line() {
        let mut app = app();
        for i in 0..1_000 {
            app.add_line(
                placed(&format!("m{i}"), 1, 1_000 + i, false),
                "12:00".into(),
            );
            if i % 100 == 0 {
                app.add_line(msg("rust", "bob", &[], "elsewhere"), "12:00".into());
            }
        }
        let log = app.entries.len();
        app.looked.set(0);
        for i in 0..200 {
            app.add_line(placed(&format!("p{i}"), 1, 500 + i, true), "12:01".into());
        }
        assert!(
            app.looked.get() <= log + 2 * 200,
            "{} looks",
            app.looked.get()
        );
        let first: Vec<String> = words(&app).into_iter().take(202).collect();
        let mut want: Vec<String> = (0..200).map(|i| format!("p{i}")).collect();
        want.extend(["m0".into(), "elsewhere".into()]);
        assert_eq!(first, want);

        // At the cap each line of such a page goes first and is the one
        // to go (the oldest): the next one does not look through the log
        // again either.
        let mut app = self::app();
        for i in 0..MAX_ENTRIES as u64 {
            app.add_line(
                placed(&format!("m{i}"), 1, 1_000 + i, false),
                "12:00".into(),
            );
        }
        app.looked.set(0);
        for i in 0..200 {
            app.add_line(placed(&format!("p{i}"), 1, 500 + i, true), "12:01".into());
        }
        assert!(
            app.looked.get() <= MAX_ENTRIES + 2 * 200,
            "{} looks",
            app.looked.get()
        );
    }

    /// `/clear` and `/history 50` typed while messages come: the screen
    /// empties the room at once, the session forgets what it showed when
    /// it takes `/clear`, and the messages it sent before that (in
    /// flight) reach the screen after the room was emptied; the page of
    /// the newest 50 brings them again. Each is shown once: a message
    /// whose place is on the screen already is not added again.
    #[test]
    fn messages_in_flight_at_a_clear_are_shown_once_by_the_page_after_it() {
        let mut app = self::app();
        for seq in 1..=10 {
            app.add_line(
                placed_in("lobby", &format!("m{seq}"), 1, seq, false),
                "12:00".into(),
            );
        }
        type_str(&mut app, "/clear");
        app.handle_event(key(KeyCode::Enter));
        type_str(&mut app, "/history 50");
        app.handle_event(key(KeyCode::Enter));
        // Shown by the session before it took "/clear".
        for seq in 11..=13 {
            app.add_line(
                placed_in("lobby", &format!("m{seq}"), 1, seq, false),
                "12:01".into(),
            );
        }
        // A new one after the page was asked, before it came.
        app.add_line(placed_in("lobby", "m14", 1, 14, false), "12:01".into());
        for seq in 1..=14 {
            app.add_line(
                placed_in("lobby", &format!("m{seq}"), 1, seq, true),
                "12:01".into(),
            );
        }
        let seqs: Vec<u64> = app
            .entries
            .iter()
            .filter_map(|e| match &e.line {
                Line::Msg { place, .. } => Some(place.seq),
                _ => None,
            })
            .collect();
        assert_eq!(seqs, (1..=14).collect::<Vec<_>>());
        // The same place in another history of the room is another message.
        app.add_line(placed_in("lobby", "new", 2, 3, false), "12:02".into());
        assert_eq!(app.entries.len(), 15);
    }

    /// Pages (ascending seqs, into holes or below all) keep a room's
    /// messages of one history in seq order, whatever is between them.
    #[test]
    fn pages_keep_a_rooms_messages_in_seq_order() {
        let mut rnd = rng(12345);
        for _round in 0..300 {
            let mut app = self::app();
            let mut shown: Vec<u64> = (1..120).filter(|_| rnd(3) == 0).collect();
            shown.sort();
            for &q in &shown {
                app.add_line(placed(&format!("m{q}"), 1, q, false), "12:00".into());
                if rnd(4) == 0 {
                    app.add_line(msg("rust", "bob", &[], "x"), "12:00".into());
                }
                if rnd(6) == 0 {
                    app.add_line(Line::Info("note".into()), "12:00".into());
                }
            }
            if rnd(2) == 0 {
                app.scroll = rnd(30) as usize;
            }
            let low = shown.first().copied().unwrap_or(120);
            let missing: Vec<u64> = (1..low).collect();
            if missing.is_empty() {
                continue;
            }
            let lo = rnd(missing.len() as u64) as usize;
            let hi = (lo + 1 + rnd(40) as usize).min(missing.len());
            for &q in &missing[lo..hi] {
                app.add_line(placed(&format!("m{q}"), 1, q, true), "12:01".into());
            }
            let seqs: Vec<u64> = app
                .entries
                .iter()
                .filter_map(|e| match &e.line {
                    Line::Msg { place, .. } if e.room.as_deref() == Some("lobby") => {
                        Some(place.seq)
                    }
                    _ => None,
                })
                .collect();
            let mut sorted = seqs.clone();
            sorted.sort();
            assert_eq!(seqs, sorted);
        }
    }
}
