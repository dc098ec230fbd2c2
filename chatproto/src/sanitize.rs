//! Making untrusted text safe to print on a terminal.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether printing `c` raw could move the cursor, change colours, reorder
/// the line or hide something: C0 and C1 controls, DEL, bidi controls,
/// zero-width characters and line separators.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// `text` with every [unsafe character](is_unsafe_char) replaced by a
/// visible escape: `\n`, `\t`, `\r`, or `\u{1b}` style for the rest.
/// Borrows when there is nothing to escape.
///
/// ```
/// assert_eq!(chatproto::escape_control("hi\u{1b}[2J"), "hi\\u{1b}[2J");
/// assert_eq!(chatproto::escape_control("plain"), "plain");
/// ```
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_class() {
        for (raw, shown) in [
            ("\u{1b}[31m", "\\u{1b}[31m"),
            ("a\u{0}b", "a\\u{0}b"),
            ("\u{7f}", "\\u{7f}"),
            ("\u{9b}", "\\u{9b}"),
            ("\u{202e}evil", "\\u{202e}evil"),
            ("zero\u{200b}width", "zero\\u{200b}width"),
            ("line\nbreak\t", "line\\nbreak\\t"),
        ] {
            assert_eq!(escape_control(raw), shown);
        }
        assert!(matches!(escape_control("héllo ✓"), Cow::Borrowed(_)));
    }
}
