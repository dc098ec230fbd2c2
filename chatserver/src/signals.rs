//! The stop signals (SIGINT, SIGTERM, SIGHUP): registered before
//! `listening on` is said, each stopping the server cleanly.

/// The stop signals, registered when made (tokio's `ctrl_c()` would only
/// register when first polled): SIGINT (Ctrl-C), SIGTERM and SIGHUP (the
/// terminal the server was started in closing, which killed it on the
/// spot, telling nobody), each stopping the server cleanly; a second one
/// while it stops ends it at once.
pub struct Signals {
    #[cfg(unix)]
    kinds: Option<UnixSignals>,
}

/// SIGTERM, SIGINT and, unless it was ignored at start, SIGHUP.
#[cfg(unix)]
struct UnixSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: Option<tokio::signal::unix::Signal>,
}

/// A stop signal: its name as the log says it, and the exit status of a
/// process it ends (128 plus its number, as a shell reports it).
#[derive(Debug, Clone, Copy)]
pub struct Stop {
    pub name: &'static str,
    pub status: u8,
}

impl Signals {
    /// Register now (none registered: Ctrl-C, as tokio sees it, alone).
    pub fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            // Started with SIGHUP ignored (`nohup chatserver`): it stays so.
            let hup = (!hangup_ignored()).then(|| signal(SignalKind::hangup()));
            let kinds = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
                hup.transpose(),
            ) {
                (Ok(term), Ok(int), Ok(hup)) => Some(UnixSignals { term, int, hup }),
                _ => None,
            };
            Signals { kinds }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next stop signal.
    pub async fn next(&mut self) -> Stop {
        const INT: Stop = Stop {
            name: "SIGINT",
            status: 130,
        };
        #[cfg(unix)]
        if let Some(k) = &mut self.kinds {
            let hangup = async {
                match &mut k.hup {
                    Some(hup) => hup.recv().await,
                    None => std::future::pending().await,
                }
            };
            return tokio::select! {
                _ = k.int.recv() => INT,
                _ = k.term.recv() => Stop { name: "SIGTERM", status: 143 },
                _ = hangup => Stop { name: "SIGHUP", status: 129 },
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        INT
    }
}

/// Whether this process was started with SIGHUP ignored (as `nohup`
/// starts it).
#[cfg(unix)]
fn hangup_ignored() -> bool {
    // SAFETY: a null new action only reads the current one into `old`,
    // a zeroed `sigaction` that this call fills.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGHUP, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}
