//! Maps keyed by the server's own counters, and by strings (`StrMap`:
//! names a peer chose).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// A hasher for the server's own counters ([`ClientId`](crate::ClientId),
/// [`SessionId`](crate::SessionId)): they are not chosen by a peer, so a
/// multiply spreads them well enough, and SipHash's cost (a fifth of the
/// fan-out path when it was measured) buys nothing.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: spreads a counter over the high bits hashbrown uses.
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

impl BuildHasher for IdHasher {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

/// A `HashMap` keyed by one of the server's counters.
pub(crate) type IdMap<K, V> = HashMap<K, V, IdHasher>;

/// A `HashMap` keyed by a string a peer chose (a room name, a nickname's
/// key, a token). foldhash is several times faster than SipHash on these
/// short keys and seeds every map at random, so a peer cannot aim its
/// names at one bucket without knowing the seed, which nothing reveals:
/// no reply depends on a map's iteration order.
pub(crate) type StrMap<V> = HashMap<String, V, foldhash::fast::RandomState>;
