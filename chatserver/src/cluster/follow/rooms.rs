//! The rooms: new ones discovered (announced, or found by listing the
//! streams), each stream's start watched, and the limits given to those
//! a starting node finds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::stream;
use futures_util::StreamExt;
use tracing::{info, warn};

use crate::cluster::{
    clamp_i64, jetstream_hint, room_of_stream, Cluster, FromCluster, RESCAN_EVERY, ROOMS_SUBJECT,
};

impl Cluster {
    /// Every `starts_every`, ask each room's stream where it starts, and
    /// tell the hub of each start that moved (the stream's limits dropped
    /// older events, which this node's memory may still hold).
    pub(in crate::cluster) async fn watch_starts(self: Arc<Self>) {
        let mut known: HashMap<String, u64> = HashMap::new();
        let mut tick = tokio::time::interval(self.settings.starts_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut initial = true;
        loop {
            tick.tick().await;
            let rooms = self.room_states().await;
            let first_look = std::mem::replace(&mut initial, false);
            let mut starts = Vec::new();
            for (room, first, _) in rooms {
                // A room there at the first look was loaded from where its
                // stream started then (nothing to say, but to be sure); one
                // seen later began here at 1.
                let was = known.insert(room.clone(), first);
                let moved = match was {
                    Some(was) if first > was => true,
                    None if first > 1 => !first_look,
                    _ => continue,
                };
                starts.push((room, first, moved));
            }
            if !starts.is_empty() && self.to_hub.send(FromCluster::Starts(starts)).await.is_err() {
                return;
            }
            if self.to_hub.is_closed() {
                return;
            }
        }
    }

    /// Follow every room: those that exist now, those announced, and
    /// (every few seconds) any whose announcement was missed.
    pub(in crate::cluster) async fn discover(self: Arc<Self>) {
        let mut announced = match self.client.subscribe(ROOMS_SUBJECT).await {
            Ok(s) => Some(s),
            Err(e) => {
                warn!(error = %e, "cannot hear new rooms; listing streams only");
                None
            }
        };
        let mut tick = tokio::time::interval(RESCAN_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    for room in self.list_rooms().await {
                        self.follow(&room);
                    }
                }
                Some(msg) = async { match announced.as_mut() { Some(s) => s.next().await, None => std::future::pending().await } } => {
                    if let Ok(room) = std::str::from_utf8(&msg.payload) {
                        if chatproto::room_name(room).as_deref() == Ok(room) {
                            self.follow(room);
                        }
                    }
                }
            }
            if self.to_hub.is_closed() {
                return;
            }
        }
    }

    /// Every room with a stream, and its last seq. Each of
    /// `--history-max-messages` and `--history-max-age-days` this node was
    /// given is set first on a stream made with another (before it was
    /// changed, or by a node with other flags), so that retention set anew
    /// applies to the rooms there already, not only to new ones.
    pub(in crate::cluster) async fn room_streams(&self) -> (Vec<(String, u64)>, LimitsSet) {
        let mut out = Vec::new();
        let mut other = Vec::new();
        let (max_messages, max_age) = self.limits();
        for (room, info) in self.room_infos().await {
            out.push((room, info.state.last_sequence));
            let mut config = info.config;
            let was = (config.max_messages, config.max_age);
            if self.settings.max_messages_given {
                config.max_messages = max_messages;
            }
            if self.settings.max_age_given {
                config.max_age = max_age;
            }
            if (config.max_messages, config.max_age) != was {
                other.push(config);
            }
        }
        let mut report = LimitsSet {
            max_messages: self
                .settings
                .max_messages_given
                .then_some(self.settings.max_messages),
            max_age_days: self
                .settings
                .max_age_given
                .then_some(max_age.as_secs() / 86_400),
            ..LimitsSet::default()
        };
        for config in other {
            match self.js.update_stream(&config).await {
                Ok(_) => report.set += 1,
                Err(e) => {
                    report.failed += 1;
                    report.error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        (out, report)
    }

    /// This node's limits of a room's stream: its messages and their age.
    pub(super) fn limits(&self) -> (i64, Duration) {
        (clamp_i64(self.settings.max_messages), self.settings.max_age)
    }

    /// Every room with a stream, with its first and last seq.
    async fn room_states(&self) -> Vec<(String, u64, u64)> {
        let infos = self.room_infos().await;
        infos
            .into_iter()
            .map(|(room, info)| (room, info.state.first_sequence, info.state.last_sequence))
            .collect()
    }

    /// Every room with a stream, and the stream's configuration and state:
    /// one request to NATS per page of streams (256), not one per room.
    async fn room_infos(&self) -> Vec<(String, stream::Info)> {
        let mut streams = self.js.streams();
        let mut out = Vec::new();
        while let Some(info) = streams.next().await {
            let info = match info {
                Ok(info) => info,
                Err(e) => {
                    let e = jetstream_hint(&self.client, e.to_string());
                    warn!(error = %e, "cannot list the rooms' streams");
                    break;
                }
            };
            let room = room_of_stream(&info.config.name);
            if let Some(room) = room {
                out.push((room, info));
            }
        }
        out
    }

    async fn list_rooms(&self) -> Vec<String> {
        let mut names = self.js.stream_names();
        let mut rooms = Vec::new();
        while let Some(name) = names.next().await {
            let Ok(name) = name else { break };
            if let Some(room) = room_of_stream(&name) {
                rooms.push(room);
            }
        }
        rooms
    }
}
/// How many rooms' streams a node starting gave its retention limits to
/// (they had others), said in its log once it listens.
#[derive(Debug, Default)]
pub struct LimitsSet {
    set: usize,
    failed: usize,
    error: Option<String>,
    /// The limits set: those this node was given (`None`: left alone).
    max_messages: Option<u64>,
    max_age_days: Option<u64>,
}

impl LimitsSet {
    /// One line for the rooms given this node's limits, one for those
    /// NATS would not change; nothing if every room had them already.
    pub fn log(&self) {
        const SAID: &str = "rooms' streams made with other limits now keep this node's";
        match (self.set, self.max_messages, self.max_age_days) {
            (0, _, _) | (_, None, None) => {}
            (rooms, Some(messages), Some(days)) => info!(
                rooms,
                history_max_messages = messages,
                history_max_age_days = days,
                "{SAID}"
            ),
            (rooms, Some(messages), None) => {
                info!(rooms, history_max_messages = messages, "{SAID}")
            }
            (rooms, None, Some(days)) => info!(rooms, history_max_age_days = days, "{SAID}"),
        }
        if let Some(error) = &self.error {
            warn!(
                rooms = self.failed,
                error, "cannot change the limits of some rooms' streams; they keep theirs"
            );
        }
    }
}
