//! TLS on the shared port: chatproto, https:// and wss:// with a
//! certificate made for the test, a client that does not trust it,
//! `--tls-only`, and the start-up errors of bad certificate files.

mod common;
mod webclient;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{frame_bytes, is_presence, kind, run_to_exit, Next, Server, WAIT};
use rustls::ClientConfig;
use serde_json::json;
use webclient::{masked_frame, request, tcp, tls_connect, ws_over, Ca, Framed, Pki, Tls, WsNext};

/// A server with `pki`'s certificate and `extra` flags.
fn tls_server(pki: &Pki, extra: &[&str]) -> Server {
    let mut flags = pki.flags();
    flags.extend_from_slice(extra);
    Server::start(&flags)
}

/// A TLS connection to `server` that checks its certificate against
/// `config` for `name`; fails the test if the handshake does.
fn tls(server: &Server, config: &Arc<ClientConfig>, name: &str) -> Tls {
    tls_connect(server.addr(), config, name)
        .unwrap_or_else(|e| panic!("TLS handshake with {name}: {e}"))
}

#[test]
fn chatproto_over_tls_shares_a_room_with_tcp() {
    let pki = Pki::new();
    let server = tls_server(&pki, &[]);
    let config = pki.ca.client_config();
    let mut alice = Framed::new(tls(&server, &config, "localhost"));
    let welcome = alice.join("alice");
    assert_eq!(welcome["online"], json!(["alice"]));
    let mut bob = server.join("bob");
    assert!(is_presence(&alice.recv_frame(), "bob", "online"));

    alice.send_frame(&json!({"type": "msg", "text": "from TLS"}));
    let (mine, theirs) = (alice.expect_kind("msg"), bob.expect_kind("msg"));
    assert_eq!(mine, theirs);
    assert_eq!(theirs["text"], "from TLS");
    bob.send_frame(&json!({"type": "msg", "to": ["alice"], "text": "from TCP"}));
    let (mine, theirs) = (bob.expect_kind("msg"), alice.expect_kind("msg"));
    assert_eq!(mine, theirs);
    assert_eq!(theirs["from"], "bob");

    // /metrics over https sees one of each.
    let mut s = tls(&server, &config, "127.0.0.1");
    let res = request(&mut s, "GET", "/metrics", &server.addr().to_string()).expect("metrics");
    assert_eq!(res.status, 200);
    let page = res.text();
    for line in [
        "chat_connections{transport=\"tls\"} 1",
        "chat_connections{transport=\"tcp\"} 1",
        "chat_connections{transport=\"websocket\"} 0",
    ] {
        assert!(page.lines().any(|l| l == line), "no {line:?} in\n{page}");
    }
    alice.send_frame(&json!({"type": "ping"}));
    alice.expect_kind("pong");
}

#[test]
fn https_serves_the_page_and_the_second_line_says_https() {
    let pki = Pki::new();
    let server = tls_server(&pki, &[]);
    assert_eq!(
        server.second_line(),
        format!("open https://{}/ in a browser", server.addr())
    );
    let config = pki.ca.client_config();
    let host = format!("localhost:{}", server.addr().port());
    let mut s = tls(&server, &config, "localhost");
    let page = request(&mut s, "GET", "/", &host).expect("GET / over TLS");
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/html"));
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(page.text().contains("<!doctype html>"));
    let mut s = tls(&server, &config, "localhost");
    let health = request(&mut s, "GET", "/healthz", &host).expect("GET /healthz over TLS");
    assert_eq!((health.status, health.text().trim()), (200, "ok"));
    // Without --tls-only, plain HTTP is still served beside it.
    assert_eq!(webclient::get(server.addr(), "/healthz").status, 200);
}

#[test]
fn wss_carries_chatproto_and_checks_the_https_origin() {
    let pki = Pki::new();
    let server = tls_server(&pki, &[]);
    let config = pki.ca.client_config();
    let port = server.addr().port();
    let url = format!("wss://localhost:{port}/ws");
    let own = format!("https://localhost:{port}");
    let mut ws = ws_over(tls(&server, &config, "localhost"), &url, Some(&own))
        .unwrap_or_else(|e| panic!("wss with Origin {own}: {e}"));
    ws.join("alice");
    let mut bob = server.join("bob");
    assert!(is_presence(&ws.recv_frame(), "bob", "online"));
    bob.say("hello wss");
    assert_eq!(ws.expect_kind("msg")["text"], "hello wss");
    ws.ping_pong();
    // The log tells a wss:// connection from a ws:// one (its line read
    // once there: the log comes through a pipe, behind the frames).
    assert!(
        server.wait_for_line("websocket connected", WAIT),
        "{}",
        server.log()
    );
    let log = server.log();
    let opened = log.lines().find(|l| l.contains("websocket connected"));
    assert!(opened.is_some_and(|l| l.contains("tls=true")), "{log}");

    // The page's own host is its own whichever scheme it was served
    // with (this port serves both); another host's or port's is not.
    let plain_origin = format!("http://localhost:{port}");
    let mut ws = ws_over(
        tls(&server, &config, "localhost"),
        &url,
        Some(&plain_origin),
    )
    .unwrap_or_else(|e| panic!("wss with Origin {plain_origin}: {e}"));
    ws.join("carol");
    for other in [
        format!("https://localhost:{}", port ^ 1),
        "https://evil.lan".to_owned(),
    ] {
        match ws_over(tls(&server, &config, "localhost"), &url, Some(&other)) {
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                assert_eq!(res.status().as_u16(), 403)
            }
            Err(e) => panic!("expected 403, got {e}"),
            Ok(_) => panic!("Origin {other} was let in over TLS"),
        }
    }
}

#[test]
fn a_full_server_refuses_tls_clients_inside_tls() {
    let pki = Pki::new();
    let server = tls_server(&pki, &["--max-clients", "1"]);
    let mut lurker = server.connect();
    lurker.ping_pong();
    let config = pki.ca.client_config();
    // https: a 503 saying when to try again, over a finished handshake.
    let mut s = tls_connect(server.addr(), &config, "localhost")
        .expect("the TLS handshake of a refused connection");
    let host = format!("localhost:{}", server.addr().port());
    let res = request(&mut s, "GET", "/", &host).expect("an answer over TLS");
    assert_eq!(res.status, 503, "{res:?}");
    assert_eq!(res.header("retry-after"), Some("5"), "{res:?}");
    assert!(res.text().contains("no room"), "{res:?}");
    // chatproto inside TLS: the server_full error frame.
    let mut alice = Framed::new(tls(&server, &config, "localhost"));
    alice.send_frame(&json!({"type": "join", "nick": "alice"}));
    let error = alice.expect_kind("error");
    assert_eq!(error["code"], "server_full", "{error}");
    match alice.next_within(WAIT) {
        Next::Eof | Next::Reset => {}
        other => panic!("a refused TLS client was kept: {other:?}"),
    }
    lurker.ping_pong();
}

#[test]
fn a_wss_opening_that_stalls_is_closed_one_join_timeout_after_accept() {
    let pki = Pki::new();
    let server = tls_server(&pki, &["--join-timeout-ms", "3000"]);
    let config = pki.ca.client_config();
    let start = Instant::now();
    let sock = webclient::tcp(server.addr());
    // A slow client, phase by phase: its TLS handshake begins 2 s after
    // it connected, then it sends half of a WebSocket opening and stalls.
    // Each phase used to get a whole join timeout of its own (closed
    // after 5 s here); all of them together get one, from accept.
    thread::sleep(Duration::from_secs(2));
    let mut s = webclient::tls_over(sock, &config, "localhost").expect("TLS handshake");
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n")
        .expect("write");
    s.flush().expect("flush");
    let got = webclient::read_to_close(&mut s);
    let waited = start.elapsed();
    let got = String::from_utf8_lossy(&got);
    assert!(got.is_empty() || got.starts_with("HTTP/1.1 408"), "{got:?}");
    assert!(
        waited >= Duration::from_millis(3000),
        "closed after {waited:?}, before the join timeout"
    );
    assert!(
        waited < Duration::from_millis(4600),
        "closed {waited:?} after connecting, not one join timeout (3 s) after"
    );
}

#[test]
fn inside_tls_silence_is_timed_out_and_a_tls_record_is_too_large() {
    let pki = Pki::new();
    let server = tls_server(&pki, &["--join-timeout-ms", "1000"]);
    let config = pki.ca.client_config();
    // Silent after the handshake: the chatproto timeout, inside TLS.
    let mut silent = Framed::new(tls(&server, &config, "localhost"));
    let error = silent.expect_kind("error");
    assert_eq!(error["code"], "timeout", "{error}");
    match silent.next_within(WAIT) {
        Next::Eof | Next::Reset => {}
        other => panic!("a timed-out TLS client was kept: {other:?}"),
    }
    // A TLS record inside TLS is a chatproto header over every limit.
    let mut nested = tls(&server, &config, "localhost");
    nested.write_all(&[0x16, 0x03, 0x01, 0x00]).expect("write");
    nested.flush().expect("flush");
    let mut nested = Framed::new(nested);
    let error = nested.expect_kind("error");
    assert_eq!(error["code"], "frame_too_large", "{error}");
}

/// The TLS error of a handshake with `server` (as `localhost`) that must
/// fail: `what` names it if it succeeds, or fails for another reason.
fn handshake_error(server: &Server, config: &Arc<ClientConfig>, what: &str) -> rustls::Error {
    let err = match tls_connect(server.addr(), config, "localhost") {
        Ok(_) => panic!("{what} was accepted"),
        Err(e) => e,
    };
    match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(inner) => inner.clone(),
        None => panic!("{what} failed without a TLS error: {err:?}"),
    }
}

/// A TLS client of a server without a certificate is told so in TLS (a
/// fatal `handshake_failure` alert), not reset without a word. Anyone can
/// send a ClientHello, so the log says it at most once a second, then how
/// many it left out.
#[test]
fn a_tls_client_of_a_server_without_a_certificate_gets_an_alert() {
    let server = Server::start(&[]);
    let config = Pki::new().ca.client_config();
    const TRIES: usize = 5;
    for _ in 0..TRIES {
        let err = handshake_error(&server, &config, "a TLS handshake without a certificate");
        assert!(
            matches!(
                err,
                rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure)
            ),
            "{err:?}"
        );
    }
    // The server goes on serving everyone else.
    server.join("alice").ping_pong();
    assert!(
        server.wait_for_line("refused more TLS clients", WAIT),
        "{}",
        server.log()
    );
    let log = server.log();
    let lines = log
        .lines()
        .filter(|l| l.contains("has no certificate"))
        .count();
    let counted = common::refusals_logged(&log, "has no certificate", "refused more TLS clients");
    assert!(lines < TRIES, "a line per try:\n{log}");
    assert_eq!(counted, TRIES as u64, "every try counted:\n{log}");
}

/// A TLS client refused at accept (here at its address's cap) by a
/// server without a certificate gets the same alert as an admitted one:
/// it was closed with its ClientHello unread, which reset it.
#[test]
fn a_tls_client_refused_by_a_server_without_a_certificate_gets_an_alert() {
    let server = Server::start(&["--max-clients-per-ip", "1"]);
    let mut holder = server.connect();
    holder.ping_pong();
    let config = Pki::new().ca.client_config();
    let err = handshake_error(&server, &config, "a TLS client over the cap");
    assert!(
        matches!(
            err,
            rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure)
        ),
        "{err:?}"
    );
    assert!(
        server.wait_for_line("--max-clients-per-ip 1", WAIT),
        "the refusal is not for the cap:\n{}",
        server.log()
    );
    holder.ping_pong();
}

/// Refusals answered inside a finished TLS handshake come at most 20 a
/// second (after 20 at once): past that, the `handshake_failure` alert.
/// One address reconnecting in a loop over its cap had the server sign a
/// handshake for each refusal, 60% of a core at 776 a second.
#[test]
fn refusals_inside_tls_handshakes_are_rated() {
    let pki = Pki::new();
    let server = tls_server(&pki, &["--max-clients-per-ip", "1"]);
    let mut holder = server.connect();
    holder.ping_pong();
    let config = pki.ca.client_config();
    let start = Instant::now();
    let (mut handshakes, mut alerts) = (0u64, 0u64);
    for _ in 0..200 {
        match tls_connect(server.addr(), &config, "localhost") {
            Ok(_) => handshakes += 1,
            Err(e) => {
                let inner = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
                assert!(
                    matches!(
                        inner,
                        Some(rustls::Error::AlertReceived(
                            rustls::AlertDescription::HandshakeFailure
                        ))
                    ),
                    "{e:?}"
                );
                alerts += 1;
                if alerts >= 5 {
                    break;
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert!(handshakes >= 1, "no refusal was answered inside TLS");
    assert!(
        alerts >= 5,
        "{handshakes} handshakes in {secs:.2} s, no alert"
    );
    let most = 20.0 + 20.0 * secs + 1.0;
    assert!(
        (handshakes as f64) <= most,
        "{handshakes} refusals' handshakes in {secs:.2} s (at most {most:.0})"
    );
    holder.ping_pong();
}

#[test]
fn a_client_that_does_not_trust_the_certificate_fails_and_others_go_on() {
    let pki = Pki::new();
    let server = tls_server(&pki, &[]);
    let mut bob = server.join("bob");
    let stranger = Ca::new("someone else's CA").client_config();
    let err = handshake_error(&server, &stranger, "a certificate from an untrusted CA");
    assert!(
        matches!(
            err,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        ),
        "{err:?}"
    );
    // The right CA but the wrong name fails too.
    let config = pki.ca.client_config();
    let err = tls_connect(server.addr(), &config, "chat.example")
        .expect_err("a certificate for another name was accepted");
    assert!(format!("{err:?}").contains("NotValidForName"), "{err:?}");

    // The server goes on serving everyone else.
    let mut alice = Framed::new(tls(&server, &config, "localhost"));
    alice.join("alice");
    assert!(is_presence(&bob.recv_frame(), "alice", "online"));
    bob.ping_pong();
    // Both refusals are counted, for an operator whose log (at info)
    // does not name them (each as the server reads the client's alert:
    // bounded polling).
    let deadline = Instant::now() + WAIT;
    loop {
        let page = server.http_get("/metrics");
        if page
            .lines()
            .any(|l| l == "chat_tls_handshake_failures_total 2")
        {
            break;
        }
        assert!(Instant::now() < deadline, "{page}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tls_only_refuses_plain_chatproto_and_http_and_serves_tls() {
    let pki = Pki::new();
    let server = tls_server(&pki, &["--tls-only"]);
    // Plain chatproto is told so in chatproto (not a reset), even with
    // its join unread.
    let mut plain = server.connect();
    plain.send_frame(&json!({"type": "join", "nick": "alice"}));
    let why = plain.expect_error("bad_frame");
    assert!(why.contains("TLS only"), "{why}");
    plain.expect_closed();
    // The operator sees it too.
    assert!(
        server.wait_for_line(
            "refusing an unencrypted connection: this server takes TLS only",
            WAIT
        ),
        "{}",
        server.log()
    );

    // Plain HTTP is answered 400, saying to use https (not a reset).
    let mut s = tcp(server.addr());
    let res = request(&mut s, "GET", "/", &server.addr().to_string()).expect("an answer");
    assert_eq!(res.status, 400, "{res:?}");
    assert!(res.text().contains("https://"), "{res:?}");
    // Said too: on its own line, or (within a second of the first) in the
    // count the log gives when that second ends.
    assert!(
        server.wait_for_lines("unencrypted connection", 2, WAIT),
        "{}",
        server.log()
    );

    let config = pki.ca.client_config();
    let mut alice = Framed::new(tls(&server, &config, "localhost"));
    alice.join("alice");
    let mut s = tls(&server, &config, "localhost");
    let host = format!("localhost:{}", server.addr().port());
    assert_eq!(
        request(&mut s, "GET", "/", &host).expect("https").status,
        200
    );
    // The refusal is counted by the code it sent.
    let mut s = tls(&server, &config, "localhost");
    let page = request(&mut s, "GET", "/metrics", &host)
        .expect("metrics")
        .text();
    let line = "chat_disconnects_total{reason=\"bad_frame\"} 1";
    assert!(page.lines().any(|l| l == line), "no {line:?} in\n{page}");
}

// ---------------------------------------------------------------------
// Start-up errors
// ---------------------------------------------------------------------

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

/// The server must refuse to start: exit 1, nothing listening, and one
/// line on stderr, which is returned.
fn refuses_to_start(flags: &[&str]) -> String {
    let mut args = vec!["--listen", "127.0.0.1:0"];
    args.extend_from_slice(flags);
    let run = run_to_exit(&args, WAIT);
    assert_eq!(run.status.code(), Some(1), "{flags:?}: {run:?}");
    assert!(!run.stdout.contains("listening"), "{run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{flags:?}: not one line: {:?}", run.stderr);
    lines[0].to_owned()
}

/// A CA's certificate (`CA:TRUE`, as `openssl req -x509` makes one) and
/// its key, in PEM files in `dir`.
fn ca_certificate(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate().expect("a key");
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("certificate params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("a self-signed certificate");
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (cert_path, key_path)
}

/// A start that fails after the certificate was read (here the data
/// directory cannot be made: a file is in its place) still warns of a
/// certificate clients will refuse, before its error: the operator who
/// mends the error would otherwise meet the certificate's fault only
/// once clients refuse it. Both outputs go to one file, so their order
/// shows.
#[test]
fn a_failed_start_still_warns_of_the_certificate_before_its_error() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (cert, key) = ca_certificate(dir.path());
    let in_the_way = dir.path().join("data");
    std::fs::write(&in_the_way, "a file, not a directory").expect("write");
    let flags = [
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        path_str(&in_the_way),
        "--tls-cert",
        path_str(&cert),
        "--tls-key",
        path_str(&key),
    ];
    let line = refuses_to_start(&flags[2..]);
    assert!(line.contains(path_str(&in_the_way)), "{line}");

    let out_path = dir.path().join("output");
    let out = std::fs::File::create(&out_path).expect("create the output file");
    let err = out.try_clone().expect("the same file for stderr");
    let mut child = common::command(&flags)
        .args(flags)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start chatserver");
    let status = common::exit_within(&mut child, WAIT)
        .unwrap_or_else(|| panic!("chatserver did not exit within {WAIT:?}"));
    assert_eq!(status.code(), Some(1), "{status:?}");
    let output = std::fs::read_to_string(&out_path).expect("read the output");
    let lines: Vec<&str> = output.lines().collect();
    let warned = lines
        .iter()
        .position(|l| l.contains("WARN") && l.contains("is a CA's (basicConstraints CA:TRUE)"));
    let failed = lines.iter().position(|l| *l == line);
    assert!(
        matches!((warned, failed), (Some(w), Some(f)) if w < f),
        "not the warning, then the error: {output}"
    );
}

/// A certificate clients will refuse (here a CA's, `CA:TRUE`, as
/// `openssl req -x509` makes one) is warned of at start, but after the
/// `listening on IP:PORT` line: that stays the first line, which a
/// supervisor or a script reads for the port (it was a warning).
#[test]
fn a_certificate_clients_refuse_is_warned_of_after_listening_on() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (cert_path, key_path) = ca_certificate(dir.path());
    // `start` fails the test unless the first line is `listening on`.
    let server = Server::start(&[
        "--tls-cert",
        path_str(&cert_path),
        "--tls-key",
        path_str(&key_path),
    ]);
    assert!(
        server.second_line().starts_with("open https://"),
        "{}",
        server.log()
    );
    assert!(
        server.wait_for_line("is a CA's (basicConstraints CA:TRUE)", WAIT),
        "no warning: {}",
        server.log()
    );
}

#[test]
fn bad_certificate_files_stop_the_server_with_one_line_naming_the_file() {
    let pki = Pki::new();
    let dir = pki.dir.path();
    let (cert, key) = (path_str(&pki.cert), path_str(&pki.key));

    let missing = dir.join("missing.pem");
    let line = refuses_to_start(&["--tls-cert", path_str(&missing), "--tls-key", key]);
    assert!(line.contains(path_str(&missing)), "{line}");
    assert!(
        line.starts_with("chatserver: cannot read the certificate file"),
        "{line}"
    );
    let line = refuses_to_start(&["--tls-cert", cert, "--tls-key", path_str(&missing)]);
    assert!(line.contains("cannot read the key file"), "{line}");
    assert!(
        !line.contains("expected"),
        "a missing file is not a format: {line}"
    );

    // A key of its own, not the certificate's.
    let other_key = dir.join("other-key.pem");
    let stray = rcgen::KeyPair::generate().expect("a key");
    std::fs::write(&other_key, stray.serialize_pem()).expect("write");
    let line = refuses_to_start(&["--tls-cert", cert, "--tls-key", path_str(&other_key)]);
    assert!(line.contains(path_str(&other_key)), "{line}");
    assert!(line.contains("is not the key of the certificate"), "{line}");
    assert!(!line.contains("KeyMismatch"), "{line}");

    // Not PEM: the certificate in DER, and a key file of plain text.
    let der = dir.join("cert.der");
    let (leaf, _) = pki.ca.leaf();
    std::fs::write(&der, leaf.der().as_ref()).expect("write");
    let line = refuses_to_start(&["--tls-cert", path_str(&der), "--tls-key", key]);
    assert!(line.contains(path_str(&der)), "{line}");
    let text = dir.join("key.txt");
    std::fs::write(&text, "not a key\n").expect("write");
    let line = refuses_to_start(&["--tls-cert", cert, "--tls-key", path_str(&text)]);
    assert!(line.contains(path_str(&text)), "{line}");
    assert!(
        line.contains("holds no key; expected a PEM private key"),
        "{line}"
    );
    // An encrypted key: the server cannot ask for its passphrase.
    let locked = dir.join("locked.pem");
    let pem = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n";
    std::fs::write(&locked, pem).expect("write");
    let line = refuses_to_start(&["--tls-cert", cert, "--tls-key", path_str(&locked)]);
    assert!(line.contains("holds an encrypted key"), "{line}");
}

#[test]
fn tls_only_without_a_certificate_is_refused() {
    let line = refuses_to_start(&["--tls-only"]);
    assert!(
        line.contains("--tls-only") && line.contains("--tls-cert"),
        "{line}"
    );
}

#[test]
fn a_tls_client_that_leaves_is_closed_by_the_server() {
    let pki = Pki::new();
    let server = tls_server(&pki, &[]);
    let config = pki.ca.client_config();
    let mut bob = server.join("bob");
    let mut alice = Framed::new(tls(&server, &config, "localhost"));
    alice.join("alice");
    assert!(is_presence(&bob.recv_frame(), "alice", "online"));
    alice.finish_writing();
    // Everyone sees her go, and the server closes its side too: nothing
    // is left open for a client that is gone.
    assert!(is_presence(&bob.recv_frame(), "alice", "offline"));
    match alice.next_within(WAIT) {
        Next::Eof | Next::Reset => {}
        other => panic!("the server kept the TLS connection open: {other:?}"),
    }
}

/// Inside TLS, a client that sends its join and a ping and then ends the
/// TCP stream (no close_notify, as many clients do) gets both answers
/// before the server closes.
#[test]
fn frames_sent_before_the_end_of_a_tls_stream_are_answered() {
    let pki = Pki::new();
    let server = tls_server(&pki, &["--idle-ping-ms", "60000"]);
    let config = pki.ca.client_config();
    let mut alice = Framed::new(tls(&server, &config, "localhost"));
    let mut bytes = frame_bytes(
        json!({"type": "join", "nick": "alice"})
            .to_string()
            .as_bytes(),
    );
    bytes.extend(frame_bytes(br#"{"type":"ping"}"#));
    alice.send_raw(&bytes);
    alice.shutdown_write();
    let mut got = Vec::new();
    loop {
        match alice.next_within(WAIT) {
            Next::Frame(f) => got.push(kind(&f).to_owned()),
            Next::Eof => break,
            other => panic!("{other:?} after {got:?}"),
        }
    }
    assert_eq!(got, ["welcome", "presence", "pong"]);
}

/// Over wss://, a client that sends a message and a ping and then ends
/// its stream without a WebSocket close (with or without TLS's
/// close_notify) gets the echo and the pong, then the close 1000.
#[test]
fn frames_sent_before_a_wss_stream_ends_without_a_close_are_answered() {
    let pki = Pki::new();
    let server = tls_server(&pki, &["--idle-ping-ms", "60000"]);
    let config = pki.ca.client_config();
    let url = format!("wss://localhost:{}/ws", server.addr().port());
    for (i, notify) in [false, true].into_iter().enumerate() {
        let mut ws = ws_over(tls(&server, &config, "localhost"), &url, None)
            .unwrap_or_else(|e| panic!("wss: {e}"));
        ws.join(&format!("alice{i}"));
        let mask = [1, 2, 3, 4];
        let mut bytes = masked_frame(0x1, br#"{"type":"msg","text":"last words"}"#, mask);
        bytes.extend(masked_frame(0x1, br#"{"type":"ping"}"#, mask));
        ws.send_raw(&bytes);
        ws.end_tls(notify);
        let mut got = Vec::new();
        let code = loop {
            match ws.next() {
                WsNext::Frame(f) => got.push(f),
                WsNext::Closed(code) => break code,
                other => panic!("close_notify {notify}: {other:?} after {got:?}"),
            }
        };
        let kinds: Vec<&str> = got.iter().map(kind).collect();
        assert_eq!(kinds, ["msg", "pong"], "close_notify {notify}: {got:?}");
        assert_eq!(got[0]["text"], "last words");
        assert_eq!(code, Some(1000), "close_notify {notify}");
    }
}

/// Inside TLS (chatproto, and a WebSocket over wss://) as over TCP: a
/// resume sent and ended (the TCP stream's end; a WebSocket close) while
/// the server was stopped, read at once with its end, takes nothing over.
/// It is answered `nick_taken` and closed; the session's open connection
/// stays and answers a ping.
#[test]
fn inside_tls_a_resume_read_with_its_end_takes_nothing_over() {
    let pki = Pki::new();
    let server = tls_server(&pki, &["--idle-ping-ms", "60000"]);
    let config = pki.ca.client_config();
    let mut live = Framed::new(tls(&server, &config, "localhost"));
    let welcome = live.join("alice");
    let resume = json!({
        "type": "join", "nick": "alice", "rooms": [], "resume": welcome["session"]
    });

    let mut stale = Framed::new(tls(&server, &config, "localhost"));
    server.stop();
    stale.send_frame(&resume);
    stale.shutdown_write();
    server.signal("CONT");
    let mut answers = Vec::new();
    loop {
        match stale.next_within(WAIT) {
            Next::Frame(f) => answers.push(f),
            Next::Eof => break,
            other => panic!("{other:?} after {answers:?}"),
        }
    }
    let codes: Vec<&serde_json::Value> = answers.iter().map(|f| &f["code"]).collect();
    assert_eq!(codes, [&json!("nick_taken")], "{answers:?}");

    let url = format!("wss://localhost:{}/ws", server.addr().port());
    let mut stale = ws_over(tls(&server, &config, "localhost"), &url, None)
        .unwrap_or_else(|e| panic!("wss: {e}"));
    server.stop();
    stale.send_frame(&resume);
    stale.send_raw(&masked_frame(0x8, &1000u16.to_be_bytes(), [1, 2, 3, 4]));
    stale.end_tls(true);
    server.signal("CONT");
    stale.expect_error("nick_taken");
    assert_eq!(stale.expect_closed(), Some(1000));

    live.send_frame(&json!({"type": "ping"}));
    live.expect_kind("pong");
}
