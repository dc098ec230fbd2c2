//! The nickname rule.
//!
//! A nickname is 1 to [`MAX_NICK_LEN`] characters, each printable ASCII
//! (`!` 0x21 to `~` 0x7E) except `@`, `:`, `,`, `"` and `\`. So no whitespace,
//! no control characters, no escapes, no bidi overrides, no zero-width or
//! look-alike Unicode. `@ : ,` are excluded because the client syntax uses them
//! to address messages; `"` and `\` so that a nickname never needs escaping.
//!
//! Two nicknames are the same person when they are equal ignoring ASCII case
//! ([`nick_key`]): joining as `Alice` while `alice` is online is `nick_taken`.
//!
//! Two different nicknames collide when their [`nick_skeleton`]s are equal:
//! they would look alike on screen, so the second is `nick_invalid`. The
//! skeleton lowercases, then maps `0`→`o`, `1` `i` `|`→`l`, `5`→`s`,
//! `rn`→`m`, `vv`→`w`.

/// The longest nickname, in characters (which are bytes, as nicknames are ASCII).
pub const MAX_NICK_LEN: usize = 32;

/// Why a nickname breaks the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NickError {
    /// The nickname is empty.
    #[error("the nickname is empty; choose 1 to 32 characters")]
    Empty,
    /// The nickname is longer than [`MAX_NICK_LEN`].
    #[error("the nickname is {0} characters long; the limit is 32")]
    TooLong(usize),
    /// The nickname contains a character outside the rule.
    #[error("the nickname contains {0}, which is not allowed; use printable ASCII other than @ : , \" \\ and no spaces")]
    BadChar(String),
}

/// Check `nick` against the nickname rule.
pub fn validate_nick(nick: &str) -> Result<(), NickError> {
    if nick.is_empty() {
        return Err(NickError::Empty);
    }
    let chars = nick.chars().count();
    if chars > MAX_NICK_LEN {
        return Err(NickError::TooLong(chars));
    }
    if let Some(c) = nick.chars().find(|&c| !is_nick_char(c)) {
        let shown = if c.is_ascii_graphic() {
            format!("'{c}'")
        } else {
            format!("U+{:04X}", c as u32)
        };
        return Err(NickError::BadChar(shown));
    }
    Ok(())
}

fn is_nick_char(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '@' | ':' | ',' | '"' | '\\')
}

/// The identity of a valid nickname: equal keys are the same person.
pub fn nick_key(nick: &str) -> String {
    nick.to_ascii_lowercase()
}

/// The look-alike class of a valid nickname: different nicknames with equal
/// skeletons would be confused on screen.
pub fn nick_skeleton(nick: &str) -> String {
    let lower = nick.to_ascii_lowercase();
    let mut out = String::with_capacity(lower.len());
    let bytes = lower.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let pair = bytes.get(i..i + 2);
        if pair == Some(b"rn") {
            out.push('m');
            i += 2;
            continue;
        }
        if pair == Some(b"vv") {
            out.push('w');
            i += 2;
            continue;
        }
        out.push(match bytes[i] {
            b'0' => 'o',
            b'1' | b'i' | b'|' => 'l',
            b'5' => 's',
            b => b as char,
        });
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_printable_ascii() {
        assert_eq!(validate_nick("alice"), Ok(()));
        assert_eq!(validate_nick("Bob_42-x.y!"), Ok(()));
        assert_eq!(validate_nick(&"a".repeat(32)), Ok(()));
    }

    #[test]
    fn rejects_what_the_rule_forbids() {
        assert_eq!(validate_nick(""), Err(NickError::Empty));
        assert_eq!(validate_nick(&"a".repeat(33)), Err(NickError::TooLong(33)));
        for bad in [
            "a b",
            "a\tb",
            "a@b",
            "a:b",
            "a,b",
            "a\"b",
            "a\\b",
            "a\u{1b}b",
            "a\u{85}b",
            "a\u{202e}b",
            "a\u{200b}b",
            "\u{430}lice",
        ] {
            assert!(
                matches!(validate_nick(bad), Err(NickError::BadChar(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn key_ignores_case_and_skeleton_folds_look_alikes() {
        assert_eq!(nick_key("Alice"), nick_key("aLICE"));
        assert_eq!(nick_skeleton("b0b"), nick_skeleton("bob"));
        assert_eq!(nick_skeleton("Il1|"), nick_skeleton("llll"));
        assert_eq!(nick_skeleton("rnary"), nick_skeleton("mary"));
        assert_eq!(nick_skeleton("vvill"), nick_skeleton("will"));
        assert_ne!(nick_skeleton("alice"), nick_skeleton("bob"));
    }
}
