//! A chat server on the `chatproto` core (chatserver adds rate limits and bounded queues):
//! `cargo run -p chatproto --example tiny_server -- 127.0.0.1:7878`
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use chatproto::{encode, ClientFrame, ClientId, FrameDecoder, Now, Output, Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// Bytes for one connection; `None` closes it.
type Out = mpsc::UnboundedSender<Option<Bytes>>;

enum In {
    Open(Out, oneshot::Sender<ClientId>),
    Frame(ClientId, ClientFrame),
    Gone(ClientId),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:7878".into());
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let (tx, mut rx) = mpsc::channel::<In>(1024);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(connection(sock, tx.clone()));
        }
    });
    // A random seed for session tokens (chatserver asks the OS).
    let seed = std::array::from_fn(|i| std::hash::RandomState::new().hash_one(i) as u8);
    let mut server = Server::new(ServerConfig::default(), seed);
    let start = Instant::now();
    let wall = || UNIX_EPOCH.elapsed().map_or(0, |d| d.as_millis() as u64);
    let now = || Now::new(start.elapsed().as_millis() as u64, wall());
    let mut peers: HashMap<ClientId, Out> = HashMap::new();
    loop {
        let next = server.poll_timeout().unwrap_or(u64::MAX);
        let wake = next.saturating_sub(now().mono).min(3_600_000);
        match tokio::time::timeout(Duration::from_millis(wake), rx.recv()).await {
            Ok(Some(In::Open(out, reply))) => {
                let id = server.handle_connect(now());
                peers.insert(id, out);
                let _ = reply.send(id);
            }
            Ok(Some(In::Frame(id, frame))) => server.handle_frame(now(), id, frame),
            Ok(Some(In::Gone(id))) => {
                server.handle_disconnect(now(), id);
                peers.remove(&id);
            }
            Ok(None) => return Ok(()),
            Err(_) => server.handle_timeout(now()),
        }
        let max = server.config().max_frame_bytes;
        while let Some(out) = server.poll() {
            let (bytes, to) = match out {
                Output::Send { to, frame, .. } => (encode(&frame, max), vec![to]),
                // One event, many recipients: encode once, share the bytes.
                Output::Deliver {
                    event, to, with_id, ..
                } => (encode(&event.wire(with_id, false), max), to.to_vec()),
                Output::Close { client, .. } => (Ok(Bytes::new()), vec![client]),
                _ => continue,
            };
            for p in to.iter().filter_map(|c| peers.get(c)) {
                let b = bytes.as_ref().ok().filter(|b| !b.is_empty()).cloned();
                let _ = p.send(b);
            }
        }
    }
}

// Move bytes between one socket and the core's task.
async fn connection(mut sock: TcpStream, tx: mpsc::Sender<In>) {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel();
    let (id_tx, id_rx) = oneshot::channel();
    let _ = tx.send(In::Open(out_tx, id_tx)).await;
    let Ok(id) = id_rx.await else { return };
    let (mut rd, mut wr) = sock.split();
    let (mut buf, mut dec) = (BytesMut::new(), FrameDecoder::default());
    loop {
        tokio::select! {
            out = out_rx.recv() => match out {
                Some(Some(b)) => if wr.write_all(&b).await.is_err() { break },
                _ => break,
            },
            n = rd.read_buf(&mut buf) => {
                if !matches!(n, Ok(n) if n > 0) { break }
                while let Ok(Some(f)) = dec.decode::<ClientFrame>(&mut buf) {
                    if let Ok(f) = f { let _ = tx.send(In::Frame(id, f)).await; }
                }
            }
        }
    }
    let _ = tx.send(In::Gone(id)).await;
}
