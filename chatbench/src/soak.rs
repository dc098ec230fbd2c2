//! `soak` (chat only): clients join and leave at random while they send, for
//! a bounded time; then every session's log goes through the
//! exactly-once-in-order checker ([`chatproto::testkit::oracle`], which
//! chatproto's model-based test runs too).
//!
//! Client slots are either stable (joined for the whole run) or churning
//! (sessions of random length, ended by a graceful close or by a reset,
//! then back under a new nick). Each client sends at random
//! times, mostly to everyone, sometimes to one to three nicks it believes
//! online (which may have just left: `unknown_nick` is a fine answer).
//!
//! The end is a barrier, not a sleep: sending stops, each client waits for
//! the answers to what it sent, then one extra client sends a marker to
//! everyone; every client still connected reads until the marker, so it has
//! everything ordered before it, and leaves.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::RngExt;
use tokio::sync::watch;
use tokio::time::{sleep, sleep_until, timeout, Instant};

use crate::net::{Conn, Endpoint};
use crate::procstat;
use crate::progress;
use crate::report::{Report, SoakResult};
use crate::wire::{In, Subs, Target, Wire};
use chatproto::testkit::oracle::{self, End, MsgInfo, Outcome, Rx, Sent, SessionLog};

const MARKER: &[u8] = b"soak marker: everything before me must have arrived";
const JOIN_WITHIN: Duration = Duration::from_secs(10);
const DRAIN_WITHIN: Duration = Duration::from_secs(15);

/// Settings of the soak.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// chatserver's address and the transport.
    pub to: Arc<Endpoint>,
    /// Its PID, for RSS at the start and after everyone left.
    pub server_pid: Option<u32>,
    /// Client slots.
    pub clients: usize,
    /// Seconds of joining, leaving and sending.
    pub seconds: f64,
    /// Messages per second per client, on average.
    pub rate: f64,
    /// Share of slots that stay joined the whole time (at least one).
    pub stable: f64,
    /// Share of messages sent to named nicks instead of everyone.
    pub private: f64,
    /// Most unanswered messages per client.
    pub window: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Print progress to stderr.
    pub progress: bool,
}

#[derive(Default)]
struct Shared {
    catalogue: Mutex<BTreeMap<u64, MsgInfo>>,
    logs: Mutex<Vec<SessionLog>>,
    errors: Mutex<Vec<String>>,
    drained: AtomicUsize,
    connected: AtomicUsize,
    sent: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
}

impl Shared {
    fn error(&self, e: String) {
        let mut errs = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errs.len() < 20 {
            errs.push(e);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One connection's life.
struct Session {
    conn: Conn,
    log: SessionLog,
    pending: VecDeque<usize>,
    online: Vec<String>,
    n: u64,
    pings: usize,
    marker_seen: bool,
    fatal: Option<String>,
}

impl Session {
    async fn open(cfg: &SoakConfig, nick: String, sh: &Shared) -> Result<Session, String> {
        let mut conn = Conn::open(Target::Chat, &cfg.to, None, true)
            .await
            .map_err(|e| format!("{nick}: connect: {e}"))?;
        // Whatever follows the welcome in the same read is already the room's traffic.
        let mut early = Vec::new();
        let welcome = conn
            .join(
                &nick,
                Subs {
                    room: true,
                    own: true,
                },
                JOIN_WITHIN,
                &mut |ev| early.extend(owned(ev, &nick, sh)),
            )
            .await
            .map_err(|e| format!("{nick}: join: {e}"))?
            .unwrap_or(0);
        let mut s = Session {
            conn,
            log: SessionLog {
                nick,
                welcome,
                received: Vec::new(),
                sent: Vec::new(),
                end: End::Left,
            },
            pending: VecDeque::new(),
            online: Vec::new(),
            n: 0,
            pings: 0,
            marker_seen: false,
            fatal: None,
        };
        for ev in early {
            s.apply(ev, sh);
        }
        Ok(s)
    }

    fn presence(&mut self, seq: u64, nick: String, online: bool) {
        self.log.received.push(Rx { seq, msg: None });
        if nick == self.log.nick {
            return;
        }
        if online {
            self.online.push(nick);
        } else {
            self.online.retain(|n| *n != nick);
        }
    }

    /// Read once and handle what arrived. `Err` when the connection is over.
    async fn read(&mut self, sh: &Shared) -> Result<(), String> {
        match self.conn.read().await {
            Ok(0) => {
                return Err(self
                    .fatal
                    .clone()
                    .unwrap_or_else(|| "the server closed the connection".into()))
            }
            Err(e) => return Err(format!("read: {e}")),
            Ok(_) => {}
        }
        let mut events = Vec::new();
        let Conn { wire, rbuf, .. } = &mut self.conn;
        let me = &self.log.nick;
        let r = wire.decode(rbuf, &mut |ev| events.extend(owned(ev, me, sh)));
        r.map_err(|e| e.to_string())?;
        for ev in events {
            self.apply(ev, sh);
        }
        for _ in 0..std::mem::take(&mut self.pings) {
            self.conn.wire.pong(&mut self.conn.wbuf);
        }
        self.conn.trim();
        Ok(())
    }

    /// Write the pongs `read` queued. Not part of `read`, which races in a
    /// `select!`: a write cut off half-way would corrupt the stream.
    async fn flush(&mut self) -> Result<(), String> {
        self.conn.flush().await.map_err(|e| format!("write: {e}"))
    }

    async fn send(
        &mut self,
        rng: &mut SmallRng,
        cfg: &SoakConfig,
        sh: &Shared,
    ) -> Result<(), String> {
        let mut to = Vec::new();
        if !self.online.is_empty() && rng.random::<f64>() < cfg.private {
            let k = rng.random_range(1..=3);
            for _ in 0..k {
                let pick = self.online[rng.random_range(0..self.online.len())].clone();
                if !to.contains(&pick) {
                    to.push(pick);
                }
            }
        }
        // Now and then a text that JSON must escape, to check it comes back as sent.
        let tail = match rng.random_range(0..10) {
            0 => "with \"quotes\", a \\ and an \u{1b}[31mESC\u{1b}[0m\tand tab",
            1 => "unicode caf\u{e9} \u{202e}bidi\u{202c} \u{1F600}",
            _ => "plain text, nothing to escape",
        };
        let text = format!("{}#{} {tail}", self.log.nick, self.n);
        self.n += 1;
        let print = oracle::fingerprint(&self.log.nick, &to, text.as_bytes());
        self.log.sent.push(Sent {
            print,
            outcome: Outcome::Unanswered,
        });
        self.pending.push_back(self.log.sent.len() - 1);
        sh.sent.fetch_add(1, Ordering::Relaxed);
        if let Wire::Chat(w) = &mut self.conn.wire {
            w.publish_to(to, &text, &mut self.conn.wbuf);
        }
        self.conn.flush().await.map_err(|e| format!("write: {e}"))
    }

    fn finish(mut self, sh: &Shared, end: End) {
        self.log.end = end;
        lock(&sh.logs).push(self.log);
    }
}

/// Apply one received event to the session's log and state.
impl Session {
    fn apply(&mut self, ev: Ev, sh: &Shared) {
        match ev {
            Ev::Msg {
                seq,
                print,
                echo,
                marker,
            } => {
                self.log.received.push(Rx {
                    seq,
                    msg: Some(print),
                });
                self.marker_seen |= marker;
                if echo {
                    match self.pending.pop_front() {
                        Some(i) => {
                            self.log.sent[i].outcome = Outcome::Echo(seq);
                            if !marker {
                                sh.accepted.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        None => sh.error(format!(
                            "{}: an echo (seq {seq}) of nothing it sent",
                            self.log.nick
                        )),
                    }
                }
            }
            Ev::Presence(seq, nick, online) => self.presence(seq, nick, online),
            Ev::Ping => self.pings += 1,
            Ev::Error(code, message) => {
                let answer = matches!(
                    code.as_str(),
                    "unknown_nick" | "msg_too_large" | "bad_frame"
                );
                match self.pending.front() {
                    Some(&i) if answer => {
                        self.pending.pop_front();
                        self.log.sent[i].outcome = Outcome::Refused(code);
                        sh.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => self.fatal = Some(format!("server error {code}: {message}")),
                }
            }
        }
    }
}

/// A received event as the session keeps it; every message also goes into
/// the catalogue (the first copy of each seq).
fn owned(ev: In<'_>, me: &str, sh: &Shared) -> Option<Ev> {
    Some(match ev {
        In::Msg(d) => {
            // Identities as the server compares them (chatproto's folding).
            let from = chatproto::nick_key(d.from.as_deref().unwrap_or(""));
            let to: Vec<String> =
                d.to.to_vec()
                    .iter()
                    .map(|t| chatproto::nick_key(t))
                    .collect();
            let print = oracle::fingerprint(&from, &to, &d.text);
            let seq = d.seq.unwrap_or(0);
            let echo = from == me;
            lock(&sh.catalogue)
                .entry(seq)
                .or_insert_with(|| MsgInfo { from, to, print });
            Ev::Msg {
                seq,
                print,
                echo,
                marker: &*d.text == MARKER,
            }
        }
        In::Presence { seq, nick, online } => Ev::Presence(seq, chatproto::nick_key(&nick), online),
        In::Ping => Ev::Ping,
        In::Error { code, message } => Ev::Error(code.into_owned(), message.into_owned()),
        _ => return None,
    })
}

enum Ev {
    Msg {
        seq: u64,
        print: u64,
        echo: bool,
        marker: bool,
    },
    Presence(u64, String, bool),
    Ping,
    Error(String, String),
}

fn exp_delay(rng: &mut SmallRng, rate: f64) -> Duration {
    if rate <= 0.0 {
        return Duration::from_secs(3600);
    }
    Duration::from_secs_f64((-(1.0 - rng.random::<f64>()).ln() / rate).min(60.0))
}

/// One client slot: sessions one after the other until the stop.
async fn slot(
    i: usize,
    churner: bool,
    cfg: SoakConfig,
    sh: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut rng = crate::workloads::rng(cfg.seed, i as u64);
    let life_max = (cfg.seconds / 2.0).clamp(0.3, 8.0);
    sleep(Duration::from_millis(rng.random_range(0..200))).await;
    let mut gen = 0;
    loop {
        if *stop.borrow() {
            break;
        }
        let nick = format!("k{i}x{gen}");
        gen += 1;
        let mut s = match Session::open(&cfg, nick, &sh).await {
            Ok(s) => s,
            Err(e) => {
                sh.error(e);
                sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        sh.connected.fetch_add(1, Ordering::Relaxed);
        let leave_at = churner.then(|| {
            Instant::now() + Duration::from_secs_f64(0.2 + rng.random::<f64>() * (life_max - 0.2))
        });
        let mut next_send = Instant::now() + exp_delay(&mut rng, cfg.rate);
        let result: Result<bool, String> = loop {
            if *stop.borrow() {
                break Ok(true);
            }
            if let Err(e) = s.flush().await {
                break Err(e);
            }
            let can_send = s.pending.len() < cfg.window;
            tokio::select! {
                biased;
                _ = stop.changed() => {}
                _ = sleep_until(leave_at.unwrap_or(next_send)), if leave_at.is_some() => {
                    break Ok(false);
                }
                _ = sleep_until(next_send), if can_send => {
                    if let Err(e) = s.send(&mut rng, &cfg, &sh).await {
                        break Err(e);
                    }
                    next_send = Instant::now() + exp_delay(&mut rng, cfg.rate);
                }
                r = s.read(&sh) => if let Err(e) = r { break Err(e) },
            }
        };
        match result {
            Err(e) => {
                sh.connected.fetch_sub(1, Ordering::Relaxed);
                s.finish(&sh, End::Dropped(e));
            }
            Ok(false) => {
                // Leave: half the time politely (FIN), half with a reset.
                if rng.random_bool(0.5) {
                    let _ = timeout(Duration::from_secs(1), s.conn.shutdown()).await;
                } else {
                    let _ = s.conn.stream.set_zero_linger();
                }
                sh.connected.fetch_sub(1, Ordering::Relaxed);
                s.finish(&sh, End::Left);
                tokio::select! {
                    _ = stop.changed() => {}
                    _ = sleep(Duration::from_millis(rng.random_range(0..300))) => {}
                }
            }
            Ok(true) => {
                drain(s, &sh).await;
                return;
            }
        }
    }
    sh.drained.fetch_add(1, Ordering::Relaxed);
}

/// The end of a session still connected at the stop: wait for the answers,
/// say so, read until the marker, leave.
async fn drain(mut s: Session, sh: &Shared) {
    let deadline = Instant::now() + DRAIN_WITHIN;
    let mut counted = false;
    let end = loop {
        if !counted && s.pending.is_empty() {
            sh.drained.fetch_add(1, Ordering::Relaxed);
            counted = true;
        }
        if s.marker_seen {
            break End::Stayed;
        }
        if let Err(e) = s.flush().await {
            break End::Dropped(e);
        }
        match timeout(
            deadline.saturating_duration_since(Instant::now()),
            s.read(sh),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => break End::Dropped(e),
            Err(_) => break End::Dropped("timed out waiting for the end marker".into()),
        }
    };
    if !counted {
        sh.drained.fetch_add(1, Ordering::Relaxed);
    }
    sh.connected.fetch_sub(1, Ordering::Relaxed);
    s.finish(sh, end);
}

/// Send the end marker from a client of its own and wait for its echo.
async fn marker(cfg: &SoakConfig, sh: &Shared) -> Result<(), String> {
    let mut s = Session::open(cfg, "kmarker".into(), sh).await?;
    let text = std::str::from_utf8(MARKER).expect("ASCII");
    s.log.sent.push(Sent {
        print: oracle::fingerprint("kmarker", &[], MARKER),
        outcome: Outcome::Unanswered,
    });
    s.pending.push_back(0);
    if let Wire::Chat(w) = &mut s.conn.wire {
        w.publish_to(Vec::new(), text, &mut s.conn.wbuf);
    }
    s.conn
        .flush()
        .await
        .map_err(|e| format!("marker: write: {e}"))?;
    let deadline = Instant::now() + DRAIN_WITHIN;
    while !s.marker_seen {
        s.flush().await?;
        match timeout(
            deadline.saturating_duration_since(Instant::now()),
            s.read(sh),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("marker: {e}")),
            Err(_) => return Err("marker: no echo in time".into()),
        }
    }
    s.finish(sh, End::Left);
    Ok(())
}

/// Run the soak.
pub async fn run(cfg: &SoakConfig, report: &mut Report) {
    report
        .param("clients", cfg.clients)
        .param("seconds", cfg.seconds)
        .param("rate_per_client", cfg.rate)
        .param("stable", cfg.stable)
        .param("private", cfg.private)
        .param("window", cfg.window)
        .param("seed", cfg.seed);
    let rss_start = cfg.server_pid.and_then(procstat::sample).map(|s| s.rss_kib);
    let sh = Arc::new(Shared::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let stable = ((cfg.clients as f64 * cfg.stable).round() as usize).clamp(1, cfg.clients.max(1));
    let mut tasks = Vec::new();
    for i in 0..cfg.clients {
        tasks.push(tokio::spawn(slot(
            i,
            i >= stable,
            cfg.clone(),
            sh.clone(),
            stop_rx.clone(),
        )));
    }
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(cfg.seconds);
    // Counts tenths of a second of churn.
    let bar = progress::bar(
        cfg.progress,
        (cfg.seconds * 10.0).ceil() as u64,
        progress::SOAK,
        "soak".into(),
    );
    while Instant::now() < until {
        sleep(Duration::from_millis(100).min(until.saturating_duration_since(Instant::now())))
            .await;
        bar.set_position((started.elapsed().as_secs_f64() * 10.0) as u64);
        bar.set_message(format!(
            "connected {}  sessions {}  sent {}  accepted {}  refused {}",
            sh.connected.load(Ordering::Relaxed),
            lock(&sh.logs).len() + sh.connected.load(Ordering::Relaxed),
            sh.sent.load(Ordering::Relaxed),
            sh.accepted.load(Ordering::Relaxed),
            sh.refused.load(Ordering::Relaxed)
        ));
    }
    bar.finish();
    let _ = stop_tx.send(true);
    let deadline = Instant::now() + DRAIN_WITHIN + JOIN_WITHIN;
    while sh.drained.load(Ordering::Relaxed) < cfg.clients && Instant::now() < deadline {
        sleep(Duration::from_millis(10)).await;
    }
    if sh.drained.load(Ordering::Relaxed) < cfg.clients {
        sh.error("not every client had its messages answered in time".into());
    }
    if let Err(e) = marker(cfg, &sh).await {
        sh.error(e);
    }
    for t in tasks {
        if timeout(DRAIN_WITHIN + JOIN_WITHIN, t).await.is_err() {
            sh.error("a client did not finish".into());
        }
    }
    let measured = started.elapsed().as_secs_f64();
    if cfg.progress {
        eprintln!("[soak] everyone left after {measured:.1}s; checking");
    }
    let logs = std::mem::take(&mut *lock(&sh.logs));
    let catalogue = std::mem::take(&mut *lock(&sh.catalogue));
    let verdict = oracle::check(&catalogue, &logs);
    let rss_end = match cfg.server_pid {
        Some(pid) => {
            procstat::wait_cpu_quiet(pid, Duration::from_secs(10)).await;
            procstat::sample(pid).map(|s| s.rss_kib)
        }
        None => None,
    };
    report.seconds = measured;
    report.messages = sh.sent.load(Ordering::Relaxed);
    report.tally.expected = verdict.expected;
    report.tally.received = verdict.delivered;
    report.tally.lost = verdict.lost;
    report.tally.duplicates = verdict.duplicates;
    report.tally.reordered = verdict.out_of_order;
    report.soak = Some(SoakResult {
        sessions: logs.len() as u64,
        stayed: logs.iter().filter(|l| l.end == End::Stayed).count() as u64,
        sent: sh.sent.load(Ordering::Relaxed),
        accepted: sh.accepted.load(Ordering::Relaxed),
        refused: sh.refused.load(Ordering::Relaxed),
        verdict,
        rss_start_kib: rss_start,
        rss_end_kib: rss_end,
    });
    report.errors.extend(lock(&sh.errors).drain(..));
    report.finish();
}
