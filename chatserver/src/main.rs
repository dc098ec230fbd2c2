//! chatserver: chat rooms over TCP, TLS and WebSockets, with a web page.
//!
//! Rooms, sessions and history are `chatproto::Server`; this binary only
//! moves bytes: an accept loop (`listen`), the edge that tells the ways in
//! apart (`edge`), one task per connection (`conn`, `tlsconn`, `wsconn`),
//! the web routes (`web`), one task that owns the core (`hub`) and the
//! history database's thread (`store`); or, as a node of a cluster, the
//! link to NATS JetStream in place of the database (`cluster`: rooms as
//! streams, nicknames, sessions and heartbeats as buckets). The start and
//! the stop are `serve`'s. See README.md for the flags (`args`).

mod args;
mod budget;
mod cluster;
mod conn;
mod datadir;
mod edge;
mod feed;
mod hub;
mod limits;
mod listen;
mod logging;
mod metrics;
mod peer;
mod ratelimit;
mod refuse;
mod serve;
mod signals;
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

use std::io::IsTerminal;
use std::sync::Arc;

use crate::args::Args;
use crate::logging::log_filter;
use crate::serve::run;

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
    // The log goes to stdout from a thread of its own, never from the
    // task that logs: a stdout nobody reads must not stop chat.
    let ansi = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    stdout::start(ansi);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(|| stdout::Queued)
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
    let served = runtime.block_on(run(args));
    // The log's last lines (`bye`, or the warnings before a failed
    // start's line), unless stdout is not being read.
    stdout::flush(stdout::FLUSH_AT_EXIT);
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let e = args::naming_variables(&e.to_string(), &from_env);
            eprintln!("chatserver: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The wall clock: milliseconds since the Unix epoch (0 if before it).
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
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
    use super::worker_threads;

    #[test]
    fn zero_threads_means_one_per_cpu_the_process_may_use() {
        assert_eq!(worker_threads(0, 1), 1);
        assert_eq!(worker_threads(0, 8), 8);
        assert_eq!(worker_threads(0, 0), 1);
        assert_eq!(worker_threads(3, 1), 3);
        assert_eq!(worker_threads(1, 16), 1);
    }
}
