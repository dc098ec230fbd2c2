//! Private and group messages typed while the connection was down (or
//! sent and not answered when it went), refused `unknown_nick` just after
//! the reconnect: after a server's restart the people they name may not
//! be back yet, though they are a second later. Such a message waits
//! (for [`ABSENT_WINDOW_MS`] after the reconnect at most) for everyone it
//! names to be online in its room, and is sent once again then; past the
//! window it is refused as the server said. A message typed while
//! connected is refused at once, as ever.

use std::collections::HashMap;

use chatproto::{nick_key, ErrorCode};

use super::Session;
use crate::render::Line;

/// How long after a reconnect a private or group message typed while
/// offline (or queued across the loss) that is refused `unknown_nick`
/// waits for the people it names to come back, before the refusal is
/// shown.
pub const ABSENT_WINDOW_MS: u64 = 10_000;

/// How many times one message is sent again so: a server that refuses it
/// while the client sees everyone online (a list not yet up to date) is
/// believed after that.
const RESENDS: u32 = 2;

/// A private or group message that may wait for its people (see the
/// [module docs](self)).
#[derive(Debug, Clone)]
pub(super) struct Offline {
    pub(super) room: String,
    pub(super) to: Vec<String>,
    pub(super) text: String,
    /// Times sent again already.
    pub(super) resends: u32,
}

/// One refused and waiting for its people.
#[derive(Debug, Clone)]
pub(super) struct Absent {
    /// The id the ledger knows its line by (the refused one).
    pub(super) id: String,
    pub(super) msg: Offline,
    /// The server's refusal, said if the people do not come back in time.
    pub(super) code: ErrorCode,
    pub(super) message: String,
    /// When the window ends, on the session's clock.
    pub(super) until: u64,
}

impl Session {
    /// Private and group messages not acknowledged now may wait for
    /// their people if refused just after the next reconnect: the
    /// connection is lost, or a line was sent while offline.
    pub(super) fn note_offline_messages(&mut self) {
        let pending: Vec<(String, Offline)> = self
            .client
            .pending()
            .filter(|p| !p.to.is_empty())
            .map(|p| {
                let msg = Offline {
                    room: p.room.to_owned(),
                    to: p.to.to_vec(),
                    text: p.text.to_owned(),
                    resends: 0,
                };
                (p.id.to_owned(), msg)
            })
            .collect();
        for (id, msg) in pending {
            self.offline.entry(id).or_insert(msg);
        }
    }

    /// An `unknown_nick` for message `id`: whether it waits for its
    /// people instead of being refused now (typed while offline or queued
    /// across the loss, and refused within [`ABSENT_WINDOW_MS`] of the
    /// reconnect).
    pub(super) fn wait_for_absent(&mut self, id: &str, code: ErrorCode, message: &str) -> bool {
        if code != ErrorCode::UnknownNick {
            return false;
        }
        let Some(rejoined) = self.rejoined_at else {
            return false;
        };
        let until = rejoined.saturating_add(ABSENT_WINDOW_MS);
        if self.now >= until {
            return false;
        }
        let Some(msg) = self.offline.remove(id) else {
            return false;
        };
        if msg.resends >= RESENDS {
            return false;
        }
        self.ledger.hold(id, &msg.room);
        self.info(format!(
            "not online yet: {}; sent once back (waiting up to {} s): {}",
            msg.to.join(", "),
            ABSENT_WINDOW_MS / 1000,
            super::as_typed(&msg.room, &msg.to, &msg.text)
        ));
        self.absent.push(Absent {
            id: id.to_owned(),
            msg,
            code,
            message: message.to_owned(),
            until,
        });
        true
    }

    /// Send again the messages whose people are all online in their room
    /// now (while joined, and the room's list whole: its replay over);
    /// whether any was.
    pub(super) fn send_to_those_back(&mut self) -> bool {
        if self.absent.is_empty() || !self.client.is_joined() {
            return false;
        }
        let mut sent = false;
        let mut i = 0;
        while i < self.absent.len() {
            let room = &self.absent[i].msg.room;
            let ready = !self.replaying.contains_key(room) && {
                let online: Vec<String> =
                    self.client.roster(room).into_iter().map(nick_key).collect();
                self.absent[i]
                    .msg
                    .to
                    .iter()
                    .all(|n| online.contains(&nick_key(n)))
            };
            if !ready {
                i += 1;
                continue;
            }
            let Absent { id, mut msg, .. } = self.absent.remove(i);
            msg.resends += 1;
            let new = self
                .client
                .send_msg(&msg.room, msg.to.clone(), msg.text.clone());
            self.ledger.rename(&id, &new);
            self.offline.insert(new, msg);
            sent = true;
        }
        sent
    }

    /// The end of the waiting window: refused now, as the server said.
    pub(super) fn give_up_on_absent(&mut self, all: bool) {
        let now = self.now;
        let (due, kept) = std::mem::take(&mut self.absent)
            .into_iter()
            .partition(|a| all || a.until <= now);
        self.absent = kept;
        for a in due {
            let Absent {
                id,
                code,
                message,
                msg,
                ..
            } = a;
            self.ledger.refuse(&id, code.as_str(), &message);
            let message = self.with_quote(message, &msg.room, &msg.to, &msg.text);
            self.print(Line::Error {
                code: code.as_str().to_owned(),
                message,
            });
        }
    }

    /// The connection went: what waits for its people is sent again on
    /// the next one (queued offline), and may wait again after it.
    pub(super) fn requeue_absent(&mut self) {
        for Absent { id, msg, .. } in std::mem::take(&mut self.absent) {
            let new = self
                .client
                .send_msg(&msg.room, msg.to.clone(), msg.text.clone());
            self.ledger.rename(&id, &new);
            self.offline.insert(new, msg);
        }
    }

    /// Forget what no longer waits for an answer.
    pub(super) fn prune_offline(&mut self) {
        if !self.offline.is_empty() {
            let client = &self.client;
            self.offline.retain(|id, _| client.is_unacknowledged(id));
        }
    }

    /// The earliest end of a waiting window.
    pub(super) fn next_absent_deadline(&self) -> Option<u64> {
        self.absent.iter().map(|a| a.until).min()
    }
}

/// The messages that may wait, by id.
pub(super) type OfflineMessages = HashMap<String, Offline>;

#[cfg(test)]
mod tests {
    use chatproto::{ClientFrame, ErrorCode, ServerFrame};

    use super::ABSENT_WINDOW_MS;
    use crate::ledger::OutcomeKind;
    use crate::session::testkit::*;
    use crate::session::{Mode, Session};

    /// `f` handled at `at` ms.
    fn at(s: &mut Session, at: u64, f: ServerFrame) -> Out {
        s.handle_frame(at, f);
        drain(s)
    }

    /// The messages among `sent`: (id, to, text).
    fn msgs(sent: &[ClientFrame]) -> Vec<(String, Vec<String>, String)> {
        sent.iter()
            .filter_map(|f| match f {
                ClientFrame::Msg {
                    id: Some(id),
                    to,
                    text,
                    ..
                } => Some((id.clone(), to.clone(), text.clone())),
                _ => None,
            })
            .collect()
    }

    fn unknown_nick(id: &str, who: &str) -> ServerFrame {
        ServerFrame::error_v2(
            ErrorCode::UnknownNick,
            format!("not online: {who}; nothing was delivered"),
            Some(id.into()),
            Some("lobby".into()),
            None,
        )
    }

    fn refused(out: &Out) -> Vec<u64> {
        out.outcomes
            .iter()
            .filter(|o| matches!(o.kind, OutcomeKind::Refused { .. }))
            .map(|o| o.line)
            .collect()
    }

    /// alice lost the connection with `@carol queued` unanswered, typed
    /// `@Bob private while down` while it was down, and is back at 1000
    /// ms, in #lobby again with nobody else yet: what was sent then
    /// (the two messages, by id and text).
    fn back_with_two_waiting(s: &mut Session) -> Vec<(String, Vec<String>, String)> {
        let queued = the_id(&line(s, "@carol queued").sent);
        s.handle_disconnected();
        assert!(line(s, "@Bob private while down").sent.is_empty());
        s.handle_connected(1000);
        let mut sent = drain(s).sent;
        sent.extend(at(s, 1000, welcome("alice", true)).sent);
        sent.extend(at(s, 1000, entered("lobby", 1, &["alice"], true)).sent);
        sent.extend(at(s, 1000, presence("lobby", 2, "alice", true)).sent);
        let sent = msgs(&sent);
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(sent[0].0, queued);
        sent
    }

    /// Typed while the server restarted, to people who come back a
    /// moment after alice: refused `unknown_nick` (they were not back
    /// yet), then sent again as they come, and delivered. Before, each
    /// was refused at once, though its people were back within a second.
    #[test]
    fn a_message_typed_while_offline_waits_for_its_people_after_the_reconnect() {
        let mut s = joined(&["lobby"]);
        let sent = back_with_two_waiting(&mut s);
        let (carol_id, bob_id) = (&sent[0].0, &sent[1].0);
        let out = at(&mut s, 1200, unknown_nick(bob_id, "Bob"));
        assert!(refused(&out).is_empty(), "{:?}", out.outcomes);
        assert_eq!(
            out.lines,
            [
                "* not online yet: Bob; sent once back (waiting up to 10 s): \
                 #lobby: @Bob: private while down"
            ]
        );
        let out = at(&mut s, 1300, unknown_nick(carol_id, "carol"));
        assert!(
            out.lines.iter().all(|l| !l.starts_with('!')),
            "{:?}",
            out.lines
        );
        assert!(s
            .poll_timeout()
            .is_some_and(|t| t <= 1000 + ABSENT_WINDOW_MS));
        // Bob is back: his message goes again, carol's waits for her.
        let out = at(&mut s, 1500, presence("lobby", 3, "Bob", true));
        let again = msgs(&out.sent);
        assert_eq!(again.len(), 1, "{again:?}");
        assert_eq!(again[0].1, ["Bob"]);
        assert_eq!(again[0].2, "private while down");
        let out = at(&mut s, 1600, presence("lobby", 4, "carol", true));
        let carol_again = msgs(&out.sent);
        assert_eq!(carol_again.len(), 1);
        assert_eq!(carol_again[0].2, "queued");
        // Delivered: both lines are sent, none refused.
        let mut outcomes = at(
            &mut s,
            1700,
            echo("lobby", 5, "alice", "queued", &carol_again[0].0),
        )
        .outcomes;
        let bob_echo = echo("lobby", 6, "alice", "private while down", &again[0].0);
        outcomes.extend(at(&mut s, 1800, bob_echo).outcomes);
        let kinds: Vec<(u64, &OutcomeKind)> = outcomes.iter().map(|o| (o.line, &o.kind)).collect();
        assert!(
            matches!(
                &kinds[..],
                [
                    (1, OutcomeKind::Sent { seq: Some(5), .. }),
                    (2, OutcomeKind::Sent { seq: Some(6), .. })
                ]
            ),
            "{kinds:?}"
        );
        assert!(s.absent.is_empty() && s.offline.is_empty());
    }

    /// Nobody came back within the window: refused then, as the server
    /// said (the line goes back into the input, or fails the run).
    #[test]
    fn past_the_window_the_refusal_is_said() {
        let mut s = joined(&["lobby"]);
        let sent = back_with_two_waiting(&mut s);
        let out = at(&mut s, 1200, unknown_nick(&sent[1].0, "Bob"));
        assert!(refused(&out).is_empty());
        let until = 1000 + ABSENT_WINDOW_MS;
        assert_eq!(s.poll_timeout(), Some(until));
        s.handle_timeout(until - 1);
        assert!(refused(&drain(&mut s)).is_empty());
        s.handle_timeout(until);
        let out = drain(&mut s);
        assert_eq!(
            out.lines,
            ["! unknown_nick: not online: Bob; nothing was delivered; your line: @Bob: private while down"]
        );
        // Line 1 (carol's) still waits; line 2 is refused after it.
        let out = at(
            &mut s,
            until + 1,
            echo("lobby", 3, "alice", "queued", &sent[0].0),
        );
        let lines: Vec<u64> = out.outcomes.iter().map(|o| o.line).collect();
        assert_eq!(lines, [1, 2]);
        assert_eq!(refused(&out), [2]);
        // A refusal past the window is said at once too.
        let late = the_id(&line(&mut s, "@Bob later").sent);
        let out = at(&mut s, until + 2, unknown_nick(&late, "Bob"));
        assert_eq!(
            out.lines,
            ["! unknown_nick: not online: Bob; nothing was delivered; your line: @Bob: later"]
        );
    }

    /// With `--json`, the refusal said once the window has run out is the
    /// server's words alone, as every other refusal is there (the line's
    /// outcome says which it was): no `; your line: ` quote.
    #[test]
    fn with_json_the_refusal_past_the_window_is_not_quoted() {
        let mut s = joined(&["lobby"]);
        s.set_mode(Mode {
            echo_frames: true,
            ..Mode::default()
        });
        let sent = back_with_two_waiting(&mut s);
        let out = at(&mut s, 1200, unknown_nick(&sent[1].0, "Bob"));
        assert!(refused(&out).is_empty());
        let until = 1000 + ABSENT_WINDOW_MS;
        s.handle_timeout(until);
        let out = drain(&mut s);
        assert_eq!(
            out.lines,
            ["! unknown_nick: not online: Bob; nothing was delivered"]
        );
    }

    /// A line typed while connected is refused at once, even just after
    /// a reconnect.
    #[test]
    fn a_message_typed_while_connected_is_refused_at_once() {
        let mut s = joined(&["lobby"]);
        back(&mut s, 1000);
        at(&mut s, 1000, entered("lobby", 1, &["alice"], true));
        at(&mut s, 1000, presence("lobby", 2, "alice", true));
        let id = the_id(&line(&mut s, "@Bob typed online").sent);
        let out = at(&mut s, 1100, unknown_nick(&id, "Bob"));
        assert_eq!(
            out.lines,
            ["! unknown_nick: not online: Bob; nothing was delivered; your line: @Bob: typed online"]
        );
        assert_eq!(refused(&out), [1]);
    }
}
