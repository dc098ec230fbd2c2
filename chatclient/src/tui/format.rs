//! How one line of the message area looks, as styled rows of a width:
//!
//! ```text
//! 12:01 bob: a message long enough to wrap goes on
//!            under its text
//! 12:01 bob -> alice: a private one
//! 12:02 * alice waves
//! 12:02 --> carol is online
//! 12:03 <-- carol left
//! 12:03 ! unknown_nick: not online: zed
//! 09:15 bob: from the history (when it was sent, dim)
//! --:-- alice: sent, not acknowledged yet (dim)
//! ```
//!
//! Text and nicknames from the network go through
//! [`chatproto::escape_control`]: control characters, bidi overrides and
//! zero-width characters are shown as `\u{..}`, never sent raw to the
//! terminal (zero-width joiners inside words are text and stay). A
//! message's newlines are the one exception, as on the web page: each
//! starts a row of its own, under the text ([`wrap`] breaks there).

use chatproto::escape_control;
use ratatui::style::Style;
use ratatui::text::{Line as Row, Span};

use super::app::{same_nick, Entry, Sending};
use super::theme::{NickColours, Theme};
use super::wrap::wrap;
use crate::input::action;
use crate::render::{Line, Piece};

/// The time column of a message not acknowledged yet.
const SENDING_TIME: &str = "--:--";

/// The most rows one line of the message area takes: past them, its last
/// row says how much more there is (`… (63,412 more characters)`), so
/// that one long message (64 KiB without a space is over 700 rows at 100
/// columns) cannot push everything else out of sight. Enough for a
/// message's [`MAX_BREAKS`] line breaks to show as rows. Only the
/// drawing is cut: the text is kept, sent and written out whole.
pub const MAX_ROWS: usize = 60;

/// A line's time column (`HH:MM`): when it arrived, or for a message
/// from the history or missed while away when it was sent (`MM-DD` when
/// that was not `now`'s day), so it does not look newer than it is.
pub fn time_column(line: &Line, now: chrono::DateTime<chrono::Local>) -> String {
    match crate::render::sent_at(line) {
        Some(t) if t.date_naive() == now.date_naive() => t.format("%H:%M").to_string(),
        Some(t) => t.format("%m-%d").to_string(),
        None => now.format("%H:%M").to_string(),
    }
}

#[cfg(test)]
thread_local! {
    /// Entries laid out ([`entry_rows`]) on this thread: what a test of
    /// a draw's cost counts.
    pub static LAID_OUT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many rows an entry takes, kept from the last time it was laid out
/// ([`entry_height`]): a draw far back counts the rows below the screen
/// and lays out only those it shows. Whoever changes a line shown puts a
/// new one here (its rows may differ). Small (a terminal's width and a
/// line's [`MAX_ROWS`] fit in 16 bits): every line kept has one.
#[derive(Debug, Clone, Default)]
pub struct Height(std::cell::Cell<Option<(u16, Theme, u16)>>);

/// The rows `entry` takes at `width`: [`entry_rows`]'s count, laid out
/// once for each width (and theme) it is shown at.
pub fn entry_height(entry: &Entry, theme: Theme, nicks: &mut NickColours, width: usize) -> usize {
    match entry.height.0.get() {
        Some((w, t, n)) if usize::from(w) == width && t == theme => usize::from(n),
        _ => entry_rows(entry, theme, nicks, width).len(),
    }
}

/// `entry` as rows of at most `width` columns (their count is kept in
/// the entry, [`entry_height`]).
pub fn entry_rows(
    entry: &Entry,
    theme: Theme,
    nicks: &mut NickColours,
    width: usize,
) -> Vec<Row<'static>> {
    let rows = lay_out(entry, theme, nicks, width);
    if let (Ok(w), Ok(n)) = (u16::try_from(width), u16::try_from(rows.len())) {
        entry.height.0.set(Some((w, theme, n)));
    }
    rows
}

/// [`entry_rows`], uncounted.
fn lay_out(
    entry: &Entry,
    theme: Theme,
    nicks: &mut NickColours,
    width: usize,
) -> Vec<Row<'static>> {
    #[cfg(test)]
    LAID_OUT.with(|n| n.set(n.get() + 1));
    let time_style = if entry.mention {
        theme.mention_mark()
    } else {
        theme.quiet()
    };
    let mut prefix = Vec::new();
    let mut body = Vec::new();
    match &entry.line {
        Line::Msg {
            history,
            from,
            to,
            text,
            ..
        } => {
            // For history, `time` is when it was sent (`time_column`).
            prefix.push(Span::styled(entry.time.clone(), time_style));
            prefix.push(Span::raw(" "));
            let quiet = if *history {
                theme.quiet()
            } else {
                Style::default()
            };
            let text_style = if entry.mention {
                theme.mention()
            } else {
                quiet
            };
            message(
                &mut prefix,
                &mut body,
                Message {
                    from,
                    to,
                    text,
                    mine: entry.mine,
                    text_style,
                },
                theme,
                nicks,
            );
        }
        Line::Presence { nick, online, .. } => {
            let quiet = theme.quiet();
            prefix.push(Span::styled(format!("{} ", entry.time), quiet));
            prefix.push(Span::styled(if *online { "--> " } else { "<-- " }, quiet));
            let colour = nicks.colour(nick);
            body.push(Span::styled(
                escape_control(nick).into_owned(),
                theme.nick(colour, false),
            ));
            body.push(Span::styled(
                if *online { " is online" } else { " left" },
                quiet,
            ));
        }
        Line::Error { code, message } => {
            prefix.push(Span::styled(format!("{} ", entry.time), theme.quiet()));
            prefix.push(Span::styled("! ", theme.error()));
            body.push(Span::styled(
                format!("{}: {}", escape_control(code), escape_control(message)),
                theme.error(),
            ));
        }
        Line::Notice { text } => {
            prefix.push(Span::styled(format!("{} ", entry.time), theme.quiet()));
            prefix.push(Span::styled("* server: ", theme.notice()));
            body.push(Span::styled(
                escape_control(text).into_owned(),
                theme.notice(),
            ));
        }
        Line::Info(text)
        | Line::Entered { text, .. }
        | Line::Left { text, .. }
        | Line::HistoryNote { text, .. } => {
            prefix.push(Span::styled(format!("{} ", entry.time), theme.quiet()));
            prefix.push(Span::raw("* "));
            body.push(Span::raw(escape_control(text).into_owned()));
        }
        Line::HistoryGone { room } => {
            prefix.push(Span::styled(format!("{} ", entry.time), theme.quiet()));
            prefix.push(Span::raw("* "));
            body.push(Span::raw(
                escape_control(&crate::render::history_gone(room)).into_owned(),
            ));
        }
        Line::HistoryStart {
            room, older_gone, ..
        } => {
            // No time: it marks a place, not a moment.
            let text = format!("— {} —", crate::render::history_start(room, *older_gone));
            body.push(Span::styled(
                escape_control(&text).into_owned(),
                theme.quiet(),
            ));
        }
        Line::Gap { room, filled } => {
            prefix.push(Span::styled(format!("{} ", entry.time), theme.quiet()));
            prefix.push(Span::raw("* "));
            body.push(Span::raw(
                escape_control(&crate::render::gap(room, *filled)).into_owned(),
            ));
        }
        Line::WhileAway { joined, left, .. } => {
            // Quiet, as the presence lines it stands for.
            let quiet = theme.quiet();
            prefix.push(Span::styled(format!("{} ", entry.time), quiet));
            prefix.push(Span::styled("* ", quiet));
            for piece in crate::render::while_away(joined, left) {
                body.push(match piece {
                    Piece::Text(t) => Span::styled(t, quiet),
                    Piece::More(n) => Span::styled(format!(" and {n} more"), quiet),
                    Piece::Nick(n) => Span::styled(
                        escape_control(n).into_owned(),
                        theme.nick(nicks.colour(n), false),
                    ),
                });
            }
        }
    }
    wrap(&prefix, &body, width, MAX_ROWS, theme.quiet())
}

/// One of our messages the server has not acknowledged yet, dim, with
/// `--:--` for a time.
pub fn sending_rows(
    sending: &Sending,
    me: &str,
    theme: Theme,
    nicks: &mut NickColours,
    width: usize,
) -> Vec<Row<'static>> {
    let quiet = theme.quiet();
    let mut prefix = vec![Span::styled(format!("{SENDING_TIME} "), quiet)];
    let mut body = Vec::new();
    message(
        &mut prefix,
        &mut body,
        Message {
            from: me,
            to: &sending.to,
            text: &sending.text,
            mine: true,
            text_style: quiet,
        },
        theme,
        nicks,
    );
    for span in prefix.iter_mut().chain(body.iter_mut()) {
        span.style = span.style.patch(quiet);
    }
    wrap(&prefix, &body, width, MAX_ROWS, quiet)
}

struct Message<'a> {
    from: &'a str,
    to: &'a [String],
    text: &'a str,
    mine: bool,
    text_style: Style,
}

/// `bob -> alice: text`, or `* bob -> alice: waves` for an action.
fn message(
    prefix: &mut Vec<Span<'static>>,
    body: &mut Vec<Span<'static>>,
    m: Message<'_>,
    theme: Theme,
    nicks: &mut NickColours,
) {
    let act = action(m.text);
    if act.is_some() {
        prefix.push(Span::raw("* "));
    }
    let colour = nicks.colour(m.from);
    prefix.push(Span::styled(
        escape_control(m.from).into_owned(),
        theme.nick(colour, m.mine),
    ));
    if !m.to.is_empty() {
        prefix.push(Span::raw(" -> "));
        for (i, n) in m.to.iter().enumerate() {
            if i > 0 {
                prefix.push(Span::raw(", "));
            }
            let colour = nicks.colour(n);
            prefix.push(Span::styled(
                escape_control(n).into_owned(),
                theme.nick(colour, same_nick(n, m.from) && m.mine),
            ));
        }
        if act.is_some() {
            prefix.push(Span::raw(":"));
        }
    }
    match act {
        Some(act) => {
            prefix.push(Span::raw(" "));
            body.push(Span::styled(
                with_breaks(act),
                m.text_style.patch(theme.action()),
            ));
        }
        None => {
            prefix.push(Span::raw(": "));
            body.push(Span::styled(with_breaks(m.text), m.text_style));
        }
    }
}

/// How many of one message's line breaks start rows; any after are shown
/// as `\n`, as before line breaks were rows, so that one message of
/// newlines (64 KiB of them is 65,536 rows) cannot push the whole screen
/// out of sight at once. Nothing is hidden either way.
const MAX_BREAKS: usize = 50;

/// `text` escaped as [`escape_control`] does, but for its first
/// [`MAX_BREAKS`] line breaks (`\n`, or `\r\n`), kept as `\n` for
/// [`wrap`] to break the row at.
fn with_breaks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = 0;
    for (at, _) in text.match_indices('\n').take(MAX_BREAKS) {
        let line = &text[start..at];
        // A `\r` is part of the break only before a newline.
        out.push_str(&escape_control(line.strip_suffix('\r').unwrap_or(line)));
        out.push('\n');
        start = at + 1;
    }
    // The last line, or past the last break kept, the rest escaped whole.
    out.push_str(&escape_control(&text[start..]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::grouped;

    fn text(rows: &[Row<'_>]) -> Vec<String> {
        rows.iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    fn entry(line: Line) -> Entry {
        Entry {
            time: "12:01".into(),
            room: Some("lobby".into()),
            line,
            mention: false,
            mine: false,
            everywhere: false,
            ahead: false,
            held: false,
            cut: false,
            height: Default::default(),
            id: 0,
        }
    }

    fn msg(from: &str, to: &[&str], text: &str, history: bool) -> Line {
        Line::Msg {
            room: Some("lobby".into()),
            history,
            page: false,
            missed: false,
            from: from.into(),
            to: to.iter().map(|s| s.to_string()).collect(),
            text: text.into(),
            ts: 0,
            place: crate::render::Place::default(),
        }
    }

    fn show(line: Line, width: usize) -> Vec<String> {
        let theme = Theme { color: false };
        text(&entry_rows(
            &entry(line),
            theme,
            &mut NickColours::default(),
            width,
        ))
    }

    #[test]
    fn each_kind_of_line() {
        assert_eq!(show(msg("bob", &[], "hi", false), 80), ["12:01 bob: hi"]);
        assert_eq!(
            show(msg("bob", &["alice"], "psst", false), 80),
            ["12:01 bob -> alice: psst"]
        );
        assert_eq!(
            show(msg("bob", &[], "/me waves", false), 80),
            ["12:01 * bob waves"]
        );
        assert_eq!(
            show(msg("bob", &["alice"], "/me winks", false), 80),
            ["12:01 * bob -> alice: winks"]
        );
        assert_eq!(show(msg("bob", &[], "old", true), 80), ["12:01 bob: old"]);
        let presence = |online| Line::Presence {
            room: Some("lobby".into()),
            nick: "carol".into(),
            online,
        };
        assert_eq!(show(presence(true), 80), ["12:01 --> carol is online"]);
        assert_eq!(show(presence(false), 80), ["12:01 <-- carol left"]);
        let away = Line::WhileAway {
            room: Some("lobby".into()),
            joined: vec!["carol".into()],
            left: vec!["dave".into()],
        };
        assert_eq!(
            show(away, 80),
            ["12:01 * while you were away: carol joined; dave left"]
        );
        let error = Line::Error {
            code: "unknown_nick".into(),
            message: "not online: zed".into(),
        };
        assert_eq!(show(error, 80), ["12:01 ! unknown_nick: not online: zed"]);
        assert_eq!(
            show(Line::Info("entered #lobby".into()), 80),
            ["12:01 * entered #lobby"]
        );
        assert_eq!(
            show(Line::Notice { text: "bye".into() }, 80),
            ["12:01 * server: bye"]
        );
        let sending = Sending {
            id: String::new(),
            room: "lobby".into(),
            to: vec![],
            text: "on its way".into(),
            may_have_arrived: true,
        };
        let rows = sending_rows(
            &sending,
            "alice",
            Theme { color: false },
            &mut NickColours::default(),
            80,
        );
        assert_eq!(text(&rows), ["--:-- alice: on its way"]);
    }

    #[test]
    fn wraps_with_a_hanging_indent_at_40_columns() {
        let rows = show(
            msg(
                "bob",
                &[],
                "this message is long enough to need three rows at forty columns",
                false,
            ),
            40,
        );
        assert_eq!(
            rows,
            [
                "12:01 bob: this message is long enough",
                "           to need three rows at forty",
                "           columns",
            ]
        );
    }

    #[test]
    fn a_messages_newlines_are_rows_and_other_controls_stay_escaped() {
        let rows = show(msg("bob", &[], "one\r\ntwo\rx\n\u{1b}[2J", false), 40);
        assert_eq!(
            rows,
            [
                "12:01 bob: one",
                "           two\\rx",
                "           \\u{1b}[2J",
            ]
        );
        assert_eq!(with_breaks("a\r"), "a\\r", "a \\r not before a newline");
        assert_eq!(with_breaks("\n"), "\n");
        // Past the first MAX_BREAKS, newlines are shown as before.
        let many = "x\n".repeat(MAX_BREAKS + 3);
        let shown = with_breaks(&many);
        assert_eq!(shown.matches('\n').count(), MAX_BREAKS);
        assert!(shown.ends_with("x\nx\\nx\\nx\\n"), "{shown}");
    }

    /// A message takes at most MAX_ROWS rows, the last saying how much
    /// is left out; its first MAX_BREAKS lines still show whole; the
    /// text itself is kept whole.
    #[test]
    fn a_message_takes_at_most_max_rows() {
        let word = "y".repeat(10_000);
        let line = msg("bob", &[], &word, false);
        let rows = show(line.clone(), 40);
        assert_eq!(rows.len(), MAX_ROWS);
        // 29 columns a row after `12:01 bob: ` and under it.
        let left = 10_000 - 29 * (MAX_ROWS - 1);
        assert_eq!(
            rows[MAX_ROWS - 1],
            format!("           \u{2026} ({} more characters)", grouped(left))
        );
        assert_eq!(rows[MAX_ROWS - 2], format!("           {}", "y".repeat(29)));
        assert!(matches!(&line, Line::Msg { text, .. } if *text == word));
        // Words wrap as ever; what is left out is counted as drawn.
        let prose = "lorem ipsum ".repeat(1_000);
        let rows = show(msg("bob", &[], &prose, false), 40);
        assert_eq!(rows.len(), MAX_ROWS);
        assert!(rows[MAX_ROWS - 1].contains(" more characters)"), "{rows:?}");
        // As many line breaks as are rows, and no more rows: whole.
        let lines = vec!["a line"; MAX_BREAKS + 1].join("\n");
        let rows = show(msg("bob", &[], &lines, false), 40);
        assert_eq!(rows.len(), MAX_BREAKS + 1);
        assert!(rows.iter().all(|r| r.ends_with("a line")), "{rows:?}");
        // Our own, waiting for the server, alike.
        let sending = Sending {
            id: String::new(),
            room: "lobby".into(),
            to: vec![],
            text: word,
            may_have_arrived: true,
        };
        let theme = Theme { color: false };
        let rows = sending_rows(&sending, "alice", theme, &mut NickColours::default(), 40);
        assert_eq!(rows.len(), MAX_ROWS);
    }

    #[test]
    fn spoofing_is_visible_and_joiners_in_words_are_not_escaped() {
        let rows = show(
            msg("ev\u{1b}il", &[], "\u{1b}[2Jhi\u{202e}x\u{200b}y", false),
            80,
        );
        assert_eq!(
            rows,
            ["12:01 ev\\u{1b}il: \\u{1b}[2Jhi\\u{202e}x\\u{200b}y"]
        );
        let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}";
        let persian = "\u{645}\u{6cc}\u{200c}\u{62e}\u{648}\u{627}\u{647}\u{645}";
        let rows = show(msg("bob", &[], &format!("{family} {persian}"), false), 80);
        // The family is drawn as its three emoji (the joiners are left out
        // of the drawing, see wrap.rs); the non-joiner stays.
        assert_eq!(rows, [format!("12:01 bob: 👨👩👧 {persian}")]);
    }

    #[test]
    fn a_missed_message_is_timed_when_it_was_sent() {
        use chrono::TimeZone;
        let at = |d, h, m| {
            chrono::Local
                .with_ymd_and_hms(2026, 12, d, h, m, 0)
                .unwrap()
        };
        let now = at(2, 12, 0);
        let sent = |d, h, m, missed| Line::Msg {
            room: None,
            history: false,
            page: false,
            missed,
            from: "bob".into(),
            to: vec![],
            text: "hi".into(),
            ts: at(d, h, m).timestamp_millis() as u64,
            place: crate::render::Place::default(),
        };
        assert_eq!(time_column(&sent(2, 9, 30, false), now), "12:00");
        assert_eq!(time_column(&sent(2, 9, 30, true), now), "09:30");
        assert_eq!(time_column(&sent(1, 9, 30, true), now), "12-01");
        assert_eq!(time_column(&Line::Info("x".into()), now), "12:00");
        // A message from the history too (a replay, a page).
        let old = Line::Msg {
            room: None,
            history: true,
            page: true,
            missed: false,
            from: "bob".into(),
            to: vec![],
            text: "hi".into(),
            ts: at(1, 8, 5).timestamp_millis() as u64,
            place: crate::render::Place::default(),
        };
        assert_eq!(time_column(&old, now), "12-01");
    }
}
