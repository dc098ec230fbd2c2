//! Reading history: a room's events by its key range in each schema
//! version, pages with the visibility rules, the recent messages and an
//! export, and the list of rooms.

use std::sync::Arc;

use chatproto::{Event, ReadPage, ReadQuery, SessionId};
use rusqlite::{params, OptionalExtension};

use crate::chunk::{decode_chunk, stored_msg, Stored, KIND_MSG, LEGACY_KIND};
use crate::{Store, StoreError, StoredRoom, MAX_SEQ};

impl Store {
    /// How this file's queries pick a room's events, with `?1` the
    /// room's name: by name and seq (v4, v5), or by the key range of the
    /// room's number (v6 on). One statement looks the number up and reads,
    /// so a reader beside the writer never reads a number that a
    /// forgotten room gave up to another in between.
    fn keys(&self) -> Keys {
        if self.version < 6 {
            return Keys {
                range: "room = ?1 AND seq >= ?2 AND seq <= ?3",
                seq: "seq",
                order: "seq",
                max: i64::MAX,
            };
        }
        Keys {
            range: "id >= ((SELECT no FROM rooms WHERE name = ?1) << 40) + ?2
                    AND id <= ((SELECT no FROM rooms WHERE name = ?1) << 40) + ?3",
            seq: "id & 1099511627775",
            order: "id",
            max: MAX_SEQ as i64,
        }
    }

    /// The newest `limit` messages of `room`, oldest first, whoever may see
    /// them: what a restarted server keeps in memory.
    pub fn recent(&self, room: &str, limit: usize) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let room_name: Arc<str> = Arc::from(room);
        self.walk(room, 1, u64::MAX, true, |e| {
            if e.kind == KIND_MSG {
                out.push(stored_msg(e, &room_name));
            }
            out.len() < limit
        })?;
        out.reverse();
        Ok(out)
    }

    /// The newest messages of `room` stamped at `since_ts` or later, at
    /// most `limit` of them, oldest first, whoever may see them: what a
    /// restarted server reads of a room it leaves unloaded, for the ids
    /// of messages a resumed session may send again
    /// ([`Server::restore_message_ids`](chatproto::Server::restore_message_ids)).
    /// The walk stops at the first older event.
    pub fn recent_since(
        &self,
        room: &str,
        limit: usize,
        since_ts: u64,
    ) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let room_name: Arc<str> = Arc::from(room);
        self.walk(room, 1, u64::MAX, true, |e| {
            // Any event older ends the walk: presence stamped before it
            // (a room of comings and goings) is not read through.
            if e.ts < since_ts {
                return false;
            }
            if e.kind != KIND_MSG {
                return true;
            }
            out.push(stored_msg(e, &room_name));
            out.len() < limit
        })?;
        out.reverse();
        Ok(out)
    }

    /// The messages of `room` with the seqs in `seqs` (increasing), as
    /// far as they are stored, oldest first: what a restarted server reads
    /// for the ids a restored session remembered (see
    /// [`StoredSession::sent`](crate::StoredSession::sent)). Each chunk
    /// holding one is read once, the chunks between them not at all: at
    /// most as many rows as seqs asked.
    pub fn messages_at(&self, room: &str, seqs: &[u64]) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        if self.version < 8 {
            // Not reached (a writer migrates its file, and only files of
            // v11 on know what a session sent): one walk each.
            let room_name: Arc<str> = Arc::from(room);
            for &seq in seqs {
                self.walk(room, seq, seq, false, |e| {
                    if e.kind == KIND_MSG {
                        out.push(stored_msg(e, &room_name));
                    }
                    false
                })?;
            }
            return Ok(out);
        }
        let room_name: Arc<str> = Arc::from(room);
        let mut st = self.db.prepare_cached(
            "SELECT events FROM chunks
             WHERE id >= ((SELECT no FROM rooms WHERE name = ?1) << 40) + ?2
               AND id <= ((SELECT no FROM rooms WHERE name = ?1) << 40) + 1099511627775
             ORDER BY id LIMIT 1",
        )?;
        let mut i = 0;
        while i < seqs.len() {
            let Some(from) = self.keys().lower(seqs[i]) else {
                break;
            };
            let json: Option<String> =
                st.query_row(params![room, from], |r| r.get(0)).optional()?;
            let Some(json) = json else {
                break;
            };
            let events = decode_chunk(&json)?;
            let last = events.last().map_or(seqs[i], |e| e.seq);
            for e in events {
                while i < seqs.len() && seqs[i] < e.seq {
                    i += 1;
                }
                if i < seqs.len() && seqs[i] == e.seq && e.kind == KIND_MSG {
                    out.push(stored_msg(e, &room_name));
                }
            }
            // Past this chunk (an empty one, or seqs it skipped).
            while i < seqs.len() && seqs[i] <= last {
                i += 1;
            }
        }
        Ok(out)
    }

    /// Every message of `room` with a seq above `since`, oldest first, a
    /// page at a time (for an export): see [`Export`].
    pub fn export(&self, room: &str, since: u64) -> Export<'_> {
        Export {
            store: self,
            room: Arc::from(room),
            after: since,
            epoch: None,
            done: false,
        }
    }

    /// The next page of `export`, read in a transaction of its own, ended
    /// before this returns: its messages, and whether the room may hold
    /// more (`export.after` moved past what it looked at).
    fn export_page(&self, export: &mut Export<'_>) -> Result<(Vec<Event>, bool), StoreError> {
        let tx = self.db.unchecked_transaction()?;
        let epoch: Option<String> = tx
            .prepare_cached("SELECT epoch FROM rooms WHERE name = ?1")?
            .query_row(params![&*export.room], |r| r.get(0))
            .optional()?;
        // Forgotten, or begun again since the first page: its seqs start
        // over, and what follows is another history.
        match (&export.epoch, epoch) {
            (_, None) => return Ok((Vec::new(), false)),
            (Some(was), Some(now)) if *was != now => return Ok((Vec::new(), false)),
            (_, Some(now)) => export.epoch = Some(now),
        }
        let (mut page, mut looked_at, mut bytes, mut full) = (Vec::new(), 0, 0, false);
        let mut after = export.after;
        self.walk(
            &export.room,
            after.saturating_add(1),
            u64::MAX,
            false,
            |e| {
                after = e.seq;
                looked_at += 1;
                if e.kind == KIND_MSG {
                    bytes += e.text_bytes();
                    page.push(stored_msg(e, &export.room));
                }
                full = looked_at >= EXPORT_PAGE_EVENTS || bytes >= EXPORT_PAGE_BYTES;
                !full
            },
        )?;
        tx.commit()?;
        export.after = after;
        Ok((page, full && after < MAX_SEQ))
    }

    /// Hand each stored event of `room` with a seq in `lo..=hi` to `each`,
    /// newest or oldest first, for as long as it answers `true`. Chunks
    /// (v8) are read a row at a time; older files' rows are read as chunks
    /// of one event.
    fn walk(
        &self,
        room: &str,
        lo: u64,
        hi: u64,
        newest_first: bool,
        mut each: impl FnMut(Stored) -> bool,
    ) -> Result<(), StoreError> {
        let keys = self.keys();
        let (Some(from), to) = (keys.lower(lo), keys.upper(hi)) else {
            return Ok(());
        };
        if from > to {
            return Ok(());
        }
        let dir = if newest_first { "DESC" } else { "ASC" };
        let sql = if self.version >= 8 {
            // The chunks from the one holding `lo` to the one holding `hi`
            // (the first whose last seq reaches it), or to the room's end.
            format!(
                "SELECT events FROM chunks
                 WHERE id >= ((SELECT no FROM rooms WHERE name = ?1) << 40) + ?2
                   AND id <= coalesce(
                       (SELECT min(id) FROM chunks
                        WHERE id >= ((SELECT no FROM rooms WHERE name = ?1) << 40) + ?3
                          AND id <= ((SELECT no FROM rooms WHERE name = ?1) << 40)
                                    + 1099511627775),
                       ((SELECT no FROM rooms WHERE name = ?1) << 40) + 1099511627775)
                 ORDER BY id {dir}"
            )
        } else {
            let Keys {
                range, seq, order, ..
            } = keys;
            format!(
                "SELECT json_array(json_array({seq}, ts, {LEGACY_KIND}, session, nick, text,
                                              msg_id, to_sessions, to_nicks))
                 FROM events WHERE {range} ORDER BY {order} {dir}"
            )
        };
        let mut st = self.db.prepare_cached(&sql)?;
        let mut rows = st.query(params![room, from, to])?;
        let (lo, hi) = (from as u64, to as u64);
        while let Some(r) = rows.next()? {
            let json = r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
            let events = decode_chunk(json)?;
            let mut go = |e: Stored| !(lo..=hi).contains(&e.seq) || each(e);
            let went = if newest_first {
                events.into_iter().rev().all(&mut go)
            } else {
                events.into_iter().all(&mut go)
            };
            if !went {
                break;
            }
        }
        Ok(())
    }

    /// Every room with its epoch, last seq and oldest stored seq.
    pub fn rooms(&self) -> Result<Vec<StoredRoom>, StoreError> {
        let sql = format!("{} ORDER BY name", self.rooms_sql());
        let mut st = self.db.prepare_cached(&sql)?;
        let rows = st.query_map([], stored_room)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The room `name` as [`rooms`](Store::rooms) lists it, if it is
    /// stored.
    pub fn room(&self, name: &str) -> Result<Option<StoredRoom>, StoreError> {
        let sql = format!("{} WHERE name = ?1", self.rooms_sql());
        let mut st = self.db.prepare_cached(&sql)?;
        Ok(st.query_row(params![name], stored_room).optional()?)
    }

    /// The rooms' name, epoch, last seq and oldest stored seq (NULL: none
    /// stored), in this file's schema.
    fn rooms_sql(&self) -> &'static str {
        if self.version < 6 {
            "SELECT name, epoch, last_seq,
                    (SELECT min(seq) FROM events WHERE events.room = rooms.name)
             FROM rooms"
        } else if self.version >= 10 {
            "SELECT name, epoch, last_seq,
                    max(coalesce((SELECT first FROM chunks
                                  WHERE id >= rooms.no << 40
                                    AND id <= (rooms.no << 40) + 1099511627775
                                  ORDER BY id LIMIT 1),
                                 last_seq + 1),
                        pruned + 1)
             FROM rooms"
        } else if self.version >= 8 {
            "SELECT name, epoch, last_seq,
                    (SELECT first FROM chunks
                     WHERE id >= rooms.no << 40 AND id <= (rooms.no << 40) + 1099511627775
                     ORDER BY id LIMIT 1)
             FROM rooms"
        } else {
            "SELECT name, epoch, last_seq,
                    (SELECT id - (rooms.no << 40) FROM events
                     WHERE id >= rooms.no << 40 AND id <= (rooms.no << 40) + 1099511627775
                     ORDER BY id LIMIT 1)
             FROM rooms"
        }
    }

    /// The newest `limit` messages of `room` with a seq below `before`
    /// that `session` may see, oldest first, and whether older ones exist.
    /// Reads back as far as it takes: see [`read`](Store::read) for a
    /// bounded read.
    pub fn page(
        &self,
        room: &str,
        session: SessionId,
        before: u64,
        limit: usize,
    ) -> Result<(Vec<Event>, bool), StoreError> {
        let (events, more, _) = self.page_between(room, session, 0, before, limit)?;
        Ok((events, more))
    }

    /// What the server core asks for with `Output::Read`: like
    /// [`page`](Store::page), only messages with a seq above `query.after`,
    /// looking at the newest `query.scan` seqs of the range at most (a
    /// page of a room of messages to others costs that, not the room).
    ///
    /// The page says where the room's history starts
    /// ([`ReadPage::oldest`]), read after its events: retention may have
    /// deleted some of the range before the server heard of it; and how
    /// many stored events it looked at ([`ReadPage::looked_at`]).
    pub fn read(&self, query: &ReadQuery) -> Result<ReadPage, StoreError> {
        let page = self.read_range(query)?;
        Ok(match self.room(&query.room)? {
            Some(room) => page.with_oldest(room.oldest),
            None => page,
        })
    }

    /// [`read`](Store::read) but for where the room's history starts.
    fn read_range(&self, query: &ReadQuery) -> Result<ReadPage, StoreError> {
        let lowest = query.lowest();
        let (events, more, looked_at) = self.page_between(
            &query.room,
            query.session,
            lowest.saturating_sub(1),
            query.before,
            query.limit,
        )?;
        if more {
            let from = events.first().map_or(query.before, |e| e.seq);
            return Ok(ReadPage::new(events, true, from).with_looked_at(looked_at));
        }
        // Cut short by the scan: more if the range holds anything older
        // (seqs `after + 1 ..= lowest - 1`): the first event found there
        // answers, found in the first chunk that reaches the range (a
        // chunk's seqs may have gaps, where retention kept a message
        // stamped in the future).
        let mut older = false;
        if lowest > query.after.saturating_add(1) {
            self.walk(&query.room, query.after + 1, lowest - 1, false, |_| {
                older = true;
                false
            })?;
        }
        Ok(ReadPage::new(events, older, lowest).with_looked_at(looked_at + u64::from(older)))
    }

    /// The newest `limit` messages `session` may see with a seq in
    /// `after + 1 ..= before - 1`, oldest first, whether older ones
    /// exist, and how many stored events were looked at to find them.
    fn page_between(
        &self,
        room: &str,
        session: SessionId,
        after: u64,
        before: u64,
        limit: usize,
    ) -> Result<(Vec<Event>, bool, u64), StoreError> {
        // Seqs `after + 1 ..= before - 1`.
        let Some(hi) = before.checked_sub(1) else {
            return Ok((Vec::new(), false, 0));
        };
        let me = format!(",{},", session.0);
        let room_name: Arc<str> = Arc::from(room);
        let mut page = Vec::new();
        let mut looked_at = 0;
        self.walk(room, after.saturating_add(1), hi, true, |e| {
            looked_at += 1;
            let visible = match &e.to_sessions {
                None => true,
                Some(to) => e.session == session.0 || to.contains(&me),
            };
            if e.kind == KIND_MSG && visible {
                page.push(stored_msg(e, &room_name));
            }
            page.len() <= limit
        })?;
        let more = page.len() > limit;
        page.truncate(limit);
        page.reverse();
        Ok((page, more, looked_at))
    }
}

/// A row of [`Store::rooms_sql`] as a room.
fn stored_room(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRoom> {
    let last_seq = r.get::<_, i64>(2)? as u64;
    let oldest: Option<i64> = r.get(3)?;
    Ok(StoredRoom {
        name: r.get(0)?,
        epoch: r.get(1)?,
        last_seq,
        oldest: oldest.map_or(last_seq + 1, |s| s as u64),
    })
}

/// How a read picks a room's events in this file's schema (see
/// [`Store::keys`]): the room's name bound as `?1`, then the lowest and
/// highest seq.
struct Keys {
    /// The condition, on `?1`, `?2` and `?3`.
    range: &'static str,
    /// The expression for an event's seq.
    seq: &'static str,
    /// What orders a room's events.
    order: &'static str,
    /// The highest seq the schema can hold.
    max: i64,
}

impl Keys {
    /// A range's lowest seq, or `None` when no event can be that high.
    fn lower(&self, seq: u64) -> Option<i64> {
        i64::try_from(seq).ok().filter(|s| *s <= self.max)
    }

    /// A range's highest seq, as far as the schema holds them.
    fn upper(&self, seq: u64) -> i64 {
        seq.min(self.max as u64) as i64
    }
}

/// The most events (messages or not) one page of an [`Export`] looks at.
pub const EXPORT_PAGE_EVENTS: usize = 1_000;

/// The most bytes of messages one page of an [`Export`] holds (text,
/// nick, id and recipients' nicks), past which it ends at the message
/// that reached it.
pub const EXPORT_PAGE_BYTES: usize = 1 << 20;

/// A room's messages, oldest first, read a page at a time, each page in a
/// read transaction of its own that has ended when the page is handed
/// out: at most [`EXPORT_PAGE_EVENTS`] events looked at and about
/// [`EXPORT_PAGE_BYTES`] of messages. So an export whose reader pauses
/// (`chatserver export | less` left open) holds no snapshot of the
/// database between pages, which would keep every checkpoint from
/// emptying the write-ahead log while the server writes. Each page reads
/// the database as it is then: messages stored since the export began are
/// in it, up to the room's end when the last page is read, and a room
/// begun again (or forgotten) meanwhile ends its export where it was.
#[derive(Debug)]
pub struct Export<'a> {
    store: &'a Store,
    room: Arc<str>,
    /// The seq of the last event looked at: the next page reads above it.
    after: u64,
    /// The room's epoch when the first page was read.
    epoch: Option<String>,
    /// The room's end was reached (or an error said).
    done: bool,
}

impl Iterator for Export<'_> {
    type Item = Result<Vec<Event>, StoreError>;

    /// The next page of messages (never empty: a page of presences
    /// alone is read past), or `None` once the room's end was read.
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let store = self.store;
            match store.export_page(self) {
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Ok((page, more)) => {
                    self.done = !more;
                    if !page.is_empty() {
                        return Some(Ok(page));
                    }
                }
            }
        }
    }
}
