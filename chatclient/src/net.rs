//! The network shell: open a connection and move bytes between it and the
//! [`Session`], and lines between the console and the session; when the
//! connection is lost, wait (exponential backoff with jitter; after a
//! server's restart, steady tries first:
//! [`Retries`](crate::reconnect::Retries)) and open another,
//! and let the session resume; but not when the server closed it
//! because another connection resumed the session (`resumed_elsewhere`),
//! which a resume here would take back. Given several addresses, each
//! connect goes through them as
//! [`Pass`](crate::reconnect::Pass) decides (past a node that
//! closes the connection, answers nothing in time, or answers
//! `unavailable` or `server_full`, too). There is no protocol logic here: the join,
//! pings, resume and resending are `chatproto::Client`'s.
//!
//! Reading and writing the socket are independent: a writer task owns the
//! write half, so when the server throttles us by not reading (its rate
//! limit), only that task waits; the loop here keeps reading the socket
//! (echoes, pings, other people's messages) and keeps taking input.
//!
//! With TLS, each connection (the first and every reconnect) makes its
//! handshake before the join; chatproto frames then go inside TLS exactly
//! as they go over TCP.

mod connect;
mod redial;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chatproto::{encode, Decoded, FrameDecoder, PayloadError, ServerFrame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};

use crate::console::InputEvent;
use crate::error::JoinError;
use crate::reconnect::Backoff;
use crate::render::Line;
use crate::session::{Action, Session};
use crate::tls::Tls;
use crate::ui::Ui;
pub use connect::dial;
use redial::reconnect;

/// At most this many messages sent and not yet acknowledged; past it,
/// input waits (stdin is simply not read further) until echoes come back.
/// This bounds the writer's queue without ever dropping a typed line, and
/// keeps every unacknowledged id inside the server's window of remembered
/// ids (1024 by default; fewer in flight when the server's `welcome` says
/// its window is smaller), so a resend after a reconnect is never
/// delivered twice.
const MAX_IN_FLIGHT: usize = 512;

/// Frames waiting for the writer at most. Messages are bounded by
/// [`MAX_IN_FLIGHT`] (all of them are sent again at once after a
/// reconnect), commands by the user's typing; what else the client sends
/// answers the server (a `pong` per `ping`), so a queue this long means the
/// server has stopped reading while it goes on writing: the connection is
/// given up (and resumed on a new one) instead of queueing without bound.
const WRITE_QUEUE: usize = 2 * MAX_IN_FLIGHT;

/// Lines typed while a reconnect is being made, kept until it is done.
const HELD_INPUT: usize = 256;

/// How long to wait for the writer to hand the last bytes to the kernel
/// when leaving.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);

/// Where to connect and how.
#[derive(Debug, Clone)]
pub struct Config {
    /// HOST:PORT, or several comma-separated (the nodes of a cluster).
    pub addr: String,
    /// TLS settings, when the connection is to be encrypted.
    pub tls: Option<Tls>,
    /// For connecting to one address and joining there together.
    pub timeout: Duration,
    /// The largest frame to send or accept.
    pub max_frame_bytes: usize,
    /// When to reconnect.
    pub backoff: Backoff,
    /// The address every pass begins at (its index in `addr`); `None`: a
    /// random one each time.
    pub first: Option<usize>,
}

/// The monotonic clock the session's timers run on, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    /// A clock that starts now.
    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    fn now(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn instant(&self, ms: u64) -> Instant {
        self.0 + Duration::from_millis(ms)
    }
}

/// How a chat ended.
#[derive(Debug)]
pub enum Outcome {
    /// The user left and every message was acknowledged.
    Left,
    /// Ctrl-C: left at once.
    Interrupted,
    /// The connection was lost and not resumed; why, in one sentence.
    Lost(String),
    /// The server closed the connection because another one resumed the
    /// session with its token (`resumed_elsewhere`); not reconnected.
    ResumedElsewhere,
    /// A reconnect was refused for good (the nickname was taken meanwhile).
    Refused(JoinError),
}

/// The read half of a connection, over TCP or TLS.
type Reader = Box<dyn AsyncRead + Send + Unpin>;

/// A joined connection.
pub struct Link {
    reader: Reader,
    /// Bytes read and not decoded yet.
    rbuf: BytesMut,
    decoder: FrameDecoder,
    wtx: mpsc::Sender<Bytes>,
    writer: JoinHandle<std::io::Result<()>>,
    /// The writer's queue was found full (see [`WRITE_QUEUE`]).
    stalled: AtomicBool,
    /// The last frame read was a `notice`: the server says so before it
    /// stops (PROTOCOL.md section 8), so a loss now is a planned restart.
    notice_last: bool,
}

/// A connection lost: why, in one sentence, and whether the server said
/// it was stopping first (a `notice` was the last frame; see
/// [`Retries`](crate::reconnect::Retries)).
#[derive(Debug)]
struct Lost {
    why: String,
    planned: bool,
}

impl Link {
    /// Close our side. With `flush`, first give the writer a moment to
    /// send what it holds, so the server sees a clean end of stream.
    async fn close(mut self, flush: bool) {
        drop(self.wtx);
        if flush {
            let _ = tokio::time::timeout(CLOSE_FLUSH, &mut self.writer).await;
        }
        self.writer.abort();
    }
}

/// Chat over `link` (just made by [`dial`], which left `held`) until the
/// user leaves, reconnecting whenever the connection is lost. Input lines
/// still unanswered then are reported unconfirmed.
pub async fn run(
    config: &Config,
    clock: &Clock,
    session: &mut Session,
    console: &mut impl Ui,
    link: Link,
    held: Vec<Action>,
) -> Outcome {
    let outcome = run_until_done(config, clock, session, console, link, held).await;
    session.abandon_lines();
    apply(session, console, None, config.max_frame_bytes).await;
    outcome
}

async fn run_until_done(
    config: &Config,
    clock: &Clock,
    session: &mut Session,
    console: &mut impl Ui,
    mut link: Link,
    held: Vec<Action>,
) -> Outcome {
    if show_held(console, held).await {
        link.close(true).await;
        return Outcome::Left;
    }
    loop {
        let why = match chat(config, clock, session, console, &mut link).await {
            Ok(outcome) => {
                link.close(matches!(outcome, Outcome::Left)).await;
                return outcome;
            }
            Err(why) => why,
        };
        link.close(false).await;
        session.handle_disconnected();
        link = match reconnect(config, clock, session, console, why.why, why.planned).await {
            Ok(link) => link,
            Err(outcome) => return outcome,
        };
    }
}

/// Move frames and lines until the user leaves (`Ok`) or the connection is
/// lost (`Err`, with why).
async fn chat(
    config: &Config,
    clock: &Clock,
    session: &mut Session,
    console: &mut impl Ui,
    link: &mut Link,
) -> Result<Outcome, Lost> {
    let result = chat_on(config, clock, session, console, link).await;
    result.map_err(|why| Lost {
        why,
        planned: link.notice_last,
    })
}

/// [`chat`], the loss said in one sentence.
async fn chat_on(
    config: &Config,
    clock: &Clock,
    session: &mut Session,
    console: &mut impl Ui,
    link: &mut Link,
) -> Result<Outcome, String> {
    loop {
        // What was read and not handled yet: each read's frames, and first
        // those that came with the welcome (the handshake stops there).
        // Broken framing ends the connection once the frames before it
        // are shown: they came first.
        let mut broken = None;
        loop {
            match link.decoder.decode::<ServerFrame>(&mut link.rbuf) {
                Decoded::Incomplete => break,
                Decoded::Frame(frame) => {
                    link.notice_last = matches!(frame, ServerFrame::Notice { .. });
                    session.handle_frame(clock.now(), frame);
                }
                // A kind a later server added: ignored, as the protocol
                // asks. A known kind we cannot parse: say so, carry on; the
                // framing itself is in sync.
                Decoded::Invalid(PayloadError::UnknownKind { .. }) => {}
                Decoded::Invalid(e) => session.handle_bad_frame(&e.to_string()),
                Decoded::Broken(e) => {
                    broken = Some(format!("the server broke the framing: {e}"));
                    break;
                }
            }
        }
        match apply(session, console, Some(link), config.max_frame_bytes).await {
            Some(Action::Exit) => return Ok(Outcome::Left),
            // Reconnecting would resume the session and take it back.
            Some(Action::ResumedElsewhere) => return Ok(Outcome::ResumedElsewhere),
            Some(Action::Dead) => return Err("the server did not answer a ping".to_owned()),
            _ => {}
        }
        if let Some(why) = broken {
            return Err(why);
        }
        if link.stalled.load(Ordering::Relaxed) {
            return Err(format!(
                "the server stopped reading what this client sends ({WRITE_QUEUE} frames waiting)"
            ));
        }
        let may_read_input = may_read_input(session);
        let wake = session.poll_timeout().map(|ms| clock.instant(ms));
        let (events, stop_signal) = console.input();
        tokio::select! {
            read = link.reader.read_buf(&mut link.rbuf) => match read {
                Ok(0) => return Err(closed(session)),
                Ok(_) => {}
                Err(e) => return Err(format!("reading from the server failed: {e}")),
            },
            event = events.recv(), if may_read_input => {
                if let Some(outcome) = input(session, console, event) {
                    return Ok(outcome);
                }
            }
            () = stop_signal.recv() => {
                if let Some(outcome) = stop(session) {
                    return Ok(outcome);
                }
            }
            () = sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                session.handle_timeout(clock.now());
            }
            done = &mut link.writer => return Err(match done {
                Ok(Ok(())) => "the connection closed".to_owned(),
                Ok(Err(e)) => format!("writing to the server failed: {e}"),
                Err(e) => format!("the writer task failed: {e}"),
            }),
        }
    }
}

/// Show the lines a handshake held; whether the session asked to leave
/// meanwhile. (`Joined` was the handshake's; nothing else comes out of one.)
pub async fn show_held(console: &impl Ui, held: Vec<Action>) -> bool {
    let mut exit = false;
    for action in held {
        match action {
            Action::Print(line) => console.print(&line).await,
            Action::Frame(frame) => console.frame(&frame).await,
            Action::Outcome(outcome) => console.outcome(&outcome).await,
            Action::Exit => exit = true,
            _ => {}
        }
    }
    exit
}

/// A signal asked to leave (`--stay`): the first leaves once every message
/// is answered (`apply` sees the `Exit`), a second at once.
fn stop(session: &mut Session) -> Option<Outcome> {
    if session.stopping() {
        return Some(Outcome::Left);
    }
    session.handle_stop();
    None
}

/// Whether to take more input now: not while a room asked for is still
/// being entered, or a `/history` or `/rooms` answered, when reading a
/// pipe (see `Session::settled`).
fn may_read_input(session: &Session) -> bool {
    !session.input_done() && in_flight_room(session) > 0 && session.settled()
}

/// How many more messages may be sent before the cap on those not yet
/// acknowledged: [`MAX_IN_FLIGHT`], or the server's id window if smaller.
fn in_flight_room(session: &Session) -> usize {
    MAX_IN_FLIGHT
        .min(session.id_window())
        .saturating_sub(session.unacknowledged())
}

/// Hand one input event to the session; `Some` when it ends everything.
fn input(session: &mut Session, console: &impl Ui, event: Option<InputEvent>) -> Option<Outcome> {
    match event {
        Some(InputEvent::Line(line)) => {
            session.handle_line(&line);
            console.line_handled(session);
        }
        Some(InputEvent::TooLong(bytes)) => {
            session.handle_too_long(bytes);
            console.line_handled(session);
        }
        Some(InputEvent::Older(limit)) => session.handle_older(limit),
        Some(InputEvent::LetGo(room, kept)) => session.handle_let_go(&room, kept),
        Some(InputEvent::Cut(room, last)) => session.handle_cut(&room, last),
        Some(InputEvent::End) | None => session.handle_input_end(),
        Some(InputEvent::Interrupted) => return Some(Outcome::Interrupted),
    }
    None
}

/// Why the server closed the connection, in one sentence.
fn closed(session: &mut Session) -> String {
    match session.take_fatal() {
        Some((code, message)) => format!(
            "the server ended the session: {}: {}",
            code.as_str(),
            chatproto::escape_control(&message)
        ),
        None => "the server closed the connection".to_owned(),
    }
}

/// Carry out what the session asks, in order, until it asks for `Exit`,
/// calls the connection dead, or says the session was resumed elsewhere
/// (returned). Without a link (while reconnecting), frames are dropped:
/// the core sends none while offline.
async fn apply(
    session: &mut Session,
    console: &impl Ui,
    link: Option<&Link>,
    max_frame_bytes: usize,
) -> Option<Action> {
    // First the state the lines below were made in (a `/join` may have
    // changed the current room), then the lines, then the state after.
    console.update(session).await;
    let mut stop = None;
    while let Some(action) = session.poll() {
        match action {
            Action::Print(line) => console.print(&line).await,
            Action::Frame(frame) => console.frame(&frame).await,
            Action::Outcome(outcome) => console.outcome(&outcome).await,
            Action::Send(frame) => {
                let Some(link) = link else { continue };
                // Given up (its queue was full): nothing more goes out on
                // it, or a later frame could pass one dropped before it.
                if link.stalled.load(Ordering::Relaxed) {
                    continue;
                }
                match encode(&frame, max_frame_bytes) {
                    // If the writer is gone, the select loop hears it next;
                    // a full queue ends the connection (the caller looks).
                    Ok(bytes) => {
                        if let Err(mpsc::error::TrySendError::Full(_)) = link.wtx.try_send(bytes) {
                            link.stalled.store(true, Ordering::Relaxed);
                        }
                    }
                    Err(e) => {
                        let line = Line::Error {
                            code: "msg_too_large".into(),
                            message: format!("not sent: {e}"),
                        };
                        console.print(&line).await;
                    }
                }
            }
            Action::Exit | Action::Dead | Action::ResumedElsewhere => {
                stop = Some(action);
                break;
            }
            // Only a handshake answers these, and `dial` takes them.
            Action::Joined | Action::Refused { .. } => {}
        }
    }
    console.update(session).await;
    stop
}

/// Own the write half: send queued frames, several per write when they pile
/// up, and shut our side down when the queue closes.
async fn write_loop(
    mut half: impl AsyncWrite + Unpin,
    mut rx: mpsc::Receiver<Bytes>,
) -> std::io::Result<()> {
    const BATCH: usize = 64 * 1024;
    let mut buf = BytesMut::new();
    while let Some(first) = rx.recv().await {
        buf.extend_from_slice(&first);
        while buf.len() < BATCH {
            match rx.try_recv() {
                Ok(more) => buf.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        half.write_all(&buf).await?;
        // A no-op over TCP; over TLS it sends what the stream holds.
        half.flush().await?;
        buf.clear();
    }
    half.shutdown().await
}

#[cfg(test)]
mod tests;
