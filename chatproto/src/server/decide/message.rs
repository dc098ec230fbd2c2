//! Deciding a `msg`: its id checked against the session's earlier ones
//! (a resend is answered `duplicate`, or refused again), its recipients
//! resolved all or nothing, its size bounded, and its event stamped.

use std::collections::HashSet;
use std::sync::Arc;

use super::{noun, MAX_ID_LEN};
use crate::frame::{ErrorCode, ServerFrame};
use crate::nick::{nick_key, normalize_nick};
use crate::server::config::LOBBY;
use crate::server::event::{room_name_ref, Event, EventBody, Recipient, SessionId};
use crate::server::{ClientId, Now, Server};

/// What a session did before with a message id it sends again.
enum Earlier {
    /// Its message went into this room with this seq.
    Sent(Arc<str>, u64),
    /// Its message was refused with this code.
    Refused(ErrorCode),
}

/// The message of the answer to a resend of the message with `id`,
/// refused before with `code`.
fn refused_before(id: &str, code: ErrorCode, room: &str) -> String {
    let why = match code {
        ErrorCode::NotInRoom => format!("you were not in #{room}"),
        _ => "a recipient was not online (or not in the room)".to_owned(),
    };
    format!(
        "your message with id {} was refused when you first sent it ({why}), and is not sent now; send it again to try again",
        crate::escape_control(id)
    )
}
impl Server {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn message(
        &mut self,
        now: Now,
        client: ClientId,
        sid: SessionId,
        room: Option<String>,
        to: Vec<String>,
        text: String,
        id: Option<String>,
    ) {
        let raw = room.as_deref().unwrap_or(LOBBY);
        let room = match room_name_ref(raw) {
            Ok(r) => r,
            Err(why) => return self.msg_error(client, ErrorCode::RoomInvalid, Some(raw), &id, why),
        };
        let room = &*room;
        let s = &self.sessions[&sid];
        if !s.rooms.contains_key(room) {
            let msg = format!("you are not in #{room}; enter it first");
            return self.refuse(client, sid, ErrorCode::NotInRoom, room, &id, msg);
        }
        if let Some(id) = &id {
            let n = id.chars().count();
            if n == 0 || n > MAX_ID_LEN {
                let msg = format!("bad frame: member `id`: {n} characters; use 1 to {MAX_ID_LEN}");
                return self.msg_error(client, ErrorCode::BadFrame, Some(room), &None, msg);
            }
            // Before `unavailable`: a message already delivered is
            // `duplicate` whether or not the store works now.
            match self.sent_before(sid, id) {
                // In a cluster, its first copy is still on its way through
                // the log (its seq is known once applied): answered then,
                // by that copy's echo, or `unavailable` if the log refuses
                // it; not `duplicate` now, with a seq no message has, for
                // a copy that may yet be refused.
                // Its answer keeps this frame's place: later frames' wait
                // behind it.
                Some(Earlier::Sent(_, 0)) if self.config.cluster => {
                    let cap = self.config.id_window.max(1);
                    if let Some(s) = self.sessions.get_mut(&sid) {
                        if s.resent.len() >= cap {
                            s.resent.pop_front();
                        }
                        s.resent.push_back((id.clone(), s.places));
                        s.places += 1;
                    }
                    return;
                }
                Some(Earlier::Sent(orig_room, seq)) => {
                    let frame = self.duplicate(id, &orig_room, seq);
                    return self.send(client, frame);
                }
                // Refused before, for what may have changed since: refused
                // again, or it would come after what was sent after it.
                Some(Earlier::Refused(code)) => {
                    let msg = refused_before(id, code, room);
                    let id = Some(id.clone());
                    return self.msg_error(client, code, Some(room), &id, msg);
                }
                None => {}
            }
        }
        if let Some(msg) = self.unavailable() {
            return self.msg_error(client, ErrorCode::Unavailable, Some(room), &id, msg);
        }
        let s = &self.sessions[&sid];
        // Checked before any lookup: the work per message is bounded by
        // this limit, not by how many names fit in a frame.
        let max = self.config.max_recipients;
        if to.len() > max {
            let recipients = noun(max, "recipient", "recipients");
            let msg = format!(
                "a message may name at most {max} {recipients} and this one names {}; nothing was delivered",
                to.len()
            );
            return self.msg_error(client, ErrorCode::TooManyRecipients, Some(room), &id, msg);
        }
        // Resolve every recipient before anything is sent: all or nothing.
        let mut recipients = Vec::with_capacity(to.len());
        // A set only pays for itself past a handful of names.
        let mut seen: HashSet<SessionId> = HashSet::new();
        let small = to.len() <= 16;
        let mut offline: Vec<&str> = Vec::new();
        let mut elsewhere: Vec<&str> = Vec::new();
        // Names no one could join as: said apart, so that the sender does
        // not wait for someone who can never come.
        let mut impossible: Vec<&str> = Vec::new();
        let mut missing_seen: HashSet<&str> = HashSet::new();
        let roster = self.config.cluster.then(|| self.rooms.get(room));
        for name in &to {
            // In a cluster, whoever the room's log says is in it, on any
            // server; otherwise this server's sessions.
            let found = match roster {
                Some(r) => r
                    .and_then(|r| lookup(&r.roster_keys, name).filter(|s| r.roster.contains_key(s)))
                    .map(|s| (s, true)),
                None => lookup(&self.by_key, name)
                    .map(|r| (r, self.sessions[&r].rooms.contains_key(room))),
            };
            match found {
                Some((r, true))
                    if (small && !recipients.iter().any(|x: &Recipient| x.session == r))
                        || (!small && seen.insert(r)) =>
                {
                    let listed = roster.flatten().and_then(|l| l.roster.get(&r));
                    let nick = self.sessions.get(&r).map(|s| &s.nick).or(listed);
                    if let Some(nick) = nick {
                        let nick = nick.clone();
                        recipients.push(Recipient { session: r, nick });
                    }
                }
                Some((_, true)) => {}
                Some((_, false)) if missing_seen.insert(name) => elsewhere.push(name),
                None if missing_seen.insert(name) => {
                    if normalize_nick(name, self.config.nick_rule).is_ok() {
                        offline.push(name);
                    } else {
                        impossible.push(name);
                    }
                }
                _ => {}
            }
        }
        if !offline.is_empty() || !elsewhere.is_empty() || !impossible.is_empty() {
            let list = |names: &[&str]| {
                names
                    .iter()
                    .map(|n| crate::escape_control(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mut parts = Vec::new();
            if !impossible.is_empty() {
                // Quoted: such a name may be empty, or hold a comma.
                let quoted: Vec<String> = impossible
                    .iter()
                    .map(|n| format!("\"{}\"", crate::escape_control(n).replace('"', "\\\"")))
                    .collect();
                parts.push(format!(
                    "not a nickname anyone can have: {}",
                    quoted.join(", ")
                ));
            }
            if !offline.is_empty() {
                parts.push(format!("not online: {}", list(&offline)));
            }
            if !elsewhere.is_empty() {
                parts.push(format!("not in #{room}: {}", list(&elsewhere)));
            }
            let msg = format!("{}; nothing was delivered", parts.join("; "));
            return self.refuse(client, sid, ErrorCode::UnknownNick, room, &id, msg);
        }
        // The session's rooms are all held (a room is forgotten only when
        // nobody is in it); a slip is `not_in_room`, not a panic.
        let Some(r) = self.rooms.get(room) else {
            let msg = format!("you are not in #{room}; enter it first");
            return self.msg_error(client, ErrorCode::NotInRoom, Some(room), &id, msg);
        };
        let cluster = self.config.cluster;
        let event = Event::new(
            Arc::clone(&r.name),
            if cluster { 0 } else { r.next_seq },
            now.wall,
            EventBody::Msg {
                from: sid,
                nick: s.nick.clone(),
                to: recipients,
                text,
                id,
            },
        );
        // Its largest copy (a replay, with the id) must fit a frame, and one
        // history page must be able to hold it.
        let max = self.config.max_frame_bytes - crate::server::answers::FRAME_OVERHEAD;
        // Counted exactly only when a cheap bound (every byte of text and
        // id escaped to six) does not already show that it fits.
        let len = if wire_bound(&event) <= max {
            0
        } else {
            wire_len(&event)
        };
        let id = event.msg_id();
        if len > max {
            let msg = format!("the message would be {len} bytes once stamped, over the limit of {max}; send a shorter text");
            let id = id.map(str::to_owned);
            return self.msg_error(client, ErrorCode::MsgTooLarge, Some(room), &id, msg);
        }
        let r = self.rooms.get_mut(room).expect("checked above");
        if !cluster {
            r.next_seq += 1;
        }
        if let Some(id) = id {
            let cap = self.config.id_window;
            let s = self.sessions.get_mut(&sid).expect("joined");
            s.ids.insert(id, &r.name, &r.epoch, event.seq, cap);
        }
        self.queue_event(event);
    }

    /// The room and seq of the message `sid` sent with `id`, if the
    /// session remembers it and its room still has the history it went
    /// into. An id stands for its message in that history: a room
    /// forgotten (not resting in the store) or begun again under another
    /// epoch took the message with it, and the seq (which the room begun
    /// again gives to other messages), so such an id is forgotten here
    /// and the message it comes with now is a new one (PROTOCOL.md §5.4).
    /// An id not remembered as sent may be one refused before
    /// ([`Earlier::Refused`]).
    fn sent_before(&mut self, sid: SessionId, id: &str) -> Option<Earlier> {
        let ids = &self.sessions.get(&sid)?.ids;
        let Some(sent) = ids.get(id) else {
            return ids.refused(id).map(Earlier::Refused);
        };
        // A shared log's room is never forgotten and keeps the epoch the
        // log gave it (which an id remembered before it came lacks).
        let stands = self.config.cluster || {
            let epoch = match self.rooms.get(&*sent.room) {
                Some(r) => Some(r.epoch.as_str()),
                None => self.unloaded.get(&sent.room).map(|(_, e)| e),
            };
            epoch.is_some_and(|e| ids.epoch_key(e) == sent.epoch)
        };
        if stands {
            return Some(Earlier::Sent(Arc::clone(&sent.room), sent.seq));
        }
        // Forgotten, not only passed over: remembered again for the new
        // message, its id is the newest in the window, not where the old
        // one was.
        self.sessions.get_mut(&sid)?.ids.forget(id);
        None
    }

    /// The answer to a `msg` whose `id` the session already used for the
    /// message `seq` of `room`.
    pub(crate) fn duplicate(&self, id: &str, room: &str, seq: u64) -> ServerFrame {
        ServerFrame::Error {
            code: ErrorCode::Duplicate,
            message: self.fit(format!(
                "you already sent a message with id {} (seq {seq}); it was not sent again",
                crate::escape_control(id)
            )),
            id: Some(id.to_owned()),
            room: Some(room.to_owned()),
            seq: Some(seq),
        }
    }
}

/// The session online as `name`, compared as [`nick_key`] does. An ASCII
/// name is folded on the stack: most are, and a lookup per recipient
/// should not allocate.
fn lookup(by_key: &crate::server::ids::StrMap<SessionId>, name: &str) -> Option<SessionId> {
    const SHORT: usize = 4 * crate::nick::MAX_NICK_LEN;
    if name.is_ascii() && name.len() <= SHORT {
        let mut buf = [0u8; SHORT];
        let key = &mut buf[..name.len()];
        key.copy_from_slice(name.as_bytes());
        key.make_ascii_lowercase();
        // Lower-casing ASCII bytes leaves UTF-8 valid.
        return by_key.get(std::str::from_utf8(key).ok()?).copied();
    }
    by_key.get(&nick_key(name)).copied()
}

/// An upper bound of [`wire_len`], without serializing.
pub(crate) fn wire_bound(event: &Event) -> usize {
    // Member names, punctuation, two 20-digit numbers and `replay`.
    const FIXED: usize = 160;
    match &event.body {
        EventBody::Msg {
            nick, to, text, id, ..
        } => {
            FIXED
                + 6 * (event.room.len()
                    + nick.len()
                    + text.len()
                    + id.as_ref().map_or(0, String::len)
                    + to.iter().map(|r| r.nick.len() + 1).sum::<usize>())
        }
        EventBody::Presence { nick, .. } => FIXED + 6 * (event.room.len() + nick.len()),
    }
}

/// The length of `event`'s largest copy on the wire (the sender's replay,
/// with its id and `replay`).
pub(crate) fn wire_len(event: &Event) -> usize {
    // Writing to a counter cannot fail; a failure would count as too large.
    crate::codec::json_len(&event.wire(true, true)).unwrap_or(usize::MAX)
}
