//! Progress of a long run on stderr, drawn by indicatif.
//!
//! A bar is drawn only when progress is wanted (no `--quiet`) and stderr
//! is a terminal (and not TERM=dumb): a log file or a pipe gets no redrawn
//! lines, only the one-line notes the workloads print before and after.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Deliveries of a traffic workload; the message says what was sent.
pub const DELIVERIES: &str =
    "[{prefix}] {elapsed_precise} {wide_bar} {human_pos}/{human_len} delivered ({per_sec:0}) {msg}";
/// Seconds of a soak; the message carries its counters.
pub const SOAK: &str = "[{prefix}] {elapsed_precise} {wide_bar} {msg}";
/// Connections of an idle run that finished joining (or failed).
pub const JOINS: &str =
    "[{prefix}] {elapsed_precise} {wide_bar} {human_pos}/{human_len} joined {msg}";

/// A bar counting to `len` in the style `template` (one of the above),
/// labelled `prefix`; hidden unless `show` and stderr is a terminal.
pub fn bar(show: bool, len: u64, template: &'static str, prefix: String) -> ProgressBar {
    let target = if show {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    // The templates are constants, checked by a test.
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::with_draw_target(Some(len), target)
        .with_style(style)
        .with_prefix(prefix);
    // Keep the clock moving between updates (idle's batches take seconds).
    if !bar.is_hidden() {
        bar.enable_steady_tick(Duration::from_millis(500));
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse() {
        for t in [DELIVERIES, SOAK, JOINS] {
            assert!(ProgressStyle::with_template(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn quiet_is_hidden() {
        let b = bar(false, 10, DELIVERIES, "x".into());
        assert!(b.is_hidden());
        b.set_position(5);
        assert_eq!(b.position(), 5);
    }
}
