//! Nickname claims in cluster mode: a join (and what its client sends
//! after it) waits for its claim, goes to the core or is refused when the
//! claim comes back, and clients whose claim another node freed are closed.

use std::collections::VecDeque;

use chatproto::{ClientFrame, ClientId, ErrorCode, Now, ServerFrame, SessionId};
use tracing::{info, warn};

use super::{Claim, Hub, ToHub};
use crate::cluster::{ClaimError, Claimed, TAKEN_FOR_DEAD};

impl Hub {
    /// Cluster mode: hold `input` if its client waits for a nickname
    /// claim, or if it is a join (whose claim starts now); otherwise give
    /// it back to be handled.
    pub(super) fn park(&mut self, input: ToHub) -> Option<ToHub> {
        let id = match &input {
            ToHub::Frame(id, _)
            | ToHub::LastFrame(id, _)
            | ToHub::BadFrame(id, _)
            | ToHub::Progress(id)
            | ToHub::End(id)
            | ToHub::Gone(id) => *id,
            _ => return Some(input),
        };
        let c = self.cluster.as_mut()?;
        if let Some(queue) = c.parked.get_mut(&id) {
            queue.push_back(input);
            return None;
        }
        let (ToHub::Frame(_, ClientFrame::Join { nick, resume, .. })
        | ToHub::LastFrame(_, ClientFrame::Join { nick, resume, .. })) = &input
        else {
            return Some(input);
        };
        // A join read with its connection's end takes no open connection
        // over (`Server::handle_last_frame`), here or on another node.
        let take_over = matches!(input, ToHub::Frame(..));
        if self.server.nick(id).is_some() {
            return Some(input);
        }
        // A nickname the core would refuse is refused by the core.
        let Ok(nick) = chatproto::normalize_nick(nick, self.server.config().nick_rule) else {
            return Some(input);
        };
        let key = chatproto::nick_key(&nick);
        let skeleton = chatproto::nick_skeleton(&nick);
        let resume = resume.as_deref().map(chatproto::hash_token);
        c.link.claim(id, nick, key, skeleton, resume, take_over);
        c.parked.insert(id, VecDeque::from([input]));
        None
    }

    /// A join's nickname claim came back: the join goes to the core (or
    /// is refused here), then what the client sent meanwhile, in order.
    pub(super) fn claimed(&mut self, now: Now, claimed: Claimed) {
        let Some(c) = &mut self.cluster else { return };
        let client = claimed.client;
        let Some(mut queue) = c.parked.remove(&client) else {
            if let Ok((key, rev)) = claimed.claim {
                c.link.release(key, rev);
            }
            return;
        };
        let join = queue.pop_front();
        // Handled or refused here: answered with the turn.
        if matches!(join, Some(ToHub::Frame(..) | ToHub::LastFrame(..))) {
            self.reads_taken.push(client);
        }
        // The nickname as the join gave it, named beside the one online
        // when it is taken in another spelling.
        let asked = match &join {
            Some(
                ToHub::Frame(_, ClientFrame::Join { nick, .. })
                | ToHub::LastFrame(_, ClientFrame::Join { nick, .. }),
            ) => chatproto::normalize_nick(nick, self.server.config().nick_rule).ok(),
            _ => None,
        };
        let refusal = match claimed.claim {
            Ok((key, rev)) => {
                if let Some((sid, nick, hash)) = claimed.session {
                    // Begun on another node: known here from now on, and
                    // whatever that node said of it in rooms is over.
                    match self.server.restore_session(now, sid, &nick, hash) {
                        // It was here before: this node has it already.
                        Ok(()) | Err(chatproto::RestoreError::SessionKnown { .. }) => {}
                        Err(why) => warn!(
                            reason = %why,
                            "a session begun on another node was not taken in here"
                        ),
                    }
                    self.forget_elsewhere(now, sid);
                }
                match join {
                    Some(ToHub::Frame(id, frame)) => self.server.handle_frame(now, id, frame),
                    Some(ToHub::LastFrame(id, frame)) => {
                        self.server.handle_last_frame(now, id, frame)
                    }
                    _ => {}
                }
                let token = self.server.token_hash_of(client);
                let c = self.cluster.as_mut().expect("checked above");
                if self.server.nick(client).is_some() {
                    let claim = Claim {
                        key,
                        revision: rev,
                        token,
                    };
                    c.claims.insert(client, claim);
                } else {
                    c.link.release(key, rev);
                }
                None
            }
            Err(ClaimError::Taken {
                nick, same: true, ..
            }) => Some(ServerFrame::error(
                ErrorCode::NickTaken,
                chatproto::nick_taken_message(asked.as_deref().unwrap_or(&nick), &nick),
            )),
            Err(ClaimError::Taken {
                nick, same: false, ..
            }) => Some(ServerFrame::error(
                ErrorCode::NickInvalid,
                format!("that nickname looks too much like {nick}, who is online; choose another"),
            )),
            Err(ClaimError::Leaving) => Some(ServerFrame::error(
                ErrorCode::Unavailable,
                "your session is still leaving its rooms on the server it was connected to; \
                 try again in a moment"
                    .to_owned(),
            )),
            Err(ClaimError::Unreachable(e)) => Some(ServerFrame::error(
                ErrorCode::Unavailable,
                format!("the server cannot reach its cluster ({e}); try again later"),
            )),
        };
        if let Some(frame) = refusal {
            // As the core's refusals are logged (dispatch): this one is
            // sent past it.
            if let ServerFrame::Error { code, .. } = &frame {
                info!(client = %client, code = %code, "join refused");
            }
            self.send_now(client, &frame);
        }
        self.dispatch(now);
        for input in queue {
            self.handle(now, input);
            self.dispatch(now);
        }
    }

    /// A client of this node left (its connection ended): its nickname
    /// claim is given up once its departures from its rooms, just
    /// proposed, are stored. Given up at once, it let the session resume
    /// on another node and enter a room there before the departure of
    /// its entering here was stored: stored after it, that departure took
    /// the session out of the room on every node, without a word to it.
    /// Meanwhile a takeover asked here is told the session is leaving
    /// (the asker claims again until the claim is gone).
    pub(super) fn release_once_left(&mut self, now: Now, claim: Claim) {
        let Claim {
            key,
            revision,
            token,
        } = claim;
        // The departures go to the publisher before the barrier below.
        self.dispatch(now);
        let Some(c) = &self.cluster else { return };
        let link = std::sync::Arc::clone(&c.link);
        let stored = link.stored_so_far();
        if let Some(token) = token {
            link.set_leaving(token, true);
        }
        tokio::spawn(async move {
            // An error: the publisher is gone (this node stops), and
            // nothing of this node's is stored any more.
            let _ = stored.await;
            link.release_now(&key, revision).await;
            if let Some(token) = token {
                link.set_leaving(token, false);
            }
        });
    }

    /// Another node freed these clients' nicknames while this one was
    /// held up and seemed dead (and said they left their rooms): each
    /// still holding that claim is closed, and resumes by reconnecting,
    /// here or elsewhere, if its nickname is still free. Two people never
    /// hold one nickname, and a session is never in a room on this node
    /// while every other node has it gone.
    pub(super) fn claims_lost(&mut self, clients: &[ClientId]) {
        let Some(c) = &mut self.cluster else { return };
        // Each claim is given up as well (expecting its revision, so a
        // newer owner's is never touched): read back wrongly as gone, it
        // would otherwise hold the nickname for as long as this run lives.
        let lost: Vec<ClientId> = clients
            .iter()
            .filter(|id| match c.claims.remove(id) {
                Some(claim) => {
                    c.link.release(claim.key, claim.revision);
                    true
                }
                None => false,
            })
            .copied()
            .collect();
        for id in lost {
            if let (Some(c), Some(session)) = (&self.cluster, self.server.session_id_of(id)) {
                c.link.session_gone(session);
            }
            let nick = self.server.nick(id).unwrap_or("(not joined)").to_owned();
            warn!(client = %id, nick, "this node seemed dead to the others, which freed this client's nickname; closing it");
            self.close_with(id, ErrorCode::Unavailable, TAKEN_FOR_DEAD.to_owned());
        }
    }

    /// Another node said that `session`, connected here, left a room
    /// where this node had said it entered: that node took this one for
    /// dead (its heartbeat looked silent, whether or not it was) and
    /// freed the session's nickname. The session is out of the room on
    /// every node, so its client would hear nothing more there: it is
    /// closed, as when its claim is found gone, and its claim given up
    /// (if the other node has not already); it resumes by reconnecting
    /// and enters its rooms again from where it was. The other claims
    /// are read back too, for clients in no room.
    pub(super) fn said_gone_elsewhere(&mut self, session: SessionId) {
        // Closed already (said gone in another room first, say).
        let Some(client) = self.server.connection_of(session) else {
            return;
        };
        if self.kicked.contains(&client) {
            return;
        }
        let Some(c) = &mut self.cluster else { return };
        if let Some(claim) = c.claims.remove(&client) {
            c.link.release(claim.key, claim.revision);
        }
        c.link.session_gone(session);
        c.check_claims();
        let nick = self
            .server
            .nick(client)
            .unwrap_or("(not joined)")
            .to_owned();
        warn!(client = %client, nick, "another node said this client left a room: it took this node for dead; closing it");
        self.close_with(client, ErrorCode::Unavailable, TAKEN_FOR_DEAD.to_owned());
    }
}
