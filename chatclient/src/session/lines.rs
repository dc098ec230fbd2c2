//! The lines the session shows and their wording: the `[#room]` prefix,
//! information and errors, sizes, counts and names.

use super::{Action, Session};
use crate::render::Line;

/// How many names a line about a room lists before it says "and N more".
pub(super) const NAMES_SHOWN: usize = 10;

/// How many characters of a refused message the line mode quotes with
/// its refusal, to tell which line it was (see [`Session::with_quote`]).
pub(super) const QUOTED_CHARS: usize = 40;

impl Session {
    /// `room` for a `[#room]` prefix: `None` when it is the current room
    /// (unless every room is named, or the lines are for a program: with
    /// `--json` there is no current room to read a line against).
    pub(super) fn other(&self, room: &str) -> Option<String> {
        let named = self.every_room_named || self.mode.echo_frames;
        (named || self.current.as_deref() != Some(room)).then(|| room.to_owned())
    }

    pub(super) fn print(&mut self, line: Line) {
        // Input read ahead (a pipe, a file): what a line says waits for the
        // lines before it to be answered (a message's echo), or `/who` on
        // line 4 would be read before line 1's message. A person at a
        // terminal sees each answer as it comes.
        if self.mode.wait_for_rooms {
            if let Some(at) = self.ledger.open_behind() {
                self.held.push_back((at, line));
                return;
            }
        }
        self.out.push_back(Action::Print(line));
    }

    pub(super) fn info(&mut self, text: String) {
        self.print(Line::Info(text));
    }

    /// The frame about to be handled answers message `id`: in the line
    /// mode, its line is kept, quoted, for the refusal's line
    /// ([`quoted`](Session::quoted)), while the core still holds it.
    pub(super) fn keep_quote(&mut self, id: &str) {
        if self.every_room_named || self.mode.echo_frames {
            return;
        }
        let quote = self
            .client
            .pending()
            .find(|p| p.id == id)
            .map(|p| self.with_quote(String::new(), p.room, p.to, p.text));
        if let Some(quote) = quote {
            self.quotes.push((id.to_owned(), quote));
        }
    }

    /// `message`, the server's refusal of message `id`, followed by the
    /// quote of its line kept by [`keep_quote`](Session::keep_quote), if
    /// any.
    pub(super) fn quoted(&mut self, id: Option<&str>, mut message: String) -> String {
        let at = id.and_then(|id| self.quotes.iter().position(|(q, _)| q == id));
        if let Some(at) = at {
            message.push_str(&self.quotes.swap_remove(at).1);
        }
        message
    }

    /// `message`, a refusal of the message of `text` to `to` in `room`,
    /// said with which line it was, as the web page says it: `; your
    /// line: ` and its start as it could be typed again ([`as_typed`],
    /// escaped: its first [`QUOTED_CHARS`] characters of that, `…` when
    /// cut; `#room: ` first when it is not the current room). Many lines refused in a row for one reason (a
    /// server's store down: `unavailable`) read apart. Only in the line
    /// mode: the full-screen client puts the line back into the input,
    /// or says it with `Up brings it back`; nor with `--json`, whose
    /// frames and outcomes say which line it was (no refusal there is
    /// quoted).
    pub(super) fn with_quote(
        &self,
        mut message: String,
        room: &str,
        to: &[String],
        text: &str,
    ) -> String {
        if self.every_room_named || self.mode.echo_frames {
            return message;
        }
        let typed = as_typed(room, to, text);
        let here = self.current.as_deref() == Some(room);
        let prefix = format!("#{}: ", chatproto::escape_control(room));
        let typed = match here {
            true => typed.strip_prefix(&prefix).unwrap_or(&typed),
            false => &typed,
        };
        message.push_str("; your line: ");
        match typed.char_indices().nth(QUOTED_CHARS) {
            Some((cut, _)) => {
                message.push_str(typed[..cut].trim_end());
                message.push('…');
            }
            None => message.push_str(typed),
        }
        message
    }

    /// The line being handled fails: its outcome says why (and, unless
    /// the outcomes are the output, a line shows it).
    pub(super) fn error(&mut self, code: &str, message: String) {
        self.ledger.fail(code, &message);
        if !self.mode.echo_frames {
            self.print(Line::Error {
                code: code.to_owned(),
                message,
            });
        }
    }
}

/// Why a message of `bytes` bytes (as sent: its text, escaped where
/// JSON must) is not sent when the server takes at most `most` (see
/// `Session::max_text_bytes`), in plain words, with the numbers the
/// full-screen client's too-long mark shows.
pub(super) fn too_long(bytes: usize, most: usize) -> String {
    format!(
        "not sent: the message is {} bytes; the server takes at most {}",
        grouped(bytes),
        grouped(most)
    )
}

/// `n` with its thousands separated by commas: `70,000`.
pub(crate) fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// A message as it could be typed again to send the same: `#lobby: hi`,
/// `#lobby: @bob @carol: hi` (recipients end at a `:`, so a text of its
/// own starting with `:` keeps it), `#lobby: //me` (a text to everyone
/// starting with `/` is escaped as `//`, not taken for a command). Its
/// parts are escaped ([`chatproto::escape_control`]): they come from the
/// network or a paste.
pub(crate) fn as_typed(room: &str, to: &[String], text: &str) -> String {
    use chatproto::escape_control;
    let mut out = format!("#{}: ", escape_control(room));
    if to.is_empty() {
        if text.starts_with('/') {
            out.push('/');
        }
    } else {
        let to: Vec<String> = to
            .iter()
            .map(|n| format!("@{}", escape_control(n)))
            .collect();
        out.push_str(&to.join(" "));
        out.push_str(": ");
    }
    out.push_str(&escape_control(text));
    out
}

/// What to say on stderr, as the client ends, of messages `how` (`typed`,
/// `sent`) and never confirmed: how many, and each as it could be typed
/// again (room, recipients, text), those that may have arrived (written
/// to a connection, no answer) apart from those that never left the
/// client (typed while it was offline, or left before the client sent
/// them): they did not arrive. `None` when
/// there are none.
pub(crate) fn unconfirmed_report<'a>(
    how: &str,
    pending: impl Iterator<Item = (&'a str, &'a [String], &'a str, bool)>,
) -> Option<String> {
    let (maybe, never): (Vec<_>, Vec<_>) = pending.partition(|p| p.3);
    let mut report = String::new();
    for (group, said) in [
        (
            &maybe,
            "not confirmed by the server and may not have arrived",
        ),
        (&never, "never sent from this client"),
    ] {
        let n = group.len();
        if n == 0 {
            continue;
        }
        report.push_str(&format!(
            "chatclient: {} {how} {} {said}; to send again:\n",
            plural(n, "message"),
            if n == 1 { "was" } else { "were" },
        ));
        for (room, to, text, _) in group {
            report.push_str("  ");
            report.push_str(&as_typed(room, to, text));
            report.push('\n');
        }
    }
    (!report.is_empty()).then_some(report)
}

/// `3 missed messages`, `1 missed message`.
pub(crate) fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// `count` online, the first [`NAMES_SHOWN`] of them named from `first`:
/// `3 online: alice, bob and 1 more` (`first` may hold fewer than
/// `count`, as an online list's first part does).
pub(super) fn names_of(count: usize, first: &[String]) -> String {
    let shown: Vec<&str> = first
        .iter()
        .take(NAMES_SHOWN.min(count))
        .map(String::as_str)
        .collect();
    let mut text = format!("{count} online: {}", shown.join(", "));
    if count > shown.len() {
        text.push_str(&format!(" and {} more", count - shown.len()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::testkit::*;
    use chatproto::{ClientFrame, ErrorCode, ServerFrame};

    fn unavailable(id: &str, room: &str) -> ServerFrame {
        ServerFrame::error_v2(
            ErrorCode::Unavailable,
            "the history store is not answering; not sent, try again",
            Some(id.into()),
            Some(room.into()),
            None,
        )
    }

    /// Lines refused one after another for one reason (the store down)
    /// each say which line they were: its start as typed, `#room: ` first
    /// when it is not the current room's. (They read alike: `! unavailable:
    /// ...` N times.) The full-screen client, which puts the line back or
    /// names it itself, has the server's words alone.
    #[test]
    fn a_refused_message_says_which_line_it_was() {
        let mut s = joined(&["lobby", "rust"]);
        line(&mut s, "/join lobby");
        let long = "a line long enough to be cut before its end, which is not quoted";
        let mut ids = Vec::new();
        for typed in ["first", "@bob hi", long] {
            ids.push(the_id(&line(&mut s, typed).sent));
        }
        let id_rust = {
            line(&mut s, "/join rust");
            let id = the_id(&line(&mut s, "in rust").sent);
            line(&mut s, "/join lobby");
            id
        };
        let shown: Vec<String> = ids
            .iter()
            .map(|id| unavailable(id, "lobby"))
            .chain([unavailable(&id_rust, "rust")])
            .flat_map(|f| frame(&mut s, f).lines)
            .collect();
        let why = "! unavailable: the history store is not answering; not sent, try again";
        assert_eq!(
            shown,
            [
                format!("{why}; your line: first"),
                format!("{why}; your line: @bob: hi"),
                format!("{why}; your line: a line long enough to be cut before its…"),
                format!("{why}; your line: #rust: in rust"),
            ]
        );

        let mut s = joined(&["lobby"]);
        s.name_every_room();
        let id = the_id(&line(&mut s, "first").sent);
        let shown = frame(&mut s, unavailable(&id, "lobby")).lines;
        assert!(
            matches!(&shown[..], [l] if l.ends_with("try again")),
            "{shown:?}"
        );
        assert!(matches!(
            line(&mut s, "x").sent[..],
            [ClientFrame::Msg { .. }]
        ));
    }

    #[test]
    fn too_long_in_plain_words() {
        assert_eq!(
            too_long(70_000, 65_462),
            "not sent: the message is 70,000 bytes; the server takes at most 65,462"
        );
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
