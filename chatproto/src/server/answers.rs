//! What the core answers a session with, built from the state applying
//! keeps: a `welcome`, an `entered` with its roster and replay, a
//! `history` page from memory (or a read of the store, see
//! [`reads`](super::reads)), the room list; and the budget rules their
//! frames keep to.

use std::sync::Arc;

use crate::frame::{ErrorCode, RoomInfo, ServerFrame};
use crate::server::config::LOBBY;
use crate::server::event::{Event, EventBody, SessionId};
use crate::server::session::EnterRequest;
use crate::server::{ClientId, Server, Step};

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
    /// Who is in `room`, and `sid` (about to be) last: the `online` list of
    /// a `welcome` or an `entered`.
    fn roster_with(&self, room: &crate::server::room::Room, sid: SessionId) -> Vec<String> {
        if self.config.cluster {
            let mut online: Vec<String> = room
                .roster
                .iter()
                .filter(|(&s, _)| s != sid)
                .map(|(_, n)| n.to_string())
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

    /// Where `room`'s kept history starts, the `oldest` of `entered` and
    /// of a last `history` page: where a client can page back to (the
    /// store, when there is one).
    fn kept_from(&self, room: &crate::server::room::Room) -> u64 {
        if self.config.durable {
            room.stored_from.min(room.history_start)
        } else {
            room.history_start
        }
    }

    /// The `entered` answer for `conn`, its continuation and its replay,
    /// queued to go before the entering presence.
    pub(super) fn entered(
        &mut self,
        conn: ClientId,
        sid: SessionId,
        name: &str,
        req: &EnterRequest,
    ) {
        let Some(room) = self.rooms.get(name) else {
            return;
        };
        let online = self.roster_with(room, sid);
        let durable = self.config.durable;
        let oldest = self.kept_from(room);
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
                after: query.after,
                before: query.before,
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
    /// connection is gone (the shell said so; one the core closes still
    /// gets it, before its `Close`). `closed_for`: on a resume, the fatal
    /// error the session's last connection was closed with.
    pub(super) fn welcome(
        &self,
        client: ClientId,
        lobby: bool,
        resumed: bool,
        closed_for: Option<ErrorCode>,
    ) -> Option<Vec<ServerFrame>> {
        let (sid, nick, token) = match self.conns.get(&client) {
            Some(c) => {
                let sid = c.session?;
                let me = self.sessions.get(&sid)?;
                (sid, &me.nick, &me.token)
            }
            None => {
                let k = self.closing.get(&client)?;
                (k.session, &k.nick, &k.token)
            }
        };
        // `lobby`: the join listed and entered it (decided at the join).
        let (seq, online) = match self.rooms.get(LOBBY).filter(|_| lobby) {
            Some(room) => {
                let mut online = self.roster_with(room, sid);
                // A connection the core closed says itself as it joined
                // (its session may be forgotten, or resumed since under
                // another spelling).
                if !self.conns.contains_key(&client) {
                    if self.sessions.contains_key(&sid) {
                        online.pop();
                    }
                    online.push(nick.to_string());
                }
                (room.seq, online)
            }
            None => (0, Vec::new()),
        };
        let mut chunks = chunk(online, self.config.max_frame_bytes).into_iter();
        let mut frames = vec![ServerFrame::Welcome {
            nick: nick.to_string(),
            seq,
            online: chunks.next().unwrap_or_default(),
            session: Some(token.clone()),
            resumed: Some(resumed),
            limits: Some(self.config.limits()),
            closed_for,
        }];
        frames.extend(chunks.map(|nicks| ServerFrame::Online { room: None, nicks }));
        Some(frames)
    }

    /// The store's question for a `history` page that memory cannot fill,
    /// if the store may hold what memory does not.
    pub(super) fn beyond_memory(
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
        // The last page says where the kept history starts, so that a
        // client tells the room's beginning from messages deleted.
        match self.rooms.get(name) {
            Some(room) if !more && !trimmed => {
                ServerFrame::history_to(name, events, self.kept_from(room))
            }
            _ => ServerFrame::history_from(name, events, more || trimmed, before),
        }
    }

    pub(super) fn room_list(&self) -> ServerFrame {
        let mut rooms: Vec<(&str, usize)> = self
            .rooms
            .iter()
            .map(|(n, r)| (n.as_str(), r.members.len().max(r.roster.len())))
            .filter(|&(_, m)| m > 0)
            .collect();
        // A name is at most 32 bytes; with its count and punctuation an
        // entry is under 64.
        let fit = (self.config.max_frame_bytes - FRAME_OVERHEAD) / 64;
        let total = rooms.len();
        if total > fit {
            // Only the first `fit` names are sorted, not every room's:
            // asked often, the answer costs little more than a look at
            // each room.
            rooms.select_nth_unstable(fit);
            rooms.truncate(fit);
        }
        rooms.sort_unstable();
        let listed = rooms.len();
        let rooms = rooms
            .into_iter()
            .map(|(n, m)| RoomInfo::new(n, m as u64))
            .collect();
        // Cut: said, so that a client does not take the list for all.
        if total > listed {
            ServerFrame::rooms_of(rooms, total as u64)
        } else {
            ServerFrame::rooms(rooms)
        }
    }
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
