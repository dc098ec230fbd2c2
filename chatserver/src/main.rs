//! chatserver: chat rooms over TCP, TLS and WebSockets, with a web page.
//!
//! Rooms, sessions and history are `chatproto::Server`; this binary only
//! moves bytes: an accept loop, the edge that tells the ways in apart
//! (`edge`), one task per connection (`conn`, `tlsconn`, `wsconn`), the web
//! routes (`web`), one task that owns the core (`hub`) and the history
//! database's thread (`store`); or, as a node of a cluster, the link to
//! NATS JetStream in place of the database (`cluster`: rooms as streams,
//! nicknames, sessions and heartbeats as buckets). See README.md for the
//! flags.

mod args;
mod budget;
mod cluster;
mod conn;
mod datadir;
mod edge;
mod feed;
mod hub;
mod limits;
mod metrics;
mod peer;
mod ratelimit;
mod refuse;
mod stage;
mod stall;
mod stdout;
mod store;
mod tls;
mod tlsconn;
mod trim;
mod web;
mod writer;
mod wsconn;

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use chatproto::{Server, ServerConfig};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::args::Args;
use crate::limits::Limits;

/// How long a cluster node may take to read every room's log at start.
const CATCH_UP: Duration = Duration::from_secs(120);

/// How many inputs may wait for the hub before connection tasks wait too.
const HUB_QUEUE: usize = 4096;

/// The settings connection tasks need.
#[derive(Debug)]
pub struct Settings {
    max_frame_bytes: usize,
    rate: u32,
    burst: u32,
    /// The byte allowance: 0 when there is none (or no rate limit).
    rate_bytes: u32,
    burst_bytes: u32,
    /// The read allowance: 0 when there is none (or no rate limit).
    read_rate_bytes: u32,
    read_burst_bytes: u64,
    /// What a read not yet answered is taken to cost: a replay and a frame.
    read_reserve_bytes: u64,
    rate_limit_grace_ms: u64,
    queue: peer::QueueLimits,
    close_flush_ms: u64,
    budget: Arc<budget::OutboundBudget>,
    join_timeout_ms: u64,
    tls_only: bool,
    allowed_origins: Vec<String>,
    metrics_allow: Vec<ipnet::IpNet>,
    metrics: Arc<metrics::Metrics>,
}

impl Settings {
    /// A new connection's read allowance (`None`: none).
    fn read_allowance(&self) -> Option<ratelimit::ReadAllowance> {
        ratelimit::ReadAllowance::new(
            self.read_rate_bytes,
            self.read_burst_bytes,
            self.read_reserve_bytes,
            std::time::Instant::now(),
        )
    }
}

fn main() -> std::process::ExitCode {
    let mut args = Args::parse_noting_given();
    args.tidy();
    if let Some(args::Command::Export { room, since }) = &args.command {
        // A usage error, as the server's own are: exit 2, before anything is opened.
        if args.export_both {
            eprintln!(
                "chatserver export: give --cluster (a cluster's history) or --data-dir (a database's), not both"
            );
            return std::process::ExitCode::from(2);
        }
        if let Some(Err(e)) = room.as_deref().map(store::export_room) {
            eprintln!("chatserver export: {e}");
            return std::process::ExitCode::from(2);
        }
        let done = if args.cluster.is_empty() || !args.export_cluster {
            store::export(&args.data_dir, room.as_deref(), *since)
        } else {
            export_cluster(&args.cluster, room.as_deref(), *since)
        };
        return match done {
            Ok(()) => std::process::ExitCode::SUCCESS,
            // `chatserver export | head`: done, quietly.
            Err(e) if e == store::READER_GONE => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("chatserver export: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    if let Err(e) = args.check() {
        eprintln!("chatserver: {}", args.naming_variables(&e));
        return std::process::ExitCode::from(2);
    }
    let filter = match log_filter(args.log_level.as_deref(), std::env::var("RUST_LOG").ok()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("chatserver: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(|| stdout::LogOut)
        .init();
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = match worker_threads(args.threads, available) {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chatserver: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let from_env = args.from_env.clone();
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let e = args::naming_variables(&e.to_string(), &from_env);
            eprintln!("chatserver: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Flags given that do nothing, as a sentence's subject: `--a is`, `--a,
/// --b and --c are`; `None` for none.
fn flags_are(flags: &[&str]) -> Option<String> {
    let (last, first) = flags.split_last()?;
    Some(if first.is_empty() {
        format!("{last} is")
    } else {
        format!("{} and {last} are", first.join(", "))
    })
}

/// The wall clock: milliseconds since the Unix epoch (0 if before it).
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The error of a bind that failed, naming the address, and what to do
/// where there is something to say.
fn cannot_listen(args: &Args, e: std::io::Error) -> std::io::Error {
    let hint = match e.kind() {
        std::io::ErrorKind::AddrNotAvailable => {
            "; that is not an address of this machine: give one of its own, \
             0.0.0.0:PORT for all of them, or 127.0.0.1:PORT for this machine only"
        }
        std::io::ErrorKind::AddrInUse => {
            "; another program (a chatserver still running?) has that port: stop it, \
             or choose another port with --listen (port 0 lets the system choose)"
        }
        std::io::ErrorKind::PermissionDenied if privileged_port(&args.listen) => {
            "; ports below 1024 need privileges: choose one above 1023 with --listen"
        }
        _ => "",
    };
    std::io::Error::new(
        e.kind(),
        format!("cannot listen on {}: {e}{hint}", args.listen),
    )
}

/// Whether `HOST:PORT` names a port from 1 to 1023, which only a
/// privileged process may listen on.
fn privileged_port(listen: &str) -> bool {
    listen
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .is_some_and(|port| (1..1024).contains(&port))
}

/// Start and serve. A certificate clients will refuse is said once
/// `listening on` is out (nothing may come before it), or, by a start
/// that fails after reading it, before the failure's line: mending that
/// failure must not be the first the operator hears of the certificate.
async fn run(args: Args) -> std::io::Result<()> {
    let mut doubts = Vec::new();
    let served = serve(args, &mut doubts).await;
    if served.is_err() {
        for doubt in doubts {
            warn!("{doubt}");
        }
    }
    served
}

/// Start and serve; `doubts` gets what is wrong with the certificate,
/// and is emptied once it is said.
async fn serve(args: Args, doubts: &mut Vec<String>) -> std::io::Result<()> {
    // What the store makes of the data directory, taken away if this
    // start fails before it serves. The first local, so the last dropped:
    // after the database is closed.
    let sqlite = args.cluster.is_empty() && args.store == args::StoreKind::Sqlite;
    let made = datadir::Made::before(sqlite.then_some(args.data_dir.as_path()));
    // The port first, so that a server that cannot listen makes nothing
    // at all: bound and let go at once, then bound for good once the
    // server is ready to accept (until then a client is refused, and tries
    // again). A cluster node touches nothing in NATS either: its start
    // heartbeats under its --node name, which a node running under that
    // name (the same command started twice, its port taken) would see
    // taken over, and the others free that node's nicknames.
    drop(std::net::TcpListener::bind(args.listen.as_str()).map_err(|e| cannot_listen(&args, e))?);
    // The certificate before the store, for the same reason.
    // A certificate clients will refuse (expired, a CA's) is not a reason
    // to stop, but the operator hears of it at start, not from users
    // (see `run`).
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let (config, leaf) = tls::load(cert, key).map_err(std::io::Error::other)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            *doubts = tls::doubts(&leaf, cert, now);
            Some(tokio_rustls::TlsAcceptor::from(config))
        }
        _ => None,
    };
    if args.tls_only && tls.is_none() {
        return Err(std::io::Error::other(
            "--tls-only needs --tls-cert and --tls-key",
        ));
    }
    // Then the store: a directory another server holds, or a file that is
    // not ours, stops us before we accept anyone.
    let db = match args.store {
        _ if !args.cluster.is_empty() => None,
        args::StoreKind::Memory => None,
        args::StoreKind::Sqlite => {
            let sync = match args.sync {
                args::SyncMode::Normal => chatstore::Sync::Normal,
                args::SyncMode::Full => chatstore::Sync::Full,
            };
            let mut db = chatstore::Store::open(&args.data_dir, sync)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            if args.store_max_mib > 0 {
                db.set_max_bytes(Some(args.store_max_mib << 20))
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
            }
            Some(db)
        }
    };
    let began_empty = db
        .as_ref()
        .is_some_and(chatstore::Store::began_in_an_empty_file);
    let joined = args.node.as_ref().filter(|_| !args.cluster.is_empty());
    let settings = Arc::new(Settings {
        max_frame_bytes: args.max_frame_bytes as usize,
        rate: args.rate,
        burst: args.burst,
        rate_bytes: args.rate_bytes(),
        burst_bytes: args.burst_bytes(),
        read_rate_bytes: args.read_rate_bytes(),
        read_burst_bytes: args.read_burst_bytes(),
        read_reserve_bytes: args.replay_bytes + u64::from(args.max_frame_bytes),
        rate_limit_grace_ms: args.rate_limit_grace_ms,
        queue: args.queue_limits(),
        close_flush_ms: args.close_flush_ms,
        budget: budget::OutboundBudget::new(args.outbound_total_bytes as usize),
        join_timeout_ms: args.join_timeout_ms,
        tls_only: args.tls_only,
        allowed_origins: args.allowed_origins.iter().flatten().cloned().collect(),
        metrics_allow: args.metrics_allow.iter().flatten().copied().collect(),
        metrics: Arc::new(metrics::Metrics::default()),
    });
    let mut config = ServerConfig::default();
    config.max_frame_bytes = settings.max_frame_bytes;
    config.join_timeout_ms = args.join_timeout_ms;
    config.idle_ping_ms = args.idle_ping_ms;
    config.pong_timeout_ms = args.pong_timeout_ms;
    config.max_recipients = args.max_recipients as usize;
    config.max_rooms_per_client = args.max_rooms_per_client as usize;
    config.max_rooms = args.max_rooms as usize;
    config.max_stored_rooms = args.max_stored_rooms as usize;
    config.history_per_room = args.history_per_room as usize;
    config.history_bytes_per_room = args.history_bytes_per_room as usize;
    config.history_bytes_total = args.history_bytes_total as usize;
    config.replay_limit = args.replay_limit as usize;
    config.replay_bytes = args.replay_bytes as usize;
    config.history_page = args.history_page as usize;
    config.history_scan = args.history_scan as usize;
    config.resume_window_ms = args.resume_window_ms;
    config.id_window = args.id_window as usize;
    config.max_detached_sessions = args.max_detached_sessions as usize;
    config.presence_fanout_max = args.presence_fanout_max as usize;
    // Said in `welcome`, so that clients pace themselves under it.
    config.rate = u64::from(args.rate);
    config.burst = u64::from(args.burst);
    config.rate_bytes = u64::from(settings.rate_bytes);
    config.burst_bytes = u64::from(settings.burst_bytes);
    config.read_rate_bytes = u64::from(settings.read_rate_bytes);
    config.read_burst_bytes = settings.read_burst_bytes;
    if args.ascii_nicks {
        config.nick_rule = chatproto::NickRule::Ascii;
    }
    // Session tokens are only unguessable if the seed is.
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| std::io::Error::other(format!("no random seed from the OS: {e}")))?;
    config.durable = db.is_some() || !args.cluster.is_empty();
    config.cluster = !args.cluster.is_empty();
    let mut server = Server::new(config, seed);
    if !args.cluster.is_empty() {
        // Sessions begun on every node share one space of ids: each run
        // takes a random 2^32 of them.
        let mut base = [0u8; 4];
        getrandom::fill(&mut base)
            .map_err(|e| std::io::Error::other(format!("no random seed from the OS: {e}")))?;
        server.reserve_sessions(u64::from(u32::from_le_bytes(base) | 1) << 32);
    }
    let clock = hub::Clock::new();
    // Said once `listening on` is out (nothing may come before it).
    let mut opened = None;
    let link = match db {
        None => None,
        Some(db) => {
            let restored = store::restore(
                &mut server,
                &db,
                clock.now(),
                args.max_detached_sessions as usize,
            )
            .map_err(|e| {
                let e = e.naming(db.path());
                std::io::Error::other(format!("cannot read the history database: {e}"))
            })?;
            opened = Some(restored);
            let retention = store::Retention {
                max_age_ms: args.history_max_age_days.saturating_mul(86_400_000),
                max_per_room: args.history_max_messages,
                sessions: args.max_detached_sessions as usize,
                every: Duration::from_secs(args.history_prune_every_secs),
            };
            Some(store::spawn(db, retention)?)
        }
    };
    // The first retention pass is asked for once `listening on` is out.
    let prune_now = link.as_ref().map(|l| l.tx.clone());
    let mut hub = hub::Hub::new(
        server,
        clock,
        link,
        settings.queue,
        Duration::from_millis(args.slow_consumer_ms),
        Arc::clone(&settings.budget),
        Arc::clone(&settings.metrics),
    );
    hub.set_log_text(args.log_text);
    // Cluster mode: connect, follow every room, and catch up with each
    // before accepting anyone.
    let mut caught_up = None;
    let mut cluster_link = None;
    let mut limits_set = None;
    if let (Some(node), false) = (&args.node, args.cluster.is_empty()) {
        let (tx, rx) = mpsc::channel(HUB_QUEUE);
        let settings = cluster::Settings {
            urls: args.cluster.clone(),
            node: node.clone(),
            replicas: args.cluster_replicas as usize,
            dead_after: Duration::from_millis(args.node_dead_after_ms),
            claim_timeout: Duration::from_millis((args.join_timeout_ms / 2).clamp(50, 3_000)),
            max_messages: args.history_max_messages,
            max_age: Duration::from_millis(args.history_max_age_days.saturating_mul(86_400_000)),
            max_messages_given: args.retention_given.0,
            max_age_given: args.retention_given.1,
            starts_every: Duration::from_secs(args.history_prune_every_secs),
            max_frame_bytes: args.max_frame_bytes as usize,
            metrics: Arc::clone(&settings.metrics),
        };
        let (link, rooms, set) = cluster::Cluster::start(settings, tx)
            .await
            .map_err(std::io::Error::other)?;
        let mut catch_up = std::collections::HashMap::new();
        limits_set = Some(set);
        for (room, last) in rooms {
            link.follow(&room);
            if last > 0 {
                catch_up.insert(room, last);
            }
        }
        let (done, wait) = tokio::sync::oneshot::channel();
        cluster_link = Some(Arc::clone(&link));
        hub.set_cluster(hub::ClusterSide::new(link, rx, catch_up, done));
        caught_up = Some(wait);
    }

    let listening = hub.listening();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (to_hub, hub_rx) = mpsc::channel(HUB_QUEUE);
    let hub_task = tokio::spawn(hub.run(hub_rx, stop_rx.clone()));
    let caught_up = match caught_up {
        Some(wait) => tokio::time::timeout(CATCH_UP, wait).await.is_ok(),
        None => true,
    };
    // Before saying we listen: a supervisor may send SIGTERM as soon as it
    // reads that line, and an unhandled SIGTERM kills us with no flush.
    let mut signals = Signals::new();
    let listener = match listen(&args, tls.is_some()).await {
        Ok(listener) => listener,
        Err(e) => {
            // Nobody was served: the hub closes the database (or leaves
            // the cluster) before what this start made is taken away. The
            // store's thread ends once every sender to it is gone.
            drop(prune_now);
            let _ = stop_tx.send(true);
            let _ = hub_task.await;
            return Err(e);
        }
    };
    made.keep();
    if let Ok(addr) = listener.local_addr() {
        log_settings(&args, addr, tls.is_some());
    }
    listening.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(link) = &cluster_link {
        link.set_ready();
        // Caught up: this node can say who is in a room to one that asks.
        tokio::spawn(Arc::clone(link).answer_rosters());
    }
    if let Some(tx) = prune_now {
        let _ = tx.send(store::ToStore::Prune);
    }
    for doubt in std::mem::take(doubts) {
        warn!("{doubt}");
    }
    let unused: Vec<&str> = [
        (args.data_dir_given, "--data-dir"),
        (args.store_given, "--store"),
        (args.sync_given, "--sync"),
    ]
    .into_iter()
    .filter_map(|(given, flag)| given.then_some(flag))
    .collect();
    // Only the flags given: one not given is no mistake to point at.
    if let (false, Some(flags)) = (args.cluster.is_empty(), flags_are(&unused)) {
        warn!("{flags} not used by a cluster node: the rooms' history is in NATS JetStream (`chatserver export --cluster URLS` prints it)");
    } else if args.cluster.is_empty() && args.store == args::StoreKind::Memory {
        let unused: Vec<&str> = [
            (args.data_dir_given, "--data-dir"),
            (args.sync_given, "--sync"),
            (args.retention_given.0, "--history-max-messages"),
            (args.retention_given.1, "--history-max-age-days"),
            (args.disk_only_given.1, "--history-prune-every-secs"),
            (args.disk_only_given.0, "--store-max-mib"),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect();
        if let Some(flags) = flags_are(&unused) {
            warn!("{flags} not used with --store memory: nothing is written to disk (each room keeps its newest --history-per-room messages in memory)");
        }
    }
    if let Some(flags) = flags_are(&args.cluster_only_given).filter(|_| args.cluster.is_empty()) {
        warn!("{flags} not used without --cluster: this server runs alone, its history its own");
    }
    if let Some(flags) = flags_are(&args.rate_only_given).filter(|_| args.rate == 0) {
        warn!("{flags} not used with --rate 0: clients are not rate-limited at all");
    }
    if opened.is_some() {
        let open = datadir::open_to_others(&args.data_dir);
        if !open.is_empty() {
            let modes: Vec<String> = open
                .iter()
                .map(|(p, mode)| format!("{} {mode:o}", p.display()))
                .collect();
            warn!(
                modes = %modes.join(", "),
                "the data directory is open to other users of this machine, and private messages are in it: `chmod -R go-rwx '{}'` makes it its owner's only",
                args.data_dir.display()
            );
        }
    }
    if let Some(r) = opened {
        info!(
            dir = %args.data_dir.display(),
            rooms = r.rooms,
            sessions = r.sessions,
            "history database open"
        );
        // A damaged or hand-edited database could hold many: the first
        // few, then how many more.
        const SAID: usize = 16;
        for why in r.refused.iter().take(SAID) {
            warn!(reason = %why, "a room or session stored in the history database was not restored; the server goes on without it");
        }
        if r.refused.len() > SAID {
            warn!(
                more = r.refused.len() - SAID,
                "more rooms or sessions stored in the history database were not restored"
            );
        }
        if began_empty {
            warn!(
                file = %args.data_dir.join(chatstore::DB_FILE).display(),
                "the database file was there but held nothing (a copy of chat.db made without its chat.db-wal while a server ran?): a new history was begun in it"
            );
        }
        if r.unloaded > 0 {
            info!(
                unloaded = r.unloaded,
                max_rooms = args.max_rooms,
                "the database holds more rooms than --max-rooms: the least recently active rest there, unloaded, until entered"
            );
        }
        if r.left > 0 {
            warn!(
                left = r.left,
                max_stored_rooms = args.max_stored_rooms,
                "the database holds more rooms than --max-stored-rooms: the least recently active are left in the file, unknown to the server (entering one begins it anew, deleting its history; chatserver export still reads them)"
            );
        }
    }
    if let Some(node) = joined {
        info!(
            node,
            nats = args.cluster.join(","),
            "a node of the cluster; every room's log read"
        );
        if let Some(set) = &limits_set {
            set.log();
        }
        if !caught_up {
            warn!("not caught up with every room's log in time; accepting clients anyway");
        }
    }
    // Every connection task holds a clone; when all are dropped, all are done.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let limits = Limits::new(
        args.max_clients as usize,
        args.max_clients_per_ip as usize,
        args.connect_rate(),
    );
    let edge = Arc::new(edge::Edge {
        to_hub,
        settings: Arc::clone(&settings),
        tls,
        stop: stop_rx.clone(),
    });
    let accept = tokio::spawn(accept_loop(listener, edge, limits, stop_rx, done_tx));

    let stop = signals.next().await;
    info!(
        "{} received: stop accepting, notify clients, flush (a second signal exits at once)",
        stop.name
    );
    // A second signal while the stop waits for clients to read what is
    // queued (up to --close-flush-ms) or for the store: the operator wants
    // out now. Nothing acknowledged is lost: a message is echoed only
    // once stored, and the database is safe to leave at any instant.
    tokio::spawn(async move {
        let again = signals.next().await;
        warn!(
            "{} received while stopping: exiting now, without waiting for clients to read what is queued",
            again.name
        );
        std::process::exit(i32::from(again.status));
    });
    settings
        .metrics
        .stopping
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = stop_tx.send(true);
    let _ = accept.await;
    let _ = hub_task.await;
    let grace = Duration::from_millis(settings.close_flush_ms) + Duration::from_secs(1);
    if tokio::time::timeout(grace, done_rx.recv()).await.is_err() {
        warn!("some connections had not ended by --close-flush-ms (output not yet read, or a request not finished); exiting all the same");
    }
    info!("bye");
    Ok(())
}

/// Bind the port for good and say so: `listening on IP:PORT` first (with
/// the real port when asked for port 0), then where to point a browser,
/// and on all addresses, the LAN's.
async fn listen(args: &Args, tls: bool) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(args.listen.as_str())
        .await
        .map_err(|e| cannot_listen(args, e))?;
    let addr = listener.local_addr()?;
    // One write (the lines together), and never a failed start for a
    // stdout nobody reads (see `stdout`).
    let mut out = vec![format!("listening on {addr}")];
    let scheme = if tls { "https" } else { "http" };
    if addr.ip().is_unspecified() {
        // 0.0.0.0 is no address to open: this machine's, then the LAN's.
        let here = if addr.is_ipv6() {
            std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
        } else {
            std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST)
        };
        let here = std::net::SocketAddr::new(here, addr.port());
        out.push(format!(
            "open {scheme}://{here}/ in a browser on this machine"
        ));
    } else {
        out.push(format!("open {scheme}://{addr}/ in a browser"));
    }
    if addr.ip().is_unspecified() {
        for ip in lan_addresses(addr.is_ipv6()) {
            let at = std::net::SocketAddr::new(ip, addr.port());
            out.push(format!("on your LAN: {scheme}://{at}/ (chatclient {at})"));
        }
    }
    let mut log = stdout::LogOut;
    let _ = log.write_all(format!("{}\n", out.join("\n")).as_bytes());
    let _ = log.flush();
    Ok(listener)
}

/// One line at start with the settings an operator checks first, each
/// named as its flag (`--max-clients` is `max_clients`); a 0 that means
/// no limit says `unlimited`. Settings that do not apply (a data
/// directory in memory or cluster mode, a burst with no rate limit) are
/// left out.
fn log_settings(args: &Args, addr: std::net::SocketAddr, tls: bool) {
    let cluster = !args.cluster.is_empty();
    let sqlite = !cluster && args.store == args::StoreKind::Sqlite;
    let store = match args.store {
        _ if cluster => "cluster",
        args::StoreKind::Sqlite => "sqlite",
        args::StoreKind::Memory => "memory",
    };
    let sync = match args.sync {
        args::SyncMode::Normal => "normal",
        args::SyncMode::Full => "full",
    };
    let data_dir = args.data_dir.to_string_lossy();
    let urls = args.cluster.join(",");
    // Kept on disk or in the cluster's streams; nowhere in memory mode.
    let kept = sqlite || cluster;
    let max_age = kept.then_some(tracing::field::display(Cap(args.history_max_age_days)));
    let max_mib = sqlite.then_some(tracing::field::display(Cap(args.store_max_mib)));
    let connect = args.connect_rate().beside(args.max_clients_per_ip as usize);
    info!(
        listen = %addr,
        tls = match (tls, args.tls_only) {
            (false, _) => "off",
            (true, false) => "on",
            (true, true) => "only",
        },
        store,
        data_dir = sqlite.then_some(data_dir.as_ref()),
        sync = sqlite.then_some(sync),
        cluster = cluster.then_some(urls.as_str()),
        node = args.node.as_deref().filter(|_| cluster),
        cluster_replicas = cluster.then_some(args.cluster_replicas),
        max_clients = args.max_clients,
        max_clients_per_ip = %Cap(args.max_clients_per_ip),
        connect_rate_per_ip = %Cap(u64::from(connect.per_minute)),
        connect_burst_per_ip = (connect.per_minute > 0).then_some(connect.burst),
        rate = %Cap(u64::from(args.rate)),
        burst = (args.rate > 0).then_some(args.burst),
        rate_bytes = %Cap(u64::from(args.rate_bytes())),
        burst_bytes = (args.rate_bytes() > 0).then(|| args.burst_bytes()),
        read_rate_bytes = %Cap(u64::from(args.read_rate_bytes())),
        read_burst_bytes = (args.read_rate_bytes() > 0).then(|| args.read_burst_bytes()),
        max_frame_bytes = args.max_frame_bytes,
        history_per_room = args.history_per_room,
        history_bytes_per_room = args.history_bytes_per_room,
        history_bytes_total = args.history_bytes_total,
        history_max_messages = kept.then_some(args.history_max_messages),
        history_max_age_days = max_age,
        history_prune_every_secs = kept.then_some(args.history_prune_every_secs),
        store_max_mib = max_mib,
        "settings"
    );
}

/// A limit whose 0 means none, as the log shows it.
struct Cap(u64);

impl std::fmt::Display for Cap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            0 => f.write_str("unlimited"),
            n => write!(f, "{n}"),
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    edge: Arc<edge::Edge>,
    limits: Arc<Limits>,
    mut stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    let settings = &edge.settings;
    let refuser = refuse::Refuser::new(edge.tls.clone(), settings.max_frame_bytes);
    let mut refusals = refuse::RefusalLog::default();
    loop {
        let due = refusals.due();
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => return,
            // A burst of refusals ended: how many the last line left out.
            () = async { if let Some(due) = due { tokio::time::sleep_until(due.into()).await } }, if due.is_some() => {
                if let Some(unlogged) = refusals.flush(std::time::Instant::now()) {
                    info!(more_since_last_line = unlogged, "refused more connections: server_full");
                }
                continue;
            }
        };
        let (stream, addr) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors, usually: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match limits.admit(addr.ip()) {
            Ok(admission) => {
                let edge = Arc::clone(&edge);
                tokio::spawn(edge::serve(stream, addr, edge, admission, done.clone()));
            }
            Err(why) => {
                // At most a line a second, which says how many more were
                // refused since the one before.
                if let Some(unlogged) = refusals.refused(std::time::Instant::now()) {
                    info!(
                        %addr,
                        why = limits.explain(why).as_str(),
                        more_since_last_line = (unlogged > 0).then_some(unlogged),
                        "refusing connection: server_full"
                    );
                }
                settings
                    .metrics
                    .closed_for(chatproto::ErrorCode::ServerFull);
                refuser.refuse(stream, why);
            }
        }
    }
}

/// The stop signals, registered when made (tokio's `ctrl_c()` would only
/// register when first polled): SIGINT (Ctrl-C), SIGTERM and SIGHUP (the
/// terminal the server was started in closing, which killed it on the
/// spot, telling nobody), each stopping the server cleanly; a second one
/// while it stops ends it at once.
struct Signals {
    #[cfg(unix)]
    kinds: Option<UnixSignals>,
}

/// SIGTERM, SIGINT and, unless it was ignored at start, SIGHUP.
#[cfg(unix)]
struct UnixSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: Option<tokio::signal::unix::Signal>,
}

/// A stop signal: its name as the log says it, and the exit status of a
/// process it ends (128 plus its number, as a shell reports it).
#[derive(Debug, Clone, Copy)]
struct Stop {
    name: &'static str,
    status: u8,
}

impl Signals {
    /// Register now (none registered: Ctrl-C, as tokio sees it, alone).
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            // Started with SIGHUP ignored (`nohup chatserver`): it stays so.
            let hup = (!hangup_ignored()).then(|| signal(SignalKind::hangup()));
            let kinds = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
                hup.transpose(),
            ) {
                (Ok(term), Ok(int), Ok(hup)) => Some(UnixSignals { term, int, hup }),
                _ => None,
            };
            Signals { kinds }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next stop signal.
    async fn next(&mut self) -> Stop {
        const INT: Stop = Stop {
            name: "SIGINT",
            status: 130,
        };
        #[cfg(unix)]
        if let Some(k) = &mut self.kinds {
            let hangup = async {
                match &mut k.hup {
                    Some(hup) => hup.recv().await,
                    None => std::future::pending().await,
                }
            };
            return tokio::select! {
                _ = k.int.recv() => INT,
                _ = k.term.recv() => Stop { name: "SIGTERM", status: 143 },
                _ = hangup => Stop { name: "SIGHUP", status: 129 },
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        INT
    }
}

/// Whether this process was started with SIGHUP ignored (as `nohup`
/// starts it).
#[cfg(unix)]
fn hangup_ignored() -> bool {
    // SAFETY: a null new action only reads the current one into `old`,
    // a zeroed `sigaction` that this call fills.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGHUP, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// `export --cluster`: the history in the rooms' streams (see
/// [`cluster::export`]), on a runtime of its own.
fn export_cluster(urls: &[String], room: Option<&str>, since: u64) -> Result<(), String> {
    let room = room.map(store::export_room).transpose()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    runtime.block_on(cluster::export(urls, room.as_deref(), since, &mut out))
}

/// The log filter: `--log-level` if given, else `RUST_LOG` if set, else
/// info. A `RUST_LOG` that is not levels (or `TARGET=LEVEL` pairs) is
/// refused rather than taken as a target name that would log nothing.
fn log_filter(
    flag: Option<&str>,
    env: Option<String>,
) -> Result<tracing_subscriber::EnvFilter, String> {
    let spec = log_spec(flag, env)?;
    tracing_subscriber::EnvFilter::try_new(&spec)
        .map_err(|e| format!("bad log level {spec:?}: {e}"))
}

/// The WebSocket library writes every message a client sends, whole, at
/// debug and trace (a `join`'s session token, a private message's text,
/// and raw newlines that would forge log lines): whatever the level, it
/// logs at info at most, unless `RUST_LOG` names it.
const WS_LIBRARY_AT_MOST_INFO: &str = "tungstenite=info,tokio_tungstenite=info";

/// The NATS client library's own lines, left out below debug (see
/// [`log_spec`]).
const NATS_CLIENT_OFF: &str = "async_nats=off";

/// [`log_filter`]'s directives.
fn log_spec(flag: Option<&str>, env: Option<String>) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let spec = match (flag, env) {
        // The NATS client's own notes (connected, reconnected) are info:
        // they would come before the `listening on` line; and its errors
        // come at every reconnect attempt (33 lines in 40 s when NATS's
        // address takes connections and closes them). The cluster code
        // says what matters itself, once a minute at most while it lasts;
        // `--log-level debug` shows the client's lines too.
        (Some(level @ ("info" | "warn" | "error" | "off")), _) => {
            format!("{level},{NATS_CLIENT_OFF}")
        }
        (Some(level), _) => format!("{level},{WS_LIBRARY_AT_MOST_INFO}"),
        (None, Some(env)) if !env.trim().is_empty() => {
            for directive in env.split(',').map(str::trim).filter(|d| !d.is_empty()) {
                let level = directive.rsplit_once('=').map_or(directive, |(_, l)| l);
                if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
                    return Err(format!(
                        "RUST_LOG={env:?}: {directive:?} is not a level; use one of {} (or TARGET=LEVEL), or --log-level",
                        LEVELS.join(", ")
                    ));
                }
            }
            // A level for every target above info: not for the WebSocket
            // library, unless it is named.
            let verbose = env.split(',').map(str::trim).any(|d| {
                !d.contains('=') && matches!(d.to_ascii_lowercase().as_str(), "debug" | "trace")
            });
            if verbose && !env.contains("tungstenite") {
                format!("{env},{WS_LIBRARY_AT_MOST_INFO}")
            } else if !verbose && !env.contains("async_nats") {
                format!("{env},{NATS_CLIENT_OFF}")
            } else {
                env
            }
        }
        _ => format!("info,{NATS_CLIENT_OFF}"),
    };
    Ok(spec)
}

/// The addresses other machines can reach this one at, for a server
/// listening on all of them: every up interface's, loopback aside.
fn lan_addresses(v6_too: bool) -> Vec<std::net::IpAddr> {
    let mut ips: Vec<std::net::IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback())
        .map(|i| i.ip())
        .filter(|ip| match ip {
            std::net::IpAddr::V4(_) => true,
            // Link-local IPv6 needs a zone to be used; leave it out.
            std::net::IpAddr::V6(v6) => v6_too && (v6.segments()[0] & 0xffc0) != 0xfe80,
        })
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

/// How many worker threads `--threads` asks for when the process may run
/// on `available` CPUs: 0 means one per CPU. One means the single-thread
/// runtime: on one CPU, the multi-thread scheduler's cross-thread
/// bookkeeping buys nothing (BENCHMARKS.md, "One CPU, one thread").
fn worker_threads(flag: u64, available: usize) -> usize {
    match flag {
        0 => available.max(1),
        n => usize::try_from(n).unwrap_or(usize::MAX),
    }
}

#[cfg(test)]
impl Settings {
    /// The defaults, for a connection task driven by a test.
    fn for_tests() -> Arc<Settings> {
        Arc::new(Settings {
            max_frame_bytes: 65_536,
            rate: 50,
            burst: 100,
            rate_bytes: 65_536,
            burst_bytes: 262_144,
            read_rate_bytes: 524_288,
            read_burst_bytes: 18 << 20,
            read_reserve_bytes: 576 << 10,
            rate_limit_grace_ms: 10_000,
            queue: peer::QueueLimits::fixed(1 << 20),
            close_flush_ms: 2_000,
            budget: budget::OutboundBudget::new(128 << 20),
            join_timeout_ms: 10_000,
            tls_only: false,
            allowed_origins: Vec::new(),
            metrics_allow: Vec::new(),
            metrics: Arc::new(metrics::Metrics::default()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{cannot_listen, log_filter, log_spec, privileged_port, worker_threads};

    /// An address not this machine's (`--listen 10.9.9.9:7878`) was
    /// refused with the system's words alone; it says what to give.
    #[test]
    fn an_address_not_this_machines_is_said_so() {
        use clap::Parser;
        let args = crate::args::Args::try_parse_from(["chatserver", "--listen", "192.0.2.1:7878"])
            .unwrap();
        let e = std::io::Error::from(std::io::ErrorKind::AddrNotAvailable);
        let said = cannot_listen(&args, e).to_string();
        assert!(
            said.starts_with("cannot listen on 192.0.2.1:7878: "),
            "{said}"
        );
        assert!(said.contains("not an address of this machine"), "{said}");
        assert!(said.contains("0.0.0.0:PORT"), "{said}");
    }

    #[test]
    fn only_ports_1_to_1023_are_privileged() {
        assert!(privileged_port("0.0.0.0:80"));
        assert!(privileged_port("[::]:1023"));
        assert!(!privileged_port("127.0.0.1:1024"));
        assert!(!privileged_port("127.0.0.1:0"));
        assert!(!privileged_port("localhost:7878"));
    }

    /// At debug and trace, tungstenite writes each client message whole
    /// (session tokens, private text, raw newlines): it stays at info,
    /// unless `RUST_LOG` names it; at info and below it is not raised.
    #[test]
    fn the_websocket_library_logs_at_most_info_unless_named() {
        let spec = |flag: Option<&str>, env: Option<&str>| {
            log_spec(flag, env.map(str::to_owned)).expect("a valid spec")
        };
        for level in ["debug", "trace"] {
            assert!(spec(Some(level), None).ends_with(",tungstenite=info,tokio_tungstenite=info"));
            assert!(spec(None, Some(level)).ends_with(",tungstenite=info,tokio_tungstenite=info"));
        }
        assert!(!spec(Some("warn"), None).contains("tungstenite"));
        assert!(!spec(None, Some("warn")).contains("tungstenite"));
        assert!(!spec(None, Some("chatserver=trace")).contains("tungstenite"));
        assert_eq!(
            spec(None, Some("trace,tungstenite=trace")),
            "trace,tungstenite=trace"
        );
        assert!(log_filter(Some("trace"), None).is_ok());
    }

    /// The NATS client's lines, an error at every reconnect attempt, are
    /// left out below debug (the heartbeat's warnings say the cause once
    /// a minute at most); at debug they are shown.
    #[test]
    fn the_nats_clients_lines_are_left_out_below_debug() {
        let spec = |flag: Option<&str>| log_spec(flag, None).expect("a valid spec");
        for level in [None, Some("info"), Some("warn"), Some("error")] {
            assert!(spec(level).ends_with(",async_nats=off"), "{level:?}");
        }
        assert!(!spec(Some("debug")).contains("async_nats"));
        let env = |env: &str| log_spec(None, Some(env.to_owned())).expect("a valid spec");
        assert_eq!(env("info"), "info,async_nats=off");
        assert_eq!(
            env("warn,chatserver=info"),
            "warn,chatserver=info,async_nats=off"
        );
        assert!(!env("debug").contains("async_nats"));
        assert_eq!(env("info,async_nats=warn"), "info,async_nats=warn");
    }

    #[test]
    fn zero_threads_means_one_per_cpu_the_process_may_use() {
        assert_eq!(worker_threads(0, 1), 1);
        assert_eq!(worker_threads(0, 8), 8);
        assert_eq!(worker_threads(0, 0), 1);
        assert_eq!(worker_threads(3, 1), 3);
        assert_eq!(worker_threads(1, 16), 1);
    }
}
