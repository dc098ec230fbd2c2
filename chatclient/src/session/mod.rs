//! The user's side of a chat session, with no I/O: a typed line becomes
//! calls on the protocol core, [`chatproto::Client`], and what the core
//! reports becomes lines to show.
//!
//! The protocol is all the core's: the join handshake, pings, entering
//! rooms, resuming after a reconnect, resending what was not acknowledged
//! and showing each message once. This module only decides what the user
//! sees: which room is current, the `[#room]` and `[history]` marks, the
//! one line that sums up a reconnect (and who came and went in each room
//! meanwhile), and when the user may leave.
//!
//! It is driven like the core: `handle_*` methods feed it, and the shell
//! (`net.rs`) drains [`Session::poll`] for [`Action`]s, in order.
//!
//! Files, one job each: `handle` (the `handle_*` calls and `poll`),
//! `commands` (acting on a typed line), `events` (what the core reports,
//! as lines), `resume` (the lines that sum up a reconnect), `departures`
//! (leavings held back a moment, in case the person comes straight back),
//! `pages` (`/history` requests matched to their pages), `lines` (the
//! wording of what is shown), and in tests `testkit` (a session driven
//! without a network). This file holds the
//! [`Session`] and what the shell reads of it.

mod absent;
mod commands;
mod departures;
mod events;
mod handle;
mod lines;
mod pages;
mod resume;
#[cfg(test)]
mod testkit;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chatproto::{escape_control, Client, ClientFrame, ErrorCode, ServerFrame};

use crate::ledger::{Ledger, LineOutcome};
use crate::render::{Line, Place};
pub use commands::text_bytes;
use departures::Departure;
pub(crate) use lines::{as_typed, grouped, unconfirmed_report};
use resume::{Away, Resume};

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

/// Messages of a room missing from what is shown, after a reconnect the
/// server could not replay all of them to: those with a seq above `after`
/// (the last one shown before) and below `before` (the first one the
/// replay brought, or if it brought none the first one shown live since;
/// `None`: neither yet, so up to the newest).
/// `/history` fetches them first, a page at a time, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Gap {
    after: u64,
    before: Option<u64>,
    /// How many messages the last `/history` into it asked for: it asks
    /// the server for one more, to see whether the page reaches below
    /// the gap (joins and leaves take seqs too, and a page holds only
    /// messages, so its lowest seq alone cannot tell).
    asked: u64,
    /// When the one more did not fit the server's page (`asked` is all a
    /// page holds), a page as full as asked is followed by a page of one,
    /// to tell the same.
    probing: Option<Probe>,
}

/// The page of one after a full page into a [`Gap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// On its way, after a page that showed this many: what that page
    /// brought is said when it comes.
    Asked(usize),
    /// Maybe lost (a frame that could not be read, or an error naming
    /// the room, came meanwhile): what the page before brought was said
    /// without it. If it comes after all, it says only that the gap is
    /// filled, when it is.
    SaidEarly,
}

/// The seqs of a room's messages shown, in one epoch of its history (seqs
/// of another epoch are other messages). Only the newest [`Seen::KEEP`]
/// are kept: a room's replay brings its latest messages, and of those
/// this client can have shown no more than the replay holds.
#[derive(Debug, Default)]
struct Seen {
    epoch: String,
    /// The number the session gave this epoch when the room was entered
    /// in it (0: not entered yet): what places its messages on the
    /// full-screen client (see [`crate::render::Place`]).
    era: u64,
    /// The seqs shown, each with the era it was shown in (the one it
    /// stands in on the full-screen client).
    seqs: BTreeMap<u64, u64>,
    /// The smallest seq shown (since the last `/clear`), kept when the
    /// set forgets it: a message below it is older than all on screen.
    lowest: Option<u64>,
    /// `lowest` when the room was last entered: the messages of its
    /// replay below it are older than all those on the screen then.
    floor: Option<u64>,
    /// What was seen in the room's epochs before this one, the latest
    /// last, [`Seen::EPOCHS`] at most: a server whose history goes back
    /// to one of them (restarted without its data directory, then with
    /// it again) replays what was shown of it, not to be shown again.
    earlier: VecDeque<Earlier>,
}

/// What was seen of a room in an epoch before its current one.
#[derive(Debug)]
struct Earlier {
    epoch: String,
    seqs: BTreeMap<u64, u64>,
    lowest: Option<u64>,
}

/// How many rooms left keep what was seen of them (see `Session::parted`).
const PARTED_KEPT: usize = 64;

impl Seen {
    const KEEP: usize = 256;
    /// Epochs kept besides the current one.
    const EPOCHS: usize = 3;

    /// Note `seq` as shown; `false` if it already was.
    fn note(&mut self, seq: u64) -> bool {
        if self.seqs.contains_key(&seq) {
            return false;
        }
        self.seqs.insert(seq, self.era);
        self.lowest = Some(self.lowest.map_or(seq, |l| l.min(seq)));
        if self.seqs.len() > Self::KEEP {
            self.seqs.pop_first();
        }
        true
    }

    /// The room is in `epoch` now: what was seen counts in it, and what
    /// was seen in the one before is kept with the earlier ones.
    fn enter_epoch(&mut self, epoch: &str) {
        if self.epoch == epoch {
            return;
        }
        let back = match self.earlier.iter().position(|e| e.epoch == epoch) {
            Some(i) => self.earlier.remove(i),
            None => None,
        };
        let now = Earlier {
            epoch: std::mem::replace(&mut self.epoch, epoch.to_owned()),
            seqs: std::mem::take(&mut self.seqs),
            lowest: self.lowest.take(),
        };
        if !now.seqs.is_empty() {
            self.earlier.push_back(now);
            if self.earlier.len() > Self::EPOCHS {
                self.earlier.pop_front();
            }
        }
        if let Some(back) = back {
            self.seqs = back.seqs;
            self.lowest = back.lowest;
        }
    }

    /// Whether `seq` is older than every message shown when the room was
    /// last entered (none was: `false`).
    fn below_all(&self, seq: u64) -> bool {
        self.floor.is_some_and(|l| seq < l)
    }

    /// The screen let go of the room's messages above `first` (`None`:
    /// of all), in this epoch and the earlier ones, and shows none of
    /// this epoch's history below `from` (`None`: none), a page the
    /// screen did not show included: they are not on it any more, to be
    /// shown again by a page or a replay. What is still shown of an
    /// earlier epoch is remembered, not to be shown again if the server
    /// goes back to it.
    fn let_go(&mut self, from: Option<u64>, first: Option<Place>) {
        let era = self.era;
        // (A room's messages stand on the screen in the order of their
        // places, a later history's below an earlier one's.)
        let gone = |q: u64, e: u64| {
            first.is_none_or(|f| (e, q) < (f.era, f.seq))
                || (e == era && from.is_none_or(|f| q < f))
        };
        self.seqs.retain(|&q, &mut e| !gone(q, e));
        // The lowest still shown: of this history from `from` on, of the
        // epoch's earlier ones (gone back to) what is left.
        let older = self
            .seqs
            .iter()
            .filter(|&(_, &e)| e != era)
            .map(|(&q, _)| q)
            .min();
        let lowest = from.into_iter().chain(older).min();
        self.lowest = lowest.and_then(|m| self.lowest.map(|l| l.max(m)));
        for earlier in &mut self.earlier {
            let before = earlier.seqs.len();
            earlier.seqs.retain(|&q, &mut e| !gone(q, e));
            if earlier.seqs.len() != before {
                let left = earlier.seqs.keys().next().copied();
                earlier.lowest = left.and_then(|m| earlier.lowest.map(|l| l.max(m)));
            }
        }
        self.earlier.retain(|e| !e.seqs.is_empty());
    }

    /// Nothing is on the screen any more (`/clear`), of any epoch.
    fn clear(&mut self) {
        self.seqs.clear();
        self.lowest = None;
        self.floor = None;
        self.earlier.clear();
    }
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
    /// for, and every `/history` and `/rooms`, is answered
    /// ([`Session::settled`]), so that a line written ahead (`/who`,
    /// `/history`) meets the rooms as the server has them.
    /// A person at a terminal cannot type ahead of the answer; there input
    /// is read as it comes.
    pub wait_for_rooms: bool,
    /// A person watches: someone's leaving is said only once they have
    /// stayed away 5 s (`DEPARTURE_HOLD_MS`), and not at all if they come
    /// back before (a page reloaded, a server restarted, Wi-Fi that
    /// blinked), so that a reconnect does not read as a leaving and a
    /// coming back. Scripts reading lines get each as it happens.
    pub hold_departures: bool,
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
    /// other rooms'). The full-screen client also shows which room is
    /// current: a `/join` of a room already entered says nothing there.
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
    /// Messages `/history` brought per room since it paged from the newest
    /// (each page's line says the sum, so two pages of 3 read apart).
    paged: BTreeMap<String, usize>,
    /// The messages shown per room, to show none twice when the room is
    /// entered again after a `/part` (its replay repeats what was on
    /// screen).
    seen: BTreeMap<String, Seen>,
    /// The last era given to a room's history (see [`Seen::era`]).
    eras: u64,
    /// Rooms left, the latest last: what was seen of each is kept for the
    /// last [`PARTED_KEPT`] only (a bot walking through many rooms would
    /// keep 256 seqs of every one).
    parted: VecDeque<String>,
    /// Rooms parted whose `part` waits in the core for the answers to the
    /// messages sent to them before it: `you left` is said when it goes,
    /// below their echoes.
    part_notes: Vec<String>,
    /// Reading a pipe, the room whose refusal left no current room (its
    /// lines go to no other): named when a line finds none.
    refused_current: Option<String>,
    /// The last fatal error the server sent on this connection.
    fatal: Option<(ErrorCode, String)>,
    /// Rooms the server would not let us in (asked for at start or with
    /// `/join`, or entered again on a reconnect): the line mode's exit
    /// code counts them as it counts refused lines.
    refused_rooms: BTreeSet<String>,
    input_done: bool,
    /// Leave once every message sent is acknowledged.
    leaving: bool,
    exited: bool,
    max_frame_bytes: usize,
    /// `--max-frame-bytes` as given; the limit above is the lower of it
    /// and the limit of the server reached last.
    own_max_frame_bytes: usize,
    mode: Mode,
    ledger: Ledger,
    /// Private and group messages typed while offline or queued across a
    /// loss, not answered yet: refused `unknown_nick` just after the
    /// reconnect, they wait for their people (see `absent`).
    offline: absent::OfflineMessages,
    /// Those refused so, waiting for their people.
    absent: Vec<absent::Absent>,
    /// The messages the frame being handled refuses, by id, quoted as
    /// typed while the core still held them (see `Session::keep_quote`).
    quotes: Vec<(String, String)>,
    /// When the last reconnect's join succeeded (the session's clock).
    rejoined_at: Option<u64>,
    /// The lines handed now were typed while offline (during a
    /// reconnect's handshake).
    typed_offline: bool,
    /// Lines an input line printed while a line before it waited for the
    /// server (input from a pipe or a file), with its number: shown with
    /// its outcome, so that what a script's lines did reads in their order.
    held: VecDeque<(u64, Line)>,
    /// A line that changes the current room (`/join`, `/part`), read from
    /// a pipe while messages sent before it wait for their echo: handled
    /// once they are answered, so that the `[#room]` marks of their echoes
    /// are read against the room that was current when they were written.
    /// No input is read meanwhile (see `settled`).
    deferred: Option<crate::input::Command>,
    out: VecDeque<Action>,
    /// Rooms asked to enter (at start or with /join) and not answered
    /// yet: input waits for them (see [`Session::settled`]).
    entering: std::collections::BTreeSet<String>,
    /// `/rooms` asked and not answered yet: leaving at the end of input
    /// waits for their answers, as for the echoes (and for `paging`).
    listing: usize,
    /// The `history` requests not answered yet, each room's matched to
    /// its pages. While a page to be shown is on its way, another
    /// `/history` there would ask from the same place again.
    pages: pages::Pages,
    /// Rooms whose last page of history (paging back from what is shown)
    /// said there is nothing older.
    no_older: BTreeSet<String>,
    /// Rooms with messages missing from what is shown (see [`Gap`]), one
    /// gap a reconnect, the newest last (filled first).
    gaps: BTreeMap<String, Vec<Gap>>,
    /// Rooms entered on this connection whose online list came whole
    /// (our own presence there came after it): the core's roster of each
    /// is who is there (it empties them all on connecting again).
    entered_here: BTreeSet<String>,
    /// Rooms entered afresh whose `entered #room` line waits for the rest
    /// of their online list (`online` frames after a big room's
    /// `entered`), with the first names it shows: said at the room's
    /// next event, when the list is whole and its count true.
    announcing: BTreeMap<String, Vec<String>>,
    /// Rooms whose online list reached the server's presence fan-out cap
    /// since they were last entered: someone's coming or going may have
    /// been sent to nobody there since, so the list may be behind even
    /// once it is smaller again (carried into `away` at a loss).
    crowded: BTreeSet<String>,
    /// Who was in each room when the connection was lost, kept until who
    /// came and went there is said (a reconnect lost again before its
    /// summary keeps the list of the first loss): the replay brings
    /// messages only, so who came and went meanwhile is told from this
    /// and who is there then.
    away: BTreeMap<String, Away>,
    /// Leavings not said yet (see [`Mode::hold_departures`]), oldest
    /// first.
    departures: VecDeque<Departure>,
    /// The latest time a `handle_*` call gave (monotonic milliseconds).
    now: u64,
    /// Requests for older messages the full-screen client made by
    /// scrolling up (see [`Session::handle_older`]) taken so far.
    older_taken: u64,
    /// What the full-screen client said it let go of (see
    /// [`Session::handle_let_go`]), taken so far.
    let_go_taken: u64,
}

impl Session {
    /// A session that will join as `nick` and enter `rooms`, the first
    /// being current. `id_prefix` starts every message id (make it differ
    /// between runs).
    pub fn new(nick: &str, rooms: &[String], id_prefix: &str, max_frame_bytes: usize) -> Self {
        Session {
            client: Client::new(nick, rooms, id_prefix),
            current: rooms.first().map(|r| r.to_ascii_lowercase()),
            previous: None,
            query: None,
            every_room_named: false,
            listed_rooms: Vec::new(),
            joined_before: false,
            resume: None,
            replaying: BTreeMap::new(),
            oldest: BTreeMap::new(),
            paged: BTreeMap::new(),
            seen: BTreeMap::new(),
            eras: 0,
            parted: VecDeque::new(),
            part_notes: Vec::new(),
            refused_current: None,
            fatal: None,
            refused_rooms: BTreeSet::new(),
            input_done: false,
            leaving: false,
            exited: false,
            max_frame_bytes,
            own_max_frame_bytes: max_frame_bytes,
            mode: Mode::default(),
            ledger: Ledger::new(),
            offline: absent::OfflineMessages::new(),
            absent: Vec::new(),
            quotes: Vec::new(),
            rejoined_at: None,
            typed_offline: false,
            held: VecDeque::new(),
            deferred: None,
            out: VecDeque::new(),
            entering: rooms.iter().map(|r| r.to_ascii_lowercase()).collect(),
            listing: 0,
            pages: pages::Pages::default(),
            no_older: BTreeSet::new(),
            gaps: BTreeMap::new(),
            entered_here: BTreeSet::new(),
            announcing: BTreeMap::new(),
            crowded: BTreeSet::new(),
            away: BTreeMap::new(),
            departures: VecDeque::new(),
            now: 0,
            older_taken: 0,
            let_go_taken: 0,
        }
    }

    /// Whether the shell may read input as far as rooms go: always at a
    /// terminal; with [`Mode::wait_for_rooms`], once every room being
    /// entered (asked with `/join`, or by the core at a join or a
    /// reconnect) has been refused or entered with its replay over, and
    /// every `/history` and `/rooms` asked has been answered (so a second
    /// `/history` pages back from where the first one's answer stopped,
    /// not from the same place), and a line that changes the current room
    /// has been handled after the lines before it were answered. A lost
    /// connection settles the rooms and pages (the answers went with it).
    /// So the lines a pipe gets come in the same order, with the same
    /// `[#room]` marks, at every run.
    pub fn settled(&self) -> bool {
        !self.mode.wait_for_rooms
            || (self.entering.is_empty()
                && self.replaying.is_empty()
                && self.deferred.is_none()
                && !self.pages.any_waiting()
                && self.listing == 0)
    }

    /// Whether input may be read while the connection is made again:
    /// not with [`Mode::wait_for_rooms`], whose lines wait for the
    /// answers before them ([`Session::settled`]), and the new connection
    /// enters the rooms again first; a person's lines are held meanwhile.
    pub fn reads_while_dialing(&self) -> bool {
        !self.mode.wait_for_rooms
    }

    /// Read input and end as `mode` says (call before anything else).
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    /// Ping a silent server after `ping_after`, and call the connection
    /// lost when nothing answered for `dead_after` more (see
    /// [`Client::set_keepalive`]).
    pub fn set_keepalive(
        &mut self,
        ping_after: std::time::Duration,
        dead_after: std::time::Duration,
    ) {
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.client.set_keepalive(ms(ping_after), ms(dead_after));
    }

    /// Input lines read so far.
    pub fn lines_read(&self) -> u64 {
        self.ledger.lines()
    }

    /// Input lines reported refused, or unanswered when the session stopped.
    pub fn lines_failed(&self) -> u64 {
        self.ledger.failures()
    }

    /// Of [`lines_failed`](Session::lines_failed), those unconfirmed: they
    /// may or may not have been delivered.
    pub fn lines_unconfirmed(&self) -> u64 {
        self.ledger.unconfirmed_lines()
    }

    /// Of [`lines_failed`](Session::lines_failed), the commands (an
    /// unknown one, `/join` of a room refused, ...): lines that were not
    /// messages, so not among those undelivered.
    pub fn commands_failed(&self) -> u64 {
        self.ledger.command_failures()
    }

    /// The rooms the server refused to let us in, by name.
    pub fn rooms_refused(&self) -> &BTreeSet<String> {
        &self.refused_rooms
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

    /// The nickname `/query` sends every line to, if any.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
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
    /// ([`Line::Msg`] and [`Line::Presence`] always carry `room`), for a
    /// screen that files lines by room and shows the current one (so
    /// switching to a room already entered adds no line).
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

    /// The rooms asked to enter (at start or with `/join`) and not
    /// answered yet.
    pub fn entering(&self) -> impl Iterator<Item = &str> + '_ {
        self.entering.iter().map(String::as_str)
    }

    /// The rooms the last `/rooms` listed.
    pub fn listed_rooms(&self) -> &[String] {
        &self.listed_rooms
    }

    /// Who is in `room`, as far as we know.
    pub fn roster(&self, room: &str) -> Vec<&str> {
        self.client.roster(room)
    }

    /// Whether `/history` in `room` would fetch something now: joined, no
    /// page of it on its way, and messages missing after a reconnect, or
    /// no page having said there is nothing older.
    pub fn pages_back(&self, room: &str) -> bool {
        self.client.is_joined()
            && !self.pages.waiting(room)
            && (self.gaps.contains_key(room) || !self.no_older.contains(room))
    }

    /// Whether a page of `room`'s history to be shown is on its way.
    pub fn page_waiting(&self, room: &str) -> bool {
        self.pages.waiting(room)
    }

    /// The full-screen client's requests for older messages (scrolling
    /// up past the oldest line) taken so far: one made and not counted
    /// here yet is on its way to the session.
    pub fn older_taken(&self) -> u64 {
        self.older_taken
    }

    /// The full-screen client's word of what its cap let go
    /// ([`Session::handle_let_go`]) taken so far: what it said and is
    /// not counted here yet is on its way to the session.
    pub fn let_go_taken(&self) -> u64 {
        self.let_go_taken
    }

    /// A number that changes whenever [`Session::roster`] of `room` may
    /// have (chatproto's `Client::roster_version`).
    pub fn roster_version(&self, room: &str) -> u64 {
        self.client.roster_version(room)
    }

    /// Whether a connection of this run was ever let in (a `welcome`):
    /// the address speaks chatproto, whatever a failed attempt says.
    pub fn ever_joined(&self) -> bool {
        self.joined_before
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

    /// Whether the lines handed from now on were typed while the
    /// connection was down (read during a reconnect's handshake, handed
    /// once it is done): a private or group message among them refused
    /// `unknown_nick` just after the reconnect waits for its people, as
    /// one typed while offline does.
    pub fn set_typed_offline(&mut self, typed_offline: bool) {
        self.typed_offline = typed_offline;
    }

    /// How many of this session's message ids the server remembers: at
    /// most this many may wait for their echo (see `Client::id_window`).
    pub fn id_window(&self) -> usize {
        self.client.id_window()
    }

    /// Whether input has ended (EOF or `/quit`).
    pub fn input_done(&self) -> bool {
        self.input_done
    }

    /// The fatal error the server sent before it closed this connection.
    pub fn take_fatal(&mut self) -> Option<(ErrorCode, String)> {
        self.fatal.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::testkit::*;
    use chatproto::RoomInfo;

    /// Whether `/history` would fetch something (the full-screen client
    /// asks for older messages when scrolled up past the oldest line):
    /// not while a page is on its way, nor once one said there is nothing
    /// older (until `/clear`), nor while offline.
    #[test]
    fn paging_back_stops_at_the_oldest_message() {
        let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
        s.name_every_room();
        s.handle_connected(0);
        drain(&mut s);
        frame(&mut s, welcome("alice", false));
        frame(&mut s, entered("lobby", 0, &["alice"], false));
        drain(&mut s);
        assert!(s.pages_back("lobby"));
        line(&mut s, "/history 5");
        assert!(!s.pages_back("lobby"), "a page on its way");
        let page = replayed(msg("lobby", 9, "bob", &[], "m9"), None);
        frame(&mut s, ServerFrame::history("lobby", vec![page], true));
        assert!(s.pages_back("lobby"));
        line(&mut s, "/history 5");
        frame(&mut s, ServerFrame::history("lobby", vec![], false));
        assert!(!s.pages_back("lobby"), "nothing older");
        line(&mut s, "/clear");
        assert!(s.pages_back("lobby"), "paging from the newest again");
        // The full-screen client is told where the start is: a mark at
        // the top, then the note (at the bottom).
        line(&mut s, "/history 5");
        s.handle_frame(0, ServerFrame::history("lobby", vec![], false));
        let said: Vec<Action> = std::iter::from_fn(|| s.poll()).collect();
        assert!(
            matches!(&said[..], [Action::Print(Line::HistoryStart { room, .. }), Action::Print(Line::HistoryNote { .. }), ..] if room == "lobby"),
            "{said:?}"
        );
        s.handle_disconnected();
        assert!(!s.pages_back("lobby"), "offline");
    }

    /// Paging back to where the server's kept history starts, when its
    /// retention deleted older messages, says they are no longer kept,
    /// not that nothing is older: in the note of the page, and in the
    /// full-screen client's mark at the top. From a server that does not
    /// say where a page stops, the room's `entered` tells.
    #[test]
    fn paging_back_to_what_retention_left_says_older_messages_are_gone() {
        let entered_at = |s: &mut Session, oldest: u64| {
            let f = ServerFrame::entered("lobby", "e1", 1000, oldest, vec!["alice".into()], false);
            frame(s, f);
            frame(s, presence("lobby", 1001, "alice", true));
        };
        let mut s = welcomed(&["lobby"]);
        entered_at(&mut s, 1);
        frame(&mut s, msg("lobby", 1002, "bob", &[], "live"));
        line(&mut s, "/history 5");
        let m903 = || replayed(msg("lobby", 903, "bob", &[], "m903"), None);
        // Retention ran since alice entered: the page says so.
        let out = frame(&mut s, ServerFrame::history_to("lobby", vec![m903()], 903));
        assert_eq!(
            out.lines,
            [
                "[history] bob: m903",
                "* 1 older message of #lobby; older ones are no longer kept"
            ]
        );
        line(&mut s, "/history 5");
        let out = frame(&mut s, ServerFrame::history_to("lobby", vec![], 903));
        assert_eq!(out.lines, ["* older messages of #lobby are no longer kept"]);
        // The room's real start is the start.
        let mut s = welcomed(&["lobby"]);
        entered_at(&mut s, 1);
        line(&mut s, "/history 5");
        let out = frame(&mut s, ServerFrame::history_to("lobby", vec![], 1));
        assert_eq!(out.lines, ["* no older messages in #lobby"]);
        // An older server's page: the `entered` said 903.
        let mut s = welcomed(&["lobby"]);
        s.name_every_room();
        entered_at(&mut s, 903);
        drain(&mut s);
        line(&mut s, "/history 5");
        s.handle_frame(0, ServerFrame::history("lobby", vec![m903()], false));
        let said: Vec<Action> = std::iter::from_fn(|| s.poll()).collect();
        let start = said.iter().find_map(|a| match a {
            Action::Print(Line::HistoryStart { older_gone, .. }) => Some(*older_gone),
            _ => None,
        });
        assert_eq!(start, Some(true), "{said:?}");
        assert_eq!(
            crate::render::history_start("lobby", true),
            "older messages of #lobby are no longer kept"
        );
    }

    /// The full-screen client's `/clear` (typed, or its way back to the
    /// newest messages of a room read back past the lines it keeps,
    /// which asks `/history` right after): a page asked before it came
    /// after it and was shown, paging on from a view that is gone, and
    /// the `/history` after it was not sent (a page on its way); with
    /// messages missing after a reconnect, it asked into that gap, not
    /// for the newest.
    #[test]
    fn a_page_asked_before_a_clear_is_not_shown_after_it() {
        let mut s = joined(&["lobby"]);
        s.name_every_room();
        frame(&mut s, msg("lobby", 30, "bob", &[], "m30"));
        // A reconnect whose replay leaves 31 to 39 out.
        back(&mut s, 10);
        lines_of(
            &mut s,
            [
                entered("lobby", 41, &["alice"], false),
                replayed(msg("lobby", 40, "bob", &[], "m40"), None),
                presence("lobby", 41, "alice", true),
            ],
        );
        let out = line(&mut s, "/history 5");
        assert_eq!(out.sent, [ClientFrame::history("lobby", Some(40), Some(6))]);
        line(&mut s, "/clear");
        let out = line(&mut s, "/history 50");
        assert_eq!(
            out.sent,
            [ClientFrame::history("lobby", None, Some(50))],
            "{:?}",
            out.lines
        );
        let old: Vec<ServerFrame> = (35..40)
            .map(|q| replayed(msg("lobby", q, "bob", &[], &format!("m{q}")), None))
            .collect();
        let shown = frame(&mut s, ServerFrame::history("lobby", old, true)).lines;
        assert_eq!(shown, [""; 0], "asked before the /clear");
        let newest: Vec<ServerFrame> = [30, 40]
            .into_iter()
            .map(|q| replayed(msg("lobby", q, "bob", &[], &format!("m{q}")), None))
            .collect();
        let shown = frame(&mut s, ServerFrame::history("lobby", newest, true)).lines;
        assert_eq!(
            shown[..2],
            ["[#lobby] [history] bob: m30", "[#lobby] [history] bob: m40"],
            "{shown:?}"
        );
        let out = line(&mut s, "/history 5");
        assert_eq!(out.sent, [ClientFrame::history("lobby", Some(30), Some(5))]);
    }

    /// A page asked before `/clear` (not to be shown) and one asked after
    /// it, then a frame that could not be read: the doubt gave both up
    /// and marked the room once, so the first page to come, the one
    /// asked before `/clear`, was shown as the late answer, and the
    /// newest messages asked after `/clear` were not. Each page given up
    /// is now matched in order, shown or not as its request was.
    #[test]
    fn after_a_doubt_the_newest_page_asked_after_a_clear_is_the_one_shown() {
        let mut s = lobby_shown_30_to_39(true);
        line(&mut s, "/history 5");
        line(&mut s, "/clear");
        let out = line(&mut s, "/history 50");
        assert_eq!(out.sent, [ClientFrame::history("lobby", None, Some(50))]);
        s.handle_bad_frame("unknown frame type");
        drain(&mut s);
        let old: Vec<ServerFrame> = (25..30)
            .map(|q| replayed(msg("lobby", q, "bob", &[], &format!("m{q}")), None))
            .collect();
        let shown_old = frame(&mut s, ServerFrame::history("lobby", old, true)).lines;
        let newest: Vec<ServerFrame> = (30..40)
            .map(|q| replayed(msg("lobby", q, "bob", &[], &format!("m{q}")), None))
            .collect();
        let shown_new = frame(&mut s, ServerFrame::history("lobby", newest, true)).lines;
        assert!(
            shown_old.is_empty() && !shown_new.is_empty(),
            "before /clear's page: {shown_old:?}; after: {shown_new:?}"
        );
    }

    /// The same, the frame that could not be read being the answer to
    /// the page asked before `/clear`: the newest page, asked after it,
    /// was taken for that one's answer and not shown (and the same
    /// `/history` had to be typed again). A page holding a message as
    /// new as where a request paged back from cannot be that request's
    /// answer: it is the next one's.
    #[test]
    fn a_doubt_that_answered_the_page_before_a_clear_leaves_the_newest_shown() {
        let mut s = lobby_shown_30_to_39(true);
        let out = line(&mut s, "/history 5");
        assert_eq!(out.sent, [ClientFrame::history("lobby", Some(30), Some(5))]);
        line(&mut s, "/clear");
        line(&mut s, "/history 50");
        // The page of 25 to 29, unreadable.
        s.handle_bad_frame("unknown frame type");
        drain(&mut s);
        let newest: Vec<ServerFrame> = (30..40)
            .map(|q| replayed(msg("lobby", q, "bob", &[], &format!("m{q}")), None))
            .collect();
        let shown = frame(&mut s, ServerFrame::history("lobby", newest, true)).lines;
        assert!(shown.len() >= 2, "{shown:?}");
        assert_eq!(
            shown[..2],
            ["[#lobby] [history] bob: m30", "[#lobby] [history] bob: m31"],
            "{shown:?}"
        );
        // And the next pages back from it.
        let out = line(&mut s, "/history 5");
        assert_eq!(out.sent, [ClientFrame::history("lobby", Some(30), Some(5))]);
    }

    /// At a terminal, a second `/history` typed before the first page
    /// came would ask from the same place: it says the page is on its
    /// way instead, and the next one pages back from where it stopped.
    #[test]
    fn a_history_typed_while_a_page_comes_waits_for_it() {
        let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
        s.handle_connected(0);
        drain(&mut s);
        frame(&mut s, welcome("alice", false));
        frame(&mut s, entered("lobby", 0, &["alice"], false));
        drain(&mut s);
        let out = line(&mut s, "/history 5");
        assert_eq!(out.sent, [ClientFrame::history("lobby", None, Some(5))]);
        let out = line(&mut s, "/history 5");
        assert!(out.sent.is_empty(), "{:?}", out.sent);
        assert!(
            out.lines.iter().any(|l| l.contains("on their way")),
            "{:?}",
            out.lines
        );
        let page = replayed(msg("lobby", 9, "bob", &[], "m9"), None);
        frame(&mut s, ServerFrame::history("lobby", vec![page], true));
        let out = line(&mut s, "/history 5");
        assert_eq!(out.sent, [ClientFrame::history("lobby", Some(9), Some(5))]);
        // Refused (not in the room any more, say): over too.
        frame(
            &mut s,
            ServerFrame::error_v2(
                chatproto::ErrorCode::NotInRoom,
                "you are not in #lobby",
                None,
                Some("lobby".into()),
                None,
            ),
        );
        drain(&mut s);
        assert!(!s.pages.waiting("lobby"));
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
        frame(&mut s, presence("lobby", 1, "alice", true));
        assert!(!s.settled(), "#rust is not answered yet");
        frame(&mut s, entered("rust", 0, &["alice", "bob"], false));
        assert!(!s.settled(), "#rust's replay is not over");
        frame(&mut s, presence("rust", 1, "alice", true));
        assert!(s.settled());
        // A /history waits for its page: the next one pages back from
        // where this one stopped, not from the same place again.
        let out = line(&mut s, "/history 5");
        assert_eq!(out.sent, [ClientFrame::history("lobby", None, Some(5))]);
        assert!(!s.settled(), "the page is not answered yet");
        let page = replayed(msg("lobby", 9, "bob", &[], "m9"), None);
        frame(&mut s, ServerFrame::history("lobby", vec![page], true));
        assert!(s.settled());
        let out = line(&mut s, "/history 5");
        assert_eq!(out.sent, [ClientFrame::history("lobby", Some(9), Some(5))]);
        frame(&mut s, ServerFrame::history("lobby", vec![], false));
        // /rooms alike.
        line(&mut s, "/rooms");
        assert!(!s.settled());
        frame(&mut s, ServerFrame::rooms(vec![]));
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
        assert!(!s.settled(), "the rooms are entered again first");
        for room in ["lobby", "rust", "zig", "odin"] {
            frame(&mut s, entered(room, 1, &["alice"], true));
            frame(&mut s, presence(room, 2, "alice", true));
        }
        assert!(s.settled());
        line(&mut s, "/join thor");
        assert!(!s.settled());
        line(&mut s, "/part thor");
        assert!(s.settled());
        frame(&mut s, entered("thor", 0, &["alice"], false));
        assert!(s.settled());
    }

    /// alice reading a pipe, joined and in the lobby, its replay over.
    fn piped_in_lobby() -> Session {
        let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
        s.set_mode(Mode {
            wait_for_rooms: true,
            ..Mode::default()
        });
        s.handle_connected(0);
        frame(&mut s, welcome("alice", false));
        frame(&mut s, entered("lobby", 0, &["alice"], false));
        frame(&mut s, presence("lobby", 1, "alice", true));
        s
    }

    /// Reading a pipe after a reconnect, input waits for every room to be
    /// entered again, also those the core sends later, paced under the
    /// server's rate.
    #[test]
    fn a_pipe_waits_for_rooms_entered_later_under_the_rate() {
        let mut s = Session::new(
            "alice",
            &["lobby".into(), "rust".into(), "go".into()],
            "t-",
            65_536,
        );
        s.set_mode(Mode {
            wait_for_rooms: true,
            ..Mode::default()
        });
        s.handle_connected(0);
        frame(&mut s, welcome("alice", false));
        for room in ["lobby", "rust", "go"] {
            frame(&mut s, entered(room, 0, &["alice"], false));
            frame(&mut s, presence(room, 1, "alice", true));
        }
        assert!(s.settled());
        s.handle_disconnected();
        s.handle_connected(10);
        let slow = chatproto::Limits::new(65_536, 64, 500, 200).with_rate(1, 2);
        let out = frame(
            &mut s,
            ServerFrame::welcome(
                "alice",
                0,
                vec![],
                Some("token".into()),
                Some(true),
                Some(slow),
            ),
        );
        let enters = out
            .sent
            .iter()
            .filter(|f| matches!(f, ClientFrame::Enter { .. }))
            .count();
        assert!(enters < 3, "some enters wait for the rate: {:?}", out.sent);
        frame(&mut s, entered("lobby", 1, &["alice"], true));
        frame(&mut s, presence("lobby", 2, "alice", true));
        assert!(!s.settled(), "#rust and #go are not entered again yet");
    }

    /// Reading a pipe, a line that changes the current room waits for the
    /// echoes of the messages before it: each is shown against the room
    /// that was current when it was written (no `[#rust]` on a message
    /// typed in #rust), the same at every run however the echo and the
    /// next line race.
    #[test]
    fn a_part_read_from_a_pipe_waits_for_the_echoes_before_it() {
        let mut s = piped_in_lobby();
        line(&mut s, "/join rust");
        frame(&mut s, entered("rust", 0, &["alice"], false));
        frame(&mut s, presence("rust", 1, "alice", true));
        assert!(s.settled());
        let id = the_id(&line(&mut s, "hi rust").sent);
        assert!(s.settled(), "a message does not stop the reading");
        let out = line(&mut s, "/part");
        assert!(out.sent.is_empty(), "not parted yet: {:?}", out.sent);
        assert!(out.lines.is_empty(), "{:?}", out.lines);
        assert!(!s.settled(), "no more input until it is handled");
        assert_eq!(s.current_room(), Some("rust"));
        let out = frame(&mut s, echo("rust", 2, "alice", "hi rust", &id));
        assert_eq!(
            out.lines,
            [
                "alice: hi rust",
                "* you left #rust",
                "* #lobby is now the current room"
            ]
        );
        assert_eq!(out.sent, [ClientFrame::part("rust")]);
        assert!(s.settled());
    }

    /// At a terminal, `/part` is taken at once, but its `part` waits for
    /// the answers to the messages sent to the room before it: `you left`
    /// is said when it goes, below their echoes (it came above them, and
    /// entered again, the room showed its last message after the part).
    /// A room entered again before that was never left: nothing is said.
    #[test]
    fn you_left_is_said_when_the_part_goes_below_the_messages_before_it() {
        let mut s = joined(&["rust", "lobby"]);
        assert_eq!(s.current_room(), Some("rust"));
        let id = the_id(&line(&mut s, "last words").sent);
        let out = line(&mut s, "/part");
        assert!(out.sent.is_empty(), "not parted yet: {:?}", out.sent);
        assert!(
            !out.lines.iter().any(|l| l.contains("you left")),
            "{:?}",
            out.lines
        );
        let out = frame(&mut s, echo("rust", 2, "alice", "last words", &id));
        let said = |what: &str| out.lines.iter().position(|l| l.contains(what));
        let (msg, left) = (said("alice: last words"), said("you left #rust"));
        assert!(msg.is_some() && left > msg, "{:?}", out.lines);
        assert_eq!(out.sent, [ClientFrame::part("rust")]);

        let mut s = joined(&["rust", "lobby"]);
        let id = the_id(&line(&mut s, "still here").sent);
        line(&mut s, "/part");
        line(&mut s, "/join rust");
        let out = frame(&mut s, echo("rust", 2, "alice", "still here", &id));
        assert!(
            !out.lines.iter().any(|l| l.contains("you left")),
            "{:?}",
            out.lines
        );
        assert!(out.sent.is_empty(), "{:?}", out.sent);
    }

    #[test]
    fn a_page_on_its_way_is_waited_for_whatever_else_is_refused() {
        let mut s = piped_in_lobby();
        assert!(s.settled());
        line(&mut s, "/history 5");
        // A refusal that names another room (an entering, say) answers
        // no page: the pipe still waits for this one.
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
        assert!(!s.settled(), "the page of #lobby is not answered yet");
        // A frame that cannot be read may have been the answer: the pipe
        // goes on rather than wait for ever.
        s.handle_bad_frame("expected value at line 1 column 1");
        assert!(s.settled());
        // Likewise for a /rooms list.
        line(&mut s, "/rooms");
        assert!(!s.settled());
        s.handle_bad_frame("expected value at line 1 column 1");
        assert!(s.settled());
    }

    /// A message refused in the room whose page is on its way answers
    /// no page: the pipe still waits for it, and does not leave before it
    /// is printed.
    #[test]
    fn a_refused_message_does_not_end_the_wait_for_its_rooms_page() {
        let mut s = piped_in_lobby();
        let id = the_id(&line(&mut s, "@nobody hi").sent);
        line(&mut s, "/history 5");
        s.handle_input_end();
        let out = frame(
            &mut s,
            ServerFrame::error_v2(
                ErrorCode::UnknownNick,
                "no one called nobody is in #lobby",
                Some(id),
                Some("lobby".into()),
                None,
            ),
        );
        assert!(!s.settled(), "the page of #lobby is not answered yet");
        assert!(!out.other.contains(&Action::Exit), "{:?}", out.other);
        let page = vec![replayed(msg("lobby", 1, "bob", &[], "old"), None)];
        let out = frame(&mut s, ServerFrame::history("lobby", page, false));
        assert!(out.lines.contains(&"[history] bob: old".to_owned()));
        assert!(out.other.contains(&Action::Exit), "{:?}", out.other);
    }

    /// What was seen is kept for a few epochs of a room's history, not
    /// for every one a server ever gave it.
    #[test]
    fn what_was_seen_is_kept_for_a_few_epochs_only() {
        let mut seen = Seen::default();
        for e in 0..10 {
            seen.enter_epoch(&format!("e{e}"));
            assert!(seen.note(1));
        }
        assert_eq!(seen.earlier.len(), Seen::EPOCHS);
        seen.enter_epoch("e8");
        assert!(!seen.note(1), "e8 is kept");
        seen.enter_epoch("e0");
        assert!(seen.note(1), "e0 is not");
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
}
