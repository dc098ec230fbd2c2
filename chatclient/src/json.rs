//! `--json`: one JSON object per line on stdout, for programs.
//!
//! Three kinds of object, each with `"type"` first and `"local_time"` (the
//! local time the client printed it, RFC 3339 with milliseconds and the
//! offset) last:
//!
//! * every frame the server sent, exactly as the wire has it (PROTOCOL.md
//!   section 4): `msg`, `presence`, `error`, `ping`, ...;
//! * one outcome per input line, in input order: `sent`, `refused`,
//!   `done`, `skipped`, `unconfirmed` (see [`outcome`]);
//! * the client's own notes: `info` (what a person would read, e.g.
//!   reconnecting) and `client_error` (a frame the client could not parse).
//!
//! README.md ("Line mode for scripts and bots") describes the format.

use chatproto::ServerFrame;

use crate::ledger::{LineOutcome, OutcomeKind};
use crate::render::Line;

/// Now, as the `local_time` member: `2025-06-01T12:01:02.345+02:00`.
pub fn local_time() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// A frame the server sent, as its JSON with `local_time` added; but a
/// `welcome` without its `session` token, which would let whoever reads
/// the output take over the session (the server keeps only its hash).
pub fn frame(frame: &ServerFrame, time: &str) -> String {
    let mut redacted;
    let frame = match frame {
        ServerFrame::Welcome {
            session: Some(_), ..
        } => {
            redacted = frame.clone();
            if let ServerFrame::Welcome { session, .. } = &mut redacted {
                *session = None;
            }
            &redacted
        }
        other => other,
    };
    let mut text = serde_json::to_string(frame).unwrap_or_else(|e| {
        // Serialising a frame that was just parsed cannot fail.
        Object::new("client_error")
            .str("code", "bad_frame")
            .str("message", &format!("cannot print a frame: {e}"))
            .0
    });
    // Every frame is an object: add the member before its closing brace.
    if text.ends_with('}') {
        text.pop();
        if !text.ends_with('{') {
            text.push(',');
        }
        text.push_str("\"local_time\":");
        text.push_str(&quote(time));
        text.push('}');
    }
    text
}

/// An input line's outcome:
///
/// ```json
/// {"type":"sent","line":1,"id":"1f2e3d4c-1","room":"lobby","seq":7,"local_time":"..."}
/// {"type":"refused","line":2,"id":"1f2e3d4c-2","code":"unknown_nick","message":"...","local_time":"..."}
/// {"type":"done","line":3,"command":"join","local_time":"..."}
/// {"type":"skipped","line":4,"local_time":"..."}
/// {"type":"unconfirmed","line":5,"id":"1f2e3d4c-3","room":"lobby","local_time":"..."}
/// ```
///
/// `refused` has `"id": null` when the client refused the line itself.
pub fn outcome(o: &LineOutcome, time: &str) -> String {
    let obj = match &o.kind {
        OutcomeKind::Sent { id, room, seq } => Object::new("sent")
            .num("line", o.line)
            .str("id", id)
            .str("room", room)
            .opt_num("seq", *seq),
        OutcomeKind::Refused { id, code, message } => Object::new("refused")
            .num("line", o.line)
            .opt_str("id", id.as_deref())
            .str("code", code)
            .str("message", message),
        OutcomeKind::Done { command } => Object::new("done")
            .num("line", o.line)
            .str("command", command),
        OutcomeKind::Skipped => Object::new("skipped").num("line", o.line),
        OutcomeKind::Unconfirmed { id, room } => Object::new("unconfirmed")
            .num("line", o.line)
            .str("id", id)
            .str("room", room),
    };
    obj.end(time)
}

/// A line the client would show a person, when it is not already a frame
/// or an outcome: its notes (`info`) and its own errors (`client_error`).
/// Messages, presence and notices are `None`: their frames are printed.
pub fn note(line: &Line, time: &str) -> Option<String> {
    match line {
        Line::Info(text)
        | Line::Entered { text, .. }
        | Line::Left { text, .. }
        | Line::HistoryNote { text, .. } => Some(Object::new("info").str("text", text).end(time)),
        Line::HistoryGone { room } => Some(
            Object::new("info")
                .str("text", &crate::render::history_gone(room))
                .end(time),
        ),
        Line::HistoryStart {
            room, older_gone, ..
        } => Some(
            Object::new("info")
                .str("text", &crate::render::history_start(room, *older_gone))
                .end(time),
        ),
        Line::Gap { room, filled } => Some(
            Object::new("info")
                .str("text", &crate::render::gap(room, *filled))
                .end(time),
        ),
        Line::WhileAway { room, joined, left } => {
            let text = crate::render::while_away_text(joined, left);
            let text = match room {
                Some(room) => format!("[#{room}] {text}"),
                None => text,
            };
            Some(Object::new("info").str("text", &text).end(time))
        }
        Line::Error { code, message } => Some(
            Object::new("client_error")
                .str("code", code)
                .str("message", message)
                .end(time),
        ),
        Line::Msg { .. } | Line::Presence { .. } | Line::Notice { .. } => None,
    }
}

/// A JSON string literal (escapes every control character, so one object
/// is always one line).
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// A JSON object written member by member, in order.
struct Object(String);

impl Object {
    fn new(kind: &str) -> Object {
        Object(format!("{{\"type\":{}", quote(kind)))
    }

    fn key(mut self, key: &str) -> Object {
        self.0.push(',');
        self.0.push_str(&quote(key));
        self.0.push(':');
        self
    }

    fn str(self, key: &str, value: &str) -> Object {
        let mut o = self.key(key);
        o.0.push_str(&quote(value));
        o
    }

    fn opt_str(self, key: &str, value: Option<&str>) -> Object {
        match value {
            Some(v) => self.str(key, v),
            None => {
                let mut o = self.key(key);
                o.0.push_str("null");
                o
            }
        }
    }

    fn num(self, key: &str, value: u64) -> Object {
        let mut o = self.key(key);
        o.0.push_str(&value.to_string());
        o
    }

    fn opt_num(self, key: &str, value: Option<u64>) -> Object {
        match value {
            Some(v) => self.num(key, v),
            None => {
                let mut o = self.key(key);
                o.0.push_str("null");
                o
            }
        }
    }

    fn end(self, time: &str) -> String {
        let mut o = self.str("local_time", time);
        o.0.push('}');
        o.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2025-06-01T12:01:02.345+02:00";

    #[test]
    fn a_frame_is_its_wire_json_with_the_local_time() {
        let f = ServerFrame::msg(
            Some("lobby".into()),
            7,
            "bob",
            vec![],
            "tab\t\"q\" \u{1b}[31m\nnext",
            1,
            None,
        );
        let wire = serde_json::to_string(&f).unwrap();
        let line = frame(&f, T);
        assert!(!line.contains('\n'));
        assert_eq!(
            line,
            format!("{},\"local_time\":\"{T}\"}}", &wire[..wire.len() - 1])
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["type"], "msg");
        assert_eq!(v["text"], "tab\t\"q\" \u{1b}[31m\nnext");
        assert_eq!(v["local_time"], T);
        let welcome = ServerFrame::welcome(
            "alice",
            0,
            vec![],
            Some("0123456789abcdef0123456789abcdef".into()),
            Some(false),
            None,
        );
        assert_eq!(
            frame(&welcome, T),
            format!(
                r#"{{"type":"welcome","nick":"alice","seq":0,"online":[],"resumed":false,"local_time":"{T}"}}"#
            ),
            "the token is left out"
        );
        let ping = frame(&ServerFrame::Ping, T);
        assert_eq!(
            ping,
            format!("{{\"type\":\"ping\",\"local_time\":\"{T}\"}}")
        );
    }

    #[test]
    fn outcomes() {
        let o = |line, kind| outcome(&LineOutcome { line, kind }, T);
        assert_eq!(
            o(
                1,
                OutcomeKind::Sent {
                    id: "x-1".into(),
                    room: "lobby".into(),
                    seq: Some(7)
                }
            ),
            format!(
                r#"{{"type":"sent","line":1,"id":"x-1","room":"lobby","seq":7,"local_time":"{T}"}}"#
            )
        );
        assert_eq!(
            o(
                2,
                OutcomeKind::Refused {
                    id: None,
                    code: "input".into(),
                    message: "unknown command /nope".into()
                }
            ),
            format!(
                r#"{{"type":"refused","line":2,"id":null,"code":"input","message":"unknown command /nope","local_time":"{T}"}}"#
            )
        );
        assert_eq!(
            o(3, OutcomeKind::Done { command: "join" }),
            format!(r#"{{"type":"done","line":3,"command":"join","local_time":"{T}"}}"#)
        );
        assert_eq!(
            o(4, OutcomeKind::Skipped),
            format!(r#"{{"type":"skipped","line":4,"local_time":"{T}"}}"#)
        );
        let v: serde_json::Value = serde_json::from_str(&o(
            5,
            OutcomeKind::Unconfirmed {
                id: "x-2".into(),
                room: "rust".into(),
            },
        ))
        .unwrap();
        assert_eq!(v["type"], "unconfirmed");
        assert_eq!(v["line"], 5);
    }

    #[test]
    fn notes() {
        assert_eq!(
            note(&Line::Info("a \"b\"".into()), T).unwrap(),
            format!(r#"{{"type":"info","text":"a \"b\"","local_time":"{T}"}}"#)
        );
        assert!(note(&Line::Notice { text: "x".into() }, T).is_none());
        let away = Line::WhileAway {
            room: Some("rust".into()),
            joined: vec!["carol".into()],
            left: vec!["dave".into()],
        };
        assert_eq!(
            note(&away, T).unwrap(),
            format!(
                r#"{{"type":"info","text":"[#rust] while you were away: carol joined; dave left","local_time":"{T}"}}"#
            )
        );
    }
}
