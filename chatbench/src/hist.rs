//! A log-linear latency histogram: fixed memory, mergeable, about 0.8% error.
//!
//! Values below 256 are counted exactly. Above, each power of two is split
//! into 128 equal buckets, so a bucket is never wider than 1/128 of its
//! lower bound. Percentiles report a bucket's upper bound (never below the
//! true value), capped at the largest value recorded.

use serde::{Deserialize, Serialize};

/// Linear sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
/// Values below this are their own bucket.
const EXACT: u64 = SUB * 2;
/// Enough buckets for every u64.
const BUCKETS: usize = ((64 - SUB_BITS as usize) * SUB as usize) + SUB as usize;

/// Counts of values (nanoseconds, here) in log-linear buckets.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min", &self.min)
            .field("max", &self.max)
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn bucket_of(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // >= SUB_BITS + 1
    let shift = e - SUB_BITS;
    let m = v >> shift; // in [SUB, 2*SUB)
    (shift as usize) * SUB as usize + m as usize
}

/// The smallest and largest value that fall in bucket `i`.
fn bounds_of(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < EXACT {
        return (i, i);
    }
    let shift = i / SUB - 1;
    let m = i % SUB + SUB;
    let lo = m << shift;
    let hi = lo.saturating_add((1u64 << shift) - 1);
    (lo, hi)
}

/// The summary the reports carry, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
    /// Arithmetic mean.
    pub mean: u64,
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Count one value.
    pub fn record(&mut self, v: u64) {
        self.counts[bucket_of(v)] += 1;
        self.count += 1;
        self.sum += v as u128;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Add every count of `other` to this one.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The value at quantile `q` (0.0..=1.0): the upper bound of the bucket
    /// holding the `ceil(q * count)`-th smallest value, at most the maximum.
    /// `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bounds_of(i).1.min(self.max).max(self.min));
            }
        }
        Some(self.max)
    }

    /// p50, p99, p99.9, max and mean; `None` when empty.
    pub fn percentiles(&self) -> Option<Percentiles> {
        Some(Percentiles {
            count: self.count,
            p50: self.quantile(0.50)?,
            p99: self.quantile(0.99)?,
            p999: self.quantile(0.999)?,
            max: self.max,
            mean: (self.sum / self.count as u128) as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_their_values() {
        let mut next = 0u64;
        for i in 0..BUCKETS {
            let (lo, hi) = bounds_of(i);
            assert_eq!(lo, next, "bucket {i} starts where the last ended");
            assert!(hi >= lo);
            assert_eq!(bucket_of(lo), i);
            assert_eq!(bucket_of(hi), i);
            if hi == u64::MAX {
                assert_eq!(i, BUCKETS - 1);
                return;
            }
            next = hi + 1;
        }
        panic!("the buckets never reached u64::MAX");
    }

    #[test]
    fn bucket_width_is_within_one_128th() {
        for v in [256u64, 1000, 12_345, 999_999, 1 << 40, u64::MAX / 3] {
            let (lo, hi) = bounds_of(bucket_of(v));
            assert!(lo <= v && v <= hi);
            assert!((hi - lo) as f64 <= lo as f64 / 128.0, "{v}: {lo}..{hi}");
        }
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), Some(50));
        assert_eq!(h.quantile(0.99), Some(99));
        assert_eq!(h.quantile(1.0), Some(100));
        assert_eq!(h.quantile(0.0), Some(1));
        let p = h.percentiles().unwrap();
        assert_eq!((p.count, p.max, p.mean), (100, 100, 50));
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        // 1..=100_000 microseconds in ns: p99 is 99_000 us, p99.9 is 99_900 us.
        let mut h = Histogram::new();
        for us in 1..=100_000u64 {
            h.record(us * 1000);
        }
        for (q, want) in [
            (0.5, 50_000_000u64),
            (0.99, 99_000_000),
            (0.999, 99_900_000),
        ] {
            let got = h.quantile(q).unwrap();
            assert!(got >= want, "q{q}: {got} < {want}");
            assert!(
                (got - want) as f64 <= want as f64 / 128.0,
                "q{q}: {got} vs {want}"
            );
        }
        assert_eq!(h.quantile(1.0), Some(100_000_000));
    }

    #[test]
    fn a_single_outlier_shows_only_in_the_tail() {
        let mut h = Histogram::new();
        for _ in 0..999 {
            h.record(100);
        }
        h.record(5_000_000);
        assert_eq!(h.quantile(0.99), Some(100));
        assert_eq!(h.quantile(0.999), Some(100));
        assert_eq!(h.quantile(1.0), Some(5_000_000));
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let (mut a, mut b, mut all) = (Histogram::new(), Histogram::new(), Histogram::new());
        for v in 0..5000u64 {
            let x = v * v % 77_777;
            if v % 3 == 0 { &mut a } else { &mut b }.record(x);
            all.record(x);
        }
        a.merge(&b);
        assert_eq!(a.percentiles(), all.percentiles());
        assert_eq!(a.counts, all.counts);
    }

    #[test]
    fn empty_has_no_percentiles() {
        assert_eq!(Histogram::new().percentiles(), None);
        let mut e = Histogram::new();
        e.merge(&Histogram::new());
        assert_eq!(e.quantile(0.5), None);
    }
}
