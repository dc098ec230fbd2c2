//! The per-connection rate limit: governor's GCRA (the token bucket's
//! exact equivalent, one atomic word of state), asked with the time passed
//! in so that it can be tested without a clock. A frame over the limit is
//! not refused: the connection stops reading until `take` says, and TCP
//! slows the sender.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// The clock governor reads: the time the caller passed to
/// [`TokenBucket::take`], as nanoseconds since the bucket was made.
#[derive(Debug, Default)]
struct Passed(AtomicU64);

impl Clone for Passed {
    fn clone(&self) -> Self {
        Passed(AtomicU64::new(self.0.load(Relaxed)))
    }
}

impl Clock for Passed {
    type Instant = Nanos;
    fn now(&self) -> Nanos {
        Nanos::from(self.0.load(Relaxed))
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, Passed, NoOpMiddleware<Nanos>>;

/// `rate` frames a second on average, `burst` at once; each frame takes one.
#[derive(Debug)]
pub struct TokenBucket {
    limiter: Option<Limiter>,
    start: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`. A `rate` of 0 means no limit.
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        let limiter = NonZeroU32::new(rate).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            let quota = Quota::per_second(rate).allow_burst(burst);
            RateLimiter::direct_with_clock(quota, Passed::default())
        });
        TokenBucket {
            limiter,
            start: now,
        }
    }

    /// Take a token at `now`, or say how long until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        let since = now.saturating_duration_since(self.start);
        let at = since.as_nanos().min(u128::from(u64::MAX)) as u64;
        limiter.clock().0.store(at, Relaxed);
        limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(Nanos::from(at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 3, t0);
        for _ in 0..3 {
            assert_eq!(b.take(t0), Ok(()));
        }
        let wait = b.take(t0).unwrap_err();
        assert!(wait > Duration::from_millis(99) && wait <= Duration::from_millis(100));
        assert!(b.take(t0 + Duration::from_millis(50)).is_err());
        assert_eq!(b.take(t0 + Duration::from_millis(100)), Ok(()));
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(b.take(later), Ok(()));
        }
        assert!(b.take(later).is_err());
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0, 1, t0);
        for _ in 0..10_000 {
            assert_eq!(b.take(t0), Ok(()));
        }
    }
}
