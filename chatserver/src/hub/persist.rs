//! The history database's side of the hub: the records gathered (a turn's,
//! and those of turns while a batch was being written) handed to the
//! store's thread as one batch, its answers, and at the end, waiting for
//! it to store what was stamped and closing it cleanly.

use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{Hub, STORE_SETTLE};
use crate::store::{FromStore, StoreLink, ToStore};

impl Hub {
    /// Hand the records gathered this turn to the store, as one batch,
    /// unless it is writing one (then they go with the next).
    pub(super) fn send_to_store(&mut self) {
        if self.storing || self.to_store.is_empty() {
            return;
        }
        let Some(link) = &self.store else { return };
        let records = std::mem::take(&mut self.to_store);
        let through = self.to_store_through;
        if link.tx.send(ToStore::Append { records, through }).is_ok() {
            self.storing = true;
            self.storing_since = Instant::now();
        }
    }

    /// The store answered.
    pub(super) fn stored(&mut self, answer: FromStore) {
        match answer {
            FromStore::Stored(through) => {
                self.storing = false;
                let took = self.storing_since.elapsed().as_micros() as u64;
                self.metrics.appended(took);
                self.server.handle_persisted(through);
                self.stored_through = through;
            }
            FromStore::Failed {
                cause,
                until_restart,
            } => {
                // The store's thread said it, as seldom as it fails and
                // works again at its size cap (a large message each).
                debug!(cause, "the history database failed a batch");
                self.give_up_batch(&cause, until_restart);
            }
            FromStore::Lost(cause) => {
                debug!(cause, "the history database is gone");
                self.metrics.store_down(Some(&cause));
                self.server.handle_persist_failed_until_restart(&cause);
            }
            FromStore::Refused(cause) => {
                warn!(
                    cause,
                    "the history database refused a batch: the messages not yet stored were refused"
                );
                // Refused alone: the store is up again at once, before any
                // other input is read.
                self.give_up_batch(&cause, false);
                self.server.handle_store_recovered();
                self.metrics.store_down(None);
            }
            FromStore::Recovered { said } => {
                self.server.handle_store_recovered();
                self.metrics.store_down(None);
                if said {
                    info!("the history database works again; messages are taken again");
                } else {
                    debug!("the history database works again");
                }
            }
            FromStore::Pruned {
                deleted,
                done,
                rooms,
            } => {
                for (room, epoch, oldest) in rooms {
                    self.server.handle_pruned_epoch(&room, &epoch, oldest);
                }
                // Once a pass, not once a batch.
                if done {
                    info!(
                        deleted,
                        "retention deleted old events; they are served no more"
                    );
                }
            }
            FromStore::Read {
                ticket,
                client,
                found,
            } => self.answer_read(ticket, client, found),
            FromStore::Stopped => self.store_stopped(),
        }
    }

    /// The store's thread stopped while the server runs (a panic): new
    /// messages are refused from now on (the core stays in its failed
    /// state), and the reads it had are answered from memory, so that
    /// what waits behind them goes out.
    pub(super) fn store_stopped(&mut self) {
        warn!(
            "the history database's thread stopped; new messages are refused \
             until the server is restarted"
        );
        self.store = None;
        self.give_up_batch("the history database's thread stopped", true);
        let waiting: Vec<_> = self
            .peers
            .iter()
            .flat_map(|(id, p)| p.held_tickets().into_iter().map(|t| (t, *id)))
            .collect();
        for (ticket, client) in waiting {
            let gone = "the history database's thread stopped".to_owned();
            self.answer_read(ticket, client, Err(gone));
        }
        self.dispatch(self.clock.now());
    }

    /// The batch in the store's hands was not stored: the core gives up
    /// every record not stored, those waiting here included;
    /// `until_restart`: refused senders are told only a restart mends it.
    fn give_up_batch(&mut self, cause: &str, until_restart: bool) {
        self.storing = false;
        self.metrics.append_failed();
        self.metrics.store_down(Some(cause));
        self.to_store.clear();
        if until_restart {
            self.server.handle_persist_failed_until_restart(cause);
        } else {
            self.server.handle_persist_failed(cause);
        }
    }

    /// Wait until everything stamped is stored (or the store failed).
    pub(super) async fn settle_store(&mut self) {
        loop {
            self.drain(self.clock.now());
            self.send_to_store();
            if !self.storing {
                return;
            }
            match recv_store(&mut self.store).await {
                Some(answer) => self.stored(answer),
                None => return,
            }
        }
    }

    /// Stop the store's thread and wait for it, at most [`STORE_SETTLE`]:
    /// the database closes cleanly. A disk that does not answer does not
    /// keep the server from stopping: it stops with the write unfinished,
    /// as after a crash, which loses nothing acknowledged (only what the
    /// store committed was ever sent).
    pub(super) async fn close_store(&mut self) {
        let Some(mut link) = self.store.take() else {
            return;
        };
        let thread = link.thread.take();
        drop(link);
        let Some(t) = thread else {
            return;
        };
        // Joined on a thread of its own, so that the wait can end.
        let (done, joined) = tokio::sync::oneshot::channel();
        let joiner = std::thread::Builder::new()
            .name("chat-store-close".into())
            .spawn(move || {
                let _ = t.join();
                let _ = done.send(());
            });
        if joiner.is_err() || tokio::time::timeout(STORE_SETTLE, joined).await.is_err() {
            warn!(
                "the history database did not close within {} s; stopping without it \
                 (what clients saw acknowledged is stored)",
                STORE_SETTLE.as_secs()
            );
        }
    }
}

/// The store's next answer; `None` if its thread is gone (or there is none).
pub(super) async fn recv_store(store: &mut Option<StoreLink>) -> Option<FromStore> {
    match store {
        Some(link) => link.rx.recv().await,
        None => std::future::pending().await,
    }
}
