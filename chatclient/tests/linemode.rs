//! The line mode for scripts and bots, end to end with the real binaries
//! on 127.0.0.1:0: `--json` (frames and one outcome per input line, in
//! input order), `--verbatim` (every line is text), `--stay` (connected
//! after the input ends, until SIGINT or SIGTERM), and exit code 8 (a line
//! was not delivered) with the failures on stderr.
//!
//! Nothing here sleeps to synchronise: every wait reads the lines it
//! expects (or the exit it expects) against a deadline. Signals go only to
//! the PID of a client this test started.

mod common;

use std::process::Command;

use common::proxy::Proxy;
use common::{Client, Server, WAIT};
use serde_json::Value;

/// The exit code for "left normally, but not every line was delivered".
const UNDELIVERED: i32 = 8;

const OUTCOMES: &[&str] = &["sent", "refused", "done", "skipped", "unconfirmed"];

/// Every stdout line as a JSON object with a `type` and an RFC 3339
/// `local_time`; panics on anything else.
fn objects(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"));
            assert!(v["type"].is_string(), "no type: {l}");
            let time = v["local_time"]
                .as_str()
                .unwrap_or_else(|| panic!("no local_time: {l}"));
            chrono::DateTime::parse_from_rfc3339(time)
                .unwrap_or_else(|e| panic!("local_time is not RFC 3339 ({e}): {l}"));
            v
        })
        .collect()
}

fn is_outcome(v: &Value) -> bool {
    OUTCOMES.contains(&v["type"].as_str().unwrap_or(""))
}

/// Whether stdout `line` is the JSON of a `msg` frame from `from` with `text`.
fn is_msg(line: &str, from: &str, text: &str) -> bool {
    serde_json::from_str::<Value>(line)
        .is_ok_and(|v| v["type"] == "msg" && v["from"] == from && v["text"] == text)
}

/// Whether stdout `line` is the JSON of an `info` note starting with `start`.
fn is_info(line: &str, start: &str) -> bool {
    serde_json::from_str::<Value>(line).is_ok_and(|v| {
        v["type"] == "info" && v["text"].as_str().is_some_and(|t| t.starts_with(start))
    })
}

/// Send `signal` (`TERM`, `INT`) to the chatclient this test started.
fn signal(c: &Client, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &c.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -s {signal} {}", c.child.id());
}

/// `--json`: every stdout line is an object; the frames as the wire has
/// them; exactly one outcome per input line, in input order, matched to
/// the echo by id; an unknown nick is refused (an `error` frame, a
/// `refused` outcome, a line on stderr) and the exit code is 8.
#[test]
fn json_reports_every_frame_and_one_outcome_per_line_in_order() {
    let server = Server::start(&[]);
    let mut bob = Client::start("bob", &server.addr);
    bob.expect("* bob is online");

    let mut alice = Client::start_opts("alice", &server.addr, &["--json"], &[]);
    let big = "x".repeat(70_000);
    let input: Vec<String> = [
        "hello all",
        "/who",
        "",
        "@zed are you there?",
        "@bob psst",
        "/nope",
        &big,
        "bye",
    ]
    .iter()
    .map(|l| l.to_string())
    .collect();
    alice.say_all(&input);
    alice.close_stdin();
    bob.expect("alice: hello all");
    bob.expect("alice -> bob: psst");
    bob.expect("alice: bye");

    let (status, stderr, seen) = alice.wait_exit(WAIT);
    assert_eq!(status.code(), Some(UNDELIVERED), "stderr: {stderr}");
    let all = objects(&seen);
    assert_eq!(all[0]["type"], "welcome", "the first frame: {:?}", all[0]);
    assert!(all[0].get("session").is_none(), "no token: {:?}", all[0]);
    assert_eq!(all[0]["resumed"], false);

    let outcomes: Vec<&Value> = all.iter().filter(|v| is_outcome(v)).collect();
    let numbers: Vec<u64> = outcomes
        .iter()
        .map(|o| o["line"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=8).collect::<Vec<u64>>(), "{outcomes:#?}");
    let kinds: Vec<&str> = outcomes
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["sent", "done", "skipped", "refused", "sent", "refused", "refused", "sent"]
    );
    assert_eq!(outcomes[1]["command"], "who");
    assert_eq!(outcomes[3]["code"], "unknown_nick");
    assert!(
        outcomes[3]["id"].is_string(),
        "sent, then refused by the server"
    );
    assert_eq!(outcomes[5]["code"], "input");
    assert!(outcomes[5]["id"].is_null(), "refused by the client");
    assert_eq!(outcomes[6]["code"], "msg_too_large");
    assert!(outcomes[6]["id"].is_null());

    // Each `sent` names the echo that came before it: same id, room, seq.
    let position = |v: &Value| all.iter().position(|x| std::ptr::eq(x, v)).unwrap();
    for (o, text) in [(0, "hello all"), (4, "psst"), (7, "bye")] {
        let out = outcomes[o];
        let echo = all
            .iter()
            .find(|v| v["type"] == "msg" && v["id"] == out["id"])
            .unwrap_or_else(|| panic!("no echo for {out}"));
        assert_eq!(echo["text"], text);
        assert_eq!(echo["from"], "alice");
        assert_eq!((&echo["room"], &echo["seq"]), (&out["room"], &out["seq"]));
        assert!(out["seq"].as_u64().is_some());
        assert!(position(echo) < position(out), "the echo comes first");
    }
    // The refusal is the server's error frame, printed before the outcome.
    let refusal = outcomes[3];
    let error = all
        .iter()
        .find(|v| v["type"] == "error" && v["id"] == refusal["id"])
        .expect("the error frame");
    assert_eq!(error["code"], "unknown_nick");
    assert_eq!(error["message"], refusal["message"]);
    assert!(position(error) < position(refusal));
    // /who's answer is a note; the frames are not shown twice as notes.
    assert!(
        all.iter()
            .any(|v| v["type"] == "info" && v["text"].as_str().unwrap().starts_with("online (")),
        "{all:#?}"
    );
    assert!(!all.iter().any(|v| v["type"] == "client_error"), "{all:#?}");

    // Every failure on stderr too, then the summary.
    let errs: Vec<&str> = stderr.lines().collect();
    assert_eq!(errs.len(), 4, "{stderr}");
    assert!(
        errs[0].starts_with("chatclient: line 4 refused: unknown_nick: "),
        "{stderr}"
    );
    assert!(
        errs[1].starts_with("chatclient: line 6 refused: input: unknown command /nope"),
        "{stderr}"
    );
    assert!(
        errs[2].starts_with("chatclient: line 7 refused: msg_too_large: "),
        "{stderr}"
    );
    assert_eq!(
        errs[3],
        "chatclient: 2 of 8 input lines were not delivered; 1 command failed"
    );
    assert!(
        !bob.seen.iter().any(|l| l.contains("are you there")),
        "{:#?}",
        bob.seen
    );
}

/// `/quit` ends the reading: the client leaves with stdin still open
/// (a terminal's need not end), and the lines after it are not read, so
/// they get no outcome (README said `skipped`) and are not sent.
#[test]
fn json_stops_reading_at_quit_and_the_lines_after_it_get_no_outcome() {
    let server = Server::start(&[]);
    let mut bob = Client::start("bob", &server.addr);
    bob.expect("* bob is online");
    let mut alice = Client::start_opts("alice", &server.addr, &["--json"], &[]);
    alice.say_all(&["a".into(), "/quit".into(), "late".into()]);
    bob.expect("alice: a");
    let (status, stderr, seen) = alice.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    let all = objects(&seen);
    let outcomes: Vec<(u64, &str)> = all
        .iter()
        .filter(|v| is_outcome(v))
        .map(|o| (o["line"].as_u64().unwrap(), o["type"].as_str().unwrap()))
        .collect();
    assert_eq!(outcomes, [(1, "sent"), (2, "done")], "{all:#?}");
    bob.expect("* alice left");
    assert!(
        !bob.seen.iter().any(|l| l.contains("late")),
        "{:#?}",
        bob.seen
    );
}

/// Without `--json` too: the failure is shown, told on stderr, and the
/// exit code says not every line was delivered.
#[test]
fn plain_mode_tells_a_refused_line_on_stderr_and_exits_eight() {
    let server = Server::start(&[]);
    let mut alice = Client::start("alice", &server.addr);
    alice.say("@zed hi");
    alice.say("still here");
    alice.close_stdin();
    let (status, stderr, seen) = alice.wait_exit(WAIT);
    assert_eq!(status.code(), Some(UNDELIVERED), "stderr: {stderr}");
    // Which line it was, quoted after the server's words.
    assert!(
        seen.iter()
            .any(|l| l.starts_with("! unknown_nick: ") && l.ends_with("; your line: @zed: hi")),
        "{seen:#?}"
    );
    assert!(seen.contains(&"alice: still here".to_owned()), "{seen:#?}");
    let errs: Vec<&str> = stderr.lines().collect();
    assert_eq!(errs.len(), 2, "{stderr}");
    assert!(
        errs[0].starts_with("chatclient: line 1 refused: unknown_nick: "),
        "{stderr}"
    );
    assert_eq!(errs[1], "chatclient: 1 of 2 input lines was not delivered");
}

/// A mistyped command is answered at once and never meant to be sent:
/// the exit line counts it apart from the messages not delivered (it was
/// counted among them: "2 of 3 input lines were not delivered").
#[test]
fn a_mistyped_command_is_not_counted_among_the_lines_not_delivered() {
    let server = Server::start(&[]);
    let mut alice = Client::start("alice", &server.addr);
    alice.say("/jion rust");
    alice.say("@zed hi");
    alice.say("still here");
    alice.close_stdin();
    let (status, stderr, seen) = alice.wait_exit(WAIT);
    assert_eq!(status.code(), Some(UNDELIVERED), "stderr: {stderr}");
    assert!(seen.contains(&"alice: still here".to_owned()), "{seen:#?}");
    let errs: Vec<&str> = stderr.lines().collect();
    assert_eq!(errs.len(), 3, "{stderr}");
    assert!(
        errs[0].starts_with("chatclient: line 1 refused: input: unknown command /jion"),
        "{stderr}"
    );
    assert!(
        errs[1].starts_with("chatclient: line 2 refused: unknown_nick: "),
        "{stderr}"
    );
    assert_eq!(
        errs[2],
        "chatclient: 1 of 3 input lines was not delivered; 1 command failed"
    );

    // Only a command failed: no line went undelivered, and the run
    // still fails for it (exit 8), saying so.
    let mut bob = Client::start("bob", &server.addr);
    bob.say("/nope");
    bob.say("hello");
    bob.close_stdin();
    let (status, stderr, _) = bob.wait_exit(WAIT);
    assert_eq!(status.code(), Some(UNDELIVERED), "stderr: {stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some("chatclient: 1 command failed"),
        "{stderr}"
    );
}

/// A room the server will not let the client in (past its
/// `--max-rooms-per-client`), named with `--room` or `/join`, fails a
/// one-shot run as a refused line does: exit code 8, the room named on
/// stderr. The lines for the rooms it did enter are still delivered;
/// a run whose every room was entered exits 0.
#[test]
fn a_refused_room_exits_eight_and_is_named_on_stderr() {
    let server = Server::start(&["--max-rooms-per-client", "2"]);
    let mut alice = Client::start_opts("alice", &server.addr, &["--room", "a,b,c"], &[]);
    alice.say("hello");
    alice.close_stdin();
    let (status, stderr, seen) = alice.wait_exit(WAIT);
    assert_eq!(status.code(), Some(UNDELIVERED), "stderr: {stderr}");
    assert!(
        seen.iter().any(|l| l.starts_with("! too_many_rooms: ")),
        "{seen:#?}"
    );
    assert!(seen.contains(&"alice: hello".to_owned()), "{seen:#?}");
    assert_eq!(
        stderr, "chatclient: #c not entered: refused by the server\n",
        "{stderr}"
    );

    // Refused on /join, beside a refused line; --json tells the same.
    // The lines after it were written for #zz: sent to no other room.
    let mut bob = Client::start_opts("bob", &server.addr, &["--room", "a,b", "--json"], &[]);
    bob.say_all(&[
        "/join zz".into(),
        "@nobody hi".into(),
        "bye".into(),
        "/join a".into(),
        "back in a".into(),
    ]);
    bob.close_stdin();
    let (status, stderr, seen) = bob.wait_exit(WAIT);
    assert_eq!(status.code(), Some(UNDELIVERED), "stderr: {stderr}");
    assert!(!seen.iter().any(|l| is_msg(l, "bob", "bye")), "{seen:#?}");
    assert!(
        seen.iter().any(|l| is_msg(l, "bob", "back in a")),
        "{seen:#?}"
    );
    // The /join's own outcome is the server's refusal, not `done`.
    assert!(
        seen.iter()
            .any(|l| l
                .starts_with(r#"{"type":"refused","line":1,"id":null,"code":"too_many_rooms","#)),
        "{seen:#?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.starts_with(r#"{"type":"done","line":4,"command":"join","#)),
        "{seen:#?}"
    );
    assert!(
        stderr.starts_with("chatclient: line 1 refused: too_many_rooms: "),
        "{stderr}"
    );
    let last = stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "chatclient: 2 of 5 input lines were not delivered; 1 command failed; \
         #zz not entered: refused by the server",
        "{stderr}"
    );

    let mut carol = Client::start_opts("carol", &server.addr, &["--room", "a,b"], &[]);
    carol.say("hello");
    carol.close_stdin();
    let (status, stderr, _) = carol.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(stderr, "");
}

/// A `CHATCLIENT_*` variable set to nothing (a blank line of an
/// environment file) counts as not set, as chatserver's own do: the
/// client starts with the defaults instead of refusing the empty values.
#[test]
fn blank_environment_variables_count_as_not_set() {
    let server = Server::start(&[]);
    let blank = [
        ("CHATCLIENT_TIMEOUT", ""),
        ("CHATCLIENT_ROOMS", ""),
        ("CHATCLIENT_TLS", " "),
        ("CHATCLIENT_RECONNECT_ATTEMPTS", ""),
        ("CHATCLIENT_MAX_FRAME_BYTES", ""),
    ];
    let mut alice = Client::start_opts("alice", &server.addr, &[], &blank);
    alice.say("hello");
    alice.close_stdin();
    let (status, stderr, seen) = alice.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(seen.contains(&"alice: hello".to_owned()), "{seen:#?}");
}

/// `--verbatim`: `@` and `/` mean nothing; every line is text for the
/// room, `/quit` included (input goes on after it).
#[test]
fn verbatim_sends_at_and_slash_lines_as_text() {
    let server = Server::start(&[]);
    let mut bob = Client::start("bob", &server.addr);
    bob.expect("* bob is online");
    let mut alice = Client::start_opts("alice", &server.addr, &["--verbatim"], &[]);
    bob.expect("* alice is online");
    let lines = [
        "@bob hi",
        "/quit",
        "//double",
        "/join rust",
        "after all that",
    ];
    for l in lines {
        alice.say(l);
    }
    alice.close_stdin();
    for l in lines {
        bob.expect(&format!("alice: {l}"));
    }
    let (status, stderr, seen) = alice.wait_exit(WAIT);
    assert!(status.success(), "alice exited {status}: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let own: Vec<&str> = seen
        .iter()
        .filter_map(|l| l.strip_prefix("alice: "))
        .collect();
    assert_eq!(own, lines);
    bob.expect("* alice left");
}

/// `--stay --json`: a listener with no input stays connected after its
/// stdin closes, prints what arrives after that, and exits 0 on SIGTERM.
#[test]
fn stay_keeps_listening_after_the_input_ends_until_sigterm() {
    let server = Server::start(&[]);
    let mut carol = Client::start_opts("carol", &server.addr, &["--stay", "--json"], &[]);
    carol.close_stdin();
    carol.expect_line("the end-of-input note", |l| {
        is_info(l, "end of input; staying")
    });
    let mut bob = Client::start("bob", &server.addr);
    bob.expect("* bob is online");
    bob.say("anyone listening?");
    carol.expect_line("bob's message", |l| is_msg(l, "bob", "anyone listening?"));
    assert!(
        carol.child.try_wait().unwrap().is_none(),
        "carol is running"
    );

    signal(&carol, "TERM");
    let (status, stderr, seen) = carol.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    objects(&seen);
    bob.expect("* carol left");
}

/// A signal while the client is still connecting (each address given may
/// take `--timeout`) leaves at once, as `/quit` would, exit 0: it waited
/// for the connect to fail (here 20 s, then exit 6).
#[test]
fn a_signal_while_connecting_leaves_at_once() {
    for sig in ["TERM", "INT"] {
        // It takes the connection (the test accepts it, so the client is
        // connecting, its signals caught) and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap().to_string();
        let c = Client::start_opts("fay", &addr, &["--stay", "--timeout", "20"], &[]);
        let (_held, _) = listener.accept().expect("the client's connection");
        signal(&c, sig);
        let (status, stderr, seen) = c.wait_exit(std::time::Duration::from_secs(5));
        assert_eq!(status.code(), Some(0), "{sig}: {stderr}\n{seen:#?}");
        assert!(stderr.is_empty(), "{sig}: {stderr}");
        assert!(seen.is_empty(), "{sig}: {seen:#?}");
    }
}

/// `--stay` in plain mode, and SIGINT: the same.
#[test]
fn stay_keeps_listening_after_the_input_ends_until_sigint() {
    let server = Server::start(&[]);
    let mut dave = Client::start_opts("dave", &server.addr, &["--stay"], &[]);
    dave.say("dave here");
    dave.close_stdin();
    // In either order: the note comes once the end is read, the echo
    // once the server answers.
    dave.expect_all(&[
        "dave: dave here".to_owned(),
        "* end of input; staying connected until SIGINT or SIGTERM".to_owned(),
    ]);
    let mut bob = Client::start("bob", &server.addr);
    bob.expect("* bob is online");
    bob.say("hi dave");
    dave.expect("bob: hi dave");

    signal(&dave, "INT");
    let (status, stderr, _) = dave.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    bob.expect("* dave left");
}

/// A signal while a message is unanswered waits for the answer; a second
/// leaves at once, the line reported `unconfirmed`, exit code 8.
#[test]
fn a_second_signal_leaves_at_once_with_the_line_unconfirmed() {
    let server = Server::start(&[]);
    let proxy = Proxy::start(&server.addr);
    proxy.allow();
    let mut erin = Client::start_opts("erin", &proxy.addr, &["--stay", "--json"], &[]);
    erin.expect_line("her own presence", |l| {
        serde_json::from_str::<Value>(l)
            .is_ok_and(|v| v["type"] == "presence" && v["nick"] == "erin")
    });
    // From here the server's answers to erin wait in the proxy.
    let valve = proxy.freeze();
    erin.say("into the void");
    erin.close_stdin();
    // The note comes after the line was handled (input is taken in order).
    erin.expect_line("the end-of-input note", |l| {
        is_info(l, "end of input; staying")
    });
    signal(&erin, "TERM");
    erin.expect_line("the note that she waits", |l| {
        is_info(l, "leaving once the server has answered 1 more message")
    });
    signal(&erin, "TERM");
    let (status, stderr, seen) = erin.wait_exit(WAIT);
    drop(valve);
    assert_eq!(status.code(), Some(UNDELIVERED), "stderr: {stderr}");
    assert_eq!(
        stderr.trim_end(),
        "chatclient: 1 of 1 input lines was not confirmed: it may or may not have been delivered"
    );
    let outcomes: Vec<Value> = objects(&seen).into_iter().filter(is_outcome).collect();
    assert_eq!(outcomes.len(), 1, "{outcomes:#?}");
    assert_eq!(outcomes[0]["type"], "unconfirmed");
    assert_eq!(outcomes[0]["line"], 1);
    assert_eq!(outcomes[0]["room"], "lobby");
}

/// `--json` across a lost connection: the echoes of ten lines are lost
/// with the socket and ten more are typed while away. After the reconnect
/// (the resent lines answered by their replayed copies or as duplicates)
/// each line has exactly one `sent` outcome, in order, naming the seq at
/// which its text was delivered.
#[test]
fn json_outcomes_survive_a_reconnect_each_line_once() {
    let server = Server::start(&[]);
    let proxy = Proxy::start(&server.addr);
    let mut bob = Client::start("bob", &server.addr);
    bob.expect("* bob is online");
    proxy.allow();
    let mut alice = Client::start_opts(
        "alice",
        &proxy.addr,
        &["--json", "--timeout", "20"],
        &[("CHATCLIENT_RECONNECT_MIN_MS", "50")],
    );
    bob.expect("* alice is online");
    // In the room before the server's answers stop (input waits for it).
    alice.expect_line("alice's entered", |l| l.contains(r#""type":"entered""#));
    let lines: Vec<String> = (0..20).map(|i| format!("a{i:03}")).collect();

    let valve = proxy.freeze();
    alice.say_all(&lines[..10]);
    bob.expect("alice: a009");
    proxy.cut();
    drop(valve);
    alice.expect_line("the reconnecting note", |l| is_info(l, "connection lost ("));
    alice.say_all(&lines[10..]);
    alice.close_stdin();
    bob.expect("* alice left");
    proxy.allow();
    bob.expect("alice: a019");

    let (status, stderr, seen) = alice.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let all = objects(&seen);
    let outcomes: Vec<&Value> = all.iter().filter(|v| is_outcome(v)).collect();
    assert_eq!(outcomes.len(), 20, "{outcomes:#?}");
    let mut last_seq = 0;
    for (i, o) in outcomes.iter().enumerate() {
        assert_eq!(o["type"], "sent", "{o}");
        assert_eq!(o["line"], i as u64 + 1, "{o}");
        let seq = o["seq"].as_u64().unwrap_or_else(|| panic!("no seq: {o}"));
        assert!(seq > last_seq, "seqs in order: {outcomes:#?}");
        last_seq = seq;
        let delivered = all
            .iter()
            .find(|v| v["type"] == "msg" && v["seq"] == seq && v["room"] == "lobby")
            .unwrap_or_else(|| panic!("no msg at seq {seq} for {o}"));
        assert_eq!(delivered["from"], "alice");
        assert_eq!(delivered["text"], lines[i].as_str());
    }
}

/// With `--json`, a node that refuses the join (`unavailable`: cut off
/// from its cluster) and is gone past is told as the text mode tells it,
/// the `info` note that the client tries the next address first; then
/// the `error` frame the node answered, as the reason; then the next
/// node's `welcome`. The frame came first, read as if the client had
/// failed before it said it moved on.
/// Every address refuses the join: what the client said of each (the
/// note that it goes on, the node's `error` frame) is shown before the
/// failure, not thrown away with it.
#[test]
fn json_shows_every_refusal_when_no_address_lets_the_client_in() {
    const CUT_OFF: &str = "the server cannot reach its cluster (no answer); try again later";
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        nodes.push(listener.local_addr().unwrap().to_string());
        common::fake::refusing_joins(listener, chatproto::ErrorCode::Unavailable, CUT_OFF);
    }
    let mut alice = Client::start_opts(
        "alice",
        &nodes.join(","),
        &["--json"],
        &[("CHATCLIENT_FIRST_ADDR", "0")],
    );
    alice.close_stdin();
    let (status, stderr, seen) = alice.wait_exit(WAIT);
    assert_eq!(status.code(), Some(6), "stderr: {stderr}\n{seen:#?}");
    let all = objects(&seen);
    let note = format!(
        "node {} unavailable ({CUT_OFF}), trying {}",
        nodes[0], nodes[1]
    );
    let kinds: Vec<(&str, &str)> = all
        .iter()
        .map(|v| {
            let t = v["type"].as_str().unwrap_or("");
            let what = v["text"].as_str().or(v["code"].as_str()).unwrap_or("");
            (t, what)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("info", note.as_str()),
            ("error", "unavailable"),
            ("error", "unavailable")
        ],
        "{seen:#?}"
    );
    assert!(stderr.contains("unavailable"), "{stderr}");
}

#[test]
fn json_tells_a_node_gone_past_before_the_error_it_answered() {
    const CUT_OFF: &str = "the server cannot reach its cluster (no answer); try again later";
    let server = Server::start(&[]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let node = listener.local_addr().unwrap().to_string();
    common::fake::refusing_joins(listener, chatproto::ErrorCode::Unavailable, CUT_OFF);
    let list = format!("{node},{}", server.addr);
    let mut alice = Client::start_opts(
        "alice",
        &list,
        &["--json"],
        &[("CHATCLIENT_FIRST_ADDR", "0")],
    );
    alice.close_stdin();
    let (status, stderr, seen) = alice.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}\n{seen:#?}");
    let all = objects(&seen);
    let at = |what: &str, want: &dyn Fn(&Value) -> bool| {
        all.iter()
            .position(want)
            .unwrap_or_else(|| panic!("no {what} in {seen:#?}"))
    };
    let note = format!(
        "node {node} unavailable ({CUT_OFF}), trying {}",
        server.addr
    );
    let note_at = at("note", &|v| {
        v["type"] == "info" && v["text"] == note.as_str()
    });
    let error_at = at("error", &|v| {
        v["type"] == "error" && v["code"] == "unavailable"
    });
    let welcome_at = at("welcome", &|v| v["type"] == "welcome");
    assert!(note_at < error_at, "{seen:#?}");
    assert!(error_at < welcome_at, "{seen:#?}");
    assert_eq!(all[error_at]["message"], CUT_OFF);
}
