//! The plans of the three traffic workloads: who joins, who sends what to
//! whom, and what each member must receive. Pure functions of the settings
//! (and the seed), so the expectations are known before the first byte.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use crate::traffic::{Ack, MemberPlan, SendPlan};
use crate::wire::{Subs, Target};

/// The random numbers of stream `i` (a member, a client slot) of a run
/// seeded with `seed`: the same seed gives the same choices, and each
/// stream its own. Reproducible with the same build; rand does not promise
/// SmallRng's sequence across its releases or on 32-bit platforms, and
/// Cargo.lock pins the release.
pub fn rng(seed: u64, i: u64) -> SmallRng {
    // An odd multiplier keeps the streams of one seed apart; seed_from_u64
    // hashes the result, so neighbouring seeds give unrelated streams.
    SmallRng::seed_from_u64(seed ^ i.wrapping_mul(0xA24B_AED4_963E_E407))
}

/// The nick of member `i` (ASCII letters and digits only, so no two look alike).
pub fn nick(i: usize) -> String {
    format!("b{i}")
}

/// `members` in one room; the first `publishers` of them each send
/// `messages` to the room, with at most `window` unacknowledged.
/// Everyone, publishers included, must receive every message once.
pub fn fanout(members: usize, publishers: usize, messages: u64, window: usize) -> Vec<MemberPlan> {
    let publishers = publishers.min(members);
    (0..members)
        .map(|i| MemberPlan {
            nick: nick(i),
            subs: Subs {
                room: true,
                own: false,
            },
            send: (i < publishers).then(|| SendPlan {
                sender: i,
                dests: vec![None; messages as usize],
                window,
                rate: None,
                phase: 0.0,
                ack: Ack::OwnCopy,
            }),
            expect: vec![messages; publishers],
            count_own: true,
        })
        .collect()
}

/// `members` in one room; the first `publishers` share an aggregate `rate`
/// (messages per second) for `seconds`, spread evenly in time. No window:
/// sends follow the clock, not the acks.
pub fn latency(members: usize, publishers: usize, rate: f64, seconds: f64) -> Vec<MemberPlan> {
    let publishers = publishers.clamp(1, members.max(1));
    let per_pub = rate / publishers as f64;
    let count = (per_pub * seconds).round().max(1.0) as u64;
    (0..members)
        .map(|i| MemberPlan {
            nick: nick(i),
            subs: Subs {
                room: true,
                own: false,
            },
            send: (i < publishers).then(|| SendPlan {
                sender: i,
                dests: vec![None; count as usize],
                window: usize::MAX,
                rate: Some(per_pub),
                // Interleave the publishers instead of sending in bursts of P.
                phase: i as f64 / rate,
                ack: Ack::OwnCopy,
            }),
            expect: vec![count; publishers],
            count_own: true,
        })
        .collect()
}

/// `clients`, each sending `messages` to others picked at random (never
/// itself), at most `window` unacknowledged. Only the addressee's copy
/// counts as a delivery; the sender's ack is chat's echo, redis's PUBLISH
/// reply, or the PONG to a PING after each nats PUB.
pub fn private(
    target: Target,
    clients: usize,
    messages: u64,
    window: usize,
    seed: u64,
) -> Vec<MemberPlan> {
    let clients = clients.max(2);
    let dests: Vec<Vec<Option<usize>>> = (0..clients)
        .map(|s| {
            let mut rng = rng(seed, s as u64);
            (0..messages)
                .map(|_| {
                    let d = rng.random_range(0..clients - 1);
                    Some(if d >= s { d + 1 } else { d })
                })
                .collect()
        })
        .collect();
    let mut expect = vec![vec![0u64; clients]; clients];
    for (s, ds) in dests.iter().enumerate() {
        for d in ds.iter().flatten() {
            expect[*d][s] += 1;
        }
    }
    let ack = if target == Target::Chat {
        Ack::OwnCopy
    } else {
        Ack::Reply
    };
    dests
        .into_iter()
        .zip(expect)
        .enumerate()
        .map(|(i, (dests, expect))| MemberPlan {
            nick: nick(i),
            subs: Subs {
                room: false,
                own: true,
            },
            send: Some(SendPlan {
                sender: i,
                dests,
                window,
                rate: None,
                phase: 0.0,
                ack,
            }),
            expect,
            count_own: false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_streams_and_each_stream_its_own() {
        let draw = |seed, i| -> Vec<u64> {
            let mut r = rng(seed, i);
            (0..4).map(|_| r.random()).collect()
        };
        assert_eq!(draw(7, 0), draw(7, 0));
        assert_ne!(draw(7, 0), draw(7, 1));
        assert_ne!(draw(7, 0), draw(8, 0));
    }

    #[test]
    fn fanout_expects_every_message_at_every_member() {
        let plans = fanout(10, 3, 50, 8);
        assert_eq!(plans.len(), 10);
        assert_eq!(plans.iter().filter(|p| p.send.is_some()).count(), 3);
        let total: u64 = plans.iter().map(|p| p.expect.iter().sum::<u64>()).sum();
        assert_eq!(total, 10 * 3 * 50);
        assert!(plans.iter().all(|p| p.subs.room && p.count_own));
    }

    #[test]
    fn latency_spreads_the_rate_over_publishers() {
        let plans = latency(100, 4, 2000.0, 10.0);
        let senders: Vec<_> = plans.iter().filter_map(|p| p.send.as_ref()).collect();
        assert_eq!(senders.len(), 4);
        for (i, s) in senders.iter().enumerate() {
            assert_eq!(s.dests.len(), 5000);
            assert_eq!(s.rate, Some(500.0));
            assert!((s.phase - i as f64 / 2000.0).abs() < 1e-12);
        }
        assert_eq!(plans[99].expect, vec![5000; 4]);
    }

    #[test]
    fn private_expectations_match_the_schedule_and_nobody_writes_to_itself() {
        let plans = private(Target::Redis, 7, 100, 4, 42);
        let mut expected_total = 0;
        for (r, p) in plans.iter().enumerate() {
            let send = p.send.as_ref().unwrap();
            assert!(send.dests.iter().all(|d| *d != Some(r)));
            assert_eq!(send.ack, Ack::Reply);
            assert_eq!(p.expect[r], 0);
            for (s, &e) in p.expect.iter().enumerate() {
                let counted = plans[s]
                    .send
                    .as_ref()
                    .unwrap()
                    .dests
                    .iter()
                    .filter(|d| **d == Some(r))
                    .count() as u64;
                assert_eq!(e, counted);
            }
            expected_total += p.expect.iter().sum::<u64>();
        }
        assert_eq!(expected_total, 700);
        // Same seed, same schedule; the chat ack is the echo.
        let again = private(Target::Chat, 7, 100, 4, 42);
        assert_eq!(
            again[3].send.as_ref().unwrap().dests,
            plans[3].send.as_ref().unwrap().dests
        );
        assert_eq!(again[0].send.as_ref().unwrap().ack, Ack::OwnCopy);
    }
}
