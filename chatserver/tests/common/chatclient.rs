//! The real `chatclient` binary as a child process, typed into through a
//! pipe and read line by line.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use super::WAIT;

/// The `chatclient` binary next to ours; built (once, into the same target
/// directory and profile) when `cargo test -p chatserver` did not.
pub fn client_exe() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let ours = PathBuf::from(env!("CARGO_BIN_EXE_chatserver"));
        let exe = ours.with_file_name(format!("chatclient{}", std::env::consts::EXE_SUFFIX));
        if exe.exists() {
            return exe;
        }
        let profile_dir = ours.parent().expect("binary in a profile directory");
        let target_dir = profile_dir
            .parent()
            .expect("profile directory in a target directory");
        let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        build
            .args(["build", "-p", "chatclient", "--target-dir"])
            .arg(target_dir);
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => {}
            Some("release") => {
                build.arg("--release");
            }
            Some(other) => {
                build.args(["--profile", other]);
            }
        }
        let status = build.status().expect("run cargo build -p chatclient");
        assert!(
            status.success() && exe.exists(),
            "{} is missing and `cargo build -p chatclient` failed",
            exe.display()
        );
        exe
    })
    .clone()
}

/// A running chatclient with piped stdin and stdout; killed (by its PID)
/// when dropped.
pub struct RealClient {
    pub nick: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl RealClient {
    pub fn start(nick: &str, addr: &str, env: &[(&str, &str)]) -> RealClient {
        let mut cmd = Command::new(client_exe());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CHATCLIENT_") {
                cmd.env_remove(key);
            }
        }
        let mut child = cmd
            .args(["--nick", nick, "--timeout", "10", addr])
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chatclient");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        RealClient {
            nick: nick.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Type these lines at once, as a pipe would.
    pub fn type_lines(&mut self, lines: &[String]) {
        let batch: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(batch.as_bytes())
            .expect("write to chatclient");
        stdin.flush().expect("flush to chatclient");
    }

    /// Read lines until `want` matches one; fails after [`WAIT`].
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
                Err(e) => panic!(
                    "{}: no line {what} ({e:?}); saw {:#?}",
                    self.nick, self.seen
                ),
            }
        }
    }

    /// Read lines until every one of `all` was seen (before or now).
    pub fn expect_all(&mut self, all: &[String]) {
        for _ in 0..all.len() {
            let missing: Vec<&String> = all.iter().filter(|l| !self.seen.contains(l)).collect();
            if missing.is_empty() {
                return;
            }
            let what = format!("in {missing:?}");
            self.expect_line(&what, |l| missing.iter().any(|m| m.as_str() == l));
        }
        let missing: Vec<&String> = all.iter().filter(|l| !self.seen.contains(l)).collect();
        assert!(
            missing.is_empty(),
            "{}: never showed {missing:?}",
            self.nick
        );
    }

    /// Close stdin and wait (bounded) for the exit; its status, stderr and
    /// every stdout line.
    pub fn finish(mut self) -> (ExitStatus, String, Vec<String>) {
        self.stdin = None;
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{}: did not exit within {WAIT:?}; saw {:#?}",
                self.nick,
                self.seen
            );
            // Polling for the exit: a bounded wait, not synchronisation.
            thread::sleep(Duration::from_millis(10));
        };
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut stderr);
        }
        // The reader thread ends at EOF, which the exit brought.
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("{}: stdout never ended", self.nick),
            }
        }
        (status, stderr, std::mem::take(&mut self.seen))
    }
}

impl Drop for RealClient {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
