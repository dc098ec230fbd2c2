//! What a shell may ask the server of its state: its settings, how many
//! outputs wait, connections, members and rooms, who is online, a
//! session's connection and a room's latest seq.

use crate::server::config::ServerConfig;
use crate::server::durable::TokenHash;
use crate::server::event::SessionId;
use crate::server::{ClientId, Server};

impl Server {
    /// The settings in force.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// How many outputs are decided but not yet given by
    /// [`poll`](Server::poll): answers and events waiting behind a
    /// [`Persist`](crate::Output::Persist) not yet reported stored (or, in
    /// cluster mode, behind proposals not yet back from the log), and, in
    /// cluster mode, each of those proposals too (an event a connected
    /// session proposed, given by `poll` as an
    /// [`Output::Propose`](crate::Output::Propose) and kept until the log
    /// hands it back to [`handle_logged`](Server::handle_logged), or it is
    /// said held already or refused, or its connection closes). A shell
    /// stops taking input past a bound of its own, so that a stalled store
    /// or log cannot make this, and the memory it stands for, grow without
    /// end (a `pong` per `ping` waits there too).
    pub fn outputs_waiting(&self) -> usize {
        // Checked against the sessions' own lists (only kept in cluster
        // mode: alone, the look at every session is not made).
        debug_assert_eq!(
            self.on_the_way,
            if self.config.cluster {
                self.sessions.values().map(|s| s.in_flight.len()).sum()
            } else {
                0
            },
            "proposals counted on their way through the log"
        );
        self.steps.len() + self.deferred + self.keepalives.len() + self.on_the_way
    }

    /// How many connections are open, joined or not.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// How many rooms were forgotten so far, history and all, to make way
    /// for a new one: at the cap of rooms ([`ServerConfig::max_rooms`])
    /// a room nobody was in (the least recently used of those that never
    /// held a message, or if there is none, of the others); with
    /// [`ServerConfig::durable`], a room that held a message is not
    /// forgotten there but unloaded ([`Server::rooms_unloaded`]), and
    /// forgotten only past [`ServerConfig::max_stored_rooms`] (from the
    /// store too).
    pub fn rooms_forgotten(&self) -> u64 {
        self.rooms_forgotten
    }

    /// How many connections have joined.
    pub fn members(&self) -> usize {
        self.conns.values().filter(|c| c.session.is_some()).count()
    }

    /// The nickname `client` joined as, if it has.
    pub fn nick(&self, client: ClientId) -> Option<&str> {
        let sid = self.conns.get(&client)?.session?;
        self.sessions.get(&sid).map(|s| &*s.nick)
    }

    /// The session `client` joined as, if it has.
    pub fn session_id_of(&self, client: ClientId) -> Option<SessionId> {
        self.conns.get(&client)?.session
    }

    /// Whether `session` has a connection to this server now.
    pub fn is_connected(&self, session: SessionId) -> bool {
        self.sessions
            .get(&session)
            .is_some_and(|s| s.conn.is_some())
    }

    /// The connection `session` has to this server now, if any.
    pub fn connection_of(&self, session: SessionId) -> Option<ClientId> {
        self.sessions.get(&session)?.conn
    }

    /// The hash of the token of the session `client` joined as (what
    /// another cluster node names the session by when it asks to take it
    /// over); `None` before it joined.
    pub fn token_hash_of(&self, client: ClientId) -> Option<TokenHash> {
        let sid = self.conns.get(&client)?.session?;
        Some(self.sessions.get(&sid)?.token_hash)
    }

    /// The nicknames online, in no particular order.
    pub fn online(&self) -> impl Iterator<Item = &str> + '_ {
        self.sessions
            .values()
            .filter(|s| s.conn.is_some())
            .map(|s| &*s.nick)
    }

    /// The latest seq applied in `room` (0 if it does not exist). The
    /// name is compared as the protocol does, after ASCII lower-casing:
    /// `seq("Lobby")` is `seq("lobby")`.
    pub fn seq(&self, room: &str) -> u64 {
        match self.rooms.get(room) {
            Some(r) => r.seq,
            None if room.bytes().any(|b| b.is_ascii_uppercase()) => self
                .rooms
                .get(&room.to_ascii_lowercase())
                .map_or(0, |r| r.seq),
            None => 0,
        }
    }

    /// The rooms that exist, with how many of this server's connections
    /// are in each (in cluster mode, those on other servers are not
    /// counted here; the `rooms` answer to clients counts them).
    pub fn rooms(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        self.rooms
            .iter()
            .map(|(n, r)| (n.as_str(), r.members.len()))
    }
}
