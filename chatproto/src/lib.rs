//! # chatproto
//!
//! The protocol and the server core of a small multi-user chat, with no I/O
//! in it: rooms, nicknames, history and resume, as a deterministic state
//! machine that any transport can drive.
//!
//! * [`ClientFrame`] and [`ServerFrame`]: the typed frames of wire format v2
//!   (a superset of v1; see `PROTOCOL.md`), tagged by their `"type"` member.
//! * [`FrameDecoder`], [`encode`]: length-prefixed JSON framing with a size
//!   limit checked before anything is buffered.
//! * [`Server`]: sessions beside rooms. Handling a frame decides (an answer
//!   now, or an event for a room); every room change is a stamped
//!   [`Event`] with the room's next `seq`, applied in order; applying an
//!   event yields one fan-out item, the event and its recipients.
//!
//! * Durable and shared rooms: with [`ServerConfig::durable`] the core asks
//!   its shell to store records before anything depending on them goes out
//!   ([`Output::Persist`]); with [`ServerConfig::cluster`] a log shared by
//!   several servers numbers the events instead ([`Output::Propose`], then
//!   [`Server::handle_logged`] with each event the log holds, from every
//!   server, in order).
//!
//! Nothing here opens a socket, spawns a task or reads a clock; `chatserver`
//! wires it to TCP with tokio, and you can wire it to anything else.
//!
//! # The run loop
//!
//! Feed input with `handle_*`, then drain [`Server::poll`] until it is
//! empty, then sleep until [`Server::poll_timeout`] (or the next input):
//!
//! ```
//! use bytes::Bytes;
//! use chatproto::{encode, ClientFrame, ClientId, Now, Output, Server, ServerConfig};
//!
//! let mut server = Server::new(ServerConfig::default(), [0; 32]); // seed from the OS in real use
//! let max = server.config().max_frame_bytes;
//! let now = Now::new(0, 1_732_400_000_000); // monotonic ms, unix ms
//! let alice = server.handle_connect(now);
//! let bob = server.handle_connect(now);
//! server.handle_frame(now, alice, ClientFrame::join("alice"));
//! server.handle_frame(now, bob, ClientFrame::join("bob"));
//! server.handle_frame(now, alice, ClientFrame::msg(vec!["bob".into()], "hi bob"));
//!
//! let mut wire: Vec<(ClientId, Bytes)> = Vec::new();
//! while let Some(out) = server.poll() {
//!     match out {
//!         // One frame for one connection.
//!         Output::Send { to, frame, .. } => wire.push((to, encode(&frame, max).unwrap())),
//!         // A room event: encode once, the same bytes for every recipient.
//!         Output::Deliver { event, to, with_id, .. } => {
//!             let bytes = encode(&event.wire(with_id, false), max).unwrap();
//!             wire.extend(to.iter().map(|&c| (c, bytes.clone())));
//!         }
//!         Output::Close { client, .. } => { /* close it once its bytes are written */ }
//!         _ => {}
//!     }
//! }
//! let to_bob: Vec<&Bytes> = wire.iter().filter(|(c, _)| *c == bob).map(|(_, b)| b).collect();
//! // bob: his welcome, his own presence, then alice's message.
//! assert_eq!(to_bob.len(), 3);
//! assert!(to_bob[2].ends_with(br#""text":"hi bob","ts":1732400000000}"#));
//! // Sleep until then, and call `handle_timeout`.
//! assert!(server.poll_timeout().is_some());
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod client_de;
pub mod codec;
pub mod frame;
pub mod nick;
pub mod sanitize;
mod server;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;

pub use client::{
    Client, ClientEvent, ClientOutput, Unacknowledged, CLIENT_DEAD_AFTER_MS, CLIENT_PING_AFTER_MS,
};
pub use codec::{
    encode, encode_into, parse_payload, Decoded, EncodeError, FrameDecoder, FramingError,
    PayloadError, DEFAULT_MAX_FRAME_BYTES, HEADER_LEN, MIN_MAX_FRAME_BYTES,
};
pub use frame::{ClientFrame, ErrorCode, PresenceStatus, ServerFrame};
pub use frame::{Limits, RoomInfo};
pub use nick::{nick_key, normalize_nick, validate_nick, NickError, NickRule, MAX_NICK_LEN};
pub use sanitize::escape_control;
pub use server::config::{ServerConfig, DEFAULT_MAX_RECIPIENTS, LOBBY};
pub use server::durable::{hash_token, Record, TokenHash};
pub use server::event::{
    room_name, Event, EventBody, Recipient, SessionId, WireEvent, MAX_ROOM_LEN,
};
pub use server::log::LogError;
pub use server::output::{Kick, Output};
pub use server::reads::ReadQuery;
pub use server::{ClientId, Now, Server};
