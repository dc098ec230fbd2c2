//! The caps on connections: in all, and per IP address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts open connections and refuses those over a cap.
#[derive(Debug)]
pub struct Limits {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A place taken by one connection, given back on drop.
#[derive(Debug)]
pub struct Admission {
    limits: Arc<Limits>,
    ip: IpAddr,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max_clients` connections are open.
    Full,
    /// `max_clients_per_ip` connections are open from this address.
    IpFull,
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
        }
    }

    /// Caps of `max_total` connections, `max_per_ip` per address (0: none).
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Limits {
            max_total,
            max_per_ip,
            open: Mutex::new(Open::default()),
        })
    }

    /// Take a place for a connection from `ip`, or say why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, Refused> {
        let ip = holder(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.max_total {
            return Err(Refused::Full);
        }
        let n = open.per_ip.get(&ip).copied().unwrap_or(0);
        if self.max_per_ip != 0 && n >= self.max_per_ip {
            return Err(Refused::IpFull);
        }
        *open.per_ip.entry(ip).or_insert(0) += 1;
        open.total += 1;
        Ok(Admission {
            limits: Arc::clone(self),
            ip,
        })
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
        if let Some(n) = open.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_network_of_64_bits_counts_as_one_address() {
        let limits = Limits::new(10, 2);
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
        let limits = Limits::new(3, 2);
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
        let limits = Limits::new(100, 2);
        assert_eq!(
            limits.explain(Refused::Full),
            "the server has no room for another client (--max-clients 100)"
        );
        assert_eq!(
            limits.explain(Refused::IpFull),
            "too many connections from this address (--max-clients-per-ip 2)"
        );
    }
}
