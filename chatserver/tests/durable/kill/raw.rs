//! The kill test's raw clients: sending under load, checking every frame, resuming after the kill.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::TcpStream;
use std::sync::mpsc::{self, Sender};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{msg_id, msg_room, msg_text, Control, Raw, PER_CLIENT, RAW, ROOMS, WINDOW};
use crate::common::{kind, Client, Next, Server, WAIT};
use crate::{join_v2, str_of, u64_of};

impl Raw {
    pub(super) fn join(server: &Server, nick: &str, echo_tx: Sender<()>) -> Raw {
        let mut conn = server.connect();
        let entry = join_v2(&mut conn, nick, &ROOMS, None);
        assert_eq!(entry.welcome["resumed"], false, "{}", entry.welcome);
        let mut raw = Raw {
            nick: nick.to_owned(),
            conn,
            token: str_of(&entry.welcome, "session").to_owned(),
            generation: 0,
            epochs: HashMap::new(),
            first: HashMap::new(),
            last: HashMap::new(),
            in_room: HashSet::new(),
            replaying: HashSet::new(),
            got: HashMap::new(),
            before_kill: Vec::new(),
            pending: BTreeMap::new(),
            echoes: HashMap::new(),
            next: 0,
            fins: HashSet::new(),
            restart: None,
            resumed: None,
            echo_tx,
        };
        for room in ROOMS {
            let entered = &entry.entered[room];
            let seq = u64_of(entered, "seq");
            assert!(
                entry.replay.get(room).is_none_or(|r| r.is_empty()),
                "{nick}: nothing was said before the clients joined"
            );
            raw.first.insert(room.to_owned(), seq);
            raw.epochs
                .insert(room.to_owned(), str_of(entered, "epoch").to_owned());
            let presence = &entry.presence[room];
            raw.last.insert(room.to_owned(), u64_of(presence, "seq"));
            raw.before_kill.push(presence.clone());
            raw.in_room.insert(room.to_owned());
        }
        raw
    }

    fn fail(&self, what: impl std::fmt::Display) -> ! {
        panic!("{} (connection {}): {what}", self.nick, self.generation)
    }

    /// Handle one frame from the server.
    fn handle(&mut self, f: Value) {
        match kind(&f) {
            "msg" => {
                let room = str_of(&f, "room").to_owned();
                let seq = u64_of(&f, "seq");
                let last = self.last[&room];
                if seq <= last {
                    self.fail(format!("msg out of order or twice (last {last}): {f}"));
                }
                if self.replaying.contains(&room) {
                    if f["replay"] != true {
                        self.fail(format!("a msg in a replay without replay: {f}"));
                    }
                } else if !self.in_room.contains(&room) {
                    self.fail(format!("a msg of a room it is not in: {f}"));
                } else if !f["replay"].is_null() {
                    self.fail(format!("a live msg marked replay: {f}"));
                }
                self.last.insert(room.clone(), seq);
                if self.generation == 0 {
                    self.before_kill.push(f.clone());
                }
                if f["text"] == "fin" {
                    self.fins
                        .insert((room.clone(), str_of(&f, "from").to_owned()));
                }
                if f["from"] == self.nick.as_str() {
                    let id = f["id"]
                        .as_str()
                        .unwrap_or_else(|| self.fail(format!("own msg without its id: {f}")))
                        .to_owned();
                    if !id.ends_with("-fin") {
                        let i = self.index_of(&id);
                        match self.pending.remove(&i) {
                            Some((r, text)) => {
                                if r != room || f["text"] != text.as_str() {
                                    self.fail(format!("echo of {id} changed: {f}"));
                                }
                                self.echoes.insert(id, (room.clone(), seq, text));
                                let _ = self.echo_tx.send(());
                            }
                            None => self.fail(format!("a second copy of its own {id}: {f}")),
                        }
                    }
                }
                self.got.entry(room).or_default().push(f);
            }
            "presence" => {
                let room = str_of(&f, "room").to_owned();
                let seq = u64_of(&f, "seq");
                let last = self.last[&room];
                if seq <= last {
                    self.fail(format!("presence out of order or twice (last {last}): {f}"));
                }
                self.last.insert(room.clone(), seq);
                if self.generation == 0 {
                    self.before_kill.push(f.clone());
                }
                if f["nick"] == self.nick.as_str() {
                    if f["status"] != "online" || !self.replaying.remove(&room) {
                        self.fail(format!("an own presence it did not ask for: {f}"));
                    }
                    self.in_room.insert(room);
                }
            }
            "entered" => {
                let room = str_of(&f, "room").to_owned();
                let seq = u64_of(&f, "seq");
                let Some(restart) = &self.restart else {
                    self.fail(format!("entered before any restart: {f}"));
                };
                if f["recovered"] != true {
                    self.fail(format!("re-entered without recovering: {f}"));
                }
                if f["epoch"] != self.epochs[&room].as_str() {
                    self.fail(format!("the epoch changed: {f}"));
                }
                if seq < restart.stored_last[&room] || seq < self.last[&room] {
                    self.fail(format!(
                        "entered.seq behind the store ({}) or what it saw ({}): {f}",
                        restart.stored_last[&room], self.last[&room]
                    ));
                }
                if let Some((_, entries)) = &mut self.resumed {
                    entries.push(f.clone());
                }
                self.replaying.insert(room);
            }
            "online" | "pong" => {}
            "ping" => {
                let _ = self.conn.try_send_frame(&json!({"type": "pong"}));
            }
            "error" if f["code"] == "duplicate" => {
                // A resend the store already had: it was answered before.
                let id = str_of(&f, "id").to_owned();
                let i = self.index_of(&id);
                let Some((room, text)) = self.pending.remove(&i) else {
                    self.fail(format!("duplicate for an id not pending: {f}"));
                };
                if f["room"] != room.as_str() {
                    self.fail(format!("duplicate for the wrong room: {f}"));
                }
                self.echoes.insert(id, (room, u64_of(&f, "seq"), text));
                let _ = self.echo_tx.send(());
            }
            _ => self.fail(format!("unexpected frame: {f}")),
        }
    }

    pub(super) fn index_of(&self, id: &str) -> usize {
        id.strip_prefix(&format!("{}-", self.nick))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| self.fail(format!("not one of its ids: {id}")))
    }

    /// Send message `i`; false if the socket refused it.
    fn send(&mut self, i: usize) -> bool {
        let room = msg_room(&self.nick, i);
        let text = msg_text(&self.nick, i);
        let frame = json!({"type": "msg", "room": room, "text": text, "id": msg_id(&self.nick, i)});
        self.pending.insert(i, (room.to_owned(), text));
        self.conn.try_send_frame(&frame).is_ok()
    }

    /// Read one frame (or the end of the connection, then resume).
    fn read_one(&mut self, within: Duration, ctl: &Control) {
        match self.conn.next_within(within) {
            Next::Frame(f) => self.handle(f),
            Next::Eof | Next::Reset => self.resume(ctl),
            Next::TimedOut if within >= WAIT => self.fail("no frame from the server in time"),
            Next::TimedOut => {}
        }
    }

    /// The server is gone: wait for it to come back, resume the session,
    /// enter each room from the last seq seen, and resend what was not
    /// answered, in order.
    fn resume(&mut self, ctl: &Control) {
        if self.generation > 0 {
            self.fail("lost a second connection");
        }
        let restart = ctl
            .restart
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| self.fail(format!("no restart: {e}")));
        for room in ROOMS {
            let (last, stored) = (self.last[room], restart.stored_last[room]);
            if last > stored {
                self.fail(format!(
                    "saw seq {last} of #{room}, but the store held only {stored}"
                ));
            }
        }
        self.restart = Some(restart.clone());
        self.generation = 1;
        self.in_room.clear();
        self.conn = Client::new(TcpStream::connect(restart.addr).expect("reconnect"));
        let join = json!({"type": "join", "nick": self.nick, "rooms": [], "resume": self.token});
        self.conn.send_frame(&join);
        let welcome = self.conn.expect_kind("welcome");
        if welcome["resumed"] != true || welcome["nick"] != self.nick.as_str() {
            self.fail(format!("not resumed: {welcome}"));
        }
        self.token = str_of(&welcome, "session").to_owned();
        self.resumed = Some((welcome, Vec::new()));
        for room in ROOMS {
            let enter = json!({"type": "enter", "room": room, "since": self.last[room],
                               "epoch": self.epochs[room]});
            self.conn.send_frame(&enter);
            for _ in 0..100_000 {
                if self.in_room.contains(room) {
                    break;
                }
                let f = self.conn.recv_frame();
                self.handle(f);
            }
            if !self.in_room.contains(room) {
                self.fail(format!("never back in #{room}"));
            }
        }
        let resend: Vec<usize> = self.pending.keys().copied().collect();
        for i in resend {
            if !self.send(i) {
                self.fail("the restarted server refused a write");
            }
        }
    }

    /// The whole run: send everything under load (resuming once on the
    /// way), say so, then say `fin` in every room when told and read until
    /// every client's `fin` arrived.
    pub(super) fn run(mut self, ctl: Control) -> Raw {
        let deadline = Instant::now() + Duration::from_secs(25);
        while self.next < PER_CLIENT || !self.pending.is_empty() {
            if Instant::now() > deadline {
                self.fail("sending took too long");
            }
            let mut broken = false;
            while !broken && self.pending.len() < WINDOW && self.next < PER_CLIENT {
                broken = !self.send(self.next);
                self.next += 1;
            }
            // A refused write: the server is gone. What it sent first is
            // still worth reading, up to the end of the connection.
            self.read_one(WAIT, &ctl);
        }
        ctl.done.send(self.nick.clone()).expect("tell the test");
        loop {
            if Instant::now() > deadline {
                self.fail("no fin in time");
            }
            match ctl.fin.try_recv() {
                Ok(()) => break,
                Err(mpsc::TryRecvError::Empty) => self.read_one(Duration::from_millis(50), &ctl),
                Err(mpsc::TryRecvError::Disconnected) => self.fail("the test went away"),
            }
        }
        for room in ROOMS {
            // One id per room: a session's ids are one set for all rooms.
            let id = format!("{}-{room}-fin", self.nick);
            let frame = json!({"type": "msg", "room": room, "text": "fin", "id": id});
            if self.conn.try_send_frame(&frame).is_err() {
                self.fail("could not say fin");
            }
        }
        let want: HashSet<(String, String)> = ROOMS
            .iter()
            .flat_map(|r| RAW.iter().map(move |n| (r.to_string(), n.to_string())))
            .collect();
        while !want.is_subset(&self.fins) {
            if Instant::now() > deadline {
                self.fail(format!("fins seen: {:?}", self.fins));
            }
            self.read_one(WAIT, &ctl);
        }
        self
    }
}
