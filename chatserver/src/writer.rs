//! Writer tasks for peers the hub cannot write itself (TLS, WebSocket):
//! each takes whole frames from its peer's bounded queue and writes them
//! through its transport, a batch at a time.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::hub::ToHub;
use crate::peer::Peer;

/// Frames taken from the queue per batch.
const BATCH: usize = 64;

/// How often a connection that is writing a backlog tells the hub so.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Where a writer task writes.
pub trait Transport {
    /// Write one batch of encoded frames (each with its 4-byte length).
    async fn write(&mut self, frames: &[Bytes]) -> std::io::Result<()>;
    /// The peer is closing and everything is written: say goodbye.
    async fn finish(&mut self);
}

/// Write `peer`'s queue through `out` until the peer closes or the
/// transport fails; tells the hub the client is reading while it writes.
pub async fn run(
    peer: &Peer,
    mut out: impl Transport,
    to_hub: &mpsc::Sender<ToHub>,
    id: chatproto::ClientId,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut told: Option<Instant> = None;
    loop {
        batch.clear();
        if !peer.take(BATCH, &mut batch) {
            out.finish().await;
            return;
        }
        if batch.is_empty() {
            peer.writable.notified().await;
            continue;
        }
        if out.write(&batch).await.is_err() {
            peer.set_dead();
            return;
        }
        let now = Instant::now();
        if batch.len() == BATCH && told.is_none_or(|t| now.duration_since(t) >= PROGRESS_EVERY) {
            // A backlog is being read: the client is alive.
            told = Some(now);
            let _ = to_hub.try_send(ToHub::Progress(id));
        }
    }
}

/// A byte stream (TLS): frames as they are, length and all, a batch
/// gathered into one buffer so that TLS seals a few large records instead
/// of one per frame.
pub struct Stream<W> {
    out: W,
    gather: Vec<u8>,
}

impl<W> Stream<W> {
    /// Write through `out`.
    pub fn new(out: W) -> Self {
        Stream {
            out,
            gather: Vec::new(),
        }
    }
}

impl<W: AsyncWrite + Unpin> Transport for Stream<W> {
    async fn write(&mut self, frames: &[Bytes]) -> std::io::Result<()> {
        self.gather.clear();
        for f in frames {
            self.gather.extend_from_slice(f);
        }
        self.out.write_all(&self.gather).await?;
        // A burst's buffer is not kept for an idle connection.
        if self.gather.capacity() > 256 << 10 {
            self.gather = Vec::new();
        }
        self.out.flush().await
    }

    async fn finish(&mut self) {
        let _ = self.out.shutdown().await;
    }
}

/// A WebSocket: each frame's JSON as one text message (the length prefix
/// is the TCP framing; the WebSocket frames messages itself).
pub struct Ws(pub SplitSink<WebSocket, Message>);

impl Transport for Ws {
    async fn write(&mut self, frames: &[Bytes]) -> std::io::Result<()> {
        for f in frames {
            // The core's frames are JSON, so UTF-8; a slice shares the bytes.
            let text = Utf8Bytes::try_from(f.slice(4.min(f.len())..))
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            self.0
                .feed(Message::Text(text))
                .await
                .map_err(std::io::Error::other)?;
        }
        self.0.flush().await.map_err(std::io::Error::other)
    }

    async fn finish(&mut self) {
        let bye = CloseFrame {
            code: 1000,
            reason: Utf8Bytes::from_static(""),
        };
        let _ = self.0.send(Message::Close(Some(bye))).await;
        let _ = self.0.close().await;
    }
}
