//! A screenshot of a conversation: a PNG of the page's size.

use std::path::Path;

use serde_json::json;

use crate::common::{Client, Server};
use crate::say_in;
use crate::webdriver::{wait_for, Harness, Page};

// ---------------------------------------------------------------------
// f. A screenshot of a conversation.
// ---------------------------------------------------------------------

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

#[test]
fn a_screenshot_of_a_conversation_is_a_png() {
    let Some(h) = Harness::start("a_screenshot_of_a_conversation") else {
        return;
    };
    let server = Server::start(&[]);
    let png = h.block_on(conversation(&h, &server));
    assert!(png.starts_with(PNG_MAGIC), "not a PNG");
    // The IHDR chunk first: width and height, big-endian, after its header.
    assert_eq!(&png[12..16], b"IHDR", "no IHDR chunk first");
    let width = u32::from_be_bytes(png[16..20].try_into().expect("4 bytes"));
    let height = u32::from_be_bytes(png[20..24].try_into().expect("4 bytes"));
    assert!(
        (width, height) == (1200, 760),
        "a {width}x{height} screenshot of a 1200x760 page"
    );
    if std::env::var("CHAT_WRITE_SCREENSHOT").as_deref() == Ok("1") {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/page.png");
        std::fs::create_dir_all(path.parent().expect("docs/")).expect("create docs/");
        std::fs::write(&path, &png).expect("write docs/page.png");
        eprintln!("wrote {}", path.display());
    }
}

/// A short afternoon in two rooms, seen by alice; her screenshot.
async fn conversation(h: &Harness, server: &Server) -> Vec<u8> {
    let page = Page::join(h, server.addr(), "alice", (1200, 760)).await;
    let enter = |c: &mut Client, room: &str| {
        c.enter(room);
    };
    let mut bob = server.join("bob");
    let mut carol = server.join("carol");
    let mut erin = server.join("erin");
    page.wait_lines("erin joined", "lobby", |ls| {
        ls.iter().any(|l| l.nick.as_deref() == Some("erin"))
    })
    .await;

    // #rust first, then back to #lobby, where the rest happens.
    page.type_line("/join rust").await;
    enter(&mut bob, "rust");
    say_in(
        &mut bob,
        "rust",
        &[],
        "has anyone tried the new let chains yet?",
    );
    page.wait_texts("rust", &["has anyone tried the new let chains yet?"])
        .await;
    page.type_line("yes, they tidied up half of our parser")
        .await;
    page.wait_texts("rust", &["yes, they tidied up half of our parser"])
        .await;
    page.js(
        "document.querySelector('#rooms > li[data-room=\"lobby\"] button.room').click();",
        vec![],
    )
    .await;

    let lobby: &[(&str, &[&str], &str)] = &[
        ("carol", &[], "good morning! the coffee machine works again"),
        ("bob", &[], "best news all week"),
        ("erin", &[], "did the nightly build pass?"),
        ("bob", &[], "all green since the flaky test was fixed"),
        ("bob", &[], "lunch at 12:30, anyone?"),
        ("carol", &[], "count me in, the noodle place?"),
        ("alice", &[], "sure, I'll book a table for four"),
        ("erin", &[], "same here, see you downstairs"),
        (
            "carol",
            &["alice"],
            "can you bring the slides for the 2 pm review?",
        ),
        ("alice", &["carol"], "will do, they are almost finished"),
        (
            "bob",
            &["alice", "erin"],
            "retro notes are due on Friday, don't forget",
        ),
    ];
    for (from, to, text) in lobby {
        match *from {
            "alice" => {
                let typed = match to {
                    [] => text.to_string(),
                    _ => format!("@{} {text}", to.join(" @")),
                };
                page.type_line(&typed).await;
            }
            "bob" => {
                say_in(&mut bob, "lobby", to, text);
            }
            "carol" => {
                say_in(&mut carol, "lobby", to, text);
            }
            _ => {
                say_in(&mut erin, "lobby", to, text);
            }
        }
        page.wait_texts("lobby", &[text]).await;
    }
    // Someone comes and goes; bob says something in #rust meanwhile.
    let mut dave = server.join("dave");
    say_in(&mut dave, "lobby", &[], "hi! just passing by");
    drop(dave);
    page.wait_lines("dave left", "lobby", |ls| {
        ls.iter()
            .any(|l| l.nick.as_deref() == Some("dave") && l.status.as_deref() == Some("offline"))
    })
    .await;
    say_in(&mut bob, "rust", &[], "nice; I'll send a PR for ours too");
    wait_for("alice: #rust marked unread", async || {
        let v = page
            .js(
                "const b = document.querySelector('#rooms > li[data-room=\"rust\"] .unread');
                 return b && !b.hidden && b.textContent;",
                vec![],
            )
            .await;
        if v == json!("1") {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;
    page.js("document.activeElement?.blur();", vec![]).await;

    let size = page
        .js(
            "return [window.innerWidth * devicePixelRatio, window.innerHeight * devicePixelRatio];",
            vec![],
        )
        .await;
    assert_eq!(size, json!([1200, 760]), "the page's viewport");
    let png = page.c.screenshot().await.expect("screenshot");
    assert!(!png.is_empty(), "an empty screenshot");
    page.close().await;
    png
}
