//! Words wrapped to a width, with a hanging indent: the rows after the
//! first start under the text, not under the time and nickname.
//!
//! Widths are display columns (unicode-width, per grapheme cluster, as
//! ratatui measures them): an emoji or a CJK character takes two, a
//! combining mark none, and a wide character never straddles the edge.
//!
//! Terminals disagree about emoji sequences: a family (man, zero-width
//! joiner, woman, joiner, girl) or a thumb with a skin tone is one glyph
//! two columns wide in some (tmux, kitty) and one glyph per emoji in
//! others (xterm, VTE), six and four columns. A terminal that moves the
//! cursor further than we counted overwrites the next cells, and lines
//! get garbled. So such a cluster is drawn as its parts, each in cells of
//! its own (ratatui places each with an explicit cursor move), and counted
//! as wide as its parts: the text is all there, the joiners too, and no
//! terminal is pushed past the columns we reserved.

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use unicode_segmentation::UnicodeSegmentation;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// The parts of a grapheme cluster drawn separately: each character that
/// takes columns, with the zero-width characters after it.
fn parts(g: &str) -> impl Iterator<Item = &str> + '_ {
    let mut starts: Vec<usize> = g
        .char_indices()
        .filter(|(i, c)| *i == 0 || c.width().unwrap_or(0) > 0)
        .map(|(i, _)| i)
        .collect();
    starts.push(g.len());
    (0..starts.len() - 1).map(move |k| &g[starts[k]..starts[k + 1]])
}

/// Whether the cluster `g` is drawn as its [parts]: when they are wider
/// than the whole (an emoji sequence that some terminals show as one glyph
/// and others as several).
pub fn is_split(g: &str) -> bool {
    parts(g).map(UnicodeWidthStr::width).sum::<usize>() > g.width()
}

/// The columns one grapheme cluster takes (as its parts, if split).
pub fn grapheme_width(g: &str) -> usize {
    g.width().max(parts(g).map(UnicodeWidthStr::width).sum())
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
/// pushed one after the other and never broken across rows, as the whole
/// is counted as one word by the caller).
fn cells_of<'a>(text: &'a str, style: Style, out: &mut Vec<Vec<Cell<'a>>>) {
    for g in text.graphemes(true) {
        if is_split(g) {
            out.push(
                parts(g)
                    .map(|p| Cell {
                        g: p,
                        width: p.width(),
                        style,
                        alone: true,
                    })
                    .collect(),
            );
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
/// a word is longer than a row, which is broken where the row ends.
pub fn wrap(prefix: &[Span<'_>], body: &[Span<'_>], width: usize) -> Vec<Line<'static>> {
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
    let mut i = 0;
    while i < flat.len() {
        if is_space(&flat[i]) {
            // No space at the start of a continuation row.
            if !(rows.at_row_start() && rows.rows.len() > 1) {
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

    rows.rows
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
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::style::Modifier;

    fn plain(rows: &[Line<'_>]) -> Vec<String> {
        rows.iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    fn w(prefix: &str, body: &str, width: usize) -> Vec<String> {
        plain(&wrap(&[Span::raw(prefix)], &[Span::raw(body)], width))
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

    #[test]
    fn emoji_sequences_are_drawn_as_their_parts() {
        let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}";
        assert!(is_split(family));
        assert_eq!(text_width(family), 6);
        let thumb = "\u{1f44d}\u{1f3fd}";
        assert!(is_split(thumb));
        assert_eq!(text_width(thumb), 4);
        // A Persian word with a non-joiner, a Hindi conjunct, a flag and an
        // accented letter are not split.
        for whole in [
            "\u{645}\u{6cc}\u{200c}\u{62e}",
            "\u{915}\u{94d}\u{200d}\u{937}",
            "\u{1f1eb}\u{1f1f7}",
            "e\u{301}",
        ] {
            assert!(whole.graphemes(true).all(|g| !is_split(g)), "{whole:?}");
        }
        // Each part its own span, the joiners kept.
        let s = spans(&format!("a{family}b"), Style::default());
        let texts: Vec<&str> = s.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(
            texts,
            [
                "a",
                "\u{1f468}\u{200d}",
                "\u{1f469}\u{200d}",
                "\u{1f467}",
                "b"
            ]
        );
        let rows = wrap(&[Span::raw("x: ")], &[Span::raw(format!("{family}!"))], 40);
        let texts: Vec<&str> = rows[0].spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(
            texts,
            [
                "x: ",
                "\u{1f468}\u{200d}",
                "\u{1f469}\u{200d}",
                "\u{1f467}",
                "!"
            ]
        );
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
