//! Words wrapped to a width, with a hanging indent: the rows after the
//! first start under the text, not under the time and nickname.
//!
//! Widths are display columns: an emoji or a CJK character takes two, a
//! combining mark none, and a wide character never straddles the edge.
//!
//! What is drawn is measured as the terminals measure it. Most (tmux,
//! xterm, VTE) still give each character its own width and put the
//! zero-width ones on the cell before; unicode-width (and so ratatui)
//! measures a grapheme cluster as a whole, and the two disagree on
//! clusters of several visible characters: an emoji family (man, joiner,
//! woman, joiner, girl) is two columns as a cluster, six in xterm, and two
//! in tmux, which also glues a joiner or a skin tone onto whatever is left
//! of the cursor, even after a cursor move; a Devanagari conjunct (`स्ते`)
//! is one cell to ratatui and two to the terminal. Each disagreement leaves
//! cells the terminal wrote and ratatui believes blank: residue that
//! stays until a resize.
//!
//! So a cluster is drawn as its [parts]: each character that takes
//! columns, with the combining marks after it, in cells of its own
//! (ratatui writes every one of them). Zero-width joiners, variation
//! selectors and skin-tone modifiers are left out of the drawing: they
//! only change how emoji look, terminals disagree about the width they
//! make, and tmux would merge the parts again. The family is drawn as
//! three emoji (six columns), a thumb with a skin tone as a plain thumb,
//! `❤️` as the one-column `❤`. The text itself is untouched: it is sent,
//! kept and written to scripts as it came.

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use unicode_segmentation::UnicodeSegmentation;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// A character left out of the drawing (see the [module docs](self)):
/// the zero-width joiner, a variation selector, a skin-tone modifier.
fn left_out(c: char) -> bool {
    matches!(c, '\u{200d}' | '\u{fe00}'..='\u{fe0f}' | '\u{1f3fb}'..='\u{1f3ff}')
}

/// The parts of a grapheme cluster as drawn: each character that takes
/// columns, with the zero-width characters after it, leaving out what
/// [`left_out`] names (and a zero-width character with nothing before it
/// to sit on, which no terminal gives a cell).
pub fn parts(g: &str) -> impl Iterator<Item = &str> + '_ {
    let mut chars = g.char_indices().peekable();
    std::iter::from_fn(move || {
        let (start, first) = loop {
            let (i, c) = chars.next()?;
            if !left_out(c) && c.width().unwrap_or(0) > 0 {
                break (i, c);
            }
        };
        let mut end = start + first.len_utf8();
        while let Some(&(i, c)) = chars.peek() {
            if left_out(c) || c.width().unwrap_or(0) > 0 {
                break;
            }
            end = i + c.len_utf8();
            chars.next();
        }
        Some(&g[start..end])
    })
}

/// Whether the cluster `g` is drawn other than as itself in one cell:
/// as several parts, or with something left out.
pub fn is_split(g: &str) -> bool {
    let mut p = parts(g);
    !(p.next() == Some(g) && p.next().is_none())
}

/// The columns one grapheme cluster takes, as drawn (its parts).
pub fn grapheme_width(g: &str) -> usize {
    parts(g).map(UnicodeWidthStr::width).sum()
}

/// `text` as spans of `style` ready to draw: split clusters as a span per
/// part, so ratatui gives each its own cells.
pub fn spans(text: &str, style: Style) -> Vec<Span<'static>> {
    let mut out: Vec<Span<'static>> = Vec::new();
    let mut run = String::new();
    for g in text.graphemes(true) {
        if is_split(g) {
            if !run.is_empty() {
                out.push(Span::styled(std::mem::take(&mut run), style));
            }
            out.extend(parts(g).map(|p| Span::styled(p.to_owned(), style)));
        } else {
            run.push_str(g);
        }
    }
    if !run.is_empty() || out.is_empty() {
        out.push(Span::styled(run, style));
    }
    out
}

/// The columns `text` takes.
pub fn text_width(text: &str) -> usize {
    text.graphemes(true).map(grapheme_width).sum()
}

/// One grapheme cluster (or one part of a split one) with its style.
#[derive(Debug, Clone, Copy)]
struct Cell<'a> {
    g: &'a str,
    width: usize,
    style: Style,
    /// A part of a split cluster: drawn as a span of its own.
    alone: bool,
}

/// The cells of `text`: a split cluster's parts stay together (they are
/// pushed one after the other and never broken across rows).
fn cells_of<'a>(text: &'a str, style: Style, out: &mut Vec<Vec<Cell<'a>>>) {
    for g in text.graphemes(true) {
        if g == "\n" {
            // A line break: `wrap` starts a row there.
            out.push(vec![Cell {
                g,
                width: 0,
                style,
                alone: false,
            }]);
        } else if is_split(g) {
            let cluster: Vec<Cell<'a>> = parts(g)
                .map(|p| Cell {
                    g: p,
                    width: p.width(),
                    style,
                    alone: true,
                })
                .collect();
            // Nothing to draw (a lone joiner) is not a space either.
            if !cluster.is_empty() {
                out.push(cluster);
            }
        } else {
            out.push(vec![Cell {
                g,
                width: grapheme_width(g),
                style,
                alone: false,
            }]);
        }
    }
}

/// A row being filled.
struct Rows<'a> {
    width: usize,
    indent: usize,
    rows: Vec<Vec<Cell<'a>>>,
    col: usize,
}

impl<'a> Rows<'a> {
    fn new_row(&mut self) {
        // Trailing spaces are invisible and would only count against the width.
        if let Some(row) = self.rows.last_mut() {
            while row
                .last()
                .is_some_and(|c| c.g.chars().all(char::is_whitespace))
            {
                row.pop();
            }
        }
        self.rows.push(Vec::new());
        self.col = self.indent;
    }

    /// One cluster (its parts, if split), on a new row if it does not fit.
    fn push(&mut self, cluster: &[Cell<'a>]) {
        let width: usize = cluster.iter().map(|c| c.width).sum();
        if self.col + width > self.width && self.col > self.indent {
            self.new_row();
        }
        self.col += width;
        self.rows
            .last_mut()
            .expect("a row")
            .extend_from_slice(cluster);
    }

    fn at_row_start(&self) -> bool {
        self.col <= self.indent
    }
}

/// `prefix` then `body` as rows of at most `width` columns. Rows after
/// the first are indented by the prefix's width, or by half the width when
/// the prefix is wider than that; words move to the next row whole unless
/// a word is longer than a row, which is broken where the row ends. A
/// newline in the body starts a new row, and the spaces after it are kept
/// (an indented line of code stays indented).
///
/// At most `max_rows` rows (at least 2): when there would be more, the
/// last one says, in `more_style`, how many characters the rows left
/// out hold, as drawn (not the spaces and line breaks rows break at):
/// `… (63,412 more characters)`.
pub fn wrap(
    prefix: &[Span<'_>],
    body: &[Span<'_>],
    width: usize,
    max_rows: usize,
    more_style: Style,
) -> Vec<Line<'static>> {
    let width = width.max(1);
    let cells = |spans: &[Span<'_>]| -> Vec<(String, Style)> {
        spans
            .iter()
            .map(|s| (s.content.to_string(), s.style))
            .collect()
    };
    let prefix = cells(prefix);
    let body = cells(body);
    let prefix_width: usize = prefix.iter().map(|(t, _)| text_width(t)).sum();
    let indent = prefix_width.min(width / 2);

    let mut rows = Rows {
        width,
        indent,
        rows: vec![Vec::new()],
        col: 0,
    };
    let mut clusters = Vec::new();
    for (text, style) in &prefix {
        cells_of(text, *style, &mut clusters);
    }
    for cluster in &clusters {
        rows.push(cluster);
    }

    // The body, as words (runs of non-space) and single spaces.
    let mut flat: Vec<Vec<Cell<'_>>> = Vec::new();
    for (text, style) in &body {
        cells_of(text, *style, &mut flat);
    }
    let is_space = |c: &Vec<Cell<'_>>| c.iter().all(|c| c.g.chars().all(char::is_whitespace));
    let width_of = |c: &Vec<Cell<'_>>| c.iter().map(|c| c.width).sum::<usize>();
    let is_break = |c: &Vec<Cell<'_>>| matches!(&c[..], [one] if one.g == "\n");
    // Just after a newline: spaces there are the line's own.
    let mut line_start = false;
    let mut i = 0;
    while i < flat.len() {
        if is_break(&flat[i]) {
            // A newline at the very end opens no empty row.
            if i + 1 < flat.len() {
                rows.new_row();
            }
            line_start = true;
            i += 1;
            continue;
        }
        if is_space(&flat[i]) {
            // No space at the start of a continuation row, unless the
            // line began there.
            if line_start && rows.col + width_of(&flat[i]) <= width {
                rows.push(&flat[i]);
            } else if !(rows.at_row_start() && rows.rows.len() > 1) {
                if rows.col + width_of(&flat[i]) > width {
                    rows.new_row();
                } else {
                    rows.push(&flat[i]);
                }
            }
            i += 1;
            continue;
        }
        let end = flat[i..]
            .iter()
            .position(is_space)
            .map_or(flat.len(), |n| i + n);
        line_start = false;
        let word = &flat[i..end];
        let word_width: usize = word.iter().map(width_of).sum();
        if rows.col + word_width > width && word_width <= width - indent && !rows.at_row_start() {
            rows.new_row();
        }
        for cluster in word {
            rows.push(cluster);
        }
        i = end;
    }

    let max_rows = max_rows.max(2);
    let mut more = None;
    if rows.rows.len() > max_rows {
        let left_out: usize = rows.rows[max_rows - 1..]
            .iter()
            .flatten()
            .map(|c| c.g.chars().count())
            .sum();
        rows.rows.truncate(max_rows - 1);
        more = Some(left_out);
    }

    let mut lines: Vec<Line<'static>> = rows
        .rows
        .into_iter()
        .enumerate()
        .map(|(n, row)| {
            let mut spans: Vec<Span<'static>> = Vec::new();
            if n > 0 && indent > 0 {
                spans.push(Span::raw(" ".repeat(indent)));
            }
            // The indent stays a span of its own, and so does each part
            // of a split cluster.
            let fixed = spans.len();
            let mut after_part = false;
            for cell in row {
                let merge = spans.len() > fixed && !cell.alone && !after_part;
                after_part = cell.alone;
                match spans.last_mut() {
                    Some(last) if merge && last.style == cell.style => {
                        last.content.to_mut().push_str(cell.g);
                    }
                    _ => spans.push(Span::styled(cell.g.to_owned(), cell.style)),
                }
            }
            Line::from(spans)
        })
        .collect();
    if let Some(n) = more {
        let what = if n == 1 { "character" } else { "characters" };
        let count = crate::session::grouped(n);
        // In a narrow window the row gives up its indent, then its words,
        // before the count would be cut.
        let long = format!("\u{2026} ({count} more {what})");
        let (indent, text) = match text_width(&long) {
            w if indent + w <= width => (indent, long),
            w if w <= width => (0, long),
            _ => (0, format!("\u{2026} +{count}")),
        };
        let mut spans = Vec::new();
        if indent > 0 {
            spans.push(Span::raw(" ".repeat(indent)));
        }
        spans.push(Span::styled(text, more_style));
        lines.push(Line::from(spans));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::style::Modifier;

    /// Every row, as the message area without a cap would have them.
    fn wrap(prefix: &[Span<'_>], body: &[Span<'_>], width: usize) -> Vec<Line<'static>> {
        super::wrap(prefix, body, width, usize::MAX, Style::default())
    }

    fn plain(rows: &[Line<'_>]) -> Vec<String> {
        rows.iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    fn w(prefix: &str, body: &str, width: usize) -> Vec<String> {
        plain(&wrap(&[Span::raw(prefix)], &[Span::raw(body)], width))
    }

    /// Rows that fit are all drawn; one more, and the last row says
    /// how many characters the rows past it hold.
    #[test]
    fn past_max_rows_the_last_row_counts_what_is_left_out() {
        let capped = |body: &str, max| {
            plain(&super::wrap(
                &[Span::raw("b: ")],
                &[Span::raw(body)],
                10,
                max,
                Style::default(),
            ))
        };
        // 7 columns on the first row, 7 under it on each after.
        assert_eq!(
            capped(&"x".repeat(21), 3),
            ["b: xxxxxxx", "   xxxxxxx", "   xxxxxxx"]
        );
        assert_eq!(
            capped(&"x".repeat(22), 3),
            ["b: xxxxxxx", "   xxxxxxx", "\u{2026} +8"]
        );
        assert_eq!(capped(&"x".repeat(15), 2), ["b: xxxxxxx", "\u{2026} +8"]);
        assert_eq!(capped("xxxxxxx\ny\nz", 2)[1], "\u{2026} +2");
        assert_eq!(capped(&"x".repeat(8), 2), ["b: xxxxxxx", "   x"]);
        assert_eq!(
            capped(&"x".repeat(15), 1),
            capped(&"x".repeat(15), 2),
            "at least 2"
        );
    }

    /// The row that counts what is left out is never cut: in a window too
    /// narrow for it under the indent it gives up the indent, then its
    /// words, keeping the count whole.
    #[test]
    fn the_count_of_what_is_left_out_fits_the_row() {
        let capped = |width| {
            plain(&super::wrap(
                &[Span::raw("12:00 bob: ")],
                &[Span::raw("y".repeat(70_000))],
                width,
                2,
                Style::default(),
            ))[1]
                .clone()
        };
        let wide = capped(60);
        assert_eq!(
            wide,
            format!("{}\u{2026} (69,951 more characters)", " ".repeat(11))
        );
        assert_eq!(capped(30), "\u{2026} (69,981 more characters)");
        assert_eq!(capped(12), "\u{2026} +69,999");
        for width in [12, 30, 60] {
            assert!(text_width(&capped(width)) <= width, "{width}");
        }
    }

    #[test]
    fn short_lines_are_one_row() {
        assert_eq!(w("12:00 bob: ", "hi", 40), ["12:00 bob: hi"]);
        assert_eq!(w("", "", 40), [""]);
    }

    #[test]
    fn words_wrap_under_the_text() {
        let rows = w(
            "12:00 bob: ",
            "the quick brown fox jumps over the lazy dog",
            30,
        );
        assert_eq!(
            rows,
            [
                "12:00 bob: the quick brown fox",
                "           jumps over the lazy",
                "           dog",
            ]
        );
        for r in &rows {
            assert!(text_width(r) <= 30, "{r:?}");
        }
    }

    #[test]
    fn a_newline_starts_a_row_under_the_text_and_keeps_its_spaces() {
        let rows = w("12:00 bob: ", "fn main() {\n    hi();\n\n}\n", 40);
        assert_eq!(
            rows,
            [
                "12:00 bob: fn main() {",
                "               hi();",
                "           ",
                "           }",
            ]
        );
        // A long line after a break still wraps under the text.
        let rows = w("> ", "a\nbb cc dd", 6);
        assert_eq!(rows, ["> a", "  bb", "  cc", "  dd"]);
    }

    #[test]
    fn a_word_longer_than_a_row_is_broken() {
        let rows = w("> ", &"x".repeat(25), 10);
        assert_eq!(rows, ["> xxxxxxxx", "  xxxxxxxx", "  xxxxxxxx", "  x"]);
    }

    #[test]
    fn wide_characters_take_two_columns_and_never_straddle() {
        // Six CJK characters (12 columns) and emoji, at 9 columns.
        let rows = w("a: ", "漢字漢字漢字 😀😀", 9);
        for r in &rows {
            assert!(text_width(r) <= 9, "{r:?} is wider than 9");
        }
        assert_eq!(rows, ["a: 漢字漢", "   字漢字", "   😀😀"]);
        assert_eq!(text_width("😀"), 2);
        assert_eq!(text_width("漢"), 2);
        // A combining accent adds no width.
        assert_eq!(text_width("e\u{301}"), 1);
        // An emoji joined with zero-width joiners is one cluster.
        assert_eq!(
            "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}"
                .graphemes(true)
                .count(),
            1
        );
    }

    /// The text of each span of each row.
    fn texts(rows: &[Line<'_>]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|l| l.spans.iter().map(|s| s.content.to_string()).collect())
            .collect()
    }

    #[test]
    fn emoji_sequences_are_drawn_as_their_emoji() {
        let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}";
        assert!(is_split(family));
        assert_eq!(parts(family).collect::<Vec<_>>(), ["👨", "👩", "👧"]);
        assert_eq!(text_width(family), 6);
        // A skin tone is left out, and so is the selector that asks for an
        // emoji's picture: the heart is drawn as the narrow one it is
        // without it.
        let thumb = "\u{1f44d}\u{1f3fd}";
        assert_eq!(parts(thumb).collect::<Vec<_>>(), ["👍"]);
        assert_eq!(text_width(thumb), 2);
        assert_eq!(parts("\u{2764}\u{fe0f}").collect::<Vec<_>>(), ["\u{2764}"]);
        assert_eq!(text_width("\u{2764}\u{fe0f}"), 1);
        // A woman technologist with a skin tone: two emoji.
        let coder = "\u{1f469}\u{1f3fd}\u{200d}\u{1f4bb}";
        assert_eq!(parts(coder).collect::<Vec<_>>(), ["👩", "💻"]);
        // A lone joiner is nothing to draw.
        assert_eq!(text_width("\u{200d}"), 0);
        // An accented letter and a Persian word with a non-joiner are
        // drawn as they are.
        for whole in ["\u{645}\u{6cc}\u{200c}\u{62e}", "e\u{301}", "漢"] {
            assert!(whole.graphemes(true).all(|g| !is_split(g)), "{whole:?}");
        }
        // Each part its own span, no joiner sent to the terminal.
        let s = spans(&format!("a{family}b"), Style::default());
        let texts: Vec<&str> = s.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(texts, ["a", "👨", "👩", "👧", "b"]);
    }

    #[test]
    fn a_family_wraps_as_six_columns_with_no_joiner_drawn() {
        let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}";
        let body = format!("D family {family} end");
        assert_eq!(text_width(&body), 9 + 6 + 4);
        let rows = wrap(&[Span::raw("gina: ")], &[Span::raw(body.clone())], 80);
        assert_eq!(
            texts(&rows),
            [["gina: D family ", "👨", "👩", "👧", " end"]]
        );
        // Narrow: the family is one word and moves to the next row whole.
        let rows = wrap(&[Span::raw("gina: ")], &[Span::raw(body)], 20);
        assert_eq!(plain(&rows), ["gina: D family", "      👨👩👧 end"]);
        for r in &plain(&rows) {
            assert!(text_width(r) <= 20, "{r:?}");
            assert!(!r.contains('\u{200d}'), "{r:?}");
        }
    }

    #[test]
    fn devanagari_is_drawn_a_character_a_cell() {
        // नमस्ते: na, ma and the conjunct s-ta-e, three clusters; the
        // terminal gives na, ma, s(+virama) and ta(+e) a cell each.
        let namaste = "\u{928}\u{92e}\u{938}\u{94d}\u{924}\u{947}";
        assert_eq!(namaste.graphemes(true).count(), 3);
        assert_eq!(text_width(namaste), 4);
        let conjunct = "\u{938}\u{94d}\u{924}\u{947}";
        assert_eq!(
            parts(conjunct).collect::<Vec<_>>(),
            ["\u{938}\u{94d}", "\u{924}\u{947}"]
        );
        let rows = wrap(&[Span::raw("gina: ")], &[Span::raw(namaste)], 80);
        assert_eq!(
            texts(&rows),
            [["gina: \u{928}\u{92e}", "\u{938}\u{94d}", "\u{924}\u{947}"]]
        );
        // Every span is as wide to ratatui as we counted it.
        let counted: usize = rows[0].spans.iter().map(|s| text_width(&s.content)).sum();
        let ratatui: usize = rows[0].spans.iter().map(|s| s.content.width()).sum();
        assert_eq!((counted, ratatui), (10, 10));
        // A conjunct written with a joiner (क्‍ष) is drawn without it.
        assert_eq!(text_width("\u{915}\u{94d}\u{200d}\u{937}"), 2);
    }

    #[test]
    fn a_long_prefix_indents_at_most_half() {
        let rows = w("12:00 averyveryverylongnick: ", "one two three four", 20);
        for r in &rows[1..] {
            assert!(r.starts_with(&" ".repeat(10)), "{r:?}");
            assert!(text_width(r) <= 20, "{r:?}");
        }
    }

    #[test]
    fn styles_are_kept_per_character() {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        let rows = wrap(
            &[Span::raw("n: ")],
            &[Span::raw("plain "), Span::styled("bold words", bold)],
            12,
        );
        assert_eq!(plain(&rows), ["n: plain", "   bold", "   words"]);
        assert_eq!(rows[1].spans[1].style, bold);
        assert_eq!(rows[1].spans[0].content, "   ");
    }
}
