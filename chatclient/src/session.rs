//! The user's side of a chat session, with no I/O: a typed line becomes
//! calls on the protocol core, [`chatproto::Client`], and what the core
//! reports becomes lines to show.
//!
//! The protocol is all the core's: the join handshake, pings, entering
//! rooms, resuming after a reconnect, resending what was not acknowledged
//! and showing each message once. This file only decides what the user
//! sees: which room is current, the `[#room]` and `[history]` marks, the
//! one line that sums up a reconnect, and when the user may leave.
//!
//! It is driven like the core: `handle_*` methods feed it, and the shell
//! (`net.rs`) drains [`Session::poll`] for [`Action`]s, in order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chatproto::nick_key;
use chatproto::{escape_control, Client, ClientEvent, ClientFrame, ClientOutput, ErrorCode};
use chatproto::{ServerFrame, LOBBY};

use crate::input::{parse_line, verbatim_line, Command, HELP};
use crate::ledger::{Ledger, LineKind, LineOutcome};
use crate::render::Line;

/// How many names a line about a room lists before it says "and N more".
const NAMES_SHOWN: usize = 10;

/// An id as long as the ones the core makes, to check a message's size
/// before handing it over.
const ID_PLACEHOLDER: &str = "0123456789abcdef-0123456789";

/// Something the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a frame to the server.
    Send(ClientFrame),
    /// Show a line.
    Print(Line),
    /// The join handshake succeeded (the first time, or again after a
    /// reconnect).
    Joined,
    /// The server refused the join.
    Refused {
        /// Why: `nick_taken`, `nick_invalid`, `server_full`, ...
        code: ErrorCode,
        /// The server's sentence.
        message: String,
    },
    /// The connection seems dead (a ping went unanswered): drop it.
    Dead,
    /// The server is closing this connection because another one resumed
    /// the session with its token (`resumed_elsewhere`): stop, without
    /// reconnecting, which would take the session back from that one.
    ResumedElsewhere,
    /// Input is over and every message sent was acknowledged: leave.
    Exit,
    /// A frame as it arrived, before anything else it causes (only with
    /// [`Mode::echo_frames`]).
    Frame(ServerFrame),
    /// What became of an input line; one per line, in input order.
    Outcome(LineOutcome),
}

/// How input is read and when the session ends (the line mode flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mode {
    /// `--verbatim`: every line is text for the current room; no `@` or
    /// `/` is interpreted.
    pub verbatim: bool,
    /// `--stay`: the end of input does not end the session; only `/quit`
    /// or [`Session::handle_stop`] do.
    pub stay: bool,
    /// `--json`: report every frame ([`Action::Frame`]); errors the frames
    /// and the outcomes already tell are not shown again as lines.
    pub echo_frames: bool,
    /// Input from a pipe or a file: read no line before every room asked
    /// for is answered ([`Session::settled`]), so that a line written
    /// ahead (`/who`, `/history`) meets the rooms as the server has them.
    /// A person at a terminal cannot type ahead of the answer; there input
    /// is read as it comes.
    pub wait_for_rooms: bool,
}

/// A reconnect being summed up: the rooms whose replay has not ended yet,
/// and what the replays held so far.
#[derive(Debug, Default)]
struct Resume {
    waiting: BTreeSet<String>,
    missed: usize,
    gap: bool,
}

/// The state of the chat as the user sees it. See the [module docs](self).
#[derive(Debug)]
pub struct Session {
    client: Client,
    /// Where typed lines go; `None` after leaving every room.
    current: Option<String>,
    /// The current room before the last `/join`, to go back to if the
    /// server refuses the new one.
    previous: Option<String>,
    /// `/query NICK`: lines without recipients go to this nickname only.
    query: Option<String>,
    /// Name the room on every line, the current one's too (the
    /// full-screen client files lines by room; the line mode marks only
    /// other rooms').
    every_room_named: bool,
    /// The rooms the last `/rooms` listed, for completing room names.
    listed_rooms: Vec<String>,
    joined_before: bool,
    resume: Option<Resume>,
    /// Rooms whose replay is arriving (from `entered` to our own presence):
    /// `true` when it brings what was missed while away, `false` when it is
    /// the room's recent history, shown on entering it for the first time.
    replaying: BTreeMap<String, bool>,
    /// The smallest seq shown per room, or where the last page of history
    /// said the next one starts: `/history` pages back from it.
    oldest: BTreeMap<String, u64>,
    /// The last fatal error the server sent on this connection.
    fatal: Option<(ErrorCode, String)>,
    input_done: bool,
    /// Leave once every message sent is acknowledged.
    leaving: bool,
    exited: bool,
    max_frame_bytes: usize,
    mode: Mode,
    ledger: Ledger,
    out: VecDeque<Action>,
    /// Rooms asked to enter (at start or with /join) and not answered
    /// yet: input waits for them (see [`Session::settled`]).
    entering: std::collections::BTreeSet<String>,
    /// `/history` and `/rooms` asked and not answered yet: leaving at the
    /// end of input waits for their answers, as for the echoes.
    asked: usize,
}

impl Session {
    /// A session that will join as `nick` and enter `rooms`, the first
    /// being current. `id_prefix` starts every message id (make it differ
    /// between runs).
    pub fn new(nick: &str, rooms: &[String], id_prefix: &str, max_frame_bytes: usize) -> Self {
        let names: Vec<&str> = rooms.iter().map(String::as_str).collect();
        Session {
            client: Client::new(nick, &names, id_prefix),
            current: rooms.first().map(|r| r.to_ascii_lowercase()),
            previous: None,
            query: None,
            every_room_named: false,
            listed_rooms: Vec::new(),
            joined_before: false,
            resume: None,
            replaying: BTreeMap::new(),
            oldest: BTreeMap::new(),
            fatal: None,
            input_done: false,
            leaving: false,
            exited: false,
            max_frame_bytes,
            mode: Mode::default(),
            ledger: Ledger::new(),
            out: VecDeque::new(),
            entering: rooms.iter().map(|r| r.to_ascii_lowercase()).collect(),
            asked: 0,
        }
    }

    /// Whether the shell may read input as far as rooms go: always at a
    /// terminal; with [`Mode::wait_for_rooms`], once every room asked to
    /// enter has been answered (entered or refused). A lost connection
    /// settles them all (the answers went with it).
    pub fn settled(&self) -> bool {
        !self.mode.wait_for_rooms || self.entering.is_empty()
    }

    /// Read input and end as `mode` says (call before anything else).
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    /// Input lines read so far.
    pub fn lines_read(&self) -> u64 {
        self.ledger.lines()
    }

    /// Input lines reported refused, or unanswered when the session stopped.
    pub fn lines_failed(&self) -> u64 {
        self.ledger.failures()
    }

    /// Whether the session is leaving although [`Mode::stay`] would keep
    /// it (a [`handle_stop`](Session::handle_stop), or `/quit`): one more
    /// signal should leave at once.
    pub fn stopping(&self) -> bool {
        self.leaving && self.mode.stay
    }

    /// The nickname (as the server spells it, once joined).
    pub fn nick(&self) -> &str {
        self.client.nick()
    }

    /// The prompt for line editing: `alice #rust> `, or `alice #rust ->
    /// bob> ` after `/query bob`.
    pub fn prompt(&self) -> String {
        let nick = escape_control(self.client.nick());
        let to = match &self.query {
            Some(q) => format!(" -> {}", escape_control(q)),
            None => String::new(),
        };
        match &self.current {
            Some(room) => format!("{nick} #{room}{to}> "),
            None => format!("{nick}{to}> "),
        }
    }

    /// Name the room on every line shown, the current one's included
    /// ([`Line::Msg`] and [`Line::Presence`] always carry `room`).
    pub fn name_every_room(&mut self) {
        self.every_room_named = true;
    }

    /// The room typed lines go to.
    pub fn current_room(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// The rooms we are in (or will enter once connected).
    pub fn rooms(&self) -> impl Iterator<Item = &str> + '_ {
        self.client.rooms()
    }

    /// The rooms the last `/rooms` listed.
    pub fn listed_rooms(&self) -> &[String] {
        &self.listed_rooms
    }

    /// Who is in `room`, as far as we know.
    pub fn roster(&self, room: &str) -> Vec<&str> {
        self.client.roster(room)
    }

    /// Whether we are connected and joined.
    pub fn is_joined(&self) -> bool {
        self.client.is_joined()
    }

    /// The messages sent and not acknowledged yet, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = chatproto::Unacknowledged<'_>> + '_ {
        self.client.pending()
    }

    /// Messages sent that the server has not acknowledged yet.
    pub fn unacknowledged(&self) -> usize {
        self.client.unacknowledged()
    }

    /// Whether input has ended (EOF or `/quit`).
    pub fn input_done(&self) -> bool {
        self.input_done
    }

    /// The fatal error the server sent before it closed this connection.
    pub fn take_fatal(&mut self) -> Option<(ErrorCode, String)> {
        self.fatal.take()
    }

    /// A connection is open: the core joins (resuming, after the first time).
    pub fn handle_connected(&mut self, now: u64) {
        self.fatal = None;
        self.client.handle_connected(now);
        self.pump();
    }

    /// The connection ended.
    pub fn handle_disconnected(&mut self) {
        self.client.handle_disconnected();
        self.entering.clear();
        self.asked = 0;
        self.resume = None;
        self.replaying.clear();
        self.pump();
    }

    /// A frame arrived from the server.
    pub fn handle_frame(&mut self, now: u64, frame: ServerFrame) {
        let mut elsewhere = false;
        if let ServerFrame::Error { code, message, .. } = &frame {
            if code.is_fatal() {
                self.fatal = Some((*code, message.clone()));
            }
            elsewhere = *code == ErrorCode::ResumedElsewhere;
        }
        if self.mode.echo_frames {
            self.out.push_back(Action::Frame(frame.clone()));
        }
        self.ledger.note(&frame);
        self.client.handle_frame(now, frame);
        let client = &self.client;
        self.ledger.settle(|id| client.is_unacknowledged(id));
        self.pump();
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
    }

    /// When to call [`handle_timeout`](Session::handle_timeout), on the
    /// monotonic clock in milliseconds.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.client.poll_timeout()
    }

    /// Time passed (the core pings a silent server, or calls it dead).
    pub fn handle_timeout(&mut self, now: u64) {
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
            let kind = line_kind(&cmd);
            self.ledger.begin();
            self.command(cmd);
            self.ledger.end(kind);
        }
        self.pump();
    }

    /// Stdin ended or the user typed `/quit`: leave once every message
    /// sent has been acknowledged, across reconnects, so nothing typed is
    /// lost. With [`Mode::stay`], the end of input only stops reading it.
    pub fn handle_input_end(&mut self) {
        if self.mode.stay && !self.input_done {
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
        self.ledger.abandon();
        self.drain_outcomes();
    }

    /// The next thing to do.
    pub fn poll(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    /// Act on a line that parsed to `cmd`.
    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Send { to, text } => self.send(to, text),
            Command::Join(room) => self.join(room),
            Command::Part(room) => self.part(room),
            Command::Rooms => {
                if self.connected() {
                    self.client.list_rooms();
                    self.asked += 1;
                }
            }
            Command::Who => {
                if let Some(room) = self.in_a_room() {
                    let list = self.client.roster(&room);
                    self.info(format!("online ({}): {}", list.len(), list.join(", ")));
                }
            }
            Command::History(limit) => {
                if let Some(room) = self.in_a_room() {
                    if self.connected() {
                        let before = self.oldest.get(&room).copied();
                        self.client.history(&room, before, Some(limit));
                        self.asked += 1;
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
                self.info("/clear only clears the full-screen client's message area".into());
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
        // pasted novel does not cost a round trip (or a resend forever).
        let frame = ClientFrame::msg_in(
            room.clone(),
            to.clone(),
            text.clone(),
            Some(ID_PLACEHOLDER.into()),
        );
        match chatproto::encode(&frame, self.max_frame_bytes) {
            Ok(_) => {
                let id = self.client.send_msg(&room, to, text);
                self.ledger.sent(id, room);
            }
            Err(chatproto::EncodeError::TooLarge { len, max, .. }) => {
                // The frame around the text: the same frame, text left out.
                let empty =
                    ClientFrame::msg_in(room, to, String::new(), Some(ID_PLACEHOLDER.into()));
                let around = chatproto::encode(&empty, self.max_frame_bytes)
                    .map_or(0, |b| b.len() - chatproto::HEADER_LEN);
                self.error(
                    "msg_too_large",
                    too_long(len.saturating_sub(around), max.saturating_sub(around)),
                );
            }
            Err(e) => self.error("msg_too_large", format!("not sent: {e}")),
        }
    }

    fn join(&mut self, room: String) {
        if self.current.as_deref() == Some(room.as_str()) {
            self.info(format!("#{room} is already the current room"));
            return;
        }
        let already = self.client.rooms().any(|r| r == room);
        if !already {
            self.client.enter(&room);
            if self.client.is_joined() {
                self.entering.insert(room.clone());
            } else {
                self.info(format!("#{room} will be entered once reconnected"));
            }
        }
        self.previous = self.current.replace(room.clone());
        if already {
            self.info(format!("#{room} is now the current room"));
        }
    }

    fn part(&mut self, room: Option<String>) {
        let Some(room) = room.or_else(|| self.current.clone()) else {
            self.error("input", "you are in no room; /part ROOM names one".into());
            return;
        };
        if !self.client.rooms().any(|r| r == room) {
            self.error("input", format!("you are not in #{room}"));
            return;
        }
        self.client.part(&room);
        // Parted before the answer came: none will (the core drops it).
        self.entering.remove(&room);
        self.info(format!("you left #{room}"));
        self.forget_room(&room, false);
    }

    /// `room` is no longer ours: drop what the screen kept about it, and
    /// pick another current room if it was the current one. `refused`:
    /// the server would not let us in, so the room current before the
    /// `/join` is current again, if it is still ours.
    fn forget_room(&mut self, room: &str, refused: bool) {
        self.oldest.remove(room);
        self.replaying.remove(room);
        self.resume_room_done(room);
        if self.current.as_deref() != Some(room) {
            return;
        }
        let rooms: Vec<String> = self.client.rooms().map(str::to_owned).collect();
        let back = self.previous.take().filter(|p| rooms.contains(p));
        let again = refused && back.is_some();
        let next = back
            .or_else(|| rooms.iter().find(|r| *r == LOBBY).cloned())
            .or_else(|| rooms.first().cloned());
        self.current = next;
        match &self.current {
            Some(r) if again => self.info(format!("#{r} is still the current room")),
            Some(r) => self.info(format!("#{r} is now the current room")),
            None => self.info("you are in no room; /join ROOM to enter one".into()),
        }
    }

    /// The current room, or `None` after telling the user there is none.
    fn in_a_room(&mut self) -> Option<String> {
        if self.current.is_none() {
            self.error("input", "you are in no room; /join ROOM first".into());
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

    /// Move the core's output into ours: frames as they are, events as lines.
    fn pump(&mut self) {
        while let Some(out) = self.client.poll() {
            match out {
                ClientOutput::Send(frame) => self.out.push_back(Action::Send(frame)),
                ClientOutput::Event(event) => self.event(event),
                // A kind of output added by a newer chatproto.
                _ => {}
            }
        }
        self.drain_outcomes();
        // Reading a pipe, the answers to /history and /rooms and the
        // rooms asked for are waited for too.
        let answered = !self.mode.wait_for_rooms || (self.asked == 0 && self.entering.is_empty());
        if self.leaving && !self.exited && self.client.unacknowledged() == 0 && answered {
            self.exited = true;
            self.out.push_back(Action::Exit);
        }
    }

    fn drain_outcomes(&mut self) {
        while let Some(outcome) = self.ledger.poll() {
            self.out.push_back(Action::Outcome(outcome));
        }
    }

    fn event(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::Joined { nick, .. } => {
                if self.joined_before {
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
                if reset {
                    // A new history: /history pages back from what it shows.
                    self.oldest.remove(&room);
                }
                self.replaying.insert(room.clone(), again);
                if again {
                    if let Some(r) = &mut self.resume {
                        r.gap |= gap;
                    }
                } else {
                    self.info(format!("entered #{room}; {}", names(&online)));
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
                let missed = replay && self.replaying.get(&room) == Some(&true);
                if missed {
                    if let Some(r) = &mut self.resume {
                        r.missed += 1;
                    }
                }
                self.shown(&room, seq);
                let line = Line::Msg {
                    room: self.other(&room),
                    history: replay && !missed,
                    page: false,
                    from,
                    to,
                    text,
                    ts,
                };
                self.print(line);
            }
            ClientEvent::Presence {
                room, nick, online, ..
            } => {
                let me = nick_key(&nick) == nick_key(self.client.nick());
                if me && online {
                    // Our own presence ends the room's replay.
                    let was = self.replaying.remove(&room);
                    self.resume_room_done(&room);
                    if was == Some(true) {
                        // Back after a reconnect: the summary says so.
                        return;
                    }
                }
                let room = self.other(&room);
                self.print(Line::Presence { room, nick, online });
            }
            ClientEvent::History {
                room,
                events,
                more,
                before,
                ..
            } => {
                self.asked = self.asked.saturating_sub(1);
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
                        count += 1;
                        self.shown(&room, seq);
                        let line = Line::Msg {
                            room: self.other(&room),
                            history: true,
                            page: true,
                            from,
                            to,
                            text,
                            ts,
                        };
                        self.print(line);
                    }
                }
                let what = match (count, more) {
                    (0, false) => format!("no older messages in #{room}"),
                    (0, true) => format!(
                        "no older messages for you in this stretch of #{room}; \
                         /history looks further back"
                    ),
                    (_, false) => {
                        format!("{} of #{room}; that is all", plural(count, "older message"))
                    }
                    (_, true) => format!(
                        "{} of #{room}; /history shows more",
                        plural(count, "older message")
                    ),
                };
                self.info(what);
            }
            ClientEvent::Rooms(list) => {
                self.asked = self.asked.saturating_sub(1);
                self.listed_rooms = list.iter().map(|(room, _)| room.clone()).collect();
                let shown: Vec<String> = list
                    .iter()
                    .map(|(room, members)| format!("#{room} ({members})"))
                    .collect();
                self.info(format!("rooms ({}): {}", shown.len(), shown.join(", ")));
            }
            ClientEvent::Error {
                code,
                message,
                room,
                id,
                ..
            } => {
                // One that answers no message may answer a request.
                if id.is_none() {
                    self.asked = self.asked.saturating_sub(1);
                }
                // With the frames shown, this error is one of them.
                if !self.mode.echo_frames {
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
                        if !self.client.rooms().any(|r| r == room) {
                            self.forget_room(&room, true);
                        }
                    }
                    // One that names no room may have answered an enter
                    // (dropped by a rate limit, say): input waits no more.
                    None => self.entering.clear(),
                }
            }
            ClientEvent::Notice(text) => self.print(Line::Notice { text }),
            ClientEvent::Dead => self.out.push_back(Action::Dead),
            // An event added by a newer chatproto: nothing to show.
            _ => {}
        }
    }

    /// `room` has finished its replay after a reconnect (or is gone).
    fn resume_room_done(&mut self, room: &str) {
        if let Some(r) = &mut self.resume {
            r.waiting.remove(room);
        }
        self.finish_resume_if_done();
    }

    /// Every room is back: say in one line what the reconnect brought.
    fn finish_resume_if_done(&mut self) {
        if !self.resume.as_ref().is_some_and(|r| r.waiting.is_empty()) {
            return;
        }
        let Some(r) = self.resume.take() else {
            return;
        };
        let text = if r.gap {
            "reconnected; history has a gap".to_owned()
        } else if r.missed == 0 {
            "reconnected; nothing missed".to_owned()
        } else {
            format!("reconnected; {}", plural(r.missed, "missed message"))
        };
        self.info(text);
    }

    fn shown(&mut self, room: &str, seq: u64) {
        let oldest = self.oldest.entry(room.to_owned()).or_insert(seq);
        *oldest = (*oldest).min(seq);
    }

    /// `room` for a `[#room]` prefix: `None` when it is the current room
    /// (unless every room is named).
    fn other(&self, room: &str) -> Option<String> {
        (self.every_room_named || self.current.as_deref() != Some(room)).then(|| room.to_owned())
    }

    fn print(&mut self, line: Line) {
        self.out.push_back(Action::Print(line));
    }

    fn info(&mut self, text: String) {
        self.print(Line::Info(text));
    }

    /// The line being handled fails: its outcome says why (and, unless
    /// the outcomes are the output, a line shows it).
    fn error(&mut self, code: &str, message: String) {
        self.ledger.fail(code, &message);
        if !self.mode.echo_frames {
            self.print(Line::Error {
                code: code.to_owned(),
                message,
            });
        }
    }
}

/// Why a message of `bytes` bytes (as sent: its text, escaped where
/// JSON must) is not sent when the server takes at most `most`, in plain
/// words. The limit is rounded down to the thousand, as the server counts
/// its stamped copy (a few hundred bytes more) and not this frame.
fn too_long(bytes: usize, most: usize) -> String {
    let most = if most >= 10_000 {
        most / 1000 * 1000
    } else {
        most
    };
    format!(
        "not sent: the message is {} bytes; the server takes at most about {}",
        grouped(bytes),
        grouped(most)
    )
}

/// `n` with its thousands separated by commas: `70,000`.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// What kind of line `cmd` came from, for its outcome.
fn line_kind(cmd: &Command) -> LineKind {
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

/// `3 missed messages`, `1 missed message`.
fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// `2 online: alice, bob`, with at most [`NAMES_SHOWN`] names.
fn names(online: &[String]) -> String {
    let shown: Vec<&str> = online
        .iter()
        .take(NAMES_SHOWN)
        .map(String::as_str)
        .collect();
    let mut text = format!("{} online: {}", online.len(), shown.join(", "));
    if online.len() > NAMES_SHOWN {
        text.push_str(&format!(" and {} more", online.len() - NAMES_SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::OutcomeKind;
    use crate::render::{render, Style};
    use chatproto::{PresenceStatus, RoomInfo};

    /// What one batch of input made the session do: frames sent, lines
    /// shown (rendered plain) and the other actions.
    #[derive(Debug, Default)]
    struct Out {
        sent: Vec<ClientFrame>,
        lines: Vec<String>,
        outcomes: Vec<LineOutcome>,
        other: Vec<Action>,
    }

    fn drain(s: &mut Session) -> Out {
        let mut out = Out::default();
        while let Some(a) = s.poll() {
            match a {
                Action::Send(f) => out.sent.push(f),
                Action::Print(l) => out.lines.push(render(&l, Style::default(), None)),
                Action::Outcome(o) => out.outcomes.push(o),
                other => out.other.push(other),
            }
        }
        out
    }

    fn frame(s: &mut Session, f: ServerFrame) -> Out {
        s.handle_frame(0, f);
        drain(s)
    }

    fn line(s: &mut Session, l: &str) -> Out {
        s.handle_line(l);
        drain(s)
    }

    fn welcome(nick: &str, resumed: bool) -> ServerFrame {
        ServerFrame::welcome(nick, 0, vec![], Some("token".into()), Some(resumed), None)
    }

    fn entered(room: &str, seq: u64, online: &[&str], recovered: bool) -> ServerFrame {
        ServerFrame::entered(
            room,
            "e1",
            seq,
            1,
            online.iter().map(|n| n.to_string()).collect(),
            recovered,
        )
    }

    fn msg(room: &str, seq: u64, from: &str, to: &[&str], text: &str) -> ServerFrame {
        ServerFrame::msg(
            Some(room.into()),
            seq,
            from,
            to.iter().map(|n| n.to_string()).collect(),
            text,
            0,
            None,
        )
    }

    fn replayed(mut f: ServerFrame, with_id: Option<&str>) -> ServerFrame {
        if let ServerFrame::Msg { id, replay, .. } = &mut f {
            *id = with_id.map(str::to_owned);
            *replay = true;
        }
        f
    }

    fn echo(room: &str, seq: u64, from: &str, text: &str, id: &str) -> ServerFrame {
        let mut f = msg(room, seq, from, &[], text);
        if let ServerFrame::Msg { id: mine, .. } = &mut f {
            *mine = Some(id.into());
        }
        f
    }

    fn presence(room: &str, seq: u64, nick: &str, online: bool) -> ServerFrame {
        ServerFrame::presence(
            Some(room.into()),
            seq,
            nick,
            if online {
                PresenceStatus::Online
            } else {
                PresenceStatus::Offline
            },
            0,
        )
    }

    fn the_id(sent: &[ClientFrame]) -> String {
        match sent {
            [ClientFrame::Msg { id: Some(id), .. }] => id.clone(),
            other => panic!("expected one msg, sent {other:?}"),
        }
    }

    /// alice, joined and in `rooms` (each entered at seq 0 with her own
    /// presence at seq 1), every output drained.
    fn joined(rooms: &[&str]) -> Session {
        let rooms: Vec<String> = rooms.iter().map(|r| r.to_string()).collect();
        let mut s = Session::new("alice", &rooms, "t-", 65_536);
        s.handle_connected(0);
        drain(&mut s);
        frame(&mut s, welcome("alice", false));
        for r in &rooms {
            frame(&mut s, entered(r, 0, &["alice"], false));
            frame(&mut s, presence(r, 1, "alice", true));
        }
        s
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
        let out = frame(&mut s, entered("lobby", 3, &["bob", "alice"], false));
        assert_eq!(out.lines, ["* entered #lobby; 2 online: bob, alice"]);
        // The replay on a first enter is the room's recent history.
        let out = frame(
            &mut s,
            replayed(msg("lobby", 2, "bob", &[], "earlier"), None),
        );
        assert_eq!(out.lines, ["[history] bob: earlier"]);
        let mut shown = Vec::new();
        for f in [
            presence("lobby", 4, "alice", true),
            msg("lobby", 5, "bob", &[], "hello"),
            msg("lobby", 6, "bob", &["alice"], "psst"),
            msg("lobby", 7, "carol", &["alice", "bob"], "both"),
            presence("lobby", 8, "bob", false),
            ServerFrame::notice("going down"),
        ] {
            shown.extend(frame(&mut s, f).lines);
        }
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
    fn input_waits_until_every_room_asked_for_is_answered() {
        let mut s = Session::new("alice", &["lobby".into(), "Rust".into()], "t-", 65_536);
        assert!(s.settled(), "at a terminal, input is read as it comes");
        s.set_mode(Mode {
            wait_for_rooms: true,
            ..Mode::default()
        });
        assert!(!s.settled());
        s.handle_connected(0);
        drain(&mut s);
        frame(&mut s, welcome("alice", false));
        frame(&mut s, entered("lobby", 0, &["alice"], false));
        assert!(!s.settled(), "#rust is not answered yet");
        frame(&mut s, entered("rust", 0, &["alice", "bob"], false));
        assert!(s.settled());
        // A /join waits for its answer too: entered, or refused.
        line(&mut s, "/join go");
        assert!(!s.settled());
        frame(
            &mut s,
            ServerFrame::error_v2(
                ErrorCode::TooManyRooms,
                "too many rooms",
                None,
                Some("go".into()),
                None,
            ),
        );
        assert!(s.settled());
        line(&mut s, "/join zig");
        assert!(!s.settled());
        // An error naming no room, or a lost connection, ends the wait.
        frame(
            &mut s,
            ServerFrame::error(ErrorCode::BadFrame, "what was that?"),
        );
        assert!(s.settled());
        line(&mut s, "/join odin");
        assert!(!s.settled());
        s.handle_disconnected();
        assert!(s.settled());
        // Parted before the answer: none comes, and none is waited for.
        s.handle_connected(0);
        frame(&mut s, welcome("alice", true));
        line(&mut s, "/join thor");
        assert!(!s.settled());
        line(&mut s, "/part thor");
        assert!(s.settled());
        frame(&mut s, entered("thor", 0, &["alice"], false));
        assert!(s.settled());
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
    fn rooms_join_part_who_and_prefixes() {
        let mut s = joined(&["lobby"]);
        let out = line(&mut s, "/JOIN #Rust");
        assert_eq!(out.sent, [ClientFrame::enter("rust", None)]);
        assert_eq!(s.prompt(), "alice #rust> ");
        let out = frame(&mut s, entered("rust", 0, &["bob", "alice"], false));
        assert_eq!(out.lines, ["* entered #rust; 2 online: bob, alice"]);
        let mut shown = Vec::new();
        for f in [
            presence("rust", 1, "alice", true),
            msg("rust", 2, "bob", &[], "in rust"),
            msg("lobby", 2, "bob", &[], "in the lobby"),
            presence("lobby", 3, "carol", true),
            msg("lobby", 4, "carol", &["alice"], "psst"),
        ] {
            shown.extend(frame(&mut s, f).lines);
        }
        assert_eq!(
            shown,
            [
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
        let out = line(&mut s, "/part rust");
        assert_eq!(
            out.lines,
            [
                "* you left #rust",
                "* you are in no room; /join ROOM to enter one"
            ]
        );
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
            ServerFrame::error_v2(
                ErrorCode::TooManyRooms,
                "you are in 1 rooms, the most allowed",
                None,
                Some("rust".into()),
                None,
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
            ServerFrame::error_v2(
                ErrorCode::TooManyRooms,
                "too many rooms",
                None,
                Some("rust".into()),
                None,
            ),
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
                "* 1 older message of #lobby; that is all"
            ]
        );
        assert_eq!(
            frame(&mut s, page(&[], false)).lines,
            ["* no older messages in #lobby"]
        );
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

    /// The connection drops with one of alice's messages stamped but not
    /// echoed, bob talks meanwhile, and alice types one more line and ends
    /// her input while offline. Back, she sees what she missed once, a
    /// one-line summary, her lines once, and only then leaves.
    #[test]
    fn a_reconnect_is_one_line_and_shows_nothing_twice() {
        let mut s = joined(&["lobby"]);
        let id1 = the_id(&line(&mut s, "a1").sent);
        s.handle_disconnected();
        assert!(drain(&mut s).lines.is_empty());
        let out = line(&mut s, "a2");
        assert!(out.sent.is_empty(), "nothing goes out while offline");
        s.handle_input_end();
        assert!(drain(&mut s).other.is_empty(), "two messages unanswered");
        assert_eq!(s.unacknowledged(), 2);

        s.handle_connected(10);
        let out = drain(&mut s);
        assert!(matches!(
            &out.sent[..],
            [ClientFrame::Join { resume: Some(t), .. }] if t == "token"
        ));
        let out = frame(&mut s, welcome("alice", true));
        assert!(out.lines.is_empty(), "{:?}", out.lines);
        assert_eq!(out.other, [Action::Joined]);
        assert_eq!(
            out.sent.len(),
            3,
            "enter, then both messages: {:?}",
            out.sent
        );
        assert_eq!(
            out.sent[0],
            ClientFrame::enter("lobby", Some((1, "e1".into())))
        );
        let id2 = match &out.sent[2] {
            ClientFrame::Msg { id: Some(id), .. } => id.clone(),
            other => panic!("{other:?}"),
        };
        let mut shown = Vec::new();
        for f in [
            entered("lobby", 3, &["bob", "alice"], true),
            replayed(msg("lobby", 2, "bob", &[], "b1"), None),
            replayed(echo("lobby", 3, "alice", "a1", &id1), Some(&id1)),
            presence("lobby", 4, "alice", true),
            ServerFrame::error_v2(
                ErrorCode::Duplicate,
                "already sent",
                Some(id1.clone()),
                Some("lobby".into()),
                Some(3),
            ),
            // A server repeating itself is not shown twice.
            msg("lobby", 2, "bob", &[], "b1"),
        ] {
            let out = frame(&mut s, f);
            assert!(out.other.is_empty(), "{:?}", out.other);
            shown.extend(out.lines);
        }
        assert_eq!(
            shown,
            ["bob: b1", "alice: a1", "* reconnected; 2 missed messages"]
        );
        let out = frame(&mut s, echo("lobby", 5, "alice", "a2", &id2));
        assert_eq!(out.lines, ["alice: a2"]);
        assert_eq!(out.other, [Action::Exit], "every line answered: leave");
    }

    #[test]
    fn a_gap_is_said_in_the_summary() {
        let mut s = joined(&["lobby", "rust"]);
        s.handle_disconnected();
        s.handle_connected(10);
        frame(&mut s, welcome("alice", true));
        let mut shown = Vec::new();
        for f in [
            entered("lobby", 1, &["alice"], true),
            presence("lobby", 2, "alice", true),
            ServerFrame::entered("rust", "e1", 900, 300, vec!["alice".into()], false),
            replayed(msg("rust", 900, "bob", &[], "late"), None),
            presence("rust", 901, "alice", true),
        ] {
            shown.extend(frame(&mut s, f).lines);
        }
        assert_eq!(
            shown,
            ["[#rust] bob: late", "* reconnected; history has a gap"]
        );
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
    fn every_room_named_and_what_the_screen_reads() {
        let mut s = joined(&["lobby", "rust"]);
        s.name_every_room();
        let out = frame(&mut s, msg("lobby", 2, "bob", &[], "hi"));
        assert_eq!(out.lines, ["[#lobby] bob: hi"]);
        assert_eq!(s.current_room(), Some("lobby"));
        assert_eq!(s.rooms().collect::<Vec<_>>(), ["lobby", "rust"]);
        assert_eq!(s.roster("lobby"), ["alice"]);
        assert!(s.is_joined());
        line(&mut s, "pending one");
        let pending: Vec<String> = s.pending().map(|p| p.text.to_owned()).collect();
        assert_eq!(pending, ["pending one"]);
        line(&mut s, "/rooms");
        frame(
            &mut s,
            ServerFrame::rooms(vec![RoomInfo::new("lobby", 3), RoomInfo::new("ops", 1)]),
        );
        assert_eq!(s.listed_rooms(), ["lobby", "ops"]);
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
            ["! msg_too_large: not sent: the message is 2,000 bytes; the server takes at most about 950"]
        );
        assert_eq!(s.unacknowledged(), 0);
        // What JSON escapes counts as sent.
        let out = line(&mut s, &"\"".repeat(600));
        assert_eq!(
            out.lines,
            ["! msg_too_large: not sent: the message is 1,200 bytes; the server takes at most about 950"]
        );
        let out = line(&mut s, &"x".repeat(950));
        assert_eq!(out.sent.len(), 1, "{:?}", out.lines);
    }

    #[test]
    fn too_long_in_plain_words() {
        assert_eq!(
            too_long(70_000, 65_462),
            "not sent: the message is 70,000 bytes; the server takes at most about 65,000"
        );
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
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
