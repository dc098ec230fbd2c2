//! Who is in a room, as the client knows it, with a version that changes
//! with it (so a shell can tell the list changed without comparing it).

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::CLIENT_MAX_ROSTER;

/// Versions are taken from one counter for every roster of every client
/// in the process, so a version names one list: a room parted and entered
/// again, or another client's room of the same name, never shows an old
/// version with new members.
static VERSIONS: AtomicU64 = AtomicU64::new(1);

fn next_version() -> u64 {
    VERSIONS.fetch_add(1, Ordering::Relaxed)
}

/// A room's members, by identity key, with their nicknames as they were
/// given. Every change goes through a method here, which takes a new
/// version.
#[derive(Debug, Clone)]
pub(super) struct Roster {
    members: BTreeMap<String, String>,
    version: u64,
}

impl Default for Roster {
    fn default() -> Self {
        Roster {
            members: BTreeMap::new(),
            version: next_version(),
        }
    }
}

impl Roster {
    /// `online` (from an `entered`) as the room's members.
    pub(super) fn set(&mut self, online: &[String]) {
        self.members.clear();
        for n in online {
            self.insert(n.clone());
        }
        self.version = next_version();
    }

    /// Keep `nick` as a member, unless it cannot be a nickname (longer
    /// than [`MAX_NICK_LEN`](crate::MAX_NICK_LEN) characters, which no
    /// server's rule allows) or the roster is full
    /// ([`CLIENT_MAX_ROSTER`]): a member's memory stays small, and so does
    /// a room's.
    pub(super) fn admit(&mut self, nick: String) {
        if self.insert(nick) {
            self.version = next_version();
        }
    }

    /// [`admit`](Roster::admit) without a new version; whether the list
    /// changed.
    fn insert(&mut self, nick: String) -> bool {
        if nick.chars().nth(crate::MAX_NICK_LEN).is_some() {
            return false;
        }
        let full = self.members.len() >= CLIENT_MAX_ROSTER;
        match self.members.entry(crate::nick::nick_key(&nick)) {
            Entry::Occupied(e) if *e.get() == nick => false,
            Entry::Occupied(mut e) => {
                e.insert(nick);
                true
            }
            Entry::Vacant(_) if full => false,
            Entry::Vacant(e) => {
                e.insert(nick);
                true
            }
        }
    }

    /// `nick` is no longer a member.
    pub(super) fn remove(&mut self, nick: &str) {
        if self.members.remove(&crate::nick::nick_key(nick)).is_some() {
            self.version = next_version();
        }
    }

    /// Nobody is (a connection lost: the next `entered` tells).
    pub(super) fn clear(&mut self) {
        if !self.members.is_empty() {
            self.members.clear();
            self.version = next_version();
        }
    }

    pub(super) fn len(&self) -> usize {
        self.members.len()
    }

    /// The members' nicknames, in the order of their identity keys.
    pub(super) fn nicks(&self) -> impl Iterator<Item = &String> {
        self.members.values()
    }

    pub(super) fn version(&self) -> u64 {
        self.version
    }

    /// The bytes of its strings (the testkit's bounds).
    #[cfg(feature = "testkit")]
    pub(super) fn bytes(&self) -> usize {
        self.members.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}
