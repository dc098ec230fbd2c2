//! What the server takes from the flags: the settings worked out from
//! several of them, and the defaults that depend on others.

use super::{Args, DEFAULT_QUEUE_MAX_BYTES};

impl Args {
    /// The limits of each client's outbound queue: past
    /// `--outbound-queue-bytes` for `--slow-consumer-ms` while reading
    /// less than that much, or past
    /// `--outbound-queue-max-bytes` at once (with no grace, the first).
    pub fn queue_limits(&self) -> crate::peer::QueueLimits {
        let bytes = self.outbound_queue_bytes as usize;
        if self.slow_consumer_ms == 0 {
            return crate::peer::QueueLimits::fixed(bytes);
        }
        let max = self
            .outbound_queue_max_bytes
            .map_or_else(|| self.default_queue_max_bytes(), |m| m as usize);
        crate::peer::QueueLimits {
            bytes,
            max_bytes: max.max(bytes),
        }
    }

    /// `--outbound-queue-max-bytes` when not given: 16 MiB, or room for
    /// what entering every room at once queues (a full replay and a
    /// frame of members for each of `--max-rooms-per-client` rooms) and
    /// `--outbound-queue-bytes` besides, if that is more; so a client
    /// entering all its rooms again after a reconnect is never closed
    /// for it at once, however busy its rooms were.
    pub fn default_queue_max_bytes(&self) -> usize {
        let room = self.replay_bytes + u64::from(self.max_frame_bytes);
        let entering = room
            .saturating_mul(u64::from(self.max_rooms_per_client))
            .saturating_add(self.outbound_queue_bytes);
        let entering = usize::try_from(entering).unwrap_or(usize::MAX);
        DEFAULT_QUEUE_MAX_BYTES
            .max(self.outbound_queue_bytes as usize)
            .max(entering)
    }

    /// How fast one address may open connections, as given
    /// (`--connect-rate-per-ip`, `--connect-burst-per-ip`).
    pub fn connect_rate(&self) -> crate::limits::ConnectRate {
        crate::limits::ConnectRate {
            per_minute: self.connect_rate_per_ip,
            burst: self.connect_burst_per_ip,
        }
    }

    /// The byte allowance, in bytes a second: 0 when there is none (also
    /// with no rate limit), by default one frame a second.
    pub fn rate_bytes(&self) -> u32 {
        if self.rate == 0 {
            return 0;
        }
        self.rate_bytes.unwrap_or(self.max_frame_bytes)
    }

    /// The byte allowance's burst: as given, or four frames.
    pub fn burst_bytes(&self) -> u32 {
        self.burst_bytes
            .unwrap_or_else(|| self.max_frame_bytes.saturating_mul(4))
    }

    /// The read allowance, in bytes a second: 0 when there is none (also
    /// with no rate limit).
    pub fn read_rate_bytes(&self) -> u32 {
        if self.rate == 0 {
            return 0;
        }
        self.read_rate_bytes
    }

    /// The read allowance's burst: as given, or a full replay and a frame
    /// of members for each room a client may be in, so that a client
    /// entering all its rooms again after a reconnect waits for none.
    pub fn read_burst_bytes(&self) -> u64 {
        self.read_burst_bytes.unwrap_or_else(|| {
            let room = self.replay_bytes + u64::from(self.max_frame_bytes);
            room.saturating_mul(u64::from(self.max_rooms_per_client))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Args;
    use clap::Parser;

    /// What entering every room at once queues (a full replay and a frame
    /// of members each) fits a client's queue at once when
    /// `--outbound-queue-max-bytes` is not given, with the limit's worth
    /// of other traffic besides (it was 16 MiB whatever the rooms', and
    /// 32 full replays come to 18 MiB: the client was closed at once).
    #[test]
    fn every_room_entered_at_once_fits_the_default_queue() {
        for extra in [
            &[][..],
            &["--max-rooms-per-client", "100"],
            &["--replay-bytes", "1048576", "--max-frame-bytes", "1048576"],
            &["--max-rooms-per-client", "1"],
        ] {
            let mut argv = vec!["chatserver"];
            argv.extend_from_slice(extra);
            let args = Args::try_parse_from(&argv).unwrap();
            let entering = (args.replay_bytes + u64::from(args.max_frame_bytes))
                * u64::from(args.max_rooms_per_client);
            let limits = args.queue_limits();
            assert!(
                limits.max_bytes as u64 >= entering + args.outbound_queue_bytes,
                "{argv:?}: {} for {entering}",
                limits.max_bytes
            );
            assert!(
                limits.max_bytes >= super::DEFAULT_QUEUE_MAX_BYTES,
                "{argv:?}"
            );
        }
        // Given, it is what was given.
        let args =
            Args::try_parse_from(["chatserver", "--outbound-queue-max-bytes", "8388608"]).unwrap();
        assert_eq!(args.queue_limits().max_bytes, 8 << 20);
    }
}
