//! What the core puts out, made into the session's actions: frames to
//! send, lines per room, the `[history]` of a replay or a page, the
//! answers to requests, and when to leave.

mod history;

use chatproto::{nick_key, ClientEvent, ClientOutput, ErrorCode};

use super::lines::{names_of, NAMES_SHOWN};
use super::resume::Resume;
use super::{Action, Gap, Session};
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
            } => self.history_page(room, events, more, before, oldest),
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

#[cfg(test)]
mod tests;
