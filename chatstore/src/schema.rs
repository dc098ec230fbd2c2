//! The schema: creating it, and migrating an older file to this
//! version, step by step.

use crate::chunk::{KIND_MSG, KIND_OFFLINE, KIND_ONLINE, LEGACY_KIND};
use crate::open::classify;
use crate::{Store, StoreError, MAX_ROOMS, MAX_SEQ, SCHEMA_VERSION, SEQ_BITS};

impl Store {
    pub(crate) fn migrate(&mut self, from: i64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self
            .db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| classify(e, &path))?;
        if from < 1 {
            tx.execute_batch(
                "CREATE TABLE rooms (
                     name TEXT PRIMARY KEY,
                     epoch TEXT NOT NULL,
                     last_seq INTEGER NOT NULL
                 ) WITHOUT ROWID;
                 CREATE TABLE events (
                     room TEXT NOT NULL,
                     seq INTEGER NOT NULL,
                     ts INTEGER NOT NULL,
                     kind INTEGER NOT NULL,
                     session INTEGER NOT NULL,
                     nick TEXT NOT NULL,
                     online INTEGER,
                     text TEXT,
                     msg_id TEXT,
                     to_all INTEGER NOT NULL,
                     PRIMARY KEY (room, seq)
                 ) WITHOUT ROWID;
                 CREATE TABLE recipients (
                     room TEXT NOT NULL,
                     seq INTEGER NOT NULL,
                     position INTEGER NOT NULL,
                     session INTEGER NOT NULL,
                     nick TEXT NOT NULL,
                     PRIMARY KEY (room, seq, position)
                 ) WITHOUT ROWID;
                 CREATE INDEX events_by_ts ON events (ts);",
            )?;
        }
        if from < 2 {
            // v2: sessions, so that a client can resume across a restart.
            // Only a hash of the token is kept.
            tx.execute_batch(
                "CREATE TABLE sessions (
                     id INTEGER PRIMARY KEY,
                     nick TEXT NOT NULL,
                     token_hash BLOB NOT NULL
                 );",
            )?;
        }
        if from < 3 {
            // v3: a message's recipients in its own row (their sessions as
            // ",12,45," to look one up, their nicks one per line), not a
            // row each in a table of their own: a private message is one
            // insert, not two.
            tx.execute_batch(
                "ALTER TABLE events ADD COLUMN to_sessions TEXT;
                 ALTER TABLE events ADD COLUMN to_nicks TEXT;
                 UPDATE events SET
                     to_sessions = (SELECT ',' || group_concat(session, ',') || ','
                                    FROM (SELECT session FROM recipients r
                                          WHERE r.room = events.room AND r.seq = events.seq
                                          ORDER BY position)),
                     to_nicks = (SELECT group_concat(nick, char(10))
                                 FROM (SELECT nick FROM recipients r
                                       WHERE r.room = events.room AND r.seq = events.seq
                                       ORDER BY position))
                 WHERE NOT to_all;
                 DROP TABLE recipients;",
            )?;
        }
        if from < 4 {
            // v4: no index on `ts`. Retention by age reads each room's
            // oldest events through the primary key instead, and every
            // append saved a second B-tree insert per event.
            tx.execute_batch("DROP INDEX IF EXISTS events_by_ts;")?;
        }
        if from < 5 {
            // v5: each room remembers the highest session that wrote an
            // event into it, so that finding the next free session id at
            // start reads one row per room instead of every event. Found
            // here once, by that read.
            tx.execute_batch(
                "ALTER TABLE rooms ADD COLUMN max_session INTEGER NOT NULL DEFAULT -1;
                 UPDATE rooms SET max_session = coalesce(
                     (SELECT max(session) FROM events WHERE events.room = rooms.name), -1);",
            )?;
        }
        if from < 6 {
            // v6: an event's key is one integer, the room's number << 40
            // plus its seq, instead of the room's name and the seq: an
            // append is a rowid B-tree insert at the room's end (about 22%
            // fewer instructions per row, a file 15% smaller; BENCHMARKS).
            // Rows are copied once, in the old key's order, which is the
            // new one's (rooms are numbered in name order): no sort. The
            // copy needs free space for a second table while it runs; the
            // file keeps its size after (a VACUUM shrinks it). The view
            // `history` shows them with their room's name, for the sqlite3
            // tool.
            let (rooms, bad): (i64, i64) = tx.query_row(
                &format!(
                    "SELECT (SELECT count(*) FROM rooms),
                            (SELECT count(*) FROM events WHERE seq < 0 OR seq > {MAX_SEQ}
                                 OR room NOT IN (SELECT name FROM rooms))
                            + (SELECT count(*) FROM rooms WHERE last_seq > {MAX_SEQ})"
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if rooms as u64 > MAX_ROOMS || bad > 0 {
                return Err(StoreError::KeysFull {
                    room: "(migrating to schema v6)".to_owned(),
                    why: "more rooms or a higher seq than schema v6 can key, \
                          or events of a room it does not list",
                });
            }
            tx.execute_batch(&format!(
                "ALTER TABLE rooms ADD COLUMN no INTEGER;
                 UPDATE rooms SET no = n.no FROM
                     (SELECT name, row_number() OVER (ORDER BY name) AS no FROM rooms) AS n
                 WHERE n.name = rooms.name;
                 CREATE UNIQUE INDEX rooms_by_no ON rooms (no);
                 ALTER TABLE events RENAME TO events_v5;
                 CREATE TABLE events (
                     id INTEGER PRIMARY KEY,
                     ts INTEGER NOT NULL,
                     kind INTEGER NOT NULL,
                     session INTEGER NOT NULL,
                     nick TEXT NOT NULL,
                     online INTEGER,
                     text TEXT,
                     msg_id TEXT,
                     to_all INTEGER NOT NULL,
                     to_sessions TEXT,
                     to_nicks TEXT
                 );
                 INSERT INTO events
                     SELECT (r.no << {SEQ_BITS}) | e.seq, e.ts, e.kind, e.session, e.nick,
                            e.online, e.text, e.msg_id, e.to_all, e.to_sessions, e.to_nicks
                     FROM events_v5 e JOIN rooms r ON r.name = e.room
                     ORDER BY e.room, e.seq;
                 DROP TABLE events_v5;
                 CREATE VIEW history AS
                     SELECT r.name AS room, e.id & {MAX_SEQ} AS seq, e.ts, e.kind, e.session,
                            e.nick, e.online, e.text, e.msg_id, e.to_all, e.to_sessions,
                            e.to_nicks
                     FROM rooms r JOIN events e
                         ON e.id >= r.no << {SEQ_BITS} AND e.id <= (r.no << {SEQ_BITS}) + {MAX_SEQ};"
            ))?;
        }
        if from < 7 {
            // v7: a room the server forgot is deleted, events and all (the
            // store held every room ever named). The highest session that
            // wrote into a forgotten room stays counted here.
            tx.execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;",
            )?;
        }
        if from < 8 {
            // v8: a room's events are stored a run at a time, one row
            // ("chunk") per run of up to CHUNK_EVENTS events of a batch,
            // keyed by the room's number << SEQ_BITS plus the seq of its
            // last event; the events are a JSON array, each one an array
            // (seq, ts, kind, session, nick, then text, msg_id,
            // to_sessions, to_nicks as far as any is there; a presence's
            // status is in its kind: see `Stored`). SQLite's cost is per row (binding,
            // the record, the B-tree insert), and a stored message cost
            // about 5,600 instructions as a row of its own (BENCHMARKS).
            // Old rows are grouped by blocks of 16 seqs (a page holds
            // 16 messages of up to about 250 bytes); the view
            // `history` shows one row per event as before.
            tx.execute_batch(&format!(
                "DROP VIEW IF EXISTS history;
                 CREATE TABLE chunks (
                     id INTEGER PRIMARY KEY,
                     first INTEGER NOT NULL,
                     events TEXT NOT NULL
                 );
                 INSERT INTO chunks (id, first, events)
                     SELECT max(id), min(id) & {MAX_SEQ},
                            json_group_array(json_array(id & {MAX_SEQ}, ts, {LEGACY_KIND},
                                session, nick, text, msg_id, to_sessions, to_nicks) ORDER BY id)
                     FROM events GROUP BY id >> 4 ORDER BY 1;
                 DROP TABLE events;
                 CREATE VIEW history AS
                     SELECT r.name AS room, json_extract(j.value, '$[0]') AS seq,
                            json_extract(j.value, '$[1]') AS ts,
                            CASE json_extract(j.value, '$[2]') WHEN {KIND_MSG} THEN 1 ELSE 0 END
                                AS kind,
                            json_extract(j.value, '$[3]') AS session,
                            json_extract(j.value, '$[4]') AS nick,
                            CASE json_extract(j.value, '$[2]') WHEN {KIND_ONLINE} THEN 1
                                WHEN {KIND_OFFLINE} THEN 0 END AS online,
                            json_extract(j.value, '$[5]') AS text,
                            json_extract(j.value, '$[6]') AS msg_id,
                            json_extract(j.value, '$[7]') IS NULL AS to_all,
                            json_extract(j.value, '$[7]') AS to_sessions,
                            json_extract(j.value, '$[8]') AS to_nicks
                     FROM rooms r
                         JOIN chunks c
                             ON c.id >= r.no << {SEQ_BITS}
                             AND c.id <= (r.no << {SEQ_BITS}) + {MAX_SEQ},
                         json_each(c.events) AS j;"
            ))?;
        }
        if from < 9 {
            // v9: sessions are ranked by when they were last active (a
            // counter the store raises at each new session, resume and
            // lost connection), and those attached are marked `live`:
            // retention and a restart keep the sessions last active and
            // every live one, not the newest ids (a session connected for
            // long lost its row to newer ones that came and went). Old
            // rows keep their order: ranked by id.
            tx.execute_batch(
                "ALTER TABLE sessions ADD COLUMN active INTEGER NOT NULL DEFAULT 0;
                 ALTER TABLE sessions ADD COLUMN live INTEGER NOT NULL DEFAULT 0;
                 UPDATE sessions SET active = id + 1;
                 CREATE INDEX sessions_by_active ON sessions (active);",
            )?;
        }
        if from < 10 {
            // v10: each room remembers the highest seq retention deleted:
            // history starts above it, though a message stamped in the
            // future (a clock that was ahead) is kept below it until its
            // time. Unknown for older files: 0.
            tx.execute_batch("ALTER TABLE rooms ADD COLUMN pruned INTEGER NOT NULL DEFAULT 0;")?;
        }
        if from < 11 {
            // v11: a session that lost its connection keeps the room and
            // seq of each message whose id it remembered then (JSON runs
            // `[[room, [seq, ...]], ...]`, oldest first): a restarted
            // server gives those ids back, whatever came after them, so
            // that a resend is still a duplicate. Written once per lost
            // connection, nothing per message. Unknown for older rows:
            // NULL.
            tx.execute_batch("ALTER TABLE sessions ADD COLUMN sent TEXT;")?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        Ok(())
    }
}
