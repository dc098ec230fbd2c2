//! `idle`: hold N joined, silent connections and measure the server's RSS
//! per connection, `(RSS joined - RSS before) / N`.
//!
//! A process here may hold fewer than 20,000 open files, so past
//! `--per-process` connections the work is split over child processes
//! (`chatbench idle-worker`), each connecting from its own source address
//! 127.0.0.2, 127.0.0.3, ... (which also keeps every process within the
//! ephemeral port range). Children talk to the parent over stdin/stdout:
//!
//! * child: `joined <ok> <failed> <max seq>` once all its connections joined;
//! * parent: `sync <seq>`; child: `synced` once every connection has read
//!   all the server sent it so far (chat: each pings and waits for the
//!   pong, which comes after everything queued before it; the seq is only
//!   reported);
//! * parent closes stdin; child closes its connections, prints `closed <n>`
//!   (connections the server had closed on its own) and exits.
//!
//! With chat, joins are announced to everyone in rooms up to the server's
//! `--presence-fanout-max` members (N joins cost up to N²/2 presence
//! deliveries there), and past it only to the joiner. Joining in batches
//! and syncing after each keeps the server's outbound queues short, so the
//! figure is the connections' cost, not a backlog's.
//!
//! This file holds the workload's settings and its run; the idle
//! connections one process holds are in `hold` (each one's task in
//! `conn`), and the line protocol between the parent and its child
//! processes in `split`.

use std::net::Ipv4Addr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::time::{sleep, timeout, Instant};

use crate::net::Endpoint;
use crate::procstat;
use crate::report::{IdleResult, Report};
use crate::wire::Target;

mod conn;
mod hold;
mod split;

use conn::{FAILED, JOINED};
pub use hold::{hold, HoldSpec};
pub use split::worker;
use split::Worker;

/// Settings of the idle workload.
#[derive(Debug, Clone)]
pub struct IdleConfig {
    /// The server.
    pub target: Target,
    /// Its address and the transport.
    pub to: Arc<Endpoint>,
    /// Its PID (needed: RSS is the point).
    pub server_pid: Option<u32>,
    /// Connections to hold.
    pub connections: usize,
    /// Most connections in one process.
    pub per_process: usize,
    /// Connections joining at once.
    pub batch: usize,
    /// Source address of the first child; the next ones count up.
    pub source_base: Ipv4Addr,
    /// How long the joined connections stay idle before RSS is read: servers
    /// trim idle clients' buffers on a timer (redis after 2 s).
    pub settle: Duration,
    /// Stop starting new connections after this long; the report says how
    /// many were held.
    pub join_budget: Duration,
    /// Print progress to stderr.
    pub progress: bool,
}

/// Wait until the server's CPU time stops moving, at most `within`; without
/// its PID, a second.
async fn wait_quiet(pid: Option<u32>, within: Duration) {
    match pid {
        Some(pid) => procstat::wait_cpu_quiet(pid, within).await,
        None => sleep(Duration::from_secs(1)).await,
    }
}

/// Run the idle workload.
pub async fn run(cfg: &IdleConfig, report: &mut Report) {
    let pid = cfg.server_pid;
    if pid.is_none() {
        report
            .errors
            .push("idle needs --server-pid to measure memory".into());
    }
    report
        .param("connections", cfg.connections)
        .param("batch", cfg.batch)
        .param("per_process", cfg.per_process);
    report.param("settle_seconds", cfg.settle.as_secs_f64());
    let before = pid.and_then(procstat::sample);
    let started = Instant::now();
    let per = cfg.per_process.max(1);
    let processes = cfg.connections.div_ceil(per).max(1);
    let mut errors = Vec::new();
    let (mut joined, mut failed, mut closed) = (0u64, 0u64, 0u64);
    let (after, left, join_seconds);
    if processes == 1 {
        let spec = HoldSpec {
            target: cfg.target,
            to: cfg.to.clone(),
            source: None,
            prefix: "b".into(),
            n: cfg.connections,
            batch: cfg.batch,
            budget: cfg.join_budget,
            progress: cfg.progress,
        };
        let h = hold(&spec).await;
        joined = h.count(JOINED) as u64;
        failed = h.count(FAILED) as u64;
        join_seconds = started.elapsed().as_secs_f64();
        if !h.sync(Duration::from_secs(120)).await {
            errors.push("connections did not catch up with the room".into());
        }
        wait_quiet(pid, Duration::from_secs(120)).await;
        sleep(cfg.settle).await;
        wait_quiet(pid, Duration::from_secs(30)).await;
        after = pid.and_then(procstat::sample);
        errors.extend(h.errors());
        closed = h.close().await as u64;
    } else {
        let mut workers = Vec::new();
        let exe = std::env::current_exe().unwrap_or_else(|_| "chatbench".into());
        for k in 0..processes {
            let n = per.min(cfg.connections - k * per);
            let [a, b, c, d] = cfg.source_base.octets();
            let ip = Ipv4Addr::new(a, b, c, d.saturating_add(k as u8));
            let spawned = Command::new(&exe)
                .arg("--target")
                .arg(cfg.target.name())
                .arg("--addr")
                .arg(cfg.to.addr.to_string())
                .args(["--transport", cfg.to.transport.name()])
                .args(cfg.to.tls.iter().flat_map(|t| {
                    [
                        "--ca-cert".as_ref(),
                        t.ca_cert.as_os_str(),
                        "--tls-name".as_ref(),
                        t.name_arg.as_ref(),
                    ]
                }))
                .args(if cfg.progress {
                    &[][..]
                } else {
                    &["--quiet"][..]
                })
                .arg("idle-worker")
                .args([
                    "--connections",
                    &n.to_string(),
                    "--batch",
                    &cfg.batch.to_string(),
                ])
                .args([
                    "--source-ip",
                    &ip.to_string(),
                    "--prefix",
                    &format!("b{k}x"),
                ])
                .args([
                    "--budget-seconds",
                    &format!("{:.3}", cfg.join_budget.as_secs_f64()),
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn();
            match spawned {
                Ok(mut child) => {
                    let stdin = child.stdin.take();
                    let lines = BufReader::new(child.stdout.take().expect("piped")).lines();
                    workers.push(Worker {
                        child,
                        stdin,
                        lines,
                    });
                }
                Err(e) => errors.push(format!("could not start a worker: {e}")),
            }
        }
        // Workers join one after the other: each is a few thousand joins
        // into an ever larger room; together they would only queue up.
        let mut max_seq = 0u64;
        for w in &mut workers {
            // What is left of the budget goes to the next worker.
            let left = cfg.join_budget.saturating_sub(started.elapsed());
            w.say(&format!("go {:.3}", left.as_secs_f64())).await;
            if let Some(t) = w
                .expect("joined", Duration::from_secs(900), &mut errors)
                .await
            {
                let num = |i: usize| t.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
                joined += num(0);
                failed += num(1);
                max_seq = max_seq.max(num(2));
            }
        }
        join_seconds = started.elapsed().as_secs_f64();
        for w in &mut workers {
            w.say(&format!("sync {max_seq}")).await;
        }
        for w in &mut workers {
            w.expect("synced", Duration::from_secs(180), &mut errors)
                .await;
        }
        wait_quiet(pid, Duration::from_secs(120)).await;
        sleep(cfg.settle).await;
        wait_quiet(pid, Duration::from_secs(30)).await;
        after = pid.and_then(procstat::sample);
        for w in &mut workers {
            w.stdin = None; // EOF: close and exit
        }
        for mut w in workers {
            if let Some(t) = w
                .expect("closed", Duration::from_secs(60), &mut errors)
                .await
            {
                closed += t.first().and_then(|s| s.parse().ok()).unwrap_or(0);
            }
            if timeout(Duration::from_secs(30), w.child.wait())
                .await
                .is_err()
            {
                errors.push("a worker did not exit; killing it".into());
                let _ = w.child.kill().await;
            }
        }
    }
    wait_quiet(pid, Duration::from_secs(60)).await;
    left = pid.and_then(procstat::sample);
    if failed > 0 {
        errors.push(format!("{failed} connections failed to join"));
    }
    if closed > 0 {
        errors.push(format!("the server closed {closed} idle connections"));
    }
    if let (Some(b), Some(a)) = (before, after) {
        report.idle = Some(IdleResult {
            connections: joined,
            processes: processes as u64,
            rss_before_kib: b.rss_kib,
            rss_after_kib: a.rss_kib,
            rss_left_kib: left.map(|l| l.rss_kib).unwrap_or(0),
            kib_per_connection: if joined > 0 {
                (a.rss_kib as f64 - b.rss_kib as f64) / joined as f64
            } else {
                0.0
            },
            join_seconds,
        });
    }
    errors.truncate(20);
    report.errors.extend(errors);
    report.finish();
}
