//! Tests of a peer's queue: its limits and overflow, reads held and
//! answered in order, what a writer takes, and what reads are charged.

use chatproto::ServerFrame;

use super::*;
use crate::budget::SLOT_BYTES;

async fn peer_with(budget: &Arc<OutboundBudget>) -> (Peer, std::net::TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let (_, write) = server.into_split();
    (
        Peer::new(write, QueueLimits::fixed(1 << 20), Arc::clone(budget)),
        client,
    )
}

/// Queue `n` distinct 10-byte frames, reporting their slots as the hub does.
fn queue(peer: &Peer, budget: &Arc<OutboundBudget>, n: usize) {
    for _ in 0..n {
        let frame = budget.track(Bytes::from_static(b"0123456789"));
        assert!(matches!(peer.push(frame), Push::Queued { .. }));
    }
    budget.add_slots(n);
}

#[tokio::test]
async fn a_peer_behind_does_not_keep_a_shared_buffer_alive() {
    const BACKLOG: usize = 1_000;
    let budget = OutboundBudget::new(1 << 30);
    // A peer written by a task that has not taken what it was given
    // in a turn before: behind.
    let peer = Peer::for_task(QueueLimits::fixed(1 << 20), Arc::clone(&budget));
    let backlog = budget.track(Bytes::from(vec![b'x'; BACKLOG]));
    assert!(matches!(peer.push(backlog), Push::Queued { .. }));
    // Runs of the same turn are its own, not left over: no copy.
    let shared = budget.track(Bytes::from(vec![b'w'; 100_000]));
    assert!(matches!(
        peer.push(shared.slice(..100)),
        Push::Queued { .. }
    ));
    drop(shared);
    assert_eq!(budget.used(), BACKLOG + 100_000);
    // The turn ends (the hub flushes: the task is woken) and the task
    // takes nothing before the next turn's small run, cut from a big
    // shared buffer.
    assert!(peer.flush(true).unwrap());
    let shared = budget.track(Bytes::from(vec![b'y'; 100_000]));
    assert!(matches!(
        peer.push(shared.slice(..100)),
        Push::Queued { .. }
    ));
    drop(shared);
    assert_eq!(
        budget.used(),
        BACKLOG + 100_000 + 100,
        "a copy, not the buffer (the first turn's slice holds its own)"
    );
    // A peer with nothing queued gets the slice itself.
    let (fresh, _client) = peer_with(&budget).await;
    let shared = budget.track(Bytes::from(vec![b'z'; 100_000]));
    assert!(matches!(
        fresh.push(shared.slice(..100)),
        Push::Queued { .. }
    ));
    drop(shared);
    assert_eq!(budget.used(), BACKLOG + 100_000 + 100 + 100_000);
}

#[tokio::test]
async fn queued_frames_leave_the_budget_however_the_peer_ends() {
    let budget = OutboundBudget::new(1 << 20);
    let (peer, _client) = peer_with(&budget).await;
    queue(&peer, &budget, 10);
    assert_eq!(budget.used(), 10 * (10 + SLOT_BYTES));
    assert_eq!(peer.queued(), 10 * (10 + SLOT_BYTES));
    // Written: nothing held any more.
    assert!(peer.flush(false).unwrap());
    assert_eq!((budget.used(), peer.queued()), (0, 0));
    // Kicked: only the last frame's slot (an untracked error frame).
    queue(&peer, &budget, 5);
    peer.kick(Bytes::from_static(b"bye"), ErrorCode::SlowConsumer);
    assert_eq!(budget.used(), SLOT_BYTES);
    assert_eq!(peer.queued(), 3 + SLOT_BYTES);
    // Dropped with frames still queued.
    drop(peer);
    assert_eq!(budget.used(), 0);

    let (peer, client) = peer_with(&budget).await;
    queue(&peer, &budget, 7);
    drop(peer);
    assert_eq!(budget.used(), 0);
    drop(client);
}

#[tokio::test]
async fn frames_left_when_the_socket_fails_leave_the_budget() {
    let budget = OutboundBudget::new(1 << 20);
    let (peer, _client) = peer_with(&budget).await;
    // Every write fails from now on (EPIPE), as after the client's reset.
    socket2::SockRef::from(peer.socket())
        .shutdown(std::net::Shutdown::Write)
        .unwrap();
    queue(&peer, &budget, 4);
    peer.hold(1);
    queue(&peer, &budget, 2);
    assert!(peer.flush(false).is_err());
    assert!(peer.is_dead());
    assert_eq!((budget.used(), peer.queued()), (0, 0));
    drop(peer);
    assert_eq!(budget.used(), 0);
}

#[tokio::test]
async fn what_comes_during_a_read_goes_after_its_answer() {
    let budget = OutboundBudget::new(1 << 20);
    let (peer, mut client) = peer_with(&budget).await;
    let frame = |b: &'static [u8]| budget.track(Bytes::from_static(b));
    assert!(matches!(
        peer.push(frame(b"a")),
        Push::Queued { newly: true, .. }
    ));
    peer.hold(1);
    peer.push(frame(b"b"));
    peer.hold(2);
    peer.push(frame(b"c"));
    budget.add_slots(3);
    peer.flush(false).unwrap();
    // The second answer first: it waits behind the first.
    peer.release(2, vec![frame(b"2")]);
    peer.flush(false).unwrap();
    peer.release(1, vec![frame(b"1")]);
    assert!(peer.flush(false).unwrap());
    assert_eq!((budget.used(), peer.queued()), (0, 0));
    let mut got = [0u8; 5];
    use std::io::Read;
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"a1b2c");
}

/// A server `ping` pushed ahead goes out while a read waits, before
/// what waits behind the read (a ping answers no frame); what was
/// pushed before the read still goes first.
#[test]
fn a_ping_pushed_ahead_does_not_wait_for_a_read() {
    let budget = OutboundBudget::new(1 << 30);
    let peer = Peer::for_task(QueueLimits::fixed(1 << 20), Arc::clone(&budget));
    let frame = |b: &'static [u8]| budget.track(Bytes::from_static(b));
    peer.push(frame(b"a"));
    peer.hold(1);
    peer.push(frame(b"b"));
    assert!(matches!(peer.push_ahead(frame(b"p")), Push::Queued { .. }));
    budget.add_slots(3);
    let mut batch = Vec::new();
    peer.take(64, 1 << 20, &mut batch);
    assert_eq!(batch, [&b"a"[..], &b"p"[..]]);
    peer.release(1, vec![frame(b"1")]);
    let mut batch = Vec::new();
    peer.take(64, 1 << 20, &mut batch);
    assert_eq!(batch, [&b"1"[..], &b"b"[..]]);
}

/// A client that said its last, waiting for a read from disk, is
/// closed once the answer (and what was held behind it) is queued,
/// not before: the answer is not dropped.
#[test]
fn a_peer_closed_once_answered_waits_for_its_reads() {
    let budget = OutboundBudget::new(1 << 30);
    let peer = Peer::for_task(QueueLimits::fixed(1 << 20), Arc::clone(&budget));
    peer.hold(7);
    let after = budget.track(Bytes::from_static(b"after"));
    assert!(matches!(peer.push(after), Push::Queued { .. }));
    budget.add_slots(1);
    peer.close_once_answered();
    assert!(!peer.is_closing(), "a read is still to be answered");
    let answer = budget.track(Bytes::from_static(b"answer"));
    assert!(matches!(peer.release(7, vec![answer]), Push::Queued { .. }));
    assert!(peer.is_closing(), "answered: now it closes");
    let mut batch = Vec::new();
    peer.take(64, 1 << 20, &mut batch);
    assert_eq!(batch, [&b"answer"[..], &b"after"[..]]);
    // With no read waiting it closes at once.
    let idle = Peer::for_task(QueueLimits::fixed(1 << 20), Arc::clone(&budget));
    idle.close_once_answered();
    assert!(idle.is_closing());
}

#[test]
fn a_writer_takes_at_most_a_batch_of_bytes_and_one_entry_more() {
    let budget = OutboundBudget::new(1 << 30);
    let peer = Peer::for_task(QueueLimits::fixed(1 << 20), Arc::clone(&budget));
    for _ in 0..10 {
        let entry = budget.track(Bytes::from(vec![b'x'; 30_000]));
        assert!(matches!(peer.push(entry), Push::Queued { .. }));
    }
    budget.add_slots(10);
    let mut batch = Vec::new();
    assert!(peer.take(64, 64_000, &mut batch));
    assert_eq!(
        batch.len(),
        3,
        "60,000 bytes are under the bound, 90,000 reach it"
    );
    assert_eq!(peer.queued(), 7 * (30_000 + SLOT_BYTES));
    batch.clear();
    assert!(peer.take(2, 1 << 20, &mut batch));
    assert_eq!(batch.len(), 2, "the count of entries bounds it too");
}

/// Past `bytes` a queue is over (said once, with when), still queued;
/// past `max_bytes` it overflows; written back under `bytes`, it is
/// no longer over, and passing it again is said again.
/// A peer written by a task, over `bytes` and overflowing past
/// `max_bytes`, with its budget.
fn graced(bytes: usize, max_bytes: usize) -> (Arc<OutboundBudget>, Peer) {
    let budget = OutboundBudget::new(1 << 20);
    let limits = QueueLimits { bytes, max_bytes };
    let peer = Peer::for_task(limits, Arc::clone(&budget));
    (budget, peer)
}

fn queued(newly: bool, over: bool) -> Push {
    Push::Queued { newly, over }
}

#[test]
fn a_queue_past_its_limit_is_over_until_read_back_under_it() {
    let (budget, peer) = graced(1000, 2500);
    let frame = || budget.track(Bytes::from(vec![b'x'; 600]));
    assert_eq!(peer.push(frame()), queued(true, false));
    assert_eq!(peer.lag(), None);
    assert_eq!(peer.push(frame()), queued(false, true));
    let (since, written) = peer.lag().expect("over its limit");
    assert_eq!(written, 0);
    assert_eq!(peer.push(frame()), queued(false, false));
    assert_eq!(peer.lag(), Some((since, 0)), "still the same time over");
    assert_eq!(peer.push(frame()), Push::Overflow, "past max_bytes");
    let mut taken = Vec::new();
    assert!(peer.take(1, usize::MAX, &mut taken));
    assert_eq!(
        peer.lag(),
        Some((since, 600)),
        "1264 bytes left: still over, 600 written since"
    );
    // Watched again: what it writes is counted from there.
    let again = since + std::time::Duration::from_millis(1);
    peer.watch_again(again);
    assert_eq!(peer.lag(), Some((again, 0)));
    assert!(peer.take(1, usize::MAX, &mut taken));
    assert_eq!(peer.lag(), None, "back under it");
    peer.watch_again(again);
    assert_eq!(peer.lag(), None, "not watched again once under it");
    assert_eq!(peer.push(frame()), queued(true, true));
    assert_eq!(peer.lag().map(|(_, written)| written), Some(0));
}

/// An answer to a read that takes the queue past its most overflows,
/// as a push would (it was only watched for the grace).
#[test]
fn an_answer_past_the_most_overflows() {
    let (budget, peer) = graced(1000, 2000);
    peer.hold(1);
    let page = vec![budget.track(Bytes::from(vec![b'x'; 2500]))];
    assert_eq!(peer.release(1, page), Push::Overflow);
}

/// Answers to reads are charged (other frames are not), and a read
/// the hub has not answered yet is reserved for; without a read
/// allowance nothing waits.
#[test]
fn answers_are_charged_and_reads_not_yet_answered_reserved_for() {
    let budget = OutboundBudget::new(1 << 20);
    let t0 = Instant::now();
    // 1,000 bytes a second after 3,000; 2,000 reserved a read.
    let reads = ReadAllowance::new(1_000, 3_000, 2_000, t0);
    let peer = Peer::for_task(QueueLimits::fixed(1 << 20), Arc::clone(&budget));
    let peer = peer.with_reads(reads);
    assert_eq!(peer.read_wait(t0, 1), None, "one passed: 1,000 left");
    assert_eq!(
        peer.read_wait(t0, 2),
        Some(std::time::Duration::from_secs(1))
    );
    // The first answered with a page of 2,500 bytes; a pong is free.
    peer.charge_read(&ServerFrame::history("r", Vec::new(), false), 2_500);
    peer.charge_read(&ServerFrame::Pong, 10_000);
    peer.read_answered();
    let t1 = Instant::now();
    assert_eq!(peer.read_wait(t1, 1), None, "500 left");
    let wait = peer.read_wait(t1, 2).expect("1,500 short");
    assert!(
        wait <= std::time::Duration::from_millis(1_500)
            && wait > std::time::Duration::from_millis(1_400),
        "{wait:?}"
    );
    let free = Peer::for_task(QueueLimits::fixed(1 << 20), budget);
    free.charge_read(&ServerFrame::history("r", Vec::new(), false), 1 << 30);
    assert_eq!(free.read_wait(t0, 100), None);
}

/// A read from the database is charged for the events it looked at,
/// 64 bytes each, beyond what its answer was charged: an empty page
/// after a long scan costs its scan, a page of what was looked at
/// costs its bytes alone.
#[test]
fn what_a_read_looked_at_is_charged_beyond_its_answer() {
    let budget = OutboundBudget::new(1 << 20);
    let t0 = Instant::now();
    // 1,000 bytes a second after 100,000; nothing reserved.
    let reads = ReadAllowance::new(1_000, 100_000, 0, t0);
    let peer = Peer::for_task(QueueLimits::fixed(1 << 20), Arc::clone(&budget));
    let peer = peer.with_reads(reads);
    // A page of 70 bytes after 1,000 events: 64,000 in all.
    peer.charge_read(&ServerFrame::history("r", Vec::new(), false), 70);
    peer.charge_looked_at(1_000, 70);
    // A page of 20,000 bytes after 200 events (12,800): its bytes.
    peer.charge_read(&ServerFrame::history("r", Vec::new(), false), 20_000);
    peer.charge_looked_at(200, 20_000);
    let t1 = Instant::now();
    assert_eq!(peer.read_wait(t1, 0), None, "16,000 left");
    // 16,000 short of another 32,000: 16 s at 1,000 a second.
    peer.charge_looked_at(500, 0);
    let wait = peer.read_wait(t1, 0).expect("16,000 short");
    let secs = wait.as_secs_f64();
    assert!((15.9..=16.0).contains(&secs), "{wait:?}");
    let free = Peer::for_task(QueueLimits::fixed(1 << 20), budget);
    free.charge_looked_at(u64::MAX, 0);
    assert_eq!(free.read_wait(t0, 0), None);
}

#[tokio::test]
async fn an_answer_for_a_peer_kicked_while_it_waited_leaves_nothing_counted() {
    let budget = OutboundBudget::new(1 << 20);
    let (peer, _client) = peer_with(&budget).await;
    peer.hold(1);
    peer.kick(Bytes::from_static(b"bye"), ErrorCode::SlowConsumer);
    let counted = budget.used();
    assert_eq!(
        peer.release(1, vec![budget.track(Bytes::from_static(b"page"))]),
        Push::Closed
    );
    assert_eq!(budget.used(), counted, "the dropped answer's slot stayed");
    drop(peer);
    assert_eq!(budget.used(), 0);
}
