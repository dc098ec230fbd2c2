//! History read from a room's stream, for pages older than the node's
//! memory.

use std::sync::Arc;

use async_nats::jetstream::stream::RawMessageErrorKind;
use chatproto::{ClientId, ReadPage, ReadQuery};

use super::entry::decode_event;
use super::{names, Cluster, FromCluster};

impl Cluster {
    /// Read history the hub's memory no longer holds from the room's
    /// stream, newest first, at most a bounded number of messages.
    pub fn read(self: &Arc<Self>, ticket: u64, client: ClientId, query: ReadQuery) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let found = me.read_stream(&query).await;
            let _ = me
                .to_hub
                .send(FromCluster::Read {
                    ticket,
                    client,
                    found,
                })
                .await;
        });
    }

    async fn read_stream(&self, q: &ReadQuery) -> Result<ReadPage, String> {
        let (name, _) = names(&q.room);
        let mut stream = self.js.get_stream(&name).await.map_err(|e| e.to_string())?;
        let state = stream
            .info()
            .await
            .map_err(|e| e.to_string())?
            .state
            .clone();
        let first = state.first_sequence;
        let mut page = Vec::new();
        let mut seq = q.before.saturating_sub(1).min(state.last_sequence);
        // One request per stored event: look at a bounded number (fewer
        // than `history_scan`, which bounds a local database's read);
        // messages to others are skipped, and the answer says where to go
        // on from.
        let mut budget = (q.limit as u64 * 4 + 64).min(q.scan);
        let low = q.after.max(first.saturating_sub(1));
        while seq > low && page.len() < q.limit && budget > 0 {
            budget -= 1;
            match stream.get_raw_message(seq).await {
                Ok(m) => {
                    if let Some(e) = decode_event(&q.room, seq, &m.payload) {
                        if e.is_msg() && e.visible_to(q.session) {
                            page.push(e);
                        }
                    }
                }
                // Deleted (by retention, or by hand): nothing to show.
                Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => {}
                // A timeout, no leader: the page would have a hole nobody
                // is told of; the hub answers from memory instead.
                Err(e) => return Err(format!("reading seq {seq} of the room's stream: {e}")),
            }
            seq -= 1;
        }
        page.reverse();
        // Everything above `seq` was looked at.
        Ok(ReadPage::new(page, seq > low, seq + 1))
    }
}
