//! The fake server: a log per room, live messages and those the client
//! is not sent, a reconnect with part of what it missed replayed, and the
//! answers to what the client sends (an echo, a page of history).

use chatproto::{ClientFrame, PresenceStatus, ServerFrame};

use super::Sim;

/// bob's message `q` of `room`, its text the room and the seq (`lobby7`).
fn bobs(room: &str, q: u64) -> ServerFrame {
    ServerFrame::msg(
        Some(room.into()),
        q,
        "bob",
        vec![],
        format!("{room}{q}"),
        0,
        None,
    )
}

/// bob's message `q` of `room` as a replay or a page of history gives it.
fn bobs_replayed(room: &str, q: u64) -> ServerFrame {
    let mut m = bobs(room, q);
    if let ServerFrame::Msg { replay, .. } = &mut m {
        *replay = true;
    }
    m
}

impl Sim {
    /// The server sends a live message in `room`.
    pub fn live(&mut self, room: &str) {
        let q = self.seq.get_mut(room).unwrap();
        *q += 1;
        let q = *q;
        self.logs.get_mut(room).unwrap().push(q);
        self.to_client.push_back(bobs(room, q));
    }

    /// The server holds a message of `room` the client is not sent (one
    /// from before it came, or one said while it was away).
    pub fn unseen(&mut self, room: &str) {
        let q = self.seq.get_mut(room).unwrap();
        *q += 1;
        let q = *q;
        self.logs.get_mut(room).unwrap().push(q);
    }

    /// The connection lost and back, the session resumed: each of
    /// `rooms` entered again with its last `replayed` messages replayed,
    /// not all it missed (a gap, if it missed more), then alice's own
    /// presence.
    pub fn reconnect(&mut self, rooms: &[&str], replayed: usize) {
        self.s.handle_disconnected();
        self.apply();
        self.settle();
        self.s.handle_connected(1);
        self.apply();
        self.settle();
        self.to_server.clear();
        let welcome =
            ServerFrame::welcome("alice", 0, vec![], Some("tok".into()), Some(true), None);
        self.client_frame(welcome);
        for r in rooms {
            let last = self.seq[*r];
            let e = ServerFrame::entered(*r, "e1", last, 1, vec!["alice".into()], false);
            self.client_frame(e);
            let log = &self.logs[*r];
            let tail: Vec<u64> = log[log.len().saturating_sub(replayed)..].to_vec();
            for q in tail {
                self.client_frame(bobs_replayed(r, q));
            }
            let q = self.seq.get_mut(*r).unwrap();
            *q += 1;
            let p =
                ServerFrame::presence(Some(r.to_string()), *q, "alice", PresenceStatus::Online, 0);
            self.client_frame(p);
        }
        self.settle();
    }

    /// Answer one request the server got.
    pub(super) fn serve(&mut self, f: ClientFrame) {
        if let ClientFrame::Msg { room, text, id, .. } = f {
            let room = room.unwrap_or_default();
            let q = self.seq.get_mut(&room).unwrap();
            *q += 1;
            let q = *q;
            self.logs.get_mut(&room).unwrap().push(q);
            let echo = ServerFrame::msg(Some(room), q, "alice", vec![], text, 0, id);
            self.to_client.push_back(echo);
            return;
        }
        if let ClientFrame::History {
            room,
            before,
            limit,
            ..
        } = f
        {
            let log = &self.logs[&room];
            let limit = limit.unwrap_or(50).clamp(1, 200) as usize;
            let below: Vec<u64> = log
                .iter()
                .copied()
                .filter(|q| before.is_none_or(|b| *q < b))
                .collect();
            let start = below.len().saturating_sub(limit);
            let more = start > 0;
            let events = below[start..]
                .iter()
                .map(|q| bobs_replayed(&room, *q))
                .collect();
            self.to_client
                .push_back(ServerFrame::history(room, events, more));
        }
    }
}
