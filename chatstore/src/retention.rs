//! Retention: deleting events past an age or a count, in bounded steps.

use rusqlite::params;

use crate::chunk::{decode_chunk, insert_chunk, Fields, Stored};
use crate::{Store, StoreError, MAX_SEQ, SEQ_BITS};

/// What one step of retention did ([`Store::prune_step`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Events deleted.
    pub deleted: usize,
    /// The pass is not over: call again (it goes on from where this step
    /// stopped).
    pub more: bool,
    /// The rooms it deleted from, by name: where their history starts
    /// changed.
    pub rooms: Vec<String>,
}

impl Store {
    /// Retention, in bounded steps: delete at most `batch` events older
    /// than `now_ms - max_age_ms`, or below the newest `max_per_room`
    /// seqs of their room (seqs given to events never stored, as while
    /// the store failed, count too). Returns how many went; call again
    /// while it is `batch`. See [`prune_step`](Store::prune_step).
    pub fn prune(
        &mut self,
        now_ms: u64,
        max_age_ms: u64,
        max_per_room: u64,
        batch: usize,
    ) -> Result<usize, StoreError> {
        // Steps until `batch` went or the pass is over: each either
        // deletes or goes on to rooms it has not looked at.
        let mut deleted = 0;
        loop {
            let step = self.prune_step(now_ms, max_age_ms, max_per_room, batch - deleted)?;
            deleted += step.deleted;
            if !step.more || deleted >= batch {
                return Ok(deleted);
            }
        }
    }

    /// One step of a retention pass, as [`prune`](Store::prune), saying
    /// whether the pass goes on and which rooms it deleted from. A step
    /// goes on from the room the last one stopped in, so a pass over `R`
    /// rooms costs a chunk read a room in all, not in every step; and a
    /// step looks at no more than `batch` rooms.
    pub fn prune_step(
        &mut self,
        now_ms: u64,
        max_age_ms: u64,
        max_per_room: u64,
        batch: usize,
    ) -> Result<Pruned, StoreError> {
        let cutoff = now_ms.saturating_sub(max_age_ms).min(i64::MAX as u64) as i64;
        let now = now_ms.min(i64::MAX as u64) as i64;
        let from = self.prune_at.take().unwrap_or_default();
        let tx = self.db.transaction()?;
        let mut deleted = 0;
        // The room this step stopped in with more to look at, if any.
        let mut stopped_at = None;
        let mut visited = 0;
        // The rooms deleted from, by name, for the answer.
        let mut touched = Vec::new();
        {
            // Room by room, each room's oldest chunks first, through the
            // key, so a pass with nothing to delete reads a chunk a room
            // (one query joining rooms to events read every event, 0.2 s
            // per million, every pass). From where the last step stopped:
            // starting at the first room every step, a pass over many
            // rooms cost each step a read of every room before it.
            let mut rooms_st = tx.prepare_cached(
                "SELECT no, last_seq, name FROM rooms WHERE name >= ?1 ORDER BY name",
            )?;
            let mut rooms = rooms_st.query(params![from])?;
            let keep = max_per_room.min(i64::MAX as u64) as i64;
            let mut oldest = tx.prepare_cached(
                "SELECT id, events FROM chunks WHERE id >= ?1 AND id <= ?2 ORDER BY id",
            )?;
            // What becomes of a chunk: deleted, or its survivors.
            let mut edits: Vec<(i64, i64, Vec<Stored>)> = Vec::new();
            // Each room deleted from: its number, highest seq deleted, name.
            let mut gone: Vec<(i64, u64, String)> = Vec::new();
            while let Some(room) = rooms.next()? {
                let (no, last_seq, name): (i64, i64, String) =
                    (room.get(0)?, room.get(1)?, room.get(2)?);
                let mut highest = 0;
                // A step looks at no more rooms than it may delete events:
                // a pass over a file of many rooms with little to delete
                // is many short steps, not one long one.
                if visited == batch.max(1) {
                    stopped_at = Some(name);
                    break;
                }
                visited += 1;
                // The age scan of this room was cut short (too many
                // events stamped in the future before the old ones).
                let mut cut_short = false;
                let base = no << SEQ_BITS;
                // Past the count: the events below the newest `keep`.
                let below = last_seq.saturating_sub(keep).max(0) as u64;
                // Too old: the room's oldest events, in seq order, up to
                // the first one young enough. A room's `ts` follows its
                // seq but for a wall clock that was stepped: after a step
                // back, what follows waits for what came before; a stamp
                // in the future (a clock that was ahead) is stepped over,
                // kept until its time comes but holding nothing back. At
                // most `batch` events are looked at for their age.
                let mut aged = false;
                let mut looked = 0;
                let mut rows = oldest.query(params![base, base + MAX_SEQ as i64])?;
                while let Some(r) = rows.next()? {
                    let id: i64 = r.get(0)?;
                    // A chunk that cannot be read (a row edited by hand)
                    // stops this room's retention, not every room's: the
                    // room's reads say what is wrong.
                    let Some(events) = r
                        .get_ref(1)?
                        .as_str()
                        .ok()
                        .and_then(|json| decode_chunk(json).ok())
                    else {
                        break;
                    };
                    let total = events.len();
                    let mut survivors = Vec::with_capacity(total);
                    let mut stop = false;
                    for e in events {
                        let ts = e.ts.min(i64::MAX as u64) as i64;
                        if !aged {
                            looked += 1;
                        }
                        let old = !aged && ts < cutoff;
                        // Young enough: the age scan ends here.
                        if !aged && ts >= cutoff && ts <= now {
                            aged = true;
                        }
                        if stop || deleted == batch || !(e.seq <= below || old) {
                            // Nothing after it can go: too young, and
                            // within the count.
                            if aged && e.seq > below {
                                stop = true;
                            }
                            survivors.push(e);
                        } else {
                            deleted += 1;
                            highest = highest.max(e.seq);
                        }
                        if looked >= batch && !aged {
                            aged = true;
                            cut_short = true;
                        }
                    }
                    if survivors.len() < total {
                        edits.push((base, id, survivors));
                    }
                    if stop || deleted == batch || (aged && (id - base) as u64 > below) {
                        break;
                    }
                }
                if highest > 0 {
                    gone.push((no, highest, name.clone()));
                }
                // Stopped in this room with events left to look at: the
                // next step begins here. (Cut short but having deleted
                // something, it makes progress there next time; having
                // deleted nothing, the stamps in the future hold the rest
                // until their time, and the pass goes on past it.)
                if deleted == batch || (cut_short && highest > 0) {
                    stopped_at = Some(name);
                    break;
                }
            }
            drop(rooms);
            drop(rooms_st);
            drop(oldest);
            // How far retention has deleted: a message it kept below that
            // (stamped in the future) is not where history starts.
            for (no, highest, name) in gone {
                tx.prepare_cached("UPDATE rooms SET pruned = max(pruned, ?2) WHERE no = ?1")?
                    .execute(params![no, highest as i64])?;
                touched.push(name);
            }
            for (base, id, survivors) in edits {
                tx.prepare_cached("DELETE FROM chunks WHERE id = ?1")?
                    .execute(params![id])?;
                if let (Some(first), Some(last)) = (survivors.first(), survivors.last()) {
                    let mut json = String::from("[");
                    for (i, e) in survivors.iter().enumerate() {
                        if i > 0 {
                            json.push(',');
                        }
                        Fields::of(e).push(&mut json);
                    }
                    json.push(']');
                    insert_chunk(&tx, base, first.seq, last.seq, &json)?;
                }
            }
        }
        tx.commit()?;
        let more = stopped_at.is_some();
        self.prune_at = stopped_at;
        Ok(Pruned {
            deleted,
            more,
            rooms: touched,
        })
    }
}
