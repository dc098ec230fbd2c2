//! # chatproto
//!
//! The protocol and the room of a small multi-user chat, with no I/O in it.
//!
//! * [`ClientFrame`] and [`ServerFrame`]: the typed frames of wire format v1
//!   (see `PROTOCOL.md`), tagged by their `"type"` member.
//! * [`FrameDecoder`], [`encode`]: length-prefixed JSON framing with a size
//!   limit checked before anything is buffered.
//! * [`Room`]: the state machine that registers nicknames, routes messages and
//!   stamps sequence numbers. Input is a method call, output is drained from a
//!   queue, and time is an argument, so the same inputs always give the same
//!   bytes.
//!
//! Nothing here opens a socket, spawns a task or reads a clock; `chatserver`
//! wires it to TCP with tokio, and you can wire it to anything else.
//!
//! # Example: two clients chatting through a room, no sockets
//!
//! ```
//! use bytes::BytesMut;
//! use chatproto::{ClientFrame, FrameDecoder, Room, RoomConfig, ServerFrame};
//!
//! let mut room = Room::new(RoomConfig::default());
//! let now = 1_732_400_000_000; // unix milliseconds, from your clock
//! let alice = room.handle_connect(now);
//! let bob = room.handle_connect(now);
//! room.handle_frame(now, alice, ClientFrame::Join { nick: "alice".into() });
//! room.handle_frame(now, bob, ClientFrame::Join { nick: "bob".into() });
//! room.handle_frame(now + 5, alice, ClientFrame::Msg { to: vec!["bob".into()], text: "hi bob".into() });
//!
//! // Drain the output: (recipient, bytes) pairs, in the order to send them.
//! let mut to_bob = BytesMut::new();
//! while let Some(t) = room.poll_transmit() {
//!     if t.to == bob {
//!         to_bob.extend_from_slice(&t.bytes);
//!     }
//! }
//!
//! // What bob's socket would carry: welcome, his presence, then the message.
//! let mut dec = FrameDecoder::default();
//! let mut frames = Vec::new();
//! while let Some(frame) = dec.decode::<ServerFrame>(&mut to_bob).unwrap() {
//!     frames.push(frame.unwrap());
//! }
//! assert!(matches!(&frames[0], ServerFrame::Welcome { online, .. } if online.len() == 2));
//! assert!(matches!(&frames[1], ServerFrame::Presence { seq: 2, .. }));
//! assert_eq!(frames[2], ServerFrame::Msg {
//!     seq: 3,
//!     from: "alice".into(),
//!     to: vec!["bob".into()],
//!     text: "hi bob".into(),
//!     ts: now + 5,
//! });
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client_de;
pub mod codec;
pub mod frame;
pub mod nick;
mod room;
pub mod sanitize;
pub mod testkit;

pub use codec::{
    encode, encode_into, parse_payload, Decoded, EncodeError, FrameDecoder, FramingError,
    PayloadError, DEFAULT_MAX_FRAME_BYTES, HEADER_LEN, MIN_MAX_FRAME_BYTES,
};
#[cfg(feature = "tokio-codec")]
pub use codec::{CodecError, JsonFrameCodec};
pub use frame::{ClientFrame, ErrorCode, PresenceStatus, ServerFrame};
pub use nick::{validate_nick, NickError, MAX_NICK_LEN};
pub use room::{
    ClientId, ClientIdHasher, ClientIdMap, Close, Event, FrameHook, Room, RoomConfig, Transmit,
    DEFAULT_MAX_RECIPIENTS,
};
pub use sanitize::escape_control;
