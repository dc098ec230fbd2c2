//! Reading history the memory window no longer holds (durable servers
//! only): ask the store with [`Output::Read`], answer when it replies.
//!
//! Nothing waits on the store but the one answer: the core goes on, and
//! the shell holds that client's later frames until the answer is written
//! in their place, so each client still gets its answers in order.

use std::sync::Arc;

use crate::frame::ServerFrame;
use crate::server::answers::{drop_oversized, keep_newest, latest_in_memory, replay_frame};
use crate::server::event::{Event, SessionId};
use crate::server::output::Output;
use crate::server::{ClientId, Server};

/// What a durable server asks its store to read (see [`Output::Read`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadQuery {
    /// The room.
    pub room: Arc<str>,
    /// Whose page: only messages this session may see.
    pub session: SessionId,
    /// Only messages with a seq above this...
    pub after: u64,
    /// ...and below this.
    pub before: u64,
    /// The newest this many of them, oldest first.
    pub limit: usize,
    /// Look at no more than this many events (each seq in the range
    /// counts, seen or not); [`ServerConfig::history_scan`](crate::ServerConfig::history_scan)
    /// in what the core asks, unbounded from [`ReadQuery::new`].
    pub scan: u64,
}

impl ReadQuery {
    /// The newest `limit` messages of `room` that `session` may see with a
    /// seq in `(after, before)`.
    pub fn new(
        room: impl Into<Arc<str>>,
        session: SessionId,
        after: u64,
        before: u64,
        limit: usize,
    ) -> Self {
        ReadQuery {
            room: room.into(),
            session,
            after,
            before,
            limit,
            scan: u64::MAX,
        }
    }

    /// The same query, looking at `scan` events at most.
    #[must_use]
    pub fn with_scan(mut self, scan: u64) -> Self {
        self.scan = scan;
        self
    }

    /// The lowest seq a scan of this query may look at: the range
    /// `(after, before)` cut to its newest `scan` seqs.
    pub fn lowest(&self) -> u64 {
        let floor = self.before.saturating_sub(self.scan);
        self.after.saturating_add(1).max(floor)
    }
}

/// What a store found for a [`ReadQuery`]; see [`Server::handle_page`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadPage {
    /// The newest `limit` messages found, oldest first.
    pub events: Vec<Event>,
    /// Whether the store holds older events in the range that it did not
    /// look at (the page was full, or its `scan` ran out). Older messages
    /// the session may see may exist: the next page asks from `from`.
    pub more: bool,
    /// Every event of the range from this seq up was looked at: all that
    /// the session may see there is in `events` (so `from` is at most the
    /// oldest of them).
    pub from: u64,
    /// The room's oldest stored seq, read after the page, when the store
    /// says (see [`ReadPage::with_oldest`]); `None`: it does not.
    pub oldest: Option<u64>,
    /// How many stored events the store looked at to find the page
    /// (messages for others and presences too), when it says (see
    /// [`ReadPage::with_looked_at`]); 0: it does not. What the read cost
    /// it, which the page's size alone does not tell: a page of a room
    /// of messages to others may be empty after a long scan.
    pub looked_at: u64,
}

impl ReadPage {
    /// A page of `events`, oldest first.
    pub fn new(events: Vec<Event>, more: bool, from: u64) -> Self {
        ReadPage {
            events,
            more,
            from,
            oldest: None,
            looked_at: 0,
        }
    }

    /// The same page, found by looking at `looked_at` stored events.
    #[must_use]
    pub fn with_looked_at(mut self, looked_at: u64) -> Self {
        self.looked_at = looked_at;
        self
    }

    /// The same page, with the room's oldest stored seq as the store saw
    /// it once the page was read. Retention may have deleted what follows
    /// a replay's `since` before the server heard of it: a replay is
    /// whole only if the store still held everything after `since`, and
    /// the server forgets what is older from then on.
    #[must_use]
    pub fn with_oldest(mut self, oldest: u64) -> Self {
        self.oldest = Some(oldest);
        self
    }
}

/// A question to the store, waiting for its answer.
#[derive(Debug)]
pub(crate) enum Pending {
    /// A `history` request, the `after` and `before` it asked the store
    /// with, and the room's epoch then.
    History {
        room: String,
        after: u64,
        before: u64,
        limit: usize,
        epoch: String,
    },
    /// An `enter` whose replay reaches back past memory: its `entered` (and
    /// `online` continuations), sent with the replay when it comes.
    Enter {
        /// The room's epoch when it was asked.
        epoch: String,
        frames: Vec<ServerFrame>,
        /// The replay is whole if the store had everything after `since`.
        whole: bool,
        /// The `since` it asked with.
        since: u64,
        /// The range it asked the store for, `(after, before)`.
        after: u64,
        before: u64,
        /// An entering without a `since` of the epoch (the latest
        /// messages): if the store cannot read, memory's are replayed.
        fresh: bool,
    },
}

impl Server {
    /// Ask the store; `Output::Read` goes out in this client's order.
    pub(crate) fn read(
        &mut self,
        client: ClientId,
        query: ReadQuery,
        pending: Pending,
    ) -> Output<'static> {
        self.next_read += 1;
        let ticket = self.next_read;
        self.reads.insert(ticket, (client, pending));
        Output::Read {
            ticket,
            client,
            query,
        }
    }

    /// The store answered the read `ticket`: the messages it found
    /// (oldest first) and whether older ones exist, or why it could not
    /// read. Like [`handle_page`](Server::handle_page), for a store that
    /// reads the whole range (ignoring [`ReadQuery::scan`]): the next page
    /// is asked from the oldest message found, so a store that stops short
    /// must answer through `handle_page`: here an empty page with `more`
    /// has nowhere to send its asker, and says there is no more.
    #[must_use = "the frames answer the asker: write them to it"]
    pub fn handle_read(
        &mut self,
        ticket: u64,
        found: Result<(Vec<Event>, bool), String>,
    ) -> Option<(ClientId, Vec<ServerFrame>)> {
        let before = match self.reads.get(&ticket) {
            Some((_, Pending::History { before, .. })) => *before,
            _ => 0,
        };
        let found = found.map(|(events, more)| {
            let from = events.first().map_or(before, |e| e.seq);
            ReadPage::new(events, more, from)
        });
        self.handle_page(ticket, found)
    }

    /// The store answered the read `ticket` with `found`, or could not
    /// read. Returns the client and the frames that answer it, to be
    /// written before anything queued for that client since the read went
    /// out; `None` for an unknown ticket or a client gone meanwhile.
    ///
    /// Of `found`, only what the [`ReadQuery`] asked for is served: the
    /// messages of its room, with a seq in `(after, before)`, that its
    /// session may see, in seq order and each seq once. Anything else a
    /// store hands back (another room's events, seqs outside the range
    /// or of 0, presences, messages to others) is dropped without a
    /// word, and a page out of seq order is put in order, a seq given
    /// twice kept once (the first given). The next page is asked from
    /// [`ReadPage::from`] brought into the range and not above the oldest
    /// message served, and a page with [`more`](ReadPage::more) that
    /// would send its asker back to the `before` it asked with says there
    /// is no more instead (a client paging on would ask the same page for
    /// ever).
    #[must_use = "the frames answer the asker: write them to it"]
    pub fn handle_page(
        &mut self,
        ticket: u64,
        found: Result<ReadPage, String>,
    ) -> Option<(ClientId, Vec<ServerFrame>)> {
        let (client, pending) = self.reads.remove(&ticket)?;
        // (Also one the core is closing, its `Close` not polled yet.)
        let sid = self.answered_session(client)?;
        // A room forgotten and begun again while the store read (its
        // members all gone, at the cap of rooms): what the store holds now
        // is another room's history, not for this asker.
        let rooms = &self.rooms;
        let same = |room: &str, epoch: &str| rooms.get(room).is_some_and(|r| r.epoch == epoch);
        match pending {
            Pending::History { room, epoch, .. } if !same(&room, &epoch) => {
                Some((client, vec![ServerFrame::history(room, Vec::new(), false)]))
            }
            Pending::History {
                room,
                after,
                before,
                limit,
                epoch,
            } => {
                let frame = match found {
                    Ok(page) => {
                        // Where the store's history starts as it read:
                        // retention may have run before the core heard.
                        if let Some(o) = page.oldest {
                            self.pruned(&room, Some(&epoch), o);
                        }
                        let events = asked(page.events, &room, sid, after, before);
                        // Where the next page starts: within what was
                        // asked, and at most the oldest message served
                        // (its seq was looked at).
                        let mut from = page.from.clamp(after.saturating_add(1), before);
                        if let Some(e) = events.first() {
                            from = from.min(e.seq);
                        }
                        // A page that cannot move its asker down would
                        // be asked again for ever.
                        let more = page.more && from < before;
                        self.history_frame(sid, &room, events.iter().collect(), more, from)
                    }
                    // The store cannot read: what memory holds of the
                    // page asked for, `more` if the store holds older (to
                    // be asked again).
                    Err(_) => self.history_page(sid, &room, Some(before), limit),
                };
                Some((client, vec![frame]))
            }
            Pending::Enter {
                mut frames,
                whole,
                epoch,
                since,
                after,
                before,
                fresh,
            } => {
                let room = match frames.first() {
                    Some(ServerFrame::Entered { room, .. }) => room.clone(),
                    _ => String::new(),
                };
                let found = found.ok().filter(|_| same(&room, &epoch));
                // Where the store's history starts as it read: retention
                // may have deleted past `since` before the core heard.
                let stored = found.as_ref().and_then(|p| p.oldest);
                let whole = whole && stored.is_none_or(|o| o <= since.saturating_add(1));
                if let Some(o) = stored {
                    self.pruned(&room, Some(&epoch), o);
                    if let Some(ServerFrame::Entered { oldest, seq, .. }) = frames.first_mut() {
                        *oldest = (*oldest).max(o.min(seq.saturating_add(1)));
                    }
                }
                let mut replay: Vec<Arc<Event>> = Vec::new();
                let more = match found {
                    Some(page) => {
                        replay = asked(page.events, &room, sid, after, before);
                        page.more
                    }
                    // The store cannot read: an entering without `since`
                    // shows the latest messages memory holds.
                    None if fresh => {
                        if let Some(r) = self.rooms.get(&room).filter(|r| r.epoch == epoch) {
                            let seen = latest_in_memory(r, sid, &self.config);
                            replay.extend(seen.page.into_iter().cloned());
                        }
                        true
                    }
                    None => true,
                };
                // See `drop_oversized` in apply.
                let oversized = drop_oversized(&mut replay, self.config.max_frame_bytes);
                let mut refs: Vec<&Arc<Event>> = replay.iter().collect();
                let trimmed = keep_newest(&mut refs, self.config.replay_bytes) || oversized;
                let keep = refs.len();
                replay.drain(..replay.len() - keep);
                if let Some(ServerFrame::Entered { recovered, .. }) = frames.first_mut() {
                    *recovered = whole && !more && !trimmed;
                }
                frames.extend(replay.iter().map(|e| replay_frame(e, sid)));
                Some((client, frames))
            }
        }
    }

    /// The oldest seq the store still holds of `room` (retention moved
    /// it): `entered.oldest` says so from now on, and the messages before
    /// it are forgotten from memory too, so that no replay or history page
    /// serves what retention deleted.
    ///
    /// This takes the room by name alone: a report about a room that was
    /// forgotten and begun again meanwhile moves the new room's start.
    /// A shell that knows the epoch the store pruned should call
    /// [`Server::handle_pruned_epoch`] instead.
    pub fn handle_pruned(&mut self, room: &str, oldest: u64) {
        self.pruned(room, None, oldest);
    }

    /// As [`Server::handle_pruned`], for the room `room` of this `epoch`
    /// only: a report about an earlier life of a room (forgotten and begun
    /// again, with a new epoch, while retention ran) changes nothing.
    pub fn handle_pruned_epoch(&mut self, room: &str, epoch: &str, oldest: u64) {
        self.pruned(room, Some(epoch), oldest);
    }

    /// The store holds `room` (of `epoch`, when given) from `oldest` on:
    /// what retention deleted is not served from memory either.
    fn pruned(&mut self, room: &str, epoch: Option<&str>, oldest: u64) {
        let Some(r) = self.rooms.get_mut(room) else {
            return self.unloaded.pruned(room, epoch, oldest);
        };
        if epoch.is_some_and(|e| r.epoch != e) {
            return;
        }
        // Not past what is applied here (a server behind its log or its
        // store learns of a start before the events up to it).
        r.stored_from = r.stored_from.max(oldest.min(r.seq + 1));
        while r.history.front().is_some_and(|e| e.seq < r.stored_from) {
            self.history_bytes -= r.forget_oldest();
        }
        self.order.cut(r);
        r.history_start = r.history_start.max(r.stored_from);
    }
}

/// Of a store's page for `sid`'s read of `room` in `(after, before)`, what
/// was asked for: the messages of `room` in the range that `sid` may see,
/// in seq order, each seq once (the first given). A store's page is
/// trusted no further: the frame made of it says `room` and goes to `sid`.
fn asked(
    events: Vec<Event>,
    room: &str,
    sid: SessionId,
    after: u64,
    before: u64,
) -> Vec<Arc<Event>> {
    let mut kept: Vec<Arc<Event>> = events
        .into_iter()
        .filter(|e| {
            *e.room == *room && e.seq > after && e.seq < before && e.is_msg() && e.visible_to(sid)
        })
        .map(Arc::new)
        .collect();
    if !kept.windows(2).all(|w| w[0].seq < w[1].seq) {
        // Stable: of a seq given twice, the first given stays.
        kept.sort_by_key(|e| e.seq);
        kept.dedup_by_key(|e| e.seq);
    }
    kept
}
