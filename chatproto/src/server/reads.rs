//! Reading history the memory window no longer holds (durable servers
//! only): ask the store with [`Output::Read`], answer when it replies.
//!
//! Nothing waits on the store but the one answer: the core goes on, and
//! the shell holds that client's later frames until the answer is written
//! in their place, so each client still gets its answers in order.

use std::sync::Arc;

use crate::frame::ServerFrame;
use crate::server::apply::{keep_newest, replay_frame};
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
        }
    }
}

/// A question to the store, waiting for its answer.
#[derive(Debug)]
pub(crate) enum Pending {
    /// A `history` request.
    History { room: String },
    /// An `enter` whose replay reaches back past memory: its `entered` (and
    /// `online` continuations), sent with the replay when it comes.
    Enter {
        frames: Vec<ServerFrame>,
        /// The replay is whole if the store had everything after `since`.
        whole: bool,
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
    /// read. Returns the client and the frames that answer it, to be
    /// written before anything queued for that client since the read went
    /// out; `None` for an unknown ticket or a client gone meanwhile.
    pub fn handle_read(
        &mut self,
        ticket: u64,
        found: Result<(Vec<Event>, bool), String>,
    ) -> Option<(ClientId, Vec<ServerFrame>)> {
        let (client, pending) = self.reads.remove(&ticket)?;
        let sid = self.conns.get(&client)?.session?;
        match pending {
            Pending::History { room } => {
                let frame = match found {
                    Ok((events, more)) => {
                        let events: Vec<Arc<Event>> = events.into_iter().map(Arc::new).collect();
                        self.history_frame(sid, &room, events.iter().collect(), more)
                    }
                    // The store cannot read: what memory holds, not nothing.
                    Err(_) => self.history_page(sid, &room, None, self.config.history_page),
                };
                Some((client, vec![frame]))
            }
            Pending::Enter { mut frames, whole } => {
                let (events, more) = found.unwrap_or((Vec::new(), true));
                let mut replay: Vec<Arc<Event>> = events.into_iter().map(Arc::new).collect();
                let mut refs: Vec<&Arc<Event>> = replay.iter().collect();
                let trimmed = keep_newest(&mut refs, self.config.replay_bytes);
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
    /// it): `entered.oldest` says so from now on.
    pub fn handle_pruned(&mut self, room: &str, oldest: u64) {
        if let Some(r) = self.rooms.get_mut(room) {
            r.stored_from = r.stored_from.max(oldest);
        }
    }
}
