//! Loss accounting: which numbered messages of one stream a receiver got.
//!
//! Every message carries its stream (the sender) and its number in that
//! stream, counting from 0. A [`Track`] remembers which numbers arrived, so
//! that lost = expected - distinct, and duplicates and reordering are counted
//! apart instead of hiding losses.

use serde::{Deserialize, Serialize};

/// What one receiver got of one sender's numbered stream.
#[derive(Debug, Clone)]
pub struct Track {
    expected: u64,
    seen: Vec<u64>,
    distinct: u64,
    duplicates: u64,
    reordered: u64,
    unexpected: u64,
    highest: Option<u64>,
}

/// Totals over any number of tracks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Deliveries that should have arrived.
    pub expected: u64,
    /// Distinct expected deliveries that did arrive.
    pub received: u64,
    /// `expected - received`.
    pub lost: u64,
    /// Arrivals of a number already seen.
    pub duplicates: u64,
    /// Arrivals below the highest number seen so far (first time seen).
    pub reordered: u64,
    /// Arrivals numbered outside the expected range.
    pub unexpected: u64,
}

impl Tally {
    /// Sum of two tallies.
    pub fn add(&mut self, o: &Tally) {
        self.expected += o.expected;
        self.received += o.received;
        self.lost += o.lost;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
        self.unexpected += o.unexpected;
    }
}

impl Track {
    /// A track expecting messages numbered `0..expected`.
    pub fn new(expected: u64) -> Self {
        Track {
            expected,
            seen: vec![0; expected.div_ceil(64) as usize],
            distinct: 0,
            duplicates: 0,
            reordered: 0,
            unexpected: 0,
            highest: None,
        }
    }

    /// Count the arrival of message `n`. Returns whether it was new and expected.
    pub fn record(&mut self, n: u64) -> bool {
        if n >= self.expected {
            self.unexpected += 1;
            return false;
        }
        let (word, bit) = ((n / 64) as usize, 1u64 << (n % 64));
        if self.seen[word] & bit != 0 {
            self.duplicates += 1;
            return false;
        }
        self.seen[word] |= bit;
        self.distinct += 1;
        match self.highest {
            Some(h) if n < h => self.reordered += 1,
            _ => self.highest = Some(n),
        }
        true
    }

    /// This track's totals.
    pub fn tally(&self) -> Tally {
        Tally {
            expected: self.expected,
            received: self.distinct,
            lost: self.expected - self.distinct,
            duplicates: self.duplicates,
            reordered: self.reordered,
            unexpected: self.unexpected,
        }
    }
}

/// One receiver's tracks, indexed by sender.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    tracks: Vec<Track>,
    unknown_sender: u64,
}

impl Ledger {
    /// A ledger expecting `expected[s]` messages from sender `s`.
    pub fn new(expected: impl IntoIterator<Item = u64>) -> Self {
        Ledger {
            tracks: expected.into_iter().map(Track::new).collect(),
            unknown_sender: 0,
        }
    }

    /// Count message `n` from `sender`. Returns whether it was new and expected.
    pub fn record(&mut self, sender: usize, n: u64) -> bool {
        match self.tracks.get_mut(sender) {
            Some(t) => t.record(n),
            None => {
                self.unknown_sender += 1;
                false
            }
        }
    }

    /// Totals over all senders; messages from unknown senders count as unexpected.
    pub fn tally(&self) -> Tally {
        let mut t = Tally {
            unexpected: self.unknown_sender,
            ..Tally::default()
        };
        for tr in &self.tracks {
            t.add(&tr.tally());
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_in_order_loses_nothing() {
        let mut t = Track::new(100);
        for n in 0..100 {
            assert!(t.record(n));
        }
        let tally = t.tally();
        assert_eq!(tally.expected, 100);
        assert_eq!(tally.received, 100);
        assert_eq!(tally.lost, 0);
        assert_eq!(
            (tally.duplicates, tally.reordered, tally.unexpected),
            (0, 0, 0)
        );
    }

    #[test]
    fn gaps_are_lost_and_duplicates_do_not_hide_them() {
        let mut t = Track::new(10);
        for n in [0, 1, 1, 1, 4, 5, 9] {
            t.record(n);
        }
        let tally = t.tally();
        // 7 arrivals, but only 5 distinct: 2,3,6,7,8 are lost.
        assert_eq!(tally.received, 5);
        assert_eq!(tally.lost, 5);
        assert_eq!(tally.duplicates, 2);
        assert_eq!(tally.reordered, 0);
    }

    #[test]
    fn late_arrivals_count_as_reordered_not_lost() {
        let mut t = Track::new(5);
        for n in [0, 2, 1, 4, 3] {
            t.record(n);
        }
        let tally = t.tally();
        assert_eq!((tally.received, tally.lost, tally.reordered), (5, 0, 2));
    }

    #[test]
    fn out_of_range_numbers_are_unexpected() {
        let mut t = Track::new(3);
        assert!(!t.record(3));
        assert!(!t.record(u64::MAX));
        let tally = t.tally();
        assert_eq!((tally.unexpected, tally.lost), (2, 3));
    }

    #[test]
    fn ledger_sums_senders_and_flags_unknown_ones() {
        let mut l = Ledger::new([2, 3]);
        l.record(0, 0);
        l.record(0, 1);
        l.record(1, 2);
        l.record(7, 0);
        let t = l.tally();
        assert_eq!((t.expected, t.received, t.lost, t.unexpected), (5, 3, 2, 1));
    }

    #[test]
    fn tallies_add() {
        let mut a = Tally {
            expected: 1,
            received: 1,
            ..Tally::default()
        };
        a.add(&Tally {
            expected: 2,
            lost: 2,
            duplicates: 1,
            ..Tally::default()
        });
        assert_eq!(
            a,
            Tally {
                expected: 3,
                received: 1,
                lost: 2,
                duplicates: 1,
                ..Tally::default()
            }
        );
    }
}
