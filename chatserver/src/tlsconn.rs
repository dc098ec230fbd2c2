//! chatproto frames over TLS: the same framing, limits and rate as over
//! TCP; a writer task writes the peer's queue through the encrypted stream.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use chatproto::{ClientFrame, Decoded, FrameDecoder, Kick};
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

/// Bytes asked of the stream per read.
const READ_CHUNK: usize = 8 * 1024;

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
    let peer = Arc::new(Peer::for_task(cfg.queue, Arc::clone(&cfg.budget)));
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
    'conn: loop {
        if peer.is_closing() {
            break;
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(READ_CHUNK);
        }
        tokio::select! {
            n = rd.read_buf(&mut buf), if resume_at.is_none() => {
                match n {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
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
                match decoder.decode_with(&mut buf, ClientFrame::from_payload) {
                    Decoded::Incomplete => break,
                    Decoded::Frame(frame) => feeder.hold(ToHub::Frame(id, frame)),
                    Decoded::Invalid(e) => feeder.hold(ToHub::BadFrame(id, e)),
                    Decoded::Broken(e) => {
                        info!(client = %id, error = %e, "framing error; closing");
                        feed::kick(&peer, &Kick::Framing(e), cfg);
                        break 'conn;
                    }
                }
            }
            match feeder.pass().await {
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
        feeder.caught_up();
    }
    let _ = to_hub.send(ToHub::Gone(id)).await;
    peer.close();
    let mut writing = writing;
    if timeout(Duration::from_millis(cfg.close_flush_ms), &mut writing)
        .await
        .is_err()
    {
        // A client that stopped reading does not keep the task.
        writing.abort();
    }
    cfg.metrics.closed(Transport::Tls);
    debug!(client = %id, %addr, "TLS closed");
}
