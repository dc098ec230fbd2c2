//! The model's rules in rooms: enter, leave and part, messages, history and the room list.

use chatproto::PresenceStatus::{Offline, Online};
use chatproto::{ErrorCode, RoomInfo, ServerFrame};

use crate::{
    canon, error, Message, Model, Room, FANOUT_MAX, HISTORY_PAGE, MAX_RECIPIENTS, MAX_ROOMS,
    REPLAY_LIMIT,
};

impl Model {
    /// Client `i` enters `raw`, having seen `since` (the room's life and
    /// the last seq) if it says.
    pub(crate) fn enter(&mut self, i: usize, raw: &str, since: Option<(String, u64)>, v1: bool) {
        let Some(s) = self.joined(i) else { return };
        let Some(room) = canon(raw) else {
            let echo = (raw.len() <= 32).then(|| raw.to_string());
            return self.error(i, ErrorCode::RoomInvalid, echo, None);
        };
        if self.sessions[s].rooms.contains(&room) {
            return self.error(i, ErrorCode::AlreadyInRoom, Some(room), None);
        }
        if self.sessions[s].rooms.len() >= MAX_ROOMS {
            return self.error(i, ErrorCode::TooManyRooms, Some(room), None);
        }
        if !self.rooms.contains_key(&room) {
            self.lives += 1;
            let life = format!("{room}#{}", self.lives);
            self.rooms.insert(
                room.clone(),
                Room {
                    life,
                    seq: 0,
                    members: Vec::new(),
                    history: Vec::new(),
                },
            );
        }
        self.sessions[s].rooms.insert(room.clone());
        self.clients[i].rooms.insert(room.clone());
        let seq = self.stamp(&room);
        if !v1 {
            let r = &self.rooms[&room];
            let life = r.life.clone();
            let mut online: Vec<String> = r
                .members
                .iter()
                .map(|&m| self.sessions[m].nick.clone())
                .collect();
            online.push(self.sessions[s].nick.clone());
            online.sort();
            let (replay, recovered) = match since {
                Some((l, last)) if l == life => {
                    let (page, more) = self.visible(s, &room, last, u64::MAX, REPLAY_LIMIT);
                    (page, !more)
                }
                _ => (
                    self.visible(s, &room, 0, u64::MAX, REPLAY_LIMIT.min(50)).0,
                    false,
                ),
            };
            let entered =
                ServerFrame::entered(room.clone(), life.clone(), seq - 1, 1, online, recovered);
            self.push(i, entered);
            self.clients[i]
                .view
                .insert(room.clone(), (Some(life), seq - 1));
            for frame in replay {
                self.push(i, frame);
            }
        }
        let frame = self.presence(&room, seq, s, Online);
        let r = self.rooms.get_mut(&room).expect("created above");
        r.members.push(s);
        let to = if r.members.len() > FANOUT_MAX {
            vec![i]
        } else {
            r.members
                .clone()
                .into_iter()
                .map(|m| self.conn(m))
                .collect()
        };
        for c in to {
            self.push(c, frame.clone());
        }
    }

    /// Session `s` leaves `room`; `subject` is its connection if it is
    /// still there to see itself go.
    pub(crate) fn leave(&mut self, room: &str, s: usize, subject: Option<usize>) {
        let seq = self.stamp(room);
        let frame = self.presence(room, seq, s, Offline);
        let r = self.rooms.get_mut(room).expect("the room exists");
        let before = r.members.len();
        r.members.retain(|&m| m != s);
        let mut to: Vec<usize> = Vec::new();
        if before <= FANOUT_MAX {
            to = r
                .members
                .clone()
                .into_iter()
                .map(|m| self.conn(m))
                .collect();
        }
        to.extend(subject);
        for c in to {
            self.push(c, frame.clone());
        }
        let r = &self.rooms[room];
        if r.members.is_empty() && r.history.is_empty() {
            self.rooms.remove(room);
        }
    }

    pub(crate) fn part(&mut self, i: usize, raw: &str) {
        let Some(s) = self.joined(i) else { return };
        let Some(room) = canon(raw) else {
            let echo = (raw.len() <= 32).then(|| raw.to_string());
            return self.error(i, ErrorCode::RoomInvalid, echo, None);
        };
        if !self.sessions[s].rooms.remove(&room) {
            return self.error(i, ErrorCode::NotInRoom, Some(room), None);
        }
        self.clients[i].rooms.remove(&room);
        self.leave(&room, s, Some(i));
    }

    pub(crate) fn msg(
        &mut self,
        i: usize,
        room: Option<&str>,
        to: &[&str],
        text: String,
        id: Option<String>,
    ) {
        let Some(s) = self.joined(i) else { return };
        let raw = room.unwrap_or("lobby");
        let echo = id
            .clone()
            .filter(|id| (1..=64).contains(&id.chars().count()));
        let Some(room) = canon(raw) else {
            let raw = (raw.len() <= 32).then(|| raw.to_string());
            return self.error(i, ErrorCode::RoomInvalid, raw, echo);
        };
        if !self.sessions[s].rooms.contains(&room) {
            self.refuse(s, &echo, ErrorCode::NotInRoom);
            return self.error(i, ErrorCode::NotInRoom, Some(room), echo);
        }
        if let Some(id) = &id {
            let n = id.chars().count();
            if n == 0 || n > 64 {
                return self.error(i, ErrorCode::BadFrame, Some(room), None);
            }
            if let Some((r, seq)) = self.sessions[s].ids.get(id) {
                let dup = error(
                    ErrorCode::Duplicate,
                    Some(r.clone()),
                    Some(id.clone()),
                    Some(*seq),
                );
                return self.push(i, dup);
            }
            let refused = self.sessions[s].refused.iter().find(|(r, _)| r == id);
            if let Some(&(_, code)) = refused {
                return self.error(i, code, Some(room), echo);
            }
        }
        if to.len() > MAX_RECIPIENTS {
            return self.error(i, ErrorCode::TooManyRecipients, Some(room), echo);
        }
        let mut recipients: Vec<usize> = Vec::new();
        for name in to {
            match self.online(&chatproto::nick_key(name)) {
                Some(t) if self.sessions[t].rooms.contains(&room) => {
                    if !recipients.contains(&t) {
                        recipients.push(t);
                    }
                }
                _ => {
                    self.refuse(s, &echo, ErrorCode::UnknownNick);
                    return self.error(i, ErrorCode::UnknownNick, Some(room), echo);
                }
            }
        }
        let seq = self.stamp(&room);
        if let Some(id) = &id {
            self.sessions[s].ids.insert(id.clone(), (room.clone(), seq));
        }
        let m = Message {
            seq,
            from: s,
            from_nick: self.sessions[s].nick.clone(),
            to: recipients
                .iter()
                .map(|&t| (t, self.sessions[t].nick.clone()))
                .collect(),
            text: text.clone(),
            ts: self.now,
            id,
        };
        let (mine, theirs) = (m.frame(&room, true, false), m.frame(&room, false, false));
        let private = (!recipients.is_empty()).then(|| recipients.iter().copied().collect());
        self.addressed.insert(text, (s, private));
        let r = self.rooms.get_mut(&room).expect("the sender is in it");
        r.history.push(m);
        let mut to = if recipients.is_empty() {
            r.members.clone()
        } else {
            recipients
        };
        if !to.contains(&s) {
            to.push(s);
        }
        for t in to {
            let c = self.conn(t);
            self.push(c, if t == s { mine.clone() } else { theirs.clone() });
        }
    }

    /// Remember a refused message's id (one that kept the rule).
    fn refuse(&mut self, s: usize, id: &Option<String>, code: ErrorCode) {
        let Some(id) = id else { return };
        let refused = &mut self.sessions[s].refused;
        match refused.iter_mut().find(|(r, _)| r == id) {
            Some(known) => known.1 = code,
            None => refused.push((id.clone(), code)),
        }
        if refused.len() > 64 {
            refused.remove(0);
        }
    }

    pub(crate) fn history(&mut self, i: usize, raw: &str, before: Option<u64>, limit: Option<u64>) {
        let Some(s) = self.joined(i) else { return };
        let Some(room) = canon(raw) else {
            let echo = (raw.len() <= 32).then(|| raw.to_string());
            return self.error(i, ErrorCode::RoomInvalid, echo, None);
        };
        if !self.sessions[s].rooms.contains(&room) {
            return self.error(i, ErrorCode::NotInRoom, Some(room), None);
        }
        // 0 is taken as 1 (a page of none would never move on).
        let limit = limit.map_or(HISTORY_PAGE.min(50), |l| {
            (l as usize).clamp(1, HISTORY_PAGE)
        });
        let (events, more) = self.visible(s, &room, 0, before.unwrap_or(u64::MAX), limit);
        // The model's rooms are far smaller than `history_scan`: a page
        // with more is full, and the next one starts at its oldest; an
        // empty page (no message left to see) from where it was asked.
        let asked = before
            .map_or(u64::MAX, |b| b)
            .min(self.rooms[&room].seq + 1);
        let oldest = match events.first() {
            Some(ServerFrame::Msg { seq, .. }) => *seq,
            _ => asked,
        };
        // The model forgets no message: the last page reaches the room's
        // start, 1, as `entered.oldest` says.
        let page = if more {
            ServerFrame::history_from(room, events, more, oldest)
        } else {
            ServerFrame::history_to(room, events, 1)
        };
        self.push(i, page);
    }

    pub(crate) fn rooms(&mut self, i: usize) {
        if self.joined(i).is_none() {
            return;
        }
        let rooms = self
            .rooms
            .iter()
            .filter(|(_, r)| !r.members.is_empty())
            .map(|(n, r)| RoomInfo::new(n.clone(), r.members.len() as u64))
            .collect();
        self.push(i, ServerFrame::rooms(rooms));
    }
}
