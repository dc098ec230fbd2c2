//! When to try again after the connection is lost: exponential backoff
//! with jitter, and how many tries; and, given several addresses, which
//! to try next ([`Pass`]). No clock and no I/O; the randomness comes in
//! as an argument so that tests can pin it.

use std::time::Duration;

use chatproto::ErrorCode;

use crate::error::JoinError;

/// The longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// After a planned restart (the server said `notice` and closed the
/// connection, as it does when it stops: PROTOCOL.md section 8), the wait
/// between two tries, before jitter takes off up to half of it: everyone
/// dropped by the restart is back within about a second of the server's
/// return, before a leaving is said (5 s late), rather than one client
/// far along its doubling waits coming back seconds after the others.
pub const RESTART_RETRY: Duration = Duration::from_secs(1);

/// For how long after a planned restart's loss the client tries again at
/// the steady [`RESTART_RETRY`], before the doubling backoff takes over.
pub const RESTART_WINDOW: Duration = Duration::from_secs(30);

/// How to reconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first attempt, before jitter takes off up to
    /// half of it.
    pub min: Duration,
    /// The cap on any wait.
    pub max: Duration,
    /// Attempts after one loss before giving up; 0: never reconnect.
    pub attempts: u32,
}

impl Backoff {
    /// The wait before attempt `n` (1 for the first): `min` doubled for
    /// each earlier attempt, at most `max`, then scaled by a factor from
    /// 0.5 to 1 picked by `jitter` (0 to 1), so that clients dropped
    /// together (by a server's restart, say) do not all come back at the
    /// same instant, the first time either.
    pub fn delay(&self, n: u32, jitter: f64) -> Duration {
        let doublings = n.saturating_sub(1).min(31);
        let base = self.min.saturating_mul(1 << doublings).min(self.max);
        let factor = 0.5 + 0.5 * jitter.clamp(0.0, 1.0);
        base.mul_f64(factor)
    }
}

/// The tries after one loss: which comes next, and how long to wait for
/// it. After an unplanned loss, attempt `n` waits [`Backoff::delay`]`(n)`,
/// up to `attempts`. After a planned restart (see [`RESTART_RETRY`]),
/// the tries for the first [`RESTART_WINDOW`] after the loss come about
/// every second and together count as attempt 1; then attempts 2 and on
/// follow the doubling backoff as after any loss. So a long restart gives
/// up no sooner than today (the window, then the same attempts), and
/// `--reconnect-attempts 1` means trying for the window alone.
#[derive(Debug, Clone)]
pub struct Retries {
    backoff: Backoff,
    /// Whether the loss followed the server's `notice` (a restart).
    planned: bool,
    /// The attempt the last try counted as; 0 before the first.
    attempt: u32,
}

/// One try of [`Retries`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Try {
    /// How long to wait before it.
    pub delay: Duration,
    /// The attempt it counts as (1 for the first).
    pub attempt: u32,
    /// A steady try after a planned restart (within [`RESTART_WINDOW`]).
    pub steady: bool,
}

impl Retries {
    /// The tries after a loss; `planned`: it followed the server's
    /// `notice` (the server is restarting).
    pub fn new(backoff: Backoff, planned: bool) -> Retries {
        Retries {
            backoff,
            planned,
            attempt: 0,
        }
    }

    /// The next try, `elapsed` after the loss, with `jitter` (0 to 1);
    /// `None`: give up (every attempt failed, or none is allowed).
    pub fn next(&mut self, elapsed: Duration, jitter: f64) -> Option<Try> {
        if self.backoff.attempts == 0 {
            return None;
        }
        if self.planned && elapsed < RESTART_WINDOW {
            self.attempt = 1;
            let factor = 0.5 + 0.5 * jitter.clamp(0.0, 1.0);
            return Some(Try {
                delay: RESTART_RETRY.mul_f64(factor),
                attempt: 1,
                steady: true,
            });
        }
        self.attempt += 1;
        (self.attempt <= self.backoff.attempts).then(|| Try {
            delay: self.backoff.delay(self.attempt, jitter),
            attempt: self.attempt,
            steady: false,
        })
    }
}

/// One pass over the addresses given (several: the nodes of a cluster),
/// at start or in one reconnect attempt: each is tried once, in turn from
/// a random one. What happened at one address decides whether the next is
/// tried ([`Passing`]): past a connection that fails, a node that closes
/// it before the join, one that takes it but does not answer within
/// `--timeout`, and one that refuses the join (or the resume) for reasons
/// of its own, the pass goes on at once; any other failure ends it. When
/// every address failed, the pass fails with what trying only one of them
/// would have said: the last node's refusal if one refused, else the last
/// silence, else the last connection closed, else the last connection's
/// failure. (So a connection closed is the failure only when every node
/// reached closed it: then, without TLS, the caller may say that the
/// servers could take only TLS.)
#[derive(Debug)]
pub struct Pass {
    addrs: Vec<String>,
    /// The first address tried.
    start: usize,
    /// How many were taken by [`Pass::next`].
    taken: usize,
    /// Why the pass fails if no address is left, and how much that says.
    failure: Option<(Passing, JoinError)>,
}

/// What a failure at one address says, from least to most: a pass that
/// fails everywhere reports the failure that says the most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Passing {
    /// Nothing let the client in there: the name did not resolve, the
    /// connection was refused or did not complete in time.
    Unreached,
    /// The node took the connection and closed it (or it failed) before
    /// letting the client in: a node going down, a proxy in front of a
    /// dead one; or a server taking only TLS, if every node does so.
    Closed,
    /// The node took the connection and said nothing in time: the TLS
    /// handshake or the join timed out (a process stopped or held up, or
    /// a node slower to say `unavailable` than `--timeout`).
    Silent,
    /// The node refused for reasons of its own, which the next need not
    /// share: `unavailable` (cut off from its cluster's NATS) and
    /// `server_full` (its own caps on connections). Other refusals are of
    /// what was asked, and every node of a cluster gives the same: the
    /// nickname (`nick_taken`, the cluster's nicknames being one;
    /// `nick_invalid`), the join itself (`bad_frame`, which is also what a
    /// server taking only TLS says), and codes this client does not know.
    Refused,
}

impl Passing {
    /// Whether the pass goes on past `e`, and how much `e` says; `None`:
    /// the pass ends with it.
    fn of(e: &JoinError) -> Option<Passing> {
        match e {
            JoinError::Resolve { .. }
            | JoinError::Connect { .. }
            | JoinError::ConnectTimeout { .. } => Some(Passing::Unreached),
            JoinError::Closed | JoinError::Io(_) => Some(Passing::Closed),
            JoinError::Tls { source, .. } if closed(source) => Some(Passing::Closed),
            JoinError::TlsTimeout { .. } | JoinError::Timeout { .. } => Some(Passing::Silent),
            JoinError::Refused { code, .. } if *code == ErrorCode::Unavailable.as_str() => {
                Some(Passing::Refused)
            }
            JoinError::ServerFull { .. } => Some(Passing::Refused),
            _ => None,
        }
    }
}

impl Pass {
    /// A pass over `list` (`HOST:PORT`, or several comma-separated),
    /// beginning at the address `random` picks.
    pub fn new(list: &str, random: u64) -> Pass {
        let addrs: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        let start = (random % addrs.len().max(1) as u64) as usize;
        Pass {
            addrs,
            start,
            taken: 0,
            failure: None,
        }
    }

    /// The next address to try, if any is left.
    pub fn next(&mut self) -> Option<String> {
        let addr = self.at(self.taken)?.to_owned();
        self.taken += 1;
        Some(addr)
    }

    /// The `i`th address of the pass, if there are that many.
    fn at(&self, i: usize) -> Option<&str> {
        (i < self.addrs.len()).then(|| self.addrs[(self.start + i) % self.addrs.len()].as_str())
    }

    /// The address last taken by [`Pass::next`] failed with `e`. `Err`:
    /// the pass ends with it. `Ok`: go on with the next address, if one is
    /// left, saying this first when it is `Some` (why the pass went past
    /// the node, and where it goes; `None` after the last).
    pub fn failed(&mut self, e: JoinError) -> Result<Option<String>, JoinError> {
        let Some(passing) = Passing::of(&e) else {
            return Err(e);
        };
        let node = self.taken.checked_sub(1).and_then(|i| self.at(i));
        let note = match (node, self.at(self.taken)) {
            (Some(node), Some(next)) => Some(format!("{}, trying {next}", passed_by(&e, node))),
            _ => None,
        };
        if self
            .failure
            .as_ref()
            .is_none_or(|(said, _)| passing >= *said)
        {
            self.failure = Some((passing, e));
        }
        Ok(note)
    }

    /// Every address failed: why.
    pub fn failure(self) -> JoinError {
        match self.failure {
            Some((_, e)) => e,
            None => JoinError::Connect {
                addr: self.addrs.join(","),
                source: std::io::Error::other("no address given"),
            },
        }
    }
}

/// A TLS handshake that failed because the connection did: closed or
/// reset under it, not refused by TLS itself.
fn closed(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    matches!(
        e.kind(),
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
    )
}

/// What to say about `node` when the pass goes on past its failure `e`
/// (one [`Passing::of`] lets the pass go on past).
fn passed_by(e: &JoinError, node: &str) -> String {
    match e {
        JoinError::Refused { message, .. } => format!("node {node} unavailable ({message})"),
        JoinError::ServerFull { message } => format!("node {node} full ({message})"),
        JoinError::Resolve { source, .. } => {
            format!("the name of node {node} did not resolve ({source})")
        }
        JoinError::Connect { source, .. }
            if source.kind() == std::io::ErrorKind::ConnectionRefused =>
        {
            format!("node {node} refused the connection")
        }
        JoinError::Connect { source, .. } => {
            format!("the connection to node {node} failed ({source})")
        }
        JoinError::ConnectTimeout { secs, .. } => {
            format!("node {node} did not take the connection within {secs} s")
        }
        JoinError::TlsTimeout { secs, .. } => {
            format!("node {node} did not finish the TLS handshake within {secs} s")
        }
        JoinError::Timeout { secs, .. } => {
            format!("node {node} did not answer the join within {secs} s")
        }
        JoinError::Closed => format!("node {node} closed the connection before letting us in"),
        JoinError::Io(e) => format!("the connection to node {node} failed while joining ({e})"),
        JoinError::Tls { source, .. } => {
            format!("the connection to node {node} failed in the TLS handshake ({source})")
        }
        other => format!("node {node} failed ({other})"),
    }
}

/// A number from 0 to 1, different on every call and in every process.
/// Not for secrets: it only spreads reconnects out.
pub fn jitter() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// 64 random bits from std alone: every `RandomState` is seeded from the
/// OS (then incremented), and hashing nothing with it mixes the seed.
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Backoff = Backoff {
        min: Duration::from_millis(500),
        max: MAX_DELAY,
        attempts: 10,
    };

    #[test]
    fn doubles_from_half_a_second_up_to_thirty() {
        let top: Vec<u64> = (1..=9)
            .map(|n| POLICY.delay(n, 1.0).as_millis() as u64)
            .collect();
        assert_eq!(
            top,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(POLICY.delay(1_000, 1.0), MAX_DELAY);
    }

    #[test]
    fn jitter_takes_off_up_to_half_of_every_wait_the_first_too() {
        assert_eq!(POLICY.delay(1, 0.0), Duration::from_millis(250));
        assert_eq!(POLICY.delay(1, 0.5), Duration::from_millis(375));
        assert_eq!(POLICY.delay(3, 0.0), Duration::from_millis(1000));
        assert_eq!(POLICY.delay(3, 0.5), Duration::from_millis(1500));
        assert_eq!(POLICY.delay(12, 0.0), Duration::from_secs(15));
        // Out-of-range jitter is clamped.
        assert_eq!(POLICY.delay(2, -3.0), Duration::from_millis(500));
        assert_eq!(POLICY.delay(2, 7.0), Duration::from_millis(1000));
        for n in 1..40 {
            for j in [0.0, 0.3, 0.999, 1.0] {
                let d = POLICY.delay(n, j);
                assert!(d >= POLICY.min / 2 && d <= POLICY.max, "{n} {j} {d:?}");
            }
        }
    }

    /// Tries until given up, each `elapsed` taken as the waits so far.
    fn tries(planned: bool, attempts: u32, jitter: f64) -> Vec<Try> {
        let mut retries = Retries::new(Backoff { attempts, ..POLICY }, planned);
        let mut elapsed = Duration::ZERO;
        std::iter::from_fn(|| {
            let next = retries.next(elapsed, jitter)?;
            elapsed += next.delay;
            Some(next)
        })
        .take(1000)
        .collect()
    }

    #[test]
    fn after_a_planned_restart_tries_come_every_second_for_a_while() {
        // Unplanned: the doubling backoff, as always.
        let plain = tries(false, 10, 1.0);
        assert_eq!(plain.len(), 10);
        assert!(plain.iter().all(|t| !t.steady));
        assert_eq!(plain[4].delay, Duration::from_secs(8));
        // Planned: every 0.5 to 1 s, counted as attempt 1, for the window.
        let restart = tries(true, 10, 1.0);
        let steady: Vec<&Try> = restart.iter().take_while(|t| t.steady).collect();
        assert_eq!(steady.len(), 30, "{restart:?}");
        assert!(steady
            .iter()
            .all(|t| t.attempt == 1 && t.delay == RESTART_RETRY));
        assert!(tries(true, 10, 0.0)
            .iter()
            .filter(|t| t.steady)
            .all(|t| t.delay == RESTART_RETRY / 2));
        // Then attempts 2 to 10 as after any loss: the attempts run out no
        // sooner in wall time than without the restart.
        let after: Vec<(u32, Duration)> =
            restart[30..].iter().map(|t| (t.attempt, t.delay)).collect();
        let want: Vec<(u32, Duration)> = plain[1..].iter().map(|t| (t.attempt, t.delay)).collect();
        assert_eq!(after, want);
        let total = |ts: &[Try]| ts.iter().map(|t| t.delay).sum::<Duration>();
        assert!(total(&restart) > total(&plain));
        // One attempt: the window alone; none: no try at all.
        let one = tries(true, 1, 1.0);
        assert_eq!(one.len(), 30);
        assert!(one.iter().all(|t| t.steady));
        assert!(tries(true, 0, 1.0).is_empty());
    }

    fn unavailable(why: &str) -> JoinError {
        JoinError::refused(ErrorCode::Unavailable, why, "alice")
    }

    fn refused_at(addr: &str) -> JoinError {
        JoinError::Connect {
            addr: addr.into(),
            source: std::io::ErrorKind::ConnectionRefused.into(),
        }
    }

    #[test]
    fn a_pass_tries_each_address_once_from_the_one_picked() {
        let mut pass = Pass::new("a:1, b:2,,c:3", 4);
        let order: Vec<String> = std::iter::from_fn(|| pass.next()).collect();
        assert_eq!(order, ["b:2", "c:3", "a:1"]);
        let mut one = Pass::new("a:1", u64::MAX);
        assert_eq!(one.next().as_deref(), Some("a:1"));
        assert_eq!(one.next(), None);
    }

    #[test]
    fn a_node_that_answers_unavailable_gives_way_to_the_next_saying_so() {
        let mut pass = Pass::new("a:1,b:2,c:3", 0);
        assert_eq!(pass.next().as_deref(), Some("a:1"));
        let note = pass.failed(unavailable("cannot reach its cluster (no answer)"));
        assert_eq!(
            note.unwrap().as_deref(),
            Some("node a:1 unavailable (cannot reach its cluster (no answer)), trying b:2")
        );
        // A connection refused moves on too, saying so.
        assert_eq!(pass.next().as_deref(), Some("b:2"));
        let note = pass.failed(refused_at("b:2"));
        assert_eq!(
            note.unwrap().as_deref(),
            Some("node b:2 refused the connection, trying c:3")
        );
        // The last: nothing to try next, nothing to say but the failure.
        assert_eq!(pass.next().as_deref(), Some("c:3"));
        assert!(matches!(pass.failed(unavailable("the last")), Ok(None)));
        assert_eq!(pass.next(), None);
        assert_eq!(
            pass.failure().to_string(),
            "cannot join: unavailable: the last"
        );
    }

    #[test]
    fn every_address_failing_ends_with_a_nodes_answer_over_a_failed_connection() {
        // What one unavailable node among dead ones makes the client say
        // (exit code 6), wherever the pass began: as when it tried that
        // node alone.
        for start in 0..3 {
            let mut pass = Pass::new("a:1,b:2,c:3", start);
            while let Some(addr) = pass.next() {
                let e = match addr.as_str() {
                    "b:2" => unavailable("cut off"),
                    _ => refused_at(&addr),
                };
                assert!(pass.failed(e).is_ok());
            }
            let e = pass.failure();
            assert_eq!(e.to_string(), "cannot join: unavailable: cut off");
            assert_eq!(e.exit_code(), crate::error::code::JOIN);
        }
        // Connections alone: the last one's failure (exit code 3).
        let mut pass = Pass::new("a:1,b:2", 1);
        while let Some(addr) = pass.next() {
            assert!(pass.failed(refused_at(&addr)).is_ok());
        }
        let e = pass.failure();
        assert!(e.to_string().starts_with("cannot connect to a:1: "), "{e}");
        assert_eq!(e.exit_code(), crate::error::code::CONNECT);
    }

    #[test]
    fn a_connection_that_fails_gives_way_to_the_next_saying_so() {
        let mut pass = Pass::new("a:1,b:2,c:3,d:4", 0);
        pass.next();
        let note = pass.failed(refused_at("a:1"));
        assert_eq!(
            note.unwrap().as_deref(),
            Some("node a:1 refused the connection, trying b:2")
        );
        pass.next();
        let unreachable = || std::io::Error::from(std::io::ErrorKind::NetworkUnreachable);
        let note = pass.failed(JoinError::Connect {
            addr: "b:2".into(),
            source: unreachable(),
        });
        assert_eq!(
            note.unwrap().as_deref(),
            Some(&*format!(
                "the connection to node b:2 failed ({}), trying c:3",
                unreachable()
            ))
        );
        pass.next();
        let note = pass.failed(JoinError::Resolve {
            addr: "c:3".into(),
            source: std::io::Error::other("no such host"),
        });
        assert_eq!(
            note.unwrap().as_deref(),
            Some("the name of node c:3 did not resolve (no such host), trying d:4")
        );
        // The last: nothing said, the failure is the pass's.
        pass.next();
        assert!(matches!(pass.failed(refused_at("d:4")), Ok(None)));
        let e = pass.failure();
        assert!(e.to_string().starts_with("cannot connect to d:4: "), "{e}");
    }

    fn silent(addr: &str) -> JoinError {
        JoinError::Timeout {
            addr: addr.into(),
            secs: 2.5,
            answered_before: false,
        }
    }

    #[test]
    fn a_node_that_says_nothing_in_time_gives_way_to_the_next_saying_so() {
        let mut pass = Pass::new("a:1,b:2,c:3,d:4", 0);
        pass.next();
        let note = pass.failed(silent("a:1"));
        assert_eq!(
            note.unwrap().as_deref(),
            Some("node a:1 did not answer the join within 2.5 s, trying b:2")
        );
        pass.next();
        let note = pass.failed(JoinError::TlsTimeout {
            addr: "b:2".into(),
            secs: 4.0,
        });
        assert_eq!(
            note.unwrap().as_deref(),
            Some("node b:2 did not finish the TLS handshake within 4 s, trying c:3")
        );
        pass.next();
        let note = pass.failed(JoinError::ConnectTimeout {
            addr: "c:3".into(),
            secs: 4.0,
        });
        assert_eq!(
            note.unwrap().as_deref(),
            Some("node c:3 did not take the connection within 4 s, trying d:4")
        );
        // Nothing after the last, and the pass fails with the last silence
        // (exit code 6), over the connection that timed out after it.
        pass.next();
        assert!(matches!(pass.failed(refused_at("d:4")), Ok(None)));
        assert_eq!(pass.next(), None);
        let e = pass.failure();
        assert!(
            e.to_string()
                .starts_with("connected to b:2 but the TLS handshake did not finish within 4 s"),
            "{e}"
        );
        assert_eq!(e.exit_code(), crate::error::code::JOIN);
    }

    #[test]
    fn every_address_failing_ends_with_what_says_the_most() {
        // A refusal over a silence over a connection that failed, wherever
        // they come in the pass; the later of two alike.
        for start in 0..3 {
            let mut pass = Pass::new("a:1,b:2,c:3", start);
            while let Some(addr) = pass.next() {
                let e = match addr.as_str() {
                    "a:1" => silent(&addr),
                    "b:2" => unavailable("cut off"),
                    _ => refused_at(&addr),
                };
                assert!(pass.failed(e).is_ok());
            }
            assert_eq!(
                pass.failure().to_string(),
                "cannot join: unavailable: cut off"
            );
            let mut pass = Pass::new("a:1,b:2,c:3", start);
            while let Some(addr) = pass.next() {
                let e = match addr.as_str() {
                    "b:2" => refused_at(&addr),
                    _ => silent(&addr),
                };
                assert!(pass.failed(e).is_ok());
            }
            let said = pass.failure().to_string();
            let last = ["c:3", "a:1", "a:1"][start as usize];
            assert!(
                said.starts_with(&format!("connected to {last} but it did not answer")),
                "{start}: {said}"
            );
        }
    }

    #[test]
    fn a_full_node_gives_way_to_the_next_saying_so() {
        let full = |why| JoinError::refused(ErrorCode::ServerFull, why, "alice");
        let mut pass = Pass::new("a:1,b:2,c:3", 0);
        pass.next();
        let note = pass.failed(full("the server has no room for another client"));
        assert_eq!(
            note.unwrap().as_deref(),
            Some("node a:1 full (the server has no room for another client), trying b:2")
        );
        // Every address refusing: the last refusal (exit code 5 here).
        pass.next();
        assert!(pass.failed(unavailable("cut off")).is_ok());
        pass.next();
        assert!(matches!(pass.failed(full("too many")), Ok(None)));
        let e = pass.failure();
        assert_eq!(e.to_string(), "cannot join: server_full: too many");
        assert_eq!(e.exit_code(), crate::error::code::FULL);
    }

    #[test]
    fn a_node_that_closes_the_connection_gives_way_to_the_next_saying_so() {
        let mut pass = Pass::new("a:1,b:2,c:3,d:4", 0);
        pass.next();
        let note = pass.failed(JoinError::Closed);
        assert_eq!(
            note.unwrap().as_deref(),
            Some("node a:1 closed the connection before letting us in, trying b:2")
        );
        pass.next();
        let reset = || std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let note = pass.failed(JoinError::Tls {
            addr: "b:2".into(),
            source: reset(),
        });
        assert_eq!(
            note.unwrap().as_deref(),
            Some(&*format!(
                "the connection to node b:2 failed in the TLS handshake ({}), trying c:3",
                reset()
            ))
        );
        pass.next();
        let note = pass.failed(JoinError::Io(reset()));
        assert_eq!(
            note.unwrap().as_deref(),
            Some(&*format!(
                "the connection to node c:3 failed while joining ({}), trying d:4",
                reset()
            ))
        );
        // Closed over a connection that failed; the last of them.
        pass.next();
        assert!(matches!(pass.failed(refused_at("d:4")), Ok(None)));
        assert!(matches!(pass.failure(), JoinError::Io(_)));
        // Anything a node said, or its silence, over a connection closed:
        // a server that speaks the protocol, not one taking only TLS.
        for other in [silent("b:2"), unavailable("cut off")] {
            let said = other.to_string();
            let mut pass = Pass::new("a:1,b:2,c:3", 0);
            for e in [JoinError::Closed, other, JoinError::Closed] {
                pass.next();
                assert!(pass.failed(e).is_ok());
            }
            assert_eq!(pass.failure().to_string(), said);
        }
    }

    #[test]
    fn any_other_failure_ends_the_pass_at_once() {
        for e in [
            JoinError::refused(ErrorCode::NickTaken, "in use", "alice"),
            JoinError::refused(ErrorCode::NickInvalid, "bad", "alice"),
            JoinError::refused(ErrorCode::Timeout, "you did not join in time", "alice"),
            JoinError::refused(ErrorCode::FrameTooLarge, "too large", "alice"),
            JoinError::refused(ErrorCode::Unknown, "a later code", "alice"),
            JoinError::refused(ErrorCode::BadFrame, "what", "alice"),
            JoinError::Protocol("not JSON".into()),
            JoinError::Tls {
                addr: "a:1".into(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "corrupt message"),
            },
            JoinError::Untrusted {
                addr: "a:1".into(),
                why: "expired".into(),
            },
        ] {
            let said = e.to_string();
            let mut pass = Pass::new("a:1,b:2", 0);
            pass.next();
            let Err(e) = pass.failed(e) else {
                panic!("{said}: went on");
            };
            assert_eq!(e.to_string(), said);
        }
    }

    #[test]
    fn jitter_is_in_range_and_varies() {
        let draws: Vec<f64> = (0..64).map(|_| jitter()).collect();
        assert!(draws.iter().all(|j| (0.0..1.0).contains(j)));
        let first = draws[0];
        assert!(draws.iter().any(|&j| j != first));
    }
}
