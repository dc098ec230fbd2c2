//! An exactly-once oracle: every message a room stamped was delivered
//! exactly once, in seq order, to every recipient that stayed, judged from
//! what the clients recorded and nothing else.
//!
//! Input, per room life (one epoch; seqs restart with a new one): a
//! catalogue of every message seen (seq -> sender, recipients, fingerprint)
//! and, per session in the room, its received events (seq, and for
//! messages a fingerprint of sender, recipients and text), what it sent and
//! how the server answered, and how it ended.
//!
//! Who should have received message `s`: the sender (its echo); for a
//! message to everyone, every session that had entered before `s` (its
//! `welcome` seq, or its `entered` seq, is below `s`) and was still in the
//! room; otherwise the named recipients. "Still in the room" is certain for
//! a session that stayed to the end; for one that left, the room delivers
//! in seq order, so it must have everything up to the last seq it received
//! (its horizon) and nothing is asked of it past that.
//!
//! chatbench's soak feeds it what its clients recorded from a real server;
//! chatproto's model-based test feeds it what the simulated clients
//! received, after the reference model has checked every frame, so the
//! oracle and the model agree on every random walk the test makes.
//!
//! ```
//! use std::collections::BTreeMap;
//! use chatproto::testkit::oracle::{check, fingerprint, End, MsgInfo, Rx, SessionLog};
//!
//! // alice (entered at seq 1) says hi to everyone at seq 3; bob entered at 2.
//! let print = fingerprint("alice", &[], b"hi");
//! let catalogue = BTreeMap::from([(3, MsgInfo { from: "alice".into(), to: vec![], print })]);
//! let got = |nick: &str, welcome| SessionLog {
//!     nick: nick.into(),
//!     welcome,
//!     received: vec![Rx { seq: 3, msg: Some(print) }],
//!     sent: vec![],
//!     end: End::Stayed,
//! };
//! let verdict = check(&catalogue, &[got("alice", 1), got("bob", 2)]);
//! assert!(verdict.passed && verdict.delivered == 2);
//! // bob never got it: lost.
//! let mut bob = got("bob", 2);
//! bob.received.clear();
//! assert_eq!(check(&catalogue, &[got("alice", 1), bob]).lost, 1);
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A message as the room stamped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgInfo {
    /// The sender's nick.
    pub from: String,
    /// The named recipients, folded as the server compares nicknames
    /// (`chatproto::nick_key`); empty means everyone.
    pub to: Vec<String>,
    /// [`fingerprint`] of sender, recipients and text.
    pub print: u64,
}

/// One event a session received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rx {
    /// Its seq.
    pub seq: u64,
    /// `Some(fingerprint)` for a message, `None` for a presence event.
    pub msg: Option<u64>,
}

/// How the server answered one sent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Echoed with this seq: accepted.
    Echo(u64),
    /// Refused with this error code.
    Refused(String),
    /// No answer (yet) when the session ended.
    Unanswered,
}

/// One sent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// [`fingerprint`] of what was sent.
    pub print: u64,
    /// The server's answer.
    pub outcome: Outcome,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Still connected when the run ended.
    Stayed,
    /// It left on purpose.
    Left,
    /// The server closed it, or the socket failed: the reason.
    Dropped(String),
}

/// Everything one session (one connection, one nick) recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLog {
    /// Its nick, lowercase.
    pub nick: String,
    /// The welcome's seq.
    pub welcome: u64,
    /// Received events in arrival order.
    pub received: Vec<Rx>,
    /// Sent messages in sending order.
    pub sent: Vec<Sent>,
    /// How it ended.
    pub end: End,
}

/// What the checker found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Deliveries that had to happen.
    pub expected: u64,
    /// Of those, how many did.
    pub delivered: u64,
    /// `expected - delivered`.
    pub lost: u64,
    /// Events received twice in a row with the same seq.
    pub duplicates: u64,
    /// Events received with a seq below the previous one.
    pub out_of_order: u64,
    /// Messages received by a session they were not for.
    pub misdelivered: u64,
    /// Copies or echoes that differ from the message with their seq.
    pub mismatched: u64,
    /// Messages sent by a session that stayed and never answered.
    pub unanswered: u64,
    /// Sessions the server dropped.
    pub dropped: u64,
    /// Nothing above but `expected`/`delivered` is non-zero, and nothing was lost.
    pub passed: bool,
    /// The first few problems, described.
    pub problems: Vec<String>,
}

const MAX_PROBLEMS: usize = 10;

impl Verdict {
    fn problem(&mut self, p: impl FnOnce() -> String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p());
        }
    }
}

/// FNV-1a over sender, recipients and text: equal messages, equal prints.
pub fn fingerprint(from: &str, to: &[String], text: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(from.as_bytes());
    eat(&[0]);
    for t in to {
        eat(t.as_bytes());
        eat(&[1]);
    }
    eat(&[0]);
    eat(text);
    h
}

fn addressed_to(m: &MsgInfo, nick: &str) -> bool {
    m.to.is_empty() || m.from == nick || m.to.iter().any(|t| t == nick)
}

/// Check every session's log against the catalogue.
pub fn check(catalogue: &BTreeMap<u64, MsgInfo>, sessions: &[SessionLog]) -> Verdict {
    let mut v = Verdict::default();
    for s in sessions {
        if let End::Dropped(why) = &s.end {
            v.dropped += 1;
            v.problem(|| format!("{} was dropped: {why}", s.nick));
        }
        // Order: seq strictly increasing, above the welcome.
        let mut prev = s.welcome;
        let mut got: Vec<u64> = Vec::with_capacity(s.received.len());
        for rx in &s.received {
            if rx.seq <= s.welcome {
                v.misdelivered += 1;
                v.problem(|| {
                    format!(
                        "{} received seq {}, not after its welcome ({})",
                        s.nick, rx.seq, s.welcome
                    )
                });
                continue;
            }
            if rx.seq == prev {
                v.duplicates += 1;
                v.problem(|| format!("{} received seq {} twice", s.nick, rx.seq));
                continue;
            }
            if rx.seq < prev {
                v.out_of_order += 1;
                v.problem(|| format!("{} received seq {} after seq {prev}", s.nick, rx.seq));
                continue;
            }
            prev = rx.seq;
            let Some(print) = rx.msg else { continue };
            match catalogue.get(&rx.seq) {
                Some(m) if m.print != print => {
                    v.mismatched += 1;
                    v.problem(|| {
                        format!(
                            "{}'s copy of seq {} differs from another copy",
                            s.nick, rx.seq
                        )
                    });
                }
                Some(m) if !addressed_to(m, &s.nick) => {
                    v.misdelivered += 1;
                    v.problem(|| {
                        format!("{} received seq {}, which was not for it", s.nick, rx.seq)
                    });
                }
                Some(_) => got.push(rx.seq),
                None => {
                    v.mismatched += 1;
                    v.problem(|| {
                        format!(
                            "{} received seq {}, missing from the catalogue",
                            s.nick, rx.seq
                        )
                    });
                }
            }
        }
        // Completeness up to the horizon; `got` is strictly increasing.
        let horizon = match s.end {
            End::Stayed => u64::MAX,
            _ => prev,
        };
        if horizon > s.welcome {
            let mut mine = got.iter().peekable();
            for (&seq, m) in catalogue.range(s.welcome + 1..=horizon) {
                if !addressed_to(m, &s.nick) {
                    continue;
                }
                v.expected += 1;
                while mine.next_if(|&&g| g < seq).is_some() {}
                if mine.next_if(|&&g| g == seq).is_some() {
                    v.delivered += 1;
                } else {
                    v.problem(|| format!("{} never received seq {seq} from {}", s.nick, m.from));
                }
            }
        }
        // The sender's side: every message answered, every echo faithful.
        for sent in &s.sent {
            match &sent.outcome {
                Outcome::Echo(seq) => match catalogue.get(seq) {
                    Some(m) if m.print == sent.print => {}
                    _ => {
                        v.mismatched += 1;
                        v.problem(|| format!("{}'s echo seq {seq} is not what it sent", s.nick));
                    }
                },
                Outcome::Unanswered if s.end == End::Stayed => {
                    v.unanswered += 1;
                    v.problem(|| {
                        format!("{} stayed but a message it sent was never answered", s.nick)
                    });
                }
                _ => {}
            }
        }
    }
    v.lost = v.expected - v.delivered;
    v.passed = v.lost == 0
        && v.duplicates == 0
        && v.out_of_order == 0
        && v.misdelivered == 0
        && v.mismatched == 0
        && v.unanswered == 0
        && v.dropped == 0;
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(from: &str, to: &[&str], text: &str) -> MsgInfo {
        let to: Vec<String> = to.iter().map(|s| s.to_string()).collect();
        MsgInfo {
            print: fingerprint(from, &to, text.as_bytes()),
            from: from.into(),
            to,
        }
    }

    fn m(seq: u64, info: &MsgInfo) -> Rx {
        Rx {
            seq,
            msg: Some(info.print),
        }
    }

    fn p(seq: u64) -> Rx {
        Rx { seq, msg: None }
    }

    fn session(nick: &str, welcome: u64, received: Vec<Rx>, end: End) -> SessionLog {
        SessionLog {
            nick: nick.into(),
            welcome,
            received,
            sent: vec![],
            end,
        }
    }

    /// a and b join (seq 1, 2), a says hi to all (3), c joins (4), b whispers
    /// to a (5), c leaves (6), a says bye to all (7).
    fn scenario() -> (BTreeMap<u64, MsgInfo>, MsgInfo, MsgInfo, MsgInfo) {
        let hi = msg("a", &[], "hi");
        let psst = msg("b", &["a"], "psst");
        let bye = msg("a", &[], "bye");
        let cat = BTreeMap::from([(3, hi.clone()), (5, psst.clone()), (7, bye.clone())]);
        (cat, hi, psst, bye)
    }

    #[test]
    fn a_faithful_run_passes() {
        let (cat, hi, psst, bye) = scenario();
        let mut a = session(
            "a",
            0,
            vec![p(1), p(2), m(3, &hi), p(4), m(5, &psst), p(6), m(7, &bye)],
            End::Stayed,
        );
        a.sent = vec![
            Sent {
                print: hi.print,
                outcome: Outcome::Echo(3),
            },
            Sent {
                print: bye.print,
                outcome: Outcome::Echo(7),
            },
        ];
        let mut b = session(
            "b",
            1,
            vec![p(2), m(3, &hi), p(4), m(5, &psst), p(6), m(7, &bye)],
            End::Stayed,
        );
        b.sent = vec![Sent {
            print: psst.print,
            outcome: Outcome::Echo(5),
        }];
        // c joined after "hi", was not named in "psst", left before "bye".
        let c = session("c", 3, vec![p(4)], End::Left);
        let v = check(&cat, &[a, b, c]);
        assert!(v.passed, "{v:?}");
        // a: hi, psst, bye; b: hi, psst (echo), bye; c: nothing.
        assert_eq!((v.expected, v.delivered, v.lost), (6, 6, 0));
    }

    #[test]
    fn a_missing_delivery_to_a_stayer_is_lost() {
        let (cat, hi, _psst, bye) = scenario();
        let a = session(
            "a",
            0,
            vec![p(1), p(2), m(3, &hi), p(4), p(6), m(7, &bye)],
            End::Stayed,
        );
        let v = check(&cat, &[a]);
        assert!(!v.passed);
        assert_eq!((v.expected, v.delivered, v.lost), (3, 2, 1));
        assert!(
            v.problems[0].contains("never received seq 5"),
            "{:?}",
            v.problems
        );
    }

    #[test]
    fn a_stayer_must_receive_the_tail_too() {
        let (cat, hi, psst, _bye) = scenario();
        let a = session(
            "a",
            0,
            vec![p(1), p(2), m(3, &hi), p(4), m(5, &psst)],
            End::Stayed,
        );
        assert_eq!(check(&cat, &[a]).lost, 1);
    }

    #[test]
    fn a_leaver_owes_nothing_past_its_horizon_but_everything_before() {
        let (cat, hi, psst, _bye) = scenario();
        // Left after seeing seq 5: "bye" (7) is not owed.
        let ok = session("a", 0, vec![p(1), m(3, &hi), m(5, &psst)], End::Left);
        assert!(check(&cat, &[ok]).passed);
        // Saw seq 5 but not seq 3: a gap before the horizon is a loss.
        let gap = session("a", 0, vec![p(1), m(5, &psst)], End::Left);
        let v = check(&cat, &[gap]);
        assert_eq!((v.expected, v.lost), (2, 1));
    }

    #[test]
    fn duplicates_reordering_and_misdelivery_are_caught() {
        let (cat, hi, psst, bye) = scenario();
        let dup = session(
            "a",
            0,
            vec![m(3, &hi), m(3, &hi), m(5, &psst), m(7, &bye)],
            End::Stayed,
        );
        let v = check(&cat, &[dup]);
        assert_eq!((v.duplicates, v.lost, v.passed), (1, 0, false));
        let swapped = session(
            "a",
            0,
            vec![m(5, &psst), m(3, &hi), m(7, &bye)],
            End::Stayed,
        );
        let v = check(&cat, &[swapped]);
        assert_eq!((v.out_of_order, v.lost), (1, 1));
        // c is not named in b's whisper to a.
        let nosy = session("c", 3, vec![m(5, &psst)], End::Left);
        assert_eq!(check(&cat, &[nosy]).misdelivered, 1);
        // Nothing from before the welcome.
        let early = session("c", 3, vec![m(3, &hi)], End::Left);
        assert_eq!(check(&cat, &[early]).misdelivered, 1);
    }

    #[test]
    fn altered_copies_and_bad_echoes_are_mismatches() {
        let (cat, hi, psst, bye) = scenario();
        let forged = msg("a", &[], "HI");
        let a = session(
            "a",
            0,
            vec![m(3, &forged), m(5, &psst), m(7, &bye)],
            End::Stayed,
        );
        let v = check(&cat, &[a]);
        assert_eq!(v.mismatched, 1);
        assert_eq!(v.lost, 1, "an altered copy is not a delivery");
        let mut b = session(
            "b",
            1,
            vec![m(3, &hi), m(5, &psst), m(7, &bye)],
            End::Stayed,
        );
        b.sent = vec![Sent {
            print: fingerprint("b", &["a".into()], b"something else"),
            outcome: Outcome::Echo(5),
        }];
        assert_eq!(check(&cat, &[b]).mismatched, 1);
    }

    #[test]
    fn unanswered_matters_only_for_stayers_and_drops_fail() {
        let (cat, hi, psst, bye) = scenario();
        let lost_echo = Sent {
            print: 1,
            outcome: Outcome::Unanswered,
        };
        let mut stayer = session(
            "a",
            0,
            vec![m(3, &hi), m(5, &psst), m(7, &bye)],
            End::Stayed,
        );
        stayer.sent = vec![lost_echo.clone()];
        assert_eq!(check(&cat, &[stayer]).unanswered, 1);
        let mut leaver = session("c", 3, vec![], End::Left);
        leaver.sent = vec![
            lost_echo,
            Sent {
                print: 2,
                outcome: Outcome::Refused("unknown_nick".into()),
            },
        ];
        assert!(check(&cat, &[leaver]).passed);
        let dropped = session("c", 3, vec![], End::Dropped("slow_consumer".into()));
        let v = check(&cat, &[dropped]);
        assert_eq!((v.dropped, v.passed), (1, false));
    }

    #[test]
    fn fingerprints_see_every_field() {
        let base = fingerprint("a", &["b".into()], b"x");
        assert_ne!(base, fingerprint("b", &["b".into()], b"x"));
        assert_ne!(base, fingerprint("a", &[], b"x"));
        assert_ne!(base, fingerprint("a", &["b".into()], b"y"));
        assert_ne!(
            fingerprint("a", &["bc".into()], b""),
            fingerprint("a", &["b".into(), "c".into()], b"")
        );
        assert_eq!(base, fingerprint("a", &["b".into()], b"x"));
    }
}
