//! Counters for `GET /metrics`, in the Prometheus text format. The
//! connection tasks and the hub bump atomics; what only the core knows
//! (rooms, members) is asked of the hub when the page is read.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use chatproto::ErrorCode;

/// How a connection reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// chatproto frames over TCP.
    Tcp,
    /// chatproto frames over TLS.
    Tls,
    /// chatproto over a WebSocket (plain or TLS).
    WebSocket,
}

const TRANSPORTS: [(Transport, &str); 3] = [
    (Transport::Tcp, "tcp"),
    (Transport::Tls, "tls"),
    (Transport::WebSocket, "websocket"),
];

/// Every error code chatproto has, for `chat_disconnects_total`: the
/// server may close a connection with any (a code added to chatproto
/// later and not listed here is counted as `unknown`). A fixed set, so
/// the label stays bounded.
const CODES: [ErrorCode; 22] = [
    ErrorCode::Timeout,
    ErrorCode::RateLimited,
    ErrorCode::SlowConsumer,
    ErrorCode::FrameTooLarge,
    ErrorCode::EmptyFrame,
    ErrorCode::ServerFull,
    ErrorCode::BadFrame,
    ErrorCode::Unavailable,
    ErrorCode::ResumedElsewhere,
    ErrorCode::NickTaken,
    ErrorCode::NickInvalid,
    ErrorCode::NotJoined,
    ErrorCode::AlreadyJoined,
    ErrorCode::UnknownNick,
    ErrorCode::MsgTooLarge,
    ErrorCode::TooManyRecipients,
    ErrorCode::RoomInvalid,
    ErrorCode::NotInRoom,
    ErrorCode::AlreadyInRoom,
    ErrorCode::TooManyRooms,
    ErrorCode::Duplicate,
    ErrorCode::Unknown,
];

/// The first of [`CODES`] the page shows always: the codes the server
/// closes connections with (the fatal ones, `bad_frame` for a WebSocket's
/// broken message or an unencrypted connection under `--tls-only`,
/// `unavailable` in a cluster); any other only once counted.
const ALWAYS_SHOWN: usize = 9;

/// What the core knows, read when the page is.
#[derive(Debug, Default, Clone, Copy)]
pub struct Snapshot {
    /// Rooms that exist.
    pub rooms: u64,
    /// Connections that joined.
    pub members: u64,
    /// Rooms forgotten, history and all, since the start.
    pub rooms_forgotten: u64,
    /// Rooms resting in the history database, out of memory.
    pub rooms_unloaded: u64,
}

/// Every counter.
#[derive(Debug, Default)]
pub struct Metrics {
    open: [AtomicU64; 3],
    opened: [AtomicU64; 3],
    closed_for: [AtomicU64; CODES.len()],
    messages: AtomicU64,
    deliveries: AtomicU64,
    appends: AtomicU64,
    append_micros: AtomicU64,
    append_failures: AtomicU64,
    tls_failures: AtomicU64,
    /// Shutting down: `/healthz` answers 503 (a request already under
    /// way: the port itself is closed at once, new connections refused).
    pub stopping: AtomicBool,
    /// Why the history database takes no messages now, if it does not.
    store_down: Mutex<Option<String>>,
    /// In a cluster: why this node cannot reach the log (NATS) now, if it
    /// cannot; `None` outside a cluster, where `log_known` is false.
    log_down: Mutex<Option<String>>,
    log_known: AtomicBool,
}

/// A lock on one of the health causes (a panic while holding one leaves
/// a string, still worth reading).
fn cause(m: &Mutex<Option<String>>) -> std::sync::MutexGuard<'_, Option<String>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn slot(t: Transport) -> usize {
    TRANSPORTS.iter().position(|(x, _)| *x == t).unwrap_or(0)
}

impl Metrics {
    /// A connection of `t` opened.
    pub fn opened(&self, t: Transport) {
        self.open[slot(t)].fetch_add(1, Relaxed);
        self.opened[slot(t)].fetch_add(1, Relaxed);
    }

    /// A connection of `t` closed.
    pub fn closed(&self, t: Transport) {
        self.open[slot(t)].fetch_sub(1, Relaxed);
    }

    /// The server closed a connection, sending `code` first.
    pub fn closed_for(&self, code: ErrorCode) {
        let unknown = CODES.len() - 1;
        let i = CODES.iter().position(|c| *c == code).unwrap_or(unknown);
        self.closed_for[i].fetch_add(1, Relaxed);
    }

    /// A message was sequenced and sent to `deliveries` connections in all.
    pub fn message(&self) {
        self.messages.fetch_add(1, Relaxed);
    }

    /// Copies of events queued to connections.
    pub fn delivered(&self, n: usize) {
        self.deliveries.fetch_add(n as u64, Relaxed);
    }

    /// The store took a batch in `micros`.
    pub fn appended(&self, micros: u64) {
        self.appends.fetch_add(1, Relaxed);
        self.append_micros.fetch_add(micros, Relaxed);
    }

    /// The store failed a batch.
    pub fn append_failed(&self) {
        self.append_failures.fetch_add(1, Relaxed);
    }

    /// The history database stopped taking messages for `why` (`Some`),
    /// or takes them again (`None`).
    pub fn store_down(&self, why: Option<&str>) {
        *cause(&self.store_down) = why.map(str::to_owned);
    }

    /// In a cluster: this node cannot reach the log (NATS) for `why`
    /// (`Some`: its heartbeat failed), or reaches it again (`None`).
    pub fn log_down(&self, why: Option<&str>) {
        self.log_known.store(true, Relaxed);
        *cause(&self.log_down) = why.map(str::to_owned);
    }

    /// In a cluster: why this node's heartbeat fails now, if it does.
    pub fn log_cause(&self) -> Option<String> {
        cause(&self.log_down).clone()
    }

    /// What keeps new messages from being taken now, for `/healthz`: the
    /// log unreachable, or the history database failing; `None` while
    /// both work.
    pub fn trouble(&self) -> Option<String> {
        if let Some(why) = cause(&self.log_down).as_ref() {
            return Some(format!(
                "{why}; messages wait or are refused until it answers again"
            ));
        }
        cause(&self.store_down).as_ref().map(|why| {
            format!(
                "the history database fails, so messages are refused until it works again: {why}"
            )
        })
    }

    /// A TLS handshake failed (a client that refused the certificate, or
    /// one that is no TLS client).
    pub fn tls_failed(&self) {
        self.tls_failures.fetch_add(1, Relaxed);
    }

    /// The page: counters, with what the core and the budget say (the
    /// core's gauges left out when it did not answer in time).
    /// `held`: connections holding a place under `--max-clients`.
    pub fn render(&self, core: Option<Snapshot>, queued_bytes: usize, held: usize) -> String {
        let mut out = String::with_capacity(2048);
        head(
            &mut out,
            "chat_connections",
            "gauge",
            "Connections open now, by transport.",
        );
        for (i, (_, name)) in TRANSPORTS.iter().enumerate() {
            let n = self.open[i].load(Relaxed);
            let _ = writeln!(out, "chat_connections{{transport=\"{name}\"}} {n}");
        }
        head(
            &mut out,
            "chat_connections_held",
            "gauge",
            "Connections holding a place under --max-clients: every transport, HTTP too, from accept to close.",
        );
        let _ = writeln!(out, "chat_connections_held {held}");
        head(
            &mut out,
            "chat_connections_opened_total",
            "counter",
            "Connections opened, by transport.",
        );
        for (i, (_, name)) in TRANSPORTS.iter().enumerate() {
            let n = self.opened[i].load(Relaxed);
            let _ = writeln!(
                out,
                "chat_connections_opened_total{{transport=\"{name}\"}} {n}"
            );
        }
        head(
            &mut out,
            "chat_disconnects_total",
            "counter",
            "Connections the server closed, by the error code it sent.",
        );
        for (i, code) in CODES.iter().enumerate() {
            let n = self.closed_for[i].load(Relaxed);
            if i < ALWAYS_SHOWN || n > 0 {
                let reason = code.as_str();
                let _ = writeln!(out, "chat_disconnects_total{{reason=\"{reason}\"}} {n}");
            }
        }
        let gauges = [
            ("chat_rooms", "Rooms held in memory.", core.map(|c| c.rooms)),
            (
                "chat_rooms_unloaded",
                "Rooms resting in the history database, out of memory past --max-rooms, until entered.",
                core.map(|c| c.rooms_unloaded),
            ),
            (
                "chat_members",
                "Connections that joined.",
                core.map(|c| c.members),
            ),
            (
                "chat_outbound_queue_bytes",
                "Bytes queued for clients and not yet written.",
                Some(queued_bytes as u64),
            ),
            (
                "chat_store_up",
                "1 while the history database takes messages (always with --store memory), 0 while it fails and messages are refused.",
                Some(u64::from(cause(&self.store_down).is_none())),
            ),
            (
                "chat_log_up",
                "In a cluster: 1 while this node's heartbeat reaches NATS, 0 while it fails (messages wait or are refused).",
                self.log_known
                    .load(Relaxed)
                    .then(|| u64::from(cause(&self.log_down).is_none())),
            ),
        ];
        for (name, help, v) in gauges {
            // A 0 the core did not say would be a wrong one (and outside
            // a cluster, there is no log to be up).
            let Some(v) = v else { continue };
            head(&mut out, name, "gauge", help);
            let _ = writeln!(out, "{name} {v}");
        }
        if let Some(c) = core {
            let name = "chat_rooms_forgotten_total";
            let help = "Rooms forgotten, history and all, to make way for others (at --max-rooms; with the history database, a room that held a message only past --max-stored-rooms).";
            head(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", c.rooms_forgotten);
        }
        let counters = [
            (
                "chat_messages_total",
                "Messages sequenced.",
                self.messages.load(Relaxed),
            ),
            (
                "chat_deliveries_total",
                "Copies of events queued to connections.",
                self.deliveries.load(Relaxed),
            ),
            (
                "chat_tls_handshake_failures_total",
                "TLS handshakes that failed or timed out (a client refusing the certificate among them; the reasons are logged at debug).",
                self.tls_failures.load(Relaxed),
            ),
            (
                "chat_store_append_failures_total",
                "Batches the history database could not store.",
                self.append_failures.load(Relaxed),
            ),
        ];
        for (name, help, v) in counters {
            head(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {v}");
        }
        let (n, micros) = (self.appends.load(Relaxed), self.append_micros.load(Relaxed));
        let _ = writeln!(
            out,
            "# HELP chat_store_append_seconds Time from handing a batch to the history database to its commit.\n\
             # TYPE chat_store_append_seconds summary\n\
             chat_store_append_seconds_sum {}\n\
             chat_store_append_seconds_count {n}",
            micros as f64 / 1e6
        );
        out
    }
}

/// A metric family's `HELP` and `TYPE` lines.
fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The core too busy to answer: its gauges are left out, not said
    /// to be 0; the rest of the page is there.
    #[test]
    fn a_core_that_did_not_answer_leaves_its_gauges_out() {
        let m = Metrics::default();
        m.message();
        let page = m.render(None, 7, 0);
        assert!(!page.contains("chat_rooms"), "{page}");
        assert!(!page.contains("chat_members"), "{page}");
        for line in ["chat_outbound_queue_bytes 7", "chat_messages_total 1"] {
            assert!(page.lines().any(|l| l == line), "no {line:?} in\n{page}");
        }
    }

    #[test]
    fn the_page_is_prometheus_text_with_every_family() {
        let m = Metrics::default();
        m.opened(Transport::WebSocket);
        m.opened(Transport::Tcp);
        m.closed(Transport::Tcp);
        m.closed_for(ErrorCode::SlowConsumer);
        m.message();
        m.delivered(3);
        m.appended(1_500);
        m.tls_failed();
        let core = Snapshot {
            rooms: 2,
            members: 1,
            rooms_forgotten: 3,
            rooms_unloaded: 4,
        };
        let page = m.render(Some(core), 42, 5);
        for line in [
            "chat_connections{transport=\"websocket\"} 1",
            "chat_connections{transport=\"tcp\"} 0",
            "chat_connections_opened_total{transport=\"tcp\"} 1",
            "chat_connections_held 5",
            "chat_disconnects_total{reason=\"slow_consumer\"} 1",
            "chat_rooms 2",
            "chat_members 1",
            "chat_rooms_forgotten_total 3",
            "chat_rooms_unloaded 4",
            "chat_outbound_queue_bytes 42",
            "chat_messages_total 1",
            "chat_deliveries_total 3",
            "chat_tls_handshake_failures_total 1",
            "chat_store_append_seconds_sum 0.0015",
            "chat_store_append_seconds_count 1",
            "chat_store_up 1",
        ] {
            assert!(page.lines().any(|l| l == line), "no {line:?} in\n{page}");
        }
        // Every sample's family is declared first, once.
        for l in page.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            let family = name.trim_end_matches("_sum").trim_end_matches("_count");
            assert_eq!(
                page.matches(&format!("# TYPE {family} ")).count(),
                1,
                "{family}"
            );
        }
    }

    /// What keeps messages from being taken is on the page and in
    /// `trouble` (for `/healthz`) while it lasts, and gone after; the
    /// log's gauge only once a cluster said how it stands.
    #[test]
    fn a_failing_store_or_log_is_said_until_it_works_again() {
        let m = Metrics::default();
        let page = m.render(None, 0, 0);
        assert!(page.lines().any(|l| l == "chat_store_up 1"), "{page}");
        assert!(!page.contains("chat_log_up"), "{page}");
        assert_eq!(m.trouble(), None);

        m.store_down(Some("the disk is full"));
        assert!(m.render(None, 0, 0).lines().any(|l| l == "chat_store_up 0"));
        let why = m.trouble().expect("the store's trouble");
        assert!(
            why.contains("history database") && why.contains("the disk is full"),
            "{why}"
        );

        m.log_down(Some("cannot heartbeat into NATS: no answer within 1s"));
        assert!(m.render(None, 0, 0).lines().any(|l| l == "chat_log_up 0"));
        let why = m.trouble().expect("the log's trouble");
        assert!(
            why.contains("NATS") && why.contains("no answer within 1s"),
            "{why}"
        );

        m.log_down(None);
        m.store_down(None);
        let page = m.render(None, 0, 0);
        for line in ["chat_log_up 1", "chat_store_up 1"] {
            assert!(page.lines().any(|l| l == line), "no {line:?} in\n{page}");
        }
        assert_eq!(m.trouble(), None);
    }

    #[test]
    fn every_code_a_connection_is_closed_with_is_counted() {
        let m = Metrics::default();
        m.closed_for(ErrorCode::BadFrame);
        m.closed_for(ErrorCode::BadFrame);
        m.closed_for(ErrorCode::Unavailable);
        m.closed_for(ErrorCode::NickTaken);
        let page = m.render(None, 0, 0);
        for line in [
            "chat_disconnects_total{reason=\"bad_frame\"} 2",
            "chat_disconnects_total{reason=\"unavailable\"} 1",
            "chat_disconnects_total{reason=\"resumed_elsewhere\"} 0",
            "chat_disconnects_total{reason=\"timeout\"} 0",
            "chat_disconnects_total{reason=\"nick_taken\"} 1",
        ] {
            assert!(page.lines().any(|l| l == line), "no {line:?} in\n{page}");
        }
        // A code never closed with is left out until it is.
        assert!(!page.contains("\"duplicate\""), "{page}");
        // Each code once, and every fatal one shown from the start.
        for (i, code) in CODES.iter().enumerate() {
            assert_eq!(CODES.iter().filter(|c| *c == code).count(), 1, "{code}");
            assert!(i < ALWAYS_SHOWN || !code.is_fatal(), "{code}");
        }
    }
}
