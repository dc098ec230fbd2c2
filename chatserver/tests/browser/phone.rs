//! The page as a person meets it on a phone (390 and 320 pixels wide),
//! and the same things on a wide page where they differ.

use fantoccini::key::Key;
use fantoccini::Locator;
use serde_json::json;

use crate::common::Server;
use crate::keyboard::{slid_in, SEEN_WHOLE_JS};
use crate::webdriver::{wait_for, Harness, Page};

// ---------------------------------------------------------------------
// b6. The page on a phone.
// ---------------------------------------------------------------------

/// The message input's value, whether the People drawer is open, and
/// what has the focus.
const INPUT_JS: &str = "return [document.getElementById('input').value,
  document.getElementById('people').classList.contains('open'),
  document.activeElement ? document.activeElement.id : null];";

/// Each row of the online list: its nick, whether it is marked as one
/// written to, and its add button: seen (a box, and what a tap at its
/// middle lands on) and where its middle is.
const ROWS_JS: &str = r#"
return Array.from(document.querySelectorAll('#online > li'), (li) => {
  const b = li.querySelector('button.add');
  const r = b ? b.getBoundingClientRect() : null;
  const x = r ? r.left + r.width / 2 : 0, y = r ? r.top + r.height / 2 : 0;
  return {
    nick: li.dataset.nick,
    to: li.classList.contains('addressed'),
    add: !!r && r.width > 0 && document.elementFromPoint(x, y) === b,
    label: b ? b.getAttribute('aria-label') : null,
    x,
    y,
  };
});
"#;

/// On a phone, a group message is built by touch: a tap on a name in
/// the People drawer writes to that one, and once someone is written to,
/// each other name has a `+` beside it that adds them to those written to
/// (it was Shift/Ctrl-click only, which a phone has not: a second name
/// tapped took the first one's place). Those written to are marked in
/// the list. A wide page's list has the same `+`.
#[test]
fn on_a_phone_a_group_message_is_built_by_tapping_names() {
    let Some(h) = Harness::start("a_group_by_touch") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (390, 844)).await;
        let mut bob = server.join("bob");
        let _carol = server.join("carol");
        page.wait_nicks("lobby", &["bob", "carol"]).await;
        let rows = async || {
            let v = page.js(ROWS_JS, vec![]).await;
            let by_nick = |n: &str| {
                v.as_array()
                    .expect("rows")
                    .iter()
                    .find(|r| r["nick"] == n)
                    .cloned()
                    .unwrap_or_else(|| panic!("no row for {n}: {v}"))
            };
            (by_nick("alice"), by_nick("bob"), by_nick("carol"))
        };

        // Nobody written to yet: no `+`, a tap on a name writes to them.
        page.click("people-toggle").await;
        slid_in(&page, "people").await;
        let (alice, bob_row, carol) = rows().await;
        assert!(
            [&alice, &bob_row, &carol]
                .iter()
                .all(|r| r["add"] == false && r["to"] == false),
            "{alice} {bob_row} {carol}"
        );
        page.click_css("#online li[data-nick=\"bob\"] button.nick")
            .await;
        assert_eq!(
            page.js(INPUT_JS, vec![]).await,
            json!(["@bob ", false, "input"])
        );

        // Bob written to: marked, and carol has her `+` (our own row none).
        page.click("people-toggle").await;
        slid_in(&page, "people").await;
        let (alice, bob_row, carol) = rows().await;
        page.shot("phone-people-add-to-group").await;
        assert_eq!(
            (&bob_row["to"], &bob_row["add"]),
            (&json!(true), &json!(false)),
            "{bob_row}"
        );
        assert_eq!(alice["add"], json!(false), "{alice}");
        assert_eq!(
            (&carol["to"], &carol["add"], &carol["label"]),
            (
                &json!(false),
                &json!(true),
                &json!("add carol to those written to")
            ),
            "{carol}"
        );
        let add = page
            .c
            .find(Locator::Css("#online li[data-nick=\"carol\"] button.add"))
            .await
            .expect("carol's +");
        let size = add.rectangle().await.expect("its box");
        assert!(
            size.2 >= 24.0 && size.3 >= 24.0,
            "a + of {}x{} px is small for a finger",
            size.2,
            size.3
        );
        // A finger's tap on it: the drawer stays open for the next one
        // (online::on_a_phone_a_plus_leaves_the_people_drawer_open).
        page.click_at(carol["x"].as_f64().unwrap(), carol["y"].as_f64().unwrap())
            .await;
        assert_eq!(
            page.js(INPUT_JS, vec![]).await,
            json!(["@bob @carol ", true, ""])
        );
        page.click("people-close").await;
        page.click("input").await;
        page.press(&[Key::End]).await;
        page.press_text(&format!("see you both{}", char::from(Key::Enter)))
            .await;
        let (_, f) = bob.recv_until(50, |f| f["type"] == "msg" && f["text"] == "see you both");
        assert_eq!(f["to"], json!(["bob", "carol"]), "{f}");
        page.close().await;

        // A wide page: the same `+` in the column beside the log.
        let wide = Page::join(&h, server.addr(), "dave", (1200, 800)).await;
        wide.click_css("#online li[data-nick=\"bob\"] button.nick")
            .await;
        wide.click_css("#online li[data-nick=\"carol\"] button.add")
            .await;
        assert_eq!(
            wide.js(INPUT_JS, vec![]).await,
            json!(["@bob @carol ", false, "input"])
        );
        wide.shot("wide-people-add-to-group").await;
        wide.close().await;
    });
}

/// The message input: its height, its placeholder, whether it is empty
/// and has the focus, and whether the placeholder's text is no wider
/// than the input has room for (measured in the input's font).
const INPUT_BOX_JS: &str = "const i = document.getElementById('input');
  const st = getComputedStyle(i);
  const c = document.createElement('canvas').getContext('2d');
  c.font = st.font;
  const room = i.clientWidth - parseFloat(st.paddingLeft) - parseFloat(st.paddingRight);
  return { height: i.getBoundingClientRect().height, placeholder: i.placeholder,
    empty: i.value === '', focused: document.activeElement === i,
    fits: c.measureText(i.placeholder).width <= room };";

/// On a phone, in a room with a long name, the empty input's placeholder
/// (`Message #NAME`) stays on one row, cut short with an ellipsis, also
/// while the input has the focus: it wrapped to two rows, and the input
/// grew to hold them. A wide page shows it whole.
#[test]
fn on_a_phone_a_long_room_name_keeps_the_placeholder_on_one_row() {
    let Some(h) = Harness::start("a_long_placeholder") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let room = "the-rather-long-room-for-a-phone";
        let whole = format!("Message #{room}");
        for (nick, w, ht) in [("alice", 390, 844), ("bob", 320, 640), ("carol", 1200, 800)] {
            let page = Page::join(&h, server.addr(), nick, (w, ht)).await;
            let short = page.js(INPUT_BOX_JS, vec![]).await;
            assert_eq!(short["placeholder"], json!("Message #lobby"), "{short}");
            page.type_line(&format!("/join {room}")).await;
            let long = wait_for(&format!("{nick}: in #{room}"), async || {
                let v = page.js(INPUT_BOX_JS, vec![]).await;
                let p = v["placeholder"].as_str().unwrap_or_default();
                if p.starts_with("Message #the-") && v["empty"] == true {
                    Ok(v)
                } else {
                    Err(v.to_string())
                }
            })
            .await;
            page.shot(&format!("long-placeholder-{w}")).await;
            assert_eq!(
                long["height"], short["height"],
                "the input at {w}x{ht}: {long} in #{room}, {short} in #lobby"
            );
            assert_eq!(long["focused"], json!(true), "{long}");
            assert_eq!(long["fits"], json!(true), "at {w}x{ht}: {long}");
            let shown = long["placeholder"].as_str().expect("a placeholder");
            if w > 760 {
                assert_eq!(shown, whole, "at {w}x{ht}");
            } else {
                assert!(
                    shown.ends_with('…') && whole.starts_with(shown.trim_end_matches('…')),
                    "at {w}x{ht}: {shown:?}"
                );
            }
            page.close().await;
        }
    });
}

/// Where a line of the log starts its name (`.head`), the width of its
/// first column (the time) and whether that is hidden from a screen
/// reader: the last message sent and the line waiting to be sent.
const ALIGN_JS: &str = "const sent = Array.from(document.querySelectorAll(
    '#messages .room-log[data-room=\"lobby\"] .events > li.msg')).pop();
  const wait = document.querySelector('.pending-list > li.pending');
  const at = (li) => li ? { head: li.querySelector('.head').getBoundingClientRect().left,
    time: li.firstElementChild.getBoundingClientRect().width,
    timeHidden: li.firstElementChild.getAttribute('aria-hidden') } : null;
  return { sent: at(sent), wait: at(wait) };";

/// A line waiting to be sent (before the server echoes it) has a mark in
/// the time column, so that its name and text start where those of the
/// lines sent do: it had no time, and sat to their left. At a phone's
/// width and a wide page's.
#[test]
fn a_line_waiting_to_be_sent_lines_up_with_the_lines_sent() {
    let Some(h) = Harness::start("a_waiting_line_lines_up") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        for (nick, w, ht) in [("alice", 390, 844), ("bob", 1200, 800)] {
            let page = Page::join(&h, server.addr(), nick, (w, ht)).await;
            page.type_line("this one went").await;
            page.wait_texts("lobby", &["this one went"]).await;
            page.wait_pending(0).await;
            // The server stopped (not gone): the next line waits for it.
            server.signal("STOP");
            page.type_line("this one waits").await;
            page.wait_pending(1).await;
            let v = page.js(ALIGN_JS, vec![]).await;
            page.shot(&format!("waiting-line-{w}")).await;
            server.signal("CONT");
            page.wait_pending(0).await;
            assert_eq!(v["wait"]["timeHidden"], json!("true"), "at {w}x{ht}: {v}");
            let px = |line: &str, what: &str| v[line][what].as_f64().expect("pixels");
            assert!(
                (px("sent", "time") - px("wait", "time")).abs() < 1.0,
                "at {w}x{ht}: the time columns differ: {v}"
            );
            assert!(
                (px("sent", "head") - px("wait", "head")).abs() < 1.0,
                "at {w}x{ht}: the names start apart: {v}"
            );
            page.close().await;
        }
    });
}

/// Our own nickname in the top bar: its text, and its line's box, rows
/// (one: no taller than its line height allows) and whether it is cut
/// short, with an ellipsis.
const ME_JS: &str = "const m = document.getElementById('me').closest('.whoami');
  const r = m.getBoundingClientRect();
  const lh = parseFloat(getComputedStyle(m).lineHeight);
  return { text: document.getElementById('me').textContent, width: r.width,
    in_view: r.width > 0 && r.left >= 0 && r.right <= innerWidth && r.top >= 0,
    one_row: r.height > 0 && r.height < 1.5 * lh,
    cut: m.scrollWidth > m.clientWidth + 1,
    ellipsis: getComputedStyle(m).textOverflow === 'ellipsis',
    room: document.getElementById('current-room').closest('h1').getBoundingClientRect().width };";

/// On a phone the top bar shows our own nickname, on one row, a long one
/// cut short with an ellipsis, and the bar's buttons and the room's name
/// are still seen: it showed it only inside the People drawer.
#[test]
fn on_a_phone_the_top_bar_shows_our_own_nickname() {
    let Some(h) = Harness::start("own_nick_in_the_bar") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let room = "the-rather-long-room-for-a-phone";
        let cases = [
            ("alexandra-the-very-long-nickname", 390, 844),
            ("bartholomew-the-long-nickname", 320, 640),
            ("cy", 320, 640),
        ];
        for (nick, w, ht) in cases {
            let page = Page::join(&h, server.addr(), nick, (w, ht)).await;
            page.type_line(&format!("/join {room}")).await;
            page.wait_lines("in the long-named room", room, |ls| {
                ls.iter().any(|l| l.nick.as_deref() == Some(nick))
            })
            .await;
            let me = page.js(ME_JS, vec![]).await;
            page.shot(&format!("phone-bar-own-nick-{w}-{}", nick.len()))
                .await;
            assert_eq!(me["text"], json!(nick), "{me}");
            assert_eq!(me["in_view"], json!(true), "at {w}x{ht}: {me}");
            assert_eq!(me["one_row"], json!(true), "at {w}x{ht}: {me}");
            let width = me["width"].as_f64().expect("a width");
            assert!(
                width >= 60.0_f64.min(8.0 * nick.len() as f64),
                "{nick} shown in {width}px at {w}x{ht}: {me}"
            );
            if me["cut"] == json!(true) {
                assert_eq!(me["ellipsis"], json!(true), "cut short: {me}");
            }
            let room_width = me["room"].as_f64().expect("a width");
            assert!(
                room_width >= 80.0,
                "the room's name squeezed to {room_width}px at {w}x{ht}: {me}"
            );
            for id in ["status", "rooms-toggle", "people-toggle", "leave"] {
                let seen = page.js(SEEN_WHOLE_JS, vec![json!(id)]).await;
                assert_eq!(seen["why"], json!([]), "#{id} at {w}x{ht}: {seen}");
            }
            page.close().await;
        }
    });
}

/// How many times the page shows a text containing `arguments[0]`, in
/// what is seen (a box), and where: the log or above the input.
const SHOWN_JS: &str = r#"
const out = [];
for (const e of document.querySelectorAll('.error')) {
  const t = e.querySelector('.text') ?? e;
  if (!t.textContent.includes(arguments[0])) continue;
  // Out of sight: no box, or one a pixel across (kept for a screen reader).
  const r = e.getBoundingClientRect();
  if (r.width <= 1 || r.height <= 1) continue;
  out.push(e.closest('#errors') ? 'above the input' : e.closest('#messages') ? 'log' : 'elsewhere');
}
return out;
"#;

/// A line the server refuses (here to a nickname nobody has) is said
/// once: above the input, which has the line back, and in the log once
/// the line is changed (the log keeps it). It was said in both at once,
/// one under the other on a phone.
#[test]
fn a_refused_line_is_said_once() {
    let Some(h) = Harness::start("a_refusal_said_once") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (390, 844)).await;
        page.type_line("@nobody are you there?").await;
        let shown = wait_for("the refusal", async || {
            let v = page.js(SHOWN_JS, vec![json!("nobody")]).await;
            let input = page
                .js("return document.getElementById('input').value;", vec![])
                .await;
            if v.as_array().is_some_and(|a| !a.is_empty())
                && input == json!("@nobody are you there?")
            {
                Ok(v)
            } else {
                Err(format!("{v} {input}"))
            }
        })
        .await;
        page.shot("phone-refused-once").await;
        assert_eq!(shown, json!(["above the input"]));
        // The line changed: the error goes to the log, once.
        page.press(&[Key::Escape]).await;
        let shown = page.js(SHOWN_JS, vec![json!("nobody")]).await;
        assert_eq!(shown, json!(["log"]));
        // At the bottom of the log, in view.
        wait_for("the log at its newest line", async || {
            let v = page
                .js(
                    "const m = document.getElementById('messages');
                     return m.scrollHeight - m.scrollTop - m.clientHeight;",
                    vec![],
                )
                .await;
            if v.as_f64().is_some_and(|b| b < 2.0) {
                Ok(())
            } else {
                Err(v.to_string())
            }
        })
        .await;
        page.shot("phone-refused-in-the-log").await;
        let lines = page.lines("lobby").await;
        let last = lines.last().expect("a line");
        assert!(
            last.has_class("error") && last.text.contains("nobody"),
            "{last:?}"
        );
        page.close().await;
    });
}

/// The refused line's error in the log (`li.error` with `arguments[0]`):
/// whether it is in the accessibility tree (not `hidden`, nor under
/// `aria-hidden`, nor `display: none` or `visibility: hidden`), whether
/// it is seen (a box more than a pixel across), and what was done in the
/// log since the last look: lines added, `hidden` or `aria-hidden` set
/// or taken away (what a live region says as new).
const IN_TREE_JS: &str = r#"
const log = document.getElementById('messages');
if (!window.logWatch) {
  window.logDone = [];
  window.logWatch = new MutationObserver((records) => window.logDone.push(...records));
  window.logWatch.observe(log, { childList: true, subtree: true, attributes: true,
    attributeFilter: ['hidden', 'aria-hidden'] });
}
const done = [...window.logDone, ...window.logWatch.takeRecords()];
window.logDone = [];
const li = Array.from(log.querySelectorAll('li.error')).find((e) => e.textContent.includes(arguments[0]));
if (!li) return null;
const r = li.getBoundingClientRect();
return {
  inTree: !li.closest('[hidden], [aria-hidden="true"]') && li.checkVisibility({ visibilityProperty: true }),
  seen: r.width > 1 && r.height > 1,
  changed: done.map((d) => d.type === 'childList'
    ? `added ${[...d.addedNodes].map((n) => n.nodeName).join(' ')}`
    : `${d.attributeName} on ${d.target.nodeName}`),
};
"#;

/// A refused line's error, said above the input (an alert), is out of
/// sight in the log meanwhile but not out of the accessibility tree, so
/// that its coming back into sight once the line changes adds nothing to
/// the log (a live region) for a screen reader to say a second time. It
/// was `hidden`, and unhidden it was a new line of the log.
#[test]
fn a_refused_line_coming_back_to_the_log_is_not_said_again() {
    let Some(h) = Harness::start("a_refusal_not_said_again") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (390, 844)).await;
        page.js(IN_TREE_JS, vec![json!("nobody")]).await;
        page.type_line("@nobody are you there?").await;
        let said = wait_for("the refusal above the input", async || {
            let v = page.js(SHOWN_JS, vec![json!("nobody")]).await;
            if v == json!(["above the input"]) {
                Ok(v)
            } else {
                Err(v.to_string())
            }
        })
        .await;
        let meanwhile = page.js(IN_TREE_JS, vec![json!("nobody")]).await;
        assert_eq!(
            (&meanwhile["inTree"], &meanwhile["seen"]),
            (&json!(true), &json!(false)),
            "while {said} shows: {meanwhile}"
        );
        // The line changed: the error goes, its line in the log is seen,
        // and nothing new came into the log.
        page.press(&[Key::Escape]).await;
        let back = page.js(IN_TREE_JS, vec![json!("nobody")]).await;
        assert_eq!(
            page.js(SHOWN_JS, vec![json!("nobody")]).await,
            json!(["log"])
        );
        assert_eq!(
            (&back["inTree"], &back["seen"], &back["changed"]),
            (&json!(true), &json!(true), &json!([])),
            "{back}"
        );
        page.close().await;
    });
}

/// A refused line's error is heard once, from above the input (an
/// alert), not from the log as well: its line in the log is in a live
/// region that says nothing (`aria-live="off"`), at the refusal and once
/// it is back in sight, while the log (polite) still says a new line.
/// Read from the page and from Chromium's accessibility tree: the line is
/// in the tree (a screen reader reads it in the log), the log and the
/// alert are live regions. The line was in the log's region, so at the
/// refusal a screen reader heard the alert and then the log say it.
#[test]
fn a_refused_line_is_heard_once() {
    let Some(h) = Harness::start("a_refusal_heard_once") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (390, 844)).await;
        let mut bob = server.join("bob");
        page.wait_nicks("lobby", &["bob"]).await;
        page.type_line("@nobody are you there?").await;
        wait_for("the refusal above the input", async || {
            let v = page.js(SHOWN_JS, vec![json!("nobody")]).await;
            if v == json!(["above the input"]) {
                Ok(())
            } else {
                Err(v.to_string())
            }
        })
        .await;
        let line = "#messages li.error[data-code=\"unknown_nick\"]";
        let alert = page.ax("#errors").await;
        assert_eq!(
            (&alert["role"], &alert["props"]["live"]),
            (&json!("alert"), &json!("assertive")),
            "{alert}"
        );
        assert_eq!(page.live("#errors .error").await, json!("assertive"));
        assert_eq!(page.ax("#messages").await["props"]["live"], json!("polite"));
        let in_tree = page.ax(line).await;
        assert_eq!(
            (&in_tree["role"], &in_tree["ignored"]),
            (&json!("listitem"), &json!(false)),
            "{in_tree}"
        );
        assert_eq!(
            page.live(line).await,
            json!("off"),
            "the log says the refused line too"
        );
        // The line changed: back in sight, still not said.
        page.press(&[Key::Escape]).await;
        assert_eq!(
            page.js(SHOWN_JS, vec![json!("nobody")]).await,
            json!(["log"])
        );
        assert_eq!(page.live(line).await, json!("off"));
        // A new line of the log is said, as before.
        bob.say("still here");
        page.wait_texts("lobby", &["still here"]).await;
        assert_eq!(
            page.live("#messages li.msg[data-from=\"bob\"]").await,
            json!("polite")
        );
        page.close().await;
    });
}
