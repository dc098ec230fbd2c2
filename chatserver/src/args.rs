//! Command-line flags; each of the server's can also come from an
//! environment variable (not `export`'s `--room` and `--since`).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

mod check;
mod derived;
mod env;
mod parse;
mod values;

pub use env::naming_variables;
use values::{on_off, parse_listen, parse_network, parse_origin, whole};

/// The chat server: named rooms, history and resume, many clients over TCP.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct Args {
    /// Something other than serving (see `chatserver help export`).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Where history is kept: the server creates it if missing; one server
    /// per directory. `export` reads it and creates nothing (before or
    /// after `export`, the same flag).
    #[arg(
        long,
        env = "CHATSERVER_DATA_DIR",
        default_value = "chat-data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// `sqlite`: history, rooms and sessions survive restarts and crashes
    /// (in DATA_DIR/chat.db). `memory`: everything is lost when the server
    /// stops.
    #[arg(long, env = "CHATSERVER_STORE", value_enum, default_value_t = StoreKind::Sqlite)]
    pub store: StoreKind,

    /// `normal`: a message survives the server being killed (a power cut may
    /// lose the last instants). `full`: every batch is on the disk before it
    /// is acknowledged (slower).
    #[arg(long, env = "CHATSERVER_SYNC", value_enum, default_value_t = SyncMode::Normal)]
    pub sync: SyncMode,

    /// Stored events (messages, and joins and leaves) older than this many
    /// days are deleted (0 to 36500; 0: kept whatever their age).
    /// Retention runs in the background, in small steps.
    #[arg(long, env = "CHATSERVER_HISTORY_MAX_AGE_DAYS", default_value_t = 30,
          value_parser = whole::<u64>(0, 36_500))]
    pub history_max_age_days: u64,

    /// Stored events kept per room: those of its newest N seqs (messages,
    /// and joins and leaves; a seq given while the store failed, never
    /// stored, counts too; 1 to 1000000000000); older ones are deleted.
    #[arg(long, env = "CHATSERVER_HISTORY_MAX_MESSAGES", default_value_t = 1_000_000,
          value_parser = whole::<u64>(1, 1_000_000_000_000))]
    pub history_max_messages: u64,

    /// Whether `--history-max-messages` and `--history-max-age-days` were
    /// given (on the command line or in the environment), not left to
    /// their defaults: see [`Args::parse_noting_given`].
    #[arg(skip)]
    pub retention_given: (bool, bool),

    /// Whether `export` reads the cluster (`--cluster` given, and no
    /// `--data-dir` on the command line when `--cluster` came from the
    /// environment) rather than the database: see
    /// [`Args::parse_noting_given`].
    #[arg(skip)]
    pub export_cluster: bool,

    /// Whether both `--cluster` and `--data-dir` are on the command line
    /// (`export` cannot read both).
    #[arg(skip)]
    pub export_both: bool,

    /// Whether `--data-dir` was given (on the command line or in the
    /// environment): a cluster node says it does not use it.
    #[arg(skip)]
    pub data_dir_given: bool,

    /// Whether `--store` was given: a cluster node says it does not use
    /// it.
    #[arg(skip)]
    pub store_given: bool,

    /// Whether `--sync` was given: a cluster node, or a server with
    /// `--store memory`, says it does not use it.
    #[arg(skip)]
    pub sync_given: bool,

    /// Whether `--store-max-mib` and `--history-prune-every-secs` were
    /// given: a server with `--store memory` says it does not use them.
    #[arg(skip)]
    pub disk_only_given: (bool, bool),

    /// The cluster's own flags given (`--cluster-replicas`,
    /// `--node-dead-after-ms`): without `--cluster` they do nothing, and
    /// the server says so.
    #[arg(skip)]
    pub cluster_only_given: Vec<&'static str>,

    /// The flags given that shape the rate limit (`--burst`,
    /// `--rate-bytes`, `--burst-bytes`, `--read-rate-bytes`,
    /// `--read-burst-bytes`, `--rate-limit-grace-ms`): with `--rate 0`
    /// there is none, and the server says they are not used.
    #[arg(skip)]
    pub rate_only_given: Vec<&'static str>,

    /// The flags whose value came from their environment variable, as
    /// `("--max-clients", "CHATSERVER_MAX_CLIENTS")`: an error about one
    /// names the variable too ([`Args::naming_variables`]).
    #[arg(skip)]
    pub from_env: Vec<(String, String)>,

    /// How often retention runs, in seconds, and once at start (1 to 86400).
    #[arg(long, env = "CHATSERVER_HISTORY_PRUNE_EVERY_SECS", default_value_t = 60,
          value_parser = whole::<u64>(1, 86_400))]
    pub history_prune_every_secs: u64,

    /// Most the database may grow to, in MiB (0 to 16777216; 0: until the
    /// disk is full).
    /// When full, messages are refused with `unavailable` until retention
    /// frees room.
    #[arg(long, env = "CHATSERVER_STORE_MAX_MIB", default_value_t = 0,
          value_parser = whole::<u64>(0, 16_777_216))]
    pub store_max_mib: u64,

    /// Address to listen on, HOST:PORT (a name is resolved). Use
    /// 0.0.0.0:7878 to accept clients from the LAN (the addresses to give
    /// people are printed), port 0 to let the OS choose (the first line of
    /// output says which).
    #[arg(long, env = "CHATSERVER_LISTEN", default_value = "127.0.0.1:7878",
          value_parser = parse_listen)]
    pub listen: String,

    /// A PEM certificate chain: with --tls-key, the port also speaks TLS
    /// (chatproto, https:// and wss://).
    #[arg(long, env = "CHATSERVER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long, env = "CHATSERVER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// With a certificate: refuse unencrypted connections (plain chatproto
    /// and http://).
    #[arg(long, env = "CHATSERVER_TLS_ONLY", value_parser = on_off)]
    pub tls_only: bool,

    /// Origins whose pages may open a WebSocket (comma-separated, e.g.
    /// https://chat.example.org). The page's own (on the host and port of
    /// the Host it asked for, over http or https) may without being listed
    /// when it is an IP address or a local name (localhost, a one-label
    /// name, *.local, *.lan, *.internal, *.home.arpa, *.localhost); a
    /// public name must be listed.
    // The text is --help's too, where a URL in angle brackets would read badly.
    #[allow(rustdoc::bare_urls)]
    #[arg(long, env = "CHATSERVER_ALLOWED_ORIGINS", value_delimiter = ',',
          value_parser = parse_origin)]
    pub allowed_origins: Vec<Option<String>>,

    /// Networks besides loopback that may read /metrics (comma-separated
    /// CIDRs, e.g. 10.0.0.0/8).
    #[arg(long, env = "CHATSERVER_METRICS_ALLOW", value_delimiter = ',',
          value_parser = parse_network)]
    pub metrics_allow: Vec<Option<ipnet::IpNet>>,

    /// Most connections at once, joined or not (1 to 1000000); the next one
    /// gets server_full.
    #[arg(long, env = "CHATSERVER_MAX_CLIENTS", default_value_t = 10_000,
          value_parser = whole::<u64>(1, 1_000_000))]
    pub max_clients: u64,

    /// Most connections at once from one IP address (0 to 1000000; 0: no
    /// limit).
    #[arg(long, env = "CHATSERVER_MAX_CLIENTS_PER_IP", default_value_t = 64,
          value_parser = whole::<u64>(0, 1_000_000))]
    pub max_clients_per_ip: u64,

    /// New connections one IP address may open a minute, on average, past
    /// --connect-burst-per-ip (0 to 1000000; 0: no limit); the next one
    /// gets server_full. Off when --max-clients-per-ip is 0.
    #[arg(long, env = "CHATSERVER_CONNECT_RATE_PER_IP", default_value_t = 60,
          value_parser = whole::<u32>(0, 1_000_000))]
    pub connect_rate_per_ip: u32,

    /// New connections one IP address may open at once before
    /// --connect-rate-per-ip applies (1 to 1000000).
    #[arg(long, env = "CHATSERVER_CONNECT_BURST_PER_IP", default_value_t = 64,
          value_parser = whole::<u32>(1, 1_000_000))]
    pub connect_burst_per_ip: u32,

    /// Largest frame payload in bytes, both directions (1024 to 16777215: a
    /// frame's first byte is then 0, which tells chatproto from HTTP and TLS). A
    /// larger length header gets frame_too_large and the connection closes.
    #[arg(long, env = "CHATSERVER_MAX_FRAME_BYTES", default_value_t = 65_536,
          value_parser = whole::<u32>(1024, 16_777_215))]
    pub max_frame_bytes: u32,

    /// Most recipients one message may name (1 to 65536). A longer `to`
    /// list is refused with too_many_recipients before any name is looked
    /// up, which bounds what one message costs the room.
    #[arg(long, env = "CHATSERVER_MAX_RECIPIENTS", default_value_t = 64,
          value_parser = whole::<u32>(1, 65_536))]
    pub max_recipients: u32,

    /// Most rooms one client may be in at once (1 to 65536).
    #[arg(long, env = "CHATSERVER_MAX_ROOMS_PER_CLIENT", default_value_t = 32,
          value_parser = whole::<u32>(1, 65_536))]
    pub max_rooms_per_client: u32,

    /// Most rooms the server holds in memory at once (1 to 1000000). Past
    /// it, a new room takes the least recently used room nobody is in out
    /// of memory: with the history database, one that held a message rests
    /// there, unloaded, and comes back when entered (see
    /// --max-stored-rooms); otherwise it is forgotten, history and all. If
    /// every room has members (or in cluster mode, which forgets none),
    /// entering a new one gets too_many_rooms.
    #[arg(long, env = "CHATSERVER_MAX_ROOMS", default_value_t = 10_000,
          value_parser = whole::<u32>(1, 1_000_000))]
    pub max_rooms: u32,

    /// Most rooms the history database keeps, those in memory included (1
    /// to 8000000). Past it, the room unloaded longest ago is forgotten and
    /// its stored history deleted. At most --max-rooms, no room is
    /// unloaded: every room taken out of memory is forgotten. Each unloaded
    /// room costs about 250 bytes of memory. Ignored with --store memory
    /// and in cluster mode.
    #[arg(long, env = "CHATSERVER_MAX_STORED_ROOMS", default_value_t = 100_000,
          value_parser = whole::<u32>(1, 8_000_000))]
    pub max_stored_rooms: u32,

    /// Messages kept in memory per room (1 to 1000000), for replay and history.
    #[arg(long, env = "CHATSERVER_HISTORY_PER_ROOM", default_value_t = 2_048,
          value_parser = whole::<u32>(1, 1_000_000))]
    pub history_per_room: u32,

    /// Bytes of messages kept in memory per room (at least 1024); the
    /// oldest are forgotten first.
    #[arg(long, env = "CHATSERVER_HISTORY_BYTES_PER_ROOM", default_value_t = 1 << 20,
          value_parser = whole::<u64>(1024, u64::MAX))]
    pub history_bytes_per_room: u64,

    /// Bytes of messages kept in memory for all rooms together (at least
    /// 1024); past it, the least recently used rooms with history forget
    /// their oldest.
    #[arg(long, env = "CHATSERVER_HISTORY_BYTES_TOTAL", default_value_t = 256 << 20,
          value_parser = whole::<u64>(1024, u64::MAX))]
    pub history_bytes_total: u64,

    /// Most messages an enter with since replays (0 to 100000).
    #[arg(long, env = "CHATSERVER_REPLAY_LIMIT", default_value_t = 500,
          value_parser = whole::<u32>(0, 100_000))]
    pub replay_limit: u32,

    /// Most bytes one enter's replay takes (at least 1024, and less than
    /// --outbound-queue-bytes).
    #[arg(long, env = "CHATSERVER_REPLAY_BYTES", default_value_t = 512 << 10,
          value_parser = whole::<u64>(1024, u64::MAX))]
    pub replay_bytes: u64,

    /// Most messages one history page holds (1 to 10000).
    #[arg(long, env = "CHATSERVER_HISTORY_PAGE", default_value_t = 200,
          value_parser = whole::<u32>(1, 10_000))]
    pub history_page: u32,

    /// Most stored events one history page or replay looks at (1 to
    /// 10000000): a page short of messages the asker may see then ends
    /// with where to go on from.
    #[arg(long, env = "CHATSERVER_HISTORY_SCAN", default_value_t = 10_000,
          value_parser = whole::<u32>(1, 10_000_000))]
    pub history_scan: u32,

    /// How long a session may be resumed after its connection ended, in
    /// milliseconds (0 to 86400000; 0: sessions end with their connection).
    #[arg(long, env = "CHATSERVER_RESUME_WINDOW_MS", default_value_t = 120_000,
          value_parser = whole::<u64>(0, 86_400_000))]
    pub resume_window_ms: u64,

    /// Most sessions waiting to be resumed at once (1 to 1000000); past it
    /// the oldest is forgotten.
    #[arg(long, env = "CHATSERVER_MAX_DETACHED_SESSIONS", default_value_t = 2_048,
          value_parser = whole::<u32>(1, 1_000_000))]
    pub max_detached_sessions: u32,

    /// How many of a session's latest message ids are remembered, to refuse
    /// a resent message as duplicate (1 to 1000000).
    #[arg(long, env = "CHATSERVER_ID_WINDOW", default_value_t = 1_024,
          value_parser = whole::<u32>(1, 1_000_000))]
    pub id_window: u32,

    /// In a room with more members than this, entering and leaving are sent
    /// only to whoever entered or left: a join storm would otherwise cost
    /// members squared frames. Members see who is in on entering (0 to
    /// 1000000; 0: always only to whoever entered or left).
    #[arg(long, env = "CHATSERVER_PRESENCE_FANOUT_MAX", default_value_t = 1_000,
          value_parser = whole::<u32>(0, 1_000_000))]
    pub presence_fanout_max: u32,

    /// Allow only printable-ASCII nicknames (the v1 rule) instead of
    /// Unicode ones (letters and digits of one script, normalized, with
    /// look-alikes refused; see PROTOCOL.md section 3).
    #[arg(long, env = "CHATSERVER_ASCII_NICKS", value_parser = on_off)]
    pub ascii_nicks: bool,

    /// A connection must join within this many milliseconds (100 to 600000);
    /// an HTTP answer not taken this long closes its connection.
    #[arg(long, env = "CHATSERVER_JOIN_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = whole::<u64>(100, 600_000))]
    pub join_timeout_ms: u64,

    /// A joined client silent this many milliseconds is pinged (100 to
    /// 3600000).
    #[arg(long, env = "CHATSERVER_IDLE_PING_MS", default_value_t = 30_000,
          value_parser = whole::<u64>(100, 3_600_000))]
    pub idle_ping_ms: u64,

    /// A ping not answered within this many milliseconds closes the
    /// connection (100 to 600000).
    #[arg(long, env = "CHATSERVER_PONG_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = whole::<u64>(100, 600_000))]
    pub pong_timeout_ms: u64,

    /// Frames per second a client may send on average (0 to 1000000; 0: no
    /// limit, bytes included). Past the burst the server stops reading from
    /// it, so TCP slows the sender.
    #[arg(long, env = "CHATSERVER_RATE", default_value_t = 50,
          value_parser = whole::<u32>(0, 1_000_000))]
    pub rate: u32,

    /// Frames a client may send at once before the rate applies (1 to
    /// 1000000).
    #[arg(long, env = "CHATSERVER_BURST", default_value_t = 100,
          value_parser = whole::<u32>(1, 1_000_000))]
    pub burst: u32,

    /// Payload bytes per second a client may send on average, beside
    /// --rate (by default one frame of --max-frame-bytes a second, 65536;
    /// 0 to 1000000000; 0: no limit on bytes, only --rate): past --burst-bytes the
    /// server reads it slower, as for frames. Off when --rate is 0.
    #[arg(long, env = "CHATSERVER_RATE_BYTES",
          value_parser = whole::<u32>(0, 1_000_000_000))]
    pub rate_bytes: Option<u32>,

    /// Payload bytes a client may send at once before --rate-bytes applies
    /// (by default four frames of --max-frame-bytes, 262144; 1024 to
    /// 1073741824, and at least --max-frame-bytes).
    #[arg(long, env = "CHATSERVER_BURST_BYTES",
          value_parser = whole::<u32>(1024, 1 << 30))]
    pub burst_bytes: Option<u32>,

    /// Bytes per second, on average, the server sends a client in answer
    /// to its reads: replayed messages, history pages, member lists, the
    /// room list (0 to 1000000000; 0: no limit). Past --read-burst-bytes
    /// the client's next frame that asks to read (enter, join, history,
    /// rooms) waits until it is paid for. Off when --rate is 0.
    #[arg(long, env = "CHATSERVER_READ_RATE_BYTES", default_value_t = 512 << 10,
          value_parser = whole::<u32>(0, 1_000_000_000))]
    pub read_rate_bytes: u32,

    /// Bytes a client may be sent at once in answer to its reads before
    /// --read-rate-bytes applies (by default a full replay and a frame of
    /// members for each of --max-rooms-per-client rooms, 18874368; 1024 to
    /// 1099511627776, and at least --replay-bytes and --max-frame-bytes).
    /// What is sent at once must also fit --outbound-queue-max-bytes,
    /// which by default holds every room's replay at once.
    #[arg(long, env = "CHATSERVER_READ_BURST_BYTES",
          value_parser = whole::<u64>(1024, 1 << 40))]
    pub read_burst_bytes: Option<u64>,

    /// A client held back by the rate limit for this many milliseconds
    /// without a break gets rate_limited and is closed (100 to 3600000).
    #[arg(long, env = "CHATSERVER_RATE_LIMIT_GRACE_MS", default_value_t = 10_000,
          value_parser = whole::<u64>(100, 3_600_000))]
    pub rate_limit_grace_ms: u64,

    /// Bytes queued for one client that it has not read yet (each frame
    /// also counts 32 bytes for its place in the queue); past this for
    /// --slow-consumer-ms, in which it read less than this many bytes, it
    /// gets slow_consumer and is closed (one that read as many is given
    /// --slow-consumer-ms again) (4096 to 1073741824, and at least
    /// --max-frame-bytes plus 36: one frame with its 4-byte header and
    /// its 32 must fit).
    #[arg(long, env = "CHATSERVER_OUTBOUND_QUEUE_BYTES", default_value_t = 1 << 20,
          value_parser = whole::<u64>(4096, 1 << 30))]
    pub outbound_queue_bytes: u64,

    /// How long, in milliseconds, a client's unread output may stay past
    /// --outbound-queue-bytes (a burst it is reading) before it gets
    /// slow_consumer and is closed, unless it read at least
    /// --outbound-queue-bytes meanwhile: then it has this long again,
    /// and so on while it reads; 0: closed as soon as it passes it
    /// (0 to 600000).
    #[arg(long, env = "CHATSERVER_SLOW_CONSUMER_MS", default_value_t = 5_000,
          value_parser = whole::<u64>(0, 600_000))]
    pub slow_consumer_ms: u64,

    /// Bytes queued for one client past which it gets slow_consumer and
    /// is closed at once, in its grace or not (by default room for a full
    /// replay and a frame of members for each of --max-rooms-per-client
    /// rooms and --outbound-queue-bytes besides, 19922944, and at least
    /// 16777216; 4096 to 1073741824, and at least
    /// --outbound-queue-bytes).
    #[arg(long, env = "CHATSERVER_OUTBOUND_QUEUE_MAX_BYTES",
          value_parser = whole::<u64>(4096, 1 << 30))]
    pub outbound_queue_max_bytes: Option<u64>,

    /// Bytes all outbound queues may hold together (each buffer of
    /// encoded frames counted once however many queues share it, plus 32
    /// bytes per queue entry).
    /// Past this the client with the longest queue gets slow_consumer and
    /// is closed, then the next, until the total is under three quarters
    /// (4096 to 68719476736).
    #[arg(long, env = "CHATSERVER_OUTBOUND_TOTAL_BYTES", default_value_t = 128 << 20,
          value_parser = whole::<u64>(4096, 1 << 36))]
    pub outbound_total_bytes: u64,

    /// How long a closing connection may take to receive what was queued
    /// for it, in milliseconds (0 to 60000).
    #[arg(long, env = "CHATSERVER_CLOSE_FLUSH_MS", default_value_t = 2_000,
          value_parser = whole::<u64>(0, 60_000))]
    pub close_flush_ms: u64,

    /// Run as one node of a cluster: NATS server URLs (comma-separated,
    /// e.g. nats://127.0.0.1:4222), whose JetStream holds every room's
    /// history, the nicknames and the sessions, shared by every node.
    /// --data-dir, --store and --sync are then not used. Serving needs
    /// --node too; with `export`, the cluster whose history to print (no
    /// --node).
    #[arg(long, env = "CHATSERVER_CLUSTER", value_delimiter = ',', global = true)]
    pub cluster: Vec<String>,

    /// This node's name in the cluster: 1 to 32 of a-z A-Z 0-9 - _,
    /// different on every node (a node restarted keeps its name).
    #[arg(long, env = "CHATSERVER_NODE")]
    pub node: Option<String>,

    /// Copies JetStream keeps of each room's stream and of the buckets
    /// (1 to 5; at most the number of NATS servers in its cluster).
    #[arg(long, env = "CHATSERVER_CLUSTER_REPLICAS", default_value_t = 1,
          value_parser = whole::<u64>(1, 5))]
    pub cluster_replicas: u64,

    /// A node whose heartbeat (one a second) stops for this long is taken
    /// for dead (2000 to 600000 ms: at least two heartbeats): its clients
    /// leave their rooms and their nicknames are free again.
    #[arg(long, env = "CHATSERVER_NODE_DEAD_AFTER_MS", default_value_t = 3_000,
          value_parser = whole::<u64>(2_000, 600_000))]
    pub node_dead_after_ms: u64,

    /// Worker threads (0 to 1024; 0: one per CPU the process may run on).
    /// With 1 (given, or 0 on one CPU) everything runs on one thread, which
    /// batches best when the server has one core to itself.
    #[arg(long, env = "CHATSERVER_THREADS", default_value_t = 0,
          value_parser = whole::<u64>(0, 1024))]
    pub threads: u64,

    /// Log level: off, error, warn, info (every join, leave and message),
    /// debug or trace [default: info]. This flag wins over RUST_LOG, which
    /// is used when the flag is not given (levels, or TARGET=LEVEL pairs).
    #[arg(long, env = "CHATSERVER_LOG_LEVEL", value_parser = ["off", "error", "warn", "info", "debug", "trace"])]
    pub log_level: Option<String>,

    /// Which message text the log shows: all (default), public (private
    /// and group messages logged without their text), none (no text).
    #[arg(long, env = "CHATSERVER_LOG_TEXT", value_enum, default_value_t = LogText::All)]
    pub log_text: LogText,
}

/// Which message text the log shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogText {
    /// Every message's text.
    All,
    /// Only messages to everyone in a room.
    Public,
    /// No text at all.
    None,
}

/// The least `--outbound-queue-max-bytes` when not given (see
/// [`Args::default_queue_max_bytes`]).
pub const DEFAULT_QUEUE_MAX_BYTES: usize = 16 << 20;

/// Where history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// An SQLite database in the data directory.
    Sqlite,
    /// Memory only.
    Memory,
}

/// How hard each batch is pushed to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyncMode {
    /// Survives the process being killed.
    Normal,
    /// Survives a power cut too.
    Full,
}

/// What else chatserver can do.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Print stored history as JSON lines (one `msg` object per line, as on
    /// the wire), room by room in seq order: the database's in --data-dir,
    /// or with --cluster the rooms' streams in NATS. Safe while servers run.
    Export {
        /// Only this room.
        #[arg(long)]
        room: Option<String>,
        /// Only messages with a seq above this.
        #[arg(long, default_value_t = 0, value_parser = whole::<u64>(0, u64::MAX))]
        since: u64,
    },
}
