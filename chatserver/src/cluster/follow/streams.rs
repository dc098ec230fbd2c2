//! A room's stream: opened (made, with this node's limits, if it is new),
//! and a room whose stream was lost told to the hub and remembered.

use std::sync::Arc;

use async_nats::jetstream::stream;
use bytes::Bytes;
use tracing::{error, info};

use crate::cluster::entry::decode_event;
use crate::cluster::own::OwnStored;
use crate::cluster::publish::{no_room_to_create, Failure};
use crate::cluster::{
    lock, names, random_hex, Cluster, Description, FromCluster, DUPLICATE_WINDOW, ROOMS_SUBJECT,
};

impl Cluster {
    /// Make sure `room` has a stream (creating it with a new epoch if
    /// not), and follow it.
    /// NATS refusing to make it for want of room says so in the
    /// [`Failure`] (the room's messages are refused to their senders).
    pub(in crate::cluster) async fn open_stream(
        self: &Arc<Self>,
        room: &str,
    ) -> Result<(), Failure> {
        if let Some(cause) = self.lost_room(room) {
            return Err(Failure {
                why: format!("the stream of #{room} went from under this node"),
                full: Some(cause),
            });
        }
        let (name, subject) = names(room);
        // Followed before this look, so it was there. (One followed only
        // meanwhile was made by another node as this one looked: found
        // on the next try.)
        let followed = lock(&self.following).contains(room);
        let mut full = None;
        let mut said = String::new();
        for _ in 0..3 {
            match self.js.get_stream(&name).await {
                Ok(_) => {
                    self.follow(room);
                    return Ok(());
                }
                Err(e) if !stream_not_found(&e) => {
                    // NATS away, or electing a leader: tried again by the
                    // publisher, never taken for a stream gone.
                    return Err(Failure::from(format!(
                        "cannot look up the stream of #{room}: {e}"
                    )));
                }
                Err(_) => {}
            }
            // Followed, so it was there: deleted, or NATS lost its store.
            // Made again here, its seqs would begin again under a new
            // epoch, which this node's copy of the room does not follow
            // (its senders would wait for ever): refused instead.
            if followed {
                let cause = self.lose_room(room, "is gone from NATS");
                return Err(Failure {
                    why: format!("the stream of #{room} is gone from NATS"),
                    full: Some(cause),
                });
            }
            let description = serde_json::to_string(&Description {
                room: room.to_owned(),
                epoch: random_hex(16),
            })
            .map_err(|e| e.to_string())?;
            let (max_messages, max_age) = self.limits();
            let config = stream::Config {
                name: name.clone(),
                subjects: vec![subject.clone()],
                description: Some(description),
                max_messages,
                max_age,
                duplicate_window: DUPLICATE_WINDOW,
                num_replicas: self.settings.replicas,
                discard: stream::DiscardPolicy::Old,
                storage: stream::StorageType::File,
                ..Default::default()
            };
            // Two nodes may race to create it: the loser finds it next time.
            match self.js.create_stream(config).await {
                Ok(_) => {
                    info!(room, "created the room's stream");
                    let _ = self
                        .client
                        .publish(ROOMS_SUBJECT, Bytes::from(room.to_owned()))
                        .await;
                    self.follow(room);
                    return Ok(());
                }
                // NATS's "no room" stands, whatever the later tries say.
                Err(e) => {
                    full = full.or_else(|| no_room_to_create(&e.kind()));
                    said = e.to_string();
                }
            }
        }
        // What NATS said, for the log: the operator's only clue when it
        // is a setting (`--cluster-replicas` above the NATS cluster's size).
        Err(Failure {
            why: format!("cannot create the stream of #{room}: {said}"),
            full,
        })
    }

    /// `room`'s stream went from under this node (`how`, in words): said
    /// once, at error level; what waited for it to be read back is
    /// refused, and so is what comes for the room from now on, until this
    /// node restarts. The words for a refused sender.
    pub(in crate::cluster) fn lose_room(&self, room: &str, how: &str) -> String {
        let cause = format!(
            "the cluster's log of #{room} {how} (NATS lost its store, or it was deleted): this \
             server cannot store messages there until it restarts"
        );
        let new = lock(&self.lost_rooms)
            .insert(room.to_owned(), cause.clone())
            .is_none();
        if new {
            error!(
                room,
                "the room's stream {how}: this node keeps the room as it was and refuses \
                          what comes for it; restart it to follow the new stream"
            );
            // This node's proposals stored there and not read back: their
            // senders would wait for ever.
            let own = self.own_room(room);
            let waiting = OwnStored::take_all(&own);
            let to_hub = self.to_hub.clone();
            let (room, cause) = (Arc::<str>::from(room), cause.clone());
            tokio::spawn(async move {
                for payload in waiting {
                    if let Some(event) = decode_event(&room, 0, &payload) {
                        let refused = FromCluster::Refused(event, cause.clone());
                        if to_hub.send(refused).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
        cause
    }

    /// Why what comes for `room` is refused, if its stream went from
    /// under this node.
    pub(in crate::cluster) fn lost_room(&self, room: &str) -> Option<String> {
        let lost = lock(&self.lost_rooms);
        if lost.is_empty() {
            return None;
        }
        lost.get(room).cloned()
    }
}

/// Whether JetStream itself said the stream does not exist (not a request
/// that went unanswered: NATS away, or a leader being elected).
pub(in crate::cluster) fn stream_not_found(
    e: &async_nats::jetstream::context::GetStreamError,
) -> bool {
    matches!(
        e.kind(),
        async_nats::jetstream::context::GetStreamErrorKind::JetStream(js)
            if js.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}
