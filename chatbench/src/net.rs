//! One benchmark connection: a socket, its buffers and its wire state.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout_at, Instant};

use crate::wire::{In, Subs, Target, Wire};

/// Read at least this much room at a time: big reads are what keep a
/// one-core load generator ahead of a fan-out server.
const READ_CHUNK: usize = 64 << 10;
/// Idle connections read with a smaller buffer to keep the generator small.
const SMALL_READ_CHUNK: usize = 4 << 10;

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

/// A connected, not yet joined, benchmark member.
#[derive(Debug)]
pub struct Conn {
    /// The socket.
    pub stream: TcpStream,
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
    /// Connect to `addr` (from `source`) and speak `target` on it.
    pub async fn open(
        target: Target,
        addr: SocketAddr,
        source: Option<IpAddr>,
        small: bool,
    ) -> io::Result<Conn> {
        Ok(Conn {
            stream: connect(addr, source).await?,
            rbuf: BytesMut::new(),
            wbuf: Vec::new(),
            wire: Wire::new(target),
            chunk: if small { SMALL_READ_CHUNK } else { READ_CHUNK },
        })
    }

    /// Write everything in `wbuf`.
    pub async fn flush(&mut self) -> io::Result<()> {
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
