//! How many rows entries take in the message area, counted from the
//! bottom ([`entry_height`]: each laid out once for a width), and keeping
//! a scrolled-back view on what it shows as entries come and go.

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
