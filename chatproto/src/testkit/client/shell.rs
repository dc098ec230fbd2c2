//! The shell's connection, bytes and timer: a connection opened and
//! ended, server bytes fed in the shell's chunks, time passed, and the
//! client drained after each.

use std::collections::{BTreeMap, BTreeSet};

use bytes::BytesMut;

use super::checks::check_server_round_trip;
use super::{Shell, ME, PREFIX};
use crate::{Client, ClientOutput, Decoded, FrameDecoder, ServerFrame, HEADER_LEN};

impl Shell {
    pub(super) fn new(max: usize, chunk: usize) -> Self {
        let rooms = ["lobby", "rust"];
        let mut shell = Shell {
            client: Client::new(ME, rooms, PREFIX),
            chunk,
            decoder: FrameDecoder::new(max),
            buf: BytesMut::new(),
            connected: false,
            joined_here: false,
            sent_here: BTreeSet::new(),
            now: 0,
            asked: rooms.iter().map(|r| r.to_string()).collect(),
            sent: Vec::new(),
            client_bytes: ME.len() + PREFIX.len(),
            server_bytes: 0,
            last_seq: BTreeMap::new(),
            rosters: BTreeMap::new(),
        };
        shell.connect();
        shell
    }

    pub(super) fn connect(&mut self) {
        self.client.handle_connected(self.now);
        self.connected = true;
        self.joined_here = false;
        self.sent_here.clear();
        self.decoder = FrameDecoder::new(self.decoder.max_frame_bytes());
        self.buf.clear();
        self.drain();
    }

    pub(super) fn disconnect(&mut self) {
        self.client.handle_disconnected();
        self.gone();
        self.drain();
    }

    /// The connection is over: what was read and not decoded goes with it.
    pub(super) fn gone(&mut self) {
        self.connected = false;
        self.joined_here = false;
        self.buf.clear();
    }

    /// Bytes from the server, in the shell's chunks, each frame handed to
    /// the client as soon as it is whole.
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        if !self.connected {
            // No connection, no bytes.
            return;
        }
        self.server_bytes += bytes.len();
        let max = self.decoder.max_frame_bytes();
        for piece in bytes.chunks(self.chunk) {
            self.buf.extend_from_slice(piece);
            loop {
                match self.decoder.decode::<ServerFrame>(&mut self.buf) {
                    Decoded::Incomplete => break,
                    // A frame the shell cannot read is skipped: the framing
                    // is still in sync.
                    Decoded::Invalid(_) => {}
                    Decoded::Broken(_) => {
                        // The stream cannot be resynchronised: close it.
                        self.disconnect();
                        return;
                    }
                    Decoded::Frame(frame) => {
                        check_server_round_trip(&frame, max);
                        let pending = self.client.unacknowledged();
                        self.client.handle_frame(self.now, frame);
                        self.drain();
                        assert!(
                            self.client.unacknowledged() <= pending,
                            "a server frame added to the unacknowledged messages"
                        );
                    }
                }
                // The decoder may reserve one checked body; anything more is a leak.
                let bound = 2 * (max + HEADER_LEN + self.chunk);
                assert!(
                    self.buf.capacity() <= bound,
                    "read buffer grew to {}",
                    self.buf.capacity()
                );
            }
        }
    }

    /// Time passes to `now`; the timer runs.
    pub(super) fn tick(&mut self, now: u64) {
        self.now = self.now.max(now);
        let due = self.client.poll_timeout().is_some_and(|at| at <= self.now);
        self.client.handle_timeout(self.now);
        let done = self.drain();
        if due {
            // Else a shell sleeping until `poll_timeout` wakes for ever.
            assert!(done > 0, "a deadline passed and the timer did nothing");
        } else {
            assert_eq!(done, 0, "the timer acted before its deadline");
        }
    }

    /// Drain the client, checking every output; returns how many.
    pub(super) fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Some(out) = self.client.poll() {
            n += 1;
            match out {
                ClientOutput::Send(frame) => self.check_send(frame),
                ClientOutput::Event(e) => self.check_event(e),
            }
        }
        self.check_state();
        n
    }
}
