//! Connection caps: in all, and per IP address.

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
