//! The model's rules for sessions: join and resume, the end of a connection, and time passing.

use std::collections::{BTreeMap, BTreeSet};

use chatproto::{ErrorCode, Limits, ServerFrame};

use crate::{
    canon, Model, Session, FANOUT_MAX, HISTORY_PAGE, IDLE_PING, JOIN_POOL, JOIN_TIMEOUT,
    MAX_RECIPIENTS, MAX_ROOMS, PONG_TIMEOUT, REPLAY_LIMIT, RESUME_WINDOW, START,
};

impl Model {
    pub(crate) fn join(
        &mut self,
        i: usize,
        p: usize,
        rooms: Option<Vec<&str>>,
        resume: Option<usize>,
    ) {
        if self.clients[i].session.is_some() {
            return self.error(i, ErrorCode::AlreadyJoined, None, None);
        }
        let (nick, key, class) = JOIN_POOL[p];
        let Some(key) = key else {
            return self.error(i, ErrorCode::NickInvalid, None, None);
        };
        // A resume of a session still connected, under its nickname,
        // closes that connection first.
        if let Some(old) = resume
            .filter(|&t| self.sessions[t].key == key)
            .and_then(|t| self.sessions[t].conn)
        {
            self.close(old, Some(ErrorCode::ResumedElsewhere));
        }
        let online = |pred: &dyn Fn(&Session) -> bool| {
            self.sessions.iter().any(|s| s.conn.is_some() && pred(s))
        };
        if online(&|s| s.key == key) {
            return self.error(i, ErrorCode::NickTaken, None, None);
        }
        if online(&|s| s.class == class) {
            return self.error(i, ErrorCode::NickInvalid, None, None);
        }
        let mono = self.mono();
        // A resume continues the session if it ended in time and was this
        // nickname's; otherwise the join is a fresh session.
        let resumed = resume.filter(|&t| {
            let t = &self.sessions[t];
            t.conn.is_none() && t.key == key && t.ended_at.is_some_and(|e| mono < e + RESUME_WINDOW)
        });
        let mut closed_for = None;
        let s = match resumed {
            Some(s) => {
                let t = &mut self.sessions[s];
                closed_for = t.closed_for.take();
                t.conn = Some(i);
                t.nick = nick.into();
                t.ended_at = None;
                s
            }
            None => {
                self.sessions.push(Session {
                    nick: nick.into(),
                    key: key.into(),
                    class,
                    conn: Some(i),
                    ended_at: None,
                    rooms: BTreeSet::new(),
                    ids: BTreeMap::new(),
                    refused: Vec::new(),
                    closed_for: None,
                });
                self.sessions.len() - 1
            }
        };
        self.clients[i].session = Some(s);
        self.clients[i].nick = Some(nick.into());
        let v1 = rooms.is_none();
        let mut rooms = rooms.unwrap_or(vec!["lobby"]);
        // Only the first MAX_ROOMS names are tried; the rest get one error.
        let left_out = rooms.len().saturating_sub(MAX_ROOMS);
        rooms.truncate(MAX_ROOMS);
        // The welcome speaks of `lobby` if the join enters it: the rooms
        // listed are entered in order, each once, up to the limit.
        let mut entering = BTreeSet::new();
        for raw in &rooms {
            if let Some(r) = canon(raw) {
                if entering.len() < MAX_ROOMS {
                    entering.insert(r);
                }
            }
        }
        let (seq, online) = match self.rooms.get("lobby") {
            _ if !entering.contains("lobby") => (0, Vec::new()),
            None => (0, vec![nick.to_string()]),
            Some(r) => {
                let mut online: Vec<String> = r
                    .members
                    .iter()
                    .map(|&m| self.sessions[m].nick.clone())
                    .collect();
                online.push(nick.into());
                online.sort();
                (r.seq, online)
            }
        };
        if !online.is_empty() {
            self.clients[i].view.insert("lobby".into(), (None, seq));
        }
        let welcome = ServerFrame::welcome(
            nick,
            seq,
            online,
            None,
            Some(resumed.is_some()),
            Some(
                Limits::new(
                    65_536,
                    MAX_RECIPIENTS as u64,
                    REPLAY_LIMIT as u64,
                    HISTORY_PAGE as u64,
                )
                .with_presence_fanout_max(FANOUT_MAX as u64)
                .with_id_window(chatproto::DEFAULT_ID_WINDOW as u64),
            ),
        )
        .with_closed_for(closed_for);
        self.push(i, welcome);
        for raw in rooms {
            self.enter(i, raw, None, v1);
        }
        if left_out > 0 {
            self.error(i, ErrorCode::TooManyRooms, None, None);
        }
    }

    /// The connection ends (with an error frame first if the server ends it).
    pub(crate) fn close(&mut self, i: usize, error: Option<ErrorCode>) {
        if let Some(code) = error {
            self.error(i, code, None, None);
        }
        self.clients[i].open = false;
        let Some(s) = self.clients[i].session else {
            return;
        };
        let mono = self.mono();
        self.sessions[s].conn = None;
        self.sessions[s].ended_at = Some(mono);
        // Said by the next resume's welcome.
        self.sessions[s].closed_for = error.filter(|c| *c != ErrorCode::ResumedElsewhere);
        for room in std::mem::take(&mut self.sessions[s].rooms) {
            self.leave(&room, s, None);
        }
    }

    /// Time passes: every deadline on the way is met at its own instant,
    /// join timeouts first, then pings, then unanswered pings.
    pub(crate) fn advance(&mut self, ms: u64) {
        let until = self.mono() + ms;
        loop {
            let due = self
                .clients
                .iter()
                .filter(|c| c.open)
                .map(|c| match (c.session, c.ping_sent_at) {
                    (None, _) => c.connected_at + JOIN_TIMEOUT,
                    (Some(_), None) => c.last_heard + IDLE_PING,
                    (Some(_), Some(t)) => t + PONG_TIMEOUT,
                })
                .min();
            let Some(t) = due.filter(|&t| t <= until) else {
                break;
            };
            self.now = START + t;
            for i in 0..self.clients.len() {
                let c = &self.clients[i];
                if c.open && c.session.is_none() && c.connected_at + JOIN_TIMEOUT <= t {
                    self.close(i, Some(ErrorCode::Timeout));
                }
            }
            for i in 0..self.clients.len() {
                let c = &mut self.clients[i];
                if c.open
                    && c.session.is_some()
                    && c.ping_sent_at.is_none()
                    && c.last_heard + IDLE_PING <= t
                {
                    c.ping_sent_at = Some(t);
                    self.push(i, ServerFrame::Ping);
                }
            }
            for i in 0..self.clients.len() {
                let c = &self.clients[i];
                if c.open && c.ping_sent_at.is_some_and(|p| p + PONG_TIMEOUT <= t) {
                    self.close(i, Some(ErrorCode::Timeout));
                }
            }
        }
        self.now = START + until;
    }
}
