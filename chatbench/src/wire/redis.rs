//! redis-server pub/sub, over RESP3 written and parsed by hand.
//!
//! RESP3 (`HELLO 3`, Redis 6 and later) lets one connection both subscribe
//! and publish, so a member is one connection, as in chat. Messages arrive as
//! push frames `>3 message <channel> <payload>`; each `PUBLISH` is answered
//! by an integer (the number of subscribers reached), which serves as the ack
//! for private messages.

use std::borrow::Cow;

use bytes::BytesMut;

use super::{channel, consume, Delivery, Dest, In, Subs, ToList, WireError};

/// Larger bulk strings or aggregates than these are a protocol error here.
const MAX_BULK: usize = 64 << 20;
const MAX_ELEMS: usize = 1 << 20;
const MAX_DEPTH: usize = 16;
const MAX_LINE: usize = 64 << 10;

/// One parsed RESP value, borrowing from the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp<'a> {
    /// `+...`
    Simple(&'a [u8]),
    /// `-...` or `!n`.
    Error(&'a [u8]),
    /// `:n`
    Int(i64),
    /// `$n` or `=n`.
    Bulk(&'a [u8]),
    /// `_`, `$-1`, `*-1`.
    Null,
    /// `*n`, `~n`, or `%n` (keys and values in turn).
    Array(Vec<Resp<'a>>),
    /// `>n`
    Push(Vec<Resp<'a>>),
    /// `#`, `,`, `(`: scalars nobody here needs.
    Scalar,
}

/// Parse one value from the front of `b`: `Ok(None)` if it is not all there
/// yet, otherwise the value and how many bytes it took.
pub fn parse(b: &[u8]) -> Result<Option<(Resp<'_>, usize)>, WireError> {
    parse_at(b, 0, 0)
}

fn line(b: &[u8], from: usize) -> Result<Option<(&[u8], usize)>, WireError> {
    let window = &b[from..b.len().min(from + MAX_LINE + 2)];
    let mut at = 0;
    while let Some(cr) = memchr::memchr(b'\r', &window[at..]) {
        let cr = at + cr;
        match window.get(cr + 1) {
            Some(b'\n') => return Ok(Some((&window[..cr], from + cr + 2))),
            Some(_) => at = cr + 1,
            None => return Ok(None),
        }
    }
    if window.len() > MAX_LINE {
        return Err(WireError("redis sent a line longer than 64 KiB".into()));
    }
    Ok(None)
}

fn int(s: &[u8]) -> Result<i64, WireError> {
    let bad = || {
        WireError(format!(
            "redis sent a bad number {:?}",
            String::from_utf8_lossy(s)
        ))
    };
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 18 {
        return Err(bad());
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(bad());
        }
        v = v * 10 + i64::from(d - b'0');
    }
    Ok(if neg { -v } else { v })
}

fn parse_at(b: &[u8], at: usize, depth: usize) -> Result<Option<(Resp<'_>, usize)>, WireError> {
    if depth > MAX_DEPTH {
        return Err(WireError("redis sent values nested too deep".into()));
    }
    let Some(&kind) = b.get(at) else {
        return Ok(None);
    };
    let Some((head, next)) = line(b, at + 1)? else {
        return Ok(None);
    };
    let v = match kind {
        b'+' => Resp::Simple(head),
        b'-' => Resp::Error(head),
        b':' => Resp::Int(int(head)?),
        b'_' => Resp::Null,
        b'#' | b',' | b'(' => Resp::Scalar,
        b'$' | b'=' | b'!' => {
            let n = int(head)?;
            if n < 0 {
                return Ok(Some((Resp::Null, next)));
            }
            let n = n as usize;
            if n > MAX_BULK {
                return Err(WireError(format!("redis announced a {n}-byte string")));
            }
            let end = next + n;
            if b.len() < end + 2 {
                return Ok(None);
            }
            if &b[end..end + 2] != b"\r\n" {
                return Err(WireError("redis string not followed by CRLF".into()));
            }
            let body = &b[next..end];
            let v = if kind == b'!' {
                Resp::Error(body)
            } else {
                Resp::Bulk(body)
            };
            return Ok(Some((v, end + 2)));
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = int(head)?;
            if n < 0 {
                return Ok(Some((Resp::Null, next)));
            }
            let n = n as usize;
            let elems = if matches!(kind, b'%' | b'|') {
                n.checked_mul(2)
            } else {
                Some(n)
            };
            let elems = elems
                .filter(|&e| e <= MAX_ELEMS)
                .ok_or_else(|| WireError(format!("redis announced {n} elements")))?;
            let mut items = Vec::with_capacity(elems.min(16));
            let mut pos = next;
            for _ in 0..elems {
                match parse_at(b, pos, depth + 1)? {
                    Some((v, p)) => {
                        items.push(v);
                        pos = p;
                    }
                    None => return Ok(None),
                }
            }
            if kind == b'|' {
                // An attribute: metadata, then the value it annotates.
                return parse_at(b, pos, depth + 1);
            }
            let v = if kind == b'>' {
                Resp::Push(items)
            } else {
                Resp::Array(items)
            };
            return Ok(Some((v, pos)));
        }
        other => {
            return Err(WireError(format!(
                "redis sent an unknown type byte {:?}",
                other as char
            )))
        }
    };
    Ok(Some((v, next)))
}

/// A whole value's payload and length, `None` if incomplete.
type Parsed<'a> = Result<Option<(&'a [u8], usize)>, WireError>;

/// A `>3 message <channel> <payload>` push at the front of `b`: `None` if
/// `b` does not start like one, else what [`parse`] would say, payload only.
fn message(b: &[u8]) -> Option<Parsed<'_>> {
    const HEAD: &[u8] = b">3\r\n$7\r\nmessage\r\n";
    if !b.starts_with(HEAD) {
        return None;
    }
    let bulk = |at: usize| -> Parsed<'_> {
        match parse_at(b, at, 1)? {
            Some((Resp::Bulk(v), next)) => Ok(Some((v, next))),
            Some(_) => Err(WireError(
                "redis sent a message push that is not three strings".into(),
            )),
            None => Ok(None),
        }
    };
    Some((|| {
        let Some((_channel, at)) = bulk(HEAD.len())? else {
            return Ok(None);
        };
        let Some((payload, end)) = bulk(at)? else {
            return Ok(None);
        };
        Ok(Some((payload, end)))
    })())
}

/// Append a command as an array of bulk strings.
pub fn command(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// One redis connection's state.
#[derive(Debug, Default)]
pub struct RedisWire {
    pending_subs: usize,
    ready: bool,
}

impl RedisWire {
    /// A fresh connection.
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn hello(&mut self, nick: &str, subs: Subs, out: &mut Vec<u8>) {
        command(&[b"HELLO", b"3"], out);
        let own = channel(Dest::Member(nick));
        let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE"];
        if subs.room {
            args.push(b"room");
        }
        if subs.own {
            args.push(own.as_bytes());
        }
        self.pending_subs = args.len() - 1;
        if self.pending_subs > 0 {
            command(&args, out);
        } else {
            // Nothing to subscribe to: a PING's reply marks the end of the handshake.
            command(&[b"PING"], out);
        }
    }

    pub(super) fn publish(&mut self, dest: Dest<'_>, text: &str, out: &mut Vec<u8>) {
        command(
            &[b"PUBLISH", channel(dest).as_bytes(), text.as_bytes()],
            out,
        );
    }

    fn event<'a>(&mut self, v: Resp<'a>) -> In<'a> {
        match v {
            Resp::Push(items) => match items.as_slice() {
                [Resp::Bulk(b"message"), Resp::Bulk(_ch), Resp::Bulk(payload)] => {
                    In::Msg(Delivery {
                        seq: None,
                        from: None,
                        to: ToList::Raw(b""),
                        text: Cow::Borrowed(payload),
                    })
                }
                [Resp::Bulk(b"subscribe"), ..] if !self.ready => {
                    self.pending_subs = self.pending_subs.saturating_sub(1);
                    if self.pending_subs == 0 {
                        self.ready = true;
                        In::Ready { seq: None }
                    } else {
                        In::Other
                    }
                }
                _ => In::Other,
            },
            Resp::Int(_) if self.ready => In::Ack,
            Resp::Simple(b"PONG") if !self.ready && self.pending_subs == 0 => {
                self.ready = true;
                In::Ready { seq: None }
            }
            Resp::Error(e) => {
                let e = String::from_utf8_lossy(e);
                let (code, msg) = e.split_once(' ').unwrap_or((&e, ""));
                In::Error {
                    code: Cow::Owned(code.to_owned()),
                    message: Cow::Owned(msg.to_owned()),
                }
            }
            _ => In::Other,
        }
    }

    pub(super) fn decode(
        &mut self,
        buf: &mut BytesMut,
        f: &mut dyn FnMut(In<'_>),
    ) -> Result<(), WireError> {
        consume(buf, |rest| {
            // The message push is nearly all the traffic: read it without
            // building a value; anything else takes the general parser.
            match message(rest) {
                Some(Ok(Some((payload, n)))) => {
                    f(In::Msg(Delivery {
                        seq: None,
                        from: None,
                        to: ToList::Raw(b""),
                        text: Cow::Borrowed(payload),
                    }));
                    return Ok(Some(n));
                }
                Some(Ok(None)) => return Ok(None),
                Some(Err(e)) => return Err(e),
                None => {}
            }
            Ok(parse(rest)?.map(|(v, n)| {
                f(self.event(v));
                n
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(w: &mut RedisWire, bytes: &[u8], chunk: usize) -> Vec<String> {
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
        assert!(buf.is_empty(), "left over: {buf:?}");
        got
    }

    /// What redis 7 answers to `HELLO 3` + `SUBSCRIBE room m.b1`, then traffic.
    const SESSION: &[u8] = b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n\
$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:5\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n\
$7\r\nmodules\r\n*0\r\n\
>3\r\n$9\r\nsubscribe\r\n$4\r\nroom\r\n:1\r\n\
>3\r\n$9\r\nsubscribe\r\n$4\r\nm.b1\r\n:2\r\n\
>3\r\n$7\r\nmessage\r\n$4\r\nroom\r\n$5\r\nhello\r\n\
:100\r\n\
|1\r\n+key\r\n+val\r\n>3\r\n$7\r\nmessage\r\n$4\r\nm.b1\r\n$0\r\n\r\n\
-ERR unknown command\r\n";

    #[test]
    fn a_session_decodes_the_same_whatever_the_chunking() {
        let want = [
            "Other",
            "Other",
            "Ready { seq: None }",
            "msg hello",
            "Ack",
            "msg ",
            "Error { code: \"ERR\", message: \"unknown command\" }",
        ];
        for chunk in [1, 2, 3, 7, 64, SESSION.len()] {
            let mut w = RedisWire::new();
            w.pending_subs = 2;
            assert_eq!(events(&mut w, SESSION, chunk), want, "chunk {chunk}");
        }
    }

    #[test]
    fn the_message_fast_path_agrees_with_the_parser() {
        let push = b">3\r\n$7\r\nmessage\r\n$4\r\nroom\r\n$5\r\nhello\r\n";
        assert_eq!(
            message(push).unwrap().unwrap(),
            Some((&b"hello"[..], push.len()))
        );
        for cut in 0..push.len() {
            match message(&push[..cut]) {
                None => assert!(cut < 17, "{cut}"),
                Some(r) => assert_eq!(r.unwrap(), None, "{cut}"),
            }
        }
        assert!(message(b">3\r\n$7\r\nmessage\r\n:1\r\n$1\r\nx\r\n")
            .unwrap()
            .is_err());
        assert!(message(b">3\r\n$9\r\nsubscribe\r\n").is_none());
    }

    #[test]
    fn hello_and_publish_bytes() {
        let mut w = RedisWire::new();
        let mut out = Vec::new();
        w.hello(
            "b1",
            Subs {
                room: true,
                own: true,
            },
            &mut out,
        );
        assert_eq!(
            out,
            b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*3\r\n$9\r\nSUBSCRIBE\r\n$4\r\nroom\r\n$4\r\nm.b1\r\n"
        );
        assert_eq!(w.pending_subs, 2);
        out.clear();
        w.publish(Dest::Member("b2"), "hi", &mut out);
        assert_eq!(out, b"*3\r\n$7\r\nPUBLISH\r\n$4\r\nm.b2\r\n$2\r\nhi\r\n");
    }

    #[test]
    fn no_subscription_is_ready_on_pong() {
        let mut w = RedisWire::new();
        let mut out = Vec::new();
        w.hello(
            "x",
            Subs {
                room: false,
                own: false,
            },
            &mut out,
        );
        assert!(out.ends_with(b"*1\r\n$4\r\nPING\r\n"));
        let got = events(&mut w, b"%0\r\n+PONG\r\n:1\r\n", 1);
        assert_eq!(got, ["Other", "Ready { seq: None }", "Ack"]);
    }

    #[test]
    fn incomplete_values_wait_and_bad_ones_fail() {
        assert_eq!(parse(b"$5\r\nhel").unwrap(), None);
        assert_eq!(parse(b"*2\r\n:1\r\n").unwrap(), None);
        assert_eq!(parse(b"").unwrap(), None);
        assert_eq!(parse(b"$-1\r\n").unwrap(), Some((Resp::Null, 5)));
        assert_eq!(parse(b"_\r\n").unwrap(), Some((Resp::Null, 3)));
        assert!(parse(b"?\r\n").is_err());
        assert!(parse(b":abc\r\n").is_err());
        assert!(parse(b":-\r\n").is_err());
        assert_eq!(parse(b":-42\r\n").unwrap(), Some((Resp::Int(-42), 6)));
        assert_eq!(
            parse(b"+a\rb\r\n").unwrap(),
            Some((Resp::Simple(b"a\rb"), 6))
        );
        assert!(parse(b"$3\r\nabcXY").is_err());
        assert!(parse(b"$999999999999\r\n").is_err());
        assert!(parse(b"*99999999\r\n").is_err());
        let deep = "*1\r\n".repeat(40);
        assert!(parse(deep.as_bytes()).is_err());
        assert!(parse(&vec![b'+'; MAX_LINE + 10]).is_err());
    }
}
