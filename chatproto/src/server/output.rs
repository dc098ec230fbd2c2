//! What the server core asks its shell to do: the one way out of it.

use std::sync::Arc;

use crate::frame::{ErrorCode, ServerFrame};
use crate::server::event::Event;
use crate::server::ClientId;

/// One thing for the shell to do, from [`Server::poll`](crate::Server::poll).
///
/// Act on each before polling again: a [`Output::Deliver`] borrows the
/// server's state and is only valid until the next call.
///
/// Only the core makes outputs. New kinds and new members come in minor
/// releases (the enum and its variants are `#[non_exhaustive]`): match
/// with `..` and keep a `_` arm.
#[derive(Debug)]
#[non_exhaustive]
#[must_use = "an output not acted on is a frame lost or a connection left open"]
pub enum Output<'a> {
    /// Send `frame` to one connection.
    #[non_exhaustive]
    Send {
        /// The connection.
        to: ClientId,
        /// The frame.
        frame: ServerFrame,
    },
    /// A room event for many connections: encode it once (with
    /// [`Event::wire`]) and send the same bytes to each of `to`; `to` may
    /// be empty. Events come in seq order per room. One event may come in
    /// two `Deliver`s: the sender's echo, `with_id`, apart from the other
    /// recipients, or the copy of whoever left a room apart from the rest
    /// of it; so log an event once, by room and seq. A presence
    /// that no connection here is to receive (in a room past
    /// [`presence_fanout_max`](crate::ServerConfig::presence_fanout_max))
    /// may come in none.
    #[non_exhaustive]
    Deliver {
        /// The event.
        event: &'a Event,
        /// Who gets it.
        to: &'a [ClientId],
        /// Encode with the sender's `id` (this is the sender's echo).
        with_id: bool,
    },
    /// Store `records` (in order, all or none, e.g. in one transaction),
    /// then call [`Server::handle_persisted`](crate::Server::handle_persisted)
    /// with `through`; if storing fails, call
    /// [`Server::handle_persist_failed`](crate::Server::handle_persist_failed).
    /// Only a durable server asks (see
    /// [`ServerConfig::durable`](crate::ServerConfig::durable)); until the
    /// answer, `poll` holds back everything decided after these records.
    #[non_exhaustive]
    Persist {
        /// What to store.
        records: Vec<crate::server::durable::Record>,
        /// The ticket that names this batch and every one before it.
        through: u64,
    },
    /// Append `events` to their rooms' shared log, in order (cluster mode:
    /// see [`ServerConfig::cluster`](crate::ServerConfig::cluster)). Their
    /// `seq` is 0: the log numbers them. Each is applied when the log hands
    /// it back through [`Server::handle_logged`](crate::Server::handle_logged);
    /// one that never reaches the log is never seen by anyone.
    #[non_exhaustive]
    Propose {
        /// The events, in the order they were decided.
        events: Vec<std::sync::Arc<Event>>,
    },
    /// Read history the memory window no longer holds (only a durable
    /// server asks): hold everything for `client` from here on, ask the
    /// store for `query` (looking at no more than `query.scan` events),
    /// and give its answer to
    /// [`Server::handle_page`](crate::Server::handle_page), whose frames go
    /// to `client` before what was held.
    #[non_exhaustive]
    Read {
        /// Names this read in `handle_page`.
        ticket: u64,
        /// Who asked.
        client: ClientId,
        /// What to read.
        query: crate::server::reads::ReadQuery,
    },
    /// Close the connection once what was sent to it is written. The core
    /// has forgotten it already: nothing more comes for it (no later
    /// [`Deliver`](Output::Deliver) lists it), and there is no need to call
    /// [`Server::handle_disconnect`](crate::Server::handle_disconnect)
    /// when it is closed (a call does nothing). Bound that wait (chatserver
    /// gives it `--close-flush-ms`, 2 s by default): nothing in the core
    /// times it out any more, so a peer that stops reading would keep
    /// the connection open for ever.
    #[non_exhaustive]
    Close {
        /// The connection.
        client: ClientId,
        /// Why: an `error` frame with this code was sent just before.
        code: ErrorCode,
    },
    /// Close the connection once what was sent to it is written (and any
    /// [`Read`](Output::Read) for it answered): it said its last (see
    /// [`Server::handle_end`](crate::Server::handle_end)), and everything
    /// it asked for has gone out. Unlike [`Close`](Output::Close), the
    /// core still counts it in its rooms: call
    /// [`Server::handle_disconnect`](crate::Server::handle_disconnect)
    /// once it is closed. Bound the wait as for `Close`: the core's
    /// timers still run for it meanwhile, but one that closes it only
    /// queues a `Close`, which a peer that stops reading never lets be
    /// written.
    #[non_exhaustive]
    Finish {
        /// The connection.
        client: ClientId,
    },
    /// Without a store ([`ServerConfig::durable`](crate::ServerConfig::durable)
    /// off, not in a cluster): a room that held a message was forgotten,
    /// its history with it, to make way for another at
    /// [`ServerConfig::max_rooms`](crate::ServerConfig::max_rooms)
    /// (nobody was in it). Nothing to do but tell the operator
    /// (chatserver logs a warning naming it). A room that never held a
    /// message goes without one; with a store, the store is told instead
    /// ([`Record::Forgotten`](crate::Record::Forgotten)).
    #[non_exhaustive]
    Forgotten {
        /// The room's name.
        room: Arc<str>,
    },
}

/// Why a shell closes a connection the core did not decide to close
/// itself: the policies that live with the sockets. Each has a closing
/// error code and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kick {
    /// The byte stream broke (`frame_too_large`, `empty_frame`).
    Framing(crate::FramingError),
    /// The server has no room for another connection (`server_full`).
    ServerFull,
    /// The client kept sending faster than allowed (`rate_limited`).
    RateLimited,
    /// The client's own outbound queue passed its limit (`slow_consumer`).
    #[non_exhaustive]
    SlowConsumer {
        /// The per-client limit in bytes.
        limit: usize,
    },
    /// All outbound queues together passed the server's limit and this
    /// client's queue was the longest (`slow_consumer`).
    #[non_exhaustive]
    OverBudget {
        /// The limit for all queues together, in bytes.
        limit: usize,
    },
}

impl Kick {
    /// [`Kick::SlowConsumer`]: the client's queue passed `limit` bytes.
    pub fn slow_consumer(limit: usize) -> Self {
        Kick::SlowConsumer { limit }
    }

    /// [`Kick::OverBudget`]: all queues together passed `limit` bytes.
    pub fn over_budget(limit: usize) -> Self {
        Kick::OverBudget { limit }
    }

    /// The error code sent; every one closes the connection.
    pub fn code(&self) -> ErrorCode {
        match self {
            Kick::Framing(e) => e.code(),
            Kick::ServerFull => ErrorCode::ServerFull,
            Kick::RateLimited => ErrorCode::RateLimited,
            Kick::SlowConsumer { .. } | Kick::OverBudget { .. } => ErrorCode::SlowConsumer,
        }
    }

    /// The message for the client: what happened and what to do.
    pub fn message(&self) -> String {
        match self {
            Kick::Framing(e) => e.to_string(),
            Kick::ServerFull => "the server is full; try again later".into(),
            Kick::RateLimited => "you sent too much too fast; slow down".into(),
            Kick::SlowConsumer { limit } => format!(
                "you did not read your messages fast enough (over {limit} bytes waiting); closing"
            ),
            Kick::OverBudget { limit } => format!(
                "the server's outbound memory for all clients is full (over {limit} bytes) and yours was the longest queue; closing"
            ),
        }
    }

    /// The whole `error` frame.
    pub fn frame(&self) -> ServerFrame {
        ServerFrame::error(self.code(), self.message())
    }
}
