//! Opening a connection and joining: the addresses tried in turn, each
//! connected (and its TLS handshake made) and the join handshake made on
//! it within the timeout, then the joined connection's halves set going.

use std::sync::atomic::AtomicBool;

use bytes::BytesMut;
use chatproto::{encode, Decoded, FrameDecoder, PayloadError, ServerFrame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant};

use super::{write_loop, Clock, Config, Link, Reader, WRITE_QUEUE};
use crate::error::JoinError;
use crate::reconnect::{random_u64, Pass};
use crate::render::Line;
use crate::session::{Action, Session};

/// Connect and join: the addresses given (several: the nodes of a
/// cluster) are tried in turn from a random one (or `config.first`), each within
/// `config.timeout`, as [`Pass`] says: past a connection that fails, a
/// node that closes it, one that answers nothing in time, and one that
/// refuses the join for reasons of its own (each said in `held`), until
/// one lets us in. Every action the session asks for up to the end of the
/// handshake, other than sending, is put in `held`, in order, for the
/// caller to carry out; what the session asks after that waits in it.
pub async fn dial(
    config: &Config,
    clock: &Clock,
    session: &mut Session,
    held: &mut Vec<Action>,
) -> Result<Link, JoinError> {
    let start = config.first.map_or_else(random_u64, |i| i as u64);
    let mut pass = Pass::new(&config.addr, start);
    let failure = loop {
        let Some(addr) = pass.next() else {
            break pass.failure();
        };
        // Where what this address's attempt shows begins.
        let shown_from = held.len();
        let e = match dial_one(config, &addr, clock, session, held).await {
            Ok(link) => return Ok(link),
            Err(e) => e,
        };
        let note = match pass.failed(e) {
            Ok(note) => note,
            Err(e) => break e,
        };
        // Offline again (after a join refused there, that connection is
        // over), as between two reconnect attempts.
        session.handle_disconnected();
        while let Some(action) = session.poll() {
            // Offline, the core sends nothing; the rest is shown.
            if !matches!(action, Action::Send(_)) {
                held.push(action);
            }
        }
        // The note that the pass goes on comes first, then what the node
        // sent (with --json, the `error` frame that refused the join, as
        // its reason): the text mode shows the note alone, and that
        // frame ahead of it read as the client failing there.
        if let Some(note) = note {
            held.insert(shown_from, Action::Print(Line::Info(note)));
        }
    };
    Err(match (&config.tls, failure) {
        // A server that takes only TLS refuses a plain connection
        // (`bad_frame`, saying so) or, if older, just closes it: said when
        // the pass failed so (every node reached closed the connection,
        // see `Pass`). The advice names the addresses as given. Once a
        // connection there was let in, only if the server said so: they
        // speak chatproto, and a reconnect cut while joining is no sign
        // of TLS.
        (
            None,
            e @ (JoinError::Closed
            | JoinError::Io(_)
            | JoinError::Refused {
                code: "bad_frame", ..
            }),
        ) if !session.ever_joined() || said_tls_only(&e) => JoinError::MaybeTlsOnly {
            addr: config.addr.clone(),
            why: Box::new(e),
        },
        (_, e) => e,
    })
}

/// Whether a join was refused by a server that said it takes TLS only.
fn said_tls_only(e: &JoinError) -> bool {
    matches!(e, JoinError::Refused { code: "bad_frame", message } if message.contains("TLS"))
}

/// Connect to `addr` and join, all within `config.timeout`.
async fn dial_one(
    config: &Config,
    addr: &str,
    clock: &Clock,
    session: &mut Session,
    held: &mut Vec<Action>,
) -> Result<Link, JoinError> {
    let deadline = Instant::now() + config.timeout;
    let secs = config.timeout.as_secs_f64();
    let stream = timeout_at(deadline, connect_one(addr))
        .await
        .map_err(|_| JoinError::ConnectTimeout {
            addr: addr.to_owned(),
            secs,
        })??;
    // Chat lines are small and latency matters more than packet count.
    let _ = stream.set_nodelay(true);
    let Some(tls) = &config.tls else {
        let mut stream = stream;
        let (rbuf, decoder) =
            join(config, addr, clock, session, held, &mut stream, deadline).await?;
        let (reader, half) = stream.into_split();
        return Ok(Link::start(Box::new(reader), half, rbuf, decoder));
    };
    let mut stream = timeout_at(deadline, tls.connect(addr, stream))
        .await
        .map_err(|_| JoinError::TlsTimeout {
            addr: addr.to_owned(),
            secs,
        })??;
    let (rbuf, decoder) = join(config, addr, clock, session, held, &mut stream, deadline).await?;
    let (reader, half) = tokio::io::split(stream);
    Ok(Link::start(Box::new(reader), half, rbuf, decoder))
}

impl Link {
    /// A joined connection: `reader` is read here, `writer` is given to a
    /// task of its own; `rbuf` holds what was read and not decoded yet.
    pub(super) fn start(
        reader: Reader,
        writer: impl AsyncWrite + Send + Unpin + 'static,
        rbuf: BytesMut,
        decoder: FrameDecoder,
    ) -> Link {
        let (wtx, wrx) = mpsc::channel(WRITE_QUEUE);
        let writer = tokio::spawn(write_loop(writer, wrx));
        Link {
            reader,
            rbuf,
            decoder,
            wtx,
            writer,
            stalled: AtomicBool::new(false),
            notice_last: false,
        }
    }
}

/// The join handshake over `stream` (to `addr`), by `deadline`; what was
/// read past it, and the decoder, to carry on with.
async fn join<S: AsyncRead + AsyncWrite + Unpin>(
    config: &Config,
    addr: &str,
    clock: &Clock,
    session: &mut Session,
    held: &mut Vec<Action>,
    stream: &mut S,
    deadline: Instant,
) -> Result<(BytesMut, FrameDecoder), JoinError> {
    let answered_before = session.ever_joined();
    let timed_out = || JoinError::Timeout {
        addr: addr.to_owned(),
        secs: config.timeout.as_secs_f64(),
        answered_before,
    };
    session.handle_connected(clock.now());
    let mut decoder = FrameDecoder::new(config.max_frame_bytes);
    let mut rbuf = BytesMut::with_capacity(4096);
    loop {
        while let Some(action) = session.poll() {
            match action {
                Action::Send(frame) => {
                    let bytes =
                        encode(&frame, config.max_frame_bytes).map_err(JoinError::protocol)?;
                    timeout_at(deadline, async {
                        stream.write_all(&bytes).await?;
                        // TLS holds what is written until flushed.
                        stream.flush().await
                    })
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(JoinError::Io)?;
                }
                Action::Refused { code, message } => {
                    return Err(JoinError::refused(code, &message, session.nick()))
                }
                Action::Joined => {
                    held.push(Action::Joined);
                    return Ok((rbuf, decoder));
                }
                other => held.push(other),
            }
        }
        // One frame at a time, so that what it asks is done before the next.
        match decoder.decode::<ServerFrame>(&mut rbuf) {
            Decoded::Frame(frame) => {
                session.handle_frame(clock.now(), frame);
                continue;
            }
            // A kind a later server added: ignored (PROTOCOL.md section 2).
            Decoded::Invalid(PayloadError::UnknownKind { .. }) => continue,
            Decoded::Invalid(e) => return Err(JoinError::protocol(e)),
            Decoded::Broken(e) => return Err(JoinError::protocol(e)),
            Decoded::Incomplete => {}
        }
        let n = timeout_at(deadline, stream.read_buf(&mut rbuf))
            .await
            .map_err(|_| timed_out())?
            .map_err(JoinError::Io)?;
        if n == 0 {
            return Err(JoinError::Closed);
        }
    }
}

/// Resolve `addr` and connect to the first address that answers.
async fn connect_one(addr: &str) -> Result<TcpStream, JoinError> {
    let addrs: Vec<_> = tokio::net::lookup_host(addr)
        .await
        .map_err(|source| JoinError::Resolve {
            addr: addr.to_owned(),
            source,
        })?
        .collect();
    let mut last = None;
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(JoinError::Connect {
        addr: addr.to_owned(),
        source: last.unwrap_or_else(|| std::io::Error::other("the name resolved to no address")),
    })
}
