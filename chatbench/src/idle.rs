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

use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout, Instant};

use crate::net::{Conn, Endpoint};
use crate::procstat;
use crate::progress;
use crate::report::{IdleResult, Report};
use crate::wire::{In, Subs, Target};

const PENDING: u8 = 0;
const JOINED: u8 = 1;
const FAILED: u8 = 2;

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

struct ConnState {
    status: AtomicU8,
    /// The highest seq seen: welcome, then presence events (chat only).
    seq: AtomicU64,
    /// The last sync round whose ping this connection saw answered.
    synced: AtomicU64,
}

/// A set of idle connections held by this process.
pub struct Holder {
    states: Vec<Arc<ConnState>>,
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    /// Sync rounds: each connection pings when the number changes.
    sync_tx: watch::Sender<u64>,
    sync_round: AtomicU64,
    closed: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<String>>>,
    target: Target,
}

impl Holder {
    fn count(&self, status: u8) -> usize {
        self.states
            .iter()
            .filter(|s| s.status.load(Ordering::Relaxed) == status)
            .count()
    }

    /// The highest seq any connection has seen.
    pub fn max_seq(&self) -> u64 {
        self.states
            .iter()
            .map(|s| s.seq.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }

    /// Wait until every joined connection has read everything the server
    /// sent it so far (chat), at most `within`: each pings, and is caught
    /// up when the pong arrives, since it comes after all that was queued
    /// before it. (Waiting for every joiner's presence instead would wait
    /// forever in a room large enough that the server stops announcing
    /// joins to everyone.)
    pub async fn sync(&self, within: Duration) -> bool {
        if self.target != Target::Chat {
            return true;
        }
        let round = self.sync_round.fetch_add(1, Ordering::Relaxed) + 1;
        self.sync_tx.send_replace(round);
        let deadline = Instant::now() + within;
        loop {
            let behind = self.states.iter().any(|s| {
                s.status.load(Ordering::Relaxed) == JOINED
                    && s.synced.load(Ordering::Relaxed) < round
            });
            if !behind {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            sleep(Duration::from_millis(5)).await;
        }
    }

    fn error(&self, e: String) {
        let mut errs = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errs.len() < 20 {
            errs.push(e);
        }
    }

    /// The errors so far.
    pub fn errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Close every connection; returns how many the server had closed first.
    pub async fn close(self) -> usize {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.closed.load(Ordering::Relaxed)
    }
}

/// What a set of idle connections is.
#[derive(Debug, Clone)]
pub struct HoldSpec {
    /// The server.
    pub target: Target,
    /// Its address and the transport.
    pub to: Arc<Endpoint>,
    /// Source address of our sockets.
    pub source: Option<IpAddr>,
    /// Nicks are `{prefix}{i}`.
    pub prefix: String,
    /// How many.
    pub n: usize,
    /// How many join at once.
    pub batch: usize,
    /// No new batch starts after this long.
    pub budget: Duration,
    /// Print progress to stderr.
    pub progress: bool,
}

/// Connect and join the connections of `spec`, a batch at a time.
pub async fn hold(spec: &HoldSpec) -> Holder {
    let HoldSpec {
        target,
        ref to,
        source,
        ref prefix,
        n,
        batch,
        budget,
        progress,
    } = *spec;
    let (stop, stop_rx) = watch::channel(false);
    // Never read here: every clone sees the latest round as new.
    let (sync_tx, sync_rx) = watch::channel(0u64);
    let mut h = Holder {
        states: Vec::with_capacity(n),
        tasks: Vec::with_capacity(n),
        stop,
        sync_tx,
        sync_round: AtomicU64::new(0),
        closed: Arc::new(AtomicUsize::new(0)),
        errors: Arc::new(Mutex::new(Vec::new())),
        target,
    };
    let started = Instant::now();
    let label = match source {
        Some(ip) => format!("idle {} from {ip}", target.name()),
        None => format!("idle {}", target.name()),
    };
    let bar = progress::bar(progress, n as u64, progress::JOINS, label);
    let batch = batch.max(1);
    for first in (0..n).step_by(batch) {
        if started.elapsed() >= budget {
            h.error(format!(
                "join budget of {budget:?} used up after {first} connections"
            ));
            break;
        }
        let end = (first + batch).min(n);
        for i in first..end {
            let st = Arc::new(ConnState {
                status: AtomicU8::new(PENDING),
                seq: AtomicU64::new(0),
                synced: AtomicU64::new(0),
            });
            h.states.push(st.clone());
            let nick = format!("{prefix}{i}");
            let (closed, errors, stop) = (h.closed.clone(), h.errors.clone(), stop_rx.clone());
            let sync = sync_rx.clone();
            h.tasks.push(tokio::spawn(idle_conn(
                target,
                to.clone(),
                source,
                nick,
                st,
                closed,
                errors,
                stop,
                sync,
            )));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while h.states[first..end]
            .iter()
            .any(|s| s.status.load(Ordering::Relaxed) == PENDING)
            && Instant::now() < deadline
        {
            sleep(Duration::from_millis(2)).await;
        }
        if !h.sync(Duration::from_secs(60)).await {
            h.error(format!(
                "connections fell behind the room's events after {end} joins"
            ));
        }
        let (joined, failed) = (h.count(JOINED), h.count(FAILED));
        bar.set_position(joined as u64);
        bar.set_message(format!("({failed} failed)"));
    }
    bar.finish_and_clear();
    if progress {
        eprintln!(
            "[idle {}] {} joined, {} failed, in {:.1}s",
            target.name(),
            h.count(JOINED),
            h.count(FAILED),
            started.elapsed().as_secs_f64()
        );
    }
    let pending = h.count(PENDING);
    if pending > 0 {
        h.error(format!("{pending} connections never finished joining"));
    }
    h
}

#[allow(clippy::too_many_arguments)]
async fn idle_conn(
    target: Target,
    to: Arc<Endpoint>,
    source: Option<IpAddr>,
    nick: String,
    st: Arc<ConnState>,
    closed: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<String>>>,
    mut stop: watch::Receiver<bool>,
    mut sync: watch::Receiver<u64>,
) {
    let fail = |e: String| {
        let mut errs = errors.lock().unwrap_or_else(|p| p.into_inner());
        if errs.len() < 20 {
            errs.push(format!("{nick}: {e}"));
        }
    };
    let mut conn = match Conn::open(target, &to, source, true).await {
        Ok(c) => c,
        Err(e) => {
            fail(format!("connect: {e}"));
            st.status.store(FAILED, Ordering::Relaxed);
            return;
        }
    };
    let mut seq = 0u64;
    let mut pings = 0usize;
    let mut on_event = |ev: In<'_>| match ev {
        In::Presence { seq: s, .. } => seq = seq.max(s),
        In::Ping => pings += 1,
        _ => {}
    };
    match conn
        .join(
            &nick,
            Subs {
                room: true,
                own: false,
            },
            Duration::from_secs(60),
            &mut on_event,
        )
        .await
    {
        Ok(welcome) => seq = seq.max(welcome.unwrap_or(0)),
        Err(e) => {
            fail(format!("join: {e}"));
            st.status.store(FAILED, Ordering::Relaxed);
            return;
        }
    }
    st.seq.store(seq, Ordering::Relaxed);
    st.status.store(JOINED, Ordering::Relaxed);
    conn.trim();
    // The sync round whose ping is waiting for its pong.
    let mut awaiting: Option<u64> = None;
    loop {
        for _ in 0..std::mem::take(&mut pings) {
            conn.wire.pong(&mut conn.wbuf);
        }
        if let Err(e) = conn.flush().await {
            fail(format!("write: {e}"));
            closed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        tokio::select! {
            biased;
            _ = stop.changed() => {
                // Reset rather than close: thousands of sockets in TIME_WAIT
                // would block the source ports of the next run.
                let _ = conn.stream.set_zero_linger();
                return;
            }
            r = sync.changed() => {
                if r.is_ok() {
                    awaiting = Some(*sync.borrow_and_update());
                    conn.wire.ping(&mut conn.wbuf);
                }
            }
            r = conn.read() => match r {
                Ok(0) | Err(_) => {
                    if !*stop.borrow() {
                        closed.fetch_add(1, Ordering::Relaxed);
                        fail("the server closed the connection".into());
                    }
                    return;
                }
                Ok(_) => {
                    let Conn { wire, rbuf, .. } = &mut conn;
                    let mut errs = Vec::new();
                    let mut ponged = false;
                    let r = wire.decode(rbuf, &mut |ev| match ev {
                        In::Presence { seq: s, .. } => seq = seq.max(s),
                        In::Ping => pings += 1,
                        In::Ack => ponged = true,
                        In::Error { code, message } => errs.push(format!("server error {code}: {message}")),
                        _ => {}
                    });
                    if ponged {
                        if let Some(round) = awaiting.take() {
                            st.synced.store(round, Ordering::Relaxed);
                        }
                    }
                    for e in errs {
                        fail(e);
                    }
                    if let Err(e) = r {
                        fail(e.to_string());
                        closed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    st.seq.store(seq, Ordering::Relaxed);
                    conn.trim();
                }
            }
        }
    }
}

/// Wait until the server's CPU time stops moving, at most `within`; without
/// its PID, a second.
async fn wait_quiet(pid: Option<u32>, within: Duration) {
    match pid {
        Some(pid) => procstat::wait_cpu_quiet(pid, within).await,
        None => sleep(Duration::from_secs(1)).await,
    }
}

struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: tokio::io::Lines<BufReader<ChildStdout>>,
}

impl Worker {
    /// The next line that is not an error; errors go to `errors`.
    async fn expect(
        &mut self,
        word: &str,
        within: Duration,
        errors: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        let deadline = Instant::now() + within;
        loop {
            let line = match timeout(
                deadline.saturating_duration_since(Instant::now()),
                self.lines.next_line(),
            )
            .await
            {
                Ok(Ok(Some(l))) => l,
                _ => {
                    errors.push(format!("a worker did not say {word:?} in time"));
                    return None;
                }
            };
            let mut toks = line.split_whitespace().map(str::to_owned);
            match toks.next().as_deref() {
                Some(w) if w == word => return Some(toks.collect()),
                Some("error") => errors.push(line["error ".len().min(line.len())..].to_string()),
                _ => errors.push(format!("a worker said {line:?}")),
            }
        }
    }

    async fn say(&mut self, line: &str) {
        if let Some(s) = &mut self.stdin {
            let _ = s.write_all(format!("{line}\n").as_bytes()).await;
            let _ = s.flush().await;
        }
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

/// The child side of a split idle run (`chatbench idle-worker`).
pub async fn worker(mut spec: HoldSpec) {
    let mut out = tokio::io::stdout();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    // Wait for the parent's go (with what is left of the join budget), so
    // workers join one after the other.
    match lines.next_line().await {
        Ok(Some(l)) if l.starts_with("go") => {
            if let Some(left) = l.strip_prefix("go ").and_then(|s| s.parse::<f64>().ok()) {
                spec.budget = Duration::from_secs_f64(left.max(0.0));
            }
        }
        _ => return,
    }
    let h = hold(&spec).await;
    let mut say = String::new();
    for e in h.errors() {
        say.push_str(&format!("error {e}\n"));
    }
    say.push_str(&format!(
        "joined {} {} {}\n",
        h.count(JOINED),
        h.count(FAILED),
        h.max_seq()
    ));
    let _ = out.write_all(say.as_bytes()).await;
    let _ = out.flush().await;
    // Bounded by the parent, which closes stdin when done (or dies).
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(seq) = line
            .strip_prefix("sync ")
            .and_then(|s| s.parse::<u64>().ok())
        {
            let ok = h.sync(Duration::from_secs(120)).await;
            let msg = if ok {
                "synced\n".to_string()
            } else {
                format!("error connections did not catch up with seq {seq}\nsynced\n")
            };
            let _ = out.write_all(msg.as_bytes()).await;
            let _ = out.flush().await;
        }
    }
    let closed = h.close().await;
    let _ = out.write_all(format!("closed {closed}\n").as_bytes()).await;
    let _ = out.flush().await;
}
