//! Hostile framing against the real server: oversized and empty length
//! headers, payloads that are not frames, and frames split or batched the way
//! TCP may deliver them.

mod common;

use std::io::Write;

use common::{frame_bytes, is_presence, kind, Client, Server};
use serde_json::json;

#[test]
fn max_length_header_gets_frame_too_large_then_close() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send_raw(&[0xFF, 0xFF, 0xFF, 0xFF]);
    let message = c.expect_error("frame_too_large");
    assert!(message.contains("4294967295"), "{message}");
    c.expect_closed();
}

#[test]
fn header_one_over_the_limit_closes_a_member_and_others_see_it_leave() {
    let server = Server::start(&["--max-frame-bytes", "2048"]);
    let mut watcher = server.join("watcher");
    let mut big = server.join("big");
    watcher.expect_kind("presence");
    // Exactly the limit is fine (the body is junk, so it is a bad frame)...
    let mut at_limit = vec![b'x'; 2048];
    at_limit[0] = b'{';
    big.send_payload(&at_limit);
    big.expect_error("bad_frame");
    // ...one byte more is not, and the body is never waited for.
    big.send_raw(&2049u32.to_be_bytes());
    big.expect_error("frame_too_large");
    big.expect_closed();
    let gone = watcher.recv_frame();
    assert!(is_presence(&gone, "big", "offline"), "{gone}");
}

#[test]
fn oversized_headers_with_junk_do_not_grow_the_server() {
    const CONNECTIONS: usize = 50;
    const JUNK: usize = 2 << 20;
    let server = Server::start(&[]);
    // Warm up: the runtime's threads and buffers exist before the baseline.
    let mut warm = server.join("warm");
    warm.ping_pong();
    let rss_before = server.rss_kib();
    let vm_before = server.vm_size_kib();

    // Every connection claims a 4 GiB frame and then sends 2 MiB of body.
    // Buffering those bodies would cost 100 MiB; reserving for the claimed
    // length, 4 GiB of address space per connection.
    let mut junk = vec![0xA5u8; JUNK + 4];
    junk[..4].copy_from_slice(&[0xFF; 4]);
    let mut clients: Vec<_> = (0..CONNECTIONS).map(|_| server.connect()).collect();
    for c in &mut clients {
        // The server closes as soon as it has read the header, so this
        // write may fail part-way with a reset or a broken pipe.
        let _ = c.stream().write_all(&junk);
    }
    let rss_grew = server.rss_kib().saturating_sub(rss_before);
    let vm_grew = server.vm_size_kib().saturating_sub(vm_before);
    assert!(
        rss_grew < 16 * 1024,
        "RSS grew by {rss_grew} KiB for {CONNECTIONS} oversized frames"
    );
    assert!(
        vm_grew < 1024 * 1024,
        "virtual size grew by {vm_grew} KiB: memory was reserved for a claimed length"
    );

    for c in &mut clients {
        // The error was sent before the server stopped reading, so it is
        // there even if our unread junk made the close a reset.
        match c.next() {
            common::Next::Frame(f) => {
                assert_eq!(f["code"], "frame_too_large", "{f}");
                c.expect_closed();
            }
            other => panic!("expected frame_too_large, got {other:?}"),
        }
    }
    // The server is still fine.
    warm.ping_pong();
}

#[test]
fn zero_length_gets_empty_frame_then_close() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send_raw(&[0, 0, 0, 0]);
    c.expect_error("empty_frame");
    c.expect_closed();
}

/// Payloads that are well framed but not frames, and a word the server's
/// explanation must contain.
const BAD_PAYLOADS: &[(&[u8], &str)] = &[
    (b"\xFF\xFE{\"type\":\"ping\"}", "UTF-8"),
    (b"hello there", "not JSON"),
    (b"{\"type\":\"join\",\"nick\":\"a\"", "not JSON"),
    (b"[1,2,3]", "not a JSON object"),
    (b"\"ping\"", "not a JSON object"),
    (b"{\"type\":\"dance\"}", "dance"),
    (b"{\"nick\":\"alice\"}", "type"),
    (b"{\"type\":\"join\"}", "nick"),
    (b"{\"type\":\"msg\"}", "text"),
    (b"{\"type\":\"join\",\"nick\":5}", "invalid type"),
    (
        b"{\"type\":\"msg\",\"text\":\"hi\",\"to\":\"bob\"}",
        "invalid type",
    ),
    (b"{\"type\":7}", "invalid type"),
];

#[test]
fn bad_payloads_get_bad_frame_and_the_connection_stays_usable() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    for (payload, says) in BAD_PAYLOADS {
        c.send_payload(payload);
        let message = c.expect_error("bad_frame");
        assert!(
            message.contains(says),
            "bad_frame for {:?} should mention {says:?}: {message}",
            String::from_utf8_lossy(payload)
        );
    }
    c.join("alice");
    // Still usable once joined, too.
    for (payload, _) in BAD_PAYLOADS {
        c.send_payload(payload);
        c.expect_error("bad_frame");
    }
    c.say("still here");
    let echo = c.expect_kind("msg");
    assert_eq!(echo["text"], "still here");
}

/// Write `frame` one byte per write, each sent at once (TCP_NODELAY).
fn dribble(client: &mut Client, frame: &serde_json::Value) {
    for byte in frame_bytes(frame.to_string().as_bytes()) {
        client.send_raw(&[byte]);
        client.stream().flush().expect("flush");
    }
}

#[test]
fn frame_written_one_byte_at_a_time_is_decoded() {
    let server = Server::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.connect();
    dribble(&mut bob, &json!({"type": "join", "nick": "bob"}));
    bob.expect_kind("welcome");
    bob.expect_kind("presence");
    assert!(is_presence(&alice.recv_frame(), "bob", "online"));
    // Multi-byte characters are split across writes too.
    let text = "slowly, byte by byte: é ✓ 🦀";
    dribble(&mut bob, &json!({"type": "msg", "text": text}));
    let got = alice.expect_kind("msg");
    assert_eq!(
        (got["from"].as_str(), got["text"].as_str()),
        (Some("bob"), Some(text))
    );
    assert_eq!(bob.expect_kind("msg")["text"], text);
}

#[test]
fn fifty_frames_in_one_write_are_decoded_in_order() {
    let server = Server::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.expect_kind("presence");
    let mut batch = Vec::new();
    for i in 0..50 {
        let frame = json!({"type": "msg", "text": format!("batch {i}")});
        batch.extend(frame_bytes(frame.to_string().as_bytes()));
    }
    bob.send_raw(&batch);
    for reader in [&mut bob, &mut alice] {
        let mut last_seq = 0;
        for i in 0..50 {
            let m = reader.recv_frame();
            assert_eq!(kind(&m), "msg", "{m}");
            assert_eq!(m["text"], format!("batch {i}"));
            let seq = m["seq"].as_u64().expect("seq");
            assert!(seq > last_seq, "seq went from {last_seq} to {seq}");
            last_seq = seq;
        }
    }
}

/// The most bytes the kernel may hold for a connection between a client's
/// writes and the server's reads: the server's receive buffer at its
/// largest (Linux's `tcp_rmem` maximum), its 8 KiB read chunk, and a MiB
/// in flight.
fn kernel_slack() -> usize {
    let rmem_max = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_rmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(32 << 20);
    rmem_max + (8 << 10) + (1 << 20)
}

/// A client kicked for its framing that keeps sending is closed once the
/// server has read 64 KiB more of it (to let it read the error), however
/// fast it sends: it was read and dropped for the whole half-second
/// linger, at loopback speed (1.6 GB, half a CPU-second, per kick).
#[test]
fn a_kicked_client_that_keeps_sending_is_closed_after_64_kib_more() {
    const DRAIN_BYTES: usize = 64 << 10;
    let server = Server::start(&[]);
    let mut c = server.connect();
    let send_buffer = 64 << 10;
    socket2::SockRef::from(c.stream())
        .set_send_buffer_size(send_buffer)
        .expect("SO_SNDBUF");
    let send_buffer = socket2::SockRef::from(c.stream())
        .send_buffer_size()
        .expect("SO_SNDBUF");
    c.send_raw(&[0, 0, 0, 0]);
    c.expect_error("empty_frame");
    // Whatever the client wrote was read by the server or sits in a
    // buffer of the kernel's on the way.
    let bound = DRAIN_BYTES + send_buffer + kernel_slack();
    let chunk = vec![0u8; 64 << 10];
    let mut written = 0usize;
    let mut stream = c.stream();
    let err = loop {
        match stream.write(&chunk) {
            Ok(n) => written += n,
            Err(e) => break e,
        }
        assert!(
            written <= bound,
            "{written} bytes written and the kicked connection is still read \
             (at most {DRAIN_BYTES} beyond the kernel's {} bytes)",
            bound - DRAIN_BYTES
        );
    };
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "the server stopped reading without closing, after {written} bytes: {err}"
    );
}
