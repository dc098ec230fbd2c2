//! The log's way out: stdout, never in the way of chat. Log lines go
//! into a bounded queue that one thread of its own writes to stdout, so
//! a stdout nobody reads (`chatserver | less` paused, a terminal after
//! Ctrl-S, a stuck log shipper) stops nothing but the log: once the
//! queue holds [`LOG_QUEUE_BYTES`], lines are dropped and counted, and
//! the first line stdout takes after them is `N log lines dropped:
//! stdout was not being read`. At exit, what is queued is written, for
//! [`FLUSH_AT_EXIT`] at most.
//!
//! Stdout that cannot be written any more: stderr says so once, naming
//! why, and the server serves on without a log: chat does not stop
//! because nobody reads its log (`chatserver | head -1` after head
//! exits), and a line on stderr for every event after that would fill
//! whatever keeps stderr.

use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The most log text that waits for stdout: past it, lines are dropped
/// (and counted) rather than have anything wait for a reader. Some
/// thousands of lines: a pager paused for a while loses nothing.
pub const LOG_QUEUE_BYTES: usize = 4 << 20;

/// The longest the server's exit waits for stdout to take the log's
/// last lines (a stdout nobody reads would keep it for ever).
pub const FLUSH_AT_EXIT: Duration = Duration::from_secs(1);

/// Writing as usual.
const WRITING: u8 = 0;
/// A write failed and was said; writes are still tried (a full disk
/// under a log file may get room again), their failures quietly.
const FAILING: u8 = 1;
/// Its reader is gone (a broken pipe): nothing is written any more.
const GONE: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(WRITING);

/// The queue to stdout, once [`start`]ed.
static QUEUE: OnceLock<Queue> = OnceLock::new();

/// Start the thread that writes the log to stdout; `ansi`: whether the
/// log's lines are coloured (so is the line saying some were dropped).
pub fn start(ansi: bool) {
    QUEUE.get_or_init(|| Queue::new(LogOut, LOG_QUEUE_BYTES, ansi));
}

/// Wait until stdout has taken what was queued before now, or
/// `within` has passed; whether it took it all. Without [`start`]
/// there is nothing queued.
pub fn flush(within: Duration) -> bool {
    QUEUE.get().is_none_or(|q| q.flush(within))
}

/// The log's writer (`tracing`'s, and the lines at start): each write
/// is queued for stdout whole, or dropped if the queue is full; it
/// never waits for stdout, and never fails. Without [`start`], it
/// writes to stdout itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Queued;

impl Write for Queued {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match QUEUE.get() {
            Some(q) => q.push(buf),
            None => {
                LogOut.write_all(buf)?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Log lines on their way to a writer that may not take them: the
/// writing side of a thread that writes them.
struct Queue {
    tx: mpsc::Sender<Line>,
    shared: Arc<Shared>,
}

/// One write of the log (a line, or the lines at start), and the line
/// saying how many were dropped just before it, if any were.
struct Line {
    dropped_before: Option<(u64, String)>,
    bytes: Vec<u8>,
}

/// What the writing side and the thread both see.
struct Shared {
    /// The most bytes queued.
    bound: usize,
    /// Whether the log's lines are coloured.
    ansi: bool,
    /// The bytes queued and not yet written.
    bytes: AtomicUsize,
    /// Lines dropped since the last one queued.
    dropped: AtomicU64,
    /// Lines queued, ever.
    queued: AtomicU64,
    /// Lines the thread has written (or given up on), ever.
    written: Mutex<u64>,
    more_written: Condvar,
}

impl Queue {
    /// A queue of at most `bound` bytes into `out`, written by a thread
    /// of its own.
    fn new<W: Write + Send + 'static>(out: W, bound: usize, ansi: bool) -> Queue {
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            bound,
            ansi,
            bytes: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            written: Mutex::new(0),
            more_written: Condvar::new(),
        });
        let theirs = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_lines(&rx, out, &theirs));
        if let Err(e) = spawned {
            // Lines queued pile up to the bound, then are dropped: the
            // server serves on, without a log.
            let _ = writeln!(
                io::stderr(),
                "chatserver: cannot start the log's thread ({e}); serving on without a log"
            );
        }
        Queue { tx, shared }
    }

    /// Queue `bytes`, or count them dropped if the queue is full.
    fn push(&self, bytes: &[u8]) {
        let s = &self.shared;
        let before = s.bytes.fetch_add(bytes.len(), Ordering::AcqRel);
        if before + bytes.len() > s.bound {
            s.bytes.fetch_sub(bytes.len(), Ordering::AcqRel);
            s.dropped.fetch_add(1, Ordering::AcqRel);
            return;
        }
        // Said with the time of the line after the gap, not of its writing.
        let dropped = s.dropped.swap(0, Ordering::AcqRel);
        let line = Line {
            dropped_before: (dropped > 0).then(|| (dropped, dropped_line(dropped, s.ansi))),
            bytes: bytes.to_vec(),
        };
        s.queued.fetch_add(1, Ordering::AcqRel);
        if let Err(mpsc::SendError(line)) = self.tx.send(line) {
            // The thread is gone: nothing will be written.
            s.bytes.fetch_sub(line.bytes.len(), Ordering::AcqRel);
            let before = line.dropped_before.map_or(0, |(n, _)| n);
            s.dropped.fetch_add(before + 1, Ordering::AcqRel);
            let mut written = s.written.lock().unwrap_or_else(|e| e.into_inner());
            *written += 1;
        }
    }

    /// Wait until what was queued before now is written, at most `within`.
    fn flush(&self, within: Duration) -> bool {
        let s = &self.shared;
        let target = s.queued.load(Ordering::Acquire);
        let deadline = Instant::now() + within;
        let mut written = s.written.lock().unwrap_or_else(|e| e.into_inner());
        while *written < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            written = match s.more_written.wait_timeout(written, left) {
                Ok((w, _)) => w,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }
}

/// The thread: each line as it comes, those waiting behind it in the
/// same write (a thousand at most, so that an exit's wait sees them
/// go under a steady stream), said written once `out` has taken them.
fn write_lines<W: Write>(rx: &mpsc::Receiver<Line>, out: W, shared: &Shared) {
    const BATCH: u64 = 1000;
    let mut out = BufWriter::with_capacity(64 << 10, out);
    let mut written = 0u64;
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let batch_end = written + BATCH;
        while let Some(line) = next {
            if let Some((_, said)) = &line.dropped_before {
                let _ = out.write_all(said.as_bytes());
            }
            let _ = out.write_all(&line.bytes);
            shared.bytes.fetch_sub(line.bytes.len(), Ordering::AcqRel);
            written += 1;
            next = if written < batch_end {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        let _ = out.flush();
        let mut said = shared.written.lock().unwrap_or_else(|e| e.into_inner());
        *said = written;
        shared.more_written.notify_all();
    }
}

/// The line saying `n` lines were dropped, as the log's warnings look.
fn dropped_line(n: u64, ansi: bool) -> String {
    use tracing_subscriber::fmt::format::Writer;
    use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
    let mut now = String::new();
    if SystemTime.format_time(&mut Writer::new(&mut now)).is_err() {
        now = "<unknown time>".into();
    }
    let text = format!("{n} log lines dropped: stdout was not being read");
    if ansi {
        format!("\x1b[2m{now}\x1b[0m \x1b[33m WARN\x1b[0m {text}\n")
    } else {
        format!("{now}  WARN {text}\n")
    }
}

/// Stdout for the log's thread: a write never fails, what cannot be
/// written is dropped.
#[derive(Debug, Clone, Copy, Default)]
struct LogOut;

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

#[cfg(test)]
mod tests {
    use std::io::{self, Write};
    use std::sync::{mpsc, Arc, Mutex};
    use std::time::Duration;

    use super::Queue;

    /// Long enough for a thread to get going on a loaded machine; a
    /// passing run never waits it out.
    const WAIT: Duration = Duration::from_secs(10);

    /// A stdout whose reader is paused: each write says it began, then
    /// waits until the gate opens (its sender dropped), then is kept.
    struct Paused {
        began: mpsc::Sender<()>,
        gate: mpsc::Receiver<()>,
        kept: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Paused {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _ = self.began.send(());
            let _ = self.gate.recv();
            self.kept.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A paused stdout; what it has kept, its writes' starts, its gate.
    type Handles = (Arc<Mutex<Vec<u8>>>, mpsc::Receiver<()>, mpsc::Sender<()>);

    /// A paused stdout and its [`Handles`].
    fn paused() -> (Paused, Handles) {
        let (began, writing) = mpsc::channel();
        let (open, gate) = mpsc::channel();
        let kept = Arc::new(Mutex::new(Vec::new()));
        let out = Paused {
            began,
            gate,
            kept: Arc::clone(&kept),
        };
        (out, (kept, writing, open))
    }

    /// While stdout takes nothing, lines wait up to the bound and the
    /// rest are dropped, never waited for; once it takes lines again,
    /// those waiting come out in order, then one line says how many
    /// were dropped, right where they were.
    #[test]
    fn lines_past_the_bound_are_dropped_and_counted_where_they_were() {
        let (out, (kept, writing, open)) = paused();
        let queue = Queue::new(out, 100, false);
        queue.push(b"first\n");
        writing.recv_timeout(WAIT).expect("the thread writes");
        // stdout is stuck on `first`: 3 lines of 30 bytes fit in 100, the
        // next 2 do not.
        let line = |i: usize| format!("{i:<29}\n");
        for i in 0..5 {
            queue.push(line(i).as_bytes());
        }
        drop(open);
        assert!(queue.flush(WAIT), "the lines waiting are written");
        queue.push(b"after\n");
        assert!(queue.flush(WAIT), "the line after is written");
        let kept = String::from_utf8(kept.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = kept.lines().collect();
        assert_eq!(lines.len(), 6, "{kept}");
        assert_eq!(lines[0], "first");
        for i in 0..3 {
            assert_eq!(lines[1 + i], line(i).trim_end_matches('\n'));
        }
        assert!(
            lines[4].ends_with("  WARN 2 log lines dropped: stdout was not being read"),
            "{kept}"
        );
        assert_eq!(lines[5], "after");
    }

    /// The exit's wait for the last lines ends without them when stdout
    /// takes nothing.
    #[test]
    fn a_flush_gives_up_on_a_stdout_that_takes_nothing() {
        let (out, (kept, writing, open)) = paused();
        let queue = Queue::new(out, 100, false);
        queue.push(b"stuck\n");
        writing.recv_timeout(WAIT).expect("the thread writes");
        assert!(!queue.flush(Duration::from_millis(50)));
        assert!(kept.lock().unwrap().is_empty());
        drop(open);
        assert!(queue.flush(WAIT), "written once stdout takes it");
    }
}
