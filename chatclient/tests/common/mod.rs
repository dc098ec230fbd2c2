//! Shared by the end-to-end tests: the real `chatserver` on 127.0.0.1:0,
//! and `chatclient` with piped stdin and stdout.
//!
//! Nothing here sleeps to synchronise: every wait reads the lines it expects
//! (or the exit it expects) against a deadline, and fails with what it saw.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

pub mod fake;
pub mod pki;
pub mod proxy;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Long enough for a loaded CI machine, short enough to fail fast.
pub const WAIT: Duration = Duration::from_secs(20);

/// The `chatserver` binary, next to ours. `cargo test --workspace` builds
/// it; under `cargo test -p chatclient` it may be missing, so build it once
/// with the cargo that runs us, into the same target directory and profile.
pub fn server_exe() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let ours = PathBuf::from(env!("CARGO_BIN_EXE_chatclient"));
        let exe = ours.with_file_name(format!("chatserver{}", std::env::consts::EXE_SUFFIX));
        if exe.exists() {
            return exe;
        }
        let profile_dir = ours.parent().expect("binary in a profile directory");
        let target_dir = profile_dir
            .parent()
            .expect("profile directory in a target directory");
        let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        build
            .args(["build", "-p", "chatserver", "--target-dir"])
            .arg(target_dir);
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => {}
            Some("release") => {
                build.arg("--release");
            }
            Some(other) => {
                build.args(["--profile", other]);
            }
            None => {}
        }
        let status = build.status().expect("run cargo build -p chatserver");
        assert!(
            status.success() && exe.exists(),
            "{} is missing and `cargo build -p chatserver` failed",
            exe.display()
        );
        exe
    })
    .clone()
}

/// Read `from` line by line on a thread, as raw bytes made into text
/// (invalid UTF-8 replaced, control characters kept, so a test can see them).
pub fn line_reader(from: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut from = BufReader::new(from);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match from.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.strip_suffix('\n').unwrap_or(&line).to_owned();
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// A running chatserver, killed when dropped.
pub struct Server {
    pub child: Child,
    /// `IP:PORT` to connect to.
    pub addr: String,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        Server::start_on("127.0.0.1:0", extra)
    }

    /// A server listening on `addr`: one started again where another was.
    pub fn start_on(addr: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(server_exe())
            .args(["--listen", addr])
            .args(memory_unless_told(extra))
            .args(extra)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chatserver");
        let lines = line_reader(child.stdout.take().unwrap());
        let first = match lines.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                panic!("chatserver printed no first line: {e}");
            }
        };
        let addr = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .trim()
            .to_owned();
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every environment variable chatclient reads, so that the caller's
/// environment never changes what a test does (`SSL_CERT_FILE` and
/// `SSL_CERT_DIR` replace the system's root certificates).
pub const CLIENT_ENV: &[&str] = &[
    "CHATCLIENT_TLS",
    "CHATCLIENT_CA_CERT",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CHATCLIENT_NICK",
    "CHATCLIENT_ADDR",
    "CHATCLIENT_ROOMS",
    "CHATCLIENT_TIMEOUT",
    "CHATCLIENT_RECONNECT_ATTEMPTS",
    "CHATCLIENT_RECONNECT_MIN_MS",
    "CHATCLIENT_FIRST_ADDR",
    "CHATCLIENT_JSON",
    "CHATCLIENT_VERBATIM",
    "CHATCLIENT_STAY",
    "CHATCLIENT_MAX_FRAME_BYTES",
    "CHATCLIENT_PLAIN",
    "CHATCLIENT_BELL",
];

/// A running chatclient with piped stdin, stdout and stderr.
pub struct Client {
    pub name: String,
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub lines: Receiver<String>,
    /// Every stdout line read so far.
    pub seen: Vec<String>,
}

impl Client {
    pub fn start(nick: &str, addr: &str) -> Client {
        Self::start_with(nick, addr, Stdio::piped())
    }

    pub fn start_with(nick: &str, addr: &str, stdin: Stdio) -> Client {
        Self::spawn(nick, addr, &[], &[], stdin)
    }

    /// With more flags and environment variables.
    pub fn start_opts(nick: &str, addr: &str, args: &[&str], env: &[(&str, &str)]) -> Client {
        Self::spawn(nick, addr, args, env, Stdio::piped())
    }

    fn spawn(nick: &str, addr: &str, args: &[&str], env: &[(&str, &str)], stdin: Stdio) -> Client {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatclient"));
        cmd.args(["--nick", nick, addr]).args(args);
        for key in CLIENT_ENV {
            cmd.env_remove(key);
        }
        let mut child = cmd
            .envs(env.iter().copied())
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chatclient");
        let lines = line_reader(child.stdout.take().unwrap());
        Client {
            name: nick.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Type one line.
    pub fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("write to chatclient");
        stdin.flush().unwrap();
    }

    /// Type many lines at once, as a paste or a pipe would.
    pub fn say_all(&mut self, lines: &[String]) {
        let batch: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin
            .write_all(batch.as_bytes())
            .expect("write to chatclient");
        stdin.flush().unwrap();
    }

    /// Close stdin: end of input.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Read lines until one satisfies `want`; return it. Fails after `WAIT`.
    pub fn expect_line(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "{}: no line {what} within {WAIT:?}; saw {:#?}",
                        self.name, self.seen
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "{}: stdout closed before {what}; saw {:#?}",
                        self.name, self.seen
                    )
                }
            }
        }
    }

    /// Read lines until every one of `all` has been seen, in any order.
    pub fn expect_all(&mut self, all: &[String]) {
        let mut missing: Vec<&String> = all.iter().filter(|l| !self.seen.contains(l)).collect();
        while !missing.is_empty() {
            let got = self.expect_line(&format!("in {missing:?}"), |l| {
                missing.iter().any(|m| m.as_str() == l)
            });
            missing.retain(|m| **m != got);
        }
    }

    pub fn expect(&mut self, exact: &str) {
        self.expect_line(&format!("{exact:?}"), |l| l == exact);
    }

    /// Wait for the process to exit within `limit`; its status, its stderr
    /// and every stdout line it printed.
    pub fn wait_exit(mut self, limit: Duration) -> (ExitStatus, String, Vec<String>) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "{}: did not exit within {limit:?}; saw {:#?}",
                    self.name, self.seen
                );
            }
            // Polling the exit status: a bounded wait, not synchronisation.
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        // Whatever stdout still holds, for the assertions that follow.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(line);
        }
        (status, stderr, std::mem::take(&mut self.seen))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--store memory`, unless the test chose where history goes: tests run
/// at once, and each server on the default directory would lock it.
fn memory_unless_told(flags: &[&str]) -> &'static [&'static str] {
    if flags
        .iter()
        .any(|f| f.starts_with("--store") || f.starts_with("--data-dir"))
    {
        &[]
    } else {
        &["--store", "memory"]
    }
}
