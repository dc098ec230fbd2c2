//! Acting on a typed line once parsed: sending a message, entering,
//! leaving and choosing rooms, `/query`, and the requests to the server.

use chatproto::{escape_control, LOBBY};

use super::lines::{plural, too_long};
use super::{Session, PARTED_KEPT};
use crate::input::{Command, HELP};
use crate::ledger::LineKind;
use crate::render::Line;

/// An id as long as the ones the core makes, to check a message's size
/// before handing it over.
const ID_PLACEHOLDER: &str = "0123456789abcdef-0123456789";

/// What the server leaves free in a frame beside a stamped message
/// (PROTOCOL.md: a `msg` replayed must fit `max_frame_bytes` − 512).
const STAMPED_ROOM: usize = 512;

/// A `ts` as wide as one gets before the year 2286 (13 digits).
const STAMP_WIDEST: u64 = 9_999_999_999_999;

impl Session {
    /// The most a history page of the server's holds (its `welcome`
    /// says; 200 from one that did not).
    pub(super) fn server_page(&self) -> u64 {
        self.client
            .limits()
            .map_or(crate::input::HISTORY_MAX, |l| l.history_page)
            .max(1)
    }

    /// Act on a line that parsed to `cmd`.
    pub(super) fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Send { to, text } => self.send(to, text),
            Command::Join(room) => self.join(room),
            Command::Part(room) => self.part(room),
            Command::Rooms => {
                if self.connected() {
                    self.client.list_rooms();
                    self.listing += 1;
                }
            }
            Command::Who => {
                if let Some(room) = self.in_a_room() {
                    let list = self.client.roster(&room);
                    let (n, names) = (list.len(), list.join(", "));
                    let text = if !self.client.is_joined() {
                        if n == 0 {
                            format!("#{room} will be entered once reconnected")
                        } else {
                            format!("was online when the connection was lost ({n}): {names}")
                        }
                    } else if n == 0 || self.entering.contains(&room) {
                        format!("#{room} is being entered; /who once it is")
                    } else {
                        format!("online ({n}): {names}")
                    };
                    self.info(text);
                }
            }
            Command::History(limit) => {
                if let Some(room) = self.in_a_room() {
                    if self.pages.waiting(&room) {
                        let text = format!(
                            "older messages of #{room} are on their way; /history again once they are shown"
                        );
                        self.print(Line::HistoryNote { room, text });
                    } else if self.connected() {
                        // What is missing after a reconnect first, and
                        // one more: a page that holds one from before the
                        // gap shows that none is missing any more.
                        // (Not past the most a page of the server's holds.)
                        let page = self.server_page();
                        let gap = self.gaps.get_mut(&room).and_then(|g| g.last_mut());
                        let (before, asked) = match gap {
                            Some(gap) => {
                                // A page as full as the server's holds no
                                // more than it: past it, what is asked is
                                // what a full page brings (the probe below
                                // goes by it).
                                let limit = limit.min(page);
                                gap.asked = limit;
                                gap.probing = None;
                                (gap.before, if limit < page { limit + 1 } else { limit })
                            }
                            None => (self.oldest.get(&room).copied(), limit),
                        };
                        self.client.history(&room, before, Some(asked));
                        self.pages.ask(&room, before);
                    }
                }
            }
            Command::Help => {
                for line in HELP {
                    self.info((*line).to_owned());
                }
            }
            Command::Query(nick) => self.set_query(nick),
            Command::Clear => {
                if self.every_room_named {
                    // The full-screen client cleared the room's lines:
                    // `/history` pages back from the newest message again.
                    if let Some(room) = &self.current {
                        self.oldest.remove(room);
                        self.paged.remove(room);
                        self.no_older.remove(room);
                        // A page on its way pages back from what is gone:
                        // it is not shown, and does not hold up the next.
                        self.pages.drop_all(room);
                        // Nor is anything missing between lines shown any
                        // more (their lines went too): older messages are
                        // all fetched by paging back from the newest.
                        self.gaps.remove(room);
                        // Nothing is on the screen any more to show twice.
                        if let Some(seen) = self.seen.get_mut(room) {
                            seen.clear();
                        }
                    }
                } else {
                    self.info("/clear only clears the full-screen client's message area".into());
                }
            }
            Command::Quit => {
                self.input_done = true;
                self.leaving = true;
            }
            Command::Nothing => {}
            Command::Invalid(why) => self.error("input", why),
        }
    }

    fn set_query(&mut self, nick: Option<String>) {
        match (&nick, self.query.take()) {
            (Some(n), _) => self.info(format!(
                "lines now go to {} only; /query alone sends to everyone again",
                escape_control(n)
            )),
            (None, Some(_)) => self.info("lines go to everyone in the room again".into()),
            (None, None) => self.info("usage: /query NICK sends every line to NICK only".into()),
        }
        self.query = nick;
    }

    fn send(&mut self, mut to: Vec<String>, text: String) {
        let Some(room) = self.in_a_room() else {
            return;
        };
        if to.is_empty() {
            to.extend(self.query.clone());
        }
        // Refuse locally what the server would refuse for size, so a
        // pasted novel does not cost a round trip (or a resend forever):
        // within the server's bound, the frame sent fits ours too.
        let max = self.max_text_for(&room, &to);
        let bytes = text_bytes(&text);
        if bytes > max {
            self.error("msg_too_large", too_long(bytes, max));
            return;
        }
        let offline = !to.is_empty() && (self.typed_offline || !self.client.is_joined());
        let kept = offline.then(|| (to.clone(), text.clone()));
        let id = self.client.send_msg(&room, to, text);
        if let Some((to, text)) = kept {
            let msg = super::absent::Offline {
                room: room.clone(),
                to,
                text,
                resends: 0,
            };
            self.offline.insert(id.clone(), msg);
        }
        self.ledger.sent(id, room);
    }

    /// The most bytes a message's text may take (JSON-escaped, see
    /// [`text_bytes`]) to everyone in the current room before sending it
    /// is refused as too long: what the full-screen client warns of while
    /// the line is typed.
    pub fn max_text_bytes(&self) -> usize {
        let room = self.current.clone().unwrap_or_default();
        self.max_text_for(&room, &[])
    }

    /// The most bytes a message's text may take in `room` to `to`: what
    /// leaves its stamped copy as the server replays it (PROTOCOL.md §5.3:
    /// with `from`, `seq`, `ts`, its id and `"replay":true`) within the
    /// frame limit less 512 bytes, the server's bound. The seq is counted
    /// at its widest, so this is at most 19 bytes short of the server's.
    fn max_text_for(&self, room: &str, to: &[String]) -> usize {
        let stamped = serde_json::json!({
            "type": "msg", "room": room, "seq": u64::MAX, "from": self.nick(), "to": to,
            "text": "", "ts": STAMP_WIDEST, "id": ID_PLACEHOLDER, "replay": true,
        });
        let around = serde_json::to_string(&stamped).map_or(0, |s| s.len());
        self.max_frame_bytes
            .saturating_sub(STAMPED_ROOM)
            .saturating_sub(around)
    }

    fn join(&mut self, room: String) {
        if self.current.as_deref() == Some(room.as_str()) {
            self.info(format!("#{room} is already the current room"));
            return;
        }
        // Entered again before its `part` went: the room was never left.
        self.part_notes.retain(|r| *r != room);
        let already = self.client.rooms().any(|r| r == room);
        if !already {
            self.client.enter(&room);
            self.ledger.joining(room.clone());
            if self.client.is_joined() {
                self.entering.insert(room.clone());
            } else {
                self.info(format!("#{room} will be entered once reconnected"));
            }
        }
        self.previous = self.current.replace(room.clone());
        self.refused_current = None;
        // The full-screen client's tab bar shows it: a line in the room
        // at every Ctrl-N would pile up.
        if already && !self.every_room_named {
            self.info(format!("#{room} is now the current room"));
        }
    }

    fn part(&mut self, room: Option<String>) {
        let Some(room) = room.or_else(|| self.current.clone()) else {
            let text = match &self.refused_current {
                // Reading a pipe, after a room refused (see `forget_room`).
                Some(r) if self.client.rooms().next().is_some() => {
                    format!("no current room after the refused /join of #{r}; /part ROOM names one")
                }
                _ => "you are in no room; /part ROOM names one".into(),
            };
            self.error("input", text);
            return;
        };
        if !self.client.rooms().any(|r| r == room) {
            self.error("input", format!("you are not in #{room}"));
            return;
        }
        self.client.part(&room);
        // Parted before the answer came: none will (the core drops it).
        self.entering.remove(&room);
        self.ledger.entered(&room);
        // The core sends the `part` once the messages sent to the room
        // before it are answered: said then, below their echoes.
        if self.client.pending().any(|p| p.room == room) {
            self.part_notes.push(room.clone());
        } else {
            self.say_left(&room);
        }
        self.forget_room(&room, false);
    }

    /// `you left #room`.
    fn say_left(&mut self, room: &str) {
        self.print(Line::Left {
            room: room.to_owned(),
            text: format!("you left #{room}"),
        });
    }

    /// Say `you left` of each room parted whose `part` waited for the
    /// answers to the messages sent to it before, now that none waits.
    pub(super) fn say_parts_gone(&mut self) {
        if self.part_notes.is_empty() {
            return;
        }
        let notes = std::mem::take(&mut self.part_notes);
        for room in notes {
            if self.client.pending().any(|p| p.room == room) {
                self.part_notes.push(room);
            } else {
                self.say_left(&room);
            }
        }
    }

    /// `room` is no longer ours: drop what the screen kept about it, and
    /// pick another current room if it was the current one. `refused`:
    /// the server would not let us in, so the room current before the
    /// `/join` is current again, if it is still ours.
    pub(super) fn forget_room(&mut self, room: &str, refused: bool) {
        self.parted.retain(|r| r != room);
        self.parted.push_back(room.to_owned());
        while self.parted.len() > PARTED_KEPT {
            let Some(old) = self.parted.pop_front() else {
                break;
            };
            if !self.client.rooms().any(|r| r == old) {
                self.seen.remove(&old);
                self.oldest.remove(&old);
            }
        }
        self.oldest.remove(room);
        self.paged.remove(room);
        // Pages asked still come (the server answers in order, before
        // those of the room entered again): not shown.
        self.pages.drop_all(room);
        self.no_older.remove(room);
        self.gaps.remove(room);
        self.replaying.remove(room);
        self.entered_here.remove(room);
        self.crowded.remove(room);
        self.away.remove(room);
        if let Some(r) = &mut self.resume {
            r.came_and_went.remove(room);
        }
        self.resume_room_done(room);
        if self.current.as_deref() != Some(room) {
            return;
        }
        if refused && self.mode.wait_for_rooms && !self.mode.verbatim {
            // Lines from a pipe or a file were written for this room: none
            // goes to another one instead (a script that entered #a and
            // then #b, refused, would post #b's lines into #a). Not with
            // --verbatim, whose lines cannot /join: there every line is
            // text for whatever room is current.
            self.current = None;
            self.refused_current = Some(room.to_owned());
            let rooms: Vec<String> = self.client.rooms().map(str::to_owned).collect();
            let text = match self.previous.take().filter(|p| rooms.contains(p)) {
                Some(before) => {
                    format!("lines for #{room} are not sent, nor to #{before}; /join ROOM to go on")
                }
                None => format!("lines for #{room} are not sent; /join ROOM to go on"),
            };
            self.info(text);
            return;
        }
        let rooms: Vec<String> = self.client.rooms().map(str::to_owned).collect();
        let back = self.previous.take().filter(|p| rooms.contains(p));
        let again = refused && back.is_some();
        let next = back
            .or_else(|| rooms.iter().find(|r| *r == LOBBY).cloned())
            .or_else(|| rooms.first().cloned());
        self.current = next;
        self.refused_current = None;
        match &self.current {
            Some(r) if again => self.info(format!("#{r} is still the current room")),
            Some(r) => self.info(format!("#{r} is now the current room")),
            None => self.info("you are in no room; /join ROOM to enter one".into()),
        }
    }

    /// The current room, or `None` after telling the user there is none.
    fn in_a_room(&mut self) -> Option<String> {
        if self.current.is_none() {
            let n = self.client.rooms().count();
            let text = match &self.refused_current {
                // Reading a pipe, after a room refused (see `forget_room`).
                Some(r) if n > 0 => format!(
                    "not sent: lines after the refused /join of #{r} go to no room; \
                     /join ROOM to go on (you are in {})",
                    plural(n, "room")
                ),
                _ => "you are in no room; /join ROOM first".to_owned(),
            };
            self.error("input", text);
        }
        self.current.clone()
    }

    /// Whether the server can be asked something now; if not, say so.
    fn connected(&mut self) -> bool {
        let joined = self.client.is_joined();
        if !joined {
            self.error("input", "not connected; try again once reconnected".into());
        }
        joined
    }
}

/// What kind of line `cmd` came from, for its outcome.
pub(super) fn line_kind(cmd: &Command) -> LineKind {
    match cmd {
        Command::Send { .. } => LineKind::Message,
        Command::Join(_) => LineKind::Command("join"),
        Command::Part(_) => LineKind::Command("part"),
        Command::Rooms => LineKind::Command("rooms"),
        Command::Who => LineKind::Command("who"),
        Command::History(_) => LineKind::Command("history"),
        Command::Help => LineKind::Command("help"),
        Command::Query(_) => LineKind::Command("query"),
        Command::Clear => LineKind::Command("clear"),
        Command::Quit => LineKind::Command("quit"),
        Command::Nothing => LineKind::Blank,
        Command::Invalid(_) => LineKind::Command("invalid"),
    }
}

/// The bytes `text` takes in a frame's JSON string: `"` and `\` and the
/// common control characters escaped in two, the other control characters
/// in six (`\u001f`), everything else as its UTF-8.
pub fn text_bytes(text: &str) -> usize {
    text.bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatproto::ClientFrame;

    #[test]
    fn a_texts_bytes_are_counted_as_json_writes_them() {
        for text in [
            "",
            "hello",
            "caf\u{e9} \u{1f600}",
            "say \"hi\" \\ back",
            "tab\there\nnew line\r\u{8}\u{c}",
            "\u{1}\u{1f}\u{7f}",
        ] {
            let json = serde_json::to_string(text).unwrap();
            assert_eq!(text_bytes(text), json.len() - 2, "{text:?}");
        }
    }
    use crate::session::testkit::*;
    use chatproto::{ErrorCode, RoomInfo, ServerFrame};

    #[test]
    fn rooms_join_part_who_and_prefixes() {
        let mut s = joined(&["lobby"]);
        let out = line(&mut s, "/JOIN #Rust");
        assert_eq!(out.sent, [ClientFrame::enter("rust", None)]);
        assert_eq!(s.prompt(), "alice #rust> ");
        // Said once the list is whole: at the room's next event.
        let out = frame(&mut s, entered("rust", 0, &["bob", "alice"], false));
        assert_eq!(out.lines, [""; 0]);
        let shown = lines_of(
            &mut s,
            [
                presence("rust", 1, "alice", true),
                msg("rust", 2, "bob", &[], "in rust"),
                msg("lobby", 2, "bob", &[], "in the lobby"),
                presence("lobby", 3, "carol", true),
                msg("lobby", 4, "carol", &["alice"], "psst"),
            ],
        );
        assert_eq!(
            shown,
            [
                "* entered #rust; 2 online: alice, bob",
                "* alice is online",
                "bob: in rust",
                "[#lobby] bob: in the lobby",
                "[#lobby] * carol is online",
                "[#lobby] carol -> alice: psst",
            ]
        );
        // Typing goes to the current room.
        let out = line(&mut s, "@bob hi");
        assert!(matches!(
            &out.sent[..],
            [ClientFrame::Msg { room: Some(r), to, text, id: Some(_), .. }]
                if r == "rust" && to == &["bob"] && text == "hi"
        ));
        assert_eq!(line(&mut s, "/who").lines, ["* online (2): alice, bob"]);
        // Back to the lobby: it is entered already, so nothing is sent.
        let out = line(&mut s, "/join lobby");
        assert!(out.sent.is_empty());
        assert_eq!(out.lines, ["* #lobby is now the current room"]);
        // The full-screen client shows the current room (Ctrl-N is a
        // /join): no line for it there.
        s.name_every_room();
        let out = line(&mut s, "/join rust");
        assert!(out.sent.is_empty() && out.lines.is_empty(), "{out:?}");
        assert_eq!(s.current_room(), Some("rust"));
        line(&mut s, "/join lobby");
        assert_eq!(
            frame(&mut s, msg("rust", 3, "bob", &[], "still here")).lines,
            ["[#rust] bob: still here"]
        );
        assert_eq!(
            line(&mut s, "/join lobby").lines,
            ["* #lobby is already the current room"]
        );
        assert_eq!(line(&mut s, "/rooms").sent, [ClientFrame::Rooms]);
        let out = frame(
            &mut s,
            ServerFrame::rooms(vec![RoomInfo::new("lobby", 3), RoomInfo::new("rust", 2)]),
        );
        assert_eq!(out.lines, ["* rooms (2): #lobby (3), #rust (2)"]);
        // A list cut to fit a frame says how many it leaves out.
        line(&mut s, "/rooms");
        let out = frame(
            &mut s,
            ServerFrame::rooms_of(
                vec![RoomInfo::new("lobby", 3), RoomInfo::new("rust", 2)],
                10_016,
            ),
        );
        assert_eq!(
            out.lines,
            ["* rooms (2): #lobby (3), #rust (2); 10014 more not listed (/join ROOM enters any room by name)"]
        );
        // Leaving the current room makes another current.
        let out = line(&mut s, "/part");
        assert_eq!(out.sent, [ClientFrame::part("lobby")]);
        assert_eq!(
            out.lines,
            ["* you left #lobby", "* #rust is now the current room"]
        );
        assert_eq!(s.prompt(), "alice #rust> ");
        assert!(frame(&mut s, msg("lobby", 5, "bob", &[], "gone"))
            .lines
            .is_empty());
        assert_eq!(
            line(&mut s, "/part lobby").lines,
            ["! input: you are not in #lobby"]
        );
        // `@bob hi` to #rust is not answered yet: the part waits for its
        // answer, and so does the `you left` that says it went.
        let out = line(&mut s, "/part rust");
        assert!(out.sent.is_empty(), "{:?}", out.sent);
        assert_eq!(out.lines, ["* you are in no room; /join ROOM to enter one"]);
        assert_eq!(s.prompt(), "alice> ");
        let out = line(&mut s, "hello?");
        assert!(out.sent.is_empty());
        assert_eq!(out.lines, ["! input: you are in no room; /join ROOM first"]);
    }

    #[test]
    fn a_room_the_server_refuses_is_not_current() {
        let mut s = joined(&["lobby"]);
        line(&mut s, "/join rust");
        assert_eq!(s.prompt(), "alice #rust> ");
        let out = frame(
            &mut s,
            room_error(
                ErrorCode::TooManyRooms,
                "you are in 1 rooms, the most allowed",
                "rust",
            ),
        );
        assert_eq!(
            out.lines,
            [
                "! too_many_rooms: you are in 1 rooms, the most allowed",
                "* #lobby is still the current room"
            ]
        );
        assert_eq!(s.prompt(), "alice #lobby> ");
    }

    /// Lines from a pipe were written for the room they follow: one the
    /// server refused sends them nowhere, not into the room before it.
    #[test]
    fn a_refused_room_in_a_pipe_sends_its_lines_nowhere_else() {
        let mut s = joined(&["lobby"]);
        s.set_mode(crate::session::Mode {
            wait_for_rooms: true,
            ..crate::session::Mode::default()
        });
        line(&mut s, "/join rust");
        let out = frame(
            &mut s,
            room_error(
                ErrorCode::TooManyRooms,
                "you are in 1 rooms, the most allowed",
                "rust",
            ),
        );
        // Said as it is: the client is still in #lobby, not current for
        // these lines (it said "you are in no room").
        assert_eq!(
            out.lines.last().map(String::as_str),
            Some("* lines for #rust are not sent, nor to #lobby; /join ROOM to go on")
        );
        let out = line(&mut s, "meant for rust");
        assert!(out.sent.is_empty(), "{:?}", out.sent);
        assert_eq!(
            out.lines,
            [
                "! input: not sent: lines after the refused /join of #rust go to no room; \
                 /join ROOM to go on (you are in 1 room)"
            ]
        );
        // A /part without a room names none: said as it is too.
        let out = line(&mut s, "/part");
        assert_eq!(
            out.lines,
            ["! input: no current room after the refused /join of #rust; /part ROOM names one"]
        );
        // Entering one goes on as ever.
        line(&mut s, "/join lobby");
        let out = line(&mut s, "for the lobby");
        assert_eq!(out.sent.len(), 1, "{:?}", out.sent);
    }

    /// With --verbatim no line can /join another room: a refused one
    /// leaves the room before it current, as at a terminal.
    #[test]
    fn a_refused_room_in_a_verbatim_pipe_leaves_the_room_before_current() {
        let mut s = joined(&["lobby", "rust"]);
        s.set_mode(crate::session::Mode {
            wait_for_rooms: true,
            verbatim: true,
            ..crate::session::Mode::default()
        });
        assert_eq!(s.current_room(), Some("lobby"));
        // Entering the lobby again after a reconnect is refused.
        back(&mut s, 10);
        drain(&mut s);
        frame(&mut s, entered("rust", 0, &["alice"], true));
        let out = frame(
            &mut s,
            room_error(ErrorCode::Unavailable, "not now", "lobby"),
        );
        assert_eq!(
            out.lines.last().map(String::as_str),
            Some("* #rust is now the current room"),
            "{:?}",
            out.lines
        );
        let out = line(&mut s, "/join a");
        assert_eq!(out.sent.len(), 1, "sent as text: {:?}", out.sent);
    }

    #[test]
    fn a_join_asked_offline_and_refused_after_the_reconnect_is_not_current() {
        let mut s = joined(&["lobby"]);
        s.handle_disconnected();
        line(&mut s, "/join rust");
        assert_eq!(s.prompt(), "alice #rust> ");
        s.handle_connected(0);
        drain(&mut s);
        frame(&mut s, welcome("alice", true));
        let out = frame(
            &mut s,
            room_error(ErrorCode::TooManyRooms, "too many rooms", "rust"),
        );
        assert_eq!(
            out.lines.last().map(String::as_str),
            Some("* #lobby is still the current room"),
            "{:?}",
            out.lines
        );
        assert_eq!(s.prompt(), "alice #lobby> ");
    }

    #[test]
    fn query_sends_to_one_nick_until_ended() {
        let mut s = joined(&["lobby"]);
        let out = line(&mut s, "/query bob");
        assert_eq!(
            out.lines,
            ["* lines now go to bob only; /query alone sends to everyone again"]
        );
        assert_eq!(s.prompt(), "alice #lobby -> bob> ");
        let to = |out: &Out| match &out.sent[..] {
            [ClientFrame::Msg { to, text, .. }] => (to.clone(), text.clone()),
            other => panic!("{other:?}"),
        };
        assert_eq!(to(&line(&mut s, "hi")), (vec!["bob".into()], "hi".into()));
        assert_eq!(
            to(&line(&mut s, "/me waves")),
            (vec!["bob".into()], "/me waves".into())
        );
        // Naming recipients still wins.
        assert_eq!(
            to(&line(&mut s, "@carol yo")),
            (vec!["carol".into()], "yo".into())
        );
        let out = line(&mut s, "/query");
        assert_eq!(out.lines, ["* lines go to everyone in the room again"]);
        assert_eq!(s.prompt(), "alice #lobby> ");
        assert_eq!(to(&line(&mut s, "all")), (vec![], "all".into()));
    }

    #[test]
    fn offline_requests_are_refused_and_fatal_errors_remembered() {
        let mut s = joined(&["lobby"]);
        frame(
            &mut s,
            ServerFrame::error(ErrorCode::SlowConsumer, "too slow"),
        );
        assert_eq!(
            s.take_fatal(),
            Some((ErrorCode::SlowConsumer, "too slow".into()))
        );
        s.handle_disconnected();
        for cmd in ["/rooms", "/history"] {
            let out = line(&mut s, cmd);
            assert!(out.sent.is_empty());
            assert_eq!(
                out.lines,
                ["! input: not connected; try again once reconnected"]
            );
        }
        let out = line(&mut s, "/join rust");
        assert_eq!(out.lines, ["* #rust will be entered once reconnected"]);
        assert_eq!(s.prompt(), "alice #rust> ");
    }

    /// `/who` says only what is known: while reconnecting, who was
    /// online when the connection was lost (the side list's `was
    /// online`), and of a room not entered yet, that it is not (it said
    /// `online (0): `, without even us).
    #[test]
    fn who_while_entering_or_reconnecting_says_so() {
        let mut s = joined(&["lobby"]);
        frame(&mut s, presence("lobby", 2, "bob", true));
        assert_eq!(line(&mut s, "/who").lines, ["* online (2): alice, bob"]);
        line(&mut s, "/join rust");
        assert_eq!(
            line(&mut s, "/who").lines,
            ["* #rust is being entered; /who once it is"]
        );
        s.handle_disconnected();
        assert_eq!(
            line(&mut s, "/who").lines,
            ["* #rust will be entered once reconnected"]
        );
        line(&mut s, "/join lobby");
        assert_eq!(
            line(&mut s, "/who").lines,
            ["* was online when the connection was lost (2): alice, bob"]
        );
    }

    #[test]
    fn oversized_text_is_refused_locally() {
        let mut s = Session::new("alice", &["lobby".into()], "t-", 1024);
        s.handle_connected(0);
        frame(&mut s, welcome("alice", false));
        drain(&mut s);
        let out = line(&mut s, &"x".repeat(2000));
        assert!(out.sent.is_empty());
        assert_eq!(out.lines.len(), 1);
        assert_eq!(
            out.lines,
            ["! msg_too_large: not sent: the message is 2,000 bytes; the server takes at most 355"]
        );
        assert_eq!(s.unacknowledged(), 0);
        // What JSON escapes counts as sent.
        let out = line(&mut s, &"\"".repeat(600));
        assert_eq!(
            out.lines,
            ["! msg_too_large: not sent: the message is 1,200 bytes; the server takes at most 355"]
        );
        // The bound is the server's on the stamped copy (a frame of 1,024
        // less 512, less what stamping adds): 355 go, 356 do not.
        let out = line(&mut s, &"x".repeat(356));
        assert!(out.sent.is_empty(), "{:?}", out.sent);
        let out = line(&mut s, &"x".repeat(355));
        assert_eq!(out.sent.len(), 1, "{:?}", out.lines);
    }

    /// The server's own limit, from its `welcome`, counts when it is lower
    /// than ours (before, such a line was sent, the server closed the
    /// connection, and the line was sent again after every reconnect).
    #[test]
    fn a_line_too_long_for_the_servers_limit_is_refused_locally() {
        let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
        // A welcome from a server whose frames are at most `max` bytes.
        let welcome_taking = |max: u64| {
            let limits = chatproto::Limits::new(max, 64, 500, 200);
            ServerFrame::welcome("alice", 0, vec![], Some("t".into()), None, Some(limits))
        };
        s.handle_connected(0);
        frame(&mut s, welcome_taking(1024));
        drain(&mut s);
        let out = line(&mut s, &"x".repeat(1500));
        assert!(out.sent.is_empty());
        assert_eq!(
            out.lines,
            ["! msg_too_large: not sent: the message is 1,500 bytes; the server takes at most 355"]
        );
        // Another server, reached later, that takes more: so do we.
        s.handle_disconnected();
        s.handle_connected(1);
        frame(&mut s, welcome_taking(65_536));
        drain(&mut s);
        let out = line(&mut s, &"x".repeat(1500));
        assert_eq!(out.sent.len(), 1, "{:?}", out.lines);
    }
}
