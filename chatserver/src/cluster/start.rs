//! Starting the link: NATS reached, the buckets made, this node's first
//! heartbeat, and its tasks started.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::mpsc;

use super::buckets::bucket;
use super::{
    fence, hex, jetstream_hint, own, random_hex, Cluster, FromCluster, LimitsSet, Settings,
    FIRST_BEAT_TRIES, NICKS, NODES, NODE_MAX_AGE, PAYLOAD_SLACK, SESSIONS, SESSION_MAX_AGE,
    TAKEOVER_PREFIX,
};

impl Cluster {
    /// Connect, make the buckets, give the rooms' streams this node's
    /// retention limits (see [`Cluster::room_streams`]), and start the
    /// publisher, the room discovery and the heartbeat. Events reach the
    /// hub through `to_hub`. Returned beside the link: every room with a
    /// stream and its last seq, and what the limits changed.
    pub async fn start(
        settings: Settings,
        to_hub: mpsc::Sender<FromCluster>,
    ) -> Result<(Arc<Cluster>, Vec<(String, u64)>, LimitsSet), String> {
        let urls = settings.urls.clone();
        let client = async_nats::ConnectOptions::new()
            .name(format!("chatserver {}", settings.node))
            .max_reconnects(None)
            .connect(urls.clone())
            .await
            .map_err(|e| format!("cannot reach NATS at {}: {e}", urls.join(",")))?;
        // Reached: `chat_log_up` is shown from now on.
        settings.metrics.log_down(None);
        // An event NATS refuses for its size would be refused for good,
        // and hold up every proposal after it: refuse to start instead.
        let max_payload = client.server_info().max_payload;
        if settings.max_frame_bytes + PAYLOAD_SLACK > max_payload {
            return Err(format!(
                "--max-frame-bytes {} does not fit the NATS server's max_payload of {max_payload} bytes \
                 (every message must fit one NATS message, with {PAYLOAD_SLACK} bytes to spare): \
                 use --max-frame-bytes {} or less, or raise max_payload in nats-server's configuration",
                settings.max_frame_bytes,
                max_payload.saturating_sub(PAYLOAD_SLACK)
            ));
        }
        let js = jetstream::new(client.clone());
        let replicas = settings.replicas;
        let hint = |e| jetstream_hint(&client, e);
        let nicks = bucket(&js, NICKS, replicas, Duration::ZERO)
            .await
            .map_err(hint)?;
        let sessions = bucket(&js, SESSIONS, replicas, SESSION_MAX_AGE)
            .await
            .map_err(hint)?;
        let nodes = bucket(&js, NODES, replicas, NODE_MAX_AGE)
            .await
            .map_err(hint)?;
        let origin: Arc<str> = Arc::from(format!("{}/{}", settings.node, random_hex(6)));
        let (proposals, rx) = mpsc::unbounded_channel();
        let (session_tx, session_rx) = mpsc::unbounded_channel();
        let cluster = Arc::new(Cluster {
            client,
            js,
            nicks,
            sessions,
            nodes,
            settings,
            origin,
            proposals,
            session_tx,
            pending: Arc::new(AtomicUsize::new(0)),
            to_hub,
            following: Mutex::new(HashSet::new()),
            next_id: AtomicUsize::new(0),
            ready: std::sync::atomic::AtomicBool::new(false),
            said_later: Mutex::default(),
            acked: Mutex::new(HashMap::new()),
            own: Mutex::new(own::OwnByRoom::default()),
            checking_claims: AtomicBool::new(false),
            claims_again: AtomicBool::new(false),
            leaving: Mutex::default(),
            numbered: AtomicUsize::new(0),
            fence: fence::Fence::new(),
            lost_rooms: Mutex::default(),
        });
        cluster.no_twin().await?;
        // Heartbeat before anything else: others must not take this run
        // for dead once it has clients. A bucket just made with replicas
        // may not be reachable through every NATS server yet ("no stream
        // found"): a few more tries, waiting twice as long each time.
        let mut began = std::time::Instant::now();
        let mut beat = cluster.beat().await;
        let mut wait = Duration::from_millis(50);
        for _ in 1..FIRST_BEAT_TRIES {
            if beat.is_ok() {
                break;
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
            began = std::time::Instant::now();
            beat = cluster.beat().await;
        }
        beat.map_err(|e| e.text)?;
        // Fresh: the look for a twin above may have taken longer than the
        // fence allows.
        cluster.fence.beat_ok(began);
        // The heartbeat goes on while the limits are set (one request per
        // room whose limits differ, each up to NATS's timeout).
        tokio::spawn(Arc::clone(&cluster).watch_nodes());
        tokio::spawn(Arc::clone(&cluster).publish(rx));
        tokio::spawn(Arc::clone(&cluster).write_sessions(session_rx));
        // The limits set before any room is followed: a follower that
        // read a stream's start before its limits were lowered would
        // find the events between removed (and warn of it).
        let (rooms, limits) = cluster.room_streams().await;
        tokio::spawn(Arc::clone(&cluster).discover());
        tokio::spawn(Arc::clone(&cluster).watch_starts());
        let subject = format!("{TAKEOVER_PREFIX}{}", hex(cluster.origin.as_bytes()));
        let asked = cluster
            .client
            .subscribe(subject)
            .await
            .map_err(|e| format!("cannot subscribe to takeovers: {e}"))?;
        tokio::spawn(Arc::clone(&cluster).answer_takeovers(asked));
        Ok((cluster, rooms, limits))
    }
}
