//! chatbench: a load generator for chatserver, and for redis-server and
//! nats-server pub/sub on the same workloads, so they can be compared in
//! one run on one machine.
//!
//! Workloads: `fanout` (one room, P publishers as fast as their window of
//! unacknowledged messages allows), `latency` (a fixed aggregate rate),
//! `private` (everyone to random others), `idle` (N joined silent
//! connections: server memory per connection) and `soak` (chat only: churn
//! while sending, then an exactly-once-in-order check). Each prints a table,
//! or one JSON line with `--json`; `chatbench table FILES` puts JSON reports
//! side by side. See BENCHMARKS.md.
//!
//! ```text
//! chatbench --target chat --addr 127.0.0.1:7878 --server-pid 4242 fanout --members 100 --publishers 4
//! ```

mod chart;
mod idle;
mod ledger;
mod net;
mod procstat;
mod progress;
mod report;
mod soak;
mod text;
mod tls;
mod traffic;
mod wire;
mod workloads;

use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::net::{Endpoint, Transport};
use crate::report::Report;
use crate::wire::Target;

/// Load generator for chatserver, redis-server and nats-server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Which server to talk to.
    #[arg(long, global = true, value_enum, default_value = "chat")]
    target: Target,
    /// Its address (default: 127.0.0.1 and the target's usual port).
    /// Several, comma-separated, for the nodes of a chatserver cluster
    /// (fanout and latency): members are spread over them in turn.
    #[arg(long, global = true)]
    addr: Option<String>,
    /// How chatproto is carried (chat only): `tcp` length-prefixed frames;
    /// `ws` a WebSocket on `GET /ws`, one text message per frame; `tls` and
    /// `wss` the same inside TLS (give the server --tls-cert/--tls-key, and
    /// chatbench --ca-cert).
    #[arg(long, global = true, value_enum, default_value = "tcp")]
    transport: Transport,
    /// With `--transport tls|wss`: trust the certificates in this PEM file
    /// (the server's CA, or its self-signed certificate).
    #[arg(long, global = true)]
    ca_cert: Option<PathBuf>,
    /// With `--transport tls|wss`: the name (or IP address) the server's
    /// certificate must be for (default: the host of --addr).
    #[arg(long, global = true)]
    tls_name: Option<String>,
    /// The server's PID, to report its CPU time and memory from /proc
    /// (several, comma-separated, for a cluster's nodes: their CPU time and
    /// memory are added up).
    #[arg(long, global = true, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// A cluster's engine (nats-server) PID: its CPU time is reported
    /// apart from the nodes'.
    #[arg(long, global = true)]
    engine_pid: Option<u32>,
    /// Print the report as one JSON line instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// No progress on stderr (a bar, drawn only when stderr is a terminal,
    /// and a line before and after each phase).
    #[arg(long, global = true)]
    quiet: bool,
    /// Seed for every random choice (default: from the clock; the report says which).
    #[arg(long, global = true)]
    seed: Option<u64>,
    /// Runtime threads of the generator (1: a single-threaded runtime, best
    /// when the generator is pinned to one core).
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Settings shared by the traffic workloads.
#[derive(Debug, Clone, Args)]
struct Traffic {
    /// Bytes of text per message.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Give up when no delivery has arrived for this many seconds.
    #[arg(long, default_value_t = 10.0)]
    stall_seconds: f64,
    /// Give up after this many seconds in all.
    #[arg(long, default_value_t = 600.0)]
    max_seconds: f64,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// One room; P of its R members publish M messages each, as fast as a
    /// window of unacknowledged messages allows (the ack is the sender's own copy).
    Fanout {
        /// Members of the room (R).
        #[arg(long, default_value_t = 100)]
        members: usize,
        /// Publishers among them (P).
        #[arg(long, default_value_t = 4)]
        publishers: usize,
        /// Messages per publisher (M).
        #[arg(long, default_value_t = 25_000)]
        messages: u64,
        /// Most unacknowledged messages per publisher.
        #[arg(long, default_value_t = 64)]
        window: usize,
        /// Count the window end to end: a message is acknowledged once
        /// every member holds it (each reports every --ack-every
        /// messages), not when the sender's own copy comes back.
        #[arg(long)]
        end_to_end: bool,
        /// With --end-to-end: messages between two reports of a member.
        #[arg(long, default_value_t = 16)]
        ack_every: u64,
        #[command(flatten)]
        traffic: Traffic,
    },
    /// One room; P publishers share a fixed aggregate rate; latency
    /// percentiles from the send time carried in each text.
    Latency {
        /// Members of the room.
        #[arg(long, default_value_t = 100)]
        members: usize,
        /// Publishers among them.
        #[arg(long, default_value_t = 4)]
        publishers: usize,
        /// Messages per second, all publishers together.
        #[arg(long, default_value_t = 2000.0)]
        rate: f64,
        /// Seconds of sending.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[command(flatten)]
        traffic: Traffic,
    },
    /// N clients, each sending M messages to others picked at random.
    Private {
        /// Clients.
        #[arg(long, default_value_t = 100)]
        clients: usize,
        /// Messages per client.
        #[arg(long, default_value_t = 2_000)]
        messages: u64,
        /// Most unacknowledged messages per client.
        #[arg(long, default_value_t = 16)]
        window: usize,
        #[command(flatten)]
        traffic: Traffic,
    },
    /// N joined, silent connections: the server's RSS per connection.
    Idle {
        /// Connections to hold at once.
        #[arg(long, default_value_t = 1_000)]
        connections: usize,
        /// Most connections per generator process; more are split over
        /// child processes with their own source addresses.
        #[arg(long, default_value_t = 9_500)]
        per_process: usize,
        /// Connections joining at once.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Source address of the first child process; the next count up.
        #[arg(long, default_value = "127.0.0.2")]
        source_base: Ipv4Addr,
        /// Start no new connection after this many seconds; the report says
        /// how many were held.
        #[arg(long, default_value_t = 600.0)]
        max_seconds: f64,
        /// Seconds the joined connections stay idle before the server's RSS
        /// is read (redis trims an idle client's buffers after 2 s).
        #[arg(long, default_value_t = 5.0)]
        settle_seconds: f64,
    },
    /// One process's share of a split `idle` run (started by `idle`).
    #[command(hide = true)]
    IdleWorker {
        #[arg(long)]
        connections: usize,
        #[arg(long, default_value_t = 500)]
        batch: usize,
        #[arg(long)]
        source_ip: Option<IpAddr>,
        #[arg(long, default_value = "b")]
        prefix: String,
        #[arg(long, default_value_t = 600.0)]
        budget_seconds: f64,
    },
    /// Chat only: clients join and leave at random while sending; checks
    /// every accepted message reached every recipient that stayed, once, in order.
    Soak {
        /// Client slots.
        #[arg(long, default_value_t = 200)]
        clients: usize,
        /// Seconds of churn.
        #[arg(long, default_value_t = 60.0)]
        seconds: f64,
        /// Messages per second per client, on average.
        #[arg(long, default_value_t = 2.0)]
        rate: f64,
        /// Share of clients that stay joined throughout.
        #[arg(long, default_value_t = 0.5)]
        stable: f64,
        /// Share of messages sent to one to three nicks rather than everyone.
        #[arg(long, default_value_t = 0.3)]
        private: f64,
        /// Most unanswered messages per client.
        #[arg(long, default_value_t = 8)]
        window: usize,
    },
    /// Print JSON reports (from `--json` runs) side by side, in Markdown.
    Table {
        /// Files holding one JSON report per line.
        files: Vec<PathBuf>,
    },
    /// Draw JSON reports (from `--json` runs) as SVG charts: deliveries
    /// per server-CPU-second per workload and server, with the spread of
    /// repeated runs (deliveries.svg), and the latency percentiles
    /// (latency.svg).
    Chart {
        /// Where to write the SVG files (created if missing).
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Files holding one JSON report per line.
        files: Vec<PathBuf>,
    },
}

fn resolve(cli: &Cli) -> Result<Vec<Arc<Endpoint>>, String> {
    let list = cli
        .addr
        .clone()
        .unwrap_or_else(|| cli.target.default_addr().to_string());
    let several = list.contains(',');
    if several
        && (cli.target != Target::Chat
            || !matches!(cli.cmd, Cmd::Fanout { .. } | Cmd::Latency { .. }))
    {
        return Err("several --addr are for --target chat with fanout or latency".into());
    }
    list.split(',')
        .map(|a| resolve_one(cli, a.trim()))
        .collect()
}

fn resolve_one(cli: &Cli, a: &str) -> Result<Arc<Endpoint>, String> {
    let addr = a
        .to_socket_addrs()
        .map_err(|e| format!("bad --addr {a}: {e}"))?
        .next()
        .ok_or_else(|| format!("--addr {a} resolves to nothing"))?;
    if cli.transport != Transport::Tcp && cli.target != Target::Chat {
        return Err(format!(
            "--transport {} is for --target chat; {} is spoken over plain TCP",
            cli.transport.name(),
            cli.target.server()
        ));
    }
    if !cli.transport.is_tls() && (cli.ca_cert.is_some() || cli.tls_name.is_some()) {
        return Err("--ca-cert and --tls-name are for --transport tls or wss".into());
    }
    Endpoint::new(
        addr,
        a,
        cli.transport,
        cli.ca_cert.clone(),
        cli.tls_name.as_deref(),
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::Table { files } = &cli.cmd {
        return table(files);
    }
    if let Cmd::Chart { out, files } = &cli.cmd {
        return chart(files, out);
    }
    if let Cmd::Fanout {
        window,
        end_to_end: true,
        ack_every,
        ..
    } = &cli.cmd
    {
        // A member reports every --ack-every messages: past the window,
        // no report would ever come and the publishers would wait forever.
        if *ack_every == 0 || *ack_every > *window as u64 {
            eprintln!(
                "chatbench: --ack-every {ack_every} must be between 1 and --window {window} with --end-to-end"
            );
            return ExitCode::from(2);
        }
    }
    let to = match resolve(&cli) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("chatbench: {e}");
            return ExitCode::from(2);
        }
    };
    let mut rt = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(cli.threads);
        b
    };
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chatbench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(cli, to))
}

async fn run(cli: Cli, all: Vec<Arc<Endpoint>>) -> ExitCode {
    let to = Arc::clone(&all[0]);
    let server_pid = cli.server_pid.first().copied();
    let seed = cli.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let progress = !cli.quiet;
    let run_cfg = |t: &Traffic| traffic::RunConfig {
        target: cli.target,
        to: all.clone(),
        source: None,
        server_pids: cli.server_pid.clone(),
        engine_pid: cli.engine_pid,
        size: t.size,
        stall: Duration::from_secs_f64(t.stall_seconds),
        max: Duration::from_secs_f64(t.max_seconds),
        progress,
    };
    let report = match &cli.cmd {
        Cmd::Fanout {
            members,
            publishers,
            messages,
            window,
            end_to_end,
            ack_every,
            traffic: t,
        } => {
            let mut r = Report::new("fanout", cli.target);
            r.param("members", members)
                .param("publishers", publishers)
                .param("messages", messages);
            r.param("window", window).param("size", t.size);
            let mut plans = workloads::fanout(*members, *publishers, *messages, *window);
            if *end_to_end {
                r.param("ack", format!("end to end, every {ack_every}"));
                for s in plans.iter_mut().filter_map(|p| p.send.as_mut()) {
                    s.ack = traffic::Ack::Receivers { every: *ack_every };
                }
            }
            traffic::run(&run_cfg(t), plans, &mut r).await;
            r
        }
        Cmd::Latency {
            members,
            publishers,
            rate,
            seconds,
            traffic: t,
        } => {
            let mut r = Report::new("latency", cli.target);
            r.param("members", members)
                .param("publishers", publishers)
                .param("rate", rate);
            r.param("seconds", seconds).param("size", t.size);
            traffic::run(
                &run_cfg(t),
                workloads::latency(*members, *publishers, *rate, *seconds),
                &mut r,
            )
            .await;
            r
        }
        Cmd::Private {
            clients,
            messages,
            window,
            traffic: t,
        } => {
            let mut r = Report::new("private", cli.target);
            r.param("clients", clients)
                .param("messages", messages)
                .param("window", window);
            r.param("size", t.size).param("seed", seed);
            let plans = workloads::private(cli.target, *clients, *messages, *window, seed);
            traffic::run(&run_cfg(t), plans, &mut r).await;
            r
        }
        Cmd::Idle {
            connections,
            per_process,
            batch,
            source_base,
            max_seconds,
            settle_seconds,
        } => {
            let mut r = Report::new("idle", cli.target);
            let cfg = idle::IdleConfig {
                target: cli.target,
                to: to.clone(),
                server_pid,
                connections: *connections,
                per_process: *per_process,
                batch: *batch,
                source_base: *source_base,
                join_budget: Duration::from_secs_f64(*max_seconds),
                settle: Duration::from_secs_f64(*settle_seconds),
                progress,
            };
            idle::run(&cfg, &mut r).await;
            r
        }
        Cmd::IdleWorker {
            connections,
            batch,
            source_ip,
            prefix,
            budget_seconds,
        } => {
            idle::worker(idle::HoldSpec {
                target: cli.target,
                to: to.clone(),
                source: *source_ip,
                prefix: prefix.clone(),
                n: *connections,
                batch: *batch,
                budget: Duration::from_secs_f64(*budget_seconds),
                progress,
            })
            .await;
            return ExitCode::SUCCESS;
        }
        Cmd::Soak {
            clients,
            seconds,
            rate,
            stable,
            private,
            window,
        } => {
            let mut r = Report::new("soak", cli.target);
            if cli.target != Target::Chat {
                eprintln!(
                    "chatbench: soak checks chat's seq order and runs against chatserver only"
                );
                return ExitCode::from(2);
            }
            let cfg = soak::SoakConfig {
                to: to.clone(),
                server_pid,
                clients: *clients,
                seconds: *seconds,
                rate: *rate,
                stable: *stable,
                private: *private,
                window: (*window).max(1),
                seed,
                progress,
            };
            soak::run(&cfg, &mut r).await;
            r
        }
        Cmd::Table { .. } | Cmd::Chart { .. } => {
            unreachable!("handled before the runtime starts")
        }
    };
    let mut report = report;
    report.transport = to.transport;
    if let Some(tls) = to.negotiated() {
        report.param("tls", tls);
    }
    if cli.json {
        match serde_json::to_string(&report) {
            Ok(j) => println!("{j}"),
            Err(e) => eprintln!("chatbench: cannot write the report: {e}"),
        }
    } else {
        print!("{}", report.render());
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Every report in `files` (one JSON report per line; other lines are
/// skipped with a word on stderr), each with the `setup` its line names
/// (bench/cluster.sh adds one); `None` if a file cannot be read.
fn read_reports(files: &[PathBuf]) -> Option<Vec<(Report, Option<String>)>> {
    let mut reports = Vec::new();
    for f in files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("chatbench: {}: {e}", f.display());
                return None;
            }
        };
        for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
            match serde_json::from_str::<Report>(line) {
                Ok(r) => {
                    let setup = serde_json::from_str::<serde_json::Value>(line)
                        .ok()
                        .and_then(|v| v["setup"].as_str().map(str::to_owned));
                    reports.push((r, setup));
                }
                Err(e) => eprintln!(
                    "chatbench: {}: skipping a line that is not a report: {e}",
                    f.display()
                ),
            }
        }
    }
    Some(reports)
}

fn chart(files: &[PathBuf], out: &std::path::Path) -> ExitCode {
    let Some(reports) = read_reports(files) else {
        return ExitCode::FAILURE;
    };
    let points: Vec<chart::Point> = reports
        .iter()
        .map(|(r, setup)| chart::Point::of(r, setup.as_deref()))
        .collect();
    if points.is_empty() {
        eprintln!("chatbench chart: no reports in the files given");
        return ExitCode::from(2);
    }
    match chart::draw(&points, out) {
        Ok(written) => {
            for w in written {
                println!("{w}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chatbench chart: {e}");
            ExitCode::FAILURE
        }
    }
}

fn table(files: &[PathBuf]) -> ExitCode {
    let Some(reports) = read_reports(files) else {
        return ExitCode::FAILURE;
    };
    let reports: Vec<Report> = reports.into_iter().map(|(r, _)| r).collect();
    print!("{}", report::side_by_side(&reports));
    ExitCode::SUCCESS
}
