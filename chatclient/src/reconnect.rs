//! When to try again after the connection is lost: exponential backoff
//! with jitter, and how many tries. No clock and no I/O; the randomness
//! comes in as an argument so that tests can pin it.

use std::time::Duration;

/// The longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

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

    #[test]
    fn jitter_is_in_range_and_varies() {
        let draws: Vec<f64> = (0..64).map(|_| jitter()).collect();
        assert!(draws.iter().all(|j| (0.0..1.0).contains(j)));
        let first = draws[0];
        assert!(draws.iter().any(|&j| j != first));
    }
}
