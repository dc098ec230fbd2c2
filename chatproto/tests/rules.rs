//! One test per Room rule, driven through the simulation harness.

use chatproto::testkit::{presences, Sim};
use chatproto::{
    ClientFrame, ClientId, ErrorCode, EventBody, Kick, PresenceStatus, ServerConfig, ServerFrame,
};
use PresenceStatus::{Offline, Online};

const T0: u64 = 1_732_400_000_000;

fn sim_with(config: ServerConfig) -> Sim {
    Sim::new(config, T0)
}

fn sim() -> Sim {
    sim_with(ServerConfig::default())
}

/// Connect and join each nick, then forget what they received.
fn joined(sim: &mut Sim, nicks: &[&str]) -> Vec<usize> {
    let ids: Vec<usize> = nicks
        .iter()
        .map(|n| {
            let i = sim.connect();
            sim.join(i, n);
            assert_eq!(sim.clients[i].nick.as_deref(), Some(*n), "{n} joined");
            i
        })
        .collect();
    for &i in &ids {
        sim.take(i);
    }
    ids
}

/// The one frame `frames` must hold: an error. Returns its code and message.
fn only_error(frames: Vec<ServerFrame>) -> (ErrorCode, String) {
    match &frames[..] {
        [ServerFrame::Error { code, message, .. }] => (*code, message.clone()),
        other => panic!("expected one error, got {other:?}"),
    }
}

/// The frames with the welcome's session token (random) taken out.
fn without_session(mut frames: Vec<ServerFrame>) -> Vec<ServerFrame> {
    for f in &mut frames {
        if let ServerFrame::Welcome { session, .. } = f {
            assert_eq!(
                session.as_ref().map(String::len),
                Some(32),
                "a 128-bit token"
            );
            *session = None;
        }
    }
    frames
}

fn msg(seq: u64, from: &str, to: &[&str], text: &str, ts: u64) -> ServerFrame {
    ServerFrame::msg(
        Some("lobby".into()),
        seq,
        from,
        to.iter().map(|s| s.to_string()).collect(),
        text,
        ts,
        None,
    )
}

fn presence(seq: u64, nick: &str, status: PresenceStatus, ts: u64) -> ServerFrame {
    ServerFrame::presence(Some("lobby".into()), seq, nick, status, ts)
}

#[test]
fn welcome_carries_the_latest_seq_and_everyone_online() {
    let mut sim = sim();
    let a = sim.connect();
    sim.join(a, "alice");
    let welcome = |nick: &str, seq, online: &[&str]| {
        ServerFrame::welcome(
            nick,
            seq,
            online.iter().map(|s| s.to_string()).collect(),
            None,
            Some(false),
            Some(ServerConfig::default().limits()),
        )
    };
    assert_eq!(
        without_session(sim.take(a)),
        vec![
            welcome("alice", 0, &["alice"]),
            presence(1, "alice", Online, T0)
        ]
    );
    sim.msg(a, &[], "one");
    sim.msg(a, &[], "two");
    let b = sim.connect();
    sim.join(b, "Bob");
    // seq 3 is the latest before Bob's own presence, which is 4.
    assert_eq!(
        without_session(sim.take(b)),
        vec![
            welcome("Bob", 3, &["alice", "Bob"]),
            presence(4, "Bob", Online, T0)
        ]
    );
}

#[test]
fn presence_goes_to_everyone_on_join_and_to_the_rest_on_leave() {
    let mut sim = sim();
    let [a, b] = joined(&mut sim, &["alice", "bob"])[..] else {
        unreachable!()
    };
    let lurker = sim.connect(); // never joins: sees no presence
    sim.now += 7;
    let c = sim.connect();
    sim.join(c, "carol");
    for i in [a, b] {
        assert_eq!(sim.take(i), vec![presence(3, "carol", Online, T0 + 7)]);
    }
    assert_eq!(sim.take(c)[1], presence(3, "carol", Online, T0 + 7));
    sim.now += 5;
    sim.disconnect(b);
    for i in [a, c] {
        assert_eq!(sim.take(i), vec![presence(4, "bob", Offline, T0 + 12)]);
    }
    assert!(sim.take(b).is_empty(), "the leaver is gone");
    assert!(sim.take(lurker).is_empty());
    // An unjoined connection leaving is nobody's business.
    sim.disconnect(lurker);
    assert!(sim.take(a).is_empty());
    assert_eq!(sim.server.seq("lobby"), 4);
    // Named as a client may spell it.
    assert_eq!(sim.server.seq("LOBBY"), 4);
}

#[test]
fn broadcast_reaches_every_member_and_no_one_else() {
    let mut sim = sim();
    let ids = joined(&mut sim, &["alice", "bob", "carol"]);
    let lurker = sim.connect();
    sim.msg(ids[1], &[], "hi all");
    for &i in &ids {
        assert_eq!(sim.take(i), vec![msg(4, "bob", &[], "hi all", T0)]);
    }
    assert!(sim.take(lurker).is_empty());
}

#[test]
fn private_and_group_messages_reach_only_their_recipients_and_the_sender() {
    let mut sim = sim();
    let [a, b, c, d] = joined(&mut sim, &["alice", "bob", "carol", "dave"])[..] else {
        unreachable!()
    };
    sim.msg(a, &["bob"], "psst");
    let m = msg(5, "alice", &["bob"], "psst", T0);
    assert_eq!(sim.take(b), vec![m.clone()]);
    assert_eq!(sim.take(a), vec![m], "echo to the sender");
    assert!(sim.take(c).is_empty() && sim.take(d).is_empty());

    sim.msg(a, &["CAROL", "bob", "Bob"], "group");
    // Recipients are named as the room knows them, each once.
    let m = msg(6, "alice", &["carol", "bob"], "group", T0);
    for i in [a, b, c] {
        assert_eq!(sim.take(i), vec![m.clone()]);
    }
    assert!(sim.take(d).is_empty());
}

#[test]
fn the_sender_gets_exactly_one_echo() {
    let mut sim = sim();
    let [a, b] = joined(&mut sim, &["alice", "bob"])[..] else {
        unreachable!()
    };
    sim.msg(a, &["alice", "ALICE"], "note to self");
    assert_eq!(
        sim.take(a),
        vec![msg(3, "alice", &["alice"], "note to self", T0)]
    );
    assert!(sim.take(b).is_empty());
    sim.msg(a, &["bob", "alice"], "both");
    assert_eq!(sim.take(a).len(), 1);
    assert_eq!(sim.take(b).len(), 1);
}

#[test]
fn an_unknown_recipient_rejects_the_whole_message() {
    let mut sim = sim();
    let [a, b, c] = joined(&mut sim, &["alice", "bob", "carol"])[..] else {
        unreachable!()
    };
    let seq = sim.server.seq("lobby");
    sim.msg(a, &["bob", "zed", "carol", "yann", "zed"], "hello?");
    let (code, message) = only_error(sim.take(a));
    assert_eq!(code, ErrorCode::UnknownNick);
    assert!(
        message.contains("zed") && message.contains("yann"),
        "{message}"
    );
    assert!(
        !message.contains("bob") && !message.contains("carol"),
        "{message}"
    );
    assert!(
        sim.take(b).is_empty() && sim.take(c).is_empty(),
        "nothing delivered"
    );
    assert_eq!(sim.server.seq("lobby"), seq, "no seq spent");
    assert!(sim.clients[a].open);
    assert!(!sim
        .events
        .iter()
        .any(|e| matches!(e.body, EventBody::Msg { .. })));
}

#[test]
fn names_that_no_nick_can_have_are_unknown_not_errors() {
    let mut sim = sim();
    let long = "b".repeat(33);
    let [a, b] = joined(&mut sim, &["alice", &long[..32]])[..] else {
        unreachable!()
    };
    // Longer than any nick, non-ASCII, empty: unknown, like any stranger.
    for name in [long.as_str(), "bób", "BÓB", ""] {
        sim.msg(a, &[name], "x");
        let (code, _) = only_error(sim.take(a));
        assert_eq!(code, ErrorCode::UnknownNick, "{name:?}");
    }
    // The 32-byte nick itself, in any case, is found.
    sim.msg(a, &[&long[..32].to_ascii_uppercase()], "y");
    assert_eq!(sim.take(b).len(), 1);
}

#[test]
fn an_unknown_nick_error_fits_even_when_it_quotes_a_huge_list() {
    let mut cfg = ServerConfig::default();
    cfg.max_recipients = 5_000;
    let mut sim = sim_with(cfg);
    let a = joined(&mut sim, &["alice"])[0];
    // Each name costs 3 bytes raw but 6 once escaped and JSON-quoted.
    let names: Vec<String> = (0..2000)
        .map(|i| format!("{i}{}", "\u{2028}".repeat(8)))
        .collect();
    let to: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    sim.msg(a, &to, "hi");
    let (code, message) = only_error(sim.take(a));
    assert_eq!(code, ErrorCode::UnknownNick, "{message:.80}");
    assert!(message.starts_with("not a nickname anyone can have: \"0"));
}

#[test]
fn a_name_no_one_could_have_is_said_apart_from_one_not_online() {
    let mut sim = sim_with(ServerConfig::default());
    let a = joined(&mut sim, &["alice"])[0];
    sim.msg(a, &["", "zed", "bob, carol", "a\"b"], "hi");
    let (code, message) = only_error(sim.take(a));
    assert_eq!(code, ErrorCode::UnknownNick);
    assert_eq!(
        message,
        r#"not a nickname anyone can have: "", "bob, carol", "a\"b"; not online: zed; nothing was delivered"#
    );
}

#[test]
fn more_recipients_than_the_limit_are_refused_before_any_lookup() {
    let mut cfg = ServerConfig::default();
    cfg.max_recipients = 3;
    let mut sim = sim_with(cfg);
    let [a, b, c] = joined(&mut sim, &["alice", "bob", "carol"])[..] else {
        unreachable!()
    };
    let seq = sim.server.seq("lobby");
    // Four names, all online, one twice: duplicates count against the limit.
    sim.msg(a, &["bob", "carol", "bob", "BOB"], "hi");
    let (code, message) = only_error(sim.take(a));
    assert_eq!(code, ErrorCode::TooManyRecipients);
    assert!(
        message.contains("at most 3") && message.contains("names 4"),
        "{message}"
    );
    assert!(sim.take(b).is_empty() && sim.take(c).is_empty());
    assert_eq!(sim.server.seq("lobby"), seq, "no seq spent");
    assert!(sim.clients[a].open);
    // Unknown names past the limit are not looked up, so not quoted.
    let many: Vec<String> = (0..4).map(|i| format!("zed{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    sim.msg(a, &many, "hi");
    let (code, message) = only_error(sim.take(a));
    assert_eq!(code, ErrorCode::TooManyRecipients);
    assert!(!message.contains("zed"), "{message}");
    // Exactly the limit, with duplicates de-duplicated: delivered once each.
    sim.msg(a, &["bob", "Bob", "carol"], "ok");
    assert_eq!(
        sim.take(a),
        vec![msg(seq + 1, "alice", &["bob", "carol"], "ok", T0)]
    );
    assert_eq!(sim.take(b).len(), 1);
    assert_eq!(sim.take(c).len(), 1);
}

#[test]
fn the_default_limit_is_64_recipients() {
    assert_eq!(ServerConfig::default().max_recipients, 64);
    let mut sim = sim();
    let a = joined(&mut sim, &["alice"])[0];
    let names: Vec<String> = (0..64).map(|i| format!("n{i}")).collect();
    let mut to: Vec<&str> = names.iter().map(String::as_str).collect();
    sim.msg(a, &to, "x");
    assert_eq!(only_error(sim.take(a)).0, ErrorCode::UnknownNick);
    to.push("alice");
    sim.msg(a, &to, "x");
    assert_eq!(only_error(sim.take(a)).0, ErrorCode::TooManyRecipients);
}

#[test]
fn a_bad_frame_error_fits_even_when_it_quotes_a_huge_type() {
    let mut sim = sim();
    let a = joined(&mut sim, &["alice"])[0];
    let payload = format!("{{\"type\":\"{}\"}}", "x".repeat(65_520));
    sim.send_payload(a, payload.as_bytes());
    let (code, message) = only_error(sim.take(a));
    assert_eq!(code, ErrorCode::BadFrame, "{message:.80}");
    assert!(message.contains("unknown variant"), "{message:.80}");
    assert!(sim.clients[a].open);
}

#[test]
fn seq_rises_by_one_per_msg_and_presence_only() {
    let mut sim = sim();
    let [a, b] = joined(&mut sim, &["alice", "bob"])[..] else {
        unreachable!()
    };
    assert_eq!(sim.server.seq("lobby"), 2);
    sim.msg(a, &[], "x");
    assert_eq!(sim.server.seq("lobby"), 3);
    sim.msg(b, &["alice"], "y");
    assert_eq!(sim.server.seq("lobby"), 4);
    // Errors, pings and refused joins spend nothing.
    sim.msg(a, &["nobody"], "z");
    sim.send(a, chatproto::ClientFrame::Ping);
    sim.join(a, "again");
    let c = sim.connect();
    sim.join(c, "ALICE");
    sim.send_payload(c, b"nonsense");
    assert_eq!(sim.server.seq("lobby"), 4);
    sim.disconnect(b);
    assert_eq!(sim.server.seq("lobby"), 5);
}

#[test]
fn ts_is_the_now_passed_in_and_from_is_stamped_by_the_room() {
    let mut sim = sim();
    let [a, b] = joined(&mut sim, &["Alice", "bob"])[..] else {
        unreachable!()
    };
    sim.now = T0 + 123_456;
    sim.msg(a, &["BOB"], "t");
    let m = msg(3, "Alice", &["bob"], "t", T0 + 123_456);
    assert_eq!((sim.take(a), sim.take(b)), (vec![m.clone()], vec![m]));
    sim.send_payload(
        b,
        br#"{"type":"msg","from":"Alice","seq":1,"ts":5,"text":"me"}"#,
    );
    assert_eq!(sim.take(a), vec![msg(4, "bob", &[], "me", T0 + 123_456)]);
}

#[test]
fn nick_taken_ignores_case_until_the_holder_leaves() {
    let mut sim = sim();
    let a = joined(&mut sim, &["alice"])[0];
    let c = sim.connect();
    for n in ["alice", "ALICE", "aLiCe"] {
        sim.join(c, n);
        let (code, message) = only_error(sim.take(c));
        assert_eq!(code, ErrorCode::NickTaken, "{n}");
        assert!(message.contains("alice"), "{message}");
    }
    assert!(sim.take(a).is_empty());
    sim.disconnect(a);
    sim.join(c, "ALICE");
    assert_eq!(sim.clients[c].nick.as_deref(), Some("ALICE"));
}

/// A refusal names the spelling asked for beside the one online when
/// they differ: told only `bob is in use`, a user who typed `BOB` is told
/// of a name they did not type.
#[test]
fn nick_taken_names_both_spellings_when_they_differ() {
    let mut sim = sim();
    joined(&mut sim, &["bob", "Straße"]);
    let c = sim.connect();
    for (asked, said) in [
        ("bob", "the nickname bob is in use; choose another"),
        (
            "BOB",
            "the nickname BOB is taken: bob is online, and nicknames ignore case; choose another",
        ),
        (
            "STRASSE",
            "the nickname STRASSE is taken: Straße is online, and nicknames ignore case; \
             choose another",
        ),
    ] {
        sim.join(c, asked);
        let (code, message) = only_error(sim.take(c));
        assert_eq!(code, ErrorCode::NickTaken, "{asked}");
        assert_eq!(message, said, "{asked}");
    }
}

#[test]
fn nick_invalid_for_what_the_rule_forbids() {
    let mut sim = sim();
    let c = sim.connect();
    let long = "a".repeat(33);
    for bad in [
        "",
        &long,
        "a b",
        "tab\t",
        "a@b",
        "a:b",
        "a,b",
        "q\"",
        "back\\",
        "esc\u{1b}[2J",
        "c1\u{85}",
        "bidi\u{202e}",
        "zero\u{200b}width",
        "\u{430}lice",
    ] {
        sim.join(c, bad);
        let (code, message) = only_error(sim.take(c));
        assert_eq!(code, ErrorCode::NickInvalid, "{bad:?}");
        assert!(message.contains("nickname"), "{message}");
        assert!(!message.contains('\u{1b}'), "the message is safe to print");
    }
    assert!(sim.clients[c].open, "a refused join can be retried");
    sim.join(c, &"a".repeat(32));
    assert!(sim.clients[c].nick.is_some());
}

/// By default nicknames are Unicode: people's names are accepted in their
/// normalized form; with the ASCII rule they are refused.
#[test]
fn unicode_nicknames_by_default_and_ascii_only_on_request() {
    let mut sim = sim();
    for name in ["José", "Zoë", "Łukasz", "小明", "Дмитрий"] {
        let c = sim.connect();
        sim.join(c, name);
        assert_eq!(sim.clients[c].nick.as_deref(), Some(name), "{name}");
    }
    // NFD input is stored and shown in NFC.
    let c = sim.connect();
    sim.join(c, "Rene\u{301}");
    assert_eq!(sim.clients[c].nick.as_deref(), Some("Ren\u{e9}"));
    // Addressed in any case, the name is found.
    let a = sim.connect();
    sim.join(a, "ann");
    sim.take(a);
    sim.msg(a, &["ZOË", "дмитрий"], "hi");
    assert!(matches!(&sim.take(a)[..], [ServerFrame::Msg { to, .. }] if to == &["Zoë", "Дмитрий"]));

    let mut cfg = ServerConfig::default();
    cfg.nick_rule = chatproto::NickRule::Ascii;
    let mut ascii = sim_with(cfg);
    let c = ascii.connect();
    ascii.join(c, "José");
    assert_eq!(only_error(ascii.take(c)).0, ErrorCode::NickInvalid);
}

#[test]
fn nick_invalid_for_a_look_alike_of_an_online_nick() {
    let mut sim = sim();
    joined(&mut sim, &["bob", "mary", "will", "Sam", "|||"]);
    let c = sim.connect();
    for (fake, real) in [
        ("b0b", "bob"),
        ("B0B", "bob"),
        ("rnary", "mary"),
        ("wi11", "will"),
        ("vvill", "will"),
        ("5am", "Sam"),
        ("Il1", "|||"),
    ] {
        sim.join(c, fake);
        let (code, message) = only_error(sim.take(c));
        assert_eq!(code, ErrorCode::NickInvalid, "{fake}");
        assert!(message.contains(real), "{message}");
    }
    // Only online nicks count.
    sim.disconnect(0);
    sim.join(c, "b0b");
    assert_eq!(sim.clients[c].nick.as_deref(), Some("b0b"));
}

#[test]
fn not_joined_before_join_but_ping_is_answered() {
    let mut sim = sim();
    let c = sim.connect();
    sim.msg(c, &[], "hello?");
    assert_eq!(only_error(sim.take(c)).0, ErrorCode::NotJoined);
    sim.send(c, chatproto::ClientFrame::Ping);
    assert_eq!(sim.take(c), vec![ServerFrame::Pong]);
    sim.send(c, chatproto::ClientFrame::Pong);
    assert!(sim.take(c).is_empty());
    assert!(sim.clients[c].open);
}

#[test]
fn already_joined_keeps_the_first_nick() {
    let mut sim = sim();
    let a = joined(&mut sim, &["alice"])[0];
    sim.join(a, "alicia");
    let (code, message) = only_error(sim.take(a));
    assert_eq!(code, ErrorCode::AlreadyJoined);
    assert!(message.contains("alice"), "{message}");
    assert_eq!(sim.server.nick(sim.clients[a].id), Some("alice"));
    assert_eq!(sim.server.members(), 1);
}

#[test]
fn ping_is_answered_with_pong() {
    let mut sim = sim();
    let [a, b] = joined(&mut sim, &["alice", "bob"])[..] else {
        unreachable!()
    };
    sim.send(a, chatproto::ClientFrame::Ping);
    assert_eq!(sim.take(a), vec![ServerFrame::Pong]);
    assert!(sim.take(b).is_empty());
}

fn short_timeouts() -> ServerConfig {
    let mut cfg = ServerConfig::default();
    cfg.join_timeout_ms = 1_000;
    cfg.idle_ping_ms = 5_000;
    cfg.pong_timeout_ms = 2_000;
    cfg
}

#[test]
fn a_client_that_answers_is_pinged_again_after_each_silence() {
    let mut sim = sim_with(short_timeouts());
    let a = joined(&mut sim, &["alice"])[0];
    for round in 0..4 {
        sim.advance(4_999);
        assert!(sim.take(a).is_empty(), "round {round}: pinged early");
        sim.advance(1);
        assert_eq!(sim.take(a), vec![ServerFrame::Ping], "round {round}");
        sim.advance(1_000);
        sim.send(a, chatproto::ClientFrame::Pong);
    }
    // Speaking also counts as being alive: no ping while she talks.
    for _ in 0..10 {
        sim.advance(4_000);
        sim.msg(a, &[], "still here");
        assert_eq!(sim.take(a).len(), 1, "only her echo");
    }
    assert!(sim.clients[a].open);
}

/// A client whose pong waits behind a backlog it is reading is alive:
/// the shell's report that it read is as good as the pong.
#[test]
fn a_client_reading_its_backlog_is_not_timed_out() {
    let mut sim = sim_with(short_timeouts());
    let a = joined(&mut sim, &["alice"])[0];
    sim.advance(5_000);
    assert_eq!(sim.take(a), vec![ServerFrame::Ping]);
    sim.advance(1_500);
    let (now, id) = (sim.clock(), sim.clients[a].id);
    sim.server.handle_progress(now, id);
    // Its ping's deadline passes (at 7 s); the next silence starts at 6.5 s.
    sim.advance(4_999);
    assert!(sim.clients[a].open, "closed while reading");
    assert!(sim.take(a).is_empty());
    sim.advance(1);
    assert_eq!(sim.take(a), vec![ServerFrame::Ping]);
    // Without a pong or further progress, this one does time it out.
    sim.advance(2_000);
    assert_eq!(sim.clients[a].closed_with, Some(ErrorCode::Timeout));
}

#[test]
fn a_connection_that_does_not_join_in_time_is_closed() {
    let d = ServerConfig::default();
    assert_eq!(
        (d.join_timeout_ms, d.idle_ping_ms, d.pong_timeout_ms),
        (10_000, 30_000, 10_000)
    );
    let mut sim = sim_with(short_timeouts());
    let a = joined(&mut sim, &["alice"])[0];
    let c = sim.connect();
    sim.send(c, chatproto::ClientFrame::Ping); // pinging does not buy time
    sim.take(c);
    sim.advance(999);
    assert!(sim.clients[c].open);
    sim.advance(1);
    assert!(!sim.clients[c].open);
    assert_eq!(sim.clients[c].closed_with, Some(ErrorCode::Timeout));
    assert_eq!(only_error(sim.take(c)).0, ErrorCode::Timeout);
    assert!(sim.take(a).is_empty(), "no presence for a stranger");
    assert!(sim.clients[a].open);
    assert_eq!(sim.server.connections(), 1);
}

#[test]
fn an_idle_client_is_pinged_then_closed_if_silent() {
    let mut sim = sim_with(short_timeouts());
    let [a, b, c] = joined(&mut sim, &["alice", "bob", "carol"])[..] else {
        unreachable!()
    };
    sim.advance(2_000);
    sim.msg(c, &["carol"], "keeping busy"); // carol is not idle
    sim.take(c);
    sim.advance(3_000);
    assert_eq!(sim.take(a), vec![ServerFrame::Ping]);
    assert_eq!(sim.take(b), vec![ServerFrame::Ping]);
    assert!(sim.take(c).is_empty());
    sim.send(b, chatproto::ClientFrame::Pong);
    sim.advance(1_999);
    assert!(sim.clients[a].open);
    sim.advance(1);
    assert_eq!(sim.clients[a].closed_with, Some(ErrorCode::Timeout));
    assert_eq!(only_error(sim.take(a)).0, ErrorCode::Timeout);
    let gone = presence(5, "alice", Offline, T0 + 7_000);
    assert_eq!(sim.take(b), vec![gone.clone()]);
    // carol fell idle in the same tick: pings go out before the closes.
    assert_eq!(sim.take(c), vec![ServerFrame::Ping, gone]);
    assert!(sim.clients[b].open && sim.clients[c].open);
    assert!(sim.events.iter().any(|e| e.seq == 5
        && matches!(&e.body, EventBody::Presence { nick, status: Offline, .. } if &**nick == "alice")));
}

/// While the shell takes no input (its backlog is full), a pong or a
/// join may wait unread: the timeouts count only the time input was
/// taken, so nobody is closed for the pause, and each is closed once it
/// has had its whole timeout of input taken.
#[test]
fn no_client_is_timed_out_while_the_shell_takes_no_input() {
    let mut sim = sim_with(short_timeouts());
    let a = joined(&mut sim, &["alice"])[0];
    let late = sim.connect();
    sim.server.handle_input_paused(sim.clock(), true);
    sim.advance(5_000);
    assert_eq!(sim.take(a), vec![ServerFrame::Ping]);
    // Far past the pong and join timeouts, still paused.
    sim.advance(20_000);
    assert!(sim.clients[a].open && sim.clients[late].open);
    sim.server.handle_input_paused(sim.clock(), false);
    // Both waited only while paused: the whole timeout is left (join 1 s,
    // pong 2 s).
    sim.advance(999);
    assert!(
        sim.clients[late].open,
        "the join had no time since the pause"
    );
    sim.advance(1);
    assert_eq!(sim.clients[late].closed_with, Some(ErrorCode::Timeout));
    sim.advance(999);
    assert!(sim.clients[a].open, "the pong had no time since the pause");
    sim.advance(1);
    assert_eq!(sim.clients[a].closed_with, Some(ErrorCode::Timeout));
    // Answered in time after a pause: kept, and timed as before.
    let b = joined(&mut sim, &["bob"])[0];
    sim.server.handle_input_paused(sim.clock(), true);
    sim.advance(5_000);
    assert_eq!(sim.take(b), vec![ServerFrame::Ping]);
    sim.server.handle_input_paused(sim.clock(), false);
    sim.advance(100);
    sim.send(b, chatproto::ClientFrame::Pong);
    sim.advance(4_999);
    assert!(sim.take(b).is_empty());
    sim.advance(1);
    assert_eq!(sim.take(b), vec![ServerFrame::Ping]);
    sim.advance(2_000);
    assert_eq!(sim.clients[b].closed_with, Some(ErrorCode::Timeout));
}

/// A pause that comes and goes (a backlog near its bound) only slows the
/// timeouts down by the time paused: with input taken four fifths of the
/// time, a silent member and a connection that never joins are still
/// closed, after about five fourths of their timeouts, also when their
/// deadlines keep falling inside a pause (the connection comes 50 ms into
/// one).
#[test]
fn a_pause_that_comes_and_goes_only_slows_the_timeouts() {
    let mut sim = sim_with(short_timeouts());
    let a = joined(&mut sim, &["alice"])[0];
    let start = sim.clock().mono;
    sim.server.handle_input_paused(sim.clock(), true);
    sim.advance(50);
    let late = sim.connect();
    sim.advance(50);
    sim.server.handle_input_paused(sim.clock(), false);
    sim.advance(400);
    let mut closed = [None, None];
    for _ in 0..100 {
        sim.server.handle_input_paused(sim.clock(), true);
        sim.advance(100);
        sim.server.handle_input_paused(sim.clock(), false);
        sim.advance(400);
        for (i, c) in [late, a].into_iter().enumerate() {
            if closed[i].is_none() && !sim.clients[c].open {
                closed[i] = Some(sim.clock().mono - start);
            }
        }
    }
    assert_eq!(sim.clients[late].closed_with, Some(ErrorCode::Timeout));
    assert_eq!(sim.clients[a].closed_with, Some(ErrorCode::Timeout));
    // The join: 1 s of input taken, within 1.5 s (seen at the end of a
    // 500 ms round). The pong: idle 5 s (the idle clock is not slowed),
    // then 2 s taken, within 8 s.
    let [join, pong] = closed.map(|t| t.expect("closed"));
    assert!((1_000..=2_000).contains(&join), "join closed at {join} ms");
    assert!((7_000..=8_500).contains(&pong), "pong closed at {pong} ms");
}

/// A short pause across a pong's deadline delays the close by the pause,
/// not by a whole timeout.
#[test]
fn a_short_pause_over_a_deadline_delays_the_close_by_the_pause_only() {
    let mut sim = sim_with(short_timeouts());
    let a = joined(&mut sim, &["alice"])[0];
    // The ping at 5 s, its deadline at 7 s; paused from 6.9 s to 7.1 s.
    sim.advance(6_900);
    assert_eq!(sim.take(a), vec![ServerFrame::Ping]);
    sim.server.handle_input_paused(sim.clock(), true);
    sim.advance(200);
    sim.server.handle_input_paused(sim.clock(), false);
    // The pong timer came due in the pause and waited; its end arms it
    // again, at once: a shell must read the deadline after telling it.
    assert_eq!(sim.server.poll_timeout(), Some(sim.clock().mono));
    // At 7.2 s: 2 s of input taken since the ping.
    sim.advance(99);
    assert!(sim.clients[a].open, "closed before 2 s of input taken");
    sim.advance(1);
    assert_eq!(sim.clients[a].closed_with, Some(ErrorCode::Timeout));
}

#[test]
fn msg_too_large_when_the_stamped_frame_would_not_fit() {
    let mut cfg = ServerConfig::default();
    cfg.max_frame_bytes = 1024;
    let mut sim = sim_with(cfg);
    let [a, b] = joined(&mut sim, &["alice", "bob"])[..] else {
        unreachable!()
    };
    // The stamped frame adds seq, from, to and ts around the text:
    // `{"type":"msg","room":"lobby","seq":3,"from":"alice","to":[],"text":"","ts":1732400000000}`.
    // The limit keeps room for the replayed copy (`,"replay":true`) and
    // for a history page's own members (512 bytes).
    let overhead = 89 + r#","replay":true"#.len() + 512;
    let fits = "x".repeat(1024 - overhead);
    sim.msg(a, &[], &fits);
    assert_eq!(sim.take(b).len(), 1);
    sim.take(a);
    let seq = sim.server.seq("lobby");
    sim.msg(a, &[], &format!("{fits}y"));
    let (code, message) = only_error(sim.take(a));
    assert_eq!(code, ErrorCode::MsgTooLarge);
    assert!(
        message.contains(&(1024 - 512 + 1).to_string()) && message.contains("512"),
        "{message}"
    );
    assert!(sim.take(b).is_empty());
    assert_eq!(sim.server.seq("lobby"), seq);
    assert!(!code.is_fatal() && sim.clients[a].open);
}

/// The largest message the server takes is in a history page: a page
/// holding it alone fits, so it is neither left out nor stepped over.
#[test]
fn the_largest_message_taken_is_in_a_history_page() {
    let mut cfg = ServerConfig::default();
    cfg.max_frame_bytes = 1024;
    let mut sim = sim_with(cfg);
    let [a] = joined(&mut sim, &["alice"])[..] else {
        unreachable!()
    };
    // As above: the longest text whose replayed copy is 512 bytes short.
    let fits = "x".repeat(1024 - (89 + r#","replay":true"#.len() + 512));
    sim.msg(a, &[], &fits);
    sim.take(a);
    let seq = sim.server.seq("lobby");
    sim.send(a, chatproto::ClientFrame::history("lobby", None, None));
    match &sim.take(a)[..] {
        [ServerFrame::History { events, .. }] => {
            let seqs: Vec<u64> = events
                .iter()
                .filter_map(|e| match e {
                    ServerFrame::Msg { seq, .. } => Some(*seq),
                    _ => None,
                })
                .collect();
            assert_eq!(seqs, [seq], "the page: {events:?}");
        }
        other => panic!("expected one history frame, got {other:?}"),
    }
}

#[test]
fn a_big_welcome_continues_in_online_frames() {
    let mut cfg = ServerConfig::default();
    cfg.max_frame_bytes = 1024;
    let mut sim = sim_with(cfg);
    let nicks: Vec<String> = (0..150).map(|i| format!("member_{i:03}")).collect();
    for n in &nicks {
        let i = sim.connect();
        sim.join(i, n);
    }
    let j = sim.connect();
    sim.join(j, "joiner");
    let got = sim.take(j);
    let mut online = match &got[0] {
        ServerFrame::Welcome {
            nick, seq, online, ..
        } => {
            assert_eq!((nick.as_str(), *seq), ("joiner", 150));
            online.clone()
        }
        other => panic!("{other:?}"),
    };
    let mut parts = 1;
    let mut rest = got[1..].iter();
    for f in rest.by_ref() {
        match f {
            ServerFrame::Online { nicks, .. } => {
                assert!(!nicks.is_empty());
                online.extend(nicks.iter().cloned());
                parts += 1;
            }
            other => {
                // The list ends at the first frame that is not `online`.
                assert_eq!(*other, presence(151, "joiner", Online, T0));
                break;
            }
        }
    }
    assert!(rest.next().is_none());
    assert!(parts >= 2, "1024 bytes cannot hold 151 nicks in one frame");
    let mut want: Vec<String> = nicks.clone();
    want.push("joiner".into());
    online.sort();
    want.sort();
    assert_eq!(online, want);
}

#[test]
fn shutdown_sends_a_notice_to_every_connection() {
    let mut sim = sim();
    let ids = joined(&mut sim, &["alice", "bob"]);
    let lurker = sim.connect();
    let seq = sim.server.seq("lobby");
    sim.server.handle_shutdown("server restarting");
    sim.flush();
    let notice = ServerFrame::notice("server restarting");
    for i in ids.into_iter().chain([lurker]) {
        assert_eq!(sim.take(i), vec![notice.clone()]);
        assert!(sim.clients[i].open, "the caller closes");
    }
    assert_eq!(sim.server.seq("lobby"), seq);
}

#[test]
fn kick_sends_the_error_closes_and_tells_the_others() {
    let mut sim = sim();
    let [a, b] = joined(&mut sim, &["alice", "bob"])[..] else {
        unreachable!()
    };
    let id = sim.clients[b].id;
    let why = Kick::slow_consumer(1_000);
    sim.kick(b, why.clone());
    assert_eq!(sim.take(b), vec![why.frame()]);
    assert!(why.message().contains("1000"), "{}", why.message());
    assert_eq!(sim.clients[b].closed_with, Some(ErrorCode::SlowConsumer));
    assert_eq!(presences(&sim, a), vec![("bob".to_string(), Offline)]);
    assert_eq!(sim.server.members(), 1);
    // Kicking again, or a late disconnect, does nothing.
    sim.server.kick(sim.clock(), id, Kick::RateLimited);
    sim.server.handle_disconnect(sim.clock(), id);
    sim.flush();
    assert_eq!(sim.take(a).len(), 1);
}

#[test]
fn input_for_unknown_clients_is_ignored() {
    let mut sim = sim();
    let a = joined(&mut sim, &["alice"])[0];
    let ghost = ClientId(999);
    let now = sim.clock();
    sim.server
        .handle_frame(now, ghost, chatproto::ClientFrame::Ping);
    sim.server.handle_disconnect(now, ghost);
    sim.server.kick(now, ghost, Kick::RateLimited);
    assert!(sim.server.poll().is_none());
    assert!(sim.take(a).is_empty());
}

#[test]
fn events_are_reported_in_seq_order() {
    let mut sim = sim();
    let [a, b] = joined(&mut sim, &["alice", "bob"])[..] else {
        unreachable!()
    };
    sim.msg(a, &["bob"], "hi");
    sim.disconnect(b);
    let seqs: Vec<u64> = sim.events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    assert!(sim.events.iter().all(|e| &*e.room == "lobby"));
    match &sim.events[2].body {
        EventBody::Msg { nick, to, text, .. } => {
            assert_eq!(&**nick, "alice");
            assert_eq!(to.iter().map(|r| &*r.nick).collect::<Vec<_>>(), ["bob"]);
            assert_eq!(text, "hi");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn fatal_codes_are_the_ones_that_close() {
    use ErrorCode::*;
    let all = [
        (NickTaken, false),
        (NickInvalid, false),
        (NotJoined, false),
        (AlreadyJoined, false),
        (UnknownNick, false),
        (BadFrame, false),
        (FrameTooLarge, true),
        (EmptyFrame, true),
        (MsgTooLarge, false),
        (TooManyRecipients, false),
        (RoomInvalid, false),
        (NotInRoom, false),
        (AlreadyInRoom, false),
        (TooManyRooms, false),
        (Duplicate, false),
        (Unavailable, false),
        (ServerFull, true),
        (RateLimited, true),
        (SlowConsumer, true),
        (Timeout, true),
        (Unknown, false),
    ];
    for (code, fatal) in all {
        assert_eq!(code.is_fatal(), fatal, "{code}");
        let json = serde_json::to_string(&code).unwrap();
        assert_eq!(json, format!("\"{}\"", code.as_str()));
    }
    let unknown: ErrorCode = serde_json::from_str("\"from_the_future\"").unwrap();
    assert_eq!(unknown, Unknown);
}

/// Paging back through a history whose oldest messages were forgotten
/// ends: `more` is false once the kept messages are exhausted.
#[test]
fn history_paging_ends_where_the_kept_history_starts() {
    use chatproto::ClientFrame;
    let mut cfg = ServerConfig::default();
    cfg.history_per_room = 2;
    let mut sim = sim_with(cfg);
    let a = sim.connect();
    sim.send(a, ClientFrame::join_v2("alice", vec!["rust".into()], None)); // seq 1
    sim.send(a, ClientFrame::msg_in("rust", vec![], "m1", None)); // 2
    sim.send(a, ClientFrame::msg_in("rust", vec![], "m2", None)); // 3
    let b = sim.connect();
    sim.send(b, ClientFrame::join_v2("bob", vec!["rust".into()], None)); // 4
    sim.send(a, ClientFrame::msg_in("rust", vec![], "m3", None)); // 5
    sim.send(a, ClientFrame::msg_in("rust", vec![], "m4", None)); // 6: m1, m2 forgotten
    sim.take(b);
    let mut before = None;
    let mut pages = 0;
    loop {
        sim.send(b, ClientFrame::history("rust", before, Some(1)));
        let Some(ServerFrame::History { events, more, .. }) = sim.take(b).pop() else {
            panic!("no history page")
        };
        pages += 1;
        assert!(pages <= 3, "paging does not end");
        if !more {
            break;
        }
        before = events.first().map(|e| match e {
            ServerFrame::Msg { seq, .. } => *seq,
            other => panic!("{other:?}"),
        });
    }
    assert_eq!(pages, 2, "m4, then m3 and the end");
}

/// Counts of one are said in the singular.
#[test]
fn one_room_is_said_in_the_singular() {
    use chatproto::ClientFrame;
    let mut cfg = ServerConfig::default();
    cfg.max_rooms_per_client = 1;
    cfg.max_rooms = 1;
    cfg.max_recipients = 1;
    let mut sim = sim_with(cfg);
    let a = sim.connect();
    sim.send(a, ClientFrame::join_v2("alice", vec!["rust".into()], None));
    sim.take(a);
    let errors = |sim: &mut Sim, frame: ClientFrame| -> Vec<String> {
        sim.send(a, frame);
        sim.take(a)
            .into_iter()
            .filter_map(|f| match f {
                ServerFrame::Error { message, .. } => Some(message),
                _ => None,
            })
            .collect()
    };
    let mine = errors(&mut sim, ClientFrame::enter("go", None));
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert!(mine[0].starts_with("you are in 1 room,"), "{mine:?}");
    let to = vec!["bob".into(), "carol".into()];
    let mine = errors(&mut sim, ClientFrame::msg_in("rust", to, "hi", None));
    assert!(
        mine[0].starts_with("a message may name at most 1 recipient and"),
        "{mine:?}"
    );
    let b = sim.connect();
    sim.send(b, ClientFrame::join_v2("bob", vec!["zig".into()], None));
    let theirs: Vec<String> = sim
        .take(b)
        .into_iter()
        .filter_map(|f| match f {
            ServerFrame::Error { message, .. } => Some(message),
            _ => None,
        })
        .collect();
    assert!(
        theirs
            .iter()
            .any(|m| m.starts_with("the server holds 1 room,")),
        "{theirs:?}"
    );
}

/// A page asked with `limit: 0` holds one message, so that a pager
/// asking with the `before` it gets back moves on (a page of none would
/// say `more` with the same `before`, for ever).
#[test]
fn a_history_limit_of_zero_pages_one_message_at_a_time() {
    use chatproto::ClientFrame;
    let mut sim = sim_with(ServerConfig::default());
    let a = sim.connect();
    sim.send(a, ClientFrame::join_v2("alice", vec!["rust".into()], None)); // seq 1
    sim.send(a, ClientFrame::msg_in("rust", vec![], "m1", None)); // 2
    sim.send(a, ClientFrame::msg_in("rust", vec![], "m2", None)); // 3
    sim.take(a);
    let mut before = None;
    let mut seen = Vec::new();
    for _ in 0..5 {
        sim.send(a, ClientFrame::history("rust", before, Some(0)));
        let Some(ServerFrame::History {
            events,
            more,
            before: next,
            ..
        }) = sim.take(a).pop()
        else {
            panic!("no history page")
        };
        assert_eq!(events.len(), 1, "one message a page");
        for e in &events {
            match e {
                ServerFrame::Msg { text, .. } => seen.push(text.clone()),
                other => panic!("{other:?}"),
            }
        }
        if !more {
            break;
        }
        before = next;
    }
    assert_eq!(seen, ["m2", "m1"]);
}

/// At the cap of rooms, a new room takes the place of the least recently
/// used room nobody is in; if every room has members, `too_many_rooms`.
#[test]
fn at_the_room_cap_an_empty_room_is_forgotten_for_a_new_one() {
    use chatproto::ClientFrame;
    let mut cfg = ServerConfig::default();
    cfg.max_rooms = 2;
    let mut sim = sim_with(cfg);
    let a = sim.connect();
    sim.send(a, ClientFrame::join_v2("alice", vec!["one".into()], None));
    sim.send(
        a,
        ClientFrame::msg_in("one", vec![], "kept until forgotten", None),
    );
    sim.send(a, ClientFrame::part("one"));
    sim.send(a, ClientFrame::enter("two", None));
    sim.take(a);
    // "one" has history but nobody in it: it makes way for "three".
    sim.send(a, ClientFrame::enter("three", None));
    assert!(
        matches!(sim.take(a).first(), Some(ServerFrame::Entered { room, .. }) if room == "three")
    );
    assert_eq!(sim.server.seq("one"), 0, "forgotten");
    // Now both rooms have a member: no room for a fourth.
    sim.send(a, ClientFrame::enter("four", None));
    assert_eq!(only_error(sim.take(a)).0, ErrorCode::TooManyRooms);
}

/// At the cap of rooms, an empty room that never held a message (entered
/// and left) makes way before one that did, however recently used: rooms
/// made and left in a loop do not push out a room's history.
#[test]
fn at_the_room_cap_rooms_without_messages_are_forgotten_first() {
    use chatproto::ClientFrame;
    let mut cfg = ServerConfig::default();
    cfg.max_rooms = 3;
    let mut sim = sim_with(cfg);
    let a = sim.connect();
    sim.send(a, ClientFrame::join_v2("alice", vec!["big".into()], None));
    sim.send(a, ClientFrame::msg_in("big", vec![], "keep me", None));
    sim.send(a, ClientFrame::part("big"));
    sim.take(a);
    let big = sim.server.seq("big");
    assert!(big > 0);
    for i in 0..50 {
        let room = format!("churn{i}");
        sim.send(a, ClientFrame::enter(&room, None));
        sim.send(a, ClientFrame::part(&room));
        let frames = sim.take(a);
        assert!(
            frames
                .iter()
                .any(|f| matches!(f, ServerFrame::Entered { room: r, .. } if *r == room)),
            "{room}: {frames:?}"
        );
    }
    assert_eq!(sim.server.seq("big"), big, "big was kept");
    // Once no room without messages is left to forget, the least recently
    // used of the others goes.
    for room in ["x", "y"] {
        sim.send(a, ClientFrame::enter(room, None));
        sim.send(a, ClientFrame::msg_in(room, vec![], "said here", None));
        sim.send(a, ClientFrame::part(room));
    }
    assert!(
        sim.server.seq("big") > 0,
        "the last room without messages went"
    );
    sim.send(a, ClientFrame::enter("z", None));
    sim.take(a);
    assert_eq!(sim.server.seq("big"), 0, "then the least recently used");
    assert!(sim.server.seq("x") > 0 && sim.server.seq("y") > 0);
    // Only a room with history is said gone (`Output::Forgotten`), once:
    // the churned rooms held none.
    assert_eq!(sim.forgotten, ["big"]);
}

/// A `rooms` answer too long for a frame lists the rooms whose names
/// sort first, in order, and no more than fit, and says how many rooms
/// there are (a whole list does not).
#[test]
fn a_long_room_list_keeps_the_first_names_in_order() {
    use chatproto::{ClientFrame, RoomInfo, MIN_MAX_FRAME_BYTES};
    let mut cfg = ServerConfig::default();
    // Room for eight entries of at most 64 bytes past the frame's own 512.
    cfg.max_frame_bytes = MIN_MAX_FRAME_BYTES;
    let mut sim = sim_with(cfg);
    let a = sim.connect();
    sim.send(a, ClientFrame::join_v2("alice", vec!["lobby".into()], None));
    let b = sim.connect();
    sim.send(b, ClientFrame::join_v2("bob", vec!["lobby".into()], None));
    for room in [
        "kilo", "delta", "hotel", "charlie", "juliet", "echo", "alpha", "india", "golf",
    ] {
        sim.send(a, ClientFrame::enter(room, None));
    }
    sim.send(b, ClientFrame::enter("bravo", None));
    sim.send(b, ClientFrame::enter("golf", None));
    sim.take(a);
    sim.take(b);
    sim.send(b, ClientFrame::Rooms);
    let (rooms, total) = match sim.take(b).as_slice() {
        [ServerFrame::Rooms { rooms, total, .. }] => (rooms.clone(), *total),
        other => panic!("one rooms answer, got {other:?}"),
    };
    // Eleven rooms with members: alpha to kilo, and lobby.
    assert_eq!(total, Some(11), "a cut list says how many there are");
    let expect = [
        ("alpha", 1),
        ("bravo", 1),
        ("charlie", 1),
        ("delta", 1),
        ("echo", 1),
        ("golf", 2),
        ("hotel", 1),
        ("india", 1),
    ];
    assert_eq!(rooms, expect.map(|(r, m)| RoomInfo::new(r, m)));
    // Three rooms parted: the eight left fit, and the list is whole.
    for room in ["kilo", "juliet", "india"] {
        sim.send(a, ClientFrame::part(room));
    }
    sim.take(b);
    sim.send(b, ClientFrame::Rooms);
    match sim.take(b).as_slice() {
        [ServerFrame::Rooms { rooms, total, .. }] => {
            assert_eq!((rooms.len(), *total), (8, None), "{rooms:?}");
        }
        other => panic!("one rooms answer, got {other:?}"),
    }
}

/// An `enter` and a `part` of one room handled before anything is drained
/// (one turn of a busy server): the enter is still answered, and the
/// client sees itself come and go.
#[test]
fn enter_then_part_in_one_turn_is_answered_in_full() {
    use chatproto::ClientFrame;
    let mut sim = sim();
    let a = joined(&mut sim, &["alice"])[0];
    let (now, id) = (sim.clock(), sim.clients[a].id);
    sim.server
        .handle_frame(now, id, ClientFrame::enter("rust", None));
    sim.server.handle_frame(now, id, ClientFrame::part("rust"));
    sim.flush();
    let got = sim.take(a);
    assert!(
        matches!(&got[0], ServerFrame::Entered { room, .. } if room == "rust"),
        "{got:?}"
    );
    assert_eq!(
        presences(&sim, a),
        Vec::<(String, PresenceStatus)>::new(),
        "taken above"
    );
    let statuses: Vec<PresenceStatus> = got
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Presence { status, .. } => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, vec![Online, Offline]);
}

/// A session resumed under another spelling of the same person (ВОВ for
/// вов, which look like different names) releases the spelling it left
/// with; a later `bob` can join, also after the session is forgotten.
#[test]
fn a_resume_under_another_spelling_releases_it_on_leaving() {
    use chatproto::ClientFrame;
    let mut cfg = ServerConfig::default();
    cfg.resume_window_ms = 1_000;
    let mut sim = sim_with(cfg);
    let a = sim.connect();
    sim.send(a, ClientFrame::join_v2("вов", vec![], None));
    let token = sim.clients[a].session.clone();
    sim.disconnect(a);
    let a2 = sim.connect();
    sim.send(a2, ClientFrame::join_v2("ВОВ", vec![], token));
    assert!(matches!(
        sim.take(a2).first(),
        Some(ServerFrame::Welcome {
            resumed: Some(true),
            ..
        })
    ));
    sim.disconnect(a2);
    let b = sim.connect();
    sim.join(b, "bob");
    assert_eq!(sim.clients[b].nick.as_deref(), Some("bob"));
    sim.disconnect(b);
    sim.advance(2_000); // the session is forgotten
    let c = sim.connect();
    sim.join(c, "bob");
    assert_eq!(sim.clients[c].nick.as_deref(), Some("bob"));
}

/// A resume of a session whose connection is still open (lost without
/// the server knowing) takes the session over: the old connection gets
/// `resumed_elsewhere` and closes, the others see it go and come back,
/// and the new connection continues the session. Under another
/// nickname, the same token takes nothing over.
#[test]
fn a_resume_takes_over_a_session_still_connected() {
    use chatproto::ClientFrame;
    let mut sim = sim();
    let [a, b] = joined(&mut sim, &["alice", "bob"])[..] else {
        unreachable!()
    };
    let token = sim.clients[a].session.clone();
    let other = sim.connect();
    sim.send(other, ClientFrame::join_v2("carol", vec![], token.clone()));
    assert!(sim.clients[a].open, "another nickname takes nothing over");
    assert!(matches!(
        sim.take(other).first(),
        Some(ServerFrame::Welcome {
            resumed: Some(false),
            ..
        })
    ));
    let a2 = sim.connect();
    sim.send(
        a2,
        ClientFrame::join_v2("alice", vec!["lobby".into()], token),
    );
    assert!(!sim.clients[a].open);
    assert_eq!(
        sim.clients[a].closed_with,
        Some(ErrorCode::ResumedElsewhere)
    );
    let (code, message) = only_error(sim.take(a));
    assert_eq!(code, ErrorCode::ResumedElsewhere);
    assert!(message.contains("do not reconnect"), "{message}");
    assert!(matches!(
        sim.take(a2).first(),
        Some(ServerFrame::Welcome {
            resumed: Some(true),
            ..
        })
    ));
    let seen: Vec<(String, PresenceStatus)> = presences(&sim, b)
        .into_iter()
        .filter(|(n, _)| n == "alice")
        .collect();
    assert_eq!(
        seen,
        [("alice".to_owned(), Offline), ("alice".to_owned(), Online)]
    );
    assert_eq!(sim.server.online().filter(|n| *n == "alice").count(), 1);
}

/// A resume read together with the end of its connection (a reconnect
/// attempt that gave up waiting for its welcome while the server was
/// stalled, read after a newer connection resumed the session) takes
/// nothing over: the open connection stays and is told nothing, nobody
/// sees the session go, and the join is answered `nick_taken`, then
/// finished, once (an end told again is not answered again). Once the
/// session's connection has ended, the same kind of join resumes it as
/// any resume does.
#[test]
fn a_resume_read_with_its_end_takes_nothing_over() {
    let mut sim = sim();
    let [a, b] = joined(&mut sim, &["alice", "bob"])[..] else {
        unreachable!()
    };
    let token = sim.clients[a].session.clone();
    let stale = sim.connect();
    let join = ClientFrame::join_v2("alice", vec!["lobby".into()], token);
    sim.send_last(stale, join.clone());
    assert!(sim.clients[a].open, "the open connection stays");
    assert_eq!(sim.take(a), []);
    assert_eq!(sim.take(b), []);
    let (code, _) = only_error(sim.take(stale));
    assert_eq!(code, ErrorCode::NickTaken);
    assert!(sim.clients[stale].finished && !sim.clients[stale].open);
    // The sim panics on a second `Finish`.
    let again = sim.connect();
    let id = sim.clients[again].id;
    sim.server
        .handle_last_frame(sim.clock(), id, ClientFrame::Ping);
    sim.server.handle_end(id);
    sim.flush();
    assert_eq!(sim.take(again), [ServerFrame::Pong]);
    assert!(sim.clients[again].finished);
    // The other way round: a frame told with an end after the end is
    // nothing (no pong, and no second `Finish`).
    let other = sim.connect();
    let id = sim.clients[other].id;
    sim.server.handle_end(id);
    sim.server
        .handle_last_frame(sim.clock(), id, ClientFrame::Ping);
    sim.flush();
    assert_eq!(sim.take(other), []);
    assert!(sim.clients[other].finished);

    sim.disconnect(a);
    sim.take(b);
    let late = sim.connect();
    sim.send_last(late, join);
    assert!(matches!(
        sim.take(late).first(),
        Some(ServerFrame::Welcome {
            resumed: Some(true),
            ..
        })
    ));
    assert!(sim.clients[late].finished);
}

/// Nothing comes after an end: a frame handed with `handle_frame` (or a
/// bad one with `handle_bad_frame`) after `handle_end` is not decided,
/// before the `Finish` is polled or after (a transport that reads on
/// past the end). It was: the message went to the room and the ping was
/// answered, after the `Finish` that said to close the connection.
#[test]
fn a_frame_after_the_end_is_not_decided() {
    use chatproto::{Now, Output, Server};
    let now = Now::new(0, T0);
    let mut s = Server::new(ServerConfig::default(), [3; 32]);
    let (a, b) = (s.handle_connect(now), s.handle_connect(now));
    s.handle_frame(now, a, ClientFrame::join("alice"));
    s.handle_frame(now, b, ClientFrame::join("bob"));
    while s.poll().is_some() {}
    let seq = s.seq("lobby");
    // What each connection is given, by kind.
    let drain = |s: &mut Server| {
        let mut got = Vec::new();
        while let Some(out) = s.poll() {
            match out {
                Output::Send { to, frame, .. } => {
                    let kind = serde_json::to_value(&frame).unwrap()["type"].to_string();
                    got.push((to, kind))
                }
                Output::Deliver { to, event, .. } => {
                    got.extend(to.iter().map(|&c| (c, format!("{:?}", event.body))))
                }
                Output::Finish { client, .. } => got.push((client, "Finish".into())),
                Output::Close { client, .. } => got.push((client, "Close".into())),
                _ => {}
            }
        }
        got
    };
    s.handle_end(a);
    s.handle_frame(now, a, ClientFrame::msg(vec![], "after the end"));
    let bad = ClientFrame::from_payload(b"{\"type\":\"msg\"}").unwrap_err();
    s.handle_bad_frame(now, a, &bad);
    assert_eq!(drain(&mut s), [(a, "Finish".to_owned())]);
    // After the `Finish`, before the shell says the connection closed.
    s.handle_frame(now, a, ClientFrame::Ping);
    s.handle_frame(now, a, ClientFrame::msg(vec![], "still after"));
    s.handle_bad_frame(now, a, &bad);
    assert_eq!(drain(&mut s), []);
    assert_eq!(s.seq("lobby"), seq);
    // bob, who has not ended, is answered as ever.
    s.handle_frame(now, b, ClientFrame::Ping);
    assert_eq!(drain(&mut s), [(b, "\"pong\"".to_owned())]);
}

/// An error answering a `msg` names its room, and its id only when the id
/// kept the rule (1 to 64 characters): one that broke it is the error.
/// The room is checked first.
#[test]
fn a_msg_error_names_the_room_and_only_an_id_that_kept_the_rule() {
    use chatproto::ClientFrame;
    let mut sim = sim();
    let [a] = joined(&mut sim, &["alice"])[..] else {
        unreachable!()
    };
    let answer = |sim: &mut Sim, room: &str, id: String| {
        sim.send(a, ClientFrame::msg_in(room, vec![], "hi", Some(id)));
        match &sim.take(a)[..] {
            [ServerFrame::Error { code, id, room, .. }] => (*code, room.clone(), id.clone()),
            other => panic!("expected one error, got {other:?}"),
        }
    };
    let lobby = Some("lobby".to_owned());
    for bad in [String::new(), "x".repeat(65)] {
        assert_eq!(
            answer(&mut sim, "lobby", bad.clone()),
            (ErrorCode::BadFrame, lobby.clone(), None)
        );
        assert_eq!(
            answer(&mut sim, "ops", bad),
            (ErrorCode::NotInRoom, Some("ops".to_owned()), None),
            "the room first"
        );
    }
    assert_eq!(
        answer(&mut sim, "ops", "m1".to_owned()),
        (
            ErrorCode::NotInRoom,
            Some("ops".to_owned()),
            Some("m1".to_owned())
        )
    );
}

/// A frame about a room that is bad in another member (a mistyped `id`,
/// `to` or `text`, a missing `text`, an `enter`'s `since` as a string) is
/// answered `bad_frame` naming its room, and a `msg`'s id when it kept
/// the rule, as every other error answering it is: its sender can tell
/// which room's request failed. A room that could not be read (not a
/// string, given twice, long and against the rule) is not named.
#[test]
fn a_bad_frame_about_a_room_names_it_whatever_member_was_wrong() {
    let mut sim = sim();
    let [a] = joined(&mut sim, &["alice"])[..] else {
        unreachable!()
    };
    let long = "x".repeat(40);
    let cases: Vec<(String, Option<&str>, Option<&str>)> = vec![
        (
            r#"{"type":"msg","room":"lobby","text":"hi","id":5}"#.into(),
            Some("lobby"),
            None,
        ),
        (
            r#"{"type":"msg","room":"Lobby","to":"bob","text":"hi","id":"m1"}"#.into(),
            Some("lobby"),
            Some("m1"),
        ),
        (
            r#"{"type":"msg","room":"ops","text":null,"id":"m2"}"#.into(),
            Some("ops"),
            Some("m2"),
        ),
        (
            r#"{"type":"msg","room":"lobby","id":"m3"}"#.into(),
            Some("lobby"),
            Some("m3"),
        ),
        (
            r#"{"type":"msg","room":"lobby","to":"bob","text":"hi","id":""}"#.into(),
            Some("lobby"),
            None,
        ),
        (r#"{"type":"msg","text":7}"#.into(), Some("lobby"), None),
        (
            r#"{"type":"msg","room":null,"text":7}"#.into(),
            Some("lobby"),
            None,
        ),
        (
            r##"{"type":"msg","room":"#ops","text":7}"##.into(),
            Some("#ops"),
            None,
        ),
        (
            r#"{"type":"enter","room":"r4","since":"5","epoch":"abc"}"#.into(),
            Some("r4"),
            None,
        ),
        (
            r#"{"type":"history","room":"lobby","before":1e3}"#.into(),
            Some("lobby"),
            None,
        ),
        (
            r#"{"type":"history","room":"lobby","limit":-1,"id":"h"}"#.into(),
            Some("lobby"),
            None,
        ),
        (
            r#"{"type":"msg","room":5,"text":"hi","id":"m4"}"#.into(),
            None,
            None,
        ),
        (
            r#"{"type":"msg","room":"a","room":"b","text":7}"#.into(),
            None,
            None,
        ),
        (
            format!(r#"{{"type":"msg","room":"{long}","text":7}}"#),
            None,
            None,
        ),
        (
            r#"{"type":"enter","room":null,"since":"5"}"#.into(),
            None,
            None,
        ),
        (r#"{"type":"enter","since":1}"#.into(), None, None),
        (
            r#"{"type":"join","nick":5,"room":"lobby"}"#.into(),
            None,
            None,
        ),
    ];
    for (payload, room, id) in cases {
        sim.send_payload(a, payload.as_bytes());
        match &sim.take(a)[..] {
            [ServerFrame::Error {
                code: ErrorCode::BadFrame,
                room: r,
                id: i,
                message,
                ..
            }] => {
                assert_eq!(
                    (r.as_deref(), i.as_deref()),
                    (room, id),
                    "{payload}: {message}"
                );
                assert!(message.starts_with("bad frame: "), "{message}");
            }
            other => panic!("{payload}: expected one bad_frame, got {other:?}"),
        }
    }
    assert!(sim.clients[a].open);
}

/// With a resume window of 0 a session that ended cannot be resumed, but
/// a takeover still continues the session it takes over: the old
/// connection was told not to come back, so a fresh session would leave
/// neither with it.
#[test]
fn a_takeover_continues_the_session_with_a_resume_window_of_0() {
    use chatproto::ClientFrame;
    let resumed = |frames: Vec<ServerFrame>| match frames.first() {
        Some(ServerFrame::Welcome { resumed, .. }) => *resumed,
        other => panic!("not a welcome: {other:?}"),
    };
    let mut cfg = ServerConfig::default();
    cfg.resume_window_ms = 0;
    let mut sim = sim_with(cfg);
    let [a] = joined(&mut sim, &["alice"])[..] else {
        unreachable!()
    };
    let token = sim.clients[a].session.clone();
    let a2 = sim.connect();
    sim.send(a2, ClientFrame::join_v2("alice", vec![], token.clone()));
    assert_eq!(
        sim.clients[a].closed_with,
        Some(ErrorCode::ResumedElsewhere)
    );
    assert_eq!(resumed(sim.take(a2)), Some(true));
    assert_eq!(sim.clients[a2].session, token, "the same session");
    sim.disconnect(a2);
    let a3 = sim.connect();
    sim.send(a3, ClientFrame::join_v2("alice", vec![], token));
    assert_eq!(resumed(sim.take(a3)), Some(false), "ended: not resumed");
}

/// A server that shares rooms closes the connection of a session another
/// node resumes, found by its token's hash; nothing for a session that is
/// not connected here.
#[test]
fn a_session_resumed_on_another_node_is_closed_here() {
    let mut sim = sim();
    let [a, _b] = joined(&mut sim, &["alice", "bob"])[..] else {
        unreachable!()
    };
    let hash = chatproto::hash_token(sim.clients[a].session.as_deref().expect("token"));
    let now = sim.clock();
    let nobody = chatproto::hash_token("nobody");
    assert_eq!(sim.server.handle_resumed_elsewhere(now, &nobody), None);
    let closed = sim.server.handle_resumed_elsewhere(now, &hash);
    assert_eq!(closed, Some(sim.clients[a].id));
    sim.flush();
    assert_eq!(
        sim.clients[a].closed_with,
        Some(ErrorCode::ResumedElsewhere)
    );
    assert_eq!(
        sim.server.handle_resumed_elsewhere(now, &hash),
        None,
        "closed"
    );
}

/// A replay is cut to the newest messages that fit its byte budget, and
/// then says it did not recover everything.
#[test]
fn a_replay_keeps_to_its_byte_budget() {
    use chatproto::ClientFrame;
    let mut cfg = ServerConfig::default();
    cfg.replay_bytes = 4_096;
    let mut sim = sim_with(cfg);
    let [a, b] = joined(&mut sim, &["alice", "bob"])[..] else {
        unreachable!()
    };
    let mut since = None;
    if let Some(ServerFrame::Entered { epoch, seq, .. }) = {
        sim.send(b, ClientFrame::enter("rust", None));
        sim.take(b).into_iter().next()
    } {
        since = Some((seq, epoch));
    }
    sim.send(a, ClientFrame::enter("rust", None));
    sim.send(b, ClientFrame::part("rust"));
    for i in 0..10 {
        sim.send(
            a,
            ClientFrame::msg_in("rust", vec![], format!("{i}{}", "x".repeat(999)), None),
        );
    }
    sim.take(b);
    sim.send(b, ClientFrame::enter("rust", since));
    let got = sim.take(b);
    let recovered = matches!(
        &got[0],
        ServerFrame::Entered {
            recovered: false,
            ..
        }
    );
    assert!(recovered, "{:?}", &got[0]);
    let replayed: Vec<&ServerFrame> = got
        .iter()
        .filter(|f| matches!(f, ServerFrame::Msg { replay: true, .. }))
        .collect();
    assert_eq!(replayed.len(), 3, "three 1 KB messages fit 4 KiB");
    assert!(matches!(replayed[2], ServerFrame::Msg { text, .. } if text.starts_with('9')));
}

/// Sessions waiting to be resumed are capped: the oldest is forgotten.
#[test]
fn waiting_sessions_are_capped() {
    use chatproto::ClientFrame;
    let mut cfg = ServerConfig::default();
    cfg.max_detached_sessions = 2;
    let mut sim = sim_with(cfg);
    let mut tokens = Vec::new();
    for nick in ["ann", "ben", "cat"] {
        let i = sim.connect();
        sim.join(i, nick);
        tokens.push((nick, sim.clients[i].session.clone()));
        sim.disconnect(i);
    }
    for (nick, token) in tokens {
        let i = sim.connect();
        sim.send(i, ClientFrame::join_v2(nick, vec![], token));
        let resumed = matches!(
            sim.take(i).first(),
            Some(ServerFrame::Welcome {
                resumed: Some(true),
                ..
            })
        );
        assert_eq!(resumed, nick != "ann", "{nick}");
    }
}

/// Only sessions still waiting count against the cap: one session
/// resumed and lost again twice does not push out the only other one
/// waiting (it took three places in the queue before, and ann was
/// forgotten with one session beside her).
#[test]
fn a_session_resumed_and_lost_again_counts_once_against_the_cap() {
    use chatproto::ClientFrame;
    let resumed = |sim: &mut chatproto::testkit::Sim, i: usize| {
        matches!(
            sim.take(i).first(),
            Some(ServerFrame::Welcome {
                resumed: Some(true),
                ..
            })
        )
    };
    let mut cfg = ServerConfig::default();
    cfg.max_detached_sessions = 2;
    let mut sim = sim_with(cfg);
    let ann = sim.connect();
    sim.join(ann, "ann");
    let ann_token = sim.clients[ann].session.clone();
    sim.disconnect(ann);
    let mut ben = sim.connect();
    sim.join(ben, "ben");
    let ben_token = sim.clients[ben].session.clone();
    for _ in 0..2 {
        sim.disconnect(ben);
        ben = sim.connect();
        sim.send(ben, ClientFrame::join_v2("ben", vec![], ben_token.clone()));
        assert!(resumed(&mut sim, ben));
    }
    sim.disconnect(ben);
    let back = sim.connect();
    sim.send(back, ClientFrame::join_v2("ann", vec![], ann_token));
    assert!(resumed(&mut sim, back), "two waiting, at a cap of two");
}

/// Past the history budget for all rooms, the rooms least recently written
/// to give back their oldest messages first, not the room people talk in.
#[test]
fn the_history_budget_sheds_from_rooms_left_behind() {
    use chatproto::ClientFrame;
    let mut cfg = ServerConfig::default();
    cfg.history_bytes_total = 8_192;
    let mut sim = sim_with(cfg);
    let a = joined(&mut sim, &["alice"])[0];
    sim.send(a, ClientFrame::enter("old", None));
    for i in 0..4 {
        sim.send(
            a,
            ClientFrame::msg_in("old", vec![], format!("old{i}{}", "x".repeat(900)), None),
        );
    }
    sim.send(a, ClientFrame::part("old"));
    sim.send(a, ClientFrame::enter("busy", None));
    for i in 0..6 {
        sim.send(
            a,
            ClientFrame::msg_in("busy", vec![], format!("busy{i}{}", "x".repeat(900)), None),
        );
    }
    sim.take(a);
    sim.send(a, ClientFrame::history("busy", None, Some(50)));
    let Some(ServerFrame::History { events, .. }) = sim.take(a).pop() else {
        panic!("no page")
    };
    assert_eq!(events.len(), 6, "the busy room kept all of its messages");
}

#[test]
fn timeouts_of_u64_max_mean_never() {
    use chatproto::{ClientFrame, Now, Output, Server};
    let mut config = ServerConfig::default();
    config.join_timeout_ms = u64::MAX;
    config.idle_ping_ms = u64::MAX;
    config.pong_timeout_ms = u64::MAX;
    config.resume_window_ms = u64::MAX;
    let mut server = Server::new(config, [3; 32]);
    let at = |ms: u64| Now::new(ms, T0 + ms);
    let lurker = server.handle_connect(at(1_000));
    let alice = server.handle_connect(at(1_000));
    server.handle_frame(
        at(1_000),
        alice,
        ClientFrame::join_v2("alice", vec![], None),
    );
    let mut token = None;
    while let Some(out) = server.poll() {
        if let Output::Send {
            frame: ServerFrame::Welcome { session, .. },
            ..
        } = out
        {
            token = session;
        }
    }
    server.handle_disconnect(at(2_000), alice);
    while server.poll().is_some() {}
    // Never due: nobody is timed out, pinged or forgotten.
    assert_eq!(server.poll_timeout(), None);
    server.handle_timeout(at(1 << 40));
    let mut closed = Vec::new();
    while let Some(out) = server.poll() {
        if let Output::Close { client, .. } = out {
            closed.push(client);
        }
    }
    assert_eq!(closed, Vec::<ClientId>::new());
    assert_eq!(server.connections(), 1, "{lurker} still open");
    let back = server.handle_connect(at(1 << 40));
    server.handle_frame(
        at(1 << 40),
        back,
        ClientFrame::join_v2("alice", vec![], token),
    );
    let mut resumed = None;
    while let Some(out) = server.poll() {
        if let Output::Send {
            frame: ServerFrame::Welcome { resumed: r, .. },
            ..
        } = out
        {
            resumed = r;
        }
    }
    assert_eq!(resumed, Some(true));
}

/// A join listing more rooms than a session may be in tries only the
/// first `max_rooms_per_client` names (each answered as usual) and
/// answers the rest with one error, not one each: a frame full of room
/// names costs the server no more answers than the cap.
#[test]
fn a_join_listing_more_rooms_than_allowed_is_answered_once_for_the_rest() {
    use chatproto::ClientFrame;
    let mut cfg = ServerConfig::default();
    cfg.max_rooms_per_client = 3;
    let mut sim = sim_with(cfg);
    let a = sim.connect();
    let mut rooms: Vec<String> = vec!["a".into(), "!bad".into(), "b".into()];
    rooms.extend((0..5_000).map(|i| format!("r{i}")));
    sim.send(a, ClientFrame::join_v2("alice", rooms, None));
    let frames = sim.take(a);
    let entered: Vec<&str> = frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Entered { room, .. } => Some(room.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(entered, ["a", "b"]);
    let errors: Vec<(ErrorCode, Option<&str>, &str)> = frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Error {
                code,
                room,
                message,
                ..
            } => Some((*code, room.as_deref(), message.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].0, ErrorCode::RoomInvalid);
    assert_eq!(errors[1].0, ErrorCode::TooManyRooms);
    assert_eq!(errors[1].1, None);
    assert_eq!(
        errors[1].2,
        "a join may list at most 3 rooms: the 5000 after them were not entered"
    );
    assert!(
        matches!(frames.last(), Some(ServerFrame::Error { .. })),
        "after the others' answers: {frames:?}"
    );
    assert!(frames.len() < 20, "{} frames", frames.len());
}

/// A message refused for a recipient not online (or a room not entered)
/// stays refused under its id: the resend of a client that lost the
/// refusal with its connection was delivered once the recipient came,
/// after the messages the client had sent after it, and no one was
/// told it had been refused.
#[test]
fn a_refused_id_resent_is_refused_again_and_keeps_the_senders_order() {
    let mut sim = sim();
    let ids = joined(&mut sim, &["bob"]);
    let bob = ids[0];
    let first = ClientFrame::msg_in("lobby", vec!["dave".into()], "x-first", Some("b-1".into()));
    sim.send(bob, first.clone());
    let (code, _) = only_error(sim.take(bob));
    assert_eq!(code, ErrorCode::UnknownNick);
    let away = ClientFrame::msg_in("rust", vec![], "in rust", Some("b-2".into()));
    sim.send(bob, away.clone());
    let (code, _) = only_error(sim.take(bob));
    assert_eq!(code, ErrorCode::NotInRoom);
    sim.send(
        bob,
        ClientFrame::msg_in("lobby", vec![], "y-second", Some("b-3".into())),
    );
    sim.take(bob);

    let dave = sim.connect();
    sim.join(dave, "dave");
    sim.send(bob, ClientFrame::enter("rust", None));
    sim.take(dave);
    sim.take(bob);
    // Resent, as after a reconnect whose answers were lost: refused again.
    sim.send(bob, first);
    let frames = sim.take(bob);
    match &frames[..] {
        [ServerFrame::Error {
            code, id, message, ..
        }] => {
            assert_eq!(
                (*code, id.as_deref()),
                (ErrorCode::UnknownNick, Some("b-1"))
            );
            assert!(message.contains("refused"), "{message}");
        }
        other => panic!("expected one error, got {other:?}"),
    }
    sim.send(bob, away);
    let (code, _) = only_error(sim.take(bob));
    assert_eq!(code, ErrorCode::NotInRoom);
    assert!(sim.take(dave).is_empty());
    // Sent again as a new message (a new id), it goes.
    sim.send(
        bob,
        ClientFrame::msg_in("lobby", vec!["dave".into()], "x-first", Some("b-4".into())),
    );
    assert!(sim
        .take(dave)
        .iter()
        .any(|f| matches!(f, ServerFrame::Msg { text, .. } if text == "x-first")),);
}

/// The `welcome` of a resume says the fatal error the session's previous
/// connection was closed with (`closed_for`), by the shell
/// (`handle_disconnect_for`: the `slow_consumer` whose error frame could
/// not leave a full socket) or by the core (a `kick`, a `timeout`): once,
/// and only on a resume. A connection that ended by itself, or that a
/// takeover closed (`resumed_elsewhere`), says nothing.
#[test]
fn a_resume_says_why_the_server_closed_the_connection_before() {
    let mut cfg = ServerConfig::default();
    cfg.resume_window_ms = 60_000;
    let mut sim = sim_with(cfg);
    let closed_for = |frames: Vec<ServerFrame>| match frames.first() {
        Some(ServerFrame::Welcome {
            resumed: Some(true),
            closed_for,
            ..
        }) => *closed_for,
        other => panic!("expected the welcome of a resume, got {other:?}"),
    };
    let resume = |sim: &mut Sim, token: Option<String>| {
        let i = sim.connect();
        sim.send(i, ClientFrame::join_v2("alice", vec![], token));
        i
    };
    let a = sim.connect();
    sim.send(a, ClientFrame::join_v2("alice", vec![], None));
    let token = sim.clients[a].session.clone();
    // The shell closed it as a slow consumer.
    sim.clients[a].open = false;
    let id = sim.clients[a].id;
    sim.server
        .handle_disconnect_for(sim.clock(), id, ErrorCode::SlowConsumer);
    sim.flush();
    let a2 = resume(&mut sim, token.clone());
    assert_eq!(closed_for(sim.take(a2)), Some(ErrorCode::SlowConsumer));
    // Said once: the next connection ended by itself.
    sim.disconnect(a2);
    let a3 = resume(&mut sim, token.clone());
    assert_eq!(closed_for(sim.take(a3)), None);
    // The core's own closes: a kick, a pong not answered in time.
    sim.kick(a3, Kick::RateLimited);
    let a4 = resume(&mut sim, token.clone());
    assert_eq!(closed_for(sim.take(a4)), Some(ErrorCode::RateLimited));
    // Its idle ping (30 s) and the pong's time (10 s), within the window.
    sim.advance(45_000);
    assert_eq!(sim.clients[a4].closed_with, Some(ErrorCode::Timeout));
    let a5 = resume(&mut sim, token.clone());
    assert_eq!(closed_for(sim.take(a5)), Some(ErrorCode::Timeout));
    // A takeover: the new connection is not told of its own taking over.
    let a6 = resume(&mut sim, token.clone());
    assert_eq!(
        sim.clients[a5].closed_with,
        Some(ErrorCode::ResumedElsewhere)
    );
    assert_eq!(closed_for(sim.take(a6)), None);
    // A fresh session never says it, nor does a v1 join.
    sim.disconnect(a6);
    let b = sim.connect();
    sim.join(b, "bob");
    sim.server
        .handle_disconnect_for(sim.clock(), sim.clients[b].id, ErrorCode::SlowConsumer);
    sim.clients[b].open = false;
    sim.flush();
    let b2 = sim.connect();
    sim.send(b2, ClientFrame::join_v2("bob", vec![], None));
    assert!(matches!(
        sim.take(b2).first(),
        Some(ServerFrame::Welcome {
            resumed: Some(false),
            closed_for: None,
            ..
        })
    ));
}
