//! The history database's own thread: it takes the records the hub
//! gathered (a turn's, or several while it wrote the last) as one batch
//! and writes them in one transaction, so the hub never waits on the
//! disk. It also runs retention in small steps between batches, and while
//! the store fails it tries the failed batch again (rolled back) each
//! second, to say when it works again. Reads of history go to a second
//! thread with a read-only connection of its own, so a long one (a page
//! of a room where the reader may see few messages) never holds up a
//! commit.

use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatproto::{ClientId, Event, EventBody, Now, ReadPage, ReadQuery, Record, Server, SessionId};
use chatstore::{Pruned, Store, StoreError};
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// How often a failing store is tried again.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// How often, at most, a batch the store could not write is logged (at
/// its size cap, or on a disk nearly full, every large message fails and
/// the next probe works, as fast as a client sends them); the lines left
/// out are counted in the next. The hub leaves its side at debug.
pub const FAILURE_LOG_EVERY: Duration = Duration::from_secs(10);

/// A failure the log left out is said once it has lasted this long: it is
/// no flap, mended at the next probe.
const STILL_FAILING: Duration = Duration::from_secs(2);

/// Retention deletes in batches of this many messages, one batch between
/// two requests, so writes never wait long behind it.
const PRUNE_BATCH: usize = 1_000;

/// What the hub asks of the store thread.
#[derive(Debug)]
pub enum ToStore {
    /// Store these records, then answer `Stored { through }`.
    Append {
        /// The records, in order.
        records: Vec<Record>,
        /// The core's ticket for them.
        through: u64,
    },
    /// Read history for `client`, then answer `Read`.
    Read {
        /// The core's ticket for the read.
        ticket: u64,
        /// Who asked.
        client: ClientId,
        /// What to read.
        query: ReadQuery,
    },
    /// Run a retention pass now (once the server listens: a server
    /// restarted with a stricter limit, or after a long stop, would
    /// otherwise serve what the limits delete until the first period
    /// ends; and nothing may be logged before `listening on`).
    Prune,
}

/// What the store thread answers.
#[derive(Debug)]
pub enum FromStore {
    /// The batch with this ticket (and all before) is stored.
    Stored(u64),
    /// The batch could not be stored, for `cause`; `until_restart`:
    /// nothing will be in this run (the database file was deleted).
    Failed {
        /// Why, as a refused client is told.
        cause: String,
        /// Only a restart mends it.
        until_restart: bool,
    },
    /// A probe found the database gone while it failed for another cause
    /// (told as `Failed` before): only a restart mends it now.
    Lost(String),
    /// The batch can never be stored (a room past the database's keys):
    /// refused alone, and the store works on. One answer, so that nothing
    /// the hub reads between a failure and a recovery is refused too.
    Refused(String),
    /// The store works again after a failure; `said`: the log said the
    /// failure (it leaves out one mended at the next probe, within
    /// [`FAILURE_LOG_EVERY`] of the last it said), so this says the end.
    Recovered {
        /// The failure was logged.
        said: bool,
    },
    /// Retention committed a batch of deletions: each room's name, epoch
    /// and oldest stored seq now (the epoch, so that a report about a room
    /// since forgotten and begun again does not move the new one's start).
    /// Sent after every batch, not once a pass ends: until the hub hears,
    /// it serves from memory, and promises replays over, what is gone.
    Pruned {
        /// How many events the pass deleted so far.
        deleted: usize,
        /// Whether the pass has ended (`deleted` is then its total).
        done: bool,
        /// Each room's name, epoch and oldest stored seq (empty when the
        /// last batch of a pass deleted nothing).
        rooms: Vec<(String, String, u64)>,
    },
    /// The answer to a `Read`.
    Read {
        /// The core's ticket for the read.
        ticket: u64,
        /// Who asked.
        client: ClientId,
        /// The messages found (oldest first) and whether older ones exist.
        found: Result<ReadPage, String>,
    },
    /// The store thread ended while the hub still had its link (a panic):
    /// said because the reading thread, which the hub also feeds, keeps
    /// the answers' channel open.
    Stopped,
}

/// Sends [`FromStore::Stopped`] when the store thread's work ends, however
/// it ends (unwinding from a panic too).
struct SayStopped(mpsc::UnboundedSender<FromStore>);

impl Drop for SayStopped {
    fn drop(&mut self) {
        // No hub any more (shutdown) is fine.
        let _ = self.0.send(FromStore::Stopped);
    }
}

/// Retention settings.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Messages older than this go (milliseconds; 0: kept whatever their age).
    pub max_age_ms: u64,
    /// Per room, all but the newest this many go.
    pub max_per_room: u64,
    /// Sessions kept for resuming after a restart.
    pub sessions: usize,
    /// How often a retention pass starts.
    pub every: Duration,
}

/// The hub's end of the store thread.
pub struct StoreLink {
    /// Requests, in order.
    pub tx: std_mpsc::Sender<ToStore>,
    /// Reads straight to the reading thread (when it started), so that a
    /// write the disk holds up does not hold them too: the reading thread
    /// has its own connection, and what a read looks for was stored
    /// before it was asked (only what is stored is ever applied).
    /// `None`: send reads through `tx` and the store thread reads them.
    pub reads: Option<Reads>,
    /// Answers: batches in order, reads in the order asked (a read may
    /// be answered after batches handed over later: its own thread reads).
    pub rx: mpsc::UnboundedReceiver<FromStore>,
    /// The thread, joined at shutdown so the database closes cleanly.
    pub thread: Option<std::thread::JoinHandle<()>>,
}

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

/// Start the store thread around `store`, and its reading thread.
pub fn spawn(mut store: Store, retention: Retention) -> std::io::Result<StoreLink> {
    let (tx, requests) = std_mpsc::channel();
    let (answers, rx) = mpsc::unbounded_channel();
    let reader = store
        .path()
        .parent()
        .and_then(|dir| Store::open_read_only(dir).ok())
        .and_then(|db| spawn_reader(db, answers.clone()).ok());
    let (reads, reading) = reader.unzip();
    let thread = std::thread::Builder::new()
        .name("chat-store".into())
        .spawn(move || {
            let stopped = SayStopped(answers.clone());
            run(&mut store, &requests, &answers, retention);
            drop(stopped);
            // The reading thread stops once the hub drops its link (the
            // only sender of reads): wait for it.
            if let Some(thread) = reading {
                let _ = thread.join();
            }
        })?;
    Ok(StoreLink {
        tx,
        reads,
        rx,
        thread: Some(thread),
    })
}

/// Reads by the reading thread: requests in, answers to the hub.
pub type Reads = std_mpsc::Sender<(u64, ClientId, ReadQuery)>;

/// The thread that answers reads with a connection of its own (WAL lets
/// it read beside the writer); its requests' sender and its handle. It
/// takes the clients that wait in turn, one read each (see [`InTurn`]).
fn spawn_reader(
    db: Store,
    answers: mpsc::UnboundedSender<FromStore>,
) -> std::io::Result<(Reads, std::thread::JoinHandle<()>)> {
    let (tx, requests) = std_mpsc::channel::<(u64, ClientId, ReadQuery)>();
    let thread = std::thread::Builder::new()
        .name("chat-history".into())
        .spawn(move || {
            let mut waiting = InTurn::default();
            loop {
                if waiting.is_empty() {
                    match requests.recv() {
                        Ok(read) => waiting.push(read),
                        Err(_) => return,
                    }
                }
                // Everything asked meanwhile joins the turns first.
                while let Ok(read) = requests.try_recv() {
                    waiting.push(read);
                }
                let Some((ticket, client, query)) = waiting.pop() else {
                    continue;
                };
                if answers.send(read(&db, ticket, client, &query)).is_err() {
                    return;
                }
            }
        })?;
    Ok((tx, thread))
}

/// Reads waiting for the reading thread, taken a client at a time in
/// turn, each client's in the order it asked. A client that asked many
/// at once (the per-client bound counts a read only once it is asked, so
/// a burst of frames taken behind a slow commit can all become reads)
/// delays any other client's next read by one of its own, not by all of
/// them.
#[derive(Default)]
struct InTurn {
    /// Each waiting client's reads, oldest first.
    reads: std::collections::HashMap<ClientId, std::collections::VecDeque<(u64, ReadQuery)>>,
    /// The clients with reads waiting, the next to be served first.
    turns: std::collections::VecDeque<ClientId>,
}

impl InTurn {
    fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }

    /// A read asked: after the client's earlier ones; a client not
    /// waiting yet takes the last turn.
    fn push(&mut self, (ticket, client, query): (u64, ClientId, ReadQuery)) {
        let queue = self.reads.entry(client).or_default();
        if queue.is_empty() {
            self.turns.push_back(client);
        }
        queue.push_back((ticket, query));
    }

    /// The next client's oldest read; the client goes to the back of the
    /// turns if it has more.
    fn pop(&mut self) -> Option<(u64, ClientId, ReadQuery)> {
        let client = self.turns.pop_front()?;
        let queue = self.reads.get_mut(&client)?;
        let (ticket, query) = queue.pop_front()?;
        if queue.is_empty() {
            self.reads.remove(&client);
        } else {
            self.turns.push_back(client);
        }
        Some((ticket, client, query))
    }
}

/// The database file is gone (`e`): said once, at any pace.
fn say_lost(e: &StoreError) {
    warn!(
        error = %e,
        "the history database is gone; messages are refused until the server is restarted"
    );
}

/// The answer to a read, whatever happens: the asker's later frames wait
/// for it.
fn read(store: &Store, ticket: u64, client: ClientId, query: &ReadQuery) -> FromStore {
    let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.read(query).map_err(|e| e.to_string())
    }))
    .unwrap_or_else(|_| Err("the history reader failed".to_owned()));
    FromStore::Read {
        ticket,
        client,
        found,
    }
}

fn run(
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
fn probe_keyable(store: &mut Store, batch: &mut Vec<Record>) -> Result<(), StoreError> {
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
fn record_room(record: &Record) -> Option<&str> {
    match record {
        Record::Room { name, .. } | Record::Forgotten { name, .. } => Some(name),
        Record::Event(e) => Some(&e.room),
        _ => None,
    }
}

/// The cause of a failure, as a client is told it.
fn cause(e: &StoreError) -> String {
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

/// `export --room`: `#rust` as chatclient's `/join` takes it, and worded
/// so (chatproto's own text is for frames, which carry no `#`).
pub fn export_room(raw: &str) -> Result<String, String> {
    let name = raw.strip_prefix('#').unwrap_or(raw);
    chatproto::room_name(name).map_err(|_| {
        format!(
            "--room: not a room name: {}; a room is 1 to {} of a-z 0-9 - _ ., starting with a letter or digit, as in #rust",
            chatproto::escape_control(raw),
            chatproto::MAX_ROOM_LEN
        )
    })
}

/// What an export stops with when what reads its lines closed (`chatserver
/// export | head`): not a failure, as for any tool in a pipe.
pub const READER_GONE: &str = "the export's reader closed the pipe";

/// A failed write of an export's lines, as the export stops with it.
pub fn write_failed(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::BrokenPipe => READER_GONE.to_owned(),
        _ => format!("cannot write the export: {e}"),
    }
}

/// Print history as JSON lines, one `msg` object per line as on the wire
/// (with the sender's id), room by room in seq order.
pub fn export(dir: &Path, room: Option<&str>, since: u64) -> Result<(), String> {
    use std::io::Write;
    let store = Store::open_read_only(dir).map_err(|e| e.to_string())?;
    let rooms = store.rooms().map_err(|e| e.to_string())?;
    let names: Vec<String> = match room {
        Some(r) => {
            let canonical = export_room(r)?;
            if !rooms.iter().any(|x| x.name == canonical) {
                return Err(format!("no room #{canonical} in {}", dir.display()));
            }
            vec![canonical]
        }
        None => rooms.into_iter().map(|r| r.name).collect(),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for name in names {
        // A page is written once it is read, its read transaction ended:
        // a reader that pauses (`| less`) holds no snapshot that would
        // keep the server's checkpoints from emptying the log.
        for page in store.export(&name, since) {
            for e in page.map_err(|e| e.to_string())? {
                let line = serde_json::to_string(&e.wire(true, false))
                    .map_err(|e| format!("cannot write the export: {e}"))?;
                writeln!(out, "{line}").map_err(|e| write_failed(&e))?;
            }
        }
    }
    out.flush().map_err(|e| write_failed(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatproto::{Event, EventBody, SessionId};

    #[test]
    fn export_room_takes_a_hash_and_does_not_say_otherwise() {
        assert_eq!(export_room("#Rust").unwrap(), "rust");
        assert_eq!(export_room("lobby").unwrap(), "lobby");
        let err = export_room("Bad Room").unwrap_err();
        assert!(err.contains("not a room name: Bad Room"), "{err}");
        assert!(
            err.contains("as in #rust") && !err.contains("no #"),
            "{err}"
        );
    }

    /// Clients waiting for reads take turns, one read each, each
    /// client's reads in the order asked.
    #[test]
    fn reads_are_taken_a_client_at_a_time() {
        let q = || ReadQuery::new("lobby", chatproto::SessionId(1), 0, 10, 5);
        let mut waiting = InTurn::default();
        for ticket in 1..=4 {
            waiting.push((ticket, ClientId(1), q()));
        }
        waiting.push((5, ClientId(2), q()));
        waiting.push((6, ClientId(3), q()));
        waiting.push((7, ClientId(2), q()));
        let mut order = vec![];
        for _ in 0..3 {
            order.push(waiting.pop().map(|(t, c, _)| (t, c.0)));
        }
        // One asked while the others wait takes the last turn.
        waiting.push((8, ClientId(4), q()));
        while let Some((t, c, _)) = waiting.pop() {
            order.push(Some((t, c.0)));
        }
        let expect = [
            (1, 1),
            (5, 2),
            (6, 3),
            (2, 1),
            (7, 2),
            (8, 4),
            (3, 1),
            (4, 1),
        ];
        assert_eq!(order, expect.map(Some));
        assert!(waiting.is_empty() && waiting.reads.is_empty());
    }

    fn msg(room: &str, seq: u64, text: &str) -> Record {
        let body = EventBody::msg(SessionId(1), "alice", Vec::new(), text, None);
        Record::Event(std::sync::Arc::new(Event::new(room, seq, 1, body)))
    }

    /// Retention keeping 100 events a room, run once an hour (by hand in
    /// a test).
    const HOURLY_100: Retention = Retention {
        max_age_ms: 0,
        max_per_room: 100,
        sessions: 10,
        every: Duration::from_secs(3_600),
    };

    /// Stop the store's threads and wait for them.
    fn stop(mut link: StoreLink) {
        drop(link.tx);
        drop(link.reads);
        link.thread
            .take()
            .expect("a thread")
            .join()
            .expect("joined");
    }

    /// A store thread that panics still says it stopped: the hub, whose
    /// answers' channel the reading thread keeps open, would otherwise
    /// wait for its batch for ever.
    #[test]
    fn a_store_thread_that_panics_says_it_stopped() {
        let (answers, mut rx) = mpsc::unbounded_channel();
        let keep_open = answers.clone();
        let thread = std::thread::spawn(move || {
            let _stopped = SayStopped(answers);
            panic!("a store that broke");
        });
        assert!(thread.join().is_err(), "it panicked");
        assert!(matches!(rx.try_recv(), Ok(FromStore::Stopped)));
        drop(keep_open);
    }

    /// Retention reports where each room starts after every batch it
    /// commits, not once the pass ends: a pass deleting 1,400 events in
    /// batches of 1,000 tells the hub of the first 1,000 before it goes
    /// on (the first report was the pass's end, with all 1,400). Until
    /// the hub heard, it promised replays over what was gone.
    #[test]
    fn retention_reports_after_every_batch() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut store = Store::open(dir.path(), chatstore::Sync::Normal).expect("open");
        let mut batch = vec![Record::room("lobby", "e1")];
        batch.extend((1..=1_400 + 100).map(|n| msg("lobby", n, "m")));
        store.append(&batch).expect("append");
        let mut link = spawn(store, HOURLY_100).expect("store thread");
        link.tx.send(ToStore::Prune).expect("prune");
        let mut reports = Vec::new();
        while let Some(answer) = link.rx.blocking_recv() {
            let FromStore::Pruned {
                deleted,
                done,
                rooms,
            } = answer
            else {
                continue;
            };
            let oldest: Vec<u64> = rooms.iter().map(|(_, _, oldest)| *oldest).collect();
            reports.push((deleted, done, oldest));
            if done {
                break;
            }
        }
        assert_eq!(
            reports,
            [(1_000, false, vec![1_001]), (1_400, true, vec![1_401])]
        );
        stop(link);
    }

    /// The database file deleted while the server runs: the batch is
    /// refused, clients are told why, and no probe says it works again
    /// (SQLite would write on into the deleted file and lose it all).
    #[test]
    fn a_deleted_database_is_refused_and_says_so() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut store = Store::open(dir.path(), chatstore::Sync::Normal).expect("open");
        let batch = vec![Record::room("lobby", "e1"), msg("lobby", 1, "lost?")];
        std::fs::remove_file(dir.path().join(chatstore::DB_FILE)).expect("delete it");
        let err = store.append(&batch).expect_err("refused");
        assert_eq!(cause(&err), "its database file was deleted");
        assert!(matches!(store.probe(&batch), Err(StoreError::Gone(_))));
    }

    /// The database moved aside under a running server and back (the
    /// same file, so it checks as the one opened): the hub was told that
    /// messages are refused until a restart, and so they are. The next
    /// batch is refused without a look, and no probe says the store
    /// works again; the probe used to find the file back, and a server
    /// took messages after its clients were told none would be (found by
    /// a review).
    #[test]
    fn a_database_lost_stays_lost_until_a_restart() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::open(dir.path(), chatstore::Sync::Normal).expect("open");
        let mut link = spawn(store, HOURLY_100).expect("store thread");
        let mut append = |records: Vec<Record>, through: u64| {
            link.tx
                .send(ToStore::Append { records, through })
                .expect("sent");
            link.rx.blocking_recv().expect("an answer")
        };
        let first = append(
            vec![Record::room("lobby", "e1"), msg("lobby", 1, "kept")],
            1,
        );
        assert!(matches!(first, FromStore::Stored(1)), "{first:?}");
        let db = dir.path().join(chatstore::DB_FILE);
        let aside = dir.path().join("aside.db");
        std::fs::rename(&db, &aside).expect("moved aside");
        let failed = append(vec![msg("lobby", 2, "refused")], 2);
        assert!(
            matches!(
                failed,
                FromStore::Failed {
                    until_restart: true,
                    ..
                }
            ),
            "{failed:?}"
        );
        std::fs::rename(&aside, &db).expect("moved back");
        let again = append(vec![msg("lobby", 2, "refused too")], 3);
        assert!(
            matches!(
                again,
                FromStore::Failed {
                    until_restart: true,
                    ..
                }
            ),
            "{again:?}"
        );
        // Three probes' time: none is made (each would say `Recovered`).
        std::thread::sleep(PROBE_EVERY * 3);
        let said = link.rx.try_recv();
        assert!(said.is_err(), "{said:?}");
        stop(link);
    }

    /// A failed batch that holds a room past the highest seq probes as
    /// working once that room's records are left out, and as failing
    /// while anything else in it cannot be stored.
    #[test]
    fn a_probe_leaves_out_a_room_the_store_cannot_key() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut store = Store::open(dir.path(), chatstore::Sync::Normal).expect("open");
        let mut batch = vec![
            Record::room("lobby", "e1"),
            msg("lobby", 1, "kept"),
            Record::room("rust", "e2"),
            msg("rust", chatstore::MAX_SEQ + 1, "past the keys"),
            msg("lobby", 2, "kept too"),
        ];
        assert!(matches!(
            store.probe(&batch),
            Err(StoreError::KeysFull { .. })
        ));
        probe_keyable(&mut store, &mut batch).expect("the rest can be stored");
        let rooms: Vec<_> = batch.iter().filter_map(record_room).collect();
        assert_eq!(rooms, ["lobby", "lobby", "lobby"]);

        // A store that cannot write fails the probe whatever is left out,
        // though the room past its keys comes first.
        store.set_max_bytes(Some(1)).expect("cap");
        let mut big = vec![
            Record::room("rust", "e2"),
            msg("rust", chatstore::MAX_SEQ + 1, "past the keys"),
            Record::room("ops", "e3"),
        ];
        big.extend((1..=200).map(|n| msg("ops", n, &"x".repeat(2_000))));
        assert!(matches!(
            store.probe(&big),
            Err(StoreError::KeysFull { .. })
        ));
        assert!(matches!(
            probe_keyable(&mut store, &mut big),
            Err(StoreError::AtCap { .. })
        ));
    }
}
