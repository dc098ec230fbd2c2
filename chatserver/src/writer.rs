//! Writer tasks for peers the hub cannot write itself (TLS, WebSocket):
//! each takes entries (each one or more whole frames, length and all)
//! from its peer's bounded queue and writes them through its transport, a
//! batch at a time.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use chatproto::ErrorCode;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::hub::ToHub;
use crate::peer::Peer;

pub use tungstenite::protocol::frame::coding::CloseCode;

/// Entries taken from the queue per batch.
const BATCH: usize = 64;

/// Bytes taken from the queue per batch (and one entry more at most): what
/// a writer holds beyond the queue's limit while a batch is written, and
/// what says a backlog is being written, like a full batch.
const BATCH_BYTES: usize = 64 << 10;

/// The most of a batch's gather buffer kept for the next batch: an idle
/// connection holds at most this much (a typical batch of small frames
/// fits; a burst's bigger buffer is freed once written).
const GATHER_KEEP: usize = 4 << 10;

/// The most unwritten WebSocket pongs held for a client (a pong is at
/// most 127 bytes). Past it the older ones are dropped and the latest is
/// kept: RFC 6455 lets a server answer only the latest ping, so a burst of
/// pings neither grows the buffer nor closes the connection.
pub const MAX_PENDING_PONGS_BYTES: usize = 4 << 10;

/// How often a connection that is writing a backlog tells the hub so.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Where a writer task writes.
pub trait Transport {
    /// Write one batch of entries, each one or more encoded frames (each
    /// frame with its 4-byte length).
    async fn write(&mut self, frames: &[Bytes]) -> std::io::Result<()>;
    /// The peer is closing and everything is written: say goodbye (`why`:
    /// the error code it was kicked with, if it was).
    async fn finish(&mut self, why: Option<ErrorCode>);
    /// Whether the transport has bytes of its own to write (a WebSocket's
    /// pongs) even with no frame queued.
    fn pending(&self) -> bool {
        false
    }
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
        if !peer.take(BATCH, BATCH_BYTES, &mut batch) {
            out.finish(peer.closed_for()).await;
            return;
        }
        if batch.is_empty() && !out.pending() {
            peer.writable.notified().await;
            continue;
        }
        let bytes: usize = batch.iter().map(Bytes::len).sum();
        // The transport copies the batch into one buffer to write it: that
        // copy counts in the budget too while it is written (a reader that
        // does not read holds it that long).
        let copy = peer.count_copy(bytes);
        if out.write(&batch).await.is_err() {
            peer.set_dead();
            return;
        }
        drop(copy);
        let now = Instant::now();
        // A full batch, or a big one (a TLS entry may be a run of frames).
        let big = batch.len() == BATCH || bytes >= BATCH_BYTES;
        if big && told.is_none_or(|t| now.duration_since(t) >= PROGRESS_EVERY) {
            // A backlog is being read: the client is alive.
            told = Some(now);
            let _ = to_hub.try_send(ToHub::Progress(id));
        }
    }
}

/// Write a batch gathered in `gather` through `out` at once, then give back
/// a buffer a burst made bigger than [`GATHER_KEEP`].
async fn write_gathered<W: AsyncWrite + Unpin>(
    out: &mut W,
    gather: &mut Vec<u8>,
) -> std::io::Result<()> {
    out.write_all(gather).await?;
    if gather.capacity() > GATHER_KEEP {
        *gather = Vec::new();
    }
    out.flush().await
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
        write_gathered(&mut self.out, &mut self.gather).await
    }

    async fn finish(&mut self, _: Option<ErrorCode>) {
        let _ = self.out.shutdown().await;
    }
}

/// A WebSocket, written without a WebSocket library: a server's text
/// message is an unmasked frame, a 2-to-10-byte header and the payload,
/// which is the queued frame without its 4-byte length. Each batch is
/// gathered into one buffer, as for TLS, and written at once.
///
/// The payloads are not checked as UTF-8 here: every queued frame comes
/// from `chatproto::encode`, which is serde_json writing Rust strings.
/// tungstenite still reads the connection (`wsconn`); what it writes (the
/// pongs it answers pings with) comes through [`Control`] and goes out
/// before the next batch, between whole frames.
pub struct Ws<W> {
    out: W,
    control: std::sync::Arc<Control>,
    gather: Vec<u8>,
}

impl<W> Ws<W> {
    /// Write through `out`, with `control`'s bytes between batches.
    pub fn new(out: W, control: std::sync::Arc<Control>) -> Self {
        Ws {
            out,
            control,
            gather: Vec::new(),
        }
    }
}

/// A WebSocket text frame's header for a payload of `len` bytes (RFC 6455
/// 5.2: FIN, opcode 1, no mask, the shortest length encoding).
pub fn put_text_header(out: &mut Vec<u8>, len: usize) {
    out.push(0x81);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// The payloads of the length-prefixed frames in `run`, in order (a
/// truncated last frame, which the hub never queues, gives what is there).
fn payloads(mut run: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let header = run.get(..chatproto::HEADER_LEN)?;
        let len = u32::from_be_bytes(header.try_into().ok()?) as usize;
        let end = (chatproto::HEADER_LEN + len).min(run.len());
        let payload = &run[chatproto::HEADER_LEN..end];
        run = &run[end..];
        Some(payload)
    })
}

/// The WebSocket close status for a connection the server closes with the
/// error `code` (RFC 6455 7.4.1, and IANA's registry for 1013).
pub fn close_code_for(code: ErrorCode) -> CloseCode {
    match code {
        ErrorCode::FrameTooLarge => CloseCode::Size,
        ErrorCode::Unavailable | ErrorCode::ServerFull => CloseCode::Again,
        ErrorCode::ResumedElsewhere => CloseCode::Normal,
        // The client broke a rule: too slow, too fast, too quiet, or a
        // frame the protocol does not allow.
        _ => CloseCode::Policy,
    }
}

/// A close frame with status 1000 (normal closure) and no reason.
const CLOSE_NORMAL: [u8; 4] = [0x88, 0x02, 0x03, 0xE8];

/// The longest reason a close frame carries: a control frame's payload is
/// at most 125 bytes, two of them the status code (RFC 6455 5.5).
const MAX_CLOSE_REASON: usize = 123;

/// A server's close frame (RFC 6455 5.5.1: FIN, opcode 8, no mask) with
/// status `code` and `reason`, cut to [`MAX_CLOSE_REASON`] bytes at a
/// character boundary.
pub fn close_frame(code: CloseCode, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    let mut out = Vec::with_capacity(4 + reason.len());
    out.push(0x88);
    out.push((2 + reason.len()) as u8);
    out.extend_from_slice(&u16::from(code).to_be_bytes());
    out.extend_from_slice(reason);
    out
}

impl<W: AsyncWrite + Unpin> Transport for Ws<W> {
    async fn write(&mut self, frames: &[Bytes]) -> std::io::Result<()> {
        self.gather.clear();
        self.control.take_into(&mut self.gather);
        for entry in frames {
            // An entry may be a run of frames: one message each.
            for payload in payloads(entry) {
                put_text_header(&mut self.gather, payload.len());
                self.gather.extend_from_slice(payload);
            }
        }
        write_gathered(&mut self.out, &mut self.gather).await
    }

    async fn finish(&mut self, why: Option<ErrorCode>) {
        // A close the reading side chose goes first (the first one given
        // is the one sent); else the kick's, if any.
        if let Some(code) = why {
            self.control.close_with(close_code_for(code), code.as_str());
        }
        self.gather.clear();
        self.control.take_into(&mut self.gather);
        self.control.close_into(&mut self.gather);
        let _ = self.out.write_all(&self.gather).await;
        let _ = self.out.shutdown().await;
    }

    fn pending(&self) -> bool {
        self.control.is_pending()
    }
}

/// What the WebSocket library writes by itself (pongs), held for the
/// writer task; at most `limit` bytes ([`MAX_PENDING_PONGS_BYTES`] for a
/// connection), so a client that sends pings and never reads cannot grow
/// it. Each push is whole frames (tungstenite writes its whole buffer at
/// once, and this never writes less), so dropping the held bytes for
/// newer ones drops whole pongs.
///
/// It also holds the close frame the writer ends with, when the reading
/// side has said why the connection closes ([`Control::close_with`]);
/// otherwise the close is 1000, normal.
#[derive(Debug)]
pub struct Control {
    bytes: Mutex<Vec<u8>>,
    limit: usize,
    close: Mutex<Option<Vec<u8>>>,
}

impl Control {
    /// Hold at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Control {
            bytes: Mutex::new(Vec::new()),
            limit,
            close: Mutex::new(None),
        }
    }

    /// End the connection with a close of status `code` and `reason`
    /// (cut to fit a control frame) instead of a normal one. The first
    /// reason given is the one sent.
    pub fn close_with(&self, code: CloseCode, reason: &str) {
        let mut close = self.close.lock().unwrap_or_else(|e| e.into_inner());
        if close.is_none() {
            *close = Some(close_frame(code, reason));
        }
    }

    /// Append the close frame to `out`: the one given by
    /// [`close_with`](Control::close_with), or 1000 without a reason.
    fn close_into(&self, out: &mut Vec<u8>) {
        let close = self.close.lock().unwrap_or_else(|e| e.into_inner());
        out.extend_from_slice(close.as_deref().unwrap_or(&CLOSE_NORMAL));
    }

    /// Hold `more`. Past the limit the bytes held so far (older pongs, not
    /// yet written) give way to `more`; `false` (and nothing changed) only
    /// if `more` alone is over the limit.
    pub fn push(&self, more: &[u8]) -> bool {
        if more.len() > self.limit {
            return false;
        }
        let mut b = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        if b.len() + more.len() > self.limit {
            b.clear();
        }
        b.extend_from_slice(more);
        true
    }

    fn take_into(&self, out: &mut Vec<u8>) {
        let mut b = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        out.extend_from_slice(&b);
        // Nothing kept once written.
        *b = Vec::new();
    }

    fn is_pending(&self) -> bool {
        !self
            .bytes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::protocol::frame::coding::{Data, OpCode};
    use tungstenite::protocol::frame::Frame;

    #[test]
    fn a_run_of_frames_is_cut_back_into_its_payloads() {
        let mut run = bytes::BytesMut::new();
        for text in ["a", "", "long enough to matter"] {
            chatproto::encode_into(&chatproto::ServerFrame::notice(text), &mut run, 65_536)
                .unwrap();
        }
        let got: Vec<String> = payloads(&run)
            .map(|p| String::from_utf8(p.to_vec()).unwrap())
            .collect();
        assert_eq!(
            got,
            [
                r#"{"type":"notice","text":"a"}"#,
                r#"{"type":"notice","text":""}"#,
                r#"{"type":"notice","text":"long enough to matter"}"#,
            ]
        );
        assert_eq!(payloads(&[]).count(), 0);
    }

    #[test]
    fn text_headers_are_the_ones_tungstenite_writes() {
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let payload = vec![b'x'; len];
            let mut ours = Vec::new();
            put_text_header(&mut ours, len);
            ours.extend_from_slice(&payload);
            let mut theirs = Vec::new();
            Frame::message(payload, OpCode::Data(Data::Text), true)
                .format(&mut theirs)
                .expect("format");
            assert_eq!(ours, theirs, "payload of {len} bytes");
        }
        let mut close = Vec::new();
        let code = tungstenite::protocol::frame::coding::CloseCode::Normal;
        Frame::close(Some(tungstenite::protocol::CloseFrame {
            code,
            reason: "".into(),
        }))
        .format(&mut close)
        .expect("format");
        assert_eq!(close, CLOSE_NORMAL);
    }

    #[test]
    fn close_frames_are_the_ones_tungstenite_writes_and_fit_a_control_frame() {
        let long = "é".repeat(100);
        for (code, reason) in [
            (
                CloseCode::Protocol,
                "Received an unmasked frame from client",
            ),
            (CloseCode::Invalid, ""),
            (CloseCode::Size, long.as_str()),
        ] {
            let ours = close_frame(code, reason);
            assert!(ours.len() <= 2 + 125, "{} bytes", ours.len());
            let mut cut = reason.len().min(MAX_CLOSE_REASON);
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            let mut theirs = Vec::new();
            Frame::close(Some(tungstenite::protocol::CloseFrame {
                code,
                reason: reason[..cut].into(),
            }))
            .format(&mut theirs)
            .expect("format");
            assert_eq!(ours, theirs, "{code:?}");
        }
    }

    #[test]
    fn the_first_reason_given_is_the_close_sent() {
        let c = Control::new(10);
        let mut out = Vec::new();
        c.close_into(&mut out);
        assert_eq!(out, CLOSE_NORMAL);
        c.close_with(CloseCode::Protocol, "bad");
        c.close_with(CloseCode::Policy, "later");
        out.clear();
        c.close_into(&mut out);
        assert_eq!(out, close_frame(CloseCode::Protocol, "bad"));
    }

    #[test]
    fn control_bytes_are_bounded_and_the_latest_kept() {
        let c = Control::new(10);
        assert!(c.push(b"01234"));
        assert!(c.push(b"56789"));
        // Over the limit: the older bytes give way to the newer.
        assert!(c.push(b"abc"));
        let mut out = Vec::new();
        c.take_into(&mut out);
        assert_eq!(out, b"abc");
        assert!(!c.is_pending());
        assert!(!c.push(b"0123456789x"), "alone over the limit");
        assert!(!c.is_pending());
        assert!(c.push(b"x"));
    }
}
