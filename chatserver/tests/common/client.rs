//! A raw, blocking client: it writes exactly the bytes a test asks for and
//! reads length-prefixed JSON frames with a deadline.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{is_presence, kind, WAIT};

/// Far above anything the server sends under the default limit; a header
/// larger than this means the test client lost track of the framing.
const SANE_FRAME: usize = 1 << 20;

/// What the next read brought.
#[derive(Debug)]
pub enum Next {
    /// A whole frame.
    Frame(Value),
    /// The server closed the connection (a partial frame may have been left).
    Eof,
    /// The connection was reset or aborted.
    Reset,
    /// Nothing arrived before the deadline.
    TimedOut,
}

/// One connection to the server.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The bytes of the last frame taken, its length header included.
    last_bytes: usize,
}

impl Client {
    /// Wrap a connected stream.
    pub fn new(stream: TcpStream) -> Client {
        stream.set_nodelay(true).expect("TCP_NODELAY");
        stream.set_write_timeout(Some(WAIT)).expect("write timeout");
        Client {
            stream,
            buf: Vec::new(),
            last_bytes: 0,
        }
    }

    /// The socket, for tests that need socket options or a second handle.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Write `bytes` as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to server");
    }

    /// Write one frame: a 4-byte big-endian length, then `payload`.
    pub fn send_payload(&mut self, payload: &[u8]) {
        self.send_raw(&frame_bytes(payload));
    }

    /// Write `frame` as one frame of compact JSON.
    pub fn send_frame(&mut self, frame: &Value) {
        self.send_payload(frame.to_string().as_bytes());
    }

    /// Write `frame` as one frame; the socket's error if it refuses (for
    /// tests whose server may be gone).
    pub fn try_send_frame(&mut self, frame: &Value) -> io::Result<()> {
        self.stream
            .write_all(&frame_bytes(frame.to_string().as_bytes()))
    }

    /// Send a `join`, and expect the welcome and the joiner's own online
    /// presence. Returns the welcome.
    pub fn join(&mut self, nick: &str) -> Value {
        self.send_frame(&json!({"type": "join", "nick": nick}));
        let welcome = self.expect_kind("welcome");
        assert_eq!(welcome["nick"], nick, "welcome for the wrong nick");
        let presence = self.recv_frame();
        assert!(
            is_presence(&presence, nick, "online"),
            "{nick}: expected its own online presence, got {presence}"
        );
        welcome
    }

    /// Enter `room` and read on to its `entered` (within 100 frames).
    pub fn enter(&mut self, room: &str) {
        self.send_frame(&json!({"type": "enter", "room": room}));
        self.recv_until(100, |f| f["type"] == "entered" && f["room"] == room);
    }

    /// Send a broadcast `msg` with `text`.
    pub fn say(&mut self, text: &str) {
        self.send_frame(&json!({"type": "msg", "text": text}));
    }

    /// Half-close: no more bytes from us, but we can still read.
    pub fn shutdown_write(&self) {
        self.stream
            .shutdown(Shutdown::Write)
            .expect("shutdown(Write)");
    }

    /// Read until a whole frame, EOF, a reset, or `within` has passed.
    pub fn next_within(&mut self, within: Duration) -> Next {
        let deadline = Instant::now() + within;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(frame) = self.take_frame() {
                return Next::Frame(frame);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Next::TimedOut;
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("read timeout");
            match self.stream.read(&mut chunk) {
                Ok(0) => return Next::Eof,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => return Next::TimedOut,
                    io::ErrorKind::Interrupted => {}
                    io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe => return Next::Reset,
                    _ => panic!("read from server: {e}"),
                },
            }
        }
    }

    /// The next event, waiting at most [`WAIT`].
    pub fn next(&mut self) -> Next {
        self.next_within(WAIT)
    }

    /// Every frame until the server closes the connection; a reset, or
    /// nothing within [`WAIT`], fails the test.
    pub fn frames_to_eof(&mut self) -> Vec<Value> {
        let mut got = Vec::new();
        loop {
            match self.next() {
                Next::Frame(f) => got.push(f),
                Next::Eof => return got,
                other => panic!("{other:?} after {got:?}"),
            }
        }
    }

    /// The next frame; anything else fails the test.
    pub fn recv_frame(&mut self) -> Value {
        match self.next() {
            Next::Frame(f) => f,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// The next frame, which must be of type `ty`.
    pub fn expect_kind(&mut self, ty: &str) -> Value {
        let frame = self.recv_frame();
        assert_eq!(kind(&frame), ty, "expected a {ty} frame, got {frame}");
        frame
    }

    /// The next frame, which must be an error with `code`; returns its message.
    pub fn expect_error(&mut self, code: &str) -> String {
        let frame = self.expect_kind("error");
        assert_eq!(frame["code"], code, "wrong error: {frame}");
        let message = frame["message"].as_str().expect("error message").to_owned();
        assert!(!message.is_empty(), "error without a message: {frame}");
        message
    }

    /// The connection must end now: EOF or reset, with no frame before it.
    pub fn expect_closed(&mut self) {
        match self.next() {
            Next::Eof | Next::Reset => {}
            other => panic!("expected the connection to close, got {other:?}"),
        }
    }

    /// Read frames until one satisfies `done`, at most `max` frames; returns
    /// the frames before it and the matching one.
    pub fn recv_until(
        &mut self,
        max: usize,
        mut done: impl FnMut(&Value) -> bool,
    ) -> (Vec<Value>, Value) {
        let mut before = Vec::new();
        for _ in 0..max {
            let frame = self.recv_frame();
            if done(&frame) {
                return (before, frame);
            }
            before.push(frame);
        }
        panic!(
            "no matching frame within {max} frames; last: {:?}",
            before.last()
        );
    }

    /// How many bytes the last frame read took on the wire, its length
    /// header included.
    pub fn last_frame_bytes(&self) -> usize {
        self.last_bytes
    }

    /// Send a `ping` and expect the very next frame to be the `pong`.
    pub fn ping_pong(&mut self) {
        self.send_frame(&json!({"type": "ping"}));
        self.expect_kind("pong");
    }

    fn take_frame(&mut self) -> Option<Value> {
        let head: [u8; 4] = self.buf.get(..4)?.try_into().ok()?;
        let len = u32::from_be_bytes(head) as usize;
        assert!(
            (1..=SANE_FRAME).contains(&len),
            "server sent a frame header of {len} bytes"
        );
        let payload = self.buf.get(4..4 + len)?;
        let frame = serde_json::from_slice(payload).unwrap_or_else(|e| {
            panic!(
                "server sent a payload that is not JSON ({e}): {:?}",
                String::from_utf8_lossy(payload)
            )
        });
        self.buf.drain(..4 + len);
        self.last_bytes = 4 + len;
        Some(frame)
    }
}

/// `payload` with its length header in front.
pub fn frame_bytes(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("payload fits a u32 length");
    let mut out = Vec::with_capacity(4 + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}
