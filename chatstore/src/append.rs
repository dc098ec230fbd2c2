//! Appending a batch of records in one transaction: each room's events
//! gathered into chunks, sessions, and the rooms begun, begun again or
//! forgotten.

use chatproto::{EventBody, PresenceStatus, Recipient, Record, SessionId};
use rusqlite::params;

use crate::chunk::{insert_chunk, Fields, To, KIND_MSG, KIND_OFFLINE, KIND_ONLINE};
use crate::open::{free_bytes, full_disk};
use crate::rooms::{begin_room, forget_room, room_number, Began};
use crate::{Store, StoreError, CHUNK_BYTES, CHUNK_EVENTS, MAX_SEQ, SEQ_BITS};

impl Store {
    /// Store a batch of records in one transaction: all of it or none.
    /// A room record with a new epoch starts the room's history again.
    pub fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        self.append_batch(records).map_err(|e| self.explain(e))
    }

    /// [`append`](Store::append), its errors as SQLite gave them.
    fn append_batch(&mut self, records: &[Record]) -> Result<(), StoreError> {
        // A message is acknowledged once it is committed, and a commit
        // into a file deleted meanwhile is lost when the store closes: one
        // stat a batch, not a message.
        self.check_file()?;
        let tx = self.db.transaction()?;
        let mut found = Vec::new();
        let limits = Limits {
            event_bytes: self.max_event_bytes,
        };
        write(
            &tx,
            records,
            &self.numbers,
            &mut found,
            &mut self.buffers,
            limits,
        )?;
        tx.commit()?;
        // Only numbers that are committed are kept: a room added by a
        // batch that failed may get another number later.
        for (name, no) in found {
            match no {
                Some(no) => self.numbers.insert(name, no),
                None => self.numbers.remove(&name),
            };
        }
        Ok(())
    }

    /// Whether `records` could be stored now: written, down to the disk
    /// (the log, uncommitted), then rolled back. After a failed
    /// [`append`](Store::append), this tells when the cause (a full disk,
    /// say) has gone.
    pub fn probe(&mut self, records: &[Record]) -> Result<(), StoreError> {
        self.probe_batch(records).map_err(|e| self.explain(e))
    }

    /// [`probe`](Store::probe), its errors as SQLite gave them.
    fn probe_batch(&mut self, records: &[Record]) -> Result<(), StoreError> {
        self.check_file()?;
        let tx = self.db.transaction()?;
        let limits = Limits {
            event_bytes: self.max_event_bytes,
        };
        write(
            &tx,
            records,
            &self.numbers,
            &mut Vec::new(),
            &mut self.buffers,
            limits,
        )?;
        // SQLite keeps a transaction's pages in memory until its commit:
        // written and rolled back only, a probe never touched the disk,
        // and said a full or failing one worked (the server then went
        // from "works again" to "cannot store" every second). Flushed, the
        // pages go to the log as frames no commit marks, which the
        // rollback discards.
        tx.cache_flush()?;
        tx.rollback()?;
        Ok(())
    }
}

impl Store {
    /// SQLite's "full" or an I/O error while the disk holding the database
    /// has no room left is [`StoreError::DiskFull`] (see
    /// [`full_disk`](crate::open::full_disk)); "full" with room on the
    /// disk is [`StoreError::AtCap`] when a cap is set. SQLite's words say
    /// neither which of the two it is nor, for an I/O error, that it is
    /// about space.
    fn explain(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::Sqlite(ref s) if full_disk(s, || free_bytes(&self.path)) => {
                StoreError::DiskFull(self.path.clone())
            }
            // Not the disk: with a cap set, the cap.
            StoreError::Sqlite(ref s)
                if s.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) =>
            {
                match self.max_bytes {
                    Some(bytes) => StoreError::AtCap {
                        path: self.path.clone(),
                        bytes,
                    },
                    None => e,
                }
            }
            e => e,
        }
    }
}

/// Chunks' JSON buffers, used again from chunk to chunk and batch to
/// batch. A chunk's JSON is about [`CHUNK_BYTES`]: made anew each time,
/// it was a large allocation (the slow way through glibc's malloc) that
/// grew twice, about 3,000 instructions a chunk for allocating alone
/// (BENCHMARKS.md).
#[derive(Debug, Default)]
pub(crate) struct ChunkBuffers(Vec<String>);

/// Buffers kept for the next chunks: as many rooms as a batch is likely
/// to write at once...
const BUFFERS_KEPT: usize = 16;

/// ...each at most this large (one that held a long event alone goes).
const BUFFER_KEPT_BYTES: usize = 4 * CHUNK_BYTES;

impl ChunkBuffers {
    /// An empty buffer: one kept, or a new one (small: a batch may name
    /// many rooms, each with an event or two; it grows as needed).
    fn take(&mut self) -> String {
        self.0.pop().unwrap_or_else(|| String::with_capacity(1024))
    }

    /// A buffer whose chunk went in, kept for another if there is room.
    fn give(&mut self, mut json: String) {
        if self.0.len() < BUFFERS_KEPT && json.capacity() <= BUFFER_KEPT_BYTES {
            json.clear();
            self.0.push(json);
        }
    }
}

/// A room's events of one batch being gathered into a chunk.
struct Chunk {
    /// Its first and last event's seq.
    first: u64,
    last: u64,
    count: usize,
    /// `[` and the events so far, comma-separated.
    json: String,
}

/// What a batch does to one room: its last seq, highest writer, key base
/// and the chunk it is gathering.
struct Run<'a> {
    room: &'a str,
    /// The last seq gathered (0 when none since the batch began or began
    /// the room again); the next must be above it.
    seq: u64,
    /// The first seq gathered since then.
    first: Option<u64>,
    session: i64,
    base: i64,
    chunk: Option<Chunk>,
}

/// Insert the chunk `run` is gathering, if any. A chunk whose key is
/// taken ends at a seq the room stored before: out of order (a seq that
/// does not collide is caught by [`update_room`]).
/// Its buffer goes back to `buffers`.
fn flush_chunk(
    tx: &rusqlite::Transaction<'_>,
    run: &mut Run<'_>,
    buffers: &mut ChunkBuffers,
) -> Result<(), StoreError> {
    if let Some(mut c) = run.chunk.take() {
        c.json.push(']');
        let inserted = insert_chunk(tx, run.base, c.first, c.last, &c.json);
        buffers.give(c.json);
        match inserted {
            Err(StoreError::Sqlite(e))
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) =>
            {
                return Err(StoreError::OutOfOrder {
                    room: run.room.to_owned(),
                    seq: c.last,
                });
            }
            other => other?,
        }
    }
    Ok(())
}

/// What a batch may hold.
#[derive(Clone, Copy)]
struct Limits {
    /// The most bytes an event's JSON may take.
    event_bytes: usize,
}

/// Whether `name` is a room's name as the core gives it (canonical: what
/// [`chatproto::room_name`] makes of it, unchanged).
fn check_room(name: &str) -> Result<(), StoreError> {
    match chatproto::room_name(name) {
        Ok(canonical) if canonical == name => Ok(()),
        Ok(canonical) => Err(StoreError::RoomName {
            name: name.to_owned(),
            why: format!("it is not in its canonical form, {canonical:?}"),
        }),
        Err(why) => Err(StoreError::RoomName {
            name: name.to_owned(),
            why,
        }),
    }
}

/// A session's id as the database keeps it (a signed integer), if it
/// can.
fn check_session(id: SessionId) -> Result<i64, StoreError> {
    i64::try_from(id.0).map_err(|_| StoreError::SessionId(id))
}

/// Write `records` inside `tx`, in order: each room's events are gathered
/// into chunks, inserted once full and before any other record (a room
/// begun again deletes the room's earlier events).
///
/// A room's number comes from this batch's `found` (the latest entry),
/// from `known` (committed ones), or from the file; rooms this batch
/// numbers or looks up are added to `found`, and those it forgets, with
/// `None`. Chunks' JSON is written in buffers from `buffers`.
fn write<'a>(
    tx: &rusqlite::Transaction<'_>,
    records: &'a [Record],
    known: &std::collections::HashMap<String, i64>,
    found: &mut Vec<(String, Option<i64>)>,
    buffers: &mut ChunkBuffers,
    limits: Limits,
) -> Result<(), StoreError> {
    // Each room's last seq and highest session are written once per batch
    // (events of a room come in seq order).
    let mut runs: Vec<Run<'a>> = Vec::new();
    // The chunk of the room a record names goes in before the record
    // acts on the room.
    let flush_room = |runs: &mut Vec<Run<'a>>,
                      name: &str,
                      buffers: &mut ChunkBuffers|
     -> Result<(), StoreError> {
        match runs.iter_mut().find(|r| r.room == name) {
            Some(run) => flush_chunk(tx, run, buffers),
            None => Ok(()),
        }
    };
    for record in records {
        match record {
            Record::Room {
                name, epoch, seq, ..
            } => {
                check_room(name)?;
                flush_room(&mut runs, name, buffers)?;
                if *seq > MAX_SEQ {
                    return Err(StoreError::KeysFull {
                        room: name.to_string(),
                        why: "its seq is past the highest a room can store",
                    });
                }
                // What this batch wrote into it is counted first: its
                // events after the record must be above the record's seq.
                if *seq > 0 {
                    if let Some(i) = runs.iter().position(|r| *r.room == **name) {
                        let run = runs.remove(i);
                        update_room(tx, &run)?;
                    }
                }
                match begin_room(tx, name, epoch, *seq)? {
                    // The same epoch again raises its last seq at most.
                    Began::Same => {}
                    // A room begun again (a new epoch) drops what came
                    // before in this batch too.
                    // Its highest writer stays: sessions only go up.
                    Began::Again => {
                        if let Some(run) = runs.iter_mut().find(|r| *r.room == **name) {
                            run.seq = 0;
                            run.first = None;
                        }
                    }
                    // A room's record goes before its events: events of a
                    // room not yet known were refused at the first one.
                    Began::New(no) => found.push((name.to_string(), Some(no))),
                }
            }
            Record::Forgotten { name, .. } => {
                flush_room(&mut runs, name, buffers)?;
                // What this batch wrote into it is counted first.
                if let Some(i) = runs.iter().position(|r| *r.room == **name) {
                    let run = runs.remove(i);
                    update_room(tx, &run)?;
                }
                forget_room(tx, name)?;
                found.push((name.to_string(), None));
            }
            Record::Session {
                id, nick, token, ..
            } => {
                check_session(*id)?;
                // A new session is attached, and the last active.
                tx.prepare_cached(
                    "INSERT INTO sessions (id, nick, token_hash, active, live)
                         VALUES (?1, ?2, ?3,
                                 (SELECT coalesce(max(active), 0) + 1 FROM sessions), 1)
                     ON CONFLICT (id) DO UPDATE SET nick = excluded.nick",
                )?
                .execute(params![id.0 as i64, &**nick, &token[..]])?;
            }
            Record::Attached {
                id, attached, sent, ..
            } => {
                // Detached: the messages whose ids it remembers now, which
                // it may send again after a restart. Attached: those of its
                // last detaching stay (it sent none since then).
                let sent = (!*attached).then(|| crate::sessions::encode_sent(sent));
                tx.prepare_cached(
                    "UPDATE sessions
                     SET active = (SELECT coalesce(max(active), 0) + 1 FROM sessions), live = ?2,
                         sent = coalesce(?3, sent)
                     WHERE id = ?1",
                )?
                .execute(params![id.0 as i64, *attached, sent])?;
            }
            Record::SessionForgotten { id, .. } => forget_session(tx, id.0 as i64)?,
            Record::SessionsKept { ids, .. } => {
                let stored = tx
                    .prepare_cached("SELECT id FROM sessions")?
                    .query_map([], |row| row.get::<_, i64>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                for id in stored {
                    if ids.binary_search(&SessionId(id as u64)).is_err() {
                        forget_session(tx, id)?;
                    }
                }
            }
            Record::Event(e) => {
                let room_name: &str = &e.room;
                let writer = check_session(e.session())?;
                if e.seq > MAX_SEQ {
                    return Err(StoreError::KeysFull {
                        room: room_name.to_owned(),
                        why: "its seq is past the highest a room can store",
                    });
                }
                let at = match runs.iter().position(|r| r.room == room_name) {
                    Some(at) => at,
                    None => {
                        check_room(room_name)?;
                        let base = room_number(tx, room_name, known, found)? << SEQ_BITS;
                        runs.push(Run {
                            room: room_name,
                            seq: 0,
                            first: None,
                            session: -1,
                            base,
                            chunk: None,
                        });
                        runs.len() - 1
                    }
                };
                let run = &mut runs[at];
                if run.first.is_some() && e.seq <= run.seq {
                    return Err(StoreError::OutOfOrder {
                        room: room_name.to_owned(),
                        seq: e.seq,
                    });
                }
                run.first.get_or_insert(e.seq);
                run.seq = e.seq;
                run.session = run.session.max(writer);
                let (kind, session, nick, text, msg_id, to): (_, _, &str, _, _, &[Recipient]) =
                    match &e.body {
                        EventBody::Presence {
                            session,
                            nick,
                            status,
                            ..
                        } => (
                            match status {
                                PresenceStatus::Online => KIND_ONLINE,
                                _ => KIND_OFFLINE,
                            },
                            *session,
                            nick,
                            None,
                            None,
                            &[],
                        ),
                        EventBody::Msg {
                            from,
                            nick,
                            to,
                            text,
                            id,
                            ..
                        } => (KIND_MSG, *from, nick, Some(&**text), id.as_deref(), to),
                        _ => continue,
                    };
                // A chunk holds increasing seqs, up to its bounds.
                if run.chunk.as_ref().is_some_and(|c| c.count >= CHUNK_EVENTS) {
                    flush_chunk(tx, run, buffers)?;
                }
                let c = run.chunk.get_or_insert_with(|| Chunk {
                    first: e.seq,
                    last: e.seq,
                    count: 0,
                    json: buffers.take(),
                });
                let mark = c.json.len();
                c.json.push(if c.count == 0 { '[' } else { ',' });
                Fields {
                    seq: e.seq,
                    ts: e.ts,
                    kind,
                    session: session.0,
                    nick,
                    text,
                    msg_id,
                    to: To::Live(to),
                }
                .push(&mut c.json);
                // The batch fails: what was gathered goes with it.
                let bytes = c.json.len() - mark - 1;
                if bytes > limits.event_bytes {
                    return Err(StoreError::EventTooLarge {
                        room: room_name.to_owned(),
                        seq: e.seq,
                        bytes,
                        max: limits.event_bytes,
                    });
                }
                // The closing `]` counted.
                if c.count > 0 && c.json.len() + 1 > CHUNK_BYTES {
                    // Past a page with this event: the chunk closes before
                    // it, and it begins the next one.
                    let mut json = buffers.take();
                    json.push('[');
                    json.push_str(&c.json[mark + 1..]);
                    c.json.truncate(mark);
                    flush_chunk(tx, run, buffers)?;
                    run.chunk = Some(Chunk {
                        first: e.seq,
                        last: e.seq,
                        count: 1,
                        json,
                    });
                } else {
                    c.last = e.seq;
                    c.count += 1;
                }
            }
            _ => {}
        }
    }
    for run in &mut runs {
        flush_chunk(tx, run, buffers)?;
    }
    for run in &runs {
        update_room(tx, run)?;
    }
    Ok(())
}

/// A room's last seq and highest writer, after a batch's events; the
/// first of them must be above what the room stored before.
fn update_room(tx: &rusqlite::Transaction<'_>, run: &Run<'_>) -> Result<(), StoreError> {
    let updated = tx
        .prepare_cached(
            "UPDATE rooms SET last_seq = max(last_seq, ?2), max_session = max(max_session, ?3)
             WHERE name = ?1 AND (?4 IS NULL OR last_seq < ?4)",
        )?
        .execute(params![
            run.room,
            run.seq as i64,
            run.session,
            run.first.map(|f| f as i64)
        ])?;
    if updated == 0 {
        let known = tx
            .prepare_cached("SELECT 1 FROM rooms WHERE name = ?1")?
            .exists(params![run.room])?;
        return Err(match (known, run.first) {
            (true, Some(seq)) => StoreError::OutOfOrder {
                room: run.room.to_owned(),
                seq,
            },
            _ => StoreError::UnknownRoom(run.room.to_owned()),
        });
    }
    Ok(())
}

/// Forget session `id`, whose id stays counted: no new session takes it
/// (it could read the old one's private messages).
fn forget_session(tx: &rusqlite::Transaction<'_>, id: i64) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('max_forgotten_session', ?1)
         ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
    )?
    .execute(params![id])?;
    tx.prepare_cached("DELETE FROM sessions WHERE id = ?1")?
        .execute(params![id])?;
    Ok(())
}
