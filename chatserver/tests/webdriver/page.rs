//! The chat page in one browser, through the hooks index.html lists.

use std::net::SocketAddr;
use std::time::Instant;

use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::key::Key;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::Locator;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Harness, POLL};
use crate::common::WAIT;

/// One line of a room's log as the page shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Line {
    pub classes: String,
    pub seq: Option<u64>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub nick: Option<String>,
    pub status: Option<String>,
    pub tag: Option<String>,
    /// The `.text` of a message or notice; the whole line otherwise.
    pub text: String,
}

impl Line {
    pub fn has_class(&self, c: &str) -> bool {
        self.classes.split_whitespace().any(|x| x == c)
    }

    pub fn is_msg(&self) -> bool {
        self.has_class("msg")
    }
}

/// Every line of `room`'s log, in the order shown.
const LINES_JS: &str = r#"
const events = document.querySelector(
  `#messages > .room-log[data-room="${CSS.escape(arguments[0])}"] > .events`);
if (!events) return null;
return Array.from(events.children, (li) => ({
  classes: li.className,
  seq: li.dataset.seq === undefined ? null : Number(li.dataset.seq),
  from: li.dataset.from ?? null,
  to: li.dataset.to ?? null,
  nick: li.dataset.nick ?? null,
  status: li.dataset.status ?? null,
  tag: li.querySelector('.tag')?.textContent ?? null,
  text: (li.querySelector('.text') ?? li).textContent,
}));
"#;

/// A Chrome DevTools Protocol command, sent through chromedriver's
/// `goog/cdp/execute` to the page's browser.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (hyper::Method, Option<String>) {
        let body = json!({"cmd": self.cmd, "params": self.params});
        (hyper::Method::POST, Some(body.to_string()))
    }
}

/// See [`Page::live`].
const LIVE_JS: &str = r#"
let el = document.querySelector(arguments[0]);
if (!el) return null;
const implicit = { log: 'polite', status: 'polite', alert: 'assertive', marquee: 'off', timer: 'off' };
for (; el; el = el.parentElement) {
  const live = el.getAttribute('aria-live');
  if (live) return live;
  const role = implicit[el.getAttribute('role')];
  if (role) return role;
}
return 'none';
"#;

/// Poll `probe` until it gives `Ok`, at most [`WAIT`]; it gives `Err` with
/// what it saw, for the failure message.
pub async fn wait_for<T>(what: &str, mut probe: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + WAIT;
    let mut last = String::new();
    for _ in 0..(WAIT.as_millis() / POLL.as_millis() + 1) {
        match probe().await {
            Ok(v) => return v,
            Err(saw) => last = saw,
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("timed out after {WAIT:?} waiting for {what}; last saw: {last}");
}

/// The chat page in one browser, joined as `nick`.
pub struct Page {
    pub c: fantoccini::Client,
    pub nick: String,
}

impl Page {
    /// A new browser window of `w` by `h` opening the page at `addr` and
    /// joining as `nick`; returns once the page shows its own presence.
    pub async fn join(h: &Harness, addr: SocketAddr, nick: &str, (w, ht): (u32, u32)) -> Page {
        let c = h.browser(w, ht).await;
        c.goto(&format!("http://{addr}/"))
            .await
            .expect("open the page");
        let page = Page {
            c,
            nick: nick.to_owned(),
        };
        let field = page.c.find(Locator::Id("nick")).await.expect("#nick");
        field.clear().await.expect("clear #nick");
        field.send_keys(nick).await.expect("type the nickname");
        page.c
            .find(Locator::Id("join"))
            .await
            .expect("#join")
            .click()
            .await
            .expect("click #join");
        page.wait_state("connected").await;
        page.wait_lines(&format!("{nick}'s own presence"), "lobby", |lines| {
            lines
                .iter()
                .any(|l| l.nick.as_deref() == Some(nick) && l.status.as_deref() == Some("online"))
        })
        .await;
        page
    }

    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.c
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("{}: script failed: {e}", self.nick))
    }

    /// Run `script` with `args` until it returns `want`, at most [`WAIT`]
    /// (the failure names `what` and the last value seen).
    pub async fn wait_js(&self, what: &str, script: &str, args: Vec<Value>, want: Value) {
        wait_for(what, async || {
            let v = self.js(script, args.clone()).await;
            if v == want {
                Ok(())
            } else {
                Err(v.to_string())
            }
        })
        .await;
    }

    /// Chromium's DevTools command `cmd` with `params`, and its answer.
    pub async fn cdp(&self, cmd: &'static str, params: Value) -> Value {
        self.c
            .issue_cmd(Cdp { cmd, params })
            .await
            .unwrap_or_else(|e| panic!("{}: {cmd} failed: {e}", self.nick))
    }

    /// What the browser's accessibility tree (what a screen reader is
    /// given) holds for the element `selector` finds: `{ role, name,
    /// ignored, props }`, `props` its properties by name (`level`,
    /// `focusable`...; on an active live region's root `live`, `atomic`,
    /// `relevant`, and `busy` while set); null when no element matches.
    pub async fn ax(&self, selector: &str) -> Value {
        let doc = self.cdp("DOM.getDocument", json!({"depth": 0})).await;
        let found = self
            .cdp(
                "DOM.querySelector",
                json!({"nodeId": doc["root"]["nodeId"], "selector": selector}),
            )
            .await;
        if found["nodeId"] == json!(0) {
            return Value::Null;
        }
        let tree = self
            .cdp(
                "Accessibility.getPartialAXTree",
                json!({"nodeId": found["nodeId"], "fetchRelatives": false}),
            )
            .await;
        let node = &tree["nodes"][0];
        let props: serde_json::Map<String, Value> = node["properties"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p["name"].as_str().unwrap_or("?").to_owned(),
                    p["value"]["value"].clone(),
                )
            })
            .collect();
        json!({
            "role": node["role"]["value"],
            "name": node["name"]["value"],
            "ignored": node["ignored"],
            "props": props,
        })
    }

    /// How a screen reader is told of the element `selector` finds when
    /// it comes into the page: the `aria-live` of the live region it is
    /// in (`"polite"`, `"assertive"`, `"off"`: not said; `"none"`: in no
    /// live region), or null when no element matches. By ARIA's rule,
    /// which Chromium follows (its live region root is the nearest
    /// element, the node itself included, with any `aria-live`, `"off"`
    /// too, or a live role; no event is fired for a node whose region is
    /// `"off"`): read from the page, as DevTools' accessibility tree
    /// ([`Page::ax`]) gives live properties only on an active region's
    /// root, not on what is in it.
    pub async fn live(&self, selector: &str) -> Value {
        self.js(LIVE_JS, vec![json!(selector)]).await
    }

    /// Every line of `room`'s log.
    pub async fn lines(&self, room: &str) -> Vec<Line> {
        let v = self.js(LINES_JS, vec![json!(room)]).await;
        if v.is_null() {
            return Vec::new();
        }
        serde_json::from_value(v).expect("lines of the log")
    }

    /// The messages of `room`'s log.
    pub async fn msgs(&self, room: &str) -> Vec<Line> {
        self.lines(room)
            .await
            .into_iter()
            .filter(Line::is_msg)
            .collect()
    }

    /// Wait until `room`'s log satisfies `done`; returns its lines then.
    pub async fn wait_lines(
        &self,
        what: &str,
        room: &str,
        done: impl Fn(&[Line]) -> bool,
    ) -> Vec<Line> {
        let what = format!("{}: {what}", self.nick);
        wait_for(&what, async || {
            let lines = self.lines(room).await;
            if done(&lines) {
                Ok(lines)
            } else {
                Err(format!("{lines:#?}"))
            }
        })
        .await
    }

    /// Wait until `room`'s log shows a line of each of `nicks` (their
    /// coming online, say).
    pub async fn wait_nicks(&self, room: &str, nicks: &[&str]) -> Vec<Line> {
        self.wait_lines(&format!("{nicks:?} in #{room}"), room, |lines| {
            nicks
                .iter()
                .all(|n| lines.iter().any(|l| l.nick.as_deref() == Some(*n)))
        })
        .await
    }

    /// Wait until `room` shows a message with each of `texts`.
    pub async fn wait_texts(&self, room: &str, texts: &[&str]) -> Vec<Line> {
        self.wait_lines(&format!("messages {texts:?} in #{room}"), room, |lines| {
            texts
                .iter()
                .all(|t| lines.iter().any(|l| l.is_msg() && l.text == *t))
        })
        .await
    }

    /// `#status`'s data-state.
    pub async fn state(&self) -> String {
        let v = self
            .js(
                "return document.getElementById('status').dataset.state;",
                vec![],
            )
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    pub async fn wait_state(&self, want: &str) {
        let what = format!("{}: #status {want}", self.nick);
        wait_for(&what, async || {
            let s = self.state().await;
            if s == want {
                Ok(())
            } else {
                Err(s)
            }
        })
        .await;
    }

    /// Click the element with id `id` (the message input, say).
    pub async fn click(&self, id: &str) {
        self.c
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("{}: find #{id}: {e}", self.nick))
            .click()
            .await
            .unwrap_or_else(|e| panic!("{}: click #{id}: {e}", self.nick));
    }

    /// Click the element the CSS `selector` finds (a nickname or room
    /// button in a list, say).
    pub async fn click_css(&self, selector: &str) {
        self.c
            .find(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("{}: find {selector}: {e}", self.nick))
            .click()
            .await
            .unwrap_or_else(|e| panic!("{}: click {selector}: {e}", self.nick));
    }

    /// Click the page at (`x`, `y`) of the viewport, as a mouse (or a
    /// finger) does: on whatever is there.
    pub async fn click_at(&self, x: f64, y: f64) {
        let mouse = MouseActions::new("mouse".to_owned())
            .then(PointerAction::MoveTo {
                duration: None,
                x,
                y,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            });
        self.c
            .perform_actions(mouse)
            .await
            .unwrap_or_else(|e| panic!("{}: click at ({x}, {y}): {e}", self.nick));
    }

    /// Type `line` into the message input and press Enter.
    pub async fn type_line(&self, line: &str) {
        self.type_into("input", line).await;
    }

    /// Type `line` into the field with id `id` and press Enter.
    pub async fn type_into(&self, id: &str, line: &str) {
        let field = self
            .c
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("{}: find #{id}: {e}", self.nick));
        field
            .send_keys(&format!("{line}{}", char::from(Key::Enter)))
            .await
            .unwrap_or_else(|e| panic!("{}: type {line:?} into #{id}: {e}", self.nick));
    }

    /// Put `line` in the message input as a paste would (Tab and all,
    /// which typing cannot: Tab moves the focus) and send it.
    pub async fn paste_line(&self, line: &str) {
        self.js(
            "const i = document.getElementById('input');
             i.focus();
             i.value = arguments[0];
             document.getElementById('composer').requestSubmit();",
            vec![json!(line)],
        )
        .await;
    }

    /// With `CHAT_SHOT_DIR` set, a screenshot of the page in that
    /// directory as `NAME.png`, to look at; nothing otherwise.
    pub async fn shot(&self, name: &str) {
        let Some(dir) = std::env::var_os("CHAT_SHOT_DIR") else {
            return;
        };
        let png = self.c.screenshot().await.expect("screenshot");
        let path = std::path::Path::new(&dir).join(format!("{name}.png"));
        std::fs::create_dir_all(&dir).expect("create CHAT_SHOT_DIR");
        std::fs::write(&path, png).expect("write the screenshot");
        eprintln!("wrote {}", path.display());
    }

    /// What has the focus: `#id`, or `tag.class` for an element without
    /// an id; inside a drawer, the drawer's id first (`sidebar button.part`);
    /// `body` when nothing has it.
    pub async fn focused(&self) -> String {
        let v = self
            .js(
                "const a = document.activeElement;
                 if (!a || a === document.body) return 'body';
                 const d = a.closest('.drawer');
                 const what = a.id ? `#${a.id}` : `${a.tagName.toLowerCase()}.${a.className}`;
                 return d ? `${d.id} ${what}` : what;",
                vec![],
            )
            .await;
        v.as_str().expect("a description").to_owned()
    }

    /// Press `keys` (fantoccini's `Key`s as chars; Shift stays down to the
    /// end) where the focus is, as the keyboard does.
    pub async fn press(&self, keys: &[Key]) {
        let keys: String = keys.iter().map(|k| char::from(*k)).collect();
        self.c
            .active_element()
            .await
            .expect("the focused element")
            .send_keys(&keys)
            .await
            .unwrap_or_else(|e| panic!("{}: press {keys:?}: {e}", self.nick));
    }

    /// Type `text` where the focus is, key by key (a modifier in it, as
    /// `Key::Control` as a char, stays down to the end).
    pub async fn press_text(&self, text: &str) {
        self.c
            .active_element()
            .await
            .expect("the focused element")
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("{}: type {text:?}: {e}", self.nick));
    }

    /// How many messages wait to be sent (`.pending-list > li.pending`).
    pub async fn pending(&self) -> u64 {
        let v = self
            .js(
                "return document.querySelectorAll('.pending-list > li.pending').length;",
                vec![],
            )
            .await;
        v.as_u64().expect("a count")
    }

    /// Wait until exactly `n` messages wait to be sent.
    pub async fn wait_pending(&self, n: u64) {
        wait_for(
            &format!("{}: {n} pending", self.nick),
            async || match self.pending().await {
                m if m == n => Ok(()),
                m => Err(format!("{m} pending")),
            },
        )
        .await;
    }

    pub async fn close(self) {
        self.c.close().await.expect("close the browser session");
    }
}
