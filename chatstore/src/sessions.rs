//! Sessions by token hash: the newest kept, the older forgotten, and the
//! next free session id.

use chatproto::{SessionId, TokenHash};
use rusqlite::params;

use crate::{Store, StoreError, StoredSession};

impl Store {
    /// Forget all but the newest `keep` sessions (those older cannot be
    /// resumed after a restart anyway: the server restores only the newest).
    pub fn forget_sessions(&mut self, keep: usize) -> Result<usize, StoreError> {
        let n = self.db.execute(
            "DELETE FROM sessions WHERE id < (SELECT min(id) FROM
                 (SELECT id FROM sessions ORDER BY id DESC LIMIT ?1))",
            params![keep.min(i64::MAX as usize) as i64],
        )?;
        Ok(n)
    }

    /// The newest `limit` sessions, oldest first.
    pub fn sessions(&self, limit: usize) -> Result<Vec<StoredSession>, StoreError> {
        let mut st = self.db.prepare_cached(
            "SELECT id, nick, token_hash FROM
                 (SELECT * FROM sessions ORDER BY id DESC LIMIT ?1)
             ORDER BY id",
        )?;
        let rows = st.query_map(params![limit.min(i64::MAX as usize) as i64], |r| {
            let hash: Vec<u8> = r.get(2)?;
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?, hash))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, nick, hash) = row?;
            // A hash of another length cannot match any token: skipped.
            if let Ok(token) = TokenHash::try_from(hash.as_slice()) {
                out.push(StoredSession {
                    id: SessionId(id),
                    nick,
                    token,
                });
            }
        }
        Ok(out)
    }

    /// One more than the highest session id the store has named: no new
    /// session may take an id below it (it could read an old one's private
    /// messages). Senders are counted, through each room's highest writer
    /// (kept as events are written, and kept when they are deleted), so
    /// this reads one row per room, not the events; recipients need not
    /// be: each had a session record, and retention keeps the newest
    /// records.
    pub fn next_session(&self) -> Result<u64, StoreError> {
        let sql = if self.version >= 7 {
            "SELECT max(m) FROM (SELECT max(id) AS m FROM sessions
                                 UNION ALL SELECT max(max_session) FROM rooms
                                 UNION ALL SELECT value FROM meta
                                           WHERE key = 'max_forgotten_session')"
        } else if self.version >= 5 {
            "SELECT max(m) FROM (SELECT max(id) AS m FROM sessions
                                 UNION ALL SELECT max(max_session) FROM rooms)"
        } else {
            "SELECT max(m) FROM (SELECT max(id) AS m FROM sessions
                                 UNION ALL SELECT max(session) FROM events)"
        };
        let max: Option<i64> = self.db.query_row(sql, [], |r| r.get(0))?;
        // -1: a room no session has written into yet.
        Ok(max.filter(|m| *m >= 0).map_or(0, |m| m as u64 + 1))
    }
}
