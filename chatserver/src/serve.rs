//! Start and serve until stopped: the port tried first, then the
//! certificate, the store (or the cluster), the core and its hub; what
//! the start says once `listening on` is out; then the stop, clients
//! told and what was queued for them flushed.

use std::sync::Arc;
use std::time::Duration;

use chatproto::{Server, ServerConfig};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::args::{self, Args};
use crate::limits::Limits;
use crate::listen::{accept_loop, cannot_listen, listen};
use crate::logging::log_settings;
use crate::signals::Signals;
use crate::{budget, cluster, datadir, edge, hub, metrics, store, tls, Settings};

/// How long a cluster node may take to read every room's log at start.
const CATCH_UP: Duration = Duration::from_secs(120);

/// How many inputs may wait for the hub before connection tasks wait too.
const HUB_QUEUE: usize = 4096;

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

/// Start and serve. A certificate clients will refuse is said once
/// `listening on` is out (nothing may come before it), or, by a start
/// that fails after reading it, before the failure's line: mending that
/// failure must not be the first the operator hears of the certificate.
pub async fn run(args: Args) -> std::io::Result<()> {
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
        crate::stdout::flush(crate::stdout::FLUSH_AT_EXIT);
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
