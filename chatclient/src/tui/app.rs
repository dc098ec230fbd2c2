//! The full-screen client's state and what each incoming line does to it
//! (each key and paste: `app/keys.rs`; what goes past the most lines it
//! holds, read back: `app/bound.rs`), with no I/O: the screen thread
//! (`mod.rs`) feeds it terminal events and lines from the network loop,
//! draws it (`draw.rs`) and carries out the [`Effect`]s it asks for.
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
mod keys;
mod older;
mod place;
mod rows;

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
    /// Its room.
    pub room: String,
    /// Its recipients (empty: everyone).
    pub to: Vec<String>,
    /// Its text.
    pub text: String,
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
    /// Where the reader left each room's view scrolled back.
    left_at: BTreeMap<Option<String>, rows::LeftAt>,
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
            left_at: BTreeMap::new(),
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

    /// Hand `line` to the session; it shows as waiting until taken.
    fn give(&mut self, line: String) {
        // It may page back (`/history`) where the cap let lines go.
        self.tell_let_go();
        self.given += 1;
        self.waiting.push_back(line.clone());
        if self.recent.len() == RECENT_LINES {
            self.recent.pop_front();
        }
        self.recent.push_back((self.given, line.clone()));
        self.effects.push(Effect::Send(line));
    }

    /// Input line `number` was refused (a message by the server, an
    /// unknown nickname, say; a command by the client): back in the
    /// input to be mended, if the input is empty. What is being typed is
    /// never replaced nor added to: the line is then the next that Up
    /// brings back, and a line says so; so it is if keys typing on come
    /// before it could be seen (see [`App::handle_term`]).
    pub fn refused(&mut self, number: u64) {
        self.put_back(number, "not sent");
    }

    /// Input line `number` was a message the connection lost before the
    /// server confirmed it, which the server's new session cannot tell
    /// of: not sent again (it may have arrived), and put back as a
    /// refused line is, to be sent again if it did not.
    pub fn unconfirmed(&mut self, number: u64) {
        self.put_back(number, "not confirmed");
    }

    /// Input line `number` back in the input, or the next Up brings it
    /// (see [`App::refused`]); `why` is said in the note then.
    fn put_back(&mut self, number: u64, why: &'static str) {
        let Some(at) = self.recent.iter().position(|(n, _)| *n == number) else {
            return;
        };
        let (_, line) = self.recent.remove(at).unwrap_or_default();
        if self.input.text() == line {
            // Kept there already (too long to send).
            return;
        }
        if self.input.is_empty() && self.paste.is_none() {
            self.input.set(line.clone(), None);
            self.restored = Some(Restored {
                line,
                why,
                drawn: None,
            });
        } else {
            self.kept_for_up(line, why);
        }
    }

    /// The screen was drawn at `now`: a refused line put back into the
    /// input is in sight from then on.
    pub fn drawn(&mut self, now: Instant) {
        if let Some(r) = &mut self.restored {
            r.drawn.get_or_insert(now);
        }
    }

    /// The refused `line` is not in the input: the next Up brings it back.
    /// Said in the room the user is in, or is going to (a Ctrl-N not
    /// taken yet: the line would be filed in the room being left). A room
    /// a `/join` enters may be refused: the note is then moved to the room
    /// current after all ([`App::place_ahead_notes`]).
    fn kept_for_up(&mut self, line: String, why: &str) {
        self.input.recall_last(&line);
        let time = chrono::Local::now().format("%H:%M").to_string();
        let here = self.room_ahead();
        let ahead = here
            .as_ref()
            .is_some_and(|r| !self.state.rooms.contains(r) || self.state.entering.contains(r));
        self.add_line_in(
            Line::Info(format!("{why}; Up brings it back: {line}")),
            time,
            here,
        );
        if ahead {
            if let Some(e) = self.entries.back_mut() {
                e.ahead = true;
                self.ahead_notes += 1;
            }
        }
    }

    /// Notes filed in a room a `/join` led to ([`Entry::ahead`]): once
    /// the session took that `/join` and the server answered it, they
    /// stay in the room entered; in one refused (not ours), they go to
    /// the room current now, where the person is.
    fn place_ahead_notes(&mut self) {
        if self.ahead_notes == 0 {
            return;
        }
        // (Counted again: the cap or a /clear may have taken some.)
        let mut left = 0;
        for i in 0..self.entries.len() {
            let e = &self.entries[i];
            let Some(room) = e.room.clone().filter(|_| e.ahead) else {
                continue;
            };
            let joining = self
                .waiting
                .iter()
                .any(|l| matches!(parse_line(l), Command::Join(r) if r == room));
            // While not joined (a connection lost before the /join was
            // answered), the room is entered again, or refused, once back.
            if joining || self.state.entering.contains(&room) || !self.state.joined {
                left += 1;
                continue;
            }
            self.entries[i].ahead = false;
            if self.state.rooms.contains(&room) {
                continue;
            }
            self.entries[i].room = self.state.current.clone();
            let rows = self.rows_of(i..i + 1, usize::MAX);
            self.keep_view(i + 1, rows, true);
        }
        self.ahead_notes = left;
    }

    /// The room typed lines go to once the lines handed on are taken: a
    /// Ctrl-N, Ctrl-P or `/join` waiting among them leads there.
    fn room_ahead(&self) -> Option<String> {
        let joined = self.waiting.iter().rev().find_map(|l| match parse_line(l) {
            Command::Join(room) => Some(room),
            _ => None,
        });
        joined.or_else(|| self.state.current.clone())
    }

    /// Something happened on the terminal at `now` (as
    /// [`handle_event`](App::handle_event)). A key that types or deletes
    /// text (or sends), come before a refused line put back into the
    /// empty input was drawn or within [`UNSEEN`] of it, was meant for
    /// that empty line: it goes there, and the refused line is kept for
    /// Up (said), not joined by what is typed. Other keys act on the line
    /// as it is shown (Ctrl-C clears it, Ctrl-D leaves it be); one that
    /// moves the cursor or brings a line back shows the line was seen,
    /// and what is typed next edits it. Scrolling and switching rooms
    /// leave the input alone.
    pub fn handle_term(&mut self, event: Event, now: Instant) {
        // (Typing does nothing while leaving, or answers a paste's
        // question.)
        let typing = keys::types_text(&event) && !self.quitting && self.paste.is_none();
        if typing {
            if let Some(r) = self.restored.take() {
                let unseen = r
                    .drawn
                    .is_none_or(|at| now.saturating_duration_since(at) < UNSEEN);
                if unseen && self.input.text() == r.line {
                    self.input.clear();
                    self.kept_for_up(r.line, r.why);
                }
            }
        }
        let before = self
            .restored
            .as_ref()
            .map(|_| (self.input.text().to_owned(), self.input.cursor()));
        self.handle_event(event);
        if before.is_some_and(|(text, cursor)| {
            (text.as_str(), cursor) != (self.input.text(), self.input.cursor())
        }) {
            self.restored = None;
        }
    }

    /// The messages among the lines not taken yet, as they will be sent,
    /// oldest first: to the current room and the `/query` nickname as far
    /// as the screen knows, following a `/join` or `/query` typed before
    /// them.
    pub fn waiting_messages(&self) -> Vec<Sending> {
        let mut room = self.state.current.clone().unwrap_or_default();
        let mut query = self.state.query.clone();
        let mut out = Vec::new();
        for line in &self.waiting {
            match parse_line(line) {
                Command::Send { mut to, text } => {
                    if to.is_empty() {
                        to.extend(query.clone());
                    }
                    out.push(Sending {
                        room: room.clone(),
                        to,
                        text,
                    });
                }
                Command::Join(r) => room = r,
                Command::Query(nick) => query = nick,
                _ => {}
            }
        }
        out
    }

    /// Put a line of a page at `at` (the page's next line goes after
    /// it); nothing goes for it (the next line at the bottom makes the
    /// log [`MAX_ENTRIES`] again, see [`App::trim`]), but scrolled back
    /// past [`MAX_ENTRIES_EVER`]. A view
    /// scrolled back stays on what it shows, the line going above it, in
    /// it or below it (a page of a history begun anew goes below the
    /// earlier one's lines): what is below the line is counted for the
    /// page's first line, not laid out again for each.
    fn insert_page_line(&mut self, at: usize, mut entry: Entry) {
        let room = entry.room.clone();
        // Asked while following the newest (`/history` typed at the
        // bottom): kept for the reader to scroll up to, not taken by the
        // cap at the next line (it may be the oldest of all). Not the
        // messages missing after a reconnect, which nobody asked for.
        let asked = matches!(
            entry.line,
            Line::Msg {
                page: true,
                missed: false,
                ..
            } | Line::HistoryStart { .. }
        );
        if self.scroll == 0 && asked {
            entry.held = true;
            self.holding = true;
        }
        let after = match &entry.line {
            Line::Msg { place, .. } if place.era != 0 => Some(*place),
            _ => None,
        };
        let going_on = self
            .page_at
            .as_ref()
            .filter(|p| p.room == room && p.at == at);
        let known = going_on.and_then(|p| p.below);
        let start = going_on.map_or(at, |p| p.start);
        self.entries.insert(at, entry);
        let mut below = None;
        let rows = match self.scroll {
            0 => 0,
            _ => self.rows_of(at..at + 1, usize::MAX),
        };
        if rows > 0 {
            let stop = self.scroll + 1;
            let counted = match known {
                // All of them, or as far as this view needs.
                Some((n, upto)) if n < upto || upto >= stop => (n, upto),
                _ => (self.rows_of(at + 1..self.entries.len(), stop), stop),
            };
            if counted.0 <= self.scroll {
                // At the view's bottom or below it: the view stays.
                self.scroll += rows;
            }
            below = Some(counted);
        }
        self.page_at = Some(PageAt {
            room,
            start,
            at: at + 1,
            after,
            below,
        });
        // (Nothing goes but past the bound: see `trim`.)
        if self.scroll > 0 {
            self.bound();
        }
    }

    /// Take away the lines saying messages are missing in the rooms
    /// `gone` picks.
    fn drop_gap_lines(&mut self, gone: impl Fn(&String) -> bool) {
        let before = self.entries.len();
        self.entries.retain(|e| match (&e.line, &e.room) {
            (Line::Gap { filled: false, .. }, Some(room)) => !gone(room),
            _ => true,
        });
        if self.entries.len() != before {
            self.page_at = None;
        }
    }

    /// Where `room`'s line saying messages are missing is, if it has one.
    fn gap_line(&self, room: &Option<String>) -> Option<usize> {
        self.entries
            .iter()
            .rposition(|e| matches!(&e.line, Line::Gap { filled: false, .. }) && e.room == *room)
    }

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
    fn add_line_in(&mut self, line: Line, time: String, here: Option<String>) {
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
            Line::Entered { room, .. } => entry.room = Some(room.clone()),
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

    /// Put a new line at the bottom, keeping at most [`MAX_ENTRIES`]
    /// (scrolled back, [`MAX_ENTRIES_EVER`]); a line of a room cut is
    /// counted, not kept ([`App::bound`]).
    fn push_entry(&mut self, entry: Entry) {
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
                super::format::entry_height(&entry, self.theme, &mut self.nicks, self.area.0);
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

    /// While following the newest, keep at most [`MAX_ENTRIES`]: the
    /// oldest go, and the session is told, before it next pages back, of
    /// each room whose messages went ([`Effect::LetGo`]). Scrolled back,
    /// nothing goes until the area passes [`MAX_ENTRIES_EVER`] (then what
    /// is farthest from the screen, [`App::bound`]): a page read back
    /// stays (at the top of a full area, it went as it came). A page
    /// asked while following the newest stays too, and what is below it:
    /// the oldest go only down to it ([`Entry::held`]), until the reader
    /// has scrolled back and come back, or the area is twice its size.
    pub(super) fn trim(&mut self) {
        if self.scroll > 0 {
            self.bound();
            return;
        }
        if self.entries.len() > 2 * MAX_ENTRIES {
            // Held long enough: the area at twice its size at most.
            self.release_held();
        }
        while self.entries.len() > MAX_ENTRIES {
            if self.entries.front().is_some_and(|e| e.held) {
                break;
            }
            let Some(e) = self.entries.pop_front() else {
                break;
            };
            self.page_at = None;
            if let (Line::Msg { .. }, Some(room)) = (&e.line, e.room) {
                self.let_go.insert(room);
            }
        }
    }

    /// The pages asked while following the newest ([`Entry::held`]) may
    /// go as the rest now.
    pub(super) fn release_held(&mut self) {
        if std::mem::take(&mut self.holding) {
            for e in self.entries.iter_mut() {
                e.held = false;
            }
        }
    }

    /// Tell the session where what is shown of each room whose messages
    /// the cap let go starts now.
    pub(super) fn tell_let_go(&mut self) {
        for room in std::mem::take(&mut self.let_go) {
            let kept = self.kept_of(&room);
            self.drop_gap_lines_above_all(&room);
            self.told += 1;
            self.telling.push_back((self.told, room.clone()));
            self.effects.push(Effect::LetGo(room, kept));
        }
        self.tell_cuts();
    }

    /// Take away `room`'s lines saying messages are missing that are
    /// above all its messages: the cap let go of what was shown above
    /// them, and the session forgets those gaps when told (they are
    /// older than what is shown, paged back through as the rest).
    fn drop_gap_lines_above_all(&mut self, room: &str) {
        let here = Some(room.to_owned());
        let mut first = self
            .entries
            .iter()
            .position(|e| e.room == here && matches!(e.line, Line::Msg { .. }))
            .unwrap_or(self.entries.len());
        let mut i = 0;
        while i < first {
            let e = &self.entries[i];
            if e.room == here && matches!(e.line, Line::Gap { filled: false, .. }) {
                let rows = self.rows_of(i..i + 1, usize::MAX);
                self.keep_view(i + 1, rows, false);
                self.entries.remove(i);
                self.page_at = None;
                first -= 1;
            } else {
                i += 1;
            }
        }
    }

    /// The places of `room`'s oldest message shown, in the latest of its
    /// histories shown and in any (the cap took all above it).
    fn kept_of(&self, room: &str) -> Kept {
        let place_of = |e: &Entry| match &e.line {
            Line::Msg { place, .. } if e.room.as_deref() == Some(room) => Some(*place),
            _ => None,
        };
        let first = self.entries.iter().find_map(place_of);
        let latest = (self.entries.iter().rev().filter_map(place_of)).find(|p| p.era != 0);
        let from = latest.and_then(|latest| {
            let mut all = self.entries.iter().filter_map(place_of);
            all.find(|p| p.era == latest.era)
        });
        Kept { from, first }
    }

    /// Whether a page of `room` come now was asked from below what the
    /// cap let go of it, the session not told yet or not having taken
    /// it: shown above the room's oldest line, it would leave a hole.
    fn pages_past_a_cut(&self, room: &Option<String>) -> bool {
        room.as_ref()
            .is_some_and(|r| self.let_go.contains(r) || self.telling.iter().any(|(_, t)| t == r))
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
    use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};

    use super::test_lines::{missing_at, placed_in, rng};
    use super::*;

    fn app() -> App {
        let mut app = App::new(Theme { color: false }, true);
        app.set_state(State {
            nick: "alice".into(),
            prompt: "alice #lobby> ".into(),
            current: Some("lobby".into()),
            rooms: vec!["lobby".into(), "rust".into()],
            roster: vec!["alice".into(), "bob".into(), "carol".into()].into(),
            joined: true,
            ..State::default()
        });
        app
    }

    fn msg(room: &str, from: &str, to: &[&str], text: &str) -> Line {
        Line::Msg {
            room: Some(room.into()),
            history: false,
            page: false,
            missed: false,
            from: from.into(),
            to: to.iter().map(|s| s.to_string()).collect(),
            text: text.into(),
            ts: 0,
            place: crate::render::Place::default(),
        }
    }

    fn key(code: KeyCode) -> Event {
        Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn ctrl(c: char) -> Event {
        Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
    }

    /// `line` typed and given: the session is told first where #lobby's
    /// lines kept start (`kept`), then gets the line.
    fn typed_after_lobbys_let_go(app: &mut App, line: &str, kept: Kept) {
        type_str(app, line);
        app.handle_event(key(KeyCode::Enter));
        assert_eq!(
            app.take_effects(),
            [
                Effect::LetGo("lobby".into(), kept),
                Effect::Send(line.into())
            ]
        );
    }

    fn type_str(app: &mut App, s: &str) {
        for c in s.chars() {
            app.handle_event(key(KeyCode::Char(c)));
        }
    }

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

    #[test]
    fn a_history_page_goes_above_what_its_room_shows() {
        let mut app = app();
        app.add_line(msg("rust", "bob", &[], "r1"), "12:00".into());
        // Notes of the room over its first message (entering it) were
        // said after every older one: a page goes above them.
        let entered = Line::Entered {
            room: "lobby".into(),
            text: "entered #lobby; 2 online".into(),
        };
        app.add_line(entered, "12:00".into());
        app.add_line(msg("lobby", "bob", &[], "new1"), "12:00".into());
        app.add_line(msg("lobby", "carol", &[], "new2"), "12:01".into());
        let older = |text: &str| Line::Msg {
            room: Some("lobby".into()),
            history: true,
            page: true,
            missed: false,
            from: "bob".into(),
            to: vec![],
            text: text.into(),
            ts: 0,
            place: crate::render::Place::default(),
        };
        app.add_line(older("old1"), "12:02".into());
        app.add_line(older("old2"), "12:02".into());
        // A line after the page is new again: at the bottom.
        app.add_line(msg("lobby", "bob", &[], "new3"), "12:03".into());
        let texts: Vec<&str> = app
            .entries
            .iter()
            .filter_map(|e| match &e.line {
                Line::Msg { text, .. } => Some(text.as_str()),
                Line::Entered { .. } => Some("(entered)"),
                _ => None,
            })
            .collect();
        assert_eq!(
            texts,
            ["r1", "old1", "old2", "(entered)", "new1", "new2", "new3"]
        );
    }

    /// Paging back to the start of a room showed the notes of entering
    /// it (`* joined as`, `* entered #lobby`) above the start of its
    /// history and its oldest message: each page went under them. They
    /// were said after every message older than the room's oldest shown,
    /// so a page goes above them, and the start mark above all; a note
    /// between two messages stays between them.
    #[test]
    fn a_page_goes_above_the_notes_over_its_rooms_first_message() {
        let mut app = app();
        let info = |text: &str| Line::Info(text.into());
        app.add_line(info("joined as alice"), "12:00".into());
        let entered = Line::Entered {
            room: "lobby".into(),
            text: "entered #lobby; 2 online".into(),
        };
        app.add_line(entered, "12:00".into());
        app.add_line(msg("rust", "bob", &[], "r1"), "12:00".into());
        app.add_line(placed_in("lobby", "m5", 1, 5, false), "12:00".into());
        app.add_line(info("who: alice bob"), "12:01".into());
        app.add_line(placed_in("lobby", "m6", 1, 6, false), "12:01".into());
        for seq in [3, 4, 1, 2] {
            let line = placed_in("lobby", &format!("m{seq}"), 1, seq, true);
            app.add_line(line, "12:02".into());
        }
        let start = Line::HistoryStart {
            room: "lobby".into(),
            era: 1,
            older_gone: false,
        };
        app.add_line(start, "12:02".into());
        let lobby: Vec<String> = app
            .entries
            .iter()
            .filter(|e| app.in_view(e))
            .map(|e| match &e.line {
                Line::Msg { text, .. } | Line::Info(text) => text.clone(),
                Line::Entered { .. } => "(entered)".into(),
                Line::HistoryStart { .. } => "(start)".into(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            lobby,
            [
                "(start)",
                "m1",
                "m2",
                "m3",
                "m4",
                "joined as alice",
                "(entered)",
                "m5",
                "who: alice bob",
                "m6"
            ]
        );
    }

    /// Paging back reached the room's first message: one mark, above
    /// it and the notes of entering the room (said after it); a later
    /// one takes its place.
    #[test]
    fn the_start_of_a_rooms_history_is_marked_once_at_the_top() {
        let mut app = app();
        let entered = Line::Entered {
            room: "lobby".into(),
            text: "entered #lobby; 2 online".into(),
        };
        app.add_line(entered, "12:00".into());
        app.add_line(msg("lobby", "bob", &[], "m2"), "12:00".into());
        let start = || Line::HistoryStart {
            room: "lobby".into(),
            older_gone: false,
            era: 0,
        };
        let texts = |app: &App| -> Vec<String> {
            app.entries
                .iter()
                .map(|e| match &e.line {
                    Line::Msg { text, .. } => text.clone(),
                    Line::Entered { .. } => "(entered)".into(),
                    Line::HistoryStart { .. } => "(start)".into(),
                    other => format!("{other:?}"),
                })
                .collect()
        };
        app.add_line(start(), "12:01".into());
        assert_eq!(texts(&app), ["(start)", "(entered)", "m2"]);
        app.add_line(msg("lobby", "bob", &[], "m3"), "12:02".into());
        app.add_line(start(), "12:03".into());
        assert_eq!(texts(&app), ["(start)", "(entered)", "m2", "m3"]);
    }

    /// What a /history brought (or that its page is on its way) is one
    /// line a room, the newest, at the bottom; scrolled back, the view
    /// stays on what it shows.
    #[test]
    fn a_history_note_takes_the_last_ones_place() {
        let mut app = app();
        let note = |room: &str, text: &str| Line::HistoryNote {
            room: room.into(),
            text: text.into(),
        };
        let texts = |app: &App| -> Vec<String> {
            app.entries
                .iter()
                .map(|e| match &e.line {
                    Line::Msg { text, .. } => text.clone(),
                    Line::HistoryNote { room, text } => format!("#{room}: {text}"),
                    other => format!("{other:?}"),
                })
                .collect()
        };
        app.add_line(msg("lobby", "bob", &[], "new1"), "12:00".into());
        app.add_line(note("rust", "2 older"), "12:00".into());
        app.add_line(note("lobby", "on their way"), "12:01".into());
        app.add_line(note("lobby", "5 older"), "12:01".into());
        app.add_line(msg("lobby", "bob", &[], "new2"), "12:02".into());
        assert_eq!(
            texts(&app),
            ["new1", "#rust: 2 older", "#lobby: 5 older", "new2"]
        );
        // Scrolled back to the first line, the note below the view goes:
        // what the view shows does not move.
        app.area = (80, 2);
        app.scroll = 2;
        app.add_line(note("lobby", "3 older"), "12:03".into());
        assert_eq!(
            texts(&app),
            ["new1", "#rust: 2 older", "new2", "#lobby: 3 older"]
        );
        assert_eq!(app.scroll, 2, "one row gone below the view, one come");
    }

    /// Messages missing after a reconnect, fetched by /history, go
    /// under the line saying they are missing (newest page first, each
    /// page in order), not above everything; once none is missing, that
    /// line goes.
    #[test]
    fn a_gap_is_filled_where_it_is() {
        let mut app = app();
        let gap = |filled| Line::Gap {
            room: "lobby".into(),
            filled,
        };
        app.add_line(msg("lobby", "bob", &[], "m3"), "12:00".into());
        app.add_line(gap(false), "12:01".into());
        app.add_line(msg("lobby", "bob", &[], "m19"), "12:01".into());
        let shown = |app: &App| -> Vec<String> {
            app.entries
                .iter()
                .map(|e| match &e.line {
                    Line::Msg { text, .. } => text.clone(),
                    Line::Gap { .. } => "(gap)".into(),
                    _ => "(other)".into(),
                })
                .collect()
        };
        app.add_line(missing_at("m17", Place::default()), "12:02".into());
        app.add_line(missing_at("m18", Place::default()), "12:02".into());
        app.add_line(Line::Info("2 missing messages".into()), "12:02".into());
        app.add_line(missing_at("m15", Place::default()), "12:03".into());
        app.add_line(missing_at("m16", Place::default()), "12:03".into());
        assert_eq!(
            shown(&app),
            ["m3", "(gap)", "m15", "m16", "m17", "m18", "m19", "(other)"]
        );
        app.add_line(gap(true), "12:04".into());
        assert_eq!(
            shown(&app),
            ["m3", "m15", "m16", "m17", "m18", "m19", "(other)"]
        );
    }

    /// With as many lines as are kept, a page's lines go in their order;
    /// the next line at the bottom pushes the oldest out (not each line
    /// of the page, which went at once when it was the oldest).
    #[test]
    fn a_gap_is_filled_in_order_when_the_lines_are_at_their_cap() {
        let mut app = app();
        for i in 0..MAX_ENTRIES - 2 {
            app.add_line(msg("lobby", "bob", &[], &format!("old{i}")), "12:00".into());
        }
        app.add_line(
            Line::Gap {
                room: "lobby".into(),
                filled: false,
            },
            "12:01".into(),
        );
        app.add_line(msg("lobby", "bob", &[], "m19"), "12:01".into());
        assert_eq!(app.entries.len(), MAX_ENTRIES);
        for text in ["m16", "m17", "m18"] {
            app.add_line(missing_at(text, Place::default()), "12:02".into());
        }
        assert_eq!(app.entries.len(), MAX_ENTRIES + 3);
        app.add_line(msg("lobby", "bob", &[], "m20"), "12:03".into());
        assert_eq!(app.entries.len(), MAX_ENTRIES);
        let last: Vec<String> = app
            .entries
            .iter()
            .skip(MAX_ENTRIES - 6)
            .map(|e| match &e.line {
                Line::Msg { text, .. } => text.clone(),
                Line::Gap { .. } => "(gap)".into(),
                _ => "(other)".into(),
            })
            .collect();
        assert_eq!(last, ["(gap)", "m16", "m17", "m18", "m19", "m20"]);
    }

    /// A room whose oldest messages the cap let go (other rooms' lines
    /// came after them): scrolling up past its oldest line tells the
    /// session where what is shown of it starts, then asks for older
    /// ones, so the page goes on from there, not from the oldest ever
    /// shown, above a hole. A page asked before the session was told
    /// pages back from below what went: it is not shown, and its note
    /// says so. The page asked after it is kept, though the area is full
    /// and its lines the oldest (they went as they came); back at the
    /// newest line, the log is cut to the cap again.
    #[test]
    fn paging_back_at_the_cap_goes_on_from_the_oldest_line_kept() {
        let mut app = self::app();
        let mut state = app.state.clone();
        state.older = true;
        app.set_state(state.clone());
        for seq in 1..=100 {
            app.add_line(
                placed_in("lobby", &format!("m{seq}"), 1, seq, false),
                "12:00".into(),
            );
        }
        for i in 0..MAX_ENTRIES - 50 {
            app.add_line(msg("rust", "bob", &[], &format!("r{i}")), "12:00".into());
        }
        assert_eq!(app.entries.len(), MAX_ENTRIES);
        let lobby = |app: &App| -> Vec<u64> {
            app.entries
                .iter()
                .filter_map(|e| match &e.line {
                    Line::Msg { place, .. } if e.room.as_deref() == Some("lobby") => {
                        Some(place.seq)
                    }
                    _ => None,
                })
                .collect()
        };
        assert_eq!(lobby(&app), (51..=100).collect::<Vec<_>>());
        // A page asked before (by a /history typed at the newest line)
        // comes now, from below 1: not shown.
        app.add_line(placed_in("lobby", "m0", 1, 0, true), "12:01".into());
        assert_eq!(lobby(&app)[0], 51);
        app.handle_event(key(KeyCode::PageUp));
        let from = Some(crate::render::Place { era: 1, seq: 51 });
        let kept = Kept { from, first: from };
        // Two screens' worth of the area's 22 rows.
        assert_eq!(
            app.take_effects(),
            [Effect::LetGo("lobby".into(), kept), Effect::Older(44)]
        );
        // Its note comes after the session was told, before it took it.
        app.add_line(
            Line::HistoryNote {
                room: "lobby".into(),
                text: "1 older message of #lobby".into(),
            },
            "12:01".into(),
        );
        let note = app.entries.iter().rev().find_map(|e| match &e.line {
            Line::HistoryNote { text, .. } => Some(text.clone()),
            _ => None,
        });
        assert!(note.is_some_and(|t| t.contains("not shown")));
        state.let_go_taken = 1;
        state.older_taken = 1;
        app.set_state(state);
        for seq in 31..=50 {
            app.add_line(
                placed_in("lobby", &format!("m{seq}"), 1, seq, true),
                "12:02".into(),
            );
        }
        assert_eq!(lobby(&app), (31..=100).collect::<Vec<_>>());
        // (The note, and the page.)
        assert_eq!(app.entries.len(), MAX_ENTRIES + 21);
        app.handle_event(key(KeyCode::Esc));
        assert_eq!(app.entries.len(), MAX_ENTRIES);
        assert_eq!(lobby(&app)[0], 52, "the page, and one line for the note");
        // Told again before the next request.
        let from = Some(crate::render::Place { era: 1, seq: 52 });
        typed_after_lobbys_let_go(&mut app, "/history", Kept { from, first: from });
    }

    /// The cap let go of the oldest lines of #lobby's earlier history
    /// (1), those of its latest (2) all kept: the session is told where
    /// each starts, not to forget what is still shown of the earlier one.
    #[test]
    fn the_session_is_told_where_each_history_kept_starts() {
        let mut app = self::app();
        for (era, seq) in (1..=2).flat_map(|era| (1..=10).map(move |seq| (era, seq))) {
            let text = format!("m{era}.{seq}");
            app.add_line(placed_in("lobby", &text, era, seq, false), "12:00".into());
        }
        for i in 0..MAX_ENTRIES - 15 {
            app.add_line(msg("rust", "bob", &[], &format!("r{i}")), "12:00".into());
        }
        assert_eq!(app.entries.len(), MAX_ENTRIES);
        let at = |era, seq| Some(crate::render::Place { era, seq });
        let kept = Kept {
            from: at(2, 1),
            first: at(1, 6),
        };
        typed_after_lobbys_let_go(&mut app, "hi", kept);
    }

    /// `/history` typed at the newest line of a full area: the page goes
    /// above #lobby's oldest line, the oldest of all, and stays (its
    /// note says there is more, and the reader scrolls up to it) while
    /// new lines come, the oldest above it going; once read back and
    /// back at the newest line, the area is cut to the cap again.
    #[test]
    fn a_page_asked_at_the_newest_line_of_a_full_area_stays_to_be_read() {
        let mut app = self::app();
        for seq in 101..=200 {
            let text = format!("m{seq}");
            app.add_line(placed_in("lobby", &text, 1, seq, false), "12:00".into());
        }
        for i in 0..MAX_ENTRIES - 100 {
            app.add_line(msg("rust", "bob", &[], &format!("r{i}")), "12:00".into());
        }
        assert_eq!(app.entries.len(), MAX_ENTRIES);
        let lobby = |app: &App| -> Vec<u64> {
            app.entries
                .iter()
                .filter_map(|e| match &e.line {
                    Line::Msg { place, .. } if e.room.as_deref() == Some("lobby") => {
                        Some(place.seq)
                    }
                    _ => None,
                })
                .collect()
        };
        type_str(&mut app, "/history");
        app.handle_event(key(KeyCode::Enter));
        assert_eq!(app.take_effects(), [Effect::Send("/history".into())]);
        for seq in 51..=100 {
            let text = format!("m{seq}");
            app.add_line(placed_in("lobby", &text, 1, seq, true), "12:01".into());
        }
        app.add_line(
            Line::HistoryNote {
                room: "lobby".into(),
                text: "50 older messages of #lobby; /history shows more".into(),
            },
            "12:01".into(),
        );
        for i in 0..10 {
            app.add_line(msg("rust", "bob", &[], &format!("n{i}")), "12:02".into());
        }
        assert_eq!(lobby(&app), (51..=200).collect::<Vec<_>>());
        assert_eq!(app.scroll, 0);
        // Read back, then back at the newest: cut again (the page is the
        // oldest of all).
        app.scroll = 5;
        app.handle_event(key(KeyCode::Esc));
        assert_eq!(app.entries.len(), MAX_ENTRIES);
        assert_eq!(lobby(&app), (112..=200).collect::<Vec<_>>());
    }

    /// The message area's rows as drawn in a terminal of 60 by 12 (the
    /// area 10 rows high), without the bars below it.
    fn area_rows(app: &mut App) -> Vec<String> {
        use ratatui::{backend::TestBackend, Terminal};
        let mut t = Terminal::new(TestBackend::new(60, 12)).unwrap();
        t.draw(|f| crate::tui::draw::draw(f, app)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..app.area.1 as u16)
            .map(|y| {
                let row: String = (0..60).map(|x| buf[(x, y)].symbol()).collect();
                row.trim_end().to_owned()
            })
            .collect()
    }

    /// The seqs of #lobby's messages, in the order shown.
    fn lobby_seqs(app: &App) -> Vec<u64> {
        app.entries
            .iter()
            .filter_map(|e| match &e.line {
                Line::Msg { place, .. } if e.room.as_deref() == Some("lobby") => Some(place.seq),
                _ => None,
            })
            .collect()
    }

    /// The lines saying a room's newer lines were not kept, by room.
    fn cut_lines(app: &App) -> Vec<(String, String)> {
        app.entries
            .iter()
            .filter(|e| e.cut)
            .map(|e| match &e.line {
                Line::Info(text) => (e.room.clone().unwrap_or_default(), text.clone()),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// Scrolled back, nothing went: a terminal left scrolled up on a
    /// busy room grew without bound. Past the bound, the oldest lines
    /// far above the screen go (#lobby's 20,000 first, read back from
    /// near the bottom of 80,000), what is on the screen stays, nothing
    /// is cut, and the session is told where #lobby's lines now start
    /// before it pages back.
    #[test]
    fn read_back_past_the_bound_the_oldest_lines_above_go_first() {
        let mut app = self::app();
        let mut seq = 0;
        // #lobby's next message, or #rust's but one in ten.
        let mut flood = |app: &mut App, i: usize| {
            if i.is_multiple_of(10) {
                seq += 1;
                let text = format!("m{seq}");
                app.add_line(placed_in("lobby", &text, 1, seq, false), "12:00".into());
            } else {
                app.add_line(msg("rust", "bob", &[], "r"), "12:00".into());
            }
        };
        for i in 0..MAX_ENTRIES {
            flood(&mut app, i * 10);
        }
        area_rows(&mut app);
        app.handle_event(key(KeyCode::PageUp));
        for i in 0..MAX_ENTRIES_EVER - MAX_ENTRIES - 10 {
            flood(&mut app, i);
        }
        // Read on down to near the newest.
        app.scroll = 30;
        let shown = area_rows(&mut app);
        let mut most = 0;
        for i in 0..MAX_ENTRIES {
            flood(&mut app, i);
            most = most.max(app.entries.len());
        }
        assert!(most <= MAX_ENTRIES_EVER, "{most} lines");
        assert_eq!(area_rows(&mut app), shown);
        assert!(cut_lines(&app).is_empty());
        let seqs = lobby_seqs(&app);
        let last = seqs.last().copied();
        let want =
            MAX_ENTRIES + (MAX_ENTRIES_EVER - MAX_ENTRIES - 10).div_ceil(10) + MAX_ENTRIES / 10;
        assert_eq!(last, Some(want as u64), "new lines kept");
        let first = seqs[0];
        assert!(first > MAX_ENTRIES as u64, "the oldest went: {first}");
        assert_eq!(seqs, (first..=want as u64).collect::<Vec<_>>());
        app.scroll = usize::MAX / 4;
        area_rows(&mut app);
        app.handle_event(key(KeyCode::PageUp));
        let from = Some(crate::render::Place { era: 1, seq: first });
        let kept = Kept { from, first: from };
        // The 9 rows past the top, and two screens of 10 more.
        assert_eq!(
            app.take_effects(),
            [Effect::LetGo("lobby".into(), kept), Effect::Older(29)]
        );
    }

    /// #lobby's 100 messages read back from the top while #lobby and
    /// #rust get 100,000 lines: the area stays within its bound, the
    /// screen as it was; the newest lines below it go, and each room
    /// whose lines went says so at the bottom of its lines, its lines
    /// counted (new below, unread, a mention flagged) but not kept.
    /// Scrolled down to it, that line is the last; Esc asks #lobby's
    /// newest page (the session told first that none of its lines is
    /// shown): given, with a line that came meanwhile, the newest are
    /// shown once each, in order. #rust, made current, asks its own.
    #[test]
    fn read_back_near_the_top_under_a_flood_the_newest_go_and_come_back_at_esc() {
        let mut app = self::app();
        let shown = lobby_read_from_the_top(&mut app, 1, 100);
        assert!(app.at_top && shown[0].ends_with("bob: m1"), "{shown:?}");
        let (mut lobby_new, mut rust_new) = (0, 0);
        let mut most = 0;
        let mut seq = 100;
        for i in 0..MAX_ENTRIES_EVER + MAX_ENTRIES {
            if i % 10 != 0 {
                let text = if i % 400 == 1 { "alice?" } else { "r" };
                app.add_line(msg("rust", "bob", &[], text), "12:01".into());
                rust_new += 1;
            } else {
                seq += 1;
                let text = format!("m{seq}");
                app.add_line(placed_in("lobby", &text, 1, seq, false), "12:01".into());
                lobby_new += 1;
            }
            most = most.max(app.entries.len());
        }
        assert!(most <= MAX_ENTRIES_EVER, "{most} lines");
        assert_eq!(area_rows(&mut app), shown);
        assert_eq!(app.new_below, lobby_new);
        assert_eq!(
            app.unread.get("rust"),
            Some(&Unread {
                count: rust_new,
                alert: true
            })
        );
        let said = |room: &str| {
            (
                room.to_owned(),
                format!("newer lines of #{room} not kept while you read back: Esc for the newest"),
            )
        };
        assert_eq!(cut_lines(&app), [said("lobby"), said("rust")]);
        let last_lobby = app
            .entries
            .iter()
            .rev()
            .find(|e| e.room.as_deref() == Some("lobby"));
        assert!(last_lobby.is_some_and(|e| e.cut), "at the bottom of #lobby");
        // Not kept, while cut.
        let before = app.entries.len();
        seq += 1;
        app.add_line(placed_in("lobby", "late", 1, seq, false), "12:02".into());
        assert_eq!(app.entries.len(), before);

        // Scrolled down to the bottom, #lobby's last line says so, and
        // nothing is asked until Esc (or down once more).
        app.take_effects();
        app.scroll = 1;
        app.handle_event(key(KeyCode::PageDown));
        let rows = area_rows(&mut app);
        let bottom = rows[rows.len() - 2..].join(" ");
        let bottom = bottom.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            bottom.ends_with(
                "* newer lines of #lobby not kept while you read back: Esc for the newest"
            ),
            "{rows:?}"
        );
        assert_eq!(app.take_effects(), []);
        app.handle_event(key(KeyCode::Esc));
        // (Back at the newest, the area is cut to its cap: #rust's oldest
        // lines went too.)
        let effects = app.take_effects();
        let told = effects.iter().filter(|e| matches!(e, Effect::LetGo(..)));
        let told = told.count() as u64;
        assert!(
            effects.contains(&Effect::LetGo("lobby".into(), Kept::default()))
                && effects.last() == Some(&Effect::Older(20)),
            "{effects:?}"
        );
        assert!(lobby_seqs(&app).is_empty());
        let mut state = app.state.clone();
        state.let_go_taken = told;
        state.older_taken = 1;
        app.set_state(state);
        // Said before the page came; the page has it too.
        seq += 1;
        app.add_line(placed_in("lobby", "now", 1, seq, false), "12:03".into());
        for q in seq - 49..=seq {
            let text = format!("m{q}");
            app.add_line(placed_in("lobby", &text, 1, q, true), "12:03".into());
        }
        let newest: Vec<u64> = (seq - 49..=seq).collect();
        assert_eq!(lobby_seqs(&app), newest);
        assert_eq!(cut_lines(&app), [said("rust")]);
        let rows = area_rows(&mut app);
        assert!(rows[rows.len() - 1].ends_with("bob: now"), "{rows:?}");
        // Kept again.
        app.add_line(
            placed_in("lobby", "next", 1, seq + 1, false),
            "12:04".into(),
        );
        assert_eq!(lobby_seqs(&app).last(), Some(&(seq + 1)));

        let mut state = app.state.clone();
        state.current = Some("rust".into());
        app.set_state(state);
        assert_eq!(
            app.take_effects(),
            [
                Effect::LetGo("rust".into(), Kept::default()),
                Effect::Older(20)
            ]
        );
        assert!(cut_lines(&app).is_empty());
    }

    /// Read back at the top of #lobby while #rust fills the area to its
    /// bound, a page of #lobby's older messages comes: passing the bound
    /// as it comes, it is kept whole above #lobby's lines, in order (the
    /// rest of a page whose first lines went would not be shown, leaving
    /// a hole under them), and the screen stays; #rust's newest lines go
    /// instead, and it is cut.
    #[test]
    fn a_page_read_back_at_the_bound_is_kept_whole_and_the_newest_go() {
        let mut app = self::app();
        let shown = lobby_read_from_the_top(&mut app, 1_001, 1_100);
        assert!(app.at_top);
        for _ in 0..MAX_ENTRIES_EVER - 130 {
            app.add_line(msg("rust", "bob", &[], "r"), "12:00".into());
        }
        let mut most = 0;
        for seq in 901..=1_000 {
            let text = format!("m{seq}");
            app.add_line(placed_in("lobby", &text, 1, seq, true), "12:01".into());
            most = most.max(app.entries.len());
        }
        assert!(most <= MAX_ENTRIES_EVER, "{most} lines");
        assert_eq!(lobby_seqs(&app), (901..=1_100).collect::<Vec<_>>());
        assert_eq!(area_rows(&mut app), shown);
        let said = "newer lines of #rust not kept while you read back: Esc for the newest";
        assert_eq!(cut_lines(&app), [("rust".to_owned(), said.to_owned())]);
    }

    /// #lobby's messages `m{first}` to `m{last}`, read back from the top
    /// (scrolled up as far as they go); the rows then shown.
    fn lobby_read_from_the_top(app: &mut App, first: u64, last: u64) -> Vec<String> {
        for seq in first..=last {
            let text = format!("m{seq}");
            app.add_line(placed_in("lobby", &text, 1, seq, false), "12:00".into());
        }
        area_rows(app);
        app.scroll = usize::MAX / 4;
        area_rows(app)
    }

    /// #lobby's 100 messages read back from the top while #lobby and
    /// #rust get 100,000 lines: #lobby is cut. Its last seq given.
    fn cut_lobby(app: &mut App) -> u64 {
        lobby_read_from_the_top(app, 1, 100);
        let mut seq = 100;
        for i in 0..MAX_ENTRIES_EVER + MAX_ENTRIES {
            if i % 10 != 0 {
                app.add_line(msg("rust", "bob", &[], "r"), "12:01".into());
            } else {
                seq += 1;
                let text = format!("m{seq}");
                app.add_line(placed_in("lobby", &text, 1, seq, false), "12:01".into());
            }
        }
        assert!(app.cut.contains("lobby"));
        seq
    }

    /// Back after a reconnect while #lobby is cut: the line saying
    /// messages are missing is not kept (it is newer than what #lobby
    /// keeps), so the page of them that paging up asks brings the
    /// newest messages, which went above #lobby's oldest line, out of
    /// order. Newer than every message kept, they are counted, not kept.
    #[test]
    fn missed_messages_paged_in_a_room_cut_are_not_put_above_its_lines() {
        let mut app = self::app();
        let seq = cut_lobby(&mut app);
        let kept = lobby_seqs(&app);
        let below = app.new_below;
        app.add_line(
            Line::Gap {
                room: "lobby".into(),
                filled: false,
            },
            "12:02".into(),
        );
        for q in seq + 10..seq + 15 {
            let line = missing_at(&format!("m{q}"), Place { era: 1, seq: q });
            app.add_line(line, "12:02".into());
        }
        let seqs = lobby_seqs(&app);
        assert!(seqs == kept, "#lobby's first: {:?}", &seqs[..5]);
        assert_eq!(app.new_below, below + 6);
    }

    /// The client's own lines filed under a room cut (an error answering
    /// a line typed, the connection lost, a refused line kept for Up)
    /// were counted and not kept, and Esc dropped the room's notes with
    /// its messages: the person never saw them. They are kept, below the
    /// line saying the room is cut, and stay when its newest are asked.
    #[test]
    fn notes_in_a_room_cut_are_kept_and_stay_at_esc() {
        let mut app = self::app();
        cut_lobby(&mut app);
        let error = Line::Error {
            code: "unknown_nick".into(),
            message: "no such nick: dave".into(),
        };
        app.add_line(error.clone(), "12:02".into());
        let info = Line::Info("connection lost; reconnecting".into());
        app.add_line(info.clone(), "12:02".into());
        let notes = |app: &App| {
            app.entries
                .iter()
                .filter(|e| e.room.as_deref() == Some("lobby"))
                .filter(|e| matches!(e.line, Line::Error { .. } | Line::Info(_)) && !e.cut)
                .map(|e| e.line.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(notes(&app), [error.clone(), info.clone()]);
        app.handle_event(key(KeyCode::Esc));
        assert!(lobby_seqs(&app).is_empty());
        assert_eq!(notes(&app), [error, info]);
    }

    /// Who came and went while #lobby was cut: joins and leaves are in
    /// no page of history, so its newest page at Esc did not bring them,
    /// and they were not kept: a reader who pressed Esc never saw them.
    /// They are kept, as notes are, and stay at Esc; those of before the
    /// cut (among the lines read back) go with the room's lines.
    #[test]
    fn joins_and_leaves_in_a_room_cut_are_kept_and_stay_at_esc() {
        let mut app = self::app();
        let old = Line::Presence {
            room: Some("lobby".into()),
            nick: "carol".into(),
            online: false,
        };
        app.add_line(old, "11:00".into());
        cut_lobby(&mut app);
        let came = Line::Presence {
            room: Some("lobby".into()),
            nick: "dave".into(),
            online: true,
        };
        app.add_line(came.clone(), "12:02".into());
        let away = Line::WhileAway {
            room: Some("lobby".into()),
            joined: vec!["erin".into()],
            left: vec![],
        };
        app.add_line(away.clone(), "12:03".into());
        let kept = |app: &App| {
            app.entries
                .iter()
                .filter(|e| e.room.as_deref() == Some("lobby"))
                .filter(|e| matches!(e.line, Line::Presence { .. } | Line::WhileAway { .. }))
                .map(|e| e.line.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(kept(&app)[1..], [came.clone(), away.clone()]);
        app.handle_event(key(KeyCode::Esc));
        assert!(lobby_seqs(&app).is_empty());
        assert_eq!(kept(&app), [came, away]);
    }

    /// In a room cut, a message typed fetches its newest first (its echo
    /// comes under them); a command does not: `/clear` fetched a page it
    /// then dropped (the view emptied), `/who` or `/history` one the
    /// answer did not ask for. They go to the bottom of what is kept,
    /// the room still cut (`/clear`: not, nothing shown).
    #[test]
    fn in_a_room_cut_a_message_fetches_its_newest_and_a_command_does_not() {
        let typed = |app: &mut App, line: &str| {
            type_str(app, line);
            app.handle_event(key(KeyCode::Enter));
            let effects = app.take_effects().into_iter();
            // (Not what the session is told of the area: back at the
            // bottom, it is cut to its cap, the oldest lines going.)
            effects
                .filter(|e| !matches!(e, Effect::Cut(..) | Effect::LetGo(..)))
                .collect::<Vec<_>>()
        };
        let mut app = self::app();
        cut_lobby(&mut app);
        app.take_effects();
        for line in ["/who", "/history"] {
            assert_eq!(typed(&mut app, line), [Effect::Send(line.into())]);
            assert_eq!(app.scroll, 0);
            assert!(app.cut.contains("lobby"));
        }
        assert_eq!(typed(&mut app, "/clear"), [Effect::Send("/clear".into())]);
        assert!(!app.cut.contains("lobby") && lobby_seqs(&app).is_empty());

        let mut app = self::app();
        cut_lobby(&mut app);
        app.take_effects();
        assert_eq!(
            typed(&mut app, "hello"),
            [Effect::Older(20), Effect::Send("hello".into())]
        );
        assert!(!app.cut.contains("lobby") && lobby_seqs(&app).is_empty());
    }

    /// #rust cut, then left (`/part rust` in #lobby, then #lobby left
    /// too): no Esc brings its newest (it is not current, nor is any
    /// room in the view of none, which shows its lines), so its line
    /// says it was left, not Esc. Entered again, its newest are asked.
    #[test]
    fn a_room_cut_and_left_says_so_and_asks_its_newest_entered_again() {
        let mut app = self::app();
        cut_lobby(&mut app);
        app.handle_event(key(KeyCode::Esc));
        app.take_effects();
        let mut state = app.state.clone();
        state.rooms = vec!["lobby".into()];
        app.set_state(state.clone());
        state.rooms = vec![];
        state.current = None;
        app.set_state(state.clone());
        assert_eq!(app.take_effects(), []);
        let said = "newer lines of #rust not kept while you read back; you left #rust";
        let markers: Vec<_> = app.entries.iter().filter(|e| e.cut).collect();
        assert_eq!(markers.len(), 1);
        assert!(
            matches!(&markers[0].line, Line::Info(t) if t == said),
            "{markers:?}"
        );
        state.rooms = vec!["rust".into()];
        state.current = Some("rust".into());
        app.set_state(state);
        assert_eq!(
            app.take_effects(),
            [
                Effect::LetGo("rust".into(), Kept::default()),
                Effect::Older(20)
            ]
        );
        assert!(app.entries.iter().all(|e| !e.cut));
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

    /// bob's message `text` in #lobby, `seq` of the history `era`.
    fn placed(text: &str, era: u64, seq: u64, page: bool) -> Line {
        placed_in("lobby", text, era, seq, page)
    }

    /// The entries as short words: a message's text, the others' kind.
    fn words(app: &App) -> Vec<String> {
        app.entries
            .iter()
            .map(|e| match &e.line {
                Line::Msg { text, .. } => text.clone(),
                Line::Entered { .. } => "(entered)".into(),
                Line::HistoryGone { .. } => "(gone)".into(),
                Line::HistoryStart { .. } => "(start)".into(),
                _ => "(other)".into(),
            })
            .collect()
    }

    /// A room's messages are shown in seq order: one missing between two
    /// on the screen (filled in after a reconnect, or from a page that
    /// came after newer lines) goes between them, not at the bottom; a
    /// page older than all of them above them and the room's notes over
    /// them (said after it).
    #[test]
    fn a_message_goes_between_its_neighbours_by_seq() {
        let mut app = app();
        let entered = Line::Entered {
            room: "lobby".into(),
            text: "entered #lobby; 2 online".into(),
        };
        app.add_line(entered, "12:00".into());
        app.add_line(placed("m2", 1, 2, false), "12:00".into());
        app.add_line(placed("m6", 1, 6, false), "12:00".into());
        app.add_line(msg("rust", "bob", &[], "r1"), "12:01".into());
        app.add_line(Line::Info("a note".into()), "12:01".into());
        app.add_line(placed("m9", 1, 9, false), "12:01".into());
        app.add_line(placed("m7", 1, 7, false), "12:02".into());
        app.add_line(placed("m4", 1, 4, true), "12:02".into());
        app.add_line(placed("m5", 1, 5, true), "12:02".into());
        app.add_line(placed("m1", 1, 1, true), "12:02".into());
        app.add_line(placed("m10", 1, 10, false), "12:03".into());
        app.add_line(msg("lobby", "bob", &[], "unplaced"), "12:03".into());
        assert_eq!(
            words(&app),
            [
                "m1",
                "(entered)",
                "m2",
                "m4",
                "m5",
                "m6",
                "r1",
                "(other)",
                "m7",
                "m9",
                "m10",
                "unplaced"
            ]
        );
    }

    /// A page older than everything on the screen is placed at the cost
    /// of a page, not of a log a line: each of its lines looked through
    /// the whole log (200 lines into 20,000 entries: 4 M looks, 40 ms).
    /// Each line now goes on from where the page's line before it went.
    #[test]
    fn a_page_costs_a_page_to_place_not_a_log_a_line() {
        let mut app = app();
        for i in 0..1_000 {
            app.add_line(
                placed(&format!("m{i}"), 1, 1_000 + i, false),
                "12:00".into(),
            );
            if i % 100 == 0 {
                app.add_line(msg("rust", "bob", &[], "elsewhere"), "12:00".into());
            }
        }
        let log = app.entries.len();
        app.looked.set(0);
        for i in 0..200 {
            app.add_line(placed(&format!("p{i}"), 1, 500 + i, true), "12:01".into());
        }
        assert!(
            app.looked.get() <= log + 2 * 200,
            "{} looks",
            app.looked.get()
        );
        let first: Vec<String> = words(&app).into_iter().take(202).collect();
        let mut want: Vec<String> = (0..200).map(|i| format!("p{i}")).collect();
        want.extend(["m0".into(), "elsewhere".into()]);
        assert_eq!(first, want);

        // At the cap each line of such a page goes first and is the one
        // to go (the oldest): the next one does not look through the log
        // again either.
        let mut app = self::app();
        for i in 0..MAX_ENTRIES as u64 {
            app.add_line(
                placed(&format!("m{i}"), 1, 1_000 + i, false),
                "12:00".into(),
            );
        }
        app.looked.set(0);
        for i in 0..200 {
            app.add_line(placed(&format!("p{i}"), 1, 500 + i, true), "12:01".into());
        }
        assert!(
            app.looked.get() <= MAX_ENTRIES + 2 * 200,
            "{} looks",
            app.looked.get()
        );
    }

    /// A room's history begun anew (the server restarted without it): its
    /// messages, and a page of it, go below the earlier history's, whose
    /// seqs are not theirs to compare with; the start of its history is
    /// marked above its first message.
    #[test]
    fn a_history_begun_anew_goes_below_the_earlier_one() {
        let mut app = app();
        app.add_line(placed("a5", 1, 5, false), "12:00".into());
        app.add_line(placed("a6", 1, 6, false), "12:00".into());
        app.add_line(placed("n30", 2, 30, false), "12:01".into());
        app.add_line(placed("n31", 2, 31, false), "12:01".into());
        let gone = Line::HistoryGone {
            room: "lobby".into(),
        };
        app.add_line(gone, "12:01".into());
        app.add_line(placed("n1", 2, 1, true), "12:02".into());
        app.add_line(placed("n2", 2, 2, true), "12:02".into());
        let start = Line::HistoryStart {
            room: "lobby".into(),
            older_gone: false,
            era: 2,
        };
        app.add_line(start, "12:02".into());
        assert_eq!(
            words(&app),
            ["a5", "a6", "(start)", "n1", "n2", "n30", "n31", "(gone)"]
        );
    }

    /// A room's history begun anew with nothing said in it yet: paging
    /// back finds its start at once, and the mark goes below the earlier
    /// history's messages, not above them at the top (where it said the
    /// room's history started above messages of the one before); what is
    /// said then goes below the mark.
    #[test]
    fn the_start_of_an_empty_history_begun_anew_goes_below_the_earlier_one() {
        let mut app = app();
        app.add_line(placed("a5", 1, 5, false), "12:00".into());
        app.add_line(placed("a6", 1, 6, false), "12:00".into());
        let gone = Line::HistoryGone {
            room: "lobby".into(),
        };
        app.add_line(gone, "12:01".into());
        let start = Line::HistoryStart {
            room: "lobby".into(),
            older_gone: false,
            era: 2,
        };
        app.add_line(start, "12:02".into());
        app.add_line(placed("n1", 2, 1, false), "12:03".into());
        assert_eq!(words(&app), ["a5", "a6", "(gone)", "(start)", "n1"]);
    }

    /// A gap's line goes when nothing will be fetched into it any more:
    /// its room left, or its history begun anew.
    #[test]
    fn a_gap_line_goes_with_its_room_or_its_history() {
        let mut app = app();
        for room in ["lobby", "rust"] {
            let gap = Line::Gap {
                room: room.into(),
                filled: false,
            };
            app.add_line(gap, "12:00".into());
        }
        let gaps = |app: &App| -> Vec<String> {
            app.entries
                .iter()
                .filter(|e| matches!(e.line, Line::Gap { .. }))
                .filter_map(|e| e.room.clone())
                .collect()
        };
        assert_eq!(gaps(&app), ["lobby", "rust"]);
        let mut state = app.state.clone();
        state.rooms = vec!["lobby".into()];
        app.set_state(state);
        assert_eq!(gaps(&app), ["lobby"], "#rust was left");
        let gone = Line::HistoryGone {
            room: "lobby".into(),
        };
        app.add_line(gone, "12:01".into());
        assert!(gaps(&app).is_empty());
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

    #[test]
    fn ctrl_c_clears_then_leaves() {
        let mut app = app();
        type_str(&mut app, "half typed");
        app.handle_event(ctrl('c'));
        assert!(app.input.is_empty());
        assert!(app.take_effects().is_empty());
        assert!(!app.ctrl_c_armed, "clearing a line does not arm leaving");
        app.handle_event(ctrl('c'));
        assert!(app.take_effects().is_empty(), "the empty line only warns");
        assert!(app.ctrl_c_armed);
        app.handle_event(ctrl('c'));
        assert_eq!(app.take_effects(), [Effect::LeaveNow]);

        // On an empty line the first Ctrl-C only warns.
        let mut app = self::app();
        app.handle_event(ctrl('c'));
        assert!(app.take_effects().is_empty());
        assert!(app.ctrl_c_armed);
        type_str(&mut app, "x");
        app.handle_event(ctrl('c'));
        assert!(app.take_effects().is_empty(), "a key in between disarms");
        assert!(app.input.is_empty());
        app.handle_event(ctrl('c'));
        assert!(app.take_effects().is_empty());
        app.handle_event(ctrl('c'));
        assert_eq!(app.take_effects(), [Effect::LeaveNow]);
    }

    #[test]
    fn ctrl_d_and_quit_leave_gracefully() {
        let mut app = app();
        type_str(&mut app, "ab");
        app.handle_event(key(KeyCode::Home));
        app.handle_event(ctrl('d'));
        assert_eq!(app.input.text(), "b");
        app.handle_event(ctrl('u'));
        app.handle_event(ctrl('e'));
        app.handle_event(ctrl('k'));
        app.handle_event(ctrl('d'));
        assert_eq!(app.input.text(), "b");
        app.handle_event(ctrl('a'));
        app.handle_event(ctrl('k'));
        app.handle_event(ctrl('d'));
        assert_eq!(app.take_effects(), [Effect::End]);
        assert!(app.quitting);
        type_str(&mut app, "ignored");
        assert!(app.input.is_empty());

        let mut app = self::app();
        type_str(&mut app, "/QUIT");
        app.handle_event(key(KeyCode::Enter));
        assert_eq!(app.take_effects(), [Effect::Send("/QUIT".into())]);
        assert!(app.quitting);
        // While leaving, Ctrl-C leaves at once.
        app.handle_event(ctrl('c'));
        assert_eq!(app.take_effects(), [Effect::LeaveNow]);
    }

    #[test]
    fn enter_sends_and_clear_clears_the_current_room() {
        let mut app = app();
        app.add_line(msg("lobby", "bob", &[], "one"), "12:00".into());
        app.add_line(msg("rust", "bob", &[], "two"), "12:00".into());
        type_str(&mut app, "hello");
        app.handle_event(key(KeyCode::Enter));
        type_str(&mut app, "   ");
        app.handle_event(key(KeyCode::Enter));
        assert_eq!(app.take_effects(), [Effect::Send("hello".into())]);
        type_str(&mut app, "/Clear");
        app.handle_event(key(KeyCode::Enter));
        // The session hears of it too: /history starts from the newest again.
        assert_eq!(app.take_effects(), [Effect::Send("/Clear".into())]);
        assert_eq!(app.entries.len(), 1, "#rust keeps its line");
        type_str(&mut app, "/HELP");
        app.handle_event(key(KeyCode::Enter));
        assert!(app.take_effects().is_empty(), "the screen's own help");
        assert_eq!(app.entries.len(), 1 + HELP.len());
        for _ in 0..3 {
            app.handle_event(key(KeyCode::Up));
        }
        assert_eq!(app.input.text(), "hello");
    }

    #[test]
    fn a_line_too_long_to_send_stays_in_the_input_after_enter() {
        let mut app = app();
        app.state.max_text = 12;
        type_str(&mut app, "@bob twelve bytes!");
        app.handle_event(key(KeyCode::Enter));
        // The session refuses it and says why; the line is kept to edit.
        assert_eq!(
            app.take_effects(),
            [Effect::Send("@bob twelve bytes!".into())]
        );
        assert_eq!(app.input.text(), "@bob twelve bytes!");
        app.handle_event(ctrl('u'));
        type_str(&mut app, "@bob twelve bytes");
        app.handle_event(key(KeyCode::Enter));
        assert_eq!(
            app.take_effects(),
            [Effect::Send("@bob twelve bytes".into())]
        );
        assert!(app.input.is_empty(), "a line that may fit is sent and gone");
        app.handle_event(key(KeyCode::Up));
        assert_eq!(app.input.text(), "@bob twelve bytes");
    }

    #[test]
    fn a_pasted_line_with_spaces_before_a_slash_is_text() {
        let mut app = app();
        app.handle_event(Event::Paste("first\n  /part\n\t/quit\nrest".into()));
        assert_eq!(
            app.take_effects(),
            [
                Effect::Send("first".into()),
                Effect::Send("//part".into()),
                Effect::Send("//quit".into()),
            ]
        );
        assert_eq!(app.input.text(), "rest");
    }

    #[test]
    fn a_long_paste_asks_once_and_a_short_one_is_sent() {
        let mut app = app();
        type_str(&mut app, "/me ");
        app.handle_event(Event::Paste("waves\r\n/etc\nthird\nhalf".into()));
        assert_eq!(
            app.take_effects(),
            [
                Effect::Send("/me waves".into()),
                Effect::Send("//etc".into()),
                Effect::Send("third".into()),
            ]
        );
        assert_eq!(app.input.text(), "half");
        let long: String = (1..=12).map(|i| format!("line {i}\n")).collect();
        app.handle_event(Event::Paste(long));
        assert!(app.take_effects().is_empty());
        assert_eq!(app.paste.as_ref().map(|q| q.lines.len()), Some(12));
        type_str(&mut app, "x"); // not an answer
        app.handle_event(key(KeyCode::Char('y')));
        let sent = app.take_effects();
        assert_eq!(sent.len(), 12);
        assert_eq!(sent[0], Effect::Send("halfline 1".into()));
        assert!(app.input.is_empty());

        let long: String = (1..=12).map(|i| format!("line {i}\n")).collect();
        type_str(&mut app, "keep");
        app.handle_event(Event::Paste(long));
        app.handle_event(key(KeyCode::Char('n')));
        assert!(app.take_effects().is_empty());
        assert_eq!(app.input.text(), "keep");
        // One line goes into the input line; controls are dropped.
        app.handle_event(Event::Paste(" more\u{1b}[2J\tok".into()));
        assert_eq!(app.input.text(), "keep more[2J    ok");
        assert!(app.take_effects().is_empty());
    }

    /// A paste while another waits for its yes or no joins it: a yes sends
    /// both, in order, the second going on from where the first ended; a
    /// no keeps neither.
    #[test]
    fn a_paste_while_one_waits_joins_it() {
        let mut app = app();
        let first: String = (1..=7).map(|i| format!("a{i}\n")).collect();
        app.handle_event(Event::Paste(format!("{first}half")));
        app.handle_event(Event::Paste(" done\nb1\nb2".into()));
        assert!(app.take_effects().is_empty());
        assert_eq!(app.paste.as_ref().map(|q| q.lines.len()), Some(9));
        app.handle_event(key(KeyCode::Char('y')));
        let sent = app.take_effects();
        let want: Vec<Effect> = (1..=7)
            .map(|i| format!("a{i}"))
            .chain(["half done".into(), "b1".into()])
            .map(Effect::Send)
            .collect();
        assert_eq!(sent, want);
        assert_eq!(app.input.text(), "b2");

        app.handle_event(ctrl('u'));
        type_str(&mut app, "keep");
        app.handle_event(Event::Paste(first.clone()));
        app.handle_event(Event::Paste(first));
        app.handle_event(key(KeyCode::Char('n')));
        assert!(app.take_effects().is_empty());
        assert_eq!(app.input.text(), "keep");

        // The end of the first paste is pasted text, not typed: a line
        // the second one finishes is text even if it starts with /.
        app.handle_event(ctrl('u'));
        let first: String = (1..=7).map(|i| format!("c{i}\n")).collect();
        app.handle_event(Event::Paste(format!("{first}/quit")));
        app.handle_event(Event::Paste("\nlast".into()));
        app.handle_event(key(KeyCode::Char('y')));
        let sent = app.take_effects();
        assert_eq!(
            sent.last(),
            Some(&Effect::Send("//quit".into())),
            "{sent:?}"
        );
    }

    #[test]
    fn tab_completes_nicks_but_not_our_own() {
        let mut app = app();
        type_str(&mut app, "hi a");
        app.handle_event(key(KeyCode::Tab));
        assert_eq!(app.input.text(), "hi a", "only alice starts with a: us");
        app.handle_event(ctrl('u'));
        type_str(&mut app, "c");
        app.handle_event(key(KeyCode::Tab));
        assert_eq!(app.input.text(), "carol: ");
        type_str(&mut app, "/");
        app.handle_event(ctrl('u'));
        type_str(&mut app, "/j");
        app.handle_event(key(KeyCode::Tab));
        type_str(&mut app, "r");
        app.handle_event(key(KeyCode::Tab));
        assert_eq!(app.input.text(), "/join rust ");
    }

    /// Keys in a burst (a slow link): each Ctrl-N goes on from where the
    /// one before went, though the session has not moved yet.
    #[test]
    fn ctrl_n_twice_before_the_session_moves_goes_two_rooms_on() {
        let mut app = app();
        let mut state = app.state.clone();
        state.rooms = ["a", "b", "c", "lobby"].map(String::from).to_vec();
        app.set_state(state.clone());
        app.handle_event(ctrl('n'));
        app.handle_event(ctrl('n'));
        assert_eq!(
            app.take_effects(),
            [
                Effect::Send("/join a".into()),
                Effect::Send("/join b".into())
            ]
        );
        // Taken, and the session says so: from there as ever.
        state.lines_taken = 2;
        state.current = Some("b".into());
        app.set_state(state);
        app.handle_event(ctrl('p'));
        assert_eq!(app.take_effects(), [Effect::Send("/join a".into())]);
    }

    /// Ctrl-N to the next room, Ctrl-P back (before the session moved:
    /// back from where Ctrl-N went).
    #[test]
    fn ctrl_n_and_ctrl_p_switch_rooms() {
        let mut app = app();
        app.handle_event(ctrl('n'));
        app.handle_event(ctrl('p'));
        assert_eq!(
            app.take_effects(),
            [
                Effect::Send("/join rust".into()),
                Effect::Send("/join lobby".into())
            ]
        );
    }

    #[test]
    fn scrolled_back_the_view_stays_put() {
        let mut app = app();
        app.area = (40, 10);
        for i in 0..30 {
            app.add_line(msg("lobby", "bob", &[], &format!("m{i}")), "12:00".into());
        }
        app.handle_event(key(KeyCode::PageUp));
        assert_eq!(app.scroll, 9);
        app.add_line(msg("lobby", "bob", &[], "new"), "12:00".into());
        assert_eq!((app.scroll, app.new_below), (10, 1));
        // What a page of history brought is said at the bottom, and is
        // not news there.
        let note = Line::HistoryNote {
            room: "lobby".into(),
            text: "5 older messages of #lobby; /history shows more".into(),
        };
        // A line in another room does not move the view.
        app.add_line(msg("rust", "bob", &[], "elsewhere"), "12:00".into());
        assert_eq!(app.scroll, 10);
        app.add_line(note, "12:00".into());
        assert_eq!(app.new_below, 1);
        app.handle_event(key(KeyCode::Esc));
        assert_eq!((app.scroll, app.new_below), (0, 0));
    }

    /// PageUp twice in #lobby, Ctrl-N, Ctrl-P: #lobby was back at its
    /// newest line, and what it said below the screen was gone. Each
    /// room is shown where its reader left it, the same lines on the
    /// screen, what came in it meanwhile new below; a room left at its
    /// newest line is shown from its newest.
    #[test]
    fn a_room_come_back_to_is_where_its_reader_left_it() {
        let mut app = app();
        let say = |app: &mut App, room: &str, text: String| {
            app.add_line(msg(room, "bob", &[], &text), "12:00".into());
        };
        let make_current = |app: &mut App, room: &str| {
            let mut state = app.state.clone();
            state.current = Some(room.into());
            app.set_state(state);
        };
        for i in 0..60 {
            say(&mut app, "lobby", format!("l{i}"));
        }
        say(&mut app, "rust", "r0".into());
        area_rows(&mut app);
        app.handle_event(key(KeyCode::PageUp));
        area_rows(&mut app);
        app.handle_event(key(KeyCode::PageUp));
        let read = area_rows(&mut app);
        assert!(read[0].ends_with("bob: l32"), "{read:?}");

        make_current(&mut app, "rust");
        assert_eq!(app.scroll, 0);
        for i in 60..63 {
            say(&mut app, "lobby", format!("l{i}"));
            say(&mut app, "rust", format!("r{i}"));
        }
        make_current(&mut app, "lobby");
        assert_eq!(area_rows(&mut app), read);
        assert_eq!(app.new_below, 3);

        make_current(&mut app, "rust");
        let newest = area_rows(&mut app);
        assert!(newest[9].ends_with("bob: r62"), "{newest:?}");
        make_current(&mut app, "lobby");
        app.handle_event(key(KeyCode::Esc));
        make_current(&mut app, "rust");
        say(&mut app, "lobby", "l63".into());
        make_current(&mut app, "lobby");
        assert_eq!((app.scroll, app.new_below), (0, 0));
        assert!(area_rows(&mut app)[9].ends_with("bob: l63"));
    }

    /// Read back while 30 lines came: `30 new below` stayed 30 as the
    /// reader read down through them, to the last. It counts those still
    /// wholly below the screen.
    #[test]
    fn new_below_counts_the_new_lines_still_below_the_screen() {
        let mut app = app();
        for i in 0..100 {
            app.add_line(msg("lobby", "bob", &[], &format!("m{i}")), "12:00".into());
        }
        area_rows(&mut app);
        app.handle_event(key(KeyCode::PageUp));
        assert_eq!(app.scroll, 9);
        for i in 0..30 {
            app.add_line(msg("lobby", "bob", &[], &format!("n{i}")), "12:01".into());
        }
        let mut counts = vec![];
        while app.scroll > 0 {
            area_rows(&mut app);
            counts.push(app.new_below);
            app.handle_event(key(KeyCode::PageDown));
        }
        assert_eq!(counts, [30, 30, 21, 12, 3]);
    }

    /// In a room cut, the lines not kept are below the screen until its
    /// newest are fetched: read down to its last lines, they are still
    /// counted, and those kept (its messages before the cut, who came
    /// since) as far as they are below the screen.
    #[test]
    fn new_below_in_a_room_cut_counts_what_was_not_kept() {
        let mut app = self::app();
        let last = cut_lobby(&mut app);
        area_rows(&mut app);
        // m1 to m100 read back, then m101 on, to m{last}: those after
        // the last kept were not.
        let kept = lobby_seqs(&app).last().copied().unwrap_or(0);
        let unkept = (last - kept) as usize;
        assert!(kept > 100 && unkept > 0, "{kept} {unkept}");
        assert_eq!(app.new_below, (last - 100) as usize);
        for nick in ["dave", "erin", "frank", "gina"] {
            let came = Line::Presence {
                room: Some("lobby".into()),
                nick: nick.into(),
                online: true,
            };
            app.add_line(came, "12:02".into());
        }
        assert_eq!(app.new_below, (last - 100) as usize + 4);
        app.scroll = 20;
        app.handle_event(key(KeyCode::PageDown));
        app.handle_event(key(KeyCode::PageDown));
        let rows = area_rows(&mut app);
        assert_eq!(app.scroll, 2);
        assert!(rows[9].contains("erin"), "{rows:?}");
        assert_eq!(app.new_below, unkept + 2);
    }

    /// Typing on at once after sending, before the refused line came
    /// back into the input: the keys joined it ("hello" + "how").
    /// It is kept for Up, and said. Keys typed later than that edit it:
    /// they were typed with it in sight.
    #[test]
    fn keys_typed_as_a_refused_line_comes_back_do_not_join_it() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut app = self::app();
        for line in ["hello", "second"] {
            type_str(&mut app, line);
            app.handle_event(key(KeyCode::Enter));
        }
        app.refused(1);
        app.drawn(ms(0));
        assert_eq!(app.input.text(), "hello", "back in the empty input");
        // Scrolling is not typing: it leaves the line there.
        app.handle_term(key(KeyCode::PageUp), ms(10));
        assert_eq!(app.input.text(), "hello");
        for (i, c) in "how".chars().enumerate() {
            app.handle_term(key(KeyCode::Char(c)), ms(20 + i as u64));
        }
        assert_eq!(app.input.text(), "how");
        let said = |app: &App| -> Vec<String> {
            app.entries
                .iter()
                .filter_map(|e| match &e.line {
                    Line::Info(text) => Some(text.clone()),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(said(&app), ["not sent; Up brings it back: hello"]);
        app.handle_event(key(KeyCode::Up));
        assert_eq!(app.input.text(), "hello", "the first one Up brings back");
        app.handle_event(key(KeyCode::Down));
        assert_eq!(app.input.text(), "how");

        // Typed after a second with the line in sight: it is mended.
        app.handle_event(ctrl('u'));
        type_str(&mut app, "again");
        app.handle_event(key(KeyCode::Enter));
        app.refused(3);
        app.drawn(ms(5_000));
        app.handle_term(key(KeyCode::Char('!')), ms(6_000));
        assert_eq!(app.input.text(), "again!");
        assert_eq!(said(&app).len(), 1);
    }

    /// A message the server refused comes back into the input, to be
    /// mended, unless something is being typed there.
    #[test]
    fn a_refused_message_comes_back_into_an_empty_input() {
        let mut app = self::app();
        for line in ["hello", "@zed hi there", "@nobody else"] {
            type_str(&mut app, line);
            app.handle_event(key(KeyCode::Enter));
        }
        assert_eq!(app.take_effects().len(), 3);
        assert!(app.input.is_empty());
        app.refused(2);
        assert_eq!(app.input.text(), "@zed hi there");
        // Being typed: left as it is; Up brings it back first.
        app.refused(3);
        assert_eq!(app.input.text(), "@zed hi there");
        app.handle_event(key(KeyCode::Up));
        assert_eq!(app.input.text(), "@nobody else");
        // A line it does not know (or already put back): nothing.
        app.input.clear();
        app.refused(2);
        app.refused(9);
        assert!(app.input.is_empty());
    }

    /// A message given up unconfirmed after a lost session comes back
    /// into an empty input, to be sent again if it did not arrive; with
    /// something being typed, Up brings it, and the note says what
    /// became of it (not "not sent": it may have arrived).
    #[test]
    fn an_unconfirmed_message_comes_back_to_be_sent_again() {
        let mut app = self::app();
        for line in ["@bob secret", "hello all"] {
            type_str(&mut app, line);
            app.handle_event(key(KeyCode::Enter));
        }
        app.take_effects();
        app.unconfirmed(1);
        assert_eq!(app.input.text(), "@bob secret");
        app.unconfirmed(2);
        assert_eq!(app.input.text(), "@bob secret");
        let said: Vec<String> = (app.entries.iter())
            .filter_map(|e| match &e.line {
                Line::Info(text) => Some(text.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(said, ["not confirmed; Up brings it back: hello all"]);
        app.handle_event(key(KeyCode::Up));
        assert_eq!(app.input.text(), "hello all");
    }

    /// "hello" sent, refused and put back into the input, drawn at
    /// `t0`.
    fn refused_hello(t0: Instant) -> App {
        let mut app = self::app();
        type_str(&mut app, "hello");
        app.handle_event(key(KeyCode::Enter));
        app.take_effects();
        app.refused(1);
        app.drawn(t0);
        assert_eq!(app.input.text(), "hello");
        app
    }

    /// The notes saying a refused line is kept for Up.
    fn not_sent_notes(app: &App) -> Vec<&Entry> {
        app.entries
            .iter()
            .filter(|e| matches!(&e.line, Line::Info(t) if t.starts_with("not sent")))
            .collect()
    }

    /// Ctrl-N (a room switch, no edit) just after a refused line came
    /// back took it out of the input.
    #[test]
    fn a_room_switch_as_a_refused_line_comes_back_leaves_it_in_the_input() {
        let t0 = Instant::now();
        let mut app = refused_hello(t0);
        app.handle_term(ctrl('n'), t0 + Duration::from_millis(100));
        assert_eq!(app.input.text(), "hello", "Ctrl-N does not edit the input");
        assert_eq!(app.take_effects(), [Effect::Send("/join rust".into())]);
        assert!(not_sent_notes(&app).is_empty());
    }

    /// Ctrl-D just after a refused line came back emptied the line and
    /// then, on the empty line, ended the client: the refused line, in
    /// sight in the input, was lost with it.
    #[test]
    fn ctrl_d_as_a_refused_line_comes_back_does_not_end_the_client() {
        let t0 = Instant::now();
        let mut app = refused_hello(t0);
        app.handle_term(ctrl('d'), t0 + Duration::from_millis(300));
        assert!(
            !app.take_effects().contains(&Effect::End),
            "Ctrl-D on the line shown ended the client; input {:?}",
            app.input.text()
        );
        assert_eq!(app.input.text(), "hello");
    }

    /// Ctrl-C just after a refused line came back took it out, and a
    /// second Ctrl-C on the empty line armed leaving (a third left):
    /// twice left at once. It clears the line as on any line typed.
    #[test]
    fn ctrl_c_as_a_refused_line_comes_back_clears_it_as_any_line() {
        let t0 = Instant::now();
        let mut app = refused_hello(t0);
        app.handle_term(ctrl('c'), t0 + Duration::from_millis(100));
        assert!(app.input.is_empty());
        assert!(!app.ctrl_c_armed, "the line was cleared, not leaving");
        app.handle_term(ctrl('c'), t0 + Duration::from_millis(200));
        assert!(app.take_effects().is_empty(), "left at the second Ctrl-C");
        assert!(not_sent_notes(&app).is_empty());
    }

    /// Up just after a refused line came back brought the line straight
    /// back, yet a note said it was not in the input.
    #[test]
    fn up_as_a_refused_line_comes_back_says_no_note() {
        let t0 = Instant::now();
        let mut app = refused_hello(t0);
        app.handle_term(key(KeyCode::Up), t0 + Duration::from_millis(100));
        assert_eq!(app.input.text(), "hello");
        assert_eq!(
            not_sent_notes(&app).len(),
            0,
            "a note for a line that is in the input"
        );
    }

    /// Left or Home just after a refused line came back emptied it. They
    /// move the cursor on it, and what is typed next edits it (the
    /// cursor moved: it was seen).
    #[test]
    fn moving_the_cursor_as_a_refused_line_comes_back_keeps_it_to_edit() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        for (moves, edited) in [
            (&[key(KeyCode::Left)][..], "hellxo"),
            (&[key(KeyCode::Home)][..], "xhello"),
            (&[ctrl('a'), ctrl('e')][..], "hellox"),
        ] {
            let mut app = refused_hello(t0);
            for (i, m) in moves.iter().enumerate() {
                app.handle_term(m.clone(), ms(50 + i as u64));
                assert_eq!(app.input.text(), "hello", "{m:?}");
            }
            app.handle_term(key(KeyCode::Char('x')), ms(100));
            assert_eq!(app.input.text(), edited);
            assert!(not_sent_notes(&app).is_empty());
        }
    }

    /// The window starts when the line is drawn: keys handled before that
    /// draw were typed before it could be seen, however late they are
    /// handled; after it, those within a second.
    #[test]
    fn a_refused_line_is_seen_once_drawn() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut app = self::app();
        type_str(&mut app, "hello");
        app.handle_event(key(KeyCode::Enter));
        app.refused(1);
        app.handle_term(key(KeyCode::Char('h')), ms(3_000));
        assert_eq!(app.input.text(), "h", "typed before the draw");
        assert_eq!(not_sent_notes(&app).len(), 1);

        for (typed_at, input) in [(900, "x"), (1_000, "hellox")] {
            let mut app = refused_hello(ms(5_000));
            app.handle_term(key(KeyCode::Char('x')), ms(5_000 + typed_at));
            assert_eq!(app.input.text(), input, "{typed_at} ms after the draw");
        }
    }

    /// Ctrl-N, then a key typed on (to the room switched to) before the
    /// refused line could be seen: the note was filed in the room left,
    /// the switch not taken yet, and in the room switched to the line
    /// was gone without a word.
    #[test]
    fn the_note_of_a_refused_line_is_said_in_the_room_switched_to() {
        let t0 = Instant::now();
        let mut app = refused_hello(t0);
        app.handle_term(ctrl('n'), t0 + Duration::from_millis(100));
        app.handle_term(key(KeyCode::Char('x')), t0 + Duration::from_millis(150));
        assert_eq!(app.input.text(), "x");
        let mut st = app.state.clone();
        st.current = Some("rust".into());
        app.set_state(st);
        let current = app.state.current.clone();
        let seen = not_sent_notes(&app)
            .into_iter()
            .any(|e| super::shown_in(e, &current));
        assert!(
            seen,
            "input {:?}; the note is not in #rust's view",
            app.input.text()
        );
    }

    /// "hello" typed, then `/join ops`, then "draft" in the input; and the
    /// session's state once it has taken both lines, #ops being entered
    /// (for the test to give the app when it wants).
    fn a_line_behind_a_join() -> (App, State) {
        let mut app = self::app();
        type_str(&mut app, "hello");
        app.handle_event(key(KeyCode::Enter));
        type_str(&mut app, "/join ops");
        app.handle_event(key(KeyCode::Enter));
        type_str(&mut app, "draft");
        let mut st = app.state.clone();
        st.lines_taken = 2;
        st.current = Some("ops".into());
        st.rooms.push("ops".into());
        st.entering.push("ops".into());
        (app, st)
    }

    /// A refused line kept for Up while a `/join` of a room not entered
    /// yet waited to be taken, or to be answered: its note went to that
    /// room, and when the server would not let us in, the room was never
    /// shown, nor the note. It is moved to the room current then; in the
    /// room entered it stays.
    #[test]
    fn the_note_of_a_refused_line_is_seen_when_the_join_ahead_is_refused() {
        for (taken, refused) in [(false, true), (true, true), (false, false), (true, false)] {
            let case = format!("join taken first: {taken}; refused: {refused}");
            let (mut app, mut st) = a_line_behind_a_join();
            if taken {
                app.set_state(st.clone());
                app.refused(1);
            } else {
                app.refused(1);
                app.set_state(st.clone());
            }
            assert_eq!(not_sent_notes(&app).len(), 1, "{case}");
            st.entering.clear();
            if refused {
                st.current = Some("lobby".into());
                st.rooms.retain(|r| r != "ops");
            }
            app.set_state(st);
            let current = app.state.current.clone();
            let seen = not_sent_notes(&app)
                .into_iter()
                .any(|e| super::shown_in(e, &current));
            assert!(seen, "{case}: not in the view of {current:?}");
            // Not moved again later (the room parted, say).
            let mut st = app.state.clone();
            st.current = Some("rust".into());
            st.rooms.retain(|r| r != "ops");
            app.set_state(st);
            let filed = not_sent_notes(&app)[0].room.clone();
            let want = if refused { "lobby" } else { "ops" };
            assert_eq!(filed.as_deref(), Some(want), "{case}");
        }
    }

    /// A refused line kept for Up while a `/join ops` waits for its
    /// answer, and the connection goes before it: the session's state
    /// then still lists #ops among the rooms, no longer among those being
    /// entered, so the note was taken as #ops's for good; the reconnect's
    /// enter of #ops refused, it was in a room never shown. While not
    /// joined, where it goes waits; back, and #ops refused, it is in the
    /// room current then.
    #[test]
    fn the_note_of_a_refused_line_is_seen_if_the_join_is_refused_after_a_reconnect() {
        let (mut app, mut st) = a_line_behind_a_join();
        app.set_state(st.clone());
        app.refused(1);
        // The connection lost before #ops is answered.
        st.joined = false;
        st.entering.clear();
        app.set_state(st.clone());
        // Back: the core enters #ops again...
        st.joined = true;
        st.entering.push("ops".into());
        app.set_state(st.clone());
        // ...and it is refused.
        st.entering.clear();
        st.current = Some("lobby".into());
        st.rooms.retain(|r| r != "ops");
        app.set_state(st);
        let current = app.state.current.clone();
        let seen = not_sent_notes(&app)
            .into_iter()
            .any(|e| super::shown_in(e, &current));
        assert!(seen, "the note is filed under #ops, never shown");
    }

    /// A line refused while Up and Down browse the lines typed before:
    /// the note said Up brings it back, and Up went on further back.
    /// The next Up brings it, and browsing goes on from there.
    #[test]
    fn a_line_refused_while_browsing_is_the_next_up_brings_back() {
        let mut app = self::app();
        for line in ["one", "two", "hello"] {
            type_str(&mut app, line);
            app.handle_event(key(KeyCode::Enter));
        }
        type_str(&mut app, "draft");
        app.handle_event(key(KeyCode::Up));
        app.handle_event(key(KeyCode::Up));
        assert_eq!(app.input.text(), "two");
        app.refused(3);
        assert_eq!(app.input.text(), "two", "what is shown is left");
        assert_eq!(not_sent_notes(&app).len(), 1);
        let mut seen = Vec::new();
        for k in [
            KeyCode::Up,
            KeyCode::Up,
            KeyCode::Down,
            KeyCode::Down,
            KeyCode::Down,
        ] {
            app.handle_event(key(k));
            seen.push(app.input.text().to_owned());
        }
        assert_eq!(seen, ["hello", "one", "hello", "two", "draft"]);
    }

    /// `/clear` and `/history 50` typed while messages come: the screen
    /// empties the room at once, the session forgets what it showed when
    /// it takes `/clear`, and the messages it sent before that (in
    /// flight) reach the screen after the room was emptied; the page of
    /// the newest 50 brings them again. Each is shown once: a message
    /// whose place is on the screen already is not added again.
    #[test]
    fn messages_in_flight_at_a_clear_are_shown_once_by_the_page_after_it() {
        let mut app = self::app();
        for seq in 1..=10 {
            app.add_line(
                placed_in("lobby", &format!("m{seq}"), 1, seq, false),
                "12:00".into(),
            );
        }
        type_str(&mut app, "/clear");
        app.handle_event(key(KeyCode::Enter));
        type_str(&mut app, "/history 50");
        app.handle_event(key(KeyCode::Enter));
        // Shown by the session before it took "/clear".
        for seq in 11..=13 {
            app.add_line(
                placed_in("lobby", &format!("m{seq}"), 1, seq, false),
                "12:01".into(),
            );
        }
        // A new one after the page was asked, before it came.
        app.add_line(placed_in("lobby", "m14", 1, 14, false), "12:01".into());
        for seq in 1..=14 {
            app.add_line(
                placed_in("lobby", &format!("m{seq}"), 1, seq, true),
                "12:01".into(),
            );
        }
        let seqs: Vec<u64> = app
            .entries
            .iter()
            .filter_map(|e| match &e.line {
                Line::Msg { place, .. } => Some(place.seq),
                _ => None,
            })
            .collect();
        assert_eq!(seqs, (1..=14).collect::<Vec<_>>());
        // The same place in another history of the room is another message.
        app.add_line(placed_in("lobby", "new", 2, 3, false), "12:02".into());
        assert_eq!(app.entries.len(), 15);
    }

    /// Pages (ascending seqs, into holes or below all) keep a room's
    /// messages of one history in seq order, whatever is between them.
    #[test]
    fn pages_keep_a_rooms_messages_in_seq_order() {
        let mut rnd = rng(12345);
        for _round in 0..300 {
            let mut app = self::app();
            let mut shown: Vec<u64> = (1..120).filter(|_| rnd(3) == 0).collect();
            shown.sort();
            for &q in &shown {
                app.add_line(placed(&format!("m{q}"), 1, q, false), "12:00".into());
                if rnd(4) == 0 {
                    app.add_line(msg("rust", "bob", &[], "x"), "12:00".into());
                }
                if rnd(6) == 0 {
                    app.add_line(Line::Info("note".into()), "12:00".into());
                }
            }
            if rnd(2) == 0 {
                app.scroll = rnd(30) as usize;
            }
            let low = shown.first().copied().unwrap_or(120);
            let missing: Vec<u64> = (1..low).collect();
            if missing.is_empty() {
                continue;
            }
            let lo = rnd(missing.len() as u64) as usize;
            let hi = (lo + 1 + rnd(40) as usize).min(missing.len());
            for &q in &missing[lo..hi] {
                app.add_line(placed(&format!("m{q}"), 1, q, true), "12:01".into());
            }
            let seqs: Vec<u64> = app
                .entries
                .iter()
                .filter_map(|e| match &e.line {
                    Line::Msg { place, .. } if e.room.as_deref() == Some("lobby") => {
                        Some(place.seq)
                    }
                    _ => None,
                })
                .collect();
            let mut sorted = seqs.clone();
            sorted.sort();
            assert_eq!(seqs, sorted);
        }
    }
}
