//! The key-value buckets: each made as nats-server 2.9 understands, and
//! a key's latest entry read from its stream's leader.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;

/// A key's latest entry in `store` as its stream's leader holds it: its
/// revision, and its value (none: deleted or purged). Not a read of
/// `kv::Store::entry`, which any replica may answer, one that lags after
/// a NATS server was lost among them. `Ok(None)`: the key was never
/// written (or its history is gone); `Err`: no answer.
pub(super) async fn leader_entry(
    store: &kv::Store,
    key: &str,
) -> Result<Option<(u64, Option<Bytes>)>, String> {
    let subject = format!("{}{key}", store.prefix);
    match store.stream.get_last_raw_message_by_subject(&subject).await {
        Ok(m) => {
            // A delete or purge (KV-Operation), or a marker nats-server
            // 2.11 and later may leave where a subject's messages went.
            let gone =
                m.headers.get(KV_OPERATION).is_some() || m.headers.get(MARKER_REASON).is_some();
            Ok(Some((m.sequence, (!gone).then_some(m.payload))))
        }
        Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// The header NATS marks a key-value delete (or purge) with.
const KV_OPERATION: &str = "KV-Operation";
/// The header of a marker nats-server leaves where a subject's messages
/// were removed.
const MARKER_REASON: &str = "Nats-Marker-Reason";

/// A key-value bucket, made as nats-server 2.9 understands: async-nats's
/// `create_key_value` asks for account details that server cannot give in
/// the shape this client expects, so the bucket's stream is made directly
/// with the settings a bucket has.
pub(super) async fn bucket(
    js: &jetstream::Context,
    name: &str,
    replicas: usize,
    max_age: Duration,
) -> Result<kv::Store, String> {
    let config = stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: replicas,
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    match js.get_stream(format!("KV_{name}")).await {
        // Made by an earlier version without an age limit (the nodes'
        // bucket had none): given this one's, so that what it keeps stays
        // bounded. A limit someone set (by hand) stays. Not fatal: the
        // bucket works as it is.
        Ok(stream) if !max_age.is_zero() && stream.cached_info().config.max_age.is_zero() => {
            let mut had = stream.cached_info().config.clone();
            had.max_age = max_age;
            if let Err(e) = js.update_stream(&had).await {
                tracing::warn!(bucket = name, error = %e, "cannot give the bucket its age limit");
            }
        }
        Ok(_) => {}
        Err(_) => {
            if let Err(e) = js.create_stream(config).await {
                // Another node may have made it meanwhile.
                if js.get_stream(format!("KV_{name}")).await.is_err() {
                    return Err(format!("cannot make the {name} bucket in NATS: {e}"));
                }
            }
        }
    }
    js.get_key_value(name)
        .await
        .map_err(|e| format!("cannot open the {name} bucket in NATS: {e}"))
}
