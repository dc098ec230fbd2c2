//! A deterministic simulation harness for the [`Server`] core, and the
//! invariant checks the tests and fuzz targets share.
//!
//! [`Sim`] plays N fake clients against a real server core with a fake
//! clock. Every byte the core emits is encoded and decoded the way a client
//! would see it, and the harness asserts as it goes that each client sees
//! seq strictly increasing per room and only messages it may see. Useful to
//! embedders too: drive your own scenario and inspect what each client
//! received.
//!
//! [`check_decode`], [`check_room_ops`] and [`check_client_ops`] are the
//! bodies of the fuzz targets: the codec, the server core, and the client
//! core against a hostile server.
//!
//! [`oracle`] checks recorded deliveries for exactly-once, in-order
//! delivery; chatbench's soak runs it over what its clients recorded from a
//! real server, and chatproto's model-based test over what the simulated
//! clients received.

mod client;
pub mod oracle;

pub use client::check_client_ops;

use std::collections::HashMap;

use bytes::BytesMut;

use crate::{
    encode, ClientFrame, ClientId, Decoded, ErrorCode, Event, FrameDecoder, Now, Output,
    PresenceStatus, Record, Server, ServerConfig, ServerFrame,
};

/// The store of a durable [`Sim`] (one whose config has
/// [`durable`](ServerConfig::durable) set): what it holds, and the batches
/// the server handed it that are not answered yet.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct SimStore {
    /// Every record stored, in order.
    pub records: Vec<Record>,
    /// Batches handed out and not answered yet, with their tickets.
    pub waiting: Vec<(Vec<Record>, u64)>,
    /// Leave batches waiting until [`Sim::commit`] (otherwise each is
    /// stored as soon as the server's output is drained).
    pub hold: bool,
    /// Fail every batch with this cause, while set.
    pub fail: Option<String>,
    /// Reads asked and not answered yet: ticket and query.
    pub reads: Vec<(u64, crate::ReadQuery)>,
    /// Fail reads with this cause, while set.
    pub fail_reads: Option<String>,
    /// Store the waiting batches before answering the reads asked with
    /// them, as a store whose reads run beside its writes may (otherwise
    /// reads are answered first, in the order they were asked).
    pub reads_after_writes: bool,
}

impl SimStore {
    /// What a store answers to `query`: the newest `limit` stored messages
    /// in range that its session may see, oldest first, and whether older
    /// ones exist.
    pub fn read(&self, query: &crate::ReadQuery) -> (Vec<Event>, bool) {
        let mut found: Vec<&Event> = Vec::new();
        // As a store does: a room's history goes when it is forgotten or
        // begun again under another epoch, not when told its seq again.
        let mut began: Option<&str> = None;
        for r in &self.records {
            match r {
                Record::Room { name, epoch, .. } if *name == query.room => {
                    if began != Some(epoch.as_str()) {
                        found.clear();
                    }
                    began = Some(epoch);
                }
                Record::Forgotten { name, .. } if *name == query.room => {
                    began = None;
                    found.clear();
                }
                Record::Event(e)
                    if e.room == query.room
                        && e.is_msg()
                        && e.seq > query.after
                        && e.seq < query.before
                        && e.visible_to(query.session) =>
                {
                    found.push(e)
                }
                _ => {}
            }
        }
        let more = found.len() > query.limit;
        let start = found.len().saturating_sub(query.limit);
        (found[start..].iter().map(|e| (*e).clone()).collect(), more)
    }

    /// What a store that honours `query.scan` answers: like
    /// [`read`](SimStore::read), looking only at the seqs from
    /// [`ReadQuery::lowest`](crate::ReadQuery::lowest) up.
    pub fn page(&self, query: &crate::ReadQuery) -> crate::ReadPage {
        let lowest = query.lowest();
        let bounded = crate::ReadQuery::new(
            query.room.clone(),
            query.session,
            lowest.saturating_sub(1),
            query.before,
            query.limit,
        );
        let (events, more) = self.read(&bounded);
        let page = if more {
            let from = events.first().map_or(query.before, |e| e.seq);
            crate::ReadPage::new(events, true, from)
        } else {
            // Cut short by the scan: more if anything older is held in range.
            let older = lowest > query.after.saturating_add(1)
                && self.records.iter().any(|r| {
                    matches!(r, Record::Event(e) if e.room == query.room
                    && e.seq > query.after && e.seq < lowest)
                });
            crate::ReadPage::new(events, older, lowest)
        };
        match self.oldest(&query.room) {
            Some(oldest) => page.with_oldest(oldest),
            None => page,
        }
    }

    /// The seq of the oldest event stored of `room` since it last began
    /// (a new epoch, or after it was forgotten), if any; a test models
    /// retention by removing records.
    pub fn oldest(&self, room: &str) -> Option<u64> {
        let mut oldest = None;
        let mut began: Option<&str> = None;
        for r in &self.records {
            match r {
                Record::Room { name, epoch, .. } if &**name == room => {
                    if began != Some(epoch.as_str()) {
                        oldest = None;
                    }
                    began = Some(epoch);
                }
                Record::Forgotten { name, .. } if &**name == room => {
                    oldest = None;
                    began = None;
                }
                Record::Event(e) if &*e.room == room => {
                    oldest = Some(oldest.unwrap_or(e.seq).min(e.seq))
                }
                _ => {}
            }
        }
        oldest
    }

    /// Whether the store holds `event` (same room and seq).
    pub fn has(&self, event: &Event) -> bool {
        self.records
            .iter()
            .rev()
            .any(|r| matches!(r, Record::Event(e) if e.room == event.room && e.seq == event.seq))
    }
}

/// One fake client of a [`Sim`].
#[derive(Debug)]
pub struct SimClient {
    /// The handle the server gave it.
    pub id: ClientId,
    /// The nickname it joined as, once its `welcome` arrived.
    pub nick: Option<String>,
    /// Its session token, once its `welcome` arrived.
    pub session: Option<String>,
    /// Whether the connection is still open (closed by [`Sim::disconnect`] or by the server).
    pub open: bool,
    /// It said its last ([`Sim::end`]): it sends nothing more.
    pub ended: bool,
    /// The server told the shell to close it once it had said its last
    /// ([`Output::Finish`]).
    pub finished: bool,
    /// The error code the server closed it with, if it did.
    pub closed_with: Option<ErrorCode>,
    /// Every frame it received, in order.
    pub received: Vec<ServerFrame>,
    /// The last live seq seen per room.
    last_seq: HashMap<String, u64>,
    decoder: FrameDecoder,
    buf: BytesMut,
}

/// N fake clients, a fake clock and a real [`Server`].
#[derive(Debug)]
pub struct Sim {
    /// The server under test.
    pub server: Server,
    /// The fake wall clock, unix milliseconds; the monotonic clock is the
    /// time since the sim started.
    pub now: u64,
    start: u64,
    /// The clients, indexed by the number [`Sim::connect`] returned.
    pub clients: Vec<SimClient>,
    /// Frames held for clients waiting for a read, as a shell holds them.
    held: HashMap<ClientId, Held>,
    /// Clients the server said to close once answered ([`Output::Finish`]):
    /// closed, and the server told so, once no read of theirs is waiting.
    finishing: Vec<ClientId>,
    /// Every event the server delivered, in order.
    pub events: Vec<Event>,
    /// What a durable server stored.
    pub store: SimStore,
    /// Rooms that held a message a server without a store forgot, in
    /// order ([`Output::Forgotten`]).
    pub forgotten: Vec<String>,
}

impl Sim {
    /// A server with `config`, a fixed seed, and the wall clock at `now`.
    pub fn new(config: ServerConfig, now: u64) -> Self {
        Sim {
            server: Server::new(config, [42; 32]),
            now,
            start: now,
            clients: Vec::new(),
            held: HashMap::new(),
            finishing: Vec::new(),
            events: Vec::new(),
            forgotten: Vec::new(),
            store: SimStore::default(),
        }
    }

    /// Both clocks now.
    pub fn clock(&self) -> Now {
        Now::new(self.now - self.start, self.now)
    }

    /// Open a new connection; returns its index.
    pub fn connect(&mut self) -> usize {
        let id = self.server.handle_connect(self.clock());
        self.clients.push(SimClient {
            id,
            nick: None,
            session: None,
            open: true,
            ended: false,
            finished: false,
            closed_with: None,
            received: Vec::new(),
            last_seq: HashMap::new(),
            decoder: FrameDecoder::new(self.server.config().max_frame_bytes),
            buf: BytesMut::new(),
        });
        self.clients.len() - 1
    }

    /// Client `i` sends `frame` (it goes through the codec, as on a socket).
    /// Ignored if the client is closed or said its last.
    pub fn send(&mut self, i: usize, frame: ClientFrame) {
        if !self.clients[i].open || self.clients[i].ended {
            return;
        }
        let max = self.server.config().max_frame_bytes;
        let wire = encode(&frame, max).expect("test frames fit");
        let mut buf = BytesMut::from(&wire[..]);
        let mut dec = FrameDecoder::new(max);
        let Decoded::Frame(frame) = dec.decode::<ClientFrame>(&mut buf) else {
            panic!("a test frame decodes whole");
        };
        self.server
            .handle_frame(self.clock(), self.clients[i].id, frame);
        self.flush();
    }

    /// Client `i` sends `frame` and ends its stream with it, the two read
    /// together ([`Server::handle_last_frame`]): a `join` resuming a
    /// session whose connection is open takes nothing over. Ignored if the
    /// client is closed or said its last.
    pub fn send_last(&mut self, i: usize, frame: ClientFrame) {
        if !self.clients[i].open || self.clients[i].ended {
            return;
        }
        self.clients[i].ended = true;
        self.server
            .handle_last_frame(self.clock(), self.clients[i].id, frame);
        self.flush();
    }

    /// Client `i` sends raw payload bytes (after framing), as a misbehaving
    /// client would.
    pub fn send_payload(&mut self, i: usize, payload: &[u8]) {
        if !self.clients[i].open || self.clients[i].ended {
            return;
        }
        let (now, id) = (self.clock(), self.clients[i].id);
        // As a server reads it.
        match ClientFrame::from_payload(payload) {
            Ok(frame) => self.server.handle_frame(now, id, frame),
            Err(e) => self.server.handle_bad_frame(now, id, &e),
        }
        self.flush();
    }

    /// Client `i` joins as `nick` (a v1 join: it enters `lobby`).
    pub fn join(&mut self, i: usize, nick: &str) {
        self.send(i, ClientFrame::join(nick));
    }

    /// Client `i` sends `text` to `to` (empty: everyone) in `lobby`.
    pub fn msg(&mut self, i: usize, to: &[&str], text: &str) {
        let to = to.iter().map(|s| s.to_string()).collect();
        self.send(i, ClientFrame::msg(to, text));
    }

    /// Client `i`'s connection closes.
    pub fn disconnect(&mut self, i: usize) {
        if !self.clients[i].open {
            return;
        }
        self.clients[i].open = false;
        self.server
            .handle_disconnect(self.clock(), self.clients[i].id);
        self.flush();
    }

    /// Client `i` says its last (its stream ends cleanly): the server
    /// answers what it sent, then says to close it ([`Output::Finish`]),
    /// and the sim closes it and tells the server, as a shell does.
    pub fn end(&mut self, i: usize) {
        if !self.clients[i].open || self.clients[i].ended {
            return;
        }
        self.clients[i].ended = true;
        self.server.handle_end(self.clients[i].id);
        self.flush();
    }

    /// The shell closes client `i` for `why`.
    pub fn kick(&mut self, i: usize, why: crate::Kick) {
        self.server.kick(self.clock(), self.clients[i].id, why);
        self.flush();
    }

    /// Move the clock forward by `ms`, running every timer at its deadline
    /// on the way, as a shell sleeping on `poll_timeout` would.
    pub fn advance(&mut self, ms: u64) {
        let until = self.now - self.start + ms;
        while let Some(at) = self.server.poll_timeout() {
            if at > until {
                break;
            }
            self.now = self.now.max(self.start + at);
            self.server.handle_timeout(self.clock());
            self.flush();
        }
        self.now = self.start + until;
    }

    /// Drain the server into the clients, checking each frame as it arrives.
    ///
    /// # Panics
    ///
    /// If the server breaks an invariant: bytes for a closed or unknown
    /// client, an undecodable or oversized frame, a seq that does not
    /// increase for a client in a room, a message delivered to someone it
    /// was not addressed to.
    pub fn flush(&mut self) {
        loop {
            self.drain();
            if self.close_finished() {
                continue;
            }
            if self.store.hold || (self.store.waiting.is_empty() && self.store.reads.is_empty()) {
                return;
            }
            self.answer_store();
        }
    }

    /// Answer every batch the store holds (stored, or failed if
    /// [`SimStore::fail`] is set), then drain the server.
    pub fn commit(&mut self) {
        self.answer_store();
        let hold = std::mem::replace(&mut self.store.hold, false);
        self.flush();
        self.store.hold = hold;
    }

    fn answer_store(&mut self) {
        if self.store.reads_after_writes {
            self.store_batches();
            self.answer_reads();
        } else {
            self.answer_reads();
            self.store_batches();
        }
    }

    fn answer_reads(&mut self) {
        let max = self.server.config().max_frame_bytes;
        for (ticket, query) in std::mem::take(&mut self.store.reads) {
            let found = match &self.store.fail_reads {
                Some(cause) => Err(cause.clone()),
                None => Ok(self.store.page(&query)),
            };
            let answer = self.server.handle_page(ticket, found);
            let Some((to, frames)) = answer else { continue };
            let Some(waiting) = self.held.get_mut(&to) else {
                panic!("an answer for {to}, which asked nothing");
            };
            let (first, after) = waiting.pop_front().expect("a read asked");
            assert_eq!(first, ticket, "reads are answered in the order asked");
            if waiting.is_empty() {
                self.held.remove(&to);
            }
            for f in frames {
                let bytes = encode(&f, max).expect("the server's frames fit");
                receive(&mut self.clients, to, &bytes);
            }
            // What came for it meanwhile goes after the answer.
            for bytes in after {
                receive(&mut self.clients, to, &bytes);
            }
        }
    }

    /// Close the clients told to finish whose reads are all answered, and
    /// tell the server; whether there were any.
    fn close_finished(&mut self) -> bool {
        let held = &self.held;
        let (done, wait): (Vec<ClientId>, Vec<ClientId>) = std::mem::take(&mut self.finishing)
            .into_iter()
            .partition(|c| !held.contains_key(c));
        self.finishing = wait;
        for &id in &done {
            if let Some(c) = self.clients.iter_mut().find(|c| c.id == id) {
                c.open = false;
            }
            self.server.handle_disconnect(self.clock(), id);
        }
        !done.is_empty()
    }

    fn store_batches(&mut self) {
        for (batch, through) in std::mem::take(&mut self.store.waiting) {
            match &self.store.fail {
                Some(cause) => {
                    let cause = cause.clone();
                    self.server.handle_persist_failed(&cause);
                }
                None => {
                    self.store.records.extend(batch);
                    self.server.handle_persisted(through);
                }
            }
        }
    }

    fn drain(&mut self) {
        let max = self.server.config().max_frame_bytes;
        let durable = self.server.config().durable;
        while let Some(out) = self.server.poll() {
            match out {
                Output::Persist { records, through } => {
                    self.store.waiting.push((records, through));
                }
                Output::Read {
                    ticket,
                    client,
                    query,
                } => {
                    self.held
                        .entry(client)
                        .or_default()
                        .push_back((ticket, Vec::new()));
                    self.store.reads.push((ticket, query));
                }
                Output::Send { to, frame } => {
                    let bytes = encode(&frame, max).expect("the server's frames fit");
                    deliver(&mut self.clients, &mut self.held, to, &bytes);
                }
                Output::Deliver { event, to, with_id } => {
                    assert!(
                        !durable || !event.is_msg() || self.store.has(event),
                        "a message went out before it was stored: {event:?}"
                    );
                    let bytes = encode(&event.wire(with_id, false), max).expect("events fit");
                    for &c in to {
                        deliver(&mut self.clients, &mut self.held, c, &bytes);
                    }
                    if !with_id && self.events.last() != Some(event) {
                        self.events.push(event.clone());
                    }
                }
                Output::Close { client, code } => {
                    let c = self
                        .clients
                        .iter_mut()
                        .find(|c| c.id == client)
                        .expect("close for an unknown client");
                    c.open = false;
                    c.closed_with = Some(code);
                }
                Output::Finish { client } => {
                    let c = self
                        .clients
                        .iter_mut()
                        .find(|c| c.id == client)
                        .expect("finish for an unknown client");
                    assert!(!c.finished, "finish twice for {client}");
                    c.finished = true;
                    self.finishing.push(client);
                }
                Output::Propose { .. } => {
                    panic!("the simulation runs one server, not a cluster")
                }
                Output::Forgotten { room } => self.forgotten.push(room.to_string()),
            }
        }
    }

    /// Take the frames client `i` has received since the last call.
    pub fn take(&mut self, i: usize) -> Vec<ServerFrame> {
        std::mem::take(&mut self.clients[i].received)
    }
}

/// For a client waiting for reads: each read's ticket and the frames that
/// came after it (before the next read).
type Held = std::collections::VecDeque<(u64, Vec<Vec<u8>>)>;

/// `bytes` for `to`: held while it waits for a read, received otherwise.
fn deliver(
    clients: &mut [SimClient],
    held: &mut HashMap<ClientId, Held>,
    to: ClientId,
    bytes: &[u8],
) {
    match held.get_mut(&to).and_then(|h| h.back_mut()) {
        Some((_, queue)) => queue.push(bytes.to_vec()),
        None => receive(clients, to, bytes),
    }
}

fn receive(clients: &mut [SimClient], to: ClientId, bytes: &[u8]) {
    let c = clients
        .iter_mut()
        .find(|c| c.id == to)
        .expect("output for a client the server never gave out");
    assert!(c.open, "output for closed client {to}");
    c.buf.extend_from_slice(bytes);
    loop {
        let frame = match c.decoder.decode::<ServerFrame>(&mut c.buf) {
            Decoded::Frame(frame) => frame,
            Decoded::Incomplete => break,
            other => panic!("the server sent a bad frame: {other:?}"),
        };
        check_frame(c, &frame);
        c.received.push(frame);
    }
    assert!(c.buf.is_empty(), "output ended mid-frame");
}

fn check_frame(c: &mut SimClient, frame: &ServerFrame) {
    let lobby = || crate::LOBBY.to_owned();
    let (room, seq) = match frame {
        ServerFrame::Welcome {
            nick,
            seq,
            online,
            session,
            ..
        } => {
            assert!(c.nick.is_none(), "second welcome");
            assert!(
                online.is_empty() || online.contains(nick) || online.len() > 1,
                "welcome lacks joiner"
            );
            c.nick = Some(nick.clone());
            c.session = session.clone();
            if !online.is_empty() {
                c.last_seq.insert(lobby(), *seq);
            }
            return;
        }
        ServerFrame::Entered { room, seq, .. } => {
            c.last_seq.insert(room.clone(), *seq);
            return;
        }
        ServerFrame::Presence { room, seq, .. } => (room.clone().unwrap_or_else(lobby), *seq),
        ServerFrame::Msg {
            room,
            seq,
            from,
            to,
            replay,
            ..
        } => {
            let me = c.nick.as_deref().expect("msg before welcome");
            let me = crate::nick::nick_key(me);
            let addressed = to.is_empty()
                || crate::nick::nick_key(from) == me
                || to.iter().any(|n| crate::nick::nick_key(n) == me);
            assert!(addressed, "{me} received a message for {to:?}");
            if *replay {
                return;
            }
            (room.clone().unwrap_or_else(lobby), *seq)
        }
        _ => return,
    };
    let last = c.last_seq.entry(room.clone()).or_insert(0);
    assert!(seq > *last, "seq {seq} after {last} in {room} for {}", c.id);
    *last = seq;
}

/// Feed `data` to a [`FrameDecoder`] in chunks chosen by its first byte, and
/// check what it yields: no panic, no buffer grown past the limit plus one
/// chunk, [`ClientFrame::from_payload`] and serde making the same of every
/// payload, and every frame re-encoding and decoding to the same frame.
///
/// The `decode` fuzz target and the corpus replay test both call this.
pub fn check_decode(data: &[u8]) {
    let Some((&knob, rest)) = data.split_first() else {
        return;
    };
    let max = crate::MIN_MAX_FRAME_BYTES;
    let chunk = 1 + (knob as usize % 64) * (knob as usize % 7 + 1);
    let mut dec = FrameDecoder::new(max);
    let mut buf = BytesMut::new();
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            let parsed = dec.decode_with(&mut buf, |payload| {
                let fast = ClientFrame::from_payload(payload);
                let serde = crate::parse_payload::<ClientFrame>(payload)
                    .map_err(|e| crate::client_de::in_room(payload, e));
                assert_eq!(fast, serde, "the plain-frame scanner agrees with serde");
                fast
            });
            match parsed {
                Decoded::Incomplete => break,
                Decoded::Broken(why) => {
                    assert_eq!(
                        dec.decode::<ClientFrame>(&mut buf),
                        Decoded::Broken(why),
                        "error is sticky"
                    );
                    return;
                }
                Decoded::Invalid(_) => {}
                Decoded::Frame(frame) => {
                    let wire = encode(&frame, max).expect("a decoded frame re-encodes");
                    let mut again = BytesMut::from(&wire[..]);
                    let back = FrameDecoder::new(max).decode::<ClientFrame>(&mut again);
                    assert_eq!(back, Decoded::Frame(frame), "round trip");
                }
            }
            // The decoder may reserve one checked body; anything more is a leak.
            let bound = 2 * (max + crate::HEADER_LEN + chunk);
            assert!(buf.capacity() <= bound, "buffer grew to {}", buf.capacity());
        }
    }
}

/// Drive a server with operations read from `data` and check its
/// invariants: seq strictly increasing per client and room, unique
/// nicknames, no delivery to a non-recipient (all checked by [`Sim`]), and
/// every `join` and `msg` from an open client answered by exactly one reply
/// (welcome or echo, or an error; a welcome may be followed by the
/// refusal of rooms it could not enter). The server holds two rooms in
/// memory among more names, so rooms are taken out of memory all the
/// time. An odd first byte makes the server durable: then every message
/// is stored before it goes out, stored seqs rise within an epoch (rooms
/// unloaded and woken keep theirs), rooms rest in the store up to three,
/// and the store can fail and recover on command.
///
/// The `room` fuzz target and the corpus replay test both call this.
pub fn check_room_ops(data: &[u8]) {
    const NICKS: [&str; 8] = [
        "alice",
        "Alice",
        "bob",
        "b0b",
        "José",
        "Jose\u{301}",
        "bad nick",
        "",
    ];
    // Messages go to the first four; entering, parting and pages to any.
    const ROOMS: [&str; 8] = ["lobby", "rust", "Rust", "#bad", "ops", "dev", "Ops", "x.y"];
    let mut sim = Sim::new(
        ServerConfig {
            max_frame_bytes: crate::MIN_MAX_FRAME_BYTES,
            join_timeout_ms: 1_000,
            idle_ping_ms: 2_000,
            pong_timeout_ms: 1_000,
            // Low enough that the fuzzer's recipient lists cross it.
            max_recipients: 4,
            max_rooms_per_client: 2,
            history_per_room: 8,
            // Few enough that rooms are taken out of memory (forgotten,
            // or unloaded and woken on a durable server) and forgotten
            // past the store's cap.
            max_rooms: 2,
            max_stored_rooms: 3,
            // Odd first bytes run a durable server, whose store the ops
            // below can make fail and recover.
            durable: data.first().is_some_and(|b| b & 1 == 1),
            ..ServerConfig::default()
        },
        1_000_000,
    );
    let mut ops = data.iter().copied();
    // Whether the shell's input is paused (the server is told; frames the
    // ops send meanwhile still reach it, which no shell does, and must
    // break nothing either).
    let mut paused = false;
    while let (Some(op), Some(arg)) = (ops.next(), ops.next()) {
        let n = sim.clients.len();
        let who = if n == 0 { 0 } else { arg as usize % n };
        match op % 8 {
            0 | 1 if n < 16 => {
                let i = sim.connect();
                if op % 8 == 1 {
                    expect_one_reply(&mut sim, i, |s| s.join(i, NICKS[arg as usize % 8]));
                }
            }
            2 if n > 0 => expect_one_reply(&mut sim, who, |s| {
                s.join(who, NICKS[(arg >> 4) as usize % 8])
            }),
            3 | 4 if n > 0 => {
                let mut to = Vec::new();
                for (bit, nick) in NICKS.iter().enumerate() {
                    if op & (1 << (bit % 3 + 3)) != 0 && arg & (1 << bit) != 0 {
                        to.push(nick.to_string());
                    }
                }
                let long = "x".repeat(if op & 0x80 != 0 { 900 } else { 3 });
                let room = ROOMS[(op >> 5) as usize % 4];
                let id = (op & 0x40 != 0).then(|| format!("id{}", arg % 4));
                let frame = if room == crate::LOBBY && id.is_none() {
                    ClientFrame::msg(to, long)
                } else {
                    ClientFrame::msg_in(room, to, long, id)
                };
                expect_one_reply(&mut sim, who, |s| s.send(who, frame));
            }
            // The connection goes (a reset), or the client says its last
            // and is closed once answered.
            5 if n > 0 && arg & 0x80 != 0 => sim.end(who),
            5 if n > 0 => sim.disconnect(who),
            6 if arg & 0x80 != 0 && sim.server.config().durable => {
                if sim.store.fail.take().is_some() {
                    sim.server.handle_store_recovered();
                    sim.flush();
                } else {
                    sim.store.fail = Some("disk full".into());
                }
            }
            // A bit of the op, not of its argument: time steps keep
            // their whole range.
            6 if op & 0x08 != 0 => {
                paused = !paused;
                sim.server.handle_input_paused(sim.clock(), paused);
                sim.flush();
            }
            6 => sim.advance(arg as u64 * 20),
            7 if n > 0 => match arg % 8 {
                0 => sim.send(who, ClientFrame::Pong),
                1 => sim.send(who, ClientFrame::Ping),
                2 => sim.send(
                    who,
                    ClientFrame::enter(ROOMS[(arg >> 3) as usize % 8], None),
                ),
                3 => sim.send(who, ClientFrame::part(ROOMS[(arg >> 3) as usize % 8])),
                4 => sim.send(
                    who,
                    ClientFrame::history(ROOMS[(arg >> 3) as usize % 8], None, Some(3)),
                ),
                5 => sim.send(who, ClientFrame::Rooms),
                6 => {
                    // Reconnect as the same nick, resuming this client's session.
                    let (nick, token) = (
                        sim.clients[who].nick.clone(),
                        sim.clients[who].session.clone(),
                    );
                    sim.disconnect(who);
                    if let Some(nick) = nick {
                        let i = sim.connect();
                        sim.send(i, ClientFrame::join_v2(nick, vec!["lobby".into()], token));
                    }
                }
                _ => sim.send_payload(who, &data[..data.len().min(arg as usize)]),
            },
            _ => {}
        }
        check_unique_nicks(&sim.server);
    }
    // Once input is taken again, every connection that stays silent is
    // closed within its timeouts (held timers came back).
    if paused {
        sim.server.handle_input_paused(sim.clock(), false);
    }
    sim.advance(10_000);
    for (i, c) in sim.clients.iter().enumerate() {
        assert!(!c.open, "client {i} still open after 10 s of silence");
    }
    for i in 0..sim.clients.len() {
        sim.disconnect(i);
    }
    assert_eq!(sim.server.connections(), 0);
    assert_eq!(sim.server.members(), 0);
    check_stored_order(&sim.store.records);
}

/// A store's events: each room's seqs strictly increase within an epoch
/// (a room record with a new epoch starts it again).
fn check_stored_order(records: &[Record]) {
    let mut last: HashMap<&str, (&str, u64)> = HashMap::new();
    for r in records {
        match r {
            // A room record raises the room's last seq to its own.
            Record::Room { name, epoch, seq } => match last.get_mut(&**name) {
                Some((e, at)) if e == epoch => *at = (*at).max(*seq),
                _ => {
                    last.insert(name, (epoch, *seq));
                }
            },
            Record::Forgotten { name, .. } => {
                last.remove(&**name);
            }
            Record::Event(e) => {
                let Some(entry) = last.get_mut(&*e.room) else {
                    panic!("an event of #{} before its room", e.room);
                };
                assert!(e.seq > entry.1, "stored seq {} after {}", e.seq, entry.1);
                entry.1 = e.seq;
            }
            _ => {}
        }
    }
}

/// Run `act` and check that client `i`, if open before, got exactly one
/// reply to it: a welcome, an echo of its own message, or an error.
fn expect_one_reply(sim: &mut Sim, i: usize, act: impl FnOnce(&mut Sim)) {
    let was_open = sim.clients[i].open && !sim.clients[i].ended;
    let before = sim.clients[i].received.len();
    act(sim);
    if !was_open {
        return;
    }
    let me = sim.clients[i].nick.clone();
    let got = &sim.clients[i].received[before..];
    // A join is answered by its welcome, and then by a refusal for each
    // room it could not enter (at the cap of rooms, `lobby` among them):
    // those belong to the welcome.
    let welcomed = got.iter().any(|f| matches!(f, ServerFrame::Welcome { .. }));
    let replies = got
        .iter()
        .filter(|f| match f {
            ServerFrame::Error {
                code: crate::ErrorCode::TooManyRooms,
                ..
            } if welcomed => false,
            ServerFrame::Welcome { .. } | ServerFrame::Error { .. } => true,
            ServerFrame::Msg { from, replay, .. } => Some(from) == me.as_ref() && !replay,
            _ => false,
        })
        .count();
    assert_eq!(
        replies,
        1,
        "client {i} got {replies} replies: {:?}",
        &sim.clients[i].received[before..]
    );
}

fn check_unique_nicks(server: &Server) {
    let mut keys: Vec<String> = server.online().map(crate::nick::nick_key).collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "duplicate nicknames online");
}

/// The presence statuses client `i` of `sim` saw, as (nick, status) pairs.
pub fn presences(sim: &Sim, i: usize) -> Vec<(String, PresenceStatus)> {
    sim.clients[i]
        .received
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Presence { nick, status, .. } => Some((nick.clone(), *status)),
            _ => None,
        })
        .collect()
}
