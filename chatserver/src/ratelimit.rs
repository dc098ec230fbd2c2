//! The per-connection rate limit: governor's GCRA (the token bucket's
//! exact equivalent, one atomic word of state), asked with the time passed
//! in so that it can be tested without a clock. Two buckets: one token per
//! frame, and one per payload byte (the byte allowance), so that neither
//! many small frames nor a few of the largest may flood a room. A frame
//! over either limit is not refused: the connection stops reading until
//! `take` says, and TCP slows the sender.
//!
//! Beside them, the read allowance ([`ReadAllowance`]): what the server
//! sends in answer to reads (replays, `history` pages, member lists) is
//! charged to it when sent, below zero if need be, and the next frame that
//! asks to read waits until time has paid that debt.

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

/// `rate` frames a second on average, `burst` at once; each frame takes
/// one. With [`with_bytes`](TokenBucket::with_bytes), also `rate_bytes`
/// payload bytes a second after `burst_bytes`.
#[derive(Debug)]
pub struct TokenBucket {
    frames: Option<Limiter>,
    /// The byte allowance, with its burst.
    bytes: Option<(Limiter, NonZeroU32)>,
    /// The frame waiting has taken its frame token already and waits only
    /// for bytes: asked again, it must not pay twice.
    frame_paid: bool,
    start: Instant,
}

/// A full bucket of `burst` tokens gaining `rate` a second; `None` for a
/// `rate` of 0 (no limit).
fn limiter(rate: u32, burst: u32) -> Option<Limiter> {
    NonZeroU32::new(rate).map(|rate| {
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(rate).allow_burst(burst);
        RateLimiter::direct_with_clock(quota, Passed::default())
    })
}

/// Set `limiter`'s clock to `at` (nanoseconds since the bucket was made).
fn set_clock(limiter: &Limiter, at: u64) {
    limiter.clock().0.store(at, Relaxed);
}

impl TokenBucket {
    /// A full bucket at `now`. A `rate` of 0 means no limit.
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        TokenBucket {
            frames: limiter(rate, burst),
            bytes: None,
            frame_paid: false,
            start: now,
        }
    }

    /// The same bucket with a byte allowance: `rate_bytes` payload bytes a
    /// second after `burst_bytes` (0: no allowance). A frame larger than
    /// `burst_bytes` waits for a full bucket and takes it all.
    #[must_use]
    pub fn with_bytes(mut self, rate_bytes: u32, burst_bytes: u32) -> Self {
        let burst = NonZeroU32::new(burst_bytes).unwrap_or(NonZeroU32::MIN);
        self.bytes = limiter(rate_bytes, burst_bytes).map(|l| (l, burst));
        self
    }

    /// Take a token, and `bytes` tokens of the byte allowance, at `now`, or
    /// say how long until they are available.
    pub fn take(&mut self, now: Instant, bytes: usize) -> Result<(), Duration> {
        if self.frames.is_none() && self.bytes.is_none() {
            return Ok(());
        }
        let since = now.saturating_duration_since(self.start);
        let at = since.as_nanos().min(u128::from(u64::MAX)) as u64;
        let wait = |not_until: governor::NotUntil<Nanos>| not_until.wait_time_from(Nanos::from(at));
        if let (Some(frames), false) = (&self.frames, self.frame_paid) {
            set_clock(frames, at);
            frames.check().map_err(wait)?;
            self.frame_paid = true;
        }
        if let Some((limit, burst)) = &self.bytes {
            set_clock(limit, at);
            let n = u32::try_from(bytes).map_or(*burst, |n| {
                NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN).min(*burst)
            });
            // `n` is at most the burst, so the outer error never comes.
            if let Ok(Err(not_until)) = limit.check_n(n) {
                return Err(wait(not_until));
            }
        }
        self.frame_paid = false;
        Ok(())
    }
}

/// What each stored event a read from the history database looked at
/// costs the asker's read allowance, in bytes, at the least: about what
/// an event takes stored (a row holds up to 64 in 4,000 bytes), and what
/// reading one costs the server beside sending as many. A read is
/// charged the larger of what it sends and this for each event it looked
/// at ([`Peer::charge_looked_at`](crate::peer::Peer::charge_looked_at)).
pub const LOOKED_AT_EVENT_BYTES: u64 = 64;

/// How many bytes a connection may be sent in answer to its reads:
/// `rate` a second on average after `burst`. The hub charges each answer
/// when it sends it ([`charge`](ReadAllowance::charge)), however much it
/// is, so the allowance may go below zero: a debt, paid by time only. The
/// connection reads no frame that asks to read while there is one
/// ([`wait`](ReadAllowance::wait)), counting `reserve` bytes for each read
/// it passed whose answer is not charged yet: reads sent all at once
/// cannot all pass before the first answer is charged.
///
/// Kept as the time the allowance is whole again (as governor keeps its
/// bucket), in nanoseconds since `start`, in one atomic word: the hub
/// charges it and the connection's task looks at it, each with the time
/// passed in.
#[derive(Debug)]
pub struct ReadAllowance {
    /// Bytes a second (at least 1).
    rate: u64,
    /// The time `burst` bytes take to come back at `rate`, in nanoseconds.
    burst_nanos: u64,
    /// What a read not yet answered is taken to cost.
    reserve: u64,
    start: Instant,
    /// When the allowance is whole again, in nanoseconds since `start`
    /// (at or before the time asked: it is whole).
    whole_at: AtomicU64,
}

impl ReadAllowance {
    /// A whole allowance at `now` of `burst` bytes gaining `rate` a second,
    /// a read not yet answered taken to cost `reserve`; `None` for a
    /// `rate` of 0 (no allowance).
    pub fn new(rate: u32, burst: u64, reserve: u64, now: Instant) -> Option<Self> {
        let rate = u64::from(NonZeroU32::new(rate)?.get());
        let burst_nanos = nanos_for(burst, rate);
        Some(ReadAllowance {
            rate,
            burst_nanos,
            reserve,
            start: now,
            whole_at: AtomicU64::new(0),
        })
    }

    /// Charge `bytes` sent at `now`: the allowance goes down by as much,
    /// below zero if it must.
    pub fn charge(&self, bytes: usize, now: Instant) {
        let at = self.since_start(now);
        let cost = nanos_for(bytes as u64, self.rate);
        let _ = self.whole_at.fetch_update(Relaxed, Relaxed, |whole| {
            Some(whole.max(at).saturating_add(cost))
        });
    }

    /// `None` when the allowance, less the reserve for each of `unanswered`
    /// reads, is at zero or more at `now`; else how long until time has
    /// paid what is missing (sooner if one of them is answered for less).
    pub fn wait(&self, now: Instant, unanswered: usize) -> Option<Duration> {
        let at = self.since_start(now);
        let reserved = nanos_for(self.reserve.saturating_mul(unanswered as u64), self.rate);
        // At zero when it is `burst` short of whole.
        let paid_at = self
            .whole_at
            .load(Relaxed)
            .saturating_add(reserved)
            .saturating_sub(self.burst_nanos);
        (paid_at > at).then(|| Duration::from_nanos(paid_at - at))
    }

    fn since_start(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.start);
        since.as_nanos().min(u128::from(u64::MAX)) as u64
    }
}

/// The nanoseconds `bytes` take at `rate` bytes a second (rounded up).
fn nanos_for(bytes: u64, rate: u64) -> u64 {
    let nanos = (u128::from(bytes) * 1_000_000_000).div_ceil(u128::from(rate));
    nanos.min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_charged_below_zero_and_time_alone_pays() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        // 1,000 bytes a second after 3,000.
        let a = ReadAllowance::new(1_000, 3_000, 500, t0).expect("a rate");
        assert_eq!(a.wait_now(t0), None, "whole");
        a.charge(2_000, t0);
        assert_eq!(a.wait_now(t0), None, "1,000 left");
        // An answer larger than what is left is sent whole: a debt.
        a.charge(4_000, t0);
        assert_eq!(a.wait_now(t0), Some(Duration::from_secs(3)));
        assert_eq!(a.wait_now(ms(2_500)), Some(Duration::from_millis(500)));
        assert_eq!(a.wait_now(ms(3_000)), None, "paid");
        // Nothing is forgiven, however long the wait: charged 10,000 at
        // 3 s (with nothing left), the next read waits 10 s.
        a.charge(10_000, ms(3_000));
        assert_eq!(a.wait_now(ms(3_000)), Some(Duration::from_secs(10)));
        // A long pause makes it whole again, and no more than whole.
        let later = ms(60_000);
        a.charge(3_000, later);
        assert_eq!(a.wait_now(later), None, "whole, then spent to zero");
        a.charge(1, later);
        assert!(a.wait_now(later).is_some());
    }

    impl ReadAllowance {
        /// [`wait`](ReadAllowance::wait) with no read unanswered.
        fn wait_now(&self, now: Instant) -> Option<Duration> {
            self.wait(now, 0)
        }
    }

    #[test]
    fn reads_not_yet_answered_are_reserved_for() {
        let t0 = Instant::now();
        // 1,000 bytes a second after 3,000; 1,000 reserved a read.
        let a = ReadAllowance::new(1_000, 3_000, 1_000, t0).expect("a rate");
        assert_eq!(a.wait(t0, 3), None, "three fit");
        assert_eq!(a.wait(t0, 4), Some(Duration::from_secs(1)));
        // The first answered, for more than its reserve.
        a.charge(2_500, t0);
        assert_eq!(a.wait(t0, 0), None);
        assert_eq!(a.wait(t0, 1), Some(Duration::from_millis(500)));
    }

    #[test]
    fn no_read_rate_means_no_read_allowance() {
        assert!(ReadAllowance::new(0, 1 << 20, 1 << 10, Instant::now()).is_none());
    }

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 3, t0);
        for _ in 0..3 {
            assert_eq!(b.take(t0, 1), Ok(()));
        }
        let wait = b.take(t0, 1).unwrap_err();
        assert!(wait > Duration::from_millis(99) && wait <= Duration::from_millis(100));
        assert!(b.take(t0 + Duration::from_millis(50), 1).is_err());
        assert_eq!(b.take(t0 + Duration::from_millis(100), 1), Ok(()));
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(b.take(later, 1), Ok(()));
        }
        assert!(b.take(later, 1).is_err());
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0, 1, t0);
        for _ in 0..10_000 {
            assert_eq!(b.take(t0, 1), Ok(()));
        }
    }

    #[test]
    fn bytes_then_their_rate() {
        let t0 = Instant::now();
        // Frames are plenty; 1,000 bytes a second after 3,000.
        let mut b = TokenBucket::new(1_000, 1_000, t0).with_bytes(1_000, 3_000);
        assert_eq!(b.take(t0, 2_000), Ok(()));
        assert_eq!(b.take(t0, 1_000), Ok(()));
        let wait = b.take(t0, 500).unwrap_err();
        assert!(
            wait > Duration::from_millis(499) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        assert_eq!(b.take(t0 + Duration::from_millis(500), 500), Ok(()));
        // Larger than the burst: waits for a full bucket, then goes.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(b.take(later, 1 << 20), Ok(()));
        assert!(b.take(later, 1).is_err());
    }

    #[test]
    fn a_frame_waiting_for_bytes_pays_its_frame_token_once() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        // 1 frame a second after 2; 1,000 bytes a second after 100.
        let mut b = TokenBucket::new(1, 2, t0).with_bytes(1_000, 100);
        assert_eq!(b.take(t0, 100), Ok(()));
        // The second frame takes the last frame token, then waits for
        // bytes, asked every 10 ms.
        for n in 1..5 {
            assert!(b.take(ms(n * 10), 50).is_err());
        }
        // Had each ask taken a frame token, the next would be a second
        // away; the bytes are there at 50 ms.
        assert_eq!(b.take(ms(50), 50), Ok(()));
        assert!(b.take(ms(100), 50).is_err(), "no frame token is left");
    }
}
