//! `--stay`: SIGINT and SIGTERM ask the client to leave (instead of
//! killing it), since it no longer leaves when its input ends. The first
//! signal leaves once every message sent has been answered; a second
//! leaves at once.

use tokio::sync::mpsc;

/// Signals that ask the client to stop; without them, never.
#[derive(Debug, Default)]
pub struct Stop {
    rx: Option<mpsc::UnboundedReceiver<()>>,
}

impl Stop {
    /// Never asks to stop.
    pub fn never() -> Stop {
        Stop::default()
    }

    /// Catch SIGINT and SIGTERM (Ctrl-C elsewhere than on Unix) from now
    /// on. Call inside the runtime.
    pub fn on_signals() -> std::io::Result<Stop> {
        let (tx, rx) = mpsc::unbounded_channel();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut int = signal(SignalKind::interrupt())?;
            let mut term = signal(SignalKind::terminate())?;
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        Some(()) = int.recv() => {}
                        Some(()) = term.recv() => {}
                        else => return,
                    }
                    if tx.send(()).is_err() {
                        return;
                    }
                }
            });
        }
        #[cfg(not(unix))]
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                if tx.send(()).is_err() {
                    return;
                }
            }
        });
        Ok(Stop { rx: Some(rx) })
    }

    /// Wait for the next signal (forever, without signals).
    pub async fn recv(&mut self) {
        match &mut self.rx {
            Some(rx) => {
                if rx.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }
}
