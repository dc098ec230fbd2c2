//! End to end: the real `chatserver` and `chatclient` binaries on
//! 127.0.0.1:0, talking through pipes as a user's shell would.
//!
//! Nothing here sleeps to synchronise: every wait reads the lines it expects
//! (or the exit it expects) against a deadline, and fails with what it saw.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Client, Server, WAIT};

/// Chat lines (messages and presence), leaving out the client's own notes.
fn events(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(String::as_str)
        .filter(|l| !l.starts_with("* joined as ") && !l.starts_with("* online ("))
        .collect()
}

/// `a` and `b` show the events they both have in the same order.
fn assert_same_order(a: &Client, b: &Client) {
    let ea = events(&a.seen);
    let eb = events(&b.seen);
    let common_a: Vec<&str> = ea.iter().copied().filter(|l| eb.contains(l)).collect();
    let common_b: Vec<&str> = eb.iter().copied().filter(|l| ea.contains(l)).collect();
    assert!(
        !common_a.is_empty(),
        "{} and {} share no events",
        a.name,
        b.name
    );
    assert_eq!(
        common_a, common_b,
        "{} and {} disagree on the order",
        a.name, b.name
    );
}

/// The seed's scenario: four people, presence, broadcast, private and group
/// messages, an unknown recipient, /who, a leave; everyone agrees on the order.
#[test]
fn seed_scenario_with_four_clients() {
    let server = Server::start(&[]);
    let names = ["vikash", "rishu", "parul", "bittu"];
    let mut clients: Vec<Client> = Vec::new();
    for name in names {
        clients.push(Client::start(name, &server.addr));
        let online = format!("* {name} is online");
        for c in clients.iter_mut() {
            c.expect(&online);
        }
    }

    clients[0].say("hello everyone");
    for c in clients.iter_mut() {
        c.expect("vikash: hello everyone");
    }

    // A group message, in the seed's own syntax.
    clients[2].say("@rishu @vikash:hey guys wats up");
    for i in [0, 1, 2] {
        clients[i].expect("parul -> rishu, vikash: hey guys wats up");
    }
    // A private one.
    clients[1].say("@vikash:helloooo");
    for i in [0, 1] {
        clients[i].expect("rishu -> vikash: helloooo");
    }
    // An unknown recipient: the server's error, shown to the sender only.
    clients[3].say("@nobody are you there?");
    clients[3].expect_line("starting with ! unknown_nick:", |l| {
        l.starts_with("! unknown_nick:") && l.contains("nobody")
    });

    clients[0].say("/who");
    clients[0].expect("* online (4): bittu, parul, rishu, vikash");

    // Everyone talks at once; every screen must show one and the same order.
    for round in 0..10 {
        for (i, c) in clients.iter_mut().enumerate() {
            c.say(&format!("round {round} from {}", names[i]));
        }
    }
    let last: Vec<String> = names
        .iter()
        .map(|n| format!("{n}: round 9 from {n}"))
        .collect();
    for c in clients.iter_mut() {
        c.expect_all(&last);
    }

    // Bittu leaves; the rest see it, and bittu saw none of the private lines.
    let mut bittu = clients.pop().unwrap();
    bittu.say("/quit");
    for c in clients.iter_mut() {
        c.expect("* bittu left");
    }
    for line in &bittu.seen {
        assert!(!line.contains(" -> "), "bittu saw a private line: {line}");
    }
    // One of bittu's lines was refused: exit code 8, and stderr says which.
    let (status, stderr, _) = bittu.wait_exit(WAIT);
    assert_eq!(status.code(), Some(8), "bittu: {status} {stderr}");
    assert!(
        stderr.starts_with("chatclient: line 1 refused: unknown_nick: "),
        "{stderr}"
    );

    for i in 0..clients.len() {
        for j in i + 1..clients.len() {
            assert_same_order(&clients[i], &clients[j]);
        }
    }
    // The concurrent rounds: identical sequences on every screen.
    let rounds = |c: &Client| -> Vec<String> {
        c.seen
            .iter()
            .filter(|l| l.contains(": round "))
            .cloned()
            .collect()
    };
    let first = rounds(&clients[0]);
    assert_eq!(first.len(), 40);
    for c in &clients[1..] {
        assert_eq!(rounds(c), first, "{} saw another order", c.name);
    }
    for mut c in clients {
        c.close_stdin();
        let name = c.name.clone();
        let (status, stderr, _) = c.wait_exit(WAIT);
        assert!(status.success(), "{name}: {status} {stderr}");
    }
}

/// `sent` piped at once (as a paste or a pipe would) into a `writer`
/// that ends with its input, while a `reader` listens: every line reaches
/// the reader once, in order, and the writer exits 0 with nothing on
/// stderr. The reader, and what the writer printed.
fn pipe_through(server: &Server, sent: &[String]) -> (Client, Vec<String>) {
    let mut rx = Client::start("reader", &server.addr);
    rx.expect("* reader is online");
    let mut tx = Client::start("writer", &server.addr);
    rx.expect("* writer is online");
    let batch: String = sent.iter().map(|l| format!("{l}\n")).collect();
    let stdin = tx.stdin.as_mut().unwrap();
    stdin.write_all(batch.as_bytes()).unwrap();
    tx.close_stdin();
    for line in sent {
        rx.expect(&format!("writer: {line}"));
    }
    let got: Vec<&str> = rx
        .seen
        .iter()
        .filter_map(|l| l.strip_prefix("writer: "))
        .collect();
    assert_eq!(got, sent, "lines missing, repeated or out of order");
    let (status, stderr, seen) = tx.wait_exit(WAIT);
    assert!(status.success(), "writer exited {status}: {stderr}");
    assert!(stderr.is_empty(), "writer stderr: {stderr}");
    (rx, seen)
}

/// Through pipes: 200 lines then EOF. All arrive, in order, and the sender
/// exits 0 only after every line was acknowledged (the server's rate limit,
/// said in its `welcome`, paces this over a few seconds).
#[test]
fn piped_input_is_delivered_whole_then_exits_zero() {
    let server = Server::start(&[]);
    let sent: Vec<String> = (0..200).map(|i| format!("line {i:03} of 200")).collect();
    let (mut rx, seen) = pipe_through(&server, &sent);
    // The sender printed each of its own lines once, when its echo came.
    let echoed: Vec<&str> = seen
        .iter()
        .filter_map(|l| l.strip_prefix("writer: "))
        .collect();
    assert_eq!(echoed, sent);
    rx.expect("* writer left");
}

/// A paste longer than the server's rate allows at once is sent at the
/// rate its `welcome` said, not faster: the server never holds the client
/// back for its grace (here half a second), so it is never closed with
/// `rate_limited` and reconnected, and every line arrives once, in order.
#[test]
fn a_paste_is_paced_under_the_servers_rate_not_closed_for_it() {
    let server = Server::start(&[
        "--rate",
        "20",
        "--burst",
        "4",
        "--rate-limit-grace-ms",
        "500",
    ]);
    let sent: Vec<String> = (0..40).map(|i| format!("pasted {i:02} of 40")).collect();
    let (rx, _) = pipe_through(&server, &sent);
    assert!(
        !rx.seen.iter().any(|l| l == "* writer left"),
        "the writer was closed on the way: {:?}",
        rx.seen
    );
}

/// A nickname in use (case-insensitively): one line on stderr, exit code 4.
#[test]
fn taken_nick_exits_nonzero_with_a_message() {
    let server = Server::start(&[]);
    let mut alice = Client::start("alice", &server.addr);
    alice.expect("* alice is online");

    let started = Instant::now();
    let again = Client::start_with("Alice", &server.addr, Stdio::null());
    let (status, stderr, _) = again.wait_exit(Duration::from_secs(5));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(status.code(), Some(4), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.contains("nick_taken"), "{stderr}");

    // Alice is still fine.
    alice.say("/who");
    alice.expect("* online (1): alice");
}

/// An invalid nickname and a full server are refused the same way.
#[test]
fn invalid_nick_and_full_server_exit_nonzero() {
    let server = Server::start(&["--max-clients", "1"]);
    let bad = Client::start_with("no@way", &server.addr, Stdio::null());
    let (status, stderr, _) = bad.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(4), "stderr: {stderr}");
    assert!(stderr.contains("nick_invalid"), "{stderr}");

    let mut first = Client::start("first", &server.addr);
    first.expect("* first is online");
    let second = Client::start_with("second", &server.addr, Stdio::null());
    let (status, stderr, _) = second.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(5), "stderr: {stderr}");
    assert!(stderr.contains("server_full"), "{stderr}");
}

/// A server whose answer to the join is not the protocol is reported on
/// stderr with what it sent escaped: a serde error quotes the value it
/// could not read, and an escape sequence there (a window title, a
/// clipboard write, a cleared screen) must not reach the terminal.
#[test]
fn what_a_bad_server_sent_is_escaped_in_the_error_line() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        use std::io::Read;
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        // The join's length header, then the join itself.
        let mut header = [0u8; 4];
        s.read_exact(&mut header).unwrap();
        let mut join = vec![0u8; u32::from_be_bytes(header) as usize];
        s.read_exact(&mut join).unwrap();
        let evil = r#"{"type":"presence","room":"lobby","seq":1,"nick":"x","ts":1,"status":"\u001b]0;PWNED\u0007\u001b[2J"}"#;
        let mut frame = (evil.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(evil.as_bytes());
        s.write_all(&frame).unwrap();
        // Held open until the client has gone.
        let _ = s.read(&mut header);
    });
    let c = Client::start_with("alice", &addr, Stdio::null());
    let (status, stderr, _) = c.wait_exit(WAIT);
    server.join().unwrap();
    assert_eq!(status.code(), Some(6), "stderr: {stderr}");
    assert!(
        stderr.contains("does not speak the chat protocol"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "a raw escape: {stderr:?}");
    assert!(stderr.contains("\\u{1b}]0;PWNED"), "{stderr:?}");
}

/// Nothing listening: exit code 3 within 5 seconds.
#[test]
fn no_server_exits_nonzero_within_five_seconds() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    }; // dropped: the port is closed now
    let started = Instant::now();
    let c = Client::start_with("alice", &addr, Stdio::null());
    let (status, stderr, _) = c.wait_exit(Duration::from_secs(5));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(status.code(), Some(3), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

/// A bad value from a variable is told with the variable's name (a
/// user who set it in an environment file may not know which flag it
/// stands for; `--reconnect-min-ms` is not even in `--help`), as clap's
/// usage error (exit code 2), before connecting anywhere. A bad flag on
/// the command line keeps clap's own words, even when the variable is
/// set too (the flag wins over it).
#[test]
fn a_bad_value_from_a_variable_names_the_variable() {
    let nowhere = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let c = Client::start_opts("alice", &nowhere, args, env);
        let (status, stderr, seen) = c.wait_exit(Duration::from_secs(10));
        assert!(seen.is_empty(), "printed {seen:#?}");
        assert_eq!(status.code(), Some(2), "stderr: {stderr}");
        stderr
    };
    for (var, value, bad, flag) in [
        ("CHATCLIENT_TIMEOUT", "abc", "abc", "'--timeout <SECS>'"),
        (
            "CHATCLIENT_RECONNECT_MIN_MS",
            "x",
            "x",
            "'--reconnect-min-ms <MS>'",
        ),
        ("CHATCLIENT_TLS", "maybe", "maybe", "'--tls'"),
        ("CHATCLIENT_ROOMS", "lobby,a b", "a b", "'--room <ROOM>'"),
    ] {
        let stderr = run(&[], &[(var, value)]);
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!(
                "error: invalid value '{bad}' for {flag} (from {var}): "
            )),
            "{var}: {stderr}"
        );
        assert!(stderr.contains("try '--help'"), "{var}: {stderr}");
    }
    // An on/off flag's refusal says which words it takes.
    let stderr = run(&[], &[("CHATCLIENT_JSON", "enabled")]);
    assert!(
        stderr.contains("use 1, true, yes or on, or 0, false, no or off"),
        "{stderr}"
    );
    let from_flag =
        "error: invalid value 'abc' for '--timeout <SECS>': \"abc\" is not a number of seconds";
    let stderr = run(&["--timeout", "abc"], &[]);
    assert!(stderr.starts_with(from_flag), "{stderr}");
    let stderr = run(&["--timeout", "abc"], &[("CHATCLIENT_TIMEOUT", "abc")]);
    assert!(stderr.starts_with(from_flag), "{stderr}");
    assert!(!stderr.contains("CHATCLIENT_TIMEOUT"), "{stderr}");
    // A good flag over a bad variable: the variable is not read at all.
    let stderr = run(
        &["--timeout", "1", "--reconnect-min-ms", "0"],
        &[("CHATCLIENT_TIMEOUT", "abc")],
    );
    assert!(
        stderr.starts_with("error: invalid value '0' for '--reconnect-min-ms <MS>': "),
        "{stderr}"
    );
}

/// A server that accepts but never answers the join: exit code 6 within 5 s.
#[test]
fn unanswered_join_exits_nonzero_within_five_seconds() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // Accept and hold the connection without a word.
    let holder = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
    let started = Instant::now();
    let c = Client::start_with("alice", &addr, Stdio::null());
    let (status, stderr, _) = c.wait_exit(Duration::from_secs(5));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(status.code(), Some(6), "stderr: {stderr}");
    assert!(stderr.contains("did not answer"), "{stderr}");
    drop(holder.join());
}

/// ESC, other C0/C1 controls and bidi overrides in a message are shown
/// escaped and never reach the receiving client's stdout raw.
#[test]
fn escapes_never_reach_stdout_raw() {
    let server = Server::start(&[]);
    let mut rx = Client::start("reader", &server.addr);
    rx.expect("* reader is online");
    let mut tx = Client::start("writer", &server.addr);
    rx.expect("* writer is online");

    tx.say(
        "red \u{1b}[31malert\u{1b}[0m \u{1b}]0;pwned\u{7} \u{9b}2J \u{202e}olleh zero\u{200b}width",
    );
    let line = rx.expect_line("from writer", |l| l.starts_with("writer: "));
    assert_eq!(
        line,
        "writer: red \\u{1b}[31malert\\u{1b}[0m \\u{1b}]0;pwned\\u{7} \\u{9b}2J \\u{202e}olleh zero\\u{200b}width"
    );
    tx.say("done");
    rx.expect("writer: done");
    for line in &rx.seen {
        assert!(
            !line.chars().any(|c| c.is_control()
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{200b}'..='\u{200f}')),
            "raw control character reached stdout: {line:?}"
        );
    }
}

/// The server going away ends the session when the client is told not to
/// reconnect: a line on stderr, exit code 1, at once. (Reconnecting, and
/// giving up, are in resume.rs.)
#[test]
fn server_gone_exits_one() {
    let mut server = Server::start(&[]);
    let mut c = Client::start_opts("alice", &server.addr, &["--reconnect-attempts", "0"], &[]);
    c.expect("* alice is online");
    server.child.kill().unwrap();
    let (status, stderr, seen) = c.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(
        stderr.contains("closed") || stderr.contains("failed"),
        "{stderr}"
    );
    assert!(
        !seen.iter().any(|l| l.contains("reconnecting")),
        "{seen:#?}"
    );
}

/// Several addresses (a cluster's nodes): a client gets in through the
/// one that answers, whichever it tries first.
#[test]
fn several_addresses_are_tried_in_turn() {
    let server = Server::start(&[]);
    // A port nothing listens on any more.
    let dead = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    for (i, list) in [
        format!("{dead},{}", server.addr),
        format!("{},{dead}", server.addr),
    ]
    .iter()
    .cycle()
    .take(4)
    .enumerate()
    {
        let nick = format!("n{i}");
        let mut c = Client::start(&nick, list);
        c.expect(&format!("* {nick} is online"));
    }
}

/// Every pass over several addresses begins at the first as given.
const FROM_THE_FIRST: &[(&str, &str)] = &[("CHATCLIENT_FIRST_ADDR", "0")];

/// A node that takes the connection and never answers the join (a process
/// stopped or held up; the kernel accepts for it) holds the client up for
/// its `--timeout`, then gives way to the next address, which lets it in;
/// the client says so. It ended the client with exit code 6 ("did not
/// answer the join within 1 s"). Every address silent: exit code 6, the
/// last one's line on stderr, as with one, after the note on the first.
#[test]
fn a_node_that_never_answers_the_join_gives_way_to_the_next() {
    let server = Server::start(&[]);
    // Never accepted: the kernel completes the handshake and takes the
    // join; nothing answers.
    let hung = TcpListener::bind("127.0.0.1:0").expect("bind");
    let hung_addr = hung.local_addr().unwrap().to_string();
    let list = format!("{hung_addr},{}", server.addr);
    let started = Instant::now();
    let mut c = Client::start_opts("alice", &list, &["--timeout", "1"], FROM_THE_FIRST);
    c.close_stdin();
    let (status, stderr, seen) = c.wait_exit(WAIT);
    assert!(status.success(), "{status}: {stderr}\n{seen:#?}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    let note = format!(
        "* node {hung_addr} did not answer the join within 1 s, trying {}",
        server.addr
    );
    assert!(seen.contains(&note), "{seen:#?}");
    assert!(seen.contains(&"* alice is online".to_owned()), "{seen:#?}");

    let other = TcpListener::bind("127.0.0.1:0").expect("bind");
    let other_addr = other.local_addr().unwrap().to_string();
    let list = format!("{hung_addr},{other_addr}");
    let c = Client::start_opts("bob", &list, &["--timeout", "1"], FROM_THE_FIRST);
    let (status, stderr, seen) = c.wait_exit(WAIT);
    assert_eq!(status.code(), Some(6), "{stderr}\n{seen:#?}");
    assert_eq!(
        stderr,
        format!(
            "chatclient: connected to {other_addr} but it did not answer the join within 1 s; \
             is it a chatserver?\n"
        )
    );
    // The note on the first, gone past, as when one lets the client in.
    assert_eq!(
        seen,
        [format!(
            "* node {hung_addr} did not answer the join within 1 s, trying {other_addr}"
        )],
        "{seen:#?}"
    );
    drop((hung, other));
}

/// A listener on 127.0.0.1 that takes every connection and closes it at
/// once (a node going down, a proxy in front of a dead one); its address.
fn closing_at_once() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            drop(s);
        }
    });
    addr
}

/// A node that takes the connection and closes it at once gives way to
/// the next address, which lets the client in; the client says so. It
/// ended the client with exit code 6 and the advice that the server may
/// take only TLS. The advice stays where it may be right: every node
/// reached closed the connection (here, one closed and one not there);
/// not when another answered, or said nothing in time.
#[test]
fn a_node_that_closes_at_once_gives_way_to_the_next() {
    let server = Server::start(&[]);
    let closing = closing_at_once();
    let list = format!("{closing},{}", server.addr);
    let mut c = Client::start_opts("alice", &list, &[], FROM_THE_FIRST);
    c.close_stdin();
    let (status, stderr, seen) = c.wait_exit(WAIT);
    assert!(status.success(), "{status}: {stderr}\n{seen:#?}");
    let note = format!(
        "* node {closing} closed the connection before letting us in, trying {}",
        server.addr
    );
    let passed = seen.iter().any(|l| {
        *l == note
            || l.starts_with(&format!(
                "* the connection to node {closing} failed while joining"
            ))
    });
    assert!(passed, "{seen:#?}");
    assert!(seen.contains(&"* alice is online".to_owned()), "{seen:#?}");

    // A port nothing listens on any more.
    let dead = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    let list = format!("{closing},{dead}");
    let c = Client::start_opts("bob", &list, &[], FROM_THE_FIRST);
    let (status, stderr, seen) = c.wait_exit(WAIT);
    assert_eq!(status.code(), Some(6), "{stderr}\n{seen:#?}");
    assert!(
        stderr.ends_with(&format!(
            "; is chatserver listening on that port? If it takes only TLS, use --tls or \
             write the address as tls://{list}\n"
        )),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let hung = TcpListener::bind("127.0.0.1:0").expect("bind");
    let hung_addr = hung.local_addr().unwrap().to_string();
    let list = format!("{closing},{hung_addr}");
    let c = Client::start_opts("carol", &list, &["--timeout", "1"], FROM_THE_FIRST);
    let (status, stderr, seen) = c.wait_exit(WAIT);
    assert_eq!(status.code(), Some(6), "{stderr}\n{seen:#?}");
    assert_eq!(
        stderr,
        format!(
            "chatclient: connected to {hung_addr} but it did not answer the join within 1 s; \
             is it a chatserver?\n"
        )
    );
    drop(hung);
}

/// A node that refuses the connection (nothing listens on its port: a
/// node down) gives way to the next address, and the client says so, as
/// it does for every other node it goes past. It went on without a word.
#[test]
fn a_node_that_refuses_the_connection_gives_way_to_the_next_saying_so() {
    let server = Server::start(&[]);
    let dead = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    let list = format!("{dead},{}", server.addr);
    let mut c = Client::start_opts("alice", &list, &[], FROM_THE_FIRST);
    c.close_stdin();
    let (status, stderr, seen) = c.wait_exit(WAIT);
    assert!(status.success(), "{status}: {stderr}\n{seen:#?}");
    assert!(stderr.is_empty(), "{stderr}");
    let note = format!(
        "* node {dead} refused the connection, trying {}",
        server.addr
    );
    let at = |line: &str| seen.iter().position(|l| l == line);
    let (Some(note_at), Some(online_at)) = (at(&note), at("* alice is online")) else {
        panic!("no {note:?} then the join in {seen:#?}");
    };
    assert!(note_at < online_at, "{seen:#?}");
}

/// A node at its cap on connections (`server_full`; each node of a
/// cluster has its own) gives way to the next address, which lets the
/// client in; the client says so. It ended the client with exit code 5.
/// A refusal of the nickname is the same at every node of a cluster (its
/// nicknames are one): that ends the pass, here even though the next
/// address, another server, would have let it in.
#[test]
fn a_full_node_gives_way_to_the_next_but_a_taken_nickname_does_not() {
    let full = Server::start(&["--max-clients", "1"]);
    let server = Server::start(&[]);
    let mut first = Client::start("first", &full.addr);
    first.expect("* first is online");
    let list = format!("{},{}", full.addr, server.addr);
    let mut c = Client::start_opts("alice", &list, &[], FROM_THE_FIRST);
    c.close_stdin();
    let (status, stderr, seen) = c.wait_exit(WAIT);
    assert!(status.success(), "{status}: {stderr}\n{seen:#?}");
    let note = format!(
        "* node {} full (the server has no room for another client; try again later), \
         trying {}",
        full.addr, server.addr
    );
    assert!(seen.contains(&note), "{seen:#?}");
    assert!(seen.contains(&"* alice is online".to_owned()), "{seen:#?}");

    // A nickname online at the first address.
    let taken = Server::start(&[]);
    let mut holder = Client::start("first", &taken.addr);
    holder.expect("* first is online");
    let list = format!("{},{}", taken.addr, server.addr);
    let c = Client::start_opts("first", &list, &[], FROM_THE_FIRST);
    let (status, stderr, seen) = c.wait_exit(WAIT);
    assert_eq!(status.code(), Some(4), "{stderr}\n{seen:#?}");
    assert!(
        stderr.starts_with("chatclient: cannot join as first: nick_taken: "),
        "{stderr}"
    );
    assert!(seen.is_empty(), "{seen:#?}");
}

/// A server of a later version sends frames of kinds this client does not
/// know, before its `welcome` and among the room's frames: the client
/// ignores them, saying nothing (PROTOCOL.md section 2), and goes on. It
/// refused to join, then printed an error for each.
#[test]
fn frames_of_kinds_a_later_server_added_are_ignored() {
    use chatproto::{ClientFrame, PresenceStatus, ServerFrame};
    use common::fake::{FakeServer, Reply};

    let json = |f: ServerFrame| serde_json::to_string(&f).unwrap();
    let motd = || r#"{"type":"motd","text":"the LAN party starts at eight"}"#.to_owned();
    let server = FakeServer::start(move |frame| {
        match frame {
        ClientFrame::Join { .. } => Reply::Raw(vec![
            motd(),
            json(ServerFrame::welcome(
                "alice",
                0,
                Vec::new(),
                Some("0123456789abcdef0123456789abcdef".into()),
                Some(false),
                None,
            )),
        ]),
        ClientFrame::Enter { room, .. } => Reply::Raw(vec![
            json(ServerFrame::entered(
                room.clone(),
                "e1",
                0,
                1,
                vec!["alice".into()],
                false,
            )),
            r#"{"type":"typing","room":"lobby","nick":"bob"}"#.to_owned(),
            json(ServerFrame::presence(
                Some(room.clone()),
                1,
                "alice",
                PresenceStatus::Online,
                1_732_400_000_000,
            )),
            motd(),
            r#"{"type":"msg","room":"lobby","from":"bob","to":[],"seq":2,"ts":1732400000000,"text":"hi after news"}"#.to_owned(),
        ]),
        _ => Reply::Send(Vec::new()),
    }
    });
    let mut c = Client::start("alice", &server.addr);
    c.expect("bob: hi after news");
    c.close_stdin();
    let (status, stderr, seen) = c.wait_exit(WAIT);
    assert!(status.success(), "exit {status}: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(
        !seen
            .iter()
            .any(|l| l.contains("bad_frame") || l.contains("ignored")),
        "{seen:#?}"
    );
}
