//! One benchmark connection: a socket (plain TCP, or TLS over it), its
//! buffers and its wire state; over a WebSocket, after the HTTP upgrade.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout, timeout_at, Instant};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::wire::chat::ChatWire;
use crate::wire::{ws, In, Subs, Target, Wire};

/// Read at least this much room at a time: big reads are what keep a
/// one-core load generator ahead of a fan-out server.
const READ_CHUNK: usize = 64 << 10;
/// Idle connections read with a smaller buffer to keep the generator small.
const SMALL_READ_CHUNK: usize = 4 << 10;
/// The TLS handshake and the WebSocket upgrade, each.
const HANDSHAKE_WITHIN: Duration = Duration::from_secs(30);
/// The longest answer to the WebSocket upgrade we wait for the end of.
const MAX_UPGRADE_ANSWER: usize = 16 << 10;

/// How a connection carries chatproto (chat only; redis and nats: tcp).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Length-prefixed frames on a TCP connection.
    #[default]
    Tcp,
    /// One WebSocket text message per frame, on `GET /ws` (RFC 6455).
    Ws,
    /// Length-prefixed frames inside TLS.
    Tls,
    /// A WebSocket inside TLS.
    Wss,
}

impl Transport {
    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Ws => "ws",
            Transport::Tls => "tls",
            Transport::Wss => "wss",
        }
    }

    /// Inside TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Transport::Tls | Transport::Wss)
    }

    /// Over a WebSocket.
    pub fn is_ws(self) -> bool {
        matches!(self, Transport::Ws | Transport::Wss)
    }
}

/// TLS settings shared by every connection of a run.
#[derive(Clone)]
pub struct TlsDial {
    connector: TlsConnector,
    name: ServerName<'static>,
    /// `--ca-cert`, passed on to child processes.
    pub ca_cert: PathBuf,
    /// `--tls-name` (or the host of `--addr`), passed on to child processes.
    pub name_arg: String,
}

impl std::fmt::Debug for TlsDial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsDial")
            .field("name", &self.name)
            .field("ca_cert", &self.ca_cert)
            .finish_non_exhaustive()
    }
}

/// Where and how to connect: the server's address and the transport, with
/// what it needs. Shared (`Arc`) by every connection of a run.
#[derive(Debug)]
pub struct Endpoint {
    /// The server's address.
    pub addr: SocketAddr,
    /// How chatproto is carried.
    pub transport: Transport,
    /// The `Host` of the WebSocket upgrade (`--addr` as given).
    host: String,
    /// For `tls` and `wss`.
    pub tls: Option<TlsDial>,
    /// The TLS version and cipher suite of the first handshake, for the report.
    negotiated: OnceLock<String>,
}

impl Endpoint {
    /// `transport` to `addr`, written `shown` on the command line. TLS
    /// needs `ca_cert`; the certificate must be for `tls_name`, or else
    /// for the host part of `shown`.
    pub fn new(
        addr: SocketAddr,
        shown: &str,
        transport: Transport,
        ca_cert: Option<PathBuf>,
        tls_name: Option<&str>,
    ) -> Result<Arc<Endpoint>, String> {
        let tls = match (transport.is_tls(), ca_cert) {
            (true, Some(ca_cert)) => {
                let name_arg = tls_name
                    .unwrap_or_else(|| crate::tls::host_of(shown))
                    .to_owned();
                Some(TlsDial {
                    connector: crate::tls::connector(&ca_cert)?,
                    name: crate::tls::server_name(&name_arg)?,
                    ca_cert,
                    name_arg,
                })
            }
            (true, None) => {
                return Err(format!(
                    "--transport {} needs --ca-cert PEM: the CA (or the self-signed \
                     certificate) the server's certificate is checked against",
                    transport.name()
                ))
            }
            (false, _) => None,
        };
        Ok(Arc::new(Endpoint {
            addr,
            transport,
            host: shown.to_owned(),
            tls,
            negotiated: OnceLock::new(),
        }))
    }

    /// The TLS version and cipher suite agreed with the server, once a
    /// connection has made its handshake.
    pub fn negotiated(&self) -> Option<&str> {
        self.negotiated.get().map(String::as_str)
    }
}

/// Connect to `addr`, from `source` if given (any port), with TCP_NODELAY.
pub async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = sock.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A connection's byte stream: the TCP socket itself, or TLS over it. An
/// enum rather than a trait object: plain TCP stays the same calls on the
/// same `TcpStream` as before, behind one branch.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS (boxed: a rustls connection is a few KiB, and idle runs hold
    /// thousands of plain ones).
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Read once into `buf` (plaintext, for TLS); 0 means closed.
    pub async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read_buf(buf).await,
            Stream::Tls(s) => s.read_buf(buf).await,
        }
    }

    /// Write all of `b` (TLS: encrypted and flushed to the socket).
    pub async fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(b).await,
            Stream::Tls(s) => {
                s.write_all(b).await?;
                s.flush().await
            }
        }
    }

    /// Close our sending side (TLS: with a close_notify first).
    pub async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown().await,
            Stream::Tls(s) => s.shutdown().await,
        }
    }

    /// Reset instead of closing when dropped (no TIME_WAIT).
    pub fn set_zero_linger(&self) -> io::Result<()> {
        self.tcp().set_zero_linger()
    }

    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Tcp(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }
}

/// Masking keys: a different sequence for every WebSocket of the process.
fn mask_seed() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    n.wrapping_mul(0x9E37_79B9) ^ std::process::id().rotate_left(16)
}

/// Send the WebSocket upgrade on `stream` and read its answer into `rbuf`;
/// anything after the answer's head stays in `rbuf` (frames already).
async fn upgrade(stream: &mut Stream, rbuf: &mut BytesMut, host: &str) -> io::Result<()> {
    let key = ws::new_key();
    stream.write_all(&ws::request(host, &key)).await?;
    loop {
        if let Some(head) = ws::check_response(rbuf, &key).map_err(io::Error::other)? {
            rbuf.advance(head);
            return Ok(());
        }
        if rbuf.len() > MAX_UPGRADE_ANSWER {
            return Err(io::Error::other(format!(
                "no end to the answer to the WebSocket upgrade in {MAX_UPGRADE_ANSWER} bytes"
            )));
        }
        rbuf.reserve(4096);
        if stream.read_buf(rbuf).await? == 0 {
            return Err(io::Error::other(
                "the server closed the connection during the WebSocket upgrade",
            ));
        }
    }
}

/// A connected, not yet joined, benchmark member.
#[derive(Debug)]
pub struct Conn {
    /// The socket, or TLS over it.
    pub stream: Stream,
    /// Bytes read and not yet decoded.
    pub rbuf: BytesMut,
    /// Bytes to write next.
    pub wbuf: Vec<u8>,
    /// The protocol state.
    pub wire: Wire,
    chunk: usize,
}

/// Why a connection could not join.
#[derive(Debug)]
pub enum JoinError {
    /// The socket failed.
    Io(io::Error),
    /// The server refused (an error frame) or broke its protocol.
    Refused(String),
    /// No answer in time.
    Timeout,
    /// The server closed the connection.
    Closed,
}

impl std::fmt::Display for JoinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JoinError::Io(e) => write!(f, "connection failed: {e}"),
            JoinError::Refused(m) => write!(f, "refused: {m}"),
            JoinError::Timeout => f.write_str("no welcome or subscription confirmation in time"),
            JoinError::Closed => f.write_str("the server closed the connection while joining"),
        }
    }
}

impl Conn {
    /// Connect to `to` (from `source`), make the TLS handshake and the
    /// WebSocket upgrade if its transport has them, and speak `target` on it.
    pub async fn open(
        target: Target,
        to: &Endpoint,
        source: Option<IpAddr>,
        small: bool,
    ) -> io::Result<Conn> {
        let tcp = connect(to.addr, source).await?;
        let mut stream = match &to.tls {
            Some(tls) => {
                let s = timeout(
                    HANDSHAKE_WITHIN,
                    tls.connector.connect(tls.name.clone(), tcp),
                )
                .await
                .map_err(|_| io::Error::other("no TLS handshake in time"))?
                .map_err(|e| io::Error::other(format!("TLS handshake: {e}")))?;
                if to.negotiated.get().is_none() {
                    let c = s.get_ref().1;
                    let _ = to.negotiated.set(format!(
                        "{:?} {:?}",
                        c.protocol_version()
                            .unwrap_or(rustls::ProtocolVersion::Unknown(0)),
                        c.negotiated_cipher_suite()
                            .map(|s| s.suite())
                            .unwrap_or(rustls::CipherSuite::Unknown(0))
                    ));
                }
                Stream::Tls(Box::new(s))
            }
            None => Stream::Tcp(tcp),
        };
        let mut rbuf = BytesMut::new();
        let wire = if to.transport.is_ws() {
            timeout(HANDSHAKE_WITHIN, upgrade(&mut stream, &mut rbuf, &to.host))
                .await
                .map_err(|_| io::Error::other("no answer to the WebSocket upgrade in time"))??;
            Wire::Chat(ChatWire::websocket(mask_seed()))
        } else {
            Wire::new(target)
        };
        Ok(Conn {
            stream,
            rbuf,
            wbuf: Vec::new(),
            wire,
            chunk: if small { SMALL_READ_CHUNK } else { READ_CHUNK },
        })
    }

    /// Close politely: a WebSocket's close frame, TLS's close_notify, then
    /// a FIN.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        if let Wire::Chat(w) = &mut self.wire {
            if let Some(ws) = w.ws_mut() {
                if !ws.is_closed() {
                    ws.put_close(&mut self.wbuf);
                }
            }
        }
        self.flush().await?;
        self.stream.shutdown().await
    }

    /// Write everything in `wbuf`, and what the framing must answer (a
    /// WebSocket's pongs, appended: `wbuf` holds whole frames only).
    pub async fn flush(&mut self) -> io::Result<()> {
        self.wire.take_control(&mut self.wbuf);
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Read once into `rbuf`; 0 means the server closed.
    pub async fn read(&mut self) -> io::Result<usize> {
        if self.rbuf.capacity() - self.rbuf.len() < self.chunk / 2 {
            self.rbuf.reserve(self.chunk);
        }
        self.stream.read_buf(&mut self.rbuf).await
    }

    /// Give back a read buffer that grew for a large frame, once drained:
    /// thousands of idle connections must not each keep a big buffer.
    pub fn trim(&mut self) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > 2 * self.chunk {
            self.rbuf = BytesMut::new();
        }
    }

    /// Join as `nick` (chat) or subscribe (redis, nats) and wait until the
    /// server confirms, answering pings. Returns chat's welcome seq.
    /// Anything that arrives after the confirmation in the same read is
    /// passed to `rest`.
    pub async fn join(
        &mut self,
        nick: &str,
        subs: Subs,
        within: Duration,
        rest: &mut (dyn FnMut(In<'_>) + Send),
    ) -> Result<Option<u64>, JoinError> {
        let deadline = Instant::now() + within;
        self.wire.hello(nick, subs, &mut self.wbuf);
        timeout_at(deadline, self.flush())
            .await
            .map_err(|_| JoinError::Timeout)?
            .map_err(JoinError::Io)?;
        let mut ready: Option<Option<u64>> = None;
        let mut refused: Option<String> = None;
        let mut pings = 0;
        loop {
            let n = timeout_at(deadline, self.read())
                .await
                .map_err(|_| JoinError::Timeout)?
                .map_err(JoinError::Io)?;
            if n == 0 {
                return Err(refused.map(JoinError::Refused).unwrap_or(JoinError::Closed));
            }
            let Conn { wire, rbuf, .. } = self;
            wire.decode(rbuf, &mut |ev| match ev {
                In::Ready { seq } if ready.is_none() => ready = Some(seq),
                In::Error { code, message } if ready.is_none() => {
                    refused.get_or_insert_with(|| format!("{code}: {message}"));
                }
                In::Ping => pings += 1,
                other if ready.is_some() => rest(other),
                _ => {}
            })
            .map_err(|e| JoinError::Refused(e.to_string()))?;
            for _ in 0..std::mem::take(&mut pings) {
                self.wire.pong(&mut self.wbuf);
            }
            if let Some(seq) = ready {
                return Ok(seq);
            }
            if let Some(r) = refused {
                return Err(JoinError::Refused(r));
            }
            timeout_at(deadline, self.flush())
                .await
                .map_err(|_| JoinError::Timeout)?
                .map_err(JoinError::Io)?;
        }
    }
}
