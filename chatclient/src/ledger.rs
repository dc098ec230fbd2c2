//! What became of each input line, reported in the order the lines came,
//! so that a program feeding the client can match line N to its outcome.
//! No I/O: the [`Session`](crate::session::Session) records here what a
//! line did and what the server answered, and drains the outcomes.
//!
//! A message is answered when the server echoes it (delivered: its room
//! and seq; after a reconnect, also its `duplicate` error or its copy in a
//! replay) or refuses it (another `error` carrying its id); a `/join` of a
//! room not yet entered when the server lets the client in (`entered`) or
//! refuses the room; a line the client acts on by itself (another
//! command, a blank line, a line it refuses) has its outcome at once, but
//! it is reported only after every earlier line's.

use std::collections::{HashMap, HashSet, VecDeque};

use chatproto::{escape_control, ErrorCode, ServerFrame, LOBBY};

/// What became of one input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineOutcome {
    /// The line's number, counting from 1 every line read from input.
    pub line: u64,
    /// What happened to it.
    pub kind: OutcomeKind,
}

/// What happened to a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutcomeKind {
    /// A message the server delivered: it echoed it as `seq` of `room`
    /// (`seq` is `None` only if the answer did not say).
    Sent {
        /// The message's id.
        id: String,
        /// The room it went to.
        room: String,
        /// Its seq there.
        seq: Option<u64>,
    },
    /// Refused, by the server (`id` set: an `error` answered the message)
    /// or by the client (an invalid command, a message too large, no room).
    Refused {
        /// The message's id, when it was sent.
        id: Option<String>,
        /// The error code, e.g. `unknown_nick`, or `input` for a line the
        /// client could not act on.
        code: String,
        /// What happened, for a human.
        message: String,
    },
    /// A command the client carried out (`join`, `who`, ...); a `/join`
    /// of a room not yet entered once the server let the client in.
    Done {
        /// The command's name.
        command: &'static str,
    },
    /// Nothing to do: a blank line, or one read after `/quit` (or after a
    /// signal asked the client to leave).
    Skipped,
    /// The client stopped before the server answered this message, or
    /// the connection was lost before it did and the server did not keep
    /// the session (so it cannot tell, and the message is not sent again):
    /// it may or may not have been delivered.
    Unconfirmed {
        /// The message's id.
        id: String,
        /// The room it was sent to.
        room: String,
    },
}

impl LineOutcome {
    /// Whether the line did not get what it asked for.
    pub fn failed(&self) -> bool {
        matches!(
            self.kind,
            OutcomeKind::Refused { .. } | OutcomeKind::Unconfirmed { .. }
        )
    }

    /// The stderr line for a refused line (without the `chatclient: `);
    /// `None` for the others.
    pub fn refusal(&self) -> Option<String> {
        match &self.kind {
            OutcomeKind::Refused { code, message, .. } => Some(format!(
                "line {} refused: {}: {}",
                self.line,
                escape_control(code),
                escape_control(message)
            )),
            _ => None,
        }
    }
}

/// What kind of line was just handled, for the outcome of a line that
/// neither sent a message nor failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// A message (it either went out or failed).
    Message,
    /// A command, by name.
    Command(&'static str),
    /// A blank line.
    Blank,
}

/// One line whose outcome is not reported yet.
#[derive(Debug)]
enum Entry {
    /// Sent; waiting for the server.
    Waiting { id: String, room: String },
    /// A `/join` asked the server for a room; waiting for its answer.
    Joining,
    /// Known, waiting only for the lines before it.
    Ready(OutcomeKind),
}

/// What the line being handled did so far.
#[derive(Debug, Default)]
struct Open {
    sent: Option<(String, String)>,
    joining: Option<String>,
    failed: Option<(String, String)>,
}

/// The answer a frame carries for one message id.
#[derive(Debug)]
enum Answer {
    Echo {
        room: String,
        seq: u64,
    },
    Error {
        code: ErrorCode,
        message: String,
        room: Option<String>,
        seq: Option<u64>,
    },
}

/// Every input line's outcome, in input order. See the [module docs](self).
#[derive(Debug, Default)]
pub struct Ledger {
    /// Lines begun so far.
    lines: u64,
    /// Outcomes not reported yet; the first is line `first`.
    entries: VecDeque<Entry>,
    first: u64,
    /// Message ids waiting for the server, and their lines.
    waiting: HashMap<String, u64>,
    /// Rooms a `/join` waits to be let into, and its line.
    joins: HashMap<String, u64>,
    open: Option<Open>,
    /// Answers in the frame being handled, by id.
    answers: Vec<(String, Answer)>,
    /// The room and seq of the `msg` frame being handled.
    last_msg: Option<(String, u64)>,
    /// Failed lines reported so far.
    failures: u64,
    /// Of the failures, the lines reported unconfirmed.
    unconfirmed: u64,
    /// Lines not reported yet that were commands (their failure is not
    /// a message's).
    commands: HashSet<u64>,
    /// Of the failures, the lines that were commands.
    command_failures: u64,
}

impl Ledger {
    /// An empty ledger: the first line will be line 1.
    pub fn new() -> Ledger {
        Ledger {
            first: 1,
            ..Ledger::default()
        }
    }

    /// Lines read so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Lines reported refused, or unanswered when the client stopped.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// Of [`failures`](Ledger::failures), the lines reported unconfirmed:
    /// they may or may not have been delivered.
    pub fn unconfirmed_lines(&self) -> u64 {
        self.unconfirmed
    }

    /// Of [`failures`](Ledger::failures), the lines that were commands
    /// (`/join` of a room refused, an unknown command, ...): they were
    /// not messages, so nothing went undelivered.
    pub fn command_failures(&self) -> u64 {
        self.command_failures
    }

    /// A line is being handled: what it does is recorded until [`end`](Ledger::end).
    pub fn begin(&mut self) {
        self.open = Some(Open::default());
    }

    /// The open line sent message `id` to `room`.
    pub fn sent(&mut self, id: String, room: String) {
        if let Some(open) = &mut self.open {
            open.sent = Some((id, room));
        }
    }

    /// The open line asked the server to let the client into `room`: its
    /// outcome waits for [`entered`](Ledger::entered) or
    /// [`room_refused`](Ledger::room_refused).
    pub fn joining(&mut self, room: String) {
        if let Some(open) = &mut self.open {
            open.joining = Some(room);
        }
    }

    /// The server let the client into `room` (or the client gave the room
    /// up before it answered): a `/join` waiting for it is done.
    pub fn entered(&mut self, room: &str) {
        self.answer_join(room, || OutcomeKind::Done { command: "join" });
    }

    /// The server would not let the client into `room`: a `/join` waiting
    /// for it is refused, with the server's error.
    pub fn room_refused(&mut self, room: &str, code: &str, message: &str) {
        self.answer_join(room, || OutcomeKind::Refused {
            id: None,
            code: code.to_owned(),
            message: message.to_owned(),
        });
    }

    fn answer_join(&mut self, room: &str, kind: impl FnOnce() -> OutcomeKind) {
        let Some(line) = self.joins.remove(room) else {
            return;
        };
        let index = (line - self.first) as usize;
        if let Some(entry @ Entry::Joining) = self.entries.get_mut(index) {
            *entry = Entry::Ready(kind());
        }
    }

    /// The protocol core gave message `id` up without an answer from the
    /// server (its frame is larger than the server takes, said in a
    /// `welcome` or known when it was sent): its line is refused, with
    /// the core's error. Whether the line was still open, waiting, or
    /// already taken for sent by the frame that made the core give it up
    /// (a `welcome` answers no message).
    pub fn refuse(&mut self, id: &str, code: &str, message: &str) {
        let refused = || OutcomeKind::Refused {
            id: Some(id.to_owned()),
            code: code.to_owned(),
            message: message.to_owned(),
        };
        if let Some(open) = &mut self.open {
            if open.sent.as_ref().is_some_and(|(sent, _)| sent == id) {
                open.sent = None;
                open.failed
                    .get_or_insert_with(|| (code.to_owned(), message.to_owned()));
                return;
            }
        }
        if let Some(line) = self.waiting.remove(id) {
            let index = (line - self.first) as usize;
            if let Some(entry @ Entry::Waiting { .. }) = self.entries.get_mut(index) {
                *entry = Entry::Ready(refused());
            }
            return;
        }
        let settled = self.entries.iter_mut().find(|e| {
            matches!(e, Entry::Ready(OutcomeKind::Sent { id: sent, seq: None, .. }) if sent == id)
        });
        if let Some(entry) = settled {
            *entry = Entry::Ready(refused());
        }
    }

    /// Message `id`, refused, waits to be sent again (its people were not
    /// back yet after a reconnect): its line waits again, by that id,
    /// until [`rename`](Ledger::rename) or [`refuse`](Ledger::refuse).
    /// Nothing happens to a line already reported.
    pub fn hold(&mut self, id: &str, room: &str) {
        let refused = self.entries.iter().position(
            |e| matches!(e, Entry::Ready(OutcomeKind::Refused { id: Some(r), .. }) if r == id),
        );
        if let Some(index) = refused {
            self.entries[index] = Entry::Waiting {
                id: id.to_owned(),
                room: room.to_owned(),
            };
            self.waiting
                .insert(id.to_owned(), self.first + index as u64);
        }
    }

    /// The message of a waiting line was sent again as `new`.
    pub fn rename(&mut self, old: &str, new: &str) {
        if let Some(line) = self.waiting.remove(old) {
            if let Some(Entry::Waiting { id, .. }) =
                self.entries.get_mut((line - self.first) as usize)
            {
                new.clone_into(id);
            }
            self.waiting.insert(new.to_owned(), line);
        }
    }

    /// The protocol core gave message `id` up with its fate unknown (a
    /// session the server did not resume cannot tell whether it arrived):
    /// its line is unconfirmed. Whether it was still waiting, or already
    /// taken for sent by the frame that made the core give it up (that
    /// frame answered no message).
    pub fn unconfirmed(&mut self, id: &str) {
        let index = match self.waiting.remove(id) {
            Some(line) => (line - self.first) as usize,
            None => {
                let sent = self.entries.iter().position(
                    |e| matches!(e, Entry::Ready(OutcomeKind::Sent { id: sent, .. }) if sent == id),
                );
                let Some(index) = sent else {
                    return;
                };
                index
            }
        };
        if let Some(entry) = self.entries.get_mut(index) {
            let room = match entry {
                Entry::Waiting { room, .. } | Entry::Ready(OutcomeKind::Sent { room, .. }) => {
                    std::mem::take(room)
                }
                _ => return,
            };
            *entry = Entry::Ready(OutcomeKind::Unconfirmed {
                id: id.to_owned(),
                room,
            });
        }
    }

    /// The open line failed (the first failure counts). Nothing happens
    /// when no line is open: the failure is not a line's.
    pub fn fail(&mut self, code: &str, message: &str) {
        if let Some(open) = &mut self.open {
            open.failed
                .get_or_insert_with(|| (code.to_owned(), message.to_owned()));
        }
    }

    /// The number of the line being handled, if a line before it has not
    /// been reported yet (it waits for the server, or for one that does).
    pub fn open_behind(&self) -> Option<u64> {
        (self.open.is_some() && !self.entries.is_empty()).then_some(self.lines + 1)
    }

    /// The open line has been handled.
    pub fn end(&mut self, kind: LineKind) {
        let open = self.open.take().unwrap_or_default();
        self.lines += 1;
        let line = self.lines;
        if matches!(kind, LineKind::Command(_)) {
            self.commands.insert(line);
        }
        let entry = match (open.failed, open.sent, open.joining) {
            (Some((code, message)), ..) => Entry::Ready(OutcomeKind::Refused {
                id: None,
                code,
                message,
            }),
            (None, Some((id, room)), _) => {
                self.waiting.insert(id.clone(), line);
                Entry::Waiting { id, room }
            }
            (None, None, Some(room)) => {
                self.joins.insert(room, line);
                Entry::Joining
            }
            (None, None, None) => Entry::Ready(match kind {
                LineKind::Command(command) => OutcomeKind::Done { command },
                LineKind::Message | LineKind::Blank => OutcomeKind::Skipped,
            }),
        };
        self.entries.push_back(entry);
    }

    /// A line read that will not be acted on (it came after `/quit`, or
    /// after a signal).
    pub fn skip(&mut self) {
        self.begin();
        self.end(LineKind::Blank);
    }

    /// A frame is about to be handled: keep what it answers.
    pub fn note(&mut self, frame: &ServerFrame) {
        self.answers.clear();
        self.last_msg = None;
        if self.waiting.is_empty() {
            return;
        }
        match frame {
            ServerFrame::Msg { room, seq, id, .. } => {
                let room = room.clone().unwrap_or_else(|| LOBBY.to_owned());
                if let Some(id) = id {
                    self.answers.push((
                        id.clone(),
                        Answer::Echo {
                            room: room.clone(),
                            seq: *seq,
                        },
                    ));
                }
                self.last_msg = Some((room, *seq));
            }
            ServerFrame::History { events, .. } => {
                for e in events {
                    if let ServerFrame::Msg {
                        room,
                        seq,
                        id: Some(id),
                        ..
                    } = e
                    {
                        let room = room.clone().unwrap_or_else(|| LOBBY.to_owned());
                        self.answers
                            .push((id.clone(), Answer::Echo { room, seq: *seq }));
                    }
                }
            }
            ServerFrame::Error {
                code,
                message,
                id: Some(id),
                room,
                seq,
                ..
            } => self.answers.push((
                id.clone(),
                Answer::Error {
                    code: *code,
                    message: message.clone(),
                    room: room.clone(),
                    seq: *seq,
                },
            )),
            _ => {}
        }
    }

    /// The frame [`note`](Ledger::note)d has been handled: every message
    /// the protocol core no longer waits for was answered by it.
    pub fn settle(&mut self, still_waiting: impl Fn(&str) -> bool) {
        if self.waiting.is_empty() {
            return;
        }
        let done: Vec<(String, u64)> = self
            .waiting
            .iter()
            .filter(|(id, _)| !still_waiting(id))
            .map(|(id, line)| (id.clone(), *line))
            .collect();
        for (id, line) in done {
            self.waiting.remove(&id);
            let index = (line - self.first) as usize;
            let Some(Entry::Waiting { room, .. }) = self.entries.get(index) else {
                continue;
            };
            let room = room.clone();
            let answer = self
                .answers
                .iter()
                .position(|(a, _)| *a == id)
                .map(|i| self.answers.swap_remove(i).1);
            let kind = match answer {
                Some(Answer::Echo { room, seq }) => OutcomeKind::Sent {
                    id,
                    room,
                    seq: Some(seq),
                },
                // Delivered before a reconnect; the error names its seq.
                Some(Answer::Error {
                    code: ErrorCode::Duplicate,
                    room: r,
                    seq,
                    ..
                }) => OutcomeKind::Sent {
                    id,
                    room: r.unwrap_or(room),
                    seq,
                },
                Some(Answer::Error { code, message, .. }) => OutcomeKind::Refused {
                    id: Some(id),
                    code: code.as_str().to_owned(),
                    message,
                },
                // Recognised by its content in a replay (a fresh session
                // after a reconnect): this frame is its copy.
                None => match self.last_msg.clone() {
                    Some((room, seq)) => OutcomeKind::Sent {
                        id,
                        room,
                        seq: Some(seq),
                    },
                    None => OutcomeKind::Sent {
                        id,
                        room,
                        seq: None,
                    },
                },
            };
            self.entries[index] = Entry::Ready(kind);
        }
    }

    /// The client is stopping: every message still waiting is
    /// unconfirmed; a `/join` still waiting is done (it was asked; the
    /// client leaves before the answer, which would change nothing now).
    pub fn abandon(&mut self) {
        for entry in &mut self.entries {
            match entry {
                Entry::Waiting { id, room } => {
                    let kind = OutcomeKind::Unconfirmed {
                        id: std::mem::take(id),
                        room: std::mem::take(room),
                    };
                    *entry = Entry::Ready(kind);
                }
                Entry::Joining => *entry = Entry::Ready(OutcomeKind::Done { command: "join" }),
                Entry::Ready(_) => {}
            }
        }
        self.waiting.clear();
        self.joins.clear();
    }

    /// The next outcome to report, in line order.
    pub fn poll(&mut self) -> Option<LineOutcome> {
        if !matches!(self.entries.front(), Some(Entry::Ready(_))) {
            return None;
        }
        let Some(Entry::Ready(kind)) = self.entries.pop_front() else {
            return None;
        };
        let line = self.first;
        self.first += 1;
        let outcome = LineOutcome { line, kind };
        let command = self.commands.remove(&line);
        if outcome.failed() {
            self.failures += 1;
            if command {
                self.command_failures += 1;
            }
        }
        if matches!(outcome.kind, OutcomeKind::Unconfirmed { .. }) {
            self.unconfirmed += 1;
        }
        Some(outcome)
    }
}
