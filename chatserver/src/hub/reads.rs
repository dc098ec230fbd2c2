//! Read pages answered (by the store, the cluster, or from memory),
//! encoded and released to the client that asked, ahead of what was held
//! for it meanwhile.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use chatproto::{encode_into, ClientId, ReadPage};
use tracing::warn;

use super::Hub;
use crate::peer::Push;

impl Hub {
    /// The store read history for `client`: its answer goes before what
    /// was held for it meanwhile.
    pub(super) fn answer_read(
        &mut self,
        ticket: u64,
        client: ClientId,
        found: Result<ReadPage, String>,
    ) {
        if let Err(e) = &found {
            warn!(error = %e, "the history database could not read; answering from memory");
        }
        let frames = match self.server.handle_page(ticket, found) {
            Some((to, frames)) if to == client => frames,
            _ => Vec::new(),
        };
        let Some(peer) = self.peers.get(&client) else {
            return;
        };
        let mut answer = Vec::with_capacity(frames.len());
        for frame in &frames {
            match encode_shared(&mut self.scratch, frame, self.max_frame_bytes) {
                Ok(bytes) => {
                    peer.owe_for(frame, bytes.len());
                    answer.push(self.budget.track(bytes))
                }
                Err(e) => warn!(client = %client, error = %e, "a frame did not encode"),
            }
        }
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
/// it), instead of one allocation each.
fn encode_shared(
    scratch: &mut BytesMut,
    frame: &impl serde::Serialize,
    max: usize,
) -> Result<Bytes, chatproto::EncodeError> {
    if scratch.capacity() < 256 {
        scratch.reserve(8 * 1024);
    }
    encode_into(frame, scratch, max)?;
    Ok(scratch.split().freeze())
}
