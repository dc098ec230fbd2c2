//! What the client-core tests share.

use chatproto::{Client, ClientEvent, ClientFrame, ClientOutput, ErrorCode};

/// The texts of the messages `c` has to send, and the errors it reported
/// (code and message id).
pub fn sent_and_refused(c: &mut Client) -> (Vec<String>, Vec<(ErrorCode, Option<String>)>) {
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
