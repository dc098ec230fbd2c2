//! What the network loop (`net.rs`) talks to on the user's side: input
//! events (and signals asking to stop) in; lines, frames, line outcomes
//! and the session's state out. Two implementations: the line mode's
//! [`Console`] (a prompt and lines, or plain pipes) and the full-screen
//! client, [`crate::tui::Tui`].

use chatproto::ServerFrame;
use tokio::sync::mpsc;

use crate::console::{Console, InputEvent};
use crate::ledger::LineOutcome;
use crate::render::Line;
use crate::session::Session;
use crate::stop::Stop;

/// The user's side of the chat, as the network loop sees it.
///
/// The futures are awaited by one task (no `Send` needed).
#[allow(async_fn_in_trait)]
pub trait Ui {
    /// What the user does, in order, and the signals that ask to stop;
    /// both are selected on together with the socket.
    fn input(&mut self) -> (&mut mpsc::Receiver<InputEvent>, &mut Stop);

    /// Show `line`; waits only when the display is far behind.
    async fn print(&self, line: &Line);

    /// A frame as it arrived (shown only by `--json`).
    async fn frame(&self, frame: &ServerFrame);

    /// What became of an input line.
    async fn outcome(&self, outcome: &LineOutcome);

    /// The session changed: its current room, rooms, who is in them, the
    /// messages not acknowledged yet. Called around every batch of output.
    async fn update(&self, session: &Session);

    /// One input line has been acted on (the session already changed).
    fn line_handled(&self, session: &Session);
}

impl Ui for Console {
    fn input(&mut self) -> (&mut mpsc::Receiver<InputEvent>, &mut Stop) {
        (&mut self.input, &mut self.stop)
    }

    async fn print(&self, line: &Line) {
        Console::print(self, line).await;
    }

    async fn frame(&self, frame: &ServerFrame) {
        Console::frame(self, frame).await;
    }

    async fn outcome(&self, outcome: &LineOutcome) {
        Console::outcome(self, outcome).await;
    }

    async fn update(&self, session: &Session) {
        self.set_prompt(&session.prompt());
    }

    fn line_handled(&self, session: &Session) {
        self.set_prompt(&session.prompt());
        Console::line_handled(self);
    }
}
