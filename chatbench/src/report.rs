//! What a run found: one [`Report`] per run, printed as a table or as JSON,
//! and a side-by-side table over many reports.

use std::collections::BTreeMap;

use comfy_table::{presets, Table};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::ledger::Tally;
use crate::net::Transport;
use crate::wire::Target;
use chatproto::testkit::oracle::Verdict;

/// The summary of a latency histogram the reports carry, in nanoseconds.
///
/// Every figure but `count` is read from the histogram's buckets: a value is
/// reported as the upper bound of its bucket (never below the true value,
/// at most 1/128 above it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
    /// Arithmetic mean.
    pub mean: u64,
}

impl Percentiles {
    /// p50, p99, p99.9, max and mean of `h`; `None` when it is empty.
    pub fn of(h: &Histogram<u64>) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        Some(Percentiles {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean().round() as u64,
        })
    }
}

/// The server's CPU time and memory over a run (given `--server-pid`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ServerUsage {
    /// The process watched.
    pub pid: u32,
    /// utime + stime spent during the measured interval, seconds.
    pub cpu_s: f64,
    /// VmRSS when the measured interval began, KiB.
    pub rss_start_kib: u64,
    /// VmRSS when it ended, KiB.
    pub rss_end_kib: u64,
    /// VmHWM (peak RSS of the process's life) when it ended, KiB.
    pub hwm_kib: u64,
}

/// The idle workload's findings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IdleResult {
    /// Joined connections held open at once.
    pub connections: u64,
    /// Processes the connections were spread over.
    pub processes: u64,
    /// Server VmRSS before the first connection, KiB.
    pub rss_before_kib: u64,
    /// Server VmRSS with every connection joined and the server quiet, KiB.
    pub rss_after_kib: u64,
    /// Server VmRSS after every connection closed again, KiB.
    pub rss_left_kib: u64,
    /// `(after - before) / connections`, KiB.
    pub kib_per_connection: f64,
    /// Seconds it took to connect and join them all.
    pub join_seconds: f64,
}

/// The soak workload's findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakResult {
    /// Client sessions (a client that leaves and comes back is a new session).
    pub sessions: u64,
    /// Sessions still connected at the end.
    pub stayed: u64,
    /// Messages sent / echoed (accepted) / refused with an error frame.
    pub sent: u64,
    /// Messages the server accepted and echoed.
    pub accepted: u64,
    /// Messages refused with an error frame (e.g. `unknown_nick` to someone who just left).
    pub refused: u64,
    /// What the exactly-once-in-order checker found.
    pub verdict: Verdict,
    /// Server VmRSS before the first client, KiB.
    pub rss_start_kib: Option<u64>,
    /// Server VmRSS after every client left, KiB.
    pub rss_end_kib: Option<u64>,
}

/// Everything one run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// fanout, latency, private, idle or soak.
    pub workload: String,
    /// The server spoken to.
    pub target: Target,
    /// How (reports from before `--transport` have none: tcp).
    #[serde(default)]
    pub transport: Transport,
    /// The workload's settings.
    pub params: BTreeMap<String, String>,
    /// Length of the measured interval, seconds.
    pub seconds: f64,
    /// Messages published.
    pub messages: u64,
    /// Expected and received deliveries.
    pub tally: Tally,
    /// Distinct deliveries per second of the measured interval.
    pub deliveries_per_s: Option<f64>,
    /// Send-to-receive latency of every delivery, nanoseconds.
    pub latency_ns: Option<Percentiles>,
    /// The server's CPU and memory.
    pub server: Option<ServerUsage>,
    /// Deliveries per second of server CPU time.
    pub deliveries_per_cpu_s: Option<f64>,
    /// A cluster's engine (nats-server), apart from the nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<ServerUsage>,
    /// Idle workload only.
    pub idle: Option<IdleResult>,
    /// Soak workload only.
    pub soak: Option<SoakResult>,
    /// Errors seen (first few of each connection).
    pub errors: Vec<String>,
    /// No loss, no error, and (soak) the checker passed.
    pub ok: bool,
}

impl Report {
    /// An empty report for `workload` against `target`.
    pub fn new(workload: &str, target: Target) -> Self {
        Report {
            workload: workload.into(),
            target,
            transport: Transport::Tcp,
            params: BTreeMap::new(),
            seconds: 0.0,
            messages: 0,
            tally: Tally::default(),
            deliveries_per_s: None,
            latency_ns: None,
            server: None,
            deliveries_per_cpu_s: None,
            engine: None,
            idle: None,
            soak: None,
            errors: Vec::new(),
            ok: false,
        }
    }

    /// The server and, unless plain TCP, the transport: `chatserver over ws`.
    pub fn column(&self) -> String {
        match self.transport {
            Transport::Tcp => self.target.server().to_owned(),
            t => format!("{} over {}", self.target.server(), t.name()),
        }
    }

    /// Record a setting.
    pub fn param(&mut self, k: &str, v: impl ToString) -> &mut Self {
        self.params.insert(k.into(), v.to_string());
        self
    }

    /// Fill in the rates from the tally, the interval and the server's CPU.
    pub fn finish(&mut self) {
        // Servers can be wordy (redis's protected-mode notice is a page long).
        for e in &mut self.errors {
            if e.len() > 240 {
                let cut = (0..=240)
                    .rev()
                    .find(|&i| e.is_char_boundary(i))
                    .unwrap_or(0);
                e.truncate(cut);
                e.push_str("...");
            }
        }
        if self.seconds > 0.0 && self.tally.expected > 0 {
            self.deliveries_per_s = Some(self.tally.received as f64 / self.seconds);
        }
        if let Some(s) = &self.server {
            if s.cpu_s > 0.0 && self.tally.expected > 0 {
                self.deliveries_per_cpu_s = Some(self.tally.received as f64 / s.cpu_s);
            }
        }
        let soak_ok = !matches!(&self.soak, Some(s) if !s.verdict.passed);
        self.ok =
            self.tally.lost == 0 && self.tally.duplicates == 0 && self.errors.is_empty() && soak_ok;
    }

    /// The summary table a person reads at the end of a run.
    pub fn render(&self) -> String {
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row = |k: &str, v: String| rows.push((k.to_string(), v));
        row(
            "workload",
            format!("{} against {}", self.workload, self.column()),
        );
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        row("settings", params.join(" "));
        if self.tally.expected > 0 || self.messages > 0 {
            row("measured seconds", format!("{:.2}", self.seconds));
            row("messages sent", self.messages.to_string());
            row("deliveries expected", self.tally.expected.to_string());
            row("deliveries received", self.tally.received.to_string());
            row("lost deliveries", self.tally.lost.to_string());
            row(
                "duplicates / reordered / unexpected",
                format!(
                    "{} / {} / {}",
                    self.tally.duplicates, self.tally.reordered, self.tally.unexpected
                ),
            );
        }
        if let Some(r) = self.deliveries_per_s {
            row("deliveries/s", si(r));
        }
        if let Some(l) = &self.latency_ns {
            row(
                "latency p50 / p99 / p99.9 / max",
                format!(
                    "{} / {} / {} / {}",
                    ms(l.p50),
                    ms(l.p99),
                    ms(l.p999),
                    ms(l.max)
                ),
            );
        }
        if let Some(s) = &self.server {
            row("server CPU seconds", format!("{:.2}", s.cpu_s));
            row(
                "server RSS start / end / peak",
                format!(
                    "{} / {} / {}",
                    kib(s.rss_start_kib),
                    kib(s.rss_end_kib),
                    kib(s.hwm_kib)
                ),
            );
        }
        if let Some(r) = self.deliveries_per_cpu_s {
            row("deliveries per server-CPU-second", si(r));
        }
        if let Some(e) = &self.engine {
            row("engine CPU seconds (apart)", format!("{:.2}", e.cpu_s));
        }
        if let Some(i) = &self.idle {
            row(
                "idle connections (processes)",
                format!("{} ({})", i.connections, i.processes),
            );
            row("join time", format!("{:.1} s", i.join_seconds));
            row(
                "server RSS before / joined / after leaving",
                format!(
                    "{} / {} / {}",
                    kib(i.rss_before_kib),
                    kib(i.rss_after_kib),
                    kib(i.rss_left_kib)
                ),
            );
            row(
                "KiB per joined idle connection",
                format!("{:.2}", i.kib_per_connection),
            );
        }
        if let Some(s) = &self.soak {
            row(
                "sessions (stayed to the end)",
                format!("{} ({})", s.sessions, s.stayed),
            );
            row(
                "messages sent / accepted / refused",
                format!("{} / {} / {}", s.sent, s.accepted, s.refused),
            );
            let v = &s.verdict;
            row(
                "soak deliveries expected / received",
                format!("{} / {}", v.expected, v.delivered),
            );
            row(
                "soak lost / duplicated / out of order / misdelivered",
                format!(
                    "{} / {} / {} / {}",
                    v.lost, v.duplicates, v.out_of_order, v.misdelivered
                ),
            );
            row(
                "soak unanswered / mismatched copies",
                format!("{} / {}", v.unanswered, v.mismatched),
            );
            if let (Some(a), Some(b)) = (s.rss_start_kib, s.rss_end_kib) {
                row(
                    "server RSS start / after everyone left",
                    format!("{} / {}", kib(a), kib(b)),
                );
            }
            row(
                "exactly once, in seq order",
                if v.passed {
                    "PASS".into()
                } else {
                    "FAIL".into()
                },
            );
            for p in &v.problems {
                row("  problem", p.clone());
            }
        }
        for e in &self.errors {
            row("error", e.clone());
        }
        row(
            "result",
            if self.ok {
                "ok".into()
            } else {
                "FAILED".into()
            },
        );
        // Two columns, no lines, two spaces between: as plain as it was.
        let mut table = Table::new();
        table
            .load_style(presets::NOTHING)
            .add_rows(rows.into_iter().map(|(k, v)| [k, v]));
        if let Some(c) = table.column_mut(0) {
            c.set_padding((0, 1));
        }
        if let Some(c) = table.column_mut(1) {
            c.set_padding((1, 0));
        }
        table.trim_fmt() + "\n"
    }
}

/// A rate with a unit prefix: 1234567 -> "1.23 M".
pub fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.1}")
    }
}

/// Nanoseconds as milliseconds: 1234567 -> "1.235 ms".
pub fn ms(ns: u64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

fn kib(k: u64) -> String {
    format!("{:.1} MiB", k as f64 / 1024.0)
}

/// The side-by-side table of many reports: one column per target (and
/// per transport, for chat over more than plain TCP), rows per workload
/// metric, in Markdown.
pub fn side_by_side(reports: &[Report]) -> String {
    let mut targets: Vec<(Target, Transport)> = Vec::new();
    for t in [Target::Chat, Target::Redis, Target::Nats] {
        for via in [
            Transport::Tcp,
            Transport::Ws,
            Transport::Tls,
            Transport::Wss,
        ] {
            if reports.iter().any(|r| r.target == t && r.transport == via) {
                targets.push((t, via));
            }
        }
    }
    let find = |w: &str, (t, via): (Target, Transport)| {
        reports
            .iter()
            .rev()
            .find(|r| r.workload == w && r.target == t && r.transport == via)
    };
    type Cell = fn(&Report) -> Option<String>;
    let metrics: [(&str, &str, Cell); 15] = [
        ("fanout", "fan-out deliveries/s", |r| {
            r.deliveries_per_s.map(si)
        }),
        ("fanout", "fan-out deliveries per server-CPU-second", |r| {
            r.deliveries_per_cpu_s.map(si)
        }),
        ("fanout", "fan-out server CPU seconds", |r| {
            r.server.map(|s| format!("{:.2}", s.cpu_s))
        }),
        ("fanout", "fan-out lost deliveries", |r| {
            Some(r.tally.lost.to_string())
        }),
        ("fanout", "fan-out server peak RSS", |r| {
            r.server.map(|s| kib(s.hwm_kib))
        }),
        ("latency", "latency p50 / p99 / p99.9", |r| {
            r.latency_ns
                .map(|l| format!("{} / {} / {}", ms(l.p50), ms(l.p99), ms(l.p999)))
        }),
        ("latency", "latency deliveries per server-CPU-second", |r| {
            r.deliveries_per_cpu_s.map(si)
        }),
        ("latency", "latency lost deliveries", |r| {
            Some(r.tally.lost.to_string())
        }),
        ("private", "private deliveries/s", |r| {
            r.deliveries_per_s.map(si)
        }),
        ("private", "private deliveries per server-CPU-second", |r| {
            r.deliveries_per_cpu_s.map(si)
        }),
        ("private", "private lost deliveries", |r| {
            Some(r.tally.lost.to_string())
        }),
        ("idle", "idle joined connections", |r| {
            r.idle.map(|i| i.connections.to_string())
        }),
        ("idle", "idle KiB per connection", |r| {
            r.idle.map(|i| format!("{:.2}", i.kib_per_connection))
        }),
        (
            "idle",
            "idle server RSS before / joined / after leaving",
            |r| {
                r.idle.map(|i| {
                    format!(
                        "{} / {} / {}",
                        kib(i.rss_before_kib),
                        kib(i.rss_after_kib),
                        kib(i.rss_left_kib)
                    )
                })
            },
        ),
        ("soak", "soak exactly-once in order", |r| {
            r.soak.as_ref().map(|s| {
                if s.verdict.passed {
                    "pass".to_string()
                } else {
                    "FAIL".to_string()
                }
            })
        }),
    ];
    let mut table = Table::new();
    table.load_style(presets::ASCII_MARKDOWN);
    table.set_header(
        std::iter::once("workload / metric".to_string()).chain(targets.iter().map(|&(t, via)| {
            let mut r = Report::new("", t);
            r.transport = via;
            r.column()
        })),
    );
    for (w, label, cell) in metrics {
        if !targets.iter().any(|&t| find(w, t).is_some()) {
            continue;
        }
        let values = targets.iter().map(|&t| {
            find(w, t).map_or_else(
                || "-".to_string(),
                |r| {
                    let v = cell(r).unwrap_or_else(|| "-".into());
                    if r.ok {
                        v
                    } else {
                        format!("{v} (FAILED)")
                    }
                },
            )
        });
        table.add_row(std::iter::once(label.to_string()).chain(values));
    }
    table.to_string() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ServerUsage;

    fn fanout(t: Target, received: u64, cpu: f64) -> Report {
        let mut r = Report::new("fanout", t);
        r.seconds = 2.0;
        r.tally = Tally {
            expected: 1000,
            received,
            lost: 1000 - received,
            ..Tally::default()
        };
        r.server = Some(ServerUsage {
            pid: 1,
            cpu_s: cpu,
            rss_start_kib: 1024,
            rss_end_kib: 2048,
            hwm_kib: 4096,
        });
        r.finish();
        r
    }

    #[test]
    fn rates_and_verdict() {
        let r = fanout(Target::Chat, 1000, 0.5);
        assert_eq!(r.deliveries_per_s, Some(500.0));
        assert_eq!(r.deliveries_per_cpu_s, Some(2000.0));
        assert!(r.ok);
        let lossy = fanout(Target::Nats, 999, 0.5);
        assert!(!lossy.ok);
        assert!(lossy.render().contains("FAILED"));
    }

    #[test]
    fn json_round_trips() {
        let r = fanout(Target::Redis, 1000, 1.0);
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Report>(&j).unwrap(), r);
    }

    #[test]
    fn side_by_side_has_a_column_per_target() {
        let t = side_by_side(&[
            fanout(Target::Nats, 990, 1.0),
            fanout(Target::Chat, 1000, 0.25),
        ]);
        // The columns are padded to line up; compare cells, not spacing.
        let rows: Vec<Vec<&str>> = t
            .lines()
            .map(|l| l.split('|').map(str::trim).collect())
            .collect();
        assert_eq!(
            rows[0],
            ["", "workload / metric", "chatserver", "nats-server", ""]
        );
        assert!(rows[1][1].starts_with("---"), "{t}");
        assert!(
            rows.contains(&vec![
                "",
                "fan-out deliveries per server-CPU-second",
                "4.0 k",
                "990.0 (FAILED)",
                ""
            ]),
            "{t}"
        );
        assert!(!t.contains("latency"));
        let width = t.lines().next().map_or(0, str::len);
        assert!(t.lines().all(|l| l.len() == width), "{t}");
    }

    #[test]
    fn percentiles_within_a_bucket_of_the_truth() {
        // 1..=100_000 microseconds in ns: p99 is 99_000 us, p99.9 is 99_900 us.
        let mut h = Histogram::<u64>::new(2).unwrap();
        for us in 1..=100_000u64 {
            h.record(us * 1000).unwrap();
        }
        let p = Percentiles::of(&h).unwrap();
        for (got, want) in [
            (p.p50, 50_000_000u64),
            (p.p99, 99_000_000),
            (p.p999, 99_900_000),
            (p.max, 100_000_000),
            (p.mean, 50_000_500),
        ] {
            let err = got.abs_diff(want) as f64 / want as f64;
            assert!(err <= 1.0 / 128.0, "{got} vs {want}");
        }
        assert_eq!(p.count, 100_000);
        assert!(p.p50 >= 50_000_000 && p.p99 >= 99_000_000);
    }

    #[test]
    fn a_single_outlier_shows_only_in_the_max() {
        let mut h = Histogram::<u64>::new(2).unwrap();
        for _ in 0..999 {
            h.record(100).unwrap();
        }
        h.record(5_000_000).unwrap();
        let p = Percentiles::of(&h).unwrap();
        assert_eq!((p.p50, p.p99, p.p999), (100, 100, 100));
        assert!(p.max >= 5_000_000 && p.max <= 5_000_000 + 5_000_000 / 128);
        assert_eq!(Percentiles::of(&Histogram::<u64>::new(2).unwrap()), None);
    }

    #[test]
    fn render_is_two_aligned_columns() {
        let text = fanout(Target::Chat, 1000, 0.5).render();
        let lines: Vec<&str> = text.lines().collect();
        // Keys padded to the longest, then two spaces, then the value.
        let key_width = lines.iter().filter_map(|l| l.find("  ")).max().unwrap();
        assert_eq!(key_width, "duplicates / reordered / unexpected".len());
        let row = |k: &str, v: &str| format!("{k:<key_width$}  {v}");
        assert_eq!(lines[0], row("workload", "fanout against chatserver"));
        assert!(
            lines.contains(&row("deliveries/s", "500.0").as_str()),
            "{text}"
        );
        assert_eq!(*lines.last().unwrap(), row("result", "ok"));
    }

    #[test]
    fn units() {
        assert_eq!(si(8_200_000.0), "8.20 M");
        assert_eq!(si(1500.0), "1.5 k");
        assert_eq!(ms(1_234_567), "1.235 ms");
    }
}
