//! The server's CPU time and memory, read from /proc.
//!
//! CPU seconds are utime + stime of the whole process (all threads) from
//! `/proc/PID/stat`; memory is VmRSS (now) and VmHWM (peak) from
//! `/proc/PID/status`.

use serde::{Deserialize, Serialize};

/// Clock ticks per second of `/proc/PID/stat`'s times. Linux fixes USER_HZ
/// at 100 on every architecture it exports to user space.
const USER_HZ: f64 = 100.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Sample {
    /// utime + stime, seconds.
    pub cpu_s: f64,
    /// Resident set size now, KiB.
    pub rss_kib: u64,
    /// Peak resident set size so far, KiB.
    pub hwm_kib: u64,
}

/// utime and stime in clock ticks from the contents of `/proc/PID/stat`.
pub fn parse_stat(stat: &str) -> Option<(u64, u64)> {
    // The command name is in parentheses and may itself hold spaces or ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the name: state is field 3 of the file; utime is 14, stime 15.
    let utime = fields.nth(14 - 3)?.parse().ok()?;
    let stime = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

/// The value in kB of `key` (e.g. `VmRSS`) in the contents of `/proc/PID/status`.
pub fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        if k != key {
            return None;
        }
        v.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Read process `pid` now; `None` if it is gone or unreadable.
pub fn sample(pid: u32) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let (u, s) = parse_stat(&stat)?;
    Some(Sample {
        cpu_s: (u + s) as f64 / USER_HZ,
        rss_kib: parse_status_kib(&status, "VmRSS")?,
        hwm_kib: parse_status_kib(&status, "VmHWM")?,
    })
}

/// Wait until the server's CPU time stops moving (two quiet quarter-seconds
/// in a row, under one 10 ms tick each), at most `within`.
pub async fn wait_cpu_quiet(pid: u32, within: std::time::Duration) {
    use tokio::time::{sleep, Duration, Instant};
    let deadline = Instant::now() + within;
    let mut last = sample(pid).map(|s| s.cpu_s).unwrap_or(0.0);
    let mut quiet = 0;
    while quiet < 2 && Instant::now() < deadline {
        sleep(Duration::from_millis(250)).await;
        let now = sample(pid).map(|s| s.cpu_s).unwrap_or(0.0);
        quiet = if now - last <= 0.011 { quiet + 1 } else { 0 };
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_tricky_name() {
        let stat = "4242 (chat server) (x)) S 1 4242 4242 0 -1 4194560 1227 0 0 0 \
                    731 289 0 0 20 0 3 0 123456 1000000 500 18446744073709551615";
        assert_eq!(parse_stat(stat), Some((731, 289)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn status_values_in_kib() {
        let status = "Name:\tchatserver\nVmPeak:\t  999 kB\nVmHWM:\t    5120 kB\nVmRSS:\t    4096 kB\nThreads:\t3\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(4096));
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(5120));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        assert_eq!(parse_status_kib(status, "Threads"), None);
    }

    #[test]
    fn reads_this_very_process() {
        let s = sample(std::process::id()).expect("our own /proc entry");
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib);
        assert!(s.cpu_s >= 0.0);
    }
}
