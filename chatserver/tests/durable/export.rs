//! `chatserver export` beside a running server.

use serde_json::{json, Value};

use crate::common::{run_to_exit, WAIT};
use crate::{durable, export, join_v2, path_str, say, u64_of};

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
    // Written as chatclient's `/join` takes it, too.
    assert_eq!(export(dir.path(), &["--room", "#lobby"]), lobby, "#lobby");
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

    // A node's environment (CHATSERVER_CLUSTER) does not turn
    // `export --data-dir DIR` into the export of a cluster.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chatserver"))
        .args(["export", "--data-dir", path_str(dir.path())])
        .env("CHATSERVER_CLUSTER", "nats://127.0.0.1:1")
        .output()
        .expect("run chatserver export");
    assert!(out.status.success(), "{out:?}");
    let printed: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(printed, all, "CHATSERVER_CLUSTER=... export --data-dir DIR");
    // Both on the command line: which is meant is not guessed.
    let args = [
        "export",
        "--cluster",
        "nats://127.0.0.1:1",
        "--data-dir",
        path_str(dir.path()),
    ];
    let run = run_to_exit(&args, WAIT);
    assert_eq!(run.status.code(), Some(2), "a usage error: {run:?}");
    assert!(run.stderr.contains("not both"), "{run:?}");
    // So is a room no client could name.
    let args = ["export", "--data-dir", path_str(dir.path()), "--room", ""];
    let run = run_to_exit(&args, WAIT);
    assert_eq!(run.status.code(), Some(2), "a usage error: {run:?}");
    assert!(run.stderr.contains("not a room name"), "{run:?}");

    // Everything still works, and stops cleanly.
    alice.ping_pong();
    server.sigterm();
    assert!(server.wait_exit(WAIT).success());
}

/// `chatserver export | head -1`: once the reader has closed the pipe, the
/// export stops as done, exit 0 and nothing on stderr (it said "cannot
/// write the export: Broken pipe" and exited 1).
#[test]
fn an_export_whose_reader_closes_the_pipe_stops_quietly() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("temporary directory");
    let server = durable(dir.path(), &[]);
    let mut alice = server.connect();
    join_v2(&mut alice, "alice", &["lobby"], None);
    // About 100 KB of lines: past the export's buffer and the pipe's.
    let text = "x".repeat(1_000);
    for i in 0..100 {
        say(&mut alice, "lobby", &text, &format!("m{i}"));
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_chatserver"))
        .args(["export", "--data-dir", path_str(dir.path())])
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start chatserver export");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut first)
        .expect("a line");
    assert!(first.contains("\"type\":\"msg\""), "{first}");
    // The reader is gone (dropped with the BufReader).
    ends_cleanly(&mut child);
}

/// `chatserver export | less` left open while the server writes: the
/// export, blocked writing into a pipe nobody reads, holds no snapshot of
/// the database, so a checkpoint still empties the write-ahead log (it
/// held its read transaction open while it wrote, and the log grew
/// without bound). Read on later, it prints every message it read (all
/// of the room, in one page: those stored while it waited come after
/// its last page).
#[test]
fn an_export_paused_by_its_reader_holds_back_no_checkpoint() {
    use std::io::{BufRead, BufReader, Read};
    let dir = tempfile::tempdir().expect("temporary directory");
    let server = durable(dir.path(), &["--rate", "0"]);
    let mut alice = server.connect();
    join_v2(&mut alice, "alice", &["lobby"], None);
    // About 300 KB of lines: past the export's buffer and the pipe's.
    let text = "x".repeat(1_000);
    let mut ids: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    for id in &ids {
        say(&mut alice, "lobby", &text, id);
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_chatserver"))
        .args(["export", "--data-dir", path_str(dir.path())])
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start chatserver export");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut first = String::new();
    lines.read_line(&mut first).expect("a line");
    assert!(first.contains("\"id\":\"m0\""), "{first}");
    // The export now waits on the full pipe. The server writes on...
    for i in 300..310 {
        ids.push(format!("m{i}"));
        say(&mut alice, "lobby", &text, &ids[i]);
    }
    // ...and a checkpoint (as the sqlite3 tool runs it) copies the whole
    // log into the database and empties it, waiting a while for readers.
    let db = rusqlite::Connection::open(dir.path().join("chat.db")).expect("open chat.db");
    db.busy_timeout(std::time::Duration::from_secs(5))
        .expect("busy timeout");
    let (busy, log): (i64, i64) = db
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("a checkpoint");
    assert_eq!((busy, log), (0, 0), "the log was not emptied");
    let mut rest = String::new();
    lines
        .read_to_string(&mut rest)
        .expect("the export to its end");
    ends_cleanly(&mut child);
    let printed: Vec<String> = std::iter::once(first.as_str())
        .chain(rest.lines())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a JSON line");
            v["id"].as_str().expect("an id").to_owned()
        })
        .collect();
    assert_eq!(printed, ids[..300]);
}

/// The export `child` ends with success and says nothing on stderr.
fn ends_cleanly(child: &mut std::process::Child) {
    use std::io::Read;
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)
        .expect("stderr to its end");
    let status = child.wait().expect("the export ends");
    assert!(
        status.success() && stderr.is_empty(),
        "{status:?}: {stderr}"
    );
}
