//! Command-line flags; each of the server's can also come from an
//! environment variable (not `export`'s `--room` and `--since`).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

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
    /// longer than --slow-consumer-ms it gets slow_consumer and is closed
    /// (4096 to 1073741824, and at least --max-frame-bytes plus 36: one
    /// frame with its 4-byte header and its 32 must fit).
    #[arg(long, env = "CHATSERVER_OUTBOUND_QUEUE_BYTES", default_value_t = 1 << 20,
          value_parser = whole::<u64>(4096, 1 << 30))]
    pub outbound_queue_bytes: u64,

    /// How long, in milliseconds, a client's unread output may stay past
    /// --outbound-queue-bytes (a burst it is reading) before it gets
    /// slow_consumer and is closed; 0: closed as soon as it passes it
    /// (0 to 600000).
    #[arg(long, env = "CHATSERVER_SLOW_CONSUMER_MS", default_value_t = 5_000,
          value_parser = whole::<u64>(0, 600_000))]
    pub slow_consumer_ms: u64,

    /// Bytes queued for one client past which it gets slow_consumer and
    /// is closed at once, in its grace or not (by default 16777216, or
    /// --outbound-queue-bytes if that is more; 4096 to 1073741824, and at
    /// least --outbound-queue-bytes).
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

/// `--outbound-queue-max-bytes` when not given (or
/// `--outbound-queue-bytes`, if that is more).
pub const DEFAULT_QUEUE_MAX_BYTES: usize = 16 << 20;

impl Args {
    /// The limits of each client's outbound queue: past
    /// `--outbound-queue-bytes` for `--slow-consumer-ms`, or past
    /// `--outbound-queue-max-bytes` at once (with no grace, the first).
    pub fn queue_limits(&self) -> crate::peer::QueueLimits {
        let bytes = self.outbound_queue_bytes as usize;
        if self.slow_consumer_ms == 0 {
            return crate::peer::QueueLimits::fixed(bytes);
        }
        let max = self
            .outbound_queue_max_bytes
            .map_or(DEFAULT_QUEUE_MAX_BYTES.max(bytes), |m| m as usize);
        crate::peer::QueueLimits {
            bytes,
            max_bytes: max.max(bytes),
        }
    }

    /// [`Parser::parse`], noting whether the retention limits were given
    /// (a cluster node applies them to the rooms made before only then).
    /// A `CHATSERVER_*` variable set to nothing (a blank line of an
    /// environment file) counts as not given, whatever its setting: it is
    /// unset first. Call it before any other thread starts.
    pub fn parse_noting_given() -> Args {
        use clap::parser::ValueSource;
        use clap::{CommandFactory, FromArgMatches};
        let blank: Vec<std::ffi::OsString> = std::env::vars_os()
            .filter(|(k, v)| {
                k.to_str().is_some_and(|k| k.starts_with("CHATSERVER_"))
                    && v.to_str().is_some_and(|v| v.trim().is_empty())
            })
            .map(|(k, _)| k)
            .collect();
        for k in blank {
            std::env::remove_var(k);
        }
        // `--rate -1` is a bad value for --rate, not an unknown flag `-1`.
        let negative = |a: clap::Arg| {
            let takes = a.get_action().takes_values();
            a.allow_negative_numbers(takes)
        };
        let mut command = Args::command()
            .mut_args(negative)
            .mut_subcommand("export", |c| c.mut_args(negative));
        let matches = command
            .try_get_matches_from_mut(std::env::args_os())
            .unwrap_or_else(|e| from_env_tip(&command, e).exit());
        let mut args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let given = |id: &str| {
            matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        args.retention_given = (given("history_max_messages"), given("history_max_age_days"));
        // `export --data-dir DIR` on a machine whose environment makes it
        // a node (CHATSERVER_CLUSTER) reads DIR, as it says.
        let on_line = |id: &str| matches!(matches.value_source(id), Some(ValueSource::CommandLine));
        args.export_cluster = on_line("cluster") || (given("cluster") && !on_line("data_dir"));
        args.export_both = on_line("cluster") && on_line("data_dir");
        args.data_dir_given = given("data_dir");
        args.store_given = given("store");
        args.sync_given = given("sync");
        args.disk_only_given = (given("store_max_mib"), given("history_prune_every_secs"));
        args.cluster_only_given = [
            ("cluster_replicas", "--cluster-replicas"),
            ("node_dead_after_ms", "--node-dead-after-ms"),
        ]
        .into_iter()
        .filter_map(|(id, flag)| given(id).then_some(flag))
        .collect();
        args.rate_only_given = [
            ("burst", "--burst"),
            ("rate_bytes", "--rate-bytes"),
            ("burst_bytes", "--burst-bytes"),
            ("read_rate_bytes", "--read-rate-bytes"),
            ("read_burst_bytes", "--read-burst-bytes"),
            ("rate_limit_grace_ms", "--rate-limit-grace-ms"),
        ]
        .into_iter()
        .filter_map(|(id, flag)| given(id).then_some(flag))
        .collect();
        args.from_env = command
            .get_arguments()
            .filter(|a| {
                matches!(
                    matches.value_source(a.get_id().as_str()),
                    Some(ValueSource::EnvVariable)
                )
            })
            .filter_map(|a| {
                let long = a.get_long()?;
                let var = a.get_env()?.to_string_lossy().into_owned();
                Some((format!("--{long}"), var))
            })
            .collect();
        args
    }

    /// `message`, an error that names flags, with the variable named after
    /// each flag whose value came from the environment (an operator who
    /// set `CHATSERVER_REPLAY_BYTES` in a unit file may not connect it
    /// with `--replay-bytes`).
    pub fn naming_variables(&self, message: &str) -> String {
        naming_variables(message, &self.from_env)
    }

    /// An empty `--cluster ""` or `--node ""` on the command line counts
    /// as not given: it must not switch cluster mode on (blank variables
    /// are unset before parsing, see [`Args::parse_noting_given`]).
    pub fn tidy(&mut self) {
        self.cluster.retain(|url| !url.trim().is_empty());
        if self.node.as_deref().is_some_and(|n| n.trim().is_empty()) {
            self.node = None;
        }
    }

    /// How fast one address may open connections, as given
    /// (`--connect-rate-per-ip`, `--connect-burst-per-ip`).
    pub fn connect_rate(&self) -> crate::limits::ConnectRate {
        crate::limits::ConnectRate {
            per_minute: self.connect_rate_per_ip,
            burst: self.connect_burst_per_ip,
        }
    }

    /// The byte allowance, in bytes a second: 0 when there is none (also
    /// with no rate limit), by default one frame a second.
    pub fn rate_bytes(&self) -> u32 {
        if self.rate == 0 {
            return 0;
        }
        self.rate_bytes.unwrap_or(self.max_frame_bytes)
    }

    /// The byte allowance's burst: as given, or four frames.
    pub fn burst_bytes(&self) -> u32 {
        self.burst_bytes
            .unwrap_or_else(|| self.max_frame_bytes.saturating_mul(4))
    }

    /// The read allowance, in bytes a second: 0 when there is none (also
    /// with no rate limit).
    pub fn read_rate_bytes(&self) -> u32 {
        if self.rate == 0 {
            return 0;
        }
        self.read_rate_bytes
    }

    /// The read allowance's burst: as given, or a full replay and a frame
    /// of members for each room a client may be in, so that a client
    /// entering all its rooms again after a reconnect waits for none.
    pub fn read_burst_bytes(&self) -> u64 {
        self.read_burst_bytes.unwrap_or_else(|| {
            let room = self.replay_bytes + u64::from(self.max_frame_bytes);
            room.saturating_mul(u64::from(self.max_rooms_per_client))
        })
    }

    /// Settings that are each in range but cannot work together: the
    /// message names them.
    pub fn check(&self) -> Result<(), String> {
        let burst = self.burst_bytes.filter(|b| *b < self.max_frame_bytes);
        if let Some(burst) = burst.filter(|_| self.rate_bytes() > 0) {
            return Err(format!(
                "--burst-bytes {burst} is less than one frame of --max-frame-bytes {}; use at least {}",
                self.max_frame_bytes, self.max_frame_bytes
            ));
        }
        let one_frame = u64::from(self.max_frame_bytes) + 36;
        if self.outbound_queue_bytes < one_frame {
            // The least that starts: a queue must also exceed a replay
            // (checked below), so say that too when it is the larger.
            let least = one_frame.max(self.replay_bytes.saturating_add(1));
            let replay = if least > one_frame {
                format!(" (more than --replay-bytes {})", self.replay_bytes)
            } else {
                String::new()
            };
            return Err(format!(
                "--outbound-queue-bytes {} cannot hold one frame of --max-frame-bytes {}; use at least {least}{replay}",
                self.outbound_queue_bytes, self.max_frame_bytes,
            ));
        }
        if let Some(max) = self.outbound_queue_max_bytes {
            if max < self.outbound_queue_bytes {
                return Err(format!(
                    "--outbound-queue-max-bytes {max} is below --outbound-queue-bytes {}; use at least that",
                    self.outbound_queue_bytes
                ));
            }
        }
        match (&self.node, self.cluster.is_empty()) {
            (None, false) => return Err("--cluster needs --node NAME (one name per node)".into()),
            (Some(_), true) => return Err("--node is for cluster mode: give --cluster too".into()),
            (Some(n), false) => {
                let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
                if n.is_empty() || n.len() > 32 || !n.chars().all(ok) {
                    return Err(format!("--node {n:?}: use 1 to 32 of a-z A-Z 0-9 - _"));
                }
            }
            (None, true) => {}
        }
        if self.replay_bytes >= self.outbound_queue_bytes {
            return Err(format!(
                "--replay-bytes {} must be less than --outbound-queue-bytes {}: a replay would close its own client",
                self.replay_bytes, self.outbound_queue_bytes
            ));
        }
        self.check_reads()
    }

    /// The read allowance against the settings it must hold: one replay,
    /// and one history page, fit in its burst.
    fn check_reads(&self) -> Result<(), String> {
        let Some(burst) = self.read_burst_bytes else {
            return Ok(());
        };
        let least = self.replay_bytes.max(u64::from(self.max_frame_bytes));
        if burst < least && self.read_rate_bytes() > 0 {
            return Err(format!(
                "--read-burst-bytes {burst} is less than one replay of --replay-bytes {} or one page of --max-frame-bytes {}; use at least {least}",
                self.replay_bytes, self.max_frame_bytes
            ));
        }
        Ok(())
    }
}

/// See [`Args::naming_variables`]: `from_env` is [`Args::from_env`].
pub fn naming_variables(message: &str, from_env: &[(String, String)]) -> String {
    // `--burst` is not `--burst-bytes`: a flag ends where a name cannot go on.
    let names = |flag: &str| {
        message.match_indices(flag).any(|(at, _)| {
            !message[at + flag.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
        })
    };
    let came: Vec<String> = from_env
        .iter()
        .filter(|(flag, _)| names(flag))
        .map(|(flag, var)| format!("{flag} is from {var}"))
        .collect();
    match came.is_empty() {
        true => message.to_owned(),
        false => format!("{message} ({})", came.join(", ")),
    }
}

/// A numeric flag: a whole number from `lo` to `hi` (`u64::MAX`: at
/// least `lo`), refused in those words whatever is wrong
/// with it (a sign, a letter, a fraction, too large), rather than in the
/// parser's ("invalid digit found in string").
fn whole<T>(lo: u64, hi: u64) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
{
    move |s: &str| {
        let want = if hi == u64::MAX {
            format!("a whole number, at least {lo}")
        } else {
            format!("a whole number from {lo} to {hi}")
        };
        s.parse::<u64>()
            .ok()
            .filter(|n| (lo..=hi).contains(n))
            .and_then(|n| T::try_from(n).ok())
            .ok_or(want)
    }
}

/// An on/off flag's value from the environment: the words README lists
/// (and `y`, `t`, `n`, `f`), in any case; a bad one is refused naming
/// them (clap's own parser said only "value was not a boolean").
fn on_off(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" | "t" => Ok(true),
        "0" | "false" | "no" | "off" | "n" | "f" => Ok(false),
        _ => Err("use 1, true, yes or on, or 0, false, no or off".to_owned()),
    }
}

/// `--listen`: HOST:PORT, the host a name or an address, the port 0 to
/// 65535. Whether the name resolves is known only when binding.
fn parse_listen(s: &str) -> Result<String, String> {
    let shape = "use HOST:PORT, such as 127.0.0.1:7878, 0.0.0.0:7878 or [::]:7878";
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("no port; {shape}"));
    };
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err(format!("no host; {shape}"));
    }
    port.parse::<u16>()
        .map_err(|_| format!("the port {port:?} is not 0 to 65535; {shape}"))?;
    Ok(s.to_owned())
}

/// `--allowed-origins`: each an origin as a browser sends it,
/// `SCHEME://HOST[:PORT]` (`https://chat.example.org`, an app's
/// `tauri://localhost`; a trailing `/` is dropped, case does not matter)
/// or `null` (a page opened from a file, a sandboxed frame). A host alone,
/// or a URL with a path, never equals a browser's origin: refused. So is
/// a port that is not 1 to 65535; the scheme's default one (`:443` after
/// `https`, `:80` after `http`) is dropped, as a browser leaves it out.
/// An empty one (a trailing comma) is `None`: skipped.
fn parse_origin(s: &str) -> Result<Option<String>, String> {
    // Spaces around one are let be.
    let origin = s.trim().trim_end_matches('/');
    if origin.is_empty() {
        return Ok(None);
    }
    if origin.eq_ignore_ascii_case("null") {
        return Ok(Some(origin.to_owned()));
    }
    let shape = "an origin is SCHEME://HOST with a port or not and nothing after, such as https://chat.example.org, or null";
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Err(shape.to_owned());
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let rest_ok = !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@'])
        && !rest.chars().any(char::is_whitespace);
    if !scheme_ok || !rest_ok {
        return Err(shape.to_owned());
    }
    // The port: after the last `:`, outside an IPv6 address's brackets.
    let (host, port) = crate::web::split_port(rest);
    if host.is_empty() || host == "[]" {
        return Err(shape.to_owned());
    }
    let Some(port) = port else {
        return Ok(Some(origin.to_owned()));
    };
    let number = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0 && port.bytes().all(|b| b.is_ascii_digit()));
    let Some(number) = number else {
        return Err(format!("the port {port:?} of {origin} is not 1 to 65535"));
    };
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    };
    if default == Some(number) {
        // A browser never sends it: `https://chat.example.org:443` would
        // never match.
        return Ok(Some(format!("{scheme}://{host}")));
    }
    Ok(Some(origin.to_owned()))
}

/// A network for `--metrics-allow`: `ADDRESS/PREFIX`, or an address
/// alone for that one host; spaces around it are let be, and an empty
/// one (a trailing comma) is `None`: skipped, as in `--allowed-origins`.
fn parse_network(s: &str) -> Result<Option<ipnet::IpNet>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(net) = s.parse::<ipnet::IpNet>() {
        return Ok(Some(net));
    }
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(Some(ip.into()));
    }
    match s.split_once('/') {
        Some((ip, prefix)) if ip.parse::<std::net::IpAddr>().is_ok() => {
            let max = if ip.contains(':') { 128 } else { 32 };
            Err(format!(
                "the prefix length {prefix} is not a number from 0 to {max}"
            ))
        }
        _ => Err(
            "a network is ADDRESS/PREFIX, such as 10.0.0.0/8 or fd00::/8, or one address"
                .to_owned(),
        ),
    }
}

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

/// A bad value that came from the environment, not the command line:
/// clap names the flag (`--max-clients`), which an operator who set
/// `CHATSERVER_MAX_CLIENTS` may not connect with it, so the error says
/// which variable it was.
fn from_env_tip(command: &clap::Command, mut e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() == ErrorKind::InvalidUtf8 {
        let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
        return match not_utf8(command, &argv, std::env::vars_os()) {
            Some(text) => clap::Error::raw(ErrorKind::InvalidUtf8, text).with_cmd(command),
            None => e,
        };
    }
    if e.kind() == ErrorKind::MissingRequiredArgument {
        return partner_tip(command, e);
    }
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return e;
    }
    let Some(ContextValue::String(shown)) = e.get(ContextKind::InvalidArg) else {
        return e;
    };
    // `--max-clients <MAX_CLIENTS>`, or `--tls-only`.
    let flag = shown.split(' ').next().unwrap_or_default().to_owned();
    let Some(env) = env_of(command, &flag) else {
        return e;
    };
    if !on_line(&flag) {
        let tip = format!(
            "the value came from the environment variable {}",
            env.to_string_lossy()
        );
        e.insert(
            ContextKind::Suggested,
            ContextValue::StyledStrs(vec![tip.into()]),
        );
    }
    e
}

/// The environment variable of `flag` (`--max-clients`), set or not.
fn env_var_of<'a>(command: &'a clap::Command, flag: &str) -> Option<&'a std::ffi::OsStr> {
    command
        .get_arguments()
        .find(|a| a.get_long().is_some_and(|l| flag == format!("--{l}")))
        .and_then(|a| a.get_env())
}

/// The environment variable of `flag`, if it is set.
fn env_of<'a>(command: &'a clap::Command, flag: &str) -> Option<&'a std::ffi::OsStr> {
    env_var_of(command, flag).filter(|env| std::env::var_os(env).is_some())
}

/// Whether `flag` is on the command line (as the OS gave it: `args()`
/// would panic on an argument not UTF-8).
fn on_line(flag: &str) -> bool {
    std::env::args_os().skip(1).any(|a| {
        let a = a.to_string_lossy();
        a == flag
            || a.strip_prefix(flag)
                .is_some_and(|rest| rest.starts_with('='))
    })
}

/// The flags that need each other (`requires` both ways).
const PARTNERS: [(&str, &str); 1] = [("--tls-cert", "--tls-key")];

/// A flag missing because its partner was given: when the partner came
/// from the environment, say which variable set it (clap names only
/// `--tls-cert`, to an operator who set `CHATSERVER_TLS_KEY` and no flag
/// at all) and the missing one's variable.
fn partner_tip(command: &clap::Command, mut e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::Strings(missing)) = e.get(ContextKind::InvalidArg) else {
        return e;
    };
    let mut tips = Vec::new();
    for shown in missing {
        let flag = shown.split(' ').next().unwrap_or_default();
        let Some(partner) = PARTNERS
            .iter()
            .find_map(|&(a, b)| (a == flag).then_some(b).or((b == flag).then_some(a)))
        else {
            continue;
        };
        let Some(env) = env_of(command, partner).filter(|_| !on_line(partner)) else {
            continue;
        };
        let its_env = env_var_of(command, flag)
            .map(|v| format!(" (or {})", v.to_string_lossy()))
            .unwrap_or_default();
        tips.push(format!(
            "{partner} came from the environment variable {}: give {flag}{its_env} too, or unset it",
            env.to_string_lossy()
        ));
    }
    if !tips.is_empty() {
        let tips = tips.into_iter().map(Into::into).collect();
        e.insert(ContextKind::Suggested, ContextValue::StyledStrs(tips));
    }
    e
}

/// clap says only "invalid UTF-8 was detected in one or more arguments",
/// also when the bytes came from a flag's environment variable: then
/// the words naming it (each, when several are), if no argument on the
/// command line is at fault. `None` when one is, or no such variable is
/// set.
fn not_utf8(
    cmd: &clap::Command,
    argv: &[std::ffi::OsString],
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Option<String> {
    use clap::parser::ValueSource;
    if argv.iter().any(|a| a.to_str().is_none()) {
        return None;
    }
    let vars: Vec<(std::ffi::OsString, std::ffi::OsString)> =
        vars.filter(|(_, v)| v.to_str().is_none()).collect();
    // The flags whose variable holds such bytes, but for a path (any
    // bytes make one).
    let any_bytes = |a: &clap::Arg| {
        let of = a.get_value_parser().type_id();
        of == std::any::TypeId::of::<std::path::PathBuf>()
            || of == std::any::TypeId::of::<std::ffi::OsString>()
    };
    let mut bad: Vec<(clap::Id, String)> = cmd
        .get_arguments()
        .filter(|a| !any_bytes(a))
        .filter_map(|a| {
            let var = a.get_env()?;
            vars.iter()
                .any(|(k, _)| k == var)
                .then(|| (a.get_id().clone(), var.to_string_lossy().into_owned()))
        })
        .collect();
    // Not those given on the command line: clap did not read their variable.
    let mut without = cmd.clone();
    for (id, _) in &bad {
        without = without.mut_arg(id.clone(), |a| a.env(None));
    }
    if let Ok(matches) = without.try_get_matches_from(argv) {
        bad.retain(|(id, _)| matches.value_source(id.as_str()) != Some(ValueSource::CommandLine));
    }
    let mut bad: Vec<String> = bad.into_iter().map(|(_, var)| var).collect();
    if bad.is_empty() {
        return None;
    }
    bad.sort();
    let (what, is) = match bad.len() {
        1 => ("variable", "is"),
        _ => ("variables", "are"),
    };
    Some(format!(
        "the environment {what} {} {is} not valid UTF-8\n",
        bad.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_names_the_variables_its_flags_came_from() {
        let from_env = [
            ("--burst".to_owned(), "CHATSERVER_BURST".to_owned()),
            ("--listen".to_owned(), "CHATSERVER_LISTEN".to_owned()),
        ];
        assert_eq!(
            naming_variables("--burst-bytes 9 is less than one frame", &from_env),
            "--burst-bytes 9 is less than one frame"
        );
        assert_eq!(
            naming_variables("choose another port with --listen (port 0)", &from_env),
            "choose another port with --listen (port 0) (--listen is from CHATSERVER_LISTEN)"
        );
        assert_eq!(
            naming_variables("--burst 0 and --listen", &from_env),
            "--burst 0 and --listen (--burst is from CHATSERVER_BURST, --listen is from CHATSERVER_LISTEN)"
        );
    }

    #[test]
    #[cfg(unix)]
    fn a_variable_not_utf8_is_named() {
        use clap::CommandFactory;
        use std::os::unix::ffi::OsStringExt;
        let cmd = Args::command();
        let os = |s: &str| std::ffi::OsString::from(s);
        let bad = || std::ffi::OsString::from_vec(vec![b'a', 0xff]);
        let vars = || {
            vec![
                (os("CHATSERVER_LISTEN"), bad()),
                (os("CHATSERVER_UNKNOWN"), bad()),
                (os("HOME"), bad()),
                (os("CHATSERVER_NODE"), os("ok")),
                // A path may be any bytes.
                (os("CHATSERVER_DATA_DIR"), bad()),
            ]
            .into_iter()
        };
        assert_eq!(
            not_utf8(&cmd, &[os("chatserver")], vars()).as_deref(),
            Some("the environment variable CHATSERVER_LISTEN is not valid UTF-8\n")
        );
        // Given on the command line, the variable was not read.
        let given = [os("chatserver"), os("--listen"), os("127.0.0.1:1")];
        assert_eq!(not_utf8(&cmd, &given, vars()), None);
        // The command line's own bytes: clap's words stand.
        assert_eq!(not_utf8(&cmd, &[os("chatserver"), bad()], vars()), None);
        assert_eq!(
            not_utf8(&cmd, &[os("chatserver")], std::iter::empty()),
            None
        );
    }

    /// A refusal's "use at least N", followed, is not refused again: the
    /// smallest queue was one frame's, though a queue must also exceed
    /// `--replay-bytes` (524,288 by default, ten times a frame).
    #[test]
    fn the_smallest_outbound_queue_said_is_one_that_starts() {
        use clap::Parser;
        for extra in [
            &[][..],
            &["--replay-bytes", "2048"],
            &["--max-frame-bytes", "1000000"],
        ] {
            let mut argv = vec!["chatserver", "--outbound-queue-bytes", "4096"];
            argv.extend_from_slice(extra);
            let mut args = Args::try_parse_from(&argv).unwrap();
            let err = args.check().unwrap_err();
            let least = err
                .split("use at least ")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{argv:?}: no least in {err:?}"));
            args.outbound_queue_bytes = least;
            assert_eq!(args.check(), Ok(()), "{argv:?}: {err}");
        }
    }

    #[test]
    fn origins_a_browser_can_send_are_taken() {
        for (given, kept) in [
            ("https://chat.example.org", "https://chat.example.org"),
            ("https://chat.example.org/", "https://chat.example.org"),
            (" http://192.168.1.10:7878 ", "http://192.168.1.10:7878"),
            ("HTTPS://Chat.Example.org", "HTTPS://Chat.Example.org"),
            ("http://[::1]:7878", "http://[::1]:7878"),
            ("http://[::1]", "http://[::1]"),
            ("tauri://localhost", "tauri://localhost"),
            ("chrome-extension://abcdef", "chrome-extension://abcdef"),
            ("null", "null"),
            // The scheme's default port: a browser leaves it out.
            ("https://chat.example.org:443", "https://chat.example.org"),
            ("HTTPS://chat.example.org:443/", "HTTPS://chat.example.org"),
            ("http://192.168.1.10:80", "http://192.168.1.10"),
            ("http://[::1]:80", "http://[::1]"),
            ("https://chat.example.org:80", "https://chat.example.org:80"),
            ("http://chat.example.org:443", "http://chat.example.org:443"),
            ("tauri://localhost:443", "tauri://localhost:443"),
        ] {
            assert_eq!(parse_origin(given), Ok(Some(kept.to_owned())), "{given:?}");
        }
        assert_eq!(parse_origin(""), Ok(None));
        assert_eq!(parse_origin(" "), Ok(None));
        for bad in [
            "chat.example.org",
            "https://",
            "https://chat.example.org/room",
            "https://a.example?x",
            "https://user@a.example",
            "https://a b",
            "1http://a.example",
            "https://:443",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad:?}");
        }
        for bad in [
            "http://x.org:99999",
            "http://x.org:0",
            "http://x.org:",
            "http://x.org:+80",
            "http://x.org:http",
            "http://[::1]:65536",
        ] {
            let why = parse_origin(bad).unwrap_err();
            assert!(why.contains("not 1 to 65535"), "{bad:?}: {why}");
        }
    }

    #[test]
    fn networks_take_a_prefix_or_one_address() {
        for (given, kept) in [
            ("10.0.0.0/8", "10.0.0.0/8"),
            (" 192.168.0.0/16", "192.168.0.0/16"),
            ("10.0.0.1", "10.0.0.1/32"),
            ("fd00::/8", "fd00::/8"),
            ("::1", "::1/128"),
        ] {
            let net = parse_network(given).map(|n| n.map(|n| n.to_string()));
            assert_eq!(net, Ok(Some(kept.to_owned())), "{given:?}");
        }
        // An empty one (a trailing comma) is skipped, as an origin's is.
        assert_eq!(parse_network(""), Ok(None));
        assert_eq!(parse_network(" "), Ok(None));
        let wrong = parse_network("10.0.0.0/33").unwrap_err();
        assert!(
            wrong.contains("prefix length 33") && wrong.contains("0 to 32"),
            "{wrong}"
        );
        let wrong = parse_network("fd00::/129").unwrap_err();
        assert!(wrong.contains("0 to 128"), "{wrong}");
        for bad in ["ten", "10.0.0/8", "10.0.0.0/8/8"] {
            assert!(parse_network(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn listen_takes_host_and_port() {
        for ok in [
            "127.0.0.1:7878",
            "0.0.0.0:0",
            "[::]:7878",
            "localhost:65535",
            "::1:7878",
        ] {
            assert_eq!(parse_listen(ok).as_deref(), Ok(ok), "{ok:?}");
        }
        for bad in [
            "nonsense",
            ":7878",
            "127.0.0.1:",
            "127.0.0.1:65536",
            "127.0.0.1:-1",
            "a b:1",
        ] {
            assert!(parse_listen(bad).is_err(), "{bad:?}");
        }
    }
}
