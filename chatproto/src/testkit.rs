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
mod decode;
pub mod oracle;
mod room_ops;
mod store;

pub use client::check_client_ops;
pub use decode::check_decode;
pub use room_ops::check_room_ops;
pub use store::SimStore;

use std::collections::HashMap;

use bytes::BytesMut;

use crate::{
    encode, ClientFrame, ClientId, Decoded, ErrorCode, Event, FrameDecoder, Now, Output,
    PresenceStatus, Server, ServerConfig, ServerFrame,
};

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
