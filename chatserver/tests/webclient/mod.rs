//! Clients for the server's other ways in, for `web.rs` and `tls.rs`: a
//! bare HTTP/1.1 request, a WebSocket carrying chatproto (one JSON payload
//! per text message), chatproto frames over TLS, and certificates made in
//! memory. All blocking, every read bounded by a deadline, like `common`.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

use crate::common::{frame_bytes, is_presence, kind, Next, WAIT};

// ---------------------------------------------------------------------
// Sockets: plain TCP or TLS, with the TCP socket underneath for timeouts.
// ---------------------------------------------------------------------

/// chatproto, HTTP or a WebSocket over TLS.
pub type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A byte stream with a TCP socket under it.
pub trait Socket: Read + Write {
    /// The TCP socket, for its timeouts.
    fn tcp(&self) -> &TcpStream;
}

impl Socket for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Socket for Tls {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// A TCP connection to `addr` whose reads and writes give up after [`WAIT`].
pub fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect to chatserver");
    s.set_nodelay(true).expect("TCP_NODELAY");
    s.set_read_timeout(Some(WAIT)).expect("read timeout");
    s.set_write_timeout(Some(WAIT)).expect("write timeout");
    s
}

/// Whether an I/O error only means that the deadline passed.
fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Whether an I/O error means that the peer closed or reset the connection
/// (a TLS peer that closes without close_notify is an unexpected EOF).
fn ended(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

// ---------------------------------------------------------------------
// Certificates.
// ---------------------------------------------------------------------

/// A certificate authority made for one test.
pub struct Ca {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Ca {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().expect("CA key");
        let issuer = rcgen::CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        Ca { issuer }
    }

    /// A leaf certificate for `localhost` and 127.0.0.1 signed by this CA,
    /// with its key.
    pub fn leaf(&self) -> (rcgen::Certificate, rcgen::KeyPair) {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let mut params = rcgen::CertificateParams::new(names).expect("leaf params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "chatserver test");
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        (cert, key)
    }

    /// A client configuration that trusts this CA only (ring, as the server).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::clone(self.issuer.der()))
            .expect("add the CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

/// A CA, and a certificate chain (leaf, CA) and key in PEM files for the
/// server's `--tls-cert` and `--tls-key`.
pub struct Pki {
    /// The CA that signed the server's certificate.
    pub ca: Ca,
    /// Holds the files.
    pub dir: tempfile::TempDir,
    /// The chain, leaf first.
    pub cert: PathBuf,
    /// The leaf's key.
    pub key: PathBuf,
}

impl Pki {
    /// A new CA and a leaf for `localhost` and 127.0.0.1, written out.
    pub fn new() -> Pki {
        let ca = Ca::new("chatserver test CA");
        let (leaf, key) = ca.leaf();
        let dir = tempfile::tempdir().expect("temporary directory");
        let cert = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert, format!("{}{}", leaf.pem(), ca.issuer.pem())).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        Pki {
            ca,
            dir,
            cert,
            key: key_path,
        }
    }

    /// `--tls-cert CERT --tls-key KEY`.
    pub fn flags(&self) -> Vec<&str> {
        vec![
            "--tls-cert",
            self.cert.to_str().expect("UTF-8 path"),
            "--tls-key",
            self.key.to_str().expect("UTF-8 path"),
        ]
    }
}

/// A finished TLS handshake with `addr`, checking the server is `name`
/// (`localhost` or `127.0.0.1`) by `config`'s roots; the error if it fails.
pub fn tls_connect(addr: SocketAddr, config: &Arc<ClientConfig>, name: &str) -> io::Result<Tls> {
    tls_over(tcp(addr), config, name)
}

/// A finished TLS handshake on `sock`, a TCP connection already open, as
/// [`tls_connect`] makes one.
pub fn tls_over(mut sock: TcpStream, config: &Arc<ClientConfig>, name: &str) -> io::Result<Tls> {
    let name = ServerName::try_from(name.to_owned()).expect("a server name");
    let mut conn = ClientConnection::new(Arc::clone(config), name).expect("a TLS client");
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)?;
    }
    Ok(StreamOwned::new(conn, sock))
}

// ---------------------------------------------------------------------
// HTTP/1.1, just enough to read one response.
// ---------------------------------------------------------------------

/// Read `s` until the server closes it, at most [`WAIT`]; what came.
pub fn read_to_close<S: Read>(s: &mut S) -> Vec<u8> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if ended(&e) => return got,
            Err(e) => panic!("not closed within {WAIT:?}: {e}"),
        }
    }
}

/// One HTTP response.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body (none for HEAD).
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (lower case), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("a UTF-8 body")
    }
}

/// Send `method path` with `Host: host` and `Connection: close` on `s`,
/// and read the response; the I/O error if the server closes first.
pub fn request<S: Read + Write>(
    s: &mut S,
    method: &str,
    path: &str,
    host: &str,
) -> io::Result<Response> {
    let head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes())?;
    s.flush()?;
    read_response(s, method == "HEAD")
}

/// Send `head` (a request line and headers, each ending in CRLF, without
/// the final empty line) as it is, and read the response head.
pub fn raw_request<S: Read + Write>(s: &mut S, head: &str) -> io::Result<Response> {
    s.write_all(head.as_bytes())?;
    s.write_all(b"\r\n")?;
    s.flush()?;
    read_response(s, true)
}

/// `GET path` over plain HTTP.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(&mut tcp(addr), "GET", path, &addr.to_string())
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn read_response<S: Read>(s: &mut S, head_only: bool) -> io::Result<Response> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match s.read(&mut chunk)? {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "closed before a whole response head; got {:?}",
                        String::from_utf8_lossy(&buf)
                    ),
                ))
            }
            n => buf.extend_from_slice(&chunk[..n]),
        }
        assert!(buf.len() < 64 * 1024, "a response head over 64 KiB");
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, head.clone()))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse::<usize>().expect("a numeric Content-Length"));
    if head_only {
        body.clear();
    } else if let Some(len) = length {
        while body.len() < len {
            match s.read(&mut chunk)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => body.extend_from_slice(&chunk[..n]),
            }
        }
        body.truncate(len);
    } else {
        // No length: the body ends with the connection.
        loop {
            match s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
                Err(e) if ended(&e) => break,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

// ---------------------------------------------------------------------
// A WebSocket carrying chatproto.
// ---------------------------------------------------------------------

/// What the next read of a WebSocket brought.
#[derive(Debug)]
pub enum WsNext {
    /// A text message, parsed as JSON.
    Frame(Value),
    /// A binary message (the server never sends one).
    Binary(Vec<u8>),
    /// A pong, with its payload (the answer to [`Ws::send_ping`]).
    Pong(Vec<u8>),
    /// The connection ended: with the server's close code if it sent a
    /// close frame, `None` if the connection just ended.
    Closed(Option<u16>),
    /// Nothing arrived before the deadline.
    TimedOut,
}

/// A WebSocket client speaking chatproto.
pub struct Ws<S: Socket> {
    ws: WebSocket<S>,
}

/// Open `ws://addr/ws` with `origin` as the `Origin` header (none if `None`).
pub fn ws_try(addr: SocketAddr, origin: Option<&str>) -> Result<Ws<TcpStream>, tungstenite::Error> {
    ws_over(tcp(addr), &format!("ws://{addr}/ws"), origin)
}

/// Open `ws://addr/ws` without an `Origin`, or fail the test.
pub fn ws_connect(addr: SocketAddr) -> Ws<TcpStream> {
    ws_try(addr, None).unwrap_or_else(|e| panic!("WebSocket to {addr}: {e}"))
}

/// A WebSocket handshake for `url` on `stream` (TCP, or TLS for `wss://`).
pub fn ws_over<S: Socket>(
    stream: S,
    url: &str,
    origin: Option<&str>,
) -> Result<Ws<S>, tungstenite::Error> {
    let mut req = url.into_client_request()?;
    if let Some(origin) = origin {
        let value = HeaderValue::from_str(origin).expect("an Origin header value");
        req.headers_mut().insert("origin", value);
    }
    match tungstenite::client::client(req, stream) {
        Ok((ws, res)) => {
            assert_eq!(res.status().as_u16(), 101, "{res:?}");
            Ok(Ws { ws })
        }
        Err(HandshakeError::Failure(e)) => Err(e),
        Err(HandshakeError::Interrupted(_)) => panic!("no WebSocket handshake within {WAIT:?}"),
    }
}

impl<S: Socket> Ws<S> {
    /// Send `text` as one text message.
    pub fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text))
            .expect("send a text message");
    }

    /// Send `frame` as one text message of compact JSON.
    pub fn send_frame(&mut self, frame: &Value) {
        self.send_text(&frame.to_string());
    }

    /// Send `bytes` as one binary message.
    pub fn send_binary(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::binary(bytes.to_vec()))
            .expect("send a binary message");
    }

    /// Send a WebSocket ping with `payload` (at most 125 bytes).
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), tungstenite::Error> {
        self.ws.send(Message::Ping(payload.to_vec().into()))
    }

    /// The TCP socket underneath, for its options.
    pub fn tcp(&self) -> &TcpStream {
        self.ws.get_ref().tcp()
    }

    /// Write `bytes` to the connection as they are, beside the WebSocket
    /// (for frames the WebSocket library refuses to make).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let s = self.ws.get_mut();
        s.write_all(bytes).expect("write to server");
        s.flush().expect("flush");
    }

    /// Read until a message, the end of the connection, or `within`.
    pub fn next_within(&mut self, within: Duration) -> WsNext {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return WsNext::TimedOut;
            }
            self.ws
                .get_ref()
                .tcp()
                .set_read_timeout(Some(left))
                .expect("read timeout");
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let frame = serde_json::from_str(t.as_str()).unwrap_or_else(|e| {
                        panic!("server sent a text message that is not JSON ({e}): {t:?}")
                    });
                    return WsNext::Frame(frame);
                }
                Ok(Message::Binary(b)) => return WsNext::Binary(b.to_vec()),
                Ok(Message::Close(f)) => return WsNext::Closed(f.map(|f| u16::from(f.code))),
                Ok(Message::Pong(p)) => return WsNext::Pong(p.to_vec()),
                Ok(Message::Ping(_) | Message::Frame(_)) => {}
                Err(tungstenite::Error::Io(e)) if timed_out(&e) => return WsNext::TimedOut,
                Err(tungstenite::Error::Io(e)) if ended(&e) => return WsNext::Closed(None),
                Err(
                    tungstenite::Error::ConnectionClosed
                    | tungstenite::Error::AlreadyClosed
                    | tungstenite::Error::Protocol(
                        tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                    ),
                ) => return WsNext::Closed(None),
                Err(e) => panic!("WebSocket read: {e}"),
            }
        }
    }

    /// The next event, waiting at most [`WAIT`].
    pub fn next(&mut self) -> WsNext {
        self.next_within(WAIT)
    }

    /// The next message; anything else fails the test.
    pub fn recv_frame(&mut self) -> Value {
        match self.next() {
            WsNext::Frame(f) => f,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// The next message, which must be of type `ty`.
    pub fn expect_kind(&mut self, ty: &str) -> Value {
        let frame = self.recv_frame();
        assert_eq!(kind(&frame), ty, "expected a {ty} frame, got {frame}");
        frame
    }

    /// The next message, which must be an error with `code`; its message.
    pub fn expect_error(&mut self, code: &str) -> String {
        let frame = self.expect_kind("error");
        assert_eq!(frame["code"], code, "wrong error: {frame}");
        let message = frame["message"].as_str().expect("error message").to_owned();
        assert!(!message.is_empty(), "error without a message: {frame}");
        message
    }

    /// The connection must end now, with no message before; the close code.
    pub fn expect_closed(&mut self) -> Option<u16> {
        match self.next() {
            WsNext::Closed(code) => code,
            other => panic!("expected the WebSocket to close, got {other:?}"),
        }
    }

    /// The server's close frame, which must come next (pings and pongs
    /// aside): its code and reason.
    pub fn expect_close_frame(&mut self) -> (u16, String) {
        loop {
            match self.ws.read() {
                Ok(Message::Close(Some(f))) => return (u16::from(f.code), f.reason.to_string()),
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                other => panic!("expected the server's close frame, got {other:?}"),
            }
        }
    }

    /// Join as `nick`: the welcome, then its own online presence. Returns
    /// the welcome.
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

    /// Send a chatproto `ping`; the very next message must be the `pong`.
    pub fn ping_pong(&mut self) {
        self.send_frame(&json!({"type": "ping"}));
        self.expect_kind("pong");
    }

    /// Close from our side and read until the server's close (bounded);
    /// the code of the server's close frame, if it sent one.
    pub fn close(mut self) -> Option<u16> {
        let _ = self.ws.close(None);
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let WsNext::Closed(code) = self.next_within(deadline - Instant::now()) {
                return code;
            }
        }
        panic!("the server did not close the WebSocket within {WAIT:?}");
    }
}

impl Ws<Tls> {
    /// End the TLS stream under the WebSocket without a close frame: TLS
    /// close_notify if `notify`, then TCP FIN; reading goes on.
    pub fn end_tls(&mut self, notify: bool) {
        let s = self.ws.get_mut();
        if notify {
            s.conn.send_close_notify();
            while s.conn.wants_write() {
                s.conn.write_tls(&mut s.sock).expect("write close_notify");
            }
        }
        s.sock
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown(Write)");
    }
}

/// A client's WebSocket frame: FIN, `opcode`, masked with `mask` as a
/// client must (RFC 6455 5.3); payloads under 126 bytes only.
pub fn masked_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    assert!(payload.len() < 126, "short frames only");
    let mut out = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

// ---------------------------------------------------------------------
// chatproto frames over TLS.
// ---------------------------------------------------------------------

/// A chatproto client over any socket (TLS here; `common::Client` is TCP).
pub struct Framed<S: Socket> {
    s: S,
    buf: Vec<u8>,
}

impl<S: Socket> Framed<S> {
    /// Wrap a connected stream.
    pub fn new(s: S) -> Framed<S> {
        Framed { s, buf: Vec::new() }
    }

    /// Write `frame` as one length-prefixed frame of compact JSON.
    pub fn send_frame(&mut self, frame: &Value) {
        self.s
            .write_all(&frame_bytes(frame.to_string().as_bytes()))
            .expect("write to server");
        self.s.flush().expect("flush");
    }

    /// Write `bytes` as they are (several frames in one write, say).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write to server");
        self.s.flush().expect("flush");
    }

    /// End the stream the way many clients do: the TCP connection's
    /// sending side closes, with no TLS close_notify before it.
    pub fn shutdown_write(&mut self) {
        self.s
            .tcp()
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
    }

    /// Read until a whole frame, the end, or `within`.
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
            self.s
                .tcp()
                .set_read_timeout(Some(left))
                .expect("read timeout");
            match self.s.read(&mut chunk) {
                Ok(0) => return Next::Eof,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if timed_out(&e) => return Next::TimedOut,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Next::Eof,
                Err(e) if ended(&e) => return Next::Reset,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read from server: {e}"),
            }
        }
    }

    /// The next frame; anything else fails the test.
    pub fn recv_frame(&mut self) -> Value {
        match self.next_within(WAIT) {
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

    /// Join as `nick`: the welcome, then its own online presence.
    pub fn join(&mut self, nick: &str) -> Value {
        self.send_frame(&json!({"type": "join", "nick": nick}));
        let welcome = self.expect_kind("welcome");
        assert_eq!(welcome["nick"], nick, "welcome for the wrong nick");
        let presence = self.recv_frame();
        assert!(is_presence(&presence, nick, "online"), "{presence}");
        welcome
    }

    fn take_frame(&mut self) -> Option<Value> {
        let head: [u8; 4] = self.buf.get(..4)?.try_into().ok()?;
        let len = u32::from_be_bytes(head) as usize;
        assert!(
            (1..=1 << 20).contains(&len),
            "server sent a frame header of {len} bytes"
        );
        let payload = self.buf.get(4..4 + len)?;
        let frame = serde_json::from_slice(payload).expect("a JSON payload");
        self.buf.drain(..4 + len);
        Some(frame)
    }
}

impl Framed<Tls> {
    /// Say we are done (TLS close_notify, then TCP FIN); reading goes on.
    pub fn finish_writing(&mut self) {
        self.s.conn.send_close_notify();
        while self.s.conn.wants_write() {
            self.s
                .conn
                .write_tls(&mut self.s.sock)
                .expect("write close_notify");
        }
        self.s
            .sock
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown(Write)");
    }
}
