//! The checks on the real frames that need no model, and the exactly-once oracle at the end.

use std::collections::{BTreeMap, BTreeSet};

use chatproto::testkit::oracle::{self, End, MsgInfo, Rx, SessionLog};
use chatproto::{ErrorCode, ServerFrame};
use proptest::prelude::*;

use crate::{canon, normalize, Model, Stats};

/// What the oracle is given for one life of a room (one epoch).
#[derive(Default)]
struct Deliveries {
    catalogue: BTreeMap<u64, MsgInfo>,
    /// One log per stay of a connection in the room: (client, room, log).
    stays: Vec<(usize, String, SessionLog)>,
}

/// What the checks on the real frames remember per connection.
#[derive(Default)]
struct Track {
    /// The last live seq per room.
    last: BTreeMap<String, u64>,
    /// The epoch of each room's last `entered`.
    epochs: BTreeMap<String, String>,
    /// The room just entered, its seq and the `since` given if the epoch
    /// given with it was the room's: a replay follows.
    entered: Option<(String, u64, Option<u64>)>,
    replay_last: u64,
    /// The `since` and epoch each room was last entered with (canonical name).
    since: BTreeMap<String, Option<(u64, String)>>,
}

/// The checks that need no model, and the random names bound as seen.
#[derive(Default)]
pub(crate) struct Checks {
    /// Room life (the model's name) <-> the real epoch.
    epochs: BTreeMap<String, String>,
    epoch_lives: BTreeMap<String, String>,
    /// Session (the model's index) <-> the real token.
    tokens: BTreeMap<usize, String>,
    token_sessions: BTreeMap<String, usize>,
    tracks: Vec<Track>,
    /// Per session: the messages (by text) it got live or replayed after `since`.
    seen: BTreeMap<usize, BTreeSet<String>>,
    /// For the oracle, by the real epoch.
    deliveries: BTreeMap<String, Deliveries>,
    /// Per client and room: the epoch and index of its current stay.
    staying: BTreeMap<(usize, String), (String, usize)>,
    pub(crate) stats: Stats,
}

impl Checks {
    /// The model's name for the real `epoch`, binding it to `expected` if
    /// neither was seen before.
    fn life(&mut self, epoch: &str, expected: Option<&str>) -> String {
        if let Some(life) = self.epoch_lives.get(epoch) {
            return life.clone();
        }
        match expected {
            Some(life) if !self.epochs.contains_key(life) => {
                self.epochs.insert(life.into(), epoch.into());
                self.epoch_lives.insert(epoch.into(), life.into());
                life.into()
            }
            _ => format!("an epoch the model cannot name: {epoch}"),
        }
    }

    /// Compare client `i`'s new frames with the model's, then check them.
    pub(crate) fn frames(
        &mut self,
        i: usize,
        real: &[ServerFrame],
        want: &[ServerFrame],
        model: &Model,
    ) -> Result<(), TestCaseError> {
        let mut got = Vec::new();
        for (k, f) in real.iter().enumerate() {
            let mut frame = normalize(f);
            if let ServerFrame::Entered { epoch, .. } = &mut frame {
                let expected = match want.get(k) {
                    Some(ServerFrame::Entered { epoch, .. }) => Some(epoch.as_str()),
                    _ => None,
                };
                *epoch = self.life(epoch, expected);
            }
            got.push(frame);
        }
        prop_assert_eq!(&got, &want.to_vec(), "client {}", i);
        let session = model.clients[i].session;
        while self.tracks.len() <= i {
            self.tracks.push(Track::default());
        }
        for f in real {
            self.frame(i, session, f, model)?;
        }
        Ok(())
    }

    fn frame(
        &mut self,
        i: usize,
        session: Option<usize>,
        f: &ServerFrame,
        model: &Model,
    ) -> Result<(), TestCaseError> {
        let t = &mut self.tracks[i];
        let (room, seq) = match f {
            ServerFrame::Welcome {
                seq,
                online,
                session: token,
                resumed,
                ..
            } => {
                // A resumed session keeps its token; a fresh one gets a new one.
                let s = session.expect("welcomed");
                let token = token.clone().expect("a v2 server gives a token");
                match self.tokens.get(&s) {
                    Some(known) => prop_assert_eq!(known, &token),
                    None => {
                        prop_assert!(!self.token_sessions.contains_key(&token), "token reused");
                        self.tokens.insert(s, token.clone());
                        self.token_sessions.insert(token, s);
                    }
                }
                self.stats.resumed += usize::from(*resumed == Some(true));
                if !online.is_empty() {
                    t.last.insert("lobby".into(), *seq);
                }
                return Ok(());
            }
            ServerFrame::Entered {
                room,
                epoch,
                seq,
                recovered,
                ..
            } => {
                // In the same life of the room, seq never goes back.
                if t.epochs.insert(room.clone(), epoch.clone()).as_ref() == Some(epoch) {
                    let last = t.last.get(room).copied().unwrap_or(0);
                    prop_assert!(*seq >= last, "entered {} at {} after {}", room, seq, last);
                }
                t.last.insert(room.clone(), *seq);
                // With another life's epoch, `since` means nothing: the
                // replay is the latest messages, seen or not.
                let since = match t.since.get(room) {
                    Some(Some((since, e))) if e == epoch => Some(*since),
                    _ => None,
                };
                t.entered = Some((room.clone(), *seq, since));
                t.replay_last = 0;
                self.stats.recovered += usize::from(*recovered);
                let nick = model.clients[i].nick.as_deref().expect("welcomed");
                let d = self.deliveries.entry(epoch.clone()).or_default();
                d.stays.push((
                    i,
                    room.clone(),
                    SessionLog {
                        nick: chatproto::nick_key(nick),
                        welcome: *seq,
                        received: Vec::new(),
                        sent: Vec::new(),
                        end: End::Left,
                    },
                ));
                let stay = (epoch.clone(), d.stays.len() - 1);
                self.staying.insert((i, room.clone()), stay);
                return Ok(());
            }
            ServerFrame::Msg {
                room,
                seq,
                text,
                replay: true,
                ..
            } => {
                let room = room.as_ref().expect("named");
                let Some((r, at, since)) = &t.entered else {
                    return Err(TestCaseError::fail(format!(
                        "client {i}: a replay before entered"
                    )));
                };
                prop_assert_eq!(r, room);
                prop_assert!(
                    t.replay_last < *seq && *seq <= *at,
                    "replay seq {} in {:?}",
                    seq,
                    t.entered
                );
                t.replay_last = *seq;
                let since = *since;
                self.catalogue(i, f);
                self.private(i, session, f, model)?;
                match since {
                    Some(since) => {
                        prop_assert!(*seq > since, "replayed {} after since {}", seq, since);
                        self.once(session, text)?;
                        self.stats.replayed_after_since += 1;
                    }
                    None => self.stats.replayed_latest += 1,
                }
                return Ok(());
            }
            ServerFrame::Msg {
                room, seq, text, ..
            } => {
                self.private(i, session, f, model)?;
                self.once(session, text)?;
                let print = self.catalogue(i, f);
                let room = room.clone().expect("named");
                self.received(
                    i,
                    &room,
                    Rx {
                        seq: *seq,
                        msg: print,
                    },
                );
                (room, *seq)
            }
            ServerFrame::Presence { room, seq, .. } => {
                let room = room.clone().expect("named");
                self.received(
                    i,
                    &room,
                    Rx {
                        seq: *seq,
                        msg: None,
                    },
                );
                (room, *seq)
            }
            ServerFrame::History { events, more, .. } => {
                for e in events {
                    let replayed = matches!(e, ServerFrame::Msg { replay: true, .. });
                    prop_assert!(replayed, "a history page holds {:?}", e);
                    self.private(i, session, e, model)?;
                    if matches!(e, ServerFrame::Msg { to, .. } if !to.is_empty()) {
                        self.stats.private_in_history += 1;
                    }
                }
                self.stats.history_more += usize::from(*more);
                return Ok(());
            }
            ServerFrame::Error { code, .. } => {
                self.stats.duplicates += usize::from(*code == ErrorCode::Duplicate);
                *self.stats.errors.entry(code.as_str()).or_default() += 1;
                return Ok(());
            }
            _ => return Ok(()),
        };
        let t = &mut self.tracks[i];
        t.entered = None;
        let last = t.last.entry(room.clone()).or_default();
        prop_assert!(
            seq > *last,
            "client {}: seq {} after {} in {}",
            i,
            seq,
            last,
            room
        );
        *last = seq;
        Ok(())
    }

    /// Put message `f`, received by client `i`, in the catalogue of its
    /// room's life (if the client entered the room: a v1 client never
    /// learns the epoch); returns its fingerprint.
    fn catalogue(&mut self, i: usize, f: &ServerFrame) -> Option<u64> {
        let ServerFrame::Msg {
            room: Some(room),
            seq,
            from,
            to,
            text,
            ..
        } = f
        else {
            return None;
        };
        let epoch = self.tracks[i].epochs.get(room)?;
        let from = chatproto::nick_key(from);
        let to: Vec<String> = to.iter().map(|t| chatproto::nick_key(t)).collect();
        let print = oracle::fingerprint(&from, &to, text.as_bytes());
        let d = self.deliveries.get_mut(epoch)?;
        d.catalogue
            .entry(*seq)
            .or_insert(MsgInfo { from, to, print });
        Some(print)
    }

    /// Client `i` received `rx` live in `room`: part of its stay there.
    fn received(&mut self, i: usize, room: &str, rx: Rx) {
        if let Some((epoch, k)) = self.staying.get(&(i, room.to_string())) {
            let d = self.deliveries.get_mut(epoch).expect("a stay's life");
            d.stays[*k].2.received.push(rx);
        }
    }

    /// Run the oracle over every life of every room: a stay whose
    /// connection is open and whose session is still in the room stayed;
    /// any other left.
    pub(crate) fn oracle(&mut self, model: &Model) -> Result<(), TestCaseError> {
        for (epoch, d) in &mut self.deliveries {
            for (k, (i, room, log)) in d.stays.iter_mut().enumerate() {
                let c = &model.clients[*i];
                let here = c.session.is_some_and(|s| {
                    model.sessions[s].conn == Some(*i) && model.sessions[s].rooms.contains(room)
                });
                let latest = self.staying.get(&(*i, room.clone())) == Some(&(epoch.clone(), k));
                if c.open && here && latest {
                    log.end = End::Stayed;
                }
            }
            let logs: Vec<SessionLog> = d.stays.iter().map(|(_, _, l)| l.clone()).collect();
            let verdict = oracle::check(&d.catalogue, &logs);
            prop_assert!(verdict.passed, "epoch {}: {:?}", epoch, verdict);
            self.stats.oracle_expected += verdict.expected;
        }
        Ok(())
    }

    /// A private message reaches only its sender's and recipients' sessions.
    fn private(
        &self,
        i: usize,
        session: Option<usize>,
        f: &ServerFrame,
        model: &Model,
    ) -> Result<(), TestCaseError> {
        let ServerFrame::Msg { text, .. } = f else {
            return Ok(());
        };
        let s = session.expect("a message before welcome");
        let (from, to) = &model.addressed[text];
        if let Some(to) = to {
            prop_assert!(
                *from == s || to.contains(&s),
                "client {} (session {}) got {:?}",
                i,
                s,
                f
            );
        }
        Ok(())
    }

    /// No session gets a message twice, live or replayed after `since`.
    fn once(&mut self, session: Option<usize>, text: &str) -> Result<(), TestCaseError> {
        let s = session.expect("welcomed");
        let fresh = self.seen.entry(s).or_default().insert(text.to_string());
        prop_assert!(fresh, "session {} got {:?} twice", s, text);
        Ok(())
    }

    /// The since (and epoch) client `j` will enter `room` with, remembered
    /// for the checks.
    pub(crate) fn entering(&mut self, j: usize, raw: &str, since: Option<(u64, String)>) {
        while self.tracks.len() <= j {
            self.tracks.push(Track::default());
        }
        if let Some(room) = canon(raw) {
            self.tracks[j].since.insert(room, since);
        }
    }
}

/// `since` for client `i` entering `raw`: the model's name for the room's
/// life and the last seq, and the same with the real epoch, if it knows them.
pub(crate) fn since_of(
    model: &Model,
    checks: &Checks,
    i: usize,
    raw: &str,
) -> Option<((String, u64), (u64, String))> {
    let room = canon(raw)?;
    let (life, last) = model.clients[i].view.get(&room)?;
    let life = life.clone()?;
    let epoch = checks
        .epochs
        .get(&life)
        .expect("a life seen is bound")
        .clone();
    Some(((life, *last), (*last, epoch)))
}
