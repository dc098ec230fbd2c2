//! nats-server core pub/sub, its text protocol written and parsed by hand.
//!
//! Client: `CONNECT {json}`, `SUB <subject> <sid>`, `PUB <subject> <n>` +
//! payload, `PING`, `PONG`. Server: `INFO {json}`, `MSG <subject> <sid>
//! [reply-to] <n>` + payload, `PING`, `PONG`, `+OK`, `-ERR '...'`. Every
//! line ends in CRLF. With `echo` on (the default), a connection subscribed
//! to a subject receives its own publications: that copy is a publisher's ack
//! in the room workloads. A server answers `PING`s in order after everything
//! sent before them, so a `PONG` is the ack of a private message.

use std::borrow::Cow;

use bytes::BytesMut;

use super::{channel, consume, Delivery, Dest, In, Subs, ToList, WireError};

/// nats-server's own default limit on a control line.
const MAX_CONTROL_LINE: usize = 4096;
/// nats-server's default max_payload is 1 MiB; allow more, but not without bound.
const MAX_PAYLOAD: usize = 64 << 20;

const CONNECT: &[u8] = b"CONNECT {\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\
\"name\":\"chatbench\",\"lang\":\"rust\",\"version\":\"0.1.0\",\"protocol\":1,\"echo\":true}\r\n";

/// One nats connection's state.
#[derive(Debug, Default)]
pub struct NatsWire {
    ready: bool,
}

impl NatsWire {
    /// A fresh connection.
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn hello(&mut self, nick: &str, subs: Subs, out: &mut Vec<u8>) {
        out.extend_from_slice(CONNECT);
        if subs.room {
            out.extend_from_slice(b"SUB room 1\r\n");
        }
        if subs.own {
            out.extend_from_slice(format!("SUB {} 2\r\n", channel(Dest::Member(nick))).as_bytes());
        }
        // The first PONG says the server has processed the subscriptions.
        out.extend_from_slice(b"PING\r\n");
    }

    pub(super) fn publish(
        &mut self,
        dest: Dest<'_>,
        text: &str,
        want_ack: bool,
        out: &mut Vec<u8>,
    ) {
        out.extend_from_slice(format!("PUB {} {}\r\n", channel(dest), text.len()).as_bytes());
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
        if want_ack {
            out.extend_from_slice(b"PING\r\n");
        }
    }

    pub(super) fn decode(
        &mut self,
        buf: &mut BytesMut,
        f: &mut dyn FnMut(In<'_>),
    ) -> Result<(), WireError> {
        consume(buf, |rest| {
            Ok(parse(rest)?.map(|(op, n)| {
                f(self.event(op));
                n
            }))
        })
    }

    fn event<'a>(&mut self, op: Op<'a>) -> In<'a> {
        match op {
            Op::Msg(payload) => In::Msg(Delivery {
                seq: None,
                from: None,
                to: ToList::Raw(b""),
                text: Cow::Borrowed(payload),
            }),
            Op::Ping => In::Ping,
            Op::Pong if !self.ready => {
                self.ready = true;
                In::Ready { seq: None }
            }
            Op::Pong => In::Ack,
            Op::Err(e) => In::Error {
                code: Cow::Borrowed("ERR"),
                message: String::from_utf8_lossy(e),
            },
            Op::Other => In::Other,
        }
    }
}

/// One server operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op<'a> {
    /// `MSG`/`HMSG`: the payload (headers skipped).
    Msg(&'a [u8]),
    /// `PING`
    Ping,
    /// `PONG`
    Pong,
    /// `-ERR`: its text.
    Err(&'a [u8]),
    /// `INFO`, `+OK`.
    Other,
}

fn size(tok: &[u8]) -> Result<usize, WireError> {
    std::str::from_utf8(tok)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&n| n <= MAX_PAYLOAD)
        .ok_or_else(|| {
            WireError(format!(
                "nats sent a bad size {:?}",
                String::from_utf8_lossy(tok)
            ))
        })
}

/// Parse one operation from the front of `b`: `Ok(None)` when incomplete.
pub fn parse(b: &[u8]) -> Result<Option<(Op<'_>, usize)>, WireError> {
    let Some(eol) = b
        .windows(2)
        .take(MAX_CONTROL_LINE + 2)
        .position(|w| w == b"\r\n")
    else {
        if b.len() > MAX_CONTROL_LINE + 2 {
            return Err(WireError("nats sent a control line over 4 KiB".into()));
        }
        return Ok(None);
    };
    let line = &b[..eol];
    let next = eol + 2;
    let mut toks = line
        .split(|&c| c == b' ' || c == b'\t')
        .filter(|t| !t.is_empty());
    let verb = toks.next().unwrap_or(b"");
    let op = if verb.eq_ignore_ascii_case(b"MSG") || verb.eq_ignore_ascii_case(b"HMSG") {
        // At most five arguments; more is malformed.
        let mut args: [&[u8]; 6] = [b""; 6];
        let mut argc = 0;
        for t in toks {
            if argc == args.len() {
                return Err(WireError(format!(
                    "nats sent a malformed {}",
                    String::from_utf8_lossy(line)
                )));
            }
            args[argc] = t;
            argc += 1;
        }
        let args = &args[..argc];
        let hmsg = verb.len() == 4;
        // MSG subject sid [reply] n; HMSG subject sid [reply] hdr_n total_n
        let want = if hmsg { 4 } else { 3 };
        if args.len() != want && args.len() != want + 1 {
            return Err(WireError(format!(
                "nats sent a malformed {}",
                String::from_utf8_lossy(line)
            )));
        }
        let total = size(args[args.len() - 1])?;
        let headers = if hmsg { size(args[args.len() - 2])? } else { 0 };
        if headers > total {
            return Err(WireError(
                "nats sent headers longer than the message".into(),
            ));
        }
        let end = next + total;
        if b.len() < end + 2 {
            return Ok(None);
        }
        if &b[end..end + 2] != b"\r\n" {
            return Err(WireError("nats payload not followed by CRLF".into()));
        }
        return Ok(Some((Op::Msg(&b[next + headers..end]), end + 2)));
    } else if verb.eq_ignore_ascii_case(b"PING") {
        Op::Ping
    } else if verb.eq_ignore_ascii_case(b"PONG") {
        Op::Pong
    } else if verb.eq_ignore_ascii_case(b"-ERR") {
        Op::Err(line[4..].trim_ascii())
    } else if verb.eq_ignore_ascii_case(b"INFO") || verb == b"+OK" {
        Op::Other
    } else {
        return Err(WireError(format!(
            "nats sent an unknown operation {:?}",
            String::from_utf8_lossy(line)
        )));
    };
    Ok(Some((op, next)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: &[u8] =
        b"INFO {\"server_id\":\"x\",\"version\":\"2.9.10\",\"max_payload\":1048576}\r\n\
PONG\r\nMSG room 1 5\r\nhello\r\nmsg m.b1 2 _INBOX.x 0\r\n\r\nPING\r\n\
HMSG room 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPONG\r\n+OK\r\n-ERR 'Slow Consumer'\r\n";

    fn events(bytes: &[u8], chunk: usize) -> Vec<String> {
        let mut w = NatsWire::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for c in bytes.chunks(chunk) {
            buf.extend_from_slice(c);
            w.decode(&mut buf, &mut |ev| {
                got.push(match ev {
                    In::Msg(d) => format!("msg {}", String::from_utf8_lossy(&d.text)),
                    other => format!("{other:?}"),
                })
            })
            .unwrap();
        }
        assert!(buf.is_empty());
        got
    }

    #[test]
    fn a_session_decodes_the_same_whatever_the_chunking() {
        let want = [
            "Other",
            "Ready { seq: None }",
            "msg hello",
            "msg ",
            "Ping",
            "msg hi",
            "Ack",
            "Other",
            "Error { code: \"ERR\", message: \"'Slow Consumer'\" }",
        ];
        for chunk in [1, 2, 5, 13, SESSION.len()] {
            assert_eq!(events(SESSION, chunk), want, "chunk {chunk}");
        }
    }

    #[test]
    fn client_bytes() {
        let mut w = NatsWire::new();
        let mut out = Vec::new();
        w.hello(
            "b1",
            Subs {
                room: true,
                own: true,
            },
            &mut out,
        );
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("CONNECT {"));
        assert!(
            text.ends_with("\r\nSUB room 1\r\nSUB m.b1 2\r\nPING\r\n"),
            "{text}"
        );
        out.clear();
        w.publish(Dest::Room, "hey", false, &mut out);
        w.publish(Dest::Member("b2"), "yo", true, &mut out);
        assert_eq!(out, b"PUB room 3\r\nhey\r\nPUB m.b2 2\r\nyo\r\nPING\r\n");
    }

    #[test]
    fn malformed_operations_fail_and_partial_ones_wait() {
        assert_eq!(parse(b"MSG room 1 5\r\nhel").unwrap(), None);
        assert_eq!(parse(b"PIN").unwrap(), None);
        assert!(parse(b"MSG room 5\r\n").is_err());
        assert!(parse(b"MSG room 1 x\r\n").is_err());
        assert!(parse(b"MSG room 1 99999999999\r\n").is_err());
        assert!(parse(b"MSG room 1 2\r\nabcd").is_err());
        assert!(parse(b"HMSG room 1 9 3\r\n").is_err());
        assert!(parse(b"WHAT\r\n").is_err());
        assert!(parse(b"MSG a b c d e f g\r\n").is_err());
        assert!(parse(&vec![b'I'; MAX_CONTROL_LINE + 10]).is_err());
    }
}
