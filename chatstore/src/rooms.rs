//! A room's row as a batch changes it: numbered, begun, begun again (its
//! events deleted) or forgotten.

use rusqlite::{params, OptionalExtension};

use crate::{StoreError, MAX_ROOMS};

/// A room's number: this batch's latest word on it in `found` (a room it
/// forgot has none: its events are refused), else the committed `known`
/// one, else the file's (then added to `found`).
pub(crate) fn room_number(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    known: &std::collections::HashMap<String, i64>,
    found: &mut Vec<(String, Option<i64>)>,
) -> Result<i64, StoreError> {
    match found.iter().rev().find(|(r, _)| r == name) {
        Some((_, Some(no))) => return Ok(*no),
        Some((_, None)) => {}
        None => {
            if let Some(no) = known.get(name) {
                return Ok(*no);
            }
        }
    }
    let no = tx
        .prepare_cached("SELECT no FROM rooms WHERE name = ?1")?
        .query_row(params![name], |r| r.get::<_, i64>(0))
        .optional()?
        .ok_or_else(|| StoreError::UnknownRoom(name.to_owned()))?;
    found.push((name.to_owned(), Some(no)));
    Ok(no)
}

/// A room the server forgot: its events and its row go, and its number is
/// free; its highest writer stays counted (sessions only go up).
pub(crate) fn forget_room(tx: &rusqlite::Transaction<'_>, name: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO meta (key, value)
             SELECT 'max_forgotten_session', max_session FROM rooms WHERE name = ?1
         ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
        params![name],
    )?;
    delete_events(tx, name)?;
    tx.execute("DELETE FROM rooms WHERE name = ?1", params![name])?;
    Ok(())
}

/// Every event of the room `name` (its number's whole key range).
fn delete_events(tx: &rusqlite::Transaction<'_>, name: &str) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM chunks
         WHERE id >= ((SELECT no FROM rooms WHERE name = ?1) << 40)
           AND id <= ((SELECT no FROM rooms WHERE name = ?1) << 40) + 1099511627775",
        params![name],
    )?;
    Ok(())
}

/// What a room record did.
pub(crate) enum Began {
    /// The room is new: its number.
    New(i64),
    /// The same epoch again: only its last seq may have gone up.
    Same,
    /// A new epoch: the old history went, the room began again.
    Again,
}

/// A room record: new, the same epoch again, or a new epoch (the old
/// history goes: the room began again). The room's last seq becomes at
/// least `seq`, the highest the server gave out (seqs that clients saw
/// while the store failed are never given again after a restart).
pub(crate) fn begin_room(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    epoch: &str,
    seq: u64,
) -> Result<Began, StoreError> {
    let old: Option<String> = tx
        .prepare_cached("SELECT epoch FROM rooms WHERE name = ?1")?
        .query_row(params![name], |r| r.get(0))
        .optional()?;
    match old {
        Some(old) if old == epoch => {
            if seq > 0 {
                tx.prepare_cached("UPDATE rooms SET last_seq = max(last_seq, ?2) WHERE name = ?1")?
                    .execute(params![name, seq as i64])?;
            }
            Ok(Began::Same)
        }
        Some(_) => {
            // The room keeps its number; its events go.
            delete_events(tx, name)?;
            tx.execute(
                "UPDATE rooms SET epoch = ?2, last_seq = ?3, pruned = 0 WHERE name = ?1",
                params![name, epoch, seq as i64],
            )?;
            Ok(Began::Again)
        }
        None => {
            // The next number above all; once those are taken, the lowest
            // free one (forgotten rooms give theirs up).
            let mut no: i64 =
                tx.query_row("SELECT coalesce(max(no), 0) + 1 FROM rooms", [], |r| {
                    r.get(0)
                })?;
            if no as u64 > MAX_ROOMS {
                no = tx.query_row(
                    "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM rooms WHERE no = 1) THEN 1
                            ELSE (SELECT min(no) + 1 FROM rooms r
                                  WHERE NOT EXISTS (SELECT 1 FROM rooms s WHERE s.no = r.no + 1))
                            END",
                    [],
                    |r| r.get(0),
                )?;
            }
            if no as u64 > MAX_ROOMS {
                return Err(StoreError::KeysFull {
                    room: name.to_owned(),
                    why: "the database holds as many rooms as it can number",
                });
            }
            tx.execute(
                "INSERT INTO rooms (name, epoch, last_seq, no) VALUES (?1, ?2, ?3, ?4)",
                params![name, epoch, seq as i64, no],
            )?;
            Ok(Began::New(no))
        }
    }
}
