//! Deadlines on the monotonic clock, so an idle server sleeps instead of
//! scanning every client on a tick.
//!
//! Timers are checked lazily: one that fires may find its reason gone (the
//! client spoke, joined or left) and does nothing, or re-arms itself for
//! its real deadline. So handling a frame touches the heap only to arm a
//! connection's first timer of a kind (its join arms its idle timer), and
//! each connection has at most one idle, one join, one pong and one held
//! timer armed.
//!
//! The [`Server`]'s side is here too: [`Server::poll_timeout`] and
//! [`Server::handle_timeout`], what each timer does when it comes due,
//! input paused by the shell (which stops the join and pong clocks), and
//! the pings that tell a client whose answers are held that the link is
//! alive.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::frame::{ErrorCode, ServerFrame};
use crate::server::event::SessionId;
use crate::server::session::{Conn, Held};
use crate::server::{ClientId, Now, Server, Step};

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    Join(ClientId),
    Idle(ClientId),
    Pong(ClientId),
    /// Its answers may still be held (see `Conn::held`).
    Held(ClientId),
    Session(SessionId),
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(u64, Timer)>>,
}

impl Timers {
    /// Arm `timer` for `at`; not at all for `u64::MAX` (a setting of
    /// `u64::MAX`, "never", saturated to it), which would never come and
    /// would stay in the heap for good, one for every connection.
    pub fn arm(&mut self, at: u64, timer: Timer) {
        if at != u64::MAX {
            self.heap.push(Reverse((at, timer)));
        }
    }

    pub fn next(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Every timer armed, in no order.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = Timer> + '_ {
        self.heap.iter().map(|Reverse((_, t))| *t)
    }

    /// Move every timer due at `now` into `out`.
    pub fn due(&mut self, now: u64, out: &mut Vec<Timer>) {
        while let Some(Reverse((at, _))) = self.heap.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((_, t))) = self.heap.pop() {
                out.push(t);
            }
        }
        if self.heap.capacity() > 1024 && self.heap.capacity() > 4 * self.heap.len() {
            self.heap.shrink_to_fit();
        }
    }
}

impl Server {
    /// The shell stopped taking input (`paused`: its own bound on what
    /// waits, see [`outputs_waiting`](Server::outputs_waiting)), or takes
    /// it again. Frames wait unread meanwhile, answers to pings and joins
    /// among them: the pong and join timeouts count only the time input
    /// was taken, so nobody is closed for what waited unread (and a pause
    /// that comes and goes only slows them down). A timer that comes due
    /// while paused waits for the pause's end, which arms it again: read
    /// [`poll_timeout`](Server::poll_timeout) after this call.
    pub fn handle_input_paused(&mut self, now: Now, paused: bool) {
        match (self.input_paused, paused) {
            (false, true) => self.paused_since = now.mono,
            (true, false) => {
                self.paused_before = self
                    .paused_before
                    .saturating_add(now.mono.saturating_sub(self.paused_since));
                // Each finds what is left of its time (see `left_of`).
                for timer in self.held_timers.drain(..) {
                    self.timers.arm(now.mono, timer);
                }
            }
            _ => {}
        }
        self.input_paused = paused;
    }

    /// How long the shell's input has been paused in all, up to `mono`:
    /// a client's wait is the time since its ping (or connection) less
    /// what this grew by meanwhile.
    pub(super) fn paused_ms(&self, mono: u64) -> u64 {
        match self.input_paused {
            true => self
                .paused_before
                .saturating_add(mono.saturating_sub(self.paused_since)),
            false => self.paused_before,
        }
    }

    /// `client` sent a frame at `now`: if what answers it is held (behind
    /// its events on their way through the log, or behind records not
    /// stored yet), note since when, and watch it: held past
    /// [`held_ping_ms`](crate::ServerConfig::held_ping_ms), the
    /// connection is sent a `ping` (see `Timer::Held`).
    pub(super) fn watch_held(&mut self, now: Now, client: ClientId) {
        let interval = self.config.held_ping_ms;
        let (issued, stored) = (self.gate.issued, self.gate.stored);
        if !self.may_hold_answers() {
            return;
        }
        // One look-up of the connection on a durable server's every
        // frame; the session's events are looked at in a cluster only.
        let on_its_way =
            self.config.cluster && self.conns.get(&client).is_some_and(|c| self.on_its_way(c));
        let Some(c) = self.conns.get_mut(&client) else {
            return;
        };
        // Held without a break since the episode noted began: its answers
        // wait on, the newest behind the newest ticket.
        let since = match c.held {
            Some(h) if on_its_way || h.ticket > stored => h.since,
            _ if on_its_way || issued > stored => now.mono,
            _ => {
                c.held = None;
                return;
            }
        };
        c.held = Some(Held {
            since,
            ticket: issued,
        });
        if !c.held_timer {
            c.held_timer = true;
            let at = since.saturating_add(interval);
            self.timers.arm(at.max(now.mono), Timer::Held(client));
        }
    }

    /// Whether answers may be held and pinged for: in a cluster or with
    /// a store, and `held_ping_ms` not never (then no timer either: it
    /// would never come, and stay). A memory server holds no answers, and
    /// its frames skip [`watch_held`](Server::watch_held) at this test.
    #[inline]
    pub(super) fn may_hold_answers(&self) -> bool {
        self.config.held_ping_ms != u64::MAX && (self.config.cluster || self.config.durable)
    }

    /// Cluster mode: `c`'s session has events of this connection's on
    /// their way through the log (or resends waiting for them), which its
    /// later answers wait behind.
    fn on_its_way(&self, c: &Conn) -> bool {
        self.config.cluster
            && c.session
                .and_then(|sid| self.sessions.get(&sid))
                .is_some_and(|s| !s.in_flight.is_empty() || !s.resent.is_empty())
    }

    /// What is left of `timeout` for a client waited for since `since`
    /// (monotonic ms), when the input's paused total was `paused_then`;
    /// 0 once it is over. Asked only while input is taken (a timer due
    /// during a pause waits in `held_timers`).
    fn left_of(&self, now: u64, since: u64, paused_then: u64, timeout: u64) -> u64 {
        let paused = self.paused_ms(now).saturating_sub(paused_then);
        let waited = now.saturating_sub(since).saturating_sub(paused);
        timeout.saturating_sub(waited)
    }

    /// When to call [`handle_timeout`](Server::handle_timeout) next, on the
    /// monotonic clock; `None` when nothing is waiting on time. Timers are
    /// not cancelled when their reason goes away (a client that joins, or
    /// speaks), so a deadline may come and find nothing to do.
    ///
    /// Check it after every turn, not only when a sleep until it ends: under
    /// steady input a loop whose wait for input returns first every time
    /// would never call [`handle_timeout`](Server::handle_timeout).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        self.timers.next()
    }

    /// Time passed: run every timer that is due (join timeouts, idle
    /// pings, unanswered pings, pings for answers held, sessions past the
    /// resume window). A call
    /// before [`poll_timeout`](Server::poll_timeout)'s deadline does
    /// nothing, so a shell may call it on every turn.
    pub fn handle_timeout(&mut self, now: Now) {
        let mut due = Vec::new();
        self.timers.due(now.mono, &mut due);
        // Sorted so that the output does not depend on arming order.
        due.sort_unstable();
        for timer in due {
            self.run_timer(now, timer);
        }
    }

    /// A join or pong `timer` came due, waiting since `since` when the
    /// input's paused total was `paused_then`: held while input is paused
    /// (its answer may wait unread; judged once input is taken), armed
    /// again for what is left of `timeout_ms` of input taken, or its
    /// connection closed with `timeout` and `why`.
    fn judge(
        &mut self,
        now: Now,
        timer: Timer,
        since: u64,
        paused_then: u64,
        timeout_ms: u64,
        why: &str,
    ) {
        if self.input_paused {
            self.held_timers.push(timer);
            return;
        }
        let left = self.left_of(now.mono, since, paused_then, timeout_ms);
        if left > 0 {
            self.timers.arm(now.mono.saturating_add(left), timer);
            return;
        }
        if let Timer::Join(id) | Timer::Pong(id) = timer {
            self.close_with(now, id, timeout(why));
        }
    }

    fn run_timer(&mut self, now: Now, timer: Timer) {
        let cfg = &self.config;
        match timer {
            Timer::Join(id) => {
                let Some(c) = self.conns.get_mut(&id).filter(|c| c.session.is_none()) else {
                    return;
                };
                let (since, paused_then) = (c.connected_at, c.join_paused);
                let why = "you did not join in time";
                self.judge(now, timer, since, paused_then, cfg.join_timeout_ms, why);
            }
            Timer::Idle(id) => {
                let paused_now = self.paused_ms(now.mono);
                let Some(c) = self.conns.get_mut(&id) else {
                    return;
                };
                if c.session.is_none() || c.ping_sent_at.is_some() {
                    return;
                }
                let due = c.last_heard.saturating_add(cfg.idle_ping_ms);
                if due > now.mono {
                    self.timers.arm(due, Timer::Idle(id));
                    return;
                }
                c.ping_sent_at = Some(now.mono);
                c.ping_queued = Some(self.barrier_stops);
                c.ping_late = false;
                c.ping_paused = paused_now;
                self.timers.arm(
                    now.mono.saturating_add(cfg.pong_timeout_ms),
                    Timer::Pong(id),
                );
                self.steps.push_back(Step::Send(id, ServerFrame::Ping));
            }
            Timer::Pong(id) => {
                let paused_now = self.paused_ms(now.mono);
                let Some(c) = self.conns.get_mut(&id) else {
                    return;
                };
                match c.ping_sent_at {
                    // The ping waits for the store, or went out after
                    // waiting: the client could not answer it yet, and
                    // has the whole time from now.
                    Some(_) if c.ping_queued.is_some() || c.ping_late => {
                        c.ping_late = false;
                        c.ping_sent_at = Some(now.mono);
                        c.ping_paused = paused_now;
                        self.timers.arm(
                            now.mono.saturating_add(cfg.pong_timeout_ms),
                            Timer::Pong(id),
                        );
                    }
                    Some(sent) if now.mono >= sent.saturating_add(cfg.pong_timeout_ms) => {
                        let paused_then = c.ping_paused;
                        let why = "you did not answer a ping in time";
                        self.judge(now, timer, sent, paused_then, cfg.pong_timeout_ms, why);
                    }
                    Some(_) => {}
                    // Answered: watch for the next silence.
                    None => {
                        let due = c.last_heard.saturating_add(cfg.idle_ping_ms);
                        self.timers.arm(due.max(now.mono), Timer::Idle(id));
                    }
                }
            }
            Timer::Held(id) => self.held_due(now, id),
            Timer::Session(sid) => {
                let Some(s) = self.sessions.get_mut(&sid) else {
                    return;
                };
                s.timer = false;
                let Some(end) = s.ended_at.filter(|_| s.conn.is_none()) else {
                    return;
                };
                let due = end.saturating_add(cfg.resume_window_ms);
                if now.mono < due {
                    // Detached again since this timer was armed.
                    s.timer = true;
                    self.timers.arm(due, Timer::Session(sid));
                } else if let Some(s) = self.sessions.remove(&sid) {
                    self.closed_for.remove(&sid);
                    self.tokens.remove(&s.token_hash);
                    self.record_session_forgotten(sid);
                }
            }
        }
    }

    /// `id`'s held timer came due: while its answers are still held, a
    /// `ping` once they have waited
    /// [`held_ping_ms`](crate::ServerConfig::held_ping_ms) and once more
    /// each time that passes again. The ping goes ahead of everything
    /// waiting (see `Server::keepalives`): a server `ping` answers no
    /// frame, so nothing orders it behind the answers. Only once the
    /// connection's `welcome` went out: nothing comes before that.
    fn held_due(&mut self, now: Now, id: ClientId) {
        let interval = self.config.held_ping_ms;
        let stored = self.gate.stored;
        let Some(c) = self.conns.get(&id) else {
            return;
        };
        let on_its_way = self.on_its_way(c);
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.held_timer = false;
        let Some(held) = c.held else {
            return;
        };
        if !on_its_way && held.ticket <= stored {
            // Let go: the next frame held starts a new wait.
            c.held = None;
            return;
        }
        let next = c.held_pinged.map_or(0, |at| at.saturating_add(interval));
        let mut due = held.since.saturating_add(interval).max(next);
        if now.mono >= due && c.welcomed {
            c.held_pinged = Some(now.mono);
            self.keepalives.push_back(id);
            due = now.mono.saturating_add(interval);
        } else if now.mono >= due {
            // Its `welcome` is held too: look again in a while.
            due = now.mono.saturating_add(interval);
        }
        c.held_timer = true;
        self.timers.arm(due, Timer::Held(id));
    }

    /// The server is stopping at `now`: forget every session whose resume
    /// window has passed, its timer due or not yet run, and nothing else
    /// (no ping, no timeout: [`handle_timeout`](Server::handle_timeout)
    /// would judge connections whose answers may wait unread). A durable
    /// server's store forgets them too ([`Record::SessionForgotten`]), so
    /// that a restart does not bring back a session that could not be
    /// resumed at the stop (PROTOCOL.md 5.8). Each session still
    /// connected loses its connection with the stop: its store record
    /// says so, with the messages whose ids it remembers
    /// ([`Record::Attached`]), as for any lost connection, so that a
    /// restart gives them back. Call it before the last batch is handed
    /// to the store.
    ///
    /// [`Record::SessionForgotten`]: crate::Record::SessionForgotten
    /// [`Record::Attached`]: crate::Record::Attached
    pub fn forget_expired_sessions(&mut self, now: Now) {
        let window = self.config.resume_window_ms;
        let mut gone: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                s.conn.is_none()
                    && s.ended_at
                        .is_some_and(|end| now.mono >= end.saturating_add(window))
            })
            .map(|(sid, _)| *sid)
            .collect();
        gone.sort_unstable();
        for sid in gone {
            if let Some(s) = self.sessions.remove(&sid) {
                self.closed_for.remove(&sid);
                self.tokens.remove(&s.token_hash);
                self.record_session_forgotten(sid);
            }
        }
        let mut connected: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.conn.is_some())
            .map(|(sid, _)| *sid)
            .collect();
        connected.sort_unstable();
        for sid in connected {
            self.record_attached(sid, false);
        }
    }

    /// `sid`'s connection ended (at `now`): its resume window's timer,
    /// unless one is armed already (for an earlier end: firing, it arms
    /// itself again for this one's).
    pub(super) fn detach_timer(&mut self, sid: SessionId, now: Now) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if !s.timer {
            s.timer = true;
            self.timers.arm(
                now.mono.saturating_add(self.config.resume_window_ms),
                Timer::Session(sid),
            );
        }
    }
}

fn timeout(message: &str) -> ServerFrame {
    ServerFrame::error(ErrorCode::Timeout, message)
}
