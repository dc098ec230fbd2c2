//! What the shell checks of everything the client does: each frame it
//! sends, each event it reports, the state it holds after every drain,
//! and each server frame decoded round trip.

use std::collections::BTreeSet;

use bytes::BytesMut;

use super::{Shell, ROOMS};
use crate::{
    encode, ClientEvent, ClientFrame, Decoded, FrameDecoder, ServerFrame, CLIENT_MAX_ROSTER,
    DEFAULT_MAX_FRAME_BYTES, HEADER_LEN, MAX_NICK_LEN, MIN_MAX_FRAME_BYTES,
};

impl Shell {
    pub(super) fn check_send(&mut self, frame: ClientFrame) {
        assert!(
            self.connected,
            "a frame to send with no connection: {frame:?}"
        );
        if !self.joined_here {
            assert!(
                matches!(
                    frame,
                    ClientFrame::Join { .. } | ClientFrame::Ping | ClientFrame::Pong
                ),
                "{frame:?} before the welcome"
            );
        }
        let wire = encode(&frame, u32::MAX as usize).expect("a client frame encodes");
        let payload = &wire[HEADER_LEN..];
        assert_eq!(
            ClientFrame::from_payload(payload),
            crate::parse_payload::<ClientFrame>(payload),
            "the plain-frame scanner agrees with serde"
        );
        let mut again = BytesMut::from(&wire[..]);
        let back = FrameDecoder::new(payload.len()).decode::<ClientFrame>(&mut again);
        assert_eq!(back, Decoded::Frame(frame.clone()), "round trip");
        let has = |room: &str| self.client.rooms().any(|r| r == room);
        // Parted while its messages wait: entered again on a new
        // connection to resend them (see `Client::part`).
        let parting = |room: &str| self.client.footprint().parting.contains(&room);
        let paced = self
            .client
            .limits()
            .is_some_and(|l| l.rate.is_some() || l.rate_bytes.is_some());
        match &frame {
            ClientFrame::Msg { id, room, .. } => {
                let id = id.as_deref().expect("the client's messages carry ids");
                assert!(self.client.is_unacknowledged(id), "{id} sent, not pending");
                // Else a server could have the client send its messages
                // again and again, a frame of its own bringing them all.
                assert!(
                    self.sent_here.insert(id.to_owned()),
                    "{id} sent twice on one connection"
                );
                let room = room.as_deref().unwrap_or(crate::LOBBY);
                assert!(self.asked.contains(room), "a message to #{room}");
                // The limit the server announced (as `encode` takes it), or
                // the protocol's default from a server that announced none.
                let limit = self.client.limits().map_or(DEFAULT_MAX_FRAME_BYTES, |l| {
                    usize::try_from(l.max_frame_bytes)
                        .unwrap_or(usize::MAX)
                        .clamp(MIN_MAX_FRAME_BYTES, crate::CLIENT_MAX_FRAME_BYTES)
                });
                assert!(
                    payload.len() <= limit,
                    "a message frame of {} bytes sent to a server that takes {limit}",
                    payload.len()
                );
            }
            // As the room stands when the frame goes; under a rate it may
            // have waited for the pacer (in order, as a slow network would
            // hold it), and the room changed meanwhile.
            ClientFrame::Enter { room, .. } if !paced => {
                assert!(has(room) || parting(room), "enter of #{room}, not ours")
            }
            ClientFrame::Part { room } if !paced => {
                assert!(!has(room), "part of #{room}, still ours")
            }
            ClientFrame::Join { nick, .. } => assert_eq!(nick, self.client.nick()),
            _ => {}
        }
    }

    pub(super) fn check_event(&mut self, e: ClientEvent) {
        let has = |room: &str| self.client.rooms().any(|r| r == room);
        match e {
            ClientEvent::Joined { .. } => {
                assert!(self.connected && self.client.is_joined());
                self.joined_here = true;
            }
            ClientEvent::Refused { .. } => assert!(!self.client.is_joined()),
            ClientEvent::Entered { room, .. } => {
                assert!(has(&room), "entered #{room}, not ours");
                self.last_seq.remove(&room);
            }
            ClientEvent::Presence { room, .. } => assert!(has(&room), "presence in #{room}"),
            ClientEvent::Message {
                room, seq, mine, ..
            } => {
                if has(&room) {
                    let last = self.last_seq.entry(room.clone()).or_insert(0);
                    // Reported once: seqs rise (0 is never a message's).
                    assert!(seq > *last, "#{room}: message {seq} after {last}");
                    *last = seq;
                } else {
                    assert!(mine, "a message of #{room}, not ours, not mine");
                }
            }
            ClientEvent::History { events, .. } => {
                for e in events {
                    assert!(matches!(e, ClientEvent::Message { .. }), "{e:?} in a page");
                }
            }
            ClientEvent::Error { id: Some(id), .. } => {
                assert!(
                    !self.client.is_unacknowledged(&id),
                    "{id} refused, still pending"
                );
            }
            ClientEvent::Dead => {
                assert!(self.connected, "dead with no connection");
                self.gone();
            }
            _ => {}
        }
    }

    pub(super) fn check_state(&mut self) {
        let fp = self.client.footprint();
        assert_eq!(fp.queued, 0, "outputs left after draining");
        let rooms: BTreeSet<&str> = self.client.rooms().collect();
        for r in rooms
            .iter()
            .chain(&fp.entering)
            .chain(&fp.held)
            .chain(&fp.parting)
        {
            assert!(self.asked.contains(*r), "#{r} held, never asked for");
        }
        for r in &fp.parting {
            assert!(!rooms.contains(r), "#{r} both ours and parting");
        }
        for r in &fp.held {
            assert!(
                rooms.contains(r) || fp.parting.contains(r),
                "#{r} held, neither ours nor parting"
            );
        }
        assert_eq!(
            self.client.poll_timeout().is_some(),
            self.connected,
            "a timer without a connection, or none with one"
        );
        for r in ROOMS {
            let version = self.client.roster_version(r);
            let roster: Vec<String> = self
                .client
                .roster(r)
                .into_iter()
                .map(str::to_owned)
                .collect();
            assert_eq!(
                version == 0,
                !rooms.contains(&*r.to_ascii_lowercase()),
                "#{r}'s roster version is 0 exactly when it is not ours"
            );
            if let Some((was, before)) =
                self.rosters.insert(r.to_owned(), (version, roster.clone()))
            {
                assert!(
                    version != was || roster == before,
                    "#{r}'s roster changed from {before:?} to {roster:?} under one version"
                );
            }
        }
        for r in &rooms {
            let roster = self.client.roster(r);
            assert!(
                roster.len() <= CLIENT_MAX_ROSTER,
                "#{r}'s roster is over its cap"
            );
            for n in roster {
                let chars = n.chars().count();
                assert!(
                    chars <= MAX_NICK_LEN,
                    "#{r}'s roster keeps a name of {chars} characters"
                );
            }
        }
        // Pending: sent by the shell, oldest first, none twice.
        let mut sent = self.sent.iter();
        for p in self.client.pending() {
            assert!(sent.any(|s| s == p.id), "{} pending out of order", p.id);
        }
        // Nothing the server says is kept more than a few times over
        // (case folding makes a key up to three times its name).
        let bound = 1024 + self.client_bytes + 8 * self.server_bytes;
        assert!(fp.bytes <= bound, "the client holds {} bytes", fp.bytes);
    }
}

/// A frame the decoder made re-encodes within the limit it came in under
/// (the canonical form is the shortest) and decodes to the same frame.
pub(super) fn check_server_round_trip(frame: &ServerFrame, max: usize) {
    let wire = encode(frame, max).expect("a decoded server frame re-encodes within its limit");
    let mut again = BytesMut::from(&wire[..]);
    let back = FrameDecoder::new(max).decode::<ServerFrame>(&mut again);
    assert_eq!(
        back,
        Decoded::Frame(frame.clone()),
        "server frame round trip"
    );
}
