//! The keyboard, the drawers and the top bar on a phone-sized page.

use fantoccini::key::Key;
use serde_json::json;

use crate::common::Server;
use crate::say_in;
use crate::webdriver::{wait_for, Harness, Page};

// ---------------------------------------------------------------------
// b2. The keyboard on a phone-sized page.
// ---------------------------------------------------------------------

#[test]
fn on_a_narrow_page_the_keyboard_skips_closed_drawers_and_the_log_is_one_stop() {
    let Some(h) = Harness::start("keyboard_on_a_narrow_page") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(keyboard_narrow(&h, &server));
}

async fn keyboard_narrow(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (400, 700)).await;
    let mut bob = server.join("bob");
    for text in ["one from bob", "two from bob", "three from bob"] {
        say_in(&mut bob, "lobby", &[], text);
    }
    say_in(&mut bob, "lobby", &["alice"], "a private one");
    page.wait_texts("lobby", &["a private one"]).await;
    // Tab from the message box: Send, then out of the page; never into
    // a closed drawer (its "leave #lobby" is off-screen).
    page.click("input").await;
    assert_eq!(page.focused().await, "#input");
    page.press(&[Key::Tab]).await;
    assert_eq!(page.focused().await, "#send");
    page.press(&[Key::Tab]).await;
    let after_send = page.focused().await;
    assert!(
        !after_send.starts_with("sidebar") && !after_send.starts_with("people"),
        "Tab from Send lands in a closed drawer: {after_send}"
    );
    // Back from the message box: the log once (not each nickname in it),
    // then the top bar; the closed Rooms drawer is skipped.
    page.click("input").await;
    let mut back = Vec::new();
    for _ in 0..4 {
        page.press(&[Key::Shift, Key::Tab]).await;
        back.push(page.focused().await);
    }
    assert_eq!(
        back,
        ["#messages", "#leave", "#people-toggle", "#rooms-toggle"],
        "Shift+Tab from the message box"
    );
    let stops = page
        .js(
            "return Array.from(document.querySelectorAll('#messages button.nick'),
               (b) => b.tabIndex).filter((t) => t >= 0).length;",
            vec![],
        )
        .await;
    assert_eq!(stops, json!(0), "nicknames in the log are Tab stops");

    // Enter on the Rooms button: the drawer opens and has the focus.
    assert_eq!(page.focused().await, "#rooms-toggle");
    page.press(&[Key::Enter]).await;
    let drawer = |id: &'static str| {
        let page = &page;
        async move {
            page.js(
                "const d = document.getElementById(arguments[0]);
                 return { open: d.classList.contains('open'), inert: d.inert };",
                vec![json!(id)],
            )
            .await
        }
    };
    assert_eq!(
        drawer("sidebar").await,
        json!({"open": true, "inert": false})
    );
    assert_eq!(page.focused().await, "sidebar button.room");
    page.press(&[Key::Tab]).await;
    assert_eq!(page.focused().await, "sidebar button.part");
    page.shot("narrow-rooms-drawer-open").await;
    // Esc closes it, and the focus is back on the button that opened it.
    page.press(&[Key::Escape]).await;
    assert_eq!(
        drawer("sidebar").await,
        json!({"open": false, "inert": true})
    );
    assert_eq!(page.focused().await, "#rooms-toggle");

    // The People drawer alike: its first nickname has the focus.
    page.c
        .find(fantoccini::Locator::Id("people-toggle"))
        .await
        .expect("#people-toggle")
        .click()
        .await
        .expect("click #people-toggle");
    assert_eq!(
        drawer("people").await,
        json!({"open": true, "inert": false})
    );
    let f = page.focused().await;
    assert!(f.starts_with("people button.nick"), "{f}");
    page.press(&[Key::Escape]).await;
    assert_eq!(
        drawer("people").await,
        json!({"open": false, "inert": true})
    );
    assert_eq!(page.focused().await, "#people-toggle");
    page.shot("narrow-drawers-closed").await;
    page.close().await;
}

#[test]
fn on_a_narrow_page_a_room_name_refused_is_said_in_the_open_drawer() {
    let Some(h) = Harness::start("room_name_refused_on_a_narrow_page") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(room_refused_narrow(&h, &server));
}

async fn room_refused_narrow(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (400, 700)).await;
    page.click("rooms-toggle").await;
    page.type_into("room-input", "bad!").await;
    // Why the name was refused shows where it was typed: it was said
    // above the message box only, which the open drawer covers. (Waited
    // for: the drawer slides in, 0.15 s, slower on a loaded machine.)
    wait_for("the refusal seen once in the open drawer", async || {
        let seen = page
            .js(
                "return Array.from(document.querySelectorAll('[data-code=\"room_invalid\"]'))
                   .filter((e) => {
                     const r = e.getBoundingClientRect();
                     if (r.width === 0 || r.height === 0) return false;
                     const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
                     return !!at && e.contains(at);
                   }).map((e) => e.textContent);",
                vec![],
            )
            .await;
        if seen.as_array().is_some_and(|a| a.len() == 1) {
            Ok(())
        } else {
            Err(seen.to_string())
        }
    })
    .await;
    page.shot("narrow-room-refused").await;
    // Typing again takes it away.
    page.press(&[Key::Backspace]).await;
    let left = page
        .js(
            "return !document.getElementById('room-error').hidden;",
            vec![],
        )
        .await;
    assert_eq!(
        left,
        json!(false),
        "the refusal stayed once the name was edited"
    );
    page.close().await;
}

// ---------------------------------------------------------------------
// b3. The top bar on a phone.
// ---------------------------------------------------------------------

/// Whether the element `#id` is seen whole: a box inside the viewport,
/// not cut by an ancestor that clips what overflows it, not covered at
/// its ends, and its text not cut short. What it saw otherwise.
pub(crate) const SEEN_WHOLE_JS: &str = r#"
const e = document.getElementById(arguments[0]);
const r = e.getBoundingClientRect();
const why = [];
if (r.width === 0 || r.height === 0) why.push('no box');
if (r.left < 0 || r.top < 0 || r.right > innerWidth || r.bottom > innerHeight) {
  why.push(`outside the ${innerWidth}x${innerHeight} viewport`);
}
for (let a = e.parentElement; a && a !== document.documentElement; a = a.parentElement) {
  const st = getComputedStyle(a);
  if (st.overflowX === 'visible' && st.overflowY === 'visible') continue;
  const b = a.getBoundingClientRect();
  if (r.left < b.left - 0.5 || r.right > b.right + 0.5 || r.top < b.top - 0.5 || r.bottom > b.bottom + 0.5) {
    why.push(`clipped by ${a.id ? '#' + a.id : a.tagName.toLowerCase() + '.' + a.className}`);
  }
}
if (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible') why.push('its text cut short');
const y = r.top + r.height / 2;
for (const x of [r.left + 1, r.right - 1]) {
  const at = document.elementFromPoint(x, y);
  if (!at || !e.contains(at)) why.push(`at x=${Math.round(x)}: ${at ? at.id || at.tagName : 'nothing'}`);
}
return {
  why,
  box: [Math.round(r.left), Math.round(r.top), Math.round(r.right), Math.round(r.bottom)],
  text: e.textContent,
};
"#;

/// On a phone, the connection's state in the top bar is seen whole when
/// the connection drops ("reconnecting…", with Retry now), in a row of
/// its own, as is every button of the bar; the room's name gives way,
/// shortened with an ellipsis, but still shows. (It was squeezed to its
/// `#`, and on a 320-pixel phone Leave went off the edge.) A wide page
/// keeps its one row.
#[test]
fn on_a_phone_the_top_bar_shows_the_connection_state_whole() {
    let Some(h) = Harness::start("top_bar_on_a_phone") else {
        return;
    };
    let mut server = Server::start(&[]);
    h.block_on(async {
        let room = "the-rather-long-room-for-a-phone";
        let sizes = [("alice", 390, 844), ("bob", 320, 640), ("carol", 1200, 800)];
        let mut pages = Vec::new();
        for (nick, w, ht) in sizes {
            let page = Page::join(&h, server.addr(), nick, (w, ht)).await;
            page.type_line(&format!("/join {room}")).await;
            page.wait_lines("in the long-named room", room, |ls| {
                ls.iter().any(|l| l.nick.as_deref() == Some(nick))
            })
            .await;
            page.shot(&format!("top-bar-connected-{w}")).await;
            pages.push(page);
        }
        server.sigterm();
        assert!(server.wait_exit(crate::common::WAIT).success());
        for (page, (_, w, ht)) in pages.iter().zip(sizes) {
            page.wait_state("reconnecting").await;
            for id in ["status", "retry", "rooms-toggle", "people-toggle", "leave"] {
                if w > 760 && id.ends_with("-toggle") {
                    continue; // no drawers on a wide page
                }
                let seen = page.js(SEEN_WHOLE_JS, vec![json!(id)]).await;
                assert_eq!(seen["why"], json!([]), "#{id} at {w}x{ht}: {seen}");
            }
            let title = page
                .js(
                    "const t = document.getElementById('current-room');
                     return [t.textContent, t.closest('h1').getBoundingClientRect().width];",
                    vec![],
                )
                .await;
            assert_eq!(title[0], json!(format!("#{room}")));
            let width = title[1].as_f64().expect("a width");
            assert!(
                width >= 80.0,
                "the room's name squeezed to {width}px at {w}x{ht}"
            );
            page.shot(&format!("top-bar-reconnecting-{w}")).await;
        }
        for page in pages {
            page.close().await;
        }
    });
}

// ---------------------------------------------------------------------
// b4. The scrim behind a drawer.
// ---------------------------------------------------------------------

/// What is at the middle of the viewport's `side` edge (10 pixels in),
/// and whether each drawer is open.
const BEHIND_JS: &str = r#"
const x = arguments[0] === 'left' ? 10 : innerWidth - 10;
const at = document.elementFromPoint(x, innerHeight / 2);
const bg = at ? getComputedStyle(at).backgroundColor : '';
return {
  at: at ? (at.id || at.tagName.toLowerCase()) : null,
  dims: bg !== 'rgba(0, 0, 0, 0)' && bg !== 'transparent' && bg !== '',
  x,
  y: innerHeight / 2,
  sidebar: document.getElementById('sidebar').classList.contains('open'),
  people: document.getElementById('people').classList.contains('open'),
};
"#;

/// On a phone, an open drawer dims the page behind it with a scrim, and
/// a tap on the scrim closes the drawer (pressing nothing under it); nor
/// does Tab reach the page behind (it went on to the message box), until
/// the drawer closes.
#[test]
fn on_a_phone_an_open_drawer_dims_the_page_and_a_tap_beside_it_closes_it() {
    let Some(h) = Harness::start("a_drawer_dims_the_page") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (390, 844)).await;
        let _bob = server.join("bob");
        page.wait_lines("bob joined", "lobby", |ls| {
            ls.iter().any(|l| l.nick.as_deref() == Some("bob"))
        })
        .await;
        let behind = |side: &'static str| {
            let page = &page;
            async move { page.js(BEHIND_JS, vec![json!(side)]).await }
        };
        // Closed: the page itself, not dimmed.
        let closed = behind("right").await;
        assert_eq!(closed["at"], json!("messages"), "{closed}");

        // The Rooms drawer (from the left): the scrim on the right.
        page.click("rooms-toggle").await;
        let open = behind("right").await;
        assert_eq!(
            (&open["at"], &open["dims"], &open["sidebar"]),
            (&json!("scrim"), &json!(true), &json!(true)),
            "the page beside the open Rooms drawer: {open}"
        );
        slid_in(&page, "sidebar").await;
        stays_in(&page, "sidebar").await;
        page.shot("phone-rooms-drawer-scrim").await;
        page.click_at(open["x"].as_f64().unwrap(), open["y"].as_f64().unwrap())
            .await;
        gone(&page, "right", "sidebar").await;

        // The People drawer (from the right): the scrim on the left.
        page.click("people-toggle").await;
        let open = behind("left").await;
        assert_eq!(
            (&open["at"], &open["dims"], &open["people"]),
            (&json!("scrim"), &json!(true), &json!(true)),
            "the page beside the open People drawer: {open}"
        );
        slid_in(&page, "people").await;
        stays_in(&page, "people").await;
        page.shot("phone-people-drawer-scrim").await;
        // The tap lands on the scrim over bob's name in the log, beside
        // the drawer: it closes the drawer and does not address bob.
        let bob = page
            .js(
                "const r = document.querySelector(
                   '#messages li.presence[data-nick=\"bob\"] button.nick').getBoundingClientRect();
                 const d = document.getElementById('people').getBoundingClientRect();
                 return [r.left + r.width / 2, r.top + r.height / 2, d.left];",
                vec![],
            )
            .await;
        let (x, y) = (bob[0].as_f64().unwrap(), bob[1].as_f64().unwrap());
        assert!(
            x < bob[2].as_f64().unwrap(),
            "bob's name under the drawer: {bob}"
        );
        page.click_at(x, y).await;
        gone(&page, "left", "people").await;
        // Nothing under the scrim was pressed: no nickname put in the input.
        let input = page
            .js("return document.getElementById('input').value;", vec![])
            .await;
        assert_eq!(input, json!(""));
        // The drawer closed, the page is in reach again.
        page.click("input").await;
        assert_eq!(page.focused().await, "#input");
        // A nickname pressed in the drawer addresses it in the message
        // box, which has the focus once the drawer has closed.
        page.click("people-toggle").await;
        slid_in(&page, "people").await;
        page.click_css("#online li[data-nick=\"bob\"] button.nick")
            .await;
        let after = page
            .js(
                "return [document.getElementById('input').value,
                   document.getElementById('people').classList.contains('open')];",
                vec![],
            )
            .await;
        assert_eq!(after, json!(["@bob ", false]));
        assert_eq!(page.focused().await, "#input");
        page.close().await;

        // A wide page has columns, no drawers: no scrim.
        let wide = Page::join(&h, server.addr(), "carol", (1200, 800)).await;
        let shown = wide
            .js(
                "return getComputedStyle(document.getElementById('scrim')).display;",
                vec![],
            )
            .await;
        assert_eq!(shown, json!("none"));
        wide.shot("wide-no-scrim").await;
        wide.close().await;
    });
}

/// The page behind open drawer `id` is out of the keyboard's reach as
/// the scrim puts it out of a finger's: Tab goes round the drawer (and
/// out of the page, to the browser), never to the message box or the
/// top bar behind the scrim.
async fn stays_in(page: &Page, id: &str) {
    let mut stops = Vec::new();
    for _ in 0..10 {
        page.press(&[Key::Tab]).await;
        stops.push(page.focused().await);
    }
    assert!(
        stops
            .iter()
            .all(|s| s.starts_with(&format!("{id} ")) || s == "body"),
        "Tab from the open #{id}: {stops:?}"
    );
}

/// Wait until drawer `id` has slid in whole and the scrim behind it has
/// faded in (for a screenshot of what stays on the screen).
pub(crate) async fn slid_in(page: &Page, id: &str) {
    page.wait_js(
        &format!("#{id} slid in"),
        "const r = document.getElementById(arguments[0]).getBoundingClientRect();
         return r.left >= 0 && r.right <= innerWidth
           && getComputedStyle(document.getElementById('scrim')).opacity === '1';",
        vec![json!(id)],
        json!(true),
    )
    .await;
}

/// Wait until drawer `id` is closed and the page at the `side` edge is the
/// log again, the scrim gone once it has faded out.
async fn gone(page: &Page, side: &str, id: &str) {
    wait_for(&format!("a tap on the scrim closes #{id}"), async || {
        let v = page.js(BEHIND_JS, vec![json!(side)]).await;
        if v[id] == json!(false) && v["at"] == json!("messages") {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;
}

/// On a phone, an open drawer can be closed from inside it: the page
/// behind is out of reach (inert), ☰ and People with it, and without Esc
/// (a phone's screen reader has none) only choosing something in the
/// drawer closed it. Its Close button is seen whole, Tab reaches it, and
/// Enter on it closes the drawer and gives the focus back to the button
/// that opened it.
#[test]
fn on_a_phone_an_open_drawer_is_closed_by_its_close_button() {
    let Some(h) = Harness::start("a_drawer_closed_from_inside") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (390, 844)).await;
        for (drawer, toggle, close) in [
            ("sidebar", "rooms-toggle", "rooms-close"),
            ("people", "people-toggle", "people-close"),
        ] {
            page.click(toggle).await;
            slid_in(&page, drawer).await;
            let seen = page.js(SEEN_WHOLE_JS, vec![json!(close)]).await;
            assert_eq!(seen["why"], json!([]), "#{close}: {seen}");
            let mut stops = Vec::new();
            while stops.len() < 10 && stops.last() != Some(&format!("{drawer} #{close}")) {
                page.press(&[Key::Tab]).await;
                stops.push(page.focused().await);
            }
            assert_eq!(
                stops.last(),
                Some(&format!("{drawer} #{close}")),
                "Tab in the open #{drawer}: {stops:?}"
            );
            page.shot(&format!("phone-{drawer}-close")).await;
            page.press(&[Key::Enter]).await;
            let open = page
                .js(
                    "return document.getElementById(arguments[0]).classList.contains('open');",
                    vec![json!(drawer)],
                )
                .await;
            assert_eq!(open, json!(false), "#{drawer} after Enter on #{close}");
            assert_eq!(page.focused().await, format!("#{toggle}"));
        }
        // A wide page has no drawers to close.
        let wide = Page::join(&h, server.addr(), "carol", (1200, 800)).await;
        let shown = wide
            .js(
                "return ['rooms-close', 'people-close'].map((id) =>
                   getComputedStyle(document.getElementById(id)).display);",
                vec![],
            )
            .await;
        assert_eq!(shown, json!(["none", "none"]));
        page.close().await;
        wide.close().await;
    });
}

/// The live regions (the page's own, and any element in one) whose text
/// is `arguments[0]` (`arguments[1]`: or holds it), outside anything inert
/// or hidden, so in the accessibility tree: where a screen reader hears it.
const HEARD_JS: &str = r#"
const live = '[aria-live]:not([aria-live="off"]), [role="status"], [role="alert"], [role="log"]';
const heard = Array.from(document.querySelectorAll(`${live}, :is(${live}) *`))
  .filter((e) => arguments[1] ? e.textContent.includes(arguments[0]) : e.textContent.trim() === arguments[0])
  .filter((e) => e.closest('[inert], [hidden], [aria-hidden="true"]') === null)
  .map((e) => e.closest(live).id);
return [...new Set(heard)];
"#;

/// Where the page says `text` (`part`: or a text that holds it) so that a
/// screen reader hears it: the ids of the live regions, per [`HEARD_JS`].
async fn heard(page: &Page, text: &str, part: bool) -> serde_json::Value {
    page.js(HEARD_JS, vec![json!(text), json!(part)]).await
}

/// Each `(text, part, region)`: `text` is heard in that live region
/// alone (see [`heard`]).
async fn heard_in(page: &Page, each: &[(&str, bool, &str)]) {
    for &(text, part, region) in each {
        assert_eq!(heard(page, text, part).await, json!([region]), "{text}");
    }
}

/// On a phone, what the page behind an open drawer says is still heard:
/// that page is inert, out of the accessibility tree with its live
/// regions, and a line said in the room, the notice that the
/// conversation continued elsewhere or the connection's state
/// ("reconnecting…") went unsaid while the drawer was open. Once it
/// closes, the page says it again itself, and only there.
#[test]
fn on_a_phone_what_the_page_says_behind_an_open_drawer_is_heard() {
    let Some(h) = Harness::start("heard_behind_a_drawer") else {
        return;
    };
    let mut server = Server::start(&[]);
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (390, 844)).await;
        let carol = Page::join(&h, server.addr(), "carol", (390, 844)).await;
        let mut bob = server.join("bob");
        page.wait_lines("bob joined", "lobby", |ls| {
            ls.iter().any(|l| l.nick.as_deref() == Some("bob"))
        })
        .await;

        // A line in the room, behind the People drawer.
        page.click("people-toggle").await;
        slid_in(&page, "people").await;
        let line = "said while the drawer is open";
        say_in(&mut bob, "lobby", &[], line);
        page.wait_texts("lobby", &[line]).await;
        assert_eq!(heard(&page, line, true).await, json!(["behind"]), "{line}");

        // The notice (an alert) that the conversation continued elsewhere,
        // behind the Rooms drawer: a raw client resumes carol's session.
        carol.click("rooms-toggle").await;
        slid_in(&carol, "sidebar").await;
        let token = carol
            .js(
                "return JSON.parse(sessionStorage.getItem('chat.resume')).token;",
                vec![],
            )
            .await;
        let mut other = server.connect();
        other.send_frame(&json!({"type": "join", "nick": "carol", "rooms": [], "resume": token}));
        other.expect_kind("welcome");
        carol.wait_state("elsewhere").await;
        let notice = "This conversation continued in another tab or window";
        let state = "continued elsewhere";
        heard_in(
            &carol,
            &[(notice, true, "behind-alert"), (state, false, "behind")],
        )
        .await;
        carol.press(&[Key::Escape]).await;
        heard_in(
            &carol,
            &[(notice, true, "elsewhere"), (state, false, "status")],
        )
        .await;
        carol.close().await;

        // The connection's state, behind the People drawer still.
        server.sigterm();
        assert!(server.wait_exit(crate::common::WAIT).success());
        page.wait_state("reconnecting").await;
        assert_eq!(
            heard(&page, "reconnecting…", false).await,
            json!(["behind"]),
            "the connection's state"
        );
        page.shot("phone-reconnecting-behind-a-drawer").await;
        // Closed, the page says it itself.
        page.press(&[Key::Escape]).await;
        heard_in(
            &page,
            &[(line, true, "messages"), ("reconnecting…", false, "status")],
        )
        .await;
        page.close().await;
    });
}

/// Our own row in the People drawer: its nickname's text and the width it
/// is shown in, its `(you)` and whether that is seen whole, beside the
/// name and inside the row (which cuts what overflows it) and the drawer.
const OWN_ROW_JS: &str = r#"
const li = document.querySelector('#online li.me');
if (!li) return null;
const nick = li.querySelector('.nick'), you = li.querySelector('.you');
const l = li.getBoundingClientRect(), d = document.getElementById('people').getBoundingClientRect();
const n = nick.getBoundingClientRect(), y = you.getBoundingClientRect();
return {
  name: nick.textContent,
  name_width: Math.round(n.width),
  you: you.textContent.trim(),
  you_whole: y.width > 0 && y.left >= n.right - 0.5
    && y.right <= Math.min(l.right, d.right) + 0.5 && you.scrollWidth <= you.clientWidth + 1,
  row: [Math.round(l.left), Math.round(l.right)],
  you_box: [Math.round(y.left), Math.round(y.right)],
};
"#;

/// On a phone, our own row in the People drawer shows our nickname (cut
/// short with an ellipsis when it is too long for the drawer) and then
/// `(you)`, both seen: with a long nickname the name took the whole row
/// and `(you)` was cut off after it, or wholly out of sight, so nothing
/// said which of the names was ours.
#[test]
fn on_a_phone_our_own_row_in_the_people_drawer_shows_the_name_and_you() {
    let Some(h) = Harness::start("own_row_on_a_phone") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let nicks = [
            ("alexandra-the-very-long-nickname", 390, 844),
            ("bartholomew-the-long-nickname", 320, 640),
            ("cy", 390, 844),
        ];
        for (nick, w, ht) in nicks {
            let page = Page::join(&h, server.addr(), nick, (w, ht)).await;
            page.click("people-toggle").await;
            slid_in(&page, "people").await;
            let row = page.js(OWN_ROW_JS, vec![]).await;
            page.shot(&format!("phone-own-row-{w}-{}", nick.len()))
                .await;
            assert_eq!(row["name"], json!(nick), "{row}");
            assert_eq!(row["you"], json!("(you)"), "{row}");
            assert_eq!(row["you_whole"], json!(true), "(you) at {w}x{ht}: {row}");
            let shown = row["name_width"].as_u64().expect("a width");
            assert!(
                shown >= 100.min(8 * nick.len() as u64),
                "{nick} shown in {shown}px at {w}x{ht}: {row}"
            );
            page.close().await;
        }
    });
}

// ---------------------------------------------------------------------
// b5. Leaving any room from the list.
// ---------------------------------------------------------------------

/// For each room in the list, whether its leave button (×) is seen, and
/// where its middle is.
const LEAVE_BUTTONS_JS: &str = r#"
return Array.from(document.querySelectorAll('#rooms > li'), (li) => {
  const b = li.querySelector('button.part');
  const r = b.getBoundingClientRect();
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  const at = document.elementFromPoint(x, y);
  return {
    room: li.dataset.room,
    current: li.classList.contains('current'),
    seen: getComputedStyle(b).visibility === 'visible' && r.width > 0 && at === b,
    label: b.getAttribute('aria-label'),
    x,
    y,
  };
});
"#;

/// Every room in the list can be left from it, not only the current one
/// (its × showed on hover, which a phone does not have): on a phone, in
/// the Rooms drawer, a tap on another room's × leaves that room and
/// keeps the current one, the drawer open and the focus on the next room
/// (it dropped to the page's body, and the drawer closed); a tap on the
/// current room's × shows the next room, which has the focus, the drawer
/// still open (it closed, the focus on ☰, and the first room was shown),
/// and Enter a room has it once none is left; with the keyboard, each ×
/// is reached by Tab, and Enter on one leaves its room for the next one,
/// or Enter a room once none is left. On a wide page every × shows too.
#[test]
fn every_room_in_the_list_can_be_left_from_it() {
    let Some(h) = Harness::start("every_room_can_be_left") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let mut bob = server.join("bob");
        bob.enter("rust");
        let wide = Page::join(&h, server.addr(), "carol", (1200, 800)).await;
        let page = Page::join(&h, server.addr(), "alice", (390, 844)).await;
        for p in [&wide, &page] {
            for room in ["rust", "go"] {
                p.type_line(&format!("/join {room}")).await;
                p.wait_lines(&format!("in #{room}"), room, |ls| {
                    ls.iter().any(|l| l.nick.as_deref() == Some(p.nick.as_str()))
                })
                .await;
            }
            p.type_line("/join lobby").await;
        }
        let all_seen = |v: &serde_json::Value| {
            v.as_array()
                .is_some_and(|a| a.len() == 3 && a.iter().all(|b| b["seen"] == json!(true)))
        };
        let on_wide = wide.js(LEAVE_BUTTONS_JS, vec![]).await;
        assert!(all_seen(&on_wide), "a room's × not seen on a wide page: {on_wide}");
        wide.shot("wide-every-room-leavable").await;

        page.click("rooms-toggle").await;
        slid_in(&page, "sidebar").await;
        let on_phone = page.js(LEAVE_BUTTONS_JS, vec![]).await;
        assert!(all_seen(&on_phone), "a room's × not seen in the drawer: {on_phone}");
        page.shot("phone-every-room-leavable").await;
        // With the keyboard: room, its ×, the next room, its ×...
        let mut stops = Vec::new();
        for _ in 0..6 {
            stops.push(page.focused().await);
            page.press(&[Key::Tab]).await;
        }
        assert_eq!(
            stops,
            [
                "sidebar button.room",
                "sidebar button.part",
                "sidebar button.room",
                "sidebar button.part",
                "sidebar button.room",
                "sidebar button.part"
            ],
            "Tab through the room list"
        );

        // A tap on #rust's × (not the current room) leaves #rust only.
        let rust = on_phone
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["room"] == json!("rust"))
            .expect("#rust in the list")
            .clone();
        assert_eq!(
            (&rust["current"], &rust["label"]),
            (&json!(false), &json!("leave #rust"))
        );
        page.click_at(rust["x"].as_f64().unwrap(), rust["y"].as_f64().unwrap())
            .await;
        bob.recv_until(100, |f| {
            crate::common::is_presence(f, "alice", "offline") && f["room"] == "rust"
        });
        wait_for("alice: #rust gone from the list", async || {
            let v = page
                .js(
                    "return [[...document.querySelectorAll('#rooms > li')].map((li) => li.dataset.room),
                       document.getElementById('current-room').textContent];",
                    vec![],
                )
                .await;
            if v == json!([["lobby", "go"], "#lobby"]) {
                Ok(())
            } else {
                Err(v.to_string())
            }
        })
        .await;
        // The focus goes to the next room, not with the × to the page's
        // body, and the drawer stays open: the tap was inside it, though
        // its × was gone from the page when the page's click handler
        // looked.
        let after = page.js(FOCUS_JS, vec![]).await;
        assert_eq!(
            after,
            json!({"focus": "sidebar button.room", "room": "go", "drawer": true, "current": "lobby"}),
            "after a tap on #rust's ×"
        );
        page.shot("phone-left-a-room-from-the-list").await;

        // The current room's × alike: the drawer stays open (choosing the
        // room to show instead closed it and sent the focus to ☰), and the
        // room shown instead is the next one, which has the focus (it was
        // the first of the list, wherever the focus went). #go is made
        // the current room, between #lobby (the first) and #rust.
        page.type_into("room-input", "rust").await;
        page.wait_lines("in #rust again", "rust", |ls| {
            ls.iter().any(|l| l.nick.as_deref() == Some("alice"))
        })
        .await;
        page.click("rooms-toggle").await;
        slid_in(&page, "sidebar").await;
        page.click_css("#rooms > li[data-room=\"go\"] button.room")
            .await;
        page.click("rooms-toggle").await;
        slid_in(&page, "sidebar").await;
        for (room, left, focus, next) in [
            ("go", json!(["lobby", "rust"]), "sidebar button.room", json!("rust")),
            ("rust", json!(["lobby"]), "sidebar button.room", json!("lobby")),
            ("lobby", json!([]), "sidebar #room-input", json!(null)),
        ] {
            let buttons = page.js(LEAVE_BUTTONS_JS, vec![]).await;
            let b = buttons
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["room"] == json!(room))
                .unwrap_or_else(|| panic!("#{room} in the list: {buttons}"))
                .clone();
            assert_eq!(
                (&b["current"], &b["seen"]),
                (&json!(true), &json!(true)),
                "{b}"
            );
            page.click_at(b["x"].as_f64().unwrap(), b["y"].as_f64().unwrap())
                .await;
            wait_for(&format!("alice: #{room} gone from the list"), async || {
                let v = page
                    .js(
                        "return [...document.querySelectorAll('#rooms > li')]
                           .map((li) => li.dataset.room);",
                        vec![],
                    )
                    .await;
                if v == left {
                    Ok(())
                } else {
                    Err(v.to_string())
                }
            })
            .await;
            let after = page.js(FOCUS_JS, vec![]).await;
            assert_eq!(
                after,
                json!({"focus": focus, "room": next, "drawer": true, "current": next}),
                "after a tap on the current #{room}'s ×"
            );
        }
        page.shot("phone-left-every-room-from-the-list").await;

        // With the keyboard, on the wide page: Enter on a room's × leaves
        // it and the focus goes to the next room, or the one before at
        // the end of the list, and to Enter a room once none is left.
        for (room, focus, on, current) in [
            ("rust", "sidebar button.room", json!("go"), json!("lobby")),
            ("go", "sidebar button.room", json!("lobby"), json!("lobby")),
            ("lobby", "sidebar #room-input", json!(null), json!(null)),
        ] {
            wide.js(
                "document.querySelector(`#rooms > li[data-room=\"${arguments[0]}\"] button.part`).focus();
                 return null;",
                vec![json!(room)],
            )
            .await;
            assert_eq!(wide.focused().await, "sidebar button.part");
            wide.press(&[Key::Enter]).await;
            let after = wide.js(FOCUS_JS, vec![]).await;
            assert_eq!(
                (&after["focus"], &after["room"], &after["current"]),
                (&json!(focus), &on, &current),
                "after Enter on #{room}'s ×: {after}"
            );
        }
        page.close().await;
        wide.close().await;
    });
}

/// What has the focus (as [`Page::focused`] says it), the room of the
/// list item it is in, whether the Rooms drawer is open, and the current
/// room (the one shown, as the list and the top bar say it).
const FOCUS_JS: &str = r#"
const a = document.activeElement;
const d = a && a.closest('.drawer');
const what = !a || a === document.body ? 'body' : a.id ? `#${a.id}` : `${a.tagName.toLowerCase()}.${a.className}`;
const cur = document.querySelector('#rooms > li.current');
const shown = document.getElementById('current-room').textContent;
return {
  focus: d ? `${d.id} ${what}` : what,
  room: a && a.closest('#rooms > li') ? a.closest('li').dataset.room : null,
  drawer: document.getElementById('sidebar').classList.contains('open'),
  current: cur && shown === `#${cur.dataset.room}` ? cur.dataset.room : shown || null,
};
"#;

/// Escape empties the message input as an edit of the person's: Ctrl+Z
/// brings a draft cleared by a stray Escape back. (It was gone for good.)
#[test]
fn escape_clears_the_input_and_ctrl_z_brings_the_draft_back() {
    let Some(h) = Harness::start("escape_clears_the_input") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (1000, 700)).await;
        assert_eq!(page.focused().await, "#input");
        let draft = "a long draft, half written";
        page.c
            .active_element()
            .await
            .expect("the input")
            .send_keys(draft)
            .await
            .expect("type the draft");
        let value = || page.js("return document.getElementById('input').value;", vec![]);
        assert_eq!(value().await, json!(draft));
        page.press(&[Key::Escape]).await;
        assert_eq!(value().await, json!(""), "Escape clears");
        page.c
            .active_element()
            .await
            .expect("the input")
            .send_keys(&format!("{}z", char::from(Key::Control)))
            .await
            .expect("press Ctrl+Z");
        assert_eq!(value().await, json!(draft), "Ctrl+Z brings it back");
        page.close().await;
    });
}

// ---------------------------------------------------------------------
// @ and Tab complete a nickname however its case is folded.
// ---------------------------------------------------------------------

#[test]
fn tab_completes_a_nick_from_a_folded_spelling() {
    let Some(h) = Harness::start("tab_completes_a_folded_spelling") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (1200, 800)).await;
        let _strasse = server.join("Straße");
        let _jose = server.join("José");
        wait_for("Straße and José in the list", async || {
            let v = page
                .js(
                    "return document.querySelectorAll('#online li[data-nick]').length;",
                    vec![],
                )
                .await;
            if v == json!(3) {
                Ok(())
            } else {
                Err(v.to_string())
            }
        })
        .await;
        let mut got = Vec::new();
        // ß is ss, and an e typed before its accent starts é.
        for typed in ["@STRASS", "@strasse", "@Jose", "@JOSE\u{301}"] {
            page.js(
                "const i = document.getElementById('input');
                 i.focus();
                 i.value = arguments[0];
                 i.setSelectionRange(i.value.length, i.value.length);",
                vec![json!(typed)],
            )
            .await;
            page.press(&[Key::Tab]).await;
            let v = page
                .js("return document.getElementById('input').value;", vec![])
                .await;
            got.push((typed, v));
        }
        assert_eq!(
            got,
            vec![
                ("@STRASS", json!("@Straße ")),
                ("@strasse", json!("@Straße ")),
                ("@Jose", json!("@José ")),
                ("@JOSE\u{301}", json!("@José ")),
            ]
        );
        page.close().await;
    });
}

/// The "↓ New messages" button hides once pressed: pressed with Enter
/// (reached by Shift+Tab from the message box), the focus goes back to
/// the message box, to type on; clicked, to the log. Before, it dropped
/// to the page's body, and Tab started over from the top of the page.
#[test]
fn the_new_messages_button_hands_the_focus_on_when_it_hides() {
    let Some(h) = Harness::start("the_new_messages_button_hands_the_focus_on") else {
        return;
    };
    let server = Server::start(&["--rate", "0"]);
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (800, 500)).await;
        let mut bob = server.join("bob");
        for i in 1..=40 {
            say_in(&mut bob, "lobby", &[], &format!("line {i:02} from bob"));
        }
        page.wait_texts("lobby", &["line 40 from bob"]).await;
        let scrolled_up_then_news = async |bob: &mut crate::common::Client, text: &str| {
            // Up at the top of the log, not following the newest: the
            // button offers them.
            page.wait_js(
                "alice: scrolled up",
                "const m = document.getElementById('messages');
                 if (m.scrollTop > 0) m.scrollTop = 0;
                 return [m.scrollTop, document.getElementById('jump').hidden];",
                vec![],
                json!([0, false]),
            )
            .await;
            say_in(bob, "lobby", &[], text);
            page.wait_js(
                "alice: ↓ New messages",
                "const j = document.getElementById('jump');
                 return j.hidden ? null : j.textContent;",
                vec![],
                json!("↓ New messages"),
            )
            .await;
        };
        let hidden = async || {
            let script = "return document.getElementById('jump').hidden;";
            page.wait_js("alice: the button hidden", script, vec![], json!(true))
                .await;
        };

        scrolled_up_then_news(&mut bob, "news for the keyboard").await;
        page.click("input").await;
        page.press(&[Key::Shift, Key::Tab]).await;
        assert_eq!(page.focused().await, "#jump", "Shift+Tab from the input");
        page.press(&[Key::Enter]).await;
        hidden().await;
        assert_eq!(
            page.focused().await,
            "#input",
            "Enter on ↓ New messages left the focus there"
        );
        page.shot("jump-pressed-with-enter").await;

        scrolled_up_then_news(&mut bob, "news for the mouse").await;
        page.click("jump").await;
        hidden().await;
        assert_eq!(
            page.focused().await,
            "#messages",
            "a click on ↓ New messages left the focus there"
        );
        page.close().await;
    });
}
