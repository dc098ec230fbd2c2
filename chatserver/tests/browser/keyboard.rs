//! The keyboard, and the drawers, on a phone-sized page.

use fantoccini::key::Key;
use serde_json::json;

use crate::common::Server;
use crate::say_in;
use crate::webdriver::{Harness, Page};

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
    page.c
        .find(fantoccini::Locator::Id("room-input"))
        .await
        .expect("#room-input")
        .send_keys(&format!("bad!{}", char::from(Key::Enter)))
        .await
        .expect("type a room name");
    // Why the name was refused shows where it was typed: it was said
    // above the message box only, which the open drawer covers.
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
    assert!(
        seen.as_array().is_some_and(|a| a.len() == 1),
        "the refusal is not seen once in the open drawer: {seen}"
    );
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
