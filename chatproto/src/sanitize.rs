//! Making untrusted text safe to print on a terminal.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether printing `c` raw could move the cursor, change colours, reorder
/// the line or hide something: C0 and C1 controls, DEL, bidi controls,
/// zero-width characters and line separators; blank fillers that look like
/// nothing (the Mongolian vowel separator, the Hangul fillers U+3164 and
/// U+FFA0); the interlinear annotation marks (U+FFF9 to U+FFFB) and the
/// noncharacters (U+FDD0 to U+FDEF, and the last two of each plane), which
/// terminals and the client's screen disagree on the width of, leaving
/// stray characters on the full-screen client's screen.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{3164}'
                | '\u{FDD0}'..='\u{FDEF}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
        || (c as u32) & 0xFFFE == 0xFFFE
}

/// `text` with every [unsafe character](is_unsafe_char) replaced by a
/// visible escape: `\n`, `\t`, `\r`, or `\u{1b}` style for the rest.
/// Borrows when there is nothing to escape.
///
/// One exception keeps legitimate text intact: a zero-width joiner
/// (U+200D) or non-joiner (U+200C) inside a word (between two visible
/// characters, at least one of them outside ASCII) is
/// part of how emoji sequences (👨‍👩‍👧), Persian (می‌خواهم) and the Indic
/// scripts (क्‍ष) are written, so it is kept; anywhere else (at an edge,
/// next to a space, doubled, or between two ASCII characters, where it
/// only hides a difference) it is escaped like the rest.
///
/// ```
/// assert_eq!(chatproto::escape_control("hi\u{1b}[2J"), "hi\\u{1b}[2J");
/// assert_eq!(chatproto::escape_control("plain"), "plain");
/// assert_eq!(chatproto::escape_control("a\u{fffb}\u{3164}"), "a\\u{fffb}\\u{3164}");
/// assert_eq!(chatproto::escape_control("می\u{200c}خواهم"), "می\u{200c}خواهم");
/// assert_eq!(chatproto::escape_control("b\u{200d}ob"), "b\\u{200d}ob");
/// ```
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let chars: Vec<char> = text.chars().collect();
    let unsafe_at = |i: usize| is_unsafe_char(chars[i]) && !is_joiner_in_word(&chars, i);
    if !(0..chars.len()).any(unsafe_at) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if unsafe_at(i) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether `chars[i]` is a zero-width joiner or non-joiner inside a word:
/// between two characters that are visible (not a space, not themselves
/// [unsafe](is_unsafe_char)), at least one of them outside ASCII. That is
/// where emoji sequences and scripts such as Persian, Arabic, Hindi and
/// Bengali need it; between ASCII letters it has no use but to make two
/// strings that look alike differ.
pub(crate) fn is_joiner_in_word(chars: &[char], i: usize) -> bool {
    if !matches!(chars.get(i), Some('\u{200C}' | '\u{200D}')) || i == 0 {
        return false;
    }
    let visible = |c: char| !c.is_whitespace() && !is_unsafe_char(c);
    match (chars.get(i - 1), chars.get(i + 1)) {
        (Some(&before), Some(&after)) => {
            visible(before) && visible(after) && !(before.is_ascii() && after.is_ascii())
        }
        _ => false,
    }
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
            // Blank fillers, annotation marks, noncharacters.
            ("\u{3164}\u{ffa0}\u{180e}", "\\u{3164}\\u{ffa0}\\u{180e}"),
            ("a\u{fff9}b\u{fffb}", "a\\u{fff9}b\\u{fffb}"),
            (
                "\u{fdd0}\u{fffe}\u{1fffe}\u{10ffff}",
                "\\u{fdd0}\\u{fffe}\\u{1fffe}\\u{10ffff}",
            ),
        ] {
            assert_eq!(escape_control(raw), shown);
        }
        // Their neighbours are text.
        for kept in [
            "\u{3163}\u{3165}",
            "\u{fdcf}\u{fdf0}",
            "\u{fffc}\u{fffd}",
            "\u{1fffd}",
        ] {
            assert!(matches!(escape_control(kept), Cow::Borrowed(_)), "{kept:?}");
        }
        assert!(matches!(escape_control("héllo ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn joiners_inside_words_are_text() {
        for kept in [
            "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}", // family emoji
            "\u{1f3f3}\u{fe0f}\u{200d}\u{1f308}",          // rainbow flag
            "\u{645}\u{6cc}\u{200c}\u{62e}\u{648}\u{627}\u{647}\u{645}", // Persian
            "\u{915}\u{94d}\u{200d}\u{937}",               // Hindi
            "x\u{200d}\u{1f600}",                          // one side not ASCII
        ] {
            assert!(matches!(escape_control(kept), Cow::Borrowed(_)), "{kept:?}");
        }
        for (raw, shown) in [
            ("b\u{200d}ob", "b\\u{200d}ob"),
            ("\u{200d}\u{1f600}", "\\u{200d}\u{1f600}"),
            ("\u{1f600}\u{200d}", "\u{1f600}\\u{200d}"),
            (
                "\u{1f600} \u{200c}\u{1f600}",
                "\u{1f600} \\u{200c}\u{1f600}",
            ),
            (
                "\u{1f600}\u{200d}\u{200d}\u{1f600}",
                "\u{1f600}\\u{200d}\\u{200d}\u{1f600}",
            ),
            ("\u{1f600}\u{200b}\u{1f600}", "\u{1f600}\\u{200b}\u{1f600}"),
            ("\u{645}\u{200c}\u{202e}", "\u{645}\\u{200c}\\u{202e}"),
        ] {
            assert_eq!(escape_control(raw), shown, "{raw:?}");
        }
    }
}
