//! The chat page in a real browser: headless Chromium driven through
//! chromedriver (WebDriver), against the real server, beside raw clients
//! and the real terminal client.
//!
//! Each test starts its own chromedriver on a free loopback port, with a
//! temporary directory for the browsers' profiles, and stops it by its PID
//! (after asking it to close its browsers). Without chromium or
//! chromedriver the tests say loudly that they skip, and pass, unless
//! `CHAT_REQUIRE_BROWSER=1` (as .ci/run sets), where they fail.
//!
//! The tests take turns (one browser test at a time: two cores run one
//! Chromium comfortably, not five). Nothing sleeps to synchronise: every
//! wait polls the page for the condition it needs, against a deadline.
//! The hooks used are those index.html lists.

mod common;
mod webdriver;

// The crate root sits in tests/, so each topic's file is named by its path.
#[path = "browser/commands.rs"]
mod commands;
#[path = "browser/cut.rs"]
mod cut;
#[path = "browser/history.rs"]
mod history;
#[path = "browser/keyboard.rs"]
mod keyboard;
#[path = "browser/online.rs"]
mod online;
#[path = "browser/phone.rs"]
mod phone;
#[path = "browser/restart.rs"]
mod restart;
#[path = "browser/screenshot.rs"]
mod screenshot;
#[path = "browser/scrolled_up.rs"]
mod scrolled_up;
#[path = "browser/sessions.rs"]
mod sessions;
#[path = "browser/text.rs"]
mod text;
#[path = "browser/two_browsers.rs"]
mod two_browsers;
#[path = "browser/unread.rs"]
mod unread;

use common::Client;
use serde_json::{json, Value};
use webdriver::Line;

/// Flags for a server that can be stopped and started again where the
/// page finds it: a fixed loopback port (free when chosen) and a data
/// directory, kept while the returned `TempDir` lives; `extra` after them.
fn restartable(extra: &[&str]) -> (tempfile::TempDir, Vec<String>) {
    let data = tempfile::tempdir().expect("data directory");
    let listen = format!("127.0.0.1:{}", webdriver::free_port());
    let dir = data.path().to_str().expect("a UTF-8 path").to_owned();
    let mut flags = vec!["--listen".to_owned(), listen, "--data-dir".to_owned(), dir];
    flags.extend(extra.iter().map(|f| (*f).to_owned()));
    (data, flags)
}

/// Text the page shows for everything in `lines`, for failure messages.
fn shown(lines: &[Line]) -> Vec<String> {
    lines
        .iter()
        .map(|l| match (&l.seq, &l.from) {
            (Some(s), Some(f)) => format!(
                "{s} {f}{}: {}",
                l.to.as_ref()
                    .map(|t| format!(" -> {t}"))
                    .unwrap_or_default(),
                l.text
            ),
            (Some(s), None) => format!("{s} {}", l.text),
            _ => format!("- {}", l.text),
        })
        .collect()
}

/// A raw client's `msg` in `room`, and its echo.
fn say_in(c: &mut Client, room: &str, to: &[&str], text: &str) -> Value {
    c.send_frame(&json!({"type": "msg", "room": room, "to": to, "text": text}));
    let (_, echo) = c.recv_until(1000, |f| f["type"] == "msg" && f["text"] == text);
    echo
}
