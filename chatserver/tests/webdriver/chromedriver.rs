//! chromedriver as a child process, and the browsers it starts.

use std::cell::Cell;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use fantoccini::ClientBuilder;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use crate::common::WAIT;

/// One browser test at a time.
static TURN: Mutex<()> = Mutex::new(());

/// How often a wait looks at the page again.
pub const POLL: Duration = Duration::from_millis(25);

/// The programs, when both are installed.
struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

fn on_path(exe: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(exe))
        .find(|p| p.is_file())
}

/// Chromium and chromedriver, or `None` after saying loudly why the test
/// skips; with `CHAT_REQUIRE_BROWSER` set (not to 0), missing ones fail.
fn tools(test: &str) -> Option<Tools> {
    let chromium = [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .into_iter()
    .find_map(on_path);
    let chromedriver = on_path("chromedriver");
    if let (Some(chromium), Some(chromedriver)) = (&chromium, &chromedriver) {
        return Some(Tools {
            chromium: chromium.clone(),
            chromedriver: chromedriver.clone(),
        });
    }
    let mut missing = Vec::new();
    if chromium.is_none() {
        missing.push("chromium (nor chromium-browser, google-chrome)");
    }
    if chromedriver.is_none() {
        missing.push("chromedriver");
    }
    let missing = missing.join(" and ");
    let required = std::env::var("CHAT_REQUIRE_BROWSER").is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(
        !required,
        "{test}: {missing} not found on PATH and CHAT_REQUIRE_BROWSER is set"
    );
    // Straight to stderr, not through the test harness's capture: a
    // skipped browser test must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPING browser test {test}: {missing} not found on PATH \
         (apt-get install chromium chromium-driver; set CHAT_REQUIRE_BROWSER=1 to fail instead) ***\n"
    );
    None
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A GET to `127.0.0.1:port` over plain HTTP/1.1; the whole response, or
/// `None` if it could not be had within a second or two. (chromedriver
/// keeps the connection open: the body ends at its Content-Length.)
fn http_get(port: u16, path: &str) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).ok()?;
        out.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&out);
        if n == 0 {
            return Some(text.into_owned());
        }
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            });
            if length.is_some_and(|len| body.len() >= len) {
                return Some(text.into_owned());
            }
        }
    }
}

/// A running chromedriver, the directory for its browsers' profiles, and
/// the runtime the WebDriver client needs. Dropping it closes every
/// browser (chromedriver's `/shutdown`) and stops chromedriver by its PID.
pub struct Harness {
    driver: Child,
    port: u16,
    chromium: PathBuf,
    dir: tempfile::TempDir,
    sessions: Cell<usize>,
    rt: tokio::runtime::Runtime,
    _turn: MutexGuard<'static, ()>,
}

impl Harness {
    /// Start chromedriver and wait until it is ready; `None` (the test
    /// skips) when the browser is not installed.
    pub fn start(test: &str) -> Option<Harness> {
        let tools = tools(test)?;
        // A test that failed while holding the turn poisons it; the next
        // one starts its own chromedriver anyway.
        let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let log = File::create(dir.path().join("chromedriver.log")).expect("chromedriver log");
        let driver = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start chromedriver");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mut h = Harness {
            driver,
            port,
            chromium: tools.chromium,
            dir,
            sessions: Cell::new(0),
            rt,
            _turn: turn,
        };
        h.wait_ready();
        Some(h)
    }

    /// Poll chromedriver's `/status` until it says it is ready: at most
    /// [`WAIT`] and 400 tries.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + WAIT;
        for _ in 0..400 {
            if let Some(status) = self.driver.try_wait().expect("try_wait") {
                panic!(
                    "chromedriver exited at start ({status}); its log:\n{}",
                    self.log()
                );
            }
            if http_get(self.port, "/status").is_some_and(|r| r.contains("\"ready\":true")) {
                return;
            }
            if Instant::now() >= deadline {
                break;
            }
            thread::sleep(POLL);
        }
        panic!(
            "chromedriver on port {} not ready within {WAIT:?}; its log:\n{}",
            self.port,
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default()
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// A new browser (a WebDriver session) with a profile of its own, its
    /// window `w` by `h`.
    pub async fn browser(&self, w: u32, h: u32) -> fantoccini::Client {
        let n = self.sessions.get();
        self.sessions.set(n + 1);
        let profile = self.dir.path().join(format!("profile-{n}"));
        let caps = json!({
            "browserName": "chrome",
            // An alert stays open, so that a test can see one was raised.
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": [
                    "--headless=new",
                    // Chromium refuses to run as root with its sandbox; the
                    // browser only ever loads our own page on loopback.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--hide-scrollbars",
                    "--lang=en-US",
                    format!("--user-data-dir={}", profile.display()),
                    format!("--window-size={w},{h}"),
                ],
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let c = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "new browser session: {e}; chromedriver log:\n{}",
                    self.log()
                )
            });
        size_page(&c, w, h).await;
        c
    }
}

/// Make the page in `c`'s window `w` by `h`: the window's own frame takes
/// room even headless, so the window grows by it.
pub async fn size_page(c: &fantoccini::Client, w: u32, h: u32) {
    let frame = c
        .execute(
            "return [outerWidth - innerWidth, outerHeight - innerHeight];",
            vec![],
        )
        .await
        .expect("measure the window");
    let dw = frame[0].as_u64().expect("a width") as u32;
    let dh = frame[1].as_u64().expect("a height") as u32;
    c.set_window_size(w + dw, h + dh)
        .await
        .expect("size the window");
}

impl Drop for Harness {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("--- chromedriver log ---\n{}", self.log());
        }
        // Close every browser, then chromedriver exits by itself.
        let _ = http_get(self.port, "/shutdown");
        let deadline = Instant::now() + WAIT;
        while matches!(self.driver.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(POLL);
        }
        // Child::kill signals this child's own PID (nothing if it exited).
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // Each Chromium removes its profile's SingletonLock as it exits:
        // wait for that (bounded) before the profiles are deleted.
        let locks: Vec<PathBuf> = (0..self.sessions.get())
            .map(|n| self.dir.path().join(format!("profile-{n}/SingletonLock")))
            .collect();
        while locks.iter().any(|l| l.symlink_metadata().is_ok()) && Instant::now() < deadline {
            thread::sleep(POLL);
        }
    }
}
