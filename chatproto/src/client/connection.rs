//! A connection's start and end (join, rejoin, disconnect), and the
//! timers: pinging a silent server, calling a connection dead, and
//! sending messages the pacing held back.

use super::{Client, ClientEvent, ClientOutput, Phase};
use crate::frame::{ClientFrame, ErrorCode};
use crate::nick::{NickError, NickRule};

impl Client {
    /// A connection is open: join (resuming the session if there was one).
    /// The one before, if the shell did not say it ended
    /// ([`Client::handle_disconnected`]), is taken to have ended first.
    ///
    /// A nickname longer than any server takes
    /// ([`MAX_NICK_LEN`](crate::MAX_NICK_LEN) characters) is not sent:
    /// the join is refused at once, as the server would refuse it, by a
    /// [`ClientEvent::Refused`] `nick_invalid` that says why; give
    /// another with [`join_as`](Client::join_as).
    pub fn handle_connected(&mut self, now: u64) {
        if self.phase != Phase::Offline {
            self.handle_disconnected();
        }
        // Nothing queued offline is for this connection, which starts with
        // its join (none is meant to be: see `handle_frame`).
        self.out.retain(|o| matches!(o, ClientOutput::Event(_)));
        self.tick(now);
        self.join_refused = false;
        self.phase = Phase::Joining;
        self.connections += 1;
        self.heard_at = now;
        self.pinged_at = None;
        self.entering.clear();
        for r in self.rooms.values_mut().chain(self.parting.values_mut()) {
            r.entered = false;
            r.whole = false;
            r.roster.clear();
        }
        self.send_join();
    }

    /// Send the `join`, with the session's token if there is one. A
    /// nickname longer than any server takes
    /// ([`MAX_NICK_LEN`](crate::MAX_NICK_LEN) characters, under either
    /// [`NickRule`]) is not sent (a long one would not even fit a frame):
    /// the join is refused here as the server would refuse it, a
    /// [`ClientEvent::Refused`] `nick_invalid` that says why, and the
    /// connection stays open for [`join_as`](Client::join_as). A token so
    /// long that the `join` would not fit a frame (no server gives one:
    /// a shell's, from [`resume_session`](Client::resume_session)) is left
    /// out: the join starts a new session, as one with a token the server
    /// does not know would.
    fn send_join(&mut self) {
        if let Err(why @ NickError::TooLong(_)) =
            crate::nick::normalize_nick(&self.nick, NickRule::Unicode)
        {
            self.join_refused = true;
            self.event(ClientEvent::Refused {
                code: ErrorCode::NickInvalid,
                message: why.to_string(),
            });
            return;
        }
        let nick = self.nick.clone();
        let mut frame = ClientFrame::join_v2(nick.clone(), Vec::new(), self.token.clone());
        if self.token.is_some() && crate::encode(&frame, self.frame_limit()).is_err() {
            self.token = None;
            frame = ClientFrame::join_v2(nick, Vec::new(), None);
        }
        self.send(frame);
    }

    /// Join as `nick` instead, after the server refused the nickname
    /// ([`ClientEvent::Refused`] with `nick_taken` or `nick_invalid`: the
    /// connection stays open): the join is sent again with it. Offline,
    /// the next connection joins with it. Once joined there is no
    /// changing it, nor while a join is waiting for its answer, nor after
    /// a refusal that closes the connection (a fatal code) until
    /// [`handle_disconnected`](Client::handle_disconnected): returns
    /// `false` and does nothing. A nickname longer than any server takes
    /// is refused at once, as on [`handle_connected`](Client::handle_connected)
    /// (returns `true`: the nickname was taken for the join).
    pub fn join_as(&mut self, nick: impl Into<String>) -> bool {
        match self.phase {
            Phase::Joined => false,
            Phase::Joining if !self.join_refused => false,
            Phase::Offline => {
                self.nick = nick.into();
                true
            }
            Phase::Joining => {
                self.join_refused = false;
                self.nick = nick.into();
                self.send_join();
                true
            }
        }
    }

    /// The connection ended. What was not acknowledged is kept, to resend
    /// (see [`Client`] for what a session the server does not resume
    /// gives up instead).
    pub fn handle_disconnected(&mut self) {
        if self.phase != Phase::Offline {
            self.note_written();
        }
        self.phase = Phase::Offline;
        // Frames not sent yet belong to the dead connection; the next one
        // starts with its join (what matters is kept: pending messages).
        self.out.retain(|o| matches!(o, ClientOutput::Event(_)));
        self.paced.clear();
        // The next server says its own rate (in its `welcome`).
        self.pacer = None;
        self.held.clear();
        // Parted with messages still waiting for an answer: the next
        // connection enters them again to resend those, then parts. The
        // others are left (a new connection is in no room until it
        // enters: not entering them is the `part`).
        let pending = &self.pending;
        self.parting
            .retain(|room, _| pending.iter().any(|p| &p.room == room));
    }

    /// The connection ends: the messages handed out on it whose frames
    /// left the core were written, and may have arrived; one whose frame
    /// is still here (not polled, or waiting for the pacer) never left,
    /// and unless an earlier connection wrote it, it is as if never sent
    /// (no replay can hold it).
    fn note_written(&mut self) {
        let unsent: std::collections::BTreeSet<&str> = (self.out.iter())
            .filter_map(|o| match o {
                ClientOutput::Send(f) => Some(f),
                ClientOutput::Event(_) => None,
            })
            .chain(self.paced.iter().map(|(f, _)| f))
            .filter_map(|f| match f {
                ClientFrame::Msg { id: Some(id), .. } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        let connection = self.connections;
        for p in self.pending.iter_mut().filter(|p| p.sent_on == connection) {
            if !unsent.contains(p.id.as_str()) {
                p.written = true;
            } else if !p.written {
                p.sent_after = None;
            }
        }
    }

    /// Ping the server once nothing was heard from it for
    /// `ping_after_ms`, and call the connection dead
    /// ([`ClientEvent::Dead`]) once nothing answered that ping for
    /// `dead_after_ms` more (monotonic milliseconds, each at least 1;
    /// by default [`CLIENT_PING_AFTER_MS`](super::CLIENT_PING_AFTER_MS)
    /// and [`CLIENT_DEAD_AFTER_MS`](super::CLIENT_DEAD_AFTER_MS), whose
    /// docs say why). Any frame heard counts as an answer. Takes effect at
    /// once, on the connection open too (ask
    /// [`poll_timeout`](Client::poll_timeout) again).
    pub fn set_keepalive(&mut self, ping_after_ms: u64, dead_after_ms: u64) {
        self.ping_after_ms = ping_after_ms.max(1);
        self.dead_after_ms = dead_after_ms.max(1);
    }

    /// When to call [`handle_timeout`](Client::handle_timeout), on the
    /// monotonic clock, while connected.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.phase == Phase::Offline {
            return None;
        }
        let alive = match self.pinged_at {
            Some(at) => at.saturating_add(self.dead_after_ms),
            None => self.heard_at.saturating_add(self.ping_after_ms),
        };
        let paced = match (&self.pacer, self.paced.front()) {
            (Some(p), Some((_, cost))) => p.next_at(*cost),
            _ => u64::MAX,
        };
        Some(alive.min(paced))
    }

    /// Time passed: send what waited for the rate the server said, ping a
    /// silent server, or call the connection dead.
    pub fn handle_timeout(&mut self, now: u64) {
        if self.phase == Phase::Offline {
            return;
        }
        self.tick(now);
        self.send_paced(now);
        match self.pinged_at {
            Some(at) if now >= at.saturating_add(self.dead_after_ms) => {
                // As good as ended: what belongs to it goes now, so a
                // shell that connects again at once without
                // `handle_disconnected` starts clean (its join first).
                self.handle_disconnected();
                self.out.push_back(ClientOutput::Event(ClientEvent::Dead));
            }
            None if now >= self.heard_at.saturating_add(self.ping_after_ms) => {
                self.pinged_at = Some(now);
                self.send(ClientFrame::Ping);
            }
            _ => {}
        }
    }
}
