//! The frames' `Debug`: each frame as its JSON, with a session token
//! left out.

use serde::Serialize;

use super::{ClientFrame, ServerFrame};

/// `frame` as its JSON (as it goes on the wire): the `Debug` of both
/// kinds of frame, given one whose session token, if it had one, is
/// replaced.
fn debug_json(
    f: &mut std::fmt::Formatter<'_>,
    kind: &str,
    frame: &impl Serialize,
) -> std::fmt::Result {
    let json = serde_json::to_string(frame).map_err(|_| std::fmt::Error)?;
    write!(f, "{kind}({json})")
}

/// What a frame's `Debug` shows for a session token.
const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for ClientFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientFrame::Join {
                nick,
                rooms,
                resume: Some(_),
            } => {
                let shown = ClientFrame::Join {
                    nick: nick.clone(),
                    rooms: rooms.clone(),
                    resume: Some(REDACTED.to_owned()),
                };
                debug_json(f, "ClientFrame", &shown)
            }
            _ => debug_json(f, "ClientFrame", self),
        }
    }
}

impl std::fmt::Debug for ServerFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerFrame::Welcome {
                session: Some(_), ..
            } => {
                let mut shown = self.clone();
                if let ServerFrame::Welcome { session, .. } = &mut shown {
                    *session = Some(REDACTED.to_owned());
                }
                debug_json(f, "ServerFrame", &shown)
            }
            _ => debug_json(f, "ServerFrame", self),
        }
    }
}
