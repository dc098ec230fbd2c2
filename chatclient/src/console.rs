//! The user's side: lines in from stdin, lines out to stdout.
//!
//! Two modes, picked once at start:
//!
//! * **terminal** (stdin and stdout are both terminals): rustyline reads
//!   lines with editing and history on its own thread, and incoming lines
//!   go through its `ExternalPrinter`, which clears the line being typed,
//!   prints above it and redraws it, so typing is never garbled.
//! * **plain** (anything else): a thread reads stdin line by line; lines are
//!   written to stdout as they are, with no prompt.
//!
//! Either way, reading stdin happens on its own thread and writing stdout on
//! another, so neither a slow terminal nor a paused stdin ever stops the
//! network loop from reading the socket.
//!
//! The prompt (`alice #rust> `) names the current room. The network loop
//! sets it with [`Console::set_prompt`] and reports each line it has acted
//! on with [`Console::line_handled`]; after a line that may change the
//! prompt (`/join`, `/part`, `/query`), the editor waits for that (briefly)
//! before it shows the next prompt, so the prompt is never one line behind.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use chatproto::ServerFrame;
use tokio::sync::mpsc;

use crate::ledger::LineOutcome;
use crate::render::{render, Line, Style};
use crate::stop::Stop;

/// Lines the network loop may queue for printing before it waits for the
/// printer: a bound, so a stalled stdout slows the loop instead of growing it.
const OUTPUT_QUEUE: usize = 1024;

/// Input lines read ahead of the network loop.
const INPUT_QUEUE: usize = 256;

/// How long the editor waits for a `/join`, `/part` or `/query` to be acted on
/// before it shows the next prompt anyway (the network loop may be busy
/// reconnecting).
const PROMPT_WAIT: Duration = Duration::from_secs(1);

/// Something the user did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputEvent {
    /// A line, without its line ending.
    Line(String),
    /// A line of more bytes (this many, without its line ending) than
    /// the reader keeps: no message or command could fit the frames
    /// sent, so it was read through and dropped, to be refused as too
    /// large ([`Session::handle_too_long`](crate::session::Session::handle_too_long)).
    TooLong(u64),
    /// End of input (EOF, Ctrl-D, or the line `/quit` was just sent).
    End,
    /// Ctrl-C in the terminal: leave at once.
    Interrupted,
    /// The full-screen client was scrolled up near the current room's
    /// oldest line: fetch this many older messages if there are any
    /// ([`Session::handle_older`](crate::session::Session::handle_older)).
    /// Not a typed line.
    Older(u64),
    /// The full-screen client's message area, at its cap, let go of a
    /// room's oldest messages: what it still shows of the room
    /// ([`Session::handle_let_go`](crate::session::Session::handle_let_go)).
    /// Not a typed line.
    LetGo(String, crate::render::Kept),
    /// The full-screen client's message area cut a room, read back: it
    /// shows none of its messages after the one at this place
    /// ([`Session::handle_cut`](crate::session::Session::handle_cut)).
    /// Not a typed line.
    Cut(String, Option<crate::render::Place>),
}

/// How output looks, decided from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Look {
    /// Line editing with rustyline.
    pub interactive: bool,
    /// Colours and the rest of [`Style`].
    pub style: Style,
    /// A `[HH:MM:SS]` in front of every line.
    pub timestamps: bool,
    /// `--json`: one JSON object per line (see `json.rs`) instead of text.
    pub json: bool,
    /// `--verbatim`: a typed line is never a command (the editor does not
    /// stop reading after `/quit`).
    pub verbatim: bool,
}

impl Look {
    /// Terminal features only where they work: line editing when stdin and
    /// stdout are terminals, timestamps when stdout is, colour when stdout is
    /// and neither `NO_COLOR` (non-empty) nor `TERM=dumb` says otherwise.
    pub fn detect() -> Look {
        let out_tty = std::io::stdout().is_terminal();
        let in_tty = std::io::stdin().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        Look {
            interactive: in_tty && out_tty,
            style: Style {
                color: out_tty && !no_color && !dumb,
            },
            timestamps: out_tty,
            json: false,
            verbatim: false,
        }
    }
}

/// The prompt, shared between the network loop and the editor thread.
#[derive(Default)]
struct Prompt {
    state: Mutex<PromptState>,
    changed: Condvar,
}

#[derive(Default)]
struct PromptState {
    text: String,
    /// Input lines the network loop has acted on.
    handled: u64,
}

impl Prompt {
    fn lock(&self) -> MutexGuard<'_, PromptState> {
        // A panic elsewhere cannot leave a prompt half-written.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The running console: an input receiver and a printer.
pub struct Console {
    /// What the user typed, in order.
    pub input: mpsc::Receiver<InputEvent>,
    output: mpsc::Sender<String>,
    printer: JoinHandle<()>,
    look: Look,
    terminal: Option<TerminalMode>,
    prompt: Arc<Prompt>,
    /// Signals asking to leave (`--stay`); by default, none.
    pub stop: Stop,
    /// Whether a refused line goes to stderr too: not when stderr is the
    /// terminal the line editor already shows it on.
    refusals_to_stderr: bool,
}

impl Console {
    /// Start reading input and a printer thread, with `prompt` shown when
    /// line editing. Read from a pipe or a file, a line of more than
    /// `line_most` bytes is not kept ([`InputEvent::TooLong`]): the client's
    /// `--max-frame-bytes`, which no message it sends can pass, its text
    /// being at least as long as its line.
    pub fn start(look: Look, prompt: &str, line_most: usize) -> std::io::Result<Console> {
        let (in_tx, in_rx) = mpsc::channel(INPUT_QUEUE);
        let (out_tx, out_rx) = mpsc::channel::<String>(OUTPUT_QUEUE);
        let shared = Arc::new(Prompt::default());
        shared.lock().text = prompt.to_owned();
        let refusals_to_stderr = !(look.interactive && std::io::stderr().is_terminal());
        if look.interactive {
            if let Some((printer, terminal)) =
                start_editor(shared.clone(), in_tx.clone(), look.verbatim)?
            {
                let printer = spawn_printer(out_rx, printer);
                return Ok(Console {
                    input: in_rx,
                    output: out_tx,
                    printer,
                    look,
                    terminal: Some(terminal),
                    prompt: shared,
                    stop: Stop::never(),
                    refusals_to_stderr,
                });
            }
        }
        spawn_stdin_reader(in_tx, line_most)?;
        let printer = spawn_printer(out_rx, PlainPrinter(std::io::stdout()));
        Ok(Console {
            input: in_rx,
            output: out_tx,
            printer,
            look,
            terminal: None,
            prompt: shared,
            stop: Stop::never(),
            refusals_to_stderr: true,
        })
    }

    /// The prompt for the next line (the one being typed keeps its own).
    pub fn set_prompt(&self, text: &str) {
        let mut state = self.prompt.lock();
        if state.text != text {
            state.text = text.to_owned();
        }
    }

    /// One more input line has been acted on.
    pub fn line_handled(&self) {
        self.prompt.lock().handled += 1;
        self.prompt.changed.notify_all();
    }

    /// Queue `line` for printing; waits only when the printer is far behind.
    pub async fn print(&self, line: &Line) {
        if self.look.json {
            if let Some(text) = crate::json::note(line, &crate::json::local_time()) {
                let _ = self.output.send(text).await;
            }
            return;
        }
        let time = self
            .look
            .timestamps
            .then(|| line_time(line, chrono::Local::now()));
        let text = render(line, self.look.style, time.as_deref());
        // The printer only stops when stdout is gone; nothing to do then.
        let _ = self.output.send(text).await;
    }

    /// A frame as it arrived (`--json`).
    pub async fn frame(&self, frame: &ServerFrame) {
        if self.look.json {
            let text = crate::json::frame(frame, &crate::json::local_time());
            let _ = self.output.send(text).await;
        }
    }

    /// What became of an input line: a JSON object with `--json`; a line
    /// on stderr when it was refused.
    pub async fn outcome(&self, outcome: &LineOutcome) {
        if self.look.json {
            let text = crate::json::outcome(outcome, &crate::json::local_time());
            let _ = self.output.send(text).await;
        }
        if let Some(why) = outcome.refusal().filter(|_| self.refusals_to_stderr) {
            // One write, so that the line is never cut by stdout's when
            // both go to one file (stderr is unbuffered).
            let line = format!("chatclient: {why}\n");
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }

    /// Print what is queued, then give the terminal back in the mode it had
    /// before line editing started, even if rustyline is still waiting for
    /// a key. Call before writing to stderr and exiting.
    pub fn finish(self) {
        drop(self.output);
        let _ = self.printer.join();
        if let Some(terminal) = self.terminal {
            terminal.restore();
        }
    }
}

/// A line's timestamp: the local time it arrived, or for a message from a
/// room's history or missed while away the local time the server stamped
/// it (with its date when that is not `now`'s day), so an old message
/// never looks new.
fn line_time(line: &Line, now: chrono::DateTime<chrono::Local>) -> String {
    match crate::render::sent_at(line) {
        Some(t) if t.date_naive() == now.date_naive() => t.format("%H:%M:%S").to_string(),
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => now.format("%H:%M:%S").to_string(),
    }
}

/// Where rendered lines go.
trait Sink: Send + 'static {
    fn line(&mut self, text: String) -> std::io::Result<()>;
    fn flush(&mut self) -> std::io::Result<()>;
}

struct PlainPrinter(std::io::Stdout);

impl Sink for PlainPrinter {
    fn line(&mut self, mut text: String) -> std::io::Result<()> {
        text.push('\n');
        self.0.lock().write_all(text.as_bytes())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().flush()
    }
}

struct EditorPrinter<P>(P);

impl<P: rustyline::ExternalPrinter + Send + 'static> Sink for EditorPrinter<P> {
    /// Print `text` as a line of its own. rustyline ends it with a newline
    /// only while it reads a line; between two reads (after `/quit`, while
    /// a `/join` is answered) it writes the text as it is. It adds none to
    /// text that already ends with one, so the newline is always ours.
    fn line(&mut self, mut text: String) -> std::io::Result<()> {
        text.push('\n');
        self.0.print(text).map_err(std::io::Error::other)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn spawn_printer(mut rx: mpsc::Receiver<String>, mut sink: impl Sink) -> JoinHandle<()> {
    std::thread::spawn(move || {
        while let Some(text) = rx.blocking_recv() {
            if sink.line(text).is_err() {
                return;
            }
            // Flush when the queue is empty: one write per burst, but never
            // a line left sitting in a buffer.
            if rx.is_empty() && sink.flush().is_err() {
                return;
            }
        }
        let _ = sink.flush();
    })
}

/// Read stdin line by line on a thread (std's stdin blocks; a thread keeps
/// the runtime free). Bytes that are not UTF-8 are replaced, not dropped.
/// A line longer than `line_most` bytes is not kept: it is read through to
/// its end and handed on as [`InputEvent::TooLong`] with its size.
fn spawn_stdin_reader(tx: mpsc::Sender<InputEvent>, line_most: usize) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut stdin = stdin.lock();
            let mut buf = Vec::new();
            loop {
                let event = match read_line_within(&mut stdin, &mut buf, line_most) {
                    Ok(Read::End) | Err(_) => break,
                    Ok(Read::Line) => {
                        let line = String::from_utf8_lossy(&buf);
                        InputEvent::Line(line.into_owned())
                    }
                    Ok(Read::TooLong(bytes)) => InputEvent::TooLong(bytes),
                };
                if tx.blocking_send(event).is_err() {
                    return;
                }
            }
            let _ = tx.blocking_send(InputEvent::End);
        })?;
    Ok(())
}

/// What [`read_line_within`] read.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    /// A line, in the buffer, without its line ending.
    Line,
    /// A line longer than the bound, of this many bytes (without its line
    /// ending), read through and not kept.
    TooLong(u64),
    /// The end of input.
    End,
}

/// Read one line into `buf` (cleared first), keeping at most `most` bytes
/// of it and its line ending: a longer line is read on to its newline (or
/// the end of input) in the reader's own buffer and only counted, so a
/// line with no end in sight never takes more memory than the bound.
fn read_line_within(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    most: usize,
) -> std::io::Result<Read> {
    use std::io::Read as _;
    buf.clear();
    // Room for the line and a `\r\n`: a line of exactly `most` bytes fits.
    let kept = u64::try_from(most).unwrap_or(u64::MAX).saturating_add(2);
    let n = input.by_ref().take(kept).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(Read::End);
    }
    let ended = buf.last() == Some(&b'\n');
    if ended || (n as u64) < kept {
        // The whole line (ended, or the input did).
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        if buf.len() <= most {
            return Ok(Read::Line);
        }
        let bytes = buf.len() as u64;
        buf.clear();
        return Ok(Read::TooLong(bytes));
    }
    // Over the bound with no newline yet: count the rest, keep none of it.
    let mut bytes = buf.len() as u64;
    let mut last = buf.last().copied();
    buf.clear();
    buf.shrink_to(most.saturating_add(2));
    loop {
        let chunk = match input.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        if let Some(i) = chunk.iter().position(|&b| b == b'\n') {
            bytes += i as u64;
            if i > 0 {
                last = Some(chunk[i - 1]);
            }
            input.consume(i + 1);
            // A `\r` before the newline is its line ending.
            if last == Some(b'\r') {
                bytes -= 1;
            }
            return Ok(Read::TooLong(bytes));
        }
        let len = chunk.len();
        bytes += len as u64;
        last = chunk.last().copied();
        input.consume(len);
    }
    Ok(Read::TooLong(bytes))
}

/// The terminal's mode before rustyline touched it, and whether rustyline
/// is still reading.
struct TerminalMode {
    #[cfg(unix)]
    saved: Option<nix::sys::termios::Termios>,
    editor_done: Arc<AtomicBool>,
}

impl TerminalMode {
    fn save() -> TerminalMode {
        TerminalMode {
            #[cfg(unix)]
            saved: nix::sys::termios::tcgetattr(std::io::stdin()).ok(),
            editor_done: Arc::new(AtomicBool::new(false)),
        }
    }

    /// rustyline restores the mode when `readline` returns; when the server
    /// ends the session, `readline` is still waiting for a key on another
    /// thread, so put the saved mode back ourselves before exiting, and end
    /// the half-typed line so what follows starts on a line of its own.
    fn restore(self) {
        if self.editor_done.load(Ordering::SeqCst) {
            return;
        }
        #[cfg(unix)]
        if let Some(saved) = self.saved {
            use nix::sys::termios::{tcsetattr, SetArg};
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &saved);
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }
}

/// Start rustyline on its own thread. `None` when the terminal cannot do
/// line editing (e.g. `TERM=dumb`); the caller falls back to plain mode.
fn start_editor(
    shared: Arc<Prompt>,
    tx: mpsc::Sender<InputEvent>,
    verbatim: bool,
) -> std::io::Result<
    Option<(
        EditorPrinter<impl rustyline::ExternalPrinter + Send>,
        TerminalMode,
    )>,
> {
    use rustyline::config::Config;
    use rustyline::error::ReadlineError;
    use rustyline::history::DefaultHistory;
    use rustyline::Editor;

    let config = Config::builder()
        .auto_add_history(true)
        .max_history_size(1000)
        .and_then(|b| b.history_ignore_dups(true))
        .map_err(std::io::Error::other)?
        // A paste of many lines arrives as many Enter presses: one message
        // per line, as if typed. The bytes of a burst that rustyline reads
        // past the first Enter are kept for the next line (the crate's
        // `buffer-redux` feature), never dropped.
        .bracketed_paste(false)
        .build();
    let mut editor: Editor<(), DefaultHistory> =
        Editor::with_config(config).map_err(std::io::Error::other)?;
    let Ok(printer) = editor.create_external_printer() else {
        return Ok(None);
    };
    let terminal = TerminalMode::save();
    let done = terminal.editor_done.clone();
    std::thread::Builder::new()
        .name("editor".into())
        .spawn(move || {
            let mut sent: u64 = 0;
            loop {
                let prompt = shared.lock().text.clone();
                let event = match editor.readline(&prompt) {
                    Ok(line) => {
                        use crate::input::{parse_line, verbatim_line, Command};
                        let command = if verbatim {
                            verbatim_line(&line)
                        } else {
                            parse_line(&line)
                        };
                        let quit = matches!(command, Command::Quit);
                        // `/query` changes the prompt too (`-> bob`), at once.
                        let moves = matches!(
                            command,
                            Command::Join(_) | Command::Part(_) | Command::Query(_)
                        );
                        if tx.blocking_send(InputEvent::Line(line)).is_err() {
                            return;
                        }
                        sent += 1;
                        if moves {
                            let state = shared.lock();
                            let _ = shared
                                .changed
                                .wait_timeout_while(state, PROMPT_WAIT, |s| s.handled < sent);
                        }
                        if !quit {
                            continue;
                        }
                        // Stop reading so the terminal is back in its own mode
                        // while the last replies arrive.
                        InputEvent::End
                    }
                    Err(ReadlineError::Interrupted) => InputEvent::Interrupted,
                    Err(_) => InputEvent::End,
                };
                // `readline` has returned, so the terminal is in its own mode.
                done.store(true, Ordering::SeqCst);
                let _ = tx.blocking_send(event);
                return;
            }
        })?;
    Ok(Some((EditorPrinter(printer), terminal)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn msg(history: bool, ts: u64) -> Line {
        Line::Msg {
            room: None,
            history,
            page: false,
            missed: false,
            from: "bob".into(),
            to: vec![],
            text: "hi".into(),
            ts,
            place: crate::render::Place::default(),
        }
    }

    /// `zs` bytes `z`, then `tail`: a line far longer than memory should
    /// hold, made as it is read.
    struct Zs {
        zs: u64,
        tail: &'static [u8],
    }

    impl std::io::Read for Zs {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.zs > 0 {
                let n = out
                    .len()
                    .min(usize::try_from(self.zs).unwrap_or(usize::MAX));
                out[..n].fill(b'z');
                self.zs -= n as u64;
                return Ok(n);
            }
            let n = out.len().min(self.tail.len());
            out[..n].copy_from_slice(&self.tail[..n]);
            self.tail = &self.tail[n..];
            Ok(n)
        }
    }

    /// A line over the bound is counted, not kept: the buffer never holds
    /// more than the bound and its line ending, the line after it is read
    /// as ever, and so is one at the bound exactly.
    #[test]
    fn a_line_over_the_bound_is_counted_not_kept() {
        const MOST: usize = 1024;
        const BIG: u64 = 8 << 20;
        let mut input = std::io::BufReader::new(Zs {
            zs: BIG,
            tail: b"\r\nok\n",
        });
        let mut buf = Vec::new();
        let read = read_line_within(&mut input, &mut buf, MOST).unwrap();
        assert_eq!(read, Read::TooLong(BIG));
        assert!(buf.capacity() <= 2 * (MOST + 2), "{}", buf.capacity());
        assert_eq!(
            read_line_within(&mut input, &mut buf, MOST).unwrap(),
            Read::Line
        );
        assert_eq!(buf, b"ok");
        assert_eq!(
            read_line_within(&mut input, &mut buf, MOST).unwrap(),
            Read::End
        );

        // At the bound: kept, with or without `\r\n`; one byte over (the
        // input ending without a newline): counted.
        let mut input = std::io::BufReader::new(Zs {
            zs: MOST as u64,
            tail: b"\r\n",
        });
        assert_eq!(
            read_line_within(&mut input, &mut buf, MOST).unwrap(),
            Read::Line
        );
        assert_eq!(buf.len(), MOST);
        let mut input = std::io::BufReader::new(Zs {
            zs: MOST as u64 + 1,
            tail: b"",
        });
        let read = read_line_within(&mut input, &mut buf, MOST).unwrap();
        assert_eq!(read, Read::TooLong(MOST as u64 + 1));
        assert_eq!(
            read_line_within(&mut input, &mut buf, MOST).unwrap(),
            Read::End
        );
    }

    /// What rustyline was asked to print.
    struct Recorded(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl rustyline::ExternalPrinter for Recorded {
        fn print(&mut self, msg: String) -> rustyline::Result<()> {
            self.0.lock().unwrap().push(msg);
            Ok(())
        }
    }

    #[test]
    fn each_line_printed_through_the_editor_ends_with_a_newline() {
        let printed = std::sync::Arc::default();
        let mut sink = EditorPrinter(Recorded(std::sync::Arc::clone(&printed)));
        sink.line("* reconnecting (attempt 4 of 10)".into())
            .unwrap();
        sink.line("* reconnecting failed".into()).unwrap();
        assert_eq!(
            *printed.lock().unwrap(),
            [
                "* reconnecting (attempt 4 of 10)\n",
                "* reconnecting failed\n"
            ]
        );
    }

    #[test]
    fn a_history_or_missed_line_shows_when_it_was_sent_and_a_live_one_when_it_came() {
        let at = |d, h, m| {
            chrono::Local
                .with_ymd_and_hms(2026, 12, d, h, m, 0)
                .unwrap()
        };
        let now = at(1, 12, 0);
        let ms = |t: chrono::DateTime<chrono::Local>| t.timestamp_millis() as u64;
        assert_eq!(line_time(&msg(false, ms(at(1, 9, 30))), now), "12:00:00");
        assert_eq!(line_time(&msg(true, ms(at(1, 9, 30))), now), "09:30:00");
        assert_eq!(
            line_time(
                &msg(
                    true,
                    ms(chrono::Local
                        .with_ymd_and_hms(2026, 11, 30, 9, 30, 0)
                        .unwrap())
                ),
                now
            ),
            "2026-11-30 09:30:00"
        );
        assert_eq!(line_time(&msg(true, 0), now), "12:00:00");
        // Missed while away: not history, but as old as it is.
        let mut missed = msg(false, ms(at(1, 11, 15)));
        if let Line::Msg { missed: m, .. } = &mut missed {
            *m = true;
        }
        assert_eq!(line_time(&missed, now), "11:15:00");
        assert_eq!(line_time(&Line::Info("x".into()), now), "12:00:00");
    }
}
