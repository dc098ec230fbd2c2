//! Settings each in range that cannot work together, refused at start
//! with a message that names them and says what would.

use super::Args;

impl Args {
    /// Settings that are each in range but cannot work together: the
    /// message names them.
    pub fn check(&self) -> Result<(), String> {
        let burst = self.burst_bytes.filter(|b| *b < self.max_frame_bytes);
        if let Some(burst) = burst.filter(|_| self.rate_bytes() > 0) {
            return Err(format!(
                "--burst-bytes {burst} is less than one frame of --max-frame-bytes {}; use at least {}",
                self.max_frame_bytes, self.max_frame_bytes
            ));
        }
        let one_frame = u64::from(self.max_frame_bytes) + 36;
        if self.outbound_queue_bytes < one_frame {
            // The least that starts: a queue must also exceed a replay
            // (checked below), so say that too when it is the larger.
            let least = one_frame.max(self.replay_bytes.saturating_add(1));
            let replay = if least > one_frame {
                format!(" (more than --replay-bytes {})", self.replay_bytes)
            } else {
                String::new()
            };
            return Err(format!(
                "--outbound-queue-bytes {} cannot hold one frame of --max-frame-bytes {}; use at least {least}{replay}",
                self.outbound_queue_bytes, self.max_frame_bytes,
            ));
        }
        if let Some(max) = self.outbound_queue_max_bytes {
            if max < self.outbound_queue_bytes {
                return Err(format!(
                    "--outbound-queue-max-bytes {max} is below --outbound-queue-bytes {}; use at least that",
                    self.outbound_queue_bytes
                ));
            }
        }
        match (&self.node, self.cluster.is_empty()) {
            (None, false) => return Err("--cluster needs --node NAME (one name per node)".into()),
            (Some(_), true) => return Err("--node is for cluster mode: give --cluster too".into()),
            (Some(n), false) => {
                let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
                if n.is_empty() || n.len() > 32 || !n.chars().all(ok) {
                    return Err(format!("--node {n:?}: use 1 to 32 of a-z A-Z 0-9 - _"));
                }
            }
            (None, true) => {}
        }
        if self.replay_bytes >= self.outbound_queue_bytes {
            return Err(format!(
                "--replay-bytes {} must be less than --outbound-queue-bytes {}: a replay would close its own client",
                self.replay_bytes, self.outbound_queue_bytes
            ));
        }
        self.check_reads()
    }

    /// The read allowance against the settings it must hold: one replay,
    /// and one history page, fit in its burst.
    fn check_reads(&self) -> Result<(), String> {
        let Some(burst) = self.read_burst_bytes else {
            return Ok(());
        };
        let least = self.replay_bytes.max(u64::from(self.max_frame_bytes));
        if burst < least && self.read_rate_bytes() > 0 {
            return Err(format!(
                "--read-burst-bytes {burst} is less than one replay of --replay-bytes {} or one page of --max-frame-bytes {}; use at least {least}",
                self.replay_bytes, self.max_frame_bytes
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Args;

    /// A refusal's "use at least N", followed, is not refused again: the
    /// smallest queue was one frame's, though a queue must also exceed
    /// `--replay-bytes` (524,288 by default, ten times a frame).
    #[test]
    fn the_smallest_outbound_queue_said_is_one_that_starts() {
        use clap::Parser;
        for extra in [
            &[][..],
            &["--replay-bytes", "2048"],
            &["--max-frame-bytes", "1000000"],
        ] {
            let mut argv = vec!["chatserver", "--outbound-queue-bytes", "4096"];
            argv.extend_from_slice(extra);
            let mut args = Args::try_parse_from(&argv).unwrap();
            let err = args.check().unwrap_err();
            let least = err
                .split("use at least ")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{argv:?}: no least in {err:?}"));
            args.outbound_queue_bytes = least;
            assert_eq!(args.check(), Ok(()), "{argv:?}: {err}");
        }
    }
}
