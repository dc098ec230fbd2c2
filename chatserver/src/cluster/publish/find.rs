//! Looking in a room's stream for proposals whose answers were lost: the
//! ids stored below a later one, and whether a duplicate's copy is ours.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::stream::RawMessageErrorKind;

use super::PROBE;
use crate::cluster::{names, Cluster, Proposal, ORIGIN, PUBLISH_BATCH};

/// How far below a later message of its room a refused retry is looked
/// for (stored before its acknowledgement was lost): down to this node's
/// last message of an earlier batch (a batch is stored or refused whole
/// before the next is published), or to the stream's first message, and
/// at least [`FIND_BELOW`] messages down; past those, down to the
/// messages NATS stamped this long before the retry was first sent (the
/// node's clock and NATS's may differ by up to this). A count alone would
/// not do: other nodes' messages stored while this node was away from
/// NATS can bury the copy any depth down, and past the stream's duplicate
/// window one not found is stored twice. (An id every node gives alike,
/// a client's message resent through another node or a departure, may
/// have been stored earlier still, by another node: found only within
/// [`FIND_BELOW`].)
pub(super) const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// How many messages that look reads whatever the stamps say...
const FIND_BELOW: u64 = 4 * PUBLISH_BATCH as u64;

/// ...and the most it reads.
const FIND_BELOW_MAX: u64 = 1_000_000;

/// How many times one read that failed is asked again before the look
/// gives up (it is made again from the top at the next round).
const READ_TRIES: usize = 3;

/// How many of its reads are asked at once.
const FIND_AT_ONCE: usize = 32;

impl Cluster {
    /// The message ids of `batch` stored in `room`'s stream below `seq`
    /// (`PROBE`: below its top, as it is now), with their seqs and
    /// whether the copy is this node's: the messages below it are read
    /// down to this node's latest of an earlier batch (all of `batch` went
    /// after it) or the stream's first; past the [`FIND_BELOW`] newest, to
    /// the first NATS stamped before `since`; [`FIND_BELOW_MAX`] at most.
    /// `Err` if the stream cannot be read.
    pub(super) async fn ids_below(
        &self,
        room: &str,
        seq: u64,
        since: std::time::SystemTime,
        batch: &[Proposal],
    ) -> Result<HashMap<String, (u64, bool)>, String> {
        use futures_util::StreamExt;
        let (name, _) = names(room);
        let stream = self.js.get_stream(&name).await.map_err(|e| e.to_string())?;
        let seq = match seq {
            PROBE => stream.cached_info().state.last_sequence.saturating_add(1),
            seq => seq,
        };
        let since = since
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let first = stream.cached_info().state.first_sequence;
        let low = seq.saturating_sub(FIND_BELOW_MAX).max(first).max(1);
        let ours: std::collections::HashSet<&str> =
            batch.iter().map(|p| p.msg_id.as_str()).collect();
        let mut ids = HashMap::new();
        // Newest first, a few reads on their way at once (a long outage
        // may have put thousands of other nodes' messages on top).
        let stream = &stream;
        let mut reads = futures_util::stream::iter((low..seq).rev())
            .map(|at| async move { (at, stream.get_raw_message(at).await) })
            .buffered(FIND_AT_ONCE);
        while let Some((at, mut read)) = reads.next().await {
            // A read that failed (not a message deleted) is asked again:
            // one failure in a long look would make it all again.
            for _ in 1..READ_TRIES {
                match &read {
                    Err(e) if e.kind() != RawMessageErrorKind::NoMessageFound => {
                        read = stream.get_raw_message(at).await;
                    }
                    _ => break,
                }
            }
            match read {
                Ok(m) => {
                    if m.time.unix_timestamp_nanos() < since && seq - at > FIND_BELOW {
                        break;
                    }
                    let Some(id) = m.headers.get(NATS_MESSAGE_ID) else {
                        continue;
                    };
                    let own = m.headers.get(ORIGIN).map(|o| o.as_str()) == Some(&*self.origin);
                    if ours.contains(id.as_str()) {
                        ids.insert(id.as_str().to_owned(), (at, own));
                    } else if own {
                        // This node's, of an earlier batch.
                        break;
                    }
                }
                Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => {}
                Err(e) => return Err(format!("reading seq {at} of the room's stream: {e}")),
            }
        }
        Ok(ids)
    }

    /// A duplicate acknowledgement for the message `p`: whether the copy
    /// the log holds is this proposal's own (an earlier try stored it, and
    /// it comes back to be applied) rather than another node's (a resend
    /// after the session moved; it will not come back). Never published
    /// before: not ours. Published before: ours if the stored payload is
    /// this one, stamp included; if that cannot be read, ours (the client
    /// then waits for an echo, and resends on its next reconnect).
    pub(super) async fn ours(&self, p: &Proposal, seq: u64, tried: bool) -> bool {
        if !tried {
            return false;
        }
        let (name, _) = names(&p.room);
        let stored = match self.js.get_stream(&name).await {
            Ok(stream) => stream.get_raw_message(seq).await.ok(),
            Err(_) => None,
        };
        stored.is_none_or(|m| m.payload == p.payload)
    }
}
