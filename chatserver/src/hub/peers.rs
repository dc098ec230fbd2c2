//! The peers' queues: what a turn staged queued in order, the sockets
//! written without waiting, and the overflow policies (a full queue is a
//! slow consumer; a full outbound budget closes the longest queues).

use std::collections::HashSet;
use std::sync::Arc;

use chatproto::{encode, ClientId, ErrorCode, Kick, Now, ServerFrame};
use tokio::time::Instant;
use tracing::warn;

use super::Hub;
use crate::budget::OutboundBudget;
use crate::peer::{Peer, Push};
use crate::stage::{Audience, Stage};

impl Hub {
    /// Queue what the turn staged (see [`unstage`]), and apply the
    /// overflow policy to the queues that overflowed.
    pub(super) fn unstage(&mut self) {
        unstage(
            &mut self.stage,
            &self.budget,
            &mut self.to_flush,
            &mut self.overflowed,
            &mut self.lagging,
        );
        for id in std::mem::take(&mut self.overflowed) {
            // Gone meanwhile: nothing to close.
            if self.peers.contains_key(&id) {
                self.overflow(id);
            }
        }
    }

    /// Stage `frame` for `to`.
    pub(super) fn stage_frame(&mut self, to: ClientId, frame: &ServerFrame) {
        let Some(peer) = self.peers.get(&to) else {
            return;
        };
        match self
            .stage
            .encode(frame, Audience::One, self.max_frame_bytes)
        {
            Ok(staged) => {
                peer.charge_read(frame, staged.len());
                self.stage.add(peer, &staged)
            }
            // The core builds only frames that fit.
            Err(e) => warn!(client = %to, error = %e, "a frame did not encode"),
        }
    }

    /// A `ping` for `to`, which waits for reads from the store: queued
    /// now, ahead of what waits behind them (a ping answers no frame, so
    /// it keeps no place among the answers; the core sends one to a
    /// connection whose answers have waited a while, to say the link is
    /// alive). Whether it was.
    pub(super) fn ping_ahead(&mut self, to: ClientId) -> bool {
        let Some(peer) = self.peers.get(&to).filter(|p| p.reads_waiting() > 0) else {
            return false;
        };
        let Ok(bytes) = encode(&ServerFrame::Ping, self.max_frame_bytes) else {
            return false;
        };
        match peer.push_ahead(self.budget.track(bytes)) {
            Push::Queued { newly, over } => {
                self.budget.add_slots(1);
                if newly {
                    self.to_flush.push(Arc::clone(peer));
                }
                if over {
                    self.lagging.insert(to);
                }
            }
            Push::Closed => {}
            Push::Overflow => self.overflow(to),
        }
        true
    }

    /// Queue `frame` for `to` now, after what this turn staged.
    pub(super) fn send_now(&mut self, to: ClientId, frame: &ServerFrame) {
        self.stage_frame(to, frame);
        self.unstage();
    }

    /// The overflow policy of one queue past its most
    /// (`--outbound-queue-max-bytes`): `slow_consumer` instead of all it
    /// held, and the client leaves.
    pub(super) fn overflow(&mut self, id: ClientId) {
        self.slow_consumer(id, self.queue.max_bytes, "outbound queue full");
    }

    /// Close `id` as a slow consumer of more than `limit` bytes, logging
    /// `what` happened.
    fn slow_consumer(&mut self, id: ClientId, limit: usize, what: &str) {
        let nick = self.server.nick(id).unwrap_or("(not joined)");
        warn!(client = %id, nick, limit, "slow consumer: {what}; closing");
        self.kick(id, &Kick::slow_consumer(limit));
    }

    /// The other overflow policy: a client whose queue has stayed past
    /// `--outbound-queue-bytes` for the grace (`--slow-consumer-ms`) gets
    /// `slow_consumer` and leaves, unless it read at least that many
    /// bytes of it meanwhile: a client reading its backlog is watched
    /// again from now, however long the backlog (its queue is still held
    /// to `--outbound-queue-max-bytes` and the budget). One back under it
    /// is no longer watched. A burst it reads at once costs it nothing.
    /// Looks again when the next one watched is due.
    pub(super) fn check_lagging(&mut self) {
        self.next_lag_check = None;
        let now = std::time::Instant::now();
        let grace = self.slow_consumer_grace;
        let reading = self.queue.bytes as u64;
        let mut next: Option<std::time::Instant> = None;
        let mut slow = Vec::new();
        let peers = &self.peers;
        self.lagging.retain(|id| {
            let Some(peer) = peers.get(id) else {
                return false;
            };
            let Some((since, written)) = peer.lag() else {
                return false;
            };
            let mut due = since + grace;
            if due <= now {
                if written < reading || grace.is_zero() {
                    slow.push(*id);
                    return false;
                }
                peer.watch_again(now);
                due = now + grace;
            }
            next = Some(next.map_or(due, |n| n.min(due)));
            true
        });
        for id in slow {
            if !self.kicked.contains(&id) {
                let what = format!(
                    "unread output past the limit for {} ms, less than the limit read meanwhile",
                    grace.as_millis()
                );
                self.slow_consumer(id, self.queue.bytes, &what);
            }
        }
        self.next_lag_check = next.map(Instant::from_std);
    }

    /// Watch the clients whose queue went past its limit: the first check
    /// is due one grace from now.
    pub(super) fn watch_lagging(&mut self) {
        if self.next_lag_check.is_none() && !self.lagging.is_empty() {
            self.next_lag_check = Some(Instant::now() + self.slow_consumer_grace);
        }
    }

    /// Replace `id`'s queue by the error of `why`, close it, and take it
    /// out of the core after the current output.
    fn kick(&mut self, id: ClientId, why: &Kick) {
        self.close_with(id, why.code(), why.message());
    }

    /// Replace `id`'s queue by an error with `code` and `message`, close
    /// it, and take it out of the core after the current output.
    /// A client already gone (its departure handled) is left alone:
    /// marked, it would stay in `kicked` for good, as only its departure
    /// takes the mark off.
    pub(super) fn close_with(&mut self, id: ClientId, code: ErrorCode, message: String) {
        let Some(peer) = self.peers.get(&id) else {
            return;
        };
        if !self.kicked.insert(id) {
            return;
        }
        self.metrics.closed_for(code);
        match encode(&ServerFrame::error(code, message), self.max_frame_bytes) {
            Ok(bytes) => peer.kick(self.budget.track(bytes), code),
            Err(_) => peer.close(),
        }
        self.leaving.push(id);
    }

    /// Tell the core `id`'s connection is gone, with the fatal error the
    /// server closed it with, if it did (its session's resume says it:
    /// the `error` frame itself may never have left a full socket).
    pub(super) fn disconnect(&mut self, now: Now, id: ClientId) {
        match self.peers.get(&id).and_then(|p| p.closed_for()) {
            Some(code) => self.server.handle_disconnect_for(now, id, code),
            None => self.server.handle_disconnect(now, id),
        }
    }

    /// Write what each queued-to peer's socket takes now, never waiting. A
    /// peer whose socket broke is gone: it leaves the core next.
    pub(super) fn flush_pending(&mut self) {
        self.unstage();
        let mut flushing = std::mem::take(&mut self.to_flush);
        for peer in flushing.drain(..) {
            if peer.flush(true).is_err() {
                if let Some(&id) = peer.id.get() {
                    // Gone already (see `close_with`): nothing to mark.
                    if self.peers.contains_key(&id) && self.kicked.insert(id) {
                        self.leaving.push(id);
                    }
                }
            }
        }
        // Keep the list's allocation for the next turn.
        self.to_flush = flushing;
    }

    /// The overflow policy of the outbound budget: while all queues
    /// together hold more than the limit, close the client with the longest
    /// queue (`slow_consumer`), until they hold at most three quarters of it.
    pub(super) fn enforce_budget(&mut self) {
        if !self.budget.is_over() {
            return;
        }
        let target = self.budget.limit() / 4 * 3;
        let mut longest: Vec<(usize, ClientId)> = self
            .peers
            .iter()
            .filter(|(_, peer)| !peer.is_closing())
            .map(|(&id, peer)| (peer.queued(), id))
            .filter(|&(queued, _)| queued > 0)
            .collect();
        longest.sort_unstable_by(|a, b| b.cmp(a));
        let mut used = self.budget.used();
        let closable: usize = longest.iter().map(|&(queued, _)| queued).sum();
        if used.saturating_sub(closable) > target {
            // Even closing every client with a queue would not get under
            // the target: connections already closing hold the memory, and
            // they free it within --close-flush-ms. Close nobody for it.
            return;
        }
        let why = Kick::over_budget(self.budget.limit());
        // Closing a queue frees its slots, and its frames unless other
        // queues share them: assume all of it, and look again next time.
        for (queued, id) in longest {
            if used <= target {
                break;
            }
            let nick = self.server.nick(id).unwrap_or("(not joined)");
            warn!(client = %id, nick, queued, total = used, "outbound budget full: closing the longest queue");
            self.kick(id, &why);
            used = used.saturating_sub(queued);
        }
    }

    /// Move everything the core produced to the peers and write what the
    /// sockets take now, until broken sockets' departures are out too.
    pub(super) fn drain(&mut self, now: Now) {
        loop {
            self.dispatch(now);
            self.unstage();
            if self.to_flush.is_empty() {
                break;
            }
            self.flush_pending();
            for id in std::mem::take(&mut self.leaving) {
                self.disconnect(now, id);
            }
        }
    }
}

/// Queue what the turn staged, each peer's runs in order; queues that
/// overflow are named in `overflowed` (the caller applies the policy),
/// those that went past their limit join `lagging` (to be watched).
pub(super) fn unstage(
    stage: &mut Stage,
    budget: &Arc<OutboundBudget>,
    to_flush: &mut Vec<Arc<Peer>>,
    overflowed: &mut Vec<ClientId>,
    lagging: &mut HashSet<ClientId>,
) {
    if stage.is_empty() {
        return;
    }
    let mut queued = 0;
    stage.take(
        |b| budget.track(b),
        |peer, bytes| {
            let id = peer.id.get().copied();
            // After a refused run, none of that peer's later ones: it is
            // closed, and must not get frames past a gap.
            if id.is_some_and(|id| overflowed.contains(&id)) {
                return;
            }
            match peer.push(bytes) {
                Push::Queued { newly, over } => {
                    if newly {
                        to_flush.push(peer);
                    }
                    if over {
                        lagging.extend(id);
                    }
                    queued += 1;
                }
                Push::Closed => {}
                Push::Overflow => overflowed.extend(id),
            }
        },
    );
    budget.add_slots(queued);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer whose queue holds `limit` bytes, registered as client `id`.
    async fn peer(
        id: u64,
        limit: usize,
        budget: &Arc<OutboundBudget>,
    ) -> (Arc<Peer>, std::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_, write) = server.into_split();
        let peer = Arc::new(Peer::new(
            write,
            crate::peer::QueueLimits::fixed(limit),
            Arc::clone(budget),
        ));
        peer.id.set(ClientId(id)).unwrap();
        (peer, client)
    }

    /// A client whose departure the hub has handled (or that it never
    /// had) is not marked as closing: nothing would take the mark off.
    #[tokio::test]
    async fn closing_a_client_already_gone_leaves_no_mark() {
        let budget = OutboundBudget::new(1 << 20);
        let server = chatproto::Server::new(chatproto::ServerConfig::default(), [7; 32]);
        let mut hub = Hub::new(
            server,
            super::super::Clock::new(),
            None,
            crate::peer::QueueLimits::fixed(1 << 20),
            std::time::Duration::from_secs(1),
            Arc::clone(&budget),
            Arc::new(crate::metrics::Metrics::default()),
        );
        let (here, _c) = peer(1, 1 << 20, &budget).await;
        hub.peers.insert(ClientId(1), here);
        hub.close_with(ClientId(2), ErrorCode::Unavailable, "gone".into());
        assert!(hub.kicked.is_empty(), "a client the hub does not hold");
        assert!(hub.leaving.is_empty());
        hub.close_with(ClientId(1), ErrorCode::Unavailable, "closing".into());
        assert!(hub.kicked.contains(&ClientId(1)), "a client it holds");
        assert_eq!(hub.leaving, [ClientId(1)]);
    }

    #[tokio::test]
    async fn after_a_refused_run_a_peer_gets_nothing_more_and_is_named_once() {
        let budget = OutboundBudget::new(1 << 20);
        let (slow, _c1) = peer(1, 600, &budget).await;
        let (fine, _c2) = peer(2, 1 << 20, &budget).await;
        let mut stage = Stage::default();
        let big = ServerFrame::notice("x".repeat(1_000));
        let small = ServerFrame::notice("y");
        // A big frame for both (too big for the slow queue), a small one
        // for the slow peer alone, then another big one for both.
        let e1 = stage.encode(&big, Audience::Many, 65_536).unwrap();
        stage.add(&slow, &e1);
        stage.add(&fine, &e1);
        let p = stage.encode(&small, Audience::One, 65_536).unwrap();
        stage.add(&slow, &p);
        let e2 = stage.encode(&big, Audience::Many, 65_536).unwrap();
        stage.add(&slow, &e2);
        stage.add(&fine, &e2);
        let (mut to_flush, mut overflowed) = (Vec::new(), Vec::new());
        unstage(
            &mut stage,
            &budget,
            &mut to_flush,
            &mut overflowed,
            &mut HashSet::new(),
        );
        assert_eq!(overflowed, [ClientId(1)]);
        assert_eq!(slow.queued(), 0, "not the small frame past the refused one");
        assert!(fine.queued() > 2_000);
        assert_eq!(to_flush.len(), 1);
    }
}
