//! The store thread's loop: each batch written in one transaction, a
//! failed one tried again (rolled back) each second until the store works
//! again, and retention run in small steps between batches.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatproto::{Event, EventBody, Record};
use chatstore::{Pruned, Store, StoreError};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::reader::read;
use super::{FromStore, Retention, ToStore, FAILURE_LOG_EVERY};

/// How often a failing store is tried again.
pub(super) const PROBE_EVERY: Duration = Duration::from_secs(1);

/// A failure the log left out is said once it has lasted this long: it is
/// no flap, mended at the next probe.
const STILL_FAILING: Duration = Duration::from_secs(2);

/// Retention deletes in batches of this many messages, one batch between
/// two requests, so writes never wait long behind it.
const PRUNE_BATCH: usize = 1_000;

/// The database file is gone (`e`): said once, at any pace.
fn say_lost(e: &StoreError) {
    warn!(
        error = %e,
        "the history database is gone; messages are refused until the server is restarted"
    );
}

pub(super) fn run(
    store: &mut Store,
    requests: &std_mpsc::Receiver<ToStore>,
    answers: &mpsc::UnboundedSender<FromStore>,
    retention: Retention,
) {
    // The batch that failed, kept to probe with while the store fails.
    let mut failed: Option<Vec<Record>> = None;
    let mut next_probe = Instant::now();
    // The first pass comes with `ToStore::Prune`, once the server listens.
    let mut next_prune = Instant::now() + retention.every;
    let mut pruning = false;
    let mut pruned = 0;
    let mut failures = crate::refuse::RefusalLog::every(FAILURE_LOG_EVERY);
    // Batches refused alone (a room past its keys): another kind, counted
    // apart, so that they hide no failure.
    let mut refusals = crate::refuse::RefusalLog::every(FAILURE_LOG_EVERY);
    // The failure under way: since when, and whether the log said so. One
    // left out is said once it lasts past [`STILL_FAILING`]: only a flap
    // (at the size cap, every large message fails and the next probe
    // works) goes unsaid.
    let mut outage: Option<(Instant, bool)> = None;
    // The database is gone (deleted under the server), and the hub was
    // told that messages are refused until a restart: so they are, even
    // if the file comes back (moved aside and back, say); no probe, and
    // every batch is answered with this.
    let mut lost: Option<std::path::PathBuf> = None;
    loop {
        // Requests first; the timed work below runs between them too, so
        // that retention and probes go on under load.
        let now = Instant::now();
        let mut due = next_prune;
        if failed.is_some() && lost.is_none() {
            due = due.min(next_probe);
        }
        // The count of what the last 10 s left out of the log, said when
        // they end (not only at the next failure, which may never come).
        for left_out in [failures.due(), refusals.due()].into_iter().flatten() {
            due = due.min(left_out);
        }
        let wait = if pruning {
            Duration::ZERO
        } else {
            due.saturating_duration_since(now)
        };
        match requests.recv_timeout(wait) {
            Ok(ToStore::Append { records, through }) => {
                let stored = match &lost {
                    // Not even tried: see `lost`.
                    Some(path) => Err(StoreError::Gone(path.clone())),
                    None => store.append(&records),
                };
                let answer = match stored {
                    Ok(()) => {
                        said_forgotten(&records);
                        FromStore::Stored(through)
                    }
                    // A batch past a room's keys (or with a seq out of
                    // order, a bug) can never be stored, but the next one
                    // may: refused alone (its messages are answered
                    // `unavailable`), and the store is up again.
                    Err(e @ (StoreError::KeysFull { .. } | StoreError::OutOfOrder { .. })) => {
                        match refusals.refused(Instant::now()) {
                            Some(n) => warn!(
                                error = %e,
                                more_since_last_line = (n > 0).then_some(n),
                                "a batch the history database cannot store was refused"
                            ),
                            None => {
                                debug!(error = %e, "a batch the history database cannot store was refused")
                            }
                        }
                        FromStore::Refused(cause(&e))
                    }
                    Err(e) => {
                        let newly_lost = lost.is_none() && matches!(e, StoreError::Gone(_));
                        let said = match failures.refused(Instant::now()) {
                            // Said whenever it comes: it is no flap.
                            _ if newly_lost => {
                                say_lost(&e);
                                true
                            }
                            Some(n) => {
                                warn!(
                                    error = %e,
                                    more_since_last_line = (n > 0).then_some(n),
                                    "the history database cannot store; messages are refused until it can"
                                );
                                true
                            }
                            None => {
                                debug!(error = %e, "the history database cannot store");
                                false
                            }
                        };
                        let o = outage.get_or_insert((Instant::now(), false));
                        o.1 |= said;
                        failed = Some(for_probe(records));
                        next_probe = Instant::now() + PROBE_EVERY;
                        if let StoreError::Gone(path) = &e {
                            lost = Some(path.clone());
                        }
                        FromStore::Failed {
                            cause: cause(&e),
                            until_restart: lost.is_some(),
                        }
                    }
                };
                if answers.send(answer).is_err() {
                    return;
                }
            }
            Ok(ToStore::Read {
                ticket,
                client,
                query,
            }) => {
                // Only when the reading thread did not start: the hub
                // hands reads to it directly otherwise.
                if answers.send(read(store, ticket, client, &query)).is_err() {
                    return;
                }
            }
            Ok(ToStore::Prune) => next_prune = Instant::now(),
            Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
            Err(std_mpsc::RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        if let Some(n) = failures.flush(now) {
            warn!(
                more_since_last_line = n,
                "the history database could not store more batches since the last line (each at debug)"
            );
        }
        if let Some(n) = refusals.flush(now) {
            warn!(
                more_since_last_line = n,
                "the history database refused more batches since the last line (each at debug)"
            );
        }
        if let Some(batch) = failed
            .as_mut()
            .filter(|_| now >= next_probe && lost.is_none())
        {
            next_probe = now + PROBE_EVERY;
            match probe_keyable(store, batch) {
                Ok(()) => {
                    failed = None;
                    let said = outage.take().is_some_and(|(_, said)| said);
                    if answers.send(FromStore::Recovered { said }).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    if let StoreError::Gone(what) = &e {
                        lost = Some(what.clone());
                        say_lost(&e);
                        if let Some((_, said)) = &mut outage {
                            *said = true;
                        }
                        if answers.send(FromStore::Lost(cause(&e))).is_err() {
                            return;
                        }
                    }
                    if let Some((since, said @ false)) = &mut outage {
                        let failing = now.saturating_duration_since(*since);
                        if failing >= STILL_FAILING {
                            // Worded as a failure of its own: the line
                            // before it may be an earlier "works again".
                            warn!(
                                error = %e,
                                failing_for_ms = failing.as_millis() as u64,
                                "the history database cannot store; messages are refused until it can"
                            );
                            *said = true;
                        }
                    }
                }
            }
        }
        if !pruning && now >= next_prune {
            pruning = true;
            next_prune = now + retention.every;
            if let Err(e) = store.forget_sessions(retention.sessions) {
                warn!(error = %e, "retention of sessions failed");
            }
        }
        if pruning {
            let wall = crate::wall_ms();
            let max_age = match retention.max_age_ms {
                0 => u64::MAX,
                n => n,
            };
            match store.prune_step(wall, max_age, retention.max_per_room, PRUNE_BATCH) {
                Ok(step) => {
                    pruned += step.deleted;
                    pruning = step.more;
                    let deleted = pruned;
                    if !pruning {
                        pruned = 0;
                    }
                    if let Some(report) = pruned_report(store, &step, deleted, !pruning) {
                        if answers.send(report).is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    warn!(error = %e, "retention failed; trying again later");
                    pruning = false;
                }
            }
        }
    }
}

/// What the hub is told after a step of retention (`deleted` so far in
/// the pass, which is `done` or not): where the history of each room the
/// step deleted from starts now (clients are told, and memory forgets
/// what went); the pass's total once it ends. Only those rooms are read:
/// reading every room after every step cost a step as much as the rooms
/// in the file, and every write waits behind it.
fn pruned_report(store: &Store, step: &Pruned, deleted: usize, done: bool) -> Option<FromStore> {
    let mut rooms = Vec::with_capacity(step.rooms.len());
    for name in &step.rooms {
        match store.room(name) {
            Ok(Some(r)) => rooms.push((r.name, r.epoch, r.oldest)),
            Ok(None) => {}
            Err(e) => {
                warn!(error = %e, "cannot read where history starts after retention");
                break;
            }
        }
    }
    let n = step.deleted;
    (n > 0 || (done && deleted > 0)).then_some(FromStore::Pruned {
        deleted,
        done,
        rooms,
    })
}

/// Probe with the failed batch, less the records of any room the store
/// cannot key or whose seqs are out of order (such records are refused alone whenever they come, and
/// this batch's messages were refused when it failed): `Ok` when the rest
/// would be stored, so the store works again.
pub(super) fn probe_keyable(store: &mut Store, batch: &mut Vec<Record>) -> Result<(), StoreError> {
    loop {
        match store.probe(batch) {
            Err(e @ (StoreError::KeysFull { .. } | StoreError::OutOfOrder { .. })) => {
                let (StoreError::KeysFull { room, .. } | StoreError::OutOfOrder { room, .. }) = &e
                else {
                    return Err(e);
                };
                let before = batch.len();
                batch.retain(|r| record_room(r) != Some(room.as_str()));
                if batch.len() == before {
                    return Err(e);
                }
            }
            other => return other,
        }
    }
}

/// The most text of one message a probe writes.
const PROBE_TEXT: usize = 1_024;

/// A failed batch as the probes write it: each message's text cut to
/// [`PROBE_TEXT`] bytes. Its messages were refused when it failed (they
/// are never stored); the probe asks whether the store takes a batch like
/// it again, not whether it has room for the largest one there was. A
/// batch of 60 KB messages that filled a capped store would otherwise
/// fail every probe while small messages would fit, and the store would
/// refuse everything until a restart.
fn for_probe(mut batch: Vec<Record>) -> Vec<Record> {
    for record in &mut batch {
        let Record::Event(e) = record else { continue };
        let EventBody::Msg { text, .. } = &e.body else {
            continue;
        };
        if text.len() <= PROBE_TEXT {
            continue;
        }
        let mut cut = PROBE_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut short = Event::clone(e);
        if let EventBody::Msg { text, .. } = &mut short.body {
            text.truncate(cut);
        }
        *record = Record::Event(Arc::new(short));
    }
    batch
}

/// Each room `records` forgot (past the caps of rooms), now deleted: as a
/// warning when it held a message (history deleted for want of room,
/// which a larger `--max-stored-rooms` would have kept), at debug when
/// only presence came to pass there (nothing anyone reads is lost).
fn said_forgotten(records: &[Record]) {
    for r in records {
        match r {
            Record::Forgotten {
                name, said: true, ..
            } => warn!(
                room = %name,
                "forgot #{name}, a room nobody is in, to make way for others (--max-rooms, --max-stored-rooms): its stored history is deleted"
            ),
            Record::Forgotten { name, .. } => tracing::debug!(
                room = %name,
                "forgot #{name}, a room nobody is in that never held a message, to make way for others"
            ),
            _ => {}
        }
    }
}

/// The room a record belongs to, if any.
pub(super) fn record_room(record: &Record) -> Option<&str> {
    match record {
        Record::Room { name, .. } | Record::Forgotten { name, .. } => Some(name),
        Record::Event(e) => Some(&e.room),
        _ => None,
    }
}

/// The cause of a failure, as a client is told it.
pub(super) fn cause(e: &StoreError) -> String {
    if let StoreError::KeysFull { room, why } = e {
        return format!("room #{room} cannot be stored: {why}");
    }
    if let StoreError::OutOfOrder { room, seq } = e {
        return format!("room #{room} cannot be stored: seq {seq} is out of order");
    }
    if let StoreError::DiskFull(_) = e {
        return "its disk is full".to_owned();
    }
    if let StoreError::AtCap { .. } = e {
        return "its history is at its size cap".to_owned();
    }
    if let StoreError::Gone(_) = e {
        return "its database file was deleted".to_owned();
    }
    let text = e.to_string();
    let lower = text.to_lowercase();
    if lower.contains("full") {
        // SQLite says the same of a full disk and of `--store-max-mib`.
        "its storage is full".to_owned()
    } else if lower.contains("i/o") || lower.contains("disk") {
        "a disk error".to_owned()
    } else {
        "its database failed".to_owned()
    }
}
