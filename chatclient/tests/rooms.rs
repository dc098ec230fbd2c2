//! Rooms end to end: `/join`, `/part`, `/who`, `/rooms`, `/history`, the
//! `[#room]` prefix and the rooms to start in, with the real binaries on
//! 127.0.0.1:0.
//!
//! Nothing here sleeps to synchronise: every wait reads the lines it expects
//! against a deadline, and fails with what it saw.

mod common;

use common::{Client, Server, WAIT};

/// Two clients `/join rust` and talk there; a line from the room that is
/// not current carries its name; `/who`, `/rooms` and `/part`.
#[test]
fn two_clients_join_a_room_talk_and_part() {
    let server = Server::start(&[]);
    let mut alice = Client::start("alice", &server.addr);
    alice.expect("* alice is online");
    let mut bob = Client::start("bob", &server.addr);
    bob.expect("* bob is online");
    alice.expect("* bob is online");

    alice.say("/join rust");
    alice.expect("* entered #rust; 1 online: alice");
    alice.expect("* alice is online");
    // Commands ignore case, and `#` is optional.
    bob.say("/JOIN #Rust");
    bob.expect("* entered #rust; 2 online: alice, bob");
    alice.expect("* bob is online");

    alice.say("hello rust");
    alice.expect("alice: hello rust");
    bob.expect("alice: hello rust");
    bob.say("@alice just you");
    alice.expect("bob -> alice: just you");

    // bob goes back to the lobby; rust's lines now carry its name there.
    bob.say("/join lobby");
    bob.expect("* #lobby is now the current room");
    alice.say("still in rust");
    bob.expect("[#rust] alice: still in rust");
    bob.say("back in the lobby");
    alice.expect("[#lobby] bob: back in the lobby");
    bob.expect("bob: back in the lobby");

    alice.say("/who");
    alice.expect("* online (2): alice, bob");
    alice.say("/rooms");
    alice.expect("* rooms (2): #lobby (2), #rust (2)");

    bob.say("/part rust");
    bob.expect("* you left #rust");
    alice.expect("* bob left");
    alice.say("/who");
    alice.expect("* online (1): alice");
    alice.say("after bob left");
    alice.expect("alice: after bob left");
    // bob is still in the lobby with alice, and sees nothing of rust.
    bob.say("/who");
    bob.expect("* online (2): alice, bob");
    alice.say("/part");
    alice.expect("* you left #rust");
    alice.expect("* #lobby is now the current room");
    bob.say("bye");
    alice.expect("bob: bye");

    for c in [alice, bob] {
        let mut c = c;
        c.close_stdin();
        let name = c.name.clone();
        let (status, stderr, seen) = c.wait_exit(WAIT);
        assert!(status.success(), "{name}: {status} {stderr}");
        if name == "bob" {
            assert!(
                !seen.iter().any(|l| l.contains("after bob left")),
                "bob saw rust after leaving it: {seen:#?}"
            );
        }
    }
}

/// Entering a room shows its latest messages as history (as many as the
/// server replays); `/history N` pages back from the oldest one shown.
#[test]
fn history_on_entering_and_on_request() {
    let server = Server::start(&["--replay-limit", "2"]);
    let mut alice = Client::start_opts("alice", &server.addr, &["--room", "rust"], &[]);
    alice.expect("* entered #rust; 1 online: alice");
    let sent: Vec<String> = (1..=5).map(|i| format!("m{i}")).collect();
    alice.say_all(&sent);
    alice.expect("alice: m5");

    // The rooms to start in come from the environment too.
    let mut carol = Client::start_opts(
        "carol",
        &server.addr,
        &[],
        &[("CHATCLIENT_ROOMS", "rust,lobby")],
    );
    // Both rooms are entered (in either order); rust, named first, is current.
    carol.expect_all(&[
        "* entered #rust; 2 online: alice, carol".into(),
        "[history] alice: m4".into(),
        "[history] alice: m5".into(),
        "* carol is online".into(),
        "* entered #lobby; 1 online: carol".into(),
        "[#lobby] * carol is online".into(),
    ]);

    carol.say("/history 2");
    carol.expect("[history] alice: m2");
    carol.expect("[history] alice: m3");
    carol.expect("* 2 older messages of #rust; /history shows more");
    carol.say("/history");
    carol.expect("[history] alice: m1");
    carol.expect("* 1 older message of #rust (3 fetched so far); that is all");
    carol.say("/history");
    carol.expect("* no older messages in #rust");

    // History is marked, and shown only where it was asked for.
    let marked: Vec<&String> = carol
        .seen
        .iter()
        .filter(|l| l.starts_with("[history]"))
        .collect();
    let want = ["m4", "m5", "m2", "m3", "m1"].map(|m| format!("[history] alice: {m}"));
    assert_eq!(marked, want.iter().collect::<Vec<_>>());
    assert!(
        !alice.seen.iter().any(|l| l.contains("[history]")),
        "{:#?}",
        alice.seen
    );
}

/// `/help` lists every command.
#[test]
fn help_lists_every_command() {
    let server = Server::start(&[]);
    let mut alice = Client::start("alice", &server.addr);
    alice.expect("* alice is online");
    alice.say("/help");
    for cmd in [
        "/join ROOM",
        "/part [ROOM]",
        "/rooms",
        "/who",
        "/history [N]",
        "/help",
        "/quit",
    ] {
        alice.expect_line(&format!("about {cmd}"), |l| {
            l.starts_with(&format!("* {cmd} "))
        });
    }
}
