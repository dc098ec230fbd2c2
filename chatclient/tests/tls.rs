//! TLS end to end: the real `chatserver` with a certificate from a CA made
//! here (rcgen), and `chatclient` with `--tls`, `tls://` and `--ca-cert`,
//! on 127.0.0.1:0.
//!
//! Nothing here sleeps to synchronise: every wait reads the lines it expects
//! (or the exit it expects) against a deadline, and fails with what it saw.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::pki::{arg, Pki};
use common::proxy::Proxy;
use common::{Client, Server, WAIT};

/// A chatserver speaking TLS with `cert` and `key` (and plain chatproto
/// too, unless `extra` says `--tls-only`).
fn tls_server(cert: &std::path::Path, key: &std::path::Path, extra: &[&str]) -> Server {
    let mut flags = vec!["--tls-cert", arg(cert), "--tls-key", arg(key)];
    flags.extend_from_slice(extra);
    Server::start(&flags)
}

/// One series of the server's `/metrics` (read over plain HTTP).
fn metric(addr: &str, series: &str) -> u64 {
    let mut s = TcpStream::connect(addr).expect("connect for /metrics");
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).expect("read /metrics");
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in {page}"))
}

/// A client that must fail before it joins: its exit code and its one
/// stderr line, within `--timeout` (4 s) and a margin.
fn fails(nick: &str, addr: &str, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let started = Instant::now();
    let c = Client::start_opts(nick, addr, args, env);
    let (status, stderr, seen) = c.wait_exit(Duration::from_secs(10));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{nick} took {:?}",
        started.elapsed()
    );
    assert!(seen.is_empty(), "{nick} printed {seen:#?}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    (status.code(), stderr)
}

/// A client over TLS and a plain one on the same port: each sees the
/// other's lines and its own echoes; the server counts one connection of
/// each kind; the TLS client, fed 150 lines at once through a pipe (past
/// the server's burst of 100, so its rate limit holds some back), exits 0
/// at the end of its input once every line was answered.
#[test]
fn a_tls_client_and_a_plain_one_chat_on_one_port() {
    let pki = Pki::new();
    let server = tls_server(&pki.cert, &pki.key, &[]);
    let tls_addr = format!("tls://{}", server.addr);
    let mut alice = Client::start_opts("alice", &tls_addr, &["--ca-cert", arg(&pki.ca)], &[]);
    alice.expect("* alice is online");
    let mut bob = Client::start("bob", &server.addr);
    bob.expect("* bob is online");
    alice.expect("* bob is online");

    assert_eq!(
        metric(&server.addr, "chat_connections{transport=\"tls\"}"),
        1
    );
    assert_eq!(
        metric(&server.addr, "chat_connections{transport=\"tcp\"}"),
        1
    );

    let lines: Vec<String> = (0..150).map(|i| format!("over tls {i:03}")).collect();
    alice.say_all(&lines);
    for line in &lines {
        let shown = format!("alice: {line}");
        alice.expect(&shown);
        bob.expect(&shown);
    }
    bob.say("in the clear");
    alice.expect("bob: in the clear");
    alice.say("@bob just you");
    bob.expect("alice -> bob: just you");

    alice.close_stdin();
    let (status, stderr, seen) = alice.wait_exit(WAIT);
    assert!(status.success(), "alice: {status} {stderr}");
    assert!(stderr.is_empty(), "alice's stderr: {stderr}");
    let echoed: Vec<&str> = seen
        .iter()
        .filter_map(|l| l.strip_prefix("alice: "))
        .collect();
    assert_eq!(echoed, lines, "each line echoed once, in order");
    bob.expect("* alice left");
}

/// Without --ca-cert the system's roots are used, and they do not know
/// our CA: exit code 7 and one line on stderr that says so and points at
/// --ca-cert. Also with another CA as the system's store (SSL_CERT_FILE)
/// or in --ca-cert; but our CA works either way, alone or in a bundle.
#[test]
fn a_certificate_not_trusted_exits_7_with_one_line() {
    let pki = Pki::new();
    let server = tls_server(&pki.cert, &pki.key, &[]);
    let tls_addr = format!("tls://{}", server.addr);

    // The machine's own store (or none at all: the same exit, said so).
    let (code, stderr) = fails("alice", &tls_addr, &[], &[]);
    assert_eq!(code, Some(7), "stderr: {stderr}");
    assert!(
        stderr.contains("was not trusted") || stderr.contains("found no root certificates"),
        "{stderr}"
    );
    assert!(stderr.contains("--ca-cert"), "{stderr}");

    // A store that surely lacks our CA: the handshake fails on it.
    let other = [("SSL_CERT_FILE", arg(&pki.other_ca))];
    let (code, stderr) = fails("alice", &tls_addr, &[], &other);
    assert_eq!(code, Some(7), "stderr: {stderr}");
    assert!(
        stderr.starts_with(&format!(
            "chatclient: the certificate of the server at {} was not trusted: \
             it is not signed by any CA in the system's store",
            server.addr
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--ca-cert PEM"), "{stderr}");
    // --tls says the same as tls://.
    let (code, _) = fails("alice", &server.addr, &["--tls"], &other);
    assert_eq!(code, Some(7));

    let (code, stderr) = fails("alice", &tls_addr, &["--ca-cert", arg(&pki.other_ca)], &[]);
    assert_eq!(code, Some(7), "stderr: {stderr}");
    assert!(stderr.contains("was not trusted"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "not signed by any certificate in {}",
            pki.other_ca.display()
        )),
        "{stderr}"
    );

    // Our CA as the system's store; then in a file with another CA first.
    let ours = [("SSL_CERT_FILE", arg(&pki.ca))];
    let mut alice = Client::start_opts("alice", &server.addr, &["--tls"], &ours);
    alice.expect("* alice is online");
    let mut bob = Client::start_opts("bob", &tls_addr, &["--ca-cert", arg(&pki.bundle)], &[]);
    bob.expect("* bob is online");
    alice.expect("* bob is online");
    bob.say("both trusted");
    alice.expect("bob: both trusted");
    assert_eq!(
        metric(&server.addr, "chat_connections{transport=\"tls\"}"),
        2
    );
}

/// A self-signed server certificate given as --ca-cert is trusted for the
/// name it lists (localhost); by an address it does not list, it is not.
#[test]
fn a_self_signed_certificate_is_trusted_for_its_name() {
    let pki = Pki::new();
    let server = tls_server(&pki.self_signed, &pki.self_signed_key, &[]);
    let port = server.addr.rsplit_once(':').unwrap().1;
    let trust = ["--ca-cert", arg(&pki.self_signed)];

    let mut alice = Client::start_opts("alice", &format!("tls://localhost:{port}"), &trust, &[]);
    alice.expect("* alice is online");
    alice.say("by name");
    alice.expect("alice: by name");

    let (code, stderr) = fails("bob", &format!("tls://127.0.0.1:{port}"), &trust, &[]);
    assert_eq!(code, Some(7), "stderr: {stderr}");
    assert!(stderr.contains("was not trusted"), "{stderr}");
    assert!(stderr.contains("not valid for name"), "{stderr}");
}

/// With several addresses, each node's certificate is checked against
/// that address's own host: here the first address (an IP address,
/// nothing listening) is refused, and the second, by name, has a
/// certificate for `localhost` only. Checked against the first address's
/// host (127.0.0.1), it was not trusted (exit code 7).
#[test]
fn each_address_is_checked_against_its_own_host() {
    let pki = Pki::new();
    let server = tls_server(&pki.self_signed, &pki.self_signed_key, &[]);
    let port = server.addr.rsplit_once(':').unwrap().1;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let list = format!("tls://{dead},localhost:{port}");
    let mut c = Client::start_opts(
        "alice",
        &list,
        &["--ca-cert", arg(&pki.self_signed)],
        &[("CHATCLIENT_FIRST_ADDR", "0")],
    );
    c.close_stdin();
    let (status, stderr, seen) = c.wait_exit(WAIT);
    assert!(status.success(), "{status}: {stderr}\n{seen:#?}");
    assert!(seen.contains(&"* alice is online".to_owned()), "{seen:#?}");
}

/// A server with --tls-only: the TLS client (its address written plainly,
/// --tls on) chats; a plain client is refused, exits non-zero (6) and its
/// one line suggests TLS.
#[test]
fn a_tls_only_server_takes_tls_clients_and_refuses_plain_ones() {
    let pki = Pki::new();
    let server = tls_server(&pki.cert, &pki.key, &["--tls-only"]);
    let mut alice = Client::start_opts(
        "alice",
        &server.addr,
        &[],
        &[
            ("CHATCLIENT_TLS", "1"),
            ("CHATCLIENT_CA_CERT", arg(&pki.ca)),
        ],
    );
    alice.expect("* alice is online");
    alice.say("only tls here");
    alice.expect("alice: only tls here");

    let (code, stderr) = fails("bob", &server.addr, &[], &[]);
    assert_ne!(code, Some(0), "stderr: {stderr}");
    assert_eq!(code, Some(6), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!(
            "use --tls or write the address as tls://{}",
            server.addr
        )),
        "{stderr}"
    );

    alice.say("/who");
    alice.expect("* online (1): alice");
    alice.close_stdin();
    let (status, stderr, _) = alice.wait_exit(WAIT);
    assert!(status.success(), "alice: {status} {stderr}");
}

/// A lost TLS connection is resumed over TLS (the server takes nothing
/// else): the proxy cuts it, the client reconnects, sums up what it
/// missed, and chats on.
#[test]
fn a_reconnect_is_made_over_tls_too() {
    let pki = Pki::new();
    let server = tls_server(&pki.cert, &pki.key, &["--tls-only"]);
    let proxy = Proxy::start(&server.addr);
    let ca = ["--ca-cert", arg(&pki.ca)];
    let mut bob = Client::start_opts("bob", &format!("tls://{}", server.addr), &ca, &[]);
    bob.expect("* bob is online");
    proxy.allow();
    let mut alice = Client::start_opts(
        "alice",
        &format!("tls://{}", proxy.addr),
        &["--ca-cert", arg(&pki.ca), "--timeout", "20"],
        &[("CHATCLIENT_RECONNECT_MIN_MS", "50")],
    );
    alice.expect("* alice is online");
    bob.expect("* alice is online");
    alice.say("before");
    bob.expect("alice: before");

    proxy.cut();
    alice.expect_line("saying the connection was lost", |l| {
        l.starts_with("* connection lost (")
    });
    bob.expect("* alice left");
    bob.say("while you were away");
    bob.expect("bob: while you were away");
    proxy.allow();
    alice.expect("bob: while you were away");
    alice.expect_line("summing up the reconnect", |l| {
        l.starts_with("* reconnected; ")
    });
    alice.say("after");
    bob.expect("alice: after");
    alice.expect("alice: after");
    alice.close_stdin();
    let (status, stderr, _) = alice.wait_exit(WAIT);
    assert!(status.success(), "alice: {status} {stderr}");
    assert!(stderr.is_empty(), "alice's stderr: {stderr}");
}

/// A node that takes the connection and says nothing in the TLS
/// handshake holds the client up for its `--timeout`, then gives way to
/// the next address, which lets it in; the client says so. It ended the
/// client with exit code 6 ("the TLS handshake did not finish within 1
/// s").
#[test]
fn a_node_silent_in_the_tls_handshake_gives_way_to_the_next() {
    let pki = Pki::new();
    let server = tls_server(&pki.cert, &pki.key, &[]);
    // Never accepted: the kernel completes the TCP handshake; nothing
    // answers the TLS one.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hung_addr = hung.local_addr().unwrap().to_string();
    let list = format!("tls://{hung_addr},{}", server.addr);
    let mut c = Client::start_opts(
        "alice",
        &list,
        &["--ca-cert", arg(&pki.ca), "--timeout", "1"],
        &[("CHATCLIENT_FIRST_ADDR", "0")],
    );
    c.close_stdin();
    let (status, stderr, seen) = c.wait_exit(WAIT);
    assert!(status.success(), "{status}: {stderr}\n{seen:#?}");
    let note = format!(
        "* node {hung_addr} did not finish the TLS handshake within 1 s, trying {}",
        server.addr
    );
    assert!(seen.contains(&note), "{seen:#?}");
    assert!(seen.contains(&"* alice is online".to_owned()), "{seen:#?}");
    drop(hung);
}

/// A node that takes the connection and closes it at once (a node going
/// down) fails the TLS handshake under it: that gives way to the next
/// address too, which lets the client in, and the client says so. It
/// ended the client with exit code 6 ("the TLS handshake with ... failed:
/// Connection reset by peer").
#[test]
fn a_node_that_closes_in_the_tls_handshake_gives_way_to_the_next() {
    let pki = Pki::new();
    let server = tls_server(&pki.cert, &pki.key, &[]);
    let closing = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closing_addr = closing.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in closing.incoming() {
            drop(s);
        }
    });
    let list = format!("tls://{closing_addr},{}", server.addr);
    let mut c = Client::start_opts(
        "alice",
        &list,
        &["--ca-cert", arg(&pki.ca)],
        &[("CHATCLIENT_FIRST_ADDR", "0")],
    );
    c.close_stdin();
    let (status, stderr, seen) = c.wait_exit(WAIT);
    assert!(status.success(), "{status}: {stderr}\n{seen:#?}");
    let note = format!("* the connection to node {closing_addr} failed in the TLS handshake (");
    let trying = format!("), trying {}", server.addr);
    assert!(
        seen.iter()
            .any(|l| l.starts_with(&note) && l.ends_with(&trying)),
        "{seen:#?}"
    );
    assert!(seen.contains(&"* alice is online".to_owned()), "{seen:#?}");
}

/// TLS to a server that has no certificate: its one line says the
/// handshake failed; exit code 6.
#[test]
fn tls_to_a_server_without_tls_exits_6() {
    let pki = Pki::new();
    let server = Server::start(&[]);
    let (code, stderr) = fails(
        "alice",
        &format!("tls://{}", server.addr),
        &["--ca-cert", arg(&pki.ca)],
        &[],
    );
    assert_eq!(code, Some(6), "stderr: {stderr}");
    assert!(stderr.contains("TLS handshake"), "{stderr}");
}

/// A --ca-cert that is missing or holds no certificate is a bad command
/// line: exit code 2 and one line, before connecting anywhere.
#[test]
fn a_bad_ca_cert_is_a_bad_command_line() {
    let pki = Pki::new();
    // Nothing listens there: the client must stop before it tries.
    let nowhere = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("tls://{}", l.local_addr().unwrap())
    };
    let missing = pki.dir().join("missing.pem");
    let (code, stderr) = fails("alice", &nowhere, &["--ca-cert", arg(&missing)], &[]);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(
        stderr.starts_with(&format!(
            "chatclient: cannot read --ca-cert {}",
            missing.display()
        )),
        "{stderr}"
    );

    // A key is PEM, but no certificate.
    let (code, stderr) = fails("alice", &nowhere, &["--ca-cert", arg(&pki.key)], &[]);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(stderr.contains("holds no certificate"), "{stderr}");

    let (code, stderr) = fails(
        "alice",
        &nowhere,
        &[],
        &[("CHATCLIENT_CA_CERT", arg(pki.dir()))],
    );
    assert_eq!(code, Some(2), "stderr: {stderr}");
    // Named as the variable it came from.
    assert!(
        stderr.contains("--ca-cert (from CHATCLIENT_CA_CERT)"),
        "{stderr}"
    );
}
