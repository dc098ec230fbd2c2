//! Connection caps: in all, per IP address, and how fast one address may
//! open new connections.

mod common;

use common::{Server, WAIT};

/// The log's line for a refused connection: it says why in words, with
/// the cap and its flag (it said `why=Full`).
fn refusal_logged(server: &Server, why: &str) {
    assert!(
        server.wait_for_line("refusing connection", WAIT),
        "no refusal logged:\n{}",
        server.log()
    );
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("refusing connection"))
        .expect("the line waited for");
    assert!(line.contains(&format!("why=\"{why}\"")), "{line}");
}

#[test]
fn max_clients_refuses_the_next_connection_with_server_full() {
    let server = Server::start(&["--max-clients", "2"]);
    let mut alice = server.join("alice");
    // A connection counts whether it has joined or not.
    let mut lurker = server.connect();
    lurker.ping_pong();
    let mut third = server.connect();
    third.expect_error("server_full");
    third.expect_closed();
    // The refusal touched nobody already in.
    alice.ping_pong();
    lurker.ping_pong();
    refusal_logged(
        &server,
        "the server has no room for another client (--max-clients 2)",
    );
}

#[test]
fn max_clients_per_ip_refuses_a_second_connection_from_one_address() {
    let server = Server::start(&["--max-clients-per-ip", "1"]);
    let mut alice = server.join("alice");
    let mut second = server.connect();
    let message = second.expect_error("server_full");
    assert!(message.contains("address"), "{message}");
    second.expect_closed();
    alice.ping_pong();
    refusal_logged(
        &server,
        "too many connections from this address (--max-clients-per-ip 1)",
    );
}

/// One address opening connections in a loop (each joining, to be sent
/// its rooms' replays, then closing) is refused past its burst until time
/// gives its allowance back: closing one does not. Whoever is in already
/// is not touched.
#[test]
fn an_address_opening_connections_too_fast_is_refused_past_its_burst() {
    let server = Server::start(&["--connect-rate-per-ip", "1", "--connect-burst-per-ip", "3"]);
    let mut lurker = server.connect();
    lurker.ping_pong();
    for nick in ["bob", "carol"] {
        let bob = server.join(nick);
        drop(bob);
    }
    let mut fourth = server.connect();
    let message = fourth.expect_error("server_full");
    assert!(message.contains("new connections"), "{message}");
    // One a minute: a place again a minute after the first, less the
    // time the three took.
    let wait: u64 = message
        .split("wait ")
        .nth(1)
        .and_then(|w| w.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no wait in {message:?}"));
    assert!((30..=60).contains(&wait), "{message}");
    fourth.expect_closed();
    lurker.ping_pong();
    refusal_logged(
        &server,
        "new connections from this address come too fast \
         (--connect-rate-per-ip 1 a minute, --connect-burst-per-ip 3)",
    );
}

/// A burst of refusals is logged as one line and, within a second, one
/// more that says how many the first left out: every refusal is counted
/// in the log, though no refusal comes after the burst.
#[test]
fn a_burst_of_refusals_is_counted_in_the_log_once_it_ends() {
    let server = Server::start(&["--max-clients", "1"]);
    let mut alice = server.join("alice");
    const BURST: u64 = 6;
    for _ in 0..BURST {
        let mut refused = server.connect();
        refused.expect_error("server_full");
        refused.expect_closed();
    }
    alice.ping_pong();
    // The burst's lines: the first, and any a second or more after it
    // (a slow machine), each with the count it left out; the last one
    // says the rest after the burst.
    let count =
        |log: &str| common::refusals_logged(log, "refusing connection", "refused more connections");
    // Polled as the harness polls for a line, for WAIT at most.
    let deadline = std::time::Instant::now() + WAIT;
    while count(&server.log()) < BURST && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(count(&server.log()), BURST, "{}", server.log());
}
