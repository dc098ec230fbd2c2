//! A connection's life in the core: opened, ended or told alive, kicked,
//! taken over by a resume, closed; its session then leaves its rooms and
//! waits out the resume window, and what was decided for a connection the
//! core closes still reaches it before its `Close`.

use crate::frame::{ClientFrame, ErrorCode, ServerFrame};
use crate::server::durable::TokenHash;
use crate::server::event::SessionId;
use crate::server::output::Kick;
use crate::server::session::Conn;
use crate::server::timers::Timer;
use crate::server::{resumed_elsewhere, ClientId, Closing, Now, Server, Step};

impl Server {
    /// A connection opened. It must send `join` within the join timeout.
    pub fn handle_connect(&mut self, now: Now) -> ClientId {
        let id = ClientId(self.next_client);
        self.next_client += 1;
        let mut conn = Conn::new(now.mono);
        conn.join_paused = self.paused_ms(now.mono);
        self.conns.insert(id, conn);
        self.timers.arm(
            now.mono.saturating_add(self.config.join_timeout_ms),
            Timer::Join(id),
        );
        id
    }

    /// `client`'s connection closed or failed. Its session leaves every
    /// room it was in (everyone there sees it go, but in a room past
    /// [`presence_fanout_max`](crate::ServerConfig::presence_fanout_max),
    /// where nobody is told) and can be resumed within the resume window.
    /// No event is delivered to it from here on, also one the core was
    /// closing (its `Close` not polled yet). Unknown clients are ignored.
    pub fn handle_disconnect(&mut self, now: Now, client: ClientId) {
        self.disconnect(now, client, None);
    }

    /// [`handle_disconnect`](Server::handle_disconnect) for a connection
    /// the shell closed itself with the fatal error `code` (its own
    /// policies, a [`Kick`]: `slow_consumer`, `rate_limited`, a framing
    /// error), whether or not that `error` frame could be written: the
    /// `welcome` of the session's resume says `code` as its `closed_for`
    /// (PROTOCOL.md 5.1), so the client learns why even if the frame never
    /// reached it.
    pub fn handle_disconnect_for(&mut self, now: Now, client: ClientId, code: ErrorCode) {
        self.disconnect(now, client, Some(code));
    }

    fn disconnect(&mut self, now: Now, client: ClientId, code: Option<ErrorCode>) {
        // Nothing more can reach it: out of every room's fan-out now, and,
        // if the core was closing it, nothing more is built for it.
        self.out_of_fanout(client);
        self.closing.remove(&client);
        let code = code.filter(|c| *c != ErrorCode::ResumedElsewhere);
        self.drop_conn(now, client, true, code);
    }

    /// `client` will send nothing more: its stream ended cleanly (the
    /// other side's FIN, a WebSocket close) after the frames already
    /// handed to [`handle_frame`](Server::handle_frame). Everything those
    /// frames asked for is answered first (a `welcome`, a `pong`, an
    /// echo: held for the store or, in a cluster, for the log, as any
    /// answer is), then [`Output::Finish`](crate::Output::Finish) says to
    /// close it. The connection stays in its rooms until the shell, having
    /// closed it, calls [`handle_disconnect`](Server::handle_disconnect).
    /// Unknown clients are ignored.
    ///
    /// A shell that calls `handle_disconnect` at once instead loses the
    /// answers still on their way to a client that sent its last frames
    /// and half-closed (a script piping a few lines into a socket).
    ///
    /// It takes no [`Now`]: an end is no sign of life (a client that will
    /// send nothing more cannot answer a ping, so its timers run on as
    /// they were: one whose answers wait too long is closed as any), and
    /// nothing is stamped.
    ///
    /// Only the first end of a connection counts: one told by
    /// [`handle_last_frame`](Server::handle_last_frame) already is not
    /// answered again. Nothing comes after it: a frame handed after it
    /// ([`handle_frame`](Server::handle_frame),
    /// [`handle_bad_frame`](Server::handle_bad_frame)) is ignored, also
    /// after the `Finish`.
    pub fn handle_end(&mut self, client: ClientId) {
        if let Some(c) = self.conns.get_mut(&client) {
            if !std::mem::replace(&mut c.ended, true) {
                self.answer(client, Step::End(client));
            }
        }
    }

    /// `frame`, and then the end of `client`'s stream, read together
    /// before the frame was handed over: as
    /// [`handle_frame`](Server::handle_frame) followed by
    /// [`handle_end`](Server::handle_end), except that a `join` resuming
    /// a session whose connection is still open does not take it over
    /// (PROTOCOL.md 5.1): a connection that has ended cannot continue the
    /// session, and closing the open one with `resumed_elsewhere` would
    /// only end it for nothing. Such a join is answered as a join for a
    /// nickname in use is (`nick_taken`). This is a client's reconnect
    /// attempt that gave up waiting for its `welcome` and closed, its join
    /// queued with its end while the server was stalled (stopped, or a
    /// paused VM), then read after a newer connection of the same client
    /// had resumed the session. A shell need only look for the end after
    /// a connection's first frame, when it is a join with `resume`.
    /// Unknown clients are ignored; so is a frame after the end was told
    /// (nothing comes after an end: it is not answered again either).
    pub fn handle_last_frame(&mut self, now: Now, client: ClientId, frame: ClientFrame) {
        let Some(c) = self.conns.get_mut(&client) else {
            return;
        };
        if std::mem::replace(&mut c.ended, true) {
            return;
        }
        self.frame_in(now, client, frame, true);
        self.answer(client, Step::End(client));
    }

    /// The shell saw `client` read what was queued for it (its socket took
    /// bytes after being full). That proves it alive like a frame from it
    /// would: a ping it has not answered yet no longer times it out, since
    /// the ping may be waiting behind the backlog it is reading.
    pub fn handle_progress(&mut self, now: Now, client: ClientId) {
        if let Some(c) = self.conns.get_mut(&client) {
            c.last_heard = now.mono;
            c.ping_sent_at = None;
        }
    }

    /// Close `client` for a reason the shell decided (see [`Kick`]): it
    /// gets the error frame, then [`Output::Close`](crate::Output::Close), and leaves its rooms.
    /// What was decided for it before and not yet polled (its `welcome`,
    /// answers, events) still comes first, as if polled before the kick.
    pub fn kick(&mut self, now: Now, client: ClientId, why: Kick) {
        if !self.conns.contains_key(&client) {
            return;
        }
        self.close_with(now, client, why.frame());
    }

    /// A server that shares rooms with this one (§5.9 of PROTOCOL.md) is
    /// resuming the session whose token hashes to `token`, and that
    /// session's connection is here: close it with `resumed_elsewhere`
    /// (its session leaves its rooms and waits to be resumed, as after any
    /// disconnect). The connection closed, if one was open.
    pub fn handle_resumed_elsewhere(&mut self, now: Now, token: &TokenHash) -> Option<ClientId> {
        let client = self.live_conn_of(token, None)?;
        self.close_with(now, client, resumed_elsewhere());
        Some(client)
    }

    /// The open connection of the session whose token hashes to `token`,
    /// if that session's nickname has the identity `key` (any, if `None`).
    pub(super) fn live_conn_of(&self, token: &TokenHash, key: Option<&str>) -> Option<ClientId> {
        let s = &self.sessions[self.tokens.get(token)?];
        match key {
            Some(key) if s.key != key => None,
            _ => s.conn,
        }
    }

    /// The server is stopping: send every connection a `notice` with `text`.
    /// The caller then writes out what is queued and closes every connection.
    pub fn handle_shutdown(&mut self, text: &str) {
        let mut ids: Vec<ClientId> = self.conns.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.steps
                .push_back(Step::Send(id, ServerFrame::notice(text)));
        }
    }

    /// Send `error` to `client`, close it, and let its session leave.
    pub(super) fn close_with(&mut self, now: Now, client: ClientId, error: ServerFrame) {
        let ServerFrame::Error { code, .. } = &error else {
            return;
        };
        let code = *code;
        // What waited for the log goes first; the connection is closing.
        if let Some(s) = self.session_of(client) {
            let deferred = std::mem::take(&mut s.deferred);
            let on_the_way = s.in_flight.len();
            s.in_flight.clear();
            s.resent.clear();
            self.on_the_way = self.on_the_way.saturating_sub(on_the_way);
            self.deferred = self.deferred.saturating_sub(deferred.len());
            self.steps
                .extend(deferred.into_iter().map(|(_, step)| step));
        }
        self.steps.push_back(Step::Send(client, error));
        self.steps.push_back(Step::Close(client, code));
        // A takeover's new connection resumes the session at once: it is
        // not told of its own taking over.
        let said = (code != ErrorCode::ResumedElsewhere).then_some(code);
        self.drop_conn(now, client, false, said);
    }

    /// Forget the connection; its session (if any) leaves its rooms and
    /// releases its nickname, and waits out the resume window. `gone`: the
    /// shell said it closed (nothing more can reach it), rather than the
    /// core closing it after what is queued for it. `closed_for`: the fatal
    /// error it was closed with, for the session's resume to say.
    fn drop_conn(&mut self, now: Now, client: ClientId, gone: bool, closed_for: Option<ErrorCode>) {
        let Some(conn) = self.conns.remove(&client) else {
            return;
        };
        let Some(sid) = conn.session else {
            return;
        };
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if !gone {
            // Until its `Close` goes out it gets what was decided before,
            // as if the shell had drained then. Its session may be
            // forgotten meanwhile (past `max_detached_sessions`): what a
            // `welcome` says is kept.
            let closing = Closing {
                session: sid,
                nick: s.nick.clone(),
                token: s.token.clone(),
                welcomed: conn.welcomed,
            };
            self.closing.insert(client, closing);
        }
        s.conn = None;
        s.ended_at = Some(now.mono);
        match closed_for {
            Some(code) => self.closed_for.insert(sid, code),
            None => self.closed_for.remove(&sid),
        };
        self.on_the_way = self.on_the_way.saturating_sub(s.in_flight.len());
        s.in_flight.clear();
        s.resent.clear();
        self.deferred = self.deferred.saturating_sub(s.deferred.len());
        s.deferred.clear();
        let (key, skeleton, nick) = (s.key.clone(), s.skeleton.clone(), s.nick.clone());
        let mut rooms: Vec<String> = s.rooms.drain().map(|(r, _)| r).collect();
        // Their presences are still on their way: each must find its own
        // `enter` gone, not take one a resuming connection makes next
        // (answered on this connection if it is closing, not gone).
        for e in s.entering.iter_mut() {
            if let Some(req) = e.req.take() {
                e.closed = (!gone).then_some((client, req));
            }
        }
        rooms.sort_unstable();
        if self.by_key.get(&key) == Some(&sid) {
            self.by_key.remove(&key);
        }
        if self.by_skeleton.get(&skeleton) == Some(&sid) {
            self.by_skeleton.remove(&skeleton);
        }
        // A connection gone left every room's audience already (see
        // `out_of_fanout`); one being closed gets what comes before its
        // `Close`, and leaves then.
        for room in rooms {
            self.stamp_leaving(now, &room, sid, nick.clone(), client);
        }
        self.record_attached(sid, false);
        self.detach_timer(sid, now);
        self.note_detached(sid);
    }

    /// `sid` waits to be resumed: past `max_detached_sessions` waiting,
    /// the one waiting longest is forgotten. Only sessions still waiting
    /// count (not entries for those resumed, expired or detached again).
    pub(crate) fn note_detached(&mut self, sid: SessionId) {
        self.detaches += 1;
        let n = self.detaches;
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.detach = n;
        }
        self.detached.push_back((sid, n));
        let sessions = &self.sessions;
        let waiting = |&(sid, n): &(SessionId, u64)| {
            sessions
                .get(&sid)
                .is_some_and(|s| s.conn.is_none() && s.detach == n)
        };
        while self.detached.front().is_some_and(|e| !waiting(e)) {
            self.detached.pop_front();
        }
        if self.detached.len() <= self.config.max_detached_sessions {
            return;
        }
        self.detached.retain(waiting);
        while self.detached.len() > self.config.max_detached_sessions {
            let Some((old, _)) = self.detached.pop_front() else {
                break;
            };
            if let Some(s) = self.sessions.remove(&old) {
                self.closed_for.remove(&old);
                self.tokens.remove(&s.token_hash);
                self.record_session_forgotten(old);
            }
        }
    }

    /// The session `client` joined as, for an answer queued to it: also
    /// while the core closes it (until its `Close` goes out).
    pub(crate) fn answered_session(&self, client: ClientId) -> Option<SessionId> {
        match self.conns.get(&client) {
            Some(c) => c.session,
            None => self.closing.get(&client).map(|k| k.session),
        }
    }

    /// Whether `client`'s `welcome` went out (also while the core closes
    /// it): nothing of its session may come before.
    pub(crate) fn welcomed(&self, client: ClientId) -> bool {
        match self.conns.get(&client) {
            Some(c) => c.welcomed,
            None => self.closing.get(&client).is_some_and(|k| k.welcomed),
        }
    }

    /// `client`'s `Close` went out: what was decided before it is all
    /// told, and it is out of every room's fan-out.
    pub(super) fn closed(&mut self, client: ClientId) {
        self.closing.remove(&client);
        self.out_of_fanout(client);
    }

    /// `client` is closed: out of the fan-out of every room it is in, at
    /// once, so that no event applied before its leaving (held by the
    /// store, decided in the same turn, or on its way through a
    /// cluster's log) lists it. In cluster mode its session stays in each
    /// room's roster until that leaving is applied, which then takes out
    /// no connection. A room it parted is among them until the part is
    /// applied.
    fn out_of_fanout(&mut self, client: ClientId) {
        let Some(rooms) = self.fanout_of.remove(&client) else {
            return;
        };
        for name in rooms {
            if let Some(r) = self.rooms.get_mut(&*name) {
                r.remove_conn(client);
            }
        }
    }
}
