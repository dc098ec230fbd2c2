//! `chatserver export --cluster URLS`: a cluster's history, read from the
//! rooms' streams and printed as `export` prints a database's: one `msg`
//! object per line as on the wire, room by room in seq order.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;

use super::entry::{decode_event, stream_seq};
use super::{names, room_of_stream};

/// The longest wait for NATS: to connect, and for the next event of a
/// stream that holds more (then it is asked again whether it still does).
const EXPORT_WAIT: Duration = Duration::from_secs(10);

/// Print the history of `room` (or of every room), past seq `since`, to
/// `out`: what each stream holds up to its last event when it is read.
pub async fn export(
    urls: &[String],
    room: Option<&str>,
    since: u64,
    out: &mut impl Write,
) -> Result<(), String> {
    let at = urls.join(",");
    let connect = async_nats::ConnectOptions::new()
        .name("chatserver export")
        .connect(urls.to_vec());
    let client = match tokio::time::timeout(EXPORT_WAIT, connect).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => return Err(format!("cannot reach NATS at {at}: {e}")),
        Err(_) => return Err(format!("cannot reach NATS at {at} within {EXPORT_WAIT:?}")),
    };
    let js = jetstream::new(client.clone());
    let mut rooms = Vec::new();
    let mut listed = js.stream_names();
    while let Some(name) = listed.next().await {
        let name = name.map_err(|e| {
            super::jetstream_hint(&client, format!("cannot list the rooms' streams: {e}"))
        })?;
        if let Some(room) = room_of_stream(&name) {
            rooms.push(room);
        }
    }
    rooms.sort_unstable();
    if let Some(wanted) = room {
        if !rooms.iter().any(|r| r == wanted) {
            return Err(format!("no room #{wanted} in the cluster at {at}"));
        }
        rooms = vec![wanted.to_owned()];
    }
    for room in rooms {
        export_room(&js, &client, &room, since, out).await?;
    }
    out.flush().map_err(|e| crate::store::write_failed(&e))
}

/// One room's messages past `since`, up to the stream's last event now.
async fn export_room(
    js: &jetstream::Context,
    client: &async_nats::Client,
    room: &str,
    since: u64,
    out: &mut impl Write,
) -> Result<(), String> {
    let (name, _) = names(room);
    let failed = |e: &dyn std::fmt::Display| format!("cannot read #{room}'s stream: {e}");
    let mut stream = js.get_stream(&name).await.map_err(|e| failed(&e))?;
    let state = stream.info().await.map_err(|e| failed(&e))?.state.clone();
    let last = state.last_sequence;
    let from = since.saturating_add(1).max(state.first_sequence);
    if state.messages == 0 || from > last {
        return Ok(());
    }
    let config = consumer::push::OrderedConfig {
        deliver_subject: client.new_inbox(),
        deliver_policy: consumer::DeliverPolicy::ByStartSequence {
            start_sequence: from,
        },
        ..Default::default()
    };
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|e| failed(&e))?;
    let mut messages = consumer.messages().await.map_err(|e| failed(&e))?;
    let room: Arc<str> = Arc::from(room);
    let mut read = from - 1;
    let mut unreadable = 0u64;
    while read < last {
        let msg = match tokio::time::timeout(EXPORT_WAIT, messages.next()).await {
            Ok(Some(msg)) => msg.map_err(|e| failed(&e))?,
            Ok(None) => return Err(failed(&"the stream's consumer ended")),
            // Retention may have removed the rest meanwhile: then it is
            // all read.
            Err(_) => {
                let now = stream.info().await.map_err(|e| failed(&e))?.state.clone();
                if now.messages == 0 || now.first_sequence > last {
                    return Ok(());
                }
                return Err(failed(&format!(
                    "no event past seq {read} within {EXPORT_WAIT:?}, though it holds seq {last}"
                )));
            }
        };
        let seq = match msg.reply.as_deref().and_then(stream_seq) {
            Some(seq) => seq,
            None => msg.info().map_err(|e| failed(&e))?.stream_sequence,
        };
        if seq > last {
            break;
        }
        // Given again (a consumer made anew): printed once.
        if seq <= read {
            continue;
        }
        read = seq;
        let Some(event) = decode_event(&room, seq, &msg.payload) else {
            unreadable += 1;
            continue;
        };
        if event.is_msg() {
            let line = serde_json::to_string(&event.wire(true, false))
                .map_err(|e| format!("cannot write the export: {e}"))?;
            writeln!(out, "{line}").map_err(|e| crate::store::write_failed(&e))?;
        }
    }
    if unreadable > 0 {
        eprintln!(
            "chatserver export: #{room}: stepped over {unreadable} log entries this version cannot read"
        );
    }
    Ok(())
}
