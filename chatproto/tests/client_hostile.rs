//! The client core against a broken or hostile server: what the `client`
//! fuzz target (`chatproto::testkit::check_client_ops`) found, each kept
//! as a test that fails without its fix.

use chatproto::{
    Client, ClientEvent, ClientFrame, ClientOutput, ErrorCode, ServerFrame, DEFAULT_MAX_FRAME_BYTES,
};

/// A `welcome` that announces no limits (as a v1 server's).
fn welcome_without_limits(resumed: bool) -> ServerFrame {
    ServerFrame::welcome("alice", 0, vec![], Some("t".into()), Some(resumed), None)
}

/// The texts of the messages `c` has to send, and the errors it reported
/// (code and message id).
fn sent_and_refused(c: &mut Client) -> (Vec<String>, Vec<(ErrorCode, Option<String>)>) {
    let (mut sent, mut refused) = (Vec::new(), Vec::new());
    while let Some(out) = c.poll() {
        match out {
            ClientOutput::Send(ClientFrame::Msg { text, .. }) => sent.push(text),
            ClientOutput::Event(ClientEvent::Error { code, id, .. }) => refused.push((code, id)),
            _ => {}
        }
    }
    (sent, refused)
}

/// A server whose `welcome` announces no limits takes the protocol's
/// default: a message longer than that is given up with `msg_too_large`
/// when sent, not handed to a shell that cannot encode it (it waited for
/// an echo for ever, and went again after every reconnect).
#[test]
fn a_message_over_the_default_limit_is_given_up_when_the_server_announced_none() {
    let mut c = Client::new("alice", &["lobby"], "a-");
    c.handle_connected(0);
    c.handle_frame(0, welcome_without_limits(false));
    while c.poll().is_some() {}
    let big = c.send_msg("lobby", vec![], "x".repeat(DEFAULT_MAX_FRAME_BYTES));
    c.send_msg("lobby", vec![], "fits");
    let (sent, refused) = sent_and_refused(&mut c);
    assert_eq!(sent, ["fits"]);
    assert_eq!(refused, [(ErrorCode::MsgTooLarge, Some(big.clone()))]);
    assert!(!c.is_unacknowledged(&big));
}

/// The same for a message written while offline, at the `welcome` of a
/// server that announces no limits.
#[test]
fn a_pending_message_over_the_default_limit_is_given_up_at_a_welcome_without_limits() {
    let mut c = Client::new("alice", &["lobby"], "a-");
    let big = c.send_msg("lobby", vec![], "x".repeat(DEFAULT_MAX_FRAME_BYTES));
    c.send_msg("lobby", vec![], "fits");
    c.handle_connected(0);
    c.handle_frame(0, welcome_without_limits(true));
    let (sent, refused) = sent_and_refused(&mut c);
    assert_eq!(sent, ["fits"]);
    assert_eq!(refused, [(ErrorCode::MsgTooLarge, Some(big.clone()))]);
    assert_eq!(c.unacknowledged(), 1);
}
