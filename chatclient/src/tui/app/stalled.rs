//! Lines waiting a while for the server with the connection up (a
//! cluster node whose log is away holds what it is sent; a store that
//! does not answer): each shows `--:--` for its time, and the status bar
//! says how many wait ([`App::waiting_note`]) once the oldest has waited
//! [`WAITING_SAID_AFTER`] with nothing acknowledged meanwhile, until the
//! server answers them. While reconnecting the bar says that instead.

use super::*;

/// How long the oldest line may wait for the server, the connection up
/// and nothing acknowledged meanwhile, before the status bar says how
/// many lines wait.
pub const WAITING_SAID_AFTER: Duration = Duration::from_secs(5);

/// What [`App::tick`] keeps of the lines waiting for the server.
#[derive(Debug, Default)]
pub(super) struct Stalled {
    /// The ids of the messages waiting at the last tick, oldest first,
    /// and since when nothing was acknowledged (the connection up all
    /// along): as long as they are the first of those waiting now (more
    /// typed after them), none was answered meanwhile.
    oldest: Option<(Vec<String>, Instant)>,
    /// Since then for [`WAITING_SAID_AFTER`] at the last tick.
    long: bool,
}

impl App {
    /// The screen's clock, `now`, before each draw: the waiting lines
    /// are timed from when the oldest was first seen waiting, or from
    /// the last acknowledgement (the oldest went, or fewer wait), or
    /// from the last reconnect.
    pub fn tick(&mut self, now: Instant) {
        let pending = match self.state.joined {
            true => &self.state.pending[..],
            false => &[],
        };
        // By id: a message answered and another of the same text typed
        // meanwhile is not the same one waiting on.
        let same = self.stalled.oldest.as_ref().is_some_and(|(was, _)| {
            !pending.is_empty()
                && was.len() <= pending.len()
                && was.iter().zip(pending).all(|(id, p)| *id == p.id)
        });
        match &mut self.stalled.oldest {
            Some((was, _)) if same => {
                let more = pending[was.len()..].iter().map(|p| p.id.clone());
                was.extend(more);
            }
            _ => {
                self.stalled.oldest = (!pending.is_empty())
                    .then(|| (pending.iter().map(|p| p.id.clone()).collect(), now));
            }
        }
        self.stalled.long =
            self.stalled.oldest.as_ref().is_some_and(|(_, since)| {
                now.saturating_duration_since(*since) >= WAITING_SAID_AFTER
            });
    }

    /// When to [`tick`](App::tick) next though nothing else happens: when
    /// the lines waiting now will have waited [`WAITING_SAID_AFTER`];
    /// `None` when none wait, or the bar says so already.
    pub fn wake_at(&self) -> Option<Instant> {
        match &self.stalled.oldest {
            Some((_, since)) if !self.stalled.long => Some(*since + WAITING_SAID_AFTER),
            _ => None,
        }
    }

    /// What the status bar says of lines waiting long for the server:
    /// `3 lines waiting for the server` (the messages the session holds,
    /// and those typed after them it has not taken yet, not the commands
    /// nor Ctrl-N's room switches among these); `None` while they have
    /// not waited [`WAITING_SAID_AFTER`].
    pub fn waiting_note(&self) -> Option<String> {
        if !self.stalled.long {
            return None;
        }
        let n = self.state.pending.len() + self.waiting_messages().len();
        let lines = if n == 1 { "line" } else { "lines" };
        Some(format!("{n} {lines} waiting for the server"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::*;

    fn sending(text: &str) -> Sending {
        Sending {
            id: text.into(),
            room: "lobby".into(),
            to: vec![],
            text: text.into(),
            may_have_arrived: true,
        }
    }

    fn pending(app: &mut App, texts: &[&str]) {
        let mut state = app.state.clone();
        state.pending = texts.iter().map(|t| sending(t)).collect();
        app.set_state(state);
    }

    /// The messages waiting as `(id, text)`.
    fn pending_ids(app: &mut App, msgs: &[(&str, &str)]) {
        let mut state = app.state.clone();
        state.pending = msgs
            .iter()
            .map(|(id, text)| Sending {
                id: (*id).into(),
                ..sending(text)
            })
            .collect();
        app.set_state(state);
    }

    fn joined(app: &mut App, joined: bool) {
        let mut state = app.state.clone();
        state.joined = joined;
        app.set_state(state);
    }

    /// The status bar row of a 60 by 5 screen.
    fn bar(app: &mut App) -> String {
        use ratatui::{backend::TestBackend, Terminal};
        let mut t = Terminal::new(TestBackend::new(60, 5)).unwrap();
        t.draw(|f| crate::tui::draw::draw(f, app)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..60).map(|x| buf[(x, 3)].symbol()).collect::<String>()
    }

    /// Lines the server holds say so in the status bar once the oldest
    /// has waited 5 s with the connection up, and say so no more once
    /// they are acknowledged; an acknowledgement, or a reconnect, starts
    /// the wait again. (Nothing said why they showed `--:--`.)
    #[test]
    fn lines_waiting_long_for_the_server_are_said_in_the_status_bar() {
        let mut app = app();
        let t0 = Instant::now();
        app.tick(t0);
        assert_eq!(app.wake_at(), None);
        pending(&mut app, &["one", "two", "three"]);
        app.tick(t0);
        assert_eq!(app.wake_at(), Some(t0 + WAITING_SAID_AFTER));
        app.tick(t0 + WAITING_SAID_AFTER - Duration::from_millis(1));
        assert_eq!(app.waiting_note(), None);
        assert!(!bar(&mut app).contains("waiting"), "{}", bar(&mut app));

        app.tick(t0 + WAITING_SAID_AFTER);
        assert_eq!(app.wake_at(), None);
        let row = bar(&mut app);
        assert!(row.contains("3 lines waiting for the server"), "{row}");

        // One more typed: still waiting, counted.
        pending(&mut app, &["one", "two", "three", "four"]);
        app.tick(t0 + Duration::from_secs(6));
        assert_eq!(
            app.waiting_note().as_deref(),
            Some("4 lines waiting for the server")
        );
        // The oldest acknowledged: the wait starts again from then.
        let t1 = t0 + Duration::from_secs(7);
        pending(&mut app, &["two", "three", "four"]);
        app.tick(t1);
        assert_eq!(app.waiting_note(), None);
        assert_eq!(app.wake_at(), Some(t1 + WAITING_SAID_AFTER));
        app.tick(t1 + WAITING_SAID_AFTER);
        assert_eq!(
            app.waiting_note().as_deref(),
            Some("3 lines waiting for the server")
        );
        // All acknowledged: said no more.
        pending(&mut app, &[]);
        app.tick(t1 + Duration::from_secs(6));
        assert_eq!(app.waiting_note(), None);
        assert!(!bar(&mut app).contains("waiting"));

        // Reconnecting, the bar says that; back, the wait starts again.
        pending(&mut app, &["five"]);
        joined(&mut app, false);
        let t2 = t1 + Duration::from_secs(10);
        app.tick(t2);
        app.tick(t2 + Duration::from_secs(30));
        assert_eq!(app.waiting_note(), None);
        assert_eq!(app.wake_at(), None);
        joined(&mut app, true);
        let t3 = t2 + Duration::from_secs(31);
        app.tick(t3);
        assert_eq!(app.waiting_note(), None);
        app.tick(t3 + WAITING_SAID_AFTER);
        assert_eq!(
            app.waiting_note().as_deref(),
            Some("1 line waiting for the server")
        );
    }

    /// The oldest acknowledged and another of the same text typed before
    /// the next look (`ok`, `ok` waiting, then `ok`, `x`): something was
    /// answered, and the wait starts again. (Told apart by text, the
    /// first `ok` still seemed to wait, and the bar said so at once.)
    #[test]
    fn an_answer_is_told_by_the_message_not_its_text() {
        let mut app = app();
        let t0 = Instant::now();
        pending_ids(&mut app, &[("1", "ok"), ("2", "ok")]);
        app.tick(t0);
        let t1 = t0 + Duration::from_secs(3);
        pending_ids(&mut app, &[("2", "ok"), ("3", "x")]);
        app.tick(t1);
        assert_eq!(app.wake_at(), Some(t1 + WAITING_SAID_AFTER));
        app.tick(t0 + WAITING_SAID_AFTER);
        assert_eq!(app.waiting_note(), None);
        // One answered out of order (a later one), one more typed: the
        // count is the same, and something was answered still.
        let t2 = t1 + Duration::from_secs(1);
        pending_ids(&mut app, &[("2", "ok"), ("4", "y")]);
        app.tick(t2);
        assert_eq!(app.wake_at(), Some(t2 + WAITING_SAID_AFTER));
        app.tick(t2 + WAITING_SAID_AFTER);
        assert_eq!(
            app.waiting_note().as_deref(),
            Some("2 lines waiting for the server")
        );
    }

    /// The lines typed after those waiting and not taken yet count only
    /// as the messages among them: two Ctrl-N (`/join rust`, `/join
    /// lobby`) and a `/who` with one message waiting are one line
    /// waiting, not four.
    #[test]
    fn only_messages_are_counted_waiting() {
        let mut app = app();
        let t0 = Instant::now();
        pending(&mut app, &["stuck"]);
        app.tick(t0);
        app.handle_event(ctrl('n'));
        app.handle_event(ctrl('n'));
        type_str(&mut app, "/who");
        app.handle_event(key(crossterm::event::KeyCode::Enter));
        assert_eq!(app.waiting.len(), 3, "{:?}", app.waiting);
        app.tick(t0 + WAITING_SAID_AFTER);
        assert_eq!(
            app.waiting_note().as_deref(),
            Some("1 line waiting for the server")
        );
        type_str(&mut app, "more");
        app.handle_event(key(crossterm::event::KeyCode::Enter));
        assert_eq!(
            app.waiting_note().as_deref(),
            Some("2 lines waiting for the server")
        );
    }
}
