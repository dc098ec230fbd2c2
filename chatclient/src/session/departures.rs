//! Leavings held back a moment (see `Mode::hold_departures`): someone
//! whose connection drops and who comes straight back (a page reloaded,
//! a server restarted, Wi-Fi that blinked) is neither said to have left
//! nor to have come back. Who stays away is said after
//! [`DEPARTURE_HOLD_MS`], in the words it would have had at once.

use chatproto::nick_key;

use super::Session;
use crate::render::Line;

/// How long a leaving waits to be said, in milliseconds: longer than a
/// client's first reconnect (0.4 s, then 0.8 s...) after a server's
/// restart, or a page's reload, takes.
pub const DEPARTURE_HOLD_MS: u64 = 5_000;

/// One leaving not said yet.
#[derive(Debug)]
pub(super) struct Departure {
    /// The room, as the core names it.
    room: String,
    /// Who, as the server spelled it.
    nick: String,
    /// When it is said.
    until: u64,
    /// Part of a reconnect's "while you were away" (who was there at the
    /// loss and is not now), rather than a leaving seen live.
    while_away: bool,
}

impl Session {
    /// `nick` left `room`: said now, or held back.
    pub(super) fn departed(&mut self, room: &str, nick: String) {
        if !self.mode.hold_departures {
            let room = self.other(room);
            return self.print(Line::Presence {
                room,
                nick,
                online: false,
            });
        }
        self.hold(room, nick, false);
    }

    /// Who was in `room` at the loss and is not now: said with the
    /// reconnect's summary, or held back like a leaving.
    pub(super) fn away_departed(&mut self, room: &str, left: Vec<String>) -> Vec<String> {
        if !self.mode.hold_departures {
            return left;
        }
        for nick in left {
            self.hold(room, nick, true);
        }
        Vec::new()
    }

    fn hold(&mut self, room: &str, nick: String, while_away: bool) {
        self.departures.push_back(Departure {
            room: room.to_owned(),
            nick,
            until: self.now.saturating_add(DEPARTURE_HOLD_MS),
            while_away,
        });
    }

    /// `nick` is in `room` again: whether a leaving of theirs there was
    /// held (and is now forgotten, as is this coming back).
    pub(super) fn came_back(&mut self, room: &str, nick: &str) -> bool {
        let key = nick_key(nick);
        let before = self.departures.len();
        self.departures
            .retain(|d| d.room != room || nick_key(&d.nick) != key);
        self.departures.len() != before
    }

    /// When the oldest leaving held is to be said.
    pub(super) fn next_departure(&self) -> Option<u64> {
        self.departures.front().map(|d| d.until)
    }

    /// Say the leavings whose time has come (all of them with `all`: the
    /// connection is lost, and what was seen before it is said before
    /// what comes after). Those of a reconnect's summary go as one line a
    /// room, as the summary would have said them; a room left since is
    /// skipped.
    pub(super) fn say_departures(&mut self, all: bool) {
        while self
            .departures
            .front()
            .is_some_and(|d| all || d.until <= self.now)
        {
            let Some(first) = self.departures.pop_front() else {
                return;
            };
            let mut nicks = vec![first.nick];
            // The rest of the same summary (held together, so together).
            let same = |d: &Departure| {
                first.while_away && d.while_away && d.room == first.room && d.until == first.until
            };
            while self.departures.front().is_some_and(same) {
                nicks.extend(self.departures.pop_front().map(|d| d.nick));
            }
            if !self.client.rooms().any(|r| r == first.room) {
                continue;
            }
            let room = self.other(&first.room);
            let line = if first.while_away {
                Line::WhileAway {
                    room,
                    joined: Vec::new(),
                    left: nicks,
                }
            } else {
                Line::Presence {
                    room,
                    nick: nicks.swap_remove(0),
                    online: false,
                }
            };
            self.print(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DEPARTURE_HOLD_MS;
    use crate::session::testkit::*;
    use crate::session::{Mode, Session};
    use chatproto::ServerFrame;

    /// alice, watched by a person, in the lobby with bob and carol.
    fn watched() -> Session {
        let mut s = welcomed(&["lobby"]);
        s.set_mode(Mode {
            hold_departures: true,
            ..Mode::default()
        });
        frame(
            &mut s,
            entered("lobby", 0, &["alice", "bob", "carol"], false),
        );
        frame(&mut s, presence("lobby", 1, "alice", true));
        drain(&mut s);
        s
    }

    fn at(s: &mut Session, now: u64, f: ServerFrame) -> Vec<String> {
        s.handle_frame(now, f);
        drain(s).lines
    }

    /// bob's page reloads: he leaves and is back a second later. Nothing
    /// is said of it; the list of who is online followed him all along.
    #[test]
    fn a_leaving_and_a_coming_back_within_the_hold_say_nothing() {
        let mut s = watched();
        assert!(at(&mut s, 1_000, presence("lobby", 2, "bob", false)).is_empty());
        assert_eq!(s.roster("lobby"), ["alice", "carol"]);
        assert_eq!(s.poll_timeout(), Some(1_000 + DEPARTURE_HOLD_MS));
        assert!(at(&mut s, 2_000, presence("lobby", 3, "Bob", true)).is_empty());
        assert_eq!(s.roster("lobby"), ["alice", "Bob", "carol"]);
        s.handle_timeout(1_000 + DEPARTURE_HOLD_MS);
        assert!(drain(&mut s).lines.is_empty());
        // Past the hold, coming back is said as ever.
        at(&mut s, 10_000, presence("lobby", 4, "bob", false));
        s.handle_timeout(10_000 + DEPARTURE_HOLD_MS);
        assert_eq!(drain(&mut s).lines, ["* bob left"]);
        assert_eq!(
            at(&mut s, 20_000, presence("lobby", 5, "bob", true)),
            ["* bob is online"]
        );
    }

    /// Who stays away is said once the hold is over (or when a frame
    /// comes after it, whichever is first), before what came later.
    #[test]
    fn a_leaving_is_said_when_the_hold_is_over() {
        let mut s = watched();
        assert!(at(&mut s, 1_000, presence("lobby", 2, "bob", false)).is_empty());
        s.handle_timeout(1_000 + DEPARTURE_HOLD_MS - 1);
        assert!(drain(&mut s).lines.is_empty());
        assert!(at(&mut s, 1_500, msg("lobby", 3, "carol", &[], "hi")) == ["carol: hi"]);
        s.handle_timeout(1_000 + DEPARTURE_HOLD_MS);
        assert_eq!(drain(&mut s).lines, ["* bob left"]);
        // Only the core's ping is waited for now.
        assert!(s.poll_timeout() > Some(1_000 + DEPARTURE_HOLD_MS));

        at(&mut s, 20_000, presence("lobby", 4, "carol", false));
        assert_eq!(
            at(&mut s, 30_000, msg("lobby", 5, "alice", &[], "anyone?")),
            ["* carol left", "alice: anyone?"]
        );
    }

    /// A connection lost says the leavings seen before it at once.
    #[test]
    fn a_lost_connection_says_what_was_held() {
        let mut s = watched();
        at(&mut s, 1_000, presence("lobby", 2, "bob", false));
        s.handle_disconnected();
        assert_eq!(drain(&mut s).lines, ["* bob left"]);
    }

    /// The server restarted: alice is back first, bob and carol a moment
    /// later. Her reconnect's summary does not say they left, nor their
    /// coming back that they are online; dave, who does not come back,
    /// is said to have left once the hold is over.
    #[test]
    fn a_restart_does_not_read_as_everyone_leaving() {
        let mut s = watched();
        at(&mut s, 500, presence("lobby", 2, "dave", true));
        s.handle_disconnected();
        s.handle_connected(2_000);
        at(&mut s, 2_000, welcome("alice", true));
        assert_eq!(
            [
                at(&mut s, 2_100, entered("lobby", 2, &["alice"], true)),
                at(&mut s, 2_100, presence("lobby", 3, "alice", true)),
            ]
            .concat(),
            ["* reconnected; nothing missed"]
        );
        assert!(at(&mut s, 2_600, presence("lobby", 4, "bob", true)).is_empty());
        assert!(at(&mut s, 3_000, presence("lobby", 5, "carol", true)).is_empty());
        s.handle_timeout(2_100 + DEPARTURE_HOLD_MS);
        assert_eq!(drain(&mut s).lines, ["* while you were away: dave left"]);
    }

    /// Lines for scripts come as things happen.
    #[test]
    fn without_a_person_watching_a_leaving_is_said_at_once() {
        let mut s = joined(&["lobby"]);
        assert_eq!(
            frame(&mut s, presence("lobby", 2, "bob", false)).lines,
            ["* bob left"]
        );
        assert!(
            s.poll_timeout() > Some(DEPARTURE_HOLD_MS),
            "only the core's ping"
        );
    }
}
