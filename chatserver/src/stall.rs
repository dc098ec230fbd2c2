//! A stream whose writes give up when they make no progress for a while:
//! an HTTP client that asks for pages and never reads the answers would
//! otherwise keep its connection, and its place under the caps, for as
//! long as it stays connected. Once the connection becomes a WebSocket
//! the stream is disarmed: a WebSocket's unread output has its own
//! policy (`slow_consumer`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{sleep, Sleep};

/// `inner`, whose writes fail with `TimedOut` once one has waited `limit`
/// without a byte taken, while `armed`.
pub struct StallLimit<S> {
    inner: S,
    limit: Duration,
    armed: Arc<AtomicBool>,
    /// Since the write now waiting began to wait: its deadline.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> StallLimit<S> {
    /// Wrap `inner`; `armed` may be cleared later to lift the limit.
    pub fn new(inner: S, limit: Duration, armed: Arc<AtomicBool>) -> Self {
        StallLimit {
            inner,
            limit,
            armed,
            stalled: None,
        }
    }

    /// What a write that returned `poll` means under the limit.
    fn check<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() || !self.armed.load(Ordering::Relaxed) {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let deadline = self.stalled.get_or_insert_with(|| Box::pin(sleep(limit)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took nothing written to it for a join timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallLimit<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallLimit<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.check(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_write_that_waits_too_long_fails_unless_disarmed() {
        let limit = Duration::from_secs(5);
        // A pipe of 8 bytes that nobody reads: the second write waits.
        let (near, _far) = tokio::io::duplex(8);
        let armed = Arc::new(AtomicBool::new(true));
        let mut s = StallLimit::new(near, limit, Arc::clone(&armed));
        s.write_all(b"12345678").await.expect("fits");
        let err = s.write_all(b"9").await.expect_err("stalled");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);

        let (near, _far) = tokio::io::duplex(8);
        let mut s = StallLimit::new(near, limit, Arc::clone(&armed));
        s.write_all(b"12345678").await.expect("fits");
        armed.store(false, Ordering::Relaxed);
        let waited = tokio::time::timeout(limit * 4, s.write_all(b"9")).await;
        assert!(waited.is_err(), "disarmed, it waits as long as it takes");
    }
}
