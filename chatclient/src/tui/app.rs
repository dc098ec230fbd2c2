//! The full-screen client's state, with no I/O: the screen thread
//! (`mod.rs`) feeds it terminal events and lines from the network loop,
//! draws it (`draw.rs`) and carries out the [`Effect`]s it asks for. This
//! file holds the state and what a change of the session's does to it;
//! each other job has a file of its own under `app/`:
//!
//! - `keys.rs`: what each key and paste does;
//! - `given.rs`: lines handed to the session, and a refused one put back;
//! - `incoming.rs`: what each line from the session does, and where it goes;
//! - `pages.rs`: where a history page's lines go, and the lines of gaps;
//! - `place.rs`: a message's place among its room's, by seq;
//! - `older.rs`: reading back, older messages fetched ahead of the reader;
//! - `rows.rs`: rows counted from the bottom, a scrolled-back view kept;
//! - `cap.rs`: the most lines kept while following the newest;
//! - `bound.rs`: the most lines ever kept, and the rooms cut reading back;
//! - `stalled.rs`: lines waiting long for the server, said in the status bar;
//! - `fixture.rs`: what the tests build on.
//!
//! The message area shows the current room: each message and presence
//! line is filed under its room, and the client's own lines (errors,
//! `/who`, reconnecting) under the room that was current when they came;
//! in no room, under the no-room view, but for the server's notices and
//! what is said while the connection is down, which every view shows.
//! Other rooms count what arrived unread, and flag a mention of our
//! nickname or a message written to us only.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatproto::nick_key;
use crossterm::event::Event;

use super::complete::{Completion, Words};
use super::input_line::InputLine;
use super::theme::{NickColours, Theme};
use crate::input::{parse_line, Command};
use crate::render::{Kept, Line, Piece, Place};
use crate::session::text_bytes;
use bound::kept_while_cut;
use place::Slot;

mod bound;
mod cap;
#[cfg(test)]
mod fixture;
mod given;
mod incoming;
mod keys;
mod older;
mod pages;
mod place;
mod rows;
mod stalled;

/// Lines kept for scrolling back, all rooms together, while following
/// the newest (scrolled back, nothing is taken away from under the
/// reader, up to [`MAX_ENTRIES_EVER`]); the oldest go first.
pub const MAX_ENTRIES: usize = 20_000;

/// The most lines the message area ever holds, scrolled back or not.
/// Scrolled back, the area keeps what is on the screen and grows with
/// what comes, but a terminal left scrolled up on a busy room must not
/// grow the client without bound: past this, what is farthest from the
/// screen goes ([`App::trim`]), [`MAX_ENTRIES`] lines at once (one pass
/// over the area for so many lines, not one for each). Four times
/// [`MAX_ENTRIES`]: room to page back a long way, and for what comes
/// meanwhile, before anything goes.
pub const MAX_ENTRIES_EVER: usize = 4 * MAX_ENTRIES;

/// A paste of more lines than this asks before sending them.
pub const PASTE_ASK_OVER: usize = 5;

/// Rows one turn of the mouse wheel scrolls.
const WHEEL_ROWS: usize = 3;

/// What `/help` shows in the full-screen client: the commands, then the
/// keys.
pub const HELP: &[&str] = &[
    "hello: to everyone in the room; @bob hi or /msg bob hi: to bob only",
    "@bob @carol: hi (the colon ends the names): to bob and carol only",
    "/me waves: an action; /query bob: every line to bob, /query alone ends it",
    "/join ROOM, /part [ROOM], /rooms, /who, /history [N], /clear, /quit",
    "//text sends a line that starts with /; commands ignore case",
    "Enter sends; Tab completes nicks, #rooms and /commands (again: the next)",
    "Up/Down: lines typed before; Ctrl-A/E, Ctrl-W/U/K, Alt-B/F edit",
    "PgUp/PgDn or the mouse wheel scroll (going up fetches older ones); Esc: newest",
    "Ctrl-N/Ctrl-P: next/previous room; F2: who is online; Ctrl-L redraws",
    "Ctrl-C clears the line, and on an empty line twice leaves; Ctrl-D leaves",
];

/// What the screen shows of the session, sent after each change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct State {
    /// Our nickname.
    pub nick: String,
    /// The prompt: `alice #rust> `, or `alice #rust -> bob> ` in a query.
    pub prompt: String,
    /// The room typed lines go to.
    pub current: Option<String>,
    /// The rooms we are in.
    pub rooms: Vec<String>,
    /// Those of them asked to enter and not answered yet (entered, or
    /// refused).
    pub entering: Vec<String>,
    /// The rooms `/rooms` listed last (for Tab).
    pub listed_rooms: Vec<String>,
    /// Who is in the current room (shared with the network side, which
    /// makes it again only when it changes).
    pub roster: Arc<[String]>,
    /// `/query NICK`: lines without recipients go to this nickname only.
    pub query: Option<String>,
    /// Our messages the server has not acknowledged yet, oldest first.
    pub pending: Vec<Sending>,
    /// Connected and joined (not reconnecting).
    pub joined: bool,
    /// Input is over (`/quit`, Ctrl-D): leaving once all is acknowledged.
    pub leaving: bool,
    /// The most bytes a message's text may take (0: no limit known); a
    /// longer line is marked as it is typed.
    pub max_text: usize,
    /// Input lines the session has taken so far.
    pub lines_taken: u64,
    /// `/history` in the current room would fetch older messages now:
    /// scrolling up past its oldest line asks for them.
    pub older: bool,
    /// The screen's requests for older messages ([`Effect::Older`]) the
    /// session has taken so far.
    pub older_taken: u64,
    /// A page of the current room's history is on its way.
    pub paging: bool,
    /// The screen's word of what its cap let go ([`Effect::LetGo`]) the
    /// session has taken so far.
    pub let_go_taken: u64,
}

/// One of our messages not acknowledged yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sending {
    /// Its id (`chatproto::Unacknowledged::id`): which message it is,
    /// two of the same text told apart; empty for a line the session
    /// has not taken yet ([`App::waiting_messages`]).
    pub id: String,
    /// Its room.
    pub room: String,
    /// Its recipients (empty: everyone).
    pub to: Vec<String>,
    /// Its text.
    pub text: String,
    /// Whether it may have reached the server (see
    /// `chatproto::Unacknowledged::may_have_arrived`); `false`: typed
    /// while offline, it never left.
    pub may_have_arrived: bool,
}

/// A line in the message area.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `HH:MM`, local time of arrival.
    pub time: String,
    /// The room it is filed under; `None`: the view of no room (see
    /// `everywhere`).
    pub room: Option<String>,
    /// Of no room, and shown in every room's view too: a notice from the
    /// server, or what was said while the connection was down (the
    /// others said in no room are about being there).
    pub everywhere: bool,
    /// What it says.
    pub line: Line,
    /// It mentions us or was written to us only (and is not ours).
    pub mention: bool,
    /// We sent it.
    pub mine: bool,
    /// A note of ours filed in the room a `/join` not answered yet leads
    /// to (see [`App::kept_for_up`]): if the server refuses that room, it
    /// goes where the person is then.
    pub ahead: bool,
    /// A line of a page come while following the newest line: the cap
    /// takes neither it nor what is below it until the reader has
    /// scrolled back and come back to the newest (see [`App::trim`]).
    pub held: bool,
    /// The line saying its room's newer lines were not kept while the
    /// reader read back ([`MAX_ENTRIES_EVER`]): the bottom of the room's
    /// lines until it is shown from its newest again.
    pub cut: bool,
    /// The rows it takes, once laid out
    /// ([`entry_height`](super::format::entry_height)).
    pub height: super::format::Height,
    /// Which line it is, to find it again wherever it went (where a
    /// room's view was left, [`App::leave_view`]).
    pub id: u32,
}

/// Something for the screen thread to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Hand this line to the session, as typed.
    Send(String),
    /// Input is over (Ctrl-D on an empty line): leave once every message
    /// is acknowledged.
    End,
    /// Leave at once (Ctrl-C on an empty line, twice).
    LeaveNow,
    /// Ring the terminal's bell.
    Bell,
    /// Clear the terminal and draw everything again (Ctrl-L).
    Redraw,
    /// Fetch this many older messages of the current room, if there are
    /// any (scrolled up near its oldest line, [`App::read_up`]). Not a
    /// typed line: never put back into the input, nor brought back by Up.
    Older(u64),
    /// The cap let go of a room's oldest messages: what the screen still
    /// shows of the room. Told before the next line or request, which may
    /// page back from there.
    LetGo(String, Kept),
    /// A room's newest lines went while the reader read back (the room
    /// is cut, [`App::bound`]): its newest message still shown (`None`:
    /// none). What is missing after it (a reconnect's gap) is not fetched
    /// into, its newest fetched instead once the reader comes back to
    /// them; paging back goes on from its oldest line. Told before the
    /// next line or request, as [`Effect::LetGo`].
    Cut(String, Option<crate::render::Place>),
}

/// What arrived in a room that is not the current one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unread {
    /// Messages.
    pub count: usize,
    /// One of them mentions us or was written to us only.
    pub alert: bool,
}

/// A multi-line paste waiting for a yes or no.
#[derive(Debug, Clone)]
pub struct PasteQuestion {
    /// The lines it would send.
    pub lines: Vec<String>,
    /// What the input line holds after them.
    rest: String,
    /// Where in `rest` the paste ended (a byte index): a second paste
    /// while this one waits goes on from there.
    at: usize,
    /// The input line before the paste, for a no.
    before: (String, usize),
}

/// Where a page's next line goes: after the line before it (a page comes
/// oldest first).
#[derive(Debug)]
struct PageAt {
    /// The page's room.
    room: Option<String>,
    /// The index of its first line: its lines so far are from there to
    /// `at` (the bound takes all of them or none, [`App::bound`]).
    start: usize,
    /// The index its next line goes at, unless a message of the room
    /// there is older than that line.
    at: usize,
    /// The place of the message put last (`None`: not a message, or
    /// of no known place): the room's messages above `at` are not newer.
    after: Option<Place>,
    /// The rows of the lines below `at` in the view, as counted for the
    /// line put last, and how far the count went (it stops past the
    /// view's bottom): the page's next line, put at `at`, has the same
    /// lines below it.
    below: Option<(usize, usize)>,
}

/// The screen's state. See the [module docs](self).
#[derive(Debug)]
pub struct App {
    pub theme: Theme,
    bell: bool,
    pub state: State,
    pub entries: VecDeque<Entry>,
    /// While a /history page arrives: where its next line goes.
    page_at: Option<PageAt>,
    pub unread: BTreeMap<String, Unread>,
    /// Rows scrolled back from the newest (0: following new lines).
    pub scroll: usize,
    /// Rows the reader scrolled up past the oldest line, older ones on
    /// their way: the view goes up by them once they came ([`App::read_up`]).
    wanted_up: usize,
    /// The oldest line was in view at the last draw.
    pub at_top: bool,
    /// Lines that arrived in view while scrolled back, still below the
    /// screen ([`App::new_below_at_most`]).
    pub new_below: usize,
    /// Of `new_below`, those not kept (of a room cut, [`App::bound`]):
    /// below the screen until its newest are fetched.
    new_unkept: usize,
    pub input: InputLine,
    completion: Option<Completion>,
    pub paste: Option<PasteQuestion>,
    /// Ctrl-C was pressed on an empty line: once more leaves.
    pub ctrl_c_armed: bool,
    /// The side list of who is online (F2).
    pub show_names: bool,
    /// `/quit` or Ctrl-D: typing is over.
    pub quitting: bool,
    pub nicks: NickColours,
    /// The message area's width and height at the last draw.
    pub area: (usize, usize),
    effects: Vec<Effect>,
    /// Lines handed to the session that it has not taken yet, oldest
    /// first (it reads none while many messages wait for the server, or
    /// while a reconnect's handshake runs): shown as waiting.
    pub waiting: VecDeque<String>,
    /// Lines handed to the session in all.
    given: u64,
    /// Requests for older messages ([`Effect::Older`]) made in all: one
    /// the session has not taken yet ([`State::older_taken`]) is not made
    /// again.
    older_asked: u64,
    /// Rooms whose messages the cap let go since the session was last
    /// told ([`Effect::LetGo`]).
    let_go: std::collections::BTreeSet<String>,
    /// Rooms the session was told of and has not taken yet, with each
    /// one's number (the session counts them, [`State::let_go_taken`]).
    /// A page of one of them, or of one in `let_go`, was asked from
    /// below what the cap let go: shown above the room's oldest line
    /// kept, it would leave a hole; it is not shown (the session, told,
    /// pages back from that line).
    telling: VecDeque<(u64, String)>,
    /// [`Effect::LetGo`]s made in all.
    told: u64,
    /// Whether an entry may be [`Entry::held`].
    holding: bool,
    /// Rooms whose newest lines went while the reader read back, the
    /// area at [`MAX_ENTRIES_EVER`] ([`App::trim`]): their lines that
    /// come are counted (unread, new below), not kept, until the room is
    /// shown from its newest again ([`App::show_newest_of_cut`]).
    cut: std::collections::BTreeSet<String>,
    /// The room cut whose newest the reader asked for ([`App::want_newest`]),
    /// until the session can be asked.
    newest_of: Option<String>,
    /// Rooms cut, or cut and since left a gap by a reconnect, the session
    /// not told yet ([`Effect::Cut`]).
    cut_untold: std::collections::BTreeSet<String>,
    /// The latest lines handed to the session, by number (as the session
    /// counts its input lines), to put a refused message back.
    recent: VecDeque<(u64, String)>,
    /// The room the last Ctrl-N or Ctrl-P went to, while the session has
    /// not taken every line given (the next one goes on from there).
    switching: Option<String>,
    /// A refused line put back into the empty input, until a key types
    /// or deletes text (see [`App::handle_term`]).
    restored: Option<Restored>,
    /// Entries that are [`Entry::ahead`].
    ahead_notes: usize,
    /// Rooms whose `* entered #room` line was the last of their lines,
    /// with its [`Entry::id`]: their replay goes above it
    /// ([`App::above_entered_line`]).
    entered_last: BTreeMap<String, u32>,
    /// Where the reader left each room's view scrolled back.
    left_at: BTreeMap<Option<String>, rows::LeftAt>,
    /// How long the lines waiting for the server have waited ([`App::tick`]).
    stalled: stalled::Stalled,
    /// The last [`Entry::id`] given.
    last_id: u32,
    /// Entries looked at to place messages by seq (what a test of the
    /// placing's cost counts).
    #[cfg(test)]
    looked: std::cell::Cell<usize>,
}

/// How many of the latest lines handed to the session are kept to be put
/// back if refused: one refused after as many more were handed on (a long
/// paste) is not put back.
const RECENT_LINES: usize = 1_024;

/// A key typed within this long of a refused line being drawn back in
/// the input was typed before that could be seen (one typing on after
/// Enter).
const UNSEEN: Duration = Duration::from_secs(1);

/// A refused line put back into the empty input.
#[derive(Debug)]
struct Restored {
    line: String,
    /// What became of it, for the note if it is moved out of the input:
    /// `not sent`, `not confirmed`.
    why: &'static str,
    /// When it was first drawn (`None`: not yet, so not seen).
    drawn: Option<Instant>,
}

impl App {
    /// A screen drawn with `theme`, ringing the bell on mentions if `bell`.
    pub fn new(theme: Theme, bell: bool) -> App {
        App {
            theme,
            bell,
            state: State::default(),
            entries: VecDeque::new(),
            page_at: None,
            unread: BTreeMap::new(),
            scroll: 0,
            wanted_up: 0,
            at_top: false,
            new_below: 0,
            new_unkept: 0,
            input: InputLine::default(),
            completion: None,
            paste: None,
            ctrl_c_armed: false,
            show_names: false,
            quitting: false,
            nicks: NickColours::default(),
            area: (80, 22),
            effects: Vec::new(),
            waiting: VecDeque::new(),
            given: 0,
            older_asked: 0,
            let_go: Default::default(),
            telling: VecDeque::new(),
            told: 0,
            holding: false,
            cut: Default::default(),
            newest_of: None,
            cut_untold: Default::default(),
            recent: VecDeque::new(),
            switching: None,
            restored: None,
            ahead_notes: 0,
            entered_last: BTreeMap::new(),
            left_at: BTreeMap::new(),
            stalled: Default::default(),
            last_id: 0,
            #[cfg(test)]
            looked: Default::default(),
        }
    }

    /// What the screen thread must do, in order.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Whether `entry` belongs in the message area now.
    pub fn in_view(&self, entry: &Entry) -> bool {
        shown_in(entry, &self.state.current)
    }

    /// The session changed.
    pub fn set_state(&mut self, state: State) {
        let moved = state.current != self.state.current;
        if moved {
            // (A room cut is shown from its newest once current, unless
            // read back: below.)
            self.leave_view();
        }
        if let Some(current) = &state.current {
            self.unread.remove(current);
        }
        self.unread.retain(|room, _| state.rooms.contains(room));
        if state.joined {
            (self.left_at).retain(|r, _| r.as_ref().is_none_or(|r| state.rooms.contains(r)));
            // A room left: nothing is fetched into its gaps any more.
            self.drop_gap_lines(|room| !state.rooms.contains(room));
        }
        if !Arc::ptr_eq(&state.roster, &self.state.roster) {
            for nick in state.roster.iter() {
                self.nicks.colour(nick);
            }
        }
        if state.leaving {
            self.quitting = true;
        }
        while self
            .telling
            .front()
            .is_some_and(|(n, _)| *n <= state.let_go_taken)
        {
            self.telling.pop_front();
        }
        let taken_before = |app: &App| app.given - app.waiting.len() as u64;
        while taken_before(self) < state.lines_taken && self.waiting.pop_front().is_some() {}
        if self.waiting.is_empty() {
            // Every line taken: the state says where they led.
            self.switching = None;
        }
        let rooms_changed = state.joined && state.rooms != self.state.rooms;
        self.state = state;
        if rooms_changed && !self.cut.is_empty() {
            self.say_rooms_cut_left();
        }
        self.place_ahead_notes();
        if moved {
            if !self.back_to_view() {
                self.want_newest();
            }
        } else {
            // Asked before the session could ask for it.
            self.show_newest_of_cut();
        }
    }
}
/// Whether two nicknames are one person.
pub fn same_nick(a: &str, b: &str) -> bool {
    nick_key(a) == nick_key(b)
}

/// Whether `text` names `nick` as a word of its own, in any spelling of
/// the same person (as the server tells people apart, `nick_key`: `hi
/// alice`, `ALICE: look`, `@Alice`, `STRASSE` for Straße), not `malice`,
/// nor `alice_b` or `alice-b` (other nicknames: `_` and `-` join a word,
/// as in most).
pub fn mentions(text: &str, nick: &str) -> bool {
    if nick.is_empty() {
        return false;
    }
    let text = nick_key(text);
    let nick = nick_key(nick);
    let mut from = 0;
    while let Some(i) = text[from..].find(&nick) {
        let start = from + i;
        let end = start + nick.len();
        let in_word = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
        let clear_before = text[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !in_word(c));
        let clear_after = text[end..].chars().next().is_none_or(|c| !in_word(c));
        if clear_before && clear_after {
            return true;
        }
        from = start + text[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// Whether `entry` belongs in the message area while `current` is the
/// current room: in no room, every line does.
pub fn shown_in(entry: &Entry, current: &Option<String>) -> bool {
    match (&entry.room, current) {
        (Some(room), Some(current)) => room == current,
        (None, Some(_)) => entry.everywhere,
        (_, None) => true,
    }
}

/// What the screen's tests (here, in `draw` and in `cap_paging`) build
/// their logs of.
#[cfg(test)]
pub(crate) mod test_lines {
    use super::{Line, Place};

    /// bob's message `text` in `room`, `seq` of the history `era`; a
    /// line of a history page if `page`.
    pub(crate) fn placed_in(room: &str, text: &str, era: u64, seq: u64, page: bool) -> Line {
        Line::Msg {
            room: Some(room.into()),
            history: page,
            page,
            missed: false,
            from: "bob".into(),
            to: vec![],
            text: text.into(),
            ts: 0,
            place: Place { era, seq },
        }
    }

    /// bob's message `text` in #lobby at `place`, missing after a
    /// reconnect, as a page of /history brings it.
    pub(crate) fn missing_at(text: &str, place: Place) -> Line {
        Line::Msg {
            room: Some("lobby".into()),
            history: true,
            page: true,
            missed: true,
            from: "bob".into(),
            to: vec![],
            text: text.into(),
            ts: 0,
            place,
        }
    }

    /// A repeatable random source from `seed`: each call `rnd(n)` gives a
    /// number below `n`.
    pub(crate) fn rng(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut r = seed;
        move |n| {
            r = r
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (r >> 33) % n
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_whole_words() {
        assert!(mentions("hi alice", "alice"));
        assert!(mentions("ALICE: look", "alice"));
        assert!(mentions("@alice!", "Alice"));
        assert!(!mentions("malice", "alice"));
        assert!(!mentions("alices", "alice"));
        assert!(mentions("malice and alice", "alice"));
        assert!(mentions("héllo José", "josé"));
        assert!(!mentions("ask alice_b", "alice"));
        assert!(!mentions("alice-b said", "alice"));
        // As the server tells people apart (its nick_key), not by lower
        // case alone.
        assert!(mentions("STRASSE: look", "Straße"));
        assert!(mentions("thanks strasse.", "Straße"));
        assert!(!mentions("strassen", "Straße"));
        assert!(mentions("JOSE\u{301}, look", "José"));
        assert!(mentions("thanks, alice.", "alice"));
        assert!(mentions("alice_b or alice?", "alice"));
    }
}
