//! Read pages answered (by the store, the cluster, or from memory),
//! encoded and released to the client that asked, ahead of what was held
//! for it meanwhile.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use chatproto::{encode_into, ClientId, ReadPage};
use tracing::warn;

use super::Hub;
use crate::peer::Push;
use crate::stage::OWN_FRAME_BYTES;

impl Hub {
    /// Tell each client whose frame that asks to read the core took that
    /// it is answered ([`Peer::read_answered`](crate::peer::Peer::read_answered)),
    /// once it is: at the end of the turn (its answer, from memory, is
    /// charged; one from disk is a read the peer waits for), unless the
    /// core holds answers behind the store, which has the turn's records
    /// (through `to_store_through`) to write first. Called at the end of
    /// each turn. (In cluster mode an `enter` is answered once the log
    /// brings it back, later than this: there the next read may pass
    /// before its answer is charged.)
    pub(super) fn report_reads(&mut self) {
        if self.reads_taken.is_empty() && self.reads_behind_store.is_empty() {
            return;
        }
        let held = self.store.is_some() && self.server.outputs_waiting() > 0;
        if held {
            let through = self.to_store_through;
            let taken = self.reads_taken.drain(..).map(|id| (through, id));
            self.reads_behind_store.extend(taken);
        }
        let stored = self.stored_through;
        while let Some(&(through, id)) = self.reads_behind_store.front() {
            if held && through > stored {
                break;
            }
            self.reads_behind_store.pop_front();
            if let Some(peer) = self.peers.get(&id) {
                peer.read_answered();
            }
        }
        for id in self.reads_taken.drain(..) {
            if let Some(peer) = self.peers.get(&id) {
                peer.read_answered();
            }
        }
    }

    /// The store read history for `client`: its answer goes before what
    /// was held for it meanwhile, charged to its read allowance as sent,
    /// and for what the store looked at to find it.
    pub(super) fn answer_read(
        &mut self,
        ticket: u64,
        client: ClientId,
        found: Result<ReadPage, String>,
    ) {
        if let Err(e) = &found {
            warn!(error = %e, "the history database could not read; answering from memory");
        }
        let looked_at = found.as_ref().map_or(0, |page| page.looked_at);
        let frames = match self.server.handle_page(ticket, found) {
            Some((to, frames)) if to == client => frames,
            _ => Vec::new(),
        };
        let Some(peer) = self.peers.get(&client) else {
            return;
        };
        let mut answer = Vec::with_capacity(frames.len());
        let mut answered = 0;
        for frame in &frames {
            match encode_shared(&mut self.scratch, frame, self.max_frame_bytes) {
                Ok(bytes) => {
                    peer.charge_read(frame, bytes.len());
                    answered += bytes.len();
                    answer.push(self.budget.track(bytes))
                }
                Err(e) => warn!(client = %client, error = %e, "a frame did not encode"),
            }
        }
        // What the database looked at to find it, beyond what it sends.
        peer.charge_looked_at(looked_at, answered);
        match peer.release(ticket, answer) {
            Push::Queued { newly, over } => {
                if newly {
                    self.to_flush.push(Arc::clone(peer));
                }
                if over {
                    self.lagging.insert(client);
                }
            }
            Push::Overflow => self.overflow(client),
            Push::Closed => {}
        }
    }
}

/// Encode `frame` into the shared scratch buffer and split it off: frames
/// encoded one after another share one allocation (each holds a count on
/// it), instead of one allocation each. A frame over
/// [`OWN_FRAME_BYTES`] is copied into one of its own instead, as the
/// stage does, so that it holds no more than its bytes.
fn encode_shared(
    scratch: &mut BytesMut,
    frame: &impl serde::Serialize,
    max: usize,
) -> Result<Bytes, chatproto::EncodeError> {
    if scratch.capacity() < 256 {
        scratch.reserve(8 * 1024);
    }
    let room = scratch.capacity();
    if let Err(e) = encode_into(frame, scratch, max) {
        // Grown for a frame refused once written: that room goes too.
        if scratch.capacity() > room {
            *scratch = BytesMut::new();
        }
        return Err(e);
    }
    if scratch.len() > OWN_FRAME_BYTES {
        let own = Bytes::copy_from_slice(scratch);
        // The room it grew to goes too: small frames split off it later
        // would each keep all of it.
        *scratch = BytesMut::new();
        return Ok(own);
    }
    Ok(scratch.split().freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatproto::ServerFrame;

    #[test]
    fn a_large_frame_is_copied_out_and_the_scratch_buffer_lets_its_room_go() {
        let mut scratch = BytesMut::new();
        let small = encode_shared(&mut scratch, &ServerFrame::notice("s"), 1 << 20).unwrap();
        let text = "x".repeat(60_000);
        let large = encode_shared(&mut scratch, &ServerFrame::notice(&text), 1 << 20).unwrap();
        let mut expected = BytesMut::new();
        encode_into(&ServerFrame::notice(&text), &mut expected, 1 << 20).unwrap();
        assert_eq!(large, expected);
        assert_eq!(scratch.capacity(), 0, "the room grown for it is let go");
        // Small frames still share one allocation, a new one: each starts
        // where the one before it ends.
        let next = encode_shared(&mut scratch, &ServerFrame::notice("t"), 1 << 20).unwrap();
        let after = encode_shared(&mut scratch, &ServerFrame::notice("u"), 1 << 20).unwrap();
        assert_eq!(after.as_ptr(), next.as_ptr().wrapping_add(next.len()));
        assert_ne!(next.as_ptr(), small.as_ptr().wrapping_add(small.len()));
    }

    #[test]
    fn a_frame_refused_as_too_large_lets_its_room_go() {
        let mut scratch = BytesMut::new();
        let text = "x".repeat(100_000);
        assert!(encode_shared(&mut scratch, &ServerFrame::notice(&text), 65_536).is_err());
        let room = scratch.capacity();
        assert!(
            room < 20 * 1024,
            "the scratch buffer kept {room} bytes of room"
        );
        let next = encode_shared(&mut scratch, &ServerFrame::notice("t"), 65_536).unwrap();
        let mut expected = BytesMut::new();
        encode_into(&ServerFrame::notice("t"), &mut expected, 65_536).unwrap();
        assert_eq!(next, expected);
    }
}
