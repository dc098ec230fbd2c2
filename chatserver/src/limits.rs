//! The caps on connections: in all, and per IP address, and how fast one
//! address may open new ones.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Addresses remembered for the connection rate after their last
/// connection closed (until their allowance is whole again). Past it the
/// longest closed are forgotten first: their next connection is then
/// taken as a first one. Bounds the memory a caller with many addresses
/// can make the server keep (about 100 bytes an address).
pub const REMEMBERED_ADDRESSES: usize = 65_536;

/// Counts open connections and refuses those over a cap.
#[derive(Debug)]
pub struct Limits {
    max_total: usize,
    max_per_ip: usize,
    rate: ConnectRate,
    open: Mutex<Open>,
}

/// How fast one address may open new connections: `burst` at once, then
/// `per_minute` a minute (a token bucket, kept as the time the bucket is
/// whole again). Off when `per_minute` is 0 or addresses are not counted
/// (`max_per_ip` 0: every client behind one address, as behind a proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectRate {
    /// New connections a minute, on average (0: no limit).
    pub per_minute: u32,
    /// New connections at once before the rate applies (at least 1).
    pub burst: u32,
}

impl ConnectRate {
    /// No limit on how fast connections come.
    pub const OFF: ConnectRate = ConnectRate {
        per_minute: 0,
        burst: 1,
    };

    /// The rate in effect beside a cap of `max_per_ip` connections per
    /// address: none when addresses are not counted (0).
    pub fn beside(self, max_per_ip: usize) -> ConnectRate {
        if max_per_ip == 0 {
            ConnectRate::OFF
        } else {
            self
        }
    }

    /// The time one connection takes from the allowance.
    fn interval(self) -> Duration {
        Duration::from_secs(60) / self.per_minute.max(1)
    }
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_ip: HashMap<IpAddr, Address>,
    /// Addresses whose last connection closed, in the order they closed,
    /// with when their allowance is whole again; at most
    /// [`REMEMBERED_ADDRESSES`]. One may be open again since: it is then
    /// left as it is when its turn comes.
    closed: VecDeque<(IpAddr, Instant)>,
}

/// One address's connections.
#[derive(Debug, Clone, Copy)]
struct Address {
    /// Connections open now.
    open: usize,
    /// When the address's allowance of new connections is whole again
    /// (none taken: `now` or earlier).
    whole_at: Instant,
}

/// A place taken by one connection, given back on drop.
#[derive(Debug)]
pub struct Admission {
    limits: Arc<Limits>,
    ip: IpAddr,
}

impl Admission {
    /// How many connections hold a place now (this one too), of every
    /// transport, HTTP included: what `--max-clients` caps.
    pub fn held(&self) -> usize {
        let open = self.limits.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max_clients` connections are open.
    Full,
    /// `max_clients_per_ip` connections are open from this address.
    IpFull,
    /// This address opened new connections faster than
    /// `connect_rate_per_ip` allows; its next one is let in this many
    /// seconds from now (rounded up).
    IpTooFast {
        /// Seconds until the allowance has a place again.
        wait_secs: u64,
    },
}

impl Limits {
    /// Why a connection was refused, for the log: what the client is told
    /// (`refuse::reason`), and the cap with the flag that sets it.
    pub fn explain(&self, why: Refused) -> String {
        match why {
            Refused::Full => format!(
                "the server has no room for another client (--max-clients {})",
                self.max_total
            ),
            Refused::IpFull => format!(
                "too many connections from this address (--max-clients-per-ip {})",
                self.max_per_ip
            ),
            Refused::IpTooFast { .. } => format!(
                "new connections from this address come too fast \
                 (--connect-rate-per-ip {} a minute, --connect-burst-per-ip {})",
                self.rate.per_minute, self.rate.burst
            ),
        }
    }

    /// Caps of `max_total` connections, `max_per_ip` per address (0: none,
    /// and no `rate` either), new ones from one address at `rate`.
    pub fn new(max_total: usize, max_per_ip: usize, rate: ConnectRate) -> Arc<Self> {
        Arc::new(Limits {
            max_total,
            max_per_ip,
            rate: rate.beside(max_per_ip),
            open: Mutex::new(Open::default()),
        })
    }

    /// Take a place for a connection from `ip`, or say why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, Refused> {
        self.admit_at(ip, Instant::now())
    }

    /// [`admit`](Limits::admit) at `now`.
    fn admit_at(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<Admission, Refused> {
        let ip = holder(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.forget_whole(now);
        if open.total >= self.max_total {
            return Err(Refused::Full);
        }
        let known = open.per_ip.get(&ip).copied();
        let n = known.map_or(0, |a| a.open);
        if self.max_per_ip != 0 && n >= self.max_per_ip {
            return Err(Refused::IpFull);
        }
        let mut whole_at = known.map_or(now, |a| a.whole_at.max(now));
        if self.rate.per_minute != 0 {
            // The bucket holds `burst` connections, each `interval` of
            // time: full while `whole_at` is now, empty once it is the
            // whole bucket ahead.
            let interval = self.rate.interval();
            let full_at = now + interval * self.rate.burst.max(1);
            if whole_at + interval > full_at {
                // A place again once the bucket has drained that much.
                let wait = (whole_at + interval) - full_at;
                let wait_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                return Err(Refused::IpTooFast { wait_secs });
            }
            whole_at += interval;
        }
        open.per_ip.insert(
            ip,
            Address {
                open: n + 1,
                whole_at,
            },
        );
        open.total += 1;
        Ok(Admission {
            limits: Arc::clone(self),
            ip,
        })
    }

    /// Addresses remembered now (open or closed), for tests.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.open.lock().unwrap().per_ip.len()
    }
}

impl Open {
    /// Forget the closed addresses whose allowance is whole again, and the
    /// longest closed past [`REMEMBERED_ADDRESSES`]. Each close is looked
    /// at once here, so this costs what the closes did. A close that is
    /// not its address's last (it opened and closed again since, which
    /// took more of its allowance) forgets nothing: the later close does.
    fn forget_whole(&mut self, now: Instant) {
        while let Some(&(ip, whole_at)) = self.closed.front() {
            if whole_at > now && self.closed.len() <= REMEMBERED_ADDRESSES {
                break;
            }
            self.closed.pop_front();
            if self
                .per_ip
                .get(&ip)
                .is_some_and(|a| a.open == 0 && a.whole_at == whole_at)
            {
                self.per_ip.remove(&ip);
            }
        }
    }
}

/// Whose connection it is, as the per-address cap counts: an IPv4
/// address (one mapped into IPv6 too) as itself, an IPv6 address by its
/// /64, the network one site is given. Counted one by one, the addresses
/// of one /64 (2^64 of them, all one machine's for the asking) would be
/// no cap at all.
fn holder(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// An IPv4 address mapped into IPv6 is the IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total -= 1;
        let now = Instant::now();
        if let Some(a) = open.per_ip.get_mut(&self.ip) {
            a.open -= 1;
            if a.open == 0 {
                if a.whole_at <= now {
                    open.per_ip.remove(&self.ip);
                } else {
                    // Remembered until its allowance is whole again.
                    let whole_at = a.whole_at;
                    open.closed.push_back((self.ip, whole_at));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_network_of_64_bits_counts_as_one_address() {
        let limits = Limits::new(10, 2, ConnectRate::OFF);
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let a = limits.admit(ip("2001:db8:1:2::1")).expect("first");
        let b = limits.admit(ip("2001:db8:1:2:ffff::9")).expect("second");
        assert_eq!(
            limits.admit(ip("2001:db8:1:2:dead:beef:0:1")).unwrap_err(),
            Refused::IpFull,
            "a third address of the same /64"
        );
        let other = limits.admit(ip("2001:db8:1:3::1")).expect("another /64");
        // IPv4 mapped into IPv6 is the IPv4 address.
        let v4 = limits.admit(ip("10.0.0.1")).expect("v4");
        let mapped = limits
            .admit(ip("::ffff:10.0.0.1"))
            .expect("mapped, the second");
        assert_eq!(limits.admit(ip("10.0.0.1")).unwrap_err(), Refused::IpFull);
        drop((a, b, other, v4, mapped));
        assert!(limits.admit(ip("2001:db8:1:2::7")).is_ok(), "given back");
    }

    #[test]
    fn caps_total_and_per_ip_and_gives_back() {
        let limits = Limits::new(3, 2, ConnectRate::OFF);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = limits.admit(a).unwrap();
        let _a2 = limits.admit(a).unwrap();
        assert_eq!(limits.admit(a).unwrap_err(), Refused::IpFull);
        let _b1 = limits.admit(b).unwrap();
        assert_eq!(limits.admit(b).unwrap_err(), Refused::Full);
        drop(a1);
        assert!(limits.admit(b).is_ok());
    }

    #[test]
    fn a_refusal_is_explained_with_its_cap_and_flag() {
        let limits = Limits::new(100, 2, RATE);
        assert_eq!(
            limits.explain(Refused::Full),
            "the server has no room for another client (--max-clients 100)"
        );
        assert_eq!(
            limits.explain(Refused::IpFull),
            "too many connections from this address (--max-clients-per-ip 2)"
        );
        assert_eq!(
            limits.explain(Refused::IpTooFast { wait_secs: 1 }),
            "new connections from this address come too fast \
             (--connect-rate-per-ip 60 a minute, --connect-burst-per-ip 3)"
        );
    }

    /// A second a connection, three at once.
    const RATE: ConnectRate = ConnectRate {
        per_minute: 60,
        burst: 3,
    };

    #[test]
    fn an_address_opens_a_burst_at_once_then_one_per_interval() {
        let limits = Limits::new(100, 10, RATE);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(limits.admit_at(a, at(0)).expect("within the burst"));
        }
        // The next place comes a second later, and the refusal says so.
        let wait = |ms| match limits.admit_at(a, at(ms)) {
            Err(Refused::IpTooFast { wait_secs }) => wait_secs,
            other => panic!("{:?}", other.map(|_| "admitted")),
        };
        assert_eq!(wait(0), 1);
        // Closing does not give the allowance back: only time does.
        held.clear();
        assert_eq!(wait(999), 1, "1 ms left, rounded up");
        assert_eq!(limits.remembered(), 1, "closed, remembered until whole");
        // Another address has its own.
        held.push(limits.admit_at(b, at(999)).expect("another address"));
        held.push(limits.admit_at(a, at(1_000)).expect("one a second"));
        assert_eq!(wait(1_500), 1);
        held.push(limits.admit_at(a, at(2_000)).expect("the next second"));
        // Idle long enough, the whole burst again.
        for _ in 0..3 {
            held.push(limits.admit_at(a, at(10_000)).expect("whole again"));
        }
        assert_eq!(wait(10_000), 1);
        // A slow rate says how slow: one a minute, 59 s after the last.
        let slow = Limits::new(
            100,
            10,
            ConnectRate {
                per_minute: 1,
                burst: 1,
            },
        );
        let _held = slow.admit_at(a, at(0)).expect("the first");
        assert_eq!(
            slow.admit_at(a, at(1_000)).map(|_| ()),
            Err(Refused::IpTooFast { wait_secs: 59 })
        );
    }

    /// An address that opens and closes again and again is not forgotten
    /// when its first close's allowance would be whole: the later closes
    /// took more of it.
    #[test]
    fn an_address_closing_again_and_again_is_remembered_by_its_last_close() {
        let limits = Limits::new(100, 10, RATE);
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        for _ in 0..3 {
            drop(limits.admit_at(c, at(0)).expect("within the burst"));
        }
        drop(
            limits
                .admit_at(c, at(1_500))
                .expect("one more after a second"),
        );
        assert!(matches!(
            limits.admit_at(c, at(1_500)),
            Err(Refused::IpTooFast { .. })
        ));
    }

    #[test]
    fn without_a_per_address_cap_there_is_no_rate_either() {
        let limits = Limits::new(1_000, 0, RATE);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let now = Instant::now();
        let held: Vec<_> = (0..100)
            .map(|_| limits.admit_at(a, now).expect("no rate"))
            .collect();
        assert_eq!(held.len(), 100);
    }

    #[test]
    fn closed_addresses_are_forgotten_when_whole_again_and_past_the_cap() {
        let limits = Limits::new(10, 10, RATE);
        let t0 = Instant::now();
        // Close connections from more addresses than are remembered.
        let n = REMEMBERED_ADDRESSES + 10;
        for i in 0..n {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i as u32));
            drop(limits.admit_at(ip, t0).expect("first"));
        }
        // One more admission looks at the oldest: the cap holds, from
        // the longest closed.
        let last = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n as u32));
        let _held = limits.admit_at(last, t0).expect("first");
        assert!(
            limits.remembered() <= REMEMBERED_ADDRESSES + 1,
            "{} remembered",
            limits.remembered()
        );
        // The first address was forgotten: whole again at once.
        let first = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000));
        let _again: Vec<_> = (0..3)
            .map(|_| limits.admit_at(first, t0).expect("forgotten"))
            .collect();
        // Once whole again in time, every closed one is forgotten.
        let later = t0 + Duration::from_secs(60);
        drop(limits.admit_at(last, later).expect("later"));
        assert_eq!(limits.remembered(), 2, "the two still open");
    }
}
