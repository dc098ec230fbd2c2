//! Starting again from the database: the sessions, then the rooms (the
//! most recently active loaded, the others resting unloaded or left in
//! the file), and each session's latest message ids, for its resends.

use std::sync::Arc;

use chatproto::{Event, EventBody, Now, Server, SessionId};
use chatstore::{Store, StoreError};

/// Fill a new core from `store`: sessions (as many as the core may keep
/// detached: those connected when the last server stopped, then the last
/// active), then the rooms, least recently active first (by their newest
/// stored message; so that the caps of rooms take them out in that
/// order). The most recently active, up to the cap of rooms in memory,
/// are loaded with their newest messages; the others rest in the
/// database, unloaded, until entered, up to the cap of stored rooms; the
/// least recently active past that are left in the file as they are,
/// unknown to the server (entering one begins it anew, deleting what the
/// file held of it; they can still be exported). Each session restored
/// gets back the ids of the messages it remembered when it lost its
/// connection (its newest `id_window`, in the order it sent them, in any
/// room restored, loaded or not), for its resends: read one chunk of
/// history per message at most,
/// so a start reads at most sessions x `id_window` more rows, whatever
/// the database's size. Returns how many rooms
/// and sessions came back, how many rooms were left unloaded or
/// unknown, and why the core refused any room or session it was handed
/// (a nickname the rule no longer allows, say): the server goes on
/// without those.
pub fn restore(
    server: &mut Server,
    store: &Store,
    now: Now,
    sessions: usize,
) -> Result<Restored, StoreError> {
    server.reserve_sessions(store.next_session()?);
    let stored = store.sessions(sessions)?;
    let mut refused = Vec::new();
    let mut restored_sessions = 0;
    for s in &stored {
        match server.restore_session(now, s.id, &s.nick, s.token) {
            Ok(()) => restored_sessions += 1,
            Err(e) => refused.push(e),
        }
    }
    let rooms = store.rooms()?;
    // When each room was last active: the stamp of its newest stored
    // message (0: none left, as after retention).
    let mut active = Vec::with_capacity(rooms.len());
    for r in &rooms {
        let newest = store.recent(&r.name, 1)?.last().map_or(0, |e| e.ts);
        active.push((newest, r));
    }
    active.sort_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.name.cmp(&y.name)));
    let rest = active.len().saturating_sub(server.config().max_rooms);
    // Past the cap of stored rooms the least recently active are left in
    // the file as they are, not deleted: a start does not delete history
    // (entering one begins it anew).
    let cap = server.config().max_stored_rooms;
    let left = active
        .len()
        .saturating_sub(cap.max(server.config().max_rooms));
    // A session may come back and send again a message whose echo it
    // never saw: each session restored gets back the ids of its newest
    // messages, wherever they are, given once every room is restored, in
    // the order it sent them across rooms (its window of ids keeps the
    // last given: room after room, its older messages in one room would
    // push out its newest in another). Gathered from three places: the
    // list the store keeps with the session (what it remembered when it
    // last lost its connection, in the order it sent them), the loaded
    // rooms' recent messages, and what the unloaded rooms stored in the
    // last resume window before the newest message anywhere (for a
    // session that was connected when the server was killed, or sent
    // more since its list was written, or whose file is of an older
    // version).
    let newest = active.last().map_or(0, |(ts, _)| *ts);
    let since = newest.saturating_sub(server.config().resume_window_ms);
    let ids = server.config().id_window;
    let restored: std::collections::HashSet<u64> = stored.iter().map(|s| s.id.0).collect();
    let mut given: Vec<Given> = Vec::new();
    let gather = |given: &mut Vec<Given>, e: &Event, list: usize| {
        if let EventBody::Msg {
            from, id: Some(id), ..
        } = &e.body
        {
            if restored.contains(&from.0) {
                given.push(Given {
                    session: from.0,
                    list,
                    ts: e.ts,
                    room: Arc::clone(&e.room),
                    seq: e.seq,
                    id: id.clone(),
                });
            }
        }
    };
    for (ts, r) in &active[left..rest] {
        if let Err(e) = server.restore_unloaded_room(&r.name, &r.epoch, r.last_seq, r.oldest) {
            refused.push(e);
        }
        if *ts > 0 && *ts >= since {
            for e in store.recent_since(&r.name, ids, since)? {
                gather(&mut given, &e, usize::MAX);
            }
        }
    }
    let keep = server.config().history_per_room;
    let mut loaded = 0;
    for (_, r) in &active[rest..] {
        let recent = store.recent(&r.name, keep)?;
        for e in &recent {
            // As the room keeps them (below `oldest`: not served).
            if e.seq <= r.last_seq && e.seq >= r.oldest {
                gather(&mut given, e, usize::MAX);
            }
        }
        match server.restore_room(&r.name, &r.epoch, r.last_seq, r.oldest, recent) {
            Ok(()) => loaded += 1,
            Err(e) => refused.push(e),
        }
    }
    // Each session's own list: the messages read back whatever came after
    // them and wherever their rooms are, each with its place in the list.
    let mut wanted: std::collections::BTreeMap<&str, Vec<(u64, u64, usize)>> = Default::default();
    for s in &stored {
        let from = s.sent.len().saturating_sub(ids);
        for (at, (room, seq)) in s.sent.iter().enumerate().skip(from) {
            wanted.entry(room).or_default().push((*seq, s.id.0, at));
        }
    }
    for (room, mut sent) in wanted {
        sent.sort_unstable();
        let mut seqs: Vec<u64> = sent.iter().map(|(seq, ..)| *seq).collect();
        seqs.dedup();
        for e in store.messages_at(room, &seqs)? {
            // Only a session's own message (the room may have begun again
            // since, and given the seq to another).
            let EventBody::Msg { from, .. } = &e.body else {
                continue;
            };
            let at = sent.partition_point(|&(seq, id, _)| (seq, id) < (e.seq, from.0));
            if let Some(&(seq, id, list)) = sent.get(at) {
                if (seq, id) == (e.seq, from.0) {
                    gather(&mut given, &e, list);
                }
            }
        }
    }
    for g in in_sent_order(given, ids) {
        server.restore_message_id(&g.room, SessionId(g.session), &g.id, g.seq);
    }
    Ok(Restored {
        rooms: loaded,
        unloaded: server.rooms_unloaded(),
        left,
        sessions: restored_sessions,
        refused,
    })
}

/// A message id [`restore`] gives back to the session that sent it.
#[derive(Debug, Clone)]
struct Given {
    session: u64,
    /// Its place in the session's stored list; `usize::MAX`: not in it.
    list: usize,
    ts: u64,
    room: Arc<str>,
    seq: u64,
    id: String,
}

/// Each session's ids in the order it sent them, its newest `ids` at
/// most: those of its stored list in the list's order, the others (not
/// in it) by when they were stamped, each placed before the first of the
/// list stamped after it. Sessions follow one another (a session's window
/// is its own).
fn in_sent_order(mut given: Vec<Given>, ids: usize) -> Vec<Given> {
    given.sort_by(|a, b| {
        (a.session, a.list, a.ts, &a.room, a.seq).cmp(&(b.session, b.list, b.ts, &b.room, b.seq))
    });
    let mut out = Vec::with_capacity(given.len());
    let mut rest = given.into_iter().peekable();
    while let Some(first) = rest.next() {
        let session = first.session;
        let mut mine = vec![first];
        while let Some(g) = rest.next_if(|g| g.session == session) {
            mine.push(g);
        }
        let split = mine.partition_point(|g| g.list != usize::MAX);
        let others = mine.split_off(split);
        let listed: std::collections::HashSet<(&str, u64)> =
            mine.iter().map(|g| (&*g.room, g.seq)).collect();
        let mut others: Vec<Given> = others
            .into_iter()
            .filter(|g| !listed.contains(&(&*g.room, g.seq)))
            .collect();
        drop(listed);
        others.dedup_by(|a, b| a.room == b.room && a.seq == b.seq);
        let mut merged = Vec::with_capacity(mine.len() + others.len());
        let mut others = others.into_iter().peekable();
        for g in mine {
            while let Some(o) = others.next_if(|o| o.ts < g.ts) {
                merged.push(o);
            }
            merged.push(g);
        }
        merged.extend(others);
        let from = merged.len().saturating_sub(ids);
        out.extend(merged.into_iter().skip(from));
    }
    out
}

/// What [`restore`] brought back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Rooms loaded.
    pub rooms: usize,
    /// Rooms resting in the database past the cap of rooms, unloaded.
    pub unloaded: usize,
    /// Rooms past the cap of stored rooms, left in the file unknown to
    /// the server (entering one begins it anew).
    pub left: usize,
    /// Sessions that may be resumed.
    pub sessions: usize,
    /// The rooms and sessions the store held that the core refused, each
    /// saying which and why (logged as warnings once the server listens).
    pub refused: Vec<chatproto::RestoreError>,
}
