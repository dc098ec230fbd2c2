//! # chatproto
//!
//! The protocol and the server core of a small multi-user chat, with no I/O
//! in it: rooms, nicknames, history and resume, as a deterministic state
//! machine that any transport can drive.
//!
//! * [`ClientFrame`] and [`ServerFrame`]: the typed frames of wire format v2
//!   (a superset of v1; see `PROTOCOL.md`), tagged by their `"type"` member.
//! * [`FrameDecoder`], [`encode`]: length-prefixed JSON framing with a size
//!   limit checked before anything is buffered; [`Decoded`] names what a
//!   read yields (a frame, a bad payload, more bytes needed, a broken stream).
//! * [`normalize_nick`], [`nick_key`], [`nick_skeleton`]: the nickname rule
//!   (see [Nicknames](#nicknames)).
//! * [`Server`]: sessions beside rooms. Handling a frame decides (an answer
//!   now, or an event for a room); every room change is a stamped
//!   [`Event`] with the room's next `seq`, applied in order; applying an
//!   event yields its fan-out, the event and its recipients, in one
//!   [`Output::Deliver`] or two (the sender's echo with its id, or
//!   the copy of whoever left, apart from the rest), or none (a presence
//!   in a room past `presence_fanout_max` that only its subject is sent,
//!   a member that is not there).
//!
//! * [`Client`]: the client's side, also sans-IO (see [The client
//!   core](#the-client-core)): the join handshake, pings, rooms and who is
//!   in them, message ids, and resuming after a dropped connection without
//!   losing, repeating or reordering a message. It reports
//!   [`ClientOutput`]s: frames to send and [`ClientEvent`]s to show.
//!
//! * Durable and shared rooms: with [`ServerConfig::durable`] the core asks
//!   its shell to store records before anything depending on them goes out
//!   ([`Output::Persist`]); with [`ServerConfig::cluster`] a log shared by
//!   several servers numbers the events instead ([`Output::Propose`], then
//!   [`Server::handle_logged`] with each event the log holds, from every
//!   server, in order, once [`Server::open_room`] has opened its room).
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
//! use chatproto::bytes::Bytes;
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
//!
//! A real shell also reads: it takes frames off each connection with a
//! [`FrameDecoder`] made with the server's limit,
//! `FrameDecoder::new(server.config().max_frame_bytes)` (the `welcome`
//! announces that limit, and [`FrameDecoder::default`] only takes
//! [`DEFAULT_MAX_FRAME_BYTES`]), and hands what it found to the core:
//! [`Decoded::Frame`] to [`Server::handle_frame`], [`Decoded::Invalid`] to
//! [`Server::handle_bad_frame`], [`Decoded::Broken`] to [`Server::kick`]
//! with [`Kick::Framing`]. When a client ends its stream cleanly (its
//! side of TCP closed, a WebSocket close) it may still wait for answers:
//! say so with [`Server::handle_end`], and close it at
//! [`Output::Finish`]; a connection whose first frame is a `join` with
//! `resume` and whose end was already read with it is handed over with
//! [`Server::handle_last_frame`] instead (a stale reconnect attempt,
//! which must not take over the session's live connection). When a connection is gone, say so with
//! [`Server::handle_disconnect`]; one the core closed itself
//! ([`Output::Close`]) it has already forgotten. `examples/tiny_server.rs`
//! does all of it over TCP.
//!
//! Timers: call [`Server::handle_timeout`] whenever the monotonic clock
//! has reached [`Server::poll_timeout`], also when input kept the loop busy
//! (a loop that only calls it when its sleep ends first may never call it
//! under steady input); a call before the deadline does nothing, so
//! calling it after every turn is fine.
//!
//! # The client core
//!
//! [`Client`] is driven the same way, with one clock (monotonic
//! milliseconds): report a connection with [`Client::handle_connected`],
//! each frame from the server with [`Client::handle_frame`], the end of
//! the connection with [`Client::handle_disconnected`], and drain
//! [`Client::poll`]. It outlives its connections: after a drop, connect
//! again and call `handle_connected`; it resumes the session with the
//! token of its last `welcome`, enters its rooms again from the last seq
//! it saw, and resends what was not acknowledged, under the same ids (a
//! session the server did not resume cannot recognise those ids: what
//! the client cannot tell was not delivered is given up instead, told as
//! [`ClientEvent::Unconfirmed`]).
//!
//! Here the "network" hands frames straight across (a real shell encodes
//! them with [`encode`] and decodes them with a [`FrameDecoder`]): alice's
//! connection drops, she writes while offline, bob writes meanwhile, and
//! she comes back with everything once.
//!
//! ```
//! use chatproto::{
//!     Client, ClientEvent, ClientFrame, ClientId, ClientOutput, Now, Output, Server, ServerConfig,
//! };
//!
//! /// Carry frames between `client` (on connection `id`) and the server until
//! /// both are quiet; return the events the client reported. What the server
//! /// sends other connections is dropped.
//! fn pump(server: &mut Server, client: &mut Client, id: ClientId, now: Now) -> Vec<ClientEvent> {
//!     let mut events = Vec::new();
//!     loop {
//!         let mut quiet = true;
//!         while let Some(out) = client.poll() {
//!             match out {
//!                 ClientOutput::Send(frame) => {
//!                     server.handle_frame(now, id, frame);
//!                     quiet = false;
//!                 }
//!                 ClientOutput::Event(event) => events.push(event),
//!                 _ => {}
//!             }
//!         }
//!         while let Some(out) = server.poll() {
//!             let frame = match out {
//!                 Output::Send { to, frame, .. } if to == id => frame,
//!                 Output::Deliver { event, to, with_id, .. } if to.contains(&id) => {
//!                     event.to_frame(with_id, false)
//!                 }
//!                 _ => continue,
//!             };
//!             client.handle_frame(now.mono, frame);
//!             quiet = false;
//!         }
//!         if quiet {
//!             return events;
//!         }
//!     }
//! }
//! let texts = |events: &[ClientEvent]| -> Vec<String> {
//!     let texts = events.iter().filter_map(|e| match e {
//!         ClientEvent::Message { text, .. } => Some(text.clone()),
//!         _ => None,
//!     });
//!     texts.collect()
//! };
//!
//! let mut server = Server::new(ServerConfig::default(), [0; 32]); // seed from the OS in real use
//! let now = Now::new(0, 1_732_400_000_000);
//! let bob = server.handle_connect(now);
//! server.handle_frame(now, bob, ClientFrame::join_v2("bob", vec!["rust".into()], None));
//!
//! let mut alice = Client::new("alice", ["rust"], "a7f3-"); // a prefix of her own for her ids
//! let first = server.handle_connect(now);
//! alice.handle_connected(now.mono);
//! alice.send_msg("rust", vec![], "hi bob");
//! let events = pump(&mut server, &mut alice, first, now);
//! assert!(matches!(&events[0], ClientEvent::Joined { resumed: false, .. }));
//! assert_eq!(texts(&events), ["hi bob"]);
//! assert_eq!(alice.roster("rust"), ["alice", "bob"]);
//!
//! // The connection drops: both sides are told.
//! let now = Now::new(5_000, 1_732_400_005_000);
//! server.handle_disconnect(now, first);
//! alice.handle_disconnected();
//! alice.send_msg("rust", vec![], "am I back?"); // kept until acknowledged
//! server.handle_frame(now, bob, ClientFrame::msg_in("rust", vec![], "did you miss this?", None));
//! assert_eq!(alice.unacknowledged(), 1);
//!
//! // A new connection: the session resumes, the room's replay brings what
//! // she missed, and her message goes once.
//! let second = server.handle_connect(now);
//! alice.handle_connected(now.mono);
//! let events = pump(&mut server, &mut alice, second, now);
//! assert!(matches!(&events[0], ClientEvent::Joined { resumed: true, reconnect: true, .. }));
//! assert!(matches!(&events[1], ClientEvent::Entered { again: true, gap: false, .. }));
//! assert_eq!(texts(&events), ["did you miss this?", "am I back?"]);
//! assert_eq!(alice.unacknowledged(), 0);
//! ```
//!
//! A program that stops and starts again (a bot) can carry on the same way:
//! keep [`Client::session_token`] and each room's [`Client::epoch`] and
//! [`Client::last_seq`], and give them to the next run's `Client` with
//! [`Client::resume_session`] and [`Client::set_last_seen`] before it
//! connects.
//!
//! Three things a client shell must do itself:
//!
//! * Encode and decode with [`Client::max_frame_bytes`]: the limit the
//!   server announced once joined ([`DEFAULT_MAX_FRAME_BYTES`] before, or
//!   from a server that announced none), up to
//!   [`CLIENT_MAX_FRAME_BYTES`]. [`Client::send_msg`] lets through any
//!   message that fits it, so encoding with a smaller fixed one fails on a
//!   server that raised it; a decoder can be replaced between any two
//!   calls (a frame not decoded yet stays whole in the buffer).
//! * Reconnect after [`ClientEvent::Dead`] (nothing heard after a ping) or
//!   when the transport ends, and call [`Client::handle_timeout`] when
//!   [`Client::poll_timeout`] says, asking it again after every call into
//!   the client: the ping happens so, and under a rate the server
//!   announced ([`Limits::rate`], [`Limits::rate_bytes`]) a frame that a
//!   call such as [`Client::send_msg`] could not send yet goes so.
//! * Not reconnect after a [`ClientEvent::Error`] with
//!   [`ErrorCode::ResumedElsewhere`]: another connection resumed this
//!   session with its token, and a resume here would close that one in
//!   turn (two shells doing so close each other forever).
//!
//! # Building and matching frames
//!
//! The wire format grows by adding frames and members, and so do these
//! types, in minor releases: both enums and each of their variants with
//! members are `#[non_exhaustive]`. Build frames with the constructors
//! ([`ClientFrame::join`], [`ServerFrame::msg`], ...), and match them with
//! `..` and a `_` arm:
//!
//! ```
//! use chatproto::{ClientFrame, ErrorCode, ServerFrame};
//!
//! let enter = ClientFrame::enter("rust", Some((41, "e1".to_owned())));
//! let send = ClientFrame::msg_in("rust", vec!["bob".into()], "hi bob", Some("m-1".into()));
//! let echo = ServerFrame::msg(Some("rust".into()), 42, "alice", vec!["bob".into()], "hi bob", 0, Some("m-1".into()));
//! let dup = ServerFrame::error_v2(ErrorCode::Duplicate, "sent already", Some("m-1".into()), Some("rust".into()), Some(42));
//! for frame in [enter, send] {
//!     match frame {
//!         ClientFrame::Msg { text, .. } => assert_eq!(text, "hi bob"),
//!         ClientFrame::Enter { room, .. } => assert_eq!(room, "rust"),
//!         _ => unreachable!(),
//!     }
//! }
//! for frame in [echo.clone().into_replay(), dup] {
//!     match frame {
//!         ServerFrame::Msg { seq, replay, .. } => assert_eq!((seq, replay), (42, true)),
//!         ServerFrame::Error { code, seq, .. } => assert_eq!((code, seq), (ErrorCode::Duplicate, Some(42))),
//!         _ => unreachable!(),
//!     }
//! }
//! // Change a member of a frame through a pattern, with `..` too.
//! let mut frame = echo;
//! if let ServerFrame::Msg { id, .. } = &mut frame {
//!     *id = None;
//! }
//! ```
//!
//! # Nicknames
//!
//! There are two rules, picked by [`NickRule`]:
//!
//! * **Unicode** (the default) lets people be called José, Zoë, Łukasz, 小明
//!   or Дмитрий. [`normalize_nick`] puts the nickname in NFC, then refuses
//!   what could hide or fake a name: whitespace, controls, format characters
//!   (bidi overrides, zero-width joiners), unassigned code points, symbols
//!   and emoji, characters Unicode does not recommend in identifiers (UTS #39
//!   General Security Profile), compatibility forms such as fullwidth
//!   letters, a combining mark at the start or too many stacked on a letter,
//!   and a mix of scripts such as Latin with Cyrillic (`pаypal` with a
//!   Cyrillic `а`). ASCII punctuation is allowed as in the ASCII rule, except
//!   `@ : , " \`.
//! * **ASCII** is the original rule, kept exactly: 1 to 32 printable ASCII
//!   characters except `@ : , " \`.
//!
//! Every nickname valid under the ASCII rule is valid, and unchanged, under
//! the Unicode rule, so switching a server to Unicode locks nobody out.
//!
//! Two nicknames are the same person when their [`nick_key`]s are equal
//! (Unicode case folding, so `ZOË` is `zoë` and `STRASSE` is `Straße`).
//! Two different people collide when their [`nick_skeleton`]s are equal: the
//! names would look alike on screen (`b0b` and `bob`, Cyrillic `ВОВ` and
//! `BOB`), so the second to join is refused.
//!
//! `PROTOCOL.md` section 3 states the rule for other implementations and
//! `tests/nick_vectors.txt` holds its test vectors.
//!
//! ## Example
//!
//! ```
//! use chatproto::{nick_key, nick_skeleton, normalize_nick, NickError, NickRule};
//!
//! // Decomposed input (e + U+0301) is stored composed.
//! let jose = normalize_nick("Jose\u{301}", NickRule::Unicode).unwrap();
//! assert_eq!(jose, "José");
//! assert_eq!(nick_key(&jose), nick_key("JOSÉ"));
//!
//! // A Latin name with a Cyrillic "а" is refused.
//! assert!(matches!(
//!     normalize_nick("p\u{430}ypal", NickRule::Unicode),
//!     Err(NickError::MixedScript(_))
//! ));
//!
//! // The ASCII rule refuses what is not ASCII.
//! assert!(normalize_nick("José", NickRule::Ascii).is_err());
//!
//! // Look-alikes share a skeleton.
//! assert_eq!(nick_skeleton("b0b"), nick_skeleton("bob"));
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod client_de;
mod client_scan;
mod codec;
mod frame;
mod nick;
mod sanitize;
mod server;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;

pub use client::{
    Client, ClientEvent, ClientOutput, Unacknowledged, CLIENT_DEAD_AFTER_MS,
    CLIENT_MAX_FRAME_BYTES, CLIENT_MAX_ROSTER, CLIENT_PING_AFTER_MS,
};
pub use codec::{
    encode, encode_into, parse_payload, Decoded, EncodeError, FrameDecoder, FramingError,
    PayloadError, SerializeError, DEFAULT_MAX_FRAME_BYTES, HEADER_LEN, MIN_MAX_FRAME_BYTES,
};
pub use frame::{ClientFrame, ErrorCode, PresenceStatus, ServerFrame};
pub use frame::{Limits, RoomInfo};
pub use nick::{
    nick_key, nick_skeleton, nick_taken_message, normalize_nick, validate_nick, NickError,
    NickRule, MAX_NICK_LEN,
};
pub use sanitize::{escape_control, is_unsafe_char};
pub use server::config::{
    ServerConfig, DEFAULT_HELD_PING_MS, DEFAULT_HISTORY_SCAN, DEFAULT_ID_WINDOW,
    DEFAULT_MAX_RECIPIENTS, LOBBY,
};
pub use server::durable::{hash_token, Record, RestoreError, TokenHash};
pub use server::event::{
    room_name, Event, EventBody, Recipient, SessionId, WireEvent, MAX_ROOM_LEN,
};
pub use server::log::{LogError, Roster, RosterMember};
pub use server::output::{Kick, Output};
pub use server::reads::{ReadPage, ReadQuery};
pub use server::wire::push_json_string;

/// The `bytes` crate, whose `Bytes` and `BytesMut` the codec takes and
/// gives ([`FrameDecoder::decode`], [`encode`], [`encode_into`]):
/// `chatproto::bytes::BytesMut` is the very type, so a crate using
/// chatproto needs no `bytes` dependency of its own to call them (nor one
/// of the same version).
pub use bytes;
pub use server::{ClientId, Now, Server};
