//! What the core puts out, made into the session's actions: frames to
//! send, lines per room, the `[history]` of a replay or a page, the
//! answers to requests, and when to leave.

use chatproto::{nick_key, ClientEvent, ClientOutput, ErrorCode};

use super::lines::{names_of, plural, NAMES_SHOWN};
use super::pages::Answer;
use super::resume::Resume;
use super::{Action, Gap, Probe, Session};
use crate::render::{Line, Place};

/// Why the server closes a connection with the fatal error `code`, in
/// the words of the person it closed.
fn closed_because(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::SlowConsumer => "you did not read your messages fast enough",
        ErrorCode::RateLimited => "you sent too much too fast",
        ErrorCode::Timeout => "it heard nothing from this client in time",
        ErrorCode::FrameTooLarge | ErrorCode::EmptyFrame => {
            "this client sent a frame it could not read"
        }
        ErrorCode::Unavailable => "it could not keep your session going",
        _ => "it closed it with an error",
    }
}

impl Session {
    /// Move the core's output into ours: frames as they are, events as lines.
    pub(super) fn pump(&mut self) {
        self.pump_core();
        // Messages waiting for people who are back now.
        if self.send_to_those_back() {
            self.pump_core();
        }
        // A line that changes the current room, once the messages before
        // it are answered (they may be now).
        if self.client.unacknowledged() == 0 {
            if let Some(cmd) = self.deferred.take() {
                self.run_line(cmd);
                self.pump_core();
            }
        }
        // Reading a pipe, the answers to /history and /rooms and the
        // rooms asked for are waited for too.
        let answered = self.settled();
        if self.leaving
            && !self.exited
            && self.client.unacknowledged() == 0
            && self.absent.is_empty()
            && answered
        {
            self.exited = true;
            self.out.push_back(Action::Exit);
        }
    }

    fn pump_core(&mut self) {
        while let Some(out) = self.client.poll() {
            match out {
                ClientOutput::Send(frame) => self.out.push_back(Action::Send(frame)),
                ClientOutput::Event(event) => self.event(event),
                // A kind of output added by a newer chatproto.
                _ => {}
            }
        }
        self.say_parts_gone();
        self.drain_outcomes();
    }

    /// `entered #room; N online: ...`, once `room`'s online list is
    /// whole (it is at any event of the room after its `entered`).
    pub(super) fn announce_entered(&mut self, room: &str) {
        if let Some(first) = self.announcing.remove(room) {
            let count = self.client.roster_len(room);
            let text = format!("entered #{room}; {}", names_of(count, &first));
            self.print(Line::Entered {
                room: room.to_owned(),
                text,
            });
        }
    }

    pub(super) fn drain_outcomes(&mut self) {
        while let Some(outcome) = self.ledger.poll() {
            while self.held.front().is_some_and(|(at, _)| *at <= outcome.line) {
                if let Some((_, line)) = self.held.pop_front() {
                    self.out.push_back(Action::Print(line));
                }
            }
            self.out.push_back(Action::Outcome(outcome));
        }
    }

    fn event(&mut self, event: ClientEvent) {
        match &event {
            ClientEvent::Message { room, .. }
            | ClientEvent::Presence { room, .. }
            | ClientEvent::History { room, .. } => self.announce_entered(room),
            _ => {}
        }
        match event {
            ClientEvent::Joined {
                nick, closed_for, ..
            } => {
                // Why the last connection was closed, when its `error`
                // frame did not arrive (it seldom does for a client too
                // slow to read): said before what the reconnect brought.
                if let Some(code) = closed_for {
                    self.info(format!(
                        "the server had closed the connection: {} ({code})",
                        closed_because(code)
                    ));
                }
                // The core enters every room now, some perhaps later (paced
                // under the server's rate): each is being entered, and
                // waited for when reading a pipe (`settled`), as a room of
                // a `/join` while joined is (`Session::join`).
                let rooms: Vec<String> = self.client.rooms().map(str::to_owned).collect();
                self.entering.extend(rooms);
                if self.joined_before {
                    self.rejoined_at = Some(self.now);
                    let waiting = self.client.rooms().map(str::to_owned).collect();
                    self.resume = Some(Resume {
                        waiting,
                        ..Resume::default()
                    });
                    self.finish_resume_if_done();
                } else {
                    self.joined_before = true;
                    self.info(format!("joined as {nick}; /help lists the commands"));
                }
                self.out.push_back(Action::Joined);
            }
            ClientEvent::Refused { code, message, .. } => {
                self.out.push_back(Action::Refused { code, message });
            }
            ClientEvent::Entered {
                room,
                online,
                again,
                gap,
                reset,
                ..
            } => {
                self.entering.remove(&room);
                self.ledger.entered(&room);
                // Refused before, entered now: it no longer fails the run.
                self.refused_rooms.remove(&room);
                self.seen_epoch(&room);
                if reset {
                    // A new history: /history pages back from what it
                    // shows, and the earlier one's start is not its own.
                    self.oldest.remove(&room);
                    self.paged.remove(&room);
                    self.no_older.remove(&room);
                }
                self.replaying.insert(room.clone(), again);
                if reset {
                    self.gaps.remove(&room);
                    // Said now, above what the new history's replay
                    // brings: in the summary it came below those lines.
                    self.print(Line::HistoryGone { room: room.clone() });
                } else if gap {
                    // Shown where it is: before what the replay brings.
                    // It begins after the last event seen, the `since` the
                    // room was entered again with (joins and leaves take
                    // seqs too); for a room taken back before its `part`
                    // went (not `again`: the core tells what came since,
                    // all but the oldest), after the last message shown.
                    let after = if again {
                        self.client.last_seq(&room).unwrap_or(0)
                    } else {
                        self.seen
                            .get(&room)
                            .and_then(|s| s.seqs.keys().next_back().copied())
                            .unwrap_or(0)
                    };
                    let gap = Gap {
                        after,
                        before: None,
                        asked: 0,
                        probing: None,
                    };
                    self.gaps.entry(room.clone()).or_default().push(gap);
                    let room = room.clone();
                    self.print(Line::Gap {
                        room,
                        filled: false,
                    });
                }
                if again {
                    if let Some(r) = &mut self.resume {
                        r.gap |= gap && !reset;
                        if reset {
                            r.began_anew.insert(room.clone());
                        }
                    }
                } else {
                    // The rest of a big room's list may follow: the line
                    // waits for the room's next event.
                    let mut first = online;
                    // In the order `/who` lists them.
                    first.sort_by_cached_key(|n| nick_key(n));
                    first.truncate(NAMES_SHOWN);
                    self.announcing.insert(room, first);
                }
            }
            ClientEvent::Message {
                room,
                seq,
                from,
                to,
                text,
                replay,
                ts,
                ..
            } => {
                // The recent history of a room entered again, older than
                // every message of it on the screen (after a `/clear` and
                // a `/history`, say): it goes above them, as a page does,
                // not below the newest.
                let older = replay
                    && self.replaying.get(&room) == Some(&false)
                    && self.seen.get(&room).is_some_and(|s| s.below_all(seq));
                // Not ours: the echo of a line sent just before a /part,
                // which the core tells once (its seq may be one seen in a
                // history since begun anew).
                if !self.note_seen(&room, seq) && self.client.rooms().any(|r| r == room) {
                    // On screen already: the replay of a room entered
                    // again after a /part. `/history` pages back from it.
                    self.shown(&room, seq);
                    return;
                }
                let missed = replay && self.replaying.get(&room) == Some(&true);
                if let Some(gap) = self.gaps.get_mut(&room).and_then(|g| g.last_mut()) {
                    if missed {
                        gap.before = Some(gap.before.map_or(seq, |b| b.min(seq)));
                    } else if !replay || self.replaying.get(&room) == Some(&false) {
                        // A replay that brought no message: what is shown
                        // live is not missing, so the gap ends below it.
                        // So for a room taken back before its `part` went
                        // (a gap, not entered `again`): what the core
                        // tells of it after is not missing.
                        gap.before.get_or_insert(seq);
                    }
                }
                if missed {
                    if let Some(r) = &mut self.resume {
                        *r.missed.entry(room.clone()).or_default() += 1;
                    }
                }
                self.shown(&room, seq);
                let place = self.place(&room, seq);
                let line = Line::Msg {
                    room: self.other(&room),
                    history: replay && !missed,
                    page: older,
                    missed,
                    from,
                    to,
                    text,
                    ts,
                    place,
                };
                self.print(line);
            }
            ClientEvent::Presence {
                room, nick, online, ..
            } => {
                let me = nick_key(&nick) == nick_key(self.client.nick());
                // Whether the list reached the cap (at our own arrival,
                // the whole list entered afresh), before who came and
                // went is told from it.
                self.crowding(&room, me && online);
                if me && online {
                    // Our own presence ends the room's replay, and its
                    // online list before it (`entered`, then `online`
                    // frames for a big room): who is there is known now.
                    self.entered_here.insert(room.clone());
                    let was = self.replaying.remove(&room);
                    if was == Some(true) {
                        // From who was there when the connection was lost
                        // (a room whose history began anew too: its
                        // people are the same).
                        self.tell_came_and_went(&room);
                    }
                    self.resume_room_done(&room);
                    if was == Some(true) {
                        // Back after a reconnect: the summary says so.
                        return;
                    }
                }
                self.seen_come_or_go(&room, &nick, online);
                if me {
                    let room = self.other(&room);
                    self.print(Line::Presence { room, nick, online });
                } else if !online {
                    self.departed(&room, nick);
                } else if !self.came_back(&room, &nick) {
                    let room = self.other(&room);
                    self.print(Line::Presence { room, nick, online });
                }
            }
            ClientEvent::History {
                room,
                events,
                more,
                before,
                oldest,
                ..
            } => {
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
            ClientEvent::Rooms {
                rooms: list,
                unlisted,
                ..
            } => {
                self.listing = self.listing.saturating_sub(1);
                self.listed_rooms = list.iter().map(|(room, _)| room.clone()).collect();
                let shown: Vec<String> = list
                    .iter()
                    .map(|(room, members)| format!("#{room} ({members})"))
                    .collect();
                let mut text = format!("rooms ({}): {}", shown.len(), shown.join(", "));
                // Cut to fit a frame (the first by name): said, with the
                // way to any room not listed.
                if unlisted > 0 {
                    text.push_str(&format!(
                        "; {unlisted} more not listed (/join ROOM enters any room by name)"
                    ));
                }
                self.info(text);
            }
            ClientEvent::Error {
                code,
                message,
                room,
                id,
                ..
            } => {
                // One that answers no message and names no room may have
                // answered a /rooms (a refused page names its room).
                if id.is_none() && room.is_none() {
                    self.listing = self.listing.saturating_sub(1);
                }
                // Typed while offline, to people not back yet after the
                // reconnect: it waits for them.
                if let Some(id) = &id {
                    if self.wait_for_absent(id, code, &message) {
                        return;
                    }
                }
                // One the core gave up itself (too large for the server)
                // fails its line; one the server sent was settled with it.
                if let Some(id) = &id {
                    self.ledger.refuse(id, code.as_str(), &message);
                }
                // With the frames shown, this error is one of them.
                if !self.mode.echo_frames {
                    let message = self.quoted(id.as_deref(), message);
                    self.print(Line::Error {
                        code: code.as_str().to_owned(),
                        message,
                    });
                }
                match room {
                    // The core gives up a room the server would not let
                    // us in.
                    // (Current and not ours: an enter refused, whether it
                    // was asked for online or before a reconnect.)
                    Some(room) => {
                        self.entering.remove(&room);
                        // A refused page (`not_in_room`) is over too; a
                        // refused message (it has an id) answers no page.
                        // Another code may be about something else, the
                        // page still to come.
                        if id.is_none() {
                            let surely = code == ErrorCode::NotInRoom;
                            let lost = match surely {
                                true => self.pages.refused(&room),
                                false => self.pages.doubt(&room),
                            };
                            if lost {
                                self.page_of_one_lost(&room, surely);
                            }
                        }
                        if !self.client.rooms().any(|r| r == room) {
                            self.forget_room(&room, true);
                        }
                    }
                    // One that names no room may have answered an enter
                    // (dropped by a rate limit, say): input waits no more.
                    None => self.entering.clear(),
                }
            }
            ClientEvent::Unconfirmed {
                id, room, to, text, ..
            } => {
                self.ledger.unconfirmed(&id);
                // Each said with its text, to be typed again if it did
                // not arrive: sent again by itself, it could arrive twice.
                self.info(format!(
                    "not sent again, it may have arrived: {} (the connection was lost \
                     before the server confirmed it, and the server did not keep your \
                     session to tell); type it again if it did not arrive",
                    super::as_typed(&room, &to, &text)
                ));
            }
            ClientEvent::Notice(text) => self.print(Line::Notice { text }),
            ClientEvent::Dead => self.out.push_back(Action::Dead),
            // An event added by a newer chatproto: nothing to show.
            _ => {}
        }
    }

    /// `room` was entered: what was seen of it counts only in the epoch
    /// it is now in (and again if it comes back to an earlier one).
    fn seen_epoch(&mut self, room: &str) {
        let epoch = self.client.epoch(room).unwrap_or_default();
        let seen = self.seen.entry(room.to_owned()).or_default();
        if seen.era == 0 || seen.epoch != epoch {
            // Even one it was in before: what it shows now comes after
            // what was shown since.
            self.eras += 1;
            seen.era = self.eras;
        }
        seen.enter_epoch(epoch);
        // Its replay is placed against what is on the screen now.
        seen.floor = seen.lowest;
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
    pub(super) fn page_of_one_lost(&mut self, room: &str, surely: bool) {
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

    /// Note the message `seq` of `room` as shown; `false` if it already
    /// was.
    fn note_seen(&mut self, room: &str, seq: u64) -> bool {
        self.seen.entry(room.to_owned()).or_default().note(seq)
    }

    /// Where the message `seq` of `room` stands, for the full-screen
    /// client (an unknown place before the room was entered).
    fn place(&self, room: &str, seq: u64) -> Place {
        let era = self.seen.get(room).map_or(0, |s| s.era);
        Place { era, seq }
    }

    fn shown(&mut self, room: &str, seq: u64) {
        let oldest = self.oldest.entry(room.to_owned()).or_insert(seq);
        *oldest = (*oldest).min(seq);
    }
}

/// What a page into a gap of `room` brought: `count` messages shown.
fn page_brought(room: &str, count: usize) -> String {
    match count {
        0 => format!("no missing message of #{room} in this page"),
        n => format!("fetched {} of #{room}", plural(n, "missing message")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::testkit::*;
    use chatproto::{ClientFrame, ErrorCode, ServerFrame};

    /// A big room's online list comes in parts (`entered`, then `online`
    /// frames): the line entering it counts the whole list and names its
    /// first people in the server's order, once the list is whole.
    #[test]
    fn entering_a_big_room_counts_its_whole_list() {
        let mut s = joined(&["lobby"]);
        line(&mut s, "/join big");
        let part = |from: usize, to: usize| -> Vec<String> {
            (from..to).map(|i| format!("p{i:02}")).collect()
        };
        let mut shown = lines_of(
            &mut s,
            [
                entered("big", 0, &["alice"], false),
                ServerFrame::online(Some("big".into()), part(1, 4)),
                ServerFrame::online(Some("big".into()), part(4, 25)),
            ],
        );
        assert_eq!(shown, [""; 0], "the list is not whole yet");
        shown = lines_of(&mut s, [presence("big", 1, "alice", true)]);
        assert_eq!(
            shown,
            [
                "* entered #big; 25 online: alice, p01, p02, p03, p04, p05, p06, p07, p08, \
                 p09 and 15 more",
                "* alice is online"
            ]
        );
    }

    #[test]
    fn the_first_join_shows_the_lobby_as_v1_did() {
        let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
        assert_eq!(s.prompt(), "alice #lobby> ");
        s.handle_connected(0);
        let out = drain(&mut s);
        assert!(matches!(&out.sent[..], [ClientFrame::Join { .. }]));
        let out = frame(&mut s, welcome("alice", false));
        assert_eq!(out.lines, ["* joined as alice; /help lists the commands"]);
        assert_eq!(out.other, [Action::Joined]);
        assert_eq!(out.sent, [ClientFrame::enter("lobby", None)]);
        // Said once the list is whole: before the replay.
        let out = frame(&mut s, entered("lobby", 3, &["bob", "alice"], false));
        assert_eq!(out.lines, [""; 0]);
        // The replay on a first enter is the room's recent history.
        let out = frame(
            &mut s,
            replayed(msg("lobby", 2, "bob", &[], "earlier"), None),
        );
        assert_eq!(
            out.lines,
            [
                "* entered #lobby; 2 online: alice, bob",
                "[history] bob: earlier"
            ]
        );
        let shown = lines_of(
            &mut s,
            [
                presence("lobby", 4, "alice", true),
                msg("lobby", 5, "bob", &[], "hello"),
                msg("lobby", 6, "bob", &["alice"], "psst"),
                msg("lobby", 7, "carol", &["alice", "bob"], "both"),
                presence("lobby", 8, "bob", false),
                ServerFrame::notice("going down"),
            ],
        );
        assert_eq!(
            shown,
            [
                "* alice is online",
                "bob: hello",
                "bob -> alice: psst",
                "carol -> alice, bob: both",
                "* bob left",
                "* server: going down",
            ]
        );
        let out = line(&mut s, "/who");
        assert_eq!(out.lines, ["* online (1): alice"]);
    }

    #[test]
    fn history_pages_back_from_the_oldest_message_shown() {
        let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
        s.handle_connected(0);
        frame(&mut s, welcome("alice", false));
        frame(&mut s, entered("lobby", 6, &["alice"], false));
        for seq in [5, 6] {
            let m = msg("lobby", seq, "bob", &[], &format!("m{seq}"));
            frame(&mut s, replayed(m, None));
        }
        frame(&mut s, presence("lobby", 7, "alice", true));
        let out = line(&mut s, "/history 2");
        assert_eq!(out.sent, [ClientFrame::history("lobby", Some(5), Some(2))]);
        let page = |seqs: &[u64], more: bool| {
            ServerFrame::history(
                "lobby",
                seqs.iter()
                    .map(|&q| replayed(msg("lobby", q, "bob", &[], &format!("m{q}")), None))
                    .collect(),
                more,
            )
        };
        let out = frame(&mut s, page(&[3, 4], true));
        assert_eq!(
            out.lines,
            [
                "[history] bob: m3",
                "[history] bob: m4",
                "* 2 older messages of #lobby; /history shows more"
            ]
        );
        let out = line(&mut s, "/history");
        assert_eq!(
            out.sent,
            [ClientFrame::history(
                "lobby",
                Some(3),
                Some(crate::input::HISTORY_DEFAULT)
            )]
        );
        let out = frame(&mut s, page(&[1], false));
        assert_eq!(
            out.lines,
            [
                "[history] bob: m1",
                "* 1 older message of #lobby (3 fetched so far); that is all"
            ]
        );
        line(&mut s, "/history");
        assert_eq!(
            frame(&mut s, page(&[], false)).lines,
            ["* no older messages in #lobby"]
        );
    }

    /// A `/history` given up (an error naming the room, with a code a
    /// page is not refused with: it may have been the refusal, or not)
    /// and asked again: a history page names no request, so the late page
    /// of the first was taken for the answer to the second, and the
    /// second's page then for an answer too, saying a second note (and
    /// showing its messages twice once the room has more than are kept
    /// to tell). One page is shown, and the next `/history` pages on
    /// from it.
    #[test]
    fn a_page_given_up_and_asked_again_is_shown_once() {
        let mut s = lobby_shown_30_to_39(false);
        let out = line(&mut s, "/history 5");
        assert_eq!(out.sent, [ClientFrame::history("lobby", Some(30), Some(5))]);
        frame(&mut s, room_error(ErrorCode::Unavailable, "busy", "lobby"));
        let out = line(&mut s, "/history 5");
        assert_eq!(out.sent, [ClientFrame::history("lobby", Some(30), Some(5))]);
        let page = || {
            let msgs = (25..=29)
                .map(|q| replayed(msg("lobby", q, "bob", &[], &format!("m{q}")), None))
                .collect();
            ServerFrame::history("lobby", msgs, true)
        };
        assert_eq!(
            frame(&mut s, page()).lines,
            [
                "[history] bob: m25",
                "[history] bob: m26",
                "[history] bob: m27",
                "[history] bob: m28",
                "[history] bob: m29",
                "* 5 older messages of #lobby; /history shows more"
            ]
        );
        assert_eq!(frame(&mut s, page()).lines, [""; 0], "answered already");
        let out = line(&mut s, "/history 5");
        assert_eq!(out.sent, [ClientFrame::history("lobby", Some(25), Some(5))]);
    }

    /// A page that answers no `/history` asked (none was, or the room was
    /// left while it came) was shown as if asked.
    #[test]
    fn a_page_nobody_waits_for_is_not_shown() {
        let mut s = joined(&["lobby", "rust"]);
        let m3 = || replayed(msg("rust", 3, "bob", &[], "m3"), None);
        let shown = frame(&mut s, ServerFrame::history("rust", vec![m3()], false)).lines;
        assert_eq!(shown, [""; 0], "not asked");
        line(&mut s, "/join rust");
        let out = line(&mut s, "/history 5");
        assert_eq!(out.sent, [ClientFrame::history("rust", None, Some(5))]);
        line(&mut s, "/part rust");
        let shown = frame(&mut s, ServerFrame::history("rust", vec![m3()], false)).lines;
        assert_eq!(shown, [""; 0], "asked, and the room left");
    }

    /// `/clear` in the full-screen client empties the room's view, so the
    /// next `/history` shows the newest messages again, not only older
    /// ones; the line mode, which clears nothing, says so and pages on.
    #[test]
    fn clear_on_the_full_screen_makes_history_start_from_the_newest_again() {
        for full_screen in [true, false] {
            let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
            if full_screen {
                s.name_every_room();
            }
            s.handle_connected(0);
            frame(&mut s, welcome("alice", false));
            frame(&mut s, entered("lobby", 6, &["alice"], false));
            frame(&mut s, replayed(msg("lobby", 6, "bob", &[], "m6"), None));
            frame(&mut s, presence("lobby", 7, "alice", true));
            let out = line(&mut s, "/clear");
            assert_eq!(out.lines.is_empty(), full_screen, "{:?}", out.lines);
            let before = (!full_screen).then_some(6);
            let out = line(&mut s, "/history 2");
            assert_eq!(out.sent, [ClientFrame::history("lobby", before, Some(2))]);
            if full_screen {
                // What was cleared is shown again.
                let m6 = replayed(msg("lobby", 6, "bob", &[], "m6"), None);
                let out = frame(&mut s, ServerFrame::history("lobby", vec![m6], false));
                assert!(
                    out.lines[0].ends_with("[history] bob: m6"),
                    "{:?}",
                    out.lines
                );
            }
        }
    }

    #[test]
    fn an_empty_page_that_stopped_short_pages_on_from_where_it_says() {
        let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
        s.handle_connected(0);
        frame(&mut s, welcome("alice", false));
        frame(&mut s, entered("lobby", 900, &["alice"], false));
        frame(&mut s, presence("lobby", 901, "alice", true));
        let out = line(&mut s, "/history 5");
        assert_eq!(out.sent, [ClientFrame::history("lobby", None, Some(5))]);
        // The server looked at its bound of messages to others.
        let out = frame(
            &mut s,
            ServerFrame::history_from("lobby", vec![], true, 400),
        );
        assert_eq!(
            out.lines,
            ["* no older messages for you in this stretch of #lobby; /history looks further back"]
        );
        let out = line(&mut s, "/history 5");
        assert_eq!(
            out.sent,
            [ClientFrame::history("lobby", Some(400), Some(5))]
        );
    }

    #[test]
    fn a_history_begun_anew_pages_back_from_its_own_messages() {
        let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
        s.handle_connected(0);
        frame(&mut s, welcome("alice", false));
        frame(&mut s, entered("lobby", 900, &["alice"], false));
        frame(
            &mut s,
            ServerFrame::history_from("lobby", vec![], true, 400),
        );
        // The server restarted without its history: a new epoch, seqs
        // start over, and seq 400 means nothing in it.
        s.handle_disconnected();
        s.handle_connected(10);
        frame(&mut s, welcome("alice", false));
        let fresh = ServerFrame::entered("lobby", "e2", 2, 1, vec!["alice".into()], false);
        frame(&mut s, fresh);
        drain(&mut s);
        let out = line(&mut s, "/history 5");
        assert_eq!(out.sent, [ClientFrame::history("lobby", None, Some(5))]);
    }

    /// Paged back to the start of a room's history, then the server
    /// restarted without it: the new history's older messages are to be
    /// fetched (scrolling up past the top of the full-screen client asks
    /// only while there are): the earlier history's "that is all" held.
    #[test]
    fn a_history_begun_anew_has_older_messages_again() {
        let mut s = joined(&["lobby"]);
        s.name_every_room();
        line(&mut s, "/history 5");
        frame(&mut s, ServerFrame::history("lobby", vec![], false));
        assert!(!s.pages_back("lobby"), "nothing older");
        back(&mut s, 10);
        let fresh = ServerFrame::entered("lobby", "e2", 80, 1, vec!["alice".into()], false);
        frame(&mut s, fresh);
        frame(&mut s, replayed(msg("lobby", 79, "bob", &[], "n79"), None));
        frame(&mut s, presence("lobby", 80, "alice", true));
        assert!(s.pages_back("lobby"), "the new history's older ones");
    }

    /// Back in a room after a /part, its replay repeats what is on the
    /// screen already: only what was said meanwhile is shown, as history.
    /// In a history begun anew, the same seqs are other messages.
    #[test]
    fn a_room_joined_again_shows_nothing_twice() {
        let mut s = joined(&["lobby", "rust"]);
        frame(&mut s, msg("rust", 2, "bob", &[], "one"));
        frame(&mut s, msg("rust", 3, "bob", &[], "two"));
        line(&mut s, "/part rust");
        line(&mut s, "/join rust");
        let shown = lines_of(
            &mut s,
            [
                entered("rust", 5, &["bob"], false),
                replayed(msg("rust", 2, "bob", &[], "one"), None),
                replayed(msg("rust", 3, "bob", &[], "two"), None),
                replayed(msg("rust", 4, "bob", &[], "meanwhile"), None),
                presence("rust", 5, "alice", true),
            ],
        );
        assert_eq!(
            shown,
            [
                "* entered #rust; 1 online: bob",
                "[history] bob: meanwhile",
                "* alice is online"
            ]
        );

        line(&mut s, "/part rust");
        line(&mut s, "/join rust");
        let anew = ServerFrame::entered("rust", "e2", 1, 1, vec!["bob".into()], false);
        frame(&mut s, anew);
        let out = frame(
            &mut s,
            replayed(msg("rust", 2, "bob", &[], "new one"), None),
        );
        assert_eq!(
            out.lines,
            ["* entered #rust; 1 online: bob", "[history] bob: new one"]
        );
    }

    /// Back in a room after a /part, `/history` pages back from the
    /// oldest message on the screen, counting those the replay repeated,
    /// and a page shows none of what is on the screen already.
    #[test]
    fn history_in_a_room_joined_again_shows_nothing_twice() {
        let mut s = joined(&["lobby", "rust"]);
        for seq in 2..=4 {
            frame(&mut s, msg("rust", seq, "bob", &[], &format!("m{seq}")));
        }
        line(&mut s, "/part rust");
        line(&mut s, "/join rust");
        frame(&mut s, entered("rust", 6, &["bob"], false));
        frame(&mut s, replayed(msg("rust", 4, "bob", &[], "m4"), None));
        frame(&mut s, replayed(msg("rust", 5, "bob", &[], "m5"), None));
        frame(&mut s, presence("rust", 6, "alice", true));
        let out = line(&mut s, "/history 3");
        assert_eq!(out.sent, [ClientFrame::history("rust", Some(4), Some(3))]);
        let page = ServerFrame::history(
            "rust",
            (2..=3)
                .map(|q| replayed(msg("rust", q, "bob", &[], &format!("m{q}")), None))
                .collect(),
            false,
        );
        let out = frame(&mut s, page);
        assert_eq!(out.lines, ["* no older messages in #rust"]);
    }

    /// Full-screen, `/clear` then `/history 5` shows a room's newest 5
    /// messages; back in it after a `/part`, its replay brings older ones
    /// too. They are not on the screen, but are older than what is: they
    /// go above it (as a page does), not below the newest, and what is
    /// said meanwhile goes at the bottom.
    #[test]
    fn a_replay_after_clear_puts_older_messages_above_those_shown() {
        let mut s = joined(&["lobby", "t1"]);
        s.name_every_room();
        for seq in 2..=31 {
            frame(&mut s, msg("t1", seq, "frank", &[], &format!("m{seq}")));
        }
        line(&mut s, "/join t1");
        line(&mut s, "/clear");
        let out = line(&mut s, "/history 5");
        assert_eq!(out.sent, [ClientFrame::history("t1", None, Some(5))]);
        let page = |seqs: std::ops::RangeInclusive<u64>| {
            seqs.map(|q| replayed(msg("t1", q, "frank", &[], &format!("m{q}")), None))
                .collect::<Vec<_>>()
        };
        frame(
            &mut s,
            ServerFrame::history_from("t1", page(27..=31), true, 27),
        );
        line(&mut s, "/part");
        line(&mut s, "/join t1");
        let mut replay = vec![entered("t1", 33, &["frank"], false)];
        replay.extend(page(12..=32));
        replay.push(presence("t1", 33, "alice", true));
        for f in replay {
            s.handle_frame(0, f);
        }
        // Each message shown, and whether it goes above those of its room.
        let shown: Vec<(String, bool)> = std::iter::from_fn(|| s.poll())
            .filter_map(|a| match a {
                Action::Print(Line::Msg { text, page, .. }) => Some((text, page)),
                _ => None,
            })
            .collect();
        let mut want: Vec<(String, bool)> = (12..=26).map(|q| (format!("m{q}"), true)).collect();
        want.push(("m32".into(), false));
        assert_eq!(shown, want);
        // `/history` pages back from the oldest one now shown.
        let out = line(&mut s, "/history 5");
        assert_eq!(out.sent, [ClientFrame::history("t1", Some(12), Some(5))]);
    }

    /// `/part` with a line unanswered, a reconnect with a gap in the
    /// room's replay (the core enters it again quietly, to resend), then
    /// `/join` before its `part` went: the room is taken back with the
    /// core's gap, which is said, and `/history` fills it from the oldest
    /// message told.
    #[test]
    fn a_room_taken_back_before_its_part_went_tells_its_gap() {
        let mut s = joined(&["lobby", "rust"]);
        line(&mut s, "/join rust");
        line(&mut s, "hi");
        line(&mut s, "/part rust");
        assert_eq!(s.unacknowledged(), 1);
        back(&mut s, 10);
        drain(&mut s);
        frame(&mut s, entered("lobby", 1, &["alice"], true));
        frame(&mut s, presence("lobby", 2, "alice", true));
        // Seqs 2 to 599 of #rust are gone from the server's replay.
        let fresh = ServerFrame::entered("rust", "e1", 700, 600, vec!["alice".into()], false);
        frame(&mut s, fresh);
        frame(&mut s, replayed(msg("rust", 650, "bob", &[], "late"), None));
        let out = line(&mut s, "/join rust");
        assert!(
            out.lines.iter().any(|l| l.contains("missing")),
            "no gap said: {:?}",
            out.lines
        );
        let out = line(&mut s, "/history 5");
        assert_eq!(out.sent, [ClientFrame::history("rust", Some(650), Some(6))]);
    }

    /// A line sent just before `/part`, the connection lost before its
    /// echo, the session resumed and the room's history begun anew (the
    /// server forgot it while nobody was in it): the core enters the
    /// room again to resend it, and its echo is shown (README: a message
    /// sent there just before still shows), though its seq is one shown
    /// in the old history.
    #[test]
    fn an_echo_after_a_part_into_a_history_begun_anew_is_shown() {
        let mut s = joined(&["lobby", "rust"]);
        frame(&mut s, msg("rust", 2, "bob", &[], "old two"));
        line(&mut s, "/join rust");
        let id = the_id(&line(&mut s, "hi").sent);
        line(&mut s, "/part rust");
        s.handle_disconnected();
        s.handle_connected(10);
        let out = frame(&mut s, welcome("alice", true));
        let anew = |room: &str| ServerFrame::entered(room, "e2", 0, 1, vec!["alice".into()], false);
        frame(&mut s, anew("lobby"));
        frame(&mut s, presence("lobby", 1, "alice", true));
        frame(&mut s, anew("rust"));
        frame(&mut s, presence("rust", 1, "alice", true));
        assert!(
            out.sent
                .iter()
                .any(|f| matches!(f, ClientFrame::Msg { .. })),
            "resent: {:?}",
            out.sent
        );
        let out = frame(&mut s, echo("rust", 2, "alice", "hi", &id));
        // The part goes now, and is said below the echo.
        assert_eq!(out.lines, ["[#rust] alice: hi", "* you left #rust"]);
    }

    /// What was shown of a room is kept after `/part` (its replay, if it
    /// is entered again, is not shown twice), but only for the last rooms
    /// left: a bot walking through many rooms kept 256 seqs of each.
    #[test]
    fn what_was_seen_of_rooms_left_is_kept_for_the_last_ones_only() {
        let mut s = joined(&["lobby"]);
        for i in 0..200 {
            let room = format!("r{i}");
            line(&mut s, &format!("/join {room}"));
            frame(&mut s, entered(&room, 20, &["alice"], false));
            for q in 1..20 {
                frame(&mut s, replayed(msg(&room, q, "bob", &[], "x"), None));
            }
            frame(&mut s, presence(&room, 20, "alice", true));
            line(&mut s, "/part");
        }
        assert!(
            s.seen.len() <= crate::session::PARTED_KEPT + 1,
            "{} rooms kept",
            s.seen.len()
        );
        assert!(s.seen.contains_key("r199"), "the last room left is kept");
        assert!(!s.seen.contains_key("r0"), "the first is not");
    }

    #[test]
    fn a_refused_join_is_reported_to_the_shell() {
        let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
        s.handle_connected(0);
        drain(&mut s);
        let out = frame(
            &mut s,
            ServerFrame::error(ErrorCode::NickTaken, "the nickname alice is in use"),
        );
        assert_eq!(
            out.other,
            [Action::Refused {
                code: ErrorCode::NickTaken,
                message: "the nickname alice is in use".into()
            }]
        );
    }
}
