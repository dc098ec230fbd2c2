//! What is checked of the screen: the seqs shown in a room, no double,
//! no disorder, no hole without a line saying messages are missing, and
//! a room paged back until everything is shown.

use std::collections::BTreeSet;

use super::Sim;
use crate::render::Line;

impl Sim {
    /// Whether a line saying messages are missing is shown in `room`.
    pub fn gap_lines(&self, room: &str) -> usize {
        self.app
            .entries
            .iter()
            .filter(|e| {
                e.room.as_deref() == Some(room) && matches!(e.line, Line::Gap { filled: false, .. })
            })
            .count()
    }

    /// The seqs of `room` shown, in order (the latest era only).
    pub fn shown_seqs(&self, room: &str) -> Vec<u64> {
        let places: Vec<_> = self
            .app
            .entries
            .iter()
            .filter_map(|e| match &e.line {
                Line::Msg { place, .. } if e.room.as_deref() == Some(room) => Some(*place),
                _ => None,
            })
            .collect();
        let era = places.iter().map(|p| p.era).max().unwrap_or(0);
        places
            .iter()
            .filter(|p| p.era == era)
            .map(|p| p.seq)
            .collect()
    }

    /// No double, in order, and nothing missing between two lines shown
    /// (no hole) but under a line saying messages are missing: Err with
    /// what is wrong.
    pub fn check(&self, room: &str) -> Result<(), String> {
        let era = self
            .app
            .entries
            .iter()
            .filter_map(|e| match &e.line {
                Line::Msg { place, .. } if e.room.as_deref() == Some(room) => Some(place.era),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let log: BTreeSet<u64> = self.logs[room].iter().copied().collect();
        let mut prev: Option<u64> = None;
        let mut gap_since = false;
        for e in &self.app.entries {
            if e.room.as_deref() != Some(room) {
                continue;
            }
            match &e.line {
                Line::Gap { filled: false, .. } => gap_since = true,
                Line::Msg { place, .. } if place.era == era => {
                    let q = place.seq;
                    if let Some(p) = prev {
                        if p == q {
                            return Err(format!("#{room}: {q} shown twice"));
                        }
                        if p > q {
                            return Err(format!("#{room}: {p} above {q} (order)"));
                        }
                        let missing: Vec<u64> = log.range(p + 1..q).copied().collect();
                        if !missing.is_empty() && !gap_since {
                            return Err(format!(
                                "#{room}: hole of {} between {p} and {q} (no gap line): {:?}",
                                missing.len(),
                                &missing[..missing.len().min(10)]
                            ));
                        }
                    }
                    prev = Some(q);
                    gap_since = false;
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub fn dump(&self, room: &str) {
        let mut out = Vec::new();
        for e in &self.app.entries {
            if e.room.as_deref() != Some(room) {
                continue;
            }
            out.push(match &e.line {
                Line::Msg {
                    place,
                    page,
                    missed,
                    ..
                } => format!(
                    "{}:{}{}{}",
                    place.era,
                    place.seq,
                    if *page { "p" } else { "" },
                    if *missed { "m" } else { "" }
                ),
                Line::Gap { filled, .. } => format!("GAP{filled}"),
                Line::HistoryNote { text, .. } => format!("NOTE({text})"),
                Line::HistoryStart { .. } => "START".into(),
                other => format!("{:?}", std::mem::discriminant(other)),
            });
        }
        let n = out.len();
        eprintln!("#{room} entries ({n}): {:?}", &out[n.saturating_sub(400)..]);
    }

    /// Page back in the current room until everything is shown (or the
    /// session says nothing is older), never going back to the bottom.
    pub fn page_all(&mut self, max: usize) -> Result<(), String> {
        let room = self.current();
        let mut same = 0;
        let mut was = usize::MAX;
        for _ in 0..max {
            self.settle();
            if self.shown_seqs(&room).first() == self.logs[&room].first()
                && self.gap_lines(&room) == 0
            {
                break;
            }
            let n = self.shown_seqs(&room).len();
            same = if n == was { same + 1 } else { 0 };
            was = n;
            if same >= 3 {
                break;
            }
            self.up_past_top();
            self.settle();
            if let Err(e) = self.check(&room) {
                self.dump(&room);
                return Err(format!("during paging back: {e}"));
            }
        }
        self.check(&room)?;
        let shown: BTreeSet<u64> = self.shown_seqs(&room).into_iter().collect();
        let lost: Vec<u64> = self.logs[&room]
            .iter()
            .copied()
            .filter(|q| !shown.contains(q))
            .collect();
        if lost.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "#{room}: {} never shown after paging back: {:?}",
                lost.len(),
                &lost[..lost.len().min(10)]
            ))
        }
    }
}
