//! Summing up a reconnect: the rooms whose replay is still arriving, and
//! the one line said once every room is back, then who came and went in
//! each room while the connection was lost.

use std::collections::{BTreeMap, BTreeSet};

use chatproto::nick_key;

use super::lines::plural;
use super::Session;
use crate::render::Line;

/// In a room of more than this many, the server sends nobody presence
/// but the one who came or went (PROTOCOL.md 5.2, "Large rooms"): the
/// online list kept there goes stale unseen, and who came and went while
/// away cannot be told from it. A list of exactly this many may be stale
/// too (the arrival past the cap reached nobody), and so may any list
/// kept since, however small again (the leaving back to the cap reached
/// nobody either): a room that reached it is crowded until entered
/// afresh below it (`Session::crowded`), as on the page. The server says
/// its own cap in `welcome.limits`; this is the default, for a server
/// that does not.
const PRESENCE_FANOUT_MAX: usize = 1_000;

/// What was known of a room when the connection was lost (see
/// `Session::away`).
#[derive(Debug)]
pub(super) struct Away {
    /// Who was there, and who came or went in view since.
    roster: Vec<String>,
    /// The room reached the presence fan-out cap on a connection this
    /// list was kept on: it may be behind, so it tells nothing.
    crowded: bool,
}

/// A reconnect being summed up: the rooms whose replay has not ended yet,
/// and what the replays held so far.
#[derive(Debug, Default)]
pub(super) struct Resume {
    pub(super) waiting: BTreeSet<String>,
    /// Messages the replays brought that were said while away, by room.
    pub(super) missed: BTreeMap<String, usize>,
    /// Some room's history has a gap (one begun anew is not: its earlier
    /// messages are gone, which is said when it is entered, and
    /// `/history` cannot fetch them).
    pub(super) gap: bool,
    /// The rooms whose history began anew: what was said there between
    /// the last message seen and the server's new start is gone, so the
    /// summary does not say nothing was missed.
    pub(super) began_anew: BTreeSet<String>,
    /// The rooms told from who was there when the connection was lost,
    /// and who came and went in each (`None`: nobody), said after the
    /// summary; only then is that list forgotten (see `Session::away`).
    pub(super) came_and_went: BTreeMap<String, Option<RosterChange>>,
}

/// Who came into a room and who left it between two of its online lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RosterChange {
    joined: Vec<String>,
    left: Vec<String>,
}

impl RosterChange {
    /// Who is in `after` and not in `before`, and the other way round,
    /// nicknames compared as chatproto folds them (`Bob` is `bob`), each
    /// list in that order; `me` is never one of them. `None`: nobody.
    pub(super) fn between(me: &str, before: &[String], after: &[String]) -> Option<Self> {
        let me = nick_key(me);
        let keyed = |list: &[String]| -> BTreeMap<String, String> {
            list.iter()
                .map(|n| (nick_key(n), n.clone()))
                .filter(|(k, _)| *k != me)
                .collect()
        };
        let (before, after) = (keyed(before), keyed(after));
        let only = |a: &BTreeMap<String, String>, b: &BTreeMap<String, String>| -> Vec<String> {
            a.iter()
                .filter(|(k, _)| !b.contains_key(*k))
                .map(|(_, n)| n.clone())
                .collect()
        };
        let change = RosterChange {
            // Spelled as the server spells them now, or did then.
            joined: only(&after, &before),
            left: only(&before, &after),
        };
        (!change.joined.is_empty() || !change.left.is_empty()).then_some(change)
    }
}

impl Session {
    /// `room` has finished its replay after a reconnect (or is gone).
    pub(super) fn resume_room_done(&mut self, room: &str) {
        if let Some(r) = &mut self.resume {
            r.waiting.remove(room);
        }
        self.finish_resume_if_done();
    }

    /// Every room is back: say in one line what the reconnect brought.
    pub(super) fn finish_resume_if_done(&mut self) {
        if !self.resume.as_ref().is_some_and(|r| r.waiting.is_empty()) {
            return;
        }
        let Some(r) = self.resume.take() else {
            return;
        };
        let total: usize = r.missed.values().sum();
        let here = self.current.as_deref();
        let text = if r.gap {
            "reconnected; history has a gap".to_owned()
        } else if total == 0 && !r.began_anew.is_empty() {
            // What was said there before the server began anew, after
            // the last message shown, is gone unseen (the line above
            // says so): none missed cannot be told.
            "reconnected".to_owned()
        } else if total == 0 {
            "reconnected; nothing missed".to_owned()
        } else if r.missed.keys().all(|room| Some(room.as_str()) == here) {
            format!("reconnected; {} above", plural(total, "missed message"))
        } else if let (1, Some(room)) = (r.missed.len(), r.missed.keys().next()) {
            format!(
                "reconnected; {} in #{room}",
                plural(total, "missed message")
            )
        } else {
            // Said where: a room's count alone would send the reader
            // looking above in a room where nothing came. The current
            // room first, then the others by name.
            let mut rooms: Vec<(&String, &usize)> = r.missed.iter().collect();
            rooms.sort_by_key(|(room, _)| Some(room.as_str()) != here);
            let each: Vec<String> = rooms
                .iter()
                .map(|(room, n)| format!("{n} in #{room}"))
                .collect();
            format!(
                "reconnected; {}: {}",
                plural(total, "missed message"),
                each.join(", ")
            )
        };
        self.info(text);
        for (room, change) in r.came_and_went {
            // Said: the next loss starts from who is there then.
            self.away.remove(&room);
            if let Some(change) = change {
                self.print_came_and_went(&room, change);
            }
        }
    }

    /// The connection is going: who is in each room entered on it, to
    /// tell who came and went once the room is entered again. A room not
    /// entered on it (a try that failed before) keeps what was known, and
    /// so does a room whose line was not said yet (this connection went
    /// before the summary): its list is the one of the first loss, and
    /// the one the server has now is only part of the story.
    ///
    /// A room crowded on it (see `Session::crowded`) is crowded in what
    /// is kept too, the list of the first loss as well: presence unheard
    /// on this connection left either behind.
    pub(super) fn note_who_was_there(&mut self) {
        for room in std::mem::take(&mut self.entered_here) {
            if !self.client.rooms().any(|r| r == room) {
                continue;
            }
            let crowded = self.crowded.contains(&room);
            let client = &self.client;
            let kept = self.away.entry(room).or_insert_with_key(|room| Away {
                roster: client.roster(room).into_iter().map(str::to_owned).collect(),
                crowded: false,
            });
            kept.crowded |= crowded;
        }
    }

    /// `room`'s online list has changed, or come whole at our entering
    /// (`afresh`, when it stops being crowded unless it still is at the
    /// cap): note whether it reached the cap.
    pub(super) fn crowding(&mut self, room: &str, afresh: bool) {
        if afresh {
            self.crowded.remove(room);
        }
        if self.client.roster_len(room) >= self.presence_cap() {
            self.crowded.insert(room.to_owned());
        }
    }

    /// The server's presence fan-out cap, as its `welcome` said it.
    fn presence_cap(&self) -> usize {
        self.client
            .limits()
            .and_then(|l| l.presence_fanout_max)
            .map_or(PRESENCE_FANOUT_MAX, |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            })
    }

    /// `room` is entered again and its online list is whole: who came
    /// and went since the connection was lost, said after the summary (or
    /// now, with no reconnect being summed up).
    pub(super) fn tell_came_and_went(&mut self, room: &str) {
        let Some(before) = self.away.get(room) else {
            return;
        };
        let change = if before.crowded || self.crowded.contains(room) {
            // Crowded before the loss or now: nothing to say there (and
            // the list is forgotten all the same).
            None
        } else {
            let online: Vec<String> = self
                .client
                .roster(room)
                .into_iter()
                .map(str::to_owned)
                .collect();
            RosterChange::between(self.client.nick(), &before.roster, &online)
        };
        match &mut self.resume {
            Some(r) => {
                r.came_and_went.insert(room.to_owned(), change);
            }
            None => {
                self.away.remove(room);
                if let Some(change) = change {
                    self.print_came_and_went(room, change);
                }
            }
        }
    }

    /// `nick` came or went in `room` in view: if what was there at the
    /// loss is still kept (its line not said yet), it counts as known, so
    /// that a reconnect lost again does not say it a second time.
    pub(super) fn seen_come_or_go(&mut self, room: &str, nick: &str, online: bool) {
        let Some(before) = self.away.get_mut(room) else {
            return;
        };
        let key = nick_key(nick);
        before.roster.retain(|n| nick_key(n) != key);
        if online {
            before.roster.push(nick.to_owned());
        }
    }

    /// Say in `room` who came and went there while away.
    pub(super) fn print_came_and_went(&mut self, room: &str, change: RosterChange) {
        // Who left may be on their way back too (a server restarted):
        // held back like any leaving.
        let left = self.away_departed(room, change.left);
        if change.joined.is_empty() && left.is_empty() {
            return;
        }
        let room = self.other(room);
        self.print(Line::WhileAway {
            room,
            joined: change.joined,
            left,
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::session::testkit::*;
    use crate::session::{Action, Session};
    use chatproto::{ClientFrame, ErrorCode, ServerFrame};

    /// The connection drops with one of alice's messages stamped but not
    /// echoed, bob talks meanwhile, and alice types one more line and ends
    /// her input while offline. Back, she sees what she missed once, a
    /// one-line summary, her lines once, and only then leaves.
    #[test]
    fn a_reconnect_is_one_line_and_shows_nothing_twice() {
        let mut s = joined(&["lobby"]);
        let id1 = the_id(&line(&mut s, "a1").sent);
        s.handle_disconnected();
        assert!(drain(&mut s).lines.is_empty());
        let out = line(&mut s, "a2");
        assert!(out.sent.is_empty(), "nothing goes out while offline");
        s.handle_input_end();
        assert!(drain(&mut s).other.is_empty(), "two messages unanswered");
        assert_eq!(s.unacknowledged(), 2);

        s.handle_connected(10);
        let out = drain(&mut s);
        assert!(matches!(
            &out.sent[..],
            [ClientFrame::Join { resume: Some(t), .. }] if t == "token"
        ));
        let out = frame(&mut s, welcome("alice", true));
        assert!(out.lines.is_empty(), "{:?}", out.lines);
        assert_eq!(out.other, [Action::Joined]);
        assert_eq!(
            out.sent.len(),
            3,
            "enter, then both messages: {:?}",
            out.sent
        );
        assert_eq!(
            out.sent[0],
            ClientFrame::enter("lobby", Some((1, "e1".into())))
        );
        let id2 = match &out.sent[2] {
            ClientFrame::Msg { id: Some(id), .. } => id.clone(),
            other => panic!("{other:?}"),
        };
        let mut shown = Vec::new();
        for f in [
            entered("lobby", 3, &["bob", "alice"], true),
            replayed(msg("lobby", 2, "bob", &[], "b1"), None),
            replayed(echo("lobby", 3, "alice", "a1", &id1), Some(&id1)),
            presence("lobby", 4, "alice", true),
            ServerFrame::error_v2(
                ErrorCode::Duplicate,
                "already sent",
                Some(id1.clone()),
                Some("lobby".into()),
                Some(3),
            ),
            // A server repeating itself is not shown twice.
            msg("lobby", 2, "bob", &[], "b1"),
        ] {
            let out = frame(&mut s, f);
            assert!(out.other.is_empty(), "{:?}", out.other);
            shown.extend(out.lines);
        }
        assert_eq!(
            shown,
            [
                "bob: b1",
                "alice: a1",
                "* reconnected; 2 missed messages above",
                // alice was alone when the connection went.
                "* while you were away: bob joined",
            ]
        );
        let out = frame(&mut s, echo("lobby", 5, "alice", "a2", &id2));
        assert_eq!(out.lines, ["alice: a2"]);
        assert_eq!(out.other, [Action::Exit], "every line answered: leave");
    }

    #[test]
    fn a_gap_is_said_in_the_summary() {
        let mut s = joined(&["lobby", "rust"]);
        back(&mut s, 10);
        let shown = lines_of(
            &mut s,
            [
                entered("lobby", 1, &["alice"], true),
                presence("lobby", 2, "alice", true),
                ServerFrame::entered("rust", "e1", 900, 300, vec!["alice".into()], false),
                replayed(msg("rust", 900, "bob", &[], "late"), None),
                presence("rust", 901, "alice", true),
            ],
        );
        assert_eq!(
            shown,
            [
                "* messages of #rust sent while you were away are missing here; /history fetches them",
                "[#rust] bob: late",
                "* reconnected; history has a gap"
            ]
        );
    }

    /// A resume whose welcome says the server had closed the connection
    /// (its error never arrived: the socket of a client too slow to read
    /// takes nothing more) says why, before the rooms' lines; one whose
    /// error did arrive is not said twice.
    #[test]
    fn why_the_server_closed_the_connection_is_said_on_the_resume() {
        let mut s = joined(&["lobby"]);
        s.handle_disconnected();
        s.handle_connected(10);
        let resumed = || welcome("alice", true).with_closed_for(Some(ErrorCode::SlowConsumer));
        let mut shown = frame(&mut s, resumed()).lines;
        shown.extend(lines_of(
            &mut s,
            [
                ServerFrame::entered("lobby", "e1", 900, 300, vec!["alice".into()], false),
                presence("lobby", 901, "alice", true),
            ],
        ));
        assert_eq!(
            shown,
            [
                "* the server had closed the connection: you did not read your messages \
                 fast enough (slow_consumer)",
                "* messages of #lobby sent while you were away are missing here; /history fetches them",
                "* reconnected; history has a gap"
            ]
        );
        frame(
            &mut s,
            ServerFrame::error(ErrorCode::SlowConsumer, "too slow"),
        );
        s.handle_disconnected();
        s.handle_connected(20);
        let out = frame(&mut s, resumed());
        assert!(
            !out.lines.iter().any(|l| l.contains("had closed")),
            "{:?}",
            out.lines
        );
    }

    /// What the replay left out is said where it is missing, and
    /// /history fetches it, newest first, until it meets what was shown
    /// before; then /history pages back from the oldest again.
    #[test]
    fn history_fetches_what_a_gap_left_out() {
        let mut s = joined(&["lobby"]);
        frame(&mut s, msg("lobby", 3, "bob", &[], "m3"));
        back(&mut s, 10);
        let shown = lines_of(
            &mut s,
            [
                entered("lobby", 20, &["alice"], false),
                replayed(msg("lobby", 19, "bob", &[], "m19"), None),
                replayed(msg("lobby", 20, "bob", &[], "m20"), None),
                presence("lobby", 21, "alice", true),
            ],
        );
        let missing =
            "* messages of #lobby sent while you were away are missing here; /history fetches them";
        assert_eq!(
            shown,
            [
                missing,
                "bob: m19",
                "bob: m20",
                "* reconnected; history has a gap"
            ]
        );
        // The newest of the missing ones first: below the first replayed.
        let out = line(&mut s, "/history 10");
        assert_eq!(
            out.sent,
            [ClientFrame::history("lobby", Some(19), Some(11))]
        );
        let page: Vec<ServerFrame> = (9..=18)
            .map(|n| replayed(msg("lobby", n, "bob", &[], &format!("m{n}")), None))
            .collect();
        let out = frame(&mut s, ServerFrame::history("lobby", page, true));
        assert_eq!(out.lines.len(), 11, "{:?}", out.lines);
        assert_eq!(out.lines[0], "[history] bob: m9");
        assert_eq!(
            out.lines[10],
            "* fetched 10 missing messages of #lobby; more are missing: /history fetches them"
        );
        // The rest, in a page that reaches what was shown (m3 is not
        // shown again).
        let out = line(&mut s, "/history 10");
        assert_eq!(out.sent, [ClientFrame::history("lobby", Some(9), Some(11))]);
        let page: Vec<ServerFrame> = (1..=8)
            .filter(|n| *n != 2)
            .map(|n| replayed(msg("lobby", n, "bob", &[], &format!("m{n}")), None))
            .collect();
        let out = frame(&mut s, ServerFrame::history("lobby", page, true));
        assert_eq!(
            out.lines,
            [
                "[history] bob: m4",
                "[history] bob: m5",
                "[history] bob: m6",
                "[history] bob: m7",
                "[history] bob: m8",
                "* fetched 5 missing messages of #lobby; none is missing any more",
                "* the messages of #lobby missing above are all shown now",
            ]
        );
        // Back to paging from the oldest shown.
        let out = line(&mut s, "/history 10");
        assert_eq!(out.sent, [ClientFrame::history("lobby", Some(3), Some(10))]);
    }

    /// Joins and leaves take seqs too: a page that reaches the last one
    /// seen before the reconnect fills the gap, with no further /history
    /// to find nothing.
    #[test]
    fn a_gap_begins_after_the_last_join_or_leave_seen() {
        let mut s = joined(&["lobby"]);
        frame(&mut s, msg("lobby", 3, "bob", &[], "m3"));
        frame(&mut s, presence("lobby", 4, "bob", false));
        frame(&mut s, presence("lobby", 5, "carol", true));
        back(&mut s, 10);
        lines_of(
            &mut s,
            [
                entered("lobby", 19, &["alice"], false),
                replayed(msg("lobby", 19, "carol", &[], "m19"), None),
                presence("lobby", 20, "alice", true),
            ],
        );
        let out = line(&mut s, "/history 13");
        assert_eq!(
            out.sent,
            [ClientFrame::history("lobby", Some(19), Some(14))]
        );
        let page = (6..=18)
            .map(|n| replayed(msg("lobby", n, "carol", &[], &format!("m{n}")), None))
            .collect();
        let out = frame(&mut s, ServerFrame::history("lobby", page, true));
        assert_eq!(
            out.lines[13..],
            [
                "* fetched 13 missing messages of #lobby; none is missing any more",
                "* the messages of #lobby missing above are all shown now",
            ]
        );
    }

    /// 60 messages said while away, after joins that took seqs, and the
    /// replay brought the newest 20: two `/history` of 20 fetch the other
    /// 40, and the second one, which reaches the gap's start, says none
    /// is missing any more (it took a third, which found none, and said
    /// `20 missing messages` as though 20 were still missing).
    #[test]
    fn a_gap_after_joins_is_filled_by_the_page_that_reaches_it() {
        let mut s = joined(&["lobby"]);
        frame(&mut s, msg("lobby", 2, "bob", &[], "m2"));
        frame(&mut s, msg("lobby", 3, "bob", &[], "m3"));
        frame(&mut s, presence("lobby", 4, "carol", true));
        back(&mut s, 10);
        // While away: joins at 5 and 6, then messages 7 to 66.
        let said: Vec<u64> = (2..=3).chain(7..=66).collect();
        let m = |n: u64| replayed(msg("lobby", n, "bob", &[], &format!("m{n}")), None);
        let mut replay = vec![entered("lobby", 66, &["alice", "bob", "carol"], false)];
        replay.extend((47..=66).map(m));
        replay.push(presence("lobby", 67, "alice", true));
        lines_of(&mut s, replay);
        // The server's answer to the page asked for, as chatserver's.
        let answer = |sent: &[ClientFrame]| page_of(&said, u64::MAX, sent);
        let out = line(&mut s, "/history");
        let out = frame(&mut s, answer(&out.sent));
        assert_eq!(out.lines.len(), 21, "{:?}", out.lines);
        assert_eq!(out.lines[0], "[history] bob: m27");
        assert_eq!(
            out.lines[20],
            "* fetched 20 missing messages of #lobby; more are missing: /history fetches them"
        );
        let out = line(&mut s, "/history");
        let out = frame(&mut s, answer(&out.sent));
        assert_eq!(out.lines[0], "[history] bob: m7");
        assert_eq!(
            out.lines[20..],
            [
                "* fetched 20 missing messages of #lobby; none is missing any more",
                "* the messages of #lobby missing above are all shown now",
            ]
        );
        // Then paging back from the oldest shown.
        let out = line(&mut s, "/history");
        assert_eq!(
            out.sent,
            [ClientFrame::history(
                "lobby",
                Some(2),
                Some(crate::input::HISTORY_DEFAULT)
            )]
        );
    }

    /// A server's answer to the one `history` of #lobby in `sent`, as
    /// chatserver gives it: the newest of bob's messages `said` below
    /// `before`, as many as asked but at most `page_max`.
    fn page_of(said: &[u64], page_max: u64, sent: &[ClientFrame]) -> ServerFrame {
        let [ClientFrame::History {
            before: Some(before),
            limit: Some(limit),
            ..
        }] = sent
        else {
            panic!("{sent:?}");
        };
        let limit = (*limit).min(page_max) as usize;
        let below: Vec<u64> = said.iter().copied().filter(|n| n < before).collect();
        let page = &below[below.len().saturating_sub(limit)..];
        let more = page.len() < below.len();
        let from = page.first().copied().unwrap_or(*before);
        let m = |n: u64| replayed(msg("lobby", n, "bob", &[], &format!("m{n}")), None);
        ServerFrame::history_from("lobby", page.iter().map(|&n| m(n)).collect(), more, from)
    }

    /// A server whose pages hold 20, fewer than `/history 50` asks: 20
    /// messages missing after joins that took seqs, and the page the server
    /// gives (20, as full as it holds) is followed by a page of one that
    /// tells the gap is filled (the page was taken as short of the 50
    /// asked, and the client said more were missing; the next `/history`
    /// found none).
    #[test]
    fn a_gap_as_big_as_a_smaller_server_page_is_filled_by_one_history() {
        let mut s = joined(&["lobby"]);
        frame(&mut s, msg("lobby", 3, "bob", &[], "m3"));
        frame(&mut s, presence("lobby", 4, "carol", true));
        back_with_pages_of_20(&mut s);
        // While away: a join at 5, then messages 6 to 30; the replay
        // brings the newest 5.
        let said: Vec<u64> = std::iter::once(3).chain(6..=30).collect();
        let m = |n: u64| replayed(msg("lobby", n, "bob", &[], &format!("m{n}")), None);
        let mut replay = vec![entered("lobby", 30, &["alice", "bob", "carol"], false)];
        replay.extend((26..=30).map(m));
        replay.push(presence("lobby", 31, "alice", true));
        lines_of(&mut s, replay);
        // The server's answer, as chatserver's: at most 20 a page.
        let answer = |sent: &[ClientFrame]| page_of(&said, 20, sent);
        let mut out = line(&mut s, "/history 50");
        let mut lines = Vec::new();
        for _ in 0..3 {
            if out.sent.is_empty() {
                break;
            }
            out = frame(&mut s, answer(&out.sent));
            lines.extend(out.lines.clone());
        }
        assert_eq!(lines.len(), 22, "{lines:?}");
        assert_eq!(lines[0], "[history] bob: m6");
        assert_eq!(
            lines[20..],
            [
                "* fetched 20 missing messages of #lobby; none is missing any more",
                "* the messages of #lobby missing above are all shown now",
            ]
        );
    }

    /// The page of one that follows a page into a gap as full as the
    /// server's (to tell whether the gap is filled) is refused, or the
    /// connection goes before it comes: what the full page brought is
    /// said all the same (it was never said), and the next `/history`
    /// asks into the gap afresh.
    #[test]
    fn a_full_gap_page_is_said_when_the_page_of_one_after_it_never_comes() {
        for lost in ["refused", "disconnected"] {
            // While away: messages 4 to 40; the replay brings the newest 5.
            let (mut s, _, _) = full_page_into_a_gap(4..=40);
            let said_then = match lost {
                "refused" => {
                    let refused = room_error(ErrorCode::NotInRoom, "not in #lobby", "lobby");
                    frame(&mut s, refused).lines
                }
                _ => {
                    s.handle_disconnected();
                    drain(&mut s).lines
                }
            };
            let note = "* fetched 20 missing messages of #lobby; more may be missing: /history fetches them";
            assert!(said_then.iter().any(|l| l == note), "{lost}: {said_then:?}");
            if lost == "refused" {
                let out = line(&mut s, "/history 20");
                assert!(
                    matches!(
                        &out.sent[..],
                        [ClientFrame::History {
                            before: Some(16),
                            limit: Some(20),
                            ..
                        }]
                    ),
                    "asked afresh below the page: {:?}",
                    out.sent
                );
            }
        }
    }

    /// Two reconnects, two gaps: /history fills the newer one first, then
    /// the older one, each in its place.
    #[test]
    fn two_gaps_are_filled_newest_first() {
        let mut s = joined(&["lobby"]);
        frame(&mut s, msg("lobby", 3, "bob", &[], "m3"));
        let reconnect = |s: &mut crate::session::Session, last: u64| {
            back(s, 10);
            lines_of(
                s,
                [
                    entered("lobby", last, &["alice"], false),
                    replayed(msg("lobby", last, "bob", &[], "r"), None),
                    presence("lobby", last + 1, "alice", true),
                ],
            )
        };
        reconnect(&mut s, 10);
        reconnect(&mut s, 20);
        let page = |from: u64, to: u64| -> Vec<ServerFrame> {
            // (Seq 11 is alice's presence.)
            (from..=to)
                .filter(|n| *n != 11)
                .map(|n| replayed(msg("lobby", n, "bob", &[], &format!("m{n}")), None))
                .collect()
        };
        let out = line(&mut s, "/history 50");
        assert_eq!(
            out.sent,
            [ClientFrame::history("lobby", Some(20), Some(51))]
        );
        // The page reaches past the newer gap, into the older one's
        // messages and below: only the newer gap's are shown now.
        let out = frame(&mut s, ServerFrame::history("lobby", page(1, 19), true));
        let shown: Vec<&str> = out.lines.iter().map(String::as_str).collect();
        assert_eq!(
            shown,
            [
                "[history] bob: m12",
                "[history] bob: m13",
                "[history] bob: m14",
                "[history] bob: m15",
                "[history] bob: m16",
                "[history] bob: m17",
                "[history] bob: m18",
                "[history] bob: m19",
                "* fetched 8 missing messages of #lobby; none is missing there any more, but some are further up: /history fetches them",
                "* the messages of #lobby missing above are all shown now",
            ]
        );
        let out = line(&mut s, "/history 50");
        assert_eq!(
            out.sent,
            [ClientFrame::history("lobby", Some(10), Some(51))]
        );
        let out = frame(&mut s, ServerFrame::history("lobby", page(1, 9), false));
        assert_eq!(
            out.lines.len(),
            8,
            "m4 to m9, and two lines: {:?}",
            out.lines
        );
        assert_eq!(out.lines[0], "[history] bob: m4");
        assert_eq!(
            out.lines[6],
            "* fetched 6 missing messages of #lobby; none is missing any more"
        );
        let out = line(&mut s, "/history 50");
        assert_eq!(out.sent, [ClientFrame::history("lobby", Some(3), Some(50))]);
    }

    /// A gap whose replay brought no message (only presence, or a
    /// stretch of messages to others): the messages shown live since are
    /// not missing, and paging /history through them must not show them
    /// again (the client remembers only the newest 256 it showed).
    #[test]
    fn a_gap_with_no_message_replayed_shows_nothing_twice() {
        let mut s = joined(&["lobby"]);
        frame(&mut s, msg("lobby", 3, "bob", &[], "m3"));
        back(&mut s, 10);
        lines_of(
            &mut s,
            [
                entered("lobby", 20, &["alice"], false),
                presence("lobby", 19, "carol", true),
                presence("lobby", 20, "carol", false),
                presence("lobby", 21, "alice", true),
            ],
        );
        // What the server holds: m1..m18 (m4..m18 missing here), then
        // m22..m321 shown live after the reconnect.
        let held: Vec<u64> = (1..=18).chain(22..=321).collect();
        for &n in held.iter().filter(|n| **n >= 22) {
            frame(&mut s, msg("lobby", n, "bob", &[], &format!("m{n}")));
        }
        let mut shown = Vec::new();
        for _ in 0..20 {
            let out = line(&mut s, "/history 50");
            let [ClientFrame::History { before, .. }] = &out.sent[..] else {
                panic!("{:?}", out.sent)
            };
            let below: Vec<u64> = held
                .iter()
                .copied()
                .filter(|n| before.is_none_or(|b| *n < b))
                .collect();
            let page = &below[below.len().saturating_sub(50)..];
            let more = page.first().is_some_and(|f| *f > 1);
            let frames = page
                .iter()
                .map(|n| replayed(msg("lobby", *n, "bob", &[], &format!("m{n}")), None))
                .collect();
            let out = frame(&mut s, ServerFrame::history("lobby", frames, more));
            shown.extend(out.lines);
            if shown.iter().any(|l| l.contains("none is missing")) {
                break;
            }
        }
        let again: Vec<&String> = shown
            .iter()
            .filter(|l| {
                l.strip_prefix("[history] bob: m")
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|n| n >= 22)
            })
            .collect();
        assert!(again.is_empty(), "shown twice: {again:?}");
        for n in 4..=18 {
            assert!(shown.contains(&format!("[history] bob: m{n}")), "m{n}");
        }
    }

    /// A server that kept no history restarted (or forgot an empty room):
    /// the rooms' history began anew. That is said of each room, not as a
    /// gap that /history could fill.
    #[test]
    fn a_history_begun_anew_is_said_of_each_room() {
        let mut s = joined(&["lobby", "rust", "go"]);
        s.handle_disconnected();
        s.handle_connected(10);
        frame(&mut s, welcome("alice", false));
        let anew = |room| ServerFrame::entered(room, "e2", 0, 1, vec!["alice".into()], false);
        let shown = lines_of(
            &mut s,
            [
                anew("lobby"),
                presence("lobby", 1, "alice", true),
                anew("rust"),
                replayed(msg("rust", 1, "bob", &[], "first since"), None),
                presence("rust", 2, "alice", true),
                entered("go", 1, &["alice"], true),
                presence("go", 2, "alice", true),
            ],
        );
        assert_eq!(
            shown,
            [
                "* the server started #lobby's history anew; earlier messages are gone",
                "* the server started #rust's history anew; earlier messages are gone",
                "[#rust] bob: first since",
                "* reconnected; 1 missed message in #rust",
            ]
        );
    }

    /// The note that a room's history began anew comes before what the
    /// new history's replay brings, where it is true in order: said in
    /// the summary, it came below the new history's lines, as though they
    /// were gone too.
    #[test]
    fn a_history_begun_anew_is_said_before_its_replayed_lines() {
        let mut s = joined(&["lobby"]);
        frame(&mut s, msg("lobby", 2, "bob", &[], "old"));
        back(&mut s, 10);
        let shown = lines_of(
            &mut s,
            [
                ServerFrame::entered("lobby", "e2", 2, 1, vec!["alice".into()], false),
                replayed(msg("lobby", 1, "bob", &[], "first since"), None),
                replayed(msg("lobby", 2, "bob", &[], "second since"), None),
                presence("lobby", 3, "alice", true),
            ],
        );
        assert_eq!(
            shown,
            [
                "* the server started #lobby's history anew; earlier messages are gone",
                "bob: first since",
                "bob: second since",
                "* reconnected; 2 missed messages above",
            ]
        );
    }

    /// The server's history of a room went from epoch e1 to e2 (a restart
    /// without keeping history) and back to e1 (restarted again with its
    /// data directory): what was shown of e1 is not shown again, nor
    /// counted as missed; only what e1 holds beyond it is.
    #[test]
    fn a_history_gone_back_to_an_earlier_epoch_shows_nothing_twice() {
        let mut s = joined(&["lobby"]);
        frame(&mut s, msg("lobby", 2, "bob", &[], "one"));
        frame(&mut s, msg("lobby", 3, "bob", &[], "two"));
        // e2: a history begun anew.
        let shown = begun_anew_as_e2(&mut s);
        assert_eq!(shown[1], "carol: in e2");
        // Back to e1, whose replay holds what was shown, and one more.
        let shown = back_to_e1(&mut s);
        assert_eq!(
            shown,
            [
                "* the server started #lobby's history anew; earlier messages are gone",
                "bob: three",
                "* reconnected; 1 missed message above",
            ]
        );
    }

    /// Messages missed in several rooms are counted room by room, the
    /// current room (the lobby) first: a count alone would send the
    /// reader looking above, in the lobby, for what came in #rust.
    #[test]
    fn messages_missed_in_several_rooms_are_counted_by_room() {
        let mut s = joined(&["lobby", "rust", "go"]);
        s.handle_disconnected();
        s.handle_connected(10);
        frame(&mut s, welcome("alice", true));
        let shown = lines_of(
            &mut s,
            [
                entered("lobby", 2, &["alice"], true),
                replayed(msg("lobby", 2, "bob", &[], "l1"), None),
                presence("lobby", 3, "alice", true),
                entered("rust", 3, &["alice"], true),
                replayed(msg("rust", 2, "bob", &[], "r1"), None),
                replayed(msg("rust", 3, "bob", &[], "r2"), None),
                presence("rust", 4, "alice", true),
                entered("go", 1, &["alice"], true),
                presence("go", 2, "alice", true),
            ],
        );
        assert_eq!(
            shown.last().map(String::as_str),
            Some("* reconnected; 3 missed messages: 1 in #lobby, 2 in #rust"),
            "{shown:?}"
        );
    }

    /// alice in the lobby with `before` online, the connection lost and
    /// made again, the lobby entered again with `after` online: the lines
    /// shown from there on.
    fn away_and_back(before: &[&str], after: &[&str]) -> Vec<String> {
        let mut s = welcomed(&["lobby"]);
        frame(&mut s, entered("lobby", 0, before, false));
        frame(&mut s, presence("lobby", 1, "alice", true));
        back(&mut s, 10);
        lines_of(
            &mut s,
            [
                entered("lobby", 5, after, true),
                presence("lobby", 6, "alice", true),
            ],
        )
    }

    /// The replay brings messages only: who came while the connection was
    /// lost is said in one line, after the summary.
    #[test]
    fn who_joined_while_away_is_said_after_the_summary() {
        assert_eq!(
            away_and_back(&["alice", "bob"], &["bob", "carol", "alice"]),
            [
                "* reconnected; nothing missed",
                "* while you were away: carol joined"
            ]
        );
    }

    #[test]
    fn who_left_while_away_is_said_after_the_summary() {
        assert_eq!(
            away_and_back(&["alice", "bob", "dave"], &["alice", "bob"]),
            [
                "* reconnected; nothing missed",
                "* while you were away: dave left"
            ]
        );
    }

    #[test]
    fn who_joined_and_who_left_while_away_are_one_line() {
        assert_eq!(
            away_and_back(
                &["dave", "alice", "bob"],
                &["erin", "alice", "bob", "carol"]
            ),
            [
                "* reconnected; nothing missed",
                "* while you were away: carol, erin joined; dave left"
            ]
        );
    }

    #[test]
    fn nobody_coming_or_going_while_away_says_nothing_more() {
        assert_eq!(
            away_and_back(&["alice", "bob"], &["bob", "alice"]),
            ["* reconnected; nothing missed"]
        );
    }

    /// Nicknames are one person whatever their case (chatproto's folding),
    /// and alice is never one who came or went.
    #[test]
    fn a_nickname_back_in_another_case_is_no_change() {
        assert_eq!(
            away_and_back(
                &["alice", "Bob", "\u{c9}mile"],
                &["ALICE", "bob", "\u{e9}mile"]
            ),
            ["* reconnected; nothing missed"]
        );
        assert_eq!(
            away_and_back(&["bob"], &["Alice", "bob"]),
            ["* reconnected; nothing missed"],
            "alice herself did not join"
        );
    }

    /// Every room says its own, named where it is not the current one,
    /// after the summary (a room whose history began anew, said on
    /// entering it, still says who came and went). Presence seen live before the loss
    /// counts, and a try that failed before the rooms were entered again
    /// does not lose what was known.
    #[test]
    fn each_room_says_who_came_and_went_in_it() {
        let mut s = welcomed(&["lobby", "rust"]);
        frame(&mut s, entered("lobby", 0, &["alice", "bob"], false));
        frame(&mut s, presence("lobby", 1, "alice", true));
        frame(&mut s, entered("rust", 0, &["alice", "dave"], false));
        frame(&mut s, presence("rust", 1, "alice", true));
        frame(&mut s, presence("rust", 2, "carol", true));
        s.handle_disconnected();
        s.handle_connected(10);
        s.handle_disconnected();
        s.handle_connected(20);
        frame(&mut s, welcome("alice", false));
        let anew = ServerFrame::entered(
            "lobby",
            "e2",
            0,
            1,
            vec!["alice".into(), "erin".into()],
            false,
        );
        let shown = lines_of(
            &mut s,
            [
                anew,
                presence("lobby", 1, "alice", true),
                entered("rust", 5, &["alice", "dave"], true),
                presence("rust", 6, "alice", true),
            ],
        );
        assert_eq!(
            shown,
            [
                "* the server started #lobby's history anew; earlier messages are gone",
                "* reconnected",
                "* while you were away: erin joined; bob left",
                "[#rust] * while you were away: carol left",
            ]
        );
        // Next time, from what was known when this connection went.
        back(&mut s, 30);
        let shown = lines_of(
            &mut s,
            [
                ServerFrame::entered(
                    "lobby",
                    "e2",
                    1,
                    1,
                    vec!["alice".into(), "erin".into()],
                    true,
                ),
                presence("lobby", 2, "alice", true),
                entered("rust", 6, &["alice"], true),
                presence("rust", 7, "alice", true),
            ],
        );
        assert_eq!(
            shown,
            [
                "* reconnected; nothing missed",
                "[#rust] * while you were away: dave left",
            ]
        );
    }

    /// A reconnect lost again before its summary (#rust's replay was
    /// still coming) has said nothing of who came and went: the next one
    /// says it, from who was there at the first loss, less whoever came
    /// or went in view since (dave, said live).
    #[test]
    fn a_reconnect_lost_halfway_loses_no_one_who_came_or_went() {
        let mut s = welcomed(&["lobby", "rust"]);
        frame(&mut s, entered("lobby", 0, &["alice", "bob"], false));
        frame(&mut s, presence("lobby", 1, "alice", true));
        frame(&mut s, entered("rust", 0, &["alice"], false));
        frame(&mut s, presence("rust", 1, "alice", true));
        back(&mut s, 10);
        let shown = lines_of(
            &mut s,
            [
                entered("lobby", 5, &["alice", "bob", "carol"], true),
                presence("lobby", 6, "alice", true),
                presence("lobby", 7, "dave", true),
            ],
        );
        assert_eq!(shown, ["* dave is online"], "no summary: #rust is not back");
        back(&mut s, 20);
        let shown = lines_of(
            &mut s,
            [
                entered("lobby", 7, &["alice", "bob", "carol", "dave"], true),
                presence("lobby", 8, "alice", true),
                entered("rust", 1, &["alice"], true),
                presence("rust", 2, "alice", true),
            ],
        );
        assert_eq!(
            shown,
            [
                "* reconnected; nothing missed",
                "* while you were away: carol joined"
            ]
        );
    }

    /// A big room's online list comes in parts: `entered`, then `online`
    /// frames (PROTOCOL.md 5.2). Who is in a later part did not leave,
    /// nor join: the list is compared once it is whole.
    #[test]
    fn an_online_list_in_parts_is_compared_whole() {
        let mut s = welcomed(&["lobby"]);
        frame(&mut s, entered("lobby", 0, &["alice", "bob"], false));
        frame(&mut s, online("lobby", &["dave"]));
        frame(&mut s, presence("lobby", 1, "alice", true));
        back(&mut s, 10);
        let shown = lines_of(
            &mut s,
            [
                entered("lobby", 5, &["alice", "carol"], true),
                online("lobby", &["bob"]),
                online("lobby", &["dave", "erin"]),
                presence("lobby", 6, "alice", true),
            ],
        );
        assert_eq!(
            shown,
            [
                "* reconnected; nothing missed",
                "* while you were away: carol, erin joined"
            ]
        );
    }

    /// A connection lost between a room's `entered` and the rest of its
    /// online list never had the whole list: it is not what a reconnect
    /// tells who came and went from (carol was there all along).
    #[test]
    fn a_list_cut_off_in_parts_is_not_kept() {
        let mut s = welcomed(&["lobby"]);
        frame(&mut s, entered("lobby", 0, &["alice", "bob"], false));
        s.handle_disconnected();
        s.handle_connected(10);
        frame(&mut s, welcome("alice", false));
        let shown = lines_of(
            &mut s,
            [
                entered("lobby", 0, &["alice"], false),
                online("lobby", &["bob", "carol"]),
                presence("lobby", 1, "alice", true),
            ],
        );
        assert_eq!(shown, ["* reconnected; nothing missed"]);
    }

    /// At the server's presence fan-out cap (1,000) the next arrival is
    /// sent to nobody else, and past it no presence is, so the list kept
    /// may be stale unseen: a room that big, before or after, says nothing
    /// of who came and went.
    #[test]
    fn a_room_too_big_for_presence_says_nothing_of_who_came_and_went() {
        // alice and `n - 1` others.
        let crowd = |n: usize| -> Vec<String> {
            std::iter::once("alice".to_owned())
                .chain((1..n).map(|i| format!("n{i}")))
                .collect()
        };
        fn names(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        let (under, below_cap, at_cap) = (crowd(998), crowd(999), crowd(1_000));
        assert_eq!(
            away_and_back(&names(&under), &names(&below_cap)),
            [
                "* reconnected; nothing missed",
                "* while you were away: n998 joined"
            ],
            "below the cap, presence reaches everyone"
        );
        // At the cap, the arrival that took the room past it reached
        // nobody: the list kept may be stale.
        assert_eq!(
            away_and_back(&names(&below_cap), &names(&at_cap)),
            ["* reconnected; nothing missed"]
        );
        assert_eq!(
            away_and_back(&names(&at_cap), &names(&below_cap)),
            ["* reconnected; nothing missed"]
        );
    }

    /// A room that reached the cap stays crowded after it is smaller
    /// again: at 1,000, xena's arrival (1,001) and n1's leaving (1,000)
    /// reach nobody, n2's leaving (999) does; the list kept at the loss
    /// has n1 still and not xena, though both came and went while alice
    /// was connected. Entered again below the cap, the room is no longer
    /// crowded.
    #[test]
    fn a_room_that_reached_the_cap_says_nothing_though_smaller_since() {
        let mut s = welcomed(&["lobby"]);
        // alice and n1 to n999.
        let mut crowd: Vec<String> = std::iter::once("alice".to_owned())
            .chain((1..1_000).map(|i| format!("n{i}")))
            .collect();
        let entered_with = |seq: u64, online: &[String], recovered: bool| {
            ServerFrame::entered("lobby", "e1", seq, 1, online.to_vec(), recovered)
        };
        frame(&mut s, entered_with(0, &crowd, false));
        frame(&mut s, presence("lobby", 1, "alice", true));
        // Seqs 2 and 3, xena's arrival and n1's leaving, went to them alone.
        let out = frame(&mut s, presence("lobby", 4, "n2", false));
        assert_eq!(out.lines, ["* n2 left"]);
        s.handle_disconnected();
        crowd.retain(|n| n != "n1" && n != "n2");
        crowd.push("xena".into());
        assert_eq!(crowd.len(), 999);
        s.handle_connected(10);
        frame(&mut s, welcome("alice", true));
        let shown = lines_of(
            &mut s,
            [
                entered_with(4, &crowd, true),
                presence("lobby", 5, "alice", true),
            ],
        );
        assert_eq!(shown, ["* reconnected; nothing missed"]);

        // Entered afresh at 999: n3 leaving while away is said.
        s.handle_disconnected();
        crowd.retain(|n| n != "n3");
        s.handle_connected(20);
        frame(&mut s, welcome("alice", true));
        let shown = lines_of(
            &mut s,
            [
                entered_with(6, &crowd, true),
                presence("lobby", 7, "alice", true),
            ],
        );
        assert_eq!(
            shown,
            [
                "* reconnected; nothing missed",
                "* while you were away: n3 left"
            ]
        );
    }

    /// A server run with another cap says it in its `welcome`, and that
    /// is the cap the lists are held to: at 2, a room of two says nothing
    /// of who came while away (the same room below the default cap does).
    #[test]
    fn the_presence_cap_is_the_one_the_welcome_says() {
        let limits = chatproto::Limits::new(65_536, 64, 500, 200).with_presence_fanout_max(2);
        let rooms = vec!["lobby".to_owned()];
        let mut s = Session::new("alice", &rooms, "t-", 65_536);
        s.handle_connected(0);
        drain(&mut s);
        let welcome_capped = |resumed: bool| {
            ServerFrame::welcome(
                "alice",
                0,
                vec![],
                Some("token".into()),
                Some(resumed),
                Some(limits),
            )
        };
        frame(&mut s, welcome_capped(false));
        frame(&mut s, entered("lobby", 0, &["alice", "bob"], false));
        frame(&mut s, presence("lobby", 1, "alice", true));
        s.handle_disconnected();
        s.handle_connected(10);
        frame(&mut s, welcome_capped(true));
        let shown = lines_of(
            &mut s,
            [
                entered("lobby", 5, &["alice", "bob", "carol"], true),
                presence("lobby", 6, "alice", true),
            ],
        );
        assert_eq!(shown, ["* reconnected; nothing missed"]);
        assert_eq!(
            away_and_back(&["alice", "bob"], &["alice", "bob", "carol"]),
            [
                "* reconnected; nothing missed",
                "* while you were away: carol joined"
            ]
        );
    }

    /// The cap the server is assumed to have is its default.
    #[test]
    fn the_presence_cap_is_the_servers_default() {
        assert_eq!(
            super::PRESENCE_FANOUT_MAX,
            chatproto::ServerConfig::default().presence_fanout_max
        );
    }

    /// The full-screen client files the line under its room.
    #[test]
    fn the_full_screen_gets_the_room_of_who_came_and_went() {
        let mut s = joined(&["lobby"]);
        s.name_every_room();
        back(&mut s, 10);
        frame(&mut s, entered("lobby", 1, &["alice", "bob"], true));
        s.handle_frame(0, presence("lobby", 2, "alice", true));
        let away = std::iter::from_fn(|| s.poll()).find_map(|a| match a {
            Action::Print(line @ crate::render::Line::WhileAway { .. }) => Some(line),
            _ => None,
        });
        assert_eq!(
            away,
            Some(crate::render::Line::WhileAway {
                room: Some("lobby".into()),
                joined: vec!["bob".into()],
                left: vec![],
            })
        );
        assert_eq!(s.roster("lobby"), ["alice", "bob"]);
    }

    /// With `--json` there is no current room for a program to read the
    /// line against: it names its room, the current one too (as the
    /// other notes name theirs in their text).
    #[test]
    fn with_json_the_line_names_its_room_always() {
        let mut s = crate::session::Session::new("alice", &["lobby".into()], "t-", 65_536);
        s.set_mode(crate::session::Mode {
            echo_frames: true,
            ..crate::session::Mode::default()
        });
        s.handle_connected(0);
        frame(&mut s, welcome("alice", false));
        frame(&mut s, entered("lobby", 0, &["alice"], false));
        frame(&mut s, presence("lobby", 1, "alice", true));
        back(&mut s, 10);
        frame(&mut s, entered("lobby", 1, &["alice", "bob"], true));
        s.handle_frame(0, presence("lobby", 2, "alice", true));
        let note = std::iter::from_fn(|| s.poll()).find_map(|a| match a {
            Action::Print(line @ crate::render::Line::WhileAway { .. }) => {
                crate::json::note(&line, "T")
            }
            _ => None,
        });
        assert_eq!(
            note.as_deref(),
            Some(
                r#"{"type":"info","text":"[#lobby] while you were away: bob joined","local_time":"T"}"#
            )
        );
    }

    /// What was said while away is new to the user (not dimmed as
    /// history), but the line knows it was not said now.
    #[test]
    fn a_missed_message_keeps_when_it_was_sent() {
        let mut s = joined(&["lobby"]);
        back(&mut s, 10);
        frame(&mut s, entered("lobby", 2, &["alice"], true));
        let mut missed = replayed(msg("lobby", 2, "bob", &[], "meanwhile"), None);
        if let ServerFrame::Msg { ts, .. } = &mut missed {
            *ts = 1_700_000_000_000;
        }
        s.handle_frame(0, missed);
        let line = std::iter::from_fn(|| s.poll()).find_map(|a| match a {
            Action::Print(line @ crate::render::Line::Msg { .. }) => Some(line),
            _ => None,
        });
        assert_eq!(
            line,
            Some(crate::render::Line::Msg {
                room: None,
                history: false,
                page: false,
                missed: true,
                from: "bob".into(),
                to: vec![],
                text: "meanwhile".into(),
                ts: 1_700_000_000_000,
                place: crate::render::Place { era: 1, seq: 2 },
            })
        );
    }

    /// alice's connection lost and a new one resuming her session, on a
    /// server whose pages hold 20 and whose replay the newest 5.
    fn back_with_pages_of_20(s: &mut Session) {
        s.handle_disconnected();
        s.handle_connected(10);
        let limits = chatproto::Limits::new(65_536, 64, 5, 20);
        let token = Some("token".to_owned());
        frame(
            s,
            ServerFrame::welcome("alice", 0, vec![], token, Some(true), Some(limits)),
        );
    }

    /// alice back after bob's messages `away` (and 3 before them) went
    /// by, with the server's pages holding 20 and its replay the newest
    /// 5: `/history 20` and its answer, a page as full as the server's.
    /// The page of one after it is asked; its frames are returned with
    /// all bob said, to answer it.
    fn full_page_into_a_gap(
        away: std::ops::RangeInclusive<u64>,
    ) -> (Session, Vec<u64>, Vec<ClientFrame>) {
        let mut s = joined(&["lobby"]);
        frame(&mut s, msg("lobby", 3, "bob", &[], "m3"));
        back_with_pages_of_20(&mut s);
        let last = *away.end();
        let said: Vec<u64> = std::iter::once(3).chain(away).collect();
        let m = |n: u64| replayed(msg("lobby", n, "bob", &[], &format!("m{n}")), None);
        let mut replay = vec![entered("lobby", last, &["alice", "bob"], false)];
        replay.extend((last - 4..=last).map(m));
        replay.push(presence("lobby", last + 1, "alice", true));
        lines_of(&mut s, replay);
        let out = line(&mut s, "/history 20");
        let out = frame(&mut s, page_of(&said, 20, &out.sent));
        assert_eq!(out.lines.len(), 20, "{:?}", out.lines);
        assert!(
            matches!(&out.sent[..], [ClientFrame::History { limit: Some(1), .. }]),
            "{:?}",
            out.sent
        );
        (s, said, out.sent)
    }

    /// While the page of one after a full page into a gap is on its way,
    /// a frame that could not be read, or an error naming the room with
    /// a code a page is not refused with: either may have been that page
    /// (or its refusal), so the full page's note is said. It was not:
    /// the page of one came, and a second note on the same page was said.
    #[test]
    fn a_bad_frame_before_the_page_of_one_says_one_note() {
        for doubt in ["bad frame", "error"] {
            let (mut s, said, probe) = full_page_into_a_gap(4..=40);
            let mut notes: Vec<String> = match doubt {
                "bad frame" => {
                    s.handle_bad_frame("unknown type");
                    drain(&mut s).lines
                }
                _ => frame(&mut s, room_error(ErrorCode::Unavailable, "busy", "lobby")).lines,
            };
            let early = "* fetched 20 missing messages of #lobby; more may be missing: /history fetches them";
            assert!(notes.iter().any(|l| l == early), "{doubt}: {notes:?}");
            notes.extend(frame(&mut s, page_of(&said, 20, &probe)).lines);
            let notes: Vec<&String> = notes.iter().filter(|l| l.contains("#lobby")).collect();
            assert_eq!(notes.len(), 1, "{doubt}: {notes:?}");
            // The gap is still there to fill, from below the full page.
            let out = line(&mut s, "/history 20");
            assert!(
                matches!(
                    &out.sent[..],
                    [ClientFrame::History {
                        before: Some(16),
                        ..
                    }]
                ),
                "{doubt}: {:?}",
                out.sent
            );
        }
    }

    /// The full page filled the gap (a join took the seq above the last
    /// message seen), but a frame that could not be read came before the
    /// page of one: "more may be missing" is said, and the page of one,
    /// come after all, says none is any more, and the gap's line goes.
    #[test]
    fn a_page_of_one_come_after_a_bad_frame_says_the_gap_is_filled() {
        let (mut s, said, probe) = full_page_into_a_gap(5..=29);
        s.handle_bad_frame("unknown type");
        let early = drain(&mut s).lines;
        assert_eq!(
            early.last().map(String::as_str),
            Some("* fetched 20 missing messages of #lobby; more may be missing: /history fetches them")
        );
        let late = frame(&mut s, page_of(&said, 20, &probe)).lines;
        assert_eq!(
            late,
            [
                "* no message of #lobby is missing any more",
                "* the messages of #lobby missing above are all shown now",
            ]
        );
        // Nothing missing: /history pages back from the oldest shown.
        let out = line(&mut s, "/history 20");
        assert_eq!(
            out.sent,
            [ClientFrame::history("lobby", Some(3), Some(20))],
            "{:?}",
            out.lines
        );
    }
}
