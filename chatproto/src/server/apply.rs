//! Applying: where a stamped event changes its room (its history, and its
//! members as the event tells them), one event at a time, as the shell
//! drains [`Server::poll`]. What changes a room besides is listed in
//! [`event`](super::event)'s docs.

use std::sync::Arc;

use crate::frame::{PresenceStatus, ServerFrame};
use crate::server::event::{Event, EventBody, SessionId};
use crate::server::output::Output;
use crate::server::{Audience, ClientId, Server, Step};

/// The most records a new batch has room for before its first push: more
/// than one turn of a busy server hands the store.
const RECORDS_ROOM: usize = 4096;

impl Server {
    /// The next thing to do, or `None` when there is nothing to do now:
    /// nothing is left, or (a durable server) what is left waits behind a
    /// store batch not answered yet ([`Output::Persist`]; counted by
    /// [`outputs_waiting`](Server::outputs_waiting)); a `ping` for a
    /// connection whose answers are held
    /// ([`held_ping_ms`](crate::ServerConfig::held_ping_ms)) comes first,
    /// waiting for nothing. Call after each `handle_*` (or after
    /// several), until `None`.
    #[must_use = "outputs not acted on are frames lost or connections left open"]
    pub fn poll(&mut self) -> Option<Output<'_>> {
        // A loop, not a call again, for each step that comes to nothing (a
        // queued answer to a connection gone): there may be thousands.
        loop {
            // A `ping` answers no frame: it waits for nothing.
            while let Some(to) = self.keepalives.pop_front() {
                if self.conns.contains_key(&to) {
                    let frame = ServerFrame::Ping;
                    return Some(Output::Send { to, frame });
                }
            }
            if !self.proposed.is_empty() {
                return Some(Output::Propose {
                    events: std::mem::take(&mut self.proposed),
                });
            }
            if !self.gate.records.is_empty() {
                // Records after these get a barrier of their own.
                self.gate.open = false;
                // The next batch starts with room for as many as this one
                // (up to a bound): grown from nothing, every batch moved
                // its records about ten times, each larger move a request
                // glibc serves the slow way.
                let room = self.gate.records.len().min(RECORDS_ROOM);
                return Some(Output::Persist {
                    records: std::mem::replace(&mut self.gate.records, Vec::with_capacity(room)),
                    through: self.gate.issued,
                });
            }
            while self.front.is_empty() && self.pending.is_empty() {
                match self.steps.pop_front()? {
                    Step::Apply(event) => self.apply(event),
                    Step::Roster(room, roster) => self.apply_roster(&room, roster),
                    Step::Skipped(room, seq) => {
                        if let Some(r) = self.rooms.get_mut(&*room) {
                            r.seq = r.seq.max(seq);
                        }
                    }
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
            Step::Close(client, code) => {
                self.closed(client);
                Some(Output::Close { client, code })
            }
            // Closed meanwhile (a timeout, a kick): its `Close` says to
            // close it (it follows, or went already).
            Step::Forgotten(room) => Some(Output::Forgotten { room }),
            Step::End(client) => self
                .conns
                .contains_key(&client)
                .then_some(Output::Finish { client }),
            Step::Welcome {
                client,
                lobby,
                resumed,
                closed_for,
            } => {
                let frames = self.welcome(client, lobby, resumed, closed_for)?;
                if let Some(c) = self.conns.get_mut(&client) {
                    c.welcomed = true;
                } else if let Some(k) = self.closing.get_mut(&client) {
                    k.welcomed = true;
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
                let sid = self.answered_session(client)?;
                if let Some(query) = self.beyond_memory(sid, &room, before, limit) {
                    let (after, before) = (query.after, query.before);
                    let epoch = self.rooms.get(&room).map(|r| r.epoch.clone())?;
                    let pending = crate::server::reads::Pending::History {
                        room,
                        after,
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
                self.answered_session(client)?;
                Some(Output::Send {
                    to: client,
                    frame: self.room_list(),
                })
            }
            Step::Apply(_) | Step::Barrier(_) | Step::Roster(..) | Step::Skipped(..) => None,
        }
    }

    /// Apply one stamped event: change the room, and queue what must be
    /// sent because of it (the `entered` of whoever entered, then the
    /// event's deliveries).
    // Out of line, as it was while `poll` called itself: inlined into the
    // loop it costs more (callgrind, BENCHMARKS.md).
    #[inline(never)]
    fn apply(&mut self, event: Arc<Event>) {
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
                let stale = self.apply_leave(&event, *session);
                self.note_used(&event.room);
                if stale {
                    self.enter_again(&event, *session);
                }
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
        self.on_the_way = self.on_the_way.saturating_sub(1);
        if let (Some(frame), Some(conn)) = (answer, s.conn) {
            // Its place: after the answers to the frames before its own
            // (waiting when it was proposed, or put in since for earlier
            // events), before those to the frames after it (put in first
            // for a later event, they were counted in before it).
            let at = s.deferred.partition_point(|(place, _)| *place < w.place);
            s.deferred.insert(at, (w.place, Step::Send(conn, frame)));
            self.deferred += 1;
        }
        let sid = event.session();
        self.release_deferred(sid, applied);
        true
    }

    /// Cluster mode: the first copy of a message that session `sid`
    /// resent with `id` while that copy was on its way through the log
    /// came back (`applied`) or was refused: each resend that waited for
    /// it is answered `answer` at its frame's place, but the first when
    /// `echoed` (the copy's echo to that connection answers it). Then, if
    /// nothing else holds them, the answers that waited go.
    pub(crate) fn resends_answered(
        &mut self,
        sid: SessionId,
        id: &str,
        answer: &ServerFrame,
        echoed: bool,
        applied: bool,
    ) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let (mut skip, mut found) = (echoed, false);
        let mut i = 0;
        while i < s.resent.len() {
            if s.resent[i].0 != id {
                i += 1;
                continue;
            }
            let Some((_, place)) = s.resent.remove(i) else {
                break;
            };
            found = true;
            if std::mem::take(&mut skip) {
                continue;
            }
            if let Some(conn) = s.conn {
                let at = s.deferred.partition_point(|(p, _)| *p < place);
                s.deferred
                    .insert(at, (place, Step::Send(conn, answer.clone())));
                self.deferred += 1;
            }
        }
        if found {
            self.release_deferred(sid, applied);
        }
    }

    /// Cluster mode: once none of session `sid`'s events is on its way
    /// and no resend waits, the answers that waited go: right after the
    /// deliveries of the event being applied if `applied`, else after what
    /// is queued already (a `welcome` held until the session is stored
    /// among it).
    fn release_deferred(&mut self, sid: SessionId, applied: bool) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if !s.in_flight.is_empty() || !s.resent.is_empty() {
            return;
        }
        // Its answers go: a frame held later starts a new wait, unless
        // the store still holds some of them.
        let stored = self.gate.stored;
        if let Some(c) = s.conn.and_then(|c| self.conns.get_mut(&c)) {
            if c.held.is_some_and(|h| h.ticket <= stored) {
                c.held = None;
            }
        }
        if s.deferred.is_empty() {
            return;
        }
        let deferred = std::mem::take(&mut s.deferred);
        self.deferred = self.deferred.saturating_sub(deferred.len());
        let deferred = deferred.into_iter().map(|(_, step)| step);
        if applied {
            for step in deferred.rev() {
                self.steps.push_front(step);
            }
        } else {
            self.steps.extend(deferred);
        }
    }

    fn apply_enter(&mut self, event: &Arc<Event>, sid: SessionId) {
        let mut conn = self.sessions.get(&sid).and_then(|s| s.conn);
        let cluster = self.config.cluster;
        let closing = &self.closing;
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
            let e = s.entering.remove(i)?;
            if cluster {
                // Its leavings of the room proposed before it, still on
                // their way, are stale: the session is in by this one.
                let earlier = s.leaving.iter_mut();
                for l in earlier.filter(|l| *l.room == *event.room && l.n < e.after_leavings) {
                    l.stale = true;
                }
            }
            match (e.req, e.closed) {
                (Some(req), _) => Some(req),
                // Asked by a connection the core is closing: answered
                // there, before its `Close`.
                (None, Some((closed, req))) if closing.contains_key(&closed) => {
                    conn = Some(closed);
                    Some(req)
                }
                _ => None,
            }
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
                match room.roster.insert(sid, nick.clone()) {
                    None => {
                        room.roster_keys.insert(crate::nick::nick_key(nick), sid);
                    }
                    // Listed already, under another nickname (a log that
                    // says it entered twice, under two): the new one finds
                    // it, and the old one no longer does, or its key would
                    // outlive the session's leaving (which takes out the
                    // key of the nickname listed then).
                    Some(old) if old != *nick => {
                        let (old, new) = (crate::nick::nick_key(&old), crate::nick::nick_key(nick));
                        if old != new {
                            if room.roster_keys.get(&old) == Some(&sid) {
                                room.roster_keys.remove(&old);
                            }
                            room.roster_keys.insert(new, sid);
                        }
                    }
                    Some(_) => {}
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
            if let Some(old) = room.conn_of(sid).filter(|&old| old != conn) {
                room.remove(sid);
                left_fanout(&mut self.fanout_of, old, &room.name);
            }
            if room.add(conn, sid) {
                self.fanout_of
                    .entry(conn)
                    .or_default()
                    .push(Arc::clone(&room.name));
            }
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

    /// Apply a leaving; whether it was this server's, made stale by an
    /// entering of the room proposed after it and applied first.
    fn apply_leave(&mut self, event: &Arc<Event>, sid: SessionId) -> bool {
        let fanout_max = self.config.presence_fanout_max;
        let cluster = self.config.cluster;
        // In a cluster, the connection this leaving was proposed for, if
        // it was proposed here and no later entering of the room was
        // applied before it.
        let mut stale = false;
        let proposed_for = if cluster {
            self.sessions.get_mut(&sid).and_then(|s| {
                let i = s
                    .leaving
                    .iter()
                    .position(|l| *l.room == *event.room && l.ts == event.ts)?;
                let l = s.leaving.remove(i)?;
                stale = l.stale;
                (!l.stale).then_some(l.conn)
            })
        } else {
            None
        };
        // In a cluster, the session's connection here if the session is
        // not in the room (it parted last): any leaving of the session's
        // the log brings takes it out, whichever it was proposed for. (Its
        // own part's note may have gone with another server's leaving of
        // the same stamp, applied before its entering was.)
        let parted = if cluster {
            let s = self.sessions.get(&sid);
            s.filter(|s| !s.rooms.contains_key(&*event.room))
                .and_then(|s| s.conn)
        } else {
            None
        };
        let room = self.rooms.get_mut(&*event.room).expect("checked by apply");
        room.seq = event.seq;
        // Who is in the fan-out. Alone, events are applied in the order
        // they were decided: the session's connection in the room is the
        // one its leaving was for. In a cluster the log may bring the
        // leaving after the session's next entering (a new connection's,
        // after a resume here or on another server, or the same one's
        // after a part): it takes out only the connection it was proposed
        // for, if that is still the one in the room (a closed connection
        // is out already) and no entering proposed after it was applied
        // first (the session is in by that one), and one said by
        // another server takes out none of this server's connections
        // (said for a connection there; if of one here, that server took
        // this one for dead, and a shell closes it: see `connection_of`),
        // unless its session parted the room since.
        let was = match proposed_for {
            Some(conn) if room.conn_of(sid) == Some(conn) => room.remove(sid),
            _ if cluster && parted.is_some() && room.conn_of(sid) == parted => room.remove(sid),
            _ if cluster => None,
            _ => room.remove(sid),
        };
        if let Some(old) = was {
            left_fanout(&mut self.fanout_of, old, &room.name);
        }
        // Another session in the room has the nickname now: told by
        // nickname, this leaving would say that one left.
        let mut renamed = false;
        if cluster {
            // Several servers may say that one session left (its own and,
            // if it seemed to die, the others): the first one counts.
            let Some(nick) = room.roster.remove(&sid) else {
                // Said already (the others were told then): only the
                // connection that parted, if it was still in, is told its
                // own part.
                let still = self.sessions.get(&sid).and_then(|s| s.conn);
                if let Some(old) = was.filter(|&old| still == Some(old)) {
                    self.pending.push_back(Audience::One(old, false));
                }
                return stale;
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
        let big = room.members.len() >= fanout_max;
        if renamed {
            // Delivered to no one, still an output: a shell that logs each
            // event it delivers logs this one, in its place.
            self.pending.push_back(Audience::List(Vec::new()));
        } else if !big {
            self.pending.push_back(Audience::Room);
        }
        // Whoever parted (and is still connected, or not closed yet by
        // the core) sees its own part.
        let still = self.sessions.get(&sid).and_then(|s| s.conn);
        if let Some(old) = was {
            if still == Some(old) || self.closing.contains_key(&old) {
                self.pending.push_back(Audience::One(old, false));
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
        stale
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
            let epoch = self.rooms.get(&*event.room).map_or("", |r| &r.epoch);
            if let (Some(id), Some(s)) = (id, self.sessions.get_mut(from)) {
                if s.ids.get(id).is_some() {
                    let cap = self.config.id_window;
                    s.ids.insert(id, &event.room, epoch, event.seq, cap);
                }
                // Resends of it waited for this: the echo below answers
                // the first on a connection in the room (unless the copy
                // is that connection's own, whose frame the echo
                // answers); the others are told `duplicate`, with the seq
                // known now, each at its frame's place.
                if s.resent.iter().any(|(r, _)| r == id) {
                    let own = s.in_flight.iter().any(|w| same_proposal(&w.event, event));
                    let echoed = !own && s.rooms.contains_key(&*event.room);
                    let frame = self.duplicate(id, &event.room, event.seq);
                    self.resends_answered(*from, id, &frame, echoed, true);
                }
            }
        }
        let room = self.rooms.get(&*event.room).expect("checked by apply");
        // A room member has its welcome; a sender of a private message
        // may be a resume's new connection that has not had it yet. One
        // the core is closing (not yet sent its `Close`) may have sent it.
        // (Its session may be forgotten meanwhile: that connection is the
        // one the session is in the room as.)
        let live = self.sessions.get(from).and_then(|s| s.conn);
        let closing = if self.closing.is_empty() {
            None
        } else {
            room.conn_of(*from).filter(|c| self.closing.contains_key(c))
        };
        let sender = [live, closing].into_iter().flatten().find(|&c| {
            if to.is_empty() {
                room.has(c)
            } else {
                self.welcomed(c)
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
        // (A session's connection in the room is its own, or the one the
        // core is closing, whose session may be forgotten meanwhile; never
        // one whose `Close` went out.)
        list.extend(to.iter().filter_map(|r| {
            room.conn_of(r.session).filter(|&c| {
                Some(c) != sender && (self.conns.contains_key(&c) || self.closing.contains_key(&c))
            })
        }));
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
}

/// `conn` is out of `room`'s fan-out: no longer listed among its rooms.
fn left_fanout(
    fanout_of: &mut crate::server::ids::IdMap<ClientId, Vec<Arc<str>>>,
    conn: ClientId,
    room: &str,
) {
    let Some(rooms) = fanout_of.get_mut(&conn) else {
        return;
    };
    if let Some(i) = rooms.iter().position(|r| **r == *room) {
        rooms.swap_remove(i);
    }
    if rooms.is_empty() {
        fanout_of.remove(&conn);
    }
}

/// Cluster mode: whether `logged`, handed back by the log, is `proposed`
/// (its room, stamp and body are; the log gave it only a seq).
fn same_proposal(proposed: &Event, logged: &Event) -> bool {
    proposed.room == logged.room && proposed.ts == logged.ts && proposed.body == logged.body
}
