//! Pacing: the client sends no faster than the server said it reads
//! (`welcome`'s `rate` and `burst`, and its byte allowance `rate_bytes`
//! and `burst_bytes`), so a long paste is sent at that rate instead of
//! being read slower and, held back too long, closed with `rate_limited`.

use crate::frame::ClientFrame;

/// A token bucket a little inside the server's: nine tenths of its rate
/// and half its burst. The server counts every frame, pings and pongs too,
/// which are never held back here: they are small and rare, and the
/// tenth left over covers them and the two clocks' drift.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    /// Millionths of a unit (a frame, or a byte) gained per millisecond (a
    /// thousandth of the rate in millionths a second: fine enough that
    /// nine tenths of a rate of 1 or 2 is not rounded to all or half of
    /// it).
    per_ms: u64,
    /// The most millionths of a unit it holds.
    cap: u64,
    /// Millionths of a unit it holds at `at`.
    held: u64,
    /// Millionths owed by something larger than the bucket that went
    /// anyway: paid from what is gained before anything is held again.
    owed: u64,
    at: u64,
}

/// One unit, in the bucket's millionths.
const UNIT: u64 = 1_000_000;

impl Pacer {
    /// A full bucket under the server's `rate` and `burst` (units a second,
    /// units at once), at `now`.
    pub(crate) fn new(rate: u64, burst: u64, now: u64) -> Pacer {
        let per_ms = rate.saturating_mul(900).max(1);
        let cap = (burst / 2).max(1).saturating_mul(UNIT);
        Pacer {
            per_ms,
            cap,
            held: cap,
            owed: 0,
            at: now,
        }
    }

    fn fill(&mut self, now: u64) {
        if now > self.at {
            let mut gained = (now - self.at).saturating_mul(self.per_ms);
            let paid = gained.min(self.owed);
            self.owed -= paid;
            gained -= paid;
            self.held = self.held.saturating_add(gained).min(self.cap);
            self.at = now;
        }
    }

    /// What the bucket must hold for `n` units to go: all of them, or a
    /// full bucket for more than it holds (something larger than half
    /// the server's burst, such as a frame near the largest under a byte
    /// allowance, goes once the bucket is full instead of never, and the
    /// rest is owed).
    fn needed(&self, n: u64) -> u64 {
        n.saturating_mul(UNIT).min(self.cap)
    }

    /// Whether `n` units may go at `now`.
    pub(crate) fn can(&mut self, now: u64, n: u64) -> bool {
        self.fill(now);
        self.owed == 0 && self.held >= self.needed(n)
    }

    /// Take `n` units (after [`can`](Pacer::can) said yes): all of them,
    /// what the bucket does not hold owed.
    pub(crate) fn spend(&mut self, n: u64) {
        let cost = n.saturating_mul(UNIT);
        let from_held = cost.min(self.held);
        self.held -= from_held;
        self.owed = self.owed.saturating_add(cost - from_held);
    }

    /// Take one unit at `now`, if there is one.
    #[cfg(test)]
    pub(crate) fn take(&mut self, now: u64) -> bool {
        let ok = self.can(now, 1);
        if ok {
            self.spend(1);
        }
        ok
    }

    /// When `n` units may go.
    pub(crate) fn next_at(&self, n: u64) -> u64 {
        let short = self
            .owed
            .saturating_add(self.needed(n))
            .saturating_sub(self.held);
        self.at.saturating_add(short.div_ceil(self.per_ms))
    }
}

/// The server's two limits, as far as it said them: frames, and payload
/// bytes. A frame goes when both have room for it.
#[derive(Debug, Clone)]
pub(crate) struct Pace {
    frames: Option<Pacer>,
    bytes: Option<Pacer>,
    /// The server's frame limit: what a `rooms` request costs the bytes.
    max_frame_bytes: u64,
}

impl Pace {
    /// Pacing under what `welcome` said (`None` when it said no limit).
    pub(crate) fn new(limits: &crate::Limits, now: u64) -> Option<Pace> {
        // A rate of 0 (said by no server of ours) is no limit.
        let pacer = |rate: Option<u64>, burst: Option<u64>| {
            Some(Pacer::new(rate.filter(|r| *r > 0)?, burst?, now))
        };
        let frames = pacer(limits.rate, limits.burst);
        let bytes = pacer(limits.rate_bytes, limits.burst_bytes);
        (frames.is_some() || bytes.is_some()).then_some(Pace {
            frames,
            bytes,
            max_frame_bytes: limits.max_frame_bytes,
        })
    }

    /// What `frame` costs the byte allowance: its payload's length as
    /// `encode` writes it (0 when there is no allowance, so nothing is
    /// encoded for it); a `rooms` request, the largest frame, as the
    /// server counts it (PROTOCOL.md §7).
    pub(crate) fn cost(&self, frame: &ClientFrame) -> u64 {
        if self.bytes.is_none() {
            return 0;
        }
        if matches!(frame, ClientFrame::Rooms) {
            return self.max_frame_bytes;
        }
        // A frame that cannot be written is refused by `encode` whatever
        // it costs here.
        crate::codec::json_len(frame).map_or(0, |n| n as u64)
    }

    /// Whether a frame of `cost` bytes may go at `now`; if so, its share
    /// is taken from both buckets.
    pub(crate) fn take(&mut self, now: u64, cost: u64) -> bool {
        let frame_ok = self.frames.as_mut().is_none_or(|p| p.can(now, 1));
        let bytes_ok = self.bytes.as_mut().is_none_or(|p| p.can(now, cost));
        if !(frame_ok && bytes_ok) {
            return false;
        }
        if let Some(p) = &mut self.frames {
            p.spend(1);
        }
        if let Some(p) = &mut self.bytes {
            p.spend(cost);
        }
        true
    }

    /// When a frame of `cost` bytes may go.
    pub(crate) fn next_at(&self, cost: u64) -> u64 {
        let frames = self.frames.as_ref().map_or(0, |p| p.next_at(1));
        let bytes = self.bytes.as_ref().map_or(0, |p| p.next_at(cost));
        frames.max(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::{Pace, Pacer};
    use crate::Limits;

    #[test]
    fn a_burst_then_the_rate_inside_the_servers() {
        // The server: 50 a second after 100 at once.
        let mut p = Pacer::new(50, 100, 1_000);
        let burst = (0..100).take_while(|_| p.take(1_000)).count();
        assert_eq!(burst, 50, "half the burst");
        // Then 45 a second: one every 22.2 ms.
        assert_eq!(p.next_at(1), 1_023);
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
        assert_eq!(p.next_at(1), 1_112);
        // 2 a second: 1.8, not 1.
        let mut p = Pacer::new(2, 2, 0);
        assert!(p.take(0));
        assert_eq!(p.next_at(1), 556);
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
        assert_eq!(tiny.next_at(1), u64::MAX, "saturates");
    }

    #[test]
    fn a_byte_allowance_paces_large_frames() {
        // 1,000 bytes a second after 4,000: half of that at once, at 900 a second.
        let limits = Limits::new(1_024, 4, 50, 200).with_byte_rate(1_000, 4_000);
        let mut p = Pace::new(&limits, 0).expect("a byte allowance paces");
        assert!(p.take(0, 600) && p.take(0, 600) && p.take(0, 600));
        assert!(!p.take(0, 600), "2,000 bytes at once, not 2,400");
        // 200 left: 400 more at 0.9 a millisecond.
        assert_eq!(p.next_at(600), 445);
        assert!(!p.take(444, 600));
        assert!(p.take(445, 600));
        // No frame limit was said: small frames go as the bytes allow.
        let mut q = Pace::new(&limits, 0).expect("paces");
        assert_eq!((0..5_000).take_while(|_| q.take(0, 2)).count(), 1_000);
    }

    #[test]
    fn a_frame_larger_than_the_bucket_goes_when_it_is_full_and_owes_the_rest() {
        // 1,000 bytes a second after 4,000: 2,000 at once, 900 a second.
        let limits = Limits::new(1_024, 4, 50, 200).with_byte_rate(1_000, 4_000);
        let mut p = Pace::new(&limits, 0).expect("paces");
        assert!(p.take(0, 3_000), "a full bucket lets it go");
        // It owes 1,000, then needs a full bucket again: 3,000 / 0.9 ms.
        assert_eq!(p.next_at(3_000), 3_334);
        assert!(!p.take(2_223, 3_000), "full, but the debt is not paid");
        assert!(!p.take(3_333, 3_000));
        assert!(p.take(3_334, 3_000));
        // Back to back, such frames go at the server's pace, not faster:
        // 3,000 bytes every 3,334 ms is 0.9 of its 1,000 a second.
        let mut sent = 1;
        let mut now = 3_334;
        while now < 3_334 + 33_340 {
            now += 1;
            if p.take(now, 3_000) {
                sent += 1;
            }
        }
        assert_eq!(sent, 11, "ten more in ten periods");
        // A small frame waits for the debt too.
        let mut q = Pace::new(&limits, 0).expect("paces");
        assert!(q.take(0, 3_000));
        // Owed 1,000 and needing 1: 1,001 bytes at 0.9 a millisecond.
        assert_eq!(q.next_at(1), 1_113);
        assert!(!q.take(1_112, 1));
        assert!(q.take(1_113, 1));
    }

    #[test]
    fn a_frame_goes_only_when_both_limits_have_room() {
        // 10 frames a second after 4, and 1,000 bytes a second after 4,000.
        let limits = Limits::new(1_024, 4, 50, 200)
            .with_rate(10, 4)
            .with_byte_rate(1_000, 4_000);
        let mut p = Pace::new(&limits, 0).expect("paces");
        assert!(p.take(0, 10) && p.take(0, 10), "half the frame burst");
        assert!(!p.take(0, 10), "the frames are out, though bytes are not");
        let frames_at = p.next_at(10);
        assert_eq!(frames_at, 112);
        // The bytes are now the tighter: a refused take spent nothing.
        assert!(p.take(frames_at, 1_900));
        assert!(!p.take(frames_at + 200, 1_000));
        assert!(p.next_at(1_000) > frames_at + 200);
        // No limit said: no pacing.
        assert!(Pace::new(&Limits::new(1_024, 4, 50, 200), 0).is_none());
        assert!(Pace::new(&Limits::new(1_024, 4, 50, 200).with_byte_rate(0, 9), 0).is_none());
    }

    #[test]
    fn a_frames_cost_is_its_encoded_length() {
        let limits = Limits::new(1_024, 4, 50, 200).with_byte_rate(1_000, 4_000);
        let p = Pace::new(&limits, 0).expect("paces");
        let frame = crate::ClientFrame::msg_in(
            "dev",
            vec!["bob".into()],
            "h\u{e9} \"x\"",
            Some("7".into()),
        );
        let encoded = crate::encode(&frame, 1_024).expect("fits");
        assert_eq!(p.cost(&frame), encoded.len() as u64 - 4);
        // Without a byte allowance nothing is encoded.
        let frames_only =
            Pace::new(&Limits::new(1_024, 4, 50, 200).with_rate(5, 5), 0).expect("paces");
        assert_eq!(frames_only.cost(&frame), 0);
    }
}
