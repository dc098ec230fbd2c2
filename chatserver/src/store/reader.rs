//! The reading thread: history read with a connection of its own, so
//! that a long read never holds up a commit, the clients that wait
//! served in turn, one read each.

use std::sync::mpsc as std_mpsc;

use chatproto::{ClientId, ReadQuery};
use chatstore::Store;
use tokio::sync::mpsc;

use super::{FromStore, Reads};

/// The thread that answers reads with a connection of its own (WAL lets
/// it read beside the writer); its requests' sender and its handle. It
/// takes the clients that wait in turn, one read each (see [`InTurn`]).
pub(super) fn spawn_reader(
    db: Store,
    answers: mpsc::UnboundedSender<FromStore>,
) -> std::io::Result<(Reads, std::thread::JoinHandle<()>)> {
    let (tx, requests) = std_mpsc::channel::<(u64, ClientId, ReadQuery)>();
    let thread = std::thread::Builder::new()
        .name("chat-history".into())
        .spawn(move || {
            let mut waiting = InTurn::default();
            loop {
                if waiting.is_empty() {
                    match requests.recv() {
                        Ok(read) => waiting.push(read),
                        Err(_) => return,
                    }
                }
                // Everything asked meanwhile joins the turns first.
                while let Ok(read) = requests.try_recv() {
                    waiting.push(read);
                }
                let Some((ticket, client, query)) = waiting.pop() else {
                    continue;
                };
                if answers.send(read(&db, ticket, client, &query)).is_err() {
                    return;
                }
            }
        })?;
    Ok((tx, thread))
}

/// Reads waiting for the reading thread, taken a client at a time in
/// turn, each client's in the order it asked. A client that asked many
/// at once (the per-client bound counts a read only once it is asked, so
/// a burst of frames taken behind a slow commit can all become reads)
/// delays any other client's next read by one of its own, not by all of
/// them.
#[derive(Default)]
struct InTurn {
    /// Each waiting client's reads, oldest first.
    reads: std::collections::HashMap<ClientId, std::collections::VecDeque<(u64, ReadQuery)>>,
    /// The clients with reads waiting, the next to be served first.
    turns: std::collections::VecDeque<ClientId>,
}

impl InTurn {
    fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }

    /// A read asked: after the client's earlier ones; a client not
    /// waiting yet takes the last turn.
    fn push(&mut self, (ticket, client, query): (u64, ClientId, ReadQuery)) {
        let queue = self.reads.entry(client).or_default();
        if queue.is_empty() {
            self.turns.push_back(client);
        }
        queue.push_back((ticket, query));
    }

    /// The next client's oldest read; the client goes to the back of the
    /// turns if it has more.
    fn pop(&mut self) -> Option<(u64, ClientId, ReadQuery)> {
        let client = self.turns.pop_front()?;
        let queue = self.reads.get_mut(&client)?;
        let (ticket, query) = queue.pop_front()?;
        if queue.is_empty() {
            self.reads.remove(&client);
        } else {
            self.turns.push_back(client);
        }
        Some((ticket, client, query))
    }
}

/// The answer to a read, whatever happens: the asker's later frames wait
/// for it.
pub(super) fn read(store: &Store, ticket: u64, client: ClientId, query: &ReadQuery) -> FromStore {
    let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.read(query).map_err(|e| e.to_string())
    }))
    .unwrap_or_else(|_| Err("the history reader failed".to_owned()));
    FromStore::Read {
        ticket,
        client,
        found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clients waiting for reads take turns, one read each, each
    /// client's reads in the order asked.
    #[test]
    fn reads_are_taken_a_client_at_a_time() {
        let q = || ReadQuery::new("lobby", chatproto::SessionId(1), 0, 10, 5);
        let mut waiting = InTurn::default();
        for ticket in 1..=4 {
            waiting.push((ticket, ClientId(1), q()));
        }
        waiting.push((5, ClientId(2), q()));
        waiting.push((6, ClientId(3), q()));
        waiting.push((7, ClientId(2), q()));
        let mut order = vec![];
        for _ in 0..3 {
            order.push(waiting.pop().map(|(t, c, _)| (t, c.0)));
        }
        // One asked while the others wait takes the last turn.
        waiting.push((8, ClientId(4), q()));
        while let Some((t, c, _)) = waiting.pop() {
            order.push(Some((t, c.0)));
        }
        let expect = [
            (1, 1),
            (5, 2),
            (6, 3),
            (2, 1),
            (7, 2),
            (8, 4),
            (3, 1),
            (4, 1),
        ];
        assert_eq!(order, expect.map(Some));
        assert!(waiting.is_empty() && waiting.reads.is_empty());
    }
}
