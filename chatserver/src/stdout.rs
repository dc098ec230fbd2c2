//! The log's way out: stdout, until it cannot be written. Then stderr
//! says so once, naming why, and the server serves on without a log:
//! chat does not stop because nobody reads its log (`chatserver | head
//! -1` after head exits), and a line on stderr for every event after
//! that would fill whatever keeps stderr.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU8, Ordering};

/// Writing as usual.
const WRITING: u8 = 0;
/// A write failed and was said; writes are still tried (a full disk
/// under a log file may get room again), their failures quietly.
const FAILING: u8 = 1;
/// Its reader is gone (a broken pipe): nothing is written any more.
const GONE: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(WRITING);

/// Stdout for the log (`tracing`'s writer) and the lines at start: a
/// write never fails, what cannot be written is dropped.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogOut;

impl Write for LogOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if STATE.load(Ordering::Relaxed) != GONE {
            if let Err(e) = io::stdout().lock().write_all(buf) {
                failed(&e);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if STATE.load(Ordering::Relaxed) != GONE {
            if let Err(e) = io::stdout().lock().flush() {
                failed(&e);
            }
        }
        Ok(())
    }
}

/// Say the first failure on stderr; a broken pipe stops the writing.
fn failed(e: &io::Error) {
    let gone = e.kind() == io::ErrorKind::BrokenPipe;
    let before = STATE.swap(if gone { GONE } else { FAILING }, Ordering::Relaxed);
    if before != WRITING {
        return;
    }
    let line = if gone {
        format!(
            "chatserver: the log cannot be written to stdout any more ({e}: what read it has \
             closed it); serving on without a log"
        )
    } else {
        format!(
            "chatserver: the log cannot be written to stdout ({e}); serving on, its lines lost \
             while writing fails"
        )
    };
    // Nowhere left to say it if stderr fails too.
    let _ = writeln!(io::stderr(), "{line}");
}
