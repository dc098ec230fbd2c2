//! One task per connection: read and decode frames, apply the rate limit,
//! hand frames to the hub, finish writes the hub could not, and close cleanly.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use chatproto::{Decoded, FrameDecoder, Kick};
use futures_util::FutureExt;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Instant};
use tracing::{debug, info};

use crate::edge::{DRAIN_BYTES, LINGER};
use crate::feed::{self, Feeder, Halt};
use crate::hub::ToHub;
use crate::limits::Admission;
use crate::peer::Peer;
use crate::Settings;

/// Bytes asked of the socket per read; the buffer exists only while data waits.
const READ_CHUNK: usize = 8 * 1024;

/// How often a connection that is draining a backlog tells the hub so.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Why the read loop stopped.
#[derive(Debug)]
enum Stop {
    Eof,
    Failed(io::Error),
    Closing,
    HubGone,
}

impl Stop {
    /// Why, in the log's words.
    fn said(&self) -> &'static str {
        match self {
            Stop::Eof => "the client closed it",
            Stop::Failed(_) => "it failed",
            Stop::Closing => "the server closed it",
            Stop::HubGone => "the server is stopping",
        }
    }
}

/// Serve one accepted connection until it ends. `_admission` and `_done`
/// are held until then: the connection's place under the caps, and the
/// token the shutdown waits for.
pub async fn serve(
    peer: Arc<Peer>,
    read: OwnedReadHalf,
    addr: SocketAddr,
    to_hub: mpsc::Sender<ToHub>,
    cfg: Arc<Settings>,
    _admission: Admission,
    _done: mpsc::Sender<()>,
) {
    let Some(id) = feed::connect(&to_hub, &peer).await else {
        return;
    };
    info!(client = %id, %addr, "connected");
    let mut reader = Reader {
        peer: &peer,
        read,
        to_hub: &to_hub,
        cfg: &cfg,
        id,
        decoder: FrameDecoder::new(cfg.max_frame_bytes),
        buf: BytesMut::new(),
        feeder: Feeder::new(&to_hub, &cfg, &peer),
        progress_told: None,
        first: true,
        ended_with: false,
    };
    let stop = reader.run().await;
    match &stop {
        Stop::Failed(e) => debug!(client = %id, %addr, error = %e, "connection failed"),
        other => debug!(client = %id, %addr, why = other.said(), "connection ending"),
    }
    // A client that said its last gets the answers to what it sent first.
    // Then leave its rooms, so everyone sees the offline presence now, and
    // finish writing what was queued before the leave.
    let within = Duration::from_millis(cfg.close_flush_ms);
    feed::leave(&to_hub, &peer, id, matches!(stop, Stop::Eof), within).await;
    if !matches!(stop, Stop::Failed(_)) {
        finish(&peer, &cfg).await;
    }
}

struct Reader<'a> {
    peer: &'a Peer,
    /// The socket's read half (the peer holds the write half).
    read: OwnedReadHalf,
    to_hub: &'a mpsc::Sender<ToHub>,
    cfg: &'a Settings,
    id: chatproto::ClientId,
    decoder: FrameDecoder,
    buf: BytesMut,
    feeder: Feeder<'a>,
    /// When the hub was last told the client is reading its backlog.
    progress_told: Option<Instant>,
    /// No frame has been read yet (see [`Reader::input_of`]).
    first: bool,
    /// The end of the stream was read with the first frame, handed on as
    /// [`ToHub::LastFrame`]: the reading stops once it has passed.
    ended_with: bool,
}

impl Reader<'_> {
    async fn run(&mut self) -> Stop {
        let mut resume_at: Option<Instant> = None;
        loop {
            if self.peer.is_dead() {
                return Stop::Failed(io::ErrorKind::BrokenPipe.into());
            }
            if self.peer.is_closing() {
                return Stop::Closing;
            }
            let blocked = self.peer.is_blocked();
            tokio::select! {
                ready = self.peer.socket().readable(), if resume_at.is_none() => {
                    if let Err(e) = ready {
                        return Stop::Failed(e);
                    }
                    if self.buf.capacity() - self.buf.len() < 1024 {
                        self.buf.reserve(READ_CHUNK);
                    }
                    // One read, never waiting: tokio's own read path, which
                    // also forgets the readiness after a short read (the
                    // socket was emptied), so the next turn does not make a
                    // system call only to hear WouldBlock.
                    match self.read.read_buf(&mut self.buf).now_or_never() {
                        Some(Ok(0)) => return Stop::Eof,
                        Some(Ok(_)) => {}
                        None => {
                            // Readiness was stale (nothing arrived), or
                            // tokio's budget for this turn is spent (then
                            // select! yields and the data is read next
                            // time). Do not keep the buffer meanwhile.
                            self.release_idle_buffer();
                            continue;
                        }
                        Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Some(Err(e)) => return Stop::Failed(e),
                    }
                    match self.process().await {
                        Ok(wait) => resume_at = wait,
                        Err(stop) => return stop,
                    }
                }
                _ = sleep_until(resume_at.unwrap_or_else(Instant::now)), if resume_at.is_some() => {
                    match self.process().await {
                        Ok(wait) => resume_at = wait,
                        Err(stop) => return stop,
                    }
                }
                ready = self.peer.socket().writable(), if blocked => {
                    if let Err(e) = ready {
                        return Stop::Failed(e);
                    }
                    if let Err(e) = self.peer.flush(false) {
                        return Stop::Failed(e);
                    }
                    // Reading what was queued for it proves the client
                    // alive, however late its pong (it waits behind the
                    // backlog). Told at most once a second.
                    let now = Instant::now();
                    if self.progress_told.is_none_or(|t| now.duration_since(t) >= PROGRESS_EVERY) {
                        self.progress_told = Some(now);
                        let _ = self.to_hub.try_send(ToHub::Progress(self.id));
                    }
                }
                _ = self.peer.wake.notified() => {
                    // A read answered: a frame that waited for it (see
                    // `Feeder::pass`) goes on now.
                    if resume_at.is_some() && !self.peer.is_closing() {
                        match self.process().await {
                            Ok(wait) => resume_at = wait,
                            Err(stop) => return stop,
                        }
                    }
                }
            }
        }
    }

    /// Hand every whole frame in the buffer to the hub, one rate-limit token
    /// each. `Ok(Some(t))`: out of tokens, stop reading until `t`.
    async fn process(&mut self) -> Result<Option<Instant>, Stop> {
        loop {
            if !self.feeder.is_holding() {
                let (decoded, len) = feed::next_frame(&mut self.decoder, &mut self.buf);
                match decoded {
                    Decoded::Incomplete => {
                        // Throttled, the client is caught up (see
                        // `Feeder::caught_up`) only when nothing of it
                        // waits: no part of a frame in the buffer, and
                        // nothing in the socket.
                        if self.feeder.is_throttled() && !self.decoder.is_mid_frame(&self.buf) {
                            if self.read_more_now()? {
                                continue;
                            }
                            self.feeder.caught_up();
                        }
                        break;
                    }
                    Decoded::Frame(frame) => {
                        let input = self.input_of(frame)?;
                        self.feeder.hold(input, len);
                    }
                    Decoded::Invalid(e) => self.feeder.hold(ToHub::BadFrame(self.id, e), len),
                    Decoded::Broken(e) => {
                        info!(client = %self.id, error = %e, "framing error; closing");
                        feed::kick(self.peer, &Kick::Framing(e), self.cfg);
                        return Err(Stop::Closing);
                    }
                }
            }
            match self.feeder.pass().await {
                Ok(None) if self.ended_with => return Err(Stop::Eof),
                Ok(None) => {}
                Ok(Some(at)) => return Ok(Some(at)),
                Err(Halt::Kick(why)) => {
                    info!(client = %self.id, "rate limit exceeded for too long; closing");
                    feed::kick(self.peer, &why, self.cfg);
                    return Err(Stop::Closing);
                }
                Err(Halt::HubGone) => return Err(Stop::HubGone),
            }
        }
        self.release_idle_buffer();
        Ok(None)
    }

    /// What to hand on for `frame`: [`ToHub::Frame`], or for a first
    /// frame that resumes a session ([`feed::resumes`]) with nothing after
    /// it in the buffer and the end of the stream already in the socket,
    /// [`ToHub::LastFrame`]. Only the first frame is looked at.
    fn input_of(&mut self, frame: chatproto::ClientFrame) -> Result<ToHub, Stop> {
        if !std::mem::take(&mut self.first) || !feed::resumes(&frame) || !self.buf.is_empty() {
            return Ok(ToHub::Frame(self.id, frame));
        }
        match self.read_more_now() {
            Err(Stop::Eof) => {
                self.ended_with = true;
                Ok(ToHub::LastFrame(self.id, frame))
            }
            Err(stop) => Err(stop),
            Ok(_) => Ok(ToHub::Frame(self.id, frame)),
        }
    }

    /// Read once more if the socket has something now, without waiting:
    /// whether it had.
    fn read_more_now(&mut self) -> Result<bool, Stop> {
        match feed::read_now(&mut self.read, &mut self.buf, READ_CHUNK) {
            Some(Ok(0)) => Err(Stop::Eof),
            Some(Ok(_)) => Ok(true),
            None => Ok(false),
            Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
            Some(Err(e)) => Err(Stop::Failed(e)),
        }
    }

    /// Idle connections hold no read buffer: drop it between frames (also
    /// one whose `capacity()` is 0: a frame that took all of a large buffer
    /// leaves it looking empty while it still holds the allocation).
    fn release_idle_buffer(&mut self) {
        if !self.decoder.is_mid_frame(&self.buf) {
            self.buf = BytesMut::new();
        }
    }
}

/// Write what is still queued (bounded by the close-flush time), send FIN,
/// then read and discard briefly ([`LINGER`], [`DRAIN_BYTES`]) so the
/// client can read our last frames: a client that keeps sending is closed
/// once that much is read, not read at loopback speed for the whole linger.
async fn finish(peer: &Peer, cfg: &Settings) {
    let deadline = Instant::now() + Duration::from_millis(cfg.close_flush_ms);
    while peer.has_queued() {
        match timeout_at(deadline, peer.socket().writable()).await {
            Some(Ok(())) => {
                if peer.flush(false).is_err() {
                    return;
                }
            }
            _ => return,
        }
    }
    let _ = socket2::SockRef::from(peer.socket()).shutdown(std::net::Shutdown::Write);
    let linger_end = Instant::now() + LINGER;
    // On the heap: an array here would sit in every connection's future.
    let mut scratch = vec![0u8; 4096];
    let mut left = DRAIN_BYTES;
    while left > 0 {
        match timeout_at(linger_end, peer.socket().readable()).await {
            Some(Ok(())) => match peer.socket().try_read(&mut scratch) {
                Ok(0) => return,
                Ok(n) => left = left.saturating_sub(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            },
            _ => return,
        }
    }
}

async fn timeout_at<F: std::future::Future>(deadline: Instant, f: F) -> Option<F::Output> {
    timeout(deadline.saturating_duration_since(Instant::now()), f)
        .await
        .ok()
}
