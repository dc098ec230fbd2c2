//! One turn's outbound frames, staged before they reach the peers' queues.
//!
//! The hub encodes every frame of a turn one after another into one of
//! two buffers, by who it goes to (see below; a large one into an
//! allocation of its own), and notes, per peer, which part of them goes
//! there. A member of a busy room gets every event of the turn, so its
//! part is usually one run of a buffer (unless another room's events came
//! in between): at the end of the turn it is queued as one slice, written
//! as one buffer of a `writev`, instead of a queue entry (a lock, a count
//! on the buffer, a slot) per frame. (A WebSocket's writer task cuts a run
//! back into frames, one message each.)
//!
//! Order is kept: entries are queued in the order they were staged, and a
//! peer's frames only ever join its latest entry. Frames for many and for
//! one go in two buffers, so that a member's run of a room's events goes on
//! past an echo or a private message to someone else.

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use chatproto::{encode_into, WireEvent};

use crate::peer::Peer;

/// Past this many staged bytes the hub queues the stage before going on,
/// so that a turn holds at most about this (and one frame more) outside
/// the budget's count and the queues' caps.
pub const STAGE_BYTES: usize = 64 * 1024;

/// Past this many runs (each about 40 bytes of bookkeeping) likewise: many
/// rooms' events interleaved start a run each per member.
pub const STAGE_RUNS: usize = 16 * 1024;

/// A frame longer than this is copied out of the stage's buffer into an
/// allocation of its own, exactly its size. Encoded where it is, a large
/// frame made the buffer grow to twice what it needed (the text's bytes
/// made room for themselves exactly, then the closing quote doubled it),
/// and the spare half stayed allocated as long as the frame was queued:
/// a burst of slow readers sent large replays held twice the bytes
/// `--outbound-total-bytes` counts (BENCHMARKS.md). Small frames share
/// the buffer, whose spare room the next ones use.
pub const OWN_FRAME_BYTES: usize = 8 * 1024;

/// Which of the stage's buffers a frame is encoded into: frames for many
/// (a room's events) apart from frames for one (answers, echoes, private
/// messages), so that a member's run of a room's events is not broken by
/// frames that go to someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// For one peer.
    One = 0,
    /// For several.
    Many = 1,
}

/// Where a staged frame is: its buffer and its bytes there.
#[derive(Debug, Clone)]
pub struct Staged {
    /// Its buffer: a shared one, by its [`Audience`] as a number (0 or
    /// 1), or a frame's own (over [`OWN_FRAME_BYTES`]), [`OWN`] plus its
    /// index in the stage's `own`. A number, not an enum, for the one
    /// comparison [`Stage::add`] makes per recipient.
    place: usize,
    range: Range<usize>,
}

/// The first [`Staged::place`] that is a frame's own buffer.
const OWN: usize = 2;

impl Staged {
    /// Its length in bytes, header included.
    pub fn len(&self) -> usize {
        self.range.len()
    }
}

/// The frames of the current turn and where each goes.
#[derive(Debug, Default)]
pub struct Stage {
    bufs: [BytesMut; 2],
    /// Frames over [`OWN_FRAME_BYTES`], each in an allocation of its own.
    own: Vec<Bytes>,
    /// Their bytes.
    own_bytes: usize,
    /// Each peer's runs of one buffer, in the order they were staged.
    runs: Vec<(Arc<Peer>, Staged)>,
}

impl Stage {
    /// Encode `frame` at the end of `audience`'s buffer (or, past
    /// [`OWN_FRAME_BYTES`], into an allocation of its own); where it is.
    pub fn encode(
        &mut self,
        frame: &impl serde::Serialize,
        audience: Audience,
        max: usize,
    ) -> Result<Staged, chatproto::EncodeError> {
        self.write(audience, |buf| encode_into(frame, buf, max))
    }

    /// Encode a room's event (chatproto's own writer for it, the same
    /// bytes as [`encode`](Stage::encode)); where it is.
    pub fn encode_event(
        &mut self,
        event: &WireEvent<'_>,
        audience: Audience,
        max: usize,
    ) -> Result<Staged, chatproto::EncodeError> {
        self.write(audience, |buf| event.encode_into(buf, max))
    }

    fn write(
        &mut self,
        audience: Audience,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), chatproto::EncodeError>,
    ) -> Result<Staged, chatproto::EncodeError> {
        let buf = &mut self.bufs[audience as usize];
        let start = buf.len();
        if buf.capacity() - start < 256 {
            buf.reserve(16 * 1024);
        }
        let room = buf.capacity();
        let encoded = encode(buf);
        // (A frame that could not be encoded is taken off again.)
        let len = buf.len() - start;
        let own = encoded.is_ok() && len > OWN_FRAME_BYTES;
        if own {
            self.own.push(Bytes::copy_from_slice(&buf[start..]));
            buf.truncate(start);
        }
        // Grown for a frame that is not there (its own now, or refused as
        // too large once written), the buffer would keep that room while
        // the frames after it are queued: the frames before it go to one
        // their size instead (a copy of at most a stage).
        if buf.len() == start && buf.capacity() > room {
            let mut fresh = BytesMut::with_capacity(start + 16 * 1024);
            fresh.extend_from_slice(buf);
            *buf = fresh;
        }
        encoded?;
        if own {
            self.own_bytes += len;
            return Ok(Staged {
                place: OWN + self.own.len() - 1,
                range: 0..len,
            });
        }
        Ok(Staged {
            place: audience as usize,
            range: start..buf.len(),
        })
    }

    /// `frame` (from [`encode`](Stage::encode)) goes to `peer`: it joins
    /// the peer's latest run if it follows it in the same buffer.
    pub fn add(&mut self, peer: &Arc<Peer>, frame: &Staged) {
        let at = peer.staged.load(Ordering::Relaxed);
        if let Some((_, run)) = at.checked_sub(1).and_then(|i| self.runs.get_mut(i)) {
            // (A frame in a buffer of its own starts it, at 0: none
            // follows another there.)
            if run.place == frame.place && run.range.end == frame.range.start {
                run.range.end = frame.range.end;
                return;
            }
        }
        self.runs.push((Arc::clone(peer), frame.clone()));
        peer.staged.store(self.runs.len(), Ordering::Relaxed);
    }

    /// Whether the stage holds nothing.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty() && self.own.is_empty() && self.bufs.iter().all(BytesMut::is_empty)
    }

    /// Whether the stage should be queued before the turn goes on.
    pub fn is_full(&self) -> bool {
        self.runs.len() >= STAGE_RUNS
            || self.own_bytes + self.bufs.iter().map(BytesMut::len).sum::<usize>() >= STAGE_BYTES
    }

    /// Empty the stage: hand each peer's runs, in order, to `queue` as
    /// slices of the staged buffers (each passed once through `track`,
    /// which counts it in the budget).
    pub fn take(
        &mut self,
        mut track: impl FnMut(Bytes) -> Bytes,
        mut queue: impl FnMut(Arc<Peer>, Bytes),
    ) {
        let bytes: Vec<Bytes> = self
            .bufs
            .iter_mut()
            .map(|b| {
                if b.is_empty() {
                    Bytes::new()
                } else {
                    track(b.split().freeze())
                }
            })
            .collect();
        let own: Vec<Bytes> = self.own.drain(..).map(&mut track).collect();
        self.own_bytes = 0;
        for (peer, run) in self.runs.drain(..) {
            peer.staged.store(0, Ordering::Relaxed);
            let bytes = match run.place.checked_sub(OWN) {
                None => bytes[run.place].slice(run.range),
                Some(i) => own[i].clone(),
            };
            queue(peer, bytes);
        }
        // A burst's list is not kept for good.
        if self.runs.capacity() > STAGE_RUNS {
            self.runs = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::OutboundBudget;
    use chatproto::ServerFrame;

    async fn tcp_peer(budget: &Arc<OutboundBudget>) -> (Arc<Peer>, std::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_, write) = server.into_split();
        (
            Arc::new(Peer::new(
                write,
                crate::peer::QueueLimits::fixed(1 << 20),
                Arc::clone(budget),
            )),
            client,
        )
    }

    fn notice(text: &str) -> ServerFrame {
        ServerFrame::notice(text)
    }

    fn wire(frames: &[&str]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for f in frames {
            encode_into(&notice(f), &mut out, 65_536).unwrap();
        }
        out.to_vec()
    }

    /// What each peer (by index in `peers`) was handed, entry by entry.
    fn taken(stage: &mut Stage, peers: &[&Arc<Peer>]) -> Vec<(usize, Vec<u8>)> {
        let mut got = Vec::new();
        stage.take(
            |b| b,
            |peer, bytes| {
                let i = peers.iter().position(|p| Arc::ptr_eq(p, &peer)).unwrap();
                got.push((i, bytes.to_vec()));
            },
        );
        got
    }

    #[tokio::test]
    async fn a_members_run_of_events_goes_on_past_frames_for_someone_else() {
        let budget = OutboundBudget::new(1 << 20);
        let (a, _ca) = tcp_peer(&budget).await;
        let (b, _cb) = tcp_peer(&budget).await;
        let mut stage = Stage::default();
        let e1 = stage.encode(&notice("e1"), Audience::Many, 65_536).unwrap();
        stage.add(&a, &e1);
        stage.add(&b, &e1);
        // An echo for a alone, between two events for both.
        let p = stage.encode(&notice("p"), Audience::One, 65_536).unwrap();
        stage.add(&a, &p);
        let e2 = stage.encode(&notice("e2"), Audience::Many, 65_536).unwrap();
        stage.add(&a, &e2);
        stage.add(&b, &e2);
        assert_eq!(
            taken(&mut stage, &[&a, &b]),
            [
                (0, wire(&["e1"])),
                (1, wire(&["e1", "e2"])),
                (0, wire(&["p"])),
                (0, wire(&["e2"])),
            ],
            "b's two events in one entry; a's three frames in order"
        );
        assert!(stage.is_empty());
        // The marks are cleared: the next turn starts new entries.
        let e3 = stage.encode(&notice("e3"), Audience::Many, 65_536).unwrap();
        stage.add(&b, &e3);
        assert_eq!(taken(&mut stage, &[&a, &b]), [(1, wire(&["e3"]))]);
    }

    #[tokio::test]
    async fn a_large_frame_gets_an_allocation_its_size_and_order_is_kept() {
        let budget = OutboundBudget::new(1 << 20);
        let (a, _ca) = tcp_peer(&budget).await;
        let (b, _cb) = tcp_peer(&budget).await;
        let mut stage = Stage::default();
        let big_text = "x".repeat(60_000);
        let s1 = stage
            .encode(&notice("s1"), Audience::Many, 1 << 20)
            .unwrap();
        stage.add(&a, &s1);
        let big = stage
            .encode(&notice(&big_text), Audience::Many, 1 << 20)
            .unwrap();
        stage.add(&a, &big);
        stage.add(&b, &big);
        let s2 = stage
            .encode(&notice("s2"), Audience::Many, 1 << 20)
            .unwrap();
        stage.add(&a, &s2);
        // The shared buffer did not keep the room the large frame grew it
        // to (about twice its size).
        let room = stage.bufs[Audience::Many as usize].capacity();
        assert!(room < 20 * 1024, "the buffer kept {room} bytes of room");
        let mut tracked = Vec::new();
        let mut got = Vec::new();
        stage.take(
            |bytes| {
                tracked.push(bytes.len());
                bytes
            },
            |peer, bytes| got.push((Arc::ptr_eq(&peer, &a), bytes)),
        );
        // The shared buffer (s1 and s2) and the large frame, each counted
        // once.
        tracked.sort_unstable();
        assert_eq!(
            tracked,
            [wire(&["s1", "s2"]).len(), wire(&[&big_text]).len()]
        );
        let runs: Vec<(bool, Vec<u8>)> = got.iter().map(|(a, b)| (*a, b.to_vec())).collect();
        assert_eq!(
            runs,
            [
                (true, wire(&["s1"])),
                (true, wire(&[&big_text])),
                (false, wire(&[&big_text])),
                (true, wire(&["s2"])),
            ]
        );
        // Both peers hold the one copy of the large frame.
        assert_eq!(got[1].1.as_ptr(), got[2].1.as_ptr());
        assert!(stage.is_empty());
    }

    #[tokio::test]
    async fn a_frame_refused_as_too_large_leaves_no_room_behind() {
        let budget = OutboundBudget::new(1 << 20);
        let (a, _ca) = tcp_peer(&budget).await;
        let mut stage = Stage::default();
        let s1 = stage.encode(&notice("s1"), Audience::Many, 65_536).unwrap();
        stage.add(&a, &s1);
        // Written whole before it is found too large.
        let refused = stage.encode(&notice(&"x".repeat(100_000)), Audience::Many, 65_536);
        assert!(refused.is_err());
        let room = stage.bufs[Audience::Many as usize].capacity();
        assert!(room < 20 * 1024, "the buffer kept {room} bytes of room");
        let s2 = stage.encode(&notice("s2"), Audience::Many, 65_536).unwrap();
        stage.add(&a, &s2);
        assert_eq!(taken(&mut stage, &[&a]), [(0, wire(&["s1", "s2"]))]);
    }

    #[tokio::test]
    async fn a_peer_written_by_a_task_takes_runs_too() {
        let budget = OutboundBudget::new(1 << 20);
        let task = Arc::new(Peer::for_task(
            crate::peer::QueueLimits::fixed(1 << 20),
            Arc::clone(&budget),
        ));
        let mut stage = Stage::default();
        for text in ["e1", "e2"] {
            let e = stage.encode(&notice(text), Audience::Many, 65_536).unwrap();
            stage.add(&task, &e);
        }
        assert_eq!(taken(&mut stage, &[&task]), [(0, wire(&["e1", "e2"]))]);
    }
}
