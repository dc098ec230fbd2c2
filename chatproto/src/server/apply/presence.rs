//! Applying a presence: a session entering a room (answered `entered`
//! where it asked) or leaving it, the room's members and fan-out changed
//! to match, and who is told.

use std::sync::Arc;

use crate::server::event::{Event, EventBody, SessionId};
use crate::server::{Audience, ClientId, Server};

impl Server {
    pub(super) fn apply_enter(&mut self, event: &Arc<Event>, sid: SessionId) {
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
    pub(super) fn apply_leave(&mut self, event: &Arc<Event>, sid: SessionId) -> bool {
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
