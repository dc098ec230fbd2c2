//! One idle connection's task: connect and join, then answer the server's
//! pings and the holder's sync rounds, reading all it is sent, until
//! told to stop.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::net::{Conn, Endpoint};
use crate::wire::{In, Subs, Target};

pub(super) const PENDING: u8 = 0;
pub(super) const JOINED: u8 = 1;
pub(super) const FAILED: u8 = 2;

pub(super) struct ConnState {
    pub(super) status: AtomicU8,
    /// The highest seq seen: welcome, then presence events (chat only).
    pub(super) seq: AtomicU64,
    /// The last sync round whose ping this connection saw answered.
    pub(super) synced: AtomicU64,
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn idle_conn(
    target: Target,
    to: Arc<Endpoint>,
    source: Option<IpAddr>,
    nick: String,
    st: Arc<ConnState>,
    closed: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<String>>>,
    mut stop: watch::Receiver<bool>,
    mut sync: watch::Receiver<u64>,
) {
    let fail = |e: String| {
        let mut errs = errors.lock().unwrap_or_else(|p| p.into_inner());
        if errs.len() < 20 {
            errs.push(format!("{nick}: {e}"));
        }
    };
    let mut conn = match Conn::open(target, &to, source, true).await {
        Ok(c) => c,
        Err(e) => {
            fail(format!("connect: {e}"));
            st.status.store(FAILED, Ordering::Relaxed);
            return;
        }
    };
    let mut seq = 0u64;
    let mut pings = 0usize;
    let mut on_event = |ev: In<'_>| match ev {
        In::Presence { seq: s, .. } => seq = seq.max(s),
        In::Ping => pings += 1,
        _ => {}
    };
    match conn
        .join(
            &nick,
            Subs {
                room: true,
                own: false,
            },
            Duration::from_secs(60),
            &mut on_event,
        )
        .await
    {
        Ok(welcome) => seq = seq.max(welcome.unwrap_or(0)),
        Err(e) => {
            fail(format!("join: {e}"));
            st.status.store(FAILED, Ordering::Relaxed);
            return;
        }
    }
    st.seq.store(seq, Ordering::Relaxed);
    st.status.store(JOINED, Ordering::Relaxed);
    conn.trim();
    // The sync round whose ping is waiting for its pong.
    let mut awaiting: Option<u64> = None;
    loop {
        for _ in 0..std::mem::take(&mut pings) {
            conn.wire.pong(&mut conn.wbuf);
        }
        if let Err(e) = conn.flush().await {
            fail(format!("write: {e}"));
            closed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        tokio::select! {
            biased;
            _ = stop.changed() => {
                // Reset rather than close: thousands of sockets in TIME_WAIT
                // would block the source ports of the next run.
                let _ = conn.stream.set_zero_linger();
                return;
            }
            r = sync.changed() => {
                if r.is_ok() {
                    awaiting = Some(*sync.borrow_and_update());
                    conn.wire.ping(&mut conn.wbuf);
                }
            }
            r = conn.read() => match r {
                Ok(0) | Err(_) => {
                    if !*stop.borrow() {
                        closed.fetch_add(1, Ordering::Relaxed);
                        fail("the server closed the connection".into());
                    }
                    return;
                }
                Ok(_) => {
                    let Conn { wire, rbuf, .. } = &mut conn;
                    let mut errs = Vec::new();
                    let mut ponged = false;
                    let r = wire.decode(rbuf, &mut |ev| match ev {
                        In::Presence { seq: s, .. } => seq = seq.max(s),
                        In::Ping => pings += 1,
                        In::Ack => ponged = true,
                        In::Error { code, message } => errs.push(format!("server error {code}: {message}")),
                        _ => {}
                    });
                    if ponged {
                        if let Some(round) = awaiting.take() {
                            st.synced.store(round, Ordering::Relaxed);
                        }
                    }
                    for e in errs {
                        fail(e);
                    }
                    if let Err(e) = r {
                        fail(e.to_string());
                        closed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    st.seq.store(seq, Ordering::Relaxed);
                    conn.trim();
                }
            }
        }
    }
}
