//! The last answer on a connection the server closes reaches a client
//! that keeps sending, on every transport: after its last frame the
//! server reads (and drops) what the client still sends, a bounded while,
//! instead of closing with those bytes unread, which resets the
//! connection and throws away what the client had not read yet.

mod common;
mod webclient;

use std::net::TcpStream;

use common::{frame_bytes, kind, Client, Next, Server, WAIT};
use serde_json::{json, Value};
use webclient::{tls_over, ws_over, Framed, Pki, WsNext};

/// The echoes the closed client has not read when it is closed: far more
/// than its receive buffer holds, so most wait in the server's.
const MESSAGES: usize = 40;
const TEXT_BYTES: usize = 3_000;

/// A TCP connection to `server` with a small receive buffer (set before
/// connecting): what the server writes to it and it does not read waits
/// in the server's send buffer.
fn small_window(server: &Server) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket
        .connect(&server.addr().into())
        .expect("connect to chatserver");
    let s = TcpStream::from(socket);
    s.set_nodelay(true).expect("TCP_NODELAY");
    s.set_read_timeout(Some(WAIT)).expect("read timeout");
    s.set_write_timeout(Some(WAIT)).expect("write timeout");
    s
}

fn text(i: usize) -> String {
    format!("{i:04}:{}", "x".repeat(TEXT_BYTES))
}

/// One of the transports, as the test drives it: alice's side.
trait Alice {
    /// Send one chatproto frame.
    fn send(&mut self, frame: &Value);
    /// Send `n` pings at once, without reading.
    fn ping(&mut self, n: usize);
    /// The next frame, or `None` at the end of the connection (a clean
    /// one; a reset fails the test).
    fn next(&mut self) -> Option<Value>;
}

impl Alice for Client {
    fn send(&mut self, frame: &Value) {
        self.send_frame(frame);
    }
    fn ping(&mut self, n: usize) {
        let one = frame_bytes(json!({"type": "ping"}).to_string().as_bytes());
        self.send_raw(&one.repeat(n));
    }
    fn next(&mut self) -> Option<Value> {
        match Client::next(self) {
            Next::Frame(f) => Some(f),
            Next::Eof => None,
            other => panic!("expected a frame or the end, got {other:?}"),
        }
    }
}

impl<S: webclient::Socket> Alice for Framed<S> {
    fn send(&mut self, frame: &Value) {
        self.send_frame(frame);
    }
    fn ping(&mut self, n: usize) {
        let one = frame_bytes(json!({"type": "ping"}).to_string().as_bytes());
        self.send_raw(&one.repeat(n));
    }
    fn next(&mut self) -> Option<Value> {
        match self.next_within(WAIT) {
            Next::Frame(f) => Some(f),
            Next::Eof => None,
            other => panic!("expected a frame or the end, got {other:?}"),
        }
    }
}

impl<S: webclient::Socket> Alice for webclient::Ws<S> {
    fn send(&mut self, frame: &Value) {
        self.send_frame(frame);
    }
    fn ping(&mut self, n: usize) {
        let one = webclient::masked_frame(0x1, br#"{"type":"ping"}"#, [1, 2, 3, 4]);
        self.send_raw(&one.repeat(n));
    }
    fn next(&mut self) -> Option<Value> {
        match webclient::Ws::next(self) {
            WsNext::Frame(f) => Some(f),
            // Closed for a takeover: a normal close (RFC 6455 7.4.1).
            WsNext::Closed(Some(1000)) => None,
            other => panic!("expected a frame or the close 1000, got {other:?}"),
        }
    }
}

/// alice (`alice`, joined, her welcome given) sends the messages and reads
/// nothing; once bob has them all, her session is resumed on another
/// connection, which closes hers with `resumed_elsewhere` after her
/// echoes, while she sends more. She then reads: every echo, the error,
/// and the end of the connection, with no reset.
fn the_last_answer_arrives(server: &Server, mut alice: impl Alice, welcome: &Value) {
    let mut bob = server.join("bob");
    for i in 0..MESSAGES {
        alice.send(&json!({"type": "msg", "text": text(i)}));
    }
    let (_, last) = bob.recv_until(MESSAGES + 10, |f| {
        kind(f) == "msg" && f["text"] == text(MESSAGES - 1).as_str()
    });
    assert_eq!(last["from"], "alice");
    let mut again = server.connect();
    again.send_frame(&json!({
        "type": "join", "nick": "alice", "rooms": [], "resume": welcome["session"],
    }));
    assert_eq!(again.expect_kind("welcome")["resumed"], true);
    // She keeps sending: these the server reads no more as frames.
    alice.ping(800);
    let mut echoes = 0;
    let mut last = None;
    for _ in 0..MESSAGES * 2 + 10 {
        let Some(f) = alice.next() else {
            break;
        };
        match kind(&f) {
            "msg" => {
                assert_eq!(f["text"], text(echoes).as_str());
                echoes += 1;
            }
            "presence" | "pong" => {}
            _ => last = Some(f),
        }
    }
    assert_eq!(echoes, MESSAGES, "echoes lost");
    let last = last.expect("no error before the end");
    assert_eq!(last["code"], "resumed_elsewhere", "{last}");
}

#[test]
fn over_tcp() {
    let server = Server::start(&["--rate", "0"]);
    let mut alice = Client::new(small_window(&server));
    let welcome = alice.join("alice");
    the_last_answer_arrives(&server, alice, &welcome);
}

#[test]
fn over_tls() {
    let pki = Pki::new();
    let mut flags = pki.flags();
    flags.extend_from_slice(&["--rate", "0"]);
    let server = Server::start(&flags);
    let tls = tls_over(small_window(&server), &pki.ca.client_config(), "localhost")
        .expect("TLS handshake");
    let mut alice = Framed::new(tls);
    let welcome = alice.join("alice");
    the_last_answer_arrives(&server, alice, &welcome);
}

#[test]
fn over_a_websocket() {
    let server = Server::start(&["--rate", "0"]);
    let url = format!("ws://{}/ws", server.addr());
    let mut alice = ws_over(small_window(&server), &url, None).expect("WebSocket handshake");
    let welcome = alice.join("alice");
    the_last_answer_arrives(&server, alice, &welcome);
}

#[test]
fn over_a_websocket_inside_tls() {
    let pki = Pki::new();
    let mut flags = pki.flags();
    flags.extend_from_slice(&["--rate", "0"]);
    let server = Server::start(&flags);
    let tls = tls_over(small_window(&server), &pki.ca.client_config(), "localhost")
        .expect("TLS handshake");
    let url = format!("wss://localhost:{}/ws", server.addr().port());
    let origin = format!("https://localhost:{}", server.addr().port());
    let mut alice = ws_over(tls, &url, Some(&origin)).expect("WebSocket handshake");
    let welcome = alice.join("alice");
    the_last_answer_arrives(&server, alice, &welcome);
}
