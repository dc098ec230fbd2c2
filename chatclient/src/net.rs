//! The network shell: open a connection and move bytes between it and the
//! [`Session`], and lines between the console and the session; when the
//! connection is lost, wait (exponential backoff with jitter; after a
//! server's restart, steady tries first: [`Retries`]) and open another,
//! and let the session resume; but not when the server closed it
//! because another connection resumed the session (`resumed_elsewhere`),
//! which a resume here would take back. Given several addresses, each
//! connect goes through them as [`Pass`] decides (past a node that
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

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chatproto::{encode, Decoded, FrameDecoder, PayloadError, ServerFrame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout_at, Instant};

use crate::console::InputEvent;
use crate::error::JoinError;
use crate::reconnect::{jitter, random_u64, Backoff, Pass, Retries, RESTART_WINDOW};
use crate::render::Line;
use crate::session::{Action, Session};
use crate::tls::Tls;
use crate::ui::Ui;

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
/// [`Retries`]).
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

/// Connect and join: the addresses given (several: the nodes of a
/// cluster) are tried in turn from a random one (or `config.first`), each within
/// `config.timeout`, as [`Pass`] says: past a connection that fails, a
/// node that closes it, one that answers nothing in time, and one that
/// refuses the join for reasons of its own (each said in `held`), until
/// one lets us in. Every action the session asks for up to the end of the
/// handshake, other than sending, is put in `held`, in order, for the
/// caller to carry out; what the session asks after that waits in it.
pub async fn dial(
    config: &Config,
    clock: &Clock,
    session: &mut Session,
    held: &mut Vec<Action>,
) -> Result<Link, JoinError> {
    let start = config.first.map_or_else(random_u64, |i| i as u64);
    let mut pass = Pass::new(&config.addr, start);
    let failure = loop {
        let Some(addr) = pass.next() else {
            break pass.failure();
        };
        // Where what this address's attempt shows begins.
        let shown_from = held.len();
        let e = match dial_one(config, &addr, clock, session, held).await {
            Ok(link) => return Ok(link),
            Err(e) => e,
        };
        let note = match pass.failed(e) {
            Ok(note) => note,
            Err(e) => break e,
        };
        // Offline again (after a join refused there, that connection is
        // over), as between two reconnect attempts.
        session.handle_disconnected();
        while let Some(action) = session.poll() {
            // Offline, the core sends nothing; the rest is shown.
            if !matches!(action, Action::Send(_)) {
                held.push(action);
            }
        }
        // The note that the pass goes on comes first, then what the node
        // sent (with --json, the `error` frame that refused the join, as
        // its reason): the text mode shows the note alone, and that
        // frame ahead of it read as the client failing there.
        if let Some(note) = note {
            held.insert(shown_from, Action::Print(Line::Info(note)));
        }
    };
    Err(match (&config.tls, failure) {
        // A server that takes only TLS refuses a plain connection
        // (`bad_frame`, saying so) or, if older, just closes it: said when
        // the pass failed so (every node reached closed the connection,
        // see `Pass`). The advice names the addresses as given. Once a
        // connection there was let in, only if the server said so: they
        // speak chatproto, and a reconnect cut while joining is no sign
        // of TLS.
        (
            None,
            e @ (JoinError::Closed
            | JoinError::Io(_)
            | JoinError::Refused {
                code: "bad_frame", ..
            }),
        ) if !session.ever_joined() || said_tls_only(&e) => JoinError::MaybeTlsOnly {
            addr: config.addr.clone(),
            why: Box::new(e),
        },
        (_, e) => e,
    })
}

/// Whether a join was refused by a server that said it takes TLS only.
fn said_tls_only(e: &JoinError) -> bool {
    matches!(e, JoinError::Refused { code: "bad_frame", message } if message.contains("TLS"))
}

/// Connect to `addr` and join, all within `config.timeout`.
async fn dial_one(
    config: &Config,
    addr: &str,
    clock: &Clock,
    session: &mut Session,
    held: &mut Vec<Action>,
) -> Result<Link, JoinError> {
    let deadline = Instant::now() + config.timeout;
    let secs = config.timeout.as_secs_f64();
    let stream = timeout_at(deadline, connect_one(addr))
        .await
        .map_err(|_| JoinError::ConnectTimeout {
            addr: addr.to_owned(),
            secs,
        })??;
    // Chat lines are small and latency matters more than packet count.
    let _ = stream.set_nodelay(true);
    let Some(tls) = &config.tls else {
        let mut stream = stream;
        let (rbuf, decoder) =
            join(config, addr, clock, session, held, &mut stream, deadline).await?;
        let (reader, half) = stream.into_split();
        return Ok(Link::start(Box::new(reader), half, rbuf, decoder));
    };
    let mut stream = timeout_at(deadline, tls.connect(addr, stream))
        .await
        .map_err(|_| JoinError::TlsTimeout {
            addr: addr.to_owned(),
            secs,
        })??;
    let (rbuf, decoder) = join(config, addr, clock, session, held, &mut stream, deadline).await?;
    let (reader, half) = tokio::io::split(stream);
    Ok(Link::start(Box::new(reader), half, rbuf, decoder))
}

impl Link {
    /// A joined connection: `reader` is read here, `writer` is given to a
    /// task of its own; `rbuf` holds what was read and not decoded yet.
    fn start(
        reader: Reader,
        writer: impl AsyncWrite + Send + Unpin + 'static,
        rbuf: BytesMut,
        decoder: FrameDecoder,
    ) -> Link {
        let (wtx, wrx) = mpsc::channel(WRITE_QUEUE);
        let writer = tokio::spawn(write_loop(writer, wrx));
        Link {
            reader,
            rbuf,
            decoder,
            wtx,
            writer,
            stalled: AtomicBool::new(false),
            notice_last: false,
        }
    }
}

/// The join handshake over `stream` (to `addr`), by `deadline`; what was
/// read past it, and the decoder, to carry on with.
async fn join<S: AsyncRead + AsyncWrite + Unpin>(
    config: &Config,
    addr: &str,
    clock: &Clock,
    session: &mut Session,
    held: &mut Vec<Action>,
    stream: &mut S,
    deadline: Instant,
) -> Result<(BytesMut, FrameDecoder), JoinError> {
    let answered_before = session.ever_joined();
    let timed_out = || JoinError::Timeout {
        addr: addr.to_owned(),
        secs: config.timeout.as_secs_f64(),
        answered_before,
    };
    session.handle_connected(clock.now());
    let mut decoder = FrameDecoder::new(config.max_frame_bytes);
    let mut rbuf = BytesMut::with_capacity(4096);
    loop {
        while let Some(action) = session.poll() {
            match action {
                Action::Send(frame) => {
                    let bytes =
                        encode(&frame, config.max_frame_bytes).map_err(JoinError::protocol)?;
                    timeout_at(deadline, async {
                        stream.write_all(&bytes).await?;
                        // TLS holds what is written until flushed.
                        stream.flush().await
                    })
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(JoinError::Io)?;
                }
                Action::Refused { code, message } => {
                    return Err(JoinError::refused(code, &message, session.nick()))
                }
                Action::Joined => {
                    held.push(Action::Joined);
                    return Ok((rbuf, decoder));
                }
                other => held.push(other),
            }
        }
        // One frame at a time, so that what it asks is done before the next.
        match decoder.decode::<ServerFrame>(&mut rbuf) {
            Decoded::Frame(frame) => {
                session.handle_frame(clock.now(), frame);
                continue;
            }
            // A kind a later server added: ignored (PROTOCOL.md section 2).
            Decoded::Invalid(PayloadError::UnknownKind { .. }) => continue,
            Decoded::Invalid(e) => return Err(JoinError::protocol(e)),
            Decoded::Broken(e) => return Err(JoinError::protocol(e)),
            Decoded::Incomplete => {}
        }
        let n = timeout_at(deadline, stream.read_buf(&mut rbuf))
            .await
            .map_err(|_| timed_out())?
            .map_err(JoinError::Io)?;
        if n == 0 {
            return Err(JoinError::Closed);
        }
    }
}

/// Resolve `addr` and connect to the first address that answers.
async fn connect_one(addr: &str) -> Result<TcpStream, JoinError> {
    let addrs: Vec<_> = tokio::net::lookup_host(addr)
        .await
        .map_err(|source| JoinError::Resolve {
            addr: addr.to_owned(),
            source,
        })?
        .collect();
    let mut last = None;
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(JoinError::Connect {
        addr: addr.to_owned(),
        source: last.unwrap_or_else(|| std::io::Error::other("the name resolved to no address")),
    })
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

/// Reconnect attempts that may find our nickname still held by our own
/// session before that counts as someone else having it: with the default
/// backoff, the fifth comes 8 to 15 s after the loss. A server that still
/// has our lost connection open hands the session over to the resume (and
/// closes that connection with `resumed_elsewhere`); but in a cluster whose
/// node died with our connection, the other nodes free its nicknames only
/// about 3 s later.
const NICK_HELD_ATTEMPTS: u32 = 5;

/// After losing the connection (`why`; `planned`: after the server's
/// `notice`, a restart): wait, try again, as [`Retries`] says. Input is
/// still taken meanwhile: lines typed are sent once back, and the user
/// may still leave.
async fn reconnect(
    config: &Config,
    clock: &Clock,
    session: &mut Session,
    console: &mut impl Ui,
    why: String,
    planned: bool,
) -> Result<Link, Outcome> {
    let attempts = config.backoff.attempts;
    if attempts == 0 {
        return Err(Outcome::Lost(why));
    }
    let lost_at = Instant::now();
    let mut retries = Retries::new(config.backoff, planned);
    let mut first = true;
    let mut last = why;
    // The reason last said, so that a failure like the one before says
    // only that it failed again.
    let mut said = String::new();
    while let Some(next) = retries.next(lost_at.elapsed(), jitter()) {
        let attempt = next.attempt;
        let secs = next.delay.as_secs_f64();
        // The first line says the connection went, and why (closed, a ping
        // not answered, a read failed); the next ones that the last try
        // failed, and why (a server still down, one refusing connections
        // for a while: `server_full`). The steady tries after a restart
        // say only a new reason: one line a second would bury the rest.
        let note = if first {
            first = false;
            if next.steady {
                format!(
                    "connection lost ({last}, saying it was stopping: a restart?); reconnecting \
                     in {secs:.1} s, then about every second for up to {} s (attempt 1 of {attempts})",
                    RESTART_WINDOW.as_secs()
                )
            } else {
                format!(
                    "connection lost ({last}); reconnecting in {secs:.1} s (attempt 1 of {attempts})"
                )
            }
        } else if said == last {
            if next.steady {
                String::new()
            } else {
                format!(
                    "reconnecting failed again; trying again in {secs:.1} s (attempt {attempt} of {attempts})"
                )
            }
        } else {
            said.clone_from(&last);
            format!(
                "reconnecting failed ({last}); trying again in {secs:.1} s (attempt {attempt} of {attempts})"
            )
        };
        // What the session said of the loss first: it comes before it
        // (leavings seen before it; what a page fetched before it, whose
        // page of one to tell the rest will not come). Then the state:
        // the full-screen client shows what is said while the connection
        // is down in every room's view.
        if let Some(Action::Exit) = apply(session, console, None, config.max_frame_bytes).await {
            return Err(Outcome::Left);
        }
        console.update(session).await;
        if !note.is_empty() {
            console.print(&Line::Info(note)).await;
        }
        let at = Instant::now() + next.delay;
        // Bounded by `at`; input only shortens it.
        loop {
            if let Some(Action::Exit) = apply(session, console, None, config.max_frame_bytes).await
            {
                return Err(Outcome::Left);
            }
            // A pipe is read only once the rooms are entered again (its
            // `/history` or `/rooms` would be refused as not connected),
            // as while dialing.
            let may_read_input = may_read_input(session) && session.reads_while_dialing();
            let (events, stop_signal) = console.input();
            tokio::select! {
                () = sleep_until(at) => break,
                event = events.recv(), if may_read_input => {
                    if let Some(outcome) = input(session, console, event) {
                        return Err(outcome);
                    }
                }
                () = stop_signal.recv() => {
                    if let Some(outcome) = stop(session) {
                        return Err(outcome);
                    }
                }
            }
        }

        // The handshake borrows the session: hold what is typed meanwhile.
        let mut held = Vec::new();
        let mut typed = Vec::new();
        let mut reading = may_read_input(session) && session.reads_while_dialing();
        // Each line held may be a message: no more than keep those not
        // acknowledged within the cap once they are handed over.
        let held_most = HELD_INPUT.min(in_flight_room(session));
        let mut stopped = session.stopping();
        let mut stop_now = false;
        let result = {
            let dialing = dial(config, clock, session, &mut held);
            tokio::pin!(dialing);
            let (events, stop_signal) = console.input();
            loop {
                tokio::select! {
                    result = &mut dialing => break result,
                    () = stop_signal.recv() => {
                        // A second signal leaves at once.
                        if stopped {
                            stop_now = true;
                            break Err(JoinError::Closed);
                        }
                        stopped = true;
                    }
                    event = events.recv(), if reading && typed.len() < held_most => {
                        match event {
                            Some(InputEvent::Interrupted) => return Err(Outcome::Interrupted),
                            Some(
                                InputEvent::Line(_)
                                | InputEvent::TooLong(_)
                                | InputEvent::Older(_)
                                | InputEvent::LetGo(..)
                                | InputEvent::Cut(..),
                            ) => {
                                typed.push(event)
                            }
                            Some(InputEvent::End) | None => {
                                reading = false;
                                typed.push(event);
                            }
                        }
                    }
                }
            }
        };
        if stop_now {
            return Err(Outcome::Left);
        }
        if stopped && !session.stopping() {
            session.handle_stop();
        }
        if show_held(console, held).await {
            if let Ok(link) = result {
                link.close(true).await;
            }
            return Err(Outcome::Left);
        }
        let link = match result {
            Ok(link) => Some(link),
            // Our own session may still hold the nickname: in a cluster,
            // its node died and the others free its nicknames within
            // seconds (a live server hands a session to its token at
            // once). The session resumes once it is free: try again, for
            // a while.
            Err(
                e @ JoinError::NickRefused {
                    code: "nick_taken", ..
                },
            ) if attempt < attempts.min(NICK_HELD_ATTEMPTS) => {
                session.handle_disconnected();
                console
                    .print(&Line::Info(
                        "the nickname is still held, perhaps by this session on a server \
                         that went down (a cluster frees it within seconds)"
                            .to_owned(),
                    ))
                    .await;
                last = e.to_string();
                None
            }
            // Trying again would not help: someone has the nickname, or
            // the server now shows a certificate we do not trust.
            Err(e @ (JoinError::NickRefused { .. } | JoinError::Untrusted { .. })) => {
                return Err(Outcome::Refused(e))
            }
            Err(e) => {
                session.handle_disconnected();
                last = e.to_string();
                None
            }
        };
        // Typed while the connection was down.
        session.set_typed_offline(true);
        for event in typed {
            if let Some(outcome) = input(session, console, event) {
                session.set_typed_offline(false);
                return Err(outcome);
            }
        }
        session.set_typed_offline(false);
        if let Some(link) = link {
            return Ok(link);
        }
    }
    Err(Outcome::Lost(format!(
        "lost the connection to {} and gave up after {attempts} {} to reconnect; the last: {last}",
        config.addr,
        if attempts == 1 { "attempt" } else { "attempts" }
    )))
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
mod tests {
    use std::cell::RefCell;

    use chatproto::{ClientFrame, Limits, PresenceStatus};

    use super::*;
    use crate::ledger::LineOutcome;
    use crate::render::{render, Style};
    use crate::session::Mode;
    use crate::stop::Stop;

    /// A user's side that records the lines shown, and types nothing.
    struct Seen {
        lines: RefCell<Vec<String>>,
        input: mpsc::Receiver<InputEvent>,
        _typing: mpsc::Sender<InputEvent>,
        stop: Stop,
    }

    impl Ui for Seen {
        fn input(&mut self) -> (&mut mpsc::Receiver<InputEvent>, &mut Stop) {
            (&mut self.input, &mut self.stop)
        }
        async fn print(&self, line: &Line) {
            let text = render(line, Style::default(), None);
            self.lines.borrow_mut().push(text);
        }
        async fn frame(&self, _: &ServerFrame) {}
        async fn outcome(&self, _: &LineOutcome) {}
        async fn update(&self, _: &Session) {}
        fn line_handled(&self, _: &Session) {}
    }

    fn handle(s: &mut Session, frame: ServerFrame) -> Vec<ClientFrame> {
        s.handle_frame(0, frame);
        std::iter::from_fn(|| s.poll())
            .filter_map(|a| match a {
                Action::Send(f) => Some(f),
                _ => None,
            })
            .collect()
    }

    fn msg(seq: u64, from: &str) -> ServerFrame {
        let text = format!("m{seq}");
        ServerFrame::msg(Some("lobby".into()), seq, from, vec![], text, 0, None)
    }

    fn replayed(seq: u64) -> ServerFrame {
        let mut m = msg(seq, "bob");
        if let ServerFrame::Msg { replay, .. } = &mut m {
            *replay = true;
        }
        m
    }

    fn presence(seq: u64, nick: &str, status: PresenceStatus) -> ServerFrame {
        ServerFrame::presence(Some("lobby".into()), seq, nick, status, 0)
    }

    /// The connection lost while the page of one after a full page into
    /// a gap was on its way (and a leaving held back): what the session
    /// says of the loss ("fetched 20 missing messages of #lobby; more may
    /// be missing", "bob left") came after "connection lost", as if it
    /// happened while away, the note even with nothing fetched after the
    /// loss. It comes before it.
    #[tokio::test]
    async fn what_the_session_says_of_a_loss_comes_before_it() {
        let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
        s.set_mode(Mode {
            hold_departures: true,
            ..Mode::default()
        });
        s.handle_connected(0);
        let token = Some("token".to_owned());
        let welcome = |resumed, limits| {
            ServerFrame::welcome("alice", 0, vec![], token.clone(), Some(resumed), limits)
        };
        handle(&mut s, welcome(false, None));
        let on = PresenceStatus::Online;
        let entered =
            |seq| ServerFrame::entered("lobby", "e1", seq, 1, vec!["alice".into()], false);
        handle(&mut s, entered(0));
        handle(&mut s, presence(1, "alice", on));
        handle(&mut s, msg(3, "bob"));
        // Back with bob's 4 to 40 missed: pages of 20, a replay of 5.
        s.handle_disconnected();
        s.handle_connected(10);
        let limits = Limits::new(65_536, 64, 5, 20);
        handle(&mut s, welcome(true, Some(limits)));
        handle(&mut s, entered(40));
        for seq in 36..=40 {
            handle(&mut s, replayed(seq));
        }
        handle(&mut s, presence(41, "alice", on));
        s.handle_line("/history 20");
        std::iter::from_fn(|| s.poll()).for_each(drop);
        let page = (16..=35).map(replayed).collect();
        let asked = handle(&mut s, ServerFrame::history("lobby", page, true));
        assert!(
            matches!(&asked[..], [ClientFrame::History { limit: Some(1), .. }]),
            "the page of one: {asked:?}"
        );
        handle(&mut s, presence(42, "bob", PresenceStatus::Offline));

        let (typing, input) = mpsc::channel(1);
        let mut seen = Seen {
            lines: RefCell::new(Vec::new()),
            input,
            _typing: typing,
            stop: Stop::never(),
        };
        // Nobody listens there.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .to_string();
        let config = Config {
            addr,
            tls: None,
            timeout: Duration::from_secs(2),
            max_frame_bytes: 65_536,
            backoff: crate::reconnect::Backoff {
                min: Duration::from_millis(1),
                max: Duration::from_millis(1),
                attempts: 1,
            },
            first: None,
        };
        s.handle_disconnected();
        let why = "the server closed the connection".to_owned();
        let gave_up = reconnect(&config, &Clock::start(), &mut s, &mut seen, why, false).await;
        assert!(matches!(gave_up, Err(Outcome::Lost(_))));
        let lines = seen.lines.into_inner();
        let at = |start: &str| {
            lines
                .iter()
                .position(|l| l.starts_with(start))
                .unwrap_or_else(|| panic!("no {start:?} in {lines:#?}"))
        };
        let lost = at("* connection lost");
        assert!(
            at("* fetched 20 missing messages of #lobby; more may be missing") < lost,
            "{lines:#?}"
        );
        assert!(at("* bob left") < lost, "{lines:#?}");
    }

    /// A loss right after the server's `notice` (what it says before it
    /// stops) is a planned restart, which the reconnect retries steadily
    /// for ([`Retries`]); one after anything else is not.
    #[tokio::test]
    async fn a_loss_after_the_servers_notice_is_a_planned_restart() {
        for (last, planned) in [
            (
                ServerFrame::notice("the server is shutting down; goodbye"),
                true,
            ),
            (msg(1, "bob"), false),
        ] {
            let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
            s.handle_connected(0);
            let welcome = ServerFrame::welcome("alice", 0, vec![], None, Some(false), None);
            handle(&mut s, welcome);
            let (ours, mut theirs) = tokio::io::duplex(1 << 16);
            let (reader, writer) = tokio::io::split(ours);
            let mut link = Link::start(
                Box::new(reader),
                writer,
                BytesMut::new(),
                FrameDecoder::new(65_536),
            );
            let frames = [
                ServerFrame::notice("an earlier notice"),
                msg(1, "bob"),
                last,
            ];
            for f in frames {
                theirs
                    .write_all(&encode(&f, 65_536).unwrap())
                    .await
                    .unwrap();
            }
            drop(theirs);
            let (typing, input) = mpsc::channel(1);
            let mut seen = Seen {
                lines: RefCell::new(Vec::new()),
                input,
                _typing: typing,
                stop: Stop::never(),
            };
            let config = Config {
                addr: "127.0.0.1:1".into(),
                tls: None,
                timeout: Duration::from_secs(2),
                max_frame_bytes: 65_536,
                backoff: crate::reconnect::Backoff {
                    min: Duration::from_millis(1),
                    max: Duration::from_millis(1),
                    attempts: 1,
                },
                first: None,
            };
            let lost = chat(&config, &Clock::start(), &mut s, &mut seen, &mut link).await;
            let Err(lost) = lost else {
                panic!("not lost: {lost:?}");
            };
            assert_eq!(lost.planned, planned, "{lost:?}");
            assert_eq!(lost.why, "the server closed the connection");
            link.close(false).await;
        }
    }

    /// An address that closes each connection before its `welcome`: the
    /// first join there is told it may take only TLS; a reconnect to one
    /// that let this client in before is not (it spoke chatproto a moment
    /// ago: a reset while joining is no sign of TLS).
    #[tokio::test]
    async fn the_tls_hint_is_only_for_an_address_never_joined() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = listener.local_addr().expect("its address").to_string();
        // Two connections, each closed at once: our side is shut first and
        // what the client sent is read to its end, so the client sees an
        // end of stream (dropping the socket with its join unread would
        // reset it instead, now and then before the client reads).
        let closer = std::thread::spawn(move || {
            for stream in listener.incoming().take(2) {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.shutdown(std::net::Shutdown::Write);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
                let _ = std::io::copy(&mut stream, &mut std::io::sink());
            }
        });
        let config = Config {
            addr,
            tls: None,
            timeout: Duration::from_secs(20),
            max_frame_bytes: 65_536,
            backoff: crate::reconnect::Backoff {
                min: Duration::from_millis(1),
                max: Duration::from_millis(1),
                attempts: 1,
            },
            first: None,
        };
        let hint = "is chatserver listening on that port?";
        let mut never = Session::new("alice", &["lobby".into()], "t-", 65_536);
        let e = dial(&config, &Clock::start(), &mut never, &mut Vec::new())
            .await
            .err()
            .expect("closed while joining");
        assert!(e.to_string().contains(hint), "{e}");

        let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
        s.handle_connected(0);
        let welcome = ServerFrame::welcome("alice", 0, vec![], None, Some(false), None);
        handle(&mut s, welcome);
        s.handle_disconnected();
        let e = dial(&config, &Clock::start(), &mut s, &mut Vec::new())
            .await
            .err()
            .expect("closed while joining");
        assert!(matches!(e, JoinError::Closed), "{e:?}");
        assert!(!e.to_string().contains(hint), "{e}");
        closer.join().expect("the listener thread");
    }
}
