//! The kill test's checks after the run: the store, the export, each raw client and the chatclient.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::{msg_id, msg_room, msg_text, Raw, PER_CLIENT, RAW, ROOMS};
use crate::common::kind;
use crate::{str_of, u64_of, Stored};

/// Everything a raw client received on its first connection was in the
/// store at the kill, and each echo among them in the export then, once.
pub(super) fn check_at_kill(
    raws: &[Raw],
    at_kill: &Stored,
    export_at_kill: &[Value],
    stored_last: &HashMap<String, u64>,
    kill_after: u64,
) {
    for raw in raws {
        for f in &raw.before_kill {
            let room = str_of(f, "room");
            let seq = u64_of(f, "seq");
            let row = at_kill.event(room, seq).unwrap_or_else(|| {
                panic!(
                    "{}: received {f}, but the store did not hold it at the kill",
                    raw.nick
                )
            });
            match kind(f) {
                "msg" => {
                    assert_eq!(row.kind, 1, "{f} stored as {row:?}");
                    assert_eq!(f["from"], row.nick.as_str(), "{f} stored as {row:?}");
                    assert_eq!(
                        f["text"],
                        row.text.as_deref().unwrap_or(""),
                        "{f} vs {row:?}"
                    );
                }
                _ => {
                    assert_eq!(row.kind, 0, "{f} stored as {row:?}");
                    assert_eq!(f["nick"], row.nick.as_str(), "{f} stored as {row:?}");
                    assert_eq!(row.online, Some(f["status"] == "online"), "{f} vs {row:?}");
                }
            }
        }
        for room in ROOMS {
            assert_eq!(
                raw.epochs[room],
                at_kill.epoch(room),
                "{}: #{room}",
                raw.nick
            );
        }
    }
    let mut echoed_before_kill = 0;
    for raw in raws {
        for (id, (room, seq, text)) in &raw.echoes {
            if *seq > stored_last[room] {
                continue;
            }
            let hits: Vec<&Value> = export_at_kill
                .iter()
                .filter(|m| m["from"] == raw.nick.as_str() && m["id"] == id.as_str())
                .collect();
            assert_eq!(hits.len(), 1, "{id} in the export at the kill: {hits:?}");
            assert_eq!(
                (
                    hits[0]["room"].as_str(),
                    hits[0]["seq"].as_u64(),
                    hits[0]["text"].as_str()
                ),
                (Some(room.as_str()), Some(*seq), Some(text.as_str())),
                "{id}"
            );
            echoed_before_kill += 1;
        }
    }
    assert!(
        echoed_before_kill >= kill_after as usize,
        "{echoed_before_kill} echoes before the kill"
    );
}

/// What was stored before the kill is unchanged, and the restarted server
/// went on from the next seq, in the same epoch.
pub(super) fn check_at_end(
    at_kill: &Stored,
    at_end: &Stored,
    stored_last: &HashMap<String, u64>,
    killed_ms: u64,
) {
    at_end.assert_gapless("at the end");
    for room in ROOMS {
        let last = stored_last[room];
        assert_eq!(
            at_end.epoch(room),
            at_kill.epoch(room),
            "#{room}: a new epoch"
        );
        assert_eq!(
            at_end.events[room][..last as usize],
            at_kill.events[room][..],
            "#{room}: what was stored before the kill changed"
        );
        let after = &at_end.events[room][last as usize..];
        assert!(!after.is_empty(), "#{room}: nothing after the restart");
        assert_eq!(
            after[0].seq,
            last + 1,
            "#{room}: the first seq after the restart"
        );
        for row in after {
            assert!(
                row.ts >= killed_ms,
                "#{room}: {row:?} stamped before the kill ({killed_ms})"
            );
        }
    }
}

/// The export is the stored msgs, room by room in seq order; by room.
pub(super) fn check_export<'a>(
    exported: &'a [Value],
    at_end: &Stored,
) -> HashMap<&'a str, Vec<&'a Value>> {
    let mut by_room: HashMap<&str, Vec<&Value>> = HashMap::new();
    for m in exported {
        assert_eq!(m["type"], "msg", "{m}");
        assert_eq!(m["to"], json!([]), "{m}");
        by_room.entry(str_of(m, "room")).or_default().push(m);
    }
    for room in ROOMS {
        let seqs: Vec<u64> = by_room[room].iter().map(|m| u64_of(m, "seq")).collect();
        let stored: Vec<u64> = at_end.events[room]
            .iter()
            .filter(|r| r.kind == 1)
            .map(|r| r.seq)
            .collect();
        assert_eq!(
            seqs, stored,
            "#{room}: the export is not the stored msgs in order"
        );
    }
    by_room
}

/// A raw client's messages are each stored once, in its room, in the order
/// it sent them, as acknowledged; it resumed; and it received every message
/// of each room after its first entry, once, in order.
pub(super) fn check_raw(raw: &Raw, exported: &[Value], by_room: &HashMap<&str, Vec<&Value>>) {
    let nick = raw.nick.as_str();
    let mine: Vec<&Value> = exported
        .iter()
        .filter(|m| m["from"] == nick && m["text"] != "fin")
        .collect();
    let ids: Vec<String> = mine.iter().map(|m| str_of(m, "id").to_owned()).collect();
    let mut want: Vec<String> = (0..PER_CLIENT).map(|i| msg_id(nick, i)).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    want.sort();
    assert_eq!(
        sorted, want,
        "{nick}: its messages in the export, each once"
    );
    for room in ROOMS {
        let order: Vec<usize> = mine
            .iter()
            .filter(|m| m["room"] == room)
            .map(|m| raw.index_of(str_of(m, "id")))
            .collect();
        let mut in_order = order.clone();
        in_order.sort_unstable();
        assert_eq!(
            order, in_order,
            "{nick}: #{room} stored out of sending order"
        );
    }
    for m in &mine {
        let i = raw.index_of(str_of(m, "id"));
        assert_eq!(m["text"], msg_text(nick, i), "{m}");
        assert_eq!(m["room"], msg_room(nick, i), "{m}");
    }
    assert_eq!(raw.echoes.len(), PER_CLIENT, "{nick}: answers");
    for (id, (room, seq, text)) in &raw.echoes {
        let m = mine
            .iter()
            .find(|m| m["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} acknowledged, not in the export"));
        assert_eq!(
            (str_of(m, "room"), u64_of(m, "seq")),
            (room.as_str(), *seq),
            "{id}"
        );
        assert_eq!(str_of(m, "text"), text, "{id}");
    }
    // The session resumed, and re-entered every room recovered.
    let (welcome, entries) = raw.resumed.as_ref().expect("resumed once");
    assert_eq!(welcome["resumed"], true, "{welcome}");
    assert_eq!(entries.len(), ROOMS.len(), "{nick}: {entries:?}");
    // Every message of each room after its first entry, once, in order.
    for room in ROOMS {
        let got: Vec<(u64, &str, &str)> = raw.got[room]
            .iter()
            .map(|m| (u64_of(m, "seq"), str_of(m, "from"), str_of(m, "text")))
            .collect();
        let want: Vec<(u64, &str, &str)> = by_room[room]
            .iter()
            .filter(|m| u64_of(m, "seq") > raw.first[room])
            .map(|m| (u64_of(m, "seq"), str_of(m, "from"), str_of(m, "text")))
            .collect();
        assert_eq!(got, want, "{nick}: #{room} as received vs as stored");
    }
}

/// The real chatclient showed every lobby message (its own lines among
/// them) once, in the stored order, and said it reconnected, with no gap.
pub(super) fn check_chatclient(
    shown: &[String],
    by_room: &HashMap<&str, Vec<&Value>>,
    eve_lines: &[String],
) {
    let nicks: Vec<&str> = RAW.iter().copied().chain(["eve"]).collect();
    let chat: Vec<&String> = shown
        .iter()
        .filter(|l| nicks.iter().any(|n| l.starts_with(&format!("{n}: "))))
        .collect();
    let lobby: Vec<String> = by_room["lobby"]
        .iter()
        .map(|m| format!("{}: {}", str_of(m, "from"), str_of(m, "text")))
        .collect();
    let chat: Vec<String> = chat.into_iter().cloned().collect();
    assert_eq!(chat, lobby, "the chatclient's screen vs the stored lobby");
    let eve_stored: Vec<&str> = by_room["lobby"]
        .iter()
        .filter(|m| m["from"] == "eve")
        .map(|m| str_of(m, "text"))
        .collect();
    assert_eq!(
        eve_stored, eve_lines,
        "the chatclient's lines, stored once each in order"
    );
    assert!(
        shown.iter().any(|l| l.starts_with("* connection lost")),
        "the chatclient never lost its connection: {shown:#?}"
    );
    let summaries: Vec<&String> = shown
        .iter()
        .filter(|l| l.starts_with("* reconnected"))
        .collect();
    assert_eq!(summaries.len(), 1, "{shown:#?}");
    assert!(
        !summaries[0].contains("gap"),
        "the chatclient reported a gap: {shown:#?}"
    );
    for line in shown {
        assert!(
            !line.starts_with('!') && !line.starts_with("[history]"),
            "{line:?} in {shown:#?}"
        );
    }
}
