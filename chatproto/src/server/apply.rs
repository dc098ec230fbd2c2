//! Applying: where a stamped event changes its room (its history, and its
//! members as the event tells them), one event at a time, as the shell
//! drains [`Server::poll`]. What changes a room besides is listed in
//! [`event`](super::event)'s docs.

use std::sync::Arc;

use crate::frame::{PresenceStatus, RoomInfo, ServerFrame};
use crate::server::config::LOBBY;
use crate::server::event::{Event, EventBody, SessionId};
use crate::server::output::Output;
use crate::server::session::EnterRequest;
use crate::server::{Audience, ClientId, Server, Step};

/// How many of a room's latest messages an entering without a `since` of
/// its epoch shows.
pub(crate) fn latest_shown(config: &crate::ServerConfig) -> usize {
    config.replay_limit.min(50)
}

/// Those of them memory holds that `sid` may see.
pub(crate) fn latest_in_memory<'a>(
    room: &'a crate::server::room::Room,
    sid: SessionId,
    config: &crate::ServerConfig,
) -> crate::server::room::Visible<'a> {
    room.visible(sid, 0, u64::MAX, latest_shown(config), config.history_scan)
}

/// Room left in a frame for members other than a list of nicks or of
/// messages (a `history` page's own members, an `entered`'s).
pub(crate) const FRAME_OVERHEAD: usize = 512;

impl Server {
    /// The next thing to do, or `None` when there is nothing left. Call
    /// after each `handle_*` (or after several), until `None`.
    #[must_use = "outputs not acted on are frames lost or connections left open"]
    pub fn poll(&mut self) -> Option<Output<'_>> {
        // A loop, not a call again, for each step that comes to nothing (a
        // queued answer to a connection gone): there may be thousands.
        loop {
            if !self.proposed.is_empty() {
                return Some(Output::Propose {
                    events: std::mem::take(&mut self.proposed),
                });
            }
            if !self.gate.records.is_empty() {
                // Records after these get a barrier of their own.
                self.gate.open = false;
                return Some(Output::Persist {
                    records: std::mem::take(&mut self.gate.records),
                    through: self.gate.issued,
                });
            }
            while self.front.is_empty() && self.pending.is_empty() {
                match self.steps.pop_front()? {
                    Step::Apply(event) => self.apply(event, None),
                    Step::ApplyDeparture(event, entered) => self.apply(event, Some(entered)),
                    Step::Barrier(ticket) if ticket > self.gate.stored => {
                        // Held until the store has it.
                        self.steps.push_front(Step::Barrier(ticket));
                        self.barrier_stops += 1;
                        return None;
                    }
                    Step::Barrier(_) => {}
                    other => self.front.push_back(other),
                }
            }
            let Some(step) = self.front.pop_front() else {
                break;
            };
            if let Some(out) = self.materialize(step) {
                return Some(out);
            }
        }
        let audience = self.pending.pop_front()?;
        let event = self.current.as_deref()?;
        let (to, with_id): (&[ClientId], bool) = match audience {
            Audience::Room => (
                self.rooms.get(&*event.room).map_or(&[][..], |r| &r.members),
                false,
            ),
            Audience::List(mut list) => {
                // The old buffer goes back for the next list.
                std::mem::swap(&mut self.list, &mut list);
                list.clear();
                self.spare = list;
                (&self.list, false)
            }
            Audience::One(client, with_id) => {
                self.list.clear();
                self.list.push(client);
                (&self.list, with_id)
            }
        };
        Some(Output::Deliver { event, to, with_id })
    }

    /// A step that is not an event, as an output; `None` if it came to
    /// nothing (its connection is gone).
    fn materialize(&mut self, step: Step) -> Option<Output<'static>> {
        match step {
            Step::Send(to, frame) => {
                if matches!(frame, ServerFrame::Ping) {
                    let stops = self.barrier_stops;
                    if let Some(c) = self.conns.get_mut(&to) {
                        if let Some(mark) = c.ping_queued.take() {
                            c.ping_late = mark != stops;
                        }
                    }
                }
                Some(Output::Send { to, frame })
            }
            Step::Close(client, code) => Some(Output::Close { client, code }),
            Step::Welcome {
                client,
                lobby,
                resumed,
            } => {
                let frames = self.welcome(client, lobby, resumed)?;
                if let Some(c) = self.conns.get_mut(&client) {
                    c.welcomed = true;
                }
                let mut frames = frames.into_iter();
                let first = frames.next()?;
                // The continuation frames go next, before anything else.
                let rest: Vec<ServerFrame> = frames.collect();
                for f in rest.into_iter().rev() {
                    self.front.push_front(Step::Send(client, f));
                }
                Some(Output::Send {
                    to: client,
                    frame: first,
                })
            }
            Step::History {
                client,
                room,
                before,
                limit,
            } => {
                let sid = self.conns.get(&client)?.session?;
                if let Some(query) = self.beyond_memory(sid, &room, before, limit) {
                    let before = query.before;
                    let epoch = self.rooms.get(&room).map(|r| r.epoch.clone())?;
                    let pending = crate::server::reads::Pending::History {
                        room,
                        before,
                        limit,
                        epoch,
                    };
                    return Some(self.read(client, query, pending));
                }
                let frame = self.history_page(sid, &room, before, limit);
                Some(Output::Send { to: client, frame })
            }
            Step::Read(client, query, pending) => Some(self.read(client, query, pending)),
            Step::Rooms(client) => {
                self.conns.get(&client)?;
                Some(Output::Send {
                    to: client,
                    frame: self.room_list(),
                })
            }
            Step::Apply(_) | Step::ApplyDeparture(..) | Step::Barrier(_) => None,
        }
    }

    /// Apply one stamped event: change the room, and queue what must be
    /// sent because of it (the `entered` of whoever entered, then the
    /// event's deliveries). `entered`: a leaving's cause, the seq of the
    /// entering it was said for (see [`Server::handle_logged_departure`]).
    // Out of line, as it was while `poll` called itself: inlined into the
    // loop it costs more (callgrind, BENCHMARKS.md).
    #[inline(never)]
    fn apply(&mut self, event: Arc<Event>, entered: Option<u64>) {
        let Some(room) = self.rooms.get_mut(&*event.room) else {
            return;
        };
        if event.seq <= room.seq {
            // Applied already (a sequencer may deliver twice).
            return;
        }
        self.applied += 1;
        room.touched = self.applied;
        match &event.body {
            EventBody::Presence {
                session,
                status: PresenceStatus::Online,
                ..
            } => {
                self.apply_enter(&event, *session);
                self.note_used(&event.room);
            }
            EventBody::Presence { session, .. } => {
                self.apply_leave(&event, *session, entered);
                self.note_used(&event.room);
            }
            EventBody::Msg { .. } => self.apply_msg(&event),
        }
        if self.config.cluster {
            self.answers_after(&event, None, true);
        }
        self.current = Some(event);
    }

    /// Cluster mode: `event` came back from the log (`applied`: it is
    /// being applied), or the log said it held it already or refused it,
    /// and `answer` is the sender's answer for it, which goes where that
    /// message's frame came among the answers waiting. If it was the last
    /// of its connection's on the way, the answers that waited go out:
    /// right after its deliveries if applied, else after what is queued
    /// already (a `welcome` held until the session is stored among it).
    /// Whether it was one of that connection's.
    pub(crate) fn answers_after(
        &mut self,
        event: &Event,
        answer: Option<ServerFrame>,
        applied: bool,
    ) -> bool {
        let Some(s) = self.sessions.get_mut(&event.session()) else {
            return false;
        };
        let mine = s
            .in_flight
            .iter()
            .position(|w| same_proposal(&w.event, event));
        let Some(w) = mine.and_then(|i| s.in_flight.remove(i)) else {
            return false;
        };
        if let (Some(frame), Some(conn)) = (answer, s.conn) {
            // Its place: after the answers that waited when it was
            // proposed, and those put in since for earlier messages.
            let at = w.waiting + (s.answered - w.answered);
            let at = at.min(s.deferred.len());
            s.deferred.insert(at, Step::Send(conn, frame));
            s.answered += 1;
            self.deferred += 1;
        }
        if s.in_flight.is_empty() {
            s.answered = 0;
            let deferred = std::mem::take(&mut s.deferred);
            self.deferred = self.deferred.saturating_sub(deferred.len());
            if applied {
                for step in deferred.into_iter().rev() {
                    self.steps.push_front(step);
                }
            } else {
                self.steps.extend(deferred);
            }
        }
        true
    }

    fn apply_enter(&mut self, event: &Arc<Event>, sid: SessionId) {
        let conn = self.sessions.get(&sid).and_then(|s| s.conn);
        let cluster = self.config.cluster;
        let request = self.sessions.get_mut(&sid).and_then(|s| {
            // In a cluster the session may have entered the room through
            // another node before it moved here, and that node's word may
            // come back after this connection's `enter` was made: it must
            // not answer (and add) the connection here, nor use up another
            // entering's entry; only the entering proposed for an entry
            // does.
            let i = s
                .entering
                .iter()
                .position(|e| *e.room == *event.room && (!cluster || e.ts == event.ts))?;
            s.entering.remove(i).and_then(|e| e.req)
        });
        if let (Some(conn), Some(req)) = (conn, &request) {
            if !req.v1 {
                self.entered(conn, sid, &event.room, req);
            }
        }
        let fanout_max = self.config.presence_fanout_max;
        let room = self.rooms.get_mut(&*event.room).expect("checked by apply");
        room.seq = event.seq;
        if cluster {
            if let EventBody::Presence { nick, .. } = &event.body {
                if room.roster.insert(sid, (nick.clone(), event.seq)).is_none() {
                    room.roster_keys.insert(crate::nick::nick_key(nick), sid);
                }
            }
        }
        // In as this enter asked, even if it parted since: its leaving
        // presence comes next and takes it out again, so it sees both.
        // Asked by a connection the session has left since, it is not in
        // the room here.
        let asked_here = conn.filter(|_| request.is_some());
        if let Some(conn) = asked_here {
            // In by a connection it has left since (closed for a takeover,
            // whose leaving the log dropped: see `handle_log_refused`):
            // the room has the session as its connection now.
            if room.conn_of(sid).is_some_and(|old| old != conn) {
                room.remove(sid);
            }
            room.add(conn, sid);
        }
        if room.members.len() > fanout_max {
            // Past the cap only the one entering is told, and only on the
            // connection that asked: another is not in the room.
            if let Some(conn) = asked_here {
                self.pending.push_back(Audience::One(conn, false));
            }
        } else {
            self.pending.push_back(Audience::Room);
        }
    }

    fn apply_leave(&mut self, event: &Arc<Event>, sid: SessionId, entered: Option<u64>) {
        let fanout_max = self.config.presence_fanout_max;
        let room = self.rooms.get_mut(&*event.room).expect("checked by apply");
        room.seq = event.seq;
        // Another session in the room has the nickname now: told by
        // nickname, this leaving would say that one left.
        let mut renamed = false;
        if self.config.cluster {
            // Several servers may say that one session left (its own and,
            // if it seemed to die, the others): the first one counts. A
            // later copy the log stored past its duplicate window, said
            // for an entering older than the session's latest, counts no
            // more than one stored at once would.
            let Some((_, at)) = room.roster.get(&sid) else {
                return;
            };
            if entered.is_some_and(|entered| entered < *at) {
                return;
            }
            let Some((nick, _)) = room.roster.remove(&sid) else {
                return;
            };
            let key = crate::nick::nick_key(&nick);
            match room.roster_keys.get(&key) {
                Some(&holder) if holder == sid => {
                    room.roster_keys.remove(&key);
                }
                // A dead node's session whose nickname its survivors freed
                // before its leaving was stored, taken since by a new one.
                Some(_) => renamed = true,
                None => {}
            }
        }
        let was = room.remove(sid);
        let big = room.members.len() >= fanout_max;
        if renamed {
            // Delivered to no one, still an output: a shell that logs each
            // event it delivers logs this one, in its place.
            self.pending.push_back(Audience::List(Vec::new()));
        } else if !big {
            self.pending.push_back(Audience::Room);
        }
        // Whoever parted (and is still connected) sees its own part.
        let still = self.sessions.get(&sid).and_then(|s| s.conn);
        if let (Some(conn), Some(old)) = (still, was) {
            if conn == old {
                self.pending.push_back(Audience::One(conn, false));
            }
        }
        // A durable room's history is in the store even when none is in
        // memory: it stays (the cap of rooms still forgets the least used).
        // A room in a shared log is never forgotten: the log goes on.
        let keep = self.config.durable || self.config.cluster;
        if !keep && self.rooms.get(&*event.room).is_some_and(|r| r.is_idle()) {
            self.rooms.remove(&*event.room);
        }
        // A room's history stays when its members leave (later members may
        // read it); it goes only with the room.
    }

    fn apply_msg(&mut self, event: &Arc<Event>) {
        // Noted in the order of use there, before the history is shed.
        self.keep_and_deliver(event);
        // Over the budget for all rooms: the room least recently written
        // to gives back its oldest messages first, so rooms people left
        // behind go before the history of the rooms they talk in.
        self.shed_history();
    }

    fn keep_and_deliver(&mut self, event: &Arc<Event>) {
        let (cap, per_room) = (
            self.config.history_per_room,
            self.config.history_bytes_per_room,
        );
        let rooms = self.rooms.len();
        let room = self.rooms.get_mut(&*event.room).expect("checked by apply");
        room.seq = event.seq;
        let added = crate::server::room::event_bytes(event);
        let freed = room.remember(Arc::clone(event), cap, per_room);
        self.history_bytes = self.history_bytes + added - freed;
        if self.order.used(room, rooms) {
            self.order.sweep(&self.rooms);
        }
        let EventBody::Msg { from, to, id, .. } = &event.body else {
            return;
        };
        if self.config.cluster {
            // The seq its id stands for is known only now.
            if let (Some(id), Some(s)) = (id, self.sessions.get_mut(from)) {
                if s.ids.get(id).is_some() {
                    let cap = self.config.id_window;
                    s.ids.insert(id, &event.room, event.seq, cap);
                }
            }
        }
        let room = self.rooms.get(&*event.room).expect("checked by apply");
        let sender = self.sessions.get(from).and_then(|s| s.conn);
        // A room member has its welcome; a sender of a private message
        // may be a resume's new connection that has not had it yet.
        let sender = sender.filter(|&c| {
            if to.is_empty() {
                room.has(c)
            } else {
                self.conns.get(&c).is_some_and(|k| k.welcomed)
            }
        });
        if to.is_empty() {
            match (id, sender) {
                (Some(_), Some(me)) => {
                    let mut others = std::mem::take(&mut self.spare);
                    others.extend(room.members.iter().copied().filter(|&c| c != me));
                    self.pending.push_back(Audience::List(others));
                    self.pending.push_back(Audience::One(me, true));
                }
                _ => self.pending.push_back(Audience::Room),
            }
            return;
        }
        let mut list = std::mem::take(&mut self.spare);
        // Recipients in the room now: a resume's new connection is not
        // before its `welcome` and `entered` (its replay brings it).
        list.extend(
            to.iter()
                .filter_map(|r| self.sessions.get(&r.session).and_then(|s| s.conn))
                .filter(|&c| Some(c) != sender && room.has(c)),
        );
        match (id, sender) {
            (Some(_), Some(me)) => {
                self.pending.push_back(Audience::List(list));
                self.pending.push_back(Audience::One(me, true));
            }
            (None, Some(me)) => {
                list.push(me);
                self.pending.push_back(Audience::List(list));
            }
            (_, None) => self.pending.push_back(Audience::List(list)),
        }
    }

    /// Forget the oldest messages of the least recently used rooms until
    /// all history fits its budget (or only the newest message is left).
    fn shed_history(&mut self) {
        while self.history_bytes > self.config.history_bytes_total {
            let noted = self.order.oldest_with_history(&self.rooms);
            debug_assert_eq!(
                self.touched_of(noted.as_deref()),
                self.touched_of(self.oldest_with_history_scan()),
                "the order of use kept for the history budget"
            );
            let Some(room) = noted.and_then(|n| self.rooms.get_mut(&*n)) else {
                return;
            };
            let freed = room.forget_oldest();
            if freed == 0 {
                return;
            }
            self.order.cut(room);
            self.history_bytes -= freed;
        }
    }

    /// When `room` was last used, if there is such a room (to check the
    /// order of use against a look at every room).
    pub(crate) fn touched_of(&self, room: Option<&str>) -> Option<u64> {
        room.and_then(|n| self.rooms.get(n)).map(|r| r.touched)
    }

    /// The room [`Server::shed_history`] takes from, by looking at every
    /// room (what [`lru::Order`](crate::server::lru) answers sooner).
    fn oldest_with_history_scan(&self) -> Option<&str> {
        let lru = self.rooms.iter().filter(|(_, r)| !r.history.is_empty());
        lru.min_by_key(|(_, r)| (r.history.len() == 1, r.touched))
            .map(|(n, _)| n.as_str())
    }

    /// Who is in `room`, and `sid` (about to be) last: the `online` list of
    /// a `welcome` or an `entered`.
    fn roster_with(&self, room: &crate::server::room::Room, sid: SessionId) -> Vec<String> {
        if self.config.cluster {
            let mut online: Vec<String> = room
                .roster
                .iter()
                .filter(|(&s, _)| s != sid)
                .map(|(_, (n, _))| n.to_string())
                .collect();
            online.sort_unstable();
            if let Some(me) = self.sessions.get(&sid) {
                online.push(me.nick.to_string());
            }
            return online;
        }
        let mut online: Vec<String> = room
            .sessions
            .iter()
            .filter(|&&s| s != sid)
            .filter_map(|s| self.sessions.get(s).map(|s| s.nick.to_string()))
            .collect();
        if let Some(me) = self.sessions.get(&sid) {
            online.push(me.nick.to_string());
        }
        online
    }

    /// The `entered` answer for `conn`, its continuation and its replay,
    /// queued to go before the entering presence.
    fn entered(&mut self, conn: ClientId, sid: SessionId, name: &str, req: &EnterRequest) {
        let Some(room) = self.rooms.get(name) else {
            return;
        };
        let online = self.roster_with(room, sid);
        let durable = self.config.durable;
        // Where a client can page back to: the store, when there is one.
        let oldest = if durable {
            room.stored_from.min(room.history_start)
        } else {
            room.history_start
        };
        // A `since` past the room's seq (same epoch) was seen before a
        // restart that lost it (the store failed, and the server stopped
        // before it recovered): what the client missed is unknown, so it
        // is answered as a client that never saw the room. (A cluster's
        // node may be behind its log: there, the log has it.)
        let since = req
            .since
            .as_ref()
            .filter(|(since, _)| *since <= room.seq || self.config.cluster);
        let scan = self.config.history_scan;
        // Without a `since` of this epoch: the latest messages.
        let latest = latest_shown(&self.config);
        let fresh = match since {
            Some((_, epoch)) if *epoch == room.epoch => None,
            _ => Some(latest_in_memory(room, sid, &self.config)),
        };
        // Memory not reaching back far enough: the store has the rest.
        let stored_more = durable && room.history_start > room.stored_from;
        // (A cluster's node replays from memory what an entering without
        // `since` shows, as it always did.)
        let cluster = self.config.cluster;
        // A replay reaching back past memory is read from the store, and
        // so are the latest messages when memory holds fewer (a room
        // loaded back from the store holds none).
        let from_store = match (since, &fresh) {
            (Some((since, _)), None) if stored_more => {
                let after = since.saturating_add(1);
                let whole = after >= room.stored_from;
                (after < room.history_start).then_some((
                    *since,
                    whole,
                    self.config.replay_limit,
                    false,
                ))
            }
            (_, Some(seen))
                if stored_more && !cluster && !seen.more && seen.page.len() < latest =>
            {
                Some((0, false, latest, true))
            }
            _ => None,
        };
        let (mut replay, mut recovered) = match (since, fresh) {
            _ if from_store.is_some() => (Vec::new(), false),
            (_, Some(seen)) => (seen.page, false),
            (Some((since, _)), None) => {
                let seen = room.visible(sid, *since, u64::MAX, self.config.replay_limit, scan);
                let whole = !seen.more && since.saturating_add(1) >= room.history_start;
                (seen.page, whole)
            }
            (None, None) => (Vec::new(), false),
        };
        // Not one that no frame can carry (stored under a larger frame
        // limit than this server's now): the replay has a gap there.
        if drop_oversized(&mut replay, self.config.max_frame_bytes) {
            recovered = false;
        }
        // The newest that fit the replay's bytes; the rest are for `history`.
        if keep_newest(&mut replay, self.config.replay_bytes) {
            recovered = false;
        }
        let mut chunks = chunk(online, self.config.max_frame_bytes).into_iter();
        let mut steps = vec![Step::Send(
            conn,
            ServerFrame::Entered {
                room: name.to_owned(),
                epoch: room.epoch.clone(),
                seq: room.seq,
                oldest,
                online: chunks.next().unwrap_or_default(),
                recovered,
            },
        )];
        for nicks in chunks {
            steps.push(Step::Send(
                conn,
                ServerFrame::Online {
                    room: Some(name.to_owned()),
                    nicks,
                },
            ));
        }
        if let Some((since, whole, limit, fresh)) = from_store {
            // Never below where history starts (the store may keep a
            // message stamped in the future below it).
            let query = crate::server::reads::ReadQuery {
                room: Arc::clone(&room.name),
                session: sid,
                after: since.max(room.stored_from.saturating_sub(1)),
                before: room.seq + 1,
                limit,
                scan: scan as u64,
            };
            let frames = steps
                .into_iter()
                .filter_map(|s| match s {
                    Step::Send(_, f) => Some(f),
                    _ => None,
                })
                .collect();
            let pending = crate::server::reads::Pending::Enter {
                epoch: room.epoch.clone(),
                frames,
                whole,
                since,
                fresh,
            };
            self.front.push_back(Step::Read(conn, query, pending));
            return;
        }
        for e in replay {
            steps.push(Step::Send(conn, replay_frame(e, sid)));
        }
        self.front.extend(steps);
    }

    /// The `welcome` of a join (and its continuation frames); `None` if the
    /// connection is gone.
    fn welcome(&self, client: ClientId, lobby: bool, resumed: bool) -> Option<Vec<ServerFrame>> {
        let sid = self.conns.get(&client)?.session?;
        let me = self.sessions.get(&sid)?;
        // `lobby`: the join listed and entered it (decided at the join).
        let (seq, online) = match self.rooms.get(LOBBY).filter(|_| lobby) {
            Some(room) => (room.seq, self.roster_with(room, sid)),
            None => (0, Vec::new()),
        };
        let mut chunks = chunk(online, self.config.max_frame_bytes).into_iter();
        let mut frames = vec![ServerFrame::Welcome {
            nick: me.nick.to_string(),
            seq,
            online: chunks.next().unwrap_or_default(),
            session: Some(me.token.clone()),
            resumed: Some(resumed),
            limits: Some(self.config.limits()),
        }];
        frames.extend(chunks.map(|nicks| ServerFrame::Online { room: None, nicks }));
        Some(frames)
    }

    /// The store's question for a `history` page that memory cannot fill,
    /// if the store may hold what memory does not.
    fn beyond_memory(
        &self,
        sid: SessionId,
        name: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Option<crate::server::reads::ReadQuery> {
        let room = self.rooms.get(name)?;
        // Nothing past what is applied here: a store that reads beside its
        // writes may already hold events still on their way to this client
        // (they come live, after the page).
        let before = before.unwrap_or(u64::MAX).min(room.seq + 1);
        if !self.config.durable
            || room.history_start <= room.stored_from
            || before <= room.stored_from
        {
            return None;
        }
        let seen = room.visible(sid, 0, before, limit, self.config.history_scan);
        if seen.more || seen.page.len() == limit {
            return None;
        }
        // Never below where history starts (the store may keep a message
        // stamped in the future below it).
        Some(crate::server::reads::ReadQuery {
            room: Arc::clone(&room.name),
            session: sid,
            after: room.stored_from.saturating_sub(1),
            before,
            limit,
            scan: self.config.history_scan as u64,
        })
    }

    pub(crate) fn history_page(
        &self,
        sid: SessionId,
        name: &str,
        before: Option<u64>,
        limit: usize,
    ) -> ServerFrame {
        let scan = self.config.history_scan;
        let seen = match self.rooms.get(name) {
            // Messages older than the history holds were forgotten: they
            // are not "more" (paging would never end); `entered.oldest`
            // tells the client where the kept history starts. Nothing
            // above what is applied is asked for, so a page that looked at
            // nothing goes on from there.
            Some(room) => {
                let before = before.unwrap_or(u64::MAX).min(room.seq + 1);
                let mut seen = room.visible(sid, 0, before, limit, scan);
                // Memory was read to its start: the store may hold older.
                if self.config.durable
                    && room.stored_from < room.history_start
                    && room.stored_from < seen.from
                {
                    seen.more = true;
                }
                seen
            }
            None => return self.history_frame(sid, name, Vec::new(), false, 0),
        };
        self.history_frame(sid, name, seen.page, seen.more, seen.from)
    }

    /// A `history` frame for `sid`: the newest messages of `page` that fit
    /// one frame; `more` also when some did not fit. Everything `sid` may
    /// see from seq `from` up is in `page`: with `more`, the next page
    /// starts there, or at the oldest message that fit.
    pub(crate) fn history_frame(
        &self,
        sid: SessionId,
        name: &str,
        mut page: Vec<&Arc<Event>>,
        more: bool,
        from: u64,
    ) -> ServerFrame {
        // A message no history frame can carry (stored under a larger frame
        // limit than this server's now) is left out, not stopped at: the
        // page goes on past it, and so does paging.
        drop_oversized(&mut page, self.config.max_frame_bytes - FRAME_OVERHEAD);
        let newest = page.last().map(|e| e.seq);
        let trimmed = keep_newest(&mut page, self.config.max_frame_bytes - FRAME_OVERHEAD);
        let before = match (trimmed, page.first(), newest) {
            (false, ..) => from,
            (true, Some(oldest), _) => oldest.seq,
            // Not even the newest fit (it cannot, once stamped, but a page
            // must never ask for itself again): step over it.
            (true, None, Some(seq)) => seq,
            (true, None, None) => from,
        };
        let events = page.into_iter().map(|e| replay_frame(e, sid)).collect();
        ServerFrame::history_from(name, events, more || trimmed, before)
    }

    fn room_list(&self) -> ServerFrame {
        let mut rooms: Vec<(&str, usize)> = self
            .rooms
            .iter()
            .map(|(n, r)| (n.as_str(), r.members.len().max(r.roster.len())))
            .filter(|&(_, m)| m > 0)
            .collect();
        // A name is at most 32 bytes; with its count and punctuation an
        // entry is under 64.
        let fit = (self.config.max_frame_bytes - FRAME_OVERHEAD) / 64;
        if rooms.len() > fit {
            // Only the first `fit` names are sorted, not every room's:
            // asked often, the answer costs little more than a look at
            // each room.
            rooms.select_nth_unstable(fit);
            rooms.truncate(fit);
        }
        rooms.sort_unstable();
        ServerFrame::Rooms {
            rooms: rooms
                .into_iter()
                .map(|(n, m)| RoomInfo::new(n, m as u64))
                .collect(),
        }
    }
}

/// Cluster mode: whether `logged`, handed back by the log, is `proposed`
/// (its room, stamp and body are; the log gave it only a seq).
fn same_proposal(proposed: &Event, logged: &Event) -> bool {
    proposed.room == logged.room && proposed.ts == logged.ts && proposed.body == logged.body
}

/// A kept message as `sid` gets it again (a replay or a history page):
/// with its id if `sid` sent it.
pub(crate) fn replay_frame(e: &Event, sid: SessionId) -> ServerFrame {
    let mine = matches!(&e.body, EventBody::Msg { from, .. } if *from == sid);
    e.to_frame(mine, true)
}

/// Keep the newest messages of `page` (oldest first) whose copies on the
/// wire, with a separator between two, take at most `budget` bytes;
/// whether any had to go. The newest alone is charged no separator, so
/// that the largest message the server takes (its copy exactly `budget`
/// long) always fits a page.
pub(crate) fn keep_newest(page: &mut Vec<&Arc<Event>>, budget: usize) -> bool {
    let mut used = 0;
    let mut keep = 0;
    for e in page.iter().rev() {
        used += crate::server::decide::wire_len(e) + usize::from(keep > 0);
        if used > budget {
            break;
        }
        keep += 1;
    }
    let cut = keep < page.len();
    page.drain(..page.len() - keep);
    cut
}

/// Take out of `page` every event whose frame (a replayed `msg`) is over
/// `max` bytes on its own; whether there was one.
pub(crate) fn drop_oversized<E: AsRef<Event>>(page: &mut Vec<E>, max: usize) -> bool {
    let before = page.len();
    use crate::server::decide::{wire_bound, wire_len};
    // The bound first: only a message near the limit is written out to
    // count it (replays and pages count every event again to fit them).
    page.retain(|e| wire_bound(e.as_ref()) <= max || wire_len(e.as_ref()) <= max);
    page.len() < before
}

/// Split a list of nicks into lists that each fit a frame.
fn chunk(nicks: Vec<String>, max_frame_bytes: usize) -> Vec<Vec<String>> {
    // Nicks never need escaping in JSON: quotes and a comma are the cost.
    let budget = max_frame_bytes - FRAME_OVERHEAD;
    let mut chunks: Vec<Vec<String>> = vec![Vec::new()];
    let mut used = 0;
    for n in nicks {
        if used + n.len() + 3 > budget {
            chunks.push(Vec::new());
            used = 0;
        }
        used += n.len() + 3;
        chunks.last_mut().expect("never empty").push(n);
    }
    chunks
}
