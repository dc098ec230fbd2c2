//! Connections refused at accept (`server_full`), each answered in what
//! it speaks, told by its first byte as in `edge`: chatproto gets its
//! `error` frame, HTTP a 503 with `Retry-After`, TLS the same inside a
//! finished handshake (when the server has a certificate, at most
//! [`REFUSAL_HANDSHAKES_PER_SEC`]; without one, or past that rate, the
//! `handshake_failure` alert an admitted TLS client of a server without
//! a certificate gets). Every wait is
//! bounded, and so is how many refusals are under way at once, so that
//! connections refused cannot hold what the admitted ones need.

use std::sync::Arc;
use std::time::Duration;

use chatproto::{ErrorCode, ServerFrame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use crate::edge::{say_and_close, NO_TLS_ALERT};
use crate::limits::Refused;

/// The most a refused connection is kept, from accept to close: to say
/// what it speaks, finish a TLS handshake and take its answer.
pub const REFUSAL_TIME: Duration = Duration::from_secs(3);

/// How long a refused connection may take to send its first byte (or,
/// inside TLS, its first byte after the handshake); a silent one is
/// answered in chatproto.
const FIRST_BYTE_WAIT: Duration = Duration::from_millis(500);

/// Refused connections answered at once; past it, the next is closed
/// without an answer.
pub const MAX_REFUSING: usize = 256;

/// Refused TLS connections answered inside a finished handshake, at
/// most, a second (and at once): a handshake costs the server a signature
/// with its key, far more than it costs the client, so refusals coming
/// faster (one address over its connect rate in a loop, say) are answered
/// with the `handshake_failure` alert instead, and cost next to nothing.
pub const REFUSAL_HANDSHAKES_PER_SEC: u32 = 20;

/// The `Retry-After` of the 503 an HTTP client is refused with, in
/// seconds, when the refusal does not say how long (a full server).
const RETRY_AFTER_SECS: u64 = 5;

/// What a refused connection is told, and how.
pub struct Refuser {
    /// TLS, when a certificate was given: a TLS client is refused inside it.
    tls: Option<TlsAcceptor>,
    /// The largest frame, for encoding the chatproto answer.
    max_frame_bytes: usize,
    /// One permit per refusal under way ([`MAX_REFUSING`]).
    slots: Arc<Semaphore>,
    /// TLS handshakes for refusals ([`REFUSAL_HANDSHAKES_PER_SEC`]).
    handshakes: Arc<governor::DefaultDirectRateLimiter>,
}

/// How often, at most, a refused connection is logged: a client at its
/// cap that reconnects in a loop would otherwise write a line per
/// attempt, as fast as it can connect, and fill the log's disk.
pub const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(1);

/// Whether to log a refusal now, at most once per [`REFUSAL_LOG_EVERY`],
/// and how many went unlogged since the last line.
#[derive(Debug)]
pub struct RefusalLog {
    last: Option<std::time::Instant>,
    unlogged: u64,
    /// At most a line this often.
    every: Duration,
}

impl Default for RefusalLog {
    fn default() -> Self {
        Self::new()
    }
}

impl RefusalLog {
    /// Nothing logged yet (for a `static`).
    pub const fn new() -> Self {
        Self::every(REFUSAL_LOG_EVERY)
    }

    /// At most a line every `every`: for other warnings that can repeat
    /// as fast as a client can make them (a store that fails and works
    /// again at every large message, at its size cap).
    pub const fn every(every: Duration) -> Self {
        RefusalLog {
            last: None,
            unlogged: 0,
            every,
        }
    }

    /// A refusal at `now`: `Some(n)` to log it, `n` the refusals left
    /// out since the last line; `None` to count it and log nothing.
    pub fn refused(&mut self, now: std::time::Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|t| now.saturating_duration_since(t) < self.every)
        {
            self.unlogged += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }

    /// How many refusals were counted and not logged since the last line.
    pub fn unlogged(&self) -> u64 {
        self.unlogged
    }

    /// When the refusals counted but not logged are to be logged on their
    /// own, if there are any: a burst that ends is said within
    /// [`REFUSAL_LOG_EVERY`], not only at the next refusal, which may
    /// never come.
    pub fn due(&self) -> Option<std::time::Instant> {
        let last = self.last?;
        (self.unlogged > 0).then(|| last + self.every)
    }

    /// At `now`: `Some(n)` to log that `n` refusals were not logged, if
    /// they are [`RefusalLog::due`] (then a line was logged now, and the
    /// next refusal within [`REFUSAL_LOG_EVERY`] is counted).
    pub fn flush(&mut self, now: std::time::Instant) -> Option<u64> {
        if self.due().is_none_or(|due| now < due) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

/// A refusal at now, counted in `log`, which connection tasks share (a
/// `static`): `Some(n)` to log it, as [`RefusalLog::refused`]. The first
/// one left out since the last line has `say_left_out` called with the
/// count when its interval ends (if no line came first), so a burst that
/// ends is said even if no refusal follows it.
pub fn refused_shared(
    log: &'static std::sync::Mutex<RefusalLog>,
    say_left_out: fn(u64),
) -> Option<u64> {
    let mut guard = log.lock().ok()?;
    let logged = guard.refused(std::time::Instant::now());
    if logged.is_none() && guard.unlogged() == 1 {
        if let Some(due) = guard.due() {
            tokio::spawn(async move {
                tokio::time::sleep_until(due.into()).await;
                let left_out = log
                    .lock()
                    .ok()
                    .and_then(|mut l| l.flush(std::time::Instant::now()));
                if let Some(n) = left_out {
                    say_left_out(n);
                }
            });
        }
    }
    logged
}

/// The protocol a refused connection is answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Chatproto,
    Http,
    Tls,
}

/// What a connection's first byte (`None`: none in time) says to answer
/// it in; the rule of `edge`, silence being chatproto.
fn answer_for(first: Option<u8>) -> Answer {
    match first {
        Some(0x16) => Answer::Tls,
        Some(b'A'..=b'Z') => Answer::Http,
        _ => Answer::Chatproto,
    }
}

/// Why, in words, for `why`: what the client is told (the log says the
/// same, with the cap: `Limits::explain`).
fn reason(why: Refused) -> String {
    match why {
        Refused::Full => "the server has no room for another client; try again later".into(),
        Refused::IpFull => "too many connections from your address; close one and try again".into(),
        Refused::IpTooFast { wait_secs } => {
            let s = if wait_secs == 1 { "" } else { "s" };
            format!(
                "too many new connections from your address; wait {wait_secs} second{s} and try again"
            )
        }
    }
}

/// The 503 an HTTP client is refused with.
fn http_503(why: Refused) -> Vec<u8> {
    let body = format!("{}\n", reason(why));
    let retry = match why {
        Refused::IpTooFast { wait_secs } => wait_secs,
        _ => RETRY_AFTER_SECS,
    };
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nRetry-After: {retry}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl Refuser {
    /// Refuse with TLS inside `tls` when given, frames up to
    /// `max_frame_bytes`.
    pub fn new(tls: Option<TlsAcceptor>, max_frame_bytes: usize) -> Self {
        Refuser {
            tls,
            max_frame_bytes,
            slots: Arc::new(Semaphore::new(MAX_REFUSING)),
            handshakes: Arc::new(governor::RateLimiter::direct(governor::Quota::per_second(
                std::num::NonZeroU32::new(REFUSAL_HANDSHAKES_PER_SEC)
                    .unwrap_or(std::num::NonZeroU32::MIN),
            ))),
        }
    }

    /// Answer `stream` that it is refused for `why`, in a task of its own
    /// that ends within [`REFUSAL_TIME`]; with [`MAX_REFUSING`] under way,
    /// close it at once instead.
    pub fn refuse(&self, stream: TcpStream, why: Refused) {
        let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() else {
            debug!("too many refusals under way; closing without an answer");
            return;
        };
        let (tls, max) = (self.tls.clone(), self.max_frame_bytes);
        let handshakes = Arc::clone(&self.handshakes);
        tokio::spawn(async move {
            let answering = answer(stream, why, tls, &handshakes, max);
            let _ = timeout(REFUSAL_TIME, answering).await;
            drop(permit);
        });
    }
}

/// The first byte `stream` sends, without taking it, within
/// [`FIRST_BYTE_WAIT`].
async fn peek_first(stream: &TcpStream) -> Option<u8> {
    let mut first = [0u8; 1];
    match timeout(FIRST_BYTE_WAIT, stream.peek(&mut first)).await {
        Ok(Ok(1)) => Some(first[0]),
        _ => None,
    }
}

/// Refuse `stream` in what its first byte says it speaks.
async fn answer(
    stream: TcpStream,
    why: Refused,
    tls: Option<TlsAcceptor>,
    handshakes: &governor::DefaultDirectRateLimiter,
    max: usize,
) {
    match answer_for(peek_first(&stream).await) {
        Answer::Tls => {
            let Some(acceptor) = tls else {
                // Told in TLS, as an admitted client is: closing with the
                // ClientHello unread would reset the connection instead.
                debug!("TLS without a certificate; answering handshake_failure");
                return say_and_close(stream, &NO_TLS_ALERT).await;
            };
            if handshakes.check().is_err() {
                debug!("refusals' TLS handshakes at their rate; answering handshake_failure");
                return say_and_close(stream, &NO_TLS_ALERT).await;
            }
            let Ok(mut inner) = acceptor.accept(stream).await else {
                return debug!("TLS handshake of a refused connection failed");
            };
            let mut first = [0u8; 1];
            let first = match timeout(FIRST_BYTE_WAIT, inner.read(&mut first)).await {
                Ok(Ok(1)) => Some(first[0]),
                _ => None,
            };
            // TLS inside TLS is nothing we speak: chatproto says why.
            let inner_answer = match answer_for(first) {
                Answer::Http => Answer::Http,
                _ => Answer::Chatproto,
            };
            say(inner, inner_answer, why, max).await;
        }
        plain => say(stream, plain, why, max).await,
    }
}

/// Tell `stream` it is refused, in `how`, and close it.
async fn say<S: AsyncRead + AsyncWrite + Unpin>(stream: S, how: Answer, why: Refused, max: usize) {
    let bytes = match how {
        Answer::Http => http_503(why),
        _ => {
            let frame = ServerFrame::error(ErrorCode::ServerFull, reason(why));
            match chatproto::encode(&frame, max) {
                Ok(bytes) => bytes.to_vec(),
                Err(_) => return,
            }
        }
    };
    say_and_close(stream, &bytes).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_once_a_second_with_how_many_were_not() {
        let mut log = RefusalLog::default();
        let t0 = std::time::Instant::now();
        assert_eq!(log.refused(t0), Some(0));
        for ms in [1, 10, 999] {
            assert_eq!(log.refused(t0 + Duration::from_millis(ms)), None);
        }
        assert_eq!(log.refused(t0 + Duration::from_millis(1000)), Some(3));
        assert_eq!(log.refused(t0 + Duration::from_millis(1500)), None);
        assert_eq!(log.refused(t0 + Duration::from_millis(5000)), Some(1));
        assert_eq!(log.refused(t0 + Duration::from_millis(9000)), Some(0));
    }

    #[test]
    fn a_burst_of_refusals_is_counted_within_a_second_of_its_first_line() {
        let mut log = RefusalLog::default();
        let t0 = std::time::Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(log.due(), None);
        assert_eq!(log.refused(t0), Some(0));
        // Logged, nothing left out: nothing to say later.
        assert_eq!(log.due(), None);
        for ms in [1, 10, 999] {
            assert_eq!(log.refused(at(ms)), None);
        }
        assert_eq!(log.due(), Some(at(1000)));
        assert_eq!(log.flush(at(999)), None);
        assert_eq!(log.flush(at(1200)), Some(3));
        assert_eq!(log.due(), None);
        assert_eq!(log.flush(at(5000)), None);
        // That line counts as the last: a refusal right after it waits.
        assert_eq!(log.refused(at(1300)), None);
        assert_eq!(log.due(), Some(at(2200)));
        assert_eq!(log.refused(at(2200)), Some(1));
        assert_eq!(log.due(), None);
    }

    #[test]
    fn a_refusal_is_answered_in_what_the_first_byte_says() {
        assert_eq!(answer_for(Some(0x16)), Answer::Tls);
        assert_eq!(answer_for(Some(b'G')), Answer::Http);
        assert_eq!(answer_for(Some(0)), Answer::Chatproto);
        assert_eq!(answer_for(None), Answer::Chatproto);
    }

    #[test]
    fn the_503_is_whole_and_says_when_to_retry() {
        let res = String::from_utf8(http_503(Refused::IpFull)).unwrap();
        let (head, body) = res.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())));
        assert!(head.contains("\r\nRetry-After: 5\r\n"), "{head}");
        assert!(body.contains("your address"), "{body}");
        let res = String::from_utf8(http_503(Refused::IpTooFast { wait_secs: 42 })).unwrap();
        assert!(res.contains("\r\nRetry-After: 42\r\n"), "{res}");
        assert!(res.ends_with("wait 42 seconds and try again\n"), "{res}");
    }
}
