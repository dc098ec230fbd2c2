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
