//! Reading back in the full-screen client: PageUp (or the wheel) moves
//! the view up as far as it asks, and older messages are fetched ahead
//! of the reader, a page sized to the screen, so that held down PageUp
//! reads back a screen a press; a press past the oldest line goes on
//! once they come. One page a room at a time: the next is asked once
//! the session has the last one.

use super::*;
use crate::input::{HISTORY_DEFAULT, HISTORY_MAX};

/// Older messages asked for at once while reading back: this many
/// screens' worth (a message takes a row at least), and within what
/// `/history N` asks (20 to 200, and a page of the server's at most).
pub const AHEAD_SCREENS: usize = 2;

impl App {
    /// The view goes `rows` further up, and as far as the reader asked
    /// before and older messages did not yet show (scrolled past the
    /// oldest line): as far as the oldest line, the rest once older
    /// ones came above it (the line that ends their page, [`App::add_line`]). With less than a
    /// screen left above, older messages are asked for
    /// ([`Effect::Older`]): enough for the rows still wanted and
    /// [`AHEAD_SCREENS`] screens more, if there are any and none are on
    /// their way (nor lines typed wait: the room they lead to may be
    /// another). A room whose oldest lines the cap let go has older ones,
    /// the session told so first. Not a typed line: a refusal of one (the
    /// connection lost meanwhile) would put "/history" into the input and
    /// Up's lines, and count it among the lines typed.
    pub(super) fn read_up(&mut self, rows: usize) {
        let height = self.area.1.max(1);
        let to = self
            .scroll
            .saturating_add(self.wanted_up)
            .saturating_add(rows);
        // Counted as far as a screen and more above where it goes.
        let stop = to.saturating_add(2 * height);
        let counted = self.rows_of(0..self.entries.len(), stop);
        let above = if counted < stop {
            let top = counted.saturating_sub(height);
            self.scroll = to.min(top);
            self.wanted_up = to - self.scroll;
            top.saturating_sub(self.scroll)
        } else {
            self.scroll = to;
            self.wanted_up = 0;
            counted - to
        };
        let on_its_way = self.older_asked > self.state.older_taken || self.state.paging;
        let cut = (self.state.current.as_ref()).is_some_and(|r| self.let_go.contains(r));
        let older = (self.state.older || cut) && self.waiting.is_empty();
        if above < height && older && !on_its_way {
            self.tell_let_go();
            self.older_asked += 1;
            let want = self.wanted_up.saturating_add(AHEAD_SCREENS * height);
            let limit = (want as u64).clamp(HISTORY_DEFAULT, HISTORY_MAX);
            self.effects.push(Effect::Older(limit));
        } else if !on_its_way {
            // Nothing older comes: the view stays at the oldest line.
            self.wanted_up = 0;
        }
    }

    /// The reader went down or elsewhere: no more rows wanted above.
    pub(super) fn stop_reading_up(&mut self) {
        self.wanted_up = 0;
    }
}
