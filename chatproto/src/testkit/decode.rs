//! The body of the `decode` fuzz target: the codec fed a stream in chunks,
//! checked against serde and a round trip.

use bytes::BytesMut;

use crate::{encode, ClientFrame, Decoded, FrameDecoder};

/// Feed `data` to a [`FrameDecoder`] in chunks chosen by its first byte, and
/// check what it yields: no panic, no buffer grown past the limit plus one
/// chunk, [`ClientFrame::from_payload`] and serde making the same of every
/// payload, and every frame re-encoding and decoding to the same frame.
///
/// The `decode` fuzz target and the corpus replay test both call this.
pub fn check_decode(data: &[u8]) {
    let Some((&knob, rest)) = data.split_first() else {
        return;
    };
    let max = crate::MIN_MAX_FRAME_BYTES;
    let chunk = 1 + (knob as usize % 64) * (knob as usize % 7 + 1);
    let mut dec = FrameDecoder::new(max);
    let mut buf = BytesMut::new();
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            let parsed = dec.decode_with(&mut buf, |payload| {
                let fast = ClientFrame::from_payload(payload);
                let serde = crate::parse_payload::<ClientFrame>(payload)
                    .map_err(|e| crate::client_de::in_room(payload, e));
                assert_eq!(fast, serde, "the plain-frame scanner agrees with serde");
                fast
            });
            match parsed {
                Decoded::Incomplete => break,
                Decoded::Broken(why) => {
                    assert_eq!(
                        dec.decode::<ClientFrame>(&mut buf),
                        Decoded::Broken(why),
                        "error is sticky"
                    );
                    return;
                }
                Decoded::Invalid(_) => {}
                Decoded::Frame(frame) => {
                    let wire = encode(&frame, max).expect("a decoded frame re-encodes");
                    let mut again = BytesMut::from(&wire[..]);
                    let back = FrameDecoder::new(max).decode::<ClientFrame>(&mut again);
                    assert_eq!(back, Decoded::Frame(frame), "round trip");
                }
            }
            // The decoder may reserve one checked body; anything more is a leak.
            let bound = 2 * (max + crate::HEADER_LEN + chunk);
            assert!(buf.capacity() <= bound, "buffer grew to {}", buf.capacity());
        }
    }
}
