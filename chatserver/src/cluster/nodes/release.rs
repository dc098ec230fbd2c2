//! Releasing the nicknames of runs found dead, and telling the hub a run
//! is gone only once a release begun after it was found gone is done.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_nats::jetstream::kv;
use futures_util::StreamExt;
use tracing::{debug, info};

use super::{Beat, Heard, REQUEST_WITHIN};
use crate::cluster::{leader_entry, lock, ClaimValue, Cluster};

/// Nicknames a release looks at, at once.
const RELEASE_AT_ONCE: usize = 16;

impl Cluster {
    /// A run that holds a nickname but was never heard: whether it is
    /// gone for good (its node's heartbeat is another run's, or deleted,
    /// or absent). If its node's heartbeat is still its own, it may be
    /// alive: it is taken as heard now, and judged like any other from
    /// here (silent for `dead_after`, it is dead). `Err`: no answer.
    async fn never_heard(&self, origin: &str, heard: &Heard) -> Result<bool, ()> {
        let Some((node, _)) = origin.rsplit_once('/') else {
            return Ok(true);
        };
        let look = tokio::time::timeout(REQUEST_WITHIN, self.latest_beat(node)).await;
        match look.map_err(|_| ())?? {
            Some((revision, Some(run))) if run == origin => {
                let mut heard = lock(heard);
                let h = heard
                    .entry(node.to_owned())
                    .or_insert_with(|| Beat::new(revision, run.clone()));
                if h.rev < revision {
                    *h = Beat::new(revision, run);
                }
                // Found dead already at this very heartbeat.
                Ok(h.rev == revision && h.dead)
            }
            _ => Ok(true),
        }
    }

    /// Release the nicknames held by runs neither in `alive` (the runs
    /// alive when the release began) nor heard since, each read from the
    /// bucket's leader (a lagging replica's revision would make the delete
    /// fail), several at a time, each request bounded. `true`: every key
    /// was looked at and every such nickname released (or written again
    /// meanwhile).
    pub(super) async fn release_nicks(&self, alive: &HashSet<Arc<str>>, heard: &Heard) -> bool {
        let Ok(Ok(mut listing)) = tokio::time::timeout(REQUEST_WITHIN, self.nicks.keys()).await
        else {
            return false;
        };
        let mut keys = Vec::new();
        loop {
            match tokio::time::timeout(REQUEST_WITHIN, listing.next()).await {
                Ok(Some(Ok(key))) => keys.push(key),
                Ok(None) => break,
                Ok(Some(Err(_))) | Err(_) => return false,
            }
        }
        let dead_after = self.settings.dead_after;
        // A run heard lately is alive; one heard, then silent, was judged
        // dead; one never heard (its heartbeats came while this node's
        // watch was broken) is looked up before its nicknames go.
        let heard_as = |origin: &str| {
            let now = Instant::now();
            lock(heard)
                .values()
                .filter(|h| h.origin == origin)
                .map(|h| !h.dead && now.duration_since(h.at) < dead_after)
                .max()
        };
        // What `never_heard` said of each run, once per release.
        let looked: Mutex<HashMap<String, Result<bool, ()>>> = Mutex::default();
        let looked = &looked;
        // How many nicknames of each run this release freed: one line a
        // run, not one a nickname (a node of 10,000 clients).
        let freed: Mutex<HashMap<String, u64>> = Mutex::default();
        let freed_by_run = &freed;
        let released = futures_util::stream::iter(keys)
            .map(|key| async move {
                let freed = freed_by_run;
                let look = tokio::time::timeout(REQUEST_WITHIN, leader_entry(&self.nicks, &key));
                let (revision, value) = match look.await {
                    Ok(Ok(Some((revision, Some(value))))) => (revision, value),
                    Ok(Ok(_)) => return true,
                    Ok(Err(_)) | Err(_) => return false,
                };
                let Ok(v) = serde_json::from_slice::<ClaimValue>(&value) else {
                    return true;
                };
                if alive.contains(v.origin.as_str()) {
                    return true;
                }
                match heard_as(&v.origin) {
                    // Heard lately though not alive when this release
                    // began (back, new, or counted afresh): left to the
                    // next release, which knows better; this one does
                    // not count as done.
                    Some(true) => return false,
                    Some(false) => {}
                    None => {
                        let known = lock(looked).get(&v.origin).copied();
                        let gone = match known {
                            Some(gone) => gone,
                            None => {
                                let gone = self.never_heard(&v.origin, heard).await;
                                lock(looked).insert(v.origin.clone(), gone);
                                gone
                            }
                        };
                        match gone {
                            Ok(true) => {}
                            // Heard now (it heartbeats), or no answer:
                            // looked at again by the next release.
                            Ok(false) | Err(()) => return false,
                        }
                    }
                }
                debug!(
                    nick = v.nick,
                    node = v.origin,
                    "releasing a nickname of a node that stopped"
                );
                let delete = self.nicks.delete_expect_revision(&key, Some(revision));
                match tokio::time::timeout(REQUEST_WITHIN, delete).await {
                    Ok(Ok(())) => {
                        *lock(freed).entry(v.origin).or_insert(0) += 1;
                        true
                    }
                    // Written again meanwhile: someone holds it now.
                    Ok(Err(e)) => e.kind() == kv::DeleteErrorKind::WrongLastRevision,
                    Err(_) => false,
                }
            })
            .buffer_unordered(RELEASE_AT_ONCE)
            .fold(true, |all, one| async move { all && one })
            .await;
        let mut freed: Vec<(String, u64)> = lock(&freed).drain().collect();
        freed.sort_unstable();
        for (node, nicknames) in freed {
            info!(
                node,
                nicknames, "released the nicknames of a node that stopped"
            );
        }
        released
    }
}

/// Which runs the hub may hear are gone. A run found gone is told only
/// once a release of nicknames that began after it was found gone is
/// done, so that its clients are said to have left only when their
/// nicknames are free; and nothing is told before the first release is
/// done (runs gone before this node started hold nicknames too).
#[derive(Debug)]
pub(super) struct Releases {
    /// The runs alive at the last judgement.
    alive_before: HashSet<Arc<str>>,
    /// Runs found gone, with the generation of the first release that
    /// can have released their nicknames.
    gone_at: HashMap<Arc<str>, u64>,
    /// The generation of the next release to begin.
    next: u64,
    /// The newest generation done (0: none yet).
    done: u64,
    /// A release is due.
    due: bool,
}

impl Releases {
    pub(super) fn new() -> Self {
        Releases {
            alive_before: HashSet::new(),
            gone_at: HashMap::new(),
            next: 1,
            done: 0,
            due: true,
        }
    }

    /// A judgement found these runs alive.
    pub(super) fn judged(&mut self, alive: &HashSet<Arc<str>>) {
        for run in &self.alive_before {
            if !alive.contains(run) {
                self.gone_at.entry(Arc::clone(run)).or_insert(self.next);
                self.due = true;
            }
        }
        // Back after all (its heartbeat was only late).
        self.gone_at.retain(|run, _| !alive.contains(run));
        self.alive_before.clone_from(alive);
    }

    /// A release may begin: its generation, if one is due.
    pub(super) fn begin(&mut self) -> Option<u64> {
        if !self.due {
            return None;
        }
        self.due = false;
        self.next += 1;
        Some(self.next - 1)
    }

    /// The release of `generation` ended; `all`: it released every
    /// nickname of a run not alive.
    pub(super) fn ended(&mut self, generation: u64, all: bool) {
        if !all {
            return self.failed();
        }
        self.done = self.done.max(generation);
        let done = self.done;
        self.gone_at.retain(|_, g| *g > done);
    }

    /// A release ended without releasing them all: another is due.
    pub(super) fn failed(&mut self) {
        self.due = true;
    }

    /// What the hub may hear is alive: the runs alive now and those
    /// found gone whose nicknames no release has freed yet. `None`
    /// before the first release is done.
    pub(super) fn told(&self, alive: &HashSet<Arc<str>>) -> Option<HashSet<Arc<str>>> {
        if self.done == 0 {
            return None;
        }
        let mut told = alive.clone();
        told.extend(self.gone_at.keys().cloned());
        Some(told)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(names: &[&str]) -> HashSet<Arc<str>> {
        names.iter().map(|n| Arc::from(*n)).collect()
    }

    #[test]
    fn nothing_is_told_before_the_first_release_is_done() {
        let mut r = Releases::new();
        r.judged(&runs(&["me", "b"]));
        assert_eq!(r.told(&runs(&["me", "b"])), None);
        let first = r.begin().expect("the first judgement releases");
        assert_eq!(r.begin(), None, "one is due, not two");
        r.ended(first, true);
        assert_eq!(r.told(&runs(&["me", "b"])), Some(runs(&["me", "b"])));
    }

    #[test]
    fn a_run_gone_is_told_only_once_a_release_begun_after_it_is_done() {
        let mut r = Releases::new();
        r.judged(&runs(&["me", "b", "c"]));
        let first = r.begin().unwrap();
        r.ended(first, true);
        // d starts later (after the last release), then dies while no
        // release runs: still told alive until one that left it out ends.
        r.judged(&runs(&["me", "b", "c", "d"]));
        r.judged(&runs(&["me", "b", "c"]));
        assert_eq!(
            r.told(&runs(&["me", "b", "c"])).unwrap(),
            runs(&["me", "b", "c", "d"])
        );
        let second = r.begin().unwrap();
        // b dies while the second release runs: the second does not cover it.
        r.judged(&runs(&["me", "c"]));
        r.ended(second, true);
        assert_eq!(
            r.told(&runs(&["me", "c"])).unwrap(),
            runs(&["me", "c", "b"])
        );
        let third = r.begin().unwrap();
        r.ended(third, true);
        assert_eq!(r.told(&runs(&["me", "c"])).unwrap(), runs(&["me", "c"]));
    }

    #[test]
    fn a_failed_release_is_begun_again_and_covers_nothing() {
        let mut r = Releases::new();
        r.judged(&runs(&["me", "b"]));
        let first = r.begin().unwrap();
        r.ended(first, true);
        r.judged(&runs(&["me"]));
        let second = r.begin().unwrap();
        r.ended(second, false);
        assert_eq!(r.told(&runs(&["me"])).unwrap(), runs(&["me", "b"]));
        let third = r.begin().expect("begun again");
        r.ended(third, true);
        assert_eq!(r.told(&runs(&["me"])).unwrap(), runs(&["me"]));
    }

    #[test]
    fn a_run_back_before_a_release_is_not_told_gone() {
        let mut r = Releases::new();
        r.judged(&runs(&["me", "b"]));
        let first = r.begin().unwrap();
        r.ended(first, true);
        // b is late once, then heard again before any release ends.
        r.judged(&runs(&["me"]));
        r.judged(&runs(&["me", "b"]));
        assert_eq!(r.told(&runs(&["me", "b"])).unwrap(), runs(&["me", "b"]));
        let second = r.begin().expect("its lateness made one due");
        r.ended(second, true);
        assert_eq!(r.told(&runs(&["me", "b"])).unwrap(), runs(&["me", "b"]));
        // Gone for good this time: told once a release begun after it ends.
        r.judged(&runs(&["me"]));
        assert_eq!(r.told(&runs(&["me"])).unwrap(), runs(&["me", "b"]));
        let third = r.begin().unwrap();
        r.ended(third, true);
        assert_eq!(r.told(&runs(&["me"])).unwrap(), runs(&["me"]));
    }
}
