//! Tests of the nickname claims: a claim given back after an outage, its
//! holder read, a busy key told from a taken one.

use std::time::Duration;

use super::release::retried;
use super::*;
use crate::cluster::RELEASE_FOR;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};

/// A claim NATS would not delete for longer than [`RELEASE_FOR`] (an
/// outage of ten minutes) is given back once it can be: the node
/// gave up after five minutes, and the nickname stayed taken for as
/// long as it ran.
#[tokio::test(start_paused = true)]
async fn a_claim_is_given_back_after_an_outage_longer_than_release_for() {
    let back = tokio::time::Instant::now() + Duration::from_secs(600);
    let tries = std::cell::Cell::new(0u32);
    retried("alice", "giving up a nickname claim", None, || async {
        tries.set(tries.get() + 1);
        if tokio::time::Instant::now() < back {
            Err("no responders")
        } else {
            Ok(())
        }
    })
    .await;
    let now = tokio::time::Instant::now();
    assert!(now >= back, "done while NATS was still away");
    assert!(
        now < back + Duration::from_secs(6),
        "tried every 5 s at most"
    );
    // 50 ms doubling to 5 s, then every 5 s: bounded, not a busy loop.
    assert!((100..140).contains(&tries.get()), "{} tries", tries.get());
}

/// The look for a claim whose answer was lost ends after about
/// [`RELEASE_FOR`] while NATS stays away: every join then ends so, and
/// a look each, for ever, would grow with the joins tried.
#[tokio::test(start_paused = true)]
async fn a_look_for_a_lost_claim_ends_while_nats_stays_away() {
    let start = tokio::time::Instant::now();
    retried(
        "alice",
        "looking for a nickname claim whose answer was lost",
        Some(RELEASE_FOR),
        || async { Err::<(), _>("no responders") },
    )
    .await;
    let took = start.elapsed();
    assert!(
        took >= RELEASE_FOR && took < RELEASE_FOR + Duration::from_secs(6),
        "{took:?}"
    );
}

/// A claim's `create` refused by the server with `err_code`, as
/// async-nats reports it (the server's answer under a publish error,
/// under an update error).
fn refused_create(kind: PublishErrorKind, err_code: u64) -> kv::CreateError {
    let answer =
        format!(r#"{{"code":400,"err_code":{err_code},"description":"wrong last sequence"}}"#);
    let api: jetstream::Error = serde_json::from_str(&answer).unwrap();
    let publish = PublishError::with_source(kind, api);
    kv::CreateError::from(kv::UpdateError::from(publish))
}

/// A claim refused, then found given up when its holder is read: the
/// nickname is free (claimed again), not held by an unknown someone
/// (a delete marker's empty value read as a holder that could not be
/// parsed, and the join was told `nick_taken`).
#[test]
fn a_claim_given_up_before_its_holder_is_read_is_free() {
    let claim = ClaimValue {
        origin: "run-1".into(),
        nick: "Alice".into(),
        key: "alice".into(),
        attempt: String::new(),
    };
    let value = serde_json::to_vec(&claim).unwrap();
    let put = kv::Operation::Put;
    assert!(matches!(
        holder(Some((&put, &value))),
        Holder::Held(h) if h.nick == "Alice" && h.origin == "run-1"
    ));
    for gone in [kv::Operation::Delete, kv::Operation::Purge] {
        assert!(matches!(holder(Some((&gone, b""))), Holder::Free));
    }
    assert!(matches!(holder(None), Holder::Free));
    assert!(matches!(holder(Some((&put, b"{}"))), Holder::Unknown));
}

#[test]
fn a_key_written_meanwhile_is_told_from_other_refusals() {
    // 10164: another write to the key is being stored (2.11+).
    let busy = refused_create(PublishErrorKind::Other, 10164);
    assert_eq!(busy.kind(), kv::CreateErrorKind::Other);
    assert!(key_busy(&busy));
    // 10071: the key holds another revision (a claim exists).
    let taken = refused_create(PublishErrorKind::WrongLastSequence, 10071);
    assert_eq!(taken.kind(), kv::CreateErrorKind::AlreadyExists);
    assert!(!key_busy(&taken));
    // No answer from the server at all.
    let timed_out = kv::CreateError::new(kv::CreateErrorKind::Publish);
    assert!(!key_busy(&timed_out));
}
