//! Why the client stops, and the exit code for each reason.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | left normally (`/quit`, Ctrl-D, end of input, or with `--stay` SIGINT or SIGTERM), every input line delivered or carried out (and, in the line mode, every room asked for entered) |
//! | 1 | the connection was lost after joining and could not be resumed (every reconnect attempt failed, or `--reconnect-attempts 0`), or the client could not use its stdin/stdout |
//! | 2 | bad command line |
//! | 3 | could not connect: refused, unreachable, name not resolved, or connect timed out |
//! | 4 | the nickname was refused: `nick_taken` or `nick_invalid` (when reconnecting, still at the fifth attempt, or the last if fewer: someone took it meanwhile) |
//! | 5 | the server is full: `server_full` |
//! | 6 | connected but not let in: no `welcome` within the timeout, the server closed, or it answered with another error; or the TLS handshake failed for another reason than the certificate |
//! | 7 | TLS: the server's certificate was not trusted (at start or on a reconnect), or there was nothing to trust it with (no `--ca-cert` and no root certificates in the system's store) |
//! | 8 | left normally, but at least one input line was not delivered: refused by the server (`unknown_nick`, `msg_too_large`, ...) or by the client (an invalid command, a message too large), or still unanswered when a second signal made it leave; or, in the line mode, the server would not let it into a room asked for (`--room`, `/join`: `too_many_rooms`, ...) |
//! | 9 | the session was resumed on another connection: the server closed this one with `resumed_elsewhere` (a client that had the session's token took it over); the client does not reconnect, which would take the session back, and input lines not yet answered are reported unconfirmed |
//! | 130 | Ctrl-C in the terminal: left at once |

use std::process::ExitCode;

use chatproto::{escape_control, ErrorCode};

/// Exit codes, as the table in this module's doc lists them.
pub mod code {
    /// Left normally.
    pub const OK: u8 = 0;
    /// The server ended the session, or local I/O failed.
    pub const DROPPED: u8 = 1;
    /// A bad command line (clap's own exit code for its errors too).
    pub const USAGE: u8 = 2;
    /// Could not connect.
    pub const CONNECT: u8 = 3;
    /// Nickname refused.
    pub const NICK: u8 = 4;
    /// Server full.
    pub const FULL: u8 = 5;
    /// Connected but not let in.
    pub const JOIN: u8 = 6;
    /// TLS: the server's certificate was not trusted.
    pub const UNTRUSTED: u8 = 7;
    /// Left normally, but not every input line was delivered.
    pub const UNDELIVERED: u8 = 8;
    /// The session was resumed on another connection; not reconnected.
    pub const RESUMED_ELSEWHERE: u8 = 9;
    /// Interrupted with Ctrl-C.
    pub const INTERRUPTED: u8 = 130;
}

/// Why connecting and joining failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The address did not resolve.
    #[error("cannot resolve {addr}: {source}; check the host name")]
    Resolve {
        /// The address as given.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// No address accepted the connection.
    #[error("cannot connect to {addr}: {source}; is chatserver running there?")]
    Connect {
        /// The address as given.
        addr: String,
        /// The last address's error.
        source: std::io::Error,
    },
    /// The TCP connection did not complete in time.
    #[error("cannot connect to {addr}: no answer within {secs} s; is the address right?")]
    ConnectTimeout {
        /// The address as given.
        addr: String,
        /// The limit.
        secs: f64,
    },
    /// TLS: the server's certificate did not verify.
    #[error("the certificate of the server at {addr} was not trusted: {why}")]
    Untrusted {
        /// The address as given.
        addr: String,
        /// Why, and what to do.
        why: String,
    },
    /// TLS: the handshake failed for another reason.
    #[error("the TLS handshake with {addr} failed: {source}; does the server speak TLS (chatserver --tls-cert and --tls-key)?")]
    Tls {
        /// The address as given.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// TLS: the handshake did not finish in time.
    #[error("connected to {addr} but the TLS handshake did not finish within {secs} s; does the server speak TLS?")]
    TlsTimeout {
        /// The address as given.
        addr: String,
        /// The limit.
        secs: f64,
    },
    /// Without TLS, the server closed or failed the connection before
    /// letting us in: it may take only TLS.
    #[error("{}", tls_only(why, addr))]
    MaybeTlsOnly {
        /// The address as given.
        addr: String,
        /// What happened.
        why: Box<JoinError>,
    },
    /// The server refused the nickname.
    #[error("cannot join {}: {code}: {message}", joining_as(nick))]
    NickRefused {
        /// The nickname asked for (escaped for printing).
        nick: String,
        /// `nick_taken` or `nick_invalid`.
        code: &'static str,
        /// The server's explanation (escaped for printing).
        message: String,
    },
    /// The server has no room.
    #[error("cannot join: server_full: {message}")]
    ServerFull {
        /// The server's explanation (escaped for printing).
        message: String,
    },
    /// The server answered `join` with another error.
    #[error("cannot join: {code}: {message}")]
    Refused {
        /// The error code.
        code: &'static str,
        /// The server's explanation (escaped for printing).
        message: String,
    },
    /// Connected, but no `welcome` in time.
    #[error(
        "connected to {addr} but it did not answer the join within {secs} s; {}",
        silence_hint(.answered_before)
    )]
    Timeout {
        /// The address as given.
        addr: String,
        /// The limit.
        secs: f64,
        /// A server reached before answered a join of this client's: it
        /// is stalled or overloaded, not something else on the port.
        answered_before: bool,
    },
    /// The server closed the connection before `welcome`.
    #[error("the server closed the connection before letting us in")]
    Closed,
    /// The connection failed while joining.
    #[error("the connection failed while joining: {0}")]
    Io(std::io::Error),
    /// The server sent something that is not the chat protocol.
    #[error("the server does not speak the chat protocol: {0}")]
    Protocol(String),
}

impl JoinError {
    /// The server sent something that is not the chat protocol: `why`,
    /// escaped, as it may quote what the server sent.
    pub fn protocol(why: impl std::fmt::Display) -> JoinError {
        JoinError::Protocol(escape_control(&why.to_string()).into_owned())
    }

    /// The error for an `error` frame that answered our `join`.
    pub fn refused(code: ErrorCode, message: &str, nick: &str) -> JoinError {
        let message = escape_control(message).into_owned();
        match code {
            ErrorCode::NickTaken | ErrorCode::NickInvalid => JoinError::NickRefused {
                nick: escape_control(nick).into_owned(),
                code: code.as_str(),
                message,
            },
            ErrorCode::ServerFull => JoinError::ServerFull { message },
            _ => JoinError::Refused {
                code: code.as_str(),
                message,
            },
        }
    }

    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            JoinError::Resolve { .. }
            | JoinError::Connect { .. }
            | JoinError::ConnectTimeout { .. } => code::CONNECT,
            JoinError::NickRefused { .. } => code::NICK,
            JoinError::Untrusted { .. } => code::UNTRUSTED,
            JoinError::MaybeTlsOnly { why, .. } => why.exit_code(),
            JoinError::ServerFull { .. } => code::FULL,
            JoinError::Refused { .. }
            | JoinError::Timeout { .. }
            | JoinError::Tls { .. }
            | JoinError::TlsTimeout { .. }
            | JoinError::Closed
            | JoinError::Io(_)
            | JoinError::Protocol(_) => code::JOIN,
        }
    }
}

/// A plain connection refused or closed before the join, and what to do:
/// the server may take only TLS, or (a `bad_frame` from chatserver
/// `--tls-only`) has just said so. Then its words (a hint with
/// placeholders, for any client) give way to ours, which name the address
/// given: said once, and without "if", which would be out of place.
fn tls_only(why: &JoinError, addr: &str) -> String {
    match why {
        JoinError::Refused {
            code: "bad_frame",
            message,
        } if message.contains("TLS") => format!(
            "cannot join: this server takes TLS only; use --tls or write the address as tls://{addr}"
        ),
        _ => format!(
            "{why}; is chatserver listening on that port? If it takes only TLS, use --tls or \
             write the address as tls://{addr}"
        ),
    }
}

/// Print `message` as the one line on stderr and give `code` back as the exit code.
pub fn fail(message: impl std::fmt::Display, code: u8) -> ExitCode {
    // One write: stderr is unbuffered, and its line must not be cut by
    // stdout's when both go to one file.
    use std::io::Write;
    // Escaped: a reason may quote what a server sent (a serde error names
    // the value it could not read), which must not reach the terminal raw.
    let line = format!("chatclient: {}\n", escape_control(&message.to_string()));
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    ExitCode::from(code)
}

/// Whom a refused join was for: `as alice`, or, for an empty nickname
/// (which would read `cannot join as : ...`), say so.
fn joining_as(nick: &str) -> String {
    if nick.is_empty() {
        "with an empty nickname".to_owned()
    } else {
        format!("as {nick}")
    }
}

/// What a join left unanswered suggests: a server that answered this
/// client before is stalled or overloaded; otherwise the port may not be
/// a chatserver's.
fn silence_hint(answered_before: &bool) -> &'static str {
    if *answered_before {
        "it answered before, so it is stalled or overloaded"
    } else {
        "is it a chatserver?"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_that_said_it_takes_only_tls_is_not_doubted() {
        let said = JoinError::MaybeTlsOnly {
            addr: "chat.lan:7878".into(),
            why: Box::new(JoinError::refused(
                ErrorCode::BadFrame,
                "this server takes TLS only: connect again with TLS (chatclient --tls, or tls://HOST:PORT)",
                "alice",
            )),
        };
        assert_eq!(
            said.to_string(),
            "cannot join: this server takes TLS only; use --tls or write the address as \
             tls://chat.lan:7878"
        );
        let closed = JoinError::MaybeTlsOnly {
            addr: "chat.lan:7878".into(),
            why: Box::new(JoinError::Closed),
        };
        assert_eq!(
            closed.to_string(),
            "the server closed the connection before letting us in; is chatserver listening \
             on that port? If it takes only TLS, use --tls or write the address as \
             tls://chat.lan:7878"
        );
    }

    /// A server that answered this client before and then leaves a join
    /// unanswered is stalled, not something else on the port.
    #[test]
    fn a_join_unanswered_by_a_server_that_answered_before_says_it_is_stalled() {
        let silent = |answered_before| JoinError::Timeout {
            addr: "127.0.0.1:7".into(),
            secs: 4.0,
            answered_before,
        };
        assert_eq!(
            silent(true).to_string(),
            "connected to 127.0.0.1:7 but it did not answer the join within 4 s; it answered \
             before, so it is stalled or overloaded"
        );
        assert!(silent(false).to_string().ends_with("; is it a chatserver?"));
    }

    #[test]
    fn a_refused_empty_nickname_is_said_in_words() {
        let refused = |nick: &str| JoinError::NickRefused {
            nick: nick.into(),
            code: "nick_invalid",
            message: "a nickname is 1 to 32 characters".into(),
        };
        assert_eq!(
            refused("").to_string(),
            "cannot join with an empty nickname: nick_invalid: a nickname is 1 to 32 characters"
        );
        assert!(refused("bo b")
            .to_string()
            .starts_with("cannot join as bo b: "));
    }
}
