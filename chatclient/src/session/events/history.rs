//! A page of history from the core as lines: older messages above those
//! shown, or the messages missing after a reconnect where they are
//! missing (a gap), each page with a note of what it brought.

use chatproto::ClientEvent;

use crate::render::Line;
use crate::session::lines::plural;
use crate::session::pages::Answer;
use crate::session::{Gap, Probe, Session};

impl Session {
    /// A page of `room`'s history (`events`, `more`, `before` and
    /// `oldest` as [`ClientEvent::History`] has them), shown: into a gap,
    /// as [`gap_page`](Session::gap_page) says; else above what is shown,
    /// with a note of what it brought.
    pub(super) fn history_page(
        &mut self,
        room: String,
        events: Vec<ClientEvent>,
        more: bool,
        before: Option<u64>,
        oldest: Option<u64>,
    ) {
        let newest = events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Message { seq, .. } => Some(*seq),
                _ => None,
            })
            .max();
        let Answer::Shown(newest_page) = self.pages.page(&room, newest) else {
            // Asked before a /clear or a /part (what it pages
            // back from is gone), or not asked.
            return;
        };
        if let Some(gap) = self.gaps.get(&room).and_then(|g| g.last()).copied() {
            return self.gap_page(room, gap, events, more, before);
        }
        if more {
            self.no_older.remove(&room);
        } else {
            self.no_older.insert(room.clone());
        }
        // A page that stopped short (the server looks at so many
        // messages a page) says where the next one starts.
        if let Some(before) = before {
            self.shown(&room, before);
        }
        let mut count = 0;
        for e in events {
            if let ClientEvent::Message {
                seq,
                from,
                to,
                text,
                ts,
                ..
            } = e
            {
                self.shown(&room, seq);
                if !self.note_seen(&room, seq) {
                    // On screen already, from before a /part.
                    continue;
                }
                count += 1;
                let place = self.place(&room, seq);
                let line = Line::Msg {
                    room: self.other(&room),
                    history: true,
                    page: true,
                    missed: false,
                    from,
                    to,
                    text,
                    ts,
                    place,
                };
                self.print(line);
            }
        }
        // The server keeps nothing older, but the room began
        // before that: older messages were deleted, not absent.
        let older_gone = !more && oldest.is_some_and(|o| o > 1);
        let paged = self.paged.entry(room.clone()).or_default();
        *paged += count;
        // With the pages before it, when there were some.
        let brought = match *paged {
            all if all > count => format!(
                "{} of #{room} ({all} fetched so far)",
                plural(count, "older message")
            ),
            _ => format!("{} of #{room}", plural(count, "older message")),
        };
        let what = match (count, more) {
            // Asked with nothing of the room shown (a room cut
            // whose newest the full-screen client fetches, or
            // after `/clear`): older than nothing.
            (1.., _) if newest_page => format!(
                "the newest {} of #{room}; {}",
                match count {
                    1 => "message".to_owned(),
                    n => format!("{n} messages"),
                },
                if more {
                    "/history shows more"
                } else if older_gone {
                    "older ones are no longer kept"
                } else {
                    "that is all"
                }
            ),
            (0, false) if older_gone => {
                format!("older messages of #{room} are no longer kept")
            }
            (0, false) => format!("no older messages in #{room}"),
            (0, true) => format!(
                "no older messages for you in this stretch of #{room}; \
                 /history looks further back"
            ),
            (_, false) if older_gone => {
                format!("{brought}; older ones are no longer kept")
            }
            (_, false) => format!("{brought}; that is all"),
            (_, true) => format!("{brought}; /history shows more"),
        };
        if !more && self.every_room_named {
            // The full-screen client marks the top, where the
            // reader is (the note goes to the bottom).
            let era = self.place(&room, 0).era;
            self.print(Line::HistoryStart {
                room: room.clone(),
                older_gone,
                era,
            });
        }
        self.print(Line::HistoryNote { room, text: what });
    }

    /// A `/history` page asked for the messages missing after a
    /// reconnect (`gap`): those not shown yet go where they are missing
    /// (the full-screen client puts them under the gap's line), and the
    /// gap closes once a page reaches what was shown before it: a page
    /// that holds a message from before the gap (it was asked for one
    /// more than the user asked), that says the server looked at every
    /// event down to the gap's start (`stopped_at`), or that nothing is
    /// older.
    fn gap_page(
        &mut self,
        room: String,
        gap: Gap,
        events: Vec<ClientEvent>,
        more: bool,
        stopped_at: Option<u64>,
    ) {
        let mut messages: Vec<ClientEvent> = events
            .into_iter()
            .filter(|e| matches!(e, ClientEvent::Message { .. }))
            .collect();
        let seq_of = |e: &ClientEvent| match e {
            ClientEvent::Message { seq, .. } => *seq,
            _ => 0,
        };
        let lowest = messages.iter().map(seq_of).chain(stopped_at).min();
        if let Some(probe) = gap.probing {
            // The page of one after a page as full as the server's: one
            // still missing in it says more are (it is not shown: the
            // page before showed as many as asked), even the last of all.
            let missing = messages.iter().any(|e| seq_of(e) > gap.after);
            let reached = !missing && (!more || lowest.is_none_or(|l| l <= gap.after + 1));
            let count = match probe {
                Probe::Asked(count) => Some(count),
                Probe::SaidEarly => None,
            };
            return self.gap_page_said(room, count, more || missing, reached, None);
        }
        let reached = !more || lowest.is_none_or(|l| l <= gap.after + 1);
        let full = messages.len() as u64 >= gap.asked;
        let withheld = !reached && gap.asked > 0 && messages.len() as u64 > gap.asked;
        if withheld {
            // The one more asked for is missing too: the next page
            // brings it, so that a page shows as many as asked.
            messages.remove(0);
        }
        let shown_lowest = messages.iter().map(seq_of).min();
        let mut count = 0;
        for e in messages {
            let ClientEvent::Message {
                seq,
                from,
                to,
                text,
                ts,
                ..
            } = e
            else {
                continue;
            };
            if seq <= gap.after || !self.note_seen(&room, seq) {
                continue;
            }
            count += 1;
            // (Below what was shown only when nothing was before the gap.)
            self.shown(&room, seq);
            let place = self.place(&room, seq);
            let line = Line::Msg {
                room: self.other(&room),
                history: true,
                page: true,
                missed: true,
                from,
                to,
                text,
                ts,
                place,
            };
            self.print(line);
        }
        // The page below it, where the next one starts (with the one
        // held back), or where the server stopped looking.
        let next = if withheld { shown_lowest } else { lowest };
        // The one more did not fit the server's page (`/history 200`,
        // and the server's pages hold 200).
        let no_room_for_one_more = gap.asked >= self.server_page();
        if more && !reached && full && no_room_for_one_more {
            // Whether it reached the gap's start, a page of one more
            // tells; what this one brought is said then.
            if let Some(last) = self.gaps.get_mut(&room).and_then(|g| g.last_mut()) {
                last.before = next;
                last.probing = Some(Probe::Asked(count));
            }
            self.client.history(&room, next, Some(1));
            self.pages.ask(&room, next);
            return;
        }
        self.gap_page_said(room, Some(count), more, reached, Some(next));
    }

    /// What a page into a gap did: `count` messages shown (`None`: a
    /// page of one come after what the page before it brought was said,
    /// see [`Probe::SaidEarly`]; it says only a gap filled), the gap
    /// filled (`reached`; with nothing older, `more` false: every gap of
    /// the room) or not, the next page starting at `next` (`None`: where
    /// it was).
    fn gap_page_said(
        &mut self,
        room: String,
        count: Option<usize>,
        more: bool,
        reached: bool,
        next: Option<Option<u64>>,
    ) {
        let gaps = self.gaps.entry(room.clone()).or_default();
        // Nothing older at all: every gap of the room is filled (nothing
        // was missing in the older ones).
        let filled = match (more, reached) {
            (false, _) => std::mem::take(gaps).len(),
            (true, true) => usize::from(gaps.pop().is_some()),
            (true, false) => {
                if let Some(last) = gaps.last_mut() {
                    last.probing = None;
                    if let Some(next) = next {
                        last.before = next;
                    }
                }
                0
            }
        };
        let older = !gaps.is_empty();
        if !older {
            self.gaps.remove(&room);
        }
        let further_up = "but some are further up: /history fetches them";
        let text = match (count, filled, older) {
            // Said already, with "more may be missing".
            (None, 0, _) => return,
            (Some(count), 0, _) => format!(
                "{}; more are missing: /history fetches them",
                page_brought(&room, count)
            ),
            (None | Some(0), _, false) => format!("no message of #{room} is missing any more"),
            (None, _, true) => {
                format!("no message of #{room} is missing there any more, {further_up}")
            }
            (Some(count), _, false) => {
                format!("{}; none is missing any more", page_brought(&room, count))
            }
            (Some(count), _, true) => format!(
                "{}; none is missing there any more, {further_up}",
                page_brought(&room, count)
            ),
        };
        // What this /history brought: the full-screen client shows the
        // latest of these notes only (the last one's "more are missing"
        // is stale once this one says none is).
        let note_room = room.clone();
        self.print(Line::HistoryNote {
            room: note_room,
            text,
        });
        for _ in 0..filled {
            let room = room.clone();
            self.print(Line::Gap { room, filled: true });
        }
    }

    /// The page of one that was to tell whether a full page into a gap
    /// of `room` filled it is not waited for any more: it will not come
    /// (`surely`: refused, or the connection went), or may not (a frame
    /// that could not be read, an error naming the room that may be about
    /// something else). What the full page brought is said now, not
    /// knowing whether more are missing (the next `/history` asks into
    /// the gap afresh); it was never said. A page of one that may still
    /// come says only that the gap is filled, if it finds it so (see
    /// [`Probe::SaidEarly`]).
    pub(in crate::session) fn page_of_one_lost(&mut self, room: &str, surely: bool) {
        let Some(gap) = self.gaps.get_mut(room).and_then(|g| g.last_mut()) else {
            return;
        };
        let Some(Probe::Asked(count)) = gap.probing else {
            if surely {
                gap.probing = None;
            }
            return;
        };
        gap.probing = (!surely).then_some(Probe::SaidEarly);
        let text = format!(
            "{}; more may be missing: /history fetches them",
            page_brought(room, count)
        );
        let room = room.to_owned();
        self.print(Line::HistoryNote { room, text });
    }
}

/// What a page into a gap of `room` brought: `count` messages shown.
fn page_brought(room: &str, count: usize) -> String {
    match count {
        0 => format!("no missing message of #{room} in this page"),
        n => format!("fetched {} of #{room}", plural(n, "missing message")),
    }
}
