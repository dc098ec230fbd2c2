//! The `history` requests not answered yet, matched to the pages that
//! answer them. A page names its room but no request (PROTOCOL.md §4.2
//! has no request id for `history`); the server answers a connection's
//! frames in order (§5.7), each `history` with one page, or with an error
//! naming its room (`not_in_room`). So a page answers the oldest request
//! of its room not answered yet, and one that answers none is not shown:
//! the answer to a request given up (and asked again meanwhile) is not
//! taken for the answer to the one after it, and then that one's for a
//! page nobody asked.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// What a page of a room answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    /// A request whose page is shown.
    Shown,
    /// A request whose page is not shown any more: the view it pages
    /// back from is gone (`/clear`, the room left).
    Dropped,
    /// No request: the page is not shown.
    Nothing,
}

/// The requests of each room not answered yet. See the [module
/// docs](self).
#[derive(Debug, Default)]
pub(super) struct Pages {
    /// Per room, oldest first: whether each request's page is shown.
    asked: BTreeMap<String, VecDeque<bool>>,
    /// Rooms whose requests were given up on a doubt (a frame that could
    /// not be read, an error naming the room with another code): it may
    /// have been their answer, or not. The next page of such a room is
    /// taken for the late answer to them if it answers no request asked
    /// since (one that does answers the same question, or the request
    /// given up was answered by the doubt: either way one page is shown).
    late: BTreeSet<String>,
}

impl Pages {
    /// A request for a page of `room` was sent.
    pub(super) fn ask(&mut self, room: &str) {
        self.asked
            .entry(room.to_owned())
            .or_default()
            .push_back(true);
    }

    /// Whether a page of `room` to be shown is on its way.
    pub(super) fn waiting(&self, room: &str) -> bool {
        self.asked.get(room).is_some_and(|q| q.contains(&true))
    }

    /// Whether a page of any room to be shown is on its way.
    pub(super) fn any_waiting(&self) -> bool {
        self.asked.values().any(|q| q.contains(&true))
    }

    /// A page of `room` came: what it answers.
    pub(super) fn page(&mut self, room: &str) -> Answer {
        let late = self.late.remove(room);
        match self.oldest(room) {
            Some(true) => Answer::Shown,
            Some(false) => Answer::Dropped,
            None if late => Answer::Shown,
            None => Answer::Nothing,
        }
    }

    /// `room` refused a request (`not_in_room`): whether it was one whose
    /// page was to be shown.
    pub(super) fn refused(&mut self, room: &str) -> bool {
        self.oldest(room).unwrap_or(false)
    }

    /// The view of `room` the requests asked page back from is gone:
    /// their pages are not shown when they come.
    pub(super) fn drop_all(&mut self, room: &str) {
        if let Some(q) = self.asked.get_mut(room) {
            q.iter_mut().for_each(|shown| *shown = false);
        }
        self.late.remove(room);
    }

    /// A frame came that may have answered `room`'s requests (see
    /// `late`): they are waited for no more. Whether one to be shown was.
    pub(super) fn doubt(&mut self, room: &str) -> bool {
        let shown = self.asked.remove(room).is_some_and(|q| q.contains(&true));
        if shown {
            self.late.insert(room.to_owned());
        }
        shown
    }

    /// [`doubt`](Pages::doubt) for every room: those that waited for a
    /// page to be shown.
    pub(super) fn doubt_all(&mut self) -> Vec<String> {
        let rooms: Vec<String> = self.asked.keys().cloned().collect();
        rooms.into_iter().filter(|r| self.doubt(r)).collect()
    }

    /// The connection went, and every answer with it: the rooms that
    /// waited for a page to be shown.
    pub(super) fn lost(&mut self) -> Vec<String> {
        self.late.clear();
        std::mem::take(&mut self.asked)
            .into_iter()
            .filter(|(_, q)| q.contains(&true))
            .map(|(room, _)| room)
            .collect()
    }

    /// The oldest request of `room` is answered: whether its page is
    /// shown (`None`: there was none).
    fn oldest(&mut self, room: &str) -> Option<bool> {
        let q = self.asked.get_mut(room)?;
        let shown = q.pop_front();
        if q.is_empty() {
            self.asked.remove(room);
        }
        shown
    }
}
