//! The network shell: connect and join, then move frames between the socket
//! and the [`Session`], and lines between the console and the session.
//!
//! Reading and writing the socket are independent: a writer task owns the
//! write half, so when the server throttles us by not reading (its rate
//! limit), only that task waits; the loop here keeps reading the socket
//! (echoes, pings, other people's messages) and keeps taking input.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chatproto::{encode, escape_control, ClientFrame, ErrorCode, FrameDecoder, ServerFrame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant};

use crate::console::{Console, InputEvent};
use crate::error::JoinError;
use crate::input::parse_line;
use crate::render::Line;
use crate::session::{Action, End, Session};

/// At most this many messages sent and not yet answered; past it, input
/// waits (stdin is simply not read further) until replies come back. This
/// bounds the writer's queue without ever dropping a typed line.
const MAX_IN_FLIGHT: usize = 1024;

/// How long to wait for the writer to hand the last bytes to the kernel
/// when leaving.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);

/// A joined connection, ready for [`run`].
#[derive(Debug)]
pub struct Joined {
    stream: TcpStream,
    /// Bytes read after the `welcome`, not decoded yet.
    rbuf: BytesMut,
    decoder: FrameDecoder,
    /// The nickname as the server spelled it.
    pub nick: String,
    /// Who was online at `welcome` (more may follow in `online` frames).
    pub online: Vec<String>,
}

/// Connect to `addr` and join as `nick`, all within `limit`.
pub async fn join(
    addr: &str,
    nick: &str,
    limit: Duration,
    max_frame_bytes: usize,
) -> Result<Joined, JoinError> {
    let deadline = Instant::now() + limit;
    let timed_out = || JoinError::Timeout {
        addr: addr.to_owned(),
        secs: limit.as_secs_f64(),
    };
    let mut stream =
        timeout_at(deadline, connect(addr))
            .await
            .map_err(|_| JoinError::ConnectTimeout {
                addr: addr.to_owned(),
                secs: limit.as_secs_f64(),
            })??;
    // Chat lines are small and latency matters more than packet count.
    let _ = stream.set_nodelay(true);
    let join = encode(&ClientFrame::join(nick), max_frame_bytes)
        .map_err(|e| JoinError::Protocol(e.to_string()))?;
    timeout_at(deadline, stream.write_all(&join))
        .await
        .map_err(|_| timed_out())?
        .map_err(JoinError::Io)?;

    let mut decoder = FrameDecoder::new(max_frame_bytes);
    let mut rbuf = BytesMut::with_capacity(4096);
    loop {
        while let Some(frame) = decoder
            .decode::<ServerFrame>(&mut rbuf)
            .map_err(|e| JoinError::Protocol(e.to_string()))?
        {
            match frame.map_err(|e| JoinError::Protocol(e.to_string()))? {
                ServerFrame::Welcome { nick, online, .. } => {
                    return Ok(Joined {
                        stream,
                        rbuf,
                        decoder,
                        nick,
                        online,
                    })
                }
                ServerFrame::Error { code, message, .. } => {
                    return Err(JoinError::refused(code, &message, nick))
                }
                ServerFrame::Ping => {
                    let pong = encode(&ClientFrame::Pong, max_frame_bytes)
                        .map_err(|e| JoinError::Protocol(e.to_string()))?;
                    timeout_at(deadline, stream.write_all(&pong))
                        .await
                        .map_err(|_| timed_out())?
                        .map_err(JoinError::Io)?;
                }
                // Nothing else is expected before `welcome`; a notice or a
                // newer frame kind is no reason to fail.
                _ => {}
            }
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
async fn connect(addr: &str) -> Result<TcpStream, JoinError> {
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

/// How a joined session ended.
#[derive(Debug)]
pub enum Outcome {
    /// As [`Session`] decided: the user left, or the server ended it.
    Ended(End),
    /// The connection failed (reset, write error, broken framing).
    Lost(String),
    /// Ctrl-C: left at once.
    Interrupted,
}

/// Run a joined session until it ends.
pub async fn run(joined: Joined, console: &mut Console, max_frame_bytes: usize) -> Outcome {
    let Joined {
        stream,
        mut rbuf,
        mut decoder,
        nick,
        online,
    } = joined;
    let (mut reader, writer) = stream.into_split();
    let (wtx, wrx) = mpsc::unbounded_channel::<Bytes>();
    let mut writer = tokio::spawn(write_loop(writer, wrx));
    let mut session = Session::new(nick.clone(), &online, max_frame_bytes);
    let mut actions = Vec::new();

    console
        .print(&Line::Info(format!(
            "joined as {nick}; /who lists who is online, /help shows the syntax"
        )))
        .await;

    let outcome = loop {
        // Frames that came in with the last read (or with the welcome).
        let decoded = drain_frames(&mut decoder, &mut rbuf, &mut session, &mut actions);
        if let Some(outcome) = apply(&mut actions, console, &wtx, max_frame_bytes).await {
            break outcome;
        }
        if let Err(e) = decoded {
            break Outcome::Lost(e);
        }
        let may_read_input = !session.input_done() && session.in_flight() < MAX_IN_FLIGHT;
        tokio::select! {
            read = reader.read_buf(&mut rbuf) => match read {
                Ok(0) => session.handle_closed(&mut actions),
                Ok(_) => {}
                Err(e) => break Outcome::Lost(format!("reading from the server failed: {e}")),
            },
            event = console.input.recv(), if may_read_input => match event {
                Some(InputEvent::Line(line)) => session.handle_command(parse_line(&line), &mut actions),
                Some(InputEvent::End) | None => session.handle_input_end(&mut actions),
                Some(InputEvent::Interrupted) => break Outcome::Interrupted,
            },
            done = &mut writer => {
                let why = match done {
                    Ok(Ok(())) => "the connection closed".to_owned(),
                    Ok(Err(e)) => format!("writing to the server failed: {e}"),
                    Err(e) => format!("the writer task failed: {e}"),
                };
                break Outcome::Lost(why);
            }
        }
        if let Some(outcome) = apply(&mut actions, console, &wtx, max_frame_bytes).await {
            break outcome;
        }
    };

    // Leaving: let the writer send what it holds and close our side, so the
    // server sees a clean end of stream rather than a reset.
    drop(wtx);
    if matches!(outcome, Outcome::Ended(End::Left)) {
        let _ = tokio::time::timeout(CLOSE_FLUSH, &mut writer).await;
    }
    writer.abort();
    outcome
}

/// Decode every whole frame in `rbuf` and feed it to the session.
fn drain_frames(
    decoder: &mut FrameDecoder,
    rbuf: &mut BytesMut,
    session: &mut Session,
    actions: &mut Vec<Action>,
) -> Result<(), String> {
    loop {
        match decoder.decode::<ServerFrame>(rbuf) {
            Ok(None) => return Ok(()),
            Ok(Some(Ok(frame))) => session.handle_frame(frame, actions),
            // A frame we cannot parse (a newer server?): say so, carry on;
            // the framing itself is still in sync.
            Ok(Some(Err(e))) => actions.push(Action::Print(Line::Error {
                code: "bad_frame".into(),
                message: format!("ignored a frame from the server: {e}"),
            })),
            Err(e) => return Err(format!("the server broke the framing: {e}")),
        }
        if actions.iter().any(|a| matches!(a, Action::Exit(_))) {
            return Ok(());
        }
    }
}

/// Carry out `actions` in order; the outcome if one of them ends the session.
async fn apply(
    actions: &mut Vec<Action>,
    console: &Console,
    wtx: &mpsc::UnboundedSender<Bytes>,
    max_frame_bytes: usize,
) -> Option<Outcome> {
    for action in actions.drain(..) {
        match action {
            Action::Print(line) => console.print(&line).await,
            Action::Send(frame) => match encode(&frame, max_frame_bytes) {
                Ok(bytes) => {
                    // If the writer is gone, the select loop hears it next.
                    let _ = wtx.send(bytes);
                }
                Err(e) => {
                    console
                        .print(&Line::Error {
                            code: "msg_too_large".into(),
                            message: format!("not sent: {e}"),
                        })
                        .await
                }
            },
            Action::Exit(end) => return Some(Outcome::Ended(end)),
        }
    }
    None
}

/// Own the write half: send queued frames, several per write when they pile
/// up, and shut our side down when the queue closes.
async fn write_loop(
    mut half: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
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
        buf.clear();
    }
    half.shutdown().await
}

impl JoinError {
    /// The error for an `error` frame that answered our `join`.
    fn refused(code: ErrorCode, message: &str, nick: &str) -> JoinError {
        let message = escape_control(message).into_owned();
        match code {
            ErrorCode::NickTaken | ErrorCode::NickInvalid => JoinError::NickRefused {
                nick: escape_control(nick).into_owned(),
                code: code.as_str(),
                message,
            },
            ErrorCode::ServerFull => JoinError::ServerFull { message },
            _ => JoinError::Refused {
                code: code.as_str(),
                message,
            },
        }
    }
}
