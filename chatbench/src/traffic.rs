//! The engine behind `fanout`, `latency` and `private`: members that join,
//! wait for a common start, send by plan and count what they receive.
//!
//! Each member is one task owning one connection: it writes its next
//! messages while its window allows (or its schedule says), reads whatever
//! arrived, answers pings, and records each delivery in its [`Ledger`] and
//! latency [`Histogram`]. A coordinator starts everyone at once, prints
//! progress, and stops when every expected delivery arrived, or when
//! nothing has arrived for `stall` (then the rest is reported lost).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use indicatif::HumanCount;
use tokio::sync::watch;
use tokio::time::{sleep, sleep_until, Instant};

use crate::ledger::{Ledger, Tally};
use crate::net::{Conn, Endpoint};
use crate::procstat;
use crate::progress;
use crate::report::{Percentiles, Report, ServerUsage};
use crate::text::{self, Stamp};
use crate::wire::{Dest, In, Subs, Target};

/// How a sender learns that a message was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Its own copy came back (chat's echo; redis/nats room subscribers).
    OwnCopy,
    /// The server's reply to the publish (redis integer, nats PONG).
    Reply,
    /// End to end: every receiver has it. Receivers report how many of
    /// the sender's messages they hold every `every` messages (and at the
    /// last), inside this process; the window counts from the slowest.
    Receivers {
        /// Messages between two reports of one receiver.
        every: u64,
    },
}

/// What one member sends.
#[derive(Debug, Clone)]
pub struct SendPlan {
    /// Its index among senders (carried in the text).
    pub sender: usize,
    /// Destination of each message: `None` the room, `Some(i)` member `i`.
    pub dests: Vec<Option<usize>>,
    /// Most messages awaiting their ack.
    pub window: usize,
    /// Messages per second, or as fast as the window allows.
    pub rate: Option<f64>,
    /// With a rate: seconds after the start before the first message.
    pub phase: f64,
    /// How the ack arrives.
    pub ack: Ack,
}

/// One member's part in a run.
#[derive(Debug, Clone)]
pub struct MemberPlan {
    /// Its name (nick; channel suffix for redis and nats).
    pub nick: String,
    /// What it listens to.
    pub subs: Subs,
    /// What it sends, if anything.
    pub send: Option<SendPlan>,
    /// Messages it must receive from each sender.
    pub expect: Vec<u64>,
    /// Whether its own messages coming back count as deliveries (room
    /// workloads: yes, the sender is a member like any other).
    pub count_own: bool,
}

/// The settings common to every traffic workload.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The server.
    pub target: Target,
    /// Its address and the transport (several: a cluster's nodes, which
    /// the members are spread over in turn).
    pub to: Vec<Arc<Endpoint>>,
    /// Source address for our sockets.
    pub source: Option<IpAddr>,
    /// Its PIDs (a cluster's nodes), to read CPU and memory, added up.
    pub server_pids: Vec<u32>,
    /// A cluster's engine, whose CPU is reported apart.
    pub engine_pid: Option<u32>,
    /// Text size in bytes.
    pub size: usize,
    /// Give up when nothing arrives for this long.
    pub stall: Duration,
    /// Give up after this long in all.
    pub max: Duration,
    /// Print progress to stderr.
    pub progress: bool,
}

struct Shared {
    epoch: Instant,
    names: Vec<String>,
    delivered: AtomicU64,
    sent: AtomicU64,
    ready: AtomicUsize,
    failed: AtomicUsize,
    /// Nanoseconds since `epoch` of the latest delivery.
    last_ns: AtomicU64,
    errors: Mutex<Vec<String>>,
    /// With [`Ack::Receivers`]: per sender, how many of its messages each
    /// member has reported holding, and the sender's wake-up.
    held: Vec<Vec<AtomicU64>>,
    wake: Vec<tokio::sync::Notify>,
    /// With [`Ack::Receivers`]: report every this many messages.
    report_every: Option<u64>,
    /// Deliveries that can no longer arrive: those still expected by
    /// members that failed to join or were cut off. The run does not wait
    /// for them (the tally still counts them lost).
    abandoned: AtomicU64,
}

impl Shared {
    fn error(&self, e: String) {
        let mut errs = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errs.len() < 20 {
            errs.push(e);
        }
    }
}

struct MemberResult {
    ledger: Ledger,
    hist: Histogram<u64>,
}

/// Longest latency a histogram tells apart; longer ones count as this.
/// A run gives up long before (`--max-seconds`, 600 by default).
const LATENCY_CAP_NS: u64 = 3_600_000_000_000;

/// An empty latency histogram, in nanoseconds: two significant digits, so
/// a value is known to 1/128 (the resolution of the histogram this one
/// replaced). Every member's has the same bounds, so they add up.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_CAP_NS, 2).expect("constant, valid bounds")
}

/// CPU time and memory of `pids` added up (`None` if one cannot be read).
fn sample_all(pids: &[u32]) -> Option<procstat::Sample> {
    let mut sum: Option<procstat::Sample> = None;
    for &pid in pids {
        let s = procstat::sample(pid)?;
        sum = Some(match sum {
            None => s,
            Some(t) => procstat::Sample {
                cpu_s: t.cpu_s + s.cpu_s,
                rss_kib: t.rss_kib + s.rss_kib,
                hwm_kib: t.hwm_kib + s.hwm_kib,
            },
        });
    }
    sum
}

/// Run the members; fill `report` with what was measured.
pub async fn run(cfg: &RunConfig, plans: Vec<MemberPlan>, report: &mut Report) {
    let n = plans.len();
    let epoch = Instant::now();
    let senders = plans
        .iter()
        .filter_map(|p| p.send.as_ref().map(|s| s.sender + 1))
        .max()
        .unwrap_or(0);
    let report_every = plans
        .iter()
        .filter_map(|p| match p.send.as_ref()?.ack {
            Ack::Receivers { every } => Some(every.max(1)),
            _ => None,
        })
        .min();
    let e2e = report_every.is_some();
    let sh = Arc::new(Shared {
        held: (0..if e2e { senders } else { 0 })
            .map(|_| (0..n).map(|_| AtomicU64::new(0)).collect())
            .collect(),
        wake: (0..if e2e { senders } else { 0 })
            .map(|_| tokio::sync::Notify::new())
            .collect(),
        report_every,
        abandoned: AtomicU64::new(0),
        epoch,
        names: plans.iter().map(|p| p.nick.clone()).collect(),
        delivered: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        ready: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        last_ns: AtomicU64::new(0),
        errors: Mutex::new(Vec::new()),
    });
    let expected: u64 = plans.iter().map(|p| p.expect.iter().sum::<u64>()).sum();
    let messages: u64 = plans
        .iter()
        .filter_map(|p| p.send.as_ref())
        .map(|s| s.dests.len() as u64)
        .sum();
    let (start_tx, start_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::with_capacity(n);
    // Join in waves so a large room does not hit the server's accept queue at once.
    for (i, plan) in plans.into_iter().enumerate() {
        let (shc, start, stop, cfgc) = (sh.clone(), start_rx.clone(), stop_rx.clone(), cfg.clone());
        let to = Arc::clone(&cfg.to[i % cfg.to.len()]);
        tasks.push(tokio::spawn(member(cfgc, to, i, plan, shc, start, stop)));
        if i % 50 == 49 {
            let deadline = Instant::now() + Duration::from_secs(10);
            while sh.ready.load(Ordering::Relaxed) + sh.failed.load(Ordering::Relaxed) < i + 1
                && Instant::now() < deadline
            {
                sleep(Duration::from_millis(2)).await;
            }
        }
    }
    let join_deadline = Instant::now() + Duration::from_secs(30);
    while sh.ready.load(Ordering::Relaxed) + sh.failed.load(Ordering::Relaxed) < n
        && Instant::now() < join_deadline
    {
        sleep(Duration::from_millis(5)).await;
    }
    let ready = sh.ready.load(Ordering::Relaxed);
    if ready < n {
        sh.error(format!("only {ready} of {n} members joined"));
    }
    if cfg.progress {
        eprintln!(
            "[{} {}] {ready} members joined; starting",
            report.workload,
            cfg.target.name()
        );
    }

    let before = sample_all(&cfg.server_pids);
    let engine_before = cfg.engine_pid.and_then(procstat::sample);
    let t0 = epoch.elapsed().as_nanos() as u64;
    let _ = start_tx.send(true);
    let bar = progress::bar(
        cfg.progress,
        expected,
        progress::DELIVERIES,
        format!("{} {}", report.workload, cfg.target.name()),
    );
    let started = Instant::now();
    let (mut last_count, mut last_change) = (0u64, started);
    loop {
        sleep(Duration::from_millis(20)).await;
        let now = Instant::now();
        let d = sh.delivered.load(Ordering::Relaxed);
        if d != last_count {
            last_count = d;
            last_change = now;
        }
        bar.set_position(d);
        bar.set_message(format!(
            "sent {}",
            HumanCount(sh.sent.load(Ordering::Relaxed))
        ));
        if d + sh.abandoned.load(Ordering::Relaxed) >= expected {
            break;
        }
        if now - last_change >= cfg.stall {
            sh.error(format!("nothing delivered for {:?}; giving up", cfg.stall));
            break;
        }
        if now - started >= cfg.max {
            sh.error(format!("run exceeded {:?}; giving up", cfg.max));
            break;
        }
    }
    let after = sample_all(&cfg.server_pids);
    let engine_after = cfg.engine_pid.and_then(procstat::sample);
    let _ = stop_tx.send(true);
    bar.finish();

    let mut tally = Tally::default();
    let mut hist = latency_histogram();
    for t in tasks {
        match t.await {
            Ok(r) => {
                tally.add(&r.ledger.tally());
                if let Err(e) = hist.add(&r.hist) {
                    sh.error(format!("latency histograms do not add up: {e}"));
                }
            }
            Err(e) => sh.error(format!("member task failed: {e}")),
        }
    }
    let last = sh.last_ns.load(Ordering::Relaxed).max(t0);
    report.seconds = (last - t0) as f64 / 1e9;
    report.messages = sh.sent.load(Ordering::Relaxed);
    if report.messages < messages {
        sh.error(format!(
            "only {} of {messages} messages were sent",
            report.messages
        ));
    }
    report.tally = tally;
    report.latency_ns = Percentiles::of(&hist);
    let usage = |pid, b: Option<procstat::Sample>, a: Option<procstat::Sample>| {
        let (b, a) = (b?, a?);
        Some(ServerUsage {
            pid,
            cpu_s: a.cpu_s - b.cpu_s,
            rss_start_kib: b.rss_kib,
            rss_end_kib: a.rss_kib,
            hwm_kib: a.hwm_kib,
        })
    };
    if let Some(pid) = cfg.engine_pid {
        report.engine = usage(pid, engine_before, engine_after);
    }
    if let (Some(&pid), Some(b), Some(a)) = (cfg.server_pids.first(), before, after) {
        report.server = usage(pid, Some(b), Some(a));
    } else if let Some(pid) = cfg.server_pids.first() {
        sh.error(format!(
            "could not read /proc/{pid}: is --server-pid right?"
        ));
    }
    report.errors.extend(
        sh.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..),
    );
    report.finish();
}

/// With end-to-end acks, a member that ends (done, failed to join, cut
/// off) stops holding every publisher's window back.
struct LeaveWindows<'a> {
    sh: &'a Shared,
    index: usize,
}

impl Drop for LeaveWindows<'_> {
    fn drop(&mut self) {
        for (held, wake) in self.sh.held.iter().zip(&self.sh.wake) {
            held[self.index].store(u64::MAX, Ordering::Release);
            wake.notify_one();
        }
    }
}

/// A member that ends before the run does gives up what it still expects.
fn abandon(sh: &Shared, res: &MemberResult) {
    let t = res.ledger.tally();
    sh.abandoned
        .fetch_add(t.expected.saturating_sub(t.received), Ordering::Relaxed);
}

/// How many of `sender`'s messages the slowest member holds, as reported.
fn slowest(sh: &Shared, sender: usize) -> usize {
    sh.held[sender]
        .iter()
        .map(|h| h.load(Ordering::Acquire))
        .min()
        .unwrap_or(0) as usize
}

async fn member(
    cfg: RunConfig,
    to: Arc<Endpoint>,
    index: usize,
    plan: MemberPlan,
    sh: Arc<Shared>,
    mut start: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) -> MemberResult {
    let mut res = MemberResult {
        ledger: Ledger::new(plan.expect.iter().copied()),
        hist: latency_histogram(),
    };
    let _leave = LeaveWindows { sh: &sh, index };
    let mut conn = match Conn::open(cfg.target, &to, cfg.source, false).await {
        Ok(c) => c,
        Err(e) => {
            sh.error(format!("{}: connect: {e}", plan.nick));
            sh.failed.fetch_add(1, Ordering::Relaxed);
            abandon(&sh, &res);
            return res;
        }
    };
    // Frames after the join confirmation are presence noise; nothing is sent yet.
    if let Err(e) = conn
        .join(&plan.nick, plan.subs, Duration::from_secs(20), &mut |_| {})
        .await
    {
        sh.error(format!("{}: join: {e}", plan.nick));
        sh.failed.fetch_add(1, Ordering::Relaxed);
        abandon(&sh, &res);
        return res;
    }
    sh.ready.fetch_add(1, Ordering::Relaxed);

    let me = plan.send.as_ref().map(|s| s.sender);
    let mut started = false;
    let mut t_start = Instant::now();
    let (mut sent, mut inflight, mut reported) = (0usize, 0usize, 0usize);
    // Per-destination counters, so each receiver sees 0, 1, 2... from each sender.
    let mut per_dest: Vec<u64> = vec![0; sh.names.len()];
    let mut room_n = 0u64;
    let mut text = String::with_capacity(cfg.size + 32);
    let mut errors_left = 3;
    // With end-to-end acks: how many of each sender's messages we hold.
    let mut held: Vec<u64> = vec![0; sh.held.len()];
    let e2e_sender = match &plan.send {
        Some(p) if matches!(p.ack, Ack::Receivers { .. }) => Some(p.sender),
        _ => None,
    };
    loop {
        if let Some(s) = e2e_sender {
            inflight = sent - slowest(&sh, s).min(sent);
        }
        if started {
            if let Some(p) = &plan.send {
                let now = Instant::now();
                while sent < p.dests.len() && inflight < p.window {
                    if let Some(rate) = p.rate {
                        if t_start + Duration::from_secs_f64(p.phase + sent as f64 / rate) > now {
                            break;
                        }
                    }
                    let (dest, n) = match p.dests[sent] {
                        None => {
                            room_n += 1;
                            (Dest::Room, room_n - 1)
                        }
                        Some(d) => {
                            per_dest[d] += 1;
                            (Dest::Member(&sh.names[d]), per_dest[d] - 1)
                        }
                    };
                    let t_ns = sh.epoch.elapsed().as_nanos() as u64;
                    text::write(
                        Stamp {
                            sender: p.sender,
                            n,
                            t_ns,
                        },
                        cfg.size,
                        &mut text,
                    );
                    conn.wire
                        .publish(dest, &text, p.ack == Ack::Reply, &mut conn.wbuf);
                    sent += 1;
                    inflight += 1;
                }
            }
        }
        if let Err(e) = conn.flush().await {
            sh.error(format!("{}: write: {e}", plan.nick));
            break;
        }
        let next_due = match &plan.send {
            Some(p) if started && sent < p.dests.len() && inflight < p.window => p
                .rate
                .map(|r| t_start + Duration::from_secs_f64(p.phase + sent as f64 / r)),
            _ => None,
        };
        let waiting_for_receivers = matches!(&plan.send, Some(p) if started
            && e2e_sender.is_some() && sent < p.dests.len() && inflight >= p.window);
        let wake = async {
            match e2e_sender {
                Some(s) if waiting_for_receivers => sh.wake[s].notified().await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            () = wake => {}
            _ = start.wait_for(|s| *s), if !started => {
                started = true;
                t_start = Instant::now();
            }
            _ = sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {}
            r = conn.read() => {
                match r {
                    Ok(0) => {
                        if !*stop.borrow() {
                            sh.error(format!("{}: the server closed the connection", plan.nick));
                        }
                        break;
                    }
                    Err(e) => {
                        sh.error(format!("{}: read: {e}", plan.nick));
                        break;
                    }
                    Ok(_) => {}
                }
                let now_ns = sh.epoch.elapsed().as_nanos() as u64;
                let (mut new, mut acks, mut pings) = (0u64, 0usize, 0usize);
                let ack_mode = plan.send.as_ref().map(|s| s.ack);
                let crate::net::Conn { wire, rbuf, .. } = &mut conn;
                let decoded = wire.decode(rbuf, &mut |ev| match ev {
                    In::Msg(d) => match text::parse(&d.text) {
                        Some(st) => {
                            let own = Some(st.sender) == me;
                            if (plan.count_own || !own) && res.ledger.record(st.sender, st.n) {
                                new += 1;
                                res.hist.saturating_record(now_ns.saturating_sub(st.t_ns));
                                if let (Some(every), Some(h)) = (sh.report_every, held.get_mut(st.sender)) {
                                    *h += 1;
                                    let last = plan.expect.get(st.sender) == Some(h);
                                    if *h % every == 0 || last {
                                        sh.held[st.sender][index].store(*h, Ordering::Release);
                                        sh.wake[st.sender].notify_one();
                                    }
                                }
                            }
                            if ack_mode == Some(Ack::OwnCopy) && own {
                                acks += 1;
                            }
                        }
                        None => {
                            if errors_left > 0 {
                                errors_left -= 1;
                                sh.error(format!("{}: a message that is not ours: {:?}", plan.nick, String::from_utf8_lossy(&d.text)));
                            }
                        }
                    },
                    In::Ack if ack_mode == Some(Ack::Reply) => acks += 1,
                    In::Ping => pings += 1,
                    In::Error { code, message } if errors_left > 0 => {
                        errors_left -= 1;
                        sh.error(format!("{}: server error {code}: {message}", plan.nick));
                    }
                    _ => {}
                });
                if let Err(e) = decoded {
                    sh.error(format!("{}: {e}", plan.nick));
                    break;
                }
                for _ in 0..pings {
                    conn.wire.pong(&mut conn.wbuf);
                }
                inflight = inflight.saturating_sub(acks);
                if new > 0 {
                    sh.delivered.fetch_add(new, Ordering::Relaxed);
                    sh.last_ns.fetch_max(now_ns, Ordering::Relaxed);
                }
            }
        }
        if sent > reported {
            sh.sent
                .fetch_add((sent - reported) as u64, Ordering::Relaxed);
            reported = sent;
        }
    }
    if !*stop.borrow() {
        // Cut off before the end: what it still expects will not come.
        abandon(&sh, &res);
    }
    res
}
