//! Faults: a server that must refuse to start, and a store that fills up.

use rusqlite::Connection;
use serde_json::{json, Value};

use crate::common::{kind, run_to_exit, WAIT};
use crate::{durable, export, join_v2, path_str, say, str_of, u64_of};

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
    // The file in the way is named, not only the OS's "Not a directory".
    let in_the_way = format!("{} is a file, not a directory", path_str(&file));
    assert!(line.contains(&in_the_way), "{line:?}");
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory\n");
    // The file itself as the data directory: said so, and left alone.
    let line = refuses_to_start(&["--data-dir", path_str(&file)]);
    assert!(line.contains("it is a file, not a directory"), "{line:?}");
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory\n");
    // An export says the same (it said there was no such directory).
    for (dir, said) in [
        (&data, in_the_way.as_str()),
        (&file, "it is a file, not a directory"),
    ] {
        let run = run_to_exit(&["export", "--data-dir", path_str(dir)], WAIT);
        assert_eq!(run.status.code(), Some(1), "{run:?}");
        let head = format!(
            "chatserver export: cannot use the data directory {}: {said};",
            path_str(dir)
        );
        assert!(run.stderr.starts_with(&head), "{run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    }
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
    // The cause named as the cap, not as a full disk: the disk has room.
    let why = str_of(&err, "message");
    assert!(why.contains("its history is at its size cap"), "{why}");
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
    // Refused while the store is down; taken once a probe (each second)
    // finds it takes small batches again (the full one was 30 KB a
    // message; see the next test).
    bob.send_frame(&json!({"type": "msg", "room": "lobby", "text": "hi", "id": "b-1"}));
    let f = bob.recv_frame();
    match (kind(&f), &f["code"]) {
        ("msg", _) => echoed.push(f.clone()),
        ("error", code) if code == "unavailable" => {}
        _ => panic!("unexpected answer to b-1: {f}"),
    }
    assert_eq!(f["id"], "b-1", "{f}");
    bob.ping_pong();
    assert!(server.running(), "the server stopped");

    let ids: Vec<Value> = export(dir.path(), &[])
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    let want: Vec<Value> = echoed.iter().map(|m| m["id"].clone()).collect();
    assert_eq!(ids, want, "stored: exactly the echoed messages");
}

/// A store filled by large messages takes small ones again without a
/// restart: the probe asks whether it takes a batch like the failed one,
/// its texts cut short, not whether the 60 KB messages it refused would
/// fit now (which they never would, under the cap: before, everything
/// was refused until the server restarted).
#[test]
fn a_store_filled_by_large_messages_takes_small_ones_again() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // At debug, the lines left out of the log show when the store is up.
    let flags = [
        "--store-max-mib",
        "1",
        "--rate",
        "0",
        "--log-level",
        "debug",
    ];
    let server = durable(dir.path(), &flags);
    let mut alice = server.connect();
    join_v2(&mut alice, "alice", &["lobby"], None);
    let big = "z".repeat(60_000);
    let mut full = false;
    for i in 0..40 {
        alice.send_frame(
            &json!({"type": "msg", "room": "lobby", "text": big, "id": format!("m-{i}")}),
        );
        let f = alice.recv_frame();
        if kind(&f) == "error" {
            assert_eq!(f["code"], "unavailable", "{f}");
            // At the cap, which a probe may find mended: later.
            let why = str_of(&f, "message");
            assert!(why.ends_with("; try again later"), "{why}");
            full = true;
            break;
        }
    }
    assert!(full, "40 messages of 60 KB did not fill 1 MiB");
    let first_failure = std::time::Instant::now();
    assert!(
        server.wait_for_line("messages are taken again", WAIT),
        "the store never took messages again"
    );
    alice.send_frame(&json!({"type": "msg", "room": "lobby", "text": "small", "id": "s-1"}));
    let f = alice.expect_kind("msg");
    assert_eq!(
        (&f["text"], &f["id"]),
        (&json!("small"), &json!("s-1")),
        "{f}"
    );
    // Taking messages again: healthy again.
    let health = server.http_get("/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(
        up(&server, "chat_store_up 1"),
        "{}",
        server.http_get("/metrics")
    );
    // Each large one now fails and the store works again at the next
    // probe: logged at most once in 10 s, not a few lines a message.
    for i in 0..4 {
        let id = format!("again-{i}");
        alice.send_frame(&json!({"type": "msg", "room": "lobby", "text": big, "id": id}));
        assert_eq!(alice.expect_kind("error")["code"], "unavailable");
        assert!(
            server.wait_for_lines("the history database works again", i + 2, WAIT),
            "the store never worked again"
        );
    }
    let log = server.log();
    let at = |level: &str, text: &str| {
        log.lines()
            .filter(|l| l.contains(level) && l.contains(text))
            .count()
    };
    // Five failures in all, each mended at the next probe: said once, and
    // once more for every 10 s the test took on a slow machine.
    let most = 1 + (first_failure.elapsed().as_secs() / 10) as usize;
    for text in [
        "the history database cannot store",
        "the history database works again",
    ] {
        let said = at(" WARN ", text) + at(" INFO ", text);
        assert!((1..=most).contains(&said), "{text:?} in:\n{log}");
        assert_eq!(said + at("DEBUG ", text), 5, "{text:?} in:\n{log}");
    }
    // What the 10 s left out is counted once they end, with no failure
    // after them to say it.
    assert!(
        server.wait_for_line("could not store more batches since the last line", WAIT),
        "the failures left out were never counted:\n{}",
        server.log()
    );
    let count = server.log();
    let count = count
        .lines()
        .find(|l| l.contains("could not store more batches"))
        .unwrap_or_default();
    assert!(count.contains("more_since_last_line="), "{count}");
    // The hub's side is left to the store's thread's.
    assert_eq!(
        at("DEBUG ", "the history database failed a batch"),
        5,
        "{log}"
    );
    assert!(!log.contains("failing_for_ms"), "{log}");

    // A failure that lasts (the database file deleted: never mended) is
    // said though it came within 10 s of the last line: it is no flap.
    let said = "history database is gone; messages are refused until the server is restarted";
    let before = server.log().lines().filter(|l| l.contains(said)).count();
    std::fs::remove_file(dir.path().join("chat.db")).expect("delete the database");
    alice.send_frame(&json!({"type": "msg", "room": "lobby", "text": "lost", "id": "l-1"}));
    let err = alice.expect_kind("error");
    assert_eq!(err["code"], "unavailable", "{err}");
    // Never mended while it runs: no "later" would do, a restart does.
    let why = str_of(&err, "message");
    assert!(
        why.contains("database file was deleted")
            && why.contains("until the server is restarted")
            && !why.contains("later"),
        "{why}"
    );
    // So says the refusal of a message sent after the batch that failed.
    alice.send_frame(&json!({"type": "msg", "room": "lobby", "text": "lost", "id": "l-2"}));
    let err = alice.expect_kind("error");
    assert_eq!(
        (&err["code"], &err["id"]),
        (&json!("unavailable"), &json!("l-2")),
        "{err}"
    );
    assert_eq!(str_of(&err, "message"), why, "{err}");
    assert!(
        server.wait_for_lines(said, before + 1, WAIT),
        "a lasting failure was not logged:\n{}",
        server.log()
    );
    // An operator's health check and metrics say it, with the cause
    // (they said nothing: 200 and no gauge while messages were refused).
    let health = server.http_get("/healthz");
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    assert!(
        health.contains("history database fails") && health.contains("database file was deleted"),
        "{health}"
    );
    assert!(
        up(&server, "chat_store_up 0"),
        "{}",
        server.http_get("/metrics")
    );
}

/// Whether the server's `/metrics` page has the line `line`.
fn up(server: &crate::common::Server, line: &str) -> bool {
    server.http_get("/metrics").lines().any(|l| l == line)
}

/// A start that fails after its data directory could have been made (a
/// certificate that cannot be read) leaves no directory behind, however
/// many levels it would have made; a directory that was there stays, with
/// what it held.
#[test]
fn a_failed_start_leaves_no_data_directory_it_made() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let cert = tmp.path().join("no-cert.pem");
    let key = tmp.path().join("no-key.pem");
    let bad_tls = ["--tls-cert", path_str(&cert), "--tls-key", path_str(&key)];
    let data = tmp.path().join("a").join("b").join("data");
    let mut args = vec!["--data-dir", path_str(&data)];
    args.extend_from_slice(&bad_tls);
    let line = refuses_to_start(&args);
    assert!(line.contains("no-cert.pem"), "{line:?}");
    assert!(
        !tmp.path().join("a").exists(),
        "{} was made and left",
        tmp.path().join("a").display()
    );
    // One that was there, with a server's history in it: kept whole.
    let kept = tmp.path().join("kept");
    let mut server = durable(&kept, &[]);
    server.sigterm();
    assert!(server.wait_exit(WAIT).success(), "{}", server.log());
    let before = std::fs::read(kept.join("chat.db")).expect("chat.db");
    let mut args = vec!["--data-dir", path_str(&kept)];
    args.extend_from_slice(&bad_tls);
    refuses_to_start(&args);
    assert_eq!(
        std::fs::read(kept.join("chat.db")).expect("chat.db"),
        before
    );
}
