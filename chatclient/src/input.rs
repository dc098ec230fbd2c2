//! What a typed line means: a message and its recipients, or a command.
//!
//! The syntax, as `/help` shows it:
//!
//! * `hello`: to everyone in the current room;
//! * `@bob hi` or `@bob: hi`: to bob only (in the current room);
//! * `@bob @carol: hi` (also `@bob, @carol: hi` or `@bob @carol hi`): to both;
//! * `/me waves`: an action, sent as the text `/me waves` (the convention
//!   PROTOCOL.md §5.3 describes), shown as `* alice waves`;
//! * `/msg bob hi`: to bob only, as `@bob hi`; `/query bob`: every line
//!   after it goes to bob only, until `/query` alone;
//! * `/join ROOM`, `/part [ROOM]`, `/rooms`, `/who`, `/history [N]`,
//!   `/clear`, `/help`, `/quit`: commands, in any case (`/JOIN` is
//!   `/join`); `//text` sends `/text`;
//! * an empty or blank line is ignored.
//!
//! With `--verbatim`, [`verbatim_line`] is used instead: every line is text.

/// How many older messages `/history` asks for when no number is given.
pub const HISTORY_DEFAULT: u64 = 20;
/// The most `/history N` may ask for (the server's default page).
pub const HISTORY_MAX: u64 = 200;

/// What one line of input asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Send `text` to `to`, or to everyone in the room when `to` is empty.
    Send {
        /// Recipients as typed, without the `@`.
        to: Vec<String>,
        /// The text, as typed after the recipients.
        text: String,
    },
    /// Enter a room (if not in it yet) and make it the current one.
    Join(String),
    /// Leave a room; `None`: the current one.
    Part(Option<String>),
    /// List the rooms someone is in.
    Rooms,
    /// List who is in the current room.
    Who,
    /// Show this many older messages of the current room.
    History(u64),
    /// Send what is typed to this nickname only (`None`: to everyone again).
    Query(Option<String>),
    /// Clear the messages shown (the full-screen client's message area).
    Clear,
    /// Show the syntax.
    Help,
    /// Leave the chat.
    Quit,
    /// A blank line: do nothing.
    Nothing,
    /// The line means nothing; the string tells the user why.
    Invalid(String),
}

/// The text `/help` prints, one line per entry.
pub const HELP: &[&str] = &[
    "hello                  send to everyone in the current room",
    "@bob hi                send to bob only (also @bob: hi)",
    "@bob @carol: hi        send to bob and carol only",
    "/me waves              an action: shown as * alice waves",
    "/msg bob hi            send to bob only (as @bob hi)",
    "/query bob             send every line to bob only; /query alone ends it",
    "/join ROOM             enter ROOM and make it the current room",
    "/part [ROOM]           leave ROOM (the current room if none given)",
    "/rooms                 list the rooms someone is in",
    "/who                   list who is in the current room",
    "/history [N]           show N older messages of the current room (20)",
    "/clear                 clear the messages shown (full-screen client)",
    "/help                  show this help",
    "/quit                  leave (Ctrl-D too; Ctrl-C leaves at once)",
    "//text                 send a line that starts with / to the room",
    "lines from a room other than the current one start with [#room]",
];

/// Parse one line of input (a trailing `\n` or `\r\n` is ignored).
pub fn parse_line(line: &str) -> Command {
    let line = line.trim_end_matches(['\n', '\r']);
    if line.trim().is_empty() {
        return Command::Nothing;
    }
    if let Some(rest) = line.strip_prefix("//") {
        return Command::Send {
            to: Vec::new(),
            text: format!("/{rest}"),
        };
    }
    let trimmed = line.trim_start();
    if let Some(cmd) = trimmed.strip_prefix('/') {
        if let Some(action) = me_command(cmd) {
            return action;
        }
        if let Some(private) = msg_command(cmd) {
            return private;
        }
        return parse_command(cmd);
    }
    if trimmed.starts_with('@') {
        return parse_addressed(trimmed);
    }
    Command::Send {
        to: Vec::new(),
        text: line.to_owned(),
    }
}

/// `--verbatim`: the whole line is text for everyone in the current room,
/// `@` and `/` included; only an empty line sends nothing.
pub fn verbatim_line(line: &str) -> Command {
    let line = line.trim_end_matches(['\n', '\r']);
    if line.is_empty() {
        return Command::Nothing;
    }
    Command::Send {
        to: Vec::new(),
        text: line.to_owned(),
    }
}

/// A line that started with one `/`: the command word (any case) and its
/// arguments.
fn parse_command(cmd: &str) -> Command {
    let mut words = cmd.split_whitespace();
    let word = words.next().unwrap_or("");
    let arg = words.next();
    let extra = words.next();
    let too_many = |usage: &str| Command::Invalid(format!("too many words; usage: {usage}"));
    match word.to_ascii_lowercase().as_str() {
        "join" | "j" => match (arg, extra) {
            (None, _) => Command::Invalid("usage: /join ROOM, as in /join rust".to_owned()),
            (Some(room), None) => match room_arg(room) {
                Ok(room) => Command::Join(room),
                Err(why) => Command::Invalid(why),
            },
            _ => too_many("/join ROOM"),
        },
        "part" | "leave" => match (arg, extra) {
            (None, _) => Command::Part(None),
            (Some(room), None) => match room_arg(room) {
                Ok(room) => Command::Part(Some(room)),
                Err(why) => Command::Invalid(why),
            },
            _ => too_many("/part [ROOM]"),
        },
        "rooms" | "list" if arg.is_none() => Command::Rooms,
        "who" | "names" if arg.is_none() => Command::Who,
        "history" => match (arg, extra) {
            (None, _) => Command::History(HISTORY_DEFAULT),
            (Some(n), None) => match n.parse::<u64>() {
                Ok(n) if (1..=HISTORY_MAX).contains(&n) => Command::History(n),
                _ => Command::Invalid(format!(
                    "/history takes a number of messages from 1 to {HISTORY_MAX}, not {n:?}"
                )),
            },
            _ => too_many("/history [N]"),
        },
        "query" | "q" => match (arg, extra) {
            (None, _) => Command::Query(None),
            (Some(nick), None) => match nick_arg(nick) {
                Ok(nick) => Command::Query(Some(nick)),
                Err(why) => Command::Invalid(why),
            },
            _ => too_many("/query [NICK]"),
        },
        "clear" if arg.is_none() => Command::Clear,
        "clear" => too_many("/clear"),
        "help" | "?" if arg.is_none() => Command::Help,
        "quit" | "exit" if arg.is_none() => Command::Quit,
        "rooms" | "list" => too_many("/rooms"),
        "who" | "names" => too_many("/who"),
        "help" | "?" => too_many("/help"),
        "quit" | "exit" => too_many("/quit"),
        _ => Command::Invalid(format!(
            "unknown command /{word}; /help lists the commands, and //{word} sends the line as text"
        )),
    }
}

/// The text that marks a message as an action (PROTOCOL.md §5.3): `/me `
/// and then what the sender does.
pub const ACTION_PREFIX: &str = "/me ";

/// The action in `text`, if it is one: `/me waves` is `waves`. An action
/// with nothing after the prefix is not one.
pub fn action(text: &str) -> Option<&str> {
    text.strip_prefix(ACTION_PREFIX)
        .filter(|rest| !rest.trim().is_empty())
}

/// `/me waves` (the command word in any case): the action, sent as
/// `/me waves` whatever the case typed.
fn me_command(cmd: &str) -> Option<Command> {
    let (word, rest) = split_word(cmd);
    if !word.eq_ignore_ascii_case("me") {
        return None;
    }
    let rest = rest.trim();
    Some(if rest.is_empty() {
        Command::Invalid("usage: /me ACTION, as in /me waves".to_owned())
    } else {
        Command::Send {
            to: Vec::new(),
            text: format!("{ACTION_PREFIX}{rest}"),
        }
    })
}

/// `/msg bob hi` is `@bob hi`.
fn msg_command(cmd: &str) -> Option<Command> {
    let (word, rest) = split_word(cmd);
    if !(word.eq_ignore_ascii_case("msg") || word.eq_ignore_ascii_case("m")) {
        return None;
    }
    let (nick, text) = split_word(rest.trim_start());
    let text = text.trim_start();
    if nick.is_empty() || text.trim().is_empty() {
        return Some(Command::Invalid(
            "usage: /msg NICK TEXT, as in /msg bob hi".to_owned(),
        ));
    }
    Some(match nick_arg(nick) {
        Ok(nick) => Command::Send {
            to: vec![nick],
            text: text.to_owned(),
        },
        Err(why) => Command::Invalid(why),
    })
}

/// The first word of `s` and the rest, starting at the whitespace after it.
fn split_word(s: &str) -> (&str, &str) {
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    s.split_at(end)
}

/// A nickname as typed after `/msg` or `/query`: `bob` or `@bob`.
fn nick_arg(raw: &str) -> Result<String, String> {
    let nick = raw.strip_prefix('@').unwrap_or(raw);
    if nick.is_empty() || nick.contains(['@', ':', ',']) {
        return Err(format!("not a nickname: {raw:?}"));
    }
    Ok(nick.to_owned())
}

/// A room as typed after `/join` or `/part` (or given to `--room`):
/// `rust`, `#rust` or `Rust` all name `rust`.
pub(crate) fn room_arg(raw: &str) -> Result<String, String> {
    let name = raw.strip_prefix('#').unwrap_or(raw);
    // Worded for what is typed here, where a leading # is fine (the
    // library's own text is for frames, which carry no #).
    chatproto::room_name(name).map_err(|_| {
        // (An empty name, as in `--room a,,b`, is said: "".)
        let shown = match raw {
            "" => "\"\"".into(),
            raw => chatproto::escape_control(raw),
        };
        format!(
            "not a room name: {shown}; a room is 1 to {} of a-z 0-9 - _ ., starting with a letter or digit, as in #rust",
            chatproto::MAX_ROOM_LEN
        )
    })
}

/// `line` starts with `@`: read the recipients, then the text.
fn parse_addressed(line: &str) -> Command {
    let mut to = Vec::new();
    let mut rest = line;
    while let Some(after_at) = rest.strip_prefix('@') {
        let end = after_at
            .find(|c: char| c.is_whitespace() || matches!(c, '@' | ':' | ','))
            .unwrap_or(after_at.len());
        let name = &after_at[..end];
        if name.is_empty() {
            return Command::Invalid(
                "'@' must be followed by a nickname, as in @bob hi".to_owned(),
            );
        }
        to.push(name.to_owned());
        // A ',' right after a name separates it from the next one.
        let after = &after_at[end..];
        rest = after.strip_prefix(',').unwrap_or(after).trim_start();
    }
    // The list ends at the first word without '@', or at a ':'.
    let text = rest.strip_prefix(':').unwrap_or(rest).trim_start();
    if text.is_empty() {
        return Command::Invalid(format!(
            "nothing to send to {}; type the text after the names, as in @{} hi",
            to.join(", "),
            to[0]
        ));
    }
    Command::Send {
        to,
        text: text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(to: &[&str], text: &str) -> Command {
        Command::Send {
            to: to.iter().map(|s| s.to_string()).collect(),
            text: text.to_owned(),
        }
    }

    #[test]
    fn plain_text_goes_to_everyone() {
        assert_eq!(parse_line("hello there"), send(&[], "hello there"));
        assert_eq!(parse_line("hello\r\n"), send(&[], "hello"));
        assert_eq!(parse_line("  indented"), send(&[], "  indented"));
        assert_eq!(parse_line("mail me @ home"), send(&[], "mail me @ home"));
        assert_eq!(parse_line("x@bob: hi"), send(&[], "x@bob: hi"));
    }

    #[test]
    fn one_recipient() {
        assert_eq!(parse_line("@bob hi"), send(&["bob"], "hi"));
        assert_eq!(parse_line("@bob: hi"), send(&["bob"], "hi"));
        assert_eq!(parse_line("@rishu:helloooo"), send(&["rishu"], "helloooo"));
        assert_eq!(parse_line("  @bob   hi  "), send(&["bob"], "hi  "));
        assert_eq!(parse_line("@bob a: b"), send(&["bob"], "a: b"));
    }

    #[test]
    fn several_recipients() {
        let both = send(&["bob", "carol"], "hi");
        assert_eq!(parse_line("@bob @carol: hi"), both);
        assert_eq!(parse_line("@bob @carol hi"), both);
        assert_eq!(parse_line("@bob, @carol: hi"), both);
        assert_eq!(parse_line("@bob,@carol:hi"), both);
        assert_eq!(parse_line("@bob@carol hi"), both);
        assert_eq!(
            parse_line("@parul @rishu @vikash:hey guys wats up"),
            send(&["parul", "rishu", "vikash"], "hey guys wats up")
        );
    }

    #[test]
    fn recipients_without_text_or_names_are_refused() {
        for line in [
            "@bob",
            "@bob:",
            "@bob @carol:   ",
            "@ hi",
            "@: hi",
            "@bob @ hi",
        ] {
            assert!(
                matches!(parse_line(line), Command::Invalid(_)),
                "{line:?} should be invalid"
            );
        }
    }

    #[test]
    fn commands() {
        assert_eq!(parse_line("/who"), Command::Who);
        assert_eq!(parse_line(" /who "), Command::Who);
        assert_eq!(parse_line("/help"), Command::Help);
        assert_eq!(parse_line("/quit"), Command::Quit);
        // A command that takes no argument refuses one, as /who does:
        // `/quit now` does not leave.
        for (typed, usage) in [
            ("/quit now", "/quit"),
            ("/exit now", "/quit"),
            ("/help join", "/help"),
            ("/? join", "/help"),
            ("/who is there", "/who"),
        ] {
            assert_eq!(
                parse_line(typed),
                Command::Invalid(format!("too many words; usage: {usage}")),
                "{typed}"
            );
        }
        assert_eq!(parse_line(" /quit "), Command::Quit);
        assert!(matches!(parse_line("/nope"), Command::Invalid(m) if m.contains("/nope")));
        for (typed, shown) in [
            ("/join ab/cd", "ab/cd"),
            ("/join #", "#"),
            ("/part #a b", ""),
        ] {
            match parse_line(typed) {
                Command::Invalid(m) if shown.is_empty() => assert!(m.contains("usage"), "{m}"),
                Command::Invalid(m) => {
                    assert!(m.starts_with(&format!("not a room name: {shown};")), "{m}");
                    assert!(m.contains("as in #rust") && !m.contains("no #"), "{m}");
                }
                other => panic!("{typed}: {other:?}"),
            }
        }
        assert_eq!(parse_line("//who"), send(&[], "/who"));
        // An empty name (`--room a,,b`) is said, not an empty place in
        // the sentence.
        let e = room_arg("").unwrap_err();
        assert!(e.starts_with("not a room name: \"\";"), "{e}");
    }

    #[test]
    fn commands_ignore_case() {
        assert_eq!(parse_line("/WHO"), Command::Who);
        assert_eq!(parse_line("/Help"), Command::Help);
        assert_eq!(parse_line("/QUIT"), Command::Quit);
        assert_eq!(parse_line("/Join Rust"), Command::Join("rust".into()));
        assert_eq!(parse_line("/ROOMS"), Command::Rooms);
        assert_eq!(parse_line("/HISTORY 5"), Command::History(5));
    }

    #[test]
    fn room_commands() {
        assert_eq!(parse_line("/join rust"), Command::Join("rust".into()));
        assert_eq!(parse_line("/join #rust"), Command::Join("rust".into()));
        assert_eq!(
            parse_line("/j rust.lang"),
            Command::Join("rust.lang".into())
        );
        assert_eq!(parse_line("/part"), Command::Part(None));
        assert_eq!(
            parse_line("/part #Rust"),
            Command::Part(Some("rust".into()))
        );
        assert_eq!(parse_line("/rooms"), Command::Rooms);
        assert_eq!(parse_line("/history"), Command::History(HISTORY_DEFAULT));
        assert_eq!(parse_line("/history 200"), Command::History(200));
        for bad in [
            "/join",
            "/join a b",
            "/join -x",
            "/join ##rust",
            "/join café",
            "/part a b",
            "/history 0",
            "/history 201",
            "/history many",
            "/history 1 2",
            "/who is there",
            "/rooms all",
        ] {
            assert!(
                matches!(parse_line(bad), Command::Invalid(_)),
                "{bad:?} should be invalid"
            );
        }
    }

    #[test]
    fn verbatim_lines_are_text() {
        assert_eq!(verbatim_line("@bob hi"), send(&[], "@bob hi"));
        assert_eq!(verbatim_line("/quit\r\n"), send(&[], "/quit"));
        assert_eq!(verbatim_line("//x"), send(&[], "//x"));
        assert_eq!(verbatim_line("  "), send(&[], "  "));
        assert_eq!(verbatim_line(""), Command::Nothing);
    }

    #[test]
    fn irc_habits() {
        assert_eq!(parse_line("/me waves"), send(&[], "/me waves"));
        assert_eq!(parse_line("/ME  waves  back"), send(&[], "/me waves  back"));
        assert!(matches!(parse_line("/me"), Command::Invalid(_)));
        assert!(matches!(parse_line("/me   "), Command::Invalid(_)));
        assert_eq!(parse_line("/msg bob hi there"), send(&["bob"], "hi there"));
        assert_eq!(parse_line("/MSG @bob  hi"), send(&["bob"], "hi"));
        assert_eq!(parse_line("/m bob hi"), send(&["bob"], "hi"));
        for bad in ["/msg", "/msg bob", "/msg bob   ", "/msg b:ob hi"] {
            assert!(
                matches!(parse_line(bad), Command::Invalid(_)),
                "{bad:?} should be invalid"
            );
        }
        assert_eq!(parse_line("/query bob"), Command::Query(Some("bob".into())));
        assert_eq!(parse_line("/Query"), Command::Query(None));
        assert!(matches!(parse_line("/query a b"), Command::Invalid(_)));
        assert_eq!(parse_line("/CLEAR"), Command::Clear);
        // `//me` sends the text `/me ...`, which is an action too.
        assert_eq!(parse_line("//me x"), send(&[], "/me x"));
        assert_eq!(action("/me waves"), Some("waves"));
        assert_eq!(action("/me "), None);
        assert_eq!(action("/mews"), None);
        assert_eq!(action("hello /me x"), None);
    }

    #[test]
    fn blank_lines_do_nothing() {
        for line in ["", "\n", "   ", "\t \r\n"] {
            assert_eq!(parse_line(line), Command::Nothing, "{line:?}");
        }
    }
}
