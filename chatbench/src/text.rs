//! The text of a benchmark message: who sent it, its number, when.
//!
//! `"{sender}:{n}:{t}:"` then `x` up to the requested size, where `t` is the
//! send time in nanoseconds since the run's epoch. Plain ASCII with no quote
//! or backslash, so it travels unescaped in JSON, RESP and NATS alike.

use std::fmt::Write;

/// What a benchmark message's text says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The sender's index.
    pub sender: usize,
    /// The message's number in its stream (per sender, or per sender and receiver).
    pub n: u64,
    /// Send time, nanoseconds since the run's epoch.
    pub t_ns: u64,
}

/// Write the text for `stamp`, padded with `x` to at least `size` bytes, into `out`.
pub fn write(stamp: Stamp, size: usize, out: &mut String) {
    out.clear();
    let _ = write!(out, "{}:{}:{}:", stamp.sender, stamp.n, stamp.t_ns);
    while out.len() < size {
        out.push('x');
    }
}

/// Read a stamp back; `None` if `text` is not one.
pub fn parse(text: &[u8]) -> Option<Stamp> {
    // One pass over the three numbers; this runs once per delivery.
    let mut vals = [0u64; 3];
    let mut i = 0;
    for v in &mut vals {
        let start = i;
        let mut acc: u64 = 0;
        loop {
            let d = *text.get(i)?;
            if d == b':' {
                break;
            }
            if !d.is_ascii_digit() || i - start >= 19 {
                // 19 digits always fit in a u64; longer is not ours.
                return None;
            }
            acc = acc * 10 + u64::from(d - b'0');
            i += 1;
        }
        if i == start {
            return None;
        }
        *v = acc;
        i += 1;
    }
    Some(Stamp {
        sender: usize::try_from(vals[0]).ok()?,
        n: vals[1],
        t_ns: vals[2],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_pads() {
        let s = Stamp {
            sender: 3,
            n: 12345,
            t_ns: 987_654_321_000,
        };
        let mut out = String::new();
        write(s, 64, &mut out);
        assert_eq!(out.len(), 64);
        assert!(out.starts_with("3:12345:987654321000:x"));
        assert_eq!(parse(out.as_bytes()), Some(s));
        write(s, 0, &mut out);
        assert_eq!(out, "3:12345:987654321000:");
        assert_eq!(parse(out.as_bytes()), Some(s));
    }

    #[test]
    fn rejects_what_is_not_a_stamp() {
        for bad in [
            "",
            "hello",
            "1:2:3",
            "1:2:x:",
            "a:2:3:",
            "1::3:",
            "1:2:99999999999999999999999:",
            "1:2:3",
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad:?}");
        }
    }
}
