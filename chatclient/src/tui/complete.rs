//! Tab completion of the word before the cursor: a command at the start of
//! a line, a room after `#` or after `/join` and `/part`, otherwise a
//! nickname of the current room (`@bo` becomes `@bob `, `bo` at the start
//! of a line `bob: `). Tab again offers the next match, Shift-Tab the one
//! before.

/// The commands, as completed after `/`.
pub const COMMANDS: &[&str] = &[
    "clear", "help", "history", "join", "me", "msg", "part", "query", "quit", "rooms", "who",
];

/// What completion can choose from.
#[derive(Debug, Default, Clone)]
pub struct Words<'a> {
    /// Nicknames in the current room (ours left out).
    pub nicks: Vec<&'a str>,
    /// Rooms we are in, and rooms `/rooms` listed.
    pub rooms: Vec<&'a str>,
}

/// A completion in progress: the word replaced, and the matches cycled
/// through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// Where the word starts (a byte offset).
    start: usize,
    /// Where the inserted text ends.
    end: usize,
    /// Each match with what follows it (`bob: `, `#rust `).
    matches: Vec<String>,
    index: usize,
}

impl Completion {
    /// Start completing the word that ends at `cursor` in `line`; `None`
    /// when nothing matches.
    pub fn start(line: &str, cursor: usize, words: &Words<'_>) -> Option<Completion> {
        let before = &line[..cursor];
        let start = before.rfind(char::is_whitespace).map_or(0, |i| {
            i + before[i..].chars().next().map_or(1, char::len_utf8)
        });
        let word = &before[start..];
        let first_word = before.split_whitespace().next().unwrap_or("");
        let command = first_word.to_ascii_lowercase();
        let mut matches: Vec<String> = if start == 0 && word.starts_with('/') {
            let typed = word[1..].to_ascii_lowercase();
            COMMANDS
                .iter()
                .filter(|c| c.starts_with(&typed))
                .map(|c| format!("/{c} "))
                .collect()
        } else if let Some(typed) = word.strip_prefix('#') {
            matching(&words.rooms, typed)
                .map(|r| format!("#{r} "))
                .collect()
        } else if start > 0 && matches!(command.as_str(), "/join" | "/j" | "/part" | "/leave") {
            matching(&words.rooms, word)
                .map(|r| format!("{r} "))
                .collect()
        } else if let Some(typed) = word.strip_prefix('@') {
            matching(&words.nicks, typed)
                .map(|n| format!("@{n} "))
                .collect()
        } else if start == 0 {
            matching(&words.nicks, word)
                .map(|n| format!("{n}: "))
                .collect()
        } else {
            matching(&words.nicks, word)
                .map(|n| format!("{n} "))
                .collect()
        };
        matches.dedup();
        if matches.is_empty() {
            return None;
        }
        Some(Completion {
            start,
            end: cursor,
            matches,
            index: 0,
        })
    }

    /// Put the current match in `line`; the new cursor.
    pub fn apply(&mut self, line: &mut String) -> usize {
        let with = &self.matches[self.index];
        line.replace_range(self.start..self.end, with);
        self.end = self.start + with.len();
        self.end
    }

    /// Move to the next match (`back`: the one before).
    pub fn step(&mut self, back: bool) {
        let n = self.matches.len();
        self.index = if back {
            (self.index + n - 1) % n
        } else {
            (self.index + 1) % n
        };
    }
}

/// The words that start with `typed`, ignoring case, sorted the same way.
fn matching<'a>(words: &[&'a str], typed: &str) -> impl Iterator<Item = &'a str> {
    let typed = typed.to_lowercase();
    let mut found: Vec<&'a str> = words
        .iter()
        .copied()
        .filter(|w| w.to_lowercase().starts_with(&typed))
        .collect();
    found.sort_by_key(|w| w.to_lowercase());
    found.dedup();
    found.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words() -> Words<'static> {
        Words {
            nicks: vec!["bob", "Bea", "carol"],
            rooms: vec!["lobby", "rust", "rustaceans"],
        }
    }

    /// Tab `times` times on `line` (cursor at the end).
    fn tab(line: &str, times: usize) -> String {
        let mut text = line.to_owned();
        let mut c = Completion::start(&text, text.len(), &words()).expect("a match");
        c.apply(&mut text);
        for _ in 1..times {
            c.step(false);
            c.apply(&mut text);
        }
        text
    }

    #[test]
    fn nicks_rooms_and_commands() {
        assert_eq!(tab("ca", 1), "carol: ");
        assert_eq!(tab("hi ca", 1), "hi carol ");
        assert_eq!(tab("@ca", 1), "@carol ");
        assert_eq!(tab("hi b", 1), "hi Bea ");
        assert_eq!(tab("hi b", 2), "hi bob ");
        assert_eq!(tab("hi b", 3), "hi Bea ");
        assert_eq!(tab("/jo", 1), "/join ");
        assert_eq!(tab("/Q", 1), "/query ");
        assert_eq!(tab("/q", 2), "/quit ");
        assert_eq!(tab("/join ru", 1), "/join rust ");
        assert_eq!(tab("/join ru", 2), "/join rustaceans ");
        assert_eq!(tab("see #lo", 1), "see #lobby ");
        assert_eq!(tab("/msg ca", 1), "/msg carol ");
        assert!(Completion::start("zz", 2, &words()).is_none());
        assert!(Completion::start("/nothing", 8, &words()).is_none());
    }

    #[test]
    fn shift_tab_goes_back() {
        let mut text = "b".to_owned();
        let mut c = Completion::start(&text, 1, &words()).unwrap();
        c.apply(&mut text);
        c.step(true);
        c.apply(&mut text);
        assert_eq!(text, "bob: ");
    }

    #[test]
    fn the_rest_of_the_line_stays() {
        let mut text = "hi ca and more".to_owned();
        let mut c = Completion::start(&text, 5, &words()).unwrap();
        let cursor = c.apply(&mut text);
        assert_eq!(text, "hi carol  and more");
        assert_eq!(cursor, 9);
    }
}
