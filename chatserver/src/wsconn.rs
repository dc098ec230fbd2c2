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
use futures_util::StreamExt;
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

/// The read buffer of a WebSocket connection (a message longer than it is
/// read in several reads).
const WS_READ_BUFFER: usize = 8 << 10;
use crate::Settings;

/// Serve one upgraded WebSocket until it ends. `_admission` and `_done`
/// are held until then, as for a TCP connection.
pub async fn serve<S>(
    io: S,
    addr: SocketAddr,
    to_hub: mpsc::Sender<ToHub>,
    cfg: Arc<Settings>,
    _admission: Option<Admission>,
    _done: mpsc::Sender<()>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let peer = Arc::new(Peer::for_task(cfg.queue, Arc::clone(&cfg.budget)));
    let Some(id) = feed::connect(&to_hub, &peer).await else {
        return;
    };
    info!(client = %id, %addr, "websocket connected");
    cfg.metrics.opened(crate::metrics::Transport::WebSocket);
    let (rd, wr) = tokio::io::split(io);
    let control = Arc::new(Control::new(writer::MAX_PENDING_PONGS_BYTES));
    let read_side = ReadSide {
        rd,
        control: Arc::clone(&control),
        peer: Arc::clone(&peer),
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
    loop {
        if peer.is_closing() {
            break;
        }
        tokio::select! {
            next = stream.next(), if resume_at.is_none() => {
                let input = match next {
                    None => break,
                    Some(Ok(Message::Text(text))) => match ClientFrame::from_payload(text.as_bytes()) {
                        Ok(frame) => ToHub::Frame(id, frame),
                        Err(e) => ToHub::BadFrame(id, e),
                    },
                    Some(Ok(Message::Binary(_))) => ToHub::BadFrame(id, PayloadError::Invalid(
                        "a binary WebSocket message; send each frame as a text message of JSON".into(),
                    )),
                    // Our close frame answers it, after what is queued.
                    Some(Ok(Message::Close(frame))) => {
                        answer_close(&control, frame.as_ref());
                        break;
                    }
                    // Answered by the WebSocket itself; they prove nothing
                    // to the core, whose own ping does.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Err(e)) => {
                        refuse(&peer, &control, &cfg, id, e);
                        break;
                    }
                };
                feeder.hold(input);
            }
            _ = sleep_until(resume_at.unwrap_or_else(Instant::now)), if resume_at.is_some() => {}
            // A read answered: a frame that waited for it (see
            // `Feeder::pass`) goes on now.
            _ = peer.wake.notified() => if resume_at.is_none() || peer.is_closing() {
                continue;
            },
        }
        match feeder.pass().await {
            Ok(None) => {
                // Caught up only if it passed without waiting: a flood
                // that is always waiting is throttled, and closed after
                // the grace time.
                if resume_at.is_none() {
                    feeder.caught_up();
                }
                resume_at = None;
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
    let _ = to_hub.send(ToHub::Gone(id)).await;
    // What was queued before the leave goes out, within the flush time.
    peer.close();
    let grace = Duration::from_millis(cfg.close_flush_ms);
    let mut writing = writing;
    if timeout(grace, &mut writing).await.is_err() {
        // A client that stopped reading does not keep the task.
        writing.abort();
    }
    cfg.metrics.closed(crate::metrics::Transport::WebSocket);
    debug!(client = %id, %addr, "websocket closed");
}

/// The close that answers a client's close: 1000, unless its close broke
/// RFC 6455 (a status a peer may not send, such as 1005, which tungstenite
/// hands on as 1002), which is answered 1002.
fn answer_close(control: &Control, frame: Option<&CloseFrame>) {
    if let Some(f) = frame.filter(|f| f.code == CloseCode::Protocol) {
        control.close_with(CloseCode::Protocol, &f.reason);
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
}

impl<S: AsyncRead> AsyncRead for ReadSide<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.rd).poll_read(cx, buf)
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
