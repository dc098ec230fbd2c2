//! What each line from the session does to the full-screen client's
//! [`App`] ([`App::add_line`]): the room it is filed under, unread counts,
//! mentions and the bell, and where it goes: at the bottom
//! ([`App::push_entry`]), or in its place among its room's history.

use super::*;

impl App {
    /// A line from the session, arrived at `time`.
    pub fn add_line(&mut self, line: Line, time: String) {
        let here = self.state.current.clone();
        let page_end = matches!(line, Line::HistoryNote { .. } | Line::HistoryStart { .. });
        self.add_line_in(line, time, here);
        if page_end && self.wanted_up > 0 {
            // A page came (or none will): the view goes up into it.
            self.read_up(0);
        }
    }

    /// [`add_line`](App::add_line), a line of no room of its own filed
    /// under `here`.
    pub(super) fn add_line_in(&mut self, line: Line, time: String, here: Option<String>) {
        let me = self.state.nick.clone();
        let mut entry = Entry {
            time,
            room: here,
            line,
            mention: false,
            mine: false,
            everywhere: false,
            ahead: false,
            held: false,
            cut: false,
            height: Default::default(),
            id: self.new_id(),
        };
        let mut page = false;
        // Where a message goes among its room's (see `newer_of_its_room`).
        let mut slot = Slot::Bottom;
        // A page of messages missing after a reconnect: under its room's
        // line saying so, not above everything.
        let mut fill = false;
        // A page's note said otherwise (see `pages_past_a_cut`).
        let mut note_instead = None;
        match &entry.line {
            Line::Msg {
                room,
                history,
                from,
                to,
                text,
                page: older,
                missed,
                ..
            } => {
                page = *older;
                fill = *older && *missed;
                entry.room = room.clone().or(entry.room);
                // (Messages missing after a reconnect go under their
                // line, while it is there: no hole.)
                let under_its_line = fill && self.gap_line(&entry.room).is_some();
                if page && !under_its_line && self.pages_past_a_cut(&entry.room) {
                    return;
                }
                slot = self.newer_of_its_room(&entry);
                if slot == Slot::Shown {
                    // On the screen already (in flight when a /clear
                    // made the session forget it was shown, and brought
                    // again by a page): once is enough.
                    return;
                }
                if slot == Slot::Bottom && entry.room.as_ref().is_some_and(|r| self.cut.contains(r))
                {
                    // Newer than every message a room cut keeps (those
                    // missing after a reconnect, its line saying so not
                    // kept either): news, counted and not kept as the
                    // rest (`push_entry`), not put above its lines.
                    page = false;
                    fill = false;
                }
                entry.mine = same_nick(from, &me);
                let to_me = to.iter().any(|n| same_nick(n, &me));
                entry.mention = !entry.mine && (to_me || mentions(text, &me));
                self.nicks.colour(from);
                for n in to {
                    self.nicks.colour(n);
                }
                if !history && !entry.mine {
                    if let Some(room) = room
                        .as_ref()
                        .filter(|r| Some(*r) != self.state.current.as_ref())
                    {
                        let unread = self.unread.entry(room.clone()).or_default();
                        unread.count += 1;
                        unread.alert |= entry.mention;
                    }
                    if entry.mention && self.bell {
                        self.effects.push(Effect::Bell);
                    }
                }
            }
            Line::Presence { room, nick, .. } => {
                entry.room = room.clone().or(entry.room);
                self.nicks.colour(nick);
            }
            Line::WhileAway { room, joined, left } => {
                entry.room = room.clone().or(entry.room);
                // The names shown, not the "and 3 more": a colour given
                // to one never on screen is one fewer for the others.
                for piece in crate::render::while_away(joined, left) {
                    if let Piece::Nick(nick) = piece {
                        self.nicks.colour(nick);
                    }
                }
            }
            Line::Entered { room, .. } => {
                entry.room = Some(room.clone());
                // Its replay comes next: above this line (see
                // `above_entered_line`).
                self.entered_last.insert(room.clone(), entry.id);
            }
            Line::Left { room, .. } => {
                // Said where it was typed too (`/part rust` in #lobby):
                // the view of the room left cannot be shown. The view of
                // no room shows every room's lines already.
                if entry.room.as_ref().is_some_and(|here| here != room) {
                    self.push_entry(entry.clone());
                }
                entry.room = Some(room.clone());
            }
            Line::HistoryNote { room, .. } => {
                entry.room = Some(room.clone());
                if self.pages_past_a_cut(&entry.room) {
                    note_instead = Some(Line::HistoryNote {
                        room: room.clone(),
                        text: format!(
                            "older messages of #{room} not shown: they came for lines the message \
                             area let go (it keeps {}); up past the top or /history asks again",
                            crate::session::grouped(MAX_ENTRIES)
                        ),
                    });
                }
                // What the last /history brought is old news once the
                // next one says: one such line a room, at the bottom.
                let last = self.entries.iter().rposition(
                    |e| matches!(&e.line, Line::HistoryNote { room: r, .. } if r == room),
                );
                if let Some(i) = last {
                    let rows = self.rows_of(i..i + 1, usize::MAX);
                    self.keep_view(i + 1, rows, false);
                    self.entries.remove(i);
                }
            }
            Line::HistoryStart { room, era, .. } => {
                let era = *era;
                if self.pages_past_a_cut(&Some(room.clone())) {
                    // Where a page not shown stopped (see above).
                    return;
                }
                // One mark a room, above its first message (below the
                // notes of entering it), where paging back stopped.
                let room = Some(room.clone());
                if let Some(i) = self
                    .entries
                    .iter()
                    .position(|e| e.room == room && matches!(e.line, Line::HistoryStart { .. }))
                {
                    self.entries.remove(i);
                }
                entry.room = room;
                let first = self.first_message(&entry.room, era);
                self.insert_page_line(self.above_its_notes(&entry.room, first), entry);
                self.page_at = None;
                return;
            }
            Line::HistoryGone { room } => {
                // The history its gaps were in is gone.
                self.drop_gap_lines(|r| r == room);
                entry.room = Some(room.clone());
            }
            Line::Gap { room, filled } => {
                entry.room = Some(room.clone());
                if *filled {
                    // Nothing is missing there any more: its line goes
                    // (the session says so in a line of its own).
                    let marker = self.gap_line(&entry.room);
                    if let Some(i) = marker {
                        let rows = self.rows_of(i..i + 1, usize::MAX);
                        self.keep_view(i + 1, rows, false);
                        self.entries.remove(i);
                    }
                    return;
                }
            }
            _ => {}
        }
        if let Some(line) = note_instead {
            entry.line = line;
        }
        entry.everywhere = entry.room.is_none()
            && (matches!(entry.line, Line::Notice { .. }) || !self.state.joined);
        if let Some(at) = self.above_entered_line(&entry, slot) {
            self.insert_page_line(at, entry);
            // (Not a page: what comes next finds its own place.)
            self.page_at = None;
            return;
        }
        let placed = match slot {
            Slot::Before(at) => Some(at),
            Slot::Top(first) => Some(self.above_its_notes(&entry.room, first)),
            _ => None,
        };
        if let Some(at) = placed {
            // Older than a message of its room on the screen (missing
            // there, or a page come after newer lines): in its place.
            self.insert_page_line(at, entry);
            return;
        }
        let under_gap = fill.then(|| self.gap_line(&entry.room)).flatten();
        if let Some(marker) = under_gap {
            let at = match &self.page_at {
                Some(p) if p.room == entry.room => p.at,
                _ => marker + 1,
            };
            self.insert_page_line(at, entry);
            return;
        }
        if page {
            // A /history page: older than every message shown of its room,
            // so above the first and the notes over it (said after it,
            // `above_its_notes`), in the page's own order (the view,
            // counted from the bottom, stays where it is).
            let at = match &self.page_at {
                Some(p) if p.room == entry.room => p.at,
                _ => {
                    let era = match &entry.line {
                        Line::Msg { place, .. } => place.era,
                        _ => 0,
                    };
                    self.above_its_notes(&entry.room, self.first_message(&entry.room, era))
                }
            };
            self.insert_page_line(at, entry);
            return;
        }
        self.push_entry(entry);
    }

    /// Where a message of the replay that follows a room's
    /// `* entered #room` goes: above that line, so that the room reads as
    /// its history, then the note that one is in (the replay, oldest
    /// first, each above the line, keeps its order). Only while nothing
    /// else of the room came after the line (the replay ends with our own
    /// entering, said below it), and the message is newer than what the
    /// room shows (`slot` at the bottom; older goes in its place).
    /// `None`: where it would go otherwise; any line of the room that is
    /// not such a message ends the replay's place above the line.
    fn above_entered_line(&mut self, entry: &Entry, slot: Slot) -> Option<usize> {
        let room = entry.room.as_ref()?;
        if matches!(entry.line, Line::Entered { .. }) {
            return None;
        }
        let replayed = matches!(
            entry.line,
            Line::Msg {
                history: true,
                page: false,
                missed: false,
                ..
            }
        );
        if !replayed {
            self.entered_last.remove(room);
            return None;
        }
        let id = *self.entered_last.get(room)?;
        if slot != Slot::Bottom || self.cut.contains(room) {
            return None;
        }
        let at = self.entries.iter().rposition(|e| e.id == id);
        if at.is_none() {
            // Gone (the cap, a /clear): at the bottom as any.
            self.entered_last.remove(room);
        }
        at
    }

    /// Put a new line at the bottom, keeping at most [`MAX_ENTRIES`]
    /// (scrolled back, [`MAX_ENTRIES_EVER`]); a line of a room cut is
    /// counted, not kept ([`App::bound`]).
    pub(super) fn push_entry(&mut self, entry: Entry) {
        self.page_at = None;
        // Our own message, confirmed, takes the place of its row waiting
        // at the bottom: nothing below what is shown grows.
        let replaces_waiting = entry.mine && matches!(entry.line, Line::Msg { history: false, .. });
        let cut = entry.room.as_ref().is_some_and(|r| self.cut.contains(r));
        if cut && !kept_while_cut(&entry.line) && !matches!(entry.line, Line::HistoryNote { .. }) {
            // Newer than what the room keeps: counted (its unread count
            // and mentions are, above), not kept; its newest are shown
            // again once the reader comes back to them. (Notes are kept:
            // an error answering a line typed is not lost; so are joins
            // and leaves, which no page brings.)
            if matches!(entry.line, Line::Gap { filled: false, .. }) {
                self.cut_untold.extend(entry.room.clone());
            }
            let news = !matches!(entry.line, Line::HistoryNote { .. });
            if self.scroll > 0 && self.in_view(&entry) && !replaces_waiting && news {
                self.new_below += 1;
                self.new_unkept += 1;
            } else if !self.in_view(&entry) {
                self.new_below_left(&entry, false);
            }
            return;
        }
        if !self.in_view(&entry) {
            self.new_below_left(&entry, true);
        }
        if self.scroll > 0 && self.in_view(&entry) && !replaces_waiting {
            // Keep what is on screen where it is.
            let rows =
                crate::tui::format::entry_height(&entry, self.theme, &mut self.nicks, self.area.0);
            self.scroll += rows;
            // What a page of history brought is news above, not below
            // (its line at the bottom takes the last one's place).
            if !matches!(entry.line, Line::HistoryNote { .. }) {
                self.new_below += 1;
            }
        }
        self.entries.push_back(entry);
        self.trim();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::fixture::*;

    #[test]
    fn other_rooms_count_unread_and_flag_mentions() {
        let mut app = app();
        app.add_line(msg("rust", "bob", &[], "anyone?"), "12:00".into());
        app.add_line(msg("rust", "bob", &[], "alice, you there?"), "12:00".into());
        app.add_line(msg("lobby", "bob", &[], "hi alice"), "12:00".into());
        assert_eq!(
            app.unread.get("rust"),
            Some(&Unread {
                count: 2,
                alert: true
            })
        );
        assert_eq!(
            app.unread.get("lobby"),
            None,
            "the current room is being read"
        );
        assert_eq!(app.take_effects(), [Effect::Bell, Effect::Bell]);
        // Our own lines never count.
        app.add_line(msg("rust", "alice", &[], "yes"), "12:00".into());
        assert_eq!(app.unread["rust"].count, 2);
        // Making the room current reads it.
        let mut state = app.state.clone();
        state.current = Some("rust".into());
        app.set_state(state);
        assert!(app.unread.is_empty());
        let shown: Vec<&Entry> = app.entries.iter().filter(|e| app.in_view(e)).collect();
        assert_eq!(shown.len(), 3);
    }

    /// The line saying #lobby is cut, reworded when #lobby is left, is
    /// laid out again: its row count kept from before (two rows at 76
    /// columns, one now) would move what is read above it.
    #[test]
    fn a_line_reworded_is_counted_again() {
        let mut app = self::app();
        cut_lobby(&mut app);
        app.area.0 = 76;
        let at = app
            .entries
            .iter()
            .position(|e| e.cut && e.room.as_deref() == Some("lobby"))
            .expect("its line");
        assert_eq!(app.rows_of(at..at + 1, usize::MAX), 2);
        let mut state = app.state.clone();
        state.rooms = vec!["rust".into()];
        app.set_state(state);
        assert!(matches!(&app.entries[at].line, Line::Info(t) if t.ends_with("you left #lobby")));
        assert_eq!(app.rows_of(at..at + 1, usize::MAX), 1);
    }

    /// The last line is filed under #rust, and nothing is in view: #lobby
    /// is current.
    fn filed_under_rust(app: &App) {
        assert_eq!(
            app.entries.back().map(|e| e.room.as_deref()),
            Some(Some("rust"))
        );
        assert!(
            !app.entries.iter().any(|e| app.in_view(e)),
            "#lobby is current"
        );
    }

    #[test]
    fn a_history_gone_line_is_filed_under_its_room() {
        let mut app = app();
        app.add_line(
            Line::HistoryGone {
                room: "rust".into(),
            },
            "12:00".into(),
        );
        filed_under_rust(&app);
    }

    /// A room entered with others at the join says so in its own view,
    /// not in the current room's.
    #[test]
    fn an_entered_line_is_filed_under_its_room() {
        let mut app = app();
        let entered = |room: &str| Line::Entered {
            room: room.into(),
            text: format!("entered #{room}; 1 online: alice"),
        };
        app.add_line(entered("rust"), "12:00".into());
        filed_under_rust(&app);
        app.add_line(entered("lobby"), "12:00".into());
        assert!(app.entries.back().is_some_and(|e| app.in_view(e)));
    }

    /// What is said in no room (`you are in no room`, an error, /help)
    /// stays in the no-room view: it showed at the top of every room
    /// entered afterwards. The server's notices, and what is said while
    /// the connection is down, concern every room and show in each.
    #[test]
    fn lines_of_no_room_stay_in_the_no_room_view() {
        let mut app = app();
        let mut state = app.state.clone();
        state.current = None;
        state.rooms = vec![];
        app.set_state(state.clone());
        let info = |text: &str| Line::Info(text.into());
        app.add_line(
            info("you are in no room; /join ROOM to enter one"),
            "12:00".into(),
        );
        app.add_line(
            Line::Error {
                code: "input".into(),
                message: "you are in no room; /join ROOM first".into(),
            },
            "12:00".into(),
        );
        app.add_line(
            Line::Notice {
                text: "restarting at noon".into(),
            },
            "12:00".into(),
        );
        state.joined = false;
        app.set_state(state.clone());
        app.add_line(info("connection lost; reconnecting"), "12:00".into());
        app.add_line(info("reconnected; nothing missed"), "12:00".into());
        state.joined = true;
        app.set_state(state.clone());
        assert_eq!(app.entries.iter().filter(|e| app.in_view(e)).count(), 5);
        state.current = Some("r1".into());
        state.rooms = vec!["r1".into()];
        app.set_state(state);
        let shown: Vec<String> = app
            .entries
            .iter()
            .filter(|e| app.in_view(e))
            .map(|e| match &e.line {
                Line::Info(text) | Line::Notice { text } => text.clone(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            shown,
            [
                "restarting at noon",
                "connection lost; reconnecting",
                "reconnected; nothing missed"
            ]
        );
    }

    /// `you left #lobby` is said in #lobby's view: by the time the
    /// full-screen client shows it, another room is current (the line
    /// was filed there only, and with no room left, in every view).
    #[test]
    fn a_left_line_is_filed_under_the_room_left() {
        let mut app = app();
        let mut state = app.state.clone();
        state.current = Some("rust".into());
        app.set_state(state.clone());
        app.add_line(
            Line::Left {
                room: "lobby".into(),
                text: "you left #lobby".into(),
            },
            "12:00".into(),
        );
        state.current = Some("lobby".into());
        app.set_state(state);
        assert!(app.entries.iter().any(|e| app.in_view(e)), "in #lobby");
    }

    /// `/part rust` typed in #lobby is confirmed in #lobby, where it was
    /// typed: said only in #rust's view, it was seen nowhere (the room
    /// left cannot be shown).
    #[test]
    fn parting_another_room_says_so_in_the_current_view() {
        let mut app = app();
        app.add_line(
            Line::Left {
                room: "rust".into(),
                text: "you left #rust".into(),
            },
            "12:00".into(),
        );
        let here: Vec<&Line> = app
            .entries
            .iter()
            .filter(|e| app.in_view(e))
            .map(|e| &e.line)
            .collect();
        assert!(matches!(here[..], [Line::Left { .. }]), "{here:?}");
        // And in #rust's own view, joined again.
        let mut state = app.state.clone();
        state.current = Some("rust".into());
        app.set_state(state);
        let there = app.entries.iter().filter(|e| app.in_view(e)).count();
        assert_eq!(there, 1);
    }

    /// Who came and went in a room while the connection was lost is said
    /// in that room, not in the current one.
    #[test]
    fn a_while_away_line_is_filed_under_its_room() {
        let mut app = app();
        let away = |room: &str| Line::WhileAway {
            room: Some(room.into()),
            joined: vec!["carol".into()],
            left: vec![],
        };
        app.add_line(away("rust"), "12:00".into());
        filed_under_rust(&app);
        app.add_line(away("lobby"), "12:00".into());
        assert!(app.entries.back().is_some_and(|e| app.in_view(e)));
    }

    /// Of a long list only the names shown take a colour: the others
    /// ("and 2 more") would use the palette up on people never on screen.
    #[test]
    fn a_while_away_line_colours_only_the_names_it_shows() {
        let mut app = app();
        let names = |p: &str, n: usize| (1..=n).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
        let away = Line::WhileAway {
            room: Some("lobby".into()),
            joined: names("j", 12),
            left: names("l", 11),
        };
        app.add_line(away, "12:00".into());
        for shown in ["j1", "j10", "l1", "l10"] {
            assert!(app.nicks.has(shown), "{shown} is shown");
        }
        for more in ["j11", "j12", "l11"] {
            assert!(!app.nicks.has(more), "{more} is not shown");
        }
    }
}
