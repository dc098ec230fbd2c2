//! Deciding a `join`: the nickname checked, a session begun or resumed
//! (taking over its connection if that is still open), its `welcome`
//! queued and the rooms it lists entered.

use std::sync::Arc;

use super::noun;
use crate::frame::ErrorCode;
use crate::nick::{nick_key, nick_skeleton, nick_taken_message, normalize_nick};
use crate::server::config::LOBBY;
use crate::server::durable::TokenHash;
use crate::server::event::SessionId;
use crate::server::session::{EnterRequest, Session};
use crate::server::timers::Timer;
use crate::server::{ClientId, Now, Server, Step};

/// The answer to a `join` that needs a new session when every session id
/// is used up (only a store reserving the last ones gets there).
const SESSIONS_USED_UP: &str =
    "this server can begin no new session: its session ids are used up (resuming a session still works)";

impl Server {
    pub(super) fn join(
        &mut self,
        now: Now,
        client: ClientId,
        nick: String,
        rooms: Option<Vec<String>>,
        resume: Option<String>,
    ) {
        // The normalized form is the nickname from here on: stored, shown
        // and compared.
        let nick = match normalize_nick(&nick, self.config.nick_rule) {
            Ok(n) => n,
            Err(e) => return self.error(client, ErrorCode::NickInvalid, e.to_string()),
        };
        let key = nick_key(&nick);
        let hash = resume.as_deref().map(crate::server::durable::hash_token);
        // A connection that has ended takes nothing over (see
        // `handle_last_frame`).
        let ended = self.conns.get(&client).is_some_and(|c| c.ended);
        let took_over = !ended
            && hash
                .as_ref()
                .is_some_and(|hash| self.take_over(now, hash, &key));
        if let Some(other) = self.by_key.get(&key) {
            let taken = self.sessions.get(other).map_or("", |s| &s.nick);
            let msg = nick_taken_message(&nick, taken);
            return self.error(client, ErrorCode::NickTaken, msg);
        }
        let skeleton = nick_skeleton(&nick);
        if let Some(other) = self.by_skeleton.get(&skeleton) {
            let like = self.sessions.get(other).map_or("", |s| &s.nick);
            let msg = format!(
                "the nickname {nick} looks too much like {like}, who is online; choose another"
            );
            return self.error(client, ErrorCode::NickInvalid, msg);
        }
        // Continue the session named by `resume` if it ended in time (or
        // just now, taken over: even with a resume window of 0) and was
        // this nickname's; otherwise a fresh session, not an error.
        let resumable = hash
            .and_then(|h| self.tokens.get(&h))
            .copied()
            .filter(|sid| {
                let s = &self.sessions[sid];
                s.conn.is_none()
                    && s.key == key
                    && (took_over
                        || s.ended_at.is_some_and(|t| {
                            now.mono < t.saturating_add(self.config.resume_window_ms)
                        }))
            });
        let (sid, resumed) = match resumable {
            Some(sid) => {
                let s = self
                    .sessions
                    .get_mut(&sid)
                    .expect("token of a live session");
                s.conn = Some(client);
                s.ended_at = None;
                // A session restored from a store knows only the hash.
                if let Some(token) = resume {
                    s.token = token;
                }
                // The same person may come back spelled differently (ВОВ
                // for вов): a different look-alike class, to release later.
                s.nick = Arc::from(nick.as_str());
                s.skeleton = skeleton.clone();
                (sid, true)
            }
            None => {
                // `u64::MAX` is never given (nor restored): with it next,
                // the ids are used up, and numbering on from 0 would give
                // a new session the id of one a store restored.
                if self.next_session == u64::MAX {
                    return self.error(client, ErrorCode::Unavailable, SESSIONS_USED_UP);
                }
                let sid = SessionId(self.next_session);
                self.next_session += 1;
                let token = self.token();
                let token_hash = crate::server::durable::hash_token(&token);
                self.tokens.insert(token_hash, sid);
                self.sessions.insert(
                    sid,
                    Session::new(
                        token,
                        token_hash,
                        &nick,
                        key.clone(),
                        skeleton.clone(),
                        Some(client),
                        None,
                    ),
                );
                (sid, false)
            }
        };
        self.by_key.insert(key, sid);
        self.by_skeleton.insert(skeleton, sid);
        if let Some(c) = self.conns.get_mut(&client) {
            c.session = Some(sid);
        }
        self.timers.arm(
            now.mono.saturating_add(self.config.idle_ping_ms),
            Timer::Idle(client),
        );
        let v1 = rooms.is_none();
        let mut rooms = rooms.unwrap_or_else(|| vec![LOBBY.to_owned()]);
        // No more names are tried than a session may be in rooms: those
        // after are answered by one error, not one each (a frame full of
        // names would otherwise be answered by a frame per name).
        let max = self.config.max_rooms_per_client;
        let left_out = rooms.len().saturating_sub(max);
        rooms.truncate(max);
        let lobby = rooms.iter().any(|r| r.eq_ignore_ascii_case(LOBBY));
        if resumed {
            self.record_attached(sid, true);
        } else {
            self.record_session(sid);
        }
        // Said once, by the resume that follows the close.
        let closed_for = self.closed_for.remove(&sid).filter(|_| resumed);
        self.steps.push_back(Step::Welcome {
            client,
            lobby,
            resumed,
            closed_for,
        });
        for room in rooms {
            self.enter(now, client, sid, &room, EnterRequest { v1, since: None });
        }
        if left_out > 0 {
            let msg = format!(
                "a join may list at most {max} {}: the {left_out} after them were not entered",
                noun(max, "room", "rooms")
            );
            self.msg_error(client, ErrorCode::TooManyRooms, None, &None, msg);
        }
        // What the join listed and entered (a refused enter of lobby is no
        // lobby), decided now: a `part` of lobby handled before the
        // welcome is polled does not unmake the join's lobby.
        let entered = self
            .sessions
            .get(&sid)
            .is_some_and(|me| me.rooms.contains_key(LOBBY));
        if !entered {
            self.welcome_without_lobby(client);
        }
    }

    /// A resume names a session whose connection is still open: the
    /// client lost that connection without the server noticing (Wi-Fi
    /// gone, a laptop asleep, a NAT that forgot it), or another copy of
    /// the client holds the token. The token proves the right to the
    /// session, so the newer connection wins: the older one is closed
    /// with `resumed_elsewhere` and its session waits to be resumed, as
    /// after any disconnect. Only for the same nickname (by identity), as
    /// any resume. Whether it closed one.
    fn take_over(&mut self, now: Now, token: &TokenHash, key: &str) -> bool {
        let Some(old) = self.live_conn_of(token, Some(key)) else {
            return false;
        };
        self.close_with(now, old, crate::server::resumed_elsewhere());
        true
    }
}
