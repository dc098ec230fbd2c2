//! The full-screen client, used when stdin and stdout are a terminal
//! (unless `--plain`): a message area with its own scrollback, a status
//! bar and an input line, drawn with ratatui on crossterm.
//!
//! Files, one job each: `app` (the screen's state, and what keys, pastes
//! and incoming lines do to it, a file a job under `app/`; no I/O),
//! `draw` (the layout, and under `draw/` the message area, the status bar
//! and the input line), `format`
//! (how one line looks), `wrap` (words wrapped with a hanging indent, by
//! display width), `input_line` (the line being typed), `complete` (Tab),
//! `theme` (styles, `NO_COLOR`, nick colours), and in tests `cap_paging`
//! (paging back against a server's history, end to end). This file owns
//! the terminal and the threads.
//!
//! Two threads: one blocks reading the terminal (keys, pastes, the mouse
//! wheel, resizes), the other owns the screen. Both feed one bounded
//! queue, together with the lines and state the network loop sends
//! through [`Tui`]'s [`Ui`] methods, so the screen thread handles
//! everything in order and draws once per burst. What the user types goes
//! back to the network loop through a third thread, so the screen never
//! waits when the loop is not taking input (too many messages in flight).
//! On Linux a fourth watches for the terminal hanging up (see
//! `watch_hangup`).

mod app;
#[cfg(test)]
mod cap_paging;
mod complete;
mod draw;
mod format;
mod input_line;
mod theme;
mod wrap;

use std::cell::RefCell;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use chatproto::ServerFrame;
use crossterm::event::{self, DisableBracketedPaste, EnableBracketedPaste, Event};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use tokio::sync::mpsc;

use self::app::{App, Effect, Sending, State};
use self::theme::Theme;
use crate::console::InputEvent;
use crate::ledger::{LineOutcome, OutcomeKind};
use crate::render::Line;
use crate::session::Session;
use crate::stop::Stop;
use crate::ui::Ui;

/// Lines, states and terminal events waiting for the screen thread: a
/// bound, so a screen that cannot keep up slows the network loop down
/// instead of growing memory.
const SCREEN_QUEUE: usize = 1024;

/// Most messages handled between two draws, so the screen keeps moving
/// during a flood.
const BATCH: usize = 512;

/// Typed lines read ahead of the network loop (as in the line mode).
const INPUT_QUEUE: usize = 256;

/// Mouse reporting for the wheel: button presses only (no motion events)
/// in the SGR encoding. Shift and drag still selects text in most
/// terminals.
const MOUSE_ON: &[u8] = b"\x1b[?1000h\x1b[?1006h";
const MOUSE_OFF: &[u8] = b"\x1b[?1006l\x1b[?1000l";

/// Whether the terminal is in our mode (raw, alternate screen, mouse), so
/// it is given back exactly once: at the end, or from a panic.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// How the screen looks and behaves.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Colours (not under `NO_COLOR`).
    pub color: bool,
    /// Ring the bell when mentioned or written to privately.
    pub bell: bool,
}

/// How long a client whose terminal hung up waits for the server to
/// confirm what was typed before it leaves anyway.
#[cfg(target_os = "linux")]
const HANGUP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Tell the screen when the terminal hangs up (its window closed, its ssh
/// connection gone). SIGHUP says so too, but a client started with SIGHUP
/// ignored (`nohup`, a shell's `trap '' HUP`) would otherwise stay online
/// behind a terminal nobody can type into, its key reader spinning on the
/// end of input (crossterm reads it as "nothing yet", not as an error).
/// Linux only: macOS's poll() answers POLLNVAL for every terminal device.
#[cfg(target_os = "linux")]
fn watch_hangup(screen: mpsc::Sender<ToScreen>) {
    use std::os::fd::AsFd;

    use nix::errno::Errno;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

    let Ok(tty) = std::fs::File::open("/dev/tty") else {
        return;
    };
    let watch = move || {
        // No events asked for: poll() wakes only for a hangup or an error.
        let mut fds = [PollFd::new(tty.as_fd(), PollFlags::empty())];
        loop {
            match poll(&mut fds, PollTimeout::NONE) {
                Err(Errno::EINTR) => continue,
                Err(_) => return,
                Ok(_) => break,
            }
        }
        let gone = PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL;
        if fds[0].revents().is_some_and(|r| r.intersects(gone))
            && screen.blocking_send(ToScreen::TermGone).is_ok()
        {
            // Leaving as on end of input waits for the server to confirm
            // what was typed, across reconnects, while crossterm's reader
            // spins on the dead terminal: a bounded wait, then leave.
            std::thread::sleep(HANGUP_GRACE);
            let _ = screen.blocking_send(ToScreen::LeaveNow);
        }
    };
    let _ = std::thread::Builder::new()
        .name("hangup".into())
        .spawn(watch);
}

/// To the screen thread.
enum ToScreen {
    /// A line to show, and its arrival time (`HH:MM`).
    Line(Line, String),
    /// The session's state changed.
    State(State),
    /// The server refused the message of this input line.
    Refused(u64),
    /// The message of this input line was given up unconfirmed.
    Unconfirmed(u64),
    /// Something happened on the terminal.
    Term(Event),
    /// Time passed: the lines waiting for the server may have waited
    /// long enough to be said ([`App::wake_at`]).
    Tick,
    /// The terminal cannot be read any more.
    TermGone,
    /// Leave at once, as a second Ctrl-C does.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    LeaveNow,
    /// Give the terminal back and stop.
    Finish,
}

/// The running full-screen client. See the [module docs](self).
pub struct Tui {
    input: mpsc::Receiver<InputEvent>,
    /// SIGINT and SIGTERM: leave as `/quit` does.
    stop: Stop,
    screen: mpsc::Sender<ToScreen>,
    /// The screen thread; it ends with the typed messages the session
    /// never took.
    thread: Option<JoinHandle<Vec<Sending>>>,
    /// The state last sent to the screen.
    last: RefCell<State>,
    /// The roster it showed.
    shown: RefCell<Shown>,
}

impl Tui {
    /// Take over the terminal and start the screen, showing `session`;
    /// `stop` tells when a signal asks to leave.
    pub fn start(options: Options, session: &Session, stop: Stop) -> io::Result<Tui> {
        terminal::enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        let terminal =
            match enter().and_then(|()| Terminal::new(CrosstermBackend::new(io::stdout()))) {
                Ok(t) => t,
                Err(e) => {
                    restore();
                    return Err(e);
                }
            };
        let (screen_tx, screen_rx) = mpsc::channel(SCREEN_QUEUE);
        // The screen hands typed lines to a thread that waits for room in
        // the network loop's queue, so the screen itself never waits.
        let (typed_tx, typed_rx) = std::sync::mpsc::channel::<InputEvent>();
        let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);
        std::thread::Builder::new()
            .name("typed".into())
            .spawn(move || {
                for event in typed_rx {
                    if input_tx.blocking_send(event).is_err() {
                        return;
                    }
                }
            })?;
        #[cfg(target_os = "linux")]
        watch_hangup(screen_tx.clone());
        let keys = screen_tx.clone();
        std::thread::Builder::new()
            .name("keys".into())
            .spawn(move || loop {
                let msg = match event::read() {
                    Ok(event) => ToScreen::Term(event),
                    Err(_) => ToScreen::TermGone,
                };
                let gone = matches!(msg, ToScreen::TermGone);
                if keys.blocking_send(msg).is_err() || gone {
                    return;
                }
            })?;
        let mut app = App::new(
            Theme {
                color: options.color,
            },
            options.bell,
        );
        // The lines the handshake held are filed under the rooms as they
        // are now.
        let mut shown = Shown::default();
        let state = state_of(session, &mut shown);
        app.set_state(state.clone());
        let thread = std::thread::Builder::new()
            .name("screen".into())
            .spawn(move || screen_loop(terminal, app, screen_rx, typed_tx))?;
        Ok(Tui {
            input: input_rx,
            stop,
            screen: screen_tx,
            thread: Some(thread),
            last: RefCell::new(state),
            shown: RefCell::new(shown),
        })
    }

    /// Give the terminal back as it was, and say there which messages of
    /// `session` were never confirmed. Call before writing to stderr and
    /// exiting.
    pub fn finish(mut self, session: &Session) {
        let mut untaken = Vec::new();
        if self.screen.blocking_send(ToScreen::Finish).is_ok() {
            if let Some(thread) = self.thread.take() {
                untaken = thread.join().unwrap_or_default();
            }
        }
        restore();
        let mut unsent = state_of(session, &mut self.shown.borrow_mut()).pending;
        unsent.extend(untaken);
        tell_unsent(&unsent);
    }
}

impl Ui for Tui {
    fn input(&mut self) -> (&mut mpsc::Receiver<InputEvent>, &mut Stop) {
        (&mut self.input, &mut self.stop)
    }

    async fn print(&self, line: &Line) {
        let time = format::time_column(line, chrono::Local::now());
        // The screen only stops when the terminal is gone.
        let _ = self.screen.send(ToScreen::Line(line.clone(), time)).await;
    }

    /// Frames are shown only by `--json`, which is the line mode.
    async fn frame(&self, _frame: &ServerFrame) {}

    /// A refused line is already in the message area, as an error line
    /// (stderr is the terminal the screen is drawn on); it goes back into
    /// the input to be mended, whether the server refused the message or
    /// the client the line (a command mistyped: `/join bad room`). So does
    /// a message given up unconfirmed after a lost session (a line said
    /// so): to be sent again if it did not arrive.
    async fn outcome(&self, outcome: &LineOutcome) {
        let to_screen = match outcome.kind {
            OutcomeKind::Refused { .. } => ToScreen::Refused(outcome.line),
            OutcomeKind::Unconfirmed { .. } => ToScreen::Unconfirmed(outcome.line),
            _ => return,
        };
        let _ = self.screen.send(to_screen).await;
    }

    async fn update(&self, session: &Session) {
        let state = state_of(session, &mut self.shown.borrow_mut());
        if *self.last.borrow() == state {
            return;
        }
        self.last.replace(state.clone());
        let _ = self.screen.send(ToScreen::State(state)).await;
    }

    fn line_handled(&self, _session: &Session) {}
}

/// The current room's roster as last made, with its version then: a
/// large room's list (thousands of names) is made again only when the
/// version changes, not after every read. A version names one list of one
/// room (0: none), so another room current is another version too.
#[derive(Default)]
struct Shown {
    version: u64,
    roster: Arc<[String]>,
}

impl Shown {
    /// Who is in `room` (no one for none).
    fn roster(&mut self, session: &Session, room: Option<&str>) -> Arc<[String]> {
        let room = room.unwrap_or_default();
        let version = session.roster_version(room);
        if self.version != version {
            self.roster = session
                .roster(room)
                .into_iter()
                .map(str::to_owned)
                .collect();
            self.version = version;
        }
        Arc::clone(&self.roster)
    }
}

/// What the screen shows of `session`.
fn state_of(session: &Session, shown: &mut Shown) -> State {
    let current = session.current_room().map(str::to_owned);
    State {
        nick: session.nick().to_owned(),
        prompt: session.prompt(),
        roster: shown.roster(session, current.as_deref()),
        current,
        rooms: session.rooms().map(str::to_owned).collect(),
        entering: session.entering().map(str::to_owned).collect(),
        listed_rooms: session.listed_rooms().to_vec(),
        query: session.query().map(str::to_owned),
        pending: session
            .pending()
            .map(|p| Sending {
                id: p.id.to_owned(),
                room: p.room.to_owned(),
                to: p.to.to_vec(),
                text: p.text.to_owned(),
                may_have_arrived: p.may_have_arrived,
            })
            .collect(),
        joined: session.is_joined(),
        leaving: session.input_done(),
        max_text: session.max_text_bytes(),
        lines_taken: session.lines_read(),
        older: session
            .current_room()
            .is_some_and(|r| session.pages_back(r)),
        paging: session
            .current_room()
            .is_some_and(|r| session.page_waiting(r)),
        older_taken: session.older_taken(),
        let_go_taken: session.let_go_taken(),
    }
}

/// The alternate screen (the shell's screen comes back untouched at the
/// end), bracketed paste (a paste arrives whole, not as typing) and the
/// mouse wheel.
fn enter() -> io::Result<()> {
    let mut out = io::stdout();
    crossterm::execute!(out, EnterAlternateScreen, EnableBracketedPaste)?;
    out.write_all(MOUSE_ON)?;
    out.flush()
}

/// What to say, once the shell's screen is back, of messages typed but
/// never confirmed: how many, and each as it could be typed again (they
/// are gone with the screen). `None` when there are none.
fn unsent_report(pending: &[Sending]) -> Option<String> {
    let each = pending
        .iter()
        .map(|p| (&*p.room, &p.to[..], &*p.text, p.may_have_arrived));
    crate::session::unconfirmed_report("typed", each)
}

/// Write the [`unsent_report`], if any, to stderr in one write.
fn tell_unsent(pending: &[Sending]) {
    if let Some(report) = unsent_report(pending) {
        let _ = io::stderr().lock().write_all(report.as_bytes());
    }
}

/// Put the terminal back as it was, once.
fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    let mut out = io::stdout();
    let _ = out.write_all(MOUSE_OFF);
    let _ = crossterm::execute!(
        out,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = terminal::disable_raw_mode();
}

/// Ctrl-L: clear the whole screen and have the next draw write every cell.
/// (Not `Terminal::clear`: it first asks the terminal where the cursor is,
/// an answer the keys thread is waiting to read, and gives up without
/// clearing.) A resize to the same size clears and forgets the last frame.
fn repaint(terminal: &mut Terminal<CrosstermBackend<io::Stdout>>) -> io::Result<()> {
    let size = terminal.size()?;
    terminal.resize(ratatui::layout::Rect::new(0, 0, size.width, size.height))
}

/// Leave from the screen thread, at once: the network loop may be
/// waiting for echoes and not reading input.
fn leave_now(app: &App) -> ! {
    restore();
    let mut unsent = app.state.pending.clone();
    unsent.extend(app.waiting_messages());
    tell_unsent(&unsent);
    std::process::exit(i32::from(crate::error::code::INTERRUPTED));
}

/// The screen thread: take what comes, in order, and draw after each
/// burst. It ends with the typed messages the session never took.
fn screen_loop(
    mut terminal: Terminal<CrosstermBackend<io::Stdout>>,
    mut app: App,
    mut rx: mpsc::Receiver<ToScreen>,
    input: std::sync::mpsc::Sender<InputEvent>,
) -> Vec<Sending> {
    let _ = terminal.draw(|f| draw::draw(f, &mut app));
    // To wait for what comes, or until the app's next wake, whichever is
    // first (without one, for what comes only).
    let clock = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .ok();
    loop {
        let first = match (app.wake_at(), &clock) {
            (Some(at), Some(clock)) => {
                let at = tokio::time::Instant::from_std(at);
                // (The timer is made inside: it needs the runtime.)
                clock
                    .block_on(async { tokio::time::timeout_at(at, rx.recv()).await })
                    .unwrap_or(Some(ToScreen::Tick))
            }
            _ => rx.blocking_recv(),
        };
        let Some(first) = first else {
            break;
        };
        let mut next = Some(first);
        let mut handled = 0;
        let (mut bell, mut redraw) = (false, false);
        while let Some(msg) = next.take() {
            match msg {
                ToScreen::Line(line, time) => app.add_line(line, time),
                ToScreen::State(state) => app.set_state(state),
                ToScreen::Refused(line) => app.refused(line),
                ToScreen::Unconfirmed(line) => app.unconfirmed(line),
                ToScreen::Term(event) => app.handle_term(event, std::time::Instant::now()),
                ToScreen::Tick => {}
                ToScreen::TermGone => {
                    let _ = input.send(InputEvent::End);
                }
                ToScreen::LeaveNow => leave_now(&app),
                ToScreen::Finish => {
                    restore();
                    return app.waiting_messages();
                }
            }
            for effect in app.take_effects() {
                match effect {
                    Effect::Send(line) => {
                        let _ = input.send(InputEvent::Line(line));
                    }
                    Effect::Older(limit) => {
                        let _ = input.send(InputEvent::Older(limit));
                    }
                    Effect::LetGo(room, kept) => {
                        let _ = input.send(InputEvent::LetGo(room, kept));
                    }
                    Effect::Cut(room, last) => {
                        let _ = input.send(InputEvent::Cut(room, last));
                    }
                    Effect::End => {
                        let _ = input.send(InputEvent::End);
                    }
                    Effect::LeaveNow => leave_now(&app),
                    Effect::Bell => bell = true,
                    Effect::Redraw => redraw = true,
                }
            }
            handled += 1;
            if handled < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if redraw {
            let _ = repaint(&mut terminal);
        }
        if bell {
            let _ = terminal.backend_mut().write_all(b"\x07");
        }
        app.tick(std::time::Instant::now());
        if terminal.draw(|f| draw::draw(f, &mut app)).is_err() {
            // The terminal is gone: nothing more can be typed.
            let _ = input.send(InputEvent::End);
        }
        // Keys handled before this draw were typed with the screen as
        // it was before it (a refused line put back was not in sight).
        app.drawn(std::time::Instant::now());
    }
    restore();
    app.waiting_messages()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sending(room: &str, to: &[&str], text: &str) -> Sending {
        Sending {
            id: text.into(),
            room: room.into(),
            to: to.iter().map(|n| n.to_string()).collect(),
            text: text.into(),
            may_have_arrived: true,
        }
    }

    /// A room's list is made once and shared while nobody comes or goes
    /// (a message changes nothing in it), and made again when someone
    /// does, or another room becomes the current one.
    #[test]
    fn the_roster_is_made_again_only_when_it_changes() {
        use chatproto::PresenceStatus;
        let mut s = Session::new("alice", &["lobby".into(), "rust".into()], "t-", 65_536);
        s.handle_connected(0);
        let welcome = ServerFrame::welcome("alice", 0, vec![], Some("t".into()), Some(false), None);
        s.handle_frame(0, welcome);
        let online = |n: &[&str]| n.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        s.handle_frame(
            0,
            ServerFrame::entered("lobby", "e", 0, 1, online(&["alice", "bob"]), false),
        );
        s.handle_frame(
            0,
            ServerFrame::entered("rust", "e", 0, 1, online(&["alice"]), false),
        );
        while s.poll().is_some() {}
        let mut shown = Shown::default();
        let first = state_of(&s, &mut shown);
        assert_eq!(s.current_room(), Some("lobby"));
        assert_eq!(*first.roster, ["alice", "bob"]);

        let said = ServerFrame::msg(Some("lobby".into()), 1, "bob", vec![], "hi", 0, None);
        s.handle_frame(0, said);
        while s.poll().is_some() {}
        let after_msg = state_of(&s, &mut shown);
        assert!(Arc::ptr_eq(&first.roster, &after_msg.roster), "made again");

        let came =
            ServerFrame::presence(Some("lobby".into()), 2, "carol", PresenceStatus::Online, 0);
        s.handle_frame(0, came);
        while s.poll().is_some() {}
        let after_join = state_of(&s, &mut shown);
        assert_eq!(*after_join.roster, ["alice", "bob", "carol"]);

        s.handle_line("/join rust");
        while s.poll().is_some() {}
        let other_room = state_of(&s, &mut shown);
        assert_eq!(other_room.current.as_deref(), Some("rust"));
        assert_eq!(*other_room.roster, ["alice"]);
    }

    /// A room entered with messages before: its replay (the history)
    /// is shown first, then `* entered #rust`, the note that one is in
    /// now, as the screen is read top down (the replay was below it); a
    /// live message after goes below them all.
    #[test]
    fn a_rooms_replay_is_shown_above_the_line_saying_it_was_entered() {
        use chatproto::PresenceStatus;
        use ratatui::backend::TestBackend;
        use ratatui::Terminal;

        let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
        let mut app = App::new(theme::Theme { color: false }, false);
        let mut shown = Shown::default();
        let mut feed = |s: &mut Session, app: &mut App, frame: Option<ServerFrame>| {
            if let Some(frame) = frame {
                s.handle_frame(0, frame);
            }
            while let Some(action) = s.poll() {
                if let crate::session::Action::Print(line) = action {
                    app.add_line(line, "12:00".into());
                }
            }
            app.set_state(state_of(s, &mut shown));
        };
        s.handle_connected(0);
        let welcome = ServerFrame::welcome("alice", 0, vec![], Some("t".into()), Some(false), None);
        feed(&mut s, &mut app, Some(welcome));
        let entered = ServerFrame::entered("lobby", "e", 0, 1, vec!["alice".into()], false);
        feed(&mut s, &mut app, Some(entered));
        let me = ServerFrame::presence(Some("lobby".into()), 1, "alice", PresenceStatus::Online, 0);
        feed(&mut s, &mut app, Some(me));
        s.handle_line("/join rust");
        feed(&mut s, &mut app, None);
        let online = vec!["alice".into(), "bob".into()];
        let rust = Some("rust".to_owned());
        for frame in [
            ServerFrame::entered("rust", "e2", 0, 1, online, false),
            ServerFrame::msg(rust.clone(), 1, "bob", vec![], "first of old", 0, None).into_replay(),
            ServerFrame::msg(rust.clone(), 2, "bob", vec![], "second of old", 0, None)
                .into_replay(),
            ServerFrame::presence(rust.clone(), 3, "alice", PresenceStatus::Online, 0),
            ServerFrame::msg(rust.clone(), 4, "bob", vec![], "welcome alice", 0, None),
        ] {
            feed(&mut s, &mut app, Some(frame));
        }
        let mut t = Terminal::new(TestBackend::new(60, 8)).unwrap();
        t.draw(|f| draw::draw(f, &mut app)).unwrap();
        let buf = t.backend().buffer().clone();
        let rows: Vec<String> = (0..6)
            .map(|y| {
                let row: String = (0..60).map(|x| buf[(x, y)].symbol()).collect();
                row.trim_end().to_owned()
            })
            .filter(|r| !r.is_empty())
            .collect();
        let at = |text: &str| {
            rows.iter()
                .position(|r| r.contains(text))
                .unwrap_or_else(|| panic!("no {text:?} in {rows:#?}"))
        };
        assert!(at("first of old") < at("second of old"), "{rows:#?}");
        assert!(at("second of old") < at("entered #rust"), "{rows:#?}");
        assert!(at("entered #rust") < at("welcome alice"), "{rows:#?}");
    }

    #[test]
    fn unsent_messages_are_counted_and_listed_to_be_sent_again() {
        assert_eq!(unsent_report(&[]), None);
        assert_eq!(
            unsent_report(&[
                sending("lobby", &[], "hello"),
                sending("rust", &["bob", "carol"], "hi \u{1b}[2J"),
                sending("lobby", &[], "/etc is full"),
                sending("lobby", &["bob"], ":) see you"),
            ])
            .as_deref(),
            Some(
                "chatclient: 4 messages typed were not confirmed by the server and may \
                 not have arrived; to send again:\n  \
                 #lobby: hello\n  \
                 #rust: @bob @carol: hi \\u{1b}[2J\n  \
                 #lobby: //etc is full\n  \
                 #lobby: @bob: :) see you\n"
            )
        );
        // Each listed line, typed again, sends what was not confirmed.
        for (to, text) in [
            (&[][..], "/etc is full"),
            (&["bob"][..], ":) see you"),
            (&["bob", "carol"][..], "hi"),
        ] {
            let report = unsent_report(&[sending("lobby", to, text)]).unwrap();
            let line = report.lines().nth(1).unwrap();
            let typed = line.strip_prefix("  #lobby: ").unwrap();
            match crate::input::parse_line(typed) {
                crate::input::Command::Send {
                    to: got,
                    text: sent,
                } => {
                    assert_eq!(
                        (got, sent.as_str()),
                        (to.iter().map(|n| n.to_string()).collect::<Vec<_>>(), text)
                    );
                }
                other => panic!("{typed:?}: {other:?}"),
            }
        }
        let one = unsent_report(&[sending("lobby", &[], "x")]).unwrap();
        assert!(
            one.starts_with("chatclient: 1 message typed was not"),
            "{one}"
        );
        // Typed while offline, a line never left: it did not arrive, and
        // is said apart from those that may have.
        let offline = |text: &str| Sending {
            may_have_arrived: false,
            ..sending("lobby", &[], text)
        };
        assert_eq!(
            unsent_report(&[offline("a"), sending("lobby", &[], "b"), offline("c")]).as_deref(),
            Some(
                "chatclient: 1 message typed was not confirmed by the server and may not \
                 have arrived; to send again:\n  \
                 #lobby: b\n\
                 chatclient: 2 messages typed were never sent from this client; to send \
                 again:\n  \
                 #lobby: a\n  \
                 #lobby: c\n"
            )
        );
    }
}
