//! A fake chatserver, for what the real one does only in a race: it
//! speaks the length-prefixed JSON frames (PROTOCOL.md section 1) on its
//! first connection, answering each frame the client sends as the test's
//! script says, and tells whether another connection came after it.
//!
//! Plain std on 127.0.0.1:0; every read is bounded by [`WAIT`].

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};

use bytes::BytesMut;
use chatproto::{
    encode, ClientFrame, Decoded, ErrorCode, FrameDecoder, PresenceStatus, ServerFrame,
};

use super::WAIT;

const MAX_FRAME: usize = 64 * 1024;

/// What the server says to the older connection when a newer one resumes
/// its session (PROTOCOL.md section 6).
pub const RESUMED_ELSEWHERE: &str = "your session was resumed on another connection, \
    which continues it; this one is closed (do not reconnect it automatically)";

/// What the fake server does with a frame from the client.
pub enum Reply {
    /// Send these frames (in one write) and read on.
    Send(Vec<ServerFrame>),
    /// Send these frames (in one write), then shut our side down, as the
    /// server does after a fatal error, and read until the client closes.
    Close(Vec<ServerFrame>),
    /// Send these payloads, JSON as written (frames of kinds chatproto
    /// does not have, say), framed, in one write, and read on.
    Raw(Vec<String>),
}

/// A listener whose first connection is answered by a script.
pub struct FakeServer {
    /// `IP:PORT` for chatclient to connect to.
    pub addr: String,
    listener: TcpListener,
    /// What the first connection sent, once it ended.
    done: Receiver<Vec<ClientFrame>>,
}

impl FakeServer {
    /// Listen on 127.0.0.1:0 and answer each frame of the first
    /// connection with what `script` says.
    pub fn start(script: impl FnMut(&ClientFrame) -> Reply + Send + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake server");
        let addr = listener.local_addr().unwrap().to_string();
        let first = listener.try_clone().expect("clone the listener");
        let (tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let Ok((stream, _)) = first.accept() else {
                return;
            };
            let _ = tx.send(serve(stream, script));
        });
        FakeServer {
            addr,
            listener,
            done,
        }
    }

    /// A server that lets the client in and into the rooms it asks for,
    /// then, when its first message comes, says its session was resumed
    /// elsewhere and closes.
    pub fn taken_over_at_the_first_message() -> FakeServer {
        FakeServer::letting_in(|| {
            Reply::Close(vec![ServerFrame::error(
                ErrorCode::ResumedElsewhere,
                RESUMED_ELSEWHERE,
            )])
        })
    }

    /// A server that lets the client in and into the rooms it asks for,
    /// and answers each message with what `on_msg` says.
    pub fn letting_in(mut on_msg: impl FnMut() -> Reply + Send + 'static) -> FakeServer {
        let mut me = String::new();
        FakeServer::start(move |frame| match frame {
            ClientFrame::Join { nick, .. } => {
                me.clone_from(nick);
                Reply::Send(vec![ServerFrame::welcome(
                    nick.clone(),
                    0,
                    Vec::new(),
                    Some("0123456789abcdef0123456789abcdef".into()),
                    Some(false),
                    None,
                )])
            }
            ClientFrame::Enter { room, .. } => Reply::Send(vec![
                ServerFrame::entered(room.clone(), "e1", 0, 1, vec![me.clone()], false),
                ServerFrame::presence(
                    Some(room.clone()),
                    1,
                    me.clone(),
                    PresenceStatus::Online,
                    1_732_400_000_000,
                ),
            ]),
            ClientFrame::Msg { .. } => on_msg(),
            _ => Reply::Send(Vec::new()),
        })
    }

    /// The frames the first connection sent, once it has ended (within
    /// [`WAIT`]).
    pub fn first_connection(&self) -> Vec<ClientFrame> {
        self.done
            .recv_timeout(WAIT)
            .expect("the first connection came and ended")
    }

    /// Whether another connection is waiting to be accepted now. Call once
    /// the client has exited: whatever it opened is in the queue by then.
    pub fn another_connection(&self) -> bool {
        self.listener.set_nonblocking(true).expect("nonblocking");
        match self.listener.accept() {
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            Err(e) => panic!("accept failed: {e}"),
        }
    }
}

/// A node on `listener` that answers every join, on every connection,
/// with an `error` of `code` (`unavailable`: a cluster's node cut off from
/// its NATS) and `message`, and reads on until the client closes.
pub fn refusing_joins(listener: TcpListener, code: ErrorCode, message: &'static str) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                serve(stream, |frame| match frame {
                    ClientFrame::Join { .. } => {
                        Reply::Send(vec![ServerFrame::error(code, message)])
                    }
                    _ => Reply::Send(Vec::new()),
                })
            });
        }
    });
}

/// Answer each frame as `script` says until it closes, then read until
/// the client closes too; every frame it sent.
fn serve(mut stream: TcpStream, mut script: impl FnMut(&ClientFrame) -> Reply) -> Vec<ClientFrame> {
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut decoder = FrameDecoder::new(MAX_FRAME);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let mut closed = false;
    let mut chunk = [0u8; 4096];
    loop {
        loop {
            let frame = match decoder.decode::<ClientFrame>(&mut buf) {
                Decoded::Frame(frame) => frame,
                Decoded::Incomplete => break,
                other => panic!("the client sent a bad frame: {other:?}"),
            };
            if !closed {
                let mut out = Vec::new();
                let (frames, close) = match script(&frame) {
                    Reply::Send(frames) => (frames, false),
                    Reply::Close(frames) => (frames, true),
                    Reply::Raw(payloads) => {
                        for p in payloads {
                            out.extend_from_slice(&(p.len() as u32).to_be_bytes());
                            out.extend_from_slice(p.as_bytes());
                        }
                        (Vec::new(), false)
                    }
                };
                for f in &frames {
                    out.extend_from_slice(&encode(f, MAX_FRAME).expect("encode"));
                }
                stream.write_all(&out).expect("answer the client");
                if close {
                    let _ = stream.shutdown(Shutdown::Write);
                    closed = true;
                }
            }
            got.push(frame);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("reading from the client: {e}"),
        }
    }
}
