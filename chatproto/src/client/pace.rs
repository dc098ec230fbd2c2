//! Pacing: the client sends no faster than the server said it reads
//! (`welcome`'s `rate` and `burst`), so a long paste is sent at that rate
//! instead of being read slower and, held back too long, closed with
//! `rate_limited`.

/// A token bucket a little inside the server's: nine tenths of its rate
/// and half its burst. The server counts every frame, pings and pongs too,
/// which are never held back here: they are small and rare, and the
/// tenth left over covers them and the two clocks' drift.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    /// Millionths of a frame gained per millisecond (a thousandth of the
    /// rate in millionths a second: fine enough that nine tenths of a
    /// rate of 1 or 2 is not rounded to all or half of it).
    per_ms: u64,
    /// The most millionths of a frame it holds.
    cap: u64,
    /// Millionths of a frame it holds at `at`.
    held: u64,
    at: u64,
}

/// One frame, in the bucket's unit.
const FRAME: u64 = 1_000_000;

impl Pacer {
    /// A full bucket under the server's `rate` and `burst`, at `now`.
    pub(crate) fn new(rate: u64, burst: u64, now: u64) -> Pacer {
        let per_ms = rate.saturating_mul(900).max(1);
        let cap = (burst / 2).max(1).saturating_mul(FRAME);
        Pacer {
            per_ms,
            cap,
            held: cap,
            at: now,
        }
    }

    fn fill(&mut self, now: u64) {
        if now > self.at {
            let gained = (now - self.at).saturating_mul(self.per_ms);
            self.held = self.held.saturating_add(gained).min(self.cap);
            self.at = now;
        }
    }

    /// Take one frame's worth at `now`, if there is one.
    pub(crate) fn take(&mut self, now: u64) -> bool {
        self.fill(now);
        if self.held >= FRAME {
            self.held -= FRAME;
            true
        } else {
            false
        }
    }

    /// When the next frame's worth will be there.
    pub(crate) fn next_at(&self) -> u64 {
        let short = FRAME.saturating_sub(self.held);
        self.at.saturating_add(short.div_ceil(self.per_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::Pacer;

    #[test]
    fn a_burst_then_the_rate_inside_the_servers() {
        // The server: 50 a second after 100 at once.
        let mut p = Pacer::new(50, 100, 1_000);
        let burst = (0..100).take_while(|_| p.take(1_000)).count();
        assert_eq!(burst, 50, "half the burst");
        // Then 45 a second: one every 22.2 ms.
        assert_eq!(p.next_at(), 1_023);
        assert!(!p.take(1_022));
        assert!(p.take(1_023));
        let in_a_second = (0..1_000u64).filter(|ms| p.take(1_023 + ms + 1)).count();
        assert!((44..=45).contains(&in_a_second), "{in_a_second}");
    }

    #[test]
    fn nine_tenths_of_a_slow_rate_too() {
        // 1 a second: one every 1.111 s, not every second.
        let mut p = Pacer::new(1, 2, 0);
        assert!(p.take(0));
        assert_eq!(p.next_at(), 1_112);
        // 2 a second: 1.8, not 1.
        let mut p = Pacer::new(2, 2, 0);
        assert!(p.take(0));
        assert_eq!(p.next_at(), 556);
    }

    #[test]
    fn a_clock_that_goes_back_or_a_long_silence_changes_nothing_wrong() {
        let mut p = Pacer::new(10, 4, 5_000);
        assert!(p.take(5_000) && p.take(5_000));
        assert!(!p.take(4_000), "an earlier now gains nothing");
        // A day later the bucket is full, not past it.
        let later = 5_000 + 86_400_000;
        assert_eq!((0..10).take_while(|_| p.take(later)).count(), 2);
        let mut tiny = Pacer::new(1, 1, u64::MAX - 5);
        assert!(tiny.take(u64::MAX - 5));
        assert_eq!(tiny.next_at(), u64::MAX, "saturates");
    }
}
