//! The three wire protocols a benchmark can speak, behind one small interface.
//!
//! Each target turns the same few intents into bytes (join the room or
//! subscribe, publish to the room or to one member, answer a ping) and turns
//! received bytes into the same few [`In`] events. Nothing here touches a
//! socket: the decoders take a buffer and consume whole messages from its
//! front, so they are tested byte by byte like any codec.
//!
//! | intent | chat | redis (RESP3) | nats |
//! |---|---|---|---|
//! | join | `join` frame, ready on `welcome` | `HELLO 3` + `SUBSCRIBE`, ready when every subscription is confirmed | `CONNECT` + `SUB` + `PING`, ready on the first `PONG` |
//! | the room | everyone (no `to`) | channel `room` | subject `room` |
//! | one member | `to: [nick]` | channel `m.NICK` | subject `m.NICK` |
//! | the sender's ack | its echo | its own copy (it subscribes to the room too), or the `PUBLISH` reply for private messages | its own copy (echo on), or a `PONG` to a `PING` sent after each private message |

use std::borrow::Cow;

use bytes::{Buf, BytesMut};
use serde::{Deserialize, Serialize};

pub mod chat;
pub mod nats;
pub mod redis;
pub mod ws;

/// Which server a benchmark talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// chatserver (wire format v1).
    Chat,
    /// redis-server pub/sub over RESP3.
    Redis,
    /// nats-server core pub/sub.
    Nats,
}

impl Target {
    /// The name used in reports and tables.
    pub fn name(self) -> &'static str {
        match self {
            Target::Chat => "chat",
            Target::Redis => "redis",
            Target::Nats => "nats",
        }
    }

    /// The server program's name, for the side-by-side table.
    pub fn server(self) -> &'static str {
        match self {
            Target::Chat => "chatserver",
            Target::Redis => "redis-server",
            Target::Nats => "nats-server",
        }
    }

    /// The address its server listens on by default.
    pub fn default_addr(self) -> &'static str {
        match self {
            Target::Chat => "127.0.0.1:7878",
            Target::Redis => "127.0.0.1:6379",
            Target::Nats => "127.0.0.1:4222",
        }
    }
}

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest<'a> {
    /// Every member of the room.
    Room,
    /// One member, by name.
    Member(&'a str),
}

/// What a member listens to once joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subs {
    /// Messages to the room (chat members always get these).
    pub room: bool,
    /// Messages to this member alone (chat members always get these).
    pub own: bool,
}

/// The recipients named in a chat `msg` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToList<'a> {
    /// The inside of the JSON array, e.g. `"bob","carol"`; nicks need no escaping.
    Raw(&'a [u8]),
    /// Already decoded.
    Owned(Vec<String>),
}

impl ToList<'_> {
    /// The recipients as strings.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            ToList::Raw([]) => Vec::new(),
            ToList::Raw(r) => r
                .split(|&b| b == b',')
                .map(|q| {
                    String::from_utf8_lossy(
                        q.strip_prefix(b"\"")
                            .unwrap_or(q)
                            .strip_suffix(b"\"")
                            .unwrap_or(q),
                    )
                    .into_owned()
                })
                .collect(),
            ToList::Owned(v) => v.clone(),
        }
    }
}

/// A message as a receiver got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<'a> {
    /// The room's seq (chat only).
    pub seq: Option<u64>,
    /// The sender as stamped by the server (chat only).
    pub from: Option<Cow<'a, str>>,
    /// The recipients (chat only; empty means everyone).
    pub to: ToList<'a>,
    /// The text or payload, exactly as sent.
    pub text: Cow<'a, [u8]>,
}

/// One thing received from a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum In<'a> {
    /// The join or subscription is complete; chat gives the welcome's seq.
    Ready {
        /// The room's seq at the moment of joining (chat only).
        seq: Option<u64>,
    },
    /// A message.
    Msg(Delivery<'a>),
    /// Someone came online or went offline (chat only).
    Presence {
        /// Its seq.
        seq: u64,
        /// Whose.
        nick: Cow<'a, str>,
        /// Online (true) or offline.
        online: bool,
    },
    /// The server confirmed a publish (redis `PUBLISH` reply, nats `PONG`).
    Ack,
    /// The server wants a pong.
    Ping,
    /// The server reported an error.
    Error {
        /// A short code (chat's error code, or the first word of the error).
        code: Cow<'a, str>,
        /// The rest.
        message: Cow<'a, str>,
    },
    /// Anything the benchmarks do not need.
    Other,
}

/// The server broke its own protocol; the connection cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WireError {}

/// The channel or subject of a destination (redis and nats).
pub fn channel(dest: Dest<'_>) -> Cow<'_, str> {
    match dest {
        Dest::Room => Cow::Borrowed("room"),
        Dest::Member(m) => Cow::Owned(format!("m.{m}")),
    }
}

/// One connection's protocol state.
#[derive(Debug)]
pub enum Wire {
    /// chatserver.
    Chat(chat::ChatWire),
    /// redis-server.
    Redis(redis::RedisWire),
    /// nats-server.
    Nats(nats::NatsWire),
}

impl Wire {
    /// Fresh state for a new connection to `target`.
    pub fn new(target: Target) -> Self {
        match target {
            Target::Chat => Wire::Chat(chat::ChatWire::new()),
            Target::Redis => Wire::Redis(redis::RedisWire::new()),
            Target::Nats => Wire::Nats(nats::NatsWire::new()),
        }
    }

    /// The bytes that join the room as `nick` / subscribe as asked.
    pub fn hello(&mut self, nick: &str, subs: Subs, out: &mut Vec<u8>) {
        match self {
            Wire::Chat(w) => w.hello(nick, out),
            Wire::Redis(w) => w.hello(nick, subs, out),
            Wire::Nats(w) => w.hello(nick, subs, out),
        }
    }

    /// The bytes that publish `text` to `dest`. `want_ack` asks nats for a
    /// `PONG` after it (redis always replies; chat always echoes).
    pub fn publish(&mut self, dest: Dest<'_>, text: &str, want_ack: bool, out: &mut Vec<u8>) {
        match self {
            Wire::Chat(w) => w.publish(dest, text, out),
            Wire::Redis(w) => w.publish(dest, text, out),
            Wire::Nats(w) => w.publish(dest, text, want_ack, out),
        }
    }

    /// A ping (chat only): its answer comes as [`In::Ack`] once everything
    /// the server queued before it has been read.
    pub fn ping(&mut self, out: &mut Vec<u8>) {
        if let Wire::Chat(w) = self {
            w.ping(out);
        }
    }

    /// What the framing itself must answer (a WebSocket's pongs and close
    /// reply), moved to `out`; nothing for the other framings.
    pub fn take_control(&mut self, out: &mut Vec<u8>) {
        if let Wire::Chat(w) = self {
            if let Some(ws) = w.ws_mut() {
                ws.take_control(out);
            }
        }
    }

    /// The answer to [`In::Ping`].
    pub fn pong(&mut self, out: &mut Vec<u8>) {
        match self {
            Wire::Chat(w) => w.pong(out),
            Wire::Redis(_) => {}
            Wire::Nats(_) => out.extend_from_slice(b"PONG\r\n"),
        }
    }

    /// Consume every whole message at the front of `buf`, calling `f` for each.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        f: &mut dyn FnMut(In<'_>),
    ) -> Result<(), WireError> {
        match self {
            Wire::Chat(w) => w.decode(buf, f),
            Wire::Redis(w) => w.decode(buf, f),
            Wire::Nats(w) => w.decode(buf, f),
        }
    }
}

/// Consume whole messages from the front of `buf`. `step` is given what is
/// left, handles the message at its start and says how many bytes it took,
/// or `None` when only part of one has arrived.
fn consume(
    buf: &mut BytesMut,
    mut step: impl FnMut(&[u8]) -> Result<Option<usize>, WireError>,
) -> Result<(), WireError> {
    let mut used = 0;
    let result = loop {
        match step(&buf[used..]) {
            Ok(Some(n)) => used += n,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    buf.advance(used);
    result
}
