//! The client's state after joining, with no I/O: who is online, how many
//! sent messages still wait for their reply, and what each input or frame
//! means for the screen and the socket.
//!
//! Inputs are method calls (`handle_frame`, `handle_command`,
//! `handle_input_end`); their effects are pushed as [`Action`]s for the shell
//! in `net.rs` to carry out, in order.

use std::collections::BTreeMap;

use chatproto::{ClientFrame, PresenceStatus, ServerFrame};

use crate::input::{Command, HELP};
use crate::render::Line;

/// Something the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Show a line.
    Print(Line),
    /// Send a frame to the server.
    Send(ClientFrame),
    /// Stop: the session is over.
    Exit(End),
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The user left and every message sent got its reply.
    Left,
    /// The server ended the session: a fatal error (code, message), or
    /// `None` when it just closed the connection.
    Dropped(Option<(String, String)>),
}

/// Who is online: display nick by case-folded key, since `Alice` and
/// `alice` are one person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    nicks: BTreeMap<String, String>,
}

impl Roster {
    /// Record `nick` as online.
    pub fn add(&mut self, nick: &str) {
        self.nicks
            .insert(nick.to_ascii_lowercase(), nick.to_owned());
    }

    /// Record `nick` as gone.
    pub fn remove(&mut self, nick: &str) {
        self.nicks.remove(&nick.to_ascii_lowercase());
    }

    /// The nicks online, sorted ignoring case.
    pub fn list(&self) -> Vec<&str> {
        self.nicks.values().map(String::as_str).collect()
    }
}

/// The state of a joined client.
#[derive(Debug)]
pub struct Session {
    nick: String,
    roster: Roster,
    /// Messages sent whose echo or error has not arrived yet. The server
    /// answers every `msg` exactly once, in order.
    in_flight: usize,
    /// Stdin is finished (EOF or `/quit`): exit once `in_flight` is 0.
    input_done: bool,
    max_frame_bytes: usize,
}

impl Session {
    /// A session that joined as `nick` (as the server spelled it in
    /// `welcome`) with `online` in the room.
    pub fn new(nick: String, online: &[String], max_frame_bytes: usize) -> Self {
        let mut roster = Roster::default();
        for n in online {
            roster.add(n);
        }
        Session {
            nick,
            roster,
            in_flight: 0,
            input_done: false,
            max_frame_bytes,
        }
    }

    /// Messages sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether input has ended (EOF or `/quit`).
    pub fn input_done(&self) -> bool {
        self.input_done
    }

    fn is_me(&self, nick: &str) -> bool {
        nick.eq_ignore_ascii_case(&self.nick)
    }

    fn reply_arrived(&mut self, out: &mut Vec<Action>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.exit_if_done(out);
    }

    fn exit_if_done(&self, out: &mut Vec<Action>) {
        if self.input_done && self.in_flight == 0 {
            out.push(Action::Exit(End::Left));
        }
    }

    /// A frame arrived from the server.
    pub fn handle_frame(&mut self, frame: ServerFrame, out: &mut Vec<Action>) {
        match frame {
            ServerFrame::Msg { from, to, text, .. } => {
                let mine = self.is_me(&from);
                out.push(Action::Print(Line::Msg { from, to, text }));
                if mine {
                    self.reply_arrived(out);
                }
            }
            ServerFrame::Presence { nick, status, .. } => {
                let online = status == PresenceStatus::Online;
                if online {
                    self.roster.add(&nick);
                } else {
                    self.roster.remove(&nick);
                }
                out.push(Action::Print(Line::Presence { nick, online }));
            }
            ServerFrame::Online { nicks, .. } => {
                for n in &nicks {
                    self.roster.add(n);
                }
            }
            ServerFrame::Error { code, message, .. } => {
                let line = (code.as_str().to_owned(), message);
                if code.is_fatal() {
                    out.push(Action::Exit(End::Dropped(Some(line))));
                } else {
                    out.push(Action::Print(Line::Error {
                        code: line.0,
                        message: line.1,
                    }));
                    // Every error after joining answers one of our messages:
                    // we send nothing else that the server can refuse.
                    self.reply_arrived(out);
                }
            }
            ServerFrame::Ping => out.push(Action::Send(ClientFrame::Pong)),
            ServerFrame::Notice { text } => out.push(Action::Print(Line::Notice { text })),
            ServerFrame::Pong | ServerFrame::Welcome { .. } => {}
            // A frame kind added by a newer server: nothing to show.
            _ => {}
        }
    }

    /// The user typed a line that parsed to `cmd`.
    pub fn handle_command(&mut self, cmd: Command, out: &mut Vec<Action>) {
        if self.input_done {
            return;
        }
        match cmd {
            Command::Send { to, text } => {
                let frame = ClientFrame::msg(to, text);
                // Refuse locally what the server would refuse for size, so a
                // pasted novel does not cost a round trip.
                match chatproto::encode(&frame, self.max_frame_bytes) {
                    Ok(_) => {
                        self.in_flight += 1;
                        out.push(Action::Send(frame));
                    }
                    Err(e) => out.push(Action::Print(Line::Error {
                        code: "msg_too_large".into(),
                        message: format!("not sent: {e}"),
                    })),
                }
            }
            Command::Who => {
                let list = self.roster.list();
                out.push(Action::Print(Line::Info(format!(
                    "online ({}): {}",
                    list.len(),
                    list.join(", ")
                ))));
            }
            Command::Help => {
                for line in HELP {
                    out.push(Action::Print(Line::Info((*line).to_owned())));
                }
            }
            Command::Quit => self.handle_input_end(out),
            Command::Nothing => {}
            Command::Invalid(why) => out.push(Action::Print(Line::Error {
                code: "input".into(),
                message: why,
            })),
        }
    }

    /// Stdin ended or the user typed `/quit`: leave once every message sent
    /// has been answered, so nothing typed is lost.
    pub fn handle_input_end(&mut self, out: &mut Vec<Action>) {
        if !self.input_done {
            self.input_done = true;
            self.exit_if_done(out);
        }
    }

    /// The server closed the connection.
    pub fn handle_closed(&mut self, out: &mut Vec<Action>) {
        out.push(Action::Exit(End::Dropped(None)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatproto::ErrorCode;

    fn session() -> Session {
        Session::new("alice".into(), &["alice".into(), "Bob".into()], 65536)
    }

    fn echo(from: &str, text: &str) -> ServerFrame {
        ServerFrame::Msg {
            room: None,
            seq: 1,
            from: from.into(),
            to: vec![],
            text: text.into(),
            ts: 0,
            id: None,
            replay: false,
        }
    }

    fn run(s: &mut Session, f: impl FnOnce(&mut Session, &mut Vec<Action>)) -> Vec<Action> {
        let mut out = Vec::new();
        f(s, &mut out);
        out
    }

    #[test]
    fn roster_follows_welcome_online_and_presence() {
        let mut s = session();
        run(&mut s, |s, o| {
            s.handle_frame(
                ServerFrame::Online {
                    room: None,
                    nicks: vec!["carol".into()],
                },
                o,
            )
        });
        run(&mut s, |s, o| {
            s.handle_frame(
                ServerFrame::Presence {
                    room: None,
                    seq: 2,
                    nick: "dave".into(),
                    status: PresenceStatus::Online,
                    ts: 0,
                },
                o,
            )
        });
        let out = run(&mut s, |s, o| {
            s.handle_frame(
                ServerFrame::Presence {
                    room: None,
                    seq: 3,
                    nick: "bob".into(),
                    status: PresenceStatus::Offline,
                    ts: 0,
                },
                o,
            )
        });
        assert_eq!(
            out,
            vec![Action::Print(Line::Presence {
                nick: "bob".into(),
                online: false
            })]
        );
        assert_eq!(s.roster.list(), vec!["alice", "carol", "dave"]);
        let out = run(&mut s, |s, o| s.handle_command(Command::Who, o));
        assert_eq!(
            out,
            vec![Action::Print(Line::Info(
                "online (3): alice, carol, dave".into()
            ))]
        );
    }

    #[test]
    fn eof_waits_for_every_reply() {
        let mut s = session();
        for text in ["one", "two"] {
            let out = run(&mut s, |s, o| {
                s.handle_command(
                    Command::Send {
                        to: vec![],
                        text: text.into(),
                    },
                    o,
                )
            });
            assert!(matches!(&out[..], [Action::Send(ClientFrame::Msg { .. })]));
        }
        assert_eq!(s.in_flight(), 2);
        assert!(run(&mut s, |s, o| s.handle_input_end(o)).is_empty());
        // Someone else's message is not our reply.
        let out = run(&mut s, |s, o| s.handle_frame(echo("bob", "x"), o));
        assert!(!out.contains(&Action::Exit(End::Left)));
        let out = run(&mut s, |s, o| s.handle_frame(echo("alice", "one"), o));
        assert!(!out.contains(&Action::Exit(End::Left)));
        // A non-fatal error is the reply to the second one.
        let out = run(&mut s, |s, o| {
            s.handle_frame(ServerFrame::error(ErrorCode::UnknownNick, "no dave"), o)
        });
        assert_eq!(out.last(), Some(&Action::Exit(End::Left)));
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn quit_with_nothing_in_flight_exits_at_once() {
        let mut s = session();
        let out = run(&mut s, |s, o| s.handle_command(Command::Quit, o));
        assert_eq!(out, vec![Action::Exit(End::Left)]);
        // Input after /quit is ignored.
        let out = run(&mut s, |s, o| {
            s.handle_command(
                Command::Send {
                    to: vec![],
                    text: "late".into(),
                },
                o,
            )
        });
        assert!(out.is_empty());
    }

    #[test]
    fn fatal_errors_end_the_session_and_pings_are_answered() {
        let mut s = session();
        let out = run(&mut s, |s, o| s.handle_frame(ServerFrame::Ping, o));
        assert_eq!(out, vec![Action::Send(ClientFrame::Pong)]);
        let out = run(&mut s, |s, o| {
            s.handle_frame(ServerFrame::error(ErrorCode::SlowConsumer, "too slow"), o)
        });
        assert_eq!(
            out,
            vec![Action::Exit(End::Dropped(Some((
                "slow_consumer".into(),
                "too slow".into()
            ))))]
        );
    }

    #[test]
    fn oversized_text_is_refused_locally() {
        let mut s = Session::new("alice".into(), &[], 1024);
        let out = run(&mut s, |s, o| {
            s.handle_command(
                Command::Send {
                    to: vec![],
                    text: "x".repeat(2000),
                },
                o,
            )
        });
        assert!(
            matches!(&out[..], [Action::Print(Line::Error { code, .. })] if code == "msg_too_large")
        );
        assert_eq!(s.in_flight(), 0);
    }
}
