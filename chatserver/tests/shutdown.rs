//! SIGTERM: stop accepting, tell every client, deliver what was queued, exit 0.

mod common;

use std::io::{self, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::{kind, Client, Next, Server, WAIT};
use serde_json::json;

const COUNT: usize = 300;

fn text(i: usize) -> String {
    format!("{i:04} {}", "z".repeat(1000))
}

/// Poll (bounded) until connecting is refused. A connection that still gets
/// through in the meantime must not be served.
fn wait_until_refused(server: &Server) {
    let deadline = Instant::now() + WAIT;
    for _ in 0..500 {
        match TcpStream::connect(server.addr()) {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return,
            Err(e) => panic!("connect: {e}"),
            Ok(stream) => {
                let mut c = Client::new(stream);
                let join = json!({"type": "join", "nick": "late"}).to_string();
                let _ = c.stream().write_all(&common::frame_bytes(join.as_bytes()));
                if let Next::Frame(f) = c.next() {
                    assert_ne!(kind(&f), "welcome", "joined a server that is shutting down");
                }
            }
        }
        assert!(Instant::now() < deadline, "the server kept accepting");
        thread::sleep(Duration::from_millis(20));
    }
    panic!("the server kept accepting");
}

/// SIGHUP (the terminal the server was started in closed) stops it as
/// SIGTERM does: everyone told, exit 0. It used to kill it on the spot.
#[test]
fn sighup_stops_the_server_cleanly() {
    let mut server = Server::start(&[]);
    let mut alice = server.join("alice");
    server.signal("HUP");
    let notice = alice.expect_kind("notice");
    assert!(
        notice["text"]
            .as_str()
            .is_some_and(|t| t.contains("shutting down")),
        "{notice}"
    );
    alice.expect_closed();
    let status = server.wait_exit(Duration::from_secs(5));
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn sigterm_notifies_everyone_flushes_queued_messages_and_exits_zero() {
    let mut server = Server::start(&["--rate", "0"]);
    let mut alice = server.join("alice");
    // bob reads slowly: with a small receive buffer most of what alice sends
    // him waits in the server's queue when the signal arrives.
    let mut bob = server.connect_with_rcvbuf(4096);
    bob.join("bob");
    alice.expect_kind("presence");
    let mut lurker = server.connect();
    lurker.ping_pong();

    for i in 0..COUNT {
        alice.send_frame(&json!({"type": "msg", "to": ["bob"], "text": text(i)}));
    }
    // Every echo back means the room accepted the message and queued it for bob.
    for i in 0..COUNT {
        let echo = alice.expect_kind("msg");
        assert!(echo["text"] == text(i).as_str());
    }

    server.sigterm();
    for i in 0..COUNT {
        let m = bob.expect_kind("msg");
        assert!(
            m["text"] == text(i).as_str(),
            "message {i} lost in shutdown"
        );
    }
    for c in [&mut bob, &mut alice, &mut lurker] {
        let notice = c.expect_kind("notice");
        assert!(
            !notice["text"].as_str().unwrap_or("").is_empty(),
            "{notice}"
        );
        c.expect_closed();
    }
    wait_until_refused(&server);
    let status = server.wait_exit(Duration::from_secs(5));
    assert!(status.success(), "exit status {status:?}");
}

/// A second signal while the stop waits for a client that does not read
/// (up to `--close-flush-ms`, here a minute) exits at once, with 128 plus
/// its number, and says so; the first is named in the log. It used to be
/// taken and the stop waited on.
#[test]
fn a_second_signal_while_stopping_exits_at_once() {
    for (signal, status) in [("TERM", 143), ("INT", 130)] {
        let mut server = Server::start(&["--rate", "0", "--close-flush-ms", "60000"]);
        let mut alice = server.join("alice");
        // bob reads nothing: what alice sends him stays queued.
        let mut bob = server.connect_with_rcvbuf(4096);
        bob.join("bob");
        alice.expect_kind("presence");
        for i in 0..COUNT {
            alice.send_frame(&json!({"type": "msg", "to": ["bob"], "text": text(i)}));
        }
        for _ in 0..COUNT {
            alice.expect_kind("msg");
        }
        server.signal(signal);
        let first = format!("SIG{signal} received: stop accepting");
        assert!(server.wait_for_line(&first, WAIT), "{}", server.log());
        server.signal(signal);
        let exit = server.wait_exit(WAIT);
        assert_eq!(exit.code(), Some(status), "{exit:?}: {}", server.log());
        let log = server.log();
        assert!(
            log.contains(&format!("SIG{signal} received while stopping: exiting now")),
            "{log}"
        );
        drop(bob);
    }
}

#[test]
fn sigterm_right_after_the_listening_line_still_exits_zero() {
    // A supervisor may stop the server as soon as it reads that line; the
    // handler must already be in place then. A few rounds, because a late
    // handler loses only some races.
    for round in 0..5 {
        let mut server = Server::start(&[]);
        server.sigterm();
        let status = server.wait_exit(Duration::from_secs(5));
        assert!(status.success(), "round {round}: exit status {status:?}");
    }
}

/// A browser, a scraper or a health checker keeps its HTTP connection
/// open between requests. Shutdown closes such a connection at once
/// instead of waiting the whole flush time for it (and then warning that
/// something was not flushed, when nothing was queued).
#[test]
fn sigterm_closes_an_idle_kept_alive_http_connection_at_once() {
    use std::io::Read;
    let mut server = Server::start(&[]);
    let mut http = TcpStream::connect(server.addr()).expect("connect");
    http.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("ask");
    http.set_read_timeout(Some(WAIT)).expect("timeout");
    // The whole answer (its body is the last line), then the connection
    // stays open for the next request.
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"ok\n") {
        let n = http.read(&mut buf).expect("the answer");
        assert!(n > 0, "closed before answering: {answer:?}");
        answer.extend_from_slice(&buf[..n]);
        assert!(answer.len() < 4096, "{answer:?}");
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    server.sigterm();
    // Closed by the server, not by the read timeout.
    let n = http.read(&mut buf).expect("closed, not timed out");
    assert_eq!(n, 0, "{:?}", &buf[..n]);
    assert!(server.wait_exit(WAIT).success());
    let log = server.log();
    assert!(!log.contains("had not ended"), "{log}");
}
