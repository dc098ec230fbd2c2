//! The messages sent and not yet acknowledged: held back until a fresh
//! session's replay ends, released, resent, or given up as too large.

use std::collections::VecDeque;

use super::{Client, ClientEvent};
use crate::frame::{ClientFrame, ErrorCode};

/// A message sent and not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pending {
    pub(super) id: String,
    pub(super) room: String,
    pub(super) to: Vec<String>,
    pub(super) text: String,
}

impl Client {
    /// Messages waiting to be sent (again) whose frame is larger than the
    /// server takes (`max`, from its `welcome`) are given up, each told as
    /// an `error` `msg_too_large`: sent, the frame would close the
    /// connection, and be sent again after every reconnect.
    pub(super) fn drop_too_large(&mut self, max: usize) {
        let mut kept = VecDeque::with_capacity(self.pending.len());
        for p in std::mem::take(&mut self.pending) {
            match crate::encode(&msg_frame(&p), max) {
                Err(crate::EncodeError::TooLarge { len, .. }) => self.too_large(p, len, max),
                _ => kept.push_back(p),
            }
        }
        self.pending = kept;
    }

    /// The payload limit of the server's last `welcome`, or the
    /// protocol's default from a server that said none (PROTOCOL.md 1.1):
    /// a frame over it is refused by a shell encoding with that limit, and
    /// would wait for an echo for ever.
    pub(super) fn frame_limit(&self) -> usize {
        self.limits
            .as_ref()
            .map_or(crate::DEFAULT_MAX_FRAME_BYTES, |l| {
                // As `encode` takes it, so that what is said is what holds.
                usize::try_from(l.max_frame_bytes)
                    .unwrap_or(usize::MAX)
                    .clamp(crate::MIN_MAX_FRAME_BYTES, u32::MAX as usize)
            })
    }

    /// Tell that `p`, whose frame is `len` bytes, is given up: the server
    /// takes at most `max`.
    pub(super) fn too_large(&mut self, p: Pending, len: usize, max: usize) {
        self.event(ClientEvent::Error {
            code: ErrorCode::MsgTooLarge,
            message: format!(
                "your message was not sent: its frame is {len} bytes and the server takes at most {max}"
            ),
            id: Some(p.id),
            room: Some(p.room),
        });
    }

    /// The replay of `room` is over: send what was held for it.
    pub(super) fn release(&mut self, room: &str) {
        if !self.held.remove(room) {
            return;
        }
        let frames: Vec<ClientFrame> = self
            .pending
            .iter()
            .filter(|p| p.room == room)
            .map(msg_frame)
            .collect();
        for f in frames {
            self.send(f);
        }
        if self.parting.remove(room).is_some() {
            self.send(ClientFrame::part(room));
        }
    }
}

pub(super) fn msg_frame(p: &Pending) -> ClientFrame {
    ClientFrame::msg_in(
        p.room.clone(),
        p.to.clone(),
        p.text.clone(),
        Some(p.id.clone()),
    )
}
