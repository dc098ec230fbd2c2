//! After a connection is lost: waiting as the backoff says, then dialing
//! again, while input is still taken (lines typed meanwhile are sent once
//! back) and the user may still leave.

use tokio::time::{sleep_until, Instant};

use super::{apply, dial, in_flight_room, input, may_read_input, show_held, stop};
use super::{Clock, Config, Link, Outcome, HELD_INPUT};
use crate::console::InputEvent;
use crate::error::JoinError;
use crate::reconnect::{jitter, Retries, RESTART_WINDOW};
use crate::render::Line;
use crate::session::{Action, Session};
use crate::ui::Ui;

/// Reconnect attempts that may find our nickname still held by our own
/// session before that counts as someone else having it: with the default
/// backoff, the fifth comes 8 to 15 s after the loss. A server that still
/// has our lost connection open hands the session over to the resume (and
/// closes that connection with `resumed_elsewhere`); but in a cluster whose
/// node died with our connection, the other nodes free its nicknames only
/// about 3 s later.
const NICK_HELD_ATTEMPTS: u32 = 5;

/// After losing the connection (`why`; `planned`: after the server's
/// `notice`, a restart): wait, try again, as [`Retries`] says. Input is
/// still taken meanwhile: lines typed are sent once back, and the user
/// may still leave.
pub(super) async fn reconnect(
    config: &Config,
    clock: &Clock,
    session: &mut Session,
    console: &mut impl Ui,
    why: String,
    planned: bool,
) -> Result<Link, Outcome> {
    let attempts = config.backoff.attempts;
    if attempts == 0 {
        return Err(Outcome::Lost(why));
    }
    let lost_at = Instant::now();
    let mut retries = Retries::new(config.backoff, planned);
    let mut first = true;
    let mut last = why;
    // The reason last said, so that a failure like the one before says
    // only that it failed again.
    let mut said = String::new();
    while let Some(next) = retries.next(lost_at.elapsed(), jitter()) {
        let attempt = next.attempt;
        let secs = next.delay.as_secs_f64();
        // The first line says the connection went, and why (closed, a ping
        // not answered, a read failed); the next ones that the last try
        // failed, and why (a server still down, one refusing connections
        // for a while: `server_full`). The steady tries after a restart
        // say only a new reason: one line a second would bury the rest.
        let note = if first {
            first = false;
            if next.steady {
                format!(
                    "connection lost ({last}, saying it was stopping: a restart?); reconnecting \
                     in {secs:.1} s, then about every second for up to {} s (attempt 1 of {attempts})",
                    RESTART_WINDOW.as_secs()
                )
            } else {
                format!(
                    "connection lost ({last}); reconnecting in {secs:.1} s (attempt 1 of {attempts})"
                )
            }
        } else if said == last {
            if next.steady {
                String::new()
            } else {
                format!(
                    "reconnecting failed again; trying again in {secs:.1} s (attempt {attempt} of {attempts})"
                )
            }
        } else {
            said.clone_from(&last);
            format!(
                "reconnecting failed ({last}); trying again in {secs:.1} s (attempt {attempt} of {attempts})"
            )
        };
        // What the session said of the loss first: it comes before it
        // (leavings seen before it; what a page fetched before it, whose
        // page of one to tell the rest will not come). Then the state:
        // the full-screen client shows what is said while the connection
        // is down in every room's view.
        if let Some(Action::Exit) = apply(session, console, None, config.max_frame_bytes).await {
            return Err(Outcome::Left);
        }
        console.update(session).await;
        if !note.is_empty() {
            console.print(&Line::Info(note)).await;
        }
        let at = Instant::now() + next.delay;
        // Bounded by `at`; input only shortens it.
        loop {
            if let Some(Action::Exit) = apply(session, console, None, config.max_frame_bytes).await
            {
                return Err(Outcome::Left);
            }
            // A pipe is read only once the rooms are entered again (its
            // `/history` or `/rooms` would be refused as not connected),
            // as while dialing.
            let may_read_input = may_read_input(session) && session.reads_while_dialing();
            let (events, stop_signal) = console.input();
            tokio::select! {
                () = sleep_until(at) => break,
                event = events.recv(), if may_read_input => {
                    if let Some(outcome) = input(session, console, event) {
                        return Err(outcome);
                    }
                }
                () = stop_signal.recv() => {
                    if let Some(outcome) = stop(session) {
                        return Err(outcome);
                    }
                }
            }
        }

        // The handshake borrows the session: hold what is typed meanwhile.
        let mut held = Vec::new();
        let mut typed = Vec::new();
        let mut reading = may_read_input(session) && session.reads_while_dialing();
        // Each line held may be a message: no more than keep those not
        // acknowledged within the cap once they are handed over.
        let held_most = HELD_INPUT.min(in_flight_room(session));
        let mut stopped = session.stopping();
        let mut stop_now = false;
        let result = {
            let dialing = dial(config, clock, session, &mut held);
            tokio::pin!(dialing);
            let (events, stop_signal) = console.input();
            loop {
                tokio::select! {
                    result = &mut dialing => break result,
                    () = stop_signal.recv() => {
                        // A second signal leaves at once.
                        if stopped {
                            stop_now = true;
                            break Err(JoinError::Closed);
                        }
                        stopped = true;
                    }
                    event = events.recv(), if reading && typed.len() < held_most => {
                        match event {
                            Some(InputEvent::Interrupted) => return Err(Outcome::Interrupted),
                            Some(
                                InputEvent::Line(_)
                                | InputEvent::TooLong(_)
                                | InputEvent::Older(_)
                                | InputEvent::LetGo(..)
                                | InputEvent::Cut(..),
                            ) => {
                                typed.push(event)
                            }
                            Some(InputEvent::End) | None => {
                                reading = false;
                                typed.push(event);
                            }
                        }
                    }
                }
            }
        };
        if stop_now {
            return Err(Outcome::Left);
        }
        if stopped && !session.stopping() {
            session.handle_stop();
        }
        if show_held(console, held).await {
            if let Ok(link) = result {
                link.close(true).await;
            }
            return Err(Outcome::Left);
        }
        let link = match result {
            Ok(link) => Some(link),
            // Our own session may still hold the nickname: in a cluster,
            // its node died and the others free its nicknames within
            // seconds (a live server hands a session to its token at
            // once). The session resumes once it is free: try again, for
            // a while.
            Err(
                e @ JoinError::NickRefused {
                    code: "nick_taken", ..
                },
            ) if attempt < attempts.min(NICK_HELD_ATTEMPTS) => {
                session.handle_disconnected();
                console
                    .print(&Line::Info(
                        "the nickname is still held, perhaps by this session on a server \
                         that went down (a cluster frees it within seconds)"
                            .to_owned(),
                    ))
                    .await;
                last = e.to_string();
                None
            }
            // Trying again would not help: someone has the nickname, or
            // the server now shows a certificate we do not trust.
            Err(e @ (JoinError::NickRefused { .. } | JoinError::Untrusted { .. })) => {
                return Err(Outcome::Refused(e))
            }
            Err(e) => {
                session.handle_disconnected();
                last = e.to_string();
                None
            }
        };
        // Typed while the connection was down.
        session.set_typed_offline(true);
        for event in typed {
            if let Some(outcome) = input(session, console, event) {
                session.set_typed_offline(false);
                return Err(outcome);
            }
        }
        session.set_typed_offline(false);
        if let Some(link) = link {
            return Ok(link);
        }
    }
    Err(Outcome::Lost(format!(
        "lost the connection to {} and gave up after {attempts} {} to reconnect; the last: {last}",
        config.addr,
        if attempts == 1 { "attempt" } else { "attempts" }
    )))
}
