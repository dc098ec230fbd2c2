//! What the shell feeds the session (the `handle_*` calls) and
//! [`poll`](Session::poll), which drains what they caused.

use chatproto::{ErrorCode, ServerFrame};

use super::commands::line_kind;
use super::lines::{grouped, plural, NAMES_SHOWN};
use super::{Action, Session};
use crate::input::{parse_line, verbatim_line, Command};
use crate::render::Line;

impl Session {
    /// A connection is open: the core joins (resuming, after the first time).
    pub fn handle_connected(&mut self, now: u64) {
        self.now = now;
        self.fatal = None;
        self.client.handle_connected(now);
        self.pump();
    }

    /// The connection ended.
    pub fn handle_disconnected(&mut self) {
        // Leavings seen before the loss are said before it.
        self.say_departures(true);
        self.note_who_was_there();
        self.client.handle_disconnected();
        self.rejoined_at = None;
        self.requeue_absent();
        self.note_offline_messages();
        self.entering.clear();
        self.listing = 0;
        self.pages_lost(true);
        self.resume = None;
        self.replaying.clear();
        // Its online list never came whole: a reconnect enters it again
        // and says so then.
        self.announcing.clear();
        self.pump();
    }

    /// A frame arrived from the server.
    pub fn handle_frame(&mut self, now: u64, frame: ServerFrame) {
        self.now = now;
        // Leavings due are said before what came after them.
        self.say_departures(false);
        let mut elsewhere = false;
        if let ServerFrame::Error { code, message, .. } = &frame {
            if code.is_fatal() {
                self.fatal = Some((*code, message.clone()));
            }
            elsewhere = *code == ErrorCode::ResumedElsewhere;
        }
        if let ServerFrame::Welcome {
            limits: Some(l), ..
        } = &frame
        {
            // A line too long for this server is refused as it is typed,
            // not sent to have the connection closed (and sent again).
            // Of this server: another one reached later may take more.
            let theirs = usize::try_from(l.max_frame_bytes).unwrap_or(usize::MAX);
            self.max_frame_bytes = self.own_max_frame_bytes.min(theirs);
        }
        if let ServerFrame::Online {
            room: Some(room),
            nicks,
            ..
        } = &frame
        {
            // More of a list whose line waits: its first names, in name
            // order with the others (as `/who` lists them).
            if let Some(first) = self.announcing.get_mut(room) {
                let room_left = NAMES_SHOWN.saturating_sub(first.len());
                first.extend(nicks.iter().take(room_left).cloned());
                first.sort_by_cached_key(|n| chatproto::nick_key(n));
            }
        }
        if self.mode.echo_frames {
            // A room's `entered` line waits for its next event (see
            // `announce_entered`): it goes before that event's frame.
            let next_of = match &frame {
                ServerFrame::Msg { room: Some(r), .. }
                | ServerFrame::Presence { room: Some(r), .. }
                | ServerFrame::History { room: r, .. } => Some(r.clone()),
                _ => None,
            };
            if let Some(room) = next_of {
                self.announce_entered(&room);
            }
            self.out.push_back(Action::Frame(frame.clone()));
        }
        self.ledger.note(&frame);
        // An error naming one of our rooms and no message: if the core
        // gives the room up for it, the server would not let us in.
        let entering = match &frame {
            ServerFrame::Error {
                room: Some(room),
                id: None,
                code,
                message,
                ..
            } if self.client.rooms().any(|r| r == room) => {
                Some((room.clone(), *code, message.clone()))
            }
            _ => None,
        };
        // A message refused: its line, quoted with the refusal, from the
        // core's copy (gone once the core has the answer).
        if let ServerFrame::Error { id: Some(id), .. } = &frame {
            self.keep_quote(id);
        }
        self.client.handle_frame(now, frame);
        if let Some((room, code, message)) =
            entering.filter(|(r, ..)| !self.client.rooms().any(|ours| ours == r))
        {
            if self.every_room_named {
                // The full-screen client: a person saw the room refused,
                // which fails no line there (as it fails no run).
                self.ledger.entered(&room);
            } else {
                self.ledger.room_refused(&room, code.as_str(), &message);
            }
            self.refused_rooms.insert(room);
        }
        let client = &self.client;
        let absent = &self.absent;
        self.ledger
            .settle(|id| client.is_unacknowledged(id) || absent.iter().any(|a| a.id == id));
        self.pump();
        self.quotes.clear();
        self.prune_offline();
        // After the error's own line.
        if elsewhere {
            self.out.push_back(Action::ResumedElsewhere);
        }
    }

    /// A frame arrived that could not be parsed (from a newer server?);
    /// the framing is still in sync, so say so and carry on.
    pub fn handle_bad_frame(&mut self, why: &str) {
        self.print(Line::Error {
            code: "bad_frame".into(),
            message: format!("ignored a frame from the server: {why}"),
        });
        // It may have been the answer to a /history or /rooms: what it
        // answered is not known, so nothing is waited for any more (a
        // pipe would otherwise wait for ever).
        self.listing = 0;
        self.pages_lost(false);
        self.pump();
    }

    /// No page asked is waited for any more: none will come (`surely`:
    /// the connection went), or one may, unknown when (see
    /// [`Session::page_of_one_lost`]).
    fn pages_lost(&mut self, surely: bool) {
        let rooms = match surely {
            true => self.pages.lost(),
            false => self.pages.doubt_all(),
        };
        for room in rooms {
            self.page_of_one_lost(&room, surely);
        }
        if surely {
            // Nor a page of one said early, of a gap no longer asked into.
            for gap in self.gaps.values_mut().flatten() {
                gap.probing = None;
            }
        }
    }

    /// When to call [`handle_timeout`](Session::handle_timeout), on the
    /// monotonic clock in milliseconds.
    pub fn poll_timeout(&self) -> Option<u64> {
        [
            self.client.poll_timeout(),
            self.next_departure(),
            self.next_absent_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Time passed (the core pings a silent server, or calls it dead; a
    /// leaving held back is said).
    pub fn handle_timeout(&mut self, now: u64) {
        self.now = now;
        self.say_departures(false);
        self.give_up_on_absent(false);
        self.client.handle_timeout(now);
        self.pump();
    }

    /// The user typed `line`. Its outcome follows as an
    /// [`Action::Outcome`], after those of the lines before it.
    pub fn handle_line(&mut self, line: &str) {
        if self.input_done {
            // Read after /quit or a signal (while reconnecting): not acted on.
            self.ledger.skip();
        } else {
            let cmd = if self.mode.verbatim {
                verbatim_line(line)
            } else {
                parse_line(line)
            };
            let moves = matches!(cmd, Command::Join(_) | Command::Part(_));
            if moves && self.mode.wait_for_rooms && self.client.unacknowledged() > 0 {
                self.deferred = Some(cmd);
            } else {
                self.run_line(cmd);
            }
        }
        self.pump();
    }

    /// An input line of `bytes` bytes, too long for the reader to keep
    /// (see [`InputEvent::TooLong`](crate::console::InputEvent::TooLong)):
    /// counted and answered as a line, refused `msg_too_large` as a
    /// message too long is, whatever it held.
    pub fn handle_too_long(&mut self, bytes: u64) {
        if self.input_done {
            self.ledger.skip();
        } else {
            self.ledger.begin();
            let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
            let most = self.max_text_bytes();
            self.error(
                "msg_too_large",
                format!(
                    "not sent: the line is {} bytes; the server takes at most {}",
                    grouped(bytes),
                    grouped(most)
                ),
            );
            self.ledger.end(crate::ledger::LineKind::Message);
        }
        self.pump();
    }

    /// The full-screen client's message area was scrolled up near the
    /// current room's oldest line: `limit` older messages are fetched, as
    /// `/history N` fetches them (at most a page of the server's), if
    /// there are any to fetch now. Not a typed line: it is not counted
    /// among the input lines nor given an outcome, and when nothing can
    /// be fetched (the connection lost since the screen asked, a page on
    /// its way, input over) nothing is said, as nothing was typed.
    pub fn handle_older(&mut self, limit: u64) {
        self.older_taken += 1;
        let room = self.current.clone();
        if !self.input_done && room.is_some_and(|r| self.pages_back(&r)) {
            let limit = limit.clamp(1, self.server_page());
            self.command(Command::History(limit));
        }
        self.pump();
    }

    /// The full-screen client's message area, at its cap, let go of
    /// `room`'s oldest messages: what it shows of the room's history now
    /// starts at the message at `kept.from` (`None`, or a place in an
    /// earlier history of the room: none of this one is shown). Paging
    /// back goes on from there, not from the oldest ever shown (a page
    /// from there would go above a hole); the pages on their way page
    /// back from what is gone, and are not shown (as after `/clear`), a
    /// line saying so now (as the screen says of a page it got before
    /// the session took this); the
    /// messages let go are not on the screen any more, to be shown again
    /// by a page or a replay, nor are those missing after a reconnect
    /// older than `from` (paged back through as the rest). Of the room's
    /// earlier histories, only what went above `kept.first` is forgotten:
    /// what is still shown of one is not shown again if the server goes
    /// back to it. Not a typed line.
    pub fn handle_let_go(&mut self, room: &str, kept: crate::render::Kept) {
        self.let_go_taken += 1;
        let era = self.seen.get(room).map_or(0, |s| s.era);
        let from = kept.from.filter(|p| p.era == era).map(|p| p.seq);
        match from {
            Some(from) => {
                self.oldest.insert(room.to_owned(), from);
            }
            None => {
                self.oldest.remove(room);
            }
        }
        self.no_older.remove(room);
        // What pages brought is counted again from here (those that
        // went come again).
        self.paged.remove(room);
        if self.pages.waiting(room) {
            // Its page will not be shown: said now, as the screen says
            // of one come before it was told (a typed `/history` does
            // not go unanswered).
            self.print(Line::HistoryNote {
                room: room.to_owned(),
                text: format!(
                    "older messages of #{room} not shown: they were asked for from lines the \
                     message area let go; up past the top or /history asks again"
                ),
            });
        }
        self.pages.drop_all(room);
        if let Some(gaps) = self.gaps.get_mut(room) {
            gaps.retain(|g| from.is_some_and(|f| g.before.is_none_or(|b| b > f)));
            if gaps.is_empty() {
                self.gaps.remove(room);
            }
        }
        if let Some(seen) = self.seen.get_mut(room) {
            seen.let_go(from, kept.first);
        }
        self.pump();
    }

    /// The full-screen client's message area cut `room` while its reader
    /// read back: it shows none of the room's messages after the one at
    /// `last` (`None`, or a place in an earlier history of the room: none
    /// of this one), and fetches its newest once the reader comes back to
    /// them. What is missing after that message (a reconnect's gap) is
    /// not paged into: a page of it would not be shown. Paging back goes
    /// on from the oldest message shown. Not a typed line.
    pub fn handle_cut(&mut self, room: &str, last: Option<crate::render::Place>) {
        let era = self.seen.get(room).map_or(0, |s| s.era);
        let last = last.filter(|p| p.era == era).map(|p| p.seq);
        if let Some(gaps) = self.gaps.get_mut(room) {
            // A gap among the messages shown has one of them after it.
            gaps.retain(|g| last.is_some_and(|l| g.after < l));
            if gaps.is_empty() {
                self.gaps.remove(room);
            }
        }
        self.pump();
    }

    /// Act on one input line, its outcome recorded.
    pub(super) fn run_line(&mut self, cmd: Command) {
        let kind = line_kind(&cmd);
        self.ledger.begin();
        self.command(cmd);
        self.ledger.end(kind);
    }

    /// Stdin ended (`/quit` sets the same state itself, and leaves with
    /// `--stay` too): leave once every message
    /// sent has been acknowledged, across reconnects, so nothing typed is
    /// lost. With [`Mode::stay`](super::Mode::stay), the end of input
    /// only stops reading it.
    pub fn handle_input_end(&mut self) {
        if self.mode.stay && !self.input_done {
            // At once, not after the answers to the last lines: it says
            // what the client does now (it stays), which a reader waiting
            // for a server that does not answer needs to know.
            self.info("end of input; staying connected until SIGINT or SIGTERM".into());
        }
        self.input_done = true;
        if !self.mode.stay {
            self.leaving = true;
        }
        self.pump();
    }

    /// Asked to stop (a signal, with `--stay`): read no more input, and
    /// leave once every message sent has been acknowledged.
    pub fn handle_stop(&mut self) {
        self.input_done = true;
        self.leaving = true;
        match self.client.unacknowledged() {
            0 => {}
            n => self.info(format!(
                "leaving once the server has answered {}; signal again to leave at once",
                plural(n, "more message")
            )),
        }
        self.pump();
    }

    /// The shell is stopping before every message was answered: report
    /// the lines still waiting as unconfirmed.
    pub fn abandon_lines(&mut self) {
        self.give_up_on_absent(true);
        self.ledger.abandon();
        // A line waiting for those is not acted on now.
        if self.deferred.take().is_some() {
            self.ledger.skip();
        }
        self.drain_outcomes();
    }

    /// The next thing to do.
    pub fn poll(&mut self) -> Option<Action> {
        self.out.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::OutcomeKind;
    use crate::session::testkit::*;
    use crate::session::Mode;
    use chatproto::ClientFrame;

    /// Input read ahead (a pipe): what a line says is shown after the
    /// lines before it were answered, so the output reads in input order.
    /// At a terminal it is shown at once.
    #[test]
    fn a_piped_lines_notes_wait_for_the_lines_before_it() {
        for piped in [true, false] {
            let mut s = joined(&["lobby"]);
            s.set_mode(Mode {
                wait_for_rooms: piped,
                ..Mode::default()
            });
            let id1 = the_id(&line(&mut s, "first line").sent);
            let nope = line(&mut s, "/nope").lines;
            let id3 = the_id(&line(&mut s, "second line").sent);
            let who = line(&mut s, "/who").lines;
            if !piped {
                assert_eq!((nope.len(), who.len()), (1, 1));
                continue;
            }
            assert!(nope.is_empty() && who.is_empty(), "{nope:?} {who:?}");
            let out = frame(&mut s, echo("lobby", 2, "alice", "first line", &id1));
            assert_eq!(out.lines.len(), 2, "{:?}", out.lines);
            assert_eq!(out.lines[0], "alice: first line");
            assert!(
                out.lines[1].contains("unknown command /nope"),
                "{:?}",
                out.lines
            );
            let out = frame(&mut s, echo("lobby", 3, "alice", "second line", &id3));
            assert_eq!(out.lines, ["alice: second line", "* online (1): alice"]);
            assert_eq!(outcomes(&out).len(), 2);
        }
    }

    /// The full-screen client's request for older messages (scrolled up
    /// past the oldest line) is not a typed line: not counted, given no
    /// outcome; and when nothing can be fetched (a page on its way, the
    /// connection lost since it was made) nothing is said (it was
    /// refused, "not connected; try again", as a line typed would be).
    #[test]
    fn a_request_for_older_messages_is_not_a_typed_line() {
        let mut s = joined(&["lobby"]);
        s.handle_older(crate::input::HISTORY_DEFAULT);
        let out = drain(&mut s);
        assert!(
            matches!(&out.sent[..], [ClientFrame::History { room, .. }] if room == "lobby"),
            "{out:?}"
        );
        assert!(out.lines.is_empty() && out.outcomes.is_empty(), "{out:?}");
        // Its page on its way; then the connection lost.
        s.handle_older(crate::input::HISTORY_DEFAULT);
        let on_its_way = drain(&mut s);
        s.handle_disconnected();
        drain(&mut s);
        s.handle_older(crate::input::HISTORY_DEFAULT);
        let offline = drain(&mut s);
        for out in [on_its_way, offline] {
            assert!(
                out.sent.is_empty() && out.lines.is_empty() && out.outcomes.is_empty(),
                "{out:?}"
            );
        }
        assert_eq!((s.lines_read(), s.lines_failed()), (0, 0));
        assert_eq!(s.older_taken(), 3);
    }

    /// The full-screen client's cap let go of a room's oldest messages
    /// (up to 34): `/history` pages back from the oldest kept, not from
    /// the oldest ever shown; a page asked before pages back from what
    /// went, and is not shown; the messages that went are shown again by
    /// a page (they were taken for on the screen already).
    #[test]
    fn paging_goes_on_from_the_oldest_line_the_screen_kept() {
        let mut s = lobby_shown_30_to_39(true);
        let out = line(&mut s, "/history 5");
        assert_eq!(out.sent, [ClientFrame::history("lobby", Some(30), Some(5))]);
        let era = s.seen["lobby"].era;
        let from = Some(crate::render::Place { era, seq: 35 });
        let kept = crate::render::Kept { from, first: from };
        s.handle_let_go("lobby", kept);
        let said = drain(&mut s).lines;
        assert!(said.len() == 1 && said[0].contains("not shown"), "{said:?}");
        let old: Vec<ServerFrame> = (25..30)
            .map(|q| replayed(msg("lobby", q, "bob", &[], &format!("m{q}")), None))
            .collect();
        let shown = frame(&mut s, ServerFrame::history("lobby", old, true)).lines;
        assert!(shown.is_empty(), "asked before: {shown:?}");
        let out = line(&mut s, "/history 5");
        assert_eq!(out.sent, [ClientFrame::history("lobby", Some(35), Some(5))]);
        let again: Vec<ServerFrame> = (30..35)
            .map(|q| replayed(msg("lobby", q, "bob", &[], &format!("m{q}")), None))
            .collect();
        let shown = frame(&mut s, ServerFrame::history("lobby", again, true)).lines;
        assert!(shown.len() >= 5, "{shown:?}");
        assert_eq!(shown[0], "[#lobby] [history] bob: m30");
        assert_eq!(s.let_go_taken(), 1);
    }

    /// A typed `/history` whose page is on its way when the screen says
    /// its cap let go of the room's oldest lines: the page is not shown
    /// (it pages back from below what went), and a line says so at once,
    /// not nothing; a page not on its way says nothing.
    #[test]
    fn a_history_dropped_by_a_let_go_says_it_is_not_shown() {
        let mut s = lobby_shown_30_to_39(true);
        let era = s.seen["lobby"].era;
        let from = Some(crate::render::Place { era, seq: 35 });
        let kept = crate::render::Kept { from, first: from };
        line(&mut s, "/history 5");
        s.handle_let_go("lobby", kept);
        let said = drain(&mut s).lines;
        assert_eq!(
            said,
            [
                "* older messages of #lobby not shown: they were asked for from lines the \
                 message area let go; up past the top or /history asks again"
            ]
        );
        let old: Vec<ServerFrame> = (25..30)
            .map(|q| replayed(msg("lobby", q, "bob", &[], &format!("m{q}")), None))
            .collect();
        let shown = frame(&mut s, ServerFrame::history("lobby", old, true)).lines;
        assert!(shown.is_empty(), "{shown:?}");
        s.handle_let_go("lobby", kept);
        assert!(drain(&mut s).lines.is_empty());
    }

    /// #lobby, its history begun anew (e2) after two messages of e1: the
    /// cap let go of none of e1's lines on the screen, and `replay` of
    /// e1 (the server gone back to it, restarted with its data
    /// directory) brings them and a newer one. What it shows of that
    /// replay, once the screen said what it kept: its history's lines
    /// starting at 1 of e2, all its lines at `first` (1: 2 of e1; 2: 1 of
    /// e2, e1's lines gone).
    fn back_to_e1_after_a_let_go(first: u8) -> Vec<String> {
        let mut s = joined(&["lobby"]);
        s.name_every_room();
        let e1 = s.seen["lobby"].era;
        frame(&mut s, msg("lobby", 2, "bob", &[], "one"));
        frame(&mut s, msg("lobby", 3, "bob", &[], "two"));
        begun_anew_as_e2(&mut s);
        let e2 = s.seen["lobby"].era;
        let from = Some(crate::render::Place { era: e2, seq: 1 });
        let first = match first {
            1 => Some(crate::render::Place { era: e1, seq: 2 }),
            _ => from,
        };
        s.handle_let_go("lobby", crate::render::Kept { from, first });
        drain(&mut s);
        back_to_e1(&mut s)
    }

    /// The cap let go of #lobby's lines, none of those of its earlier
    /// history (e1) still on the screen: back to e1, what is shown of it
    /// is not shown again (as without a let go:
    /// `a_history_gone_back_to_an_earlier_epoch_shows_nothing_twice`),
    /// only what is new.
    #[test]
    fn back_to_an_earlier_epoch_after_a_let_go_shows_what_is_still_shown_once() {
        let shown = back_to_e1_after_a_let_go(1);
        let again: Vec<&String> = shown
            .iter()
            .filter(|l| l.ends_with("bob: one") || l.ends_with("bob: two"))
            .collect();
        assert!(again.is_empty(), "shown again: {shown:?}");
        assert!(shown.iter().any(|l| l.ends_with("bob: three")), "{shown:?}");
    }

    /// The cap let go of all that #lobby's earlier history (e1) showed:
    /// back to e1, its messages are not on the screen, and its replay
    /// shows them again.
    #[test]
    fn back_to_an_earlier_epoch_whose_lines_the_cap_let_go_shows_them_again() {
        let shown = back_to_e1_after_a_let_go(2);
        for text in ["one", "two", "three"] {
            let end = format!("bob: {text}");
            let n = shown.iter().filter(|l| l.ends_with(&end)).count();
            assert_eq!(n, 1, "{text}: {shown:?}");
        }
    }

    #[test]
    fn the_end_of_input_waits_for_the_answers_to_history_and_rooms() {
        let mut s = joined(&["lobby"]);
        s.set_mode(Mode {
            wait_for_rooms: true,
            ..Mode::default()
        });
        line(&mut s, "/history");
        line(&mut s, "/rooms");
        s.handle_input_end();
        assert!(!drain(&mut s).other.contains(&Action::Exit));
        let out = frame(&mut s, ServerFrame::history("lobby", Vec::new(), false));
        assert_eq!(out.lines, ["* no older messages in #lobby"]);
        assert!(!out.other.contains(&Action::Exit));
        let out = frame(&mut s, ServerFrame::rooms(vec![]));
        assert!(out.other.contains(&Action::Exit), "{out:?}");
    }

    #[test]
    fn an_unanswered_ping_calls_the_connection_dead() {
        let mut s = joined(&["lobby"]);
        let at = s.poll_timeout().expect("a timer while connected");
        s.handle_timeout(at);
        assert_eq!(drain(&mut s).sent, [ClientFrame::Ping]);
        let at = s.poll_timeout().unwrap();
        s.handle_timeout(at);
        assert_eq!(drain(&mut s).other, [Action::Dead]);
    }

    #[test]
    fn quit_with_nothing_in_flight_exits_at_once() {
        let mut s = joined(&["lobby"]);
        let out = line(&mut s, "/quit");
        assert_eq!(out.other, [Action::Exit]);
        // Input after /quit is ignored.
        let out = line(&mut s, "late");
        assert!(out.sent.is_empty() && out.other.is_empty());
    }

    #[test]
    fn resumed_elsewhere_is_shown_then_ends_the_session() {
        let mut s = joined(&["lobby"]);
        s.handle_frame(
            0,
            ServerFrame::error(ErrorCode::ResumedElsewhere, "taken over"),
        );
        let error = Line::Error {
            code: "resumed_elsewhere".into(),
            message: "taken over".into(),
        };
        assert_eq!(s.poll(), Some(Action::Print(error)));
        assert_eq!(s.poll(), Some(Action::ResumedElsewhere));
        assert_eq!(s.poll(), None);
        // Another fatal error ends the connection only: the shell reconnects.
        let mut s = joined(&["lobby"]);
        let out = frame(
            &mut s,
            ServerFrame::error(ErrorCode::SlowConsumer, "too slow"),
        );
        assert_eq!(out.lines, ["! slow_consumer: too slow"]);
        assert!(out.other.is_empty(), "{:?}", out.other);
    }

    /// The outcomes as `(line, short description)`, for comparing.
    fn outcomes(out: &Out) -> Vec<(u64, String)> {
        out.outcomes
            .iter()
            .map(|o| {
                let what = match &o.kind {
                    OutcomeKind::Sent { room, seq, .. } => format!("sent {room} {seq:?}"),
                    OutcomeKind::Refused { id, code, .. } => {
                        format!(
                            "refused {code} {}",
                            if id.is_some() { "server" } else { "local" }
                        )
                    }
                    OutcomeKind::Done { command } => format!("done {command}"),
                    OutcomeKind::Skipped => "skipped".to_owned(),
                    OutcomeKind::Unconfirmed { room, .. } => format!("unconfirmed {room}"),
                };
                (o.line, what)
            })
            .collect()
    }

    fn error_for(id: &str, code: ErrorCode, seq: Option<u64>) -> ServerFrame {
        ServerFrame::error_v2(
            code,
            format!("{} for {id}", code.as_str()),
            Some(id.into()),
            Some("lobby".into()),
            seq,
        )
    }

    #[test]
    fn every_line_gets_one_outcome_in_input_order() {
        let mut s = joined(&["lobby"]);
        let id1 = the_id(&line(&mut s, "first").sent);
        // Known at once, but reported after line 1's.
        let out = line(&mut s, "/who");
        assert!(out.outcomes.is_empty(), "{:?}", out.outcomes);
        line(&mut s, "   ");
        line(&mut s, "/nope");
        let id5 = the_id(&line(&mut s, "@zed hi").sent);
        let out = line(&mut s, &"x".repeat(70_000));
        assert!(out.sent.is_empty());
        let id7 = the_id(&line(&mut s, "last").sent);
        assert_eq!(s.unacknowledged(), 3);
        // Answers out of order: line 5 is refused before line 1 is echoed.
        let out = frame(&mut s, error_for(&id5, ErrorCode::UnknownNick, None));
        assert!(out.outcomes.is_empty());
        let out = frame(&mut s, echo("lobby", 2, "alice", "first", &id1));
        assert_eq!(
            outcomes(&out),
            [
                (1, "sent lobby Some(2)".to_owned()),
                (2, "done who".to_owned()),
                (3, "skipped".to_owned()),
                (4, "refused input local".to_owned()),
                (5, "refused unknown_nick server".to_owned()),
                (6, "refused msg_too_large local".to_owned()),
            ]
        );
        s.handle_input_end();
        let out = drain(&mut s);
        assert!(
            out.other.is_empty(),
            "line 7 is unanswered: {:?}",
            out.other
        );
        let out = frame(&mut s, echo("lobby", 3, "alice", "last", &id7));
        assert_eq!(outcomes(&out), [(7, "sent lobby Some(3)".to_owned())]);
        assert_eq!(out.other, [Action::Exit], "the outcomes come before Exit");
        assert_eq!((s.lines_read(), s.lines_failed()), (7, 3));
    }

    /// A line the reader would not keep is one line refused as too large,
    /// in its place among the others, with its size.
    #[test]
    fn a_line_too_long_to_read_is_refused_in_its_place() {
        let mut s = joined(&["lobby"]);
        let id1 = the_id(&line(&mut s, "first").sent);
        s.handle_too_long(314_572_800);
        let out = drain(&mut s);
        assert!(out.sent.is_empty(), "{:?}", out.sent);
        let id3 = the_id(&line(&mut s, "after").sent);
        frame(&mut s, echo("lobby", 2, "alice", "first", &id1));
        let out = frame(&mut s, echo("lobby", 3, "alice", "after", &id3));
        assert_eq!(
            outcomes(&out),
            [(3, "sent lobby Some(3)".to_owned())],
            "{:?}",
            out.outcomes
        );
        assert_eq!((s.lines_read(), s.lines_failed()), (3, 1));
        let mut s = joined(&["lobby"]);
        s.handle_too_long(314_572_800);
        let out = drain(&mut s);
        assert_eq!(
            outcomes(&out),
            [(1, "refused msg_too_large local".to_owned())]
        );
        let max = s.max_text_bytes();
        assert_eq!(
            out.lines,
            [format!(
                "! msg_too_large: not sent: the line is 314,572,800 bytes; the server takes at most {}",
                grouped(max)
            )]
        );
    }

    #[test]
    fn a_resend_answered_as_a_duplicate_or_matched_in_a_replay_was_sent() {
        // Resumed: the server knows the id and says duplicate, with the seq.
        let mut s = joined(&["lobby"]);
        let id = the_id(&line(&mut s, "a1").sent);
        s.handle_disconnected();
        s.handle_connected(10);
        frame(&mut s, welcome("alice", true));
        let out = frame(&mut s, error_for(&id, ErrorCode::Duplicate, Some(4)));
        assert_eq!(outcomes(&out), [(1, "sent lobby Some(4)".to_owned())]);
        assert!(out.lines.is_empty());

        // A fresh session: the replay's copy, without our id, is matched
        // by its content.
        let mut s = joined(&["lobby"]);
        line(&mut s, "a1");
        s.handle_disconnected();
        s.handle_connected(10);
        frame(&mut s, welcome("alice", false));
        frame(&mut s, entered("lobby", 5, &["alice"], true));
        let mut copy = replayed(msg("lobby", 5, "alice", &[], "a1"), None);
        if let ServerFrame::Msg { id, .. } = &mut copy {
            *id = None;
        }
        let out = frame(&mut s, copy);
        assert_eq!(outcomes(&out), [(1, "sent lobby Some(5)".to_owned())]);
        assert_eq!(s.unacknowledged(), 0);
    }

    #[test]
    fn json_mode_reports_frames_and_leaves_errors_to_them() {
        let mut s = joined(&["lobby"]);
        s.set_mode(Mode {
            echo_frames: true,
            ..Mode::default()
        });
        let id = the_id(&line(&mut s, "@zed hi").sent);
        let err = error_for(&id, ErrorCode::UnknownNick, None);
        let out = frame(&mut s, err.clone());
        assert_eq!(out.other, [Action::Frame(err)]);
        assert!(out.lines.is_empty(), "the frame says it: {:?}", out.lines);
        assert_eq!(
            outcomes(&out),
            [(1, "refused unknown_nick server".to_owned())]
        );
        let out = line(&mut s, "/nope");
        assert!(out.lines.is_empty(), "the outcome says it: {:?}", out.lines);
        assert_eq!(outcomes(&out), [(2, "refused input local".to_owned())]);
        let out = line(&mut s, "/who");
        assert_eq!(out.lines, ["* online (1): alice"]);
    }

    /// With `--json`, the `entered #room; ...` line (which waits for the
    /// room's next event, a big room's list coming in parts) comes before
    /// that event's frame, as it does before its line without `--json`:
    /// it came between the first replayed message and the rest.
    #[test]
    fn json_mode_says_entered_before_the_rooms_next_frame() {
        let mut s = welcomed(&["lobby"]);
        s.set_mode(Mode {
            echo_frames: true,
            ..Mode::default()
        });
        s.handle_frame(0, entered("lobby", 3, &["bob", "alice"], false));
        s.handle_frame(0, replayed(msg("lobby", 2, "bob", &[], "hi"), None));
        let mut order = Vec::new();
        while let Some(a) = s.poll() {
            match a {
                Action::Frame(ServerFrame::Entered { .. }) => order.push("entered frame".into()),
                Action::Frame(ServerFrame::Msg { .. }) => order.push("msg frame".into()),
                Action::Print(Line::Info(text) | Line::Entered { text, .. }) => order.push(text),
                _ => {}
            }
        }
        assert_eq!(
            order,
            [
                "entered frame",
                "entered #lobby; 2 online: alice, bob",
                "msg frame"
            ]
        );
    }

    #[test]
    fn stay_outlives_the_input_until_stopped() {
        let mut s = joined(&["lobby"]);
        s.set_mode(Mode {
            stay: true,
            ..Mode::default()
        });
        let id = the_id(&line(&mut s, "hi").sent);
        s.handle_input_end();
        let out = frame(&mut s, echo("lobby", 2, "alice", "hi", &id));
        assert_eq!(outcomes(&out), [(1, "sent lobby Some(2)".to_owned())]);
        assert!(out.other.is_empty(), "still here: {:?}", out.other);
        assert_eq!(
            frame(&mut s, msg("lobby", 3, "bob", &[], "later")).lines,
            ["bob: later"]
        );
        assert!(!s.stopping());
        s.handle_stop();
        assert!(s.stopping());
        assert_eq!(drain(&mut s).other, [Action::Exit]);
        assert_eq!(s.lines_failed(), 0);
    }

    /// The connection lost before the echoes of a private message and a
    /// message to everyone, and the server kept no session (a fresh
    /// one): the private message cannot be seen again, and the lobby's
    /// replay has a gap, so neither is sent again. Each line is
    /// unconfirmed, and a line says so with the message as it could be
    /// typed again; a line typed offline is sent (after the replay), and
    /// its echo answers it.
    #[test]
    fn messages_a_fresh_session_cannot_account_for_are_unconfirmed_not_resent() {
        let mut s = joined(&["lobby"]);
        line(&mut s, "@bob secret");
        line(&mut s, "hello all");
        s.handle_disconnected();
        drain(&mut s);
        line(&mut s, "typed offline");
        s.handle_connected(10);
        drain(&mut s);
        let out = frame(&mut s, welcome("alice", false));
        // The lobby entered; the line typed offline waits behind the
        // lobby's replay, which may hold the one before it.
        assert_eq!(out.sent.len(), 1, "{:?}", out.sent);
        let unconfirmed = "* not sent again, it may have arrived: #lobby: @bob: secret (the \
                           connection was lost before the server confirmed it, and the server \
                           did not keep your session to tell); type it again if it did not arrive";
        assert_eq!(out.lines, [unconfirmed]);
        assert_eq!(outcomes(&out), [(1, "unconfirmed lobby".to_owned())]);
        // #lobby's replay begins past what was seen: a gap.
        let gap = ServerFrame::entered("lobby", "e1", 9, 5, vec!["alice".into()], false);
        frame(&mut s, gap);
        let out = frame(&mut s, presence("lobby", 10, "alice", true));
        // Only the line typed offline: nothing is sent again.
        let id = the_id(&out.sent);
        assert!(
            out.lines.iter().any(
                |l| l.starts_with("* not sent again, it may have arrived: #lobby: hello all (")
            ),
            "{:?}",
            out.lines
        );
        assert_eq!(outcomes(&out), [(2, "unconfirmed lobby".to_owned())]);
        let out = frame(&mut s, echo("lobby", 11, "alice", "typed offline", &id));
        assert_eq!(outcomes(&out), [(3, "sent lobby Some(11)".to_owned())]);
        assert_eq!(s.unacknowledged(), 0);
        assert_eq!(s.lines_failed(), 2);
    }

    #[test]
    fn lines_unanswered_at_the_end_are_unconfirmed() {
        let mut s = joined(&["lobby"]);
        line(&mut s, "one");
        line(&mut s, "/who");
        s.abandon_lines();
        let out = drain(&mut s);
        assert_eq!(
            outcomes(&out),
            [
                (1, "unconfirmed lobby".to_owned()),
                (2, "done who".to_owned())
            ]
        );
        assert_eq!(s.lines_failed(), 1);
    }

    /// A `/join` of a room not yet entered is answered by the server:
    /// `done` once entered, `refused` with the server's error if not, and
    /// the lines after it wait for that answer; one the client leaves
    /// before the answer (a `/part`, the end) is done.
    #[test]
    fn a_join_waits_for_the_servers_answer() {
        let mut s = joined(&["lobby"]);
        line(&mut s, "/join ops");
        let out = line(&mut s, "/who");
        assert!(out.outcomes.is_empty(), "{:?}", out.outcomes);
        let out = frame(&mut s, entered("ops", 0, &["alice"], false));
        assert_eq!(
            outcomes(&out),
            [(1, "done join".to_owned()), (2, "done who".to_owned())]
        );
        line(&mut s, "/join zig");
        let out = frame(
            &mut s,
            room_error(ErrorCode::TooManyRooms, "not #zig", "zig"),
        );
        // The server's code, but no id ("local"): no message was sent.
        assert_eq!(
            outcomes(&out),
            [(3, "refused too_many_rooms local".to_owned())]
        );
        // The full-screen client counts no line failed for it (nor the run).
        let mut full = joined(&["lobby"]);
        full.name_every_room();
        line(&mut full, "/join zig");
        let refuse = room_error(ErrorCode::TooManyRooms, "not #zig", "zig");
        assert_eq!(
            outcomes(&frame(&mut full, refuse)),
            [(1, "done join".to_owned())]
        );
        assert_eq!(full.lines_failed(), 0);
        // Already in: the room is made current, nothing is asked.
        let out = line(&mut s, "/join lobby");
        assert_eq!(outcomes(&out), [(4, "done join".to_owned())]);
        line(&mut s, "/join dev");
        let out = line(&mut s, "/part dev");
        assert_eq!(
            outcomes(&out),
            [(5, "done join".to_owned()), (6, "done part".to_owned())]
        );
        line(&mut s, "/join late");
        s.handle_input_end();
        s.handle_disconnected();
        let out = drain(&mut s);
        assert_eq!(s.lines_failed(), 1, "{:?}", out.outcomes);
    }

    /// A room the server kept us out of (the core gives it up), asked
    /// for at start or with `/join`, counts; a refused message or page
    /// naming a room we are in does not, nor an error naming a room we
    /// never asked for.
    #[test]
    fn rooms_the_server_refused_are_kept_for_the_exit_code() {
        let mut s = welcomed(&["lobby", "rust", "ops"]);
        frame(&mut s, entered("lobby", 0, &["alice"], false));
        let refuse =
            |room: &str| room_error(ErrorCode::TooManyRooms, &format!("not #{room}"), room);
        frame(&mut s, refuse("ops"));
        frame(&mut s, entered("rust", 0, &["alice"], false));
        let id = the_id(&line(&mut s, "@zed hi").sent);
        frame(&mut s, error_for(&id, ErrorCode::UnknownNick, None));
        let page = room_error(ErrorCode::NotInRoom, "not in #lobby", "lobby");
        frame(&mut s, page);
        // Never asked for: nothing to give up.
        frame(&mut s, refuse("elsewhere"));
        line(&mut s, "/join zig");
        frame(&mut s, refuse("zig"));
        let refused: Vec<&str> = s.rooms_refused().iter().map(String::as_str).collect();
        assert_eq!(refused, ["ops", "zig"]);
        assert_eq!(s.rooms().collect::<Vec<_>>(), ["lobby", "rust"]);
    }

    /// A room refused and entered later (a `/join` once there is room for
    /// it) was entered: it no longer fails the run.
    #[test]
    fn a_room_refused_then_entered_no_longer_counts() {
        let mut s = welcomed(&["lobby", "ops"]);
        frame(&mut s, entered("lobby", 0, &["alice"], false));
        let refused = room_error(ErrorCode::TooManyRooms, "not #ops", "ops");
        frame(&mut s, refused);
        assert_eq!(s.rooms_refused().len(), 1);
        line(&mut s, "/join ops");
        frame(&mut s, entered("ops", 0, &["alice"], false));
        assert!(s.rooms_refused().is_empty(), "{:?}", s.rooms_refused());
    }

    #[test]
    fn verbatim_sends_every_line_as_text() {
        let mut s = joined(&["lobby"]);
        s.set_mode(Mode {
            verbatim: true,
            ..Mode::default()
        });
        for text in ["@bob hi", "/quit", "//x"] {
            let out = line(&mut s, text);
            assert!(
                matches!(
                    &out.sent[..],
                    [ClientFrame::Msg { to, text: t, .. }] if to.is_empty() && t == text
                ),
                "{text}: {:?}",
                out.sent
            );
        }
        assert!(!s.input_done(), "/quit was text");
        let out = line(&mut s, "");
        assert!(out.sent.is_empty());
    }

    /// A line typed offline that the next server's lower limit makes too
    /// large is given up by the core (`msg_too_large`, at the `welcome`):
    /// its outcome is refused, and the run fails, not "sent".
    #[test]
    fn a_line_given_up_at_a_new_limit_is_refused() {
        let mut s = joined(&["lobby"]);
        s.handle_disconnected();
        let out = line(&mut s, &"x".repeat(5_000));
        assert!(out.lines.is_empty(), "{:?}", out.lines);
        assert_eq!(s.unacknowledged(), 1);
        s.handle_connected(10);
        let small = chatproto::Limits::new(1024, 64, 500, 200);
        let out = frame(
            &mut s,
            ServerFrame::welcome(
                "alice",
                0,
                vec![],
                Some("t".into()),
                Some(true),
                Some(small),
            ),
        );
        assert_eq!(s.unacknowledged(), 0);
        assert_eq!(
            outcomes(&out),
            [(1, "refused msg_too_large server".to_owned())],
            "{:?}",
            out.lines
        );
        assert_eq!(s.lines_failed(), 1);
    }

    /// A server whose `welcome` says no limits (the protocol's default,
    /// 65,536) and `--max-frame-bytes` above it: the core refuses a line
    /// over the default at once; its outcome comes (refused) instead of
    /// holding every later one back for ever.
    #[test]
    fn a_line_the_core_refuses_at_once_gets_its_outcome() {
        let mut s = Session::new("alice", &["lobby".into()], "t-", 200_000);
        s.handle_connected(0);
        frame(&mut s, welcome("alice", false));
        frame(&mut s, entered("lobby", 0, &["alice"], false));
        frame(&mut s, presence("lobby", 1, "alice", true));
        let out = line(&mut s, &"x".repeat(100_000));
        assert_eq!(s.unacknowledged(), 0, "{:?}", out.lines);
        assert_eq!(
            outcomes(&out),
            [(1, "refused msg_too_large server".to_owned())],
            "{:?}",
            out.lines
        );
    }

    #[test]
    fn lines_after_quit_are_skipped() {
        let mut s = joined(&["lobby"]);
        let out = line(&mut s, "/quit");
        assert_eq!(outcomes(&out), [(1, "done quit".to_owned())]);
        assert_eq!(out.other, [Action::Exit]);
        let out = line(&mut s, "late");
        assert!(out.sent.is_empty());
        assert_eq!(outcomes(&out), [(2, "skipped".to_owned())]);
    }
}
