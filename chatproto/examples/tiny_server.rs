//! A chat server on the `chatproto` core (chatserver adds rate limits and bounded queues):
//! `cargo run -p chatproto --example tiny_server -- 127.0.0.1:7878`
use std::collections::HashMap;
use std::time::{Duration, Instant, UNIX_EPOCH};

use chatproto::bytes::{Bytes, BytesMut};
use chatproto::{encode, ClientFrame, ClientId, Decoded, FrameDecoder, Kick, Now, Output, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{self, Sender};

/// Bytes for one connection; `None` closes it.
type Out = mpsc::UnboundedSender<Option<Bytes>>;
type OutRx = mpsc::UnboundedReceiver<Option<Bytes>>;

/// What connections tell the core: a frame (or why there is none), that
/// the client said its last, or that the connection is gone.
enum In {
    Frame(ClientId, Decoded<ClientFrame>),
    End(ClientId),
    Gone(ClientId),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:7878".into());
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let (tx, mut rx) = mpsc::channel::<In>(1024);
    // Session tokens are as unguessable as this seed: 32 bytes from the OS.
    let mut seed = [0; 32];
    getrandom::fill(&mut seed).expect("the OS random source");
    let mut server = Server::new(Default::default(), seed);
    let start = Instant::now();
    let wall = || UNIX_EPOCH.elapsed().map_or(0, |d| d.as_millis() as u64);
    let now = || Now::new(start.elapsed().as_millis() as u64, wall());
    let mut peers: HashMap<ClientId, Out> = HashMap::new();
    let max = server.config().max_frame_bytes; // `welcome` announces it: decode with it too
    loop {
        let next = server.poll_timeout().unwrap_or(u64::MAX);
        let wake = Duration::from_millis(next.saturating_sub(now().mono).min(3_600_000));
        // One task owns the core: it accepts, takes frames and keeps the timers.
        tokio::select! {
            Ok((sock, _)) = listener.accept() => {
                let (id, (out, out_rx)) = (server.handle_connect(now()), mpsc::unbounded_channel());
                peers.insert(id, out);
                tokio::spawn(connection(sock, id, out_rx, tx.clone(), max));
            }
            Some(first) = rx.recv() => {
                // What is queued already is taken now (no task runs meanwhile,
                // so at most the channel's bound): a frame with its
                // connection's end right behind it was read with that end
                // (a stale reconnect's `join`, which must not take over).
                let mut input = Some(first);
                while let Some(this) = input {
                    input = match (this, rx.try_recv().ok()) {
                        (In::Frame(id, Decoded::Frame(f)), Some(In::End(end))) if end == id => {
                            server.handle_last_frame(now(), id, f);
                            rx.try_recv().ok()
                        }
                        (this, next) => {
                            take(&mut server, &mut peers, now(), this);
                            next
                        }
                    };
                }
            }
            _ = tokio::time::sleep(wake) => {}
        }
        // Every turn: under steady input the sleep may never end first.
        server.handle_timeout(now());
        while let Some(out) = server.poll() {
            let (bytes, to) = match out {
                Output::Send { to, frame, .. } => (encode(&frame, max), vec![to]),
                // One event, many recipients: encode once, share the bytes.
                Output::Deliver {
                    event, to, with_id, ..
                } => (encode(&event.wire(with_id, false), max), to.to_vec()),
                Output::Close { client, .. } | Output::Finish { client, .. } => {
                    (Ok(Bytes::new()), vec![client])
                }
                _ => continue,
            };
            for p in to.iter().filter_map(|c| peers.get(c)) {
                let _ = p.send(bytes.as_ref().ok().filter(|b| !b.is_empty()).cloned());
            }
        }
    }
}

/// Hand one input to the core.
fn take(server: &mut Server, peers: &mut HashMap<ClientId, Out>, now: Now, input: In) {
    match input {
        In::Frame(id, Decoded::Frame(f)) => server.handle_frame(now, id, f),
        In::Frame(id, Decoded::Invalid(e)) => server.handle_bad_frame(now, id, &e),
        In::Frame(id, Decoded::Broken(e)) => server.kick(now, id, Kick::Framing(e)),
        In::Frame(_, Decoded::Incomplete) => {}
        In::End(id) => server.handle_end(id),
        In::Gone(id) => {
            server.handle_disconnect(now, id);
            peers.remove(&id);
        }
    }
}

// Move bytes between one socket and the core's task.
async fn connection(mut sock: TcpStream, id: ClientId, mut rx: OutRx, tx: Sender<In>, max: usize) {
    let (mut rd, mut wr) = sock.split();
    let (mut buf, mut dec) = (BytesMut::new(), FrameDecoder::new(max));
    let (mut reading, mut first) = (true, true);
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Some(b)) => if wr.write_all(&b).await.is_err() { break },
                _ => break,
            },
            n = rd.read_buf(&mut buf), if reading => {
                match n {
                    Ok(0) => {
                        // The client said its last: the answers to what it
                        // sent still come, then the core says to close.
                        reading = false;
                        let _ = tx.send(In::End(id)).await;
                        continue;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
                // With the first bytes, whether the end came too (looked at
                // without waiting): it then goes right behind their frames.
                let mut ended = false;
                if std::mem::take(&mut first) {
                    let mut more = [0; 4096];
                    match rd.try_read(&mut more) {
                        Ok(0) => ended = true,
                        Ok(n) => buf.extend_from_slice(&more[..n]),
                        Err(_) => {}
                    }
                }
                let mut more = true;
                while more {
                    let d = dec.decode::<ClientFrame>(&mut buf);
                    more = matches!(d, Decoded::Frame(_) | Decoded::Invalid(_));
                    if !matches!(d, Decoded::Incomplete) {
                        let _ = tx.send(In::Frame(id, d)).await;
                    }
                }
                if ended {
                    reading = false;
                    let _ = tx.send(In::End(id)).await;
                }
            }
        }
    }
    let _ = tx.send(In::Gone(id)).await;
}
