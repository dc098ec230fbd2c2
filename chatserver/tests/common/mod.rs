//! Shared helpers for the end-to-end tests: start the real `chatserver`
//! binary on `127.0.0.1:0`, and talk to it over plain blocking sockets or
//! through the real `chatclient`.
//!
//! Every wait is a read with a deadline, so a server that misbehaves makes a
//! test fail with a message instead of hanging.

// Each test file uses a different subset of these helpers.
#![allow(dead_code, unused_imports)]

mod chatclient;
mod client;
mod server;

pub use chatclient::{client_exe, RealClient};
pub use client::{frame_bytes, Client, Next};
pub use server::{command, exit_within, run_to_exit, Finished, Server};

use std::time::Duration;

/// How long any single wait may take before the test fails. Generous, so a
/// loaded two-core machine does not make the tests flaky; a passing run
/// never waits this long.
pub const WAIT: Duration = Duration::from_secs(10);

/// The refusals a log counts, said at most once a second: each line
/// containing `said` is one, and each line containing `said` or
/// `left_out` adds its `more_since_last_line=N`.
pub fn refusals_logged(log: &str, said: &str, left_out: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains(said) || l.contains(left_out))
        .map(|l| {
            let more = l
                .split("more_since_last_line=")
                .nth(1)
                .and_then(|v| v.split_whitespace().next())
                .map_or(0, |n| n.parse::<u64>().expect("a count"));
            u64::from(l.contains(said)) + more
        })
        .sum()
}

/// A byte allowance small enough to reach in a test: 20,000 bytes a
/// second after a burst of 65,536 (a few messages of 10 KB), and a grace
/// of 300 ms before a client held back without a break is closed.
pub const SMALL_BYTE_ALLOWANCE: [&str; 6] = [
    "--rate-bytes",
    "20000",
    "--burst-bytes",
    "65536",
    "--rate-limit-grace-ms",
    "300",
];

/// The `"type"` of a frame, or `""`.
pub fn kind(frame: &serde_json::Value) -> &str {
    frame["type"].as_str().unwrap_or("")
}

/// Whether `frame` is a presence event for `nick` with `status`.
pub fn is_presence(frame: &serde_json::Value, nick: &str, status: &str) -> bool {
    kind(frame) == "presence" && frame["nick"] == nick && frame["status"] == status
}
