//! What the operator's console shows: one line per room event, naming the
//! room, however many deliveries the event took.

mod common;

use std::time::Instant;

use common::{Server, WAIT};
use serde_json::json;

/// Wait until the server has printed a line containing `marker`.
fn wait_for_log(server: &Server, marker: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let log = server.log();
        if log.contains(marker) {
            return log;
        }
        assert!(Instant::now() < deadline, "no {marker:?} in:\n{log}");
        // Polling the log of another process: the wait is bounded and ends
        // on what it waits for.
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn a_part_is_logged_once_with_its_room() {
    let server = Server::start(&[]);
    let mut alice = server.connect();
    alice.send_frame(&json!({"type": "join", "nick": "alice", "rooms": ["lobby", "rust"]}));
    alice.expect_kind("welcome");
    alice.send_frame(&json!({"type": "part", "room": "rust"}));
    alice.send_frame(&json!({"type": "msg", "text": "marker"}));
    let log = wait_for_log(&server, "marker");
    let parts = log
        .lines()
        .filter(|l| l.contains("[#rust 2] alice left"))
        .count();
    assert_eq!(parts, 1, "{log}");
    assert!(log.contains("[#rust 1] alice joined"), "{log}");
    assert!(log.contains("-> everyone: marker"), "{log}");
}

/// A client's number in the log is tied to its address when it connects
/// and to its nickname when it joins, so that a later line about `#N` (a
/// framing error, the rate limit) names someone an operator can find.
#[test]
fn a_clients_number_is_logged_with_its_address_and_nickname() {
    let server = Server::start(&[]);
    let mut alice = server.connect();
    alice.send_frame(&json!({"type": "join", "nick": "alice", "rooms": ["lobby"]}));
    alice.expect_kind("welcome");
    alice.send_frame(&json!({"type": "msg", "text": "marker"}));
    let log = wait_for_log(&server, "marker");
    let connected = log
        .lines()
        .find(|l| l.contains(" connected ") && l.contains("client=#"))
        .unwrap_or_else(|| panic!("no connected line in:\n{log}"));
    assert!(connected.contains("addr=127.0.0.1:"), "{connected}");
    let number = connected
        .split_whitespace()
        .find(|w| w.starts_with("client=#"))
        .expect("the client's number");
    assert!(
        log.lines()
            .any(|l| l.contains("joined") && l.contains(number) && l.contains("nick=alice")),
        "no {number} joined as alice in:\n{log}"
    );
}

/// A session resumed on a new connection is logged as such, not as a
/// new join.
#[test]
fn a_resumed_session_is_logged_as_resumed() {
    let server = Server::start(&[]);
    let mut alice = server.connect();
    alice.send_frame(&json!({"type": "join", "nick": "alice", "rooms": ["lobby"]}));
    let welcome = alice.expect_kind("welcome");
    let token = welcome["session"].as_str().expect("a token").to_owned();
    drop(alice);
    let mut again = server.connect();
    let join = json!({"type": "join", "nick": "alice", "rooms": ["lobby"], "resume": token});
    again.send_frame(&join);
    let welcome = again.expect_kind("welcome");
    assert_eq!(welcome["resumed"], json!(true), "{welcome}");
    again.send_frame(&json!({"type": "msg", "text": "marker"}));
    let log = wait_for_log(&server, "marker");
    assert!(
        log.lines()
            .any(|l| l.contains("resumed its session") && l.contains("nick=alice")),
        "{log}"
    );
}

/// A join refused and a connection's end are in the log too, with the
/// client's number (and its nickname, once it had one): an operator sees
/// why someone could not get in, and when someone went.
#[test]
fn a_refused_join_and_a_disconnect_are_logged() {
    let server = Server::start(&[]);
    let mut alice = server.join("alice");
    let mut again = server.connect();
    again.send_frame(&json!({"type": "join", "nick": "Alice"}));
    again.expect_error("nick_taken");
    let log = wait_for_log(&server, "join refused");
    let refused = log
        .lines()
        .find(|l| l.contains("join refused"))
        .expect("found");
    assert!(refused.contains("code=nick_taken"), "{refused}");
    assert!(refused.contains("client=#"), "{refused}");
    alice.send_frame(&json!({"type": "msg", "text": "bye"}));
    alice.expect_kind("msg");
    drop(alice);
    let log = wait_for_log(&server, "alice left");
    assert!(
        log.lines().any(|l| l.contains("disconnected")
            && l.contains("client=#")
            && l.contains("nick=alice")),
        "{log}"
    );
}

/// One the server closes itself (its pong never came) is logged with its
/// nickname too: the core forgets it before the connection is gone.
#[test]
fn a_connection_the_server_closes_is_logged_with_its_nickname() {
    let server = Server::start(&["--idle-ping-ms", "200", "--pong-timeout-ms", "300"]);
    // Bob reads nothing and answers no ping.
    let _bob = server.join("bob");
    let log = wait_for_log(&server, "bob left");
    assert!(
        log.lines()
            .any(|l| l.contains("closing connection") && l.contains("code=timeout")),
        "{log}"
    );
    let log = wait_for_log(&server, "disconnected");
    assert!(
        log.lines()
            .any(|l| l.contains("disconnected") && l.contains("nick=bob")),
        "{log}"
    );
}

/// `--sync` with `--store memory` does nothing: the log says so rather
/// than take it silently (an operator who asked for fsynced batches
/// learns none are written). A server that writes history does not say it.
#[test]
fn sync_given_without_a_history_database_is_said_unused() {
    let unused = "--sync is not used with --store memory";
    let memory = Server::start(&["--sync", "full"]);
    wait_for_log(&memory, unused);
    // So are the history database's other settings, all on one line.
    let memory = Server::start(&[
        "--store",
        "memory",
        "--history-max-messages",
        "50",
        "--store-max-mib",
        "10",
        "--history-prune-every-secs",
        "2",
    ]);
    wait_for_log(
        &memory,
        "--history-max-messages, --history-prune-every-secs and --store-max-mib are not used with --store memory",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path");
    let durable = Server::start(&["--data-dir", data, "--sync", "full"]);
    // Its settings line comes after where the warning would be.
    let log = wait_for_log(&durable, "history database open");
    assert!(!log.contains("is not used"), "{log}");
}

/// `--rate 0` turns the rate limit off, and with it the settings that
/// shape it: given beside it, they did nothing without a word. The log
/// says so (only of those given); with a rate, it does not.
#[test]
fn rate_settings_given_with_no_rate_limit_are_said_unused() {
    let off = Server::start(&[
        "--store",
        "memory",
        "--rate",
        "0",
        "--rate-bytes",
        "5000",
        "--read-burst-bytes",
        "20000000",
    ]);
    wait_for_log(
        &off,
        "--rate-bytes and --read-burst-bytes are not used with --rate 0",
    );
    let on = Server::start(&["--store", "memory", "--rate", "10", "--rate-bytes", "5000"]);
    // Clients are taken only after what the start has to say.
    let _alice = on.join("alice");
    let log = wait_for_log(&on, "alice joined");
    assert!(!log.contains("not used with --rate 0"), "{log}");
}

/// A data directory other users of the machine may enter (made by an
/// earlier version, or by hand) is said at start, with the command that
/// makes it private; one the server made (its owner's only) is not.
#[test]
#[cfg(unix)]
fn a_data_directory_open_to_others_is_said_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let said = "the data directory is open to other users of this machine";
    let tmp = tempfile::tempdir().expect("tempdir");
    let open = tmp.path().join("open");
    std::fs::create_dir(&open).expect("mkdir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let server = Server::start(&["--data-dir", open.to_str().expect("utf-8")]);
    let log = wait_for_log(&server, said);
    assert!(log.contains("chmod -R go-rwx"), "{log}");
    drop(server);
    let made = tmp.path().join("made");
    let server = Server::start(&["--data-dir", made.to_str().expect("utf-8")]);
    let log = wait_for_log(&server, "history database open");
    assert!(!log.contains(said), "{log}");
}

/// `chatserver | head -1`: once head has its line and exits, the log
/// goes to a closed pipe. The server serves on, and stderr says once
/// that the log is gone, and why, not once per event (a line for every
/// join and message would fill whatever keeps stderr).
#[test]
fn a_closed_stdout_is_said_once_on_stderr_and_the_server_serves_on() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::sync::mpsc;

    let mut child = common::command(&[])
        .args(["--listen", "127.0.0.1:0"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chatserver");
    let pid = child.id();
    let stop = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
    };
    // What `head -1` does: read the first line, then close the pipe.
    let mut first = String::new();
    let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
    out.read_line(&mut first).expect("the first line");
    drop(out);
    let addr: std::net::SocketAddr = match first
        .strip_prefix("listening on ")
        .and_then(|a| a.trim().parse().ok())
    {
        Some(addr) => addr,
        None => {
            stop(&mut child);
            panic!("unexpected first line {first:?}");
        }
    };
    let (err_tx, err_rx) = mpsc::channel();
    let stderr = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if err_tx.send(line).is_err() {
                break;
            }
        }
    });

    // Many events, each a log line: joins, presences, messages.
    let mut clients = Vec::new();
    for i in 0..10 {
        let mut c = common::Client::new(std::net::TcpStream::connect(addr).expect("connect"));
        c.join(&format!("user{i}"));
        for j in 0..5 {
            c.say(&format!("message {j}"));
            c.recv_until(100, |f| {
                f["type"] == "msg" && f["from"] == format!("user{i}")
            });
        }
        clients.push(c);
    }
    let said = err_rx.recv_timeout(WAIT);
    let said = match said {
        Ok(line) => line,
        Err(e) => {
            stop(&mut child);
            panic!("nothing on stderr: {e}");
        }
    };
    // Still serving after the log went.
    let mut late = common::Client::new(std::net::TcpStream::connect(addr).expect("connect"));
    late.join("late");
    late.say("still here");
    late.recv_until(100, |f| f["type"] == "msg" && f["text"] == "still here");
    drop(late);
    drop(clients);

    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM failed");
    let deadline = Instant::now() + WAIT;
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("try_wait") {
            break exit;
        }
        if Instant::now() >= deadline {
            stop(&mut child);
            panic!("chatserver did not exit after SIGTERM");
        }
        // Polling another process for its exit: bounded, ends on the exit.
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut more = Vec::new();
    while let Ok(line) = err_rx.recv_timeout(WAIT) {
        more.push(line);
        assert!(more.len() < 1000, "stderr does not end: {more:?}");
    }
    assert!(
        said.contains("the log cannot be written") && said.contains("Broken pipe"),
        "the one line should say the log is gone, and why: {said:?}"
    );
    assert!(more.is_empty(), "after {said:?}, stderr went on: {more:?}");
    assert!(exit.success(), "exit status {exit:?}");
}

/// A connection that ends by itself (a page reloaded, a network gone)
/// leaves its session kept for a resume, and its `disconnected` line
/// says so: the rooms' `left` lines after it read as if it had quit.
/// Without a resume window nothing is kept, and the line says nothing of it.
#[test]
fn a_disconnect_says_the_session_is_kept_for_a_resume() {
    for (flags, kept) in [(&[][..], true), (&["--resume-window-ms", "0"][..], false)] {
        let server = Server::start(flags);
        let mut alice = server.connect();
        alice.send_frame(&json!({"type": "join", "nick": "alice", "rooms": ["lobby"]}));
        alice.expect_kind("welcome");
        alice.recv_until(10, |f| common::is_presence(f, "alice", "online"));
        drop(alice);
        let log = wait_for_log(&server, "alice left");
        let line = log
            .lines()
            .find(|l| l.contains("disconnected") && l.contains("nick=alice"))
            .unwrap_or_else(|| panic!("no disconnected line in:\n{log}"));
        assert_eq!(
            line.contains("disconnected; its session is kept for a resume")
                && line.contains("resume_window_ms=120000"),
            kept,
            "{flags:?}: {line}"
        );
    }
}

/// The cluster's own settings given without `--cluster` do nothing: the
/// log says so, as it does of the history database's with `--store
/// memory`; a server given none of them does not.
#[test]
fn cluster_settings_given_without_a_cluster_are_said_unused() {
    let alone = Server::start(&["--cluster-replicas", "3", "--node-dead-after-ms", "5000"]);
    wait_for_log(
        &alone,
        "--cluster-replicas and --node-dead-after-ms are not used without --cluster",
    );
    let plain = Server::start(&[]);
    // Clients are taken only after what the start has to say.
    let _alice = plain.join("alice");
    let log = wait_for_log(&plain, "alice joined");
    assert!(!log.contains("without --cluster"), "{log}");
}

/// With `--store memory`, a room the cap of rooms forgets is gone with
/// its history: one that held a message is warned of by name, as the
/// history database's are; one where only presence came to pass is not.
#[test]
fn a_memory_server_warns_of_each_room_with_messages_it_forgets() {
    let server = Server::start(&["--max-rooms", "1"]);
    let mut alice = server.connect();
    alice.send_frame(&json!({"type": "join", "nick": "alice", "rooms": ["ra"]}));
    alice.expect_kind("welcome");
    let said = |alice: &mut common::Client, room: &str| {
        alice.send_frame(&json!({"type": "msg", "room": room, "text": "keep"}));
        alice.recv_until(100, |f| f["type"] == "msg" && f["room"] == room);
    };
    said(&mut alice, "ra");
    // Each enter of a new room forgets the one just left.
    for (left, next) in [("ra", "rb"), ("rb", "rc")] {
        alice.send_frame(&json!({"type": "part", "room": left}));
        alice.enter(next);
    }
    said(&mut alice, "rc");
    alice.send_frame(&json!({"type": "part", "room": "rc"}));
    alice.enter("rd");
    let log = wait_for_log(&server, "forgot #rc");
    let line = log
        .lines()
        .find(|l| l.contains("forgot #ra"))
        .unwrap_or_else(|| panic!("no forgot #ra in:\n{log}"));
    assert!(
        line.contains("WARN") && line.contains("--max-rooms"),
        "{line}"
    );
    assert!(!log.contains("forgot #rb"), "{log}");
}

/// A stdout nobody reads (`chatserver | less` paused, a terminal after
/// Ctrl-S, a stuck log shipper) stops neither chat nor the stop: every
/// message is still echoed with its log line going nowhere, a ping is
/// answered, someone new gets in, and SIGTERM ends the server. The log
/// filled the pipe (64 KiB) and the server froze there: echoes, pongs,
/// joins and SIGTERM all waited for a reader.
#[test]
fn a_stdout_nobody_reads_stops_neither_chat_nor_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Stdio};

    /// The server, killed (by its PID) if the test fails before it exits.
    struct Running(Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    // Every message's log line holds its text: 100 of 60,000 bytes are
    // about 6 MB of log, the pipe's 64 KiB many times over and past the
    // server's queue of lines (4 MiB) too.
    const MESSAGES: usize = 100;
    const TEXT_BYTES: usize = 60_000;

    let mut server = Running(
        common::command(&[])
            .args(["--listen", "127.0.0.1:0", "--rate", "0"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chatserver"),
    );
    // What a paused pager does: the first line read, then nothing, the
    // pipe kept open.
    let mut out = BufReader::new(server.0.stdout.take().expect("piped stdout"));
    let mut first = String::new();
    out.read_line(&mut first).expect("the first line");
    let addr: std::net::SocketAddr = first
        .strip_prefix("listening on ")
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    // stderr is read, so that only stdout is stuck.
    let stderr = server.0.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            if line.is_err() {
                break;
            }
        }
    });

    let connect = || common::Client::new(std::net::TcpStream::connect(addr).expect("connect"));
    let mut alice = connect();
    alice.join("alice");
    for i in 0..MESSAGES {
        let text = format!("{i:03} {}", "x".repeat(TEXT_BYTES));
        alice.say(&text);
        // A read with a deadline: the echo not coming fails the test.
        alice.recv_until(10, |f| f["type"] == "msg" && f["text"] == text.as_str());
    }
    alice.ping_pong();
    let mut bob = connect();
    bob.join("bob");
    bob.say("still here");
    let said = |f: &serde_json::Value| f["type"] == "msg" && f["text"] == "still here";
    bob.recv_until(MESSAGES + 10, said);
    alice.recv_until(10, |f| said(f) && f["from"] == "bob");

    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM failed");
    // The stop's own waits (--close-flush-ms, the log's last lines) are
    // a few seconds at most; a stuck stop is not.
    let within = std::time::Duration::from_secs(20);
    let exit = common::exit_within(&mut server.0, within)
        .unwrap_or_else(|| panic!("chatserver did not exit within {within:?} of SIGTERM"));
    assert!(exit.success(), "exit status {exit:?}");
    drop(out);
}
