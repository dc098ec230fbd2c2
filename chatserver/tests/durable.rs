//! History on disk, end to end (README "History on disk", PROTOCOL.md
//! §5.8): the real server on a data directory, killed with SIGKILL under
//! load or stopped with SIGTERM and started again on the same directory;
//! its faults at start and while running; `chatserver export`.
//!
//! Every server here runs on its own temporary directory. Nothing sleeps
//! to synchronise: every wait reads the frames or lines it expects against
//! a deadline.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{kind, run_to_exit, Client, Next, RealClient, Server, WAIT};
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};

// ---------------------------------------------------------------------
// Helpers: starting on a directory, reading it back.
// ---------------------------------------------------------------------

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

/// A server keeping history in `dir`, with `extra` flags.
fn durable(dir: &Path, extra: &[&str]) -> Server {
    let mut flags = vec!["--data-dir", path_str(dir)];
    flags.extend_from_slice(extra);
    Server::start(&flags)
}

/// SIGTERM: `client` is told and closed, and the server exits cleanly.
fn stop_cleanly(server: &mut Server, client: &mut Client) {
    server.sigterm();
    client.expect_kind("notice");
    client.expect_closed();
    let status = server.wait_exit(WAIT);
    assert!(status.success(), "exit status {status:?}");
}

/// A port on 127.0.0.1 that was free a moment ago: the kill test needs the
/// restarted server where the real chatclient will reconnect.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// `chatserver export --data-dir DIR extra...`, which must succeed; one
/// JSON object per line.
fn export(dir: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["export", "--data-dir", path_str(dir)];
    args.extend_from_slice(extra);
    let run = run_to_exit(&args, WAIT);
    assert!(
        run.status.success() && run.stderr.is_empty(),
        "export {extra:?}: {run:?}"
    );
    run.stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("export line {l:?} is not JSON: {e}"))
        })
        .collect()
}

/// One stored event, as the `events` table holds it.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    seq: u64,
    ts: u64,
    /// 0 presence, 1 msg.
    kind: i64,
    nick: String,
    online: Option<bool>,
    text: Option<String>,
    id: Option<String>,
}

/// What the database holds: every room's epoch and last seq, and its events.
#[derive(Debug, Clone, PartialEq)]
struct Stored {
    rooms: BTreeMap<String, (String, u64)>,
    events: BTreeMap<String, Vec<Row>>,
}

impl Stored {
    /// Read `dir/chat.db` (read-only; safe beside a running server).
    fn read(dir: &Path) -> Stored {
        let db = Connection::open_with_flags(dir.join("chat.db"), OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open chat.db read-only");
        db.busy_timeout(WAIT).expect("busy timeout");
        let mut rooms = BTreeMap::new();
        let mut st = db
            .prepare("SELECT name, epoch, last_seq FROM rooms")
            .expect("rooms");
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)? as u64,
                ))
            })
            .expect("rooms");
        for row in rows {
            let (name, epoch, last) = row.expect("a room");
            rooms.insert(name, (epoch, last));
        }
        let mut events: BTreeMap<String, Vec<Row>> = BTreeMap::new();
        let mut st = db
            .prepare(
                "SELECT room, seq, ts, kind, nick, online, text, msg_id FROM history
                 ORDER BY room, seq",
            )
            .expect("events");
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Row {
                        seq: r.get::<_, i64>(1)? as u64,
                        ts: r.get::<_, i64>(2)? as u64,
                        kind: r.get(3)?,
                        nick: r.get(4)?,
                        online: r.get(5)?,
                        text: r.get(6)?,
                        id: r.get(7)?,
                    },
                ))
            })
            .expect("events");
        for row in rows {
            let (room, row) = row.expect("an event");
            events.entry(room).or_default().push(row);
        }
        Stored { rooms, events }
    }

    /// The room's last seq as the `rooms` table says.
    fn last(&self, room: &str) -> u64 {
        self.rooms
            .get(room)
            .unwrap_or_else(|| panic!("no room {room} stored: {:?}", self.rooms))
            .1
    }

    fn epoch(&self, room: &str) -> &str {
        &self.rooms[room].0
    }

    /// Every room's events are seq 1, 2, ... its last seq, with none
    /// missing (nothing was pruned and the store never failed here).
    fn assert_gapless(&self, when: &str) {
        for (room, (_, last)) in &self.rooms {
            let seqs: Vec<u64> = self
                .events
                .get(room)
                .map(|rows| rows.iter().map(|r| r.seq).collect())
                .unwrap_or_default();
            let want: Vec<u64> = (1..=*last).collect();
            assert_eq!(
                seqs, want,
                "{when}: #{room}'s stored seqs are not 1..={last}"
            );
        }
    }

    /// The stored event of `room` with `seq`.
    fn event(&self, room: &str, seq: u64) -> Option<&Row> {
        let rows = self.events.get(room)?;
        rows.binary_search_by_key(&seq, |r| r.seq)
            .ok()
            .map(|i| &rows[i])
    }
}

/// Milliseconds since the Unix epoch, as the server stamps `ts`.
fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

fn str_of<'a>(frame: &'a Value, key: &str) -> &'a str {
    frame[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key:?} in {frame}"))
}

fn u64_of(frame: &Value, key: &str) -> u64 {
    frame[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no integer {key:?} in {frame}"))
}

// ---------------------------------------------------------------------
// Helpers: a raw client speaking v2.
// ---------------------------------------------------------------------

/// What a v2 join (or an enter) brought, up to the joiner's own presence
/// in each room.
#[derive(Debug, Default)]
struct Entry {
    welcome: Value,
    entered: HashMap<String, Value>,
    replay: HashMap<String, Vec<Value>>,
    presence: HashMap<String, Value>,
}

/// Read frames until `nick`'s own online presence in every one of
/// `rooms`, checking the order §5.2 promises: `entered`, `online`s, the
/// replay, then the presence.
fn read_entries(c: &mut Client, nick: &str, rooms: &[&str], entry: &mut Entry) {
    let mut open: Option<String> = None;
    for _ in 0..10_000 {
        if rooms.iter().all(|r| entry.presence.contains_key(*r)) {
            return;
        }
        let f = c.recv_frame();
        match kind(&f) {
            "entered" => {
                assert!(open.is_none(), "{nick}: entered inside another entry: {f}");
                let room = str_of(&f, "room").to_owned();
                open = Some(room.clone());
                entry.entered.insert(room, f);
            }
            "online" => {}
            "msg" => {
                let room = open
                    .as_deref()
                    .unwrap_or_else(|| panic!("{nick}: a msg outside an entry: {f}"));
                assert_eq!(f["room"], room, "{nick}: {f}");
                assert_eq!(
                    f["replay"], true,
                    "{nick}: a replayed msg without replay: {f}"
                );
                entry.replay.entry(room.to_owned()).or_default().push(f);
            }
            "presence" if f["nick"] == nick && f["status"] == "online" => {
                let room = open.take().unwrap_or_else(|| panic!("{nick}: {f}"));
                assert_eq!(f["room"], room.as_str(), "{nick}: {f}");
                let entered = u64_of(&entry.entered[&room], "seq");
                assert_eq!(
                    u64_of(&f, "seq"),
                    entered + 1,
                    "{nick}: its presence must follow entered.seq"
                );
                entry.presence.insert(room, f);
            }
            _ => panic!("{nick}: unexpected while entering {rooms:?}: {f}"),
        }
    }
    panic!("{nick}: did not enter {rooms:?}");
}

/// Join as `nick` (v2), entering `rooms`, optionally resuming `resume`.
fn join_v2(c: &mut Client, nick: &str, rooms: &[&str], resume: Option<&str>) -> Entry {
    let mut join = json!({"type": "join", "nick": nick, "rooms": rooms});
    if let Some(token) = resume {
        join["resume"] = json!(token);
    }
    c.send_frame(&join);
    let mut entry = Entry {
        welcome: c.expect_kind("welcome"),
        ..Entry::default()
    };
    assert_eq!(entry.welcome["nick"], nick, "{}", entry.welcome);
    read_entries(c, nick, rooms, &mut entry);
    entry
}

/// `enter{room, since, epoch}`, read up to the own presence.
fn enter_since(c: &mut Client, nick: &str, room: &str, since: u64, epoch: &str) -> Entry {
    c.send_frame(&json!({"type": "enter", "room": room, "since": since, "epoch": epoch}));
    let mut entry = Entry::default();
    read_entries(c, nick, &[room], &mut entry);
    entry
}

/// Send a broadcast msg with an id and return its echo.
fn say(c: &mut Client, room: &str, text: &str, id: &str) -> Value {
    c.send_frame(&json!({"type": "msg", "room": room, "text": text, "id": id}));
    let echo = c.expect_kind("msg");
    assert_eq!(echo["id"], id, "{echo}");
    assert_eq!(echo["text"], text, "{echo}");
    assert_eq!(echo["room"], room, "{echo}");
    echo
}

// ---------------------------------------------------------------------
// 1. SIGKILL under load.
// ---------------------------------------------------------------------

/// The raw clients of the kill test; each sends `PER_CLIENT` messages, at
/// most `WINDOW` unanswered at once, alternating between the rooms.
const RAW: [&str; 4] = ["alice", "bob", "carol", "dave"];
const ROOMS: [&str; 2] = ["lobby", "rust"];
const PER_CLIENT: usize = 200;
const WINDOW: usize = 8;
/// Lines the real chatclient types before the kill, and while the server is down.
const REAL_LINES: usize = 30;

fn msg_room(nick: &str, i: usize) -> &'static str {
    ROOMS[(i + nick.len()) % ROOMS.len()]
}

fn msg_id(nick: &str, i: usize) -> String {
    format!("{nick}-{i:03}")
}

fn msg_text(nick: &str, i: usize) -> String {
    format!("{nick} {i:03} {} {}", msg_room(nick, i), "x".repeat(i % 40))
}

/// SplitMix64: a seeded generator for the kill moment.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// Where the restarted server is, and what the store held at the kill.
#[derive(Debug, Clone)]
struct Restart {
    addr: SocketAddr,
    stored_last: HashMap<String, u64>,
}

/// A raw client's state; it runs on a thread of its own.
struct Raw {
    nick: String,
    conn: Client,
    token: String,
    /// Which connection this is (0 before the kill, 1 after).
    generation: usize,
    epochs: HashMap<String, String>,
    /// `entered.seq` of the first entry: every msg after it must reach us.
    first: HashMap<String, u64>,
    /// The last seq received per room (msg or presence).
    last: HashMap<String, u64>,
    in_room: HashSet<String>,
    replaying: HashSet<String>,
    /// Every msg received, per room, in arrival order.
    got: HashMap<String, Vec<Value>>,
    /// Every msg and presence received on the first connection.
    before_kill: Vec<Value>,
    /// Sent, not answered: index -> (room, text).
    pending: BTreeMap<usize, (String, String)>,
    /// Answered: id -> (room, seq, text).
    echoes: HashMap<String, (String, u64, String)>,
    next: usize,
    fins: HashSet<(String, String)>,
    restart: Option<Restart>,
    /// The resumed welcome and entries, checked by the test.
    resumed: Option<(Value, Vec<Value>)>,
    echo_tx: Sender<()>,
}

/// What a raw client's thread is told.
struct Control {
    restart: Receiver<Restart>,
    fin: Receiver<()>,
    done: Sender<String>,
}

impl Raw {
    fn join(server: &Server, nick: &str, echo_tx: Sender<()>) -> Raw {
        let mut conn = server.connect();
        let entry = join_v2(&mut conn, nick, &ROOMS, None);
        assert_eq!(entry.welcome["resumed"], false, "{}", entry.welcome);
        let mut raw = Raw {
            nick: nick.to_owned(),
            conn,
            token: str_of(&entry.welcome, "session").to_owned(),
            generation: 0,
            epochs: HashMap::new(),
            first: HashMap::new(),
            last: HashMap::new(),
            in_room: HashSet::new(),
            replaying: HashSet::new(),
            got: HashMap::new(),
            before_kill: Vec::new(),
            pending: BTreeMap::new(),
            echoes: HashMap::new(),
            next: 0,
            fins: HashSet::new(),
            restart: None,
            resumed: None,
            echo_tx,
        };
        for room in ROOMS {
            let entered = &entry.entered[room];
            let seq = u64_of(entered, "seq");
            assert!(
                entry.replay.get(room).is_none_or(|r| r.is_empty()),
                "{nick}: nothing was said before the clients joined"
            );
            raw.first.insert(room.to_owned(), seq);
            raw.epochs
                .insert(room.to_owned(), str_of(entered, "epoch").to_owned());
            let presence = &entry.presence[room];
            raw.last.insert(room.to_owned(), u64_of(presence, "seq"));
            raw.before_kill.push(presence.clone());
            raw.in_room.insert(room.to_owned());
        }
        raw
    }

    fn fail(&self, what: impl std::fmt::Display) -> ! {
        panic!("{} (connection {}): {what}", self.nick, self.generation)
    }

    /// Handle one frame from the server.
    fn handle(&mut self, f: Value) {
        match kind(&f) {
            "msg" => {
                let room = str_of(&f, "room").to_owned();
                let seq = u64_of(&f, "seq");
                let last = self.last[&room];
                if seq <= last {
                    self.fail(format!("msg out of order or twice (last {last}): {f}"));
                }
                if self.replaying.contains(&room) {
                    if f["replay"] != true {
                        self.fail(format!("a msg in a replay without replay: {f}"));
                    }
                } else if !self.in_room.contains(&room) {
                    self.fail(format!("a msg of a room it is not in: {f}"));
                } else if !f["replay"].is_null() {
                    self.fail(format!("a live msg marked replay: {f}"));
                }
                self.last.insert(room.clone(), seq);
                if self.generation == 0 {
                    self.before_kill.push(f.clone());
                }
                if f["text"] == "fin" {
                    self.fins
                        .insert((room.clone(), str_of(&f, "from").to_owned()));
                }
                if f["from"] == self.nick.as_str() {
                    let id = f["id"]
                        .as_str()
                        .unwrap_or_else(|| self.fail(format!("own msg without its id: {f}")))
                        .to_owned();
                    if !id.ends_with("-fin") {
                        let i = self.index_of(&id);
                        match self.pending.remove(&i) {
                            Some((r, text)) => {
                                if r != room || f["text"] != text.as_str() {
                                    self.fail(format!("echo of {id} changed: {f}"));
                                }
                                self.echoes.insert(id, (room.clone(), seq, text));
                                let _ = self.echo_tx.send(());
                            }
                            None => self.fail(format!("a second copy of its own {id}: {f}")),
                        }
                    }
                }
                self.got.entry(room).or_default().push(f);
            }
            "presence" => {
                let room = str_of(&f, "room").to_owned();
                let seq = u64_of(&f, "seq");
                let last = self.last[&room];
                if seq <= last {
                    self.fail(format!("presence out of order or twice (last {last}): {f}"));
                }
                self.last.insert(room.clone(), seq);
                if self.generation == 0 {
                    self.before_kill.push(f.clone());
                }
                if f["nick"] == self.nick.as_str() {
                    if f["status"] != "online" || !self.replaying.remove(&room) {
                        self.fail(format!("an own presence it did not ask for: {f}"));
                    }
                    self.in_room.insert(room);
                }
            }
            "entered" => {
                let room = str_of(&f, "room").to_owned();
                let seq = u64_of(&f, "seq");
                let Some(restart) = &self.restart else {
                    self.fail(format!("entered before any restart: {f}"));
                };
                if f["recovered"] != true {
                    self.fail(format!("re-entered without recovering: {f}"));
                }
                if f["epoch"] != self.epochs[&room].as_str() {
                    self.fail(format!("the epoch changed: {f}"));
                }
                if seq < restart.stored_last[&room] || seq < self.last[&room] {
                    self.fail(format!(
                        "entered.seq behind the store ({}) or what it saw ({}): {f}",
                        restart.stored_last[&room], self.last[&room]
                    ));
                }
                if let Some((_, entries)) = &mut self.resumed {
                    entries.push(f.clone());
                }
                self.replaying.insert(room);
            }
            "online" | "pong" => {}
            "ping" => {
                let _ = self.conn.try_send_frame(&json!({"type": "pong"}));
            }
            "error" if f["code"] == "duplicate" => {
                // A resend the store already had: it was answered before.
                let id = str_of(&f, "id").to_owned();
                let i = self.index_of(&id);
                let Some((room, text)) = self.pending.remove(&i) else {
                    self.fail(format!("duplicate for an id not pending: {f}"));
                };
                if f["room"] != room.as_str() {
                    self.fail(format!("duplicate for the wrong room: {f}"));
                }
                self.echoes.insert(id, (room, u64_of(&f, "seq"), text));
                let _ = self.echo_tx.send(());
            }
            _ => self.fail(format!("unexpected frame: {f}")),
        }
    }

    fn index_of(&self, id: &str) -> usize {
        id.strip_prefix(&format!("{}-", self.nick))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| self.fail(format!("not one of its ids: {id}")))
    }

    /// Send message `i`; false if the socket refused it.
    fn send(&mut self, i: usize) -> bool {
        let room = msg_room(&self.nick, i);
        let text = msg_text(&self.nick, i);
        let frame = json!({"type": "msg", "room": room, "text": text, "id": msg_id(&self.nick, i)});
        self.pending.insert(i, (room.to_owned(), text));
        self.conn.try_send_frame(&frame).is_ok()
    }

    /// Read one frame (or the end of the connection, then resume).
    fn read_one(&mut self, within: Duration, ctl: &Control) {
        match self.conn.next_within(within) {
            Next::Frame(f) => self.handle(f),
            Next::Eof | Next::Reset => self.resume(ctl),
            Next::TimedOut if within >= WAIT => self.fail("no frame from the server in time"),
            Next::TimedOut => {}
        }
    }

    /// The server is gone: wait for it to come back, resume the session,
    /// enter each room from the last seq seen, and resend what was not
    /// answered, in order.
    fn resume(&mut self, ctl: &Control) {
        if self.generation > 0 {
            self.fail("lost a second connection");
        }
        let restart = ctl
            .restart
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| self.fail(format!("no restart: {e}")));
        for room in ROOMS {
            let (last, stored) = (self.last[room], restart.stored_last[room]);
            if last > stored {
                self.fail(format!(
                    "saw seq {last} of #{room}, but the store held only {stored}"
                ));
            }
        }
        self.restart = Some(restart.clone());
        self.generation = 1;
        self.in_room.clear();
        self.conn = Client::new(TcpStream::connect(restart.addr).expect("reconnect"));
        let join = json!({"type": "join", "nick": self.nick, "rooms": [], "resume": self.token});
        self.conn.send_frame(&join);
        let welcome = self.conn.expect_kind("welcome");
        if welcome["resumed"] != true || welcome["nick"] != self.nick.as_str() {
            self.fail(format!("not resumed: {welcome}"));
        }
        self.token = str_of(&welcome, "session").to_owned();
        self.resumed = Some((welcome, Vec::new()));
        for room in ROOMS {
            let enter = json!({"type": "enter", "room": room, "since": self.last[room],
                               "epoch": self.epochs[room]});
            self.conn.send_frame(&enter);
            for _ in 0..100_000 {
                if self.in_room.contains(room) {
                    break;
                }
                let f = self.conn.recv_frame();
                self.handle(f);
            }
            if !self.in_room.contains(room) {
                self.fail(format!("never back in #{room}"));
            }
        }
        let resend: Vec<usize> = self.pending.keys().copied().collect();
        for i in resend {
            if !self.send(i) {
                self.fail("the restarted server refused a write");
            }
        }
    }

    /// The whole run: send everything under load (resuming once on the
    /// way), say so, then say `fin` in every room when told and read until
    /// every client's `fin` arrived.
    fn run(mut self, ctl: Control) -> Raw {
        let deadline = Instant::now() + Duration::from_secs(25);
        while self.next < PER_CLIENT || !self.pending.is_empty() {
            if Instant::now() > deadline {
                self.fail("sending took too long");
            }
            let mut broken = false;
            while !broken && self.pending.len() < WINDOW && self.next < PER_CLIENT {
                broken = !self.send(self.next);
                self.next += 1;
            }
            // A refused write: the server is gone. What it sent first is
            // still worth reading, up to the end of the connection.
            self.read_one(WAIT, &ctl);
        }
        ctl.done.send(self.nick.clone()).expect("tell the test");
        loop {
            if Instant::now() > deadline {
                self.fail("no fin in time");
            }
            match ctl.fin.try_recv() {
                Ok(()) => break,
                Err(mpsc::TryRecvError::Empty) => self.read_one(Duration::from_millis(50), &ctl),
                Err(mpsc::TryRecvError::Disconnected) => self.fail("the test went away"),
            }
        }
        for room in ROOMS {
            // One id per room: a session's ids are one set for all rooms.
            let id = format!("{}-{room}-fin", self.nick);
            let frame = json!({"type": "msg", "room": room, "text": "fin", "id": id});
            if self.conn.try_send_frame(&frame).is_err() {
                self.fail("could not say fin");
            }
        }
        let want: HashSet<(String, String)> = ROOMS
            .iter()
            .flat_map(|r| RAW.iter().map(move |n| (r.to_string(), n.to_string())))
            .collect();
        while !want.is_subset(&self.fins) {
            if Instant::now() > deadline {
                self.fail(format!("fins seen: {:?}", self.fins));
            }
            self.read_one(WAIT, &ctl);
        }
        self
    }
}

/// The client threads, joined as they finish; a thread that panicked fails
/// the test with its message.
struct Workers {
    running: Vec<Option<JoinHandle<Raw>>>,
    done: Vec<Raw>,
}

impl Workers {
    fn check(&mut self) {
        for slot in &mut self.running {
            if slot.as_ref().is_some_and(|h| h.is_finished()) {
                let handle = slot.take().expect("checked");
                match handle.join() {
                    Ok(raw) => self.done.push(raw),
                    Err(p) => std::panic::resume_unwind(p),
                }
            }
        }
    }

    /// The next message on `rx`, within [`WAIT`], watching the threads.
    fn recv<T>(&mut self, rx: &Receiver<T>, what: &str) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(v) => return v,
                Err(RecvTimeoutError::Timeout) => {
                    self.check();
                    assert!(Instant::now() < deadline, "no {what} within {WAIT:?}");
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.check();
                    panic!("no {what}: every sender is gone");
                }
            }
        }
    }

    fn join_all(mut self) -> Vec<Raw> {
        let deadline = Instant::now() + WAIT;
        while self.running.iter().any(Option::is_some) {
            assert!(Instant::now() < deadline, "client threads did not end");
            self.check();
            // Polling for threads that end: bounded, not synchronisation.
            thread::sleep(Duration::from_millis(10));
        }
        self.done
    }
}

fn seed() -> u64 {
    match std::env::var("DURABLE_SEED") {
        Ok(s) => s.parse().expect("DURABLE_SEED is a number"),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    }
}

/// The test. Four raw clients send into two rooms as fast as their
/// windows allow while the real chatclient types into the lobby; the server
/// is killed with SIGKILL after a random number of echoes and started again
/// on the same directory and port.
///
/// * Everything any client received before the kill was in the store at
///   the kill, and every echo is in the export exactly once.
/// * The store's seqs are gapless before and after; what was stored before
///   the kill is unchanged, and the first event after the restart is the
///   last stored seq + 1.
/// * The raw clients resume (`resumed: true`), re-enter with `since` and
///   the epoch (`recovered: true`), and end having received every message
///   of each room after they first entered exactly once, in seq order.
/// * The chatclient reconnects by itself and shows every lobby message
///   (its own lines included) exactly once, in the stored order.
#[test]
fn sigkill_under_load_loses_no_acknowledged_message_and_everyone_resumes() {
    let seed = seed();
    println!("kill test seed {seed} (DURABLE_SEED={seed} picks the same kill moment)");
    let mut rng = Rng(seed);
    let total = (RAW.len() * PER_CLIENT) as u64;
    let kill_after = rng.range(10, total * 3 / 4);
    println!("killing after {kill_after} of {total} echoes");

    let dir = tempfile::tempdir().expect("temporary directory");
    let listen = format!("127.0.0.1:{}", free_port());
    let flags = [
        "--listen",
        &listen,
        "--rate",
        "0",
        // Every replay here must be whole: the test is about the store.
        "--replay-limit",
        "100000",
        "--replay-bytes",
        "8388608",
        "--outbound-queue-bytes",
        "33554432",
        "--log-level",
        "warn",
    ];
    let mut server = durable(dir.path(), &flags);

    // The real client first, so it sees the lobby's every message.
    let mut eve = RealClient::start("eve", &listen, &[("CHATCLIENT_RECONNECT_MIN_MS", "50")]);
    eve.expect_line("its own presence", |l| l == "* eve is online");
    let (echo_tx, echo_rx) = mpsc::channel();
    let raws: Vec<Raw> = RAW
        .iter()
        .map(|n| Raw::join(&server, n, echo_tx.clone()))
        .collect();
    drop(echo_tx);
    let (done_tx, done_rx) = mpsc::channel();
    let mut restart_txs = Vec::new();
    let mut fin_txs = Vec::new();
    let mut workers = Workers {
        running: Vec::new(),
        done: Vec::new(),
    };
    for raw in raws {
        let (restart_tx, restart) = mpsc::channel();
        let (fin_tx, fin) = mpsc::channel();
        restart_txs.push(restart_tx);
        fin_txs.push(fin_tx);
        let ctl = Control {
            restart,
            fin,
            done: done_tx.clone(),
        };
        workers
            .running
            .push(Some(thread::spawn(move || raw.run(ctl))));
    }
    let eve_lines: Vec<String> = (0..2 * REAL_LINES).map(|i| format!("eve {i:03}")).collect();
    eve.type_lines(&eve_lines[..REAL_LINES]);

    for n in 0..kill_after {
        workers.recv(&echo_rx, &format!("echo {n}"));
    }
    server.sigkill();
    let killed_ms = wall_ms();

    // What the store held at the kill.
    let at_kill = Stored::read(dir.path());
    at_kill.assert_gapless("at the kill");
    for room in ROOMS {
        let rows = &at_kill.events[room];
        assert_eq!(
            rows.last().map(|r| r.seq),
            Some(at_kill.last(room)),
            "#{room}: rooms.last_seq is not its last event"
        );
    }
    let stored_raw_msgs = at_kill
        .events
        .values()
        .flatten()
        .filter(|r| r.kind == 1 && RAW.contains(&r.nick.as_str()))
        .count() as u64;
    assert!(
        stored_raw_msgs >= kill_after && stored_raw_msgs < total,
        "the kill came after {stored_raw_msgs} stored messages, not mid-load ({kill_after} echoes of {total})"
    );
    println!(
        "stored at the kill: {stored_raw_msgs} raw messages, last seqs {:?}",
        at_kill.rooms
    );
    let export_at_kill = export(dir.path(), &[]);
    let stored_last: HashMap<String, u64> = ROOMS
        .iter()
        .map(|r| (r.to_string(), at_kill.last(r)))
        .collect();

    // Typed while the server is down: sent once it is back.
    eve.type_lines(&eve_lines[REAL_LINES..]);
    server = durable(dir.path(), &flags);
    assert_eq!(server.addr().to_string(), listen, "restarted elsewhere");
    for tx in &restart_txs {
        tx.send(Restart {
            addr: server.addr(),
            stored_last: stored_last.clone(),
        })
        .expect("a client thread went away");
    }
    for _ in 0..RAW.len() {
        workers.recv(&done_rx, "client done");
    }
    eve.expect_line("its last line's echo", |l| {
        l == format!("eve: {}", eve_lines[2 * REAL_LINES - 1])
    });
    for tx in &fin_txs {
        tx.send(()).expect("a client thread went away");
    }
    let raws = workers.join_all();
    for raw in &raws {
        let entered: Vec<&Value> = raw.resumed.iter().flat_map(|(_, e)| e).collect();
        let seqs: Vec<(&Value, &Value)> = entered.iter().map(|e| (&e["room"], &e["seq"])).collect();
        let replayed = raw.got.values().flatten().filter(|m| m["replay"] == true);
        println!(
            "{}: re-entered at {seqs:?}, {} msgs replayed",
            raw.nick,
            replayed.count()
        );
    }
    let fins: Vec<String> = RAW.iter().map(|n| format!("{n}: fin")).collect();
    eve.expect_all(&fins);
    let (status, stderr, shown) = eve.finish();
    println!(
        "chatclient: {:?}",
        shown
            .iter()
            .filter(|l| l.starts_with("* "))
            .collect::<Vec<_>>()
    );
    assert!(status.success(), "chatclient exited {status}: {stderr}");
    assert!(stderr.is_empty(), "chatclient's stderr: {stderr}");

    server.sigterm();
    let status = server.wait_exit(WAIT);
    assert!(status.success(), "the restarted server exited {status:?}");

    check_at_kill(&raws, &at_kill, &export_at_kill, &stored_last, kill_after);
    let at_end = Stored::read(dir.path());
    check_at_end(&at_kill, &at_end, &stored_last, killed_ms);
    let exported = export(dir.path(), &[]);
    let by_room = check_export(&exported, &at_end);
    for raw in &raws {
        check_raw(raw, &exported, &by_room);
    }
    check_chatclient(&shown, &by_room, &eve_lines);
}

/// Everything a raw client received on its first connection was in the
/// store at the kill, and each echo among them in the export then, once.
fn check_at_kill(
    raws: &[Raw],
    at_kill: &Stored,
    export_at_kill: &[Value],
    stored_last: &HashMap<String, u64>,
    kill_after: u64,
) {
    for raw in raws {
        for f in &raw.before_kill {
            let room = str_of(f, "room");
            let seq = u64_of(f, "seq");
            let row = at_kill.event(room, seq).unwrap_or_else(|| {
                panic!(
                    "{}: received {f}, but the store did not hold it at the kill",
                    raw.nick
                )
            });
            match kind(f) {
                "msg" => {
                    assert_eq!(row.kind, 1, "{f} stored as {row:?}");
                    assert_eq!(f["from"], row.nick.as_str(), "{f} stored as {row:?}");
                    assert_eq!(
                        f["text"],
                        row.text.as_deref().unwrap_or(""),
                        "{f} vs {row:?}"
                    );
                }
                _ => {
                    assert_eq!(row.kind, 0, "{f} stored as {row:?}");
                    assert_eq!(f["nick"], row.nick.as_str(), "{f} stored as {row:?}");
                    assert_eq!(row.online, Some(f["status"] == "online"), "{f} vs {row:?}");
                }
            }
        }
        for room in ROOMS {
            assert_eq!(
                raw.epochs[room],
                at_kill.epoch(room),
                "{}: #{room}",
                raw.nick
            );
        }
    }
    let mut echoed_before_kill = 0;
    for raw in raws {
        for (id, (room, seq, text)) in &raw.echoes {
            if *seq > stored_last[room] {
                continue;
            }
            let hits: Vec<&Value> = export_at_kill
                .iter()
                .filter(|m| m["from"] == raw.nick.as_str() && m["id"] == id.as_str())
                .collect();
            assert_eq!(hits.len(), 1, "{id} in the export at the kill: {hits:?}");
            assert_eq!(
                (
                    hits[0]["room"].as_str(),
                    hits[0]["seq"].as_u64(),
                    hits[0]["text"].as_str()
                ),
                (Some(room.as_str()), Some(*seq), Some(text.as_str())),
                "{id}"
            );
            echoed_before_kill += 1;
        }
    }
    assert!(
        echoed_before_kill >= kill_after as usize,
        "{echoed_before_kill} echoes before the kill"
    );
}

/// What was stored before the kill is unchanged, and the restarted server
/// went on from the next seq, in the same epoch.
fn check_at_end(
    at_kill: &Stored,
    at_end: &Stored,
    stored_last: &HashMap<String, u64>,
    killed_ms: u64,
) {
    at_end.assert_gapless("at the end");
    for room in ROOMS {
        let last = stored_last[room];
        assert_eq!(
            at_end.epoch(room),
            at_kill.epoch(room),
            "#{room}: a new epoch"
        );
        assert_eq!(
            at_end.events[room][..last as usize],
            at_kill.events[room][..],
            "#{room}: what was stored before the kill changed"
        );
        let after = &at_end.events[room][last as usize..];
        assert!(!after.is_empty(), "#{room}: nothing after the restart");
        assert_eq!(
            after[0].seq,
            last + 1,
            "#{room}: the first seq after the restart"
        );
        for row in after {
            assert!(
                row.ts >= killed_ms,
                "#{room}: {row:?} stamped before the kill ({killed_ms})"
            );
        }
    }
}

/// The export is the stored msgs, room by room in seq order; by room.
fn check_export<'a>(exported: &'a [Value], at_end: &Stored) -> HashMap<&'a str, Vec<&'a Value>> {
    let mut by_room: HashMap<&str, Vec<&Value>> = HashMap::new();
    for m in exported {
        assert_eq!(m["type"], "msg", "{m}");
        assert_eq!(m["to"], json!([]), "{m}");
        by_room.entry(str_of(m, "room")).or_default().push(m);
    }
    for room in ROOMS {
        let seqs: Vec<u64> = by_room[room].iter().map(|m| u64_of(m, "seq")).collect();
        let stored: Vec<u64> = at_end.events[room]
            .iter()
            .filter(|r| r.kind == 1)
            .map(|r| r.seq)
            .collect();
        assert_eq!(
            seqs, stored,
            "#{room}: the export is not the stored msgs in order"
        );
    }
    by_room
}

/// A raw client's messages are each stored once, in its room, in the order
/// it sent them, as acknowledged; it resumed; and it received every message
/// of each room after its first entry, once, in order.
fn check_raw(raw: &Raw, exported: &[Value], by_room: &HashMap<&str, Vec<&Value>>) {
    let nick = raw.nick.as_str();
    let mine: Vec<&Value> = exported
        .iter()
        .filter(|m| m["from"] == nick && m["text"] != "fin")
        .collect();
    let ids: Vec<String> = mine.iter().map(|m| str_of(m, "id").to_owned()).collect();
    let mut want: Vec<String> = (0..PER_CLIENT).map(|i| msg_id(nick, i)).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    want.sort();
    assert_eq!(
        sorted, want,
        "{nick}: its messages in the export, each once"
    );
    for room in ROOMS {
        let order: Vec<usize> = mine
            .iter()
            .filter(|m| m["room"] == room)
            .map(|m| raw.index_of(str_of(m, "id")))
            .collect();
        let mut in_order = order.clone();
        in_order.sort_unstable();
        assert_eq!(
            order, in_order,
            "{nick}: #{room} stored out of sending order"
        );
    }
    for m in &mine {
        let i = raw.index_of(str_of(m, "id"));
        assert_eq!(m["text"], msg_text(nick, i), "{m}");
        assert_eq!(m["room"], msg_room(nick, i), "{m}");
    }
    assert_eq!(raw.echoes.len(), PER_CLIENT, "{nick}: answers");
    for (id, (room, seq, text)) in &raw.echoes {
        let m = mine
            .iter()
            .find(|m| m["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} acknowledged, not in the export"));
        assert_eq!(
            (str_of(m, "room"), u64_of(m, "seq")),
            (room.as_str(), *seq),
            "{id}"
        );
        assert_eq!(str_of(m, "text"), text, "{id}");
    }
    // The session resumed, and re-entered every room recovered.
    let (welcome, entries) = raw.resumed.as_ref().expect("resumed once");
    assert_eq!(welcome["resumed"], true, "{welcome}");
    assert_eq!(entries.len(), ROOMS.len(), "{nick}: {entries:?}");
    // Every message of each room after its first entry, once, in order.
    for room in ROOMS {
        let got: Vec<(u64, &str, &str)> = raw.got[room]
            .iter()
            .map(|m| (u64_of(m, "seq"), str_of(m, "from"), str_of(m, "text")))
            .collect();
        let want: Vec<(u64, &str, &str)> = by_room[room]
            .iter()
            .filter(|m| u64_of(m, "seq") > raw.first[room])
            .map(|m| (u64_of(m, "seq"), str_of(m, "from"), str_of(m, "text")))
            .collect();
        assert_eq!(got, want, "{nick}: #{room} as received vs as stored");
    }
}

/// The real chatclient showed every lobby message (its own lines among
/// them) once, in the stored order, and said it reconnected, with no gap.
fn check_chatclient(shown: &[String], by_room: &HashMap<&str, Vec<&Value>>, eve_lines: &[String]) {
    let nicks: Vec<&str> = RAW.iter().copied().chain(["eve"]).collect();
    let chat: Vec<&String> = shown
        .iter()
        .filter(|l| nicks.iter().any(|n| l.starts_with(&format!("{n}: "))))
        .collect();
    let lobby: Vec<String> = by_room["lobby"]
        .iter()
        .map(|m| format!("{}: {}", str_of(m, "from"), str_of(m, "text")))
        .collect();
    let chat: Vec<String> = chat.into_iter().cloned().collect();
    assert_eq!(chat, lobby, "the chatclient's screen vs the stored lobby");
    let eve_stored: Vec<&str> = by_room["lobby"]
        .iter()
        .filter(|m| m["from"] == "eve")
        .map(|m| str_of(m, "text"))
        .collect();
    assert_eq!(
        eve_stored, eve_lines,
        "the chatclient's lines, stored once each in order"
    );
    assert!(
        shown.iter().any(|l| l.starts_with("* connection lost")),
        "the chatclient never lost its connection: {shown:#?}"
    );
    let summaries: Vec<&String> = shown
        .iter()
        .filter(|l| l.starts_with("* reconnected"))
        .collect();
    assert_eq!(summaries.len(), 1, "{shown:#?}");
    assert!(
        !summaries[0].contains("gap"),
        "the chatclient reported a gap: {shown:#?}"
    );
    for line in shown {
        assert!(
            !line.starts_with('!') && !line.starts_with("[history]"),
            "{line:?} in {shown:#?}"
        );
    }
}

// ---------------------------------------------------------------------
// 2. A clean restart.
// ---------------------------------------------------------------------

/// SIGTERM, then a new server on the same directory: the room's history,
/// seq and epoch and both sessions survive. bob, who left before the last
/// three messages, resumes and re-enters with `since` and the epoch: he is
/// `recovered` with exactly the three he missed. alice's message ids
/// survive too (a resend is `duplicate`), and her history still carries
/// them.
#[test]
fn a_clean_restart_keeps_history_seq_epoch_and_sessions() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = durable(dir.path(), &[]);
    let mut alice = server.connect();
    let a = join_v2(&mut alice, "alice", &["rust"], None);
    assert_eq!(a.welcome["resumed"], false, "{}", a.welcome);
    let alice_token = str_of(&a.welcome, "session").to_owned();
    let epoch = str_of(&a.entered["rust"], "epoch").to_owned();
    let mut bob = server.connect();
    let b = join_v2(&mut bob, "bob", &["rust"], None);
    let bob_token = str_of(&b.welcome, "session").to_owned();
    let p = alice.expect_kind("presence");
    assert_eq!(
        (&p["nick"], &p["status"]),
        (&json!("bob"), &json!("online"))
    );

    let mut echoes = Vec::new();
    for i in 1..=3 {
        let echo = say(
            &mut alice,
            "rust",
            &format!("before {i}"),
            &format!("a-{i}"),
        );
        let at_bob = bob.expect_kind("msg");
        assert_eq!(at_bob["seq"], echo["seq"], "{at_bob}");
        assert!(
            at_bob["id"].is_null(),
            "only the sender's copy has the id: {at_bob}"
        );
        echoes.push(echo);
    }
    let bob_since = u64_of(&echoes[2], "seq");
    drop(bob);
    let gone = alice.expect_kind("presence");
    assert_eq!(
        (&gone["nick"], &gone["status"]),
        (&json!("bob"), &json!("offline"))
    );
    assert_eq!(u64_of(&gone, "seq"), bob_since + 1);
    for i in 4..=6 {
        echoes.push(say(
            &mut alice,
            "rust",
            &format!("before {i}"),
            &format!("a-{i}"),
        ));
    }
    let a6 = u64_of(&echoes[5], "seq");

    stop_cleanly(&mut server, &mut alice);

    let stored = Stored::read(dir.path());
    stored.assert_gapless("after SIGTERM");
    let last = stored.last("rust");
    assert!(
        last >= a6,
        "the store ends at {last}, before the last echo {a6}"
    );
    assert_eq!(stored.epoch("rust"), epoch);
    assert_eq!(
        export(dir.path(), &["--room", "rust"]),
        echoes,
        "the export"
    );

    let server = durable(dir.path(), &[]);
    // bob first: he missed 4..6.
    let mut bob = server.connect();
    let b = join_v2(&mut bob, "bob", &[], Some(&bob_token));
    assert_eq!(
        b.welcome["resumed"], true,
        "bob's session survives: {}",
        b.welcome
    );
    let e = enter_since(&mut bob, "bob", "rust", bob_since, &epoch);
    let entered = &e.entered["rust"];
    assert_eq!(entered["epoch"], epoch.as_str(), "{entered}");
    assert_eq!(entered["recovered"], true, "{entered}");
    assert_eq!(
        u64_of(entered, "seq"),
        last,
        "the room's seq goes on: {entered}"
    );
    let replay: Vec<(u64, &str, &str)> = e.replay["rust"]
        .iter()
        .map(|m| {
            assert!(m["id"].is_null(), "alice's id in bob's replay: {m}");
            (u64_of(m, "seq"), str_of(m, "from"), str_of(m, "text"))
        })
        .collect();
    let missed: Vec<(u64, &str, &str)> = echoes[3..]
        .iter()
        .map(|m| (u64_of(m, "seq"), "alice", str_of(m, "text")))
        .collect();
    assert_eq!(replay, missed, "bob's replay");
    assert_eq!(u64_of(&e.presence["rust"], "seq"), last + 1);

    // alice: nothing missed; her ids are remembered.
    let mut alice = server.connect();
    let a = join_v2(&mut alice, "alice", &[], Some(&alice_token));
    assert_eq!(a.welcome["resumed"], true, "{}", a.welcome);
    let e = enter_since(&mut alice, "alice", "rust", a6, &epoch);
    assert_eq!(
        e.entered["rust"]["recovered"], true,
        "{}",
        e.entered["rust"]
    );
    assert!(
        e.replay.get("rust").is_none_or(|r| r.is_empty()),
        "{:?}",
        e.replay
    );
    assert_eq!(u64_of(&e.presence["rust"], "seq"), last + 2);
    let p = bob.expect_kind("presence");
    assert_eq!((&p["nick"], u64_of(&p, "seq")), (&json!("alice"), last + 2));
    alice.send_frame(&json!({"type": "msg", "room": "rust", "text": "before 6", "id": "a-6"}));
    let dup = alice.expect_kind("error");
    assert_eq!(dup["code"], "duplicate", "{dup}");
    assert_eq!(
        (&dup["id"], &dup["room"]),
        (&json!("a-6"), &json!("rust")),
        "{dup}"
    );
    assert_eq!(u64_of(&dup, "seq"), a6, "{dup}");
    let after = say(&mut alice, "rust", "after", "a-7");
    assert_eq!(u64_of(&after, "seq"), last + 3, "{after}");
    assert_eq!(bob.expect_kind("msg")["seq"], after["seq"]);
    echoes.push(after);

    // History from before the restart, with alice's ids on her copies.
    alice.send_frame(&json!({"type": "history", "room": "rust"}));
    let h = alice.expect_kind("history");
    assert_eq!(h["events"].as_array().map(Vec::len), Some(7), "{h}");
    for (m, echo) in h["events"].as_array().unwrap().iter().zip(&echoes) {
        assert_eq!(m["replay"], true, "{m}");
        let mut m = m.clone();
        m.as_object_mut().unwrap().remove("replay");
        assert_eq!(&m, echo, "alice's history vs her echoes");
    }
    assert_eq!(h["more"], false, "{h}");

    // A newcomer entering without since gets the newest, not recovered.
    let mut carol = server.connect();
    let c = join_v2(&mut carol, "carol", &["rust"], None);
    assert_eq!(
        c.entered["rust"]["recovered"], false,
        "{}",
        c.entered["rust"]
    );
    assert_eq!(c.entered["rust"]["epoch"], epoch.as_str());
    let seqs: Vec<u64> = c.replay["rust"].iter().map(|m| u64_of(m, "seq")).collect();
    let want: Vec<u64> = echoes.iter().map(|m| u64_of(m, "seq")).collect();
    assert_eq!(seqs, want, "carol's replay");
}

/// Only presences lie between bob's `since` and the room's first message:
/// nothing he may see was forgotten, so re-entering must be `recovered`
/// (§5.2: `since + 1 >= oldest`, `oldest` the smallest seq from which every
/// message is kept). It is on the running server; it must stay so after a
/// restart.
#[test]
fn after_a_restart_presences_before_the_first_message_are_no_gap() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = durable(dir.path(), &[]);
    let mut alice = server.connect();
    let a = join_v2(&mut alice, "alice", &["rust"], None);
    let epoch = str_of(&a.entered["rust"], "epoch").to_owned();
    let mut bob = server.connect();
    let b = join_v2(&mut bob, "bob", &["rust"], None);
    let bob_token = str_of(&b.welcome, "session").to_owned();
    let bob_since = u64_of(&b.presence["rust"], "seq");
    alice.expect_kind("presence");
    drop(bob);
    alice.expect_kind("presence");
    let m1 = say(&mut alice, "rust", "one", "a-1");
    let m2 = say(&mut alice, "rust", "two", "a-2");
    assert!(
        u64_of(&m1, "seq") > bob_since + 1,
        "a presence lies between"
    );

    // bob comes back from `since`: once before the restart, once after.
    let back = |server: &Server| {
        let mut bob = server.connect();
        let b = join_v2(&mut bob, "bob", &[], Some(&bob_token));
        assert_eq!(b.welcome["resumed"], true, "{}", b.welcome);
        let e = enter_since(&mut bob, "bob", "rust", bob_since, &epoch);
        let replay: Vec<(u64, String)> = e.replay["rust"]
            .iter()
            .map(|m| (u64_of(m, "seq"), str_of(m, "text").to_owned()))
            .collect();
        (e.entered["rust"].clone(), replay)
    };
    let want = vec![
        (u64_of(&m1, "seq"), "one".to_owned()),
        (u64_of(&m2, "seq"), "two".to_owned()),
    ];
    let (entered, replay) = back(&server);
    assert_eq!(replay, want, "bob's replay before the restart");
    assert_eq!(entered["recovered"], true, "before the restart: {entered}");
    // bob goes again (online, offline).
    alice.expect_kind("presence");
    alice.expect_kind("presence");

    stop_cleanly(&mut server, &mut alice);

    let server = durable(dir.path(), &[]);
    let (entered, replay) = back(&server);
    assert_eq!(replay, want, "bob's replay after the restart");
    assert!(
        u64_of(&entered, "oldest") <= bob_since + 1,
        "entered.oldest claims messages before the first one were forgotten: {entered}"
    );
    assert_eq!(
        entered["recovered"], true,
        "nothing was forgotten, yet not recovered after the restart: {entered}"
    );
}

/// A room at the highest seq the database can key: its next message is
/// refused with `unavailable` naming the room and the limit, and the
/// store goes on for the other rooms (it does not stay down).
#[test]
fn a_room_past_the_highest_seq_is_refused_alone() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = durable(dir.path(), &[]);
    let mut alice = server.connect();
    join_v2(&mut alice, "alice", &["rust"], None);
    say(&mut alice, "rust", "one", "a-1");
    stop_cleanly(&mut server, &mut alice);
    // As if rust had come to one below the highest seq.
    let db = Connection::open(dir.path().join(chatstore::DB_FILE)).expect("open");
    let edge = chatstore::MAX_SEQ;
    db.execute(
        "UPDATE rooms SET last_seq = ?1 WHERE name = 'rust'",
        [edge as i64 - 5],
    )
    .expect("update");
    drop(db);

    let server = durable(dir.path(), &[]);
    let mut alice = server.connect();
    join_v2(&mut alice, "alice", &["rust", "lobby"], None);
    // Messages (and any presence) take the seqs up to the highest; the
    // next message is refused.
    let mut echoed = Vec::new();
    let err = loop {
        assert!(
            echoed.len() < 6,
            "no refusal past the highest seq: {echoed:?}"
        );
        let id = format!("a-{}", echoed.len() + 2);
        alice.send_frame(&json!({"type": "msg", "room": "rust", "text": "near", "id": id}));
        let frame = loop {
            let f = alice.recv_frame();
            if f["type"] != "presence" {
                break f;
            }
        };
        match frame["type"].as_str() {
            Some("msg") => echoed.push(u64_of(&frame, "seq")),
            Some("error") => break frame,
            _ => panic!("{frame}"),
        }
    };
    assert!(
        echoed.first().is_some_and(|s| *s > edge - 5) && echoed.last() <= Some(&edge),
        "{echoed:?}"
    );
    assert_eq!(err["code"], "unavailable", "{err}");
    let text = str_of(&err, "message");
    assert!(text.contains("#rust") && text.contains("seq"), "{err}");
    // The other rooms go on, at once.
    say(&mut alice, "lobby", "still here", "a-9");
    let stored = Stored::read(dir.path());
    assert!(stored.last("rust") <= edge);
}

/// A database with more rooms than `--max-rooms` loads the most recently
/// active ones, no more than the cap, and leaves the rest in the file:
/// entering one of those begins it anew (a new epoch), as if forgotten.
#[test]
fn past_max_rooms_the_least_recently_active_rooms_stay_unloaded() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = durable(dir.path(), &[]);
    let mut alice = server.connect();
    let first = join_v2(&mut alice, "alice", &["aa", "bb", "cc"], None);
    for room in ["aa", "bb", "cc"] {
        say(
            &mut alice,
            room,
            &format!("in {room}"),
            &format!("id-{room}"),
        );
    }
    stop_cleanly(&mut server, &mut alice);
    // Activity as if bb were the least recent and aa the most.
    let db = Connection::open(dir.path().join(chatstore::DB_FILE)).expect("open");
    for (room, ts) in [("bb", 1_000), ("cc", 2_000), ("aa", 3_000)] {
        db.execute(
            "UPDATE chunks SET events = (SELECT json_group_array(json_set(j.value, '$[1]', ?2))
                                         FROM json_each(chunks.events) AS j)
             WHERE (id >> 40) = (SELECT no FROM rooms WHERE name = ?1)",
            rusqlite::params![room, ts],
        )
        .expect("update");
    }
    drop(db);

    let server = durable(dir.path(), &["--max-rooms", "2"]);
    let mut bob = server.connect();
    let again = join_v2(&mut bob, "bob", &["aa", "cc"], None);
    for room in ["aa", "cc"] {
        assert_eq!(
            again.entered[room]["epoch"], first.entered[room]["epoch"],
            "#{room} was loaded"
        );
        assert!(
            u64_of(&again.entered[room], "seq") >= 2,
            "{}",
            again.entered[room]
        );
    }
    // The cap is reached: bb takes the place of the least recently active
    // room nobody is in, cc, and begins anew.
    bob.send_frame(&json!({"type": "part", "room": "cc"}));
    bob.expect_kind("presence");
    bob.send_frame(&json!({"type": "enter", "room": "bb"}));
    let bb = bob.expect_kind("entered");
    assert_ne!(bb["epoch"], first.entered["bb"]["epoch"], "{bb}");
    assert_eq!(u64_of(&bb, "seq"), 0, "{bb}");
}

// ---------------------------------------------------------------------
// 3. Faults.
// ---------------------------------------------------------------------

/// Start a server that must refuse to start: exit 1, nothing listening,
/// exactly one line on stderr (returned).
fn refuses_to_start(args: &[&str]) -> String {
    let mut all = vec!["--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let run = run_to_exit(&all, WAIT);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(!run.stdout.contains("listening on"), "it listened: {run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "exactly one line on stderr: {:?}",
        run.stderr
    );
    assert!(lines[0].starts_with("chatserver: "), "{:?}", lines[0]);
    lines[0].to_owned()
}

#[test]
fn a_data_dir_that_cannot_be_created_stops_the_server_with_one_line() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "not a directory\n").expect("write a file");
    let data = file.join("data");
    let line = refuses_to_start(&["--data-dir", path_str(&data)]);
    assert!(
        line.contains(path_str(&data)),
        "does not name the directory: {line:?}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory\n");
    // The file itself as the data directory: said so, and left alone.
    let line = refuses_to_start(&["--data-dir", path_str(&file)]);
    assert!(line.contains("a file, not a directory"), "{line:?}");
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory\n");
}

/// A port another process holds, with the default store: exit 1 and one
/// line on stderr naming the address (and no goodbye from a server that
/// never listened).
#[test]
fn a_port_in_use_stops_a_durable_server_with_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = taken.local_addr().expect("local address").to_string();
    for _ in 0..10 {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let data = tmp.path().join("data");
        let run = run_to_exit(
            &[
                "--listen",
                &addr,
                "--log-level",
                "info",
                "--data-dir",
                path_str(&data),
            ],
            WAIT,
        );
        assert_eq!(run.status.code(), Some(1), "{run:?}");
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {:?}", run.stderr);
        assert!(lines[0].contains("cannot listen"), "{:?}", run.stderr);
        // Nothing left behind: no data directory made for nothing.
        assert!(!data.exists(), "{} was created", data.display());
    }
}

#[test]
fn a_chat_db_that_is_not_a_database_is_left_untouched() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = dir.path().join("chat.db");
    let bytes = "these are someone's notes, not a database\n".repeat(200);
    std::fs::write(&db, &bytes).expect("write chat.db");
    let line = refuses_to_start(&["--data-dir", path_str(dir.path())]);
    assert!(
        line.contains(path_str(&db)),
        "does not name the file: {line:?}"
    );
    assert!(line.contains("not a chat database"), "{line:?}");
    assert_eq!(
        std::fs::read(&db).expect("chat.db still there"),
        bytes.as_bytes(),
        "chat.db was changed"
    );
}

/// README, "History on disk": "a file that is not a chat database (left
/// untouched) ... the server prints one line saying so and exits 1". An
/// SQLite database of another program (schema version 0, tables of its
/// own) is not a chat database either: it must not get chat tables added
/// (nor be switched to WAL). A server that starts on it instead runs until
/// the test's deadline and fails with "did not exit".
#[test]
fn an_sqlite_database_of_another_program_is_left_untouched() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = dir.path().join("chat.db");
    {
        let c = Connection::open(&db).expect("create chat.db");
        c.execute_batch(
            "CREATE TABLE notes (body TEXT NOT NULL);
             INSERT INTO notes VALUES ('someone else''s data');",
        )
        .expect("fill chat.db");
    }
    let bytes = std::fs::read(&db).expect("read chat.db");
    let line = refuses_to_start(&["--data-dir", path_str(dir.path())]);
    assert!(
        line.contains(path_str(&db)),
        "does not name the file: {line:?}"
    );
    assert_eq!(
        std::fs::read(&db).expect("chat.db"),
        bytes,
        "chat.db was changed"
    );
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused_and_the_first_goes_on() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let first = durable(dir.path(), &[]);
    let mut alice = first.connect();
    let a = join_v2(&mut alice, "alice", &["lobby"], None);
    let line = refuses_to_start(&["--data-dir", path_str(dir.path())]);
    assert!(line.contains("in use"), "{line:?}");
    assert!(line.contains(path_str(dir.path())), "{line:?}");
    // The first one still stores.
    let echo = say(&mut alice, "lobby", "still here", "s-1");
    assert_eq!(
        u64_of(&echo, "seq"),
        u64_of(&a.presence["lobby"], "seq") + 1
    );
    assert_eq!(export(dir.path(), &[]), [echo]);
}

#[test]
fn a_database_from_a_newer_chatserver_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = durable(dir.path(), &[]);
    let mut alice = server.connect();
    join_v2(&mut alice, "alice", &["lobby"], None);
    say(&mut alice, "lobby", "from the old days", "o-1");
    server.sigterm();
    assert!(server.wait_exit(WAIT).success());
    let db = dir.path().join("chat.db");
    {
        let c = Connection::open(&db).expect("open chat.db");
        let now: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("user_version");
        assert!(now >= 1, "not a versioned chat database: {now}");
        c.pragma_update(None, "user_version", 99)
            .expect("set user_version");
        // Fold the WAL in, so that the file alone is the database.
        c.pragma_update(None, "journal_mode", "DELETE")
            .expect("journal_mode");
    }
    let bytes = std::fs::read(&db).expect("read chat.db");
    let line = refuses_to_start(&["--data-dir", path_str(dir.path())]);
    assert!(line.contains("99"), "does not say which version: {line:?}");
    assert!(line.contains("newer"), "{line:?}");
    assert_eq!(
        std::fs::read(&db).expect("chat.db"),
        bytes,
        "chat.db was changed"
    );
}

/// `--store-max-mib 1` fills up: the message that does not fit is answered
/// `unavailable` (with its id and room) and spends no seq; so is every
/// later one while it is full. Pings, history, a newcomer's join and enter,
/// `rooms` and presence go on, and the server keeps running.
#[test]
fn a_full_store_refuses_messages_with_unavailable_and_everything_else_goes_on() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = durable(dir.path(), &["--store-max-mib", "1", "--rate", "0"]);
    let mut alice = server.connect();
    join_v2(&mut alice, "alice", &["lobby"], None);
    let text = |i: usize| format!("{i:03} {}", "y".repeat(30_000));
    let mut echoed = Vec::new();
    let mut refused = None;
    for i in 0..200 {
        let id = format!("m-{i}");
        alice.send_frame(&json!({"type": "msg", "room": "lobby", "text": text(i), "id": id}));
        let f = alice.recv_frame();
        match kind(&f) {
            "msg" => {
                assert_eq!(f["id"], id.as_str(), "{}", f["id"]);
                echoed.push(f);
            }
            "error" => {
                refused = Some((id, f));
                break;
            }
            _ => panic!("unexpected answer to {id}: {f}"),
        }
    }
    let (id, err) = refused.expect("1 MiB never filled up with 200 messages of 30 KB");
    assert!(
        echoed.len() >= 5,
        "refused after only {} messages",
        echoed.len()
    );
    assert_eq!(err["code"], "unavailable", "{err}");
    assert_eq!(
        (&err["id"], &err["room"]),
        (&json!(id), &json!("lobby")),
        "{err}"
    );
    assert!(!str_of(&err, "message").is_empty());
    let last = u64_of(echoed.last().unwrap(), "seq");

    // Still full: a small one is refused too.
    alice.send_frame(&json!({"type": "msg", "room": "lobby", "text": "tiny", "id": "t-1"}));
    let err = alice.expect_kind("error");
    assert_eq!(err["code"], "unavailable", "{err}");
    assert_eq!(
        (&err["id"], &err["room"]),
        (&json!("t-1"), &json!("lobby")),
        "{err}"
    );

    alice.ping_pong();
    alice.send_frame(&json!({"type": "history", "room": "lobby", "limit": 5}));
    let h = alice.expect_kind("history");
    let events = h["events"].as_array().expect("events");
    assert!(!events.is_empty(), "{h}");
    let newest = events.last().unwrap();
    assert_eq!(
        (newest["seq"].as_u64(), &newest["text"]),
        (Some(last), &echoed.last().unwrap()["text"]),
        "the newest in history is the last echoed"
    );

    // A newcomer joins and enters; its presence takes the next seq (the
    // refused messages spent none).
    let mut bob = server.connect();
    let b = join_v2(&mut bob, "bob", &["lobby"], None);
    assert_eq!(b.welcome["resumed"], false);
    assert_eq!(
        u64_of(&b.entered["lobby"], "seq"),
        last,
        "{}",
        b.entered["lobby"]
    );
    let p = alice.expect_kind("presence");
    assert_eq!(
        (&p["nick"], u64_of(&p, "seq")),
        (&json!("bob"), last + 1),
        "{p}"
    );
    bob.send_frame(&json!({"type": "rooms"}));
    let rooms = bob.expect_kind("rooms");
    assert_eq!(
        rooms["rooms"],
        json!([{"room": "lobby", "members": 2}]),
        "{rooms}"
    );
    bob.send_frame(&json!({"type": "msg", "room": "lobby", "text": "hi", "id": "b-1"}));
    let err = bob.expect_kind("error");
    assert_eq!(
        (&err["code"], &err["id"]),
        (&json!("unavailable"), &json!("b-1")),
        "{err}"
    );
    bob.ping_pong();
    assert!(server.running(), "the server stopped");

    let ids: Vec<Value> = export(dir.path(), &[])
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    let want: Vec<Value> = echoed.iter().map(|m| m["id"].clone()).collect();
    assert_eq!(ids, want, "stored: exactly the echoed messages");
}

// ---------------------------------------------------------------------
// 4. Export.
// ---------------------------------------------------------------------

/// `chatserver export` beside a running server prints exactly the stored
/// msgs (as the sender's echo: with its id and `to`), room by room in seq
/// order, only those after `--since`; an unknown room is exit 1 with one
/// line naming it.
#[test]
fn export_prints_the_messages_after_since_while_the_server_runs() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = durable(dir.path(), &[]);
    let mut alice = server.connect();
    join_v2(&mut alice, "alice", &["lobby", "rust"], None);
    let mut bob = server.connect();
    join_v2(&mut bob, "bob", &["lobby"], None);
    alice.expect_kind("presence");

    let mut lobby = Vec::new();
    for i in 1..=5 {
        lobby.push(say(
            &mut alice,
            "lobby",
            &format!("lobby {i}"),
            &format!("l-{i}"),
        ));
        bob.expect_kind("msg");
    }
    // One without an id, and one only for bob.
    alice.send_frame(&json!({"type": "msg", "room": "lobby", "text": "no id"}));
    lobby.push(alice.expect_kind("msg"));
    alice.send_frame(
        &json!({"type": "msg", "room": "lobby", "to": ["bob"], "text": "psst", "id": "p-1"}),
    );
    let private = alice.expect_kind("msg");
    assert_eq!(private["to"], json!(["bob"]));
    lobby.push(private);
    let mut rust = Vec::new();
    for i in 1..=3 {
        rust.push(say(
            &mut alice,
            "rust",
            &format!("rust {i}"),
            &format!("r-{i}"),
        ));
    }

    let since = u64_of(&lobby[2], "seq");
    assert_eq!(
        export(
            dir.path(),
            &["--room", "lobby", "--since", &since.to_string()]
        ),
        lobby[3..],
        "lobby after {since}"
    );
    assert_eq!(
        export(dir.path(), &["--room", "LOBBY"]),
        lobby,
        "all of lobby"
    );
    let all: Vec<Value> = lobby.iter().chain(&rust).cloned().collect();
    assert_eq!(export(dir.path(), &[]), all, "every room, room by room");
    // `--data-dir` before `export` is the same flag, not ignored.
    let run = run_to_exit(&["--data-dir", path_str(dir.path()), "export"], WAIT);
    assert!(run.status.success(), "{run:?}");
    let before: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(before, all, "--data-dir DIR export");
    let rust_last = u64_of(rust.last().unwrap(), "seq").to_string();
    assert_eq!(
        export(dir.path(), &["--room", "rust", "--since", &rust_last]),
        Vec::<Value>::new()
    );

    let args = [
        "export",
        "--data-dir",
        path_str(dir.path()),
        "--room",
        "nosuch",
    ];
    let run = run_to_exit(&args, WAIT);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {:?}", run.stderr);
    assert!(
        lines[0].contains("nosuch"),
        "does not name the room: {:?}",
        lines[0]
    );

    // Everything still works, and stops cleanly.
    alice.ping_pong();
    server.sigterm();
    assert!(server.wait_exit(WAIT).success());
}

/// A full store works again once retention has freed room: the server
/// notices by itself (it tries the refused batch each second), and the
/// next message takes the next seq; after a restart on the same
/// directory, seqs go on from there.
#[test]
fn a_full_store_takes_messages_again_once_retention_frees_room() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let flags = &[
        "--store-max-mib",
        "1",
        "--rate",
        "0",
        "--history-max-messages",
        "5",
        "--history-prune-every-secs",
        "1",
    ];
    let mut server = durable(dir.path(), flags);
    let mut alice = server.connect();
    join_v2(&mut alice, "alice", &["lobby"], None);
    let mut last = 0;
    let mut full = false;
    for i in 0..200 {
        let text = format!("{i:03} {}", "z".repeat(30_000));
        alice.send_frame(
            &json!({"type": "msg", "room": "lobby", "text": text, "id": format!("m-{i}")}),
        );
        let f = alice.recv_frame();
        if kind(&f) == "error" {
            assert_eq!(f["code"], "unavailable", "{f}");
            full = true;
            break;
        }
        last = u64_of(&f, "seq");
    }
    assert!(full, "1 MiB never filled up");
    assert!(
        server.wait_for_line("messages are taken again", Duration::from_secs(20)),
        "the store never recovered; log:\n{}",
        server.log()
    );
    let echo = say(&mut alice, "lobby", "after", "a-1");
    assert_eq!(u64_of(&echo, "seq"), last + 1, "{echo}");
    // Retention kept the newest five of the room, then the new one.
    let texts: Vec<String> = export(dir.path(), &["--room", "lobby"])
        .iter()
        .map(|m| str_of(m, "text").chars().take(5).collect())
        .collect();
    assert!(
        texts.len() <= 6 && texts.last().map(String::as_str) == Some("after"),
        "{texts:?}"
    );

    // A restart on the same directory, with the same flags: the room's
    // seq goes on after everything stored (a seq given again would fail
    // to store, and the message would be refused), and the store takes
    // messages at once.
    let after = u64_of(&echo, "seq");
    drop(alice);
    server.sigterm();
    assert!(server.wait_exit(WAIT).success());
    let server = durable(dir.path(), flags);
    let mut alice = server.connect();
    join_v2(&mut alice, "alice", &["lobby"], None);
    let echo = say(&mut alice, "lobby", "restarted", "r-1");
    assert!(u64_of(&echo, "seq") > after, "{echo}");
    let stored = export(dir.path(), &["--room", "lobby"]);
    assert_eq!(
        stored.last().map(|m| str_of(m, "text")),
        Some("restarted"),
        "{stored:?}"
    );
}

/// What retention deleted is served no more, though the server still held
/// it in memory: a newcomer's replay, `entered.oldest` and a history page
/// start where the stored history now starts. The first pass runs at
/// start, so a restart with a stricter limit serves nothing past it.
#[test]
fn messages_retention_deleted_are_not_served_from_memory() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = durable(dir.path(), &["--rate", "0"]);
    let mut alice = server.connect();
    join_v2(&mut alice, "alice", &["lobby"], None);
    let seqs: Vec<u64> = (0..10)
        .map(|i| {
            u64_of(
                &say(&mut alice, "lobby", &format!("m{i}"), &format!("m-{i}")),
                "seq",
            )
        })
        .collect();
    drop(alice);
    server.sigterm();
    assert!(server.wait_exit(WAIT).success());

    // Restarted keeping three events a room (alice's leaving is one).
    let flags = &[
        "--history-max-messages",
        "3",
        "--history-prune-every-secs",
        "3600",
    ];
    let server = durable(dir.path(), flags);
    assert!(
        server.wait_for_line("retention deleted old events", Duration::from_secs(20)),
        "no retention pass at start; log:\n{}",
        server.log()
    );
    let stored: Vec<String> = export(dir.path(), &["--room", "lobby"])
        .iter()
        .map(|m| str_of(m, "text").to_owned())
        .collect();
    assert_eq!(
        stored,
        ["m8", "m9"],
        "the store keeps the newest three events"
    );

    let mut bob = server.connect();
    let b = join_v2(&mut bob, "bob", &["lobby"], None);
    assert_eq!(
        u64_of(&b.entered["lobby"], "oldest"),
        seqs[8],
        "{:?}",
        b.entered
    );
    let replay: Vec<&str> = b.replay["lobby"]
        .iter()
        .map(|m| str_of(m, "text"))
        .collect();
    assert_eq!(replay, ["m8", "m9"]);
    bob.send_frame(&json!({"type": "history", "room": "lobby"}));
    let h = bob.expect_kind("history");
    let page: Vec<&str> = h["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|m| str_of(m, "text"))
        .collect();
    assert_eq!((page, &h["more"]), (vec!["m8", "m9"], &json!(false)), "{h}");
}
