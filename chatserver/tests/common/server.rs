//! The real server binary as a child process.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use super::{Client, WAIT};

/// How many lines of the server's output to keep for a failing test's report.
const TAIL_LINES: usize = 200;
/// How many of its warnings and errors to keep for that report (the
/// first: what went wrong first; the tail may have lost them).
const WARN_LINES: usize = 60;

/// What a server printed that a failing test reports: its last lines,
/// and its first warnings.
#[derive(Default)]
struct Printed {
    tail: VecDeque<String>,
    warnings: Vec<String>,
    /// The last lines that are not a room's events (`[#room seq] ...`,
    /// a line per message): under a burst of messages, a line of the
    /// server's own doings leaves the tail between two looks, and
    /// [`Server::wait_for_line`] must still find it.
    doings: VecDeque<String>,
}

/// A running `chatserver`, killed (by its PID) when dropped.
pub struct Server {
    child: Child,
    addr: SocketAddr,
    printed: Arc<Mutex<Printed>>,
    /// The first lines on stdout, as they come (the first is read by `start`).
    head: mpsc::Receiver<String>,
    /// A word from each of the two threads reading its output once it has
    /// read all of it (at EOF), and how many words came.
    drained: mpsc::Receiver<()>,
    drained_count: usize,
}

impl Server {
    /// Start the server on `127.0.0.1:0` (or the `--listen` in `flags`)
    /// with `flags`, and wait for its `listening on IP:PORT` line.
    pub fn start(flags: &[&str]) -> Server {
        let mut cmd = command(flags);
        if !flags.iter().any(|f| f.starts_with("--listen")) {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.args(flags)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start chatserver");
        let printed = Arc::new(Mutex::new(Printed::default()));
        let (first_tx, first_rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (drained_tx, drained) = mpsc::channel();
        drain(
            stdout,
            Arc::clone(&printed),
            Some(first_tx),
            drained_tx.clone(),
        );
        drain(stderr, Arc::clone(&printed), None, drained_tx);
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            printed,
            head: first_rx,
            drained,
            drained_count: 0,
        };
        let first = match server.head.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(_) => panic!(
                "chatserver printed no first line; output:\n{}",
                server.log()
            ),
        };
        let addr = first
            .strip_prefix("listening on ")
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        server.addr = addr;
        server
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The second line the server printed on stdout (the one after
    /// `listening on`); call it once, before anything else reads it.
    pub fn second_line(&self) -> String {
        match self.head.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(_) => panic!("chatserver printed no second line; output:\n{}", self.log()),
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new raw connection (not joined).
    pub fn connect(&self) -> Client {
        Client::new(TcpStream::connect(self.addr).expect("connect to chatserver"))
    }

    /// A new raw connection whose receive buffer is set to `bytes` before
    /// connecting, so the server's writes to it back up almost at once.
    pub fn connect_with_rcvbuf(&self, bytes: usize) -> Client {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
        socket
            .connect(&self.addr.into())
            .expect("connect to chatserver");
        Client::new(TcpStream::from(socket))
    }

    /// A new connection that has joined as `nick` and read its welcome and
    /// its own online presence.
    pub fn join(&self, nick: &str) -> Client {
        let mut c = self.connect();
        c.join(nick);
        c
    }

    /// The server's resident set size in KiB (VmRSS in /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// The server's virtual memory size in KiB (VmSize): memory reserved,
    /// touched or not.
    pub fn vm_size_kib(&self) -> u64 {
        self.status_kib("VmSize:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {path}"))
    }

    /// Send SIGTERM to the server (and to nothing else: `kill` gets its PID).
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Send `signal` (`STOP`, `CONT`, ...) to the server, by its PID.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Stop the server (SIGSTOP, by its PID) and return once every thread
    /// of it is stopped: from then on what a client does waits in the
    /// kernel (a connection in the accept backlog, its bytes, its end)
    /// until `signal("CONT")`, and is found there all at once.
    pub fn stop(&self) {
        self.signal("STOP");
        let tasks = format!("/proc/{}/task", self.pid());
        let deadline = Instant::now() + WAIT;
        loop {
            let threads = std::fs::read_dir(&tasks).expect("list the server's threads");
            let stopped = threads.flatten().all(|t| {
                let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
                // The state is the field after the command's `)`.
                stat.rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with(['T', 't']))
            });
            if stopped {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "chatserver not stopped within {WAIT:?}"
            );
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Kill the server with SIGKILL (its own PID only: `Child::kill`) and
    /// reap it; it must have died of that signal.
    pub fn sigkill(&mut self) {
        self.child.kill().expect("SIGKILL chatserver");
        let status = self.child.wait().expect("wait for chatserver");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "not killed by SIGKILL: {status:?}"
        );
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait for the process to exit, polling at most until `within` has passed,
    /// and for the threads reading its output to read all of it.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // What it printed last may still be in the pipes: read to
                // their end, so that `log` has every line it printed.
                while self.drained_count < 2 {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match self.drained.recv_timeout(left.max(WAIT)) {
                        Ok(()) => self.drained_count += 1,
                        Err(_) => panic!("chatserver's output never ended after it exited"),
                    }
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "chatserver did not exit within {within:?}; output:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until the server prints a line containing `needle`, at most
    /// `within`; whether it did.
    pub fn wait_for_line(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            {
                let printed = self.printed.lock().unwrap_or_else(|e| e.into_inner());
                let mut lines = printed.tail.iter().chain(&printed.doings);
                if lines.any(|l| l.contains(needle)) {
                    return true;
                }
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until at least `n` of the lines the server printed contain
    /// `needle`, at most `within`; whether they did.
    pub fn wait_for_lines(&self, needle: &str, n: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.log().lines().filter(|l| l.contains(needle)).count() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The whole answer (headers and body) to `GET path` over plain HTTP.
    pub fn http_get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.addr()).expect("connect");
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).expect("request");
        s.set_read_timeout(Some(super::WAIT)).expect("timeout");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("answer");
        answer
    }

    /// The last lines the server printed.
    pub fn log(&self) -> String {
        let printed = self.printed.lock().unwrap_or_else(|e| e.into_inner());
        printed.tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // Child::kill signals this child's own PID (SIGKILL).
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            let addr = self.addr;
            eprintln!(
                "--- chatserver {addr} output (last lines) ---\n{}",
                self.log()
            );
            let printed = self.printed.lock().unwrap_or_else(|e| e.into_inner());
            if !printed.warnings.is_empty() {
                let first = printed.warnings.join("\n");
                eprintln!("--- chatserver {addr}: its first warnings and errors ---\n{first}");
            }
        }
    }
}

/// A `chatserver` command with `flags` in mind: nothing from the caller's
/// environment, and memory only unless `flags` chose where history goes.
pub fn command(flags: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatserver"));
    // Settings from the environment would override nothing we pass, but
    // could add limits we do not expect; RUST_LOG would change the output.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CHATSERVER_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    // Memory only unless the test chose where history goes: tests run
    // at once, and servers on one directory would lock each other out.
    // (A subcommand such as `export` chooses for itself, and a cluster
    // node keeps history in NATS.)
    let subcommand = flags.first().is_some_and(|f| !f.starts_with('-'));
    let chose = subcommand
        || flags.iter().any(|f| {
            // `--cluster` itself, not `--cluster-replicas` and the like,
            // which alone would leave the default `chat-data` here.
            let cluster = *f == "--cluster" || f.starts_with("--cluster=");
            f.starts_with("--store") || f.starts_with("--data-dir") || cluster
        });
    if !chose {
        cmd.args(["--store", "memory"]);
    }
    cmd
}

/// What a `chatserver` run that ended printed.
#[derive(Debug)]
pub struct Finished {
    /// How it ended.
    pub status: ExitStatus,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
}

/// Run `chatserver` with `args` (exactly those: a server that would listen
/// is given `--listen 127.0.0.1:0` by the caller) until it exits, at most
/// `within`; a run that does not end by then is killed and fails the test.
pub fn run_to_exit(args: &[&str], within: Duration) -> Finished {
    let mut child = command(args)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chatserver");
    let out = read_all(child.stdout.take().expect("piped stdout"));
    let err = read_all(child.stderr.take().expect("piped stderr"));
    let Some(status) = exit_within(&mut child, within) else {
        panic!(
            "chatserver {args:?} did not exit within {within:?}; stdout: {:?}, stderr: {:?}",
            out.recv_timeout(WAIT).unwrap_or_default(),
            err.recv_timeout(WAIT).unwrap_or_default()
        );
    };
    let stdout = out.recv_timeout(WAIT).expect("chatserver's stdout");
    let stderr = err.recv_timeout(WAIT).expect("chatserver's stderr");
    Finished {
        status,
        stdout,
        stderr,
    }
}

/// `child`'s exit status once it exits, within `within` at most; `None`
/// (and the child killed) if it does not.
pub fn exit_within(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        // Polling for the exit: a bounded wait, not synchronisation.
        thread::sleep(Duration::from_millis(10));
    }
}

/// Read `from` to its end on a thread; the text arrives on the channel.
fn read_all<R: Read + Send + 'static>(mut from: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

/// How many of the first lines on stdout `drain` hands over as well.
const HEAD_LINES: usize = 2;

/// Read `from` line by line until EOF, so the server never blocks on a full
/// pipe; keep the last lines, hand the first [`HEAD_LINES`] to `head`, and
/// say on `done` when EOF came.
fn drain<R: Read + Send + 'static>(
    from: R,
    printed: Arc<Mutex<Printed>>,
    mut head: Option<mpsc::Sender<String>>,
    done: mpsc::Sender<()>,
) {
    thread::spawn(move || {
        for (n, line) in BufReader::new(from).lines().enumerate() {
            let Ok(line) = line else { break };
            if let Some(tx) = &head {
                let _ = tx.send(line.clone());
            }
            if n + 1 >= HEAD_LINES {
                head = None;
            }
            let mut printed = printed.lock().unwrap_or_else(|e| e.into_inner());
            let warning = line.contains(" WARN ") || line.contains(" ERROR ");
            if warning && printed.warnings.len() < WARN_LINES {
                printed.warnings.push(line.clone());
            }
            if !line.contains(" [#") {
                if printed.doings.len() == TAIL_LINES {
                    printed.doings.pop_front();
                }
                printed.doings.push_back(line.clone());
            }
            if printed.tail.len() == TAIL_LINES {
                printed.tail.pop_front();
            }
            printed.tail.push_back(line);
        }
        let _ = done.send(());
    });
}
