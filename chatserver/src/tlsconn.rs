//! chatproto frames over TLS: the same framing, limits and rate as over
//! TCP; a writer task writes the peer's queue through the encrypted stream.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use chatproto::{Decoded, FrameDecoder, Kick};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Instant};
use tracing::{debug, info};

use crate::edge::Edge;
use crate::feed::{self, Feeder, Halt};
use crate::hub::ToHub;
use crate::limits::Admission;
use crate::metrics::Transport;
use crate::peer::Peer;
use crate::writer;

/// Bytes asked of the stream per read, once a read has begun a frame...
const READ_CHUNK: usize = 8 * 1024;

/// ...and by the first read after the last frame: the buffer an idle
/// connection holds while it waits. A plain TCP connection waits for the
/// socket to be readable with no buffer at all; a TLS stream has no such
/// wait, so its read waits in a buffer, and a small one: most frames fit,
/// and a larger one reads on from what rustls has decrypted, without a
/// system call. (8 KiB here made an idle TLS connection cost 26 KiB of
/// the server's memory instead of about 20; BENCHMARKS.md.)
const FIRST_READ: usize = 512;

/// Between frames, let the read buffer go (the next read takes a fresh
/// [`FIRST_READ`]), as a plain TCP connection does. A buffer a large frame
/// grew keeps its whole allocation, even when the frame took all of it and
/// what is left looks empty (`capacity()` 0): the next `reserve` takes it
/// back whole, and a connection that once sent a message near the frame
/// limit would hold that much for as long as it stays connected.
fn release_idle_buffer(decoder: &FrameDecoder, buf: &mut BytesMut) {
    if !decoder.is_mid_frame(buf) {
        *buf = BytesMut::new();
    }
}

/// Serve chatproto on `stream` until it ends.
pub async fn serve<S>(
    stream: S,
    addr: SocketAddr,
    edge: Arc<Edge>,
    _admission: Admission,
    _done: mpsc::Sender<()>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let cfg = &edge.settings;
    let to_hub = &edge.to_hub;
    let peer = Peer::for_task(cfg.queue, Arc::clone(&cfg.budget));
    let peer = Arc::new(peer.with_reads(cfg.read_allowance()));
    let Some(id) = feed::connect(to_hub, &peer).await else {
        return;
    };
    info!(client = %id, %addr, "TLS connected");
    cfg.metrics.opened(Transport::Tls);
    let (mut rd, wr) = tokio::io::split(stream);
    let writing = {
        let (peer, to_hub) = (Arc::clone(&peer), to_hub.clone());
        tokio::spawn(async move { writer::run(&peer, writer::Stream::new(wr), &to_hub, id).await })
    };
    let mut decoder = FrameDecoder::new(cfg.max_frame_bytes);
    let mut buf = BytesMut::new();
    let mut feeder = Feeder::new(to_hub, cfg, &peer);
    let mut resume_at: Option<Instant> = None;
    // Whether the client's stream ended cleanly: what it sent before is
    // answered before the connection closes.
    let mut ended = false;
    // No frame has been read yet: a first that resumes a session is
    // handed on with the end of the stream if that is here already
    // (`feed::resumes`), and the reading stops once it has passed.
    let mut first = true;
    'conn: loop {
        if peer.is_closing() {
            break;
        }
        if buf.capacity() == 0 {
            // Between frames: what a connection keeps while it idles.
            buf.reserve(FIRST_READ);
        } else if buf.capacity() - buf.len() < 1024 {
            buf.reserve(READ_CHUNK);
        }
        tokio::select! {
            n = rd.read_buf(&mut buf), if resume_at.is_none() => {
                if matches!(n, Ok(0) | Err(_)) {
                    ended = ended_cleanly(&n);
                    break;
                }
            }
            _ = sleep_until(resume_at.unwrap_or_else(Instant::now)), if resume_at.is_some() => {}
            // A read answered: a frame that waited for it (see
            // `Feeder::pass`) goes on now.
            _ = peer.wake.notified() => if resume_at.is_none() || peer.is_closing() {
                continue;
            },
        }
        resume_at = None;
        loop {
            if !feeder.is_holding() {
                let (decoded, len) = feed::next_frame(&mut decoder, &mut buf);
                match decoded {
                    Decoded::Incomplete => {
                        // Throttled, the client is caught up (see
                        // `Feeder::caught_up`) only when nothing of it
                        // waits: no part of a frame in the buffer, and
                        // nothing more in the stream.
                        if feeder.is_throttled() && !decoder.is_mid_frame(&buf) {
                            match feed::read_now(&mut rd, &mut buf, READ_CHUNK) {
                                Some(Ok(n)) if n > 0 => continue,
                                Some(read) => {
                                    ended = ended_cleanly(&read);
                                    break 'conn;
                                }
                                None => feeder.caught_up(),
                            }
                        }
                        break;
                    }
                    Decoded::Frame(frame) => {
                        let last = std::mem::take(&mut first)
                            && feed::resumes(&frame)
                            && buf.is_empty()
                            && match feed::read_now(&mut rd, &mut buf, READ_CHUNK) {
                                // Ended, cleanly or not (a reset): either
                                // way no answer reaches it, and it must
                                // take nothing over (plain TCP drops such
                                // a join; here it is told as ended).
                                Some(Ok(0) | Err(_)) => true,
                                _ => false,
                            };
                        if last {
                            ended = true;
                            feeder.hold(ToHub::LastFrame(id, frame), len);
                        } else {
                            feeder.hold(ToHub::Frame(id, frame), len);
                        }
                    }
                    Decoded::Invalid(e) => feeder.hold(ToHub::BadFrame(id, e), len),
                    Decoded::Broken(e) => {
                        info!(client = %id, error = %e, "framing error; closing");
                        feed::kick(&peer, &Kick::Framing(e), cfg);
                        break 'conn;
                    }
                }
            }
            match feeder.pass().await {
                Ok(None) if ended => break 'conn,
                Ok(None) => {}
                Ok(Some(at)) => {
                    resume_at = Some(at);
                    continue 'conn;
                }
                Err(Halt::Kick(why)) => {
                    info!(client = %id, "rate limit exceeded for too long; closing");
                    feed::kick(&peer, &why, cfg);
                    break 'conn;
                }
                Err(Halt::HubGone) => break 'conn,
            }
        }
        release_idle_buffer(&decoder, &mut buf);
    }
    let grace = Duration::from_millis(cfg.close_flush_ms);
    feed::leave(to_hub, &peer, id, ended, grace).await;
    peer.close();
    let mut writing = writing;
    match timeout(grace, &mut writing).await {
        // Written, and our side of the stream shut: what the client still
        // sends is read a little while, so the close does not reset the
        // connection before the client has read our last frames.
        Ok(_) => crate::edge::drain(&mut rd).await,
        // A client that stopped reading does not keep the task.
        Err(_) => writing.abort(),
    }
    cfg.metrics.closed(Transport::Tls);
    debug!(client = %id, %addr, "TLS closed");
}

/// Whether a read that ended the stream (`Ok(0)` or an error) ended it
/// cleanly: the end of the stream, or a TCP FIN without TLS's
/// close_notify (many clients send none; every frame taken before it was
/// whole, and gets its answer).
fn ended_cleanly(read: &std::io::Result<usize>) -> bool {
    match read {
        Ok(n) => *n == 0,
        Err(e) => e.kind() == std::io::ErrorKind::UnexpectedEof,
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::task::{Context, Poll};

    use chatproto::{ClientFrame, ClientId};
    use tokio::io::{AsyncWriteExt, DuplexStream, ReadBuf, ReadHalf};

    use super::*;
    use crate::limits::Limits;
    use crate::Settings;

    /// A read side that notes how much room each read offers (the read
    /// buffer's spare capacity), and whether the last read found nothing
    /// to read (the task then waits for the client). Joined to a write
    /// side with `tokio::io::join`.
    struct Offered {
        inner: ReadHalf<DuplexStream>,
        room: Arc<AtomicUsize>,
        waiting: Arc<AtomicBool>,
    }

    impl AsyncRead for Offered {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            self.room.store(buf.remaining(), Ordering::Relaxed);
            let read = Pin::new(&mut self.inner).poll_read(cx, buf);
            self.waiting.store(read.is_pending(), Ordering::Relaxed);
            read
        }
    }

    fn frame(json: &str) -> Vec<u8> {
        let mut out = (json.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(json.as_bytes());
        out
    }

    /// The hub's next input that is a frame from the client.
    async fn next_frame(hub: &mut mpsc::Receiver<ToHub>) -> ClientFrame {
        loop {
            match hub.recv().await.expect("the connection task is running") {
                ToHub::Frame(_, frame) => return frame,
                ToHub::Gone(_) => panic!("the connection ended"),
                _ => {}
            }
        }
    }

    /// Until the connection's task waits for a read that found nothing (on
    /// this runtime's one thread, the task runs while the test yields).
    async fn wait_for_read(waiting: &AtomicBool) {
        for _ in 0..10_000 {
            if waiting.load(Ordering::Relaxed) {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the task never waited for the next read");
    }

    /// The connection task serving `stream`, registered with `hub` as
    /// client 1.
    async fn start<S>(
        stream: S,
        edge: Arc<Edge>,
        hub: &mut mpsc::Receiver<ToHub>,
    ) -> tokio::task::JoinHandle<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let admission = Limits::new(1, 1, crate::limits::ConnectRate::OFF)
            .admit([127, 0, 0, 1].into())
            .expect("room for one");
        let (done, _done_rx) = mpsc::channel(1);
        let addr = "127.0.0.1:1".parse().unwrap();
        let task = tokio::spawn(serve(stream, addr, edge, admission, done));
        match hub.recv().await {
            Some(ToHub::Connect { reply, .. }) => reply.send(ClientId(1)).unwrap(),
            _ => panic!("the connection did not register"),
        }
        task
    }

    #[tokio::test]
    async fn a_flood_of_frames_larger_than_one_read_is_rate_limited() {
        let mut settings = Arc::into_inner(Settings::for_tests()).expect("not shared yet");
        settings.rate_bytes = 40_000;
        settings.burst_bytes = 65_536;
        settings.rate_limit_grace_ms = 300;
        let (to_hub, mut hub) = mpsc::channel(16);
        let edge = Arc::new(Edge {
            to_hub,
            settings: Arc::new(settings),
            tls: None,
            stop: tokio::sync::watch::channel(false).1,
        });
        // A pipe that holds less than a frame: each read leaves part of
        // one in the buffer with nothing more to read at that moment (on
        // this runtime's one thread, the writer runs when the reader
        // waits), which must not count as caught up.
        let (client, server) = tokio::io::duplex(4096);
        let task = start(server, edge, &mut hub).await;
        let (mut rd, mut wr) = tokio::io::split(client);
        tokio::spawn(async move {
            let mut sink = vec![0u8; 4096];
            while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        // 4 MB of frames of 20 KB, each more than one 8 KiB read: a
        // hundred seconds at the allowance, were the flood only slowed.
        let text = "x".repeat(20_000);
        let big = frame(&format!(r#"{{"type":"msg","text":"{text}"}}"#));
        tokio::spawn(async move {
            for _ in 0..200 {
                if wr.write_all(&big).await.is_err() {
                    break;
                }
            }
        });
        // The burst passes three, the allowance one more within the
        // grace; the next has waited past it and the client is closed.
        let mut passed = 0;
        loop {
            match hub.recv().await.expect("the connection task is running") {
                ToHub::Frame(..) => passed += 1,
                ToHub::Gone(_) => break,
                _ => {}
            }
            assert!(passed < 10, "{passed} frames of a flood passed");
        }
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the connection ends once closed")
            .unwrap();
    }

    #[tokio::test]
    async fn a_large_frame_does_not_leave_its_buffer_to_an_idle_connection() {
        let (to_hub, mut hub) = mpsc::channel(16);
        let edge = Arc::new(Edge {
            to_hub,
            settings: Settings::for_tests(),
            tls: None,
            stop: tokio::sync::watch::channel(false).1,
        });
        let (client, server) = tokio::io::duplex(1 << 20);
        let room = Arc::new(AtomicUsize::new(0));
        let waiting = Arc::new(AtomicBool::new(false));
        let (server_rd, server_wr) = tokio::io::split(server);
        let offered = Offered {
            inner: server_rd,
            room: Arc::clone(&room),
            waiting: Arc::clone(&waiting),
        };
        let stream = tokio::io::join(offered, server_wr);
        let task = start(stream, edge, &mut hub).await;
        let (mut rd, mut wr) = tokio::io::split(client);
        // Whatever the server writes (nothing, here) is read away.
        tokio::spawn(async move {
            let mut sink = vec![0u8; 4096];
            while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        // A new connection waits for its first frame in a small buffer.
        wait_for_read(&waiting).await;
        let offered = room.load(Ordering::Relaxed);
        assert!(
            offered <= FIRST_READ,
            "a new connection offers {offered} bytes of buffer"
        );
        wr.write_all(&frame(r#"{"type":"join","nick":"alice"}"#))
            .await
            .unwrap();
        next_frame(&mut hub).await;
        // A message near the frame limit, then silence.
        let text = "x".repeat(60_000);
        let big = format!(r#"{{"type":"msg","to":["bob"],"text":"{text}"}}"#);
        wr.write_all(&frame(&big)).await.unwrap();
        assert!(matches!(
            next_frame(&mut hub).await,
            ClientFrame::Msg { .. }
        ));
        // Once the task waits for the next read, its buffer is the one an
        // idle connection keeps (on this runtime's one thread, the task
        // runs while the test yields). The reads that brought the frame
        // found bytes: a read that waits is the one after it.
        wait_for_read(&waiting).await;
        let offered = room.load(Ordering::Relaxed);
        assert!(
            offered <= FIRST_READ,
            "an idle connection still offers {offered} bytes of buffer after a large frame"
        );
        wr.write_all(&frame(r#"{"type":"ping"}"#)).await.unwrap();
        assert!(matches!(next_frame(&mut hub).await, ClientFrame::Ping));
        wr.shutdown().await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the connection ends when the client does")
            .unwrap();
    }
}
