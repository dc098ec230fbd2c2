//! History on disk, end to end (README "History on disk", PROTOCOL.md
//! §5.8): the real server on a data directory, killed with SIGKILL under
//! load or stopped with SIGTERM and started again on the same directory;
//! its faults at start and while running; `chatserver export`.
//!
//! Every server here runs on its own temporary directory. Nothing sleeps
//! to synchronise: every wait reads the frames or lines it expects against
//! a deadline.

mod common;

// The crate root sits in tests/, so each topic's file is named by its path.
#[path = "durable/export.rs"]
mod export;
#[path = "durable/faults.rs"]
mod faults;
#[path = "durable/kill/mod.rs"]
mod kill;
#[path = "durable/restart.rs"]
mod restart;
#[path = "durable/retention.rs"]
mod retention;

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{kind, run_to_exit, Client, Server, WAIT};
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
