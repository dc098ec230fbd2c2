//! A lost connection is not the end: chatclient reconnects through a proxy
//! the test cuts, resumes its session, and shows every message once. A
//! session resumed by another connection is the end: chatclient does not
//! take it back (a fake server says so, as chatserver would in a race).
//!
//! The client under test waits 50 ms before its first reconnect
//! (`CHATCLIENT_RECONNECT_MIN_MS`) and 20 s for a handshake, so the test
//! can let its reconnect through when the server has seen it go (the
//! other client shows `* alice left`). Nothing sleeps: every wait reads
//! the lines it expects against a deadline.

mod common;

use std::net::TcpListener;

use chatproto::{ClientFrame, ErrorCode, ServerFrame};
use common::fake::{FakeServer, Reply, RESUMED_ELSEWHERE};
use common::proxy::Proxy;
use common::{Client, Server, WAIT};
use serde_json::Value;

const FAST: &[(&str, &str)] = &[("CHATCLIENT_RECONNECT_MIN_MS", "50")];
/// [`FAST`], and every pass over several addresses begins at the first.
const FAST_FROM_THE_FIRST: &[(&str, &str)] = &[
    ("CHATCLIENT_RECONNECT_MIN_MS", "50"),
    ("CHATCLIENT_FIRST_ADDR", "0"),
];
const PATIENT: &[&str] = &["--timeout", "20"];

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:03}")).collect()
}

/// The texts of `from`'s messages in `lines`, in order.
fn texts_from<'a>(lines: &'a [String], from: &str) -> Vec<&'a str> {
    let prefix = format!("{from}: ");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .collect()
}

fn is_chat(line: &str) -> bool {
    line.starts_with("alice: ") || line.starts_with("bob: ")
}

/// alice and bob end their input and exit 0 (alice with nothing on
/// stderr); what each printed.
fn both_leave(mut alice: Client, mut bob: Client) -> (Vec<String>, Vec<String>) {
    alice.close_stdin();
    bob.close_stdin();
    let (status, stderr, seen) = alice.wait_exit(WAIT);
    assert!(status.success(), "alice exited {status}: {stderr}");
    assert!(stderr.is_empty(), "alice's stderr: {stderr}");
    let (status, stderr, bob_seen) = bob.wait_exit(WAIT);
    assert!(status.success(), "bob exited {status}: {stderr}");
    (seen, bob_seen)
}

/// alice (through the proxy) and bob (directly) in the lobby, each seen
/// online by both.
fn two_in_the_lobby(server: &Server, proxy: &Proxy) -> (Client, Client) {
    let mut bob = Client::start("bob", &server.addr);
    bob.expect("* bob is online");
    proxy.allow();
    let mut alice = Client::start_opts("alice", &proxy.addr, PATIENT, FAST);
    alice.expect("* alice is online");
    bob.expect("* alice is online");
    (alice, bob)
}

/// The test: the connection is cut while bob floods the lobby and
/// alice sends lines of her own, with the server's copies for alice on
/// their way (held in the proxy, then lost with the socket). After the
/// reconnect alice shows exactly what the room sent her, each line once,
/// in order, and says in one line how many she had missed.
#[test]
fn a_cut_mid_stream_resumes_with_every_message_once_in_order() {
    let server = Server::start(&[]);
    let proxy = Proxy::start(&server.addr);
    let (mut alice, mut bob) = two_in_the_lobby(&server, &proxy);

    let bob_lines = numbered("b", 150);
    let alice_lines = numbered("a", 40);
    // From here the server's frames for alice wait in the proxy.
    let valve = proxy.freeze();
    bob.say_all(&bob_lines);
    alice.say_all(&alice_lines[..30]);
    // All of alice's 30 and bob's first 21 were stamped: their copies for
    // alice (her echoes among them) are in flight.
    bob.expect_all(&[format!("alice: {}", alice_lines[29]), "bob: b020".into()]);
    proxy.cut();
    drop(valve);

    alice.expect_line("saying the connection was lost", |l| {
        l.starts_with("* connection lost (")
    });
    // Typed while disconnected: sent once back.
    alice.say_all(&alice_lines[30..]);
    bob.expect("* alice left");
    proxy.allow();

    let summary = alice.expect_line("summing up the reconnect", |l| {
        l.starts_with("* reconnected; ")
    });
    alice.expect_all(&[
        format!("bob: {}", bob_lines[149]),
        format!("alice: {}", alice_lines[39]),
    ]);
    bob.expect_all(&[format!("alice: {}", alice_lines[39])]);
    let (seen, bob_seen) = both_leave(alice, bob);

    // Each line once, in order, on both screens.
    assert_eq!(texts_from(&seen, "bob"), bob_lines, "bob's lines at alice");
    assert_eq!(texts_from(&seen, "alice"), alice_lines, "alice's own lines");
    assert_eq!(
        texts_from(&bob_seen, "alice"),
        alice_lines,
        "alice's at bob"
    );
    // Both show the room in one order.
    let chat = |lines: &[String]| -> Vec<String> {
        lines.iter().filter(|l| is_chat(l)).cloned().collect()
    };
    assert_eq!(chat(&seen), chat(&bob_seen));
    // Nothing shown as history, no error (a resend is not one to show).
    for line in &seen {
        assert!(
            !line.starts_with("[history]") && !line.starts_with('!'),
            "{line:?} in {seen:#?}"
        );
    }

    // One summary line, and it counts the replayed lines shown before it:
    // at least the 30 echoes and 21 of bob's that were lost in flight.
    let summaries: Vec<&String> = seen
        .iter()
        .filter(|l| l.starts_with("* reconnected"))
        .collect();
    assert_eq!(summaries, [&summary]);
    let missed: usize = summary
        .strip_prefix("* reconnected; ")
        .and_then(|s| s.strip_suffix(" missed messages above"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a count of missed messages: {summary:?}"));
    let lost = seen
        .iter()
        .rposition(|l| l.starts_with("* connection lost"))
        .unwrap();
    let back = seen.iter().position(|l| *l == summary).unwrap();
    let replayed = seen[lost + 1..back].iter().filter(|l| is_chat(l)).count();
    assert_eq!(missed, replayed, "{:#?}", &seen[lost..=back]);
    assert!(missed >= 51, "{missed} missed");
}

/// Frames that came in the same read as broken framing are shown before
/// the connection is said to be lost: they came first (they were shown
/// after it).
#[test]
fn frames_before_broken_framing_are_shown_before_the_loss() {
    let server = Server::start(&[]);
    let proxy = Proxy::start(&server.addr);
    let (mut alice, mut bob) = two_in_the_lobby(&server, &proxy);
    let mut valve = proxy.freeze();
    bob.say_all(&["before the break".to_owned()]);
    bob.expect("bob: before the break");
    // A length header past any limit, right behind what the server sent.
    valve.extend_from_slice(&0x00FF_FFFF_u32.to_be_bytes());
    drop(valve);
    alice.expect_line("saying the connection was lost", |l| {
        l.starts_with("* connection lost (")
    });
    proxy.allow();
    alice.expect_line("summing up the reconnect", |l| {
        l.starts_with("* reconnected")
    });
    let (seen, _) = both_leave(alice, bob);
    let at = |line: &str| seen.iter().position(|l| l.starts_with(line));
    let shown = at("bob: before the break").expect("bob's line shown");
    let lost = at("* connection lost").expect("the loss said");
    assert!(shown < lost, "{seen:#?}");
    assert_eq!(texts_from(&seen, "bob"), ["before the break"], "once");
}

/// In a pipe, end of input while disconnected still waits: for the
/// reconnect, then for the echo of every line, then exits 0. Who came
/// and went meanwhile (carol, dave) is said after the summary.
#[test]
fn end_of_input_while_disconnected_waits_for_the_echoes_then_exits_zero() {
    let server = Server::start(&[]);
    let proxy = Proxy::start(&server.addr);
    let (mut alice, mut bob) = two_in_the_lobby(&server, &proxy);
    let mut dave = Client::start("dave", &server.addr);
    alice.expect("* dave is online");
    alice.say("before");
    alice.expect("alice: before");
    proxy.cut();
    alice.expect_line("saying the connection was lost", |l| {
        l.starts_with("* connection lost (")
    });
    let lines = numbered("x", 3);
    alice.say_all(&lines);
    alice.close_stdin();
    bob.expect("* alice left");
    dave.close_stdin();
    let (status, stderr, _) = dave.wait_exit(WAIT);
    assert!(status.success(), "dave exited {status}: {stderr}");
    bob.expect("* dave left");
    let mut carol = Client::start("carol", &server.addr);
    carol.expect("* carol is online");
    bob.expect("* carol is online");
    proxy.allow();
    for l in &lines {
        bob.expect(&format!("alice: {l}"));
    }
    let (status, stderr, seen) = alice.wait_exit(WAIT);
    assert!(status.success(), "alice exited {status}: {stderr}");
    assert!(stderr.is_empty(), "alice's stderr: {stderr}");
    assert_eq!(
        texts_from(&seen, "alice"),
        ["before", "x000", "x001", "x002"]
    );
    let back = seen
        .iter()
        .position(|l| l == "* reconnected; nothing missed")
        .unwrap_or_else(|| panic!("no summary in {seen:#?}"));
    assert_eq!(
        seen.get(back + 1).map(String::as_str),
        Some("* while you were away: carol joined; dave left"),
        "{seen:#?}"
    );
    drop(carol);
}

/// Someone took the nickname while alice was away: the reconnect is
/// refused, tried again a few times (it might have been her own lost
/// connection), and alice ends with the refusal's exit code, 4.
#[test]
fn a_nickname_taken_while_away_ends_the_client_with_four() {
    let server = Server::start(&[]);
    let proxy = Proxy::start(&server.addr);
    let (mut alice, mut bob) = two_in_the_lobby(&server, &proxy);
    proxy.cut();
    alice.expect_line("saying the connection was lost", |l| {
        l.starts_with("* connection lost (")
    });
    bob.expect("* alice left");
    let mut other = Client::start("ALICE", &server.addr);
    other.expect("* ALICE is online");
    // Every attempt through.
    for _ in 0..5 {
        proxy.allow();
    }
    let (status, stderr, seen) = alice.wait_exit(WAIT);
    assert_eq!(status.code(), Some(4), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.contains("nick_taken"), "{stderr}");
    let held = seen
        .iter()
        .filter(|l| l.starts_with("* the nickname is still held"))
        .count();
    assert_eq!(
        held, 4,
        "four tries again, the fifth refusal ends it: {seen:#?}"
    );
}

/// A resume answered `unavailable` (a cluster's node cut off from its
/// NATS) goes on to the next address in the same attempt, saying so, and
/// resumes there. It was a failed attempt: `reconnecting failed (cannot
/// join: unavailable: ...)`, and a wait before the next. Every pass
/// begins at the node (`CHATCLIENT_FIRST_ADDR`).
#[test]
fn a_resume_refused_unavailable_goes_on_to_the_next_address_at_once() {
    const CUT_OFF: &str = "the server cannot reach its cluster (no answer); try again later";
    let server = Server::start(&[]);
    let proxy = Proxy::start(&server.addr);
    // Nothing listens there at first: alice gets in through the proxy,
    // as she always did. Then the node refuses.
    let node = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    proxy.allow();
    let list = format!("{node},{}", proxy.addr);
    let mut alice = Client::start_opts("alice", &list, PATIENT, FAST_FROM_THE_FIRST);
    alice.expect("* alice is online");
    let listener = TcpListener::bind(&node).expect("the port given up just before");
    common::fake::refusing_joins(listener, ErrorCode::Unavailable, CUT_OFF);
    let passed_by = format!(
        "* node {node} unavailable ({CUT_OFF}), trying {}",
        proxy.addr
    );
    let from = alice.seen.len();
    proxy.allow();
    proxy.cut();
    let line = alice.expect_line("reconnected", |l| {
        l.starts_with("* reconnected") || l.starts_with("* reconnecting failed")
    });
    // (The lobby, empty meanwhile, was forgotten: `* reconnected` alone.)
    assert!(
        line == "* reconnected" || line.starts_with("* reconnected; "),
        "{:#?}",
        &alice.seen[from..]
    );
    assert!(
        alice.seen[from..].contains(&passed_by),
        "{:#?}",
        &alice.seen[from..]
    );
    alice.close_stdin();
    let (status, stderr, _) = alice.wait_exit(WAIT);
    assert!(status.success(), "{status}: {stderr}");
}

/// A resume refused `unavailable` at the first address and made at the
/// next resends what was not acknowledged once: alice's message whose
/// echo was lost with the cut reaches bob once and shows once at alice,
/// and the session is the same one (a fresh join would be refused
/// `nick_taken`, exit code 4).
#[test]
fn a_resume_refused_unavailable_resends_each_unacknowledged_message_once() {
    const CUT_OFF: &str = "the server cannot reach its cluster (no answer); try again later";
    let server = Server::start(&[]);
    let proxy = Proxy::start(&server.addr);
    let mut bob = Client::start("bob", &server.addr);
    bob.expect("* bob is online");
    let node = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    proxy.allow();
    let list = format!("{node},{}", proxy.addr);
    let mut alice = Client::start_opts("alice", &list, PATIENT, FAST_FROM_THE_FIRST);
    alice.expect("* alice is online");
    bob.expect("* alice is online");
    let listener = TcpListener::bind(&node).expect("the port given up just before");
    common::fake::refusing_joins(listener, ErrorCode::Unavailable, CUT_OFF);
    let from = alice.seen.len();
    {
        // Its echo for alice is lost with the cut: unacknowledged.
        let _valve = proxy.freeze();
        alice.say("lost echo");
        bob.expect("alice: lost echo");
        proxy.allow();
        proxy.cut();
    }
    let line = alice.expect_line("reconnected", |l| {
        l.starts_with("* reconnected") || l.starts_with("* reconnecting failed")
    });
    assert!(
        line.starts_with("* reconnected; "),
        "{:#?}",
        &alice.seen[from..]
    );
    let passed_by = format!(
        "* node {node} unavailable ({CUT_OFF}), trying {}",
        proxy.addr
    );
    assert!(
        alice.seen[from..].contains(&passed_by),
        "{:#?}",
        &alice.seen[from..]
    );
    // One more, after: through the resumed session.
    alice.say("after");
    bob.expect("alice: after");
    alice.expect("alice: after");
    let (seen, bob_seen) = both_leave(alice, bob);
    let sent = ["lost echo", "after"];
    assert_eq!(texts_from(&seen, "alice"), sent, "alice's own, once each");
    assert_eq!(texts_from(&bob_seen, "alice"), sent, "at bob, once each");
}

/// Every address refusing or failing on a reconnect is one failed attempt
/// each pass, with its wait; the client gives up once the attempts run
/// out, exit code 1, naming the refusal (which says more than the
/// connection refused at the other address).
#[test]
fn every_address_refusing_on_a_reconnect_is_one_failed_attempt_each_pass() {
    const CUT_OFF: &str = "the server cannot reach its cluster (no answer); try again later";
    let server = Server::start(&[]);
    let node = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    let list = format!("{node},{}", server.addr);
    let mut alice = Client::start_opts("alice", &list, &["--reconnect-attempts", "3"], FAST);
    alice.expect("* alice is online");
    let listener = TcpListener::bind(&node).expect("the port given up just before");
    common::fake::refusing_joins(listener, ErrorCode::Unavailable, CUT_OFF);
    drop(server);
    let (status, stderr, seen) = alice.wait_exit(WAIT);
    assert_eq!(status.code(), Some(1), "{stderr}\n{seen:#?}");
    assert!(
        stderr.contains(&format!(
            "gave up after 3 attempts to reconnect; the last: cannot join: unavailable: {CUT_OFF}"
        )),
        "{stderr}"
    );
    let attempts = seen
        .iter()
        .filter(|l| l.starts_with("* connection lost") || l.starts_with("* reconnecting failed"))
        .count();
    assert_eq!(attempts, 3, "{seen:#?}");
}

/// No server to come back to: one line per attempt, then exit 1 with one
/// line on stderr once the attempts run out.
#[test]
fn reconnect_attempts_run_out_exits_one() {
    let mut server = Server::start(&[]);
    let mut c = Client::start_opts(
        "alice",
        &server.addr,
        &["--reconnect-attempts", "3", "--timeout", "1"],
        FAST,
    );
    c.expect("* alice is online");
    server.child.kill().unwrap();
    let (status, stderr, seen) = c.wait_exit(WAIT);
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.contains("gave up after 3 attempts"), "{stderr}");
    // One line for the loss, then one for each attempt after a failed one.
    let notes: Vec<&String> = seen
        .iter()
        .filter(|l| {
            l.starts_with("* connection lost (")
                || (l.starts_with("* reconnecting failed (") && l.contains("); trying again in "))
                || l.starts_with("* reconnecting failed again; trying again in ")
        })
        .collect();
    assert_eq!(notes.len(), 3, "{seen:#?}");
    assert!(
        notes[0].starts_with("* connection lost") && notes[0].ends_with("(attempt 1 of 3)"),
        "{notes:?}"
    );
    // The loss says why: the killed server's end of the connection closed
    // (or, with something of ours unread there, was reset).
    assert!(
        notes[0].starts_with("* connection lost (the server closed the connection); ")
            || notes[0].starts_with("* connection lost (reading from the server failed: "),
        "{notes:?}"
    );
    // The first failure says why (nothing listens there); the same again
    // says only that it failed again.
    assert!(notes[1].contains("refused"), "{notes:?}");
    assert!(
        notes[2].starts_with("* reconnecting failed again;"),
        "{notes:?}"
    );
    assert!(notes[2].ends_with("(attempt 3 of 3)"), "{notes:?}");
}

/// A pipe is not read while the client waits to try again (the server
/// is down): its `/history` would be refused as "not connected" and fail
/// the run. Read after the reconnect, it is answered, and the run ends 0.
#[test]
fn a_pipe_waits_for_the_reconnect_to_read_its_next_line() {
    let mut server = Server::start(&[]);
    let addr = server.addr.clone();
    let mut alice = Client::start_opts(
        "alice",
        &addr,
        &["--reconnect-attempts", "10"],
        &[("CHATCLIENT_RECONNECT_MIN_MS", "200")],
    );
    alice.expect("* alice is online");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    alice.expect_line("saying the connection was lost", |l| {
        l.starts_with("* connection lost (")
    });
    alice.say("/history 5");
    // An attempt fails while the line waits in the pipe.
    alice.expect_line("a failed attempt", |l| {
        l.starts_with("* reconnecting failed")
    });
    let _back = Server::start_on(&addr, &[]);
    alice.close_stdin();
    let (status, stderr, seen) = alice.wait_exit(WAIT);
    assert!(
        status.success(),
        "alice exited {status}: {stderr}\n{seen:#?}"
    );
}

/// The server has not noticed alice's connection go (a cable pulled out:
/// no reset reached it) when she comes back: her token takes the session
/// over at the first attempt (the server closes the old connection with
/// `resumed_elsewhere`, which reaches nobody), with no nickname "still
/// held" and no second attempt, and she shows every message once, the
/// ones sent meanwhile too, with no gap.
#[test]
fn a_half_open_connection_is_taken_over_at_the_first_attempt() {
    let server = Server::start(&[]);
    let proxy = Proxy::start(&server.addr);
    let (mut alice, mut bob) = two_in_the_lobby(&server, &proxy);
    alice.say("before");
    bob.expect("alice: before");
    alice.expect("alice: before");
    let mut old = proxy.half_open();
    alice.expect_line("saying the connection was lost", |l| {
        l.starts_with("* connection lost (")
    });
    // Sent to alice's old connection, where the proxy drops them.
    let bob_lines = numbered("b", 20);
    bob.say_all(&bob_lines);
    bob.expect(&format!("bob: {}", bob_lines[19]));
    // Typed while away: sent once back.
    let alice_lines = numbered("a", 5);
    alice.say_all(&alice_lines);
    proxy.allow();

    let summary = alice.expect_line("summing up the reconnect", |l| {
        l.starts_with("* reconnected")
    });
    // The server closed the old connection itself: its ping would have
    // taken 30 s or more.
    old.set_read_timeout(Some(WAIT)).unwrap();
    let mut sink = Vec::new();
    std::io::Read::read_to_end(&mut old, &mut sink).expect("the server closes the old connection");
    // bob saw alice go with it, and come back.
    bob.expect("* alice left");
    bob.expect("* alice is online");
    alice.expect_all(&[format!("alice: {}", alice_lines[4])]);
    bob.expect_all(&[format!("alice: {}", alice_lines[4])]);
    let (seen, bob_seen) = both_leave(alice, bob);

    // One attempt, and it resumed: nothing held, nothing refused.
    let lost = seen
        .iter()
        .filter(|l| l.starts_with("* connection lost"))
        .count();
    assert_eq!(lost, 1, "{seen:#?}");
    for line in &seen {
        assert!(
            !line.starts_with("* reconnecting failed")
                && !line.contains("still held")
                && !line.contains("nick_taken")
                && !line.starts_with('!')
                && !line.starts_with("[history]"),
            "{line:?} in {seen:#?}"
        );
    }
    assert_eq!(
        summary, "* reconnected; 20 missed messages above",
        "{seen:#?}"
    );
    // Each line once, in order, on both screens.
    let mut alice_all = vec!["before".to_owned()];
    alice_all.extend(alice_lines);
    assert_eq!(texts_from(&seen, "bob"), bob_lines, "bob's lines at alice");
    assert_eq!(texts_from(&seen, "alice"), alice_all, "alice's own lines");
    assert_eq!(texts_from(&bob_seen, "alice"), alice_all, "alice's at bob");
}

/// The session is taken over the moment it is let in: `welcome` and
/// `resumed_elsewhere` in one write, so that the handshake reads both. The
/// error is heard all the same (not left in the buffer until the end of
/// the stream looks like a plain loss): exit 9, no reconnect.
#[test]
fn resumed_elsewhere_right_after_the_welcome_exits_nine() {
    let server = FakeServer::start(|frame| match frame {
        ClientFrame::Join { nick, .. } => Reply::Close(vec![
            ServerFrame::welcome(
                nick.clone(),
                0,
                Vec::new(),
                Some("t".into()),
                Some(true),
                None,
            ),
            ServerFrame::error(ErrorCode::ResumedElsewhere, RESUMED_ELSEWHERE),
        ]),
        _ => Reply::Send(Vec::new()),
    });
    let alice = Client::start_opts("alice", &server.addr, &[], FAST);
    let (status, stderr, seen) = alice.wait_exit(WAIT);
    assert_eq!(status.code(), Some(9), "stderr: {stderr}; saw {seen:#?}");
    assert!(
        seen.contains(&format!("! resumed_elsewhere: {RESUMED_ELSEWHERE}")),
        "{seen:#?}"
    );
    server.first_connection();
    assert!(!server.another_connection(), "alice connected again");
}

/// Whether the client sent a `msg` with `text`.
fn sent_text(frames: &[ClientFrame], text: &str) -> bool {
    frames
        .iter()
        .any(|f| matches!(f, ClientFrame::Msg { text: t, .. } if t == text))
}

/// Another connection resumed alice's session with its token: the server
/// says `resumed_elsewhere` and closes. alice does not reconnect (that
/// would take the session back): she shows the server's error, names on
/// stderr the line the server never answered, says why she stops in one
/// line there, and exits 9, having connected once.
#[test]
fn resumed_elsewhere_exits_nine_without_reconnecting() {
    let server = FakeServer::taken_over_at_the_first_message();
    let mut alice = Client::start_opts("alice", &server.addr, &[], FAST);
    alice.expect("* alice is online");
    alice.say("hello");
    let (status, stderr, seen) = alice.wait_exit(WAIT);
    assert_eq!(status.code(), Some(9), "stderr: {stderr}; saw {seen:#?}");
    assert_eq!(
        stderr,
        "chatclient: 1 message sent was not confirmed by the server and may not have \
         arrived; to send again:\n  #lobby: hello\n\
         chatclient: resumed_elsewhere: the session was resumed on another connection \
         (a client that had its token), which continues it; not reconnecting\n"
    );
    assert!(
        seen.contains(&format!("! resumed_elsewhere: {RESUMED_ELSEWHERE}")),
        "{seen:#?}"
    );
    assert!(
        !seen
            .iter()
            .any(|l| l.starts_with("* connection lost") || l.starts_with("* reconnect")),
        "{seen:#?}"
    );
    assert!(sent_text(&server.first_connection(), "hello"));
    assert!(!server.another_connection(), "alice connected again");
}

/// With `--json`, the line whose message the server never answered is
/// reported `unconfirmed`, as when a lost connection ends the client.
#[test]
fn resumed_elsewhere_reports_the_unanswered_line_unconfirmed() {
    let server = FakeServer::taken_over_at_the_first_message();
    let mut alice = Client::start_opts("alice", &server.addr, &["--json"], FAST);
    alice.expect_line("her own presence", |l| {
        serde_json::from_str::<Value>(l)
            .is_ok_and(|v| v["type"] == "presence" && v["nick"] == "alice")
    });
    alice.say("hello");
    let (status, stderr, seen) = alice.wait_exit(WAIT);
    assert_eq!(status.code(), Some(9), "stderr: {stderr}; saw {seen:#?}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    let objects: Vec<Value> = seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        objects
            .iter()
            .any(|v| v["type"] == "error" && v["code"] == "resumed_elsewhere"),
        "{seen:#?}"
    );
    let outcomes: Vec<&Value> = objects
        .iter()
        .filter(|v| v["type"] == "unconfirmed" || v["type"] == "sent")
        .collect();
    assert_eq!(outcomes.len(), 1, "{seen:#?}");
    assert_eq!(outcomes[0]["type"], "unconfirmed");
    assert_eq!(outcomes[0]["line"], 1);
    assert_eq!(outcomes[0]["room"], "lobby");
    assert!(sent_text(&server.first_connection(), "hello"));
    assert!(!server.another_connection(), "alice connected again");
}

/// A server that goes on writing (ping after ping) and reads nothing:
/// the client's answers wait in its writer's queue, which is bounded; once
/// it is full the client gives the connection up and says why, instead of
/// queueing pongs for as long as the server writes.
#[test]
fn a_server_that_stops_reading_is_given_up_not_queued_for() {
    use std::io::{Read, Write};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap().to_string();
    // Pings written before the client closed; `None` if it never did.
    let (tx, written) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_write_timeout(Some(WAIT)).unwrap();
        // The join, read whole; nothing is read after it.
        let mut decoder = chatproto::FrameDecoder::new(64 * 1024);
        let mut buf = bytes::BytesMut::new();
        let mut chunk = [0u8; 4096];
        while !matches!(
            decoder.decode::<ClientFrame>(&mut buf),
            chatproto::Decoded::Frame(ClientFrame::Join { .. })
        ) {
            let n = stream.read(&mut chunk).expect("read the join");
            assert!(n > 0, "the client closed before joining");
            buf.extend_from_slice(&chunk[..n]);
        }
        let welcome = ServerFrame::welcome(
            "alice",
            0,
            Vec::new(),
            Some("0123456789abcdef0123456789abcdef".into()),
            Some(false),
            None,
        );
        let mut out = chatproto::encode(&welcome, 64 * 1024).unwrap().to_vec();
        stream.write_all(&out).expect("welcome");
        // 1,000 pings a write until the client closes, for `WAIT` at most
        // (whatever the kernel holds for a connection nobody reads is
        // filled long before).
        out.clear();
        let ping = chatproto::encode(&ServerFrame::Ping, 64).unwrap();
        for _ in 0..1_000 {
            out.extend_from_slice(&ping);
        }
        let deadline = std::time::Instant::now() + WAIT;
        let mut sent = None;
        for batch in 1..=10_000_000u64 {
            if std::time::Instant::now() >= deadline {
                break;
            }
            if stream.write_all(&out).is_err() {
                sent = Some(batch * 1_000);
                break;
            }
        }
        let _ = tx.send(sent);
    });

    let alice = Client::start_opts("alice", &addr, &["--reconnect-attempts", "0"], FAST);
    let sent = written
        .recv_timeout(2 * WAIT)
        .expect("the fake server ended");
    assert!(
        sent.is_some(),
        "the client read pings for {WAIT:?} without giving up"
    );
    let (status, stderr, _) = alice.wait_exit(WAIT);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the server stopped reading what this client sends (1024 frames waiting)"),
        "{stderr}"
    );
}

/// alice (`--plain`, one reconnect attempt) through a proxy, her lines
/// "first" and "@bob second" delivered (bob sees both) and their echoes
/// held back; then the server is gone for good, the connection cut, and
/// the one reconnect fails while joining. She exits; what she says on
/// stderr, and her exit status.
fn gives_up_with_two_unconfirmed() -> (std::process::ExitStatus, String) {
    let server = Server::start(&[]);
    let proxy = Proxy::start(&server.addr);
    let mut bob = Client::start("bob", &server.addr);
    bob.expect("* bob is online");
    proxy.allow();
    let args = ["--plain", "--reconnect-attempts", "1"];
    let mut alice = Client::start_opts("alice", &proxy.addr, &args, FAST);
    alice.expect("* alice is online");
    bob.expect("* alice is online");
    {
        let _valve = proxy.freeze();
        alice.say("first");
        alice.say("@bob second");
        bob.expect("alice: first");
        bob.expect("alice -> bob: second");
        drop(bob);
        drop(server);
        // The next connection goes through to where nothing listens: the
        // proxy drops it, and the join fails.
        proxy.allow();
        proxy.cut();
    }
    let (status, stderr, _) = alice.wait_exit(WAIT);
    (status, stderr)
}

/// Giving up reconnecting, `--plain` names each message the server never
/// confirmed, as the full-screen client does, before the line saying it
/// gave up: they may or may not have arrived.
#[test]
fn plain_mode_giving_up_names_the_unconfirmed_messages() {
    let (status, stderr) = gives_up_with_two_unconfirmed();
    assert!(!status.success(), "{status}: {stderr}");
    let report = "chatclient: 2 messages sent were not confirmed by the server and may \
                  not have arrived; to send again:\n  #lobby: first\n  #lobby: @bob: second\n\
                  chatclient: lost the connection to ";
    assert!(stderr.starts_with(report), "{stderr}");
}
