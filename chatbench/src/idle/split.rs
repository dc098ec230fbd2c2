//! A run split over child processes (`chatbench idle-worker`): the
//! parent's handle on a child, and the child's side of their line
//! protocol over stdin and stdout.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::time::{timeout, Instant};

use super::conn::{FAILED, JOINED};
use super::hold::{hold, HoldSpec};

pub(super) struct Worker {
    pub(super) child: Child,
    pub(super) stdin: Option<ChildStdin>,
    pub(super) lines: tokio::io::Lines<BufReader<ChildStdout>>,
}

impl Worker {
    /// The next line that is not an error; errors go to `errors`.
    pub(super) async fn expect(
        &mut self,
        word: &str,
        within: Duration,
        errors: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        let deadline = Instant::now() + within;
        loop {
            let line = match timeout(
                deadline.saturating_duration_since(Instant::now()),
                self.lines.next_line(),
            )
            .await
            {
                Ok(Ok(Some(l))) => l,
                _ => {
                    errors.push(format!("a worker did not say {word:?} in time"));
                    return None;
                }
            };
            let mut toks = line.split_whitespace().map(str::to_owned);
            match toks.next().as_deref() {
                Some(w) if w == word => return Some(toks.collect()),
                Some("error") => errors.push(line["error ".len().min(line.len())..].to_string()),
                _ => errors.push(format!("a worker said {line:?}")),
            }
        }
    }

    pub(super) async fn say(&mut self, line: &str) {
        if let Some(s) = &mut self.stdin {
            let _ = s.write_all(format!("{line}\n").as_bytes()).await;
            let _ = s.flush().await;
        }
    }
}

/// The child side of a split idle run (`chatbench idle-worker`).
pub async fn worker(mut spec: HoldSpec) {
    let mut out = tokio::io::stdout();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    // Wait for the parent's go (with what is left of the join budget), so
    // workers join one after the other.
    match lines.next_line().await {
        Ok(Some(l)) if l.starts_with("go") => {
            if let Some(left) = l.strip_prefix("go ").and_then(|s| s.parse::<f64>().ok()) {
                spec.budget = Duration::from_secs_f64(left.max(0.0));
            }
        }
        _ => return,
    }
    let h = hold(&spec).await;
    let mut say = String::new();
    for e in h.errors() {
        say.push_str(&format!("error {e}\n"));
    }
    say.push_str(&format!(
        "joined {} {} {}\n",
        h.count(JOINED),
        h.count(FAILED),
        h.max_seq()
    ));
    let _ = out.write_all(say.as_bytes()).await;
    let _ = out.flush().await;
    // Bounded by the parent, which closes stdin when done (or dies).
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(seq) = line
            .strip_prefix("sync ")
            .and_then(|s| s.parse::<u64>().ok())
        {
            let ok = h.sync(Duration::from_secs(120)).await;
            let msg = if ok {
                "synced\n".to_string()
            } else {
                format!("error connections did not catch up with seq {seq}\nsynced\n")
            };
            let _ = out.write_all(msg.as_bytes()).await;
            let _ = out.flush().await;
        }
    }
    let closed = h.close().await;
    let _ = out.write_all(format!("closed {closed}\n").as_bytes()).await;
    let _ = out.flush().await;
}
