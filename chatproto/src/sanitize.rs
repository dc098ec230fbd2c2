//! Making untrusted text safe to print on a terminal.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether printing `c` raw could move the cursor, change colours, reorder
/// the line or hide something: C0 and C1 controls, DEL, bidi controls,
/// zero-width characters and line separators; characters that show
/// nothing (the soft hyphen, the combining grapheme joiner, the Khmer
/// inherent vowels U+17B4 and U+17B5, the deprecated format characters
/// U+206A to U+206F, and the tag characters U+E0000 to U+E007F, which can
/// carry a whole hidden text); blank fillers that look like nothing or
/// like a space (the Mongolian vowel separator, the Hangul fillers U+115F,
/// U+1160, U+3164 and U+FFA0); the
/// interlinear annotation marks (U+FFF9 to U+FFFB) and the noncharacters
/// (U+FDD0 to U+FDEF, and the last two of each plane), which terminals
/// and the client's screen disagree on the width of, leaving stray
/// characters on the full-screen client's screen.
///
/// Not the variation selectors (U+FE00 to U+FE0F): every emoji drawn as
/// a picture (❤️) carries one; nor the blank braille pattern (U+2800),
/// the background of braille art.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FDD0}'..='\u{FDEF}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{E0000}'..='\u{E007F}'
        )
        || (c as u32) & 0xFFFE == 0xFFFE
}

/// `text` with every [unsafe character](is_unsafe_char) replaced by a
/// visible escape: `\n`, `\t`, `\r`, or `\u{1b}` style for the rest.
/// Borrows when there is nothing to escape.
///
/// Two exceptions keep legitimate text intact. The tag characters of a
/// subdivision flag (🏴 then a subdivision's id in three to seven tag
/// letters and digits and the cancel tag, as in the flag of Scotland) are
/// kept. And a zero-width joiner
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
    let unsafe_at = |i: usize| {
        is_unsafe_char(chars[i]) && !is_joiner_in_word(&chars, i) && !is_flag_tag(&chars, i)
    };
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

/// Whether `chars[i]` is a tag character of a subdivision flag: U+1F3F4
/// (the black flag), then a subdivision's id as tags (CLDR's: a region of
/// two letters or three digits and one to four letters or digits, so three
/// to seven tags, each a tag digit U+E0030 to U+E0039 or a tag small
/// letter U+E0061 to U+E007A), then the cancel tag U+E007F. Anywhere else
/// tags only hide text; so would capitals, spaces and punctuation after a
/// flag ("PAY ME!"), which no subdivision's id has.
fn is_flag_tag(chars: &[char], i: usize) -> bool {
    let spec = |c: char| {
        ('\u{E0030}'..='\u{E0039}').contains(&c) || ('\u{E0061}'..='\u{E007A}').contains(&c)
    };
    let end = match chars.get(i) {
        Some('\u{E007F}') => i,
        Some(&c) if spec(c) => match chars[i..].iter().position(|&c| !spec(c)) {
            Some(n) if chars[i + n] == '\u{E007F}' => i + n,
            _ => return false,
        },
        _ => return false,
    };
    let run = chars[..end].iter().rev().take_while(|&&c| spec(c)).count();
    let start = end - run;
    (3..=7).contains(&run) && start > 0 && chars[start - 1] == '\u{1F3F4}'
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

    /// Characters that show nothing, or a blank that is not a space, are
    /// escaped; the variation selector of an emoji and the tags of a
    /// subdivision flag are kept.
    #[test]
    fn invisible_characters_are_escaped_but_not_emoji_and_flags() {
        for (raw, shown) in [
            ("soft\u{ad}hyphen", "soft\\u{ad}hyphen"),
            ("a\u{34f}b", "a\\u{34f}b"),
            ("\u{115f}\u{1160}", "\\u{115f}\\u{1160}"),
            ("\u{206a}", "\\u{206a}"),
            ("\u{17b4}", "\\u{17b4}"),
            // A hidden text in tags.
            ("hi\u{e0068}\u{e0069}", "hi\\u{e0068}\\u{e0069}"),
            // Tags after a flag, but too many, or never cancelled.
            (
                "\u{1f3f4}\u{e0061}\u{e0062}\u{e0063}\u{e0064}\u{e0065}\u{e0066}\u{e0067}\u{e0068}\u{e007f}",
                "\u{1f3f4}\\u{e0061}\\u{e0062}\\u{e0063}\\u{e0064}\\u{e0065}\\u{e0066}\\u{e0067}\\u{e0068}\\u{e007f}",
            ),
            ("\u{1f3f4}\u{e0061}", "\u{1f3f4}\\u{e0061}"),
            // Tags after a flag that no subdivision's id has: capitals,
            // a space, punctuation (a hidden "PAY ME!"), or too few.
            (
                "\u{1f3f4}\u{e0050}\u{e0041}\u{e0059}\u{e0020}\u{e004d}\u{e0045}\u{e0021}\u{e007f}",
                "\u{1f3f4}\\u{e0050}\\u{e0041}\\u{e0059}\\u{e0020}\\u{e004d}\\u{e0045}\\u{e0021}\\u{e007f}",
            ),
            (
                "\u{1f3f4}\u{e0067}\u{e0062}\u{e007f}",
                "\u{1f3f4}\\u{e0067}\\u{e0062}\\u{e007f}",
            ),
            ("\u{e007f}", "\\u{e007f}"),
        ] {
            assert_eq!(escape_control(raw), shown, "{raw:?}");
        }
        for kept in [
            "\u{2800}\u{28ff}\u{2800}",
            "\u{2764}\u{fe0f}", // red heart
            "\u{1f3f4}\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f}", // Scotland
            "\u{1f3f4}\u{e0067}\u{e0062}\u{e0077}\u{e006c}\u{e0073}\u{e007f} ok", // Wales
            "\u{1f3f4}\u{e006a}\u{e0070}\u{e0031}\u{e0033}\u{e007f}", // Tokyo (jp13)
        ] {
            assert!(matches!(escape_control(kept), Cow::Borrowed(_)), "{kept:?}");
        }
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
