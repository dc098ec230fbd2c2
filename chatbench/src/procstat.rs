//! The server's CPU time and memory, read from /proc with procfs.
//!
//! CPU seconds are utime + stime of the whole process (all threads) from
//! `/proc/PID/stat`, in clock ticks of the rate sysconf reports; memory is
//! VmRSS (now) and VmHWM (peak) from `/proc/PID/status`.

use procfs::process::Process;
use serde::{Deserialize, Serialize};

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

/// Seconds per clock tick of `/proc/PID/stat`'s times (sysconf's
/// `_SC_CLK_TCK`; 10 ms on Linux).
fn tick_s() -> f64 {
    1.0 / procfs::ticks_per_second() as f64
}

/// Read process `pid` now; `None` if it is gone or unreadable.
pub fn sample(pid: u32) -> Option<Sample> {
    let process = Process::new(i32::try_from(pid).ok()?).ok()?;
    let stat = process.stat().ok()?;
    let status = process.status().ok()?;
    Some(Sample {
        cpu_s: (stat.utime + stat.stime) as f64 * tick_s(),
        rss_kib: status.vmrss?,
        hwm_kib: status.vmhwm?,
    })
}

/// Wait until the server's CPU time stops moving (two quiet quarter-seconds
/// in a row, under one clock tick each), at most `within`.
pub async fn wait_cpu_quiet(pid: u32, within: std::time::Duration) {
    use tokio::time::{sleep, Duration, Instant};
    let deadline = Instant::now() + within;
    // A tick and a tenth: float sums of ticks are not exact.
    let quiet_s = 1.1 * tick_s();
    let mut last = sample(pid).map(|s| s.cpu_s).unwrap_or(0.0);
    let mut quiet = 0;
    while quiet < 2 && Instant::now() < deadline {
        sleep(Duration::from_millis(250)).await;
        let now = sample(pid).map(|s| s.cpu_s).unwrap_or(0.0);
        quiet = if now - last <= quiet_s { quiet + 1 } else { 0 };
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_very_process() {
        let s = sample(std::process::id()).expect("our own /proc entry");
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib);
        assert!(s.cpu_s >= 0.0);
    }

    #[test]
    fn cpu_seconds_are_seconds() {
        // Busy until the process is charged 50 ms (its own CPU, not wall
        // time: on a loaded machine 200 ms of wall time was charged 40 ms),
        // for 30 s of wall time at most, a check of the clock every 10 ms:
        // at most the wall time on every core (other tests run beside
        // this one). A tick rate too low never gets there; one too high
        // gets there at once, charged more than the wall time allows.
        let me = std::process::id();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let before = sample(me).unwrap().cpu_s;
        let t = std::time::Instant::now();
        let mut x = 0u64;
        let mut used = 0.0;
        while used < 0.05 && t.elapsed() < std::time::Duration::from_secs(30) {
            let chunk = std::time::Instant::now();
            while chunk.elapsed() < std::time::Duration::from_millis(10) {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
            }
            used = sample(me).unwrap().cpu_s - before;
        }
        let wall = t.elapsed().as_secs_f64();
        assert!(used >= 0.05, "{used} s of CPU in {wall} s busy");
        assert!(
            used <= wall * cores + 2.0 * tick_s(),
            "{used} s of CPU in {wall} s"
        );
    }

    #[test]
    fn a_missing_process_reads_as_none() {
        assert_eq!(sample(u32::MAX), None);
    }
}
