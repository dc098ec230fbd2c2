//! chatbench against real servers on 127.0.0.1: it must count every
//! delivery (nothing lost) and the soak's checker must pass. No timing is
//! asserted: these are counting tests, not benchmarks.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

fn bench_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chatbench"))
}

/// chatserver from the same target directory, built first if this is a
/// `cargo test -p chatbench` that did not build it.
fn chatserver_exe() -> PathBuf {
    let exe = bench_exe().with_file_name(format!("chatserver{}", std::env::consts::EXE_SUFFIX));
    if !exe.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "chatserver"]);
        if exe
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|d| d == "release")
        {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo to build chatserver");
        assert!(status.success(), "cargo build -p chatserver failed");
    }
    exe
}

/// A server we started; killed by its PID when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_chatserver() -> Server {
    start_chatserver_with(&[])
}

fn start_chatserver_with(extra: &[&str]) -> Server {
    let mut child = Command::new(chatserver_exe())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log-level",
            "warn",
            "--rate",
            "0",
            "--max-clients-per-ip",
            "0",
            // Memory only: the bench measures the protocol path here (the
            // store's own rows are in BENCHMARKS.md), and tests run at once.
            "--store",
            "memory",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start chatserver");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        // Keep draining so the server never blocks on a full pipe.
        for _ in lines {}
    });
    let mut server = Server {
        child,
        addr: String::new(),
    };
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("chatserver printed its address");
    server.addr = first
        .strip_prefix("listening on ")
        .expect("first line is `listening on IP:PORT`")
        .trim()
        .to_string();
    server
}

/// Run chatbench with `args` and return its JSON report.
fn bench(server: &Server, target: &str, args: &[&str]) -> Value {
    bench_via(server, target, &[], args)
}

/// Run chatbench with the global options `via` (e.g. `--transport ws`)
/// and `args`, and return its JSON report.
fn bench_via(server: &Server, target: &str, via: &[&str], args: &[&str]) -> Value {
    let out = Command::new(bench_exe())
        .args([
            "--json",
            "--quiet",
            "--seed",
            "7",
            "--target",
            target,
            "--addr",
            &server.addr,
        ])
        .args(["--server-pid", &server.child.id().to_string()])
        .args(via)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("run chatbench");
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("not a JSON report ({e}): {text}"));
    assert!(
        report["ok"].as_bool().unwrap(),
        "chatbench reported a failure: {report:#}"
    );
    assert!(out.status.success(), "chatbench exited with {}", out.status);
    report
}

fn assert_counted(report: &Value, expected: u64) {
    let tally = &report["tally"];
    assert_eq!(tally["expected"], expected, "{report:#}");
    assert_eq!(tally["received"], expected, "{report:#}");
    assert_eq!(tally["lost"], 0, "{report:#}");
    assert_eq!(tally["duplicates"], 0, "{report:#}");
    assert!(
        report["server"]["cpu_s"].as_f64().is_some(),
        "server usage read from /proc"
    );
}

/// A fan-out of 20 members, 2 publishers x 300 messages, window 16.
const FANOUT_20X2X300: [&str; 9] = [
    "fanout",
    "--members",
    "20",
    "--publishers",
    "2",
    "--messages",
    "300",
    "--window",
    "16",
];

#[test]
fn fanout_against_chatserver_loses_nothing() {
    let server = start_chatserver();
    let fanout = FANOUT_20X2X300;
    let r = bench(&server, "chat", &fanout);
    assert_counted(&r, 20 * 2 * 300);
    assert_eq!(r["messages"], 600);
    // The same with the window counted end to end (the slowest receiver's
    // reports, every 4 messages): nothing lost, nothing stalls.
    let end_to_end = [&fanout[..], &["--end-to-end", "--ack-every", "4"]].concat();
    let r = bench(&server, "chat", &end_to_end);
    assert_counted(&r, 20 * 2 * 300);
    assert_eq!(r["params"]["ack"], "end to end, every 4", "{r:#}");
    // Reports every 16 could never come inside a window of 8: refused
    // before anything starts, not a run that waits forever.
    let out = Command::new(bench_exe())
        .args(["--quiet", "--addr", &server.addr, "fanout", "--window", "8"])
        .arg("--end-to-end")
        .output()
        .expect("run chatbench");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--ack-every 16") && err.contains("--window 8"),
        "{err}"
    );
}

#[test]
fn end_to_end_windows_go_on_without_members_that_could_not_join() {
    // Room for 15 of the 20 members: 5 are refused (server_full). With the
    // window counted from the slowest member, those 5 must not hold the
    // publishers back: the 15 get everything, and the run ends when they
    // have, not by waiting for the 5 to stall out.
    let server = start_chatserver_with(&["--max-clients", "15"]);
    let out = Command::new(bench_exe())
        .args(["--json", "--quiet", "--addr", &server.addr])
        .args(["--server-pid", &server.child.id().to_string()])
        .args(["fanout", "--members", "20", "--publishers", "2"])
        .args(["--messages", "300", "--window", "16", "--end-to-end"])
        .args(["--ack-every", "4"])
        .output()
        .expect("run chatbench");
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("not a JSON report ({e}): {text}"));
    let errors = report["errors"].to_string();
    assert!(
        errors.contains("only 15 of 20 members joined"),
        "{report:#}"
    );
    assert!(!errors.contains("nothing delivered"), "{report:#}");
    assert_eq!(report["tally"]["received"], 15 * 2 * 300, "{report:#}");
    assert_eq!(report["tally"]["duplicates"], 0, "{report:#}");
}

#[test]
fn private_and_latency_against_chatserver_lose_nothing() {
    let server = start_chatserver();
    let r = bench(
        &server,
        "chat",
        &[
            "private",
            "--clients",
            "10",
            "--messages",
            "100",
            "--window",
            "4",
        ],
    );
    assert_counted(&r, 10 * 100);
    let r = bench(
        &server,
        "chat",
        &[
            "latency",
            "--members",
            "10",
            "--publishers",
            "2",
            "--rate",
            "200",
            "--seconds",
            "1",
        ],
    );
    assert_counted(&r, 200 * 10);
    assert_eq!(r["latency_ns"]["count"], 200 * 10);
}

#[test]
fn soak_against_chatserver_passes_the_checker() {
    let server = start_chatserver();
    let r = bench(
        &server,
        "chat",
        &["soak", "--clients", "20", "--seconds", "3", "--rate", "5"],
    );
    let soak = &r["soak"];
    let verdict = &soak["verdict"];
    assert!(verdict["passed"].as_bool().unwrap(), "{r:#}");
    assert_eq!(verdict["lost"], 0);
    assert!(
        verdict["expected"].as_u64().unwrap() > 0,
        "the soak delivered something to check"
    );
    assert!(soak["accepted"].as_u64().unwrap() > 0);
    // Clients came and went: more sessions than client slots.
    assert!(soak["sessions"].as_u64().unwrap() > 20, "{soak:#}");
    assert!(soak["rss_end_kib"].as_u64().is_some());
}

#[test]
fn idle_connections_are_held_and_measured() {
    let server = start_chatserver();
    let r = bench(
        &server,
        "chat",
        &[
            "idle",
            "--connections",
            "50",
            "--batch",
            "10",
            "--settle-seconds",
            "0",
        ],
    );
    assert_eq!(r["idle"]["connections"], 50, "{r:#}");
    assert_eq!(r["idle"]["processes"], 1);
    assert!(r["idle"]["rss_after_kib"].as_u64().unwrap() > 0);
}

#[test]
fn idle_splits_over_worker_processes_and_source_addresses() {
    let server = start_chatserver();
    // 3 child processes, from 127.0.0.2, .3 and .4.
    let args = [
        "idle",
        "--connections",
        "50",
        "--per-process",
        "20",
        "--batch",
        "10",
        "--settle-seconds",
        "0",
    ];
    let r = bench(&server, "chat", &args);
    assert_eq!(r["idle"]["connections"], 50, "{r:#}");
    assert_eq!(r["idle"]["processes"], 3);
}

/// A CA (its certificate written to `dir`/ca.pem) and a certificate it
/// signed for 127.0.0.1 with its key (cert.pem, key.pem), for chatserver's
/// --tls-cert and --tls-key.
fn make_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("server params")
        .signed_by(&key, &ca)
        .expect("server certificate");
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    (paths.0, paths.1, paths.2)
}

/// `chat_connections_opened_total` by transport, from the server's
/// `/metrics` (plain HTTP on the same port; loopback may read it).
fn opened_by_transport(server: &Server) -> Vec<(String, u64)> {
    let mut s = TcpStream::connect(&server.addr).expect("connect for /metrics");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    )
    .unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).expect("read /metrics");
    page.lines()
        .filter_map(|l| l.strip_prefix("chat_connections_opened_total{transport=\""))
        .filter_map(|l| {
            let (t, n) = l.split_once("\"} ")?;
            Some((t.to_owned(), n.trim().parse().ok()?))
        })
        .collect()
}

/// `--transport ws`, `tls` and `wss` against a chatserver with a
/// certificate: fan-out, private and latency runs count every delivery,
/// the soak's checker passes over a WebSocket in TLS (its clients leave
/// with a close frame or a reset), and the server saw the connections
/// arrive the way they were asked for.
#[test]
fn websocket_and_tls_transports_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_pki(dir.path());
    let server = start_chatserver_with(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let ca = ca.to_str().unwrap();
    let fanout = FANOUT_20X2X300;
    let mut runs = 0;
    for via in [
        &["--transport", "ws"][..],
        &["--transport", "tls", "--ca-cert", ca],
        &["--transport", "wss", "--ca-cert", ca],
    ] {
        let r = bench_via(&server, "chat", via, &fanout);
        assert_counted(&r, 20 * 2 * 300);
        assert_eq!(r["transport"], via[1], "{r:#}");
        if via[1] != "ws" {
            let tls = r["params"]["tls"].as_str().unwrap_or_default();
            assert!(tls.starts_with("TLSv1_3 TLS13_"), "{r:#}");
        }
        runs += 1;
    }
    let private = ["private", "--clients", "10", "--messages", "100"];
    assert_counted(
        &bench_via(&server, "chat", &["--transport", "ws"], &private),
        10 * 100,
    );
    let latency = [
        "latency",
        "--members",
        "10",
        "--publishers",
        "2",
        "--rate",
        "200",
        "--seconds",
        "1",
    ];
    let tls = ["--transport", "tls", "--ca-cert", ca];
    assert_counted(&bench_via(&server, "chat", &tls, &latency), 200 * 10);
    let soak = ["soak", "--clients", "20", "--seconds", "3", "--rate", "5"];
    let wss = ["--transport", "wss", "--ca-cert", ca];
    let r = bench_via(&server, "chat", &wss, &soak);
    assert!(r["soak"]["verdict"]["passed"].as_bool().unwrap(), "{r:#}");
    assert!(r["soak"]["sessions"].as_u64().unwrap() > 20, "{r:#}");
    // The server counts a WebSocket inside TLS as a WebSocket.
    let opened = opened_by_transport(&server);
    let count = |t: &str| opened.iter().find(|(n, _)| n == t).map_or(0, |(_, n)| *n);
    assert_eq!(runs, 3);
    assert!(count("websocket") >= 20 + 20 + 10 + 20, "{opened:?}");
    assert!(count("tls") >= 20 + 10, "{opened:?}");
    // Nothing spoke plain chatproto (HTTP requests such as /metrics are
    // not counted as connections).
    assert_eq!(count("tcp"), 0, "{opened:?}");
}

/// A certificate from another CA is refused, and says so.
#[test]
fn tls_with_the_wrong_ca_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = make_pki(dir.path());
    let other = tempfile::tempdir().unwrap();
    let (wrong_ca, _, _) = make_pki(other.path());
    let server = start_chatserver_with(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let out = Command::new(bench_exe())
        .args(["--json", "--quiet", "--addr", &server.addr])
        .args([
            "--transport",
            "tls",
            "--ca-cert",
            wrong_ca.to_str().unwrap(),
        ])
        .args([
            "fanout",
            "--members",
            "2",
            "--publishers",
            "1",
            "--messages",
            "1",
        ])
        .output()
        .expect("run chatbench");
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let errors = report["errors"].to_string();
    assert!(errors.contains("TLS handshake"), "{report:#}");
    // Without --ca-cert it is a bad command line.
    let out = Command::new(bench_exe())
        .args(["--addr", &server.addr, "--transport", "wss", "fanout"])
        .output()
        .expect("run chatbench");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ca-cert"));
}

/// A free port on 127.0.0.1 for a server that cannot be told to pick one.
/// Another process may take it before the server binds it, so callers
/// check that the server they started is the one answering.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .chain(["/usr/sbin", "/usr/bin"])
        .map(|d| Path::new(d).join(program))
        .find(|p| p.exists())
}

/// Start redis-server on a free port and wait until *that* process answers
/// `PING` with `+PONG`. A bare connect is not proof: if another process
/// took the port first, redis exits and the connect reaches the other
/// process. So: if our redis has exited, try again on a new port.
fn start_redis(program: &Path) -> Server {
    let mut last_error = String::new();
    for _attempt in 0..5 {
        let port = free_port();
        let child = Command::new(program)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start redis-server");
        let mut server = Server {
            child,
            addr: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = server.child.try_wait().expect("poll redis-server") {
                let mut log = String::new();
                if let Some(mut out) = server.child.stdout.take() {
                    let _ = out.read_to_string(&mut log);
                }
                last_error = format!("redis-server exited with {status}: {log}");
                break;
            }
            if answers_ping(&server.addr) {
                // Keep draining redis's log so it never blocks on a full pipe.
                let out = server.child.stdout.take();
                let err = server.child.stderr.take();
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut out.unwrap(), &mut std::io::sink());
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut err.unwrap(), &mut std::io::sink());
                });
                return server;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if last_error.is_empty() {
            panic!("redis-server on port {port} did not answer PING within 10 s");
        }
    }
    panic!("redis-server did not start in 5 attempts; last: {last_error}");
}

/// True when the server at `addr` speaks RESP and answers `PING`.
fn answers_ping(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// Start nats-server on a port it chooses itself (`-p -1`) and read the
/// port from its log line "Listening for client connections on HOST:PORT".
fn start_nats(program: &Path) -> Server {
    let mut child = Command::new(program)
        .args(["-a", "127.0.0.1", "-p", "-1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nats-server");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !sent {
                if let Some((_, addr)) = line.split_once("Listening for client connections on ") {
                    let _ = tx.send(addr.trim().to_string());
                    sent = true;
                }
            }
            // Keep draining so nats never blocks on a full pipe.
        }
    });
    let mut server = Server {
        child,
        addr: String::new(),
    };
    server.addr = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("nats-server logged the address it listens on");
    server
}

/// The redis and nats adapters against the real servers, when installed
/// (bench/run.sh and .ci/run install them). Missing, a server is skipped
/// loudly, unless `CHAT_REQUIRE_REDIS` / `CHAT_REQUIRE_NATS` is set (as
/// .ci/run does), where it fails the test.
#[test]
fn adapters_count_the_same_workloads_on_redis_and_nats() {
    for (exe, target, require) in [
        ("redis-server", "redis", "CHAT_REQUIRE_REDIS"),
        ("nats-server", "nats", "CHAT_REQUIRE_NATS"),
    ] {
        let Some(path) = on_path(exe) else {
            assert!(
                std::env::var_os(require).is_none(),
                "{exe} is not installed and {require} is set"
            );
            eprintln!("SKIPPING the {target} adapter check: {exe} is not installed (set {require}=1 to fail instead)");
            continue;
        };
        let server = if target == "redis" {
            start_redis(&path)
        } else {
            start_nats(&path)
        };
        count_fanout_and_private(&server, target);
    }
}

/// A small fan-out and a small private run against `server` through the
/// `target` adapter: every delivery counted, none lost.
fn count_fanout_and_private(server: &Server, target: &str) {
    let fanout = [
        "fanout",
        "--members",
        "10",
        "--publishers",
        "2",
        "--messages",
        "200",
    ];
    assert_counted(&bench(server, target, &fanout), 10 * 2 * 200);
    let mut end_to_end = fanout.to_vec();
    end_to_end.push("--end-to-end");
    assert_counted(&bench(server, target, &end_to_end), 10 * 2 * 200);
    let private = ["private", "--clients", "10", "--messages", "50"];
    assert_counted(&bench(server, target, &private), 10 * 50);
}
