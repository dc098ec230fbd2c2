//! The message area: the current room's lines, newest at the bottom,
//! laid out from the bottom up as far as the view shows (scrolled back,
//! from where it is), with our messages still being sent below them; and
//! a resize that keeps the line being read in view.

use super::*;

/// Where a row of the message area comes from: the entry (its index in
/// `app.entries`), which of its rows counted from its last, and how many
/// it has; `None` for our messages still being sent.
type Place = Option<(usize, usize, usize)>;

/// Rows of the current room at a width, counted from the bottom.
#[derive(Default)]
struct Bottom {
    /// The rows asked for, newest first, and where each comes from.
    rows: Vec<(Row<'static>, Place)>,
    /// The rows counted: up to one past those asked for, fewer at the
    /// top.
    counted: usize,
    /// Entries wholly below the rows asked for that may be new lines
    /// ([`crate::tui::app::Entry::may_be_new`]).
    news_under: usize,
}

/// The current room's rows at `width`, newest first (our messages still
/// being sent, then the entries): `take` of them from `skip` rows above
/// the bottom, laid out. Those below are counted ([`entry_height`]: each
/// entry laid out once for a width), not laid out again: a draw far back
/// costs about what it shows, and a pass of counts.
fn bottom_rows(app: &mut App, width: usize, skip: usize, take: usize) -> Bottom {
    let mut got = Bottom::default();
    let theme = app.theme;
    let current = app.state.current.clone();
    let stop = skip.saturating_add(take).saturating_add(1);
    let keep = |got: &mut Bottom, rows: Vec<Row<'static>>, at: Option<usize>| {
        let n = rows.len();
        for (up, row) in rows.into_iter().rev().enumerate() {
            let i = got.counted + up;
            if i >= skip && i - skip < take {
                got.rows.push((row, at.map(|at| (at, up, n))));
            }
        }
        got.counted += n;
    };
    // Our messages still being sent are the newest.
    for r in sendings(app, width) {
        keep(&mut got, r, None);
    }
    for (at, entry) in app.entries.iter().enumerate().rev() {
        if got.counted >= stop {
            break;
        }
        if !crate::tui::app::shown_in(entry, &current) {
            continue;
        }
        let n = entry_height(entry, theme, &mut app.nicks, width);
        if got.counted + n <= skip {
            got.counted += n;
            got.news_under += usize::from(entry.may_be_new());
        } else {
            keep(
                &mut got,
                entry_rows(entry, theme, &mut app.nicks, width),
                Some(at),
            );
        }
    }
    got
}

/// The rows at `width` below the entry `at` (an index in `app.entries`)
/// and its own, if it is shown.
fn rows_under(app: &mut App, width: usize, at: usize) -> Option<(usize, usize)> {
    let mut under: usize = sendings(app, width).iter().map(Vec::len).sum();
    let (theme, current) = (app.theme, app.state.current.clone());
    for (i, e) in app.entries.iter().enumerate().rev() {
        if !crate::tui::app::shown_in(e, &current) {
            continue;
        }
        let n = entry_height(e, theme, &mut app.nicks, width);
        if i == at {
            return Some((under, n));
        }
        under += n;
    }
    None
}

/// Our messages still being sent shown in the current room, newest first,
/// as rows at `width`: lines typed that the session has not taken yet,
/// then those it sent.
fn sendings(app: &mut App, width: usize) -> Vec<Vec<Row<'static>>> {
    let current = app.state.current.clone();
    let waiting = app.waiting_messages();
    // Each in its own room's view, as the entries.
    waiting
        .iter()
        .rev()
        .chain(app.state.pending.iter().rev())
        .filter(|s| current.as_ref().is_none_or(|c| *c == s.room))
        .map(|s| sending_rows(s, &app.state.nick, app.theme, &mut app.nicks, width))
        .collect()
}

/// The scroll that keeps the text read at the bottom of the view when
/// the message area goes from `from` columns to `to` (the terminal was
/// resized, or the list of names shown or hidden): the same entry, as
/// far up its rows (which may now be more or fewer) as it was.
pub(super) fn same_text_at(app: &mut App, from: usize, to: usize) -> usize {
    let read = bottom_rows(app, from, app.scroll, 1);
    let Some(&(_, Some((entry, up, n)))) = read.rows.first() else {
        return app.scroll;
    };
    let Some((last, now)) = rows_under(app, to, entry) else {
        return app.scroll;
    };
    last + up * now / n.max(1)
}

/// The current room's lines, newest at the bottom, `app.scroll` rows back.
pub(super) fn draw_messages(frame: &mut Frame<'_>, app: &mut App, area: Rect) {
    let width = usize::from(area.width);
    let height = usize::from(area.height);
    let want = app.scroll.saturating_add(height);
    // One row more than the view needs: whether there is one above it.
    let mut got = bottom_rows(app, width, app.scroll, height);
    app.at_top = got.counted <= want;
    // Not further back than the oldest line.
    let most = got.counted.saturating_sub(height);
    if app.scroll > most {
        app.scroll = most;
        got = bottom_rows(app, width, app.scroll, height);
    }
    if app.scroll == 0 {
        app.new_below = 0;
    }
    app.new_below_at_most(got.news_under);
    let mut shown: Vec<Row<'static>> = got.rows.into_iter().map(|(row, _)| row).collect();
    shown.reverse();
    // Newest at the bottom: an area not yet full is filled from there.
    let top = area.y + area.height - shown.len() as u16;
    let rect = Rect {
        y: top,
        height: shown.len() as u16,
        ..area
    };
    frame.render_widget(Paragraph::new(shown), rect);
}

#[cfg(test)]
mod tests;
