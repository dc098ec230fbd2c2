//! Sessions by token hash: those last active and those attached kept,
//! the others forgotten, and the next free session id.

use chatproto::{SessionId, TokenHash};
use rusqlite::params;

use crate::{Store, StoreError, StoredSession};

impl Store {
    /// Forget every session that is not attached, but the `keep` last
    /// active (those others cannot be resumed after a restart anyway: the
    /// server restores only the last active). The highest id forgotten
    /// stays counted: no new session takes it.
    pub fn forget_sessions(&mut self, keep: usize) -> Result<usize, StoreError> {
        let keep = keep.min(i64::MAX as usize) as i64;
        // Every detached session but the `keep` last active.
        let past = "SELECT id FROM sessions WHERE NOT live
                    ORDER BY active DESC, id DESC LIMIT -1 OFFSET ?1";
        let tx = self.db.transaction()?;
        tx.execute(
            &format!(
                "INSERT INTO meta (key, value)
                     SELECT 'max_forgotten_session', m FROM (SELECT max(id) AS m FROM ({past}))
                     WHERE m IS NOT NULL
                 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)"
            ),
            params![keep],
        )?;
        let n = tx.execute(
            &format!("DELETE FROM sessions WHERE id IN ({past})"),
            params![keep],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// A server starting holds no connection: the sessions attached when
    /// the last one stopped (killed, say) are detached now, and ranked as
    /// the last active (their clients come back first).
    pub(crate) fn detach_sessions(&mut self) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE sessions SET live = 0,
                 active = (SELECT coalesce(max(active), 0) + 1 FROM sessions)
             WHERE live",
            [],
        )?;
        Ok(())
    }

    /// The `limit` sessions last active (attached ones first), the least
    /// recently active first.
    pub fn sessions(&self, limit: usize) -> Result<Vec<StoredSession>, StoreError> {
        let sql = if self.version >= 11 {
            "SELECT id, nick, token_hash, sent FROM
                 (SELECT * FROM sessions ORDER BY live DESC, active DESC, id DESC LIMIT ?1)
             ORDER BY live, active, id"
        } else if self.version >= 9 {
            "SELECT id, nick, token_hash, NULL FROM
                 (SELECT * FROM sessions ORDER BY live DESC, active DESC, id DESC LIMIT ?1)
             ORDER BY live, active, id"
        } else {
            "SELECT id, nick, token_hash, NULL FROM
                 (SELECT * FROM sessions ORDER BY id DESC LIMIT ?1)
             ORDER BY id"
        };
        let mut st = self.db.prepare_cached(sql)?;
        let rows = st.query_map(params![limit.min(i64::MAX as usize) as i64], |r| {
            let hash: Vec<u8> = r.get(2)?;
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get::<_, String>(1)?,
                hash,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, nick, hash, sent) = row?;
            // A hash of another length cannot match any token: skipped.
            if let Ok(token) = TokenHash::try_from(hash.as_slice()) {
                out.push(StoredSession {
                    id: SessionId(id),
                    nick,
                    token,
                    // A list that does not read (written by hand) is none.
                    sent: sent.as_deref().map(decode_sent).unwrap_or_default(),
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
    /// be: each had a session record, and retention counts the highest
    /// id it forgets.
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

/// A detached session's messages, as the `sent` column keeps them: runs
/// of one room, `[[room, [seq, ...]], ...]`, oldest first.
pub(crate) fn encode_sent(sent: &[(std::sync::Arc<str>, u64)]) -> String {
    let mut runs: Vec<(&str, Vec<u64>)> = Vec::new();
    for (room, seq) in sent {
        match runs.last_mut() {
            Some((r, seqs)) if *r == &**room => seqs.push(*seq),
            _ => runs.push((room, vec![*seq])),
        }
    }
    serde_json::to_string(&runs).unwrap_or_else(|_| "[]".to_owned())
}

/// The `sent` column read back (nothing, if it does not read).
pub(crate) fn decode_sent(json: &str) -> Vec<(String, u64)> {
    let runs: Vec<(String, Vec<u64>)> = serde_json::from_str(json).unwrap_or_default();
    runs.into_iter()
        .flat_map(|(room, seqs)| seqs.into_iter().map(move |s| (room.clone(), s)))
        .collect()
}
