//! The `history` requests not answered yet, matched to the pages that
//! answer them. A page names its room but no request (PROTOCOL.md §4.2
//! has no request id for `history`); the server answers a connection's
//! frames in order (§5.7), each `history` with one page, or with an error
//! naming its room (`not_in_room`). So a page answers the oldest request
//! of its room not answered yet, and one that answers none is not shown:
//! the answer to a request given up (and asked again meanwhile) is not
//! taken for the answer to the one after it, and then that one's for a
//! page nobody asked.
//!
//! A frame that could not be read may have been the answer to the oldest
//! request of a room, or not (see `Pages::late`). What a page holds then
//! tells some of it: a page holding a message as new as where a request
//! paged back from (its `before`) is not that request's answer, so that
//! one's came before it, as the frame that could not be read.

use std::collections::{BTreeMap, VecDeque};

/// What a page of a room answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    /// A request whose page is shown, asked from the newest message
    /// (`true`: nothing of the room was shown to page back from) or not.
    Shown(bool),
    /// A request whose page is not shown any more: the view it pages
    /// back from is gone (`/clear`, the room left).
    Dropped,
    /// No request: the page is not shown.
    Nothing,
}

/// What a page answering `asked` (`None`: no request) is.
fn answer(asked: Option<Asked>) -> Answer {
    match asked {
        Some(a) if a.shown => Answer::Shown(a.before.is_none()),
        Some(_) => Answer::Dropped,
        None => Answer::Nothing,
    }
}

/// A request not answered yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Asked {
    /// Whether its page is shown.
    shown: bool,
    /// Where it pages back from: its page holds only older messages
    /// (`None`: from the newest).
    before: Option<u64>,
}

impl Asked {
    /// Whether a page whose newest message is `newest` (`None`: it holds
    /// none) may be this request's answer.
    fn fits(&self, newest: Option<u64>) -> bool {
        match (newest, self.before) {
            (Some(newest), Some(before)) => newest < before,
            _ => true,
        }
    }
}

/// The requests of each room not answered yet. See the [module
/// docs](self).
#[derive(Debug, Default)]
pub(super) struct Pages {
    /// Per room, oldest first.
    asked: BTreeMap<String, VecDeque<Asked>>,
    /// Per room, oldest first, the requests given up on a doubt (a frame
    /// that could not be read, an error naming the room with another
    /// code), with whether each one's page is shown: the frame may have
    /// been the first one's answer, or not. The room's next pages are
    /// taken for their late answers, in order, each shown or not as its
    /// request was (a page asked before `/clear` is not, one asked after
    /// it is), but for those a page cannot answer (see the [module
    /// docs](self)): their answer was the doubt. The last one's, if a
    /// request was asked since, is taken for that one's answer (the same
    /// question asked again, or the first given up was answered by the
    /// doubt: either way one page is shown, and nothing waits on for a
    /// page that will not come).
    late: BTreeMap<String, VecDeque<Asked>>,
}

impl Pages {
    /// A request for a page of `room`, of messages older than `before`
    /// (`None`: the newest), was sent.
    pub(super) fn ask(&mut self, room: &str, before: Option<u64>) {
        self.asked
            .entry(room.to_owned())
            .or_default()
            .push_back(Asked {
                shown: true,
                before,
            });
    }

    /// Whether a page of `room` to be shown is on its way.
    pub(super) fn waiting(&self, room: &str) -> bool {
        self.asked.get(room).is_some_and(shows)
    }

    /// Whether a page of any room to be shown is on its way.
    pub(super) fn any_waiting(&self) -> bool {
        self.asked.values().any(shows)
    }

    /// A page of `room` came, its newest message `newest` (`None`: it
    /// holds none): what it answers.
    pub(super) fn page(&mut self, room: &str, newest: Option<u64>) -> Answer {
        if let Some(q) = self.late.get_mut(room) {
            // Answered by the doubt, those it cannot answer.
            while q.front().is_some_and(|a| !a.fits(newest)) {
                q.pop_front();
            }
            match q.pop_front() {
                None => {
                    self.late.remove(room);
                }
                Some(a) => {
                    let last = q.is_empty();
                    if last {
                        self.late.remove(room);
                    }
                    if !(last && a.shown && self.asked.contains_key(room)) {
                        return answer(Some(a));
                    }
                }
            }
        }
        let oldest = self.oldest(room);
        answer(oldest)
    }

    /// `room` refused a request (`not_in_room`): whether it was one whose
    /// page was to be shown.
    /// (A request given up on a doubt is refused first, the server
    /// answering in order; what could be said of it was at the doubt.)
    pub(super) fn refused(&mut self, room: &str) -> bool {
        if let Some(q) = self.late.get_mut(room) {
            q.pop_front();
            if q.is_empty() {
                self.late.remove(room);
            }
            return false;
        }
        self.oldest(room).is_some_and(|a| a.shown)
    }

    /// The view of `room` the requests asked page back from is gone:
    /// their pages are not shown when they come.
    pub(super) fn drop_all(&mut self, room: &str) {
        for q in [self.asked.get_mut(room), self.late.get_mut(room)]
            .into_iter()
            .flatten()
        {
            q.iter_mut().for_each(|a| a.shown = false);
        }
    }

    /// A frame came that may have answered `room`'s requests (see
    /// `late`): they are waited for no more. Whether one to be shown was.
    pub(super) fn doubt(&mut self, room: &str) -> bool {
        let Some(q) = self.asked.remove(room) else {
            return false;
        };
        let shown = shows(&q);
        if shown {
            self.late.entry(room.to_owned()).or_default().extend(q);
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
            .filter(|(_, q)| shows(q))
            .map(|(room, _)| room)
            .collect()
    }

    /// The oldest request of `room` is answered: it (`None`: there was
    /// none).
    fn oldest(&mut self, room: &str) -> Option<Asked> {
        let q = self.asked.get_mut(room)?;
        let asked = q.pop_front();
        if q.is_empty() {
            self.asked.remove(room);
        }
        asked
    }
}

/// Whether one of the requests `q` is one whose page is shown.
fn shows(q: &VecDeque<Asked>) -> bool {
    q.iter().any(|a| a.shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests given up on a doubt, one asked before `/clear` (paging
    /// back from 30) and one after it (the newest): their pages are
    /// matched in order. If the frame that could not be read was the
    /// first one's answer, the newest page, holding 30 or newer, cannot
    /// be the first one's: it is the second one's, shown. One that could
    /// be either (nothing as new as 30 in it) is taken for the first
    /// one's (not shown), and the same `/history` asked again is not held
    /// up: its page is shown.
    #[test]
    fn pages_given_up_are_matched_in_order_and_hold_nothing_up() {
        let given_up = || {
            let mut p = Pages::default();
            p.ask("lobby", Some(30));
            p.drop_all("lobby");
            p.ask("lobby", None);
            assert!(p.doubt("lobby"));
            assert!(!p.waiting("lobby"));
            p
        };
        // The doubt answered neither.
        let mut p = given_up();
        assert_eq!(p.page("lobby", Some(29)), Answer::Dropped);
        assert_eq!(p.page("lobby", Some(39)), Answer::Shown(true));
        assert_eq!(p.page("lobby", Some(39)), Answer::Nothing);
        // It answered the first.
        let mut p = given_up();
        assert_eq!(p.page("lobby", Some(39)), Answer::Shown(true));
        assert_eq!(p.page("lobby", Some(39)), Answer::Nothing);
        // It answered the first, and the newest page could be either's.
        for newest in [None, Some(29)] {
            let mut p = given_up();
            assert_eq!(p.page("lobby", newest), Answer::Dropped);
            p.ask("lobby", None);
            assert!(p.waiting("lobby"));
            assert_eq!(p.page("lobby", newest), Answer::Shown(true));
            assert!(!p.waiting("lobby"));
            assert_eq!(p.page("lobby", newest), Answer::Nothing);
        }
    }
}
