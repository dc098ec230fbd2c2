//! Tests of the server core's own bookkeeping: the order of use against
//! a look at every room, one timer per detached session, and a cluster
//! session's enterings and leavings.

use super::*;
use crate::{ClientFrame, Output};

/// The token of the `welcome` `client` got, reading everything out.
fn welcome_token(server: &mut Server, client: ClientId) -> String {
    let mut token = None;
    while let Some(out) = server.poll() {
        if let Output::Send {
            to,
            frame: ServerFrame::Welcome { session, .. },
            ..
        } = out
        {
            if to == client {
                token = session;
            }
        }
    }
    token.expect("welcomed")
}

fn session_timers(server: &Server) -> usize {
    let all = server.timers.iter();
    all.filter(|t| matches!(t, Timer::Session(_))).count()
}

/// Many rooms, a small history budget and a small cap of rooms, with
/// clients entering, parting, talking and leaving at random: every
/// room the order of use gives for shedding history and for the cap
/// is the one a look at every room finds (`debug_assert`s in
/// `shed_history` and `forget_an_empty_room`, which this debug build
/// runs at each), and the budget holds.
#[test]
fn the_order_of_use_picks_the_rooms_a_full_look_would() {
    let config = ServerConfig {
        max_rooms: 40,
        max_rooms_per_client: 8,
        history_bytes_total: 6_000,
        history_per_room: 6,
        ..ServerConfig::default()
    };
    let budget = config.history_bytes_total;
    let mut server = Server::new(config, [3; 32]);
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut now = Now::new(0, 1_732_400_000_000);
    let mut clients: Vec<Option<ClientId>> = vec![None; 12];
    let (mut fullest, mut most_rooms) = (0, 0);
    for step in 0..20_000 {
        now = Now::new(now.mono + 1, now.wall + 1);
        let slot = next(clients.len() as u64) as usize;
        let frame = match clients[slot] {
            None => {
                let c = server.handle_connect(now);
                clients[slot] = Some(c);
                (c, ClientFrame::join_v2(format!("n{slot}"), vec![], None))
            }
            Some(c) => {
                let room = format!("r{}", next(60));
                match next(10) {
                    0 => {
                        server.handle_disconnect(now, c);
                        clients[slot] = None;
                        continue;
                    }
                    1 | 2 => (c, ClientFrame::enter(room, None)),
                    3 => (c, ClientFrame::Part { room }),
                    _ => {
                        let text = "x".repeat(next(300) as usize);
                        (c, ClientFrame::msg_in(room, vec![], text, None))
                    }
                }
            }
        };
        server.handle_frame(now, frame.0, frame.1);
        while server.poll().is_some() {}
        assert!(
            server.history_bytes <= budget,
            "step {step}: {}",
            server.history_bytes
        );
        fullest = fullest.max(server.history_bytes);
        most_rooms = most_rooms.max(server.rooms.len());
    }
    // Both forgettings were needed (or this tested nothing).
    assert!(fullest > budget - 600, "{fullest}");
    assert_eq!(most_rooms, 40);
}

/// A client reconnecting in a loop within its resume window: one
/// timer for its session, not one per lost connection (which a window
/// of hours would have let grow without bound), and the session still
/// expires at the end of the window after its last connection.
#[test]
fn a_session_detached_again_and_again_keeps_one_timer() {
    let window = 60_000;
    let config = ServerConfig {
        resume_window_ms: window,
        ..ServerConfig::default()
    };
    let mut server = Server::new(config, [7; 32]);
    let mut now = Now::new(0, 1_732_400_000_000);
    let first = server.handle_connect(now);
    server.handle_frame(now, first, ClientFrame::join_v2("alice", vec![], None));
    let mut token = welcome_token(&mut server, first);
    server.handle_disconnect(now, first);
    for _ in 0..1_000 {
        now = Now::new(now.mono + 10, now.wall + 10);
        let again = server.handle_connect(now);
        let join = ClientFrame::join_v2("alice", vec![], Some(token.clone()));
        server.handle_frame(now, again, join);
        token = welcome_token(&mut server, again);
        server.handle_disconnect(now, again);
        server.handle_timeout(now);
    }
    assert_eq!(session_timers(&server), 1);
    let last_end = now.mono;
    // Past the first connection's window, not the last one's: alive.
    server.handle_timeout(Now::new(window + 1, now.wall));
    assert_eq!(session_timers(&server), 1);
    assert_eq!(server.sessions.len(), 1);
    // Past the last one's: gone, and so is its timer.
    server.handle_timeout(Now::new(last_end + window, now.wall));
    assert_eq!((session_timers(&server), server.sessions.len()), (0, 0));
}

/// Cluster mode: a session parts and enters a room again and again,
/// and the log brings back its enterings but steps over every leaving
/// (as it does an entry it cannot read; a leaving another server's copy
/// of the same departure was kept for is never brought back either).
/// Its notes of leavings on their way stay bounded; the newest is
/// still noted, and taken when its leaving is applied.
/// In a cluster a session's second entering or leaving of a room is
/// stamped a millisecond after its first: at the wall clock's end it
/// stays there (a debug build panicked on the overflow).
#[test]
fn enterings_and_leavings_stamped_at_the_clocks_end_do_not_overflow() {
    let config = ServerConfig {
        cluster: true,
        ..ServerConfig::default()
    };
    let mut server = Server::new(config, [6; 32]);
    let now = Now::new(0, u64::MAX);
    let alice = server.handle_connect(now);
    let join = ClientFrame::join_v2("alice", vec!["lobby".into()], None);
    server.handle_frame(now, alice, join);
    let mut proposed = Vec::new();
    for frame in [
        ClientFrame::enter("rust", None),
        ClientFrame::part("rust"),
        ClientFrame::enter("rust", None),
        ClientFrame::part("rust"),
    ] {
        server.handle_frame(now, alice, frame);
        while let Some(out) = server.poll() {
            if let Output::Propose { events } = out {
                proposed.extend(events.iter().map(|e| (e.room.to_string(), e.ts)));
            }
        }
    }
    assert!(
        proposed
            .iter()
            .any(|(room, ts)| room == "rust" && *ts == u64::MAX),
        "{proposed:?}"
    );
}

#[test]
fn a_sessions_leavings_the_log_never_brings_back_are_not_kept_for_ever() {
    let config = ServerConfig {
        cluster: true,
        ..ServerConfig::default()
    };
    let mut server = Server::new(config, [5; 32]);
    let mut seq = 0;
    let mut now = Now::new(0, 1_700_000_000_000);
    // What the server proposed, each numbered as the log would; its
    // leavings stepped over unless `apply_leavings`.
    let mut settle = |server: &mut Server, apply_leavings: bool| {
        let mut proposed = Vec::new();
        while let Some(out) = server.poll() {
            if let Output::Propose { events } = out {
                proposed.extend(events);
            }
        }
        for e in proposed {
            server.open_room(&e.room, "epoch", 1);
            seq += 1;
            let leaving = matches!(
                e.body,
                event::EventBody::Presence {
                    status: crate::PresenceStatus::Offline,
                    ..
                }
            );
            if leaving && !apply_leavings {
                server.skip_logged(&e.room, seq).unwrap();
            } else {
                let mut e = Event::clone(&e);
                e.seq = seq;
                server.handle_logged(e).unwrap();
            }
        }
        while server.poll().is_some() {}
    };
    let alice = server.handle_connect(now);
    let join = ClientFrame::join_v2("alice", vec!["lobby".into()], None);
    server.handle_frame(now, alice, join);
    settle(&mut server, false);
    let sid = server.session_id_of(alice).unwrap();
    let rounds = session::MAX_LEAVING_NOTES * 3;
    for _ in 0..rounds {
        now.wall += 1;
        server.handle_frame(now, alice, ClientFrame::part("lobby"));
        server.handle_frame(now, alice, ClientFrame::enter("lobby", None));
        settle(&mut server, false);
    }
    let notes = server.sessions[&sid].leaving.len();
    assert_eq!(notes, session::MAX_LEAVING_NOTES, "after {rounds} parts");

    // The newest part's note is there, and its leaving, applied, takes
    // it and alice's connection out of the room.
    now.wall += 1;
    server.handle_frame(now, alice, ClientFrame::part("lobby"));
    let last = now.wall;
    let s = &server.sessions[&sid];
    assert_eq!(s.leaving.back().map(|l| l.ts), Some(last));
    settle(&mut server, true);
    let s = &server.sessions[&sid];
    assert!(s.leaving.iter().all(|l| l.ts != last), "{:?}", s.leaving);
    assert_eq!(server.rooms["lobby"].conn_of(sid), None);
}
