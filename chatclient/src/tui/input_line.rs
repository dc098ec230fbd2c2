//! The line being typed: the text, a cursor that moves by grapheme
//! cluster (an emoji or an accented letter is one step), the usual
//! editing keys, and the lines typed before (Up and Down).
//!
//! It belongs to the screen, not to the connection, so a reconnect never
//! touches it.
//!
//! A keystroke and a draw cost about the same in a line of 70,000
//! characters as in an empty one: editing looks only at the clusters
//! around the cursor, and [`visible`](InputLine::visible) measures only
//! what fits on the screen. A paste costs once its own length.

use unicode_segmentation::UnicodeSegmentation;

use super::wrap::grapheme_width;

/// How many typed lines Up can bring back.
const HISTORY: usize = 1000;

/// The line being typed. See the [module docs](self).
#[derive(Debug, Default)]
pub struct InputLine {
    text: String,
    /// A byte offset in `text`, always on a grapheme boundary.
    cursor: usize,
    history: Vec<String>,
    /// While browsing the history with Up and Down: the entry shown.
    browsing: Option<usize>,
    /// The line that was being typed when browsing started.
    draft: String,
}

impl InputLine {
    /// The text typed.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The cursor, a byte offset in [`text`](InputLine::text).
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Whether nothing is typed.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Replace the text; the cursor goes to its end.
    pub fn set(&mut self, text: String, cursor: Option<usize>) {
        self.cursor = cursor.unwrap_or(text.len()).min(text.len());
        self.text = text;
        self.browsing = None;
    }

    /// Take the typed line (Enter), remembering it for Up.
    pub fn take(&mut self) -> String {
        let line = std::mem::take(&mut self.text);
        self.cursor = 0;
        self.browsing = None;
        self.draft.clear();
        self.remember(&line);
        line
    }

    /// Remember `line` for Up (a pasted line too), once if repeated.
    pub fn remember(&mut self, line: &str) {
        if line.trim().is_empty() || self.history.last().is_some_and(|l| l == line) {
            return;
        }
        if self.history.len() == HISTORY {
            self.history.remove(0);
        }
        self.history.push(line.to_owned());
    }

    /// Make `line` the one the next Up brings back (a refused line,
    /// typed before others): the last typed, or while Up and Down are
    /// browsing, the one before the line shown (found again there once
    /// browsing is over).
    pub fn recall_last(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        if let Some(i) = self.history.iter().rposition(|l| l == line) {
            self.history.remove(i);
            if let Some(b) = self.browsing.as_mut().filter(|b| **b > i) {
                *b -= 1;
            }
        }
        let at = self.browsing.unwrap_or(self.history.len());
        self.history.insert(at, line.to_owned());
        if let Some(b) = self.browsing.as_mut() {
            *b += 1;
        }
        if self.history.len() > HISTORY {
            if at == 0 {
                // Put before the oldest, shown: that one goes, and Up
                // still brings this one back.
                self.history.remove(1);
            } else {
                self.history.remove(0);
                if let Some(b) = self.browsing.as_mut() {
                    *b -= 1;
                }
            }
        }
    }

    /// Empty the line (Ctrl-C).
    pub fn clear(&mut self) {
        self.text.clear();
        self.cursor = 0;
        self.browsing = None;
    }

    /// Insert `s` at the cursor; the cursor goes after it.
    pub fn insert_str(&mut self, s: &str) {
        // The start of the cluster before the cursor stays a boundary
        // whatever follows it (no rule of UAX #29 looks further ahead
        // than the next character, which is not changed), so clusters can
        // be counted afresh from there.
        let from = self.prev_boundary();
        self.text.insert_str(self.cursor, s);
        let end = self.cursor + s.len();
        // A combining mark typed after a letter joins its cluster: keep
        // the cursor on a boundary, the first at or after what was
        // inserted. Only the clusters from `from` to there are looked at.
        let mut at = from;
        for g in self.text[from..].graphemes(true) {
            looked_at(1);
            if at >= end {
                break;
            }
            at += g.len();
        }
        self.cursor = at;
    }

    pub fn insert(&mut self, c: char) {
        self.insert_str(c.encode_utf8(&mut [0; 4]));
    }

    /// The start of the cluster before the cursor (found from the end of
    /// the text before it, not from the start of the line).
    fn prev_boundary(&self) -> usize {
        looked_at(1);
        self.text[..self.cursor]
            .grapheme_indices(true)
            .next_back()
            .map_or(0, |(i, _)| i)
    }

    fn next_boundary(&self) -> usize {
        looked_at(1);
        self.text[self.cursor..]
            .graphemes(true)
            .next()
            .map_or(self.cursor, |g| self.cursor + g.len())
    }

    pub fn left(&mut self) {
        self.cursor = self.prev_boundary();
    }

    pub fn right(&mut self) {
        self.cursor = self.next_boundary();
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.text.len();
    }

    /// Backspace: the cluster before the cursor.
    pub fn backspace(&mut self) {
        let from = self.prev_boundary();
        self.text.replace_range(from..self.cursor, "");
        self.cursor = from;
    }

    /// Delete: the cluster under the cursor.
    pub fn delete(&mut self) {
        let to = self.next_boundary();
        self.text.replace_range(self.cursor..to, "");
    }

    /// The start of the word before the cursor (Ctrl-W, Alt-B, Ctrl-Left).
    fn word_start(&self) -> usize {
        let before = &self.text[..self.cursor];
        let trimmed = before.trim_end();
        trimmed.rfind(char::is_whitespace).map_or(0, |i| {
            i + trimmed[i..].chars().next().map_or(1, char::len_utf8)
        })
    }

    /// The end of the word after the cursor (Alt-F, Ctrl-Right).
    fn word_end(&self) -> usize {
        let after = &self.text[self.cursor..];
        let skipped = after.len() - after.trim_start().len();
        let rest = &after[skipped..];
        let word = rest.find(char::is_whitespace).unwrap_or(rest.len());
        self.cursor + skipped + word
    }

    pub fn word_left(&mut self) {
        self.cursor = self.word_start();
    }

    pub fn word_right(&mut self) {
        self.cursor = self.word_end();
    }

    /// Ctrl-W: delete the word before the cursor.
    pub fn delete_word_before(&mut self) {
        let from = self.word_start();
        self.text.replace_range(from..self.cursor, "");
        self.cursor = from;
    }

    /// Ctrl-U: delete from the start to the cursor.
    pub fn delete_to_start(&mut self) {
        self.text.replace_range(..self.cursor, "");
        self.cursor = 0;
    }

    /// Ctrl-K: delete from the cursor to the end.
    pub fn delete_to_end(&mut self) {
        self.text.truncate(self.cursor);
    }

    /// Up: the line typed before the one shown.
    pub fn history_up(&mut self) {
        let next = match self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.draft = self.text.clone();
                self.history.len() - 1
            }
            Some(0) => return,
            Some(i) => i - 1,
        };
        self.browsing = Some(next);
        self.text = self.history[next].clone();
        self.cursor = self.text.len();
    }

    /// Down: the line typed after the one shown, and at the end the line
    /// that was being typed.
    pub fn history_down(&mut self) {
        let Some(i) = self.browsing else { return };
        if i + 1 < self.history.len() {
            self.browsing = Some(i + 1);
            self.text = self.history[i + 1].clone();
        } else {
            self.browsing = None;
            self.text = std::mem::take(&mut self.draft);
        }
        self.cursor = self.text.len();
    }

    /// The part of the text to show in `width` columns, and the cursor's
    /// column in it: scrolled sideways so the cursor is always visible,
    /// with the end of the text in view when it fits. Where text is
    /// hidden, before or after, the edge shows [`HIDDEN`] in a column of
    /// its own (when `width` has room for both marks and a column more).
    ///
    /// Only what is shown is measured: the clusters before the cursor,
    /// walking back from it while they fit in all columns but the last
    /// (so the cursor sits in the last column at most), then those after
    /// it while they fit, then a few at either end given up to the marks.
    pub fn visible(&self, width: usize) -> (String, usize) {
        let width = width.max(1);
        let mut start = self.cursor;
        let mut cursor_col = 0;
        for g in self.text[..self.cursor].graphemes(true).rev() {
            looked_at(1);
            let w = grapheme_width(g);
            if cursor_col + w >= width {
                break;
            }
            cursor_col += w;
            start -= g.len();
        }
        let mut end = self.cursor;
        let mut used = cursor_col;
        for g in self.text[self.cursor..].graphemes(true) {
            looked_at(1);
            let w = grapheme_width(g);
            if used + w > width {
                break;
            }
            used += w;
            end += g.len();
        }
        if width < 3 {
            return (self.text[start..end].to_owned(), cursor_col);
        }
        // Room for the marks: the clusters after the cursor's go first,
        // then those at the start (the cursor keeps a column of its own).
        let cursor_end = self.cursor
            + self.text[self.cursor..end]
                .graphemes(true)
                .next()
                .map_or(0, str::len);
        looked_at(usize::from(cursor_end > self.cursor));
        loop {
            let marks = usize::from(start > 0) + usize::from(end < self.text.len());
            let room = width - marks;
            if used <= room && cursor_col < room {
                break;
            }
            let after = self.text[cursor_end..end].graphemes(true).next_back();
            let before = self.text[start..self.cursor].graphemes(true).next();
            if let Some(g) = after.filter(|_| used > room) {
                end -= g.len();
                used -= grapheme_width(g);
            } else if let Some(g) = before {
                start += g.len();
                used -= grapheme_width(g);
                cursor_col -= grapheme_width(g);
            } else {
                break;
            }
            looked_at(1);
        }
        let mut shown = String::new();
        if start > 0 {
            shown.push(HIDDEN);
            cursor_col += 1;
        }
        shown.push_str(&self.text[start..end]);
        if end < self.text.len() {
            shown.push(HIDDEN);
        }
        (shown, cursor_col)
    }
}

/// What the input line shows at an edge where text is hidden (a line
/// longer than the screen is wide, scrolled sideways).
pub const HIDDEN: char = '…';

#[cfg(test)]
thread_local! {
    /// Clusters looked at by this thread's input lines (tests only).
    static LOOKED_AT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Count `n` clusters looked at; the tests check that typing and drawing
/// a long line cost about linearly in its length (no timing).
fn looked_at(n: usize) {
    #[cfg(test)]
    LOOKED_AT.with(|c| c.set(c.get() + n));
    let _ = n;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> InputLine {
        let mut l = InputLine::default();
        for c in s.chars() {
            l.insert(c);
        }
        l
    }

    #[test]
    fn editing_moves_by_cluster() {
        let mut l = typed("ae\u{301}😀z");
        assert_eq!(l.text(), "ae\u{301}😀z");
        l.left();
        l.left();
        l.backspace(); // removes é (e + combining accent) at once
        assert_eq!(l.text(), "a😀z");
        l.delete();
        assert_eq!(l.text(), "az");
        l.home();
        l.insert('>');
        assert_eq!(l.text(), ">az");
        l.end();
        l.insert('!');
        assert_eq!(l.text(), ">az!");
    }

    #[test]
    fn words_and_kills() {
        let mut l = typed("hello big  world");
        l.delete_word_before();
        assert_eq!(l.text(), "hello big  ");
        l.delete_word_before();
        assert_eq!(l.text(), "hello ");
        l.insert_str("there now");
        l.word_left();
        assert_eq!(&l.text()[l.cursor()..], "now");
        l.word_left();
        l.delete_to_end();
        assert_eq!(l.text(), "hello ");
        l.insert_str("x");
        l.home();
        l.word_right();
        assert_eq!(l.cursor(), 5);
        l.delete_to_start();
        assert_eq!(l.text(), " x");
    }

    #[test]
    fn history_keeps_the_draft() {
        let mut l = typed("one");
        assert_eq!(l.take(), "one");
        l.insert_str("two");
        l.take();
        l.insert_str("draft");
        l.history_up();
        assert_eq!(l.text(), "two");
        l.history_up();
        assert_eq!(l.text(), "one");
        l.history_up();
        assert_eq!(l.text(), "one");
        l.history_down();
        l.history_down();
        assert_eq!(l.text(), "draft");
    }

    /// Clusters looked at while `f` runs.
    fn work(f: impl FnOnce()) -> usize {
        let before = LOOKED_AT.with(std::cell::Cell::get);
        f();
        LOOKED_AT.with(std::cell::Cell::get) - before
    }

    #[test]
    fn a_long_line_costs_linearly_to_type_and_to_draw() {
        // 70,000 characters arriving one key at a time (a paste the
        // terminal did not bracket), the line drawn at 80 columns after
        // each: a key costs the screen's width and a few clusters more,
        // as much at the end as at the start. (Before, each key went
        // through the whole line twice: 70,000 keys, 4.9 billion clusters.)
        let mut l = InputLine::default();
        let mut rounds = Vec::new();
        for _ in 0..7 {
            rounds.push(work(|| {
                for i in 0..10_000 {
                    l.insert(if i % 8 == 7 { ' ' } else { 'x' });
                    l.visible(80);
                }
            }));
        }
        assert_eq!(l.text().len(), 70_000);
        for (n, r) in rounds.iter().enumerate() {
            assert!(*r <= 10_000 * (80 + 4), "round {n}: {r} clusters");
            assert!(*r <= rounds[0] + 10_000, "round {n} costs more: {rounds:?}");
        }
        // Moving and deleting at the end of it, and drawing, look at a
        // few clusters.
        let keys = work(|| {
            l.left();
            l.right();
            l.backspace();
            l.delete_word_before();
            l.insert('y');
        });
        assert!(keys <= 8, "{keys}");
        assert!(work(|| drop(l.visible(80))) <= 82);

        // A bracketed paste of the same length costs its length, once.
        let mut l = InputLine::default();
        l.insert_str("before ");
        let pasted = "x".repeat(70_000);
        let cost = work(|| l.insert_str(&pasted));
        assert!(cost <= 70_000 + 4, "{cost}");
        assert_eq!(l.cursor(), l.text().len());
        let (shown, col) = l.visible(80);
        assert_eq!((shown, col), (format!("{HIDDEN}{}", "x".repeat(78)), 79));
    }

    #[test]
    fn the_cursor_stays_on_a_cluster_boundary() {
        // A combining accent typed after a letter joins it; one typed at
        // the start, or pasted before a letter, stands alone.
        let mut l = typed("e\u{301}");
        assert_eq!(l.cursor(), l.text().len());
        l.home();
        l.insert('\u{301}');
        assert_eq!(l.cursor(), 2);
        l.end();
        // A flag typed in two halves, and an emoji joined on.
        l.insert_str("\u{1f1eb}");
        l.insert_str("\u{1f1f7}");
        l.left();
        assert_eq!(&l.text()[l.cursor()..], "\u{1f1eb}\u{1f1f7}");
        l.end();
        l.insert_str("\u{1f468}\u{200d}");
        l.insert('\u{1f469}');
        l.left();
        assert_eq!(&l.text()[l.cursor()..], "\u{1f468}\u{200d}\u{1f469}");
        // Typed in the middle of a regional-indicator pair, a third one
        // pairs with the first: the cursor goes past the pair it made.
        let mut l = typed("\u{1f1eb}\u{1f1f7}");
        l.left();
        l.right();
        l.home();
        l.insert('\u{1f1e9}');
        assert_eq!(l.cursor(), 8, "{:?}", l.text());
    }

    #[test]
    fn a_long_line_scrolls_to_keep_the_cursor_in_view() {
        let l = typed("abcdefghij");
        assert_eq!(l.visible(20), ("abcdefghij".into(), 10));
        let (shown, col) = l.visible(5);
        assert_eq!((shown.as_str(), col), ("…hij", 4));
        let mut l = typed("漢字漢字漢字");
        l.home();
        l.right();
        let (shown, col) = l.visible(5);
        assert_eq!((shown.as_str(), col), ("漢字…", 2));
    }

    /// Scrolled sideways, the line showed no sign of what was hidden
    /// (`bob #rust> 789…-END` read as the whole line): the edge where
    /// text is hidden shows `…`, at the start, the end or both, and the
    /// cursor never sits on a mark.
    #[test]
    fn a_line_wider_than_its_room_marks_where_text_is_hidden() {
        let mut l = typed("START-0123456789-END");
        assert_eq!(l.visible(30), ("START-0123456789-END".into(), 20));
        assert_eq!(l.visible(10), ("…6789-END".into(), 9));
        l.home();
        assert_eq!(l.visible(10), ("START-012…".into(), 0));
        for _ in 0..10 {
            l.right();
        }
        assert_eq!(&l.text()[l.cursor()..], "456789-END");
        assert_eq!(l.visible(10), ("…RT-01234…".into(), 8));
        // Wide clusters: the marks take a column each, the cursor's
        // cluster stays whole beside them.
        let mut l = typed("漢字漢字漢字");
        l.home();
        l.right();
        l.right();
        assert_eq!(l.visible(6), ("…字漢…".into(), 3));
        // Too narrow for marks and text: the text alone, as before.
        assert_eq!(l.visible(2), ("漢".into(), 0));
    }
}
