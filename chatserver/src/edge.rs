//! One port, three ways in, told apart by a connection's first byte:
//! chatproto frames (0x00: every frame is under 16 MiB), an HTTP request
//! (a method name, A-Z), or a TLS ClientHello (0x16), inside which the
//! same choice is made again. Any other first byte is a length header over
//! every limit: the chatproto path answers it `frame_too_large` and
//! closes. The first byte, a TLS handshake, the first byte inside it and
//! an HTTP request's head share one join timeout, counted from accept.
//!
//! It also holds how a connection being closed is let go, whatever its
//! transport: what the client still sends is read and dropped (at most
//! 64 KiB within 0.5 s, [`drain`]) so that the close does not become a
//! reset that loses the last answer; a connection refused at accept is
//! answered and drained so (`say_and_close`); and refusals are logged at
//! most once a second, the ones left out counted.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use chatproto::{ErrorCode, ServerFrame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info};

use crate::hub::ToHub;
use crate::limits::Admission;
use crate::metrics::Transport;
use crate::peer::Peer;
use crate::web::ConnInfo;
use crate::Settings;

/// Unencrypted connections refused under `--tls-only`, logged at most
/// once a second (anyone can make them).
static PLAIN_REFUSALS: std::sync::Mutex<crate::refuse::RefusalLog> =
    std::sync::Mutex::new(crate::refuse::RefusalLog::new());

/// TLS clients of a server without a certificate, logged at most once a
/// second (anyone can send a ClientHello).
static NO_CERT_REFUSALS: std::sync::Mutex<crate::refuse::RefusalLog> =
    std::sync::Mutex::new(crate::refuse::RefusalLog::new());

/// Log an unencrypted connection refused under `--tls-only` (`what` it
/// spoke: chatproto or HTTP), at most once a second.
pub fn log_plain_refused(addr: SocketAddr, what: &str) {
    log_refused(
        &PLAIN_REFUSALS,
        addr,
        Some(what),
        "refusing an unencrypted connection: this server takes TLS only (--tls-only)",
        |n| {
            info!(
                more_since_last_line = n,
                "refused more unencrypted connections (--tls-only)"
            )
        },
    );
}

/// Log a TLS client refused for want of a certificate, at most once a
/// second.
fn log_no_certificate(addr: SocketAddr) {
    log_refused(
        &NO_CERT_REFUSALS,
        addr,
        None,
        "a TLS client, but this server has no certificate (--tls-cert); closing",
        |n| {
            info!(
                more_since_last_line = n,
                "refused more TLS clients (no --tls-cert)"
            )
        },
    );
}

/// Log a refusal anyone can cause, counted in `log`: `said` at most once
/// a second (with how many it left out since the line before), each
/// other one at debug; `say_left_out` says the count of a burst that
/// ended unsaid.
fn log_refused(
    log: &'static std::sync::Mutex<crate::refuse::RefusalLog>,
    addr: SocketAddr,
    speaks: Option<&str>,
    said: &str,
    say_left_out: fn(u64),
) {
    match crate::refuse::refused_shared(log, say_left_out) {
        Some(n) => info!(
            %addr,
            speaks,
            more_since_last_line = (n > 0).then_some(n),
            "{said}"
        ),
        _ => debug!(%addr, speaks, "{said}"),
    }
}

/// What a plain chatproto client of a `--tls-only` server is told.
const TLS_ONLY: &str =
    "this server takes TLS only: connect again with TLS (chatclient --tls, or tls://HOST:PORT)";

/// What a TLS client of a server without a certificate is told, instead
/// of a reset: a TLS alert record (plaintext, as before any handshake),
/// fatal `handshake_failure`. A connection refused at accept gets it too.
pub const NO_TLS_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];

/// How long a connection refused with an answer has, all told, to take
/// the answer and close.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// The most bytes read (and dropped) from a connection the server closes
/// while it takes the last answer: one refused with an answer here, one
/// closed after its last frame in `conn` (without a cap, a client kicked
/// that keeps sending is read at loopback speed for the whole linger:
/// half a CPU-second a kick).
pub const DRAIN_BYTES: usize = 64 << 10;

/// After the last frame of a connection the server closes is written (and
/// its sending side shut), how long to read and discard what the client
/// still sends (at most [`DRAIN_BYTES`]), so closing does not reset the
/// connection before the client has read that frame: a socket closed with
/// unread bytes is reset, and a reset throws away what the client has not
/// read yet.
pub const LINGER: Duration = Duration::from_millis(500);

/// Read and discard what `rd` still gives, at most [`DRAIN_BYTES`] within
/// [`LINGER`], until its end or an error: a TLS or WebSocket connection
/// whose last frames are written and whose sending side is shut, as a
/// TCP connection's are in `conn`. (Inside TLS the bytes counted are the
/// decrypted ones.)
pub async fn drain<R: AsyncRead + Unpin>(rd: &mut R) {
    drain_until(rd, Instant::now() + LINGER).await;
}

/// Read and discard what `rd` still gives, at most [`DRAIN_BYTES`], until
/// its end, an error or `end`.
async fn drain_until<R: AsyncRead + Unpin>(rd: &mut R, end: Instant) {
    // On the heap: a buffer in the future itself would make every
    // connection's task that much bigger.
    let mut sink = vec![0u8; 4096];
    let mut left = DRAIN_BYTES;
    while left > 0 {
        match timeout_at(end, rd.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => return,
        }
    }
}

/// Write `answer` to a connection that is refused, say we are done, and
/// read what the client still sends until it closes, all within
/// [`REFUSAL_LINGER`] and [`DRAIN_BYTES`]: closing a socket with
/// unread bytes resets it, and a reset may discard the answer before the
/// client reads it.
pub async fn say_and_close<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, answer: &[u8]) {
    let end = Instant::now() + REFUSAL_LINGER;
    let said = timeout_at(end, async {
        stream.write_all(answer).await?;
        stream.shutdown().await
    })
    .await;
    if matches!(said, Ok(Ok(()))) {
        drain_until(&mut stream, end).await;
    }
}

/// Tell a connection that sent nothing by its deadline that it did not
/// join in time, as the hub tells one that did not join, and close it.
async fn timed_out<S: AsyncRead + AsyncWrite + Unpin>(stream: S, cfg: &Settings, addr: SocketAddr) {
    // Never handed to the hub, so said here: in the log and the count of
    // disconnects by reason, as a client that did not join is.
    info!(%addr, code = "timeout", "closing connection: it sent nothing");
    cfg.metrics.closed_for(ErrorCode::Timeout);
    let frame = ServerFrame::error(ErrorCode::Timeout, "you did not join in time");
    if let Ok(bytes) = chatproto::encode(&frame, cfg.max_frame_bytes) {
        say_and_close(stream, &bytes).await;
    }
}

/// What every connection needs, whichever way it came in.
pub struct Edge {
    /// The hub's inbox.
    pub to_hub: mpsc::Sender<ToHub>,
    /// The server's settings.
    pub settings: Arc<Settings>,
    /// TLS, when a certificate was given.
    pub tls: Option<TlsAcceptor>,
    /// True once the server is stopping: an HTTP connection waiting for
    /// its next request is closed then, not waited for.
    pub stop: tokio::sync::watch::Receiver<bool>,
}

/// What a first byte says a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Speaks {
    Chatproto,
    Http,
    Tls,
    Nothing,
}

fn speaks(first: u8) -> Speaks {
    match first {
        0x16 => Speaks::Tls,
        b'A'..=b'Z' => Speaks::Http,
        _ => Speaks::Chatproto,
    }
}

/// Serve one accepted connection, whatever it speaks.
pub async fn serve(
    stream: TcpStream,
    addr: SocketAddr,
    edge: Arc<Edge>,
    admission: Admission,
    done: mpsc::Sender<()>,
) {
    let cfg = &edge.settings;
    let wait = Duration::from_millis(cfg.join_timeout_ms);
    // One deadline from accept for every phase before the hub's: the
    // first byte, the TLS handshake, the first byte inside it, and an
    // HTTP request's head. Each used to get a whole join timeout.
    let deadline = Instant::now() + wait;
    let mut first = [0u8; 1];
    let said = match timeout_at(deadline, stream.peek(&mut first)).await {
        Ok(Ok(1)) => speaks(first[0]),
        Ok(_) => Speaks::Nothing,
        // Silent: answered as a chatproto client that did not join is.
        Err(_) => return timed_out(stream, cfg, addr).await,
    };
    let plain_ok = !(cfg.tls_only && edge.tls.is_some());
    match said {
        Speaks::Chatproto if plain_ok => {
            let (read, write) = stream.into_split();
            let peer = Peer::new(write, cfg.queue, Arc::clone(&cfg.budget));
            let peer = Arc::new(peer.with_reads(cfg.read_allowance()));
            cfg.metrics.opened(Transport::Tcp);
            let to_hub = edge.to_hub.clone();
            let settings = Arc::clone(cfg);
            crate::conn::serve(peer, read, addr, to_hub, settings, admission, done).await;
            edge.settings.metrics.closed(Transport::Tcp);
        }
        // Under --tls-only: told so in its own protocol, as HTTP is below.
        Speaks::Chatproto => {
            log_plain_refused(addr, "chatproto");
            cfg.metrics.closed_for(ErrorCode::BadFrame);
            let frame = ServerFrame::error(ErrorCode::BadFrame, TLS_ONLY);
            if let Ok(bytes) = chatproto::encode(&frame, cfg.max_frame_bytes) {
                say_and_close(stream, &bytes).await;
            }
        }
        // Under --tls-only too: the page answers 400, saying to use https.
        Speaks::Http => {
            let info = ConnInfo {
                addr,
                tls: false,
                deadline,
            };
            crate::web::serve(stream, info, Arc::clone(&edge), admission, done).await;
        }
        Speaks::Tls => {
            let Some(acceptor) = edge.tls.clone() else {
                log_no_certificate(addr);
                say_and_close(stream, &NO_TLS_ALERT).await;
                return;
            };
            let tls = match timeout_at(deadline, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    cfg.metrics.tls_failed();
                    return debug!(%addr, error = %e, "TLS handshake failed");
                }
                Err(_) => {
                    cfg.metrics.tls_failed();
                    return debug!(%addr, "TLS handshake timed out");
                }
            };
            let mut inner = Rewind::new(tls);
            let said = match timeout_at(deadline, inner.fill()).await {
                Ok(Ok(Some(b))) => speaks(b),
                Ok(_) => Speaks::Nothing,
                // Silent inside TLS: the same answer, inside TLS.
                Err(_) => return timed_out(inner, cfg, addr).await,
            };
            match said {
                // Inside TLS, 0x16 is no ClientHello but a length header
                // over every limit, which the chatproto path refuses.
                Speaks::Chatproto | Speaks::Tls => {
                    crate::tlsconn::serve(inner, addr, Arc::clone(&edge), admission, done).await;
                }
                Speaks::Http => {
                    let info = ConnInfo {
                        addr,
                        tls: true,
                        deadline,
                    };
                    crate::web::serve(inner, info, Arc::clone(&edge), admission, done).await;
                }
                Speaks::Nothing => debug!(%addr, "TLS closed before its first byte"),
            }
        }
        Speaks::Nothing => debug!(%addr, "closed before its first byte"),
    }
}

/// A stream whose first byte was read to see what it speaks, and is given
/// back first.
pub struct Rewind<S> {
    first: Option<u8>,
    inner: S,
}

impl<S: AsyncRead + Unpin> Rewind<S> {
    fn new(inner: S) -> Self {
        Rewind { first: None, inner }
    }

    /// Read the first byte (kept to be read again); `None` at EOF.
    async fn fill(&mut self) -> io::Result<Option<u8>> {
        let mut b = [0u8; 1];
        match self.inner.read(&mut b).await? {
            0 => Ok(None),
            _ => {
                self.first = Some(b[0]);
                Ok(Some(b[0]))
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(b) = self.first {
            if buf.remaining() > 0 {
                buf.put_slice(&[b]);
                self.first = None;
                return Poll::Ready(Ok(()));
            }
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_byte_tells_the_ways_apart() {
        // A chatproto frame's length header starts with 0 (frames < 16 MiB).
        assert_eq!(speaks(0x00), Speaks::Chatproto);
        assert_eq!(speaks(b'G'), Speaks::Http);
        assert_eq!(speaks(0x16), Speaks::Tls);
        // A header over every limit: the chatproto path refuses it clearly.
        for b in [0x01, 0x15, b'g', b'{', 0xff] {
            assert_eq!(speaks(b), Speaks::Chatproto, "{b:#x}");
        }
    }
}
