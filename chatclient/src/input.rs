//! What a typed line means: a message and its recipients, or a command.
//!
//! The syntax, as `/help` shows it:
//!
//! * `hello`: to everyone;
//! * `@bob hi` or `@bob: hi`: to bob only;
//! * `@bob @carol: hi` (also `@bob, @carol: hi` or `@bob @carol hi`): to both;
//! * `/who`, `/help`, `/quit`: commands; `//text` sends `/text` to everyone;
//! * an empty or blank line is ignored.

/// What one line of input asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Send `text` to `to`, or to everyone when `to` is empty.
    Send {
        /// Recipients as typed, without the `@`.
        to: Vec<String>,
        /// The text, as typed after the recipients.
        text: String,
    },
    /// List who is online.
    Who,
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
    "hello                  send to everyone",
    "@bob hi                send to bob only (also @bob: hi)",
    "@bob @carol: hi        send to bob and carol only",
    "/who                   list who is online",
    "/help                  show this help",
    "/quit                  leave (Ctrl-D too; Ctrl-C leaves at once)",
    "//text                 send a line that starts with / to everyone",
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
        let word = cmd.split_whitespace().next().unwrap_or("");
        return match word {
            "who" => Command::Who,
            "help" | "?" => Command::Help,
            "quit" | "exit" => Command::Quit,
            _ => Command::Invalid(format!(
                "unknown command /{word}; /help lists the commands, and //{word} sends the line as text"
            )),
        };
    }
    if trimmed.starts_with('@') {
        return parse_addressed(trimmed);
    }
    Command::Send {
        to: Vec::new(),
        text: line.to_owned(),
    }
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
        assert_eq!(parse_line("/quit now"), Command::Quit);
        assert!(matches!(parse_line("/nope"), Command::Invalid(m) if m.contains("/nope")));
        assert_eq!(parse_line("//who"), send(&[], "/who"));
    }

    #[test]
    fn blank_lines_do_nothing() {
        for line in ["", "\n", "   ", "\t \r\n"] {
            assert_eq!(parse_line(line), Command::Nothing, "{line:?}");
        }
    }
}
