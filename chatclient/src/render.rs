//! How each event is shown: one line of text, with or without colour.
//!
//! Every nickname and text that came from the network passes through
//! [`chatproto::escape_control`] here, so an escape sequence, a control
//! character, a bidi override or a zero-width character is shown visibly
//! (`\u{..}`, or `\n`, `\t`, `\r`) and never reaches the terminal raw (a
//! zero-width joiner inside a word, which some scripts need, is kept). A line never contains a raw
//! newline, so one event is always one line.
//!
//! A line about a room other than the current one starts with `[#room]`; a
//! message from the room's history (not new: shown on entering a room or
//! asked for with `/history`) is marked `[history]`. An action (a text
//! that starts with `/me `, PROTOCOL.md §5.3) is shown as `* alice waves`.

use chatproto::escape_control;

/// Something to show the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A chat message (someone else's, or the echo of our own).
    Msg {
        /// The room, when it is not the current one.
        room: Option<String>,
        /// Whether it is an older message, from the room's history.
        history: bool,
        /// From a `/history` page, or the replay of a room entered again
        /// when older than anything shown of it: older than anything shown
        /// of its room (the full-screen client puts it above them; a line
        /// stream prints it where it comes).
        page: bool,
        /// Sent while this client was away, from the replay after a
        /// reconnect: shown as new, but timed when it was sent.
        missed: bool,
        /// The sender.
        from: String,
        /// The recipients; empty means everyone.
        to: Vec<String>,
        /// The text as sent.
        text: String,
        /// When the server stamped it (Unix milliseconds; 0: unknown).
        ts: u64,
        /// Where it stands among its room's messages (the full-screen
        /// client keeps each room's messages in this order).
        place: Place,
    },
    /// Someone entered or left a room.
    Presence {
        /// The room, when it is not the current one.
        room: Option<String>,
        /// Who.
        nick: String,
        /// `true` for online, `false` for left.
        online: bool,
    },
    /// An `error` frame from the server, or a local problem with an input line.
    Error {
        /// The error code, e.g. `unknown_nick`.
        code: String,
        /// What happened, for a human.
        message: String,
    },
    /// A `notice` frame from the server.
    Notice {
        /// The server's text.
        text: String,
    },
    /// A line the client says itself (`/who`, `/help`, reconnecting).
    Info(String),
    /// `entered #room; N online: ...`: said as [`Line::Info`] is, and filed
    /// by the full-screen client under `room` (entered at the join with
    /// others, it is not always the current one).
    Entered {
        /// The room entered.
        room: String,
        /// The line (it names the room).
        text: String,
    },
    /// `you left #room`: said as [`Line::Info`] is, and filed by the
    /// full-screen client under `room`, not under the room current once
    /// it is left.
    Left {
        /// The room left.
        room: String,
        /// The line (it names the room).
        text: String,
    },
    /// What became of a `/history` in `room` (`5 older messages of
    /// #lobby; /history shows more`, or that a page is on its way): said
    /// as [`Line::Info`] is; the full-screen client keeps only the newest
    /// of each room, each `/history`'s taking the last one's place.
    HistoryNote {
        /// The room paged back in.
        room: String,
        /// The line (it names the room).
        text: String,
    },
    /// Back after a reconnect, `room`'s history began anew (the server
    /// restarted without keeping it, or forgot the room while it was
    /// empty): what was said before is gone.
    HistoryGone {
        /// The room (named on the line, and where the full-screen client
        /// files it).
        room: String,
    },
    /// Paging back, `room`'s history reached its first message: the
    /// full-screen client marks the top of the room's lines (as the page
    /// does); the line mode's note of the page already said "that is all".
    HistoryStart {
        /// The room (named on the line, and where the full-screen client
        /// files it).
        room: String,
        /// The server no longer keeps older messages (its retention or
        /// its cap deleted them): the mark says so, not that the room's
        /// history starts here.
        older_gone: bool,
        /// The history it is the start of (see [`Place::era`]): the
        /// full-screen client puts the mark above that history's first
        /// message, below an earlier one's (0: the newest on the screen).
        era: u64,
    },
    /// Back after a reconnect, some of `room`'s messages sent meanwhile
    /// are not shown (the server replays only so many): said where they
    /// are missing, and `/history` fetches them. `filled`: they all are
    /// shown now (the full-screen client takes the first line away).
    Gap {
        /// The room (named on the line, and where the full-screen client
        /// files it).
        room: String,
        /// Whether the missing messages are all shown now.
        filled: bool,
    },
    /// Back after a reconnect, who came into `room` and who left it while
    /// the connection was lost (the room's online list then and now; the
    /// replay brings messages only, never presence).
    WhileAway {
        /// The room, when it is not the current one.
        room: Option<String>,
        /// Who is there now and was not then.
        joined: Vec<String>,
        /// Who was there then and is not now.
        left: Vec<String>,
    },
}

/// Where a message stands in its room: its `seq`, in the room's history
/// numbered `era`. The session gives each history a room is seen in a new
/// era (the server restarted without keeping it, say): seqs of two eras
/// are not comparable, and a later era's messages come after an earlier
/// one's. The default, era 0, is a place unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Place {
    /// The history's number (0: unknown).
    pub era: u64,
    /// The message's seq in it.
    pub seq: u64,
}

/// What the full-screen client's message area still shows of a room
/// whose oldest messages its cap let go (see
/// [`Session::handle_let_go`](crate::session::Session::handle_let_go)).
/// The cap takes the oldest lines first, and a room's messages stand in
/// the order of their places (a later history's below an earlier one's):
/// all of the room's messages above `first` went, none below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Kept {
    /// The room's oldest message shown, of the latest of its histories
    /// shown (`None`: none is shown): paging back goes on from there.
    pub from: Option<Place>,
    /// The room's oldest message shown, of any of its histories (`None`:
    /// none is shown).
    pub first: Option<Place>,
}

/// A part of a line that lists nicknames: the client's own words, or a
/// nickname from the network (escaped, and coloured where nicknames are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Words of the client's.
    Text(&'static str),
    /// A count the client put in (`and 3 more`).
    More(usize),
    /// A nickname.
    Nick(&'a str),
}

/// How many names a [`Line::WhileAway`] lists of those who joined (and
/// of those who left) before it says "and N more".
const AWAY_NAMES_SHOWN: usize = 10;

/// What a [`Line::WhileAway`] says, in pieces:
/// `while you were away: carol, erin joined; dave left`.
pub fn while_away<'a>(joined: &'a [String], left: &'a [String]) -> Vec<Piece<'a>> {
    let mut out = vec![Piece::Text("while you were away: ")];
    let lists = [(joined, " joined"), (left, " left")];
    for (i, (names, what)) in lists.into_iter().filter(|(n, _)| !n.is_empty()).enumerate() {
        if i > 0 {
            out.push(Piece::Text("; "));
        }
        for (j, n) in names.iter().take(AWAY_NAMES_SHOWN).enumerate() {
            if j > 0 {
                out.push(Piece::Text(", "));
            }
            out.push(Piece::Nick(n));
        }
        if names.len() > AWAY_NAMES_SHOWN {
            out.push(Piece::More(names.len() - AWAY_NAMES_SHOWN));
        }
        out.push(Piece::Text(what));
    }
    out
}

/// A [`Line::WhileAway`]'s words as plain text, the nicknames as they
/// came (for `--json`, whose encoding escapes what it must).
pub fn while_away_text(joined: &[String], left: &[String]) -> String {
    let mut out = String::new();
    for piece in while_away(joined, left) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::More(n) => out.push_str(&format!(" and {n} more")),
            Piece::Nick(n) => out.push_str(n),
        }
    }
    out
}

/// How lines are decorated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    /// Use ANSI colours.
    pub color: bool,
}

const RESET: &str = "\x1b[0m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[31m";

/// Foreground colours a nickname may get: the plain and bright colours,
/// leaving out black and white, which vanish on some backgrounds, and red,
/// which is for errors.
const NICK_COLOURS: [u8; 10] = [32, 33, 34, 35, 36, 92, 93, 94, 95, 96];

/// The ANSI foreground colour of `nick`: the same for everyone, every run,
/// and the same for `Alice` and `alice` (they are one person).
pub fn nick_colour(nick: &str) -> u8 {
    // FNV-1a: tiny, stable across platforms and Rust versions (unlike
    // std's DefaultHasher, whose output may change).
    let mut hash: u32 = 0x811c_9dc5;
    for b in nick.bytes() {
        hash ^= u32::from(b.to_ascii_lowercase());
        hash = hash.wrapping_mul(0x0100_0193);
    }
    NICK_COLOURS[(hash % NICK_COLOURS.len() as u32) as usize]
}

/// One event as one line, without a trailing newline. `time`, when given,
/// is put in front (e.g. `12:34:56`).
pub fn render(line: &Line, style: Style, time: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(time) = time {
        paint(&mut out, style, DIM, &format!("[{time}]"));
        out.push(' ');
    }
    match line {
        Line::Msg {
            room,
            history,
            from,
            to,
            text,
            ..
        } => {
            room_prefix(&mut out, style, room.as_deref());
            if *history {
                paint(&mut out, style, DIM, "[history]");
                out.push(' ');
            }
            let action = crate::input::action(text);
            if action.is_some() {
                out.push_str("* ");
            }
            nick(&mut out, style, from);
            if !to.is_empty() {
                out.push_str(" -> ");
                for (i, n) in to.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    nick(&mut out, style, n);
                }
                if action.is_some() {
                    out.push(':');
                }
            }
            match action {
                Some(act) => {
                    out.push(' ');
                    out.push_str(&escape_control(act));
                }
                None => {
                    out.push_str(": ");
                    out.push_str(&escape_control(text));
                }
            }
        }
        Line::Presence {
            room,
            nick: who,
            online,
        } => {
            room_prefix(&mut out, style, room.as_deref());
            out.push_str("* ");
            nick(&mut out, style, who);
            out.push_str(if *online { " is online" } else { " left" });
        }
        Line::Error { code, message } => {
            let text = format!("! {}: {}", escape_control(code), escape_control(message));
            paint(&mut out, style, RED, &text);
        }
        Line::Notice { text } => {
            out.push_str("* server: ");
            out.push_str(&escape_control(text));
        }
        Line::Info(text)
        | Line::Entered { text, .. }
        | Line::Left { text, .. }
        | Line::HistoryNote { text, .. } => {
            out.push_str("* ");
            out.push_str(&escape_control(text));
        }
        Line::HistoryGone { room } => {
            out.push_str("* ");
            out.push_str(&escape_control(&history_gone(room)));
        }
        Line::HistoryStart {
            room, older_gone, ..
        } => {
            out.push_str("* ");
            out.push_str(&escape_control(&history_start(room, *older_gone)));
        }
        Line::Gap { room, filled } => {
            out.push_str("* ");
            out.push_str(&escape_control(&gap(room, *filled)));
        }
        Line::WhileAway { room, joined, left } => {
            room_prefix(&mut out, style, room.as_deref());
            out.push_str("* ");
            for piece in while_away(joined, left) {
                match piece {
                    Piece::Text(t) => out.push_str(t),
                    Piece::More(n) => out.push_str(&format!(" and {n} more")),
                    Piece::Nick(n) => nick(&mut out, style, n),
                }
            }
        }
    }
    out
}

/// When a message from a room's history, or one missed while away, was
/// sent (local time): the time it arrived would make it look new. `None`
/// for other lines, and for a message without a stamp.
pub fn sent_at(line: &Line) -> Option<chrono::DateTime<chrono::Local>> {
    use chrono::TimeZone;
    match line {
        Line::Msg {
            history,
            missed,
            ts,
            ..
        } if (*history || *missed) && *ts > 0 => i64::try_from(*ts)
            .ok()
            .and_then(|ms| chrono::Local.timestamp_millis_opt(ms).single()),
        _ => None,
    }
}

/// What a [`Line::Gap`] says.
pub fn gap(room: &str, filled: bool) -> String {
    if filled {
        format!("the messages of #{room} missing above are all shown now")
    } else {
        format!(
            "messages of #{room} sent while you were away are missing here; /history fetches them"
        )
    }
}

/// What a [`Line::HistoryStart`] says.
pub fn history_start(room: &str, older_gone: bool) -> String {
    if older_gone {
        format!("older messages of #{room} are no longer kept")
    } else {
        format!("the start of #{room}'s history")
    }
}

/// What a [`Line::HistoryGone`] says.
pub fn history_gone(room: &str) -> String {
    format!("the server started #{room}'s history anew; earlier messages are gone")
}

fn room_prefix(out: &mut String, style: Style, room: Option<&str>) {
    if let Some(room) = room {
        paint(out, style, DIM, &format!("[#{}]", escape_control(room)));
        out.push(' ');
    }
}

fn nick(out: &mut String, style: Style, nick: &str) {
    let shown = escape_control(nick);
    if style.color {
        let colour = format!("\x1b[{}m", nick_colour(nick));
        paint(out, style, &colour, &shown);
    } else {
        out.push_str(&shown);
    }
}

fn paint(out: &mut String, style: Style, colour: &str, text: &str) {
    if style.color {
        out.push_str(colour);
        out.push_str(text);
        out.push_str(RESET);
    } else {
        out.push_str(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Style = Style { color: false };
    const COLOUR: Style = Style { color: true };

    fn msg(from: &str, to: &[&str], text: &str) -> Line {
        Line::Msg {
            room: None,
            history: false,
            page: false,
            missed: false,
            from: from.into(),
            to: to.iter().map(|s| s.to_string()).collect(),
            text: text.into(),
            ts: 0,
            place: Place::default(),
        }
    }

    #[test]
    fn plain_formats() {
        let cases = [
            (msg("alice", &[], "hello"), "alice: hello"),
            (msg("alice", &["bob"], "hi"), "alice -> bob: hi"),
            (
                msg("alice", &["bob", "carol"], "hi"),
                "alice -> bob, carol: hi",
            ),
            (
                Line::Presence {
                    room: None,
                    nick: "bob".into(),
                    online: true,
                },
                "* bob is online",
            ),
            (
                Line::Presence {
                    room: None,
                    nick: "bob".into(),
                    online: false,
                },
                "* bob left",
            ),
            (
                Line::Error {
                    code: "unknown_nick".into(),
                    message: "dave is not online".into(),
                },
                "! unknown_nick: dave is not online",
            ),
            (
                Line::Notice {
                    text: "shutting down".into(),
                },
                "* server: shutting down",
            ),
            (
                Line::Info("online (1): alice".into()),
                "* online (1): alice",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(render(&line, PLAIN, None), want);
        }
    }

    #[test]
    fn who_came_and_went_while_away() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let away = |room: Option<&str>, joined: &[&str], left: &[&str]| Line::WhileAway {
            room: room.map(str::to_owned),
            joined: names(joined),
            left: names(left),
        };
        let cases = [
            (
                away(None, &["carol"], &["dave"]),
                "* while you were away: carol joined; dave left",
            ),
            (
                away(None, &["carol", "erin"], &[]),
                "* while you were away: carol, erin joined",
            ),
            (
                away(Some("rust"), &[], &["dave"]),
                "[#rust] * while you were away: dave left",
            ),
            (
                away(None, &["e\u{1b}[2Jvil"], &[]),
                "* while you were away: e\\u{1b}[2Jvil joined",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(render(&line, PLAIN, None), want);
        }
        let many: Vec<String> = (1..=12).map(|n| format!("n{n}")).collect();
        assert_eq!(
            while_away_text(&many, &[]),
            "while you were away: n1, n2, n3, n4, n5, n6, n7, n8, n9, n10 and 2 more joined"
        );
        let coloured = render(&away(None, &["carol"], &[]), COLOUR, None);
        assert!(
            coloured.contains(&format!("\x1b[{}mcarol", nick_colour("carol"))),
            "{coloured:?}"
        );
    }

    #[test]
    fn other_rooms_and_history_are_marked() {
        let other = Line::Msg {
            room: Some("rust".into()),
            history: false,
            page: false,
            missed: false,
            from: "bob".into(),
            to: vec![],
            text: "hi".into(),
            ts: 0,
            place: Place::default(),
        };
        assert_eq!(render(&other, PLAIN, None), "[#rust] bob: hi");
        let old = Line::Msg {
            room: None,
            history: true,
            page: false,
            missed: false,
            from: "bob".into(),
            to: vec!["alice".into()],
            text: "earlier".into(),
            ts: 0,
            place: Place::default(),
        };
        assert_eq!(render(&old, PLAIN, None), "[history] bob -> alice: earlier");
        let both = Line::Msg {
            room: Some("rust".into()),
            history: true,
            page: false,
            missed: false,
            from: "bob".into(),
            to: vec![],
            text: "x".into(),
            ts: 0,
            place: Place::default(),
        };
        assert_eq!(
            render(&both, PLAIN, Some("01:02:03")),
            "[01:02:03] [#rust] [history] bob: x"
        );
        let left = Line::Presence {
            room: Some("rust".into()),
            nick: "bob".into(),
            online: false,
        };
        assert_eq!(render(&left, PLAIN, None), "[#rust] * bob left");
        assert_eq!(
            render(&left, COLOUR, None),
            format!(
                "{DIM}[#rust]{RESET} * \x1b[{}mbob{RESET} left",
                nick_colour("bob")
            )
        );
    }

    #[test]
    fn actions_read_as_actions() {
        assert_eq!(
            render(&msg("alice", &[], "/me waves"), PLAIN, None),
            "* alice waves"
        );
        assert_eq!(
            render(&msg("alice", &["bob"], "/me winks"), PLAIN, None),
            "* alice -> bob: winks"
        );
        assert_eq!(
            render(&msg("alice", &[], "/me \u{1b}[2J"), PLAIN, None),
            "* alice \\u{1b}[2J"
        );
        // Not an action: nothing after the prefix, or no space.
        assert_eq!(render(&msg("a", &[], "/me "), PLAIN, None), "a: /me ");
        assert_eq!(render(&msg("a", &[], "/mew"), PLAIN, None), "a: /mew");
    }

    #[test]
    fn timestamp_goes_first() {
        assert_eq!(
            render(&msg("a", &[], "x"), PLAIN, Some("12:34:56")),
            "[12:34:56] a: x"
        );
    }

    #[test]
    fn untrusted_text_and_nicks_are_escaped() {
        let evil = msg(
            "ev\u{1b}il",
            &["b\u{202e}ob"],
            "\u{1b}[2J\u{9b}31m\r\nzero\u{200b}",
        );
        for style in [PLAIN, COLOUR] {
            let shown = render(&evil, style, None);
            // No raw control character except the SGR escapes we add ourselves.
            let ours_removed = shown
                .replace("\x1b[0m", "")
                .replace(&format!("\x1b[{}m", nick_colour("ev\u{1b}il")), "")
                .replace(&format!("\x1b[{}m", nick_colour("b\u{202e}ob")), "");
            assert!(
                !ours_removed.chars().any(chatproto::is_unsafe_char),
                "{shown:?}"
            );
            assert!(ours_removed.contains("\\u{1b}[2J\\u{9b}31m\\r\\nzero\\u{200b}"));
            assert!(ours_removed.starts_with("ev\\u{1b}il -> b\\u{202e}ob: "));
        }
        let presence = Line::Presence {
            room: None,
            nick: "x\u{7}".into(),
            online: true,
        };
        assert_eq!(render(&presence, PLAIN, None), "* x\\u{7} is online");
        let err = Line::Error {
            code: "bad".into(),
            message: "\u{1b}]0;title\u{7}".into(),
        };
        assert_eq!(render(&err, PLAIN, None), "! bad: \\u{1b}]0;title\\u{7}");
    }

    #[test]
    fn plain_style_has_no_escape_codes() {
        let line = render(&msg("alice", &["bob"], "hi"), PLAIN, Some("01:02:03"));
        assert!(!line.contains('\x1b'));
    }

    #[test]
    fn no_nick_is_red_like_an_error() {
        for i in 0..500 {
            let c = nick_colour(&format!("nick{i}"));
            assert!(c != 31 && c != 91, "nick{i} got red");
        }
    }

    #[test]
    fn colour_is_stable_per_nick_and_ignores_case() {
        assert_eq!(nick_colour("alice"), nick_colour("Alice"));
        assert_eq!(nick_colour("alice"), nick_colour("alice"));
        // Not everyone gets the same colour.
        let colours: std::collections::HashSet<u8> = ["alice", "bob", "carol", "dave", "erin"]
            .iter()
            .map(|n| nick_colour(n))
            .collect();
        assert!(colours.len() > 1);
        let line = render(&msg("alice", &[], "hi"), COLOUR, None);
        assert_eq!(
            line,
            format!("\x1b[{}malice\x1b[0m: hi", nick_colour("alice"))
        );
    }
}
