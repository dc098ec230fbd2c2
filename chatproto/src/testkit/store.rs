//! The store of a durable [`Sim`]: the records it holds, the batches and
//! reads the server asked for and that are not answered yet, and how a
//! store would answer a read.

#[cfg(doc)]
use super::Sim;
#[cfg(doc)]
use crate::ServerConfig;
use crate::{Event, Record};

/// The store of a durable [`Sim`] (one whose config has
/// [`durable`](ServerConfig::durable) set): what it holds, and the batches
/// the server handed it that are not answered yet.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct SimStore {
    /// Every record stored, in order.
    pub records: Vec<Record>,
    /// Batches handed out and not answered yet, with their tickets.
    pub waiting: Vec<(Vec<Record>, u64)>,
    /// Leave batches waiting until [`Sim::commit`] (otherwise each is
    /// stored as soon as the server's output is drained).
    pub hold: bool,
    /// Fail every batch with this cause, while set.
    pub fail: Option<String>,
    /// Reads asked and not answered yet: ticket and query.
    pub reads: Vec<(u64, crate::ReadQuery)>,
    /// Fail reads with this cause, while set.
    pub fail_reads: Option<String>,
    /// Store the waiting batches before answering the reads asked with
    /// them, as a store whose reads run beside its writes may (otherwise
    /// reads are answered first, in the order they were asked).
    pub reads_after_writes: bool,
}

impl SimStore {
    /// What a store answers to `query`: the newest `limit` stored messages
    /// in range that its session may see, oldest first, and whether older
    /// ones exist.
    pub fn read(&self, query: &crate::ReadQuery) -> (Vec<Event>, bool) {
        let mut found: Vec<&Event> = Vec::new();
        // As a store does: a room's history goes when it is forgotten or
        // begun again under another epoch, not when told its seq again.
        let mut began: Option<&str> = None;
        for r in &self.records {
            match r {
                Record::Room { name, epoch, .. } if *name == query.room => {
                    if began != Some(epoch.as_str()) {
                        found.clear();
                    }
                    began = Some(epoch);
                }
                Record::Forgotten { name, .. } if *name == query.room => {
                    began = None;
                    found.clear();
                }
                Record::Event(e)
                    if e.room == query.room
                        && e.is_msg()
                        && e.seq > query.after
                        && e.seq < query.before
                        && e.visible_to(query.session) =>
                {
                    found.push(e)
                }
                _ => {}
            }
        }
        let more = found.len() > query.limit;
        let start = found.len().saturating_sub(query.limit);
        (found[start..].iter().map(|e| (*e).clone()).collect(), more)
    }

    /// What a store that honours `query.scan` answers: like
    /// [`read`](SimStore::read), looking only at the seqs from
    /// [`ReadQuery::lowest`](crate::ReadQuery::lowest) up.
    pub fn page(&self, query: &crate::ReadQuery) -> crate::ReadPage {
        let lowest = query.lowest();
        let bounded = crate::ReadQuery::new(
            query.room.clone(),
            query.session,
            lowest.saturating_sub(1),
            query.before,
            query.limit,
        );
        let (events, more) = self.read(&bounded);
        let page = if more {
            let from = events.first().map_or(query.before, |e| e.seq);
            crate::ReadPage::new(events, true, from)
        } else {
            // Cut short by the scan: more if anything older is held in range.
            let older = lowest > query.after.saturating_add(1)
                && self.records.iter().any(|r| {
                    matches!(r, Record::Event(e) if e.room == query.room
                    && e.seq > query.after && e.seq < lowest)
                });
            crate::ReadPage::new(events, older, lowest)
        };
        match self.oldest(&query.room) {
            Some(oldest) => page.with_oldest(oldest),
            None => page,
        }
    }

    /// The seq of the oldest event stored of `room` since it last began
    /// (a new epoch, or after it was forgotten), if any; a test models
    /// retention by removing records.
    pub fn oldest(&self, room: &str) -> Option<u64> {
        let mut oldest = None;
        let mut began: Option<&str> = None;
        for r in &self.records {
            match r {
                Record::Room { name, epoch, .. } if &**name == room => {
                    if began != Some(epoch.as_str()) {
                        oldest = None;
                    }
                    began = Some(epoch);
                }
                Record::Forgotten { name, .. } if &**name == room => {
                    oldest = None;
                    began = None;
                }
                Record::Event(e) if &*e.room == room => {
                    oldest = Some(oldest.unwrap_or(e.seq).min(e.seq))
                }
                _ => {}
            }
        }
        oldest
    }

    /// Whether the store holds `event` (same room and seq).
    pub fn has(&self, event: &Event) -> bool {
        self.records
            .iter()
            .rev()
            .any(|r| matches!(r, Record::Event(e) if e.room == event.room && e.seq == event.seq))
    }
}
