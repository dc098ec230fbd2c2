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
        let era_of = |e: &Entry| match &e.line {
            Line::Msg { place, .. } if e.room == *room => Some(place.era),
            _ => None,
        };
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
            for (i, e) in (p.at..).zip(self.entries.range(p.at..)) {
                #[cfg(test)]
                self.looked.set(self.looked.get() + 1);
                let Line::Msg { place: other, .. } = &e.line else {
                    continue;
                };
                if e.room != entry.room {
                    continue;
                }
                if other.era != place.era {
                    // A later history (or a place unknown): none newer
                    // of its own, as from the bottom up.
                    return Slot::Bottom;
                }
                if other.seq == place.seq {
                    return Slot::Shown;
                }
                if other.seq > place.seq {
                    return Slot::Before(i);
                }
            }
            return Slot::Bottom;
        }
        let mut at = Slot::Bottom;
        for (i, e) in self.entries.iter().enumerate().rev() {
            #[cfg(test)]
            self.looked.set(self.looked.get() + 1);
            let Line::Msg { place: other, .. } = &e.line else {
                continue;
            };
            if e.room != entry.room {
                continue;
            }
            if other.era != place.era || other.seq < place.seq {
                break;
            }
            if other.seq == place.seq {
                return Slot::Shown;
            }
            at = Slot::Before(i);
        }
        at
    }
}
