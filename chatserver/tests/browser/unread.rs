//! Unread marks: a room's count in the list, its `!` when one of them is
//! for the reader, and on a phone the same on ☰, which hides the list.

use serde_json::{json, Value};

use crate::common::Server;
use crate::keyboard::slid_in;
use crate::say_in;
use crate::webdriver::{wait_for, Harness, Page};

/// What the page says of unread messages: the ☰ button's badge (shown or
/// not, its text, `mention`, and whether it takes room on the screen), its
/// label, the window's title, and #rust's badge in the list.
const UNREAD_JS: &str = r#"
const mark = (b) => b && {
  shown: !b.hidden, text: b.textContent, mention: b.classList.contains('mention'),
  seen: b.getBoundingClientRect().width > 0 && getComputedStyle(b).visibility === 'visible',
};
return {
  toggle: mark(document.getElementById('rooms-unread')),
  label: document.getElementById('rooms-toggle').getAttribute('aria-label'),
  title: document.title,
  rust: mark(document.querySelector('#rooms > li[data-room="rust"] .unread')),
};
"#;

async fn wait_unread(page: &Page, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    wait_for(&format!("{}: {what}", page.nick), async || {
        let v = page.js(UNREAD_JS, vec![]).await;
        if want(&v) {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    })
    .await
}

/// On a phone the room list is behind ☰: ☰ says how many messages wait
/// in the other rooms, with `!` when one names the reader or is written
/// to them (as the terminal client's status bar does), and so do the
/// room's badge and both labels. Before, nothing on a phone's screen said
/// that another room had news, a message to the reader included. Reading
/// the room clears it; leaving a room with unread messages takes them out
/// of the title (they stayed there).
#[test]
fn on_a_phone_the_rooms_button_says_what_waits_unread_and_whether_it_is_for_you() {
    let Some(h) = Harness::start("unread_on_the_rooms_button") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let mut bob = server.join("bob");
        bob.enter("rust");
        let page = Page::join(&h, server.addr(), "alice", (390, 844)).await;
        page.type_line("/join rust").await;
        page.wait_lines("in #rust", "rust", |ls| {
            ls.iter().any(|l| l.nick.as_deref() == Some("alice"))
        })
        .await;
        page.type_line("/join lobby").await;
        let none = page.js(UNREAD_JS, vec![]).await;
        assert_eq!(
            none["toggle"]["shown"],
            json!(false),
            "nothing unread yet: {none}"
        );
        assert_eq!(none["label"], json!("Rooms"), "{none}");

        say_in(&mut bob, "rust", &[], "anyone up for a review?");
        let one = wait_unread(&page, "one unread on ☰", |v| {
            v["toggle"]["text"] == json!("1")
        })
        .await;
        assert_eq!(
            (&one["toggle"]["seen"], &one["toggle"]["mention"]),
            (&json!(true), &json!(false)),
            "☰'s badge on screen, not a mention: {one}"
        );
        assert_eq!(one["label"], json!("Rooms, 1 unread"), "{one}");
        assert_eq!(one["rust"]["text"], json!("1"), "{one}");

        say_in(
            &mut bob,
            "rust",
            &["alice"],
            "yours, when you have a minute",
        );
        let two = wait_unread(&page, "a mention on ☰", |v| {
            v["toggle"]["text"] == json!("2!")
        })
        .await;
        assert_eq!(two["toggle"]["mention"], json!(true), "{two}");
        assert_eq!(
            two["label"],
            json!("Rooms, 2 unread, some for you"),
            "{two}"
        );
        assert_eq!(
            (&two["rust"]["text"], &two["rust"]["mention"]),
            (&json!("2!"), &json!(true)),
            "#rust's own badge: {two}"
        );
        page.shot("phone-unread-mention").await;

        // Read: nothing left, on ☰ or in the title.
        page.click("rooms-toggle").await;
        slid_in(&page, "sidebar").await;
        page.click_css("#rooms > li[data-room=\"rust\"] button.room")
            .await;
        let read = wait_unread(&page, "#rust read", |v| {
            v["toggle"]["shown"] == json!(false)
        })
        .await;
        assert_eq!(read["label"], json!("Rooms"), "{read}");
        assert!(
            !read["title"].as_str().unwrap_or("(").starts_with('('),
            "{read}"
        );

        // Unread again, then #rust left without reading it: its count goes.
        page.type_line("/join lobby").await;
        say_in(&mut bob, "rust", &[], "merged, thanks");
        wait_unread(&page, "unread again", |v| {
            v["title"] == json!("(1) #lobby – chat")
        })
        .await;
        page.type_line("/part rust").await;
        let left = wait_unread(&page, "#rust left", |v| v["rust"].is_null()).await;
        assert_eq!(
            left["title"],
            json!("#lobby – chat"),
            "the left room's count stays: {left}"
        );
        assert_eq!(left["toggle"]["shown"], json!(false), "{left}");

        // Left with news waiting: the join screen's title names no room
        // and counts nothing (it said "(1) #lobby – chat").
        page.type_line("/join rust").await;
        say_in(&mut bob, "lobby", &[], "bye for now");
        wait_unread(&page, "unread in #lobby", |v| {
            v["title"] == json!("(1) #rust – chat")
        })
        .await;
        page.click("leave").await;
        wait_unread(&page, "the join screen's title", |v| {
            v["title"] == json!("chat")
        })
        .await;
        page.close().await;
    });
}

/// `#dev`'s badge in the list (its text, or null while hidden), the
/// window's title, and whether #dev's replay is over (its line that says
/// the session resumed).
const DEV_JS: &str = r#"
const b = document.querySelector('#rooms > li[data-room="dev"] .unread');
const log = document.querySelector('#messages > .room-log[data-room="dev"] .events');
return {
  dev: b && !b.hidden ? b.textContent : null,
  title: document.title,
  resumed: Boolean(log && log.querySelector('li.resumed')),
};
"#;

async fn wait_dev(page: &Page, what: &str, want: Value) -> Value {
    wait_for(&format!("{}: {what}", page.nick), async || {
        let v = page.js(DEV_JS, vec![]).await;
        if v == want {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    })
    .await
}

/// A reload keeps the unread marks of the rooms not shown, `!` and the
/// title's count with them, and counts what came while the page was
/// away (a message its replay brings after what the tab had); the room
/// shown is read, and what was read stays read. Before, a reload lost
/// them all: the messages were in #dev's log, and nothing said they were
/// unread.
#[test]
fn a_reload_keeps_the_unread_marks_and_counts_what_came_meanwhile() {
    let Some(h) = Harness::start("a_reload_keeps_the_unread_marks") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let mut bob = server.join("bob");
        bob.enter("dev");
        let page = Page::join(&h, server.addr(), "alice", (1000, 700)).await;
        page.type_line("/join dev").await;
        page.wait_lines("in #dev", "dev", |ls| {
            ls.iter().any(|l| l.nick.as_deref() == Some("alice"))
        })
        .await;
        page.type_line("/join lobby").await;
        say_in(&mut bob, "dev", &[], "a build broke");
        say_in(&mut bob, "dev", &["alice"], "yours, I think");
        wait_dev(
            &page,
            "two unread in #dev",
            json!({"dev": "2!", "title": "(2) #lobby – chat", "resumed": false}),
        )
        .await;

        page.c.refresh().await.expect("reload the page");
        page.wait_state("connected").await;
        wait_dev(
            &page,
            "the marks back after the reload",
            json!({"dev": "2!", "title": "(2) #lobby – chat", "resumed": true}),
        )
        .await;
        page.shot("reload-unread-kept").await;

        // Away (another page in the tab, its session kept), bob writes;
        // back, the replay brings it, counted.
        let url = page.c.current_url().await.expect("the page's address");
        page.c.goto("about:blank").await.expect("leave the page");
        say_in(&mut bob, "dev", &[], "and the tests too");
        page.c.goto(url.as_str()).await.expect("back to the page");
        page.wait_state("connected").await;
        page.wait_texts("dev", &["and the tests too"]).await;
        wait_dev(
            &page,
            "what came meanwhile counted",
            json!({"dev": "3!", "title": "(3) #lobby – chat", "resumed": true}),
        )
        .await;

        // Read, then reloaded from another room: it stays read.
        page.click_css("#rooms > li[data-room=\"dev\"] button.room")
            .await;
        page.type_line("/join lobby").await;
        wait_dev(
            &page,
            "#dev read",
            json!({"dev": null, "title": "#lobby – chat", "resumed": true}),
        )
        .await;
        page.c.refresh().await.expect("reload the page");
        page.wait_state("connected").await;
        wait_dev(
            &page,
            "#dev still read after the reload",
            json!({"dev": null, "title": "#lobby – chat", "resumed": true}),
        )
        .await;
        page.close().await;
    });
}
