//! What every connection does with what it reads, whatever the transport:
//! register with the hub, and hand it inputs one rate-limit token each,
//! closing a client held back too long.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use chatproto::{encode, ClientFrame, ClientId, Decoded, FrameDecoder, Kick};
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::hub::ToHub;
use crate::peer::{Peer, MAX_READS_WAITING};
use crate::ratelimit::TokenBucket;
use crate::Settings;

/// Why a connection stops feeding the hub.
#[derive(Debug)]
pub enum Halt {
    /// The client is closed with this (its queue is replaced by the error).
    Kick(Kick),
    /// The hub is gone: the server is stopping.
    HubGone,
}

/// Register `peer` with the hub; its handle, or `None` if the hub is gone.
pub async fn connect(to_hub: &mpsc::Sender<ToHub>, peer: &Arc<Peer>) -> Option<ClientId> {
    let (reply, id) = oneshot::channel();
    let connect = ToHub::Connect {
        peer: Arc::clone(peer),
        reply,
    };
    to_hub.send(connect).await.ok()?;
    id.await.ok()
}

/// The connection's reading is over: tell the hub it is `Gone`, so its
/// session leaves its rooms. A client that `ended` its stream cleanly
/// (its side closed, a WebSocket close) first gets the answers to what it
/// sent: the hub is told `End` and answers it (a `welcome`, a `pong`, an
/// echo may wait for the store, or a cluster's log), then closes the
/// peer; that is waited for, at most `within` (`--close-flush-ms`). The
/// caller then writes out what is queued.
pub async fn leave(
    to_hub: &mpsc::Sender<ToHub>,
    peer: &Peer,
    id: ClientId,
    ended: bool,
    within: Duration,
) {
    if ended && to_hub.send(ToHub::End(id)).await.is_ok() {
        let deadline = Instant::now() + within;
        while !peer.is_closing() {
            let woken = tokio::time::timeout_at(deadline, peer.wake.notified()).await;
            if woken.is_err() {
                break;
            }
        }
    }
    let _ = to_hub.send(ToHub::Gone(id)).await;
}

/// Replace what is queued for `peer` by the error of `why` and close it.
pub fn kick(peer: &Peer, why: &Kick, cfg: &Settings) {
    cfg.metrics.closed_for(why.code());
    match encode(&why.frame(), cfg.max_frame_bytes) {
        Ok(bytes) => peer.kick(bytes, why.code()),
        Err(_) => peer.close(),
    }
}

/// How long a frame that may read waits, at most, for the client's
/// earlier reads before it is looked at again; an answered read wakes the
/// connection sooner ([`Peer::release`]).
const READS_RECHECK: Duration = Duration::from_secs(1);

/// Inputs on their way to the hub, through the rate limit.
pub struct Feeder<'a> {
    to_hub: &'a mpsc::Sender<ToHub>,
    cfg: &'a Settings,
    peer: &'a Peer,
    bucket: TokenBucket,
    /// An input waiting for a token, with its payload's length in bytes
    /// (no input: a WebSocket control frame, which is charged the same).
    held: Option<(Option<ToHub>, usize)>,
    /// The held input was refused a token at least once.
    waited: bool,
    /// Since when the rate limit (or the read allowance's debt) has held
    /// this client back without a break: until an input passes without
    /// waiting, or everything it sent has passed
    /// ([`caught_up`](Feeder::caught_up)).
    throttled_since: Option<Instant>,
    /// How many frames that ask to read have passed: those the hub has
    /// not answered yet ([`Peer::read_answered`]) are reserved for.
    reads_passed: u64,
}

impl<'a> Feeder<'a> {
    /// A feeder with a full bucket.
    pub fn new(to_hub: &'a mpsc::Sender<ToHub>, cfg: &'a Settings, peer: &'a Peer) -> Self {
        Feeder {
            to_hub,
            cfg,
            peer,
            bucket: TokenBucket::new(cfg.rate, cfg.burst, std::time::Instant::now())
                .with_bytes(cfg.rate_bytes, cfg.burst_bytes),
            held: None,
            waited: false,
            throttled_since: None,
            reads_passed: 0,
        }
    }

    /// Whether an input waits for a token.
    pub fn is_holding(&self) -> bool {
        self.held.is_some()
    }

    /// Take `input`, read from a payload of `bytes` bytes, to pass on
    /// next. A `rooms` request is charged the byte allowance for the
    /// largest frame, as its answer may be (PROTOCOL.md §7): a few bytes
    /// that make the core look at every room, and answer with up to a
    /// frame, are not left to the frame rate alone (50 a second from
    /// each of 64 connections of one address held the core for seconds).
    pub fn hold(&mut self, input: ToHub, bytes: usize) {
        let bytes = match input {
            ToHub::Frame(_, ClientFrame::Rooms) => bytes.max(self.cfg.max_frame_bytes),
            _ => bytes,
        };
        self.held = Some((Some(input), bytes));
    }

    /// Charge a WebSocket ping or pong of `bytes` bytes as a frame: the
    /// WebSocket answers a ping itself, and it passes nothing to the hub,
    /// but unlimited they kept a core busy answering them (16 connections
    /// slowed every other client tenfold). Read on only once it passed.
    pub fn hold_control(&mut self, bytes: usize) {
        self.held = Some((None, bytes));
    }

    /// Pass the held input on if a token is free. `Ok(None)`: passed (or
    /// nothing held); `Ok(Some(t))`: out of tokens, try again at `t`. A
    /// frame that may read history (`history`, `enter`, `join`) also waits
    /// while the client has [`MAX_READS_WAITING`] reads unanswered: until
    /// one is (the peer's `wake`), or `t`. That wait is not throttling.
    ///
    /// A frame that asks to read (`enter`, `join`, `history`, `rooms`)
    /// also waits while the client's read allowance is in debt (what was
    /// sent in answer to its reads before, see [`Peer::charge_read`]),
    /// until time has paid it: that wait is throttling, as one for tokens
    /// is. Other frames (`msg`, `part`, `ping`) never wait for it.
    pub async fn pass(&mut self) -> Result<Option<Instant>, Halt> {
        let Some((held, bytes)) = &self.held else {
            return Ok(None);
        };
        let now = Instant::now();
        if held.as_ref().is_some_and(may_read) && self.peer.reads_waiting() >= MAX_READS_WAITING {
            return Ok(Some(now + READS_RECHECK));
        }
        let reads = held.as_ref().is_some_and(asks_to_read);
        let debt = match reads {
            true => self.peer.read_wait(now.into_std(), self.reads_passed),
            false => None,
        };
        let waited = match debt {
            Some(wait) => Err(wait),
            None => self.bucket.take(now.into_std(), *bytes),
        };
        if let Err(wait) = waited {
            self.waited = true;
            let since = *self.throttled_since.get_or_insert(now);
            if now.duration_since(since) >= Duration::from_millis(self.cfg.rate_limit_grace_ms) {
                return Err(Halt::Kick(Kick::RateLimited));
            }
            return Ok(Some(now + wait));
        }
        let (input, _) = self.held.take().expect("held above");
        if reads {
            self.reads_passed += 1;
        }
        // A client is no longer throttled once an input of its passes
        // without waiting.
        if !std::mem::take(&mut self.waited) {
            self.throttled_since = None;
        }
        let Some(input) = input else {
            return Ok(None);
        };
        // Without a future when there is room (the usual case); the queue
        // is fair either way, as no permit is free while another sender
        // waits for one. A frame still counts against the task's budget of
        // tokio, as `send().await` did, so that a client with a long
        // backlog yields to the others (and to the hub) now and then.
        match self.to_hub.try_send(input) {
            Ok(()) => tokio::task::consume_budget().await,
            Err(mpsc::error::TrySendError::Full(input)) => {
                self.to_hub.send(input).await.map_err(|_| Halt::HubGone)?;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(Halt::HubGone),
        }
        Ok(None)
    }

    /// Whether the rate limit has held this client back since its last
    /// break: a stream transport then looks at its socket once more
    /// before it calls the client [`caught_up`](Feeder::caught_up).
    pub fn is_throttled(&self) -> bool {
        self.throttled_since.is_some()
    }

    /// Everything the client sent has passed (a stream transport's
    /// buffer holds no byte of a frame, and one more read found nothing
    /// waiting): it is not throttled, however long its frames waited, so
    /// a client that sends one and waits for its echo is slowed, never
    /// closed. A flood, whatever the size of its frames, has more waiting
    /// (part of its next frame read, or in the socket), so its grace runs
    /// on.
    pub fn caught_up(&mut self) {
        self.throttled_since = None;
    }
}

/// One more read of a stream transport into `buf` (room for `chunk` more
/// bytes made first if little is left), without waiting: `None` if
/// nothing is there now (or tokio's budget for this turn is spent: the
/// client then counts as caught up this once, as it did before this
/// look); `Some(Ok(0))` at its end.
pub fn read_now<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    chunk: usize,
) -> Option<std::io::Result<usize>> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(chunk);
    }
    rd.read_buf(buf).now_or_never()
}

/// The next frame in a stream transport's `buf`, with its payload's
/// length: what the byte allowance counts.
pub fn next_frame(decoder: &mut FrameDecoder, buf: &mut BytesMut) -> (Decoded<ClientFrame>, usize) {
    let mut len = 0;
    let decoded = decoder.decode_with(buf, |payload| {
        len = payload.len();
        ClientFrame::from_payload(payload)
    });
    (decoded, len)
}

/// Whether `input` is a frame that asks to read (see [`reads`]).
fn asks_to_read(input: &ToHub) -> bool {
    matches!(input, ToHub::Frame(_, frame) | ToHub::LastFrame(_, frame) if reads(frame))
}

/// Whether `frame`, a connection's first, is a join that resumes a
/// session: the transport then looks, without waiting, whether the
/// client's stream has already ended after it, and if so hands it on as
/// [`ToHub::LastFrame`], which takes no open connection over. That is a
/// reconnect attempt that gave up waiting for its `welcome` and closed
/// while the server was stalled (stopped, a paused VM): its connection,
/// join and end waited in the accept backlog, and may be read after the
/// client's newer connection resumed the session.
pub fn resumes(frame: &ClientFrame) -> bool {
    matches!(
        frame,
        ClientFrame::Join {
            resume: Some(_),
            ..
        }
    )
}

/// Whether `frame` asks to read: the server answers it with what the
/// read allowance is charged (a replay, a page, a member list, the room
/// list). The hub reports each answered ([`Peer::read_answered`]).
pub fn reads(frame: &ClientFrame) -> bool {
    matches!(
        frame,
        ClientFrame::History { .. }
            | ClientFrame::Enter { .. }
            | ClientFrame::Join { .. }
            | ClientFrame::Rooms
    )
}

/// Whether `input` may make the hub read history for the client.
fn may_read(input: &ToHub) -> bool {
    matches!(
        input,
        ToHub::Frame(
            _,
            ClientFrame::History { .. } | ClientFrame::Enter { .. } | ClientFrame::Join { .. }
        ) | ToHub::LastFrame(_, ClientFrame::Join { .. })
    )
}
