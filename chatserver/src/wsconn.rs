//! One WebSocket connection: chatproto with one JSON payload per text
//! message. The same limits as over TCP: the frame size (a larger message
//! is `frame_too_large` and a close), the rate, the outbound queue and the
//! total budget, the join and idle timeouts (chatproto's own ping; the
//! WebSocket's pings are answered too, within a bound).
//!
//! tungstenite reads the connection (unmasking, fragments, control frames,
//! the size limits, UTF-8); the writer task writes the frames itself
//! ([`writer::Ws`]), each event's bytes as the hub queued them.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use chatproto::{ClientFrame, ErrorCode, FramingError, Kick, PayloadError, ServerFrame};
use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, info};
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::Message;

use crate::feed::{self, Feeder, Halt};
use crate::hub::ToHub;
use crate::limits::Admission;
use crate::peer::Peer;
use crate::writer::{self, CloseCode, Control};

use crate::Settings;

/// The read buffer of a WebSocket connection (a message longer than it is
/// read in several reads).
const WS_READ_BUFFER: usize = 8 << 10;

/// Raw frames (never handed to a server: none in practice) looked past,
/// at most, when a throttled client is looked at for anything more it
/// sent.
const CONTROL_LOOKED_PAST: usize = 8;

/// The most frames one message of a client's may come in. The rate limit
/// counts messages, which tungstenite hands on whole: without a bound, a
/// message that never ends (empty continuation frames, six bytes each)
/// would cost the server a frame's work millions of times a second at
/// the price of one message. A browser sends a message in one frame.
pub const MAX_WS_FRAGMENTS: u32 = 64;

/// A client's message came in more than [`MAX_WS_FRAGMENTS`] frames: the
/// read half's error, told apart from the socket's own in `refuse`.
#[derive(Debug)]
struct TooFragmented;

impl std::fmt::Display for TooFragmented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a WebSocket message in more than {MAX_WS_FRAGMENTS} frames"
        )
    }
}

impl std::error::Error for TooFragmented {}

/// Serve one upgraded WebSocket (inside TLS: `tls`, `wss://`) until it
/// ends. `_admission` and `_done` are held until then, as for a TCP
/// connection.
pub async fn serve<S>(
    io: S,
    addr: SocketAddr,
    tls: bool,
    to_hub: mpsc::Sender<ToHub>,
    cfg: Arc<Settings>,
    _admission: Option<Admission>,
    _done: mpsc::Sender<()>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let peer = Peer::for_task(cfg.queue, Arc::clone(&cfg.budget));
    let peer = Arc::new(peer.with_reads(cfg.read_allowance()));
    let Some(id) = feed::connect(&to_hub, &peer).await else {
        return;
    };
    info!(client = %id, %addr, tls, "websocket connected");
    cfg.metrics.opened(crate::metrics::Transport::WebSocket);
    let (rd, wr) = tokio::io::split(io);
    let control = Arc::new(Control::new(writer::MAX_PENDING_PONGS_BYTES));
    let read_side = ReadSide {
        rd,
        control: Arc::clone(&control),
        peer: Arc::clone(&peer),
        frames: Frames::default(),
    };
    // tungstenite's read buffer is 128 KiB by default, allocated (and
    // zeroed) for each connection, idle or not: a TCP connection's is 8.
    let limits = WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .max_message_size(Some(cfg.max_frame_bytes))
        .max_frame_size(Some(cfg.max_frame_bytes));
    let mut stream = WebSocketStream::from_raw_socket(read_side, Role::Server, Some(limits)).await;
    let writing = {
        let (peer, to_hub) = (Arc::clone(&peer), to_hub.clone());
        let out = writer::Ws::new(wr, Arc::clone(&control));
        tokio::spawn(async move { writer::run(&peer, out, &to_hub, id).await })
    };
    let mut feeder = Feeder::new(&to_hub, &cfg, &peer);
    let mut resume_at: Option<Instant> = None;
    // Messages tungstenite has handed on (see `Frames::drained`).
    let mut messages = 0u64;
    // What tungstenite handed on when a throttled client was looked at
    // (see below), to take next.
    let mut early = None;
    // Whether the client said its last (its close, or the end of the
    // stream, with or without a close before it): what it sent before is
    // answered before our close.
    let mut ended = false;
    // No message has been read yet: a first that resumes a session is
    // handed on with the end of the stream if that is here already
    // (`feed::resumes`), and the reading stops once it has passed.
    let mut first = true;
    loop {
        if peer.is_closing() {
            break;
        }
        let next = match early.take() {
            Some(next) => Some(next),
            None => tokio::select! {
                next = stream.next(), if resume_at.is_none() => Some(next),
                _ = sleep_until(resume_at.unwrap_or_else(Instant::now)), if resume_at.is_some() => None,
                // A read answered: a frame that waited for it (see
                // `Feeder::pass`) goes on now.
                _ = peer.wake.notified() => if resume_at.is_none() || peer.is_closing() {
                    continue;
                } else {
                    None
                },
            },
        };
        if let Some(next) = next {
            if matches!(next, Some(Ok(_))) {
                messages += 1;
            }
            let was_first = std::mem::take(&mut first);
            let held = match next {
                None => {
                    ended = true;
                    break;
                }
                Some(Ok(Message::Text(text))) => Some((
                    match ClientFrame::from_payload(text.as_bytes()) {
                        Ok(frame) => ToHub::Frame(id, frame),
                        Err(e) => ToHub::BadFrame(id, e),
                    },
                    text.len(),
                )),
                Some(Ok(Message::Binary(bytes))) => Some((
                    ToHub::BadFrame(
                        id,
                        PayloadError::Invalid(
                            "a binary WebSocket message; send each frame as a text message of JSON"
                                .into(),
                        ),
                    ),
                    bytes.len(),
                )),
                // Answered by the WebSocket itself; they prove nothing
                // to the core, whose own ping does, but each costs what a
                // frame does (`Feeder::hold_control`).
                Some(Ok(Message::Ping(p) | Message::Pong(p))) => {
                    feeder.hold_control(p.len());
                    None
                }
                // Our close frame answers it, after what is queued.
                Some(Ok(Message::Close(frame))) => {
                    answer_close(&control, frame.as_ref());
                    ended = true;
                    break;
                }
                Some(Ok(Message::Frame(_))) => continue,
                // The stream ended without a close (a TCP half-close, or
                // inside TLS with or without close_notify): an end as
                // over TCP, what came before it answered before our close.
                Some(Err(e)) if ended_without_close(&e) => {
                    debug!(client = %id, error = %e, "websocket ended without a close");
                    ended = true;
                    break;
                }
                Some(Err(e)) => {
                    refuse(&peer, &control, &cfg, id, e);
                    break;
                }
            };
            // A data message (not a ping, whose pong tungstenite has
            // yet to write). tungstenite keeps the buffer a large
            // frame grew for as long as it reads: once it holds
            // nothing unread, a new one with a buffer of the usual
            // size reads on, so that a connection that sent a large
            // message once does not keep that much while it idles.
            if let Some((input, bytes)) = held {
                let frames = &stream.get_ref().frames;
                if frames.largest > WS_READ_BUFFER as u64 && frames.drained(messages) {
                    let mut read_side = stream.into_inner();
                    read_side.frames.renew();
                    let config = Some(limits);
                    stream =
                        WebSocketStream::from_raw_socket(read_side, Role::Server, config).await;
                    messages = 0;
                }
                let input = match input {
                    ToHub::Frame(id, frame) if was_first && feed::resumes(&frame) => {
                        match stream.next().now_or_never() {
                            Some(end) if ends(&control, end.as_ref()) => {
                                ended = true;
                                ToHub::LastFrame(id, frame)
                            }
                            Some(next) => {
                                early = Some(next);
                                ToHub::Frame(id, frame)
                            }
                            None => ToHub::Frame(id, frame),
                        }
                    }
                    input => input,
                };
                feeder.hold(input, bytes);
            }
        }
        match feeder.pass().await {
            Ok(None) if ended => break,
            Ok(None) => {
                resume_at = None;
                // A throttled client is caught up (see
                // `Feeder::caught_up`) once it has nothing more to
                // read: tungstenite holds no byte of it and the socket
                // has none now. A message it does have is taken next
                // (a ping or a pong too: each is charged as a frame);
                // raw frames, which a server is not handed, are looked
                // past (a few).
                if feeder.is_throttled() {
                    for _ in 0..CONTROL_LOOKED_PAST {
                        match stream.next().now_or_never() {
                            Some(Some(Ok(Message::Frame(_)))) => {
                                messages += 1;
                                continue;
                            }
                            Some(next) => early = Some(next),
                            None if stream.get_ref().frames.drained(messages) => feeder.caught_up(),
                            None => {}
                        }
                        break;
                    }
                }
            }
            Ok(Some(at)) => resume_at = Some(at),
            Err(Halt::Kick(why)) => {
                info!(client = %id, "rate limit exceeded for too long; closing");
                control.close_with(CloseCode::Policy, why.code().as_str());
                feed::kick(&peer, &why, &cfg);
                break;
            }
            Err(Halt::HubGone) => break,
        }
    }
    let grace = Duration::from_millis(cfg.close_flush_ms);
    feed::leave(&to_hub, &peer, id, ended, grace).await;
    // What was queued before the leave goes out, within the flush time.
    peer.close();
    let mut writing = writing;
    match timeout(grace, &mut writing).await {
        // Written, our close frame last, and our side shut: what the
        // client still sends is read a little while (not as WebSocket
        // frames), so the close does not reset the connection before the
        // client has read our last frames.
        Ok(_) => crate::edge::drain(&mut stream.into_inner().rd).await,
        // A client that stopped reading does not keep the task.
        Err(_) => writing.abort(),
    }
    cfg.metrics.closed(crate::metrics::Transport::WebSocket);
    debug!(client = %id, %addr, "websocket closed");
}

/// Whether `next`, read right after a message, ends the client's stream
/// as the read loop's own end would: the stream's end, a close (answered
/// here), or the end of the bytes without a close.
fn ends(control: &Control, next: Option<&Result<Message, tungstenite::Error>>) -> bool {
    match next {
        None => true,
        Some(Ok(Message::Close(frame))) => {
            answer_close(control, frame.as_ref());
            true
        }
        Some(Err(e)) => ended_without_close(e),
        Some(Ok(_)) => false,
    }
}

/// The close that answers a client's close: 1000, unless its close broke
/// RFC 6455 (a status a peer may not send, such as 1005, which tungstenite
/// hands on as 1002), which is answered 1002.
fn answer_close(control: &Control, frame: Option<&CloseFrame>) {
    if let Some(f) = frame.filter(|f| f.code == CloseCode::Protocol) {
        control.close_with(CloseCode::Protocol, &f.reason);
    }
}

/// Whether `e` is the client's stream ending with no WebSocket close
/// before it: the end of the TCP stream (tungstenite's
/// `ResetWithoutClosingHandshake`, also inside TLS after close_notify),
/// or inside TLS its end without close_notify (many clients send none).
/// Every message read before it was whole.
fn ended_without_close(e: &tungstenite::Error) -> bool {
    use tungstenite::error::ProtocolError;
    match e {
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => true,
        tungstenite::Error::Io(io) => io.kind() == io::ErrorKind::UnexpectedEof,
        _ => false,
    }
}

/// The close status for a connection whose messages could not be read
/// because of `e` (RFC 6455 7.4.1), with a reason; `None` when the
/// client only went away (or the socket failed), where a normal close is
/// all that is left to send.
fn close_for(e: &tungstenite::Error) -> Option<(CloseCode, String)> {
    use tungstenite::error::ProtocolError;
    match e {
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        tungstenite::Error::Protocol(p) => Some((CloseCode::Protocol, p.to_string())),
        tungstenite::Error::Utf8(_) => Some((CloseCode::Invalid, "text that is not UTF-8".into())),
        tungstenite::Error::Capacity(_) => Some((CloseCode::Size, "message too big".into())),
        _ => None,
    }
}

/// The WebSocket could not read a message: say why before closing, where
/// the client caused it (a message over the frame limit, text that is not
/// UTF-8, which a WebSocket must close for), and close with the status
/// that says so (1009, 1007; 1002 for a frame that breaks RFC 6455).
fn refuse(
    peer: &Peer,
    control: &Control,
    cfg: &Settings,
    id: chatproto::ClientId,
    e: tungstenite::Error,
) {
    if let Some((code, reason)) = close_for(&e) {
        control.close_with(code, &reason);
    }
    match &e {
        tungstenite::Error::Io(io)
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<TooFragmented>()) =>
        {
            info!(client = %id, "websocket message in too many frames; closing");
            control.close_with(CloseCode::Policy, ErrorCode::BadFrame.as_str());
            let text = format!(
                "bad frame: a WebSocket message in more than {MAX_WS_FRAGMENTS} frames; \
                 send each message in one frame; closing"
            );
            let frame = ServerFrame::error(ErrorCode::BadFrame, text);
            cfg.metrics.closed_for(ErrorCode::BadFrame);
            if let Ok(bytes) = chatproto::encode(&frame, cfg.max_frame_bytes) {
                peer.kick(bytes, ErrorCode::BadFrame);
            }
        }
        tungstenite::Error::Capacity(tungstenite::error::CapacityError::MessageTooLong {
            size,
            max_size,
        }) => {
            info!(client = %id, size, max_size, "websocket message over the frame limit; closing");
            let len = *size as u64;
            let why = Kick::Framing(FramingError::too_large(len, *max_size));
            feed::kick(peer, &why, cfg);
        }
        tungstenite::Error::Utf8(_) => {
            // The WebSocket library does not say which of the two it was.
            let text = "bad frame: text that is not UTF-8 (in a text message or a close frame's \
                        reason); closing (a WebSocket must)";
            let frame = ServerFrame::error(ErrorCode::BadFrame, text);
            cfg.metrics.closed_for(ErrorCode::BadFrame);
            if let Ok(bytes) = chatproto::encode(&frame, cfg.max_frame_bytes) {
                peer.kick(bytes, ErrorCode::BadFrame);
            }
        }
        tungstenite::Error::Protocol(_) if close_for(&e).is_some() => {
            info!(client = %id, error = %e, "websocket protocol error; closing");
        }
        _ => debug!(client = %id, error = %e, "websocket failed"),
    }
}

/// The connection's read half, for tungstenite to read from. What
/// tungstenite writes (the pong for a ping) is held in [`Control`] for the
/// writer task, which owns the write half; past its bound the older pongs
/// give way to the latest.
struct ReadSide<S> {
    rd: ReadHalf<S>,
    control: Arc<Control>,
    peer: Arc<Peer>,
    /// Where the bytes handed to tungstenite stand among the client's frames.
    frames: Frames,
}

impl<S: AsyncRead> AsyncRead for ReadSide<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let read = Pin::new(&mut this.rd).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read {
            this.frames.feed(&buf.filled()[before..]);
            if this.frames.pieces > MAX_WS_FRAGMENTS {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    TooFragmented,
                )));
            }
        }
        read
    }
}

/// The client's frames as their bytes go by on their way to tungstenite:
/// how many ended a message (a final data frame, or a control frame: each
/// is one message tungstenite hands on), whether the bytes so far end
/// between frames, and the largest payload since [`Frames::renew`].
/// Enough to tell when tungstenite holds no byte it has not handed on
/// (see [`Frames::drained`]).
#[derive(Debug, Default)]
struct Frames {
    /// The header being read (at most 14 bytes) and how much of it came.
    head: [u8; 14],
    have: usize,
    /// Payload bytes still to come of the frame being read (its header
    /// came whole).
    body_left: u64,
    /// Whether the frame being read ends a message.
    ends_message: bool,
    /// Frames handed whole that end a message.
    ends: u64,
    /// Within a message of several frames (a data frame without FIN came,
    /// its last one not yet).
    fragmented: bool,
    /// The largest payload handed since the last renewal.
    largest: u64,
    /// The data frames of the message being read so far (see
    /// [`MAX_WS_FRAGMENTS`]).
    pieces: u32,
}

impl Frames {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len() as u64);
                self.body_left -= n;
                bytes = &bytes[n as usize..];
                if self.body_left == 0 {
                    self.frame_done();
                }
                continue;
            }
            self.head[self.have] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            if self.have < 2 {
                continue;
            }
            let extended = match self.head[1] & 0x7f {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            let mask = if self.head[1] & 0x80 != 0 { 4 } else { 0 };
            if self.have < 2 + extended + mask {
                continue;
            }
            let len = match extended {
                2 => u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
                8 => u64::from_be_bytes(self.head[2..10].try_into().expect("8 bytes")),
                _ => u64::from(self.head[1] & 0x7f),
            };
            let fin = self.head[0] & 0x80 != 0;
            let control = self.head[0] & 0x08 != 0;
            self.ends_message = fin || control;
            if !control {
                // A data frame: the first of a message, or one more of it.
                self.pieces = if self.fragmented {
                    self.pieces.saturating_add(1)
                } else {
                    1
                };
                self.fragmented = !fin;
            }
            self.largest = self.largest.max(len);
            self.have = 0;
            self.body_left = len;
            if len == 0 {
                self.frame_done();
            }
        }
    }

    fn frame_done(&mut self) {
        if self.ends_message {
            self.ends += 1;
        }
    }

    /// Whether tungstenite, having handed on `messages` messages, holds
    /// no byte of the client's: the bytes so far end between frames,
    /// outside a message of several frames, and every frame among them
    /// that ends a message has been handed on as one.
    fn drained(&self, messages: u64) -> bool {
        self.have == 0 && self.body_left == 0 && !self.fragmented && self.ends == messages
    }

    /// A new tungstenite reads on (every frame handed on, see
    /// [`drained`](Frames::drained)): it has handed on no message yet, and
    /// the largest payload is counted anew.
    fn renew(&mut self) {
        self.ends = 0;
        self.largest = 0;
    }
}

impl<S> AsyncWrite for ReadSide<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if !self.control.push(buf) {
            return Poll::Ready(Err(io::Error::other(
                "a control frame over the bound of unwritten pongs",
            )));
        }
        self.peer.writable.notify_one();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's frame (masked) with `first` as its first byte (FIN and
    /// opcode) and `len` bytes of payload.
    fn frame(first: u8, len: usize) -> Vec<u8> {
        let mut out = vec![first];
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if let Ok(short) = u16::try_from(len) {
            out.push(0x80 | 126);
            out.extend_from_slice(&short.to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&[1, 2, 3, 4]);
        out.extend(std::iter::repeat_n(b'x', len));
        out
    }

    #[test]
    fn frames_are_followed_however_their_bytes_are_cut() {
        // A text message, a ping, a message in two frames with a pong
        // between them, a large text message, an empty one.
        let parts = [
            (frame(0x81, 5), 1),
            (frame(0x89, 0), 1),
            (frame(0x01, 300), 0),
            (frame(0x8A, 4), 1),
            (frame(0x80, 70_000), 1),
            (frame(0x81, 0), 1),
        ];
        for cut in [1, 2, 3, 7, 100, 1 << 20] {
            let mut frames = Frames::default();
            let mut ends = 0;
            for (i, (bytes, message)) in parts.iter().enumerate() {
                for (j, chunk) in bytes.chunks(cut).enumerate() {
                    frames.feed(chunk);
                    let last = (j + 1) * cut >= bytes.len();
                    if !last {
                        assert!(!frames.drained(ends), "frame {i} is not whole yet");
                    }
                }
                ends += message;
                // Not drained while tungstenite has not handed on the
                // frame's message, nor within a message cut in frames.
                let within = i == 2 || i == 3;
                assert_eq!(frames.drained(ends), !within, "after frame {i}, cut {cut}");
                if *message == 1 {
                    assert!(!frames.drained(ends - 1), "frame {i} not handed on yet");
                }
            }
            assert_eq!(frames.largest, 70_000);
            frames.renew();
            assert!(frames.drained(0));
            assert_eq!(frames.largest, 0);
        }
    }
}
