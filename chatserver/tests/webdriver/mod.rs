//! Headless Chromium for the browser tests (`browser.rs`): chromedriver
//! started on a free loopback port and stopped by its PID, a browser per
//! WebDriver session with a profile of its own, and the chat page seen
//! through the hooks index.html lists. Every wait polls against a
//! deadline.

mod chromedriver;
mod page;

pub use chromedriver::{free_port, size_page, Harness, POLL};
pub use page::{wait_for, Line, Page};
