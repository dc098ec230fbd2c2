//! What the log says of this node's heartbeat while it fails: the first
//! failure and each new cause at once, then a line a minute, and its return.

use std::time::{Duration, Instant};

use super::BeatCause;

/// While this node's heartbeat keeps failing (NATS away), how often at
/// most the log says so again: once a second would bury everything else.
const FAILING_LOGGED_EVERY: Duration = Duration::from_secs(60);

/// What the log says of this node's heartbeat: its first failure, each
/// other cause the first time it comes in the run of failures, then at
/// most one line each [`FAILING_LOGGED_EVERY`] while it goes on failing
/// (with how many failures were not logged), and one when a heartbeat
/// goes through again.
#[derive(Debug, Default)]
pub(super) struct BeatLog {
    /// Failing since the first failure in a row, if failing.
    failing: Option<FailingSince>,
}

/// A run of failed heartbeats.
#[derive(Debug)]
struct FailingSince {
    /// When the first of them failed.
    since: Instant,
    /// When the log last said so.
    logged_at: Instant,
    /// Failures in the run.
    failures: u64,
    /// Failures since the last one logged.
    unlogged: u64,
    /// The causes logged in the run, each once: causes that alternate
    /// (NATS servers of a cluster, one without its store, reached in
    /// turn) are not said at every heartbeat.
    said: Vec<BeatCause>,
}

/// What to log of a failed heartbeat.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Failing {
    /// The first of a run.
    First,
    /// The run goes on: `failures` in `for_secs` seconds, `unlogged` of
    /// them since the last line.
    Still {
        failures: u64,
        for_secs: u64,
        unlogged: u64,
    },
}

impl BeatLog {
    /// A heartbeat failed at `now` for `cause`: what to log, if anything.
    /// A cause not said yet in this run of failures is said at once: NATS
    /// back without its store, or without JetStream, after an outage must
    /// not wait for the next reminder, as what to do is no longer to wait.
    pub(super) fn failed(&mut self, now: Instant, cause: BeatCause) -> Option<Failing> {
        let Some(f) = &mut self.failing else {
            self.failing = Some(FailingSince {
                since: now,
                logged_at: now,
                failures: 1,
                unlogged: 0,
                said: vec![cause],
            });
            return Some(Failing::First);
        };
        f.failures += 1;
        let said = f.said.contains(&cause);
        if said && now.duration_since(f.logged_at) < FAILING_LOGGED_EVERY {
            f.unlogged += 1;
            return None;
        }
        if !said {
            f.said.push(cause);
        }
        let still = Failing::Still {
            failures: f.failures,
            for_secs: now.duration_since(f.since).as_secs(),
            unlogged: f.unlogged,
        };
        f.logged_at = now;
        f.unlogged = 0;
        Some(still)
    }

    /// A heartbeat went through at `now`: after failures, how many and
    /// for how many seconds (to log once).
    pub(super) fn succeeded(&mut self, now: Instant) -> Option<(u64, u64)> {
        let f = self.failing.take()?;
        Some((f.failures, now.duration_since(f.since).as_secs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_heartbeat_is_logged_once_a_minute_and_its_return_once() {
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let mut log = BeatLog::default();
        assert_eq!(log.succeeded(at(0)), None, "nothing failed");
        assert_eq!(log.failed(at(1), BeatCause::Away), Some(Failing::First));
        for s in 2..61 {
            assert_eq!(log.failed(at(s), BeatCause::Away), None, "at {s} s");
        }
        assert_eq!(
            log.failed(at(61), BeatCause::Away),
            Some(Failing::Still {
                failures: 61,
                for_secs: 60,
                unlogged: 59
            })
        );
        assert_eq!(log.failed(at(62), BeatCause::Away), None);
        assert_eq!(log.succeeded(at(63)), Some((62, 62)));
        assert_eq!(log.succeeded(at(64)), None, "said once");
        // A new run of failures begins with its first logged again.
        assert_eq!(log.failed(at(65), BeatCause::Away), Some(Failing::First));
    }

    #[test]
    fn a_heartbeat_failing_for_a_new_cause_is_logged_at_once() {
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let mut log = BeatLog::default();
        assert_eq!(log.failed(at(0), BeatCause::Away), Some(Failing::First));
        assert_eq!(log.failed(at(1), BeatCause::Away), None);
        // NATS back, without its store: said at once.
        assert_eq!(
            log.failed(at(2), BeatCause::StoreLost),
            Some(Failing::Still {
                failures: 3,
                for_secs: 2,
                unlogged: 1
            })
        );
        assert_eq!(
            log.failed(at(3), BeatCause::StoreLost),
            None,
            "the same cause waits"
        );
        // Away again: said already in this run.
        assert_eq!(log.failed(at(4), BeatCause::Away), None);
        // Back without JetStream (started without -js): said at once.
        assert_eq!(
            log.failed(at(5), BeatCause::NoJetStream),
            Some(Failing::Still {
                failures: 6,
                for_secs: 5,
                unlogged: 2
            })
        );
    }

    /// Causes that alternate at every heartbeat (a NATS cluster's servers
    /// reached in turn, one of them without its store) are each said
    /// once, then in the reminder once a minute: each was said at once,
    /// so the log said one line a second.
    #[test]
    fn a_heartbeat_failing_for_alternating_causes_is_logged_once_for_each() {
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let cause = |s: u64| match s % 2 {
            0 => BeatCause::Away,
            _ => BeatCause::StoreLost,
        };
        let mut log = BeatLog::default();
        assert_eq!(log.failed(at(0), cause(0)), Some(Failing::First));
        assert_eq!(
            log.failed(at(1), cause(1)),
            Some(Failing::Still {
                failures: 2,
                for_secs: 1,
                unlogged: 0
            })
        );
        for s in 2..61 {
            assert_eq!(log.failed(at(s), cause(s)), None, "at {s} s");
        }
        assert_eq!(
            log.failed(at(61), cause(61)),
            Some(Failing::Still {
                failures: 62,
                for_secs: 61,
                unlogged: 59
            })
        );
        assert_eq!(log.succeeded(at(62)), Some((62, 62)));
        // A new run says its causes anew.
        assert_eq!(log.failed(at(63), cause(1)), Some(Failing::First));
        assert!(log.failed(at(64), cause(0)).is_some());
    }
}
