//! The online list (People): who is there, which of them the line being
//! written goes to, and the `+` that adds one more.

use std::collections::HashMap;

use chatproto::{nick_key, normalize_nick, NickRule};
use fantoccini::key::Key;
use serde_json::{json, Value};

use crate::common::Server;
use crate::keyboard::slid_in;
use crate::webdriver::{wait_for, Harness, Page};

/// The page's key (protocol.js `nickKey`) of every code point but the
/// surrogates, where it differs from the character itself: `[code, key]`.
const PAGE_KEYS_JS: &str = "
const { nickKey } = await import('/protocol.js');
const out = [];
for (let c = 0; c <= 0x10ffff; c++) {
  if (c >= 0xd800 && c <= 0xdfff) continue;
  const s = String.fromCodePoint(c);
  const k = nickKey(s);
  if (k !== s) out.push([c, k]);
}
return out;";

/// The page tells people apart as the server does: its nickname key
/// gives two characters one key exactly when chatproto's `nick_key`
/// does, over every code point (the keys themselves may differ, as
/// Cherokee's folding to capitals does; pairs of characters that no
/// nickname can hold are set aside), and so do names that fold as a
/// whole. It lower-cased, which kept `Straße` and `STRASSE`, or
/// `σοφος` and `σοφοσ`, apart.
#[test]
fn the_page_tells_people_apart_as_the_server_does() {
    let Some(h) = Harness::start("nick_keys_agree") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (1200, 800)).await;
        let v = page.js(PAGE_KEYS_JS, vec![]).await;
        let differ: HashMap<u32, String> = v
            .as_array()
            .expect("keys")
            .iter()
            .map(|p| {
                let c = p[0].as_u64().expect("a code point") as u32;
                (c, p[1].as_str().expect("a key").to_owned())
            })
            .collect();
        // One partition: the page's key names one server key, and back.
        // Two characters no nickname can hold cannot mark a row wrongly
        // between them: the case pairs the browser knows from a Unicode
        // newer than the server's tables (Unicode 17's, in Chromium 156).
        let in_a_nick = |c: char| {
            normalize_nick(&c.to_string(), NickRule::Unicode).is_ok()
                || normalize_nick(&format!("a{c}"), NickRule::Unicode).is_ok()
        };
        let mut to_server: HashMap<String, (char, String)> = HashMap::new();
        let mut to_page: HashMap<String, (char, String)> = HashMap::new();
        let mut wrong = Vec::new();
        let mut newer = Vec::new();
        for c in (0..=char::MAX as u32).filter_map(char::from_u32) {
            let s = c.to_string();
            let pk = differ.get(&(c as u32)).cloned().unwrap_or_else(|| s.clone());
            let sk = nick_key(&s);
            let (d, seen) = to_server.entry(pk.clone()).or_insert((c, sk.clone()));
            let mut say = None;
            if *seen != sk {
                say = Some((*d, format!("one key {pk:?} on the page, {sk:?} and {seen:?} on the server")));
            }
            let (d, seen) = to_page.entry(sk.clone()).or_insert((c, pk.clone()));
            if *seen != pk {
                say = Some((*d, format!("one key {sk:?} on the server, {pk:?} and {seen:?} on the page")));
            }
            match say {
                Some((d, _)) if !in_a_nick(c) && !in_a_nick(d) => newer.push((c, d)),
                Some((d, why)) => wrong.push(format!("{c:?} and {d:?}: {why}")),
                None => {}
            }
        }
        eprintln!("set aside, in no nickname: {newer:?}");
        // Whole names: folded letters that lower-casing keeps apart, a
        // final sigma, NFD, and the Turkic i's three people.
        let names = [
            ["Straße", "STRASSE", "strasse"],
            ["ΣΟΦΟΣ", "σοφος", "σοφοσ"],
            ["Jose\u{301}", "JOSÉ", "josé"],
            ["Işık", "ISIK", "İşık"],
        ];
        let flat: Vec<&str> = names.iter().flatten().copied().collect();
        let keys = page
            .js(
                "const { nickKey } = await import('/protocol.js');
                 return arguments[0].map(nickKey);",
                vec![json!(flat)],
            )
            .await;
        let keys: Vec<&str> = keys
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k.as_str().expect("a key"))
            .collect();
        for (i, a) in flat.iter().enumerate() {
            for (j, b) in flat.iter().enumerate().skip(i + 1) {
                let server_same = nick_key(a) == nick_key(b);
                if server_same != (keys[i] == keys[j]) {
                    wrong.push(format!(
                        "{a:?} and {b:?}: one person on the server: {server_same}; page keys {:?} {:?}",
                        keys[i], keys[j]
                    ));
                }
            }
        }
        page.close().await;
        assert!(wrong.is_empty(), "{} differences: {wrong:#?}", wrong.len());
    });
}

/// Type `arguments[0]` into the message input, as a key would change it,
/// and give each row of the online list: its nick, whether it is marked
/// as one written to, and whether its `+` is seen.
const MARKS_JS: &str = "const i = document.getElementById('input');
  i.focus();
  i.value = arguments[0];
  i.dispatchEvent(new Event('input'));
  return Object.fromEntries(Array.from(document.querySelectorAll('#online > li'), (li) => {
    const add = li.querySelector('button.add');
    return [li.dataset.nick, [li.classList.contains('addressed'),
      !!add && add.getClientRects().length > 0]];
  }));";

/// Those a line is written to are marked in the online list as the
/// server matches recipients (by its nickname key): `@STRASSE` reaches
/// Straße and marks her, `@Jose\u{301}` (NFD) marks José, and adding José
/// again (a Shift-click on his name) keeps him once. The list compared
/// lower-cased names, so it did not mark them, showed José's `+` while he
/// was written to and added him a second time (`@Jose\u{301} @José`).
#[test]
fn those_written_to_are_marked_as_the_server_matches_them() {
    let Some(h) = Harness::start("marks_fold_as_the_server") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (1200, 800)).await;
        let mut strasse = server.join("Straße");
        let _jose = server.join("José");
        let _sophos = server.join("σοφος");
        page.wait_nicks("lobby", &["Straße", "José", "σοφος"]).await;
        let marked = async |typed: &str| -> Value { page.js(MARKS_JS, vec![json!(typed)]).await };
        let mut wrong = Vec::new();
        for (typed, who) in [
            ("@STRASSE hi", "Straße"),
            ("@Jose\u{301} hi", "José"),
            ("@ΣΟΦΟΣ hi", "σοφος"),
            ("@σοφοσ hi", "σοφος"),
        ] {
            let rows = marked(typed).await;
            // Marked, with no `+` of its own; the others have theirs.
            if rows[who] != json!([true, false]) {
                wrong.push(format!("{typed:?} for {who}: {rows}"));
            }
            if rows["alice"] != json!([false, false]) {
                wrong.push(format!("{typed:?}, our own row: {rows}"));
            }
        }
        // Adding José to a line written to him in NFD keeps him once.
        marked("@Jose\u{301} ").await;
        page.js(
            "document.querySelector('#online li[data-nick=\"José\"] button.nick')
               .dispatchEvent(new MouseEvent('click', { bubbles: true, shiftKey: true }));",
            vec![],
        )
        .await;
        let input = page
            .js("return document.getElementById('input').value;", vec![])
            .await;
        if input != json!("@José ") {
            wrong.push(format!("José added again: {input}"));
        }
        // And the server takes @STRASSE to be Straße.
        marked("").await;
        page.type_line("@STRASSE are you Straße?").await;
        let (_, f) =
            strasse.recv_until(50, |f| f["type"] == "msg" && f["text"] == "are you Straße?");
        assert_eq!(f["to"], json!(["Straße"]), "{f}");
        page.close().await;
        assert!(wrong.is_empty(), "{wrong:#?}");
    });
}

/// How many people the big room holds besides us.
const CROWD: usize = 200;

/// The online list as it stands: its rows, the `+`s, how many of them
/// are Tab stops, the heights of the rows drawn, how many rows are not
/// drawn (off screen, skipped), and what was done to it since the last
/// look (rows added, rows taken out, rows whose class changed).
const LIST_JS: &str = "
const ul = document.getElementById('online');
const rows = Array.from(ul.children);
const adds = Array.from(ul.querySelectorAll('button.add'));
// A row off screen keeps its box, and skips what is in it.
const drawn = rows.filter((li) => li.firstElementChild.checkVisibility({ contentVisibilityAuto: true }));
if (!window.listWatch) {
  window.listDone = [];
  window.listWatch = new MutationObserver((records) => window.listDone.push(...records));
  window.listWatch.observe(ul, { childList: true, subtree: true, attributes: true, attributeFilter: ['class'] });
}
const done = [...window.listDone, ...window.listWatch.takeRecords()];
window.listDone = [];
const lis = (nodes) => [...nodes].filter((n) => n instanceof HTMLLIElement).length;
return {
  rows: rows.length,
  adds: adds.length,
  addStops: adds.filter((b) => b.tabIndex >= 0).length,
  nameStops: Array.from(ul.querySelectorAll('button.nick')).filter((b) => b.tabIndex >= 0).length,
  unnamedAdds: adds.filter((b) => !b.getAttribute('aria-label')).length,
  plusShown: adds.filter((b) => b.getClientRects().length > 0).length,
  heights: [...new Set(drawn.map((li) => li.getBoundingClientRect().height))],
  notDrawn: rows.length - drawn.length,
  listHeight: ul.getBoundingClientRect().height,
  added: done.filter((r) => r.type === 'childList').reduce((n, r) => n + lis(r.addedNodes), 0),
  removed: done.filter((r) => r.type === 'childList').reduce((n, r) => n + lis(r.removedNodes), 0),
  restyled: new Set(done.filter((r) => r.type === 'attributes' && r.target instanceof HTMLLIElement)
    .map((r) => r.target)).size,
};";

/// Type `arguments[0]` into the message input, as a key would change it.
const TYPE_JS: &str = "const i = document.getElementById('input');
  i.focus();
  i.value = arguments[0];
  i.dispatchEvent(new Event('input'));";

/// A big room's online list costs what changes, not the whole list
/// (counted, not timed): typing `@` and a name marks one row and lays
/// out only the rows on screen, every row as high with its `+` as
/// without, one more or one fewer person adds or takes out one row, and
/// only the names are Tab stops (the `+`s keep their names for a screen
/// reader). Each `+` was a Tab stop (20,001 at 10,000 online), the `+`s
/// coming made every row taller and laid the whole list out, and every
/// join or leave drew the list anew.
#[test]
fn a_big_online_list_costs_what_changes() {
    let Some(h) = Harness::start("a_big_online_list") else {
        return;
    };
    let server = Server::start(&[
        "--max-clients-per-ip",
        "1000",
        "--connect-burst-per-ip",
        "1000",
    ]);
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (1200, 800)).await;
        let crowd: Vec<_> = (0..CROWD)
            .map(|i| server.join(&format!("user{i:03}")))
            .collect();
        wait_for("the crowd in the list", async || {
            let v = page.js(LIST_JS, vec![]).await;
            if v["rows"] == json!(CROWD + 1) {
                Ok(())
            } else {
                Err(v.to_string())
            }
        })
        .await;
        let before = page.js(LIST_JS, vec![]).await;
        let mut wrong = Vec::new();
        if before["nameStops"] != json!(CROWD + 1) || before["addStops"] != json!(0) {
            wrong.push(format!("Tab stops: names and +s: {before}"));
        }
        if before["unnamedAdds"] != json!(0) || before["adds"] != json!(CROWD) {
            wrong.push(format!("a + without its name: {before}"));
        }

        // Written to someone: one row marked, the +s shown, nothing moved.
        page.js(TYPE_JS, vec![json!("@user007")]).await;
        let to_one = page.js(LIST_JS, vec![]).await;
        page.shot("online-big-addressing").await;
        if to_one["plusShown"] != json!(CROWD - 1) || to_one["restyled"] != json!(1) {
            wrong.push(format!(
                "@user007 marks one row, the others' + shown: {to_one}"
            ));
        }
        if to_one["heights"] != before["heights"]
            || before["heights"].as_array().map(Vec::len) != Some(1)
        {
            wrong.push(format!(
                "rows of one height, with a + or not: {before} then {to_one}"
            ));
        }
        if to_one["listHeight"] != before["listHeight"] {
            wrong.push(format!("the list's height changed: {before} then {to_one}"));
        }
        let not_drawn = to_one["notDrawn"].as_u64().expect("a count");
        if not_drawn < CROWD as u64 / 2 {
            wrong.push(format!(
                "{not_drawn} of {} rows not drawn: {to_one}",
                CROWD + 1
            ));
        }
        // Each name added or taken back touches its own row only.
        for (typed, rows) in [("@user007 @user123 ", 1), ("@USER123 hi", 1), ("hi", 1)] {
            page.js(TYPE_JS, vec![json!(typed)]).await;
            let v = page.js(LIST_JS, vec![]).await;
            if v["restyled"] != json!(rows) {
                wrong.push(format!("{typed:?}: {rows} row(s) to mark or unmark: {v}"));
            }
        }

        // The keyboard's way to add, the `+` being no Tab stop: Shift+Enter
        // on a name.
        page.js(TYPE_JS, vec![json!("@user123 ")]).await;
        page.js(
            "document.querySelector('#online li[data-nick=\"user007\"] button.nick').focus();",
            vec![],
        )
        .await;
        page.press(&[Key::Shift, Key::Enter]).await;
        let input = page
            .js("return document.getElementById('input').value;", vec![])
            .await;
        if input != json!("@user123 @user007 ") {
            wrong.push(format!("Shift+Enter on user007's name: {input}"));
        }

        // One more, then one fewer: one row in, one row out.
        let late = server.join("zed");
        let joined = wait_for("zed in the list", async || {
            let v = page.js(LIST_JS, vec![]).await;
            if v["rows"] == json!(CROWD + 2) {
                Ok(v)
            } else {
                Err(v.to_string())
            }
        })
        .await;
        if (&joined["added"], &joined["removed"]) != (&json!(1), &json!(0)) {
            wrong.push(format!("zed came: {joined}"));
        }
        drop(late);
        let left = wait_for("zed gone from the list", async || {
            let v = page.js(LIST_JS, vec![]).await;
            if v["rows"] == json!(CROWD + 1) {
                Ok(v)
            } else {
                Err(v.to_string())
            }
        })
        .await;
        if (&left["added"], &left["removed"]) != (&json!(0), &json!(1)) {
            wrong.push(format!("zed left: {left}"));
        }
        drop(crowd);
        page.close().await;
        assert!(wrong.is_empty(), "{wrong:#?}");
    });
}

/// The input's value, whether the People drawer is open, what has the
/// focus (as `page.focused()` says it, by its first class) and its nick,
/// and who is marked as written to.
const DRAWER_JS: &str = "const a = document.activeElement;
  const d = a && a.closest('.drawer');
  const what = !a || a === document.body ? 'body'
    : a.id ? `#${a.id}` : `${a.tagName.toLowerCase()}.${a.classList[0]}`;
  return [document.getElementById('input').value,
    document.getElementById('people').classList.contains('open'),
    d ? `${d.id} ${what}` : what,
    a && a.dataset.nick || null,
    Array.from(document.querySelectorAll('#online > li.addressed'), (li) => li.dataset.nick)];";

/// Where the middle of `nick`'s `+` in the online list is, as `[x, y]`.
const PLUS_AT_JS: &str = "const r = document.querySelector(
    `#online li[data-nick=\"${arguments[0]}\"] button.add`).getBoundingClientRect();
  return [r.left + r.width / 2, r.top + r.height / 2];";

/// On a phone, a group of three is built in one visit to the People
/// drawer after the first name: a tap on a `+` adds that one and leaves
/// the drawer open for the next (the focus on that name, not lost with
/// its `+`), while a tap on a name still closes it, to write. Each `+`
/// closed the drawer, so a group of three took opening it three times.
#[test]
fn on_a_phone_a_plus_leaves_the_people_drawer_open() {
    let Some(h) = Harness::start("a_plus_keeps_the_drawer") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (390, 844)).await;
        let mut bob = server.join("bob");
        let _carol = server.join("carol");
        let _dave = server.join("dave");
        page.wait_nicks("lobby", &["bob", "carol", "dave"]).await;
        // A name tapped: the drawer closes, to write to bob.
        page.click("people-toggle").await;
        slid_in(&page, "people").await;
        page.click_css("#online li[data-nick=\"bob\"] button.nick")
            .await;
        assert_eq!(
            page.js(DRAWER_JS, vec![]).await,
            json!(["@bob ", false, "#input", null, ["bob"]])
        );
        // Open once more: carol's `+`, then dave's, the drawer open.
        page.click("people-toggle").await;
        slid_in(&page, "people").await;
        for (who, line, marked) in [
            ("carol", "@bob @carol ", json!(["bob", "carol"])),
            (
                "dave",
                "@bob @carol @dave ",
                json!(["bob", "carol", "dave"]),
            ),
        ] {
            let at = page.js(PLUS_AT_JS, vec![json!(who)]).await;
            page.click_at(at[0].as_f64().unwrap(), at[1].as_f64().unwrap())
                .await;
            assert_eq!(
                page.js(DRAWER_JS, vec![]).await,
                json!([line, true, "people button.nick", who, marked]),
                "after {who}'s +"
            );
            slid_in(&page, "people").await;
        }
        page.shot("phone-people-group-of-three").await;
        // Closed by its Close button, the line is written and goes to all three.
        page.click("people-close").await;
        page.click("input").await;
        page.press(&[Key::End]).await;
        page.press_text(&format!("hello all three{}", char::from(Key::Enter)))
            .await;
        let (_, f) = bob.recv_until(50, |f| f["type"] == "msg" && f["text"] == "hello all three");
        assert_eq!(f["to"], json!(["bob", "carol", "dave"]), "{f}");
        page.close().await;
    });
}

/// On a phone, once a `+` in the People drawer has added someone to those
/// written to, the drawer gives the focus to the message input when it
/// closes, however it is closed (its Close button, Esc, a tap beside it),
/// so the line is typed on at once; closed without a `+`, it gives the
/// focus back to the People button, as before. The focus went back to
/// the People button, and the input took a tap before typing.
#[test]
fn after_a_plus_the_closed_people_drawer_leaves_the_focus_in_the_input() {
    let Some(h) = Harness::start("a_plus_then_the_input") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (390, 844)).await;
        let mut bob = server.join("bob");
        let _others: Vec<_> = ["carol", "dave", "erin"]
            .iter()
            .map(|n| server.join(n))
            .collect();
        page.wait_nicks("lobby", &["bob", "carol", "dave", "erin"])
            .await;
        let open = async || {
            page.click("people-toggle").await;
            slid_in(&page, "people").await;
        };
        // Looked at and closed: back to the People button.
        open().await;
        page.click("people-close").await;
        assert_eq!(page.focused().await, "#people-toggle");
        // bob by his name, then one more by a `+`, the drawer closed each
        // way in turn.
        for (way, who) in [
            ("Esc", "carol"),
            ("a tap beside it", "dave"),
            ("Close", "erin"),
        ] {
            page.js(TYPE_JS, vec![json!("@bob ")]).await;
            open().await;
            let at = page.js(PLUS_AT_JS, vec![json!(who)]).await;
            page.click_at(at[0].as_f64().unwrap(), at[1].as_f64().unwrap())
                .await;
            let line = format!("@bob @{who} ");
            assert_eq!(
                page.js(DRAWER_JS, vec![]).await,
                json!([line, true, "people button.nick", who, ["bob", who]]),
                "after {who}'s +"
            );
            match way {
                "Esc" => page.press(&[Key::Escape]).await,
                "Close" => page.click("people-close").await,
                _ => page.click_at(40.0, 400.0).await,
            }
            assert_eq!(
                page.js(DRAWER_JS, vec![]).await,
                json!([line, false, "#input", null, ["bob", who]]),
                "closed by {way} after {who}'s +"
            );
        }
        wait_for("the People drawer slid out", async || {
            let v = page
                .js(
                    "return getComputedStyle(document.getElementById('people')).visibility;",
                    vec![],
                )
                .await;
            if v == json!("hidden") {
                Ok(())
            } else {
                Err(v.to_string())
            }
        })
        .await;
        page.shot("phone-people-closed-after-a-plus").await;
        // Typed on at once, no tap on the input.
        page.press(&[Key::End]).await;
        page.press_text(&format!("hello both{}", char::from(Key::Enter)))
            .await;
        let (_, f) = bob.recv_until(50, |f| f["type"] == "msg" && f["text"] == "hello both");
        assert_eq!(f["to"], json!(["bob", "erin"]), "{f}");
        page.close().await;
    });
}

/// How many people the room of a list drawn in part holds besides us
/// (more than the 300 rows the page draws).
const ROOM: usize = 500;

/// The online list drawn in part: the count it says, its rows (their
/// nicks in order, and each one's `aria-posinset` and `aria-setsize`),
/// a row's height and the list's, what has the focus, and what was done
/// to the list since the last look (rows in, rows out).
const DRAWN_JS: &str = "
const ul = document.getElementById('online');
if (!window.drawnWatch) {
  window.drawnDone = [];
  window.drawnWatch = new MutationObserver((records) => window.drawnDone.push(...records));
  window.drawnWatch.observe(ul, { childList: true });
}
const done = [...window.drawnDone, ...window.drawnWatch.takeRecords()];
window.drawnDone = [];
const rows = Array.from(ul.children);
const lis = (nodes) => [...nodes].filter((n) => n instanceof HTMLLIElement).length;
const a = document.activeElement;
return {
  count: Number(document.getElementById('online-count').textContent),
  nicks: rows.map((li) => li.dataset.nick),
  places: rows.map((li) => Number(li.getAttribute('aria-posinset'))),
  sizes: [...new Set(rows.map((li) => li.getAttribute('aria-setsize')))],
  rowHeight: rows[0].getBoundingClientRect().height,
  listHeight: ul.getBoundingClientRect().height,
  focused: a && a.closest('#online') ? a.dataset.nick : null,
  added: done.reduce((n, r) => n + lis(r.addedNodes), 0),
  removed: done.reduce((n, r) => n + lis(r.removedNodes), 0),
};";

/// A room of more people than the page draws rows for (500; it draws
/// 300): only the rows near what is in view are in the page, the rest
/// padding as high as their rows, each row saying its place among all;
/// one more person, or one fewer, is one row in or out, or none when
/// they are not among those drawn; scrolling draws the rows come into
/// view, Tab goes on past the last row drawn, and the row with the focus
/// stays while the list scrolls away from it. Every name had its row: a
/// room of 10,000 took a quarter of a second to draw, and each join
/// there went through every name.
#[test]
fn a_long_online_list_draws_the_rows_near_the_view() {
    let Some(h) = Harness::start("a_long_online_list") else {
        return;
    };
    let server = Server::start(&[
        "--max-clients-per-ip",
        "1000",
        "--connect-burst-per-ip",
        "1000",
    ]);
    let crowd: Vec<_> = (0..ROOM)
        .map(|i| server.join(&format!("user{i:03}")))
        .collect();
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (1200, 800)).await;
        let look = async || page.js(DRAWN_JS, vec![]).await;
        let mut all: Vec<String> = (0..ROOM).map(|i| format!("user{i:03}")).collect();
        all.insert(0, "alice".to_owned());
        let v = wait_for("the room in the list", async || {
            let v = look().await;
            if v["count"] == json!(ROOM + 1) {
                Ok(v)
            } else {
                Err(v.to_string())
            }
        })
        .await;
        let drawn = |v: &Value| -> Vec<String> {
            serde_json::from_value(v["nicks"].clone()).expect("nicks")
        };
        let places = |v: &Value| -> Vec<usize> {
            serde_json::from_value(v["places"].clone()).expect("places")
        };
        // Those at the top, each in its place among all, the list as
        // high as every row (to within one: a row's height is a
        // fraction of a pixel short of the stylesheet's).
        let first = drawn(&v);
        assert_eq!(first, all[..300], "{v}");
        assert_eq!(places(&v), (1..=300).collect::<Vec<_>>());
        assert_eq!(v["sizes"], json!([(ROOM + 1).to_string()]));
        let row = v["rowHeight"].as_f64().expect("a height");
        let high = |v: &Value, n: usize| {
            (v["listHeight"].as_f64().expect("a height") - row * n as f64).abs() < row
        };
        assert!(high(&v, ROOM + 1), "{v}");

        // One more, below those drawn: no row in; out again: none out.
        let zed = server.join("zed");
        let v = wait_for("zed counted", async || {
            let v = look().await;
            if v["count"] == json!(ROOM + 2) {
                Ok(v)
            } else {
                Err(v.to_string())
            }
        })
        .await;
        assert_eq!((&v["added"], &v["removed"]), (&json!(0), &json!(0)), "{v}");
        assert!(high(&v, ROOM + 2), "{v}");
        drop(zed);
        let v = wait_for("zed gone", async || {
            let v = look().await;
            if v["count"] == json!(ROOM + 1) {
                Ok(v)
            } else {
                Err(v.to_string())
            }
        })
        .await;
        assert_eq!((&v["added"], &v["removed"]), (&json!(0), &json!(0)), "{v}");
        // One among those drawn: their row in, the rows below one place on.
        let aaron = server.join("aaron");
        let v = wait_for("aaron in the list", async || {
            let v = look().await;
            if v["nicks"][0] == json!("aaron") {
                Ok(v)
            } else {
                Err(v.to_string())
            }
        })
        .await;
        assert_eq!((&v["added"], &v["removed"]), (&json!(1), &json!(0)), "{v}");
        assert_eq!(places(&v)[..3], [1, 2, 3], "{v}");
        assert_eq!(v["sizes"], json!([(ROOM + 2).to_string()]));
        drop(aaron);
        wait_for("aaron gone", async || {
            let v = look().await;
            if v["count"] == json!(ROOM + 1) && v["nicks"][0] == json!("alice") {
                Ok(())
            } else {
                Err(v.to_string())
            }
        })
        .await;

        // The keyboard: Tab from the last name drawn goes on to the next.
        let last = first.last().expect("a row").clone();
        page.js(
            "document.querySelector(`#online li[data-nick=\"${arguments[0]}\"] button.nick`).focus();",
            vec![json!(last)],
        )
        .await;
        page.press(&[Key::Tab]).await;
        let v = look().await;
        assert_eq!(v["focused"], json!(all[300]), "Tab after {last}: {v}");

        // Back at the top, then scrolled to the end from the first name,
        // focused: the rows at the end drawn, the focused one kept.
        page.js("document.getElementById('people').scrollTop = 0;", vec![])
            .await;
        wait_for("the top of the list drawn again", async || {
            let v = look().await;
            if v["nicks"][0] == json!("alice") {
                Ok(())
            } else {
                Err(v.to_string())
            }
        })
        .await;
        let focused = all[1].clone();
        page.js(
            "document.querySelector(`#online li[data-nick=\"${arguments[0]}\"] button.nick`).focus();
             const p = document.getElementById('people'); p.scrollTop = p.scrollHeight;",
            vec![json!(focused)],
        )
        .await;
        let v = wait_for("the end of the list drawn", async || {
            let v = look().await;
            if v["nicks"].as_array().and_then(|n| n.last()) == Some(&json!(all[ROOM])) {
                Ok(v)
            } else {
                Err(v.to_string())
            }
        })
        .await;
        page.shot("online-long-list-end").await;
        let end = drawn(&v);
        assert!(end.len() <= 300 + 1, "{} rows: {v}", end.len());
        assert_eq!(v["focused"], json!(focused), "{v}");
        // In order, each in its place: the one with the focus, then the
        // rows at the end.
        assert_eq!(end[0], focused, "{v}");
        assert_eq!(end[1..], all[all.len() - (end.len() - 1)..], "{v}");
        let want: Vec<usize> = end
            .iter()
            .map(|n| all.iter().position(|a| a == n).expect("a nick") + 1)
            .collect();
        assert_eq!(places(&v), want, "{v}");
        assert!(high(&v, ROOM + 1), "{v}");
        drop(crowd);
        page.close().await;
    });
}

/// The online list drawn in part, once the frame after the last change is
/// drawn: how many it counts, how many rows are in the page, a row's
/// height (every row is as high) and the list's, padding and all.
const HEIGHTS_JS: &str = "return (async () => {
  await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  const ul = document.getElementById('online');
  const rows = [...ul.children];
  return {
    count: Number(document.getElementById('online-count').textContent),
    drawn: rows.length,
    rowHeights: [...new Set(rows.map((li) => li.getBoundingClientRect().height))],
    listHeight: ul.getBoundingClientRect().height,
  };
})();";

/// The padding of a list drawn in part is as high as the rows it stands
/// for, as soon as the list is shown: the list is exactly as high as all
/// its rows (to the layout's rounding), not a few pixels off. It was
/// padded with the stylesheet's row height (1.95rem, 31.2 px) until a
/// row was measured and the rows drawn again, while a row is laid out a
/// fraction of a pixel shorter (31.1875 px): 2.5 px over the 201 rows
/// not drawn here, 121 px (some four rows) at 10,000 people: the scroll
/// bar was off, and the list changed height under it once scrolled far
/// enough to be drawn again.
#[test]
fn a_list_drawn_in_part_is_as_high_as_its_rows_from_the_start() {
    let Some(h) = Harness::start("a_list_drawn_in_part_is_as_high") else {
        return;
    };
    let (server, crowd) = crowd_of_room();
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (1200, 800)).await;
        counted(&page).await;
        let v = page.js(HEIGHTS_JS, vec![]).await;
        assert_eq!(v["count"], json!(ROOM + 1), "{v}");
        assert!(v["drawn"].as_u64().expect("rows") < ROOM as u64, "{v}");
        let heights = v["rowHeights"].as_array().expect("heights");
        assert_eq!(heights.len(), 1, "rows of one height: {v}");
        let row = heights[0].as_f64().expect("a height");
        let list = v["listHeight"].as_f64().expect("a height");
        let all = row * (ROOM + 1) as f64;
        assert!(
            (list - all).abs() < 0.1,
            "the list is {list} px high, its {} rows {all} px: {v}",
            ROOM + 1
        );
        drop(crowd);
        page.close().await;
    });
}

// ---------------------------------------------------------------------
// The keyboard in a list drawn in part.
// ---------------------------------------------------------------------

/// The online list as a person sees it once the frame is drawn: what has
/// the focus (its nick and place), the scroller's offset, the first and
/// last rows in the page, and the names in view (by what is under the
/// middle of each row's place).
const SEEN_JS: &str = "return (async () => {
  await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  const p = document.getElementById('people');
  const ul = document.getElementById('online');
  const pr = p.getBoundingClientRect();
  const ur = ul.getBoundingClientRect();
  const rows = [...ul.children];
  const h = rows[rows.length - 1].getBoundingClientRect().height;
  const inView = [];
  for (let y = Math.max(pr.top, ur.top) + h / 2; y < Math.min(pr.bottom, ur.bottom); y += h) {
    const li = document.elementFromPoint(ur.left + 12, y)?.closest('#online li');
    if (li) inView.push(li.dataset.nick);
  }
  const a = document.activeElement;
  const row = a && a.closest('#online li');
  return {
    focused: row ? row.dataset.nick : (a && a.id) || null,
    place: row ? Number(row.getAttribute('aria-posinset')) : null,
    scrollTop: p.scrollTop,
    first: rows[0].dataset.nick,
    last: rows[rows.length - 1].dataset.nick,
    inView,
  };
})();";

fn crowd_of_room() -> (Server, Vec<crate::common::Client>) {
    let server = Server::start(&[
        "--max-clients-per-ip",
        "1000",
        "--connect-burst-per-ip",
        "1000",
    ]);
    let crowd = (0..ROOM)
        .map(|i| server.join(&format!("user{i:03}")))
        .collect();
    (server, crowd)
}

/// Wait until the list counts the whole room (us and ROOM more).
async fn counted(page: &Page) {
    counted_as(page, ROOM + 1).await;
}

/// Wait until the list's count reads `n`.
async fn counted_as(page: &Page, n: usize) {
    wait_for("the count in the list", async || {
        let v = page
            .js(
                "return document.getElementById('online-count').textContent;",
                vec![],
            )
            .await;
        if v == json!(n.to_string()) {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;
}

/// Wait until the scroller has stopped moving (End and Home scroll
/// smoothly) and the rows for where it stopped are drawn.
async fn at_rest(page: &Page, shown: bool) -> Value {
    let mut last = page.js(SEEN_JS, vec![]).await;
    wait_for("the list at rest", async || {
        let v = page.js(SEEN_JS, vec![]).await;
        let same = v["scrollTop"] == last["scrollTop"];
        last = v.clone();
        if same && (!shown || !v["inView"].as_array().is_none_or(Vec::is_empty)) {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    })
    .await
}

/// A name has the focus and the list is scrolled away from it by the
/// keyboard (End, Home, as Page Down or the wheel would): Tab goes on to
/// the next name, Shift+Tab back to the one before, as in a list where
/// every name has its row (and Down, Up). Failed before the roving Tab
/// stop: the next Tab stop in the page was the first row drawn near the
/// view (user200, place 202 of 501), and Shift+Tab's the last one drawn.
#[test]
fn tab_after_the_list_scrolled_away_goes_to_the_next_name() {
    let Some(h) = Harness::start("tab_after_scrolling_away") else {
        return;
    };
    let (server, crowd) = crowd_of_room();
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (1200, 800)).await;
        counted(&page).await;
        let focus = "document.querySelector(`#online li[data-nick=\"${arguments[0]}\"] button.nick`).focus();";
        let mut wrong = Vec::new();

        page.js(focus, vec![json!("user002")]).await;
        page.press(&[Key::End]).await;
        let v = at_rest(&page, true).await;
        assert_eq!(v["last"], json!("user499"), "the end drawn: {v}");
        assert_eq!(v["focused"], json!("user002"), "{v}");
        page.press(&[Key::Tab]).await;
        let v = page.js(SEEN_JS, vec![]).await;
        if v["focused"] != json!("user003") {
            wrong.push(format!("Tab from user002 (place 4) after End: {v}"));
        }
        // Down and Up move between names as well.
        page.press(&[Key::Down]).await;
        let v = page.js(SEEN_JS, vec![]).await;
        if v["focused"] != json!("user004") {
            wrong.push(format!("Down from user003: {v}"));
        }
        page.press(&[Key::Up]).await;
        let v = page.js(SEEN_JS, vec![]).await;
        if v["focused"] != json!("user003") {
            wrong.push(format!("Up from user004: {v}"));
        }

        page.js("const p = document.getElementById('people'); p.scrollTop = p.scrollHeight;", vec![]).await;
        at_rest(&page, true).await;
        page.js(focus, vec![json!("user497")]).await;
        page.press(&[Key::Home]).await;
        let v = at_rest(&page, true).await;
        assert_eq!(v["first"], json!("alice"), "the top drawn: {v}");
        assert_eq!(v["focused"], json!("user497"), "{v}");
        page.press(&[Key::Shift, Key::Tab]).await;
        let v = page.js(SEEN_JS, vec![]).await;
        if v["focused"] != json!("user496") {
            wrong.push(format!("Shift+Tab from user497 (place 499) after Home: {v}"));
        }
        drop(crowd);
        page.close().await;
        assert!(wrong.is_empty(), "{wrong:#?}");
    });
}

/// The list scrolled to its middle: Tab into it (from Send), or the
/// People drawer opened again on a phone (someone came meanwhile), puts
/// the focus on its first name (as when every name had its row), or at
/// least on one in view without moving the list. Failed before the
/// roving Tab stop: it went to the first row drawn, some 100 names above
/// those in view, and the list jumped there.
#[test]
fn entering_a_scrolled_list_does_not_land_on_a_name_out_of_view() {
    let Some(h) = Harness::start("entering_a_scrolled_list") else {
        return;
    };
    let (server, crowd) = crowd_of_room();
    h.block_on(async {
        let mut wrong = Vec::new();
        let fine = |first: &str, before: &Value, after: &Value| {
            after["focused"] == json!(first)
                || (after["scrollTop"] == before["scrollTop"]
                    && before["inView"]
                        .as_array()
                        .is_some_and(|a| a.contains(&after["focused"])))
        };
        let middle = "const p = document.getElementById('people'); p.scrollTop = (p.scrollHeight - p.clientHeight) / 2;";

        // A wide page: Tab from Send.
        let page = Page::join(&h, server.addr(), "alice", (1200, 800)).await;
        counted(&page).await;
        page.js(middle, vec![]).await;
        let before = at_rest(&page, true).await;
        page.js("document.getElementById('send').focus();", vec![]).await;
        page.press(&[Key::Tab]).await;
        let after = page.js(SEEN_JS, vec![]).await;
        if !fine("alice", &before, &after) {
            wrong.push(format!("Tab from Send: before {before}, after {after}"));
        }
        page.close().await;

        // A phone: the People drawer looked through, closed, opened again.
        let page = Page::join(&h, server.addr(), "erin", (390, 844)).await;
        counted_as(&page, ROOM + 1).await;
        page.click("people-toggle").await;
        slid_in(&page, "people").await;
        page.js(middle, vec![]).await;
        at_rest(&page, true).await;
        let before = at_rest(&page, true).await;
        page.press(&[Key::Escape]).await;
        assert_eq!(page.focused().await, "#people-toggle");
        // Meanwhile someone comes (below those in view, at the end).
        let _zed = server.join("zed");
        counted_as(&page, ROOM + 2).await;
        at_rest(&page, false).await;
        page.click("people-toggle").await;
        slid_in(&page, "people").await;
        let after = at_rest(&page, true).await;
        page.shot("people-reopened").await;
        if !fine("erin", &before, &after) {
            wrong.push(format!("the People drawer opened again: before {before}, after {after}"));
        }
        drop(crowd);
        page.close().await;
        assert!(wrong.is_empty(), "{wrong:#?}");
    });
}
