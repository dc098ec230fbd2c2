//! Length-prefixed JSON framing: a total, incremental decoder and a bounded encoder.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of JSON.
//! [`FrameDecoder`] never panics and never reserves memory for a length it has
//! not checked against its limit; [`Decoded`] names what it found.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The size of the length header in bytes.
pub const HEADER_LEN: usize = 4;

/// The default limit on a frame's payload, in bytes.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 65_536;

/// The smallest payload limit a [`FrameDecoder`] or encoder accepts; smaller
/// settings are raised to it so a `welcome` and an `error` always fit.
pub const MIN_MAX_FRAME_BYTES: usize = 1024;

/// A broken stream: the connection must close because framing cannot resync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// The length header announced more than the limit. When its four
    /// bytes read as the start of a JSON object (`{` and three more
    /// printable characters: a frame sent without its length header), the
    /// text says so.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes{}; closing", json_without_header(.len))]
    #[non_exhaustive]
    TooLarge {
        /// The announced payload length.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// The length header was zero, which no valid frame has.
    #[error("zero-length frame: every frame carries a JSON object; closing")]
    Empty,
}

/// What [`FramingError::TooLarge`] adds when the length `len` is four
/// bytes of text beginning with `{`: JSON sent without the length header.
fn json_without_header(len: &u64) -> String {
    let bytes = (*len).to_be_bytes();
    let head = &bytes[4..];
    if bytes[..4] != [0; 4] || head[0] != b'{' || !head.iter().all(|b| (0x20..0x7f).contains(b)) {
        return String::new();
    }
    let text = String::from_utf8_lossy(head);
    format!(
        " (its length header reads as text, '{text}': each frame begins with its \
         payload's length in 4 bytes, big-endian, before the JSON)"
    )
}

impl FramingError {
    /// [`FramingError::TooLarge`]: a frame of `len` bytes over the limit
    /// `max` (for a transport that learns a frame's length its own way,
    /// such as a WebSocket message).
    pub fn too_large(len: u64, max: usize) -> Self {
        FramingError::TooLarge { len, max }
    }

    /// The error code to send before closing.
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            FramingError::TooLarge { .. } => crate::ErrorCode::FrameTooLarge,
            FramingError::Empty => crate::ErrorCode::EmptyFrame,
        }
    }
}

/// A well-framed payload that is not a valid frame; the connection stays usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The payload is not UTF-8.
    #[error("payload is not valid UTF-8 (invalid byte at offset {valid_up_to})")]
    #[non_exhaustive]
    NotUtf8 {
        /// Length of the valid UTF-8 prefix.
        valid_up_to: usize,
    },
    /// The payload is UTF-8 but not a JSON object.
    #[error("payload is not a JSON object; every frame is {{\"type\":...}}")]
    NotObject,
    /// The payload is not JSON, or is an object that is not a known frame
    /// (a missing or mistyped member; an unknown `type` is
    /// [`PayloadError::UnknownKind`]).
    #[error("{0}")]
    Invalid(String),
    /// A JSON object whose `type` is a string the receiver does not know:
    /// a kind a later version of the protocol added. A client SHOULD
    /// ignore it, saying nothing (PROTOCOL.md sections 2 and 8); a server
    /// answers `bad_frame` with `message`, as for
    /// [`PayloadError::Invalid`].
    #[error("{message}")]
    #[non_exhaustive]
    UnknownKind {
        /// The `type` as it came.
        kind: String,
        /// What is wrong, in the words [`PayloadError::Invalid`] would use.
        message: String,
    },
    /// A client frame about one room (`msg`, `enter`, `part`, `history`)
    /// with another member missing or of the wrong type, whose `room`
    /// could still be read: [`ClientFrame::from_payload`](crate::ClientFrame::from_payload)
    /// says it so, where [`parse_payload`] says [`PayloadError::Invalid`]
    /// with the same words. A server answers `bad_frame` carrying the room
    /// (and the `msg`'s `id`), as every other error answering such a frame
    /// does (PROTOCOL.md sections 5.3 and 6), so that its sender can tell
    /// which request failed.
    #[error("{message}")]
    #[non_exhaustive]
    InRoom {
        /// The `room` as sent (`lobby` for a `msg` without one).
        room: String,
        /// A `msg`'s `id`, when it was a string.
        id: Option<String>,
        /// What is wrong, in the words [`PayloadError::Invalid`] would use.
        message: String,
    },
}

/// Why a frame could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The payload would exceed the limit.
    #[error("encoded frame of {len} bytes exceeds the limit of {max} bytes")]
    #[non_exhaustive]
    TooLarge {
        /// The payload length that was produced.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The value could not be written as JSON (a `Serialize` impl that
    /// failed, a map whose keys are not strings); the frames of this crate
    /// always can be.
    #[error("frame could not be serialized: {0}")]
    Json(SerializeError),
}

/// What the JSON writer said when it could not write a value, as
/// [`EncodeError::Json`] carries it: its words, in `Display`.
///
/// It is chatproto's own type, holding only the text: the JSON library
/// can change its major version (or its error's auto traits) without
/// changing chatproto's API. It has no
/// [`source`](std::error::Error::source), as there is nothing more to
/// say than its text, which [`EncodeError`]'s own includes.
///
/// ```
/// use std::collections::HashMap;
/// use chatproto::{encode, EncodeError};
///
/// // JSON keys are strings: a map keyed by pairs cannot be written.
/// let map: HashMap<(u8, u8), u8> = HashMap::from([((1, 2), 3)]);
/// let err = encode(&map, 1024).unwrap_err();
/// let EncodeError::Json(why) = &err else { panic!("{err:?}") };
/// assert_eq!(why.to_string(), "key must be a string"); // the JSON writer's words
/// assert_eq!(err.to_string(), format!("frame could not be serialized: {why}"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerializeError(Box<str>);

impl SerializeError {
    fn new(e: &serde_json::Error) -> Self {
        SerializeError(e.to_string().into())
    }
}

impl std::fmt::Display for SerializeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SerializeError {}

/// What one call to [`FrameDecoder::decode`] found at the front of the buffer.
///
/// Each outcome asks for a different action, and a `match` names them all:
///
/// ```
/// use chatproto::bytes::BytesMut;
/// use chatproto::{ClientFrame, Decoded, FrameDecoder};
///
/// # fn handle(_: ClientFrame) {}
/// let mut dec = FrameDecoder::default();
/// let mut buf = BytesMut::from(&b"\0\0\0\x0f{\"type\":\"ping\"}"[..]);
/// loop {
///     match dec.decode::<ClientFrame>(&mut buf) {
///         Decoded::Frame(frame) => handle(frame),
///         // Answer `bad_frame` and carry on: the framing is still in sync.
///         Decoded::Invalid(why) => eprintln!("bad frame: {why}"),
///         // Read more bytes into `buf`, then call again.
///         Decoded::Incomplete => break,
///         // Send `why.code()`, then close: the stream cannot resync.
///         Decoded::Broken(why) => return eprintln!("closing: {why}"),
///     }
/// }
/// ```
#[must_use = "a decoded frame, or a reason to answer or to close, is lost if ignored"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<T> {
    /// A whole frame, parsed.
    Frame(T),
    /// A whole frame whose payload is not a valid `T`: answer `bad_frame`
    /// and carry on, the framing is still in sync.
    Invalid(PayloadError),
    /// No whole frame yet: read more bytes into the buffer and call again.
    Incomplete,
    /// The stream is broken and cannot resync: send [`FramingError::code`]
    /// and close. Every later call says the same.
    Broken(FramingError),
}

impl<T> Decoded<T> {
    /// The frame, if this is one.
    pub fn frame(self) -> Option<T> {
        match self {
            Decoded::Frame(f) => Some(f),
            _ => None,
        }
    }
}

/// At most this much room is reserved ahead for a frame from its header
/// alone (a larger one's buffer grows as its bytes arrive): a peer that
/// announced a huge limit, and then a header near it, makes no allocation
/// of that size by itself.
const RESERVE_AHEAD: usize = 1 << 20;

/// An incremental decoder for length-prefixed frames.
///
/// Feed it the bytes read so far in a [`BytesMut`]; it consumes whole frames
/// from the front and leaves a partial frame in place.
///
/// Give it the limit the peer was told: on a server, its
/// [`ServerConfig::max_frame_bytes`](crate::ServerConfig::max_frame_bytes),
/// which the `welcome` announces (`FrameDecoder::new(server.config().max_frame_bytes)`);
/// on a client, [`Client::max_frame_bytes`](crate::Client::max_frame_bytes):
/// what the server announced, but at most
/// [`CLIENT_MAX_FRAME_BYTES`](crate::CLIENT_MAX_FRAME_BYTES) (not the
/// announced limit itself from [`Client::limits`](crate::Client::limits):
/// a hostile server could announce 4 GiB). [`FrameDecoder::default`]
/// takes [`DEFAULT_MAX_FRAME_BYTES`], so with a server that raised its limit
/// it calls a frame the peer was allowed to send [`Decoded::Broken`]. A
/// new decoder (one with a higher limit, once a `welcome` announced it)
/// may replace one between any two calls, whatever they answered but
/// [`Decoded::Broken`]: a frame not decoded yet stays whole in the
/// buffer, its header included, until all of it has arrived.
///
/// ```
/// use chatproto::bytes::BytesMut;
/// use chatproto::{encode, ClientFrame, Decoded, FrameDecoder};
///
/// let wire = encode(&ClientFrame::Ping, 1024).unwrap();
/// let mut dec = FrameDecoder::new(1024);
/// let mut buf = BytesMut::from(&wire[..3]);
/// assert_eq!(dec.decode::<ClientFrame>(&mut buf), Decoded::Incomplete);
/// buf.extend_from_slice(&wire[3..]);
/// assert_eq!(dec.decode(&mut buf), Decoded::Frame(ClientFrame::Ping));
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
    /// A framing error happened; every later call repeats it.
    failed: Option<FramingError>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_BYTES)
    }
}

impl FrameDecoder {
    /// A decoder that rejects payloads over `max_frame_bytes`, raised to at
    /// least [`MIN_MAX_FRAME_BYTES`] and lowered to at most `u32::MAX`, the
    /// most a length header can say (PROTOCOL.md section 1), as
    /// [`encode`] takes a limit and a [`Server`](crate::Server) announces
    /// one.
    pub fn new(max_frame_bytes: usize) -> Self {
        FrameDecoder {
            max_frame_bytes: max_frame_bytes.clamp(MIN_MAX_FRAME_BYTES, u32::MAX as usize),
            failed: None,
        }
    }

    /// The payload limit in force.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// Whether `buf` (the buffer passed to `decode`) holds bytes not yet
    /// decoded: part of a frame, or whole frames not decoded yet. Called
    /// after `decode` said [`Decoded::Incomplete`], that is a frame
    /// started but not finished (a stream that ends then ended mid-frame).
    pub fn is_mid_frame(&self, buf: &BytesMut) -> bool {
        !buf.is_empty()
    }

    /// Take the next whole payload off the front of `buf`, without parsing it.
    ///
    /// Returns `Ok(None)` when more bytes are needed. Only after a header has
    /// passed the limit check does it reserve room for that body.
    pub fn decode_payload(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FramingError> {
        Ok(self.next_body(buf)?.map(|len| buf.split_to(len).freeze()))
    }

    /// The length of the next whole payload, which starts `buf` once this
    /// returns it (its header consumed); `Ok(None)` when more bytes are
    /// needed. The caller takes the payload off.
    fn next_body(&mut self, buf: &mut BytesMut) -> Result<Option<usize>, FramingError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        if buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let err = if len == 0 {
            Some(FramingError::Empty)
        } else if len as u64 > self.max_frame_bytes as u64 {
            Some(FramingError::TooLarge {
                len: len as u64,
                max: self.max_frame_bytes,
            })
        } else {
            None
        };
        if let Some(err) = err {
            self.failed = Some(err);
            return Err(err);
        }
        // A `u32` fits a `usize` here (the limit, a `usize`, held it), but
        // with the header's 4 bytes it may not on a 32-bit target: the
        // body is compared with what follows the header instead.
        let len = len as usize;
        let have = buf.len() - HEADER_LEN;
        if have < len {
            // The length is checked, so reserving for it is bounded; and
            // no more than `RESERVE_AHEAD` at once (a frame larger than
            // that grows its buffer as it arrives, to at most about twice
            // its size).
            buf.reserve((len - have).min(RESERVE_AHEAD));
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        Ok(Some(len))
    }

    /// Take the next whole frame off the front of `buf` and parse it as `T`.
    pub fn decode<T: DeserializeOwned>(&mut self, buf: &mut BytesMut) -> Decoded<T> {
        self.decode_with(buf, parse_payload)
    }

    /// Take the next whole frame off the front of `buf` and parse its
    /// payload with `parse`: [`ClientFrame::from_payload`](crate::ClientFrame::from_payload)
    /// on a server, say.
    pub fn decode_with<T>(
        &mut self,
        buf: &mut BytesMut,
        parse: impl FnOnce(&[u8]) -> Result<T, PayloadError>,
    ) -> Decoded<T> {
        // Parsed where it lies, then dropped: the buffer is never shared,
        // so it can be used again whole.
        match self.next_body(buf) {
            Ok(Some(len)) => {
                let parsed = parse(&buf[..len]);
                buf.advance(len);
                match parsed {
                    Ok(frame) => Decoded::Frame(frame),
                    Err(why) => Decoded::Invalid(why),
                }
            }
            Ok(None) => Decoded::Incomplete,
            Err(why) => Decoded::Broken(why),
        }
    }
}

/// Parse one payload (the bytes after the length header) as a frame of type `T`.
pub fn parse_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, PayloadError> {
    let text = std::str::from_utf8(payload).map_err(|e| PayloadError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    match text.trim_start().as_bytes().first() {
        Some(b'{') => {}
        // Not an object: say so plainly, unless it is not JSON at all.
        _ => {
            return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Ok(_) => PayloadError::NotObject,
                Err(e) => PayloadError::Invalid(format!("payload is not JSON: {e}")),
            })
        }
    }
    serde_json::from_str(text).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            return PayloadError::Invalid(format!("payload is not JSON: {e}"));
        }
        let message = format!("not a valid frame: {e}");
        match unknown_kind(text, &e) {
            Some(kind) => PayloadError::UnknownKind { kind, message },
            None => PayloadError::Invalid(message),
        }
    })
}

/// The `type` of the object `text` when `e`, the error parsing it, says
/// that is what was unknown (the frame enums are tagged by `type`: serde
/// names the tag it did not know); `None` for every other fault.
fn unknown_kind(text: &str, e: &serde_json::Error) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Tagged {
        #[serde(rename = "type")]
        kind: String,
    }
    let Tagged { kind } = serde_json::from_str(text).ok()?;
    e.to_string()
        .starts_with(&format!("unknown variant `{kind}`"))
        .then_some(kind)
}

impl crate::ClientFrame {
    /// Parse one payload as a client frame: the same frame or error as
    /// [`parse_payload`]`::<ClientFrame>`, sooner for the plain frames
    /// clients send (flat objects whose strings have no escapes), which
    /// are read without serde. One difference: a frame about a room that
    /// is bad in another member, whose `room` could be read, is
    /// [`PayloadError::InRoom`] (with the same words), so that the
    /// `bad_frame` answering it can name the room.
    ///
    /// ```
    /// use chatproto::ClientFrame;
    ///
    /// let frame = ClientFrame::from_payload(br#"{"type":"msg","to":["bob"],"text":"hi"}"#);
    /// assert_eq!(frame, Ok(ClientFrame::msg(vec!["bob".into()], "hi")));
    /// ```
    pub fn from_payload(payload: &[u8]) -> Result<Self, PayloadError> {
        match std::str::from_utf8(payload)
            .ok()
            .and_then(crate::client_scan::scan)
        {
            Some(frame) => Ok(frame),
            None => parse_payload(payload).map_err(|e| crate::client_de::in_room(payload, e)),
        }
    }
}

/// The length of `value` as JSON, as [`encode`] writes its payload,
/// counted without writing it anywhere; `None` if it cannot be written.
pub(crate) fn json_len<T: Serialize + ?Sized>(value: &T) -> Option<usize> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    serde_json::to_writer(&mut n, value).ok().map(|()| n.0)
}

/// Append `frame` to `dst` as one length-prefixed frame of at most
/// `max_frame_bytes` payload bytes (taken as [`encode`] takes it). On
/// error `dst` is left as it was.
pub fn encode_into<T: Serialize>(
    frame: &T,
    dst: &mut BytesMut,
    max_frame_bytes: usize,
) -> Result<(), EncodeError> {
    frame_into(dst, max_frame_bytes, |dst| {
        // `writer()` takes the handle; the bytes are in `dst` either way.
        serde_json::to_writer(dst.writer(), frame)
            .map_err(|e| EncodeError::Json(SerializeError::new(&e)))
    })
}

/// Append one length-prefixed frame whose payload `payload` writes, of at
/// most `max_frame_bytes` bytes. On error `dst` is left as it was.
pub(crate) fn frame_into(
    dst: &mut BytesMut,
    max_frame_bytes: usize,
    payload: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    // The header is a u32, so no limit can allow more than u32::MAX bytes.
    let max = max_frame_bytes.clamp(MIN_MAX_FRAME_BYTES, u32::MAX as usize);
    let start = dst.len();
    dst.put_u32(0);
    let result = payload(dst);
    let len = dst.len() - start - HEADER_LEN;
    if let Err(e) = result {
        dst.truncate(start);
        return Err(e);
    }
    if len > max {
        dst.truncate(start);
        return Err(EncodeError::TooLarge { len, max });
    }
    dst[start..start + HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Encode `frame` as one length-prefixed frame of at most `max_frame_bytes`
/// payload bytes. As [`FrameDecoder::new`] does, a limit below
/// [`MIN_MAX_FRAME_BYTES`] is raised to it, and one above `u32::MAX`, more
/// than the header can say, is lowered to that.
///
/// ```
/// use chatproto::{encode, ClientFrame, EncodeError, MIN_MAX_FRAME_BYTES};
///
/// let long = ClientFrame::msg(vec![], "x".repeat(500));
/// // A limit of 100 is taken as 1024: the frame fits.
/// assert!(encode(&long, 100).is_ok());
/// let longer = ClientFrame::msg(vec![], "x".repeat(2_000));
/// match encode(&longer, 100) {
///     Err(EncodeError::TooLarge { max, .. }) => assert_eq!(max, MIN_MAX_FRAME_BYTES),
///     other => panic!("{other:?}"),
/// }
/// ```
pub fn encode<T: Serialize>(frame: &T, max_frame_bytes: usize) -> Result<Bytes, EncodeError> {
    // Most frames (a msg with a short text) fit without growing.
    let mut buf = BytesMut::with_capacity(256);
    encode_into(frame, &mut buf, max_frame_bytes)?;
    Ok(buf.freeze())
}
